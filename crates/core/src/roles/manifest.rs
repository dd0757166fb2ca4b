//! The app role manifest: reading it and checking it the way Graph would, before anything
//! is sent.
//!
//! A manifest is the `appRoles` array as Graph and the portal's manifest editor show it,
//! either bare (`[...]`) or inside an object (`{"appId": "...", "appRoles": [...]}`, which is
//! what the portal's whole manifest looks like; other members are ignored).

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::id::{derived_role_id, is_guid};
use super::position::{Located, line_column, locate};
use super::{Place, RoleCode, RoleProblem};
use crate::roster::content_version;
use crate::tenant::AppRole;

/// The longest `value` Graph accepts.
pub const MAX_VALUE_CHARS: usize = 120;

/// Characters Graph allows in a `value` besides ASCII letters and digits (graph.md §4.1).
pub const VALUE_PUNCTUATION: &str = ":!#$%&'()*+,-./;<=>?@[]^_`{|}~";

/// Role fields Graph knows; `origin` is read-only and `lang` appears in older manifests:
/// both are tolerated and never sent.
const KNOWN_FIELDS: &[&str] = &[
    "allowedMemberTypes",
    "description",
    "displayName",
    "id",
    "isEnabled",
    "value",
    "origin",
    "lang",
];

/// One role as written in the manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestRole {
    /// Position in the `appRoles` array (0-based).
    pub index: usize,
    /// `User`, `Application`, or both.
    pub allowed_member_types: Vec<String>,
    /// Description.
    pub description: Option<String>,
    /// Display name.
    pub display_name: Option<String>,
    /// The id as written (lower case), if any.
    pub id: Option<String>,
    /// Whether the role is enabled (default `true`).
    pub is_enabled: bool,
    /// The value.
    pub value: Option<String>,
    /// Where the role starts in the file.
    pub place: Option<Place>,
}

/// A manifest as read: its roles and every problem found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// The file's name (blob or path).
    pub name: String,
    /// Its version: a blob's ETag, else a hash of its bytes.
    pub version: String,
    /// The application's client id, when the manifest names it (`appId`).
    pub app_id: Option<String>,
    /// The roles, in file order.
    pub roles: Vec<ManifestRole>,
    /// Problems that stop the manifest from being used.
    pub errors: Vec<RoleProblem>,
    /// Problems worth saying that do not stop it.
    pub warnings: Vec<RoleProblem>,
}

/// A role of a valid manifest, ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredRole {
    /// The role as Graph takes it (`origin` unset), with its id: the one written, else the
    /// one derived from its value.
    pub role: AppRole,
    /// Whether the manifest gave the id (else the planner may adopt the tenant's id for the
    /// same value, and says so).
    pub id_given: bool,
    /// Where the role is in the file.
    pub place: Option<Place>,
}

impl DesiredRole {
    /// The role's value (always present in a valid manifest).
    pub fn value(&self) -> &str {
        self.role.value.as_deref().unwrap_or_default()
    }
}

/// A manifest without errors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidManifest {
    /// The file's name.
    pub name: String,
    /// Its version.
    pub version: String,
    /// The application's client id, when the manifest names it.
    pub app_id: Option<String>,
    /// The roles, in file order.
    pub roles: Vec<DesiredRole>,
    /// Warnings found while reading it.
    pub warnings: Vec<RoleProblem>,
}

impl Manifest {
    /// Whether the manifest has no errors.
    pub fn is_valid(&self) -> bool {
        self.errors.is_empty()
    }

    /// The manifest ready for planning, or every error.
    ///
    /// # Errors
    /// The manifest's errors, when it has any.
    pub fn validated(&self) -> Result<ValidManifest, Vec<RoleProblem>> {
        if !self.errors.is_empty() {
            return Err(self.errors.clone());
        }
        let roles = self
            .roles
            .iter()
            .map(|role| {
                let value = role.value.clone().unwrap_or_default();
                DesiredRole {
                    role: AppRole {
                        allowed_member_types: role.allowed_member_types.clone(),
                        description: role.description.clone(),
                        display_name: role.display_name.clone(),
                        id: role.id.clone().unwrap_or_else(|| derived_role_id(&value)),
                        is_enabled: role.is_enabled,
                        origin: None,
                        value: Some(value),
                    },
                    id_given: role.id.is_some(),
                    place: role.place.clone(),
                }
            })
            .collect();
        Ok(ValidManifest {
            name: self.name.clone(),
            version: self.version.clone(),
            app_id: self.app_id.clone(),
            roles,
            warnings: self.warnings.clone(),
        })
    }
}

/// Where problems of one file are placed.
struct Places<'a> {
    name: &'a str,
    text: &'a str,
    roles: Option<Located>,
    /// `appRoles` or empty for a bare array.
    prefix: &'static str,
}

impl Places<'_> {
    fn role(&self, index: usize) -> Option<&Located> {
        self.roles.as_ref()?.element(index)
    }

    fn path(&self, index: usize, field: Option<&str>) -> String {
        let field = field.map(|f| format!(".{f}")).unwrap_or_default();
        format!("{}[{index}]{field}", self.prefix)
    }

    /// The place of role `index`, or of its `field` (the key) when present.
    fn place(&self, index: usize, field: Option<&str>) -> Option<Place> {
        let role = self.role(index)?;
        let offset = field
            .and_then(|f| role.member_entry(f))
            .map_or(role.offset, |(at, _)| at);
        let (line, column) = line_column(self.text, offset);
        Some(Place {
            line,
            column,
            path: self.path(index, field),
        })
    }

    fn problem(
        &self,
        index: usize,
        field: Option<&str>,
        code: RoleCode,
        message: String,
    ) -> RoleProblem {
        let mut problem = RoleProblem::new(self.name, code, message).at(self.place(index, field));
        if problem.path.is_none() {
            problem.path = Some(self.path(index, field));
        }
        problem
    }
}

/// Reads and checks a manifest. `version` is the blob's ETag when known, else a hash of the
/// bytes is used.
pub fn parse_manifest(name: &str, bytes: &[u8], version: Option<&str>) -> Manifest {
    let mut manifest = Manifest {
        name: name.to_owned(),
        version: version.map_or_else(|| content_version(bytes), str::to_owned),
        app_id: None,
        roles: Vec::new(),
        errors: Vec::new(),
        warnings: Vec::new(),
    };
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let text = match std::str::from_utf8(bytes) {
        Ok(text) => text,
        Err(error) => {
            manifest.errors.push(RoleProblem::new(
                name,
                RoleCode::InvalidJson,
                format!(
                    "the file is not UTF-8 text (byte {} is not); save it as UTF-8",
                    error.valid_up_to() + 1
                ),
            ));
            return manifest;
        }
    };
    let json: Value = match serde_json::from_str(text) {
        Ok(json) => json,
        Err(error) => {
            let mut problem = RoleProblem::new(
                name,
                RoleCode::InvalidJson,
                format!("the file is not valid JSON: {error}"),
            );
            problem.line = Some(error.line() as u64);
            problem.column = Some(error.column() as u64);
            manifest.errors.push(problem);
            return manifest;
        }
    };
    let root = locate(text);
    let (items, places) = match &json {
        Value::Array(items) => (
            items,
            Places {
                name,
                text,
                roles: root,
                prefix: "",
            },
        ),
        Value::Object(object) => {
            match object.get("appId") {
                None | Some(Value::Null) => {}
                Some(Value::String(app_id)) if !app_id.trim().is_empty() => {
                    manifest.app_id = Some(app_id.trim().to_owned());
                }
                Some(other) => {
                    let mut problem = RoleProblem::new(
                        name,
                        RoleCode::InvalidField,
                        format!(
                            "`appId` must be the application's client id as a string, not {other}"
                        ),
                    );
                    problem.path = Some("appId".into());
                    if let Some((at, _)) = root.as_ref().and_then(|r| r.member_entry("appId")) {
                        let (line, column) = line_column(text, at);
                        problem.line = Some(line);
                        problem.column = Some(column);
                    }
                    manifest.errors.push(problem);
                }
            }
            match object.get("appRoles") {
                Some(Value::Array(items)) => (
                    items,
                    Places {
                        name,
                        text,
                        roles: root.and_then(|r| r.member("appRoles").cloned()),
                        prefix: "appRoles",
                    },
                ),
                _ => {
                    manifest.errors.push(RoleProblem::new(
                        name,
                        RoleCode::NotAManifest,
                        "the file holds no `appRoles` array: expected `[...]` or `{\"appRoles\": [...]}` as the portal's manifest editor shows it",
                    ));
                    return manifest;
                }
            }
        }
        _ => {
            manifest.errors.push(RoleProblem::new(
                name,
                RoleCode::NotAManifest,
                "the file holds no `appRoles` array: expected `[...]` or `{\"appRoles\": [...]}` as the portal's manifest editor shows it",
            ));
            return manifest;
        }
    };
    for (index, item) in items.iter().enumerate() {
        match item {
            Value::Object(object) => {
                let role = read_role(index, object, &places, &mut manifest);
                manifest.roles.push(role);
            }
            other => manifest.errors.push(places.problem(
                index,
                None,
                RoleCode::InvalidField,
                format!("an app role must be an object, not {}", json_kind(other)),
            )),
        }
    }
    check_duplicates(&places, &mut manifest);
    manifest
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A string field: `Ok(None)` when absent or null, `Err` with a problem for another type.
fn string_field(
    object: &Map<String, Value>,
    field: &str,
    index: usize,
    places: &Places<'_>,
    errors: &mut Vec<RoleProblem>,
) -> Option<String> {
    match object.get(field) {
        None | Some(Value::Null) => None,
        Some(Value::String(text)) => Some(text.clone()),
        Some(other) => {
            errors.push(places.problem(
                index,
                Some(field),
                RoleCode::InvalidField,
                format!("`{field}` must be a string, not {}", json_kind(other)),
            ));
            None
        }
    }
}

fn read_role(
    index: usize,
    object: &Map<String, Value>,
    places: &Places<'_>,
    manifest: &mut Manifest,
) -> ManifestRole {
    let errors = &mut manifest.errors;
    for key in object.keys() {
        if !KNOWN_FIELDS.contains(&key.as_str()) {
            let hint = KNOWN_FIELDS
                .iter()
                .find(|known| known.eq_ignore_ascii_case(key))
                .map(|known| format!(" (did you mean `{known}`?)"))
                .unwrap_or_default();
            manifest.warnings.push(places.problem(
                index,
                Some(key),
                RoleCode::UnknownField,
                format!("`{key}` is not an app role field and is not sent{hint}"),
            ));
        }
    }
    let description = string_field(object, "description", index, places, errors);
    let display_name = string_field(object, "displayName", index, places, errors);
    let value = string_field(object, "value", index, places, errors);
    let id = string_field(object, "id", index, places, errors);
    let is_enabled = match object.get("isEnabled") {
        None | Some(Value::Null) => true,
        Some(Value::Bool(enabled)) => *enabled,
        Some(other) => {
            errors.push(places.problem(
                index,
                Some("isEnabled"),
                RoleCode::InvalidField,
                format!(
                    "`isEnabled` must be true or false, not {}",
                    json_kind(other)
                ),
            ));
            true
        }
    };
    let mut allowed_member_types = Vec::new();
    match object.get("allowedMemberTypes") {
        None | Some(Value::Null) => errors.push(places.problem(
            index,
            None,
            RoleCode::MissingAllowedMemberTypes,
            "the role has no `allowedMemberTypes`: give [\"User\"] (users and groups), [\"Application\"] or both".into(),
        )),
        Some(Value::Array(types)) if types.is_empty() => errors.push(places.problem(
            index,
            Some("allowedMemberTypes"),
            RoleCode::MissingAllowedMemberTypes,
            "`allowedMemberTypes` is empty: give [\"User\"] (users and groups), [\"Application\"] or both".into(),
        )),
        Some(Value::Array(types)) => {
            for kind in types {
                match kind.as_str() {
                    Some(kind @ ("User" | "Application")) => {
                        allowed_member_types.push(kind.to_owned());
                    }
                    _ => errors.push(places.problem(
                        index,
                        Some("allowedMemberTypes"),
                        RoleCode::InvalidAllowedMemberType,
                        format!(
                            "`allowedMemberTypes` holds {kind}; only \"User\" and \"Application\" are allowed (in that spelling)"
                        ),
                    )),
                }
            }
        }
        Some(other) => errors.push(places.problem(
            index,
            Some("allowedMemberTypes"),
            RoleCode::InvalidField,
            format!("`allowedMemberTypes` must be an array, not {}", json_kind(other)),
        )),
    }
    let id = id.and_then(|id| {
        if is_guid(&id) {
            Some(id.to_ascii_lowercase())
        } else {
            errors.push(places.problem(
                index,
                Some("id"),
                RoleCode::InvalidId,
                format!("`id` `{id}` is not a GUID (8-4-4-4-12 hex digits); leave it out to have one derived from the value"),
            ));
            None
        }
    });
    let value = match value {
        None => {
            errors.push(places.problem(
                index,
                None,
                RoleCode::MissingValue,
                "the role has no `value` (the text that goes into the token's roles claim)".into(),
            ));
            None
        }
        Some(value) if value.is_empty() => {
            errors.push(places.problem(
                index,
                Some("value"),
                RoleCode::MissingValue,
                "`value` is empty".into(),
            ));
            None
        }
        Some(value) => {
            for (code, message) in value_problems(&value) {
                errors.push(places.problem(index, Some("value"), code, message));
            }
            Some(value)
        }
    };
    ManifestRole {
        index,
        allowed_member_types,
        description,
        display_name,
        id,
        is_enabled,
        value,
        place: places.place(index, None),
    }
}

/// What Graph would refuse about a `value`: length, spaces, characters, a leading dot.
pub fn value_problems(value: &str) -> Vec<(RoleCode, String)> {
    let mut problems = Vec::new();
    let length = value.chars().count();
    if length > MAX_VALUE_CHARS {
        problems.push((
            RoleCode::ValueTooLong,
            format!("`value` has {length} characters; Graph allows at most {MAX_VALUE_CHARS}"),
        ));
    }
    if value.chars().any(char::is_whitespace) {
        problems.push((
            RoleCode::ValueHasSpaces,
            format!("`value` `{value}` has spaces; Graph allows none (use `.` or `_`)"),
        ));
    }
    let mut invalid: Vec<char> = Vec::new();
    for c in value.chars() {
        if !c.is_whitespace()
            && !c.is_ascii_alphanumeric()
            && !VALUE_PUNCTUATION.contains(c)
            && !invalid.contains(&c)
        {
            invalid.push(c);
        }
    }
    if !invalid.is_empty() {
        let shown: String = invalid
            .iter()
            .map(|c| format!("`{c}`"))
            .collect::<Vec<_>>()
            .join(", ");
        problems.push((
            RoleCode::ValueInvalidCharacter,
            format!(
                "`value` `{value}` has {shown}; Graph allows only A-Z, a-z, 0-9 and {VALUE_PUNCTUATION}"
            ),
        ));
    }
    if value.starts_with('.') {
        problems.push((
            RoleCode::ValueStartsWithDot,
            format!("`value` `{value}` starts with `.`, which Graph refuses"),
        ));
    }
    problems
}

fn describe(places: &Places<'_>, role: &ManifestRole) -> String {
    match &role.place {
        Some(place) => format!("{} (line {})", places.path(role.index, None), place.line),
        None => places.path(role.index, None),
    }
}

/// Duplicate values (without case, as Graph compares them) and ids, derived ones included.
fn check_duplicates(places: &Places<'_>, manifest: &mut Manifest) {
    let mut values: BTreeMap<String, &ManifestRole> = BTreeMap::new();
    let mut ids: BTreeMap<String, &ManifestRole> = BTreeMap::new();
    let mut errors = Vec::new();
    for role in &manifest.roles {
        if let Some(value) = &role.value {
            if let Some(first) = values.get(&value.to_lowercase()) {
                errors.push(places.problem(
                    role.index,
                    Some("value"),
                    RoleCode::DuplicateValue,
                    format!(
                        "`value` `{value}` is already the value of {}; Graph refuses two roles with one value (DuplicateValue)",
                        describe(places, first)
                    ),
                ));
            } else {
                values.insert(value.to_lowercase(), role);
            }
        }
        let id = match (&role.id, &role.value) {
            (Some(id), _) => id.clone(),
            (None, Some(value)) => derived_role_id(value),
            (None, None) => continue,
        };
        if let Some(first) = ids.get(&id) {
            let derived = if role.id.is_none() {
                " (derived from its value)"
            } else {
                ""
            };
            errors.push(places.problem(
                role.index,
                role.id.as_ref().map(|_| "id"),
                RoleCode::DuplicateId,
                format!(
                    "id {id}{derived} is already the id of {}; every role needs its own id",
                    describe(places, first)
                ),
            ));
        } else {
            ids.insert(id, role);
        }
    }
    manifest.errors.extend(errors);
}
