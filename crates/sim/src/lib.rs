//! A simulated Entra ID tenant that speaks Microsoft Graph over loopback HTTP.
//!
//! One port serves Graph v1.0 under `/v1.0/`, the Entra token endpoint at
//! `/{tenant}/oauth2/v2.0/token` and the App Service managed-identity endpoint at
//! `/msi/token`. The simulator answers with Graph's own URLs, JSON shapes, status codes and
//! error envelopes for everything the enroll client uses, and refuses (Graph-shaped 400)
//! anything it does not model, so a silent wrong answer cannot make a client look correct.
//!
//! Behaviours that matter for a client are reproduced and configurable ([`SimConfig`]):
//! OData paging, `$filter` limits, `$batch`, throttling with `Retry-After`, random 5xx,
//! dropped connections, latency, replication delay after invitations, and assignment
//! requests that are delivered over time. All randomness comes from one seeded generator,
//! so a failing run can be replayed with the same `seed`.
//!
//! ```no_run
//! # async fn demo() -> Result<(), enroll_sim::SimError> {
//! use enroll_sim::{start, SimConfig};
//! use enroll_core::tenant::TenantSnapshot;
//!
//! let sim = start(SimConfig::default(), TenantSnapshot::default()).await?;
//! println!("Graph at {}/v1.0", sim.base_url());
//! sim.shutdown().await;
//! # Ok(())
//! # }
//! ```
//!
//! Development and local runs only (the CLI's embedded default, `enroll sim`, tests and
//! benchmarks); the handler never links it. May depend on `enroll-core` only, of enroll's crates.

mod auth;
mod batch;
mod clock;
mod entities;
mod filter;
mod http;
mod jwt;
mod routes;
pub mod schema;
mod state;
mod tls;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use enroll_core::tenant::TenantSnapshot;

/// Settings of one simulator run. Every field has a default suited to local runs.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Port to listen on at 127.0.0.1; `0` (the default) picks a free port.
    pub port: u16,
    /// Tenant id: the `tid` of its tokens, and how Entra's paths name it
    /// (`/{tenant}/oauth2/v2.0/token`). Default [`SIM_TENANT_ID`].
    pub tenant_id: String,
    /// Domains that name the tenant in Entra's paths besides its id, as its verified domains
    /// do: these, the simulator's initial domain [`SIM_TENANT_DOMAIN`], and the domain of
    /// every user principal name in the snapshot (Entra allows a UPN only in a verified
    /// domain). Default none.
    pub domains: Vec<String>,
    /// Client id accepted by the token endpoint. Default `"enroll-sim-client"`.
    pub client_id: String,
    /// Client secret accepted by the token endpoint. Default `"enroll-sim-secret"`.
    pub client_secret: String,
    /// App roles granted to the client (`client_id`) on every API other than Graph: its
    /// tokens' `roles` claim, besides the roles the snapshot assigns to its service
    /// principal. Default none.
    pub client_roles: Vec<String>,
    /// More clients the token endpoint accepts, each with its own secret and roles (client
    /// assertions and managed identity speak for `client_id` only). Default none.
    pub clients: Vec<SimClient>,
    /// Identifiers (app ID URIs such as `api://enroll`) of APIs the token endpoint issues
    /// tokens for, besides Microsoft Graph and the snapshot's applications (by `appId` and
    /// `api://{appId}`). A scope for anything else gets Entra's `AADSTS500011`. Default none.
    pub apis: Vec<String>,
    /// PEM of the certificate (`CERTIFICATE`) or public key (`PUBLIC KEY`) that verifies
    /// RS256 client assertions. Default `None`: certificate authentication is refused.
    pub client_certificate_pem: Option<String>,
    /// Secret the managed-identity endpoint expects in `X-IDENTITY-HEADER`.
    /// Default `"enroll-sim-identity"`.
    pub identity_header: String,
    /// Lifetime of issued access tokens, in milliseconds. Default 3,600,000 (one hour, like Entra).
    pub token_lifetime_ms: u64,
    /// Delay added before every HTTP response, in milliseconds. Default 0.
    pub latency_ms: u64,
    /// Graph operations admitted per second (each `$batch` item counts) before answering 429
    /// with `Retry-After`. Default `None`: no throttling.
    pub throttle_rps: Option<u32>,
    /// Share (0.0–1.0) of Graph operations answered with a random 500, 503 or 504.
    /// A 504 is returned after the operation took effect (the answer is lost, not the work),
    /// as a gateway timeout does. Default 0.0.
    pub fault_rate: f64,
    /// Share (0.0–1.0) of HTTP requests whose connection is dropped without a response:
    /// half of them before the request is carried out (the request is lost), half after
    /// (the answer is lost, not the work). Default 0.0.
    pub drop_rate: f64,
    /// Share (0.0–1.0) of writes (any method but GET, each `$batch` item on its own) that
    /// take effect and are then answered 504, as a gateway timeout loses the answer and not
    /// the work. Default 0.0.
    pub lost_answer_rate: f64,
    /// Share (0.0–1.0) of assignment requests that end `deliveryFailed` instead of
    /// `delivered` (the assignment of an `adminAdd` ends `deliveryFailed` too; an
    /// `adminRemove` leaves its assignment as it was). `reprocess` delivers them. Default 0.0.
    pub delivery_failure_rate: f64,
    /// Share (0.0–1.0) of assignment requests that stay `delivering` (and the assignment of
    /// an `adminAdd` with them) until the assignment or the request is reprocessed.
    /// Default 0.0.
    pub delivery_stuck_rate: f64,
    /// How long a newly invited user stays invisible to `$filter` queries and unknown to
    /// entitlement management, in milliseconds (Entra's replication delay). Default 0.
    pub consistency_delay_ms: u64,
    /// How long a new app role assignment stays out of the `appRoleAssignedTo` and
    /// `appRoleAssignments` lists, in milliseconds: Graph's lists may lag recent writes
    /// (graph.md §4.4), while a second POST of the same assignment is refused at once.
    /// Default 0.
    pub app_role_assignment_lag_ms: u64,
    /// How long an assignment request takes from `submitted` to `delivered`, in
    /// milliseconds; it is `delivering` from half that time. The assignment appears (adminAdd)
    /// or expires (adminRemove) only when delivered. Default 0 (delivered on the next read).
    pub delivery_delay_ms: u64,
    /// Seed of the one random generator behind faults, drops, ids and batch answer order.
    /// Default 1.
    pub seed: u64,
    /// Page size of collections when the request has no `$top`. Default 100 (Graph's for `/users`).
    pub page_size: usize,
    /// HTTPS instead of HTTP, with a certificate authority made at start that clients must
    /// trust ([`SimHandle::ca_pem`]). Default `false`.
    pub tls: bool,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            port: 0,
            tenant_id: SIM_TENANT_ID.to_owned(),
            domains: Vec::new(),
            client_id: "enroll-sim-client".to_owned(),
            client_secret: "enroll-sim-secret".to_owned(),
            client_roles: Vec::new(),
            clients: Vec::new(),
            apis: Vec::new(),
            client_certificate_pem: None,
            identity_header: "enroll-sim-identity".to_owned(),
            token_lifetime_ms: 3_600_000,
            latency_ms: 0,
            throttle_rps: None,
            fault_rate: 0.0,
            drop_rate: 0.0,
            lost_answer_rate: 0.0,
            delivery_failure_rate: 0.0,
            delivery_stuck_rate: 0.0,
            consistency_delay_ms: 0,
            app_role_assignment_lag_ms: 0,
            delivery_delay_ms: 0,
            seed: 1,
            page_size: 100,
            tls: false,
        }
    }
}

/// The default tenant id of the simulated tenant (a GUID, as Entra's are).
pub const SIM_TENANT_ID: &str = "5e1f7e4a-0000-4000-8000-000000000001";

/// The simulated tenant's initial domain: it names the tenant in Entra's paths, and guests
/// get principal names in it.
pub const SIM_TENANT_DOMAIN: &str = "enrollsim.onmicrosoft.com";

/// One more client application the token endpoint accepts ([`SimConfig::clients`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SimClient {
    /// Its client id.
    pub client_id: String,
    /// Its client secret.
    pub client_secret: String,
    /// The app roles its tokens carry for every API other than Graph.
    pub roles: Vec<String>,
}

/// Why the simulator could not start or stop cleanly.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The listening socket could not be opened.
    #[error("cannot listen on 127.0.0.1:{port}: {source}")]
    Bind {
        /// The port asked for.
        port: u16,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// The configuration is unusable (for example a malformed certificate PEM or a rate outside 0–1).
    #[error("invalid simulator configuration: {0}")]
    Config(String),
    /// The snapshot cannot be loaded (for example two objects share an id).
    #[error("invalid tenant snapshot: {0}")]
    Snapshot(String),
    /// Reading the snapshot file failed.
    #[error("cannot read tenant snapshot {path}: {source}")]
    ReadSnapshot {
        /// The file.
        path: PathBuf,
        /// The reason.
        source: std::io::Error,
    },
    /// The snapshot file is not valid snapshot JSON.
    #[error("cannot parse tenant snapshot {path}: {source}")]
    ParseSnapshot {
        /// The file.
        path: PathBuf,
        /// The reason.
        source: serde_json::Error,
    },
}

/// Request counts since start, read with [`SimHandle::counters`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// HTTP requests received (a `$batch` is one), including token requests and dropped ones.
    pub http_requests: u64,
    /// Graph operations: each non-batch Graph call, plus each request inside a `$batch`.
    pub graph_operations: u64,
    /// `$batch` envelopes received.
    pub batches: u64,
    /// Token requests (token endpoint and managed identity), successful or not.
    pub token_requests: u64,
    /// Graph operations answered 429 by the throttle.
    pub throttled: u64,
    /// Graph operations answered with an injected 500/503/504.
    pub faulted: u64,
    /// HTTP connections dropped on purpose.
    pub dropped: u64,
    /// Calls refused with 401 for a missing, unknown or expired token.
    pub unauthorized: u64,
    /// Writes that changed the tenant (invitations, assignment requests, PATCH, role assignments).
    pub writes: u64,
    /// HTTP requests carrying a write (a POST, PATCH or DELETE, or a `$batch` holding one)
    /// received and not yet answered.
    pub writes_in_flight: u64,
}

/// Live counters shared by the server tasks.
#[derive(Debug, Default)]
pub(crate) struct AtomicCounters {
    pub(crate) http_requests: AtomicU64,
    pub(crate) graph_operations: AtomicU64,
    pub(crate) batches: AtomicU64,
    pub(crate) token_requests: AtomicU64,
    pub(crate) throttled: AtomicU64,
    pub(crate) faulted: AtomicU64,
    pub(crate) dropped: AtomicU64,
    pub(crate) unauthorized: AtomicU64,
    pub(crate) writes: AtomicU64,
    pub(crate) writes_in_flight: AtomicU64,
}

impl AtomicCounters {
    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    fn read(&self) -> Counters {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Counters {
            http_requests: get(&self.http_requests),
            graph_operations: get(&self.graph_operations),
            batches: get(&self.batches),
            token_requests: get(&self.token_requests),
            throttled: get(&self.throttled),
            faulted: get(&self.faulted),
            dropped: get(&self.dropped),
            unauthorized: get(&self.unauthorized),
            writes: get(&self.writes),
            writes_in_flight: get(&self.writes_in_flight),
        }
    }
}

/// The live counters of a running simulator, cheap to clone and to read from any task.
#[derive(Debug, Clone)]
pub struct SimProbe(Arc<http::Shared>);

impl SimProbe {
    /// Request counts so far.
    pub fn counters(&self) -> Counters {
        self.0.counters.read()
    }

    /// HTTP requests carrying a write that have been received and not yet answered. The
    /// simulator finishes such a request even when its client has gone, as Graph does, so a
    /// client killed meanwhile loses the answer, not the work.
    pub fn writes_in_flight(&self) -> u64 {
        self.0.counters.writes_in_flight.load(Ordering::Relaxed)
    }
}

/// A running simulator. Dropping it stops the server too; [`SimHandle::shutdown`] waits for that.
#[derive(Debug)]
pub struct SimHandle {
    addr: SocketAddr,
    shared: Arc<http::Shared>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
    ca_pem: Option<String>,
}

impl SimHandle {
    /// The PEM of the certificate authority that signed the simulator's server certificate,
    /// with [`SimConfig::tls`]: what clients trust (`SSL_CERT_FILE`, `REQUESTS_CA_BUNDLE`,
    /// `ENROLL_CA_FILE`). `None` over plain HTTP.
    pub fn ca_pem(&self) -> Option<&str> {
        self.ca_pem.as_deref()
    }

    /// Base URL, e.g. `http://127.0.0.1:41234`: Graph is at `{base}/v1.0`, the token endpoint
    /// at `{base}/{tenant}/oauth2/v2.0/token`, managed identity at `{base}/msi/token`.
    pub fn base_url(&self) -> String {
        self.shared.base_url.clone()
    }

    /// The issuer (`iss`) of the tenant's tokens: `{base}/{tenant id}/v2.0`, where Entra's
    /// is `https://login.microsoftonline.com/{tenant id}/v2.0`. The discovery document says
    /// the same.
    pub fn issuer(&self) -> String {
        self.shared.issuer()
    }

    /// The OpenID discovery document: `{base}/{tenant id}/v2.0/.well-known/openid-configuration`.
    pub fn discovery_url(&self) -> String {
        format!("{}/.well-known/openid-configuration", self.issuer())
    }

    /// The signing keys (JWKS): `{base}/{tenant id}/discovery/v2.0/keys`.
    pub fn jwks_url(&self) -> String {
        format!(
            "{}/{}/discovery/v2.0/keys",
            self.shared.base_url, self.shared.config.tenant_id
        )
    }

    /// A signed access token for `audience` with `roles`, as the token endpoint would issue
    /// it to the simulator's client (`azp`, `appid`, `oid`, `tid`, `iss`, `exp` and the
    /// rest alike), without a token request: for tests that need tokens with chosen roles,
    /// such as an API's `Rosters.Read`. Unlike the token endpoint it takes any audience.
    /// Graph accepts it when `audience` is Graph's.
    ///
    /// # Errors
    ///
    /// [`SimError::Config`] when the token cannot be signed.
    pub fn mint_token(&self, audience: &str, roles: &[&str]) -> Result<String, SimError> {
        let resource = auth::resource(&self.shared, audience).unwrap_or(auth::Resource {
            audience: audience.to_owned(),
            app_id: None,
        });
        let roles: Vec<String> = roles.iter().map(|r| (*r).to_owned()).collect();
        auth::issue(
            &self.shared,
            &self.shared.config.client_id,
            &resource,
            &roles,
            auth::Proof::Secret,
        )
        .map(|(token, _)| token)
        .map_err(SimError::Config)
    }

    /// The port the simulator listens on.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The tenant id the token endpoint answers for.
    pub fn tenant_id(&self) -> &str {
        &self.shared.config.tenant_id
    }

    /// Request counts so far.
    pub fn counters(&self) -> Counters {
        self.shared.counters.read()
    }

    /// A handle on the live counters that another task can hold, e.g. one that waits for a
    /// write to be in flight before killing the client.
    pub fn probe(&self) -> SimProbe {
        SimProbe(Arc::clone(&self.shared))
    }

    /// The tenant's current state, with every request delivered by now applied.
    pub async fn snapshot(&self) -> TenantSnapshot {
        self.shared.snapshot()
    }

    /// The address of every invitation that took effect, in order, lower case: an address
    /// twice means a guest got a second invitation e-mail.
    pub async fn invitations(&self) -> Vec<String> {
        self.shared.lock().invitations.clone()
    }

    /// Graph operations received since start, by method and route (ids left out, a
    /// filtered list by the start of its filter), for benchmarks to show where they go.
    pub fn operations_by_route(&self) -> BTreeMap<String, u64> {
        self.shared.lock().operations_by_route.clone()
    }

    /// Every assignment request the tenant accepted since start, whatever its state now (a
    /// snapshot it started from holds only the open and stuck ones), in the order made.
    pub async fn assignment_requests_made(&self) -> Vec<enroll_core::tenant::AssignmentRequest> {
        let mut state = self.shared.lock();
        state.advance();
        state
            .tenant
            .requests
            .iter()
            .map(entities::RequestRec::to_request)
            .collect()
    }

    /// The tenant once no assignment request is open any more (polled every 50 ms, for at
    /// most 10 s; after that, the state as it is).
    pub async fn settled(&self) -> TenantSnapshot {
        for _ in 0..200 {
            let state = self.shared.snapshot();
            if !state.assignment_requests.iter().any(|r| r.is_open()) {
                return state;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        self.shared.snapshot()
    }

    /// The settings (`ENROLL_*` variables) that point a Graph client or the handler at this
    /// simulated tenant with its own credentials.
    pub fn client_settings(&self) -> Vec<(String, String)> {
        let config = &self.shared.config;
        [
            ("ENROLL_TENANT_ID", config.tenant_id.clone()),
            ("ENROLL_CLIENT_ID", config.client_id.clone()),
            ("ENROLL_CLIENT_SECRET", config.client_secret.clone()),
            ("ENROLL_GRAPH_URL", format!("{}/v1.0", self.base_url())),
            ("ENROLL_AUTHORITY_URL", self.base_url()),
        ]
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value))
        .collect()
    }

    /// The settings that point a Graph client or the handler at this simulated tenant with a
    /// managed identity, as App Service and Functions describe theirs (`IDENTITY_ENDPOINT`,
    /// `IDENTITY_HEADER`), and no secret.
    pub fn managed_identity_settings(&self) -> Vec<(String, String)> {
        let config = &self.shared.config;
        [
            ("ENROLL_TENANT_ID", config.tenant_id.clone()),
            ("ENROLL_GRAPH_URL", format!("{}/v1.0", self.base_url())),
            (
                "IDENTITY_ENDPOINT",
                format!("{}/msi/token", self.base_url()),
            ),
            ("IDENTITY_HEADER", config.identity_header.clone()),
        ]
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value))
        .collect()
    }

    /// Stops accepting connections and waits until the server task has ended.
    pub async fn shutdown(mut self) {
        self.stop_now();
        if let Some(task) = self.task.take() {
            // A panicked or cancelled server task has stopped anyway.
            let _ = task.await;
        }
    }

    fn stop_now(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        self.stop_now();
    }
}

/// The longest delay or lifetime a [`SimConfig`] may set, in milliseconds: 30 days.
pub const MAX_DELAY_MS: u64 = 30 * 24 * 3_600_000;

/// Starts the simulator on 127.0.0.1 (`config.port`, or a free port for 0) with `snapshot` as
/// the initial tenant, and returns once it accepts connections.
///
/// # Errors
///
/// [`SimError::Bind`] when the port cannot be opened, [`SimError::Config`] for an unusable
/// certificate, rate or delay, [`SimError::Snapshot`] for a snapshot with duplicate ids.
pub async fn start(config: SimConfig, snapshot: TenantSnapshot) -> Result<SimHandle, SimError> {
    for (name, rate) in [
        ("fault_rate", config.fault_rate),
        ("drop_rate", config.drop_rate),
        ("lost_answer_rate", config.lost_answer_rate),
        ("delivery_failure_rate", config.delivery_failure_rate),
        ("delivery_stuck_rate", config.delivery_stuck_rate),
    ] {
        if !(0.0..=1.0).contains(&rate) {
            return Err(SimError::Config(format!(
                "{name} must be between 0 and 1, got {rate}"
            )));
        }
    }
    // Each is added to an instant; past a month it could overflow and means nothing here.
    for (name, ms) in [
        ("token_lifetime_ms", config.token_lifetime_ms),
        ("latency_ms", config.latency_ms),
        ("consistency_delay_ms", config.consistency_delay_ms),
        (
            "app_role_assignment_lag_ms",
            config.app_role_assignment_lag_ms,
        ),
        ("delivery_delay_ms", config.delivery_delay_ms),
    ] {
        if ms > MAX_DELAY_MS {
            return Err(SimError::Config(format!(
                "{name} must be at most {MAX_DELAY_MS} (30 days), got {ms}"
            )));
        }
    }
    if config.page_size == 0 || config.page_size > 999 {
        return Err(SimError::Config(format!(
            "page_size must be between 1 and 999, got {}",
            config.page_size
        )));
    }
    let port = config.port;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .map_err(|source| SimError::Bind { port, source })?;
    let addr = listener
        .local_addr()
        .map_err(|source| SimError::Bind { port, source })?;
    let tls = if config.tls {
        Some(
            tokio::task::spawn_blocking(tls::Tls::make)
                .await
                .map_err(|e| SimError::Config(format!("the simulator failed to start: {e}")))?
                .map_err(SimError::Config)?,
        )
    } else {
        None
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    let base_url = format!("{scheme}://{addr}");
    // Generating the signing key (once per process) takes a moment of CPU.
    let shared = tokio::task::spawn_blocking(move || http::Shared::new(config, snapshot, base_url))
        .await
        .map_err(|e| SimError::Config(format!("the simulator failed to start: {e}")))??;
    let shared = Arc::new(shared);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let stopped = async move {
        let _ = stopped.await;
    };
    let ca_pem = tls.as_ref().map(|t| t.ca_pem.clone());
    let task = match tls {
        Some(tls) => {
            let routes = http::routes(Arc::clone(&shared));
            tokio::spawn(async move { tls.serve(listener, routes, stopped).await })
        }
        None => {
            let server = warp::serve(http::routes(Arc::clone(&shared)))
                .incoming(listener)
                .graceful(stopped);
            tokio::spawn(server.run())
        }
    };
    Ok(SimHandle {
        addr,
        shared,
        stop: Some(stop),
        task: Some(task),
        ca_pem,
    })
}

/// Reads a tenant snapshot (the JSON of [`TenantSnapshot`]) from a file.
///
/// # Errors
///
/// [`SimError::ReadSnapshot`] or [`SimError::ParseSnapshot`], naming the file.
pub fn read_snapshot(path: &std::path::Path) -> Result<TenantSnapshot, SimError> {
    let bytes = std::fs::read(path).map_err(|source| SimError::ReadSnapshot {
        path: path.to_owned(),
        source,
    })?;
    serde_json::from_slice(&bytes).map_err(|source| SimError::ParseSnapshot {
        path: path.to_owned(),
        source,
    })
}
