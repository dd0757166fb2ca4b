//! The `enroll` command line's library part: what its commands do beyond the steps, such as
//! [`export`] (today's tenant written as rosters and an app role manifest).
//!
//! May depend on every crate of enroll but the handler and the harness.

pub mod export;
