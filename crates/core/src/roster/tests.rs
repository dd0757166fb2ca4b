#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use proptest::prelude::*;

fn read(text: &str) -> Roster {
    parse(
        "rosters/Project X - Manager.csv",
        text.as_bytes(),
        Limits::default(),
    )
}

fn emails(roster: &Roster) -> Vec<&str> {
    roster.people.iter().map(|p| p.email.as_str()).collect()
}

fn codes(problems: &[Problem]) -> Vec<(Option<u64>, Option<u64>, &'static str)> {
    problems
        .iter()
        .map(|p| (p.line, p.column, p.code.as_str()))
        .collect()
}

#[test]
fn reads_the_documented_row_form() {
    let roster = read("User Z;userz@example.com;Project X | Role Y\n");
    assert!(roster.is_valid(), "{:?}", roster.errors);
    assert_eq!(
        roster.people,
        vec![Person {
            display_name: "User Z".into(),
            email: "userz@example.com".into(),
            package_role: Some("Project X | Role Y".into()),
            line: 1,
        }]
    );
    assert_eq!(roster.delimiter, Some(';'));
}

#[test]
fn detects_comma_and_tab_delimiters() {
    assert_eq!(
        emails(&read("A,a@example.com\nB,b@example.com\n")),
        ["a@example.com", "b@example.com"]
    );
    let tabbed = read("A\ta@example.com\tP | R\n");
    assert_eq!(tabbed.delimiter, Some('\t'));
    assert_eq!(tabbed.people[0].package_role.as_deref(), Some("P | R"));
}

#[test]
fn semicolon_wins_over_commas_inside_names() {
    let roster = read("Doe, Jane;jane@example.com\nRoe, Rick;rick@example.com\n");
    assert_eq!(roster.delimiter, Some(';'));
    assert_eq!(roster.people[0].display_name, "Doe, Jane");
}

#[test]
fn excel_unicode_text_keeps_semicolons_and_commas_in_names() {
    // Excel's "Unicode text" separates with tabs and does not quote `;` or `,`.
    let roster =
        read("Doe; Jane\tjane@example.com\nA;\ta@example.com\nRoe, Rick\trick@example.com\n");
    assert_eq!(roster.delimiter, Some('\t'));
    let names: Vec<&str> = roster
        .people
        .iter()
        .map(|p| p.display_name.as_str())
        .collect();
    assert_eq!(names, ["Doe; Jane", "A;", "Roe, Rick"]);
}

#[test]
fn quoted_fields_keep_delimiters_quotes_and_line_breaks() {
    let roster = read(
        "\"Doe; Jane \"\"JD\"\"\";jane@example.com\n\"Multi\nLine\";ml@example.com\nX;\"bad address\"\n",
    );
    assert_eq!(roster.people[0].display_name, "Doe; Jane \"JD\"");
    assert_eq!(roster.people[1].display_name, "Multi\nLine");
    assert_eq!(roster.people[1].line, 2);
    // The line after a quoted line break is physical line 4.
    assert_eq!(codes(&roster.errors), [(Some(4), Some(2), "invalid_email")]);
}

#[test]
fn blank_comment_and_crlf_lines_are_ignored_and_lines_still_count() {
    let roster = read(
        "# roster for Project X\r\n\r\n  \r\nA;a@example.com\r\n;;\r\n# B;b@example.com\r\nC ;  c@example.com  \r\nD;nope\r\n",
    );
    assert_eq!(emails(&roster), ["a@example.com", "c@example.com"]);
    assert_eq!(roster.people[1].display_name, "C");
    assert_eq!(roster.rows, 3);
    assert_eq!(codes(&roster.errors), [(Some(8), Some(2), "invalid_email")]);
}

#[test]
fn header_row_decides_column_order() {
    let roster = read("E-Mail;Role;Display Name\nzoe@example.com;P | R;Zoë\n");
    assert!(roster.is_valid(), "{:?}", roster.errors);
    assert_eq!(roster.people[0].display_name, "Zoë");
    assert_eq!(roster.people[0].email, "zoe@example.com");
    assert_eq!(roster.people[0].package_role.as_deref(), Some("P | R"));
    assert_eq!(roster.people[0].line, 2);
    assert_eq!(roster.rows, 1);

    let upn = read("USERPRINCIPALNAME,name\na@example.com,A\n");
    assert_eq!(upn.people[0].display_name, "A");
}

#[test]
fn header_with_unknown_or_missing_columns_is_an_error() {
    let unknown = read("Name;Email;Department\nA;a@example.com;\n");
    assert_eq!(
        codes(&unknown.errors),
        [(Some(1), Some(3), "unknown_header")]
    );
    let no_email = read("Name;Role\nA;P\n");
    assert!(codes(&no_email.errors).contains(&(Some(1), None, "missing_email")));
    assert!(!no_email.is_valid());
}

#[test]
fn extra_columns_are_errors_but_trailing_empty_ones_are_not() {
    let roster = read("A;a@example.com;P | R;;\nB;b@example.com;P | R;oops\n");
    assert_eq!(emails(&roster), ["a@example.com"]);
    assert_eq!(
        codes(&roster.errors),
        [(Some(2), Some(4), "too_many_columns")]
    );
    assert!(roster.errors[0].message.contains("`oops`"));
}

#[test]
fn missing_and_invalid_emails_carry_line_and_column() {
    let roster = read("A;a@example.com\nB;\nOnlyOneField\nC;c.example.com\nD;D <d@example.com>\n");
    assert_eq!(
        codes(&roster.errors),
        [
            (Some(2), Some(2), "missing_email"),
            (Some(3), Some(2), "missing_email"),
            (Some(4), Some(2), "invalid_email"),
            (Some(5), Some(2), "invalid_email"),
        ]
    );
    assert!(roster.errors[1].message.contains("1 field"));
    assert!(roster.errors[3].message.contains("display-name form"));
}

#[test]
fn swapped_columns_get_a_hint() {
    let roster = read("a@example.com;Alice\n");
    assert!(
        roster.errors[0].message.contains("swapped"),
        "{}",
        roster.errors[0]
    );
}

#[test]
fn duplicate_emails_in_any_case_warn_and_count_once() {
    let roster = read("A;a@example.com\nA again;A@Example.COM\n");
    assert!(roster.is_valid());
    assert_eq!(emails(&roster), ["a@example.com"]);
    assert_eq!(roster.rows, 2);
    assert_eq!(
        codes(&roster.warnings),
        [(Some(2), Some(2), "duplicate_email")]
    );
    assert!(roster.warnings[0].message.contains("line 1"));
}

#[test]
fn any_error_makes_the_whole_roster_invalid() {
    let roster = read("A;a@example.com\nB;broken\n");
    assert_eq!(roster.people.len(), 1);
    let invalid = roster.validated().unwrap_err();
    assert_eq!(invalid.errors.len(), 1);
    assert!(
        invalid
            .to_string()
            .contains("line 2, column 2: `broken` is not a valid e-mail address")
    );
}

#[test]
fn an_unclosed_quote_in_any_column_is_malformed_at_the_quote_not_guessed() {
    for (text, line, column) in [
        (
            "A;a@example.com\n\"B;b@example.com\nC;c@example.com\n",
            2,
            1,
        ),
        (
            "A;a@example.com\nB;\"b@example.com\nC;c@example.com\n",
            2,
            2,
        ),
        (
            "A;a@example.com\nB;b@example.com;\"P | R\nC;c@example.com\n",
            2,
            3,
        ),
        (
            "Email;DisplayName\na@example.com;\"Ann\nb@example.com;Bob\n",
            2,
            2,
        ),
    ] {
        let roster = read(text);
        assert_eq!(
            codes(&roster.errors),
            [(Some(line), Some(column), "malformed_csv")],
            "{text:?}"
        );
        assert!(roster.validated().is_err(), "{text:?}");
    }
}

#[test]
fn rows_before_a_bad_quote_are_still_checked_and_nothing_after_it() {
    let roster =
        read("A;a@example.com\nB;broken\nC;c@example.com;\"P\nD;d@example.com;P\"\nE;nope\n");
    assert_eq!(
        codes(&roster.errors),
        [
            (Some(2), Some(2), "invalid_email"),
            (Some(3), Some(3), "malformed_csv")
        ]
    );
}

#[test]
fn messages_quote_at_most_40_characters_of_a_cell_with_controls_escaped() {
    let long = format!("{}@example.com", "x".repeat(70));
    let roster = read(&format!("A;{long}\nB;b@example.com;P;\u{1b}[31mextra\n"));
    let invalid = &roster.errors[0].message;
    assert!(
        invalid.starts_with(&format!("`{}…` is not a valid", "x".repeat(40))),
        "{invalid}"
    );
    let extra = &roster.errors[1].message;
    assert!(extra.contains("(`\\u{1b}[31mextra`)"), "{extra}");
    assert!(!extra.contains('\u{1b}'), "{extra}");
}

#[test]
fn cells_guarded_against_spreadsheet_formulas_read_as_themselves() {
    let roster =
        read("'=SUM(A1);sum@example.com\n'@Bob;bob@example.com;'-P\n'Plain;p@example.com\n");
    assert!(roster.is_valid(), "{:?}", roster.errors);
    let names: Vec<&str> = roster
        .people
        .iter()
        .map(|p| p.display_name.as_str())
        .collect();
    assert_eq!(names, ["=SUM(A1)", "@Bob", "'Plain"]);
    assert_eq!(roster.people[1].package_role.as_deref(), Some("-P"));
}

#[test]
fn limits_give_too_large() {
    let limits = Limits {
        max_bytes: 64,
        max_rows: 2,
    };
    let big = parse("r.csv", &[b'a'; 65], limits);
    assert_eq!(codes(&big.errors), [(None, None, "too_large")]);
    assert!(
        big.errors[0]
            .message
            .starts_with("the file is 65 bytes; a roster may be at most 64 bytes")
    );
    let grew = too_large("r.csv", None, limits);
    assert_eq!(codes(&grew.errors), [(None, None, "too_large")]);
    assert!(
        grew.errors[0]
            .message
            .contains("grew past 64 bytes while it was read")
    );
    let many = parse("r.csv", b"A;a@x.com\nB;b@x.com\nC;c@x.com\n", limits);
    assert_eq!(codes(&many.errors), [(Some(3), None, "too_large")]);
    assert!(many.validated().is_err());
}

#[test]
fn unreadable_bytes_are_reported() {
    let roster = parse("r.csv", b"A\0;\0a\0@\0x\0.\0c\0o\0m\0", Limits::default());
    assert_eq!(codes(&roster.errors), [(None, None, "unreadable_encoding")]);
}

#[test]
fn empty_file_is_a_valid_empty_roster() {
    let roster = read("# nobody yet\n");
    assert!(roster.is_valid());
    assert!(roster.people.is_empty());
}

#[test]
fn content_version_changes_with_content() {
    assert_eq!(content_version(b"a"), content_version(b"a"));
    assert_ne!(content_version(b"a"), content_version(b"b"));
    assert_eq!(content_version(b"").len(), 16);
}

fn name_strategy() -> impl Strategy<Value = String> {
    // Names with the characters that trip CSV writers: separators, quotes, line breaks, non-ASCII.
    // `=`, `+`, `-` and `@` at the start are guarded as `enroll export` writes them.
    proptest::string::string_regex("[A-Za-zÀ-ÿĲŁłë ,;\"'\n=+@-]{0,20}")
        .unwrap()
        .prop_map(|name| name.trim().to_owned())
        .prop_filter("a lone # would read as a comment", |name| {
            !name.starts_with('#')
        })
}

fn email_strategy() -> impl Strategy<Value = String> {
    proptest::string::string_regex(
        "[a-z0-9_]{1,10}(\\.[a-z0-9_]{1,5})?@[a-z0-9]{1,10}\\.(com|nl|org)",
    )
    .unwrap()
}

proptest! {
    #[test]
    fn written_rosters_read_back_as_the_same_people(
        people in proptest::collection::vec((name_strategy(), email_strategy()), 0..30),
        delimiter in prop::sample::select(vec![b';', b',', b'\t']),
        crlf in any::<bool>(),
        header in any::<bool>(),
    ) {
        let mut writer = csv::WriterBuilder::new()
            .delimiter(delimiter)
            .terminator(if crlf { csv::Terminator::CRLF } else { csv::Terminator::Any(b'\n') })
            .from_writer(Vec::new());
        if header {
            writer.write_record(["DisplayName", "Email"]).unwrap();
        }
        for (name, email) in &people {
            writer.write_record([&*crate::escape::csv_guard(name), email]).unwrap();
        }
        let bytes = writer.into_inner().unwrap();
        let roster = parse("p.csv", &bytes, Limits::default());
        prop_assert!(roster.is_valid(), "{:?}", roster.errors);
        let mut expected: Vec<(String, String)> = Vec::new();
        for (name, email) in people {
            if !expected.iter().any(|(_, e)| email_key(e) == email_key(&email)) {
                expected.push((name, email));
            }
        }
        let got: Vec<(String, String)> = roster
            .people
            .into_iter()
            .map(|p| (p.display_name, p.email))
            .collect();
        prop_assert_eq!(got, expected);
    }
}

#[test]
fn roster_names_are_csv_files_in_any_case() {
    assert!(is_roster_name("Projects/Key Users.csv"));
    assert!(is_roster_name("Read Only.CSV"));
    assert!(!is_roster_name("access-packages.json"));
    assert!(!is_roster_name(".csv"));
    assert!(!is_roster_name("Zoë.csvx"));
}
