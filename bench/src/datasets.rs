//! The benchmark's datasets: `touchstone gen` output, kept under the work folder by shape
//! and size so that a second run reuses them.

use crate::BenchResult;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use touchstone_integration_tests::{text, touchstone};
use touchstone_proto::v1 as pb;

/// Records per chunk of the ingest stream (the server takes up to 10,000).
pub const CHUNK_RECORDS: usize = 5_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// `touchstone gen` as it is: 60 days, the profiles' campaigns.
    Default,
    /// A year of activity for 1,000 campaigns, for the query store.
    Year,
}

pub struct Dataset {
    pub dir: PathBuf,
    pub shape: Shape,
    /// Lines of `records.jsonl`.
    pub records: usize,
    pub tenants: Vec<String>,
}

/// Which output of `touchstone gen` the cached datasets hold: bumped whenever it changes
/// (its pins in `shared/datagen/tests/options.rs` move), so that a cache of another one is
/// generated again instead of measured.
const GENERATION: &str = "g3";

impl Dataset {
    /// About `records` records (gen's scale is records / 10,000), seed 1.
    pub fn generate(work: &Path, records: usize, shape: Shape) -> BenchResult<Dataset> {
        let scale = (records / 10_000).max(1).to_string();
        let (name, extra): (String, &[&str]) = match shape {
            Shape::Default => (format!("data-{scale}-{GENERATION}"), &[]),
            Shape::Year => (format!("year-{scale}-{GENERATION}"), &["--days", "365", "--campaigns", "1000"]),
        };
        let dir = work.join(name);
        if !dir.join("records.jsonl").exists() {
            println!("generating {} ...", dir.display());
            let mut args = vec!["gen", "--scale", &scale, "--seed", "1"];
            args.extend(extra);
            let dir_arg = dir.to_string_lossy().into_owned();
            args.push(&dir_arg);
            let output = touchstone(&args);
            if !output.status.success() {
                return Err(format!("touchstone gen failed: {}", text(&output.stderr)).into());
            }
        }
        let config: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.join("config.json"))?)?;
        let tenants = config["tenants"].as_object().map(|t| t.keys().cloned().collect()).unwrap_or_default();
        let records = BufReader::new(std::fs::File::open(dir.join("records.jsonl"))?).lines().count();
        Ok(Dataset { dir, shape, records, tenants })
    }

    pub fn path(&self, name: &str) -> String {
        self.dir.join(name).to_string_lossy().into_owned()
    }

    /// Every record as protobuf, in stream chunks.
    pub fn chunks(&self) -> BenchResult<Vec<pb::IngestChunk>> {
        let mut chunks = Vec::with_capacity(self.records / CHUNK_RECORDS + 1);
        let mut reader = ChunkReader::open(self)?;
        while let Some(chunk) = reader.next_chunk()? {
            chunks.push(chunk);
        }
        Ok(chunks)
    }
}

/// Reads `records.jsonl` a chunk at a time, parsing each line as `touchstone import` does.
pub struct ChunkReader {
    lines: std::io::Lines<BufReader<std::fs::File>>,
    line: u64,
}

impl ChunkReader {
    pub fn open(data: &Dataset) -> BenchResult<ChunkReader> {
        let file = std::fs::File::open(data.dir.join("records.jsonl"))?;
        Ok(ChunkReader { lines: BufReader::with_capacity(1 << 20, file).lines(), line: 0 })
    }

    pub fn next_chunk(&mut self) -> BenchResult<Option<pb::IngestChunk>> {
        let mut records = Vec::with_capacity(CHUNK_RECORDS);
        while records.len() < CHUNK_RECORDS {
            let Some(line) = self.lines.next() else { break };
            let line = line?;
            self.line += 1;
            let record = touchstone_core::files::parse_record(&line)
                .map_err(|err| format!("records.jsonl line {}: {err}", self.line))?;
            records.push(pb::Record::from(record));
        }
        Ok((!records.is_empty()).then_some(pb::IngestChunk { records }))
    }
}
