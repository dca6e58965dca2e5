//! What every parser shares: lenient serde types for free-form fields, the JSON reader, error
//! mapping, and the multi-pass driver ([`run_passes`]) with its per-pass state ([`PassCtx`]).

use std::fmt;
use std::io::{self, BufRead, BufReader, Read};
use std::marker::PhantomData;

use serde::de::{
    self, Deserialize, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor,
};
use serde_json::error::Category;

use super::{OpenFn, ReportFormat, SinkFn};
use crate::ingest::error::{IngestError, ParseError, SinkError};
use crate::ingest::finding::NormalizedFinding;
use crate::ingest::fingerprint::{Identity, OccurrenceBuilder, OccurrenceTable, Slot};

/// Buffer between the object-store stream and the JSON tokenizer.
const READ_BUFFER: usize = 64 * 1024;

/// The streaming JSON deserializer every parser runs on.
pub(crate) type JsonDe<'r> =
    serde_json::Deserializer<serde_json::de::IoRead<BufReader<&'r mut dyn Read>>>;

/// A buffered streaming deserializer over `reader`, past a UTF-8 byte order mark if any.
///
/// # Errors
/// Reading the first bytes failed.
pub(crate) fn json_deserializer(reader: &mut dyn Read) -> io::Result<JsonDe<'_>> {
    let mut buffered = BufReader::with_capacity(READ_BUFFER, reader);
    let head = buffered.fill_buf()?;
    if head.starts_with(b"\xEF\xBB\xBF") {
        buffered.consume(3);
    }
    Ok(serde_json::Deserializer::from_reader(buffered))
}

/// Turns a serde_json error into the ingest error: I/O stays I/O, everything else becomes
/// [`ParseError::Invalid`] with line and column.
pub(crate) fn map_json_error(err: serde_json::Error, format: &'static str) -> IngestError {
    let category = err.classify();
    if category == Category::Io {
        return IngestError::Io(io::Error::from(err));
    }
    let (line, column) = (err.line(), err.column());
    let full = err.to_string();
    let suffix = format!(" at line {line} column {column}");
    let mut message = full.strip_suffix(&suffix).unwrap_or(&full).to_string();
    if category == Category::Eof {
        message.push_str(" (the report ends too early: truncated?)");
    }
    IngestError::Parse(ParseError::Invalid {
        format,
        line: line.max(1),
        column: column.max(1),
        message,
    })
}

/// Which pass over the report is running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Metadata only; stop as soon as it is known.
    Meta,
    /// First pass: side tables (rules, components, targets) and identity records.
    Collect,
    /// Extra pass when side tables came after results that needed them: records only.
    Identify,
    /// Last pass: build and emit the findings.
    Emit,
}

/// State of one pass shared by all parsers: phase, identity records or the occurrence table,
/// the sink, and the early-stop signals.
pub(crate) struct PassCtx<'s> {
    phase: Phase,
    occ: OccurrenceBuilder,
    table: OccurrenceTable,
    sink: Option<&'s mut SinkFn<'s>>,
    ord: usize,
    stopped: bool,
    sink_error: Option<SinkError>,
}

impl<'s> PassCtx<'s> {
    /// A pass that emits nothing.
    pub(crate) fn new(phase: Phase) -> Self {
        PassCtx {
            phase,
            occ: OccurrenceBuilder::default(),
            table: OccurrenceTable::default(),
            sink: None,
            ord: 0,
            stopped: false,
            sink_error: None,
        }
    }

    /// The emitting pass.
    fn emitting(table: OccurrenceTable, sink: &'s mut SinkFn<'s>) -> Self {
        PassCtx {
            table,
            sink: Some(sink),
            ..PassCtx::new(Phase::Emit)
        }
    }

    /// The running phase.
    pub(crate) fn phase(&self) -> Phase {
        self.phase
    }

    /// Whether results matter in this pass (not in [`Phase::Meta`]).
    pub(crate) fn wants_results(&self) -> bool {
        self.phase != Phase::Meta
    }

    /// Whether side tables are gathered in this pass.
    pub(crate) fn collects(&self) -> bool {
        matches!(self.phase, Phase::Meta | Phase::Collect)
    }

    /// Places the next finding-worthy result: records its identity (first passes), or tells
    /// whether to emit it and with which occurrence index and count (emitting pass; `None` when
    /// it was folded into an earlier identical result).
    ///
    /// # Errors
    /// The result does not match the first pass's record.
    pub(crate) fn place<E: de::Error>(
        &mut self,
        id: &Identity,
        line: u32,
        col: u32,
    ) -> Result<Option<Slot>, E> {
        self.place_detailed(id, || 0, line, col)
    }

    /// [`PassCtx::place`] for a result that `detail` tells apart from others with the same
    /// identity and position (see [`OccurrenceBuilder::push`]; only the recording passes call
    /// it).
    ///
    /// # Errors
    /// The result does not match the first pass's record.
    pub(crate) fn place_detailed<E: de::Error>(
        &mut self,
        id: &Identity,
        detail: impl FnOnce() -> u32,
        line: u32,
        col: u32,
    ) -> Result<Option<Slot>, E> {
        match self.phase {
            Phase::Meta => Ok(None),
            Phase::Collect | Phase::Identify => {
                self.occ.push(id, detail(), line, col);
                Ok(None)
            }
            Phase::Emit => {
                let ord = self.ord;
                self.ord += 1;
                match self.table.lookup(ord, id) {
                    Some(slot) if slot.occurrences > 0 => Ok(Some(slot)),
                    Some(_) => Ok(None),
                    None => Err(E::custom(CHANGED)),
                }
            }
        }
    }

    /// Hands a finding to the sink.
    ///
    /// # Errors
    /// The sink asked to stop (its error is kept and returned by the driver).
    pub(crate) fn emit<E: de::Error>(&mut self, finding: NormalizedFinding) -> Result<(), E> {
        if let Some(sink) = self.sink.as_mut() {
            if let Err(e) = sink(finding) {
                self.sink_error = Some(e);
                return Err(E::custom("stopped by the sink"));
            }
        }
        Ok(())
    }

    /// Ends the pass early because all that was wanted is known (not an error).
    pub(crate) fn stop<E: de::Error>(&mut self) -> E {
        self.stopped = true;
        E::custom("stopped early")
    }

    /// Turns the deserializer's outcome into the pass's outcome.
    fn conclude(
        &mut self,
        res: Result<(), serde_json::Error>,
        format: &'static str,
    ) -> Result<(), IngestError> {
        match res {
            Ok(()) if self.phase == Phase::Emit && self.ord != self.table.len() => {
                Err(IngestError::Parse(ParseError::Inconsistent {
                    format,
                    message: CHANGED.into(),
                }))
            }
            Ok(()) => Ok(()),
            Err(e) => {
                if let Some(sink_error) = self.sink_error.take() {
                    Err(IngestError::Sink(sink_error))
                } else if self.stopped {
                    Ok(())
                } else {
                    Err(map_json_error(e, format))
                }
            }
        }
    }
}

const CHANGED: &str = "the report read differently on the second pass (changed while being read?)";

/// One format's passes over a report. The driver ([`run_passes`]) runs
/// [`Phase::Collect`], then [`Phase::Identify`] if [`FormatPasses::needs_identify_pass`], then
/// [`Phase::Emit`] (skipped when no result is a finding), each over a freshly opened reader.
pub(crate) trait FormatPasses {
    /// The format, for error messages.
    const FORMAT: ReportFormat;

    /// Deserializes the whole document once, in `px`'s phase.
    fn pass(&mut self, de: &mut JsonDe<'_>, px: &mut PassCtx<'_>) -> Result<(), serde_json::Error>;

    /// After [`Phase::Collect`]: whether a side table arrived after results that needed it, so
    /// that identities must be recomputed in an extra pass.
    fn needs_identify_pass(&self) -> bool;
}

/// Runs one pass of `passes` over `reader`.
///
/// # Errors
/// See [`IngestError`].
pub(crate) fn run_pass<P: FormatPasses>(
    passes: &mut P,
    reader: &mut dyn Read,
    px: &mut PassCtx<'_>,
) -> Result<(), IngestError> {
    let mut de = json_deserializer(reader)?;
    let res = passes.pass(&mut de, px).and_then(|()| de.end());
    px.conclude(res, P::FORMAT.display_name())
}

/// Runs all passes (see [`FormatPasses`]), opening the report once per pass.
///
/// # Errors
/// See [`IngestError`].
pub(crate) fn run_passes<P: FormatPasses>(
    passes: &mut P,
    open: &mut OpenFn<'_>,
    sink: &mut SinkFn<'_>,
) -> Result<(), IngestError> {
    let mut px = PassCtx::new(Phase::Collect);
    run_pass(passes, &mut *open()?, &mut px)?;
    if passes.needs_identify_pass() {
        px = PassCtx::new(Phase::Identify);
        run_pass(passes, &mut *open()?, &mut px)?;
    }
    if px.occ.len() == 0 {
        return Ok(());
    }
    let table = std::mem::take(&mut px.occ).finish();
    let mut px = PassCtx::emitting(table, sink);
    run_pass(passes, &mut *open()?, &mut px)
}

/// Runs the metadata pass of `passes` over `reader`.
///
/// # Errors
/// See [`IngestError`].
pub(crate) fn run_meta_pass<P: FormatPasses>(
    passes: &mut P,
    reader: &mut dyn Read,
) -> Result<(), IngestError> {
    run_pass(passes, reader, &mut PassCtx::new(Phase::Meta))
}

/// A free-form scalar as text: strings, numbers and booleans are kept, anything else (null,
/// objects, arrays) is skipped and gives `None`. For property bags, where tools put anything.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Text(pub Option<String>);

impl Text {
    /// The text, if any.
    pub(crate) fn as_deref(&self) -> Option<&str> {
        self.0.as_deref()
    }
}

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(TextVisitor).map(Text)
    }
}

struct TextVisitor;

impl<'de> Visitor<'de> for TextVisitor {
    type Value = Option<String>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any value")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Some(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Some(v))
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Ok(Some(v.to_string()))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Some(v.to_string()))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Some(v.to_string()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Ok(Some(v.to_string()))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(None)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(None)
    }
}

/// A free-form list of texts: a single scalar, or an array whose scalar elements are kept.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Texts(pub Vec<String>);

impl<'de> Deserialize<'de> for Texts {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(TextsVisitor).map(Texts)
    }
}

struct TextsVisitor;

impl<'de> Visitor<'de> for TextsVisitor {
    type Value = Vec<String>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any value")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(vec![v.to_owned()])
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Ok(vec![v.to_string()])
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(vec![v.to_string()])
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(vec![v.to_string()])
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Ok(vec![v.to_string()])
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Vec::new())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::new();
        while let Some(Text(item)) = seq.next_element::<Text>()? {
            if let Some(item) = item {
                if out.len() < 1024 {
                    out.push(item);
                }
            }
        }
        Ok(out)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Vec::new())
    }
}

/// A number given as a number or as numeric text; anything else gives `None`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Number(pub Option<f64>);

impl<'de> Deserialize<'de> for Number {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let Text(text) = Text::deserialize(d)?;
        Ok(Number(
            text.and_then(|t| t.trim().parse::<f64>().ok())
                .filter(|v| v.is_finite()),
        ))
    }
}

/// The first element of an array (the rest skipped unread); `None` for `null` or `[]`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct First<T>(pub Option<T>);

impl<T> Default for First<T> {
    fn default() -> Self {
        First(None)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for First<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(FirstVisitor(PhantomData)).map(First)
    }
}

struct FirstVisitor<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de>> Visitor<'de> for FirstVisitor<T> {
    type Value = Option<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let first = seq.next_element::<T>()?;
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(first)
    }
}

/// A non-negative integer as `u32` (line and column numbers), saturating; `0` when absent.
pub(crate) fn as_u32(v: Option<i64>) -> u32 {
    v.map(|n| n.clamp(0, i64::from(u32::MAX)) as u32)
        .unwrap_or(0)
}

/// Text that is present and not blank.
pub(crate) fn non_blank(s: Option<&str>) -> Option<&str> {
    s.filter(|t| !t.trim().is_empty())
}

/// Makes a display string like `name@version`.
pub(crate) fn name_at_version(name: &str, version: Option<&str>) -> String {
    match non_blank(version) {
        Some(v) if !name.ends_with(&format!("@{v}")) && !name.ends_with(&format!(":{v}")) => {
            format!("{name}@{v}")
        }
        _ => name.to_string(),
    }
}

/// How a parser reads the elements of one of its arrays, one by one as they are parsed (the
/// array is never held whole). Wrapped in [`NullableArray`], which handles `null` and the
/// serde plumbing.
pub(crate) trait ArrayElements<'de> {
    /// What the array is, for error messages ("an array of runs").
    const EXPECTING: &'static str;

    /// Reads every element of `seq`.
    fn read<A: SeqAccess<'de>>(self, seq: A) -> Result<(), A::Error>;
}

/// A seed for an array that may be `null` (read as empty), whose elements `E` reads.
pub(crate) struct NullableArray<E>(pub E);

impl<'de, E: ArrayElements<'de>> DeserializeSeed<'de> for NullableArray<E> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_option(self)
    }
}

impl<'de, E: ArrayElements<'de>> Visitor<'de> for NullableArray<E> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(E::EXPECTING)
    }
    fn visit_none<E2: de::Error>(self) -> Result<(), E2> {
        Ok(())
    }
    fn visit_unit<E2: de::Error>(self) -> Result<(), E2> {
        Ok(())
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<(), A::Error> {
        self.0.read(seq)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Default, Debug)]
    #[serde(default)]
    struct Probe {
        t: Text,
        l: Texts,
        n: Number,
        f: First<u32>,
    }

    #[test]
    fn lenient_types() {
        let p: Probe = serde_json::from_str(
            r#"{"t": 7.5, "l": ["a", 1, {"x": 1}, null], "n": "9.8", "f": [3, {}, []]}"#,
        )
        .unwrap();
        assert_eq!(p.t.0.as_deref(), Some("7.5"));
        assert_eq!(p.l.0, vec!["a", "1"]);
        assert_eq!(p.n.0, Some(9.8));
        assert_eq!(p.f.0, Some(3));
        let p: Probe =
            serde_json::from_str(r#"{"t": {"a": [1]}, "l": "one", "n": "x", "f": null}"#).unwrap();
        assert_eq!(p.t.0, None);
        assert_eq!(p.l.0, vec!["one"]);
        assert_eq!(p.n.0, None);
        assert_eq!(p.f.0, None);
    }

    #[test]
    fn json_errors_name_the_place() {
        let err = serde_json::from_str::<Probe>("{\n  \"t\": ").unwrap_err();
        let msg = map_json_error(err, "SARIF").to_string();
        assert!(msg.starts_with("invalid SARIF at line 2, column"), "{msg}");
        assert!(msg.contains("truncated"), "{msg}");
    }
}
