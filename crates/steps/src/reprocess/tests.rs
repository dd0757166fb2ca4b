//! The reprocess step against an in-memory directory: which requests it reprocesses, how,
//! which it leaves, and what the audit trail, the failures report and the plan report say.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use enroll_core::audit::{Action, Outcome};
use enroll_core::messages::{Reason, ReconcileMessage, VERSION};
use enroll_core::tenant::{AccessPackage, AssignmentPolicy, Catalog};
use enroll_graph::UnfinishedRequest;

use crate::fake::{FakeDirectory, MemoryStorage, Tenant, assignment, graph_error, member};
use crate::{StepConfig, World, plan_roster};

const ROSTER: &str = "Projects/Alpha.csv";
const PACKAGE: &str = "package-alpha";
const NOW: Duration = Duration::from_secs(1_795_000_000);
const HOUR: Duration = Duration::from_secs(3_600);

fn now() -> SystemTime {
    UNIX_EPOCH + NOW
}

fn ago(age: Duration) -> Option<SystemTime> {
    Some(now() - age)
}

fn message() -> ReconcileMessage {
    ReconcileMessage {
        v: VERSION,
        run_id: "run-1".into(),
        roster: ROSTER.into(),
        etag: None,
        reason: Reason::Schedule,
        allow_removals: false,
        allow_additions: false,
        override_by: None,
        override_reason: None,
    }
}

fn request(
    id: &str,
    kind: &str,
    state: &str,
    created: Duration,
    assignment: Option<&str>,
) -> (String, UnfinishedRequest) {
    let ended = state == "deliveryFailed";
    (
        PACKAGE.to_owned(),
        UnfinishedRequest {
            id: id.into(),
            request_type: Some(kind.into()),
            state: state.into(),
            created: ago(created),
            completed: if ended { ago(created) } else { None },
            assignment_id: assignment.map(str::to_owned),
            assignment_state: None,
        },
    )
}

fn world(tenant: Tenant) -> World<MemoryStorage, FakeDirectory> {
    let catalog = Catalog {
        id: "catalog-projects".into(),
        display_name: Some("Projects".into()),
    };
    let tenant = Tenant {
        catalogs: vec![catalog.clone()],
        packages: vec![AccessPackage {
            id: PACKAGE.into(),
            display_name: "Alpha".into(),
            catalog: Some(catalog),
            assignment_policies: vec![AssignmentPolicy {
                id: "policy-admin".into(),
                allowed_target_scope: Some("notSpecified".into()),
                ..AssignmentPolicy::default()
            }],
            ..AccessPackage::default()
        }],
        ..tenant
    };
    let mut world = World::new(
        FakeDirectory::new(tenant),
        MemoryStorage::with_roster(ROSTER, "Ann;ann@contoso.com\n"),
        StepConfig::default(),
    );
    world.now = now;
    world
}

#[tokio::test]
async fn plan_reprocesses_what_failed_or_stuck_and_records_each_decision() {
    let mut failed_for_u1 = assignment("a1", PACKAGE, Some("u1"));
    failed_for_u1.state = Some("deliveryFailed".into());
    let mut failed_for_u6 = assignment("a6", PACKAGE, Some("u6"));
    failed_for_u6.state = Some("deliveryFailed".into());
    let refused = graph_error(
        400,
        "BadRequest",
        "Only requests in the deliveryFailed or partiallyDelivered state can be reprocessed.",
    );
    let throttled = graph_error(429, "TooManyRequests", "Please retry again later.");
    let tenant = Tenant {
        users: vec![member("u1", "ann@contoso.com")],
        assignments: vec![
            failed_for_u1,
            failed_for_u6,
            // u6 was assigned anew since: the failed request is not worth reprocessing.
            assignment("a6-new", PACKAGE, Some("u6")),
            assignment("a2", PACKAGE, Some("u2")),
        ],
        unfinished: vec![
            request("r1", "adminAdd", "deliveryFailed", HOUR, Some("a1")),
            request("r2", "adminAdd", "delivering", 7 * HOUR, Some("a2")),
            request("r3", "adminAdd", "delivering", HOUR, Some("a3")),
            request(
                "r4",
                "adminRemove",
                "partiallyDelivered",
                8 * HOUR,
                Some("a4"),
            ),
            request(
                "r5",
                "adminAdd",
                "deliveryFailed",
                15 * 24 * HOUR,
                Some("a5"),
            ),
            request("r6", "adminAdd", "deliveryFailed", HOUR, Some("a6")),
            request("r7", "adminAdd", "submitted", 7 * HOUR, None),
            request("r8", "adminAdd", "deliveryFailed", 2 * HOUR, None),
            (
                "other-package".into(),
                request("r9", "adminAdd", "deliveryFailed", HOUR, None).1,
            ),
        ],
        reprocess_errors: [("r4".to_owned(), refused), ("r8".to_owned(), throttled)].into(),
        ..Tenant::default()
    };
    let world = world(tenant);

    let outcome = plan_roster(&world, &message()).await.unwrap();

    let graph = world.graph.tenant();
    assert_eq!(graph.reprocessed_requests, ["r1", "r4", "r8"]);
    assert_eq!(graph.reprocessed_assignments, ["a2"]);
    drop(graph);
    let decisions: Vec<(Outcome, String)> = outcome
        .output
        .audit
        .iter()
        .filter(|r| r.action == Action::Reprocess)
        .map(|r| (r.outcome, r.detail.clone().unwrap_or_default()))
        .collect();
    let at = |age: Duration| enroll_core::audit::rfc3339(now() - age);
    assert_eq!(
        decisions,
        [
            (
                Outcome::Skipped,
                format!(
                    "request r5 (adminAdd) deliveryFailed since {} (360 h): ended more than 14 days ago, when Graph no longer reprocesses it; cancel it and ask anew",
                    at(15 * 24 * HOUR)
                )
            ),
            (
                Outcome::Skipped,
                format!(
                    "request r6 (adminAdd) deliveryFailed since {} (1 h): a newer assignment (a6-new) took its place",
                    at(HOUR)
                )
            ),
            (
                Outcome::Skipped,
                format!(
                    "request r7 (adminAdd) submitted since {} (7 h): Graph names no assignment to reprocess; a person needs to look",
                    at(7 * HOUR)
                )
            ),
            (
                Outcome::Done,
                format!(
                    "request r1 (adminAdd) deliveryFailed since {} (1 h): reprocessed the request",
                    at(HOUR)
                )
            ),
            (
                Outcome::Failed,
                format!(
                    "request r4 (adminRemove) partiallyDelivered since {} (8 h): Graph refused to reprocess the request: Microsoft Graph answered 400 to POST /$batch: BadRequest: Only requests in the deliveryFailed or partiallyDelivered state can be reprocessed. (request-id req-BadRequest)",
                    at(8 * HOUR)
                )
            ),
            (
                Outcome::Retrying,
                format!(
                    "request r8 (adminAdd) deliveryFailed since {} (2 h): reprocessing the request failed for now; the next run tries again: Microsoft Graph answered 429 to POST /$batch: TooManyRequests: Please retry again later. (request-id req-TooManyRequests)",
                    at(2 * HOUR)
                )
            ),
            (
                Outcome::Done,
                format!(
                    "request r2 (adminAdd) delivering since {} (7 h): reprocessed its assignment",
                    at(7 * HOUR)
                )
            ),
        ]
    );
    // The trail has them (with the plan's record), the failures report only the refusal,
    // and the plan's report lists them all.
    let trail = world.storage.audit();
    assert_eq!(
        trail
            .iter()
            .filter(|r| r.action == Action::Reprocess)
            .count(),
        7
    );
    let failures = world.storage.failures();
    assert_eq!(failures.len(), 1);
    assert!(
        failures[0].2.contains("reprocess `-`: request r4"),
        "{}",
        failures[0].2
    );
    let reports = world.storage.reports();
    assert_eq!(reports.len(), 1);
    let report = &reports[0].2;
    let section = report
        .split("## Requests that did not deliver")
        .nth(1)
        .unwrap_or_else(|| panic!("no reprocess section in {report}"));
    let lines: Vec<&str> = section.lines().filter(|l| l.starts_with("- ")).collect();
    assert_eq!(lines.len(), 7, "{report}");
    assert!(lines[3].starts_with("- done: request r1"), "{report}");
}

#[tokio::test]
async fn nothing_under_way_or_waiting_is_touched_and_the_report_stays_as_it_was() {
    let tenant = Tenant {
        unfinished: vec![
            request("r1", "adminAdd", "delivering", 5 * HOUR, Some("a1")),
            request("r2", "adminAdd", "submitted", Duration::from_secs(60), None),
            request("r3", "adminAdd", "partiallyDelivered", HOUR, Some("a3")),
        ],
        ..Tenant::default()
    };
    let world = world(tenant);

    let outcome = plan_roster(&world, &message()).await.unwrap();

    let graph = world.graph.tenant();
    assert!(graph.reprocessed_requests.is_empty() && graph.reprocessed_assignments.is_empty());
    drop(graph);
    assert!(
        outcome
            .output
            .audit
            .iter()
            .all(|r| r.action == Action::Plan)
    );
    assert!(!world.storage.reports()[0].2.contains("did not deliver"));
}

#[tokio::test]
async fn a_failed_removal_whose_assignment_is_gone_is_not_reprocessed() {
    let mut expired = assignment("a1", PACKAGE, Some("u1"));
    expired.state = Some("expired".into());
    let tenant = Tenant {
        assignments: vec![expired, assignment("a2", PACKAGE, Some("u2"))],
        unfinished: vec![
            request("r1", "adminRemove", "deliveryFailed", HOUR, Some("a1")),
            request("r2", "adminRemove", "deliveryFailed", HOUR, Some("a2")),
        ],
        ..Tenant::default()
    };
    let world = world(tenant);

    let outcome = plan_roster(&world, &message()).await.unwrap();

    assert_eq!(world.graph.tenant().reprocessed_requests, ["r2"]);
    let skipped: Vec<String> = outcome
        .output
        .audit
        .iter()
        .filter(|r| r.action == Action::Reprocess && r.outcome == Outcome::Skipped)
        .map(|r| r.detail.clone().unwrap_or_default())
        .collect();
    assert_eq!(skipped.len(), 1);
    assert!(
        skipped[0].ends_with("its assignment is gone already"),
        "{skipped:?}"
    );
}
