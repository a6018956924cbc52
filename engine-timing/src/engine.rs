//! The simulator's step timing: the default polynomials or a measured [`PerfTable`].

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::{Grid2d, Polynomial, Table1d, TableError};

/// Why [`EngineTiming::from_table_file`] could not load a table.
#[derive(Debug, thiserror::Error)]
pub enum TableFileError {
    /// The file could not be read.
    #[error("{}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not a [`PerfTable`] (bad JSON, or a table of the wrong shape).
    #[error("{}: {source}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        source: serde_json::Error,
    },
}

/// Predicts prefill and decode time of one scheduler pass, in milliseconds.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EngineTiming {
    /// Dynamo mocker's polynomials ([`Polynomial::default`]): prefill in the batch's new
    /// tokens, decode in the fraction of the KV cache in use.
    #[default]
    Polynomial,
    /// Interpolated from measured tables (the crate's edge rule: clamped outside them).
    Table(PerfTable),
}

impl EngineTiming {
    /// Loads a [`PerfTable`] from a JSON file (its shape is checked on the way in).
    pub fn from_table_file(path: &Path) -> Result<Self, TableFileError> {
        let text = std::fs::read_to_string(path).map_err(|source| TableFileError::Read {
            path: path.to_owned(),
            source,
        })?;
        let table: PerfTable =
            serde_json::from_str(&text).map_err(|source| TableFileError::Parse {
                path: path.to_owned(),
                source,
            })?;
        Ok(EngineTiming::Table(table))
    }

    /// Time in ms to prefill `new_tokens` prompt tokens spread over the batch.
    pub fn prefill_ms(&self, new_tokens: usize) -> f64 {
        if new_tokens == 0 {
            return 0.0;
        }
        match self {
            EngineTiming::Polynomial => Polynomial::default().prefill_pass_ms(new_tokens as f64),
            EngineTiming::Table(t) => t.prefill.eval(new_tokens as f64),
        }
    }

    /// Time in ms of one decode step for `batch` sequences holding `active_kv_tokens`
    /// tokens, on an engine with `capacity_kv_tokens` slots.
    pub fn decode_ms(
        &self,
        batch: usize,
        active_kv_tokens: usize,
        capacity_kv_tokens: usize,
    ) -> f64 {
        if batch == 0 {
            return 0.0;
        }
        match self {
            EngineTiming::Polynomial => Polynomial::default().decode_step_ms(
                u32::try_from(batch).unwrap_or(u32::MAX),
                active_kv_tokens as f64,
                capacity_kv_tokens as u64,
            ),
            EngineTiming::Table(t) => {
                let context = active_kv_tokens as f64 / batch as f64;
                t.decode.eval(context, active_kv_tokens as f64)
            }
        }
    }
}

/// Measured step times: prefill ms against the pass's new tokens, and decode ms on a grid of
/// the batch's active KV tokens (rows) by its mean context length (columns).
///
/// JSON form: `{"prefill_tokens": [..], "prefill_ms": [..], "decode_kv_tokens": [..],
/// "decode_context": [..], "decode_ms": [[..], ..]}`, `decode_ms[row][col]`, axes ascending.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawPerfTable", into = "RawPerfTable")]
pub struct PerfTable {
    prefill: Table1d,
    /// x: mean context (columns), y: active KV tokens (rows).
    decode: Grid2d,
}

impl PerfTable {
    /// A table from its axes and values (the JSON form's fields).
    pub fn new(
        prefill_tokens: Vec<f64>,
        prefill_ms: Vec<f64>,
        decode_kv_tokens: Vec<f64>,
        decode_context: Vec<f64>,
        decode_ms: Vec<Vec<f64>>,
    ) -> Result<Self, TableError> {
        Ok(Self {
            prefill: Table1d::new(prefill_tokens, prefill_ms)?,
            decode: Grid2d::new(decode_context, decode_kv_tokens, decode_ms)?,
        })
    }

    /// Prefill ms against new tokens.
    pub fn prefill(&self) -> &Table1d {
        &self.prefill
    }

    /// Decode ms over (mean context, active KV tokens).
    pub fn decode(&self) -> &Grid2d {
        &self.decode
    }
}

/// Wire form of [`PerfTable`].
#[derive(Serialize, Deserialize)]
struct RawPerfTable {
    prefill_tokens: Vec<f64>,
    prefill_ms: Vec<f64>,
    decode_kv_tokens: Vec<f64>,
    decode_context: Vec<f64>,
    decode_ms: Vec<Vec<f64>>,
}

impl TryFrom<RawPerfTable> for PerfTable {
    type Error = TableError;
    fn try_from(r: RawPerfTable) -> Result<Self, TableError> {
        Self::new(
            r.prefill_tokens,
            r.prefill_ms,
            r.decode_kv_tokens,
            r.decode_context,
            r.decode_ms,
        )
    }
}

impl From<PerfTable> for RawPerfTable {
    fn from(t: PerfTable) -> Self {
        Self {
            prefill_tokens: t.prefill.xs().to_vec(),
            prefill_ms: t.prefill.ys().to_vec(),
            decode_kv_tokens: t.decode.ys().to_vec(),
            decode_context: t.decode.xs().to_vec(),
            decode_ms: t.decode.z().to_vec(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_files_that_cannot_load_say_why() {
        let missing = Path::new("/nonexistent/perf-table.json");
        let e = EngineTiming::from_table_file(missing).unwrap_err();
        assert!(
            matches!(&e, TableFileError::Read { path, .. } if path == missing),
            "{e}"
        );
        let bad = std::env::temp_dir().join(format!("perf-table-{}.json", std::process::id()));
        std::fs::write(&bad, "{\"prefill_tokens\": [1]}").unwrap();
        let e = EngineTiming::from_table_file(&bad).unwrap_err();
        std::fs::remove_file(&bad).unwrap();
        assert!(
            matches!(&e, TableFileError::Parse { path, .. } if *path == bad),
            "{e}"
        );
        assert!(e.to_string().starts_with(&bad.display().to_string()), "{e}");
    }

    #[test]
    fn polynomial_matches_dynamo_coefficients() {
        let m = EngineTiming::Polynomial;
        assert_eq!(m.prefill_ms(0), 0.0);
        assert!((m.decode_ms(1, 0, 100) - 5.74).abs() < 1e-9);
        assert!((m.decode_ms(1, 100, 100) - (54.01 - 25.74 + 5.74)).abs() < 1e-9);
        assert_eq!(m.decode_ms(0, 50, 100), 0.0);
    }

    #[test]
    fn table_interpolates_and_clamps() {
        let t = PerfTable::new(
            vec![0.0, 1000.0],
            vec![10.0, 110.0],
            vec![0.0, 1000.0],
            vec![100.0, 200.0],
            vec![vec![5.0, 7.0], vec![15.0, 17.0]],
        )
        .unwrap();
        let m = EngineTiming::Table(t);
        assert!((m.prefill_ms(500) - 60.0).abs() < 1e-9);
        assert!((m.prefill_ms(5000) - 110.0).abs() < 1e-9);
        // kv = 500 (halfway), context = 500/4 = 125 (quarter way).
        assert!((m.decode_ms(4, 500, 0) - 10.5).abs() < 1e-9);
        // Beyond both decode axes: the corner value.
        assert!((m.decode_ms(1, 5000, 0) - 17.0).abs() < 1e-9);
    }

    #[test]
    fn table_json_keeps_its_form_and_is_checked() {
        let json = r#"{"kind":"table","prefill_tokens":[0,1000],"prefill_ms":[10,110],
            "decode_kv_tokens":[0,1000],"decode_context":[100,200],
            "decode_ms":[[5,7],[15,17]]}"#;
        let m: EngineTiming = serde_json::from_str(json).unwrap();
        let back: EngineTiming = serde_json::from_str(&serde_json::to_string(&m).unwrap()).unwrap();
        assert_eq!(m, back);
        let ragged = json.replace("[[5,7],[15,17]]", "[[5,7],[15]]");
        assert!(serde_json::from_str::<EngineTiming>(&ragged).is_err());
        let descending = json.replace("[0,1000],\"prefill_ms", "[1000,0],\"prefill_ms");
        assert!(serde_json::from_str::<EngineTiming>(&descending).is_err());
    }
}
