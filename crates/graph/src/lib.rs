//! The Microsoft Graph client: app-only authentication, paging, `$batch`, throttling and
//! retries, and one file per resource.
//!
//! Every HTTP answer passes through the private helpers in `request` (one place turns a
//! non-2xx into a typed [`GraphError`] and decides about retries) and `batch` (one place
//! splits `$batch` answers into per-request results and resends only throttled requests).
//! No wait is longer than [`RetryPolicy::max_wait`]: past it a call fails at once, and
//! [`GraphError::retry_after`] says how long Graph asked to wait. Writes that must not be
//! made twice go through `writes`, which settles an unclear answer (a 504, a lost
//! connection) by reading whether the change was made before anything is sent again.
//!
//! ```no_run
//! # async fn run() -> Result<(), enroll_graph::GraphError> {
//! use enroll_graph::{Credential, GraphClient, GraphConfig, Secret};
//! let config = GraphConfig::new(
//!     "contoso.onmicrosoft.com",
//!     Credential::ClientSecret { client_id: "app-id".into(), secret: Secret::new("...") },
//! );
//! let client = GraphClient::new(config)?;
//! let snapshot = client.snapshot(Some("Projects")).await?;
//! # let _ = snapshot; Ok(()) }
//! ```
//!
//! May depend on `enroll-core` only, of enroll's crates. The [`Directory`] trait is the part of
//! it the steps use, so that their rules can be tested without HTTP.

mod applications;
mod assignment_requests;
mod assignments;
mod auth;
mod batch;
mod directory;
mod entitlement;
mod error;
mod grants;
mod groups;
mod invitations;
pub mod odata;
mod request;
pub mod retry;
mod snapshot;
mod users;
mod writes;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub use assignment_requests::{NewAssignment, PackageRequests, UnfinishedRequest};
pub use auth::{Credential, Secret};
pub use directory::Directory;
pub use error::{GraphError, StatusError};
pub use grants::TokenClaims;
pub use groups::NewGroupAppRoleAssignment;
pub use invitations::NewInvitation;
pub use retry::RetryPolicy;
pub use writes::Write;

/// The public cloud's Graph endpoint.
pub const DEFAULT_GRAPH_BASE_URL: &str = "https://graph.microsoft.com/v1.0";
/// The public cloud's Microsoft Entra authority.
pub const DEFAULT_AUTHORITY_URL: &str = "https://login.microsoftonline.com";
/// The public cloud's Graph resource (scope `{resource}/.default`).
pub const DEFAULT_GRAPH_RESOURCE: &str = "https://graph.microsoft.com";

/// Most requests Graph takes in one `$batch` (graph.md §5).
pub const MAX_BATCH: usize = 20;

/// Everything the client needs to reach one tenant.
#[derive(Debug, Clone)]
pub struct GraphConfig {
    /// Graph base URL including the version (default [`DEFAULT_GRAPH_BASE_URL`]; national
    /// clouds and the simulator differ).
    pub graph_base_url: String,
    /// Authority for client credentials (default [`DEFAULT_AUTHORITY_URL`]).
    pub authority_url: String,
    /// Resource the token is for (default [`DEFAULT_GRAPH_RESOURCE`]; must be the same
    /// cloud's Graph host).
    pub graph_resource: String,
    /// Tenant id or domain.
    pub tenant_id: String,
    /// How the client authenticates.
    pub credential: Credential,
    /// Retries of throttled and failed calls.
    pub retry: RetryPolicy,
    /// Most HTTP requests in flight at once (default 4; Graph advises few concurrent writes
    /// to entitlement management).
    pub concurrency: usize,
    /// Timeout of one HTTP request (default 100 s, as Graph's own gateway).
    pub request_timeout: Duration,
    /// More certificate authorities (PEM) to trust for Graph, the authority and managed
    /// identity, besides the system's: e.g. the CA of `enroll sim --tls`
    /// (`ENROLL_CA_FILE`). Never a way to turn verification off. Default none.
    pub extra_ca_pem: Option<String>,
}

impl GraphConfig {
    /// A configuration for the public cloud with default retries and concurrency.
    pub fn new(tenant_id: impl Into<String>, credential: Credential) -> Self {
        GraphConfig {
            graph_base_url: DEFAULT_GRAPH_BASE_URL.to_owned(),
            authority_url: DEFAULT_AUTHORITY_URL.to_owned(),
            graph_resource: DEFAULT_GRAPH_RESOURCE.to_owned(),
            tenant_id: tenant_id.into(),
            credential,
            retry: RetryPolicy::default(),
            concurrency: 4,
            request_timeout: Duration::from_secs(100),
            extra_ca_pem: None,
        }
    }
}

/// What the client has sent so far: cheap counters for benchmarks and reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GraphStats {
    /// HTTP requests sent to Graph (retries and `$batch` envelopes included, tokens not).
    pub http_requests: u64,
    /// Graph operations: one per plain request, one per request inside a `$batch`.
    pub operations: u64,
    /// `$batch` envelopes sent.
    pub batches: u64,
    /// Requests (or batched requests) sent again after a throttle or a fault.
    pub retries: u64,
    /// Answers (or batched answers) with status 429.
    pub throttled: u64,
    /// Requests to the token endpoint.
    pub token_requests: u64,
}

#[derive(Default)]
struct Counters {
    http_requests: AtomicU64,
    operations: AtomicU64,
    batches: AtomicU64,
    retries: AtomicU64,
    throttled: AtomicU64,
}

impl Counters {
    fn add(counter: &AtomicU64, amount: u64) {
        counter.fetch_add(amount, Ordering::Relaxed);
    }
}

struct Inner {
    http: reqwest::Client,
    base_url: String,
    retry: RetryPolicy,
    tokens: auth::TokenSource,
    permits: tokio::sync::Semaphore,
    counters: Counters,
    /// No request starts before this instant: set from a throttled answer's `Retry-After`,
    /// so that one throttled request holds back the others too instead of each spending
    /// its own attempts (and Graph's quota) on requests bound to be throttled.
    paused_until: Mutex<Option<Instant>>,
    /// Sub-requests of less than a full `$batch` waiting to share an envelope: reads, then
    /// writes (see `GraphClient::share`).
    shared_batches: Mutex<[Vec<batch::Waiting>; 2]>,
    /// Shared envelopes of each kind (reads, writes) sent and not yet answered: the next
    /// one waits for them (see `GraphClient::share`).
    shared_in_flight: [std::sync::atomic::AtomicUsize; 2],
    /// Wakes the envelopes waiting on [`Inner::shared_in_flight`] of each kind.
    shared_answered: [tokio::sync::Notify; 2],
}

/// A Microsoft Graph client for one tenant. Cheap to clone; clones share the token cache,
/// the concurrency limit and the counters.
#[derive(Clone)]
pub struct GraphClient {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for GraphClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GraphClient")
            .field("base_url", &self.inner.base_url)
            .finish_non_exhaustive()
    }
}

impl GraphClient {
    /// Builds the client.
    ///
    /// # Errors
    ///
    /// [`GraphError::Config`] when the certificate or its key cannot be read, the extra
    /// CA PEM holds no certificate, or the HTTP client cannot be built.
    pub fn new(config: GraphConfig) -> Result<Self, GraphError> {
        let mut builder = reqwest::Client::builder()
            .timeout(config.request_timeout)
            .connect_timeout(Duration::from_secs(10));
        if let Some(pem) = &config.extra_ca_pem {
            let certificates = reqwest::Certificate::from_pem_bundle(pem.as_bytes())
                .ok()
                .filter(|certificates| !certificates.is_empty())
                .ok_or_else(|| {
                    GraphError::Config(
                        "the extra CA file holds no PEM certificate (-----BEGIN CERTIFICATE-----)"
                            .into(),
                    )
                })?;
            builder = builder.tls_certs_merge(certificates);
        }
        let http = builder.build().map_err(|error| {
            GraphError::Config(format!("cannot build the HTTP client: {error}"))
        })?;
        let tokens = auth::TokenSource::new(
            http.clone(),
            config.credential,
            &config.authority_url,
            &config.tenant_id,
            &config.graph_resource,
        )?;
        Ok(GraphClient {
            inner: Arc::new(Inner {
                http,
                base_url: config.graph_base_url.trim_end_matches('/').to_owned(),
                retry: config.retry,
                tokens,
                permits: tokio::sync::Semaphore::new(config.concurrency.max(1)),
                counters: Counters::default(),
                paused_until: Mutex::new(None),
                shared_batches: Mutex::new([Vec::new(), Vec::new()]),
                shared_in_flight: Default::default(),
                shared_answered: Default::default(),
            }),
        })
    }

    /// Holds back every request of this client (and its clones) for `wait` from now, or
    /// longer if an earlier throttle said so. Callers pass only waits the policy allows
    /// ([`RetryPolicy::max_wait`]), so one answer cannot hold the client back for long.
    pub(crate) fn pause(&self, wait: Duration) {
        let Some(until) = Instant::now().checked_add(wait) else {
            return;
        };
        // A poisoned lock still holds a valid instant.
        let mut paused = self
            .inner
            .paused_until
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if paused.is_none_or(|current| current < until) {
            *paused = Some(until);
        }
    }

    /// The instant a throttle holds requests back until, if that is still ahead.
    fn paused_until(&self) -> Option<Instant> {
        let until = *self
            .inner
            .paused_until
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        until.filter(|until| *until > Instant::now())
    }

    /// Waits until no throttle holds requests back.
    pub(crate) async fn wait_out_pause(&self) {
        // Re-read after sleeping: another throttle may have extended the pause.
        while let Some(until) = self.paused_until() {
            tokio::time::sleep_until(until.into()).await;
        }
    }

    /// A concurrency permit, taken once no throttle holds requests back: nobody holds a
    /// permit while waiting out a pause, so a paused request never keeps another one from
    /// going out once the pause is over.
    pub(crate) async fn permit(&self) -> Result<tokio::sync::SemaphorePermit<'_>, GraphError> {
        loop {
            self.wait_out_pause().await;
            let permit = self
                .inner
                .permits
                .acquire()
                .await
                .map_err(|_| GraphError::Config("the client was shut down".into()))?;
            // A throttle answered while this one waited for the permit: wait it out first.
            if self.paused_until().is_none() {
                return Ok(permit);
            }
        }
    }

    /// What the client has sent since it was built.
    pub fn stats(&self) -> GraphStats {
        let counters = &self.inner.counters;
        GraphStats {
            http_requests: counters.http_requests.load(Ordering::Relaxed),
            operations: counters.operations.load(Ordering::Relaxed),
            batches: counters.batches.load(Ordering::Relaxed),
            retries: counters.retries.load(Ordering::Relaxed),
            throttled: counters.throttled.load(Ordering::Relaxed),
            token_requests: self.inner.tokens.requests.load(Ordering::Relaxed),
        }
    }
}
