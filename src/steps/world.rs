//! What a step needs from the world: Graph, storage for rosters, reports and audit, and
//! settings. Storage is a trait so that the Functions app (blob storage) and `enroll apply`
//! (local folders) run the same steps.

use std::future::Future;
use std::time::SystemTime;

use crate::graph::GraphClient;
use crate::plan::{Guards, InviteDomains, Mapping};
use crate::roster::Limits;

use super::audit::AuditRecord;

/// A roster path as one report file name: `Catalog/Key Users.csv` → `Catalog__Key Users`.
pub fn report_name(roster: &str) -> String {
    let stem = roster
        .strip_suffix(".csv")
        .or_else(|| roster.strip_suffix(".CSV"))
        .unwrap_or(roster);
    stem.replace('/', "__")
}

/// A roster (or manifest) as stored, with its version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRoster {
    /// The file's bytes.
    pub bytes: Vec<u8>,
    /// Its version: a blob's ETag, or a content hash.
    pub etag: String,
}

/// A storage failure, with whether trying again can help.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct StorageError {
    /// What failed, naming the container, blob or file.
    pub message: String,
    /// Whether a retry can help (timeouts, throttling, 5xx).
    pub retryable: bool,
}

/// Where rosters come from and where reports and audit records go.
pub trait Storage: Send + Sync {
    /// One roster by name (`Catalog/Package.csv`); `None` when it no longer exists.
    fn roster(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<Option<StoredRoster>, StorageError>> + Send;

    /// The names of every roster (`*.csv`).
    fn roster_names(&self) -> impl Future<Output = Result<Vec<String>, StorageError>> + Send;

    /// One file of the app role manifests (a manifest, or a manifest's `*.mapping.json`);
    /// `None` when it does not exist.
    fn manifest(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<Option<StoredRoster>, StorageError>> + Send;

    /// The names of every app role manifest (`*.json`, not `*.mapping.json`).
    fn manifest_names(&self) -> impl Future<Output = Result<Vec<String>, StorageError>> + Send;

    /// The mapping file (`access-packages.json` beside the rosters), if there is one.
    fn mapping(&self) -> impl Future<Output = Result<Option<Vec<u8>>, StorageError>> + Send;

    /// Stores a run's report for one roster, as JSON for machines and Markdown for people.
    fn put_report(
        &self,
        run_id: &str,
        roster: &str,
        json: &[u8],
        markdown: &str,
    ) -> impl Future<Output = Result<(), StorageError>> + Send;

    /// Appends audit records (one JSON line each) to the audit trail.
    fn append_audit(
        &self,
        records: &[AuditRecord],
    ) -> impl Future<Output = Result<(), StorageError>> + Send;

    /// Adds failures to a run's report for a roster, as they happen: `{report}.failures.jsonl`
    /// for machines and `{report}.failures.md` for people (see [`failure_lines`]).
    fn append_failures(
        &self,
        run_id: &str,
        roster: &str,
        jsonl: &str,
        markdown: &str,
    ) -> impl Future<Output = Result<(), StorageError>> + Send;
}

/// The failed records as report lines: JSON lines, and Markdown list items.
pub fn failure_lines(records: &[&AuditRecord]) -> (String, String) {
    let mut jsonl = String::new();
    let mut markdown = String::new();
    for record in records {
        jsonl.push_str(&serde_json::to_string(record).unwrap_or_default());
        jsonl.push('\n');
        let action = serde_json::to_value(record.action).unwrap_or_default();
        markdown.push_str(&format!(
            "- {} {} `{}`: {}\n",
            record.time,
            action.as_str().unwrap_or_default(),
            record.email.as_deref().unwrap_or("-"),
            record
                .detail
                .as_deref()
                .unwrap_or_default()
                .replace('\n', " ")
        ));
    }
    (jsonl, markdown)
}

/// Settings for the steps.
#[derive(Debug, Clone)]
pub struct StepConfig {
    /// Removal guard and empty-roster rule.
    pub guards: Guards,
    /// The catalog searched for rosters that do not name one by folder (display name or id).
    pub catalog: Option<String>,
    /// Domains invitations may go to.
    pub invite_domains: InviteDomains,
    /// Where invited guests land after redeeming.
    pub invite_redirect_url: String,
    /// Whether Microsoft e-mails the invitation.
    pub send_invitation_message: bool,
    /// Roster size limits.
    pub limits: Limits,
    /// Tries a queue message gets before it is moved to the poison queue (host.json).
    pub max_dequeue_count: u32,
    /// Who the audit trail names as acting (the app's identity).
    pub actor: String,
    /// The application (client id) whose app roles a manifest without `appId` is for.
    pub app_id: Option<String>,
    /// The group naming convention for app roles (`{value}` is the role's value).
    pub group_pattern: String,
}

impl Default for StepConfig {
    fn default() -> Self {
        Self {
            guards: Guards::default(),
            catalog: None,
            invite_domains: InviteDomains::Any,
            invite_redirect_url: "https://myapps.microsoft.com".into(),
            send_invitation_message: false,
            limits: Limits::default(),
            max_dequeue_count: 5,
            actor: "enroll".into(),
            app_id: None,
            group_pattern: crate::roles::DEFAULT_GROUP_PATTERN.into(),
        }
    }
}

/// Access packages (with policies) of a catalog, and the catalog, as last read.
pub(crate) type CachedPackages = (
    std::time::Instant,
    Vec<crate::tenant::AccessPackage>,
    Vec<crate::tenant::Catalog>,
);

/// How long the access packages of a catalog are reused before they are read again. Plans
/// of many rosters in one run then read them once; a new package or policy is seen within
/// this time.
pub const PACKAGE_CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(60);

/// Everything a step acts on.
pub struct World<S> {
    /// The tenant.
    pub graph: GraphClient,
    /// Rosters, reports, audit.
    pub storage: S,
    /// Settings.
    pub config: StepConfig,
    /// The clock (a parameter, so tests and replays control time).
    pub now: fn() -> SystemTime,
    /// Access packages per catalog name, read at most every [`PACKAGE_CACHE_TTL`].
    pub(crate) packages:
        tokio::sync::Mutex<std::collections::HashMap<Option<String>, CachedPackages>>,
}

impl<S> World<S> {
    /// The world with the system clock.
    pub fn new(graph: GraphClient, storage: S, config: StepConfig) -> Self {
        Self {
            graph,
            storage,
            config,
            now: SystemTime::now,
            packages: tokio::sync::Mutex::default(),
        }
    }

    /// The plan options the steps use (mapping read from storage by the caller).
    pub fn plan_options(&self, mapping: Mapping) -> crate::plan::PlanOptions {
        crate::plan::PlanOptions {
            guards: self.config.guards,
            mapping,
            catalog: self.config.catalog.clone(),
            invite_domains: self.config.invite_domains.clone(),
        }
    }
}
