//! What more than one benchmark runs: `enroll apply --tenant graph`, the release binary,
//! against a simulated tenant.

use std::error::Error;
use std::path::Path;
use std::time::{Duration, Instant};

use enroll_sim::SimHandle;
use serde_json::Value;

/// `enroll apply ROSTERS --tenant graph` (the release binary) against `sim`, inviting from
/// `invite_domains`: its wall time from spawn to exit and its JSON summary. The wait is on
/// a blocking thread, so a simulator on the caller's runtime keeps every worker.
pub async fn enroll_apply(
    sim: &SimHandle,
    rosters: &Path,
    reports: &Path,
    invite_domains: &str,
) -> Result<(Duration, Value), Box<dyn Error>> {
    let mut command = std::process::Command::new(enroll_harness::workspace_binary("enroll")?);
    command
        .arg("apply")
        .arg(rosters)
        .args(["--tenant", "graph", "--format", "json", "--reports"])
        .arg(reports)
        .envs(sim.client_settings())
        .env("ENROLL_INVITE_DOMAINS", invite_domains)
        .env("ENROLL_INVITE_REDIRECT_URL", "https://myapps.microsoft.com");
    let started = Instant::now();
    let output = tokio::task::spawn_blocking(move || command.output()).await??;
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
    Ok((wall, serde_json::from_slice(&output.stdout)?))
}
