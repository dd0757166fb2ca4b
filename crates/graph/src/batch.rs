//! `$batch`: up to 20 requests per envelope, each answer handled on its own, and only the
//! throttled (or, for reads, failed) requests sent again, after the largest `Retry-After`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime};

use reqwest::Method;
use serde::Deserialize;
use serde_json::{Value, json};

use super::error::{GraphError, StatusError};
use super::request::{is_fault_status, is_idempotent, is_throttle_status};
use super::retry::parse_retry_after;
use super::{Counters, GraphClient, MAX_BATCH};

/// One request to put in a `$batch`.
#[derive(Debug, Clone)]
pub(crate) struct SubRequest {
    pub(crate) method: Method,
    /// Relative to the version root, e.g. `/users?$filter=...`.
    pub(crate) url: String,
    pub(crate) body: Option<Value>,
}

impl SubRequest {
    pub(crate) fn get(url: String) -> Self {
        SubRequest {
            method: Method::GET,
            url,
            body: None,
        }
    }

    pub(crate) fn with_body(method: Method, url: String, body: Value) -> Self {
        SubRequest {
            method,
            url,
            body: Some(body),
        }
    }

    pub(crate) fn delete(url: String) -> Self {
        SubRequest {
            method: Method::DELETE,
            url,
            body: None,
        }
    }
}

/// How long a chunk of less than a `$batch` waits for other callers' sub-requests to share
/// its envelope: a tenth of a typical Graph round trip.
const LINGER: Duration = Duration::from_millis(2);

/// How long, at most, a shared envelope waits beyond [`LINGER`] for the shared envelope of
/// its kind already in flight to be answered.
const MAX_HOLD: Duration = Duration::from_millis(250);

/// Counts a shared envelope in flight until dropped, then wakes those waiting on it.
struct InFlight<'c> {
    client: &'c GraphClient,
    kind: usize,
}

impl<'c> InFlight<'c> {
    fn new(client: &'c GraphClient, kind: usize) -> Self {
        client.inner.shared_in_flight[kind].fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Self { client, kind }
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        let inner = &self.client.inner;
        inner.shared_in_flight[self.kind].fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
        inner.shared_answered[self.kind].notify_waiters();
    }
}

/// A sub-request waiting for a shared envelope, with where its answer goes.
pub(crate) type Waiting = (
    SubRequest,
    tokio::sync::oneshot::Sender<Result<SubResponse, GraphError>>,
);

/// A successful answer to one batched request.
#[derive(Debug, Clone)]
pub(crate) struct SubResponse {
    pub(crate) body: Value,
}

#[derive(Deserialize)]
struct Envelope {
    #[serde(default)]
    responses: Vec<EnvelopeResponse>,
}

#[derive(Deserialize)]
struct EnvelopeResponse {
    id: String,
    status: u16,
    #[serde(default)]
    headers: Option<BTreeMap<String, Value>>,
    #[serde(default)]
    body: Option<Value>,
}

impl EnvelopeResponse {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .as_ref()?
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .and_then(|(_, value)| value.as_str())
    }
}

impl GraphClient {
    /// Runs `requests` through `$batch`, 20 per envelope, envelopes concurrently within the
    /// client's limit. Answers come back in the order of `requests`.
    pub(crate) async fn batch(
        &self,
        requests: Vec<SubRequest>,
    ) -> Vec<Result<SubResponse, GraphError>> {
        let total = requests.len();
        let mut chunks: Vec<Vec<(usize, SubRequest)>> = Vec::new();
        for (index, request) in requests.into_iter().enumerate() {
            match chunks.last_mut() {
                Some(chunk) if chunk.len() < MAX_BATCH => chunk.push((index, request)),
                _ => chunks.push(vec![(index, request)]),
            }
        }
        let mut tasks = tokio::task::JoinSet::new();
        let mut shared = Vec::new();
        for chunk in chunks {
            if chunk.len() < MAX_BATCH {
                shared.extend(self.share(chunk));
                continue;
            }
            let client = self.clone();
            tasks.spawn(async move { client.run_chunk(chunk).await });
        }
        let mut results: Vec<Option<Result<SubResponse, GraphError>>> = vec![None; total];
        for (index, answer) in shared {
            if let (Some(slot), Ok(answer)) = (results.get_mut(index), answer.await) {
                *slot = Some(answer);
            }
        }
        while let Some(joined) = tasks.join_next().await {
            // A panicking task leaves its slots empty; they are reported below.
            if let Ok(answers) = joined {
                for (index, answer) in answers {
                    if let Some(slot) = results.get_mut(index) {
                        *slot = Some(answer);
                    }
                }
            }
        }
        results
            .into_iter()
            .enumerate()
            .map(|(index, answer)| {
                answer.unwrap_or_else(|| {
                    Err(GraphError::MissingBatchResponse {
                        id: index.to_string(),
                        method: String::new(),
                        path: String::new(),
                    })
                })
            })
            .collect()
    }

    /// Hands a chunk of less than a `$batch` to the client's shared envelopes: sub-requests
    /// that concurrent callers hand over within [`LINGER`], or while the shared envelope of
    /// their kind sent before is unanswered, go out together, up to 20 to an
    /// envelope, so that many small lists of many callers (one package's reads, a step's
    /// few changes) cost few HTTP requests. Reads and writes share only with their kind,
    /// so an envelope is retried as it would be alone. Each answer comes back on its own
    /// channel, with the caller's index.
    fn share(
        &self,
        chunk: Vec<(usize, SubRequest)>,
    ) -> Vec<(
        usize,
        tokio::sync::oneshot::Receiver<Result<SubResponse, GraphError>>,
    )> {
        let mut receivers = Vec::with_capacity(chunk.len());
        let mut full = Vec::new();
        let mut start_timer = Vec::new();
        {
            let mut queues = self
                .inner
                .shared_batches
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            for (index, request) in chunk {
                let kind = usize::from(!is_idempotent(&request.method));
                let (sender, receiver) = tokio::sync::oneshot::channel();
                receivers.push((index, receiver));
                let queue = &mut queues[kind];
                if queue.is_empty() {
                    start_timer.push(kind);
                }
                queue.push((request, sender));
                if queue.len() == MAX_BATCH {
                    full.push(std::mem::take(queue));
                }
            }
        }
        for waiting in full {
            let client = self.clone();
            tokio::spawn(async move { client.run_shared(waiting).await });
        }
        for kind in start_timer {
            let client = self.clone();
            tokio::spawn(async move {
                tokio::time::sleep(LINGER).await;
                client.await_shared_answers(kind).await;
                let waiting = {
                    let mut queues = client
                        .inner
                        .shared_batches
                        .lock()
                        .unwrap_or_else(|e| e.into_inner());
                    std::mem::take(&mut queues[kind])
                };
                if !waiting.is_empty() {
                    let _in_flight = InFlight::new(&client, kind);
                    client.run_shared(waiting).await;
                }
            });
        }
        receivers
    }

    /// Waits, for at most [`MAX_HOLD`], until no shared envelope of `kind` is in flight: as
    /// with Nagle's algorithm, what callers hand over meanwhile goes out together when the
    /// answer comes, so concurrent callers whose small reads or writes arrive a few
    /// milliseconds apart (a Functions instance's invocations) fill envelopes instead of
    /// each sending its own; a caller alone, one list at a time, never waits here.
    async fn await_shared_answers(&self, kind: usize) {
        let deadline = tokio::time::Instant::now() + MAX_HOLD;
        let in_flight = &self.inner.shared_in_flight[kind];
        loop {
            let answered = self.inner.shared_answered[kind].notified();
            tokio::pin!(answered);
            answered.as_mut().enable();
            if in_flight.load(std::sync::atomic::Ordering::SeqCst) == 0 {
                return;
            }
            if tokio::time::timeout_at(deadline, answered).await.is_err() {
                return;
            }
        }
    }

    /// Sends one shared envelope and hands each answer to whoever is waiting for it.
    async fn run_shared(&self, waiting: Vec<Waiting>) {
        let (requests, senders): (Vec<SubRequest>, Vec<_>) = waiting.into_iter().unzip();
        let chunk: Vec<(usize, SubRequest)> = requests.into_iter().enumerate().collect();
        let mut senders: Vec<Option<_>> = senders.into_iter().map(Some).collect();
        for (index, answer) in self.run_chunk(chunk).await {
            if let Some(sender) = senders.get_mut(index).and_then(Option::take) {
                // A caller that stopped waiting no longer needs the answer.
                let _ = sender.send(answer);
            }
        }
    }

    /// One envelope's worth, with its own retries of throttled requests.
    async fn run_chunk(
        &self,
        chunk: Vec<(usize, SubRequest)>,
    ) -> Vec<(usize, Result<SubResponse, GraphError>)> {
        let policy = self.inner.retry;
        let counters = &self.inner.counters;
        let started = Instant::now();
        let mut attempt: u32 = 1;
        let mut pending = chunk;
        let mut done = Vec::with_capacity(pending.len());
        loop {
            let envelope = json!({
                "requests": pending.iter().map(|(index, request)| {
                    let mut item = json!({
                        "id": index.to_string(),
                        "method": request.method.as_str(),
                        "url": request.url,
                    });
                    if let Some(body) = &request.body {
                        item["body"] = body.clone();
                        item["headers"] = json!({"Content-Type": "application/json"});
                    }
                    item
                }).collect::<Vec<_>>()
            });
            let all_idempotent = pending
                .iter()
                .all(|(_, request)| is_idempotent(&request.method));
            let operations = u64::try_from(pending.len()).unwrap_or(u64::MAX);
            Counters::add(&counters.batches, 1);
            let answer = self
                .send(
                    Method::POST,
                    "/$batch",
                    Some(&envelope),
                    operations,
                    all_idempotent,
                )
                .await
                .and_then(|response| {
                    GraphClient::decode::<Envelope>("POST", "/$batch", &response.body)
                });
            let envelope = match answer {
                Ok(envelope) => envelope,
                Err(error) => {
                    done.extend(
                        pending
                            .into_iter()
                            .map(|(index, _)| (index, Err(error.clone()))),
                    );
                    return done;
                }
            };
            let mut by_id: BTreeMap<String, EnvelopeResponse> = envelope
                .responses
                .into_iter()
                .map(|response| (response.id.to_ascii_lowercase(), response))
                .collect();
            let mut again: Vec<(usize, SubRequest, GraphError)> = Vec::new();
            let mut longest_wait: Option<Duration> = None;
            // Whether every request to send again was throttled with a named wait, so that
            // trying again uses up no attempt (see `RetryPolicy::delay_after_throttle`).
            let mut all_named_throttles = true;
            let mut throttled: u64 = 0;
            for (index, request) in pending {
                let Some(response) = by_id.remove(&index.to_string()) else {
                    let error = GraphError::MissingBatchResponse {
                        id: index.to_string(),
                        method: request.method.to_string(),
                        path: request.url.clone(),
                    };
                    done.push((index, Err(error)));
                    continue;
                };
                let status = response.status;
                if (200..300).contains(&status) {
                    let body = response.body.unwrap_or(Value::Null);
                    done.push((index, Ok(SubResponse { body })));
                    continue;
                }
                if status == 429 {
                    throttled += 1;
                }
                let wait = response
                    .header("Retry-After")
                    .and_then(|value| parse_retry_after(value, SystemTime::now()));
                let body = response
                    .body
                    .as_ref()
                    .map(|body| body.to_string().into_bytes())
                    .unwrap_or_default();
                let error = GraphError::Status(Box::new(StatusError::from_body(
                    request.method.as_str(),
                    &request.url,
                    status,
                    &body,
                    response.header("request-id").map(str::to_owned),
                    response.header("client-request-id").map(str::to_owned),
                    wait,
                )));
                let retry = is_throttle_status(status)
                    || (is_idempotent(&request.method) && is_fault_status(status));
                if retry {
                    all_named_throttles &= is_throttle_status(status) && wait.is_some();
                    longest_wait = longest_wait.max(wait);
                    again.push((index, request, error));
                } else {
                    done.push((index, Err(error)));
                }
            }
            if again.is_empty() {
                Counters::add(&counters.throttled, throttled);
                return done;
            }
            let delay = match longest_wait {
                Some(wait) if all_named_throttles => {
                    policy.delay_after_throttle(started.elapsed(), wait)
                }
                _ => {
                    let delay = policy.next_delay(attempt, started.elapsed(), longest_wait);
                    attempt += 1;
                    delay
                }
            };
            // The others hold back as long as these wait, and only when they do wait: a
            // wait past the policy's is not taken by anyone.
            if let (Some(delay), Some(_)) = (delay, longest_wait) {
                self.pause(delay);
            }
            // After the pause, so whoever sees the count sees the pause.
            Counters::add(&counters.throttled, throttled);
            match delay {
                Some(delay) => {
                    Counters::add(
                        &counters.retries,
                        u64::try_from(again.len()).unwrap_or(u64::MAX),
                    );
                    tokio::time::sleep(delay).await;
                    pending = again
                        .into_iter()
                        .map(|(index, request, _)| (index, request))
                        .collect();
                }
                None => {
                    done.extend(
                        again
                            .into_iter()
                            .map(|(index, _, error)| (index, Err(error))),
                    );
                    return done;
                }
            }
        }
    }
}
