//! Audit records: one per change or decision, who, what, which roster version, which run,
//! Graph's request id, and the outcome.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// What was done (or decided).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub enum Action {
    /// A roster was planned.
    Plan,
    /// A guest invitation.
    Invite,
    /// An `adminAdd` request.
    Assign,
    /// An `adminRemove` request.
    Remove,
    /// A `reprocess` of an assignment request that failed or of an assignment stuck in
    /// delivery, found when its roster was planned.
    Reprocess,
    /// An app role manifest was planned (`roster` names the manifest).
    MapRoles,
    /// A `PATCH` of the application's app roles.
    UpdateAppRoles,
    /// A group was given its app role.
    AssignAppRole,
    /// A group's app role assignment was removed.
    UnassignAppRole,
}

/// How it ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub enum Outcome {
    /// The change was made (or the plan written).
    Done,
    /// Nothing to do: the tenant already had it.
    AlreadyDone,
    /// Not done, on purpose (no longer in the roster, blocked, domain not allowed, ...).
    Skipped,
    /// A roster or plan refused (invalid roster, guard).
    Rejected,
    /// Failed; the message will be tried again.
    Retrying,
    /// Failed for good (or out of tries); a person needs to look.
    Failed,
}

/// One line of the audit trail. For app role records, `roster` and `rosterVersion` name the
/// manifest and its version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct AuditRecord {
    /// When, RFC 3339 UTC.
    pub time: String,
    /// Who acted (the app's identity).
    pub actor: String,
    /// The run.
    pub run_id: String,
    /// The roster.
    pub roster: String,
    /// The roster version (ETag) acted on.
    pub roster_version: String,
    /// The access package.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_package_id: Option<String>,
    /// What.
    pub action: Action,
    /// Whom (e-mail), when about a person.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// The user's object id, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// The assignment, for removals.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assignment_id: Option<String>,
    /// The group, for app role assignments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_id: Option<String>,
    /// The app role, for app role assignments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_role_id: Option<String>,
    /// How it ended.
    pub outcome: Outcome,
    /// Why, in a sentence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Graph's `request-id` for the call, when there was one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

/// Formats a time as RFC 3339 UTC with seconds (`2026-11-27T06:01:11Z`).
pub fn rfc3339(time: SystemTime) -> String {
    const FORMAT: &[time::format_description::BorrowedFormatItem<'_>] =
        time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    let seconds = time
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs());
    // A time before 1970 or after year 9999 (out of `time`'s range) reads as the epoch.
    let at = i64::try_from(seconds)
        .ok()
        .and_then(|seconds| time::OffsetDateTime::from_unix_timestamp(seconds).ok())
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    at.format(FORMAT).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn formats_known_dates() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        assert_eq!(
            rfc3339(UNIX_EPOCH + Duration::from_secs(951_782_400)),
            "2000-02-29T00:00:00Z"
        );
        assert_eq!(
            rfc3339(UNIX_EPOCH + Duration::from_secs(1_795_759_271)),
            "2026-11-27T06:01:11Z"
        );
    }
}
