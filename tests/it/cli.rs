//! The `enroll` binary as a user runs it: exit codes, text and JSON output, golden plans.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn data(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(path)
}

fn enroll(args: &[&str]) -> Output {
    Command::new(crate::enroll_binary())
        .args(args)
        .env_remove("ENROLL_CATALOG")
        .env_remove("ENROLL_TENANT")
        .env_remove("ENROLL_APP_ID")
        .env_remove("ENROLL_ROLE_GROUP_PATTERN")
        .env_remove("ENROLL_REMOVAL_DELAY")
        .env_remove("ENROLL_PROTECTED_PEOPLE")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("enroll runs")
}

/// The (line, column, code) of each problem in a JSON report.
fn places(problems: &Value) -> Vec<(u64, u64, &str)> {
    problems
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["line"].as_u64().unwrap(),
                e["column"].as_u64().unwrap(),
                e["code"].as_str().unwrap(),
            )
        })
        .collect()
}

fn json(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|error| {
        panic!(
            "stdout is not JSON ({error}): {}",
            String::from_utf8_lossy(&output.stdout)
        )
    })
}

#[test]
fn validate_passes_good_files_with_exit_0() {
    let output = enroll(&[
        "validate",
        "tests/data/rosters/utf8-semicolon.csv",
        "tests/data/rosters/utf16le-bom-tab.csv",
    ]);
    assert_eq!(output.status.code(), Some(0));
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("2 files: 2 valid, 0 invalid"), "{text}");
}

#[test]
fn validate_reports_every_problem_as_json_and_exits_1() {
    let output = enroll(&["validate", "--format", "json", "tests/data/rosters"]);
    assert_eq!(output.status.code(), Some(1));
    let report = json(&output);
    let files = report["files"].as_array().unwrap();
    assert_eq!(files.len(), 20, "every *.csv below the folder");
    let strange = files
        .iter()
        .find(|f| f["path"].as_str().unwrap().ends_with("strange.csv"))
        .unwrap();
    assert_eq!(strange["valid"], false);
    assert_eq!(strange["rows"], 6);
    let errors = places(&strange["errors"]);
    assert_eq!(
        errors,
        [
            (2, 2, "missing_email"),
            (3, 2, "invalid_email"),
            (4, 4, "too_many_columns"),
            (5, 2, "invalid_email")
        ]
    );
    assert_eq!(strange["warnings"][0]["code"], "duplicate_email");
    assert_eq!(strange["warnings"][0]["line"], 7);
    assert!(strange["errors"][0]["message"].as_str().unwrap().len() > 10);
    let no_bom = files
        .iter()
        .find(|f| {
            f["path"]
                .as_str()
                .unwrap()
                .ends_with("utf16-without-bom.csv")
        })
        .unwrap();
    assert_eq!(no_bom["errors"][0]["code"], "unreadable_encoding");
    assert_eq!(no_bom["errors"][0]["line"], Value::Null);
}

#[test]
fn validate_exits_2_on_missing_paths_and_bad_usage() {
    let missing = enroll(&["validate", "tests/data/no-such-folder"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no-such-folder"));
    assert_eq!(enroll(&["validate"]).status.code(), Some(2));
    assert_eq!(
        enroll(&["validate", "--format", "yaml", "x.csv"])
            .status
            .code(),
        Some(2)
    );
}

fn golden_plan(extra: &[&str]) -> Output {
    let rosters = data("golden/rosters");
    let tenant = data("golden/tenant.json");
    let mut args = vec![
        "plan",
        rosters.to_str().unwrap(),
        "--tenant",
        tenant.to_str().unwrap(),
        "--format",
        "json",
    ];
    args.extend_from_slice(extra);
    enroll(&args)
}

/// Golden test: the plan for a small tenant, reviewed like code when it changes.
/// Regenerate with `UPDATE_GOLDEN=1 cargo test -p enroll-tests --test it golden`.
#[test]
fn golden_plan_matches_the_reviewed_file() {
    let output = golden_plan(&[]);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let expected_path = data("golden/plan.json");
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&expected_path, &output.stdout).unwrap();
    }
    let expected: Value = serde_json::from_slice(&std::fs::read(&expected_path).unwrap()).unwrap();
    assert_eq!(json(&output), expected);
}

#[test]
fn plan_json_has_the_documented_shape() {
    let plan = json(&golden_plan(&[]));
    let alpha = &plan["packages"][0];
    assert_eq!(alpha["roster"], "Projects/Project Alpha - Manager.csv");
    assert_eq!(alpha["accessPackage"]["id"], "pkg-alpha-manager");
    assert_eq!(alpha["accessPackage"]["assignmentPolicyId"], "pol-direct");
    assert_eq!(
        alpha["invite"],
        serde_json::json!([{"email": "fay@tailspin.be", "displayName": "Fay New"}])
    );
    let assigned: Vec<&str> = alpha["assign"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["userId"].as_str().unwrap())
        .collect();
    assert_eq!(assigned, ["u-bob", "u-cyd"]);
    assert_eq!(
        alpha["remove"],
        serde_json::json!([{"email": "dee@contoso.com", "userId": "u-dee", "assignmentId": "as-dee"}])
    );
    assert_eq!(alpha["unchanged"], 2);
    assert_eq!(alpha["blocked"], Value::Null);
    // The lower-case file name still finds "Key Users" in the Projects catalog, not Finance.
    assert_eq!(plan["packages"][1]["accessPackage"]["id"], "pkg-key-users");
    assert_eq!(plan["errors"], serde_json::json!([]));
}

#[test]
fn plan_text_is_a_readable_summary() {
    let rosters = data("golden/rosters");
    let tenant = data("golden/tenant.json");
    let output = enroll(&[
        "plan",
        rosters.to_str().unwrap(),
        "--tenant",
        tenant.to_str().unwrap(),
    ]);
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        text.contains("Project Alpha - Manager  [pkg-alpha-manager]"),
        "{text}"
    );
    assert!(
        text.contains("+ invite  Fay New <fay@tailspin.be>"),
        "{text}"
    );
    assert!(
        text.contains("- remove  dee@contoso.com (assignment as-dee)"),
        "{text}"
    );
    assert!(
        text.contains("2 packages: invite 1, assign 2, remove 1, unchanged 3; 0 blocked"),
        "{text}"
    );
}

#[test]
fn a_blocked_package_exits_1_and_the_override_with_who_and_why_exits_0() {
    let strict = ["--max-removals", "0", "--max-removal-percent", "10"];
    let blocked = golden_plan(&strict);
    assert_eq!(blocked.status.code(), Some(1));
    let plan = json(&blocked);
    assert_eq!(plan["packages"][0]["blocked"], "removal_guard");
    assert_eq!(
        plan["packages"][0]["guards"],
        serde_json::json!([{"code": "removal_guard", "count": 1, "members": 2, "maxCount": 0, "maxPercent": 10.0, "overridden": false}])
    );
    // An override needs who and why; without them it is a usage error, and nothing is planned.
    let unexplained = golden_plan(&[&strict[..], &["--allow-removals"]].concat());
    assert_eq!(unexplained.status.code(), Some(2));
    assert!(unexplained.stdout.is_empty());
    let error = String::from_utf8_lossy(&unexplained.stderr);
    assert!(
        error.contains("need --override-by and --override-reason"),
        "{error}"
    );
    let allowed = golden_plan(
        &[
            &strict[..],
            &[
                "--allow-removals",
                "--override-by",
                "alice@contoso.com",
                "--override-reason",
                "Dee moved to Finance",
            ],
        ]
        .concat(),
    );
    assert_eq!(allowed.status.code(), Some(0));
    let plan = json(&allowed);
    assert_eq!(plan["allowRemovals"], true);
    assert_eq!(
        plan["override"],
        serde_json::json!({"by": "alice@contoso.com", "reason": "Dee moved to Finance"})
    );
    let alpha = &plan["packages"][0];
    assert_eq!(alpha["overridden"], "removal_guard");
    assert_eq!(alpha["override"]["by"], "alice@contoso.com");
    assert_eq!(alpha["guards"][0]["overridden"], true);
}

#[test]
fn plan_shows_when_removals_happen_and_keeps_protected_people() {
    let delayed = golden_plan(&["--removal-delay", "24h"]);
    assert_eq!(delayed.status.code(), Some(0));
    let plan = json(&delayed);
    let not_before = plan["packages"][0]["remove"][0]["notBefore"]
        .as_str()
        .unwrap()
        .to_owned();
    // RFC 3339, about a day from now.
    assert_eq!(
        not_before.len(),
        "2026-11-27T06:01:11Z".len(),
        "{not_before}"
    );
    assert!(not_before.ends_with('Z'), "{not_before}");
    let protected = golden_plan(&["--protected-people", "DEE@contoso.com"]);
    let plan = json(&protected);
    let alpha = &plan["packages"][0];
    assert_eq!(alpha["remove"], serde_json::json!([]));
    assert_eq!(
        alpha["kept"],
        serde_json::json!([{"email": "dee@contoso.com", "userId": "u-dee", "assignmentId": "as-dee", "reason": "protected"}])
    );
    let bad = golden_plan(&["--removal-delay", "2 weeks"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("--removal-delay is not valid"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
}

#[test]
fn an_invalid_roster_exits_1_and_plans_nothing_for_it() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("Key Users.csv"),
        "Bob;bob@fabrikam.com\nBroken;nope\n",
    )
    .unwrap();
    let tenant = data("golden/tenant.json");
    let output = enroll(&[
        "plan",
        dir.path().to_str().unwrap(),
        "--tenant",
        tenant.to_str().unwrap(),
        "--catalog",
        "Projects",
        "--format",
        "json",
    ]);
    assert_eq!(output.status.code(), Some(1));
    let plan = json(&output);
    assert_eq!(plan["packages"], serde_json::json!([]));
    assert_eq!(plan["errors"][0]["code"], "invalid_email");
    assert_eq!(plan["errors"][0]["line"], 2);
    assert_eq!(plan["errors"][0]["roster"], "Key Users.csv");
}

#[test]
fn a_roster_matching_no_or_several_packages_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("Key Users.csv"), "Bob;bob@fabrikam.com\n").unwrap();
    std::fs::write(
        dir.path().join("Nobody Has This.csv"),
        "Bob;bob@fabrikam.com\n",
    )
    .unwrap();
    let tenant = data("golden/tenant.json");
    let output = enroll(&[
        "plan",
        dir.path().to_str().unwrap(),
        "--tenant",
        tenant.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert_eq!(output.status.code(), Some(1));
    let plan = json(&output);
    let codes: Vec<&str> = plan["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["ambiguous_package", "no_matching_package"]);
    // The mapping file pins the ambiguous one.
    std::fs::write(
        dir.path().join("access-packages.json"),
        r#"{"accessPackages": {"Key Users.csv": "pkg-key-users-finance"}}"#,
    )
    .unwrap();
    let output = enroll(&[
        "plan",
        dir.path().to_str().unwrap(),
        "--tenant",
        tenant.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert_eq!(
        json(&output)["packages"][0]["accessPackage"]["id"],
        "pkg-key-users-finance"
    );
}

#[test]
fn the_example_tenant_plans_cleanly() {
    let output = enroll(&[
        "plan",
        "examples/rosters",
        "--tenant",
        "examples/tenant.json",
        "--format",
        "json",
    ]);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let plan = json(&output);
    let packages = plan["packages"].as_array().unwrap();
    assert_eq!(packages.len(), 62);
    let count = |key: &str| {
        packages
            .iter()
            .map(|p| p[key].as_array().unwrap().len())
            .sum::<usize>()
    };
    assert!(count("invite") > 0 && count("assign") > 0 && count("remove") > 0);
}

#[test]
fn a_broken_snapshot_is_a_usage_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let snapshot = dir.path().join("tenant.json");
    std::fs::write(&snapshot, "{\"users\": [}").unwrap();
    let output = enroll(&[
        "plan",
        "examples/rosters",
        "--tenant",
        snapshot.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("tenant.json is not a valid tenant snapshot"),
        "{stderr}"
    );
}

/// `enroll snapshot --out OUT --catalog "Contoso Projects" EXTRA…` against `sim`.
async fn snapshot_from(sim: &enroll_sim::SimHandle, out: &Path, extra: &[&str]) -> Output {
    let base = sim.base_url().to_owned();
    let mut args = vec![
        "snapshot".to_owned(),
        "--out".to_owned(),
        out.to_str().unwrap().to_owned(),
        "--catalog".to_owned(),
        "Contoso Projects".to_owned(),
    ];
    args.extend(extra.iter().map(|a| (*a).to_owned()));
    tokio::task::spawn_blocking(move || {
        Command::new(crate::enroll_binary())
            .args(&args)
            // The tenant by a domain of its users' principal names, as Entra takes it.
            .env("ENROLL_TENANT_ID", "contoso.onmicrosoft.com")
            .env("ENROLL_CLIENT_ID", "enroll-sim-client")
            .env("ENROLL_CLIENT_SECRET", "enroll-sim-secret")
            .env("ENROLL_GRAPH_URL", format!("{base}/v1.0"))
            .env("ENROLL_AUTHORITY_URL", &base)
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}

/// `enroll snapshot --rosters` reads only the users the rosters name and the packages'
/// holders: 300 users nobody names are left out, and the plan is the same as against the
/// whole tenant.
#[tokio::test(flavor = "multi_thread")]
async fn a_snapshot_for_rosters_holds_their_people_and_the_holders_and_plans_the_same() {
    let mut original: enroll_core::tenant::TenantSnapshot =
        serde_json::from_slice(&std::fs::read(data("../../examples/tenant.json")).unwrap())
            .unwrap();
    for i in 0..300 {
        original.users.push(enroll_core::tenant::User {
            id: format!("bystander-{i}"),
            mail: Some(format!("bystander{i}@contoso.com")),
            user_principal_name: Some(format!("bystander{i}@contoso.com")),
            user_type: Some("Member".into()),
            ..enroll_core::tenant::User::default()
        });
    }
    let rosters = enroll_store::local::read_rosters(
        &data("../../examples/rosters"),
        enroll_core::roster::Limits::default(),
    )
    .unwrap();
    let named: Vec<&str> = rosters
        .iter()
        .flat_map(|source| source.roster.people.iter())
        .map(|person| person.email.as_str())
        .collect();
    let mut wanted: Vec<&str> = original
        .users
        .iter()
        .filter(|user| {
            named.iter().any(|email| user.answers_to(email))
                || original.assignments.iter().any(|a| {
                    a.target.as_ref().and_then(|t| t.object_id.as_deref()) == Some(&user.id)
                })
        })
        .map(|user| user.id.as_str())
        .collect();
    wanted.sort_unstable();
    let sim = enroll_sim::start(enroll_sim::SimConfig::default(), original.clone())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("snapshot.json");
    let written = snapshot_from(
        &sim,
        &out,
        &[
            "--rosters",
            data("../../examples/rosters").to_str().unwrap(),
        ],
    )
    .await;
    assert_eq!(written.status.code(), Some(0), "{}", stderr(&written));
    let snapshot: enroll_core::tenant::TenantSnapshot =
        serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    let users: Vec<&str> = snapshot.users.iter().map(|u| u.id.as_str()).collect();
    assert_eq!(users, wanted, "the rosters' people and the holders, by id");
    // 345 of the example's 385 users, and none of the 300 others.
    assert_eq!((original.users.len(), users.len()), (685, 345));
    assert_same_plans(&out);
    sim.shutdown().await;
}

/// Planning the example rosters against `snapshot` gives the plan they get against the
/// example tenant itself.
fn assert_same_plans(snapshot: &Path) {
    let plan_with = |tenant: &str| {
        json(&enroll(&[
            "plan",
            "examples/rosters",
            "--tenant",
            tenant,
            "--format",
            "json",
        ]))
    };
    let from_graph = plan_with(snapshot.to_str().unwrap());
    let from_file = plan_with("examples/tenant.json");
    assert_eq!(from_graph["packages"].as_array().unwrap().len(), 62);
    for (a, b) in from_graph["packages"]
        .as_array()
        .unwrap()
        .iter()
        .zip(from_file["packages"].as_array().unwrap())
    {
        for key in [
            "accessPackage",
            "invite",
            "assign",
            "remove",
            "unchanged",
            "blocked",
        ] {
            assert_eq!(a[key], b[key], "{} {key}", a["roster"]);
        }
    }
}

/// `enroll snapshot` writes the tenant from Graph (here the simulator serving the example),
/// and planning against that snapshot gives the same plan as against the original.
#[tokio::test(flavor = "multi_thread")]
async fn snapshot_from_graph_plans_like_the_original() {
    let original: enroll_core::tenant::TenantSnapshot =
        serde_json::from_slice(&std::fs::read(data("../../examples/tenant.json")).unwrap())
            .unwrap();
    let sim = enroll_sim::start(enroll_sim::SimConfig::default(), original)
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("snapshot.json");
    let written = snapshot_from(&sim, &out, &[]).await;
    let stderr = String::from_utf8_lossy(&written.stderr).into_owned();
    assert_eq!(written.status.code(), Some(0), "{stderr}");
    assert!(
        !stderr.contains("enroll-sim-secret"),
        "the secret must not be printed"
    );
    assert!(stderr.contains("62 access packages"), "{stderr}");
    assert_same_plans(&out);
    // Rosters in a catalog folder match against the snapshot too: it carries each package's catalog.
    let foldered = tempfile::tempdir().unwrap();
    let catalog_dir = foldered.path().join("Contoso Projects");
    std::fs::create_dir(&catalog_dir).unwrap();
    for entry in std::fs::read_dir(data("../../examples/rosters")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), catalog_dir.join(entry.file_name())).unwrap();
    }
    let by_folder = json(&enroll(&[
        "plan",
        foldered.path().to_str().unwrap(),
        "--tenant",
        out.to_str().unwrap(),
        "--format",
        "json",
    ]));
    assert_eq!(
        by_folder["errors"],
        serde_json::json!([]),
        "{}",
        by_folder["errors"]
    );
    assert_eq!(by_folder["packages"].as_array().unwrap().len(), 62);
    sim.shutdown().await;
}

#[test]
fn snapshot_without_credentials_says_what_to_set() {
    let output = Command::new(crate::enroll_binary())
        .args(["snapshot", "--out", "/dev/null"])
        .env_clear()
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("ENROLL_TENANT_ID is not set"));
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn example_app_id() -> String {
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(data("../../examples/app-roles.json")).unwrap())
            .unwrap();
    manifest["appId"].as_str().unwrap().to_owned()
}

#[test]
fn roles_plan_shows_the_examples_drift_and_exits_0() {
    let output = enroll(&[
        "roles",
        "plan",
        "examples/app-roles.json",
        "--tenant",
        "examples/tenant.json",
        "--format",
        "json",
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let plan = json(&output);
    assert_eq!(plan["appRoles"]["add"].as_array().unwrap().len(), 2);
    assert_eq!(
        plan["appRoles"]["change"][0]["previousValue"],
        "Sierra.Lead"
    );
    assert_eq!(plan["appRoles"]["change"][0]["disableFirst"], true);
    let steps: Vec<&str> = plan["updates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["step"].as_str().unwrap())
        .collect();
    assert_eq!(steps, ["disable", "update"]);
    assert_eq!(plan["updates"][1]["appRoles"].as_array().unwrap().len(), 62);
    assert_eq!(plan["unassign"].as_array().unwrap().len(), 1);
    assert_eq!(plan["unmanaged"].as_array().unwrap().len(), 2);
    let codes: Vec<&str> = plan["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["missing_id", "missing_id", "adopted_id"]);
    let text = enroll(&[
        "roles",
        "plan",
        "examples/app-roles.json",
        "--tenant",
        "examples/tenant.json",
    ]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("~ change    Sierra.Lead -> Sierra.Manager")
            && text.contains("disabled first"),
        "{text}"
    );
}

#[test]
fn roles_plan_refuses_an_invalid_manifest_with_exit_1_and_places() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("bad.json");
    std::fs::write(
        &manifest,
        "[\n  {\"value\": \"Has space\", \"allowedMemberTypes\": [\"User\"]},\n  {\"value\": \"x\"}\n]\n",
    )
    .unwrap();
    let output = enroll(&[
        "roles",
        "plan",
        manifest.to_str().unwrap(),
        "--tenant",
        "examples/tenant.json",
        "--app-id",
        &example_app_id(),
        "--format",
        "json",
    ]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let report = json(&output);
    let errors = places(&report["errors"]);
    assert_eq!(
        errors,
        [
            (2, 4, "value_has_spaces"),
            (3, 3, "missing_allowed_member_types")
        ]
    );
    let missing = enroll(&[
        "roles",
        "plan",
        "nowhere.json",
        "--tenant",
        "examples/tenant.json",
    ]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(
        stderr(&missing).contains("nowhere.json"),
        "{}",
        stderr(&missing)
    );
}

#[test]
fn roles_apply_brings_the_example_in_line_and_a_second_plan_is_empty() {
    let dir = tempfile::tempdir().unwrap();
    let after = dir.path().join("after.json");
    let reports = dir.path().join("reports");
    let output = enroll(&[
        "roles",
        "apply",
        "examples/app-roles.json",
        "--tenant",
        "examples/tenant.json",
        "--reports",
        reports.to_str().unwrap(),
        "--out",
        after.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        text.contains("done 9, already done 0, skipped 0, failed 0")
            && text.contains("now match the manifest"),
        "{text}"
    );
    let audit = std::fs::read_to_string(reports.join("audit.jsonl")).unwrap();
    assert_eq!(audit.lines().count(), 10, "the plan and nine changes");
    assert!(audit.contains("\"action\":\"updateAppRoles\""));
    let again = enroll(&[
        "roles",
        "plan",
        "examples/app-roles.json",
        "--tenant",
        after.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert_eq!(again.status.code(), Some(0));
    let plan = json(&again);
    for list in ["updates", "assign", "unassign"] {
        assert!(
            plan[list].as_array().unwrap().is_empty(),
            "{list}: {}",
            plan[list]
        );
    }
}

/// Plans an exported folder against `tenant` and checks that nothing would change: exit 0,
/// no roster errors, and no package with anyone to invite, assign or remove. Returns the
/// packages.
fn plan_without_changes(export: &Path, tenant: &str) -> Vec<Value> {
    let output = enroll(&[
        "plan",
        export.to_str().unwrap(),
        "--tenant",
        tenant,
        "--format",
        "json",
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let plan = json(&output);
    assert!(
        plan["errors"].as_array().unwrap().is_empty(),
        "{}",
        plan["errors"]
    );
    let packages = plan["packages"].as_array().unwrap().clone();
    for package in &packages {
        for list in ["invite", "assign", "remove"] {
            assert!(
                package[list].as_array().unwrap().is_empty(),
                "{} {list}: {}",
                package["roster"],
                package[list]
            );
        }
    }
    packages
}

/// An adopting tenant starts from what it has: export, then plan rosters and roles against
/// the same tenant, and nothing changes.
#[test]
fn an_export_plans_without_changes_for_rosters_and_roles() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("export");
    let app_id = example_app_id();
    let output = enroll(&[
        "export",
        "--tenant",
        "examples/tenant.json",
        "--out",
        out.to_str().unwrap(),
        "--app-id",
        &app_id,
        "--format",
        "json",
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let summary = json(&output);
    assert_eq!(summary["rosters"], 62);
    assert_eq!(summary["roles"], 61);
    assert!(
        summary["warnings"].as_array().unwrap().iter().any(|w| w
            .as_str()
            .unwrap()
            .contains("holds roles `Bravo.Approver` and `Bravo.Manager`")),
        "{}",
        summary["warnings"]
    );
    let roster = std::fs::read_to_string(out.join("Contoso Projects/Key Users.csv")).unwrap();
    assert!(roster.starts_with("DisplayName;Email\n"), "{roster}");

    let packages = plan_without_changes(&out, "examples/tenant.json");
    assert_eq!(packages.len(), 62);
    let unchanged: u64 = packages
        .iter()
        .map(|p| p["unchanged"].as_u64().unwrap())
        .sum();
    assert_eq!(unchanged, 750, "every assignment of the example");

    let roles = enroll(&[
        "roles",
        "plan",
        out.join("app-roles.json").to_str().unwrap(),
        "--tenant",
        "examples/tenant.json",
        "--format",
        "json",
    ]);
    assert_eq!(roles.status.code(), Some(0), "{}", stderr(&roles));
    let plan = json(&roles);
    for list in ["updates", "assign", "unassign"] {
        assert!(
            plan[list].as_array().unwrap().is_empty(),
            "{list}: {}",
            plan[list]
        );
    }
    assert_eq!(plan["appRoles"]["unchanged"], 61);
    assert!(
        plan["warnings"].as_array().unwrap().is_empty(),
        "every id is written"
    );
}

/// The golden rosters in a folder of their own, with `edit` applied to one file's text.
fn golden_rosters_with(file: &str, edit: impl Fn(&str) -> String) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let projects = dir.path().join("Projects");
    std::fs::create_dir(&projects).unwrap();
    for entry in std::fs::read_dir(data("golden/rosters/Projects")).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let name = path.file_name().unwrap();
        let text = if name == file { edit(&text) } else { text };
        std::fs::write(projects.join(name), text).unwrap();
    }
    dir
}

/// The issue's case: a quote left open in the third column used to swallow every later
/// row, and the people in them were planned for removal.
#[test]
fn a_roster_with_an_unclosed_quote_in_column_3_is_rejected_and_removes_nobody() {
    let dir = golden_rosters_with("Project Alpha - Manager.csv", |text| {
        text.replace(
            "Ann Member;ANN@contoso.com;Project Alpha | Manager",
            "Ann Member;ANN@contoso.com;\"Project Alpha | Manager",
        )
    });
    let tenant = data("golden/tenant.json");
    let args = |format: &'static str| {
        enroll(&[
            "plan",
            dir.path().to_str().unwrap(),
            "--tenant",
            tenant.to_str().unwrap(),
            "--format",
            format,
        ])
    };
    let output = args("json");
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let plan = json(&output);
    let packages = plan["packages"].as_array().unwrap();
    let planned: Vec<&str> = packages
        .iter()
        .map(|p| p["roster"].as_str().unwrap())
        .collect();
    assert_eq!(
        planned,
        ["Projects/key users.csv"],
        "the broken roster is not planned"
    );
    let removals: usize = packages
        .iter()
        .map(|p| p["remove"].as_array().unwrap().len())
        .sum();
    assert_eq!(removals, 0);
    assert_eq!(places(&plan["errors"]), [(3, 3, "malformed_csv")]);
    assert_eq!(
        plan["errors"][0]["roster"],
        "Projects/Project Alpha - Manager.csv"
    );
    let text = String::from_utf8_lossy(&args("text").stdout).into_owned();
    assert!(
        text.contains("Rosters that were not planned (nothing changes for them):\n  Projects/Project Alpha - Manager.csv: line 3, column 3: a quote opens column 3 here and is never closed"),
        "{text}"
    );
}

/// A rosters folder with one good roster, and beside it a file that must never be shown.
#[cfg(unix)]
fn rosters_beside_a_secret() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let rosters = dir.path().join("rosters");
    std::fs::create_dir(&rosters).unwrap();
    std::fs::write(rosters.join("Key Users.csv"), "Bob;bob@fabrikam.com\n").unwrap();
    std::fs::write(
        dir.path().join("runner-secret.txt"),
        "ghp_secretToken;not-an-address\n",
    )
    .unwrap();
    (dir, rosters)
}

/// Runs `enroll` and fails (instead of hanging) if it does not finish.
#[cfg(unix)]
fn enroll_without_hanging(args: &[&str]) -> Output {
    let mut child = Command::new(crate::enroll_binary())
        .args(args)
        .env_remove("ENROLL_CATALOG")
        .env_remove("ENROLL_TENANT")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    for _ in 0..1200 {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    child.kill().unwrap();
    panic!("enroll {args:?} did not finish: it is waiting on a file it should have refused");
}

#[cfg(unix)]
#[test]
fn plan_refuses_a_roster_that_links_out_of_the_folder_and_never_shows_its_target() {
    let (dir, rosters) = rosters_beside_a_secret();
    std::os::unix::fs::symlink(
        dir.path().join("runner-secret.txt"),
        rosters.join("Leak.csv"),
    )
    .unwrap();
    let tenant = data("golden/tenant.json");
    for args in [
        vec![
            "plan",
            rosters.to_str().unwrap(),
            "--tenant",
            tenant.to_str().unwrap(),
        ],
        vec!["validate", rosters.to_str().unwrap()],
        vec!["validate", rosters.join("Leak.csv").to_str().unwrap()],
    ] {
        let output = enroll(&args);
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        let err = stderr(&output);
        assert!(err.contains("Leak.csv is a symbolic link"), "{err}");
        let everything = format!("{err}{}", String::from_utf8_lossy(&output.stdout));
        assert!(!everything.contains("ghp_secretToken"), "{everything}");
    }
}

#[cfg(unix)]
#[test]
fn validate_refuses_a_fifo_without_waiting_on_it() {
    let (_dir, rosters) = rosters_beside_a_secret();
    let fifo = rosters.join("Pipe.csv");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    for path in [&rosters, &fifo] {
        let output = enroll_without_hanging(&["validate", path.to_str().unwrap()]);
        assert_eq!(output.status.code(), Some(2));
        let err = stderr(&output);
        assert!(
            err.contains("Pipe.csv is a FIFO (named pipe), not a regular file"),
            "{err}"
        );
    }
}

#[cfg(unix)]
#[test]
fn validate_refuses_dev_zero_named_or_linked_without_reading_it() {
    let (_dir, rosters) = rosters_beside_a_secret();
    std::os::unix::fs::symlink("/dev/zero", rosters.join("Zero.csv")).unwrap();
    let linked = enroll_without_hanging(&["validate", rosters.to_str().unwrap()]);
    assert_eq!(linked.status.code(), Some(2));
    assert!(
        stderr(&linked).contains("Zero.csv is a symbolic link"),
        "{}",
        stderr(&linked)
    );
    let named = enroll_without_hanging(&["validate", "/dev/zero"]);
    assert_eq!(named.status.code(), Some(2));
    assert!(
        stderr(&named).contains("/dev/zero is a character device, not a regular file"),
        "{}",
        stderr(&named)
    );
}

#[cfg(unix)]
#[test]
fn plan_refuses_a_folder_named_like_a_roster() {
    let (_dir, rosters) = rosters_beside_a_secret();
    std::fs::create_dir(rosters.join("Team.csv")).unwrap();
    let tenant = data("golden/tenant.json");
    let output = enroll(&[
        "plan",
        rosters.to_str().unwrap(),
        "--tenant",
        tenant.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("Team.csv is a folder, not a regular file"),
        "{}",
        stderr(&output)
    );
    assert!(output.stdout.is_empty(), "nothing is planned");
}

#[test]
fn validate_reports_an_oversized_roster_as_too_large_without_reading_it() {
    let dir = tempfile::tempdir().unwrap();
    let huge = dir.path().join("Huge.csv");
    // Sparse: reading it whole would take 64 GiB of memory.
    std::fs::File::create(&huge)
        .unwrap()
        .set_len(64 << 30)
        .unwrap();
    let output = enroll(&["validate", "--format", "json", huge.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let report = json(&output);
    let file = &report["files"][0];
    assert_eq!(file["valid"], false);
    assert_eq!(file["errors"].as_array().unwrap().len(), 1);
    assert_eq!(file["errors"][0]["code"], "too_large");
    assert_eq!(
        file["errors"][0]["message"],
        "the file is 68719476736 bytes; a roster may be at most 16777216 bytes (16 MiB)"
    );
}

/// Export guards formulas in CSV cells and the roster reader takes the guard off again, so
/// an export of a tenant with hostile names still plans without changes; every text output
/// shows control characters as escapes.
#[test]
fn hostile_names_survive_export_plan_and_apply_as_text() {
    let dir = tempfile::tempdir().unwrap();
    let mut tenant: Value =
        serde_json::from_str(&std::fs::read_to_string(data("golden/tenant.json")).unwrap())
            .unwrap();
    let names = [
        ("u-ann", "=HYPERLINK(\"https://evil.example\",\"Ann\")"),
        ("u-dee", "@SUM(1+1)\u{1b}[2J"),
        ("u-bob", "-Bob <img src=x>"),
    ];
    for (id, name) in names {
        let user = tenant["users"]
            .as_array_mut()
            .unwrap()
            .iter_mut()
            .find(|u| u["id"] == id)
            .unwrap();
        user["displayName"] = Value::from(name);
    }
    tenant["accessPackages"][0]["displayName"] = Value::from("Project Alpha\u{1b}[31m - Manager");
    let tenant_path = dir.path().join("tenant.json");
    std::fs::write(&tenant_path, tenant.to_string()).unwrap();
    let tenant_arg = tenant_path.to_str().unwrap();
    let out = dir.path().join("export");

    let export = enroll(&[
        "export",
        "--tenant",
        tenant_arg,
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(export.status.code(), Some(0), "{}", stderr(&export));
    let alpha =
        std::fs::read_to_string(out.join("Projects/Project Alpha_[31m - Manager.csv")).unwrap();
    assert_eq!(
        alpha,
        "DisplayName;Email\n\
         \"'=HYPERLINK(\"\"https://evil.example\"\",\"\"Ann\"\")\";ann@contoso.com\n\
         \"'@SUM(1+1)\u{1b}[2J\";dee@contoso.com\n\
         Eve Pending;eve@contoso.com\n"
    );
    let read = enroll_core::roster::parse(
        "alpha.csv",
        alpha.as_bytes(),
        enroll_core::roster::Limits::default(),
    );
    let read_names: Vec<&str> = read
        .people
        .iter()
        .map(|p| p.display_name.as_str())
        .collect();
    assert_eq!(
        read_names,
        [names[0].1, names[1].1, "Eve Pending"],
        "the same people"
    );

    assert_eq!(plan_without_changes(&out, tenant_arg).len(), 3);

    let text = enroll(&["plan", out.to_str().unwrap(), "--tenant", tenant_arg]);
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(!text.contains('\u{1b}'), "{text:?}");
    assert!(
        text.contains("Project Alpha\\u{1b}[31m - Manager  [pkg-alpha-manager]\n"),
        "{text}"
    );
    let reports = dir.path().join("reports");
    let apply = enroll(&[
        "apply",
        out.to_str().unwrap(),
        "--tenant",
        tenant_arg,
        "--dry-run",
        "--reports",
        reports.to_str().unwrap(),
    ]);
    assert_eq!(apply.status.code(), Some(0), "{}", stderr(&apply));
    let summary = String::from_utf8(apply.stdout).unwrap();
    assert!(!summary.contains('\u{1b}'), "{summary:?}");
    assert!(
        summary.contains(
            "\nProject Alpha\\u{1b}[31m - Manager        0       0       0         3  planned\n"
        ),
        "{summary}"
    );
    let run = std::fs::read_dir(&reports)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .find(|path| path.is_dir())
        .unwrap();
    let markdown =
        std::fs::read_to_string(run.join("Projects__Project Alpha_[31m - Manager.md")).unwrap();
    assert!(
        markdown.starts_with("# Project Alpha\\\\u{1b}\\[31m - Manager\n"),
        "{markdown}"
    );
}

/// `enroll apply` of one rosters folder against the golden tenant (served in process).
fn apply(rosters: &[(&str, &str)], extra: &[&str]) -> (Output, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in rosters {
        let path = dir.path().join("rosters").join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    let tenant = data("golden/tenant.json");
    let mut args = vec![
        "apply".to_owned(),
        dir.path().join("rosters").to_str().unwrap().to_owned(),
        "--tenant".to_owned(),
        tenant.to_str().unwrap().to_owned(),
        "--reports".to_owned(),
        dir.path().join("reports").to_str().unwrap().to_owned(),
    ];
    args.extend(extra.iter().map(|a| (*a).to_owned()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    (enroll(&args), dir)
}

const ALPHA_MANAGER: &str = "Projects/Project Alpha - Manager.csv";

#[test]
fn apply_says_the_tenant_matches_only_when_everything_was_applied() {
    let (output, _dir) = apply(
        &[(
            ALPHA_MANAGER,
            "Ann;ann@contoso.com\nBob;bob@fabrikam.com\nEve;eve@contoso.com\nFay;fay@tailspin.be\n",
        )],
        &[],
    );
    let text = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{text}{}", stderr(&output));
    // The verdict is the line before the figures.
    assert_eq!(
        text.lines().rev().nth(1),
        Some("the tenant now matches the rosters"),
        "{text}"
    );
}

#[test]
fn apply_of_only_an_invalid_roster_exits_1_and_says_it_was_not_applied() {
    let (output, _dir) = apply(
        &[(ALPHA_MANAGER, "Ann;ann@contoso.com\nBroken;nope\n")],
        &[],
    );
    let text = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(!text.contains("now matches"), "{text}");
    assert!(
        text.contains(&format!(
            "the tenant does not match the rosters:\n- 1 roster(s) not applied ({ALPHA_MANAGER})\n"
        )),
        "{text}"
    );
}

#[test]
fn apply_with_a_blocked_package_exits_1_and_names_it() {
    let (output, _dir) = apply(
        &[(ALPHA_MANAGER, "Ann;ann@contoso.com\n")],
        &["--max-removals", "0", "--max-removal-percent", "10"],
    );
    let text = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(!text.contains("now matches"), "{text}");
    assert!(
        text.contains(&format!(
            "the tenant does not match the rosters:\n- 1 package(s) blocked, nothing changed for them ({ALPHA_MANAGER})\n"
        )),
        "{text}"
    );
    let (json_output, _dir) = apply(
        &[(ALPHA_MANAGER, "Ann;ann@contoso.com\n")],
        &[
            "--max-removals",
            "0",
            "--max-removal-percent",
            "10",
            "--format",
            "json",
        ],
    );
    let summary = json(&json_output);
    assert_eq!(summary["matches"], false);
    assert_eq!(
        summary["notDone"],
        serde_json::json!([format!(
            "1 package(s) blocked, nothing changed for them ({ALPHA_MANAGER})"
        )])
    );
}

#[test]
fn an_io_error_names_its_cause_once() {
    let missing = enroll(&["validate", "tests/data/no-such-folder"]);
    assert_eq!(missing.status.code(), Some(2));
    assert_eq!(
        stderr(&missing).trim_end(),
        "enroll: cannot read tests/data/no-such-folder: No such file or directory (os error 2)"
    );
    let tenant = enroll(&[
        "plan",
        "tests/data/golden/rosters",
        "--tenant",
        "no-such.json",
    ]);
    assert_eq!(tenant.status.code(), Some(2));
    assert_eq!(
        stderr(&tenant).trim_end(),
        "enroll: cannot read no-such.json: No such file or directory (os error 2)"
    );
}

/// `enroll sim --tls` as a script runs it: the CA file and the endpoints are printed, a second
/// client gets tokens with its roles for a configured API, and SIGTERM stops it cleanly,
/// writing the final state and removing nothing it did not make.
#[cfg(unix)]
#[tokio::test]
async fn sim_over_tls_prints_its_ca_and_endpoints_and_stops_on_sigterm() {
    use std::io::{BufRead as _, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    let out = dir.path().join("final.json");
    let tenant = data("golden/tenant.json");
    let mut child = Command::new(crate::enroll_binary())
        .args([
            "sim",
            "--tenant",
            tenant.to_str().unwrap(),
            "--tls",
            "--ca-file",
            ca_file.to_str().unwrap(),
            "--client",
            "api-tester:tester-secret:Rosters.Read,Runs.Start",
            "--api",
            "api://enroll",
            "--out",
            out.to_str().unwrap(),
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut printed = std::collections::BTreeMap::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some((key, value)) = line.split_once(": ") {
            printed.insert(key.to_owned(), value.to_owned());
        }
        if line.starts_with("managed identity:") {
            break;
        }
    }
    assert_eq!(printed["ca"], ca_file.to_str().unwrap());
    let token_url = &printed["token"];
    assert!(token_url.starts_with("https://127.0.0.1:"), "{printed:?}");
    assert!(
        printed["jwks"].ends_with("/discovery/v2.0/keys"),
        "{printed:?}"
    );
    let ca = std::fs::read(&ca_file).unwrap();
    let http = reqwest::Client::builder()
        .tls_certs_merge(reqwest::Certificate::from_pem_bundle(&ca).unwrap())
        .build()
        .unwrap();
    let answer: Value = http
        .post(token_url)
        .basic_auth("api-tester", Some("tester-secret"))
        .form(&[
            ("scope", "api://enroll/.default"),
            ("grant_type", "client_credentials"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let claims = crate::sim::jwt_claims(answer["access_token"].as_str().unwrap());
    assert_eq!(claims["aud"], "api://enroll");
    assert_eq!(
        claims["roles"],
        serde_json::json!(["Rosters.Read", "Runs.Start"])
    );
    assert_eq!(claims["iss"], printed["issuer"].as_str());

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let rest: Vec<String> = lines.map(Result::unwrap).collect();
    assert!(rest.iter().any(|l| l.starts_with("stopped: ")), "{rest:?}");
    assert_eq!(child.wait().unwrap().code(), Some(0));
    let written: Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    assert!(written["users"].is_array());
    assert!(ca_file.exists(), "a CA file the user named is kept");
}
