//! What the steps need from storage: rosters and manifests with their versions, and a place
//! for reports, failures and the audit trail. A trait, so that the Functions app (blob
//! storage, [`crate::Store`]) and `enroll apply` (a local folder, [`crate::local::LocalStorage`])
//! run the same steps.

use std::future::Future;

use enroll_core::audit::AuditRecord;

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
    /// for machines and `{report}.failures.md` for people (see [`enroll_core::report::failure_lines`]).
    fn append_failures(
        &self,
        run_id: &str,
        roster: &str,
        jsonl: &str,
        markdown: &str,
    ) -> impl Future<Output = Result<(), StorageError>> + Send;
}
