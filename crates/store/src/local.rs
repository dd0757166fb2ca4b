//! Reading rosters, snapshots and mapping files from the local file system (CLI adapter).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use enroll_core::plan::{Mapping, RosterSource};
use enroll_core::roster::{Limits, Roster, content_version, parse};
use enroll_core::tenant::TenantSnapshot;

/// The mapping file looked for in a rosters folder when none is named.
pub const DEFAULT_MAPPING_FILE: &str = "access-packages.json";

/// A file-system problem, with the path it is about.
#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    /// A file or folder could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The path.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// A JSON file is not what it should be.
    #[error("{path} is not a valid {what}: {source}")]
    Json {
        /// The path.
        path: PathBuf,
        /// What the file should be.
        what: &'static str,
        /// The cause, with line and column.
        source: serde_json::Error,
    },
}

fn read(path: &Path) -> Result<Vec<u8>, LocalError> {
    fs::read(path).map_err(|source| LocalError::Read {
        path: path.to_owned(),
        source,
    })
}

fn is_csv(path: &Path) -> bool {
    path.file_name()
        .and_then(|name| name.to_str())
        .is_some_and(enroll_core::roster::is_roster_name)
}

/// Every `*.csv` file at or below `path` (a file is taken as it is), sorted.
///
/// # Errors
/// [`LocalError::Read`] when the path or a folder below it cannot be read.
pub fn find_csv_files(path: &Path) -> Result<Vec<PathBuf>, LocalError> {
    let metadata = fs::metadata(path).map_err(|source| LocalError::Read {
        path: path.to_owned(),
        source,
    })?;
    if !metadata.is_dir() {
        return Ok(vec![path.to_owned()]);
    }
    let mut found = Vec::new();
    let mut folders = vec![path.to_owned()];
    while let Some(folder) = folders.pop() {
        let entries = fs::read_dir(&folder).map_err(|source| LocalError::Read {
            path: folder.clone(),
            source,
        })?;
        for entry in entries {
            let entry = entry.map_err(|source| LocalError::Read {
                path: folder.clone(),
                source,
            })?;
            let path = entry.path();
            let is_dir = entry.file_type().is_ok_and(|kind| kind.is_dir());
            if is_dir {
                folders.push(path);
            } else if is_csv(&path) {
                found.push(path);
            }
        }
    }
    found.sort();
    Ok(found)
}

/// `path` relative to `root`, `/`-separated; a single-file root gives the file name.
pub fn relative_name(root: &Path, path: &Path) -> String {
    let relative = path
        .strip_prefix(root)
        .ok()
        .filter(|r| !r.as_os_str().is_empty());
    let relative = relative.unwrap_or_else(|| Path::new(path.file_name().unwrap_or_default()));
    relative
        .components()
        .map(|part| part.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

/// Reads and parses one roster file, naming it `name` in every message.
///
/// # Errors
/// [`LocalError::Read`] when the file cannot be read.
pub fn read_roster(
    path: &Path,
    name: &str,
    limits: Limits,
) -> Result<(Roster, String), LocalError> {
    let bytes = read(path)?;
    Ok((parse(name, &bytes, limits), content_version(&bytes)))
}

/// Reads every roster below `root`, named relative to it.
///
/// # Errors
/// [`LocalError::Read`] when a file or folder cannot be read.
pub fn read_rosters(root: &Path, limits: Limits) -> Result<Vec<RosterSource>, LocalError> {
    find_csv_files(root)?
        .into_iter()
        .map(|path| {
            let name = relative_name(root, &path);
            let (roster, version) = read_roster(&path, &name, limits)?;
            Ok(RosterSource {
                path: name,
                version,
                roster,
            })
        })
        .collect()
}

/// Reads a tenant snapshot (JSON in Graph's shapes).
///
/// # Errors
/// [`LocalError`] when the file cannot be read or is not a snapshot.
pub fn read_snapshot(path: &Path) -> Result<TenantSnapshot, LocalError> {
    let bytes = read(path)?;
    serde_json::from_slice(&bytes).map_err(|source| LocalError::Json {
        path: path.to_owned(),
        what: "tenant snapshot",
        source,
    })
}

/// Reads the mapping file: the one named, else `access-packages.json` in the rosters folder, else none.
///
/// # Errors
/// [`LocalError`] when a named or found file cannot be read or is not a mapping.
pub fn read_mapping(named: Option<&Path>, rosters: &Path) -> Result<Mapping, LocalError> {
    let found = rosters.join(DEFAULT_MAPPING_FILE);
    let path = match named {
        Some(path) => path,
        None if found.is_file() => found.as_path(),
        None => return Ok(Mapping::default()),
    };
    let bytes = read(path)?;
    serde_json::from_slice(&bytes).map_err(|source| LocalError::Json {
        path: path.to_owned(),
        what: "mapping file (expected {\"accessPackages\": {roster: id}, \"assignmentPolicies\": {package id: policy id}})",
        source,
    })
}

/// Rosters from a local folder, reports and the audit trail into another: the storage of
/// `enroll apply`.
#[derive(Debug, Clone)]
pub struct LocalStorage {
    rosters: PathBuf,
    reports: PathBuf,
    /// App role manifests: a folder of `*.json`, or one manifest file.
    manifests: Option<PathBuf>,
    /// A mapping file named explicitly for a single manifest (else `{stem}.mapping.json`).
    manifest_mapping: Option<PathBuf>,
    audit: std::sync::Arc<std::sync::Mutex<()>>,
}

impl LocalStorage {
    /// Reads rosters below `rosters`; writes reports under `reports/{run id}/` and the audit
    /// trail to `reports/audit.jsonl`.
    pub fn new(rosters: impl Into<PathBuf>, reports: impl Into<PathBuf>) -> Self {
        Self {
            rosters: rosters.into(),
            reports: reports.into(),
            manifests: None,
            manifest_mapping: None,
            audit: std::sync::Arc::default(),
        }
    }

    /// Reads app role manifests from `manifests`: a folder (every `*.json` in it that is not
    /// a `*.mapping.json`) or one manifest file. `mapping` names the mapping file of a single
    /// manifest; without it, `{stem}.mapping.json` beside the manifest is used if present.
    pub fn with_manifests(
        mut self,
        manifests: impl Into<PathBuf>,
        mapping: Option<PathBuf>,
    ) -> Self {
        self.manifests = Some(manifests.into());
        self.manifest_mapping = mapping;
        self
    }

    /// The audit trail file.
    pub fn audit_path(&self) -> PathBuf {
        self.reports.join("audit.jsonl")
    }

    /// Where a run's report for a roster goes (without extension: `.json` and `.md` are appended).
    pub fn report_path(&self, run_id: &str, roster: &str) -> PathBuf {
        self.reports
            .join(run_id)
            .join(enroll_core::report::report_name(roster))
    }

    /// One file of a run's report for a roster: [`LocalStorage::report_path`] with
    /// `extension` appended. Appended, not `with_extension`: a name with a dot (`crm.v2`)
    /// must keep it, or `crm.v1.csv` and `crm.v2.csv` would share their files.
    pub fn report_file(&self, run_id: &str, roster: &str, extension: &str) -> PathBuf {
        let mut name = self.report_path(run_id, roster).into_os_string();
        name.push(extension);
        PathBuf::from(name)
    }
}

fn storage_error(what: String, error: &io::Error) -> crate::StorageError {
    crate::StorageError {
        message: format!("{what}: {error}"),
        retryable: matches!(
            error.kind(),
            io::ErrorKind::Interrupted | io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
        ),
    }
}

impl crate::Storage for LocalStorage {
    async fn roster(&self, name: &str) -> Result<Option<crate::StoredRoster>, crate::StorageError> {
        if name.split('/').any(|part| part == "..") {
            return Ok(None);
        }
        let path = self.rosters.join(name);
        if self.rosters.is_file() && relative_name(&self.rosters, &self.rosters) == name {
            return self.read_roster_file(&self.rosters).map(Some);
        }
        match fs::metadata(&path) {
            Ok(meta) if meta.is_file() => self.read_roster_file(&path).map(Some),
            Ok(_) => Ok(None),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(storage_error(
                format!("cannot read {}", path.display()),
                &error,
            )),
        }
    }

    async fn roster_names(&self) -> Result<Vec<String>, crate::StorageError> {
        let files = find_csv_files(&self.rosters).map_err(|error| crate::StorageError {
            message: error.to_string(),
            retryable: false,
        })?;
        Ok(files
            .iter()
            .map(|path| relative_name(&self.rosters, path))
            .collect())
    }

    async fn manifest(
        &self,
        name: &str,
    ) -> Result<Option<crate::StoredRoster>, crate::StorageError> {
        let Some(root) = &self.manifests else {
            return Ok(None);
        };
        if name.split(['/', '\\']).any(|part| part == "..") {
            return Ok(None);
        }
        if !root.is_file() {
            return read_optional(&root.join(name));
        }
        let file_name = root
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if name == file_name {
            read_optional(root)
        } else if name == enroll_core::roles::mapping_name_for(&file_name) {
            match &self.manifest_mapping {
                Some(mapping) => read_optional(mapping),
                None => read_optional(&root.with_file_name(name)),
            }
        } else {
            Ok(None)
        }
    }

    async fn manifest_names(&self) -> Result<Vec<String>, crate::StorageError> {
        let Some(root) = &self.manifests else {
            return Ok(Vec::new());
        };
        if root.is_file() {
            return Ok(root
                .file_name()
                .map(|n| vec![n.to_string_lossy().into_owned()])
                .unwrap_or_default());
        }
        let entries = match fs::read_dir(root) {
            Ok(entries) => entries,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(error) => {
                return Err(storage_error(
                    format!("cannot read {}", root.display()),
                    &error,
                ));
            }
        };
        let mut names: Vec<String> = entries
            .filter_map(Result::ok)
            .filter(|entry| entry.file_type().is_ok_and(|kind| kind.is_file()))
            .map(|entry| entry.file_name().to_string_lossy().into_owned())
            .filter(|name| enroll_core::roles::is_manifest_name(name))
            .collect();
        names.sort();
        Ok(names)
    }

    async fn mapping(&self) -> Result<Option<Vec<u8>>, crate::StorageError> {
        let path = if self.rosters.is_dir() {
            self.rosters.join(DEFAULT_MAPPING_FILE)
        } else {
            return Ok(None);
        };
        match fs::read(&path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(storage_error(
                format!("cannot read {}", path.display()),
                &error,
            )),
        }
    }

    async fn put_report(
        &self,
        run_id: &str,
        roster: &str,
        json: &[u8],
        markdown: &str,
    ) -> Result<(), crate::StorageError> {
        let write = |path: PathBuf, bytes: &[u8]| {
            if let Some(parent) = path.parent() {
                fs::create_dir_all(parent).map_err(|error| {
                    storage_error(format!("cannot create {}", parent.display()), &error)
                })?;
            }
            fs::write(&path, bytes)
                .map_err(|error| storage_error(format!("cannot write {}", path.display()), &error))
        };
        write(self.report_file(run_id, roster, ".json"), json)?;
        write(self.report_file(run_id, roster, ".md"), markdown.as_bytes())
    }

    async fn append_audit(
        &self,
        records: &[enroll_core::audit::AuditRecord],
    ) -> Result<(), crate::StorageError> {
        use std::io::Write as _;
        if records.is_empty() {
            return Ok(());
        }
        let mut lines = String::new();
        for record in records {
            lines.push_str(&serde_json::to_string(record).unwrap_or_default());
            lines.push('\n');
        }
        let path = self.audit_path();
        let _one_writer = self
            .audit
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        fs::create_dir_all(&self.reports).map_err(|error| {
            storage_error(format!("cannot create {}", self.reports.display()), &error)
        })?;
        fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .and_then(|mut file| file.write_all(lines.as_bytes()))
            .map_err(|error| storage_error(format!("cannot append to {}", path.display()), &error))
    }

    async fn append_failures(
        &self,
        run_id: &str,
        roster: &str,
        jsonl: &str,
        markdown: &str,
    ) -> Result<(), crate::StorageError> {
        use std::io::Write as _;
        let _one_writer = self
            .audit
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        for (extension, text) in [(".failures.jsonl", jsonl), (".failures.md", markdown)] {
            let path = self.report_file(run_id, roster, extension);
            if let Some(parent) = path.parent() {
                fs::create_dir_all(parent).map_err(|error| {
                    storage_error(format!("cannot create {}", parent.display()), &error)
                })?;
            }
            fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .and_then(|mut file| file.write_all(text.as_bytes()))
                .map_err(|error| {
                    storage_error(format!("cannot append to {}", path.display()), &error)
                })?;
        }
        Ok(())
    }
}

/// A file's bytes and content version, or `None` when it does not exist.
fn read_optional(path: &Path) -> Result<Option<crate::StoredRoster>, crate::StorageError> {
    match fs::read(path) {
        Ok(bytes) => {
            let etag = content_version(&bytes);
            Ok(Some(crate::StoredRoster { bytes, etag }))
        }
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(storage_error(
            format!("cannot read {}", path.display()),
            &error,
        )),
    }
}

impl LocalStorage {
    fn read_roster_file(&self, path: &Path) -> Result<crate::StoredRoster, crate::StorageError> {
        let bytes = fs::read(path)
            .map_err(|error| storage_error(format!("cannot read {}", path.display()), &error))?;
        let etag = content_version(&bytes);
        Ok(crate::StoredRoster { bytes, etag })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::Storage as _;

    #[tokio::test]
    async fn rosters_whose_names_differ_after_a_dot_keep_their_own_report_files() {
        let dir = tempfile::tempdir().unwrap();
        let storage = LocalStorage::new(dir.path().join("rosters"), dir.path().join("reports"));
        for roster in ["crm.v1.csv", "crm.v2.csv"] {
            storage
                .put_report("run", roster, b"{}", &format!("# {roster}\n"))
                .await
                .unwrap();
            storage
                .append_failures("run", roster, "{}\n", &format!("- {roster}\n"))
                .await
                .unwrap();
        }
        let mut files: Vec<String> = fs::read_dir(dir.path().join("reports/run"))
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        files.sort();
        assert_eq!(
            files,
            [
                "crm.v1.failures.jsonl",
                "crm.v1.failures.md",
                "crm.v1.json",
                "crm.v1.md",
                "crm.v2.failures.jsonl",
                "crm.v2.failures.md",
                "crm.v2.json",
                "crm.v2.md",
            ]
        );
        let v2 =
            fs::read_to_string(storage.report_file("run", "crm.v2.csv", ".failures.md")).unwrap();
        assert_eq!(v2, "- crm.v2.csv\n");
    }
}
