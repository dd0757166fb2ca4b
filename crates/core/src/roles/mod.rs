//! App roles and their groups, kept in line with a manifest in Git (pure: no I/O).
//!
//! - [`parse_manifest`]: the `appRoles` array as Graph and the portal's manifest editor show
//!   it, validated before anything is sent, every problem with its line, column and code.
//! - [`parse_mapping`] and [`role_targets`]: which group holds each role, by a naming
//!   convention (`APP-{value}`) or an explicit mapping file (which wins).
//! - [`plan_roles`]: the manifest and mapping against the tenant give the app role updates
//!   (in the order Graph accepts them) and the group assignments to create and remove.
//!
//! The step that executes a plan is `enroll_steps::map_roles` (a crate above this one).

mod id;
mod manifest;
mod mapping;
mod plan;
mod position;
mod report;

#[cfg(test)]
mod tests;

use std::fmt;

use serde::Serialize;

pub use id::{ROLE_ID_NAMESPACE, derived_role_id, is_guid, uuid_v5};
pub use manifest::{DesiredRole, Manifest, ManifestRole, ValidManifest, parse_manifest};
pub use mapping::{
    DEFAULT_GROUP_PATTERN, GroupKey, MappedBy, ParsedMapping, RoleMapping, RoleTarget,
    is_manifest_name, manifest_of, mapping_name_for, parse_mapping, role_targets,
};
pub use plan::{
    AppRolesUpdate, GroupAssignment, GroupUnassignment, RoleChange, RoleChanges, RoleRef,
    RoleRemoval, RolesOptions, RolesPlan, RolesTenant, UnmanagedAssignment, UpdateStep,
    needs_disable, plan_roles,
};
pub use report::{plan_markdown, plan_text, rejected_markdown, rejected_text};

/// Stable codes of manifest, mapping and planning problems.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RoleCode {
    /// The file is not JSON (line and column of the syntax error).
    InvalidJson,
    /// The JSON is neither an `appRoles` array nor an object holding one.
    NotAManifest,
    /// A field has the wrong JSON type (e.g. `"isEnabled": "yes"`).
    InvalidField,
    /// Warning: a role field Graph does not know; it is not sent.
    UnknownField,
    /// A role without a `value`.
    MissingValue,
    /// A `value` with spaces.
    ValueHasSpaces,
    /// A `value` with a character Graph refuses.
    ValueInvalidCharacter,
    /// A `value` over 120 characters.
    ValueTooLong,
    /// A `value` that starts with `.`.
    ValueStartsWithDot,
    /// Two roles with the same `value` (compared without case).
    DuplicateValue,
    /// Two roles with the same `id`.
    DuplicateId,
    /// An `id` that is not a GUID.
    InvalidId,
    /// A role without `allowedMemberTypes`.
    MissingAllowedMemberTypes,
    /// An `allowedMemberTypes` entry other than `User` and `Application`.
    InvalidAllowedMemberType,
    /// Warning: a role without an id; it gets one derived from its value.
    MissingId,
    /// Warning: a role without an id takes the id of the tenant's role with its value.
    AdoptedId,
    /// Neither the manifest (`appId`) nor the configuration (`ENROLL_APP_ID`) names the application.
    MissingAppId,
    /// No application has the client id.
    ApplicationNotFound,
    /// The application has no service principal (enterprise application) to hold assignments.
    ServicePrincipalNotFound,
    /// The mapping file is not valid.
    InvalidMapping,
    /// The group naming pattern has no `{value}`.
    InvalidGroupPattern,
    /// The mapping file names a role the manifest does not have.
    UnknownMappedRole,
    /// The mapping file gives a group to a role groups cannot hold (`Application` only).
    RoleNotForGroups,
    /// A mapped group does not exist.
    GroupNotFound,
    /// A mapped group name matches several groups.
    AmbiguousGroup,
    /// Two roles are mapped to one group.
    SharedGroup,
}

impl RoleCode {
    /// The code as it appears in JSON output.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidJson => "invalid_json",
            Self::NotAManifest => "not_a_manifest",
            Self::InvalidField => "invalid_field",
            Self::UnknownField => "unknown_field",
            Self::MissingValue => "missing_value",
            Self::ValueHasSpaces => "value_has_spaces",
            Self::ValueInvalidCharacter => "value_invalid_character",
            Self::ValueTooLong => "value_too_long",
            Self::ValueStartsWithDot => "value_starts_with_dot",
            Self::DuplicateValue => "duplicate_value",
            Self::DuplicateId => "duplicate_id",
            Self::InvalidId => "invalid_id",
            Self::MissingAllowedMemberTypes => "missing_allowed_member_types",
            Self::InvalidAllowedMemberType => "invalid_allowed_member_type",
            Self::MissingId => "missing_id",
            Self::AdoptedId => "adopted_id",
            Self::MissingAppId => "missing_app_id",
            Self::ApplicationNotFound => "application_not_found",
            Self::ServicePrincipalNotFound => "service_principal_not_found",
            Self::InvalidMapping => "invalid_mapping",
            Self::InvalidGroupPattern => "invalid_group_pattern",
            Self::UnknownMappedRole => "unknown_mapped_role",
            Self::RoleNotForGroups => "role_not_for_groups",
            Self::GroupNotFound => "group_not_found",
            Self::AmbiguousGroup => "ambiguous_group",
            Self::SharedGroup => "shared_group",
        }
    }
}

impl fmt::Display for RoleCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A problem with a manifest, a mapping file or the tenant they are planned against.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RoleProblem {
    /// The file it is in (manifest or mapping name).
    pub file: String,
    /// 1-based line, when the problem has a place in the file.
    pub line: Option<u64>,
    /// 1-based column (characters).
    pub column: Option<u64>,
    /// Where in the JSON, e.g. `appRoles[3].value`.
    pub path: Option<String>,
    /// Stable code.
    pub code: RoleCode,
    /// One sentence: what was found and what was expected.
    pub message: String,
}

impl RoleProblem {
    /// A problem with no place in a file.
    pub fn new(file: &str, code: RoleCode, message: impl Into<String>) -> Self {
        Self {
            file: file.to_owned(),
            line: None,
            column: None,
            path: None,
            code,
            message: message.into(),
        }
    }

    /// The same problem at a place.
    pub fn at(mut self, place: Option<Place>) -> Self {
        if let Some(place) = place {
            self.line = Some(place.line);
            self.column = Some(place.column);
            self.path = Some(place.path);
        }
        self
    }
}

impl fmt::Display for RoleProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let (Some(line), Some(column)) = (self.line, self.column) {
            write!(f, ":{line}:{column}")?;
        }
        if let Some(path) = &self.path {
            write!(f, " ({path})")?;
        }
        write!(f, ": {} [{}]", self.message, self.code)
    }
}

/// A place in a JSON file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    /// 1-based line.
    pub line: u64,
    /// 1-based column.
    pub column: u64,
    /// The JSON path.
    pub path: String,
}
