//! The routes: each reads what it needs from the request, calls the steps or storage, and
//! answers JSON (or a roster's bytes). Their `#[utoipa::path]` attributes are the OpenAPI
//! document.

use std::collections::BTreeMap;
use std::time::SystemTime;

use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode, header};
use serde::Serialize;
use serde_json::Value;

use enroll_core::audit::{Action, AuditRecord, Outcome, rfc3339};
use enroll_core::messages::{MapRolesMessage, Reason, ReconcileMessage, VERSION};
use enroll_core::plan::{Plan, PlanError};
use enroll_core::report::report_name;
use enroll_core::roster::{Limits, content_version, is_roster_name, parse};
use enroll_graph::Directory;
use enroll_steps::{PlanRequest, plan_bytes};
use enroll_store::{ETag, PutCondition, StoreError};

use crate::auth::{Caller, KeySource};
use crate::model::{
    Counts, Health, Override, PackageStatus, ReconcileRequest, RolesReconcileRequest, RosterState,
    RosterStatus, RosterStored, Run, RunManifest, RunRecord, RunRoster, RunStarted, Status,
};
use crate::openapi::{Bodied, Guarded, Queued};
use crate::problem::{ProblemDocument, Rejection};
use crate::{Api, queues};

/// What a path names.
pub(crate) enum Endpoint<'a> {
    Health,
    OpenApi,
    Plan,
    Roster(&'a str),
    Reconcile,
    RolesReconcile,
    Run(&'a str),
    Status,
}

/// The route of a path, and the methods it answers (for `Allow`).
pub(crate) fn endpoint(path: &str) -> Option<(Endpoint<'_>, &'static str)> {
    Some(match path {
        "/api/health" => (Endpoint::Health, "GET"),
        "/api/openapi.json" => (Endpoint::OpenApi, "GET"),
        "/api/plan" => (Endpoint::Plan, "POST"),
        "/api/reconcile" => (Endpoint::Reconcile, "POST"),
        "/api/roles/reconcile" => (Endpoint::RolesReconcile, "POST"),
        "/api/status" => (Endpoint::Status, "GET"),
        other => {
            if let Some(rest) = other.strip_prefix("/api/rosters/") {
                (Endpoint::Roster(rest), "GET, PUT")
            } else if let Some(rest) = other.strip_prefix("/api/runs/") {
                (Endpoint::Run(rest), "GET")
            } else {
                return None;
            }
        }
    })
}

/// The longest roster path accepted (Azure's longest blob name).
const MOST_PATH_BYTES: usize = 1024;

/// The longest text of an override's `by` and `reason` kept.
const MOST_OVERRIDE_CHARS: usize = 500;

/// A roster path from the URL: percent-decoded, relative, `/`-separated, ending in `.csv`;
/// no `.` or `..` segment, no empty segment, no backslash, no control character, no drive.
pub fn roster_path(raw: &str) -> Result<String, Rejection> {
    let bad = |why: &str| Err(Rejection::BadRosterPath(why.to_owned()));
    let decoded = percent_encoding::percent_decode_str(raw)
        .decode_utf8()
        .map_err(|_| Rejection::BadRosterPath("it is not UTF-8 once decoded".to_owned()))?;
    let path = decoded.as_ref();
    if path.is_empty() {
        return bad("it is empty");
    }
    if path.len() > MOST_PATH_BYTES {
        return bad("it is longer than 1024 bytes");
    }
    if path.chars().any(char::is_control) {
        return bad("it holds a control character");
    }
    if path.contains('\\') {
        return bad("it holds a backslash; folders are separated by `/`");
    }
    if path.starts_with('/') {
        return bad("it is absolute; name it relative to the rosters container");
    }
    let segments: Vec<&str> = path.split('/').collect();
    if segments.iter().any(|s| s.is_empty()) {
        return bad("it has an empty folder name (`//` or a trailing `/`)");
    }
    if segments.iter().any(|s| *s == "." || *s == "..") {
        return bad("it has a `.` or `..` segment");
    }
    if segments
        .first()
        .is_some_and(|first| first.len() == 2 && first.ends_with(':'))
    {
        return bad("it starts with a drive letter");
    }
    if !is_roster_name(path) {
        return bad("a roster's name ends in `.csv`");
    }
    Ok(path.to_owned())
}

/// A JSON answer.
pub(crate) fn json<T: Serialize>(status: StatusCode, value: &T) -> Response<Bytes> {
    json_bytes(
        status,
        Bytes::from(serde_json::to_vec(value).unwrap_or_default()),
    )
}

/// JSON already serialised.
pub(crate) fn json_bytes(status: StatusCode, body: Bytes) -> Response<Bytes> {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// Logs what failed inside and answers 503 with a sentence that names only the part.
fn unavailable(part: &'static str, error: &dyn std::fmt::Display) -> Rejection {
    tracing::error!(%error, "api: {part} failed");
    Rejection::Unavailable(match part {
        "graph" => "Microsoft Graph cannot be reached right now; try again later",
        _ => "storage cannot be reached right now; try again later",
    })
}

fn storage(error: &StoreError) -> Rejection {
    unavailable("storage", error)
}

/// The query's parameters.
fn query(request: &Request<Bytes>) -> BTreeMap<String, String> {
    form_urlencoded::parse(request.uri().query().unwrap_or("").as_bytes())
        .into_owned()
        .collect()
}

/// The media type of the body, lower case, without parameters.
fn media_type(request: &Request<Bytes>) -> Option<String> {
    let value = request.headers().get(header::CONTENT_TYPE)?.to_str().ok()?;
    let essence = value.split(';').next().unwrap_or("").trim();
    (!essence.is_empty()).then(|| essence.to_ascii_lowercase())
}

/// Roster bytes: `text/csv` (or `application/csv`, `text/plain`, `application/octet-stream`),
/// not empty. The bytes are read as they are: the roster reader detects the encoding.
fn roster_body(request: &Request<Bytes>) -> Result<&[u8], Rejection> {
    const EXPECTED: &str = "text/csv (or application/csv, text/plain, application/octet-stream), in any encoding the roster format reads";
    match media_type(request).as_deref() {
        Some("text/csv" | "application/csv" | "text/plain" | "application/octet-stream") => {}
        _ => return Err(Rejection::UnsupportedMediaType { expected: EXPECTED }),
    }
    if request.body().is_empty() {
        return Err(Rejection::BadRequest(
            "the body is empty: send the roster (at least its header line) with a Content-Length"
                .to_owned(),
        ));
    }
    Ok(request.body())
}

/// A JSON body of type `T`; an empty body is `T::default()`.
fn json_body<T: serde::de::DeserializeOwned + Default>(
    request: &Request<Bytes>,
) -> Result<T, Rejection> {
    if request.body().is_empty() {
        return Ok(T::default());
    }
    match media_type(request).as_deref() {
        Some(kind) if kind == "application/json" || kind.ends_with("+json") => {}
        _ => {
            return Err(Rejection::UnsupportedMediaType {
                expected: "application/json",
            });
        }
    }
    serde_json::from_slice(request.body()).map_err(|error| {
        Rejection::BadRequest(format!(
            "the body is not the JSON this route reads: {}",
            clip(&error.to_string(), 200)
        ))
    })
}

fn clip(text: &str, most: usize) -> String {
    match text.char_indices().nth(most) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

/// An access package id: a GUID.
fn package_id(text: &str) -> Result<String, Rejection> {
    let ok = text.len() == 36
        && text.char_indices().all(|(i, c)| {
            if [8, 13, 18, 23].contains(&i) {
                c == '-'
            } else {
                c.is_ascii_hexdigit()
            }
        });
    if ok {
        Ok(text.to_ascii_lowercase())
    } else {
        Err(Rejection::BadRequest(
            "accessPackage must be an access package's id (a GUID)".to_owned(),
        ))
    }
}

/// Who allows a guard to be passed, and why: both required, control characters refused,
/// each kept to 500 characters.
fn checked_override(
    allow: bool,
    given: Option<Override>,
    flag: &str,
) -> Result<Option<Override>, Rejection> {
    match (allow, given) {
        (false, None) => Ok(None),
        (false, Some(_)) => Err(Rejection::OverrideIncomplete(format!(
            "`override` is only for `{flag}: true`"
        ))),
        (true, None) => Err(Rejection::OverrideIncomplete(format!(
            "`{flag}: true` needs `override` with `by` (who decided) and `reason` (why)"
        ))),
        (true, Some(given)) => {
            // Checked before trimming: a trailing line break is a control character too,
            // and the audit trail keeps one line per decision.
            if given
                .by
                .chars()
                .chain(given.reason.chars())
                .any(char::is_control)
            {
                return Err(Rejection::OverrideIncomplete(
                    "`override.by` and `override.reason` may not hold control characters"
                        .to_owned(),
                ));
            }
            let by = given.by.trim();
            let reason = given.reason.trim();
            if by.is_empty() || reason.is_empty() {
                return Err(Rejection::OverrideIncomplete(
                    "`override` needs a non-empty `by` (who decided) and `reason` (why)".to_owned(),
                ));
            }
            Ok(Some(Override {
                by: clip(by, MOST_OVERRIDE_CHARS),
                reason: clip(reason, MOST_OVERRIDE_CHARS),
            }))
        }
    }
}

/// `GET /api/health`: the process answers; neither Graph nor storage is asked.
#[utoipa::path(
    get,
    path = "/api/health",
    tag = "health",
    responses((status = 200, description = "The API answers", body = Health))
)]
pub(crate) fn health() -> Response<Bytes> {
    json(
        StatusCode::OK,
        &Health {
            status: "ok".to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
        },
    )
}

/// `GET /api/openapi.json`.
#[utoipa::path(
    get,
    path = "/api/openapi.json",
    tag = "health",
    responses((status = 200, description = "This document", body = Object))
)]
#[allow(dead_code)]
pub(crate) fn openapi_json() {}

/// `POST /api/plan`: the plan for a roster, as `enroll plan --format json` gives it.
#[utoipa::path(
    post,
    path = "/api/plan",
    tag = "rosters",
    params(
        ("roster" = Option<String>, Query, description = "The roster's path in the rosters container (`Catalog/Package.csv`): it decides the package by name, as an upload would"),
        ("accessPackage" = Option<String>, Query, description = "The access package's id, whatever the roster's name says"),
    ),
    request_body(content = String, content_type = "text/csv", description = "The roster, in any encoding the roster format reads"),
    responses(
        (status = 200, description = "The plan: `packages` holds the package's plan with its guards; `errors` why the roster cannot be planned. Nothing changes.", body = Plan),
        (status = 400, description = "Neither roster nor accessPackage, a bad path or id, or an empty body", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 415, description = "Not a CSV body", body = ProblemDocument, content_type = "application/problem+json"),
        Bodied,
        Guarded,
    ),
    security(("bearer" = ["Rosters.Read"]))
)]
pub(crate) async fn plan<D: Directory, K: KeySource>(
    api: &Api<D, K>,
    request: &Request<Bytes>,
    _caller: &Caller,
) -> Result<Response<Bytes>, Rejection> {
    let params = query(request);
    let roster = params.get("roster").map(|r| roster_path(r)).transpose()?;
    let package = params
        .get("accessPackage")
        .map(|id| package_id(id))
        .transpose()?;
    let bytes = roster_body(request)?;
    let name = match (&roster, &package) {
        (Some(roster), _) => roster.clone(),
        (None, Some(id)) => format!("{id}.csv"),
        (None, None) => {
            return Err(Rejection::BadRequest(
                "name the roster (query `roster`) or its access package (query `accessPackage`)"
                    .to_owned(),
            ));
        }
    };
    let plan_request = PlanRequest {
        access_package_id: package,
        alone: roster.is_none(),
        ..PlanRequest::default()
    };
    let planned = plan_bytes(
        &api.world,
        &name,
        bytes,
        &content_version(bytes),
        &plan_request,
    )
    .await
    .map_err(|error| match error {
        enroll_steps::StepError::Graph(_) => unavailable("graph", &error),
        _ => unavailable("storage", &error),
    })?;
    let plan = match planned {
        Ok(package) => Plan {
            packages: vec![package],
            errors: Vec::new(),
            allow_removals: false,
            allow_additions: false,
            override_by: None,
        },
        Err(errors) => Plan {
            packages: Vec::new(),
            errors,
            allow_removals: false,
            allow_additions: false,
            override_by: None,
        },
    };
    Ok(json(StatusCode::OK, &plan))
}

/// `GET /api/rosters/{path}`: the stored roster and its ETag.
#[utoipa::path(
    get,
    path = "/api/rosters/{path}",
    tag = "rosters",
    params(("path" = String, Path, description = "The roster's path (`Catalog/Package.csv`; `/` as itself or %2F)")),
    responses(
        (status = 200, description = "The roster's bytes as stored", body = String, content_type = "text/csv",
            headers(("ETag" = String, description = "The roster's version"))),
        (status = 400, description = "A path that cannot name a roster", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 404, description = "No such roster", body = ProblemDocument, content_type = "application/problem+json"),
        Guarded,
    ),
    security(("bearer" = ["Rosters.Read"]))
)]
pub(crate) async fn get_roster<D: Directory, K: KeySource>(
    api: &Api<D, K>,
    raw: &str,
) -> Result<Response<Bytes>, Rejection> {
    let name = roster_path(raw)?;
    let blob = match api.world.storage.get_roster(&name, None).await {
        Ok(blob) => blob,
        Err(StoreError::NotFound { .. }) => {
            return Err(Rejection::NotFound(format!(
                "there is no roster {}",
                clip(&name, 200).escape_debug()
            )));
        }
        Err(error) => return Err(storage(&error)),
    };
    let mut response = Response::new(Bytes::from(blob.bytes));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/csv"));
    if let Ok(etag) = HeaderValue::from_str(blob.etag.as_str()) {
        headers.insert(header::ETAG, etag);
    }
    Ok(response)
}

/// `PUT /api/rosters/{path}`: validates the roster, then stores it, which starts the
/// pipeline as an upload does.
#[utoipa::path(
    put,
    path = "/api/rosters/{path}",
    tag = "rosters",
    params(
        ("path" = String, Path, description = "The roster's path (`Catalog/Package.csv`; `/` as itself or %2F)"),
        ("If-Match" = Option<String>, Header, description = "Store only if the roster is still at this ETag (`*`: only if it exists)"),
        ("If-None-Match" = Option<String>, Header, description = "`*`: store only if there is no such roster yet"),
    ),
    request_body(content = String, content_type = "text/csv", description = "The roster, in any encoding the roster format reads"),
    responses(
        (status = 200, description = "Stored; the pipeline plans it", body = RosterStored,
            headers(("ETag" = String, description = "The roster's new version"))),
        (status = 400, description = "An invalid roster (every problem with line, column and code; nothing stored), a bad path or an empty body", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 412, description = "The roster changed since the ETag given (or exists, with If-None-Match: *)", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 415, description = "Not a CSV body", body = ProblemDocument, content_type = "application/problem+json"),
        Bodied,
        Guarded,
    ),
    security(("bearer" = ["Rosters.Write"]))
)]
pub(crate) async fn put_roster<D: Directory, K: KeySource>(
    api: &Api<D, K>,
    request: &Request<Bytes>,
    raw: &str,
) -> Result<Response<Bytes>, Rejection> {
    let name = roster_path(raw)?;
    let condition = condition(request)?;
    let bytes = roster_body(request)?;
    let roster = parse(&name, bytes, Limits::default());
    let as_errors = |problems: &[enroll_core::roster::Problem]| -> Vec<PlanError> {
        problems
            .iter()
            .map(|problem| enroll_core::plan::roster_error(&name, problem))
            .collect()
    };
    if !roster.is_valid() {
        return Err(Rejection::InvalidRoster(as_errors(&roster.errors)));
    }
    let store = &api.world.storage;
    let container = store.layout().rosters.clone();
    let put = || {
        store.put_blob(
            &container,
            &name,
            bytes.to_vec(),
            "text/csv",
            condition.clone(),
        )
    };
    let etag = match put().await {
        Err(StoreError::NotFound { .. }) => {
            store
                .ensure_container(&container)
                .await
                .map_err(|error| storage(&error))?;
            put().await
        }
        other => other,
    };
    let etag = match etag {
        Ok(etag) => etag,
        Err(StoreError::Conflict { .. }) => {
            return Err(Rejection::PreconditionFailed(match condition {
                PutCondition::IfNotExists => {
                    "the roster exists already (If-None-Match: *); nothing was stored".to_owned()
                }
                _ => "the roster changed since the ETag given in If-Match; read it again (GET) and resend; nothing was stored".to_owned(),
            }));
        }
        Err(StoreError::NotFound { .. }) if matches!(condition, PutCondition::IfMatch(_)) => {
            return Err(Rejection::PreconditionFailed(
                "there is no such roster to match If-Match; nothing was stored".to_owned(),
            ));
        }
        Err(error) => return Err(storage(&error)),
    };
    let mut response = json(
        StatusCode::OK,
        &RosterStored {
            roster: name.clone(),
            etag: etag.as_str().to_owned(),
            people: roster.people.len(),
            warnings: as_errors(&roster.warnings),
        },
    );
    if let Ok(value) = HeaderValue::from_str(etag.as_str()) {
        response.headers_mut().insert(header::ETAG, value);
    }
    Ok(response)
}

/// The write condition of `If-Match` / `If-None-Match`.
fn condition(request: &Request<Bytes>) -> Result<PutCondition, Rejection> {
    let text = |name: header::HeaderName| -> Result<Option<String>, Rejection> {
        request
            .headers()
            .get(&name)
            .map(|value| {
                value
                    .to_str()
                    .map(|v| v.trim().to_owned())
                    .map_err(|_| Rejection::BadRequest(format!("{name} is not text")))
            })
            .transpose()
    };
    match (text(header::IF_MATCH)?, text(header::IF_NONE_MATCH)?) {
        (Some(_), Some(_)) => Err(Rejection::BadRequest(
            "send If-Match or If-None-Match, not both".to_owned(),
        )),
        (Some(tag), None) if tag == "*" => Ok(PutCondition::IfMatch(ETag("*".to_owned()))),
        (Some(tag), None) if !tag.is_empty() && !tag.contains(',') => {
            Ok(PutCondition::IfMatch(ETag::normalized(&tag)))
        }
        (None, Some(tag)) if tag == "*" => Ok(PutCondition::IfNotExists),
        (None, None) => Ok(PutCondition::Always),
        _ => Err(Rejection::BadRequest(
            "If-Match takes one ETag (or `*`); If-None-Match only `*`".to_owned(),
        )),
    }
}

/// `POST /api/reconcile`: plans and applies one roster or all, through the pipeline.
#[utoipa::path(
    post,
    path = "/api/reconcile",
    tag = "runs",
    request_body(content = ReconcileRequest, content_type = "application/json", description = "Which roster (all when absent); `allowRemovals` needs `override`. An empty body reconciles every roster."),
    responses(
        Queued,
        (status = 400, description = "A malformed body, a bad roster path, or an override without who and why", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 404, description = "No such roster", body = ProblemDocument, content_type = "application/problem+json"),
        Bodied,
        Guarded,
    ),
    security(("bearer" = ["Runs.Start"]))
)]
pub(crate) async fn reconcile<D: Directory, K: KeySource>(
    api: &Api<D, K>,
    request: &Request<Bytes>,
    caller: &Caller,
) -> Result<Response<Bytes>, Rejection> {
    let body: ReconcileRequest = json_body(request)?;
    let granted = checked_override(
        body.allow_removals || body.allow_additions,
        body.override_,
        "allowRemovals` or `allowAdditions",
    )?;
    let store = &api.world.storage;
    let now = (api.world.now)();
    let run_id = enroll_steps::new_run_id(now);
    let rosters = match body.roster {
        Some(raw) => {
            let name = roster_path(&raw)?;
            let exists = match store.list_rosters(&name).await {
                Ok(entries) => entries.iter().any(|entry| entry.name == name),
                Err(StoreError::NotFound { .. }) => false,
                Err(error) => return Err(storage(&error)),
            };
            if !exists {
                return Err(Rejection::NotFound(format!(
                    "there is no roster {}",
                    clip(&name, 200).escape_debug()
                )));
            }
            vec![name]
        }
        None => {
            let world = &*api.world;
            enroll_steps::Storage::roster_names(&world.storage)
                .await
                .map_err(|error| unavailable("storage", &error))?
        }
    };
    let messages: Vec<String> = rosters
        .iter()
        .map(|roster| {
            serde_json::to_string(&ReconcileMessage {
                v: VERSION,
                run_id: run_id.clone(),
                roster: roster.clone(),
                etag: None,
                reason: Reason::Api,
                allow_removals: body.allow_removals,
                allow_additions: body.allow_additions,
                override_by: granted.as_ref().map(|o| o.by.clone()),
                override_reason: granted.as_ref().map(|o| o.reason.clone()),
            })
            .unwrap_or_default()
        })
        .collect();
    start_run(
        api,
        caller,
        now,
        RunRecord {
            run_id,
            requested_at: rfc3339(now),
            rosters,
            manifests: Vec::new(),
        },
        granted,
        queues::RECONCILE,
        &messages,
    )
    .await
}

/// `POST /api/roles/reconcile`: maps the app roles of one manifest or all, through the pipeline.
#[utoipa::path(
    post,
    path = "/api/roles/reconcile",
    tag = "runs",
    request_body(content = RolesReconcileRequest, content_type = "application/json", description = "Which manifest (all when absent); `allowRoleRemovals` needs `override`. An empty body maps every manifest."),
    responses(
        Queued,
        (status = 400, description = "A malformed body, or an override without who and why", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 404, description = "No such manifest", body = ProblemDocument, content_type = "application/problem+json"),
        Bodied,
        Guarded,
    ),
    security(("bearer" = ["Runs.Start"]))
)]
pub(crate) async fn roles_reconcile<D: Directory, K: KeySource>(
    api: &Api<D, K>,
    request: &Request<Bytes>,
    caller: &Caller,
) -> Result<Response<Bytes>, Rejection> {
    let body: RolesReconcileRequest = json_body(request)?;
    let granted = checked_override(
        body.allow_role_removals,
        body.override_,
        "allowRoleRemovals",
    )?;
    let now = (api.world.now)();
    let run_id = enroll_steps::new_run_id(now);
    let known = enroll_steps::Storage::manifest_names(&api.world.storage)
        .await
        .map_err(|error| unavailable("storage", &error))?;
    let manifests = match body.manifest {
        Some(name) if known.contains(&name) => vec![name],
        Some(name) => {
            return Err(Rejection::NotFound(format!(
                "there is no app role manifest {}",
                clip(&name, 200).escape_debug()
            )));
        }
        None => known,
    };
    let messages: Vec<String> = manifests
        .iter()
        .map(|manifest| {
            serde_json::to_string(&MapRolesMessage {
                v: VERSION,
                run_id: run_id.clone(),
                manifest: manifest.clone(),
                etag: None,
                reason: Reason::Api,
                allow_role_removals: granted.is_some(),
            })
            .unwrap_or_default()
        })
        .collect();
    start_run(
        api,
        caller,
        now,
        RunRecord {
            run_id,
            requested_at: rfc3339(now),
            rosters: Vec::new(),
            manifests,
        },
        granted,
        queues::MAP_ROLES,
        &messages,
    )
    .await
}

/// Records the run, audits an override, queues the messages and answers 202.
async fn start_run<D: Directory, K: KeySource>(
    api: &Api<D, K>,
    caller: &Caller,
    now: SystemTime,
    record: RunRecord,
    granted: Option<Override>,
    queue: &str,
    messages: &[String],
) -> Result<Response<Bytes>, Rejection> {
    let store = &api.world.storage;
    let reports = store.layout().reports.clone();
    let record_name = format!("runs/{}.json", record.run_id);
    let record_bytes = serde_json::to_vec(&record).unwrap_or_default();
    let put = || {
        store.put_blob(
            &reports,
            &record_name,
            record_bytes.clone(),
            "application/json",
            PutCondition::Always,
        )
    };
    if let Err(StoreError::NotFound { .. }) = put().await {
        store
            .ensure_container(&reports)
            .await
            .map_err(|error| storage(&error))?;
        put().await.map_err(|error| storage(&error))?;
    }
    let queued: Vec<String> = record
        .rosters
        .iter()
        .chain(&record.manifests)
        .cloned()
        .collect();
    if let Some(granted) = &granted {
        let records: Vec<AuditRecord> = queued
            .iter()
            .map(|name| AuditRecord {
                time: rfc3339(now),
                actor: api.world.config.actor.clone(),
                run_id: record.run_id.clone(),
                roster: name.clone(),
                roster_version: String::new(),
                access_package_id: None,
                action: if record.manifests.is_empty() {
                    Action::Plan
                } else {
                    Action::MapRoles
                },
                email: None,
                user_id: None,
                assignment_id: None,
                group_id: None,
                app_role_id: None,
                outcome: Outcome::Done,
                detail: Some(format!(
                    "override requested through the API by {} (calling application {}): guards may be passed in this run; reason: {}",
                    granted.by,
                    caller.app_id.as_deref().unwrap_or(&caller.subject),
                    granted.reason
                )),
                request_id: None,
            })
            .collect();
        enroll_steps::Storage::append_audit(store, &records)
            .await
            .map_err(|error| unavailable("storage", &error))?;
    }
    let name = format!("{}{queue}", api.settings.queue_prefix);
    for text in messages {
        if let Err(StoreError::NotFound { .. }) = store.send_message(&name, text, None).await {
            store
                .ensure_queue(&name)
                .await
                .map_err(|error| storage(&error))?;
            store
                .send_message(&name, text, None)
                .await
                .map_err(|error| storage(&error))?;
        }
    }
    let location = format!("/api/runs/{}", record.run_id);
    let mut response = json(
        StatusCode::ACCEPTED,
        &RunStarted {
            run_id: record.run_id.clone(),
            location: location.clone(),
            queued,
            allow_removals: granted.is_some(),
            override_: granted,
            requested_at: record.requested_at.clone(),
            requested_by: caller.app_id.clone(),
        },
    );
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    Ok(response)
}

/// A run id: letters, digits, `-` and `_`, at most 64.
fn run_id(raw: &str) -> Result<&str, Rejection> {
    let ok = !raw.is_empty()
        && raw.len() <= 64
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(raw)
    } else {
        Err(Rejection::BadRequest(
            "a run id has only letters, digits, `-` and `_` (at most 64)".to_owned(),
        ))
    }
}

/// Reads a JSON blob of the reports container; `None` when it is gone or not JSON.
async fn report_json<D: Directory, K: KeySource>(
    api: &Api<D, K>,
    name: &str,
) -> Result<Option<Value>, Rejection> {
    let store = &api.world.storage;
    match store.get_blob(&store.layout().reports, name, None).await {
        Ok(blob) => Ok(serde_json::from_slice(&blob.bytes).ok()),
        Err(StoreError::NotFound { .. }) => Ok(None),
        Err(error) => Err(storage(&error)),
    }
}

fn text(value: &Value, key: &str) -> Option<String> {
    value.get(key).and_then(Value::as_str).map(str::to_owned)
}

fn count(value: &Value, key: &str) -> usize {
    value
        .get(key)
        .and_then(|v| {
            v.as_array()
                .map(Vec::len)
                .or(v.as_u64().map(|n| n as usize))
        })
        .unwrap_or(0)
}

/// A roster's state and counts from its stored report (a plan, or the errors of a roster
/// that could not be planned).
fn from_report(report: Value) -> RunRoster {
    let roster = text(&report, "roster").unwrap_or_default();
    let roster_version = text(&report, "rosterVersion");
    if let Some(Value::Array(errors)) = report.get("errors") {
        return RunRoster {
            roster,
            state: RosterState::Invalid,
            roster_version,
            plan: None,
            counts: None,
            blocked: None,
            blocked_message: None,
            errors: errors.clone(),
            failures: Vec::new(),
            set_aside: Vec::new(),
        };
    }
    let blocked = text(&report, "blocked");
    RunRoster {
        roster,
        state: if blocked.is_some() {
            RosterState::Blocked
        } else {
            RosterState::Planned
        },
        roster_version,
        counts: Some(counts(&report)),
        blocked,
        blocked_message: text(&report, "blockedMessage"),
        plan: Some(report),
        errors: Vec::new(),
        failures: Vec::new(),
        set_aside: Vec::new(),
    }
}

fn counts(plan: &Value) -> Counts {
    Counts {
        invite: count(plan, "invite"),
        assign: count(plan, "assign"),
        remove: count(plan, "remove"),
        unchanged: count(plan, "unchanged"),
        pending: count(plan, "pending"),
        skipped: count(plan, "skipped"),
    }
}

/// `GET /api/runs/{id}`: per roster, its plan, counts, why it is blocked, and the people set
/// aside; per app role manifest, its report.
#[utoipa::path(
    get,
    path = "/api/runs/{id}",
    tag = "runs",
    params(("id" = String, Path, description = "The run id (`20261127T060111Z-3f2a`)")),
    responses(
        (status = 200, description = "The run as far as it has come", body = Run),
        (status = 400, description = "Not a run id", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 404, description = "No such run", body = ProblemDocument, content_type = "application/problem+json"),
        Guarded,
    ),
    security(("bearer" = ["Rosters.Read"]))
)]
pub(crate) async fn run<D: Directory, K: KeySource>(
    api: &Api<D, K>,
    raw: &str,
) -> Result<Response<Bytes>, Rejection> {
    let id = run_id(raw)?;
    let store = &api.world.storage;
    let prefix = format!("{id}/");
    let entries = match store.list_blobs(&store.layout().reports, &prefix).await {
        Ok(entries) => entries,
        Err(StoreError::NotFound { .. }) => Vec::new(),
        Err(error) => return Err(storage(&error)),
    };
    let record: Option<RunRecord> = report_json(api, &format!("runs/{id}.json"))
        .await?
        .and_then(|value| serde_json::from_value(value).ok());
    if entries.is_empty() && record.is_none() {
        return Err(Rejection::NotFound(format!("there is no run {id}")));
    }
    let mut rosters: BTreeMap<String, RunRoster> = BTreeMap::new();
    let mut manifests: BTreeMap<String, RunManifest> = BTreeMap::new();
    let mut failures: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for entry in &entries {
        let Some(file) = entry.name.strip_prefix(&prefix) else {
            continue;
        };
        if let Some(report) = file.strip_suffix(".failures.jsonl") {
            let lines = match store
                .get_blob(&store.layout().reports, &entry.name, None)
                .await
            {
                Ok(blob) => blob.bytes,
                Err(StoreError::NotFound { .. }) => continue,
                Err(error) => return Err(storage(&error)),
            };
            failures.insert(
                report.to_owned(),
                String::from_utf8_lossy(&lines)
                    .lines()
                    .filter_map(|line| serde_json::from_str(line).ok())
                    .collect(),
            );
        } else if file.ends_with(".json") {
            let Some(report) = report_json(api, &entry.name).await? else {
                continue;
            };
            if let Some(manifest) = text(&report, "manifest") {
                manifests.insert(
                    manifest.clone(),
                    RunManifest {
                        manifest,
                        state: RosterState::Planned,
                        report: Some(report),
                    },
                );
            } else {
                let entry = from_report(report);
                rosters.insert(entry.roster.clone(), entry);
            }
        }
    }
    for (name, entry) in &mut rosters {
        if let Some(lines) = failures.remove(&report_name(name)) {
            entry.set_aside = lines
                .iter()
                .filter(|line| line.get("outcome").and_then(Value::as_str) == Some("failed"))
                .filter_map(|line| text(line, "email"))
                .collect();
            entry.failures = lines;
        }
    }
    if let Some(record) = &record {
        for roster in &record.rosters {
            rosters.entry(roster.clone()).or_insert_with(|| RunRoster {
                roster: roster.clone(),
                state: RosterState::Queued,
                roster_version: None,
                plan: None,
                counts: None,
                blocked: None,
                blocked_message: None,
                errors: Vec::new(),
                failures: Vec::new(),
                set_aside: Vec::new(),
            });
        }
        for manifest in &record.manifests {
            manifests
                .entry(manifest.clone())
                .or_insert_with(|| RunManifest {
                    manifest: manifest.clone(),
                    state: RosterState::Queued,
                    report: None,
                });
        }
    }
    Ok(json(
        StatusCode::OK,
        &Run {
            run_id: id.to_owned(),
            requested_at: record.map(|record| record.requested_at),
            rosters: rosters.into_values().collect(),
            manifests: manifests.into_values().collect(),
        },
    ))
}

/// `GET /api/status`: per access package, its last run; and the rosters whose last run
/// could not plan them.
#[utoipa::path(
    get,
    path = "/api/status",
    tag = "runs",
    responses(
        (status = 200, description = "The last run of every package", body = Status),
        Guarded,
    ),
    security(("bearer" = ["Rosters.Read"]))
)]
pub(crate) async fn status<D: Directory, K: KeySource>(
    api: &Api<D, K>,
) -> Result<Response<Bytes>, Rejection> {
    let store = &api.world.storage;
    let entries = match store.list_blobs(&store.layout().reports, "").await {
        Ok(entries) => entries,
        Err(StoreError::NotFound { .. }) => Vec::new(),
        Err(error) => return Err(storage(&error)),
    };
    // Run ids sort by time, and the listing by name: the last report of a name wins.
    let mut latest: BTreeMap<String, (String, String)> = BTreeMap::new();
    for entry in entries {
        let Some((run, file)) = entry.name.split_once('/') else {
            continue;
        };
        if run == "runs"
            || file.contains('/')
            || !file.ends_with(".json")
            || file.ends_with(".failures.json")
        {
            continue;
        }
        latest.insert(file.to_owned(), (run.to_owned(), entry.name.clone()));
    }
    let mut packages: BTreeMap<String, PackageStatus> = BTreeMap::new();
    let mut invalid = Vec::new();
    for (run, name) in latest.into_values() {
        let Some(report) = report_json(api, &name).await? else {
            continue;
        };
        if report.get("manifest").is_some() {
            continue;
        }
        let entry = from_report(report);
        match (entry.state, entry.plan) {
            (RosterState::Invalid, _) | (_, None) => invalid.push(RosterStatus {
                roster: entry.roster,
                run_id: run,
                errors: entry.errors,
            }),
            (state, Some(plan)) => {
                let package = plan.get("accessPackage").cloned().unwrap_or_default();
                let id = text(&package, "id").unwrap_or_default();
                let newer = packages.get(&id).is_none_or(|known| known.run_id <= run);
                if newer {
                    packages.insert(
                        id,
                        PackageStatus {
                            access_package: package,
                            roster: entry.roster,
                            run_id: run,
                            roster_version: entry.roster_version.unwrap_or_default(),
                            state,
                            counts: entry.counts.unwrap_or_default(),
                            blocked: entry.blocked,
                        },
                    );
                }
            }
        }
    }
    Ok(json(
        StatusCode::OK,
        &Status {
            packages: packages.into_values().collect(),
            invalid_rosters: invalid,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roster_paths_are_relative_csv_names_without_traversal() {
        assert_eq!(
            roster_path("Contoso%20Projects/Key%20Users.csv").unwrap(),
            "Contoso Projects/Key Users.csv"
        );
        assert_eq!(roster_path("a%2Fb.csv").unwrap(), "a/b.csv");
        for bad in [
            "",
            "../secrets.csv",
            "a/../b.csv",
            "a/%2E%2E/b.csv",
            "%2Fetc/x.csv",
            "/etc/x.csv",
            "C:/x.csv",
            "a\\b.csv",
            "a%5Cb.csv",
            "a%0Ab.csv",
            "a%1B[31m.csv",
            "a//b.csv",
            "a/./b.csv",
            "notes.txt",
            "%FF.csv",
        ] {
            assert!(
                matches!(roster_path(bad), Err(Rejection::BadRosterPath(_))),
                "{bad} should be refused"
            );
        }
        let long = format!("{}.csv", "a".repeat(1100));
        assert!(roster_path(&long).is_err());
    }

    #[test]
    fn overrides_need_who_and_why_and_only_with_the_flag() {
        let given = |by: &str, reason: &str| {
            Some(Override {
                by: by.into(),
                reason: reason.into(),
            })
        };
        assert_eq!(checked_override(false, None, "allowRemovals"), Ok(None));
        assert_eq!(
            checked_override(true, given(" Ann ", " reorg "), "allowRemovals"),
            Ok(given("Ann", "reorg"))
        );
        for (allow, over) in [
            (true, None),
            (true, given("", "reorg")),
            (true, given("Ann", "  ")),
            (true, given("Ann\n", "reorg")),
            (false, given("Ann", "reorg")),
        ] {
            assert!(matches!(
                checked_override(allow, over, "allowRemovals"),
                Err(Rejection::OverrideIncomplete(_))
            ));
        }
    }

    #[test]
    fn every_path_template_has_a_route_and_nothing_else_does() {
        assert!(matches!(
            endpoint("/api/health"),
            Some((Endpoint::Health, "GET"))
        ));
        assert!(matches!(
            endpoint("/api/rosters/a/b.csv"),
            Some((Endpoint::Roster("a/b.csv"), "GET, PUT"))
        ));
        assert!(matches!(
            endpoint("/api/runs/r1"),
            Some((Endpoint::Run("r1"), "GET"))
        ));
        for missing in [
            "/",
            "/api",
            "/api/",
            "/api/health/",
            "/api/rosters",
            "/Plan",
        ] {
            assert!(endpoint(missing).is_none(), "{missing}");
        }
    }
}
