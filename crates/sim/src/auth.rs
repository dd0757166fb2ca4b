//! Entra's side of the simulated tenant: OpenID discovery and the signing keys (JWKS) at
//! Entra's paths, the token endpoint (client secret in the body or as HTTP Basic, RS256
//! client assertion), the App Service managed-identity endpoint, and the check Graph makes
//! of each bearer token.
//!
//! Access tokens are JWTs signed RS256 with the simulator's key ([`crate::jwt`]) in the
//! shape of Entra's v2.0 app-only tokens: `iss` is `{base URL}/{tenant id}/v2.0` (the
//! simulator's own base URL in place of `https://login.microsoftonline.com`), `aud` the
//! resource as the scope named it, `roles` the app roles granted to the client.

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
pub(crate) fn der_tlv(input: &[u8]) -> Option<Tlv<'_>> {
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
            "timestamp": clock::now_error_date().replace('T', " ") + "Z",
            "trace_id": ZERO_GUID,
            "correlation_id": ZERO_GUID,
            "error_uri": format!("https://login.microsoftonline.com/error?code={code}"),
        }),
    )
}

const ZERO_GUID: &str = "00000000-0000-0000-0000-000000000000";

/// Microsoft Graph's application id: Graph's tokens may name it as their audience.
pub(crate) const GRAPH_APP_ID: &str = "00000003-0000-0000-c000-000000000000";

/// The identifier of Microsoft Graph in scopes and in the `aud` of its tokens.
const GRAPH_RESOURCE: &str = "https://graph.microsoft.com";

/// Entra's answer for a tenant it does not know.
pub(crate) fn tenant_not_found(tenant: &str) -> Resp {
    oauth_error(
        400,
        "invalid_tenant",
        90002,
        &format!(
            "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud."
        ),
    )
}

/// Entra's answer to a client credentials request to `common` or `organizations`: an
/// app-only token needs its tenant.
pub(crate) fn no_tenant(segment: &str) -> Resp {
    oauth_error(
        400,
        "invalid_request",
        50059,
        &format!(
            "No tenant-identifying information found in either the request or implied by any provided credentials ('{segment}' names no tenant)."
        ),
    )
}

/// How a path names the tenant: the simulated one (by id or domain), or a multi-tenant
/// alias (`common`, `organizations`) whose documents hold `{tenantid}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TenantPath {
    /// The tenant's id or one of its domains.
    Ours,
    /// `common` or `organizations`.
    Any,
}

impl Shared {
    /// Whether a path's tenant segment names the simulated tenant, a multi-tenant alias, or
    /// neither (`None`).
    pub(crate) fn tenant_path(&self, segment: &str) -> Option<TenantPath> {
        if segment.eq_ignore_ascii_case(&self.config.tenant_id)
            || self.domains.iter().any(|d| d.eq_ignore_ascii_case(segment))
        {
            Some(TenantPath::Ours)
        } else if segment.eq_ignore_ascii_case("common")
            || segment.eq_ignore_ascii_case("organizations")
        {
            Some(TenantPath::Any)
        } else {
            None
        }
    }

    /// The issuer of the tenant's tokens: `{base URL}/{tenant id}/v2.0`.
    pub(crate) fn issuer(&self) -> String {
        format!("{}/{}/v2.0", self.base_url, self.config.tenant_id)
    }
}

/// `GET /{tenant}/v2.0/.well-known/openid-configuration`: Entra's OpenID discovery
/// document, with the endpoints the simulator serves (and the authorize endpoint, which
/// OpenID Connect requires and MSAL reads, answered with an error: the simulator models
/// app-only flows). For `common` and `organizations` the tenant is `{tenantid}`, as Entra
/// writes it.
pub(crate) fn discovery(shared: &Shared, req: &Req, path: TenantPath) -> Resp {
    if req.method != "GET" {
        return crate::http::method_not_allowed();
    }
    let base = &shared.base_url;
    let tenant = match path {
        TenantPath::Ours => shared.config.tenant_id.as_str(),
        TenantPath::Any => "{tenantid}",
    };
    let segment = match path {
        TenantPath::Ours => shared.config.tenant_id.as_str(),
        TenantPath::Any => req.segments.first().map_or("common", String::as_str),
    };
    Resp::json(
        200,
        json!({
            "token_endpoint": format!("{base}/{segment}/oauth2/v2.0/token"),
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
            "jwks_uri": format!("{base}/{segment}/discovery/v2.0/keys"),
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "issuer": format!("{base}/{tenant}/v2.0"),
            "request_uri_parameter_supported": false,
            "authorization_endpoint": format!("{base}/{segment}/oauth2/v2.0/authorize"),
            "http_logout_supported": true,
            "frontchannel_logout_supported": true,
            "claims_supported": ["sub", "iss", "aud", "exp", "iat", "tid", "ver", "azp", "roles", "oid"],
            "tenant_region_scope": "EU",
            "cloud_instance_name": "microsoftonline.com",
            "cloud_graph_host_name": "graph.windows.net",
            "msgraph_host": "graph.microsoft.com",
        }),
    )
}

/// `GET /{tenant}/discovery/v2.0/keys` (and `common`, and the v1 path
/// `/{tenant}/discovery/keys`): the JSON Web Key Set of the token signing key.
pub(crate) fn keys(shared: &Shared, req: &Req, path: TenantPath) -> Resp {
    if req.method != "GET" {
        return crate::http::method_not_allowed();
    }
    let issuer = match path {
        TenantPath::Ours => shared.issuer(),
        TenantPath::Any => format!("{}/{{tenantid}}/v2.0", shared.base_url),
    };
    match crate::jwt::key() {
        Ok(key) => Resp::json(200, json!({ "keys": [key.jwk(&issuer)] })),
        Err(why) => oauth_error(500, "server_error", 90033, &why),
    }
}

/// The authorize, device code and logout endpoints the discovery document names: refused,
/// since the simulator models app-only (client credentials) flows only.
pub(crate) fn interactive(_shared: &Shared) -> Resp {
    oauth_error(
        400,
        "unsupported_response_type",
        70000,
        "The simulator models app-only flows (client credentials and managed identity), not user sign-in.",
    )
}

/// A client the token endpoint knows: its id, secret and the app roles it holds on every
/// API other than Graph.
struct Client<'a> {
    id: &'a str,
    secret: &'a str,
    roles: &'a [String],
    /// Whether it is the default client, the one client assertions and managed identity
    /// speak for.
    default: bool,
}

fn client<'a>(shared: &'a Shared, id: &str) -> Option<Client<'a>> {
    let config = &shared.config;
    if config.client_id.eq_ignore_ascii_case(id) {
        return Some(Client {
            id: &config.client_id,
            secret: &config.client_secret,
            roles: &config.client_roles,
            default: true,
        });
    }
    config
        .clients
        .iter()
        .find(|c| c.client_id.eq_ignore_ascii_case(id))
        .map(|c| Client {
            id: &c.client_id,
            secret: &c.client_secret,
            roles: &c.roles,
            default: false,
        })
}

/// What a token can be for: Microsoft Graph, an application of the tenant, or an API
/// named in [`crate::SimConfig::apis`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Resource {
    /// The resource as the scope (or managed identity's `resource`) named it: the `aud`.
    pub(crate) audience: String,
    /// The resource's application id, when the tenant holds its application or service
    /// principal (Graph's is [`GRAPH_APP_ID`]).
    pub(crate) app_id: Option<String>,
}

impl Resource {
    fn is_graph(&self) -> bool {
        self.app_id.as_deref() == Some(GRAPH_APP_ID)
    }
}

/// The resource `identifier` names (an app ID URI, `api://{appId}`, an application id or
/// Graph's URL, with or without a trailing `/`), if the tenant knows it.
pub(crate) fn resource(shared: &Shared, identifier: &str) -> Option<Resource> {
    let id = identifier.trim_end_matches('/');
    let known = |candidate: &str| id.eq_ignore_ascii_case(candidate.trim_end_matches('/'));
    let found = |app_id: Option<&str>| Resource {
        audience: identifier.to_owned(),
        app_id: app_id.map(str::to_owned),
    };
    if known(GRAPH_RESOURCE) || known(GRAPH_APP_ID) {
        return Some(found(Some(GRAPH_APP_ID)));
    }
    let state = shared.lock();
    let app_ids = state
        .tenant
        .applications
        .iter()
        .map(|a| a.app_id.as_str())
        .chain(
            state
                .tenant
                .service_principals
                .iter()
                .map(|s| s.app_id.as_str()),
        );
    for app_id in app_ids {
        if known(app_id) || known(&format!("api://{app_id}")) {
            return Some(found(Some(app_id)));
        }
    }
    shared
        .config
        .apis
        .iter()
        .any(|api| known(api))
        .then(|| found(None))
}

/// Entra's answer for a scope or resource no application of the tenant answers to.
fn unknown_resource(shared: &Shared, identifier: &str) -> Resp {
    oauth_error(
        400,
        "invalid_resource",
        500011,
        &format!(
            "The resource principal named {identifier} was not found in the tenant named {}. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You might have sent your authentication request to the wrong tenant.",
            shared.config.tenant_id
        ),
    )
}

/// The object id of the client's service principal: the tenant's, or one derived from the
/// client id when the snapshot holds none.
fn client_object_id(shared: &Shared, client_id: &str) -> String {
    let state = shared.lock();
    if let Some(sp) = state
        .tenant
        .service_principals
        .iter()
        .find(|s| s.app_id.eq_ignore_ascii_case(client_id))
    {
        return sp.id.clone();
    }
    let digest = aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY,
        format!(
            "enroll-sim service principal {}",
            client_id.to_ascii_lowercase()
        )
        .as_bytes(),
    );
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest.as_ref()[..16]);
    uuid::Builder::from_sha1_bytes(bytes)
        .into_uuid()
        .to_string()
}

/// The app roles a token for `resource` grants `client`: those the tenant assigned to the
/// client's service principal on the resource's (enabled roles only, as Entra puts them in
/// `roles`), plus the client's configured roles on every API other than Graph.
fn granted_roles(
    shared: &Shared,
    client_id: &str,
    configured: &[String],
    resource: &Resource,
) -> Vec<String> {
    let mut roles: Vec<String> = if resource.is_graph() {
        Vec::new()
    } else {
        configured.to_vec()
    };
    if let Some(app_id) = &resource.app_id {
        let state = shared.lock();
        let sps = &state.tenant.service_principals;
        let by_app = |id: &str| sps.iter().find(|s| s.app_id.eq_ignore_ascii_case(id));
        if let (Some(client_sp), Some(resource_sp)) = (by_app(client_id), by_app(app_id)) {
            let defined = state.tenant.sp_roles(resource_sp);
            for assignment in state.tenant.app_role_assignments.iter().filter(|a| {
                a.principal_id.eq_ignore_ascii_case(&client_sp.id)
                    && a.resource_id.eq_ignore_ascii_case(&resource_sp.id)
            }) {
                if let Some(value) = defined
                    .iter()
                    .find(|r| r.is_enabled && r.id.eq_ignore_ascii_case(&assignment.app_role_id))
                    .and_then(|r| r.value.clone())
                {
                    roles.push(value);
                }
            }
        }
    }
    roles.sort();
    roles.dedup();
    roles
}

/// How a client proved who it is, for `azpacr`/`appidacr`: 1 a secret, 2 a certificate or
/// a managed identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Proof {
    Secret,
    Certificate,
}

/// Signs an access token for `client_id` and `resource` with `roles`, valid for the
/// simulator's token lifetime, and records it so Graph accepts it until then.
pub(crate) fn issue(
    shared: &Shared,
    client_id: &str,
    resource: &Resource,
    roles: &[String],
    proof: Proof,
) -> Result<(String, Duration), String> {
    let key = crate::jwt::key()?;
    let lifetime = Duration::from_millis(shared.config.token_lifetime_ms);
    let now = clock::epoch_secs();
    let object_id = client_object_id(shared, client_id);
    let acr = match proof {
        Proof::Secret => "1",
        Proof::Certificate => "2",
    };
    let (uti, token_id) = {
        let mut state = shared.lock();
        let mut uti = [0u8; 16];
        state.rng.fill(&mut uti);
        (URL_SAFE_NO_PAD.encode(uti), state.new_guid())
    };
    let mut claims = json!({
        "aud": resource.audience,
        "iss": shared.issuer(),
        "iat": now,
        "nbf": now,
        // Whole seconds, rounded up: the simulator enforces the lifetime to the millisecond.
        "exp": now + lifetime.as_millis().div_ceil(1000).max(1) as u64,
        "azp": client_id,
        "azpacr": acr,
        "appid": client_id,
        "appidacr": acr,
        "idtyp": "app",
        "oid": object_id,
        "sub": object_id,
        "tid": shared.config.tenant_id,
        "uti": uti,
        "jti": token_id,
        "ver": "2.0",
    });
    if !roles.is_empty()
        && let Some(obj) = claims.as_object_mut()
    {
        obj.insert("roles".to_owned(), json!(roles));
    }
    let token = key.sign(&claims)?;
    let issued = Instant::now();
    let mut state = shared.lock();
    state.tokens.retain(|_, expiry| *expiry > issued);
    state.tokens.insert(token.clone(), issued + lifetime);
    Ok((token, lifetime))
}

/// The client's id and secret from `Authorization: Basic` (RFC 6749 §2.3.1: each
/// form-urlencoded, then joined by `:` and base64-encoded), if the header is there.
fn basic_credentials(req: &Req) -> Option<Result<(String, String), ()>> {
    let header = req.header("authorization")?;
    let (scheme, value) = header.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(value.trim())
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok());
    let Some((id, secret)) = decoded.as_deref().and_then(|s| s.split_once(':')) else {
        return Some(Err(()));
    };
    let unescape = |part: &str| {
        form_urlencoded::parse(format!("x={part}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    Some(Ok((unescape(id), unescape(secret))))
}

/// `POST /{tenant}/oauth2/v2.0/token` with `grant_type=client_credentials`: the client
/// authenticates with its secret (in the body, `client_secret_post`, or as HTTP Basic,
/// `client_secret_basic`) or a signed client assertion, and asks for one resource's
/// `/.default` scope.
pub(crate) fn token_endpoint(shared: &Shared, req: &Req, segment: &str) -> Resp {
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
    let basic = match basic_credentials(req) {
        Some(Ok(pair)) => Some(pair),
        Some(Err(())) => {
            return oauth_error(
                401,
                "invalid_client",
                7000216,
                "The Authorization header's Basic credentials are not base64 of client_id:client_secret.",
            );
        }
        None => None,
    };
    let client_id = match (&basic, field("client_id")) {
        (Some((id, _)), Some(body_id)) if !id.eq_ignore_ascii_case(body_id) => {
            return oauth_error(
                400,
                "invalid_request",
                900144,
                "The client_id of the Authorization header and of the body differ.",
            );
        }
        (Some((id, _)), _) => id.clone(),
        (None, Some(id)) => id.to_owned(),
        (None, None) => {
            return oauth_error(
                400,
                "invalid_request",
                900144,
                "The request body must contain the following parameter: 'client_id'.",
            );
        }
    };
    let scopes: Vec<&str> = field("scope")
        .unwrap_or_default()
        .split_whitespace()
        // Entra adds no OpenID scopes to an app-only token; MSAL may send them along.
        .filter(|s| !["openid", "profile", "offline_access"].contains(s))
        .collect();
    let identifier = match scopes.as_slice() {
        [scope] if scope.ends_with("/.default") => scope.trim_end_matches(".default"),
        _ => {
            return oauth_error(
                400,
                "invalid_scope",
                1002012,
                "The provided value for scope is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier.",
            );
        }
    };
    // `https://graph.microsoft.com/.default` names `https://graph.microsoft.com`.
    let identifier = identifier.strip_suffix('/').unwrap_or(identifier);
    let Some(client) = client(shared, &client_id) else {
        return oauth_error(
            400,
            "unauthorized_client",
            700016,
            &format!(
                "Application with identifier '{client_id}' was not found in the directory '{segment}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant."
            ),
        );
    };
    let secrets = [
        basic.as_ref().map(|(_, s)| s.as_str()),
        field("client_secret"),
    ];
    let proof = match (secrets, field("client_assertion")) {
        ([Some(_), Some(_)], _) | ([Some(_), None] | [None, Some(_)], Some(_)) => {
            return oauth_error(
                401,
                "invalid_client",
                7000218,
                "The request uses more than one client authentication method; send a secret (in the body or as HTTP Basic) or a client assertion.",
            );
        }
        ([Some(secret), None] | [None, Some(secret)], None) => {
            if secret != client.secret {
                return oauth_error(
                    401,
                    "invalid_client",
                    7000215,
                    &format!(
                        "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{}'.",
                        client.id
                    ),
                );
            }
            Proof::Secret
        }
        ([None, None], Some(assertion)) => {
            if field("client_assertion_type") != Some(ASSERTION_TYPE) {
                return oauth_error(
                    400,
                    "invalid_request",
                    50027,
                    "client_assertion_type must be urn:ietf:params:oauth:client-assertion-type:jwt-bearer.",
                );
            }
            // Entra takes the token endpoint's URL with the tenant as the request named it
            // or by its id.
            let audiences = [segment, shared.config.tenant_id.as_str()]
                .map(|t| format!("{}/{t}/oauth2/v2.0/token", req.origin));
            let checked = if client.default {
                verify_assertion(shared, assertion, &audiences)
            } else {
                Err("Client assertion contains an invalid signature: no certificate is registered for the application.".to_owned())
            };
            if let Err(why) = checked {
                return oauth_error(401, "invalid_client", 700027, &why);
            }
            Proof::Certificate
        }
        ([None, None], None) => {
            return oauth_error(
                401,
                "invalid_client",
                7000218,
                "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
            );
        }
    };
    let Some(resource) = resource(shared, identifier) else {
        return unknown_resource(shared, identifier);
    };
    let roles = granted_roles(shared, client.id, client.roles, &resource);
    match issue(shared, client.id, &resource, &roles, proof) {
        Ok((token, lifetime)) => {
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
        Err(why) => oauth_error(500, "server_error", 90033, &why),
    }
}

/// One base64url part of a JWT (padded or not).
pub(crate) fn decode_part(part: &str) -> Result<Vec<u8>, String> {
    URL_SAFE_NO_PAD
        .decode(part)
        .or_else(|_| URL_SAFE.decode(part))
        .map_err(|_| "Client assertion is not base64url encoded.".to_owned())
}

fn verify_assertion(shared: &Shared, assertion: &str, audiences: &[String]) -> Result<(), String> {
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
    if !audiences.iter().any(|a| claims["aud"] == a.as_str()) {
        return Err(format!(
            "The audience claim value is invalid '{}'; expected '{}'.",
            claims["aud"], audiences[0]
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
    let Some(target) = self::resource(shared, resource) else {
        // App Service passes Entra's refusal on.
        let refusal = unknown_resource(shared, resource);
        let description = refusal
            .body
            .as_ref()
            .and_then(|b| b["error_description"].as_str())
            .unwrap_or_default()
            .to_owned();
        return error(400, "invalid_resource", &description);
    };
    let client_id = &shared.config.client_id;
    let roles = granted_roles(shared, client_id, &shared.config.client_roles, &target);
    let (token, lifetime) = match issue(shared, client_id, &target, &roles, Proof::Certificate) {
        Ok(issued) => issued,
        Err(why) => return error(500, "server_error", &why),
    };
    let expires_on = clock::epoch_secs() + lifetime.as_secs();
    Resp::json(
        200,
        json!({
            "access_token": token,
            "expires_on": expires_on.to_string(),
            "resource": resource,
            "token_type": "Bearer",
            "client_id": client_id,
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
    // Graph validates the token itself: signature, issuer, audience; the simulator then
    // holds it to the lifetime it issued it for, to the millisecond.
    let key = crate::jwt::key().map_err(|why| unauthorized(&why))?;
    let claims = key.verify(token).map_err(unauthorized)?;
    if claims["iss"] != shared.issuer().as_str() {
        return Err(unauthorized(
            "Access token validation failure. Invalid issuer.",
        ));
    }
    let for_graph = claims["aud"]
        .as_str()
        .is_some_and(|aud| self::resource(shared, aud).is_some_and(|r| r.is_graph()));
    if !for_graph {
        return Err(unauthorized(
            "Access token validation failure. Invalid audience.",
        ));
    }
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
