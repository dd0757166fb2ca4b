//! The bodies the API reads and answers. The OpenAPI document is generated from these
//! types (and the core's plan and audit types), the same ones the routes serialise.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use enroll_core::plan::PlanError;

/// `GET /api/health`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Health {
    /// Always `ok`: the process answers (neither Graph nor storage is asked).
    pub status: String,
    /// enroll's version.
    pub version: String,
}

/// `PUT /api/rosters/{path}`: the roster as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RosterStored {
    /// The roster's path in the rosters container.
    pub roster: String,
    /// Its new version (also in the `ETag` header): send it as `If-Match` next time.
    pub etag: String,
    /// People in it, each address once.
    pub people: usize,
    /// Warnings (`duplicate_email`): the roster is stored all the same.
    pub warnings: Vec<PlanError>,
}

/// Who allows a guard to be passed, and why; recorded in the audit trail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Override {
    /// The person who decided (a name or address), not the calling system.
    pub by: String,
    /// Why the guard may be passed (a ticket, a reorganisation, ...).
    pub reason: String,
}

/// `POST /api/reconcile`: which rosters, and whether removals may pass the guards.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReconcileRequest {
    /// One roster's path; every stored roster when absent.
    #[serde(default)]
    pub roster: Option<String>,
    /// Let plans pass the removal guards (count and share, every holder, empty roster);
    /// needs `override`.
    #[serde(default)]
    pub allow_removals: bool,
    /// Let plans pass the addition guard; needs `override`.
    #[serde(default)]
    pub allow_additions: bool,
    /// Who allows it and why (required with `allowRemovals` or `allowAdditions`); the plan
    /// and the audit trail record both.
    #[serde(default, rename = "override")]
    pub override_: Option<Override>,
}

/// `POST /api/roles/reconcile`: which manifest, and whether held roles may be removed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RolesReconcileRequest {
    /// One manifest's name in the manifests container; every manifest when absent.
    #[serde(default)]
    pub manifest: Option<String>,
    /// Remove app roles the manifest dropped even while they are held; needs `override`.
    #[serde(default)]
    pub allow_role_removals: bool,
    /// Who allows it and why (required with `allowRoleRemovals`).
    #[serde(default, rename = "override")]
    pub override_: Option<Override>,
}

/// A run that was started: its messages are on the queue (202 Accepted).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RunStarted {
    /// The run's id.
    pub run_id: String,
    /// Where to follow it (also in the `Location` header).
    pub location: String,
    /// The rosters (or, for app roles, the manifests) queued.
    pub queued: Vec<String>,
    /// Whether guards may be passed in this run.
    pub allow_removals: bool,
    /// Who allowed it and why, when they may.
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "override")]
    pub override_: Option<Override>,
    /// When it was asked for (RFC 3339, UTC).
    pub requested_at: String,
    /// The calling application's client id, from its token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_by: Option<String>,
}

/// What a roster's plan changes, counted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct Counts {
    /// People to invite.
    pub invite: usize,
    /// People to assign.
    pub assign: usize,
    /// Assignments to remove.
    pub remove: usize,
    /// People who already hold the package.
    pub unchanged: usize,
    /// Of those, assignments still being delivered.
    pub pending: usize,
    /// People left alone (an address two users share).
    pub skipped: usize,
}

/// Where a roster of a run stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum RosterState {
    /// Asked for; not planned yet.
    Queued,
    /// Planned; its changes are on their way (or there were none).
    Planned,
    /// Planned and held back by a guard or a missing policy: nothing changes.
    Blocked,
    /// Not planned: the roster or its package is in error; nothing changes.
    Invalid,
}

/// One roster in a run: its plan, counts, why it is blocked, and the people whose changes
/// failed for good (set aside in a poison queue).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RunRoster {
    /// The roster's path.
    pub roster: String,
    /// Where it stands.
    pub state: RosterState,
    /// The roster version planned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roster_version: Option<String>,
    /// The plan, as `POST /api/plan` shows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<enroll_core::plan::PackagePlan>)]
    pub plan: Option<serde_json::Value>,
    /// The plan's changes, counted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counts: Option<Counts>,
    /// Why nothing changes (`removal_guard`, `empty_roster`, ...), when blocked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocked: Option<String>,
    /// The reason, in a sentence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocked_message: Option<String>,
    /// Why the roster was not planned, when invalid.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(value_type = Vec<PlanError>)]
    pub errors: Vec<serde_json::Value>,
    /// Changes that failed for good, as audit records.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(value_type = Vec<enroll_core::audit::AuditRecord>)]
    pub failures: Vec<serde_json::Value>,
    /// The addresses of the people set aside in a poison queue.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub set_aside: Vec<String>,
}

/// One app role manifest in a run, with its report.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RunManifest {
    /// The manifest's name.
    pub manifest: String,
    /// Queued, or planned (the report is there).
    pub state: RosterState,
    /// The app role report (`enroll roles plan --format json`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub report: Option<serde_json::Value>,
}

/// `GET /api/runs/{id}`.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Run {
    /// The run's id.
    pub run_id: String,
    /// When it was asked for through the API.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_at: Option<String>,
    /// Its rosters, by path.
    pub rosters: Vec<RunRoster>,
    /// Its app role manifests, by name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub manifests: Vec<RunManifest>,
}

/// One access package's last run.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PackageStatus {
    /// The package.
    #[schema(value_type = enroll_core::plan::PackageRef)]
    pub access_package: serde_json::Value,
    /// Its roster.
    pub roster: String,
    /// The last run that planned it.
    pub run_id: String,
    /// The roster version planned then.
    pub roster_version: String,
    /// Planned or blocked.
    pub state: RosterState,
    /// What that plan changes.
    pub counts: Counts,
    /// Why it was blocked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocked: Option<String>,
}

/// A roster whose last run could not plan it.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RosterStatus {
    /// The roster.
    pub roster: String,
    /// The last run.
    pub run_id: String,
    /// Why it was not planned.
    #[schema(value_type = Vec<PlanError>)]
    pub errors: Vec<serde_json::Value>,
}

/// `GET /api/status`: per access package, the last run; and rosters whose last run failed.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    /// Packages by id.
    pub packages: Vec<PackageStatus>,
    /// Rosters that could not be planned in their last run.
    pub invalid_rosters: Vec<RosterStatus>,
}

/// What the API keeps of a run it started (`reports/runs/{id}.json`), so a run shows its
/// rosters before they are planned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RunRecord {
    pub run_id: String,
    pub requested_at: String,
    #[serde(default)]
    pub rosters: Vec<String>,
    #[serde(default)]
    pub manifests: Vec<String>,
}
