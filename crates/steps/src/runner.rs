//! `enroll apply`: Plan and the steps in one process, concurrently and within Graph's
//! limits, with the same reports and audit trail as the Functions app.
//!
//! The runner plays the part storage queues play in Azure: it holds the messages, retries a
//! message whose step asks for it (after a delay that grows with each try), and gives up
//! after the same number of tries the queues make, recording the message as failed. A step
//! that stops without an answer (a panic) is given up on at once the same way: every person
//! in its message gets a `failed` audit record and a line in the run's failures report.
//! With an undo window ([`crate::StepConfig::removal_delay`]) it holds the Remove messages of
//! a plan until the window has passed, as the queue keeps them invisible, so a run waits
//! that long; the Remove step then reads the roster again, and a roster corrected meanwhile
//! keeps the person.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use crate::{Aside, Attempt, Change, Disposition, StepError, StepOutput, Storage, World};
use enroll_core::audit::{Action, AuditRecord, Outcome};
use enroll_core::messages::{Reason, ReconcileMessage};
use enroll_core::plan::{PackagePlan, PlanError};
use enroll_graph::Directory;

/// How a run goes.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The run's id (reports go under it).
    pub run_id: String,
    /// Stop after the plan.
    pub dry_run: bool,
    /// Let through plans that a removal guard would block (honoured only with `override_by`).
    pub allow_removals: bool,
    /// Let through plans that the addition guard would block (honoured only with `override_by`).
    pub allow_additions: bool,
    /// Who allows it, and why.
    pub override_by: Option<enroll_core::plan::Override>,
    /// Steps running at once (Graph calls are further limited by the client).
    pub concurrency: usize,
    /// Delay before the first retry of a message; doubles with each try.
    pub retry_delay: Duration,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            run_id: "run".into(),
            dry_run: false,
            allow_removals: false,
            allow_additions: false,
            override_by: None,
            concurrency: 8,
            retry_delay: Duration::from_secs(2),
        }
    }
}

/// Where the run is, for a progress display.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    /// Rosters planned, of all rosters.
    pub planned: (usize, usize),
    /// Messages finished, of all messages so far.
    pub messages: (usize, usize),
    /// Messages waiting to be tried again.
    pub retrying: usize,
    /// Remove messages held until the undo window has passed.
    pub held: usize,
}

/// A message the runner gave up on, as it would sit in a poison queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// Queue it came from.
    pub queue: &'static str,
    /// Roster.
    pub roster: String,
    /// People given up on (0 for a roster that could not be planned).
    pub people: usize,
    /// The last error.
    pub error: String,
}

impl RunSummary {
    /// Whether the run did everything the rosters ask for: every roster valid and planned,
    /// no package blocked, no message given up on. (Whether the tenant then matches is for
    /// the caller to check against the tenant.)
    pub fn applied_everything(&self) -> bool {
        self.errors.is_empty()
            && self.failures.is_empty()
            && self.plans.iter().all(|plan| plan.blocked.is_none())
    }

    /// What the run did not do, one phrase each (empty when it did everything): rosters not
    /// applied, packages blocked, messages given up on and the people in them.
    pub fn not_done(&self) -> Vec<String> {
        let mut not_done = Vec::new();
        let mut rejected: Vec<&str> = self.errors.iter().map(|e| e.roster.as_str()).collect();
        rejected.dedup();
        if !rejected.is_empty() {
            not_done.push(format!(
                "{} roster(s) not applied ({})",
                rejected.len(),
                rejected.join(", ")
            ));
        }
        let blocked: Vec<&str> = self
            .plans
            .iter()
            .filter(|plan| plan.blocked.is_some())
            .map(|plan| plan.roster.as_str())
            .collect();
        if !blocked.is_empty() {
            not_done.push(format!(
                "{} package(s) blocked, nothing changed for them ({})",
                blocked.len(),
                blocked.join(", ")
            ));
        }
        if !self.failures.is_empty() {
            not_done.push(format!(
                "{} message(s) failed for good, {} people given up on (see the failures report)",
                self.failures.len(),
                self.failures.iter().map(|f| f.people).sum::<usize>()
            ));
        }
        not_done
    }
}

/// What a run did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunSummary {
    /// The run id.
    pub run_id: String,
    /// Plans per package.
    pub plans: Vec<PackagePlan>,
    /// Rosters not planned, with why.
    pub errors: Vec<PlanError>,
    /// Final outcomes per (roster, action, outcome): people counted.
    pub outcomes: BTreeMap<(String, Action, Outcome), usize>,
    /// Messages given up on.
    pub failures: Vec<Failure>,
}

impl RunSummary {
    /// People with a given outcome of an action, over all rosters.
    pub fn count(&self, action: Action, outcome: Outcome) -> usize {
        self.outcomes
            .iter()
            .filter(|((_, a, o), _)| *a == action && *o == outcome)
            .map(|(_, n)| n)
            .sum()
    }

    fn tally(&mut self, records: &[AuditRecord]) {
        for record in records.iter().filter(|r| r.action != Action::Plan) {
            *self
                .outcomes
                .entry((record.roster.clone(), record.action, record.outcome))
                .or_default() += 1;
        }
    }
}

/// What a task that stopped without an answer said: its panic message, or that it was
/// cancelled.
fn stopped(error: tokio::task::JoinError) -> String {
    if !error.is_panic() {
        return "the step was cancelled before it finished".to_owned();
    }
    let panic = error.into_panic();
    let text = panic
        .downcast_ref::<&str>()
        .map(|text| (*text).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "no message".to_owned());
    format!("the step stopped unexpectedly (panic: {text})")
}

/// Runs Plan for every roster, then the steps, until no message is left.
///
/// # Errors
/// [`StepError`] when the rosters cannot be listed, or a roster cannot be planned even
/// after retries (nothing has changed in the tenant for that roster then).
pub async fn run<S: Storage + 'static, D: Directory>(
    world: Arc<World<S, D>>,
    options: &RunOptions,
    progress: impl Fn(Progress),
) -> Result<RunSummary, StepError> {
    let mut summary = RunSummary {
        run_id: options.run_id.clone(),
        ..RunSummary::default()
    };
    let mut state = Progress::default();
    let reconciles = crate::reconcile_all(&world, &options.run_id, Reason::Cli).await?;
    state.planned.1 = reconciles.len();
    progress(state);
    let mut planning = tokio::task::JoinSet::new();
    let mut planned_roster = HashMap::new();
    let limit = Arc::new(tokio::sync::Semaphore::new(options.concurrency.max(1)));
    for mut message in reconciles {
        message.allow_removals = options.allow_removals;
        message.allow_additions = options.allow_additions;
        message.override_by = options.override_by.as_ref().map(|o| o.by.clone());
        message.override_reason = options.override_by.as_ref().map(|o| o.reason.clone());
        let world = world.clone();
        let limit = limit.clone();
        let retry_delay = options.retry_delay;
        let roster = message.roster.clone();
        let task = planning.spawn(async move {
            let _permit = limit.acquire_owned().await;
            plan_with_retries(&world, &message, retry_delay).await
        });
        planned_roster.insert(task.id(), roster);
    }
    // Each message with its delivery number and the least wait before it (Graph's).
    let mut queue: VecDeque<(Change, u32, Duration)> = VecDeque::new();
    let mut outcomes = Vec::new();
    while let Some(joined) = planning.join_next_with_id().await {
        match joined {
            Ok((_, outcome)) => outcomes.push(outcome?),
            // A plan that stopped without an answer changed nothing: the roster is
            // recorded as failed and the other rosters go on.
            Err(error) => {
                let roster = planned_roster.remove(&error.id()).unwrap_or_default();
                let reason = stopped(error);
                crate::record_roster_set_aside(
                    &world,
                    Action::Plan,
                    &options.run_id,
                    &roster,
                    None,
                    &reason,
                )
                .await?;
                summary.failures.push(Failure {
                    queue: "reconcile",
                    roster,
                    people: 0,
                    error: reason,
                });
            }
        }
        state.planned.0 += 1;
        progress(state);
    }
    outcomes.sort_by(|a, b| roster_of(a).cmp(roster_of(b)));
    // Removals wait out the undo window from the end of planning, as a queue message sent
    // with that visibility timeout would.
    let window = world.config.removal_delay;
    let due = tokio::time::Instant::now() + window;
    let mut held: Vec<Change> = Vec::new();
    for outcome in outcomes {
        summary.errors.extend(outcome.errors);
        summary.plans.extend(outcome.plan);
        if !options.dry_run {
            for job in Change::all_of(outcome.output) {
                match job {
                    Change::Remove(_) if !window.is_zero() => held.push(job),
                    job => queue.push_back((job, 1, Duration::ZERO)),
                }
            }
        }
    }
    summary
        .errors
        .sort_by(|a, b| (&a.roster, a.line).cmp(&(&b.roster, b.line)));
    state.messages.1 = queue.len() + held.len();
    state.held = held.len();
    progress(state);
    let max_tries = world.config.max_dequeue_count.max(1);
    let mut running = tokio::task::JoinSet::new();
    // The message each running task works on, to record it if the task stops unanswered.
    let mut in_flight: HashMap<tokio::task::Id, Change> = HashMap::new();
    loop {
        if !held.is_empty() && tokio::time::Instant::now() >= due {
            queue.extend(held.drain(..).map(|job| (job, 1, Duration::ZERO)));
            state.held = 0;
            progress(state);
        }
        while running.len() < options.concurrency.max(1) {
            let Some((job, number, not_before)) = queue.pop_front() else {
                break;
            };
            let world = world.clone();
            let delay = if number > 1 {
                options.retry_delay * 2u32.saturating_pow(number - 2)
            } else {
                Duration::ZERO
            }
            .max(not_before);
            let kept = job.clone();
            let task = running.spawn(async move {
                tokio::time::sleep(delay).await;
                let attempt = Attempt::of(number, max_tries);
                let result = job.run(&world, attempt).await;
                (job, attempt, result)
            });
            in_flight.insert(task.id(), kept);
        }
        let joined = if held.is_empty() {
            running.join_next_with_id().await
        } else {
            tokio::select! {
                joined = running.join_next_with_id(), if !running.is_empty() => joined,
                () = tokio::time::sleep_until(due) => continue,
            }
        };
        let Some(joined) = joined else {
            break;
        };
        let (job, number, disposition, result) = match joined {
            Ok((id, (job, attempt, result))) => {
                in_flight.remove(&id);
                let disposition = crate::disposition(result.as_ref(), attempt);
                (job, attempt.number, disposition, Some(result))
            }
            Err(error) => {
                let Some(job) = in_flight.remove(&error.id()) else {
                    continue;
                };
                let disposition = Disposition::SetAside {
                    aside: Aside::Message,
                    reason: stopped(error),
                };
                (job, 0, disposition, None)
            }
        };
        if let Disposition::RetryLater { after, .. } = disposition {
            queue.push_back((job, number + 1, after.unwrap_or_default()));
        } else {
            finish(
                &world,
                &mut summary,
                &mut state,
                &mut queue,
                job,
                disposition,
                result,
            )
            .await?;
        }
        state.retrying = queue.iter().filter(|(_, n, _)| *n > 1).count();
        progress(state);
    }
    Ok(summary)
}

/// Carries out what [`crate::disposition`] decided for a message that is not tried again:
/// records what is set aside, and queues what the step handed on.
async fn finish<S: Storage, D: Directory>(
    world: &World<S, D>,
    summary: &mut RunSummary,
    state: &mut Progress,
    queue: &mut VecDeque<(Change, u32, Duration)>,
    job: Change,
    disposition: Disposition,
    result: Option<Result<StepOutput, StepError>>,
) -> Result<(), StepError> {
    if let Disposition::SetAside { aside, reason } = disposition {
        let (roster, people) = (job.roster().to_owned(), job.people());
        let (people, error) = match aside {
            Aside::Message => {
                let records = job.record_set_aside(world, &reason).await?;
                summary.tally(&records);
                (people, reason)
            }
            Aside::People(emails) => (emails.len(), format!("{reason}: {}", emails.join(", "))),
        };
        summary.failures.push(Failure {
            queue: job.queue(),
            roster,
            people,
            error,
        });
    }
    // Done, or set aside in part: what the step finished goes on.
    if let Some(Ok(output)) = result {
        summary.tally(&output.audit);
        let follow: Vec<Change> = Change::all_of(output).collect();
        state.messages.1 += follow.len();
        queue.extend(follow.into_iter().map(|job| (job, 1, Duration::ZERO)));
    }
    state.messages.0 += 1;
    Ok(())
}

fn roster_of(outcome: &crate::PlanOutcome) -> &str {
    outcome
        .plan
        .as_ref()
        .map(|p| p.roster.as_str())
        .or_else(|| outcome.errors.first().map(|e| e.roster.as_str()))
        .unwrap_or_default()
}

async fn plan_with_retries<S: Storage, D: Directory>(
    world: &World<S, D>,
    message: &ReconcileMessage,
    retry_delay: Duration,
) -> Result<crate::PlanOutcome, StepError> {
    let tries = world.config.max_dequeue_count.max(1);
    let mut delay = retry_delay;
    let mut number = 1;
    loop {
        let result = crate::plan_roster(world, message).await;
        let attempt = Attempt::of(number, tries);
        match crate::disposition(result.as_ref().map(|o| &o.output), attempt) {
            Disposition::RetryLater { after, .. } => {
                tokio::time::sleep(delay.max(after.unwrap_or_default())).await;
                delay *= 2;
                number += 1;
            }
            // Set aside: a roster that cannot be planned fails the run (nothing changed).
            Disposition::Done | Disposition::SetAside { .. } => return result,
        }
    }
}

#[cfg(test)]
mod tests;
