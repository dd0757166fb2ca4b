//! The simulated tenant over loopback HTTP, driven with plain reqwest calls: Graph's paging,
//! filters and limits, `$batch`, faults, auth, eventual consistency, request delivery, app-role
//! rules. Conformance against the published Graph examples and OpenAPI schemas is in
//! `sim/conformance.rs`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod conformance;

use std::time::{Duration, Instant};

use enroll_core::tenant::{
    AccessPackage, AppRole, AppRoleAssignment, Application, Assignment, AssignmentPolicy, Catalog,
    Group, ObjectRef, ServicePrincipal, Subject, TenantSnapshot, User,
};
use enroll_sim::{SimConfig, SimHandle, start};
use serde_json::{Value, json};

pub(crate) const PACKAGE: &str = "a914b616-e04e-476b-aa37-91038f0b165b";
pub(crate) const POLICY: &str = "2264bf65-76ba-417b-a27d-54d291f0cbc8";
pub(crate) const AUTO_POLICY: &str = "5b1c4f2e-0000-4000-8000-00000000a070";
pub(crate) const OTHER_PACKAGE: &str = "114d3459-3459-114d-5934-4d1159344d11";
pub(crate) const CATALOG: &str = "beedadfe-01d5-4025-910b-84abb9369997";
pub(crate) const APP: &str = "fda284b5-f0ad-4763-8289-31a273fca865";
pub(crate) const APP_ID: &str = "65415bb1-9267-4313-bbf5-ae259732ee12";
pub(crate) const SP: &str = "076e8b57-bac8-49d7-9396-e3449b685055";
pub(crate) const GROUP: &str = "7679d9a4-2323-44cd-b5c2-673ec88d8b12";
pub(crate) const ROLE_READER: &str = "ebb7c86c-fb47-4e3f-8191-420ff1b9de4a";

/// A member user `user{i}@contoso.com` with a predictable id.
pub(crate) fn member(i: usize) -> User {
    User {
        id: format!("00000000-0000-4000-8000-{i:012}"),
        display_name: Some(format!("User {i}")),
        user_principal_name: Some(format!("user{i}@contoso.com")),
        mail: Some(format!("user{i}@contoso.com")),
        other_mails: vec![],
        user_type: Some("Member".into()),
        ..User::default()
    }
}

pub(crate) fn reader_role(enabled: bool) -> AppRole {
    AppRole {
        allowed_member_types: vec!["User".into()],
        description: Some("Can read".into()),
        display_name: Some("Reader".into()),
        id: ROLE_READER.into(),
        is_enabled: enabled,
        origin: Some("Application".into()),
        value: Some("Survey.Read".into()),
    }
}

/// `users` members, one guest, a catalog with two packages, an app with its service principal
/// and a group.
pub(crate) fn tenant(users: usize) -> TenantSnapshot {
    let mut all: Vec<User> = (0..users).map(member).collect();
    all.push(User {
        id: "46184453-e63b-4f20-86c2-c557ed5d5df9".into(),
        display_name: Some("Jane Guest".into()),
        user_principal_name: Some("jane_example.com#EXT#@contoso.onmicrosoft.com".into()),
        mail: Some("jane@example.com".into()),
        other_mails: vec!["jane@example.com".into(), "jane.alt@example.org".into()],
        user_type: Some("Guest".into()),
        ..User::default()
    });
    let catalog = Catalog {
        id: CATALOG.into(),
        display_name: Some("Project X".into()),
    };
    TenantSnapshot {
        users: all,
        catalogs: vec![catalog.clone()],
        access_packages: vec![
            AccessPackage {
                id: PACKAGE.into(),
                display_name: "Project X | Approver".into(),
                description: Some("Approvers".into()),
                catalog: Some(catalog.clone()),
                assignment_policies: vec![
                    AssignmentPolicy {
                        id: POLICY.into(),
                        display_name: Some("Admin direct".into()),
                        allowed_target_scope: Some("notSpecified".into()),
                        automatic_request_settings: None,
                    },
                    AssignmentPolicy {
                        id: AUTO_POLICY.into(),
                        display_name: Some("Auto".into()),
                        allowed_target_scope: Some("allMemberUsers".into()),
                        automatic_request_settings: Some(
                            json!({"requestAccessForAllowedTargets": true}),
                        ),
                    },
                ],
            },
            AccessPackage {
                id: OTHER_PACKAGE.into(),
                display_name: "Project X | Read Only".into(),
                description: None,
                catalog: Some(catalog),
                assignment_policies: vec![AssignmentPolicy {
                    id: "0d2e4a5f-0000-4000-8000-0000000000b1".into(),
                    display_name: Some("Admin direct".into()),
                    allowed_target_scope: Some("notSpecified".into()),
                    automatic_request_settings: None,
                }],
            },
        ],
        assignments: vec![Assignment {
            id: "a6bb6942-3ae1-4259-9908-0133aaee9377".into(),
            state: Some("delivered".into()),
            status: Some("Delivered".into()),
            target: Some(Subject {
                id: Some("0f0e0d0c-0000-4000-8000-000000000001".into()),
                object_id: Some(member(1).id),
                email: member(1).mail,
                principal_name: member(1).user_principal_name,
                display_name: member(1).display_name,
            }),
            access_package: Some(ObjectRef {
                id: OTHER_PACKAGE.into(),
                display_name: None,
            }),
            assignment_policy: None,
        }],
        assignment_requests: vec![],
        applications: vec![Application {
            id: APP.into(),
            app_id: APP_ID.into(),
            display_name: Some("Surveys".into()),
            app_roles: vec![reader_role(true)],
        }],
        service_principals: vec![ServicePrincipal {
            id: SP.into(),
            app_id: APP_ID.into(),
            display_name: Some("Surveys".into()),
            app_roles: vec![],
        }],
        groups: vec![Group {
            id: GROUP.into(),
            display_name: Some("Project X Readers".into()),
            description: None,
            security_enabled: Some(true),
            mail_enabled: Some(false),
            mail_nickname: Some("px-readers".into()),
        }],
        app_role_assignments: vec![AppRoleAssignment {
            id: "pNl5diMjzUS1wmc-yI2LEkGgWqFFrFdLhG2Ly2CysL4".into(),
            app_role_id: ROLE_READER.into(),
            principal_id: "02bd9fd6-8f93-4758-87c3-1fb73740a315".into(),
            principal_type: Some("Group".into()),
            principal_display_name: Some("Old readers".into()),
            resource_id: SP.into(),
            resource_display_name: Some("Surveys".into()),
            created_date_time: Some("2021-02-19T17:55:08.3369542Z".into()),
        }],
    }
}

/// A running simulator, a reqwest client and a valid token.
pub(crate) struct Sim {
    pub(crate) sim: SimHandle,
    pub(crate) http: reqwest::Client,
    pub(crate) token: String,
}

/// An answer: status, headers, JSON body (`Null` when empty).
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) headers: reqwest::header::HeaderMap,
    pub(crate) body: Value,
}

impl Answer {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub(crate) fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }

    pub(crate) fn message(&self) -> &str {
        self.body["error"]["message"].as_str().unwrap_or("")
    }

    pub(crate) fn values(&self) -> &Vec<Value> {
        self.body["value"]
            .as_array()
            .unwrap_or_else(|| panic!("no value array in {}", self.body))
    }
}

pub(crate) async fn token(http: &reqwest::Client, sim: &SimHandle) -> reqwest::Response {
    http.post(format!(
        "{}/{}/oauth2/v2.0/token",
        sim.base_url(),
        sim.tenant_id()
    ))
    .form(&[
        ("client_id", "enroll-sim-client"),
        ("client_secret", "enroll-sim-secret"),
        ("scope", "https://graph.microsoft.com/.default"),
        ("grant_type", "client_credentials"),
    ])
    .send()
    .await
    .unwrap()
}

impl Sim {
    pub(crate) async fn start(config: SimConfig, snapshot: TenantSnapshot) -> Self {
        let sim = start(config, snapshot).await.unwrap();
        let http = reqwest::Client::new();
        let resp = token(&http, &sim).await;
        assert_eq!(resp.status(), 200);
        let body: Value = resp.json().await.unwrap();
        let token = body["access_token"].as_str().unwrap().to_owned();
        Self { sim, http, token }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}/v1.0{path}", self.sim.base_url())
    }

    pub(crate) async fn send(&self, method: &str, path: &str, body: Option<&Value>) -> Answer {
        let url = if path.starts_with("http") {
            path.to_owned()
        } else {
            self.url(path)
        };
        self.send_url(method, &url, body).await
    }

    pub(crate) async fn send_url(&self, method: &str, url: &str, body: Option<&Value>) -> Answer {
        let mut req = self
            .http
            .request(method.parse().unwrap(), url)
            .bearer_auth(&self.token);
        if let Some(body) = body {
            req = req.json(body);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let bytes = resp.bytes().await.unwrap();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap()
        };
        Answer {
            status,
            headers,
            body,
        }
    }

    pub(crate) async fn get(&self, path: &str) -> Answer {
        self.send("GET", path, None).await
    }

    pub(crate) async fn post(&self, path: &str, body: Value) -> Answer {
        self.send("POST", path, Some(&body)).await
    }
}

fn ids(values: &[Value]) -> Vec<String> {
    values
        .iter()
        .map(|v| v["id"].as_str().unwrap().to_owned())
        .collect()
}

/// Polls `check` every 10 ms until it holds, failing after two seconds.
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(2);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn assert_graph_error(answer: &Answer, status: u16, code: &str) {
    assert_eq!(answer.status, status, "{}", answer.body);
    assert_eq!(answer.code(), code, "{}", answer.body);
    let inner = &answer.body["error"]["innerError"];
    assert!(inner["date"].is_string(), "{}", answer.body);
    assert!(inner["request-id"].is_string(), "{}", answer.body);
    assert_eq!(
        inner["request-id"].as_str(),
        answer.header("request-id"),
        "innerError and header carry the same request-id"
    );
}

#[tokio::test]
async fn users_page_through_next_links_until_the_end() {
    let sim = Sim::start(SimConfig::default(), tenant(250)).await;
    let mut url = sim.url("/users?$select=id,mail");
    let mut seen = Vec::new();
    let mut pages = 0;
    loop {
        let answer = sim.send_url("GET", &url, None).await;
        assert_eq!(answer.status, 200);
        pages += 1;
        seen.extend(ids(answer.values()));
        match answer.body["@odata.nextLink"].as_str() {
            Some(next) => {
                assert!(next.contains("$skiptoken="), "{next}");
                url = next.to_owned();
            }
            None => break,
        }
    }
    assert_eq!(pages, 3, "default page size is 100");
    assert_eq!(seen.len(), 251);
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 251, "no user twice across pages");

    let first = sim.get("/users?$top=7").await;
    assert_eq!(first.values().len(), 7);
    let next = first.body["@odata.nextLink"].as_str().unwrap();
    let second = sim.send_url("GET", next, None).await;
    assert_eq!(second.values().len(), 7);
    assert_ne!(ids(first.values()), ids(second.values()));

    // A skip token belongs to its query; Graph does not support $skip on users either.
    let token = next.split("$skiptoken=").nth(1).unwrap();
    let foreign = sim.get(&format!("/users?$top=8&$skiptoken={token}")).await;
    assert_graph_error(&foreign, 400, "Request_BadRequest");
    let skip = sim.get("/users?$skip=5").await;
    assert_graph_error(&skip, 400, "Request_BadRequest");
    for top in ["0", "1000", "ten"] {
        let answer = sim.get(&format!("/users?$top={top}")).await;
        assert_graph_error(&answer, 400, "Request_BadRequest");
    }
}

#[tokio::test]
async fn user_properties_outside_the_default_set_need_select() {
    let sim = Sim::start(SimConfig::default(), tenant(2)).await;
    let plain = sim.get("/users/46184453-e63b-4f20-86c2-c557ed5d5df9").await;
    assert_eq!(plain.status, 200);
    assert_eq!(plain.body["mail"], "jane@example.com");
    assert!(plain.body.get("userType").is_none(), "{}", plain.body);
    assert!(plain.body.get("otherMails").is_none());

    let selected = sim
        .get("/users/jane_example.com%23EXT%23@contoso.onmicrosoft.com?$select=id,userType,otherMails")
        .await;
    assert_eq!(selected.status, 200, "{}", selected.body);
    assert_eq!(selected.body["userType"], "Guest");
    assert_eq!(selected.body["otherMails"][1], "jane.alt@example.org");
    assert!(selected.body.get("displayName").is_none());
    assert!(
        selected.body["@odata.context"]
            .as_str()
            .unwrap()
            .ends_with("#users(id,userType,otherMails)/$entity")
    );

    let unknown = sim.get("/users?$select=id,favouriteColour").await;
    assert_graph_error(&unknown, 400, "Request_BadRequest");
    let missing = sim.get("/users/nobody@contoso.com").await;
    assert_graph_error(&missing, 404, "Request_ResourceNotFound");
}

#[tokio::test]
async fn user_filters_match_mail_upn_and_other_mails() {
    let sim = Sim::start(SimConfig::default(), tenant(20)).await;
    let found = |answer: &Answer| {
        let mut ids = ids(answer.values());
        ids.sort();
        ids
    };
    let by_in = sim
        .get("/users?$filter=mail in ('USER3@contoso.com','user4@contoso.com','none@x.com')&$select=id,mail")
        .await;
    assert_eq!(by_in.status, 200, "{}", by_in.body);
    assert_eq!(found(&by_in), vec![member(3).id, member(4).id]);

    let by_eq = sim.get("/users?$filter=mail eq 'user5@contoso.com'").await;
    assert_eq!(found(&by_eq), vec![member(5).id]);

    let guest = "46184453-e63b-4f20-86c2-c557ed5d5df9".to_owned();
    let by_upn = sim
        .get("/users?$filter=userPrincipalName eq 'jane_example.com%23EXT%23@contoso.onmicrosoft.com'")
        .await;
    assert_eq!(found(&by_upn), vec![guest.clone()]);
    let by_other = sim
        .get("/users?$filter=otherMails/any(x:x eq 'jane.alt@example.org')")
        .await;
    assert_eq!(found(&by_other), vec![guest.clone()]);
    let combined = sim
        .get("/users?$filter=mail eq 'nobody@x.com' or userPrincipalName in ('user6@contoso.com') or otherMails/any(m:m eq 'JANE.ALT@example.org')")
        .await;
    assert_eq!(found(&combined), {
        let mut v = vec![member(6).id, guest];
        v.sort();
        v
    });
    let quote = sim.get("/users?$filter=mail eq 'o''neil@x.com'").await;
    assert_eq!(quote.status, 200);
    assert!(quote.values().is_empty());

    for unsupported in [
        "endswith(mail,'@contoso.com')",
        "mail ne 'user1@contoso.com'",
        "startswith(givenName,'a')",
        "jobTitle eq 'x'",
    ] {
        let answer = sim.get(&format!("/users?$filter={unsupported}")).await;
        assert_graph_error(&answer, 400, "Request_UnsupportedQuery");
    }
    let malformed = sim.get("/users?$filter=mail eq").await;
    assert_graph_error(&malformed, 400, "BadRequest");
}

#[tokio::test]
async fn in_filters_stop_at_fifteen_values() {
    let sim = Sim::start(SimConfig::default(), tenant(20)).await;
    let list = |n: usize| {
        (0..n)
            .map(|i| format!("'user{i}@contoso.com'"))
            .collect::<Vec<_>>()
            .join(",")
    };
    let fifteen = sim
        .get(&format!("/users?$filter=mail in ({})", list(15)))
        .await;
    assert_eq!(fifteen.status, 200);
    assert_eq!(fifteen.values().len(), 15);
    let sixteen = sim
        .get(&format!("/users?$filter=mail in ({})", list(16)))
        .await;
    assert_graph_error(&sixteen, 400, "Request_UnsupportedQuery");
    // `or`-ed clauses count towards the same limit.
    let mixed = sim
        .get(&format!(
            "/users?$filter=mail in ({}) or otherMails/any(x:x eq 'a@b.c')",
            list(15)
        ))
        .await;
    assert_graph_error(&mixed, 400, "Request_UnsupportedQuery");
}

#[tokio::test]
async fn batch_answers_each_request_and_keeps_its_limits() {
    let sim = Sim::start(SimConfig::default(), tenant(30)).await;
    let requests: Vec<Value> = (0..20)
        .map(|i| {
            json!({"id": format!("{i}"), "method": "GET",
                   "url": format!("/users?$filter=mail eq 'user{i}@contoso.com'&$select=id")})
        })
        .collect();
    let batch = sim.post("/$batch", json!({ "requests": requests })).await;
    assert_eq!(batch.status, 200, "{}", batch.body);
    let responses = batch.body["responses"].as_array().unwrap();
    assert_eq!(responses.len(), 20);
    let order: Vec<&str> = responses
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    let request_order: Vec<String> = (0..20).map(|i| i.to_string()).collect();
    assert_ne!(
        order, request_order,
        "answers come in another order than asked"
    );
    for r in responses {
        let i: usize = r["id"].as_str().unwrap().parse().unwrap();
        assert_eq!(r["status"], 200);
        assert_eq!(
            r["body"]["value"][0]["id"],
            member(i).id,
            "correlated by id"
        );
    }
    let counters = sim.sim.counters();
    assert_eq!(counters.batches, 1);
    assert_eq!(counters.graph_operations, 20);

    let too_many: Vec<Value> = (0..21)
        .map(|i| json!({"id": format!("{i}"), "method": "GET", "url": "/users"}))
        .collect();
    let answer = sim.post("/$batch", json!({ "requests": too_many })).await;
    assert_graph_error(&answer, 400, "BadRequest");
    let duplicate = sim
        .post(
            "/$batch",
            json!({"requests": [
                {"id": "a", "method": "GET", "url": "/users"},
                {"id": "A", "method": "GET", "url": "/groups"},
            ]}),
        )
        .await;
    assert_graph_error(&duplicate, 400, "BadRequest");
    let no_content_type = sim
        .post(
            "/$batch",
            json!({"requests": [{"id": "1", "method": "POST", "url": "/invitations",
                "body": {"invitedUserEmailAddress": "x@y.com", "inviteRedirectUrl": "https://x"}}]}),
        )
        .await;
    assert_graph_error(&no_content_type, 400, "BadRequest");
    assert_eq!(
        sim.sim.snapshot().await.users.len(),
        31,
        "a refused batch runs nothing"
    );
}

#[tokio::test]
async fn batch_depends_on_fails_dependents_with_424() {
    let sim = Sim::start(SimConfig::default(), tenant(3)).await;
    let batch = sim
        .post(
            "/$batch",
            json!({"requests": [
                {"id": "1", "method": "GET", "url": "/users/nobody@contoso.com"},
                {"id": "2", "method": "POST", "url": "/invitations", "dependsOn": ["1"],
                 "headers": {"Content-Type": "application/json"},
                 "body": {"invitedUserEmailAddress": "new@fabrikam.com", "inviteRedirectUrl": "https://myapps.microsoft.com"}},
                {"id": "3", "method": "GET", "url": "users/user1@contoso.com"},
                {"id": "4", "method": "GET", "url": "/groups", "dependsOn": ["3"]},
                {"id": "5", "method": "GET", "url": "/users", "dependsOn": ["2"]},
            ]}),
        )
        .await;
    assert_eq!(batch.status, 200);
    let status = |id: &str| {
        batch.body["responses"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"] == id)
            .map(|r| r["status"].as_u64().unwrap())
            .unwrap()
    };
    assert_eq!(status("1"), 404);
    assert_eq!(status("2"), 424);
    assert_eq!(status("3"), 200);
    assert_eq!(status("4"), 200);
    assert_eq!(
        status("5"),
        424,
        "a failed dependency fails its dependents too"
    );
    assert!(
        !sim.sim
            .snapshot()
            .await
            .users
            .iter()
            .any(|u| u.mail.as_deref() == Some("new@fabrikam.com")),
        "the dependent invitation did not run"
    );
    let forward = sim
        .post(
            "/$batch",
            json!({"requests": [
                {"id": "1", "method": "GET", "url": "/users", "dependsOn": ["2"]},
                {"id": "2", "method": "GET", "url": "/users"},
            ]}),
        )
        .await;
    assert_graph_error(&forward, 400, "BadRequest");
}

/// A `Retry-After` in whole seconds, as HTTP allows; the throttle's window is one second.
fn retry_after(value: Option<&str>) -> Duration {
    let value = value.expect("Retry-After");
    let secs: u64 = value
        .parse()
        .unwrap_or_else(|_| panic!("Retry-After {value:?} is not whole seconds"));
    assert_eq!(secs, 1, "{value}");
    Duration::from_secs(secs)
}

#[tokio::test]
async fn throttling_answers_429_with_retry_after_until_the_window_passes() {
    let config = SimConfig {
        throttle_rps: Some(5),
        ..SimConfig::default()
    };
    let sim = Sim::start(config, tenant(3)).await;
    let mut statuses = Vec::new();
    let mut wait = None;
    for _ in 0..8 {
        let answer = sim.get("/users/user1@contoso.com").await;
        if answer.status == 429 {
            assert_graph_error(&answer, 429, "TooManyRequests");
            wait = Some(retry_after(answer.header("retry-after")));
        }
        statuses.push(answer.status);
    }
    assert_eq!(&statuses[..5], &[200; 5]);
    assert!(statuses[5..].iter().all(|s| *s == 429), "{statuses:?}");
    tokio::time::sleep(wait.unwrap()).await;
    assert_eq!(sim.get("/users/user1@contoso.com").await.status, 200);
    assert_eq!(sim.sim.counters().throttled, 3);

    // Inside a batch each request is throttled on its own, with its own Retry-After.
    let sim = Sim::start(
        SimConfig {
            throttle_rps: Some(5),
            ..SimConfig::default()
        },
        tenant(3),
    )
    .await;
    let requests: Vec<Value> = (0..8)
        .map(|i| json!({"id": format!("{i}"), "method": "GET", "url": "/users/user1@contoso.com"}))
        .collect();
    let batch = sim.post("/$batch", json!({ "requests": requests })).await;
    assert_eq!(batch.status, 200);
    let responses = batch.body["responses"].as_array().unwrap();
    let throttled: Vec<&Value> = responses.iter().filter(|r| r["status"] == 429).collect();
    assert_eq!(throttled.len(), 3);
    for r in throttled {
        retry_after(r["headers"]["Retry-After"].as_str());
        assert_eq!(r["body"]["error"]["code"], "TooManyRequests");
    }
}

async fn fault_sequence(seed: u64) -> Vec<u16> {
    let config = SimConfig {
        fault_rate: 0.4,
        seed,
        ..SimConfig::default()
    };
    let sim = Sim::start(config, tenant(3)).await;
    let mut statuses = Vec::new();
    for _ in 0..40 {
        statuses.push(sim.get("/users/user1@contoso.com").await.status);
    }
    statuses
}

#[tokio::test]
async fn faults_replay_with_the_same_seed() {
    let first = fault_sequence(42).await;
    let again = fault_sequence(42).await;
    let other = fault_sequence(43).await;
    assert_eq!(first, again, "same seed, same faults");
    assert_ne!(first, other, "another seed, other faults");
    assert!(first.contains(&200));
    assert!(
        first.iter().all(|s| [200, 500, 503, 504].contains(s)),
        "{first:?}"
    );
    assert!(first.iter().any(|s| *s >= 500));
}

#[tokio::test]
async fn a_gateway_timeout_loses_the_answer_not_the_write() {
    let config = SimConfig {
        fault_rate: 1.0,
        seed: 7,
        ..SimConfig::default()
    };
    let sim = Sim::start(config, tenant(3)).await;
    let mut saw_504 = false;
    for i in 0..12 {
        let email = format!("faulty{i}@fabrikam.com");
        let answer = sim
            .post(
                "/invitations",
                json!({"invitedUserEmailAddress": email, "inviteRedirectUrl": "https://x.example"}),
            )
            .await;
        assert!([500, 503, 504].contains(&answer.status));
        let exists = sim
            .sim
            .snapshot()
            .await
            .users
            .iter()
            .any(|u| u.mail.as_deref() == Some(email.as_str()));
        assert_eq!(
            exists,
            answer.status == 504,
            "{} for {email}",
            answer.status
        );
        saw_504 |= answer.status == 504;
    }
    assert!(saw_504);
    assert_eq!(sim.sim.counters().faulted, 12);
}

#[tokio::test]
async fn dropped_connections_fail_at_the_transport() {
    let config = SimConfig {
        drop_rate: 1.0,
        ..SimConfig::default()
    };
    let sim = start(config, tenant(1)).await.unwrap();
    let http = reqwest::Client::new();
    let result = async {
        let resp = http
            .get(format!("{}/v1.0/users", sim.base_url()))
            .send()
            .await?;
        resp.bytes().await
    }
    .await;
    assert!(result.is_err(), "{result:?}");
    assert_eq!(sim.counters().dropped, 1);
}

#[tokio::test]
async fn graph_rejects_missing_unknown_and_expired_tokens() {
    let config = SimConfig {
        token_lifetime_ms: 300,
        ..SimConfig::default()
    };
    let sim = Sim::start(config, tenant(1)).await;
    let http = &sim.http;
    let resp = http
        .get(sim.url("/users"))
        .header("client-request-id", "my-correlation-id")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(
        resp.headers()["client-request-id"],
        "my-correlation-id",
        "client-request-id is echoed"
    );
    assert!(resp.headers().contains_key("request-id"));
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "InvalidAuthenticationToken");
    assert_eq!(
        body["error"]["innerError"]["client-request-id"],
        "my-correlation-id"
    );

    let forged = http
        .get(sim.url("/users"))
        .bearer_auth("eyJforged")
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 401);

    assert_eq!(sim.get("/users").await.status, 200);
    tokio::time::sleep(Duration::from_millis(350)).await;
    let expired = sim.get("/users").await;
    assert_graph_error(&expired, 401, "InvalidAuthenticationToken");
    assert!(expired.message().contains("expired"), "{}", expired.body);
    assert_eq!(sim.sim.counters().unauthorized, 3);
}

#[tokio::test]
async fn token_endpoint_checks_client_and_secret() {
    let sim = start(SimConfig::default(), tenant(1)).await.unwrap();
    let http = reqwest::Client::new();
    let url = format!("{}/{}/oauth2/v2.0/token", sim.base_url(), sim.tenant_id());
    let ask = |client: &'static str, secret: &'static str, scope: &'static str| {
        http.post(&url)
            .form(&[
                ("client_id", client),
                ("client_secret", secret),
                ("scope", scope),
                ("grant_type", "client_credentials"),
            ])
            .send()
    };
    let ok = ask(
        "enroll-sim-client",
        "enroll-sim-secret",
        "https://graph.microsoft.com/.default",
    )
    .await
    .unwrap();
    assert_eq!(ok.status(), 200);
    let body: Value = ok.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);

    let wrong_secret = ask(
        "enroll-sim-client",
        "nope",
        "https://graph.microsoft.com/.default",
    )
    .await
    .unwrap();
    assert_eq!(wrong_secret.status(), 401);
    let body: Value = wrong_secret.json().await.unwrap();
    assert_eq!(body["error"], "invalid_client");
    assert!(!body.to_string().contains("enroll-sim-secret"));

    let wrong_client = ask(
        "someone",
        "enroll-sim-secret",
        "https://graph.microsoft.com/.default",
    )
    .await
    .unwrap();
    assert_eq!(wrong_client.status(), 400);
    let wrong_scope = ask("enroll-sim-client", "enroll-sim-secret", "User.Read.All")
        .await
        .unwrap();
    assert_eq!(wrong_scope.status(), 400);
    let other_tenant = http
        .post(format!("{}/other-tenant/oauth2/v2.0/token", sim.base_url()))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(other_tenant.status(), 400);
}

#[tokio::test]
async fn managed_identity_endpoint_speaks_2019_08_01() {
    let sim = start(SimConfig::default(), tenant(1)).await.unwrap();
    let http = reqwest::Client::new();
    let url = format!(
        "{}/msi/token?resource=https://graph.microsoft.com&api-version=2019-08-01",
        sim.base_url()
    );
    let no_header = http.get(&url).send().await.unwrap();
    assert_eq!(no_header.status(), 401);
    let ok = http
        .get(&url)
        .header("X-IDENTITY-HEADER", "enroll-sim-identity")
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let body: Value = ok.json().await.unwrap();
    let expires_on: u64 = body["expires_on"].as_str().unwrap().parse().unwrap();
    assert!(expires_on > 1_700_000_000);
    assert_eq!(body["resource"], "https://graph.microsoft.com");
    let token = body["access_token"].as_str().unwrap();
    let users = http
        .get(format!("{}/v1.0/users", sim.base_url()))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(users.status(), 200);
    let old_version = http
        .get(url.replace("2019-08-01", "2017-09-01"))
        .header("X-IDENTITY-HEADER", "enroll-sim-identity")
        .send()
        .await
        .unwrap();
    assert_eq!(old_version.status(), 400);
}

/// The claims of a JWT, unverified.
pub(crate) fn jwt_claims(token: &str) -> Value {
    use base64::Engine as _;
    let part = token.split('.').nth(1).expect("a JWT has three parts");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

/// Verifies `token`'s RS256 signature against the key of `jwks` its header names, as a
/// validator reading the simulator's JWKS would; returns the claims.
fn verify_with_jwks(token: &str, jwks: &Value) -> Value {
    use aws_lc_rs::signature::{RSA_PKCS1_2048_8192_SHA256, RsaPublicKeyComponents};
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let (input, signature) = token.rsplit_once('.').unwrap();
    let header: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(input.split('.').next().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(header["alg"], "RS256");
    assert_eq!(header["typ"], "JWT");
    let key = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == header["kid"])
        .unwrap_or_else(|| panic!("no key {} in {jwks}", header["kid"]));
    assert_eq!(
        (key["kty"].as_str(), key["use"].as_str()),
        (Some("RSA"), Some("sig"))
    );
    let decode = |name: &str| URL_SAFE_NO_PAD.decode(key[name].as_str().unwrap()).unwrap();
    RsaPublicKeyComponents {
        n: decode("n"),
        e: decode("e"),
    }
    .verify(
        &RSA_PKCS1_2048_8192_SHA256,
        input.as_bytes(),
        &URL_SAFE_NO_PAD.decode(signature).unwrap(),
    )
    .expect("the signature verifies with the published key");
    jwt_claims(token)
}

/// A token request with a client secret in the body; `None` when the answer is not 200.
async fn client_token(
    http: &reqwest::Client,
    sim: &SimHandle,
    tenant: &str,
    (client, secret): (&str, &str),
    scope: &str,
) -> (u16, Value) {
    let resp = http
        .post(format!("{}/{tenant}/oauth2/v2.0/token", sim.base_url()))
        .form(&[
            ("client_id", client),
            ("client_secret", secret),
            ("scope", scope),
            ("grant_type", "client_credentials"),
        ])
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

const SIM_CLIENT: (&str, &str) = ("enroll-sim-client", "enroll-sim-secret");
const GRAPH_SCOPE: &str = "https://graph.microsoft.com/.default";

#[tokio::test]
async fn discovery_and_keys_describe_the_signed_tokens() {
    let sim = start(SimConfig::default(), tenant(1)).await.unwrap();
    let http = reqwest::Client::new();
    let get = |url: String| {
        let http = http.clone();
        async move {
            let resp = http.get(url).send().await.unwrap();
            (resp.status().as_u16(), resp.json::<Value>().await.unwrap())
        }
    };
    let base = sim.base_url();
    let tid = sim.tenant_id().to_owned();
    assert_eq!(sim.issuer(), format!("{base}/{tid}/v2.0"));
    // By id, and by the domains the snapshot's principal names use: the same document,
    // naming the tenant by its id.
    let (status, by_id) = get(sim.discovery_url()).await;
    assert_eq!(status, 200, "{by_id}");
    for domain in [
        "contoso.com",
        "CONTOSO.onmicrosoft.com",
        "enrollsim.onmicrosoft.com",
    ] {
        let (status, doc) = get(format!(
            "{base}/{domain}/v2.0/.well-known/openid-configuration"
        ))
        .await;
        assert_eq!((status, &doc), (200, &by_id), "{domain}");
    }
    assert_eq!(by_id["issuer"], sim.issuer());
    assert_eq!(by_id["jwks_uri"], sim.jwks_url());
    assert_eq!(
        by_id["token_endpoint"],
        format!("{base}/{tid}/oauth2/v2.0/token")
    );
    assert_eq!(
        by_id["token_endpoint_auth_methods_supported"],
        json!([
            "client_secret_post",
            "private_key_jwt",
            "client_secret_basic"
        ])
    );
    assert_eq!(
        by_id["id_token_signing_alg_values_supported"],
        json!(["RS256"])
    );
    // The multi-tenant document leaves the tenant open, as Entra's does.
    let (_, common) = get(format!(
        "{base}/common/v2.0/.well-known/openid-configuration"
    ))
    .await;
    assert_eq!(common["issuer"], format!("{base}/{{tenantid}}/v2.0"));
    let (status, unknown) = get(format!(
        "{base}/fabrikam.com/v2.0/.well-known/openid-configuration"
    ))
    .await;
    assert_eq!(status, 400);
    assert_eq!(unknown["error"], "invalid_tenant");
    assert_eq!(unknown["error_codes"], json!([90002]));

    let (status, jwks) = get(sim.jwks_url()).await;
    assert_eq!(status, 200);
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 1);
    assert_eq!(jwks["keys"][0]["issuer"], sim.issuer());
    let (_, common_keys) = get(format!("{base}/common/discovery/v2.0/keys")).await;
    assert_eq!(common_keys["keys"][0]["kid"], jwks["keys"][0]["kid"]);

    let (status, body) = client_token(&http, &sim, &tid, SIM_CLIENT, GRAPH_SCOPE).await;
    assert_eq!(status, 200, "{body}");
    let token = body["access_token"].as_str().unwrap();
    let claims = verify_with_jwks(token, &jwks);
    assert_eq!(claims["iss"], sim.issuer());
    assert_eq!(claims["aud"], "https://graph.microsoft.com");
    assert_eq!(claims["tid"], tid);
    assert_eq!(claims["ver"], "2.0");
    assert_eq!(claims["azp"], "enroll-sim-client");
    assert_eq!(claims["appid"], "enroll-sim-client");
    assert_eq!(claims["idtyp"], "app");
    assert_eq!(claims["oid"], claims["sub"]);
    assert_eq!(claims["oid"].as_str().unwrap().len(), 36, "a GUID");
    let iat = claims["iat"].as_u64().unwrap();
    assert_eq!(claims["nbf"].as_u64(), Some(iat));
    assert_eq!(claims["exp"].as_u64(), Some(iat + 3600));
    assert!(
        claims.get("roles").is_none(),
        "no roles granted on Graph: {claims}"
    );
    // Graph accepts it.
    let users = http
        .get(format!("{base}/v1.0/users"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(users.status(), 200);
}

/// The client's service principal, holding the Surveys app's reader role.
fn tenant_with_client_roles() -> TenantSnapshot {
    let mut snapshot = tenant(1);
    snapshot.service_principals.push(ServicePrincipal {
        id: "9c0d7a42-0000-4000-8000-00000000c11e".into(),
        app_id: "enroll-sim-client".into(),
        display_name: Some("enroll".into()),
        app_roles: vec![],
    });
    snapshot.app_role_assignments.push(AppRoleAssignment {
        id: "client-holds-reader".into(),
        app_role_id: ROLE_READER.into(),
        principal_id: "9c0d7a42-0000-4000-8000-00000000c11e".into(),
        principal_type: Some("ServicePrincipal".into()),
        principal_display_name: Some("enroll".into()),
        resource_id: SP.into(),
        resource_display_name: Some("Surveys".into()),
        created_date_time: None,
    });
    snapshot
}

#[tokio::test]
async fn tokens_are_issued_only_for_known_resources_with_the_roles_granted() {
    let config = SimConfig {
        client_roles: vec!["Rosters.Read".into(), "Runs.Start".into()],
        apis: vec!["api://enroll".into()],
        ..SimConfig::default()
    };
    let sim = start(config, tenant_with_client_roles()).await.unwrap();
    let http = reqwest::Client::new();
    let tid = sim.tenant_id().to_owned();
    let ask = |scope: &'static str| client_token(&http, &sim, &tid, SIM_CLIENT, scope);

    let (status, unknown) = ask("api://payroll/.default").await;
    assert_eq!(status, 400, "{unknown}");
    assert_eq!(unknown["error"], "invalid_resource");
    assert_eq!(unknown["error_codes"], json!([500011]));
    assert!(
        unknown["error_description"]
            .as_str()
            .unwrap()
            .starts_with("AADSTS500011: The resource principal named api://payroll was not found"),
        "{unknown}"
    );

    // An API of the configuration: the client's configured roles.
    let (status, body) = ask("api://enroll/.default").await;
    assert_eq!(status, 200, "{body}");
    let api_token = body["access_token"].as_str().unwrap().to_owned();
    let claims = jwt_claims(&api_token);
    assert_eq!(claims["aud"], "api://enroll");
    assert_eq!(claims["roles"], json!(["Rosters.Read", "Runs.Start"]));

    // An application of the snapshot, by app ID URI or app id: plus the role the snapshot
    // assigns the client's service principal, whose object id is the token's oid.
    for (scope, aud) in [
        (
            "api://65415bb1-9267-4313-bbf5-ae259732ee12/.default",
            "api://65415bb1-9267-4313-bbf5-ae259732ee12",
        ),
        ("65415bb1-9267-4313-bbf5-ae259732ee12/.default", APP_ID),
    ] {
        let (status, body) = ask(scope).await;
        assert_eq!(status, 200, "{body}");
        let claims = jwt_claims(body["access_token"].as_str().unwrap());
        assert_eq!(claims["aud"], aud);
        assert_eq!(
            claims["roles"],
            json!(["Rosters.Read", "Runs.Start", "Survey.Read"])
        );
        assert_eq!(claims["oid"], "9c0d7a42-0000-4000-8000-00000000c11e");
    }

    // Graph takes only tokens for Graph.
    let refused = http
        .get(format!("{}/v1.0/users", sim.base_url()))
        .bearer_auth(&api_token)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "InvalidAuthenticationToken");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Invalid audience"),
        "{body}"
    );
    // A Graph token carries no API roles.
    let (_, graph) = ask(GRAPH_SCOPE).await;
    assert!(
        jwt_claims(graph["access_token"].as_str().unwrap())
            .get("roles")
            .is_none()
    );
}

#[tokio::test]
async fn clients_authenticate_in_the_body_or_with_http_basic_but_not_both() {
    use base64::Engine as _;
    // A secret with characters that HTTP Basic must carry form-encoded.
    let secret = "s3:cr+t/é";
    let config = SimConfig {
        clients: vec![enroll_sim::SimClient {
            client_id: "b7f0e0a1-0000-4000-8000-0000000000b2".into(),
            client_secret: secret.into(),
            roles: vec!["Rosters.Write".into()],
        }],
        apis: vec!["api://enroll".into()],
        ..SimConfig::default()
    };
    let sim = start(config, tenant(1)).await.unwrap();
    let http = reqwest::Client::new();
    let url = format!("{}/{}/oauth2/v2.0/token", sim.base_url(), sim.tenant_id());
    let encode = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let basic = |id: &str, secret: &str| {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!(
                "{}:{}",
                encode(id),
                encode(secret)
            ))
        )
    };
    let post = |authorization: Option<String>, form: Vec<(&'static str, String)>| {
        let mut request = http.post(&url).form(&form);
        if let Some(value) = authorization {
            request = request.header("Authorization", value);
        }
        async move {
            let resp = request.send().await.unwrap();
            (resp.status().as_u16(), resp.json::<Value>().await.unwrap())
        }
    };
    let base_form = || {
        vec![
            ("scope", "api://enroll/.default".to_owned()),
            ("grant_type", "client_credentials".to_owned()),
        ]
    };
    let client = "b7f0e0a1-0000-4000-8000-0000000000b2";

    let (status, body) = post(Some(basic(client, secret)), base_form()).await;
    assert_eq!(status, 200, "{body}");
    let claims = jwt_claims(body["access_token"].as_str().unwrap());
    assert_eq!(claims["azp"], client);
    assert_eq!(claims["roles"], json!(["Rosters.Write"]));

    let mut post_form = base_form();
    post_form.push(("client_id", client.to_owned()));
    post_form.push(("client_secret", secret.to_owned()));
    let (status, body) = post(None, post_form.clone()).await;
    assert_eq!(status, 200, "{body}");

    let (status, body) = post(Some(basic(client, "wrong")), base_form()).await;
    assert_eq!(status, 401);
    assert_eq!(body["error_codes"], json!([7000215]));
    assert!(!body.to_string().contains(secret));

    // Both methods at once is no method.
    let (status, body) = post(Some(basic(client, secret)), post_form).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"], "invalid_client");
    // The default client's secret is not this client's.
    let (status, _) = post(Some(basic(client, "enroll-sim-secret")), base_form()).await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn the_token_endpoint_knows_the_tenant_by_id_or_domain_only() {
    let config = SimConfig {
        tenant_id: "0c2b4b1e-4bd5-4f3c-9e43-5a7b3c9d2e10".into(),
        domains: vec!["enroll.example".into()],
        ..SimConfig::default()
    };
    let sim = start(config, tenant(1)).await.unwrap();
    let http = reqwest::Client::new();
    for tenant in [
        "0c2b4b1e-4bd5-4f3c-9e43-5a7b3c9d2e10",
        "0C2B4B1E-4BD5-4F3C-9E43-5A7B3C9D2E10",
        "enroll.example",
        "contoso.com",
        "enrollsim.onmicrosoft.com",
    ] {
        let (status, body) = client_token(&http, &sim, tenant, SIM_CLIENT, GRAPH_SCOPE).await;
        assert_eq!(status, 200, "{tenant}: {body}");
        let claims = jwt_claims(body["access_token"].as_str().unwrap());
        assert_eq!(
            claims["tid"], "0c2b4b1e-4bd5-4f3c-9e43-5a7b3c9d2e10",
            "{tenant}"
        );
    }
    let (status, body) = client_token(&http, &sim, "common", SIM_CLIENT, GRAPH_SCOPE).await;
    assert_eq!(
        (status, &body["error_codes"]),
        (400, &json!([50059])),
        "{body}"
    );
    let (status, body) =
        client_token(&http, &sim, "enroll-sim-tenant", SIM_CLIENT, GRAPH_SCOPE).await;
    assert_eq!(
        (status, &body["error_codes"]),
        (400, &json!([90002])),
        "{body}"
    );
}

#[tokio::test]
async fn tests_can_mint_tokens_with_chosen_roles_for_any_audience() {
    let sim = start(SimConfig::default(), tenant(1)).await.unwrap();
    let http = reqwest::Client::new();
    let jwks: Value = http
        .get(sim.jwks_url())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = sim
        .mint_token("api://enroll", &["Rosters.Read", "Runs.Start"])
        .unwrap();
    let claims = verify_with_jwks(&token, &jwks);
    assert_eq!(claims["aud"], "api://enroll");
    assert_eq!(claims["iss"], sim.issuer());
    assert_eq!(claims["roles"], json!(["Rosters.Read", "Runs.Start"]));
    assert_eq!(claims["azp"], "enroll-sim-client");
    let status = |token: String| {
        let http = http.clone();
        let url = format!("{}/v1.0/users", sim.base_url());
        async move {
            http.get(url)
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(status(token).await, 401, "not a token for Graph");
    let graph = sim.mint_token("https://graph.microsoft.com", &[]).unwrap();
    assert_eq!(status(graph).await, 200);
    // Another simulator of the same process shares the key but not the issuer.
    let other = start(SimConfig::default(), tenant(1)).await.unwrap();
    let foreign = other
        .mint_token("https://graph.microsoft.com", &[])
        .unwrap();
    assert_eq!(status(foreign).await, 401);
}

#[tokio::test]
async fn managed_identity_tokens_are_jwts_for_known_resources_only() {
    let sim = start(SimConfig::default(), tenant(1)).await.unwrap();
    let http = reqwest::Client::new();
    let ask = |resource: &'static str| {
        http.get(format!(
            "{}/msi/token?resource={resource}&api-version=2019-08-01",
            sim.base_url()
        ))
        .header("X-IDENTITY-HEADER", "enroll-sim-identity")
        .send()
    };
    let resp = ask("https://graph.microsoft.com/").await.unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    let claims = jwt_claims(body["access_token"].as_str().unwrap());
    assert_eq!(claims["aud"], "https://graph.microsoft.com/");
    assert_eq!(claims["azpacr"], "2");
    let resp = ask("https://vault.azure.net").await.unwrap();
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .starts_with("AADSTS500011"),
        "{body}"
    );
}

fn signed_assertion(key_pem: &str, aud: &str, x5t: Option<&str>) -> String {
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use rustls_pki_types::PrivatePkcs8KeyDer;
    use rustls_pki_types::pem::PemObject;

    let der = PrivatePkcs8KeyDer::from_pem_slice(key_pem.as_bytes()).unwrap();
    let key = RsaKeyPair::from_pkcs8(der.secret_pkcs8_der()).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let mut header = json!({"alg": "RS256", "typ": "JWT"});
    if let Some(x5t) = x5t {
        header["x5t"] = json!(x5t);
    }
    let claims = json!({"aud": aud, "iss": "enroll-sim-client", "sub": "enroll-sim-client",
        "jti": "3f2c0d3e-1111-4222-8333-444455556666", "nbf": now, "exp": now + 600});
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let mut signature = vec![0; key.public_modulus_len()];
    key.sign(
        &RSA_PKCS1_SHA256,
        &SystemRandom::new(),
        signing_input.as_bytes(),
        &mut signature,
    )
    .unwrap();
    format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature))
}

#[tokio::test]
async fn client_assertions_are_verified_against_the_certificate() {
    let cert = include_str!("../data/sim/client-assertion-cert.pem");
    let key = include_str!("../data/sim/client-assertion-key.pem");
    let other = include_str!("../data/sim/other-key.pem");
    let config = SimConfig {
        client_certificate_pem: Some(cert.to_owned()),
        ..SimConfig::default()
    };
    let sim = start(config, tenant(1)).await.unwrap();
    let http = reqwest::Client::new();
    let url = format!("{}/{}/oauth2/v2.0/token", sim.base_url(), sim.tenant_id());
    let ask = |assertion: String| {
        http.post(&url)
            .form(&[
                ("client_id", "enroll-sim-client".to_owned()),
                (
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".to_owned(),
                ),
                ("client_assertion", assertion),
                ("scope", "https://graph.microsoft.com/.default".to_owned()),
                ("grant_type", "client_credentials".to_owned()),
            ])
            .send()
    };
    let good = ask(signed_assertion(key, &url, None)).await.unwrap();
    assert_eq!(good.status(), 200, "{}", good.text().await.unwrap());
    let wrong_key = ask(signed_assertion(other, &url, None)).await.unwrap();
    assert_eq!(wrong_key.status(), 401);
    let wrong_aud = ask(signed_assertion(key, "https://elsewhere/token", None))
        .await
        .unwrap();
    assert_eq!(wrong_aud.status(), 401);
    let wrong_thumbprint = ask(signed_assertion(key, &url, Some("AAAA")))
        .await
        .unwrap();
    assert_eq!(wrong_thumbprint.status(), 401);
}

async fn invite(sim: &Sim, email: &str) -> Answer {
    sim.post(
        "/invitations",
        json!({"invitedUserEmailAddress": email, "inviteRedirectUrl": "https://myapps.microsoft.com",
               "invitedUserDisplayName": "New Person", "sendInvitationMessage": false}),
    )
    .await
}

fn add_request(target: &str) -> Value {
    json!({"requestType": "adminAdd",
           "assignment": {"targetId": target, "assignmentPolicyId": POLICY, "accessPackageId": PACKAGE}})
}

const REQUESTS: &str = "/identityGovernance/entitlementManagement/assignmentRequests";

#[tokio::test]
async fn invited_guests_replicate_before_filters_and_entitlement_management_see_them() {
    let config = SimConfig {
        consistency_delay_ms: 250,
        ..SimConfig::default()
    };
    let sim = Sim::start(config, tenant(3)).await;
    let invited = invite(&sim, "new.person@fabrikam.com").await;
    assert_eq!(invited.status, 201, "{}", invited.body);
    assert_eq!(invited.body["status"], "PendingAcceptance");
    let id = invited.body["invitedUser"]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let filter = "/users?$filter=mail eq 'new.person@fabrikam.com'&$select=id,userType";
    assert!(
        sim.get(filter).await.values().is_empty(),
        "not yet replicated"
    );
    let early = sim.post(REQUESTS, add_request(&id)).await;
    assert_graph_error(&early, 400, "BadRequest");
    assert!(early.message().contains("not found"), "{}", early.body);
    let direct = sim
        .get(&format!(
            "/users/{id}?$select=id,userType,externalUserState,creationType,userPrincipalName"
        ))
        .await;
    assert_eq!(
        direct.status, 200,
        "the id from the invitation reads at once"
    );
    assert_eq!(direct.body["userType"], "Guest");
    assert_eq!(direct.body["externalUserState"], "PendingAcceptance");
    assert_eq!(direct.body["creationType"], "Invitation");
    assert_eq!(
        direct.body["userPrincipalName"],
        "new.person_fabrikam.com#EXT#@enrollsim.onmicrosoft.com"
    );
    let again = invite(&sim, "New.Person@fabrikam.com").await;
    assert_eq!(again.status, 201);
    assert_eq!(
        again.body["invitedUser"]["id"],
        id.as_str(),
        "re-invite, same user"
    );

    eventually("replication", || async {
        sim.get(filter).await.values().len() == 1
    })
    .await;
    let added = sim.post(REQUESTS, add_request(&id)).await;
    assert_eq!(added.status, 201, "{}", added.body);

    let member = invite(&sim, "user1@contoso.com").await;
    assert_graph_error(&member, 400, "BadRequest");
    assert!(member.message().contains(&member_id(1)), "{}", member.body);
    let bad_email = invite(&sim, "not an email").await;
    assert_graph_error(&bad_email, 400, "BadRequest");
    let unknown_property = sim
        .post(
            "/invitations",
            json!({"invitedUserEmailAddress": "z@fabrikam.com", "inviteRedirectUrl": "https://x", "redirectUrl": "https://x"}),
        )
        .await;
    assert_graph_error(&unknown_property, 400, "Request_BadRequest");
}

fn member_id(i: usize) -> String {
    member(i).id
}

/// A GET with `ConsistencyLevel: eventual`; the body as text (`/$count` answers in plain text).
async fn get_eventual(sim: &Sim, path: &str) -> (u16, String) {
    let resp = sim
        .http
        .get(sim.url(path))
        .bearer_auth(&sim.token)
        .header("ConsistencyLevel", "eventual")
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

#[tokio::test]
async fn advanced_queries_need_consistency_level_eventual_and_count_as_graph_does() {
    let sim = Sim::start(SimConfig::default(), tenant(12)).await;
    let values = |text: &str| -> Vec<Value> {
        let body: Value = serde_json::from_str(text).unwrap();
        body["value"].as_array().unwrap().clone()
    };
    let names = |text: &str| -> Vec<String> {
        values(text)
            .iter()
            .map(|v| v["displayName"].as_str().unwrap().to_owned())
            .collect()
    };

    // $count: with the header, the total before paging; without it, Graph's 400.
    let (status, text) = get_eventual(&sim, "/users?$count=true&$top=5").await;
    assert_eq!(status, 200, "{text}");
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(body["@odata.count"], 13, "12 members and the guest");
    assert_eq!(values(&text).len(), 5);
    assert!(body["@odata.nextLink"].is_string());
    assert_graph_error(
        &sim.get("/users?$count=true").await,
        400,
        "Request_BadRequest",
    );
    assert_eq!(
        get_eventual(&sim, "/users/$count").await,
        (200, "13".to_owned())
    );
    assert_eq!(
        get_eventual(&sim, "/users/$count?$filter=userType eq 'Guest'").await,
        (200, "1".to_owned())
    );
    assert_eq!(
        get_eventual(&sim, "/groups/$count").await,
        (200, "1".to_owned())
    );
    assert_eq!(
        get_eventual(&sim, "/applications/$count").await,
        (200, "1".to_owned())
    );
    assert_graph_error(&sim.get("/users/$count").await, 400, "Request_BadRequest");

    // Advanced operators: refused without both the header and $count=true.
    for filter in [
        "endswith(mail,'@example.com')",
        "mail ne null",
        "userType ne 'Member'",
    ] {
        let plain = sim.get(&format!("/users?$filter={filter}")).await;
        assert_graph_error(&plain, 400, "Request_UnsupportedQuery");
        assert!(plain.message().contains("$count=true"), "{}", plain.body);
        let (status, _) = get_eventual(&sim, &format!("/users?$filter={filter}")).await;
        assert_eq!(status, 400, "{filter} without $count=true");
    }
    let (status, text) = get_eventual(
        &sim,
        "/users?$count=true&$filter=endswith(mail,'@EXAMPLE.com')",
    )
    .await;
    assert_eq!((status, names(&text)), (200, vec!["Jane Guest".to_owned()]));
    let (_, text) = get_eventual(&sim, "/users?$count=true&$filter=userType ne 'Member'").await;
    assert_eq!(names(&text), vec!["Jane Guest".to_owned()]);
    let (_, text) = get_eventual(&sim, "/users?$count=true&$filter=mail ne null").await;
    assert_eq!(values(&text).len(), 13);

    // Plain filters: userType, accountEnabled, and and-ed clauses.
    let guests = sim.get("/users?$filter=userType eq 'Guest'").await;
    assert_eq!(
        ids(guests.values()),
        vec!["46184453-e63b-4f20-86c2-c557ed5d5df9"]
    );
    let enabled = sim
        .get("/users?$filter=accountEnabled eq true and userType eq 'Member'&$top=999")
        .await;
    assert_eq!(enabled.values().len(), 12);
    let disabled = sim.get("/users?$filter=accountEnabled eq false").await;
    assert!(disabled.values().is_empty());
    let security = sim.get("/groups?$filter=securityEnabled eq true").await;
    assert_eq!(ids(security.values()), vec![GROUP]);
    let mail_groups = sim.get("/groups?$filter=mailEnabled eq true").await;
    assert!(mail_groups.values().is_empty());

    // $orderby displayName, alone or (as an advanced query) with a filter.
    let ordered = sim.get("/users?$orderby=displayName desc&$top=3").await;
    assert_eq!(ordered.status, 200, "{}", ordered.body);
    let top: Vec<&str> = ordered
        .values()
        .iter()
        .map(|v| v["displayName"].as_str().unwrap())
        .collect();
    assert_eq!(top, ["User 9", "User 8", "User 7"]);
    let ordered_filter = "/users?$orderby=displayName&$filter=startswith(displayName,'User 1')";
    assert_graph_error(
        &sim.get(ordered_filter).await,
        400,
        "Request_UnsupportedQuery",
    );
    let (_, text) = get_eventual(&sim, &format!("{ordered_filter}&$count=true")).await;
    assert_eq!(names(&text), ["User 1", "User 10", "User 11"]);
    assert_graph_error(
        &sim.get("/users?$orderby=mail").await,
        400,
        "Request_UnsupportedQuery",
    );

    // $search: words that start with the term, with the header only.
    let search = "/users?$search=\"displayName:jane\"";
    assert_graph_error(&sim.get(search).await, 400, "Request_UnsupportedQuery");
    let (status, text) = get_eventual(&sim, search).await;
    assert_eq!((status, names(&text)), (200, vec!["Jane Guest".to_owned()]));
    let (_, text) = get_eventual(
        &sim,
        "/users?$search=\"displayName:guest\" OR \"mail:user11\"&$orderby=displayName",
    )
    .await;
    assert_eq!(names(&text), ["Jane Guest", "User 11"]);
    let (_, text) = get_eventual(&sim, "/groups?$search=\"displayName:readers\"").await;
    assert_eq!(names(&text), ["Project X Readers"]);
    let (_, text) = get_eventual(&sim, "/applications?$search=\"displayName:surv\"").await;
    assert_eq!(names(&text), ["Surveys"]);
    let (status, _) = get_eventual(&sim, "/users?$search=jane").await;
    assert_eq!(
        status, 400,
        "a term without property and quotes is not modelled"
    );
}

#[tokio::test]
async fn request_bodies_with_values_of_the_wrong_type_are_refused_as_graph_does() {
    let sim = Sim::start(SimConfig::default(), tenant(2)).await;
    let users_before = sim.sim.snapshot().await.users.len();
    let base = json!({"invitedUserEmailAddress": "typed@fabrikam.com",
                      "inviteRedirectUrl": "https://myapps.microsoft.com"});
    let with = |key: &str, value: Value| {
        let mut body = base.clone();
        body[key] = value;
        body
    };
    for (body, message) in [
        (
            with("sendInvitationMessage", json!("yes")),
            "Cannot convert the literal 'yes' to the expected type 'Edm.Boolean'.",
        ),
        (
            with(
                "invitedUserMessageInfo",
                json!({"ccRecipients": [{"emailAddress": {"address": 5}}]}),
            ),
            "Cannot convert the literal '5' to the expected type 'Edm.String'.",
        ),
        (
            with(
                "invitedUserMessageInfo",
                json!({"ccRecipients": {"emailAddress": {}}}),
            ),
            "An unexpected 'StartObject' node was found for property named 'ccRecipients' when reading from the JSON reader. A 'StartArray' node was expected.",
        ),
        (
            with("invitedUserDisplayName", json!(["New", "Person"])),
            "An unexpected 'StartArray' node was found for property named 'invitedUserDisplayName' when reading from the JSON reader. A 'PrimitiveValue' node was expected.",
        ),
    ] {
        let answer = sim.post("/invitations", body).await;
        assert_graph_error(&answer, 400, "BadRequest");
        assert_eq!(answer.message(), message);
    }
    // Nothing was invited; the well-typed body still is.
    assert_eq!(sim.sim.snapshot().await.users.len(), users_before);
    let typed = sim
        .post(
            "/invitations",
            with(
                "invitedUserMessageInfo",
                json!({"ccRecipients": [{"emailAddress": {"address": "cc@fabrikam.com"}}]}),
            ),
        )
        .await;
    assert_eq!(typed.status, 201, "{}", typed.body);
    assert_eq!(sim.sim.snapshot().await.users.len(), users_before + 1);
}

const DELIVERED: &str = "/identityGovernance/entitlementManagement/assignments?$expand=target,accessPackage,assignmentPolicy&$filter=accessPackage/id eq 'a914b616-e04e-476b-aa37-91038f0b165b' and state eq 'delivered'";

#[tokio::test]
async fn assignment_requests_are_delivered_over_time() {
    let config = SimConfig {
        delivery_delay_ms: 200,
        ..SimConfig::default()
    };
    let sim = Sim::start(config, tenant(3)).await;
    let target = member_id(2);
    let created = sim.post(REQUESTS, add_request(&target)).await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(created.body["state"], "submitted");
    assert_eq!(created.body["requestType"], "adminAdd");
    let request = format!("{REQUESTS}/{}", created.body["id"].as_str().unwrap());
    assert!(sim.get(DELIVERED).await.values().is_empty());

    let twice = sim.post(REQUESTS, add_request(&target)).await;
    assert_graph_error(&twice, 400, "BadRequest");
    assert!(twice.message().contains("open request"), "{}", twice.body);

    eventually("delivering", || async {
        sim.get(&request).await.body["state"] == "delivering"
    })
    .await;
    assert!(
        sim.get(DELIVERED).await.values().is_empty(),
        "no assignment before delivery"
    );
    eventually("delivered", || async {
        sim.get(&request).await.body["state"] == "delivered"
    })
    .await;
    let delivered = sim.get(DELIVERED).await;
    assert_eq!(delivered.values().len(), 1);
    let assignment = &delivered.values()[0];
    assert_eq!(assignment["target"]["objectId"], target.as_str());
    assert_eq!(assignment["accessPackage"]["id"], PACKAGE);
    assert_eq!(assignment["assignmentPolicy"]["id"], POLICY);
    let by_target = sim
        .get(&format!(
            "/identityGovernance/entitlementManagement/assignments?$expand=target&$filter=target/objectId eq '{target}'"
        ))
        .await;
    assert_eq!(by_target.values().len(), 1);

    let duplicate = sim.post(REQUESTS, add_request(&target)).await;
    assert_graph_error(&duplicate, 400, "BadRequest");
    assert!(
        duplicate.message().contains("existing assignment"),
        "{}",
        duplicate.body
    );

    let assignment_id = assignment["id"].as_str().unwrap();
    let remove = sim
        .post(
            REQUESTS,
            json!({"requestType": "adminRemove", "assignment": {"id": assignment_id}}),
        )
        .await;
    assert_eq!(remove.status, 201, "{}", remove.body);
    assert_eq!(
        sim.get(DELIVERED).await.values().len(),
        1,
        "still there until delivered"
    );
    eventually("removal", || async {
        sim.get(DELIVERED).await.values().is_empty()
    })
    .await;
    let gone = sim
        .get(&format!(
            "/identityGovernance/entitlementManagement/assignments/{assignment_id}"
        ))
        .await;
    assert_eq!(gone.body["state"], "expired");
    assert!(gone.body["expiredDateTime"].is_string());
    let snapshot = sim.sim.snapshot().await;
    assert!(!snapshot.assignments.iter().any(|a| a.is_active()
        && a.target.as_ref().and_then(|t| t.object_id.as_deref()) == Some(target.as_str())));
}

#[tokio::test]
async fn invalid_assignment_requests_fail_as_graph_fails_them() {
    let sim = Sim::start(SimConfig::default(), tenant(3)).await;
    let target = member_id(0);
    let cases = [
        (
            json!({"requestType": "adminAdd", "assignment": {"targetId": target, "assignmentPolicyId": "0d2e4a5f-0000-4000-8000-0000000000b1", "accessPackageId": PACKAGE}}),
            "No valid policy",
        ),
        (
            json!({"requestType": "adminAdd", "assignment": {"targetId": target, "assignmentPolicyId": AUTO_POLICY, "accessPackageId": PACKAGE}}),
            "automatic",
        ),
        (
            json!({"requestType": "adminAdd", "assignment": {"targetId": "99999999-0000-4000-8000-000000000000", "assignmentPolicyId": POLICY, "accessPackageId": PACKAGE}}),
            "not found",
        ),
        (
            json!({"requestType": "adminRemove", "assignment": {"id": "99999999-0000-4000-8000-000000000000"}}),
            "not found",
        ),
    ];
    for (body, phrase) in cases {
        let answer = sim.post(REQUESTS, body.clone()).await;
        assert_graph_error(&answer, 400, "BadRequest");
        assert!(answer.message().contains(phrase), "{body}: {}", answer.body);
    }
    // The beta body key is not part of the v1.0 type.
    let beta = sim
        .post(
            REQUESTS,
            json!({"requestType": "AdminAdd", "accessPackageAssignment": {"targetId": target, "assignmentPolicyId": POLICY, "accessPackageId": PACKAGE}}),
        )
        .await;
    assert_graph_error(&beta, 400, "BadRequest");
    assert!(beta.message().contains("accessPackageAssignment"));
    assert!(sim.sim.snapshot().await.assignment_requests.is_empty());
}

#[tokio::test]
async fn app_roles_are_replaced_whole_and_disabled_before_removal() {
    let sim = Sim::start(SimConfig::default(), tenant(1)).await;
    let app = format!("/applications/{APP}");
    let role = |id: &str, value: &str, enabled: bool| {
        json!({"allowedMemberTypes": ["User"], "description": value, "displayName": value,
               "id": id, "isEnabled": enabled, "value": value})
    };
    let writer = "1b4f816e-5eaf-48b9-8613-7923830595ad";
    let reader = |enabled| role(ROLE_READER, "Survey.Read", enabled);

    let add = sim
        .send(
            "PATCH",
            &app,
            Some(&json!({"appRoles": [reader(true), role(writer, "Survey.Write", true)]})),
        )
        .await;
    assert_eq!(add.status, 204, "{}", add.body);
    let sp = sim
        .get(&format!(
            "/servicePrincipals?$filter=appId eq '{APP_ID}'&$select=id,appRoles"
        ))
        .await;
    assert_eq!(
        sp.values()[0]["appRoles"].as_array().unwrap().len(),
        2,
        "published to the service principal"
    );

    let drop_enabled = sim
        .send("PATCH", &app, Some(&json!({"appRoles": [reader(true)]})))
        .await;
    assert_graph_error(&drop_enabled, 400, "CannotDeleteOrUpdateEnabledEntitlement");
    let change_enabled = sim
        .send(
            "PATCH",
            &app,
            Some(&json!({"appRoles": [reader(true), role(writer, "Survey.Edit", true)]})),
        )
        .await;
    assert_graph_error(
        &change_enabled,
        400,
        "CannotDeleteOrUpdateEnabledEntitlement",
    );

    let disable = sim
        .send(
            "PATCH",
            &app,
            Some(&json!({"appRoles": [reader(true), role(writer, "Survey.Write", false)]})),
        )
        .await;
    assert_eq!(disable.status, 204);
    let remove = sim
        .send("PATCH", &app, Some(&json!({"appRoles": [reader(true)]})))
        .await;
    assert_eq!(remove.status, 204);
    let read = sim
        .get(&format!("/applications?$filter=appId eq '{APP_ID}'"))
        .await;
    let roles = read.values()[0]["appRoles"].as_array().unwrap().clone();
    assert_eq!(roles.len(), 1);
    assert_eq!(roles[0]["origin"], "Application");

    let duplicate = sim
        .send(
            "PATCH",
            &app,
            Some(&json!({"appRoles": [reader(true), role(writer, "Survey.Read", false)]})),
        )
        .await;
    assert_graph_error(&duplicate, 400, "Request_BadRequest");
    assert_eq!(
        duplicate.body["error"]["details"][0]["code"],
        "DuplicateValue"
    );
    let spaces = sim
        .send(
            "PATCH",
            &app,
            Some(&json!({"appRoles": [reader(true), role(writer, "Survey Write", true)]})),
        )
        .await;
    assert_graph_error(&spaces, 400, "Request_BadRequest");
    let unknown = sim
        .send("PATCH", &app, Some(&json!({"appRoles": [{"id": writer, "allowedMemberTypes": ["User"], "value": "x", "isEnabled": true, "colour": "red"}]})))
        .await;
    assert_graph_error(&unknown, 400, "Request_BadRequest");
    assert_eq!(sim.sim.snapshot().await.applications[0].app_roles.len(), 1);
}

#[tokio::test]
async fn group_app_role_assignments_refuse_duplicates() {
    let sim = Sim::start(SimConfig::default(), tenant(1)).await;
    let path = format!("/groups/{GROUP}/appRoleAssignments");
    let body = json!({"principalId": GROUP, "resourceId": SP, "appRoleId": ROLE_READER});
    let created = sim.post(&path, body.clone()).await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(created.body["principalType"], "Group");
    assert_eq!(created.body["resourceDisplayName"], "Surveys");
    let id = created.body["id"].as_str().unwrap().to_owned();
    assert!(
        !id.contains('-') || id.len() != 36,
        "an opaque id, not a GUID"
    );

    let again = sim.post(&path, body).await;
    assert_graph_error(&again, 400, "Request_BadRequest");
    assert_eq!(
        again.message(),
        "Permission being assigned already exists on the object."
    );
    let unknown_role = sim
        .post(&path, json!({"principalId": GROUP, "resourceId": SP, "appRoleId": "11111111-2222-4333-8444-555555555555"}))
        .await;
    assert_graph_error(&unknown_role, 400, "Request_BadRequest");

    let listed = sim.get(&path).await;
    assert_eq!(ids(listed.values()), vec![id.clone()]);
    let assigned_to = sim
        .get(&format!("/servicePrincipals/{SP}/appRoleAssignedTo"))
        .await;
    assert_eq!(assigned_to.values().len(), 2);
    let groups = sim
        .get("/groups?$filter=startswith(displayName,'Project X')&$select=id,displayName")
        .await;
    assert_eq!(ids(groups.values()), vec![GROUP.to_owned()]);

    let deleted = sim.send("DELETE", &format!("{path}/{id}"), None).await;
    assert_eq!(deleted.status, 204);
    let twice = sim.send("DELETE", &format!("{path}/{id}"), None).await;
    assert_graph_error(&twice, 404, "Request_ResourceNotFound");
    let via_sp = sim
        .post(
            &format!("/servicePrincipals/{SP}/appRoleAssignedTo"),
            json!({"principalId": GROUP, "resourceId": SP, "appRoleId": ROLE_READER}),
        )
        .await;
    assert_eq!(via_sp.status, 201);
}

#[tokio::test]
async fn new_app_role_assignments_reach_lists_late_but_duplicates_are_refused_at_once() {
    let config = SimConfig {
        app_role_assignment_lag_ms: 150,
        ..SimConfig::default()
    };
    let sim = Sim::start(config, tenant(1)).await;
    let path = format!("/groups/{GROUP}/appRoleAssignments");
    let body = json!({"principalId": GROUP, "resourceId": SP, "appRoleId": ROLE_READER});
    let created = sim.post(&path, body.clone()).await;
    assert_eq!(created.status, 201, "{}", created.body);
    let id = created.body["id"].as_str().unwrap().to_owned();
    assert!(
        sim.get(&path).await.values().is_empty(),
        "the group's list lags the write"
    );
    let assigned_to = format!("/servicePrincipals/{SP}/appRoleAssignedTo");
    assert_eq!(
        sim.get(&assigned_to).await.values().len(),
        1,
        "only the assignment from the snapshot"
    );
    let again = sim.post(&path, body).await;
    assert_graph_error(&again, 400, "Request_BadRequest");
    assert_eq!(
        again.message(),
        "Permission being assigned already exists on the object."
    );
    eventually("the assignment to be listed", || async {
        ids(sim.get(&path).await.values()) == vec![id.clone()]
    })
    .await;
    assert_eq!(sim.get(&assigned_to).await.values().len(), 2);
}

#[tokio::test]
async fn access_packages_of_a_catalog_come_with_their_policies() {
    let sim = Sim::start(SimConfig::default(), tenant(1)).await;
    let base = "/identityGovernance/entitlementManagement";
    let catalogs = sim
        .get(&format!(
            "{base}/catalogs?$filter=displayName eq 'Project X'"
        ))
        .await;
    assert_eq!(ids(catalogs.values()), vec![CATALOG.to_owned()]);
    let packages = sim
        .get(&format!(
            "{base}/accessPackages?$filter=catalog/id eq '{CATALOG}'&$expand=assignmentPolicies,catalog"
        ))
        .await;
    assert_eq!(packages.status, 200, "{}", packages.body);
    assert_eq!(packages.values().len(), 2);
    let approver = &packages.values()[0];
    assert_eq!(approver["assignmentPolicies"].as_array().unwrap().len(), 2);
    assert_eq!(approver["catalog"]["displayName"], "Project X");
    let by_name = sim
        .get(&format!(
            "{base}/accessPackages?$filter=displayName eq 'Project X | Read Only'"
        ))
        .await;
    assert_eq!(ids(by_name.values()), vec![OTHER_PACKAGE.to_owned()]);
    assert!(by_name.values()[0].get("assignmentPolicies").is_none());
    let one = sim
        .get(&format!(
            "{base}/accessPackages/{PACKAGE}?$expand=assignmentPolicies"
        ))
        .await;
    assert_eq!(one.body["assignmentPolicies"][0]["id"], POLICY);
    let contains = sim
        .get(&format!(
            "{base}/accessPackages?$filter=contains(tolower(displayName),'x')"
        ))
        .await;
    assert_graph_error(&contains, 400, "BadRequest");
    let expand_everything = sim.get(&format!("{base}/accessPackages?$expand=*")).await;
    assert_graph_error(&expand_everything, 400, "BadRequest");
}

#[tokio::test]
async fn counters_and_snapshot_export_follow_the_traffic() {
    let sim = Sim::start(SimConfig::default(), tenant(2)).await;
    invite(&sim, "counted@fabrikam.com").await;
    sim.get("/users").await;
    let counters = sim.sim.counters();
    assert_eq!(counters.token_requests, 1);
    assert_eq!(counters.http_requests, 3);
    assert_eq!(counters.graph_operations, 2);
    assert_eq!(counters.writes, 1);
    let snapshot = sim.sim.snapshot().await;
    let invited = snapshot
        .users
        .iter()
        .find(|u| u.mail.as_deref() == Some("counted@fabrikam.com"))
        .unwrap();
    assert_eq!(invited.user_type.as_deref(), Some("Guest"));
    // The export is the snapshot format: it loads into a new simulator.
    let json = serde_json::to_string(&snapshot).unwrap();
    let reloaded: TenantSnapshot = serde_json::from_str(&json).unwrap();
    let second = start(SimConfig::default(), reloaded).await.unwrap();
    assert_eq!(second.snapshot().await, snapshot);
    second.shutdown().await;
    sim.sim.shutdown().await;
}

#[tokio::test]
async fn unsupported_requests_get_a_graph_shaped_400_not_a_guess() {
    let sim = Sim::start(SimConfig::default(), tenant(2)).await;
    for path in [
        "/users?$orderby=mail",
        "/users?$count=true",
        "/users?$search=\"displayName:a\"",
        "/users/delta",
        "/me",
        "/identityGovernance/entitlementManagement/connectedOrganizations",
    ] {
        let answer = sim.get(path).await;
        assert!(
            answer.status == 400 || answer.status == 404,
            "{path}: {}",
            answer.status
        );
        assert!(!answer.code().is_empty(), "{path}: {}", answer.body);
        assert!(answer.header("request-id").is_some());
    }
    let wrong_method = sim.send("DELETE", "/users", None).await;
    assert_graph_error(&wrong_method, 405, "Request_BadRequest");
}

/// A filter nested `depth` levels deep around one comparison.
fn nested_filter(depth: usize) -> String {
    format!(
        "{}mail eq 'user1@contoso.com'{}",
        "(".repeat(depth),
        ")".repeat(depth)
    )
}

#[tokio::test]
async fn a_deeply_nested_filter_is_refused_not_a_crash_also_inside_a_batch() {
    let sim = Sim::start(SimConfig::default(), tenant(3)).await;
    let deep = nested_filter(5_000);
    let url = format!("/users?$filter={deep}");
    assert!(url.len() > 10_000);
    let answer = sim.get(&url).await;
    assert_graph_error(&answer, 400, "BadRequest");
    assert!(
        answer.message().contains("nests more than 32"),
        "{}",
        answer.body
    );
    let batch = sim
        .post(
            "/$batch",
            json!({"requests": [
                {"id": "1", "method": "GET", "url": url},
                {"id": "2", "method": "GET", "url": format!("/users?$filter={}", nested_filter(3))},
            ]}),
        )
        .await;
    assert_eq!(batch.status, 200, "{}", batch.body);
    let responses = batch.body["responses"].as_array().unwrap();
    let status = |id: &str| responses.iter().find(|r| r["id"] == id).unwrap()["status"].clone();
    assert_eq!(status("1"), 400);
    assert_eq!(status("2"), 200);
    // Still serving.
    assert_eq!(sim.get("/users/user1@contoso.com").await.status, 200);
}

/// Sends `head` (a request line and headers, ending in a blank line) and then `chunk` to
/// the simulator without ever ending the body, and returns the answer's status line.
async fn status_line_before_the_body_ends(sim: &SimHandle, head: &str, chunk: &[u8]) -> String {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let stream = tokio::net::TcpStream::connect(("127.0.0.1", sim.port()))
        .await
        .unwrap();
    let (read, mut write) = stream.into_split();
    write.write_all(head.as_bytes()).await.unwrap();
    let _ = write.write_all(chunk).await;
    let mut line = String::new();
    // The body never ends: an answer here was given without waiting for it.
    tokio::time::timeout(
        Duration::from_secs(30),
        BufReader::new(read).read_line(&mut line),
    )
    .await
    .expect("the simulator waited for a body that never ends")
    .unwrap();
    // Keeps the writing half open until the answer is read.
    drop(write);
    line.trim_end().to_owned()
}

#[tokio::test]
async fn request_bodies_are_limited_and_never_read_before_the_token_is_checked() {
    let sim = Sim::start(SimConfig::default(), tenant(1)).await;
    let host = format!("127.0.0.1:{}", sim.sim.port());
    // A stranger's endless body: refused for the missing token, the body unread.
    let anonymous = format!(
        "POST /v1.0/$batch HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    );
    let line = status_line_before_the_body_ends(&sim.sim, &anonymous, b"400\r\n").await;
    assert!(line.starts_with("HTTP/1.1 401"), "{line}");
    // A body declared larger than Graph takes: 413 at once.
    let declared = format!(
        "POST /v1.0/$batch HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: 200000000\r\n\r\n",
        sim.token
    );
    let line = status_line_before_the_body_ends(&sim.sim, &declared, b"{").await;
    assert!(line.starts_with("HTTP/1.1 413"), "{line}");
    // A chunked body that grows past the limit: 413 once it does, the rest unread.
    let chunked = format!(
        "POST /v1.0/$batch HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
        sim.token
    );
    let mut chunks = Vec::new();
    for _ in 0..5 {
        chunks.extend_from_slice(b"100000\r\n");
        chunks.extend(std::iter::repeat_n(b' ', 0x10_0000));
        chunks.extend_from_slice(b"\r\n");
    }
    let line = status_line_before_the_body_ends(&sim.sim, &chunked, &chunks).await;
    assert!(line.starts_with("HTTP/1.1 413"), "{line}");
    let too_large = sim
        .post(
            "/invitations",
            json!({"invitedUserEmailAddress": "a@example.com", "inviteRedirectUrl": "https://x.example", "invitedUserDisplayName": "x".repeat(5 * 1024 * 1024)}),
        )
        .await;
    assert_graph_error(&too_large, 413, "RequestEntityTooLarge");
    assert_eq!(sim.sim.counters().writes, 0);
    assert_eq!(sim.sim.counters().unauthorized, 1);
}

#[tokio::test]
async fn lost_answers_and_late_drops_lose_the_answer_not_the_work() {
    let sim = Sim::start(
        SimConfig {
            lost_answer_rate: 1.0,
            ..SimConfig::default()
        },
        tenant(1),
    )
    .await;
    let invited = sim
        .post(
            "/invitations",
            json!({"invitedUserEmailAddress": "lost@example.com", "inviteRedirectUrl": "https://x.example"}),
        )
        .await;
    assert_graph_error(&invited, 504, "GatewayTimeout");
    // Reads are answered: only writes lose their answers.
    let found = sim
        .get("/users?$filter=mail eq 'lost@example.com'&$select=id,mail")
        .await;
    assert_eq!(found.status, 200);
    assert_eq!(found.values().len(), 1);
    assert_eq!(sim.sim.counters().writes, 1);

    // Dropped connections: some lose the request (never carried out), some lose only the
    // answer (carried out; token requests are counted when carried out).
    let sim = start(
        SimConfig {
            drop_rate: 1.0,
            seed: 2,
            ..SimConfig::default()
        },
        tenant(1),
    )
    .await
    .unwrap();
    let http = reqwest::Client::new();
    for _ in 0..20 {
        let sent = http
            .post(format!(
                "{}/{}/oauth2/v2.0/token",
                sim.base_url(),
                sim.tenant_id()
            ))
            .form(&[("client_id", "enroll-sim-client")])
            .send()
            .await;
        assert!(sent.is_err() || sent.unwrap().bytes().await.is_err());
    }
    let counters = sim.counters();
    assert_eq!(counters.dropped, 20);
    assert!(
        counters.token_requests > 0 && counters.token_requests < 20,
        "drops all before or all after the work: {counters:?}"
    );
}

/// The request and its assignment's states, as the simulator has them now.
async fn request_and_assignment(sim: &Sim, request: &str) -> (String, String) {
    let answer = sim
        .get(&format!("{REQUESTS}/{request}?$expand=assignment"))
        .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    (
        answer.body["state"].as_str().unwrap_or_default().to_owned(),
        answer.body["assignment"]["state"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    )
}

#[tokio::test]
async fn a_failed_request_is_delivered_when_reprocessed() {
    let sim = Sim::start(
        SimConfig {
            delivery_delay_ms: 40,
            delivery_failure_rate: 1.0,
            ..SimConfig::default()
        },
        tenant(3),
    )
    .await;
    let created = sim.post(REQUESTS, add_request(&member_id(2))).await;
    assert_eq!(created.status, 201, "{}", created.body);
    let id = created.body["id"].as_str().unwrap().to_owned();
    // Accepted: the assignment exists at once, delivering.
    assert_eq!(
        request_and_assignment(&sim, &id).await.1,
        "delivering".to_owned()
    );
    eventually("deliveryFailed", || async {
        request_and_assignment(&sim, &id).await
            == ("deliveryFailed".to_owned(), "deliveryFailed".to_owned())
    })
    .await;
    // The failed assignment gives no access: a new adminAdd would be taken.
    assert!(sim.get(DELIVERED).await.values().is_empty());

    let reprocessed = sim
        .send("POST", &format!("{REQUESTS}/{id}/reprocess"), None)
        .await;
    assert_eq!(reprocessed.status, 202, "{}", reprocessed.body);
    assert_eq!(reprocessed.body, Value::Null);
    eventually("delivered", || async {
        request_and_assignment(&sim, &id).await == ("delivered".to_owned(), "delivered".to_owned())
    })
    .await;
    assert_eq!(sim.get(DELIVERED).await.values().len(), 1);
    // A delivered request is not reprocessed; an unknown one is not found.
    let again = sim
        .send(
            "POST",
            &format!("{REQUESTS}/{id}/microsoft.graph.reprocess"),
            None,
        )
        .await;
    assert_graph_error(&again, 400, "BadRequest");
    let unknown = sim
        .send(
            "POST",
            &format!("{REQUESTS}/00000000-0000-4000-8000-00000000dead/reprocess"),
            None,
        )
        .await;
    assert_graph_error(&unknown, 404, "ResourceNotFound");
    let get = sim.get(&format!("{REQUESTS}/{id}/reprocess")).await;
    assert_eq!(get.status, 405);
}

#[tokio::test]
async fn a_stuck_request_is_delivered_when_its_assignment_is_reprocessed() {
    let sim = Sim::start(
        SimConfig {
            delivery_delay_ms: 20,
            delivery_stuck_rate: 1.0,
            ..SimConfig::default()
        },
        tenant(3),
    )
    .await;
    let created = sim.post(REQUESTS, add_request(&member_id(2))).await;
    let id = created.body["id"].as_str().unwrap().to_owned();
    eventually("delivering", || async {
        request_and_assignment(&sim, &id).await.0 == "delivering"
    })
    .await;
    // Long past the delivery delay, still delivering.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        request_and_assignment(&sim, &id).await,
        ("delivering".to_owned(), "delivering".to_owned())
    );
    let assignment = sim
        .get(&format!("{REQUESTS}/{id}?$expand=assignment"))
        .await
        .body["assignment"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let reprocessed = sim
        .send(
            "POST",
            &format!("/identityGovernance/entitlementManagement/assignments/{assignment}/microsoft.graph.reprocess"),
            None,
        )
        .await;
    assert_eq!(reprocessed.status, 202, "{}", reprocessed.body);
    assert_eq!(
        request_and_assignment(&sim, &id).await,
        ("delivered".to_owned(), "delivered".to_owned())
    );
    // A request that is not stuck or failed cannot be reprocessed.
    let not_failed = sim
        .send("POST", &format!("{REQUESTS}/{id}/reprocess"), None)
        .await;
    assert_graph_error(&not_failed, 400, "BadRequest");
}

#[tokio::test]
async fn settings_that_would_overflow_a_clock_are_refused_at_start() {
    let cases = [
        (
            SimConfig {
                token_lifetime_ms: u64::MAX,
                ..SimConfig::default()
            },
            "token_lifetime_ms must be at most 2592000000 (30 days), got 18446744073709551615",
        ),
        (
            SimConfig {
                consistency_delay_ms: enroll_sim::MAX_DELAY_MS + 1,
                ..SimConfig::default()
            },
            "consistency_delay_ms must be at most 2592000000 (30 days), got 2592000001",
        ),
        (
            SimConfig {
                delivery_failure_rate: 1.5,
                ..SimConfig::default()
            },
            "delivery_failure_rate must be between 0 and 1, got 1.5",
        ),
    ];
    for (config, expected) in cases {
        let error = start(config, tenant(1)).await.unwrap_err().to_string();
        assert_eq!(
            error,
            format!("invalid simulator configuration: {expected}")
        );
    }
}

#[tokio::test]
async fn over_tls_clients_that_trust_the_printed_ca_connect_and_others_do_not() {
    use enroll_steps::config::{Env, graph_config};
    let config = SimConfig {
        tls: true,
        ..SimConfig::default()
    };
    let sim = start(config, tenant(3)).await.unwrap();
    let base = sim.base_url();
    assert!(base.starts_with("https://127.0.0.1:"), "{base}");
    let ca = sim.ca_pem().unwrap().to_owned();

    // A client with the system's roots only refuses the certificate.
    let untrusting = reqwest::Client::new();
    let refused = untrusting.get(sim.discovery_url()).send().await;
    assert!(refused.is_err(), "{refused:?}");
    // One that trusts the CA reaches discovery, whose endpoints are https too.
    let trusting = reqwest::Client::builder()
        .tls_certs_merge(reqwest::Certificate::from_pem_bundle(ca.as_bytes()).unwrap())
        .build()
        .unwrap();
    let doc: Value = trusting
        .get(sim.discovery_url())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["issuer"], format!("{base}/{}/v2.0", sim.tenant_id()));
    assert_eq!(
        doc["token_endpoint"].as_str().unwrap().get(..8),
        Some("https://")
    );

    // enroll's Graph client trusts it through ENROLL_CA_FILE: token and Graph calls work.
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("enroll-sim-ca.pem");
    std::fs::write(&ca_file, &ca).unwrap();
    let graph_url = format!("{base}/v1.0");
    let ca_path = ca_file.to_str().unwrap();
    let settings = |ca: Option<&str>| {
        let mut pairs = vec![
            ("ENROLL_TENANT_ID", sim.tenant_id()),
            ("ENROLL_CLIENT_ID", "enroll-sim-client"),
            ("ENROLL_CLIENT_SECRET", "enroll-sim-secret"),
            ("ENROLL_GRAPH_URL", graph_url.as_str()),
            ("ENROLL_AUTHORITY_URL", base.as_str()),
            ("ENROLL_GRAPH_MAX_ATTEMPTS", "1"),
        ];
        pairs.extend(ca.map(|path| ("ENROLL_CA_FILE", path)));
        graph_config(&Env::from_pairs(pairs)).unwrap()
    };
    let graph = enroll_graph::GraphClient::new(settings(Some(ca_path))).unwrap();
    let catalogs = graph.catalogs().await.unwrap();
    assert_eq!(catalogs.len(), 1);
    let without = enroll_graph::GraphClient::new(settings(None)).unwrap();
    assert!(without.catalogs().await.is_err(), "no CA, no connection");

    // A CA file without a certificate is a setting error, not a silent fallback.
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "not a certificate\n").unwrap();
    let config = settings(Some(empty.to_str().unwrap()));
    let error = enroll_graph::GraphClient::new(config).unwrap_err();
    assert!(error.to_string().contains("PEM"), "{error}");
    sim.shutdown().await;
}
