//! The HTTP API (issue 11), one suite over both ways in: the Functions host stand-in
//! (harness front end → the real `handler` binary, forwarding as the host does) and the
//! Lambda adapter (the events `lambda_http` publishes → `enroll_lambda::respond`). Each
//! answer is checked against the OpenAPI document the API serves; the pipeline behind both
//! is the Functions app over Azurite and the simulated tenant.

mod entra;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use enroll_api::{Api, ApiSettings, AuthSettings, HttpKeys, Role, TokenError, Validator};
use enroll_core::plan::{PlanOptions, RosterSource};
use enroll_core::roster::{Limits, content_version, parse};
use enroll_core::tenant::TenantSnapshot;
use enroll_graph::GraphClient;
use enroll_harness::http::HttpFront;
use enroll_harness::{Harness, HarnessConfig};
use enroll_sim::{SimClient, SimConfig, SimHandle, start};
use enroll_steps::World;
use enroll_steps::config::{Env, graph_config, step_config};
use enroll_store::{Layout, StorageConfig, Store};
use entra::{Issuer, Key};

const ALPHA: &str = "Projects/Project Alpha - Manager.csv";
const ALPHA_ROSTER: &str =
    "Ann;ann@contoso.com\nBob;bob@fabrikam.com\nEve;eve@contoso.com\nFay;fay@tailspin.be\n";
/// The function key the test front end accepts.
const FUNCTION_KEY: &str = "test-function-key";
/// The API's body limit in these tests, so a too-large body stays small.
const MAX_BODY: usize = 64 * 1024;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn storage() -> String {
    std::env::var("ENROLL_TEST_STORAGE").unwrap_or_else(|_| {
        panic!("ENROLL_TEST_STORAGE is not set: the API tests need Azurite; run them with ./scripts/test")
    })
}

fn golden_tenant() -> TenantSnapshot {
    serde_json::from_slice(&std::fs::read(root().join("tests/data/golden/tenant.json")).unwrap())
        .unwrap()
}

fn auth_settings(issuer: &Issuer) -> AuthSettings {
    ApiSettings::from_env(&Env::from_pairs(
        issuer
            .settings()
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str())),
    ))
    .unwrap()
    .auth
    .unwrap()
}

// ----- tokens -----

#[tokio::test(flavor = "multi_thread")]
async fn tokens_are_checked_for_key_signature_issuer_audience_time_and_role() {
    let issuer = Issuer::start().await;
    let settings = auth_settings(&issuer);
    let validator = Validator::new(settings.clone(), HttpKeys::new(&settings).unwrap());
    let read = issuer.token(&["Rosters.Read"]);
    let caller = validator
        .check(Some(format!("Bearer {read}").as_bytes()), Role::RostersRead)
        .await
        .unwrap();
    assert_eq!(
        caller.app_id.as_deref(),
        Some("c11e0000-0000-4000-8000-0000000000a1")
    );
    assert_eq!(caller.roles, ["Rosters.Read"]);
    let stranger = Key::new(&issuer.current_kid());
    let mut expired = issuer.claims(&["Rosters.Read"]);
    expired["exp"] = json!(entra::now() - 120);
    let mut early = issuer.claims(&["Rosters.Read"]);
    early["nbf"] = json!(entra::now() + 600);
    let mut audience = issuer.claims(&["Rosters.Read"]);
    audience["aud"] = json!("api://another-app");
    let mut from = issuer.claims(&["Rosters.Read"]);
    from["iss"] = json!("https://login.microsoftonline.com/another-tenant/v2.0");
    let mut no_exp = issuer.claims(&["Rosters.Read"]);
    no_exp.as_object_mut().unwrap().remove("exp");
    let cases: Vec<(Option<String>, TokenError)> = vec![
        (None, TokenError::Missing),
        (Some(format!("Basic {read}")), TokenError::Missing),
        (Some("Bearer not.a.jwt".into()), TokenError::Malformed),
        (
            Some(format!(
                "Bearer {}",
                stranger.sign(&issuer.current_kid(), &issuer.claims(&["Rosters.Read"]))
            )),
            TokenError::Signature,
        ),
        (
            Some(format!(
                "Bearer {}",
                stranger.sign("never-published", &issuer.claims(&["Rosters.Read"]))
            )),
            TokenError::UnknownKey,
        ),
        (
            Some(format!("Bearer {}", issuer.sign(&expired))),
            TokenError::Expired,
        ),
        (
            Some(format!("Bearer {}", issuer.sign(&early))),
            TokenError::NotYetValid,
        ),
        (
            Some(format!("Bearer {}", issuer.sign(&audience))),
            TokenError::Audience,
        ),
        (
            Some(format!("Bearer {}", issuer.sign(&from))),
            TokenError::Issuer,
        ),
        (
            Some(format!("Bearer {}", issuer.sign(&no_exp))),
            TokenError::MissingClaim("exp"),
        ),
        (
            Some(format!("Bearer {read}")),
            TokenError::MissingRole(Role::RunsStart),
        ),
        (
            // alg "none": the signature part is empty.
            Some(format!(
                "Bearer {}.{}.",
                base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .encode(r#"{"alg":"none","typ":"JWT"}"#),
                base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .encode(issuer.claims(&["Runs.Start"]).to_string())
            )),
            TokenError::Malformed,
        ),
    ];
    for (header, expected) in cases {
        let role = if expected == TokenError::MissingRole(Role::RunsStart) {
            Role::RunsStart
        } else {
            Role::RostersRead
        };
        let got = validator
            .check(header.as_deref().map(str::as_bytes), role)
            .await
            .unwrap_err();
        assert_eq!(got, expected, "{header:?}");
    }
    // A token 30 s past `exp` still passes: the leeway is 60 s.
    let mut late = issuer.claims(&["Rosters.Read"]);
    late["exp"] = json!(entra::now() - 30);
    assert!(
        validator
            .check(
                Some(format!("Bearer {}", issuer.sign(&late)).as_bytes()),
                Role::RostersRead
            )
            .await
            .is_ok()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_key_ids_read_the_keys_at_most_once_per_interval_and_a_rotation_is_picked_up() {
    let issuer = Issuer::start().await;
    let settings = auth_settings(&issuer);
    let offset = Arc::new(std::sync::Mutex::new(Duration::ZERO));
    let base = Instant::now();
    let clock = {
        let offset = Arc::clone(&offset);
        Arc::new(move || base + *offset.lock().unwrap())
    };
    let validator =
        Validator::with_clock(settings.clone(), HttpKeys::new(&settings).unwrap(), clock);
    let bearer = |token: String| format!("Bearer {token}");
    let good = bearer(issuer.token(&["Rosters.Read"]));
    validator
        .check(Some(good.as_bytes()), Role::RostersRead)
        .await
        .unwrap();
    assert_eq!(issuer.reads(), 1);
    // A flood of made-up key ids within the interval costs no further read.
    let stranger = Key::new("x");
    for n in 0..50 {
        let forged =
            bearer(stranger.sign(&format!("made-up-{n}"), &issuer.claims(&["Rosters.Read"])));
        assert_eq!(
            validator
                .check(Some(forged.as_bytes()), Role::RostersRead)
                .await,
            Err(TokenError::UnknownKey)
        );
    }
    assert_eq!(issuer.reads(), 1);
    assert_eq!(validator.key_reads().await, 1);
    // Entra rotates: the new key id is read once the interval has passed, and only once.
    issuer.rotate("key-2");
    let rotated = bearer(issuer.token(&["Rosters.Read"]));
    assert_eq!(
        validator
            .check(Some(rotated.as_bytes()), Role::RostersRead)
            .await,
        Err(TokenError::UnknownKey)
    );
    *offset.lock().unwrap() = settings.min_refresh;
    validator
        .check(Some(rotated.as_bytes()), Role::RostersRead)
        .await
        .unwrap();
    validator
        .check(Some(good.as_bytes()), Role::RostersRead)
        .await
        .unwrap();
    assert_eq!(issuer.reads(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn without_reachable_keys_the_answer_is_503_not_a_pass() {
    let issuer = Issuer::start().await;
    let mut settings = auth_settings(&issuer);
    settings.discovery_url = "http://127.0.0.1:9/nothing/.well-known/openid-configuration".into();
    let validator = Validator::new(settings.clone(), HttpKeys::new(&settings).unwrap());
    let token = format!("Bearer {}", issuer.admin());
    assert_eq!(
        validator
            .check(Some(token.as_bytes()), Role::RostersRead)
            .await,
        Err(TokenError::KeysUnavailable)
    );
}

// ----- the OpenAPI document -----

/// Whether `value` conforms to `schema` (the JSON Schema subset utoipa writes: `type`,
/// `$ref`, `oneOf`/`anyOf`/`allOf`, `properties`, `required`, `items`, `enum`, `minimum`).
fn conforms(schema: &Value, value: &Value, document: &Value) -> Result<(), String> {
    if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
        let name = reference.trim_start_matches("#/components/schemas/");
        return conforms(&document["components"]["schemas"][name], value, document);
    }
    if let Some(options) = schema
        .get("oneOf")
        .or(schema.get("anyOf"))
        .and_then(Value::as_array)
        && !options
            .iter()
            .any(|option| conforms(option, value, document).is_ok())
    {
        return Err(format!("{value} matches none of {options:?}"));
    }
    if let Some(all) = schema.get("allOf").and_then(Value::as_array) {
        for part in all {
            conforms(part, value, document)?;
        }
    }
    if let Some(kinds) = schema.get("type") {
        let kinds: Vec<&str> = match kinds {
            Value::String(kind) => vec![kind.as_str()],
            Value::Array(kinds) => kinds.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        let ok = kinds.iter().any(|kind| match *kind {
            "null" => value.is_null(),
            "object" => value.is_object(),
            "array" => value.is_array(),
            "string" => value.is_string(),
            "integer" => value.is_i64() || value.is_u64(),
            "number" => value.is_number(),
            "boolean" => value.is_boolean(),
            _ => false,
        });
        if !ok {
            return Err(format!("{value} is not {kinds:?}"));
        }
    }
    if let Some(choices) = schema.get("enum").and_then(Value::as_array)
        && !choices.contains(value)
    {
        return Err(format!("{value} is not one of {choices:?}"));
    }
    if let (Some(minimum), Some(number)) = (
        schema.get("minimum").and_then(Value::as_f64),
        value.as_f64(),
    ) && number < minimum
    {
        return Err(format!("{number} is below {minimum}"));
    }
    if let Value::Object(object) = value {
        for name in schema
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            if !object.contains_key(name) {
                return Err(format!("`{name}` is missing from {value}"));
            }
        }
        if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
            for (name, property) in properties {
                if let Some(inner) = object.get(name) {
                    conforms(property, inner, document).map_err(|e| format!("{name}: {e}"))?;
                }
            }
        }
    }
    if let (Some(items), Value::Array(values)) = (schema.get("items"), value) {
        for (index, item) in values.iter().enumerate() {
            conforms(items, item, document).map_err(|e| format!("[{index}]: {e}"))?;
        }
    }
    Ok(())
}

/// The template of the route a path answers on.
fn template_of(path: &str) -> String {
    let path = path.split('?').next().unwrap_or_default();
    if path.starts_with("/api/rosters/") {
        "/api/rosters/{path}".into()
    } else if path.starts_with("/api/runs/") {
        "/api/runs/{id}".into()
    } else {
        path.into()
    }
}

/// Checks an answer against the document: its status is documented for the operation, its
/// content type is the documented one, and a JSON body conforms to the schema.
fn check_against_document(document: &Value, method: &str, path: &str, answer: &Answer) {
    let template = template_of(path);
    let operation = &document["paths"][&template][method.to_ascii_lowercase()];
    assert!(
        operation.is_object(),
        "{method} {template} is not documented"
    );
    let status = answer.status.to_string();
    let response = &operation["responses"][&status];
    assert!(
        response.is_object(),
        "{method} {template} answered {status}, which the document does not list: {}",
        String::from_utf8_lossy(&answer.body)
    );
    let content_type = answer.header("content-type").unwrap_or_default();
    let content = response["content"].as_object().unwrap();
    let (documented, media) = content.iter().next().unwrap();
    assert_eq!(
        content_type.split(';').next().unwrap(),
        documented,
        "{method} {template} {status}"
    );
    if documented.contains("json") {
        let body: Value = serde_json::from_slice(&answer.body).unwrap();
        if let Err(problem) = conforms(&media["schema"], &body, document) {
            panic!(
                "{method} {template} {status}: the body does not match its schema: {problem}\n{body:#}"
            );
        }
    }
}

#[test]
fn the_document_lists_exactly_the_routes_the_api_serves() {
    let document: Value = serde_json::from_str(&enroll_api::openapi::document_json()).unwrap();
    let mut documented: Vec<(String, String)> = Vec::new();
    for (path, operations) in document["paths"].as_object().unwrap() {
        for method in operations.as_object().unwrap().keys() {
            documented.push((method.to_ascii_uppercase(), path.clone()));
        }
    }
    documented.sort();
    let mut served: Vec<(String, String)> = enroll_api::ROUTES
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    served.sort();
    assert_eq!(documented, served);
    assert_eq!(
        document["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
}

// ----- one suite, two ways in -----

/// An answer as the caller sees it.
struct Answer {
    status: u16,
    headers: BTreeMap<String, String>,
    body: Vec<u8>,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(&self.body)))
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }

    fn code(&self) -> String {
        self.json()["code"].as_str().unwrap_or_default().to_owned()
    }
}

/// The published event payloads the Lambda adapter is fed (lambda_http's test data).
const EVENTS: [&str; 4] = [
    "apigw_proxy_request.json",
    "apigw_v2_proxy_request.json",
    "alb_request.json",
    "lambda_function_url_request.json",
];

fn event_fixture(name: &str) -> Value {
    serde_json::from_slice(
        &std::fs::read(root().join("tests/data/events/lambda").join(name)).unwrap(),
    )
    .unwrap()
}

/// `method path?query` with `headers` and `body`, as the event of kind `name` (one of
/// [`EVENTS`]), built from the published payload with only these fields replaced.
fn event(
    name: &str,
    method: &str,
    target: &str,
    headers: &[(String, String)],
    body: &[u8],
) -> Value {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let mut event = event_fixture(name);
    let header_map: serde_json::Map<String, Value> = headers
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), json!(v)))
        .chain([("host".to_owned(), json!("enroll.example.org"))])
        .collect();
    let pairs: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let single: serde_json::Map<String, Value> =
        pairs.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
    let (encoded, text) = match std::str::from_utf8(body) {
        Ok(text) => (false, text.to_owned()),
        Err(_) => (true, STANDARD.encode(body)),
    };
    let object = event.as_object_mut().unwrap();
    object.insert(
        "body".into(),
        if body.is_empty() {
            Value::Null
        } else {
            json!(text)
        },
    );
    object.insert("isBase64Encoded".into(), json!(encoded));
    match name {
        "apigw_proxy_request.json" => {
            object.insert("httpMethod".into(), json!(method));
            object.insert("path".into(), json!(path));
            object.insert("headers".into(), Value::Object(header_map.clone()));
            object.insert(
                "multiValueHeaders".into(),
                Value::Object(
                    header_map
                        .iter()
                        .map(|(k, v)| (k.clone(), json!([v])))
                        .collect(),
                ),
            );
            object.insert(
                "queryStringParameters".into(),
                Value::Object(single.clone()),
            );
            object.insert(
                "multiValueQueryStringParameters".into(),
                Value::Object(
                    single
                        .iter()
                        .map(|(k, v)| (k.clone(), json!([v])))
                        .collect(),
                ),
            );
        }
        "alb_request.json" => {
            object.insert("httpMethod".into(), json!(method));
            object.insert("path".into(), json!(path));
            object.insert("headers".into(), Value::Object(header_map));
            // ALB passes query values percent-encoded as they came.
            object.insert(
                "queryStringParameters".into(),
                Value::Object(
                    form_urlencoded::parse(query.as_bytes())
                        .map(|(k, v)| {
                            (
                                k.into_owned(),
                                json!(
                                    percent_encoding::utf8_percent_encode(
                                        &v,
                                        percent_encoding::NON_ALPHANUMERIC
                                    )
                                    .to_string()
                                ),
                            )
                        })
                        .collect(),
                ),
            );
        }
        _ => {
            // HTTP API v2 and function URLs share the v2 payload.
            object.insert("rawPath".into(), json!(path));
            object.insert("rawQueryString".into(), json!(query));
            object.insert("headers".into(), Value::Object(header_map));
            object.insert("queryStringParameters".into(), Value::Object(single));
            object.insert("cookies".into(), Value::Null);
            object["requestContext"]["http"]["method"] = json!(method);
            object["requestContext"]["http"]["path"] = json!(path);
        }
    }
    event
}

/// Runs an event through `lambda_http`'s own adapter and `enroll_lambda::respond`, and reads
/// the answer from the event source's response shape.
async fn through_lambda(api: &Arc<Api>, event: Value) -> Answer {
    use lambda_http::Service as _;
    let payload: lambda_http::request::LambdaRequest = serde_json::from_value(event).unwrap();
    let api = Arc::clone(api);
    let mut adapter = lambda_http::Adapter::from(lambda_http::service_fn(
        move |request: lambda_http::Request| {
            let api = Arc::clone(&api);
            async move { Ok::<_, std::convert::Infallible>(enroll_lambda::respond(&api, request).await) }
        },
    ));
    let response = adapter
        .call(lambda_http::LambdaEvent::new(
            payload,
            lambda_http::Context::default(),
        ))
        .await
        .unwrap();
    let response = serde_json::to_value(&response).unwrap();
    let mut headers = BTreeMap::new();
    for (name, value) in response["headers"].as_object().into_iter().flatten() {
        headers.insert(
            name.to_ascii_lowercase(),
            value.as_str().unwrap_or_default().to_owned(),
        );
    }
    for (name, values) in response["multiValueHeaders"]
        .as_object()
        .into_iter()
        .flatten()
    {
        if let Some(first) = values.as_array().and_then(|v| v.first()) {
            headers.insert(
                name.to_ascii_lowercase(),
                first.as_str().unwrap_or_default().to_owned(),
            );
        }
    }
    let text = response["body"].as_str().unwrap_or_default();
    let body = if response["isBase64Encoded"] == json!(true) {
        STANDARD.decode(text).unwrap()
    } else {
        text.as_bytes().to_vec()
    };
    Answer {
        status: u16::try_from(response["statusCode"].as_u64().unwrap()).unwrap(),
        headers,
        body,
    }
}

enum Door {
    Functions {
        front: HttpFront,
        http: reqwest::Client,
    },
    Lambda {
        api: Arc<Api>,
        next: AtomicUsize,
    },
}

/// The API behind one door, the pipeline (harness + handler) behind it, the simulated
/// tenant and the token issuer.
struct Rig {
    door: Door,
    harness: Harness,
    sim: SimHandle,
    issuer: Issuer,
    document: Value,
}

/// Who signs the tokens the API accepts.
enum Signer {
    /// The tests' stand-in ([`Issuer`]), which can also forge the tokens Entra never issues.
    StandIn,
    /// The simulated tenant, with these clients; tokens come from its token endpoint.
    SimulatedTenant(Vec<SimClient>),
}

impl Rig {
    async fn new(lambda: bool) -> Self {
        Self::signed_by(lambda, Signer::StandIn).await
    }

    async fn signed_by(lambda: bool, signer: Signer) -> Self {
        let issuer = Issuer::start().await;
        let mut sim_config = SimConfig::default();
        if let Signer::SimulatedTenant(clients) = &signer {
            sim_config.apis = vec![entra::AUDIENCE.to_owned()];
            sim_config.clients = clients.clone();
        }
        let sim = start(sim_config, golden_tenant()).await.unwrap();
        let prefix = format!("a{:08x}-", fastrand::u32(..));
        let mut env: Vec<(String, String)> = sim.client_settings();
        match signer {
            Signer::StandIn => env.extend(issuer.settings()),
            Signer::SimulatedTenant(_) => env.extend(
                [
                    ("ENROLL_API_AUDIENCE", entra::AUDIENCE.to_owned()),
                    ("ENROLL_API_TENANT_ID", sim.tenant_id().to_owned()),
                    ("ENROLL_API_DISCOVERY_URL", sim.discovery_url()),
                ]
                .map(|(k, v)| (k.to_owned(), v)),
            ),
        }
        env.extend(
            [
                ("ENROLL_INVITE_DOMAINS", "*"),
                ("ENROLL_GRAPH_RETRY_BASE_MS", "20"),
                ("ENROLL_API_MAX_BODY_BYTES", &MAX_BODY.to_string()),
            ]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string())),
        );
        let mut config = HarnessConfig::new(crate::handler_binary(), root(), storage());
        config.prefix = prefix.clone();
        config.visibility_timeout = Some(Duration::from_millis(200));
        config.env = env.clone();
        let harness = Harness::start(config).await.unwrap();
        let door = if lambda {
            env.push(("ENROLL_STORAGE_PREFIX".into(), prefix.clone()));
            env.push(("AzureWebJobsStorage".into(), storage()));
            let env = Env::from_pairs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
            let store = Store::new(&StorageConfig::from_connection_string(&storage()).unwrap())
                .unwrap()
                .with_layout(Layout::with_prefix(&prefix));
            let world = World::new(
                GraphClient::new(graph_config(&env).unwrap()).unwrap(),
                store,
                step_config(&env, true).unwrap(),
            );
            let api = Api::new(Arc::new(world), ApiSettings::from_env(&env).unwrap()).unwrap();
            Door::Lambda {
                api: Arc::new(api),
                next: AtomicUsize::new(0),
            }
        } else {
            Door::Functions {
                front: harness.serve_http(vec![FUNCTION_KEY.into()]).await.unwrap(),
                http: reqwest::Client::new(),
            }
        };
        let document = serde_json::from_str(&enroll_api::openapi::document_json()).unwrap();
        Self {
            door,
            harness,
            sim,
            issuer,
            document,
        }
    }

    /// Sends a request through the door and checks the answer against the document.
    async fn send(
        &self,
        method: &str,
        target: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Answer {
        let mut all: Vec<(String, String)> = headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        if let Some(token) = token {
            all.push(("Authorization".into(), format!("Bearer {token}")));
        }
        let answer = match &self.door {
            Door::Functions { front, http } => {
                let separator = if target.contains('?') { '&' } else { '?' };
                let url = format!("{}{target}{separator}code={FUNCTION_KEY}", front.url());
                let mut request = http
                    .request(method.parse().unwrap(), url)
                    .body(body.to_vec());
                for (name, value) in &all {
                    request = request.header(name, value);
                }
                let response = request.send().await.unwrap();
                let status = response.status().as_u16();
                let headers = response
                    .headers()
                    .iter()
                    .map(|(k, v)| {
                        (
                            k.as_str().to_owned(),
                            v.to_str().unwrap_or_default().to_owned(),
                        )
                    })
                    .collect();
                Answer {
                    status,
                    headers,
                    body: response.bytes().await.unwrap().to_vec(),
                }
            }
            Door::Lambda { api, next } => {
                let kind = EVENTS[next.fetch_add(1, Ordering::SeqCst) % EVENTS.len()];
                through_lambda(api, event(kind, method, target, &all, body)).await
            }
        };
        check_against_document(&self.document, method, target, &answer);
        answer
    }
}

/// Every endpoint's success path and every refusal, then a roster put and reconciled until
/// the simulated tenant holds exactly its people.
async fn the_api_works_end_to_end(lambda: bool) {
    let mut rig = Rig::new(lambda).await;
    let issuer = &rig.issuer;
    let admin = issuer.admin();
    let roster_url = format!("/api/rosters/{}", ALPHA.replace(' ', "%20"));
    let csv = [("Content-Type", "text/csv")];

    // Health and the document need no token.
    let health = rig.send("GET", "/api/health", None, &[], b"").await;
    assert_eq!(
        (health.status, health.json()["status"].clone()),
        (200, json!("ok"))
    );
    let document = rig.send("GET", "/api/openapi.json", None, &[], b"").await;
    assert_eq!(document.json(), rig.document);

    // Refusals of the token, each a 401 problem that says which check failed.
    let mut wrong_audience = issuer.claims(&["Rosters.Read"]);
    wrong_audience["aud"] = json!("api://someone-else");
    let mut wrong_issuer = issuer.claims(&["Rosters.Read"]);
    wrong_issuer["iss"] = json!("https://sts.windows.net/another-tenant/");
    let mut expired = issuer.claims(&["Rosters.Read"]);
    expired["exp"] = json!(entra::now() - 3600);
    let stranger = Key::new("stranger");
    let refusals: Vec<(Option<String>, &str, &str)> = vec![
        (None, "missing_token", "no bearer token"),
        (
            Some(issuer.sign(&wrong_audience)),
            "invalid_token",
            "another audience",
        ),
        (Some(issuer.sign(&wrong_issuer)), "invalid_token", "issuer"),
        (Some(issuer.sign(&expired)), "invalid_token", "expired"),
        (
            Some(stranger.sign(&issuer.current_kid(), &issuer.claims(&["Rosters.Read"]))),
            "invalid_token",
            "signature",
        ),
        (
            Some(stranger.sign("unknown-kid", &issuer.claims(&["Rosters.Read"]))),
            "invalid_token",
            "does not publish",
        ),
    ];
    for (token, code, says) in &refusals {
        let answer = rig
            .send("GET", "/api/status", token.as_deref(), &[], b"")
            .await;
        assert_eq!((answer.status, answer.code()), (401, code.to_string()));
        assert!(
            answer.json()["detail"].as_str().unwrap().contains(says),
            "{}",
            answer.json()
        );
        assert!(
            answer
                .header("www-authenticate")
                .unwrap()
                .starts_with("Bearer")
        );
        if let Some(token) = token {
            assert!(!String::from_utf8_lossy(&answer.body).contains(token.as_str()));
        }
    }
    // A valid token without the route's role: 403.
    let reader = issuer.token(&["Rosters.Read"]);
    let forbidden = rig
        .send(
            "PUT",
            &roster_url,
            Some(&reader),
            &csv,
            ALPHA_ROSTER.as_bytes(),
        )
        .await;
    assert_eq!(
        (forbidden.status, forbidden.code()),
        (403, "missing_role".to_owned())
    );
    assert!(
        forbidden.json()["detail"]
            .as_str()
            .unwrap()
            .contains("Rosters.Write")
    );

    // Refusals of the request: traversal, a body too large, an invalid roster, a wrong type.
    for traversal in [
        "/api/rosters/%2E%2E%2Fsecrets.csv",
        "/api/rosters/a%5C..%5Cb.csv",
        "/api/rosters/%2Fetc%2Fx.csv",
    ] {
        let answer = rig
            .send(
                "PUT",
                traversal,
                Some(&admin),
                &csv,
                ALPHA_ROSTER.as_bytes(),
            )
            .await;
        assert_eq!(
            (answer.status, answer.code()),
            (400, "invalid_roster_path".to_owned()),
            "{traversal}"
        );
    }
    let large = "Someone;someone@contoso.com\n".repeat(MAX_BODY / 20);
    let too_large = rig
        .send("PUT", &roster_url, Some(&admin), &csv, large.as_bytes())
        .await;
    assert_eq!(
        (too_large.status, too_large.code()),
        (413, "body_too_large".to_owned())
    );
    let invalid = rig
        .send(
            "PUT",
            &roster_url,
            Some(&admin),
            &csv,
            b"Ann;ann@contoso.com\nBob;not-an-address\n\"Cy;cy@contoso.com\n",
        )
        .await;
    assert_eq!(
        (invalid.status, invalid.code()),
        (400, "invalid_roster".to_owned())
    );
    let errors = invalid.json()["errors"].clone();
    assert_eq!(errors[0]["line"], 2);
    assert_eq!(errors[0]["column"], 2);
    assert_eq!(errors[0]["code"], "invalid_email");
    assert_eq!(errors[1]["code"], "malformed_csv");
    let nothing = rig.send("GET", &roster_url, Some(&admin), &[], b"").await;
    assert_eq!(nothing.status, 404, "an invalid roster is not stored");
    let json_roster = rig
        .send(
            "PUT",
            &roster_url,
            Some(&admin),
            &[("Content-Type", "application/json")],
            b"{}",
        )
        .await;
    assert_eq!(json_roster.status, 415);

    // Plan: exactly what `enroll plan --format json` gives for this roster and tenant.
    let plan = rig
        .send(
            "POST",
            &format!("/api/plan?roster={}", ALPHA.replace(' ', "%20")),
            Some(&reader),
            &csv,
            ALPHA_ROSTER.as_bytes(),
        )
        .await;
    assert_eq!(plan.status, 200);
    assert_eq!(
        plan.json(),
        cli_plan(ALPHA, ALPHA_ROSTER, &rig.sim.snapshot().await)
    );
    let by_package = rig
        .send(
            "POST",
            "/api/plan?accessPackage=00000000-0000-0000-0000-00000000beef",
            Some(&reader),
            &csv,
            ALPHA_ROSTER.as_bytes(),
        )
        .await;
    assert_eq!(by_package.json()["errors"][0]["code"], "unknown_package_id");

    // Put: stored with its ETag; a stale If-Match is refused; the current one passes.
    let stored = rig
        .send(
            "PUT",
            &roster_url,
            Some(&admin),
            &csv,
            ALPHA_ROSTER.as_bytes(),
        )
        .await;
    assert_eq!(
        stored.status,
        200,
        "{}",
        String::from_utf8_lossy(&stored.body)
    );
    let etag = stored.header("etag").unwrap().to_owned();
    assert_eq!(stored.json()["etag"], etag.as_str());
    assert_eq!(stored.json()["people"], 4);
    let read = rig.send("GET", &roster_url, Some(&reader), &[], b"").await;
    assert_eq!(
        (read.status, read.body.as_slice(), read.header("etag")),
        (200, ALPHA_ROSTER.as_bytes(), Some(etag.as_str()))
    );
    let edited = format!("{ALPHA_ROSTER}Gus;gus@woodgrove.pl\n");
    let again = rig
        .send(
            "PUT",
            &roster_url,
            Some(&admin),
            &[("Content-Type", "text/csv"), ("If-Match", &etag)],
            edited.as_bytes(),
        )
        .await;
    assert_eq!(again.status, 200);
    let stale = rig
        .send(
            "PUT",
            &roster_url,
            Some(&admin),
            &[("Content-Type", "text/csv"), ("If-Match", &etag)],
            ALPHA_ROSTER.as_bytes(),
        )
        .await;
    assert_eq!(
        (stale.status, stale.code()),
        (412, "precondition_failed".to_owned())
    );
    let current = again.header("etag").unwrap().to_owned();
    let back = rig
        .send(
            "PUT",
            &roster_url,
            Some(&admin),
            &[("Content-Type", "text/csv"), ("If-Match", &current)],
            ALPHA_ROSTER.as_bytes(),
        )
        .await;
    assert_eq!(back.status, 200);

    // Reconcile: an override needs who and why; a reconcile answers 202 with where to look.
    let json_type = [("Content-Type", "application/json")];
    let bare = json!({"roster": ALPHA, "allowRemovals": true}).to_string();
    let refused = rig
        .send(
            "POST",
            "/api/reconcile",
            Some(&admin),
            &json_type,
            bare.as_bytes(),
        )
        .await;
    assert_eq!(
        (refused.status, refused.code()),
        (400, "override_needs_who_and_why".to_owned())
    );
    let missing = rig
        .send(
            "POST",
            "/api/reconcile",
            Some(&admin),
            &json_type,
            json!({"roster": "Projects/Nobody.csv"})
                .to_string()
                .as_bytes(),
        )
        .await;
    assert_eq!(missing.status, 404);
    let not_allowed = rig
        .send("POST", "/api/reconcile", Some(&reader), &json_type, b"{}")
        .await;
    assert_eq!(not_allowed.status, 403);
    let body = json!({"roster": ALPHA, "allowRemovals": true, "override": {"by": "Ann Admin", "reason": "CHG-42: project closed"}}).to_string();
    let started = rig
        .send(
            "POST",
            "/api/reconcile",
            Some(&admin),
            &json_type,
            body.as_bytes(),
        )
        .await;
    assert_eq!(
        started.status,
        202,
        "{}",
        String::from_utf8_lossy(&started.body)
    );
    let run = started.json();
    let location = started.header("location").unwrap().to_owned();
    assert_eq!(
        location,
        format!("/api/runs/{}", run["runId"].as_str().unwrap())
    );
    assert_eq!(run["queued"], json!([ALPHA]));
    let queued = rig.send("GET", &location, Some(&reader), &[], b"").await;
    assert_eq!(queued.json()["rosters"][0]["state"], "queued");

    // The pipeline does the work; the tenant then holds exactly the roster's people.
    rig.harness
        .run_until_idle(Duration::from_secs(60))
        .await
        .unwrap();
    let tenant = rig.sim.settled().await;
    let source = RosterSource {
        path: ALPHA.into(),
        version: content_version(ALPHA_ROSTER.as_bytes()),
        roster: parse(ALPHA, ALPHA_ROSTER.as_bytes(), Limits::default()),
    };
    let left = enroll_core::plan::plan(&[source], &tenant, &PlanOptions::default());
    let package = &left.packages[0];
    assert_eq!(
        (
            package.invite.len(),
            package.assign.len(),
            package.remove.len(),
            package.unchanged
        ),
        (0, 0, 0, 4),
        "the tenant holds exactly the roster's people"
    );
    let done = rig.send("GET", &location, Some(&reader), &[], b"").await;
    let roster = &done.json()["rosters"][0];
    assert_eq!(roster["roster"], ALPHA);
    assert_eq!(roster["state"], "planned");
    assert!(
        roster["counts"]["unchanged"].as_u64().unwrap()
            + roster["counts"]["assign"].as_u64().unwrap()
            + roster["counts"]["invite"].as_u64().unwrap()
            >= 1
    );
    let audit = rig
        .harness
        .store()
        .list_blobs(&rig.harness.store().layout().audit, "")
        .await
        .unwrap();
    let mut overrides = 0;
    for log in audit {
        for line in rig.harness.store().read_audit(&log.name).await.unwrap() {
            if line.contains("override requested through the API by Ann Admin")
                && line.contains("CHG-42")
            {
                overrides += 1;
            }
        }
    }
    assert_eq!(
        overrides, 1,
        "the override is audited once, with who and why"
    );
    let status = rig
        .send("GET", "/api/status", Some(&reader), &[], b"")
        .await;
    let packages = status.json()["packages"].clone();
    assert!(
        packages
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["accessPackage"]["id"] == "pkg-alpha-manager" && p["roster"] == ALPHA),
        "{packages:#}"
    );
    let unknown_run = rig
        .send(
            "GET",
            "/api/runs/20200101T000000Z-0000",
            Some(&reader),
            &[],
            b"",
        )
        .await;
    assert_eq!(unknown_run.status, 404);

    // App roles: no manifest is stored, so none is queued; an unknown one is 404.
    let roles = rig
        .send("POST", "/api/roles/reconcile", Some(&admin), &[], b"")
        .await;
    assert_eq!(
        (roles.status, roles.json()["queued"].clone()),
        (202, json!([]))
    );
    let unknown = rig
        .send(
            "POST",
            "/api/roles/reconcile",
            Some(&admin),
            &json_type,
            json!({"manifest": "nope.json"}).to_string().as_bytes(),
        )
        .await;
    assert_eq!(unknown.status, 404);
}

/// `enroll plan --format json` of one roster against a snapshot of the tenant.
fn cli_plan(name: &str, text: &str, tenant: &TenantSnapshot) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rosters").join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, text).unwrap();
    let snapshot = dir.path().join("tenant.json");
    std::fs::write(&snapshot, serde_json::to_vec(tenant).unwrap()).unwrap();
    let output = std::process::Command::new(crate::enroll_binary())
        .args([
            "plan",
            dir.path().join("rosters").to_str().unwrap(),
            "--tenant",
        ])
        .arg(&snapshot)
        .args(["--format", "json"])
        .env_clear()
        .output()
        .unwrap();
    serde_json::from_slice(&output.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn through_the_functions_host_every_endpoint_and_refusal() {
    the_api_works_end_to_end(false).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn through_lambda_events_every_endpoint_and_refusal() {
    the_api_works_end_to_end(true).await;
}

/// A token as a client gets it: client credentials at the simulated tenant's token endpoint,
/// for the API's `.default` scope.
async fn client_credentials_token(sim: &SimHandle, client: &SimClient, scope: &str) -> String {
    let answer: Value = reqwest::Client::new()
        .post(format!(
            "{}/{}/oauth2/v2.0/token",
            sim.base_url(),
            sim.tenant_id()
        ))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", client.client_id.as_str()),
            ("client_secret", client.client_secret.as_str()),
            ("scope", scope),
        ])
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap()
        .json()
        .await
        .unwrap();
    answer["access_token"].as_str().unwrap().to_owned()
}

/// The API trusts the simulated tenant as it trusts Entra (discovery, JWKS, issuer,
/// audience, roles): a reader's token from the token endpoint reads and cannot write, a
/// writer's stores a roster, and the tenant's Graph token is refused for its audience.
async fn tokens_the_simulated_tenant_issues_open_the_api(lambda: bool) {
    let reader = SimClient {
        client_id: "hr-system".into(),
        client_secret: "hr-secret".into(),
        roles: vec!["Rosters.Read".into()],
    };
    let writer = SimClient {
        client_id: "roster-pipeline".into(),
        client_secret: "pipeline-secret".into(),
        roles: vec!["Rosters.Read".into(), "Rosters.Write".into()],
    };
    let rig = Rig::signed_by(
        lambda,
        Signer::SimulatedTenant(vec![reader.clone(), writer.clone()]),
    )
    .await;
    let scope = format!("{}/.default", entra::AUDIENCE);
    let reader_token = client_credentials_token(&rig.sim, &reader, &scope).await;
    let writer_token = client_credentials_token(&rig.sim, &writer, &scope).await;
    let graph_token =
        client_credentials_token(&rig.sim, &writer, "https://graph.microsoft.com/.default").await;
    let roster_url = format!("/api/rosters/{}", ALPHA.replace(' ', "%20"));
    let csv = [("Content-Type", "text/csv")];

    let status = rig
        .send("GET", "/api/status", Some(&reader_token), &[], b"")
        .await;
    assert_eq!(status.status, 200, "{}", status.json());
    let refused = rig
        .send(
            "PUT",
            &roster_url,
            Some(&reader_token),
            &csv,
            ALPHA_ROSTER.as_bytes(),
        )
        .await;
    assert_eq!(
        (refused.status, refused.code()),
        (403, "missing_role".to_owned())
    );
    let stored = rig
        .send(
            "PUT",
            &roster_url,
            Some(&writer_token),
            &csv,
            ALPHA_ROSTER.as_bytes(),
        )
        .await;
    assert!(
        matches!(stored.status, 200 | 201),
        "{} {}",
        stored.status,
        stored.json()
    );
    let read = rig
        .send("GET", &roster_url, Some(&reader_token), &[], b"")
        .await;
    assert_eq!(
        (read.status, read.body.as_slice()),
        (200, ALPHA_ROSTER.as_bytes())
    );
    let for_graph = rig
        .send("GET", "/api/status", Some(&graph_token), &[], b"")
        .await;
    assert_eq!(
        (for_graph.status, for_graph.code()),
        (401, "invalid_token".to_owned())
    );
    assert!(
        for_graph.json()["detail"]
            .as_str()
            .unwrap()
            .contains("another audience"),
        "{}",
        for_graph.json()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn through_the_functions_host_tokens_from_the_simulated_tenant() {
    tokens_the_simulated_tenant_issues_open_the_api(false).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn through_lambda_events_tokens_from_the_simulated_tenant() {
    tokens_the_simulated_tenant_issues_open_the_api(true).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_published_lambda_events_get_problem_answers_in_their_own_shape() {
    let issuer = Issuer::start().await;
    let env: Vec<(String, String)> = issuer.settings();
    let env = Env::from_pairs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let store = Store::new(&StorageConfig::from_connection_string(&storage()).unwrap()).unwrap();
    let graph = GraphClient::new(
        graph_config(&Env::from_pairs([
            ("ENROLL_TENANT_ID", "t"),
            ("ENROLL_CLIENT_ID", "c"),
            ("ENROLL_CLIENT_SECRET", "s"),
        ]))
        .unwrap(),
    )
    .unwrap();
    let world = World::new(graph, store, enroll_steps::StepConfig::default());
    let api = Arc::new(Api::new(Arc::new(world), ApiSettings::from_env(&env).unwrap()).unwrap());
    let names: Vec<String> = std::fs::read_dir(root().join("tests/data/events/lambda"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".json"))
        .collect();
    assert_eq!(names.len(), 15);
    for name in names {
        let answer = through_lambda(&api, event_fixture(&name)).await;
        // None of the published paths is an API route: each gets a 404 problem document.
        assert_eq!(answer.status, 404, "{name}");
        assert_eq!(
            answer.header("content-type"),
            Some("application/problem+json"),
            "{name}"
        );
        assert_eq!(answer.json()["code"], "no_route", "{name}");
    }
    // A stage in the path is not part of the route: `/Prod/api/health` is health.
    let mut staged = event(
        "apigw_v2_proxy_request.json",
        "GET",
        "/Prod/api/health",
        &[],
        b"",
    );
    staged["requestContext"]["stage"] = json!("Prod");
    let health = through_lambda(&api, staged).await;
    assert_eq!(
        (health.status, health.json()["status"].clone()),
        (200, json!("ok"))
    );
    let mut rest = event("apigw_proxy_request.json", "GET", "/api/health", &[], b"");
    rest["requestContext"]["stage"] = json!("prod");
    assert_eq!(through_lambda(&api, rest).await.status, 200);
}

// ----- the served API, fuzzed; the Lambda binary, run -----

/// A tool the test script installs into `.tools/`, by the variable that names it.
fn tool(variable: &str) -> String {
    std::env::var(variable).unwrap_or_else(|_| {
        panic!("{variable} is not set: scripts/test installs the tool (scripts/pytools) and sets it; run ./scripts/test")
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn schemathesis_finds_no_server_error_and_no_answer_outside_the_document() {
    let schemathesis = tool("ENROLL_SCHEMATHESIS");
    let rig = Rig::new(false).await;
    let Door::Functions { front, .. } = &rig.door else {
        panic!("the Functions door")
    };
    let url = front.url();
    let token = rig.issuer.admin();
    let arguments = vec![
        "run".to_owned(),
        format!("{url}/api/openapi.json"),
        "--url".to_owned(),
        url.clone(),
        "--header".to_owned(),
        format!("Authorization: Bearer {token}"),
        "--header".to_owned(),
        format!("x-functions-key: {FUNCTION_KEY}"),
        "--checks".to_owned(),
        "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance".to_owned(),
        "--max-examples".to_owned(),
        "15".to_owned(),
        "--seed".to_owned(),
        "11".to_owned(),
        "--workers".to_owned(),
        "1".to_owned(),
    ];
    let output = tokio::task::spawn_blocking(move || {
        // Schemathesis keeps a cache in its working folder; not in the repository.
        let scratch = tempfile::tempdir().unwrap();
        std::process::Command::new(schemathesis)
            .args(&arguments)
            .current_dir(scratch.path())
            .env("NO_COLOR", "1")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "{report}");
    assert!(report.contains("passed"), "{report}");
}

/// Kills the process group of a child this test started, when dropped.
struct Group(std::process::Child);

impl Group {
    /// Sends `signal` to every process of the group (`--`: a negative id is a group, not
    /// an option of procps' kill).
    fn signal(&self, signal: &str) {
        let _ = std::process::Command::new("kill")
            .args([signal, "--", &format!("-{}", self.0.id())])
            .status();
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        // cargo lambda watch stops its function and itself on TERM; if it has not within
        // ten seconds, the group is killed, so no test leaves a server running.
        self.signal("-TERM");
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(10) {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        self.signal("-KILL");
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_lambda_binary_answers_over_http_under_cargo_lambda_watch() {
    use std::os::unix::process::CommandExt as _;
    let cargo_lambda = tool("ENROLL_CARGO_LAMBDA");
    let issuer = Issuer::start().await;
    let sim = start(SimConfig::default(), golden_tenant()).await.unwrap();
    let prefix = format!("l{:08x}-", fastrand::u32(..));
    let mut env: Vec<(String, String)> = sim.client_settings();
    env.extend(issuer.settings());
    env.push(("ENROLL_INVITE_DOMAINS".into(), "*".into()));
    env.push(("ENROLL_STORAGE_PREFIX".into(), prefix.clone()));
    env.push(("AzureWebJobsStorage".into(), storage()));
    let env_file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        env_file.path(),
        env.iter()
            .map(|(k, v)| format!("{k}=\"{}\"\n", v.replace('"', "\\\"")))
            .collect::<String>(),
    )
    .unwrap();
    let port = std::net::TcpListener::bind(("127.0.0.1", 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    // `cargo lambda watch` builds the binary with cargo and runs it against its own
    // emulation of the Lambda runtime API; requests to /lambda-url/{function}/… arrive as
    // function URL events.
    let mut command = std::process::Command::new(&cargo_lambda);
    command
        .args([
            "lambda",
            "watch",
            "--package",
            "enroll-lambda",
            "--ignore-changes",
            "--quiet",
        ])
        .args([
            "--invoke-address",
            "127.0.0.1",
            "--invoke-port",
            &port.to_string(),
        ])
        .arg("--env-file")
        .arg(env_file.path())
        .current_dir(root())
        .env_remove("CARGO_TARGET_DIR")
        .env("CARGO_TERM_COLOR", "never")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .process_group(0);
    for (name, _) in std::env::vars() {
        if name.starts_with("CARGO_") && name != "CARGO_HOME" && name != "CARGO_INCREMENTAL"
            || name == "RUSTFLAGS"
        {
            command.env_remove(name);
        }
    }
    let mut group = Group(command.spawn().unwrap());
    let base = format!("http://127.0.0.1:{port}/lambda-url/enroll-lambda");
    let http = reqwest::Client::new();
    let started = Instant::now();
    let health = loop {
        if let Ok(answer) = http.get(format!("{base}/api/health")).send().await
            && answer.status().is_success()
        {
            break answer.json::<Value>().await.unwrap();
        }
        if let Ok(Some(status)) = group.0.try_wait() {
            panic!("cargo lambda watch stopped with {status} before serving the function");
        }
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "cargo lambda watch did not serve the function within 10 minutes"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert_eq!(health["status"], "ok");
    let url = format!("{base}/api/rosters/{}", ALPHA.replace(' ', "%20"));
    let refused = http.get(&url).send().await.unwrap();
    assert_eq!(refused.status(), 401);
    let stored = http
        .put(&url)
        .bearer_auth(issuer.admin())
        .header("Content-Type", "text/csv")
        .body(ALPHA_ROSTER)
        .send()
        .await
        .unwrap();
    assert_eq!(stored.status(), 200);
    let read = http
        .get(&url)
        .bearer_auth(issuer.admin())
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), 200);
    assert_eq!(
        read.bytes().await.unwrap().as_ref(),
        ALPHA_ROSTER.as_bytes()
    );
    let plan = http
        .post(format!(
            "{base}/api/plan?roster={}",
            ALPHA.replace(' ', "%20")
        ))
        .bearer_auth(issuer.token(&["Rosters.Read"]))
        .header("Content-Type", "text/csv")
        .body(ALPHA_ROSTER)
        .send()
        .await
        .unwrap();
    assert_eq!(plan.status(), 200);
    assert_eq!(
        plan.json::<Value>().await.unwrap(),
        cli_plan(ALPHA, ALPHA_ROSTER, &sim.snapshot().await)
    );
}
