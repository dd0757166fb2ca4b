//! `host.json` and `function_definitions/*/function.json`: what the Functions host reads.
//!
//! The handler's own list of functions ([`super::FUNCTIONS`]) must agree with these files
//! binding for binding; tests compare the two, so a definition that names a binding the
//! handler does not know (or the reverse) fails before it reaches Azure.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// One binding of a function.json.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Binding {
    /// Binding name: the key in `Data` or `Outputs`.
    pub name: String,
    /// `blobTrigger`, `timerTrigger`, `queueTrigger`, `httpTrigger`, `queue`, `http`, ...
    #[serde(rename = "type")]
    pub kind: String,
    /// `in` or `out`.
    pub direction: String,
    /// Queue name for queue bindings.
    #[serde(default)]
    pub queue_name: Option<String>,
    /// Container/pattern for blob bindings.
    #[serde(default)]
    pub path: Option<String>,
    /// NCRONTAB (or `%SETTING%`) for timers.
    #[serde(default)]
    pub schedule: Option<String>,
    /// `binary`, `string` or `stream`.
    #[serde(default)]
    pub data_type: Option<String>,
    /// App setting naming the storage connection.
    #[serde(default)]
    pub connection: Option<String>,
    /// HTTP route template.
    #[serde(default)]
    pub route: Option<String>,
    /// HTTP methods.
    #[serde(default)]
    pub methods: Vec<String>,
    /// Which key an HTTP trigger asks for: `anonymous`, `function` or `admin`.
    #[serde(default)]
    pub auth_level: Option<String>,
}

impl Binding {
    /// Whether this binding triggers the function.
    pub fn is_trigger(&self) -> bool {
        self.kind.to_ascii_lowercase().ends_with("trigger")
    }
}

/// A function.json.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct FunctionDefinition {
    /// The function's bindings.
    pub bindings: Vec<Binding>,
}

impl FunctionDefinition {
    /// The trigger binding.
    pub fn trigger(&self) -> Option<&Binding> {
        self.bindings.iter().find(|binding| binding.is_trigger())
    }

    /// Output bindings.
    pub fn outputs(&self) -> impl Iterator<Item = &Binding> {
        self.bindings
            .iter()
            .filter(|binding| binding.direction.eq_ignore_ascii_case("out"))
    }
}

/// The queue settings of host.json that the harness plays out.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QueueSettings {
    /// Tries before a message moves to `<queue>-poison` (host default 5).
    #[serde(default = "default_max_dequeue_count")]
    pub max_dequeue_count: u32,
    /// Delay before a failed message is visible again, `hh:mm:ss` (host default `00:00:00`).
    #[serde(default)]
    pub visibility_timeout: Option<String>,
    /// `base64` (default) or `none`.
    #[serde(default)]
    pub message_encoding: Option<String>,
    /// Messages fetched per poll (host default 16).
    #[serde(default)]
    pub batch_size: Option<u32>,
}

fn default_max_dequeue_count() -> u32 {
    5
}

/// The parts of host.json the handler and harness use.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HostJson {
    /// Must be `2.0`.
    pub version: String,
    /// Custom handler section.
    pub custom_handler: CustomHandler,
    /// `functionTimeout`, `hh:mm:ss`.
    #[serde(default)]
    pub function_timeout: Option<String>,
    /// Binding extensions.
    #[serde(default)]
    pub extensions: Extensions,
}

/// `customHandler` of host.json.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CustomHandler {
    /// How the host starts the handler.
    pub description: HandlerDescription,
    /// Whether HTTP functions get the request itself, at its own path, instead of an
    /// invocation envelope (functions.md §1.9).
    #[serde(default)]
    pub enable_forwarding_http_request: bool,
}

/// `customHandler.description` of host.json.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HandlerDescription {
    /// The executable, relative to the app root.
    pub default_executable_path: String,
    /// Arguments, with `%SETTING%` expansion.
    #[serde(default)]
    pub arguments: Vec<String>,
}

/// `extensions` of host.json.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Extensions {
    /// Queue trigger settings.
    #[serde(default)]
    pub queues: Option<QueueSettings>,
    /// HTTP trigger settings.
    #[serde(default)]
    pub http: Option<HttpSettings>,
}

/// `extensions.http` of host.json.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpSettings {
    /// The path prefix of HTTP functions (host default `api`; empty for none).
    #[serde(default)]
    pub route_prefix: Option<String>,
}

/// A definitions problem, naming the file.
#[derive(Debug, thiserror::Error)]
pub enum DefinitionError {
    /// A file or folder could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The path.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A file is not valid.
    #[error("{path} is not valid: {source}")]
    Parse {
        /// The path.
        path: PathBuf,
        /// The cause.
        source: serde_json::Error,
    },
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T, DefinitionError> {
    let bytes = fs::read(path).map_err(|source| DefinitionError::Read {
        path: path.to_owned(),
        source,
    })?;
    serde_json::from_slice(&bytes).map_err(|source| DefinitionError::Parse {
        path: path.to_owned(),
        source,
    })
}

/// Reads host.json.
///
/// # Errors
/// [`DefinitionError`] when it cannot be read or parsed.
pub fn read_host_json(path: &Path) -> Result<HostJson, DefinitionError> {
    read_json(path)
}

/// Reads every `<folder>/function.json` below `root`, keyed by function (folder) name.
///
/// # Errors
/// [`DefinitionError`] when a folder or file cannot be read or parsed.
pub fn read_function_definitions(
    root: &Path,
) -> Result<BTreeMap<String, FunctionDefinition>, DefinitionError> {
    let entries = fs::read_dir(root).map_err(|source| DefinitionError::Read {
        path: root.to_owned(),
        source,
    })?;
    let mut definitions = BTreeMap::new();
    for entry in entries.flatten() {
        let file = entry.path().join("function.json");
        if file.is_file() {
            let name = entry.file_name().to_string_lossy().into_owned();
            definitions.insert(name, read_json(&file)?);
        }
    }
    Ok(definitions)
}

/// Parses `hh:mm:ss` (optionally `d.hh:mm:ss` or fractional seconds) as used in host.json.
pub fn parse_timespan(text: &str) -> Option<std::time::Duration> {
    let (days, rest) = match text.split_once('.') {
        Some((days, rest)) if rest.contains(':') && !days.contains(':') => {
            (days.parse::<u64>().ok()?, rest)
        }
        _ => (0, text),
    };
    let mut parts = rest.split(':');
    let hours: u64 = parts.next()?.parse().ok()?;
    let minutes: u64 = parts.next()?.parse().ok()?;
    let seconds: f64 = parts.next()?.parse().ok()?;
    if parts.next().is_some() || !seconds.is_finite() || seconds < 0.0 {
        return None;
    }
    let whole = (days * 24 + hours) * 3600 + minutes * 60;
    Some(std::time::Duration::from_secs(whole) + std::time::Duration::from_secs_f64(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timespans_parse_like_the_host() {
        assert_eq!(
            parse_timespan("00:00:30"),
            Some(std::time::Duration::from_secs(30))
        );
        assert_eq!(
            parse_timespan("00:10:00"),
            Some(std::time::Duration::from_secs(600))
        );
        assert_eq!(
            parse_timespan("1.02:00:00"),
            Some(std::time::Duration::from_secs(93_600))
        );
        assert_eq!(
            parse_timespan("00:00:00.5"),
            Some(std::time::Duration::from_millis(500))
        );
        assert_eq!(parse_timespan("soon"), None);
    }
}
