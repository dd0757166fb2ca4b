//! Requests that did not deliver: found when a roster is planned, reprocessed, and recorded.
//!
//! Plan calls [`stuck_requests`] with the roster's access package's unfinished requests
//! (read with its open ones, each state once, while it reads the package's holders), and
//! reads the holders again when anything was reprocessed, so that what it reprocessed
//! counts as under way in the plan:
//!
//! - a request that ended `deliveryFailed` is reprocessed (v1.0
//!   `assignmentRequests/{id}/reprocess`), unless it ended more than 14 days ago (Graph
//!   refuses then), or a newer assignment took its place, or (a removal) its assignment is
//!   gone already;
//! - a request `partiallyDelivered` for longer than [`StepConfig::reprocess_after`] is
//!   reprocessed the same way;
//! - a request still `submitted` or `delivering` after that long has its assignment
//!   reprocessed (`assignments/{id}/reprocess`); without an assignment nothing can be asked
//!   of Graph, and the request is recorded as skipped for a person to look at.
//!
//! Each decision is an audit record (action `reprocess`), listed in the plan's report; a
//! reprocess Graph refused is a failure in the run's failures report too. A reprocess that
//! can pass later (throttled, a fault) is left to the next run, which finds the request
//! again.
//!
//! [`StepConfig::reprocess_after`]: crate::StepConfig::reprocess_after

use std::time::{Duration, SystemTime};

use enroll_core::audit::{Action, AuditRecord, Outcome, rfc3339};
use enroll_core::messages::ReconcileMessage;
use enroll_graph::{Directory, GraphError, UnfinishedRequest};

use super::{StepError, Storage, World};

/// How long after a request ended Graph still reprocesses it (the v1.0 reference page of
/// `accessPackageAssignmentRequest: reprocess`).
const REPROCESS_WINDOW: Duration = Duration::from_secs(14 * 24 * 3600);

/// What to ask of Graph for one request.
enum Ask {
    /// `assignmentRequests/{id}/reprocess`.
    Request,
    /// `assignments/{id}/reprocess`, with the assignment's id.
    Assignment(String),
}

/// Of the package's `unfinished` requests, reprocesses those that failed or are stuck, and
/// writes the audit records (and failures).
///
/// # Errors
/// [`StepError`] when Graph cannot read what a decision needs, or storage cannot take the
/// records; trying the roster's plan again can help then.
pub(crate) async fn stuck_requests<S: Storage, D: Directory>(
    world: &World<S, D>,
    message: &ReconcileMessage,
    roster_version: &str,
    access_package_id: &str,
    unfinished: Vec<UnfinishedRequest>,
) -> Result<Vec<AuditRecord>, StepError> {
    let now = (world.now)();
    let after = world.config.reprocess_after;
    let record = |request: &UnfinishedRequest, outcome: Outcome, detail: String| AuditRecord {
        time: rfc3339(now),
        actor: world.config.actor.clone(),
        run_id: message.run_id.clone(),
        roster: message.roster.clone(),
        roster_version: roster_version.to_owned(),
        access_package_id: Some(access_package_id.to_owned()),
        action: Action::Reprocess,
        email: None,
        user_id: None,
        assignment_id: request.assignment_id.clone(),
        group_id: None,
        app_role_id: None,
        outcome,
        detail: Some(format!("{}: {detail}", describe(request, now))),
        request_id: None,
    };
    let mut records = Vec::new();
    let mut asks: Vec<(UnfinishedRequest, Ask)> = Vec::new();
    for request in unfinished {
        let age = |at: Option<SystemTime>| at.and_then(|at| now.duration_since(at).ok());
        match request.state.as_str() {
            "deliveryFailed"
                if age(request.completed).is_some_and(|age| age > REPROCESS_WINDOW) =>
            {
                records.push(record(
                    &request,
                    Outcome::Skipped,
                    "ended more than 14 days ago, when Graph no longer reprocesses it; cancel it and ask anew".into(),
                ));
            }
            "deliveryFailed" => match superseded(world, access_package_id, &request).await? {
                Some(why) => records.push(record(&request, Outcome::Skipped, why)),
                None => asks.push((request, Ask::Request)),
            },
            "partiallyDelivered" if age(request.created).is_some_and(|age| age >= after) => {
                asks.push((request, Ask::Request));
            }
            "submitted" | "delivering" if age(request.created).is_some_and(|age| age >= after) => {
                match request.assignment_id.clone() {
                    Some(assignment) => asks.push((request, Ask::Assignment(assignment))),
                    None => records.push(record(
                        &request,
                        Outcome::Skipped,
                        "Graph names no assignment to reprocess; a person needs to look".into(),
                    )),
                }
            }
            // Under way, or waiting on purpose.
            _ => {}
        }
    }
    let (by_request, by_assignment): (Vec<_>, Vec<_>) = asks
        .into_iter()
        .partition(|(_, ask)| matches!(ask, Ask::Request));
    let request_ids: Vec<String> = by_request.iter().map(|(r, _)| r.id.clone()).collect();
    let assignment_ids: Vec<String> = by_assignment
        .iter()
        .filter_map(|(_, ask)| match ask {
            Ask::Assignment(id) => Some(id.clone()),
            Ask::Request => None,
        })
        .collect();
    let answers = world
        .graph
        .reprocess_assignment_requests(&request_ids)
        .await
        .into_iter()
        .zip(by_request)
        .chain(
            world
                .graph
                .reprocess_assignments(&assignment_ids)
                .await
                .into_iter()
                .zip(by_assignment),
        );
    for ((_, answer), (request, ask)) in answers {
        let what = match ask {
            Ask::Request => "the request",
            Ask::Assignment(_) => "its assignment",
        };
        records.push(match answer {
            Ok(()) => record(&request, Outcome::Done, format!("reprocessed {what}")),
            Err(error) => refused(&request, what, &error, &record),
        });
    }
    if records.is_empty() {
        return Ok(records);
    }
    world.storage.append_audit(&records).await?;
    let failed: Vec<&AuditRecord> = records
        .iter()
        .filter(|r| r.outcome == Outcome::Failed)
        .collect();
    if !failed.is_empty() {
        let (jsonl, markdown) = enroll_core::report::failure_lines(&failed);
        world
            .storage
            .append_failures(&message.run_id, &message.roster, &jsonl, &markdown)
            .await?;
    }
    for line in &records {
        tracing::info!(outcome = ?line.outcome, detail = line.detail.as_deref(), "reprocess");
    }
    Ok(records)
}

/// The record of a reprocess Graph did not take: the next run tries again when that can
/// help, a person must look otherwise.
fn refused(
    request: &UnfinishedRequest,
    what: &str,
    error: &GraphError,
    record: &impl Fn(&UnfinishedRequest, Outcome, String) -> AuditRecord,
) -> AuditRecord {
    if error.is_retryable() {
        record(
            request,
            Outcome::Retrying,
            format!("reprocessing {what} failed for now; the next run tries again: {error}"),
        )
    } else {
        record(
            request,
            Outcome::Failed,
            format!("Graph refused to reprocess {what}: {error}"),
        )
    }
}

/// Why a request that ended `deliveryFailed` is no longer worth reprocessing, if it is not:
/// an added assignment has a newer active one for the same person, or a removed one is gone.
async fn superseded<S: Storage, D: Directory>(
    world: &World<S, D>,
    access_package_id: &str,
    request: &UnfinishedRequest,
) -> Result<Option<String>, StepError> {
    let Some(assignment_id) = request.assignment_id.as_deref() else {
        return Ok(None);
    };
    let assignment = world.graph.assignment(assignment_id).await?;
    if !request.is_add() {
        return Ok(match assignment {
            Some(assignment) if assignment.is_active() => None,
            _ => Some("its assignment is gone already".into()),
        });
    }
    let Some(holder) = assignment.and_then(|a| a.target?.object_id) else {
        return Ok(None);
    };
    let newer = world
        .graph
        .assignments_of_users(access_package_id, &[holder.as_str()])
        .await?
        .into_iter()
        .find(|active| active.id != assignment_id);
    Ok(newer.map(|newer| format!("a newer assignment ({}) took its place", newer.id)))
}

/// The request in a phrase: its id, kind, state, and since when.
fn describe(request: &UnfinishedRequest, now: SystemTime) -> String {
    let since = match request.state.as_str() {
        "deliveryFailed" => request.completed.or(request.created),
        _ => request.created,
    };
    let since = since
        .map(|at| {
            let hours = now.duration_since(at).unwrap_or_default().as_secs() / 3600;
            format!(" since {} ({hours} h)", rfc3339(at))
        })
        .unwrap_or_default();
    format!(
        "request {} ({}) {}{since}",
        request.id,
        request.request_type.as_deref().unwrap_or("unknown type"),
        request.state
    )
}

/// The plan report's section on reprocessing: one line per decision, nothing when there
/// was none.
pub(crate) fn markdown(records: &[AuditRecord]) -> String {
    if records.is_empty() {
        return String::new();
    }
    let mut text = String::from("\n## Requests that did not deliver\n\n");
    for record in records {
        let outcome = serde_json::to_value(record.outcome).unwrap_or_default();
        text.push_str(&format!(
            "- {}: {}\n",
            outcome.as_str().unwrap_or_default(),
            record
                .detail
                .as_deref()
                .unwrap_or_default()
                .replace('\n', " ")
        ));
    }
    text
}

#[cfg(test)]
mod tests;
