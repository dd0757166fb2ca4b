//! Which access package a roster belongs to.
//!
//! Rules (README "Which access package a roster belongs to"):
//! 1. A roster pinned in the mapping file (`accessPackages`: path → id) belongs to that id.
//! 2. Otherwise the file's stem is the access package's display name, compared without case.
//!    The catalog searched is the roster's first folder (`Catalog A/Package.csv`), else the
//!    configured catalog, else every package in the tenant. A catalog is named by display
//!    name or id, compared without case.
//! 3. No match, several matches, or two rosters for one package are errors: a package must
//!    have exactly one roster, or two rosters would undo each other's changes.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::tenant::{AccessPackage, TenantSnapshot};

/// The optional mapping file: pins rosters to access packages and assignment policies by
/// id, names the packages whose roster governs only enroll's own assignments, and the
/// people no plan removes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Mapping {
    /// Roster path (relative to the rosters folder, `/`-separated) → access package id.
    #[serde(default)]
    pub access_packages: BTreeMap<String, String>,
    /// Access package id → the assignment policy id to use for admin assignments.
    #[serde(default)]
    pub assignment_policies: BTreeMap<String, String>,
    /// Access package ids whose roster governs only the assignments under the policy enroll
    /// assigns with; holders through any other policy (request and approval, say) are
    /// reported, never removed. Other packages' rosters govern every assignment.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub own_policy_only: Vec<String>,
    /// People no plan removes (break-glass and service accounts): addresses or object ids.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub protected_people: Vec<String>,
}

impl Mapping {
    /// Whether the roster of package `id` governs only assignments under enroll's policy.
    pub fn governs_own_policy_only(&self, id: &str) -> bool {
        self.own_policy_only
            .iter()
            .any(|package| package.eq_ignore_ascii_case(id))
    }
}

/// Why a roster could not be tied to one access package.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LocateError {
    /// The mapping pins the roster to an id the tenant does not have.
    #[error("roster {roster} is pinned to access package id {id}, which the tenant does not have")]
    UnknownPackageId {
        /// Roster path.
        roster: String,
        /// The pinned id.
        id: String,
    },
    /// No package has the roster's name.
    #[error("roster {roster}: no access package is named `{name}`{}", in_catalog(.catalog))]
    NoPackage {
        /// Roster path.
        roster: String,
        /// The name looked for.
        name: String,
        /// The catalog searched, if any.
        catalog: Option<String>,
    },
    /// Several packages have the roster's name.
    #[error("roster {roster}: {} access packages are named `{name}`{} (ids {}); pin the roster to one id in the mapping file", .ids.len(), in_catalog(.catalog), .ids.join(", "))]
    AmbiguousPackage {
        /// Roster path.
        roster: String,
        /// The name looked for.
        name: String,
        /// The catalog searched, if any.
        catalog: Option<String>,
        /// The ids of every match.
        ids: Vec<String>,
    },
    /// Two or more rosters point at one package.
    #[error("rosters {} all belong to access package `{package}` ({id}); a package must have exactly one roster", .rosters.join(", "))]
    SeveralRosters {
        /// The package's display name.
        package: String,
        /// The package id.
        id: String,
        /// Every roster that points at it.
        rosters: Vec<String>,
    },
}

impl LocateError {
    /// A stable code for reports.
    pub fn code(&self) -> &'static str {
        match self {
            Self::UnknownPackageId { .. } => "unknown_package_id",
            Self::NoPackage { .. } => "no_matching_package",
            Self::AmbiguousPackage { .. } => "ambiguous_package",
            Self::SeveralRosters { .. } => "several_rosters",
        }
    }

    /// The roster the error is about (the first, for several).
    pub fn roster(&self) -> &str {
        match self {
            Self::UnknownPackageId { roster, .. }
            | Self::NoPackage { roster, .. }
            | Self::AmbiguousPackage { roster, .. } => roster,
            Self::SeveralRosters { rosters, .. } => rosters.first().map_or("", String::as_str),
        }
    }
}

fn in_catalog(catalog: &Option<String>) -> String {
    catalog
        .as_ref()
        .map(|catalog| format!(" in catalog `{catalog}`"))
        .unwrap_or_default()
}

/// Splits a relative roster path into (catalog folder, package name from the stem).
fn name_parts(roster: &str) -> (Option<&str>, &str) {
    let mut parts = roster.split('/').filter(|part| !part.is_empty());
    let first = parts.next().unwrap_or_default();
    let file = roster.rsplit('/').next().unwrap_or(roster);
    let stem = file
        .len()
        .checked_sub(4)
        .filter(|cut| file.is_char_boundary(*cut) && file[*cut..].eq_ignore_ascii_case(".csv"))
        .map_or(file, |cut| &file[..cut]);
    let catalog = (first != file).then_some(first);
    (catalog, stem.trim())
}

fn package_in_catalog(package: &AccessPackage, catalog: &str, tenant: &TenantSnapshot) -> bool {
    let Some(held_by) = &package.catalog else {
        return false;
    };
    let named = |id: &str, name: Option<&str>| {
        id.eq_ignore_ascii_case(catalog) || name.is_some_and(|n| n.eq_ignore_ascii_case(catalog))
    };
    named(&held_by.id, held_by.display_name.as_deref())
        || tenant
            .catalogs
            .iter()
            .any(|known| known.id == held_by.id && named(&known.id, known.display_name.as_deref()))
}

/// Finds the access package of one roster, given its path relative to the rosters folder.
///
/// # Errors
/// [`LocateError`] when the mapping names an unknown id, or the name matches no or several packages.
pub fn locate<'t>(
    roster: &str,
    tenant: &'t TenantSnapshot,
    mapping: &Mapping,
    default_catalog: Option<&str>,
) -> Result<&'t AccessPackage, LocateError> {
    if let Some(id) = mapping.access_packages.get(roster) {
        return tenant
            .access_packages
            .iter()
            .find(|package| package.id.eq_ignore_ascii_case(id))
            .ok_or_else(|| LocateError::UnknownPackageId {
                roster: roster.to_owned(),
                id: id.clone(),
            });
    }
    let (folder, name) = name_parts(roster);
    let catalog = folder.or(default_catalog);
    let matches: Vec<&AccessPackage> = tenant
        .access_packages
        .iter()
        .filter(|package| package.display_name.trim().eq_ignore_ascii_case(name))
        .filter(|package| catalog.is_none_or(|c| package_in_catalog(package, c, tenant)))
        .collect();
    match matches.as_slice() {
        [one] => Ok(one),
        [] => Err(LocateError::NoPackage {
            roster: roster.to_owned(),
            name: name.to_owned(),
            catalog: catalog.map(str::to_owned),
        }),
        several => Err(LocateError::AmbiguousPackage {
            roster: roster.to_owned(),
            name: name.to_owned(),
            catalog: catalog.map(str::to_owned),
            ids: several.iter().map(|package| package.id.clone()).collect(),
        }),
    }
}

/// Finds the package of every roster, and reports packages claimed by more than one roster.
///
/// Returns, in roster order, each roster's package or error.
pub fn locate_all<'t>(
    rosters: &[&str],
    tenant: &'t TenantSnapshot,
    mapping: &Mapping,
    default_catalog: Option<&str>,
) -> Vec<Result<&'t AccessPackage, LocateError>> {
    let mut results: Vec<_> = rosters
        .iter()
        .map(|roster| locate(roster, tenant, mapping, default_catalog))
        .collect();
    let mut claimed: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (index, result) in results.iter().enumerate() {
        if let Ok(package) = result {
            claimed.entry(package.id.as_str()).or_default().push(index);
        }
    }
    let conflicts: Vec<Vec<usize>> = claimed
        .into_values()
        .filter(|indexes| indexes.len() > 1)
        .collect();
    for indexes in conflicts {
        let Some(Ok(package)) = results.get(indexes[0]) else {
            continue;
        };
        let error = LocateError::SeveralRosters {
            package: package.display_name.clone(),
            id: package.id.clone(),
            rosters: indexes.iter().map(|i| rosters[*i].to_owned()).collect(),
        };
        for index in indexes {
            results[index] = Err(error.clone());
        }
    }
    results
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tenant::Catalog;

    fn package(id: &str, name: &str, catalog: &str) -> AccessPackage {
        AccessPackage {
            id: id.into(),
            display_name: name.into(),
            catalog: Some(Catalog {
                id: format!("cat-{catalog}"),
                display_name: Some(catalog.into()),
            }),
            ..AccessPackage::default()
        }
    }

    fn tenant() -> TenantSnapshot {
        TenantSnapshot {
            access_packages: vec![
                package("p1", "Project X - Manager", "Projects"),
                package("p2", "Key Users", "Projects"),
                package("p3", "Key Users", "Finance"),
                package("p4", "Read Only", "Projects"),
            ],
            ..TenantSnapshot::default()
        }
    }

    #[test]
    fn stem_matches_display_name_without_case() {
        let tenant = tenant();
        let found = locate(
            "project x - MANAGER.csv",
            &tenant,
            &Mapping::default(),
            None,
        )
        .unwrap();
        assert_eq!(found.id, "p1");
    }

    #[test]
    fn folder_or_configured_catalog_narrows_the_search() {
        let tenant = tenant();
        let none = Mapping::default();
        assert_eq!(
            locate("Finance/Key Users.csv", &tenant, &none, None)
                .unwrap()
                .id,
            "p3"
        );
        assert_eq!(
            locate("cat-projects/key users.CSV", &tenant, &none, None)
                .unwrap()
                .id,
            "p2"
        );
        assert_eq!(
            locate("Key Users.csv", &tenant, &none, Some("Projects"))
                .unwrap()
                .id,
            "p2"
        );
        let error = locate("Key Users.csv", &tenant, &none, None).unwrap_err();
        assert_eq!(error.code(), "ambiguous_package");
        assert!(error.to_string().contains("p2, p3"), "{error}");
        let error = locate("Finance/Read Only.csv", &tenant, &none, None).unwrap_err();
        assert_eq!(
            error.to_string(),
            "roster Finance/Read Only.csv: no access package is named `Read Only` in catalog `Finance`"
        );
    }

    #[test]
    fn mapping_pins_a_roster_to_an_id() {
        let tenant = tenant();
        let mapping = Mapping {
            access_packages: BTreeMap::from([
                ("managers.csv".into(), "p1".into()),
                ("gone.csv".into(), "p9".into()),
            ]),
            ..Mapping::default()
        };
        assert_eq!(
            locate("managers.csv", &tenant, &mapping, None).unwrap().id,
            "p1"
        );
        assert_eq!(
            locate("gone.csv", &tenant, &mapping, None)
                .unwrap_err()
                .code(),
            "unknown_package_id"
        );
    }

    #[test]
    fn two_rosters_for_one_package_are_both_refused() {
        let tenant = tenant();
        let mapping = Mapping {
            access_packages: BTreeMap::from([("alias.csv".into(), "p1".into())]),
            ..Mapping::default()
        };
        let results = locate_all(
            &["Project X - Manager.csv", "alias.csv", "Read Only.csv"],
            &tenant,
            &mapping,
            None,
        );
        assert_eq!(results[0].as_ref().unwrap_err().code(), "several_rosters");
        assert_eq!(results[1].as_ref().unwrap_err().code(), "several_rosters");
        assert_eq!(results[2].as_ref().unwrap().id, "p4");
    }
}
