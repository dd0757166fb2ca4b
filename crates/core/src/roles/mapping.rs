//! Which group holds each app role: a naming convention, and a mapping file that wins.
//!
//! Every role that users and groups can hold (`allowedMemberTypes` with `User`) and that is
//! enabled belongs to exactly one group. The group is, in this order: the one the mapping
//! file names for the role's value (a display name or an object id; `null` means no group
//! holds the role), else the group named by the pattern (`APP-{value}` by default).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::id::is_guid;
use super::manifest::ValidManifest;
use super::position::{line_column, locate};
use super::{Place, RoleCode, RoleProblem};

/// The naming convention when neither the mapping file nor the configuration sets one.
pub const DEFAULT_GROUP_PATTERN: &str = "APP-{value}";

/// The mapping file's contents.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RoleMapping {
    /// The naming convention for roles the file does not name; `{value}` stands for the
    /// role's value. Overrides the configured pattern.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_pattern: Option<String>,
    /// Role value → group display name or object id; `null` for a role no group holds.
    #[serde(default)]
    pub roles: BTreeMap<String, Option<String>>,
}

/// A mapping file as read, with where each role entry is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParsedMapping {
    /// The file's name; `None` when there is no mapping file.
    pub name: Option<String>,
    /// Its contents.
    pub mapping: RoleMapping,
    /// Where each entry of `roles` is, by role value.
    places: BTreeMap<String, Place>,
}

impl ParsedMapping {
    /// No mapping file: the convention maps every role.
    pub fn none() -> Self {
        Self::default()
    }

    /// A mapping given as data (tests, exports), without places.
    pub fn from_mapping(name: &str, mapping: RoleMapping) -> Self {
        Self {
            name: Some(name.to_owned()),
            mapping,
            places: BTreeMap::new(),
        }
    }
}

/// The mapping file that goes with a manifest: `app.json` → `app.mapping.json`.
pub fn mapping_name_for(manifest: &str) -> String {
    let stem = if manifest.to_ascii_lowercase().ends_with(".json") {
        &manifest[..manifest.len() - ".json".len()]
    } else {
        manifest
    };
    format!("{stem}.mapping.json")
}

/// Whether a file of the manifests container is a manifest (`*.json`, not `*.mapping.json`).
pub fn is_manifest_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    lower.ends_with(".json") && !lower.ends_with(".mapping.json")
}

/// The manifest a file of the manifests container belongs to: itself, or for a mapping
/// file its manifest (`app.mapping.json` → `app.json`); `None` for other files.
pub fn manifest_of(name: &str) -> Option<String> {
    let lower = name.to_ascii_lowercase();
    if lower.ends_with(".mapping.json") {
        Some(format!(
            "{}.json",
            &name[..name.len() - ".mapping.json".len()]
        ))
    } else if lower.ends_with(".json") {
        Some(name.to_owned())
    } else {
        None
    }
}

/// Reads a mapping file.
///
/// # Errors
/// Problems with line and column: not JSON, unknown members, an empty group, a role mapped twice.
pub fn parse_mapping(name: &str, bytes: &[u8]) -> Result<ParsedMapping, Vec<RoleProblem>> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let text = std::str::from_utf8(bytes).map_err(|error| {
        vec![RoleProblem::new(
            name,
            RoleCode::InvalidMapping,
            format!(
                "the file is not UTF-8 text (byte {} is not)",
                error.valid_up_to() + 1
            ),
        )]
    })?;
    let mapping: RoleMapping = serde_json::from_str(text).map_err(|error| {
        let mut problem = RoleProblem::new(
            name,
            RoleCode::InvalidMapping,
            format!(
                "the mapping file is not valid: {error}; expected {{\"groupPattern\": \"APP-{{value}}\", \"roles\": {{\"Role.Value\": \"Group name or id\"}}}}"
            ),
        );
        problem.line = Some(error.line() as u64);
        problem.column = Some(error.column() as u64);
        vec![problem]
    })?;
    let mut places = BTreeMap::new();
    let mut problems = Vec::new();
    if let Some(crate::roles::position::Kind::Object(members)) = locate(text)
        .and_then(|root| root.member("roles").cloned())
        .map(|roles| roles.kind)
    {
        for (key, at, _) in members {
            let (line, column) = line_column(text, at);
            let place = Place {
                line,
                column,
                path: format!("roles.{key}"),
            };
            match places.entry(key) {
                std::collections::btree_map::Entry::Occupied(entry) => problems.push(
                    RoleProblem::new(
                        name,
                        RoleCode::InvalidMapping,
                        format!(
                            "role `{}` is mapped twice; give each role one group",
                            entry.key()
                        ),
                    )
                    .at(Some(place)),
                ),
                std::collections::btree_map::Entry::Vacant(entry) => {
                    entry.insert(place);
                }
            }
        }
    }
    for (value, group) in &mapping.roles {
        if group.as_deref().is_some_and(|g| g.trim().is_empty()) {
            problems.push(
                RoleProblem::new(
                    name,
                    RoleCode::InvalidMapping,
                    format!(
                        "role `{value}` is mapped to an empty group name; use null for a role no group holds"
                    ),
                )
                .at(places.get(value).cloned()),
            );
        }
    }
    if problems.is_empty() {
        Ok(ParsedMapping {
            name: Some(name.to_owned()),
            mapping,
            places,
        })
    } else {
        Err(problems)
    }
}

/// How a group is named: by object id or by display name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum GroupKey {
    /// An object id (lower case).
    Id(String),
    /// A display name (matched without case, as Graph's `eq` does).
    DisplayName(String),
}

impl GroupKey {
    /// A GUID is taken as an object id, anything else as a display name.
    pub fn parse(text: &str) -> Self {
        let text = text.trim();
        if is_guid(text) {
            Self::Id(text.to_ascii_lowercase())
        } else {
            Self::DisplayName(text.to_owned())
        }
    }
}

impl std::fmt::Display for GroupKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Id(id) => write!(f, "group id {id}"),
            Self::DisplayName(name) => write!(f, "group `{name}`"),
        }
    }
}

/// Where a role's group comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum MappedBy {
    /// The naming convention.
    Convention,
    /// The mapping file.
    MappingFile,
}

/// The group a role of the manifest belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleTarget {
    /// The role's position in the manifest.
    pub role_index: usize,
    /// The role's value.
    pub value: String,
    /// The group.
    pub group: GroupKey,
    /// Why this group.
    pub mapped_by: MappedBy,
    /// For a file mapping, where the entry is.
    pub place: Option<Place>,
    /// The mapping file's name, or the pattern, for messages.
    pub source: String,
}

/// The group of every enabled role that groups can hold.
///
/// # Errors
/// A pattern without `{value}`, a mapping entry for a role the manifest lacks, or a group
/// given to a role that groups cannot hold.
pub fn role_targets(
    manifest: &ValidManifest,
    mapping: &ParsedMapping,
    default_pattern: &str,
) -> Result<Vec<RoleTarget>, Vec<RoleProblem>> {
    let mut problems = Vec::new();
    let mapping_file = mapping.name.as_deref().unwrap_or("mapping");
    let pattern = mapping
        .mapping
        .group_pattern
        .as_deref()
        .unwrap_or(default_pattern);
    if !pattern.contains("{value}") {
        let (file, hint) = match (&mapping.name, &mapping.mapping.group_pattern) {
            (Some(name), Some(_)) => (name.as_str(), "`groupPattern` in the mapping file"),
            _ => (
                manifest.name.as_str(),
                "the configured pattern (ENROLL_ROLE_GROUP_PATTERN or --group-pattern)",
            ),
        };
        problems.push(RoleProblem::new(
            file,
            RoleCode::InvalidGroupPattern,
            format!(
                "{hint} `{pattern}` has no `{{value}}`, so every role would map to the same group"
            ),
        ));
    }
    // Entries of the file, matched to roles by value (exactly, else without case).
    let mut entries: BTreeMap<usize, (&str, Option<&String>)> = BTreeMap::new();
    for (value, group) in &mapping.mapping.roles {
        let place = mapping.places.get(value).cloned();
        let found = manifest
            .roles
            .iter()
            .position(|r| r.value() == value)
            .or_else(|| {
                manifest
                    .roles
                    .iter()
                    .position(|r| r.value().eq_ignore_ascii_case(value))
            });
        let Some(index) = found else {
            problems.push(
                RoleProblem::new(
                    mapping_file,
                    RoleCode::UnknownMappedRole,
                    format!(
                        "the mapping file maps role `{value}` to {}, but manifest {} has no role with that value",
                        group.as_deref().map_or_else(|| "no group".to_owned(), |g| GroupKey::parse(g).to_string()),
                        manifest.name
                    ),
                )
                .at(place),
            );
            continue;
        };
        let role = &manifest.roles[index].role;
        if group.is_some() && !role.allowed_member_types.iter().any(|t| t == "User") {
            problems.push(
                RoleProblem::new(
                    mapping_file,
                    RoleCode::RoleNotForGroups,
                    format!(
                        "the mapping file gives role `{value}` (id {}) a group, but the role's allowedMemberTypes are {:?}: only applications can hold it",
                        role.id, role.allowed_member_types
                    ),
                )
                .at(place),
            );
            continue;
        }
        entries.insert(index, (value.as_str(), group.as_ref()));
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let mut targets = Vec::new();
    for (index, desired) in manifest.roles.iter().enumerate() {
        let role = &desired.role;
        if !role.is_enabled || !role.allowed_member_types.iter().any(|t| t == "User") {
            continue;
        }
        let value = desired.value();
        match entries.get(&index) {
            Some((key, Some(group))) => targets.push(RoleTarget {
                role_index: index,
                value: value.to_owned(),
                group: GroupKey::parse(group),
                mapped_by: MappedBy::MappingFile,
                place: mapping.places.get(*key).cloned(),
                source: mapping_file.to_owned(),
            }),
            Some((_, None)) => {}
            None => targets.push(RoleTarget {
                role_index: index,
                value: value.to_owned(),
                group: GroupKey::DisplayName(pattern.replace("{value}", value)),
                mapped_by: MappedBy::Convention,
                place: None,
                source: pattern.to_owned(),
            }),
        }
    }
    Ok(targets)
}
