//! App-only authentication: client secret, client certificate (signed client assertion) and
//! managed identity as App Service and Azure Functions expose it. Tokens are cached and
//! renewed ahead of expiry. Secrets and tokens never reach `Debug`, errors or logs.
//!
//! Managed identity goes through `azure_identity`, the implementation the storage client
//! uses too. The client secret and the certificate go to the Entra token endpoint with our
//! own request: `azure_identity` 1.x refuses an authority that is not `https`
//! (`get_authority_host`), so it cannot reach the simulated tenant on loopback HTTP that
//! `enroll apply --tenant FILE` and the tests use, and its certificate credential needs
//! OpenSSL, which this project does not link.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use azure_core::credentials::TokenCredential as _;
use azure_core::error::ErrorKind;
use azure_core::http::{ClientOptions, RetryOptions, Transport};
use azure_core::time::OffsetDateTime;
use azure_identity::{ManagedIdentityCredential, ManagedIdentityCredentialOptions, UserAssignedId};

use aws_lc_rs::{digest, rand::SystemRandom, signature};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde::Deserialize;
use tokio::sync::Mutex;

use super::error::GraphError;

/// A secret string whose `Debug` and `Display` say only that it is redacted.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself, for the one place that sends it.
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Secret(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Secret(value.to_owned())
    }
}

/// How the client proves who it is (graph.md §7).
#[derive(Debug, Clone)]
pub enum Credential {
    /// Client credentials with a client secret.
    ClientSecret {
        /// The application (client) id.
        client_id: String,
        /// The client secret.
        secret: Secret,
    },
    /// Client credentials with a certificate: a client assertion JWT signed RS256.
    Certificate {
        /// The application (client) id.
        client_id: String,
        /// The certificate in PEM (the one uploaded to the app's keyCredentials).
        certificate_pem: String,
        /// Its RSA private key in PEM (PKCS#8 or PKCS#1).
        private_key_pem: Secret,
    },
    /// Managed identity through the App Service / Functions endpoint (api-version
    /// 2019-08-01), which `azure_identity` finds in `IDENTITY_ENDPOINT` and
    /// `IDENTITY_HEADER` in the process environment.
    ManagedIdentity {
        /// Client id of a user-assigned identity; `None` for the system-assigned one.
        client_id: Option<String>,
    },
    /// A bearer token acquired elsewhere, such as an administrator's
    /// `az account get-access-token --resource-type ms-graph` for `enroll grant`: used as it
    /// is, never renewed (a rejected token is an error).
    AccessToken(Secret),
}

/// An access token with its expiry.
#[derive(Clone)]
pub(crate) struct AccessToken {
    pub(crate) value: Secret,
    pub(crate) renew_at: Instant,
}

/// A certificate credential ready to sign: the key pair and the thumbprint.
struct CertificateSigner {
    key: signature::RsaKeyPair,
    x5t: String,
}

/// Where tokens come from, and the cached one.
pub(crate) struct TokenSource {
    http: reqwest::Client,
    credential: Credential,
    signer: Option<CertificateSigner>,
    authority_url: String,
    tenant_id: String,
    resource: String,
    cached: Mutex<Option<AccessToken>>,
    pub(crate) requests: std::sync::atomic::AtomicU64,
}

/// What the token endpoints answer; `expires_in` and `expires_on` come as numbers or strings.
#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    expires_in: Option<serde_json::Value>,
    #[serde(default)]
    expires_on: Option<serde_json::Value>,
}

/// The error JSON of the Microsoft identity platform.
#[derive(Deserialize, Default)]
struct TokenError {
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    error_description: Option<String>,
}

fn number(value: &serde_json::Value) -> Option<u64> {
    match value {
        serde_json::Value::Number(number) => number.as_u64(),
        serde_json::Value::String(text) => text.trim().parse().ok(),
        _ => None,
    }
}

impl TokenSource {
    pub(crate) fn new(
        http: reqwest::Client,
        credential: Credential,
        authority_url: &str,
        tenant_id: &str,
        resource: &str,
    ) -> Result<Self, GraphError> {
        let signer = match &credential {
            Credential::Certificate {
                certificate_pem,
                private_key_pem,
                ..
            } => Some(CertificateSigner::from_pem(
                certificate_pem.as_bytes(),
                private_key_pem.expose().as_bytes(),
            )?),
            _ => None,
        };
        Ok(TokenSource {
            http,
            credential,
            signer,
            authority_url: authority_url.trim_end_matches('/').to_owned(),
            tenant_id: tenant_id.to_owned(),
            resource: resource.trim_end_matches('/').to_owned(),
            cached: Mutex::new(None),
            requests: std::sync::atomic::AtomicU64::new(0),
        })
    }

    fn token_endpoint(&self) -> String {
        format!(
            "{}/{}/oauth2/v2.0/token",
            self.authority_url, self.tenant_id
        )
    }

    /// A valid token: the cached one, or a new one when it is close to expiry. Concurrent
    /// callers wait for the one fetch instead of each asking.
    pub(crate) async fn token(&self) -> Result<Secret, GraphError> {
        let mut cached = self.cached.lock().await;
        if let Some(token) = cached.as_ref()
            && Instant::now() < token.renew_at
        {
            return Ok(token.value.clone());
        }
        let token = self.fetch().await?;
        let value = token.value.clone();
        *cached = Some(token);
        Ok(value)
    }

    /// Drops the cached token if it is `rejected` (Graph answered 401 to it), so the next call
    /// fetches a fresh one; a token another task already renewed is kept.
    pub(crate) async fn invalidate(&self, rejected: &Secret) {
        let mut cached = self.cached.lock().await;
        if cached
            .as_ref()
            .is_some_and(|token| &token.value == rejected)
        {
            *cached = None;
        }
    }

    async fn fetch(&self) -> Result<AccessToken, GraphError> {
        self.requests
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (endpoint, request) = match &self.credential {
            Credential::ClientSecret { client_id, secret } => {
                let endpoint = self.token_endpoint();
                let body = form(&[
                    ("client_id", client_id),
                    ("scope", &format!("{}/.default", self.resource)),
                    ("client_secret", secret.expose()),
                    ("grant_type", "client_credentials"),
                ]);
                let request = self.form_post(&endpoint, body);
                (endpoint, request)
            }
            Credential::Certificate { client_id, .. } => {
                let endpoint = self.token_endpoint();
                let signer = self
                    .signer
                    .as_ref()
                    .ok_or_else(|| GraphError::Config("certificate not loaded".into()))?;
                let assertion = signer.assertion(client_id, &endpoint, SystemTime::now())?;
                let body = form(&[
                    ("client_id", client_id),
                    ("scope", &format!("{}/.default", self.resource)),
                    (
                        "client_assertion_type",
                        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                    ),
                    ("client_assertion", &assertion),
                    ("grant_type", "client_credentials"),
                ]);
                let request = self.form_post(&endpoint, body);
                (endpoint, request)
            }
            Credential::ManagedIdentity { client_id } => {
                return self.managed_identity_token(client_id.as_deref()).await;
            }
            Credential::AccessToken(token) => {
                // Its expiry is the issuer's business; Graph says 401 once it has passed.
                return Ok(AccessToken {
                    value: token.clone(),
                    renew_at: Instant::now() + Duration::from_secs(24 * 3600),
                });
            }
        };
        let auth_error = |reason: String, retryable: bool| GraphError::Auth {
            endpoint: endpoint.clone(),
            reason,
            retryable,
        };
        let response = request
            .send()
            .await
            .map_err(|error| auth_error(error.without_url().to_string(), true))?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|error| auth_error(error.without_url().to_string(), true))?;
        if !status.is_success() {
            let error: TokenError = serde_json::from_slice(&body).unwrap_or_default();
            let reason = format!(
                "HTTP {}: {}: {}",
                status.as_u16(),
                error.error.unwrap_or_default(),
                error.error_description.unwrap_or_default()
            );
            let retryable = status.as_u16() == 429 || status.is_server_error();
            return Err(auth_error(reason, retryable));
        }
        let token: TokenResponse = serde_json::from_slice(&body)
            .map_err(|error| auth_error(format!("unreadable token response: {error}"), false))?;
        let lifetime = token_lifetime(&token, SystemTime::now())
            .ok_or_else(|| auth_error("token response gives no expiry".into(), false))?;
        Ok(AccessToken {
            value: Secret::new(token.access_token),
            renew_at: renew_at(Instant::now(), lifetime),
        })
    }

    /// A token from the platform's managed identity endpoint, through `azure_identity` over
    /// this client's HTTP connections, without its retries (the Graph client retries what
    /// can pass). A new credential for each fetch: this source's cache decides when to fetch
    /// and forgets a token Graph rejected, which `azure_identity`'s own cache cannot.
    async fn managed_identity_token(
        &self,
        client_id: Option<&str>,
    ) -> Result<AccessToken, GraphError> {
        let auth_error = |error: &azure_core::Error| GraphError::Auth {
            endpoint: std::env::var("IDENTITY_ENDPOINT")
                .map(|endpoint| endpoint.split('?').next().unwrap_or_default().to_owned())
                .unwrap_or_else(|_| "the managed identity endpoint".to_owned()),
            reason: describe(error),
            retryable: azure_retryable(error),
        };
        let options = ManagedIdentityCredentialOptions {
            user_assigned_id: client_id.map(|id| UserAssignedId::ClientId(id.to_owned())),
            client_options: ClientOptions {
                transport: Some(Transport::new(Arc::new(self.http.clone()))),
                retry: RetryOptions::none(),
                ..ClientOptions::default()
            },
        };
        let credential =
            ManagedIdentityCredential::new(Some(options)).map_err(|error| auth_error(&error))?;
        let scope = format!("{}/.default", self.resource);
        let token = credential
            .get_token(&[scope.as_str()], None)
            .await
            .map_err(|error| auth_error(&error))?;
        let lifetime =
            Duration::try_from(token.expires_on - OffsetDateTime::now_utc()).unwrap_or_default();
        Ok(AccessToken {
            value: Secret::new(token.token.secret()),
            renew_at: renew_at(Instant::now(), lifetime),
        })
    }

    fn form_post(&self, endpoint: &str, body: String) -> reqwest::RequestBuilder {
        self.http
            .post(endpoint)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(body)
    }
}

/// An Azure SDK error in one line with its causes (`azure_identity` puts the endpoint's
/// answer in them); none of them holds the identity header or a token.
fn describe(error: &azure_core::Error) -> String {
    enroll_core::report::error_chain(error).replace('\n', " ")
}

/// Whether asking the managed identity endpoint again can help: it could not be reached,
/// or it answered 429 or 5xx.
fn azure_retryable(error: &azure_core::Error) -> bool {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(error) = current {
        if let Some(azure) = error.downcast_ref::<azure_core::Error>() {
            match azure.kind() {
                ErrorKind::HttpResponse { status, .. } => {
                    let status = u16::from(*status);
                    return status == 429 || status >= 500;
                }
                ErrorKind::Connection | ErrorKind::Io => return true,
                _ => {}
            }
        }
        current = error.source();
    }
    false
}

/// The longest a token is kept: a day. Entra's tokens live about an hour and a managed
/// identity's at most a day; an endpoint that claims more (`expires_in` of 10^19) is
/// believed only this far, so no instant computed from it can overflow.
pub(crate) const MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(24 * 60 * 60);

/// How long a token lives: `expires_in` seconds, else `expires_on` epoch seconds, at most
/// [`MAX_TOKEN_LIFETIME`].
fn token_lifetime(token: &TokenResponse, now: SystemTime) -> Option<Duration> {
    if let Some(seconds) = token.expires_in.as_ref().and_then(number) {
        return Some(Duration::from_secs(seconds).min(MAX_TOKEN_LIFETIME));
    }
    let epoch_seconds = token.expires_on.as_ref().and_then(number)?;
    let lifetime = match UNIX_EPOCH.checked_add(Duration::from_secs(epoch_seconds)) {
        Some(expires_on) => expires_on.duration_since(now).unwrap_or(Duration::ZERO),
        // Past what the clock can hold: as far away as a token may be.
        None => MAX_TOKEN_LIFETIME,
    };
    Some(lifetime.min(MAX_TOKEN_LIFETIME))
}

/// When to fetch a new token for one that lives `lifetime` from `now`: five minutes before
/// expiry, or at four fifths of a shorter lifetime; at once if even that is past the clock.
fn renew_at(now: Instant, lifetime: Duration) -> Instant {
    let lifetime = lifetime.min(MAX_TOKEN_LIFETIME);
    now.checked_add(lifetime.saturating_sub(renewal_margin(lifetime)))
        .unwrap_or(now)
}

/// Renew five minutes before expiry, or at four fifths of a shorter lifetime.
pub(crate) fn renewal_margin(lifetime: Duration) -> Duration {
    (lifetime / 5).min(Duration::from_secs(300))
}

/// An `application/x-www-form-urlencoded` body.
fn form(pairs: &[(&str, &str)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

/// Base64url without padding (RFC 7515 §2), as JWTs use it.
pub(crate) fn base64url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A random version-4 GUID, for `jti` and `client-request-id`.
pub(crate) fn new_guid() -> String {
    uuid::Uuid::new_v4().to_string()
}

impl CertificateSigner {
    fn from_pem(certificate_pem: &[u8], private_key_pem: &[u8]) -> Result<Self, GraphError> {
        let certificate = CertificateDer::from_pem_slice(certificate_pem).map_err(|error| {
            GraphError::Config(format!("cannot read the certificate PEM: {error}"))
        })?;
        // The key's bytes are secret: name the problem, never the content.
        let key_der = PrivateKeyDer::from_pem_slice(private_key_pem).map_err(|_| {
            GraphError::Config(
                "cannot read the private key PEM (PKCS#8 or PKCS#1 RSA expected)".into(),
            )
        })?;
        let key = match &key_der {
            PrivateKeyDer::Pkcs8(der) => signature::RsaKeyPair::from_pkcs8(der.secret_pkcs8_der()),
            PrivateKeyDer::Pkcs1(der) => signature::RsaKeyPair::from_der(der.secret_pkcs1_der()),
            _ => {
                return Err(GraphError::Config(
                    "the private key is not an RSA key (RS256 needs RSA)".into(),
                ));
            }
        }
        .map_err(|error| {
            GraphError::Config(format!("the private key is not usable for RS256: {error}"))
        })?;
        let thumbprint = digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, certificate.as_ref());
        Ok(CertificateSigner {
            key,
            x5t: base64url(thumbprint.as_ref()),
        })
    }

    /// The signed client assertion for `client_id` at `audience` (the token endpoint), valid
    /// from `now` for five minutes (graph.md §7.2: `exp` at most ten minutes after `nbf`).
    fn assertion(
        &self,
        client_id: &str,
        audience: &str,
        now: SystemTime,
    ) -> Result<String, GraphError> {
        let now = now
            .duration_since(UNIX_EPOCH)
            .map(|elapsed| elapsed.as_secs())
            .unwrap_or(0);
        let header = serde_json::json!({"alg": "RS256", "typ": "JWT", "x5t": self.x5t});
        let claims = serde_json::json!({
            "aud": audience,
            "iss": client_id,
            "sub": client_id,
            "jti": new_guid(),
            "nbf": now,
            "iat": now,
            "exp": now + 300,
        });
        let signing_input = format!(
            "{}.{}",
            base64url(header.to_string().as_bytes()),
            base64url(claims.to_string().as_bytes())
        );
        let mut signature = vec![0; self.key.public_modulus_len()];
        self.key
            .sign(
                &signature::RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                signing_input.as_bytes(),
                &mut signature,
            )
            .map_err(|_| GraphError::Config("cannot sign the client assertion".into()))?;
        Ok(format!("{signing_input}.{}", base64url(&signature)))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use aws_lc_rs::signature::KeyPair;

    const CERT: &str = include_str!("../../../tests/data/auth/test-cert.pem");
    const KEY: &str = include_str!("../../../tests/data/auth/test-key.pem");

    fn decode_base64url(text: &str) -> Vec<u8> {
        URL_SAFE_NO_PAD.decode(text).unwrap()
    }

    #[test]
    fn base64url_matches_rfc4648_vectors() {
        assert_eq!(base64url(b""), "");
        assert_eq!(base64url(b"f"), "Zg");
        assert_eq!(base64url(b"fo"), "Zm8");
        assert_eq!(base64url(b"foo"), "Zm9v");
        assert_eq!(base64url(b"foob"), "Zm9vYg");
        assert_eq!(base64url(&[0xfb, 0xff]), "-_8");
    }

    #[test]
    fn client_assertion_has_the_documented_shape_and_verifies() {
        let signer = CertificateSigner::from_pem(CERT.as_bytes(), KEY.as_bytes()).unwrap();
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let audience = "https://login.microsoftonline.com/tenant/oauth2/v2.0/token";
        let jwt = signer.assertion("client-1", audience, now).unwrap();
        let parts: Vec<&str> = jwt.split('.').collect();
        assert_eq!(parts.len(), 3);
        let header: serde_json::Value =
            serde_json::from_slice(&decode_base64url(parts[0])).unwrap();
        assert_eq!(header["alg"], "RS256");
        // x5t is the SHA-1 of the certificate's DER, 20 bytes.
        let x5t = decode_base64url(header["x5t"].as_str().unwrap());
        let der = CertificateDer::from_pem_slice(CERT.as_bytes()).unwrap();
        assert_eq!(
            x5t,
            digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, der.as_ref()).as_ref()
        );
        let claims: serde_json::Value =
            serde_json::from_slice(&decode_base64url(parts[1])).unwrap();
        assert_eq!(claims["aud"], audience);
        assert_eq!(claims["iss"], "client-1");
        assert_eq!(claims["sub"], "client-1");
        assert_eq!(claims["nbf"], 1_700_000_000u64);
        assert!(claims["exp"].as_u64().unwrap() <= 1_700_000_000 + 600);
        assert_eq!(claims["jti"].as_str().unwrap().len(), 36);
        // The signature verifies with the key's public half.
        let public = signer.key.public_key();
        let verifier = signature::UnparsedPublicKey::new(
            &signature::RSA_PKCS1_2048_8192_SHA256,
            public.as_ref(),
        );
        verifier
            .verify(
                format!("{}.{}", parts[0], parts[1]).as_bytes(),
                &decode_base64url(parts[2]),
            )
            .unwrap();
    }

    #[test]
    fn a_bad_key_error_does_not_quote_the_key() {
        let garbage = "-----BEGIN PRIVATE KEY-----\nc2VjcmV0LWtleS1tYXRlcmlhbA==\n-----END PRIVATE KEY-----\n";
        let error = CertificateSigner::from_pem(CERT.as_bytes(), garbage.as_bytes())
            .err()
            .unwrap()
            .to_string();
        assert!(!error.contains("c2VjcmV0"), "{error}");
    }

    #[test]
    fn secrets_are_redacted_in_debug() {
        let credential = Credential::ClientSecret {
            client_id: "app".into(),
            secret: Secret::new("hunter2-very-secret"),
        };
        let text = format!("{credential:?}");
        assert!(text.contains("app") && !text.contains("hunter2"), "{text}");
        let credential = Credential::Certificate {
            client_id: "app".into(),
            certificate_pem: CERT.into(),
            private_key_pem: Secret::new(KEY),
        };
        assert!(!format!("{credential:?}").contains("PRIVATE KEY"));
    }

    #[test]
    fn lifetime_from_expires_in_or_epoch_string() {
        let now = UNIX_EPOCH + Duration::from_secs(1_000);
        let token: TokenResponse =
            serde_json::from_str(r#"{"access_token":"t","expires_in":3599}"#).unwrap();
        assert_eq!(token_lifetime(&token, now), Some(Duration::from_secs(3599)));
        let token: TokenResponse =
            serde_json::from_str(r#"{"access_token":"t","expires_in":"3599"}"#).unwrap();
        assert_eq!(token_lifetime(&token, now), Some(Duration::from_secs(3599)));
        let token: TokenResponse =
            serde_json::from_str(r#"{"access_token":"t","expires_on":"4600"}"#).unwrap();
        assert_eq!(token_lifetime(&token, now), Some(Duration::from_secs(3600)));
        assert_eq!(
            renewal_margin(Duration::from_secs(3599)),
            Duration::from_secs(300)
        );
        assert_eq!(
            renewal_margin(Duration::from_secs(10)),
            Duration::from_secs(2)
        );
    }

    #[test]
    fn absurd_lifetimes_are_bounded_without_panic() {
        let now = UNIX_EPOCH + Duration::from_secs(1_000);
        let day = MAX_TOKEN_LIFETIME;
        for body in [
            r#"{"access_token":"t","expires_in":18446744073709551615}"#,
            r#"{"access_token":"t","expires_in":"18446744073709551615"}"#,
            r#"{"access_token":"t","expires_on":18446744073709551615}"#,
            r#"{"access_token":"t","expires_on":"99999999999999"}"#,
        ] {
            let token: TokenResponse = serde_json::from_str(body).unwrap();
            assert_eq!(token_lifetime(&token, now), Some(day), "{body}");
        }
        // Unreadable lifetimes are no lifetime: the fetch fails with a message, not a panic.
        for body in [
            r#"{"access_token":"t","expires_in":-5}"#,
            r#"{"access_token":"t","expires_in":1e30}"#,
            r#"{"access_token":"t","expires_in":"soon"}"#,
        ] {
            let token: TokenResponse = serde_json::from_str(body).unwrap();
            assert_eq!(token_lifetime(&token, now), None, "{body}");
        }
        let start = Instant::now();
        assert_eq!(
            renew_at(start, Duration::MAX),
            start + day - Duration::from_secs(300)
        );
        assert_eq!(renew_at(start, Duration::ZERO), start);
    }

    #[test]
    fn guids_look_like_guids() {
        let guid = new_guid();
        assert_eq!(guid.len(), 36);
        assert_eq!(guid.as_bytes()[14], b'4');
        assert_ne!(guid, new_guid());
    }
}
