//! The Azure Functions custom handler: a warp server on `FUNCTIONS_CUSTOMHANDLER_PORT`
//! serving the functions in `function_definitions/` (see `enroll_handler`).
//!
//! Settings are read and checked once at start; a missing or malformed one stops the
//! handler with a message naming it (the host shows the handler's stderr).
//!
//! Logs are JSON lines, one per event, with the event's fields at the top level: the host
//! keeps the handler's output in its log stream and Application Insights, treating stderr
//! as errors, so warnings and errors go to stderr and the rest to stdout.

use std::process::ExitCode;
use std::sync::Arc;

use enroll_graph::GraphClient;
use enroll_handler::app::app;
use enroll_handler::check_definitions;
use enroll_handler::definitions::read_function_definitions;
use enroll_steps::World;
use enroll_steps::config::{
    ConfigError, DEFAULT_LOG_FILTER, Env, graph_config, log_filter, schedule, step_config,
};
use enroll_store::{PREFIX_SETTING, StorageConfig, Store, storage_layout};
use tracing::Level;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::fmt::writer::MakeWriterExt as _;
use tracing_subscriber::layer::SubscriberExt as _;
use warp::Filter as _;

fn main() -> ExitCode {
    let env = Env::from_process();
    let filter = log_filter(&env);
    // A filter that does not parse still leaves a subscriber (at the default) to say so.
    let (targets, problem) = match filter.1.parse::<Targets>() {
        Ok(targets) => (targets, None),
        Err(error) => (
            DEFAULT_LOG_FILTER
                .parse()
                .unwrap_or_else(|_| Targets::new().with_default(Level::INFO)),
            Some(error.to_string()),
        ),
    };
    let subscriber = tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_span_list(true)
        .with_max_level(Level::TRACE)
        .with_writer(
            std::io::stderr
                .with_max_level(Level::WARN)
                .or_else(std::io::stdout),
        )
        .finish()
        .with(targets);
    let _ = tracing::subscriber::set_global_default(subscriber);
    let outcome = match problem {
        None => run(&env),
        Some(problem) => Err(ConfigError::Invalid {
            name: filter.0,
            problem,
        }
        .into()),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // Each cause once: many errors already say their source in their own message.
            tracing::error!(
                "enroll handler: {}",
                enroll_core::report::error_chain(error.as_ref())
            );
            ExitCode::FAILURE
        }
    }
}

fn run(env: &Env) -> anyhow::Result<()> {
    let port: u16 = match env.get("FUNCTIONS_CUSTOMHANDLER_PORT") {
        None => anyhow::bail!(
            "FUNCTIONS_CUSTOMHANDLER_PORT is not set: the Functions host sets it; set it yourself to run the handler alone"
        ),
        Some(_) => env.number("FUNCTIONS_CUSTOMHANDLER_PORT", 0, 1..=u16::MAX)?,
    };
    if let Some(runtime) = env.get("FUNCTIONS_WORKER_RUNTIME")
        && !runtime.trim().eq_ignore_ascii_case("custom")
    {
        return Err(ConfigError::Invalid {
            name: "FUNCTIONS_WORKER_RUNTIME",
            problem: format!("`{runtime}` is not `custom`, the runtime of a custom handler"),
        }
        .into());
    }
    // Every setting is checked before anything is served: a handler that started with a
    // setting it cannot use would fail every invocation instead.
    let steps = step_config(env, true)?;
    schedule(env)?;
    let graph = GraphClient::new(graph_config(env)?)?;
    let storage = StorageConfig::from_env()?;
    let layout = storage_layout(env.get(PREFIX_SETTING))?;
    let store = Store::new(&storage)?.with_layout(layout);
    // A definition the handler does not serve (or the reverse) would fail only at run time
    // in Azure; say so at start instead.
    if let Some(root) = env.get("FUNCTIONS_APP_ROOT_PATH") {
        let definitions =
            read_function_definitions(std::path::Path::new(root)).map_err(|error| {
                ConfigError::Invalid {
                    name: "FUNCTIONS_APP_ROOT_PATH",
                    problem: error.to_string(),
                }
            })?;
        for problem in check_definitions(&definitions) {
            tracing::warn!("enroll handler: {problem}");
        }
    }
    let world = Arc::new(World::new(graph, store, steps));
    let api = enroll_api::Api::new(Arc::clone(&world), enroll_api::ApiSettings::from_env(env)?)?;
    let routes = enroll_handler::api::routes(Arc::new(api))
        .or(app(world))
        .unify();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .map_err(|error| anyhow::anyhow!("cannot listen on 127.0.0.1:{port}: {error}"))?;
        warp::serve(routes).incoming(listener).run().await;
        Ok(())
    })
}
