//! End to end as it will run in Azure: Azurite, the Functions host stand-in (harness)
//! driving the real `handler` binary through `function_definitions/`, and the simulated
//! tenant behind the production Graph client.

use std::path::Path;
use std::time::Duration;

use crate::holders;
use enroll_core::plan::{PlanOptions, RosterSource, plan};
use enroll_core::roster::{Limits, content_version, parse};
use enroll_core::tenant::TenantSnapshot;
use enroll_harness::{Harness, HarnessConfig};
use enroll_sim::{SimConfig, SimHandle, start};

pub(crate) const ALPHA: &str = "Projects/Project Alpha - Manager.csv";
const KEY_USERS: &str = "Projects/Key Users.csv";

fn storage() -> String {
    std::env::var("ENROLL_TEST_STORAGE").unwrap_or_else(|_| {
        panic!("ENROLL_TEST_STORAGE is not set: the end-to-end tests need Azurite; run them with ./scripts/test")
    })
}

fn golden_tenant() -> TenantSnapshot {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/golden/tenant.json");
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

pub(crate) struct E2e {
    pub(crate) sim: SimHandle,
    pub(crate) harness: Harness,
    rosters: Vec<(String, String)>,
    /// The handler's stdout and stderr.
    log: tempfile::NamedTempFile,
}

impl E2e {
    async fn new(sim_config: SimConfig) -> Self {
        Self::with_env(sim_config, &[]).await
    }

    pub(crate) async fn with_env(sim_config: SimConfig, extra: &[(&str, &str)]) -> Self {
        Self::with_tenant(sim_config, golden_tenant(), extra).await
    }

    async fn with_tenant(
        sim_config: SimConfig,
        tenant: TenantSnapshot,
        extra: &[(&str, &str)],
    ) -> Self {
        Self::with_credentials(sim_config, tenant, SimHandle::client_settings, extra).await
    }

    /// `credentials` gives the handler the simulated tenant's settings: its client secret
    /// ([`SimHandle::client_settings`]) or a managed identity.
    async fn with_credentials(
        sim_config: SimConfig,
        tenant: TenantSnapshot,
        credentials: fn(&SimHandle) -> Vec<(String, String)>,
        extra: &[(&str, &str)],
    ) -> Self {
        let sim = start(sim_config, tenant).await.unwrap();
        let prefix = format!("e{:08x}-", fastrand::u32(..));
        let mut config = HarnessConfig::new(
            crate::handler_binary(),
            env!("CARGO_MANIFEST_DIR"),
            storage(),
        );
        config.prefix = prefix;
        config.visibility_timeout = Some(Duration::from_millis(200));
        let log = tempfile::NamedTempFile::new().unwrap();
        config.handler_log = Some(log.path().to_owned());
        config.env = credentials(&sim);
        let settings = [
            ("ENROLL_INVITE_DOMAINS", "*"),
            ("ENROLL_GRAPH_RETRY_BASE_MS", "20"),
            ("ENROLL_GRAPH_MAX_ATTEMPTS", "10"),
        ];
        config.env.extend(
            settings
                .iter()
                .chain(extra)
                .map(|(k, v)| (k.to_string(), v.to_string())),
        );
        let harness = Harness::start(config).await.unwrap();
        Self {
            sim,
            harness,
            rosters: Vec::new(),
            log,
        }
    }

    pub(crate) async fn upload(&mut self, name: &str, text: &str) {
        self.harness
            .upload_roster(name, text.as_bytes().to_vec())
            .await
            .unwrap();
        self.rosters.retain(|(n, _)| n != name);
        self.rosters.push((name.to_owned(), text.to_owned()));
    }

    pub(crate) async fn run(&mut self) {
        self.harness
            .run_until_idle(Duration::from_secs(60))
            .await
            .unwrap();
    }

    pub(crate) async fn settled(&self) -> TenantSnapshot {
        self.sim.settled().await
    }

    /// Changes a fresh plan of the uploaded rosters would still make.
    pub(crate) async fn changes_left(&self) -> usize {
        let tenant = self.settled().await;
        let sources: Vec<RosterSource> = self
            .rosters
            .iter()
            .map(|(name, text)| RosterSource {
                path: name.clone(),
                version: content_version(text.as_bytes()),
                roster: parse(name, text.as_bytes(), Limits::default()),
            })
            .collect();
        let result = plan(&sources, &tenant, &PlanOptions::default());
        result
            .packages
            .iter()
            .filter(|p| p.blocked.is_none())
            .map(|p| p.invite.len() + p.assign.len() + p.remove.len())
            .sum()
    }

    /// Today's audit trail, one JSON line per record.
    pub(crate) async fn audit_today(&self) -> Vec<String> {
        let day = &enroll_core::audit::rfc3339(std::time::SystemTime::now())[..10];
        self.harness
            .store()
            .read_audit(&format!("{day}.jsonl"))
            .await
            .unwrap()
    }

    /// The Markdown report for the roster's current version.
    pub(crate) async fn report(&self, roster: &str) -> String {
        let store = self.harness.store();
        let container = store.layout().reports.clone();
        let current = store.get_roster(roster, None).await.unwrap().etag;
        let name = enroll_store::pipeline::report_name(roster);
        for entry in store.list_blobs(&container, "").await.unwrap() {
            if !entry.name.ends_with(&format!("/{name}.json")) {
                continue;
            }
            let json: serde_json::Value = serde_json::from_slice(
                &store
                    .get_blob(&container, &entry.name, None)
                    .await
                    .unwrap()
                    .bytes,
            )
            .unwrap();
            if json["rosterVersion"] == current.as_str() {
                let markdown = entry.name.replace(".json", ".md");
                return String::from_utf8(
                    store
                        .get_blob(&container, &markdown, None)
                        .await
                        .unwrap()
                        .bytes,
                )
                .unwrap();
            }
        }
        panic!("no report for {roster} at version {}", current.as_str());
    }

    /// Today's audit records.
    async fn audit(&self) -> Vec<serde_json::Value> {
        let day = &enroll_core::audit::rfc3339(std::time::SystemTime::now())[..10];
        let lines = match self
            .harness
            .store()
            .read_audit(&format!("{day}.jsonl"))
            .await
        {
            Ok(lines) => lines,
            Err(enroll_store::StoreError::NotFound { .. }) => Vec::new(),
            Err(error) => panic!("{error}"),
        };
        lines
            .iter()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    }

    /// Every `failed` audit record of today, as `action email`.
    async fn failed_records(&self) -> Vec<String> {
        self.audit()
            .await
            .iter()
            .filter(|record| record["outcome"] == "failed")
            .map(|record| {
                format!(
                    "{} {}",
                    record["action"].as_str().unwrap(),
                    record["email"].as_str().unwrap_or("-")
                )
            })
            .collect()
    }

    fn assert_clean_protocol(&self) {
        let counters = self.harness.counters();
        assert!(
            counters.undeclared_outputs.is_empty(),
            "{:?}",
            counters.undeclared_outputs
        );
    }
}

pub(crate) const ALPHA_ROSTER: &str =
    "Ann;ann@contoso.com\nBob;bob@fabrikam.com\nEve;eve@contoso.com\nFay;fay@tailspin.be\n";

#[tokio::test(flavor = "multi_thread")]
async fn first_upload_then_an_edit_reach_the_tenant() {
    let mut e2e = E2e::new(SimConfig::default()).await;
    e2e.upload(ALPHA, ALPHA_ROSTER).await;
    e2e.run().await;
    assert_eq!(e2e.changes_left().await, 0);
    let tenant = e2e.settled().await;
    assert!(
        !holders(&tenant, "pkg-alpha-manager").contains(&"u-dee".to_owned()),
        "Dee is removed"
    );
    assert_eq!(holders(&tenant, "pkg-alpha-manager").len(), 4);
    let counters = e2e.harness.counters();
    for function in ["RosterUploaded", "Plan", "Invite", "Assign", "Remove"] {
        assert!(
            counters.invocations.get(function).copied().unwrap_or(0) >= 1,
            "{function} ran: {:?}",
            counters.invocations
        );
    }
    // An edit: Ann and Fay leave, Cyd and Gus join.
    e2e.upload(
        ALPHA,
        "Bob;bob@fabrikam.com\nCyd;cyd@northwind.nl\nEve;eve@contoso.com\nGus;gus@woodgrove.pl\n",
    )
    .await;
    e2e.run().await;
    assert_eq!(e2e.changes_left().await, 0);
    let alpha = holders(&e2e.settled().await, "pkg-alpha-manager");
    assert!(alpha.contains(&"u-cyd".to_owned()) && !alpha.contains(&"u-ann".to_owned()));
    assert!(
        e2e.report(ALPHA).await.contains("| 4 | 1 | 1 | 2 | 2 |"),
        "{}",
        e2e.report(ALPHA).await
    );
    // The handler logs one JSON line per invocation, with its status and time.
    let log = std::fs::read_to_string(e2e.log.path()).unwrap();
    let lines: Vec<serde_json::Value> = log
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    assert!(
        lines.iter().any(|l| l["function"] == "Plan"
            && l["status"] == 200
            && l["ms"].is_number()
            && l["invocation_id"].is_string()),
        "{log}"
    );
    assert!(
        !log.contains("enroll-sim-secret"),
        "no secret in the handler's output"
    );
    e2e.assert_clean_protocol();
}

/// In Azure the handler holds no secret: it reaches Graph with the Function App's managed
/// identity, through the endpoint and header App Service gives it.
#[tokio::test(flavor = "multi_thread")]
async fn the_handler_reaches_graph_with_the_managed_identity() {
    let mut e2e = E2e::with_credentials(
        SimConfig::default(),
        golden_tenant(),
        SimHandle::managed_identity_settings,
        &[],
    )
    .await;
    e2e.upload(ALPHA, ALPHA_ROSTER).await;
    e2e.run().await;
    assert_eq!(e2e.changes_left().await, 0);
    let log = std::fs::read_to_string(e2e.log.path()).unwrap();
    assert!(
        !log.contains("enroll-sim-identity"),
        "the identity header stays out of the handler's output: {log}"
    );
    e2e.assert_clean_protocol();
}

#[tokio::test(flavor = "multi_thread")]
async fn the_removal_guard_and_an_invalid_roster_change_nothing_and_say_why() {
    let mut e2e = E2e::with_env(
        SimConfig::default(),
        &[
            ("ENROLL_MAX_REMOVALS", "0"),
            ("ENROLL_MAX_REMOVAL_PERCENT", "10"),
        ],
    )
    .await;
    let before = e2e.settled().await;
    e2e.upload(ALPHA, "Ann;ann@contoso.com\nNew;new@fabrikam.com\n")
        .await;
    e2e.upload(KEY_USERS, "Bob;bob@fabrikam.com\nBroken;nope\n")
        .await;
    e2e.run().await;
    let after = e2e.settled().await;
    assert_eq!(
        holders(&after, "pkg-alpha-manager"),
        holders(&before, "pkg-alpha-manager")
    );
    assert_eq!(
        holders(&after, "pkg-key-users"),
        holders(&before, "pkg-key-users")
    );
    assert_eq!(
        after.users.len(),
        before.users.len(),
        "nobody invited from a blocked package"
    );
    let guard = e2e.report(ALPHA).await;
    assert!(
        guard.contains("Blocked (removal_guard): nothing was changed."),
        "{guard}"
    );
    let invalid = e2e.report(KEY_USERS).await;
    assert!(invalid.contains("| 2 | 2 | `invalid_email` |"), "{invalid}");
    e2e.assert_clean_protocol();
}

#[tokio::test(flavor = "multi_thread")]
async fn duplicate_messages_and_quick_successive_uploads_end_at_the_latest_roster() {
    let mut e2e = E2e::new(SimConfig {
        delivery_delay_ms: 50,
        ..SimConfig::default()
    })
    .await;
    e2e.upload(ALPHA, ALPHA_ROSTER).await;
    // The blob trigger sees only the latest version if both land before it polls; plan the
    // first explicitly, as a delivery that raced the second upload would.
    let first =
        serde_json::json!({"v": 1, "runId": "r1", "roster": ALPHA, "reason": "upload"}).to_string();
    e2e.harness.enqueue("reconcile", &first).await.unwrap();
    e2e.harness.enqueue("reconcile", &first).await.unwrap();
    // Ann stays: a roster that keeps none of the holders would trip the all_holders guard.
    e2e.upload(
        ALPHA,
        "Ann;ann@contoso.com\nBob;bob@fabrikam.com\nCyd;cyd@northwind.nl\n",
    )
    .await;
    e2e.run().await;
    assert_eq!(
        e2e.changes_left().await,
        0,
        "the tenant ends at the later roster"
    );
    let alpha = holders(&e2e.settled().await, "pkg-alpha-manager");
    assert_eq!(
        alpha,
        vec!["u-ann".to_owned(), "u-bob".to_owned(), "u-cyd".to_owned()]
    );
    // Every request the tenant accepted, delivered ones included: Bob was asked for once.
    let requests = e2e.sim.assignment_requests_made().await;
    let adds_for_bob = requests
        .iter()
        .filter(|r| {
            r.request_type.as_deref() == Some("adminAdd")
                && r.target_object_id() == Some("u-bob")
                && r.access_package_id() == Some("pkg-alpha-manager")
        })
        .count();
    assert_eq!(adds_for_bob, 1, "Bob requested {adds_for_bob} times");
    e2e.assert_clean_protocol();
}

#[tokio::test(flavor = "multi_thread")]
async fn throttling_and_fault_storms_converge() {
    let config = SimConfig {
        throttle_rps: Some(30),
        fault_rate: 0.2,
        consistency_delay_ms: 300,
        delivery_delay_ms: 50,
        seed: 11,
        ..SimConfig::default()
    };
    let mut e2e = E2e::new(config).await;
    let roster: String = (0..25)
        .map(|i| format!("Guest {i};guest{i}@fabrikam.com\n"))
        .collect();
    e2e.upload(KEY_USERS, &roster).await;
    e2e.upload(ALPHA, ALPHA_ROSTER).await;
    e2e.run().await;
    // A message may have run out of tries in the storm; the nightly timer picks up the rest.
    if e2e.changes_left().await > 0 {
        e2e.harness.fire_timer("Scheduled").await.unwrap();
        e2e.run().await;
    }
    assert_eq!(e2e.changes_left().await, 0);
    let key_users = holders(&e2e.settled().await, "pkg-key-users");
    assert_eq!(key_users.len(), 25);
    e2e.assert_clean_protocol();
}

/// The handler is SIGKILLed while the simulated tenant has a Graph write of it in flight
/// (its latency holds the request open); Graph finishes the write, the answer is lost. The
/// host stand-in restarts the handler and delivers the message again after the visibility
/// timeout; nothing may be lost or done twice.
#[tokio::test(flavor = "multi_thread")]
async fn a_handler_killed_mid_run_loses_and_doubles_nothing() {
    let mut e2e = E2e::new(SimConfig {
        latency_ms: 150,
        ..SimConfig::default()
    })
    .await;
    // Bob keeps his place, so the only writes are the invitations and the assignments.
    let roster: String = (0..40)
        .map(|i| format!("Guest {i};guest{i}@adatum.de\n"))
        .chain(["Bob;bob@fabrikam.com\n".to_owned()])
        .collect();
    e2e.upload(KEY_USERS, &roster).await;
    let probe = e2e.sim.probe();
    let watch = e2e.harness.kill_when(move || probe.writes_in_flight() > 0);
    e2e.run().await;
    assert!(
        watch.fired(),
        "the handler was killed while a Graph write was in flight"
    );
    let counters = e2e.harness.counters();
    assert_eq!(counters.restarts, 1, "the host stand-in started it again");
    assert!(
        counters.failures.values().sum::<u64>() >= 1,
        "an invocation was cut off: {:?}",
        counters.failures
    );
    assert_eq!(e2e.changes_left().await, 0, "nothing lost");
    // Nothing doubled: one invitation and one adminAdd request per guest.
    let invitations = e2e.sim.invitations().await;
    let mut unique = invitations.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(
        (invitations.len(), unique.len()),
        (40, 40),
        "{invitations:?}"
    );
    let tenant = e2e.settled().await;
    let guests: Vec<String> = tenant
        .users
        .iter()
        .filter(|u| u.mail.as_deref().is_some_and(|m| m.ends_with("@adatum.de")))
        .map(|u| u.id.clone())
        .collect();
    assert_eq!(guests.len(), 40);
    let mut requested: Vec<String> = e2e
        .sim
        .assignment_requests_made()
        .await
        .iter()
        .filter(|r| {
            r.request_type.as_deref() == Some("adminAdd")
                && r.access_package_id() == Some("pkg-key-users")
        })
        .filter_map(|r| r.target_object_id().map(str::to_owned))
        .filter(|id| guests.contains(id))
        .collect();
    requested.sort();
    let all = requested.len();
    requested.dedup();
    assert_eq!((all, requested.len()), (40, 40), "one adminAdd per guest");
    let key_users = holders(&tenant, "pkg-key-users");
    assert_eq!(
        key_users.iter().filter(|id| guests.contains(id)).count(),
        40,
        "every guest holds the package"
    );
    assert!(key_users.contains(&"u-bob".to_owned()));
    assert_eq!(e2e.failed_records().await, Vec::<String>::new());
    // The cut-off write took effect though its answer was lost: the handler learnt of
    // those invitations only on the next try, which found the guests.
    let audit = e2e.audit().await;
    let invites = |outcome: &str| {
        audit
            .iter()
            .filter(|r| r["action"] == "invite" && r["outcome"] == outcome)
            .count()
    };
    assert_eq!(invites("done") + invites("alreadyDone"), 40);
    assert!(
        invites("alreadyDone") > 0,
        "no invitation's answer was lost: {} done",
        invites("done")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_nightly_timer_repairs_drift_made_behind_the_systems_back() {
    let mut e2e = E2e::new(SimConfig::default()).await;
    e2e.upload(ALPHA, ALPHA_ROSTER).await;
    e2e.run().await;
    assert_eq!(e2e.changes_left().await, 0);
    // Someone removes Bob's assignment by hand in the portal.
    let bob = e2e
        .settled()
        .await
        .assignments
        .into_iter()
        .find(|a| {
            a.is_active()
                && a.target.as_ref().and_then(|t| t.object_id.as_deref()) == Some("u-bob")
                && a.access_package
                    .as_ref()
                    .is_some_and(|p| p.id == "pkg-alpha-manager")
        })
        .unwrap();
    let client = reqwest::Client::new();
    let token: serde_json::Value = client
        .post(format!(
            "{}/{}/oauth2/v2.0/token",
            e2e.sim.base_url(),
            e2e.sim.tenant_id()
        ))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "enroll-sim-client"),
            ("client_secret", "enroll-sim-secret"),
            ("scope", "https://graph.microsoft.com/.default"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let removed = client
        .post(format!(
            "{}/v1.0/identityGovernance/entitlementManagement/assignmentRequests",
            e2e.sim.base_url()
        ))
        .bearer_auth(token["access_token"].as_str().unwrap())
        .json(&serde_json::json!({"requestType": "adminRemove", "assignment": {"id": bob.id}}))
        .send()
        .await
        .unwrap();
    assert_eq!(removed.status(), 201);
    assert_eq!(e2e.changes_left().await, 1, "drift");
    e2e.harness.fire_timer("Scheduled").await.unwrap();
    e2e.run().await;
    assert_eq!(e2e.changes_left().await, 0, "repaired");
    assert!(holders(&e2e.settled().await, "pkg-alpha-manager").contains(&"u-bob".to_owned()));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_message_that_keeps_failing_ends_in_the_poison_queue_and_the_audit_says_so() {
    let mut e2e = E2e::with_env(
        SimConfig::default(),
        &[(
            "ENROLL_INVITE_DOMAINS",
            "contoso.com,fabrikam.com,tailspin.be",
        )],
    )
    .await;
    e2e.upload(
        ALPHA,
        &format!("{ALPHA_ROSTER}Nobody;nobody@elsewhere.org\n"),
    )
    .await;
    e2e.run().await;
    let report = e2e.report(ALPHA).await;
    assert!(report.contains("nobody@elsewhere.org: not in the tenant, and its domain is not one invitations may go to"), "{report}");
    // An assign message for someone the directory never learns about, next to someone fine.
    let message = serde_json::json!({
        "v": 1, "runId": "r-nobody", "roster": ALPHA, "etag": "x",
        "accessPackageId": "pkg-alpha-manager", "assignmentPolicyId": "pol-direct",
        "people": [{"email": "nobody@elsewhere.org"}, {"email": "bob@fabrikam.com", "userId": "u-bob"}]
    });
    e2e.harness
        .enqueue("assign", &message.to_string())
        .await
        .unwrap();
    e2e.run().await;
    let poison = e2e.harness.peek("assign-poison").await.unwrap();
    assert_eq!(poison.len(), 1, "{poison:?}");
    assert!(
        poison[0].contains("nobody@elsewhere.org") && !poison[0].contains("bob@fabrikam.com"),
        "only the failing person is set aside: {}",
        poison[0]
    );
    assert_eq!(
        e2e.harness
            .counters()
            .failures
            .get("Assign")
            .copied()
            .unwrap_or(0),
        4,
        "tries 1-4 asked for a retry; the last set the person aside"
    );
    // As the host does, each try came a visibility timeout (200 ms here) after the last.
    let deliveries = &e2e.harness.counters().deliveries;
    let (id, _, _) = deliveries.iter().find(|(_, count, _)| *count == 5).unwrap();
    let tries: Vec<std::time::Instant> = deliveries
        .iter()
        .filter(|(other, _, _)| other == id)
        .map(|(_, _, at)| *at)
        .collect();
    assert_eq!(tries.len(), 5);
    for pair in tries.windows(2) {
        let gap = pair[1] - pair[0];
        assert!(
            gap >= Duration::from_millis(200),
            "redelivered after {gap:?}"
        );
    }
    let audit = e2e.audit_today().await;
    assert!(
        audit
            .iter()
            .any(|line| line.contains("nobody@elsewhere.org")
                && line.contains("\"outcome\":\"failed\"")
                && line.contains("gave up after 5 tries")),
        "{audit:#?}"
    );
    // The run's report shows it, next to the plan's report.
    let store = e2e.harness.store();
    let failures = store
        .get_report_file("r-nobody", "Projects__Project Alpha - Manager.failures.md")
        .await
        .unwrap();
    let failures = String::from_utf8(failures.bytes).unwrap();
    assert!(
        failures.contains("assign `nobody@elsewhere.org`: gave up after 5 tries"),
        "{failures}"
    );
    assert!(!failures.contains("bob@fabrikam.com"), "{failures}");
    e2e.assert_clean_protocol();
}

/// role id → the groups holding it.
fn role_holders(tenant: &TenantSnapshot) -> std::collections::BTreeMap<String, Vec<String>> {
    let mut holders: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for a in &tenant.app_role_assignments {
        holders
            .entry(a.app_role_id.clone())
            .or_default()
            .push(a.principal_id.clone());
    }
    holders
}

#[tokio::test(flavor = "multi_thread")]
async fn app_roles_from_an_uploaded_manifest_and_drift_repaired_by_the_nightly_timer() {
    use crate::roles::{APP_OBJECT, graph_client, group_id, manifest, role_id, roles, tenant};
    use enroll_graph::NewGroupAppRoleAssignment;

    let mut e2e = E2e::with_tenant(SimConfig::default(), tenant(Vec::new(), Vec::new()), &[]).await;
    e2e.harness
        .upload_manifest("projects.json", manifest(&roles()))
        .await
        .unwrap();
    e2e.run().await;
    let state = e2e.sim.snapshot().await;
    assert_eq!(state.applications[0].app_roles.len(), 62);
    let holders = role_holders(&state);
    assert_eq!(holders.len(), 62);
    assert!((0..62).all(|n| holders[&role_id(n)] == vec![group_id(n)]));
    let counters = e2e.harness.counters();
    for function in ["ManifestUploaded", "MapRoles"] {
        assert_eq!(
            counters.invocations.get(function).copied(),
            Some(1),
            "{function}: {:?}",
            counters.invocations
        );
    }

    // Behind the system's back: a group loses its role, another gets a wrong one, and a
    // role is renamed in the portal (disabled first, as Graph demands).
    let graph = graph_client(&e2e.sim);
    let gone = state
        .app_role_assignments
        .iter()
        .find(|a| a.principal_id == group_id(7))
        .unwrap();
    let removed = graph
        .remove_group_app_role_assignments(&[(group_id(7), gone.id.clone())])
        .await;
    assert!(removed[0].1.is_ok());
    let wrong = graph
        .add_group_app_role_assignments(&[NewGroupAppRoleAssignment {
            principal_id: group_id(3),
            resource_id: crate::roles::SP.into(),
            app_role_id: role_id(4),
        }])
        .await;
    assert!(wrong[0].1.is_ok());
    let mut edited = roles();
    edited[10].is_enabled = false;
    graph.update_app_roles(APP_OBJECT, &edited).await.unwrap();
    edited[10].value = Some("Portal.Edit".into());
    graph.update_app_roles(APP_OBJECT, &edited).await.unwrap();
    // An upload of something else in the container changes nothing by itself.
    e2e.harness
        .upload_manifest("notes.txt", b"not a manifest".to_vec())
        .await
        .unwrap();
    e2e.run().await;
    assert_ne!(
        e2e.sim.snapshot().await.applications[0].app_roles[10]
            .value
            .as_deref(),
        Some(roles()[10].value.as_deref().unwrap()),
        "nothing ran before the timer"
    );

    e2e.harness.fire_timer("Scheduled").await.unwrap();
    e2e.run().await;
    let state = e2e.sim.snapshot().await;
    let role = &state.applications[0].app_roles[10];
    assert_eq!(
        role.value,
        roles()[10].value,
        "the manifest's value is back"
    );
    assert!(role.is_enabled);
    let holders = role_holders(&state);
    assert!(
        (0..62).all(|n| holders[&role_id(n)] == vec![group_id(n)]),
        "every group holds exactly its role again: {holders:?}"
    );
    assert_eq!(state.app_role_assignments.len(), 62);
    assert_eq!(
        e2e.harness.counters().invocations.get("MapRoles").copied(),
        Some(2)
    );

    // Uploading the mapping file maps its manifest: KeyUser moves to Helpdesk.
    e2e.harness
        .upload_manifest(
            "projects.mapping.json",
            r#"{"roles": {"KeyUser": "Helpdesk"}}"#.as_bytes().to_vec(),
        )
        .await
        .unwrap();
    e2e.run().await;
    assert_eq!(
        e2e.harness.counters().invocations.get("MapRoles").copied(),
        Some(3)
    );
    let holders = role_holders(&e2e.sim.snapshot().await);
    assert_eq!(
        holders[&role_id(60)],
        vec![group_id(60), crate::roles::guid(0x61, 1)],
        "APP-KeyUser is outside the mapping now and keeps its role"
    );
    assert!(
        e2e.harness
            .peek("map-roles-poison")
            .await
            .unwrap()
            .is_empty()
    );
    e2e.assert_clean_protocol();
}
