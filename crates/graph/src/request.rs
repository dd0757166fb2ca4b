//! The private request helpers every Graph answer passes through: authentication, the
//! concurrency limit, counting, retries, paging, and turning a non-2xx into a typed error.

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use reqwest::Method;
use reqwest::header::HeaderMap;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::auth::new_guid;
use super::batch::SubRequest;
use super::error::{GraphError, StatusError};
use super::invitations::decode_body;
use super::retry::parse_retry_after;
use super::{Counters, GraphClient};

/// A successful answer.
pub(crate) struct RawResponse {
    pub(crate) body: Vec<u8>,
}

/// One page of a collection. `value` is required: a page without it (`{}`) is an answer
/// Graph never gives for a collection, and reading it as "no items" could turn a broken
/// answer into "nobody holds this package" and so into removals.
#[derive(Deserialize)]
pub(crate) struct Page<T> {
    pub(crate) value: Vec<T>,
    #[serde(default, rename = "@odata.nextLink")]
    pub(crate) next_link: Option<String>,
}

/// Whether resending a request after an unclear failure could make a change twice.
pub(crate) fn is_idempotent(method: &Method) -> bool {
    method != Method::POST
}

/// The `Retry-After` of an answer, if it has a readable one.
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<std::time::Duration> {
    headers
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| parse_retry_after(value, SystemTime::now()))
}

/// A request's path without its query, which may hold people's addresses (`$filter`).
fn path_only(path: &str) -> &str {
    path.split('?').next().unwrap_or_default()
}

/// Statuses worth another try for any method: Graph did not process the request.
pub(crate) fn is_throttle_status(status: u16) -> bool {
    matches!(status, 429 | 503)
}

/// Statuses worth another try only when a second attempt cannot make a change twice: the
/// request may have been carried out although the answer says it failed (a gateway timeout
/// loses the answer, not the work), so a write that got one is left to the caller, which
/// reads whether the change was made (`crate::writes`).
pub(crate) fn is_fault_status(status: u16) -> bool {
    matches!(status, 500 | 502 | 504)
}

impl GraphClient {
    /// The path of `url` relative to the Graph base URL, for errors (never a host or token).
    pub(crate) fn relative<'a>(&self, url: &'a str) -> &'a str {
        url.strip_prefix(&self.inner.base_url).unwrap_or(url)
    }

    /// An absolute URL for a relative one (`/users?...`), or `url` itself when it is already
    /// absolute on the Graph host (a `@odata.nextLink`).
    ///
    /// A link to another host is refused: the bearer token must not leave Graph.
    fn absolute(&self, url: &str) -> Result<String, GraphError> {
        if url.starts_with('/') {
            Ok(format!("{}{url}", self.inner.base_url))
        } else if url.starts_with(&self.inner.base_url) {
            Ok(url.to_owned())
        } else {
            Err(GraphError::Config(format!(
                "refusing to follow a link outside the Graph base URL: {}",
                url.split('?').next().unwrap_or_default()
            )))
        }
    }

    /// Sends one request with retries; `operations` says how many Graph operations it holds
    /// (a `$batch` holds several) and `idempotent` whether a fault may be retried.
    pub(crate) async fn send(
        &self,
        method: Method,
        url: &str,
        body: Option<&serde_json::Value>,
        operations: u64,
        idempotent: bool,
    ) -> Result<RawResponse, GraphError> {
        let absolute = self.absolute(url)?;
        let path = self.relative(&absolute).to_owned();
        let policy = self.inner.retry;
        let counters = &self.inner.counters;
        let started = Instant::now();
        let mut attempt: u32 = 0;
        let mut refreshed = false;
        loop {
            attempt += 1;
            let token = self.inner.tokens.token().await?;
            let client_request_id = new_guid();
            let mut request = self
                .inner
                .http
                .request(method.clone(), &absolute)
                .bearer_auth(token.expose())
                .header("client-request-id", &client_request_id)
                .header("Accept", "application/json");
            if let Some(body) = body {
                request = request.json(body);
            }
            let outcome = {
                let _permit = self.permit().await?;
                Counters::add(&counters.http_requests, 1);
                Counters::add(&counters.operations, operations);
                match request.send().await {
                    Ok(response) => {
                        let status = response.status().as_u16();
                        let headers = response.headers().clone();
                        match response.bytes().await {
                            Ok(bytes) => Ok((status, headers, bytes.to_vec())),
                            Err(error) => Err(error),
                        }
                    }
                    Err(error) => Err(error),
                }
            };
            let (status, headers, bytes) = match outcome {
                Ok(answer) => answer,
                Err(error) => {
                    let connect = error.is_connect();
                    let error = GraphError::Transport {
                        method: method.to_string(),
                        path: path.clone(),
                        connect,
                        source: Arc::new(error.without_url()),
                    };
                    // A dropped POST may have been carried out: only the caller can tell.
                    if (connect || idempotent)
                        && let Some(delay) = policy.next_delay(attempt, started.elapsed(), None)
                    {
                        tracing::debug!(
                            method = %method,
                            path = path_only(&path),
                            attempt,
                            delay_ms = delay.as_millis(),
                            %error,
                            "Graph request failed; trying again"
                        );
                        Counters::add(&counters.retries, operations);
                        tokio::time::sleep(delay).await;
                        continue;
                    }
                    return Err(error);
                }
            };
            if (200..300).contains(&status) {
                return Ok(RawResponse { body: bytes });
            }
            let wait = retry_after(&headers);
            let header_request_id = headers
                .get("request-id")
                .and_then(|value| value.to_str().ok())
                .map(str::to_owned);
            let error = StatusError::from_body(
                method.as_str(),
                &path,
                status,
                &bytes,
                header_request_id,
                Some(client_request_id),
                wait,
            );
            if status == 401 && !refreshed {
                // An expired or revoked token: fetch a new one once and try again at once.
                refreshed = true;
                self.inner.tokens.invalidate(&token).await;
                Counters::add(&counters.retries, operations);
                attempt -= 1;
                continue;
            }
            let delay = match wait {
                // Not an attempt used up (see `RetryPolicy::delay_after_throttle`).
                Some(wait) if is_throttle_status(status) => {
                    attempt -= 1;
                    let delay = policy.delay_after_throttle(started.elapsed(), wait);
                    if let Some(delay) = delay {
                        // Before counting the throttle, so whoever sees the count sees the
                        // pause.
                        self.pause(delay);
                    }
                    delay
                }
                _ if is_throttle_status(status) || (idempotent && is_fault_status(status)) => {
                    policy.next_delay(attempt, started.elapsed(), wait)
                }
                _ => None,
            };
            if status == 429 {
                Counters::add(&counters.throttled, 1);
            }
            if let Some(delay) = delay {
                tracing::debug!(
                    method = %method,
                    path = path_only(&path),
                    status,
                    request_id = error.request_id.as_deref(),
                    attempt,
                    delay_ms = delay.as_millis(),
                    "Graph answered {status}; trying again"
                );
                Counters::add(&counters.retries, operations);
                tokio::time::sleep(delay).await;
                continue;
            }
            return Err(GraphError::Status(Box::new(error)));
        }
    }

    /// Decodes a JSON body, naming the request on failure.
    pub(crate) fn decode<T: DeserializeOwned>(
        method: &str,
        path: &str,
        body: &[u8],
    ) -> Result<T, GraphError> {
        serde_json::from_slice(body).map_err(|source| GraphError::Decode {
            method: method.to_owned(),
            path: path.to_owned(),
            source: Arc::new(source),
        })
    }

    /// `GET` one object.
    pub(crate) async fn get_json<T: DeserializeOwned>(&self, url: &str) -> Result<T, GraphError> {
        let response = self.send(Method::GET, url, None, 1, true).await?;
        Self::decode("GET", self.relative(url), &response.body)
    }

    /// `GET` a collection, following `@odata.nextLink` to the end.
    pub(crate) async fn get_all<T: DeserializeOwned>(
        &self,
        url: &str,
    ) -> Result<Vec<T>, GraphError> {
        let first: Page<T> = self.get_json(url).await?;
        self.rest_of(first).await
    }

    /// Every item of the lists at `urls` (each a collection under `path`, with its own
    /// query): the first pages fetched together through `$batch`, each list then followed
    /// to its last page, items in the order of `urls`.
    ///
    /// # Errors
    ///
    /// The first page that failed after retries.
    pub(crate) async fn list_each<T: DeserializeOwned>(
        &self,
        path: &str,
        urls: impl IntoIterator<Item = String>,
    ) -> Result<Vec<T>, GraphError> {
        let requests = urls.into_iter().map(SubRequest::get).collect();
        let mut items = Vec::new();
        for answer in self.batch(requests).await {
            let page: Page<T> = decode_body("GET", path, answer?.body)?;
            items.extend(self.rest_of(page).await?);
        }
        Ok(items)
    }

    /// The items of `page` and of every page after it.
    pub(crate) async fn rest_of<T: DeserializeOwned>(
        &self,
        page: Page<T>,
    ) -> Result<Vec<T>, GraphError> {
        let mut items = page.value;
        let mut next = page.next_link;
        while let Some(link) = next {
            let page: Page<T> = self.get_json(&link).await?;
            items.extend(page.value);
            next = page.next_link;
        }
        Ok(items)
    }

    /// `PATCH` a JSON body (Graph answers 204).
    pub(crate) async fn patch(
        &self,
        url: &str,
        body: &serde_json::Value,
    ) -> Result<(), GraphError> {
        self.send(Method::PATCH, url, Some(body), 1, true).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use enroll_core::tenant::Assignment;

    #[test]
    fn a_page_without_value_is_an_error_not_an_empty_list() {
        let error = GraphClient::decode::<Page<Assignment>>(
            "GET",
            "/identityGovernance/entitlementManagement/assignments",
            b"{}",
        )
        .err()
        .expect("a page without value must not read as no assignments");
        assert!(matches!(error, GraphError::Decode { .. }), "{error}");
        assert!(error.to_string().contains("value"), "{error}");
        let empty: Page<Assignment> = GraphClient::decode("GET", "/x", br#"{"value":[]}"#).unwrap();
        assert!(empty.value.is_empty() && empty.next_link.is_none());
    }
}
