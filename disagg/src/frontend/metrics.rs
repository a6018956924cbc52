//! What the run measured, and the final report (JSON and text).

use crate::proto::TierCounts;
use serde::Serialize;
use std::collections::HashMap;

/// Counters and samples gathered while the run goes.
#[derive(Debug, Default)]
pub struct Metrics {
    /// (arrival time s, TTFT s) per request that got its first token.
    pub ttft: Vec<(f64, f64)>,
    /// Every inter-token gap, s.
    pub itl: Vec<f64>,
    /// KV bytes moved between workers.
    pub kv_bytes: u64,
    /// Seconds spent in transfers (sum over transfers).
    pub transfer_s: f64,
    /// Transfers (one per remotely prefilled request attempt).
    pub transfers: u64,
    /// Blocks verified by decode workers.
    pub verified: u64,
    /// Blocks that failed verification.
    pub corrupt: u64,
    /// Blocks found in the decode worker's own cache (not transferred).
    pub decode_cached_blocks: u64,
    /// Prompt tokens of requests prefilled remotely, and how many were prefix-cache hits.
    pub prefill_tokens: u64,
    /// See `prefill_tokens`.
    pub prefill_cached_tokens: u64,
    /// Blocks written by prefill workers (cache misses).
    pub computed_blocks: u64,
    /// Requests prefilled on their decode worker.
    pub local_prefills: u64,
    /// Requests re-routed after a failure.
    pub retries: u64,
    /// Latest cumulative counters per worker: (freed by notification, freed by timeout).
    pub freed: HashMap<u64, (u64, u64)>,
    /// KV event batches applied and lost.
    pub kv_batches: u64,
    /// See `kv_batches`.
    pub kv_batches_lost: u64,
    /// (time s, prefill ready, decode ready) samples.
    pub replicas: Vec<(f64, u32, u32)>,
    /// One entry per planner decision.
    pub plan: Vec<PlanPoint>,
    /// Worker processes that died (not stopped by the planner).
    pub worker_deaths: u64,
    /// KV slots still referenced by live workers after the run settled.
    pub slots_held_at_end: u64,
    /// Workers stopped after draining (scale-down), and after a drain timeout.
    pub drained: u64,
    /// See `drained`.
    pub drain_timeouts: u64,
    /// Latest cumulative block-source and fetch counters per worker.
    pub tiers: HashMap<u64, TierCounts>,
    /// (time s, the counters summed over workers) samples, for the plot.
    pub tier_samples: Vec<(f64, TierCounts)>,
}

impl Metrics {
    /// The block-source and fetch counters summed over every worker seen.
    pub fn tier_totals(&self) -> TierCounts {
        let mut t = TierCounts::default();
        for c in self.tiers.values() {
            t.from_gpu += c.from_gpu;
            t.from_host += c.from_host;
            t.from_peer += c.from_peer;
            t.recomputed += c.recomputed;
            t.offloaded += c.offloaded;
            t.verified += c.verified;
            t.host_corrupt += c.host_corrupt;
            t.peer_evicted += c.peer_evicted;
            t.peer_rejected += c.peer_rejected;
            t.fetches += c.fetches;
            t.fetch_fallbacks += c.fetch_fallbacks;
            t.timed_from_host += c.timed_from_host;
            t.timed_from_peer += c.timed_from_peer;
        }
        t
    }

    /// Records the summed counters at `t` (seconds).
    pub fn sample_tiers(&mut self, t: f64) {
        let totals = self.tier_totals();
        self.tier_samples.push((t, totals));
    }
}

/// A planner decision beside what the load turned out to need.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct PlanPoint {
    /// Seconds since the start.
    pub t: f64,
    /// Arrival rate seen over the interval just ended, req/s.
    pub observed_rate: f64,
    /// Rate the planner planned for (forecast peak over its lead window), req/s.
    pub planned_rate: f64,
    /// Replicas asked for (prefill, decode).
    pub planned: (u32, u32),
    /// Replicas the sizing asks for at the observed rate, in hindsight (prefill, decode).
    pub needed: (u32, u32),
}

/// Percentile of unsorted samples (nearest rank), `None` when empty.
pub fn percentile(samples: &[f64], p: f64) -> Option<f64> {
    if samples.is_empty() {
        return None;
    }
    let mut v = samples.to_vec();
    v.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
    Some(v[rank.clamp(1, v.len()) - 1])
}

/// The end-of-run report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// pull or push.
    pub mode: String,
    /// The transfer library used by the workers.
    pub library: String,
    /// How workers found each other's metadata.
    pub discovery: String,
    /// Planner on or off.
    pub planner: bool,
    /// Requests in the workload.
    pub requests: usize,
    /// Requests that finished.
    pub served: usize,
    /// Requests that failed, with their errors.
    pub failed: usize,
    /// Failure reasons and counts.
    pub failures: Vec<(String, usize)>,
    /// Requests neither served nor failed (must be 0).
    pub unaccounted: usize,
    /// Wall-clock seconds of the run.
    pub duration_s: f64,
    /// TTFT percentiles, ms.
    pub ttft_p50_ms: Option<f64>,
    /// See `ttft_p50_ms`.
    pub ttft_p99_ms: Option<f64>,
    /// Inter-token latency percentiles, ms.
    pub itl_p50_ms: Option<f64>,
    /// See `itl_p50_ms`.
    pub itl_p99_ms: Option<f64>,
    /// KV bytes moved between workers.
    pub kv_bytes_moved: u64,
    /// Transfers.
    pub transfers: u64,
    /// KV bytes moved over the time spent transferring, in GB/s (10⁹ bytes per second, not
    /// gigabits).
    pub transfer_gb_per_s: Option<f64>,
    /// Prefill prefix-cache hit rate (cached prompt tokens / prompt tokens).
    pub prefix_hit_rate: Option<f64>,
    /// Blocks verified by decode workers.
    pub blocks_verified: u64,
    /// Blocks that failed verification (received by decode workers, or onboarded from a
    /// host tier).
    pub blocks_corrupt: u64,
    /// Prompt blocks workers found in their own GPU pool.
    pub blocks_from_gpu: u64,
    /// Prompt blocks onboarded from a host tier (verified).
    pub blocks_from_host: u64,
    /// Prompt blocks fetched from a peer prefill worker (verified).
    pub blocks_from_peer: u64,
    /// Prompt blocks computed (prefill workers and local prefills).
    pub blocks_recomputed: u64,
    /// Blocks offloaded from GPU pools to host tiers on eviction.
    pub blocks_offloaded: u64,
    /// Onboarded and fetched blocks verified against their contents.
    pub tier_blocks_verified: u64,
    /// Blocks a fetch wanted that the holder no longer had (evicted meanwhile): recomputed.
    pub peer_blocks_evicted: u64,
    /// Fetched blocks whose bytes did not match (stale slot at the holder): rejected and
    /// recomputed, never used.
    pub peer_blocks_rejected: u64,
    /// Prefix fetches started.
    pub fetches: u64,
    /// Fetches that fell back to recomputing (holder gone, timeout, failed transfer).
    pub fetch_fallbacks: u64,
    /// Prompt blocks the engines' step timing took as onboarded from a host tier rather
    /// than computed.
    pub engine_blocks_from_host: u64,
    /// Prompt blocks the engines' step timing took as fetched from a peer rather than
    /// computed.
    pub engine_blocks_from_peer: u64,
    /// Blocks decode workers already cached.
    pub decode_cached_blocks: u64,
    /// Requests prefilled locally on the decode worker.
    pub local_prefills: u64,
    /// Request re-routes after failures.
    pub retries: u64,
    /// Pinned prefill blocks freed by the decode side's notification.
    pub freed_by_notification: u64,
    /// Pinned prefill blocks freed by timeout.
    pub freed_by_timeout: u64,
    /// Worker processes that died during the run.
    pub worker_deaths: u64,
    /// KV slots live workers still held once the run settled (must be 0: every pinned
    /// prefill block was freed by notification or timeout).
    pub slots_held_at_end: u64,
    /// Workers the planner stopped once drained (idle).
    pub workers_drained: u64,
    /// Workers stopped because draining took longer than the drain timeout.
    pub workers_drain_timeout: u64,
    /// KV-event batches applied by the router, and lost ones.
    pub kv_event_batches: u64,
    /// See `kv_event_batches`.
    pub kv_event_batches_lost: u64,
    /// Replica counts over time: (s, prefill, decode).
    pub replicas: Vec<(f64, u32, u32)>,
    /// Planned vs needed replicas at each planner decision.
    pub plan: Vec<PlanPoint>,
    /// Every request of the workload, in arrival order.
    pub per_request: Vec<RequestRecord>,
}

/// What the report keeps of one request.
#[derive(Debug, Clone, Serialize)]
pub struct RequestRecord {
    /// Arrival, seconds from the start.
    pub arrival_s: f64,
    /// Prompt tokens.
    pub input_tokens: usize,
    /// Tokens streamed back.
    pub output_tokens: usize,
    /// `served`, `failed` or `unfinished`.
    pub outcome: &'static str,
    /// Time to first token, ms.
    pub ttft_ms: Option<f64>,
    /// Arrival to last token of a served request, ms.
    pub e2e_ms: Option<f64>,
    /// Routing attempts (more than one after a failure was retried).
    pub attempts: u32,
}

impl Report {
    /// Fills the summary figures from `m`.
    #[allow(clippy::too_many_arguments)]
    pub fn build(
        m: &Metrics,
        mode: &str,
        library: &str,
        discovery: &str,
        planner: bool,
        requests: usize,
        served: usize,
        failures: Vec<(String, usize)>,
        duration_s: f64,
        per_request: Vec<RequestRecord>,
    ) -> Report {
        let failed = failures.iter().map(|(_, n)| n).sum::<usize>();
        let tiers = m.tier_totals();
        let ttfts: Vec<f64> = m.ttft.iter().map(|&(_, t)| t).collect();
        let ms = |v: Option<f64>| v.map(|s| s * 1000.0);
        Report {
            mode: mode.into(),
            library: library.into(),
            discovery: discovery.into(),
            planner,
            requests,
            served,
            failed,
            failures,
            unaccounted: requests.saturating_sub(served + failed),
            duration_s,
            ttft_p50_ms: ms(percentile(&ttfts, 50.0)),
            ttft_p99_ms: ms(percentile(&ttfts, 99.0)),
            itl_p50_ms: ms(percentile(&m.itl, 50.0)),
            itl_p99_ms: ms(percentile(&m.itl, 99.0)),
            kv_bytes_moved: m.kv_bytes,
            transfers: m.transfers,
            transfer_gb_per_s: (m.transfer_s > 0.0).then(|| m.kv_bytes as f64 / m.transfer_s / 1e9),
            prefix_hit_rate: (m.prefill_tokens > 0)
                .then(|| m.prefill_cached_tokens as f64 / m.prefill_tokens as f64),
            blocks_verified: m.verified,
            blocks_corrupt: m.corrupt + tiers.host_corrupt,
            blocks_from_gpu: tiers.from_gpu,
            blocks_from_host: tiers.from_host,
            blocks_from_peer: tiers.from_peer,
            blocks_recomputed: tiers.recomputed,
            blocks_offloaded: tiers.offloaded,
            tier_blocks_verified: tiers.verified,
            peer_blocks_evicted: tiers.peer_evicted,
            peer_blocks_rejected: tiers.peer_rejected,
            fetches: tiers.fetches,
            fetch_fallbacks: tiers.fetch_fallbacks,
            engine_blocks_from_host: tiers.timed_from_host,
            engine_blocks_from_peer: tiers.timed_from_peer,
            decode_cached_blocks: m.decode_cached_blocks,
            local_prefills: m.local_prefills,
            retries: m.retries,
            freed_by_notification: m.freed.values().map(|f| f.0).sum(),
            freed_by_timeout: m.freed.values().map(|f| f.1).sum(),
            worker_deaths: m.worker_deaths,
            slots_held_at_end: m.slots_held_at_end,
            workers_drained: m.drained,
            workers_drain_timeout: m.drain_timeouts,
            kv_event_batches: m.kv_batches,
            kv_event_batches_lost: m.kv_batches_lost,
            replicas: m.replicas.clone(),
            plan: m.plan.clone(),
            per_request,
        }
    }

    /// The human-readable summary.
    pub fn text(&self) -> String {
        let f = |v: Option<f64>, unit: &str| v.map_or("n/a".into(), |x| format!("{x:.1} {unit}"));
        let mut s = String::new();
        s += &format!(
            "mode {} · library {} · discovery {} · planner {}\n",
            self.mode,
            self.library,
            self.discovery,
            if self.planner { "on" } else { "off" }
        );
        s += &format!(
            "requests served     {} of {} ({} failed, {} unaccounted) in {:.1} s\n",
            self.served, self.requests, self.failed, self.unaccounted, self.duration_s
        );
        for (why, n) in &self.failures {
            s += &format!("  failed x{n}: {why}\n");
        }
        s += &format!(
            "TTFT p50/p99        {} / {}\n",
            f(self.ttft_p50_ms, "ms"),
            f(self.ttft_p99_ms, "ms")
        );
        s += &format!(
            "ITL  p50/p99        {} / {}\n",
            f(self.itl_p50_ms, "ms"),
            f(self.itl_p99_ms, "ms")
        );
        s += &format!(
            "KV moved            {:.1} MiB in {} transfers, {}\n",
            self.kv_bytes_moved as f64 / (1 << 20) as f64,
            self.transfers,
            f(self.transfer_gb_per_s, "GB/s")
        );
        s += &format!(
            "prefix hit rate     {}\n",
            self.prefix_hit_rate
                .map_or("n/a".into(), |h| format!("{:.1}%", h * 100.0))
        );
        s += &format!(
            "local prefills      {} · decode-cached blocks {} · retries {} · worker deaths {}\n",
            self.local_prefills, self.decode_cached_blocks, self.retries, self.worker_deaths
        );
        s += &format!(
            "workers drained and stopped {} · drain timeouts {}\n",
            self.workers_drained, self.workers_drain_timeout
        );
        s += &format!(
            "pinned prefill blocks freed by notification {} · by timeout {} · slots held at end {}\n",
            self.freed_by_notification, self.freed_by_timeout, self.slots_held_at_end
        );
        s += &format!(
            "KV events           {} batches applied, {} lost\n",
            self.kv_event_batches, self.kv_event_batches_lost
        );
        s += &format!(
            "prompt blocks from  GPU {} · host {} · peer {} · recomputed {} (offloaded to host {})\n",
            self.blocks_from_gpu,
            self.blocks_from_host,
            self.blocks_from_peer,
            self.blocks_recomputed,
            self.blocks_offloaded
        );
        s += &format!(
            "engine timing       prompt blocks loaded, not computed: from host {} · from peer {}\n",
            self.engine_blocks_from_host, self.engine_blocks_from_peer
        );
        s += &format!(
            "prefix fetches      {} · fell back {} · stale blocks: evicted at the holder {}, \
             bytes rejected {} · tier blocks verified {}\n",
            self.fetches,
            self.fetch_fallbacks,
            self.peer_blocks_evicted,
            self.peer_blocks_rejected,
            self.tier_blocks_verified
        );
        s += &format!(
            "blocks verified     {} · {} corrupt\n",
            self.blocks_verified, self.blocks_corrupt
        );
        if !self.plan.is_empty() {
            s +=
                "planned vs needed   (t s: planned P+D for req/s | needed P+D at the req/s seen)\n";
            for p in &self.plan {
                s += &format!(
                    "  {:>5.0}: {}P+{}D for {:.1} | {}P+{}D at {:.1}\n",
                    p.t,
                    p.planned.0,
                    p.planned.1,
                    p.planned_rate,
                    p.needed.0,
                    p.needed.1,
                    p.observed_rate
                );
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_and_unaccounted() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), Some(50.0));
        assert_eq!(percentile(&v, 99.0), Some(99.0));
        assert_eq!(percentile(&[], 50.0), None);
        let r = Report::build(
            &Metrics::default(),
            "pull",
            "x",
            "y",
            false,
            5,
            3,
            vec![("boom".into(), 1)],
            1.0,
            Vec::new(),
        );
        assert_eq!((r.failed, r.unaccounted), (1, 1));
        assert!(r.text().contains("0 corrupt"));
    }
}
