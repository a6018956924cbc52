//! A real Prometheus scrapes a short disagg run (the frontend's endpoint and every worker's
//! NIXL endpoint, found through the run's `metrics_targets.json`), and what it stored must
//! agree with the run's own report: bytes moved (within 1%), the TTFT histogram, replicas and
//! the prefix hit rate. Every endpoint also passes `promtool check metrics`.

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

#[test]
fn prometheus_scrapes_a_run_and_agrees_with_its_report() {
    if !test_support::have("prometheus") || !test_support::have("promtool") {
        test_support::skip(
            "prometheus",
            "a real Prometheus scrape (prometheus and promtool not installed; Debian package prometheus)",
        );
        return;
    }
    let name = "prometheus";
    // The folder `common::run_watching` gives this run.
    let out = std::env::temp_dir().join(format!("disagg-test-{name}-{}", std::process::id()));
    let work = std::env::temp_dir().join(format!("disagg-prometheus-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    let prom = Prometheus::start(&work, &out.join("metrics_targets.json"));
    let started = unix_now();

    // While the run goes, fetch every endpoint it lists (each at least once).
    let mut bodies: HashMap<String, String> = HashMap::new();
    let mut last_fetch = Instant::now() - Duration::from_secs(1);
    let mut watch = |out: &Path| {
        if last_fetch.elapsed() < Duration::from_millis(500) {
            return;
        }
        last_fetch = Instant::now();
        for (addr, role) in targets(out) {
            if let Ok((200, body)) = http_get(&addr, "/metrics") {
                bodies.insert(format!("{role} {addr}"), body);
            }
        }
    };
    let run = common::run_watching(
        &[],
        // Prometheus applies new targets every 5 s: the run waits that long for it.
        &[("DISAGG_METRICS_LINGER_S", "6")],
        name,
        &[
            "--quick",
            "--mode",
            "pull",
            // Fixed pools: a worker the planner drains within a second or two could end
            // before Prometheus scrapes it, and its last counts with it.
            "--planner",
            "off",
            // The report's `kv_bytes_moved` counts prefill-to-decode KV only, while the
            // library's counters also see host-tier and prefix-fetch moves: without them the
            // two byte counts must agree (tiers.rs checks those moves block by block).
            "--host-tier-blocks",
            "0",
            "--fetch",
            "off",
        ],
        180,
        &mut watch,
    );
    run.assert_sound();
    assert_eq!(run.code, Some(0), "{}", run.output);
    let listed = targets(&run.out);
    assert!(
        listed.len() >= 3 && listed[0].1 == "frontend",
        "the frontend and the workers are listed: {listed:?}"
    );
    for (addr, _) in &listed {
        assert!(
            run.output.contains(&format!("http://{addr}/metrics")),
            "the run prints every endpoint ({addr}):\n{}",
            run.output
        );
    }
    assert_eq!(
        bodies.len(),
        listed.len(),
        "every endpoint answered while the run went: {:?}",
        bodies.keys()
    );
    for (target, body) in &bodies {
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
    let served_text: String = bodies.values().cloned().collect();
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
    let panels = dashboard(&prom, started);
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
    drop(prom);
    let _ = std::fs::remove_dir_all(&work);
}
