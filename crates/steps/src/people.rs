//! The per-person steps: Invite, Assign and Remove. Each re-reads the current roster and
//! the tenant before acting (level-triggered), handles every person on their own, and
//! records every decision in the audit trail.

use std::collections::{BTreeMap, HashSet};

use enroll_core::plan::{KeptReason, Mapping, choose_policy, shared_address_reason};
use enroll_core::roster::{email_key, parse};
use enroll_core::tenant::{AccessPackage, Assignment, User};
use enroll_graph::{Directory, GraphError, NewAssignment, NewInvitation};

use super::reconcile::locate_roster;
use super::{Attempt, StepError, StepOutput, Storage, World};
use enroll_core::audit::{Action, AuditRecord, Outcome, rfc3339};
use enroll_core::messages::{
    AssignPerson, ChangeContext, ChangeMessage, InvitePerson, RemovePerson, chunked,
};

/// The roster as it is now: its version, every address in it as a key, and where it
/// belongs (its package, and the mapping file that may pin it, protect people, or narrow
/// what it governs).
struct CurrentRoster {
    /// Its version now; the same as the message's when nothing changed since the plan.
    etag: String,
    keys: HashSet<String>,
    package: AccessPackage,
    mapping: Mapping,
}

impl CurrentRoster {
    /// Whether the roster is still the version the plan saw: then the plan's reading of the
    /// tenant stands, and a step writes without reading Graph first, Graph's own "already
    /// assigned" and "already removed" answers absorbing repeats.
    fn as_planned(&self, context: &ChangeContext) -> bool {
        self.etag == context.etag
    }
}

/// Reads the roster again and finds its package again; `Err(reason)` when it is gone,
/// invalid, or no longer belongs to the package the message was planned for, in which case
/// no step may act on its behalf (a broken or re-mapped roster must never turn into a
/// change).
async fn current_roster<S: Storage, D: Directory>(
    world: &World<S, D>,
    context: &ChangeContext,
) -> Result<Result<CurrentRoster, String>, StepError> {
    let name = context.roster.as_str();
    let Some(stored) = world.storage.roster(name).await? else {
        return Ok(Err(format!("roster {name} no longer exists")));
    };
    let roster = parse(name, &stored.bytes, world.config.limits);
    if !roster.is_valid() {
        return Ok(Err(format!(
            "roster {name} is now invalid ({} problem(s)); nothing is changed until it is fixed",
            roster.errors.len()
        )));
    }
    let located = match locate_roster(world, name, &super::PlanRequest::default()).await? {
        Ok(located) => located,
        Err(problem) => {
            return Ok(Err(format!(
                "roster {name} no longer belongs to one access package ({}: {}); nothing is changed",
                problem.code, problem.message
            )));
        }
    };
    if !located
        .package
        .id
        .eq_ignore_ascii_case(&context.access_package_id)
    {
        return Ok(Err(format!(
            "roster {name} now belongs to access package `{}` ({}), not to {}, the one this change was planned for; nothing is changed",
            located.package.display_name, located.package.id, context.access_package_id
        )));
    }
    Ok(Ok(CurrentRoster {
        etag: stored.etag,
        keys: roster.people.iter().map(|p| p.email_key()).collect(),
        package: located.package,
        mapping: located.mapping,
    }))
}

/// Collects audit records and people to try again while a step works through its people.
struct Ledger<'w, S, D> {
    world: &'w World<S, D>,
    context: &'w ChangeContext,
    action: Action,
    version: String,
    records: Vec<AuditRecord>,
    retry: Vec<(String, String)>,
    /// The longest wait Graph asked for among the people to retry.
    retry_after: Option<std::time::Duration>,
    gave_up: Vec<String>,
}

/// Who a record is about.
#[derive(Default)]
struct Whom<'a> {
    email: &'a str,
    user_id: Option<&'a str>,
    assignment_id: Option<&'a str>,
}

impl<'w, S: Storage, D: Directory> Ledger<'w, S, D> {
    fn new(world: &'w World<S, D>, context: &'w ChangeContext, action: Action) -> Self {
        Self {
            world,
            context,
            action,
            version: context.etag.clone(),
            records: Vec::new(),
            retry: Vec::new(),
            retry_after: None,
            gave_up: Vec::new(),
        }
    }

    fn record(
        &mut self,
        whom: Whom<'_>,
        outcome: Outcome,
        detail: impl Into<String>,
        request_id: Option<&str>,
    ) {
        self.records.push(AuditRecord {
            time: rfc3339((self.world.now)()),
            actor: self.world.config.actor.clone(),
            run_id: self.context.run_id.clone(),
            roster: self.context.roster.clone(),
            roster_version: self.version.clone(),
            access_package_id: Some(self.context.access_package_id.clone()),
            action: self.action,
            email: Some(whom.email.to_owned()),
            user_id: whom.user_id.map(str::to_owned),
            assignment_id: whom.assignment_id.map(str::to_owned),
            group_id: None,
            app_role_id: None,
            outcome,
            detail: Some(detail.into()),
            request_id: request_id.map(str::to_owned),
        });
    }

    /// Records that nothing is done for an address several users answer to: neither a
    /// second account nor a guess between them, as the plan skips them.
    fn skip_shared(&mut self, email: &str, users: &[User]) {
        self.record(
            Whom {
                email,
                ..Whom::default()
            },
            Outcome::Skipped,
            shared_address_reason(users),
            None,
        );
    }

    /// Records a Graph failure: retried later when that can help, failed for good otherwise.
    fn failure(&mut self, whom: Whom<'_>, error: &GraphError, attempt: Attempt) {
        let retry = attempt.may_retry(error.is_retryable());
        let outcome = if retry {
            Outcome::Retrying
        } else {
            Outcome::Failed
        };
        let detail = if error.is_retryable() && attempt.last {
            format!("gave up after {} tries: {error}", attempt.number)
        } else {
            error.to_string()
        };
        if retry {
            self.retry.push((whom.email.to_owned(), error.to_string()));
            self.retry_after = self.retry_after.max(error.retry_after());
        } else if error.is_retryable() {
            self.gave_up.push(whom.email.to_owned());
        }
        // The step's span names the run, roster, package and step; the audit trail names
        // the person.
        if retry {
            tracing::debug!(request_id = error.request_id(), %error, "a person will be tried again");
        } else {
            tracing::warn!(request_id = error.request_id(), %detail, "a person failed for good");
        }
        self.record(whom, outcome, detail, error.request_id());
    }

    /// Writes the records and turns people to retry into the step's error.
    async fn finish(self, mut output: StepOutput) -> Result<StepOutput, StepError> {
        self.world.storage.append_audit(&self.records).await?;
        let failed: Vec<&AuditRecord> = self
            .records
            .iter()
            .filter(|r| r.outcome == Outcome::Failed)
            .collect();
        if !failed.is_empty() {
            let (jsonl, markdown) = enroll_core::report::failure_lines(&failed);
            self.world
                .storage
                .append_failures(
                    &self.context.run_id,
                    &self.context.roster,
                    &jsonl,
                    &markdown,
                )
                .await?;
        }
        output.audit = self.records;
        output.gave_up = self.gave_up;
        match self.retry.first() {
            None => Ok(output),
            Some((email, reason)) => Err(StepError::PeopleToRetry {
                count: self.retry.len(),
                first: format!("{email}: {reason}"),
                emails: self.retry.iter().map(|(email, _)| email.clone()).collect(),
                retry_after: self.retry_after,
            }),
        }
    }
}

/// A person in a change message (Invite, Assign or Remove): what the audit trail says
/// about them, and the action their queue stands for.
pub trait Person {
    /// The action a message of these people asks for.
    const ACTION: Action;
    /// The person's address, as in the message.
    fn email(&self) -> &str;
    /// The user's object id, when the message knows it.
    fn user_id(&self) -> Option<&str> {
        None
    }
    /// The assignment concerned (Remove only).
    fn assignment_id(&self) -> Option<&str> {
        None
    }
}

impl Person for InvitePerson {
    const ACTION: Action = Action::Invite;
    fn email(&self) -> &str {
        &self.email
    }
}

impl Person for AssignPerson {
    const ACTION: Action = Action::Assign;
    fn email(&self) -> &str {
        &self.email
    }
    fn user_id(&self) -> Option<&str> {
        self.user_id.as_deref()
    }
}

impl Person for RemovePerson {
    const ACTION: Action = Action::Remove;
    fn email(&self) -> &str {
        &self.email
    }
    fn user_id(&self) -> Option<&str> {
        self.user_id.as_deref()
    }
    fn assignment_id(&self) -> Option<&str> {
        Some(&self.assignment_id)
    }
}

/// Who a record is about, from a person in a change message.
fn whom<P: Person>(person: &P) -> Whom<'_> {
    Whom {
        email: person.email(),
        user_id: person.user_id(),
        assignment_id: person.assignment_id(),
    }
}

/// Records a whole change message that is set aside (the poison queue, or a runner that
/// gives up on it): a `failed` audit record and a line in the run's failures report for
/// every person in it, so that nobody is given up on with only a log line to say so.
/// Returns the records written.
///
/// # Errors
/// [`StepError::Storage`] when the audit trail or the report cannot be written.
pub async fn record_set_aside<S: Storage, D: Directory, P: Person>(
    world: &World<S, D>,
    message: &ChangeMessage<P>,
    reason: &str,
) -> Result<Vec<AuditRecord>, StepError> {
    let mut ledger = Ledger::new(world, &message.context, P::ACTION);
    for person in &message.people {
        ledger.record(
            whom(person),
            Outcome::Failed,
            format!("set aside: {reason}"),
            None,
        );
    }
    tracing::warn!(
        run_id = %message.context.run_id,
        roster = %message.context.roster,
        people = message.people.len(),
        %reason,
        "a message was set aside; each of its people is recorded as failed"
    );
    Ok(ledger.finish(StepOutput::default()).await?.audit)
}

/// Starts a step on a message: the ledger, and the roster as it is now. When the roster
/// is gone or invalid, everyone is recorded as skipped and that finished output comes back
/// instead, because no step may act for a roster that cannot be read.
async fn open_ledger<'w, S: Storage, D: Directory, P: Person>(
    world: &'w World<S, D>,
    message: &'w ChangeMessage<P>,
    action: Action,
) -> Result<Result<(Ledger<'w, S, D>, CurrentRoster), StepOutput>, StepError> {
    let mut ledger = Ledger::new(world, &message.context, action);
    match current_roster(world, &message.context).await? {
        Ok(current) => {
            ledger.version = current.etag.clone();
            Ok(Ok((ledger, current)))
        }
        Err(reason) => {
            for person in &message.people {
                ledger.record(whom(person), Outcome::Skipped, reason.clone(), None);
            }
            ledger.finish(StepOutput::default()).await.map(Err)
        }
    }
}

/// Invite: invites each person as a guest unless a user with that address exists, then
/// hands everyone on to Assign.
///
/// # Errors
/// [`StepError`] when the whole message must be tried again.
#[tracing::instrument(name = "step", skip_all, fields(
    step = "invite",
    run_id = %message.context.run_id,
    roster = %message.context.roster,
    package = %message.context.access_package_id,
    attempt = attempt.number,
))]
pub async fn invite<S: Storage, D: Directory>(
    world: &World<S, D>,
    message: &ChangeMessage<InvitePerson>,
    attempt: Attempt,
) -> Result<StepOutput, StepError> {
    let (mut ledger, current) = match open_ledger(world, message, Action::Invite).await? {
        Ok(opened) => opened,
        Err(skipped) => return Ok(skipped),
    };
    let mut output = StepOutput::default();
    let mut wanted = Vec::new();
    for person in &message.people {
        let whom = Whom {
            email: &person.email,
            ..Whom::default()
        };
        if !current.keys.contains(&email_key(&person.email)) {
            ledger.record(whom, Outcome::Skipped, "no longer in the roster", None);
        } else if !world.config.invite_domains.allows(&person.email) {
            ledger.record(
                whom,
                Outcome::Skipped,
                "its domain is not one invitations may go to (ENROLL_INVITE_DOMAINS)",
                None,
            );
        } else {
            wanted.push(person);
        }
    }
    // Looked up even on the roster version the plan saw (where Assign writes unread): Graph does
    // not deduplicate invitations, and a person in several rosters of one run would otherwise
    // be invited once per roster; a lookup costs a third of an operation per person, an
    // invitation a whole one.
    let emails: Vec<&str> = wanted.iter().map(|p| p.email.as_str()).collect();
    let existing = world.graph.users_by_email(&emails).await?;
    let mut next = Vec::new();
    let mut invitations = Vec::new();
    for person in wanted {
        match existing
            .get(&email_key(&person.email))
            .map_or(&[][..], Vec::as_slice)
        {
            [user] => {
                ledger.record(
                    Whom {
                        email: &person.email,
                        user_id: Some(&user.id),
                        ..Whom::default()
                    },
                    Outcome::AlreadyDone,
                    "a user with this address exists; not invited again",
                    None,
                );
                next.push(AssignPerson {
                    email: person.email.clone(),
                    user_id: Some(user.id.clone()),
                });
            }
            [] => invitations.push(NewInvitation {
                invited_user_email_address: person.email.clone(),
                invite_redirect_url: world.config.invite_redirect_url.clone(),
                invited_user_display_name: Some(person.display_name.clone())
                    .filter(|n| !n.is_empty()),
                send_invitation_message: world.config.send_invitation_message,
            }),
            several => ledger.skip_shared(&person.email, several),
        }
    }
    for (email, result) in world.graph.invite(&invitations).await {
        match result {
            Ok(invitation) => {
                let user_id = invitation.invited_user.map(|user| user.id);
                ledger.record(
                    Whom {
                        email: &email,
                        user_id: user_id.as_deref(),
                        ..Whom::default()
                    },
                    Outcome::Done,
                    format!("invited (invitation {})", invitation.id),
                    None,
                );
                next.push(AssignPerson { email, user_id });
            }
            Err(error) if error.is_existing_user_invitation() => {
                ledger.record(
                    Whom {
                        email: &email,
                        ..Whom::default()
                    },
                    Outcome::AlreadyDone,
                    "already a user of the tenant",
                    error.request_id(),
                );
                next.push(AssignPerson {
                    email,
                    user_id: None,
                });
            }
            Err(error) => ledger.failure(
                Whom {
                    email: &email,
                    ..Whom::default()
                },
                &error,
                attempt,
            ),
        }
    }
    output.assign = chunked(&message.context, next);
    output.logs.push(format!(
        "{}: {} invited or found, {} to retry",
        message.context.roster,
        output.assign.iter().map(|m| m.people.len()).sum::<usize>(),
        ledger.retry.len()
    ));
    ledger.finish(output).await
}

/// Assign: asks for an assignment (`adminAdd`) for each person still in the roster who has
/// neither an active assignment nor an open request.
///
/// # Errors
/// [`StepError`] when the whole message must be tried again (for example a person invited a
/// moment ago whom entitlement management does not know yet).
#[tracing::instrument(name = "step", skip_all, fields(
    step = "assign",
    run_id = %message.context.run_id,
    roster = %message.context.roster,
    package = %message.context.access_package_id,
    attempt = attempt.number,
))]
pub async fn assign<S: Storage, D: Directory>(
    world: &World<S, D>,
    message: &ChangeMessage<AssignPerson>,
    attempt: Attempt,
) -> Result<StepOutput, StepError> {
    let context = &message.context;
    let (mut ledger, current) = match open_ledger(world, message, Action::Assign).await? {
        Ok(opened) => opened,
        Err(skipped) => return Ok(skipped),
    };
    let output = StepOutput::default();
    let Some(policy) = context.assignment_policy_id.clone() else {
        for person in &message.people {
            ledger.record(
                Whom {
                    email: &person.email,
                    ..Whom::default()
                },
                Outcome::Failed,
                "the plan named no assignment policy",
                None,
            );
        }
        return ledger.finish(output).await;
    };
    let still_wanted: Vec<&AssignPerson> = message
        .people
        .iter()
        .filter(|person| {
            let wanted = current.keys.contains(&email_key(&person.email));
            if !wanted {
                ledger.record(
                    Whom {
                        email: &person.email,
                        ..Whom::default()
                    },
                    Outcome::Skipped,
                    "no longer in the roster",
                    None,
                );
            }
            wanted
        })
        .collect();
    let unknown: Vec<&str> = still_wanted
        .iter()
        .filter(|p| p.user_id.is_none())
        .map(|p| p.email.as_str())
        .collect();
    let found = if unknown.is_empty() {
        BTreeMap::new()
    } else {
        world.graph.users_by_email(&unknown).await?
    };
    let mut targets: Vec<(&AssignPerson, String)> = Vec::new();
    for person in still_wanted {
        let users = found
            .get(&email_key(&person.email))
            .map_or(&[][..], Vec::as_slice);
        match (person.user_id.clone(), users) {
            (Some(user_id), _) => targets.push((person, user_id)),
            (None, [user]) => targets.push((person, user.id.clone())),
            (None, several @ [_, _, ..]) => ledger.skip_shared(&person.email, several),
            (None, []) => {
                let whom = Whom {
                    email: &person.email,
                    ..Whom::default()
                };
                if attempt.last {
                    ledger.record(
                        whom,
                        Outcome::Failed,
                        format!(
                            "gave up after {} tries: no user has this address yet",
                            attempt.number
                        ),
                        None,
                    );
                    ledger.gave_up.push(person.email.clone());
                } else {
                    ledger.record(whom, Outcome::Retrying, "no user has this address yet (a fresh invitation may take a while to replicate)", None);
                    ledger.retry.push((
                        person.email.clone(),
                        "not yet visible in the directory".into(),
                    ));
                }
            }
        }
    }
    let (holding, requested) = if current.as_planned(context) {
        (HashSet::new(), HashSet::new())
    } else {
        let user_ids: Vec<&str> = targets.iter().map(|(_, id)| id.as_str()).collect();
        let holding: HashSet<String> = world
            .graph
            .assignments_of_users(&context.access_package_id, &user_ids)
            .await?
            .into_iter()
            .filter_map(|a| a.target?.object_id)
            .collect();
        let requested: HashSet<String> = world
            .graph
            .open_assignment_requests(&context.access_package_id)
            .await?
            .into_iter()
            .filter(|r| r.is_add())
            .filter_map(|r| r.target_object_id().map(str::to_owned))
            .collect();
        (holding, requested)
    };
    let mut to_add = Vec::new();
    for (person, user_id) in &targets {
        let whom = Whom {
            email: &person.email,
            user_id: Some(user_id),
            ..Whom::default()
        };
        if holding.contains(user_id) {
            ledger.record(
                whom,
                Outcome::AlreadyDone,
                "already holds an active assignment",
                None,
            );
        } else if requested.contains(user_id) {
            ledger.record(
                whom,
                Outcome::AlreadyDone,
                "an assignment request is already open",
                None,
            );
        } else {
            to_add.push(NewAssignment {
                target_id: user_id.clone(),
                access_package_id: context.access_package_id.clone(),
                assignment_policy_id: policy.clone(),
            });
        }
    }
    let email_of: BTreeMap<&str, &str> = targets
        .iter()
        .map(|(p, id)| (id.as_str(), p.email.as_str()))
        .collect();
    for (added, result) in world.graph.add_assignments(&to_add).await {
        let email = email_of
            .get(added.target_id.as_str())
            .copied()
            .unwrap_or_default();
        let whom = Whom {
            email,
            user_id: Some(&added.target_id),
            ..Whom::default()
        };
        match result {
            Ok(request) => ledger.record(
                whom,
                Outcome::Done,
                format!("adminAdd requested (request {})", request.id),
                None,
            ),
            Err(error) if error.is_already_done() => ledger.record(
                whom,
                Outcome::AlreadyDone,
                error.to_string(),
                error.request_id(),
            ),
            Err(error) => ledger.failure(whom, &error, attempt),
        }
    }
    ledger.finish(output).await
}

/// Which assignments the roster governs: every one of its package, or (`ownPolicyOnly`)
/// only those under the policy enroll assigns with; when no such policy can be told, none.
fn governed_policy(current: &CurrentRoster) -> impl Fn(&Assignment) -> bool + '_ {
    let package = &current.package;
    let own_only = current.mapping.governs_own_policy_only(&package.id);
    let pinned = current.mapping.assignment_policies.get(&package.id);
    let own = choose_policy(package, pinned.map(String::as_str))
        .ok()
        .map(|policy| policy.id.as_str());
    move |assignment| {
        !own_only
            || own.is_some_and(|own| {
                assignment
                    .assignment_policy
                    .as_ref()
                    .is_some_and(|policy| policy.id.eq_ignore_ascii_case(own))
            })
    }
}

/// Remove: asks to remove (`adminRemove`) each assignment whose holder is still absent from
/// the roster and that is still active. A roster that is now invalid or gone removes nobody.
///
/// # Errors
/// [`StepError`] when the whole message must be tried again.
#[tracing::instrument(name = "step", skip_all, fields(
    step = "remove",
    run_id = %message.context.run_id,
    roster = %message.context.roster,
    package = %message.context.access_package_id,
    attempt = attempt.number,
))]
pub async fn remove<S: Storage, D: Directory>(
    world: &World<S, D>,
    message: &ChangeMessage<RemovePerson>,
    attempt: Attempt,
) -> Result<StepOutput, StepError> {
    let context = &message.context;
    let (mut ledger, current) = match open_ledger(world, message, Action::Remove).await? {
        Ok(opened) => opened,
        Err(skipped) => return Ok(skipped),
    };
    let output = StepOutput::default();
    let mut protected = world.config.protected.clone();
    protected.extend(current.mapping.protected_people.iter().map(String::as_str));
    // The holders, by id, for every address they are known by: whether one is back in the
    // roster, or protected, is always told from them.
    let user_ids: Vec<String> = message
        .people
        .iter()
        .filter_map(|p| p.user_id.clone())
        .collect();
    let users: BTreeMap<String, User> = world
        .graph
        .users_by_id(&user_ids)
        .await?
        .into_iter()
        .map(|user| (user.id.clone(), user))
        .collect();
    // With the roster as the plan saw it, the assignments the plan read stand: they go out
    // unread, and Graph's "already removed" answers absorb repeats. `ownPolicyOnly` needs
    // each assignment's policy, which the message does not carry, so then they are read.
    let as_planned = current.as_planned(context)
        && !current.mapping.governs_own_policy_only(&current.package.id);
    let active: BTreeMap<String, Assignment> = if as_planned {
        BTreeMap::new()
    } else {
        world
            .graph
            .assignments_of_users(&context.access_package_id, &user_ids)
            .await?
            .into_iter()
            .map(|assignment| (assignment.id.clone(), assignment))
            .collect()
    };
    let governed = governed_policy(&current);
    let mut to_remove = Vec::new();
    for person in &message.people {
        let whom = || Whom {
            email: &person.email,
            user_id: person.user_id.as_deref(),
            assignment_id: Some(&person.assignment_id),
        };
        // Every address the holder is known by; for a holder the directory cannot show (a
        // guest not replicated yet), the address the plan saw.
        let mut keys: Vec<String> = Vec::new();
        if !person.email.trim().is_empty() {
            keys.push(email_key(person.email.trim()));
        }
        if let Some(user) = person.user_id.as_ref().and_then(|id| users.get(id)) {
            keys.extend(user.addresses().map(|address| email_key(&address)));
        }
        if keys.is_empty() {
            ledger.record(
                whom(),
                Outcome::Skipped,
                KeptReason::Unidentified.describe(),
                None,
            );
            continue;
        }
        if keys.iter().any(|key| current.keys.contains(key)) {
            ledger.record(
                whom(),
                Outcome::Skipped,
                "back in the roster; not removed",
                None,
            );
            continue;
        }
        if protected.covers(person.user_id.as_deref(), &keys) {
            ledger.record(
                whom(),
                Outcome::Skipped,
                KeptReason::Protected.describe(),
                None,
            );
            continue;
        }
        if as_planned {
            to_remove.push(person);
            continue;
        }
        let assignment = if person.user_id.is_some() {
            active.get(&person.assignment_id).cloned()
        } else {
            world
                .graph
                .assignment(&person.assignment_id)
                .await?
                .filter(Assignment::is_active)
        };
        match assignment {
            None => ledger.record(
                whom(),
                Outcome::AlreadyDone,
                "the assignment is already gone",
                None,
            ),
            Some(assignment) if !governed(&assignment) => ledger.record(
                whom(),
                Outcome::Skipped,
                KeptReason::OtherPolicy.describe(),
                None,
            ),
            Some(_) => to_remove.push(person),
        }
    }
    let ids: Vec<String> = to_remove.iter().map(|p| p.assignment_id.clone()).collect();
    for (person, (_, result)) in to_remove
        .iter()
        .zip(world.graph.remove_assignments(&ids).await)
    {
        let whom = Whom {
            email: &person.email,
            user_id: person.user_id.as_deref(),
            assignment_id: Some(&person.assignment_id),
        };
        match result {
            Ok(request) => ledger.record(
                whom,
                Outcome::Done,
                format!("adminRemove requested (request {})", request.id),
                None,
            ),
            Err(error) if error.is_already_removed() => ledger.record(
                whom,
                Outcome::AlreadyDone,
                error.to_string(),
                error.request_id(),
            ),
            Err(error) => ledger.failure(whom, &error, attempt),
        }
    }
    ledger.finish(output).await
}

#[cfg(test)]
mod tests;
