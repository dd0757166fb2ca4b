//! Every refusal as a problem document (RFC 9457, `application/problem+json`): a small
//! named [`Rejection`] with a status, a stable code and a sentence that is safe to show.
//! What went wrong inside (a storage or Graph error) is logged where it happens, never shown.

use bytes::Bytes;
use enroll_core::plan::PlanError;
use http::{HeaderValue, Response, StatusCode, header};
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::{Role, TokenError};

/// A problem document (RFC 9457) with enroll's `code` and, for an invalid roster, every
/// problem found in it.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ProblemDocument {
    /// `urn:enroll:problem:{code}`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The HTTP status's reason phrase.
    pub title: String,
    /// The HTTP status.
    pub status: u16,
    /// What went wrong and what to do, in a sentence; it echoes nothing secret.
    pub detail: String,
    /// A stable, machine-readable code (`invalid_token`, `invalid_roster`, ...).
    pub code: String,
    /// For `invalid_roster`: every problem, with its line, column and code.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<PlanError>,
}

/// Why the API refused a request.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Rejection {
    /// No usable bearer token, or one that fails a check.
    #[error("{0}")]
    Token(TokenError),
    /// A valid token without the app role the route needs.
    #[error("the token does not grant the app role `{}` that this request needs", .0.as_str())]
    MissingRole(Role),
    /// The API's settings are not there (`ENROLL_API_AUDIENCE`).
    #[error(
        "the API is not configured: set ENROLL_API_AUDIENCE (and the tenant) to accept Entra ID tokens"
    )]
    NotConfigured,
    /// No route has this path.
    #[error("no API route has this path; see /api/openapi.json")]
    NoRoute,
    /// The route exists, not with this method.
    #[error("this route answers {allow} only")]
    MethodNotAllowed {
        /// The methods it answers, for the `Allow` header.
        allow: &'static str,
    },
    /// The body is larger than the API accepts.
    #[error("the body is over the limit of {limit} bytes")]
    TooLarge {
        /// The limit, in bytes.
        limit: usize,
    },
    /// The body's content type is not one the route reads.
    #[error("the body must be sent as {expected}")]
    UnsupportedMediaType {
        /// What the route reads.
        expected: &'static str,
    },
    /// The roster path cannot name a roster.
    #[error("the roster path is not usable: {0}")]
    BadRosterPath(String),
    /// The roster has errors; nothing was stored.
    #[error("the roster is invalid ({} problem(s)); nothing was stored", .0.len())]
    InvalidRoster(Vec<PlanError>),
    /// The request is malformed in another way (query, JSON body, empty body).
    #[error("{0}")]
    BadRequest(String),
    /// An override of the guards without who and why.
    #[error("{0}")]
    OverrideIncomplete(String),
    /// `If-Match` / `If-None-Match` did not hold.
    #[error("{0}")]
    PreconditionFailed(String),
    /// A roster, manifest or run that does not exist.
    #[error("{0}")]
    NotFound(String),
    /// Storage or Graph failed (logged); trying later can help.
    #[error("{0}")]
    Unavailable(&'static str),
}

impl Rejection {
    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Token(TokenError::KeysUnavailable)
            | Self::NotConfigured
            | Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Token(_) => StatusCode::UNAUTHORIZED,
            Self::MissingRole(_) => StatusCode::FORBIDDEN,
            Self::NoRoute | Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Self::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType { .. } => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::BadRosterPath(_)
            | Self::InvalidRoster(_)
            | Self::BadRequest(_)
            | Self::OverrideIncomplete(_) => StatusCode::BAD_REQUEST,
            Self::PreconditionFailed(_) => StatusCode::PRECONDITION_FAILED,
        }
    }

    /// The stable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Token(TokenError::Missing) => "missing_token",
            Self::Token(TokenError::KeysUnavailable) => "keys_unavailable",
            Self::Token(_) => "invalid_token",
            Self::MissingRole(_) => "missing_role",
            Self::NotConfigured => "api_not_configured",
            Self::NoRoute => "no_route",
            Self::MethodNotAllowed { .. } => "method_not_allowed",
            Self::TooLarge { .. } => "body_too_large",
            Self::UnsupportedMediaType { .. } => "unsupported_media_type",
            Self::BadRosterPath(_) => "invalid_roster_path",
            Self::InvalidRoster(_) => "invalid_roster",
            Self::BadRequest(_) => "bad_request",
            Self::OverrideIncomplete(_) => "override_needs_who_and_why",
            Self::PreconditionFailed(_) => "precondition_failed",
            Self::NotFound(_) => "not_found",
            Self::Unavailable(_) => "unavailable",
        }
    }

    /// The problem document.
    pub fn document(&self) -> ProblemDocument {
        let status = self.status();
        ProblemDocument {
            kind: format!("urn:enroll:problem:{}", self.code()),
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            detail: self.to_string(),
            code: self.code().to_owned(),
            errors: match self {
                Self::InvalidRoster(errors) => errors.clone(),
                _ => Vec::new(),
            },
        }
    }

    /// The answer: the problem document, with `WWW-Authenticate` for token problems
    /// (RFC 6750) and `Allow` for a wrong method.
    pub fn response(&self) -> Response<Bytes> {
        let body = serde_json::to_vec(&self.document()).unwrap_or_default();
        let mut response = Response::new(Bytes::from(body));
        *response.status_mut() = self.status();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        match self {
            Self::Token(TokenError::Missing) => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            Self::Token(TokenError::KeysUnavailable) => {}
            Self::Token(_) => {
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer error=\"invalid_token\""),
                );
            }
            Self::MissingRole(_) => {
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer error=\"insufficient_scope\""),
                );
            }
            Self::MethodNotAllowed { allow } => {
                headers.insert(header::ALLOW, HeaderValue::from_static(allow));
            }
            _ => {}
        }
        response
    }
}

impl From<TokenError> for Rejection {
    fn from(error: TokenError) -> Self {
        match error {
            TokenError::MissingRole(role) => Self::MissingRole(role),
            other => Self::Token(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rejection_is_a_problem_document_with_its_status() {
        let rejection = Rejection::InvalidRoster(vec![PlanError {
            roster: "a.csv".into(),
            line: Some(3),
            column: Some(2),
            code: "invalid_email".into(),
            message: "not an address".into(),
        }]);
        let response = rejection.response();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            "application/problem+json"
        );
        let body: serde_json::Value = serde_json::from_slice(response.body()).unwrap();
        assert_eq!(body["type"], "urn:enroll:problem:invalid_roster");
        assert_eq!(body["status"], 400);
        assert_eq!(body["errors"][0]["line"], 3);
        assert_eq!(body["errors"][0]["code"], "invalid_email");

        let expired = Rejection::from(TokenError::Expired).response();
        assert_eq!(expired.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            expired.headers()[header::WWW_AUTHENTICATE],
            "Bearer error=\"invalid_token\""
        );
        let role = Rejection::from(TokenError::MissingRole(Role::RunsStart)).response();
        assert_eq!(role.status(), StatusCode::FORBIDDEN);
        let body: serde_json::Value = serde_json::from_slice(role.body()).unwrap();
        assert_eq!(body["code"], "missing_role");
        assert!(body["detail"].as_str().unwrap().contains("Runs.Start"));
        assert!(body.get("errors").is_none());
    }
}
