//! Mutable simulator state: the tenant, the seeded random generator, issued tokens and the
//! throttle window. Time-driven changes (request delivery) are applied lazily by
//! [`State::advance`] before every operation, so no background task is needed and a run
//! depends only on the order of requests and the clock.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::SimConfig;
use super::clock;
use super::entities::{AssignmentRec, Fate, SubjectRec, Tenant};
use enroll_core::tenant::TenantSnapshot;

#[derive(Debug)]
pub(crate) struct State {
    pub(crate) rng: fastrand::Rng,
    pub(crate) tenant: Tenant,
    /// Issued access tokens and when they expire.
    pub(crate) tokens: HashMap<String, Instant>,
    /// Start times of the operations admitted in the last second.
    window: VecDeque<Instant>,
    pub(crate) consistency_delay: Duration,
    /// How long a new app role assignment stays out of lists.
    pub(crate) app_role_assignment_lag: Duration,
    /// When each app role assignment made through the API was created (ids from the
    /// snapshot are old enough to be listed).
    pub(crate) app_role_assignment_created: HashMap<String, Instant>,
    pub(crate) delivery_delay: Duration,
    /// Share of assignment requests that end `deliveryFailed`.
    delivery_failure_rate: f64,
    /// Share of assignment requests that stay `delivering` until reprocessed.
    delivery_stuck_rate: f64,
    pub(crate) page_size: usize,
    /// The address of every invitation that took effect, in order (one e-mail each, in
    /// Entra), whether its answer reached the client or not.
    pub(crate) invitations: Vec<String>,
    /// Graph operations received, by method and route ([`route_of`]).
    pub(crate) operations_by_route: BTreeMap<String, u64>,
}

impl State {
    pub(crate) fn new(config: &SimConfig, snapshot: TenantSnapshot) -> Result<Self, String> {
        Ok(Self {
            rng: fastrand::Rng::with_seed(config.seed),
            tenant: Tenant::from_snapshot(&snapshot, Instant::now())?,
            tokens: HashMap::new(),
            window: VecDeque::new(),
            consistency_delay: Duration::from_millis(config.consistency_delay_ms),
            app_role_assignment_lag: Duration::from_millis(config.app_role_assignment_lag_ms),
            app_role_assignment_created: HashMap::new(),
            delivery_delay: Duration::from_millis(config.delivery_delay_ms),
            delivery_failure_rate: config.delivery_failure_rate,
            delivery_stuck_rate: config.delivery_stuck_rate,
            page_size: config.page_size,
            invitations: Vec::new(),
            operations_by_route: BTreeMap::new(),
        })
    }

    /// A random version-4 GUID in Graph's lower-case form, from the seeded generator so
    /// that a run can be replayed.
    pub(crate) fn new_guid(&mut self) -> String {
        let bytes = self.rng.u128(..).to_le_bytes();
        uuid::Builder::from_random_bytes(bytes)
            .into_uuid()
            .to_string()
    }

    /// An opaque id like Graph's app role assignment ids (43 base64url characters: 32 bytes).
    pub(crate) fn new_opaque_id(&mut self) -> String {
        let mut bytes = [0u8; 32];
        self.rng.fill(&mut bytes);
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// Admits one operation, or says how long to wait when `rps` operations already ran in
    /// the last second.
    pub(crate) fn throttle(&mut self, rps: Option<u32>) -> Option<Duration> {
        let rps = rps? as usize;
        let now = Instant::now();
        let second = Duration::from_secs(1);
        while self
            .window
            .front()
            .is_some_and(|t| now.duration_since(*t) >= second)
        {
            self.window.pop_front();
        }
        if self.window.len() >= rps.max(1) {
            let oldest = self.window.front().copied().unwrap_or(now);
            return Some(second.saturating_sub(now.duration_since(oldest)));
        }
        self.window.push_back(now);
        None
    }

    /// How a new assignment request's delivery ends, drawn from the seeded generator only
    /// when a failure or stuck rate is set (so other runs replay as before).
    pub(crate) fn draw_fate(&mut self) -> Fate {
        if self.delivery_failure_rate <= 0.0 && self.delivery_stuck_rate <= 0.0 {
            return Fate::Deliver;
        }
        let draw = self.rng.f64();
        if draw < self.delivery_failure_rate {
            Fate::Fail
        } else if draw < self.delivery_failure_rate + self.delivery_stuck_rate {
            Fate::Stick
        } else {
            Fate::Deliver
        }
    }

    /// Moves assignment requests along `submitted → delivering → delivered` by elapsed time
    /// (or `deliveryFailed`, or stuck in `delivering`, as each request's fate says); a
    /// delivered adminAdd delivers its assignment, a delivered adminRemove expires it.
    pub(crate) fn advance(&mut self) {
        let now = Instant::now();
        let half = self.delivery_delay / 2;
        let mut finished = Vec::new();
        for (i, r) in self.tenant.requests.iter_mut().enumerate() {
            if !r.is_open() {
                continue;
            }
            let elapsed = now.duration_since(r.submitted_at);
            if elapsed >= self.delivery_delay && r.fate != Fate::Stick {
                finished.push(i);
            } else if elapsed >= half && r.state == "submitted" {
                r.state = "delivering".to_owned();
            }
        }
        for i in finished {
            match self.tenant.requests.get(i).map(|r| r.fate) {
                Some(Fate::Fail) => self.fail(i),
                _ => self.deliver(i),
            }
        }
    }

    /// Ends request `index` `deliveryFailed`; an adminAdd's assignment fails with it.
    fn fail(&mut self, index: usize) {
        let completed = clock::now_iso();
        let tenant = &mut self.tenant;
        let Some(request) = tenant.requests.get_mut(index) else {
            return;
        };
        request.state = "deliveryFailed".to_owned();
        request.completed = Some(completed);
        if request.request_type.eq_ignore_ascii_case("adminAdd") {
            let id = request.assignment_id.clone();
            if let Some(a) = tenant
                .assignments
                .iter_mut()
                .find(|a| Some(&a.id) == id.as_ref())
            {
                a.state = "deliveryFailed".to_owned();
            }
        }
    }

    /// Delivers request `index` now: an adminAdd delivers its assignment (made now if the
    /// request came without one), an adminRemove expires its assignment.
    pub(crate) fn deliver(&mut self, index: usize) {
        let completed = clock::now_iso();
        let new_id = self.new_guid();
        let subject_id = self.new_guid();
        let tenant = &mut self.tenant;
        let Some(request) = tenant.requests.get(index).cloned() else {
            return;
        };
        let mut assignment_id = request.assignment_id.clone();
        if request.request_type.eq_ignore_ascii_case("adminRemove") {
            if let Some(a) = tenant
                .assignments
                .iter_mut()
                .find(|a| Some(&a.id) == request.assignment_id.as_ref())
            {
                a.state = "expired".to_owned();
                a.expired = Some(completed.clone());
            }
        } else if let Some(a) = tenant
            .assignments
            .iter_mut()
            .find(|a| Some(&a.id) == request.assignment_id.as_ref())
        {
            a.state = "delivered".to_owned();
        } else {
            let user = request
                .target_object_id
                .as_deref()
                .and_then(|id| tenant.user_by_key(id));
            let target = SubjectRec {
                id: subject_id,
                object_id: request.target_object_id.clone(),
                email: user.and_then(|u| u.mail.clone()),
                principal_name: user.map(|u| u.upn.clone()),
                display_name: user.and_then(|u| u.display_name.clone()),
            };
            tenant.assignments.push(AssignmentRec {
                id: new_id.clone(),
                state: "delivered".to_owned(),
                target,
                package_id: request.package_id.clone(),
                policy_id: request.policy_id.clone(),
                start: Some(completed.clone()),
                expired: None,
            });
            assignment_id = Some(new_id);
        }
        if let Some(r) = tenant.requests.get_mut(index) {
            r.state = "delivered".to_owned();
            r.completed = Some(completed);
            r.assignment_id = assignment_id;
            r.fate = Fate::Deliver;
        }
    }
}

/// An operation's method and route with ids left out, and for a filtered list the
/// properties its filter starts with: `GET /users?$filter=mail`,
/// `POST /identityGovernance/entitlementManagement/assignmentRequests`. What a benchmark
/// tallies to show where requests go.
pub(crate) fn route_of(method: &str, segments: &[String], query: &[(String, String)]) -> String {
    let path: Vec<&str> = segments
        .iter()
        .map(|segment| {
            if segment.bytes().any(|b| b.is_ascii_digit()) || segment.contains('@') {
                "{id}"
            } else {
                segment.as_str()
            }
        })
        .collect();
    let mut route = format!("{method} /{}", path.join("/"));
    if let Some((_, filter)) = query.iter().find(|(name, _)| name == "$filter") {
        let head: String = filter
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '/' || *c == '(')
            .collect();
        route.push_str("?$filter=");
        route.push_str(&head);
    }
    route
}
