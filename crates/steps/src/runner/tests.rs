//! The runner against an in-memory directory and storage: a step that stops without an
//! answer (a panic, which only a test can provoke) is given up on with a record for every
//! person in its message, and the summary says what was not done.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use enroll_core::audit::{Action, Outcome};
use enroll_core::tenant::{AccessPackage, AssignmentPolicy};

use super::{Failure, RunOptions, run};
use crate::fake::{FakeDirectory, MemoryStorage, Tenant, member};
use crate::{StepConfig, World};

const ROSTER: &str = "Alpha.csv";
const PEOPLE: &str = "Ann;ann@contoso.com\nXi;xi@fabrikam.com\nYo;yo@fabrikam.com\n";

fn tenant() -> Tenant {
    Tenant {
        users: vec![member("u-ann", "ann@contoso.com")],
        packages: vec![AccessPackage {
            id: "package-alpha".into(),
            display_name: "Alpha".into(),
            assignment_policies: vec![AssignmentPolicy {
                id: "policy-admin".into(),
                allowed_target_scope: Some("notSpecified".into()),
                ..AssignmentPolicy::default()
            }],
            ..AccessPackage::default()
        }],
        ..Tenant::default()
    }
}

fn world(tenant: Tenant) -> Arc<World<MemoryStorage, FakeDirectory>> {
    let mut world = World::new(
        FakeDirectory::new(tenant),
        MemoryStorage::with_roster(ROSTER, PEOPLE),
        StepConfig::default(),
    );
    world.now = || SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_000_000);
    Arc::new(world)
}

fn options() -> RunOptions {
    RunOptions {
        run_id: "run-1".into(),
        retry_delay: Duration::from_millis(1),
        ..RunOptions::default()
    }
}

#[tokio::test]
async fn a_step_that_panics_is_given_up_on_with_a_failure_record_for_everyone_in_it() {
    let world = world(Tenant {
        panic_on_invite: vec!["xi@fabrikam.com".into()],
        ..tenant()
    });
    let summary = run(world.clone(), &options(), |_| {}).await.unwrap();
    assert_eq!(summary.failures.len(), 1, "{:?}", summary.failures);
    let Failure {
        queue,
        roster,
        people,
        error,
    } = &summary.failures[0];
    assert_eq!((*queue, roster.as_str(), *people), ("invite", ROSTER, 2));
    assert_eq!(
        error,
        "the step stopped unexpectedly (panic: the test made the invitation of xi@fabrikam.com panic)"
    );
    // Both people of the invite message are recorded, once each; Ann's assignment went on.
    let failed: Vec<(Action, String)> = world
        .storage
        .audit()
        .into_iter()
        .filter(|r| r.outcome == Outcome::Failed)
        .map(|r| (r.action, r.email.unwrap_or_default()))
        .collect();
    assert_eq!(
        failed,
        vec![
            (Action::Invite, "xi@fabrikam.com".to_owned()),
            (Action::Invite, "yo@fabrikam.com".to_owned()),
        ]
    );
    assert_eq!(summary.count(Action::Invite, Outcome::Failed), 2);
    assert_eq!(summary.count(Action::Assign, Outcome::Done), 1);
    let reports = world.storage.failures();
    assert_eq!(reports.len(), 1, "{reports:?}");
    let (run_id, roster, markdown) = &reports[0];
    assert_eq!((run_id.as_str(), roster.as_str()), ("run-1", ROSTER));
    assert_eq!(markdown.lines().count(), 2, "{markdown}");
    assert!(
        markdown.contains("invite `xi@fabrikam.com`: set aside: the step stopped unexpectedly")
            && markdown.contains("invite `yo@fabrikam.com`: set aside:"),
        "{markdown}"
    );
    assert!(!summary.applied_everything());
    assert_eq!(
        summary.not_done(),
        vec![
            "1 message(s) failed for good, 2 people given up on (see the failures report)"
                .to_owned()
        ]
    );
}

#[tokio::test]
async fn a_plan_that_panics_fails_its_roster_and_changes_nothing() {
    let world = world(Tenant {
        panic_on_lookup: vec!["ann@contoso.com".into()],
        ..tenant()
    });
    let summary = run(world.clone(), &options(), |_| {}).await.unwrap();
    assert_eq!(summary.failures.len(), 1, "{:?}", summary.failures);
    let failure = &summary.failures[0];
    assert_eq!(
        (failure.queue, failure.roster.as_str(), failure.people),
        ("reconcile", ROSTER, 0)
    );
    assert!(
        failure
            .error
            .starts_with("the step stopped unexpectedly (panic: the test made the lookup of"),
        "{}",
        failure.error
    );
    assert!(summary.plans.is_empty());
    let directory = world.graph.tenant();
    assert!(directory.invited.is_empty() && directory.added.is_empty());
    let audit = world.storage.audit();
    assert_eq!(audit.len(), 1, "{audit:?}");
    assert_eq!(
        (audit[0].action, audit[0].outcome),
        (Action::Plan, Outcome::Failed)
    );
    assert_eq!(world.storage.failures().len(), 1);
    assert_eq!(
        summary.not_done(),
        vec![
            "1 message(s) failed for good, 0 people given up on (see the failures report)"
                .to_owned()
        ]
    );
}

#[tokio::test]
async fn a_run_that_did_everything_says_so() {
    let world = world(tenant());
    let summary = run(world.clone(), &options(), |_| {}).await.unwrap();
    assert!(summary.failures.is_empty(), "{:?}", summary.failures);
    assert!(summary.applied_everything());
    assert_eq!(summary.not_done(), Vec::<String>::new());
    assert_eq!(summary.count(Action::Invite, Outcome::Done), 2);
}
