//! Quotes that swallow rows.
//!
//! The csv reader takes a `"` at the start of a field as the start of a quoted field that
//! runs to the next lone `"`, across line breaks, and at the end of the input it closes an
//! open quote silently. One stray quote can so read every later row into one field, and the
//! people in those rows would drop out of the roster. This module walks the text with the
//! same rules as the reader (csv-core's: a quote opens a field only as its first byte, `""`
//! inside is a quote, `#` starts a comment only at the start of a record, `\r` and `\n` end
//! records) and finds the first quoted field that is
//!
//! - **never closed**, or
//! - **spans lines and swallows a row**: one of its lines, taken on its own, holds a valid
//!   e-mail address in one of its fields (split by the roster's separator).
//!
//! Excel quotes a field that holds a line break, a separator or a quote, and doubles the
//! quotes inside; a display name such as `"Smith,⏎John"` spans lines but none of its lines
//! holds an address, so it stays valid.

use super::email::check_email;

/// The first quote that makes the roster unreadable, with where it opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct QuoteProblem {
    /// The record (1-based, counting every record the csv reader yields) the quote is in.
    pub record: usize,
    /// The physical line the quote is on.
    pub line: u64,
    /// The field the quote opens (1-based).
    pub column: u64,
    /// What is wrong, in one sentence.
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    StartRecord,
    StartField,
    InField,
    InQuoted,
    /// A `"` inside a quoted field: the end of the field, or the first half of `""`.
    AfterQuote,
    InComment,
}

/// Where a quoted field opened.
#[derive(Debug, Clone, Copy)]
struct Open {
    /// Byte offset of the first byte inside the quotes.
    start: usize,
    line: u64,
    column: u64,
    record: usize,
}

const FIX: &str =
    "close the quote where the field ends, or write a quote that belongs to the text as \"\"";

/// The first quote in `text` that is never closed or that swallows a row, if any.
pub(super) fn find_swallowing_quote(text: &str, delimiter: u8) -> Option<QuoteProblem> {
    let bytes = text.as_bytes();
    let mut state = State::StartRecord;
    let mut line: u64 = 1;
    let mut record = 0;
    let mut column: u64 = 0;
    let mut open: Option<Open> = None;
    let mut index = 0;
    while let Some(&byte) = bytes.get(index) {
        let is_break = matches!(byte, b'\r' | b'\n');
        match state {
            State::StartRecord if is_break => {}
            State::StartRecord if byte == b'#' => state = State::InComment,
            State::StartRecord => {
                record += 1;
                column = 1;
                state = State::StartField;
                // The same byte starts the first field.
                continue;
            }
            State::StartField if byte == b'"' => {
                open = Some(Open {
                    start: index + 1,
                    line,
                    column,
                    record,
                });
                state = State::InQuoted;
            }
            State::StartField | State::InField if byte == delimiter => {
                column += 1;
                state = State::StartField;
            }
            State::StartField | State::InField if is_break => state = State::StartRecord,
            State::StartField | State::InField => state = State::InField,
            State::InQuoted if byte == b'"' => state = State::AfterQuote,
            State::InQuoted => {}
            State::AfterQuote if byte == b'"' => state = State::InQuoted,
            State::AfterQuote => {
                if let Some(opened) = open.take()
                    && let Some(problem) = check_closed(text, opened, index - 1, delimiter)
                {
                    return Some(problem);
                }
                state = if byte == delimiter {
                    column += 1;
                    State::StartField
                } else if is_break {
                    State::StartRecord
                } else {
                    State::InField
                };
            }
            State::InComment if byte == b'\n' => state = State::StartRecord,
            State::InComment => {}
        }
        if byte == b'\n' {
            line += 1;
        }
        index += 1;
    }
    match (state, open) {
        (State::InQuoted, Some(opened)) => Some(QuoteProblem {
            record: opened.record,
            line: opened.line,
            column: opened.column,
            message: format!(
                "a quote opens column {} here and is never closed, so every line after it would be read into this one field; {FIX}",
                opened.column
            ),
        }),
        (State::AfterQuote, Some(opened)) => check_closed(text, opened, bytes.len() - 1, delimiter),
        _ => None,
    }
}

/// Checks a quoted field that opened at `opened` and closed with the quote at `close`.
fn check_closed(text: &str, opened: Open, close: usize, delimiter: u8) -> Option<QuoteProblem> {
    let inside = text.get(opened.start..close)?;
    if !inside.contains(['\n', '\r']) {
        return None;
    }
    let close_line = opened.line + inside.matches('\n').count() as u64;
    let mut line = opened.line;
    let mut rest = inside;
    loop {
        let end = rest.find(['\n', '\r']).unwrap_or(rest.len());
        if holds_address(&rest[..end], delimiter) {
            let which = if line == opened.line {
                "the rest of this line".to_owned()
            } else {
                format!("line {line}")
            };
            return Some(QuoteProblem {
                record: opened.record,
                line: opened.line,
                column: opened.column,
                message: format!(
                    "a quote opens column {} here and closes only on line {close_line}, and {which}, inside it, is a roster row of its own (it holds an e-mail address), which the quote would swallow; {FIX}",
                    opened.column
                ),
            });
        }
        // The last line: nothing inside the quote held an address.
        let &next = rest.as_bytes().get(end)?;
        let mut skip = end + 1;
        if next == b'\n' {
            line += 1;
        } else if rest.as_bytes().get(skip) == Some(&b'\n') {
            skip += 1;
            line += 1;
        }
        rest = &rest[skip..];
    }
}

/// Whether one line, read as a roster row on its own, has a field that is a valid address.
fn holds_address(line: &str, delimiter: u8) -> bool {
    if !line.contains('@') {
        return false;
    }
    let mut reader = super::csv_reader(line.as_bytes(), delimiter, true);
    let mut record = csv::StringRecord::new();
    matches!(reader.read_record(&mut record), Ok(true))
        && record.iter().any(|field| check_email(field).is_ok())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn place(text: &str, delimiter: u8) -> Option<(usize, u64, u64)> {
        find_swallowing_quote(text, delimiter).map(|p| (p.record, p.line, p.column))
    }

    #[test]
    fn an_unclosed_quote_is_found_in_any_column() {
        let rows = "A;a@x.com\nB;b@x.com\n";
        assert_eq!(
            place(&format!("\"Q;q@x.com\n{rows}"), b';'),
            Some((1, 1, 1))
        );
        assert_eq!(
            place(&format!("{rows}Q;\"q@x.com\n"), b';'),
            Some((3, 3, 2))
        );
        assert_eq!(
            place(&format!("Q;q@x.com;\"P | R\n{rows}"), b';'),
            Some((1, 1, 3))
        );
        assert_eq!(place("A,a@x.com,\"P\nB,b@x.com\n", b','), Some((1, 1, 3)));
        assert_eq!(
            place("A;a@x.com;\"P", b';'),
            Some((1, 1, 3)),
            "at the end, no break"
        );
    }

    #[test]
    fn a_quote_that_closes_after_swallowing_a_row_is_found() {
        let problem = find_swallowing_quote(
            "A;a@x.com;\"P\nB;b@x.com;P\nC;c@x.com;P\"\nD;d@x.com\n",
            b';',
        )
        .unwrap();
        assert_eq!((problem.line, problem.column), (1, 3));
        assert!(
            problem.message.contains("closes only on line 3"),
            "{}",
            problem.message
        );
        assert!(
            problem.message.contains("line 2, inside it"),
            "{}",
            problem.message
        );
        let same_line = find_swallowing_quote("\"B;b@x.com\nD\";d@x.com\n", b';').unwrap();
        assert!(
            same_line.message.contains("the rest of this line"),
            "{}",
            same_line.message
        );
    }

    #[test]
    fn quoted_line_breaks_without_rows_comments_and_literal_quotes_are_fine() {
        assert_eq!(
            place(
                "\"Smith,\nJohn\";john@x.com\n\"Doe; \"\"JD\"\"\";jd@x.com\n",
                b';'
            ),
            None
        );
        assert_eq!(place("\"Smith,\r\nJohn\";john@x.com\r\n", b';'), None);
        assert_eq!(place("# a \"comment\nA;a@x.com\n", b';'), None);
        assert_eq!(
            place("Jane \"JJ\" Doe;jj@x.com\nA; \"B;b@x.com\n", b';'),
            None
        );
        assert_eq!(
            place("\"Multi\nLine\";ml@x.com\nX;\"bad address\"\n", b';'),
            None
        );
    }

    #[test]
    fn records_count_like_the_csv_reader() {
        // Blank and comment lines are not records; `;;` is.
        let text = "\n# c\nA;a@x.com\n;;\n\r\nB;\"b\n";
        assert_eq!(place(text, b';'), Some((3, 6, 2)));
        let reader = super::super::csv_reader(text.as_bytes(), b';', true);
        assert_eq!(reader.into_records().count(), 3);
    }
}
