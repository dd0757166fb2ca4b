//! Access package assignment requests: the open ones, the unfinished ones, `adminAdd`,
//! `adminRemove` and `reprocess`.

use std::time::SystemTime;

use reqwest::Method;
use serde::Deserialize;

use super::GraphClient;
use super::batch::{SubRequest, SubResponse};
use super::entitlement::EM;
use super::error::GraphError;
use super::invitations::decode_body;
use super::odata::{encode_path_segment, quote, relative_url};
use super::writes::RemoveAssignment;
use enroll_core::tenant::AssignmentRequest;

/// States in which a request will still change an assignment.
const OPEN_STATES: [&str; 4] = ["submitted", "pendingApproval", "delivering", "scheduled"];

/// States of a request that did not deliver, or has not yet: what the reprocess step looks
/// at (`pendingApproval` and `scheduled` wait on purpose and are left out).
const UNFINISHED_STATES: [&str; 4] = [
    "deliveryFailed",
    "partiallyDelivered",
    "delivering",
    "submitted",
];

/// A package's requests as a plan needs them, read once ([`GraphClient::package_requests`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PackageRequests {
    /// Those of them still open (`submitted`, `delivering`), with package, assignment and
    /// requestor (as [`GraphClient::open_assignment_requests`]).
    pub open: Vec<AssignmentRequest>,
    /// Those that did not deliver, or not yet (as
    /// [`GraphClient::unfinished_assignment_requests`]).
    pub unfinished: Vec<UnfinishedRequest>,
}

/// An assignment request that has not delivered, or not yet, with when it was made: what
/// the reprocess step needs to tell a stuck or failed request from one under way.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UnfinishedRequest {
    /// The request's id (what `assignmentRequests/{id}/reprocess` takes).
    pub id: String,
    /// `adminAdd`, `adminRemove`, ...
    pub request_type: Option<String>,
    /// `deliveryFailed`, `partiallyDelivered`, `delivering` or `submitted`.
    pub state: String,
    /// When it was made (`createdDateTime`), if Graph said.
    pub created: Option<SystemTime>,
    /// When it ended (`completedDateTime`), if it did.
    pub completed: Option<SystemTime>,
    /// The assignment it adds or removes (`$expand=assignment`), if Graph named one.
    pub assignment_id: Option<String>,
    /// That assignment's state.
    pub assignment_state: Option<String>,
}

impl UnfinishedRequest {
    /// Whether the request adds access (`adminAdd`, `userAdd`, `systemAdd`).
    pub fn is_add(&self) -> bool {
        self.request_type
            .as_deref()
            .is_some_and(|kind| kind.to_ascii_lowercase().ends_with("add"))
    }
}

/// An assignment request as Graph sends it, for [`UnfinishedRequest`].
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawRequest {
    id: String,
    #[serde(default)]
    request_type: Option<String>,
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    created_date_time: Option<String>,
    #[serde(default)]
    completed_date_time: Option<String>,
    #[serde(default)]
    assignment: Option<RawAssignment>,
}

impl RawRequest {
    fn into_unfinished(self) -> UnfinishedRequest {
        let assignment = self.assignment.unwrap_or(RawAssignment {
            id: None,
            state: None,
        });
        UnfinishedRequest {
            id: self.id,
            request_type: self.request_type,
            state: self.state.unwrap_or_default(),
            created: graph_time(self.created_date_time.as_deref()),
            completed: graph_time(self.completed_date_time.as_deref()),
            assignment_id: assignment.id,
            assignment_state: assignment.state,
        }
    }
}

#[derive(Deserialize)]
struct RawAssignment {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    state: Option<String>,
}

/// A Graph date-time (`2021-02-19T17:55:08.3369542Z`, RFC 3339), or `None` if unreadable.
fn graph_time(value: Option<&str>) -> Option<SystemTime> {
    let at =
        time::OffsetDateTime::parse(value?, &time::format_description::well_known::Rfc3339).ok()?;
    Some(SystemTime::from(at))
}

/// The filter for one package's requests in one state, the form Graph documents for
/// listing assignment requests.
fn package_and_state(access_package_id: &str, state: &str) -> String {
    format!(
        "accessPackage/id eq {} and state eq '{state}'",
        quote(access_package_id)
    )
}

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
    /// The assignment requests for the access package `access_package_id` that are still
    /// open, with package, assignment and requestor (for an admin's request, the person it
    /// is for: [`AssignmentRequest::target_object_id`]) expanded: one filtered list per open state, sent
    /// together in one `$batch`. Filtered by package on Graph's side, so that what a step
    /// reads follows its package, not every open request of the tenant.
    ///
    /// # Errors
    ///
    /// The first list that failed after retries.
    pub async fn open_assignment_requests(
        &self,
        access_package_id: &str,
    ) -> Result<Vec<AssignmentRequest>, GraphError> {
        self.requests_in_states(
            access_package_id,
            &OPEN_STATES,
            "accessPackage,assignment,requestor",
        )
        .await
    }

    /// The requests for the access package `access_package_id` that ended `deliveryFailed`
    /// or `partiallyDelivered`, or are still `delivering` or `submitted`, with their
    /// assignment: one filtered list per state, together in one `$batch`.
    ///
    /// # Errors
    ///
    /// The first list that failed after retries.
    pub async fn unfinished_assignment_requests(
        &self,
        access_package_id: &str,
    ) -> Result<Vec<UnfinishedRequest>, GraphError> {
        let raw: Vec<RawRequest> = self
            .requests_in_states(access_package_id, &UNFINISHED_STATES, "assignment")
            .await?;
        Ok(raw.into_iter().map(RawRequest::into_unfinished).collect())
    }

    /// The requests of the access package `access_package_id` a plan needs, each state read
    /// once (one filtered list per state, together in one `$batch`): the unfinished ones for
    /// reprocessing, and of those the open ones (`submitted`, `delivering`) for the plan.
    ///
    /// Those are the states enroll's own requests pass through or end in. `pendingApproval`
    /// and `scheduled` (requests through an approval or with a later start, which enroll's
    /// admin direct assignments never are) are not read: a roster person with such a request
    /// is planned to be assigned, and Graph's "existing open request" answer to that
    /// `adminAdd` is taken as already done. That costs four lists per package where
    /// [`GraphClient::open_assignment_requests`] and
    /// [`GraphClient::unfinished_assignment_requests`] together cost eight.
    ///
    /// # Errors
    ///
    /// The first list that failed after retries, or a request Graph sent in a shape neither
    /// reading takes.
    pub async fn package_requests(
        &self,
        access_package_id: &str,
    ) -> Result<PackageRequests, GraphError> {
        let path = format!("{EM}/assignmentRequests");
        let raw: Vec<serde_json::Value> = self
            .requests_in_states(
                access_package_id,
                &UNFINISHED_STATES,
                "accessPackage,assignment,requestor",
            )
            .await?;
        let mut requests = PackageRequests::default();
        for value in raw {
            let decode = |source| GraphError::Decode {
                method: "GET".into(),
                path: path.clone(),
                source: std::sync::Arc::new(source),
            };
            let request = AssignmentRequest::deserialize(&value).map_err(decode)?;
            let raw = RawRequest::deserialize(&value).map_err(decode)?;
            requests.unfinished.push(raw.into_unfinished());
            if request.is_open() {
                requests.open.push(request);
            }
        }
        Ok(requests)
    }

    /// The requests of the access package `access_package_id` in each of `states`, with
    /// `expand`: one filtered list per state (the form Graph documents), together in one
    /// `$batch`.
    async fn requests_in_states<T: serde::de::DeserializeOwned>(
        &self,
        access_package_id: &str,
        states: &[&str],
        expand: &str,
    ) -> Result<Vec<T>, GraphError> {
        let path = format!("{EM}/assignmentRequests");
        let urls = states.iter().map(|state| {
            relative_url(
                &path,
                &[
                    ("$expand", expand),
                    ("$filter", &package_and_state(access_package_id, state)),
                ],
            )
        });
        self.list_each(&path, urls).await
    }

    /// Asks Graph to deliver again the requests with ids `request_ids` (v1.0
    /// `assignmentRequests/{id}/reprocess`, for requests that ended `deliveryFailed` or
    /// `partiallyDelivered` within the last 14 days), each answer on its own, in order.
    pub async fn reprocess_assignment_requests(
        &self,
        request_ids: &[String],
    ) -> Vec<(String, Result<(), GraphError>)> {
        self.reprocess("assignmentRequests", request_ids).await
    }

    /// Asks Graph to evaluate and enforce again the assignments with ids `assignment_ids`
    /// (v1.0 `assignments/{id}/reprocess`), each answer on its own, in order.
    pub async fn reprocess_assignments(
        &self,
        assignment_ids: &[String],
    ) -> Vec<(String, Result<(), GraphError>)> {
        self.reprocess("assignments", assignment_ids).await
    }

    /// `POST {EM}/{collection}/{id}/reprocess` for each id, through `$batch`.
    async fn reprocess(
        &self,
        collection: &str,
        ids: &[String],
    ) -> Vec<(String, Result<(), GraphError>)> {
        let requests = ids
            .iter()
            .map(|id| SubRequest {
                method: Method::POST,
                url: format!("{EM}/{collection}/{}/reprocess", encode_path_segment(id)),
                body: None,
            })
            .collect();
        let answers = self.batch(requests).await;
        ids.iter()
            .cloned()
            .zip(answers.into_iter().map(|answer| answer.map(|_| ())))
            .collect()
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
