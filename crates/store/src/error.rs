//! Storage errors: what failed, on which container, blob or queue, and whether a retry can help.

use std::fmt;

use azure_core::error::ErrorKind;

/// The storage object an operation was about, named in every [`StoreError`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resource {
    /// A blob container.
    Container(String),
    /// A blob inside a container.
    Blob {
        /// The container.
        container: String,
        /// The blob's name inside the container.
        name: String,
    },
    /// A queue.
    Queue(String),
    /// One message of a queue.
    Message {
        /// The queue.
        queue: String,
        /// The message id.
        id: String,
    },
}

impl Resource {
    pub(crate) fn blob(container: &str, name: &str) -> Self {
        Resource::Blob {
            container: container.to_owned(),
            name: name.to_owned(),
        }
    }
}

impl fmt::Display for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Resource::Container(c) => write!(f, "container `{c}`"),
            Resource::Blob { container, name } => write!(f, "blob `{container}/{name}`"),
            Resource::Queue(q) => write!(f, "queue `{q}`"),
            Resource::Message { queue, id } => write!(f, "message `{id}` of queue `{queue}`"),
        }
    }
}

/// A failed storage operation.
///
/// Messages name the operation and the [`Resource`]; they never contain the account key or a
/// SAS signature. [`StoreError::is_retryable`] says whether trying again (later, or after
/// re-reading) can help, so retry and poison decisions can be made in one place.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The container, blob, queue or message does not exist (HTTP 404).
    #[error("{op} {resource}: not found ({code})")]
    NotFound {
        /// The operation, such as `get blob`.
        op: &'static str,
        /// What it was about.
        resource: Resource,
        /// The storage error code, such as `BlobNotFound`.
        code: String,
    },
    /// A condition failed: the ETag no longer matches (someone else wrote in between), the
    /// object already exists, or a pop receipt is stale (HTTP 409 or 412).
    #[error("{op} {resource}: changed or created by someone else ({code}); re-read and try again")]
    Conflict {
        /// The operation.
        op: &'static str,
        /// What it was about.
        resource: Resource,
        /// The storage error code, such as `ConditionNotMet` or `BlobAlreadyExists`.
        code: String,
    },
    /// Storage refused the credentials (HTTP 401 or 403), or none could be obtained.
    #[error(
        "{op} {resource}: storage refused the credentials (HTTP {status}, {code}); \
         check the account key, SAS or managed identity configured in AzureWebJobsStorage"
    )]
    Unauthorized {
        /// The operation.
        op: &'static str,
        /// What it was about.
        resource: Resource,
        /// The HTTP status.
        status: u16,
        /// The storage error code, such as `AuthorizationFailure`.
        code: String,
    },
    /// Any other non-success answer from storage.
    #[error("{op} {resource}: storage answered HTTP {status} ({code})")]
    Service {
        /// The operation.
        op: &'static str,
        /// What it was about.
        resource: Resource,
        /// The HTTP status.
        status: u16,
        /// The storage error code, if storage sent one.
        code: String,
    },
    /// Storage could not be reached, or the connection broke, or no token could be obtained
    /// from the managed identity endpoint.
    #[error("{op} {resource}: could not reach storage: {message}")]
    Transport {
        /// The operation.
        op: &'static str,
        /// What it was about.
        resource: Resource,
        /// What went wrong, with any signature redacted.
        message: String,
    },
    /// A roster, manifest or mapping blob over the read limit: refused by the length
    /// storage gave before it was downloaded, or cut off one byte past the limit.
    #[error(
        "{op} {resource}: too_large: {}; enroll reads files of at most {limit} bytes",
        match .size {
            Some(size) => format!("it is {size} bytes"),
            None => "it grew past the limit while it was read".to_owned(),
        }
    )]
    TooLarge {
        /// The operation.
        op: &'static str,
        /// What it was about.
        resource: Resource,
        /// Its length before downloading; `None` when it grew past the limit meanwhile.
        size: Option<u64>,
        /// The limit, in bytes.
        limit: u64,
    },
    /// The request was refused before sending (bad name, message too large) or the answer
    /// could not be understood.
    #[error("{op} {resource}: {message}")]
    Invalid {
        /// The operation.
        op: &'static str,
        /// What it was about.
        resource: Resource,
        /// What was wrong.
        message: String,
    },
}

impl StoreError {
    /// Whether retrying can help: transport failures, throttling and server errors (later),
    /// and conflicts (after re-reading the current state). Missing objects, refused
    /// credentials and invalid requests stay wrong however often they are retried.
    pub fn is_retryable(&self) -> bool {
        match self {
            StoreError::Transport { .. } | StoreError::Conflict { .. } => true,
            StoreError::Service { status, .. } => {
                *status == 408 || *status == 429 || *status >= 500
            }
            StoreError::NotFound { .. }
            | StoreError::Unauthorized { .. }
            | StoreError::TooLarge { .. }
            | StoreError::Invalid { .. } => false,
        }
    }

    /// The container, blob, queue or message the failed operation was about.
    pub fn resource(&self) -> &Resource {
        match self {
            StoreError::NotFound { resource, .. }
            | StoreError::Conflict { resource, .. }
            | StoreError::Unauthorized { resource, .. }
            | StoreError::Service { resource, .. }
            | StoreError::Transport { resource, .. }
            | StoreError::TooLarge { resource, .. }
            | StoreError::Invalid { resource, .. } => resource,
        }
    }

    /// The storage error code (`BlobNotFound`, `ConditionNotMet`, ...), when storage sent one.
    pub fn code(&self) -> Option<&str> {
        match self {
            StoreError::NotFound { code, .. }
            | StoreError::Conflict { code, .. }
            | StoreError::Unauthorized { code, .. }
            | StoreError::Service { code, .. } => Some(code),
            StoreError::Transport { .. }
            | StoreError::TooLarge { .. }
            | StoreError::Invalid { .. } => None,
        }
    }

    pub(crate) fn invalid(
        op: &'static str,
        resource: Resource,
        message: impl Into<String>,
    ) -> Self {
        StoreError::Invalid {
            op,
            resource,
            message: message.into(),
        }
    }

    /// Classifies an SDK error. The SDK's own text can contain the request URL, so anything
    /// taken from it passes through [`redact`].
    pub(crate) fn from_azure(
        op: &'static str,
        resource: Resource,
        err: &azure_core::Error,
    ) -> Self {
        match err.kind() {
            ErrorKind::HttpResponse {
                status, error_code, ..
            } => {
                let status = u16::from(*status);
                let code = error_code
                    .as_deref()
                    .map(redact)
                    .unwrap_or_else(|| "no error code".to_owned());
                match status {
                    404 => StoreError::NotFound { op, resource, code },
                    // An append blob that is full (50,000 blocks) stays full: not a conflict
                    // that re-reading resolves.
                    409 if code == "BlockCountExceedsLimit" => StoreError::Service {
                        op,
                        resource,
                        status,
                        code,
                    },
                    409 | 412 => StoreError::Conflict { op, resource, code },
                    401 | 403 => StoreError::Unauthorized {
                        op,
                        resource,
                        status,
                        code,
                    },
                    _ => StoreError::Service {
                        op,
                        resource,
                        status,
                        code,
                    },
                }
            }
            ErrorKind::Connection | ErrorKind::Io | ErrorKind::Credential => {
                StoreError::Transport {
                    op,
                    resource,
                    message: redact(&enroll_core::report::error_chain(err)),
                }
            }
            ErrorKind::DataConversion | ErrorKind::Other => StoreError::Invalid {
                op,
                resource,
                message: redact(&enroll_core::report::error_chain(err)),
            },
        }
    }
}

/// Replaces the value of every `sig=` query parameter, so that a URL quoted in an error or log
/// never carries a usable SAS signature.
pub(crate) fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find("sig=") {
        let (before, after) = rest.split_at(pos + "sig=".len());
        out.push_str(before);
        let end = after
            .find(|c: char| c == '&' || c == ')' || c == '"' || c == '\'' || c.is_whitespace())
            .unwrap_or(after.len());
        if end > 0 {
            out.push_str("REDACTED");
        }
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_hides_every_signature_and_keeps_the_rest() {
        let url = "error sending request for url (http://127.0.0.1:1/acct/c?sv=2025-11-05&sig=abc%2Bdef%3D&se=x): refused; again sig=zzz";
        let red = redact(url);
        assert!(!red.contains("abc"), "{red}");
        assert!(!red.contains("zzz"), "{red}");
        assert!(red.contains("sig=REDACTED&se=x"), "{red}");
        assert!(red.ends_with("again sig=REDACTED"), "{red}");
        assert_eq!(redact("nothing to hide"), "nothing to hide");
    }

    #[test]
    fn retryable_follows_status() {
        let r = || Resource::Queue("q".into());
        let service = |status| StoreError::Service {
            op: "send message",
            resource: r(),
            status,
            code: "x".into(),
        };
        assert!(service(503).is_retryable());
        assert!(service(429).is_retryable());
        assert!(!service(400).is_retryable());
        let nf = StoreError::NotFound {
            op: "get blob",
            resource: Resource::blob("rosters", "a.csv"),
            code: "BlobNotFound".into(),
        };
        assert!(!nf.is_retryable());
        assert_eq!(
            nf.to_string(),
            "get blob blob `rosters/a.csv`: not found (BlobNotFound)"
        );
    }
}
