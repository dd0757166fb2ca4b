//! Unit tests of the app roles core: every manifest rule, the mapping, and the plan.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use crate::tenant::{AppRole, AppRoleAssignment, Application, Group, ServicePrincipal};

fn guid(n: u32) -> String {
    format!("00000000-0000-4000-8000-{n:012}")
}

fn role(n: u32, value: &str) -> AppRole {
    AppRole {
        allowed_member_types: vec!["User".into()],
        description: Some(format!("Can act as {value}")),
        display_name: Some(value.replace('.', " ")),
        id: guid(n),
        is_enabled: true,
        origin: Some("Application".into()),
        value: Some(value.into()),
    }
}

fn manifest_text(roles: &[AppRole]) -> String {
    serde_json::to_string_pretty(&serde_json::json!({ "appId": "app-1", "appRoles": roles }))
        .unwrap()
}

fn manifest(text: &str) -> Manifest {
    parse_manifest("app.json", text.as_bytes(), None)
}

fn codes(problems: &[RoleProblem]) -> Vec<&'static str> {
    problems.iter().map(|p| p.code.as_str()).collect()
}

fn group(n: u32, name: &str) -> Group {
    Group {
        id: format!("g{n:03}"),
        display_name: Some(name.into()),
        security_enabled: Some(true),
        ..Group::default()
    }
}

fn held(id: &str, role: &str, principal: &str, kind: &str, name: &str) -> AppRoleAssignment {
    AppRoleAssignment {
        id: id.into(),
        app_role_id: role.into(),
        principal_id: principal.into(),
        principal_type: Some(kind.into()),
        principal_display_name: Some(name.into()),
        resource_id: "sp-1".into(),
        ..AppRoleAssignment::default()
    }
}

/// An application with `roles`, its service principal, groups and assignments.
struct Tenant {
    app: Application,
    sp: Option<ServicePrincipal>,
    groups: Vec<Group>,
    assignments: Vec<AppRoleAssignment>,
}

impl Tenant {
    fn new(roles: Vec<AppRole>, groups: Vec<Group>, assignments: Vec<AppRoleAssignment>) -> Self {
        Self {
            app: Application {
                id: "obj-1".into(),
                app_id: "app-1".into(),
                display_name: Some("Projects".into()),
                app_roles: roles,
            },
            sp: Some(ServicePrincipal {
                id: "sp-1".into(),
                app_id: "app-1".into(),
                display_name: Some("Projects".into()),
                app_roles: Vec::new(),
            }),
            groups,
            assignments,
        }
    }

    fn plan(
        &self,
        text: &str,
        mapping: Option<&str>,
        allow: bool,
    ) -> Result<RolesPlan, Vec<RoleProblem>> {
        let valid = manifest(text).validated()?;
        let mapping = match mapping {
            Some(text) => parse_mapping("app.mapping.json", text.as_bytes())?,
            None => ParsedMapping::none(),
        };
        let targets = role_targets(&valid, &mapping, DEFAULT_GROUP_PATTERN)?;
        plan_roles(
            &valid,
            &targets,
            &RolesTenant {
                application: &self.app,
                service_principal: self.sp.as_ref(),
                groups: &self.groups,
                assignments: &self.assignments,
            },
            &RolesOptions {
                allow_role_removals: allow,
            },
        )
    }
}

fn values(roles: &[AppRole]) -> Vec<(&str, bool)> {
    roles
        .iter()
        .map(|r| (r.value.as_deref().unwrap(), r.is_enabled))
        .collect()
}

// ----- manifest ---------------------------------------------------------------------------

#[test]
fn reads_the_bare_array_and_the_portal_object_and_ignores_origin() {
    let bare = "\u{feff}[{\"allowedMemberTypes\":[\"User\"],\"id\":\"0B6A2C5E-9F1D-4C3B-8E7A-5D2F1C0E9B84\",\"isEnabled\":true,\"origin\":\"Application\",\"value\":\"A\",\"lang\":null}]";
    let read = manifest(bare);
    assert!(read.is_valid(), "{:?}", read.errors);
    assert!(read.warnings.is_empty(), "origin and lang are tolerated");
    assert_eq!(read.app_id, None);
    let valid = read.validated().unwrap();
    assert_eq!(
        valid.roles[0].role.id,
        "0b6a2c5e-9f1d-4c3b-8e7a-5d2f1c0e9b84"
    );
    assert_eq!(valid.roles[0].role.origin, None, "origin is never sent");
    let portal = r#"{"id": "obj", "appId": "c1", "displayName": "App", "signInAudience": "AzureADMyOrg",
        "appRoles": [{"allowedMemberTypes": ["User", "Application"], "value": "B", "displayName": "B"}]}"#;
    let read = manifest(portal);
    assert!(read.is_valid(), "{:?}", read.errors);
    assert_eq!(read.app_id.as_deref(), Some("c1"));
    assert!(read.roles[0].is_enabled, "isEnabled defaults to true");
}

#[test]
fn syntax_errors_and_other_shapes_are_refused_with_their_place() {
    let broken = manifest("[\n  {\"value\": \"A\",}\n]");
    assert_eq!(codes(&broken.errors), ["invalid_json"]);
    assert_eq!(broken.errors[0].line, Some(2));
    for text in ["{\"roles\": []}", "42", "{\"appRoles\": {}}"] {
        assert_eq!(codes(&manifest(text).errors), ["not_a_manifest"], "{text}");
    }
    let latin1 = parse_manifest("app.json", b"[{\"value\": \"caf\xe9\"}]", None);
    assert_eq!(codes(&latin1.errors), ["invalid_json"]);
    assert!(latin1.errors[0].message.contains("UTF-8"));
}

#[test]
fn values_graph_would_refuse_are_caught_at_their_line_and_column() {
    let text = r#"[
  {"allowedMemberTypes": ["User"], "value": "Has space"},
  {"allowedMemberTypes": ["User"],
   "value": "Wüst\"e"},
  {"allowedMemberTypes": ["User"], "value": ".Dot"},
  {"allowedMemberTypes": ["User"], "value": "LONG"},
  {"allowedMemberTypes": ["User"], "value": "Ok:!#$%&'()*+,-./;<=>?@[]^_`{|}~09azAZ"}
]"#
    .replace("LONG", &"x".repeat(121));
    let read = manifest(&text);
    type Found<'a> = (&'a str, Option<u64>, Option<u64>, Option<&'a str>);
    let found: Vec<Found<'_>> = read
        .errors
        .iter()
        .map(|p| (p.code.as_str(), p.line, p.column, p.path.as_deref()))
        .collect();
    assert_eq!(
        found,
        [
            ("value_has_spaces", Some(2), Some(36), Some("[0].value")),
            (
                "value_invalid_character",
                Some(4),
                Some(4),
                Some("[1].value")
            ),
            (
                "value_starts_with_dot",
                Some(5),
                Some(36),
                Some("[2].value")
            ),
            ("value_too_long", Some(6), Some(36), Some("[3].value")),
        ]
    );
    assert!(
        read.errors[1].message.contains("`ü`, `\"`"),
        "{}",
        read.errors[1].message
    );
    assert!(read.errors[3].message.contains("121 characters"));
}

#[test]
fn duplicate_values_and_ids_name_the_first_role() {
    let text = r#"{"appRoles": [
  {"allowedMemberTypes": ["User"], "value": "Reader", "id": "00000000-0000-4000-8000-000000000001"},
  {"allowedMemberTypes": ["User"], "value": "READER", "id": "00000000-0000-4000-8000-000000000002"},
  {"allowedMemberTypes": ["User"], "value": "Writer", "id": "00000000-0000-4000-8000-000000000001"}
]}"#;
    let read = manifest(text);
    assert_eq!(codes(&read.errors), ["duplicate_value", "duplicate_id"]);
    assert_eq!(read.errors[0].line, Some(3));
    assert!(
        read.errors[0]
            .message
            .contains("already the value of appRoles[0] (line 2)"),
        "{}",
        read.errors[0].message
    );
    assert_eq!(read.errors[1].path.as_deref(), Some("appRoles[2].id"));
    // A given id equal to another role's derived id is a duplicate too.
    let derived = derived_role_id("Reader");
    let clash = format!(
        r#"[{{"allowedMemberTypes": ["User"], "value": "Reader"}},
            {{"allowedMemberTypes": ["User"], "value": "Other", "id": "{derived}"}}]"#
    );
    assert_eq!(codes(&manifest(&clash).errors), ["duplicate_id"]);
}

#[test]
fn member_types_ids_values_and_field_types_are_checked() {
    let text = r#"[
  {"value": "NoTypes"},
  {"allowedMemberTypes": [], "value": "Empty"},
  {"allowedMemberTypes": ["user"], "value": "Lower"},
  {"allowedMemberTypes": ["User"], "value": "BadId", "id": "role-1"},
  {"allowedMemberTypes": ["User"]},
  {"allowedMemberTypes": ["User"], "value": "E", "isEnabled": "yes"},
  "not an object"
]"#;
    let read = manifest(text);
    assert_eq!(
        codes(&read.errors),
        [
            "missing_allowed_member_types",
            "missing_allowed_member_types",
            "invalid_allowed_member_type",
            "invalid_id",
            "missing_value",
            "invalid_field",
            "invalid_field",
        ]
    );
    assert_eq!(read.errors[0].line, Some(2));
    assert!(read.errors[2].message.contains("\"user\""));
    assert!(
        read.validated().is_err(),
        "an invalid manifest is never planned"
    );
}

#[test]
fn unknown_fields_are_warnings_with_a_hint() {
    let read = manifest(r#"[{"allowedMemberTypes": ["User"], "value": "A", "isenabled": false}]"#);
    assert!(read.is_valid());
    assert_eq!(codes(&read.warnings), ["unknown_field"]);
    assert!(
        read.warnings[0]
            .message
            .contains("did you mean `isEnabled`")
    );
    assert!(read.roles[0].is_enabled, "the misspelt field is not read");
}

// ----- mapping ----------------------------------------------------------------------------

fn valid(roles: &[AppRole]) -> ValidManifest {
    manifest(&manifest_text(roles)).validated().unwrap()
}

#[test]
fn the_convention_maps_every_enabled_user_role_and_the_file_wins() {
    let mut app_only = role(3, "Sync.Run");
    app_only.allowed_member_types = vec!["Application".into()];
    let mut disabled = role(4, "Old");
    disabled.is_enabled = false;
    let roles = [
        role(1, "Reader"),
        role(2, "Writer"),
        app_only,
        disabled,
        role(5, "Nobody"),
    ];
    let mapping = parse_mapping(
        "m.json",
        br#"{"groupPattern": "SEC {value} users", "roles": {"Writer": "Editors", "Nobody": null, "Old": "X"}}"#,
    )
    .unwrap();
    let targets = role_targets(&valid(&roles), &mapping, DEFAULT_GROUP_PATTERN).unwrap();
    let found: Vec<(&str, GroupKey, MappedBy)> = targets
        .iter()
        .map(|t| (t.value.as_str(), t.group.clone(), t.mapped_by))
        .collect();
    assert_eq!(
        found,
        [
            (
                "Reader",
                GroupKey::DisplayName("SEC Reader users".into()),
                MappedBy::Convention
            ),
            (
                "Writer",
                GroupKey::DisplayName("Editors".into()),
                MappedBy::MappingFile
            ),
        ]
    );
    let by_id = parse_mapping(
        "m.json",
        br#"{"roles": {"Reader": "0B6A2C5E-9F1D-4C3B-8E7A-5D2F1C0E9B84"}}"#,
    )
    .unwrap();
    let targets = role_targets(&valid(&roles[..1]), &by_id, "APP-{value}").unwrap();
    assert_eq!(
        targets[0].group,
        GroupKey::Id("0b6a2c5e-9f1d-4c3b-8e7a-5d2f1c0e9b84".into())
    );
    assert_eq!(mapping_name_for("apps/crm.json"), "apps/crm.mapping.json");
    assert_eq!(manifest_of("crm.mapping.json").as_deref(), Some("crm.json"));
    assert_eq!(manifest_of("CRM.Mapping.JSON").as_deref(), Some("CRM.json"));
    assert_eq!(manifest_of("crm.json").as_deref(), Some("crm.json"));
    assert_eq!(manifest_of("notes.txt"), None);
    assert!(is_manifest_name("crm.JSON") && !is_manifest_name("crm.mapping.json"));
}

#[test]
fn mapping_mistakes_are_errors_that_name_both_sides() {
    let mut app_only = role(3, "Sync.Run");
    app_only.allowed_member_types = vec!["Application".into()];
    let roles = [role(1, "Reader"), app_only];
    let mapping = parse_mapping(
        "m.json",
        b"{\"roles\": {\n  \"Raeder\": \"Readers\",\n  \"Sync.Run\": \"Robots\"\n}}",
    )
    .unwrap();
    let problems = role_targets(&valid(&roles), &mapping, DEFAULT_GROUP_PATTERN).unwrap_err();
    assert_eq!(
        codes(&problems),
        ["unknown_mapped_role", "role_not_for_groups"]
    );
    assert_eq!((problems[0].line, problems[0].column), (Some(2), Some(3)));
    assert!(problems[0].message.contains("`Raeder`") && problems[0].message.contains("`Readers`"));
    let pattern = role_targets(&valid(&roles), &ParsedMapping::none(), "APP-ROLE").unwrap_err();
    assert_eq!(codes(&pattern), ["invalid_group_pattern"]);
    let twice = parse_mapping("m.json", br#"{"roles": {"A": "G1", "A": "G2"}}"#).unwrap_err();
    assert_eq!(codes(&twice), ["invalid_mapping"]);
    assert!(twice[0].message.contains("mapped twice"));
    let empty = parse_mapping("m.json", br#"{"roles": {"A": " "}}"#).unwrap_err();
    assert!(empty[0].message.contains("use null"));
    let unknown = parse_mapping("m.json", br#"{"pattern": "X-{value}"}"#).unwrap_err();
    assert_eq!(codes(&unknown), ["invalid_mapping"]);
    assert_eq!(unknown[0].line, Some(1));
}

// ----- plan -------------------------------------------------------------------------------

fn groups_for(roles: &[AppRole]) -> Vec<Group> {
    roles
        .iter()
        .enumerate()
        .map(|(i, r)| {
            group(
                i as u32 + 1,
                &format!("APP-{}", r.value.as_deref().unwrap()),
            )
        })
        .collect()
}

#[test]
fn a_first_sync_adds_every_role_in_one_update_and_assigns_every_group() {
    let roles: Vec<AppRole> = (1..=62).map(|n| role(n, &format!("Role.{n}"))).collect();
    let tenant = Tenant::new(Vec::new(), groups_for(&roles), Vec::new());
    let plan = tenant.plan(&manifest_text(&roles), None, false).unwrap();
    assert_eq!(plan.app_roles.add.len(), 62);
    assert_eq!(plan.updates.len(), 1, "nothing to disable");
    assert_eq!(plan.updates[0].step, UpdateStep::Update);
    assert_eq!(plan.updates[0].app_roles.len(), 62, "the complete list");
    assert!(plan.updates[0].app_roles.iter().all(|r| r.origin.is_none()));
    assert_eq!(plan.assign.len(), 62);
    assert_eq!(plan.assign[0].group_id, "g001");
    assert_eq!(plan.assign[0].app_role_id, guid(1));
    assert!(plan.has_changes() && plan.is_clean());
}

#[test]
fn a_tenant_in_line_gives_no_changes() {
    let roles: Vec<AppRole> = (1..=3).map(|n| role(n, &format!("R{n}"))).collect();
    let held: Vec<AppRoleAssignment> = (1..=3)
        .map(|n| {
            held(
                &format!("a{n}"),
                &guid(n),
                &format!("g{n:03}"),
                "Group",
                &format!("APP-R{n}"),
            )
        })
        .collect();
    let tenant = Tenant::new(roles.clone(), groups_for(&roles), held);
    let plan = tenant.plan(&manifest_text(&roles), None, false).unwrap();
    assert!(!plan.has_changes(), "{plan:#?}");
    assert_eq!(plan.app_roles.unchanged, 3);
    assert_eq!(plan.unchanged_assignments, 3);
}

#[test]
fn a_renamed_role_is_disabled_then_updated_and_keeps_its_id() {
    let before = vec![role(1, "Reader"), role(2, "Writer")];
    let mut renamed = before.clone();
    renamed[0].value = Some("Viewer".into());
    renamed[0].display_name = Some("Viewer".into());
    let tenant = Tenant::new(
        before.clone(),
        vec![group(1, "APP-Viewer"), group(2, "APP-Writer")],
        Vec::new(),
    );
    let plan = tenant.plan(&manifest_text(&renamed), None, false).unwrap();
    let change = &plan.app_roles.change[0];
    assert_eq!(change.role.id, guid(1));
    assert_eq!(change.changed, ["displayName", "value"]);
    assert_eq!(change.previous_value.as_deref(), Some("Reader"));
    assert!(change.disable_first);
    let steps: Vec<UpdateStep> = plan.updates.iter().map(|u| u.step).collect();
    assert_eq!(steps, [UpdateStep::Disable, UpdateStep::Update]);
    // The disable update is today's list with only `isEnabled` flipped.
    assert_eq!(
        values(&plan.updates[0].app_roles),
        [("Reader", false), ("Writer", true)]
    );
    assert_eq!(
        values(&plan.updates[1].app_roles),
        [("Viewer", true), ("Writer", true)]
    );
    assert_eq!(plan.updates[1].app_roles[0].id, guid(1));
}

#[test]
fn wording_changes_go_in_one_update_without_disabling() {
    let before = vec![role(1, "Reader")];
    let mut reworded = before.clone();
    reworded[0].description = Some("Reads reports".into());
    let tenant = Tenant::new(before, vec![group(1, "APP-Reader")], Vec::new());
    let plan = tenant.plan(&manifest_text(&reworded), None, false).unwrap();
    assert!(!plan.app_roles.change[0].disable_first);
    assert_eq!(plan.updates.len(), 1);
    assert_eq!(plan.updates[0].step, UpdateStep::Update);
}

#[test]
fn disabling_rule_follows_graph() {
    let old = role(1, "A");
    let mut new = old.clone();
    new.display_name = Some("Other".into());
    assert!(!needs_disable(&old, &new));
    new.allowed_member_types = vec!["Application".into(), "User".into()];
    assert!(needs_disable(&old, &new));
    let mut reordered = old.clone();
    reordered.allowed_member_types = vec!["User".into()];
    assert!(!needs_disable(&old, &reordered));
    let mut disabled = old.clone();
    disabled.is_enabled = false;
    let mut revalued = disabled.clone();
    revalued.value = Some("B".into());
    assert!(!needs_disable(&disabled, &revalued), "already disabled");
}

#[test]
fn a_removed_role_goes_in_two_updates_but_not_while_held_unless_allowed() {
    let before = vec![role(1, "Reader"), role(2, "Legacy")];
    let after = vec![role(1, "Reader")];
    let groups = vec![group(1, "APP-Reader"), group(2, "APP-Legacy")];
    let free = Tenant::new(before.clone(), groups.clone(), Vec::new());
    let plan = free.plan(&manifest_text(&after), None, false).unwrap();
    assert_eq!(plan.app_roles.remove.len(), 1);
    assert_eq!(
        values(&plan.updates[0].app_roles),
        [("Reader", true), ("Legacy", false)]
    );
    assert_eq!(values(&plan.updates[1].app_roles), [("Reader", true)]);

    let holding = vec![held("a2", &guid(2), "u-1", "User", "Ann")];
    let held_tenant = Tenant::new(before.clone(), groups.clone(), holding.clone());
    let plan = held_tenant
        .plan(&manifest_text(&after), None, false)
        .unwrap();
    assert!(plan.app_roles.remove.is_empty());
    assert_eq!(plan.app_roles.refused[0].assignments, 1);
    assert!(!plan.is_clean());
    assert!(plan.updates.is_empty(), "nothing else changed: no update");
    assert!(plan.unmanaged[0].reason.contains("no longer has"));

    let plan = held_tenant
        .plan(&manifest_text(&after), None, true)
        .unwrap();
    assert_eq!(plan.app_roles.remove[0].assignments, 1);
    assert_eq!(plan.updates.len(), 2);
    assert!(plan.allow_role_removals && plan.is_clean());
}

#[test]
fn a_refused_removal_keeps_the_role_in_every_update() {
    let before = vec![role(1, "Reader"), role(2, "Legacy")];
    let mut after = vec![role(1, "Reader"), role(3, "Writer")];
    after[0].description = Some("new".into());
    let tenant = Tenant::new(
        before,
        vec![group(1, "APP-Reader"), group(3, "APP-Writer")],
        vec![held("a2", &guid(2), "u-1", "User", "Ann")],
    );
    let plan = tenant.plan(&manifest_text(&after), None, false).unwrap();
    assert_eq!(
        values(&plan.updates[0].app_roles),
        [("Reader", true), ("Writer", true), ("Legacy", true)],
        "the held role is sent as it is"
    );
    // Adding a role with the value of the kept one would be a DuplicateValue in Graph.
    let clash = vec![role(1, "Reader"), role(4, "legacy")];
    let problems = tenant
        .plan(
            &manifest_text(&clash),
            Some(r#"{"roles": {"legacy": null}}"#),
            false,
        )
        .unwrap_err();
    assert_eq!(codes(&problems), ["duplicate_value"]);
    assert!(problems[0].message.contains("`legacy`") && problems[0].message.contains("`Legacy`"));
}

#[test]
fn mapped_groups_hold_exactly_their_role_and_the_rest_is_left_alone() {
    let roles = vec![role(1, "Reader"), role(2, "Writer")];
    let mut groups = groups_for(&roles);
    groups.push(group(9, "Helpdesk"));
    let assignments = vec![
        held("ok", &guid(1), "g001", "Group", "APP-Reader"),
        held("wrong", &guid(1), "g002", "Group", "APP-Writer"),
        held("outside", &guid(2), "g009", "Group", "Helpdesk"),
        held("user", &guid(2), "u-1", "User", "Ann"),
        held(
            "default",
            "00000000-0000-0000-0000-000000000000",
            "g001",
            "Group",
            "APP-Reader",
        ),
    ];
    let tenant = Tenant::new(roles.clone(), groups, assignments);
    let plan = tenant.plan(&manifest_text(&roles), None, false).unwrap();
    assert!(plan.updates.is_empty());
    assert_eq!(plan.unassign.len(), 1);
    assert_eq!(plan.unassign[0].assignment_id, "wrong");
    assert!(
        plan.unassign[0]
            .reason
            .contains("mapped to role `Writer`, not `Reader`")
    );
    let assigned: Vec<(&str, &str)> = plan
        .assign
        .iter()
        .map(|a| (a.group_id.as_str(), a.value.as_str()))
        .collect();
    assert_eq!(assigned, [("g002", "Writer")]);
    assert_eq!(plan.unchanged_assignments, 1);
    let left: Vec<&str> = plan
        .unmanaged
        .iter()
        .map(|u| u.assignment_id.as_str())
        .collect();
    assert_eq!(left, ["default", "user", "outside"]);
    assert!(plan.unmanaged[0].reason.contains("default access"));
    assert!(plan.unmanaged[1].reason.contains("directly"));
    assert!(plan.unmanaged[2].reason.contains("outside the mapping"));
}

#[test]
fn group_problems_name_the_role_and_the_group() {
    let roles = vec![role(1, "Reader"), role(2, "Writer"), role(3, "Admin")];
    let groups = vec![
        group(1, "APP-Reader"),
        group(2, "Shared"),
        group(3, "app-admin"),
        group(4, "APP-ADMIN"),
    ];
    let tenant = Tenant::new(Vec::new(), groups, Vec::new());
    let mapping = r#"{"roles": {"Reader": "Shared", "Writer": "Shared"}}"#;
    let problems = tenant
        .plan(&manifest_text(&roles), Some(mapping), false)
        .unwrap_err();
    assert_eq!(codes(&problems), ["ambiguous_group", "shared_group"]);
    assert!(problems[0].message.contains("`Admin`") && problems[0].message.contains("g003, g004"));
    assert!(
        problems[1].message.contains("`Reader`")
            && problems[1].message.contains("`Writer`")
            && problems[1].message.contains("`Shared`"),
        "{}",
        problems[1].message
    );
    let missing = Tenant::new(Vec::new(), Vec::new(), Vec::new());
    let problems = missing
        .plan(&manifest_text(&roles[..1]), None, false)
        .unwrap_err();
    assert_eq!(codes(&problems), ["group_not_found"]);
    assert!(
        problems[0].message.contains("`Reader`")
            && problems[0].message.contains("`APP-Reader`")
            && problems[0]
                .message
                .contains("naming convention `APP-{value}`"),
        "{}",
        problems[0].message
    );
    assert_eq!(problems[0].file, "app.json");
    let by_file = missing
        .plan(
            &manifest_text(&roles[..1]),
            Some("{\"roles\": {\n\"Reader\": \"Readers\"}}"),
            false,
        )
        .unwrap_err();
    assert_eq!(by_file[0].file, "app.mapping.json");
    assert_eq!(by_file[0].line, Some(2));
}

#[test]
fn no_service_principal_means_no_group_can_hold_a_role() {
    let roles = vec![role(1, "Reader")];
    let mut tenant = Tenant::new(Vec::new(), groups_for(&roles), Vec::new());
    tenant.sp = None;
    let problems = tenant
        .plan(&manifest_text(&roles), None, false)
        .unwrap_err();
    assert_eq!(codes(&problems), ["service_principal_not_found"]);
}

#[test]
fn a_role_without_id_gets_a_derived_one_or_keeps_the_tenants_and_says_so() {
    let text = r#"[{"allowedMemberTypes": ["User"], "value": "Reader"},
                   {"allowedMemberTypes": ["User"], "value": "Writer"}]"#;
    let existing = role(7, "Reader");
    let tenant = Tenant::new(
        vec![existing],
        vec![group(1, "APP-Reader"), group(2, "APP-Writer")],
        Vec::new(),
    );
    let plan = tenant.plan(text, None, false).unwrap();
    assert_eq!(codes(&plan.warnings), ["adopted_id", "missing_id"]);
    assert_eq!(plan.app_roles.unchanged, 0);
    assert_eq!(plan.app_roles.change[0].role.id, guid(7));
    assert!(
        !plan.app_roles.change[0].disable_first,
        "only wording differs"
    );
    assert_eq!(plan.app_roles.add[0].id, derived_role_id("Writer"));
    assert!(
        plan.warnings[1]
            .message
            .contains(&derived_role_id("Writer"))
    );
    assert!(
        plan.updates
            .iter()
            .all(|u| u.app_roles.iter().any(|r| r.id == guid(7))),
        "the existing id is kept"
    );
}

#[test]
fn role_reports_show_hostile_names_and_values_as_text() {
    let roles = vec![role(1, "Rd`|<b>")];
    let groups = vec![group(1, "<img src=x>\u{1b}[31m")];
    let assignments = vec![held(
        "user",
        &guid(1),
        "u-1",
        "User",
        "[Ann](https://evil.example)\n- fake",
    )];
    let mut tenant = Tenant::new(roles.clone(), groups, assignments);
    tenant.app.display_name = Some("[Projects](https://evil.example)".into());
    let mapping = r#"{"roles": {"Rd`|<b>": "<img src=x>\u001b[31m"}}"#;
    let plan = tenant
        .plan(&manifest_text(&roles), Some(mapping), false)
        .unwrap();
    let markdown = plan_markdown(&plan);
    assert!(
        markdown.starts_with("# App roles of \\[Projects\\](https://evil.example)\n"),
        "{markdown}"
    );
    assert!(
        markdown.contains(
            "\n## Groups given their role\n\n- \\<img src=x\\>\\\\u{1b}\\[31m (`g001`) gets ``Rd`|<b>``\n"
        ),
        "{markdown}"
    );
    assert!(
        markdown.contains(
            "\n## Unmanaged assignments (left alone)\n\n- \\[Ann\\](https://evil.example)\\\\n- fake (`user`): "
        ),
        "{markdown}"
    );
    let text = plan_text(&plan);
    assert!(
        !text
            .chars()
            .any(|c| c != '\n' && crate::escape::is_hostile(c)),
        "{text:?}"
    );
    assert!(
        text.contains("\n  + assign    <img src=x>\\u{1b}[31m <- Rd`|<b> (group g001)\n"),
        "{text}"
    );
    assert!(
        text.contains("\n  ? unmanaged [Ann](https://evil.example)\\n- fake (assignment user): "),
        "{text}"
    );
    let problem = RoleProblem::new("app\u{1b}[2J.json", RoleCode::InvalidJson, "bad <b>");
    let rejected = rejected_markdown("app\u{1b}[2J.json", "v1", std::slice::from_ref(&problem));
    assert!(
        rejected.contains("| app\\\\u{1b}\\[2J.json |  |  | `invalid_json` | bad \\<b\\> |"),
        "{rejected}"
    );
    let text = rejected_text("app\u{1b}[2J.json", &[problem]);
    assert!(
        text.starts_with("app\\u{1b}[2J.json: not applied"),
        "{text}"
    );
    assert!(!text.contains('\u{1b}'), "{text}");
}
