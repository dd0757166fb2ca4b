//! Application permissions: who a token speaks for, the app roles a service principal holds
//! on other APIs (Microsoft Graph's among them), and granting more (`enroll grant`,
//! `enroll doctor`).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;

use super::odata::{encode_path_segment, relative_url};
use super::{GraphClient, GraphError, NewGroupAppRoleAssignment};
use enroll_core::tenant::{AppRoleAssignment, ServicePrincipal};

/// What this client's access token says about whom it was issued to. Read without checking
/// the signature: the token came straight from the token endpoint to this client, and the
/// claims only describe it in reports. Every field is `None` for a token that is not a JWT.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TokenClaims {
    /// `oid`: the object id of the service principal (or user) the token was issued to.
    pub object_id: Option<String>,
    /// `appid` (v1 tokens) or `azp` (v2): the client id.
    pub app_id: Option<String>,
    /// `roles`: the application permissions the token carries.
    pub roles: Option<Vec<String>>,
    /// `scp`: the delegated scopes of a signed-in user's token.
    pub scopes: Option<Vec<String>>,
}

#[derive(Deserialize)]
struct RawClaims {
    oid: Option<String>,
    appid: Option<String>,
    azp: Option<String>,
    roles: Option<Vec<String>>,
    scp: Option<String>,
}

impl TokenClaims {
    /// The claims of a JWT's payload; all `None` when `token` is not a readable JWT.
    pub fn from_jwt(token: &str) -> Self {
        let payload = token.split('.').nth(1).unwrap_or_default();
        let Ok(bytes) = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')) else {
            return Self::default();
        };
        let Ok(raw) = serde_json::from_slice::<RawClaims>(&bytes) else {
            return Self::default();
        };
        TokenClaims {
            object_id: raw.oid,
            app_id: raw.appid.or(raw.azp),
            roles: raw.roles,
            scopes: raw
                .scp
                .map(|scp| scp.split_whitespace().map(str::to_owned).collect()),
        }
    }
}

impl GraphClient {
    /// Acquires a token (or takes the cached one) and reads its claims.
    ///
    /// # Errors
    ///
    /// [`GraphError::Auth`] when no token can be had.
    pub async fn token_claims(&self) -> Result<TokenClaims, GraphError> {
        let token = self.inner.tokens.token().await?;
        Ok(TokenClaims::from_jwt(token.expose()))
    }

    /// The service principal with object id `id` and its app roles; `None` when there is
    /// none.
    ///
    /// # Errors
    ///
    /// The read failed after retries (a 404 is `Ok(None)`).
    pub async fn service_principal(
        &self,
        id: &str,
    ) -> Result<Option<ServicePrincipal>, GraphError> {
        let url = relative_url(
            &format!("/servicePrincipals/{}", encode_path_segment(id)),
            &[("$select", "id,appId,displayName,appRoles")],
        );
        match self.get_json(&url).await {
            Ok(found) => Ok(Some(found)),
            Err(error) if error.is_not_found() => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// The app roles granted to the service principal `service_principal_id` on any
    /// resource (`/servicePrincipals/{id}/appRoleAssignments`): its application permissions.
    ///
    /// # Errors
    ///
    /// The first page that failed after retries.
    pub async fn app_role_assignments_of_principal(
        &self,
        service_principal_id: &str,
    ) -> Result<Vec<AppRoleAssignment>, GraphError> {
        self.get_all(&format!(
            "/servicePrincipals/{}/appRoleAssignments",
            encode_path_segment(service_principal_id)
        ))
        .await
    }

    /// Grants app roles of resource service principals (application permissions) to
    /// service principals, through `$batch` on the resource's side
    /// (`POST /servicePrincipals/{resourceId}/appRoleAssignedTo`), each answer on its own, in
    /// the order given. [`GraphError::is_existing_app_role_assignment`] recognises a grant
    /// that exists.
    pub async fn grant_app_roles(
        &self,
        grants: &[NewGroupAppRoleAssignment],
    ) -> Vec<(
        NewGroupAppRoleAssignment,
        Result<AppRoleAssignment, GraphError>,
    )> {
        self.post_app_role_assignments(grants, "/servicePrincipals/{id}/appRoleAssignedTo", |a| {
            format!(
                "/servicePrincipals/{}/appRoleAssignedTo",
                encode_path_segment(&a.resource_id)
            )
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn jwt(payload: &serde_json::Value) -> String {
        format!(
            "eyJhbGciOiJub25lIn0.{}.c2ln",
            URL_SAFE_NO_PAD.encode(payload.to_string())
        )
    }

    #[test]
    fn reads_an_app_only_token() {
        let claims = TokenClaims::from_jwt(&jwt(&serde_json::json!({
            "oid": "5f7b…-sp",
            "appid": "c0ffee",
            "roles": ["User.Read.All", "User.Invite.All"],
        })));
        assert_eq!(claims.object_id.as_deref(), Some("5f7b…-sp"));
        assert_eq!(claims.app_id.as_deref(), Some("c0ffee"));
        assert_eq!(
            claims.roles,
            Some(vec!["User.Read.All".into(), "User.Invite.All".into()])
        );
        assert_eq!(claims.scopes, None);
    }

    #[test]
    fn reads_a_users_scopes_and_v2_client_id() {
        let claims = TokenClaims::from_jwt(&jwt(&serde_json::json!({
            "azp": "04b07795",
            "scp": "Application.Read.All AppRoleAssignment.ReadWrite.All",
        })));
        assert_eq!(claims.app_id.as_deref(), Some("04b07795"));
        assert_eq!(
            claims.scopes,
            Some(vec![
                "Application.Read.All".into(),
                "AppRoleAssignment.ReadWrite.All".into()
            ])
        );
    }

    #[test]
    fn an_opaque_token_has_no_claims() {
        assert_eq!(TokenClaims::from_jwt("sim.0123"), TokenClaims::default());
        assert_eq!(TokenClaims::from_jwt("a.%%%.b"), TokenClaims::default());
    }
}
