//! Configuration from environment variables (app settings), read once at start.
//!
//! Every variable is documented in README.md ("Configuration"). Reading fails fast with
//! the name of the variable that is missing or malformed; secret values never appear in
//! errors.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::StepConfig;
use enroll_core::plan::{Guards, InviteDomains, Protected};
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

    /// A number within `range` (both ends included), or the default when unset.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming the variable when it is not such a number.
    pub fn number<T>(
        &self,
        name: &'static str,
        default: T,
        range: std::ops::RangeInclusive<T>,
    ) -> Result<T, ConfigError>
    where
        T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy,
        T::Err: std::fmt::Display,
    {
        let value = self.parse(name, default)?;
        if range.contains(&value) {
            Ok(value)
        } else {
            Err(ConfigError::Invalid {
                name,
                problem: format!(
                    "{value} is not between {} and {}",
                    range.start(),
                    range.end()
                ),
            })
        }
    }

    /// A URL setting: absolute, `https` (or, with `loopback_http`, `http` to this machine, as
    /// the simulated tenant and App Service's identity endpoint are), with a host, and for a
    /// `base` URL (one that paths are added to) without query or fragment.
    fn url(
        &self,
        name: &'static str,
        loopback_http: bool,
        base: bool,
    ) -> Result<Option<String>, ConfigError> {
        let Some(text) = self.get(name) else {
            return Ok(None);
        };
        let text = text.trim();
        let invalid = |problem: String| ConfigError::Invalid { name, problem };
        let url = url::Url::parse(text)
            .map_err(|error| invalid(format!("`{text}` is not an absolute URL ({error})")))?;
        let loopback = matches!(url.host(), Some(url::Host::Domain("localhost")))
            || matches!(url.host(), Some(url::Host::Ipv4(ip)) if ip.is_loopback())
            || matches!(url.host(), Some(url::Host::Ipv6(ip)) if ip.is_loopback());
        match url.scheme() {
            "https" => {}
            "http" if loopback_http && loopback => {}
            "http" if loopback_http => {
                return Err(invalid(format!(
                    "`{text}` is plain http to another machine: tokens and secrets would travel unencrypted; use https"
                )));
            }
            _ => return Err(invalid(format!("`{text}` is not an https URL"))),
        }
        if url.host().is_none() {
            return Err(invalid(format!("`{text}` names no host")));
        }
        if base && (url.query().is_some() || url.fragment().is_some()) {
            return Err(invalid(format!(
                "`{text}` has a query or fragment; give the base URL only"
            )));
        }
        Ok(Some(if base {
            text.trim_end_matches('/').to_owned()
        } else {
            text.to_owned()
        }))
    }

    /// An identifier (tenant, client id, catalog, actor): printable, without spaces.
    fn identifier(&self, name: &'static str, spaces: bool) -> Result<Option<&str>, ConfigError> {
        let Some(value) = self.get(name) else {
            return Ok(None);
        };
        let value = value.trim();
        let bad = value
            .chars()
            .find(|c| c.is_control() || (!spaces && c.is_whitespace()));
        if let Some(bad) = bad {
            return Err(ConfigError::Invalid {
                name,
                problem: format!("holds {bad:?}, which an identifier cannot have"),
            });
        }
        if value.len() > MAX_IDENTIFIER {
            return Err(ConfigError::Invalid {
                name,
                problem: format!(
                    "is {} characters long; at most {MAX_IDENTIFIER} are allowed",
                    value.len()
                ),
            });
        }
        Ok(Some(value))
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

/// The longest identifier setting accepted (tenant, client id, catalog, actor).
const MAX_IDENTIFIER: usize = 256;

/// Whether `text` is a GUID in its usual form (`8-4-4-4-12` hexadecimal digits).
fn is_guid(text: &str) -> bool {
    let parts: Vec<&str> = text.split('-').collect();
    parts.iter().map(|p| p.len()).eq([8, 4, 4, 4, 12])
        && parts
            .iter()
            .all(|p| p.bytes().all(|b| b.is_ascii_hexdigit()))
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
    let tenant = env
        .identifier("ENROLL_TENANT_ID", false)?
        .ok_or(ConfigError::Missing {
            name: "ENROLL_TENANT_ID",
            hint: "the Entra tenant id or domain (contoso.onmicrosoft.com)",
        })?;
    // The tenant goes into the token URL's path.
    if !tenant
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
    {
        return Err(ConfigError::Invalid {
            name: "ENROLL_TENANT_ID",
            problem: format!(
                "`{tenant}` is neither a tenant id (GUID) nor a domain (contoso.onmicrosoft.com)"
            ),
        });
    }
    let client_id = || {
        env.identifier("ENROLL_CLIENT_ID", false)?
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
        env.url("IDENTITY_ENDPOINT", true, false)?;
        Credential::ManagedIdentity {
            client_id: env
                .identifier("ENROLL_MANAGED_IDENTITY_CLIENT_ID", false)?
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
/// `ENROLL_GRAPH_MAX_ATTEMPTS`, `ENROLL_GRAPH_RETRY_BASE_MS`, `ENROLL_GRAPH_MAX_WAIT_SECONDS`,
/// `ENROLL_GRAPH_TIMEOUT_SECONDS`),
/// for a credential that does not come from the settings.
///
/// # Errors
/// [`ConfigError`] naming the variable that is malformed.
pub fn graph_endpoints(env: &Env, mut config: GraphConfig) -> Result<GraphConfig, ConfigError> {
    if let Some(url) = env.url("ENROLL_GRAPH_URL", true, true)? {
        config.graph_base_url = url;
    }
    if let Some(url) = env.url("ENROLL_AUTHORITY_URL", true, true)? {
        config.authority_url = url;
    }
    // An identifier of Graph (the token's audience), never called: https only.
    if let Some(resource) = env.url("ENROLL_GRAPH_RESOURCE", false, true)? {
        config.graph_resource = resource;
    }
    config.concurrency = env.number(
        "ENROLL_GRAPH_CONCURRENCY",
        config.concurrency,
        1..=MAX_GRAPH_CONCURRENCY,
    )?;
    config.retry.max_attempts = env.number(
        "ENROLL_GRAPH_MAX_ATTEMPTS",
        config.retry.max_attempts,
        1..=MAX_GRAPH_ATTEMPTS,
    )?;
    let base_ms = env.number(
        "ENROLL_GRAPH_RETRY_BASE_MS",
        u64::try_from(config.retry.base_delay.as_millis()).unwrap_or(u64::MAX),
        1..=MAX_RETRY_BASE_MS,
    )?;
    config.retry.base_delay = Duration::from_millis(base_ms);
    let max_wait = env.number(
        "ENROLL_GRAPH_MAX_WAIT_SECONDS",
        config.retry.max_wait.as_secs(),
        0..=enroll_graph::retry::MAX_RETRY_AFTER.as_secs(),
    )?;
    config.retry.max_wait = Duration::from_secs(max_wait);
    let timeout = env.number(
        "ENROLL_GRAPH_TIMEOUT_SECONDS",
        config.request_timeout.as_secs(),
        1..=MAX_GRAPH_TIMEOUT_SECONDS,
    )?;
    config.request_timeout = Duration::from_secs(timeout);
    // More CAs to trust (`enroll sim --tls` writes one), added to the system's.
    config.extra_ca_pem = env.read_file("ENROLL_CA_FILE")?;
    Ok(config)
}

/// Most Graph requests in flight at once (`ENROLL_GRAPH_CONCURRENCY`).
pub const MAX_GRAPH_CONCURRENCY: usize = 64;
/// Most tries of one Graph request (`ENROLL_GRAPH_MAX_ATTEMPTS`).
pub const MAX_GRAPH_ATTEMPTS: u32 = 20;
/// Longest first backoff, in milliseconds (`ENROLL_GRAPH_RETRY_BASE_MS`).
pub const MAX_RETRY_BASE_MS: u64 = 60_000;
/// Longest timeout of one Graph request, in seconds (`ENROLL_GRAPH_TIMEOUT_SECONDS`): the
/// Functions host gives a whole invocation at most 10 minutes.
pub const MAX_GRAPH_TIMEOUT_SECONDS: u64 = 600;
/// Longest an assignment request may stay undelivered before it is reprocessed, in minutes
/// (`ENROLL_REPROCESS_AFTER_MINUTES`): 30 days, past which Graph has forgotten the request.
pub const MAX_REPROCESS_AFTER_MINUTES: u64 = 30 * 24 * 60;
/// Most tries of a queue message (`ENROLL_MAX_DEQUEUE_COUNT`).
pub const MAX_DEQUEUE_COUNT: u32 = 100;

/// Step settings. `ENROLL_INVITE_DOMAINS` is required when `require_invite_domains`
/// (the Functions app), so that invitations never go anywhere by default.
///
/// # Errors
/// [`ConfigError`] naming the variable that is missing or malformed.
pub fn step_config(env: &Env, require_invite_domains: bool) -> Result<StepConfig, ConfigError> {
    let defaults = StepConfig::default();
    let invite_domains = match env.get("ENROLL_INVITE_DOMAINS") {
        Some(list) => invite_domains(list)?,
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
    // Guests land there from an e-mail: https, whatever the machine.
    let redirect = env
        .url("ENROLL_INVITE_REDIRECT_URL", false, false)?
        .unwrap_or_else(|| defaults.invite_redirect_url.clone());
    let addition_percent: f64 = env.parse(
        "ENROLL_MAX_ADDITION_PERCENT",
        defaults.guards.max_addition_percent,
    )?;
    if !(addition_percent >= 0.0 && addition_percent.is_finite()) {
        return Err(ConfigError::Invalid {
            name: "ENROLL_MAX_ADDITION_PERCENT",
            problem: format!("{addition_percent} is not a share of 0 % or more"),
        });
    }
    let removal_delay = match env.get("ENROLL_REMOVAL_DELAY") {
        None => Duration::ZERO,
        Some(text) => parse_delay(text).map_err(|problem| ConfigError::Invalid {
            name: "ENROLL_REMOVAL_DELAY",
            problem,
        })?,
    };
    Ok(StepConfig {
        guards: Guards {
            max_removals: env.parse("ENROLL_MAX_REMOVALS", defaults.guards.max_removals)?,
            max_removal_percent: percent,
            max_additions: env.parse("ENROLL_MAX_ADDITIONS", defaults.guards.max_additions)?,
            max_addition_percent: addition_percent,
            allow_removals: false,
            allow_additions: false,
        },
        protected: env
            .get("ENROLL_PROTECTED_PEOPLE")
            .map(Protected::parse)
            .unwrap_or_default(),
        removal_delay,
        catalog: env.identifier("ENROLL_CATALOG", true)?.map(str::to_owned),
        invite_domains,
        invite_redirect_url: redirect,
        send_invitation_message: env.flag("ENROLL_SEND_INVITATIONS")?,
        limits: defaults.limits,
        max_dequeue_count: env.number(
            "ENROLL_MAX_DEQUEUE_COUNT",
            defaults.max_dequeue_count,
            1..=MAX_DEQUEUE_COUNT,
        )?,
        actor: env
            .identifier("ENROLL_ACTOR", true)?
            .map_or(defaults.actor, str::to_owned),
        app_id: app_id(env)?,
        group_pattern: group_pattern(env)?,
        reprocess_after: std::time::Duration::from_secs(
            env.number(
                "ENROLL_REPROCESS_AFTER_MINUTES",
                defaults.reprocess_after.as_secs() / 60,
                1..=MAX_REPROCESS_AFTER_MINUTES,
            )? * 60,
        ),
    })
}

/// `ENROLL_INVITE_DOMAINS`: `*`, or domains such as `contoso.com` (a leading `@` is
/// forgiven), comma-separated.
fn invite_domains(list: &str) -> Result<InviteDomains, ConfigError> {
    let domains = InviteDomains::parse(list);
    if let InviteDomains::Only(domains) = &domains
        && let Some(bad) = domains.iter().find(|domain| !is_domain(domain))
    {
        return Err(ConfigError::Invalid {
            name: "ENROLL_INVITE_DOMAINS",
            problem: format!(
                "`{bad}` is not a domain (such as contoso.com), and not `*` for any domain"
            ),
        });
    }
    Ok(domains)
}

/// A DNS name of at least two labels of letters, digits and inner hyphens.
fn is_domain(domain: &str) -> bool {
    let labels: Vec<&str> = domain.split('.').collect();
    labels.len() >= 2
        && domain.len() <= 253
        && labels.iter().all(|label| {
            (1..=63).contains(&label.len())
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

/// `ENROLL_APP_ID`: an application (client) id, which Entra makes a GUID.
fn app_id(env: &Env) -> Result<Option<String>, ConfigError> {
    match env.get("ENROLL_APP_ID").map(str::trim) {
        None => Ok(None),
        Some(id) if is_guid(id) => Ok(Some(id.to_owned())),
        Some(id) => Err(ConfigError::Invalid {
            name: "ENROLL_APP_ID",
            problem: format!("`{id}` is not an application (client) id, which is a GUID"),
        }),
    }
}

/// `ENROLL_SCHEDULE`, the nightly timer's NCRONTAB (`{second} {minute} {hour} {day}
/// {month} {day-of-week}`, UTC), which the Functions host reads; the handler checks it at
/// start so that a typo stops the app with the setting's name instead of a timer that never
/// fires.
///
/// # Errors
/// [`ConfigError`] when it is missing or not six NCRONTAB fields.
pub fn schedule(env: &Env) -> Result<String, ConfigError> {
    let schedule = env.get("ENROLL_SCHEDULE").ok_or(ConfigError::Missing {
        name: "ENROLL_SCHEDULE",
        hint: "the nightly timer's NCRONTAB schedule, e.g. `0 0 2 * * *` (02:00 UTC)",
    })?;
    let fields: Vec<&str> = schedule.split_whitespace().collect();
    let invalid = |problem: String| ConfigError::Invalid {
        name: "ENROLL_SCHEDULE",
        problem,
    };
    if fields.len() != 6 {
        return Err(invalid(format!(
            "`{schedule}` has {} fields; NCRONTAB has six: second minute hour day month day-of-week",
            fields.len()
        )));
    }
    const FIELDS: [(&str, u32, u32); 6] = [
        ("second", 0, 59),
        ("minute", 0, 59),
        ("hour", 0, 23),
        ("day", 1, 31),
        ("month", 1, 12),
        ("day-of-week", 0, 6),
    ];
    for (field, (what, low, high)) in fields.iter().zip(FIELDS) {
        if !cron_field_ok(field, low, high) {
            return Err(invalid(format!(
                "`{schedule}`: the {what} field `{field}` is not `*`, a number from {low} to {high}, a range, a list or a step"
            )));
        }
    }
    Ok(schedule.trim().to_owned())
}

/// One NCRONTAB field: `*`, numbers within bounds, ranges `a-b`, lists `a,b` and steps
/// `*/n` or `a-b/n`; month and day names (`JAN`, `MON`) pass as names.
fn cron_field_ok(field: &str, low: u32, high: u32) -> bool {
    let value_ok = |value: &str| match value.parse::<u32>() {
        Ok(number) => (low..=high).contains(&number),
        Err(_) => value.len() == 3 && value.bytes().all(|b| b.is_ascii_alphabetic()),
    };
    field.split(',').all(|part| {
        let (range, step) = match part.split_once('/') {
            Some((range, step)) => (range, Some(step)),
            None => (part, None),
        };
        let step_ok = step.is_none_or(|step| step.parse::<u32>().is_ok_and(|n| n >= 1));
        let range_ok = range == "*"
            || match range.split_once('-') {
                Some((from, to)) => value_ok(from) && value_ok(to),
                None => value_ok(range),
            };
        step_ok && range_ok
    })
}

/// The longest undo window: a queue message can stay invisible for at most 7 days.
pub const MAX_REMOVAL_DELAY: Duration = Duration::from_secs(7 * 24 * 3600);

/// Reads an undo window: `0`, or a whole number with a unit, `s`, `m`, `h` or `d` (`90m`,
/// `24h`, `7d`), at most [`MAX_REMOVAL_DELAY`].
///
/// # Errors
/// A sentence saying what is wrong with `text`.
pub fn parse_delay(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    let unit_at = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("`{text}` has no unit; write e.g. `90m`, `24h` or `0`"))?;
    let (number, unit) = text.split_at(unit_at);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("`{text}` does not start with a whole number"))?;
    let seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => {
            return Err(format!("`{text}` has the unit `{unit}`; use s, m, h or d"));
        }
    };
    let delay = Duration::from_secs(number.saturating_mul(seconds));
    if delay > MAX_REMOVAL_DELAY {
        return Err(format!(
            "`{text}` is longer than 7 days, the longest a queue message can wait"
        ));
    }
    Ok(delay)
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
    fn guard_undo_window_and_protected_settings_are_read() {
        let config = step_config(
            &Env::from_pairs([
                ("ENROLL_MAX_ADDITIONS", "200"),
                ("ENROLL_MAX_ADDITION_PERCENT", "300"),
                ("ENROLL_REMOVAL_DELAY", "24h"),
                (
                    "ENROLL_PROTECTED_PEOPLE",
                    "breakglass@contoso.com, 5b7e0000-0000-4000-8000-000000000001",
                ),
            ]),
            false,
        )
        .unwrap();
        assert_eq!(
            (
                config.guards.max_additions,
                config.guards.max_addition_percent
            ),
            (200, 300.0)
        );
        assert_eq!(config.removal_delay, Duration::from_secs(24 * 3600));
        assert!(config.protected.covers(None, ["BreakGlass@contoso.com"]));
        assert!(config.protected.covers(
            Some("5B7E0000-0000-4000-8000-000000000001"),
            Vec::<&str>::new()
        ));
        let defaults = step_config(&Env::default(), false).unwrap();
        assert_eq!(defaults.removal_delay, Duration::ZERO);
        assert!(defaults.protected.is_empty());
        assert_eq!(
            (
                defaults.guards.max_additions,
                defaults.guards.max_addition_percent
            ),
            (50, 100.0)
        );
        for (text, seconds) in [("0", 0), ("90m", 5400), ("45s", 45), ("7d", 604_800)] {
            assert_eq!(
                parse_delay(text),
                Ok(Duration::from_secs(seconds)),
                "{text}"
            );
        }
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
            ("ENROLL_MAX_ADDITION_PERCENT", "-5"),
            ("ENROLL_MAX_ADDITIONS", "many"),
            ("ENROLL_REMOVAL_DELAY", "24"),
            ("ENROLL_REMOVAL_DELAY", "8d"),
            ("ENROLL_REMOVAL_DELAY", "1w"),
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

    #[test]
    fn settings_in_their_documented_forms_pass() {
        for good in [
            "0 0 2 * * *",
            "0 */5 * * * *",
            "30 0 2 1-15 JAN,JUL MON-FRI",
            "0 0 0 * * 0",
        ] {
            assert_eq!(
                schedule(&Env::from_pairs([("ENROLL_SCHEDULE", good)])).unwrap(),
                good
            );
        }
        let config = step_config(
            &Env::from_pairs([
                ("ENROLL_INVITE_DOMAINS", "@Contoso.com, fabrikam.co.uk"),
                ("ENROLL_APP_ID", "C0FFEE00-0000-4000-8000-000000000001"),
                (
                    "ENROLL_INVITE_REDIRECT_URL",
                    "https://myapps.microsoft.com/?tenantid=0b6a2c5e-9f1d-4c3b-8e7a-5d2f1c0e9b84",
                ),
            ]),
            true,
        )
        .unwrap();
        assert_eq!(
            config.invite_redirect_url,
            "https://myapps.microsoft.com/?tenantid=0b6a2c5e-9f1d-4c3b-8e7a-5d2f1c0e9b84"
        );
        assert!(config.invite_domains.allows("a@sub.fabrikam.co.uk"));
        let graph = |pairs: &[(&'static str, &'static str)]| {
            let mut env = vec![
                ("ENROLL_TENANT_ID", "0b6a2c5e-9f1d-4c3b-8e7a-5d2f1c0e9b84"),
                ("ENROLL_CLIENT_ID", "c"),
                ("ENROLL_CLIENT_SECRET", "s"),
            ];
            env.extend_from_slice(pairs);
            graph_config(&Env::from_pairs(env))
        };
        for loopback in [
            "http://127.0.0.1:8080/v1.0",
            "http://localhost:1/v1.0",
            "http://[::1]:9/v1.0",
        ] {
            assert!(
                graph(&[("ENROLL_GRAPH_URL", loopback)]).is_ok(),
                "{loopback}"
            );
        }
        assert_eq!(
            graph(&[("ENROLL_GRAPH_URL", "https://graph.microsoft.us/v1.0/")])
                .unwrap()
                .graph_base_url,
            "https://graph.microsoft.us/v1.0"
        );
        let error = graph(&[("ENROLL_GRAPH_URL", "http://10.0.0.1/v1.0")]).unwrap_err();
        assert!(
            error.to_string().contains("plain http to another machine"),
            "{error}"
        );
        let error = graph(&[("ENROLL_GRAPH_TIMEOUT_SECONDS", "0")]).unwrap_err();
        assert_eq!(
            error.to_string(),
            "ENROLL_GRAPH_TIMEOUT_SECONDS is not valid: 0 is not between 1 and 600"
        );
    }

    #[test]
    fn graph_waits_and_reprocessing_have_their_settings() {
        let graph = |pairs: &[(&'static str, &'static str)]| {
            let mut all = vec![
                ("ENROLL_TENANT_ID", "t"),
                ("ENROLL_CLIENT_ID", "c"),
                ("ENROLL_CLIENT_SECRET", "s"),
            ];
            all.extend_from_slice(pairs);
            graph_config(&Env::from_pairs(all))
        };
        assert_eq!(graph(&[]).unwrap().retry.max_wait, Duration::from_secs(60));
        assert_eq!(
            graph(&[("ENROLL_GRAPH_MAX_WAIT_SECONDS", "5")])
                .unwrap()
                .retry
                .max_wait,
            Duration::from_secs(5)
        );
        for value in ["86401", "-1", "soon"] {
            let error = graph(&[("ENROLL_GRAPH_MAX_WAIT_SECONDS", value)]).unwrap_err();
            assert!(
                error
                    .to_string()
                    .starts_with("ENROLL_GRAPH_MAX_WAIT_SECONDS is not valid"),
                "{value}: {error}"
            );
        }
        assert_eq!(
            step_config(&Env::default(), false).unwrap().reprocess_after,
            Duration::from_secs(6 * 3600)
        );
        let config = step_config(
            &Env::from_pairs([("ENROLL_REPROCESS_AFTER_MINUTES", "30")]),
            false,
        )
        .unwrap();
        assert_eq!(config.reprocess_after, Duration::from_secs(1800));
        let error = step_config(
            &Env::from_pairs([("ENROLL_REPROCESS_AFTER_MINUTES", "an hour")]),
            false,
        )
        .unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("ENROLL_REPROCESS_AFTER_MINUTES is not valid"),
            "{error}"
        );
    }
}
