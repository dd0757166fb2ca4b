//! `enroll doctor`: checks a deployment before its first nightly run fails, and reports in
//! one table, with the fix for each problem:
//!
//! - a Graph token can be acquired with the configured credential;
//! - the service principal it speaks for holds every Graph application permission the
//!   configured steps need ([`enroll_steps::permissions`]);
//! - every roster's catalog and access package are found, each with a policy for admin
//!   direct assignment;
//! - invitations are limited to domains (`ENROLL_INVITE_DOMAINS`);
//! - storage is reachable, with its containers and queues.
//!
//! Each section is its own function so that the command line composes them; none changes
//! anything.

use std::collections::BTreeSet;

use enroll_core::plan::{Mapping, choose_policy, locate_all};
use enroll_core::tenant::TenantSnapshot;
use enroll_graph::{Credential, GraphClient, GraphError};
use enroll_steps::Storage;
use enroll_steps::permissions::Needs;
use enroll_store::{Store, StoreError};
use serde::Serialize;

use crate::grant::{held_permissions, microsoft_graph};

/// The queues of the Functions app and their poison queues (the function definitions'
/// queue triggers and outputs; a test holds this list against the handler's).
pub const QUEUES: &[&str] = &[
    "reconcile",
    "invite",
    "assign",
    "remove",
    "map-roles",
    "reconcile-poison",
    "invite-poison",
    "assign-poison",
    "remove-poison",
    "map-roles-poison",
];

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Status {
    /// As it should be.
    Ok,
    /// Worth knowing, not wrong.
    Note,
    /// Wrong: the deployment will fail or misbehave until it is fixed.
    Problem,
}

/// One row of the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// What was checked.
    pub check: String,
    /// How it came out.
    pub status: Status,
    /// What was found.
    pub detail: String,
    /// How to fix a problem.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl Check {
    /// A check that came out as it should.
    pub fn ok(check: impl Into<String>, detail: impl Into<String>) -> Self {
        Check {
            check: check.into(),
            status: Status::Ok,
            detail: detail.into(),
            fix: None,
        }
    }

    /// Something worth knowing, not wrong.
    pub fn note(check: impl Into<String>, detail: impl Into<String>) -> Self {
        Check {
            status: Status::Note,
            ..Check::ok(check, detail)
        }
    }

    /// A problem, with its fix.
    pub fn problem(
        check: impl Into<String>,
        detail: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        Check {
            check: check.into(),
            status: Status::Problem,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }
}

/// The whole report.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    /// Every check, in order.
    pub checks: Vec<Check>,
}

impl Report {
    /// How many checks found a problem.
    pub fn problems(&self) -> usize {
        self.checks
            .iter()
            .filter(|c| c.status == Status::Problem)
            .count()
    }

    /// The table for a terminal: check, status, detail, and the fix under each problem.
    pub fn to_text(&self) -> String {
        use enroll_core::escape::Terminal;
        use std::fmt::Write as _;
        let width = self
            .checks
            .iter()
            .map(|c| c.check.chars().count())
            .max()
            .unwrap_or(5)
            .max(5);
        let mut out = format!("{:<width$}  {:<7}  detail\n", "check", "status");
        for check in &self.checks {
            let status = match check.status {
                Status::Ok => "ok",
                Status::Note => "note",
                Status::Problem => "PROBLEM",
            };
            let _ = writeln!(
                out,
                "{:<width$}  {status:<7}  {}",
                Terminal(&check.check),
                Terminal(&check.detail)
            );
            if let Some(fix) = &check.fix {
                let _ = writeln!(out, "{:<width$}  {:<7}  fix: {}", "", "", Terminal(fix));
            }
        }
        let _ = writeln!(
            out,
            "\n{} checks, {} problems",
            self.checks.len(),
            self.problems()
        );
        out
    }
}

/// Who the Graph credential is, as far as the settings say.
fn credential_kind(credential: &Credential) -> (&'static str, Option<&str>) {
    match credential {
        Credential::ClientSecret { client_id, .. } => ("client secret", Some(client_id)),
        Credential::Certificate { client_id, .. } => ("client certificate", Some(client_id)),
        Credential::ManagedIdentity { client_id } => ("managed identity", client_id.as_deref()),
        Credential::AccessToken(_) => ("access token", None),
    }
}

const GRANT_FIX: &str =
    "an administrator runs `enroll grant --principal {id}` once (README, Deployment)";

/// The Graph checks: token, principal, and each needed permission.
pub async fn check_graph(
    graph: &GraphClient,
    credential: &Credential,
    principal: Option<&str>,
    needs: Needs,
) -> Vec<Check> {
    let mut checks = Vec::new();
    let (kind, client_id) = credential_kind(credential);
    let claims = match graph.token_claims().await {
        Ok(claims) => {
            checks.push(Check::ok("token", format!("acquired with the {kind}")));
            claims
        }
        Err(error) => {
            checks.push(Check::problem(
                "token",
                error.to_string(),
                "check ENROLL_TENANT_ID and the credential settings (README, Configuration); nothing else in Graph can be checked without a token",
            ));
            return checks;
        }
    };
    // The principal: as given, else the token's `oid`, else the client id's service principal.
    let found = match (principal, &claims.object_id, client_id) {
        (Some(id), _, _) => graph.service_principal(id).await,
        (None, Some(oid), _) => graph.service_principal(oid).await,
        (None, None, Some(client_id)) => graph.service_principal_by_app_id(client_id).await,
        (None, None, None) => Ok(None),
    };
    let principal = match found {
        Ok(Some(principal)) => {
            checks.push(Check::ok(
                "principal",
                format!(
                    "{} (object id {}, client id {})",
                    principal.display_name.as_deref().unwrap_or("?"),
                    principal.id,
                    principal.app_id
                ),
            ));
            principal
        }
        Ok(None) => {
            checks.push(Check::problem(
                "principal",
                match (principal, client_id) {
                    (Some(id), _) => format!("no service principal has object id {id}"),
                    (None, Some(client_id)) => {
                        format!("no service principal has client id {client_id}")
                    }
                    (None, None) => format!(
                        "the {kind} does not say which service principal it is"
                    ),
                },
                "pass --principal with the object id of the deployment's identity (the `principalId` output of infra/main.bicep)",
            ));
            return checks;
        }
        Err(error) => {
            checks.push(Check::problem(
                "principal",
                format!("cannot read the service principal: {error}"),
                "pass --principal, or run doctor with a credential that may read service principals (Application.Read.All)",
            ));
            return checks;
        }
    };
    let fix = GRANT_FIX.replace("{id}", &principal.id);
    // From the app role assignments; when Graph will not list them to this credential, from
    // the token's `roles` claim, which carries the same permissions.
    let held = match microsoft_graph(graph).await {
        Ok(resource) => held_permissions(graph, &resource, &principal.id)
            .await
            .map(|held| {
                (
                    held.0.into_keys().collect::<BTreeSet<_>>(),
                    "app role assignments",
                )
            })
            .map_err(|error| error.to_string()),
        Err(error) => Err(error.to_string()),
    };
    let (held, source) = match (held, claims.roles) {
        (Ok(found), _) => found,
        (Err(_), Some(roles)) => (roles.into_iter().collect(), "the token's roles claim"),
        (Err(error), None) => {
            checks.push(Check::problem(
                "permissions",
                format!("cannot read the service principal's app role assignments: {error}"),
                "run doctor with a credential that may read service principals (Application.Read.All), or with the deployment's own, whose token names its permissions",
            ));
            return checks;
        }
    };
    let held: Vec<String> = held.into_iter().collect();
    let mut used = Vec::new();
    for permission in needs.permissions() {
        let name = format!("permission {}", permission.value);
        match permission.held_as(&held) {
            Some(value) if value == permission.value => {
                used.push(value);
                checks.push(Check::ok(name, format!("granted (from {source})")));
            }
            Some(broader) => {
                used.push(broader);
                checks.push(Check::ok(
                    name,
                    format!("given by {broader}, which allows more (from {source})"),
                ));
            }
            None => checks.push(Check::problem(
                name,
                format!(
                    "not granted (needed by {}: {})",
                    permission.needed_by.join(", "),
                    permission.why
                ),
                fix.clone(),
            )),
        }
    }
    let extra: Vec<&str> = held
        .iter()
        .map(String::as_str)
        .filter(|value| !used.contains(value))
        .collect();
    if !extra.is_empty() {
        checks.push(Check::note(
            "more permissions",
            format!("also granted, not needed by enroll: {}", extra.join(", ")),
        ));
    }
    if needs.catalog_role {
        checks.push(Check::note(
            "entitlement management",
            "through a catalog-scoped role (--catalog-role), which doctor cannot read; the roster checks below read through it",
        ));
    }
    checks
}

/// `ENROLL_INVITE_DOMAINS`: set, so that invitations go only where they should.
pub fn check_invite_domains(value: Option<&str>) -> Check {
    match value.map(str::trim) {
        Some("*") => Check::note(
            "invite domains",
            "`*`: guests may be invited from any domain",
        ),
        Some(list) => Check::ok("invite domains", list.to_owned()),
        None => Check::problem(
            "invite domains",
            "ENROLL_INVITE_DOMAINS is not set: the Functions app will not start",
            "set ENROLL_INVITE_DOMAINS to the domains guests may be invited from, comma-separated (`*` for any); infra/main.bicep's inviteDomains",
        ),
    }
}

/// Storage: reachable, with the layout's containers and the app's queues (named with
/// `queue_prefix` first, as the test harness names them).
pub async fn check_storage(store: &Store, queue_prefix: &str) -> Vec<Check> {
    let layout = store.layout();
    let mut missing_containers = Vec::new();
    for container in [
        &layout.rosters,
        &layout.manifests,
        &layout.reports,
        &layout.audit,
    ] {
        match store.list_blobs(container, ".enroll-doctor-probe").await {
            Ok(_) => {}
            Err(StoreError::NotFound { .. }) => missing_containers.push(container.as_str()),
            Err(error) => {
                return vec![Check::problem(
                    "storage",
                    error.to_string(),
                    "check AzureWebJobsStorage (or its __accountName form) and that this identity holds Storage Blob Data Owner and Storage Queue Data Contributor on the account",
                )];
            }
        }
    }
    let mut missing_queues = Vec::new();
    for queue in QUEUES {
        let queue = format!("{queue_prefix}{queue}");
        match store.approximate_message_count(&queue).await {
            Ok(_) => {}
            Err(StoreError::NotFound { .. }) => missing_queues.push(queue),
            Err(error) => {
                return vec![Check::problem(
                    "storage",
                    error.to_string(),
                    "check that this identity holds Storage Queue Data Contributor on the account",
                )];
            }
        }
    }
    let mut checks = vec![Check::ok("storage", "reachable")];
    let fix = "deploy infra/main.bicep again (it creates every container and queue), or create them with `az storage container create` / `az storage queue create`";
    checks.push(if missing_containers.is_empty() {
        Check::ok(
            "containers",
            format!(
                "{}, {}, {}, {}",
                layout.rosters, layout.manifests, layout.reports, layout.audit
            ),
        )
    } else {
        Check::problem(
            "containers",
            format!("missing: {}", missing_containers.join(", ")),
            fix,
        )
    });
    checks.push(if missing_queues.is_empty() {
        Check::ok("queues", format!("all {}", QUEUES.len()))
    } else {
        Check::problem(
            "queues",
            format!("missing: {}", missing_queues.join(", ")),
            fix,
        )
    });
    checks
}

/// Every roster's catalog, access package and admin-direct policy, as the Plan step would
/// find them; `place` names the rosters' place in the report.
pub async fn check_rosters<S: Storage>(
    storage: &S,
    place: &str,
    graph: &GraphClient,
    catalog: Option<&str>,
) -> Vec<Check> {
    let names = match storage.roster_names().await {
        Ok(names) => names,
        Err(error) => {
            return vec![Check::problem(
                "rosters",
                format!("cannot list the rosters in {place}: {error}"),
                "see the storage check",
            )];
        }
    };
    let mapping: Mapping = match storage.mapping().await {
        Ok(None) => Mapping::default(),
        Ok(Some(bytes)) => match serde_json::from_slice(&bytes) {
            Ok(mapping) => mapping,
            Err(error) => {
                return vec![Check::problem(
                    "mapping file",
                    format!("access-packages.json is not valid: {error}"),
                    "fix access-packages.json (README, \"Which access package a roster belongs to\") and upload it again",
                )];
            }
        },
        Err(error) => {
            return vec![Check::problem(
                "mapping file",
                format!("cannot read access-packages.json: {error}"),
                "see the storage check",
            )];
        }
    };
    let mut checks = Vec::new();
    if names.is_empty() {
        checks.push(Check::note(
            "rosters",
            format!("none in {place} yet: upload them (README, Deployment)"),
        ));
        return checks;
    }
    checks.push(Check::ok("rosters", format!("{} in {place}", names.len())));
    let tenant = match read_packages(graph).await {
        Ok(tenant) => tenant,
        Err(error) => {
            checks.push(Check::problem(
                "access packages",
                format!("cannot read catalogs and access packages: {error}"),
                "grant EntitlementManagement.ReadWrite.All (or a catalog role), see the permission checks",
            ));
            return checks;
        }
    };
    // Catalogs named by folders or the setting, each once.
    let mut catalogs: BTreeSet<String> = names
        .iter()
        .filter_map(|name| name.split_once('/').map(|(folder, _)| folder.to_owned()))
        .collect();
    catalogs.extend(catalog.map(str::to_owned));
    for name in &catalogs {
        let found = tenant.catalogs.iter().find(|c| {
            c.id.eq_ignore_ascii_case(name)
                || c.display_name
                    .as_deref()
                    .is_some_and(|n| n.eq_ignore_ascii_case(name))
        });
        checks.push(match found {
            Some(found) => Check::ok(format!("catalog {name}"), format!("id {}", found.id)),
            None => Check::problem(
                format!("catalog {name}"),
                format!("no catalog is named `{name}` ({} catalogs)", tenant.catalogs.len()),
                "rename the roster folder (or ENROLL_CATALOG) to the catalog's display name, or create the catalog",
            ),
        });
    }
    let roster_names: Vec<&str> = names.iter().map(String::as_str).collect();
    for (name, found) in
        roster_names
            .iter()
            .zip(locate_all(&roster_names, &tenant, &mapping, catalog))
    {
        let check = format!("roster {name}");
        let package = match found {
            Ok(package) => package,
            Err(error) => {
                checks.push(Check::problem(
                    check,
                    format!("{} [{}]", error, error.code()),
                    "name the roster after its access package, or pin it to the package's id in access-packages.json",
                ));
                continue;
            }
        };
        let pinned = mapping
            .assignment_policies
            .get(&package.id)
            .map(String::as_str);
        checks.push(match choose_policy(package, pinned) {
            Ok(policy) => Check::ok(
                check,
                format!(
                    "package `{}` ({}), policy `{}`{}",
                    package.display_name,
                    package.id,
                    policy.display_name.as_deref().unwrap_or(&policy.id),
                    if policy
                        .allowed_target_scope
                        .as_deref()
                        .is_none_or(|s| s.eq_ignore_ascii_case("notSpecified"))
                    {
                        " (admin direct)"
                    } else {
                        ""
                    }
                ),
            ),
            Err((_, reason)) => Check::problem(
                check,
                format!("package `{}` ({}): {reason}", package.display_name, package.id),
                "add an assignment policy for administrator direct assignments to the package, or pin one under assignmentPolicies in access-packages.json",
            ),
        });
    }
    checks
}

/// Every catalog and every access package with its policies.
async fn read_packages(graph: &GraphClient) -> Result<TenantSnapshot, GraphError> {
    Ok(TenantSnapshot {
        catalogs: graph.catalogs().await?,
        access_packages: graph.access_packages(None).await?,
        ..TenantSnapshot::default()
    })
}
