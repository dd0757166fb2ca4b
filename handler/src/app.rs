//! The custom handler's HTTP app: `GET /` for the host's readiness probe and
//! `POST /{Function}` for invocations. The app only decodes the invocation, calls one step
//! and encodes the answer; everything else lives in [`enroll_steps`].
//!
//! Answers follow the host's rules (reference `functions.md` §1.8): a 2xx carries outputs
//! and logs; a non-2xx makes the host drop both and deliver the message again, so it is
//! used only when another try can help. A message that cannot succeed, or that the last try
//! could not finish, is set aside through the function's `poison` output with a 2xx, so its
//! other outputs are kept; the reason goes to the invocation log and to the handler's log
//! (stderr, which the host records as an error). Which of these a step's result calls for is
//! [`enroll_steps::disposition`]'s decision, not the app's.

use std::convert::Infallible;
use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;
use warp::Filter;
use warp::http::StatusCode;
use warp::reply::{Reply, Response};

use super::protocol::{Invocation, InvocationResult};
use super::{FUNCTIONS, FunctionSpec, Trigger};
use enroll_core::messages::{
    AssignPerson, ChangeMessage, InvitePerson, MapRolesMessage, Reason, RemovePerson, VERSION,
    read_change, read_map_roles, read_reconcile,
};
use enroll_steps::{Aside, Attempt, Disposition, StepError, StepOutput, Storage, World};

/// Largest invocation accepted: the host buffers a whole blob and base64 grows it by a third.
const MAX_INVOCATION_BYTES: u64 = 32 * 1024 * 1024;

/// A queue the handler can put a message on that becomes visible only later. Output bindings
/// cannot delay a message, so with an undo window (`ENROLL_REMOVAL_DELAY`) the Plan function
/// sends its Remove messages itself, and the Remove step reads the roster again only once
/// the window has passed.
pub trait SendLater: Send + Sync {
    /// Puts `text` on `queue`, visible after `delay`.
    fn send_later(
        &self,
        queue: &str,
        text: &str,
        delay: std::time::Duration,
    ) -> impl std::future::Future<Output = Result<(), enroll_steps::StorageError>> + Send;
}

impl SendLater for enroll_store::Store {
    fn send_later(
        &self,
        queue: &str,
        text: &str,
        delay: std::time::Duration,
    ) -> impl std::future::Future<Output = Result<(), enroll_steps::StorageError>> + Send {
        enroll_store::Store::send_later(self, queue, text, delay)
    }
}

/// The app's routes, ready for `warp::serve`.
pub fn app<S: Storage + SendLater + 'static>(
    world: Arc<World<S>>,
) -> impl Filter<Extract = (Response,), Error = Infallible> + Clone {
    let ready = warp::get()
        .and(warp::path::end())
        .map(|| warp::reply::with_status("enroll handler ready", StatusCode::OK).into_response());
    let invoke = warp::post()
        .and(warp::path::param::<String>())
        .and(warp::path::end())
        .and(warp::body::content_length_limit(MAX_INVOCATION_BYTES))
        .and(warp::body::bytes())
        .and(warp::header::optional::<String>(
            "x-azure-functions-invocationid",
        ))
        .and(warp::any().map(move || Arc::clone(&world)))
        .then(
            |name: String,
             body: warp::hyper::body::Bytes,
             invocation_id: Option<String>,
             world: Arc<World<S>>| async move {
                let started = std::time::Instant::now();
                let response = invoke(&world, &name, &body).await;
                log_invocation(
                    &name,
                    invocation_id.as_deref(),
                    &response,
                    started.elapsed(),
                );
                response
            },
        );
    ready
        .or(invoke)
        .unify()
        .recover(|rejection: warp::Rejection| async move {
            let status = if rejection.is_not_found() {
                StatusCode::NOT_FOUND
            } else {
                StatusCode::BAD_REQUEST
            };
            Ok::<_, Infallible>(
                warp::reply::with_status(format!("{rejection:?}"), status).into_response(),
            )
        })
        .unify()
}

/// One event per invocation, at the boundary: the function, the host's invocation id, the
/// status answered and the time taken in milliseconds (an info line on stdout, which the
/// host keeps in its log stream).
fn log_invocation(
    function: &str,
    invocation_id: Option<&str>,
    response: &Response,
    took: std::time::Duration,
) {
    tracing::info!(
        function,
        invocation_id,
        status = response.status().as_u16(),
        ms = (took.as_secs_f64() * 1e3 * 1000.0).round() / 1000.0,
        "invocation"
    );
}

fn json_reply(result: &InvocationResult) -> Response {
    warp::reply::json(result).into_response()
}

/// Asks the host to deliver the message again (it drops outputs and logs, so say why on stderr).
fn retry_later(function: &str, error: &dyn std::fmt::Display) -> Response {
    tracing::warn!(function, %error, "will be tried again");
    warp::reply::with_status(format!("{error}"), StatusCode::INTERNAL_SERVER_ERROR).into_response()
}

async fn invoke<S: Storage + SendLater>(world: &World<S>, name: &str, body: &[u8]) -> Response {
    let Some(spec) = FUNCTIONS.iter().find(|spec| spec.name == name) else {
        return warp::reply::with_status(format!("no function {name}"), StatusCode::NOT_FOUND)
            .into_response();
    };
    let invocation: Invocation = match serde_json::from_slice(body) {
        Ok(invocation) => invocation,
        Err(error) => {
            return warp::reply::with_status(
                format!("the invocation is not the custom-handler JSON: {error}"),
                StatusCode::BAD_REQUEST,
            )
            .into_response();
        }
    };
    match spec.trigger {
        Trigger::Blob {
            container: "manifests",
            ..
        } => manifest_uploaded(spec, &invocation),
        Trigger::Blob { .. } => roster_uploaded(spec, &invocation),
        Trigger::Timer { .. } => scheduled(world, spec).await,
        Trigger::Queue { binding, .. } => queue_step(world, spec, &invocation, binding).await,
    }
}

fn roster_uploaded(spec: &FunctionSpec, invocation: &Invocation) -> Response {
    let mut result = InvocationResult::default();
    // `BlobTrigger` is dropped by the host (keys ending in "trigger"), so the name comes
    // from the `{name}` pattern variable.
    let Some(name) = invocation.metadata_text("name") else {
        tracing::warn!(
            function = spec.name,
            "the invocation has no `name` metadata"
        );
        result.log("no blob name in the invocation metadata; nothing to do");
        return json_reply(&result);
    };
    let Some(message) = enroll_steps::reconcile_for_upload(
        &name,
        invocation.blob_etag(),
        std::time::SystemTime::now(),
    ) else {
        result.log(format!("{name} is not a roster (*.csv); ignored"));
        return json_reply(&result);
    };
    result.log(format!(
        "roster {name} uploaded: reconcile run {}",
        message.run_id
    ));
    result.push_messages("reconcile", &[message]);
    json_reply(&result)
}

/// A manifest or its mapping file was written: map the manifest's roles.
fn manifest_uploaded(spec: &FunctionSpec, invocation: &Invocation) -> Response {
    let mut result = InvocationResult::default();
    let Some(name) = invocation.metadata_text("name") else {
        tracing::warn!(
            function = spec.name,
            "the invocation has no `name` metadata"
        );
        result.log("no blob name in the invocation metadata; nothing to do");
        return json_reply(&result);
    };
    let Some(manifest) = enroll_core::roles::manifest_of(&name) else {
        result.log(format!(
            "{name} is not an app role manifest (*.json) or mapping (*.mapping.json); ignored"
        ));
        return json_reply(&result);
    };
    // A mapping file's own ETag says nothing about the manifest's version.
    let etag = (manifest == name).then(|| invocation.blob_etag()).flatten();
    let message = MapRolesMessage {
        v: VERSION,
        run_id: enroll_steps::new_run_id(std::time::SystemTime::now()),
        manifest: manifest.clone(),
        etag,
        reason: Reason::Upload,
        allow_role_removals: false,
    };
    result.log(format!(
        "{name} uploaded: map-roles run {} for manifest {manifest}",
        message.run_id
    ));
    result.push_messages("mapRoles", &[message]);
    json_reply(&result)
}

async fn scheduled<S: Storage>(world: &World<S>, spec: &FunctionSpec) -> Response {
    let run_id = enroll_steps::new_run_id((world.now)());
    let reconciles = match enroll_steps::reconcile_all(world, &run_id, Reason::Schedule).await {
        Ok(messages) => messages,
        Err(error) => return retry_later(spec.name, &error),
    };
    let manifests = match enroll_steps::map_roles_all(world, &run_id, Reason::Schedule).await {
        Ok(messages) => messages,
        Err(error) => return retry_later(spec.name, &error),
    };
    let mut result = InvocationResult::default();
    result.log(format!(
        "nightly run {run_id}: {} rosters to reconcile, {} app role manifests to map",
        reconciles.len(),
        manifests.len()
    ));
    result.push_messages("reconcile", &reconciles);
    result.push_messages("mapRoles", &manifests);
    json_reply(&result)
}

/// With an undo window, sends Plan's Remove messages to their queue, invisible until the
/// window has passed, instead of through the output binding. A failure to send asks for the
/// whole message again (planning again is harmless: the steps are level-triggered).
async fn delay_removals<S: Storage + SendLater>(
    world: &World<S>,
    planned: Result<StepOutput, StepError>,
) -> Result<StepOutput, StepError> {
    let delay = world.config.removal_delay;
    let mut output = planned?;
    if delay.is_zero() || output.remove.is_empty() {
        return Ok(output);
    }
    for message in &output.remove {
        let text = serde_json::to_string(message).map_err(|error| {
            StepError::Storage(enroll_steps::StorageError {
                message: format!("a remove message cannot be written: {error}"),
                retryable: false,
            })
        })?;
        world
            .storage
            .send_later(super::queues::REMOVE, &text, delay)
            .await?;
    }
    output.logs.push(format!(
        "{} remove message(s) wait {}s (the undo window) before the Remove step runs",
        output.remove.len(),
        delay.as_secs()
    ));
    output.remove.clear();
    Ok(output)
}

/// Puts a step's follow-up messages and logs into the answer.
fn add_output(result: &mut InvocationResult, output: &StepOutput) {
    result.push_messages("invite", &output.invite);
    result.push_messages("assign", &output.assign);
    result.push_messages("remove", &output.remove);
    for line in &output.logs {
        result.log(line.clone());
    }
}

async fn queue_step<S: Storage + SendLater>(
    world: &World<S>,
    spec: &FunctionSpec,
    invocation: &Invocation,
    binding: &str,
) -> Response {
    let text = match invocation.text(binding) {
        Ok(text) => text,
        Err(error) => {
            tracing::error!(function = spec.name, %error, "set aside: the message cannot be read");
            let mut result = InvocationResult::default();
            result.log(format!("set aside: {error}"));
            return json_reply(&result);
        }
    };
    let attempt = Attempt::of(
        invocation.dequeue_count().unwrap_or(1),
        world.config.max_dequeue_count,
    );
    // The step's result, and the message it ran on when its people can be set aside alone.
    let (outcome, people): (_, Option<Box<dyn PeopleAside>>) = match spec.name {
        "Plan" => match read_reconcile(&text) {
            Ok(message) => {
                let planned = enroll_steps::plan_roster(world, &message)
                    .await
                    .map(|o| o.output);
                (delay_removals(world, planned).await, None)
            }
            Err(error) => (Err(StepError::from(error)), None),
        },
        "Invite" => match read_change::<InvitePerson>(&text, "invite") {
            Ok(message) => (
                enroll_steps::invite(world, &message, attempt).await,
                Some(Box::new(message)),
            ),
            Err(error) => (Err(StepError::from(error)), None),
        },
        "Assign" => match read_change::<AssignPerson>(&text, "assign") {
            Ok(message) => (
                enroll_steps::assign(world, &message, attempt).await,
                Some(Box::new(message)),
            ),
            Err(error) => (Err(StepError::from(error)), None),
        },
        "MapRoles" => match read_map_roles(&text) {
            Ok(message) => (
                enroll_steps::map_roles(world, &message, attempt)
                    .await
                    .map(|o| o.output),
                None,
            ),
            Err(error) => (Err(StepError::from(error)), None),
        },
        "Remove" => match read_change::<RemovePerson>(&text, "remove") {
            Ok(message) => (
                enroll_steps::remove(world, &message, attempt).await,
                Some(Box::new(message)),
            ),
            Err(error) => (Err(StepError::from(error)), None),
        },
        other => {
            return warp::reply::with_status(
                format!("{other} is not a queue step"),
                StatusCode::NOT_FOUND,
            )
            .into_response();
        }
    };
    let mut result = InvocationResult::default();
    match (enroll_steps::disposition(outcome.as_ref(), attempt), people) {
        (Disposition::Done, _) => {}
        (Disposition::RetryLater { reason }, _) => return retry_later(spec.name, &reason),
        (
            Disposition::SetAside {
                aside: Aside::People(emails),
                ..
            },
            Some(message),
        ) => {
            message.set_aside(&emails, &mut result);
            result.log(format!(
                "{} people set aside in the poison queue",
                emails.len()
            ));
        }
        // The whole message (Plan and MapRoles give up on no one alone).
        (Disposition::SetAside { reason, .. }, _) => {
            tracing::error!(
                function = spec.name,
                attempt = attempt.number,
                error = %reason,
                "set aside in the poison queue"
            );
            result.log(format!(
                "set aside in the poison queue after try {}: {reason}",
                attempt.number
            ));
            result
                .outputs
                .insert("poison".into(), Value::Array(vec![Value::String(text)]));
            return json_reply(&result);
        }
    }
    if let Ok(output) = &outcome {
        add_output(&mut result, output);
    }
    json_reply(&result)
}

/// A change message whose people can be set aside one by one.
trait PeopleAside {
    /// Puts the message, with only the people with these addresses, into the poison output.
    fn set_aside(&self, emails: &[String], result: &mut InvocationResult);
}

impl<P: PersonEmail + Clone + Serialize> PeopleAside for ChangeMessage<P> {
    fn set_aside(&self, emails: &[String], result: &mut InvocationResult) {
        let aside = ChangeMessage {
            context: self.context.clone(),
            people: self
                .people
                .iter()
                .filter(|p| emails.iter().any(|email| email == p.email()))
                .cloned()
                .collect(),
        };
        result.push_messages("poison", &[aside]);
    }
}

/// The address of a person in a change message.
pub trait PersonEmail {
    /// The address.
    fn email(&self) -> &str;
}

impl PersonEmail for InvitePerson {
    fn email(&self) -> &str {
        &self.email
    }
}

impl PersonEmail for AssignPerson {
    fn email(&self) -> &str {
        &self.email
    }
}

impl PersonEmail for RemovePerson {
    fn email(&self) -> &str {
        &self.email
    }
}
