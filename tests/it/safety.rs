//! Nobody loses access by accident.
//!
//! - A property test generates tenants (aliases in `proxyAddresses` and `otherMails`, case
//!   variants of non-ASCII letters, addresses two users share, holders without a target or
//!   unknown to the directory) and rosters (valid ones, and byte-level mutations of them),
//!   runs the offline planner and the pipeline `enroll apply` runs (the runner and the steps
//!   over the production Graph client against the simulated tenant), and checks that an
//!   invalid roster removes nobody, that a person listed under any of their addresses is
//!   never removed, that nobody gets a second account, and that both paths plan alike and
//!   reach the same memberships. A failure names its seed; `ENROLL_SAFETY_SEED=<seed>`
//!   replays that one case.
//! - The undo window through the host harness, the real handler and Azurite: a delayed
//!   removal undone by a corrected roster uploaded within the window, and one carried out
//!   after it.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use enroll_core::plan::{PackagePlan, Plan, PlanOptions, RosterSource, plan};
use enroll_core::roster::{Limits, email_key, parse};
use enroll_core::tenant::{
    AccessPackage, Assignment, AssignmentPolicy, Catalog, ObjectRef, Subject, TenantSnapshot, User,
};
use enroll_sim::{SimConfig, start};
use enroll_steps::runner::{RunOptions, run};
use enroll_steps::{StepConfig, World};
use enroll_store::local::LocalStorage;

const ROSTER: &str = "Projects/Alpha.csv";
const PACKAGE: &str = "11111111-0000-4000-8000-00000000a1fa";
const POLICY: &str = "22222222-0000-4000-8000-00000000a1fa";
const CATALOG: &str = "33333333-0000-4000-8000-000000000001";
/// Cases per run: each starts a simulated tenant and runs the whole pipeline.
const CASES: u64 = 64;
/// The first seed; a run covers `FIRST_SEED..FIRST_SEED + CASES`.
const FIRST_SEED: u64 = 9_000;

/// Letters of generated local parts: ASCII, and non-ASCII ones with case pairs (ĳ/Ĳ, é/É,
/// σ/Σ, ö/Ö, ł/Ł), so that case variants need the one rule to stay one person.
const LETTERS: &[char] = &['a', 'k', 'm', 's', 'ĳ', 'é', 'σ', 'ö', 'ł'];
const DOMAINS: &[&str] = &["contoso.com", "fabrikam.com", "northwind.nl"];

/// One generated case: a tenant and a roster for package Alpha.
struct Case {
    seed: u64,
    tenant: TenantSnapshot,
    roster: Vec<u8>,
    mutated: bool,
}

impl Case {
    /// What to print when a property fails, so the case can be read and replayed.
    fn describe(&self) -> String {
        format!(
            "seed {seed} ({}): replay with ENROLL_SAFETY_SEED={seed} cargo test -p enroll-tests --test it safety::\nroster bytes: {:?}\nroster text:\n{}\ntenant: {}",
            if self.mutated {
                "mutated roster"
            } else {
                "valid roster"
            },
            self.roster,
            String::from_utf8_lossy(&self.roster),
            serde_json::to_string_pretty(&self.tenant).unwrap_or_default(),
            seed = self.seed,
        )
    }
}

fn word(rng: &mut fastrand::Rng) -> String {
    (0..rng.usize(2..=5))
        .map(|_| LETTERS[rng.usize(..LETTERS.len())])
        .collect()
}

/// The address with the case of some letters changed (only letters whose other case is one
/// character, as a person retyping it would).
fn case_variant(rng: &mut fastrand::Rng, address: &str) -> String {
    address
        .chars()
        .map(|c| {
            let upper: Vec<char> = c.to_uppercase().collect();
            if rng.bool() && upper.len() == 1 {
                upper[0]
            } else {
                c
            }
        })
        .collect()
}

fn holding(id: &str, user: Option<&str>) -> Assignment {
    Assignment {
        id: id.into(),
        state: Some("delivered".into()),
        target: user.map(|user| Subject {
            id: Some(format!("subject-{user}")),
            object_id: Some(user.into()),
            ..Subject::default()
        }),
        access_package: Some(ObjectRef {
            id: PACKAGE.into(),
            display_name: Some("Alpha".into()),
        }),
        assignment_policy: Some(ObjectRef {
            id: POLICY.into(),
            display_name: None,
        }),
        ..Assignment::default()
    }
}

fn user_id(n: usize) -> String {
    format!("00000000-0000-4000-8000-{n:012}")
}

/// A tenant of a few people known by one or more addresses, and a roster naming some of
/// them (by any address, in any case) and some newcomers; mutated at the byte level half of
/// the time.
fn generate(seed: u64) -> Case {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut users = Vec::new();
    for n in 0..rng.usize(3..=7) {
        let domain = DOMAINS[rng.usize(..DOMAINS.len())];
        let mail = format!("{}{n}@{domain}", word(&mut rng));
        let id = user_id(n);
        let user = match rng.u8(..4) {
            // A member: mail and principal name.
            0 => User {
                id,
                mail: Some(mail.clone()),
                user_principal_name: Some(mail),
                user_type: Some("Member".into()),
                ..User::default()
            },
            // A guest, as an invitation makes one.
            1 => User {
                id,
                mail: Some(mail.clone()),
                user_principal_name: Some(format!(
                    "{}#EXT#@enroll.onmicrosoft.com",
                    mail.replace('@', "_")
                )),
                other_mails: vec![mail],
                user_type: Some("Guest".into()),
                ..User::default()
            },
            // A member with an Exchange alias.
            2 => User {
                id,
                proxy_addresses: vec![
                    format!("SMTP:{mail}"),
                    format!("smtp:{}.alias{n}@{domain}", word(&mut rng)),
                ],
                mail: Some(mail.clone()),
                user_principal_name: Some(mail),
                user_type: Some("Member".into()),
                ..User::default()
            },
            // A member without mail, known by the principal name and another mail.
            _ => User {
                id,
                other_mails: vec![format!("{}.other{n}@fabrikam.com", word(&mut rng))],
                user_principal_name: Some(mail),
                user_type: Some("Member".into()),
                ..User::default()
            },
        };
        users.push(user);
    }
    // Sometimes a second user answers to someone's address: a guest invited with it.
    if rng.u8(..3) == 0 {
        let shared = users[rng.usize(..users.len())]
            .addresses()
            .next()
            .map(|a| a.into_owned())
            .unwrap_or_default();
        users.push(User {
            id: user_id(90),
            user_principal_name: Some(format!(
                "{}#EXT#@enroll.onmicrosoft.com",
                email_key(&shared).replace('@', "_")
            )),
            user_type: Some("Guest".into()),
            ..User::default()
        });
    }
    let mut assignments: Vec<Assignment> = users
        .iter()
        .filter(|_| rng.bool())
        .map(|user| holding(&format!("as-{}", user.id), Some(&user.id)))
        .collect();
    if rng.u8(..3) == 0 {
        assignments.push(holding("as-no-target", None));
    }
    if rng.u8(..3) == 0 {
        assignments.push(holding("as-unknown", Some(&user_id(99))));
    }
    let mut rows = String::new();
    if rng.bool() {
        rows.push_str("Name;Email\n");
    }
    for (n, user) in users.iter().enumerate() {
        if rng.u8(..3) == 0 {
            continue;
        }
        // Any address the person is known by, except the guest `#EXT#` principal name,
        // which is no address a roster could hold.
        let addresses: Vec<String> = user
            .addresses()
            .filter(|a| !a.contains('#'))
            .map(|a| a.into_owned())
            .collect();
        let address = &addresses[rng.usize(..addresses.len())];
        let name = if rng.bool() {
            format!("Person ĳ{n}")
        } else {
            format!("\"Person, {n}\"")
        };
        rows.push_str(&format!("{name};{}\n", case_variant(&mut rng, address)));
    }
    for k in 0..rng.usize(0..=2) {
        rows.push_str(&format!("New {k};{}.new{k}@tailspin.be\n", word(&mut rng)));
    }
    let mut roster = rows.into_bytes();
    let mutated = rng.bool();
    if mutated {
        for _ in 0..rng.usize(1..=3) {
            mutate(&mut rng, &mut roster);
        }
    }
    let catalog = Catalog {
        id: CATALOG.into(),
        display_name: Some("Projects".into()),
    };
    let tenant = TenantSnapshot {
        users,
        catalogs: vec![catalog.clone()],
        access_packages: vec![AccessPackage {
            id: PACKAGE.into(),
            display_name: "Alpha".into(),
            catalog: Some(catalog),
            assignment_policies: vec![AssignmentPolicy {
                id: POLICY.into(),
                display_name: Some("Administrator direct assignments".into()),
                allowed_target_scope: Some("notSpecified".into()),
                ..AssignmentPolicy::default()
            }],
            ..AccessPackage::default()
        }],
        assignments,
        ..TenantSnapshot::default()
    };
    Case {
        seed,
        tenant,
        roster,
        mutated,
    }
}

/// One byte-level change: a byte flipped, dropped or doubled, an ASCII letter's case
/// changed, or a quote, separator, line break or NUL put in.
fn mutate(rng: &mut fastrand::Rng, bytes: &mut Vec<u8>) {
    if bytes.is_empty() {
        bytes.push(b'"');
        return;
    }
    let at = rng.usize(..bytes.len());
    match rng.u8(..7) {
        6 if bytes[at].is_ascii_alphabetic() => bytes[at] ^= 0x20,
        0 => bytes[at] ^= 1 << rng.u8(..8),
        1 => {
            bytes.remove(at);
        }
        2 => bytes.insert(at, bytes[at]),
        3 => bytes.insert(at, b'"'),
        4 => bytes.insert(at, [b';', b',', b'\n', b'@'][rng.usize(..4)]),
        _ => bytes.insert(at, 0),
    }
}

/// Who holds Alpha: the user's id, a new user's address key, or the assignment for a holder
/// without a user.
fn memberships(tenant: &TenantSnapshot, before: &TenantSnapshot) -> BTreeSet<String> {
    let known: BTreeSet<&str> = before.users.iter().map(|u| u.id.as_str()).collect();
    tenant
        .assignments
        .iter()
        .filter(|a| a.is_active() && a.access_package.as_ref().is_some_and(|p| p.id == PACKAGE))
        .map(
            |a| match a.target.as_ref().and_then(|t| t.object_id.as_deref()) {
                Some(id) if known.contains(id) || !tenant.users.iter().any(|u| u.id == id) => {
                    id.to_owned()
                }
                Some(id) => {
                    let user = tenant.users.iter().find(|u| u.id == id);
                    format!(
                        "new:{}",
                        email_key(user.and_then(|u| u.mail.as_deref()).unwrap_or(id))
                    )
                }
                None => format!("assignment:{}", a.id),
            },
        )
        .collect()
}

/// The memberships the offline plan leads to.
fn planned_memberships(before: &TenantSnapshot, package: Option<&PackagePlan>) -> BTreeSet<String> {
    let mut members = memberships(before, before);
    let Some(package) = package.filter(|p| p.blocked.is_none()) else {
        return members;
    };
    for remove in &package.remove {
        members.remove(
            &remove
                .user_id
                .clone()
                .unwrap_or_else(|| format!("assignment:{}", remove.assignment_id)),
        );
    }
    members.extend(package.assign.iter().map(|a| a.user_id.clone()));
    members.extend(
        package
            .invite
            .iter()
            .map(|i| format!("new:{}", email_key(&i.email))),
    );
    members
}

/// What a plan decides, in a form both paths can be compared in.
fn decisions(package: &PackagePlan) -> BTreeMap<&'static str, Vec<String>> {
    let sorted = |mut items: Vec<String>| {
        items.sort();
        items
    };
    BTreeMap::from([
        (
            "blocked",
            package
                .blocked
                .iter()
                .map(|b| b.code().to_owned())
                .collect(),
        ),
        (
            "invite",
            sorted(package.invite.iter().map(|i| email_key(&i.email)).collect()),
        ),
        (
            "assign",
            sorted(package.assign.iter().map(|a| a.user_id.clone()).collect()),
        ),
        (
            "remove",
            sorted(
                package
                    .remove
                    .iter()
                    .map(|r| r.assignment_id.clone())
                    .collect(),
            ),
        ),
        (
            "kept",
            sorted(
                package
                    .kept
                    .iter()
                    .map(|k| k.assignment_id.clone())
                    .collect(),
            ),
        ),
        (
            "skipped",
            sorted(
                package
                    .skipped
                    .iter()
                    .map(|s| email_key(&s.email))
                    .collect(),
            ),
        ),
    ])
}

/// Runs the pipeline `enroll apply` runs against a simulated tenant made from the case.
async fn pipeline(case: &Case) -> (Option<PackagePlan>, TenantSnapshot) {
    let sim = start(SimConfig::default(), case.tenant.clone())
        .await
        .unwrap();
    let rosters = tempfile::tempdir().unwrap();
    let reports = tempfile::tempdir().unwrap();
    let path = rosters.path().join(ROSTER);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, &case.roster).unwrap();
    let world = Arc::new(World::new(
        crate::roles::graph_client(&sim),
        LocalStorage::new(rosters.path(), reports.path()),
        StepConfig {
            max_dequeue_count: 4,
            ..StepConfig::default()
        },
    ));
    let options = RunOptions {
        run_id: format!("safety-{}", case.seed),
        retry_delay: Duration::from_millis(20),
        ..RunOptions::default()
    };
    let summary = run(world, &options, |_| {}).await.unwrap();
    let after = sim.settled().await;
    sim.shutdown().await;
    (summary.plans.into_iter().next(), after)
}

/// The properties for one case; `Err` says which failed.
fn check(
    case: &Case,
    offline: &Plan,
    piped: Option<&PackagePlan>,
    after: &TenantSnapshot,
) -> Result<(), String> {
    let before = &case.tenant;
    let roster = parse(ROSTER, &case.roster, Limits::default());
    let holders_before = memberships(before, before);
    let holders_after = memberships(after, before);
    let offline_package = offline.packages.first();
    if !roster.is_valid() {
        if offline_package.is_some() || piped.is_some() {
            return Err("an invalid roster was planned".into());
        }
        if holders_after != holders_before {
            return Err(format!(
                "an invalid roster changed the holders: {holders_before:?} -> {holders_after:?}"
            ));
        }
        if after.users.len() != before.users.len() {
            return Err("an invalid roster invited someone".into());
        }
        return Ok(());
    }
    let (Some(offline_package), Some(piped)) = (offline_package, piped) else {
        return Err(format!(
            "a valid roster was not planned: offline {:?}, pipeline {piped:?}",
            offline.errors
        ));
    };
    // Both paths plan alike and reach the same memberships.
    if decisions(offline_package) != decisions(piped) {
        return Err(format!(
            "the paths plan differently:\noffline  {:?}\npipeline {:?}",
            decisions(offline_package),
            decisions(piped)
        ));
    }
    let expected = planned_memberships(before, Some(offline_package));
    if holders_after != expected {
        return Err(format!(
            "the pipeline reached other memberships than the plan: planned {expected:?}, reached {holders_after:?}"
        ));
    }
    for person in &roster.people {
        // Listed under any of their addresses: never removed.
        for user in before.users.iter().filter(|u| u.answers_to(&person.email)) {
            if holders_before.contains(&user.id) && !holders_after.contains(&user.id) {
                return Err(format!(
                    "{} is listed as {} and was removed",
                    user.id, person.email
                ));
            }
            if offline_package
                .remove
                .iter()
                .any(|r| r.user_id.as_deref() == Some(&user.id))
            {
                return Err(format!(
                    "the plan removes {} though the roster lists {}",
                    user.id, person.email
                ));
            }
        }
        // Nobody gets a second account.
        let known = before
            .users
            .iter()
            .filter(|u| u.answers_to(&person.email))
            .count();
        let now = after
            .users
            .iter()
            .filter(|u| u.answers_to(&person.email))
            .count();
        if (known > 0 && now != known) || now > known.max(1) {
            return Err(format!(
                "{} had {known} account(s) and now has {now}",
                person.email
            ));
        }
    }
    Ok(())
}

/// Runs one case and checks it; returns its shape (the roster's, and what the plan did).
async fn one_case(seed: u64) -> String {
    let case = generate(seed);
    let roster = parse(ROSTER, &case.roster, Limits::default());
    let sources = vec![RosterSource {
        path: ROSTER.into(),
        version: "v1".into(),
        roster: roster.clone(),
    }];
    let offline = plan(&sources, &case.tenant, &PlanOptions::default());
    let (piped, after) = pipeline(&case).await;
    if let Err(problem) = check(&case, &offline, piped.as_ref(), &after) {
        panic!("{problem}\n{}", case.describe());
    }
    let outcome = match offline.packages.first() {
        None => "not planned".to_owned(),
        Some(p) if p.blocked.is_some() => format!(
            "blocked ({})",
            p.blocked.map(|b| b.code()).unwrap_or_default()
        ),
        Some(p) => format!(
            "applied{}{}{}",
            if p.remove.is_empty() {
                ""
            } else {
                ", removals"
            },
            if p.skipped.is_empty() {
                ""
            } else {
                ", shared address skipped"
            },
            if p.kept.is_empty() {
                ""
            } else {
                ", holder kept"
            },
        ),
    };
    let roster_shape = match (case.mutated, roster.is_valid()) {
        (false, _) => "valid",
        (true, true) => "mutated, still valid",
        (true, false) => "mutated, invalid",
    };
    format!("{roster_shape}: {outcome}")
}

#[tokio::test(flavor = "multi_thread")]
async fn rosters_and_tenants_of_every_shape_never_cost_anyone_access() {
    let seeds: Vec<u64> = match std::env::var("ENROLL_SAFETY_SEED") {
        Ok(seed) => vec![seed.trim().parse().expect("ENROLL_SAFETY_SEED is a number")],
        Err(_) => (FIRST_SEED..FIRST_SEED + CASES).collect(),
    };
    let mut shapes = BTreeMap::<String, usize>::new();
    for seed in seeds {
        let shape = one_case(seed).await;
        *shapes.entry(shape).or_default() += 1;
    }
    eprintln!("cases by shape: {shapes:?}");
}

// --- The undo window through the harness, the real handler and Azurite ---------------------

mod undo_window {
    use std::time::{Duration, Instant};

    use enroll_sim::SimConfig;

    use crate::e2e::{ALPHA, ALPHA_ROSTER, E2e};
    use crate::holders;

    /// Polls until all that is left is `delayed` invisible messages (the Remove messages of
    /// the undo window): everything else the uploads started is done.
    async fn run_until_only_delayed(e2e: &mut E2e, delayed: u64) {
        let started = Instant::now();
        loop {
            let invoked = e2e.harness.poll_once().await.unwrap();
            let removes = e2e.harness.counters().invocations.get("Remove").copied();
            assert_eq!(
                removes, None,
                "the undo window passed before the test could look (a slow machine?)"
            );
            if invoked == 0 && e2e.harness.pending_messages().await.unwrap() == delayed {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "never down to {delayed} delayed message(s)"
            );
            if invoked == 0 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }

    async fn dee_holds_alpha(e2e: &E2e) -> bool {
        holders(&e2e.settled().await, "pkg-alpha-manager").contains(&"u-dee".to_owned())
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_delayed_removal_is_undone_by_a_corrected_roster_uploaded_within_the_window() {
        let mut e2e = E2e::with_env(SimConfig::default(), &[("ENROLL_REMOVAL_DELAY", "6s")]).await;
        // Dee is left out of the roster by mistake.
        e2e.upload(ALPHA, ALPHA_ROSTER).await;
        run_until_only_delayed(&mut e2e, 1).await;
        assert!(dee_holds_alpha(&e2e).await, "the removal waits");
        let report = e2e.report(ALPHA).await;
        assert!(report.contains("Removals wait until"), "{report}");
        assert!(
            report.contains("dee@contoso.com (assignment `as-dee`), not before"),
            "{report}"
        );

        // The mistake is corrected before the window closes.
        e2e.upload(ALPHA, &format!("{ALPHA_ROSTER}Dee;dee@contoso.com\n"))
            .await;
        e2e.run().await;

        assert_eq!(e2e.harness.counters().invocations.get("Remove"), Some(&1));
        assert!(
            dee_holds_alpha(&e2e).await,
            "the corrected roster keeps Dee"
        );
        let removals = e2e
            .settled()
            .await
            .assignment_requests
            .iter()
            .filter(|r| r.request_type.as_deref() == Some("adminRemove"))
            .count();
        assert_eq!(removals, 0);
        let audit = e2e.audit_today().await;
        assert!(
            audit
                .iter()
                .any(|line| line.contains("\"action\":\"remove\"")
                    && line.contains("dee@contoso.com")
                    && line.contains("\"outcome\":\"skipped\"")
                    && line.contains("back in the roster")),
            "{audit:#?}"
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_delayed_removal_is_carried_out_once_the_window_has_passed() {
        let mut e2e = E2e::with_env(SimConfig::default(), &[("ENROLL_REMOVAL_DELAY", "4s")]).await;
        e2e.upload(ALPHA, ALPHA_ROSTER).await;
        run_until_only_delayed(&mut e2e, 1).await;
        assert!(dee_holds_alpha(&e2e).await, "the removal waits");

        e2e.run().await;

        assert_eq!(e2e.harness.counters().invocations.get("Remove"), Some(&1));
        assert!(
            !dee_holds_alpha(&e2e).await,
            "Dee is removed after the window"
        );
        assert_eq!(e2e.changes_left().await, 0);
    }
}
