//! Step-time performance model: how long one engine pass takes.
//!
//! Two sources: Dynamo mocker's fitted polynomials (the default) or measured
//! tables loaded from a JSON file (linear / bilinear interpolation, clamped at
//! the table edges so a sparse profile never yields negative times).

use serde::{Deserialize, Serialize};

/// Predicts prefill and decode time for one scheduler pass.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PerfModel {
    /// Dynamo mocker's polynomials: prefill in the batch's new tokens,
    /// decode in the fraction of the KV cache in use.
    #[default]
    Polynomial,
    /// Interpolated from measured tables.
    Table(PerfTable),
}

/// Measured timing tables (the shape of the planner profiler's output).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PerfTable {
    /// New prompt tokens in the pass (ascending).
    pub prefill_tokens: Vec<f64>,
    /// Prefill time in ms for each entry of `prefill_tokens`.
    pub prefill_ms: Vec<f64>,
    /// Active KV tokens of the decoding batch (ascending) — grid rows.
    pub decode_kv_tokens: Vec<f64>,
    /// Mean context length of the decoding batch (ascending) — grid columns.
    pub decode_context: Vec<f64>,
    /// Decode step time in ms, `decode_ms[row][col]`.
    pub decode_ms: Vec<Vec<f64>>,
}

impl PerfModel {
    /// Loads a [`PerfTable`] from a JSON file and validates its shape.
    pub fn from_table_file(path: &std::path::Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let table: PerfTable =
            serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        table.validate()?;
        Ok(PerfModel::Table(table))
    }

    /// Time in ms to prefill `new_tokens` prompt tokens spread over the batch.
    pub fn prefill_ms(&self, new_tokens: usize) -> f64 {
        if new_tokens == 0 {
            return 0.0;
        }
        match self {
            PerfModel::Polynomial => {
                let x = new_tokens as f64;
                4.209989e-7 * x * x + 1.518344e-2 * x + 16.50142
            }
            PerfModel::Table(t) => interp1(&t.prefill_tokens, &t.prefill_ms, new_tokens as f64),
        }
    }

    /// Time in ms of one decode step for `batch` sequences holding
    /// `active_kv_tokens` tokens, on an engine with `capacity_kv_tokens` slots.
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
            PerfModel::Polynomial => {
                let u = if capacity_kv_tokens == 0 {
                    1.0
                } else {
                    (active_kv_tokens as f64 / capacity_kv_tokens as f64).min(1.0)
                };
                // Dynamo floors the polynomial at 1 ms.
                (-25.74 * u * u + 54.01 * u + 5.74).max(1.0)
            }
            PerfModel::Table(t) => {
                let context = active_kv_tokens as f64 / batch as f64;
                bilinear(t, active_kv_tokens as f64, context)
            }
        }
    }
}

impl PerfTable {
    /// Checks that axes are ascending and the grids match them.
    pub fn validate(&self) -> Result<(), String> {
        let ascending = |v: &[f64]| !v.is_empty() && v.windows(2).all(|w| w[0] < w[1]);
        if !ascending(&self.prefill_tokens) || self.prefill_tokens.len() != self.prefill_ms.len() {
            return Err("prefill_tokens must be ascending and match prefill_ms".into());
        }
        if !ascending(&self.decode_kv_tokens) || !ascending(&self.decode_context) {
            return Err("decode axes must be non-empty and ascending".into());
        }
        let rows_ok = self.decode_ms.len() == self.decode_kv_tokens.len()
            && self
                .decode_ms
                .iter()
                .all(|r| r.len() == self.decode_context.len());
        if !rows_ok {
            return Err("decode_ms must be decode_kv_tokens x decode_context".into());
        }
        Ok(())
    }
}

/// Index of the segment containing `x` and the position inside it, clamped.
fn locate(xs: &[f64], x: f64) -> (usize, f64) {
    if xs.len() == 1 || x <= xs[0] {
        return (0, 0.0);
    }
    let last = xs.len() - 1;
    if x >= xs[last] {
        return (last - 1, 1.0);
    }
    let i = xs.partition_point(|&v| v <= x) - 1;
    (i, (x - xs[i]) / (xs[i + 1] - xs[i]))
}

fn interp1(xs: &[f64], ys: &[f64], x: f64) -> f64 {
    if xs.len() == 1 {
        return ys[0];
    }
    let (i, f) = locate(xs, x);
    ys[i] + f * (ys[i + 1] - ys[i])
}

fn bilinear(t: &PerfTable, kv: f64, context: f64) -> f64 {
    let row = |r: &Vec<f64>| interp1(&t.decode_context, r, context);
    if t.decode_kv_tokens.len() == 1 {
        return row(&t.decode_ms[0]);
    }
    let (i, f) = locate(&t.decode_kv_tokens, kv);
    let a = row(&t.decode_ms[i]);
    let b = row(&t.decode_ms[i + 1]);
    a + f * (b - a)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn polynomial_matches_dynamo_coefficients() {
        let m = PerfModel::Polynomial;
        assert_eq!(m.prefill_ms(0), 0.0);
        let x = 8192.0_f64;
        let expected = 4.209989e-7 * x * x + 1.518344e-2 * x + 16.50142;
        assert!((m.prefill_ms(8192) - expected).abs() < 1e-9);
        assert!((m.decode_ms(1, 0, 100) - 5.74).abs() < 1e-9);
        assert!((m.decode_ms(1, 100, 100) - (54.01 - 25.74 + 5.74)).abs() < 1e-9);
        assert_eq!(m.decode_ms(0, 50, 100), 0.0);
    }

    #[test]
    fn table_interpolates_and_clamps() {
        let t = PerfTable {
            prefill_tokens: vec![0.0, 1000.0],
            prefill_ms: vec![10.0, 110.0],
            decode_kv_tokens: vec![0.0, 1000.0],
            decode_context: vec![100.0, 200.0],
            decode_ms: vec![vec![5.0, 7.0], vec![15.0, 17.0]],
        };
        t.validate().unwrap();
        let m = PerfModel::Table(t);
        assert!((m.prefill_ms(500) - 60.0).abs() < 1e-9);
        assert!((m.prefill_ms(5000) - 110.0).abs() < 1e-9);
        // kv = 500 (halfway), context = 500/4 = 125 (quarter way).
        assert!((m.decode_ms(4, 500, 0) - 10.5).abs() < 1e-9);
    }
}
