//! Groups and their app role assignments.

use reqwest::Method;
use serde::Serialize;

use super::GraphClient;
use super::batch::SubRequest;
use super::error::GraphError;
use super::invitations::decode_body;
use super::odata::{self, MAX_IN_VALUES, encode_path_segment, relative_url};
use enroll_core::tenant::{AppRoleAssignment, Group};

/// An app role to grant a group (graph.md §4.4), or a service principal (an application
/// permission, when the resource is Microsoft Graph's service principal).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NewGroupAppRoleAssignment {
    /// The group or service principal (the assignment's principal).
    pub principal_id: String,
    /// The resource service principal.
    pub resource_id: String,
    /// The app role.
    pub app_role_id: String,
}

impl GraphClient {
    /// The groups whose display name is one of `names` (15 names per filter, filters
    /// together in `$batch`). Display names are not unique: a name may match several groups.
    ///
    /// # Errors
    ///
    /// The first lookup that failed after retries.
    pub async fn groups_by_display_name<S: AsRef<str>>(
        &self,
        names: &[S],
    ) -> Result<Vec<Group>, GraphError> {
        self.groups_where("displayName", names).await
    }

    /// The groups whose object id is one of `ids` (15 per filter, in `$batch`); ids that
    /// name no group are simply not in the answer.
    ///
    /// # Errors
    ///
    /// The first lookup that failed after retries.
    pub async fn groups_by_id<S: AsRef<str>>(&self, ids: &[S]) -> Result<Vec<Group>, GraphError> {
        self.groups_where("id", ids).await
    }

    async fn groups_where<S: AsRef<str>>(
        &self,
        property: &str,
        values: &[S],
    ) -> Result<Vec<Group>, GraphError> {
        let values: Vec<&str> = values.iter().map(AsRef::as_ref).collect();
        let urls = values.chunks(MAX_IN_VALUES).map(|chunk| {
            relative_url(
                "/groups",
                &[
                    ("$filter", &odata::in_filter(property, chunk)),
                    ("$select", "id,displayName,securityEnabled"),
                ],
            )
        });
        self.list_each("/groups", urls).await
    }

    /// The app roles the group `group_id` holds.
    ///
    /// # Errors
    ///
    /// The first page that failed after retries.
    pub async fn app_role_assignments_of_group(
        &self,
        group_id: &str,
    ) -> Result<Vec<AppRoleAssignment>, GraphError> {
        self.get_all(&format!(
            "/groups/{}/appRoleAssignments",
            encode_path_segment(group_id)
        ))
        .await
    }

    /// Grants app roles to groups through `$batch`, each answer on its own, in the order
    /// given. [`GraphError::is_existing_app_role_assignment`] recognises a grant that exists,
    /// and one whose answer was lost but which a read of the group found made.
    pub async fn add_group_app_role_assignments(
        &self,
        assignments: &[NewGroupAppRoleAssignment],
    ) -> Vec<(
        NewGroupAppRoleAssignment,
        Result<AppRoleAssignment, GraphError>,
    )> {
        let answers = self.write(assignments).await;
        assignments
            .iter()
            .cloned()
            .zip(answers)
            .map(|(assignment, answer)| {
                let result = answer.and_then(|response| {
                    decode_body("POST", "/groups/{id}/appRoleAssignments", response.body)
                });
                (assignment, result)
            })
            .collect()
    }

    /// Posts app role assignments through `$batch` to the URL `url_of` gives each (the
    /// principal's or the resource's side), each answer on its own, in the order given;
    /// `path` names the request in errors.
    pub(crate) async fn post_app_role_assignments(
        &self,
        assignments: &[NewGroupAppRoleAssignment],
        path: &str,
        url_of: impl Fn(&NewGroupAppRoleAssignment) -> String,
    ) -> Vec<(
        NewGroupAppRoleAssignment,
        Result<AppRoleAssignment, GraphError>,
    )> {
        let requests = assignments
            .iter()
            .map(|assignment| {
                SubRequest::with_body(
                    Method::POST,
                    url_of(assignment),
                    serde_json::to_value(assignment).unwrap_or_default(),
                )
            })
            .collect();
        let answers = self.batch(requests).await;
        assignments
            .iter()
            .cloned()
            .zip(answers)
            .map(|(assignment, answer)| {
                let result = answer.and_then(|response| decode_body("POST", path, response.body));
                (assignment, result)
            })
            .collect()
    }

    /// Removes app role assignments, given as `(group id, assignment id)`, through `$batch`,
    /// each answer on its own, in the order given. [`GraphError::is_already_removed`]
    /// recognises one that was gone already.
    pub async fn remove_group_app_role_assignments(
        &self,
        assignments: &[(String, String)],
    ) -> Vec<((String, String), Result<(), GraphError>)> {
        let requests = assignments
            .iter()
            .map(|(group_id, assignment_id)| {
                SubRequest::delete(format!(
                    "/groups/{}/appRoleAssignments/{}",
                    encode_path_segment(group_id),
                    encode_path_segment(assignment_id)
                ))
            })
            .collect();
        let answers = self.batch(requests).await;
        assignments
            .iter()
            .cloned()
            .zip(answers)
            .map(|(key, answer)| (key, answer.map(|_| ())))
            .collect()
    }
}
