//! Engine performance profiles, as Dynamo's pre-deployment profiler produces them:
//! prefill time and throughput against input length, and decode inter-token latency and
//! throughput against KV usage and context length. All times are in seconds.

use serde::{Deserialize, Serialize};

use crate::interp::{Grid2d, Table1d, TableError};

/// Why a profile could not be built or read.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    /// Axes and values disagree in length.
    #[error("profile shape: {0}")]
    Shape(String),
    /// An axis is not strictly increasing.
    #[error("profile axis is not strictly increasing")]
    NotIncreasing,
    /// A NaN or infinity.
    #[error("profile holds a non-finite number")]
    NotFinite,
    /// A scalar parameter is out of range.
    #[error("profile parameter: {0}")]
    Parameter(String),
    /// The JSON form could not be parsed.
    #[error("profile JSON: {0}")]
    Json(#[from] serde_json::Error),
}

impl From<TableError> for ProfileError {
    fn from(e: TableError) -> Self {
        match e {
            TableError::Shape(what) => ProfileError::Shape(what),
            TableError::NotIncreasing => ProfileError::NotIncreasing,
            TableError::NotFinite => ProfileError::NotFinite,
        }
    }
}

/// Prefill engine profile: time to first token and prefill throughput per GPU against input
/// sequence length (ISL, tokens), measured one request at a time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PrefillProfile {
    /// TTFT in seconds against ISL.
    pub ttft: Table1d,
    /// Prefill throughput in tokens per second per GPU against ISL.
    pub thpt_per_gpu: Table1d,
    /// GPUs one prefill engine uses.
    pub gpus_per_engine: u32,
    /// The engine's token budget per forward pass (chunk size of chunked prefill).
    pub max_batched_tokens: u32,
    /// Prompt tokens per second one engine delivers when saturated (every pass full), as
    /// measured; `None` in profiles that hold only lone-request TTFTs, where it is estimated
    /// from `ttft(max_batched_tokens)` (which includes the KV hand-off and so understates
    /// the engine).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub saturated_tokens_per_s: Option<f64>,
}

impl PrefillProfile {
    /// Builds a profile from measured `(isl, ttft_seconds)` points; throughput per GPU is
    /// derived as `isl / ttft / gpus`.
    pub fn from_ttft_points(
        points: &[(f64, f64)],
        gpus_per_engine: u32,
        max_batched_tokens: u32,
    ) -> Result<Self, ProfileError> {
        if gpus_per_engine == 0 || max_batched_tokens == 0 {
            return Err(ProfileError::Parameter(
                "gpus_per_engine and max_batched_tokens must be positive".into(),
            ));
        }
        if points.iter().any(|&(_, t)| t <= 0.0) {
            return Err(ProfileError::Parameter("TTFT must be positive".into()));
        }
        let xs: Vec<f64> = points.iter().map(|p| p.0).collect();
        let ttft: Vec<f64> = points.iter().map(|p| p.1).collect();
        let thpt: Vec<f64> = points
            .iter()
            .map(|&(isl, t)| isl / t / f64::from(gpus_per_engine))
            .collect();
        Ok(Self {
            ttft: Table1d::new(xs.clone(), ttft)?,
            thpt_per_gpu: Table1d::new(xs, thpt)?,
            gpus_per_engine,
            max_batched_tokens,
            saturated_tokens_per_s: None,
        })
    }

    /// Sets the measured saturated throughput (prompt tokens/s of one engine).
    pub fn with_saturated_tokens_per_s(mut self, tokens_per_s: f64) -> Result<Self, ProfileError> {
        if !(tokens_per_s.is_finite() && tokens_per_s > 0.0) {
            return Err(ProfileError::Parameter(
                "saturated throughput must be positive".into(),
            ));
        }
        self.saturated_tokens_per_s = Some(tokens_per_s);
        Ok(self)
    }

    /// Prompt tokens per second of one saturated engine: the measured figure when the
    /// profile has one, else `MBT / ttft(MBT)`.
    pub fn saturated_rate(&self) -> f64 {
        self.saturated_tokens_per_s.unwrap_or_else(|| {
            let mbt = f64::from(self.max_batched_tokens.max(1));
            mbt / self.ttft(mbt)
        })
    }

    /// Predicted TTFT (s) of one request of `isl` tokens on an idle engine; never below 1 µs.
    pub fn ttft(&self, isl: f64) -> f64 {
        self.ttft.eval(isl).max(1e-6)
    }

    /// Prefill throughput (tokens/s/GPU) at `isl`; never below 1 token/s.
    pub fn thpt_per_gpu(&self, isl: f64) -> f64 {
        self.thpt_per_gpu.eval(isl).max(1.0)
    }

    /// Engine time (s) one request of `isl` tokens takes from a saturated engine, whose
    /// passes are full `max_batched_tokens` batches (chunked prefill packs prompts into
    /// them): `isl / saturated_rate()`, and never more than the request alone.
    pub fn batched_service(&self, isl: f64) -> f64 {
        (isl / self.saturated_rate()).min(self.ttft(isl))
    }

    /// Time (s) to prefill `tokens` new tokens split into chunks of `max_batched_tokens`, as
    /// the load-based rules estimate it (`(n−1)·f(MBT) + f(rest)`).
    pub fn chunked_time(&self, tokens: f64) -> f64 {
        if tokens <= 0.0 {
            return 0.0;
        }
        let mbt = f64::from(self.max_batched_tokens);
        let full = (tokens / mbt).floor();
        let rest = tokens - full * mbt;
        let rest_time = if rest > 0.0 { self.ttft(rest) } else { 0.0 };
        full * self.ttft(mbt) + rest_time
    }
}

/// Decode engine profile: inter-token latency (s) and throughput (tokens/s/GPU) on a grid of
/// KV usage (fraction of `max_kv_tokens`, x axis) by context length (tokens, y axis).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DecodeProfile {
    /// ITL in seconds over (kv usage, context).
    pub itl: Grid2d,
    /// KV capacity of one engine in tokens.
    pub max_kv_tokens: f64,
    /// Most sequences one engine runs at once.
    pub max_num_seqs: u32,
    /// GPUs one decode engine uses.
    pub gpus_per_engine: u32,
}

impl DecodeProfile {
    /// Builds a profile from an ITL grid. Throughput is not stored but derived where it is
    /// asked for ([`DecodeProfile::thpt_per_gpu`]).
    pub fn from_itl_grid(
        itl: Grid2d,
        max_kv_tokens: f64,
        max_num_seqs: u32,
        gpus_per_engine: u32,
    ) -> Result<Self, ProfileError> {
        if max_kv_tokens <= 0.0 || max_num_seqs == 0 || gpus_per_engine == 0 {
            return Err(ProfileError::Parameter(
                "max_kv_tokens, max_num_seqs and gpus_per_engine must be positive".into(),
            ));
        }
        Ok(Self {
            itl,
            max_kv_tokens,
            max_num_seqs,
            gpus_per_engine,
        })
    }

    /// Predicted ITL (s) at `kv_usage` (fraction) and `context` (tokens); never below 1 µs.
    pub fn itl(&self, kv_usage: f64, context: f64) -> f64 {
        self.itl.eval(kv_usage, context).max(1e-6)
    }

    /// Predicted throughput (tokens/s/GPU) at `kv_usage` and `context`, by Little's law at
    /// the exact point: the engine holds `min(u·max_kv/c, max_num_seqs)` sequences, each
    /// producing one token per ITL. (Interpolating a stored throughput grid instead
    /// overstated it between context rows, since throughput goes as 1/context: +12% at
    /// context 3,075 between the 2,048 and 4,096 rows.)
    pub fn thpt_per_gpu(&self, kv_usage: f64, context: f64) -> f64 {
        let seqs = (kv_usage.max(0.0) * self.max_kv_tokens / context.max(1.0))
            .min(f64::from(self.max_num_seqs));
        seqs / self.itl(kv_usage, context) / f64::from(self.gpus_per_engine.max(1))
    }

    /// Largest batch (sequences of `context` tokens) one engine runs within `itl_limit`, and
    /// its ITL: KV capacity and the sequence cap bound it; at least 1.
    pub fn max_batch_within(&self, itl_limit: f64, context: f64) -> (u32, f64) {
        let context = context.max(1.0);
        let cap = ((self.max_kv_tokens / context).floor() as u32)
            .min(self.max_num_seqs)
            .max(1);
        let itl_at = |b: u32| self.itl(f64::from(b) * context / self.max_kv_tokens, context);
        // ITL grows with the batch: bisect for the largest batch within the limit.
        let (mut lo, mut hi) = (1u32, cap);
        if itl_at(1) > itl_limit {
            return (1, itl_at(1));
        }
        while lo < hi {
            let mid = lo + (hi - lo).div_ceil(2);
            if itl_at(mid) <= itl_limit {
                lo = mid;
            } else {
                hi = mid - 1;
            }
        }
        (lo, itl_at(lo))
    }

    /// Largest KV usage on the profiled range.
    pub fn max_kv_usage(&self) -> f64 {
        *self.itl.xs().last().expect("grid axes are non-empty")
    }
}

/// A prefill and a decode profile for one model on one engine configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PerfProfile {
    /// Prefill side.
    pub prefill: PrefillProfile,
    /// Decode side.
    pub decode: DecodeProfile,
}

impl PerfProfile {
    /// Serialises to pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("profiles always serialise")
    }

    /// Parses the JSON written by [`PerfProfile::to_json`].
    pub fn from_json(text: &str) -> Result<Self, ProfileError> {
        Ok(serde_json::from_str(text)?)
    }

    /// The profile of the simulator's mock engine, measured by `planner-eval profile` and
    /// kept as `planner/eval/profile.json` (what the disagg frontend plans with).
    pub fn mock_engine() -> Result<Self, ProfileError> {
        Self::from_json(include_str!("../eval/profile.json"))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A profile sampled from the mock engine's polynomial model (prefill quadratic in ISL,
    /// decode ITL concave in KV usage, independent of context), used across the crate's tests.
    pub(crate) fn polynomial_like_profile() -> PerfProfile {
        let model = engine_timing::Polynomial::default();
        // Up to the longest prompt the tests serve: tables clamp beyond their last point.
        let prefill_points: Vec<(f64, f64)> = [
            128.0, 512.0, 1024.0, 2048.0, 4096.0, 8192.0, 12_288.0, 16_384.0,
        ]
        .iter()
        .map(|&x| (x, model.prefill_pass_s(x)))
        .collect();
        let prefill = PrefillProfile::from_ttft_points(&prefill_points, 1, 8192).unwrap();
        let usages: Vec<f64> = (0..=10).map(|i| f64::from(i) / 10.0).collect();
        let contexts = vec![512.0, 2048.0, 8192.0];
        let itl_rows = contexts
            .iter()
            .map(|_| {
                usages
                    .iter()
                    .map(|&u| model.decode_step_s(1, u * model.kv_capacity_tokens as f64))
                    .collect()
            })
            .collect();
        let itl = Grid2d::new(usages, contexts, itl_rows).unwrap();
        let decode = DecodeProfile::from_itl_grid(itl, 16384.0 * 64.0, 256, 1).unwrap();
        PerfProfile { prefill, decode }
    }

    #[test]
    fn prefill_throughput_is_derived_from_ttft() {
        let p = polynomial_like_profile().prefill;
        let t = p.ttft(2048.0);
        assert!((p.thpt_per_gpu(2048.0) - 2048.0 / t).abs() < 1e-6);
        // Chunking: 10,000 tokens = one full 8,192 chunk plus 1,808.
        let expect = p.ttft(8192.0) + p.ttft(1808.0);
        assert!((p.chunked_time(10_000.0) - expect).abs() < 1e-12);
        assert_eq!(p.chunked_time(0.0), 0.0);
    }

    #[test]
    fn decode_throughput_respects_max_num_seqs() {
        let d = polynomial_like_profile().decode;
        // At full KV with 512-token contexts there would be 2,048 sequences; capped at 256.
        let itl = d.itl(1.0, 512.0);
        assert!((d.thpt_per_gpu(1.0, 512.0) - 256.0 / itl).abs() < 1e-6);
        // At 8,192-token contexts, 128 sequences fit.
        let itl = d.itl(1.0, 8192.0);
        assert!((d.thpt_per_gpu(1.0, 8192.0) - 128.0 / itl).abs() < 1e-6);
        assert_eq!(d.thpt_per_gpu(0.0, 2048.0), 0.0);
    }

    #[test]
    fn decode_throughput_is_exact_between_context_rows() {
        let d = polynomial_like_profile().decode;
        // Context 3,075 lies between the 2,048 and 8,192 rows: throughput is Little's law
        // at the point itself, not an interpolation of the rows' throughputs.
        let (u, ctx) = (0.15, 3075.0);
        let expect = u * d.max_kv_tokens / ctx / d.itl(u, ctx);
        assert!((d.thpt_per_gpu(u, ctx) - expect).abs() < 1e-9);
        let w = (ctx - 2048.0) / (8192.0 - 2048.0);
        let row_mix = (1.0 - w) * d.thpt_per_gpu(u, 2048.0) + w * d.thpt_per_gpu(u, 8192.0);
        assert!(row_mix > 1.05 * expect, "{row_mix} vs {expect}");
    }

    #[test]
    fn largest_batch_within_the_itl_limit() {
        let d = polynomial_like_profile().decode;
        let ctx = 3075.0;
        let (b, itl) = d.max_batch_within(0.03, ctx);
        assert!(itl <= 0.03);
        let next = d.itl(f64::from(b + 1) * ctx / d.max_kv_tokens, ctx);
        assert!(next > 0.03, "batch {} still meets the limit", b + 1);
        // An unreachable limit still answers one sequence; KV capacity caps the batch.
        assert_eq!(d.max_batch_within(0.001, ctx).0, 1);
        let (cap, _) = d.max_batch_within(10.0, 8192.0);
        assert_eq!(cap, 128);
    }

    #[test]
    fn measured_saturated_rate_drives_batched_service() {
        let p = polynomial_like_profile().prefill;
        let estimated = p.saturated_rate();
        assert!((estimated - 8192.0 / p.ttft(8192.0)).abs() < 1e-9);
        let measured = p
            .clone()
            .with_saturated_tokens_per_s(2.0 * estimated)
            .unwrap();
        assert!((measured.batched_service(3000.0) - 3000.0 / (2.0 * estimated)).abs() < 1e-12);
        assert!(p.with_saturated_tokens_per_s(0.0).is_err());
    }

    #[test]
    fn the_mock_engine_profile_parses_and_is_positive() {
        let p = PerfProfile::mock_engine().unwrap();
        assert!(p.prefill.ttft(1024.0) > 0.0);
        assert!(p.decode.itl(0.5, 2048.0) > 0.0);
    }

    #[test]
    fn json_round_trip() {
        let p = polynomial_like_profile();
        let back = PerfProfile::from_json(&p.to_json()).unwrap();
        assert_eq!(p, back);
        assert!(PerfProfile::from_json("{}").is_err());
    }
}
