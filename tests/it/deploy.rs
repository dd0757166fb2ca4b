//! Deployment as a team new to enroll goes through it: `enroll grant` and `enroll doctor`
//! against the simulated tenant (enroll's service principal with and without the Graph
//! permissions it needs) and Azurite; the settings the code reads against the README's
//! Configuration tables and the Bicep's app settings; the README's permission table;
//! `scripts/deploy`; the roster repository's pipelines.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use enroll_core::tenant::{AppRoleAssignment, ServicePrincipal, TenantSnapshot};
use enroll_sim::{SimConfig, SimHandle};
use enroll_store::{Layout, StorageConfig, Store};
use serde_json::Value;

/// enroll's own service principal in the tests' tenant: the sim's client id is its appId.
const ENROLL_SP: &str = "6d1b7f0e-0c55-4a8e-9f3c-5b1e2a7c9d01";
const GRAPH_SP: &str = "2f6a1c44-7b0e-4d7e-9c61-0a3b9d1e5f20";
const CATALOG: &str = "Contoso Projects";

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn microsoft_graph() -> ServicePrincipal {
    let bytes = std::fs::read(root().join("tests/data/deploy/microsoft-graph.json")).unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

fn role_id(value: &str) -> String {
    microsoft_graph()
        .app_roles
        .into_iter()
        .find(|r| r.value.as_deref() == Some(value))
        .unwrap_or_else(|| panic!("no role {value}"))
        .id
}

/// The example tenant, plus Microsoft Graph's service principal and enroll's, which holds
/// the Graph application permissions `granted`.
fn tenant(granted: &[&str]) -> TenantSnapshot {
    let bytes = std::fs::read(root().join("examples/tenant.json")).unwrap();
    let mut tenant: TenantSnapshot = serde_json::from_slice(&bytes).unwrap();
    tenant.service_principals.push(microsoft_graph());
    tenant.service_principals.push(ServicePrincipal {
        id: ENROLL_SP.into(),
        app_id: SimConfig::default().client_id,
        display_name: Some("enroll-id".into()),
        app_roles: Vec::new(),
    });
    for (n, value) in granted.iter().enumerate() {
        tenant.app_role_assignments.push(AppRoleAssignment {
            id: format!("grant-{n}"),
            app_role_id: role_id(value),
            principal_id: ENROLL_SP.into(),
            principal_type: Some("ServicePrincipal".into()),
            principal_display_name: Some("enroll-id".into()),
            resource_id: GRAPH_SP.into(),
            resource_display_name: Some("Microsoft Graph".into()),
            created_date_time: None,
        });
    }
    tenant
}

/// The Graph permissions enroll's service principal holds in the simulated tenant now.
async fn held(sim: &SimHandle) -> BTreeSet<String> {
    let graph = microsoft_graph();
    sim.snapshot()
        .await
        .app_role_assignments
        .iter()
        .filter(|a| a.principal_id == ENROLL_SP && a.resource_id == GRAPH_SP)
        .map(|a| {
            graph
                .app_roles
                .iter()
                .find(|r| r.id == a.app_role_id)
                .and_then(|r| r.value.clone())
                .unwrap()
        })
        .collect()
}

fn storage_connection() -> String {
    std::env::var("ENROLL_TEST_STORAGE").unwrap_or_else(|_| {
        panic!("ENROLL_TEST_STORAGE is not set: the doctor tests need Azurite; run them with ./scripts/test")
    })
}

/// A prefix no other test uses, for containers and queues.
fn unique_prefix() -> String {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    format!(
        "dr{}x{}x",
        std::process::id(),
        N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    )
}

/// Storage as infra/main.bicep leaves it, under `prefix`: the containers, and the queues
/// unless `queues` is false.
async fn storage(prefix: &str, queues: bool) -> Store {
    let config = StorageConfig::from_connection_string(&storage_connection()).unwrap();
    let store = Store::new(&config)
        .unwrap()
        .with_layout(Layout::with_prefix(prefix));
    store.ensure_containers().await.unwrap();
    if queues {
        for queue in enroll_cli::doctor::QUEUES {
            store
                .ensure_queue(&format!("{prefix}{queue}"))
                .await
                .unwrap();
        }
    }
    store
}

/// Runs `enroll` with only the settings given (and the sim's, unless `settings` replaces
/// them), off the runtime's threads so that the simulator keeps answering.
async fn enroll(args: &[&str], settings: Vec<(String, String)>, stdin: Option<String>) -> Output {
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    tokio::task::spawn_blocking(move || {
        let mut command = Command::new(crate::enroll_binary());
        command
            .args(&args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .envs(settings)
            .current_dir(root())
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().unwrap();
        if let Some(text) = stdin {
            use std::io::Write as _;
            child
                .stdin
                .take()
                .unwrap()
                .write_all(text.as_bytes())
                .unwrap();
        }
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap()
}

fn json(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|error| {
        panic!(
            "stdout is not JSON ({error}): {}\nstderr: {}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

/// The doctor's settings for a deployment on `sim` with storage under `prefix`.
fn deployment_settings(sim: &SimHandle, prefix: &str) -> Vec<(String, String)> {
    let mut settings = sim.client_settings();
    settings.extend(
        [
            ("AzureWebJobsStorage", storage_connection().as_str()),
            ("ENROLL_STORAGE_PREFIX", prefix),
            ("ENROLL_CATALOG", CATALOG),
            ("ENROLL_INVITE_DOMAINS", "contoso.com,fabrikam.com"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned())),
    );
    settings
}

/// (check, status) of every row, in order.
fn rows(report: &Value) -> Vec<(String, String)> {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["check"].as_str().unwrap().to_owned(),
                c["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn row<'a>(report: &'a Value, check: &str) -> &'a Value {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == check)
        .unwrap_or_else(|| panic!("no check {check} in {report:#}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn doctor_passes_a_deployment_that_has_everything_it_needs() {
    // User.Invite.All comes with the broader Directory.ReadWrite.All.
    let granted = [
        "User.Read.All",
        "Directory.ReadWrite.All",
        "EntitlementManagement.ReadWrite.All",
        "Application.Read.All",
    ];
    let sim = enroll_sim::start(SimConfig::default(), tenant(&granted))
        .await
        .unwrap();
    let prefix = unique_prefix();
    let store = storage(&prefix, true).await;
    for roster in ["Key Users.csv", "Project Alpha - Approver.csv"] {
        let bytes = std::fs::read(root().join("examples/rosters").join(roster)).unwrap();
        store.put_roster(roster, bytes).await.unwrap();
    }
    let output = enroll(
        &["doctor", "--format", "json"],
        deployment_settings(&sim, &prefix),
        None,
    )
    .await;
    let report = json(&output);
    assert_eq!(output.status.code(), Some(0), "{report:#}");
    assert_eq!(report["problems"], 0);
    let expected: Vec<(String, String)> = [
        ("settings", "ok"),
        ("token", "ok"),
        ("principal", "ok"),
        ("permission User.Read.All", "ok"),
        ("permission User.Invite.All", "ok"),
        ("permission EntitlementManagement.ReadWrite.All", "ok"),
        ("more permissions", "note"),
        ("invite domains", "ok"),
        ("storage", "ok"),
        ("containers", "ok"),
        ("queues", "ok"),
        ("rosters", "ok"),
        ("catalog Contoso Projects", "ok"),
        ("roster Key Users.csv", "ok"),
        ("roster Project Alpha - Approver.csv", "ok"),
    ]
    .map(|(c, s)| (c.to_owned(), s.to_owned()))
    .to_vec();
    assert_eq!(rows(&report), expected);
    assert_eq!(
        row(&report, "principal")["detail"],
        format!("enroll-id (object id {ENROLL_SP}, client id enroll-sim-client)")
    );
    assert_eq!(
        row(&report, "permission User.Read.All")["detail"],
        "granted (from app role assignments)"
    );
    assert_eq!(
        row(&report, "permission User.Invite.All")["detail"],
        "given by Directory.ReadWrite.All, which allows more (from app role assignments)"
    );
    assert_eq!(
        row(&report, "more permissions")["detail"],
        "also granted, not needed by enroll: Application.Read.All"
    );
    assert_eq!(
        row(&report, "rosters")["detail"],
        format!("2 in container {prefix}rosters")
    );
    assert_eq!(row(&report, "queues")["detail"], "all 10");
    let alpha = row(&report, "roster Project Alpha - Approver.csv")["detail"]
        .as_str()
        .unwrap();
    assert!(
        alpha.starts_with("package `Project Alpha - Approver` (")
            && alpha.ends_with(", policy `Administrator direct assignments` (admin direct)"),
        "{alpha}"
    );
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn doctor_names_each_problem_with_its_fix_and_exits_1() {
    let mut tenant = tenant(&["User.Read.All"]);
    // Two policies for admin direct assignment: the Plan step could not choose.
    let manager = tenant
        .access_packages
        .iter_mut()
        .find(|p| p.display_name == "Project Alpha - Manager")
        .unwrap();
    let mut second = manager.assignment_policies[0].clone();
    second.id = "a2d7c3b4-0000-4000-8000-00000000beef".into();
    manager.assignment_policies.push(second);
    let sim = enroll_sim::start(SimConfig::default(), tenant)
        .await
        .unwrap();
    let prefix = unique_prefix();
    storage(&prefix, false).await;
    let rosters = tempfile::tempdir().unwrap();
    for roster in [
        "Contoso Projects/Project Alpha - Approver.csv",
        "Contoso Projects/Project Alpha - Manager.csv",
        "Contoso Projects/Project Omega - Approver.csv",
        "Nowhere/Key Users.csv",
    ] {
        let path = rosters.path().join(roster);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, "Jane;jane@contoso.com\n").unwrap();
    }
    let mut settings = deployment_settings(&sim, &prefix);
    settings.retain(|(k, _)| k != "ENROLL_INVITE_DOMAINS" && k != "ENROLL_CATALOG");
    let folder = rosters.path().to_str().unwrap();
    let output = enroll(
        &["doctor", "--rosters", folder, "--format", "json"],
        settings.clone(),
        None,
    )
    .await;
    let report = json(&output);
    assert_eq!(output.status.code(), Some(1), "{report:#}");
    let problems: Vec<String> = rows(&report)
        .into_iter()
        .filter(|(_, status)| status == "problem")
        .map(|(check, _)| check)
        .collect();
    assert_eq!(
        problems,
        [
            "permission User.Invite.All",
            "permission EntitlementManagement.ReadWrite.All",
            "invite domains",
            "queues",
            "catalog Nowhere",
            "roster Contoso Projects/Project Alpha - Manager.csv",
            "roster Contoso Projects/Project Omega - Approver.csv",
            "roster Nowhere/Key Users.csv",
        ]
    );
    assert_eq!(report["problems"], 8);
    assert_eq!(
        row(&report, "permission User.Invite.All")["fix"],
        format!(
            "an administrator runs `enroll grant --principal {ENROLL_SP}` once (README, Deployment)"
        )
    );
    let queues = row(&report, "queues")["detail"].as_str().unwrap();
    assert_eq!(queues.matches(&prefix).count(), 10, "{queues}");
    assert!(
        row(
            &report,
            "roster Contoso Projects/Project Alpha - Manager.csv"
        )["detail"]
            .as_str()
            .unwrap()
            .contains("2 policies that allow admin direct assignment"),
    );
    assert!(
        row(
            &report,
            "roster Contoso Projects/Project Omega - Approver.csv"
        )["detail"]
            .as_str()
            .unwrap()
            .ends_with("[no_matching_package]"),
    );
    assert_eq!(
        row(
            &report,
            "roster Contoso Projects/Project Alpha - Approver.csv"
        )["status"],
        "ok"
    );
    // The same as a table, each fix under its problem.
    let output = enroll(&["doctor", "--rosters", folder], settings, None).await;
    assert_eq!(output.status.code(), Some(1));
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        text.lines().any(|l| l.trim_start()
            == format!("fix: an administrator runs `enroll grant --principal {ENROLL_SP}` once (README, Deployment)")),
        "{text}"
    );
    assert!(text.contains("permission User.Invite.All"), "{text}");
    assert!(text.trim_end().ends_with("checks, 8 problems"), "{text}");
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn doctor_without_a_token_checks_nothing_else_in_graph() {
    let sim = enroll_sim::start(SimConfig::default(), tenant(&[]))
        .await
        .unwrap();
    let mut settings = sim.client_settings();
    for (name, value) in &mut settings {
        if name == "ENROLL_CLIENT_SECRET" {
            *value = "not-the-secret".into();
        }
    }
    settings.push(("ENROLL_INVITE_DOMAINS".into(), "contoso.com".into()));
    let output = enroll(&["doctor", "--format", "json"], settings, None).await;
    let report = json(&output);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        rows(&report),
        [
            ("settings", "ok"),
            ("token", "problem"),
            ("invite domains", "ok"),
            ("storage", "problem"),
        ]
        .map(|(c, s)| (c.to_owned(), s.to_owned()))
    );
    assert!(
        row(&report, "token")["detail"]
            .as_str()
            .unwrap()
            .contains("invalid_client"),
        "{report:#}"
    );
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn grant_dry_run_changes_nothing_and_grant_adds_exactly_what_is_missing() {
    let sim = enroll_sim::start(
        SimConfig::default(),
        tenant(&["User.Read.All", "GroupMember.Read.All"]),
    )
    .await
    .unwrap();
    let before = held(&sim).await;
    let output = enroll(
        &[
            "grant",
            "--principal",
            ENROLL_SP,
            "--dry-run",
            "--format",
            "json",
        ],
        sim.client_settings(),
        None,
    )
    .await;
    let report = json(&output);
    assert_eq!(output.status.code(), Some(0), "{report:#}");
    let states: Vec<(&str, &str)> = report["permissions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["permission"].as_str().unwrap(),
                p["state"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        states,
        [
            ("User.Read.All", "held"),
            ("User.Invite.All", "wouldGrant"),
            ("EntitlementManagement.ReadWrite.All", "wouldGrant"),
        ]
    );
    assert_eq!(report["extra"], serde_json::json!(["GroupMember.Read.All"]));
    assert_eq!(held(&sim).await, before, "a dry run grants nothing");

    // An administrator's token on standard input, as scripts/deploy passes the Azure CLI's.
    let token = sim_token(&sim).await;
    let endpoint = vec![(
        "ENROLL_GRAPH_URL".to_owned(),
        format!("{}/v1.0", sim.base_url()),
    )];
    let output = enroll(
        &["grant", "--principal", ENROLL_SP, "--token-stdin"],
        endpoint.clone(),
        Some(format!("{token}\n")),
    )
    .await;
    let text = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{text}");
    assert!(
        text.contains("User.Invite.All") && text.contains("  granted\n"),
        "{text}"
    );
    assert!(
        text.contains("also held, not needed by enroll: GroupMember.Read.All (left as they are)"),
        "{text}"
    );
    let people: BTreeSet<String> = [
        "User.Read.All",
        "GroupMember.Read.All",
        "User.Invite.All",
        "EntitlementManagement.ReadWrite.All",
    ]
    .map(String::from)
    .into();
    assert_eq!(held(&sim).await, people);

    // App roles add their three; a second run finds everything granted and adds nothing.
    for _ in 0..2 {
        let output = enroll(
            &[
                "grant",
                "--principal",
                ENROLL_SP,
                "--token-stdin",
                "--app-roles",
                "--format",
                "json",
            ],
            endpoint.clone(),
            Some(token.clone()),
        )
        .await;
        assert_eq!(output.status.code(), Some(0));
    }
    let output = enroll(
        &[
            "grant",
            "--principal",
            ENROLL_SP,
            "--token-stdin",
            "--app-roles",
            "--dry-run",
            "--format",
            "json",
        ],
        endpoint,
        Some(token),
    )
    .await;
    let report = json(&output);
    assert_eq!(
        report["permissions"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["state"] == "held")
            .count(),
        6,
        "{report:#}"
    );
    let mut all = people.clone();
    all.extend(
        [
            "Application.ReadWrite.OwnedBy",
            "AppRoleAssignment.ReadWrite.All",
            "Group.Read.All",
        ]
        .map(String::from),
    );
    assert_eq!(held(&sim).await, all);
    sim.shutdown().await;
}

/// A token from the simulated tenant's token endpoint, for `--token-stdin`.
async fn sim_token(sim: &SimHandle) -> String {
    let config = SimConfig::default();
    let answer: Value = reqwest::Client::new()
        .post(format!(
            "{}/{}/oauth2/v2.0/token",
            sim.base_url(),
            sim.tenant_id()
        ))
        .form(&[
            ("client_id", config.client_id.as_str()),
            ("client_secret", config.client_secret.as_str()),
            ("scope", "https://graph.microsoft.com/.default"),
            ("grant_type", "client_credentials"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    answer["access_token"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn grant_refuses_a_principal_the_tenant_does_not_have() {
    let sim = enroll_sim::start(SimConfig::default(), tenant(&[]))
        .await
        .unwrap();
    let output = enroll(
        &[
            "grant",
            "--principal",
            "00000000-0000-4000-8000-000000000000",
        ],
        sim.client_settings(),
        None,
    )
    .await;
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("no service principal has object id 00000000-0000-4000-8000-000000000000"),
        "{stderr}"
    );
    assert!(held(&sim).await.is_empty());
    sim.shutdown().await;
}

// ----- settings, permissions, queues: code, README and Bicep agree ---------------------------

fn read(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap()
}

fn files_under(dir: &Path, ext: Option<&str>, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files_under(&path, ext, out);
        } else if ext.is_none_or(|ext| path.extension().is_some_and(|e| e == ext)) {
            out.push(path);
        }
    }
}

const SETTING_PREFIXES: &[&str] = &[
    "ENROLL_",
    "AzureWebJobsStorage",
    "FUNCTIONS_",
    "IDENTITY_",
    "APPLICATIONINSIGHTS_",
    "RUST_LOG",
    "UPDATE_GOLDEN",
];

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Names in `text` that start with a setting prefix: quoted (`"NAME"`, Rust), between `%`
/// (function.json), or as a word (shell).
fn setting_names(text: &str, quoted: bool) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for prefix in SETTING_PREFIXES {
        for (at, _) in text.match_indices(prefix) {
            let before = text[..at].chars().next_back();
            let name: String = text[at..]
                .chars()
                .take_while(|c| is_name_char(*c))
                .collect();
            let after = text[at + name.len()..].chars().next();
            let fits = if quoted {
                (before == Some('"') && after == Some('"'))
                    || (before == Some('%') && after == Some('%'))
            } else {
                !before.is_some_and(is_name_char)
            };
            // A prefix alone (`"ENROLL_"`) is no setting.
            if fits && !name.ends_with('_') {
                names.insert(name);
            }
        }
    }
    names
}

/// Every setting the code, the scripts and the function definitions read, with a file that
/// reads it. The storage settings' identity-based forms are read as `AzureWebJobsStorage`
/// plus a `"__suffix"` literal (crates/store/src/config.rs).
fn settings_read() -> std::collections::BTreeMap<String, PathBuf> {
    let mut files = Vec::new();
    for dir in ["crates", "handler", "tests/it", "benches"] {
        files_under(&root().join(dir), Some("rs"), &mut files);
    }
    let mut found = std::collections::BTreeMap::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        for name in setting_names(&text, true) {
            found.entry(name).or_insert_with(|| file.clone());
        }
    }
    let store_config = read("crates/store/src/config.rs");
    for (at, _) in store_config.match_indices("\"__") {
        let suffix: String = store_config[at + 1..]
            .chars()
            .take_while(|c| is_name_char(*c))
            .collect();
        found
            .entry(format!("AzureWebJobsStorage{suffix}"))
            .or_insert_with(|| root().join("crates/store/src/config.rs"));
    }
    let mut scripts = Vec::new();
    files_under(&root().join("scripts"), None, &mut scripts);
    files_under(
        &root().join("function_definitions"),
        Some("json"),
        &mut scripts,
    );
    for file in &scripts {
        let text = std::fs::read_to_string(file).unwrap();
        let json = file.extension().is_some_and(|e| e == "json");
        for name in setting_names(&text, json) {
            found.entry(name).or_insert_with(|| file.clone());
        }
    }
    found
}

/// The variables the README's Configuration tables list (first column).
fn settings_in_readme() -> BTreeSet<String> {
    let readme = read("README.md");
    let start = readme.find("\n## Configuration\n").unwrap();
    let section = &readme[start + 1..];
    let section = &section[..section[3..]
        .find("\n## ")
        .map_or(section.len(), |end| end + 3)];
    let mut names = BTreeSet::new();
    for line in section.lines().filter(|l| l.starts_with("| `")) {
        let cell = line.split('|').nth(1).unwrap();
        for (n, part) in cell.split('`').enumerate() {
            if n % 2 == 1 {
                names.insert(part.to_owned());
            }
        }
    }
    names
}

/// The Function App's app settings in infra/main.bicep.
fn settings_in_bicep() -> BTreeSet<String> {
    let bicep = read("infra/main.bicep");
    let start = bicep.find("appSettings: [").unwrap();
    let bicep = &bicep[start..start + bicep[start..].find("\n      ]").unwrap()];
    bicep
        .match_indices("{ name: '")
        .map(|(at, m)| {
            let rest = &bicep[at + m.len()..];
            rest[..rest.find('\'').unwrap()].to_owned()
        })
        .collect()
}

#[test]
fn every_setting_is_in_the_list_the_readme_and_the_bicep_or_says_why_not() {
    use enroll_steps::settings::{Bicep, SETTINGS, setting};
    let listed: BTreeSet<String> = SETTINGS.iter().map(|s| s.name.to_owned()).collect();
    // Read by the code or the scripts, but not in enroll_steps::settings::SETTINGS.
    let unlisted: Vec<String> = settings_read()
        .into_iter()
        .filter(|(name, _)| setting(name).is_none())
        .map(|(name, file)| format!("{name} (read in {})", file.display()))
        .collect();
    assert_eq!(
        unlisted,
        Vec::<String>::new(),
        "add these to crates/steps/src/settings.rs"
    );
    let readme = settings_in_readme();
    assert_eq!(
        listed.difference(&readme).collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "settings missing from README.md's Configuration tables"
    );
    assert_eq!(
        readme.difference(&listed).collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "README.md's Configuration lists settings enroll does not know"
    );
    let bicep = settings_in_bicep();
    let set: BTreeSet<String> = SETTINGS
        .iter()
        .filter(|s| s.bicep == Bicep::Set)
        .map(|s| s.name.to_owned())
        .collect();
    assert_eq!(
        set.difference(&bicep).collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "settings missing from infra/main.bicep's app settings (or give the reason they are not there)"
    );
    assert_eq!(
        bicep.difference(&set).collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "infra/main.bicep sets settings the list says it does not"
    );
}

#[test]
fn the_setting_scan_finds_what_the_code_reads() {
    // The scan itself: quoted names in Rust, `%NAME%` in function.json, words in scripts.
    let read = settings_read();
    for (name, file) in [
        ("ENROLL_GRAPH_TIMEOUT_SECONDS", "crates/steps/src/config.rs"),
        ("FUNCTIONS_CUSTOMHANDLER_PORT", "handler/src/main.rs"),
        (
            "AzureWebJobsStorage__queueServiceUri",
            "crates/store/src/config.rs",
        ),
        (
            "ENROLL_SCHEDULE",
            "function_definitions/Scheduled/function.json",
        ),
        ("ENROLL_AZURITE_DIR", "scripts/azurite"),
    ] {
        assert!(read.contains_key(name), "{name} not found in {file}");
    }
    // Built at run time, so that the scan of this file does not find them.
    let e = "ENROLL";
    assert_eq!(
        setting_names(
            &format!(r#"env.get("{e}_X") "{e}_Y is not set" MY_{e}_Z"#),
            true
        ),
        BTreeSet::from([format!("{e}_X")])
    );
    assert_eq!(
        setting_names(&format!("export {e}_X\nMY_{e}_Y=1 ${{{e}_Z}}"), false),
        BTreeSet::from([format!("{e}_X"), format!("{e}_Z")])
    );
}

#[test]
fn the_readme_permission_table_is_the_one_the_code_grants_and_checks() {
    let readme = read("README.md");
    let table = enroll_steps::permissions::markdown_table();
    assert!(
        readme.contains(&table),
        "README.md must hold this table, as enroll_steps::permissions writes it:\n{table}"
    );
}

#[test]
fn doctor_bicep_and_the_handler_know_the_same_queues() {
    use enroll_handler::{FUNCTIONS, Trigger};
    let mut handler: BTreeSet<&str> = BTreeSet::new();
    for function in FUNCTIONS {
        if let Trigger::Queue { queue, .. } = function.trigger {
            handler.insert(queue);
        }
        handler.extend(function.outputs.iter().map(|(_, queue)| *queue));
    }
    let doctor: BTreeSet<&str> = enroll_cli::doctor::QUEUES.iter().copied().collect();
    assert_eq!(doctor, handler);
    let bicep = read("infra/main.bicep");
    let list = &bicep[bicep.find("var queueNames = [").unwrap()..];
    let list = &list[..list.find(']').unwrap()];
    let in_bicep: BTreeSet<&str> = list
        .split('\'')
        .enumerate()
        .filter(|(n, _)| n % 2 == 1)
        .map(|(_, q)| q)
        .collect();
    assert_eq!(in_bicep, handler);
}

#[test]
fn local_settings_example_passes_the_handlers_start_up_checks() {
    use enroll_steps::config::{Env, graph_config, step_config};
    let example: Value = serde_json::from_str(&read("local.settings.json.example")).unwrap();
    let values: Vec<(String, String)> = example["Values"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
        .collect();
    for (name, _) in &values {
        assert!(
            enroll_steps::settings::setting(name).is_some(),
            "{name} is no setting of enroll"
        );
    }
    let env = Env::from_pairs(values.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    assert_eq!(env.get("FUNCTIONS_WORKER_RUNTIME"), Some("custom"));
    assert!(
        env.get("ENROLL_SCHEDULE").is_some(),
        "Scheduled's timer needs it"
    );
    step_config(&env, true).unwrap();
    let graph = graph_config(&env).unwrap();
    assert_eq!(graph.graph_base_url, "http://127.0.0.1:7100/v1.0");
    let storage = StorageConfig::from_lookup("AzureWebJobsStorage", |name| {
        env.get(name).map(str::to_owned)
    })
    .unwrap();
    assert_eq!(
        storage.blob_endpoint().as_str(),
        "http://127.0.0.1:10000/devstoreaccount1"
    );
}
