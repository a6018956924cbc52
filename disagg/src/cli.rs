//! Command-line parsing for `disagg` (the frontend) and `disagg worker`.

use crate::frontend::{Discovery, Kill, Mode, RunConfig, workload};
use crate::proto::WorkerRole;
use crate::transfer::capi::LibChoice;
use crate::worker::WorkerArgs;
use std::path::PathBuf;

/// Usage text.
pub const USAGE: &str = "\
disagg — disaggregated serving end to end (prefill/decode workers moving real KV blocks
through the NIXL C ABI, KV-aware router, SLO planner)

USAGE: disagg [OPTIONS]

  --quick               CI variant: a few seconds, a few dozen requests
  --trace FILE          replay a Mooncake-format JSONL trace instead of the built-in load
  --time-scale X        divide the trace's arrival times by X (default 1)
  --max-requests N      keep the trace's first N requests
  --workers P[,D]       prefill and decode workers at start (default 2,2)
  --mode pull|push      decode READs prefill blocks (vLLM) or prefill WRITEs them (SGLang)
  --planner on|off      let the SLO planner resize the pools (default off; on for the built-in run)
  --max-workers N       planner bound per pool (default 4)
  --planner-interval S  seconds between planner decisions (default 5)
  --lib PATH            load this libnixl_capi.so instead of the linked-in nixl-ffi
  --discovery channel|listener|etcd
                        how workers get each other's metadata: the transfer library's
                        peer-to-peer listener (default), etcd (default when
                        NIXL_ETCD_ENDPOINTS is set), or blobs relayed by the frontend
  --kill ROLE@SECONDS   SIGKILL one prefill|decode worker at that time (repeatable)
  --blocks N            KV pool blocks per worker (256 KiB each; default 1024)
  --host-tier-blocks N  host-memory tier blocks per worker, receiving blocks the pool evicts
                        (default 2x --blocks, less if memory is short; 0: no tier);
                        a size that cannot fit in memory is refused
  --fetch on|off        prefill workers READ a longer cached prefix from the peer holding it
                        instead of recomputing it (default on)
  --speedup X           divide the mock engine's step times by X (default 1)
  --no-local-prefill    never prefill on the decode worker
  --request-timeout S   fail requests unfinished after S seconds (default 60)
  --pin-timeout S       prefill frees pulled blocks after S seconds without notification
  --host IP             address the frontend and workers bind (default 127.0.0.1)
  --out DIR             report.json, report.png and worker logs (default target/disagg-out)
  --no-progress         no progress bar
  --worker-netns PNS@IP,DNS@IP
                        run prefill / decode workers in these network namespaces
                        (`ip netns exec`), bound to these addresses (multi-host test)
";

fn value(it: &mut impl Iterator<Item = String>, flag: &str) -> Result<String, String> {
    it.next().ok_or_else(|| format!("{flag} needs a value"))
}

fn num<T: std::str::FromStr>(s: &str, flag: &str) -> Result<T, String> {
    s.parse().map_err(|_| format!("{flag}: bad value {s:?}"))
}

/// Parses the frontend's arguments; `None` for `--help`.
pub fn parse_run(args: Vec<String>, exe: PathBuf) -> Result<Option<RunConfig>, String> {
    let mut quick = false;
    let mut trace: Option<PathBuf> = None;
    let mut time_scale = 1.0;
    let mut max_requests = None;
    let mut planner: Option<bool> = None;
    let mut cfg = RunConfig::new(workload::quick(), exe);
    let mut discovery = None;
    let mut host_tier: Option<usize> = None;
    let mut it = args.into_iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "-h" | "--help" => return Ok(None),
            "--quick" => quick = true,
            "--trace" => trace = Some(value(&mut it, &a)?.into()),
            "--time-scale" => time_scale = num(&value(&mut it, &a)?, &a)?,
            "--max-requests" => max_requests = Some(num(&value(&mut it, &a)?, &a)?),
            "--workers" => {
                let v = value(&mut it, &a)?;
                let (p, d) = v.split_once(',').unwrap_or((&v, &v));
                cfg.prefill = num(p, &a)?;
                cfg.decode = num(d, &a)?;
            }
            "--mode" => {
                cfg.mode = match value(&mut it, &a)?.as_str() {
                    "pull" => Mode::Pull,
                    "push" => Mode::Push,
                    m => return Err(format!("--mode: pull or push, not {m}")),
                }
            }
            "--planner" => {
                planner = Some(match value(&mut it, &a)?.as_str() {
                    "on" => true,
                    "off" => false,
                    m => return Err(format!("--planner: on or off, not {m}")),
                })
            }
            "--max-workers" => cfg.max_workers = num(&value(&mut it, &a)?, &a)?,
            "--planner-interval" => cfg.planner_interval_s = num(&value(&mut it, &a)?, &a)?,
            "--lib" => cfg.lib = LibChoice::Path(value(&mut it, &a)?.into()),
            "--discovery" => {
                discovery = Some(match value(&mut it, &a)?.as_str() {
                    "channel" => Discovery::Channel,
                    "listener" => Discovery::Listener,
                    "etcd" => Discovery::Etcd,
                    m => return Err(format!("--discovery: channel, listener or etcd, not {m}")),
                })
            }
            "--kill" => {
                let v = value(&mut it, &a)?;
                let (role, at) = v
                    .split_once('@')
                    .ok_or_else(|| format!("--kill: ROLE@SECONDS, not {v}"))?;
                cfg.kills.push(Kill {
                    role: WorkerRole::parse(role)
                        .ok_or_else(|| format!("--kill: prefill or decode, not {role}"))?,
                    at_s: num(at, &a)?,
                });
            }
            "--blocks" => cfg.blocks = num(&value(&mut it, &a)?, &a)?,
            "--host-tier-blocks" => host_tier = Some(num(&value(&mut it, &a)?, &a)?),
            "--fetch" => {
                cfg.fetch = match value(&mut it, &a)?.as_str() {
                    "on" => true,
                    "off" => false,
                    m => return Err(format!("--fetch: on or off, not {m}")),
                }
            }
            // Test hooks for the prefix fetch: a holder names a reused slot / dies mid-fetch.
            "--inject-stale-fetch" => cfg.inject_stale_fetch = true,
            "--kill-holder-mid-fetch" => cfg.kill_holder_mid_fetch = true,
            "--speedup" => cfg.speedup = num(&value(&mut it, &a)?, &a)?,
            "--no-local-prefill" => cfg.local_prefill = false,
            "--request-timeout" => cfg.request_timeout_s = num(&value(&mut it, &a)?, &a)?,
            "--pin-timeout" => cfg.pin_timeout_s = num(&value(&mut it, &a)?, &a)?,
            "--host" => cfg.host = value(&mut it, &a)?,
            "--out" => cfg.out_dir = value(&mut it, &a)?.into(),
            "--no-progress" => cfg.progress = false,
            "--worker-netns" => {
                let v = value(&mut it, &a)?;
                let parse = |s: &str| -> Option<(String, String)> {
                    let (ns, ip) = s.split_once('@')?;
                    Some((ns.to_string(), ip.to_string()))
                };
                let (p, d) = v
                    .split_once(',')
                    .and_then(|(p, d)| Some((parse(p)?, parse(d)?)))
                    .ok_or_else(|| format!("--worker-netns: PNS@IP,DNS@IP, not {v}"))?;
                cfg.worker_netns = Some([p, d]);
            }
            // Test hook: decode workers damage their first received block.
            "--inject-corruption" => cfg.inject_corruption = true,
            other => return Err(format!("unknown argument {other:?} (see --help)")),
        }
    }
    cfg.workload = match (&trace, quick) {
        (Some(path), _) => workload::mooncake(path, time_scale, max_requests)?,
        (None, true) => workload::quick(),
        (None, false) => workload::builtin(),
    };
    if quick {
        cfg.blocks = cfg.blocks.min(256);
        cfg.request_timeout_s = cfg.request_timeout_s.min(30.0);
        cfg.pin_timeout_s = cfg.pin_timeout_s.min(3.0);
    }
    // The planner runs by default on the built-in minute-long load, where it has time to act.
    cfg.planner = planner.unwrap_or(trace.is_none() && !quick);
    cfg.discovery = discovery.unwrap_or(if std::env::var_os("NIXL_ETCD_ENDPOINTS").is_some() {
        Discovery::Etcd
    } else {
        Discovery::Listener
    });
    if let Ok(v) = std::env::var("NIXL_ETCD_ENDPOINTS") {
        cfg.worker_env.push(("NIXL_ETCD_ENDPOINTS".into(), v));
    }
    // Default: twice the pool, less where memory is short; an explicit size is checked as is.
    let host_tier_blocks = host_tier.unwrap_or_else(|| {
        let want = cfg.blocks.saturating_mul(2);
        crate::kv::available_memory().map_or(want, |available| {
            let most = crate::kv::host_blocks_that_fit(
                u64::from(workers_at_once(&cfg)),
                cfg.blocks,
                crate::kv::KvLayout::mock_model(1).block_bytes(),
                available,
            );
            want.min(most)
        })
    });
    cfg.host_tier_blocks = host_tier_blocks;
    check(&cfg)?;
    Ok(Some(cfg))
}

/// Most workers alive at once: the planner may run `max_workers` per pool.
fn workers_at_once(cfg: &RunConfig) -> u32 {
    if cfg.planner {
        cfg.max_workers
            .max(cfg.prefill)
            .max(cfg.decode)
            .saturating_mul(2)
    } else {
        cfg.prefill.saturating_add(cfg.decode)
    }
}

/// Refuses settings that cannot work, before any worker starts.
fn check(cfg: &RunConfig) -> Result<(), String> {
    if cfg.prefill == 0 || cfg.decode == 0 {
        return Err(format!(
            "--workers {},{}: each pool needs at least one worker at start",
            cfg.prefill, cfg.decode
        ));
    }
    if cfg.planner && cfg.max_workers < cfg.prefill.max(cfg.decode) {
        return Err(format!(
            "--max-workers {} is below the starting workers {},{}",
            cfg.max_workers, cfg.prefill, cfg.decode
        ));
    }
    if let LibChoice::Path(p) = &cfg.lib
        && !p.is_file()
    {
        return Err(format!("--lib {}: no such file", p.display()));
    }
    if cfg.blocks == 0 {
        return Err("--blocks 0: a worker needs a KV pool".into());
    }
    if let Some(available) = crate::kv::available_memory() {
        crate::kv::check_fits(
            u64::from(workers_at_once(cfg)),
            cfg.blocks,
            cfg.host_tier_blocks,
            crate::kv::KvLayout::mock_model(1).block_bytes(),
            available,
        )?;
    }
    // The linked-in library has the etcd store only with the `etcd` feature; a library given
    // with --lib may have its own.
    if cfg.discovery == Discovery::Etcd
        && matches!(cfg.lib, LibChoice::Linked)
        && !cfg!(feature = "etcd")
    {
        return Err(
            "--discovery etcd (the default when NIXL_ETCD_ENDPOINTS is set) needs disagg built \
             with its `etcd` feature: cargo run --release -p disagg --features etcd (needs protoc), \
             or --discovery listener"
                .into(),
        );
    }
    Ok(())
}

/// Parses `disagg worker ...`.
pub fn parse_worker(args: Vec<String>) -> Result<WorkerArgs, String> {
    let mut w = WorkerArgs {
        role: WorkerRole::Prefill,
        replica: 0,
        control: String::new(),
        blocks: 1024,
        speedup: 1.0,
        pin_timeout_s: 10.0,
        push_chunk: 8,
        lib: LibChoice::Linked,
        host: "127.0.0.1".into(),
        listen_port: 0,
        corrupt_first: false,
        host_tier_blocks: 0,
        fetch_timeout_s: 1.0,
        stale_lend: false,
        die_on_lend: None,
    };
    let mut it = args.into_iter();
    while let Some(a) = it.next() {
        if a == "--corrupt-first" {
            w.corrupt_first = true;
            continue;
        }
        if a == "--stale-lend" {
            w.stale_lend = true;
            continue;
        }
        let v = value(&mut it, &a)?;
        match a.as_str() {
            "--role" => {
                w.role = WorkerRole::parse(&v).ok_or_else(|| format!("--role: bad value {v}"))?
            }
            "--replica" => w.replica = num(&v, &a)?,
            "--control" => w.control = v,
            "--blocks" => w.blocks = num(&v, &a)?,
            "--speedup" => w.speedup = num(&v, &a)?,
            "--pin-timeout" => w.pin_timeout_s = num(&v, &a)?,
            "--push-chunk" => w.push_chunk = num(&v, &a)?,
            "--lib" => {
                w.lib = if v == "linked" {
                    LibChoice::Linked
                } else {
                    LibChoice::Path(v.into())
                }
            }
            "--host" => w.host = v,
            "--listen-port" => w.listen_port = num(&v, &a)?,
            "--host-tier-blocks" => w.host_tier_blocks = num(&v, &a)?,
            "--fetch-timeout" => w.fetch_timeout_s = num(&v, &a)?,
            "--die-on-lend" => w.die_on_lend = Some(v.into()),
            other => return Err(format!("worker: unknown argument {other:?}")),
        }
    }
    if w.control.is_empty() {
        return Err("worker: --control is required".into());
    }
    Ok(w)
}
