//! Integration tests: one binary, one module per area.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod cli;
mod deploy;
mod e2e;
mod functions;
mod graph;
mod pipeline;
mod roles;
mod roster;
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
