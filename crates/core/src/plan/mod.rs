//! The reconcile plan: desired state (valid rosters) against actual state (the tenant).
//!
//! Pure: rosters and a [`TenantSnapshot`] in, a [`Plan`] out. The plan is a document that
//! says, per access package, whom to invite, whom to assign, whose assignment to remove and
//! why a package is blocked. Steps execute plans; nothing here touches a tenant.

mod guards;
mod locate;
mod protected;

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::time::SystemTime;

use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};

use serde::Serialize;

use crate::roster::{Problem, Roster, ValidRoster, email_key, email_key_borrowed};
use crate::tenant::{AccessPackage, Assignment, AssignmentPolicy, Subject, TenantSnapshot, User};

pub use crate::tenant::guest_upn_email;

pub use guards::{Guards, OVERRIDE_REFUSED, Override, Tripped};
pub use locate::{LocateError, Mapping, locate, locate_all};
pub use protected::Protected;

/// Settings for planning.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PlanOptions {
    /// The guards' limits, and which an override lets through.
    pub guards: Guards,
    /// Who allowed removals or additions past the guards, and why; without it no override
    /// is honoured.
    pub override_by: Option<Override>,
    /// Rosters pinned to packages, packages pinned to policies, packages governing only
    /// enroll's own assignments, protected people.
    pub mapping: Mapping,
    /// The catalog searched for rosters that do not name one by folder.
    pub catalog: Option<String>,
    /// Domains people may be invited from.
    pub invite_domains: InviteDomains,
    /// People no plan removes (the setting; the mapping file's list adds to it).
    pub protected: Protected,
    /// With an undo window (`ENROLL_REMOVAL_DELAY`): the time before which no removal of
    /// this plan happens, shown on each removal.
    pub removals_not_before: Option<SystemTime>,
}

/// Which e-mail domains may be invited as guests (DESIGN: invitations only to allowed domains).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum InviteDomains {
    /// Any domain (`*`).
    #[default]
    Any,
    /// Only these domains (as [`email_key`] folds them), and their subdomains.
    Only(Vec<String>),
}

impl InviteDomains {
    /// Reads a comma-separated list; `*` means any domain, an empty list none.
    pub fn parse(list: &str) -> Self {
        let domains: Vec<String> = list
            .split([',', ';', ' '])
            .map(|d| email_key(d.trim().trim_start_matches('@')))
            .filter(|d| !d.is_empty())
            .collect();
        if domains.iter().any(|d| d == "*") {
            Self::Any
        } else {
            Self::Only(domains)
        }
    }

    /// Whether `email` may be invited.
    pub fn allows(&self, email: &str) -> bool {
        let Self::Only(domains) = self else {
            return true;
        };
        let domain = email_key(email.rsplit('@').next().unwrap_or_default());
        domains.iter().any(|allowed| {
            domain == *allowed
                || domain
                    .strip_suffix(allowed.as_str())
                    .is_some_and(|rest| rest.ends_with('.'))
        })
    }
}

/// One roster as read, with where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RosterSource {
    /// Path relative to the rosters folder, `/`-separated (decides the package).
    pub path: String,
    /// The roster's version: blob ETag, or a content hash.
    pub version: String,
    /// The roster as read.
    pub roster: Roster,
}

/// Why a package's plan is held back; a blocked package changes nothing at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum BlockReason {
    /// It would remove more than the guard allows.
    RemovalGuard,
    /// The roster is empty while the package has members.
    EmptyRoster,
    /// It would remove two holders or more and the roster lists none of the current ones.
    AllHolders,
    /// It would invite and assign far more people than the package has.
    AdditionGuard,
    /// People must be assigned but no policy allows admin direct assignment.
    NoAssignmentPolicy,
    /// People must be assigned and several policies could do it; pin one in the mapping.
    AmbiguousAssignmentPolicy,
}

/// The package a plan is for, and the policy its assignments will use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct PackageRef {
    /// Access package id.
    pub id: String,
    /// Display name.
    pub display_name: String,
    /// The policy for `adminAdd`, when one is needed and found.
    pub assignment_policy_id: Option<String>,
}

/// Someone to invite as a B2B guest (and then assign).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Invite {
    /// Address to invite.
    pub email: String,
    /// Display name for the invitation.
    pub display_name: String,
}

/// An existing user to assign.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Assign {
    /// Address in the roster.
    pub email: String,
    /// The user's object id.
    pub user_id: String,
}

/// An assignment to remove.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Remove {
    /// The holder's address, as best known.
    pub email: String,
    /// The holder's object id, when known.
    pub user_id: Option<String>,
    /// The assignment to remove with `adminRemove`.
    pub assignment_id: String,
    /// With an undo window: not before this time (RFC 3339); a roster corrected before then
    /// keeps the person.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_before: Option<String>,
}

/// Why an active assignment of someone not in the roster is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum KeptReason {
    /// The holder is a protected person (`ENROLL_PROTECTED_PEOPLE`, `protectedPeople`).
    Protected,
    /// The package governs only enroll's own assignments (`ownPolicyOnly`), and this one is
    /// under another policy.
    OtherPolicy,
    /// Nobody can tell who holds it (no target, or a user the directory does not know and
    /// no address), so nobody can tell whether the roster lists them.
    Unidentified,
}

impl KeptReason {
    /// The reason as a sentence for reports.
    pub fn describe(self) -> &'static str {
        match self {
            Self::Protected => {
                "a protected person (ENROLL_PROTECTED_PEOPLE or protectedPeople); never removed"
            }
            Self::OtherPolicy => {
                "assigned through another policy, and this package's roster governs only enroll's own assignments (ownPolicyOnly)"
            }
            Self::Unidentified => {
                "the holder cannot be identified (no target, or a user the directory does not know and no address), so nobody can tell whether the roster lists them"
            }
        }
    }
}

/// An active assignment the plan keeps although its holder is not in the roster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Kept {
    /// The holder's address, as best known (empty when none is).
    pub email: String,
    /// The holder's object id, when known.
    pub user_id: Option<String>,
    /// The assignment.
    pub assignment_id: String,
    /// Why it stays.
    pub reason: KeptReason,
}

/// A roster person left alone because the tenant is ambiguous about them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Skipped {
    /// Address in the roster.
    pub email: String,
    /// Why nothing is done for them.
    pub reason: String,
}

/// The plan for one access package.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct PackagePlan {
    /// Roster path.
    pub roster: String,
    /// Roster version the plan was made from.
    pub roster_version: String,
    /// The package.
    pub access_package: PackageRef,
    /// People to invite, then assign.
    pub invite: Vec<Invite>,
    /// Users to assign.
    pub assign: Vec<Assign>,
    /// Assignments to remove.
    pub remove: Vec<Remove>,
    /// Roster people who already hold (or are being given) an assignment.
    pub unchanged: usize,
    /// Of `unchanged`, those whose assignment is still a pending request or delivering.
    pub pending: usize,
    /// People left alone, with why.
    pub skipped: Vec<Skipped>,
    /// Active members before the change.
    pub current_members: usize,
    /// Why the plan is held back, or null.
    pub blocked: Option<BlockReason>,
    /// One sentence explaining `blocked`.
    pub blocked_message: Option<String>,
    /// The guard an explicit override let through, if any.
    pub overridden: Option<BlockReason>,
    /// Every guard that tripped, with its numbers (blocking or overridden).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub guards: Vec<Tripped>,
    /// Who let a guard through, and why.
    #[serde(rename = "override", default, skip_serializing_if = "Option::is_none")]
    pub override_by: Option<Override>,
    /// Why an override that was asked for is not honoured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub override_refused: Option<String>,
    /// Assignments of people not in the roster that the plan keeps, with why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kept: Vec<Kept>,
}

impl PackagePlan {
    /// Whether the plan would change anything (blocked or not).
    pub fn has_changes(&self) -> bool {
        !(self.invite.is_empty() && self.assign.is_empty() && self.remove.is_empty())
    }

    /// Which guards an override let through, by whom and why, as one sentence for reports,
    /// the run summary and the audit trail.
    pub fn override_note(&self) -> Option<String> {
        let by = self.override_by.as_ref()?;
        let codes: Vec<&str> = self
            .guards
            .iter()
            .filter(|guard| guard.overridden)
            .map(|guard| guard.code.code())
            .collect();
        Some(format!(
            "{} overridden by {}: {}",
            codes.join(", "),
            by.by,
            by.reason
        ))
    }
}

impl BlockReason {
    /// The stable code, as in the plan's JSON.
    pub fn code(self) -> &'static str {
        match self {
            Self::RemovalGuard => "removal_guard",
            Self::EmptyRoster => "empty_roster",
            Self::AllHolders => "all_holders",
            Self::AdditionGuard => "addition_guard",
            Self::NoAssignmentPolicy => "no_assignment_policy",
            Self::AmbiguousAssignmentPolicy => "ambiguous_assignment_policy",
        }
    }
}

/// A problem that keeps a roster from being planned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PlanError {
    /// Roster path.
    pub roster: String,
    /// Line, for roster problems.
    pub line: Option<u64>,
    /// Column, for roster problems.
    pub column: Option<u64>,
    /// Stable code.
    pub code: String,
    /// What is wrong.
    pub message: String,
}

/// The whole plan: one entry per roster that could be planned, errors for the rest.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Plan {
    /// Per-package plans, in roster order.
    pub packages: Vec<PackagePlan>,
    /// Rosters that could not be planned and why; such rosters change nothing.
    pub errors: Vec<PlanError>,
    /// Whether `--allow-removals` was given.
    pub allow_removals: bool,
    /// Whether `--allow-additions` was given.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_additions: bool,
    /// Who allowed removals or additions, and why.
    #[serde(rename = "override", default, skip_serializing_if = "Option::is_none")]
    pub override_by: Option<Override>,
}

impl Plan {
    /// Whether every roster was planned and no package is blocked.
    pub fn is_clean(&self) -> bool {
        self.errors.is_empty() && self.packages.iter().all(|p| p.blocked.is_none())
    }
}

/// Lookups over a tenant, built once per plan.
pub struct TenantIndex<'t> {
    users_by_email: HashMap<Cow<'t, str>, Holders<'t>>,
    user_by_id: HashMap<&'t str, &'t User>,
    active_by_package: HashMap<&'t str, Vec<&'t Assignment>>,
    open_adds: HashSet<(&'t str, &'t str)>,
}

/// The users known by one address: nearly always one, so no list is allocated for it.
enum Holders<'t> {
    One([&'t User; 1]),
    Many(Vec<&'t User>),
}

impl<'t> Holders<'t> {
    fn push(&mut self, user: &'t User) {
        match self {
            Self::One([first]) => *self = Self::Many(vec![*first, user]),
            Self::Many(users) => users.push(user),
        }
    }

    fn as_slice(&self) -> &[&'t User] {
        match self {
            Self::One(one) => one,
            Self::Many(users) => users,
        }
    }
}

/// Every address a user can be known by ([`User::addresses`]) as keys, each once.
fn user_email_keys(user: &User) -> Vec<Cow<'_, str>> {
    let mut keys: Vec<Cow<'_, str>> = user
        .addresses()
        .map(|address| match address {
            Cow::Borrowed(address) => email_key_borrowed(address),
            Cow::Owned(address) => Cow::Owned(email_key(&address)),
        })
        .collect();
    keys.sort_unstable();
    keys.dedup();
    keys
}

/// The keys an assignment's subject is recorded under: its e-mail and principal name, and the
/// address a guest's principal name was made from.
fn subject_keys(subject: &Subject) -> impl Iterator<Item = Cow<'_, str>> {
    [&subject.email, &subject.principal_name]
        .into_iter()
        .flatten()
        .flat_map(|address| {
            let guest = guest_upn_email(address).map(|mail| Cow::Owned(email_key(&mail)));
            std::iter::once(email_key_borrowed(address)).chain(guest)
        })
}

/// The keys the active assignments' subjects are recorded under.
fn active_subject_keys<'a>(
    assignments: impl IntoIterator<Item = &'a Assignment>,
) -> HashSet<Cow<'a, str>> {
    assignments
        .into_iter()
        .filter(|a| a.is_active())
        .filter_map(|a| a.target.as_ref())
        .flat_map(subject_keys)
        .collect()
}

/// The active holders that planning one package needs read from the directory by id, given
/// the roster's addresses and the package's assignments: those whose assignment is recorded
/// under none of the roster's addresses. The others are in the roster by their assignment
/// whatever their user says ([`plan_package`] keeps them, and counts their addresses as held),
/// so reading them could not change the plan; the ones read are the holders a plan may remove,
/// whose every address must be known first.
pub fn holders_to_read<'a, 'r>(
    addresses: impl IntoIterator<Item = &'r str>,
    assignments: &'a [Assignment],
) -> Vec<&'a str> {
    let roster: HashSet<Cow<'r, str>> = addresses.into_iter().map(email_key_borrowed).collect();
    let mut ids: Vec<&str> = assignments
        .iter()
        .filter(|a| a.is_active())
        .filter_map(|a| a.target.as_ref())
        .filter(|subject| !subject_keys(subject).any(|key| roster.contains(&key)))
        .filter_map(|subject| subject.object_id.as_deref())
        .collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// The roster addresses that planning one package needs looked up in the directory, given
/// the package's assignments and the holders read by id ([`holders_to_read`]): every address
/// that no active holder answers to, by their user or by the subject their assignment is
/// recorded under. An address an active holder answers to plans as unchanged whoever else
/// answers to it too ([`plan_package`] asks whether someone holds before anything else), so
/// looking it up could not change the plan; and a holder costs a fifteenth of a filter by id
/// where an address in its five forms costs a third.
pub fn addresses_to_look_up<'r>(
    addresses: impl IntoIterator<Item = &'r str>,
    assignments: &[Assignment],
    holders: &[User],
) -> Vec<&'r str> {
    let active: HashSet<&str> = assignments
        .iter()
        .filter(|a| a.is_active())
        .filter_map(|a| a.target.as_ref()?.object_id.as_deref())
        .collect();
    let mut held: HashSet<Cow<'_, str>> = holders
        .iter()
        .filter(|user| active.contains(user.id.as_str()))
        .flat_map(user_email_keys)
        .collect();
    held.extend(active_subject_keys(assignments));
    addresses
        .into_iter()
        .filter(|address| !held.contains(&email_key_borrowed(address)))
        .collect()
}

/// The address to show for a user: mail, else the guest's external address, else the UPN.
fn user_display_email(user: &User) -> Option<String> {
    user.mail.clone().or_else(|| {
        let upn = user.user_principal_name.as_deref()?;
        guest_upn_email(upn).or_else(|| Some(upn.to_owned()))
    })
}

impl<'t> TenantIndex<'t> {
    /// Indexes users by every address, active assignments by package, add requests under way.
    pub fn new(tenant: &'t TenantSnapshot) -> Self {
        let mut users_by_email: HashMap<Cow<'t, str>, Holders<'t>> = HashMap::default();
        users_by_email.reserve(tenant.users.len() * 2);
        for user in &tenant.users {
            for key in user_email_keys(user) {
                match users_by_email.entry(key) {
                    std::collections::hash_map::Entry::Occupied(mut found) => {
                        found.get_mut().push(user)
                    }
                    std::collections::hash_map::Entry::Vacant(slot) => {
                        slot.insert(Holders::One([user]));
                    }
                }
            }
        }
        let mut active_by_package: HashMap<&str, Vec<&Assignment>> = HashMap::default();
        for assignment in tenant.assignments.iter().filter(|a| a.is_active()) {
            if let Some(package) = &assignment.access_package {
                active_by_package
                    .entry(package.id.as_str())
                    .or_default()
                    .push(assignment);
            }
        }
        let open_adds = tenant
            .assignment_requests
            .iter()
            .filter(|request| request.is_under_way() && request.is_add())
            .filter_map(|request| Some((request.access_package_id()?, request.target_object_id()?)))
            .collect();
        Self {
            users_by_email,
            user_by_id: tenant.users.iter().map(|u| (u.id.as_str(), u)).collect(),
            active_by_package,
            open_adds,
        }
    }

    /// Users known by this address key (see [`email_key`]): by mail, otherMails, UPN or guest UPN.
    pub fn users_with_key(&self, key: &str) -> &[&'t User] {
        self.users_by_email.get(key).map_or(&[], Holders::as_slice)
    }

    /// Active (delivering, partially delivered, delivered) assignments of a package.
    pub fn active_assignments(&self, package_id: &str) -> &[&'t Assignment] {
        self.active_by_package
            .get(package_id)
            .map_or(&[], Vec::as_slice)
    }

    /// Whether an add request for this user and package is under way
    /// ([`crate::tenant::AssignmentRequest::is_under_way`]).
    pub fn has_add_under_way(&self, package_id: &str, user_id: &str) -> bool {
        self.open_adds.contains(&(package_id, user_id))
    }
}

/// Why nothing is done for an address that several users answer to: the plan, Invite and
/// Assign all say it this way, naming the users, and none of them picks one.
pub fn shared_address_reason(users: &[impl std::borrow::Borrow<User>]) -> String {
    format!(
        "{} users have this address ({}); assign by hand or merge them",
        users.len(),
        users
            .iter()
            .map(|u| u.borrow().id.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// Picks the assignment policy for admin direct assignment.
///
/// A pinned id wins. Otherwise automatic-assignment policies are out (admins cannot assign
/// through them); of the rest, a policy for administrator direct assignments only
/// (`allowedTargetScope` `notSpecified`) is preferred; exactly one candidate must remain.
pub fn choose_policy<'p>(
    package: &'p AccessPackage,
    pinned: Option<&str>,
) -> Result<&'p AssignmentPolicy, (BlockReason, String)> {
    if let Some(id) = pinned {
        return package
            .assignment_policies
            .iter()
            .find(|policy| policy.id.eq_ignore_ascii_case(id))
            .ok_or_else(|| {
                (
                    BlockReason::NoAssignmentPolicy,
                    format!(
                        "the mapping pins assignment policy {id}, which the package does not have"
                    ),
                )
            });
    }
    let manual: Vec<&AssignmentPolicy> = package
        .assignment_policies
        .iter()
        .filter(|policy| policy.automatic_request_settings.is_none())
        .collect();
    let admin_only: Vec<&AssignmentPolicy> = manual
        .iter()
        .copied()
        .filter(|policy| {
            policy
                .allowed_target_scope
                .as_deref()
                .is_none_or(|scope| scope.eq_ignore_ascii_case("notSpecified"))
        })
        .collect();
    let candidates = if admin_only.is_empty() {
        manual
    } else {
        admin_only
    };
    match candidates.as_slice() {
        [one] => Ok(one),
        [] => Err((
            BlockReason::NoAssignmentPolicy,
            "the package has no assignment policy that allows admin direct assignment".into(),
        )),
        several => Err((
            BlockReason::AmbiguousAssignmentPolicy,
            format!(
                "the package has {} policies that allow admin direct assignment ({}); pin one under assignmentPolicies in the mapping file",
                several.len(),
                several
                    .iter()
                    .map(|p| p.id.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )),
    }
}

/// Plans one package from a valid roster.
pub fn plan_package(
    roster: ValidRoster<'_>,
    version: &str,
    package: &AccessPackage,
    index: &TenantIndex<'_>,
    options: &PlanOptions,
) -> PackagePlan {
    let active = index.active_assignments(&package.id);
    let holders: HashSet<&str> = active
        .iter()
        .filter_map(|a| a.target.as_ref()?.object_id.as_deref())
        .collect();
    let recorded = active_subject_keys(active.iter().copied());
    let mut plan = PackagePlan {
        roster: roster.path().to_owned(),
        roster_version: version.to_owned(),
        access_package: PackageRef {
            id: package.id.clone(),
            display_name: package.display_name.clone(),
            assignment_policy_id: None,
        },
        invite: Vec::new(),
        assign: Vec::new(),
        remove: Vec::new(),
        unchanged: 0,
        pending: 0,
        skipped: Vec::new(),
        current_members: count_members(active, &holders),
        blocked: None,
        blocked_message: None,
        overridden: None,
        guards: Vec::new(),
        override_by: None,
        override_refused: None,
        kept: Vec::new(),
    };
    let people = roster.people().len();
    let mut wanted = Wanted {
        keys: HashSet::with_capacity_and_hasher(people, Default::default()),
        users: HashSet::with_capacity_and_hasher(people, Default::default()),
    };
    for person in roster.people() {
        let key = email_key_borrowed(&person.email);
        let users = index.users_with_key(&key);
        wanted
            .users
            .extend(users.iter().map(|user| user.id.as_str()));
        // Held when a holder's assignment is recorded under the address (the holder is then
        // kept: see `holder_in_roster`), or a holder's user answers to it.
        let recorded_holder = recorded.contains(&key);
        wanted.keys.insert(key);
        let holding =
            || recorded_holder || users.iter().any(|user| holders.contains(user.id.as_str()));
        let requested = || {
            users
                .iter()
                .any(|user| index.has_add_under_way(&package.id, &user.id))
        };
        match users {
            _ if holding() => plan.unchanged += 1,
            _ if requested() => {
                plan.unchanged += 1;
                plan.pending += 1;
            }
            [] if !options.invite_domains.allows(&person.email) => plan.skipped.push(Skipped {
                email: person.email.clone(),
                reason: "not in the tenant, and its domain is not one invitations may go to (ENROLL_INVITE_DOMAINS)".into(),
            }),
            [] => plan.invite.push(Invite {
                email: person.email.clone(),
                display_name: person.display_name.clone(),
            }),
            [user] => plan.assign.push(Assign {
                email: person.email.clone(),
                user_id: user.id.clone(),
            }),
            several => plan.skipped.push(Skipped {
                email: person.email.clone(),
                reason: shared_address_reason(several),
            }),
        }
    }
    let listed = active
        .iter()
        .filter(|a| holder_in_roster(a, &wanted))
        .collect::<Vec<_>>();
    plan.pending += listed
        .iter()
        .filter(|a| {
            !a.state
                .as_deref()
                .is_some_and(|s| s.eq_ignore_ascii_case("delivered"))
        })
        .count();
    let own_policy = options
        .mapping
        .governs_own_policy_only(&package.id)
        .then(|| {
            let pinned = options.mapping.assignment_policies.get(&package.id);
            choose_policy(package, pinned.map(String::as_str))
                .ok()
                .map(|policy| policy.id.as_str())
        });
    let mut protected = options.protected.clone();
    protected.extend(options.mapping.protected_people.iter().map(String::as_str));
    let not_before = options.removals_not_before.map(crate::audit::rfc3339);
    let mut removals: BTreeMap<String, Remove> = BTreeMap::new();
    let mut kept: BTreeMap<String, Kept> = BTreeMap::new();
    for assignment in active {
        if holder_in_roster(assignment, &wanted) {
            continue;
        }
        let target = assignment.target.as_ref();
        let user_id = target.and_then(|t| t.object_id.clone());
        let user = user_id
            .as_deref()
            .and_then(|id| index.user_by_id.get(id).copied());
        let target_addresses: Vec<&str> = target
            .into_iter()
            .flat_map(|t| [&t.email, &t.principal_name])
            .filter_map(|address| address.as_deref())
            .filter(|address| !address.trim().is_empty())
            .collect();
        let email = user
            .and_then(user_display_email)
            .or_else(|| target_addresses.first().map(|a| (*a).to_owned()))
            .unwrap_or_default();
        let addresses = user
            .into_iter()
            .flat_map(User::addresses)
            .chain(target_addresses.iter().map(|a| Cow::Borrowed(*a)));
        let policy = assignment.assignment_policy.as_ref().map(|p| p.id.as_str());
        let reason = if own_policy.is_some_and(|own| {
            own.is_none_or(|own| !policy.is_some_and(|p| p.eq_ignore_ascii_case(own)))
        }) {
            Some(KeptReason::OtherPolicy)
        } else if protected.covers(user_id.as_deref(), addresses) {
            Some(KeptReason::Protected)
        } else if user.is_none() && target_addresses.is_empty() {
            Some(KeptReason::Unidentified)
        } else {
            None
        };
        let assignment_id = assignment.id.clone();
        match reason {
            Some(reason) => {
                kept.insert(
                    assignment_id.clone(),
                    Kept {
                        email,
                        user_id,
                        assignment_id,
                        reason,
                    },
                );
            }
            None => {
                removals.insert(
                    assignment_id.clone(),
                    Remove {
                        email,
                        user_id,
                        assignment_id,
                        not_before: not_before.clone(),
                    },
                );
            }
        }
    }
    plan.remove = removals.into_values().collect();
    plan.remove
        .sort_by_key(|r| (email_key(&r.email), r.assignment_id.clone()));
    plan.kept = kept.into_values().collect();
    plan.kept
        .sort_by_key(|k| (email_key(&k.email), k.assignment_id.clone()));
    let people_removed: HashSet<String> = plan
        .remove
        .iter()
        .map(|r| {
            r.user_id
                .clone()
                .unwrap_or_else(|| format!("{}/{}", email_key(&r.email), r.assignment_id))
        })
        .collect();
    let facts = guards::Facts {
        roster_is_empty: roster.people().is_empty(),
        holders_listed: listed.len(),
        people_removed: people_removed.len(),
    };
    guards::apply_guards(
        &mut plan,
        &facts,
        &options.guards,
        options.override_by.as_ref(),
    );
    if plan.blocked.is_none() && !(plan.invite.is_empty() && plan.assign.is_empty()) {
        let pinned = options.mapping.assignment_policies.get(&package.id);
        match choose_policy(package, pinned.map(String::as_str)) {
            Ok(policy) => plan.access_package.assignment_policy_id = Some(policy.id.clone()),
            Err((reason, message)) => {
                plan.blocked = Some(reason);
                plan.blocked_message = Some(message);
            }
        }
    }
    plan
}

/// Distinct people holding an active assignment (one person may hold it through two
/// policies): the users among `holders`, and the others by e-mail or assignment.
fn count_members(active: &[&Assignment], holders: &HashSet<&str>) -> usize {
    let others: HashSet<&str> = active
        .iter()
        .filter(|a| {
            a.target
                .as_ref()
                .and_then(|t| t.object_id.as_deref())
                .is_none()
        })
        .map(|a| {
            a.target
                .as_ref()
                .and_then(|t| t.email.as_deref())
                .unwrap_or(a.id.as_str())
        })
        .collect();
    holders.len() + others.len()
}

/// The roster's people as address keys, and the users those addresses belong to.
struct Wanted<'t> {
    keys: HashSet<Cow<'t, str>>,
    users: HashSet<&'t str>,
}

/// Whether an assignment's holder is in the roster, by any address they are known by.
///
/// A user is wanted when any of their addresses is in the roster, which is exactly when
/// they were found for a roster address; the subject's own address covers holders that
/// are not (or not yet) users.
fn holder_in_roster(assignment: &Assignment, wanted: &Wanted<'_>) -> bool {
    let Some(target) = &assignment.target else {
        return false;
    };
    let by_user = target
        .object_id
        .as_deref()
        .is_some_and(|id| wanted.users.contains(id));
    by_user || subject_keys(target).any(|key| wanted.keys.contains(&key))
}

/// Plans every roster against the tenant.
///
/// Invalid rosters and rosters without exactly one package become [`PlanError`]s and change
/// nothing; every other roster gets a [`PackagePlan`].
pub fn plan(rosters: &[RosterSource], tenant: &TenantSnapshot, options: &PlanOptions) -> Plan {
    let index = TenantIndex::new(tenant);
    let paths: Vec<&str> = rosters.iter().map(|r| r.path.as_str()).collect();
    let located = locate_all(&paths, tenant, &options.mapping, options.catalog.as_deref());
    let mut result = Plan {
        packages: Vec::new(),
        errors: Vec::new(),
        allow_removals: options.guards.allow_removals,
        allow_additions: options.guards.allow_additions,
        override_by: options.override_by.clone(),
    };
    for (source, package) in rosters.iter().zip(located) {
        let valid = match source.roster.validated() {
            Ok(valid) => valid,
            Err(invalid) => {
                result
                    .errors
                    .extend(invalid.errors.iter().map(|p| roster_error(&source.path, p)));
                continue;
            }
        };
        match package {
            Ok(package) => result.packages.push(plan_package(
                valid,
                &source.version,
                package,
                &index,
                options,
            )),
            Err(error) => result.errors.push(PlanError {
                roster: source.path.clone(),
                line: None,
                column: None,
                code: error.code().to_owned(),
                message: error.to_string(),
            }),
        }
    }
    result
}

/// A roster problem as a plan error (the roster, its line, column, code and message).
pub fn roster_error(path: &str, problem: &Problem) -> PlanError {
    PlanError {
        roster: path.to_owned(),
        line: problem.line,
        column: problem.column,
        code: problem.code.as_str().to_owned(),
        message: problem.message.clone(),
    }
}

#[cfg(test)]
mod tests;
