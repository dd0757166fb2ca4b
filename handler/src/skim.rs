//! Reading a blob-triggered invocation without holding the blob.
//!
//! The host puts the whole blob, base64-encoded, into the invocation's `Data`, yet the
//! upload functions use only its `Metadata` (the name and ETag): the step reads the blob
//! itself, within the roster's size limit. [`Skim`] passes the body through as it arrives
//! and keeps the JSON with every long string value left out (replaced by `""` and counted),
//! so a 100 MB upload costs no more memory than a small one, and nothing of it is echoed.

/// String values longer than this are left out (a blob's content is one such string).
pub const LONGEST_KEPT_STRING: usize = 64 * 1024;

/// Most JSON kept in all: the invocation without its long strings is metadata, a few KiB.
pub const MOST_KEPT: usize = 1024 * 1024;

/// JSON read chunk by chunk, long string values left out.
#[derive(Debug, Default)]
pub struct Skim {
    kept: Vec<u8>,
    /// The string being read, while it is short enough to keep.
    string: Vec<u8>,
    in_string: bool,
    escaped: bool,
    /// The current string is too long: its bytes are counted, not kept.
    leaving_out: bool,
    /// Whether the current string is an object key (keys are always kept).
    is_key: bool,
    /// Nesting of objects and arrays, and whether each is an object.
    stack: Vec<bool>,
    /// Whether the next string in the current object is a key.
    expect_key: bool,
    /// The top-level member being read, and the bytes left out under each.
    member: String,
    left_out: Vec<(String, u64)>,
    /// Bytes seen in all.
    seen: u64,
    /// The kept JSON grew past [`MOST_KEPT`].
    overflow: bool,
}

impl Skim {
    /// Takes the next chunk of the body.
    pub fn feed(&mut self, chunk: &[u8]) {
        self.seen += chunk.len() as u64;
        let mut rest = chunk;
        while let Some((&byte, after)) = rest.split_first() {
            if self.in_string && self.leaving_out && !self.escaped {
                // The bulk of a blob: skip to the next quote or backslash at once.
                let skip = rest
                    .iter()
                    .position(|b| *b == b'"' || *b == b'\\')
                    .unwrap_or(rest.len());
                if skip > 0 {
                    self.count_left_out(skip as u64);
                    rest = &rest[skip..];
                    continue;
                }
            }
            self.byte(byte);
            rest = after;
        }
    }

    fn keep(&mut self, bytes: &[u8]) {
        if self.kept.len() + bytes.len() > MOST_KEPT {
            self.overflow = true;
        } else {
            self.kept.extend_from_slice(bytes);
        }
    }

    fn byte(&mut self, byte: u8) {
        if self.in_string {
            if self.escaped {
                self.escaped = false;
            } else if byte == b'\\' {
                self.escaped = true;
            } else if byte == b'"' {
                self.end_string();
                return;
            }
            if self.leaving_out {
                self.count_left_out(1);
            } else {
                self.string.push(byte);
                if !self.is_key && self.string.len() > LONGEST_KEPT_STRING {
                    self.leaving_out = true;
                    let dropped = self.string.len() as u64;
                    self.string = Vec::new();
                    self.count_left_out(dropped);
                }
            }
            return;
        }
        match byte {
            b'"' => {
                self.in_string = true;
                self.is_key = self.stack.last() == Some(&true) && self.expect_key;
                self.string.clear();
                return;
            }
            b'{' => {
                self.stack.push(true);
                self.expect_key = true;
            }
            b'[' => self.stack.push(false),
            b'}' | b']' => {
                self.stack.pop();
                self.expect_key = false;
            }
            b',' => self.expect_key = self.stack.last() == Some(&true),
            b':' => self.expect_key = false,
            _ => {}
        }
        self.keep(&[byte]);
    }

    fn end_string(&mut self) {
        self.in_string = false;
        if self.is_key && self.stack.len() == 1 {
            self.member = String::from_utf8_lossy(&self.string).into_owned();
        }
        let string = std::mem::take(&mut self.string);
        self.keep(b"\"");
        if !self.leaving_out {
            self.keep(&string);
        }
        self.keep(b"\"");
        self.leaving_out = false;
        self.is_key = false;
    }

    fn count_left_out(&mut self, bytes: u64) {
        match self.left_out.iter_mut().find(|(m, _)| *m == self.member) {
            Some((_, total)) => *total += bytes,
            None => self.left_out.push((self.member.clone(), bytes)),
        }
    }

    /// Bytes of the body seen so far.
    pub fn seen(&self) -> u64 {
        self.seen
    }

    /// Bytes left out of long strings under a top-level member (`Data`, `Metadata`).
    pub fn left_out(&self, member: &str) -> u64 {
        self.left_out
            .iter()
            .filter(|(m, _)| m == member)
            .map(|(_, bytes)| bytes)
            .sum()
    }

    /// The JSON kept, unless it grew past [`MOST_KEPT`].
    pub fn finish(self) -> Option<Vec<u8>> {
        (!self.overflow).then_some(self.kept)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use serde_json::{Value, json};

    fn skim(body: &[u8], chunk: usize) -> Skim {
        let mut skim = Skim::default();
        for part in body.chunks(chunk) {
            skim.feed(part);
        }
        skim
    }

    #[test]
    fn a_blob_is_left_out_and_the_metadata_kept_whatever_the_chunks() {
        let blob = "QUJD".repeat(100_000);
        let body = json!({
            "Data": {"roster": blob},
            "Metadata": {"name": "\"Key \\\"Users\\\".csv\"", "Properties": {"ETag": "\"0x8D\""}, "n": [1, {"a": "b"}]}
        })
        .to_string();
        for chunk in [1, 7, 4096, body.len()] {
            let skim = skim(body.as_bytes(), chunk);
            assert_eq!(skim.seen(), body.len() as u64);
            assert_eq!(skim.left_out("Data"), blob.len() as u64);
            assert_eq!(skim.left_out("Metadata"), 0);
            let kept: Value = serde_json::from_slice(&skim.finish().unwrap()).unwrap();
            assert_eq!(kept["Data"]["roster"], "");
            assert_eq!(kept["Metadata"]["name"], "\"Key \\\"Users\\\".csv\"");
            assert_eq!(kept["Metadata"]["Properties"]["ETag"], "\"0x8D\"");
            assert_eq!(kept["Metadata"]["n"], json!([1, {"a": "b"}]));
        }
    }

    #[test]
    fn a_long_string_in_the_metadata_is_counted_where_it_was() {
        let name = "x".repeat(LONGEST_KEPT_STRING + 1);
        let body = json!({"Data": {"roster": "QQ=="}, "Metadata": {"name": name}}).to_string();
        let skim = skim(body.as_bytes(), 1000);
        assert_eq!(skim.left_out("Metadata"), name.len() as u64);
        assert_eq!(skim.left_out("Data"), 0);
        let kept: Value = serde_json::from_slice(&skim.finish().unwrap()).unwrap();
        assert_eq!(kept["Metadata"]["name"], "");
        assert_eq!(kept["Data"]["roster"], "QQ==");
    }

    #[test]
    fn too_much_kept_json_is_refused() {
        let many: Vec<u32> = (0..400_000).collect();
        let body = json!({"Metadata": {"many": many}}).to_string();
        assert!(skim(body.as_bytes(), 65_536).finish().is_none());
    }
}
