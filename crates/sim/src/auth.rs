//! The Entra token endpoint (client secret and RS256 client assertion), the App Service
//! managed-identity endpoint, and bearer-token checks on Graph calls.

use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use rustls_pki_types::pem::{PemObject, SectionKind};
use serde_json::{Value, json};

use super::clock;
use super::http::{Req, Resp, Shared};

const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// The key that verifies client assertions, and the certificate thumbprint when known.
#[derive(Debug, Clone)]
pub(crate) struct VerifyKey {
    /// DER SubjectPublicKeyInfo.
    spki: Vec<u8>,
    /// base64url SHA-1 of the certificate DER (the JWT header's `x5t`), for certificates.
    x5t: Option<String>,
}

impl VerifyKey {
    pub(crate) fn from_pem(pem: &str) -> Result<Self, String> {
        for section in <(SectionKind, Vec<u8>)>::pem_slice_iter(pem.as_bytes()) {
            let (kind, der) =
                section.map_err(|e| format!("client_certificate_pem is not valid PEM: {e}"))?;
            match kind {
                SectionKind::Certificate => {
                    let spki = certificate_spki(&der).ok_or(
                        "client_certificate_pem holds a CERTIFICATE whose public key cannot be read",
                    )?;
                    let digest = aws_lc_rs::digest::digest(
                        &aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY,
                        &der,
                    );
                    return Ok(Self {
                        spki,
                        x5t: Some(URL_SAFE_NO_PAD.encode(digest.as_ref())),
                    });
                }
                SectionKind::PublicKey => {
                    return Ok(Self {
                        spki: der,
                        x5t: None,
                    });
                }
                _ => {}
            }
        }
        Err("client_certificate_pem holds neither a CERTIFICATE nor a PUBLIC KEY".to_owned())
    }
}

/// One DER element: tag, contents, the whole encoding, and what follows it.
type Tlv<'a> = (u8, &'a [u8], &'a [u8], &'a [u8]);

/// Reads one DER element at the start of `input`.
fn der_tlv(input: &[u8]) -> Option<Tlv<'_>> {
    let tag = *input.first()?;
    let first = *input.get(1)?;
    let (len, header) = if first < 0x80 {
        (first as usize, 2)
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 {
            return None;
        }
        let mut len = 0usize;
        for i in 0..n {
            len = (len << 8) | *input.get(2 + i)? as usize;
        }
        (len, 2 + n)
    };
    let whole = input.get(..header + len)?;
    Some((tag, &whole[header..], whole, &input[header + len..]))
}

/// The SubjectPublicKeyInfo of an X.509 certificate (RFC 5280 §4.1).
fn certificate_spki(cert: &[u8]) -> Option<Vec<u8>> {
    let (_, cert_body, _, _) = der_tlv(cert)?;
    let (_, tbs, _, _) = der_tlv(cert_body)?;
    let mut rest = tbs;
    // Optional [0] version, then serial, signature, issuer, validity, subject, spki.
    if rest.first() == Some(&0xa0) {
        rest = der_tlv(rest)?.3;
    }
    for _ in 0..5 {
        rest = der_tlv(rest)?.3;
    }
    let (tag, _, whole, _) = der_tlv(rest)?;
    (tag == 0x30).then(|| whole.to_vec())
}

/// Entra's error answer of the token endpoint.
fn oauth_error(status: u16, error: &str, code: u32, description: &str) -> Resp {
    Resp::json(
        status,
        json!({
            "error": error,
            "error_description": format!("AADSTS{code}: {description}"),
            "error_codes": [code],
            "timestamp": clock::now_iso(),
            "trace_id": "00000000-0000-0000-0000-000000000000",
            "correlation_id": "00000000-0000-0000-0000-000000000000",
            "error_uri": "https://login.microsoftonline.com/error?code=".to_owned() + &code.to_string(),
        }),
    )
}

pub(crate) fn tenant_not_found(tenant: &str) -> Resp {
    oauth_error(
        400,
        "invalid_request",
        90002,
        &format!("Tenant '{tenant}' not found."),
    )
}

fn issue_token(shared: &Shared) -> (String, Duration) {
    let lifetime = Duration::from_millis(shared.config.token_lifetime_ms);
    let mut state = shared.lock();
    let token = format!("sim.{:032x}{:032x}", state.rng.u128(..), state.rng.u128(..));
    let now = Instant::now();
    state.tokens.retain(|_, expiry| *expiry > now);
    state.tokens.insert(token.clone(), now + lifetime);
    (token, lifetime)
}

/// `POST /{tenant}/oauth2/v2.0/token` with `grant_type=client_credentials`.
pub(crate) fn token_endpoint(shared: &Shared, req: &Req) -> Resp {
    if req.method != "POST" {
        return oauth_error(
            405,
            "invalid_request",
            900561,
            "The endpoint only accepts POST requests.",
        );
    }
    let form: Vec<(String, String)> = form_urlencoded::parse(&req.body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let field = |name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    if field("grant_type") != Some("client_credentials") {
        return oauth_error(
            400,
            "unsupported_grant_type",
            70003,
            "The app requested an unsupported grant type; the simulator supports client_credentials.",
        );
    }
    let Some(client_id) = field("client_id") else {
        return oauth_error(
            400,
            "invalid_request",
            900144,
            "The request body must contain the following parameter: 'client_id'.",
        );
    };
    match field("scope") {
        Some(scope) if scope.ends_with("/.default") => {}
        _ => {
            return oauth_error(
                400,
                "invalid_scope",
                1002012,
                "The provided value for scope is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier.",
            );
        }
    }
    if client_id != shared.config.client_id {
        return oauth_error(
            400,
            "unauthorized_client",
            700016,
            &format!(
                "Application with identifier '{client_id}' was not found in the directory '{}'.",
                shared.config.tenant_id
            ),
        );
    }
    if let Some(secret) = field("client_secret") {
        if secret != shared.config.client_secret {
            return oauth_error(
                401,
                "invalid_client",
                7000215,
                "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID.",
            );
        }
    } else if let Some(assertion) = field("client_assertion") {
        if field("client_assertion_type") != Some(ASSERTION_TYPE) {
            return oauth_error(
                400,
                "invalid_request",
                50027,
                "client_assertion_type must be urn:ietf:params:oauth:client-assertion-type:jwt-bearer.",
            );
        }
        let audience = format!(
            "{}/{}/oauth2/v2.0/token",
            req.origin, shared.config.tenant_id
        );
        if let Err(why) = verify_assertion(shared, assertion, &audience) {
            return oauth_error(401, "invalid_client", 700027, &why);
        }
    } else {
        return oauth_error(
            401,
            "invalid_client",
            7000218,
            "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
        );
    }
    let (token, lifetime) = issue_token(shared);
    let secs = lifetime.as_secs();
    Resp::json(
        200,
        json!({
            "token_type": "Bearer",
            "expires_in": secs,
            "ext_expires_in": secs,
            "access_token": token,
        }),
    )
}

fn decode_part(part: &str) -> Result<Vec<u8>, String> {
    URL_SAFE_NO_PAD
        .decode(part)
        .or_else(|_| URL_SAFE.decode(part))
        .map_err(|_| "Client assertion is not base64url encoded.".to_owned())
}

fn verify_assertion(shared: &Shared, assertion: &str, audience: &str) -> Result<(), String> {
    let key = shared.verify_key.as_ref().ok_or(
        "Client assertion contains an invalid signature: no certificate is registered for the application.",
    )?;
    let parts: Vec<&str> = assertion.split('.').collect();
    let [header_b64, claims_b64, sig_b64] = parts.as_slice() else {
        return Err("Client assertion is not a signed JWT (three parts).".to_owned());
    };
    let header: Value = serde_json::from_slice(&decode_part(header_b64)?)
        .map_err(|_| "Client assertion header is not JSON.".to_owned())?;
    let claims: Value = serde_json::from_slice(&decode_part(claims_b64)?)
        .map_err(|_| "Client assertion payload is not JSON.".to_owned())?;
    let signature = decode_part(sig_b64)?;
    if header["alg"] != "RS256" {
        return Err(format!(
            "Client assertion algorithm {} is not supported; use RS256.",
            header["alg"]
        ));
    }
    if let (Some(expected), Some(sent)) = (&key.x5t, header["x5t"].as_str())
        && expected != sent
    {
        return Err(format!(
            "Client assertion contains an invalid signature. [Reason - The key was not found., Thumbprint of key used by client: '{sent}']"
        ));
    }
    let signed = format!("{header_b64}.{claims_b64}");
    aws_lc_rs::signature::UnparsedPublicKey::new(
        &aws_lc_rs::signature::RSA_PKCS1_2048_8192_SHA256,
        &key.spki,
    )
    .verify(signed.as_bytes(), &signature)
    .map_err(|_| "Client assertion contains an invalid signature.".to_owned())?;
    let client_id = shared.config.client_id.as_str();
    if claims["iss"] != client_id || claims["sub"] != client_id {
        return Err("The client assertion's iss and sub must be the client id.".to_owned());
    }
    if claims["aud"] != audience {
        return Err(format!(
            "The audience claim value is invalid '{}'; expected '{audience}'.",
            claims["aud"]
        ));
    }
    if claims["jti"].as_str().is_none_or(str::is_empty) {
        return Err("The client assertion has no jti claim.".to_owned());
    }
    let now = clock::epoch_secs() as i64;
    let exp = claims["exp"]
        .as_i64()
        .ok_or("The client assertion has no exp claim.")?;
    let nbf = claims["nbf"].as_i64().unwrap_or(now);
    // Entra allows five minutes of clock skew.
    if exp + 300 < now {
        return Err("The client assertion has expired.".to_owned());
    }
    if nbf - 300 > now {
        return Err("The client assertion is not yet valid (nbf).".to_owned());
    }
    Ok(())
}

/// `GET /msi/token?resource=...&api-version=2019-08-01` with `X-IDENTITY-HEADER`, as App
/// Service and Functions serve it at `IDENTITY_ENDPOINT`.
pub(crate) fn managed_identity(shared: &Shared, req: &Req) -> Resp {
    let param = |name: &str| {
        req.query
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    };
    let error = |status: u16, code: &str, message: &str| {
        Resp::json(
            status,
            json!({ "statusCode": status, "message": message, "correlationId": "00000000-0000-0000-0000-000000000000", "error": code }),
        )
    };
    if req.method != "GET" {
        return error(405, "invalid_request", "Only GET is supported.");
    }
    if req.header("x-identity-header") != Some(shared.config.identity_header.as_str()) {
        return error(
            401,
            "invalid_request",
            "The X-IDENTITY-HEADER header is missing or wrong.",
        );
    }
    if param("api-version") != Some("2019-08-01") {
        return error(400, "invalid_request", "api-version must be 2019-08-01.");
    }
    let Some(resource) = param("resource") else {
        return error(
            400,
            "invalid_request",
            "The resource parameter is required.",
        );
    };
    if resource.ends_with("/.default") {
        return error(
            400,
            "invalid_resource",
            "Managed identity takes a resource, not a scope: remove '/.default'.",
        );
    }
    let (token, lifetime) = issue_token(shared);
    let expires_on = clock::epoch_secs() + lifetime.as_secs();
    Resp::json(
        200,
        json!({
            "access_token": token,
            "expires_on": expires_on.to_string(),
            "resource": resource,
            "token_type": "Bearer",
            "client_id": shared.config.client_id,
        }),
    )
}

/// Graph's 401 for a missing, unknown or expired bearer token.
pub(crate) fn check_bearer(shared: &Shared, req: &Req) -> Result<(), Resp> {
    let unauthorized = |message: &str| {
        Resp::error(401, "InvalidAuthenticationToken", message).with_header(
            "WWW-Authenticate",
            "Bearer realm=\"\", error=\"invalid_token\"".to_owned(),
        )
    };
    let token = req
        .header("authorization")
        .and_then(|h| {
            h.strip_prefix("Bearer ")
                .or_else(|| h.strip_prefix("bearer "))
        })
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| unauthorized("Access token is empty."))?;
    let state = shared.lock();
    match state.tokens.get(token) {
        None => Err(unauthorized(
            "Invalid JWT token. The token is not issued by this tenant.",
        )),
        Some(expiry) if *expiry <= Instant::now() => Err(unauthorized(
            "Lifetime validation failed, the token is expired.",
        )),
        Some(_) => Ok(()),
    }
}
