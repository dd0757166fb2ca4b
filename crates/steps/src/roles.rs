//! The MapRoles step (queue `map-roles`): brings an application's app roles and the group
//! app role assignments in line with a manifest.
//!
//! Level-triggered like the other steps: every run re-reads the manifest, its mapping file
//! and the tenant, plans ([`enroll_core::roles::plan_roles`]) and makes only the changes still
//! needed, so a message delivered twice, late, or after someone changed the tenant by hand
//! leaves the tenant right. An assignment Graph says exists already counts as done.

use serde::Serialize;

use enroll_core::roles::{
    GroupKey, ParsedMapping, RoleCode, RoleProblem, RolesOptions, RolesPlan, RolesTenant,
    UpdateStep, mapping_name_for, parse_manifest, parse_mapping, plan_markdown, plan_roles,
    rejected_markdown, role_targets,
};
use enroll_graph::{Directory, GraphError, NewGroupAppRoleAssignment};

use super::{Attempt, StepError, StepOutput, Storage, World};
use enroll_core::audit::{Action, AuditRecord, Outcome, rfc3339};
use enroll_core::messages::{MapRolesMessage, Reason, VERSION};

/// What reading a manifest and the tenant gave.
#[derive(Debug, Clone, PartialEq)]
pub enum RolesRead {
    /// The manifest does not exist (any more): nothing to do.
    Missing,
    /// The manifest, its mapping or the tenant keep it from being applied; nothing changes.
    Rejected {
        /// The manifest version read.
        version: String,
        /// Every problem.
        errors: Vec<RoleProblem>,
    },
    /// The plan.
    Planned(Box<RolesPlan>),
}

/// What one MapRoles run did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RolesOutcome {
    /// The plan, when the manifest could be planned.
    pub plan: Option<RolesPlan>,
    /// Why it could not be, otherwise.
    pub errors: Vec<RoleProblem>,
    /// Logs and the audit records written (one per change made or decided).
    pub output: StepOutput,
}

/// The report of a run: the plan and what became of each change.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct RolesReport<'a> {
    #[serde(flatten)]
    plan: &'a RolesPlan,
    results: &'a [AuditRecord],
}

/// Where a manifest's report goes: `manifests/{stem}` (one path segment per store).
fn report_key(manifest: &str) -> String {
    let stem = if manifest.to_ascii_lowercase().ends_with(".json") {
        &manifest[..manifest.len() - ".json".len()]
    } else {
        manifest
    };
    format!("manifests/{stem}")
}

/// One map-roles message per manifest in storage (the nightly timer).
///
/// # Errors
/// [`StepError::Storage`] when the manifests cannot be listed.
pub async fn map_roles_all<S: Storage, D: Directory>(
    world: &World<S, D>,
    run_id: &str,
    reason: Reason,
) -> Result<Vec<MapRolesMessage>, StepError> {
    Ok(world
        .storage
        .manifest_names()
        .await?
        .into_iter()
        .map(|manifest| MapRolesMessage {
            v: VERSION,
            run_id: run_id.to_owned(),
            manifest,
            etag: None,
            reason,
            allow_role_removals: false,
        })
        .collect())
}

fn rejected(version: &str, errors: Vec<RoleProblem>) -> RolesRead {
    RolesRead::Rejected {
        version: version.to_owned(),
        errors,
    }
}

/// Reads the manifest, its mapping file (`{stem}.mapping.json`) and the tenant, and plans.
/// Changes nothing and writes nothing.
///
/// # Errors
/// [`StepError`] when storage or Graph fail; retrying can help then.
pub async fn plan_manifest<S: Storage, D: Directory>(
    world: &World<S, D>,
    name: &str,
    allow_role_removals: bool,
) -> Result<RolesRead, StepError> {
    let Some(stored) = world.storage.manifest(name).await? else {
        return Ok(RolesRead::Missing);
    };
    let version = stored.etag.as_str();
    let manifest = match parse_manifest(name, &stored.bytes, Some(version)).validated() {
        Ok(manifest) => manifest,
        Err(errors) => return Ok(rejected(version, errors)),
    };
    let mapping_name = mapping_name_for(name);
    let mapping = match world.storage.manifest(&mapping_name).await? {
        None => ParsedMapping::none(),
        Some(file) => match parse_mapping(&mapping_name, &file.bytes) {
            Ok(mapping) => mapping,
            Err(errors) => return Ok(rejected(version, errors)),
        },
    };
    let targets = match role_targets(&manifest, &mapping, &world.config.group_pattern) {
        Ok(targets) => targets,
        Err(errors) => return Ok(rejected(version, errors)),
    };
    let Some(app_id) = manifest.app_id.clone().or(world.config.app_id.clone()) else {
        return Ok(rejected(
            version,
            vec![RoleProblem::new(
                name,
                RoleCode::MissingAppId,
                "no application is named: put \"appId\": \"<client id>\" into the manifest or set ENROLL_APP_ID (--app-id)",
            )],
        ));
    };
    let Some(application) = world.graph.application_by_app_id(&app_id).await? else {
        return Ok(rejected(
            version,
            vec![RoleProblem::new(
                name,
                RoleCode::ApplicationNotFound,
                format!("no application registration has the client id {app_id}"),
            )],
        ));
    };
    let service_principal = world.graph.service_principal_by_app_id(&app_id).await?;
    let mut names: Vec<&str> = Vec::new();
    let mut ids: Vec<&str> = Vec::new();
    for target in &targets {
        match &target.group {
            GroupKey::DisplayName(name) if !names.contains(&name.as_str()) => names.push(name),
            GroupKey::Id(id) if !ids.contains(&id.as_str()) => ids.push(id),
            _ => {}
        }
    }
    let mut groups = world.graph.groups_by_display_name(&names).await?;
    for group in world.graph.groups_by_id(&ids).await? {
        if !groups.iter().any(|g| g.id.eq_ignore_ascii_case(&group.id)) {
            groups.push(group);
        }
    }
    let assignments = match &service_principal {
        Some(sp) => {
            world
                .graph
                .app_role_assignments_of_service_principal(&sp.id)
                .await?
        }
        None => Vec::new(),
    };
    let tenant = RolesTenant {
        application: &application,
        service_principal: service_principal.as_ref(),
        groups: &groups,
        assignments: &assignments,
    };
    Ok(
        match plan_roles(
            &manifest,
            &targets,
            &tenant,
            &RolesOptions {
                allow_role_removals,
            },
        ) {
            Ok(plan) => RolesRead::Planned(Box::new(plan)),
            Err(errors) => rejected(version, errors),
        },
    )
}

/// Collects the audit records of one run and the changes to try again.
struct Ledger<'w, S, D> {
    world: &'w World<S, D>,
    message: &'w MapRolesMessage,
    version: String,
    attempt: Attempt,
    records: Vec<AuditRecord>,
    retry: Vec<String>,
}

/// What a record is about.
#[derive(Default)]
struct About<'a> {
    group_id: Option<&'a str>,
    app_role_id: Option<&'a str>,
    assignment_id: Option<&'a str>,
}

impl<S: Storage, D: Directory> Ledger<'_, S, D> {
    fn record(
        &mut self,
        action: Action,
        about: About<'_>,
        outcome: Outcome,
        detail: String,
        request_id: Option<&str>,
    ) {
        self.records.push(AuditRecord {
            time: rfc3339((self.world.now)()),
            actor: self.world.config.actor.clone(),
            run_id: self.message.run_id.clone(),
            roster: self.message.manifest.clone(),
            roster_version: self.version.clone(),
            access_package_id: None,
            action,
            email: None,
            user_id: None,
            assignment_id: about.assignment_id.map(str::to_owned),
            group_id: about.group_id.map(str::to_owned),
            app_role_id: about.app_role_id.map(str::to_owned),
            outcome,
            detail: Some(detail),
            request_id: request_id.map(str::to_owned),
        });
    }

    /// Records a failed change: to be retried when that can help and tries are left.
    fn failure(&mut self, action: Action, about: About<'_>, what: &str, error: &GraphError) {
        let retry = self.attempt.may_retry(error.is_retryable());
        let (outcome, detail) = if retry {
            self.retry.push(format!("{what}: {error}"));
            (Outcome::Retrying, format!("{what}: {error}"))
        } else if error.is_retryable() {
            (
                Outcome::Failed,
                format!(
                    "{what}: gave up after {} tries: {error}",
                    self.attempt.number
                ),
            )
        } else {
            (Outcome::Failed, format!("{what}: {error}"))
        };
        self.record(action, about, outcome, detail, error.request_id());
    }
}

/// MapRoles: plans the manifest against the tenant, then makes the app role updates (a
/// disable update first where Graph requires it), creates the missing group assignments
/// and removes mapped roles from the wrong groups. Writes a report (JSON and Markdown) and
/// an audit record per change.
///
/// # Errors
/// [`StepError`] when the whole message should be tried again (storage or Graph failed for
/// it, an app role update failed, or some assignments could not be made yet).
#[tracing::instrument(name = "step", skip_all, fields(
    step = "map-roles",
    run_id = %message.run_id,
    roster = %message.manifest,
    attempt = attempt.number,
))]
pub async fn map_roles<S: Storage, D: Directory>(
    world: &World<S, D>,
    message: &MapRolesMessage,
    attempt: Attempt,
) -> Result<RolesOutcome, StepError> {
    let read = plan_manifest(world, &message.manifest, message.allow_role_removals).await?;
    apply_roles_plan(world, message, attempt, read).await
}

/// The second half of [`map_roles`]: reports `read` and makes its changes. A plan made
/// moments ago may meet roles that a concurrent run or a person changed since; Graph then
/// refuses the update and the message is tried again, planning anew.
///
/// # Errors
/// As [`map_roles`].
pub async fn apply_roles_plan<S: Storage, D: Directory>(
    world: &World<S, D>,
    message: &MapRolesMessage,
    attempt: Attempt,
    read: RolesRead,
) -> Result<RolesOutcome, StepError> {
    let mut outcome = RolesOutcome::default();
    let mut ledger = Ledger {
        world,
        message,
        version: String::new(),
        attempt,
        records: Vec::new(),
        retry: Vec::new(),
    };
    let plan = match read {
        RolesRead::Missing => {
            outcome.output.logs.push(format!(
                "manifest {} no longer exists; nothing to do",
                message.manifest
            ));
            return Ok(outcome);
        }
        RolesRead::Rejected { version, errors } => {
            ledger.version.clone_from(&version);
            let json = serde_json::to_vec_pretty(&serde_json::json!({
                "manifest": message.manifest,
                "manifestVersion": version,
                "errors": errors,
            }))
            .unwrap_or_default();
            world
                .storage
                .put_report(
                    &message.run_id,
                    &report_key(&message.manifest),
                    &json,
                    &rejected_markdown(&message.manifest, &version, &errors),
                )
                .await?;
            let first = errors.first().map(ToString::to_string).unwrap_or_default();
            let detail = format!(
                "manifest not applied, nothing changed: {} problem(s); first: {first}",
                errors.len()
            );
            ledger.record(
                Action::MapRoles,
                About::default(),
                Outcome::Rejected,
                detail.clone(),
                None,
            );
            world.storage.append_audit(&ledger.records).await?;
            outcome
                .output
                .logs
                .push(format!("{}: {detail}", message.manifest));
            outcome.output.audit = ledger.records;
            outcome.errors = errors;
            return Ok(outcome);
        }
        RolesRead::Planned(plan) => *plan,
    };
    ledger.version.clone_from(&plan.manifest_version);
    let summary = format!(
        "app roles: add {}, change {}, remove {}, refused {}; groups: assign {}, unassign {}, unchanged {}, unmanaged {}",
        plan.app_roles.add.len(),
        plan.app_roles.change.len(),
        plan.app_roles.remove.len(),
        plan.app_roles.refused.len(),
        plan.assign.len(),
        plan.unassign.len(),
        plan.unchanged_assignments,
        plan.unmanaged.len()
    );
    ledger.record(
        Action::MapRoles,
        About::default(),
        Outcome::Done,
        summary.clone(),
        None,
    );
    let result = execute(world, &plan, &mut ledger).await;
    let json = serde_json::to_vec_pretty(&RolesReport {
        plan: &plan,
        results: &ledger.records,
    })
    .unwrap_or_default();
    world
        .storage
        .put_report(
            &message.run_id,
            &report_key(&message.manifest),
            &json,
            &results_markdown(&plan, &ledger.records),
        )
        .await?;
    world.storage.append_audit(&ledger.records).await?;
    outcome.output.logs.push(format!(
        "{} -> {} ({}): {summary}",
        message.manifest,
        plan.application.display_name.as_deref().unwrap_or_default(),
        plan.application.app_id
    ));
    outcome.output.audit = std::mem::take(&mut ledger.records);
    outcome.plan = Some(plan);
    result?;
    match ledger.retry.first() {
        None => Ok(outcome),
        Some(first) => Err(StepError::ChangesToRetry {
            count: ledger.retry.len(),
            first: first.clone(),
        }),
    }
}

/// Makes the plan's changes, recording each. An app role update that fails stops the run
/// (the assignments may depend on it); assignments are handled one by one.
async fn execute<S: Storage, D: Directory>(
    world: &World<S, D>,
    plan: &RolesPlan,
    ledger: &mut Ledger<'_, S, D>,
) -> Result<(), StepError> {
    for refused in &plan.app_roles.refused {
        ledger.record(
            Action::UpdateAppRoles,
            About {
                app_role_id: Some(&refused.role.id),
                ..About::default()
            },
            Outcome::Skipped,
            format!(
                "role `{}` is not in the manifest but is held by {} assignment(s); it is not removed unless role removals are allowed",
                refused.role.value.as_deref().unwrap_or_default(),
                refused.assignments
            ),
            None,
        );
    }
    for update in &plan.updates {
        let step = match update.step {
            UpdateStep::Disable => "disable update",
            UpdateStep::Update => "update",
        };
        match world
            .graph
            .update_app_roles(&plan.application.id, &update.app_roles)
            .await
        {
            Ok(()) => ledger.record(
                Action::UpdateAppRoles,
                About::default(),
                Outcome::Done,
                format!(
                    "{step} with {} roles: {}",
                    update.app_roles.len(),
                    update.reason
                ),
                None,
            ),
            // The roles changed since they were read (a concurrent run, a hand edit):
            // the next try plans again from what Graph has now.
            Err(error) if ledger.attempt.may_retry(error.is_enabled_role_change()) => {
                let what = format!("{step} of the application's app roles");
                ledger.record(
                    Action::UpdateAppRoles,
                    About::default(),
                    Outcome::Retrying,
                    format!("{what}: the roles changed since they were read: {error}"),
                    error.request_id(),
                );
                return Err(StepError::ChangesToRetry {
                    count: 1,
                    first: format!("{what}: {error}"),
                });
            }
            Err(error) => {
                ledger.failure(
                    Action::UpdateAppRoles,
                    About::default(),
                    &format!("{step} of the application's app roles"),
                    &error,
                );
                // Retried as a whole message, which plans again from what the tenant has now.
                return Err(StepError::Graph(error));
            }
        }
    }
    let Some(sp) = plan.service_principal_id.as_deref() else {
        return Ok(());
    };
    let new: Vec<NewGroupAppRoleAssignment> = plan
        .assign
        .iter()
        .map(|a| NewGroupAppRoleAssignment {
            principal_id: a.group_id.clone(),
            resource_id: sp.to_owned(),
            app_role_id: a.app_role_id.clone(),
        })
        .collect();
    let answers = world.graph.add_group_app_role_assignments(&new).await;
    for (assign, (_, answer)) in plan.assign.iter().zip(answers) {
        let group = assign
            .group_display_name
            .as_deref()
            .unwrap_or(&assign.group_id);
        let what = format!("group `{group}` gets role `{}`", assign.value);
        let about = || About {
            group_id: Some(&assign.group_id),
            app_role_id: Some(&assign.app_role_id),
            assignment_id: None,
        };
        match answer {
            Ok(made) => ledger.record(
                Action::AssignAppRole,
                About {
                    assignment_id: Some(&made.id),
                    ..about()
                },
                Outcome::Done,
                what,
                None,
            ),
            Err(error) if error.is_existing_app_role_assignment() => ledger.record(
                Action::AssignAppRole,
                about(),
                Outcome::AlreadyDone,
                format!("{what}: Graph says the group holds it already"),
                error.request_id(),
            ),
            Err(error) => ledger.failure(Action::AssignAppRole, about(), &what, &error),
        }
    }
    let gone: Vec<(String, String)> = plan
        .unassign
        .iter()
        .map(|u| (u.group_id.clone(), u.assignment_id.clone()))
        .collect();
    let answers = world.graph.remove_group_app_role_assignments(&gone).await;
    for (unassign, (_, answer)) in plan.unassign.iter().zip(answers) {
        let group = unassign
            .group_display_name
            .as_deref()
            .unwrap_or(&unassign.group_id);
        let what = format!(
            "group `{group}` loses role `{}` ({})",
            unassign.value, unassign.reason
        );
        let about = About {
            group_id: Some(&unassign.group_id),
            app_role_id: Some(&unassign.app_role_id),
            assignment_id: Some(&unassign.assignment_id),
        };
        match answer {
            Ok(()) => ledger.record(Action::UnassignAppRole, about, Outcome::Done, what, None),
            Err(error) if error.is_already_removed() => ledger.record(
                Action::UnassignAppRole,
                about,
                Outcome::AlreadyDone,
                format!("{what}: already gone"),
                error.request_id(),
            ),
            Err(error) => ledger.failure(Action::UnassignAppRole, about, &what, &error),
        }
    }
    Ok(())
}

/// The plan's Markdown, followed by what became of each change.
fn results_markdown(plan: &RolesPlan, records: &[AuditRecord]) -> String {
    use std::fmt::Write as _;
    let mut out = plan_markdown(plan);
    let changes: Vec<&AuditRecord> = records
        .iter()
        .filter(|r| r.action != Action::MapRoles)
        .collect();
    if changes.is_empty() {
        return out;
    }
    let _ = writeln!(out, "## Results\n");
    let _ = writeln!(out, "| action | outcome | detail |");
    let _ = writeln!(out, "| --- | --- | --- |");
    for record in changes {
        let name = |value: serde_json::Value| value.as_str().unwrap_or_default().to_owned();
        let _ = writeln!(
            out,
            "| {} | {} | {} |",
            name(serde_json::to_value(record.action).unwrap_or_default()),
            name(serde_json::to_value(record.outcome).unwrap_or_default()),
            enroll_core::escape::Markdown(record.detail.as_deref().unwrap_or_default())
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_are_one_name_per_manifest() {
        assert_eq!(report_key("crm.json"), "manifests/crm");
        assert_eq!(report_key("CRM.v2.JSON"), "manifests/CRM.v2");
    }
}
