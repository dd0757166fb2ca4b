//! The steps end to end in one process (the runner `enroll apply` uses), over the real Graph
//! client and the simulated tenant: level-triggered, idempotent, guarded.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::holders;
use enroll_core::audit::{Action, Outcome};
use enroll_core::messages::{AssignPerson, ChangeContext, ChangeMessage, RemovePerson, VERSION};
use enroll_core::plan::{PackagePlan, PlanOptions, plan};
use enroll_core::tenant::TenantSnapshot;
use enroll_graph::GraphClient;
use enroll_sim::{SimConfig, SimHandle, start};
use enroll_steps::runner::{RunOptions, RunSummary, run};
use enroll_steps::{Attempt, StepConfig, World};
use enroll_store::local::LocalStorage;

fn golden_tenant() -> TenantSnapshot {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/golden/tenant.json");
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

struct Setup {
    sim: SimHandle,
    rosters: tempfile::TempDir,
    reports: tempfile::TempDir,
    graph: GraphClient,
}

impl Setup {
    async fn new(config: SimConfig) -> Self {
        Self::with_tenant(config, golden_tenant()).await
    }

    async fn with_tenant(config: SimConfig, tenant: TenantSnapshot) -> Self {
        let sim = start(config, tenant).await.unwrap();
        let setup = Self {
            graph: crate::roles::graph_client(&sim),
            sim,
            rosters: tempfile::tempdir().unwrap(),
            reports: tempfile::tempdir().unwrap(),
        };
        setup.write(
            "Projects/Project Alpha - Manager.csv",
            "Ann;ann@contoso.com\nBob;bob@fabrikam.com\nFay;fay@tailspin.be\n",
        );
        setup.write("Projects/Key Users.csv", "Bob;bob@fabrikam.com\n");
        setup
    }

    fn write(&self, roster: &str, text: &str) {
        let path = self.rosters.path().join(roster);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    fn world(&self) -> Arc<World<LocalStorage>> {
        let config = StepConfig {
            max_dequeue_count: 8,
            ..StepConfig::default()
        };
        Arc::new(World::new(
            self.graph.clone(),
            LocalStorage::new(self.rosters.path(), self.reports.path()),
            config,
        ))
    }

    async fn apply(&self, run_id: &str) -> RunSummary {
        let options = RunOptions {
            run_id: run_id.into(),
            retry_delay: Duration::from_millis(100),
            ..RunOptions::default()
        };
        run(self.world(), &options, |_| {}).await.unwrap()
    }

    /// The tenant once every request is delivered.
    async fn settled(&self) -> TenantSnapshot {
        self.sim.settled().await
    }

    /// Changes a fresh plan would still make, per roster.
    async fn changes_left(&self) -> usize {
        let tenant = self.settled().await;
        let sources =
            enroll_store::local::read_rosters(self.rosters.path(), Default::default()).unwrap();
        let result = plan(&sources, &tenant, &PlanOptions::default());
        assert!(result.errors.is_empty(), "{:?}", result.errors);
        for package in result.packages.iter().filter(|p| p.has_changes()) {
            eprintln!(
                "left in {}: invite {:?} assign {:?} remove {:?}",
                package.roster, package.invite, package.assign, package.remove
            );
        }
        result
            .packages
            .iter()
            .map(|p| p.invite.len() + p.assign.len() + p.remove.len())
            .sum()
    }

    fn report(&self, run_id: &str, roster: &str) -> String {
        let path: PathBuf =
            LocalStorage::new(self.rosters.path(), self.reports.path()).report_path(run_id, roster);
        std::fs::read_to_string(path.with_extension("md")).unwrap()
    }
}

/// The golden tenant with a request of `kind` in `state` for Bob and Project Alpha.
fn golden_with_a_request_for_bob(kind: &str, state: &str) -> TenantSnapshot {
    let mut tenant = golden_tenant();
    tenant.assignment_requests.push(
        serde_json::from_value(serde_json::json!({
            "id": "rq-bob",
            "requestType": kind,
            "state": state,
            "accessPackage": { "id": "pkg-alpha-manager" },
            "assignment": { "targetId": "u-bob", "assignmentPolicyId": "pol-direct" }
        }))
        .unwrap(),
    );
    tenant
}

/// The plan of Project Alpha's package in a run.
fn alpha_plan(summary: &RunSummary) -> &PackagePlan {
    summary
        .plans
        .iter()
        .find(|p| p.access_package.id == "pkg-alpha-manager")
        .unwrap()
}

fn user_id(tenant: &TenantSnapshot, email: &str) -> String {
    tenant
        .users
        .iter()
        .find(|u| u.mail.as_deref() == Some(email) || u.other_mails.iter().any(|m| m == email))
        .map(|u| u.id.clone())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn first_run_invites_assigns_and_removes_then_nothing_is_left() {
    let setup = Setup::new(SimConfig::default()).await;
    let summary = setup.apply("run-1").await;
    assert!(summary.failures.is_empty(), "{:?}", summary.failures);
    assert_eq!(
        summary.count(Action::Invite, Outcome::Done),
        1,
        "Fay is invited"
    );
    // Dee, and Eve whose pending request from the snapshot was delivered, are not listed.
    assert_eq!(
        summary.count(Action::Remove, Outcome::Done),
        2,
        "Dee and Eve leave"
    );
    assert_eq!(setup.changes_left().await, 0);
    let tenant = setup.settled().await;
    let fay = user_id(&tenant, "fay@tailspin.be");
    assert!(holders(&tenant, "pkg-alpha-manager").contains(&fay));
    assert!(!holders(&tenant, "pkg-alpha-manager").contains(&"u-dee".to_owned()));
    assert!(!holders(&tenant, "pkg-alpha-manager").contains(&"u-eve".to_owned()));
    // A second run finds nothing to do and changes nothing.
    let again = setup.apply("run-2").await;
    assert_eq!(
        again.count(Action::Assign, Outcome::Done)
            + again.count(Action::Invite, Outcome::Done)
            + again.count(Action::Remove, Outcome::Done),
        0
    );
    assert_eq!(
        holders(&setup.settled().await, "pkg-alpha-manager"),
        holders(&tenant, "pkg-alpha-manager")
    );
    setup.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_edited_roster_adds_and_removes() {
    let setup = Setup::new(SimConfig::default()).await;
    setup.apply("run-1").await;
    setup.write(
        "Projects/Project Alpha - Manager.csv",
        "Bob;bob@fabrikam.com\nCyd;cyd@northwind.nl\nGus;gus@woodgrove.pl\n",
    );
    let summary = setup.apply("run-2").await;
    assert!(summary.failures.is_empty(), "{:?}", summary.failures);
    assert_eq!(setup.changes_left().await, 0);
    let tenant = setup.settled().await;
    let alpha = holders(&tenant, "pkg-alpha-manager");
    assert!(
        alpha.contains(&"u-cyd".to_owned())
            && alpha.contains(&user_id(&tenant, "gus@woodgrove.pl"))
    );
    assert!(!alpha.contains(&"u-ann".to_owned()));
    setup.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_removal_guard_and_the_empty_roster_rule_remove_nobody() {
    let setup = Setup::new(SimConfig::default()).await;
    setup.apply("run-1").await;
    let before = setup.settled().await;
    setup.write("Projects/Project Alpha - Manager.csv", "# everyone left\n");
    setup.write("Projects/Key Users.csv", "Newcomer;new@fabrikam.com\n");
    let world = setup.world();
    let mut strict = world.config.clone();
    strict.guards.max_removals = 0;
    strict.guards.max_removal_percent = 10.0;
    let world = Arc::new(World::new(
        setup.graph.clone(),
        LocalStorage::new(setup.rosters.path(), setup.reports.path()),
        strict,
    ));
    let summary = run(
        world,
        &RunOptions {
            run_id: "run-2".into(),
            ..RunOptions::default()
        },
        |_| {},
    )
    .await
    .unwrap();
    let after = setup.settled().await;
    assert_eq!(
        holders(&after, "pkg-alpha-manager"),
        holders(&before, "pkg-alpha-manager"),
        "empty roster removes nobody"
    );
    assert_eq!(
        holders(&after, "pkg-key-users"),
        holders(&before, "pkg-key-users"),
        "the guard blocks additions too"
    );
    assert_eq!(
        summary.plans.iter().filter(|p| p.blocked.is_some()).count(),
        2
    );
    assert!(
        setup
            .report("run-2", "Projects/Project Alpha - Manager.csv")
            .contains("Blocked (empty_roster): nothing was changed.")
    );
    assert!(
        setup
            .report("run-2", "Projects/Key Users.csv")
            .contains("Blocked (removal_guard)")
    );
    setup.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_invalid_roster_changes_nothing_and_says_why() {
    let setup = Setup::new(SimConfig::default()).await;
    let before = setup.sim.snapshot().await;
    setup.write(
        "Projects/Project Alpha - Manager.csv",
        "Ann;ann@contoso.com\nBroken;not-an-address\n",
    );
    let summary = setup.apply("run-1").await;
    assert_eq!(summary.errors[0].code, "invalid_email");
    let after = setup.settled().await;
    assert_eq!(
        holders(&after, "pkg-alpha-manager"),
        holders(&before, "pkg-alpha-manager")
    );
    let report = setup.report("run-1", "Projects/Project Alpha - Manager.csv");
    assert!(
        report.contains("Not applied: nothing was changed."),
        "{report}"
    );
    assert!(report.contains("| 2 | 2 | `invalid_email` |"), "{report}");
    setup.sim.shutdown().await;
}

fn remove_dee(run: &str) -> ChangeMessage<RemovePerson> {
    ChangeMessage {
        context: ChangeContext {
            v: VERSION,
            run_id: run.into(),
            roster: "Projects/Project Alpha - Manager.csv".into(),
            etag: "old".into(),
            access_package_id: "pkg-alpha-manager".into(),
            assignment_policy_id: Some("pol-direct".into()),
        },
        people: vec![RemovePerson {
            email: "dee@contoso.com".into(),
            user_id: Some("u-dee".into()),
            assignment_id: "as-dee".into(),
        }],
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_late_remove_for_someone_put_back_does_nothing_and_a_duplicate_does_nothing_twice() {
    let setup = Setup::new(SimConfig::default()).await;
    let world = setup.world();
    let first = Attempt::of(1, 5);
    // Dee is back in the roster by the time the remove message arrives.
    setup.write(
        "Projects/Project Alpha - Manager.csv",
        "Dee;DEE@contoso.com\n",
    );
    let output = enroll_steps::remove(&world, &remove_dee("r"), first)
        .await
        .unwrap();
    assert_eq!(output.audit[0].outcome, Outcome::Skipped);
    assert!(holders(&setup.settled().await, "pkg-alpha-manager").contains(&"u-dee".to_owned()));
    // Dee leaves; the same message delivered twice removes once.
    setup.write(
        "Projects/Project Alpha - Manager.csv",
        "Ann;ann@contoso.com\n",
    );
    let once = enroll_steps::remove(&world, &remove_dee("r"), first)
        .await
        .unwrap();
    assert_eq!(once.audit[0].outcome, Outcome::Done);
    setup.settled().await;
    let twice = enroll_steps::remove(&world, &remove_dee("r"), first)
        .await
        .unwrap();
    assert_eq!(twice.audit[0].outcome, Outcome::AlreadyDone);
    let removals = setup
        .sim
        .snapshot()
        .await
        .assignment_requests
        .iter()
        .filter(|r| r.request_type.as_deref() == Some("adminRemove"))
        .count();
    assert!(removals <= 1, "one adminRemove at most, found {removals}");
    setup.sim.shutdown().await;
}

/// What one Assign message for Bob (in Project Alpha's roster, without its assignment) costs
/// on the simulated tenant, in HTTP requests (tokens aside) and Graph operations, when
/// `others` adminAdd requests for another package (Key Users) are open and stay open.
async fn assign_traffic_with_open_requests_elsewhere(others: usize) -> (u64, u64) {
    let mut tenant = golden_tenant();
    for i in 0..others {
        let target = ["u-ann", "u-dee", "u-eve"][i % 3];
        tenant.assignment_requests.push(
            serde_json::from_value(serde_json::json!({
                "id": format!("rq-other-{i}"),
                "requestType": "adminAdd",
                "state": "pendingApproval",
                "accessPackage": { "id": "pkg-key-users" },
                "assignment": { "targetId": target }
            }))
            .unwrap(),
        );
    }
    let config = SimConfig {
        // Small pages, so that reading the other package's requests would show as pages.
        page_size: 5,
        delivery_delay_ms: 3_600_000,
        ..SimConfig::default()
    };
    let setup = Setup::with_tenant(config, tenant).await;
    let world = setup.world();
    let message = ChangeMessage {
        context: ChangeContext {
            v: VERSION,
            run_id: "r".into(),
            roster: "Projects/Project Alpha - Manager.csv".into(),
            // Not the roster's version, so that the step reads the tenant again.
            etag: "old".into(),
            access_package_id: "pkg-alpha-manager".into(),
            assignment_policy_id: Some("pol-direct".into()),
        },
        people: vec![AssignPerson {
            email: "bob@fabrikam.com".into(),
            user_id: Some("u-bob".into()),
        }],
    };
    let before = setup.sim.counters();
    let output = enroll_steps::assign(&world, &message, Attempt::of(1, 5))
        .await
        .unwrap();
    let after = setup.sim.counters();
    assert_eq!(output.audit.len(), 1);
    assert_eq!(output.audit[0].outcome, Outcome::Done, "{:?}", output.audit);
    setup.sim.shutdown().await;
    (
        (after.http_requests - after.token_requests)
            - (before.http_requests - before.token_requests),
        after.graph_operations - before.graph_operations,
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn the_assign_step_reads_its_own_package_s_open_requests_not_the_tenant_s() {
    let alone = assign_traffic_with_open_requests_elsewhere(0).await;
    let crowded = assign_traffic_with_open_requests_elsewhere(60).await;
    assert_eq!(
        crowded, alone,
        "60 open requests of another package (12 pages of 5) cost the Assign step nothing"
    );
    // The catalogs and packages (finding the roster's package again), Bob's assignment, the
    // package's open requests (one filter per open state, in one `$batch`) and the adminAdd.
    assert_eq!(
        alone,
        (5, 8),
        "requests and operations of one Assign message"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_person_whose_request_waits_for_approval_is_asked_for_and_graph_s_refusal_is_already_done()
 {
    // Bob is in the roster without an assignment; a request of his own waits for approval
    // (a state enroll's admin direct assignments never pass through, which plans do not read).
    let tenant = golden_with_a_request_for_bob("userAdd", "pendingApproval");
    let setup = Setup::with_tenant(SimConfig::default(), tenant).await;
    let summary = setup.apply("run-1").await;
    let plan = alpha_plan(&summary);
    assert_eq!(
        plan.assign.iter().filter(|a| a.user_id == "u-bob").count(),
        1,
        "{plan:?}"
    );
    // Graph refuses the adminAdd while Bob's request is open: already done, not failed.
    let audit = std::fs::read_to_string(setup.reports.path().join("audit.jsonl")).unwrap();
    let for_bob: Vec<&str> = audit
        .lines()
        .filter(|line| line.contains("\"assign\"") && line.contains("u-bob"))
        .collect();
    assert_eq!(for_bob.len(), 1, "{audit}");
    assert!(
        for_bob[0].contains("\"outcome\":\"alreadyDone\"")
            && for_bob[0].contains("existing open request"),
        "{}",
        for_bob[0]
    );
    assert!(summary.failures.is_empty(), "{:?}", summary.failures);
    setup.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_holder_recorded_under_a_roster_address_is_unchanged_without_reading_their_user() {
    // Ann's and Dee's assignments are recorded under their addresses (Eve's, made from an
    // open request of the tenant, is recorded under hers by the simulator); Dee's user has
    // been renamed since (mail and principal name), so no user answers to her old address.
    let mut tenant = golden_tenant();
    for assignment in &mut tenant.assignments {
        let target = assignment.target.as_mut().unwrap();
        match target.object_id.as_deref() {
            Some("u-ann") => target.email = Some("ann@contoso.com".into()),
            Some("u-dee") => target.email = Some("dee@contoso.com".into()),
            _ => {}
        }
    }
    let dee = tenant.users.iter_mut().find(|u| u.id == "u-dee").unwrap();
    dee.mail = Some("dee.new@contoso.com".into());
    dee.user_principal_name = Some("dee.new@contoso.com".into());
    let setup = Setup::with_tenant(SimConfig::default(), tenant).await;
    std::fs::remove_file(setup.rosters.path().join("Projects/Key Users.csv")).unwrap();
    setup.write(
        "Projects/Project Alpha - Manager.csv",
        "Ann;ann@contoso.com\nDee;dee@contoso.com\nEve;eve@contoso.com\n",
    );
    let options = RunOptions {
        run_id: "run-1".into(),
        dry_run: true,
        ..RunOptions::default()
    };
    let summary = run(setup.world(), &options, |_| {}).await.unwrap();
    let plan = &summary.plans[0];
    // All three are their roster's people by their assignments: nobody is invited for Dee's
    // old address, and nobody is removed.
    assert_eq!(plan.unchanged, 3, "{plan:?}");
    assert!(
        plan.invite.is_empty() && plan.assign.is_empty() && plan.remove.is_empty(),
        "{plan:?}"
    );
    // No holder's user is read, and no address is looked up.
    let routes = setup.sim.operations_by_route();
    let users: Vec<&String> = routes.keys().filter(|r| r.contains("/users")).collect();
    assert!(users.is_empty(), "{routes:?}");
    setup.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_person_whose_assignment_is_already_requested_is_pending_not_asked_for_again() {
    // Bob is in the roster without an assignment; an adminAdd for him is open and has no
    // assignment yet (it stays open for the test's length).
    let tenant = golden_with_a_request_for_bob("adminAdd", "submitted");
    let config = SimConfig {
        delivery_delay_ms: 3_600_000,
        ..SimConfig::default()
    };
    let setup = Setup::with_tenant(config, tenant).await;
    let summary = setup.apply("run-1").await;
    let plan = alpha_plan(&summary);
    // Graph names the person an admin's request is for as its requestor; the plan counts
    // Bob as pending instead of asking for him a second time.
    assert!(
        plan.assign.iter().all(|a| a.user_id != "u-bob"),
        "{:?}",
        plan.assign
    );
    assert_eq!(plan.pending, 1, "{plan:?}");
    let for_bob = setup
        .sim
        .assignment_requests_made()
        .await
        .into_iter()
        .filter(|r| {
            r.target_object_id() == Some("u-bob")
                && r.access_package_id() == Some("pkg-alpha-manager")
        })
        .count();
    assert_eq!(for_bob, 1, "only the request the tenant started with");
    setup.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_roster_broken_after_the_plan_removes_nobody() {
    let setup = Setup::new(SimConfig::default()).await;
    setup.write(
        "Projects/Project Alpha - Manager.csv",
        "Ann;ann@contoso.com\nbroken\n",
    );
    let output = enroll_steps::remove(&setup.world(), &remove_dee("r"), Attempt::of(1, 5))
        .await
        .unwrap();
    assert_eq!(output.audit[0].outcome, Outcome::Skipped);
    assert!(
        output.audit[0]
            .detail
            .as_deref()
            .unwrap()
            .contains("invalid")
    );
    assert!(holders(&setup.settled().await, "pkg-alpha-manager").contains(&"u-dee".to_owned()));
    setup.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn throttling_faults_and_slow_replication_still_converge_without_doubles() {
    let config = SimConfig {
        throttle_rps: Some(40),
        fault_rate: 0.15,
        consistency_delay_ms: 400,
        delivery_delay_ms: 100,
        seed: 7,
        ..SimConfig::default()
    };
    let setup = Setup::new(config).await;
    let roster: String = (0..30)
        .map(|i| format!("Guest {i};guest{i}@fabrikam.com\n"))
        .collect();
    setup.write("Projects/Key Users.csv", &roster);
    let summary = setup.apply("storm").await;
    assert!(summary.failures.is_empty(), "{:?}", summary.failures);
    // Eve's request from the snapshot was still being delivered during the first plan, so
    // only the next run can remove her; the next run is what the nightly timer does.
    setup.settled().await;
    let next = setup.apply("storm-2").await;
    assert!(next.failures.is_empty(), "{:?}", next.failures);
    assert_eq!(setup.changes_left().await, 0);
    let tenant = setup.settled().await;
    let key_users = holders(&tenant, "pkg-key-users");
    let mut unique = key_users.clone();
    unique.dedup();
    assert_eq!(
        key_users.len(),
        unique.len(),
        "no person holds the package twice"
    );
    assert_eq!(key_users.len(), 30);
    let guests = tenant
        .users
        .iter()
        .filter(|u| u.mail.as_deref().is_some_and(|m| m.starts_with("guest")))
        .count();
    assert_eq!(guests, 30, "each guest invited once");
    setup.sim.shutdown().await;
}

const ALPHA: &str = "Projects/Project Alpha - Manager.csv";

/// A run of `enroll apply` with quick retries.
fn window_run() -> RunOptions {
    RunOptions {
        run_id: "window".into(),
        retry_delay: Duration::from_millis(100),
        ..RunOptions::default()
    }
}

/// A world whose removals wait out an undo window of `window`.
fn world_with_window(setup: &Setup, window: Duration) -> Arc<World<LocalStorage>> {
    let config = StepConfig {
        max_dequeue_count: 8,
        removal_delay: window,
        ..StepConfig::default()
    };
    Arc::new(World::new(
        setup.graph.clone(),
        LocalStorage::new(setup.rosters.path(), setup.reports.path()),
        config,
    ))
}

#[tokio::test(flavor = "multi_thread")]
async fn with_an_undo_window_apply_holds_removals_and_a_roster_corrected_meanwhile_keeps_the_person()
 {
    let setup = Setup::new(SimConfig::default()).await;
    let window = Duration::from_secs(2);
    let corrected = std::sync::atomic::AtomicBool::new(false);
    let started = std::time::Instant::now();
    // Once the plan is made and its removals are held, Dee is put back in the roster.
    let summary = run(world_with_window(&setup, window), &window_run(), |progress| {
        if progress.held > 0 && !corrected.swap(true, std::sync::atomic::Ordering::SeqCst) {
            setup.write(
                ALPHA,
                "Ann;ann@contoso.com\nBob;bob@fabrikam.com\nFay;fay@tailspin.be\nDee;dee@contoso.com\n",
            );
        }
    })
    .await
    .unwrap();
    assert!(corrected.load(std::sync::atomic::Ordering::SeqCst));
    assert!(started.elapsed() >= window, "{:?}", started.elapsed());
    let alpha = summary.plans.iter().find(|p| p.roster == ALPHA).unwrap();
    assert_eq!(alpha.remove.len(), 2, "{:?}", alpha.remove);
    assert!(alpha.remove.iter().all(|r| r.not_before.is_some()));
    // Dee stays; Eve, still absent from the roster, leaves once the window has passed.
    assert_eq!(summary.count(Action::Remove, Outcome::Skipped), 1);
    assert_eq!(summary.count(Action::Remove, Outcome::Done), 1);
    let tenant = setup.settled().await;
    let alpha = holders(&tenant, "pkg-alpha-manager");
    assert!(alpha.contains(&"u-dee".to_owned()), "{alpha:?}");
    assert!(!alpha.contains(&"u-eve".to_owned()), "{alpha:?}");
    let report = setup.report("window", ALPHA);
    assert!(report.contains("Removals wait until"), "{report}");
    setup.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn with_an_undo_window_apply_carries_removals_out_once_it_has_passed() {
    let setup = Setup::new(SimConfig::default()).await;
    let window = Duration::from_secs(1);
    let before = setup.sim.snapshot().await;
    let held = std::sync::Mutex::new(Vec::new());
    let started = std::time::Instant::now();
    let summary = run(
        world_with_window(&setup, window),
        &window_run(),
        |progress| {
            held.lock().unwrap().push(progress.held);
        },
    )
    .await
    .unwrap();
    assert!(started.elapsed() >= window, "{:?}", started.elapsed());
    // The Remove message (Dee and Eve) was held, then let go.
    let held = held.into_inner().unwrap();
    assert_eq!(held.iter().max(), Some(&1), "{held:?}");
    assert_eq!(held.last(), Some(&0));
    assert_eq!(summary.count(Action::Remove, Outcome::Done), 2);
    let after = holders(&setup.settled().await, "pkg-alpha-manager");
    assert!(holders(&before, "pkg-alpha-manager").contains(&"u-dee".to_owned()));
    assert!(!after.contains(&"u-dee".to_owned()), "{after:?}");
    setup.sim.shutdown().await;
}
