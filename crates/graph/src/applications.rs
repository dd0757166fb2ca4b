//! Applications, service principals, app roles and the app role assignments of a resource.

use serde_json::json;

use super::GraphClient;
use super::error::GraphError;
use super::odata::{encode_path_segment, quote, relative_url};
use enroll_core::tenant::{
    AppRole, AppRoleAssignment, Application, ServicePrincipal, TenantSnapshot,
};

const APP_SELECT: &str = "id,appId,displayName,appRoles";

impl GraphClient {
    /// The application registration with client id `app_id`, if there is one.
    ///
    /// # Errors
    ///
    /// The lookup failed after retries.
    pub async fn application_by_app_id(
        &self,
        app_id: &str,
    ) -> Result<Option<Application>, GraphError> {
        let filter = format!("appId eq {}", quote(app_id));
        let found: Vec<Application> = self
            .get_all(&relative_url(
                "/applications",
                &[("$filter", &filter), ("$select", APP_SELECT)],
            ))
            .await?;
        Ok(found.into_iter().next())
    }

    /// The service principal of the application with client id `app_id`, if there is one.
    ///
    /// # Errors
    ///
    /// The lookup failed after retries.
    pub async fn service_principal_by_app_id(
        &self,
        app_id: &str,
    ) -> Result<Option<ServicePrincipal>, GraphError> {
        let filter = format!("appId eq {}", quote(app_id));
        let found: Vec<ServicePrincipal> = self
            .get_all(&relative_url(
                "/servicePrincipals",
                &[("$filter", &filter), ("$select", APP_SELECT)],
            ))
            .await?;
        Ok(found.into_iter().next())
    }

    /// Replaces the app roles of the application with object id `application_id` by
    /// `app_roles`, the complete list (Graph replaces the whole collection; a role must be
    /// disabled in one update before another removes it).
    ///
    /// # Errors
    ///
    /// Graph refused, e.g. `CannotDeleteOrUpdateEnabledEntitlement` or `DuplicateValue`.
    pub async fn update_app_roles(
        &self,
        application_id: &str,
        app_roles: &[AppRole],
    ) -> Result<(), GraphError> {
        let mut roles = serde_json::to_value(app_roles).unwrap_or_default();
        // `origin` is read-only: Graph rejects a PATCH that sends it.
        if let Some(roles) = roles.as_array_mut() {
            for role in roles {
                if let Some(role) = role.as_object_mut() {
                    role.remove("origin");
                }
            }
        }
        self.patch(
            &format!("/applications/{}", encode_path_segment(application_id)),
            &json!({ "appRoles": roles }),
        )
        .await
    }

    /// Who holds app roles of the service principal `service_principal_id`
    /// (`appRoleAssignedTo`).
    ///
    /// # Errors
    ///
    /// The first page that failed after retries.
    pub async fn app_role_assignments_of_service_principal(
        &self,
        service_principal_id: &str,
    ) -> Result<Vec<AppRoleAssignment>, GraphError> {
        self.get_all(&format!(
            "/servicePrincipals/{}/appRoleAssignedTo",
            encode_path_segment(service_principal_id)
        ))
        .await
    }

    /// The part of a snapshot app role planning and export read: the application with
    /// client id `app_id`, its service principal, who holds its roles, and the groups that
    /// matter for mapping them (those holding a role, and every group named like one of
    /// those or like a role's group by `group_pattern`, so that ambiguous names show).
    ///
    /// # Errors
    ///
    /// A read failed after retries.
    pub async fn app_snapshot(
        &self,
        app_id: &str,
        group_pattern: &str,
    ) -> Result<TenantSnapshot, GraphError> {
        let Some(application) = self.application_by_app_id(app_id).await? else {
            return Ok(TenantSnapshot::default());
        };
        let service_principal = self.service_principal_by_app_id(app_id).await?;
        let assignments = match &service_principal {
            Some(sp) => {
                self.app_role_assignments_of_service_principal(&sp.id)
                    .await?
            }
            None => Vec::new(),
        };
        let mut holder_ids: Vec<&str> = assignments
            .iter()
            .filter(|a| {
                a.principal_type
                    .as_deref()
                    .is_some_and(|t| t.eq_ignore_ascii_case("Group"))
            })
            .map(|a| a.principal_id.as_str())
            .collect();
        holder_ids.sort_unstable();
        holder_ids.dedup();
        let mut groups = self.groups_by_id(&holder_ids).await?;
        let mut names: Vec<String> = groups
            .iter()
            .filter_map(|g| g.display_name.clone())
            .chain(
                application
                    .app_roles
                    .iter()
                    .filter_map(|r| r.value.as_deref())
                    .map(|value| group_pattern.replace("{value}", value)),
            )
            .collect();
        names.sort();
        names.dedup();
        for group in self.groups_by_display_name(&names).await? {
            if !groups.iter().any(|g| g.id.eq_ignore_ascii_case(&group.id)) {
                groups.push(group);
            }
        }
        Ok(TenantSnapshot {
            applications: vec![application],
            service_principals: service_principal.into_iter().collect(),
            groups,
            app_role_assignments: assignments,
            ..TenantSnapshot::default()
        })
    }
}
