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
