//! App roles and their groups (MapRoles) against the simulated tenant, which enforces
//! Graph's rules: disable before change or removal, no duplicate values, no duplicate
//! assignments. The step runs over the real Graph client, with manifests from a folder.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use enroll_core::audit::{Action, AuditRecord, Outcome};
use enroll_core::messages::{MapRolesMessage, Reason, VERSION};
use enroll_core::roles::{RolesPlan, UpdateStep, derived_role_id};
use enroll_core::tenant::{
    AppRole, AppRoleAssignment, Application, Group, ServicePrincipal, TenantSnapshot, User,
};
use enroll_graph::{Credential, GraphClient, GraphConfig, RetryPolicy, Secret};
use enroll_sim::{SimConfig, SimHandle, start};
use enroll_steps::{Attempt, RolesOutcome, StepConfig, StepError, World, map_roles};
use enroll_store::local::LocalStorage;

pub(crate) const APP_ID: &str = "3f8e2a10-5c4d-4b6e-9a7f-1e2d3c4b5a60";
pub(crate) const APP_OBJECT: &str = "9d0c1b2a-3e4f-4a5b-8c6d-7e8f9a0b1c2d";
pub(crate) const SP: &str = "5a4b3c2d-1e0f-4a9b-8c7d-6e5f4a3b2c1d";
const PROJECTS: [&str; 20] = [
    "Alpha", "Bravo", "Charlie", "Delta", "Echo", "Foxtrot", "Golf", "Hotel", "India", "Juliett",
    "Kilo", "Lima", "Mike", "November", "Oscar", "Papa", "Quebec", "Romeo", "Sierra", "Tango",
];

pub(crate) fn guid(kind: u32, n: usize) -> String {
    format!("{kind:08x}-0000-4000-8000-{n:012}")
}

/// The application's 62 role values: every project × Approver/Contributor/Manager, plus
/// KeyUser and ReadOnly.
pub(crate) fn values() -> Vec<String> {
    let mut values: Vec<String> = PROJECTS
        .iter()
        .flat_map(|p| ["Approver", "Contributor", "Manager"].map(|r| format!("{p}.{r}")))
        .collect();
    values.extend(["KeyUser".to_owned(), "ReadOnly".to_owned()]);
    values
}

pub(crate) fn role_id(n: usize) -> String {
    guid(0xa0, n)
}

pub(crate) fn group_id(n: usize) -> String {
    guid(0x60, n)
}

pub(crate) fn roles() -> Vec<AppRole> {
    values()
        .iter()
        .enumerate()
        .map(|(n, value)| AppRole {
            allowed_member_types: vec!["User".into()],
            description: Some(format!(
                "{} in the projects application",
                value.replace('.', " ")
            )),
            display_name: Some(value.replace('.', " ")),
            id: role_id(n),
            is_enabled: true,
            origin: Some("Application".into()),
            value: Some(value.clone()),
        })
        .collect()
}

pub(crate) fn groups() -> Vec<Group> {
    let mut groups: Vec<Group> = values()
        .iter()
        .enumerate()
        .map(|(n, value)| Group {
            id: group_id(n),
            display_name: Some(format!("APP-{value}")),
            security_enabled: Some(true),
            mail_enabled: Some(false),
            ..Group::default()
        })
        .collect();
    groups.push(Group {
        id: guid(0x61, 1),
        display_name: Some("Helpdesk".into()),
        security_enabled: Some(true),
        ..Group::default()
    });
    groups
}

/// Group `n` (by convention) holds role `role`.
pub(crate) fn held(n: usize, role: usize) -> AppRoleAssignment {
    AppRoleAssignment {
        id: format!("held-{n}-{role}"),
        app_role_id: role_id(role),
        principal_id: group_id(n),
        principal_type: Some("Group".into()),
        principal_display_name: Some(format!("APP-{}", values()[n])),
        resource_id: SP.into(),
        resource_display_name: Some("Projects".into()),
        created_date_time: None,
    }
}

/// Every group holds its role.
pub(crate) fn in_line() -> Vec<AppRoleAssignment> {
    (0..values().len()).map(|n| held(n, n)).collect()
}

/// The application with `app_roles`, its service principal, the groups and `assignments`.
pub(crate) fn tenant(
    app_roles: Vec<AppRole>,
    assignments: Vec<AppRoleAssignment>,
) -> TenantSnapshot {
    TenantSnapshot {
        users: vec![User {
            id: guid(0x11, 1),
            display_name: Some("Ann Admin".into()),
            user_principal_name: Some("ann@contoso.com".into()),
            mail: Some("ann@contoso.com".into()),
            other_mails: Vec::new(),
            user_type: Some("Member".into()),
            ..User::default()
        }],
        applications: vec![Application {
            id: APP_OBJECT.into(),
            app_id: APP_ID.into(),
            display_name: Some("Projects".into()),
            app_roles,
        }],
        service_principals: vec![ServicePrincipal {
            id: SP.into(),
            app_id: APP_ID.into(),
            display_name: Some("Projects".into()),
            app_roles: Vec::new(),
        }],
        groups: groups(),
        app_role_assignments: assignments,
        ..TenantSnapshot::default()
    }
}

/// The manifest as the portal shows it, with the application's client id.
pub(crate) fn manifest(roles: &[AppRole]) -> String {
    serde_json::to_string_pretty(&serde_json::json!({"appId": APP_ID, "appRoles": roles})).unwrap()
}

pub(crate) fn graph_client(sim: &SimHandle) -> GraphClient {
    let mut graph = GraphConfig::new(
        sim.tenant_id(),
        Credential::ClientSecret {
            client_id: "enroll-sim-client".into(),
            secret: Secret::new("enroll-sim-secret"),
        },
    );
    graph.graph_base_url = format!("{}/v1.0", sim.base_url());
    graph.authority_url = sim.base_url();
    graph.retry = RetryPolicy {
        max_attempts: 30,
        max_elapsed: Duration::from_secs(30),
        base_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(100),
        max_wait: Duration::from_secs(60),
    };
    GraphClient::new(graph).unwrap()
}

struct Setup {
    sim: SimHandle,
    graph: GraphClient,
    manifests: tempfile::TempDir,
    reports: tempfile::TempDir,
}

impl Setup {
    async fn new(config: SimConfig, tenant: TenantSnapshot) -> Self {
        let sim = start(config, tenant).await.unwrap();
        Self {
            graph: graph_client(&sim),
            sim,
            manifests: tempfile::tempdir().unwrap(),
            reports: tempfile::tempdir().unwrap(),
        }
    }

    fn write(&self, name: &str, text: &str) {
        std::fs::write(self.manifests.path().join(name), text).unwrap();
    }

    fn world(&self) -> World<LocalStorage> {
        let storage = LocalStorage::new(self.manifests.path(), self.reports.path())
            .with_manifests(self.manifests.path(), None);
        World::new(
            self.graph.clone(),
            storage,
            StepConfig {
                max_dequeue_count: 8,
                ..StepConfig::default()
            },
        )
    }

    async fn map(&self, run_id: &str, allow: bool) -> Result<RolesOutcome, StepError> {
        let message = MapRolesMessage {
            v: VERSION,
            run_id: run_id.into(),
            manifest: "projects.json".into(),
            etag: None,
            reason: Reason::Cli,
            allow_role_removals: allow,
        };
        map_roles(&self.world(), &message, Attempt::of(1, 8)).await
    }

    async fn plan(&self) -> RolesPlan {
        let probe = self.map_dry().await;
        probe.expect("the manifest plans")
    }

    async fn map_dry(&self) -> Option<RolesPlan> {
        match enroll_steps::plan_manifest(&self.world(), "projects.json", false)
            .await
            .unwrap()
        {
            enroll_steps::RolesRead::Planned(plan) => Some(*plan),
            other => {
                eprintln!("not planned: {other:?}");
                None
            }
        }
    }

    fn report(&self, run_id: &str) -> String {
        let path = LocalStorage::new(self.manifests.path(), self.reports.path())
            .report_path(run_id, "manifests/projects");
        std::fs::read_to_string(format!("{}.md", path.display())).unwrap()
    }
}

fn count(records: &[AuditRecord], action: Action, outcome: Outcome) -> usize {
    records
        .iter()
        .filter(|r| r.action == action && r.outcome == outcome)
        .count()
}

/// role id → the groups holding it, from the simulator's state.
fn holders(tenant: &TenantSnapshot) -> BTreeMap<String, Vec<String>> {
    let mut holders: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for a in &tenant.app_role_assignments {
        holders
            .entry(a.app_role_id.clone())
            .or_default()
            .push(a.principal_id.clone());
    }
    for groups in holders.values_mut() {
        groups.sort();
    }
    holders
}

fn app_roles(tenant: &TenantSnapshot) -> &[AppRole] {
    &tenant.applications[0].app_roles
}

#[tokio::test(flavor = "multi_thread")]
async fn a_first_sync_creates_62_roles_and_gives_each_group_its_role() {
    let setup = Setup::new(SimConfig::default(), tenant(Vec::new(), Vec::new())).await;
    setup.write("projects.json", &manifest(&roles()));
    let outcome = setup.map("first", false).await.unwrap();
    let plan = outcome.plan.unwrap();
    assert_eq!(plan.app_roles.add.len(), 62);
    assert_eq!(plan.assign.len(), 62);
    let records = &outcome.output.audit;
    assert_eq!(count(records, Action::UpdateAppRoles, Outcome::Done), 1);
    assert_eq!(count(records, Action::AssignAppRole, Outcome::Done), 62);

    let state = setup.sim.snapshot().await;
    assert_eq!(app_roles(&state).len(), 62);
    assert!(app_roles(&state).iter().all(|r| r.is_enabled));
    let holders = holders(&state);
    for n in 0..62 {
        assert_eq!(holders[&role_id(n)], vec![group_id(n)], "role {n}");
    }
    let report = setup.report("first");
    assert!(report.contains("# App roles of Projects"), "{report}");
    assert!(report.contains("APP-Tango.Manager (`"), "{report}");

    // Level-triggered: the next run finds nothing to do.
    let again = setup.map("again", false).await.unwrap();
    assert!(!again.plan.unwrap().has_changes());
    assert_eq!(
        again
            .output
            .audit
            .iter()
            .filter(|r| r.action != Action::MapRoles)
            .count(),
        0
    );
    assert_eq!(setup.sim.snapshot().await.app_role_assignments.len(), 62);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_renamed_role_is_disabled_then_updated_and_keeps_its_id_and_group() {
    let setup = Setup::new(SimConfig::default(), tenant(roles(), in_line())).await;
    let mut renamed = roles();
    renamed[0].value = Some("Alpha.Approval".into());
    renamed[0].display_name = Some("Alpha Approval".into());
    setup.write("projects.json", &manifest(&renamed));
    setup.write(
        "projects.mapping.json",
        r#"{"roles": {"Alpha.Approval": "APP-Alpha.Approver"}}"#,
    );
    let plan = setup.plan().await;
    let steps: Vec<UpdateStep> = plan.updates.iter().map(|u| u.step).collect();
    assert_eq!(steps, [UpdateStep::Disable, UpdateStep::Update]);
    let outcome = setup.map("rename", false).await.unwrap();
    let updates: Vec<&AuditRecord> = outcome
        .output
        .audit
        .iter()
        .filter(|r| r.action == Action::UpdateAppRoles)
        .collect();
    assert_eq!(updates.len(), 2);
    assert!(
        updates[0]
            .detail
            .as_deref()
            .unwrap()
            .starts_with("disable update")
    );
    assert!(updates.iter().all(|r| r.outcome == Outcome::Done));

    let state = setup.sim.snapshot().await;
    let role = app_roles(&state)
        .iter()
        .find(|r| r.id == role_id(0))
        .unwrap();
    assert_eq!(role.value.as_deref(), Some("Alpha.Approval"));
    assert!(role.is_enabled, "enabled again by the second update");
    assert_eq!(holders(&state)[&role_id(0)], vec![group_id(0)]);
    assert!(!setup.plan().await.has_changes());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_removed_role_takes_two_updates_and_is_refused_while_held_unless_allowed() {
    let mut before = roles();
    let legacy = AppRole {
        id: guid(0xa1, 1),
        value: Some("Legacy.Viewer".into()),
        display_name: Some("Legacy viewer".into()),
        ..before[0].clone()
    };
    before.push(legacy.clone());
    let setup = Setup::new(SimConfig::default(), tenant(before, in_line())).await;
    // The manifest drops Legacy.Viewer (held by nobody) and Alpha.Approver (held by its group).
    let after: Vec<AppRole> = roles().into_iter().skip(1).collect();
    setup.write("projects.json", &manifest(&after));
    let outcome = setup.map("remove", false).await.unwrap();
    let plan = outcome.plan.as_ref().unwrap();
    assert_eq!(plan.app_roles.remove.len(), 1);
    assert_eq!(plan.app_roles.refused.len(), 1);
    assert!(!plan.is_clean());
    let records = &outcome.output.audit;
    assert_eq!(count(records, Action::UpdateAppRoles, Outcome::Done), 2);
    assert_eq!(count(records, Action::UpdateAppRoles, Outcome::Skipped), 1);
    let state = setup.sim.snapshot().await;
    assert!(!app_roles(&state).iter().any(|r| r.id == legacy.id));
    let kept = app_roles(&state)
        .iter()
        .find(|r| r.id == role_id(0))
        .unwrap();
    assert!(
        kept.is_enabled,
        "a held role is neither disabled nor removed"
    );
    assert_eq!(holders(&state)[&role_id(0)], vec![group_id(0)]);
    assert!(setup.report("remove").contains("## Removals refused"));

    // With the override it goes, in two updates; the assignment is left to Graph.
    let outcome = setup.map("override", true).await.unwrap();
    let records = &outcome.output.audit;
    assert_eq!(count(records, Action::UpdateAppRoles, Outcome::Done), 2);
    let state = setup.sim.snapshot().await;
    assert_eq!(app_roles(&state).len(), 61);
    assert!(!app_roles(&state).iter().any(|r| r.id == role_id(0)));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_group_holding_the_wrong_role_loses_it_and_unmanaged_holders_stay() {
    let mut assignments = in_line();
    // APP-Alpha.Manager (2) lost its role and holds Alpha.Approver's (0) instead.
    assignments.retain(|a| a.principal_id != group_id(2));
    assignments.push(held(2, 0));
    let helpdesk = AppRoleAssignment {
        id: "helpdesk-keyuser".into(),
        principal_id: guid(0x61, 1),
        principal_display_name: Some("Helpdesk".into()),
        ..held(60, 60)
    };
    let ann = AppRoleAssignment {
        id: "ann-readonly".into(),
        principal_id: guid(0x11, 1),
        principal_type: Some("User".into()),
        principal_display_name: Some("Ann Admin".into()),
        ..held(61, 61)
    };
    assignments.extend([helpdesk, ann]);
    let setup = Setup::new(SimConfig::default(), tenant(roles(), assignments)).await;
    setup.write("projects.json", &manifest(&roles()));
    let outcome = setup.map("wrong", false).await.unwrap();
    let plan = outcome.plan.unwrap();
    assert_eq!(plan.unassign.len(), 1);
    assert_eq!(plan.unassign[0].group_id, group_id(2));
    assert_eq!(plan.assign.len(), 1);
    assert_eq!(plan.assign[0].group_id, group_id(2));
    assert_eq!(plan.unmanaged.len(), 2);
    let records = &outcome.output.audit;
    assert_eq!(count(records, Action::UnassignAppRole, Outcome::Done), 1);
    assert_eq!(count(records, Action::AssignAppRole, Outcome::Done), 1);

    let state = setup.sim.snapshot().await;
    let holders = holders(&state);
    assert_eq!(holders[&role_id(0)], vec![group_id(0)]);
    assert_eq!(holders[&role_id(2)], vec![group_id(2)]);
    assert_eq!(
        holders[&role_id(60)],
        vec![group_id(60), guid(0x61, 1)],
        "a group outside the mapping is left alone"
    );
    assert!(
        holders[&role_id(61)].contains(&guid(0x11, 1)),
        "so is a user"
    );
    let report = setup.report("wrong");
    assert!(
        report.contains("## Unmanaged assignments (left alone)"),
        "{report}"
    );
    assert!(report.contains("Helpdesk"), "{report}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_duplicate_assignment_is_answered_as_graph_does_and_counts_as_done() {
    // Graph's lists lag writes: a second run right after the first does not see the new
    // assignments and asks again; Graph refuses each as existing.
    let config = SimConfig {
        app_role_assignment_lag_ms: 60_000,
        ..SimConfig::default()
    };
    let setup = Setup::new(config, tenant(roles(), Vec::new())).await;
    setup.write("projects.json", &manifest(&roles()));
    let first = setup.map("first", false).await.unwrap();
    assert_eq!(
        count(&first.output.audit, Action::AssignAppRole, Outcome::Done),
        62
    );
    let second = setup.map("second", false).await.unwrap();
    assert_eq!(second.plan.unwrap().assign.len(), 62, "the list lagged");
    assert_eq!(
        count(
            &second.output.audit,
            Action::AssignAppRole,
            Outcome::AlreadyDone
        ),
        62
    );
    assert_eq!(
        count(&second.output.audit, Action::AssignAppRole, Outcome::Failed),
        0
    );
    assert_eq!(setup.sim.snapshot().await.app_role_assignments.len(), 62);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_invalid_manifest_changes_nothing_and_says_where() {
    let setup = Setup::new(SimConfig::default(), tenant(roles(), in_line())).await;
    let mut bad = roles();
    bad[3].value = Some("Alpha Contributor".into());
    bad[4].value = Some("alpha.approver".into());
    setup.write("projects.json", &manifest(&bad));
    let outcome = setup.map("bad", false).await.unwrap();
    assert!(outcome.plan.is_none());
    let codes: Vec<&str> = outcome.errors.iter().map(|e| e.code.as_str()).collect();
    assert_eq!(codes, ["value_has_spaces", "duplicate_value"]);
    assert!(outcome.errors.iter().all(|e| e.line.is_some()));
    assert_eq!(
        count(&outcome.output.audit, Action::MapRoles, Outcome::Rejected),
        1
    );
    let state = setup.sim.snapshot().await;
    assert_eq!(app_roles(&state), &roles()[..], "nothing was sent");
    assert!(setup.report("bad").contains("`value_has_spaces`"));

    // A mapped group that does not exist is refused before anything is sent, too.
    setup.write("projects.json", &manifest(&roles()));
    setup.write(
        "projects.mapping.json",
        r#"{"roles": {"KeyUser": "Key users"}}"#,
    );
    let outcome = setup.map("nogroup", false).await.unwrap();
    assert_eq!(outcome.errors[0].code.as_str(), "group_not_found");
    assert_eq!(outcome.errors[0].file, "projects.mapping.json");
    assert!(outcome.errors[0].message.contains("`KeyUser`"));
    assert!(outcome.errors[0].message.contains("`Key users`"));
}

#[tokio::test(flavor = "multi_thread")]
async fn roles_without_ids_get_derived_ids_and_faults_still_converge() {
    let config = SimConfig {
        fault_rate: 0.2,
        seed: 7,
        ..SimConfig::default()
    };
    let setup = Setup::new(config, tenant(Vec::new(), Vec::new())).await;
    let text = manifest(&roles()).replace(&format!("\"id\": \"{}\",", role_id(5)), "");
    setup.write("projects.json", &text);
    let mut tries = 0;
    loop {
        tries += 1;
        match setup.map(&format!("try-{tries}"), false).await {
            Ok(outcome) => {
                let plan = outcome.plan.unwrap();
                if !plan.has_changes() {
                    assert!(
                        plan.warnings
                            .iter()
                            .any(|w| w.code.as_str() == "missing_id"),
                        "the tool says it derived an id"
                    );
                    break;
                }
            }
            Err(error) => assert!(error.is_retryable(), "{error}"),
        }
        assert!(tries < 20, "did not converge");
    }
    let state = setup.sim.snapshot().await;
    assert_eq!(app_roles(&state).len(), 62);
    let derived = derived_role_id(&values()[5]);
    assert!(app_roles(&state).iter().any(|r| r.id == derived));
    let holders = holders(&state);
    assert_eq!(holders.len(), 62);
    assert!(
        holders.values().all(|groups| groups.len() == 1),
        "no doubles"
    );
    assert_eq!(holders[&derived], vec![group_id(5)]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_that_meets_roles_changed_since_it_read_them_is_tried_again_not_given_up() {
    // An upload and the nightly timer can run MapRoles for one manifest at once: one run
    // plans, the other makes every change, then the first acts on what it read before.
    let setup = Setup::new(SimConfig::default(), tenant(roles(), in_line())).await;
    let mut after = roles();
    after[0].value = Some("Alpha.Approval".into());
    setup.write("projects.json", &manifest(&after));
    setup.write(
        "projects.mapping.json",
        r#"{"roles": {"Alpha.Approval": "APP-Alpha.Approver"}}"#,
    );
    let world = setup.world();
    let stale = enroll_steps::plan_manifest(&world, "projects.json", false)
        .await
        .unwrap();
    setup.map("other", false).await.unwrap();
    let message = MapRolesMessage {
        v: VERSION,
        run_id: "late".into(),
        manifest: "projects.json".into(),
        etag: None,
        reason: Reason::Upload,
        allow_role_removals: false,
    };
    let late =
        enroll_steps::apply_roles_plan(&world, &message, Attempt::of(1, 8), stale.clone()).await;
    match late {
        Err(error @ StepError::ChangesToRetry { .. }) => assert!(error.is_retryable()),
        other => panic!("expected a retry, got {other:?}"),
    }
    let state = setup.sim.snapshot().await;
    assert_eq!(
        app_roles(&state)[0].value.as_deref(),
        Some("Alpha.Approval")
    );
    assert!(
        app_roles(&state)[0].is_enabled,
        "the stale update changed nothing"
    );
    // The retry plans anew and finds nothing to do; on the last try it would be recorded
    // as failed for good instead.
    let again = setup.map("late", false).await.unwrap();
    assert!(!again.plan.unwrap().has_changes());
    let last = enroll_steps::apply_roles_plan(&world, &message, Attempt::of(8, 8), stale).await;
    assert!(matches!(last, Err(StepError::Graph(_))), "{last:?}");
}

#[test]
fn golden_roles_plan_matches_the_reviewed_file() {
    use enroll_core::roles::{
        ParsedMapping, RolesOptions, RolesTenant, parse_manifest, parse_mapping, plan_roles,
        role_targets,
    };
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/golden/roles");
    let read = |name: &str| std::fs::read(dir.join(name)).unwrap();
    let manifest = parse_manifest("app-roles.json", &read("app-roles.json"), None)
        .validated()
        .unwrap();
    let mapping: ParsedMapping =
        parse_mapping("app-roles.mapping.json", &read("app-roles.mapping.json")).unwrap();
    let tenant: TenantSnapshot = serde_json::from_slice(&read("tenant.json")).unwrap();
    let targets = role_targets(&manifest, &mapping, "APP-{value}").unwrap();
    let plan = plan_roles(
        &manifest,
        &targets,
        &RolesTenant {
            application: &tenant.applications[0],
            service_principal: tenant.service_principals.first(),
            groups: &tenant.groups,
            assignments: &tenant.app_role_assignments,
        },
        &RolesOptions::default(),
    )
    .unwrap();
    let mut text = serde_json::to_string_pretty(&plan).unwrap();
    text.push('\n');
    let golden = dir.join("plan.json");
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&golden, &text).unwrap();
    }
    assert_eq!(
        text,
        std::fs::read_to_string(&golden).unwrap(),
        "the plan changed; review it and regenerate with UPDATE_GOLDEN=1"
    );
}

/// An adopting tenant with awkward corners: export through Graph, then plan the rosters
/// and the roles against the same tenant, and nothing changes.
#[tokio::test(flavor = "multi_thread")]
async fn an_export_of_an_awkward_tenant_plans_without_changes() {
    use enroll_cli::export::{ExportOptions, export, read_tenant};
    use enroll_core::plan::{PlanOptions, plan};
    use enroll_core::tenant::{AccessPackage, Assignment, ObjectRef, Subject};

    let golden: TenantSnapshot = serde_json::from_slice(
        &std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/golden/tenant.json"))
            .unwrap(),
    )
    .unwrap();
    let mut assignments = in_line();
    assignments.push(held(0, 1)); // a group holding two roles
    assignments.retain(|a| a.id != "held-9-9"); // a role no group holds
    assignments.push(AppRoleAssignment {
        id: "helpdesk-5".into(),
        principal_id: guid(0x61, 1),
        principal_display_name: Some("Helpdesk".into()),
        ..held(5, 5)
    }); // a role held by two groups
    let mut snapshot = tenant(roles(), assignments);
    snapshot.groups.push(Group {
        id: guid(0x62, 1),
        display_name: Some(format!("APP-{}", values()[10])),
        ..Group::default()
    }); // a mapped group whose name another group shares
    let projects = golden.catalogs[0].clone();
    let finance = golden.catalogs[1].clone();
    let package = |id: &str, name: &str, catalog: &enroll_core::tenant::Catalog| AccessPackage {
        id: id.into(),
        display_name: name.into(),
        catalog: Some(catalog.clone()),
        ..AccessPackage::default()
    };
    let holds = |id: &str, package: &str, user: &str| Assignment {
        id: id.into(),
        state: Some("delivered".into()),
        target: Some(Subject {
            object_id: Some(user.into()),
            ..Subject::default()
        }),
        access_package: Some(ObjectRef {
            id: package.into(),
            display_name: None,
        }),
        ..Assignment::default()
    };
    snapshot.users = golden.users.clone();
    snapshot.catalogs = golden.catalogs.clone();
    snapshot.access_packages = golden.access_packages.clone();
    snapshot.access_packages.extend([
        package("pkg-rnd", "R&D: Team/Lead", &projects),
        package("pkg-twin-1", "Twins", &finance),
        package("pkg-twin-2", "twins", &finance),
    ]);
    snapshot.assignments = golden.assignments.clone();
    snapshot.assignments.extend([
        holds("as-rnd-cyd", "pkg-rnd", "u-cyd"),
        holds("as-twin-bob", "pkg-twin-1", "u-bob"),
        holds("as-twin-dee", "pkg-twin-2", "u-dee"),
    ]);
    snapshot.assignment_requests = golden.assignment_requests.clone();
    let sim = start(SimConfig::default(), snapshot).await.unwrap();
    let graph = graph_client(&sim);
    let read = read_tenant(&graph, None, Some(APP_ID), "APP-{value}")
        .await
        .unwrap();
    let exported = export(
        &read,
        &ExportOptions {
            app_id: Some(APP_ID.into()),
            group_pattern: "APP-{value}".into(),
        },
    );
    let dir = tempfile::tempdir().unwrap();
    for file in &exported.files {
        let path = dir.path().join(&file.path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, &file.bytes).unwrap();
    }
    let paths: Vec<&str> = exported.files.iter().map(|f| f.path.as_str()).collect();
    assert!(paths.contains(&"Projects/R&D_ Team_Lead.csv"), "{paths:?}");
    assert!(paths.contains(&"Finance/twins (2).csv"), "{paths:?}");
    assert!(paths.contains(&"access-packages.json"));
    assert_eq!(exported.warnings.len(), 2, "{:?}", exported.warnings);

    // Rosters: every package planned, nothing to change.
    let now = sim.snapshot().await;
    let sources = enroll_store::local::read_rosters(dir.path(), Default::default()).unwrap();
    let options = PlanOptions {
        mapping: enroll_store::local::read_mapping(None, dir.path()).unwrap(),
        ..PlanOptions::default()
    };
    let rosters = plan(&sources, &now, &options);
    assert!(rosters.errors.is_empty(), "{:?}", rosters.errors);
    assert_eq!(rosters.packages.len(), 6);
    for package in &rosters.packages {
        assert!(!package.has_changes(), "{package:#?}");
    }
    let cyd = std::fs::read_to_string(dir.path().join("Projects/R&D_ Team_Lead.csv")).unwrap();
    assert!(
        cyd.contains("cyd@northwind.nl"),
        "a guest found by the UPN: {cyd}"
    );

    // Roles: the same application, nothing to change.
    let world = World::new(
        graph.clone(),
        LocalStorage::new(dir.path(), dir.path()).with_manifests(dir.path(), None),
        StepConfig::default(),
    );
    let planned = enroll_steps::plan_manifest(&world, "app-roles.json", false)
        .await
        .unwrap();
    let enroll_steps::RolesRead::Planned(plan) = planned else {
        panic!("not planned: {planned:?}");
    };
    assert!(!plan.has_changes(), "{plan:#?}");
    // 61 held, less Alpha.Contributor's: group 0 holds it besides its own role, so the
    // export leaves that role to no group, and its two holders are unmanaged with Helpdesk.
    assert_eq!(plan.unchanged_assignments, 60);
    let unmanaged: Vec<&str> = plan
        .unmanaged
        .iter()
        .map(|u| u.assignment_id.as_str())
        .collect();
    assert_eq!(unmanaged, ["held-0-1", "held-1-1", "helpdesk-5"]);
    let mapping = std::fs::read_to_string(dir.path().join("app-roles.mapping.json")).unwrap();
    assert!(
        mapping.contains(&group_id(10)),
        "a shared name is mapped by id: {mapping}"
    );
    assert!(
        mapping.contains(&format!("\"{}\": null", values()[9])),
        "a role no group holds: {mapping}"
    );
}
