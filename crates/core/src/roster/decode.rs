//! Turning a roster file's bytes into text, whatever Excel saved it as.

use std::borrow::Cow;

use encoding_rs::{UTF_16BE, UTF_16LE, WINDOWS_1252};
use serde::Serialize;

/// The text encoding a roster file was read in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TextEncoding {
    /// UTF-8 without a byte-order mark.
    Utf8,
    /// UTF-8 with a byte-order mark (Excel's "CSV UTF-8").
    Utf8Bom,
    /// UTF-16 little-endian with a byte-order mark (Excel's "Unicode text").
    Utf16Le,
    /// UTF-16 big-endian with a byte-order mark.
    Utf16Be,
    /// Windows-1252, assumed when the bytes are not valid UTF-8 (Excel's default "CSV").
    Windows1252,
}

/// Why a file's bytes could not be read as text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// A UTF-16 byte-order mark followed by bytes that are not UTF-16.
    #[error("starts with a UTF-16 byte-order mark but is not valid UTF-16 after it")]
    InvalidUtf16,
    /// NUL bytes without a byte-order mark: UTF-16 saved without its mark, or not text at all.
    #[error(
        "contains NUL bytes: it looks like UTF-16 without a byte-order mark, or is not a text file; save it as \"CSV UTF-8\""
    )]
    NulBytes,
}

/// Decodes a roster's bytes: a BOM decides; else UTF-8 when valid; else Windows-1252.
pub fn decode(bytes: &[u8]) -> Result<(Cow<'_, str>, TextEncoding), DecodeError> {
    if let Some(rest) = bytes.strip_prefix(b"\xEF\xBB\xBF") {
        return utf8_or_legacy(rest).map(|(text, encoding)| {
            let encoding = match encoding {
                TextEncoding::Utf8 => TextEncoding::Utf8Bom,
                other => other,
            };
            (text, encoding)
        });
    }
    if let Some(rest) = bytes.strip_prefix(b"\xFF\xFE") {
        return decode_utf16(rest, UTF_16LE).map(|text| (text, TextEncoding::Utf16Le));
    }
    if let Some(rest) = bytes.strip_prefix(b"\xFE\xFF") {
        return decode_utf16(rest, UTF_16BE).map(|text| (text, TextEncoding::Utf16Be));
    }
    utf8_or_legacy(bytes)
}

fn utf8_or_legacy(bytes: &[u8]) -> Result<(Cow<'_, str>, TextEncoding), DecodeError> {
    if bytes.contains(&0) {
        return Err(DecodeError::NulBytes);
    }
    match std::str::from_utf8(bytes) {
        Ok(text) => Ok((Cow::Borrowed(text), TextEncoding::Utf8)),
        // Windows-1252 maps every byte to a character, so this cannot fail; the roster's
        // own checks (e-mail shape) catch a file that was really something else.
        Err(_) => {
            let (text, _) = WINDOWS_1252.decode_without_bom_handling(bytes);
            Ok((text, TextEncoding::Windows1252))
        }
    }
}

fn decode_utf16<'a>(
    bytes: &'a [u8],
    encoding: &'static encoding_rs::Encoding,
) -> Result<Cow<'a, str>, DecodeError> {
    let text = encoding
        .decode_without_bom_handling_and_without_replacement(bytes)
        .ok_or(DecodeError::InvalidUtf16)?;
    if text.contains('\0') {
        return Err(DecodeError::NulBytes);
    }
    Ok(Cow::Owned(text.into_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf8_is_borrowed_not_copied() {
        let (text, encoding) = decode("Zoë;zoe@example.com".as_bytes()).unwrap();
        assert!(matches!(text, Cow::Borrowed(_)));
        assert_eq!(encoding, TextEncoding::Utf8);
    }

    #[test]
    fn bom_decides_the_encoding() {
        let mut utf16 = vec![0xFF, 0xFE];
        utf16.extend("Łukasz".encode_utf16().flat_map(u16::to_le_bytes));
        assert_eq!(
            decode(&utf16).unwrap(),
            (Cow::Owned("Łukasz".into()), TextEncoding::Utf16Le)
        );
        let mut utf16be = vec![0xFE, 0xFF];
        utf16be.extend("Ĳsbrand".encode_utf16().flat_map(u16::to_be_bytes));
        assert_eq!(decode(&utf16be).unwrap().0, "Ĳsbrand");
        assert_eq!(
            decode(b"\xEF\xBB\xBFE\xC3\xA9n").unwrap(),
            (Cow::Borrowed("Eén"), TextEncoding::Utf8Bom)
        );
    }

    #[test]
    fn invalid_utf8_is_windows_1252() {
        assert_eq!(
            decode(b"E\xE9n;Zo\xEB").unwrap(),
            (Cow::Owned("Eén;Zoë".into()), TextEncoding::Windows1252)
        );
    }

    #[test]
    fn nul_bytes_and_broken_utf16_are_refused() {
        assert_eq!(decode(b"a\0b\0"), Err(DecodeError::NulBytes));
        assert_eq!(decode(b"\xFF\xFE\x00\xD8"), Err(DecodeError::InvalidUtf16));
    }
}
