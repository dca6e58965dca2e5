//! Content detection: a tolerant look at the first kilobytes of a body (is it empty, binary,
//! JSON at all; which top-level keys does it start with), and a full top-level key scan for the
//! rare report whose telling keys come later.

use std::fmt;
use std::io::Read;

use serde::de::{self, DeserializeSeed, MapAccess, Visitor};

use crate::ingest::error::{IngestError, ParseError};

/// Longest string value kept for a top-level key.
const VALUE_CHARS: usize = 256;

/// What kind of JSON value a top-level key holds.
#[derive(Debug, Clone, PartialEq)]
pub enum HeadValue {
    /// A string (kept up to 256 characters).
    Str(String),
    /// A number (kept as text).
    Number(String),
    /// An object.
    Object,
    /// An array.
    Array,
    /// `true`, `false` or `null`.
    Other,
    /// The head ended inside the value.
    Cut,
}

/// The top-level keys of a JSON object, as far as they could be seen.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HeadKeys {
    /// Keys in document order, with their values' kinds.
    pub keys: Vec<(String, HeadValue)>,
    /// Whether the whole object was seen (its closing brace).
    pub complete: bool,
}

impl HeadKeys {
    /// The value of `key`, if seen.
    pub fn get(&self, key: &str) -> Option<&HeadValue> {
        self.keys.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// Whether `key` was seen.
    pub fn has(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// The string value of `key`, if it is a string.
    pub fn str(&self, key: &str) -> Option<&str> {
        match self.get(key) {
            Some(HeadValue::Str(s)) => Some(s),
            _ => None,
        }
    }

    /// Up to 8 key names, for error messages.
    pub(crate) fn summary(&self) -> String {
        let mut names: Vec<String> = self
            .keys
            .iter()
            .take(8)
            .map(|(k, _)| format!("`{}`", k.chars().take(40).collect::<String>()))
            .collect();
        if self.keys.len() > 8 {
            names.push("…".into());
        }
        if names.is_empty() {
            "none".into()
        } else {
            names.join(", ")
        }
    }
}

/// Strips a UTF-8 byte order mark.
pub(crate) fn strip_bom(bytes: &[u8]) -> &[u8] {
    bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes)
}

/// Rejects bodies that cannot be JSON reports, from their first bytes: empty, binary, UTF-16,
/// or text not starting with `{` / `[`. `at_eof` tells whether `head` is the whole body.
pub(crate) fn check_head(head: &[u8], at_eof: bool) -> Result<(), ParseError> {
    if head.starts_with(b"\xFF\xFE") || head.starts_with(b"\xFE\xFF") {
        return Err(ParseError::NotJson(
            "the report is UTF-16 text; send it as UTF-8 JSON".into(),
        ));
    }
    let body = strip_bom(head);
    let Some(first) = body.iter().position(|b| !b.is_ascii_whitespace()) else {
        if at_eof {
            return Err(ParseError::Empty);
        }
        return Ok(());
    };
    if looks_binary(body) {
        return Err(ParseError::Binary);
    }
    match body[first] {
        b'{' | b'[' => Ok(()),
        other => {
            let (line, column) = line_col(body, first);
            let shown = match other {
                b'<' => "`<` (XML or HTML?)".to_string(),
                b if b.is_ascii_graphic() => format!("`{}`", b as char),
                b => format!("byte 0x{b:02x}"),
            };
            Err(ParseError::NotJson(format!(
                "expected a JSON object at line {line}, column {column}, found {shown}"
            )))
        }
    }
}

/// NUL bytes, invalid UTF-8 (other than a sequence cut at the end of the head), or more than
/// 1 in 20 bytes being control characters.
fn looks_binary(body: &[u8]) -> bool {
    if body.contains(&0) {
        return true;
    }
    if let Err(e) = std::str::from_utf8(body) {
        if e.error_len().is_some() {
            return true;
        }
    }
    let controls = body
        .iter()
        .filter(|&&b| b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r' | 0x0C))
        .count();
    controls * 20 > body.len()
}

/// 1-based line and column of byte `pos`.
fn line_col(body: &[u8], pos: usize) -> (usize, usize) {
    let before = &body[..pos.min(body.len())];
    let line = 1 + before.iter().filter(|&&b| b == b'\n').count();
    let column = 1 + before.iter().rev().take_while(|&&b| b != b'\n').count();
    (line, column)
}

/// Reads the top-level keys of the JSON object at the start of `head`, tolerating a head that
/// ends anywhere. `None` when `head` does not start with an object.
pub fn head_keys(head: &[u8]) -> Option<HeadKeys> {
    let body = strip_bom(head);
    let mut s = Scanner { b: body, i: 0 };
    s.ws();
    if s.peek()? != b'{' {
        return None;
    }
    s.i += 1;
    let mut out = HeadKeys::default();
    loop {
        s.ws();
        match s.peek() {
            None => return Some(out),
            Some(b'}') => {
                out.complete = true;
                return Some(out);
            }
            Some(b',') => {
                s.i += 1;
                continue;
            }
            Some(b'"') => {}
            Some(_) => return Some(out),
        }
        let Some(key) = s.string(usize::MAX) else {
            return Some(out);
        };
        s.ws();
        if s.peek() != Some(b':') {
            return Some(out);
        }
        s.i += 1;
        s.ws();
        let value = s.value();
        let cut = value == HeadValue::Cut;
        out.keys.push((key, value));
        if cut {
            return Some(out);
        }
    }
}

struct Scanner<'a> {
    b: &'a [u8],
    i: usize,
}

impl Scanner<'_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
    }

    /// A string starting at `"`; `None` when cut. Keeps at most `max` characters.
    fn string(&mut self, max: usize) -> Option<String> {
        self.i += 1;
        let mut raw = Vec::new();
        loop {
            let b = self.peek()?;
            self.i += 1;
            match b {
                b'"' => break,
                b'\\' => {
                    let e = self.peek()?;
                    self.i += 1;
                    match e {
                        b'n' => raw.push(b'\n'),
                        b't' => raw.push(b'\t'),
                        b'r' => raw.push(b'\r'),
                        b'b' | b'f' => raw.push(b' '),
                        b'u' => {
                            let hex = self.b.get(self.i..self.i + 4)?;
                            self.i += 4;
                            let code = std::str::from_utf8(hex)
                                .ok()
                                .and_then(|h| u32::from_str_radix(h, 16).ok())
                                .and_then(char::from_u32)
                                .unwrap_or('\u{FFFD}');
                            let mut buf = [0u8; 4];
                            raw.extend_from_slice(code.encode_utf8(&mut buf).as_bytes());
                        }
                        other => raw.push(other),
                    }
                }
                other => raw.push(other),
            }
        }
        let text = String::from_utf8_lossy(&raw);
        Some(text.chars().take(max).collect())
    }

    /// Skips one value, telling its kind.
    fn value(&mut self) -> HeadValue {
        match self.peek() {
            None => HeadValue::Cut,
            Some(b'"') => match self.string(VALUE_CHARS) {
                Some(s) => HeadValue::Str(s),
                None => HeadValue::Cut,
            },
            Some(open @ (b'{' | b'[')) => {
                if self.skip_nested() {
                    if open == b'{' {
                        HeadValue::Object
                    } else {
                        HeadValue::Array
                    }
                } else {
                    HeadValue::Cut
                }
            }
            Some(_) => {
                let start = self.i;
                while let Some(b) = self.peek() {
                    if matches!(b, b',' | b'}' | b']') || b.is_ascii_whitespace() {
                        let text = String::from_utf8_lossy(&self.b[start..self.i]).into_owned();
                        let is_number = text
                            .bytes()
                            .next()
                            .is_some_and(|c| c == b'-' || c.is_ascii_digit());
                        return if is_number {
                            HeadValue::Number(text)
                        } else {
                            HeadValue::Other
                        };
                    }
                    self.i += 1;
                }
                HeadValue::Cut
            }
        }
    }

    /// Skips an object or array (strings respected); `false` when cut.
    fn skip_nested(&mut self) -> bool {
        let mut depth = 0usize;
        while let Some(b) = self.peek() {
            match b {
                b'"' => {
                    if self.string(0).is_none() {
                        return false;
                    }
                    continue;
                }
                b'{' | b'[' => depth += 1,
                b'}' | b']' => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        self.i += 1;
                        return true;
                    }
                }
                _ => {}
            }
            self.i += 1;
        }
        false
    }
}

/// Reads a whole JSON document's top-level keys (values skipped), for detection when the head
/// did not tell.
///
/// # Errors
/// [`ParseError::Invalid`] (format `JSON`) when the document is not valid JSON, and
/// [`IngestError::Io`] when reading fails.
pub(crate) fn scan_keys(reader: &mut dyn Read) -> Result<HeadKeys, IngestError> {
    let mut de = super::common::json_deserializer(reader)?;
    let result = KeysSeed.deserialize(&mut de).and_then(|keys| {
        de.end()?;
        Ok(keys)
    });
    result.map_err(|e| super::common::map_json_error(e, "JSON"))
}

struct KeysSeed;

impl<'de> DeserializeSeed<'de> for KeysSeed {
    type Value = HeadKeys;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<HeadKeys, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for KeysSeed {
    type Value = HeadKeys;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<HeadKeys, A::Error> {
        let mut out = HeadKeys {
            keys: Vec::new(),
            complete: true,
        };
        while let Some(key) = map.next_key::<String>()? {
            let value = match map.next_value::<super::common::Text>()?.0 {
                Some(s) => HeadValue::Str(s.chars().take(VALUE_CHARS).collect()),
                None => HeadValue::Other,
            };
            if out.keys.len() < 64 {
                out.keys.push((key, value));
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_keys_tolerate_cuts() {
        let k = head_keys(br#"{"version": "2.1.0", "runs": [{"tool": {"#).unwrap();
        assert_eq!(k.str("version"), Some("2.1.0"));
        assert_eq!(k.get("runs"), Some(&HeadValue::Cut));
        assert!(!k.complete);
        let k =
            head_keys(b"\xEF\xBB\xBF {\"a\\\"b\": [1, \"]\"], \"n\": -1.5, \"t\": true}").unwrap();
        assert!(k.complete);
        assert_eq!(k.get("a\"b"), Some(&HeadValue::Array));
        assert_eq!(k.get("n"), Some(&HeadValue::Number("-1.5".into())));
        assert_eq!(k.get("t"), Some(&HeadValue::Other));
        assert!(head_keys(b"[1]").is_none());
        assert!(head_keys(b"").is_none());
    }

    #[test]
    fn head_checks() {
        assert_eq!(check_head(b"", true), Err(ParseError::Empty));
        assert_eq!(check_head(b" \n ", true), Err(ParseError::Empty));
        assert_eq!(check_head(b"\x00\x01\x02{", true), Err(ParseError::Binary));
        assert_eq!(
            check_head(b"{\"a\": \"\xFF\xFE\x80\"}", true),
            Err(ParseError::Binary)
        );
        let err = check_head(b"\n  <html>", true).unwrap_err().to_string();
        assert!(err.contains("line 2, column 3"), "{err}");
        assert!(check_head(b"{\"a\": \"\xE2\x82", false).is_ok());
        assert!(check_head(b"[]", true).is_ok());
    }
}
