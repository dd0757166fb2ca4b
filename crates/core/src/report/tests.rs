//! Every report with hostile names: Markdown renders them as text, terminals show them
//! as escapes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::json;

use super::*;
use crate::audit::{Action, Outcome};
use crate::escape::is_hostile;
use crate::plan::{PlanOptions, RosterSource, plan};
use crate::roster::{Limits, parse};
use crate::tenant::TenantSnapshot;

const ROSTER: &str = "Evil`|Team.csv";

/// A package whose display name, holders and roster names are hostile: one person to
/// invite per name, and a holder with a hostile address to remove.
fn hostile_plan() -> Plan {
    let tenant: TenantSnapshot = serde_json::from_value(json!({
        "users": [{"id": "u-old", "displayName": "Old", "mail": "old<b>@example.com", "otherMails": []}],
        "accessPackages": [{
            "id": "pkg-1",
            "displayName": "Project X\u{1b}[2J | <b>Managers</b>",
            "assignmentPolicies": [{"id": "admin-direct", "allowedTargetScope": "notSpecified"}]
        }],
        "assignments": [{
            "id": "as-old", "state": "delivered",
            "target": {"objectId": "u-old"},
            "accessPackage": {"id": "pkg-1"}
        }]
    }))
    .unwrap();
    let rows = "DisplayName;Email\n\
        <img src=x onerror=alert(1)>;img@example.com\n\
        [Click](https://evil.example) ![p](https://evil.example/p.png);link@example.com\n\
        Ann` | `x;ann@example.com\n\
        \"# Approved\r- everyone\u{1b}[31m\";esc@example.com\n\
        Eve \u{202E}moc.elpmaxe;eve@example.com\n";
    let roster = parse(ROSTER, rows.as_bytes(), Limits::default());
    assert!(roster.is_valid(), "{:?}", roster.errors);
    let options = PlanOptions {
        mapping: serde_json::from_value(json!({"accessPackages": {ROSTER: "pkg-1"}})).unwrap(),
        ..PlanOptions::default()
    };
    let sources = [RosterSource {
        path: ROSTER.into(),
        version: "v`1".into(),
        roster,
    }];
    let mut plan = plan(&sources, &tenant, &options);
    plan.errors.push(PlanError {
        roster: "Bad\u{1b}]0;pwned\u{7}.csv".into(),
        line: Some(2),
        column: Some(2),
        code: "invalid_email".into(),
        message: "`<script>` is not\na valid address".into(),
    });
    plan
}

/// Whether Markdown text holds markup outside backslash escapes and code spans.
fn has_live_markup(line: &str) -> bool {
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                chars.next();
            }
            '`' => {
                // Skip the code span: its fence is this run of backticks.
                let mut fence = 1;
                while chars.next_if_eq(&'`').is_some() {
                    fence += 1;
                }
                let mut run = 0;
                while let Some(c) = chars.next() {
                    run = if c == '`' { run + 1 } else { 0 };
                    if run == fence && chars.peek() != Some(&'`') {
                        break;
                    }
                }
            }
            '<' | '>' | '[' | ']' | '|' | '\u{1b}' => return true,
            _ => {}
        }
    }
    false
}

#[test]
fn the_package_markdown_renders_hostile_names_as_text() {
    let plan = hostile_plan();
    let markdown = package_markdown(&plan.packages[0]);
    let lines: Vec<&str> = markdown.lines().collect();
    assert_eq!(
        lines[0],
        "# Project X\\\\u{1b}\\[2J \\| \\<b\\>Managers\\</b\\>"
    );
    assert_eq!(
        lines[2],
        "Roster ``Evil`|Team.csv`` (version ``v`1``), access package `pkg-1`."
    );
    let invites: Vec<&str> = lines
        .iter()
        .copied()
        .skip_while(|l| *l != "## Invite")
        .skip(2)
        .take_while(|l| !l.is_empty())
        .collect();
    assert_eq!(
        invites,
        [
            "- \\<img src=x onerror=alert(1)\\> \\<img@example.com\\>",
            "- \\[Click\\](https://evil.example) !\\[p\\](https://evil.example/p.png) \\<link@example.com\\>",
            "- Ann\\` \\| \\`x \\<ann@example.com\\>",
            "- \\# Approved\\\\r- everyone\\\\u{1b}\\[31m \\<esc@example.com\\>",
            "- Eve \\\\u{202e}moc.elpmaxe \\<eve@example.com\\>",
        ]
    );
    assert!(
        markdown.contains("\n## Remove\n\n- old\\<b\\>@example.com (assignment `as-old`)\n"),
        "{markdown}"
    );
    for line in lines.iter().filter(|l| !l.starts_with("| ")) {
        assert!(!has_live_markup(line), "{line}");
    }
}

#[test]
fn the_rejected_markdown_escapes_the_roster_name_and_the_message() {
    let plan = hostile_plan();
    let markdown = rejected_markdown("Bad`|\n# Name.csv", "v`1", &plan.errors);
    assert_eq!(
        markdown,
        "# Bad\\`\\|\\\\n# Name.csv\n\n\
         **Not applied: nothing was changed.** Roster version ``v`1`` has 1 problem:\n\n\
         | line | column | code | problem |\n\
         | ---: | ---: | --- | --- |\n\
         | 2 | 2 | `invalid_email` | \\`\\<script\\>\\` is not\\\\na valid address |\n"
    );
}

#[test]
fn failure_lines_keep_each_failure_on_its_own_line_as_text() {
    let record = AuditRecord {
        time: "2026-01-01T00:00:00Z".into(),
        actor: "enroll".into(),
        run_id: "r".into(),
        roster: ROSTER.into(),
        roster_version: "v".into(),
        access_package_id: None,
        action: Action::Assign,
        email: Some("x`y@example.com".into()),
        user_id: None,
        assignment_id: None,
        group_id: None,
        app_role_id: None,
        outcome: Outcome::Failed,
        detail: Some("Graph said <img src=x>\n- [all removed](https://evil.example)".into()),
        request_id: None,
    };
    let (jsonl, markdown) = failure_lines(&[&record]);
    assert_eq!(jsonl.lines().count(), 1);
    assert_eq!(
        markdown,
        "- 2026-01-01T00:00:00Z assign ``x`y@example.com``: Graph said \\<img src=x\\>\\\\n- \\[all removed\\](https://evil.example)\n"
    );
}

#[test]
fn the_plan_text_shows_control_characters_as_escapes() {
    let text = plan_text(&hostile_plan());
    assert!(
        !text.chars().any(|c| c != '\n' && is_hostile(c)),
        "{text:?}"
    );
    assert!(
        text.starts_with("Project X\\u{1b}[2J | <b>Managers</b>  [pkg-1]\n"),
        "{text}"
    );
    assert!(
        text.contains("\n  + invite  # Approved\\r- everyone\\u{1b}[31m <esc@example.com>\n"),
        "{text}"
    );
    assert!(
        text.contains("\n  + invite  Eve \\u{202e}moc.elpmaxe <eve@example.com>\n"),
        "{text}"
    );
    assert!(
        text.contains(
            "\n  Bad\\u{1b}]0;pwned\\u{7}.csv: line 2, column 2: `<script>` is not\\na valid address [invalid_email]\n"
        ),
        "{text}"
    );
}

#[test]
fn the_validation_text_shows_a_hostile_file_name_as_escapes() {
    let roster = parse(
        "rosters/\u{1b}[2Jevil\n.csv",
        "A;\u{1b}[31m@x\n".as_bytes(),
        Limits::default(),
    );
    let text = ValidationReport {
        files: vec![FileReport::from(&roster)],
    }
    .to_text();
    assert!(
        !text.chars().any(|c| c != '\n' && is_hostile(c)),
        "{text:?}"
    );
    assert!(
        text.starts_with("INVALID rosters/\\u{1b}[2Jevil\\n.csv  0 people, 1 rows"),
        "{text}"
    );
    assert!(
        text.contains("error   line 1, column 2: `\\u{1b}[31m@x` is not a valid e-mail address"),
        "{text}"
    );
}

#[derive(Debug, thiserror::Error)]
#[error("cannot reach the endpoint")]
struct Outer(#[source] std::io::Error);

#[derive(Debug, thiserror::Error)]
#[error("cannot reach the endpoint: {0}")]
struct Repeats(#[source] std::io::Error);

#[test]
fn error_chain_names_each_cause_once() {
    let refused = || std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
    assert_eq!(
        error_chain(&Outer(refused())),
        "cannot reach the endpoint: refused"
    );
    assert_eq!(
        error_chain(&Repeats(refused())),
        "cannot reach the endpoint: refused"
    );
}
