//! Reports for people and machines: validation results and plans as text and JSON.
//!
//! Every value that came from a roster or the tenant (names, addresses, paths, Graph's
//! messages) goes through [`crate::escape`]: [`Terminal`] in text for a terminal,
//! [`Markdown`] or [`code`] in Markdown, so that no report can be turned against its reader.

use std::fmt::Write as _;

use serde::Serialize;

use crate::audit::AuditRecord;
use crate::escape::{Markdown, Terminal, code};
use crate::plan::{PackagePlan, Plan, PlanError};
use crate::roster::{Problem, Roster, TextEncoding};

/// One file's validation result, in the shape `enroll validate --format json` prints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileReport {
    /// Path as given.
    pub path: String,
    /// Whether the roster has no errors.
    pub valid: bool,
    /// People rows read.
    pub rows: usize,
    /// Distinct people.
    pub people: usize,
    /// Errors.
    pub errors: Vec<Problem>,
    /// Warnings.
    pub warnings: Vec<Problem>,
    /// Encoding detected.
    pub encoding: Option<TextEncoding>,
    /// Separator detected.
    pub delimiter: Option<String>,
}

impl From<&Roster> for FileReport {
    fn from(roster: &Roster) -> Self {
        Self {
            path: roster.path.clone(),
            valid: roster.is_valid(),
            rows: roster.rows,
            people: roster.people.len(),
            errors: roster.errors.clone(),
            warnings: roster.warnings.clone(),
            encoding: roster.encoding,
            delimiter: roster.delimiter.map(|d| d.to_string()),
        }
    }
}

/// The validation of a set of files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ValidationReport {
    /// One entry per file, in path order.
    pub files: Vec<FileReport>,
}

impl ValidationReport {
    /// Whether every file is valid.
    pub fn all_valid(&self) -> bool {
        self.files.iter().all(|file| file.valid)
    }

    /// The report as text for a terminal.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for file in &self.files {
            let encoding = file
                .encoding
                .and_then(|e| serde_json::to_value(e).ok())
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_else(|| "unreadable".into());
            let separator = match file.delimiter.as_deref() {
                Some("\t") => "tab".to_owned(),
                Some(other) => format!("'{other}'"),
                None => "-".to_owned(),
            };
            let status = if file.valid { "ok     " } else { "INVALID" };
            let _ = writeln!(
                out,
                "{status} {}  {} people, {} rows ({encoding}, separator {separator})",
                Terminal(&file.path),
                file.people,
                file.rows
            );
            for error in &file.errors {
                let _ = writeln!(out, "        error   {}", Terminal(&error.to_string()));
            }
            for warning in &file.warnings {
                let _ = writeln!(out, "        warning {}", Terminal(&warning.to_string()));
            }
        }
        let invalid = self.files.iter().filter(|f| !f.valid).count();
        let _ = writeln!(
            out,
            "{} file{}: {} valid, {invalid} invalid",
            self.files.len(),
            if self.files.len() == 1 { "" } else { "s" },
            self.files.len() - invalid
        );
        out
    }
}

/// The plan as text for a terminal: a block per package, then errors and totals.
pub fn plan_text(plan: &Plan) -> String {
    let mut out = String::new();
    for package in &plan.packages {
        package_text(&mut out, package);
    }
    if !plan.errors.is_empty() {
        let _ = writeln!(
            out,
            "Rosters that were not planned (nothing changes for them):"
        );
        for error in &plan.errors {
            let place = match (error.line, error.column) {
                (Some(line), Some(column)) => format!(" line {line}, column {column}:"),
                (Some(line), None) => format!(" line {line}:"),
                _ => String::new(),
            };
            let _ = writeln!(
                out,
                "  {}:{place} {} [{}]",
                Terminal(&error.roster),
                Terminal(&error.message),
                Terminal(&error.code)
            );
        }
        out.push('\n');
    }
    let total = |count: fn(&PackagePlan) -> usize| plan.packages.iter().map(count).sum::<usize>();
    let blocked = plan.packages.iter().filter(|p| p.blocked.is_some()).count();
    let _ = writeln!(
        out,
        "{} package{}: invite {}, assign {}, remove {}, unchanged {}; {blocked} blocked, {} roster error{}{}",
        plan.packages.len(),
        if plan.packages.len() == 1 { "" } else { "s" },
        total(|p| p.invite.len()),
        total(|p| p.assign.len()),
        total(|p| p.remove.len()),
        total(|p| p.unchanged),
        plan.errors.len(),
        if plan.errors.len() == 1 { "" } else { "s" },
        if plan.allow_removals {
            " (removals allowed explicitly)"
        } else {
            ""
        }
    );
    out
}

fn package_text(out: &mut String, package: &PackagePlan) {
    let _ = writeln!(
        out,
        "{}  [{}]",
        Terminal(&package.access_package.display_name),
        Terminal(&package.access_package.id)
    );
    let _ = writeln!(
        out,
        "  roster {} (version {})",
        Terminal(&package.roster),
        Terminal(&package.roster_version)
    );
    let _ = writeln!(
        out,
        "  members {:>5} | invite {:>5} | assign {:>5} | remove {:>5} | unchanged {:>5}{}",
        package.current_members,
        package.invite.len(),
        package.assign.len(),
        package.remove.len(),
        package.unchanged,
        if package.pending > 0 {
            format!(" ({} pending)", package.pending)
        } else {
            String::new()
        }
    );
    if let Some(reason) = package.blocked {
        let reason = serde_json::to_value(reason).unwrap_or_default();
        let _ = writeln!(
            out,
            "  BLOCKED ({}): {}",
            reason.as_str().unwrap_or_default(),
            Terminal(package.blocked_message.as_deref().unwrap_or_default())
        );
    }
    guards_text(out, package);
    for invite in &package.invite {
        let _ = writeln!(
            out,
            "  + invite  {} <{}>",
            Terminal(&invite.display_name),
            Terminal(&invite.email)
        );
    }
    for assign in &package.assign {
        let _ = writeln!(
            out,
            "  + assign  {} (user {})",
            Terminal(&assign.email),
            Terminal(&assign.user_id)
        );
    }
    for remove in &package.remove {
        let _ = writeln!(
            out,
            "  - remove  {} (assignment {}){}",
            Terminal(&remove.email),
            Terminal(&remove.assignment_id),
            not_before(remove)
        );
    }
    for skipped in &package.skipped {
        let _ = writeln!(
            out,
            "  ! skipped {}: {}",
            Terminal(&skipped.email),
            Terminal(&skipped.reason)
        );
    }
    for kept in &package.kept {
        let _ = writeln!(
            out,
            "  = keep    {} (assignment {}): {}",
            Terminal(holder_name(&kept.email)),
            Terminal(&kept.assignment_id),
            kept.reason.describe()
        );
    }
    out.push('\n');
}

/// The guards that tripped, with their numbers, and the override or its refusal.
fn guards_text(out: &mut String, package: &PackagePlan) {
    for guard in &package.guards {
        let _ = writeln!(
            out,
            "  guard {}: {} ({})",
            guard.code.code(),
            guard_numbers(guard),
            if guard.overridden {
                "overridden"
            } else {
                "blocks"
            }
        );
    }
    if let Some(note) = package.override_note() {
        let _ = writeln!(out, "  override: {}", Terminal(&note));
    }
    if let Some(refused) = &package.override_refused {
        let _ = writeln!(out, "  override refused: {}", Terminal(refused));
    }
}

/// A guard's numbers in words: what it counted, of how many members, against which limit.
fn guard_numbers(guard: &crate::plan::Tripped) -> String {
    let what = if guard.code == crate::plan::BlockReason::AdditionGuard {
        "to add"
    } else {
        "to remove"
    };
    let limit = match (guard.max_count, guard.max_percent) {
        (Some(count), Some(percent)) => {
            format!("; allowed: {count}, or {percent} % of the members")
        }
        _ => String::new(),
    };
    format!("{} {what}, {} members{limit}", guard.count, guard.members)
}

/// ` (not before …)` for a removal that waits out an undo window.
fn not_before(remove: &crate::plan::Remove) -> String {
    remove
        .not_before
        .as_deref()
        .map(|time| format!(", not before {time}"))
        .unwrap_or_default()
}

/// A holder's address, or a stand-in when none is known.
fn holder_name(email: &str) -> &str {
    if email.is_empty() {
        "(no address)"
    } else {
        email
    }
}

/// One package's plan as Markdown, for people: what changes, what is blocked and why.
pub fn package_markdown(plan: &PackagePlan) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# {}\n", Markdown(&plan.access_package.display_name));
    let _ = writeln!(
        out,
        "Roster {} (version {}), access package {}.\n",
        code(&plan.roster),
        code(&plan.roster_version),
        code(&plan.access_package.id)
    );
    if let Some(reason) = plan.blocked {
        let reason = serde_json::to_value(reason).unwrap_or_default();
        let _ = writeln!(
            out,
            "**Blocked ({}): nothing was changed.** {}\n",
            reason.as_str().unwrap_or_default(),
            Markdown(plan.blocked_message.as_deref().unwrap_or_default())
        );
    }
    guards_markdown(&mut out, plan);
    let _ = writeln!(out, "| members | invite | assign | remove | unchanged |");
    let _ = writeln!(out, "| ---: | ---: | ---: | ---: | ---: |");
    let _ = writeln!(
        out,
        "| {} | {} | {} | {} | {} |\n",
        plan.current_members,
        plan.invite.len(),
        plan.assign.len(),
        plan.remove.len(),
        plan.unchanged
    );
    let mut section = |title: &str, lines: Vec<String>| markdown_section(&mut out, title, &lines);
    section(
        "Invite",
        plan.invite
            .iter()
            .map(|i| Markdown(&format!("{} <{}>", i.display_name, i.email)).to_string())
            .collect(),
    );
    section(
        "Assign",
        plan.assign
            .iter()
            .map(|a| Markdown(&a.email).to_string())
            .collect(),
    );
    section(
        "Remove",
        plan.remove
            .iter()
            .map(|r| {
                let id = code(&r.assignment_id);
                format!("{} (assignment {id}){}", Markdown(&r.email), not_before(r))
            })
            .collect(),
    );
    section(
        "Skipped",
        plan.skipped
            .iter()
            .map(|s| format!("{}: {}", Markdown(&s.email), Markdown(&s.reason)))
            .collect(),
    );
    section(
        "Kept (not in the roster, not removed)",
        plan.kept
            .iter()
            .map(|k| {
                format!(
                    "{} (assignment {}): {}",
                    Markdown(holder_name(&k.email)),
                    code(&k.assignment_id),
                    k.reason.describe()
                )
            })
            .collect(),
    );
    out
}

/// The guards that tripped as a table with their numbers, the override (who and why) or
/// why it was refused, and when removals happen.
fn guards_markdown(out: &mut String, plan: &PackagePlan) {
    if !plan.guards.is_empty() {
        let _ = writeln!(out, "| guard | count | members | allowed | outcome |");
        let _ = writeln!(out, "| --- | ---: | ---: | --- | --- |");
        for guard in &plan.guards {
            let allowed = match (guard.max_count, guard.max_percent) {
                (Some(count), Some(percent)) => format!("{count}, or {percent} %"),
                _ => "none without an override".to_owned(),
            };
            let _ = writeln!(
                out,
                "| `{}` | {} | {} | {allowed} | {} |",
                guard.code.code(),
                guard.count,
                guard.members,
                if guard.overridden {
                    "overridden"
                } else {
                    "blocks"
                }
            );
        }
        out.push('\n');
    }
    if let Some(note) = plan.override_note() {
        let _ = writeln!(out, "Override: {}.\n", Markdown(&note));
    }
    if let Some(refused) = &plan.override_refused {
        let _ = writeln!(out, "**Override refused:** {}.\n", Markdown(refused));
    }
    if let Some(time) = plan.remove.iter().find_map(|r| r.not_before.as_deref()) {
        let _ = writeln!(
            out,
            "Removals wait until {time} (undo window, ENROLL_REMOVAL_DELAY): a roster corrected before then keeps the person.\n"
        );
    }
}

/// A roster that was not applied, as Markdown: every problem with its place.
pub fn rejected_markdown(roster: &str, version: &str, errors: &[PlanError]) -> String {
    let mut out = String::new();
    not_applied_heading(&mut out, roster, "Roster", version, errors.len());
    let _ = writeln!(out, "| line | column | code | problem |");
    let _ = writeln!(out, "| ---: | ---: | --- | --- |");
    for error in errors {
        let place = |n: Option<u64>| n.map(|n| n.to_string()).unwrap_or_default();
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} |",
            place(error.line),
            place(error.column),
            // Codes are enroll's own (`[a-z_]`), so a code span cannot meet a `|` here.
            code(&error.code),
            Markdown(&error.message)
        );
    }
    out
}

/// A Markdown section of list items; nothing when there are none.
pub(crate) fn markdown_section(out: &mut String, title: &str, lines: &[String]) {
    if lines.is_empty() {
        return;
    }
    let _ = writeln!(out, "## {title}\n");
    for line in lines {
        let _ = writeln!(out, "- {line}");
    }
    out.push('\n');
}

/// The opening of a report for a file that was not applied: its name, that nothing
/// changed, and how many problems follow.
pub(crate) fn not_applied_heading(
    out: &mut String,
    name: &str,
    kind: &str,
    version: &str,
    problems: usize,
) {
    let _ = writeln!(out, "# {}\n", Markdown(name));
    let _ = writeln!(
        out,
        "**Not applied: nothing was changed.** {kind} version {} has {problems} problem{}:\n",
        code(version),
        if problems == 1 { "" } else { "s" }
    );
}

/// A roster path as one report file name: `Catalog/Key Users.csv` → `Catalog__Key Users`.
pub fn report_name(roster: &str) -> String {
    let stem = roster
        .strip_suffix(".csv")
        .or_else(|| roster.strip_suffix(".CSV"))
        .unwrap_or(roster);
    stem.replace('/', "__")
}

/// The failed records as report lines: JSON lines, and Markdown list items.
pub fn failure_lines(records: &[&AuditRecord]) -> (String, String) {
    let mut jsonl = String::new();
    let mut markdown = String::new();
    for record in records {
        jsonl.push_str(&serde_json::to_string(record).unwrap_or_default());
        jsonl.push('\n');
        let action = serde_json::to_value(record.action).unwrap_or_default();
        markdown.push_str(&format!(
            "- {} {} {}: {}\n",
            record.time,
            action.as_str().unwrap_or_default(),
            code(record.email.as_deref().unwrap_or("-")),
            Markdown(record.detail.as_deref().unwrap_or_default())
        ));
    }
    (jsonl, markdown)
}

/// An error and its sources in one line (each source once), so that a failure says what
/// actually broke.
pub fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        let next = s.to_string();
        if !text.contains(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests;
