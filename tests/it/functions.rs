//! The Functions app as the host will read it: host.json and function_definitions/.

use std::path::Path;

use enroll_handler::definitions::{parse_timespan, read_function_definitions, read_host_json};
use enroll_handler::{FUNCTIONS, HTTP_FUNCTIONS, check_definitions};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn function_definitions_match_the_handler_binding_for_binding() {
    let definitions = read_function_definitions(&root().join("function_definitions")).unwrap();
    assert_eq!(definitions.len(), FUNCTIONS.len() + HTTP_FUNCTIONS.len());
    assert_eq!(check_definitions(&definitions), Vec::<String>::new());
}

#[test]
fn a_definition_the_handler_does_not_know_is_caught() {
    let mut definitions = read_function_definitions(&root().join("function_definitions")).unwrap();
    let mut plan = definitions["Plan"].clone();
    plan.bindings.retain(|b| b.name != "remove");
    plan.bindings[0].queue_name = Some("reconcile-typo".into());
    definitions.insert("Plan".into(), plan);
    definitions.insert("Orphan".into(), definitions["Assign"].clone());
    let problems = check_definitions(&definitions);
    assert!(
        problems.iter().any(|p| p.contains("Orphan")),
        "{problems:?}"
    );
    assert!(
        problems
            .iter()
            .any(|p| p.contains("Plan: the handler writes output `remove`")),
        "{problems:?}"
    );
    assert!(
        problems
            .iter()
            .any(|p| p.contains("Plan: the handler expects trigger queueTrigger")),
        "{problems:?}"
    );
}

#[test]
fn an_http_function_with_another_output_or_no_key_is_caught() {
    let mut definitions = read_function_definitions(&root().join("function_definitions")).unwrap();
    let mut api = definitions["Api"].clone();
    api.bindings[0].auth_level = Some("anonymous".into());
    api.bindings.push(definitions["Plan"].bindings[1].clone());
    definitions.insert("Api".into(), api);
    let problems = check_definitions(&definitions);
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(problems[0].contains("Api: the handler expects trigger httpTrigger `req` with route `{*path}` and authLevel `function`"), "{problems:?}");
    assert!(
        problems[1].contains("Api: an HTTP function must have exactly one output"),
        "{problems:?}"
    );
}

#[test]
fn host_json_configures_the_custom_handler_and_queue_retries() {
    let host = read_host_json(&root().join("host.json")).unwrap();
    assert_eq!(host.version, "2.0");
    assert_eq!(
        host.custom_handler.description.default_executable_path,
        "handler"
    );
    let queues = host.extensions.queues.unwrap();
    assert!(queues.max_dequeue_count >= 3);
    assert_eq!(queues.message_encoding.as_deref(), Some("base64"));
    // The Api function gets its requests as they came, at /api/... (README, "The HTTP API").
    assert!(host.custom_handler.enable_forwarding_http_request);
    let timeout = parse_timespan(host.function_timeout.as_deref().unwrap()).unwrap();
    assert!(
        timeout.as_secs() > 0 && timeout.as_secs() <= 600,
        "bounded, within Consumption's 10 minutes"
    );
}

#[test]
fn the_package_has_the_layout_the_host_expects() {
    let dir = tempfile::tempdir().unwrap();
    let zip = dir.path().join("app.zip");
    let status = std::process::Command::new(root().join("scripts/package"))
        .args([
            "--out",
            zip.to_str().unwrap(),
            "--handler",
            crate::handler_binary().to_str().unwrap(),
        ])
        .status()
        .unwrap();
    assert!(status.success());
    let listing = std::process::Command::new("python3")
        .args(["-c", "import sys,zipfile\nfor i in zipfile.ZipFile(sys.argv[1]).infolist(): print(i.filename, oct(i.external_attr >> 16 & 0o777))", zip.to_str().unwrap()])
        .output()
        .unwrap();
    let listing = String::from_utf8(listing.stdout).unwrap();
    assert!(listing.contains("host.json 0o644"), "{listing}");
    assert!(
        listing.contains("handler 0o755"),
        "the handler must be executable: {listing}"
    );
    for name in FUNCTIONS
        .iter()
        .map(|f| f.name)
        .chain(HTTP_FUNCTIONS.iter().map(|f| f.name))
    {
        assert!(
            listing.contains(&format!("{name}/function.json")),
            "{listing}"
        );
    }
    assert!(
        !listing.contains("function_definitions/"),
        "function folders sit at the zip root: {listing}"
    );
}

/// The Bicep sets every app setting the handler needs to start (it stops at the first
/// missing one, which in Azure would mean a function app that never runs).
#[test]
fn the_infrastructure_sets_what_the_handler_requires() {
    let bicep = std::fs::read_to_string(root().join("infra/main.bicep")).unwrap();
    for setting in [
        "AzureWebJobsStorage__accountName",
        "AzureWebJobsStorage__credential",
        "ENROLL_TENANT_ID",
        "ENROLL_INVITE_DOMAINS",
        "ENROLL_SCHEDULE",
        "ENROLL_MANAGED_IDENTITY_CLIENT_ID",
    ] {
        assert!(
            bicep.contains(&format!("name: '{setting}'")),
            "infra/main.bicep does not set {setting}"
        );
    }
    let host = read_host_json(&root().join("host.json")).unwrap();
    let tries = host.extensions.queues.unwrap().max_dequeue_count;
    assert!(
        bicep.contains(&format!(
            "name: 'ENROLL_MAX_DEQUEUE_COUNT', value: '{tries}'"
        )),
        "ENROLL_MAX_DEQUEUE_COUNT must equal host.json's maxDequeueCount ({tries})"
    );
    assert_eq!(enroll_steps::StepConfig::default().max_dequeue_count, tries);
    assert!(
        bicep.contains("name: 'custom'"),
        "the Functions runtime must be custom"
    );
}

/// The real handler under the host stand-in, with settings that reach no Graph: for
/// invocations that never get as far as a step.
async fn bare_handler() -> enroll_harness::Harness {
    let storage = std::env::var("ENROLL_TEST_STORAGE").unwrap_or_else(|_| {
        panic!(
            "ENROLL_TEST_STORAGE is not set: these tests need Azurite; run them with ./scripts/test"
        )
    });
    let mut config = enroll_harness::HarnessConfig::new(crate::handler_binary(), root(), storage);
    config.prefix = format!("f{:08x}-", fastrand::u32(..));
    config.env = [
        ("ENROLL_TENANT_ID", "contoso.onmicrosoft.com"),
        ("ENROLL_CLIENT_ID", "c"),
        ("ENROLL_CLIENT_SECRET", "s"),
        ("ENROLL_GRAPH_URL", "http://127.0.0.1:1/v1.0"),
        ("ENROLL_AUTHORITY_URL", "http://127.0.0.1:1"),
        ("ENROLL_INVITE_DOMAINS", "*"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    enroll_harness::Harness::start(config).await.unwrap()
}

/// A 31 MB queue message and a 40 MiB roster upload: each gets a short 413 problem answer,
/// the upload a report saying the roster is too large, and the handler holds neither.
#[tokio::test(flavor = "multi_thread")]
async fn oversized_invocations_get_413_without_echo_and_the_handler_stays_small() {
    let harness = bare_handler().await;
    let http = reqwest::Client::new();
    let name = "n".repeat(31 * 1000 * 1000);
    let message = format!(
        r#"{{"Data":{{"message":"{{\"v\":1,\"runId\":\"r\",\"roster\":\"{name}\",\"reason\":\"upload\"}}"}},"Metadata":{{"DequeueCount":"1"}}}}"#
    );
    let answer = http
        .post(format!("{}/Plan", harness.handler_url()))
        .header("content-type", "application/json")
        .body(message)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 413);
    let text = answer.text().await.unwrap();
    assert!(text.len() < 1024 && !text.contains("nnnn"), "{text}");
    let blob = "QUJD".repeat(40 * 1024 * 1024 / 3);
    let upload = format!(
        r#"{{"Data":{{"roster":"{blob}"}},"Metadata":{{"name":"\"Huge.csv\"","Properties":{{"ETag":"\"0x8D1\""}}}}}}"#
    );
    let answer = http
        .post(format!("{}/RosterUploaded", harness.handler_url()))
        .header("content-type", "application/json")
        .body(upload)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 413);
    let problem: serde_json::Value = answer.json().await.unwrap();
    assert_eq!(problem["status"], 413);
    let store = harness.store();
    let reports = store.list_blobs(&store.layout().reports, "").await.unwrap();
    let markdown = reports
        .iter()
        .find(|entry| entry.name.ends_with("/Huge.md"))
        .expect("a report for the upload");
    let markdown = store
        .get_blob(&store.layout().reports, &markdown.name, None)
        .await
        .unwrap();
    let markdown = String::from_utf8(markdown.bytes).unwrap();
    assert!(markdown.contains("`too_large`"), "{markdown}");
    let peak = harness.handler_peak_memory_kib().unwrap();
    assert!(
        peak < 48 * 1024,
        "the handler peaked at {peak} KiB for invocations it did not take in"
    );
}
