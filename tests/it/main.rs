//! Integration tests: one binary, one module per area.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod cli;
mod deploy;
mod e2e;
mod faults;
mod functions;
mod graph;
mod pipeline;
mod roles;
mod roster;
mod safety;
mod sim;
mod store;

/// The workspace's `enroll` binary (built by `cargo test --workspace`).
fn enroll_binary() -> std::path::PathBuf {
    enroll_harness::workspace_binary("enroll").unwrap()
}

/// The workspace's `handler` binary (built by `cargo test --workspace`).
fn handler_binary() -> std::path::PathBuf {
    enroll_harness::workspace_binary("handler").unwrap()
}

/// The holders of a package's active assignments in a tenant, by user id, sorted.
pub(crate) fn holders(tenant: &enroll_core::tenant::TenantSnapshot, package: &str) -> Vec<String> {
    let mut ids: Vec<String> = tenant
        .assignments
        .iter()
        .filter(|a| a.is_active() && a.access_package.as_ref().is_some_and(|p| p.id == package))
        .filter_map(|a| a.target.as_ref()?.object_id.clone())
        .collect();
    ids.sort();
    ids
}
