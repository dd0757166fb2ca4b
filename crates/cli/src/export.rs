//! `enroll export`: today's tenant as the files enroll keeps in Git, so that a tenant that
//! adopts enroll starts from what it has and the first run changes nothing.
//!
//! - one roster per access package (`{catalog}/{package}.csv`) listing each holder of an
//!   active assignment by display name and e-mail, with `access-packages.json` pinning the
//!   rosters whose file name cannot name their package;
//! - the application's app role manifest (`app-roles.json`) and its mapping file
//!   (`app-roles.mapping.json`): the group holding each role, by the naming convention
//!   where the group's name follows it, else by name or id; `null` for a role no group holds.
//!
//! [`export`] is pure (a snapshot in, files out); [`read_tenant`] reads what it needs from
//! Graph.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::json;

use enroll_core::escape::csv_guard;
use enroll_core::plan::guest_upn_email;
use enroll_core::roles::{RoleMapping, is_guid, mapping_name_for};
use enroll_core::roster::{Limits, email_key, parse};
use enroll_core::tenant::{AccessPackage, AppRole, Catalog, TenantSnapshot, User};
use enroll_graph::{GraphClient, GraphError};

/// The manifest's file name in an export.
pub const MANIFEST_FILE: &str = "app-roles.json";

/// What to export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportOptions {
    /// The application whose app roles to export (client id); none: rosters only.
    pub app_id: Option<String>,
    /// The group naming convention the mapping file records.
    pub group_pattern: String,
}

/// One file of an export, by its path relative to the output folder (`/`-separated).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportFile {
    /// Relative path.
    pub path: String,
    /// Contents.
    pub bytes: Vec<u8>,
}

/// An export: its files, and what it could not express.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Export {
    /// Files to write.
    pub files: Vec<ExportFile>,
    /// Rosters written.
    pub rosters: usize,
    /// People listed, over all rosters.
    pub people: usize,
    /// App roles in the manifest (none without an application).
    pub roles: usize,
    /// Things the files cannot say, each a sentence.
    pub warnings: Vec<String>,
}

/// Reads what an export needs: the catalogs (all, or the one named by id or display
/// name), their access packages and active assignments, the users, and with `app_id` the
/// application's roles, service principal, assignments and groups.
///
/// # Errors
/// A read failed after retries, or no (or more than one) catalog has the name given.
pub async fn read_tenant(
    graph: &GraphClient,
    catalog: Option<&str>,
    app_id: Option<&str>,
    group_pattern: &str,
) -> Result<TenantSnapshot, GraphError> {
    let catalogs = graph.catalogs().await?;
    let chosen: Vec<Catalog> = match catalog {
        None => catalogs.clone(),
        Some(wanted) => {
            let matching: Vec<Catalog> = catalogs
                .iter()
                .filter(|c| {
                    c.id.eq_ignore_ascii_case(wanted)
                        || c.display_name
                            .as_deref()
                            .is_some_and(|n| n.eq_ignore_ascii_case(wanted))
                })
                .cloned()
                .collect();
            if matching.len() != 1 {
                return Err(GraphError::Config(format!(
                    "{} access package catalogs are named {wanted:?}; give the catalog's display name or id",
                    matching.len()
                )));
            }
            matching
        }
    };
    let mut snapshot = TenantSnapshot {
        catalogs: chosen.clone(),
        ..TenantSnapshot::default()
    };
    for catalog in &chosen {
        for mut package in graph.access_packages(Some(&catalog.id)).await? {
            package.catalog.get_or_insert_with(|| catalog.clone());
            snapshot
                .assignments
                .extend(graph.assignments(&package.id).await?);
            snapshot.access_packages.push(package);
        }
    }
    snapshot.users = graph.users().await?;
    if let Some(app_id) = app_id {
        let app = graph.app_snapshot(app_id, group_pattern).await?;
        snapshot.applications = app.applications;
        snapshot.service_principals = app.service_principals;
        snapshot.groups = app.groups;
        snapshot.app_role_assignments = app.app_role_assignments;
    }
    Ok(snapshot)
}

/// A file or folder name for `name`: characters file systems refuse become `_`.
fn file_name(name: &str) -> String {
    let cleaned: String = name
        .chars()
        .map(|c| {
            if c.is_control() || "/\\:*?\"<>|".contains(c) {
                '_'
            } else {
                c
            }
        })
        .collect();
    let trimmed = cleaned.trim().trim_end_matches('.');
    if trimmed.is_empty() {
        "_".to_owned()
    } else {
        trimmed.to_owned()
    }
}

/// A CSV field for a `;`-separated roster: a value a spreadsheet would run as a formula
/// (`=`, `+`, `-`, `@`, tab or CR first) gets a `'` in front and quotes (OWASP), which the
/// roster reader takes off again; any other value is quoted when the reader needs it.
fn csv_field(text: &str) -> String {
    let guarded = csv_guard(text);
    if guarded.len() != text.len()
        || text.contains([';', '"', '\n', '\r', '\t', ','])
        || text.starts_with('#')
        || text.trim() != text
    {
        format!("\"{}\"", guarded.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}

/// The address that names a user in a roster: `mail`, else the first of `otherMails`,
/// else the guest UPN's external address, else the UPN.
fn user_address(user: &User) -> Option<String> {
    user.mail
        .clone()
        .filter(|m| !m.trim().is_empty())
        .or_else(|| user.other_mails.first().cloned())
        .or_else(|| {
            let upn = user.user_principal_name.as_deref()?;
            guest_upn_email(upn).or_else(|| Some(upn.to_owned()))
        })
}

/// Writes the tenant as files (pure).
pub fn export(snapshot: &TenantSnapshot, options: &ExportOptions) -> Export {
    let mut out = Export::default();
    let users: BTreeMap<String, &User> = snapshot
        .users
        .iter()
        .map(|u| (u.id.to_ascii_lowercase(), u))
        .collect();
    export_rosters(snapshot, &users, &mut out);
    if let Some(app_id) = &options.app_id {
        export_roles(snapshot, app_id, &options.group_pattern, &mut out);
    }
    out
}

fn catalog_of<'s>(snapshot: &'s TenantSnapshot, package: &'s AccessPackage) -> Option<&'s Catalog> {
    let id = &package.catalog.as_ref()?.id;
    snapshot
        .catalogs
        .iter()
        .find(|c| c.id.eq_ignore_ascii_case(id))
        .or(package.catalog.as_ref())
}

fn export_rosters(snapshot: &TenantSnapshot, users: &BTreeMap<String, &User>, out: &mut Export) {
    let mut pins: BTreeMap<String, String> = BTreeMap::new();
    let mut taken: BTreeSet<String> = BTreeSet::new();
    let catalog_names: BTreeMap<String, usize> =
        snapshot
            .catalogs
            .iter()
            .fold(BTreeMap::new(), |mut counts, catalog| {
                let name = catalog
                    .display_name
                    .clone()
                    .unwrap_or_default()
                    .to_lowercase();
                *counts.entry(name).or_default() += 1;
                counts
            });
    let mut packages: Vec<&AccessPackage> = snapshot.access_packages.iter().collect();
    packages.sort_by_key(|p| (p.display_name.to_lowercase(), p.id.clone()));
    for package in packages {
        let catalog = catalog_of(snapshot, package);
        let folder = catalog.map(|c| file_name(c.display_name.as_deref().unwrap_or(&c.id)));
        let same_name = snapshot
            .access_packages
            .iter()
            .filter(|p| {
                p.display_name.to_lowercase() == package.display_name.to_lowercase()
                    && catalog_of(snapshot, p).map(|c| &c.id) == catalog.map(|c| &c.id)
            })
            .count();
        // The plan finds a roster's package by its file name within its folder's catalog;
        // where that cannot work, the mapping file pins it by id.
        let catalog_named = catalog.is_some_and(|c| {
            let name = c.display_name.as_deref().unwrap_or(&c.id);
            file_name(name) == name && catalog_names.get(&name.to_lowercase()) == Some(&1)
        });
        let mut stem = file_name(&package.display_name);
        let mut pin = stem != package.display_name || same_name > 1 || !catalog_named;
        let prefix = folder.map(|f| format!("{f}/")).unwrap_or_default();
        let mut path = format!("{prefix}{stem}.csv");
        let mut suffix = 2;
        while taken.contains(&path.to_lowercase()) {
            stem = format!("{} ({suffix})", file_name(&package.display_name));
            path = format!("{prefix}{stem}.csv");
            pin = true;
            suffix += 1;
        }
        taken.insert(path.to_lowercase());
        if pin {
            pins.insert(path.clone(), package.id.clone());
        }
        let mut rows: BTreeMap<String, (String, String)> = BTreeMap::new();
        for assignment in snapshot.assignments.iter().filter(|a| {
            a.is_active()
                && a.access_package
                    .as_ref()
                    .is_some_and(|p| p.id.eq_ignore_ascii_case(&package.id))
        }) {
            let target = assignment.target.clone().unwrap_or_default();
            let user = target
                .object_id
                .as_deref()
                .and_then(|id| users.get(&id.to_ascii_lowercase()));
            let email = target
                .email
                .clone()
                .filter(|e| !e.trim().is_empty())
                .or_else(|| user.and_then(|u| user_address(u)));
            let Some(email) = email else {
                out.warnings.push(format!(
                    "{path}: the holder of assignment {} has no e-mail address or user principal name; not listed, so a plan would remove it",
                    assignment.id
                ));
                continue;
            };
            let name = target
                .display_name
                .clone()
                .or_else(|| user.and_then(|u| u.display_name.clone()))
                .unwrap_or_default();
            rows.entry(email_key(&email)).or_insert((name, email));
        }
        let mut text = String::from("DisplayName;Email\n");
        for (name, email) in rows.values() {
            text.push_str(&format!("{};{}\n", csv_field(name), csv_field(email)));
        }
        let roster = parse(&path, text.as_bytes(), Limits::default());
        for problem in &roster.errors {
            out.warnings
                .push(format!("{path}: {problem}; fix the row before planning"));
        }
        out.people += rows.len();
        out.rosters += 1;
        out.files.push(ExportFile {
            path,
            bytes: text.into_bytes(),
        });
    }
    if !pins.is_empty() {
        let mapping = json!({ "accessPackages": pins });
        out.files.push(ExportFile {
            path: enroll_store::local::DEFAULT_MAPPING_FILE.to_owned(),
            bytes: pretty(&mapping),
        });
    }
}

fn pretty(value: &serde_json::Value) -> Vec<u8> {
    let mut text = serde_json::to_string_pretty(value).unwrap_or_default();
    text.push('\n');
    text.into_bytes()
}

fn export_roles(snapshot: &TenantSnapshot, app_id: &str, pattern: &str, out: &mut Export) {
    let Some(application) = snapshot
        .applications
        .iter()
        .find(|a| a.app_id.eq_ignore_ascii_case(app_id))
    else {
        out.warnings.push(format!(
            "no application has the client id {app_id}; no app role manifest written"
        ));
        return;
    };
    let roles: Vec<AppRole> = application
        .app_roles
        .iter()
        .map(|r| AppRole {
            origin: None,
            ..r.clone()
        })
        .collect();
    out.roles = roles.len();
    out.files.push(ExportFile {
        path: MANIFEST_FILE.to_owned(),
        bytes: pretty(&json!({ "appId": application.app_id, "appRoles": roles })),
    });
    let sp = snapshot
        .service_principals
        .iter()
        .find(|s| s.app_id.eq_ignore_ascii_case(app_id));
    let same_name = |name: &str| {
        snapshot
            .groups
            .iter()
            .filter(|g| {
                g.display_name
                    .as_deref()
                    .is_some_and(|n| n.to_lowercase() == name.to_lowercase())
            })
            .count()
    };
    let is_group = |a: &&enroll_core::tenant::AppRoleAssignment| {
        sp.is_some_and(|sp| a.resource_id.eq_ignore_ascii_case(&sp.id))
            && a.principal_type
                .as_deref()
                .is_some_and(|t| t.eq_ignore_ascii_case("Group"))
    };
    let group_by_id = |id: &str| {
        snapshot
            .groups
            .iter()
            .find(|g| g.id.eq_ignore_ascii_case(id))
    };
    let shown =
        |g: &enroll_core::tenant::Group| g.display_name.clone().unwrap_or_else(|| g.id.clone());
    // Each role's group: the one holding it, the conventionally named first.
    let mut chosen: BTreeMap<String, Option<&enroll_core::tenant::Group>> = BTreeMap::new();
    let mut used: BTreeSet<String> = BTreeSet::new();
    let mapped_roles: Vec<&AppRole> = roles
        .iter()
        .filter(|r| r.is_enabled && r.allowed_member_types.iter().any(|t| t == "User"))
        .collect();
    for role in &mapped_roles {
        let value = role.value.clone().unwrap_or_default();
        let convention = pattern.replace("{value}", &value).to_lowercase();
        let mut holders: Vec<&enroll_core::tenant::Group> = snapshot
            .app_role_assignments
            .iter()
            .filter(is_group)
            .filter(|a| a.app_role_id.eq_ignore_ascii_case(&role.id))
            .filter_map(|a| group_by_id(&a.principal_id))
            .filter(|g| !used.contains(&g.id.to_ascii_lowercase()))
            .collect();
        holders.sort_by_key(|g| {
            let name = shown(g).to_lowercase();
            (name != convention, name, g.id.clone())
        });
        if holders.len() > 1 {
            out.warnings.push(format!(
                "role `{value}` is held by {} groups; the mapping names `{}`, the others ({}) stay as they are, outside the mapping",
                holders.len(),
                shown(holders[0]),
                holders[1..].iter().map(|g| shown(g)).collect::<Vec<_>>().join(", ")
            ));
        }
        if let Some(group) = holders.first() {
            used.insert(group.id.to_ascii_lowercase());
        }
        chosen.insert(role.id.to_ascii_lowercase(), holders.first().copied());
    }
    // A mapped group holding another mapped role would lose it on the first run; such a
    // role is left to no group instead, so that nothing changes, and the export says so.
    let role_of_group: BTreeMap<String, String> = chosen
        .iter()
        .filter_map(|(role, group)| Some(((*group)?.id.to_ascii_lowercase(), role.clone())))
        .collect();
    for a in snapshot.app_role_assignments.iter().filter(is_group) {
        let role = a.app_role_id.to_ascii_lowercase();
        let group = a.principal_id.to_ascii_lowercase();
        let Some(own) = role_of_group.get(&group) else {
            continue;
        };
        if *own == role || !matches!(chosen.get(&role), Some(Some(_))) {
            continue;
        }
        let value_of = |id: &str| {
            roles
                .iter()
                .find(|r| r.id.eq_ignore_ascii_case(id))
                .and_then(|r| r.value.clone())
                .unwrap_or_default()
        };
        out.warnings.push(format!(
            "group `{}` holds roles `{}` and `{}`; a mapped group holds one role, so the mapping leaves `{}` to no group and its holders stay as they are (remove the extra assignment, then map the role)",
            a.principal_display_name.as_deref().unwrap_or(&a.principal_id),
            value_of(own),
            value_of(&role),
            value_of(&role)
        ));
        chosen.insert(role, None);
    }
    let mut mapping = RoleMapping {
        group_pattern: Some(pattern.to_owned()),
        roles: BTreeMap::new(),
    };
    for role in &mapped_roles {
        let value = role.value.clone().unwrap_or_default();
        let Some(Some(group)) = chosen.get(&role.id.to_ascii_lowercase()) else {
            mapping.roles.insert(value, None);
            continue;
        };
        let convention = pattern.replace("{value}", &value);
        let name = group.display_name.clone().unwrap_or_default();
        let unique = !name.is_empty() && !is_guid(&name) && same_name(&name) == 1;
        if unique && name.to_lowercase() == convention.to_lowercase() {
            continue;
        }
        let key = if unique { name } else { group.id.clone() };
        mapping.roles.insert(value, Some(key));
    }
    out.files.push(ExportFile {
        path: mapping_name_for(MANIFEST_FILE),
        bytes: pretty(&serde_json::to_value(&mapping).unwrap_or_default()),
    });
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn names_and_fields_survive_the_file_system_and_the_roster_reader() {
        assert_eq!(file_name("R&D: Team A/B"), "R&D_ Team A_B");
        assert_eq!(file_name("  ..."), "_");
        assert_eq!(csv_field("Jane Doe"), "Jane Doe");
        assert_eq!(csv_field("#1 \"Fan\"; Jr"), "\"#1 \"\"Fan\"\"; Jr\"");
        assert_eq!(csv_field("Doe, Jane"), "\"Doe, Jane\"");
    }

    #[test]
    fn formulas_are_guarded_and_read_back_as_the_same_people() {
        let names = [
            "=HYPERLINK(\"https://evil.example\";\"x\")",
            "+31 6 1234 5678",
            "-2+3",
            "@SUM(A1:A9)",
            "\tTabbed",
            "\rReturned",
            "'=already quoted",
            "Plain Name",
        ];
        let written: Vec<String> = names.iter().map(|name| csv_field(name)).collect();
        assert_eq!(
            written,
            [
                "\"'=HYPERLINK(\"\"https://evil.example\"\";\"\"x\"\")\"",
                "\"'+31 6 1234 5678\"",
                "\"'-2+3\"",
                "\"'@SUM(A1:A9)\"",
                "\"'\tTabbed\"",
                "\"'\rReturned\"",
                "\"''=already quoted\"",
                "Plain Name",
            ]
        );
        let mut text = String::from("DisplayName;Email\n");
        for (index, field) in written.iter().enumerate() {
            text.push_str(&format!("{field};p{index}@example.com\n"));
        }
        let roster = parse("r.csv", text.as_bytes(), Limits::default());
        assert!(roster.is_valid(), "{:?}", roster.errors);
        let read: Vec<&str> = roster
            .people
            .iter()
            .map(|p| p.display_name.as_str())
            .collect();
        assert_eq!(read, names);
    }
}
