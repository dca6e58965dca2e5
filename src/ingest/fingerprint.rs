//! Fingerprints: the stable identity of a finding, and the occurrence table that keeps distinct
//! results distinct and merges exact duplicates. The rules are in `docs/fingerprints.md`.
//!
//! A parser hashes a result's identifying fields with [`IdentityHasher`] into an [`Identity`]
//! (128 bits of SHA-256). In a first pass it pushes `(identity, line, column)` for every result
//! into an [`OccurrenceBuilder`] (24 bytes a result); [`OccurrenceBuilder::finish`] sorts them and
//! gives every result its occurrence index among results with the same identity (in line order)
//! and folds exact duplicates (same identity, line and column) into the first of them. In the
//! second pass the parser looks its n-th result up in the [`OccurrenceTable`] and emits it (or
//! skips it when it was folded into an earlier one).

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
        let mut after_line_word = false;
        let mut buf = Vec::with_capacity(64);
        for (i, word) in text.split_whitespace().enumerate() {
            if i > 0 {
                self.hasher.update(b" ");
            }
            buf.clear();
            blank_line_refs(word.as_bytes(), after_line_word, &mut buf);
            self.hasher.update(&buf);
            let bare = word.trim_matches(|c: char| !c.is_alphanumeric());
            after_line_word = bare.eq_ignore_ascii_case("line")
                || bare.eq_ignore_ascii_case("lines")
                || bare.eq_ignore_ascii_case("ln");
        }
        self.hasher.update([0xFFu8]);
    }

    /// The identity.
    pub(crate) fn finish(self) -> Identity {
        let digest = self.hasher.finalize();
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&digest[..16]);
        Identity(bytes)
    }
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

#[derive(Debug, Clone, Copy)]
struct Rec {
    group: u64,
    line: u32,
    col: u32,
    ord: u32,
}

/// First-pass collector of `(identity, line, column)` per result, in document order.
#[derive(Debug, Default)]
pub(crate) struct OccurrenceBuilder {
    recs: Vec<Rec>,
}

impl OccurrenceBuilder {
    /// Records the next result. Results past `u32::MAX` are not tracked (and the emitting pass
    /// reports an error for them).
    pub(crate) fn push(&mut self, id: &Identity, line: u32, col: u32) {
        if let Ok(ord) = u32::try_from(self.recs.len()) {
            self.recs.push(Rec {
                group: id.group(),
                line,
                col,
                ord,
            });
        }
    }

    /// Results recorded so far.
    pub(crate) fn len(&self) -> usize {
        self.recs.len()
    }

    /// Assigns occurrence indices and folds exact duplicates.
    pub(crate) fn finish(self) -> OccurrenceTable {
        let mut recs = self.recs;
        recs.sort_unstable_by_key(|r| (r.group, r.line, r.col, r.ord));
        let mut slots = vec![Slot::default(); recs.len()];
        let mut prev: Option<Rec> = None;
        let mut leader = 0usize;
        let mut index = 0u32;
        for rec in recs.iter() {
            let ord = rec.ord as usize;
            match prev {
                Some(p) if p.group == rec.group && p.line == rec.line && p.col == rec.col => {
                    slots[leader].occurrences = slots[leader].occurrences.saturating_add(1);
                    slots[ord] = Slot {
                        group: rec.group,
                        index,
                        occurrences: 0,
                    };
                }
                Some(p) if p.group == rec.group => {
                    index = index.saturating_add(1);
                    leader = ord;
                    slots[ord] = Slot {
                        group: rec.group,
                        index,
                        occurrences: 1,
                    };
                }
                _ => {
                    index = 0;
                    leader = ord;
                    slots[ord] = Slot {
                        group: rec.group,
                        index,
                        occurrences: 1,
                    };
                }
            }
            prev = Some(*rec);
        }
        OccurrenceTable { slots }
    }
}

/// What the first pass decided for one result.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Slot {
    group: u64,
    /// Occurrence index among results with the same identity, in (line, column) order.
    pub(crate) index: u32,
    /// Results folded into this one (itself included); 0 when this result was folded into an
    /// earlier one and must not be emitted.
    pub(crate) occurrences: u32,
}

/// Per-result decisions of the first pass, indexed by result ordinal.
#[derive(Debug, Default)]
pub(crate) struct OccurrenceTable {
    slots: Vec<Slot>,
}

impl OccurrenceTable {
    /// The decision for the `ord`-th result, if that result had the same identity in the first
    /// pass (`None` means the report read differently the second time).
    pub(crate) fn lookup(&self, ord: usize, id: &Identity) -> Option<Slot> {
        self.slots
            .get(ord)
            .copied()
            .filter(|slot| slot.group == id.group())
    }

    /// Number of results.
    pub(crate) fn len(&self) -> usize {
        self.slots.len()
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
        builder.push(&a, 30, 1); // 0
        builder.push(&b, 5, 1); // 1
        builder.push(&a, 10, 1); // 2
        builder.push(&a, 30, 1); // 3: duplicate of 0
        builder.push(&a, 10, 4); // 4: same line, other column
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
    fn fingerprint_text() {
        let a = id(&["a"]);
        let fp = a.fingerprint(0, true);
        assert_eq!(fp.len(), 34);
        assert!(fp.ends_with(":0"));
        assert_eq!(a.fingerprint(0, false).len(), 32);
        assert!(a.fingerprint(3, false).ends_with(":3"));
    }
}
