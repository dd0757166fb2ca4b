//! A stand-in for Entra ID's token side, for the API's tests: RSA key pairs, RS256 access
//! tokens signed with them (as Entra issues them to a client-credentials caller), and the
//! tenant's OpenID discovery document and JWKS at Entra's paths, over HTTP on loopback.
//!
//! The happy path also runs on tokens the simulated tenant issues through its token
//! endpoint (`tokens_the_simulated_tenant_issues_open_the_api`); this stand-in is for the
//! tokens Entra never issues, which is how the refusals are made: a wrong key, an unknown key
//! id, a token past its time, for another audience or issuer, or without the role.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::{KeyPair as _, RSA_PKCS1_SHA256};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use warp::Filter;

/// The audience the tests' API accepts (an application ID URI, as in v1 tokens).
pub const AUDIENCE: &str = "api://enroll-test";

/// A signing key and its id.
pub struct Key {
    pub kid: String,
    pair: KeyPair,
}

impl Key {
    pub fn new(kid: &str) -> Self {
        Self {
            kid: kid.to_owned(),
            pair: KeyPair::generate(KeySize::Rsa2048).unwrap(),
        }
    }

    /// The key as a JWK (`n` and `e` read from its PKCS#1 DER).
    fn jwk(&self) -> Value {
        let (n, e) = rsa_public_components(self.pair.public_key().as_ref());
        json!({"kty": "RSA", "use": "sig", "kid": self.kid, "n": URL_SAFE_NO_PAD.encode(n), "e": URL_SAFE_NO_PAD.encode(e)})
    }

    /// A compact JWS of `claims`, RS256, naming `kid` in its header.
    pub fn sign(&self, kid: &str, claims: &Value) -> String {
        let header = json!({"typ": "JWT", "alg": "RS256", "kid": kid});
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let mut signature = vec![0; self.pair.public_modulus_len()];
        self.pair
            .sign(
                &RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                input.as_bytes(),
                &mut signature,
            )
            .unwrap();
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
    }
}

/// `SEQUENCE { INTEGER n, INTEGER e }` → (n, e) without leading zeros.
fn rsa_public_components(der: &[u8]) -> (Vec<u8>, Vec<u8>) {
    fn element(input: &[u8], tag: u8) -> (&[u8], &[u8]) {
        assert_eq!(input[0], tag);
        let (length, header) = match input[1] {
            short if short < 0x80 => (usize::from(short), 2),
            long => {
                let bytes = usize::from(long & 0x7f);
                let length = input[2..2 + bytes]
                    .iter()
                    .fold(0usize, |n, b| n << 8 | usize::from(*b));
                (length, 2 + bytes)
            }
        };
        (&input[header..header + length], &input[header + length..])
    }
    let (sequence, _) = element(der, 0x30);
    let (n, rest) = element(sequence, 0x02);
    let (e, _) = element(rest, 0x02);
    let trim = |v: &[u8]| v.iter().skip_while(|b| **b == 0).copied().collect();
    (trim(n), trim(e))
}

/// The token side of a test tenant, served on loopback.
pub struct Issuer {
    pub tenant: String,
    base: String,
    /// The keys the JWKS publishes; the first signs new tokens.
    published: Arc<Mutex<Vec<Arc<Key>>>>,
    /// How often the JWKS was read.
    reads: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Issuer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

impl Issuer {
    pub async fn start() -> Self {
        let tenant = format!(
            "{:08x}-0000-4000-8000-{:012x}",
            fastrand::u32(..),
            fastrand::u64(..1 << 48)
        );
        let published = Arc::new(Mutex::new(vec![Arc::new(Key::new("key-1"))]));
        let reads = Arc::new(AtomicU64::new(0));
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let discovery = {
            let (base, tenant) = (base.clone(), tenant.clone());
            warp::path!(String / "v2.0" / ".well-known" / "openid-configuration").map(
                move |_: String| {
                    warp::reply::json(&json!({
                        "issuer": format!("{base}/{{tenantid}}/v2.0"),
                        "jwks_uri": format!("{base}/{tenant}/discovery/v2.0/keys"),
                        "token_endpoint": format!("{base}/{tenant}/oauth2/v2.0/token"),
                    }))
                },
            )
        };
        let keys = {
            let (published, reads) = (Arc::clone(&published), Arc::clone(&reads));
            warp::path!(String / "discovery" / "v2.0" / "keys").map(move |_: String| {
                reads.fetch_add(1, Ordering::SeqCst);
                let keys: Vec<Value> = published.lock().unwrap().iter().map(|k| k.jwk()).collect();
                warp::reply::json(&json!({ "keys": keys }))
            })
        };
        let task = tokio::spawn(async move {
            warp::serve(discovery.or(keys))
                .incoming(listener)
                .run()
                .await;
        });
        Self {
            tenant,
            base,
            published,
            reads,
            task,
        }
    }

    pub fn discovery_url(&self) -> String {
        format!(
            "{}/{}/v2.0/.well-known/openid-configuration",
            self.base, self.tenant
        )
    }

    /// The issuer its tokens carry (Entra's v2 form: `{authority}/{tenant}/v2.0`).
    pub fn issuer(&self) -> String {
        format!("{}/{}/v2.0", self.base, self.tenant)
    }

    /// How often the JWKS was read.
    pub fn reads(&self) -> u64 {
        self.reads.load(Ordering::SeqCst)
    }

    /// The settings that point the API at this issuer.
    pub fn settings(&self) -> Vec<(String, String)> {
        [
            ("ENROLL_API_AUDIENCE", AUDIENCE.to_owned()),
            ("ENROLL_API_TENANT_ID", self.tenant.clone()),
            ("ENROLL_API_DISCOVERY_URL", self.discovery_url()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }

    /// The claims of a client-credentials access token for the API with `roles`.
    pub fn claims(&self, roles: &[&str]) -> Value {
        let now = now();
        json!({
            "aud": AUDIENCE,
            "iss": self.issuer(),
            "iat": now - 60,
            "nbf": now - 60,
            "exp": now + 3600,
            "tid": self.tenant,
            "oid": "0b1c2d3e-0000-4000-8000-00000000c0de",
            "sub": "0b1c2d3e-0000-4000-8000-00000000c0de",
            "azp": "c11e0000-0000-4000-8000-0000000000a1",
            "azpacr": "1",
            "ver": "2.0",
            "roles": roles,
        })
    }

    /// A token with `claims`, signed with the current key.
    pub fn sign(&self, claims: &Value) -> String {
        let key = Arc::clone(&self.published.lock().unwrap()[0]);
        key.sign(&key.kid, claims)
    }

    /// A valid token granting `roles`.
    pub fn token(&self, roles: &[&str]) -> String {
        self.sign(&self.claims(roles))
    }

    /// A valid token with every app role.
    pub fn admin(&self) -> String {
        self.token(&["Rosters.Read", "Rosters.Write", "Runs.Start"])
    }

    /// Publishes a new key in front of the old ones (Entra's rotation) and signs with it.
    pub fn rotate(&self, kid: &str) {
        self.published
            .lock()
            .unwrap()
            .insert(0, Arc::new(Key::new(kid)));
    }

    /// The id of the key that signs.
    pub fn current_kid(&self) -> String {
        self.published.lock().unwrap()[0].kid.clone()
    }
}
