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
    pub(crate) counters: AtomicCounters,
    pub(crate) verify_key: Option<auth::VerifyKey>,
    state: Mutex<State>,
}

impl Shared {
    pub(crate) fn new(config: SimConfig, snapshot: TenantSnapshot) -> Result<Self, SimError> {
        let verify_key = match &config.client_certificate_pem {
            Some(pem) => Some(auth::VerifyKey::from_pem(pem).map_err(SimError::Config)?),
            None => None,
        };
        let state = State::new(&config, snapshot).map_err(SimError::Snapshot)?;
        Ok(Self {
            config,
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
        .and(warp::body::bytes())
        .and(warp::any().map(move || Arc::clone(&shared)))
        .then(
            |method: Method,
             path: warp::path::FullPath,
             query: String,
             headers: HeaderMap,
             body: Bytes,
             shared: Arc<Shared>| async move {
                let in_flight = carries_write(&method, path.as_str(), &body)
                    .then(|| WriteInFlight::new(&shared));
                // Graph finishes a request it received even if the client goes away: the
                // work runs in its own task, which a dropped connection does not cancel.
                let path = path.as_str().to_owned();
                let answer = tokio::spawn(async move {
                    let answer = handle(shared, method, &path, &query, &headers, body).await;
                    drop(in_flight);
                    answer
                })
                .await;
                answer.unwrap_or_else(|_| {
                    to_warp(Resp::error(500, "UnknownError", "The simulator failed."))
                })
            },
        )
        .recover(|_| async {
            // The catch-all route rejects only bodies it could not read.
            let resp = Resp::error(400, "BadRequest", "The request could not be read.")
                .finish("00000000-0000-0000-0000-000000000000", "");
            Ok::<_, Infallible>(to_warp(resp))
        })
        .unify()
}

/// Counts a write request from when it arrives until it is answered (or abandoned).
struct WriteInFlight(Arc<Shared>);

impl WriteInFlight {
    fn new(shared: &Arc<Shared>) -> Self {
        shared
            .counters
            .writes_in_flight
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Self(Arc::clone(shared))
    }
}

impl Drop for WriteInFlight {
    fn drop(&mut self) {
        self.0
            .counters
            .writes_in_flight
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Whether a request asks Graph to change something: a POST, PATCH, PUT or DELETE under
/// `/v1.0`, or a `$batch` with such an item (a batch of reads is not a write).
fn carries_write(method: &Method, path: &str, body: &Bytes) -> bool {
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
    if *method == Method::GET || !path.starts_with("/v1.0/") {
        return false;
    }
    if path.trim_end_matches('/') != "/v1.0/$batch" {
        return true;
    }
    serde_json::from_slice::<Batch>(body).is_ok_and(|batch| {
        batch
            .requests
            .iter()
            .any(|item| !item.method.eq_ignore_ascii_case("GET"))
    })
}

async fn handle(
    shared: Arc<Shared>,
    method: Method,
    path: &str,
    raw_query: &str,
    headers: &HeaderMap,
    body: Bytes,
) -> warp::reply::Response {
    AtomicCounters::bump(&shared.counters.http_requests);
    if shared.config.latency_ms > 0 {
        tokio::time::sleep(Duration::from_millis(shared.config.latency_ms)).await;
    }
    let (request_id, drop) = {
        let mut state = shared.lock();
        let drop = shared.config.drop_rate > 0.0 && state.rng.f64() < shared.config.drop_rate;
        (state.new_guid(), drop)
    };
    if drop {
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
    let origin = format!(
        "http://{}",
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
        body,
        origin,
    };
    let resp = route(&shared, &mut req);
    to_warp(resp.finish(&request_id, &client_request_id))
}

fn route(shared: &Shared, req: &mut Req) -> Resp {
    let tenant = &shared.config.tenant_id;
    let segs: Vec<&str> = req.segments.iter().map(String::as_str).collect();
    match segs.as_slice() {
        [t, "oauth2", "v2.0", "token"] => {
            AtomicCounters::bump(&shared.counters.token_requests);
            if *t != tenant.as_str() {
                return auth::tenant_not_found(t);
            }
            auth::token_endpoint(shared, req)
        }
        ["msi", "token"] | ["MSI", "token"] => {
            AtomicCounters::bump(&shared.counters.token_requests);
            auth::managed_identity(shared, req)
        }
        ["v1.0", ..] => {
            req.segments.remove(0);
            if let Err(resp) = auth::check_bearer(shared, req) {
                AtomicCounters::bump(&shared.counters.unauthorized);
                return resp;
            }
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
        _ => Resp::error(
            404,
            "NotFound",
            "The simulator serves Graph under /v1.0, tokens under /{tenant}/oauth2/v2.0/token and managed identity under /msi/token.",
        ),
    }
}

/// One Graph operation: counted, throttled, maybe faulted, then answered from the tenant.
pub(crate) fn operation(shared: &Shared, state: &mut State, req: &Req) -> Resp {
    AtomicCounters::bump(&shared.counters.graph_operations);
    if let Some(wait) = state.throttle(shared.config.throttle_rps) {
        AtomicCounters::bump(&shared.counters.throttled);
        return throttled(wait);
    }
    let fault = if shared.config.fault_rate > 0.0 && state.rng.f64() < shared.config.fault_rate {
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

/// Graph's throttling answer (see throttling.example1.json); `Retry-After` in fractional
/// seconds as Graph sometimes sends it, so that tests need not wait whole seconds.
pub(crate) fn throttled(wait: Duration) -> Resp {
    let secs = wait.as_secs_f64().max(0.001);
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
    .with_header("Retry-After", format!("{secs:.3}"))
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
