//! The `Api` function: enroll's HTTP API ([`enroll_api::Api`]) behind the Functions host.
//!
//! host.json sets `enableForwardingHttpRequest`, so the host sends an HTTP function's request
//! itself, at its own path (`/api/...`, functions.md §1.9), after checking the function key,
//! and passes the handler's answer back as it is. This filter only turns warp's request into
//! `http::Request<Bytes>` and the API's answer into warp's; every rule is the API's. The
//! invocation routes (`POST /{Function}`) never see `/api/...`: their paths have one segment.

use std::sync::Arc;

use bytes::Bytes;
use futures_util::StreamExt as _;
use warp::Filter;
use warp::http::{HeaderMap, Method, Request};
use warp::path::FullPath;
use warp::reply::Response;

use enroll_api::{Api, KeySource};
use enroll_graph::Directory;

/// The API's routes: every request whose path starts with `/api/`.
pub fn routes<D: Directory, K: KeySource + 'static>(
    api: Arc<Api<D, K>>,
) -> impl Filter<Extract = (Response,), Error = warp::Rejection> + Clone {
    let query = warp::query::raw().or(warp::any().map(String::new)).unify();
    warp::path("api")
        .and(warp::method())
        .and(warp::path::full())
        .and(query)
        .and(warp::header::headers_cloned())
        .and(warp::body::stream())
        .and(warp::any().map(move || Arc::clone(&api)))
        .then(
            |method: Method,
             path: FullPath,
             query: String,
             headers: HeaderMap,
             body,
             api: Arc<Api<D, K>>| async move {
                let bytes = match read_limited(body, api.max_body_bytes()).await {
                    Ok(bytes) => bytes,
                    Err(Cut::TooLarge) => return into_warp(api.too_large()),
                    Err(Cut::Broken) => {
                        return into_warp(
                            enroll_api::Rejection::BadRequest(
                                "the body could not be read to its end".into(),
                            )
                            .response(),
                        );
                    }
                };
                let uri = if query.is_empty() {
                    path.as_str().to_owned()
                } else {
                    format!("{}?{query}", path.as_str())
                };
                let mut request = Request::new(bytes);
                *request.method_mut() = method;
                *request.headers_mut() = headers;
                match uri.parse() {
                    Ok(uri) => *request.uri_mut() = uri,
                    Err(_) => {
                        return into_warp(
                            enroll_api::Rejection::BadRequest("the URL cannot be read".into())
                                .response(),
                        );
                    }
                }
                into_warp(api.handle(request).await)
            },
        )
}

/// Why a body was not read whole.
enum Cut {
    /// It passed the limit (the rest is not read).
    TooLarge,
    /// The connection broke.
    Broken,
}

/// The body, up to `limit` bytes.
async fn read_limited<S, B>(body: S, limit: usize) -> Result<Bytes, Cut>
where
    S: futures_util::Stream<Item = Result<B, warp::Error>>,
    B: warp::Buf,
{
    let mut body = std::pin::pin!(body);
    let mut collected = Vec::new();
    while let Some(chunk) = body.next().await {
        let mut chunk = chunk.map_err(|_| Cut::Broken)?;
        if collected.len() + chunk.remaining() > limit {
            return Err(Cut::TooLarge);
        }
        while chunk.has_remaining() {
            let part = chunk.chunk();
            collected.extend_from_slice(part);
            let taken = part.len();
            chunk.advance(taken);
        }
    }
    Ok(Bytes::from(collected))
}

fn into_warp(response: warp::http::Response<Bytes>) -> Response {
    let (parts, body) = response.into_parts();
    Response::from_parts(parts, body.into())
}
