//! Access package assignment requests: the open ones, `adminAdd` and `adminRemove`.

use reqwest::Method;
use serde_json::json;

use super::GraphClient;
use super::batch::SubRequest;
use super::entitlement::EM;
use super::error::GraphError;
use super::invitations::decode_body;
use super::odata::relative_url;
use super::request::Page;
use enroll_core::tenant::AssignmentRequest;

/// States in which a request will still change an assignment.
const OPEN_STATES: [&str; 4] = ["submitted", "pendingApproval", "delivering", "scheduled"];

/// An assignment to ask for with `adminAdd`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct NewAssignment {
    /// The user's object id.
    pub target_id: String,
    /// The access package.
    pub access_package_id: String,
    /// The policy to assign through (an "administrator direct assignments" policy).
    pub assignment_policy_id: String,
}

impl GraphClient {
    /// The assignment requests that are still open, with package and assignment expanded.
    /// One filtered list per open state, sent together in one `$batch`.
    ///
    /// # Errors
    ///
    /// The first list that failed after retries.
    pub async fn open_assignment_requests(&self) -> Result<Vec<AssignmentRequest>, GraphError> {
        let path = format!("{EM}/assignmentRequests");
        let requests = OPEN_STATES
            .iter()
            .map(|state| {
                SubRequest::get(relative_url(
                    &path,
                    &[
                        ("$expand", "accessPackage,assignment"),
                        ("$filter", &format!("state eq '{state}'")),
                    ],
                ))
            })
            .collect();
        let mut open = Vec::new();
        for answer in self.batch(requests).await {
            let page: Page<AssignmentRequest> = decode_body("GET", &path, answer?.body)?;
            open.extend(self.rest_of(page).await?);
        }
        Ok(open)
    }

    /// Asks for `assignments` (`adminAdd`) through `$batch`, each answer on its own, in the
    /// order given.
    ///
    /// A request that failed with an unclear outcome is not sent again: list assignments
    /// and open requests before trying again. [`GraphError::is_already_done`] recognises
    /// the answers for an existing assignment or open request.
    pub async fn add_assignments(
        &self,
        assignments: &[NewAssignment],
    ) -> Vec<(NewAssignment, Result<AssignmentRequest, GraphError>)> {
        let requests = assignments
            .iter()
            .map(|assignment| {
                assignment_request(json!({
                    "requestType": "adminAdd",
                    "assignment": {
                        "targetId": assignment.target_id,
                        "assignmentPolicyId": assignment.assignment_policy_id,
                        "accessPackageId": assignment.access_package_id,
                    }
                }))
            })
            .collect();
        self.submit(assignments, requests).await
    }

    /// Asks to remove the assignments with ids `assignment_ids` (`adminRemove`) through
    /// `$batch`, each answer on its own, in the order given.
    pub async fn remove_assignments(
        &self,
        assignment_ids: &[String],
    ) -> Vec<(String, Result<AssignmentRequest, GraphError>)> {
        let requests = assignment_ids
            .iter()
            .map(|id| {
                assignment_request(json!({
                    "requestType": "adminRemove",
                    "assignment": { "id": id }
                }))
            })
            .collect();
        self.submit(assignment_ids, requests).await
    }

    async fn submit<K: Clone>(
        &self,
        keys: &[K],
        requests: Vec<SubRequest>,
    ) -> Vec<(K, Result<AssignmentRequest, GraphError>)> {
        let path = format!("{EM}/assignmentRequests");
        let answers = self.batch(requests).await;
        keys.iter()
            .cloned()
            .zip(answers)
            .map(|(key, answer)| {
                (
                    key,
                    answer.and_then(|response| decode_body("POST", &path, response.body)),
                )
            })
            .collect()
    }
}

fn assignment_request(body: serde_json::Value) -> SubRequest {
    SubRequest::with_body(Method::POST, format!("{EM}/assignmentRequests"), body)
}
