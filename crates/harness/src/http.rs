//! The host's HTTP front for HTTP-triggered functions, as the host runs it with
//! `enableForwardingHttpRequest` (functions.md §1.9; azure-functions-host
//! `DefaultHttpWorkerService.ProcessHttpInAndOutInvocationRequest` and
//! `HttpRequestExtensions.ToHttpRequestMessage`):
//!
//! - a request to `/{routePrefix}/…` goes to the HTTP function whose route template matches
//!   and whose `methods` hold the method; otherwise 404 with no body;
//! - `authLevel: function` wants a key, in the `code` query parameter or the
//!   `x-functions-key` header; without a right one the host answers 401 with no body;
//! - the request is then sent to the handler at the **same path** (`/api/…`), with the
//!   query rebuilt from its parameters (a repeated name's values joined by commas, the
//!   `code` key included), every header copied, and the body only when `Content-Length` is
//!   above 0 (a chunked body is dropped, as the host drops it), plus
//!   `X-Azure-Functions-HostVersion`, `X-Azure-Functions-InvocationId` and the host's
//!   `User-Agent`; redirects are not followed;
//! - the handler's answer goes back to the caller as it is: status, headers and body.
//!
//! Bodies over the front end's limit (100 MB) get 413.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use bytes::Bytes;
use warp::Filter;
use warp::http::{HeaderMap, HeaderValue, Method, StatusCode};
use warp::path::FullPath;

use crate::{Harness, HarnessError};

/// The host version the front end announces, in the host's form.
pub const HOST_VERSION: &str = "4.1040.300.25317";

/// The Functions front end's request body limit (104,857,600 bytes).
pub const MAX_REQUEST_BYTES: u64 = 100 * 1024 * 1024;

/// An HTTP function as the front end routes it.
#[derive(Debug, Clone)]
struct HttpRoute {
    /// Route template segments (`{*path}`, `{id}` or literals).
    template: Vec<String>,
    /// Allowed methods, upper case; empty for all.
    methods: Vec<String>,
    /// Whether a key is needed (`function` or `admin`).
    needs_key: bool,
}

/// The running front end: where to send requests.
#[derive(Debug)]
pub struct HttpFront {
    address: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl HttpFront {
    /// The front end's base URL, e.g. `http://127.0.0.1:41234`.
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }
}

impl Drop for HttpFront {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Harness {
    /// Serves the app's HTTP functions on a free loopback port, forwarding to the handler
    /// as the host does; `keys` are the function and host keys it accepts.
    ///
    /// # Errors
    /// [`HarnessError::Handler`] when no port can be bound.
    pub async fn serve_http(&self, keys: Vec<String>) -> Result<HttpFront, HarnessError> {
        let prefix = self
            .host
            .extensions
            .http
            .as_ref()
            .and_then(|http| http.route_prefix.clone())
            .unwrap_or_else(|| "api".to_owned());
        let routes: Vec<HttpRoute> = self
            .functions
            .iter()
            .filter_map(|function| {
                let trigger = function.trigger()?;
                trigger.kind.eq_ignore_ascii_case("httpTrigger").then(|| {
                    let route = trigger
                        .route
                        .clone()
                        .unwrap_or_else(|| function.name.clone());
                    HttpRoute {
                        template: prefix
                            .split('/')
                            .chain(route.split('/'))
                            .filter(|s| !s.is_empty())
                            .map(str::to_owned)
                            .collect(),
                        methods: trigger
                            .methods
                            .iter()
                            .map(|m| m.to_ascii_uppercase())
                            .collect(),
                        needs_key: !trigger
                            .auth_level
                            .as_deref()
                            .is_some_and(|level| level.eq_ignore_ascii_case("anonymous")),
                    }
                })
            })
            .collect();
        let handler = self.handler_url();
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|error| HarnessError::Handler(error.to_string()))?;
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .map_err(|error| {
                HarnessError::Handler(format!("cannot bind the front end: {error}"))
            })?;
        let address = listener
            .local_addr()
            .map_err(|error| HarnessError::Handler(error.to_string()))?;
        let query = warp::query::raw().or(warp::any().map(String::new)).unify();
        let front = warp::method()
            .and(warp::path::full())
            .and(query)
            .and(warp::header::headers_cloned())
            .and(warp::body::bytes())
            .then(
                move |method: Method,
                      path: FullPath,
                      query: String,
                      headers: HeaderMap,
                      body: Bytes| {
                    let routes = routes.clone();
                    let keys = keys.clone();
                    let handler = handler.clone();
                    let http = http.clone();
                    async move {
                        forward(
                            &routes,
                            &keys,
                            &handler,
                            &http,
                            method,
                            path.as_str(),
                            &query,
                            headers,
                            body,
                        )
                        .await
                    }
                },
            )
            .recover(|_: warp::Rejection| async move {
                Ok::<_, std::convert::Infallible>(empty(StatusCode::BAD_REQUEST))
            })
            .unify();
        let task = tokio::spawn(async move {
            warp::serve(front).incoming(listener).run().await;
        });
        Ok(HttpFront { address, task })
    }
}

fn empty(status: StatusCode) -> warp::reply::Response {
    let mut response = warp::reply::Response::new(Bytes::new().into());
    *response.status_mut() = status;
    response
}

/// Whether a route template (`api`, `{*path}`) matches a path's segments.
fn matches(template: &[String], segments: &[&str]) -> bool {
    let mut path = segments.iter();
    for (index, part) in template.iter().enumerate() {
        if part.starts_with("{*") {
            return index < template.len() && path.next().is_some();
        }
        match path.next() {
            Some(segment) if part.starts_with('{') => {
                if segment.is_empty() {
                    return false;
                }
            }
            Some(segment) if segment.eq_ignore_ascii_case(part) => {}
            _ => return false,
        }
    }
    path.next().is_none()
}

/// The path as .NET's `Uri.AbsolutePath` gives it: `.` and `..` segments resolved.
fn absolute_path(path: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for segment in path.split('/').skip(1) {
        match segment {
            "." => {}
            ".." => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    format!("/{}", out.join("/"))
}

/// The query as the host rebuilds it: parameters decoded, a repeated name's values joined
/// by commas, then encoded again.
fn rebuilt_query(query: &str) -> (String, BTreeMap<String, String>) {
    let mut values: Vec<(String, String)> = Vec::new();
    for (name, value) in form_urlencoded::parse(query.as_bytes()) {
        match values
            .iter_mut()
            .find(|(known, _)| known.eq_ignore_ascii_case(&name))
        {
            Some((_, joined)) => {
                joined.push(',');
                joined.push_str(&value);
            }
            None => values.push((name.into_owned(), value.into_owned())),
        }
    }
    // ASP.NET's UrlEncoder leaves only letters, digits and `-._~` as they are.
    const ENCODED: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~');
    let text = values
        .iter()
        .map(|(name, value)| {
            format!(
                "{}={}",
                percent_encoding::utf8_percent_encode(name, ENCODED),
                percent_encoding::utf8_percent_encode(value, ENCODED)
            )
        })
        .collect::<Vec<_>>()
        .join("&");
    (text, values.into_iter().collect())
}

#[allow(clippy::too_many_arguments)]
async fn forward(
    routes: &[HttpRoute],
    keys: &[String],
    handler: &str,
    http: &reqwest::Client,
    method: Method,
    raw_path: &str,
    query: &str,
    headers: HeaderMap,
    body: Bytes,
) -> warp::reply::Response {
    let declared = headers
        .get(warp::http::header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared.unwrap_or(body.len() as u64) > MAX_REQUEST_BYTES {
        return empty(StatusCode::PAYLOAD_TOO_LARGE);
    }
    let path = absolute_path(raw_path);
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    let Some(route) = routes.iter().find(|route| {
        matches(&route.template, &segments)
            && (route.methods.is_empty() || route.methods.iter().any(|m| m == method.as_str()))
    }) else {
        return empty(StatusCode::NOT_FOUND);
    };
    let (query, parameters) = rebuilt_query(query);
    if route.needs_key {
        let given = parameters
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case("code"))
            .map(|(_, value)| value.as_str())
            .or_else(|| {
                headers
                    .get("x-functions-key")
                    .and_then(|value| value.to_str().ok())
            });
        if !given.is_some_and(|given| keys.iter().any(|key| key == given)) {
            return empty(StatusCode::UNAUTHORIZED);
        }
    }
    let url = if query.is_empty() {
        format!("{handler}{path}")
    } else {
        format!("{handler}{path}?{query}")
    };
    let length = declared.unwrap_or(0);
    let mut forwarded = HeaderMap::new();
    for (name, value) in &headers {
        // reqwest frames the body itself; the host's HttpClient does the same.
        if [
            "content-length",
            "transfer-encoding",
            "connection",
            "host",
            "user-agent",
        ]
        .contains(&name.as_str())
        {
            continue;
        }
        if length == 0 && name == warp::http::header::CONTENT_TYPE {
            continue;
        }
        forwarded.append(name.clone(), value.clone());
    }
    let agent = match headers.get(warp::http::header::USER_AGENT) {
        Some(agent) => format!(
            "{} Azure-Functions-Host/{HOST_VERSION}",
            agent.to_str().unwrap_or_default()
        ),
        None => format!("Azure-Functions-Host/{HOST_VERSION}"),
    };
    if let Ok(agent) = HeaderValue::from_str(agent.trim()) {
        forwarded.insert(warp::http::header::USER_AGENT, agent);
    }
    forwarded.insert(
        "x-azure-functions-hostversion",
        HeaderValue::from_static(HOST_VERSION),
    );
    let invocation = format!("{:032x}", fastrand::u128(..));
    let invocation = format!(
        "{}-{}-{}-{}-{}",
        &invocation[..8],
        &invocation[8..12],
        &invocation[12..16],
        &invocation[16..20],
        &invocation[20..]
    );
    if let Ok(value) = HeaderValue::from_str(&invocation) {
        forwarded.insert("x-azure-functions-invocationid", value);
    }
    let mut request = http.request(method, &url).headers(forwarded);
    if length > 0 {
        request = request.body(body);
    }
    let answer = match request.send().await {
        Ok(answer) => answer,
        // The host answers 500 when the handler cannot be reached.
        Err(_) => return empty(StatusCode::INTERNAL_SERVER_ERROR),
    };
    let status = answer.status();
    let headers = answer.headers().clone();
    let bytes = answer.bytes().await.unwrap_or_default();
    let mut response = warp::reply::Response::new(bytes.into());
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template(route: &str) -> Vec<String> {
        route.split('/').map(str::to_owned).collect()
    }

    #[test]
    fn routes_match_like_the_host() {
        let catch_all = template("api/{*path}");
        assert!(matches(&catch_all, &["api", "rosters", "a.csv"]));
        assert!(matches(&catch_all, &["API", "health"]));
        assert!(!matches(&catch_all, &["api"]));
        assert!(!matches(&catch_all, &["Plan"]));
        let fixed = template("api/runs/{id}");
        assert!(matches(&fixed, &["api", "runs", "r1"]));
        assert!(!matches(&fixed, &["api", "runs"]));
        assert!(!matches(&fixed, &["api", "runs", "r1", "x"]));
    }

    #[test]
    fn paths_and_queries_are_rebuilt_like_the_host() {
        assert_eq!(absolute_path("/api/rosters/../x.csv"), "/api/x.csv");
        assert_eq!(absolute_path("/api/./health"), "/api/health");
        assert_eq!(absolute_path("/api/a%2F..%2Fb.csv"), "/api/a%2F..%2Fb.csv");
        let (query, parameters) = rebuilt_query("a=1&code=k&A=2&roster=Key%20Users.csv");
        assert_eq!(query, "a=1%2C2&code=k&roster=Key%20Users.csv");
        assert_eq!(parameters["code"], "k");
    }
}
