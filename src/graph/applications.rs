//! Applications, service principals, app roles and the app role assignments of a resource.

use serde_json::json;

use super::GraphClient;
use super::error::GraphError;
use super::odata::{encode_path_segment, quote, relative_url};
use crate::tenant::{AppRole, AppRoleAssignment, Application, ServicePrincipal};

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
}
