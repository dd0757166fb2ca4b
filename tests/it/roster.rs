//! Roster fixture files, read as the bytes Excel and people produce.

use std::path::Path;

use enroll_core::roster::{Limits, Roster, TextEncoding, parse};

fn fixture(name: &str) -> Roster {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/rosters")
        .join(name);
    parse(name, &std::fs::read(path).unwrap(), Limits::default())
}

fn names(roster: &Roster) -> Vec<&str> {
    roster
        .people
        .iter()
        .map(|p| p.display_name.as_str())
        .collect()
}

const UNICODE_NAMES: [&str; 4] = [
    "Eén Jansen",
    "Ĳsbrand de Vries",
    "Zoë Müller",
    "Łukasz Nowak",
];

#[test]
fn every_unicode_encoding_and_delimiter_gives_the_same_people() {
    for (file, encoding, delimiter) in [
        ("utf8-semicolon.csv", TextEncoding::Utf8, ';'),
        ("utf8-bom-comma-crlf.csv", TextEncoding::Utf8Bom, ','),
        ("utf16le-bom-tab.csv", TextEncoding::Utf16Le, '\t'),
        ("utf16be-bom-semicolon.csv", TextEncoding::Utf16Be, ';'),
    ] {
        let roster = fixture(file);
        assert!(roster.is_valid(), "{file}: {:?}", roster.errors);
        assert_eq!(names(&roster), UNICODE_NAMES, "{file}");
        assert_eq!(roster.encoding, Some(encoding), "{file}");
        assert_eq!(roster.delimiter, Some(delimiter), "{file}");
        assert_eq!(roster.people[3].email, "lukasz.nowak@example.pl", "{file}");
        assert_eq!(
            roster.people[0].package_role.as_deref(),
            Some("Project X | Approver")
        );
    }
}

#[test]
fn windows_1252_exports_come_out_right() {
    let roster = fixture("windows1252-semicolon.csv");
    assert_eq!(roster.encoding, Some(TextEncoding::Windows1252));
    assert_eq!(
        names(&roster),
        ["Eén Jansen", "Zoë Müller", "François Dubois"]
    );
}

#[test]
fn a_header_reorders_columns() {
    let roster = fixture("header-reordered.csv");
    assert!(roster.is_valid(), "{:?}", roster.errors);
    assert_eq!(names(&roster), UNICODE_NAMES);
    assert_eq!(roster.people[0].line, 2);
}

#[test]
fn quoted_fields_survive_and_lines_stay_physical() {
    let roster = fixture("quoted-fields.csv");
    assert!(roster.is_valid(), "{:?}", roster.errors);
    assert_eq!(
        names(&roster),
        ["Doe; Jane \"JD\"", "Smith,\nJohn", "Plain Name"]
    );
    let lines: Vec<u64> = roster.people.iter().map(|p| p.line).collect();
    assert_eq!(lines, [2, 3, 6]);
}

#[test]
fn utf16_without_bom_is_refused_not_misread() {
    let roster = fixture("utf16-without-bom.csv");
    assert_eq!(roster.errors[0].code.as_str(), "unreadable_encoding");
    assert!(roster.people.is_empty());
}

#[test]
fn empty_roster_is_valid_and_empty() {
    let roster = fixture("empty.csv");
    assert!(roster.is_valid());
    assert_eq!(roster.rows, 0);
}

/// The (line, column, code) of every error.
fn errors(roster: &Roster) -> Vec<(Option<u64>, Option<u64>, &'static str)> {
    roster
        .errors
        .iter()
        .map(|p| (p.line, p.column, p.code.as_str()))
        .collect()
}

/// A roster with a quote that swallows rows: exactly one `malformed_csv` at the quote, and
/// invalid, so it can never be planned.
fn assert_malformed_at(file: &str, line: u64, column: u64) -> Roster {
    let roster = fixture(file);
    assert_eq!(
        errors(&roster),
        [(Some(line), Some(column), "malformed_csv")],
        "{file}: {:?}",
        roster.errors
    );
    assert!(roster.validated().is_err(), "{file}");
    roster
}

#[test]
fn an_unclosed_quote_in_column_1_is_malformed() {
    let roster = assert_malformed_at("unclosed-quote-column1.csv", 2, 1);
    assert!(
        roster.errors[0].message.contains("never closed"),
        "{}",
        roster.errors[0]
    );
}

#[test]
fn an_unclosed_quote_in_column_2_is_malformed() {
    assert_malformed_at("unclosed-quote-column2.csv", 2, 2);
}

#[test]
fn an_unclosed_quote_in_column_3_is_malformed() {
    assert_malformed_at("unclosed-quote-column3.csv", 2, 3);
}

#[test]
fn an_unclosed_quote_in_the_name_column_under_an_email_first_header_is_malformed() {
    assert_malformed_at("unclosed-quote-under-header.csv", 4, 2);
}

#[test]
fn a_quote_that_closes_after_swallowing_rows_is_malformed_where_it_opened() {
    let roster = assert_malformed_at("quote-closes-after-swallowing-rows.csv", 2, 3);
    let message = &roster.errors[0].message;
    assert!(message.contains("closes only on line 4"), "{message}");
    assert!(message.contains("line 3, inside it"), "{message}");
}

#[test]
fn an_unclosed_quote_in_a_comma_separated_excel_file_is_malformed() {
    let roster = assert_malformed_at("unclosed-quote-comma.csv", 2, 3);
    assert_eq!(roster.delimiter, Some(','));
    assert_eq!(roster.encoding, Some(TextEncoding::Utf8Bom));
}

#[test]
fn an_unclosed_quote_in_a_tab_separated_file_is_malformed() {
    let roster = assert_malformed_at("unclosed-quote-tab.csv", 2, 1);
    assert_eq!(roster.delimiter, Some('\t'));
}

#[test]
fn an_unclosed_quote_in_utf16_is_malformed_at_its_line() {
    let roster = assert_malformed_at("unclosed-quote-utf16le.csv", 3, 3);
    assert_eq!(roster.encoding, Some(TextEncoding::Utf16Le));
    assert_eq!(roster.delimiter, Some('\t'));
}

#[test]
fn an_unclosed_quote_in_windows_1252_is_malformed() {
    let roster = assert_malformed_at("unclosed-quote-windows1252.csv", 2, 2);
    assert_eq!(roster.encoding, Some(TextEncoding::Windows1252));
}

#[test]
fn display_names_excel_wrote_across_lines_stay_valid() {
    let roster = fixture("multiline-display-name.csv");
    assert!(roster.is_valid(), "{:?}", roster.errors);
    assert_eq!(
        names(&roster),
        [
            "Smith,\nJohn",
            "Doe; Jane \"JD\"\nHead of\nSales",
            "Plain Name"
        ]
    );
    let lines: Vec<u64> = roster.people.iter().map(|p| p.line).collect();
    assert_eq!(lines, [2, 4, 7]);
    assert_eq!(
        roster.people[2].package_role.as_deref(),
        Some("Project X |\nApprover")
    );
}
