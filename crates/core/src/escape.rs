//! Text from rosters and the tenant, made safe for the place it is shown.
//!
//! Display names, e-mail addresses, file names and Graph's strings are written by other
//! people: a pull request, a guest filling in their own profile. Shown raw they could
//! rewrite a terminal (escape sequences, carriage returns, bidi overrides), forge lines of a
//! plan (newlines), inject HTML, links or images into a Markdown report, or run as a formula
//! when an exported roster is opened in a spreadsheet. Every report goes through this module:
//!
//! - [`Terminal`] (and [`terminal`]): control characters become visible escapes (`\n`,
//!   `\u{1b}`); nothing else changes.
//! - [`Markdown`] (and [`markdown`]): the same, and every character Markdown would read as
//!   markup is escaped, so the text renders as itself; [`code`] makes a code span that no
//!   backtick in the text can break.
//! - [`clip`]: at most [`CLIP_CHARS`] characters of a value, for messages that quote a cell
//!   so it can be recognised, never to echo a file.
//! - [`csv_guard`] and [`csv_unguard`]: the OWASP defence against CSV injection, and its
//!   inverse for the roster reader, so an exported roster reads back as the same people.

use std::borrow::Cow;
use std::fmt;

/// How many characters of a cell a message may quote ([`clip`]).
pub const CLIP_CHARS: usize = 40;

/// Whether a character changes how a terminal or an editor lays out text, instead of
/// showing a glyph: C0 and C1 controls (ANSI escape sequences start with ESC or CSI),
/// DEL, line and paragraph separators, and the bidirectional marks, embeddings, overrides
/// and isolates that can make text read in another order than it is stored.
pub fn is_hostile(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061C}'
                | '\u{200E}'
                | '\u{200F}'
                | '\u{2028}'
                | '\u{2029}'
                | '\u{202A}'..='\u{202E}'
                | '\u{2066}'..='\u{2069}'
        )
}

/// Writes `c` as a visible escape: `\n`, `\r`, `\t`, else `\u{…}` in hex.
fn write_visible(out: &mut impl fmt::Write, c: char) -> fmt::Result {
    match c {
        '\n' => out.write_str("\\n"),
        '\r' => out.write_str("\\r"),
        '\t' => out.write_str("\\t"),
        other => write!(out, "\\u{{{:x}}}", u32::from(other)),
    }
}

/// Text for a terminal: every [`is_hostile`] character as a visible escape; borrowed when
/// there is none.
pub fn terminal(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_hostile) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if is_hostile(c) {
            let _ = write_visible(&mut out, c);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// [`terminal`] as a `Display` wrapper, so `format!` can escape in place; width and
/// alignment (`{:<20}`) apply to the escaped text.
#[derive(Debug, Clone, Copy)]
pub struct Terminal<'a>(pub &'a str);

impl fmt::Display for Terminal<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&terminal(self.0))
    }
}

/// ASCII punctuation that means something in CommonMark or GitHub's Markdown wherever it
/// stands: HTML and autolinks (`<`, `>`), entities (`&`), links and images (`[`, `]`: no
/// link or image can form without them), code (`` ` ``), emphasis and strikethrough (`*`,
/// `_`, `~`), table cells (`|`), and the escape itself. A bare URL may still be linked by
/// GitHub, but it shows its own target, so it cannot pass for anything else.
const MARKDOWN_INLINE: &[char] = &['\\', '`', '*', '_', '~', '[', ']', '<', '>', '&', '|'];

/// Punctuation that starts a block (heading, list, quote, setext line, thematic break) when
/// it opens a line; the text's first character is the only line start it can have, because
/// line breaks are escaped.
const MARKDOWN_LINE_START: &[char] = &['#', '-', '+', '=', '>', '*', '_'];

/// Text for Markdown prose, list items and table cells: renders as exactly these
/// characters (hostile ones as visible escapes), never as HTML, a link, an image, code,
/// emphasis, a heading, a list or a table cell boundary.
pub fn markdown(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    let _ = write_markdown(&mut out, text);
    out
}

fn write_markdown(out: &mut impl fmt::Write, text: &str) -> fmt::Result {
    // Leading digits followed by `.` or `)` would open an ordered list.
    let mut leading_digits = 0;
    for (index, c) in text.chars().enumerate() {
        if is_hostile(c) {
            // The visible escape's backslash is itself escaped, so it renders as typed.
            out.write_char('\\')?;
            write_visible(out, c)?;
        } else if MARKDOWN_INLINE.contains(&c)
            || (index == 0 && MARKDOWN_LINE_START.contains(&c))
            || (index > 0 && leading_digits == index && matches!(c, '.' | ')'))
        {
            out.write_char('\\')?;
            out.write_char(c)?;
        } else {
            out.write_char(c)?;
        }
        if c.is_ascii_digit() && leading_digits == index {
            leading_digits += 1;
        }
    }
    Ok(())
}

/// [`markdown`] as a `Display` wrapper.
#[derive(Debug, Clone, Copy)]
pub struct Markdown<'a>(pub &'a str);

impl fmt::Display for Markdown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_markdown(f, self.0)
    }
}

/// A Markdown code span holding `text` literally, outside tables: fenced by one backtick
/// more than the longest run inside, padded when the text starts or ends with a backtick,
/// and with hostile characters as visible escapes (a code span cannot hold a line break).
pub fn code(text: &str) -> String {
    let text = terminal(text);
    let longest = text
        .split(|c| c != '`')
        .map(str::len)
        .max()
        .unwrap_or_default();
    let fence = "`".repeat(longest + 1);
    if text.is_empty() {
        return "` `".to_owned();
    }
    let pad = if text.starts_with('`') || text.ends_with('`') {
        " "
    } else {
        ""
    };
    format!("{fence}{pad}{text}{pad}{fence}")
}

/// At most [`CLIP_CHARS`] characters of `text`, then `…`; hostile characters as visible
/// escapes. For messages that quote a cell so that it can be recognised: a message never
/// echoes more of a file than that.
pub fn clip(text: &str) -> String {
    let mut out = String::new();
    for (count, c) in text.chars().enumerate() {
        if count == CLIP_CHARS {
            out.push('…');
            break;
        }
        if is_hostile(c) {
            let _ = write_visible(&mut out, c);
        } else {
            out.push(c);
        }
    }
    out
}

/// A JSON error as one line that names what was wrong and where, with every string it
/// quotes [`clip`]ped: serde's messages quote the offending value whole
/// (`invalid type: string "…"`), which could echo a file.
pub fn json_error(error: &serde_json::Error) -> String {
    let text = error.to_string();
    let mut out = String::with_capacity(text.len());
    let mut rest = text.as_str();
    // serde quotes values with `{:?}`, so a string is `"…"` with inner quotes as `\"`.
    while let Some(open) = rest.find('"') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let mut end = None;
        let mut escaped = false;
        for (index, c) in after.char_indices() {
            match c {
                '\\' if !escaped => escaped = true,
                '"' if !escaped => {
                    end = Some(index);
                    break;
                }
                _ => escaped = false,
            }
        }
        let Some(end) = end else {
            out.push('"');
            out.push_str(&clip(after));
            return out;
        };
        out.push('"');
        out.push_str(&clip(&after[..end]));
        out.push('"');
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    terminal(&out).into_owned()
}

/// The characters a spreadsheet reads as the start of a formula (or of a cell to split):
/// OWASP's list for CSV injection.
const FORMULA_START: &[char] = &['=', '+', '-', '@', '\t', '\r'];

/// A CSV cell value that no spreadsheet runs as a formula: a value starting with `=`, `+`,
/// `-`, `@`, tab or carriage return gets a `'` in front (OWASP). The writer still quotes
/// the cell as CSV needs; [`csv_unguard`] takes the `'` off again. A value that already
/// looks guarded (`'=…`) gets a second `'`, so that every value reads back as itself.
pub fn csv_guard(value: &str) -> Cow<'_, str> {
    if value.trim_start_matches('\'').starts_with(FORMULA_START) {
        Cow::Owned(format!("'{value}"))
    } else {
        Cow::Borrowed(value)
    }
}

/// The value [`csv_guard`] guarded: one leading `'` is dropped when a formula character
/// follows it (after any further `'`); any other value is returned as it is.
pub fn csv_unguard(value: &str) -> &str {
    match value.strip_prefix('\'') {
        Some(rest) if rest.trim_start_matches('\'').starts_with(FORMULA_START) => rest,
        _ => value,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    /// Display names a hostile guest or pull request could set.
    const HOSTILE: [&str; 8] = [
        "<img src=x onerror=alert(1)>",
        "[Click me](https://evil.example/login)",
        "![pixel](https://evil.example/t.png)",
        "Ann` | `injected",
        "# Approved\n- remove everyone",
        "Bob\u{1b}[2J\u{1b}[31mRED\rOVER",
        "Eve \u{202E}moc.elpmaxe@eve",
        "=HYPERLINK(\"https://evil.example\",\"x\")",
    ];

    #[test]
    fn terminal_text_shows_control_characters_instead_of_obeying_them() {
        assert_eq!(terminal(HOSTILE[5]), "Bob\\u{1b}[2J\\u{1b}[31mRED\\rOVER");
        assert_eq!(terminal(HOSTILE[4]), "# Approved\\n- remove everyone");
        assert_eq!(terminal(HOSTILE[6]), "Eve \\u{202e}moc.elpmaxe@eve");
        assert_eq!(terminal("Zoë\u{9b}31m"), "Zoë\\u{9b}31m", "C1 CSI too");
        for name in HOSTILE {
            assert!(!terminal(name).chars().any(is_hostile), "{name:?}");
        }
        assert!(matches!(terminal("Plain Zoë"), Cow::Borrowed("Plain Zoë")));
        assert_eq!(format!("[{:<8}]", Terminal("a\nb")), "[a\\nb    ]");
    }

    #[test]
    fn markdown_text_renders_as_itself_not_as_markup() {
        assert_eq!(markdown(HOSTILE[0]), "\\<img src=x onerror=alert(1)\\>");
        assert_eq!(
            markdown(HOSTILE[1]),
            "\\[Click me\\](https://evil.example/login)"
        );
        assert_eq!(
            markdown(HOSTILE[2]),
            "!\\[pixel\\](https://evil.example/t.png)"
        );
        assert_eq!(markdown(HOSTILE[3]), "Ann\\` \\| \\`injected");
        assert_eq!(
            markdown(HOSTILE[4]),
            "\\# Approved\\\\n- remove everyone",
            "a heading at the start; the line break shown, not made"
        );
        assert_eq!(
            markdown("*bold* _it_ ~~del~~ a & b"),
            "\\*bold\\* \\_it\\_ \\~\\~del\\~\\~ a \\& b"
        );
        assert_eq!(markdown("- item"), "\\- item");
        assert_eq!(markdown("+1"), "\\+1");
        assert_eq!(markdown("1. first"), "1\\. first");
        assert_eq!(markdown("2024) list"), "2024\\) list");
        assert_eq!(
            markdown("Graph answered 429 to POST /$batch: (request-id r)"),
            "Graph answered 429 to POST /$batch: (request-id r)",
            "prose stays as it is"
        );
        assert_eq!(markdown("Jean-Pierre O'Neil"), "Jean-Pierre O'Neil");
        assert_eq!(markdown("v1.2"), "v1.2");
        for name in HOSTILE {
            let escaped = markdown(name);
            let mut chars = escaped.chars();
            while let Some(c) = chars.next() {
                if c == '\\' {
                    chars.next();
                } else {
                    assert!(!"<>[]`|\n\u{1b}".contains(c), "{name:?} -> {escaped}");
                }
            }
        }
        assert_eq!(format!("{}", Markdown("a|b")), "a\\|b");
    }

    #[test]
    fn code_spans_cannot_be_closed_by_the_text() {
        assert_eq!(code("plain"), "`plain`");
        assert_eq!(code("a`b"), "``a`b``");
        assert_eq!(code("``x"), "``` ``x ```");
        assert_eq!(code(""), "` `");
        assert_eq!(code("a\nb"), "`a\\nb`");
    }

    #[test]
    fn clip_quotes_enough_to_recognise_a_cell_and_no_more() {
        assert_eq!(clip("short"), "short");
        let long = "x".repeat(41);
        assert_eq!(clip(&long), format!("{}…", "x".repeat(40)));
        assert_eq!(clip(&"y".repeat(40)), "y".repeat(40));
        assert_eq!(clip("root:x:0:0\n"), "root:x:0:0\\n");
        assert_eq!(clip("ééééé"), "ééééé", "characters, not bytes");
    }

    #[test]
    fn json_errors_name_the_place_without_echoing_the_file() {
        let secret = "s3cr3t-".repeat(20);
        let error = serde_json::from_str::<std::collections::BTreeMap<String, u32>>(&format!(
            "{{\"a\": \"{secret}\"}}"
        ))
        .unwrap_err();
        let text = json_error(&error);
        assert!(text.starts_with("invalid type: string \""), "{text}");
        assert!(text.contains("…\""), "{text}");
        assert!(text.contains("line 1 column"), "{text}");
        assert!(!text.contains(&secret[..50]), "{text}");
        let syntax = serde_json::from_str::<serde_json::Value>("{\n\"a\" 1}").unwrap_err();
        assert_eq!(json_error(&syntax), syntax.to_string());
    }

    #[test]
    fn csv_guard_defuses_formulas_and_unguard_restores_them() {
        for (value, guarded) in [
            (HOSTILE[7], "'=HYPERLINK(\"https://evil.example\",\"x\")"),
            ("+31 6 1234", "'+31 6 1234"),
            ("-2+3", "'-2+3"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("\tcmd", "'\tcmd"),
            ("\rcmd", "'\rcmd"),
            ("Ann", "Ann"),
            ("'quoted'", "'quoted'"),
            ("'=already", "''=already"),
        ] {
            assert_eq!(csv_guard(value), guarded);
            assert_eq!(csv_unguard(&csv_guard(value)), value);
        }
        assert_eq!(csv_unguard("'Ann"), "'Ann", "a quote before a letter stays");
    }
}
