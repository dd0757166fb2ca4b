//! `enroll grant`: gives a service principal (the deployment's managed identity, or an app)
//! exactly the Microsoft Graph application permissions the configured steps need
//! ([`enroll_steps::permissions`]), as app role assignments on Microsoft Graph's service
//! principal. An administrator runs it once; `--dry-run` only says what it would grant.
//!
//! Granting takes `AppRoleAssignment.ReadWrite.All` and `Application.Read.All` for an app,
//! or, for a signed-in administrator (an Azure CLI token), the Privileged Role
//! Administrator role (Microsoft's page "Grant an appRoleAssignment for a service
//! principal").

use std::collections::BTreeMap;

use enroll_core::tenant::{AppRole, ServicePrincipal};
use enroll_graph::{GraphClient, GraphError, NewGroupAppRoleAssignment};
use enroll_steps::permissions::{MICROSOFT_GRAPH_APP_ID, Needs, Permission};

/// Why permissions could not be looked up or granted.
#[derive(Debug, thiserror::Error)]
pub enum GrantError {
    /// A Graph call failed.
    #[error("Microsoft Graph: {0}")]
    Graph(#[from] GraphError),
    /// The tenant has no service principal for Microsoft Graph (it always should).
    #[error(
        "the tenant has no service principal for Microsoft Graph (appId {MICROSOFT_GRAPH_APP_ID})"
    )]
    NoGraphServicePrincipal,
    /// No service principal has the object id given.
    #[error(
        "no service principal has object id {0}: give the managed identity's principal id (the `principalId` output of infra/main.bicep) or the app's enterprise application object id, not its client id"
    )]
    NoPrincipal(String),
    /// Microsoft Graph offers no application permission of that name.
    #[error("Microsoft Graph has no application permission `{0}`")]
    UnknownPermission(&'static str),
}

/// The Graph application permissions a service principal holds, by value, with the
/// assignment's id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Held(pub BTreeMap<String, String>);

/// Microsoft Graph's service principal with its app roles.
///
/// # Errors
/// [`GrantError`] when it cannot be read or does not exist.
pub async fn microsoft_graph(graph: &GraphClient) -> Result<ServicePrincipal, GrantError> {
    graph
        .service_principal_by_app_id(MICROSOFT_GRAPH_APP_ID)
        .await?
        .ok_or(GrantError::NoGraphServicePrincipal)
}

/// The Graph application permissions `principal_id` holds (its app role assignments on
/// `microsoft_graph`, named by the roles' values).
///
/// # Errors
/// [`GraphError`] when the assignments cannot be read.
pub async fn held_permissions(
    graph: &GraphClient,
    microsoft_graph: &ServicePrincipal,
    principal_id: &str,
) -> Result<Held, GraphError> {
    let assignments = graph
        .app_role_assignments_of_principal(principal_id)
        .await?;
    Ok(Held(
        assignments
            .into_iter()
            .filter(|a| a.resource_id.eq_ignore_ascii_case(&microsoft_graph.id))
            .filter_map(|a| {
                let role = application_role_by_id(microsoft_graph, &a.app_role_id)?;
                Some((role.value.clone()?, a.id))
            })
            .collect(),
    ))
}

fn application_role_by_id<'a>(sp: &'a ServicePrincipal, id: &str) -> Option<&'a AppRole> {
    sp.app_roles.iter().find(|r| r.id.eq_ignore_ascii_case(id))
}

/// The application permission (an app role members of type `Application` may hold) named
/// `value` on Microsoft Graph's service principal.
fn application_role<'a>(sp: &'a ServicePrincipal, value: &str) -> Option<&'a AppRole> {
    sp.app_roles.iter().find(|role| {
        role.value.as_deref() == Some(value)
            && role.is_enabled
            && role.allowed_member_types.iter().any(|t| t == "Application")
    })
}

/// What became of one permission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GrantState {
    /// The principal held it already (or a broader permission that gives it).
    Held,
    /// `--dry-run`: it would be granted.
    WouldGrant,
    /// Granted now (or found granted by a concurrent grant).
    Granted,
    /// Graph refused; the message says why.
    Failed(String),
}

/// One needed permission and what became of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantRow {
    /// The permission.
    pub permission: &'static Permission,
    /// What became of it.
    pub state: GrantState,
}

/// What `enroll grant` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantReport {
    /// The principal the permissions are for.
    pub principal: ServicePrincipal,
    /// One row per needed permission, in the README's order.
    pub rows: Vec<GrantRow>,
    /// Graph application permissions the principal holds beyond the needed ones.
    pub extra: Vec<String>,
}

impl GrantReport {
    /// Whether every needed permission is held (or, in a dry run, would be).
    pub fn succeeded(&self) -> bool {
        !self
            .rows
            .iter()
            .any(|row| matches!(row.state, GrantState::Failed(_)))
    }

    /// The report for programs: the principal, each permission with its state, and the
    /// permissions held beyond them.
    pub fn to_json(&self, dry_run: bool) -> serde_json::Value {
        let permissions: Vec<serde_json::Value> = self
            .rows
            .iter()
            .map(|row| {
                let (state, error) = match &row.state {
                    GrantState::Held => ("held", None),
                    GrantState::WouldGrant => ("wouldGrant", None),
                    GrantState::Granted => ("granted", None),
                    GrantState::Failed(reason) => ("failed", Some(reason)),
                };
                serde_json::json!({
                    "permission": row.permission.value,
                    "neededBy": row.permission.needed_by,
                    "state": state,
                    "error": error,
                })
            })
            .collect();
        serde_json::json!({
            "principal": {
                "id": self.principal.id,
                "appId": self.principal.app_id,
                "displayName": self.principal.display_name,
            },
            "dryRun": dry_run,
            "permissions": permissions,
            "extra": self.extra,
        })
    }

    /// The report for a terminal.
    pub fn to_text(&self, needs: Needs) -> String {
        use enroll_core::escape::Terminal;
        use std::fmt::Write as _;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "Microsoft Graph application permissions for {} (object id {}, client id {}):",
            Terminal(self.principal.display_name.as_deref().unwrap_or("?")),
            Terminal(&self.principal.id),
            Terminal(&self.principal.app_id)
        );
        let width = self
            .rows
            .iter()
            .map(|row| row.permission.value.len())
            .max()
            .unwrap_or(10);
        for row in &self.rows {
            let state = match &row.state {
                GrantState::Held => "already granted".to_owned(),
                GrantState::WouldGrant => "would be granted (dry run)".to_owned(),
                GrantState::Granted => "granted".to_owned(),
                GrantState::Failed(reason) => format!("FAILED: {}", Terminal(reason)),
            };
            let _ = writeln!(
                out,
                "  {:<width$}  {:<28}  {state}",
                row.permission.value,
                row.permission.needed_by.join(", ")
            );
        }
        if !self.extra.is_empty() {
            let _ = writeln!(
                out,
                "also held, not needed by enroll: {} (left as they are)",
                Terminal(&self.extra.join(", "))
            );
        }
        if needs.catalog_role {
            let _ = writeln!(
                out,
                "entitlement management: give it the role Access package assignment manager on each catalog of the rosters (Identity Governance → Catalogs → Roles and administrators); enroll does not grant catalog roles"
            );
        }
        out
    }
}

/// Grants `principal_id` the permissions `needs` asks for that it lacks (all of them are
/// looked up first, so an unknown permission grants nothing); with `dry_run`, grants
/// nothing and says what it would grant.
///
/// # Errors
/// [`GrantError`] when the principals or the current grants cannot be read, or Graph lacks
/// a permission. A refused grant is a [`GrantState::Failed`] row instead.
pub async fn grant(
    graph: &GraphClient,
    principal_id: &str,
    needs: Needs,
    dry_run: bool,
) -> Result<GrantReport, GrantError> {
    let microsoft_graph = microsoft_graph(graph).await?;
    let principal = graph
        .service_principal(principal_id)
        .await?
        .ok_or_else(|| GrantError::NoPrincipal(principal_id.to_owned()))?;
    let held: Vec<String> = held_permissions(graph, &microsoft_graph, &principal.id)
        .await?
        .0
        .into_keys()
        .collect();
    let mut rows = Vec::new();
    let mut wanted = Vec::new();
    let mut used = Vec::new();
    for permission in needs.permissions() {
        let role = application_role(&microsoft_graph, permission.value)
            .ok_or(GrantError::UnknownPermission(permission.value))?;
        let state = if let Some(value) = permission.held_as(&held) {
            used.push(value.to_owned());
            GrantState::Held
        } else {
            wanted.push(NewGroupAppRoleAssignment {
                principal_id: principal.id.clone(),
                resource_id: microsoft_graph.id.clone(),
                app_role_id: role.id.clone(),
            });
            GrantState::WouldGrant
        };
        rows.push(GrantRow { permission, state });
    }
    if !dry_run && !wanted.is_empty() {
        let answers = graph.grant_app_roles(&wanted).await;
        let mut answers = answers.into_iter();
        for row in rows
            .iter_mut()
            .filter(|row| row.state == GrantState::WouldGrant)
        {
            row.state = match answers.next() {
                Some((_, Ok(_))) => GrantState::Granted,
                Some((_, Err(error))) if error.is_existing_app_role_assignment() => {
                    GrantState::Granted
                }
                Some((_, Err(error))) => GrantState::Failed(error.to_string()),
                None => GrantState::Failed("Graph gave no answer".to_owned()),
            };
        }
    }
    let extra = held
        .into_iter()
        .filter(|value| !used.contains(value))
        .collect();
    Ok(GrantReport {
        principal,
        rows,
        extra,
    })
}
