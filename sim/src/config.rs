//! Engine and cluster configuration. Defaults are Dynamo mocker's.

use crate::perf::PerfModel;
use router::TransferCost;
use serde::{Deserialize, Serialize};

/// Which request to evict from the running set under memory pressure.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PreemptionMode {
    /// Preempt the most recently admitted request (vLLM and Dynamo default).
    #[default]
    Lifo,
    /// Preempt the oldest running request.
    Fifo,
}

/// One engine (one replica): cache geometry, scheduler limits, timing.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EngineConfig {
    /// Tokens per KV block.
    pub block_size: usize,
    /// KV blocks on the device.
    pub num_gpu_blocks: usize,
    /// Most sequences running at once.
    pub max_num_seqs: usize,
    /// Token budget of one scheduler pass.
    pub max_num_batched_tokens: usize,
    /// Reuse cached prompt blocks across requests.
    pub enable_prefix_caching: bool,
    /// Split long prompts over several passes.
    pub enable_chunked_prefill: bool,
    /// Victim choice under memory pressure.
    pub preemption_mode: PreemptionMode,
    /// Divides every predicted step time (a faster GPU).
    pub speedup_ratio: f64,
    /// Additionally divides decode step time.
    pub decode_speedup_ratio: f64,
    /// Step-time model.
    pub perf_model: PerfModel,
    /// Host-memory KV tier in blocks (0 = none): receives the blocks the device evicts
    /// and onboards them on a prefix hit.
    #[serde(default)]
    pub host_blocks: usize,
    /// Cross-worker prefix fetch: at routing time the chosen worker pulls the longest
    /// cached prefix of the prompt any other worker of its pool holds (device or host
    /// tier), instead of recomputing it.
    #[serde(default)]
    pub fetch_from_peers: bool,
    /// Price of onboarding host-tier blocks and of pulling blocks from peers, charged to
    /// the pass that admits the sequence (Llama-3-70B KV size by default).
    #[serde(skip)]
    pub transfer: TransferCost,
}

impl Default for EngineConfig {
    /// Dynamo mocker defaults: vLLM engine, block 64, 16,384 blocks,
    /// 256 sequences, 8,192 batched tokens, polynomial timing.
    fn default() -> Self {
        EngineConfig {
            block_size: 64,
            num_gpu_blocks: 16_384,
            max_num_seqs: 256,
            max_num_batched_tokens: 8_192,
            enable_prefix_caching: true,
            enable_chunked_prefill: true,
            preemption_mode: PreemptionMode::Lifo,
            speedup_ratio: 1.0,
            decode_speedup_ratio: 1.0,
            perf_model: PerfModel::Polynomial,
            host_blocks: 0,
            fetch_from_peers: false,
            transfer: TransferCost::default(),
        }
    }
}

/// Aggregated serving or disaggregated prefill/decode pools.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum ServingMode {
    /// Every worker prefills and decodes its own requests.
    Aggregated {
        /// Workers at start.
        workers: usize,
    },
    /// Prefill pool hands the KV cache over to a decode pool.
    Disaggregated {
        /// Prefill workers at start.
        prefill_workers: usize,
        /// Decode workers at start.
        decode_workers: usize,
        /// KV bytes per token (layers · 2 · kv_heads · head_dim · dtype bytes).
        kv_bytes_per_token: f64,
        /// Link bandwidth in GB/s (1e9 bytes/s) between the pools.
        link_gbps: f64,
    },
}

/// Latency targets used for goodput.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub struct Sla {
    /// Time to first token target, ms.
    pub ttft_ms: f64,
    /// Mean inter-token latency target, ms.
    pub itl_ms: f64,
}

impl Default for Sla {
    /// TTFT ≤ 2 s and ITL ≤ 50 ms (the reference's example SLA).
    fn default() -> Self {
        Sla {
            ttft_ms: 2_000.0,
            itl_ms: 50.0,
        }
    }
}

/// Everything a [`crate::Simulation`] needs besides the workload and policies.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SimConfig {
    /// Engine used by every aggregated / prefill worker.
    pub engine: EngineConfig,
    /// Engine used by decode workers (disaggregated mode); defaults to `engine`.
    pub decode_engine: Option<EngineConfig>,
    /// Pools and their initial sizes.
    pub mode: ServingMode,
    /// Delay between asking for a replica and it accepting requests, ms.
    pub startup_delay_ms: f64,
    /// Seed for every random choice (routing, synthetic load).
    pub seed: u64,
    /// Targets for goodput.
    pub sla: Sla,
    /// Publish KV events to the routing policy when it asks for them.
    pub emit_kv_events: bool,
}

impl Default for SimConfig {
    /// 8 aggregated workers with Dynamo's mocker engine, seed 0.
    fn default() -> Self {
        SimConfig {
            engine: EngineConfig::default(),
            decode_engine: None,
            mode: ServingMode::Aggregated { workers: 8 },
            startup_delay_ms: 30_000.0,
            seed: 0,
            sla: Sla::default(),
            emit_kv_events: true,
        }
    }
}
