//! App role plans as text for a terminal and as Markdown for the report store. Names,
//! values and Graph's strings go through [`crate::escape`], as in every report.

use std::fmt::Write as _;

use crate::escape::{Markdown, Terminal, code};
use crate::report::{markdown_section, not_applied_heading};

use super::RoleProblem;
use super::plan::{RolesPlan, UnmanagedAssignment, UpdateStep};

fn value(v: &Option<String>) -> &str {
    v.as_deref().unwrap_or_default()
}

/// Who holds an unmanaged assignment: their display name, else their id.
fn holder(assignment: &UnmanagedAssignment) -> &str {
    assignment
        .principal_display_name
        .as_deref()
        .unwrap_or(&assignment.principal_id)
}

fn place(problem: &RoleProblem) -> String {
    match (problem.line, problem.column) {
        (Some(line), Some(column)) => format!("{}:{line}:{column}", problem.file),
        _ => problem.file.clone(),
    }
}

/// The plan as text: the application's roles, the updates, the group assignments, warnings.
pub fn plan_text(plan: &RolesPlan) -> String {
    let mut out = String::new();
    let roles = &plan.app_roles;
    let _ = writeln!(
        out,
        "{}  [appId {}, object {}]",
        Terminal(value(&plan.application.display_name)),
        Terminal(&plan.application.app_id),
        Terminal(&plan.application.id)
    );
    let _ = writeln!(
        out,
        "  manifest {} (version {})",
        Terminal(&plan.manifest),
        Terminal(&plan.manifest_version)
    );
    let _ = writeln!(
        out,
        "  app roles: add {} | change {} | remove {} | refused {} | unchanged {}",
        roles.add.len(),
        roles.change.len(),
        roles.remove.len(),
        roles.refused.len(),
        roles.unchanged
    );
    for role in &roles.add {
        let _ = writeln!(
            out,
            "  + add       {} (id {})",
            Terminal(value(&role.value)),
            Terminal(&role.id)
        );
    }
    for change in &roles.change {
        let from = change
            .previous_value
            .as_deref()
            .map(|old| format!("{} -> ", Terminal(old)))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "  ~ change    {from}{} (id {}): {}{}",
            Terminal(value(&change.role.value)),
            Terminal(&change.role.id),
            change.changed.join(", "),
            if change.disable_first {
                "; disabled first"
            } else {
                ""
            }
        );
    }
    for removal in &roles.remove {
        let _ = writeln!(
            out,
            "  - remove    {} (id {}){}{}",
            Terminal(value(&removal.role.value)),
            Terminal(&removal.role.id),
            if removal.disable_first {
                "; disabled first"
            } else {
                ""
            },
            if removal.assignments > 0 {
                format!(
                    "; held by {} assignment(s), removal allowed explicitly",
                    removal.assignments
                )
            } else {
                String::new()
            }
        );
    }
    for refused in &roles.refused {
        let _ = writeln!(
            out,
            "  ! refused   {} (id {}): not in the manifest but held by {} assignment(s); kept (--allow-role-removals removes it)",
            Terminal(value(&refused.role.value)),
            Terminal(&refused.role.id),
            refused.assignments
        );
    }
    for (number, update) in plan.updates.iter().enumerate() {
        let step = match update.step {
            UpdateStep::Disable => "disable",
            UpdateStep::Update => "update",
        };
        let _ = writeln!(
            out,
            "  update {}: {step} ({} roles sent): {}",
            number + 1,
            update.app_roles.len(),
            Terminal(&update.reason)
        );
    }
    let _ = writeln!(
        out,
        "  groups: assign {} | unassign {} | unchanged {} | unmanaged {}",
        plan.assign.len(),
        plan.unassign.len(),
        plan.unchanged_assignments,
        plan.unmanaged.len()
    );
    for assign in &plan.assign {
        let _ = writeln!(
            out,
            "  + assign    {} <- {} (group {})",
            Terminal(value(&assign.group_display_name)),
            Terminal(&assign.value),
            Terminal(&assign.group_id)
        );
    }
    for unassign in &plan.unassign {
        let _ = writeln!(
            out,
            "  - unassign  {} -/- {}: {}",
            Terminal(value(&unassign.group_display_name)),
            Terminal(&unassign.value),
            Terminal(&unassign.reason)
        );
    }
    for left in &plan.unmanaged {
        let _ = writeln!(
            out,
            "  ? unmanaged {} (assignment {}): {}",
            Terminal(holder(left)),
            Terminal(&left.assignment_id),
            Terminal(&left.reason)
        );
    }
    for warning in &plan.warnings {
        let _ = writeln!(
            out,
            "  warning {}: {} [{}]",
            Terminal(&place(warning)),
            Terminal(&warning.message),
            warning.code
        );
    }
    let _ = writeln!(
        out,
        "\n{}{}",
        if plan.has_changes() {
            format!(
                "{} app role update(s), {} group assignment(s) to create, {} to remove",
                plan.updates.len(),
                plan.assign.len(),
                plan.unassign.len()
            )
        } else {
            "no changes: the application's roles and groups match the manifest".to_owned()
        },
        if plan.allow_role_removals {
            " (role removals allowed explicitly)"
        } else {
            ""
        }
    );
    out
}

/// A manifest that was not applied, as text: every problem with its place.
pub fn rejected_text(manifest: &str, problems: &[RoleProblem]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}: not applied, nothing changes; {} problem{}:",
        Terminal(manifest),
        problems.len(),
        if problems.len() == 1 { "" } else { "s" }
    );
    for problem in problems {
        let path = problem
            .path
            .as_deref()
            .map(|p| format!(" ({})", Terminal(p)))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "  {}{path}: {} [{}]",
            Terminal(&place(problem)),
            Terminal(&problem.message),
            problem.code
        );
    }
    out
}

/// The plan as Markdown, for people reading the report store.
pub fn plan_markdown(plan: &RolesPlan) -> String {
    let mut out = String::new();
    let roles = &plan.app_roles;
    let _ = writeln!(
        out,
        "# App roles of {}\n",
        Markdown(value(&plan.application.display_name))
    );
    let _ = writeln!(
        out,
        "Manifest {} (version {}), application {} (object {}), service principal {}.\n",
        code(&plan.manifest),
        code(&plan.manifest_version),
        code(&plan.application.app_id),
        code(&plan.application.id),
        code(plan.service_principal_id.as_deref().unwrap_or("none"))
    );
    if !plan.has_changes() {
        let _ = writeln!(
            out,
            "**No changes**: the application's roles and groups match the manifest.\n"
        );
    }
    let _ = writeln!(
        out,
        "| roles added | changed | removed | refused | unchanged | groups assigned | unassigned | unchanged | unmanaged |"
    );
    let _ = writeln!(
        out,
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    );
    let _ = writeln!(
        out,
        "| {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
        roles.add.len(),
        roles.change.len(),
        roles.remove.len(),
        roles.refused.len(),
        roles.unchanged,
        plan.assign.len(),
        plan.unassign.len(),
        plan.unchanged_assignments,
        plan.unmanaged.len()
    );
    let mut section = |title: &str, lines: Vec<String>| markdown_section(&mut out, title, &lines);
    section(
        "Roles added",
        roles
            .add
            .iter()
            .map(|r| format!("{} (id {})", code(value(&r.value)), code(&r.id)))
            .collect(),
    );
    section(
        "Roles changed",
        roles
            .change
            .iter()
            .map(|c| {
                format!(
                    "{}{} (id {}): {}{}",
                    code(value(&c.role.value)),
                    c.previous_value
                        .as_deref()
                        .map(|old| format!(", was {}", code(old)))
                        .unwrap_or_default(),
                    code(&c.role.id),
                    c.changed.join(", "),
                    if c.disable_first {
                        "; disabled first"
                    } else {
                        ""
                    }
                )
            })
            .collect(),
    );
    section(
        "Roles removed",
        roles
            .remove
            .iter()
            .map(|r| {
                format!(
                    "{} (id {}), held by {} assignment(s)",
                    code(value(&r.role.value)),
                    code(&r.role.id),
                    r.assignments
                )
            })
            .collect(),
    );
    section(
        "Removals refused",
        roles
            .refused
            .iter()
            .map(|r| {
                format!(
                    "{} (id {}) is not in the manifest but is held by {} assignment(s); it stays until they are gone or removals are allowed",
                    code(value(&r.role.value)),
                    code(&r.role.id),
                    r.assignments
                )
            })
            .collect(),
    );
    section(
        "Updates, in order",
        plan.updates
            .iter()
            .map(|u| {
                format!(
                    "{}: {} roles sent; {}",
                    match u.step {
                        UpdateStep::Disable => "disable",
                        UpdateStep::Update => "update",
                    },
                    u.app_roles.len(),
                    Markdown(&u.reason)
                )
            })
            .collect(),
    );
    section(
        "Groups given their role",
        plan.assign
            .iter()
            .map(|a| {
                format!(
                    "{} ({}) gets {}",
                    Markdown(value(&a.group_display_name)),
                    code(&a.group_id),
                    code(&a.value)
                )
            })
            .collect(),
    );
    section(
        "Assignments removed",
        plan.unassign
            .iter()
            .map(|u| {
                format!(
                    "{} from {}: {}",
                    code(&u.value),
                    Markdown(value(&u.group_display_name)),
                    Markdown(&u.reason)
                )
            })
            .collect(),
    );
    section(
        "Unmanaged assignments (left alone)",
        plan.unmanaged
            .iter()
            .map(|u| {
                format!(
                    "{} ({}): {}",
                    Markdown(holder(u)),
                    code(&u.assignment_id),
                    Markdown(&u.reason)
                )
            })
            .collect(),
    );
    section(
        "Warnings",
        plan.warnings
            .iter()
            .map(|w| {
                format!(
                    "{}: {} `{}`",
                    Markdown(&place(w)),
                    Markdown(&w.message),
                    w.code
                )
            })
            .collect(),
    );
    out
}

/// A manifest that was not applied, as Markdown.
pub fn rejected_markdown(manifest: &str, version: &str, problems: &[RoleProblem]) -> String {
    let mut out = String::new();
    not_applied_heading(&mut out, manifest, "Manifest", version, problems.len());
    let _ = writeln!(out, "| file | line | column | code | problem |");
    let _ = writeln!(out, "| --- | ---: | ---: | --- | --- |");
    for problem in problems {
        let n = |n: Option<u64>| n.map(|n| n.to_string()).unwrap_or_default();
        let _ = writeln!(
            out,
            "| {} | {} | {} | `{}` | {} |",
            Markdown(&problem.file),
            n(problem.line),
            n(problem.column),
            problem.code,
            Markdown(&problem.message)
        );
    }
    out
}
