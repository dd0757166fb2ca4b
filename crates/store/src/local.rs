//! Reading rosters, snapshots and mapping files from the local file system (CLI adapter).
//!
//! **Only regular files are read.** A roster, mapping file or manifest must be a regular
//! file: a symbolic link, FIFO, socket, device or folder is an error that names it, found
//! from its metadata before anything is opened (and checked again on the opened handle).
//! Links are not followed at all below the folder enroll reads, not even to a file beside
//! them: blob storage has no links, Git on Windows checks them out as text files, and a link
//! is how a pull request could make CI read a file from outside the folder. The folder you
//! name (or the file, for a folder you name by a file) may itself be reached through a link.
//! A file over the limit ([`MAX_FILE_BYTES`]) is refused by its size before it is read,
//! and reading stops one byte past the limit if it grows meanwhile.

use std::fs;
use std::io::{self, Read as _};
use std::path::{Path, PathBuf};

use enroll_core::escape::json_error;
use enroll_core::plan::{Mapping, RosterSource};
use enroll_core::roster::{Limits, MAX_FILE_BYTES, Roster, content_version, parse, too_large};
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
    /// A JSON file is not what it should be. The message quotes at most a clip of any
    /// value, so that it never echoes the file.
    #[error("{path} is not a valid {what}: {}", json_error(.source))]
    Json {
        /// The path.
        path: PathBuf,
        /// What the file should be.
        what: &'static str,
        /// The cause, with line and column.
        source: serde_json::Error,
    },
    /// Not a regular file: a folder, FIFO, socket or device.
    #[error(
        "{path} is {kind}, not a regular file; enroll reads rosters, mapping files and manifests only from regular files"
    )]
    NotRegular {
        /// The path.
        path: PathBuf,
        /// What it is instead, e.g. `a FIFO (named pipe)`.
        kind: &'static str,
    },
    /// A symbolic link where enroll reads files: links are never followed there.
    #[error(
        "{path} is a symbolic link; enroll does not follow links inside the folders it reads, so that no file can lead out of them: put the file itself there"
    )]
    Symlink {
        /// The path.
        path: PathBuf,
    },
    /// Over the size limit.
    #[error("{path} {}; enroll reads files of at most {limit} bytes", match .size {
        Some(size) => format!("is {size} bytes"),
        None => "grew past the limit while it was read".to_owned(),
    })]
    TooLarge {
        /// The path.
        path: PathBuf,
        /// Its size before reading; `None` when it grew past the limit while being read.
        size: Option<u64>,
        /// The limit, in bytes.
        limit: u64,
    },
}

impl LocalError {
    fn read(path: &Path) -> impl FnOnce(io::Error) -> Self {
        let path = path.to_owned();
        move |source| LocalError::Read { path, source }
    }

    /// Whether the file was simply not there (or its folder is a file).
    fn is_not_found(&self) -> bool {
        matches!(self, LocalError::Read { source, .. }
            if matches!(source.kind(), io::ErrorKind::NotFound | io::ErrorKind::NotADirectory))
    }
}

/// What a file of a given type is, in words, for [`LocalError::NotRegular`].
fn kind_name(kind: fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt as _;
        if kind.is_fifo() {
            return "a FIFO (named pipe)";
        }
        if kind.is_socket() {
            return "a socket";
        }
        if kind.is_char_device() {
            return "a character device";
        }
        if kind.is_block_device() {
            return "a block device";
        }
    }
    if kind.is_dir() {
        "a folder"
    } else {
        "not a file"
    }
}

/// `Ok` for a regular file; the error that names what else it is otherwise.
fn check_regular(path: &Path, kind: fs::FileType) -> Result<(), LocalError> {
    if kind.is_file() {
        Ok(())
    } else if kind.is_symlink() {
        Err(LocalError::Symlink {
            path: path.to_owned(),
        })
    } else {
        Err(LocalError::NotRegular {
            path: path.to_owned(),
            kind: kind_name(kind),
        })
    }
}

/// Opens a file for reading without ever waiting: a FIFO swapped in after the checks
/// would otherwise block the open until a writer comes, and a link swapped in is refused.
fn open_for_reading(path: &Path) -> io::Result<fs::File> {
    let mut options = fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW);
    }
    options.open(path)
}

/// Reads a regular file of at most `limit` bytes: a link, FIFO, socket, device or folder
/// is refused from its metadata before it is opened, a larger file from its size before
/// it is read, and reading stops one byte past the limit if the file grows meanwhile.
///
/// # Errors
/// [`LocalError::Symlink`], [`LocalError::NotRegular`], [`LocalError::TooLarge`], and
/// [`LocalError::Read`] when the file cannot be read (`NotFound` when it does not exist).
pub fn read_file(path: &Path, limit: usize) -> Result<Vec<u8>, LocalError> {
    let limit = limit as u64;
    let too_large = |size| LocalError::TooLarge {
        path: path.to_owned(),
        size,
        limit,
    };
    let metadata = fs::symlink_metadata(path).map_err(LocalError::read(path))?;
    check_regular(path, metadata.file_type())?;
    if metadata.len() > limit {
        return Err(too_large(Some(metadata.len())));
    }
    let file = open_for_reading(path).map_err(LocalError::read(path))?;
    // The handle's own metadata: what was opened, whatever the path names by now.
    let opened = file.metadata().map_err(LocalError::read(path))?;
    check_regular(path, opened.file_type())?;
    if opened.len() > limit {
        return Err(too_large(Some(opened.len())));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(opened.len()).unwrap_or_default());
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(LocalError::read(path))?;
    if bytes.len() as u64 > limit {
        return Err(too_large(None));
    }
    Ok(bytes)
}

/// `folder/name` for a `/`-separated name, when no part of it leaves the folder: no `..`,
/// no empty or absolute part, and no folder on the way that is a symbolic link. The last
/// part is left to [`read_file`], which refuses a link there too.
fn inside(folder: &Path, name: &str) -> Result<Option<PathBuf>, LocalError> {
    let parts: Vec<&str> = name.split('/').collect();
    if parts.iter().any(|part| matches!(*part, "" | "." | "..")) {
        return Ok(None);
    }
    let mut path = folder.to_owned();
    for (index, part) in parts.iter().enumerate() {
        path.push(part);
        if index + 1 == parts.len() {
            break;
        }
        match fs::symlink_metadata(&path) {
            Ok(metadata) if metadata.file_type().is_symlink() => {
                return Err(LocalError::Symlink { path });
            }
            Ok(_) => {}
            Err(error) => return Err(LocalError::read(&path)(error)),
        }
    }
    Ok(Some(path))
}

/// What to do with one entry of a folder enroll searches.
enum Entry {
    /// A regular file with a wanted name: read it.
    File,
    /// A real folder: search it (if the search goes down).
    Folder,
    /// Anything else with a name enroll does not read: leave it alone.
    Skip,
}

/// Sorts one folder entry. An entry with a `wanted` name must be a regular file; a link
/// that leads to a folder is refused too when `descend`, because the search would have
/// gone down it.
fn classify(
    path: &Path,
    kind: fs::FileType,
    wanted: bool,
    descend: bool,
) -> Result<Entry, LocalError> {
    if kind.is_file() {
        return Ok(if wanted { Entry::File } else { Entry::Skip });
    }
    if kind.is_dir() && !wanted {
        return Ok(Entry::Folder);
    }
    let link_to_folder =
        descend && kind.is_symlink() && fs::metadata(path).is_ok_and(|m| m.is_dir());
    if wanted || link_to_folder {
        check_regular(path, kind)?;
    }
    Ok(Entry::Skip)
}

fn is_csv(path: &Path) -> bool {
    path.file_name()
        .and_then(|name| name.to_str())
        .is_some_and(enroll_core::roster::is_roster_name)
}

/// Every `*.csv` file at or below `path` (a file is taken as it is), sorted.
///
/// # Errors
/// [`LocalError::Read`] when the path or a folder below it cannot be read;
/// [`LocalError::Symlink`] and [`LocalError::NotRegular`] for a `*.csv` below it that is
/// not a regular file, or a link to a folder.
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
            let kind = entry.file_type().map_err(LocalError::read(&path))?;
            match classify(&path, kind, is_csv(&path), true)? {
                Entry::File => found.push(path),
                Entry::Folder => folders.push(path),
                Entry::Skip => {}
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

/// Reads and parses one roster file, naming it `name` in every message. A file over the
/// limit is a roster with `too_large` (and no version), not an error.
///
/// # Errors
/// [`LocalError`] when the file cannot be read or is not a regular file.
pub fn read_roster(
    path: &Path,
    name: &str,
    limits: Limits,
) -> Result<(Roster, String), LocalError> {
    match read_file(path, limits.max_bytes) {
        Ok(bytes) => Ok((parse(name, &bytes, limits), content_version(&bytes))),
        Err(LocalError::TooLarge { size, .. }) => {
            Ok((too_large(name, size, limits), String::new()))
        }
        Err(error) => Err(error),
    }
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
    let bytes = fs::read(path).map_err(LocalError::read(path))?;
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
    let path = named.unwrap_or(&found);
    let bytes = match read_file(path, MAX_FILE_BYTES) {
        Ok(bytes) => bytes,
        Err(error) if named.is_none() && error.is_not_found() => return Ok(Mapping::default()),
        Err(error) => return Err(error),
    };
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

/// A [`LocalError`] for the steps: retryable only when the file system said so.
fn local_storage_error(error: LocalError) -> crate::StorageError {
    let retryable = matches!(&error, LocalError::Read { source, .. } if matches!(
        source.kind(),
        io::ErrorKind::Interrupted | io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
    ));
    crate::StorageError {
        message: error.to_string(),
        retryable,
    }
}

/// A file's bytes and content version; `None` when it does not exist.
fn read_stored(path: &Path) -> Result<Option<crate::StoredRoster>, crate::StorageError> {
    match read_file(path, MAX_FILE_BYTES) {
        Ok(bytes) => {
            let etag = content_version(&bytes);
            Ok(Some(crate::StoredRoster { bytes, etag }))
        }
        Err(error) if error.is_not_found() => Ok(None),
        Err(error) => Err(local_storage_error(error)),
    }
}

/// [`read_stored`] for `folder/name`, where `name` may not lead out of `folder`.
fn read_stored_inside(
    folder: &Path,
    name: &str,
) -> Result<Option<crate::StoredRoster>, crate::StorageError> {
    match inside(folder, name) {
        Ok(Some(path)) => read_stored(&path),
        Ok(None) => Ok(None),
        Err(error) if error.is_not_found() => Ok(None),
        Err(error) => Err(local_storage_error(error)),
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
        if !self.rosters.is_dir() {
            // One roster file named on the command line: only its own name finds it.
            return if relative_name(&self.rosters, &self.rosters) == name {
                read_stored(&self.rosters)
            } else {
                Ok(None)
            };
        }
        read_stored_inside(&self.rosters, name)
    }

    async fn roster_names(&self) -> Result<Vec<String>, crate::StorageError> {
        let files = find_csv_files(&self.rosters).map_err(local_storage_error)?;
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
        if name.contains('\\') {
            return Ok(None);
        }
        if root.is_dir() {
            return read_stored_inside(root, name);
        }
        let file_name = root
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if name == file_name {
            read_stored(root)
        } else if name == enroll_core::roles::mapping_name_for(&file_name) {
            match &self.manifest_mapping {
                Some(mapping) => read_stored(mapping),
                None => read_stored(&root.with_file_name(name)),
            }
        } else {
            Ok(None)
        }
    }

    async fn manifest_names(&self) -> Result<Vec<String>, crate::StorageError> {
        let Some(root) = &self.manifests else {
            return Ok(Vec::new());
        };
        if !root.is_dir() {
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
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|error| {
                storage_error(format!("cannot read {}", root.display()), &error)
            })?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = entry.path();
            let kind = entry
                .file_type()
                .map_err(|error| local_storage_error(LocalError::read(&path)(error)))?;
            let wanted = enroll_core::roles::is_manifest_name(&name);
            if let Entry::File =
                classify(&path, kind, wanted, false).map_err(local_storage_error)?
            {
                names.push(name);
            }
        }
        names.sort();
        Ok(names)
    }

    async fn mapping(&self) -> Result<Option<Vec<u8>>, crate::StorageError> {
        if !self.rosters.is_dir() {
            return Ok(None);
        }
        Ok(read_stored(&self.rosters.join(DEFAULT_MAPPING_FILE))?.map(|stored| stored.bytes))
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

#[cfg(all(test, unix))]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::os::unix::fs::{OpenOptionsExt as _, symlink};
    use std::sync::mpsc;
    use std::time::Duration;

    use super::*;
    use crate::Storage as _;

    const ROSTER: &str = "Ann;ann@example.com\n";

    /// A rosters folder with one good roster, and a file outside it that must never show.
    fn folder() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let rosters = dir.path().join("rosters");
        fs::create_dir(&rosters).unwrap();
        fs::write(rosters.join("Good.csv"), ROSTER).unwrap();
        fs::write(
            dir.path().join("secret.csv"),
            "runner-secret-token;leak@example.com\n",
        )
        .unwrap();
        (dir, rosters)
    }

    /// The roster `name` as `enroll apply`'s storage reads it.
    fn stored(
        rosters: &Path,
        name: &str,
    ) -> Result<Option<crate::StoredRoster>, crate::StorageError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        runtime.block_on(LocalStorage::new(rosters, rosters.join("reports")).roster(name))
    }

    /// Runs `read` on another thread, so that a read that blocks fails the test instead of
    /// hanging it; then checks that no reader holds `fifo` open (a non-blocking open for
    /// writing fails with ENXIO exactly when there is none).
    fn never_opened<T: Send + 'static>(
        fifo: &Path,
        read: impl FnOnce() -> T + Send + 'static,
    ) -> T {
        let (done, result) = mpsc::channel();
        std::thread::spawn(move || done.send(read()));
        let outcome = result.recv_timeout(Duration::from_secs(60));
        let probe = fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(fifo);
        assert_eq!(
            probe.map(|_| ()).map_err(|e| e.raw_os_error()),
            Err(Some(libc::ENXIO)),
            "the FIFO was opened for reading"
        );
        outcome.expect("reading the FIFO returned")
    }

    #[test]
    fn a_symlink_out_of_the_folder_is_refused_by_name_and_never_read() {
        let (dir, rosters) = folder();
        symlink(dir.path().join("secret.csv"), rosters.join("Leak.csv")).unwrap();
        let error = find_csv_files(&rosters).unwrap_err();
        assert!(
            matches!(&error, LocalError::Symlink { path } if path.ends_with("rosters/Leak.csv"))
        );
        let text = error.to_string();
        assert!(text.contains("Leak.csv is a symbolic link"), "{text}");
        assert!(!text.contains("runner-secret"), "{text}");
        let stored = stored(&rosters, "Leak.csv");
        let error = stored.unwrap_err();
        assert!(!error.retryable);
        assert!(
            error.message.contains("Leak.csv is a symbolic link"),
            "{}",
            error.message
        );
        assert!(
            !error.message.contains("runner-secret"),
            "{}",
            error.message
        );
    }

    #[test]
    fn a_folder_on_the_way_that_is_a_symlink_out_is_refused() {
        let (dir, rosters) = folder();
        let outside = dir.path().join("outside");
        fs::create_dir(&outside).unwrap();
        fs::write(outside.join("Team.csv"), ROSTER).unwrap();
        symlink(&outside, rosters.join("Catalog")).unwrap();
        let error = find_csv_files(&rosters).unwrap_err();
        assert!(
            matches!(&error, LocalError::Symlink { path } if path.ends_with("rosters/Catalog"))
        );
        let error = stored(&rosters, "Catalog/Team.csv").unwrap_err();
        assert!(
            error.message.contains("Catalog is a symbolic link"),
            "{}",
            error.message
        );
    }

    #[test]
    fn a_symlink_to_a_device_such_as_dev_zero_is_refused_without_reading() {
        let (_dir, rosters) = folder();
        symlink("/dev/zero", rosters.join("Zero.csv")).unwrap();
        let error = find_csv_files(&rosters).unwrap_err();
        assert!(
            error.to_string().contains("Zero.csv is a symbolic link"),
            "{error}"
        );
        let roster_error =
            read_roster(&rosters.join("Zero.csv"), "Zero.csv", Limits::default()).unwrap_err();
        assert!(
            matches!(roster_error, LocalError::Symlink { .. }),
            "{roster_error}"
        );
        // Named directly, the device itself is refused from its metadata.
        let device = read_file(Path::new("/dev/zero"), MAX_FILE_BYTES).unwrap_err();
        assert_eq!(
            device.to_string(),
            "/dev/zero is a character device, not a regular file; enroll reads rosters, mapping files and manifests only from regular files"
        );
    }

    #[test]
    fn a_fifo_is_refused_and_never_opened_for_reading() {
        let (_dir, rosters) = folder();
        let fifo = rosters.join("Pipe.csv");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        let found = never_opened(&fifo, {
            let rosters = rosters.clone();
            move || find_csv_files(&rosters).map_err(|e| e.to_string())
        });
        let text = found.unwrap_err();
        assert!(
            text.contains("Pipe.csv is a FIFO (named pipe), not a regular file"),
            "{text}"
        );
        let read = never_opened(&fifo, {
            let fifo = fifo.clone();
            move || {
                read_roster(&fifo, "Pipe.csv", Limits::default())
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            }
        });
        assert!(read.unwrap_err().contains("is a FIFO"));
        let from_storage = never_opened(&fifo, {
            let rosters = rosters.clone();
            move || stored(&rosters, "Pipe.csv").map(|_| ())
        });
        assert!(
            from_storage
                .unwrap_err()
                .message
                .contains("Pipe.csv is a FIFO")
        );
    }

    #[test]
    fn a_folder_named_like_a_roster_is_refused() {
        let (_dir, rosters) = folder();
        fs::create_dir(rosters.join("Team.csv")).unwrap();
        let error = find_csv_files(&rosters).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("Team.csv is a folder, not a regular file"),
            "{error}"
        );
        let stored = stored(&rosters, "Team.csv").unwrap_err();
        assert!(
            stored.message.contains("Team.csv is a folder"),
            "{}",
            stored.message
        );
    }

    #[test]
    fn an_oversized_roster_is_too_large_from_its_size_without_being_read() {
        let (_dir, rosters) = folder();
        let path = rosters.join("Huge.csv");
        // Sparse: reading it whole would take 64 GiB of memory.
        fs::File::create(&path).unwrap().set_len(64 << 30).unwrap();
        let (roster, version) = read_roster(&path, "Huge.csv", Limits::default()).unwrap();
        assert_eq!(roster.errors.len(), 1);
        assert_eq!(roster.errors[0].code.as_str(), "too_large");
        assert_eq!(
            roster.errors[0].message,
            "the file is 68719476736 bytes; a roster may be at most 16777216 bytes (16 MiB)"
        );
        assert!(roster.validated().is_err());
        assert_eq!(version, "");
        let stored = stored(&rosters, "Huge.csv").unwrap_err();
        assert_eq!(
            stored.message,
            format!(
                "{} is 68719476736 bytes; enroll reads files of at most 16777216 bytes",
                path.display()
            )
        );
    }

    #[test]
    fn files_at_the_limit_are_read_and_one_byte_more_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.csv");
        fs::write(&path, [b'a'; 10]).unwrap();
        assert_eq!(read_file(&path, 10).unwrap().len(), 10);
        assert!(matches!(
            read_file(&path, 9),
            Err(LocalError::TooLarge {
                size: Some(10),
                limit: 9,
                ..
            })
        ));
    }

    /// Files in /proc say they have 0 bytes and then give more: like a file that grows
    /// while it is read.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_file_that_grows_past_the_limit_while_read_is_cut_and_too_large() {
        let path = Path::new("/proc/self/status");
        assert_eq!(fs::metadata(path).unwrap().len(), 0);
        let error = read_file(path, 10).unwrap_err();
        assert!(
            matches!(
                error,
                LocalError::TooLarge {
                    size: None,
                    limit: 10,
                    ..
                }
            ),
            "{error}"
        );
        assert_eq!(
            error.to_string(),
            "/proc/self/status grew past the limit while it was read; enroll reads files of at most 10 bytes"
        );
        let (roster, _) = read_roster(
            path,
            "status.csv",
            Limits {
                max_bytes: 10,
                max_rows: 10,
            },
        )
        .unwrap();
        assert_eq!(
            roster.errors[0].message,
            "the file grew past 10 bytes while it was read; a roster may be at most 10 bytes (0 MiB)"
        );
    }

    #[test]
    fn a_mapping_file_that_is_a_symlink_is_refused_and_json_errors_do_not_echo_it() {
        let (dir, rosters) = folder();
        symlink(
            dir.path().join("secret.csv"),
            rosters.join(DEFAULT_MAPPING_FILE),
        )
        .unwrap();
        let error = read_mapping(None, &rosters).unwrap_err();
        assert!(matches!(error, LocalError::Symlink { .. }), "{error}");
        let plain = tempfile::tempdir().unwrap();
        let secret = format!("{{\"accessPackages\": \"{}\"}}", "token-".repeat(30));
        fs::write(plain.path().join(DEFAULT_MAPPING_FILE), secret).unwrap();
        let text = read_mapping(None, plain.path()).unwrap_err().to_string();
        assert!(
            text.contains("invalid type: string \"token-token-"),
            "{text}"
        );
        assert!(!text.contains(&"token-".repeat(8)), "{text}");
        assert_eq!(
            read_mapping(None, &rosters.join("Good.csv")).unwrap(),
            Mapping::default()
        );
    }

    #[test]
    fn regular_rosters_below_the_folder_are_found_and_read() {
        let (_dir, rosters) = folder();
        fs::create_dir(rosters.join("Catalog")).unwrap();
        fs::write(rosters.join("Catalog/Team.csv"), ROSTER).unwrap();
        fs::write(rosters.join("notes.txt"), "not a roster").unwrap();
        symlink("/dev/zero", rosters.join("zero.txt")).unwrap();
        let found = read_rosters(&rosters, Limits::default()).unwrap();
        let names: Vec<&str> = found.iter().map(|r| r.path.as_str()).collect();
        assert_eq!(names, ["Catalog/Team.csv", "Good.csv"]);
        assert!(found.iter().all(|r| r.roster.is_valid()));
    }
}

#[cfg(test)]
mod report_files {
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
