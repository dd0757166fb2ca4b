//! A stand-in for the Azure Functions host, for tests, benchmarks and local runs.
//!
//! The host cannot be installed offline (Core Tools downloads it at install time), so this
//! harness plays its part as faithfully as the reference (`functions.md`) allows: it reads
//! `host.json` and every `function_definitions/*/function.json`, starts the real `handler`
//! binary with `FUNCTIONS_CUSTOMHANDLER_PORT`, waits for `GET /`, watches storage for new
//! blobs and queue messages, sends invocations in the documented format, writes output
//! bindings back to queues, counts dequeues, moves messages to `<queue>-poison` after
//! `maxDequeueCount` tries, and fires timers on demand.
//!
//! It reproduces the host's quirks so the handler is proven to survive them: string inputs
//! and scalar metadata JSON-encoded a second time, keys ending in `Trigger` dropped, a
//! non-2xx answer dropping outputs and logs, and string outputs that happen to be valid
//! base64 decoded before they are written.
//!
//! Like the host, it keeps a failed message invisible for the visibility timeout before the
//! next delivery (to the millisecond, where storage counts whole seconds), and starts the
//! handler again when it finds it gone. [`Harness::kill_when`] kills the handler with
//! SIGKILL the moment a condition holds, e.g. while the simulated tenant has a write in
//! flight, so a crash in the middle of a Graph call can be tested.
//!
//! Development only (`publish = false`): used by tests and benchmarks. May depend on the
//! handler's library (for the definitions and protocol types) and on `enroll-store`.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Map, Value, json};

use enroll_handler::definitions::{
    Binding, FunctionDefinition, HostJson, parse_timespan, read_function_definitions,
    read_host_json,
};
use enroll_handler::protocol::InvocationResult;
use enroll_store::{
    ETag, Layout, MessageHandle, ReceivedMessage, StorageConfig, Store, StoreError,
};

/// How long a received message stays invisible while the handler works on it.
const MESSAGE_LEASE: Duration = Duration::from_secs(300);

/// The timer schedule the handler gets unless the configuration's `env` names another.
pub const DEFAULT_SCHEDULE: &str = "0 0 2 * * *";

pub mod http;

/// How the harness runs.
#[derive(Debug, Clone)]
pub struct HarnessConfig {
    /// The `handler` executable.
    pub handler: PathBuf,
    /// The folder with `host.json` and `function_definitions/`.
    pub app_root: PathBuf,
    /// Storage connection string (Azurite).
    pub storage: String,
    /// Prefix of every container and queue, so runs sharing one Azurite stay apart.
    pub prefix: String,
    /// Settings passed to the handler (`ENROLL_*`, ...), besides storage and the port.
    pub env: Vec<(String, String)>,
    /// Delay before a failed message is visible again; `None` takes host.json's.
    pub visibility_timeout: Option<Duration>,
    /// Invocations in flight at once.
    pub concurrency: usize,
    /// Whether to JSON-encode string inputs a second time, as the host does.
    pub double_encode: bool,
    /// Where the handler's stdout and stderr go.
    pub handler_log: Option<PathBuf>,
    /// Deliver every message twice and out of order, as at-least-once queues may: each
    /// output to a trigger queue is written in a shuffled order, and again as a copy that
    /// becomes visible one or two seconds later.
    pub deliver_twice: bool,
    /// Seed of the harness's own random choices (the order and delay of copies).
    pub seed: u64,
}

impl HarnessConfig {
    /// A configuration with the host's defaults for the given handler, app and storage.
    pub fn new(
        handler: impl Into<PathBuf>,
        app_root: impl Into<PathBuf>,
        storage: impl Into<String>,
    ) -> Self {
        Self {
            handler: handler.into(),
            app_root: app_root.into(),
            storage: storage.into(),
            prefix: String::new(),
            env: Vec::new(),
            visibility_timeout: None,
            concurrency: 16,
            double_encode: true,
            handler_log: None,
            deliver_twice: false,
            seed: 1,
        }
    }
}

/// What went wrong in the harness itself (not in the handler, which it only counts).
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    /// The app's definitions cannot be read.
    #[error(transparent)]
    Definitions(#[from] enroll_handler::definitions::DefinitionError),
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Storage settings are wrong.
    #[error(transparent)]
    StorageConfig(#[from] enroll_store::ConfigError),
    /// The handler could not be started or never answered `GET /`.
    #[error("handler: {0}")]
    Handler(String),
    /// The work did not settle in time.
    #[error("not idle after {0:?}: {1}")]
    Timeout(Duration, String),
}

/// What the harness saw, for assertions and benchmarks.
#[derive(Debug, Clone, Default)]
pub struct Counters {
    /// Invocations per function.
    pub invocations: BTreeMap<String, u64>,
    /// Invocations that failed (non-2xx, no answer, not JSON), per function.
    pub failures: BTreeMap<String, u64>,
    /// Messages moved to a poison queue by the harness (as the host would).
    pub poisoned: u64,
    /// Output keys the handler sent that the function does not declare.
    pub undeclared_outputs: Vec<String>,
    /// Messages written to output queues, per queue (without prefix).
    pub messages_out: BTreeMap<String, u64>,
    /// Round-trip time of each invocation, per function.
    pub latencies: BTreeMap<String, Vec<Duration>>,
    /// Log lines the handler returned.
    pub logs: Vec<String>,
    /// How long the handler took from spawn to answering `GET /`, per start.
    pub startups: Vec<Duration>,
    /// Times the harness found the handler gone and started it again, as the host does.
    pub restarts: u64,
    /// Every delivery of a queue message: its id, its dequeue count, and when it was sent
    /// to the handler.
    pub deliveries: Vec<(String, u32, Instant)>,
}

/// A function as the harness drives it.
#[derive(Debug, Clone)]
struct Function {
    name: String,
    definition: FunctionDefinition,
}

impl Function {
    fn trigger(&self) -> Option<&Binding> {
        self.definition.trigger()
    }
}

/// The Functions host stand-in.
pub struct Harness {
    config: HarnessConfig,
    host: HostJson,
    functions: Vec<Function>,
    store: Store,
    http: reqwest::Client,
    /// The handler's process, shared with [`KillWatch`] tasks.
    child: Arc<Mutex<Option<Child>>>,
    port: u16,
    /// Messages that failed, held (invisible) until their visibility timeout has passed:
    /// (queue, handle, when to release).
    held: Vec<(String, MessageHandle, Instant)>,
    /// Blob receipts: (container, name) → ETag processed, as the host keeps them.
    receipts: HashMap<(String, String), String>,
    /// Failed tries per blob version.
    blob_tries: HashMap<(String, String, String), u32>,
    counters: Counters,
    rng: fastrand::Rng,
}

/// The result of one invocation, as the host sees it.
#[derive(Debug, Clone)]
pub enum Invoked {
    /// 2xx with a readable body.
    Succeeded(InvocationResult),
    /// Anything else: outputs and logs are dropped.
    Failed(String),
}

fn free_port() -> Result<u16, HarnessError> {
    std::net::TcpListener::bind(("127.0.0.1", 0))
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .map_err(|error| HarnessError::Handler(format!("no free port: {error}")))
}

/// `value` as the host sends a scalar: JSON-encoded, then put in the body as a string.
fn host_scalar(value: &Value, double_encode: bool) -> Value {
    if double_encode && !(value.is_object() || value.is_array()) {
        Value::String(value.to_string())
    } else {
        value.clone()
    }
}

fn now_rfc3339() -> String {
    enroll_core::audit::rfc3339(std::time::SystemTime::now())
}

impl Harness {
    /// Reads the app's definitions, starts the handler and waits until it answers `GET /`.
    ///
    /// # Errors
    /// [`HarnessError`] when the definitions, storage or the handler fail.
    pub async fn start(config: HarnessConfig) -> Result<Self, HarnessError> {
        let host = read_host_json(&config.app_root.join("host.json"))?;
        let functions = read_function_definitions(&config.app_root.join("function_definitions"))?
            .into_iter()
            .map(|(name, definition)| Function { name, definition })
            .collect();
        let storage = StorageConfig::from_connection_string(&config.storage)?;
        let store = Store::new(&storage)?.with_layout(Layout::with_prefix(&config.prefix));
        let http = reqwest::Client::builder()
            .timeout(
                host.function_timeout
                    .as_deref()
                    .and_then(parse_timespan)
                    .unwrap_or(Duration::from_secs(600))
                    + Duration::from_secs(60),
            )
            .build()
            .map_err(|error| HarnessError::Handler(error.to_string()))?;
        let seed = config.seed;
        let mut harness = Self {
            config,
            host,
            functions,
            store,
            http,
            child: Arc::default(),
            port: 0,
            held: Vec::new(),
            receipts: HashMap::new(),
            blob_tries: HashMap::new(),
            counters: Counters::default(),
            rng: fastrand::Rng::with_seed(seed),
        };
        for queue in harness.trigger_queues() {
            harness.store.ensure_queue(&queue).await?;
        }
        harness
            .store
            .ensure_container(&harness.store.layout().rosters.clone())
            .await?;
        harness.start_handler().await?;
        Ok(harness)
    }

    /// The store the harness (and the handler) use, with the run's prefix.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// What the harness saw so far.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// The handler's process id, while it runs.
    pub fn handler_pid(&self) -> Option<u32> {
        lock(&self.child).as_ref().map(Child::id)
    }

    /// Where the handler listens, e.g. `http://127.0.0.1:41234`, for requests a test sends
    /// it directly.
    pub fn handler_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The handler's peak resident memory (VmHWM), in KiB, on Linux.
    pub fn handler_peak_memory_kib(&self) -> Option<u64> {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.handler_pid()?)).ok()?;
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmHWM:"))
            .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
    }

    fn queue_name(&self, queue: &str) -> String {
        format!("{}{queue}", self.config.prefix)
    }

    fn trigger_queues(&self) -> Vec<String> {
        self.functions
            .iter()
            .filter_map(|f| {
                let trigger = f.trigger()?;
                trigger
                    .kind
                    .eq_ignore_ascii_case("queueTrigger")
                    .then(|| trigger.queue_name.clone())?
            })
            .map(|queue| self.queue_name(&queue))
            .collect()
    }

    fn max_dequeue_count(&self) -> u32 {
        self.host
            .extensions
            .queues
            .as_ref()
            .map_or(5, |q| q.max_dequeue_count)
    }

    fn visibility_timeout(&self) -> Duration {
        self.config.visibility_timeout.unwrap_or_else(|| {
            self.host
                .extensions
                .queues
                .as_ref()
                .and_then(|q| q.visibility_timeout.as_deref())
                .and_then(parse_timespan)
                .unwrap_or_default()
        })
    }

    /// Starts the handler the way the host does and waits for `GET /`.
    ///
    /// # Errors
    /// [`HarnessError::Handler`] when it cannot start or does not answer within 30 s.
    pub async fn start_handler(&mut self) -> Result<(), HarnessError> {
        let port = free_port()?;
        let mut command = Command::new(&self.config.handler);
        command
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("FUNCTIONS_CUSTOMHANDLER_PORT", port.to_string())
            .env("FUNCTIONS_CUSTOMHANDLER_WORKER_ID", "harness")
            .env(
                "FUNCTIONS_APP_ROOT_PATH",
                self.config.app_root.join("function_definitions"),
            )
            .env("AzureWebJobsStorage", &self.config.storage)
            .env("ENROLL_STORAGE_PREFIX", &self.config.prefix)
            .env("FUNCTIONS_WORKER_RUNTIME", "custom")
            // The host resolves the timer's `%ENROLL_SCHEDULE%`, and so the app must set it;
            // the harness fires timers on demand, so any valid schedule does.
            .env("ENROLL_SCHEDULE", DEFAULT_SCHEDULE)
            .envs(self.config.env.iter().map(|(k, v)| (k, v)))
            .current_dir(&self.config.app_root)
            .stdin(Stdio::null());
        match &self.config.handler_log {
            Some(path) => {
                let log = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(|error| {
                        HarnessError::Handler(format!("cannot open {}: {error}", path.display()))
                    })?;
                let err = log
                    .try_clone()
                    .map_err(|error| HarnessError::Handler(error.to_string()))?;
                command.stdout(log).stderr(err);
            }
            None => {
                command.stdout(Stdio::null()).stderr(Stdio::inherit());
            }
        }
        let started = Instant::now();
        let mut child = command.spawn().map_err(|error| {
            HarnessError::Handler(format!(
                "cannot start {}: {error}",
                self.config.handler.display()
            ))
        })?;
        let url = format!("http://127.0.0.1:{port}/");
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(HarnessError::Handler(format!(
                    "exited at start with {status}"
                )));
            }
            if self.http.get(&url).send().await.is_ok() {
                break;
            }
            if started.elapsed() > Duration::from_secs(30) {
                let _ = child.kill();
                return Err(HarnessError::Handler(
                    "did not answer GET / within 30 s".into(),
                ));
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        self.counters.startups.push(started.elapsed());
        *lock(&self.child) = Some(child);
        self.port = port;
        Ok(())
    }

    /// Kills the handler at once (SIGKILL), as a crash or a scale-in would.
    pub fn kill_handler(&mut self) {
        kill(&self.child);
    }

    /// Kills the handler (SIGKILL) the first time `condition` holds, checked every
    /// millisecond from another task while the harness goes on: e.g. while the simulated
    /// tenant has a write in flight, which its latency keeps open long enough. The harness
    /// starts the handler again when it next polls, as the host restarts a worker.
    pub fn kill_when(&self, condition: impl Fn() -> bool + Send + 'static) -> KillWatch {
        let child = Arc::clone(&self.child);
        let fired = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&fired);
        let task = tokio::spawn(async move {
            loop {
                if condition() && lock(&child).is_some() {
                    kill(&child);
                    flag.store(true, Ordering::SeqCst);
                    return;
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        });
        KillWatch { fired, task }
    }

    /// Starts the handler again if it is gone (killed, or it exited), as the host does.
    async fn keep_handler_running(&mut self) -> Result<(), HarnessError> {
        let gone = match lock(&self.child).as_mut() {
            None => true,
            Some(child) => child.try_wait().is_ok_and(|status| status.is_some()),
        };
        if gone {
            kill(&self.child);
            self.start_handler().await?;
            self.counters.restarts += 1;
        }
        Ok(())
    }

    /// Makes held messages visible again once their visibility timeout has passed.
    async fn release_held(&mut self) -> Result<(), HarnessError> {
        let now = Instant::now();
        let (due, held): (Vec<_>, Vec<_>) = std::mem::take(&mut self.held)
            .into_iter()
            .partition(|(_, _, at)| *at <= now);
        self.held = held;
        for (queue, handle, _) in due {
            match self
                .store
                .set_visibility(&queue, &handle, Duration::ZERO)
                .await
            {
                // Gone meanwhile (its lease ran out and another delivery took it): nothing
                // is held any more.
                Ok(_) | Err(StoreError::NotFound { .. }) => {}
                Err(error) => return Err(error.into()),
            }
        }
        Ok(())
    }

    /// Uploads a roster blob, as a merge to the rosters repository would.
    ///
    /// # Errors
    /// [`HarnessError::Store`] when storage fails.
    pub async fn upload_roster(
        &self,
        name: &str,
        bytes: impl Into<Vec<u8>>,
    ) -> Result<ETag, HarnessError> {
        Ok(self.store.put_roster(name, bytes.into()).await?)
    }

    /// Uploads an app role manifest or its mapping file, as a merge to the manifests
    /// repository would.
    ///
    /// # Errors
    /// [`HarnessError::Store`] when storage fails.
    pub async fn upload_manifest(
        &self,
        name: &str,
        bytes: impl Into<Vec<u8>>,
    ) -> Result<ETag, HarnessError> {
        Ok(self.store.put_manifest(name, bytes.into()).await?)
    }

    /// Sends one invocation to the handler.
    pub async fn invoke(
        &mut self,
        function: &str,
        data: Map<String, Value>,
        metadata: Map<String, Value>,
    ) -> Invoked {
        let url = format!("http://127.0.0.1:{}/{function}", self.port);
        let mut metadata = metadata;
        // The host drops keys ending in "trigger" (QueueTrigger, BlobTrigger).
        metadata.retain(|key, _| !key.to_ascii_lowercase().ends_with("trigger"));
        metadata.insert(
            "sys".into(),
            json!({"MethodName": function, "UtcNow": now_rfc3339(), "RandGuid": format!("{:032x}", fastrand::u128(..))}),
        );
        let body = json!({"Data": data, "Metadata": metadata});
        let started = Instant::now();
        let answer = self
            .http
            .post(&url)
            .header(
                "X-Azure-Functions-InvocationId",
                format!("{:032x}", fastrand::u128(..)),
            )
            .header("User-Agent", "Azure-Functions-Host/enroll-harness")
            .json(&body)
            .send()
            .await;
        let elapsed = started.elapsed();
        *self
            .counters
            .invocations
            .entry(function.to_owned())
            .or_default() += 1;
        self.counters
            .latencies
            .entry(function.to_owned())
            .or_default()
            .push(elapsed);
        let outcome = match answer {
            Err(error) => Invoked::Failed(format!("no answer: {error}")),
            // The host calls EnsureSuccessStatusCode before reading the body.
            Ok(response) if !response.status().is_success() => {
                Invoked::Failed(format!("status {}", response.status()))
            }
            Ok(response) => match response.json::<InvocationResult>().await {
                Ok(result) => Invoked::Succeeded(result),
                Err(error) => Invoked::Failed(format!("Invalid HttpResponseMessage: {error}")),
            },
        };
        if let Invoked::Failed(_) = outcome {
            *self
                .counters
                .failures
                .entry(function.to_owned())
                .or_default() += 1;
        }
        outcome
    }

    /// Writes a successful invocation's outputs to their queues, as the host does.
    async fn write_outputs(
        &mut self,
        function: &Function,
        result: &InvocationResult,
    ) -> Result<(), HarnessError> {
        self.counters.logs.extend(result.logs.iter().cloned());
        for (key, value) in &result.outputs {
            let Some(binding) = function
                .definition
                .outputs()
                .find(|binding| binding.name == *key)
                .cloned()
            else {
                self.counters
                    .undeclared_outputs
                    .push(format!("{}.{key}", function.name));
                continue;
            };
            let Some(queue) = binding.queue_name.clone() else {
                continue;
            };
            let items = match value {
                Value::Array(items) => items.clone(),
                Value::Null => Vec::new(),
                other => vec![other.clone()],
            };
            let target = self.queue_name(&queue);
            let mut texts: Vec<String> = items
                .into_iter()
                .map(|item| match item {
                    Value::String(text) => text,
                    other => other.to_string(),
                })
                .map(|text| host_output_text(&text, binding.data_type.as_deref()))
                .collect();
            // Poison queues are where people look; they get each message once.
            let twice = self.config.deliver_twice && !queue.ends_with("-poison");
            if twice {
                self.rng.shuffle(&mut texts);
            }
            for text in texts {
                self.send(&target, &text).await?;
                if twice {
                    let later = Duration::from_secs(self.rng.u64(1..=2));
                    self.send_later(&target, &text, later).await?;
                }
                *self.counters.messages_out.entry(queue.clone()).or_default() += 1;
            }
        }
        Ok(())
    }

    /// Fires a timer function now, as its schedule would.
    ///
    /// # Errors
    /// [`HarnessError`] when the function is unknown or storage fails.
    pub async fn fire_timer(&mut self, name: &str) -> Result<Invoked, HarnessError> {
        let function = self
            .functions
            .iter()
            .find(|f| {
                f.name == name
                    && f.trigger()
                        .is_some_and(|t| t.kind.eq_ignore_ascii_case("timerTrigger"))
            })
            .cloned()
            .ok_or_else(|| HarnessError::Handler(format!("no timer function {name}")))?;
        let binding = function
            .trigger()
            .map(|t| t.name.clone())
            .unwrap_or_default();
        let now = now_rfc3339();
        let mut data = Map::new();
        data.insert(
            binding,
            json!({"Schedule": {"AdjustForDST": true}, "ScheduleStatus": {"Last": now, "Next": now, "LastUpdated": now}, "IsPastDue": false}),
        );
        let outcome = self.invoke(name, data, Map::new()).await;
        if let Invoked::Succeeded(result) = &outcome {
            self.write_outputs(&function, result).await?;
        }
        Ok(outcome)
    }

    /// One round: new blobs, then one batch from every trigger queue. Returns the number
    /// of invocations made.
    ///
    /// # Errors
    /// [`HarnessError::Store`] when storage fails.
    pub async fn poll_once(&mut self) -> Result<usize, HarnessError> {
        self.keep_handler_running().await?;
        self.release_held().await?;
        let mut invoked = self.poll_blobs().await?;
        let functions: Vec<Function> = self
            .functions
            .iter()
            .filter(|f| {
                f.trigger()
                    .is_some_and(|t| t.kind.eq_ignore_ascii_case("queueTrigger"))
            })
            .cloned()
            .collect();
        let lease = MESSAGE_LEASE;
        let mut work = Vec::new();
        for function in functions {
            let Some(queue) = function.trigger().and_then(|t| t.queue_name.clone()) else {
                continue;
            };
            let batch = self
                .host
                .extensions
                .queues
                .as_ref()
                .and_then(|q| q.batch_size)
                .unwrap_or(16)
                .clamp(1, 32);
            let received = self
                .store
                .receive_messages(&self.queue_name(&queue), batch as u8, lease)
                .await?;
            work.extend(
                received
                    .into_iter()
                    .map(|message| (function.clone(), queue.clone(), message)),
            );
        }
        for chunk in work.chunks(self.config.concurrency.max(1)) {
            invoked += chunk.len();
            let invocations: Vec<_> = chunk
                .iter()
                .map(|(function, _, message)| self.queue_invocation(function, message))
                .collect();
            let sent = Instant::now();
            self.counters.deliveries.extend(
                chunk.iter().map(|(_, _, message)| {
                    (message.handle.id.clone(), message.dequeue_count, sent)
                }),
            );
            let url_port = self.port;
            let http = self.http.clone();
            let mut pending = tokio::task::JoinSet::new();
            for (index, (function, body)) in invocations.into_iter().enumerate() {
                let http = http.clone();
                pending.spawn(async move {
                    let started = Instant::now();
                    let answer = http
                        .post(format!("http://127.0.0.1:{url_port}/{function}"))
                        .header(
                            "X-Azure-Functions-InvocationId",
                            format!("{:032x}", fastrand::u128(..)),
                        )
                        .json(&body)
                        .send()
                        .await;
                    let outcome = match answer {
                        Err(error) => Invoked::Failed(format!("no answer: {error}")),
                        Ok(response) if !response.status().is_success() => {
                            Invoked::Failed(format!("status {}", response.status()))
                        }
                        Ok(response) => match response.json::<InvocationResult>().await {
                            Ok(result) => Invoked::Succeeded(result),
                            Err(error) => {
                                Invoked::Failed(format!("Invalid HttpResponseMessage: {error}"))
                            }
                        },
                    };
                    (index, started.elapsed(), outcome)
                });
            }
            let mut answers = Vec::new();
            while let Some(joined) = pending.join_next().await {
                if let Ok(answer) = joined {
                    answers.push(answer);
                }
            }
            answers.sort_by_key(|(index, _, _)| *index);
            for (index, elapsed, outcome) in answers {
                let (function, queue, message) = &chunk[index];
                *self
                    .counters
                    .invocations
                    .entry(function.name.clone())
                    .or_default() += 1;
                self.counters
                    .latencies
                    .entry(function.name.clone())
                    .or_default()
                    .push(elapsed);
                self.settle_message(function, queue, message, outcome)
                    .await?;
            }
        }
        Ok(invoked)
    }

    /// The invocation body for a queue message, in the host's format and with its quirks.
    fn queue_invocation(&self, function: &Function, message: &ReceivedMessage) -> (String, Value) {
        let binding = function
            .trigger()
            .map(|t| t.name.clone())
            .unwrap_or_default();
        let double = self.config.double_encode;
        let text = message.text.clone().unwrap_or_else(|| message.raw.clone());
        let data = json!({ binding: host_scalar(&Value::String(text), double) });
        let metadata = json!({
            "DequeueCount": host_scalar(&json!(message.dequeue_count), double),
            "Id": host_scalar(&json!(message.handle.id), double),
            "PopReceipt": host_scalar(&json!(message.handle.pop_receipt), double),
            "InsertionTime": now_rfc3339(),
            "sys": {"MethodName": function.name, "UtcNow": now_rfc3339(), "RandGuid": format!("{:032x}", fastrand::u128(..))},
        });
        (
            function.name.clone(),
            json!({"Data": data, "Metadata": metadata}),
        )
    }

    /// After an invocation: write outputs and delete the message, or release it for a
    /// retry, or move it to `<queue>-poison` after the last try.
    async fn settle_message(
        &mut self,
        function: &Function,
        queue: &str,
        message: &ReceivedMessage,
        outcome: Invoked,
    ) -> Result<(), HarnessError> {
        let prefixed = self.queue_name(queue);
        match outcome {
            Invoked::Succeeded(result) => {
                self.write_outputs(function, &result).await?;
                self.store
                    .delete_message(&prefixed, &message.handle)
                    .await?;
            }
            Invoked::Failed(reason) => {
                *self
                    .counters
                    .failures
                    .entry(function.name.clone())
                    .or_default() += 1;
                self.counters.logs.push(format!(
                    "{} failed (try {}): {reason}",
                    function.name, message.dequeue_count
                ));
                if message.dequeue_count >= self.max_dequeue_count() {
                    let poison = self.queue_name(&format!("{queue}-poison"));
                    let text = message.text.clone().unwrap_or_else(|| message.raw.clone());
                    self.send(&poison, &text).await?;
                    self.store
                        .delete_message(&prefixed, &message.handle)
                        .await?;
                    self.counters.poisoned += 1;
                } else {
                    // The host makes the message visible again after the visibility
                    // timeout. Storage counts whole seconds, so a shorter timeout (tests use
                    // them) is kept here: the message stays leased until it is due.
                    let visibility = self.visibility_timeout();
                    if visibility < MESSAGE_LEASE {
                        self.held.push((
                            prefixed,
                            message.handle.clone(),
                            Instant::now() + visibility,
                        ));
                    } else {
                        self.store
                            .set_visibility(&prefixed, &message.handle, visibility)
                            .await?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Invokes blob-triggered functions for blobs (or versions) not yet processed.
    async fn poll_blobs(&mut self) -> Result<usize, HarnessError> {
        let functions: Vec<Function> = self
            .functions
            .iter()
            .filter(|f| {
                f.trigger()
                    .is_some_and(|t| t.kind.eq_ignore_ascii_case("blobTrigger"))
            })
            .cloned()
            .collect();
        let mut invoked = 0;
        for function in functions {
            let Some(trigger) = function.trigger().cloned() else {
                continue;
            };
            let path = trigger.path.clone().unwrap_or_default();
            let Some((container, _pattern)) = path.split_once('/') else {
                continue;
            };
            let container = self.queue_name(container);
            let entries = match self.store.list_blobs(&container, "").await {
                Ok(entries) => entries,
                Err(StoreError::NotFound { .. }) => continue,
                Err(error) => return Err(error.into()),
            };
            for entry in entries {
                let key = (container.clone(), entry.name.clone());
                let etag = entry.etag.as_str().to_owned();
                if self.receipts.get(&key) == Some(&etag) {
                    continue;
                }
                invoked += 1;
                let blob = match self.store.get_blob(&container, &entry.name, None).await {
                    Ok(blob) => blob,
                    Err(StoreError::NotFound { .. }) => continue,
                    Err(error) => return Err(error.into()),
                };
                let double = self.config.double_encode;
                let mut data = Map::new();
                let content = if trigger.data_type.as_deref() == Some("binary") {
                    Value::String(base64::engine::general_purpose::STANDARD.encode(&blob.bytes))
                } else {
                    host_scalar(
                        &Value::String(String::from_utf8_lossy(&blob.bytes).into_owned()),
                        double,
                    )
                };
                data.insert(trigger.name.clone(), content);
                let mut metadata = Map::new();
                metadata.insert("name".into(), host_scalar(&json!(entry.name), double));
                metadata.insert(
                    "Uri".into(),
                    host_scalar(&json!(self.store.blob_url(&container, &entry.name)), double),
                );
                metadata.insert(
                    "Properties".into(),
                    json!({"ETag": blob.etag.as_str(), "ContentLength": blob.bytes.len(), "ContentType": "text/csv"}),
                );
                metadata.insert(
                    "BlobTrigger".into(),
                    json!(format!("{container}/{}", entry.name)),
                );
                let outcome = self.invoke(&function.name, data, metadata).await;
                match outcome {
                    Invoked::Succeeded(result) => {
                        self.write_outputs(&function, &result).await?;
                        self.receipts.insert(key, blob.etag.as_str().to_owned());
                    }
                    Invoked::Failed(reason) => {
                        self.counters.logs.push(format!(
                            "{} failed for {}: {reason}",
                            function.name, entry.name
                        ));
                        let tries = self
                            .blob_tries
                            .entry((key.0.clone(), key.1.clone(), etag.clone()))
                            .or_default();
                        *tries += 1;
                        if *tries >= self.max_dequeue_count() {
                            let poison = json!({"FunctionId": function.name, "BlobType": "BlockBlob", "ContainerName": container, "BlobName": entry.name, "ETag": etag});
                            let queue = self.queue_name("webjobs-blobtrigger-poison");
                            self.send(&queue, &poison.to_string()).await?;
                            self.counters.poisoned += 1;
                            self.receipts.insert(key, blob.etag.as_str().to_owned());
                        }
                    }
                }
            }
        }
        Ok(invoked)
    }

    /// Sends a message, creating the queue first if needed, as the host does for outputs.
    async fn send(&self, queue: &str, text: &str) -> Result<(), HarnessError> {
        self.send_after(queue, text, None).await
    }

    /// Sends a message that becomes visible only after `delay` (whole seconds).
    async fn send_later(
        &self,
        queue: &str,
        text: &str,
        delay: Duration,
    ) -> Result<(), HarnessError> {
        self.send_after(queue, text, Some(delay)).await
    }

    async fn send_after(
        &self,
        queue: &str,
        text: &str,
        delay: Option<Duration>,
    ) -> Result<(), HarnessError> {
        match self.store.send_message(queue, text, delay).await {
            Err(StoreError::NotFound { .. }) => {
                self.store.ensure_queue(queue).await?;
                self.store.send_message(queue, text, delay).await?;
            }
            other => {
                other?;
            }
        }
        Ok(())
    }

    /// Takes every message out of a queue (a poison queue, at the end of a test) and
    /// returns their texts.
    ///
    /// # Errors
    /// [`HarnessError::Store`] when storage fails.
    pub async fn drain(&self, queue: &str) -> Result<Vec<String>, HarnessError> {
        let name = self.queue_name(queue);
        let mut texts = Vec::new();
        loop {
            let batch = match self.store.receive_messages(&name, 32, MESSAGE_LEASE).await {
                Ok(batch) => batch,
                Err(StoreError::NotFound { .. }) => return Ok(texts),
                Err(error) => return Err(error.into()),
            };
            if batch.is_empty() {
                return Ok(texts);
            }
            for message in batch {
                self.store.delete_message(&name, &message.handle).await?;
                texts.push(message.text.unwrap_or(message.raw));
            }
        }
    }

    /// Messages waiting in the trigger queues, visible or not.
    ///
    /// # Errors
    /// [`HarnessError::Store`] when storage fails.
    pub async fn pending_messages(&self) -> Result<u64, HarnessError> {
        let mut total = 0;
        for queue in self.trigger_queues() {
            total += self.store.approximate_message_count(&queue).await?;
        }
        Ok(total)
    }

    /// Polls until nothing is left to do (no new blobs, no message in any trigger queue).
    ///
    /// # Errors
    /// [`HarnessError::Timeout`] when work is still pending after `timeout`.
    pub async fn run_until_idle(&mut self, timeout: Duration) -> Result<(), HarnessError> {
        let started = Instant::now();
        loop {
            let invoked = self.poll_once().await?;
            if invoked == 0 && self.pending_messages().await? == 0 {
                return Ok(());
            }
            if started.elapsed() > timeout {
                return Err(HarnessError::Timeout(
                    timeout,
                    format!("{} messages pending", self.pending_messages().await?),
                ));
            }
            if invoked == 0 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }

    /// The text of every message in a queue (peeked, not removed), e.g. a poison queue.
    ///
    /// # Errors
    /// [`HarnessError::Store`] when storage fails.
    pub async fn peek(&self, queue: &str) -> Result<Vec<String>, HarnessError> {
        let name = self.queue_name(queue);
        match self.store.peek_messages(&name, 32).await {
            Ok(messages) => Ok(messages
                .into_iter()
                .map(|m| m.text.unwrap_or(m.raw))
                .collect()),
            Err(StoreError::NotFound { .. }) => Ok(Vec::new()),
            Err(error) => Err(error.into()),
        }
    }

    /// Writes a message straight into a trigger queue (as another system, or a duplicate
    /// delivery, would).
    ///
    /// # Errors
    /// [`HarnessError::Store`] when storage fails.
    pub async fn enqueue(&self, queue: &str, text: &str) -> Result<(), HarnessError> {
        self.send(&self.queue_name(queue), text).await
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.kill_handler();
    }
}

/// A watch started by [`Harness::kill_when`]; dropping it stops watching.
#[derive(Debug)]
pub struct KillWatch {
    fired: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl KillWatch {
    /// Whether the handler was killed.
    pub fn fired(&self) -> bool {
        self.fired.load(Ordering::SeqCst)
    }
}

impl Drop for KillWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The handler's process slot, even if a task panicked while holding it.
fn lock(child: &Mutex<Option<Child>>) -> MutexGuard<'_, Option<Child>> {
    child
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// SIGKILLs the handler, if it runs, and reaps it.
fn kill(child: &Mutex<Option<Child>>) {
    if let Some(mut child) = lock(child).take() {
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// The text the host writes for a string output: decoded first if it is valid base64 and
/// the binding is not `dataType: binary` (`HttpScriptInvocationResultExtensions.GetBindingValue`).
pub fn host_output_text(text: &str, data_type: Option<&str>) -> String {
    if data_type.is_some_and(|t| t.eq_ignore_ascii_case("binary")) {
        return text.to_owned();
    }
    match base64::engine::general_purpose::STANDARD.decode(text) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(_) => text.to_owned(),
    }
}

/// A binary of this workspace (`handler`, `enroll`) built in the same profile as the running
/// test or benchmark: `target/<profile>/<name>`, beside the `deps/` folder that holds the
/// running executable.
///
/// Cargo sets `CARGO_BIN_EXE_<name>` only for a binary's own package, and the tests live in
/// the workspace root; `cargo test --workspace` builds both binaries because each of their
/// crates has an integration test, and `scripts/bench` builds them before the benchmarks.
///
/// # Errors
/// [`HarnessError::Handler`] when the binary is not there, saying how to build it.
pub fn workspace_binary(name: &str) -> Result<PathBuf, HarnessError> {
    let exe = std::env::current_exe().map_err(|error| {
        HarnessError::Handler(format!("cannot find the running executable: {error}"))
    })?;
    let profile_dir = exe
        .parent()
        .filter(|dir| dir.ends_with("deps"))
        .and_then(Path::parent)
        .ok_or_else(|| {
            HarnessError::Handler(format!("{} is not in a cargo target folder", exe.display()))
        })?;
    let binary = profile_dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    if binary.is_file() {
        Ok(binary)
    } else {
        Err(HarnessError::Handler(format!(
            "{} is not built: run `cargo test --workspace` (scripts/test does) or `cargo build --workspace` first",
            binary.display()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_that_look_like_base64_are_mangled_like_the_host_does() {
        assert_eq!(host_output_text("{\"v\":1}", None), "{\"v\":1}");
        assert_ne!(host_output_text("roster01", None), "roster01");
        assert_eq!(host_output_text("roster01", Some("binary")), "roster01");
    }

    #[test]
    fn scalars_are_encoded_twice() {
        assert_eq!(host_scalar(&json!("hello"), true), json!("\"hello\""));
        assert_eq!(host_scalar(&json!(1), true), json!("1"));
        assert_eq!(host_scalar(&json!({"a": 1}), true), json!({"a": 1}));
        assert_eq!(host_scalar(&json!("hello"), false), json!("hello"));
    }
}
