//! The safety guards: what a plan may not do without an explicit override, and the numbers
//! each guard weighed.
//!
//! | code | trips when | let through by |
//! | --- | --- | --- |
//! | `empty_roster` | the roster is empty while the package has members | `allow_removals` |
//! | `all_holders` | the plan removes two or more holders and none of the current holders is in the roster | `allow_removals` |
//! | `removal_guard` | removals are more than `max_removals` **and** more than `max_removal_percent` of the members | `allow_removals` |
//! | `addition_guard` | invitations and assignments are more than `max_additions` **and** more than `max_addition_percent` of the members | `allow_additions` |
//!
//! An override is honoured only with who gave it and why ([`Override`]); without them the
//! guard stands and the plan says so.

use serde::{Deserialize, Serialize};

use super::{BlockReason, PackagePlan};

/// The safety guards' limits, and which of them an explicit override lets through.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Guards {
    /// A plan may remove this many members without question. Default 10.
    pub max_removals: usize,
    /// Past `max_removals`, a plan may still remove up to this share of the current members, in percent. Default 20.
    pub max_removal_percent: f64,
    /// A plan may invite and assign this many people without question. Default 50.
    pub max_additions: usize,
    /// Past `max_additions`, a plan may still add up to this share of the current members, in percent. Default 100.
    pub max_addition_percent: f64,
    /// Lets through plans that `empty_roster`, `all_holders` or `removal_guard` would
    /// block (`--allow-removals`); honoured only with an [`Override`].
    pub allow_removals: bool,
    /// Lets through plans that `addition_guard` would block (`--allow-additions`);
    /// honoured only with an [`Override`].
    pub allow_additions: bool,
}

impl Default for Guards {
    fn default() -> Self {
        Self {
            max_removals: 10,
            max_removal_percent: 20.0,
            max_additions: 50,
            max_addition_percent: 100.0,
            allow_removals: false,
            allow_additions: false,
        }
    }
}

/// Who let a plan past its guards, and why. Recorded in the plan, the report and the audit
/// trail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Override {
    /// Who decided (an e-mail address or a name).
    pub by: String,
    /// Why, in a sentence.
    pub reason: String,
}

impl Override {
    /// The override, when both who and why are given and not blank.
    pub fn new(by: Option<&str>, reason: Option<&str>) -> Option<Self> {
        let by = by.map(str::trim).filter(|by| !by.is_empty())?;
        let reason = reason.map(str::trim).filter(|reason| !reason.is_empty())?;
        Some(Self {
            by: by.to_owned(),
            reason: reason.to_owned(),
        })
    }
}

/// What an override without who and why gets instead of being honoured.
pub const OVERRIDE_REFUSED: &str = "removals or additions were allowed without saying who and why (--override-by and --override-reason, or overrideBy and overrideReason in the message); the override is not honoured and the guards stand";

/// A guard that tripped, with the numbers it weighed.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Tripped {
    /// Which guard.
    pub code: BlockReason,
    /// What the guard counts: removals, or (for `addition_guard`) invitations and assignments.
    pub count: usize,
    /// The package's current members.
    pub members: usize,
    /// The count always allowed, for the guards that have one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_count: Option<usize>,
    /// The share of members allowed past `maxCount`, in percent, for the guards that have one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_percent: Option<f64>,
    /// Whether an explicit override let it through.
    pub overridden: bool,
}

/// What the guards weigh besides the plan's lists.
pub(super) struct Facts {
    /// The roster lists nobody.
    pub(super) roster_is_empty: bool,
    /// Active assignments whose holder is in the roster.
    pub(super) holders_listed: usize,
    /// Distinct people the plan would remove.
    pub(super) people_removed: usize,
}

/// Whether `count` is over both limits: more than `max_count`, and more than `max_percent`
/// of `members`.
fn exceeds(count: usize, max_count: usize, max_percent: f64, members: usize) -> bool {
    count > max_count && (count as f64) * 100.0 > max_percent * members as f64
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// Checks every guard, lists those that tripped with their numbers, and blocks the plan
/// on the first one no honoured override lets through.
pub(super) fn apply_guards(
    plan: &mut PackagePlan,
    facts: &Facts,
    guards: &Guards,
    override_by: Option<&Override>,
) {
    let members = plan.current_members;
    let removals = plan.remove.len();
    let additions = plan.invite.len() + plan.assign.len();
    let mut tripped: Vec<(Tripped, String)> = Vec::new();
    let mut trip = |code, count, max_count, max_percent, message: String| {
        tripped.push((
            Tripped {
                code,
                count,
                members,
                max_count,
                max_percent,
                overridden: false,
            },
            message,
        ));
    };
    if facts.roster_is_empty && members > 0 {
        trip(
            BlockReason::EmptyRoster,
            removals,
            None,
            None,
            format!(
                "the roster is empty and the package has {}; an empty roster removes nobody unless removals are allowed explicitly",
                plural(members, "member", "members")
            ),
        );
    }
    if !facts.roster_is_empty && facts.people_removed >= 2 && facts.holders_listed == 0 {
        trip(
            BlockReason::AllHolders,
            removals,
            None,
            None,
            format!(
                "the plan would remove {} and the roster lists none of the package's current holders (a roster for another package, or a renamed file?); allow removals explicitly if this is meant",
                plural(facts.people_removed, "holder", "holders")
            ),
        );
    }
    if exceeds(
        removals,
        guards.max_removals,
        guards.max_removal_percent,
        members,
    ) {
        trip(
            BlockReason::RemovalGuard,
            removals,
            Some(guards.max_removals),
            Some(guards.max_removal_percent),
            format!(
                "the plan would remove {removals} of {members} members ({:.0} %); the guard allows up to {} members or {} % without an explicit override",
                removals as f64 * 100.0 / members.max(1) as f64,
                guards.max_removals,
                guards.max_removal_percent
            ),
        );
    }
    if exceeds(
        additions,
        guards.max_additions,
        guards.max_addition_percent,
        members,
    ) {
        trip(
            BlockReason::AdditionGuard,
            additions,
            Some(guards.max_additions),
            Some(guards.max_addition_percent),
            format!(
                "the plan would add {additions} people (invite {}, assign {}) to a package of {}; the guard allows up to {} people or {} % of the members without an explicit override",
                plan.invite.len(),
                plan.assign.len(),
                plural(members, "member", "members"),
                guards.max_additions,
                guards.max_addition_percent
            ),
        );
    }
    for (guard, message) in &mut tripped {
        let allowed = match guard.code {
            BlockReason::AdditionGuard => guards.allow_additions,
            _ => guards.allow_removals,
        };
        guard.overridden = allowed && override_by.is_some();
        if guard.overridden {
            plan.overridden.get_or_insert(guard.code);
        } else if plan.blocked.is_none() {
            plan.blocked = Some(guard.code);
            plan.blocked_message = Some(std::mem::take(message));
        }
    }
    if plan.overridden.is_some() {
        plan.override_by = override_by.cloned();
    }
    if (guards.allow_removals || guards.allow_additions) && override_by.is_none() {
        plan.override_refused = Some(OVERRIDE_REFUSED.to_owned());
    }
    plan.guards = tripped.into_iter().map(|(guard, _)| guard).collect();
}
