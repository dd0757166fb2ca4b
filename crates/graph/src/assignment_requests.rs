//! Access package assignment requests: the open ones, `adminAdd` and `adminRemove`.

use super::GraphClient;
use super::batch::{SubRequest, SubResponse};
use super::entitlement::EM;
use super::error::GraphError;
use super::invitations::decode_body;
use super::odata::relative_url;
use super::request::Page;
use super::writes::RemoveAssignment;
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
    /// [`GraphError::is_already_done`] recognises the answers for an existing assignment or
    /// open request, and a request whose answer was lost but which a read found made. One a
    /// read did not find is sent again: should it have landed after all, Graph refuses the
    /// repeat as an open request (see `crate::writes`).
    pub async fn add_assignments(
        &self,
        assignments: &[NewAssignment],
    ) -> Vec<(NewAssignment, Result<AssignmentRequest, GraphError>)> {
        let answers = self.write(assignments).await;
        Self::requests_made(assignments, answers)
    }

    /// Asks to remove the assignments with ids `assignment_ids` (`adminRemove`) through
    /// `$batch`, each answer on its own, in the order given. [`GraphError::is_already_removed`]
    /// recognises an assignment already gone, no longer active or being removed, and a
    /// request whose answer was lost but which a read found made.
    pub async fn remove_assignments(
        &self,
        assignment_ids: &[String],
    ) -> Vec<(String, Result<AssignmentRequest, GraphError>)> {
        let removals: Vec<RemoveAssignment> = assignment_ids
            .iter()
            .cloned()
            .map(RemoveAssignment)
            .collect();
        let answers = self.write(&removals).await;
        Self::requests_made(assignment_ids, answers)
    }

    /// Each key with its answer read as the request Graph made.
    fn requests_made<K: Clone>(
        keys: &[K],
        answers: Vec<Result<SubResponse, GraphError>>,
    ) -> Vec<(K, Result<AssignmentRequest, GraphError>)> {
        let path = format!("{EM}/assignmentRequests");
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
