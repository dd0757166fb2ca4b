//! The HTTP edge: one catch-all warp route that turns every request into a [`Req`], applies
//! latency, dropped connections, authentication, throttling and faults, and hands Graph calls
//! to [`crate::routes`].

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde_json::{Value, json};
use warp::Filter;
use warp::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use warp::hyper::body::Bytes;
use warp::reply::Reply;

use super::state::State;
use super::{AtomicCounters, SimConfig, SimError, auth, batch, clock, routes};
use enroll_core::tenant::TenantSnapshot;

/// Graph's content type for JSON answers.
const GRAPH_JSON: &str = "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8";

/// Everything the server tasks share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) config: SimConfig,
    /// `http://127.0.0.1:{port}` (or `https://` with TLS): the prefix of the issuer and of
    /// the endpoints the discovery document names.
    pub(crate) base_url: String,
    /// The domains that name the tenant besides its id, lower case.
    pub(crate) domains: Vec<String>,
    pub(crate) counters: AtomicCounters,
    pub(crate) verify_key: Option<auth::VerifyKey>,
    state: Mutex<State>,
}

impl Shared {
    pub(crate) fn new(
        config: SimConfig,
        snapshot: TenantSnapshot,
        base_url: String,
    ) -> Result<Self, SimError> {
        let verify_key = match &config.client_certificate_pem {
            Some(pem) => Some(auth::VerifyKey::from_pem(pem).map_err(SimError::Config)?),
            None => None,
        };
        // The key is made before the first request, so no request waits for it.
        crate::jwt::key().map_err(SimError::Config)?;
        let mut domains: Vec<String> = config
            .domains
            .iter()
            .map(String::as_str)
            .chain([crate::SIM_TENANT_DOMAIN])
            .chain(snapshot.users.iter().filter_map(|u| {
                u.user_principal_name
                    .as_deref()
                    .and_then(|upn| upn.rsplit_once('@'))
                    .map(|(_, domain)| domain)
            }))
            .map(str::to_ascii_lowercase)
            .collect();
        domains.sort();
        domains.dedup();
        let state = State::new(&config, snapshot).map_err(SimError::Snapshot)?;
        Ok(Self {
            config,
            base_url,
            domains,
            counters: AtomicCounters::default(),
            verify_key,
            state: Mutex::new(state),
        })
    }

    /// The state, even if a handler panicked while holding it (the data stays consistent
    /// because every handler validates before it mutates).
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn snapshot(&self) -> TenantSnapshot {
        let mut state = self.lock();
        state.advance();
        state.tenant.to_snapshot()
    }
}

/// One request, decoded: a top-level HTTP request or one item of a `$batch`.
#[derive(Debug, Clone)]
pub(crate) struct Req {
    /// Upper-case method.
    pub(crate) method: String,
    /// Percent-decoded path segments after `/v1.0` (Graph) or of the whole path (others).
    pub(crate) segments: Vec<String>,
    /// Decoded query parameters in order.
    pub(crate) query: Vec<(String, String)>,
    /// Headers with lower-case names.
    pub(crate) headers: BTreeMap<String, String>,
    /// The body as sent.
    pub(crate) body: Bytes,
    /// `http://host:port`, for absolute links.
    pub(crate) origin: String,
}

impl Req {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }

    /// The JSON body, or Graph's 400 for a missing or malformed one.
    pub(crate) fn json_body(&self) -> Result<Value, Resp> {
        if self.body.is_empty() {
            return Err(Resp::error(
                400,
                "BadRequest",
                "Write requests (excluding DELETE) must contain the Content-Type header declaration.",
            ));
        }
        serde_json::from_slice(&self.body).map_err(|e| {
            Resp::error(
                400,
                "BadRequest",
                &format!("Unable to read JSON request payload. Please ensure Content-Type header is set and payload is of valid JSON format. ({e})"),
            )
        })
    }
}

/// One answer, before headers common to all answers are added.
#[derive(Debug, Clone)]
pub(crate) struct Resp {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Option<Value>,
}

impl Resp {
    pub(crate) fn json(status: u16, body: Value) -> Self {
        Self {
            status,
            headers: vec![("Content-Type".to_owned(), GRAPH_JSON.to_owned())],
            body: Some(body),
        }
    }

    pub(crate) fn no_content() -> Self {
        Self {
            status: 204,
            headers: Vec::new(),
            body: None,
        }
    }

    /// Graph's error envelope; `innerError` is added by [`Resp::finish`].
    pub(crate) fn error(status: u16, code: &str, message: &str) -> Self {
        Self::json(
            status,
            json!({ "error": { "code": code, "message": message } }),
        )
    }

    pub(crate) fn with_header(mut self, name: &str, value: String) -> Self {
        self.headers.push((name.to_owned(), value));
        self
    }

    pub(crate) fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// Adds `request-id`, `client-request-id` and `date` headers and, for Graph errors,
    /// `innerError` with the same ids, as Graph does on every answer.
    pub(crate) fn finish(mut self, request_id: &str, client_request_id: &str) -> Self {
        if let Some(error) = self
            .body
            .as_mut()
            .and_then(|b| b.get_mut("error"))
            .and_then(Value::as_object_mut)
        {
            let inner = error.entry("innerError").or_insert_with(|| json!({}));
            if let Some(inner) = inner.as_object_mut() {
                inner.insert("date".to_owned(), json!(clock::now_error_date()));
                inner.insert("request-id".to_owned(), json!(request_id));
                inner.insert("client-request-id".to_owned(), json!(client_request_id));
            }
        }
        self.headers
            .push(("request-id".to_owned(), request_id.to_owned()));
        self.headers
            .push(("client-request-id".to_owned(), client_request_id.to_owned()));
        self
    }
}

pub(crate) fn routes(
    shared: Arc<Shared>,
) -> impl Filter<Extract = (warp::reply::Response,), Error = Infallible> + Clone {
    let query = warp::query::raw().or(warp::any().map(String::new)).unify();
    warp::method()
        .and(warp::path::full())
        .and(query)
        .and(warp::header::headers_cloned())
        .and(warp::body::stream())
        .and(warp::any().map(move || Arc::clone(&shared)))
        .then(
            |method: Method,
             path: warp::path::FullPath,
             query: String,
             headers: HeaderMap,
             body,
             shared: Arc<Shared>| async move {
                // Graph finishes a request it received even if the client goes away: the
                // work runs in its own task, which a dropped connection does not cancel.
                let path = path.as_str().to_owned();
                tokio::spawn(
                    async move { handle(shared, method, &path, &query, &headers, body).await },
                )
                .await
                .unwrap_or_else(|_| {
                    to_warp(Resp::error(500, "UnknownError", "The simulator failed."))
                })
            },
        )
        .recover(|_| async {
            // The catch-all route rejects only a body that was taken already.
            let resp = Resp::error(400, "BadRequest", "The request could not be read.")
                .finish("00000000-0000-0000-0000-000000000000", "");
            Ok::<_, Infallible>(to_warp(resp))
        })
        .unify()
}

/// The largest request body the simulator reads: 4 MiB. Graph answers a larger request
/// with 413 (graph.md §6.1; learn.microsoft.com/graph/errors: "The request size exceeds the
/// maximum limit"); Microsoft names 4 MB for the APIs that publish a figure.
pub(crate) const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// Graph's answer to a request body over [`MAX_BODY_BYTES`].
fn too_large() -> Resp {
    Resp::error(
        413,
        "RequestEntityTooLarge",
        &format!("The request size exceeds the maximum limit ({MAX_BODY_BYTES} bytes)."),
    )
}

/// Reads a request body, at most [`MAX_BODY_BYTES`] of it: `Err` with the answer to give
/// once it is larger (the rest is never read) or cannot be read.
async fn read_body<S, B>(body: S) -> Result<Bytes, Resp>
where
    S: futures_util::Stream<Item = Result<B, warp::Error>>,
    B: warp::hyper::body::Buf,
{
    use futures_util::StreamExt;
    let mut body = std::pin::pin!(body);
    let mut read = Vec::new();
    while let Some(chunk) = body.next().await {
        let mut chunk = chunk
            .map_err(|_| Resp::error(400, "BadRequest", "The request body could not be read."))?;
        if read.len() + chunk.remaining() > MAX_BODY_BYTES {
            return Err(too_large());
        }
        while chunk.has_remaining() {
            let part = chunk.chunk();
            read.extend_from_slice(part);
            let len = part.len();
            chunk.advance(len);
        }
    }
    Ok(Bytes::from(read))
}

/// When a connection chosen to be dropped is dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Drop {
    /// Before anything is done: the request is lost.
    Before,
    /// After the request was carried out: the answer is lost, not the work.
    After,
}

async fn handle<S, B>(
    shared: Arc<Shared>,
    method: Method,
    path: &str,
    raw_query: &str,
    headers: &HeaderMap,
    body: S,
) -> warp::reply::Response
where
    S: futures_util::Stream<Item = Result<B, warp::Error>>,
    B: warp::hyper::body::Buf,
{
    AtomicCounters::bump(&shared.counters.http_requests);
    let (request_id, drop) = {
        let mut state = shared.lock();
        let drop = (shared.config.drop_rate > 0.0 && state.rng.f64() < shared.config.drop_rate)
            .then(|| {
                if state.rng.bool() {
                    Drop::Before
                } else {
                    Drop::After
                }
            });
        (state.new_guid(), drop)
    };
    if drop == Some(Drop::Before) {
        AtomicCounters::bump(&shared.counters.dropped);
        return dropped_connection();
    }
    let mut header_map = BTreeMap::new();
    for (name, value) in headers {
        if let Ok(value) = value.to_str() {
            header_map.insert(name.as_str().to_ascii_lowercase(), value.to_owned());
        }
    }
    let client_request_id = header_map
        .get("client-request-id")
        .cloned()
        .unwrap_or_else(|| request_id.clone());
    let scheme = shared.base_url.split_once("://").map_or("http", |(s, _)| s);
    let origin = format!(
        "{scheme}://{}",
        header_map.get("host").map_or("127.0.0.1", String::as_str)
    );
    let segments: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(decode_segment)
        .collect();
    let query = form_urlencoded::parse(raw_query.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let mut req = Req {
        method: method.as_str().to_ascii_uppercase(),
        segments,
        query,
        headers: header_map,
        body: Bytes::new(),
        origin,
    };
    let resp = answer(&shared, &mut req, body).await;
    if drop == Some(Drop::After) {
        AtomicCounters::bump(&shared.counters.dropped);
        return dropped_connection();
    }
    to_warp(resp.finish(&request_id, &client_request_id))
}

/// Counts a write request while Graph carries it out.
struct WriteInFlight<'a>(&'a Shared);

impl<'a> WriteInFlight<'a> {
    fn new(shared: &'a Shared) -> Self {
        shared
            .counters
            .writes_in_flight
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Self(shared)
    }
}

impl std::ops::Drop for WriteInFlight<'_> {
    fn drop(&mut self) {
        self.0
            .counters
            .writes_in_flight
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Whether a request asks Graph to change something: a POST, PATCH, PUT or DELETE under
/// `/v1.0`, or a `$batch` with such an item (a batch of reads is not a write).
fn carries_write(method: &str, segments: &[String], body: &Bytes) -> bool {
    #[derive(serde::Deserialize)]
    struct Item {
        #[serde(default)]
        method: String,
    }
    #[derive(serde::Deserialize)]
    struct Batch {
        #[serde(default)]
        requests: Vec<Item>,
    }
    if method == "GET" || segments.first().map(String::as_str) != Some("v1.0") {
        return false;
    }
    if segments.get(1).map(String::as_str) != Some("$batch") || segments.len() != 2 {
        return true;
    }
    serde_json::from_slice::<Batch>(body).is_ok_and(|batch| {
        batch
            .requests
            .iter()
            .any(|item| !item.method.eq_ignore_ascii_case("GET"))
    })
}

/// The answer to `req`, whose body is still to be read from `body`.
async fn answer<S, B>(shared: &Shared, req: &mut Req, body: S) -> Resp
where
    S: futures_util::Stream<Item = Result<B, warp::Error>>,
    B: warp::hyper::body::Buf,
{
    // Refused before a byte of the body is read: a body declared too large, and a Graph
    // call without a valid token (a stranger cannot make the simulator buffer anything).
    let declared = req
        .header("content-length")
        .and_then(|length| length.trim().parse::<u64>().ok());
    if declared.is_some_and(|length| length > MAX_BODY_BYTES as u64) {
        return too_large();
    }
    if req.segments.first().map(String::as_str) == Some("v1.0")
        && let Err(resp) = auth::check_bearer(shared, req)
    {
        AtomicCounters::bump(&shared.counters.unauthorized);
        return resp;
    }
    req.body = match read_body(body).await {
        Ok(body) => body,
        Err(resp) => return resp,
    };
    // The latency is the time Graph takes to carry the request out; a write counts as in
    // flight for all of it, so a test can stop a client in the middle of one.
    let _in_flight =
        carries_write(&req.method, &req.segments, &req.body).then(|| WriteInFlight::new(shared));
    if shared.config.latency_ms > 0 {
        tokio::time::sleep(Duration::from_millis(shared.config.latency_ms)).await;
    }
    route(shared, req)
}

fn route(shared: &Shared, req: &mut Req) -> Resp {
    let segs: Vec<&str> = req.segments.iter().map(String::as_str).collect();
    // Entra's paths start with the tenant: its id, a domain, `common` or `organizations`.
    let entra = segs
        .first()
        .and_then(|t| shared.tenant_path(t))
        .map(|path| (path, &segs[1..]));
    match (segs.as_slice(), entra) {
        (["msi" | "MSI", "token"], _) => {
            AtomicCounters::bump(&shared.counters.token_requests);
            auth::managed_identity(shared, req)
        }
        (["v1.0", ..], _) => {
            // The token was checked before the body was read.
            req.segments.remove(0);
            if req.segments.len() == 1 && req.segments[0] == "$batch" {
                if req.method != "POST" {
                    return method_not_allowed();
                }
                AtomicCounters::bump(&shared.counters.batches);
                return batch::run(shared, req);
            }
            let mut state = shared.lock();
            operation(shared, &mut state, req)
        }
        (_, Some((path, rest))) => entra_path(shared, req, path, rest),
        (
            [t, "oauth2", ..]
            | [t, "v2.0", ".well-known", ..]
            | [t, ".well-known", ..]
            | [t, "discovery", ..],
            None,
        ) => {
            if segs.get(1) == Some(&"oauth2") {
                AtomicCounters::bump(&shared.counters.token_requests);
            }
            auth::tenant_not_found(t)
        }
        _ => Resp::error(
            404,
            "NotFound",
            "The simulator serves Graph under /v1.0, Entra under /{tenant}/ (oauth2/v2.0/token, v2.0/.well-known/openid-configuration, discovery/v2.0/keys) and managed identity under /msi/token.",
        ),
    }
}

/// A path of Entra's under the tenant segment.
fn entra_path(shared: &Shared, req: &Req, path: auth::TenantPath, rest: &[&str]) -> Resp {
    let segment = req.segments.first().map_or("", String::as_str);
    match rest {
        ["oauth2", "v2.0", "token"] => {
            AtomicCounters::bump(&shared.counters.token_requests);
            if path == auth::TenantPath::Any {
                return auth::no_tenant(segment);
            }
            auth::token_endpoint(shared, req, segment)
        }
        ["oauth2", "v2.0", "authorize" | "devicecode" | "logout"] => auth::interactive(shared),
        ["v2.0", ".well-known", "openid-configuration"] => auth::discovery(shared, req, path),
        ["discovery", "v2.0", "keys"] | ["discovery", "keys"] => auth::keys(shared, req, path),
        _ => Resp::error(
            404,
            "NotFound",
            "The simulator serves oauth2/v2.0/token, v2.0/.well-known/openid-configuration and discovery/v2.0/keys under the tenant.",
        ),
    }
}

/// One Graph operation: counted, throttled, maybe faulted, then answered from the tenant.
pub(crate) fn operation(shared: &Shared, state: &mut State, req: &Req) -> Resp {
    AtomicCounters::bump(&shared.counters.graph_operations);
    *state
        .operations_by_route
        .entry(crate::state::route_of(
            &req.method,
            &req.segments,
            &req.query,
        ))
        .or_default() += 1;
    if let Some(wait) = state.throttle(shared.config.throttle_rps) {
        AtomicCounters::bump(&shared.counters.throttled);
        return throttled(wait);
    }
    let lost_answer = req.method != "GET"
        && shared.config.lost_answer_rate > 0.0
        && state.rng.f64() < shared.config.lost_answer_rate;
    let fault = if lost_answer {
        Some(504)
    } else if shared.config.fault_rate > 0.0 && state.rng.f64() < shared.config.fault_rate {
        Some([500u16, 503, 504][state.rng.usize(0..3)])
    } else {
        None
    };
    match fault {
        Some(504) => {
            // A gateway timeout loses the answer, not the work.
            AtomicCounters::bump(&shared.counters.faulted);
            let resp = routes::dispatch(shared, state, req);
            if resp.is_success() && req.method != "GET" {
                AtomicCounters::bump(&shared.counters.writes);
            }
            Resp::error(
                504,
                "GatewayTimeout",
                "The gateway did not receive a timely response from the upstream server.",
            )
        }
        Some(500) => {
            AtomicCounters::bump(&shared.counters.faulted);
            Resp::error(500, "UnknownError", "An internal server error occurred.")
        }
        Some(_) => {
            AtomicCounters::bump(&shared.counters.faulted);
            Resp::error(
                503,
                "serviceNotAvailable",
                "The service is temporarily unavailable. Please retry later.",
            )
        }
        None => {
            let resp = routes::dispatch(shared, state, req);
            if resp.is_success() && req.method != "GET" {
                AtomicCounters::bump(&shared.counters.writes);
            }
            resp
        }
    }
}

/// Graph's throttling answer (see throttling.example1.json), with `Retry-After` in whole
/// seconds as HTTP allows (RFC 9110 §10.2.3: delay-seconds is a non-negative integer):
/// the wait rounded up, at least a second.
pub(crate) fn throttled(wait: Duration) -> Resp {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    Resp::json(
        429,
        json!({
            "error": {
                "code": "TooManyRequests",
                "message": "Please retry again later.",
                "innerError": {
                    "code": "429",
                    "message": "Please retry after",
                    "status": "429",
                },
            }
        }),
    )
    .with_header("Retry-After", secs.max(1).to_string())
}

pub(crate) fn method_not_allowed() -> Resp {
    Resp::error(
        405,
        "Request_BadRequest",
        "Specified HTTP method is not allowed for the request target.",
    )
}

fn decode_segment(segment: &str) -> String {
    percent_encoding::percent_decode_str(segment)
        .decode_utf8_lossy()
        .into_owned()
}

fn to_warp(resp: Resp) -> warp::reply::Response {
    let mut out = match &resp.body {
        Some(body) => warp::reply::json(body).into_response(),
        None => warp::reply().into_response(),
    };
    *out.status_mut() = StatusCode::from_u16(resp.status).unwrap_or(StatusCode::OK);
    for (name, value) in resp.headers {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            out.headers_mut().insert(name, value);
        }
    }
    out
}

/// A response whose body fails at once: hyper aborts the connection, so the client sees the
/// connection closed before a complete message, as with a dropped connection.
fn dropped_connection() -> warp::reply::Response {
    let failing = futures_util::stream::once(std::future::ready(Err::<Bytes, std::io::Error>(
        std::io::Error::new(
            std::io::ErrorKind::ConnectionAborted,
            "dropped by simulator",
        ),
    )));
    warp::reply::stream(failing).into_response()
}
