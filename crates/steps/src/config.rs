//! Configuration from environment variables (app settings), read once at start.
//!
//! Every variable is documented in README.md ("Configuration"). Reading fails fast with
//! the name of the variable that is missing or malformed; secret values never appear in
//! errors.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::StepConfig;
use enroll_core::plan::{Guards, InviteDomains};
use enroll_graph::{Credential, GraphConfig, Secret};

/// A missing or malformed setting, by name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A required variable is not set.
    #[error("{name} is not set: {hint}")]
    Missing {
        /// The variable.
        name: &'static str,
        /// What to set it to.
        hint: &'static str,
    },
    /// A variable's value cannot be used.
    #[error("{name} is not valid: {problem}")]
    Invalid {
        /// The variable.
        name: &'static str,
        /// What is wrong (never the value of a secret).
        problem: String,
    },
}

/// A snapshot of the environment; tests build one from pairs.
#[derive(Debug, Clone, Default)]
pub struct Env(BTreeMap<String, String>);

impl Env {
    /// The process environment.
    pub fn from_process() -> Self {
        Self(std::env::vars().collect())
    }

    /// An environment from pairs.
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        Self(
            pairs
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
        )
    }

    /// A variable's value; empty counts as unset.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.trim().is_empty())
    }

    fn parse<T: std::str::FromStr>(&self, name: &'static str, default: T) -> Result<T, ConfigError>
    where
        T::Err: std::fmt::Display,
    {
        match self.get(name) {
            None => Ok(default),
            Some(value) => value.trim().parse().map_err(|error| ConfigError::Invalid {
                name,
                problem: format!("`{value}`: {error}"),
            }),
        }
    }

    fn flag(&self, name: &'static str) -> Result<bool, ConfigError> {
        match self.get(name).map(|v| v.trim().to_ascii_lowercase()) {
            None => Ok(false),
            Some(v) if ["1", "true", "yes"].contains(&v.as_str()) => Ok(true),
            Some(v) if ["0", "false", "no"].contains(&v.as_str()) => Ok(false),
            Some(v) => Err(ConfigError::Invalid {
                name,
                problem: format!("`{v}` is not true or false"),
            }),
        }
    }

    fn read_file(&self, name: &'static str) -> Result<Option<String>, ConfigError> {
        self.get(name)
            .map(|path| {
                std::fs::read_to_string(path).map_err(|error| ConfigError::Invalid {
                    name,
                    problem: format!("cannot read {path}: {error}"),
                })
            })
            .transpose()
    }
}

/// Log levels when neither `ENROLL_LOG` nor `RUST_LOG` is set: enroll's own events from
/// `info` on, other crates' (the Azure SDK, HTTP) from `warn` on.
pub const DEFAULT_LOG_FILTER: &str = "warn,enroll=info";

/// The binaries' log filter (a default level and `target=level` pairs, such as
/// `warn,enroll_graph=debug`; a target names a crate or module and everything below it)
/// and the variable it came from: `ENROLL_LOG`, else `RUST_LOG`,
/// else [`DEFAULT_LOG_FILTER`] (named `ENROLL_LOG`).
pub fn log_filter(env: &Env) -> (&'static str, String) {
    match (env.get("ENROLL_LOG"), env.get("RUST_LOG")) {
        (Some(filter), _) => ("ENROLL_LOG", filter.to_owned()),
        (None, Some(filter)) => ("RUST_LOG", filter.to_owned()),
        (None, None) => ("ENROLL_LOG", DEFAULT_LOG_FILTER.to_owned()),
    }
}

/// How to reach Graph: `ENROLL_TENANT_ID`, a credential, and optional endpoints.
///
/// The credential is, in this order: `ENROLL_CLIENT_SECRET` (with `ENROLL_CLIENT_ID`);
/// `ENROLL_CLIENT_CERTIFICATE` and `ENROLL_CLIENT_KEY` (PEM file paths, with
/// `ENROLL_CLIENT_ID`); else the platform's managed identity (`IDENTITY_ENDPOINT`,
/// `IDENTITY_HEADER`, optionally `ENROLL_MANAGED_IDENTITY_CLIENT_ID`).
///
/// # Errors
/// [`ConfigError`] naming the variable that is missing or malformed.
pub fn graph_config(env: &Env) -> Result<GraphConfig, ConfigError> {
    let tenant = env.get("ENROLL_TENANT_ID").ok_or(ConfigError::Missing {
        name: "ENROLL_TENANT_ID",
        hint: "the Entra tenant id or domain (contoso.onmicrosoft.com)",
    })?;
    let client_id = || {
        env.get("ENROLL_CLIENT_ID")
            .map(str::to_owned)
            .ok_or(ConfigError::Missing {
                name: "ENROLL_CLIENT_ID",
                hint: "the app registration's application (client) id",
            })
    };
    let credential = if let Some(secret) = env.get("ENROLL_CLIENT_SECRET") {
        Credential::ClientSecret {
            client_id: client_id()?,
            secret: Secret::new(secret),
        }
    } else if let Some(certificate_pem) = env.read_file("ENROLL_CLIENT_CERTIFICATE")? {
        let key = env
            .read_file("ENROLL_CLIENT_KEY")?
            .ok_or(ConfigError::Missing {
                name: "ENROLL_CLIENT_KEY",
                hint: "the path of the certificate's private key (PEM)",
            })?;
        Credential::Certificate {
            client_id: client_id()?,
            certificate_pem,
            private_key_pem: Secret::new(key),
        }
    } else if env.get("IDENTITY_ENDPOINT").is_some() && env.get("IDENTITY_HEADER").is_some() {
        // azure_identity reads both variables itself; without them it would try a virtual
        // machine's metadata endpoint, which Functions does not have.
        Credential::ManagedIdentity {
            client_id: env
                .get("ENROLL_MANAGED_IDENTITY_CLIENT_ID")
                .map(str::to_owned),
        }
    } else {
        return Err(ConfigError::Missing {
            name: "ENROLL_CLIENT_SECRET",
            hint: "set ENROLL_CLIENT_ID with ENROLL_CLIENT_SECRET, or ENROLL_CLIENT_CERTIFICATE and ENROLL_CLIENT_KEY, or run with a managed identity (IDENTITY_ENDPOINT, IDENTITY_HEADER)",
        });
    };
    graph_endpoints(env, GraphConfig::new(tenant, credential))
}

/// `config` with the endpoints and tuning the environment sets (`ENROLL_GRAPH_URL`,
/// `ENROLL_AUTHORITY_URL`, `ENROLL_GRAPH_RESOURCE`, `ENROLL_GRAPH_CONCURRENCY`,
/// `ENROLL_GRAPH_MAX_ATTEMPTS`, `ENROLL_GRAPH_RETRY_BASE_MS`, `ENROLL_GRAPH_TIMEOUT_SECONDS`),
/// for a credential that does not come from the settings.
///
/// # Errors
/// [`ConfigError`] naming the variable that is malformed.
pub fn graph_endpoints(env: &Env, mut config: GraphConfig) -> Result<GraphConfig, ConfigError> {
    if let Some(url) = env.get("ENROLL_GRAPH_URL") {
        config.graph_base_url = url.trim_end_matches('/').to_owned();
    }
    if let Some(url) = env.get("ENROLL_AUTHORITY_URL") {
        config.authority_url = url.trim_end_matches('/').to_owned();
    }
    if let Some(resource) = env.get("ENROLL_GRAPH_RESOURCE") {
        config.graph_resource = resource.to_owned();
    }
    config.concurrency = env.parse("ENROLL_GRAPH_CONCURRENCY", config.concurrency)?;
    config.retry.max_attempts =
        env.parse("ENROLL_GRAPH_MAX_ATTEMPTS", config.retry.max_attempts)?;
    let base_ms = env.parse(
        "ENROLL_GRAPH_RETRY_BASE_MS",
        u64::try_from(config.retry.base_delay.as_millis()).unwrap_or(u64::MAX),
    )?;
    config.retry.base_delay = Duration::from_millis(base_ms);
    let timeout = env.parse(
        "ENROLL_GRAPH_TIMEOUT_SECONDS",
        config.request_timeout.as_secs(),
    )?;
    config.request_timeout = Duration::from_secs(timeout);
    Ok(config)
}

/// Step settings. `ENROLL_INVITE_DOMAINS` is required when `require_invite_domains`
/// (the Functions app), so that invitations never go anywhere by default.
///
/// # Errors
/// [`ConfigError`] naming the variable that is missing or malformed.
pub fn step_config(env: &Env, require_invite_domains: bool) -> Result<StepConfig, ConfigError> {
    let defaults = StepConfig::default();
    let invite_domains = match env.get("ENROLL_INVITE_DOMAINS") {
        Some(list) => InviteDomains::parse(list),
        None if require_invite_domains => {
            return Err(ConfigError::Missing {
                name: "ENROLL_INVITE_DOMAINS",
                hint: "the e-mail domains guests may be invited from, comma-separated (`*` for any)",
            });
        }
        None => InviteDomains::Any,
    };
    let percent: f64 = env.parse(
        "ENROLL_MAX_REMOVAL_PERCENT",
        defaults.guards.max_removal_percent,
    )?;
    if !(0.0..=100.0).contains(&percent) {
        return Err(ConfigError::Invalid {
            name: "ENROLL_MAX_REMOVAL_PERCENT",
            problem: format!("{percent} is not between 0 and 100"),
        });
    }
    let redirect = env
        .get("ENROLL_INVITE_REDIRECT_URL")
        .map_or(defaults.invite_redirect_url.clone(), str::to_owned);
    if !redirect.starts_with("https://") {
        return Err(ConfigError::Invalid {
            name: "ENROLL_INVITE_REDIRECT_URL",
            problem: format!("`{redirect}` is not an https:// URL"),
        });
    }
    Ok(StepConfig {
        guards: Guards {
            max_removals: env.parse("ENROLL_MAX_REMOVALS", defaults.guards.max_removals)?,
            max_removal_percent: percent,
            allow_removals: false,
        },
        catalog: env.get("ENROLL_CATALOG").map(str::to_owned),
        invite_domains,
        invite_redirect_url: redirect,
        send_invitation_message: env.flag("ENROLL_SEND_INVITATIONS")?,
        limits: defaults.limits,
        max_dequeue_count: env.parse("ENROLL_MAX_DEQUEUE_COUNT", defaults.max_dequeue_count)?,
        actor: env
            .get("ENROLL_ACTOR")
            .map_or(defaults.actor, str::to_owned),
        app_id: env.get("ENROLL_APP_ID").map(|id| id.trim().to_owned()),
        group_pattern: group_pattern(env)?,
    })
}

/// `ENROLL_ROLE_GROUP_PATTERN`, which must hold `{value}`.
fn group_pattern(env: &Env) -> Result<String, ConfigError> {
    match env.get("ENROLL_ROLE_GROUP_PATTERN") {
        None => Ok(enroll_core::roles::DEFAULT_GROUP_PATTERN.to_owned()),
        Some(pattern) if pattern.contains("{value}") => Ok(pattern.to_owned()),
        Some(pattern) => Err(ConfigError::Invalid {
            name: "ENROLL_ROLE_GROUP_PATTERN",
            problem: format!(
                "`{pattern}` has no `{{value}}`, so every app role would map to the same group"
            ),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn graph_settings_name_what_is_missing_and_hide_secrets() {
        let none = graph_config(&Env::default()).unwrap_err();
        assert!(none.to_string().starts_with("ENROLL_TENANT_ID is not set"));
        let no_credential =
            graph_config(&Env::from_pairs([("ENROLL_TENANT_ID", "t")])).unwrap_err();
        assert!(no_credential.to_string().contains("ENROLL_CLIENT_SECRET"));
        let no_client = graph_config(&Env::from_pairs([
            ("ENROLL_TENANT_ID", "t"),
            ("ENROLL_CLIENT_SECRET", "s3cr3t-value"),
        ]))
        .unwrap_err();
        assert!(
            no_client
                .to_string()
                .starts_with("ENROLL_CLIENT_ID is not set")
        );
        let config = graph_config(&Env::from_pairs([
            ("ENROLL_TENANT_ID", "t"),
            ("ENROLL_CLIENT_ID", "c"),
            ("ENROLL_CLIENT_SECRET", "s3cr3t-value"),
            ("ENROLL_GRAPH_URL", "http://127.0.0.1:9/v1.0/"),
        ]))
        .unwrap();
        assert_eq!(config.graph_base_url, "http://127.0.0.1:9/v1.0");
        assert!(!format!("{config:?}").contains("s3cr3t-value"));
        let bad = graph_config(&Env::from_pairs([
            ("ENROLL_TENANT_ID", "t"),
            ("ENROLL_CLIENT_ID", "c"),
            ("ENROLL_CLIENT_SECRET", "s"),
            ("ENROLL_GRAPH_CONCURRENCY", "many"),
        ]))
        .unwrap_err();
        assert!(
            bad.to_string()
                .starts_with("ENROLL_GRAPH_CONCURRENCY is not valid")
        );
    }

    #[test]
    fn enroll_log_wins_over_rust_log_and_the_default_names_enroll_log() {
        assert_eq!(
            log_filter(&Env::from_pairs([
                ("ENROLL_LOG", "debug"),
                ("RUST_LOG", "trace")
            ])),
            ("ENROLL_LOG", "debug".to_owned())
        );
        assert_eq!(
            log_filter(&Env::from_pairs([("RUST_LOG", "enroll_graph=debug")])),
            ("RUST_LOG", "enroll_graph=debug".to_owned())
        );
        assert_eq!(
            log_filter(&Env::default()),
            ("ENROLL_LOG", DEFAULT_LOG_FILTER.to_owned())
        );
    }

    #[test]
    fn managed_identity_is_the_fallback() {
        let config = graph_config(&Env::from_pairs([
            ("ENROLL_TENANT_ID", "t"),
            ("IDENTITY_ENDPOINT", "http://127.0.0.1:41566/MSI/token/"),
            ("IDENTITY_HEADER", "h"),
        ]))
        .unwrap();
        assert!(matches!(
            config.credential,
            Credential::ManagedIdentity { .. }
        ));
    }

    #[test]
    fn step_settings_validate_and_require_invite_domains_in_functions() {
        assert!(
            step_config(&Env::default(), true)
                .unwrap_err()
                .to_string()
                .starts_with("ENROLL_INVITE_DOMAINS is not set")
        );
        let config = step_config(
            &Env::from_pairs([
                ("ENROLL_INVITE_DOMAINS", "fabrikam.com"),
                ("ENROLL_MAX_REMOVALS", "3"),
                ("ENROLL_SEND_INVITATIONS", "true"),
            ]),
            true,
        )
        .unwrap();
        assert_eq!(config.guards.max_removals, 3);
        assert_eq!(config.group_pattern, "APP-{value}");
        assert_eq!(config.app_id, None);
        let roles = step_config(
            &Env::from_pairs([
                ("ENROLL_APP_ID", " c0ffee00-0000-4000-8000-000000000001 "),
                ("ENROLL_ROLE_GROUP_PATTERN", "SG {value} users"),
            ]),
            false,
        )
        .unwrap();
        assert_eq!(
            roles.app_id.as_deref(),
            Some("c0ffee00-0000-4000-8000-000000000001")
        );
        assert_eq!(roles.group_pattern, "SG {value} users");
        assert!(config.send_invitation_message);
        assert!(!config.invite_domains.allows("a@gmail.com"));
        for (name, value) in [
            ("ENROLL_MAX_REMOVAL_PERCENT", "120"),
            ("ENROLL_INVITE_REDIRECT_URL", "http://x"),
            ("ENROLL_SEND_INVITATIONS", "maybe"),
            ("ENROLL_MAX_DEQUEUE_COUNT", "-1"),
            ("ENROLL_ROLE_GROUP_PATTERN", "APP-Roles"),
        ] {
            let error = step_config(&Env::from_pairs([(name, value)]), false).unwrap_err();
            assert!(
                error
                    .to_string()
                    .starts_with(&format!("{name} is not valid")),
                "{error}"
            );
        }
    }
}
