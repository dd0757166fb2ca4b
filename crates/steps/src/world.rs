//! What a step needs from the world: the tenant's directory ([`enroll_graph::Directory`],
//! Microsoft Graph in production), storage for rosters, reports and audit
//! ([`enroll_store::Storage`]), settings and the clock.

use std::time::SystemTime;

use enroll_core::plan::{Guards, InviteDomains, Mapping, Protected};
use enroll_core::roster::Limits;
use enroll_graph::GraphClient;

/// Settings for the steps.
#[derive(Debug, Clone)]
pub struct StepConfig {
    /// The guards' limits (an override comes with a message, never from settings).
    pub guards: Guards,
    /// People no plan removes (`ENROLL_PROTECTED_PEOPLE`); the mapping file adds to them.
    pub protected: Protected,
    /// The undo window (`ENROLL_REMOVAL_DELAY`): how long a planned removal waits before it
    /// is carried out, so that a corrected roster can still keep the person. Zero: none.
    pub removal_delay: std::time::Duration,
    /// The catalog searched for rosters that do not name one by folder (display name or id).
    pub catalog: Option<String>,
    /// Domains invitations may go to.
    pub invite_domains: InviteDomains,
    /// Where invited guests land after redeeming.
    pub invite_redirect_url: String,
    /// Whether Microsoft e-mails the invitation.
    pub send_invitation_message: bool,
    /// Roster size limits.
    pub limits: Limits,
    /// Tries a queue message gets before it is moved to the poison queue (host.json).
    pub max_dequeue_count: u32,
    /// Who the audit trail names as acting (the app's identity).
    pub actor: String,
    /// The application (client id) whose app roles a manifest without `appId` is for.
    pub app_id: Option<String>,
    /// The group naming convention for app roles (`{value}` is the role's value).
    pub group_pattern: String,
    /// How long an assignment request may stay `delivering` or `partiallyDelivered` before
    /// Plan reprocesses it (`ENROLL_REPROCESS_AFTER_MINUTES`; default
    /// [`DEFAULT_REPROCESS_AFTER`]). Requests that ended `deliveryFailed` are reprocessed at
    /// once.
    pub reprocess_after: std::time::Duration,
}

/// The default of [`StepConfig::reprocess_after`]: six hours. Entitlement management
/// retries a delivery on its own for several hours, and refuses a reprocess meanwhile
/// (learn.microsoft.com, "Troubleshoot entitlement management: Reprocess a request"); a
/// request stuck longer than that is caught by the next nightly run.
pub const DEFAULT_REPROCESS_AFTER: std::time::Duration = std::time::Duration::from_secs(6 * 3600);

impl Default for StepConfig {
    fn default() -> Self {
        Self {
            guards: Guards::default(),
            protected: Protected::default(),
            removal_delay: std::time::Duration::ZERO,
            catalog: None,
            invite_domains: InviteDomains::Any,
            invite_redirect_url: "https://myapps.microsoft.com".into(),
            send_invitation_message: false,
            limits: Limits::default(),
            max_dequeue_count: 5,
            actor: "enroll".into(),
            app_id: None,
            group_pattern: enroll_core::roles::DEFAULT_GROUP_PATTERN.into(),
            reprocess_after: DEFAULT_REPROCESS_AFTER,
        }
    }
}

/// Access packages (with policies) of a catalog, and the catalog, as last read.
pub(crate) type CachedPackages = (
    std::time::Instant,
    Vec<enroll_core::tenant::AccessPackage>,
    Vec<enroll_core::tenant::Catalog>,
);

/// How long the access packages of a catalog are reused before they are read again. Plans
/// of many rosters in one run then read them once; a new package or policy is seen within
/// this time.
pub const PACKAGE_CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(60);

/// Everything a step acts on: storage `S`, and the directory `D` (Graph unless a test
/// brings its own).
pub struct World<S, D = GraphClient> {
    /// The tenant's directory.
    pub graph: D,
    /// Rosters, reports, audit.
    pub storage: S,
    /// Settings.
    pub config: StepConfig,
    /// The clock (a parameter, so tests and replays control time).
    pub now: fn() -> SystemTime,
    /// Access packages per catalog name, read at most every [`PACKAGE_CACHE_TTL`].
    pub(crate) packages:
        tokio::sync::Mutex<std::collections::HashMap<Option<String>, CachedPackages>>,
}

impl<S, D> World<S, D> {
    /// The world with the system clock.
    pub fn new(graph: D, storage: S, config: StepConfig) -> Self {
        Self {
            graph,
            storage,
            config,
            now: SystemTime::now,
            packages: tokio::sync::Mutex::default(),
        }
    }

    /// The plan options the steps use (mapping read from storage by the caller): no
    /// override, and removals not before now plus the undo window, if there is one.
    pub fn plan_options(&self, mapping: Mapping) -> enroll_core::plan::PlanOptions {
        enroll_core::plan::PlanOptions {
            guards: self.config.guards,
            override_by: None,
            mapping,
            catalog: self.config.catalog.clone(),
            invite_domains: self.config.invite_domains.clone(),
            protected: self.config.protected.clone(),
            removals_not_before: (!self.config.removal_delay.is_zero())
                .then(|| (self.now)() + self.config.removal_delay),
        }
    }
}
