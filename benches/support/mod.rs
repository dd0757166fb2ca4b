//! What more than one benchmark runs: `enroll apply --tenant graph`, the release binary,
//! against a simulated tenant.

use std::error::Error;
use std::path::Path;
use std::time::{Duration, Instant};

use enroll_sim::SimHandle;
use serde_json::Value;

/// What one `enroll apply` cost, as seen from outside the process.
pub struct Applied {
    /// From spawn to exit.
    pub wall: Duration,
    /// Its JSON summary.
    pub summary: Value,
    /// Its peak resident memory (`VmHWM` in `/proc/<pid>/status`, polled every 20 ms until
    /// it exits), in KiB; `None` where `/proc` has no such line.
    pub peak_kib: Option<u64>,
}

/// A peak as the benchmarks print it.
pub fn mib(kib: Option<u64>) -> String {
    kib.map_or_else(
        || "unknown (no /proc)".to_owned(),
        |k| format!("{:.1} MiB", k as f64 / 1024.0),
    )
}

/// `VmHWM` of a running process, in KiB.
fn peak_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// `enroll apply ROSTERS --tenant graph` (the release binary) against `sim`, inviting from
/// `invite_domains`. The wait is on a blocking thread, so a simulator on the caller's
/// runtime keeps every worker.
pub async fn enroll_apply(
    sim: &SimHandle,
    rosters: &Path,
    reports: &Path,
    invite_domains: &str,
) -> Result<Applied, Box<dyn Error>> {
    let mut command = std::process::Command::new(enroll_harness::workspace_binary("enroll")?);
    command
        .arg("apply")
        .arg(rosters)
        .args(["--tenant", "graph", "--format", "json", "--reports"])
        .arg(reports)
        .envs(sim.client_settings())
        .env("ENROLL_INVITE_DOMAINS", invite_domains)
        .env("ENROLL_INVITE_REDIRECT_URL", "https://myapps.microsoft.com")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let started = Instant::now();
    let (output, peak_kib) = tokio::task::spawn_blocking(move || {
        let child = command.spawn()?;
        let pid = child.id();
        let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let watcher = {
            let done = std::sync::Arc::clone(&done);
            std::thread::spawn(move || {
                let mut peak = None;
                while !done.load(std::sync::atomic::Ordering::Relaxed) {
                    if let Some(now) = peak_kib(pid) {
                        peak = Some(peak.map_or(now, |p: u64| p.max(now)));
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
                peak
            })
        };
        let output = child.wait_with_output();
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        let peak = watcher.join().ok().flatten();
        output.map(|o| (o, peak))
    })
    .await??;
    let wall = started.elapsed();
    if !output.status.success() {
        return Err(format!(
            "enroll apply failed ({}):\n{}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
        .into());
    }
    Ok(Applied {
        wall,
        summary: serde_json::from_slice(&output.stdout)?,
        peak_kib,
    })
}

/// Prints where a run's Graph operations went, by method and route, most first.
pub fn print_routes(name: &str, routes: &std::collections::BTreeMap<String, u64>) {
    let mut routes: Vec<(&String, &u64)> = routes.iter().collect();
    routes.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    println!("{name}: Graph operations by route");
    for (route, count) in routes {
        println!("  {count:>7}  {route}");
    }
}
