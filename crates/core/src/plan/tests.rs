use super::*;
use crate::roster::{Limits, parse};
use crate::tenant::{AssignmentRequest, ObjectRef, RequestedAssignment, Subject};
use serde_json::json;

const PACKAGE: &str = "pkg-x-manager";

fn user(id: &str, mail: Option<&str>, upn: &str, other: &[&str]) -> User {
    User {
        id: id.into(),
        display_name: None,
        user_principal_name: Some(upn.into()),
        mail: mail.map(str::to_owned),
        other_mails: other.iter().map(|m| m.to_string()).collect(),
        ..User::default()
    }
}

fn assignment(id: &str, user_id: &str, state: &str) -> Assignment {
    Assignment {
        id: id.into(),
        state: Some(state.into()),
        status: None,
        target: Some(Subject {
            object_id: Some(user_id.into()),
            ..Subject::default()
        }),
        access_package: Some(ObjectRef {
            id: PACKAGE.into(),
            display_name: None,
        }),
        assignment_policy: None,
    }
}

fn policy(id: &str, scope: &str, automatic: bool) -> AssignmentPolicy {
    AssignmentPolicy {
        id: id.into(),
        display_name: None,
        allowed_target_scope: Some(scope.into()),
        automatic_request_settings: automatic
            .then(|| json!({"requestAccessForAllowedTargets": true})),
    }
}

fn tenant_with(users: Vec<User>, assignments: Vec<Assignment>) -> TenantSnapshot {
    TenantSnapshot {
        users,
        access_packages: vec![AccessPackage {
            id: PACKAGE.into(),
            display_name: "Project X - Manager".into(),
            assignment_policies: vec![
                policy("auto", "specificDirectoryUsers", true),
                policy("admin-direct", "notSpecified", false),
                policy("self-service", "allDirectoryUsers", false),
            ],
            ..AccessPackage::default()
        }],
        assignments,
        ..TenantSnapshot::default()
    }
}

fn plan_for(rows: &str, tenant: &TenantSnapshot, guards: Guards) -> PackagePlan {
    let options = PlanOptions {
        guards,
        ..PlanOptions::default()
    };
    plan_with(rows, tenant, &options)
}

fn plan_with(rows: &str, tenant: &TenantSnapshot, options: &PlanOptions) -> PackagePlan {
    let sources = vec![RosterSource {
        path: "Project X - Manager.csv".into(),
        version: "v1".into(),
        roster: parse(
            "Project X - Manager.csv",
            rows.as_bytes(),
            Limits::default(),
        ),
    }];
    let mut plan = plan(&sources, tenant, options);
    assert!(plan.errors.is_empty(), "{:?}", plan.errors);
    plan.packages.remove(0)
}

/// Options that allow removals, with who and why.
fn overridden(guards: Guards) -> PlanOptions {
    PlanOptions {
        guards,
        override_by: Override::new(Some("alice@contoso.com"), Some("project X ended")),
        ..PlanOptions::default()
    }
}

fn allow_removals() -> Guards {
    Guards {
        allow_removals: true,
        ..Guards::default()
    }
}

fn emails<T>(items: &[T], email: impl Fn(&T) -> &str) -> Vec<String> {
    items.iter().map(|i| email(i).to_owned()).collect()
}

#[test]
fn invites_assigns_removes_and_leaves_the_rest() {
    let tenant = tenant_with(
        vec![
            user("u-ann", Some("ann@contoso.com"), "ann@contoso.com", &[]),
            user(
                "u-bob",
                Some("bob@fabrikam.com"),
                "bob_fabrikam.com#EXT#@contoso.onmicrosoft.com",
                &[],
            ),
            user("u-cyd", Some("cyd@contoso.com"), "cyd@contoso.com", &[]),
        ],
        vec![
            assignment("a-ann", "u-ann", "delivered"),
            assignment("a-cyd", "u-cyd", "delivered"),
        ],
    );
    let plan = plan_for(
        "Ann;ann@contoso.com\nBob;bob@fabrikam.com\nDee;dee@northwind.com\n",
        &tenant,
        Guards::default(),
    );
    assert_eq!(
        plan.invite,
        [Invite {
            email: "dee@northwind.com".into(),
            display_name: "Dee".into()
        }]
    );
    assert_eq!(
        plan.assign,
        [Assign {
            email: "bob@fabrikam.com".into(),
            user_id: "u-bob".into()
        }]
    );
    assert_eq!(
        plan.remove,
        [Remove {
            email: "cyd@contoso.com".into(),
            user_id: Some("u-cyd".into()),
            assignment_id: "a-cyd".into(),
            not_before: None,
        }]
    );
    assert_eq!(plan.unchanged, 1);
    assert_eq!(plan.current_members, 2);
    assert_eq!(plan.blocked, None);
    assert_eq!(
        plan.access_package.assignment_policy_id.as_deref(),
        Some("admin-direct")
    );
    assert_eq!(plan.roster_version, "v1");
}

#[test]
fn addresses_match_without_case_and_through_other_mails_and_guest_upns() {
    let tenant = tenant_with(
        vec![
            // Known only by otherMails.
            user(
                "u-eve",
                None,
                "eve_mail.com#EXT#@contoso.onmicrosoft.com",
                &["Eve.Smith@Mail.com"],
            ),
            // Known only by the guest UPN form, no mail at all.
            user(
                "u-fay",
                None,
                "fay.o_example.co.uk#EXT#@contoso.onmicrosoft.com",
                &[],
            ),
            // A member whose UPN is their address.
            user("u-gus", None, "Gus@Contoso.com", &[]),
        ],
        vec![assignment("a-fay", "u-fay", "delivered")],
    );
    let plan = plan_for(
        "Eve;eve.smith@MAIL.com\nFay;FAY.O@example.co.uk\nGus;gus@contoso.COM\n",
        &tenant,
        Guards::default(),
    );
    assert!(plan.invite.is_empty(), "{:?}", plan.invite);
    assert_eq!(emails(&plan.assign, |a| &a.user_id), ["u-eve", "u-gus"]);
    assert_eq!(plan.unchanged, 1);
    assert!(plan.remove.is_empty());
}

#[test]
fn removal_shows_the_guests_external_address() {
    let tenant = tenant_with(
        vec![user(
            "u-hal",
            None,
            "hal_ext.org#EXT#@contoso.onmicrosoft.com",
            &[],
        )],
        vec![assignment("a-hal", "u-hal", "delivered")],
    );
    let plan = plan_for("Ann;ann@contoso.com\n", &tenant, Guards::default());
    assert_eq!(plan.remove[0].email, "hal@ext.org");
}

#[test]
fn pending_and_delivering_count_as_active_a_request_awaiting_approval_and_expired_do_not() {
    let mut tenant = tenant_with(
        vec![
            user("u-ann", Some("ann@contoso.com"), "ann@contoso.com", &[]),
            user("u-bob", Some("bob@contoso.com"), "bob@contoso.com", &[]),
            user("u-cyd", Some("cyd@contoso.com"), "cyd@contoso.com", &[]),
        ],
        vec![
            assignment("a-ann", "u-ann", "delivering"),
            assignment("a-cyd-old", "u-cyd", "expired"),
        ],
    );
    tenant.users.push(user(
        "u-dan",
        Some("dan@contoso.com"),
        "dan@contoso.com",
        &[],
    ));
    // Bob's add is under way; Dan's own request waits for approval, which is not.
    for (id, kind, state, target) in [
        ("r-bob", "adminAdd", "submitted", "u-bob"),
        ("r-dan", "userAdd", "pendingApproval", "u-dan"),
    ] {
        tenant.assignment_requests.push(AssignmentRequest {
            id: id.into(),
            request_type: Some(kind.into()),
            state: Some(state.into()),
            assignment: Some(RequestedAssignment {
                target_id: Some(target.into()),
                access_package_id: Some(PACKAGE.into()),
                ..RequestedAssignment::default()
            }),
            ..AssignmentRequest::default()
        });
    }
    let plan = plan_for(
        "Ann;ann@contoso.com\nBob;bob@contoso.com\nCyd;cyd@contoso.com\nDan;dan@contoso.com\n",
        &tenant,
        Guards::default(),
    );
    assert_eq!(plan.unchanged, 2);
    assert_eq!(plan.pending, 2);
    assert_eq!(
        emails(&plan.assign, |a| &a.email),
        ["cyd@contoso.com", "dan@contoso.com"]
    );
    assert_eq!(plan.current_members, 1);
    // The expired assignment is not removed again.
    assert!(plan.remove.is_empty());
}

fn members(count: usize) -> (Vec<User>, Vec<Assignment>, String) {
    let users: Vec<User> = (0..count)
        .map(|i| {
            let mail = format!("m{i}@contoso.com");
            user(&format!("u{i}"), Some(&mail), &mail, &[])
        })
        .collect();
    let assignments = (0..count)
        .map(|i| assignment(&format!("a{i}"), &format!("u{i}"), "delivered"))
        .collect();
    let rows = (0..count)
        .map(|i| format!("M {i};m{i}@contoso.com\n"))
        .collect();
    (users, assignments, rows)
}

fn roster_without(rows: &str, drop: usize) -> String {
    rows.lines().skip(drop).map(|l| format!("{l}\n")).collect()
}

#[test]
fn removal_guard_needs_both_the_count_and_the_share() {
    let (users, assignments, rows) = members(100);
    let tenant = tenant_with(users, assignments);
    // 11 of 100: more than 10, but 11 % is under 20 %.
    let plan = plan_for(&roster_without(&rows, 11), &tenant, Guards::default());
    assert_eq!((plan.remove.len(), plan.blocked), (11, None));
    // 21 of 100: more than 10 and more than 20 %.
    let plan = plan_for(&roster_without(&rows, 21), &tenant, Guards::default());
    assert_eq!(plan.blocked, Some(BlockReason::RemovalGuard));
    assert!(
        plan.blocked_message
            .as_deref()
            .unwrap()
            .contains("remove 21 of 100 members")
    );
    // 20 of 100 is exactly 20 %: allowed.
    let plan = plan_for(&roster_without(&rows, 20), &tenant, Guards::default());
    assert_eq!(plan.blocked, None);

    let (users, assignments, rows) = members(12);
    let tenant = tenant_with(users, assignments);
    // 10 of 12 is most of the package, but not more than 10 people.
    let plan = plan_for(&roster_without(&rows, 10), &tenant, Guards::default());
    assert_eq!(plan.blocked, None);
    let plan = plan_for(&roster_without(&rows, 11), &tenant, Guards::default());
    assert_eq!(plan.blocked, Some(BlockReason::RemovalGuard));
}

#[test]
fn a_blocked_package_is_blocked_whole_and_the_override_is_recorded() {
    let (users, assignments, rows) = members(30);
    let tenant = tenant_with(users, assignments);
    let roster = format!("{}New;new@contoso.com\n", roster_without(&rows, 15));
    let blocked = plan_for(&roster, &tenant, Guards::default());
    assert_eq!(blocked.blocked, Some(BlockReason::RemovalGuard));
    assert_eq!(blocked.overridden, None);
    // The plan still shows what it would do, so the report can explain it.
    assert_eq!((blocked.invite.len(), blocked.remove.len()), (1, 15));

    let overridden = plan_with(&roster, &tenant, &overridden(allow_removals()));
    assert_eq!(overridden.blocked, None);
    assert_eq!(overridden.overridden, Some(BlockReason::RemovalGuard));
    assert_eq!(
        overridden.override_by,
        Some(Override {
            by: "alice@contoso.com".into(),
            reason: "project X ended".into()
        })
    );
    assert_eq!(overridden.override_refused, None);
}

#[test]
fn an_override_without_who_and_why_is_not_honoured() {
    let (users, assignments, rows) = members(30);
    let tenant = tenant_with(users, assignments);
    for override_by in [None, Override::new(Some("alice@contoso.com"), Some("  "))] {
        let options = PlanOptions {
            guards: allow_removals(),
            override_by,
            ..PlanOptions::default()
        };
        let plan = plan_with(&roster_without(&rows, 15), &tenant, &options);
        assert_eq!(plan.blocked, Some(BlockReason::RemovalGuard));
        assert_eq!((plan.overridden, plan.override_by), (None, None));
        assert_eq!(plan.override_refused.as_deref(), Some(OVERRIDE_REFUSED));
        assert!(!plan.guards[0].overridden);
    }
}

#[test]
fn guard_thresholds_are_configurable() {
    let (users, assignments, rows) = members(10);
    let tenant = tenant_with(users, assignments);
    let strict = Guards {
        max_removals: 1,
        max_removal_percent: 10.0,
        ..Guards::default()
    };
    let plan = plan_for(&roster_without(&rows, 2), &tenant, strict);
    assert_eq!(plan.blocked, Some(BlockReason::RemovalGuard));
}

#[test]
fn empty_roster_removes_nobody_unless_allowed() {
    let (users, assignments, _) = members(3);
    let full = tenant_with(users, assignments);
    let plan = plan_for("# everyone left\n", &full, Guards::default());
    assert_eq!(plan.blocked, Some(BlockReason::EmptyRoster));
    assert_eq!(plan.remove.len(), 3);
    let plan = plan_with("", &full, &overridden(allow_removals()));
    assert_eq!(
        (plan.blocked, plan.overridden),
        (None, Some(BlockReason::EmptyRoster))
    );
    // An empty roster for an empty package is simply nothing to do.
    let empty = tenant_with(vec![], vec![]);
    assert_eq!(plan_for("", &empty, Guards::default()).blocked, None);
}

#[test]
fn invalid_roster_plans_nothing_at_all() {
    let (users, assignments, _) = members(3);
    let tenant = tenant_with(users, assignments);
    let sources = vec![RosterSource {
        path: "Project X - Manager.csv".into(),
        version: "v1".into(),
        roster: parse(
            "Project X - Manager.csv",
            b"M 0;m0@contoso.com\nbroken row\n",
            Limits::default(),
        ),
    }];
    let plan = plan(&sources, &tenant, &PlanOptions::default());
    assert!(
        plan.packages.is_empty(),
        "a broken row must never turn into a removal"
    );
    assert_eq!(plan.errors.len(), 1);
    assert_eq!(
        (plan.errors[0].line, plan.errors[0].code.as_str()),
        (Some(2), "missing_email")
    );
    assert!(!plan.is_clean());
}

#[test]
fn policy_choice_skips_automatic_and_prefers_admin_direct() {
    let mut package = tenant_with(vec![], vec![]).access_packages.remove(0);
    assert_eq!(choose_policy(&package, None).unwrap().id, "admin-direct");
    package
        .assignment_policies
        .retain(|p| p.id != "admin-direct");
    assert_eq!(choose_policy(&package, None).unwrap().id, "self-service");
    package
        .assignment_policies
        .push(policy("self-service-2", "allMemberUsers", false));
    assert_eq!(
        choose_policy(&package, None).unwrap_err().0,
        BlockReason::AmbiguousAssignmentPolicy
    );
    assert_eq!(
        choose_policy(&package, Some("SELF-SERVICE-2")).unwrap().id,
        "self-service-2"
    );
    package.assignment_policies.retain(|p| p.id == "auto");
    assert_eq!(
        choose_policy(&package, None).unwrap_err().0,
        BlockReason::NoAssignmentPolicy
    );
}

#[test]
fn a_package_without_a_usable_policy_is_blocked_only_when_it_must_assign() {
    let mut tenant = tenant_with(
        vec![user(
            "u-ann",
            Some("ann@contoso.com"),
            "ann@contoso.com",
            &[],
        )],
        vec![assignment("a-ann", "u-ann", "delivered")],
    );
    tenant.access_packages[0]
        .assignment_policies
        .retain(|p| p.id == "auto");
    assert_eq!(
        plan_for("Ann;ann@contoso.com\n", &tenant, Guards::default()).blocked,
        None
    );
    let plan = plan_for(
        "Ann;ann@contoso.com\nBo;bo@x.com\n",
        &tenant,
        Guards::default(),
    );
    assert_eq!(plan.blocked, Some(BlockReason::NoAssignmentPolicy));
}

#[test]
fn an_address_shared_by_two_users_is_skipped_not_guessed() {
    let tenant = tenant_with(
        vec![
            user("u-1", Some("sam@contoso.com"), "sam@contoso.com", &[]),
            user(
                "u-2",
                None,
                "sam_contoso.com#EXT#@contoso.onmicrosoft.com",
                &[],
            ),
        ],
        vec![],
    );
    let plan = plan_for("Sam;sam@contoso.com\n", &tenant, Guards::default());
    assert!(plan.assign.is_empty() && plan.invite.is_empty());
    assert!(plan.skipped[0].reason.contains("u-1, u-2"));
}

#[test]
fn guest_upn_email_undoes_the_ext_form() {
    assert_eq!(
        guest_upn_email("jane_doe_example.com#EXT#@contoso.onmicrosoft.com").as_deref(),
        Some("jane_doe@example.com")
    );
    assert_eq!(guest_upn_email("jane@contoso.com"), None);
}

#[test]
fn invitations_go_only_to_allowed_domains() {
    let domains = InviteDomains::parse("fabrikam.com, @Northwind.NL");
    assert!(domains.allows("a@fabrikam.com"));
    assert!(domains.allows("a@sales.northwind.nl"));
    assert!(!domains.allows("a@evilfabrikam.com"));
    assert!(!domains.allows("a@gmail.com"));
    assert_eq!(InviteDomains::parse("*"), InviteDomains::Any);
    assert!(!InviteDomains::parse("").allows("a@fabrikam.com"));
    // Domains compare by the one rule too, non-ASCII letters included.
    assert!(InviteDomains::parse("EXÄMPLE.de").allows("a@exämple.DE"));

    let tenant = tenant_with(vec![], vec![]);
    let sources = vec![RosterSource {
        path: "Project X - Manager.csv".into(),
        version: "v1".into(),
        roster: parse(
            "p.csv",
            b"A;a@fabrikam.com\nB;b@gmail.com\n",
            Limits::default(),
        ),
    }];
    let options = PlanOptions {
        invite_domains: domains,
        ..PlanOptions::default()
    };
    let plan = plan(&sources, &tenant, &options).packages.remove(0);
    assert_eq!(emails(&plan.invite, |i| &i.email), ["a@fabrikam.com"]);
    assert_eq!(plan.skipped[0].email, "b@gmail.com");
    assert!(plan.skipped[0].reason.contains("ENROLL_INVITE_DOMAINS"));
}

/// Holders of the package through `policy`, one per user.
fn held_through(users: &[&str], policy: &str) -> Vec<Assignment> {
    users
        .iter()
        .map(|id| {
            let mut held = assignment(&format!("a-{id}"), id, "delivered");
            held.assignment_policy = Some(ObjectRef {
                id: policy.into(),
                display_name: None,
            });
            held
        })
        .collect()
}

#[test]
fn a_holder_listed_under_an_alias_or_another_case_is_the_same_person() {
    let mut ijsbrand = user(
        "u-ij",
        Some("Ĳsbrand.Visser@contoso.nl"),
        "ijsbrand@contoso.nl",
        &[],
    );
    ijsbrand.proxy_addresses = vec![
        "SMTP:Ĳsbrand.Visser@contoso.nl".into(),
        "smtp:i.visser@contoso.nl".into(),
    ];
    let mut ann = user("u-ann", Some("ann@contoso.com"), "ann@contoso.com", &[]);
    ann.proxy_addresses = vec!["smtp:Ann.Alias@Contoso.com".into()];
    let tenant = tenant_with(
        vec![ijsbrand, ann],
        vec![
            assignment("a-ij", "u-ij", "delivered"),
            assignment("a-ann", "u-ann", "delivered"),
        ],
    );
    // One listed with the other case of a non-ASCII letter, one by an SMTP alias.
    let plan = plan_for(
        "Ĳsbrand;ĳsbrand.visser@CONTOSO.nl\nAnn;ann.alias@contoso.com\n",
        &tenant,
        Guards::default(),
    );
    assert_eq!(plan.unchanged, 2);
    assert!(plan.invite.is_empty(), "{:?}", plan.invite);
    assert!(plan.remove.is_empty(), "{:?}", plan.remove);
    // An alias nobody else has finds its user for an assignment too.
    let tenant = tenant_with(tenant.users.clone(), vec![]);
    let plan = plan_for("V;I.Visser@contoso.nl\n", &tenant, Guards::default());
    assert_eq!(emails(&plan.assign, |a| &a.user_id), ["u-ij"]);
}

#[test]
fn a_holder_nobody_can_identify_is_kept_and_reported() {
    let mut orphan = assignment("a-orphan", "u-x", "delivered");
    orphan.target = None;
    let mut by_address = assignment("a-ext", "u-gone-2", "delivered");
    by_address.target.as_mut().unwrap().email = Some("ext@fabrikam.com".into());
    let tenant = tenant_with(
        vec![
            user("u-ann", Some("ann@contoso.com"), "ann@contoso.com", &[]),
            user("u-bo", Some("bo@contoso.com"), "bo@contoso.com", &[]),
        ],
        vec![
            assignment("a-ann", "u-ann", "delivered"),
            assignment("a-bo", "u-bo", "delivered"),
            orphan,
            assignment("a-gone", "u-gone", "delivered"),
            by_address,
        ],
    );
    let plan = plan_for("Ann;ann@contoso.com\n", &tenant, Guards::default());
    // Bo is known and not listed; the holder known only by the assignment's address too.
    assert_eq!(
        emails(&plan.remove, |r| &r.assignment_id),
        ["a-bo", "a-ext"]
    );
    assert_eq!(
        plan.kept,
        [
            Kept {
                email: String::new(),
                user_id: Some("u-gone".into()),
                assignment_id: "a-gone".into(),
                reason: KeptReason::Unidentified,
            },
            Kept {
                email: String::new(),
                user_id: None,
                assignment_id: "a-orphan".into(),
                reason: KeptReason::Unidentified,
            },
        ]
    );
}

#[test]
fn protected_people_are_never_removed_and_the_plan_shows_them() {
    let tenant = tenant_with(
        vec![
            user("u-ann", Some("ann@contoso.com"), "ann@contoso.com", &[]),
            user(
                "u-glass",
                Some("breakglass@contoso.com"),
                "bg@contoso.com",
                &[],
            ),
            user("u-svc", None, "svc-sync@contoso.com", &[]),
        ],
        vec![
            assignment("a-ann", "u-ann", "delivered"),
            assignment("a-glass", "u-glass", "delivered"),
            assignment("a-svc", "u-svc", "delivered"),
        ],
    );
    let mut options = overridden(allow_removals());
    options.protected = Protected::parse("BreakGlass@Contoso.com");
    options.mapping.protected_people = vec!["U-SVC".into()];
    // Even an empty roster with removals allowed removes only Ann.
    let plan = plan_with("", &tenant, &options);
    assert_eq!(emails(&plan.remove, |r| &r.email), ["ann@contoso.com"]);
    assert_eq!(
        plan.kept
            .iter()
            .map(|k| (k.assignment_id.as_str(), k.reason))
            .collect::<Vec<_>>(),
        [
            ("a-glass", KeptReason::Protected),
            ("a-svc", KeptReason::Protected)
        ]
    );
}

#[test]
fn a_package_governing_only_its_own_policy_keeps_holders_through_others() {
    let users = vec![
        user("u-ann", Some("ann@contoso.com"), "ann@contoso.com", &[]),
        user("u-bo", Some("bo@contoso.com"), "bo@contoso.com", &[]),
        user("u-cy", Some("cy@contoso.com"), "cy@contoso.com", &[]),
    ];
    let mut assignments = held_through(&["u-ann", "u-bo"], "admin-direct");
    assignments.extend(held_through(&["u-cy"], "self-service"));
    let tenant = tenant_with(users, assignments);
    // By default the roster governs every assignment of its package.
    let plan = plan_for("Ann;ann@contoso.com\n", &tenant, Guards::default());
    assert_eq!(
        emails(&plan.remove, |r| &r.assignment_id),
        ["a-u-bo", "a-u-cy"]
    );
    let mut options = PlanOptions::default();
    options.mapping.own_policy_only = vec![PACKAGE.to_uppercase()];
    let plan = plan_with("Ann;ann@contoso.com\n", &tenant, &options);
    assert_eq!(emails(&plan.remove, |r| &r.assignment_id), ["a-u-bo"]);
    assert_eq!(
        (plan.kept[0].assignment_id.as_str(), plan.kept[0].reason),
        ("a-u-cy", KeptReason::OtherPolicy)
    );
    // Someone listed who holds the package through another policy is simply unchanged.
    let plan = plan_with(
        "Cy;cy@contoso.com\nAnn;ann@contoso.com\n",
        &tenant,
        &options,
    );
    assert_eq!((plan.unchanged, plan.assign.len()), (2, 0));
}

#[test]
fn a_plan_replacing_every_holder_is_blocked_unless_overridden() {
    let (users, assignments, _) = members(2);
    let mut users = users;
    users.push(user(
        "u-new",
        Some("new@contoso.com"),
        "new@contoso.com",
        &[],
    ));
    let tenant = tenant_with(users, assignments);
    let wrong = "New;new@contoso.com\n";
    let plan = plan_for(wrong, &tenant, Guards::default());
    assert_eq!(plan.blocked, Some(BlockReason::AllHolders));
    assert!(
        plan.blocked_message
            .as_deref()
            .unwrap()
            .contains("remove 2 holders and the roster lists none"),
        "{:?}",
        plan.blocked_message
    );
    assert_eq!(
        plan.guards,
        [Tripped {
            code: BlockReason::AllHolders,
            count: 2,
            members: 2,
            max_count: None,
            max_percent: None,
            overridden: false,
        }]
    );
    let json = serde_json::to_value(&plan).unwrap();
    assert_eq!(
        json["guards"],
        json!([{"code": "all_holders", "count": 2, "members": 2, "overridden": false}])
    );
    // Keeping one holder, or a package of one, is not every holder of two or more.
    assert_eq!(
        plan_for(
            "M 0;m0@contoso.com\nNew;new@contoso.com\n",
            &tenant,
            Guards::default()
        )
        .blocked,
        None
    );
    let (one, held, _) = members(1);
    let mut one = one;
    one.push(user(
        "u-new",
        Some("new@contoso.com"),
        "new@contoso.com",
        &[],
    ));
    assert_eq!(
        plan_for(wrong, &tenant_with(one, held), Guards::default()).blocked,
        None
    );
    let plan = plan_with(wrong, &tenant, &overridden(allow_removals()));
    assert_eq!(
        (plan.blocked, plan.overridden),
        (None, Some(BlockReason::AllHolders))
    );
    assert!(plan.guards[0].overridden);
}

#[test]
fn mass_additions_are_blocked_unless_overridden() {
    let (users, assignments, rows) = members(10);
    let tenant = tenant_with(users, assignments);
    let newcomers = |n: usize| -> String {
        (0..n)
            .map(|i| format!("N {i};n{i}@fabrikam.com\n"))
            .collect()
    };
    // 51 people for a package of 10: more than 50, and more than 100 % of its members.
    let plan = plan_for(
        &format!("{rows}{}", newcomers(51)),
        &tenant,
        Guards::default(),
    );
    assert_eq!(plan.blocked, Some(BlockReason::AdditionGuard));
    assert_eq!(
        plan.guards,
        [Tripped {
            code: BlockReason::AdditionGuard,
            count: 51,
            members: 10,
            max_count: Some(50),
            max_percent: Some(100.0),
            overridden: false,
        }]
    );
    assert_eq!(
        plan.invite.len(),
        51,
        "the report still shows the additions"
    );
    assert!(
        plan.blocked_message
            .as_deref()
            .unwrap()
            .contains("add 51 people (invite 51, assign 0) to a package of 10 members"),
        "{:?}",
        plan.blocked_message
    );
    assert_eq!(
        plan_for(
            &format!("{rows}{}", newcomers(50)),
            &tenant,
            Guards::default()
        )
        .blocked,
        None
    );
    // The removals override does not let additions through; the additions one does.
    let plan = plan_with(
        &format!("{rows}{}", newcomers(51)),
        &tenant,
        &overridden(allow_removals()),
    );
    assert_eq!(plan.blocked, Some(BlockReason::AdditionGuard));
    let additions = Guards {
        allow_additions: true,
        ..Guards::default()
    };
    let plan = plan_with(
        &format!("{rows}{}", newcomers(51)),
        &tenant,
        &overridden(additions),
    );
    assert_eq!(
        (plan.blocked, plan.overridden),
        (None, Some(BlockReason::AdditionGuard))
    );
    // A package of 60 may grow by 55: not more than 100 % of its members.
    let (users, assignments, rows) = members(60);
    let tenant = tenant_with(users, assignments);
    assert_eq!(
        plan_for(
            &format!("{rows}{}", newcomers(55)),
            &tenant,
            Guards::default()
        )
        .blocked,
        None
    );
}

#[test]
fn with_an_undo_window_each_removal_says_when_it_happens() {
    let (users, assignments, rows) = members(3);
    let tenant = tenant_with(users, assignments);
    let options = PlanOptions {
        removals_not_before: Some(
            std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_795_759_271),
        ),
        ..PlanOptions::default()
    };
    let plan = plan_with(&roster_without(&rows, 1), &tenant, &options);
    assert_eq!(plan.remove.len(), 1);
    assert_eq!(
        plan.remove[0].not_before.as_deref(),
        Some("2026-11-27T06:01:11Z")
    );
    let json = serde_json::to_value(&plan.remove[0]).unwrap();
    assert_eq!(json["notBefore"], "2026-11-27T06:01:11Z");
}

#[test]
fn block_codes_are_the_json_spellings() {
    for reason in [
        BlockReason::RemovalGuard,
        BlockReason::EmptyRoster,
        BlockReason::AllHolders,
        BlockReason::AdditionGuard,
        BlockReason::NoAssignmentPolicy,
        BlockReason::AmbiguousAssignmentPolicy,
    ] {
        assert_eq!(serde_json::to_value(reason).unwrap(), reason.code());
    }
}

#[test]
fn reports_show_the_guards_numbers_the_override_kept_holders_and_when_removals_happen() {
    let (mut users, mut assignments, _) = members(3);
    users.push(user(
        "u-glass",
        Some("breakglass@contoso.com"),
        "bg@contoso.com",
        &[],
    ));
    assignments.push(assignment("a-glass", "u-glass", "delivered"));
    let tenant = tenant_with(users, assignments);
    let mut options = overridden(allow_removals());
    options.protected = Protected::parse("breakglass@contoso.com");
    options.removals_not_before =
        Some(std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_795_759_271));
    // A roster for someone else: every governed holder would go.
    let plan = plan_with("New;new@fabrikam.com\n", &tenant, &options);
    assert_eq!(plan.overridden, Some(BlockReason::AllHolders));

    let markdown = crate::report::package_markdown(&plan);
    for expected in [
        "| guard | count | members | allowed | outcome |",
        "| `all_holders` | 3 | 4 | none without an override | overridden |",
        // Markdown: `_` escaped, so it renders as written.
        "Override: all\\_holders overridden by alice@contoso.com: project X ended.",
        "Removals wait until 2026-11-27T06:01:11Z",
        "- m0@contoso.com (assignment `a0`), not before 2026-11-27T06:01:11Z",
        "## Kept (not in the roster, not removed)",
        "- breakglass@contoso.com (assignment `a-glass`): a protected person",
    ] {
        assert!(markdown.contains(expected), "{expected}\n{markdown}");
    }
    let text = crate::report::plan_text(&Plan {
        packages: vec![plan],
        errors: Vec::new(),
        allow_removals: true,
        allow_additions: false,
        override_by: options.override_by.clone(),
    });
    for expected in [
        "  guard all_holders: 3 to remove, 4 members (overridden)",
        "  override: all_holders overridden by alice@contoso.com: project X ended",
        "  - remove  m0@contoso.com (assignment a0), not before 2026-11-27T06:01:11Z",
        "  = keep    breakglass@contoso.com (assignment a-glass): a protected person",
    ] {
        assert!(text.contains(expected), "{expected}\n{text}");
    }
}

#[test]
fn only_holders_and_addresses_the_roster_does_not_name_are_read_and_the_plan_is_the_same() {
    // Ann holds under an alias that Sam has as his mail too; Bea's assignment has expired;
    // Cy holds; Dee holds nothing; Fay holds, recorded under her address; Gus holds,
    // recorded under the address he had before Hal got it; guest Ivy holds, recorded under
    // her guest name only.
    let users = vec![
        user(
            "u-ann",
            Some("ann@contoso.com"),
            "ann@contoso.com",
            &["a@contoso.com"],
        ),
        user("u-sam", Some("a@contoso.com"), "sam@contoso.com", &[]),
        user("u-bea", Some("bea@contoso.com"), "bea@contoso.com", &[]),
        user("u-cy", Some("cy@contoso.com"), "cy@contoso.com", &[]),
        user("u-dee", Some("dee@contoso.com"), "dee@contoso.com", &[]),
        user("u-fay", Some("fay@contoso.com"), "fay@contoso.com", &[]),
        user("u-gus", Some("gus@contoso.com"), "gus@contoso.com", &[]),
        user("u-hal", Some("gus.old@contoso.com"), "hal@contoso.com", &[]),
        user(
            "u-ivy",
            Some("ivy@fabrikam.com"),
            "ivy_fabrikam.com#EXT#@contoso.onmicrosoft.com",
            &[],
        ),
    ];
    let recorded = |mut assignment: Assignment, email: Option<&str>, name: Option<&str>| {
        let subject = assignment.target.as_mut().unwrap();
        subject.email = email.map(str::to_owned);
        subject.principal_name = name.map(str::to_owned);
        assignment
    };
    let assignments = vec![
        recorded(
            assignment("a-ann", "u-ann", "delivered"),
            Some("ann@contoso.com"),
            None,
        ),
        assignment("a-bea", "u-bea", "expired"),
        recorded(
            assignment("a-cy", "u-cy", "delivered"),
            Some("cy@contoso.com"),
            Some("cy@contoso.com"),
        ),
        recorded(
            assignment("a-fay", "u-fay", "delivered"),
            Some("FAY@contoso.com"),
            None,
        ),
        recorded(
            assignment("a-gus", "u-gus", "delivered"),
            Some("gus.old@contoso.com"),
            None,
        ),
        recorded(
            assignment("a-ivy", "u-ivy", "delivered"),
            None,
            Some("ivy_fabrikam.com#EXT#@contoso.onmicrosoft.com"),
        ),
    ];
    let rows = "Ann;A@Contoso.com\nBea;bea@contoso.com\nDee;dee@contoso.com\nEd;ed@contoso.com\n\
                Fay;fay@contoso.com\nGus;gus.old@contoso.com\nIvy;ivy@fabrikam.com\n";
    let roster = [
        "A@Contoso.com",
        "bea@contoso.com",
        "dee@contoso.com",
        "ed@contoso.com",
        "fay@contoso.com",
        "gus.old@contoso.com",
        "ivy@fabrikam.com",
    ];
    assert_eq!(holders_to_read(roster, &assignments), ["u-ann", "u-cy"]);
    let holders: Vec<User> = users
        .iter()
        .filter(|u| ["u-ann", "u-cy"].contains(&u.id.as_str()))
        .cloned()
        .collect();
    let unknown = addresses_to_look_up(roster, &assignments, &holders);
    assert_eq!(
        unknown,
        ["bea@contoso.com", "dee@contoso.com", "ed@contoso.com"]
    );

    // The tenant a Plan step reads: the holders read, and whoever answers to the rest.
    let mut known = holders.clone();
    known.extend(
        users
            .iter()
            .filter(|u| unknown.iter().any(|a| u.answers_to(a)))
            .filter(|u| !known.iter().any(|k| k.id == u.id))
            .cloned()
            .collect::<Vec<_>>(),
    );
    let read = plan_for(
        rows,
        &tenant_with(known, assignments.clone()),
        Guards::default(),
    );
    let whole = plan_for(rows, &tenant_with(users, assignments), Guards::default());
    assert_eq!(read, whole);
    assert_eq!(
        emails(&whole.assign, |a| &a.email),
        ["bea@contoso.com", "dee@contoso.com"]
    );
    assert_eq!(emails(&whole.invite, |i| &i.email), ["ed@contoso.com"]);
    assert_eq!(emails(&whole.remove, |r| &r.email), ["cy@contoso.com"]);
    // Ann, Fay, Gus (by the address his assignment is recorded under: Hal, who has it as
    // his mail now, is not given Gus's access as well) and Ivy.
    assert_eq!(whole.unchanged, 4);
    assert!(whole.skipped.is_empty());
}
