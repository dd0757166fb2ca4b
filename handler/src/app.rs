//! The custom handler's HTTP app: `GET /` for the host's readiness probe and
//! `POST /{Function}` for invocations. The app only decodes the invocation, calls one step
//! and encodes the answer; everything else lives in [`enroll_steps`].
//!
//! Answers follow the host's rules (reference `functions.md` §1.8): a 2xx carries outputs
//! and logs; a non-2xx makes the host drop both and deliver the message again, so it is
//! used only when another try can help. A message that cannot succeed, or that the last try
//! could not finish, is set aside through the function's `poison` output with a 2xx, so its
//! other outputs are kept; the reason goes to the invocation log and to the handler's log
//! (stderr, which the host records as an error), and everyone in it gets a `failed` record.
//! Which of these a step's result calls for is [`enroll_steps::disposition`]'s decision, not
//! the app's; that holds for an invocation the handler cannot use, too.
//!
//! Every other answer is a problem document (RFC 9457, `application/problem+json`) with the
//! status that says what went wrong: 404 for an unknown function, 405, 411, 413 for an
//! invocation over its size limit, 415, 400. Nothing of the invocation is echoed beyond a
//! short excerpt, however large it is.

use std::convert::Infallible;
use std::sync::Arc;

use futures_util::{Stream, StreamExt as _};
use serde_json::{Value, json};
use warp::http::StatusCode;
use warp::reply::{Reply, Response};
use warp::{Buf, Filter};

use super::protocol::{Invocation, InvocationResult};
use super::skim::Skim;
use super::{FUNCTIONS, FunctionSpec, Trigger};
use enroll_core::audit::Action;
use enroll_core::messages::{MapRolesMessage, Reason, ReconcileMessage, VERSION};
use enroll_steps::{Aside, Attempt, Change, Disposition, StepError, StepOutput, Storage, World};

/// Largest blob-triggered invocation taken in: the host sends the whole blob base64-encoded
/// (a third larger), so this admits uploads of about 24 MiB, already past a roster's
/// 16 MiB limit. The body is read through [`Skim`], so the blob is never held.
pub const MAX_BLOB_INVOCATION_BYTES: u64 = 32 * 1024 * 1024;

/// Largest queue or timer invocation: a queue message has at most 64 KiB, which the host's
/// double JSON encoding can grow a few times over.
pub const MAX_INVOCATION_BYTES: u64 = 1024 * 1024;

/// Azure's longest blob name.
const MAX_BLOB_NAME: usize = 1024;

/// The most of a caller's text (an error, a name) an answer or log line repeats.
const MOST_ECHOED: usize = 500;

/// Largest set-aside note that carries the invocation's data along (queue messages are at
/// most 64 KiB).
const MOST_DATA_IN_A_NOTE: usize = 48 * 1024;

/// A storage queue message's largest size.
const MOST_QUEUE_MESSAGE: usize = 64 * 1024;

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
        // The host always says how long the body is: 411 without it.
        .and(warp::body::content_length_limit(u64::MAX))
        .and(warp::header::<u64>("content-length"))
        .and(warp::header::optional::<String>("content-type"))
        .and(warp::header::optional::<String>(
            "x-azure-functions-invocationid",
        ))
        .and(warp::body::stream())
        .and(warp::any().map(move || Arc::clone(&world)))
        .then(
            |name: String,
             length: u64,
             content_type: Option<String>,
             invocation_id: Option<String>,
             body,
             world: Arc<World<S>>| async move {
                let started = std::time::Instant::now();
                let response = match FUNCTIONS.iter().find(|spec| spec.name == name) {
                    None => problem(
                        StatusCode::NOT_FOUND,
                        format!("the handler serves no function {}", clip(&name)),
                    ),
                    Some(spec) => invoke(&world, spec, length, content_type.as_deref(), body).await,
                };
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
        .recover(
            |rejection: warp::Rejection| async move { Ok::<_, Infallible>(rejected(&rejection)) },
        )
        .unify()
}

/// warp's rejections as problem answers with their own status codes.
fn rejected(rejection: &warp::Rejection) -> Response {
    use warp::reject::{
        InvalidHeader, LengthRequired, MethodNotAllowed, MissingHeader, PayloadTooLarge,
        UnsupportedMediaType,
    };
    let (status, detail) = if rejection.is_not_found() {
        (StatusCode::NOT_FOUND, "no such route".to_owned())
    } else if let Some(cause) = rejection.find::<LengthRequired>() {
        (StatusCode::LENGTH_REQUIRED, cause.to_string())
    } else if let Some(cause) = rejection.find::<PayloadTooLarge>() {
        (StatusCode::PAYLOAD_TOO_LARGE, cause.to_string())
    } else if let Some(cause) = rejection.find::<UnsupportedMediaType>() {
        (StatusCode::UNSUPPORTED_MEDIA_TYPE, cause.to_string())
    } else if let Some(cause) = rejection.find::<InvalidHeader>() {
        (StatusCode::BAD_REQUEST, cause.to_string())
    } else if let Some(cause) = rejection.find::<MissingHeader>() {
        (StatusCode::BAD_REQUEST, cause.to_string())
    } else if let Some(cause) = rejection.find::<MethodNotAllowed>() {
        (
            StatusCode::METHOD_NOT_ALLOWED,
            format!("{cause}: GET / is the readiness probe, POST /{{Function}} an invocation"),
        )
    } else {
        (
            StatusCode::BAD_REQUEST,
            "the request could not be read".to_owned(),
        )
    };
    problem(status, detail)
}

/// Why an invocation is refused: a status and a sentence that echoes nothing long.
#[derive(Debug)]
struct Problem {
    status: StatusCode,
    detail: String,
}

impl Problem {
    fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        Self {
            status,
            detail: detail.into(),
        }
    }

    /// The answer: a problem document (RFC 9457).
    fn answer(self) -> Response {
        let body = json!({
            "type": "about:blank",
            "title": self.status.canonical_reason().unwrap_or("Error"),
            "status": self.status.as_u16(),
            "detail": self.detail,
        });
        let mut response =
            warp::reply::with_status(warp::reply::json(&body), self.status).into_response();
        response.headers_mut().insert(
            warp::http::header::CONTENT_TYPE,
            warp::http::HeaderValue::from_static("application/problem+json"),
        );
        response
    }
}

/// A problem answer (RFC 9457).
fn problem(status: StatusCode, detail: impl Into<String>) -> Response {
    Problem::new(status, detail).answer()
}

/// At most [`MOST_ECHOED`] bytes of `text`, cut at a character and saying how much was left out.
fn clip(text: &str) -> String {
    if text.len() <= MOST_ECHOED {
        return text.to_owned();
    }
    let mut end = MOST_ECHOED;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} more bytes)", &text[..end], text.len() - end)
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
        function = clip(function),
        invocation_id = invocation_id.map(clip),
        status = response.status().as_u16(),
        ms = (took.as_secs_f64() * 1e3 * 1000.0).round() / 1000.0,
        "invocation"
    );
}

fn json_reply(result: &InvocationResult) -> Response {
    warp::reply::json(result).into_response()
}

/// Asks the host to deliver the message again (it drops outputs and logs, so say why on stderr).
fn retry_later(function: &str, error: &str) -> Response {
    let error = clip(error);
    tracing::warn!(function, %error, "will be tried again");
    problem(StatusCode::INTERNAL_SERVER_ERROR, error)
}

/// An invocation as read: parsed, or why it could not be (for the queue steps to set aside).
type Read = Result<Invocation, String>;

async fn invoke<S: Storage + SendLater, B: Buf>(
    world: &World<S>,
    spec: &FunctionSpec,
    length: u64,
    content_type: Option<&str>,
    body: impl Stream<Item = Result<B, warp::Error>>,
) -> Response {
    if let Some(kind) = content_type
        && !kind
            .trim()
            .to_ascii_lowercase()
            .starts_with("application/json")
    {
        return problem(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "an invocation is application/json",
        );
    }
    match spec.trigger {
        Trigger::Blob { container, .. } => {
            let invocation = match skim_body(body).await.and_then(|skim| {
                let seen = skim.seen();
                blob_invocation(skim).map(|invocation| (invocation, seen))
            }) {
                Ok(read) => read,
                Err(problem) => return problem.answer(),
            };
            let (invocation, seen) = invocation;
            let oversized = seen.max(length) > MAX_BLOB_INVOCATION_BYTES;
            if oversized {
                return too_large_upload(world, spec, container, &invocation, length).await;
            }
            if container == "manifests" {
                manifest_uploaded(spec, &invocation)
            } else {
                roster_uploaded(spec, &invocation)
            }
        }
        Trigger::Timer { .. } => match read_small(length, body).await {
            Ok(Ok(_)) => scheduled(world, spec).await,
            Ok(Err(error)) => problem(StatusCode::BAD_REQUEST, error),
            Err(problem) => problem.answer(),
        },
        Trigger::Queue { binding, .. } => match read_small(length, body).await {
            Ok(read) => queue_step(world, spec, read, binding).await,
            Err(problem) => problem.answer(),
        },
    }
}

fn too_large(detail: String) -> Problem {
    Problem::new(StatusCode::PAYLOAD_TOO_LARGE, detail)
}

/// Passes every chunk of the body to `each` as it arrives.
async fn read_chunks<B: Buf>(
    body: impl Stream<Item = Result<B, warp::Error>>,
    mut each: impl FnMut(&[u8]),
) -> Result<(), Problem> {
    let mut body = std::pin::pin!(body);
    while let Some(chunk) = body.next().await {
        let mut chunk = chunk.map_err(|_| {
            Problem::new(
                StatusCode::BAD_REQUEST,
                "the invocation's body could not be read",
            )
        })?;
        while chunk.has_remaining() {
            let part = chunk.chunk();
            each(part);
            let read = part.len();
            chunk.advance(read);
        }
    }
    Ok(())
}

/// Reads a queue or timer invocation of at most [`MAX_INVOCATION_BYTES`]. A larger one is
/// refused, its body read through and dropped (so the caller gets the answer rather than a
/// connection reset), never held.
async fn read_small<B: Buf>(
    length: u64,
    body: impl Stream<Item = Result<B, warp::Error>>,
) -> Result<Read, Problem> {
    let mut bytes =
        Vec::with_capacity(usize::try_from(length.min(MAX_INVOCATION_BYTES)).unwrap_or_default());
    let mut over = length > MAX_INVOCATION_BYTES;
    read_chunks(body, |part| {
        over |= (bytes.len() + part.len()) as u64 > MAX_INVOCATION_BYTES;
        if !over {
            bytes.extend_from_slice(part);
        }
    })
    .await?;
    if over {
        return Err(too_large(format!(
            "a queue or timer invocation has at most {MAX_INVOCATION_BYTES} bytes (a queue message at most 64 KiB)"
        )));
    }
    Ok(serde_json::from_slice(&bytes).map_err(|error| {
        format!(
            "the invocation is not the custom-handler JSON: {}",
            clip(&error.to_string())
        )
    }))
}

/// Reads a blob-triggered invocation through [`Skim`], whatever its size.
async fn skim_body<B: Buf>(
    body: impl Stream<Item = Result<B, warp::Error>>,
) -> Result<Skim, Problem> {
    let mut skim = Skim::default();
    read_chunks(body, |part| skim.feed(part)).await?;
    Ok(skim)
}

/// The invocation a skimmed body holds, with its metadata whole.
fn blob_invocation(skim: Skim) -> Result<Invocation, Problem> {
    if skim.left_out("Metadata") > 0 {
        return Err(too_large(format!(
            "a metadata value of the invocation is over {} bytes",
            super::skim::LONGEST_KEPT_STRING
        )));
    }
    let Some(kept) = skim.finish() else {
        return Err(too_large(format!(
            "the invocation's metadata is over {} bytes",
            super::skim::MOST_KEPT
        )));
    };
    serde_json::from_slice(&kept).map_err(|error| {
        Problem::new(
            StatusCode::BAD_REQUEST,
            format!(
                "the invocation is not the custom-handler JSON: {}",
                clip(&error.to_string())
            ),
        )
    })
}

/// A blob's name from the invocation's metadata (`None` when it has none), refused when no
/// blob can have it.
fn blob_name(spec: &FunctionSpec, invocation: &Invocation) -> Result<Option<String>, Problem> {
    // `BlobTrigger` is dropped by the host (keys ending in "trigger"), so the name comes
    // from the `{name}` pattern variable.
    let Some(name) = invocation.metadata_text("name") else {
        tracing::warn!(
            function = spec.name,
            "the invocation has no `name` metadata"
        );
        return Ok(None);
    };
    if name.len() > MAX_BLOB_NAME {
        return Err(Problem::new(
            StatusCode::BAD_REQUEST,
            format!(
                "the blob name has {} bytes; a blob name has at most {MAX_BLOB_NAME}",
                name.len()
            ),
        ));
    }
    Ok(Some(name))
}

/// The blob's name, or the answer to an invocation without a usable one.
fn named(spec: &FunctionSpec, invocation: &Invocation) -> Result<String, Box<Response>> {
    match blob_name(spec, invocation) {
        Ok(Some(name)) => Ok(name),
        Ok(None) => {
            let mut result = InvocationResult::default();
            result.log("no blob name in the invocation metadata; nothing to do");
            Err(Box::new(json_reply(&result)))
        }
        Err(problem) => Err(Box::new(problem.answer())),
    }
}

/// An upload too large to take in: 413, and for a roster a report that says so (the blob
/// is never read, so nothing changes for it).
async fn too_large_upload<S: Storage>(
    world: &World<S>,
    spec: &FunctionSpec,
    container: &str,
    invocation: &Invocation,
    length: u64,
) -> Response {
    let detail = format!(
        "the invocation has {length} bytes, over the {MAX_BLOB_INVOCATION_BYTES} the handler takes in; the upload is too large"
    );
    let Ok(Some(name)) = blob_name(spec, invocation) else {
        return too_large(detail).answer();
    };
    if container == "rosters" && enroll_core::roster::is_roster_name(&name) {
        let run_id = enroll_steps::new_run_id((world.now)());
        let size = length.saturating_mul(3) / 4;
        let etag = invocation.blob_etag();
        if let Err(error) =
            enroll_steps::roster_too_large(world, &run_id, &name, etag.as_deref(), size).await
        {
            tracing::error!(
                function = spec.name,
                roster = clip(&name),
                error = clip(&error.to_string()),
                "the too-large report could not be written"
            );
        } else {
            tracing::warn!(
                function = spec.name,
                roster = clip(&name),
                run_id,
                "an upload too large to take in; reported, nothing changed"
            );
        }
    }
    too_large(detail).answer()
}

fn roster_uploaded(spec: &FunctionSpec, invocation: &Invocation) -> Response {
    let mut result = InvocationResult::default();
    let name = match named(spec, invocation) {
        Ok(name) => name,
        Err(answer) => return *answer,
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
    let name = match named(spec, invocation) {
        Ok(name) => name,
        Err(answer) => return *answer,
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
        Err(error) => return retry_later(spec.name, &error.to_string()),
    };
    let manifests = match enroll_steps::map_roles_all(world, &run_id, Reason::Schedule).await {
        Ok(messages) => messages,
        Err(error) => return retry_later(spec.name, &error.to_string()),
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

/// A queue message, read for its function.
enum Queued {
    Plan(ReconcileMessage),
    Change(Change),
    MapRoles(MapRolesMessage),
}

impl Queued {
    fn read(spec: &FunctionSpec, text: &str) -> Result<Self, StepError> {
        let queue = match spec.trigger {
            Trigger::Queue { queue, .. } => queue,
            _ => "",
        };
        if let Some(change) = Change::read(queue, text) {
            return Ok(Self::Change(change?));
        }
        match spec.name {
            "Plan" => Ok(Self::Plan(enroll_core::messages::read_reconcile(text)?)),
            "MapRoles" => Ok(Self::MapRoles(enroll_core::messages::read_map_roles(text)?)),
            other => Err(StepError::Invocation(format!(
                "{other} is not a queue step"
            ))),
        }
    }

    async fn run<S: Storage + SendLater>(
        &self,
        world: &World<S>,
        attempt: Attempt,
    ) -> Result<StepOutput, StepError> {
        match self {
            Self::Plan(message) => {
                let planned = enroll_steps::plan_roster(world, message)
                    .await
                    .map(|o| o.output);
                delay_removals(world, planned).await
            }
            Self::Change(change) => change.run(world, attempt).await,
            Self::MapRoles(message) => enroll_steps::map_roles(world, message, attempt)
                .await
                .map(|o| o.output),
        }
    }

    /// Records the message as given up on: everyone in a change message, the roster or
    /// manifest otherwise.
    async fn record_set_aside<S: Storage>(
        &self,
        world: &World<S>,
        reason: &str,
    ) -> Result<(), StepError> {
        match self {
            Self::Change(change) => change.record_set_aside(world, reason).await.map(drop),
            Self::Plan(m) => enroll_steps::record_roster_set_aside(
                world,
                Action::Plan,
                &m.run_id,
                &m.roster,
                m.etag.as_deref(),
                reason,
            )
            .await
            .map(drop),
            Self::MapRoles(m) => enroll_steps::record_roster_set_aside(
                world,
                Action::MapRoles,
                &m.run_id,
                &m.manifest,
                m.etag.as_deref(),
                reason,
            )
            .await
            .map(drop),
        }
    }
}

/// What goes to the poison queue for an invocation whose message could not be had: the
/// reason, and what the host sent when that is small enough to keep.
fn set_aside_note(spec: &FunctionSpec, invocation: Option<&Invocation>, reason: &str) -> String {
    let mut note = json!({ "function": spec.name, "error": reason });
    if let Some(invocation) = invocation {
        for (key, field) in [("Id", "messageId"), ("DequeueCount", "dequeueCount")] {
            if let Some(value) = invocation.metadata_text(key) {
                note[field] = json!(clip(&value));
            }
        }
        let data = Value::Object(invocation.data.clone()).to_string();
        if data.len() <= MOST_DATA_IN_A_NOTE {
            note["data"] = Value::Object(invocation.data.clone());
        }
    }
    note.to_string()
}

async fn queue_step<S: Storage + SendLater>(
    world: &World<S>,
    spec: &FunctionSpec,
    read: Read,
    binding: &str,
) -> Response {
    let attempt = Attempt::of(
        read.as_ref()
            .ok()
            .and_then(Invocation::dequeue_count)
            .unwrap_or(1),
        world.config.max_dequeue_count,
    );
    // The message's text, or why the invocation holds none.
    let text: Result<String, String> = match &read {
        Ok(invocation) => invocation.text(binding).map_err(|error| error.to_string()),
        Err(reason) => Err(reason.clone()),
    };
    // The step's result, and the message it ran on.
    let (outcome, queued) = match &text {
        Err(reason) => (Err(StepError::Invocation(reason.clone())), None),
        Ok(text) => match Queued::read(spec, text) {
            Ok(queued) => (queued.run(world, attempt).await, Some(queued)),
            Err(error) => (Err(error), None),
        },
    };
    let mut result = InvocationResult::default();
    match enroll_steps::disposition(outcome.as_ref(), attempt) {
        Disposition::Done => {}
        // The host's visibility timeout decides when the message comes back.
        Disposition::RetryLater { reason, .. } => return retry_later(spec.name, &reason),
        Disposition::SetAside {
            aside: Aside::People(emails),
            ..
        } if matches!(queued, Some(Queued::Change(_))) => {
            if let Some(Queued::Change(change)) = &queued {
                result.push_messages("poison", &[change.only(&emails)]);
            }
            result.log(format!(
                "{} people set aside in the poison queue",
                emails.len()
            ));
        }
        // The whole message (Plan and MapRoles give up on no one alone).
        Disposition::SetAside { reason, .. } => {
            let reason = clip(&reason);
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
            // The message itself, as the host would set it aside; a note when there is no
            // message or one no queue could hold.
            let poison = match &text {
                Ok(text) if text.len() <= MOST_QUEUE_MESSAGE => text.clone(),
                _ => set_aside_note(spec, read.as_ref().ok(), &reason),
            };
            if let Some(queued) = &queued
                && let Err(error) = queued.record_set_aside(world, &reason).await
            {
                // The message still goes to the poison queue: a 500 on the last try would
                // make the host set it aside itself, with no record either.
                tracing::error!(
                    function = spec.name,
                    error = clip(&error.to_string()),
                    "the set-aside message could not be recorded"
                );
            }
            result
                .outputs
                .insert("poison".into(), Value::Array(vec![Value::String(poison)]));
            return json_reply(&result);
        }
    }
    if let Ok(output) = &outcome {
        add_output(&mut result, output);
    }
    json_reply(&result)
}

#[cfg(test)]
mod tests;
