//! The `enroll` command line: validate and plan rosters.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt as _;

use enroll_core::audit::{Action, Outcome};
use enroll_core::plan::{Guards, InviteDomains, Override, PlanOptions, Protected, plan};
use enroll_core::report::{FileReport, ValidationReport, error_chain, plan_text};
use enroll_core::roster::Limits;
use enroll_store::local;

/// Keeps Entra ID access packages in line with CSV rosters.
#[derive(Debug, Parser)]
#[command(name = "enroll", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check roster files; exit 0 when all are valid, 1 when any is invalid, 2 on usage or I/O errors.
    Validate {
        /// Roster files, or folders searched for *.csv.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Show what would change in the tenant; exit 1 when a roster is invalid or a package is blocked.
    Plan(PlanArgs),
    /// Make the tenant match the rosters: plan, invite, assign and remove, in one process.
    Apply(ApplyArgs),
    /// Write the tenant's state from Microsoft Graph as a snapshot, for offline planning.
    Snapshot {
        /// Where to write the snapshot (JSON).
        #[arg(long)]
        out: PathBuf,
        /// Only this catalog's access packages (display name or id).
        #[arg(long, env = "ENROLL_CATALOG")]
        catalog: Option<String>,
        /// Also the application with this client id: its app roles, service principal,
        /// app role assignments and groups (for `enroll roles plan` against the snapshot).
        #[arg(long, env = "ENROLL_APP_ID")]
        app_id: Option<String>,
        /// Group naming convention, to include the groups a manifest would map by it.
        #[arg(long, env = "ENROLL_ROLE_GROUP_PATTERN", default_value = enroll_core::roles::DEFAULT_GROUP_PATTERN)]
        group_pattern: String,
        /// Only the users the rosters below this folder name (by every address they are
        /// known by) and the packages' holders, instead of every user of the tenant.
        #[arg(long)]
        rosters: Option<PathBuf>,
    },
    /// Serve a simulated tenant (Microsoft Graph over HTTP) from a snapshot until Ctrl-C.
    Sim(SimArgs),
    /// Keep an application's app roles and their groups in line with a manifest.
    Roles {
        #[command(subcommand)]
        command: RolesCommand,
    },
    /// Write today's tenant as files: one roster per access package, the app role manifest
    /// and its mapping, so that the first plan against the same tenant changes nothing.
    Export(ExportArgs),
    /// Check a deployment: Graph token and permissions, every roster's catalog, package and
    /// policy, invite domains, storage; exit 1 on any problem, each with its fix.
    Doctor(DoctorArgs),
    /// Grant a service principal the Microsoft Graph application permissions the configured
    /// steps need (for an administrator, once); exit 1 when a grant failed.
    Grant(GrantArgs),
}

/// Which parts of enroll a deployment uses, for the permissions it needs.
#[derive(Debug, Args)]
struct NeedsArgs {
    /// Include the app role permissions (implied by ENROLL_APP_ID, and for `doctor` by
    /// manifests in storage).
    #[arg(long)]
    app_roles: bool,
    /// Entitlement management through a catalog-scoped role (Access package assignment
    /// manager) instead of EntitlementManagement.ReadWrite.All.
    #[arg(long)]
    catalog_role: bool,
}

#[derive(Debug, Args)]
struct DoctorArgs {
    /// Object id of the deployment's service principal [default: the token's, else the
    /// client id's].
    #[arg(long)]
    principal: Option<String>,
    #[command(flatten)]
    needs: NeedsArgs,
    /// Check the rosters in this folder instead of the rosters container.
    #[arg(long)]
    rosters: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

#[derive(Debug, Args)]
struct GrantArgs {
    /// Object id of the service principal to grant to (the managed identity's `principalId`).
    #[arg(long)]
    principal: String,
    #[command(flatten)]
    needs: NeedsArgs,
    /// Say what would be granted; grant nothing.
    #[arg(long)]
    dry_run: bool,
    /// Read a Graph access token from standard input instead of the credential settings,
    /// e.g. `az account get-access-token --resource-type ms-graph --query accessToken -o tsv`.
    #[arg(long)]
    token_stdin: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

#[derive(Debug, Subcommand)]
enum RolesCommand {
    /// Show what would change; exit 1 when the manifest or mapping is invalid or a role
    /// removal is refused.
    Plan(RolesArgs),
    /// Make the application's roles and the group assignments match the manifest.
    Apply(RolesApplyArgs),
}

#[derive(Debug, Args)]
struct RolesArgs {
    /// The app role manifest: the `appRoles` array, or an object with `appId` and `appRoles`.
    manifest: PathBuf,
    /// Mapping file (role value → group) [default: MANIFEST's `{stem}.mapping.json` if present].
    #[arg(long)]
    mapping: Option<PathBuf>,
    /// `graph` for the real tenant (credentials from the environment), or a snapshot file,
    /// which is served by an in-process simulated tenant.
    #[arg(long, env = "ENROLL_TENANT")]
    tenant: String,
    /// The application's client id, for a manifest without `appId`.
    #[arg(long, env = "ENROLL_APP_ID")]
    app_id: Option<String>,
    /// Group naming convention; `{value}` is the role's value. The mapping file's
    /// `groupPattern` wins.
    #[arg(long, env = "ENROLL_ROLE_GROUP_PATTERN", default_value = enroll_core::roles::DEFAULT_GROUP_PATTERN)]
    group_pattern: String,
    /// Remove roles the manifest dropped even while users, groups or applications hold them.
    #[arg(long)]
    allow_role_removals: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

#[derive(Debug, Args)]
struct RolesApplyArgs {
    #[command(flatten)]
    roles: RolesArgs,
    /// Folder for the report (under the run id) and the audit trail.
    #[arg(long, env = "ENROLL_REPORTS", default_value = "enroll-reports")]
    reports: PathBuf,
    /// With a snapshot: write the simulated tenant's final state here.
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct ExportArgs {
    /// `graph` for the real tenant (credentials from the environment), or a snapshot file.
    #[arg(long, env = "ENROLL_TENANT")]
    tenant: String,
    /// Folder to write into (created if missing; files of the same name are overwritten).
    #[arg(long)]
    out: PathBuf,
    /// Only this catalog's access packages (display name or id) [default: every catalog].
    #[arg(long, env = "ENROLL_CATALOG")]
    catalog: Option<String>,
    /// The application whose app roles to export (client id); without it, rosters only.
    #[arg(long, env = "ENROLL_APP_ID")]
    app_id: Option<String>,
    /// Group naming convention recorded in the mapping file.
    #[arg(long, env = "ENROLL_ROLE_GROUP_PATTERN", default_value = enroll_core::roles::DEFAULT_GROUP_PATTERN)]
    group_pattern: String,
    /// Output format of the summary.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

#[derive(Debug, Args)]
struct ApplyArgs {
    /// Folder of rosters (or one roster file).
    rosters: PathBuf,
    /// `graph` for the real tenant (credentials from the environment), or a snapshot file,
    /// which is served by an in-process simulated tenant.
    #[arg(long, env = "ENROLL_TENANT")]
    tenant: String,
    /// Stop after the plan.
    #[arg(long)]
    dry_run: bool,
    #[command(flatten)]
    guards: GuardArgs,
    /// How long planned removals wait before they are carried out (`0`, `90m`, `24h`, at
    /// most `7d`); the run waits that long, and a roster corrected meanwhile keeps the
    /// person.
    #[arg(long, env = "ENROLL_REMOVAL_DELAY")]
    removal_delay: Option<String>,
    /// Catalog searched for rosters not in a catalog folder (display name or id).
    #[arg(long, env = "ENROLL_CATALOG")]
    catalog: Option<String>,
    /// Domains people may be invited from, comma-separated; `*` for any. Required with
    /// `--tenant graph`; any domain against a snapshot.
    #[arg(long, env = "ENROLL_INVITE_DOMAINS")]
    invite_domains: Option<String>,
    /// Folder for reports (one per roster under the run id) and the audit trail.
    #[arg(long, env = "ENROLL_REPORTS", default_value = "enroll-reports")]
    reports: PathBuf,
    /// With a snapshot: write the simulated tenant's final state here.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Output format of the summary.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

#[derive(Debug, Args)]
struct SimArgs {
    /// Port on 127.0.0.1 (0 picks a free one; the port is printed).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// The tenant to serve (a snapshot).
    #[arg(long)]
    tenant: PathBuf,
    /// The tenant's id: the `tid` of its tokens, and how Entra's paths name it.
    #[arg(long, default_value = enroll_sim::SIM_TENANT_ID)]
    tenant_id: String,
    /// A domain that names the tenant in Entra's paths besides its id (repeatable; the
    /// domains of the snapshot's principal names always do).
    #[arg(long = "domain")]
    domains: Vec<String>,
    /// Client id the token endpoint accepts.
    #[arg(long, default_value = "enroll-sim-client")]
    client_id: String,
    /// Client secret the token endpoint accepts.
    #[arg(long, default_value = "enroll-sim-secret")]
    client_secret: String,
    /// An app role the client's tokens carry for every API other than Graph, e.g.
    /// `Rosters.Read` (repeatable).
    #[arg(long = "client-role")]
    client_roles: Vec<String>,
    /// Another client the token endpoint accepts, as `ID:SECRET` or `ID:SECRET:ROLE,ROLE`
    /// (repeatable).
    #[arg(long = "client", value_parser = parse_sim_client)]
    clients: Vec<enroll_sim::SimClient>,
    /// An API (app ID URI such as `api://enroll`) tokens may be issued for, besides Graph
    /// and the snapshot's applications (repeatable).
    #[arg(long = "api")]
    apis: Vec<String>,
    /// Serve HTTPS with a certificate authority made at start; its certificate is written
    /// to --ca-file and the path printed, for SSL_CERT_FILE, REQUESTS_CA_BUNDLE or
    /// ENROLL_CA_FILE.
    #[arg(long)]
    tls: bool,
    /// Where --tls writes the CA certificate (PEM). Default: `enroll-sim-ca-{port}.pem` in
    /// the temporary directory, removed on exit.
    #[arg(long, requires = "tls")]
    ca_file: Option<PathBuf>,
    /// Added to every answer, in milliseconds.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Graph operations per second before answers are 429 with Retry-After.
    #[arg(long)]
    throttle_rps: Option<u32>,
    /// Share of requests answered with a random 500, 503 or 504 (0 to 1).
    #[arg(long, default_value_t = 0.0)]
    fault_rate: f64,
    /// Share of connections dropped without an answer (0 to 1).
    #[arg(long, default_value_t = 0.0)]
    drop_rate: f64,
    /// How long a new guest stays invisible to queries and entitlement management, in ms.
    #[arg(long, default_value_t = 0)]
    consistency_delay_ms: u64,
    /// How long an assignment request takes to be delivered, in ms.
    #[arg(long, default_value_t = 0)]
    delivery_delay_ms: u64,
    /// Seed for every random choice, so a run can be replayed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Write the tenant's final state here on exit.
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct PlanArgs {
    /// Folder of rosters (or one roster file).
    rosters: PathBuf,
    /// Tenant snapshot (JSON in Graph's shapes, as `enroll snapshot` writes it).
    #[arg(long, env = "ENROLL_TENANT")]
    tenant: PathBuf,
    /// Catalog searched for rosters not in a catalog folder (display name or id).
    #[arg(long, env = "ENROLL_CATALOG")]
    catalog: Option<String>,
    /// Mapping file pinning rosters to package ids [default: ROSTERS/access-packages.json if present].
    #[arg(long)]
    mapping: Option<PathBuf>,
    #[command(flatten)]
    guards: GuardArgs,
    /// Undo window of removals (`0`, `90m`, `24h`, at most `7d`): the plan says when each
    /// removal would happen if applied now.
    #[arg(long, env = "ENROLL_REMOVAL_DELAY")]
    removal_delay: Option<String>,
    /// Domains people may be invited from, comma-separated; `*` for any.
    #[arg(long, env = "ENROLL_INVITE_DOMAINS", default_value = "*")]
    invite_domains: String,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    /// Also write the plan as Markdown to this file, for a pull request's comment.
    #[arg(long)]
    markdown: Option<PathBuf>,
}

/// The guards' limits and overrides, and the protected people, as `plan` and `apply` take them.
#[derive(Debug, Args)]
struct GuardArgs {
    /// Let through plans that the removal guard, the all-holders rule or the empty-roster
    /// rule would block; needs --override-by and --override-reason.
    #[arg(long)]
    allow_removals: bool,
    /// Let through plans that the addition guard would block; needs --override-by and
    /// --override-reason.
    #[arg(long)]
    allow_additions: bool,
    /// Who allows removals or additions past the guards (recorded in the plan, the reports
    /// and the audit trail).
    #[arg(long)]
    override_by: Option<String>,
    /// Why they are allowed (recorded with the override).
    #[arg(long)]
    override_reason: Option<String>,
    /// Removals always allowed per package.
    #[arg(long, env = "ENROLL_MAX_REMOVALS", default_value_t = 10)]
    max_removals: usize,
    /// Past --max-removals, the share of current members that may be removed, in percent.
    #[arg(long, env = "ENROLL_MAX_REMOVAL_PERCENT", default_value_t = 20.0)]
    max_removal_percent: f64,
    /// Invitations and assignments always allowed per package.
    #[arg(long, env = "ENROLL_MAX_ADDITIONS", default_value_t = 50)]
    max_additions: usize,
    /// Past --max-additions, how many people may be added as a share of the current
    /// members, in percent.
    #[arg(long, env = "ENROLL_MAX_ADDITION_PERCENT", default_value_t = 100.0)]
    max_addition_percent: f64,
    /// People no plan removes: addresses or object ids, comma-separated (the mapping
    /// file's `protectedPeople` adds to them).
    #[arg(long, env = "ENROLL_PROTECTED_PEOPLE")]
    protected_people: Option<String>,
}

impl GuardArgs {
    /// The guards, and the override when one is asked for with who and why.
    ///
    /// # Errors
    /// A percentage out of range, or an override without who and why (or the reverse).
    fn guards(&self) -> anyhow::Result<(Guards, Option<Override>)> {
        if !(0.0..=100.0).contains(&self.max_removal_percent) {
            anyhow::bail!(
                "--max-removal-percent must be between 0 and 100, not {}",
                self.max_removal_percent
            );
        }
        if !(self.max_addition_percent >= 0.0 && self.max_addition_percent.is_finite()) {
            anyhow::bail!(
                "--max-addition-percent must be 0 or more, not {}",
                self.max_addition_percent
            );
        }
        let allowing = self.allow_removals || self.allow_additions;
        let override_by =
            Override::new(self.override_by.as_deref(), self.override_reason.as_deref());
        match (allowing, &override_by) {
            (true, None) => anyhow::bail!(
                "--allow-removals and --allow-additions need --override-by and --override-reason: who allows it and why (both are recorded in the plan and the audit trail)"
            ),
            (false, _) if self.override_by.is_some() || self.override_reason.is_some() => {
                anyhow::bail!(
                    "--override-by and --override-reason go with --allow-removals or --allow-additions"
                )
            }
            _ => {}
        }
        let guards = Guards {
            max_removals: self.max_removals,
            max_removal_percent: self.max_removal_percent,
            max_additions: self.max_additions,
            max_addition_percent: self.max_addition_percent,
            allow_removals: self.allow_removals,
            allow_additions: self.allow_additions,
        };
        Ok((guards, override_by))
    }

    /// The protected people the flag (or its variable) names.
    fn protected(&self) -> Protected {
        self.protected_people
            .as_deref()
            .map(Protected::parse)
            .unwrap_or_default()
    }
}

/// The undo window from `--removal-delay` (or `ENROLL_REMOVAL_DELAY`); none by default.
fn removal_delay(flag: Option<&str>) -> anyhow::Result<std::time::Duration> {
    flag.map_or(Ok(std::time::Duration::ZERO), |text| {
        enroll_steps::config::parse_delay(text)
            .map_err(|problem| anyhow::anyhow!("--removal-delay is not valid: {problem}"))
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    Text,
    Json,
}

const EXIT_INVALID: u8 = 1;
const EXIT_USAGE: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Hidden until `apply` shows it on a terminal; log lines are written around it.
    let bar = indicatif::ProgressBar::hidden();
    if let Err(error) = init_logging(&bar) {
        eprintln!("enroll: {}", error_chain(error.as_ref()));
        return ExitCode::from(EXIT_USAGE);
    }
    let outcome = match cli.command {
        Command::Validate { paths, format } => validate(&paths, format),
        Command::Plan(args) => plan_rosters(&args),
        Command::Apply(args) => runtime().and_then(|rt| rt.block_on(apply(args, bar))),
        Command::Snapshot {
            out,
            catalog,
            app_id,
            group_pattern,
            rosters,
        } => runtime().and_then(|rt| {
            rt.block_on(snapshot(
                &out,
                catalog.as_deref(),
                app_id.as_deref(),
                &group_pattern,
                rosters.as_deref(),
            ))
        }),
        Command::Sim(args) => runtime().and_then(|rt| rt.block_on(simulate(args))),
        Command::Roles {
            command: RolesCommand::Plan(args),
        } => runtime().and_then(|rt| rt.block_on(roles_plan(&args))),
        Command::Roles {
            command: RolesCommand::Apply(args),
        } => runtime().and_then(|rt| rt.block_on(roles_apply(&args))),
        Command::Export(args) => runtime().and_then(|rt| rt.block_on(export(&args))),
        Command::Doctor(args) => runtime().and_then(|rt| rt.block_on(doctor(&args))),
        Command::Grant(args) => runtime().and_then(|rt| rt.block_on(grant(&args))),
    };
    match outcome {
        Ok(code) => code,
        Err(error) => {
            // Each cause once, and control characters in file names or Graph's words shown,
            // not obeyed.
            let error = error_chain(error.as_ref());
            eprintln!("enroll: {}", enroll_core::escape::Terminal(&error));
            ExitCode::from(EXIT_USAGE)
        }
    }
}

/// One subscriber for the command: plain lines on stderr (`LEVEL message key=value`), at
/// the levels `ENROLL_LOG` or `RUST_LOG` set (default: enroll's `info`, others' `warn`).
fn init_logging(bar: &indicatif::ProgressBar) -> anyhow::Result<()> {
    let (name, directives) =
        enroll_steps::config::log_filter(&enroll_steps::config::Env::from_process());
    let targets: Targets =
        directives
            .parse()
            .map_err(|error| enroll_steps::config::ConfigError::Invalid {
                name,
                problem: format!("{error}"),
            })?;
    let subscriber = tracing_subscriber::fmt()
        .with_writer(AroundTheBar(bar.clone()))
        .with_ansi(false)
        .without_time()
        .with_target(false)
        .with_max_level(tracing::Level::TRACE)
        .finish()
        .with(targets);
    tracing::subscriber::set_global_default(subscriber)
        .map_err(|error| anyhow::anyhow!("cannot set up logging: {error}"))
}

/// Writes log lines to stderr with the progress bar cleared first and drawn again after,
/// so that neither tears the other.
#[derive(Clone)]
struct AroundTheBar(indicatif::ProgressBar);

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for AroundTheBar {
    type Writer = AroundTheBar;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

impl std::io::Write for AroundTheBar {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.suspend(|| std::io::stderr().write(buf))
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

fn print(text: &str) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(text.as_bytes())?;
    stdout.flush()?;
    Ok(())
}

fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    let mut text = serde_json::to_string_pretty(value)?;
    text.push('\n');
    print(&text)
}

fn validate(paths: &[PathBuf], format: Format) -> anyhow::Result<ExitCode> {
    let mut files = Vec::new();
    for root in paths {
        for path in local::find_csv_files(root)? {
            let name = path.display().to_string();
            let (roster, _) = local::read_roster(&path, &name, Limits::default())?;
            files.push(FileReport::from(&roster));
        }
    }
    if files.is_empty() {
        anyhow::bail!("no *.csv files found in {}", display_all(paths));
    }
    let report = ValidationReport { files };
    match format {
        Format::Text => print(&report.to_text())?,
        Format::Json => print_json(&report)?,
    }
    Ok(exit_code(report.all_valid()))
}

fn display_all(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

fn exit_code(clean: bool) -> ExitCode {
    if clean {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_INVALID)
    }
}

fn plan_options(args: &PlanArgs, rosters: &Path) -> anyhow::Result<PlanOptions> {
    let (guards, override_by) = args.guards.guards()?;
    let delay = removal_delay(args.removal_delay.as_deref())?;
    Ok(PlanOptions {
        guards,
        override_by,
        mapping: local::read_mapping(args.mapping.as_deref(), rosters)?,
        catalog: args.catalog.clone(),
        invite_domains: InviteDomains::parse(&args.invite_domains),
        protected: args.guards.protected(),
        removals_not_before: (!delay.is_zero()).then(|| std::time::SystemTime::now() + delay),
    })
}

fn plan_rosters(args: &PlanArgs) -> anyhow::Result<ExitCode> {
    let tenant = local::read_snapshot(&args.tenant)?;
    let sources = local::read_rosters(&args.rosters, Limits::default())?;
    if sources.is_empty() {
        anyhow::bail!("no *.csv files found in {}", args.rosters.display());
    }
    let options = plan_options(args, &args.rosters)?;
    let plan = plan(&sources, &tenant, &options);
    if let Some(path) = &args.markdown {
        std::fs::write(path, enroll_cli::markdown::plan_markdown(&plan))
            .map_err(|error| anyhow::anyhow!("cannot write {}: {error}", path.display()))?;
    }
    match args.format {
        Format::Text => print(&plan_text(&plan))?,
        Format::Json => print_json(&plan)?,
    }
    Ok(exit_code(plan.is_clean()))
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

async fn snapshot(
    out: &Path,
    catalog: Option<&str>,
    app_id: Option<&str>,
    group_pattern: &str,
    rosters: Option<&Path>,
) -> anyhow::Result<ExitCode> {
    let config = enroll_steps::config::graph_config(&enroll_steps::config::Env::from_process())?;
    let client = enroll_graph::GraphClient::new(config)?;
    let mut snapshot = match rosters {
        None => client.snapshot(catalog).await?,
        Some(dir) => {
            // Every address a row names, invalid rosters' too: a snapshot for planning them
            // once they are fixed should not lack their people.
            let sources = local::read_rosters(dir, enroll_core::roster::Limits::default())?;
            let emails: std::collections::BTreeSet<&str> = sources
                .iter()
                .flat_map(|source| source.roster.people.iter())
                .map(|person| person.email.as_str())
                .collect();
            let emails: Vec<&str> = emails.into_iter().collect();
            client.snapshot_for_people(catalog, &emails).await?
        }
    };
    if let Some(app_id) = app_id {
        let app = client.app_snapshot(app_id, group_pattern).await?;
        if app.applications.is_empty() {
            anyhow::bail!("no application has the client id {app_id}");
        }
        snapshot.applications = app.applications;
        snapshot.service_principals = app.service_principals;
        snapshot.groups = app.groups;
        snapshot.app_role_assignments = app.app_role_assignments;
    }
    let mut text = serde_json::to_string_pretty(&snapshot)?;
    text.push('\n');
    std::fs::write(out, text)
        .map_err(|error| anyhow::anyhow!("cannot write {}: {error}", out.display()))?;
    tracing::info!(
        "wrote {}: {} users, {} access packages, {} assignments",
        out.display(),
        snapshot.users.len(),
        snapshot.access_packages.len(),
        snapshot.assignments.len()
    );
    Ok(ExitCode::SUCCESS)
}

/// Waits for Ctrl-C, or SIGTERM where there is one (how scripts and service managers stop
/// the simulator), so the final state is still written.
async fn wait_for_stop() -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate())?;
        tokio::select! {
            waited = tokio::signal::ctrl_c() => waited,
            _ = term.recv() => Ok(()),
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c().await
    }
}

/// Reads `--client ID:SECRET[:ROLE,ROLE]`.
fn parse_sim_client(text: &str) -> Result<enroll_sim::SimClient, String> {
    let mut parts = text.splitn(3, ':');
    let (Some(client_id), Some(client_secret)) = (parts.next(), parts.next()) else {
        return Err("expected ID:SECRET or ID:SECRET:ROLE,ROLE".to_owned());
    };
    if client_id.is_empty() || client_secret.is_empty() {
        return Err("the client id and secret must not be empty".to_owned());
    }
    let roles = parts
        .next()
        .map(|roles| {
            roles
                .split(',')
                .map(str::trim)
                .filter(|r| !r.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    Ok(enroll_sim::SimClient {
        client_id: client_id.to_owned(),
        client_secret: client_secret.to_owned(),
        roles,
    })
}

async fn simulate(args: SimArgs) -> anyhow::Result<ExitCode> {
    for (name, share) in [
        ("--fault-rate", args.fault_rate),
        ("--drop-rate", args.drop_rate),
    ] {
        if !(0.0..=1.0).contains(&share) {
            anyhow::bail!("{name} must be between 0 and 1, not {share}");
        }
    }
    let snapshot = enroll_sim::read_snapshot(&args.tenant)?;
    let config = enroll_sim::SimConfig {
        port: args.port,
        tenant_id: args.tenant_id,
        domains: args.domains,
        client_id: args.client_id,
        client_secret: args.client_secret,
        client_roles: args.client_roles,
        clients: args.clients,
        apis: args.apis,
        tls: args.tls,
        latency_ms: args.latency_ms,
        throttle_rps: args.throttle_rps,
        fault_rate: args.fault_rate,
        drop_rate: args.drop_rate,
        consistency_delay_ms: args.consistency_delay_ms,
        delivery_delay_ms: args.delivery_delay_ms,
        seed: args.seed,
        ..enroll_sim::SimConfig::default()
    };
    let sim = enroll_sim::start(config, snapshot).await?;
    // The CA is written before anything is printed: a script that reads the port may use it.
    let ca = match sim.ca_pem() {
        Some(pem) => {
            let (path, temporary) = match &args.ca_file {
                Some(path) => (path.clone(), false),
                None => (
                    std::env::temp_dir().join(format!("enroll-sim-ca-{}.pem", sim.port())),
                    true,
                ),
            };
            std::fs::write(&path, pem)
                .map_err(|error| anyhow::anyhow!("cannot write {}: {error}", path.display()))?;
            Some((path, temporary))
        }
        None => None,
    };
    let ca_line = ca
        .as_ref()
        .map(|(path, _)| format!("ca: {}\n", path.display()))
        .unwrap_or_default();
    print(&format!(
        "listening on port {port}\n{ca_line}graph: {base}/v1.0\ntoken: {base}/{tenant}/oauth2/v2.0/token\nissuer: {issuer}\ndiscovery: {discovery}\njwks: {jwks}\nmanaged identity: {base}/msi/token\n",
        port = sim.port(),
        base = sim.base_url(),
        tenant = sim.tenant_id(),
        issuer = sim.issuer(),
        discovery = sim.discovery_url(),
        jwks = sim.jwks_url(),
    ))?;
    let waited = wait_for_stop().await;
    if let Some((path, true)) = &ca {
        // Only the file this run made in the temporary directory.
        let _ = std::fs::remove_file(path);
    }
    let last = sim.snapshot().await;
    let counters = sim.counters();
    sim.shutdown().await;
    print(&format!(
        "stopped: {} HTTP requests, {} Graph operations\n",
        counters.http_requests, counters.graph_operations
    ))?;
    waited.map_err(|error| anyhow::anyhow!("cannot wait for Ctrl-C: {error}"))?;
    if let Some(out) = args.out {
        std::fs::write(&out, serde_json::to_string_pretty(&last)?)
            .map_err(|error| anyhow::anyhow!("cannot write {}: {error}", out.display()))?;
    }
    Ok(ExitCode::SUCCESS)
}

async fn apply(args: ApplyArgs, bar: indicatif::ProgressBar) -> anyhow::Result<ExitCode> {
    use std::sync::Arc;

    use enroll_steps::World;
    use enroll_steps::config::{Env, step_config};
    use enroll_steps::runner::{RunOptions, run};
    use enroll_store::local::LocalStorage;

    let (guards, override_by) = args.guards.guards()?;
    let env = Env::from_process();
    let live = args.tenant == "graph";
    let mut config = step_config(&env, false)?;
    config.guards = Guards {
        allow_removals: false,
        allow_additions: false,
        ..guards
    };
    config.protected = args.guards.protected();
    config.removal_delay = removal_delay(args.removal_delay.as_deref())?;
    config.catalog = args.catalog.clone();
    config.invite_domains = match (&args.invite_domains, live) {
        (Some(list), _) => InviteDomains::parse(list),
        (None, false) => InviteDomains::Any,
        (None, true) => anyhow::bail!(
            "--invite-domains (or ENROLL_INVITE_DOMAINS) is required with --tenant graph: the e-mail domains guests may be invited from, `*` for any"
        ),
    };
    let Tenant {
        graph,
        sim,
        retry_delay,
    } = connect(&args.tenant, &env).await?;
    let storage = LocalStorage::new(&args.rosters, &args.reports);
    let world = Arc::new(World::new(graph.clone(), storage.clone(), config.clone()));
    let options = RunOptions {
        run_id: enroll_steps::new_run_id(std::time::SystemTime::now()),
        dry_run: args.dry_run,
        allow_removals: guards.allow_removals,
        allow_additions: guards.allow_additions,
        override_by: override_by.clone(),
        retry_delay,
        ..RunOptions::default()
    };
    if !args.dry_run && !config.removal_delay.is_zero() {
        tracing::info!(
            "removals wait {:?} (the undo window) before they are carried out, and this run waits with them; a roster corrected meanwhile keeps the person",
            config.removal_delay
        );
    }
    let started = std::time::Instant::now();
    if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        show_progress(&bar);
    }
    let summary = run(world, &options, |p| {
        // Rosters to plan and messages to run, as one count; messages are added as steps
        // hand work on, so the length grows.
        bar.set_length((p.planned.1 + p.messages.1) as u64);
        bar.set_position((p.planned.0 + p.messages.0) as u64);
        bar.set_message(format!(
            "planned {}/{} | messages {}/{} | retrying {}{}",
            p.planned.0,
            p.planned.1,
            p.messages.0,
            p.messages.1,
            p.retrying,
            if p.held > 0 {
                format!(" | {} removal messages wait out the undo window", p.held)
            } else {
                String::new()
            }
        ));
    })
    .await;
    bar.finish_and_clear();
    let summary = summary?;
    let elapsed = started.elapsed();
    let mut exit_clean = summary.applied_everything();
    let mut converged = None;
    if let Some(sim) = sim {
        if !args.dry_run {
            let after = sim.settled().await;
            let sources = local::read_rosters(&args.rosters, Limits::default())?;
            let options = PlanOptions {
                guards,
                override_by: override_by.clone(),
                mapping: local::read_mapping(None, &args.rosters)?,
                catalog: config.catalog.clone(),
                invite_domains: config.invite_domains.clone(),
                protected: config.protected.clone(),
                removals_not_before: None,
            };
            let check = plan(&sources, &after, &options);
            let left: usize = check
                .packages
                .iter()
                .filter(|p| p.blocked.is_none())
                .map(|p| p.invite.len() + p.assign.len() + p.remove.len())
                .sum();
            converged = Some(left);
            if let Some(out) = &args.out {
                std::fs::write(out, serde_json::to_string_pretty(&after)?)
                    .map_err(|error| anyhow::anyhow!("cannot write {}: {error}", out.display()))?;
            }
            exit_clean &= left == 0;
        }
        sim.shutdown().await;
    }
    let stats = graph.stats();
    match args.format {
        Format::Json => print_json(&serde_json::json!({
            "runId": summary.run_id,
            "dryRun": args.dry_run,
            "packages": summary.plans,
            "errors": summary.errors,
            "failures": summary.failures.iter().map(|f| serde_json::json!({"queue": f.queue, "roster": f.roster, "people": f.people, "error": f.error})).collect::<Vec<_>>(),
            "done": {
                "invited": summary.count(Action::Invite, Outcome::Done),
                "assigned": summary.count(Action::Assign, Outcome::Done),
                "removed": summary.count(Action::Remove, Outcome::Done),
            },
            "changesLeft": converged,
            "notDone": summary.not_done(),
            "matches": converged.map(|left| left == 0 && summary.applied_everything()),
            "graph": {"httpRequests": stats.http_requests, "operations": stats.operations, "retries": stats.retries, "throttled": stats.throttled},
            "seconds": elapsed.as_secs_f64(),
        }))?,
        Format::Text => print(&summary_text(
            &summary,
            &storage,
            args.dry_run,
            converged,
            stats,
            elapsed,
        ))?,
    }
    Ok(exit_code(exit_clean))
}

/// Draws `bar` on stderr: counts done of all, the rate, and where the run is.
fn show_progress(bar: &indicatif::ProgressBar) {
    bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
    // The template is a constant that parses; the default style is the fallback.
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{spinner} {elapsed:>3} [{bar:24}] {pos}/{len} ({per_sec}) {wide_msg}",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.enable_steady_tick(std::time::Duration::from_millis(200));
}

/// The tenant a command works on: Graph, or a snapshot served by an in-process simulator.
struct Tenant {
    graph: enroll_graph::GraphClient,
    sim: Option<enroll_sim::SimHandle>,
    /// Delay before the first retry of a failed step.
    retry_delay: std::time::Duration,
}

/// `--tenant graph` (credentials from the environment) or a snapshot file.
async fn connect(tenant: &str, env: &enroll_steps::config::Env) -> anyhow::Result<Tenant> {
    use enroll_graph::{Credential, GraphClient, GraphConfig, Secret};
    if tenant == "graph" {
        return Ok(Tenant {
            graph: GraphClient::new(enroll_steps::config::graph_config(env)?)?,
            sim: None,
            retry_delay: std::time::Duration::from_secs(2),
        });
    }
    let snapshot = enroll_sim::read_snapshot(Path::new(tenant))?;
    let sim_config = enroll_sim::SimConfig::default();
    let sim = enroll_sim::start(sim_config.clone(), snapshot).await?;
    let mut graph = GraphConfig::new(
        sim_config.tenant_id.clone(),
        Credential::ClientSecret {
            client_id: sim_config.client_id.clone(),
            secret: Secret::new(sim_config.client_secret.clone()),
        },
    );
    graph.graph_base_url = format!("{}/v1.0", sim.base_url());
    graph.authority_url = sim.base_url().to_owned();
    tracing::info!("simulated tenant from {tenant} at {}", sim.base_url());
    Ok(Tenant {
        graph: GraphClient::new(graph)?,
        sim: Some(sim),
        retry_delay: std::time::Duration::from_millis(200),
    })
}

/// The world of a `roles` command: the manifest (and mapping) as storage, the settings.
fn roles_world(
    args: &RolesArgs,
    graph: enroll_graph::GraphClient,
    reports: &Path,
) -> anyhow::Result<(
    enroll_steps::World<enroll_store::local::LocalStorage>,
    String,
)> {
    if !args.manifest.is_file() {
        anyhow::bail!(
            "cannot read manifest {}: not a file",
            args.manifest.display()
        );
    }
    if let Some(mapping) = &args.mapping
        && !mapping.is_file()
    {
        anyhow::bail!("cannot read mapping file {}: not a file", mapping.display());
    }
    if !args.group_pattern.contains("{value}") {
        anyhow::bail!(
            "--group-pattern `{}` has no `{{value}}`, so every app role would map to the same group",
            args.group_pattern
        );
    }
    let name = args
        .manifest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let folder = args
        .manifest
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let storage = enroll_store::local::LocalStorage::new(folder, reports)
        .with_manifests(&args.manifest, args.mapping.clone());
    let mut config =
        enroll_steps::config::step_config(&enroll_steps::config::Env::from_process(), false)?;
    config.app_id.clone_from(&args.app_id);
    config.group_pattern.clone_from(&args.group_pattern);
    Ok((enroll_steps::World::new(graph, storage, config), name))
}

fn print_rejected(
    manifest: &str,
    version: &str,
    errors: &[enroll_core::roles::RoleProblem],
    format: Format,
) -> anyhow::Result<()> {
    match format {
        Format::Text => print(&enroll_core::roles::rejected_text(manifest, errors)),
        Format::Json => print_json(&serde_json::json!({
            "manifest": manifest,
            "manifestVersion": version,
            "errors": errors,
        })),
    }
}

async fn roles_plan(args: &RolesArgs) -> anyhow::Result<ExitCode> {
    use enroll_steps::RolesRead;
    let env = enroll_steps::config::Env::from_process();
    let tenant = connect(&args.tenant, &env).await?;
    let (world, name) = roles_world(args, tenant.graph.clone(), Path::new("enroll-reports"))?;
    let read = enroll_steps::plan_manifest(&world, &name, args.allow_role_removals).await;
    if let Some(sim) = tenant.sim {
        sim.shutdown().await;
    }
    match read? {
        RolesRead::Missing => anyhow::bail!("cannot read manifest {}", args.manifest.display()),
        RolesRead::Rejected { version, errors } => {
            print_rejected(&name, &version, &errors, args.format)?;
            Ok(ExitCode::from(EXIT_INVALID))
        }
        RolesRead::Planned(plan) => {
            match args.format {
                Format::Text => print(&enroll_core::roles::plan_text(&plan))?,
                Format::Json => print_json(&plan)?,
            }
            Ok(exit_code(plan.is_clean()))
        }
    }
}

async fn roles_apply(args: &RolesApplyArgs) -> anyhow::Result<ExitCode> {
    use enroll_core::messages::{MapRolesMessage, Reason, VERSION};
    use enroll_steps::{Attempt, Disposition, RolesRead};
    let env = enroll_steps::config::Env::from_process();
    let tenant = connect(&args.roles.tenant, &env).await?;
    let (world, name) = roles_world(&args.roles, tenant.graph.clone(), &args.reports)?;
    let message = MapRolesMessage {
        v: VERSION,
        run_id: enroll_steps::new_run_id(std::time::SystemTime::now()),
        manifest: name.clone(),
        etag: None,
        reason: Reason::Cli,
        allow_role_removals: args.roles.allow_role_removals,
    };
    // Tries as the queue would: a failure that can pass is tried again, planning anew.
    let tries = world.config.max_dequeue_count.max(1);
    let mut delay = tenant.retry_delay;
    let mut number = 1;
    let outcome = loop {
        let attempt = Attempt::of(number, tries);
        let result = enroll_steps::map_roles(&world, &message, attempt).await;
        match enroll_steps::disposition(result.as_ref().map(|o| &o.output), attempt) {
            Disposition::RetryLater { reason, after } => {
                tracing::warn!("try {number} of {tries}: {reason}; trying again");
                tokio::time::sleep(delay.max(after.unwrap_or_default())).await;
                delay *= 2;
                number += 1;
            }
            Disposition::Done | Disposition::SetAside { .. } => break result,
        }
    }?;
    let Some(plan) = outcome.plan else {
        print_rejected(&name, "", &outcome.errors, args.roles.format)?;
        if let Some(sim) = tenant.sim {
            sim.shutdown().await;
        }
        return Ok(ExitCode::from(EXIT_INVALID));
    };
    // Did it take? Plan again: with Graph, lists may lag the writes for a moment.
    let left =
        match enroll_steps::plan_manifest(&world, &name, args.roles.allow_role_removals).await? {
            RolesRead::Planned(after) => {
                after.updates.len() + after.assign.len() + after.unassign.len()
            }
            _ => 0,
        };
    if let Some(sim) = tenant.sim {
        if let Some(out) = &args.out {
            let state = sim.snapshot().await;
            std::fs::write(out, serde_json::to_string_pretty(&state)?)
                .map_err(|error| anyhow::anyhow!("cannot write {}: {error}", out.display()))?;
        }
        sim.shutdown().await;
    }
    let records = &outcome.output.audit;
    let tally = |outcome: Outcome| {
        records
            .iter()
            .filter(|r| r.outcome == outcome && r.action != Action::MapRoles)
            .count()
    };
    let failed = tally(Outcome::Failed) + tally(Outcome::Retrying);
    match args.roles.format {
        Format::Json => print_json(&serde_json::json!({
            "runId": message.run_id,
            "plan": plan,
            "results": records,
            "changesLeft": left,
        }))?,
        Format::Text => {
            let mut text = enroll_core::roles::plan_text(&plan);
            text.push_str(&format!(
                "done {}, already done {}, skipped {}, failed {}\n{}\nreport in {}, audit trail in {}\n",
                tally(Outcome::Done),
                tally(Outcome::AlreadyDone),
                tally(Outcome::Skipped),
                failed,
                if left == 0 {
                    "the application's roles and groups now match the manifest".to_owned()
                } else {
                    format!("{left} changes are still outstanding")
                },
                args.reports.join(&message.run_id).display(),
                args.reports.join("audit.jsonl").display()
            ));
            print(&text)?;
        }
    }
    Ok(exit_code(plan.is_clean() && failed == 0 && left == 0))
}

async fn export(args: &ExportArgs) -> anyhow::Result<ExitCode> {
    use enroll_cli::export::{ExportOptions, export, read_tenant};
    if !args.group_pattern.contains("{value}") {
        anyhow::bail!(
            "--group-pattern `{}` has no `{{value}}`",
            args.group_pattern
        );
    }
    let env = enroll_steps::config::Env::from_process();
    let tenant = connect(&args.tenant, &env).await?;
    let read = read_tenant(
        &tenant.graph,
        args.catalog.as_deref(),
        args.app_id.as_deref(),
        &args.group_pattern,
    )
    .await;
    if let Some(sim) = tenant.sim {
        sim.shutdown().await;
    }
    let snapshot = read?;
    let files = export(
        &snapshot,
        &ExportOptions {
            app_id: args.app_id.clone(),
            group_pattern: args.group_pattern.clone(),
        },
    );
    for file in &files.files {
        let path = args.out.join(&file.path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|error| anyhow::anyhow!("cannot create {}: {error}", parent.display()))?;
        }
        std::fs::write(&path, &file.bytes)
            .map_err(|error| anyhow::anyhow!("cannot write {}: {error}", path.display()))?;
    }
    match args.format {
        Format::Json => print_json(&serde_json::json!({
            "out": args.out.display().to_string(),
            "files": files.files.iter().map(|f| &f.path).collect::<Vec<_>>(),
            "rosters": files.rosters,
            "people": files.people,
            "roles": files.roles,
            "warnings": files.warnings,
        }))?,
        Format::Text => {
            let mut text = String::new();
            for warning in &files.warnings {
                text.push_str(&format!(
                    "warning: {}\n",
                    enroll_core::escape::Terminal(warning)
                ));
            }
            text.push_str(&format!(
                "wrote {} rosters ({} people){} to {}\n",
                files.rosters,
                files.people,
                if args.app_id.is_some() {
                    format!(", {} app roles with their mapping", files.roles)
                } else {
                    String::new()
                },
                args.out.display()
            ));
            print(&text)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The last word of `apply`: that the tenant matches the rosters only when every roster was
/// applied, no package was blocked, nothing failed and (against a snapshot) nothing is left
/// to change; otherwise exactly what did not happen.
fn verdict(summary: &enroll_steps::runner::RunSummary, changes_left: Option<usize>) -> String {
    let mut not_done = summary.not_done();
    if let Some(left) = changes_left.filter(|left| *left > 0) {
        not_done.push(format!("{left} change(s) still outstanding in the tenant"));
    }
    match (not_done.is_empty(), changes_left) {
        (true, Some(_)) => "the tenant now matches the rosters\n".to_owned(),
        (true, None) => "every change the rosters ask for was made or requested\n".to_owned(),
        (false, checked) => {
            let mut text = if checked.is_some() {
                "the tenant does not match the rosters:\n".to_owned()
            } else {
                "not everything the rosters ask for was done:\n".to_owned()
            };
            for line in not_done {
                text.push_str(&format!("- {line}\n"));
            }
            text
        }
    }
}

/// The permissions `args` and the settings ask for; `manifests` says whether storage holds
/// app role manifests.
fn needs(
    args: &NeedsArgs,
    env: &enroll_steps::config::Env,
    manifests: bool,
) -> enroll_steps::permissions::Needs {
    enroll_steps::permissions::Needs {
        app_roles: args.app_roles || env.get("ENROLL_APP_ID").is_some() || manifests,
        catalog_role: args.catalog_role,
    }
}

async fn doctor(args: &DoctorArgs) -> anyhow::Result<ExitCode> {
    use enroll_cli::doctor::{self, Check, Report};
    use enroll_steps::Storage as _;
    use enroll_steps::config::{Env, graph_config, step_config};
    let env = Env::from_process();
    let mut report = Report::default();
    let settings = step_config(&env, false);
    report.checks.push(match &settings {
        Ok(_) => Check::ok("settings", "read"),
        Err(error) => Check::problem(
            "settings",
            error.to_string(),
            "fix the setting (README, Configuration)",
        ),
    });
    let catalog = settings.ok().and_then(|s| s.catalog);
    let store = enroll_store::StorageConfig::from_env()
        .map_err(anyhow::Error::from)
        .and_then(|config| Ok(enroll_store::Store::new(&config)?))
        .map(|store| match env.get("ENROLL_STORAGE_PREFIX") {
            Some(prefix) => store.with_layout(enroll_store::Layout::with_prefix(prefix)),
            None => store,
        });
    let (storage_checks, manifests) = match &store {
        Ok(store) => (
            doctor::check_storage(store, env.get("ENROLL_STORAGE_PREFIX").unwrap_or_default())
                .await,
            store.manifest_names().await.is_ok_and(|m| !m.is_empty()),
        ),
        Err(error) => (
            vec![Check::problem(
                "storage",
                format!("{error:#}"),
                "set AzureWebJobsStorage, or its identity-based form (README, Configuration)",
            )],
            false,
        ),
    };
    let needs = needs(&args.needs, &env, manifests);
    let graph = graph_config(&env)
        .map_err(anyhow::Error::from)
        .and_then(|config| {
            let credential = config.credential.clone();
            Ok((enroll_graph::GraphClient::new(config)?, credential))
        });
    match &graph {
        Ok((client, credential)) => report.checks.extend(
            doctor::check_graph(client, credential, args.principal.as_deref(), needs).await,
        ),
        Err(error) => report.checks.push(Check::problem(
            "token",
            format!("{error:#}"),
            "set ENROLL_TENANT_ID and a credential (README, Configuration)",
        )),
    }
    report.checks.push(doctor::check_invite_domains(
        env.get("ENROLL_INVITE_DOMAINS"),
    ));
    report.checks.extend(storage_checks);
    if let Ok((client, _)) = &graph {
        let catalog = catalog.as_deref();
        let rosters = match (&args.rosters, &store) {
            (Some(folder), _) => {
                let local = local::LocalStorage::new(folder.clone(), "enroll-reports");
                let place = folder.display().to_string();
                doctor::check_rosters(&local, &place, client, catalog).await
            }
            (None, Ok(store)) => {
                let place = format!("container {}", store.layout().rosters);
                doctor::check_rosters(store, &place, client, catalog).await
            }
            (None, Err(_)) => Vec::new(),
        };
        report.checks.extend(rosters);
    }
    match args.format {
        Format::Text => print(&report.to_text())?,
        Format::Json => print_json(&serde_json::json!({
            "checks": report.checks,
            "problems": report.problems(),
        }))?,
    }
    Ok(exit_code(report.problems() == 0))
}

async fn grant(args: &GrantArgs) -> anyhow::Result<ExitCode> {
    use enroll_graph::{Credential, GraphConfig, Secret};
    use enroll_steps::config::{Env, graph_config, graph_endpoints};
    let env = Env::from_process();
    let config = if args.token_stdin {
        let mut token = String::new();
        std::io::stdin().read_line(&mut token)?;
        let token = token.trim();
        if token.is_empty() {
            anyhow::bail!("--token-stdin: standard input holds no token");
        }
        // The tenant only names a token endpoint, which a given token does not need.
        let tenant = env.get("ENROLL_TENANT_ID").unwrap_or("organizations");
        graph_endpoints(
            &env,
            GraphConfig::new(tenant, Credential::AccessToken(Secret::new(token))),
        )?
    } else {
        graph_config(&env)?
    };
    let client = enroll_graph::GraphClient::new(config)?;
    let needs = needs(&args.needs, &env, false);
    let report = enroll_cli::grant::grant(&client, &args.principal, needs, args.dry_run).await?;
    match args.format {
        Format::Text => print(&report.to_text(needs))?,
        Format::Json => print_json(&report.to_json(args.dry_run))?,
    }
    Ok(exit_code(report.succeeded()))
}

fn summary_text(
    summary: &enroll_steps::runner::RunSummary,
    storage: &enroll_store::local::LocalStorage,
    dry_run: bool,
    converged: Option<usize>,
    stats: enroll_graph::GraphStats,
    elapsed: std::time::Duration,
) -> String {
    use enroll_core::escape::{Terminal, terminal};
    use std::fmt::Write as _;
    let mut out = String::new();
    let width = summary
        .plans
        .iter()
        .map(|p| terminal(&p.access_package.display_name).chars().count())
        .max()
        .unwrap_or(7)
        .max(7);
    let _ = writeln!(
        out,
        "{:<width$}  {:>7} {:>7} {:>7} {:>9}  status",
        "package", "invite", "assign", "remove", "unchanged"
    );
    for plan in &summary.plans {
        let done = |action| {
            summary
                .outcomes
                .iter()
                .filter(|((r, a, o), _)| *r == plan.roster && *a == action && *o == Outcome::Done)
                .map(|(_, n)| n)
                .sum::<usize>()
        };
        let status = match (plan.blocked, dry_run) {
            (Some(reason), _) => format!(
                "BLOCKED {}",
                serde_json::to_value(reason)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default()
            ),
            (None, true) => "planned".into(),
            (None, false) if plan.has_changes() => format!(
                "done {}/{}/{}",
                done(Action::Invite),
                done(Action::Assign),
                done(Action::Remove)
            ),
            (None, false) => "in line".into(),
        };
        let _ = writeln!(
            out,
            "{:<width$}  {:>7} {:>7} {:>7} {:>9}  {status}",
            Terminal(&plan.access_package.display_name),
            plan.invite.len(),
            plan.assign.len(),
            plan.remove.len(),
            plan.unchanged
        );
    }
    for plan in &summary.plans {
        if let Some(note) = plan.override_note() {
            let _ = writeln!(out, "override: {}: {note}", plan.roster);
        }
        if let Some(refused) = &plan.override_refused {
            let _ = writeln!(out, "override refused: {}: {refused}", plan.roster);
        }
        for kept in &plan.kept {
            let _ = writeln!(
                out,
                "kept: {}: {} (assignment {}): {}",
                plan.roster,
                if kept.email.is_empty() {
                    "(no address)"
                } else {
                    &kept.email
                },
                kept.assignment_id,
                kept.reason.describe()
            );
        }
    }
    for error in &summary.errors {
        let _ = writeln!(
            out,
            "not applied: {}: {} [{}]",
            Terminal(&error.roster),
            Terminal(&error.message),
            Terminal(&error.code)
        );
    }
    for failure in &summary.failures {
        let _ = writeln!(
            out,
            "FAILED ({} queue, {} people): {}: {}",
            failure.queue,
            failure.people,
            Terminal(&failure.roster),
            Terminal(&failure.error)
        );
    }
    let _ = writeln!(
        out,
        "\n{} packages; invited {}, assigned {}, removed {}; {} blocked, {} roster errors, {} failed messages",
        summary.plans.len(),
        summary.count(Action::Invite, Outcome::Done),
        summary.count(Action::Assign, Outcome::Done),
        summary.count(Action::Remove, Outcome::Done),
        summary.plans.iter().filter(|p| p.blocked.is_some()).count(),
        summary.errors.len(),
        summary.failures.len()
    );
    if !dry_run {
        let _ = write!(out, "{}", verdict(summary, converged));
    }
    let _ = writeln!(
        out,
        "{:.1} s, {} Graph requests ({} operations, {} retries); reports in {}, audit trail in {}",
        elapsed.as_secs_f64(),
        stats.http_requests,
        stats.operations,
        stats.retries,
        storage
            .report_path(&summary.run_id, "")
            .parent()
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
        storage.audit_path().display()
    );
    out
}
