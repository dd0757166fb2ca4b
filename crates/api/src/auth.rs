//! Entra ID bearer tokens: the signature against the tenant's published signing keys
//! (OpenID discovery, then the JWKS it names), the issuer, the audience, expiry and
//! not-before (with a small leeway for clocks that disagree), and an app role in `roles`.
//!
//! The keys are cached. A token signed with a key id the cache does not know makes the
//! validator read the keys again (Entra rotates them), but at most once per
//! [`AuthSettings::min_refresh`]: a flood of tokens with made-up key ids costs one request to
//! Entra per interval, not one per token. Requests that arrive while the keys are being read
//! wait for that one read. Keys are read again anyway once older than
//! [`AuthSettings::max_key_age`]; if Entra cannot be reached then, the keys at hand stay in use.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::{AlgorithmParameters, JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

/// An app role a route needs, as it appears in the token's `roles` claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Read rosters, plans, runs and status.
    RostersRead,
    /// Store rosters.
    RostersWrite,
    /// Start reconciles (rosters and app roles).
    RunsStart,
}

impl Role {
    /// Every role, as the API's app registration declares them (`infra/api-app-roles.json`).
    pub const ALL: [Self; 3] = [Self::RostersRead, Self::RostersWrite, Self::RunsStart];

    /// The role's value in the app registration and in `roles`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RostersRead => "Rosters.Read",
            Self::RostersWrite => "Rosters.Write",
            Self::RunsStart => "Runs.Start",
        }
    }
}

/// Who called, from a token that passed every check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The calling application's client id: `azp` (v2 tokens) or `appid` (v1).
    pub app_id: Option<String>,
    /// The caller's object id (`oid`), else the token's subject (`sub`).
    pub subject: String,
    /// The app roles the token grants.
    pub roles: Vec<String>,
}

/// Why a token was refused. The sentences say which check failed and are safe to show:
/// they never repeat the token or anything taken from it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// No `Authorization: Bearer` header.
    #[error("the request has no bearer token: send `Authorization: Bearer <access token>`")]
    Missing,
    /// Not a signed JWT.
    #[error("the bearer token is not a signed JWT")]
    Malformed,
    /// Signed with another algorithm than Entra's.
    #[error("the token is not signed with RS256, the only algorithm accepted")]
    Algorithm,
    /// No key id in the header.
    #[error("the token names no signing key (`kid`)")]
    NoKeyId,
    /// Signed with a key the tenant does not publish.
    #[error("the token is signed with a key that the tenant does not publish")]
    UnknownKey,
    /// The signature does not verify.
    #[error("the token's signature does not verify")]
    Signature,
    /// Past `exp`.
    #[error("the token has expired")]
    Expired,
    /// Before `nbf`.
    #[error("the token is not valid yet (nbf)")]
    NotYetValid,
    /// `aud` is not this API.
    #[error("the token is for another audience than this API")]
    Audience,
    /// `iss` is not the tenant.
    #[error("the token comes from an issuer this API does not trust")]
    Issuer,
    /// A claim every token must have is missing.
    #[error("the token lacks the `{0}` claim")]
    MissingClaim(&'static str),
    /// The route's app role is not in `roles`.
    #[error("the token does not grant the app role `{}`", .0.as_str())]
    MissingRole(Role),
    /// The tenant's keys cannot be read, and none are at hand.
    #[error("the tenant's signing keys cannot be read right now; try again later")]
    KeysUnavailable,
}

/// How tokens are checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthSettings {
    /// Accepted `aud` values: the API's application ID URI (`api://…`, in v1 tokens) and/or
    /// its client id (v2 tokens).
    pub audiences: Vec<String>,
    /// Accepted `iss` values; empty means the `issuer` of the discovery document.
    pub issuers: Vec<String>,
    /// The tenant id (replaces `{tenantid}` in a multi-tenant discovery document's issuer).
    pub tenant: String,
    /// The OpenID discovery document's URL.
    pub discovery_url: String,
    /// Clock skew allowed on `exp` and `nbf`.
    pub leeway: Duration,
    /// Least time between two reads of the keys caused by unknown key ids.
    pub min_refresh: Duration,
    /// Keys older than this are read again.
    pub max_key_age: Duration,
}

/// The tenant's published keys, by key id, and its issuer.
#[derive(Clone)]
pub struct PublishedKeys {
    /// RSA signing keys by `kid`.
    pub keys: HashMap<String, DecodingKey>,
    /// The discovery document's `issuer`, with `{tenantid}` filled in.
    pub issuer: String,
}

/// Why the keys could not be read (logged, never shown to callers).
#[derive(Debug, thiserror::Error)]
#[error("{url}: {problem}")]
pub struct FetchError {
    /// What was asked for.
    pub url: String,
    /// What went wrong.
    pub problem: String,
}

/// Where the keys come from: Entra over HTTPS in production, anything in tests.
pub trait KeySource: Send + Sync {
    /// Reads the discovery document and the keys it names.
    fn fetch(&self) -> impl std::future::Future<Output = Result<PublishedKeys, FetchError>> + Send;
}

/// The keys over HTTP: the discovery document, then its `jwks_uri`.
#[derive(Debug, Clone)]
pub struct HttpKeys {
    http: reqwest::Client,
    discovery_url: String,
    tenant: String,
}

/// The largest discovery document or key set read (Entra's are a few KiB).
const MOST_KEY_BYTES: usize = 1024 * 1024;

#[derive(Deserialize)]
struct Discovery {
    issuer: String,
    jwks_uri: String,
}

impl HttpKeys {
    /// Keys from the discovery document at `settings.discovery_url`.
    ///
    /// # Errors
    /// [`FetchError`] when the HTTP client cannot be built.
    pub fn new(settings: &AuthSettings) -> Result<Self, FetchError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|error| FetchError {
                url: settings.discovery_url.clone(),
                problem: error.to_string(),
            })?;
        Ok(Self {
            http,
            discovery_url: settings.discovery_url.clone(),
            tenant: settings.tenant.clone(),
        })
    }

    async fn get(&self, url: &str) -> Result<Vec<u8>, FetchError> {
        let failed = |problem: String| FetchError {
            url: url.to_owned(),
            problem,
        };
        let mut response = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|error| failed(error.to_string()))?;
        if !response.status().is_success() {
            return Err(failed(format!("HTTP {}", response.status())));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|error| failed(error.to_string()))?
        {
            if body.len() + chunk.len() > MOST_KEY_BYTES {
                return Err(failed(format!("more than {MOST_KEY_BYTES} bytes")));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }
}

impl KeySource for HttpKeys {
    async fn fetch(&self) -> Result<PublishedKeys, FetchError> {
        let discovery: Discovery = serde_json::from_slice(&self.get(&self.discovery_url).await?)
            .map_err(|error| FetchError {
                url: self.discovery_url.clone(),
                problem: format!("not an OpenID discovery document: {error}"),
            })?;
        let set: JwkSet =
            serde_json::from_slice(&self.get(&discovery.jwks_uri).await?).map_err(|error| {
                FetchError {
                    url: discovery.jwks_uri.clone(),
                    problem: format!("not a JSON Web Key Set: {error}"),
                }
            })?;
        Ok(PublishedKeys {
            keys: signing_keys(&set),
            issuer: discovery.issuer.replace("{tenantid}", &self.tenant),
        })
    }
}

/// The RSA signing keys of a key set, by key id (keys without one cannot be chosen).
pub fn signing_keys(set: &JwkSet) -> HashMap<String, DecodingKey> {
    set.keys
        .iter()
        .filter(|jwk| {
            matches!(jwk.algorithm, AlgorithmParameters::RSA(_))
                && matches!(
                    jwk.common.public_key_use,
                    None | Some(PublicKeyUse::Signature)
                )
        })
        .filter_map(|jwk| {
            let kid = jwk.common.key_id.clone()?;
            DecodingKey::from_jwk(jwk).ok().map(|key| (kid, key))
        })
        .collect()
}

/// A clock, so tests can move time on.
pub type Clock = Arc<dyn Fn() -> Instant + Send + Sync>;

#[derive(Default)]
struct Cache {
    published: Option<PublishedKeys>,
    /// When the keys at hand were read.
    read_at: Option<Instant>,
    /// When they were last asked for, successfully or not.
    tried_at: Option<Instant>,
    /// How often they were asked for.
    reads: u64,
}

/// Checks bearer tokens against the tenant's keys.
pub struct Validator<K = HttpKeys> {
    settings: AuthSettings,
    source: K,
    cache: tokio::sync::Mutex<Cache>,
    clock: Clock,
}

#[derive(Deserialize)]
struct Claims {
    #[serde(default)]
    roles: Vec<String>,
    #[serde(default)]
    oid: Option<String>,
    #[serde(default)]
    sub: Option<String>,
    #[serde(default)]
    azp: Option<String>,
    #[serde(default)]
    appid: Option<String>,
}

impl<K: KeySource> Validator<K> {
    /// A validator with the system clock.
    pub fn new(settings: AuthSettings, source: K) -> Self {
        Self::with_clock(settings, source, Arc::new(Instant::now))
    }

    /// A validator with the given clock (for the key cache; token times are checked against
    /// the system's time).
    pub fn with_clock(settings: AuthSettings, source: K, clock: Clock) -> Self {
        Self {
            settings,
            source,
            cache: tokio::sync::Mutex::default(),
            clock,
        }
    }

    /// How often the keys have been asked for.
    pub async fn key_reads(&self) -> u64 {
        self.cache.lock().await.reads
    }

    /// Checks the `Authorization` header's bearer token and the app role `needed`.
    ///
    /// # Errors
    /// [`TokenError`] naming the first check that failed.
    pub async fn check(
        &self,
        authorization: Option<&[u8]>,
        needed: Role,
    ) -> Result<Caller, TokenError> {
        let token = bearer(authorization).ok_or(TokenError::Missing)?;
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Malformed)?;
        if header.alg != Algorithm::RS256 {
            return Err(TokenError::Algorithm);
        }
        let kid = header.kid.ok_or(TokenError::NoKeyId)?;
        let (key, issuer) = self.key(&kid).await?;
        let mut validation = Validation::new(Algorithm::RS256);
        validation.leeway = self.settings.leeway.as_secs();
        validation.validate_nbf = true;
        validation.set_audience(&self.settings.audiences);
        if self.settings.issuers.is_empty() {
            validation.set_issuer(&[issuer]);
        } else {
            validation.set_issuer(&self.settings.issuers);
        }
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        let data = jsonwebtoken::decode::<Claims>(token, &key, &validation)
            .map_err(|error| token_error(error.kind()))?;
        let claims = data.claims;
        if !claims.roles.iter().any(|role| role == needed.as_str()) {
            return Err(TokenError::MissingRole(needed));
        }
        Ok(Caller {
            app_id: claims.azp.or(claims.appid),
            subject: claims.oid.or(claims.sub).unwrap_or_default(),
            roles: claims.roles,
        })
    }

    /// The key with this id, and the issuer to expect, reading the keys when they are old
    /// or do not hold the id, at most once per `min_refresh`.
    async fn key(&self, kid: &str) -> Result<(DecodingKey, String), TokenError> {
        let mut cache = self.cache.lock().await;
        let now = (self.clock)();
        let since = |at: Option<Instant>| at.map(|at| now.saturating_duration_since(at));
        let old = since(cache.read_at).is_none_or(|age| age >= self.settings.max_key_age);
        let unknown = cache
            .published
            .as_ref()
            .is_none_or(|published| !published.keys.contains_key(kid));
        let may_read = since(cache.tried_at).is_none_or(|age| age >= self.settings.min_refresh);
        if (old || unknown) && may_read {
            cache.tried_at = Some(now);
            cache.reads += 1;
            match self.source.fetch().await {
                Ok(published) => {
                    tracing::info!(
                        keys = published.keys.len(),
                        "read the tenant's signing keys"
                    );
                    cache.published = Some(published);
                    cache.read_at = Some(now);
                }
                Err(error) => {
                    tracing::warn!(%error, "cannot read the tenant's signing keys");
                }
            }
        }
        let Some(published) = &cache.published else {
            return Err(TokenError::KeysUnavailable);
        };
        published
            .keys
            .get(kid)
            .map(|key| (key.clone(), published.issuer.clone()))
            .ok_or(TokenError::UnknownKey)
    }
}

/// The token of an `Authorization: Bearer …` header (the scheme in any case).
fn bearer(authorization: Option<&[u8]>) -> Option<&str> {
    let value = std::str::from_utf8(authorization?).ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

fn token_error(kind: &ErrorKind) -> TokenError {
    match kind {
        ErrorKind::ExpiredSignature => TokenError::Expired,
        ErrorKind::ImmatureSignature => TokenError::NotYetValid,
        ErrorKind::InvalidAudience => TokenError::Audience,
        ErrorKind::InvalidIssuer => TokenError::Issuer,
        ErrorKind::InvalidSignature => TokenError::Signature,
        ErrorKind::InvalidAlgorithm => TokenError::Algorithm,
        ErrorKind::MissingRequiredClaim(claim) => match claim.as_str() {
            "exp" => TokenError::MissingClaim("exp"),
            "iss" => TokenError::MissingClaim("iss"),
            _ => TokenError::MissingClaim("aud"),
        },
        _ => TokenError::Malformed,
    }
}
