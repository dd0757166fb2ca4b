//! The AWS Lambda adapter of enroll's HTTP API: `lambda_http` turns each event (API
//! Gateway REST or HTTP API, a function URL, an ALB) into an `http::Request`; [`respond`]
//! hands it to [`enroll_api::Api`] and gives the answer back, and `lambda_http` writes it in
//! the shape the event's source expects. No business rule lives here.
//!
//! Like the Functions side, the API stores rosters and queues reconciles in Azure Storage
//! (`AzureWebJobsStorage`), so the Functions pipeline does the work; it reads the tenant
//! through Graph only to plan (`POST /api/plan`).

use bytes::Bytes;
use enroll_api::{Api, KeySource};
use enroll_graph::Directory;
use lambda_http::http::{Request, Response, Uri, header};
use lambda_http::request::RequestContext;
use lambda_http::{Body, RequestExt as _};

/// Answers one Lambda HTTP request with the API.
///
/// Bodies are passed on as bytes (a roster may be Windows-1252 or UTF-16); answers that are
/// JSON go back as text, a roster's bytes as binary (base64 in the event's answer).
pub async fn respond<D: Directory, K: KeySource>(
    api: &Api<D, K>,
    request: lambda_http::Request,
) -> Response<Body> {
    let path = api_path(&request);
    let (mut parts, body) = request.into_parts();
    let uri = match parts.uri.query() {
        Some(query) => format!("{path}?{query}"),
        None => path,
    };
    if let Ok(uri) = uri.parse::<Uri>() {
        parts.uri = uri;
    }
    let bytes = match body {
        Body::Text(text) => Bytes::from(text),
        Body::Binary(bytes) => Bytes::from(bytes),
        _ => Bytes::new(),
    };
    if bytes.len() > api.max_body_bytes() {
        return into_lambda(api.too_large());
    }
    into_lambda(api.handle(Request::from_parts(parts, bytes)).await)
}

/// The request's path as the caller sent it, without an API Gateway stage (`/prod/api/plan`
/// is `/api/plan`): the API answers under any stage, and on a function URL or an ALB.
fn api_path(request: &lambda_http::Request) -> String {
    let raw = match request.raw_http_path() {
        "" => request.uri().path(),
        raw => raw,
    };
    let stage = match request.request_context_ref() {
        Some(RequestContext::ApiGatewayV1(context)) => context.stage.as_deref(),
        Some(RequestContext::ApiGatewayV2(context)) => context.stage.as_deref(),
        _ => None,
    };
    match stage
        .filter(|stage| *stage != "$default")
        .and_then(|stage| raw.strip_prefix(&format!("/{stage}")))
        .filter(|rest| rest.starts_with('/'))
    {
        Some(rest) => rest.to_owned(),
        None => raw.to_owned(),
    }
}

fn into_lambda(response: Response<Bytes>) -> Response<Body> {
    let (parts, body) = response.into_parts();
    let json = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.contains("json"));
    let body = match (json, String::from_utf8(body.to_vec())) {
        (true, Ok(text)) => Body::Text(text),
        (_, Ok(_)) | (_, Err(_)) => Body::Binary(body.to_vec()),
    };
    Response::from_parts(parts, body)
}
