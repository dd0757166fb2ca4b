//! The Microsoft Graph application permissions the steps need: one list, read by
//! `enroll grant` (what it grants), `enroll doctor` (what it checks) and the README's
//! permission table (a test compares them).
//!
//! Least privilege per call, from Microsoft's API pages (graph.md §0): reading users is
//! `User.Read.All`, inviting `User.Invite.All`, reading and requesting access package
//! assignments `EntitlementManagement.ReadWrite.All` (or a catalog-scoped role), updating an
//! owned application's app roles `Application.ReadWrite.OwnedBy` (which also reads
//! applications and service principals), granting app roles to groups
//! `AppRoleAssignment.ReadWrite.All` with `Group.Read.All`.

/// The well-known application (client) id of Microsoft Graph, whose service principal
/// holds the app roles that are Graph's application permissions.
pub const MICROSOFT_GRAPH_APP_ID: &str = "00000003-0000-0000-c000-000000000000";

/// One Graph application permission and why the steps need it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Permission {
    /// The permission (the app role's `value` on Microsoft Graph's service principal).
    pub value: &'static str,
    /// The functions (steps) that need it.
    pub needed_by: &'static [&'static str],
    /// What they do with it.
    pub why: &'static str,
    /// A narrower alternative an administrator may choose instead, if there is one.
    pub alternative: Option<&'static str>,
    /// Broader permissions that allow the same (and more), from the API pages' "higher
    /// privileged" columns: a principal that holds one needs no grant of this one.
    pub broader: &'static [&'static str],
    /// Which configured steps need it.
    pub part: Part,
}

/// The parts of enroll a deployment may use, each with its own permissions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// Rosters: plan, invite, assign, remove (always on).
    People,
    /// Access package assignments through Graph's tenant-wide permission; off when the
    /// identity holds a catalog-scoped entitlement-management role instead.
    EntitlementManagement,
    /// App roles from manifests (`MapRoles`).
    AppRoles,
}

/// Every permission any configuration needs, in the README's order.
pub const PERMISSIONS: &[Permission] = &[
    Permission {
        value: "User.Read.All",
        needed_by: &["Plan", "Invite", "Assign", "Remove"],
        why: "finds the people of a roster by mail, other mails and user principal name, and reads a holder's addresses",
        alternative: None,
        broader: &[
            "User.ReadWrite.All",
            "Directory.Read.All",
            "Directory.ReadWrite.All",
        ],
        part: Part::People,
    },
    Permission {
        value: "User.Invite.All",
        needed_by: &["Invite"],
        why: "invites people who are not in the tenant as B2B guests",
        alternative: None,
        broader: &["User.ReadWrite.All", "Directory.ReadWrite.All"],
        part: Part::People,
    },
    Permission {
        value: "EntitlementManagement.ReadWrite.All",
        needed_by: &["Plan", "Assign", "Remove"],
        why: "reads catalogs, access packages, policies and assignments; requests `adminAdd` and `adminRemove`",
        alternative: Some(
            "the entitlement-management role *Access package assignment manager* on each catalog (`enroll grant --catalog-role`)",
        ),
        broader: &[],
        part: Part::EntitlementManagement,
    },
    Permission {
        value: "Application.ReadWrite.OwnedBy",
        needed_by: &["MapRoles"],
        why: "reads the application and its service principal, and updates the app roles of an application it owns",
        alternative: None,
        broader: &["Application.ReadWrite.All"],
        part: Part::AppRoles,
    },
    Permission {
        value: "AppRoleAssignment.ReadWrite.All",
        needed_by: &["MapRoles"],
        why: "reads who holds the application's roles, and gives and takes roles from groups",
        alternative: None,
        broader: &[],
        part: Part::AppRoles,
    },
    Permission {
        value: "Group.Read.All",
        needed_by: &["MapRoles"],
        why: "finds the groups that hold app roles, by name and id; Graph wants it with AppRoleAssignment.ReadWrite.All to give a group a role",
        alternative: None,
        broader: &[
            "Group.ReadWrite.All",
            "Directory.Read.All",
            "Directory.ReadWrite.All",
        ],
        part: Part::AppRoles,
    },
];

impl Permission {
    /// The permission among `held` that gives this one: itself, else a broader one.
    pub fn held_as<'h, S: AsRef<str>>(&self, held: &'h [S]) -> Option<&'h str> {
        let has = |value: &str| held.iter().map(AsRef::as_ref).find(|h| *h == value);
        has(self.value).or_else(|| self.broader.iter().find_map(|b| has(b)))
    }
}

/// Which parts a deployment uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Needs {
    /// App roles from manifests.
    pub app_roles: bool,
    /// Entitlement management through a catalog-scoped role instead of
    /// `EntitlementManagement.ReadWrite.All`.
    pub catalog_role: bool,
}

impl Needs {
    /// Whether this deployment needs permissions of `part`.
    pub fn includes(self, part: Part) -> bool {
        match part {
            Part::People => true,
            Part::EntitlementManagement => !self.catalog_role,
            Part::AppRoles => self.app_roles,
        }
    }

    /// The permissions this deployment needs, in the README's order.
    pub fn permissions(self) -> impl Iterator<Item = &'static Permission> {
        PERMISSIONS
            .iter()
            .filter(move |permission| self.includes(permission.part))
    }
}

/// The README's permission table (Markdown), written from [`PERMISSIONS`].
pub fn markdown_table() -> String {
    let mut table = String::from(
        "| permission | needed by | for | least-privilege alternative |\n| --- | --- | --- | --- |\n",
    );
    for permission in PERMISSIONS {
        let part = match permission.part {
            Part::People | Part::EntitlementManagement => "",
            Part::AppRoles => " (app roles)",
        };
        table.push_str(&format!(
            "| `{}` | {}{part} | {} | {} |\n",
            permission.value,
            permission.needed_by.join(", "),
            permission.why,
            permission.alternative.unwrap_or("none"),
        ));
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(needs: Needs) -> Vec<&'static str> {
        needs.permissions().map(|p| p.value).collect()
    }

    #[test]
    fn people_steps_alone_need_three_permissions() {
        let needs = Needs {
            app_roles: false,
            catalog_role: false,
        };
        assert_eq!(
            values(needs),
            [
                "User.Read.All",
                "User.Invite.All",
                "EntitlementManagement.ReadWrite.All"
            ]
        );
    }

    #[test]
    fn app_roles_add_three_and_a_catalog_role_replaces_entitlement_management() {
        let needs = Needs {
            app_roles: true,
            catalog_role: true,
        };
        assert_eq!(
            values(needs),
            [
                "User.Read.All",
                "User.Invite.All",
                "Application.ReadWrite.OwnedBy",
                "AppRoleAssignment.ReadWrite.All",
                "Group.Read.All"
            ]
        );
    }

    #[test]
    fn a_broader_permission_gives_the_narrower_one() {
        let user_read = &PERMISSIONS[0];
        assert_eq!(user_read.held_as(&["User.Read.All"]), Some("User.Read.All"));
        assert_eq!(
            user_read.held_as(&["Directory.ReadWrite.All", "Group.Read.All"]),
            Some("Directory.ReadWrite.All")
        );
        assert_eq!(user_read.held_as(&["User.Invite.All"]), None);
    }

    #[test]
    fn the_table_has_a_row_per_permission() {
        let table = markdown_table();
        assert_eq!(table.lines().count(), 2 + PERMISSIONS.len());
        assert!(table.contains("| `Group.Read.All` | MapRoles (app roles) | "));
    }
}
