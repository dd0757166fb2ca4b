//! The Plan step against an in-memory directory and storage: overrides with and without who
//! and why, the undo window, and holders the directory cannot show.

use std::time::{Duration, SystemTime};

use enroll_core::audit::{Outcome, rfc3339};
use enroll_core::messages::{Reason, ReconcileMessage, VERSION};
use enroll_core::plan::{BlockReason, KeptReason, OVERRIDE_REFUSED};

use crate::fake::{FakeDirectory, MemoryStorage, Tenant, assignment, member, package, projects};
use crate::{PlanOutcome, StepConfig, World, plan_roster};

const ROSTER: &str = "Projects/Alpha.csv";
const PACKAGE: &str = "package-alpha";
const NOW: u64 = 1_795_000_000;

fn world(roster: &str, tenant: Tenant, config: StepConfig) -> World<MemoryStorage, FakeDirectory> {
    let tenant = Tenant {
        packages: vec![package(PACKAGE, "Alpha", "policy-admin")],
        catalogs: vec![projects()],
        ..tenant
    };
    let mut world = World::new(
        FakeDirectory::new(tenant),
        MemoryStorage::with_roster(ROSTER, roster),
        config,
    );
    world.now = || SystemTime::UNIX_EPOCH + Duration::from_secs(NOW);
    world
}

/// Ann and Bo hold Alpha.
fn two_holders() -> Tenant {
    Tenant {
        users: vec![
            member("u-ann", "ann@contoso.com"),
            member("u-bo", "bo@contoso.com"),
        ],
        assignments: vec![
            assignment("a-ann", PACKAGE, Some("u-ann")),
            assignment("a-bo", PACKAGE, Some("u-bo")),
        ],
        ..Tenant::default()
    }
}

fn reconcile(allow_removals: bool, by: Option<&str>, why: Option<&str>) -> ReconcileMessage {
    ReconcileMessage {
        v: VERSION,
        run_id: "run-1".into(),
        roster: ROSTER.into(),
        etag: None,
        reason: Reason::Api,
        allow_removals,
        allow_additions: false,
        override_by: by.map(str::to_owned),
        override_reason: why.map(str::to_owned),
    }
}

async fn plan(
    world: &World<MemoryStorage, FakeDirectory>,
    message: &ReconcileMessage,
) -> PlanOutcome {
    plan_roster(world, message).await.unwrap()
}

#[tokio::test]
async fn an_override_in_a_message_is_honoured_only_with_who_and_why_and_is_audited() {
    // A roster for another package: it names none of Alpha's holders.
    let roster = "Cy;cy@fabrikam.com\n";
    let world = world(roster, two_holders(), StepConfig::default());

    let refused = plan(&world, &reconcile(true, None, Some("handover"))).await;
    let package = refused.plan.unwrap();
    assert_eq!(package.blocked, Some(BlockReason::AllHolders));
    assert_eq!(package.override_refused.as_deref(), Some(OVERRIDE_REFUSED));
    assert!(refused.output.remove.is_empty() && refused.output.invite.is_empty());
    let record = &refused.output.audit[0];
    assert_eq!(record.outcome, Outcome::Rejected);
    let detail = record.detail.as_deref().unwrap();
    assert!(detail.contains("override refused"), "{detail}");

    let honoured = plan(
        &world,
        &reconcile(
            true,
            Some("alice@contoso.com"),
            Some("Alpha handed over to Beta"),
        ),
    )
    .await;
    let package = honoured.plan.unwrap();
    assert_eq!(
        (package.blocked, package.overridden),
        (None, Some(BlockReason::AllHolders))
    );
    assert_eq!(honoured.output.remove[0].people.len(), 2);
    let record = &honoured.output.audit[0];
    assert_eq!(record.outcome, Outcome::Done);
    let detail = record.detail.as_deref().unwrap();
    assert!(
        detail.contains("all_holders overridden by alice@contoso.com: Alpha handed over to Beta"),
        "{detail}"
    );
    // Both decisions are in the stored audit trail too.
    assert_eq!(world.storage.audit().len(), 2);
}

#[tokio::test]
async fn with_an_undo_window_the_plan_says_when_removals_happen() {
    let config = StepConfig {
        removal_delay: Duration::from_secs(24 * 3600),
        ..StepConfig::default()
    };
    let world = world("Ann;ann@contoso.com\n", two_holders(), config);

    let outcome = plan(&world, &reconcile(false, None, None)).await;

    let when = rfc3339(SystemTime::UNIX_EPOCH + Duration::from_secs(NOW + 24 * 3600));
    let package = outcome.plan.unwrap();
    assert_eq!(package.remove.len(), 1);
    assert_eq!(package.remove[0].not_before.as_deref(), Some(when.as_str()));
    assert_eq!(outcome.output.remove[0].people[0].assignment_id, "a-bo");
    let detail = outcome.output.audit[0].detail.clone().unwrap();
    assert!(
        detail.contains(&format!("removals not before {when}")),
        "{detail}"
    );
}

#[tokio::test]
async fn a_holder_the_directory_does_not_know_is_kept_and_an_alias_holder_is_found() {
    let mut tenant = two_holders();
    // Ann is listed by an alias the lookups must find; a holder nobody knows stays.
    tenant.users[0].proxy_addresses = vec!["smtp:a.smith@contoso.com".into()];
    tenant
        .assignments
        .push(assignment("a-gone", PACKAGE, Some("u-deleted")));
    let world = world(
        "Ann;A.Smith@contoso.com\nBo;bo@contoso.com\n",
        tenant,
        StepConfig::default(),
    );

    let outcome = plan(&world, &reconcile(false, None, None)).await;

    let package = outcome.plan.unwrap();
    assert_eq!(package.unchanged, 2);
    assert!(
        package.remove.is_empty() && package.invite.is_empty(),
        "{package:?}"
    );
    assert_eq!(package.kept.len(), 1);
    assert_eq!(
        (
            package.kept[0].assignment_id.as_str(),
            package.kept[0].reason
        ),
        ("a-gone", KeptReason::Unidentified)
    );
    assert!(outcome.output.remove.is_empty());
}
