//! The generated tenant the side-by-side and scale benchmarks share: ids, addresses, members
//! and access packages, numbered by package and person. Included with `#[path]` by the
//! benchmarks that generate a tenant, so the others do not carry it unused.

use enroll_core::tenant::{AccessPackage, AssignmentPolicy, Catalog, User};

/// Person `person`'s address in package `package`'s roster.
pub fn email(package: usize, person: usize) -> String {
    format!("p{package}.person{person}@example.com")
}

/// That person's object id.
pub fn user_id(package: usize, person: usize) -> String {
    format!("00000000-0000-4000-8000-{package:04}{person:08}")
}

/// Package `package`'s id.
pub fn package_id(package: usize) -> String {
    format!("11111111-0000-4000-8000-{package:012}")
}

/// The id of package `package`'s admin-direct policy.
pub fn policy_id(package: usize) -> String {
    format!("22222222-0000-4000-8000-{package:012}")
}

/// Package `package`'s display name, which its roster's file name matches.
pub fn package_name(package: usize) -> String {
    format!("Package {package}")
}

/// A member user whose mail and principal name are `mail`.
pub fn member(id: String, mail: String) -> User {
    User {
        id,
        display_name: Some(mail.clone()),
        user_principal_name: Some(mail.clone()),
        mail: Some(mail),
        user_type: Some("Member".into()),
        ..User::default()
    }
}

/// The one catalog, named `name`.
pub fn catalog(name: &str) -> Catalog {
    Catalog {
        id: "33333333-0000-4000-8000-000000000001".into(),
        display_name: Some(name.into()),
    }
}

/// Package `package` in `catalog`, with an admin-direct policy.
pub fn access_package(package: usize, catalog: &Catalog) -> AccessPackage {
    AccessPackage {
        id: package_id(package),
        display_name: package_name(package),
        catalog: Some(catalog.clone()),
        assignment_policies: vec![AssignmentPolicy {
            id: policy_id(package),
            display_name: Some("Admin direct assignments".into()),
            allowed_target_scope: Some("notSpecified".into()),
            ..AssignmentPolicy::default()
        }],
        ..AccessPackage::default()
    }
}
