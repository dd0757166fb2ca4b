//! Prints how the Functions pipeline performs on the example tenant, driven through the host
//! harness over Azurite, with the real `handler` binary and the simulated tenant.
//!
//! Figures (issue 4): time from uploading the 62 example rosters to a tenant that matches
//! them; the handler's own time per invocation (a `RosterUploaded` invocation does no Graph
//! or storage I/O, so its round trip bounds the handler's own work from above; goal: under
//! 1 ms at the median); its start-up time (spawn to answering `GET /`; goal: under 50 ms);
//! and its peak memory (VmHWM; goal: under 30 MiB). Printed, never asserted.
//!
//! Needs Azurite: run `./scripts/bench` (it starts and stops Azurite), or set
//! `ENROLL_TEST_STORAGE` yourself, build the binaries (`cargo build --release --workspace`)
//! and run `cargo bench -p enroll-tests --bench pipeline`.

use std::error::Error;
use std::path::Path;
use std::time::{Duration, Instant};

use enroll_core::plan::{PlanOptions, plan};
use enroll_core::roster::Limits;
use enroll_core::tenant::TenantSnapshot;
use enroll_harness::{Harness, HarnessConfig};
use enroll_sim::{SimConfig, SimHandle, start};
use enroll_store::local::read_rosters;
use serde_json::{Map, Value, json};

mod support;

type BenchResult<T> = Result<T, Box<dyn Error>>;

fn percentile(values: &mut [Duration], share: f64) -> Duration {
    values.sort();
    let index = ((values.len() as f64 - 1.0) * share).round() as usize;
    values.get(index).copied().unwrap_or_default()
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}

async fn changes_left(sim: &SimHandle, rosters: &Path) -> BenchResult<usize> {
    let tenant = sim.settled().await;
    let sources = read_rosters(rosters, Limits::default())?;
    let check = plan(&sources, &tenant, &PlanOptions::default());
    Ok(check
        .packages
        .iter()
        .map(|p| p.invite.len() + p.assign.len() + p.remove.len())
        .sum())
}

async fn harness(sim: &SimHandle, storage: &str, log: &Path) -> BenchResult<Harness> {
    let mut config = HarnessConfig::new(
        enroll_harness::workspace_binary("handler")?,
        env!("CARGO_MANIFEST_DIR"),
        storage,
    );
    config.prefix = format!("b{:08x}-", fastrand::u32(..));
    config.visibility_timeout = Some(Duration::from_millis(500));
    config.handler_log = Some(log.to_owned());
    config.env = sim.client_settings();
    config
        .env
        .push(("ENROLL_INVITE_DOMAINS".into(), "*".into()));
    config
        .env
        .push(("ENROLL_GRAPH_RETRY_BASE_MS".into(), "100".into()));
    Ok(Harness::start(config).await?)
}

#[tokio::main]
async fn main() -> BenchResult<()> {
    let storage = std::env::var("ENROLL_TEST_STORAGE")
        .map_err(|_| "ENROLL_TEST_STORAGE is not set: run ./scripts/bench, which starts Azurite")?;
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let rosters = root.join("examples/rosters");
    let tenant: TenantSnapshot =
        serde_json::from_slice(&std::fs::read(root.join("examples/tenant.json"))?)?;
    let config = SimConfig {
        latency_ms: 20,
        delivery_delay_ms: 200,
        ..SimConfig::default()
    };
    let sim = start(config.clone(), tenant.clone()).await?;
    let log = std::env::temp_dir().join(format!("enroll-bench-handler-{}.log", std::process::id()));
    let mut harness = harness(&sim, &storage, &log).await?;

    // 1. Upload to a matching tenant.
    let sources = read_rosters(&rosters, Limits::default())?;
    let before = changes_left(&sim, &rosters).await?;
    let started = Instant::now();
    for source in &sources {
        harness
            .upload_roster(&source.path, std::fs::read(rosters.join(&source.path))?)
            .await?;
    }
    harness.run_until_idle(Duration::from_secs(600)).await?;
    let processed = started.elapsed();
    let left = changes_left(&sim, &rosters).await?;
    let matched = started.elapsed();
    let counters = harness.counters().clone();
    let invocations: u64 = counters.invocations.values().sum();
    println!(
        "example tenant: {} rosters, {before} changes planned; simulated Graph latency 20 ms, delivery 200 ms",
        sources.len()
    );
    println!(
        "upload to matching tenant: {:.2} s (queues drained after {:.2} s); {invocations} invocations {:?}; {} failed tries; changes left: {left}",
        matched.as_secs_f64(),
        processed.as_secs_f64(),
        counters.invocations,
        counters.failures.values().sum::<u64>()
    );
    let graph = sim.counters();
    println!(
        "Graph: {} HTTP requests, {} operations",
        graph.http_requests, graph.graph_operations
    );
    // The same rosters through `enroll apply` on a tenant of its own, what the Functions
    // path's requests are set against (issue 13: within 1.3x).
    let apply_sim = start(config, tenant).await?;
    let reports = tempfile::tempdir()?;
    let applied = support::enroll_apply(&apply_sim, &rosters, reports.path(), "*").await?;
    let apply_wall = applied.wall;
    let apply = apply_sim.counters();
    let apply_routes = apply_sim.operations_by_route();
    apply_sim.shutdown().await;
    println!(
        "enroll apply on the same rosters: {} HTTP requests, {} operations, {:.2} s; the Functions path makes {:.2}x its requests (goal <= 1.3) and {:.2}x its operations",
        apply.http_requests,
        apply.graph_operations,
        apply_wall.as_secs_f64(),
        graph.http_requests as f64 / apply.http_requests.max(1) as f64,
        graph.graph_operations as f64 / apply.graph_operations.max(1) as f64
    );
    println!(
        "enroll apply's own account: {} s; peak memory {}",
        applied.summary["seconds"],
        support::mib(applied.peak_kib)
    );
    support::print_routes("the Functions path", &sim.operations_by_route());
    support::print_routes("enroll apply", &apply_routes);
    for (function, latencies) in &counters.latencies {
        let mut latencies = latencies.clone();
        println!(
            "  {function:<15} {:>5} invocations, median {:>8.2} ms, p95 {:>8.2} ms (Graph and storage included)",
            latencies.len(),
            ms(percentile(&mut latencies, 0.5)),
            ms(percentile(&mut latencies, 0.95))
        );
    }

    // 2. The handler's own time: invocations that do no I/O.
    let mut own = Vec::new();
    for i in 0..2_000 {
        let mut data = Map::new();
        data.insert("roster".into(), Value::String("QQ==".into()));
        let mut metadata = Map::new();
        metadata.insert("name".into(), json!(format!("\"bench/Roster {i}.csv\"")));
        metadata.insert("Properties".into(), json!({"ETag": "\"0x1\""}));
        let started = Instant::now();
        let answer = harness.invoke("RosterUploaded", data, metadata).await;
        own.push(started.elapsed());
        if let enroll_harness::Invoked::Failed(reason) = answer {
            return Err(format!("RosterUploaded failed: {reason}").into());
        }
    }
    println!(
        "handler own time per invocation (RosterUploaded round trip over loopback, 2000 calls): median {:.3} ms, p95 {:.3} ms (goal: median < 1 ms)",
        ms(percentile(&mut own, 0.5)),
        ms(percentile(&mut own, 0.95))
    );
    let peak = harness.handler_peak_memory_kib();

    // 3. Start-up: spawn to answering GET /.
    for _ in 0..10 {
        harness.kill_handler();
        harness.start_handler().await?;
    }
    let mut startups = harness.counters().startups.clone();
    println!(
        "handler start-up (spawn to GET / answered, {} starts): median {:.1} ms, max {:.1} ms (goal: < 50 ms)",
        startups.len(),
        ms(percentile(&mut startups, 0.5)),
        ms(percentile(&mut startups, 1.0))
    );
    match peak {
        Some(kib) => println!(
            "handler peak memory after the run (VmHWM): {:.1} MiB (goal: < 30 MiB)",
            kib as f64 / 1024.0
        ),
        None => println!("handler peak memory: not available on this system"),
    }
    if left != 0 {
        return Err(format!(
            "the tenant does not match the rosters: {left} changes left; handler log: {}",
            log.display()
        )
        .into());
    }
    harness.kill_handler();
    sim.shutdown().await;
    Ok(())
}
