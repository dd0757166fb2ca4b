//! The Azure Functions custom handler: a warp server on `FUNCTIONS_CUSTOMHANDLER_PORT`
//! serving the functions in `function_definitions/` (see `enroll_handler`).
//!
//! Settings are read and checked once at start; a missing or malformed one stops the
//! handler with a message naming it (the host shows the handler's stderr).

use std::process::ExitCode;
use std::sync::Arc;

use enroll_graph::GraphClient;
use enroll_handler::app::app;
use enroll_handler::check_definitions;
use enroll_handler::definitions::read_function_definitions;
use enroll_steps::World;
use enroll_steps::config::{Env, graph_config, step_config};
use enroll_store::{Layout, StorageConfig, Store};

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("enroll handler: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<()> {
    let env = Env::from_process();
    let port: u16 = env
        .get("FUNCTIONS_CUSTOMHANDLER_PORT")
        .ok_or_else(|| anyhow::anyhow!("FUNCTIONS_CUSTOMHANDLER_PORT is not set: the Functions host sets it; set it yourself to run the handler alone"))?
        .parse()
        .map_err(|error| anyhow::anyhow!("FUNCTIONS_CUSTOMHANDLER_PORT is not valid: {error}"))?;
    let steps = step_config(&env, true)?;
    let graph = GraphClient::new(graph_config(&env)?)?;
    let storage = StorageConfig::from_env()?;
    let mut store = Store::new(&storage)?;
    if let Some(prefix) = env.get("ENROLL_STORAGE_PREFIX") {
        store = store.with_layout(Layout::with_prefix(prefix));
    }
    // A definition the handler does not serve (or the reverse) would fail only at run time
    // in Azure; say so at start instead.
    if let Some(root) = env.get("FUNCTIONS_APP_ROOT_PATH")
        && let Ok(definitions) = read_function_definitions(std::path::Path::new(root))
    {
        for problem in check_definitions(&definitions) {
            eprintln!("enroll handler: warning: {problem}");
        }
    }
    let world = Arc::new(World::new(graph, store, steps));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .map_err(|error| anyhow::anyhow!("cannot listen on 127.0.0.1:{port}: {error}"))?;
        warp::serve(app(world)).incoming(listener).run().await;
        Ok(())
    })
}
