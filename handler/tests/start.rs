//! The handler binary on its own, before the host talks to it: every setting is checked at
//! start, and a bad one stops the handler with the setting's name instead of a handler that
//! fails every invocation. Besides checking the start-up contract, these tests make `cargo
//! test --workspace` build `handler`, which the workspace's end-to-end tests (in the root
//! package) then drive through the host harness.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    std::net::TcpListener::bind(("127.0.0.1", 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Settings with which the handler starts: what the host and the app settings give it.
fn good_settings(port: u16) -> Vec<(&'static str, String)> {
    let definitions = concat!(env!("CARGO_MANIFEST_DIR"), "/../function_definitions");
    [
        ("FUNCTIONS_CUSTOMHANDLER_PORT", port.to_string()),
        ("FUNCTIONS_APP_ROOT_PATH", definitions.to_owned()),
        ("FUNCTIONS_WORKER_RUNTIME", "custom".to_owned()),
        (
            "AzureWebJobsStorage",
            "UseDevelopmentStorage=true".to_owned(),
        ),
        ("ENROLL_TENANT_ID", "contoso.onmicrosoft.com".to_owned()),
        (
            "ENROLL_CLIENT_ID",
            "c0ffee00-0000-4000-8000-000000000001".to_owned(),
        ),
        ("ENROLL_CLIENT_SECRET", "s3cr3t-value".to_owned()),
        (
            "ENROLL_INVITE_DOMAINS",
            "contoso.com,fabrikam.com".to_owned(),
        ),
        ("ENROLL_SCHEDULE", "0 0 2 * * *".to_owned()),
    ]
    .into()
}

/// Starts the handler with `settings` (and nothing else of this environment).
fn handler(settings: &[(&str, String)]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_handler"))
        .env_clear()
        .envs(settings.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Runs the handler and returns its stderr once it stopped; fails if it is still running
/// after 10 s (it started despite the settings).
fn stops(settings: &[(&str, String)], what: &str) -> String {
    let mut child = handler(settings);
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let output = child.wait_with_output().unwrap();
            assert!(!status.success(), "{what}: exited with {status}");
            return String::from_utf8_lossy(&output.stderr).into_owned();
        }
        if started.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            panic!("{what}: the handler started instead of stopping");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn without_the_hosts_port_it_stops_and_names_the_setting() {
    let output = Command::new(env!("CARGO_BIN_EXE_handler"))
        .env_clear()
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("FUNCTIONS_CUSTOMHANDLER_PORT is not set"),
        "{stderr}"
    );
}

#[test]
fn with_good_settings_it_starts_and_answers_the_hosts_probe() {
    let port = free_port();
    let mut child = handler(&good_settings(port));
    let started = Instant::now();
    let answered = loop {
        if let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            use std::io::{Read as _, Write as _};
            stream
                .write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
                .unwrap();
            let mut answer = String::new();
            let _ = stream.read_to_string(&mut answer);
            break answer;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the handler stopped with good settings"
        );
        assert!(started.elapsed() < Duration::from_secs(10), "no answer");
        std::thread::sleep(Duration::from_millis(10));
    };
    child.kill().unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(answered.starts_with("HTTP/1.1 200"), "{answered}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !stderr.contains("function_definitions"),
        "the definitions agree with the handler: {stderr}"
    );
}

#[test]
fn each_bad_setting_stops_the_handler_with_its_name() {
    // (setting, value, settings to drop first): every setting of the README's
    // Configuration table that the handler reads, with a value it cannot work with.
    let cases: &[(&str, &str, &[&str])] = &[
        ("ENROLL_GRAPH_URL", "not-a-url", &[]),
        ("ENROLL_GRAPH_URL", "http://graph.example.com/v1.0", &[]),
        (
            "ENROLL_GRAPH_URL",
            "https://graph.microsoft.com/v1.0?x=1",
            &[],
        ),
        (
            "ENROLL_AUTHORITY_URL",
            "ftp://login.microsoftonline.com",
            &[],
        ),
        ("ENROLL_GRAPH_RESOURCE", "graph", &[]),
        ("ENROLL_GRAPH_TIMEOUT_SECONDS", "0", &[]),
        ("ENROLL_GRAPH_TIMEOUT_SECONDS", "601", &[]),
        ("ENROLL_GRAPH_MAX_ATTEMPTS", "0", &[]),
        ("ENROLL_GRAPH_MAX_ATTEMPTS", "many", &[]),
        ("ENROLL_GRAPH_CONCURRENCY", "0", &[]),
        ("ENROLL_GRAPH_RETRY_BASE_MS", "0", &[]),
        ("ENROLL_MAX_DEQUEUE_COUNT", "0", &[]),
        ("ENROLL_MAX_REMOVALS", "-1", &[]),
        ("ENROLL_MAX_REMOVAL_PERCENT", "101", &[]),
        ("ENROLL_MAX_REMOVAL_PERCENT", "NaN", &[]),
        ("ENROLL_INVITE_DOMAINS", "contoso", &[]),
        ("ENROLL_INVITE_DOMAINS", "", &[]),
        (
            "ENROLL_INVITE_REDIRECT_URL",
            "http://myapps.microsoft.com",
            &[],
        ),
        ("ENROLL_SEND_INVITATIONS", "maybe", &[]),
        ("ENROLL_ACTOR", "enroll\u{7}bot", &[]),
        ("ENROLL_CATALOG", "Projects\u{1}", &[]),
        ("ENROLL_SCHEDULE", "every night", &[]),
        ("ENROLL_SCHEDULE", "0 0 25 * * *", &[]),
        ("ENROLL_SCHEDULE", "", &[]),
        ("ENROLL_APP_ID", "my-app", &[]),
        ("ENROLL_ROLE_GROUP_PATTERN", "APP-Roles", &[]),
        ("ENROLL_TENANT_ID", "contoso/../other", &[]),
        ("ENROLL_TENANT_ID", "", &[]),
        ("ENROLL_CLIENT_ID", "my client", &[]),
        ("ENROLL_CLIENT_SECRET", "", &[]),
        (
            "ENROLL_CLIENT_CERTIFICATE",
            "/no/such/cert.pem",
            &["ENROLL_CLIENT_SECRET"],
        ),
        ("IDENTITY_ENDPOINT", "not a url", &["ENROLL_CLIENT_SECRET"]),
        ("ENROLL_STORAGE_PREFIX", "Prod_", &[]),
        ("AzureWebJobsStorage", "nonsense", &[]),
        ("AzureWebJobsStorage", "", &[]),
        (
            "AzureWebJobsStorage__accountName",
            "Bad_Name",
            &["AzureWebJobsStorage"],
        ),
        ("FUNCTIONS_CUSTOMHANDLER_PORT", "0", &[]),
        ("FUNCTIONS_CUSTOMHANDLER_PORT", "http", &[]),
        ("FUNCTIONS_APP_ROOT_PATH", "/no/such/folder", &[]),
        ("FUNCTIONS_WORKER_RUNTIME", "node", &[]),
        ("ENROLL_LOG", "enroll=loud", &[]),
        ("RUST_LOG", "enroll=loud", &[]),
    ];
    for (name, value, drop) in cases {
        let mut settings = good_settings(free_port());
        settings.retain(|(k, _)| k != name && !drop.contains(k));
        if *name == "IDENTITY_ENDPOINT" {
            settings.push(("IDENTITY_HEADER", "h".to_owned()));
        }
        settings.push((name, (*value).to_owned()));
        let what = format!("{name}={value:?}");
        let stderr = stops(&settings, &what);
        // The message names the setting (an empty one counts as missing: for the secret,
        // the first credential to set).
        let named = if *name == "ENROLL_CLIENT_SECRET" {
            "ENROLL_CLIENT_SECRET is not set"
        } else {
            name
        };
        assert!(stderr.contains(named), "{what}: {stderr}");
        assert!(
            !stderr.contains("s3cr3t-value"),
            "{what}: a secret in the output: {stderr}"
        );
        // One JSON line saying why, as the host records the handler's stderr.
        let line: serde_json::Value = serde_json::from_str(stderr.lines().last().unwrap()).unwrap();
        assert_eq!(line["level"], "ERROR", "{what}: {stderr}");
    }
}
