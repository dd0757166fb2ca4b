//! The app roles plan: the manifest and the mapping against the application, its service
//! principal, the groups and the app role assignments.
//!
//! Graph's rules shape it (graph.md §4.3): `PATCH /applications/{id}` replaces `appRoles`
//! whole, so every update carries the complete list with every kept role's id unchanged;
//! an enabled role cannot be removed, nor its `value` or `allowedMemberTypes` changed, until
//! an earlier update has disabled it. So a plan has at most two updates: a *disable* update
//! (today's roles, the ones to change or remove set `isEnabled: false`) and the *update*
//! with the manifest's list. A role that still holds assignments is not removed unless
//! explicitly allowed.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use serde::Serialize;

use super::manifest::ValidManifest;
use super::mapping::{GroupKey, MappedBy, RoleTarget};
use super::{RoleCode, RoleProblem};
use crate::tenant::{AppRole, AppRoleAssignment, Application, Group, ServicePrincipal};

/// The app role id Graph uses for "default access" to an application without roles.
const DEFAULT_ACCESS: &str = "00000000-0000-0000-0000-000000000000";

/// What the tenant holds for one application.
#[derive(Debug, Clone, Copy)]
pub struct RolesTenant<'t> {
    /// The application registration, with its app roles.
    pub application: &'t Application,
    /// Its service principal (the resource of assignments), if it has one.
    pub service_principal: Option<&'t ServicePrincipal>,
    /// Every group the mapping may name (looked up by display name and by id).
    pub groups: &'t [Group],
    /// The service principal's app role assignments (`appRoleAssignedTo`).
    pub assignments: &'t [AppRoleAssignment],
}

/// Settings for planning.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RolesOptions {
    /// Remove roles the manifest dropped even while principals hold them.
    pub allow_role_removals: bool,
}

/// A role, as a plan names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RoleRef {
    /// Role id.
    pub id: String,
    /// Value.
    pub value: Option<String>,
    /// Display name.
    pub display_name: Option<String>,
}

impl From<&AppRole> for RoleRef {
    fn from(role: &AppRole) -> Self {
        Self {
            id: role.id.clone(),
            value: role.value.clone(),
            display_name: role.display_name.clone(),
        }
    }
}

/// A role whose fields change (its id never does).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RoleChange {
    /// The role as it will be.
    #[serde(flatten)]
    pub role: RoleRef,
    /// Fields that change, by Graph's names.
    pub changed: Vec<&'static str>,
    /// The value before, when it changes.
    pub previous_value: Option<String>,
    /// Whether a disable update must come first.
    pub disable_first: bool,
}

/// A role the manifest no longer has.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RoleRemoval {
    /// The role.
    #[serde(flatten)]
    pub role: RoleRef,
    /// Assignments that hold it (users, groups and applications).
    pub assignments: usize,
    /// Whether a disable update must come first (it is enabled now).
    pub disable_first: bool,
}

/// What happens to the application's roles.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RoleChanges {
    /// Roles to add.
    pub add: Vec<RoleRef>,
    /// Roles to change.
    pub change: Vec<RoleChange>,
    /// Roles to remove.
    pub remove: Vec<RoleRemoval>,
    /// Roles the manifest dropped that are kept because principals hold them.
    pub refused: Vec<RoleRemoval>,
    /// Roles already as the manifest says.
    pub unchanged: usize,
}

/// Which of the (at most two) updates this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum UpdateStep {
    /// Disables the roles that change or go, and nothing else.
    Disable,
    /// Sends the manifest's list.
    Update,
}

/// One `PATCH /applications/{id}` with the complete `appRoles` list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AppRolesUpdate {
    /// Which update.
    pub step: UpdateStep,
    /// Why, in a sentence.
    pub reason: String,
    /// The complete list sent (`origin` never is).
    pub app_roles: Vec<AppRole>,
}

/// A group to give its role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupAssignment {
    /// The group.
    pub group_id: String,
    /// Its display name.
    pub group_display_name: Option<String>,
    /// The role.
    pub app_role_id: String,
    /// The role's value.
    pub value: String,
    /// Why this group.
    pub mapped_by: MappedBy,
}

/// An assignment of a mapped role to a mapped group that should not hold it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupUnassignment {
    /// The assignment to delete.
    pub assignment_id: String,
    /// The group holding it.
    pub group_id: String,
    /// Its display name.
    pub group_display_name: Option<String>,
    /// The role.
    pub app_role_id: String,
    /// The role's value.
    pub value: String,
    /// Why it goes.
    pub reason: String,
}

/// An assignment enroll leaves alone, reported so that a person can look.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UnmanagedAssignment {
    /// The assignment.
    pub assignment_id: String,
    /// Who holds it.
    pub principal_id: String,
    /// `User`, `Group` or `ServicePrincipal`.
    pub principal_type: Option<String>,
    /// The holder's display name.
    pub principal_display_name: Option<String>,
    /// The role.
    pub app_role_id: String,
    /// The role's value, when known.
    pub value: Option<String>,
    /// Why enroll does not manage it.
    pub reason: String,
}

/// The application a plan is for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationRef {
    /// Object id.
    pub id: String,
    /// Client id.
    pub app_id: String,
    /// Display name.
    pub display_name: Option<String>,
}

/// The plan for one manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RolesPlan {
    /// Manifest name.
    pub manifest: String,
    /// Manifest version the plan was made from.
    pub manifest_version: String,
    /// The application.
    pub application: ApplicationRef,
    /// Its service principal.
    pub service_principal_id: Option<String>,
    /// Changes to the application's roles.
    pub app_roles: RoleChanges,
    /// The updates that make them, in order.
    pub updates: Vec<AppRolesUpdate>,
    /// Group assignments to create.
    pub assign: Vec<GroupAssignment>,
    /// Group assignments to remove.
    pub unassign: Vec<GroupUnassignment>,
    /// Assignments left alone.
    pub unmanaged: Vec<UnmanagedAssignment>,
    /// Mapped groups that already hold their role.
    pub unchanged_assignments: usize,
    /// Warnings (ids derived or adopted, unknown fields).
    pub warnings: Vec<RoleProblem>,
    /// Whether removing held roles was allowed.
    pub allow_role_removals: bool,
}

impl RolesPlan {
    /// Whether the plan would change anything.
    pub fn has_changes(&self) -> bool {
        !(self.updates.is_empty() && self.assign.is_empty() && self.unassign.is_empty())
    }

    /// Whether nothing was held back (no removal refused).
    pub fn is_clean(&self) -> bool {
        self.app_roles.refused.is_empty()
    }
}

/// Whether changing `old` into `new` needs a disable update first: Graph refuses to change
/// an enabled role's `value` or `allowedMemberTypes` (`CannotDeleteOrUpdateEnabledEntitlement`).
/// Its display name and description change in place (graph.md §4.3), so holders never lose
/// the role for a wording change.
pub fn needs_disable(old: &AppRole, new: &AppRole) -> bool {
    old.is_enabled
        && (old.value != new.value
            || member_types(&old.allowed_member_types) != member_types(&new.allowed_member_types))
}

fn member_types(types: &[String]) -> BTreeSet<&str> {
    types.iter().map(String::as_str).collect()
}

fn text_eq(a: &Option<String>, b: &Option<String>) -> bool {
    a.as_deref().unwrap_or_default() == b.as_deref().unwrap_or_default()
}

/// The fields that differ, by Graph's names.
fn changed_fields(old: &AppRole, new: &AppRole) -> Vec<&'static str> {
    let mut changed = Vec::new();
    if member_types(&old.allowed_member_types) != member_types(&new.allowed_member_types) {
        changed.push("allowedMemberTypes");
    }
    if !text_eq(&old.description, &new.description) {
        changed.push("description");
    }
    if !text_eq(&old.display_name, &new.display_name) {
        changed.push("displayName");
    }
    if old.is_enabled != new.is_enabled {
        changed.push("isEnabled");
    }
    if old.value != new.value {
        changed.push("value");
    }
    changed
}

fn sendable(role: &AppRole) -> AppRole {
    AppRole {
        origin: None,
        ..role.clone()
    }
}

fn lower(id: &str) -> String {
    id.to_ascii_lowercase()
}

fn role_label(role: &AppRole) -> String {
    format!(
        "`{}` (id {})",
        role.value.as_deref().unwrap_or_default(),
        role.id
    )
}

/// Plans one manifest against the tenant.
///
/// # Errors
/// Problems that keep the manifest from being applied (nothing is then changed): a mapped
/// group that does not exist or is ambiguous, two roles on one group, no service principal,
/// two roles that would end up with one id or value.
pub fn plan_roles(
    manifest: &ValidManifest,
    targets: &[RoleTarget],
    tenant: &RolesTenant<'_>,
    options: &RolesOptions,
) -> Result<RolesPlan, Vec<RoleProblem>> {
    let file = manifest.name.as_str();
    let current = &tenant.application.app_roles;
    let mut problems = Vec::new();
    let mut warnings = manifest.warnings.clone();

    // Ids: as written; else the tenant's role with the same value keeps its id; else derived.
    let given: HashSet<String> = manifest
        .roles
        .iter()
        .filter(|d| d.id_given)
        .map(|d| lower(&d.role.id))
        .collect();
    let mut adopted: HashSet<String> = HashSet::new();
    let mut desired: Vec<AppRole> = Vec::with_capacity(manifest.roles.len());
    for wanted in &manifest.roles {
        let mut role = wanted.role.clone();
        if !wanted.id_given {
            let value = wanted.value();
            let existing = current.iter().find(|old| {
                old.value
                    .as_deref()
                    .is_some_and(|v| v.eq_ignore_ascii_case(value))
                    && !given.contains(&lower(&old.id))
                    && !adopted.contains(&lower(&old.id))
            });
            match existing {
                Some(old) if lower(&old.id) != lower(&role.id) => {
                    warnings.push(
                        RoleProblem::new(
                            file,
                            RoleCode::AdoptedId,
                            format!(
                                "role `{value}` has no id in the manifest; it keeps the id of the application's role with this value, {}; write \"id\": \"{}\" into the manifest",
                                old.id, old.id
                            ),
                        )
                        .at(wanted.place.clone()),
                    );
                    role.id.clone_from(&old.id);
                }
                _ => warnings.push(
                    RoleProblem::new(
                        file,
                        RoleCode::MissingId,
                        format!(
                            "role `{value}` has no id in the manifest; it gets {}, derived from its value; write \"id\": \"{}\" into the manifest so that renaming the role keeps it",
                            role.id, role.id
                        ),
                    )
                    .at(wanted.place.clone()),
                ),
            }
            adopted.insert(lower(&role.id));
        }
        desired.push(role);
    }
    let mut seen_ids: BTreeMap<String, usize> = BTreeMap::new();
    for (index, role) in desired.iter().enumerate() {
        if let Some(first) = seen_ids.insert(lower(&role.id), index) {
            problems.push(
                RoleProblem::new(
                    file,
                    RoleCode::DuplicateId,
                    format!(
                        "roles {} and {} would both have id {}",
                        role_label(&desired[first]),
                        role_label(role),
                        role.id
                    ),
                )
                .at(manifest.roles[index].place.clone()),
            );
        }
    }

    // Groups: each target resolves to exactly one group, and no group holds two roles.
    let mut resolved: Vec<(&RoleTarget, &Group)> = Vec::new();
    for target in targets {
        let role = &desired[target.role_index];
        let matches: Vec<&Group> = match &target.group {
            GroupKey::Id(id) => tenant
                .groups
                .iter()
                .filter(|g| g.id.eq_ignore_ascii_case(id))
                .collect(),
            GroupKey::DisplayName(name) => tenant
                .groups
                .iter()
                .filter(|g| {
                    g.display_name
                        .as_deref()
                        .is_some_and(|n| n.to_lowercase() == name.to_lowercase())
                })
                .collect(),
        };
        let (problem_file, place, how) = match target.mapped_by {
            MappedBy::Convention => (
                file,
                manifest.roles[target.role_index].place.clone(),
                format!("by the naming convention `{}`", target.source),
            ),
            MappedBy::MappingFile => (
                target.source.as_str(),
                target.place.clone(),
                format!("in mapping file {}", target.source),
            ),
        };
        match matches.as_slice() {
            [group] => resolved.push((target, group)),
            [] => problems.push(
                RoleProblem::new(
                    problem_file,
                    RoleCode::GroupNotFound,
                    format!(
                        "role {} is mapped to {} {how}, but no such group exists; create the group or map the role to another",
                        role_label(role),
                        target.group
                    ),
                )
                .at(place),
            ),
            several => problems.push(
                RoleProblem::new(
                    problem_file,
                    RoleCode::AmbiguousGroup,
                    format!(
                        "role {} is mapped to {} {how}, but {} groups have that name ({}); name the group by its id in the mapping file",
                        role_label(role),
                        target.group,
                        several.len(),
                        several.iter().map(|g| g.id.as_str()).collect::<Vec<_>>().join(", ")
                    ),
                )
                .at(place),
            ),
        }
    }
    let mut by_group: BTreeMap<String, (&Group, Vec<&RoleTarget>)> = BTreeMap::new();
    for (target, group) in &resolved {
        by_group
            .entry(lower(&group.id))
            .or_insert_with(|| (*group, Vec::new()))
            .1
            .push(*target);
    }
    for (group, holders) in by_group.values() {
        if holders.len() < 2 {
            continue;
        }
        let roles: Vec<String> = holders
            .iter()
            .map(|t| {
                let how = match t.mapped_by {
                    MappedBy::Convention => "by convention".to_owned(),
                    MappedBy::MappingFile => format!("in {}", t.source),
                };
                format!("{} ({how})", role_label(&desired[t.role_index]))
            })
            .collect();
        problems.push(
            RoleProblem::new(
                file,
                RoleCode::SharedGroup,
                format!(
                    "roles {} are all mapped to group `{}` (id {}); each role needs a group of its own",
                    roles.join(" and "),
                    group.display_name.as_deref().unwrap_or_default(),
                    group.id
                ),
            )
            .at(manifest.roles[holders[1].role_index].place.clone()),
        );
    }
    if !resolved.is_empty() && tenant.service_principal.is_none() {
        problems.push(RoleProblem::new(
            file,
            RoleCode::ServicePrincipalNotFound,
            format!(
                "application {} ({}) has no service principal (enterprise application) in the tenant, so no group can hold its roles; create it first (POST /servicePrincipals {{\"appId\": \"{}\"}})",
                tenant.application.display_name.as_deref().unwrap_or_default(),
                tenant.application.app_id,
                tenant.application.app_id
            ),
        ));
    }

    // Roles: add, change, remove (or refuse to).
    let held = |id: &str| {
        tenant
            .assignments
            .iter()
            .filter(|a| a.app_role_id.eq_ignore_ascii_case(id))
            .count()
    };
    let mut changes = RoleChanges::default();
    let mut last: Vec<AppRole> = Vec::new();
    for role in &desired {
        match current
            .iter()
            .find(|old| old.id.eq_ignore_ascii_case(&role.id))
        {
            None => {
                changes.add.push(RoleRef::from(role));
                last.push(role.clone());
            }
            Some(old) => {
                let role = AppRole {
                    id: old.id.clone(),
                    ..role.clone()
                };
                let changed = changed_fields(old, &role);
                if changed.is_empty() {
                    changes.unchanged += 1;
                } else {
                    changes.change.push(RoleChange {
                        role: RoleRef::from(&role),
                        previous_value: changed
                            .contains(&"value")
                            .then(|| old.value.clone())
                            .flatten(),
                        changed,
                        disable_first: needs_disable(old, &role),
                    });
                }
                last.push(role);
            }
        }
    }
    for old in current {
        if desired.iter().any(|r| r.id.eq_ignore_ascii_case(&old.id)) {
            continue;
        }
        let removal = RoleRemoval {
            role: RoleRef::from(old),
            assignments: held(&old.id),
            disable_first: old.is_enabled,
        };
        if removal.assignments > 0 && !options.allow_role_removals {
            last.push(sendable(old));
            changes.refused.push(removal);
        } else {
            changes.remove.push(removal);
        }
    }
    let mut values: BTreeMap<String, &AppRole> = BTreeMap::new();
    for role in &last {
        let Some(value) = &role.value else { continue };
        if let Some(first) = values.insert(value.to_lowercase(), role) {
            problems.push(RoleProblem::new(
                file,
                RoleCode::DuplicateValue,
                format!(
                    "role {} would share its value with the application's role {}, which is kept because it is still held; remove its assignments first, or allow role removals",
                    role_label(role),
                    role_label(first)
                ),
            ));
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }

    // Updates: disable first where Graph requires it, then the complete list.
    let mut updates = Vec::new();
    let to_disable: Vec<&RoleRef> = changes
        .change
        .iter()
        .filter(|c| c.disable_first)
        .map(|c| &c.role)
        .chain(
            changes
                .remove
                .iter()
                .filter(|r| r.disable_first)
                .map(|r| &r.role),
        )
        .collect();
    if !to_disable.is_empty() {
        let ids: HashSet<String> = to_disable.iter().map(|r| lower(&r.id)).collect();
        let names: Vec<String> = changes
            .change
            .iter()
            .filter(|c| c.disable_first)
            .map(|c| {
                format!(
                    "`{}`",
                    c.previous_value
                        .as_deref()
                        .or(c.role.value.as_deref())
                        .unwrap_or_default()
                )
            })
            .chain(
                changes
                    .remove
                    .iter()
                    .filter(|r| r.disable_first)
                    .map(|r| format!("`{}`", r.role.value.as_deref().unwrap_or_default())),
            )
            .collect();
        updates.push(AppRolesUpdate {
            step: UpdateStep::Disable,
            reason: format!(
                "disable {} first: Graph changes the value or member types of a role, or removes it, only once it is disabled",
                names.join(", ")
            ),
            app_roles: current
                .iter()
                .map(|role| AppRole {
                    is_enabled: role.is_enabled && !ids.contains(&lower(&role.id)),
                    ..sendable(role)
                })
                .collect(),
        });
    }
    if !(changes.add.is_empty() && changes.change.is_empty() && changes.remove.is_empty()) {
        updates.push(AppRolesUpdate {
            step: UpdateStep::Update,
            reason: format!(
                "add {}, change {}, remove {}",
                changes.add.len(),
                changes.change.len(),
                changes.remove.len()
            ),
            app_roles: last.iter().map(sendable).collect(),
        });
    }

    // Assignments: every mapped group holds its role; mapped roles on other mapped groups go.
    let mut assign = Vec::new();
    let mut unassign = Vec::new();
    let mut unmanaged = Vec::new();
    let mut unchanged_assignments = 0;
    if let Some(sp) = tenant.service_principal {
        let value_of = |id: &str| -> Option<String> {
            desired
                .iter()
                .chain(current.iter())
                .find(|r| r.id.eq_ignore_ascii_case(id))
                .and_then(|r| r.value.clone())
        };
        // role id → (target, group); group id → role id.
        let mut group_of_role: BTreeMap<String, (&RoleTarget, &Group)> = BTreeMap::new();
        let mut role_of_group: BTreeMap<String, String> = BTreeMap::new();
        for (target, group) in &resolved {
            let role_id = lower(&desired[target.role_index].id);
            role_of_group.insert(lower(&group.id), role_id.clone());
            group_of_role.insert(role_id, (target, group));
        }
        let removed: HashSet<String> = changes.remove.iter().map(|r| lower(&r.role.id)).collect();
        let refused: HashSet<String> = changes.refused.iter().map(|r| lower(&r.role.id)).collect();
        let mut held_right: HashSet<String> = HashSet::new();
        for a in tenant.assignments {
            if !a.resource_id.eq_ignore_ascii_case(&sp.id) {
                continue;
            }
            let role_id = lower(&a.app_role_id);
            let principal = lower(&a.principal_id);
            let value = value_of(&a.app_role_id);
            let shown_value = value.clone().unwrap_or_else(|| a.app_role_id.clone());
            let kind = a.principal_type.as_deref().unwrap_or_default();
            let holder = a
                .principal_display_name
                .clone()
                .unwrap_or_else(|| a.principal_id.clone());
            let leave = |reason: String| UnmanagedAssignment {
                assignment_id: a.id.clone(),
                principal_id: a.principal_id.clone(),
                principal_type: a.principal_type.clone(),
                principal_display_name: a.principal_display_name.clone(),
                app_role_id: a.app_role_id.clone(),
                value: value.clone(),
                reason,
            };
            match group_of_role.get(&role_id) {
                Some((_, group)) if lower(&group.id) == principal => {
                    held_right.insert(role_id);
                    unchanged_assignments += 1;
                }
                Some((_, group)) => {
                    let mapped = group.display_name.as_deref().unwrap_or(&group.id);
                    if let Some(other) = role_of_group.get(&principal) {
                        unassign.push(GroupUnassignment {
                            assignment_id: a.id.clone(),
                            group_id: a.principal_id.clone(),
                            group_display_name: a.principal_display_name.clone(),
                            app_role_id: a.app_role_id.clone(),
                            value: shown_value.clone(),
                            reason: format!(
                                "group `{holder}` is mapped to role `{}`, not `{shown_value}` (which is mapped to group `{mapped}`)",
                                value_of(other).unwrap_or_else(|| other.clone())
                            ),
                        });
                    } else if kind.eq_ignore_ascii_case("Group") {
                        unmanaged.push(leave(format!(
                            "group `{holder}` is outside the mapping; role `{shown_value}` is mapped to group `{mapped}`"
                        )));
                    } else if kind.eq_ignore_ascii_case("User") {
                        unmanaged.push(leave(format!(
                            "user `{holder}` holds role `{shown_value}` directly; enroll manages group assignments only"
                        )));
                    } else {
                        unmanaged.push(leave(format!(
                            "{} `{holder}` holds role `{shown_value}`; enroll manages group assignments only",
                            if kind.is_empty() { "principal" } else { kind }
                        )));
                    }
                }
                None => {
                    let reason = if role_id == DEFAULT_ACCESS {
                        "default access (no role)".to_owned()
                    } else if removed.contains(&role_id) {
                        format!(
                            "holds role `{shown_value}`, which this plan removes from the application"
                        )
                    } else if refused.contains(&role_id) {
                        format!(
                            "holds role `{shown_value}`, which the manifest no longer has; the role stays while it is held"
                        )
                    } else if let Some(role) = desired.iter().find(|r| lower(&r.id) == role_id) {
                        if !role.is_enabled {
                            format!("role `{shown_value}` is disabled in the manifest")
                        } else if !role.allowed_member_types.iter().any(|t| t == "User") {
                            format!("role `{shown_value}` is for applications only")
                        } else {
                            format!("role `{shown_value}` is mapped to no group")
                        }
                    } else {
                        format!(
                            "role id {} is not one of the application's roles",
                            a.app_role_id
                        )
                    };
                    unmanaged.push(leave(reason));
                }
            }
        }
        for (target, group) in &resolved {
            let role_id = &desired[target.role_index].id;
            if !held_right.contains(&lower(role_id)) {
                assign.push(GroupAssignment {
                    group_id: group.id.clone(),
                    group_display_name: group.display_name.clone(),
                    app_role_id: role_id.clone(),
                    value: target.value.clone(),
                    mapped_by: target.mapped_by,
                });
            }
        }
    }
    let order = |value: &str, holder: &Option<String>, id: &str| {
        (
            value.to_lowercase(),
            holder.clone().unwrap_or_default().to_lowercase(),
            id.to_owned(),
        )
    };
    unassign.sort_by_key(|u| order(&u.value, &u.group_display_name, &u.assignment_id));
    unmanaged.sort_by_key(|u| {
        order(
            u.value.as_deref().unwrap_or(&u.app_role_id),
            &u.principal_display_name,
            &u.assignment_id,
        )
    });
    Ok(RolesPlan {
        manifest: manifest.name.clone(),
        manifest_version: manifest.version.clone(),
        application: ApplicationRef {
            id: tenant.application.id.clone(),
            app_id: tenant.application.app_id.clone(),
            display_name: tenant.application.display_name.clone(),
        },
        service_principal_id: tenant.service_principal.map(|sp| sp.id.clone()),
        app_roles: changes,
        updates,
        assign,
        unassign,
        unmanaged,
        unchanged_assignments,
        warnings,
        allow_role_removals: options.allow_role_removals,
    })
}
