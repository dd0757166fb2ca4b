//! The plan as one Markdown document, for a pull request's comment (`enroll plan
//! --markdown FILE`): a table of every package, then each package that changes or is
//! blocked, then the rosters that could not be planned. Everything a roster or the tenant
//! wrote is escaped ([`enroll_core::escape`]), so a pull request cannot put markup, links
//! or images into the comment.

use std::fmt::Write as _;

use enroll_core::escape::{Markdown, code};
use enroll_core::plan::{Plan, PlanError};
use enroll_core::report::{package_markdown, rejected_markdown};

/// GitHub refuses comments over 65,536 characters; details stop before this many.
pub const MAX_COMMENT_CHARS: usize = 60_000;

/// The plan as Markdown, at most about [`MAX_COMMENT_CHARS`] characters: details that
/// would not fit are left out, and the document says so.
pub fn plan_markdown(plan: &Plan) -> String {
    let mut out = String::from("## enroll plan\n\n");
    let blocked = plan.packages.iter().filter(|p| p.blocked.is_some()).count();
    let _ = writeln!(
        out,
        "{} packages planned: {blocked} blocked; {} rosters not planned. {}\n",
        plan.packages.len(),
        rosters_with_errors(&plan.errors).len(),
        if plan.is_clean() {
            "Nothing stops this change."
        } else {
            "**This change cannot go in as it is** (see below)."
        }
    );
    if !plan.packages.is_empty() {
        let _ = writeln!(
            out,
            "| roster | access package | invite | assign | remove | unchanged | status |"
        );
        let _ = writeln!(out, "| --- | --- | ---: | ---: | ---: | ---: | --- |");
        for package in &plan.packages {
            let status = match package.blocked {
                Some(reason) => format!(
                    "**blocked** ({})",
                    serde_json::to_value(reason)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_owned))
                        .unwrap_or_default()
                ),
                None if package.has_changes() => "changes".to_owned(),
                None => "in line".to_owned(),
            };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {status} |",
                code(&package.roster),
                Markdown(&package.access_package.display_name),
                package.invite.len(),
                package.assign.len(),
                package.remove.len(),
                package.unchanged
            );
        }
        out.push('\n');
    }
    let mut details: Vec<String> = plan
        .packages
        .iter()
        .filter(|p| p.blocked.is_some() || p.has_changes() || !p.skipped.is_empty())
        .map(|p| {
            details_block(
                &format!("{}", Markdown(&p.access_package.display_name)),
                &package_markdown(p),
            )
        })
        .collect();
    for roster in rosters_with_errors(&plan.errors) {
        let errors: Vec<PlanError> = plan
            .errors
            .iter()
            .filter(|e| e.roster == roster)
            .cloned()
            .collect();
        details.push(details_block(
            &format!("{} (not planned)", Markdown(roster)),
            &rejected_markdown(roster, "of this pull request", &errors),
        ));
    }
    let total = details.len();
    for (shown, block) in details.into_iter().enumerate() {
        if out.chars().count() + block.chars().count() > MAX_COMMENT_CHARS {
            let _ = writeln!(
                out,
                "*{} more sections left out to keep this comment within GitHub's limit; the job's log has the whole plan.*",
                total - shown
            );
            break;
        }
        out.push_str(&block);
    }
    out
}

/// A collapsed section: the summary line, then Markdown that renders inside it.
fn details_block(summary: &str, body: &str) -> String {
    format!("<details><summary>{summary}</summary>\n\n{body}\n</details>\n\n")
}

/// Each roster that has errors, once, in order.
fn rosters_with_errors(errors: &[PlanError]) -> Vec<&str> {
    let mut rosters: Vec<&str> = Vec::new();
    for error in errors {
        if !rosters.contains(&error.roster.as_str()) {
            rosters.push(&error.roster);
        }
    }
    rosters
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use enroll_core::plan::{BlockReason, PackagePlan, PackageRef};

    fn package(roster: &str, name: &str, blocked: Option<BlockReason>) -> PackagePlan {
        PackagePlan {
            roster: roster.into(),
            roster_version: "v1".into(),
            access_package: PackageRef {
                id: "p1".into(),
                display_name: name.into(),
                assignment_policy_id: None,
            },
            invite: Vec::new(),
            assign: Vec::new(),
            remove: Vec::new(),
            unchanged: 3,
            pending: 0,
            skipped: Vec::new(),
            current_members: 3,
            blocked,
            blocked_message: blocked.map(|_| "would remove 12 of 20".into()),
            overridden: None,
            guards: Vec::new(),
            override_by: None,
            override_refused: None,
            kept: Vec::new(),
        }
    }

    #[test]
    fn a_blocked_package_is_shown_and_names_cannot_add_markup() {
        let plan = Plan {
            packages: vec![
                package("A.csv", "Alpha", None),
                package(
                    "B.csv",
                    "Beta | ![x](https://evil.example/x.png)",
                    Some(BlockReason::RemovalGuard),
                ),
            ],
            errors: vec![PlanError {
                roster: "C.csv".into(),
                line: Some(3),
                column: Some(2),
                code: "invalid_email".into(),
                message: "not an address".into(),
            }],
            allow_removals: false,
            allow_additions: false,
            override_by: None,
        };
        let text = plan_markdown(&plan);
        assert!(text.contains("2 packages planned: 1 blocked; 1 rosters not planned. **This change cannot go in as it is**"), "{text}");
        assert!(
            text.contains("| `A.csv` | Alpha | 0 | 0 | 0 | 3 | in line |"),
            "{text}"
        );
        assert!(text.contains("| **blocked** (removal_guard) |"), "{text}");
        assert!(!text.contains("![x]"), "an image must not form: {text}");
        assert!(
            !text.contains("Beta | !"),
            "a pipe must not split the cell: {text}"
        );
        assert_eq!(text.matches("<details>").count(), 2, "{text}");
        assert!(
            text.contains("| 3 | 2 | `invalid_email` | not an address |"),
            "{text}"
        );
    }

    #[test]
    fn details_stop_before_githubs_limit() {
        let packages: Vec<PackagePlan> = (0..400)
            .map(|i| {
                let mut p = package(&format!("R{i}.csv"), &format!("P{i}"), None);
                p.skipped = (0..20)
                    .map(|j| enroll_core::plan::Skipped {
                        email: format!("person{j}@example.com"),
                        reason: "shared by several users, which enroll does not guess between"
                            .into(),
                    })
                    .collect();
                p
            })
            .collect();
        let text = plan_markdown(&Plan {
            packages,
            errors: Vec::new(),
            allow_removals: false,
            allow_additions: false,
            override_by: None,
        });
        assert!(
            text.chars().count() <= MAX_COMMENT_CHARS + 200,
            "{}",
            text.len()
        );
        assert!(text.contains("more sections left out"));
        assert_eq!(
            text.matches("| `R").count(),
            400,
            "the table lists every package"
        );
    }
}
