//! Mooncake trace format: one JSON object per line with `timestamp` (ms),
//! `input_length`, `output_length` and `hash_ids`.

use std::path::{Path, PathBuf};

use super::{RequestSpec, Workload};
use serde::Deserialize;

/// Why a Mooncake trace could not be read.
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    /// The file could not be read.
    #[error("{}: {source}", path.display())]
    Read {
        /// The trace file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A line is not a Mooncake request.
    #[error("{}line {line}: {source}", path.as_ref().map(|p| format!("{}: ", p.display())).unwrap_or_default())]
    Line {
        /// The trace file, where the text came from one.
        path: Option<PathBuf>,
        /// 1-based line number.
        line: usize,
        /// What was wrong with it.
        source: serde_json::Error,
    },
}

#[derive(Deserialize)]
struct Line {
    timestamp: f64,
    input_length: usize,
    output_length: usize,
    #[serde(default)]
    hash_ids: Vec<u64>,
}

/// Parses Mooncake JSONL text; blank lines are skipped.
pub fn parse_mooncake(text: &str, trace_block_size: usize) -> Result<Workload, TraceError> {
    let mut requests = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let l: Line = serde_json::from_str(line).map_err(|source| TraceError::Line {
            path: None,
            line: n + 1,
            source,
        })?;
        requests.push(RequestSpec {
            arrival_ms: l.timestamp,
            input_length: l.input_length,
            output_length: l.output_length,
            hash_ids: l.hash_ids,
        });
    }
    Ok(Workload::new(trace_block_size, requests))
}

/// Reads a Mooncake JSONL file.
pub fn load_mooncake(path: &Path, trace_block_size: usize) -> Result<Workload, TraceError> {
    let text = std::fs::read_to_string(path).map_err(|source| TraceError::Read {
        path: path.to_owned(),
        source,
    })?;
    parse_mooncake(&text, trace_block_size).map_err(|e| match e {
        TraceError::Line { line, source, .. } => TraceError::Line {
            path: Some(path.to_owned()),
            line,
            source,
        },
        read => read,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_sorts() {
        let text = "{\"timestamp\": 5, \"input_length\": 600, \"output_length\": 3, \"hash_ids\": [0, 1]}\n\n\
                    {\"timestamp\": 1, \"input_length\": 10, \"output_length\": 2, \"hash_ids\": [0]}\n";
        let w = parse_mooncake(text, 512).unwrap();
        assert_eq!(w.requests.len(), 2);
        assert_eq!(w.requests[0].arrival_ms, 1.0);
        assert_eq!(w.requests[1].hash_ids, vec![0, 1]);
        assert!(parse_mooncake("{\"timestamp\": 1}", 512).is_err());
    }
}
