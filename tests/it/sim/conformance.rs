//! The simulator checked against external truth: the published example requests and
//! responses of the Microsoft Graph reference pages (tests/data/graph/, replayed against a
//! tenant seeded with the examples' ids) and Graph's own OpenAPI schemas
//! (tests/data/graph-openapi/, extracted by scripts/extract_graph_openapi.py).

use std::collections::BTreeMap;
use std::path::Path;

use enroll_core::tenant::{
    AccessPackage, AppRole, AppRoleAssignment, Application, Assignment, AssignmentPolicy,
    AssignmentRequest, Catalog, Group, ObjectRef, RequestedAssignment, ServicePrincipal, Subject,
    TenantSnapshot, User,
};
use enroll_sim::SimConfig;
use serde_json::{Value, json};

use super::{Answer, Sim, reader_role};

const ADELE: &str = "87d349ed-44d7-43e1-9a83-5f2406dee5bd";
const REQUEST: &str = "7999249e-249e-7999-9e24-99799e249979";
const APP: &str = "fda284b5-f0ad-4763-8289-31a273fca865";
const SP: &str = "00063ffc-54e9-405d-b8f3-56124728e051";
const GROUP_LISTED: &str = "02bd9fd6-8f93-4758-87c3-1fb73740a315";
const ROLE_ASSIGNMENT: &str = "pNl5diMjzUS1wmc-yI2LEkGgWqFFrFdLhG2Ly2CysL4";

fn user(id: &str, name: &str, upn: &str) -> User {
    User {
        id: id.into(),
        display_name: Some(name.into()),
        user_principal_name: Some(upn.into()),
        mail: Some(upn.into()),
        other_mails: vec![],
        user_type: Some("Member".into()),
        ..User::default()
    }
}

fn policy(id: &str) -> AssignmentPolicy {
    AssignmentPolicy {
        id: id.into(),
        display_name: Some("Administrator direct assignments".into()),
        allowed_target_scope: Some("notSpecified".into()),
        automatic_request_settings: None,
    }
}

fn sp(id: &str, app_id: &str) -> ServicePrincipal {
    ServicePrincipal {
        id: id.into(),
        app_id: app_id.into(),
        display_name: Some("My app".into()),
        app_roles: vec![],
    }
}

fn group(id: &str, name: &str) -> Group {
    Group {
        id: id.into(),
        display_name: Some(name.into()),
        description: None,
        security_enabled: Some(true),
        mail_enabled: Some(false),
        mail_nickname: None,
    }
}

/// A tenant holding the objects the published examples name.
fn examples_tenant() -> TenantSnapshot {
    let mut users = vec![
        user(ADELE, "Adele Vance", "AdeleV@contoso.com"),
        user(
            "6ea91a8d-e32e-41a1-b7bd-d2d185eed0e0",
            "Conf Room Adams",
            "Adams@contoso.com",
        ),
        user(
            "4562bcc8-c436-4f95-b7c0-4f8ce89dca5e",
            "MOD Administrator",
            "admin@contoso.com",
        ),
        user(
            "46184453-e63b-4f20-86c2-c557ed5d5df9",
            "Target",
            "target@contoso.com",
        ),
    ];
    users.extend((0..6).map(|i| {
        user(
            &format!("00000000-0000-4000-8000-{i:012}"),
            &format!("User {i}"),
            &format!("user{i}@contoso.com"),
        )
    }));
    let catalog = Catalog {
        id: "beedadfe-01d5-4025-910b-84abb9369997".into(),
        display_name: Some("General".into()),
    };
    TenantSnapshot {
        users,
        catalogs: vec![catalog.clone()],
        access_packages: vec![
            AccessPackage {
                id: "a914b616-e04e-476b-aa37-91038f0b165b".into(),
                display_name: "Marketing".into(),
                description: Some("Marketing resources".into()),
                catalog: Some(catalog.clone()),
                assignment_policies: vec![policy("2264bf65-76ba-417b-a27d-54d291f0cbc8")],
            },
            AccessPackage {
                id: "114d3459-3459-114d-5934-4d1159344d11".into(),
                display_name: "Access package for testing".into(),
                description: Some("Sample access package".into()),
                catalog: Some(catalog),
                assignment_policies: vec![policy("d6322a8d-0000-4000-8000-0000000000c1")],
            },
        ],
        assignments: vec![Assignment {
            id: "a6bb6942-3ae1-4259-9908-0133aaee9377".into(),
            state: Some("delivered".into()),
            status: Some("Delivered".into()),
            target: Some(Subject {
                id: Some("ab4291f6-66b7-42bf-b597-a05b29414f5c".into()),
                object_id: Some(ADELE.into()),
                email: Some("AdeleV@contoso.com".into()),
                principal_name: Some("AdeleV@contoso.com".into()),
                display_name: Some("Adele Vance".into()),
            }),
            access_package: Some(ObjectRef {
                id: "a914b616-e04e-476b-aa37-91038f0b165b".into(),
                display_name: None,
            }),
            assignment_policy: Some(ObjectRef {
                id: "2264bf65-76ba-417b-a27d-54d291f0cbc8".into(),
                display_name: None,
            }),
        }],
        assignment_requests: vec![AssignmentRequest {
            id: REQUEST.into(),
            request_type: Some("adminAdd".into()),
            state: Some("submitted".into()),
            access_package: None,
            assignment: Some(RequestedAssignment {
                id: None,
                target_id: Some(ADELE.into()),
                target: None,
                access_package_id: Some("114d3459-3459-114d-5934-4d1159344d11".into()),
                assignment_policy_id: Some("d6322a8d-0000-4000-8000-0000000000c1".into()),
            }),
            ..AssignmentRequest::default()
        }],
        applications: vec![Application {
            id: APP.into(),
            app_id: "65415bb1-9267-4313-bbf5-ae259732ee12".into(),
            display_name: Some("My App".into()),
            // The role the published appRoles PATCH disables, as it stood before.
            app_roles: vec![AppRole {
                allowed_member_types: vec!["User".into(), "Application".into()],
                ..reader_role(true)
            }],
        }],
        service_principals: vec![
            sp(SP, "65415bb1-9267-4313-bbf5-ae259732ee12"),
            sp(
                "076e8b57-bac8-49d7-9396-e3449b685055",
                "00000005-0000-0ff1-ce00-000000000000",
            ),
            sp(
                "7408235b-7540-4850-82fe-a5f15ed019e2",
                "00000003-0000-0000-c000-000000000000",
            ),
        ],
        groups: vec![
            group("7679d9a4-2323-44cd-b5c2-673ec88d8b12", "Young techmakers"),
            group(GROUP_LISTED, "Young techmakers"),
        ],
        app_role_assignments: vec![
            AppRoleAssignment {
                id: ROLE_ASSIGNMENT.into(),
                app_role_id: "00000000-0000-0000-0000-000000000000".into(),
                principal_id: GROUP_LISTED.into(),
                principal_type: Some("Group".into()),
                principal_display_name: Some("Young techmakers".into()),
                resource_id: "076e8b57-bac8-49d7-9396-e3449b685055".into(),
                resource_display_name: Some("Yammer".into()),
                created_date_time: Some("2021-02-19T17:55:08.3369542Z".into()),
            },
            AppRoleAssignment {
                id: "41W1zT6z1U-kJxf62svfp1HFE8pMZhxDun-ThPczmJE".into(),
                app_role_id: "00000000-0000-0000-0000-000000000000".into(),
                principal_id: ADELE.into(),
                principal_type: Some("User".into()),
                principal_display_name: Some("Adele Vance".into()),
                resource_id: SP.into(),
                resource_display_name: Some("My app".into()),
                created_date_time: Some("2021-02-02T04:22:45.9480566Z".into()),
            },
        ],
    }
}

/// How one published example is used.
enum Replay {
    /// Replayed; status and body shape must match the published response.
    Compare,
    /// Outside what enroll uses and the simulator models: it must refuse with Graph's error
    /// envelope rather than answer something made up.
    Refused(&'static str),
    /// Checked by a dedicated test below.
    Special,
}

/// Every example file and how it is used; a new file must be added here.
const EXAMPLES: &[(&str, Replay)] = &[
    ("accesspackage-get.example1.json", Replay::Compare),
    (
        "accesspackageassignmentrequest-get.example1.json",
        Replay::Compare,
    ),
    ("application-update.beta.example2.json", Replay::Compare),
    ("application-update.example1.json", Replay::Compare),
    (
        "entitlementmanagement-list-accesspackages.example1.json",
        Replay::Compare,
    ),
    (
        "entitlementmanagement-list-assignmentrequests.example1.json",
        Replay::Compare,
    ),
    (
        "entitlementmanagement-list-assignments.example1.json",
        Replay::Compare,
    ),
    (
        "entitlementmanagement-post-assignmentrequests.example1.json",
        Replay::Compare,
    ),
    (
        "entitlementmanagement-post-assignmentrequests.example2.json",
        Replay::Compare,
    ),
    (
        "entitlementmanagement-post-assignmentrequests.example3.json",
        Replay::Refused("userAdd with answers: delegated only, not an app-only operation"),
    ),
    (
        "entitlementmanagement-post-assignmentrequests.example4.json",
        Replay::Refused("beta body key accessPackageAssignment and userAdd"),
    ),
    (
        "entitlementmanagement-post-assignmentrequests.example5.json",
        Replay::Refused(
            "external target by email with the beta body key; enroll invites first, then adds by targetId",
        ),
    ),
    (
        "entitlementmanagement-post-assignmentrequests.example6.json",
        Replay::Refused("adminUpdate is not used by enroll"),
    ),
    (
        "group-list-approleassignments.example1.json",
        Replay::Compare,
    ),
    (
        "group-post-approleassignments.example1.json",
        Replay::Compare,
    ),
    (
        "group-delete-approleassignments.example1.json",
        Replay::Compare,
    ),
    ("invitation-post.example1.json", Replay::Compare),
    ("json-batching.example1.json", Replay::Special),
    ("json-batching.example2-dependson.json", Replay::Special),
    ("paging.example1.json", Replay::Special),
    (
        "paging.example2.json",
        Replay::Refused("the published skip token is elided (' ... '), so it is not a valid token"),
    ),
    ("serviceprincipal-get.example1.json", Replay::Compare),
    ("serviceprincipal-get.example2.json", Replay::Compare),
    (
        "serviceprincipal-get.example3.json",
        Replay::Refused(
            "customSecurityAttributes is newer than the extracted schema and not used by enroll",
        ),
    ),
    (
        "serviceprincipal-get.example3b.json",
        Replay::Refused("customSecurityAttributes, as above"),
    ),
    (
        "serviceprincipal-list-approleassignedto.example1.json",
        Replay::Compare,
    ),
    ("serviceprincipal-list.example1.json", Replay::Compare),
    ("throttling.example1.json", Replay::Special),
    ("user-get.example1.json", Replay::Compare),
    (
        "user-get.example2.json",
        Replay::Refused("/me needs a delegated (user) token"),
    ),
    ("user-get.example3.json", Replay::Compare),
    (
        "user-get.example4.json",
        Replay::Refused("schema extension properties are not modelled"),
    ),
    (
        "user-get.example5.json",
        Replay::Refused(
            "customSecurityAttributes is newer than the extracted schema and not used by enroll",
        ),
    ),
    (
        "user-get.example5b.json",
        Replay::Refused("customSecurityAttributes, as above"),
    ),
    ("user-list.example1.json", Replay::Compare),
    (
        "user-list.example10.json",
        Replay::Refused("schema extension properties are not modelled"),
    ),
    (
        "user-list.example11.json",
        Replay::Refused("signInActivity is newer than the extracted schema and not used by enroll"),
    ),
    (
        "user-list.example2.json",
        Replay::Refused("identities lambda filters are not used by enroll"),
    ),
    (
        "user-list.example3.json",
        Replay::Refused("$count needs advanced query parameters"),
    ),
    (
        "user-list.example4.json",
        Replay::Refused("advanced query ($orderby, $count)"),
    ),
    (
        "user-list.example5.json",
        Replay::Refused("advanced query (endswith)"),
    ),
    (
        "user-list.example6.json",
        Replay::Refused("advanced query ($search)"),
    ),
    (
        "user-list.example7.json",
        Replay::Refused("advanced query ($search)"),
    ),
    (
        "user-list.example8.json",
        Replay::Refused("advanced query (endsWith)"),
    ),
    (
        "user-list.example9.json",
        Replay::Refused("assignedLicenses lambda filters are not used by enroll"),
    ),
];

/// Placeholders of the published URLs, and the beta URL of the appRoles example.
const URL_FIXES: &[(&str, &str)] = &[
    ("{accessPackageAssignmentRequestId}", REQUEST),
    (
        "/applications/{id}",
        "/applications/fda284b5-f0ad-4763-8289-31a273fca865",
    ),
    (
        "/servicePrincipals/{id}",
        "/servicePrincipals/00063ffc-54e9-405d-b8f3-56124728e051",
    ),
    (
        "/groups/{id}/appRoleAssignments/{id}",
        "/groups/02bd9fd6-8f93-4758-87c3-1fb73740a315/appRoleAssignments/pNl5diMjzUS1wmc-yI2LEkGgWqFFrFdLhG2Ly2CysL4",
    ),
    ("/users/{id}", "/users/87d349ed-44d7-43e1-9a83-5f2406dee5bd"),
    (
        "https://graph.microsoft.com/beta/",
        "https://graph.microsoft.com/v1.0/",
    ),
];

/// Names some v1.0 reference pages still show in their beta spelling; v1.0's schema has the
/// other (graph.md §3.3).
fn v1_name(name: &str) -> &str {
    match name {
        "requestState" => "state",
        "requestStatus" => "status",
        "completedDate" => "completedDateTime",
        other => other,
    }
}

fn load(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/graph")
        .join(name);
    serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap()
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Every property of the published body must be in the simulator's with the same JSON type.
/// `null` on either side matches anything (Graph omits nothing but fills what it knows), and
/// `@odata.type` is optional under `odata.metadata=minimal`.
fn shape_problems(example: &Value, actual: &Value, at: &str, problems: &mut Vec<String>) {
    if example.is_null() || actual.is_null() {
        return;
    }
    if kind(example) != kind(actual) {
        problems.push(format!(
            "{at}: published {} but simulator {}",
            kind(example),
            kind(actual)
        ));
        return;
    }
    match (example, actual) {
        (Value::Object(e), Value::Object(a)) => {
            for (key, value) in e {
                if key == "@odata.type" {
                    continue;
                }
                let name = v1_name(key);
                match a.get(name) {
                    Some(actual) => {
                        shape_problems(value, actual, &format!("{at}.{name}"), problems)
                    }
                    None => {
                        problems.push(format!("{at}.{name}: missing in the simulator's answer"))
                    }
                }
            }
        }
        (Value::Array(e), Value::Array(a)) => {
            if let (Some(e), Some(a)) = (e.first(), a.first()) {
                shape_problems(e, a, &format!("{at}[0]"), problems);
            }
        }
        _ => {}
    }
}

async fn replay(sim: &Sim, example: &Value) -> Answer {
    let request = &example["request"];
    let mut url = request["url"].as_str().unwrap().to_owned();
    for (from, to) in URL_FIXES {
        url = url.replace(from, to);
    }
    let url = url.replacen("https://graph.microsoft.com", &sim.sim.base_url(), 1);
    let method = request["method"].as_str().unwrap();
    let body = request.get("body").filter(|b| !b.is_null());
    sim.send_url(method, &url, body).await
}

#[tokio::test]
async fn published_examples_replay_with_the_same_status_and_shape() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/graph");
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".json"))
        .collect();
    files.sort();
    let mut listed: Vec<&str> = EXAMPLES.iter().map(|(f, _)| *f).collect();
    listed.sort();
    assert_eq!(
        files, listed,
        "every published example is replayed or has a reason not to be"
    );

    let sim = Sim::start(SimConfig::default(), examples_tenant()).await;
    let mut problems = Vec::new();
    let mut compared = 0;
    for (file, how) in EXAMPLES {
        let example = load(file);
        match how {
            Replay::Special => {}
            Replay::Compare => {
                let answer = replay(&sim, &example).await;
                let expected = example["response"]["status"].as_u64().unwrap() as u16;
                if answer.status != expected {
                    problems.push(format!(
                        "{file}: status {} (published {expected}): {}",
                        answer.status, answer.body
                    ));
                    continue;
                }
                shape_problems(
                    &example["response"]["body"],
                    &answer.body,
                    file,
                    &mut problems,
                );
                compared += 1;
            }
            Replay::Refused(reason) => {
                let answer = replay(&sim, &example).await;
                if !(400..500).contains(&answer.status) || answer.code().is_empty() {
                    problems.push(format!(
                        "{file} ({reason}): expected a Graph-shaped refusal, got {} {}",
                        answer.status, answer.body
                    ));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert_eq!(compared, 20);
}

#[tokio::test]
async fn throttled_answers_have_the_published_shape() {
    let example = load("throttling.example1.json");
    let config = SimConfig {
        throttle_rps: Some(1),
        ..SimConfig::default()
    };
    let sim = Sim::start(config, examples_tenant()).await;
    sim.get("/users").await;
    let answer = sim.get("/users").await;
    assert_eq!(answer.status, 429);
    let secs: f64 = answer.header("retry-after").unwrap().parse().unwrap();
    assert!(secs > 0.0);
    let mut problems = Vec::new();
    shape_problems(
        &example["response"]["body"],
        &answer.body,
        "429",
        &mut problems,
    );
    assert!(problems.is_empty(), "{problems:?}");
}

#[tokio::test]
async fn published_batches_replay_with_the_same_envelope_and_dependency_rules() {
    let sim = Sim::start(SimConfig::default(), examples_tenant()).await;
    // The published batch calls endpoints enroll does not use; the envelope must match.
    let example = load("json-batching.example1.json");
    let answer = replay(&sim, &example).await;
    assert_eq!(answer.status, 200);
    let mut problems = Vec::new();
    let published = &example["response"]["body"]["responses"];
    for r in answer.body["responses"].as_array().unwrap() {
        let same_id = published
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["id"] == r["id"])
            .unwrap();
        for key in ["id", "status"] {
            shape_problems(&same_id[key], &r[key], "responses[]", &mut problems);
        }
        // Header names differ by workload (the published ones include Planner's); the
        // envelope must carry them as an object of strings.
        assert!(
            r["headers"]
                .as_object()
                .unwrap()
                .values()
                .all(Value::is_string)
        );
        assert!(r["body"]["error"]["code"].is_string() || r["status"] == 200);
    }
    assert!(problems.is_empty(), "{problems:?}");

    // Published urls are '...': request 1 fails, so 2, 4 and 3 fail on their dependency.
    let example = load("json-batching.example2-dependson.json");
    let answer = replay(&sim, &example).await;
    assert_eq!(answer.status, 200);
    let status: BTreeMap<String, u64> = answer.body["responses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["id"].as_str().unwrap().to_owned(),
                r["status"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(status["1"], 400);
    for id in ["2", "3", "4"] {
        assert_eq!(status[id], 424, "{id}");
    }
}

#[tokio::test]
async fn paging_follows_the_published_next_link_form() {
    let sim = Sim::start(SimConfig::default(), examples_tenant()).await;
    let example = load("paging.example1.json");
    let answer = replay(&sim, &example).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.values().len(), 5);
    let next = answer.body["@odata.nextLink"].as_str().unwrap();
    let published = example["response"]["body"].as_str().unwrap();
    assert!(published.contains("/v1.0/users?$top=5&$skiptoken="));
    assert!(
        next.starts_with(&format!(
            "{}/v1.0/users?$top=5&$skiptoken=",
            sim.sim.base_url()
        )),
        "{next}"
    );
}

// ----- OpenAPI ---------------------------------------------------------------------------------

/// Where the published v1.0 examples and the 2023 OpenAPI extract disagree, the examples win
/// (tests/data/graph-openapi/README.md): (type, property, what the examples show).
const EXAMPLES_OVER_SCHEMA: &[(&str, &str, &str)] = &[
    (
        "microsoft.graph.entitlementManagementSchedule",
        "recurrence",
        "null in the assignmentRequests POST responses",
    ),
    (
        "microsoft.graph.servicePrincipal",
        "publisherName",
        "present in the servicePrincipal get and list responses",
    ),
];

fn example_exception(type_name: &str, property: &str) -> bool {
    EXAMPLES_OVER_SCHEMA
        .iter()
        .any(|(t, p, _)| *t == type_name && *p == property)
}

struct Spec {
    paths: Vec<(Vec<String>, Vec<String>)>,
    schemas: serde_json::Map<String, Value>,
}

fn spec() -> Spec {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/graph-openapi");
    let mut paths = Vec::new();
    let mut schemas = serde_json::Map::new();
    for name in [
        "Users",
        "Identity.SignIns",
        "Identity.Governance",
        "Applications",
        "Groups",
    ] {
        let doc: Value =
            serde_json::from_slice(&std::fs::read(dir.join(format!("{name}.json"))).unwrap())
                .unwrap();
        for (path, methods) in doc["paths"].as_object().unwrap() {
            let segments = path
                .split('/')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect();
            let methods = methods
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m.as_str().unwrap().to_uppercase())
                .collect();
            paths.push((segments, methods));
        }
        schemas.extend(doc["schemas"].as_object().unwrap().clone());
    }
    Spec { paths, schemas }
}

impl Spec {
    fn has_path(&self, method: &str, path: &str) -> bool {
        let path = path.split('?').next().unwrap();
        let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        self.paths.iter().any(|(template, methods)| {
            template.len() == segments.len()
                && methods.iter().any(|m| m == method)
                && template.iter().zip(&segments).all(|(t, s)| {
                    (t.starts_with('{') && t.ends_with('}')) || t.eq_ignore_ascii_case(s)
                })
        })
    }

    fn check_object(&self, value: &Value, type_name: &str, at: &str, problems: &mut Vec<String>) {
        let Some(props) = self.schemas[type_name]["properties"].as_object() else {
            problems.push(format!(
                "{at}: {type_name} has no properties in the extract"
            ));
            return;
        };
        let Some(obj) = value.as_object() else {
            problems.push(format!("{at}: expected a {type_name} object, got {value}"));
            return;
        };
        for (key, v) in obj {
            if key.starts_with("@odata.") {
                continue;
            }
            if example_exception(type_name, key) {
                continue;
            }
            match props.get(key) {
                Some(prop) => self.check_value(v, prop, &format!("{at}.{key}"), problems),
                None => problems.push(format!("{at}.{key}: not a property of {type_name}")),
            }
        }
    }

    fn check_value(&self, v: &Value, prop: &Value, at: &str, problems: &mut Vec<String>) {
        if v.is_null() {
            if prop["nullable"] != true {
                problems.push(format!("{at}: null, but the schema does not allow null"));
            }
            return;
        }
        if let Some(name) = prop["ref"].as_str() {
            match self.schemas.get(name) {
                Some(schema) if schema.get("enum").is_some() => {
                    let allowed = schema["enum"].as_array().unwrap();
                    if !allowed.contains(v) {
                        problems.push(format!("{at}: {v} is not a value of {name}"));
                    }
                }
                Some(_) => self.check_object(v, name, at, problems),
                None => problems.push(format!("{at}: {name} is not in the extract")),
            }
            return;
        }
        let ok = match prop["type"].as_str() {
            Some("string") => v.is_string(),
            Some("boolean") => v.is_boolean(),
            Some("integer") => v.is_i64() || v.is_u64(),
            Some("number") => v.is_number(),
            Some("object") => v.is_object(),
            Some("array") => {
                if let Some(items) = v.as_array() {
                    for (i, item) in items.iter().enumerate() {
                        self.check_value(item, &prop["items"], &format!("{at}[{i}]"), problems);
                    }
                    true
                } else {
                    false
                }
            }
            _ => {
                problems.push(format!("{at}: schema property without type: {prop}"));
                true
            }
        };
        if !ok {
            problems.push(format!("{at}: {v} is not a {}", prop["type"]));
        }
    }
}

#[tokio::test]
async fn responses_use_only_schema_properties_with_their_types() {
    let spec = spec();
    let config = SimConfig {
        delivery_delay_ms: 0,
        ..SimConfig::default()
    };
    let sim = Sim::start(config, examples_tenant()).await;
    let em = "/identityGovernance/entitlementManagement";
    // (method, path, body, type of the answer; collections answer `value` arrays of it)
    let calls: Vec<(&str, String, Option<Value>, &str)> = vec![
        ("GET", "/users".into(), None, "microsoft.graph.user"),
        ("GET", "/users?$select=id,mail,otherMails,userType,externalUserState,accountEnabled,createdDateTime,creationType,mailNickname,identities".into(), None, "microsoft.graph.user"),
        ("GET", format!("/users/{ADELE}?$select=id,userType,otherMails"), None, "microsoft.graph.user"),
        ("POST", "/invitations".into(), Some(json!({"invitedUserEmailAddress": "g@fabrikam.com", "inviteRedirectUrl": "https://myapps.microsoft.com", "invitedUserMessageInfo": {"ccRecipients": [{"emailAddress": {"address": "o@contoso.com", "name": "O"}}]}})), "microsoft.graph.invitation"),
        ("GET", format!("{em}/catalogs"), None, "microsoft.graph.accessPackageCatalog"),
        ("GET", format!("{em}/catalogs/beedadfe-01d5-4025-910b-84abb9369997"), None, "microsoft.graph.accessPackageCatalog"),
        ("GET", format!("{em}/accessPackages?$expand=assignmentPolicies,catalog"), None, "microsoft.graph.accessPackage"),
        ("GET", format!("{em}/accessPackages/a914b616-e04e-476b-aa37-91038f0b165b?$expand=assignmentPolicies"), None, "microsoft.graph.accessPackage"),
        ("GET", format!("{em}/assignmentPolicies?$expand=accessPackage"), None, "microsoft.graph.accessPackageAssignmentPolicy"),
        ("GET", format!("{em}/catalogs/beedadfe-01d5-4025-910b-84abb9369997/accessPackages?$expand=assignmentPolicies"), None, "microsoft.graph.accessPackage"),
        ("GET", format!("{em}/accessPackages/a914b616-e04e-476b-aa37-91038f0b165b/assignmentPolicies"), None, "microsoft.graph.accessPackageAssignmentPolicy"),
        ("POST", format!("{em}/assignmentRequests"), Some(json!({"requestType": "adminAdd", "assignment": {"targetId": "46184453-e63b-4f20-86c2-c557ed5d5df9", "assignmentPolicyId": "2264bf65-76ba-417b-a27d-54d291f0cbc8", "accessPackageId": "a914b616-e04e-476b-aa37-91038f0b165b"}})), "microsoft.graph.accessPackageAssignmentRequest"),
        ("GET", format!("{em}/assignmentRequests?$expand=accessPackage,assignment,requestor"), None, "microsoft.graph.accessPackageAssignmentRequest"),
        ("GET", format!("{em}/assignmentRequests/{REQUEST}"), None, "microsoft.graph.accessPackageAssignmentRequest"),
        ("GET", format!("{em}/assignments?$expand=target,accessPackage,assignmentPolicy&$filter=accessPackage/id eq 'a914b616-e04e-476b-aa37-91038f0b165b' and state eq 'delivered'"), None, "microsoft.graph.accessPackageAssignment"),
        ("GET", format!("{em}/assignments/a6bb6942-3ae1-4259-9908-0133aaee9377"), None, "microsoft.graph.accessPackageAssignment"),
        ("GET", "/applications?$filter=appId eq '65415bb1-9267-4313-bbf5-ae259732ee12'".into(), None, "microsoft.graph.application"),
        ("GET", format!("/applications/{APP}"), None, "microsoft.graph.application"),
        ("GET", "/servicePrincipals?$filter=appId eq '65415bb1-9267-4313-bbf5-ae259732ee12'".into(), None, "microsoft.graph.servicePrincipal"),
        ("GET", format!("/servicePrincipals/{SP}"), None, "microsoft.graph.servicePrincipal"),
        ("GET", format!("/servicePrincipals/{SP}/appRoleAssignedTo"), None, "microsoft.graph.appRoleAssignment"),
        ("POST", format!("/servicePrincipals/{SP}/appRoleAssignedTo"), Some(json!({"principalId": GROUP_LISTED, "resourceId": SP, "appRoleId": "ebb7c86c-fb47-4e3f-8191-420ff1b9de4a"})), "microsoft.graph.appRoleAssignment"),
        ("GET", "/groups?$filter=displayName eq 'Young techmakers'".into(), None, "microsoft.graph.group"),
        ("GET", format!("/groups/{GROUP_LISTED}"), None, "microsoft.graph.group"),
        ("GET", format!("/groups/{GROUP_LISTED}/appRoleAssignments"), None, "microsoft.graph.appRoleAssignment"),
    ];
    let mut problems = Vec::new();
    for (method, path, body, type_name) in &calls {
        assert!(
            spec.has_path(method, path),
            "{method} {path} is not a Graph v1.0 path"
        );
        let answer = sim.send(method, path, body.as_ref()).await;
        assert!(
            (200..300).contains(&answer.status),
            "{method} {path}: {} {}",
            answer.status,
            answer.body
        );
        match answer.body.get("value").and_then(Value::as_array) {
            Some(items) => {
                assert!(!items.is_empty(), "{path} listed nothing to check");
                for (i, item) in items.iter().enumerate() {
                    spec.check_object(
                        item,
                        type_name,
                        &format!("{path} value[{i}]"),
                        &mut problems,
                    );
                }
            }
            None => spec.check_object(&answer.body, type_name, path, &mut problems),
        }
    }
    // Writes without an answer body: their paths and methods must exist too.
    for (method, path) in [
        ("PATCH", format!("/applications/{APP}")),
        (
            "DELETE",
            format!("/groups/{GROUP_LISTED}/appRoleAssignments/{ROLE_ASSIGNMENT}"),
        ),
        (
            "DELETE",
            format!("/servicePrincipals/{SP}/appRoleAssignedTo/{ROLE_ASSIGNMENT}"),
        ),
        // The reprocess actions, by the OpenAPI description's qualified name; the client
        // sends the bare `reprocess` of the reference pages, which Graph takes as well.
        (
            "POST",
            format!("{em}/assignmentRequests/{REQUEST}/microsoft.graph.reprocess"),
        ),
        (
            "POST",
            format!(
                "{em}/assignments/a6bb6942-3ae1-4259-9908-0133aaee9377/microsoft.graph.reprocess"
            ),
        ),
    ] {
        assert!(spec.has_path(method, &path), "{method} {path}");
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_simulators_property_lists_match_the_schema_extract() {
    let spec = spec();
    for type_name in enroll_sim::schema::TYPES {
        let mut extracted: Vec<&str> = spec.schemas[*type_name]["properties"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        extracted.sort_unstable();
        let mut listed = enroll_sim::schema::properties(type_name).unwrap().to_vec();
        listed.sort_unstable();
        assert_eq!(listed, extracted, "{type_name}");
    }
}
