//! Roster files: decode, split, and validate one CSV roster per access package.
//!
//! A roster row is `display name; e-mail[; package | role]`. [`parse`] reads the bytes
//! people really produce (Excel exports in UTF-8, UTF-16 or Windows-1252, separated by `;`,
//! `,` or tab) and reports every problem with its line and column. A roster with any error
//! is invalid as a whole: [`Roster::validated`] is the only way to a [`ValidRoster`], and
//! only a valid roster can be planned, so a row that failed to parse can never turn into a
//! removal.

mod decode;
mod email;
mod quotes;

use std::collections::HashMap;
use std::fmt;

use serde::Serialize;

use crate::escape::{clip, csv_unguard};

pub use decode::{DecodeError, TextEncoding, decode};
pub use email::{
    MAX_EMAIL_LEN, check_email, email_key, email_key_borrowed, same_address, starts_with_address,
};

/// Whether a file or blob name is a roster: `*.csv`, in any case.
pub fn is_roster_name(name: &str) -> bool {
    name.len() > 4
        && name.is_char_boundary(name.len() - 4)
        && name[name.len() - 4..].eq_ignore_ascii_case(".csv")
}

/// The largest file enroll reads: a roster (the default of [`Limits::max_bytes`]), a
/// mapping file or an app role manifest. 16 MiB.
pub const MAX_FILE_BYTES: usize = 16 * 1024 * 1024;

/// Size limits for one roster file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest file accepted, in bytes. Default 16 MiB.
    pub max_bytes: usize,
    /// Most people rows accepted (header, blank and comment lines not counted). Default 200,000.
    pub max_rows: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_bytes: MAX_FILE_BYTES,
            max_rows: 200_000,
        }
    }
}

/// A stable, machine-readable name for each kind of roster problem.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemCode {
    /// The e-mail field does not hold one valid address.
    InvalidEmail,
    /// The row (or the header) has no e-mail.
    MissingEmail,
    /// The row has a non-empty field beyond the roster's columns.
    TooManyColumns,
    /// The bytes cannot be read as text.
    UnreadableEncoding,
    /// The file is over the byte or row limit.
    TooLarge,
    /// A header row names a column the roster format does not have.
    UnknownHeader,
    /// A quote is never closed, or closes only after swallowing a row; or the CSV cannot be split.
    MalformedCsv,
    /// Warning: the same e-mail (in any case) appears again; it counts once.
    DuplicateEmail,
}

impl ProblemCode {
    /// The code as it appears in JSON output.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidEmail => "invalid_email",
            Self::MissingEmail => "missing_email",
            Self::TooManyColumns => "too_many_columns",
            Self::UnreadableEncoding => "unreadable_encoding",
            Self::TooLarge => "too_large",
            Self::UnknownHeader => "unknown_header",
            Self::MalformedCsv => "malformed_csv",
            Self::DuplicateEmail => "duplicate_email",
        }
    }
}

impl fmt::Display for ProblemCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One problem found in a roster, with where it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// 1-based physical line in the file (`None` for whole-file problems).
    pub line: Option<u64>,
    /// 1-based column: the field's position in the row (`None` for whole-row or whole-file problems).
    pub column: Option<u64>,
    /// Stable code.
    pub code: ProblemCode,
    /// One sentence: what was found and what was expected.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.column) {
            (Some(line), Some(column)) => write!(f, "line {line}, column {column}: ")?,
            (Some(line), None) => write!(f, "line {line}: ")?,
            _ => {}
        }
        write!(f, "{} [{}]", self.message, self.code)
    }
}

/// One person in a roster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Person {
    /// Display name as written (trimmed); may be empty.
    pub display_name: String,
    /// E-mail as written (trimmed).
    pub email: String,
    /// The optional third column (`Project X | Role Y`), kept for reports.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub package_role: Option<String>,
    /// The line the person's row starts on.
    pub line: u64,
}

impl Person {
    /// The e-mail in the form addresses are compared in.
    pub fn email_key(&self) -> String {
        email_key(&self.email)
    }
}

/// The result of reading one roster: its people and every problem found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Roster {
    /// The path the roster was read from, as given (used in every message).
    pub path: String,
    /// People rows read (duplicates included; header, blank and comment lines not).
    pub rows: usize,
    /// The people, each e-mail once, in file order.
    pub people: Vec<Person>,
    /// Errors: any one makes the roster invalid.
    pub errors: Vec<Problem>,
    /// Warnings: reported, but the roster stays valid.
    pub warnings: Vec<Problem>,
    /// The encoding the file was read in, when it could be read.
    pub encoding: Option<TextEncoding>,
    /// The field separator detected.
    pub delimiter: Option<char>,
}

/// A roster known to have no errors: the only kind the planner accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ValidRoster<'a>(&'a Roster);

impl<'a> ValidRoster<'a> {
    /// The roster's path.
    pub fn path(&self) -> &'a str {
        &self.0.path
    }

    /// The people, each e-mail once.
    pub fn people(&self) -> &'a [Person] {
        &self.0.people
    }

    /// Warnings found while reading.
    pub fn warnings(&self) -> &'a [Problem] {
        &self.0.warnings
    }

    /// The underlying roster.
    pub fn roster(&self) -> &'a Roster {
        self.0
    }
}

/// A roster that cannot be used, with every problem that makes it so.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("roster {path} is invalid: {} ({} problem{} in all)", first_problem(.errors), .errors.len(), if .errors.len() == 1 { "" } else { "s" })]
pub struct InvalidRoster {
    /// The roster's path.
    pub path: String,
    /// Every error found.
    pub errors: Vec<Problem>,
}

fn first_problem(errors: &[Problem]) -> String {
    errors.first().map(Problem::to_string).unwrap_or_default()
}

impl Roster {
    /// Whether the roster has no errors.
    pub fn is_valid(&self) -> bool {
        self.errors.is_empty()
    }

    /// The roster as valid, or every error that keeps it from being so.
    ///
    /// # Errors
    /// [`InvalidRoster`] when any error was found.
    pub fn validated(&self) -> Result<ValidRoster<'_>, InvalidRoster> {
        if self.errors.is_empty() {
            Ok(ValidRoster(self))
        } else {
            Err(InvalidRoster {
                path: self.path.clone(),
                errors: self.errors.clone(),
            })
        }
    }

    fn empty(path: &str) -> Self {
        Self {
            path: path.to_owned(),
            rows: 0,
            people: Vec::new(),
            errors: Vec::new(),
            warnings: Vec::new(),
            encoding: None,
            delimiter: None,
        }
    }

    fn error(
        &mut self,
        line: Option<u64>,
        column: Option<u64>,
        code: ProblemCode,
        message: String,
    ) {
        self.errors.push(Problem {
            line,
            column,
            code,
            message,
        });
    }
}

/// Which field holds what, decided by a header row or by the default order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Columns {
    name: Option<usize>,
    email: usize,
    package_role: Option<usize>,
    count: usize,
}

const DEFAULT_COLUMNS: Columns = Columns {
    name: Some(0),
    email: 1,
    package_role: Some(2),
    count: 3,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ColumnKind {
    Name,
    Email,
    PackageRole,
}

/// Recognises a header cell; names are compared without case, spaces, `_` or `-`.
fn header_kind(cell: &str) -> Option<ColumnKind> {
    let normal: String = cell
        .chars()
        .filter(|c| !matches!(c, ' ' | '_' | '-' | '.'))
        .flat_map(char::to_lowercase)
        .collect();
    match normal.as_str() {
        "displayname" | "name" | "fullname" | "naam" => Some(ColumnKind::Name),
        "email" | "emailaddress" | "mail" | "mailaddress" | "userprincipalname" | "upn" => {
            Some(ColumnKind::Email)
        }
        "role" | "package" | "accesspackage" | "packagerole" | "project" | "projectrole" => {
            Some(ColumnKind::PackageRole)
        }
        _ => None,
    }
}

/// The csv reader every roster is split with: no header handling (the roster decides),
/// rows of any length, `#` comments; fields trimmed unless `trim` is false.
fn csv_reader(text: &[u8], delimiter: u8, trim: bool) -> csv::Reader<&[u8]> {
    csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(delimiter)
        .comment(Some(b'#'))
        .trim(if trim {
            csv::Trim::All
        } else {
            csv::Trim::None
        })
        .from_reader(text)
}

/// Picks `;`, `,` or tab by trying each on the first rows of the file.
///
/// The winner is the separator under which most rows hold a valid e-mail address, then the
/// one under which most rows have two or three fields, then the one that leaves no tab at
/// the edge of a field, then the one that leaves the fewest fields empty (`;<tab>a@b.c` is
/// a name `;` in a tab file, not an empty name). Ties go to
/// `;`, then tab, then `,`, because a comma inside an unquoted name
/// (`Doe, Jane;jane@example.com`) is common in semicolon files and the reverse is not.
fn detect_delimiter(text: &str) -> u8 {
    const CANDIDATES: [u8; 3] = [b';', b'\t', b','];
    const SAMPLE_ROWS: usize = 50;
    let sample = &text.as_bytes()[..text.len().min(64 * 1024)];
    let mut best = (CANDIDATES[0], (0, 0, 0, 0));
    for delimiter in CANDIDATES {
        // Untrimmed, so that a tab beside another separator can count against it.
        let mut reader = csv_reader(sample, delimiter, false);
        let (mut with_email, mut well_shaped, mut filled, mut clean) = (0, 0, 0, 0);
        for record in reader.byte_records().take(SAMPLE_ROWS).flatten() {
            let raw: Vec<&str> = record.iter().map(as_text).collect();
            let fields: Vec<&str> = raw.iter().map(|f| f.trim()).collect();
            let used = fields
                .iter()
                .rposition(|f| !f.is_empty())
                .map_or(0, |i| i + 1);
            if (2..=3).contains(&used) {
                well_shaped += 1;
            }
            if fields[..used].iter().all(|f| !f.is_empty()) {
                filled += 1;
            }
            // Excel's "Unicode text" separates with tabs and leaves `;` and `,` in names
            // unquoted, so a field that begins or ends with a tab means tab is the separator.
            if !raw.iter().any(|f| f.starts_with('\t') || f.ends_with('\t')) {
                clean += 1;
            }
            if fields.iter().any(|field| check_email(field).is_ok()) {
                with_email += 1;
            }
        }
        let score = (with_email, well_shaped, clean, filled);
        if score > best.1 {
            best = (delimiter, score);
        }
    }
    best.0
}

/// A roster that was not read because its file is over the byte limit: `size` is what the
/// file system or blob storage said, or `None` when the file grew past the limit while it
/// was read (reading stops one byte past the limit).
pub fn too_large(path: &str, size: Option<u64>, limits: Limits) -> Roster {
    let mut roster = Roster::empty(path);
    let size = match size {
        Some(size) => format!("is {size} bytes"),
        None => format!("grew past {} bytes while it was read", limits.max_bytes),
    };
    roster.error(
        None,
        None,
        ProblemCode::TooLarge,
        format!(
            "the file {size}; a roster may be at most {} bytes ({} MiB)",
            limits.max_bytes,
            limits.max_bytes / (1024 * 1024)
        ),
    );
    roster
}

/// Reads one roster file's bytes. Never fails: every problem is in the returned roster.
pub fn parse(path: &str, bytes: &[u8], limits: Limits) -> Roster {
    if bytes.len() > limits.max_bytes {
        return too_large(path, Some(bytes.len() as u64), limits);
    }
    let mut roster = Roster::empty(path);
    let text = match decode(bytes) {
        Ok((text, encoding)) => {
            roster.encoding = Some(encoding);
            text
        }
        Err(problem) => {
            roster.error(
                None,
                None,
                ProblemCode::UnreadableEncoding,
                format!("the file {problem}"),
            );
            return roster;
        }
    };
    let delimiter = detect_delimiter(&text);
    roster.delimiter = Some(char::from(delimiter));
    read_rows(&mut roster, &text, delimiter, limits);
    roster
}

fn read_rows(roster: &mut Roster, text: &str, delimiter: u8, limits: Limits) {
    let mut reader = csv_reader(text.as_bytes(), delimiter, true);
    let mut record = csv::ByteRecord::new();
    let mut columns: Option<Columns> = None;
    let mut seen = SeenEmails::default();
    let mut lines = LineCounter::new(text.as_bytes());
    // Found before reading: the reader itself would read the swallowed rows as one field.
    let mut bad_quote = quotes::find_swallowing_quote(text, delimiter);
    let mut records = 0;
    loop {
        match reader.read_byte_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(error) => {
                let line = error.position().map(|p| lines.line_at(p.byte()));
                roster.error(
                    line,
                    None,
                    ProblemCode::MalformedCsv,
                    format!("the CSV cannot be split into fields: {error}"),
                );
                break;
            }
        }
        let line = lines.line_at(record.position().map_or(0, csv::Position::byte));
        records += 1;
        if bad_quote.as_ref().is_some_and(|bad| bad.record == records) {
            break;
        }
        // Input is valid UTF-8 (decoded above) and fields are split on ASCII bytes.
        // Rows have a handful of fields: keep them on the stack, not in a fresh Vec per row.
        let mut on_stack: [&str; 8] = [""; 8];
        let on_heap: Vec<&str>;
        let fields: &[&str] = if record.len() <= on_stack.len() {
            for (slot, field) in on_stack.iter_mut().zip(record.iter()) {
                *slot = as_text(field);
            }
            &on_stack[..record.len()]
        } else {
            on_heap = record.iter().map(as_text).collect();
            &on_heap
        };
        if fields.iter().all(|field| field.is_empty()) {
            continue;
        }
        let layout = match columns {
            Some(layout) => layout,
            None => {
                let (layout, is_header) = read_header(roster, line, fields);
                columns = Some(layout);
                if is_header {
                    continue;
                }
                layout
            }
        };
        roster.rows += 1;
        if roster.rows > limits.max_rows {
            roster.error(
                Some(line),
                None,
                ProblemCode::TooLarge,
                format!(
                    "the roster has more than {} people rows; split it or raise the limit",
                    limits.max_rows
                ),
            );
            return;
        }
        if let Some(person) = read_person(roster, line, fields, layout) {
            match seen.first_line_of(&person, &roster.people) {
                Some(first) => roster.warnings.push(Problem {
                    line: Some(line),
                    column: Some(layout.email as u64 + 1),
                    code: ProblemCode::DuplicateEmail,
                    message: format!(
                        "`{}` is already on line {first}; it counts once",
                        clip(&person.email)
                    ),
                }),
                None => {
                    seen.insert(&person, roster.people.len());
                    roster.people.push(person);
                }
            }
        }
    }
    // Nothing after a bad quote can be trusted to be the row it looks like: stop there.
    if let Some(bad) = bad_quote.take() {
        roster.error(
            Some(bad.line),
            Some(bad.column),
            ProblemCode::MalformedCsv,
            bad.message,
        );
    }
}

fn as_text(field: &[u8]) -> &str {
    std::str::from_utf8(field).unwrap_or_default()
}

/// Finds repeated e-mails without allocating a key per row: rows are hashed by their
/// case-folded address, and a hash match is confirmed against the earlier row.
#[derive(Default)]
struct SeenEmails {
    by_hash: HashMap<u64, usize, BuildPassThrough>,
    /// Rows whose hash was already taken by a different address (rare).
    overflow: HashMap<String, usize>,
}

impl SeenEmails {
    fn hash(email: &str) -> u64 {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        let mut mix = |byte: u8| {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        };
        if email.is_ascii() {
            email.bytes().for_each(|b| mix(b.to_ascii_lowercase()));
        } else {
            email_key(email).bytes().for_each(mix);
        }
        hash
    }

    fn same(a: &str, b: &str) -> bool {
        same_address(a, b)
    }

    fn first_line_of(&self, person: &Person, people: &[Person]) -> Option<u64> {
        let index = match self.by_hash.get(&Self::hash(&person.email)) {
            Some(index) if Self::same(&people[*index].email, &person.email) => Some(*index),
            Some(_) => self.overflow.get(&person.email_key()).copied(),
            None => None,
        };
        index.map(|index| people[index].line)
    }

    fn insert(&mut self, person: &Person, index: usize) {
        let hash = Self::hash(&person.email);
        match self.by_hash.entry(hash) {
            std::collections::hash_map::Entry::Occupied(_) => {
                self.overflow.insert(person.email_key(), index);
            }
            std::collections::hash_map::Entry::Vacant(slot) => {
                slot.insert(index);
            }
        }
    }
}

/// The keys of [`SeenEmails`] are hashes already; hashing them again is wasted work.
#[derive(Default, Clone, Copy)]
struct BuildPassThrough;

#[derive(Default)]
struct PassThrough(u64);

impl std::hash::Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 = (self.0 << 8) | u64::from(*byte);
        }
    }

    fn write_u64(&mut self, value: u64) {
        self.0 = value;
    }
}

impl std::hash::BuildHasher for BuildPassThrough {
    type Hasher = PassThrough;

    fn build_hasher(&self) -> PassThrough {
        PassThrough(0)
    }
}

/// Turns csv record offsets into 1-based physical line numbers; offsets must not decrease.
///
/// csv reports a record's position as the end of the previous record, before the blank and
/// comment lines it skipped (and its line count misses comment lines), so both would point
/// at the wrong line. We skip those lines ourselves to find where the row really starts.
struct LineCounter<'a> {
    text: &'a [u8],
    offset: usize,
    line: u64,
}

impl<'a> LineCounter<'a> {
    fn new(text: &'a [u8]) -> Self {
        Self {
            text,
            offset: 0,
            line: 1,
        }
    }

    fn line_at(&mut self, offset: u64) -> u64 {
        let mut offset = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(self.text.len());
        while let Some(&byte) = self.text.get(offset) {
            let at_line_start = offset == 0 || matches!(self.text[offset - 1], b'\n' | b'\r');
            match byte {
                b'\n' | b'\r' => offset += 1,
                b'#' if at_line_start => {
                    offset = self.text[offset..]
                        .iter()
                        .position(|byte| *byte == b'\n')
                        .map_or(self.text.len(), |newline| offset + newline + 1);
                }
                _ => break,
            }
        }
        if offset > self.offset {
            let newlines = self.text[self.offset..offset]
                .iter()
                .filter(|byte| **byte == b'\n')
                .count();
            self.line += newlines as u64;
            self.offset = offset;
        }
        self.line
    }
}

/// Decides whether the first row is a header; returns the column layout either way.
fn read_header(roster: &mut Roster, line: u64, fields: &[&str]) -> (Columns, bool) {
    let kinds: Vec<Option<ColumnKind>> = fields.iter().map(|f| header_kind(f)).collect();
    let looks_like_header =
        !fields.iter().any(|f| f.contains('@')) && kinds.iter().any(|kind| kind.is_some());
    if !looks_like_header {
        return (DEFAULT_COLUMNS, false);
    }
    let mut layout = Columns {
        name: None,
        email: usize::MAX,
        package_role: None,
        count: fields.len(),
    };
    for (index, (field, kind)) in fields.iter().zip(&kinds).enumerate() {
        let slot = match kind {
            Some(ColumnKind::Name) => &mut layout.name,
            Some(ColumnKind::PackageRole) => &mut layout.package_role,
            Some(ColumnKind::Email) if layout.email == usize::MAX => {
                layout.email = index;
                continue;
            }
            Some(ColumnKind::Email) => {
                roster.error(
                    Some(line),
                    Some(index as u64 + 1),
                    ProblemCode::UnknownHeader,
                    format!(
                        "the header names a second e-mail column `{}`; a roster has one",
                        clip(field)
                    ),
                );
                continue;
            }
            None if field.is_empty() => continue,
            None => {
                roster.error(
                    Some(line),
                    Some(index as u64 + 1),
                    ProblemCode::UnknownHeader,
                    format!(
                        "the header names a column `{}`; expected DisplayName, Email and optionally Role",
                        clip(field)
                    ),
                );
                continue;
            }
        };
        if slot.is_some() {
            roster.error(
                Some(line),
                Some(index as u64 + 1),
                ProblemCode::UnknownHeader,
                format!("the header names the column `{}` twice", clip(field)),
            );
        } else {
            *slot = Some(index);
        }
    }
    if layout.email == usize::MAX {
        roster.error(
            Some(line),
            None,
            ProblemCode::MissingEmail,
            "the header has no e-mail column (Email, Mail or UserPrincipalName)".into(),
        );
        layout.email = layout.count;
    }
    (layout, true)
}

fn read_person(roster: &mut Roster, line: u64, fields: &[&str], layout: Columns) -> Option<Person> {
    let column_of = |index: usize| Some(index as u64 + 1);
    if let Some(extra) = (layout.count..fields.len()).find(|index| !fields[*index].is_empty()) {
        roster.error(
            Some(line),
            column_of(extra),
            ProblemCode::TooManyColumns,
            format!(
                "the row has a value in column {} (`{}`); a roster has at most {} columns: display name, e-mail, package | role",
                extra + 1,
                clip(fields[extra]),
                layout.count
            ),
        );
        return None;
    }
    // A value `enroll export` guarded against spreadsheet formulas (`'=…`) reads as itself.
    let field = |index: Option<usize>| {
        index
            .and_then(|index| fields.get(index))
            .map(|field| csv_unguard(field).to_owned())
            .filter(|field| !field.is_empty())
    };
    let display_name = field(layout.name).unwrap_or_default();
    let Some(email) = field(Some(layout.email)) else {
        let hint = if fields.len() <= layout.email {
            format!(
                "; the row has {} field{} (is the separator `;`, `,` or tab used throughout?)",
                fields.len(),
                if fields.len() == 1 { "" } else { "s" }
            )
        } else {
            String::new()
        };
        roster.error(
            Some(line),
            column_of(layout.email),
            ProblemCode::MissingEmail,
            format!("the row has no e-mail address{hint}"),
        );
        return None;
    };
    if let Err(reason) = check_email(&email) {
        let swapped = layout == DEFAULT_COLUMNS
            && !email.contains('@')
            && display_name.contains('@')
            && check_email(&display_name).is_ok();
        let hint = if swapped {
            " (column 1 holds an address: are the columns swapped? add a header row such as `Email;DisplayName`)"
        } else {
            ""
        };
        roster.error(
            Some(line),
            column_of(layout.email),
            ProblemCode::InvalidEmail,
            format!(
                "`{}` is not a valid e-mail address: it {reason}{hint}",
                clip(&email)
            ),
        );
        return None;
    }
    Some(Person {
        display_name,
        email,
        package_role: field(layout.package_role),
        line,
    })
}

/// A short, stable fingerprint of a roster's bytes (FNV-1a, 64 bits, hex): its version when no blob ETag is at hand.
pub fn content_version(bytes: &[u8]) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in bytes {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{hash:016x}")
}

#[cfg(test)]
mod tests;
