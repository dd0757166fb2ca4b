//! Errors of the Graph client: transport, HTTP status with Graph's error body, decoding,
//! authentication and configuration, with the recognisers that let steps treat
//! "already done" answers as success and retry the ones that can still succeed.

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

/// What went wrong talking to Microsoft Graph (or to the token endpoint).
///
/// The `Display` text never contains a secret, a token or a full URL with credentials:
/// it names the method and the path, Graph's code and message, and Graph's `request-id`.
#[derive(Debug, Clone, thiserror::Error)]
pub enum GraphError {
    /// The request did not get an HTTP answer (connection refused or dropped, timeout).
    #[error("no answer from Microsoft Graph to {method} {path}: {source}")]
    Transport {
        /// HTTP method.
        method: String,
        /// Path and query, relative to the Graph base URL.
        path: String,
        /// Whether the connection failed before the request was sent (then a retry is safe).
        connect: bool,
        /// The transport error, with its URL removed (shared, so one failed `$batch` can be
        /// reported on each of its requests).
        #[source]
        source: Arc<reqwest::Error>,
    },
    /// Graph answered with a non-success status.
    #[error("{0}")]
    Status(Box<StatusError>),
    /// Graph's answer could not be read as the expected JSON.
    #[error("cannot decode Microsoft Graph's answer to {method} {path}: {source}")]
    Decode {
        /// HTTP method.
        method: String,
        /// Path and query.
        path: String,
        /// The JSON error.
        #[source]
        source: Arc<serde_json::Error>,
    },
    /// No access token could be had.
    #[error("cannot get an access token from {endpoint}: {reason}")]
    Auth {
        /// The token endpoint (without query string).
        endpoint: String,
        /// What the endpoint said (`error` and `error_description`), or why it could not be reached.
        reason: String,
        /// Whether asking again later can help (endpoint unreachable, 429 or 5xx).
        retryable: bool,
    },
    /// The configuration cannot work (a malformed certificate or key, a bad URL).
    #[error("invalid Graph client configuration: {0}")]
    Config(String),
    /// The answer to a write was lost (a 500, 502 or 504, a timeout, a dropped connection),
    /// and a read found the change made: the write is done. The "already done" recognisers
    /// ([`GraphError::is_already_done`], [`GraphError::is_already_removed`], ...) accept it.
    #[error("the answer to the {write} was lost ({lost}); a read found it made: {found}")]
    AlreadyMade {
        /// Which write.
        write: crate::Write,
        /// The unclear answer.
        lost: Box<GraphError>,
        /// What the read found, in a phrase (`user 1234 has the invited address`).
        found: String,
    },
    /// A `$batch` answer lacked the response to one of its requests.
    #[error("Microsoft Graph's $batch answer has no response for request {id} ({method} {path})")]
    MissingBatchResponse {
        /// The sub-request id.
        id: String,
        /// HTTP method of the sub-request.
        method: String,
        /// Path of the sub-request.
        path: String,
    },
}

/// A non-success HTTP answer, with what Graph's error body says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusError {
    /// HTTP method of the request.
    pub method: String,
    /// Path and query, relative to the Graph base URL.
    pub path: String,
    /// HTTP status code.
    pub status: u16,
    /// Graph's `error.code` (empty when the body had none).
    pub code: String,
    /// Graph's `error.message`.
    pub message: String,
    /// Graph's `request-id` (from `innerError` or the `request-id` header).
    pub request_id: Option<String>,
    /// The `client-request-id` this client sent.
    pub client_request_id: Option<String>,
    /// Codes of `error.details[]` and nested `innerError` codes, e.g. `DuplicateValue`.
    pub detail_codes: Vec<String>,
    /// How long Graph asked to wait (`Retry-After`), when it said.
    pub retry_after: Option<Duration>,
}

impl std::fmt::Display for StatusError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Microsoft Graph answered {} to {} {}",
            self.status, self.method, self.path
        )?;
        if !self.code.is_empty() || !self.message.is_empty() {
            write!(f, ": {}: {}", self.code, self.message)?;
        }
        if let Some(wait) = self.retry_after {
            write!(f, "; it asked to wait {} s", wait.as_secs_f64().ceil())?;
        }
        if let Some(request_id) = &self.request_id {
            write!(f, " (request-id {request_id})")?;
        }
        Ok(())
    }
}

/// Graph's error envelope (`{"error": {...}}`), see graph.md §6.1.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct ErrorEnvelope {
    #[serde(default)]
    pub(crate) error: Option<ErrorBody>,
}

/// The `error` object; `innerError` is spelled both ways in the wild.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct ErrorBody {
    #[serde(default)]
    pub(crate) code: Option<String>,
    #[serde(default)]
    pub(crate) message: Option<String>,
    #[serde(default, rename = "innerError", alias = "innererror")]
    pub(crate) inner_error: Option<InnerError>,
    #[serde(default)]
    pub(crate) details: Option<Vec<ErrorDetail>>,
}

/// `innerError`, which may nest further `innerError`s.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct InnerError {
    #[serde(default)]
    pub(crate) code: Option<String>,
    #[serde(default, rename = "request-id")]
    pub(crate) request_id: Option<String>,
    #[serde(default, rename = "innerError", alias = "innererror")]
    pub(crate) inner_error: Option<Box<InnerError>>,
}

/// One entry of `error.details`.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct ErrorDetail {
    #[serde(default)]
    pub(crate) code: Option<String>,
}

impl StatusError {
    /// Builds the error from a status, the body bytes and what the headers said.
    pub(crate) fn from_body(
        method: &str,
        path: &str,
        status: u16,
        body: &[u8],
        header_request_id: Option<String>,
        client_request_id: Option<String>,
        retry_after: Option<Duration>,
    ) -> Self {
        let envelope: ErrorEnvelope = serde_json::from_slice(body).unwrap_or_default();
        let error = envelope.error.unwrap_or_default();
        let mut detail_codes: Vec<String> = error
            .details
            .unwrap_or_default()
            .into_iter()
            .filter_map(|detail| detail.code)
            .collect();
        let mut request_id = None;
        let mut inner = error.inner_error.map(Box::new);
        while let Some(current) = inner {
            request_id = request_id.or(current.request_id);
            detail_codes.extend(current.code);
            inner = current.inner_error;
        }
        let message = match error.message {
            Some(message) => message,
            // Not Graph's envelope (a proxy or gateway page): keep a short, safe excerpt.
            None if error.code.is_none() => {
                String::from_utf8_lossy(body).chars().take(200).collect()
            }
            None => String::new(),
        };
        StatusError {
            method: method.to_owned(),
            path: path.to_owned(),
            status,
            code: error.code.unwrap_or_default(),
            message,
            request_id: request_id.or(header_request_id),
            client_request_id,
            detail_codes,
            retry_after,
        }
    }

    fn message_has(&self, needles: &[&str]) -> bool {
        let message = self.message.to_ascii_lowercase();
        needles.iter().any(|needle| message.contains(needle))
    }

    fn code_is(&self, codes: &[&str]) -> bool {
        codes.iter().any(|code| {
            self.code.eq_ignore_ascii_case(code)
                || self
                    .detail_codes
                    .iter()
                    .any(|detail| detail.eq_ignore_ascii_case(code))
        })
    }
}

impl GraphError {
    /// The HTTP status, when Graph answered.
    pub fn status(&self) -> Option<u16> {
        self.status_error().map(|error| error.status)
    }

    /// Graph's error code, when Graph answered with one.
    pub fn code(&self) -> Option<&str> {
        self.status_error()
            .map(|error| error.code.as_str())
            .filter(|code| !code.is_empty())
    }

    /// Graph's `request-id`, to quote when asking Microsoft support.
    pub fn request_id(&self) -> Option<&str> {
        match self {
            GraphError::AlreadyMade { lost, .. } => lost.request_id(),
            _ => self.status_error()?.request_id.as_deref(),
        }
    }

    /// Which write a read found made after its answer was lost, if this is that.
    fn made(&self) -> Option<crate::Write> {
        match self {
            GraphError::AlreadyMade { write, .. } => Some(*write),
            _ => None,
        }
    }

    /// Whether `write` was found made after a lost answer, or Graph's answer is one that
    /// `answered` takes as "already done".
    fn made_or(&self, write: crate::Write, answered: impl FnOnce(&StatusError) -> bool) -> bool {
        self.made() == Some(write) || self.status_error().is_some_and(answered)
    }

    /// The status error, when this is one.
    pub fn status_error(&self) -> Option<&StatusError> {
        match self {
            GraphError::Status(error) => Some(error),
            _ => None,
        }
    }

    /// Whether trying the same call again later can help: throttling, a server fault, a lost
    /// connection, a token endpoint that was unreachable, or a user not yet replicated.
    pub fn is_retryable(&self) -> bool {
        match self {
            GraphError::Transport { .. } => true,
            GraphError::Auth { retryable, .. } => *retryable,
            GraphError::Status(error) => {
                matches!(error.status, 429 | 500 | 502 | 503 | 504) || self.is_not_yet_replicated()
            }
            GraphError::Decode { .. } | GraphError::Config(_) => false,
            GraphError::MissingBatchResponse { .. } => true,
            // Done: nothing to try again.
            GraphError::AlreadyMade { .. } => false,
        }
    }

    /// How long Graph asked to wait before the call is tried again (`Retry-After`), when it
    /// said: the client gives up at once when that is longer than it waits
    /// ([`crate::RetryPolicy::max_wait`]), and the caller should not try before then.
    pub fn retry_after(&self) -> Option<Duration> {
        self.status_error()?.retry_after
    }

    /// Whether Graph throttled the call (429).
    pub fn is_throttled(&self) -> bool {
        self.status() == Some(429)
    }

    /// Whether the object asked for does not exist (404).
    pub fn is_not_found(&self) -> bool {
        self.status() == Some(404)
    }

    /// An `adminAdd` for a person who already holds an assignment to the package, or one
    /// whose lost answer a read found made.
    ///
    /// Graph documents no code for this (graph.md §3.3), so the 400's message is read too;
    /// the wordings are in `tests/data/graph/errors/already-done.json`.
    pub fn is_existing_assignment(&self) -> bool {
        self.made_or(crate::Write::AdminAdd, |error| {
            matches!(error.status, 400 | 409)
                && (error.code_is(&[
                    "ExistingAssignment",
                    "AlreadyAssigned",
                    "AssignmentAlreadyExists",
                ]) || error.message_has(&[
                    "already has an active assignment",
                    "already has an existing assignment",
                    "existing assignment",
                    "already assigned",
                    "assignment already exists",
                ]))
        })
    }

    /// An `adminAdd`/`adminRemove` while an open request exists for the same person and package.
    pub fn is_existing_open_request(&self) -> bool {
        self.status_error().is_some_and(|error| {
            matches!(error.status, 400 | 409)
                && (error.code_is(&[
                    "ExistingOpenRequest",
                    "PendingRequestExists",
                    "OpenRequestExists",
                ]) || error.message_has(&[
                    "open request",
                    "pending request",
                    "existing request",
                    "request is already",
                ]))
        })
    }

    /// An invitation to an address that already belongs to a user of the tenant (a member),
    /// or one whose lost answer a read found made (a user has the address now).
    ///
    /// Inviting an existing guest answers 201 with the same user, so this only covers members
    /// ("The invited user already exists in the directory as object ID: ...").
    pub fn is_existing_user_invitation(&self) -> bool {
        self.made_or(crate::Write::Invitation, |error| {
            matches!(error.status, 400 | 409)
                && (error.code_is(&["UserAlreadyExists"])
                    || error
                        .message_has(&["already exists in the directory", "user already exists"]))
        })
    }

    /// An app role assignment that exists already
    /// ("Permission being assigned already exists on the object."), or one whose lost answer
    /// a read found made.
    pub fn is_existing_app_role_assignment(&self) -> bool {
        self.made_or(crate::Write::AppRoleAssignment, |error| {
            matches!(error.status, 400 | 409)
                && error.message_has(&["permission being assigned already exists on the object"])
        })
    }

    /// A removal of something that is already gone or going: a 404 on DELETE; an
    /// `adminRemove` of an assignment that has expired or is otherwise no longer active
    /// (`400 … is not active (state expired)`, as a retried removal whose first answer was
    /// lost gets), or while a request to remove it is open; or a removal whose lost answer
    /// a read found made. Wordings: `tests/data/graph/errors/already-done.json`.
    pub fn is_already_removed(&self) -> bool {
        self.made_or(crate::Write::AdminRemove, |error| {
            error.status == 404
                || (error.status == 400
                    && error.message_has(&[
                        "already expired",
                        "already removed",
                        "already been removed",
                        "is not active",
                        "is no longer active",
                    ]))
        }) || self.is_existing_open_request()
    }

    /// An app roles update that would change or remove a role that is enabled
    /// (`CannotDeleteOrUpdateEnabledEntitlement`): the roles changed since they were read,
    /// e.g. by a concurrent run, so planning again from what Graph has now can succeed.
    pub fn is_enabled_role_change(&self) -> bool {
        self.status_error().is_some_and(|error| {
            error.status == 400 && error.code_is(&["CannotDeleteOrUpdateEnabledEntitlement"])
        })
    }

    /// Any of the answers that mean the change is already in place, so a step may treat the
    /// call as done: Graph said so, or a read after a lost answer found the change made.
    pub fn is_already_done(&self) -> bool {
        self.made().is_some()
            || self.is_existing_assignment()
            || self.is_existing_open_request()
            || self.is_existing_user_invitation()
            || self.is_existing_app_role_assignment()
    }

    /// A user that was just created (invited) and is not yet known to the service answering:
    /// retry with backoff rather than fail.
    pub fn is_not_yet_replicated(&self) -> bool {
        self.status_error().is_some_and(|error| {
            (error.status == 404
                && (error.code_is(&["Request_ResourceNotFound", "ResourceNotFound", "NotFound"])
                    || error.message_has(&["does not exist"])))
                || (error.status == 400
                    && (error.code_is(&["UserNotFound", "SubjectNotFound", "NotYetReplicated"])
                        || error.message_has(&[
                            "does not exist",
                            "not found",
                            "could not be found",
                            "replicat",
                        ])))
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn status_error(status: u16, body: &str) -> GraphError {
        GraphError::Status(Box::new(StatusError::from_body(
            "POST",
            "/x",
            status,
            body.as_bytes(),
            Some("header-id".into()),
            None,
            None,
        )))
    }

    #[test]
    fn reads_code_message_and_nested_request_id() {
        let error = status_error(
            404,
            r#"{"error":{"code":"Request_ResourceNotFound","message":"Resource 'x' does not exist.",
               "innerError":{"date":"2025-02-13T10:17:05","request-id":"93b6","client-request-id":"e70c"}}}"#,
        );
        assert_eq!(error.code(), Some("Request_ResourceNotFound"));
        assert_eq!(error.request_id(), Some("93b6"));
        let text = error.to_string();
        assert!(
            text.contains("404")
                && text.contains("Request_ResourceNotFound")
                && text.contains("93b6")
        );
        assert!(error.is_not_yet_replicated());
    }

    #[test]
    fn falls_back_to_header_request_id_and_lowercase_innererror() {
        let error = status_error(
            400,
            r#"{"error":{"code":"BadRequest","message":"m","innererror":{}}}"#,
        );
        assert_eq!(error.request_id(), Some("header-id"));
        let error = status_error(502, "<html>Bad gateway</html>");
        assert_eq!(error.status(), Some(502));
        assert!(error.to_string().contains("Bad gateway"));
        assert!(error.is_retryable());
    }

    #[test]
    fn recognises_already_done_answers() {
        let app_role = status_error(
            400,
            r#"{"error":{"code":"Request_BadRequest","message":"Permission being assigned already exists on the object."}}"#,
        );
        assert!(app_role.is_existing_app_role_assignment() && app_role.is_already_done());
        let member = status_error(
            400,
            r#"{"error":{"code":"BadRequest","message":"The invited user already exists in the directory as object ID: 1234."}}"#,
        );
        assert!(member.is_existing_user_invitation());
        let open = status_error(
            400,
            r#"{"error":{"code":"BadRequest","message":"There is already an existing open request for this target and access package."}}"#,
        );
        assert!(open.is_existing_open_request());
        let throttled = status_error(
            429,
            r#"{"error":{"code":"TooManyRequests","message":"slow down"}}"#,
        );
        assert!(throttled.is_retryable() && !throttled.is_already_done());
        let denied = status_error(
            403,
            r#"{"error":{"code":"Authorization_RequestDenied","message":"Insufficient privileges to complete the operation."}}"#,
        );
        assert!(!denied.is_retryable() && !denied.is_already_done());
    }

    #[test]
    fn duplicate_value_detail_is_kept() {
        let error = status_error(
            400,
            r#"{"error":{"code":"Request_BadRequest","message":"Request contains a property with duplicate values.",
               "details":[{"code":"DuplicateValue","target":"appRoles"}]}}"#,
        );
        assert_eq!(
            error.status_error().unwrap().detail_codes,
            vec!["DuplicateValue"]
        );
        assert!(!error.is_already_done());
    }

    /// Every answer of `tests/data/graph/errors/already-done.json` is taken as "already done" by
    /// the recogniser its write's caller asks, exactly when the fixture says so.
    #[test]
    fn published_already_done_answers_are_recognised() {
        let fixture: serde_json::Value = serde_json::from_str(include_str!(
            "../../../tests/data/graph/errors/already-done.json"
        ))
        .unwrap();
        let answers = fixture["answers"].as_array().unwrap();
        assert_eq!(answers.len(), 13);
        for answer in answers {
            let status = u16::try_from(answer["status"].as_u64().unwrap()).unwrap();
            let error = status_error(status, &answer["body"].to_string());
            let write = answer["write"].as_str().unwrap();
            let recognised = match write {
                "invitation" => error.is_existing_user_invitation(),
                "adminAdd" => error.is_already_done(),
                "adminRemove" => error.is_already_removed(),
                "appRoleAssignment" => error.is_existing_app_role_assignment(),
                "appRoleAssignmentRemoval" => error.is_already_removed(),
                other => panic!("unknown write {other}"),
            };
            assert_eq!(
                recognised,
                answer["alreadyDone"].as_bool().unwrap(),
                "{write}: {error}"
            );
            // What is not done must not pass as done through the general recogniser either.
            if !recognised && write != "appRoleAssignmentRemoval" {
                assert!(!error.is_already_done(), "{write}: {error}");
            }
        }
    }

    #[test]
    fn a_write_found_made_after_a_lost_answer_is_done_for_its_own_recogniser() {
        let lost = status_error(
            504,
            r#"{"error":{"code":"GatewayTimeout","message":"The gateway did not receive a timely response from the upstream server."}}"#,
        );
        assert!(lost.is_retryable() && !lost.is_already_done());
        let made = |write| GraphError::AlreadyMade {
            write,
            lost: Box::new(lost.clone()),
            found: "found".into(),
        };
        let invitation = made(crate::Write::Invitation);
        assert!(invitation.is_existing_user_invitation() && invitation.is_already_done());
        assert!(!invitation.is_already_removed() && !invitation.is_retryable());
        let add = made(crate::Write::AdminAdd);
        assert!(add.is_existing_assignment() && !add.is_existing_user_invitation());
        let remove = made(crate::Write::AdminRemove);
        assert!(remove.is_already_removed() && !remove.is_existing_assignment());
        let grant = made(crate::Write::AppRoleAssignment);
        assert!(grant.is_existing_app_role_assignment() && !grant.is_already_removed());
        // The lost answer's request id stays at hand for support.
        assert_eq!(grant.request_id(), Some("header-id"));
        assert!(
            grant.to_string().starts_with(
                "the answer to the app role assignment was lost (Microsoft Graph answered 504"
            ),
            "{grant}"
        );
    }

    #[test]
    fn an_enabled_role_change_is_recognised() {
        let error = status_error(
            400,
            r#"{"error":{"code":"CannotDeleteOrUpdateEnabledEntitlement","message":"Permission (scope or role) cannot be deleted or updated unless disabled first."}}"#,
        );
        assert!(error.is_enabled_role_change() && !error.is_retryable());
    }
}
