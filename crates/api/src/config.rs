//! The API's settings (README, "Configuration"), read once at start from the same
//! environment as the rest of enroll.

use std::time::Duration;

use enroll_steps::config::{ConfigError, Env};

use crate::auth::AuthSettings;

/// The body limit unless `ENROLL_API_MAX_BODY_BYTES` says otherwise: a roster's own limit.
pub const DEFAULT_MAX_BODY_BYTES: usize = enroll_core::roster::MAX_FILE_BYTES;

/// The Functions front end's own request limit (about 100 MB); a larger API limit would
/// never be reached there.
const MOST_BODY_BYTES: usize = 100 * 1024 * 1024;

/// What the API needs beyond the steps' settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiSettings {
    /// How tokens are checked; `None` when `ENROLL_API_AUDIENCE` is not set, and then every
    /// route but health and the OpenAPI document answers 503.
    pub auth: Option<AuthSettings>,
    /// The largest request body taken in.
    pub max_body_bytes: usize,
    /// Put before the queue names (`reconcile`, `map-roles`), like the containers'
    /// (`ENROLL_STORAGE_PREFIX`), so tests sharing one account stay apart.
    pub queue_prefix: String,
}

impl Default for ApiSettings {
    fn default() -> Self {
        Self {
            auth: None,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            queue_prefix: String::new(),
        }
    }
}

fn number(env: &Env, name: &'static str, default: u64, most: u64) -> Result<u64, ConfigError> {
    let Some(text) = env.get(name) else {
        return Ok(default);
    };
    let value: u64 = text.trim().parse().map_err(|error| ConfigError::Invalid {
        name,
        problem: format!("`{}`: {error}", text.trim()),
    })?;
    if value > most {
        return Err(ConfigError::Invalid {
            name,
            problem: format!("{value} is more than {most}"),
        });
    }
    Ok(value)
}

fn list(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Whether a URL may be used for keys: HTTPS, or plain HTTP on this machine (tests and the
/// simulated tenant).
fn usable_key_url(url: &str) -> bool {
    url.starts_with("https://")
        || ["http://127.0.0.1", "http://localhost", "http://[::1]"]
            .iter()
            .any(|local| url.starts_with(local))
}

impl ApiSettings {
    /// Reads `ENROLL_API_*`, with `ENROLL_TENANT_ID`, `ENROLL_AUTHORITY_URL` and
    /// `ENROLL_STORAGE_PREFIX`.
    ///
    /// # Errors
    /// [`ConfigError`] naming the first variable that is missing or malformed.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let max_body_bytes = number(
            env,
            "ENROLL_API_MAX_BODY_BYTES",
            DEFAULT_MAX_BODY_BYTES as u64,
            MOST_BODY_BYTES as u64,
        )?;
        let queue_prefix = env.get("ENROLL_STORAGE_PREFIX").unwrap_or("").to_owned();
        let auth = match env.get("ENROLL_API_AUDIENCE") {
            None => None,
            Some(audience) => Some(auth_settings(env, list(audience))?),
        };
        Ok(Self {
            auth,
            max_body_bytes: usize::try_from(max_body_bytes).unwrap_or(MOST_BODY_BYTES),
            queue_prefix,
        })
    }
}

fn auth_settings(env: &Env, audiences: Vec<String>) -> Result<AuthSettings, ConfigError> {
    let tenant = env
        .get("ENROLL_API_TENANT_ID")
        .or_else(|| env.get("ENROLL_TENANT_ID"))
        .ok_or(ConfigError::Missing {
            name: "ENROLL_API_TENANT_ID",
            hint: "the Entra tenant id whose tokens the API accepts (defaults to ENROLL_TENANT_ID)",
        })?
        .trim()
        .to_owned();
    let authority = env
        .get("ENROLL_AUTHORITY_URL")
        .unwrap_or("https://login.microsoftonline.com")
        .trim()
        .trim_end_matches('/');
    let discovery_url = env.get("ENROLL_API_DISCOVERY_URL").map_or_else(
        || format!("{authority}/{tenant}/v2.0/.well-known/openid-configuration"),
        |url| url.trim().to_owned(),
    );
    if !usable_key_url(&discovery_url) {
        return Err(ConfigError::Invalid {
            name: "ENROLL_API_DISCOVERY_URL",
            problem: format!(
                "`{discovery_url}` must be an https URL (http only on 127.0.0.1 or localhost)"
            ),
        });
    }
    let leeway = number(env, "ENROLL_API_LEEWAY_SECONDS", 60, 300)?;
    let min_refresh = number(env, "ENROLL_API_KEY_REFRESH_SECONDS", 300, 86_400)?;
    Ok(AuthSettings {
        audiences,
        issuers: env.get("ENROLL_API_ISSUER").map(list).unwrap_or_default(),
        tenant,
        discovery_url,
        leeway: Duration::from_secs(leeway),
        min_refresh: Duration::from_secs(min_refresh),
        max_key_age: Duration::from_secs(24 * 3600),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_an_audience_the_api_is_off_and_with_one_it_reads_the_tenant() {
        let off = ApiSettings::from_env(&Env::from_pairs([])).unwrap();
        assert_eq!(off.auth, None);
        assert_eq!(off.max_body_bytes, 16 * 1024 * 1024);

        let on = ApiSettings::from_env(&Env::from_pairs([
            (
                "ENROLL_API_AUDIENCE",
                "api://enroll, 8f1c0000-0000-0000-0000-000000000001",
            ),
            ("ENROLL_TENANT_ID", "contoso.onmicrosoft.com"),
            ("ENROLL_STORAGE_PREFIX", "t1"),
        ]))
        .unwrap();
        let auth = on.auth.unwrap();
        assert_eq!(
            auth.audiences,
            ["api://enroll", "8f1c0000-0000-0000-0000-000000000001"]
        );
        assert_eq!(
            auth.discovery_url,
            "https://login.microsoftonline.com/contoso.onmicrosoft.com/v2.0/.well-known/openid-configuration"
        );
        assert_eq!(auth.issuers, Vec::<String>::new());
        assert_eq!(auth.leeway, Duration::from_secs(60));
        assert_eq!(auth.min_refresh, Duration::from_secs(300));
        assert_eq!(on.queue_prefix, "t1");
    }

    #[test]
    fn malformed_settings_are_named() {
        let cases = [
            (
                vec![("ENROLL_API_AUDIENCE", "api://enroll")],
                "ENROLL_API_TENANT_ID",
            ),
            (
                vec![
                    ("ENROLL_API_AUDIENCE", "api://enroll"),
                    ("ENROLL_TENANT_ID", "t"),
                    ("ENROLL_API_DISCOVERY_URL", "http://keys.example.org/x"),
                ],
                "ENROLL_API_DISCOVERY_URL",
            ),
            (
                vec![
                    ("ENROLL_API_AUDIENCE", "api://enroll"),
                    ("ENROLL_TENANT_ID", "t"),
                    ("ENROLL_API_LEEWAY_SECONDS", "301"),
                ],
                "ENROLL_API_LEEWAY_SECONDS",
            ),
            (
                vec![("ENROLL_API_MAX_BODY_BYTES", "lots")],
                "ENROLL_API_MAX_BODY_BYTES",
            ),
        ];
        for (pairs, name) in cases {
            let error = ApiSettings::from_env(&Env::from_pairs(pairs)).unwrap_err();
            assert!(error.to_string().starts_with(name), "{error}");
        }
    }
}
