//! Where things are in a JSON file: the byte offset of every value and object key, so that
//! problems in a manifest or mapping file can name a line and a column.
//!
//! `serde_json` reports positions only for syntax errors. Once a file has parsed, this walks
//! the same text again and records where each value starts; it expects valid JSON (callers
//! parse with `serde_json` first) and gives up with `None` on anything else.

/// A JSON value's position, with the positions of what it contains.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Located {
    /// Byte offset of the value's first character.
    pub(crate) offset: usize,
    /// What the value holds.
    pub(crate) kind: Kind,
}

/// The shape of a located value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Kind {
    /// An object: each member's key (decoded), the key's offset, and the value.
    Object(Vec<(String, usize, Located)>),
    /// An array's elements.
    Array(Vec<Located>),
    /// A string, number, `true`, `false` or `null`.
    Scalar,
}

impl Located {
    /// The member `key` of an object.
    pub(crate) fn member(&self, key: &str) -> Option<&Located> {
        self.member_entry(key).map(|(_, value)| value)
    }

    /// The member `key` of an object, with the offset of the key itself.
    pub(crate) fn member_entry(&self, key: &str) -> Option<(usize, &Located)> {
        match &self.kind {
            Kind::Object(members) => members
                .iter()
                .find(|(name, _, _)| name == key)
                .map(|(_, at, value)| (*at, value)),
            _ => None,
        }
    }

    /// Element `index` of an array.
    pub(crate) fn element(&self, index: usize) -> Option<&Located> {
        match &self.kind {
            Kind::Array(items) => items.get(index),
            _ => None,
        }
    }
}

/// Locates every value of `text`, which must be valid JSON.
pub(crate) fn locate(text: &str) -> Option<Located> {
    let mut walker = Walker {
        bytes: text.as_bytes(),
        text,
        at: 0,
    };
    let value = walker.value(0)?;
    walker.skip_space();
    (walker.at == walker.bytes.len()).then_some(value)
}

/// 1-based line and column (in characters) of a byte offset.
pub(crate) fn line_column(text: &str, offset: usize) -> (u64, u64) {
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |newline| newline + 1);
    let column = before.get(line_start..).map_or(0, |s| s.chars().count()) + 1;
    (line as u64, column as u64)
}

/// Deeper than this and the walk stops (`serde_json` refuses deeper input anyway).
const MAX_DEPTH: usize = 128;

struct Walker<'t> {
    bytes: &'t [u8],
    text: &'t str,
    at: usize,
}

impl Walker<'_> {
    fn skip_space(&mut self) {
        while self
            .bytes
            .get(self.at)
            .is_some_and(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
        {
            self.at += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn value(&mut self, depth: usize) -> Option<Located> {
        if depth > MAX_DEPTH {
            return None;
        }
        self.skip_space();
        let offset = self.at;
        let kind = match self.peek()? {
            b'{' => self.object(depth)?,
            b'[' => self.array(depth)?,
            b'"' => {
                self.string()?;
                Kind::Scalar
            }
            _ => {
                // A number or a literal: up to the next delimiter.
                while self.peek().is_some_and(|b| {
                    !matches!(b, b',' | b']' | b'}' | b' ' | b'\t' | b'\n' | b'\r')
                }) {
                    self.at += 1;
                }
                (self.at > offset).then_some(Kind::Scalar)?
            }
        };
        Some(Located { offset, kind })
    }

    /// Skips a string and returns its decoded text.
    fn string(&mut self) -> Option<String> {
        let start = self.at;
        self.at += 1;
        loop {
            match self.peek()? {
                b'\\' => self.at += 2,
                b'"' => {
                    self.at += 1;
                    break;
                }
                _ => self.at += 1,
            }
        }
        serde_json::from_str(self.text.get(start..self.at)?).ok()
    }

    fn object(&mut self, depth: usize) -> Option<Kind> {
        self.at += 1;
        let mut members = Vec::new();
        loop {
            self.skip_space();
            match self.peek()? {
                b'}' => {
                    self.at += 1;
                    return Some(Kind::Object(members));
                }
                b',' => self.at += 1,
                b'"' => {
                    let key_at = self.at;
                    let key = self.string()?;
                    self.skip_space();
                    (self.peek()? == b':').then_some(())?;
                    self.at += 1;
                    let value = self.value(depth + 1)?;
                    members.push((key, key_at, value));
                }
                _ => return None,
            }
        }
    }

    fn array(&mut self, depth: usize) -> Option<Kind> {
        self.at += 1;
        let mut items = Vec::new();
        loop {
            self.skip_space();
            match self.peek()? {
                b']' => {
                    self.at += 1;
                    return Some(Kind::Array(items));
                }
                b',' => self.at += 1,
                _ => items.push(self.value(depth + 1)?),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn finds_elements_and_keys_by_line_and_column() {
        let text = "{\n  \"appRoles\": [\n    {\"value\": \"a\"},\n    {\"id\": null, \"v\\u00e4lue\": [1, 2]}\n  ]\n}\n";
        let root = locate(text).unwrap();
        let roles = root.member("appRoles").unwrap();
        let second = roles.element(1).unwrap();
        assert_eq!(line_column(text, second.offset), (4, 5));
        let (key_at, value) = second.member_entry("välue").unwrap();
        assert_eq!(line_column(text, key_at), (4, 18));
        assert!(matches!(&value.kind, Kind::Array(items) if items.len() == 2));
        assert_eq!(
            line_column(
                text,
                roles.element(0).unwrap().member_entry("value").unwrap().0
            ),
            (3, 6)
        );
    }

    #[test]
    fn columns_count_characters_not_bytes() {
        let text = "[\"Zoë\", \"Łukasz\", 3]";
        let root = locate(text).unwrap();
        assert_eq!(line_column(text, root.element(2).unwrap().offset), (1, 19));
    }

    #[test]
    fn invalid_json_gives_none() {
        assert_eq!(locate("{\"a\": }"), None);
        assert_eq!(locate("[1, 2"), None);
        assert_eq!(locate("[1] x"), None);
    }
}
