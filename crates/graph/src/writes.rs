//! Writes that must not be made twice (invitations, `adminAdd`, `adminRemove`, app role
//! assignments), with their unclear answers settled by reading.
//!
//! A 500, 502 or 504, a timeout, a dropped connection after the request went out, or a
//! `$batch` answer without the item leaves it unclear whether Graph made the change: a
//! gateway timeout loses the answer, not the work. Sending the write again could send a
//! second invitation e-mail, so the client first reads whether the change is in place:
//!
//! | write | read |
//! | --- | --- |
//! | invitation | a user with the invited address |
//! | `adminAdd` | an active assignment, or an open add request, of the target to the package |
//! | `adminRemove` | the assignment: gone or no longer active, or an open request to remove it |
//! | app role assignment | the group's app role assignments |
//!
//! A change found is [`GraphError::AlreadyMade`], which the "already done" recognisers
//! accept. A change not found is sent again (within the retry policy), except an
//! invitation: a guest invited a moment ago may not be visible to lookups yet, so the
//! unclear error goes back to the caller, whose next try looks the address up first. When
//! the read fails too, the caller gets the unclear error.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::time::Instant;

use reqwest::Method;
use serde_json::json;

use super::batch::{SubRequest, SubResponse};
use super::entitlement::EM;
use super::error::GraphError;
use super::odata::encode_path_segment;
use super::request::is_fault_status;
use super::{Counters, GraphClient, NewAssignment, NewGroupAppRoleAssignment, NewInvitation};
use enroll_core::tenant::AssignmentRequest;

/// A write that must not be made twice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Write {
    /// `POST /invitations`.
    Invitation,
    /// An `adminAdd` assignment request.
    AdminAdd,
    /// An `adminRemove` assignment request.
    AdminRemove,
    /// `POST /groups/{id}/appRoleAssignments`.
    AppRoleAssignment,
}

impl std::fmt::Display for Write {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Write::Invitation => "invitation",
            Write::AdminAdd => "adminAdd",
            Write::AdminRemove => "adminRemove",
            Write::AppRoleAssignment => "app role assignment",
        })
    }
}

/// Whether `error`, the answer to a write, leaves it unclear whether Graph made the change.
pub(crate) fn is_unclear(error: &GraphError) -> bool {
    match error {
        // Refused before it was sent: nothing was made.
        GraphError::Transport { connect, .. } => !connect,
        GraphError::Status(status) => is_fault_status(status.status),
        // The `$batch` answer was cut short or lacked the item.
        GraphError::Decode { .. } | GraphError::MissingBatchResponse { .. } => true,
        GraphError::Auth { .. } | GraphError::Config(_) | GraphError::AlreadyMade { .. } => false,
    }
}

/// The removal of an assignment by id (`adminRemove`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RemoveAssignment(pub(crate) String);

/// A write whose unclear answers can be settled by reading what Graph holds.
pub(crate) trait Settle: Clone + Send + Sync + 'static {
    /// Which write this is.
    const WRITE: Write;

    /// The write as a `$batch` item.
    fn request(&self) -> SubRequest;

    /// For each of `writes`, what shows the change in place now, if anything does.
    fn made(
        client: &GraphClient,
        writes: &[Self],
    ) -> impl Future<Output = Result<Vec<Option<String>>, GraphError>> + Send;
}

impl GraphClient {
    /// Sends `writes` through `$batch` and settles each unclear answer by reading: answers
    /// in the order of `writes`.
    pub(crate) async fn write<W: Settle>(
        &self,
        writes: &[W],
    ) -> Vec<Result<SubResponse, GraphError>> {
        let policy = self.inner.retry;
        let started = Instant::now();
        let mut results: Vec<Option<Result<SubResponse, GraphError>>> = vec![None; writes.len()];
        let mut pending: Vec<usize> = (0..writes.len()).collect();
        let mut round: u32 = 0;
        while !pending.is_empty() {
            round += 1;
            let answers = self
                .batch(
                    pending
                        .iter()
                        .map(|&index| writes[index].request())
                        .collect(),
                )
                .await;
            let mut unclear = Vec::new();
            for (index, answer) in pending.iter().copied().zip(answers) {
                match answer {
                    Err(error) if is_unclear(&error) => unclear.push((index, error)),
                    answer => results[index] = Some(answer),
                }
            }
            pending = Vec::new();
            if unclear.is_empty() {
                break;
            }
            let asked: Vec<W> = unclear
                .iter()
                .map(|(index, _)| writes[*index].clone())
                .collect();
            let found = match W::made(self, &asked).await {
                Ok(found) if found.len() == asked.len() => found,
                // The read failed: what happened stays unclear, and the caller tries later.
                Ok(_) | Err(_) => vec![None; asked.len()],
            };
            // Only a write whose change a read could not find is sent again, and only one
            // whose repeat Graph refuses as "already done" should the first have landed
            // after all (not an invitation: that could e-mail the guest twice).
            let delay = (W::WRITE != Write::Invitation)
                .then(|| policy.next_delay(round, started.elapsed(), None))
                .flatten();
            for ((index, lost), found) in unclear.into_iter().zip(found) {
                match found {
                    Some(found) => {
                        tracing::debug!(write = %W::WRITE, %lost, %found, "a lost answer's change was found made");
                        results[index] = Some(Err(GraphError::AlreadyMade {
                            write: W::WRITE,
                            lost: Box::new(lost),
                            found,
                        }));
                    }
                    None if delay.is_some() => pending.push(index),
                    None => results[index] = Some(Err(lost)),
                }
            }
            if let (Some(delay), false) = (delay, pending.is_empty()) {
                Counters::add(
                    &self.inner.counters.retries,
                    u64::try_from(pending.len()).unwrap_or(u64::MAX),
                );
                tokio::time::sleep(delay).await;
            }
        }
        results
            .into_iter()
            .map(|result| {
                // Every write was answered above; an empty slot would be a bug, reported as
                // an answer missing from `$batch` so the caller settles it next time.
                result.unwrap_or_else(|| {
                    Err(GraphError::MissingBatchResponse {
                        id: String::new(),
                        method: "POST".into(),
                        path: String::new(),
                    })
                })
            })
            .collect()
    }
}

impl Settle for NewInvitation {
    const WRITE: Write = Write::Invitation;

    fn request(&self) -> SubRequest {
        SubRequest::with_body(
            Method::POST,
            "/invitations".into(),
            serde_json::to_value(self).unwrap_or_default(),
        )
    }

    async fn made(
        client: &GraphClient,
        writes: &[Self],
    ) -> Result<Vec<Option<String>>, GraphError> {
        let emails: Vec<&str> = writes
            .iter()
            .map(|invitation| invitation.invited_user_email_address.as_str())
            .collect();
        let users = client.users_by_email(&emails).await?;
        Ok(emails
            .iter()
            .map(|email| {
                let found = users.get(&enroll_core::roster::email_key(email))?;
                let ids: Vec<&str> = found.iter().map(|user| user.id.as_str()).collect();
                (!ids.is_empty())
                    .then(|| format!("user {} has the invited address", ids.join(", ")))
            })
            .collect())
    }
}

impl Settle for NewAssignment {
    const WRITE: Write = Write::AdminAdd;

    fn request(&self) -> SubRequest {
        assignment_request(json!({
            "requestType": "adminAdd",
            "assignment": {
                "targetId": self.target_id,
                "assignmentPolicyId": self.assignment_policy_id,
                "accessPackageId": self.access_package_id,
            }
        }))
    }

    async fn made(
        client: &GraphClient,
        writes: &[Self],
    ) -> Result<Vec<Option<String>>, GraphError> {
        let mut targets: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
        for add in writes {
            targets
                .entry(add.access_package_id.as_str())
                .or_default()
                .insert(add.target_id.as_str());
        }
        // (package, target) → what shows the assignment made.
        let mut shown: BTreeMap<(String, String), String> = BTreeMap::new();
        for (package, users) in targets {
            let users: Vec<&str> = users.into_iter().collect();
            for assignment in client.assignments_of_users(package, &users).await? {
                if let Some(target) = assignment.target.as_ref().and_then(|t| t.object_id.clone()) {
                    let state = assignment.state.clone().unwrap_or_default();
                    shown.insert(
                        (package.to_owned(), target),
                        format!("assignment {} ({state})", assignment.id),
                    );
                }
            }
            for request in client.open_assignment_requests(package).await? {
                if let (true, Some(target)) = (request.is_add(), request.target_object_id()) {
                    shown
                        .entry((package.to_owned(), target.to_owned()))
                        .or_insert_with(|| format!("open request {}", request.id));
                }
            }
        }
        Ok(writes
            .iter()
            .map(|add| {
                shown
                    .get(&(add.access_package_id.clone(), add.target_id.clone()))
                    .cloned()
            })
            .collect())
    }
}

impl Settle for RemoveAssignment {
    const WRITE: Write = Write::AdminRemove;

    fn request(&self) -> SubRequest {
        assignment_request(json!({
            "requestType": "adminRemove",
            "assignment": { "id": self.0 }
        }))
    }

    async fn made(
        client: &GraphClient,
        writes: &[Self],
    ) -> Result<Vec<Option<String>>, GraphError> {
        // The assignment names its package, whose open requests then show a removal under
        // way; requests are never listed tenant-wide.
        let mut open: BTreeMap<String, Vec<AssignmentRequest>> = BTreeMap::new();
        let mut found = Vec::with_capacity(writes.len());
        for RemoveAssignment(id) in writes {
            let Some(assignment) = client.assignment(id).await? else {
                found.push(Some("the assignment is gone".to_owned()));
                continue;
            };
            if !assignment.is_active() {
                found.push(Some(format!(
                    "the assignment is {}",
                    assignment.state.as_deref().unwrap_or("not active")
                )));
                continue;
            }
            let Some(package) = assignment.access_package.as_ref().map(|p| p.id.clone()) else {
                found.push(None);
                continue;
            };
            if !open.contains_key(&package) {
                let requests = client.open_assignment_requests(&package).await?;
                open.insert(package.clone(), requests);
            }
            let removing = open.get(&package).into_iter().flatten().find(|request| {
                !request.is_add()
                    && request
                        .assignment
                        .as_ref()
                        .and_then(|assignment| assignment.id.as_deref())
                        == Some(id.as_str())
            });
            found.push(removing.map(|request| format!("open request {} removes it", request.id)));
        }
        Ok(found)
    }
}

impl Settle for NewGroupAppRoleAssignment {
    const WRITE: Write = Write::AppRoleAssignment;

    fn request(&self) -> SubRequest {
        SubRequest::with_body(
            Method::POST,
            format!(
                "/groups/{}/appRoleAssignments",
                encode_path_segment(&self.principal_id)
            ),
            serde_json::to_value(self).unwrap_or_default(),
        )
    }

    async fn made(
        client: &GraphClient,
        writes: &[Self],
    ) -> Result<Vec<Option<String>>, GraphError> {
        let groups: BTreeSet<&str> = writes.iter().map(|w| w.principal_id.as_str()).collect();
        let mut held = Vec::new();
        for group in groups {
            held.extend(client.app_role_assignments_of_group(group).await?);
        }
        Ok(writes
            .iter()
            .map(|write| {
                held.iter()
                    .find(|assignment| {
                        assignment
                            .principal_id
                            .eq_ignore_ascii_case(&write.principal_id)
                            && assignment
                                .resource_id
                                .eq_ignore_ascii_case(&write.resource_id)
                            && assignment
                                .app_role_id
                                .eq_ignore_ascii_case(&write.app_role_id)
                    })
                    .map(|assignment| format!("the group holds it as assignment {}", assignment.id))
            })
            .collect())
    }
}

/// An assignment request as a `$batch` item.
fn assignment_request(body: serde_json::Value) -> SubRequest {
    SubRequest::with_body(Method::POST, format!("{EM}/assignmentRequests"), body)
}
