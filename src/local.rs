//! Reading rosters, snapshots and mapping files from the local file system (CLI adapter).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::plan::{Mapping, RosterSource};
use crate::roster::{Limits, Roster, content_version, parse};
use crate::tenant::TenantSnapshot;

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
    path.extension()
        .is_some_and(|ext| ext.eq_ignore_ascii_case("csv"))
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
