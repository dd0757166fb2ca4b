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
    let answer: Value = crate::sim::token(&reqwest::Client::new(), sim)
        .await
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

// ----- scripts/deploy ------------------------------------------------------------------------

/// Runs a script of the repository with `args`, in the repository's root.
fn script(path: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(root().join(path))
        .args(args)
        .envs(env.iter().copied())
        .current_dir(root())
        .output()
        .unwrap()
}

const DEPLOY_ARGS: &[&str] = &[
    "--resource-group",
    "rg-enroll",
    "--location",
    "westeurope",
    "--tenant-id",
    "contoso.onmicrosoft.com",
    "--invite-domains",
    "contoso.com,fabrikam.com",
    "--catalog",
    "Contoso Projects",
    "--app-id",
    "f7ba41d8-a2df-53e6-9cb3-938ae4ab2293",
    "--uploader",
    "11111111-2222-4333-8444-555555555555",
    "--rosters",
    "examples/rosters",
    "--dry-run",
];

#[test]
fn deploy_dry_run_prints_the_az_commands_in_order_as_a_script() {
    let output = script("scripts/deploy", DEPLOY_ARGS, &[]);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let text = String::from_utf8(output.stdout).unwrap();
    let parameters = "--parameters location=westeurope namePrefix=enroll tenantId=contoso.onmicrosoft.com inviteDomains=contoso.com,fabrikam.com 'catalog=Contoso Projects' 'schedule=0 0 2 * * *' maxRemovals=10 maxRemovalPercent=20 maxAdditions=50 maxAdditionPercent=100 protectedPeople= removalDelay=0 inviteRedirectUrl=https://myapps.microsoft.com sendInvitations=false appId=f7ba41d8-a2df-53e6-9cb3-938ae4ab2293 'roleGroupPattern=APP-{value}' \"uploaderPrincipalIds=[\\\"${me}\\\",\\\"11111111-2222-4333-8444-555555555555\\\"]\"";
    let show = |output: &str| {
        format!(
            "{output}=$(az deployment group show --resource-group rg-enroll --name enroll --query properties.outputs.{}.value --output tsv)",
            match output {
                "app" => "functionAppName",
                "storage" => "storageAccountName",
                _ => "principalId",
            }
        )
    };
    let expected = [
        "me=$(az ad signed-in-user show --query id --output tsv)".to_owned(),
        "az group create --name rg-enroll --location westeurope --output none".to_owned(),
        format!("az deployment group create --resource-group rg-enroll --name enroll --template-file infra/main.bicep {parameters} subscribeRosterUploads=false --output none"),
        show("app"),
        show("storage"),
        show("principal"),
        "scripts/package".to_owned(),
        "az functionapp deployment source config-zip --resource-group rg-enroll --name \"${app}\" --src target/enroll-functions.zip --output none".to_owned(),
        "until [ -n \"$(az functionapp keys list --resource-group rg-enroll --name \"${app}\" --query systemKeys.blobs_extension --output tsv)\" ]; do sleep 10; done".to_owned(),
        format!("az deployment group create --resource-group rg-enroll --name enroll --template-file infra/main.bicep {parameters} subscribeRosterUploads=true --output none"),
        "cargo build --locked --release -p enroll-cli --bin enroll".to_owned(),
        "az account get-access-token --tenant contoso.onmicrosoft.com --resource-type ms-graph --query accessToken --output tsv | target/release/enroll grant --principal \"${principal}\" --token-stdin --app-roles".to_owned(),
        "az storage blob upload-batch --auth-mode login --account-name \"${storage}\" --destination rosters --source examples/rosters --overwrite --output none".to_owned(),
    ];
    assert_eq!(text.lines().collect::<Vec<_>>(), expected);
    // The output is a script bash accepts as it is.
    let mut bash = Command::new("bash")
        .arg("-n")
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write as _;
    bash.stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    assert!(bash.wait().unwrap().success());
}

#[test]
fn deploy_leaves_out_what_options_turn_off() {
    let mut args: Vec<&str> = DEPLOY_ARGS
        .iter()
        .copied()
        .filter(|a| !["--app-id", "f7ba41d8-a2df-53e6-9cb3-938ae4ab2293"].contains(a))
        .collect();
    args.extend([
        "--skip-grant",
        "--package",
        "Cargo.toml",
        "--subscription",
        "sub-1",
    ]);
    let text = String::from_utf8(script("scripts/deploy", &args, &[]).stdout).unwrap();
    assert_eq!(
        text.lines().next(),
        Some("az account set --subscription sub-1")
    );
    assert!(!text.contains("scripts/package"), "{text}");
    assert!(!text.contains("enroll grant"), "{text}");
    assert!(text.contains(" --src Cargo.toml "), "{text}");
    assert!(text.contains(" appId= "), "{text}");
}

#[test]
fn deploy_refuses_missing_and_malformed_arguments_before_any_command() {
    let without = |flag: &str| -> Vec<&str> {
        let at = DEPLOY_ARGS.iter().position(|a| *a == flag).unwrap();
        let mut args = DEPLOY_ARGS.to_vec();
        args.drain(at..at + 2);
        args
    };
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (without("--tenant-id"), "--tenant-id is required"),
        (without("--invite-domains"), "--invite-domains is required"),
        (
            [DEPLOY_ARGS, &["--name-prefix", "Enroll-Prod"]].concat(),
            "--name-prefix must be 3 to 11 lowercase letters or digits",
        ),
        (
            [DEPLOY_ARGS, &["--max-removal-percent", "120"]].concat(),
            "--max-removal-percent must be a whole number from 0 to 100",
        ),
        (
            [DEPLOY_ARGS, &["--invite-redirect-url", "http://x"]].concat(),
            "--invite-redirect-url must be an https:// URL",
        ),
        (
            [DEPLOY_ARGS, &["--role-group-pattern", "APP-Roles"]].concat(),
            "--role-group-pattern must hold {value}",
        ),
        (
            [DEPLOY_ARGS, &["--uploader", "pipeline"]].concat(),
            "--uploader pipeline is not an object id",
        ),
        (
            [DEPLOY_ARGS, &["--rosters", "no/such/folder"]].concat(),
            "--rosters no/such/folder is not a folder",
        ),
        (
            [DEPLOY_ARGS, &["--location"]].concat(),
            "--location needs a value",
        ),
        (
            [DEPLOY_ARGS, &["--colour", "blue"]].concat(),
            "unknown argument --colour",
        ),
    ];
    for (args, message) in cases {
        let output = script("scripts/deploy", &args, &[]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{message}: {stderr}");
        assert!(stderr.contains(message), "{message}: {stderr}");
        assert!(output.stdout.is_empty(), "{message}: nothing may run");
    }
}

#[test]
fn deploy_help_documents_every_parameter_it_reads() {
    let source = read("scripts/deploy");
    let parsed: BTreeSet<&str> = source
        .lines()
        .filter_map(|line| line.trim_start().strip_prefix("--"))
        .filter_map(|rest| rest.split_once(')'))
        .map(|(flag, _)| flag.split('|').next().unwrap())
        .filter(|flag| flag.chars().all(|c| c.is_ascii_lowercase() || c == '-'))
        .collect();
    assert_eq!(parsed.len(), 27, "{parsed:?}");
    let help = String::from_utf8(script("scripts/deploy", &["--help"], &[]).stdout).unwrap();
    for flag in parsed {
        assert!(
            help.lines()
                .any(|l| l.trim_start().starts_with(&format!("--{flag} "))
                    || l.trim_start() == format!("--{flag}")),
            "--{flag} is not documented in scripts/deploy --help:\n{help}"
        );
    }
}

// ----- the scripts pass ShellCheck; the package's checker catches a bad package ---------------

/// A tool from `.tools/pytools` (scripts/pytools installs them; scripts/test runs it).
fn pytool(name: &str) -> PathBuf {
    let tool = root().join(".tools/pytools/bin").join(name);
    assert!(
        tool.is_file(),
        "{} is missing: run scripts/pytools (scripts/test does)",
        tool.display()
    );
    tool
}

#[test]
fn shell_scripts_pass_shellcheck() {
    let mut files: Vec<PathBuf> = [
        "azurite", "bench", "checkov", "deploy", "package", "pytools", "test",
    ]
    .iter()
    .map(|name| root().join("scripts").join(name))
    .collect();
    files.push(root().join(".ci/run"));
    files_under(&root().join("templates/roster-repo/ci"), None, &mut files);
    assert_eq!(files.len(), 12);
    let output = Command::new(pytool("shellcheck"))
        .args(&files)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
}

#[test]
fn package_check_refuses_a_zip_with_wrong_modes_and_missing_functions() {
    let dir = tempfile::tempdir().unwrap();
    let zip = dir.path().join("bad.zip");
    // A handler that is no executable, mode 644, and no function folders.
    let make = format!(
        "import zipfile\nwith zipfile.ZipFile({:?}, 'w') as z:\n    i = zipfile.ZipInfo('handler'); i.create_system = 3; i.external_attr = 0o100644 << 16; z.writestr(i, b'#!/bin/sh')\n    z.write({:?}, 'host.json')\n",
        zip.to_str().unwrap(),
        root().join("host.json").to_str().unwrap()
    );
    assert!(
        Command::new(pytool("python3"))
            .args(["-c", &make])
            .status()
            .unwrap()
            .success()
    );
    let output = Command::new(pytool("python3"))
        .arg(root().join("scripts/check_package.py"))
        .arg(&zip)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let problems = String::from_utf8_lossy(&output.stderr);
    assert!(
        problems.contains("missing entry Plan/function.json"),
        "{problems}"
    );
    assert!(problems.contains("handler: mode 0o644"), "{problems}");
    assert!(
        problems.contains("handler is not an ELF executable"),
        "{problems}"
    );
    assert!(
        !problems.contains("host.json"),
        "host.json is right: {problems}"
    );
}

// ----- the roster repository's pipelines --------------------------------------------------------

const TEMPLATE: &str = "templates/roster-repo";

/// A pipeline file as JSON, read with PyYAML.
fn yaml(path: &str) -> Value {
    let output = Command::new(pytool("python3"))
        .args([
            "-c",
            "import json, sys, yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))",
        ])
        .arg(root().join(TEMPLATE).join(path))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{path} does not parse: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// The shell text of every step of a job, in order.
fn step_scripts(steps: &Value, keys: &[&str]) -> Vec<String> {
    steps
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|step| {
            keys.iter()
                .find_map(|key| step.get(*key).or_else(|| step["inputs"].get(*key)))
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .collect()
}

fn runs(scripts: &[String], command: &str) -> bool {
    scripts.iter().any(|s| s.contains(command))
}

#[test]
fn pipelines_parse_and_run_the_ci_scripts_on_pull_requests_and_merges() {
    let github = yaml(".github/workflows/enroll.yml");
    // PyYAML reads the key `on` as true.
    let on = &github["true"];
    assert!(
        on["pull_request"].is_object() && on["push"]["branches"] == serde_json::json!(["main"])
    );
    let plan = step_scripts(&github["jobs"]["plan"]["steps"], &["run"]);
    assert!(
        runs(
            &plan,
            "ci/check rosters tenant-snapshot.json enroll-plan.md"
        ),
        "{plan:?}"
    );
    assert!(runs(
        &plan,
        "ci/comment-github \"$REPOSITORY\" \"$PULL_REQUEST\" enroll-plan.md"
    ));
    assert!(runs(&plan, "exit \"$STATUS\""));
    assert_eq!(
        github["jobs"]["plan"]["permissions"]["pull-requests"],
        "write"
    );
    let upload = step_scripts(&github["jobs"]["upload"]["steps"], &["run"]);
    assert!(runs(
        &upload,
        "ci/upload \"$BASE\" \"$HEAD\" rosters \"$STORAGE_ACCOUNT\" rosters"
    ));
    assert!(runs(
        &upload,
        "ci/upload \"$BASE\" \"$HEAD\" manifests \"$STORAGE_ACCOUNT\" manifests"
    ));

    let azure = yaml("azure-pipelines.yml");
    assert_eq!(
        azure["trigger"]["branches"]["include"],
        serde_json::json!(["main"])
    );
    assert!(azure["pr"]["paths"]["include"].is_array());
    let jobs = azure["jobs"].as_array().unwrap();
    let job = |name: &str| jobs.iter().find(|j| j["job"] == name).unwrap();
    let plan = step_scripts(&job("plan")["steps"], &["bash"]);
    assert!(
        runs(
            &plan,
            "ci/check rosters tenant-snapshot.json enroll-plan.md"
        ),
        "{plan:?}"
    );
    assert!(runs(&plan, "ci/comment-azure enroll-plan.md"));
    assert!(runs(&plan, "exit \"$(planStatus)\""));
    let upload = step_scripts(&job("upload")["steps"], &["inlineScript"]);
    assert!(
        runs(
            &upload,
            "ci/upload \"$base\" HEAD rosters \"$(storageAccount)\" rosters"
        ),
        "{upload:?}"
    );
}

/// A folder on PATH with the `enroll` binary and fake tools that log their arguments.
struct Tools {
    dir: tempfile::TempDir,
}

impl Tools {
    /// `fakes`: (name, bash body); each fake first appends its arguments to `$dir/log`.
    fn new(fakes: &[(&str, &str)]) -> Self {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(crate::enroll_binary(), dir.path().join("enroll")).unwrap();
        for (name, body) in fakes {
            let path = dir.path().join(name);
            let script = format!(
                "#!/usr/bin/env bash\nprintf '%s\\n' \"{name} $*\" >> \"$FAKE_DIR/log\"\n{body}\n"
            );
            std::fs::write(&path, script).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        Tools { dir }
    }

    fn path(&self) -> String {
        format!(
            "{}:{}",
            self.dir.path().display(),
            std::env::var("PATH").unwrap()
        )
    }

    fn run(&self, script: &str, args: &[&str], cwd: &Path, env: &[(&str, &str)]) -> Output {
        Command::new(root().join(TEMPLATE).join(script))
            .args(args)
            .env("PATH", self.path())
            .env("FAKE_DIR", self.dir.path())
            .envs(env.iter().copied())
            .current_dir(cwd)
            .output()
            .unwrap()
    }

    /// What the fakes were called with, one call a line.
    fn log(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.path().join("log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

#[test]
fn check_plans_the_example_rosters_and_writes_the_comment_with_its_marker() {
    let tools = Tools::new(&[]);
    let out = tempfile::tempdir().unwrap();
    let comment = out.path().join("enroll-plan.md");
    let output = tools.run(
        "ci/check",
        &[
            "examples/rosters",
            "examples/tenant.json",
            comment.to_str().unwrap(),
        ],
        root(),
        &[],
    );
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let text = std::fs::read_to_string(&comment).unwrap();
    assert!(
        text.starts_with("<!-- enroll-plan -->\n## enroll plan\n"),
        "{text}"
    );
    assert!(text.contains(
        "62 packages planned: 0 blocked; 0 rosters not planned. Nothing stops this change."
    ));
    assert_eq!(
        text.matches("\n| `").count(),
        62,
        "one table row per roster"
    );
    let log = String::from_utf8_lossy(&output.stdout);
    assert!(
        log.contains("62 files: 62 valid, 0 invalid"),
        "validate ran: {log}"
    );
}

#[test]
fn check_fails_on_a_blocked_package_and_an_invalid_roster_and_still_comments() {
    let tools = Tools::new(&[]);
    let rosters = tempfile::tempdir().unwrap();
    // An empty roster for a package with members: the empty-roster guard blocks it.
    std::fs::write(rosters.path().join("Project Alpha - Contributor.csv"), "").unwrap();
    std::fs::write(
        rosters.path().join("Project Alpha - Approver.csv"),
        "Jane;jane@@contoso.com\n",
    )
    .unwrap();
    let comment = rosters.path().join("plan.md");
    let snapshot = root().join("examples/tenant.json");
    let output = tools.run(
        "ci/check",
        &[
            rosters.path().to_str().unwrap(),
            snapshot.to_str().unwrap(),
            comment.to_str().unwrap(),
        ],
        root(),
        &[],
    );
    assert_eq!(output.status.code(), Some(1));
    let text = std::fs::read_to_string(&comment).unwrap();
    assert!(text.starts_with("<!-- enroll-plan -->\n"));
    assert!(text.contains("1 packages planned: 1 blocked; 1 rosters not planned. **This change cannot go in as it is**"), "{text}");
    assert!(text.contains("| **blocked** (empty_roster) |"), "{text}");
    assert!(text.contains("`invalid_email`"), "{text}");
}

/// A fake `gh` that answers the comment listing by running the `--jq` filter over
/// `$FAKE_COMMENTS`, as gh does.
const FAKE_GH: &str = r#"if [ "$2" = "--paginate" ]; then jq -r "$5" < "$FAKE_COMMENTS"; fi"#;

#[test]
fn github_comment_is_posted_once_then_edited() {
    let tools = Tools::new(&[("gh", FAKE_GH)]);
    let dir = tempfile::tempdir().unwrap();
    let comment = dir.path().join("enroll-plan.md");
    std::fs::write(&comment, "<!-- enroll-plan -->\n## enroll plan\n").unwrap();
    let comments = dir.path().join("comments.json");
    let file = comment.to_str().unwrap();
    let run = |existing: &str| {
        std::fs::write(&comments, existing).unwrap();
        let output = tools.run(
            "ci/comment-github",
            &["contoso/rosters", "7", file],
            dir.path(),
            &[("FAKE_COMMENTS", comments.to_str().unwrap())],
        );
        assert!(output.status.success(), "{output:?}");
    };
    // Someone else's comment, then none of ours yet: a new comment.
    run(r#"[{"id": 11, "body": "LGTM"}]"#);
    // Ours from an earlier push (the marker first), among others: that one is edited.
    run(
        r#"[{"id": 11, "body": "LGTM"}, {"id": 12, "body": "<!-- enroll-plan -->\nold plan"}, {"id": 13, "body": "quoting <!-- enroll-plan -->"}]"#,
    );
    let log = tools.log();
    assert_eq!(
        log,
        [
            "gh api --paginate repos/contoso/rosters/issues/7/comments --jq .[] | select(.body | startswith(\"<!-- enroll-plan -->\")) | .id".to_owned(),
            format!("gh api --method POST repos/contoso/rosters/issues/7/comments -F body=@{file} --silent"),
            "gh api --paginate repos/contoso/rosters/issues/7/comments --jq .[] | select(.body | startswith(\"<!-- enroll-plan -->\")) | .id".to_owned(),
            format!("gh api --method PATCH repos/contoso/rosters/issues/comments/12 -F body=@{file} --silent"),
        ]
    );
}

/// A fake `curl`: GET answers `$FAKE_THREADS`; a body sent with `--data @-` is logged too.
const FAKE_CURL: &str = r#"method=""; prev=""; for a in "$@"; do [ "$prev" = "--request" ] && method="$a"; prev="$a"; done
if [ "$method" = GET ]; then cat "$FAKE_THREADS"; else cat >> "$FAKE_DIR/log"; fi"#;

#[test]
fn azure_devops_comment_is_posted_once_then_edited() {
    let tools = Tools::new(&[("curl", FAKE_CURL)]);
    let dir = tempfile::tempdir().unwrap();
    let comment = dir.path().join("enroll-plan.md");
    std::fs::write(
        &comment,
        "<!-- enroll-plan -->\n## enroll plan\n| a | b |\n",
    )
    .unwrap();
    let threads = dir.path().join("threads.json");
    let env = [
        ("SYSTEM_COLLECTIONURI", "https://dev.azure.com/contoso/"),
        ("SYSTEM_TEAMPROJECT", "Identity"),
        ("BUILD_REPOSITORY_ID", "repo-1"),
        ("SYSTEM_PULLREQUEST_PULLREQUESTID", "42"),
        ("SYSTEM_ACCESSTOKEN", "token-value"),
        ("FAKE_THREADS", threads.to_str().unwrap()),
    ];
    let base = "https://dev.azure.com/contoso/Identity/_apis/git/repositories/repo-1/pullRequests/42/threads";
    let call = |method: &str, url: &str, data: bool| {
        format!(
            "curl --silent --show-error --fail --request {method} --header Authorization: Bearer token-value --header Content-Type: application/json {}{url}",
            if data { "--data @- " } else { "" }
        )
    };
    std::fs::write(&threads, r#"{"value": [{"id": 5, "comments": [{"id": 1, "content": "Please look at Key Users"}]}, {"id": 6, "comments": [{"id": 1, "content": null}]}]}"#).unwrap();
    let output = tools.run(
        "ci/comment-azure",
        &[comment.to_str().unwrap()],
        dir.path(),
        &env,
    );
    assert!(output.status.success(), "{output:?}");
    std::fs::write(&threads, r#"{"value": [{"id": 5, "comments": [{"id": 1, "content": "Please look at Key Users"}]}, {"id": 9, "comments": [{"id": 1, "content": "<!-- enroll-plan -->\nold"}, {"id": 2, "content": "thanks"}]}]}"#).unwrap();
    let output = tools.run(
        "ci/comment-azure",
        &[comment.to_str().unwrap()],
        dir.path(),
        &env,
    );
    assert!(output.status.success(), "{output:?}");
    let log = tools.log();
    let content = "<!-- enroll-plan -->\\n## enroll plan\\n| a | b |\\n";
    assert_eq!(
        log,
        [
            call("GET", &format!("{base}?api-version=7.1"), false),
            call("POST", &format!("{base}?api-version=7.1"), true),
            format!(
                r#"{{"comments":[{{"parentCommentId":0,"content":"{content}","commentType":1}}],"status":1}}"#
            ),
            call("GET", &format!("{base}?api-version=7.1"), false),
            call(
                "PATCH",
                &format!("{base}/9/comments/1?api-version=7.1"),
                true
            ),
            format!(r#"{{"content":"{content}"}}"#),
        ]
    );
}

#[test]
fn upload_sends_what_a_merge_changed_and_deletes_what_it_removed() {
    let tools = Tools::new(&[("az", "")]);
    let repo = tempfile::tempdir().unwrap();
    let git = |args: &[&str]| {
        let output = Command::new("git")
            .args([
                "-c",
                "user.name=t",
                "-c",
                "user.email=t@example.com",
                "-c",
                "commit.gpgsign=false",
            ])
            .args(args)
            .current_dir(repo.path())
            .output()
            .unwrap();
        assert!(output.status.success(), "git {args:?}: {output:?}");
        String::from_utf8(output.stdout).unwrap().trim().to_owned()
    };
    let write = |path: &str, text: &str| {
        let path = repo.path().join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    };
    git(&["init", "-q", "-b", "main"]);
    write("rosters/Key Users.csv", "a;a@contoso.com\n");
    write("rosters/Read Only.csv", "b;b@contoso.com\n");
    write("rosters/Projects/Alpha.csv", "c;c@contoso.com\n");
    write("README.md", "rosters\n");
    git(&["add", "-A"]);
    git(&["commit", "-q", "-m", "first"]);
    let base = git(&["rev-parse", "HEAD"]);
    write(
        "rosters/Key Users.csv",
        "a;a@contoso.com\nd;d@contoso.com\n",
    );
    std::fs::remove_file(repo.path().join("rosters/Read Only.csv")).unwrap();
    git(&[
        "mv",
        "rosters/Projects/Alpha.csv",
        "rosters/Projects/Alpha - Manager.csv",
    ]);
    write("rosters/access-packages.json", "{}\n");
    write("README.md", "rosters, changed\n");
    git(&["add", "-A"]);
    git(&["commit", "-q", "-m", "second"]);
    let head = git(&["rev-parse", "HEAD"]);
    let output = tools.run(
        "ci/upload",
        &[&base, &head, "rosters", "enrollstore", "rosters"],
        repo.path(),
        &[],
    );
    assert!(output.status.success(), "{output:?}");
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        "ci/upload: 3 uploaded, 2 deleted in rosters"
    );
    let az = |verb: &str, name: &str| match verb {
        "delete" => format!(
            "az storage blob delete --auth-mode login --account-name enrollstore --container-name rosters --name {name} --output none"
        ),
        _ => format!(
            "az storage blob upload --auth-mode login --account-name enrollstore --container-name rosters --name {name} --file rosters/{name} --overwrite --output none"
        ),
    };
    assert_eq!(
        tools.log(),
        [
            az("upload", "Key Users.csv"),
            az("upload", "Projects/Alpha - Manager.csv"),
            az("delete", "Projects/Alpha.csv"),
            az("delete", "Read Only.csv"),
            az("upload", "access-packages.json"),
        ]
    );
    // A branch's first push has no base: the whole folder goes up; no folder, nothing.
    let output = tools.run(
        "ci/upload",
        &[
            "0000000000000000000000000000000000000000",
            &head,
            "rosters",
            "enrollstore",
            "rosters",
        ],
        repo.path(),
        &[],
    );
    assert!(output.status.success());
    let output = tools.run(
        "ci/upload",
        &[&base, &head, "manifests", "enrollstore", "manifests"],
        repo.path(),
        &[],
    );
    assert!(output.status.success());
    assert_eq!(
        tools.log()[5..],
        ["az storage blob upload-batch --auth-mode login --account-name enrollstore --destination rosters --source rosters --overwrite --output none".to_owned()]
    );
}
