//! The Plan step (queue `reconcile`) and the Scheduled step's fan-out.

use enroll_core::plan::{
    LocateError, Mapping, Override, PackagePlan, PlanError, TenantIndex, addresses_to_look_up,
    holders_to_read, locate_all, plan_package,
};
use enroll_core::report::{package_markdown, rejected_markdown};
use enroll_core::roster::{ValidRoster, parse};
use std::collections::BTreeMap;

use enroll_core::tenant::{
    AccessPackage, Assignment, AssignmentRequest, Catalog, TenantSnapshot, User,
};
use enroll_graph::{Directory, PackageRequests};

use super::{StepError, StepOutput, Storage, StorageError, World};
use enroll_core::audit::{Action, AuditRecord, Outcome, rfc3339};
use enroll_core::messages::{Reason, ReconcileMessage, VERSION, change_messages};

/// What planning one roster gave.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PlanOutcome {
    /// The package plan, when the roster could be planned.
    pub plan: Option<PackagePlan>,
    /// Why it could not be, otherwise.
    pub errors: Vec<PlanError>,
    /// Follow-up messages and logs.
    pub output: StepOutput,
}

/// The reconcile message for a blob written to the rosters container, or `None` when the
/// blob is not a roster (the mapping file, for example).
pub fn reconcile_for_upload(
    name: &str,
    etag: Option<String>,
    now: std::time::SystemTime,
) -> Option<ReconcileMessage> {
    enroll_core::roster::is_roster_name(name).then(|| ReconcileMessage {
        v: VERSION,
        run_id: super::new_run_id(now),
        roster: name.to_owned(),
        etag,
        reason: Reason::Upload,
        allow_removals: false,
        allow_additions: false,
        override_by: None,
        override_reason: None,
    })
}

/// One reconcile message per roster in storage (the nightly timer, or a full API run).
///
/// # Errors
/// [`StepError::Storage`] when the rosters cannot be listed.
pub async fn reconcile_all<S: Storage, D: Directory>(
    world: &World<S, D>,
    run_id: &str,
    reason: Reason,
) -> Result<Vec<ReconcileMessage>, StepError> {
    let names = world.storage.roster_names().await?;
    Ok(names
        .into_iter()
        .map(|roster| ReconcileMessage {
            v: VERSION,
            run_id: run_id.to_owned(),
            roster,
            etag: None,
            reason,
            allow_removals: false,
            allow_additions: false,
            override_by: None,
            override_reason: None,
        })
        .collect())
}

fn roster_error(roster: &str, code: &str, message: String) -> PlanError {
    PlanError {
        roster: roster.to_owned(),
        line: None,
        column: None,
        code: code.to_owned(),
        message,
    }
}

/// The catalog a roster is matched in: its first folder, else the configured one.
fn catalog_name<'a>(roster: &'a str, configured: Option<&'a str>) -> Option<&'a str> {
    match roster.split_once('/') {
        Some((folder, _)) if !folder.is_empty() => Some(folder),
        _ => configured,
    }
}

/// The access packages a roster can belong to, with their catalog filled in; read from
/// Graph at most every [`super::world::PACKAGE_CACHE_TTL`].
async fn candidate_packages<S: Storage, D: Directory>(
    world: &World<S, D>,
    catalog: Option<&str>,
) -> Result<Result<(Vec<AccessPackage>, Vec<Catalog>), String>, StepError> {
    let key = catalog.map(str::to_ascii_lowercase);
    let mut cache = world.packages.lock().await;
    if let Some((read, packages, catalogs)) = cache.get(&key)
        && read.elapsed() < super::world::PACKAGE_CACHE_TTL
    {
        return Ok(Ok((packages.clone(), catalogs.clone())));
    }
    let found = read_packages(world, catalog).await?;
    if let Ok((packages, catalogs)) = &found {
        cache.insert(
            key,
            (
                std::time::Instant::now(),
                packages.clone(),
                catalogs.clone(),
            ),
        );
    }
    Ok(found)
}

async fn read_packages<S: Storage, D: Directory>(
    world: &World<S, D>,
    catalog: Option<&str>,
) -> Result<Result<(Vec<AccessPackage>, Vec<Catalog>), String>, StepError> {
    let Some(catalog) = catalog else {
        return Ok(Ok((world.graph.access_packages(None).await?, Vec::new())));
    };
    let catalogs = world.graph.catalogs().await?;
    let Some(found) = catalogs.iter().find(|known| {
        known.id.eq_ignore_ascii_case(catalog)
            || known
                .display_name
                .as_deref()
                .is_some_and(|name| name.eq_ignore_ascii_case(catalog))
    }) else {
        return Ok(Err(format!(
            "no access package catalog is named `{catalog}` ({} catalogs in the tenant)",
            catalogs.len()
        )));
    };
    let mut packages = world.graph.access_packages(Some(&found.id)).await?;
    for package in &mut packages {
        package.catalog.get_or_insert_with(|| found.clone());
    }
    Ok(Ok((packages, vec![found.clone()])))
}

async fn read_mapping<S: Storage, D: Directory>(
    world: &World<S, D>,
) -> Result<Result<Mapping, String>, StorageError> {
    Ok(match world.storage.mapping().await? {
        None => Ok(Mapping::default()),
        Some(bytes) => serde_json::from_slice(&bytes).map_err(|error| {
            format!("the mapping file access-packages.json is not valid: {error}")
        }),
    })
}

/// Where a roster belongs as things are now: its access package, the mapping file, and the
/// catalog searched.
pub(crate) struct Located {
    /// The access package the roster belongs to.
    pub(crate) package: AccessPackage,
    /// The mapping file as read (empty when there is none).
    pub(crate) mapping: Mapping,
    /// The catalog searched, when the roster names one.
    pub(crate) catalogs: Vec<Catalog>,
}

/// Finds the access package a roster belongs to now, by the same rules the plan uses (the
/// mapping file, the catalog, every other roster's claim). `Err` is why it belongs to no
/// single package (a problem for the report, not a failure of the step).
///
/// # Errors
/// [`StepError`] when storage or Graph fail; trying again can help.
pub(crate) async fn locate_roster<S: Storage, D: Directory>(
    world: &World<S, D>,
    roster: &str,
    request: &PlanRequest,
) -> Result<Result<Located, PlanError>, StepError> {
    let mut mapping = match read_mapping(world).await? {
        Ok(mapping) => mapping,
        Err(problem) => return Ok(Err(roster_error(roster, "invalid_mapping", problem))),
    };
    if let Some(id) = &request.access_package_id {
        mapping
            .access_packages
            .insert(roster.to_owned(), id.clone());
    }
    let catalog = catalog_name(roster, world.config.catalog.as_deref());
    let (packages, catalogs) = match candidate_packages(world, catalog).await? {
        Ok(found) => found,
        Err(problem) => return Ok(Err(roster_error(roster, "no_matching_catalog", problem))),
    };
    let mut names = if request.alone {
        Vec::new()
    } else {
        world.storage.roster_names().await?
    };
    if !names.iter().any(|name| name == roster) {
        names.push(roster.to_owned());
    }
    let candidates = TenantSnapshot {
        access_packages: packages,
        catalogs: catalogs.clone(),
        ..TenantSnapshot::default()
    };
    let name_refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let located = locate_all(
        &name_refs,
        &candidates,
        &mapping,
        world.config.catalog.as_deref(),
    );
    let position = names.iter().position(|name| name == roster);
    Ok(
        match position.and_then(|index| located.into_iter().nth(index)) {
            Some(Ok(package)) => Ok(Located {
                package: package.clone(),
                mapping,
                catalogs,
            }),
            Some(Err(error)) => Err(locate_error(roster, &error)),
            // The roster was pushed onto the names above, so it has a position.
            None => Err(roster_error(
                roster,
                "no_matching_package",
                format!("roster {roster} was not found among the rosters"),
            )),
        },
    )
}

/// Plans one roster: reads it (by ETag) and the tenant, applies the guards, writes the
/// report and audit record, and returns the change messages (none when blocked or invalid).
///
/// # Errors
/// [`StepError`] when storage or Graph fail for the whole roster; retrying can help then.
#[tracing::instrument(name = "step", skip_all, fields(
    step = "plan",
    run_id = %message.run_id,
    roster = %message.roster,
))]
pub async fn plan_roster<S: Storage, D: Directory>(
    world: &World<S, D>,
    message: &ReconcileMessage,
) -> Result<PlanOutcome, StepError> {
    let mut outcome = PlanOutcome::default();
    let Some(stored) = world.storage.roster(&message.roster).await? else {
        outcome.output.logs.push(format!(
            "roster {} no longer exists; nothing to do (a deleted roster removes nobody)",
            message.roster
        ));
        return Ok(outcome);
    };
    let roster = parse(&message.roster, &stored.bytes, world.config.limits);
    let record = |outcome: Outcome, package: Option<&str>, detail: String| AuditRecord {
        access_package_id: package.map(str::to_owned),
        ..roster_record(
            world,
            Action::Plan,
            &message.run_id,
            &message.roster,
            &stored.etag,
            outcome,
            detail,
        )
    };
    let valid = match roster.validated() {
        Ok(valid) => valid,
        Err(invalid) => {
            outcome.errors = invalid
                .errors
                .iter()
                .map(|problem| enroll_core::plan::roster_error(&message.roster, problem))
                .collect();
            return reject(world, message, &stored.etag, outcome, record).await;
        }
    };
    let request = PlanRequest {
        override_by: Override::new(
            message.override_by.as_deref(),
            message.override_reason.as_deref(),
        ),
        allow_removals: message.allow_removals,
        allow_additions: message.allow_additions,
        ..PlanRequest::default()
    };
    let located = match locate_roster(world, &message.roster, &request).await? {
        Ok(located) => located,
        Err(error) => {
            outcome.errors = vec![error];
            return reject(world, message, &stored.etag, outcome, record).await;
        }
    };
    let (plan, reprocessed) =
        plan_located(world, valid, &stored.etag, located, &request, Some(message)).await?;
    let package = plan.access_package.clone();
    let messages = change_messages(&plan, &message.run_id, &message.roster);
    let summary = plan_summary(&plan);
    let json = serde_json::to_vec_pretty(&plan).unwrap_or_default();
    let markdown = package_markdown(&plan) + &super::reprocess::markdown(&reprocessed);
    world
        .storage
        .put_report(&message.run_id, &message.roster, &json, &markdown)
        .await?;
    let kind = if plan.blocked.is_some() {
        Outcome::Rejected
    } else {
        Outcome::Done
    };
    let planned = record(kind, Some(&package.id), summary.clone());
    world
        .storage
        .append_audit(std::slice::from_ref(&planned))
        .await?;
    outcome.output.audit.extend(reprocessed);
    outcome.output.audit.push(planned);
    outcome.output.logs.push(format!(
        "{} -> {} ({}): {summary}",
        message.roster, package.display_name, package.id
    ));
    outcome.output.invite = messages.invite;
    outcome.output.assign = messages.assign;
    outcome.output.remove = messages.remove;
    outcome.plan = Some(plan);
    Ok(outcome)
}

/// How a roster is planned beyond the world's settings: by the Plan step from its message,
/// or by the HTTP API's dry run ([`plan_bytes`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlanRequest {
    /// The access package the roster is for, by id, whatever its name says (as a mapping
    /// file's pin).
    pub access_package_id: Option<String>,
    /// Let through plans that a removal guard would block (honoured only with `override_by`).
    pub allow_removals: bool,
    /// Let through plans that the addition guard would block (honoured only with `override_by`).
    pub allow_additions: bool,
    /// Who allows an override, and why; without it the plan records the override as refused.
    pub override_by: Option<Override>,
    /// Plan the roster alone, without the stored rosters: no `several_rosters` check
    /// against them (for a roster named only by its package).
    pub alone: bool,
}

/// Reads what the plan of a located roster needs from the tenant (the package's
/// assignments and open requests, by id the holders the roster does not name, and under
/// every address the roster people no holder answers to) and plans it. For the Plan step's
/// `message`, the package's requests that failed or are stuck are reprocessed too
/// ([`super::reprocess`]), the holders read again when any was, and their audit records
/// come back with the plan.
///
/// # Errors
/// [`StepError`] when Graph fails; trying again can help.
async fn plan_located<S: Storage, D: Directory>(
    world: &World<S, D>,
    valid: ValidRoster<'_>,
    version: &str,
    located: Located,
    request: &PlanRequest,
    message: Option<&ReconcileMessage>,
) -> Result<(PackagePlan, Vec<AuditRecord>), StepError> {
    let Located {
        package,
        mapping,
        catalogs,
    } = located;
    let ((requests, reprocessed), (mut assignments, mut users)) = tokio::try_join!(
        open_requests(world, &package.id, version, message),
        holders_and_people(world, &package.id, &valid),
    )?;
    if reprocessed.iter().any(|r| r.outcome == Outcome::Done) {
        // What was reprocessed is under way now: read its holders again for the plan to
        // count it (rare: most plans reprocess nothing, and read both at once).
        (assignments, users) = holders_and_people(world, &package.id, &valid).await?;
    }
    let tenant = TenantSnapshot {
        users: users.into_values().collect(),
        access_packages: vec![package.clone()],
        assignments,
        assignment_requests: requests,
        catalogs,
        ..TenantSnapshot::default()
    };
    let mut options = world.plan_options(mapping);
    // An override is honoured only with who and why; the plan says when one is refused.
    options.guards.allow_removals |= request.allow_removals;
    options.guards.allow_additions |= request.allow_additions;
    options.override_by = request.override_by.clone();
    let plan = plan_package(
        valid,
        version,
        &package,
        &TenantIndex::new(&tenant),
        &options,
    );
    Ok((plan, reprocessed))
}

/// A package's open requests, read as the Plan step reads them whether or not it acts
/// ([`Directory::package_requests`]: the states enroll's own requests pass through), so that
/// a plan that changes nothing says what the Plan step would do; for the Plan step's
/// `message`, those that failed or are stuck are reprocessed.
///
/// # Errors
/// [`StepError`] when Graph or storage fail.
async fn open_requests<S: Storage, D: Directory>(
    world: &World<S, D>,
    package_id: &str,
    version: &str,
    message: Option<&ReconcileMessage>,
) -> Result<(Vec<AssignmentRequest>, Vec<AuditRecord>), StepError> {
    let PackageRequests { open, unfinished } = world.graph.package_requests(package_id).await?;
    let Some(message) = message else {
        return Ok((open, Vec::new()));
    };
    let reprocessed =
        super::reprocess::stuck_requests(world, message, version, package_id, unfinished).await?;
    Ok((open, reprocessed))
}

/// A package's assignments, and the users a plan of it needs: by id, the holders whose
/// assignment is recorded under none of the roster's addresses ([`holders_to_read`]: the
/// ones the plan may remove, so that it knows every address each is known by, and reports a
/// holder the directory does not know instead of removing them); then, by address in every
/// form, only the roster's people no active holder answers to ([`addresses_to_look_up`]:
/// looking up the others could not change the plan).
///
/// # Errors
/// [`StepError`] when Graph fails.
async fn holders_and_people<S: Storage, D: Directory>(
    world: &World<S, D>,
    package_id: &str,
    valid: &ValidRoster<'_>,
) -> Result<(Vec<Assignment>, BTreeMap<String, User>), StepError> {
    let assignments = world.graph.assignments(package_id).await?;
    let roster = || valid.people().iter().map(|p| p.email.as_str());
    let holder_ids = holders_to_read(roster(), &assignments);
    let holders = if holder_ids.is_empty() {
        Vec::new()
    } else {
        world.graph.users_by_id(&holder_ids).await?
    };
    let unknown = addresses_to_look_up(roster(), &assignments, &holders);
    let mut users: BTreeMap<String, User> = holders
        .into_iter()
        .map(|user| (user.id.clone(), user))
        .collect();
    for user in world
        .graph
        .users_by_email(&unknown)
        .await?
        .into_values()
        .flatten()
    {
        users.insert(user.id.clone(), user);
    }
    Ok((assignments, users))
}

/// Plans one roster's bytes against the tenant, as the Plan step does, and writes and
/// changes nothing (no report, no audit record, no reprocessing): the package plan with its
/// guards, or every problem that keeps the roster from being planned (roster errors with
/// line and column, an invalid mapping file, no or several matching packages, two rosters
/// for one package).
///
/// # Errors
/// [`StepError`] when storage or Graph fail; retrying can help then.
pub async fn plan_bytes<S: Storage, D: Directory>(
    world: &World<S, D>,
    roster_name: &str,
    bytes: &[u8],
    version: &str,
    request: &PlanRequest,
) -> Result<Result<PackagePlan, Vec<PlanError>>, StepError> {
    let roster = parse(roster_name, bytes, world.config.limits);
    let valid = match roster.validated() {
        Ok(valid) => valid,
        Err(invalid) => {
            return Ok(Err(invalid
                .errors
                .iter()
                .map(|problem| enroll_core::plan::roster_error(roster_name, problem))
                .collect()));
        }
    };
    let located = match locate_roster(world, roster_name, request).await? {
        Ok(located) => located,
        Err(error) => return Ok(Err(vec![error])),
    };
    Ok(Ok(plan_located(
        world, valid, version, located, request, None,
    )
    .await?
    .0))
}

/// Records a Plan or MapRoles message that is set aside (the poison queue, or a runner that
/// gives up on it): a `failed` audit record for the roster (or manifest) and a line in the
/// run's failures report, because nothing of it was applied.
///
/// # Errors
/// [`StepError::Storage`] when the audit trail or the report cannot be written.
pub async fn record_roster_set_aside<S: Storage, D: Directory>(
    world: &World<S, D>,
    action: Action,
    run_id: &str,
    roster: &str,
    version: Option<&str>,
    reason: &str,
) -> Result<AuditRecord, StepError> {
    let record = roster_record(
        world,
        action,
        run_id,
        roster,
        version.unwrap_or_default(),
        Outcome::Failed,
        format!("set aside, nothing applied: {reason}"),
    );
    world
        .storage
        .append_audit(std::slice::from_ref(&record))
        .await?;
    let (jsonl, markdown) = enroll_core::report::failure_lines(&[&record]);
    world
        .storage
        .append_failures(run_id, roster, &jsonl, &markdown)
        .await?;
    tracing::warn!(run_id, roster, %reason, "set aside; recorded as failed");
    Ok(record)
}

/// The answer to a roster upload too large for the handler to take in: the roster is
/// rejected with `too_large` (report and audit record, as Plan rejects an invalid roster),
/// and nothing is changed for it.
///
/// # Errors
/// [`StepError::Storage`] when the report or the audit trail cannot be written.
pub async fn roster_too_large<S: Storage, D: Directory>(
    world: &World<S, D>,
    run_id: &str,
    roster: &str,
    version: Option<&str>,
    size: u64,
) -> Result<PlanOutcome, StepError> {
    let message = ReconcileMessage {
        v: VERSION,
        run_id: run_id.to_owned(),
        roster: roster.to_owned(),
        etag: version.map(str::to_owned),
        reason: Reason::Upload,
        allow_removals: false,
        allow_additions: false,
        override_by: None,
        override_reason: None,
    };
    let version = version.unwrap_or_default();
    let limit = world.config.limits.max_bytes;
    let outcome = PlanOutcome {
        errors: vec![roster_error(
            roster,
            "too_large",
            format!(
                "the upload is {size} bytes or more, over the {} MiB a roster may have; nothing was read",
                limit / (1024 * 1024)
            ),
        )],
        ..PlanOutcome::default()
    };
    let record = |outcome: Outcome, package: Option<&str>, detail: String| AuditRecord {
        access_package_id: package.map(str::to_owned),
        ..roster_record(
            world,
            Action::Plan,
            run_id,
            roster,
            version,
            outcome,
            detail,
        )
    };
    reject(world, &message, version, outcome, record).await
}

/// An audit record about a roster (or manifest) as a whole, not a person.
fn roster_record<S, D>(
    world: &World<S, D>,
    action: Action,
    run_id: &str,
    roster: &str,
    version: &str,
    outcome: Outcome,
    detail: String,
) -> AuditRecord {
    AuditRecord {
        time: rfc3339((world.now)()),
        actor: world.config.actor.clone(),
        run_id: run_id.to_owned(),
        roster: roster.to_owned(),
        roster_version: version.to_owned(),
        access_package_id: None,
        action,
        email: None,
        user_id: None,
        assignment_id: None,
        group_id: None,
        app_role_id: None,
        outcome,
        detail: Some(detail),
        request_id: None,
    }
}

/// The plan in one line for the log and the audit trail: the counts, why it is blocked, the
/// override with who and why (or why one was refused), the people kept, and when removals
/// happen.
fn plan_summary(plan: &PackagePlan) -> String {
    let mut summary = format!(
        "invite {}, assign {}, remove {}, unchanged {}",
        plan.invite.len(),
        plan.assign.len(),
        plan.remove.len(),
        plan.unchanged,
    );
    let mut add = |part: Option<String>| {
        if let Some(part) = part {
            summary.push_str("; ");
            summary.push_str(&part);
        }
    };
    add(plan
        .blocked_message
        .as_deref()
        .map(|why| format!("blocked: {why}")));
    add(plan.override_note());
    add(plan
        .override_refused
        .as_deref()
        .map(|why| format!("override refused: {why}")));
    add((!plan.kept.is_empty()).then(|| format!("kept {} not in the roster", plan.kept.len())));
    add(plan
        .remove
        .iter()
        .find_map(|r| r.not_before.as_deref())
        .map(|time| format!("removals not before {time}")));
    summary
}

fn locate_error(roster: &str, error: &LocateError) -> PlanError {
    roster_error(roster, error.code(), error.to_string())
}

async fn reject<S: Storage, D: Directory>(
    world: &World<S, D>,
    message: &ReconcileMessage,
    version: &str,
    mut outcome: PlanOutcome,
    record: impl Fn(Outcome, Option<&str>, String) -> AuditRecord,
) -> Result<PlanOutcome, StepError> {
    let json = serde_json::to_vec_pretty(&serde_json::json!({
        "roster": message.roster,
        "rosterVersion": version,
        "errors": outcome.errors,
    }))
    .unwrap_or_default();
    world
        .storage
        .put_report(
            &message.run_id,
            &message.roster,
            &json,
            &rejected_markdown(&message.roster, version, &outcome.errors),
        )
        .await?;
    let first = outcome
        .errors
        .first()
        .map(|e| e.message.clone())
        .unwrap_or_default();
    let detail = format!(
        "roster not applied, nothing changed: {} problem(s); first: {first}",
        outcome.errors.len()
    );
    let rejected = record(Outcome::Rejected, None, detail.clone());
    world
        .storage
        .append_audit(std::slice::from_ref(&rejected))
        .await?;
    outcome.output.audit.push(rejected);
    outcome
        .output
        .logs
        .push(format!("{}: {detail}", message.roster));
    Ok(outcome)
}

#[cfg(test)]
mod tests;
