//! The pipeline's steps: plan, invite, assign, remove, and map-roles for app roles. Each
//! reads a message and the world and returns follow-up messages; adapters (Functions, CLI)
//! only move messages.
//!
//! May depend on `enroll-core`, `enroll-graph` and `enroll-store`; never on an adapter
//! (handler, CLI, Lambda) or on the simulated tenant.
//!
//! Steps are level-triggered: before acting, each re-reads the current roster and the
//! current tenant and acts only if the action is still right, so a message delivered twice,
//! late or out of order leaves the tenant right. A step returns `Err` only when trying the
//! whole message again can help; everything it did before that is idempotent. What a step's
//! result means for its message (try again, set aside, done) is [`disposition`]'s decision,
//! the one every adapter follows.

mod change;
pub mod config;
mod disposition;
#[cfg(test)]
mod fake;
mod people;
pub mod permissions;
mod reconcile;
mod reprocess;
mod roles;
pub mod runner;
pub mod settings;
pub mod world;

pub use change::Change;
pub use disposition::{Aside, Attempt, Disposition, disposition};
pub use enroll_core::{audit, messages};
pub use enroll_store::{Storage, StorageError, StoredRoster};
pub use people::{Person, assign, invite, record_set_aside, remove};
pub use reconcile::{
    PlanOutcome, plan_roster, reconcile_all, reconcile_for_upload, record_roster_set_aside,
    roster_too_large,
};
pub use roles::{
    RolesOutcome, RolesRead, apply_roles_plan, map_roles, map_roles_all, plan_manifest,
};
pub use world::{DEFAULT_REPROCESS_AFTER, StepConfig, World};

use enroll_graph::GraphError;
use messages::MessageError;

/// A run id that sorts by time and is unique enough for one tenant: `20261127T060111Z-3f2a`.
pub fn new_run_id(now: std::time::SystemTime) -> String {
    let stamp = audit::rfc3339(now).replace(['-', ':'], "");
    format!("{stamp}-{:04x}", fastrand::u16(..))
}

/// Why a step failed as a whole.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    /// The message cannot be read; trying again cannot help.
    #[error(transparent)]
    Message(#[from] MessageError),
    /// The host's invocation that carried the message cannot be used (an input binding
    /// missing or of the wrong form, a body that is not the protocol's JSON); trying again
    /// cannot help.
    #[error("the invocation cannot be used: {0}")]
    Invocation(String),
    /// Storage failed.
    #[error("storage: {0}")]
    Storage(#[from] StorageError),
    /// Graph failed for the whole message (a lookup every person needs).
    #[error("Microsoft Graph: {0}")]
    Graph(#[from] GraphError),
    /// Some people could not be handled yet (not yet visible after an invitation, throttled
    /// past the retry budget, a fault); the rest were.
    #[error("{count} of the message's people must be tried again: {first}")]
    PeopleToRetry {
        /// How many.
        count: usize,
        /// The first reason.
        first: String,
        /// Their addresses, so a last attempt can set exactly them aside.
        emails: Vec<String>,
        /// The longest wait Graph asked for before any of them is tried again, when it named
        /// one longer than the client waits (see [`StepError::retry_after`]).
        retry_after: Option<std::time::Duration>,
    },
    /// Some app role changes could not be made yet (throttled, not yet replicated, a
    /// fault); the rest were. Trying the message again plans anew and makes only those.
    #[error("{count} app role change(s) must be tried again: {first}")]
    ChangesToRetry {
        /// How many.
        count: usize,
        /// The first, with its reason.
        first: String,
    },
}

impl StepError {
    /// Whether delivering the message again can help (the queue retries it) or not (it is
    /// recorded and dropped).
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Message(_) | Self::Invocation(_) => false,
            Self::Storage(error) => error.retryable,
            Self::Graph(error) => error.is_retryable(),
            Self::PeopleToRetry { .. } | Self::ChangesToRetry { .. } => true,
        }
    }

    /// How long Graph asked to wait before the message is tried again, when it asked for
    /// longer than the Graph client waits (`ENROLL_GRAPH_MAX_WAIT_SECONDS`): the client then
    /// gives the work back instead of holding it, and whoever delivers the message again
    /// should not do so sooner. [`disposition`] passes it on in
    /// [`Disposition::RetryLater`].
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        match self {
            Self::Graph(error) => error.retry_after(),
            Self::PeopleToRetry { retry_after, .. } => *retry_after,
            Self::Message(_)
            | Self::Invocation(_)
            | Self::Storage(_)
            | Self::ChangesToRetry { .. } => None,
        }
    }
}

/// What a step produced: follow-up messages and log lines.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StepOutput {
    /// Messages for queue `invite`.
    pub invite: Vec<messages::ChangeMessage<messages::InvitePerson>>,
    /// Messages for queue `assign`.
    pub assign: Vec<messages::ChangeMessage<messages::AssignPerson>>,
    /// Messages for queue `remove`.
    pub remove: Vec<messages::ChangeMessage<messages::RemovePerson>>,
    /// Lines for the invocation log (no secrets, no personal data beyond e-mails in rosters).
    pub logs: Vec<String>,
    /// The audit records the step wrote.
    pub audit: Vec<audit::AuditRecord>,
    /// People given up on after the last try; adapters set them aside in the poison queue.
    pub gave_up: Vec<String>,
}
