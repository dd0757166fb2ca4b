//! Integration tests: one binary, one module per area.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod cli;
mod e2e;
mod functions;
mod graph;
mod pipeline;
mod roles;
mod roster;
mod sim;
mod store;
