//! enroll's HTTP API for other systems (an HR system, a ticketing tool, a deployment
//! pipeline): plan a roster, store one, start a reconcile, follow a run.
//!
//! [`Api`] is a plain service over `http` types: [`Api::handle`] takes an
//! `http::Request<Bytes>` and answers an `http::Response<Bytes>`. It holds every route, the
//! bearer-token check ([`auth`]), the limits and the problem documents ([`problem`]). The
//! adapters only translate envelopes: the Functions handler (warp, the `Api` function) and
//! the AWS Lambda binary (`lambda_http`). Both store rosters and queue reconciles in the
//! same Azure Storage account, so the Functions pipeline does the work.
//!
//! The OpenAPI document ([`openapi::ApiDoc`], served at `/api/openapi.json`) is generated
//! from the types the routes serialise.
//!
//! May depend on `enroll-steps` and below; never on an adapter or the simulated tenant.

pub mod auth;
pub mod config;
pub mod model;
pub mod openapi;
pub mod problem;
mod routes;

use std::sync::Arc;

use bytes::Bytes;
use enroll_graph::{Directory, GraphClient};
use enroll_steps::World;
use enroll_store::Store;
use http::{Method, Request, Response, StatusCode, header};

pub use auth::{AuthSettings, Caller, HttpKeys, KeySource, Role, TokenError, Validator};
pub use config::ApiSettings;
pub use problem::{ProblemDocument, Rejection};

/// Queue names the API writes to, as the Functions definitions name them.
pub mod queues {
    /// Rosters to plan (`Plan` reads it).
    pub const RECONCILE: &str = "reconcile";
    /// App role manifests to map (`MapRoles` reads it).
    pub const MAP_ROLES: &str = "map-roles";
}

/// Every route: method and path template, as the OpenAPI document lists them.
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/api/health"),
    ("GET", "/api/openapi.json"),
    ("POST", "/api/plan"),
    ("GET", "/api/rosters/{path}"),
    ("PUT", "/api/rosters/{path}"),
    ("POST", "/api/reconcile"),
    ("GET", "/api/runs/{id}"),
    ("GET", "/api/status"),
    ("POST", "/api/roles/reconcile"),
];

/// The API: the world the steps act on (storage and the tenant's directory), its settings
/// and the token validator.
pub struct Api<D = GraphClient, K = HttpKeys> {
    world: Arc<World<Store, D>>,
    settings: ApiSettings,
    validator: Option<Validator<K>>,
    document: Bytes,
}

/// Why the API could not be set up.
#[derive(Debug, thiserror::Error)]
#[error("the API's key source cannot be set up: {0}")]
pub struct SetupError(#[from] auth::FetchError);

impl<D: Directory> Api<D, HttpKeys> {
    /// The API with keys read from Entra (when `settings.auth` is set).
    ///
    /// # Errors
    /// [`SetupError`] when the HTTP client for the keys cannot be built.
    pub fn new(world: Arc<World<Store, D>>, settings: ApiSettings) -> Result<Self, SetupError> {
        let validator = match &settings.auth {
            Some(auth) => Some(Validator::new(auth.clone(), HttpKeys::new(auth)?)),
            None => None,
        };
        Ok(Self::with_validator(world, settings, validator))
    }
}

impl<D: Directory, K: KeySource> Api<D, K> {
    /// The API with a validator of the caller's choosing (`None`: not configured).
    pub fn with_validator(
        world: Arc<World<Store, D>>,
        settings: ApiSettings,
        validator: Option<Validator<K>>,
    ) -> Self {
        Self {
            world,
            settings,
            validator,
            document: Bytes::from(openapi::document_json()),
        }
    }

    /// The largest request body taken in; adapters stop reading past it and answer
    /// [`Api::too_large`].
    pub fn max_body_bytes(&self) -> usize {
        self.settings.max_body_bytes
    }

    /// The validator, when the API is configured.
    pub fn validator(&self) -> Option<&Validator<K>> {
        self.validator.as_ref()
    }

    /// The answer to a body over [`Api::max_body_bytes`].
    pub fn too_large(&self) -> Response<Bytes> {
        Rejection::TooLarge {
            limit: self.settings.max_body_bytes,
        }
        .response()
    }

    /// Answers one request. Every refusal is a problem document; nothing here panics or
    /// answers without a body.
    pub async fn handle(&self, request: Request<Bytes>) -> Response<Bytes> {
        let started = std::time::Instant::now();
        let response = match self.route(&request).await {
            Ok(response) => response,
            Err(rejection) => rejection.response(),
        };
        tracing::info!(
            method = %request.method(),
            path = %clipped_path(request.uri().path()),
            status = response.status().as_u16(),
            ms = (started.elapsed().as_secs_f64() * 1e6).round() / 1e3,
            "api request"
        );
        response
    }

    async fn route(&self, request: &Request<Bytes>) -> Result<Response<Bytes>, Rejection> {
        use routes::Endpoint;
        let (endpoint, allow) = routes::endpoint(request.uri().path()).ok_or(Rejection::NoRoute)?;
        let method = request.method();
        let allowed = allow.split(", ").any(|m| m == method.as_str());
        if !allowed {
            return Err(Rejection::MethodNotAllowed { allow });
        }
        if request.body().len() > self.settings.max_body_bytes {
            return Err(Rejection::TooLarge {
                limit: self.settings.max_body_bytes,
            });
        }
        match endpoint {
            Endpoint::Health => Ok(routes::health()),
            Endpoint::OpenApi => Ok(routes::json_bytes(StatusCode::OK, self.document.clone())),
            Endpoint::Plan => {
                let caller = self.caller(request, Role::RostersRead).await?;
                routes::plan(self, request, &caller).await
            }
            Endpoint::Roster(path) if method == Method::GET => {
                self.caller(request, Role::RostersRead).await?;
                routes::get_roster(self, path).await
            }
            Endpoint::Roster(path) => {
                self.caller(request, Role::RostersWrite).await?;
                routes::put_roster(self, request, path).await
            }
            Endpoint::Reconcile => {
                let caller = self.caller(request, Role::RunsStart).await?;
                routes::reconcile(self, request, &caller).await
            }
            Endpoint::RolesReconcile => {
                let caller = self.caller(request, Role::RunsStart).await?;
                routes::roles_reconcile(self, request, &caller).await
            }
            Endpoint::Run(id) => {
                self.caller(request, Role::RostersRead).await?;
                routes::run(self, id).await
            }
            Endpoint::Status => {
                self.caller(request, Role::RostersRead).await?;
                routes::status(self).await
            }
        }
    }

    /// The caller, if its token passes and grants `role`.
    async fn caller(&self, request: &Request<Bytes>, role: Role) -> Result<Caller, Rejection> {
        let validator = self.validator.as_ref().ok_or(Rejection::NotConfigured)?;
        let authorization = request
            .headers()
            .get(header::AUTHORIZATION)
            .map(|value| value.as_bytes());
        validator
            .check(authorization, role)
            .await
            .map_err(Rejection::from)
    }
}

/// A path for the log: at most 200 bytes, control characters escaped.
fn clipped_path(path: &str) -> String {
    let mut end = path.len().min(200);
    while !path.is_char_boundary(end) {
        end -= 1;
    }
    path[..end].escape_debug().to_string()
}
