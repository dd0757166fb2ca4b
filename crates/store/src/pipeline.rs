//! The steps' storage in Azure Storage: rosters in the rosters container, app role manifests
//! (and their `*.mapping.json`) in the manifests container, reports under
//! `reports/{run id}/`, and the audit trail in one append blob per day
//! (`audit/{yyyy-mm-dd}.jsonl`, well below an append blob's 50,000 blocks).

use super::{Store, StoreError};
use crate::{StorageError, StoredRoster};
use enroll_core::audit::AuditRecord;

/// The mapping file beside the rosters (not a roster: the blob trigger ignores non-CSV).
pub const MAPPING_BLOB: &str = crate::local::DEFAULT_MAPPING_FILE;

fn storage_error(error: &StoreError) -> StorageError {
    StorageError {
        message: error.to_string(),
        retryable: error.is_retryable(),
    }
}

pub use enroll_core::report::report_name;

impl Store {
    /// Puts a message on queue `{queue prefix}{queue}` that becomes visible only after
    /// `delay` (whole seconds; Azure Storage allows at most 7 days), creating the queue if it
    /// does not exist yet. Output bindings cannot delay a message, so the Plan function
    /// sends the Remove messages of an undo window this way.
    ///
    /// # Errors
    /// [`StorageError`] when the message cannot be stored, with whether a retry can help.
    pub async fn send_later(
        &self,
        queue: &str,
        text: &str,
        delay: std::time::Duration,
    ) -> Result<(), StorageError> {
        let queue = format!("{}{queue}", self.layout().queue_prefix);
        match self.send_message(&queue, text, Some(delay)).await {
            Ok(_) => Ok(()),
            Err(StoreError::NotFound { .. }) => {
                self.ensure_queue(&queue)
                    .await
                    .map_err(|error| storage_error(&error))?;
                self.send_message(&queue, text, Some(delay))
                    .await
                    .map(|_| ())
                    .map_err(|error| storage_error(&error))
            }
            Err(error) => Err(storage_error(&error)),
        }
    }
}

impl crate::Storage for Store {
    async fn roster(&self, name: &str) -> Result<Option<StoredRoster>, StorageError> {
        match self.get_roster_cached(name).await {
            Ok(blob) => Ok(Some(StoredRoster {
                bytes: blob.bytes,
                etag: blob.etag.as_str().to_owned(),
            })),
            Err(StoreError::NotFound { .. }) => Ok(None),
            Err(error) => Err(storage_error(&error)),
        }
    }

    async fn roster_names(&self) -> Result<Vec<String>, StorageError> {
        match self.list_rosters("").await {
            Ok(entries) => Ok(entries
                .into_iter()
                .map(|entry| entry.name)
                .filter(|name| enroll_core::roster::is_roster_name(name))
                .collect()),
            Err(StoreError::NotFound { .. }) => Ok(Vec::new()),
            Err(error) => Err(storage_error(&error)),
        }
    }

    async fn manifest(&self, name: &str) -> Result<Option<StoredRoster>, StorageError> {
        match self.get_file(&self.layout().manifests, name).await {
            Ok(blob) => Ok(Some(StoredRoster {
                bytes: blob.bytes,
                etag: blob.etag.as_str().to_owned(),
            })),
            Err(StoreError::NotFound { .. }) => Ok(None),
            Err(error) => Err(storage_error(&error)),
        }
    }

    async fn manifest_names(&self) -> Result<Vec<String>, StorageError> {
        match self.list_blobs(&self.layout().manifests, "").await {
            Ok(entries) => Ok(entries
                .into_iter()
                .map(|entry| entry.name)
                .filter(|name| enroll_core::roles::is_manifest_name(name))
                .collect()),
            Err(StoreError::NotFound { .. }) => Ok(Vec::new()),
            Err(error) => Err(storage_error(&error)),
        }
    }

    async fn mapping(&self) -> Result<Option<Vec<u8>>, StorageError> {
        match self.get_file(&self.layout().rosters, MAPPING_BLOB).await {
            Ok(blob) => Ok(Some(blob.bytes)),
            Err(StoreError::NotFound { .. }) => Ok(None),
            Err(error) => Err(storage_error(&error)),
        }
    }

    async fn put_report(
        &self,
        run_id: &str,
        roster: &str,
        json: &[u8],
        markdown: &str,
    ) -> Result<(), StorageError> {
        Store::put_report(
            self,
            run_id,
            &report_name(roster),
            json.to_vec(),
            markdown.to_owned(),
        )
        .await
        .map(|_| ())
        .map_err(|error| storage_error(&error))
    }

    async fn append_audit(&self, records: &[AuditRecord]) -> Result<(), StorageError> {
        let Some(first) = records.first() else {
            return Ok(());
        };
        let day = first.time.get(..10).unwrap_or("undated");
        Store::append_audit(self, &format!("{day}.jsonl"), records)
            .await
            .map_err(|error| storage_error(&error))
    }

    async fn append_failures(
        &self,
        run_id: &str,
        roster: &str,
        jsonl: &str,
        markdown: &str,
    ) -> Result<(), StorageError> {
        let name = report_name(roster);
        for (file, text, kind) in [
            (
                format!("{name}.failures.jsonl"),
                jsonl,
                "application/x-ndjson",
            ),
            (format!("{name}.failures.md"), markdown, "text/markdown"),
        ] {
            self.append_report_lines(run_id, &file, text, kind)
                .await
                .map_err(|error| storage_error(&error))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_names_are_one_path_segment() {
        assert_eq!(report_name("Projects/Key Users.csv"), "Projects__Key Users");
        assert_eq!(report_name("Read Only.CSV"), "Read Only");
    }
}
