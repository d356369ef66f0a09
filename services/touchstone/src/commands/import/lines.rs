//! Reading a JSONL bulk file (docs/behaviour/records-and-config.md) into chunks of wire records, one line at a time
//! so that a file of any size needs only a chunk of memory, and mapping the server's stream
//! positions back to line numbers.

use std::fmt;
use std::io::{self, BufRead};
use touchstone_core::files::{LineError, parse_message, parse_record};
use touchstone_core::model::Record;
use touchstone_proto::v1 as pb;

/// How big one `IngestChunk` may grow: whichever limit is reached first closes it. The byte
/// limit counts JSON text, which is larger than its protobuf encoding, so a chunk stays well
/// under the server's 4 MiB message limit even when lines are long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkLimits {
    pub max_records: usize,
    pub max_bytes: usize,
}

impl ChunkLimits {
    pub const DEFAULT: ChunkLimits = ChunkLimits { max_records: 2_000, max_bytes: 1024 * 1024 };
}

/// Parses one line into the record to send.
pub type ParseLine = fn(&str) -> Result<pb::Record, String>;

/// A `messages.jsonl` line, sent as a `Record` holding a message.
pub fn message_line(line: &str) -> Result<pb::Record, String> {
    parse_message(line).map(|message| pb::Record::from(Record::Message(message)))
}

/// A `records.jsonl` line.
pub fn record_line(line: &str) -> Result<pb::Record, String> {
    parse_record(line).map(pb::Record::from)
}

/// Which line each record of the stream came from. The stream index of a record is its
/// position among the records sent; lines that were blank or failed to parse have none.
/// Stored as runs of consecutive lines, so a clean file of any length takes one entry.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct LineMap {
    runs: Vec<Run>,
    len: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Run {
    first_index: u64,
    first_line: u64,
}

impl LineMap {
    /// Records that the next stream index came from `line`. Lines only grow.
    pub fn push(&mut self, line: u64) {
        let continues_run = self.runs.last().is_some_and(|run| run.first_line + (self.len - run.first_index) == line);
        if !continues_run {
            debug_assert!(self.runs.last().is_none_or(|run| run.first_line < line), "lines only grow");
            self.runs.push(Run { first_index: self.len, first_line: line });
        }
        self.len += 1;
    }

    /// The line of the record at stream `index`, if one was sent there.
    pub fn line_of(&self, index: u64) -> Option<u64> {
        if index >= self.len {
            return None;
        }
        let run = self.runs.partition_point(|run| run.first_index <= index).checked_sub(1)?;
        let run = self.runs.get(run)?;
        Some(run.first_line + (index - run.first_index))
    }

    /// Records sent.
    pub fn len(&self) -> u64 {
        self.len
    }
}

/// What reading a whole file found, besides the chunks it handed on.
#[derive(Debug, Default)]
pub struct ReadOutcome {
    /// Non-blank lines read.
    pub lines: u64,
    /// Lines that could not be parsed (each already reported).
    pub bad_lines: u64,
    pub line_map: LineMap,
    /// The receiver of the chunks went away (the server ended the call): the rest of the
    /// file was not read.
    pub stopped_early: bool,
}

/// Reads `reader` line by line, reports each line that does not parse through `bad_line`,
/// and hands the parsed records to `send` in chunks within `limits`. `send` returns false
/// when nobody listens any more, which ends the reading.
pub fn read_chunks(
    mut reader: impl BufRead,
    parse: ParseLine,
    limits: ChunkLimits,
    mut bad_line: impl FnMut(LineError),
    mut send: impl FnMut(pb::IngestChunk) -> bool,
) -> io::Result<ReadOutcome> {
    let mut outcome = ReadOutcome::default();
    let mut chunk = ChunkBuilder::new(limits);
    let mut buffer = Vec::new();
    let mut line_no: u64 = 0;
    loop {
        buffer.clear();
        if reader.read_until(b'\n', &mut buffer)? == 0 {
            break;
        }
        line_no += 1;
        let parsed = match line_text(&buffer, line_no) {
            Ok(text) if text.trim().is_empty() => continue,
            Ok(text) => parse(text).map(|record| (record, text.len())),
            Err(message) => Err(message),
        };
        outcome.lines += 1;
        let (record, size) = match parsed {
            Ok(parsed) => parsed,
            Err(message) => {
                outcome.bad_lines += 1;
                bad_line(LineError { line: line_no as usize, message });
                continue;
            }
        };
        outcome.line_map.push(line_no);
        if let Some(full) = chunk.add(record, size)
            && !send(full)
        {
            outcome.stopped_early = true;
            return Ok(outcome);
        }
    }
    if let Some(last) = chunk.finish()
        && !send(last)
    {
        outcome.stopped_early = true;
    }
    Ok(outcome)
}

/// The text of one line without its line ending (and without a byte order mark on line 1).
fn line_text(bytes: &[u8], line_no: u64) -> Result<&str, String> {
    let bytes = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
    let text = std::str::from_utf8(bytes).map_err(|err| format!("line is not valid UTF-8: {err}"))?;
    Ok(if line_no == 1 { text.strip_prefix('\u{feff}').unwrap_or(text) } else { text })
}

/// Collects records until a limit is reached.
struct ChunkBuilder {
    limits: ChunkLimits,
    records: Vec<pb::Record>,
    bytes: usize,
}

impl ChunkBuilder {
    fn new(limits: ChunkLimits) -> ChunkBuilder {
        ChunkBuilder { limits, records: Vec::new(), bytes: 0 }
    }

    /// Adds a record of `size` bytes of text; returns the chunk once it is full.
    fn add(&mut self, record: pb::Record, size: usize) -> Option<pb::IngestChunk> {
        self.records.push(record);
        self.bytes += size;
        if self.records.len() >= self.limits.max_records || self.bytes >= self.limits.max_bytes {
            return self.finish();
        }
        None
    }

    /// The records collected so far, if any.
    fn finish(&mut self) -> Option<pb::IngestChunk> {
        if self.records.is_empty() {
            return None;
        }
        self.bytes = 0;
        Some(pb::IngestChunk { records: std::mem::take(&mut self.records) })
    }
}

/// One `FILE:LINE: reason` report for a record the server refused.
pub fn rejection_line(file: &str, line_map: &LineMap, rejection: &pb::Rejection) -> String {
    let pb::Rejection { index, event_id, reason, code: _ } = rejection;
    match line_map.line_of(*index) {
        Some(line) => format!("{file}:{line}: {reason}"),
        // The server named a position the client never sent: say so rather than guess.
        None => format!("{file}: record #{index} (event_id {event_id:?}, not a position this import sent): {reason}"),
    }
}

/// The last line an import prints to stderr, after the file name.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    pub lines: u64,
    pub accepted: u64,
    pub duplicates: u64,
    /// Refused by the parser or by the server.
    pub rejected: u64,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Summary { lines, accepted, duplicates, rejected } = self;
        write!(f, "{lines} lines, {accepted} accepted, {duplicates} duplicates, {rejected} rejected")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(event_id: &str) -> String {
        format!(
            r#"{{"type":"touch","tenant":"t","event_id":"{event_id}","msg_hash":"m","customer_id":"c","touch":"OPENED","ts":1}}"#
        )
    }

    fn event_id(record: &pb::Record) -> &str {
        match &record.kind {
            Some(pb::record::Kind::Touch(touch)) => &touch.event_id,
            other => panic!("not a touch: {other:?}"),
        }
    }

    /// Reads `text` with small chunks, returning the chunks, the reported bad lines and the outcome.
    fn read(text: &str, limits: ChunkLimits) -> (Vec<pb::IngestChunk>, Vec<LineError>, ReadOutcome) {
        let mut chunks = Vec::new();
        let mut bad = Vec::new();
        let outcome = read_chunks(
            text.as_bytes(),
            record_line,
            limits,
            |err| bad.push(err),
            |chunk| {
                chunks.push(chunk);
                true
            },
        )
        .unwrap();
        (chunks, bad, outcome)
    }

    #[test]
    fn line_map_maps_stream_indexes_back_to_lines_across_gaps() {
        let mut map = LineMap::default();
        for line in [1, 2, 3, 5, 6, 9] {
            map.push(line);
        }
        let lines: Vec<_> = (0..6).map(|index| map.line_of(index)).collect();
        assert_eq!(lines, [1, 2, 3, 5, 6, 9].map(Some));
        assert_eq!(map.line_of(6), None);
        assert_eq!(map.len(), 6);
        assert_eq!(map.runs.len(), 3, "consecutive lines share a run");
    }

    #[test]
    fn an_empty_line_map_maps_nothing() {
        assert_eq!(LineMap::default().line_of(0), None);
    }

    #[test]
    fn parse_errors_are_reported_with_their_line_and_the_other_lines_are_sent() {
        let text =
            [touch("e1"), "not json".into(), String::new(), touch("e4"), r#"{"type":"refund"}"#.into(), touch("e6")]
                .join("\n");
        let (chunks, bad, outcome) = read(&text, ChunkLimits::DEFAULT);
        assert_eq!(bad.iter().map(|err| err.line).collect::<Vec<_>>(), vec![2, 5]);
        assert!(bad[1].message.contains("refund"), "{}", bad[1].message);
        let sent: Vec<&str> = chunks.iter().flat_map(|c| &c.records).map(event_id).collect();
        assert_eq!(sent, ["e1", "e4", "e6"]);
        assert_eq!((outcome.lines, outcome.bad_lines), (5, 2), "the blank line is not counted");
        assert_eq!([0, 1, 2].map(|i| outcome.line_map.line_of(i)), [Some(1), Some(4), Some(6)]);
    }

    #[test]
    fn chunking_keeps_every_record_with_its_line_number() {
        let lines: Vec<String> =
            (1..=7).map(|n| if n == 3 { String::new() } else { touch(&format!("e{n}")) }).collect();
        let (chunks, bad, outcome) = read(&lines.join("\n"), ChunkLimits { max_records: 2, max_bytes: usize::MAX });
        assert!(bad.is_empty());
        assert_eq!(chunks.iter().map(|c| c.records.len()).collect::<Vec<_>>(), vec![2, 2, 2]);
        for (index, record) in chunks.iter().flat_map(|c| &c.records).enumerate() {
            let line = outcome.line_map.line_of(index as u64).unwrap();
            assert_eq!(event_id(record), format!("e{line}"), "stream index {index}");
        }
    }

    #[test]
    fn a_chunk_closes_at_the_byte_limit_too() {
        let text = [touch("e1"), touch("e2"), touch("e3")].join("\n");
        let (chunks, _, _) = read(&text, ChunkLimits { max_records: 100, max_bytes: 1 });
        assert_eq!(chunks.len(), 3);
    }

    #[test]
    fn crlf_endings_a_bom_and_invalid_utf8_are_handled_per_line() {
        let mut bytes = format!("\u{feff}{}\r\n", touch("e1")).into_bytes();
        bytes.extend_from_slice(b"\xff\xfe\n");
        bytes.extend_from_slice(touch("e3").as_bytes());
        let mut chunks = Vec::new();
        let mut bad = Vec::new();
        let outcome = read_chunks(
            &bytes[..],
            record_line,
            ChunkLimits::DEFAULT,
            |e| bad.push(e),
            |c| {
                chunks.push(c);
                true
            },
        )
        .unwrap();
        assert_eq!(bad.len(), 1);
        assert_eq!(bad[0].line, 2);
        assert!(bad[0].message.contains("UTF-8"));
        assert_eq!(outcome.line_map.line_of(1), Some(3));
        assert_eq!(chunks[0].records.len(), 2);
    }

    #[test]
    fn reading_stops_when_the_receiver_is_gone() {
        let text = [touch("e1"), touch("e2"), touch("e3")].join("\n");
        let mut sends = 0;
        let outcome = read_chunks(
            text.as_bytes(),
            record_line,
            ChunkLimits { max_records: 1, max_bytes: usize::MAX },
            |_| {},
            |_| {
                sends += 1;
                false
            },
        )
        .unwrap();
        assert_eq!(sends, 1);
        assert!(outcome.stopped_early);
    }

    #[test]
    fn messages_go_out_as_message_records() {
        let line = r#"{"tenant":"t","msg_hash":"m1","campaign_id":"c","channel":"PUSH","tags":["x"],"sent_at":5}"#;
        let record = message_line(line).unwrap();
        let Some(pb::record::Kind::Message(message)) = record.kind else { panic!("{record:?}") };
        assert_eq!((message.msg_hash.as_str(), message.channel), ("m1", pb::Channel::Push as i32));
    }

    #[test]
    fn server_rejections_are_reported_at_their_line() {
        let mut map = LineMap::default();
        for line in [2, 3, 7] {
            map.push(line);
        }
        let rejection = pb::Rejection { index: 2, event_id: "e9".into(), reason: "tenant is empty".into(), code: 3 };
        assert_eq!(rejection_line("records.jsonl", &map, &rejection), "records.jsonl:7: tenant is empty");
        let unknown = pb::Rejection { index: 3, event_id: "e10".into(), reason: "bad".into(), code: 3 };
        assert!(rejection_line("records.jsonl", &map, &unknown).starts_with("records.jsonl: record #3"));
    }

    #[test]
    fn the_summary_reads_like_the_spec_example() {
        let summary = Summary { lines: 10_000, accepted: 9_800, duplicates: 150, rejected: 50 };
        assert_eq!(summary.to_string(), "10000 lines, 9800 accepted, 150 duplicates, 50 rejected");
    }
}
