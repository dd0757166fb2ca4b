//! The `enroll` command line's library part: what its commands do beyond the steps, such as
//! [`export`] (today's tenant written as rosters and an app role manifest), [`doctor`] (a
//! deployment's checks), [`grant`] (its Graph permissions) and [`markdown`] (a plan for a
//! pull request's comment).
//!
//! May depend on every crate of enroll but the handler and the harness.

pub mod doctor;
pub mod export;
pub mod grant;
pub mod markdown;
