//! `POST /v1.0/$batch`: JSON batching with Graph's limits, `dependsOn`, per-item status,
//! per-item throttling, and answers in an order that is not the request order.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};
use warp::hyper::body::Bytes;

use super::http::{self, Req, Resp, Shared};

/// Graph's limit of requests in one batch.
pub(crate) const MAX_BATCH: usize = 20;

const METHODS: &[&str] = &["GET", "POST", "PATCH", "PUT", "DELETE"];

fn bad(message: &str) -> Resp {
    Resp::error(400, "BadRequest", message)
}

pub(crate) fn run(shared: &Shared, req: &Req) -> Resp {
    let body = match req.json_body() {
        Ok(body) => body,
        Err(resp) => return resp,
    };
    let Some(requests) = body.get("requests").and_then(Value::as_array) else {
        return bad("Invalid batch payload format: the body must have a 'requests' array.");
    };
    if let Some(key) = body
        .as_object()
        .and_then(|o| o.keys().find(|k| k.as_str() != "requests"))
    {
        return bad(&format!(
            "Invalid batch payload format: unknown property '{key}'."
        ));
    }
    if requests.is_empty() {
        return bad("Invalid batch payload format: 'requests' is empty.");
    }
    if requests.len() > MAX_BATCH {
        return bad(&format!(
            "Number of requests in a batch exceeds the limit of {MAX_BATCH} ({} sent).",
            requests.len()
        ));
    }
    // Validate the whole envelope before running anything: Graph refuses it as one.
    let mut seen = BTreeSet::new();
    let mut items = Vec::with_capacity(requests.len());
    for (index, item) in requests.iter().enumerate() {
        let item = match parse_item(item, index, &seen) {
            Ok(item) => item,
            Err(resp) => return resp,
        };
        seen.insert(item.id.to_ascii_lowercase());
        items.push(item);
    }

    let mut outcomes: BTreeMap<String, u16> = BTreeMap::new();
    let mut responses = Vec::with_capacity(items.len());
    {
        let mut state = shared.lock();
        for item in &items {
            let failed_dependency = item.depends_on.iter().find(|d| {
                outcomes
                    .get(&d.to_ascii_lowercase())
                    .is_none_or(|status| !(200..300).contains(status))
            });
            let resp = if let Some(dep) = failed_dependency {
                Resp::error(
                    424,
                    "FailedDependency",
                    &format!("Dependent request '{dep}' failed, so this request was not run."),
                )
            } else {
                match item_request(req, item) {
                    Ok(sub) => http::operation(shared, &mut state, &sub),
                    Err(resp) => resp,
                }
            };
            let request_id = state.new_guid();
            let resp = resp.finish(&request_id, &request_id);
            outcomes.insert(item.id.to_ascii_lowercase(), resp.status);
            let headers: serde_json::Map<String, Value> = resp
                .headers
                .iter()
                .filter(|(name, _)| {
                    !name.eq_ignore_ascii_case("request-id")
                        && !name.eq_ignore_ascii_case("client-request-id")
                })
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .collect();
            let mut out = json!({ "id": item.id, "status": resp.status, "headers": headers });
            if let (Some(body), Some(obj)) = (resp.body, out.as_object_mut()) {
                obj.insert("body".to_owned(), body);
            }
            responses.push(out);
        }
        // Graph does not keep the request order; clients must correlate by id.
        state.rng.shuffle(&mut responses);
    }
    Resp::json(200, json!({ "responses": responses }))
}

#[derive(Debug)]
struct Item {
    id: String,
    method: String,
    url: String,
    headers: BTreeMap<String, String>,
    body: Option<Value>,
    depends_on: Vec<String>,
}

fn parse_item(item: &Value, index: usize, seen: &BTreeSet<String>) -> Result<Item, Resp> {
    let Some(obj) = item.as_object() else {
        return Err(bad(&format!(
            "Request {index} in the batch is not an object."
        )));
    };
    // Graph ignores other keys of an item, such as the `depends_on` the Python SDK writes
    // (which therefore orders nothing).
    let id = match obj.get("id") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        _ => return Err(bad(&format!("Request {index} in the batch has no id."))),
    };
    if seen.contains(&id.to_ascii_lowercase()) {
        return Err(bad(&format!(
            "Batch request ids must be unique; '{id}' is used twice."
        )));
    }
    let method = obj
        .get("method")
        .and_then(Value::as_str)
        .map(str::to_ascii_uppercase)
        .filter(|m| METHODS.contains(&m.as_str()))
        .ok_or_else(|| {
            bad(&format!(
                "Request '{id}' has a missing or unsupported method."
            ))
        })?;
    let url = obj
        .get("url")
        .and_then(Value::as_str)
        .ok_or_else(|| bad(&format!("Request '{id}' has no url.")))?
        .to_owned();
    let mut headers = BTreeMap::new();
    if let Some(h) = obj.get("headers") {
        let Some(h) = h.as_object() else {
            return Err(bad(&format!(
                "Request '{id}' has headers that are not an object."
            )));
        };
        for (k, v) in h {
            let Some(v) = v.as_str() else {
                return Err(bad(&format!(
                    "Header '{k}' of request '{id}' is not a string."
                )));
            };
            headers.insert(k.to_ascii_lowercase(), v.to_owned());
        }
    }
    let body = obj.get("body").cloned();
    if body.is_some() && !headers.contains_key("content-type") {
        return Err(bad(&format!(
            "Request '{id}' has a body but no Content-Type header."
        )));
    }
    let mut depends_on = Vec::new();
    if let Some(deps) = obj.get("dependsOn") {
        let Some(deps) = deps.as_array() else {
            return Err(bad(&format!(
                "dependsOn of request '{id}' is not an array."
            )));
        };
        for d in deps {
            let Some(d) = d.as_str() else {
                return Err(bad(&format!(
                    "dependsOn of request '{id}' holds a non-string."
                )));
            };
            if !seen.contains(&d.to_ascii_lowercase()) {
                return Err(bad(&format!(
                    "Request '{id}' depends on '{d}', which is not an earlier request of the batch."
                )));
            }
            depends_on.push(d.to_owned());
        }
    }
    Ok(Item {
        id,
        method,
        url,
        headers,
        body,
        depends_on,
    })
}

/// The item as a request of its own, relative to `/v1.0`.
fn item_request(outer: &Req, item: &Item) -> Result<Req, Resp> {
    // The Python SDK's BatchRequestContent sends absolute URLs of the service the batch went
    // to; those are read as relative to it. Any other absolute URL is refused.
    let own = format!("{}/v1.0/", outer.origin);
    let url = match item.url.get(..own.len()) {
        Some(prefix) if prefix.eq_ignore_ascii_case(&own) => &item.url[own.len() - 1..],
        _ if item.url.contains("://") => {
            return Err(bad(
                "Batch request urls must be relative (for example /users), not absolute.",
            ));
        }
        _ => item.url.as_str(),
    };
    let (path, query) = url.split_once('?').unwrap_or((url, ""));
    let segments: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        })
        .collect();
    if segments.first().map(String::as_str) == Some("$batch") {
        return Err(bad("A batch cannot contain another batch."));
    }
    let query = form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let body = match &item.body {
        Some(v) => Bytes::from(serde_json::to_vec(v).unwrap_or_default()),
        None => Bytes::new(),
    };
    let mut headers = outer.headers.clone();
    headers.extend(item.headers.clone());
    Ok(Req {
        method: item.method.clone(),
        segments,
        query,
        headers,
        body,
        origin: outer.origin.clone(),
    })
}
