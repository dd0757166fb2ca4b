//! The `enroll` command line: validate and plan rosters.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

use enroll::local::{self, LocalError};
use enroll::plan::{Guards, InviteDomains, PlanOptions, plan};
use enroll::report::{FileReport, ValidationReport, plan_text};
use enroll::roster::Limits;
use enroll::steps::audit::{Action, Outcome};

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
    },
    /// Serve a simulated tenant (Microsoft Graph over HTTP) from a snapshot until Ctrl-C.
    Sim(SimArgs),
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
    /// Let plans through that the removal guard or the empty-roster rule would block.
    #[arg(long)]
    allow_removals: bool,
    /// Catalog searched for rosters not in a catalog folder (display name or id).
    #[arg(long, env = "ENROLL_CATALOG")]
    catalog: Option<String>,
    /// Removals always allowed per package.
    #[arg(long, env = "ENROLL_MAX_REMOVALS", default_value_t = 10)]
    max_removals: usize,
    /// Past --max-removals, the share of current members that may be removed, in percent.
    #[arg(long, env = "ENROLL_MAX_REMOVAL_PERCENT", default_value_t = 20.0)]
    max_removal_percent: f64,
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
    /// Client id the token endpoint accepts.
    #[arg(long, default_value = "enroll-sim-client")]
    client_id: String,
    /// Client secret the token endpoint accepts.
    #[arg(long, default_value = "enroll-sim-secret")]
    client_secret: String,
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
    /// Let plans through that the removal guard or the empty-roster rule would block.
    #[arg(long)]
    allow_removals: bool,
    /// Removals always allowed per package.
    #[arg(long, env = "ENROLL_MAX_REMOVALS", default_value_t = 10)]
    max_removals: usize,
    /// Past --max-removals, the share of current members that may be removed, in percent.
    #[arg(long, env = "ENROLL_MAX_REMOVAL_PERCENT", default_value_t = 20.0)]
    max_removal_percent: f64,
    /// Domains people may be invited from, comma-separated; `*` for any.
    #[arg(long, env = "ENROLL_INVITE_DOMAINS", default_value = "*")]
    invite_domains: String,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
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
    let outcome = match cli.command {
        Command::Validate { paths, format } => validate(&paths, format),
        Command::Plan(args) => plan_rosters(&args),
        Command::Apply(args) => runtime().and_then(|rt| rt.block_on(apply(args))),
        Command::Snapshot { out, catalog } => {
            runtime().and_then(|rt| rt.block_on(snapshot(&out, catalog.as_deref())))
        }
        Command::Sim(args) => runtime().and_then(|rt| rt.block_on(simulate(args))),
    };
    match outcome {
        Ok(code) => code,
        Err(error) => {
            eprintln!("enroll: {error:#}");
            ExitCode::from(EXIT_USAGE)
        }
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

fn plan_options(args: &PlanArgs, rosters: &Path) -> Result<PlanOptions, LocalError> {
    Ok(PlanOptions {
        guards: Guards {
            max_removals: args.max_removals,
            max_removal_percent: args.max_removal_percent,
            allow_removals: args.allow_removals,
        },
        mapping: local::read_mapping(args.mapping.as_deref(), rosters)?,
        catalog: args.catalog.clone(),
        invite_domains: InviteDomains::parse(&args.invite_domains),
    })
}

fn plan_rosters(args: &PlanArgs) -> anyhow::Result<ExitCode> {
    if !(0.0..=100.0).contains(&args.max_removal_percent) {
        anyhow::bail!(
            "--max-removal-percent must be between 0 and 100, not {}",
            args.max_removal_percent
        );
    }
    let tenant = local::read_snapshot(&args.tenant)?;
    let sources = local::read_rosters(&args.rosters, Limits::default())?;
    if sources.is_empty() {
        anyhow::bail!("no *.csv files found in {}", args.rosters.display());
    }
    let options = plan_options(args, &args.rosters)?;
    let plan = plan(&sources, &tenant, &options);
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

async fn snapshot(out: &Path, catalog: Option<&str>) -> anyhow::Result<ExitCode> {
    let config = enroll::config::graph_config(&enroll::config::Env::from_process())?;
    let client = enroll::graph::GraphClient::new(config)?;
    let snapshot = client.snapshot(catalog).await?;
    let mut text = serde_json::to_string_pretty(&snapshot)?;
    text.push('\n');
    std::fs::write(out, text)
        .map_err(|error| anyhow::anyhow!("cannot write {}: {error}", out.display()))?;
    eprintln!(
        "wrote {}: {} users, {} access packages, {} assignments",
        out.display(),
        snapshot.users.len(),
        snapshot.access_packages.len(),
        snapshot.assignments.len()
    );
    Ok(ExitCode::SUCCESS)
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
    let snapshot = enroll::sim::read_snapshot(&args.tenant)?;
    let config = enroll::sim::SimConfig {
        port: args.port,
        client_id: args.client_id,
        client_secret: args.client_secret,
        latency_ms: args.latency_ms,
        throttle_rps: args.throttle_rps,
        fault_rate: args.fault_rate,
        drop_rate: args.drop_rate,
        consistency_delay_ms: args.consistency_delay_ms,
        delivery_delay_ms: args.delivery_delay_ms,
        seed: args.seed,
        ..enroll::sim::SimConfig::default()
    };
    let last = enroll::sim::run_until_ctrl_c(config, snapshot).await?;
    if let Some(out) = args.out {
        std::fs::write(&out, serde_json::to_string_pretty(&last)?)
            .map_err(|error| anyhow::anyhow!("cannot write {}: {error}", out.display()))?;
    }
    Ok(ExitCode::SUCCESS)
}

async fn apply(args: ApplyArgs) -> anyhow::Result<ExitCode> {
    use std::sync::Arc;

    use enroll::config::{Env, graph_config, step_config};
    use enroll::graph::{Credential, GraphClient, GraphConfig, Secret};
    use enroll::local::LocalStorage;
    use enroll::runner::{RunOptions, run};
    use enroll::steps::World;

    if !(0.0..=100.0).contains(&args.max_removal_percent) {
        anyhow::bail!(
            "--max-removal-percent must be between 0 and 100, not {}",
            args.max_removal_percent
        );
    }
    let env = Env::from_process();
    let live = args.tenant == "graph";
    let mut config = step_config(&env, false)?;
    config.guards.max_removals = args.max_removals;
    config.guards.max_removal_percent = args.max_removal_percent;
    config.catalog = args.catalog.clone();
    config.invite_domains = match (&args.invite_domains, live) {
        (Some(list), _) => InviteDomains::parse(list),
        (None, false) => InviteDomains::Any,
        (None, true) => anyhow::bail!(
            "--invite-domains (or ENROLL_INVITE_DOMAINS) is required with --tenant graph: the e-mail domains guests may be invited from, `*` for any"
        ),
    };
    let mut retry_delay = std::time::Duration::from_secs(2);
    let (graph, sim) = if live {
        (GraphClient::new(graph_config(&env)?)?, None)
    } else {
        let snapshot = enroll::sim::read_snapshot(Path::new(&args.tenant))?;
        let sim_config = enroll::sim::SimConfig::default();
        let sim = enroll::sim::start(sim_config.clone(), snapshot).await?;
        let mut graph = GraphConfig::new(
            sim_config.tenant_id.clone(),
            Credential::ClientSecret {
                client_id: sim_config.client_id.clone(),
                secret: Secret::new(sim_config.client_secret.clone()),
            },
        );
        graph.graph_base_url = format!("{}/v1.0", sim.base_url());
        graph.authority_url = sim.base_url().to_owned();
        retry_delay = std::time::Duration::from_millis(200);
        eprintln!(
            "simulated tenant from {} at {}",
            args.tenant,
            sim.base_url()
        );
        (GraphClient::new(graph)?, Some(sim))
    };
    let storage = LocalStorage::new(&args.rosters, &args.reports);
    let world = Arc::new(World::new(graph.clone(), storage.clone(), config.clone()));
    let options = RunOptions {
        run_id: enroll::steps::new_run_id(std::time::SystemTime::now()),
        dry_run: args.dry_run,
        allow_removals: args.allow_removals,
        retry_delay,
        ..RunOptions::default()
    };
    let started = std::time::Instant::now();
    let show = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let summary = run(world, &options, |p| {
        if show {
            eprint!(
                "\r\x1b[Kplanned {}/{} | messages {}/{} | retrying {}",
                p.planned.0, p.planned.1, p.messages.0, p.messages.1, p.retrying
            );
        }
    })
    .await?;
    if show {
        eprintln!();
    }
    let elapsed = started.elapsed();
    let mut exit_clean = summary.errors.is_empty()
        && summary.failures.is_empty()
        && summary.plans.iter().all(|p| p.blocked.is_none());
    let mut converged = None;
    if let Some(sim) = sim {
        if !args.dry_run {
            let after = sim.settled().await;
            let sources = local::read_rosters(&args.rosters, Limits::default())?;
            let options = PlanOptions {
                guards: Guards {
                    allow_removals: args.allow_removals,
                    ..config.guards
                },
                mapping: local::read_mapping(None, &args.rosters)?,
                catalog: config.catalog.clone(),
                invite_domains: config.invite_domains.clone(),
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

fn summary_text(
    summary: &enroll::runner::RunSummary,
    storage: &enroll::local::LocalStorage,
    dry_run: bool,
    converged: Option<usize>,
    stats: enroll::graph::GraphStats,
    elapsed: std::time::Duration,
) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let width = summary
        .plans
        .iter()
        .map(|p| p.access_package.display_name.chars().count())
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
            plan.access_package.display_name,
            plan.invite.len(),
            plan.assign.len(),
            plan.remove.len(),
            plan.unchanged
        );
    }
    for error in &summary.errors {
        let _ = writeln!(
            out,
            "not applied: {}: {} [{}]",
            error.roster, error.message, error.code
        );
    }
    for failure in &summary.failures {
        let _ = writeln!(
            out,
            "FAILED ({} queue, {} people): {}: {}",
            failure.queue, failure.people, failure.roster, failure.error
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
    if let Some(left) = converged {
        if left == 0 {
            let _ = writeln!(out, "the tenant now matches the rosters");
        } else {
            let _ = writeln!(out, "{left} changes are still outstanding");
        }
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
