//! The app without a socket (`warp::test`), over local storage and a Graph client that
//! reaches nothing: what it answers to invocations it cannot use, and what it records.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use warp::http::StatusCode;

use super::{MAX_BLOB_INVOCATION_BYTES, app};
use crate::protocol::InvocationResult;
use enroll_graph::{Credential, GraphClient, GraphConfig, RetryPolicy, Secret};
use enroll_steps::{StepConfig, World};
use enroll_store::local::LocalStorage;

const ROSTER: &str = "Projects/Alpha.csv";

/// A local folder has no queue: these tests run without an undo window, so Plan never
/// sends a delayed Remove message; one that tried would fail visibly.
impl super::SendLater for LocalStorage {
    async fn send_later(
        &self,
        queue: &str,
        _text: &str,
        _delay: Duration,
    ) -> Result<(), enroll_steps::StorageError> {
        Err(enroll_steps::StorageError {
            message: format!("a local folder has no queue {queue}"),
            retryable: false,
        })
    }
}

struct Setup {
    dir: tempfile::TempDir,
    world: Arc<World<LocalStorage>>,
}

/// A world whose Graph is a closed port: any step that needs Graph fails at once.
fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let rosters = dir.path().join("rosters");
    std::fs::create_dir_all(rosters.join("Projects")).unwrap();
    std::fs::write(rosters.join(ROSTER), "Ann;ann@contoso.com\n").unwrap();
    let mut graph = GraphConfig::new(
        "contoso.onmicrosoft.com",
        Credential::ClientSecret {
            client_id: "c".into(),
            secret: Secret::new("s"),
        },
    );
    graph.graph_base_url = "http://127.0.0.1:1/v1.0".into();
    graph.authority_url = "http://127.0.0.1:1".into();
    graph.retry = RetryPolicy {
        max_attempts: 1,
        max_elapsed: Duration::from_secs(1),
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(1),
        max_wait: Duration::from_millis(1),
    };
    let world = World::new(
        GraphClient::new(graph).unwrap(),
        LocalStorage::new(rosters, dir.path().join("reports")),
        StepConfig::default(),
    );
    Setup {
        dir,
        world: Arc::new(world),
    }
}

impl Setup {
    async fn post(&self, function: &str, body: &Value) -> (StatusCode, Value) {
        let response = warp::test::request()
            .method("POST")
            .path(&format!("/{function}"))
            .json(body)
            .reply(&app(self.world.clone()))
            .await;
        let status = response.status();
        (status, serde_json::from_slice(response.body()).unwrap())
    }

    fn reports(&self) -> &Path {
        self.dir.path()
    }

    /// The audit trail's lines (outcome, action, email).
    fn audit(&self) -> Vec<(String, String, String)> {
        let Ok(text) = std::fs::read_to_string(self.reports().join("reports/audit.jsonl")) else {
            return Vec::new();
        };
        text.lines()
            .map(|line| {
                let record: Value = serde_json::from_str(line).unwrap();
                let text = |key: &str| record[key].as_str().unwrap_or("-").to_owned();
                (text("outcome"), text("action"), text("email"))
            })
            .collect()
    }

    /// Every file under `reports/{run}/` with its text.
    fn report_files(&self, run: &str) -> Vec<(String, String)> {
        let mut files: Vec<(String, String)> =
            std::fs::read_dir(self.reports().join("reports").join(run))
                .map(|entries| {
                    entries
                        .map(|e| {
                            let e = e.unwrap();
                            (
                                e.file_name().to_string_lossy().into_owned(),
                                std::fs::read_to_string(e.path()).unwrap(),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
        files.sort();
        files
    }
}

fn result(body: Value) -> InvocationResult {
    serde_json::from_value(body).unwrap()
}

fn poison(result: &InvocationResult) -> Vec<String> {
    result.outputs["poison"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap().to_owned())
        .collect()
}

fn remove_message() -> Value {
    json!({
        "v": 1, "runId": "run-1", "roster": ROSTER, "etag": "x",
        "accessPackageId": "package-alpha", "assignmentPolicyId": "policy-admin",
        "people": [
            {"email": "bo@fabrikam.com", "userId": "u-bo", "assignmentId": "a-bo"},
            {"email": "cy@fabrikam.com", "userId": "u-cy", "assignmentId": "a-cy"}
        ]
    })
}

#[tokio::test]
async fn a_queue_invocation_without_its_input_binding_goes_to_the_poison_queue_with_the_reason() {
    let setup = setup();
    let (status, body) = setup
        .post(
            "Assign",
            &json!({"Data": {"msg": "{\"v\":1}"}, "Metadata": {"DequeueCount": 1, "Id": "m-1"}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let result = result(body);
    let poison = poison(&result);
    assert_eq!(poison.len(), 1);
    let note: Value = serde_json::from_str(&poison[0]).unwrap();
    assert_eq!(
        note,
        json!({
            "function": "Assign",
            "error": "the invocation cannot be used: the invocation has no input binding `message`",
            "messageId": "m-1",
            "dequeueCount": "1",
            "data": {"msg": "{\"v\":1}"},
        })
    );
    assert_eq!(result.outputs.len(), 1, "only the poison output");
    assert!(
        result.logs[0].starts_with("set aside in the poison queue after try 1"),
        "{:?}",
        result.logs
    );
}

#[tokio::test]
async fn a_queue_invocation_that_is_not_the_protocols_json_is_set_aside_too() {
    let setup = setup();
    let response = warp::test::request()
        .method("POST")
        .path("/Remove")
        .header("content-type", "application/json")
        .body("[1, 2")
        .reply(&app(setup.world.clone()))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let result: InvocationResult = serde_json::from_slice(response.body()).unwrap();
    let note: Value = serde_json::from_str(&poison(&result)[0]).unwrap();
    assert_eq!(note["function"], "Remove");
    assert!(
        note["error"].as_str().unwrap().starts_with(
            "the invocation cannot be used: the invocation is not the custom-handler JSON"
        ),
        "{note}"
    );
}

#[tokio::test]
async fn a_whole_message_set_aside_records_everyone_in_it_as_failed() {
    let setup = setup();
    let text = remove_message().to_string();
    // The last try fails as a whole (Graph cannot be reached): the message is set aside.
    let (status, body) = setup
        .post(
            "Remove",
            &json!({"Data": {"message": text}, "Metadata": {"DequeueCount": 5}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(poison(&result(body)), vec![text]);
    let failed: Vec<(String, String, String)> = setup
        .audit()
        .into_iter()
        .filter(|(outcome, _, _)| outcome == "failed")
        .collect();
    assert_eq!(
        failed,
        vec![
            ("failed".into(), "remove".into(), "bo@fabrikam.com".into()),
            ("failed".into(), "remove".into(), "cy@fabrikam.com".into()),
        ]
    );
    let files = setup.report_files("run-1");
    let names: Vec<&str> = files.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(
        names,
        [
            "Projects__Alpha.failures.jsonl",
            "Projects__Alpha.failures.md"
        ]
    );
    let markdown = &files[1].1;
    assert_eq!(markdown.lines().count(), 2, "{markdown}");
    assert!(
        markdown.contains("remove `bo@fabrikam.com`: set aside: Microsoft Graph:")
            && markdown.contains("remove `cy@fabrikam.com`: set aside:"),
        "{markdown}"
    );
}

#[tokio::test]
async fn a_try_before_the_last_is_given_back_to_the_queue_and_records_no_failure() {
    let setup = setup();
    let (status, body) = setup
        .post(
            "Remove",
            &json!({"Data": {"message": remove_message().to_string()}, "Metadata": {"DequeueCount": 2}}),
        )
        .await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(body["status"], 500);
    assert!(
        setup
            .audit()
            .iter()
            .all(|(outcome, _, _)| outcome != "failed")
    );
}

#[tokio::test]
async fn a_plan_message_set_aside_records_its_roster_as_failed() {
    let setup = setup();
    let text = json!({"v": 1, "runId": "run-2", "roster": ROSTER, "reason": "upload"}).to_string();
    let (status, body) = setup
        .post(
            "Plan",
            &json!({"Data": {"message": text}, "Metadata": {"DequeueCount": 5}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(poison(&result(body)), vec![text]);
    assert_eq!(
        setup.audit(),
        vec![("failed".into(), "plan".into(), "-".into())]
    );
    assert_eq!(setup.report_files("run-2").len(), 2);
}

#[tokio::test]
async fn an_upload_over_the_body_cap_gets_413_and_a_report_that_the_roster_is_too_large() {
    let setup = setup();
    // Built as text: the blob is the one large string, as the host sends it.
    let blob = "QUJD".repeat(usize::try_from(MAX_BLOB_INVOCATION_BYTES).unwrap() / 4 + 1);
    let body = format!(
        r#"{{"Data":{{"roster":"{blob}"}},"Metadata":{{"name":"\"Projects/Huge.csv\"","Properties":{{"ETag":"\"0x8D1\""}}}}}}"#
    );
    let response = warp::test::request()
        .method("POST")
        .path("/RosterUploaded")
        .header("content-type", "application/json")
        .body(body)
        .reply(&app(setup.world.clone()))
        .await;
    let status = response.status();
    let answer: Value = serde_json::from_slice(response.body()).unwrap();
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(answer["status"], 413);
    assert_eq!(answer["title"], "Payload Too Large");
    let run = std::fs::read_dir(setup.reports().join("reports"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .find(|name| name != "audit.jsonl")
        .expect("a run folder with the report");
    let files = setup.report_files(&run);
    let markdown = &files
        .iter()
        .find(|(name, _)| name == "Projects__Huge.md")
        .unwrap()
        .1;
    assert!(
        markdown.contains("Not applied: nothing was changed") && markdown.contains("`too_large`"),
        "{markdown}"
    );
    assert_eq!(
        setup.audit(),
        vec![("rejected".into(), "plan".into(), "-".into())]
    );
}

#[tokio::test]
async fn an_oversized_queue_message_gets_413_without_echoing_it() {
    let setup = setup();
    let name = "n".repeat(31 * 1024 * 1024);
    let body = format!(
        r#"{{"Data":{{"message":"{{\"v\":1,\"runId\":\"r\",\"roster\":\"{name}\",\"reason\":\"upload\"}}"}},"Metadata":{{"DequeueCount":1}}}}"#
    );
    let response = warp::test::request()
        .method("POST")
        .path("/Plan")
        .header("content-type", "application/json")
        .body(body)
        .reply(&app(setup.world.clone()))
        .await;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert!(
        response.body().len() < 1024,
        "{} bytes",
        response.body().len()
    );
    assert!(!String::from_utf8_lossy(response.body()).contains("nnnn"));
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
}

#[tokio::test]
async fn a_long_blob_name_is_refused_without_echoing_it() {
    let setup = setup();
    let name = format!("{}.csv", "n".repeat(60_000));
    let (status, body) = setup
        .post(
            "RosterUploaded",
            &json!({"Data": {"roster": "QQ=="}, "Metadata": {"name": name}}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(!body.to_string().contains("nnnn"), "{body}");
}

#[tokio::test]
async fn warp_rejections_keep_their_own_status_with_a_problem_body() {
    let setup = setup();
    let app = app(setup.world.clone());
    let cases = [
        (warp::test::request().method("GET").path("/Plan"), 405),
        (warp::test::request().method("POST").path("/Plan"), 411),
        (
            warp::test::request()
                .method("POST")
                .path("/Plan")
                .header("content-type", "text/plain")
                .body("{}"),
            415,
        ),
        (
            warp::test::request()
                .method("POST")
                .path("/Plan")
                .header("content-length", "nine"),
            411,
        ),
        (
            warp::test::request()
                .method("POST")
                .path("/Plan")
                .body(vec![b' '; 2 * 1024 * 1024]),
            413,
        ),
        (
            warp::test::request()
                .method("POST")
                .path("/Nope")
                .json(&json!({})),
            404,
        ),
        (warp::test::request().method("GET").path("/a/b"), 405),
    ];
    for (request, expected) in cases {
        let response = request.reply(&app).await;
        assert_eq!(response.status().as_u16(), expected);
        let problem: Value = serde_json::from_slice(response.body()).unwrap();
        assert_eq!(problem["status"], expected, "{problem}");
        assert!(problem["detail"].is_string(), "{problem}");
        assert!(!problem.to_string().contains("Rejection"), "{problem}");
    }
}
