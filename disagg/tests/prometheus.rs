//! A real Prometheus scrapes short disagg runs (the frontend's endpoint and every worker's
//! NIXL endpoint, found through the run's `metrics_targets.json`), and what it stored must
//! agree with the run's own report: bytes moved (within 1%), the TTFT histogram, replicas and
//! the prefix hit rate; in a run the planner resizes, replicas per pool over time, decisions,
//! predicted vs observed load and SLA attainment; with `--lib`, the loaded library's
//! endpoints (ours, and real NIXL's own exporter). Every endpoint also passes
//! `promtool check metrics`, and Prometheus logs no error.

mod common;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// GETs `path` from `addr` (HTTP/1.0: the answer is never chunked): status code and body.
fn http_get(addr: &str, path: &str) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n")?;
    let mut raw = String::new();
    s.read_to_string(&mut raw)?;
    let (head, body) = raw
        .split_once("\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("not an HTTP response"))?;
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    Ok((code, body.to_owned()))
}

/// Percent-encodes a PromQL expression for a query string.
fn encode(q: &str) -> String {
    q.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A series' labels.
type Labels = HashMap<String, String>;

/// A Prometheus server started for this test, killed when dropped.
struct Prometheus {
    child: Child,
    addr: String,
    dir: PathBuf,
}

impl Prometheus {
    /// Starts Prometheus scraping the targets listed in `targets` every 500 ms.
    fn start(dir: &Path, targets: &Path) -> Prometheus {
        std::fs::create_dir_all(dir).unwrap();
        let config = dir.join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 500ms\n  scrape_timeout: 400ms\n\
                 scrape_configs:\n  - job_name: disagg\n    file_sd_configs:\n      \
                 - files: ['{}']\n        refresh_interval: 1s\n",
                targets.display()
            ),
        )
        .unwrap();
        // A free port now (another process could take it before Prometheus does; then the
        // readiness wait below fails with Prometheus's log).
        let addr = {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().to_string()
        };
        let log = std::fs::File::create(dir.join("prometheus.log")).unwrap();
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start prometheus");
        let p = Prometheus {
            child,
            addr,
            dir: dir.to_owned(),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while !matches!(http_get(&p.addr, "/-/ready"), Ok((200, _))) {
            assert!(
                Instant::now() < deadline,
                "Prometheus not ready after 60 s:\n{}",
                p.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        p
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("prometheus.log")).unwrap_or_default()
    }

    /// Runs an instant PromQL query: (labels, value) per result.
    fn query(&self, q: &str) -> Vec<(HashMap<String, String>, f64)> {
        let (code, body) = http_get(&self.addr, &format!("/api/v1/query?query={}", encode(q)))
            .unwrap_or_else(|e| panic!("query {q}: {e}"));
        assert_eq!(code, 200, "query {q}: {body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        v["data"]["result"]
            .as_array()
            .unwrap_or_else(|| panic!("query {q}: {body}"))
            .iter()
            .map(|r| {
                let labels = r["metric"]
                    .as_object()
                    .map(|m| {
                        m.iter()
                            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_owned()))
                            .collect()
                    })
                    .unwrap_or_default();
                let value = r["value"][1].as_str().unwrap().parse::<f64>().unwrap();
                (labels, value)
            })
            .collect()
    }

    /// Runs a range query from `start` to now (Unix seconds, 0.5 s steps): per result its
    /// labels and (seconds since `start`, value) points.
    fn range(&self, q: &str, start: f64) -> Vec<(Labels, Vec<(f64, f64)>)> {
        let end = unix_now();
        let path = format!(
            "/api/v1/query_range?query={}&start={start:.3}&end={end:.3}&step=0.5",
            encode(q)
        );
        let (code, body) = http_get(&self.addr, &path).unwrap();
        assert_eq!(code, 200, "query {q}: {body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        v["data"]["result"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                let labels = r["metric"]
                    .as_object()
                    .map(|m| {
                        m.iter()
                            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_owned()))
                            .collect()
                    })
                    .unwrap_or_default();
                let points = r["values"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter_map(|p| {
                        let t = p[0].as_f64()?;
                        let v = p[1].as_str()?.parse::<f64>().ok()?;
                        Some((t - start, v))
                    })
                    .collect();
                (labels, points)
            })
            .collect()
    }

    /// The single value of `q`.
    fn value(&self, q: &str) -> f64 {
        let r = self.query(q);
        assert_eq!(r.len(), 1, "query {q} gave {r:?}\n{}", self.log());
        r[0].1
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Kept after a failure: its log and data tell what it saw.
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// The operator's view of the run, read back from Prometheus: the panels of the Grafana
/// dashboard (`docs/observe/grafana-dashboard.json`), drawn by `disagg::frontend::dashboard`.
fn dashboard(prom: &Prometheus, start: f64) -> Vec<disagg::frontend::dashboard::Panel> {
    let quantiles = |metric: &str, scale: f64| {
        [(0.5, "p50"), (0.99, "p99")]
            .into_iter()
            .flat_map(|(q, name)| {
                prom.range(
                    &format!(
                        "histogram_quantile({q}, sum by (le) (rate({metric}_bucket[2s]))) * {scale}"
                    ),
                    start,
                )
                .into_iter()
                .map(move |(_, pts)| (name.to_owned(), pts))
            })
            .collect::<Vec<_>>()
    };
    let named = |q: &str, name: &dyn Fn(&HashMap<String, String>) -> String| {
        prom.range(q, start)
            .into_iter()
            .map(|(l, pts)| (name(&l), pts))
            .collect::<Vec<_>>()
    };
    let panel = |title: &str, y_desc: &str, series| disagg::frontend::dashboard::Panel {
        title: title.into(),
        y_desc: y_desc.into(),
        series,
    };
    vec![
        panel(
            "KV transfer GB/s by transport and peer",
            "GB/s",
            named(
                "sum by (transport, peer) (rate({__name__=~\"agent_(tx|rx)_bytes_total\"}[2s])) / 1e9",
                &|l| format!("{} {}", l["transport"], l["peer"]),
            ),
        ),
        panel(
            "NIXL transfer time",
            "ms",
            quantiles("agent_xfer_time_us", 1e-3),
        ),
        panel(
            "time to first token",
            "ms",
            quantiles("dynamo_frontend_time_to_first_token_seconds", 1e3),
        ),
        panel(
            "inter-token latency",
            "ms",
            quantiles("dynamo_frontend_inter_token_latency_seconds", 1e3),
        ),
        panel(
            "prefix hit rate",
            "cached / prompt tokens",
            named(
                "sum(rate(disagg_prefill_cached_tokens_total[3s])) / sum(rate(disagg_prefill_prompt_tokens_total[3s]))",
                &|_| "hit rate".into(),
            ),
        ),
        panel(
            "replicas",
            "workers",
            ["p", "d"]
                .iter()
                .flat_map(|pool| {
                    named(&format!("planner:num_{pool}_workers"), &|_| {
                        if *pool == "p" { "prefill" } else { "decode" }.into()
                    })
                })
                .collect(),
        ),
    ]
}

/// `promtool check metrics` on one endpoint's exposition: no parse error, and no lint finding
/// but the known ones of names kept for compatibility.
fn promtool_check(target: &str, body: &str) {
    let findings =
        test_support::promtool_findings(body).expect("promtool (Debian package prometheus)");
    for line in &findings {
        // NIXL's `_us` and Dynamo's `_ms` names, and Dynamo's `planner:` prefix, kept so
        // existing dashboards work.
        let kept = line.contains("abbreviated units") || line.starts_with("planner:");
        assert!(
            kept,
            "promtool check metrics on {target}: {line}\n{findings:?}"
        );
    }
}

/// The endpoints listed in a run's targets file: (address, role).
fn targets(out: &Path) -> Vec<(String, String)> {
    let Ok(text) = std::fs::read_to_string(out.join("metrics_targets.json")) else {
        return Vec::new();
    };
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["targets"][0].as_str().unwrap().to_owned(),
                t["labels"]["role"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// A disagg run and what a real Prometheus scraped of it.
struct Scraped {
    prom: Prometheus,
    run: common::Run,
    /// Each endpoint's exposition as the test fetched it while the run went, by "role addr".
    bodies: HashMap<String, String>,
    /// Every endpoint the targets file listed while the run went (a drained worker leaves it).
    ever_listed: Vec<(String, String)>,
    /// When Prometheus started (Unix seconds).
    started: f64,
}

/// Runs disagg with `args` and `env`, keeping its endpoints up `linger_s` before the first
/// request and after the last, and scrapes it with a real Prometheus. Prometheus starts once the run has
/// written its targets file: started earlier, its `file_sd` would watch a folder that does not
/// exist yet and log an error until it does.
fn scrape_run(name: &str, linger_s: &str, env: &[(&str, &str)], args: &[&str]) -> Scraped {
    // Prometheus's folder (the run's is `common::run_watching`'s).
    let work =
        std::env::temp_dir().join(format!("disagg-prometheus-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    let mut prom = None;
    let mut started = 0.0;
    // While the run goes, fetch every endpoint it lists (each at least once).
    let mut bodies: HashMap<String, String> = HashMap::new();
    let mut ever_listed: Vec<(String, String)> = Vec::new();
    let mut last_fetch = Instant::now() - Duration::from_secs(1);
    let mut watch = |out: &Path| {
        let file = out.join("metrics_targets.json");
        if prom.is_none() && file.exists() {
            prom = Some(Prometheus::start(&work, &file));
            started = unix_now();
        }
        if last_fetch.elapsed() < Duration::from_millis(500) {
            return;
        }
        last_fetch = Instant::now();
        for (addr, role) in targets(out) {
            if let Ok((200, body)) = http_get(&addr, "/metrics") {
                bodies.insert(format!("{role} {addr}"), body);
            }
            if !ever_listed.contains(&(addr.clone(), role.clone())) {
                ever_listed.push((addr, role));
            }
        }
    };
    let run = common::run_watching(
        &[],
        // Prometheus applies new targets every 5 s: the run waits longer than that for it.
        &[&[("DISAGG_METRICS_LINGER_S", linger_s)], env].concat(),
        name,
        args,
        180,
        &mut watch,
    );
    let prom = prom.unwrap_or_else(|| panic!("the run wrote no targets file:\n{}", run.output));
    let log = prom.log();
    assert!(
        !log.contains("level=error"),
        "Prometheus logged an error:\n{log}"
    );
    Scraped {
        prom,
        run,
        bodies,
        ever_listed,
        started,
    }
}

/// The checks every scraped run passes: it went well, it printed and listed every endpoint,
/// each answered while the run went and passes `promtool check metrics`, and Prometheus
/// scraped each at least once.
fn assert_every_endpoint_scraped(s: &Scraped) {
    let (run, prom) = (&s.run, &s.prom);
    run.assert_sound();
    assert_eq!(run.code, Some(0), "{}", run.output);
    let listed = &s.ever_listed;
    assert!(
        listed.len() >= 3 && listed[0].1 == "frontend",
        "the frontend and the workers are listed: {listed:?}"
    );
    for (addr, _) in listed {
        assert!(
            run.output.contains(&format!("http://{addr}/metrics")),
            "the run prints every endpoint ({addr}):\n{}",
            run.output
        );
    }
    assert_eq!(
        s.bodies.len(),
        listed.len(),
        "every endpoint answered while the run went: {:?}",
        s.bodies.keys()
    );
    for (target, body) in &s.bodies {
        promtool_check(target, body);
    }

    // Prometheus scraped each of them, and their scrapes parsed (`up` is 0 for a scrape that
    // fails, as they all do once the run has ended).
    let up = prom.query("max_over_time(up[10m])");
    assert_eq!(up.len(), listed.len(), "{up:?}\n{}", prom.log());
    assert!(
        up.iter().all(|(_, v)| *v == 1.0),
        "an endpoint was never scraped: {up:?}\n{}",
        prom.log()
    );
}

/// Whether this host has Prometheus and promtool; prints the skip (or fails where required).
/// The short run whose byte counts the library's counters must match: fixed pools (a worker
/// the planner drains within a second or two could end before Prometheus scrapes it, and its
/// last counts with it; the planner's series are checked in a run of their own), and no
/// host-tier or prefix-fetch moves (the report's `kv_bytes_moved` counts prefill-to-decode KV
/// only, while the library also counts those moves; tiers.rs checks them block by block).
const FIXED_POOLS_KV_ONLY: &[&str] = &[
    "--quick",
    "--mode",
    "pull",
    "--planner",
    "off",
    "--host-tier-blocks",
    "0",
    "--fetch",
    "off",
];

fn have_prometheus() -> bool {
    let have = test_support::have("prometheus") && test_support::have("promtool");
    if !have {
        test_support::skip(
            "prometheus",
            "a real Prometheus scrape (prometheus and promtool not installed; Debian package prometheus)",
        );
    }
    have
}

#[test]
fn prometheus_scrapes_a_run_and_agrees_with_its_report() {
    if !have_prometheus() {
        return;
    }
    let s = scrape_run("prometheus", "6", &[], FIXED_POOLS_KV_ONLY);
    assert_every_endpoint_scraped(&s);
    let (run, prom, started) = (&s.run, &s.prom, s.started);

    // Bytes: the workers' NIXL counters against the report.
    let report_bytes = run.n("kv_bytes_moved") as f64;
    let nixl_bytes =
        prom.value("sum(max_over_time({__name__=~\"agent_(tx|rx)_bytes_total\"}[10m]))");
    assert!(
        (nixl_bytes - report_bytes).abs() <= 0.01 * report_bytes,
        "NIXL counted {nixl_bytes} bytes, the report {report_bytes}"
    );
    assert_eq!(
        prom.value("sum(max_over_time(disagg_kv_transfer_bytes_total[10m]))"),
        report_bytes
    );
    // Every byte has a transport (same host: cma or shm, never unknown).
    let by_transport = prom.query(
        "sum by (transport) (max_over_time({__name__=~\"agent_(tx|rx)_bytes_total\"}[10m]))",
    );
    assert!(
        by_transport
            .iter()
            .all(|(l, _)| ["cma", "shm", "tcp"].contains(&l["transport"].as_str())),
        "{by_transport:?}"
    );
    assert!(
        !prom
            .query("max_over_time(agent_peer_transport[10m]) == 1")
            .is_empty(),
        "the peers' transports are reported"
    );

    // TTFT: one observation per served request; the median within the bucket's factor 2.
    let served = run.n("served") as f64;
    assert_eq!(
        prom.value("max_over_time(dynamo_frontend_time_to_first_token_seconds_count[10m])"),
        served
    );
    let p50 = prom.value(
        "histogram_quantile(0.5, max_over_time(dynamo_frontend_time_to_first_token_seconds_bucket[10m]))",
    ) * 1e3;
    let report_p50 = run.report["ttft_p50_ms"].as_f64().unwrap();
    assert!(
        p50 <= 2.0 * report_p50 && p50 >= report_p50 / 2.0,
        "TTFT median {p50} ms from Prometheus, {report_p50} ms in the report"
    );
    assert!(
        prom.value("max_over_time(dynamo_frontend_inter_token_latency_seconds_count[10m])") > 0.0
    );
    assert_eq!(
        prom.value("sum(max_over_time(dynamo_frontend_requests_total{status=\"success\"}[10m]))"),
        served
    );

    // Replicas: each pool's last count is one the report sampled; one decision counted
    // per decision in the report.
    let samples = run.report["replicas"].as_array().unwrap();
    for (series, column) in [("planner:num_p_workers", 1), ("planner:num_d_workers", 2)] {
        let last = prom.value(&format!("last_over_time({series}[10m])"));
        assert!(
            last >= 1.0 && samples.iter().any(|s| s[column].as_f64() == Some(last)),
            "{series} ended at {last}; the report sampled {samples:?}"
        );
    }
    let decisions = run.report["plan"].as_array().unwrap().len() as f64;
    let counted: f64 = prom
        .query("max_over_time(planner:decisions_total[10m])")
        .iter()
        .map(|(_, v)| v)
        .sum();
    assert_eq!(counted, decisions, "planner decisions");

    // Prefix hit rate: the same counters as the report's.
    let hit = prom.value(
        "max_over_time(disagg_prefill_cached_tokens_total[10m]) / max_over_time(disagg_prefill_prompt_tokens_total[10m])",
    );
    let report_hit = run.report["prefix_hit_rate"].as_f64().unwrap();
    assert!(
        (hit - report_hit).abs() < 1e-9,
        "hit rate {hit} from Prometheus, {report_hit} in the report"
    );
    // Router and KV events were counted.
    assert!(
        prom.value("sum(max_over_time(dynamo_component_router_requests_total[10m]))") >= served
    );
    assert_eq!(
        prom.value(
            "sum(max_over_time(dynamo_component_kv_cache_events_applied_total{status=\"ok\"}[10m]))"
        ),
        run.n("kv_event_batches") as f64
    );

    // The Grafana dashboard's queries parse, and name only series the endpoints serve.
    let grafana: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../docs/observe/grafana-dashboard.json"
        ))
        .unwrap(),
    )
    .unwrap();
    let served_text: String = s.bodies.values().cloned().collect();
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let registered: String = [
        "nixl-core/src/metrics/mod.rs",
        "nixl-core/src/metrics/peers.rs",
        "disagg/src/frontend/prom.rs",
    ]
    .iter()
    .map(|f| std::fs::read_to_string(format!("{root}/{f}")).unwrap())
    .collect();
    for panel in grafana["panels"].as_array().unwrap() {
        for t in panel["targets"].as_array().unwrap() {
            let expr = t["expr"]
                .as_str()
                .unwrap()
                .replace("$__rate_interval", "2s");
            let (code, body) = http_get(
                &prom.addr,
                &format!("/api/v1/query?query={}", encode(&expr)),
            )
            .unwrap();
            assert_eq!(code, 200, "dashboard query {expr}: {body}");
            let names = expr
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
                .filter(|w| {
                    ["agent_", "dynamo_", "disagg_", "planner:"]
                        .iter()
                        .any(|p| w.starts_with(p) && w.len() > p.len() && !w.ends_with('_'))
                });
            for name in names {
                // Served, or registered (a family without series, such as errors in a run
                // without any, is not in the exposition).
                let family = name.trim_end_matches("_bucket").trim_end_matches("_total");
                assert!(
                    served_text.contains(&format!("# TYPE {family} "))
                        || registered.contains(&format!("\"{family}\"")),
                    "dashboard query {expr} names {name}, which nothing registers"
                );
            }
        }
    }

    // The operator's view, from what Prometheus stored; `DISAGG_DASHBOARD_PNG` also writes
    // it there (how docs/observe/dashboard.png is made).
    let panels = dashboard(prom, started);
    for p in &panels {
        assert!(
            p.series.iter().any(|(_, pts)| !pts.is_empty()),
            "panel {:?} has no data",
            p.title
        );
    }
    let png = run.out.join("dashboard.png");
    disagg::frontend::dashboard::write(&png, &panels).unwrap();
    if let Some(to) = std::env::var_os("DISAGG_DASHBOARD_PNG") {
        std::fs::copy(&png, &to).unwrap();
    }
}

/// The last value of `q` over the run.
fn last(prom: &Prometheus, q: &str) -> f64 {
    prom.value(&format!("last_over_time({q}[10m])"))
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

#[test]
fn prometheus_follows_the_planner() {
    if !have_prometheus() {
        return;
    }
    // An over-provisioned fleet the planner shrinks (as in planner.rs); the longer wait lets
    // Prometheus scrape every worker before the planner drains any.
    let s = scrape_run("prometheus-planner", "8", &[], common::PLANNER_SCALE_DOWN);
    // Drained workers included: each was scraped before it stopped.
    assert_every_endpoint_scraped(&s);
    let (run, prom) = (&s.run, &s.prom);
    let drained = run.n("workers_drained");
    assert!(drained >= 1, "{}", run.output);
    // ... and then left the targets file, so that Prometheus stops scraping a dead endpoint.
    let stopped = drained + run.n("workers_drain_timeout");
    let listed = targets(&run.out);
    assert_eq!(
        s.ever_listed.len() - listed.len(),
        stopped as usize,
        "the stopped workers, and only they, left the targets file: {listed:?} of {:?}",
        s.ever_listed
    );

    // Replicas per pool, as scraped over the run: the pools' sizes from the start (0 before
    // the workers are up), then only values the report sampled; the last one too.
    let samples = run.report["replicas"].as_array().unwrap();
    for (series, column, start) in [
        ("planner:num_p_workers", 1, 2.0),
        ("planner:num_d_workers", 2, 4.0),
    ] {
        let sampled: Vec<f64> = samples
            .iter()
            .map(|s| s[column].as_f64().unwrap())
            .collect();
        let scraped = prom.range(series, s.started);
        assert_eq!(scraped.len(), 1, "{series}: {scraped:?}");
        let values: Vec<f64> = scraped[0]
            .1
            .iter()
            .map(|p| p.1)
            .skip_while(|v| *v == 0.0)
            .collect();
        assert_eq!(
            values.first(),
            Some(&start),
            "{series} over the run: {values:?}"
        );
        assert!(
            values.iter().all(|v| *v == start || sampled.contains(v)),
            "{series} took a value the report never sampled: {values:?}, report {sampled:?}"
        );
        let end = last(prom, series);
        assert!(
            sampled.contains(&end),
            "{series} ended at {end}; the report sampled {sampled:?}"
        );
    }
    let decode = &prom.range("planner:num_d_workers", s.started)[0].1;
    assert!(
        decode.iter().any(|p| p.1 < 4.0),
        "Prometheus saw the decode pool shrink: {decode:?}"
    );

    // Decisions: one counted per decision of the report, by change of the replica total.
    let plan = run.report["plan"].as_array().unwrap();
    assert!(!plan.is_empty(), "{}", run.output);
    let mut expected: HashMap<String, f64> = HashMap::new();
    let mut before = 2 + 4;
    for p in plan {
        let after = p["planned"][0].as_u64().unwrap() + p["planned"][1].as_u64().unwrap();
        let change = match after.cmp(&before) {
            std::cmp::Ordering::Greater => "up",
            std::cmp::Ordering::Less => "down",
            std::cmp::Ordering::Equal => "hold",
        };
        *expected.entry(change.into()).or_default() += 1.0;
        before = after;
    }
    let counted: HashMap<String, f64> = prom
        .query("last_over_time(planner:decisions_total[10m])")
        .into_iter()
        .map(|(l, v)| (l["change"].clone(), v))
        .collect();
    assert_eq!(counted, expected, "planner decisions by change");
    assert!(counted.get("down").is_some_and(|n| *n >= 1.0));

    // Predicted vs observed load: the last decision's figures.
    let decided = plan.last().unwrap();
    for (series, field) in [
        ("planner:observed_request_rate", &decided["observed_rate"]),
        ("planner:predicted_request_rate", &decided["planned_rate"]),
        ("planner:predicted_num_p", &decided["planned"][0]),
        ("planner:predicted_num_d", &decided["planned"][1]),
    ] {
        let (got, want) = (last(prom, series), field.as_f64().unwrap());
        assert!(
            close(got, want),
            "{series}: {got} scraped, {want} in the report"
        );
    }

    // SLA attainment: the share of first tokens within the TTFT target (0.3 s), from the
    // report's per-request TTFTs.
    let ttfts: Vec<f64> = run.report["per_request"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["ttft_ms"].as_f64())
        .collect();
    let met = ttfts.iter().filter(|t| **t <= 300.0).count() as f64;
    // One first token per request served: a worker drained after handing a request off
    // does not make it start over.
    assert_eq!(
        last(prom, "dynamo_frontend_time_to_first_token_seconds_count"),
        run.n("served") as f64,
        "{}",
        run.output
    );
    let attained = last(prom, "disagg_sla_attainment{slo=\"ttft\"}");
    assert!(
        close(attained, met / ttfts.len() as f64),
        "TTFT attainment {attained} scraped, {met} of {} in the report",
        ttfts.len()
    );
    assert_eq!(
        last(prom, "disagg_sla_requests_total{slo=\"ttft\"}"),
        ttfts.len() as f64
    );
}

/// A run whose workers load `lib` (`--lib`): each worker's NIXL endpoint is listed, answers
/// and is scraped like the linked library's, and its byte counters are there. `label` names
/// the run.
fn scrape_a_run_on(label: &str, lib: &Path) -> Scraped {
    let s = scrape_run(
        &format!("prometheus-lib-{label}"),
        "6",
        // Real NIXL's bundled UCX crashes at exit on machines without InfiniBand.
        &[("UCX_MODULES", "^ib*")],
        &[FIXED_POOLS_KV_ONLY, &["--lib", lib.to_str().unwrap()]].concat(),
    );
    let workers = targets(&s.run.out)
        .into_iter()
        .filter(|(_, role)| role.contains("worker"))
        .count();
    assert!(
        workers >= 2,
        "every worker on {} lists its endpoint:\n{}",
        lib.display(),
        s.run.output
    );
    s
}

#[test]
fn workers_on_our_loaded_library_serve_their_metrics() {
    if !have_prometheus() {
        return;
    }
    // Cargo builds nixl-ffi's cdylib beside this test binary (in `deps/`): nixl-ffi is a
    // dependency of disagg.
    let lib = std::env::current_exe()
        .unwrap()
        .parent()
        .unwrap()
        .join("libnixl_capi.so");
    if !lib.is_file() {
        test_support::skip(
            "nixl-ours",
            &format!("our libnixl_capi.so not built ({})", lib.display()),
        );
        return;
    }
    let s = scrape_a_run_on("ours", &lib);
    assert_every_endpoint_scraped(&s);
    // The library's counters agree with the report as the linked library's do.
    let report_bytes = s.run.n("kv_bytes_moved") as f64;
    let nixl_bytes = s
        .prom
        .value("sum(max_over_time({__name__=~\"agent_(tx|rx)_bytes_total\"}[10m]))");
    assert!(
        (nixl_bytes - report_bytes).abs() <= 0.01 * report_bytes,
        "NIXL counted {nixl_bytes} bytes, the report {report_bytes}"
    );
}

#[test]
fn workers_on_real_nixl_serve_its_exporter() {
    if !have_prometheus() {
        return;
    }
    let Some(lib) = std::env::var_os("NIXL_REAL_LIB")
        .map(PathBuf::from)
        .map(|p| {
            if p.is_dir() {
                p.join("libnixl_capi.so")
            } else {
                p
            }
        })
        .filter(|p| p.is_file())
    else {
        test_support::skip(
            "nixl-real",
            "real NIXL: NIXL_REAL_LIB is not set or names no library (set it to the folder \
             `bash .ci/real-nixl.sh` prints)",
        );
        return;
    };
    let s = scrape_a_run_on("real", &lib);
    let (run, prom) = (&s.run, &s.prom);
    run.assert_sound();
    // NIXL's exporter, found through the port the worker picked and reported: Prometheus
    // scraped every endpoint, and NIXL's own series came from the workers.
    let listed = targets(&run.out);
    let up = prom.query("max_over_time(up[10m])");
    assert_eq!(up.len(), listed.len(), "{up:?}\n{}", prom.log());
    assert!(up.iter().all(|(_, v)| *v == 1.0), "{up:?}");
    let series = prom.range("count by (role) ({__name__=~\"agent_.*\"})", s.started);
    assert!(
        series
            .iter()
            .filter(|(l, pts)| l["role"].contains("worker") && !pts.is_empty())
            .count()
            >= 2,
        "NIXL's series from each worker: {series:?}"
    );
}
