//! The people steps against an in-memory directory and storage: what each decides for
//! assignments without a target, an address two users share, a user not visible yet after
//! an invitation, and answers from Graph that say the change is already in place.

use std::time::{Duration, SystemTime};

use enroll_core::audit::{AuditRecord, Outcome};
use enroll_core::messages::{
    AssignPerson, ChangeContext, ChangeMessage, InvitePerson, RemovePerson, VERSION,
};
use enroll_core::tenant::{AssignmentRequest, ObjectRef, RequestedAssignment};
use enroll_graph::NewAssignment;

use crate::fake::{
    FIRST, FakeDirectory, LAST, MemoryStorage, Tenant, assignment, graph_error, guest, member,
    package, projects,
};
use crate::{
    Aside, Attempt, Disposition, StepConfig, StepError, StepOutput, World, assign, disposition,
    invite, remove,
};

const ROSTER: &str = "Projects/Alpha.csv";
const PACKAGE: &str = "package-alpha";
const BETA: &str = "package-beta";
const POLICY: &str = "policy-admin";
const ANN: &str = "ann@contoso.com";
const BO: &str = "bo@fabrikam.com";
const SAM: &str = "sam@contoso.com";

type TestWorld = World<MemoryStorage, FakeDirectory>;

/// The catalog `Projects` with package `Alpha` (the roster's, by its path) and `Beta`.
fn with_packages(mut tenant: Tenant) -> Tenant {
    if tenant.packages.is_empty() {
        tenant.packages = vec![
            package(PACKAGE, "Alpha", POLICY),
            package(BETA, "Beta", POLICY),
        ];
    }
    tenant.catalogs = vec![projects()];
    tenant
}

fn world(roster: &str, tenant: Tenant) -> TestWorld {
    world_with(roster, tenant, None, StepConfig::default())
}

fn world_with(
    roster: &str,
    tenant: Tenant,
    mapping: Option<&str>,
    config: StepConfig,
) -> TestWorld {
    let mut storage = MemoryStorage::with_roster(ROSTER, roster);
    storage.mapping = mapping.map(str::to_owned);
    let mut world = World::new(FakeDirectory::new(with_packages(tenant)), storage, config);
    world.now = || SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_000_000);
    world
}

fn message<P>(people: Vec<P>) -> ChangeMessage<P> {
    ChangeMessage {
        context: ChangeContext {
            v: VERSION,
            run_id: "run-1".into(),
            roster: ROSTER.into(),
            etag: "v1".into(),
            access_package_id: PACKAGE.into(),
            assignment_policy_id: Some(POLICY.into()),
        },
        people,
    }
}

/// `message` as planned on an earlier version of the roster (`v0`; the roster is at `v1`):
/// the step reads the tenant again before it acts.
fn planned_on_an_earlier_version<P>(mut message: ChangeMessage<P>) -> ChangeMessage<P> {
    message.context.etag = "v0".into();
    message
}

fn invitee(email: &str) -> InvitePerson {
    InvitePerson {
        email: email.into(),
        display_name: String::new(),
    }
}

fn assignee(email: &str, user_id: Option<&str>) -> AssignPerson {
    AssignPerson {
        email: email.into(),
        user_id: user_id.map(str::to_owned),
    }
}

fn holder(email: &str, user_id: Option<&str>, assignment_id: &str) -> RemovePerson {
    RemovePerson {
        email: email.into(),
        user_id: user_id.map(str::to_owned),
        assignment_id: assignment_id.into(),
    }
}

fn new_assignment(user_id: &str) -> NewAssignment {
    NewAssignment {
        target_id: user_id.into(),
        access_package_id: PACKAGE.into(),
        assignment_policy_id: POLICY.into(),
    }
}

/// What the audit trail tells a reader: whom, how it ended, and why.
fn decisions(records: &[AuditRecord]) -> Vec<(String, Outcome, String)> {
    records
        .iter()
        .map(|r| {
            (
                r.email.clone().unwrap_or_default(),
                r.outcome,
                r.detail.clone().unwrap_or_default(),
            )
        })
        .collect()
}

fn decision(email: &str, outcome: Outcome, detail: &str) -> (String, Outcome, String) {
    (email.into(), outcome, detail.into())
}

/// The decision for a removal the directory accepted as its `n`th request.
fn remove_requested(email: &str, n: usize) -> (String, Outcome, String) {
    decision(
        email,
        Outcome::Done,
        &format!("adminRemove requested (request request-remove-{n})"),
    )
}

/// The people a failed try asks to try again, after checking the message goes back to the
/// queue for them.
fn to_retry(result: &Result<StepOutput, StepError>, attempt: Attempt) -> Vec<String> {
    assert!(
        matches!(
            disposition(result.as_ref(), attempt),
            Disposition::RetryLater { .. }
        ),
        "{result:?}"
    );
    match result {
        Err(StepError::PeopleToRetry { count, emails, .. }) => {
            assert_eq!(*count, emails.len());
            emails.clone()
        }
        other => panic!("expected people to retry, got {other:?}"),
    }
}

/// The people set aside on their own after the last try; the rest of the output goes on.
fn set_aside_alone(output: &StepOutput) -> Vec<String> {
    match disposition(Ok(output), LAST) {
        Disposition::SetAside {
            aside: Aside::People(people),
            reason,
        } => {
            assert_eq!(reason, "gave up after 5 tries");
            people
        }
        other => panic!("expected people set aside, got {other:?}"),
    }
}

/// Asserts that the one record is `email` skipped, naming both users who share it, as
/// Plan does (`an_address_shared_by_two_users_is_skipped_not_guessed`).
fn assert_skipped_naming_both(records: &[AuditRecord], email: &str) {
    let decided = decisions(records);
    assert_eq!(decided.len(), 1, "{decided:?}");
    let (whom, outcome, detail) = &decided[0];
    assert_eq!((whom.as_str(), *outcome), (email, Outcome::Skipped));
    assert!(detail.contains("u-1") && detail.contains("u-2"), "{detail}");
}

/// Two users answering to `email`: a member with it as mail, and a guest invited with it.
fn two_users_sharing(email: &str) -> Vec<enroll_core::tenant::User> {
    vec![member("u-1", email), guest("u-2", email)]
}

// --- Invite -------------------------------------------------------------------------------

#[tokio::test]
async fn invite_invites_past_an_assignment_without_a_target_and_leaves_it_alone() {
    let tenant = Tenant {
        assignments: vec![assignment("a-orphan", PACKAGE, None)],
        ..Tenant::default()
    };
    let world = world("Ann;ann@contoso.com\n", tenant);

    let output = invite(&world, &message(vec![invitee(ANN)]), FIRST)
        .await
        .unwrap();

    assert_eq!(
        decisions(&output.audit),
        [decision(
            ANN,
            Outcome::Done,
            "invited (invitation invitation-1)"
        )]
    );
    assert_eq!(
        output.assign,
        [message(vec![assignee(ANN, Some("guest-1"))])]
    );
    assert!(output.gave_up.is_empty());
    assert_eq!(world.storage.audit(), output.audit);
    let tenant = world.graph.tenant();
    assert_eq!(tenant.invited, [ANN]);
    assert!(tenant.added.is_empty() && tenant.removed.is_empty());
}

#[tokio::test]
async fn invite_hands_on_no_one_for_an_address_two_users_share() {
    let tenant = Tenant {
        users: two_users_sharing(SAM),
        ..Tenant::default()
    };
    let world = world("Sam;sam@contoso.com\n", tenant);

    let output = invite(&world, &message(vec![invitee(SAM)]), FIRST)
        .await
        .unwrap();

    assert_skipped_naming_both(&output.audit, SAM);
    assert!(output.assign.is_empty(), "{:?}", output.assign);
    assert!(world.graph.tenant().invited.is_empty());
}

#[tokio::test]
async fn invite_again_before_the_first_guest_is_visible_hands_on_that_guest() {
    // The first try invited Ann; her guest account does not show in lookups yet.
    let tenant = Tenant {
        not_yet_visible: vec![guest("guest-ann", ANN)],
        ..Tenant::default()
    };
    let world = world("Ann;ann@contoso.com\n", tenant);

    let output = invite(&world, &message(vec![invitee(ANN)]), Attempt::of(2, 5))
        .await
        .unwrap();

    assert_eq!(
        decisions(&output.audit),
        [decision(
            ANN,
            Outcome::Done,
            "invited (invitation invitation-1)"
        )]
    );
    assert_eq!(
        output.assign,
        [message(vec![assignee(ANN, Some("guest-ann"))])]
    );
    assert_eq!(world.graph.tenant().invited, [ANN]);
}

#[tokio::test]
async fn invite_counts_an_existing_user_as_already_done_and_hands_them_on() {
    let tenant = Tenant {
        invite_errors: [(
            BO.to_owned(),
            graph_error(
                400,
                "UserAlreadyExists",
                "The invited user already exists in the directory as object ID: u-bo",
            ),
        )]
        .into(),
        ..Tenant::default()
    };
    let world = world("Ann;ann@contoso.com\nBo;bo@fabrikam.com\n", tenant);

    let output = invite(&world, &message(vec![invitee(ANN), invitee(BO)]), FIRST)
        .await
        .unwrap();

    assert_eq!(
        decisions(&output.audit),
        [
            decision(ANN, Outcome::Done, "invited (invitation invitation-1)"),
            decision(BO, Outcome::AlreadyDone, "already a user of the tenant"),
        ]
    );
    assert_eq!(
        output.audit[1].request_id.as_deref(),
        Some("req-UserAlreadyExists")
    );
    assert_eq!(
        output.assign,
        [message(vec![
            assignee(ANN, Some("guest-1")),
            assignee(BO, None)
        ])]
    );
    assert!(output.gave_up.is_empty());
    assert_eq!(world.graph.tenant().invited, [ANN, BO]);
}

#[tokio::test]
async fn a_throttled_invitation_is_tried_again_then_set_aside_after_the_last_try() {
    let throttled = graph_error(429, "TooManyRequests", "Too many requests");
    let tenant = Tenant {
        invite_errors: [(ANN.to_owned(), throttled.clone())].into(),
        ..Tenant::default()
    };
    let world = world("Ann;ann@contoso.com\n", tenant);
    let message = message(vec![invitee(ANN)]);

    let first = invite(&world, &message, FIRST).await;
    assert_eq!(to_retry(&first, FIRST), [ANN]);
    assert_eq!(
        decisions(&world.storage.audit()),
        [decision(ANN, Outcome::Retrying, &throttled.to_string())]
    );
    assert!(world.storage.failures().is_empty());

    let last = invite(&world, &message, LAST).await.unwrap();
    let gave_up = format!("gave up after 5 tries: {throttled}");
    assert_eq!(
        decisions(&last.audit),
        [decision(ANN, Outcome::Failed, &gave_up)]
    );
    assert_eq!(set_aside_alone(&last), [ANN]);
    assert!(last.assign.is_empty());
    let failures = world.storage.failures();
    assert_eq!(failures.len(), 1);
    assert_eq!(
        (failures[0].0.as_str(), failures[0].1.as_str()),
        ("run-1", ROSTER)
    );
    assert!(
        failures[0]
            .2
            .contains(&format!("invite `{ANN}`: {gave_up}")),
        "{}",
        failures[0].2
    );
    assert_eq!(world.graph.tenant().invited, [ANN, ANN]);
}

// --- Assign -------------------------------------------------------------------------------

#[tokio::test]
async fn assign_is_not_held_back_by_an_assignment_or_request_without_a_target() {
    let orphan_request = AssignmentRequest {
        id: "r-orphan".into(),
        request_type: Some("adminAdd".into()),
        state: Some("submitted".into()),
        access_package: Some(ObjectRef {
            id: PACKAGE.into(),
            display_name: None,
        }),
        ..AssignmentRequest::default()
    };
    let tenant = Tenant {
        users: vec![member("u-ann", ANN)],
        assignments: vec![assignment("a-orphan", PACKAGE, None)],
        requests: vec![orphan_request],
        ..Tenant::default()
    };
    let world = world("Ann;ann@contoso.com\n", tenant);

    let output = assign(&world, &message(vec![assignee(ANN, None)]), FIRST)
        .await
        .unwrap();

    assert_eq!(
        decisions(&output.audit),
        [decision(
            ANN,
            Outcome::Done,
            "adminAdd requested (request request-1)"
        )]
    );
    assert_eq!(output.audit[0].user_id.as_deref(), Some("u-ann"));
    let tenant = world.graph.tenant();
    assert_eq!(tenant.added, [new_assignment("u-ann")]);
    assert!(tenant.removed.is_empty());
}

#[tokio::test]
async fn assign_gives_the_package_to_no_one_for_an_address_two_users_share() {
    let tenant = Tenant {
        users: two_users_sharing(SAM),
        ..Tenant::default()
    };
    let world = world("Sam;sam@contoso.com\n", tenant);

    let output = assign(&world, &message(vec![assignee(SAM, None)]), FIRST)
        .await
        .unwrap();

    assert_skipped_naming_both(&output.audit, SAM);
    assert!(output.gave_up.is_empty());
    assert!(world.graph.tenant().added.is_empty());
}

#[tokio::test]
async fn assign_waits_for_a_guest_not_yet_visible_and_sets_only_them_aside_after_the_last_try() {
    let tenant = Tenant {
        users: vec![member("u-bo", BO)],
        not_yet_visible: vec![guest("guest-ann", ANN)],
        ..Tenant::default()
    };
    let world = world("Ann;ann@contoso.com\nBo;bo@fabrikam.com\n", tenant);
    let message =
        planned_on_an_earlier_version(message(vec![assignee(ANN, None), assignee(BO, None)]));

    let first = assign(&world, &message, FIRST).await;
    assert_eq!(to_retry(&first, FIRST), [ANN]);
    assert_eq!(
        decisions(&world.storage.audit()),
        [
            decision(
                ANN,
                Outcome::Retrying,
                "no user has this address yet (a fresh invitation may take a while to replicate)"
            ),
            decision(BO, Outcome::Done, "adminAdd requested (request request-1)"),
        ]
    );
    assert_eq!(world.graph.tenant().added, [new_assignment("u-bo")]);

    let last = assign(&world, &message, LAST).await.unwrap();
    assert_eq!(
        decisions(&last.audit),
        [
            decision(
                ANN,
                Outcome::Failed,
                "gave up after 5 tries: no user has this address yet"
            ),
            decision(
                BO,
                Outcome::AlreadyDone,
                "an assignment request is already open"
            ),
        ]
    );
    assert_eq!(set_aside_alone(&last), [ANN]);
    assert_eq!(world.storage.failures().len(), 1);
    // Bo was asked for once: the second try saw the open request.
    assert_eq!(world.graph.tenant().added, [new_assignment("u-bo")]);
}

#[tokio::test]
async fn assign_tries_again_when_graph_does_not_know_a_fresh_guest_yet() {
    let not_replicated = graph_error(400, "UserNotFound", "The user could not be found");
    let tenant = Tenant {
        not_yet_visible: vec![guest("guest-ann", ANN)],
        add_errors: [("guest-ann".to_owned(), not_replicated.clone())].into(),
        ..Tenant::default()
    };
    let world = world("Ann;ann@contoso.com\n", tenant);

    let result = assign(
        &world,
        &message(vec![assignee(ANN, Some("guest-ann"))]),
        FIRST,
    )
    .await;

    assert_eq!(to_retry(&result, FIRST), [ANN]);
    assert_eq!(
        decisions(&world.storage.audit()),
        [decision(
            ANN,
            Outcome::Retrying,
            &not_replicated.to_string()
        )]
    );
    assert_eq!(world.graph.tenant().added, [new_assignment("guest-ann")]);
}

#[tokio::test]
async fn assign_counts_a_held_assignment_and_an_open_request_as_already_done() {
    let open_request = graph_error(
        400,
        "ExistingOpenRequest",
        "There is already an open request for this user",
    );
    let tenant = Tenant {
        users: vec![member("u-ann", ANN), member("u-bo", BO)],
        assignments: vec![assignment("a-ann", PACKAGE, Some("u-ann"))],
        add_errors: [("u-bo".to_owned(), open_request.clone())].into(),
        ..Tenant::default()
    };
    let world = world("Ann;ann@contoso.com\nBo;bo@fabrikam.com\n", tenant);

    let output = assign(
        &world,
        &planned_on_an_earlier_version(message(vec![
            assignee(ANN, None),
            assignee(BO, Some("u-bo")),
        ])),
        FIRST,
    )
    .await
    .unwrap();

    assert_eq!(
        decisions(&output.audit),
        [
            decision(
                ANN,
                Outcome::AlreadyDone,
                "already holds an active assignment"
            ),
            decision(BO, Outcome::AlreadyDone, &open_request.to_string()),
        ]
    );
    assert_eq!(
        output.audit[1].request_id.as_deref(),
        Some("req-ExistingOpenRequest")
    );
    assert!(output.gave_up.is_empty());
    assert_eq!(world.graph.tenant().added, [new_assignment("u-bo")]);
}

// --- Remove -------------------------------------------------------------------------------

#[tokio::test]
async fn remove_keeps_an_assignment_whose_holder_it_cannot_identify() {
    let tenant = Tenant {
        users: vec![member("u-ann", ANN)],
        assignments: vec![assignment("a-orphan", PACKAGE, None)],
        ..Tenant::default()
    };
    let world = world("Ann;ann@contoso.com\n", tenant);

    // What Plan sends for an active assignment without a target.
    let output = remove(&world, &message(vec![holder("", None, "a-orphan")]), FIRST)
        .await
        .unwrap();

    assert_eq!(output.audit.len(), 1);
    assert_eq!(output.audit[0].outcome, Outcome::Skipped);
    assert!(output.gave_up.is_empty());
    assert!(world.graph.tenant().removed.is_empty());
}

#[tokio::test]
async fn remove_keeps_users_sharing_an_address_that_is_back_in_the_roster() {
    let tenant = Tenant {
        users: two_users_sharing(SAM),
        assignments: vec![
            assignment("a-1", PACKAGE, Some("u-1")),
            assignment("a-2", PACKAGE, Some("u-2")),
        ],
        ..Tenant::default()
    };
    // Planned when Sam was not in the roster; now Sam is back.
    let world = world("Ann;ann@contoso.com\nSam;sam@contoso.com\n", tenant);

    let output = remove(
        &world,
        &message(vec![
            holder(SAM, Some("u-1"), "a-1"),
            holder(
                "sam_contoso.com#EXT#@contoso.onmicrosoft.com",
                Some("u-2"),
                "a-2",
            ),
        ]),
        FIRST,
    )
    .await
    .unwrap();

    assert_eq!(
        decisions(&output.audit),
        [
            decision(SAM, Outcome::Skipped, "back in the roster; not removed"),
            decision(
                "sam_contoso.com#EXT#@contoso.onmicrosoft.com",
                Outcome::Skipped,
                "back in the roster; not removed"
            ),
        ]
    );
    assert!(world.graph.tenant().removed.is_empty());
}

#[tokio::test]
async fn remove_decides_for_guests_not_yet_visible_by_the_address_they_were_invited_with() {
    let tenant = Tenant {
        not_yet_visible: vec![guest("guest-ann", ANN), guest("guest-bo", BO)],
        assignments: vec![
            assignment("a-ann", PACKAGE, Some("guest-ann")),
            assignment("a-bo", PACKAGE, Some("guest-bo")),
        ],
        ..Tenant::default()
    };
    let world = world("Ann;ann@contoso.com\n", tenant);

    let output = remove(
        &world,
        &message(vec![
            holder(ANN, Some("guest-ann"), "a-ann"),
            holder(BO, Some("guest-bo"), "a-bo"),
        ]),
        FIRST,
    )
    .await
    .unwrap();

    assert_eq!(
        decisions(&output.audit),
        [
            decision(ANN, Outcome::Skipped, "back in the roster; not removed"),
            remove_requested(BO, 1),
        ]
    );
    assert_eq!(world.graph.tenant().removed, ["a-bo"]);
}

#[tokio::test]
async fn remove_counts_an_assignment_already_gone_as_already_done() {
    let already_removed = graph_error(
        400,
        "BadRequest",
        "The assignment has already been removed.",
    );
    let mut expired = assignment("a-cy", PACKAGE, Some("u-cy"));
    expired.state = Some("expired".into());
    let tenant = Tenant {
        users: vec![
            member("u-bo", BO),
            member("u-cy", "cy@fabrikam.com"),
            member("u-dee", "dee@fabrikam.com"),
        ],
        assignments: vec![
            assignment("a-bo", PACKAGE, Some("u-bo")),
            expired,
            assignment("a-dee", PACKAGE, Some("u-dee")),
        ],
        remove_errors: [("a-dee".to_owned(), already_removed.clone())].into(),
        ..Tenant::default()
    };
    let world = world("Ann;ann@contoso.com\n", tenant);

    let output = remove(
        &world,
        &planned_on_an_earlier_version(message(vec![
            holder(BO, Some("u-bo"), "a-bo"),
            holder("cy@fabrikam.com", Some("u-cy"), "a-cy"),
            holder("dee@fabrikam.com", Some("u-dee"), "a-dee"),
            holder("eve@fabrikam.com", None, "a-eve"),
        ])),
        FIRST,
    )
    .await
    .unwrap();

    assert_eq!(
        decisions(&output.audit),
        [
            decision(
                "cy@fabrikam.com",
                Outcome::AlreadyDone,
                "the assignment is already gone"
            ),
            decision(
                "eve@fabrikam.com",
                Outcome::AlreadyDone,
                "the assignment is already gone"
            ),
            remove_requested(BO, 1),
            decision(
                "dee@fabrikam.com",
                Outcome::AlreadyDone,
                &already_removed.to_string()
            ),
        ]
    );
    assert!(output.gave_up.is_empty());
    assert!(world.storage.failures().is_empty());
    assert_eq!(world.graph.tenant().removed, ["a-bo", "a-dee"]);
}

#[tokio::test]
async fn on_the_roster_the_plan_saw_assign_writes_unread_and_takes_graph_s_already_done() {
    let tenant = Tenant {
        users: vec![
            member("u-ann", ANN),
            member("u-bo", BO),
            member("u-sam", SAM),
        ],
        assignments: vec![assignment("a-ann", PACKAGE, Some("u-ann"))],
        requests: vec![AssignmentRequest {
            id: "rq-bo".into(),
            request_type: Some("adminAdd".into()),
            state: Some("submitted".into()),
            access_package: Some(ObjectRef {
                id: PACKAGE.into(),
                display_name: None,
            }),
            assignment: Some(RequestedAssignment {
                target_id: Some("u-bo".into()),
                ..RequestedAssignment::default()
            }),
            ..AssignmentRequest::default()
        }],
        ..Tenant::default()
    };
    let world = world(
        "Ann;ann@contoso.com\nBo;bo@fabrikam.com\nSam;sam@contoso.com\n",
        tenant,
    );

    let output = assign(
        &world,
        &message(vec![
            assignee(ANN, Some("u-ann")),
            assignee(BO, Some("u-bo")),
            assignee(SAM, Some("u-sam")),
        ]),
        FIRST,
    )
    .await
    .unwrap();

    let outcomes: Vec<Outcome> = output.audit.iter().map(|r| r.outcome).collect();
    assert_eq!(
        outcomes,
        [Outcome::AlreadyDone, Outcome::AlreadyDone, Outcome::Done],
        "{:?}",
        decisions(&output.audit)
    );
    assert_eq!(world.graph.tenant().assignment_reads, 0);
    assert_eq!(world.graph.tenant().added.len(), 3, "one $batch of three");
}

#[tokio::test]
async fn on_the_roster_the_plan_saw_remove_reads_the_holders_but_not_their_assignments() {
    let mut expired = assignment("a-cy", PACKAGE, Some("u-cy"));
    expired.state = Some("expired".into());
    let mut ann_smith = member("u-ann2", "ann.smith@contoso.com");
    ann_smith.other_mails = vec![ANN.into()];
    let tenant = Tenant {
        users: vec![
            member("u-bo", BO),
            member("u-cy", "cy@fabrikam.com"),
            ann_smith,
        ],
        assignments: vec![
            assignment("a-bo", PACKAGE, Some("u-bo")),
            expired,
            assignment("a-ann2", PACKAGE, Some("u-ann2")),
        ],
        ..Tenant::default()
    };
    let world = world("Ann;ann@contoso.com\n", tenant);

    let output = remove(
        &world,
        &message(vec![
            holder(BO, Some("u-bo"), "a-bo"),
            holder("cy@fabrikam.com", Some("u-cy"), "a-cy"),
            // Known by an address in the roster: the holders' addresses are still read.
            holder("ann.smith@contoso.com", Some("u-ann2"), "a-ann2"),
        ]),
        FIRST,
    )
    .await
    .unwrap();

    let outcomes: Vec<(String, Outcome)> = output
        .audit
        .iter()
        .map(|r| (r.email.clone().unwrap_or_default(), r.outcome))
        .collect();
    assert_eq!(
        outcomes,
        [
            ("ann.smith@contoso.com".to_owned(), Outcome::Skipped),
            (BO.to_owned(), Outcome::Done),
            ("cy@fabrikam.com".to_owned(), Outcome::AlreadyDone),
        ],
        "{:?}",
        decisions(&output.audit)
    );
    assert_eq!(world.graph.tenant().assignment_reads, 0);
    assert_eq!(world.graph.tenant().removed, ["a-bo", "a-cy"]);
}

#[tokio::test]
async fn a_removal_graph_calls_not_active_is_already_done_not_a_failure() {
    // The first adminRemove was made but its answer lost; the retry gets "not active".
    let not_active = graph_error(
        400,
        "BadRequest",
        "The access package assignment 'a-bo' is not active (state expired).",
    );
    let tenant = Tenant {
        users: vec![member("u-bo", BO)],
        assignments: vec![assignment("a-bo", PACKAGE, Some("u-bo"))],
        remove_errors: [("a-bo".to_owned(), not_active.clone())].into(),
        ..Tenant::default()
    };
    let world = world("Ann;ann@contoso.com\n", tenant);

    let output = remove(
        &world,
        &message(vec![holder(BO, Some("u-bo"), "a-bo")]),
        LAST,
    )
    .await
    .unwrap();

    assert_eq!(
        decisions(&output.audit),
        [decision(BO, Outcome::AlreadyDone, &not_active.to_string())]
    );
    assert!(output.gave_up.is_empty());
    assert!(world.storage.failures().is_empty());
}

#[tokio::test]
async fn a_wait_graph_asks_for_goes_back_to_the_queue_with_the_people_to_retry() {
    let mut throttled = graph_error(429, "TooManyRequests", "Please retry again later.");
    if let enroll_graph::GraphError::Status(status) = &mut throttled {
        status.retry_after = Some(Duration::from_secs(3_600));
    }
    let tenant = Tenant {
        users: vec![member("u-ann", ANN)],
        add_errors: [("u-ann".to_owned(), throttled)].into(),
        ..Tenant::default()
    };
    let world = world("Ann;ann@contoso.com\n", tenant);

    let result = assign(&world, &message(vec![assignee(ANN, Some("u-ann"))]), FIRST).await;

    assert_eq!(to_retry(&result, FIRST), [ANN]);
    assert_eq!(
        disposition(result.as_ref(), FIRST),
        Disposition::RetryLater {
            reason: result.as_ref().unwrap_err().to_string(),
            after: Some(Duration::from_secs(3_600)),
        }
    );
}

// --- Ground, protected people, governed assignments ---------------------------------------

/// The mapping file pinning the roster to package Beta: the roster was re-mapped after the
/// plan that sent the message.
fn remapped_to_beta() -> String {
    format!(r#"{{"accessPackages": {{"{ROSTER}": "{BETA}"}}}}"#)
}

#[tokio::test]
async fn changes_planned_before_the_roster_was_remapped_to_another_package_do_nothing() {
    let tenant = || Tenant {
        users: vec![member("u-ann", ANN), member("u-bo", BO)],
        assignments: vec![assignment("a-bo", PACKAGE, Some("u-bo"))],
        ..Tenant::default()
    };
    let mapping = remapped_to_beta();
    let roster = "Ann;ann@contoso.com\nCy;cy@fabrikam.com\n";
    let expected = format!(
        "roster {ROSTER} now belongs to access package `Beta` ({BETA}), not to {PACKAGE}, the one this change was planned for; nothing is changed"
    );

    let world = world_with(roster, tenant(), Some(&mapping), StepConfig::default());
    let output = invite(&world, &message(vec![invitee("cy@fabrikam.com")]), FIRST)
        .await
        .unwrap();
    assert_eq!(
        decisions(&output.audit),
        [decision("cy@fabrikam.com", Outcome::Skipped, &expected)]
    );
    assert!(output.assign.is_empty());
    let output = assign(&world, &message(vec![assignee(ANN, Some("u-ann"))]), FIRST)
        .await
        .unwrap();
    assert_eq!(
        decisions(&output.audit),
        [decision(ANN, Outcome::Skipped, &expected)]
    );
    let output = remove(
        &world,
        &message(vec![holder(BO, Some("u-bo"), "a-bo")]),
        FIRST,
    )
    .await
    .unwrap();
    assert_eq!(
        decisions(&output.audit),
        [decision(BO, Outcome::Skipped, &expected)]
    );
    {
        let changed = world.graph.tenant();
        assert!(
            changed.invited.is_empty() && changed.added.is_empty() && changed.removed.is_empty()
        );
    }

    // A mapping file that cannot be read ties the roster to no package: nobody is removed.
    let world = world_with(roster, tenant(), Some("{not json"), StepConfig::default());
    let output = remove(
        &world,
        &message(vec![holder(BO, Some("u-bo"), "a-bo")]),
        FIRST,
    )
    .await
    .unwrap();
    assert_eq!(output.audit[0].outcome, Outcome::Skipped);
    assert!(
        output.audit[0]
            .detail
            .as_deref()
            .unwrap()
            .contains("no longer belongs to one access package (invalid_mapping"),
        "{:?}",
        output.audit[0].detail
    );
    assert!(world.graph.tenant().removed.is_empty());
}

#[tokio::test]
async fn remove_keeps_protected_people_named_in_the_settings_or_the_mapping_file() {
    let tenant = Tenant {
        users: vec![
            member("u-glass", "breakglass@contoso.com"),
            member("u-svc", "svc@contoso.com"),
            member("u-bo", BO),
        ],
        assignments: vec![
            assignment("a-glass", PACKAGE, Some("u-glass")),
            assignment("a-svc", PACKAGE, Some("u-svc")),
            assignment("a-bo", PACKAGE, Some("u-bo")),
        ],
        ..Tenant::default()
    };
    let config = StepConfig {
        protected: enroll_core::plan::Protected::parse("BreakGlass@Contoso.com"),
        ..StepConfig::default()
    };
    let world = world_with(
        "Ann;ann@contoso.com\n",
        tenant,
        Some(r#"{"protectedPeople": ["U-SVC"]}"#),
        config,
    );

    let output = remove(
        &world,
        &message(vec![
            holder("breakglass@contoso.com", Some("u-glass"), "a-glass"),
            holder("svc@contoso.com", Some("u-svc"), "a-svc"),
            holder(BO, Some("u-bo"), "a-bo"),
        ]),
        FIRST,
    )
    .await
    .unwrap();

    let protected = enroll_core::plan::KeptReason::Protected.describe();
    assert_eq!(
        decisions(&output.audit),
        [
            decision("breakglass@contoso.com", Outcome::Skipped, protected),
            decision("svc@contoso.com", Outcome::Skipped, protected),
            remove_requested(BO, 1),
        ]
    );
    assert_eq!(world.graph.tenant().removed, ["a-bo"]);
}

#[tokio::test]
async fn remove_leaves_assignments_under_another_policy_when_the_package_governs_only_its_own() {
    let mut by_request = assignment("a-cy", PACKAGE, Some("u-cy"));
    by_request.assignment_policy = Some(ObjectRef {
        id: "policy-request-approval".into(),
        display_name: None,
    });
    let mut by_enroll = assignment("a-bo", PACKAGE, Some("u-bo"));
    by_enroll.assignment_policy = Some(ObjectRef {
        id: POLICY.into(),
        display_name: None,
    });
    let tenant = Tenant {
        users: vec![member("u-bo", BO), member("u-cy", "cy@fabrikam.com")],
        assignments: vec![by_request, by_enroll],
        ..Tenant::default()
    };
    let mapping = format!(r#"{{"ownPolicyOnly": ["{PACKAGE}"]}}"#);
    let world = world_with(
        "Ann;ann@contoso.com\n",
        tenant,
        Some(&mapping),
        StepConfig::default(),
    );

    let output = remove(
        &world,
        &message(vec![
            holder(BO, Some("u-bo"), "a-bo"),
            holder("cy@fabrikam.com", Some("u-cy"), "a-cy"),
        ]),
        FIRST,
    )
    .await
    .unwrap();

    assert_eq!(
        decisions(&output.audit),
        [
            decision(
                "cy@fabrikam.com",
                Outcome::Skipped,
                enroll_core::plan::KeptReason::OtherPolicy.describe()
            ),
            remove_requested(BO, 1),
        ]
    );
    assert_eq!(world.graph.tenant().removed, ["a-bo"]);
}

#[tokio::test]
async fn remove_keeps_a_holder_listed_under_an_alias_or_another_case() {
    let mut ann = member("u-ann", "ann.smith@contoso.com");
    ann.proxy_addresses = vec!["smtp:ann@contoso.com".into()];
    let ijsbrand = member("u-ij", "Ĳsbrand@contoso.nl");
    let tenant = Tenant {
        users: vec![ann, ijsbrand],
        assignments: vec![
            assignment("a-ann", PACKAGE, Some("u-ann")),
            assignment("a-ij", PACKAGE, Some("u-ij")),
        ],
        ..Tenant::default()
    };
    let world = world("Ann;ANN@contoso.com\nĲ;ĳsbrand@contoso.nl\n", tenant);

    let output = remove(
        &world,
        &message(vec![
            holder("ann.smith@contoso.com", Some("u-ann"), "a-ann"),
            holder("Ĳsbrand@contoso.nl", Some("u-ij"), "a-ij"),
        ]),
        FIRST,
    )
    .await
    .unwrap();

    assert_eq!(
        decisions(&output.audit),
        [
            decision(
                "ann.smith@contoso.com",
                Outcome::Skipped,
                "back in the roster; not removed"
            ),
            decision(
                "Ĳsbrand@contoso.nl",
                Outcome::Skipped,
                "back in the roster; not removed"
            ),
        ]
    );
    assert!(world.graph.tenant().removed.is_empty());
}

#[tokio::test]
async fn invite_finds_a_member_by_another_case_of_a_non_ascii_letter_and_invites_nobody() {
    let tenant = Tenant {
        users: vec![member("u-ij", "Ĳsbrand@contoso.nl")],
        ..Tenant::default()
    };
    let world = world("Ĳ;ĳsbrand@contoso.nl\n", tenant);

    let output = invite(&world, &message(vec![invitee("ĳsbrand@contoso.nl")]), FIRST)
        .await
        .unwrap();

    assert_eq!(output.audit[0].outcome, Outcome::AlreadyDone);
    assert_eq!(
        output.assign,
        [message(vec![assignee("ĳsbrand@contoso.nl", Some("u-ij"))])]
    );
    assert!(world.graph.tenant().invited.is_empty());
}
