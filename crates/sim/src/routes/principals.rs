//! The app role assignments granted *to* a service principal
//! (`GET /servicePrincipals/{id}/appRoleAssignments`): for a client such as enroll's own
//! identity, the application permissions it holds on other APIs, Microsoft Graph's among
//! them. Granting goes through the resource side, `POST
//! /servicePrincipals/{resource}/appRoleAssignedTo`, which the parent module serves.

use super::{Family, Req, Resp, Scope, State, list_app_role_assignments};

/// Lists the app roles the service principal `sp_id` holds, as Graph does: 404 for an
/// unknown principal, paging and `$select` like every directory collection.
pub(super) fn list_principal_assignments(
    state: &State,
    req: &Req,
    sp_id: &str,
) -> Result<Resp, Resp> {
    let sp = state
        .tenant
        .service_principals
        .iter()
        .find(|s| s.id.eq_ignore_ascii_case(sp_id))
        .ok_or_else(|| Family::Directory.not_found(sp_id))?;
    let context = format!("servicePrincipals('{}')/appRoleAssignments", sp.id);
    list_app_role_assignments(state, req, Scope::Principal(sp_id), &context)
}
