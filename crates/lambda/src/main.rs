//! enroll's HTTP API on AWS Lambda (`cargo lambda build --release -p enroll-lambda`).
//!
//! Settings are read once at start, like the handler's (README, "Configuration"): storage
//! (`AzureWebJobsStorage`, `ENROLL_STORAGE_PREFIX`), Graph (`ENROLL_TENANT_ID` and a
//! client secret or certificate: Lambda has no managed identity of Azure's), the steps'
//! settings and `ENROLL_API_*`. The first missing or malformed one stops the function with
//! its name. Logs are plain lines on stderr, which Lambda keeps in CloudWatch.

use std::convert::Infallible;
use std::process::ExitCode;
use std::sync::Arc;

use enroll_api::{Api, ApiSettings};
use enroll_graph::GraphClient;
use enroll_steps::World;
use enroll_steps::config::{Env, graph_config, log_filter, step_config};
use enroll_store::{Layout, StorageConfig, Store};
use lambda_http::service_fn;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt as _;

fn main() -> ExitCode {
    let env = Env::from_process();
    let (name, filter) = log_filter(&env);
    let targets = match filter.parse::<Targets>() {
        Ok(targets) => targets,
        Err(error) => {
            eprintln!("enroll-lambda: {name} is not valid: {error}");
            return ExitCode::FAILURE;
        }
    };
    let subscriber = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .finish()
        .with(targets);
    let _ = tracing::subscriber::set_global_default(subscriber);
    match run(&env) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("enroll-lambda: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(env: &Env) -> anyhow::Result<()> {
    let steps = step_config(env, true)?;
    let graph = GraphClient::new(graph_config(env)?)?;
    let mut store = Store::new(&StorageConfig::from_env()?)?;
    if let Some(prefix) = env.get("ENROLL_STORAGE_PREFIX") {
        store = store.with_layout(Layout::with_prefix(prefix));
    }
    let settings = ApiSettings::from_env(env)?;
    let world = Arc::new(World::new(graph, store, steps));
    let api = Arc::new(Api::new(world, settings)?);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime
        .block_on(lambda_http::run(service_fn(move |request| {
            let api = Arc::clone(&api);
            async move { Ok::<_, Infallible>(enroll_lambda::respond(&api, request).await) }
        })))
        .map_err(|error| anyhow::anyhow!("the Lambda runtime stopped: {error}"))
}
