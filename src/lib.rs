//! enroll keeps Microsoft Entra ID access packages in line with CSV rosters kept in Git.
//!
//! Layers, from pure to I/O (see README.md):
//!
//! - [`roster`]: decode and validate roster files (pure).
//! - [`tenant`]: the tenant as Graph describes it, and the snapshot format.
//! - [`plan`]: desired (rosters) against actual (tenant) gives the changes, with safety guards (pure).
//! - [`roles`]: app roles and their groups from a manifest in Git: validation, mapping, plan (pure).
//! - [`graph`]: the Microsoft Graph client (auth, paging, `$batch`, throttling, retries).
//! - [`sim`]: a simulated tenant serving Microsoft Graph over loopback HTTP, for tests and local runs.
//! - [`store`]: rosters, reports, audit trail and step queues in Azure Storage (Azurite in tests).
//!
//! The Graph client, the simulated tenant, storage, steps and the Functions and Lambda
//! adapters build on these; [`export`] writes a tenant back as rosters and an app role manifest.

pub mod config;
pub mod export;
pub mod functions;
pub mod graph;
pub mod harness;
pub mod local;
pub mod plan;
pub mod report;
pub mod roles;
pub mod roster;
pub mod runner;
pub mod sim;
pub mod steps;
pub mod store;
pub mod tenant;
