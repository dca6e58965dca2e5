//! Fingerprints: the stable identity of a finding, and the occurrence table that keeps distinct
//! results distinct and merges exact duplicates. The rules are in `docs/fingerprints.md`.
//!
//! A parser hashes a result's identifying fields with [`IdentityHasher`] into an [`Identity`]
//! (128 bits of SHA-256). In a first pass it pushes `(identity, line, column, detail)` for every
//! result into an [`OccurrenceBuilder`] (24 bytes a result; the detail is a key of what else
//! tells results apart at one position, the SARIF message, or 0); [`OccurrenceBuilder::finish`]
//! sorts them and gives every result its occurrence index among results with the same identity
//! (in line order), folds exact duplicates (same identity, line, column and detail) into the
//! first of them, and marks results that share a position with an earlier result but not its
//! detail as [`Slot::distinct`]. In the second pass the parser looks its n-th result up in the
//! [`OccurrenceTable`] and emits it (or skips it when it was folded into an earlier one).

use std::hash::{DefaultHasher, Hasher};

use sha2::{Digest, Sha256};

/// Streaming builder of an [`Identity`]: fields are length-prefixed, so `("ab", "c")` and
/// `("a", "bc")` hash differently.
pub(crate) struct IdentityHasher {
    hasher: Sha256,
}

impl IdentityHasher {
    /// Starts an identity in `domain` (the format and kind of result, e.g. `sarif`), so that
    /// identities of different kinds never collide.
    pub(crate) fn new(domain: &str) -> Self {
        let mut hasher = IdentityHasher {
            hasher: Sha256::new(),
        };
        hasher.field(domain);
        hasher
    }

    /// Adds one text field verbatim.
    pub(crate) fn field(&mut self, value: &str) {
        self.hasher.update((value.len() as u64).to_le_bytes());
        self.hasher.update(value.as_bytes());
    }

    /// Adds an optional text field (absent differs from empty).
    pub(crate) fn opt_field(&mut self, value: Option<&str>) {
        match value {
            Some(v) => {
                self.hasher.update([1u8]);
                self.field(v);
            }
            None => self.hasher.update([0u8]),
        }
    }

    /// Adds code or text with whitespace normalized: runs of whitespace (indentation, line
    /// breaks, trailing blanks) count as one space, so re-indenting code keeps the identity.
    pub(crate) fn normalized_snippet(&mut self, text: &str) {
        self.hasher.update([2u8]);
        for (i, word) in text.split_whitespace().enumerate() {
            if i > 0 {
                self.hasher.update(b" ");
            }
            self.hasher.update(word.as_bytes());
        }
        // 0xFF never occurs in UTF-8: it ends the field unambiguously.
        self.hasher.update([0xFFu8]);
    }

    /// Adds a result message with whitespace normalized and line references blanked: digits
    /// right after a `:` (`file.py:42`) and digits in the word after `line`, `lines` or `ln`
    /// become `#`, so a message that quotes its own line number keeps its identity when the code
    /// moves.
    pub(crate) fn normalized_message(&mut self, text: &str) {
        self.hasher.update([3u8]);
        normalize_message(text, |bytes| self.hasher.update(bytes));
        self.hasher.update([0xFFu8]);
    }

    /// Adds another identity (its 16 bytes).
    pub(crate) fn identity(&mut self, id: &Identity) {
        self.hasher.update(id.0);
    }

    /// The identity.
    pub(crate) fn finish(self) -> Identity {
        let digest = self.hasher.finalize();
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&digest[..16]);
        Identity(bytes)
    }
}

/// Feeds `text` to `out` as [`IdentityHasher::normalized_message`] hashes it: words joined by one
/// space, line references blanked.
fn normalize_message(text: &str, mut out: impl FnMut(&[u8])) {
    let mut after_line_word = false;
    let mut buf = Vec::with_capacity(64);
    for (i, word) in text.split_whitespace().enumerate() {
        if i > 0 {
            out(b" ");
        }
        buf.clear();
        blank_line_refs(word.as_bytes(), after_line_word, &mut buf);
        out(&buf);
        let bare = word.trim_matches(|c: char| !c.is_alphanumeric());
        after_line_word = bare.eq_ignore_ascii_case("line")
            || bare.eq_ignore_ascii_case("lines")
            || bare.eq_ignore_ascii_case("ln");
    }
}

/// The detail key of a message for [`OccurrenceBuilder::push`]: messages that are the
/// same once normalized as [`IdentityHasher::normalized_message`] does have the same key. It is
/// compared only within one parse (both passes run the same code), so a fast hash will do; two
/// different messages at one position colliding on it (odds 2^-32) are merged, as before.
pub(crate) fn message_key(text: &str) -> u32 {
    let mut hasher = DefaultHasher::new();
    normalize_message(text, |bytes| hasher.write(bytes));
    let h = hasher.finish();
    (h ^ (h >> 32)) as u32
}

/// Copies `word` into `out`, writing `#` for each digit run that is a line reference.
fn blank_line_refs(word: &[u8], whole_word: bool, out: &mut Vec<u8>) {
    let mut i = 0;
    while i < word.len() {
        let b = word[i];
        if b.is_ascii_digit() && (whole_word || (i > 0 && word[i - 1] == b':')) {
            while i < word.len() && word[i].is_ascii_digit() {
                i += 1;
            }
            out.push(b'#');
            continue;
        }
        out.push(b);
        i += 1;
    }
}

/// 128-bit identity of a result (before its occurrence index).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Identity([u8; 16]);

impl Identity {
    /// 64-bit key used to group results in the occurrence table.
    pub(crate) fn group(&self) -> u64 {
        let mut b = [0u8; 8];
        b.copy_from_slice(&self.0[..8]);
        u64::from_le_bytes(b)
    }

    /// The fingerprint text: 32 lowercase hex digits, then `:N` (the occurrence index) when
    /// `always_index` is set or `N > 0`.
    pub(crate) fn fingerprint(&self, index: u32, always_index: bool) -> String {
        let mut s = hex::encode(self.0);
        if always_index || index > 0 {
            s.push(':');
            s.push_str(&index.to_string());
        }
        s
    }
}

/// 24 bytes: the detail fits in what would be padding.
#[derive(Debug, Clone, Copy)]
struct Rec {
    group: u64,
    line: u32,
    col: u32,
    detail: u32,
    ord: u32,
}

impl Rec {
    fn same_position(&self, other: &Rec) -> bool {
        self.group == other.group && self.line == other.line && self.col == other.col
    }
}

/// First-pass collector of `(identity, line, column, detail)` per result, in document order.
#[derive(Debug, Default)]
pub(crate) struct OccurrenceBuilder {
    recs: Vec<Rec>,
}

impl OccurrenceBuilder {
    /// Records the next result: `detail` keys what else tells it apart from a result with the
    /// same identity and position (see [`message_key`]; 0 when nothing does). Results past
    /// `u32::MAX` are not tracked (and the emitting pass reports an error for them).
    pub(crate) fn push(&mut self, id: &Identity, detail: u32, line: u32, col: u32) {
        if let Ok(ord) = u32::try_from(self.recs.len()) {
            self.recs.push(Rec {
                group: id.group(),
                line,
                col,
                detail,
                ord,
            });
        }
    }

    /// Results recorded so far.
    pub(crate) fn len(&self) -> usize {
        self.recs.len()
    }

    /// Assigns occurrence indices, folds exact duplicates and marks distinct details.
    ///
    /// Results with the same identity, line and column share one position and its occurrence
    /// index. Among them, those with the same detail are one finding (emitted at the first in
    /// document order, counting the others); the detail of the position's first result in
    /// document order keeps the identity, and each other detail is [`Slot::distinct`].
    pub(crate) fn finish(self) -> OccurrenceTable {
        let mut recs = self.recs;
        recs.sort_unstable_by_key(|r| (r.group, r.line, r.col, r.detail, r.ord));
        let mut entries = vec![Entry::default(); recs.len()];
        let mut distinct = vec![0u64; recs.len().div_ceil(64)];
        let mut index = 0u32;
        let mut prev_group = None;
        for position in recs.chunk_by(|a, b| a.same_position(b)) {
            let group = position[0].group;
            index = if prev_group == Some(group) {
                index.saturating_add(1)
            } else {
                0
            };
            prev_group = Some(group);
            let first = position.iter().min_by_key(|r| r.ord).map(|r| r.detail);
            // Sorted by detail then ordinal: each run is one finding, led by its first result.
            for same in position.chunk_by(|a, b| a.detail == b.detail) {
                let leader = same[0].ord as usize;
                entries[leader] = Entry {
                    group,
                    index,
                    occurrences: u32::try_from(same.len()).unwrap_or(u32::MAX),
                };
                for folded in &same[1..] {
                    entries[folded.ord as usize] = Entry {
                        group,
                        index,
                        occurrences: 0,
                    };
                }
                if Some(same[0].detail) != first {
                    distinct[leader / 64] |= 1u64 << (leader % 64);
                }
            }
        }
        OccurrenceTable { entries, distinct }
    }
}

/// What the first pass decided for one result.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Slot {
    /// Occurrence index among results with the same identity, in (line, column) order.
    pub(crate) index: u32,
    /// Results folded into this one (itself included); 0 when this result was folded into an
    /// earlier one and must not be emitted.
    pub(crate) occurrences: u32,
    /// The result shares identity and position with an earlier result but not its detail: it
    /// is a finding of its own, keyed apart from that one by the parser (the earlier one keeps
    /// the plain identity, as when such results were merged).
    pub(crate) distinct: bool,
}

/// 16 bytes a result.
#[derive(Debug, Clone, Copy, Default)]
struct Entry {
    group: u64,
    index: u32,
    occurrences: u32,
}

/// Per-result decisions of the first pass, indexed by result ordinal.
#[derive(Debug, Default)]
pub(crate) struct OccurrenceTable {
    entries: Vec<Entry>,
    /// [`Slot::distinct`], one bit a result.
    distinct: Vec<u64>,
}

impl OccurrenceTable {
    /// The decision for the `ord`-th result, if that result had the same identity in the first
    /// pass (`None` means the report read differently the second time).
    pub(crate) fn lookup(&self, ord: usize, id: &Identity) -> Option<Slot> {
        let entry = self.entries.get(ord).filter(|e| e.group == id.group())?;
        Some(Slot {
            index: entry.index,
            occurrences: entry.occurrences,
            distinct: self.distinct[ord / 64] & (1u64 << (ord % 64)) != 0,
        })
    }

    /// Number of results.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(parts: &[&str]) -> Identity {
        let mut h = IdentityHasher::new("test");
        for p in parts {
            h.field(p);
        }
        h.finish()
    }

    #[test]
    fn fields_are_unambiguous() {
        assert_ne!(id(&["ab", "c"]), id(&["a", "bc"]));
        assert_eq!(id(&["a", "b"]), id(&["a", "b"]));
        let mut a = IdentityHasher::new("x");
        a.opt_field(None);
        let mut b = IdentityHasher::new("x");
        b.opt_field(Some(""));
        assert_ne!(a.finish(), b.finish());
    }

    #[test]
    fn snippet_whitespace_does_not_matter() {
        let mut a = IdentityHasher::new("s");
        a.normalized_snippet("  foo(x,\n\t y)  \n");
        let mut b = IdentityHasher::new("s");
        b.normalized_snippet("foo(x, y)");
        assert_eq!(a.finish(), b.finish());
    }

    #[test]
    fn message_line_references_are_blanked() {
        let hash = |m: &str| {
            let mut h = IdentityHasher::new("m");
            h.normalized_message(m);
            h.finish()
        };
        assert_eq!(
            hash("tainted at app.py:12 (line 12)"),
            hash("tainted at app.py:40 (line 40)")
        );
        assert_eq!(hash("see Line: 7"), hash("see Line: 9"));
        assert_ne!(
            hash("Import of 'x1' is not used"),
            hash("Import of 'x2' is not used")
        );
    }

    #[test]
    fn occurrence_indices_follow_line_order_and_duplicates_fold() {
        let a = id(&["a"]);
        let b = id(&["b"]);
        let mut builder = OccurrenceBuilder::default();
        builder.push(&a, 0, 30, 1); // 0
        builder.push(&b, 0, 5, 1); // 1
        builder.push(&a, 0, 10, 1); // 2
        builder.push(&a, 0, 30, 1); // 3: duplicate of 0
        builder.push(&a, 0, 10, 4); // 4: same line, other column
        let table = builder.finish();
        assert_eq!(table.len(), 5);
        let slot = |ord: usize, id: &Identity| table.lookup(ord, id).unwrap();
        assert_eq!((slot(2, &a).index, slot(2, &a).occurrences), (0, 1));
        assert_eq!((slot(4, &a).index, slot(4, &a).occurrences), (1, 1));
        assert_eq!((slot(0, &a).index, slot(0, &a).occurrences), (2, 2));
        assert_eq!(slot(3, &a).occurrences, 0);
        assert_eq!((slot(1, &b).index, slot(1, &b).occurrences), (0, 1));
        assert!(table.lookup(1, &a).is_none());
        assert!(table.lookup(9, &a).is_none());
    }

    #[test]
    fn distinct_details_at_one_position_stay_apart() {
        let a = id(&["a"]);
        let mut builder = OccurrenceBuilder::default();
        builder.push(&a, 7, 10, 0); // 0
        builder.push(&a, 3, 10, 0); // 1: same position, other detail
        builder.push(&a, 7, 10, 0); // 2: duplicate of 0
        builder.push(&a, 9, 20, 0); // 3: next position
        builder.push(&a, 3, 10, 0); // 4: duplicate of 1
        builder.push(&a, 5, 10, 0); // 5: a third detail
        let table = builder.finish();
        let slot = |ord: usize| {
            let s = table.lookup(ord, &a).unwrap();
            (s.index, s.occurrences, s.distinct)
        };
        // The first result's detail keeps the plain identity; the others are distinct, at the
        // same index; the next position's index is not shifted by them.
        assert_eq!(slot(0), (0, 2, false));
        assert_eq!(slot(1), (0, 2, true));
        assert_eq!(slot(5), (0, 1, true));
        assert_eq!(slot(3), (1, 1, false));
        assert_eq!(slot(2).1, 0);
        assert_eq!(slot(4).1, 0);
        // Without details, as before details existed.
        let mut plain = OccurrenceBuilder::default();
        plain.push(&a, 0, 10, 0);
        plain.push(&a, 0, 10, 0);
        let table = plain.finish();
        assert_eq!(table.lookup(0, &a).unwrap().occurrences, 2);
        assert!(!table.lookup(0, &a).unwrap().distinct);
    }

    #[test]
    fn message_keys_follow_message_normalization() {
        assert_eq!(
            message_key("tainted at app.py:12  (line 12)"),
            message_key("tainted at\napp.py:40 (line 40)")
        );
        assert_ne!(
            message_key("Possible hardcoded password: 'dot'"),
            message_key("Possible hardcoded password: 'lbracket'")
        );
    }

    #[test]
    fn fingerprint_text() {
        let a = id(&["a"]);
        let fp = a.fingerprint(0, true);
        assert_eq!(fp.len(), 34);
        assert!(fp.ends_with(":0"));
        assert_eq!(a.fingerprint(0, false).len(), 32);
        assert!(a.fingerprint(3, false).ends_with(":3"));
    }
}
