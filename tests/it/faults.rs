//! The fault matrix (issue 10): the pipeline as it runs in Azure (Azurite, the host
//! stand-in, the real `handler` binary, the simulated tenant behind the production Graph
//! client) under one hostile condition per case. Every case must converge to a tenant that
//! matches the rosters, and the ledger of what happened is checked with exact counts:
//!
//! - no wrongful removal: every `adminRemove` the tenant accepted is one the final rosters
//!   ask for, each once;
//! - no duplicate: every invitation and every `adminAdd` the tenant accepted is one the
//!   rosters ask for, each once;
//! - no false failure record, and a record for every person set aside: the `failed`
//!   audit records are exactly the people (and rosters) in the poison queues.
//!
//! **Time.** Cases run on a compressed clock: one test millisecond stands for
//! [`SCALE`] real ones, applied alike to the host's visibility timeout (30 s → 300 ms),
//! Graph's backoff (2 s → 20 ms) and the simulated tenant's delays (a 60 s replication delay
//! → 600 ms), so their proportions are those of production and no case waits a real
//! minute. Throttling keeps its real rate (operations per second).
//!
//! **Seeds.** A random case prints its seed (`ENROLL_FAULT_SEED=… cargo test … faults`
//! replays it); without the variable each run draws a new one. Longer soaks are in
//! `scripts/bench faults`.

use std::path::Path;
use std::time::Duration;

use crate::holders;
use enroll_core::tenant::{Assignment, ObjectRef, Subject, TenantSnapshot, User};
use enroll_harness::{Harness, HarnessConfig};
use enroll_sim::{SimConfig, SimHandle, start};
use serde_json::Value;

/// One test millisecond stands for this many real ones.
const SCALE: u32 = 100;

/// A real-world duration on the test's clock.
fn scaled(real: Duration) -> Duration {
    real / SCALE
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// The case's seed: `ENROLL_FAULT_SEED`, else a new one; printed to replay a failure.
fn seed(case: &str) -> u64 {
    let seed = std::env::var("ENROLL_FAULT_SEED")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or_else(|| fastrand::u64(..));
    println!(
        "{case}: seed {seed} (replay: ENROLL_FAULT_SEED={seed} cargo test -p enroll-tests --test it faults::{case})"
    );
    seed
}

const KEY_USERS: &str = "Projects/Key Users.csv";
const ALPHA: &str = "Projects/Project Alpha - Manager.csv";
const KEY_USERS_PACKAGE: &str = "pkg-key-users";
const ALPHA_PACKAGE: &str = "pkg-alpha-manager";

/// The golden tenant with 20 more members holding Key Users (`m0`–`m19@contoso.com`).
fn tenant() -> TenantSnapshot {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/golden/tenant.json");
    let mut tenant: TenantSnapshot = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    for i in 0..20 {
        let email = format!("m{i}@contoso.com");
        tenant.users.push(User {
            id: format!("u-m{i}"),
            display_name: Some(format!("Member {i}")),
            user_principal_name: Some(email.clone()),
            mail: Some(email),
            other_mails: Vec::new(),
            proxy_addresses: Vec::new(),
            user_type: Some("Member".into()),
        });
        tenant.assignments.push(Assignment {
            id: format!("as-m{i}"),
            state: Some("delivered".into()),
            target: Some(Subject {
                object_id: Some(format!("u-m{i}")),
                ..Subject::default()
            }),
            access_package: Some(ObjectRef {
                id: KEY_USERS_PACKAGE.into(),
                display_name: None,
            }),
            ..Assignment::default()
        });
    }
    tenant
}

/// Key Users as most cases want it: 25 new guests, Ann and Bob, members 0–14 kept and
/// 15–19 dropped (five removals, within the removal guard).
fn key_users_roster() -> String {
    let mut text = String::from("Ann;ann@contoso.com\nBob;bob@fabrikam.com\n");
    for i in 0..15 {
        text.push_str(&format!("Member {i};m{i}@contoso.com\n"));
    }
    for i in 0..25 {
        text.push_str(&format!("Guest {i};guest{i}@fabrikam.com\n"));
    }
    text
}

/// Alpha managers: Dee dropped, Bob and a guest added, Eve's open request left alone.
const ALPHA_ROSTER: &str =
    "Ann;ann@contoso.com\nBob;bob@fabrikam.com\nEve;eve@contoso.com\nFay;fay@tailspin.be\n";

/// A running case: the simulated tenant, the host stand-in with the real handler, and the
/// tenant as it was before.
struct Matrix {
    case: &'static str,
    sim: SimHandle,
    harness: Harness,
    before: TenantSnapshot,
    log: tempfile::NamedTempFile,
}

impl Matrix {
    async fn start(case: &'static str, sim: SimConfig, twice: bool) -> Self {
        Self::with_tenant(case, sim, twice, tenant()).await
    }

    async fn with_tenant(
        case: &'static str,
        sim: SimConfig,
        twice: bool,
        before: TenantSnapshot,
    ) -> Self {
        let harness_seed = sim.seed;
        let sim = start(sim, before.clone()).await.unwrap();
        let storage = std::env::var("ENROLL_TEST_STORAGE").unwrap_or_else(|_| {
            panic!("ENROLL_TEST_STORAGE is not set: the fault matrix needs Azurite; run it with ./scripts/test")
        });
        let mut config =
            HarnessConfig::new(crate::handler_binary(), env!("CARGO_MANIFEST_DIR"), storage);
        config.prefix = format!("x{:08x}-", fastrand::u32(..));
        config.visibility_timeout = Some(scaled(Duration::from_secs(30)));
        config.deliver_twice = twice;
        config.seed = harness_seed;
        let log = tempfile::NamedTempFile::new().unwrap();
        config.handler_log = Some(log.path().to_owned());
        config.env = sim.client_settings();
        let retry_base = millis(scaled(Duration::from_secs(2))).to_string();
        config.env.extend(
            [
                ("ENROLL_INVITE_DOMAINS", "*"),
                ("ENROLL_GRAPH_RETRY_BASE_MS", retry_base.as_str()),
            ]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string())),
        );
        let harness = Harness::start(config).await.unwrap();
        Self {
            case,
            sim,
            harness,
            before,
            log,
        }
    }

    async fn upload(&self, name: &str, text: &str) {
        self.harness
            .upload_roster(name, text.as_bytes().to_vec())
            .await
            .unwrap();
    }

    /// Polls until Plan has run once and queued its messages, and no step has run yet.
    async fn until_planned(&mut self) {
        while !self.harness.counters().invocations.contains_key("Plan") {
            self.harness.poll_once().await.unwrap();
        }
        let counters = self.harness.counters();
        assert_eq!(counters.invocations.get("Plan"), Some(&1), "{}", self.case);
        for step in ["Invite", "Assign", "Remove"] {
            assert!(
                !counters.invocations.contains_key(step),
                "{}: {step} ran before the roster changed",
                self.case
            );
        }
    }

    async fn run(&mut self) {
        if let Err(error) = self.harness.run_until_idle(Duration::from_secs(120)).await {
            panic!(
                "{}: {error}\nhandler log:\n{}",
                self.case,
                std::fs::read_to_string(self.log.path()).unwrap_or_default()
            );
        }
    }

    /// Runs until idle, then lets the nightly timer repair what is left (a message set
    /// aside, a change a fault cut short), as production does, until the tenant matches
    /// `rosters` (roster text, package) or four nights have passed.
    async fn converge(&mut self, rosters: &[(&str, &str)]) -> usize {
        self.run().await;
        let mut nights = 0;
        while !self.mismatches(rosters).await.is_empty() && nights < 4 {
            self.harness.fire_timer("Scheduled").await.unwrap();
            self.run().await;
            nights += 1;
        }
        let left = self.mismatches(rosters).await;
        assert!(
            left.is_empty(),
            "{}: the tenant does not match the rosters after {nights} nightly repairs: {left:?}",
            self.case
        );
        nights
    }

    /// Who holds each package against who its roster lists: `package: +missing -extra`.
    async fn mismatches(&self, rosters: &[(&str, &str)]) -> Vec<String> {
        let tenant = self.sim.settled().await;
        let mut problems = Vec::new();
        for (text, package) in rosters {
            let wanted: Vec<String> = emails(text)
                .iter()
                .map(|email| user_of(&tenant, email).unwrap_or_else(|| format!("?{email}")))
                .collect();
            let holding = holders(&tenant, package);
            for missing in wanted.iter().filter(|id| !holding.contains(id)) {
                problems.push(format!("{package}: +{missing}"));
            }
            for extra in holding.iter().filter(|id| !wanted.contains(id)) {
                problems.push(format!("{package}: -{extra}"));
            }
        }
        problems
    }

    /// Checks the ledger of the whole case against the final rosters (roster text, package)
    /// and the packages no roster governs any more; returns it for the case's own checks.
    async fn check(&self, rosters: &[(&str, &str)]) -> Ledger {
        let after = self.sim.settled().await;
        let ledger = Ledger::read(self).await;
        let case = self.case;
        println!("{case}: {}", ledger.summary());
        // Wrongful removals: every adminRemove accepted is of a holder the final roster of
        // that package does not list, and each such holder is removed once.
        let mut expected_removals: Vec<(String, String)> = Vec::new();
        let mut expected_adds: Vec<(String, String)> = Vec::new();
        let mut expected_invitations: Vec<String> = Vec::new();
        for (text, package) in rosters {
            let listed: Vec<String> = emails(text);
            // Those who hold the package before, or will once an open request is delivered.
            let mut holding = holders(&self.before, package);
            holding.extend(
                self.before
                    .assignment_requests
                    .iter()
                    .filter(|r| {
                        r.is_open()
                            && r.request_type.as_deref() == Some("adminAdd")
                            && r.access_package_id() == Some(package)
                    })
                    .filter_map(|r| r.target_object_id().map(str::to_owned)),
            );
            for holder in holding {
                let keys = addresses(&self.before, &holder);
                if !keys.iter().any(|k| listed.contains(k)) {
                    expected_removals.push(((*package).to_owned(), holder));
                }
            }
            for email in &listed {
                let before = user_of(&self.before, email);
                if before.is_none() {
                    expected_invitations.push(email.clone());
                }
                let user = user_of(&after, email).unwrap();
                let held = holders(&self.before, package).contains(&user);
                // An earlier request (open, or stuck) is followed up, not made again.
                let requested = self.before.assignment_requests.iter().any(|r| {
                    r.request_type.as_deref() == Some("adminAdd")
                        && r.access_package_id() == Some(package)
                        && r.target_object_id() == Some(user.as_str())
                });
                if !held && !requested {
                    expected_adds.push(((*package).to_owned(), user));
                }
            }
        }
        expected_removals.sort();
        expected_adds.sort();
        expected_invitations.sort();
        expected_invitations.dedup();
        assert_eq!(
            ledger.removals, expected_removals,
            "{case}: adminRemove requests (package, user) against those the rosters ask for"
        );
        assert_eq!(
            ledger.adds, expected_adds,
            "{case}: adminAdd requests (package, user), each once"
        );
        assert_eq!(
            ledger.invitations, expected_invitations,
            "{case}: invitations, each once"
        );
        assert_eq!(
            ledger.failed, ledger.set_aside,
            "{case}: failed audit records against the people and rosters in the poison queues"
        );
        ledger
    }
}

/// The lower-case addresses of a roster's lines (`Name;address`).
fn emails(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|line| line.split(';').nth(1))
        .map(|email| email.trim().to_ascii_lowercase())
        .collect()
}

/// Every address a user is known by, lower case.
fn addresses(tenant: &TenantSnapshot, id: &str) -> Vec<String> {
    tenant
        .users
        .iter()
        .filter(|u| u.id == id)
        .flat_map(|u| {
            u.mail
                .iter()
                .chain(&u.other_mails)
                .chain(&u.user_principal_name)
                .map(|a| a.to_ascii_lowercase())
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The user with this address (mail, other mails or principal name).
fn user_of(tenant: &TenantSnapshot, email: &str) -> Option<String> {
    tenant
        .users
        .iter()
        .find(|u| {
            u.mail
                .iter()
                .chain(&u.other_mails)
                .chain(&u.user_principal_name)
                .any(|a| a.eq_ignore_ascii_case(email))
        })
        .map(|u| u.id.clone())
}

/// What a case did, from the tenant's side and from the records, sorted for comparison.
#[derive(Debug)]
struct Ledger {
    /// (package, user) of every adminRemove the tenant accepted.
    removals: Vec<(String, String)>,
    /// (package, user) of every adminAdd the tenant accepted during the case.
    adds: Vec<(String, String)>,
    /// The address of every invitation that took effect.
    invitations: Vec<String>,
    /// (action, address or `-`) of every `failed` audit record.
    failed: Vec<(String, String)>,
    /// (action, address or `-`) of every person, or roster, in a poison queue.
    set_aside: Vec<(String, String)>,
    /// Invocations per function, and those that failed.
    invocations: u64,
    failures: u64,
}

impl Ledger {
    async fn read(matrix: &Matrix) -> Self {
        let before: Vec<&str> = matrix
            .before
            .assignment_requests
            .iter()
            .map(|r| r.id.as_str())
            .collect();
        let made = matrix.sim.assignment_requests_made().await;
        let made = made.iter().filter(|r| !before.contains(&r.id.as_str()));
        let pair = |r: &enroll_core::tenant::AssignmentRequest| {
            (
                r.access_package_id().unwrap_or_default().to_owned(),
                r.target_object_id().unwrap_or_default().to_owned(),
            )
        };
        let mut removals: Vec<(String, String)> = made
            .clone()
            .filter(|r| r.request_type.as_deref() == Some("adminRemove"))
            .map(pair)
            .collect();
        let mut adds: Vec<(String, String)> = made
            .filter(|r| r.request_type.as_deref() == Some("adminAdd"))
            .map(pair)
            .collect();
        let mut invitations = matrix.sim.invitations().await;
        let mut failed: Vec<(String, String)> = audit(&matrix.harness)
            .await
            .iter()
            .filter(|r| r["outcome"] == "failed")
            .map(|r| {
                (
                    r["action"].as_str().unwrap().to_owned(),
                    r["email"].as_str().unwrap_or("-").to_owned(),
                )
            })
            .collect();
        let mut set_aside = Vec::new();
        for (queue, action) in [
            ("invite-poison", "invite"),
            ("assign-poison", "assign"),
            ("remove-poison", "remove"),
            ("reconcile-poison", "plan"),
            ("map-roles-poison", "mapRoles"),
            ("webjobs-blobtrigger-poison", "upload"),
        ] {
            for text in matrix.harness.drain(queue).await.unwrap() {
                let message: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                match message["people"].as_array() {
                    Some(people) => set_aside.extend(people.iter().map(|p| {
                        (
                            action.to_owned(),
                            p["email"].as_str().unwrap_or_default().to_ascii_lowercase(),
                        )
                    })),
                    None => set_aside.push((action.to_owned(), "-".to_owned())),
                }
            }
        }
        for list in [&mut removals, &mut adds, &mut failed, &mut set_aside] {
            list.sort();
        }
        invitations.sort();
        let counters = matrix.harness.counters();
        Self {
            removals,
            adds,
            invitations,
            failed,
            set_aside,
            invocations: counters.invocations.values().sum(),
            failures: counters.failures.values().sum(),
        }
    }

    fn summary(&self) -> String {
        format!(
            "{} invocations ({} answered non-2xx), {} invitations, {} adds, {} removals, {} people set aside",
            self.invocations,
            self.failures,
            self.invitations.len(),
            self.adds.len(),
            self.removals.len(),
            self.set_aside.len()
        )
    }
}

/// Every audit record of the case (its own containers), today's and yesterday's files.
async fn audit(harness: &Harness) -> Vec<Value> {
    let store = harness.store();
    let mut records = Vec::new();
    let entries = match store.list_blobs(&store.layout().audit, "").await {
        Ok(entries) => entries,
        Err(enroll_store::StoreError::NotFound { .. }) => return records,
        Err(error) => panic!("{error}"),
    };
    for entry in entries {
        for line in store.read_audit(&entry.name).await.unwrap() {
            records.push(serde_json::from_str(&line).unwrap());
        }
    }
    records
}

fn both_rosters() -> Vec<(String, &'static str)> {
    vec![
        (key_users_roster(), KEY_USERS_PACKAGE),
        (ALPHA_ROSTER.to_owned(), ALPHA_PACKAGE),
    ]
}

/// Uploads both rosters, converges, and checks the ledger.
async fn converges_with_a_clean_ledger(case: &'static str, sim: SimConfig, twice: bool) -> Ledger {
    let mut matrix = Matrix::start(case, sim, twice).await;
    let rosters = both_rosters();
    matrix.upload(KEY_USERS, &rosters[0].0).await;
    matrix.upload(ALPHA, &rosters[1].0).await;
    let pairs: Vec<(&str, &str)> = rosters.iter().map(|(t, p)| (t.as_str(), *p)).collect();
    let nights = matrix.converge(&pairs).await;
    println!("{case}: matched after {nights} nightly repair(s)");
    matrix.check(&pairs).await
}

#[tokio::test(flavor = "multi_thread")]
async fn fault_rate_0_3_with_throttling() {
    let seed = seed("fault_rate_0_3_with_throttling");
    converges_with_a_clean_ledger(
        "fault_rate_0_3_with_throttling",
        SimConfig {
            fault_rate: 0.3,
            throttle_rps: Some(20),
            seed,
            ..SimConfig::default()
        },
        false,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn five_percent_dropped_connections() {
    let seed = seed("five_percent_dropped_connections");
    converges_with_a_clean_ledger(
        "five_percent_dropped_connections",
        SimConfig {
            drop_rate: 0.05,
            seed,
            ..SimConfig::default()
        },
        false,
    )
    .await;
}

/// A new guest stays invisible to lookups and unknown to entitlement management for 60 s
/// (600 ms on the case's clock, against a 300 ms visibility timeout and five tries).
#[tokio::test(flavor = "multi_thread")]
async fn a_60_second_consistency_delay_for_new_guests() {
    let ledger = converges_with_a_clean_ledger(
        "a_60_second_consistency_delay_for_new_guests",
        SimConfig {
            consistency_delay_ms: millis(scaled(Duration::from_secs(60))),
            ..SimConfig::default()
        },
        false,
    )
    .await;
    assert_eq!(
        ledger.set_aside,
        Vec::new(),
        "the retries outlast the delay"
    );
}

/// Assignment requests take 30 s (300 ms) from submitted to delivered.
#[tokio::test(flavor = "multi_thread")]
async fn a_delivery_delay_for_requests() {
    let ledger = converges_with_a_clean_ledger(
        "a_delivery_delay_for_requests",
        SimConfig {
            delivery_delay_ms: millis(scaled(Duration::from_secs(30))),
            ..SimConfig::default()
        },
        false,
    )
    .await;
    assert_eq!(ledger.set_aside, Vec::new());
}

#[tokio::test(flavor = "multi_thread")]
async fn every_message_delivered_twice_and_out_of_order() {
    let seed = seed("every_message_delivered_twice_and_out_of_order");
    let ledger = converges_with_a_clean_ledger(
        "every_message_delivered_twice_and_out_of_order",
        SimConfig {
            delivery_delay_ms: millis(scaled(Duration::from_secs(10))),
            seed,
            ..SimConfig::default()
        },
        true,
    )
    .await;
    assert_eq!(ledger.set_aside, Vec::new());
}

/// The handler is SIGKILLed while a Graph write of it is in flight (the tenant's latency
/// holds it open; the tenant finishes it, the answer is lost), then restarted by the host.
#[tokio::test(flavor = "multi_thread")]
async fn the_handler_killed_during_a_graph_write_then_restarted() {
    let case = "the_handler_killed_during_a_graph_write_then_restarted";
    let mut matrix = Matrix::start(
        case,
        SimConfig {
            latency_ms: 100,
            ..SimConfig::default()
        },
        false,
    )
    .await;
    let rosters = both_rosters();
    matrix.upload(KEY_USERS, &rosters[0].0).await;
    matrix.upload(ALPHA, &rosters[1].0).await;
    let probe = matrix.sim.probe();
    let watch = matrix
        .harness
        .kill_when(move || probe.writes_in_flight() > 0);
    let pairs: Vec<(&str, &str)> = rosters.iter().map(|(t, p)| (t.as_str(), *p)).collect();
    matrix.converge(&pairs).await;
    assert!(watch.fired(), "{case}: killed during a Graph write");
    assert_eq!(matrix.harness.counters().restarts, 1);
    let ledger = matrix.check(&pairs).await;
    assert_eq!(ledger.set_aside, Vec::new());
}

/// Between the plan and its steps the roster is replaced by one that does not parse: the
/// steps already queued must change nobody. Then a corrected roster (Member 15 back)
/// reaches the tenant.
#[tokio::test(flavor = "multi_thread")]
async fn a_roster_replaced_by_an_invalid_one_mid_run() {
    let case = "a_roster_replaced_by_an_invalid_one_mid_run";
    let mut matrix = Matrix::start(case, SimConfig::default(), false).await;
    matrix.upload(KEY_USERS, &key_users_roster()).await;
    // The plan queues invitations, assignments and removals; then the roster breaks before
    // any of them runs.
    matrix.until_planned().await;
    matrix
        .upload(KEY_USERS, "Ann;ann@contoso.com\nBroken;not an address\n")
        .await;
    matrix.run().await;
    let broken = matrix.sim.settled().await;
    assert_eq!(
        holders(&broken, KEY_USERS_PACKAGE),
        holders(&matrix.before, KEY_USERS_PACKAGE),
        "{case}: nobody added or removed for a roster that does not parse"
    );
    assert_eq!(matrix.sim.invitations().await, Vec::<String>::new());
    let corrected = format!("{}Member 15;m15@contoso.com\n", key_users_roster());
    matrix.upload(KEY_USERS, &corrected).await;
    let pairs = [(corrected.as_str(), KEY_USERS_PACKAGE)];
    matrix.converge(&pairs).await;
    let ledger = matrix.check(&pairs).await;
    assert_eq!(ledger.set_aside, Vec::new());
}

/// Between the plan and its steps the roster is pinned to another package (the mapping
/// file): the queued removals from the package it no longer governs must not happen. The
/// next plan brings the new package in line.
#[tokio::test(flavor = "multi_thread")]
async fn a_roster_remapped_to_another_package_mid_run() {
    let case = "a_roster_remapped_to_another_package_mid_run";
    let mut matrix = Matrix::start(case, SimConfig::default(), false).await;
    let roster = key_users_roster();
    matrix.upload(KEY_USERS, &roster).await;
    matrix.until_planned().await;
    matrix
        .upload(
            "access-packages.json",
            &format!(r#"{{"accessPackages": {{"{KEY_USERS}": "{ALPHA_PACKAGE}"}}}}"#),
        )
        .await;
    matrix.run().await;
    assert_eq!(
        holders(&matrix.sim.settled().await, KEY_USERS_PACKAGE)
            .iter()
            .filter(|id| holders(&matrix.before, KEY_USERS_PACKAGE).contains(id))
            .count(),
        holders(&matrix.before, KEY_USERS_PACKAGE).len(),
        "{case}: nobody removed from the package the roster left"
    );
    let pairs = [(roster.as_str(), ALPHA_PACKAGE)];
    matrix.converge(&pairs).await;
    matrix.check(&pairs).await;
}

/// Requests an earlier run left stuck: an adminAdd that ended `deliveryFailed` a day ago and
/// one still `delivering` two days after it was made (past `ENROLL_REPROCESS_AFTER_MINUTES`).
/// The next run finds and reprocesses them (Graph's `reprocess` on the failed request, and on
/// the stuck one's assignment), so both are delivered and nobody gets a second adminAdd.
#[tokio::test(flavor = "multi_thread")]
async fn requests_left_stuck_in_delivering_and_delivery_failed() {
    let case = "requests_left_stuck_in_delivering_and_delivery_failed";
    let mut before = tenant();
    let ago = |hours: u64| {
        enroll_core::audit::rfc3339(
            std::time::SystemTime::now() - Duration::from_secs(hours * 3600),
        )
    };
    for (id, user, state, assignment, completed) in [
        (
            "rq-ann-failed",
            "u-ann",
            "deliveryFailed",
            "as-ann-failed",
            Some(ago(24)),
        ),
        ("rq-dee-stuck", "u-dee", "delivering", "as-dee-stuck", None),
    ] {
        // Graph makes an adminAdd's assignment when it accepts the request; it fails with it.
        before.assignments.push(Assignment {
            id: assignment.into(),
            state: Some(state.into()),
            target: Some(Subject {
                object_id: Some(user.into()),
                ..Subject::default()
            }),
            access_package: Some(ObjectRef {
                id: KEY_USERS_PACKAGE.into(),
                display_name: None,
            }),
            ..Assignment::default()
        });
        before
            .assignment_requests
            .push(enroll_core::tenant::AssignmentRequest {
                id: id.into(),
                request_type: Some("adminAdd".into()),
                state: Some(state.into()),
                access_package: Some(ObjectRef {
                    id: KEY_USERS_PACKAGE.into(),
                    display_name: None,
                }),
                assignment: Some(enroll_core::tenant::RequestedAssignment {
                    id: Some(assignment.into()),
                    target_id: Some(user.into()),
                    access_package_id: Some(KEY_USERS_PACKAGE.into()),
                    assignment_policy_id: Some("pol-ku".into()),
                    ..Default::default()
                }),
                created_date_time: Some(ago(48)),
                completed_date_time: completed,
                ..Default::default()
            });
    }
    let mut matrix = Matrix::with_tenant(case, SimConfig::default(), false, before).await;
    let roster = format!("{}Dee;dee@contoso.com\n", key_users_roster());
    matrix.upload(KEY_USERS, &roster).await;
    let pairs = [(roster.as_str(), KEY_USERS_PACKAGE)];
    matrix.converge(&pairs).await;
    let ledger = matrix.check(&pairs).await;
    for user in ["u-ann", "u-dee"] {
        assert!(
            !ledger.adds.iter().any(|(_, id)| id == user),
            "{case}: {user}'s stuck request was reprocessed, not requested again"
        );
    }
    let states: Vec<(String, Option<String>)> = matrix
        .sim
        .assignment_requests_made()
        .await
        .into_iter()
        .filter(|r| r.id == "rq-ann-failed" || r.id == "rq-dee-stuck")
        .map(|r| (r.id, r.state))
        .collect();
    assert_eq!(
        states,
        [
            ("rq-ann-failed".to_owned(), Some("delivered".to_owned())),
            ("rq-dee-stuck".to_owned(), Some("delivered".to_owned())),
        ],
        "{case}: both stuck requests were reprocessed and delivered"
    );
}
