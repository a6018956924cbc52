//! The frontend's Prometheus series, in Dynamo's names where Dynamo has them (its frontend
//! `dynamo_frontend_*`, router `dynamo_router_*` / `dynamo_component_*` and planner
//! `planner:*` series), served while the run goes; `disagg_*` names are ours. The endpoint
//! binds port 0 on the run's host (many runs on one host never fight over a port) and the
//! run prints it; `DISAGG_METRICS=off` turns the frontend's and the workers' endpoints off.
//!
//! Every endpoint of the run (the frontend's and each worker's NIXL one, whatever library the
//! worker calls: see `worker::exporter`) is also listed in `metrics_targets.json` in the
//! output folder, in Prometheus's `file_sd_configs` format, so a Prometheus pointed at that
//! file follows workers as the planner starts and stops them (a worker that drains or dies
//! leaves the file).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use serde::Serialize;

/// The variable that turns the run's metric endpoints off (`off`, `0`, `no`, `false`).
pub const METRICS_VAR: &str = "DISAGG_METRICS";
/// Seconds the run keeps its endpoints (and idle workers) up before the first request and
/// after the last, so a scraper finds them in time and sees the final values (default 0).
pub const LINGER_VAR: &str = "DISAGG_METRICS_LINGER_S";

/// Whether the run exposes metrics (on unless [`METRICS_VAR`] says off).
pub fn enabled() -> bool {
    !std::env::var(METRICS_VAR).is_ok_and(|v| {
        matches!(
            v.trim().to_ascii_lowercase().as_str(),
            "off" | "0" | "no" | "false"
        )
    })
}

/// Seconds to keep the endpoints up after the run ([`LINGER_VAR`]); a bad value is an error
/// naming the variable.
pub fn linger_s() -> Result<f64, super::RunError> {
    match std::env::var(LINGER_VAR) {
        Ok(v) if !v.trim().is_empty() => v
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|s| s.is_finite() && (0.0..=3600.0).contains(s))
            .ok_or(super::RunError::Linger { value: v }),
        _ => Ok(0.0),
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabel {
    status: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PrefillLabel {
    prefill: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WorkerLabels {
    worker_id: String,
    worker_type: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ChangeLabel {
    change: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SloLabel {
    slo: &'static str,
}

/// Handles on every series the frontend updates.
pub struct FrontendProm {
    requests: Family<StatusLabel, Counter>,
    inflight: Gauge,
    queued: Gauge,
    ttft: Histogram,
    itl: Histogram,
    cached_tokens: Histogram,
    prompt_tokens_total: Counter,
    cached_tokens_total: Counter,
    kv_bytes: Counter,
    decisions: Family<PrefillLabel, Counter>,
    overhead_ms: Histogram,
    kv_events: Family<StatusLabel, Counter>,
    active_blocks: Family<WorkerLabels, Gauge>,
    prefill_tokens: Family<WorkerLabels, Gauge>,
    total_blocks: Family<WorkerLabels, Gauge>,
    num_p: Gauge,
    num_d: Gauge,
    predicted_num_p: Gauge,
    predicted_num_d: Gauge,
    observed_rate: Gauge<f64, std::sync::atomic::AtomicU64>,
    predicted_rate: Gauge<f64, std::sync::atomic::AtomicU64>,
    plan_decisions: Family<ChangeLabel, Counter>,
    sla_met: Family<SloLabel, Counter>,
    sla_seen: Family<SloLabel, Counter>,
    sla_attainment: Family<SloLabel, Gauge<f64, std::sync::atomic::AtomicU64>>,
}

impl FrontendProm {
    /// The series, registered in a new registry.
    fn new(registry: &mut Registry) -> FrontendProm {
        let secs = |start, n| Histogram::new(exponential_buckets(start, 2.0, n));
        let p = FrontendProm {
            requests: Family::default(),
            inflight: Gauge::default(),
            queued: Gauge::default(),
            ttft: secs(0.001, 16),
            itl: secs(0.000_25, 16),
            cached_tokens: Histogram::new(exponential_buckets(16.0, 2.0, 12)),
            prompt_tokens_total: Counter::default(),
            cached_tokens_total: Counter::default(),
            kv_bytes: Counter::default(),
            decisions: Family::default(),
            overhead_ms: Histogram::new(exponential_buckets(0.001, 2.0, 16)),
            kv_events: Family::default(),
            active_blocks: Family::default(),
            prefill_tokens: Family::default(),
            total_blocks: Family::default(),
            num_p: Gauge::default(),
            num_d: Gauge::default(),
            predicted_num_p: Gauge::default(),
            predicted_num_d: Gauge::default(),
            observed_rate: Gauge::default(),
            predicted_rate: Gauge::default(),
            plan_decisions: Family::default(),
            sla_met: Family::default(),
            sla_seen: Family::default(),
            sla_attainment: Family::default(),
        };
        let r = registry;
        r.register(
            "dynamo_frontend_requests",
            "Requests ended, by status (success or error)",
            p.requests.clone(),
        );
        r.register(
            "dynamo_frontend_inflight_requests",
            "Requests routed to workers and not yet ended",
            p.inflight.clone(),
        );
        r.register(
            "dynamo_frontend_queued_requests",
            "Requests arrived and waiting for a worker",
            p.queued.clone(),
        );
        r.register(
            "dynamo_frontend_time_to_first_token_seconds",
            "Time from arrival to the first token",
            p.ttft.clone(),
        );
        r.register(
            "dynamo_frontend_inter_token_latency_seconds",
            "Gap between consecutive tokens of a request",
            p.itl.clone(),
        );
        r.register(
            "dynamo_frontend_cached_tokens",
            "Prompt tokens found in the prefix cache, per prefill",
            p.cached_tokens.clone(),
        );
        r.register(
            "disagg_prefill_prompt_tokens",
            "Prompt tokens of prefills (the hit rate's denominator)",
            p.prompt_tokens_total.clone(),
        );
        r.register(
            "disagg_prefill_cached_tokens",
            "Prompt tokens of prefills found in the prefix cache (the hit rate's numerator)",
            p.cached_tokens_total.clone(),
        );
        r.register(
            "disagg_kv_transfer_bytes",
            "KV bytes the workers reported moved between them (the report's kv_bytes_moved)",
            p.kv_bytes.clone(),
        );
        r.register(
            "dynamo_component_router_requests",
            "Routing decisions, by where the prefill runs (remote worker or the decode worker)",
            p.decisions.clone(),
        );
        r.register(
            "dynamo_router_overhead_total_ms",
            "Time spent choosing workers for one request, in milliseconds",
            p.overhead_ms.clone(),
        );
        r.register(
            "dynamo_component_kv_cache_events_applied",
            "KV event batches applied to the router's index (ok) or found lost (lost)",
            p.kv_events.clone(),
        );
        r.register(
            "dynamo_frontend_worker_active_decode_blocks",
            "KV blocks in use on each worker (last load report)",
            p.active_blocks.clone(),
        );
        r.register(
            "dynamo_frontend_worker_active_prefill_tokens",
            "Prompt tokens queued on each worker (last load report)",
            p.prefill_tokens.clone(),
        );
        r.register(
            "dynamo_component_total_blocks",
            "KV blocks each worker's pool holds",
            p.total_blocks.clone(),
        );
        r.register(
            "planner:num_p_workers",
            "Prefill workers serving now",
            p.num_p.clone(),
        );
        r.register(
            "planner:num_d_workers",
            "Decode workers serving now",
            p.num_d.clone(),
        );
        r.register(
            "planner:predicted_num_p",
            "Prefill replicas the planner asked for at its last decision",
            p.predicted_num_p.clone(),
        );
        r.register(
            "planner:predicted_num_d",
            "Decode replicas the planner asked for at its last decision",
            p.predicted_num_d.clone(),
        );
        r.register(
            "planner:observed_request_rate",
            "Arrival rate over the planner's last interval, req/s",
            p.observed_rate.clone(),
        );
        r.register(
            "planner:predicted_request_rate",
            "Rate the planner planned for at its last decision (forecast peak), req/s",
            p.predicted_rate.clone(),
        );
        r.register(
            "planner:decisions",
            "Planner decisions, by change of the total replica count (up, down, hold)",
            p.plan_decisions.clone(),
        );
        r.register(
            "disagg_sla_met_requests",
            "Requests within the planner's SLO target, by SLO (ttft, itl)",
            p.sla_met.clone(),
        );
        r.register(
            "disagg_sla_requests",
            "Requests measured against the planner's SLO target, by SLO (ttft, itl)",
            p.sla_seen.clone(),
        );
        r.register(
            "disagg_sla_attainment",
            "Fraction of requests so far within the planner's SLO target, by SLO",
            p.sla_attainment.clone(),
        );
        p
    }

    /// A request ended.
    pub fn request_ended(&self, ok: bool) {
        let status = if ok { "success" } else { "error" };
        self.requests.get_or_create(&StatusLabel { status }).inc();
    }

    /// Requests routed and not ended, and requests waiting for a worker.
    pub fn set_load(&self, inflight: usize, queued: usize) {
        self.inflight.set(inflight as i64);
        self.queued.set(queued as i64);
    }

    /// A first token `ttft_s` after arrival; checked against the TTFT target `slo_s`.
    pub fn first_token(&self, ttft_s: f64, slo_s: f64) {
        self.ttft.observe(ttft_s);
        self.slo("ttft", ttft_s <= slo_s);
    }

    /// One inter-token gap.
    pub fn token_gap(&self, gap_s: f64) {
        self.itl.observe(gap_s);
    }

    /// A request finished with mean inter-token latency `itl_s`, against the target `slo_s`.
    pub fn finished_itl(&self, itl_s: f64, slo_s: f64) {
        self.slo("itl", itl_s <= slo_s);
    }

    fn slo(&self, slo: &'static str, met: bool) {
        let l = SloLabel { slo };
        let seen = self.sla_seen.get_or_create(&l);
        seen.inc();
        let met_count = self.sla_met.get_or_create(&l);
        if met {
            met_count.inc();
        }
        self.sla_attainment
            .get_or_create(&l)
            .set(met_count.get() as f64 / seen.get() as f64);
    }

    /// A prefill with `cached` of `prompt` tokens from the prefix cache.
    pub fn prefill(&self, cached: u64, prompt: u64) {
        self.cached_tokens.observe(cached as f64);
        self.cached_tokens_total.inc_by(cached);
        self.prompt_tokens_total.inc_by(prompt);
    }

    /// `bytes` of KV moved between workers.
    pub fn kv_moved(&self, bytes: u64) {
        self.kv_bytes.inc_by(bytes);
    }

    /// A routing decision that took `overhead_ms`; `local` when the decode worker prefills.
    pub fn routed(&self, local: bool, overhead_ms: f64) {
        let prefill = if local { "local" } else { "remote" };
        self.decisions
            .get_or_create(&PrefillLabel { prefill })
            .inc();
        self.overhead_ms.observe(overhead_ms);
    }

    /// A KV event batch applied, and `lost` batches found missing before it.
    pub fn kv_events(&self, lost: u64) {
        self.kv_events
            .get_or_create(&StatusLabel { status: "ok" })
            .inc();
        if lost > 0 {
            self.kv_events
                .get_or_create(&StatusLabel { status: "lost" })
                .inc_by(lost);
        }
    }

    /// A worker's latest load: blocks in use, queued prompt tokens, pool size.
    pub fn worker_load(&self, id: u64, prefill: bool, used: usize, queued: usize, total: usize) {
        let l = WorkerLabels {
            worker_id: id.to_string(),
            worker_type: if prefill { "prefill" } else { "decode" },
        };
        self.active_blocks.get_or_create(&l).set(used as i64);
        self.prefill_tokens.get_or_create(&l).set(queued as i64);
        self.total_blocks.get_or_create(&l).set(total as i64);
    }

    /// A worker left: its series go (bounded by the workers alive).
    pub fn worker_gone(&self, id: u64, prefill: bool) {
        let l = WorkerLabels {
            worker_id: id.to_string(),
            worker_type: if prefill { "prefill" } else { "decode" },
        };
        self.active_blocks.remove(&l);
        self.prefill_tokens.remove(&l);
        self.total_blocks.remove(&l);
    }

    /// Workers serving now.
    pub fn replicas(&self, prefill: u32, decode: u32) {
        self.num_p.set(i64::from(prefill));
        self.num_d.set(i64::from(decode));
    }

    /// A planner decision: rates observed and planned for, replicas before and asked for.
    pub fn planned(&self, observed: f64, planned: f64, before: (u32, u32), after: (u32, u32)) {
        self.observed_rate.set(observed);
        self.predicted_rate.set(planned);
        self.predicted_num_p.set(i64::from(after.0));
        self.predicted_num_d.set(i64::from(after.1));
        let change = match (after.0 + after.1).cmp(&(before.0 + before.1)) {
            std::cmp::Ordering::Greater => "up",
            std::cmp::Ordering::Less => "down",
            std::cmp::Ordering::Equal => "hold",
        };
        self.plan_decisions
            .get_or_create(&ChangeLabel { change })
            .inc();
    }
}

/// One entry of a Prometheus `file_sd_configs` file.
#[derive(Serialize)]
struct Target {
    targets: [String; 1],
    labels: TargetLabels,
}

#[derive(Serialize)]
struct TargetLabels {
    job: &'static str,
    role: String,
}

/// The run's endpoints: the frontend's series and the list of every endpoint.
pub struct Endpoints {
    /// The frontend's series.
    pub prom: Arc<FrontendProm>,
    /// The frontend endpoint's port.
    pub frontend_port: u16,
    host: IpAddr,
    targets_file: PathBuf,
    /// Every endpoint serving now, the frontend's first.
    targets: Vec<Listed>,
}

/// One endpoint in the targets file.
struct Listed {
    addr: String,
    role: String,
    /// The worker serving it (None: the frontend).
    worker: Option<u64>,
}

impl Endpoints {
    /// Serves the frontend's series on `host`, port 0, and writes the targets file into
    /// `out_dir`. `None` when [`enabled`] says off.
    pub fn start(
        host: &str,
        out_dir: &std::path::Path,
    ) -> Result<Option<Endpoints>, super::RunError> {
        if !enabled() {
            return Ok(None);
        }
        let ip: IpAddr = host.parse().unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
        let mut registry = Registry::default();
        let prom = Arc::new(FrontendProm::new(&mut registry));
        let registry = Arc::new(registry);
        let port = nixl_core::metrics::serve(SocketAddr::new(ip, 0), METRICS_VAR, move || {
            let mut out = String::new();
            prometheus_client::encoding::text::encode(&mut out, &registry)
                .map(|()| out)
                .map_err(|e| nixl_core::NixlError::new(nixl_core::Status::Unknown, e.to_string()))
        })
        .map_err(super::RunError::Metrics)?;
        let mut me = Endpoints {
            prom,
            frontend_port: port,
            host: ip,
            targets_file: out_dir.join("metrics_targets.json"),
            targets: Vec::new(),
        };
        me.list(port, "frontend".into(), None)?;
        Ok(Some(me))
    }

    /// The URL of an endpoint on the run's host.
    pub fn url(&self, port: u16) -> String {
        format!("http://{}/metrics", SocketAddr::new(self.host, port))
    }

    /// Lists worker `id`'s endpoint and rewrites the targets file.
    pub fn add_worker(&mut self, id: u64, port: u16, role: String) -> Result<(), super::RunError> {
        self.list(port, role, Some(id))
    }

    /// Takes worker `id`'s endpoint off the list (it drained or died: a scraper would only
    /// see it down) and rewrites the targets file; a worker not listed changes nothing.
    pub fn remove_worker(&mut self, id: u64) -> Result<(), super::RunError> {
        let before = self.targets.len();
        self.targets.retain(|t| t.worker != Some(id));
        if self.targets.len() == before {
            return Ok(());
        }
        self.write()
    }

    fn list(
        &mut self,
        port: u16,
        role: String,
        worker: Option<u64>,
    ) -> Result<(), super::RunError> {
        self.targets.push(Listed {
            addr: SocketAddr::new(self.host, port).to_string(),
            role,
            worker,
        });
        self.write()
    }

    fn write(&self) -> Result<(), super::RunError> {
        let list: Vec<Target> = self
            .targets
            .iter()
            .map(|t| Target {
                targets: [t.addr.clone()],
                labels: TargetLabels {
                    job: "disagg",
                    role: t.role.clone(),
                },
            })
            .collect();
        let json = serde_json::to_string_pretty(&list)?;
        // Written whole then renamed: Prometheus never reads half a file.
        let tmp = self.targets_file.with_extension("json.tmp");
        std::fs::write(&tmp, json)
            .and_then(|()| std::fs::rename(&tmp, &self.targets_file))
            .map_err(super::RunError::io(self.targets_file.display()))
    }

    /// The targets file.
    pub fn targets_file(&self) -> &std::path::Path {
        &self.targets_file
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attainment_and_decisions() {
        let mut r = Registry::default();
        let p = FrontendProm::new(&mut r);
        p.first_token(0.1, 0.3);
        p.first_token(0.5, 0.3);
        p.planned(2.0, 3.0, (1, 1), (2, 1));
        p.kv_events(2);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &r).unwrap();
        assert!(
            text.contains("disagg_sla_attainment{slo=\"ttft\"} 0.5"),
            "{text}"
        );
        assert!(text.contains("planner:decisions_total{change=\"up\"} 1"));
        assert!(text.contains("dynamo_component_kv_cache_events_applied_total{status=\"lost\"} 2"));
        assert!(text.contains("dynamo_frontend_time_to_first_token_seconds_count 2"));
    }

    #[test]
    fn a_gone_worker_leaves_the_targets_file() {
        let dir = std::env::temp_dir().join(format!("disagg-targets-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut e = Endpoints::start("127.0.0.1", &dir)
            .unwrap()
            .expect("metrics on");
        e.add_worker(7, 40007, "prefill worker 7".into()).unwrap();
        e.add_worker(8, 40008, "decode worker 8".into()).unwrap();
        let file = e.targets_file().to_owned();
        let listed = || -> Vec<String> {
            let text = std::fs::read_to_string(&file).unwrap();
            let v: serde_json::Value = serde_json::from_str(&text).unwrap();
            v.as_array()
                .unwrap()
                .iter()
                .map(|t| t["labels"]["role"].as_str().unwrap().to_owned())
                .collect()
        };
        assert_eq!(
            listed(),
            ["frontend", "prefill worker 7", "decode worker 8"]
        );
        e.remove_worker(7).unwrap();
        assert_eq!(listed(), ["frontend", "decode worker 8"]);
        e.remove_worker(7).unwrap();
        e.remove_worker(99).unwrap();
        assert_eq!(listed(), ["frontend", "decode worker 8"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_bad_linger_names_the_variable() {
        // SAFETY: no other test of this crate reads or writes this variable.
        unsafe { std::env::set_var(LINGER_VAR, "soon") };
        let e = linger_s().unwrap_err();
        // SAFETY: as above.
        unsafe { std::env::remove_var(LINGER_VAR) };
        assert!(e.to_string().contains(LINGER_VAR), "{e}");
    }
}
