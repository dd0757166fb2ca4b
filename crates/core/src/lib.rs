//! enroll's pure core: what rosters say, what the tenant holds, and what must change.
//!
//! - [`roster`]: decode and validate roster files.
//! - [`tenant`]: the tenant as Graph describes it, and the snapshot format.
//! - [`plan`]: desired (rosters) against actual (tenant) gives the changes, with the safety guards.
//! - [`roles`]: app roles and their groups from a manifest in Git: validation, mapping, plan.
//! - [`messages`]: what the steps pass each other through queues.
//! - [`audit`]: the audit trail's records.
//! - [`report`]: validation results, plans and failures as text, Markdown and JSON.
//! - [`escape`]: text from rosters and the tenant made safe for terminals, Markdown and CSV.
//!
//! Pure: no network, file system, environment or clock (time is a parameter). Depends on no
//! other crate of enroll; every other crate depends on this one.

pub mod audit;
pub mod escape;
pub mod messages;
pub mod plan;
pub mod report;
pub mod roles;
pub mod roster;
pub mod tenant;
