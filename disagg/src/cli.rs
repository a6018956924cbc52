//! Command-line parsing for `disagg` (the frontend) and `disagg worker` (clap, derive).
//!
//! Clap refuses malformed flags (exit 2) and answers `--help` (exit 0); [`RunArgs::into_config`]
//! then refuses settings that parse but cannot work, before any worker starts.

use crate::frontend::{Discovery, Kill, Mode, RunConfig, workload};
use crate::proto::WorkerRole;
use crate::transfer::capi::LibChoice;
use crate::worker::WorkerArgs;
use clap::{Parser, Subcommand, ValueEnum};
use std::convert::Infallible;
use std::path::PathBuf;

/// A flag value clap could not parse (clap shows it and exits 2).
#[derive(Debug, thiserror::Error)]
pub enum FlagError {
    /// Not a whole number.
    #[error("{value:?}: {source}")]
    Count {
        /// The text given.
        value: String,
        /// Why it is not a number.
        #[source]
        source: std::num::ParseIntError,
    },
    /// Not a number of seconds.
    #[error("{value:?}: {source}")]
    Seconds {
        /// The text given.
        value: String,
        /// Why it is not a number.
        #[source]
        source: std::num::ParseFloatError,
    },
    /// Not a worker role.
    #[error("prefill or decode, not {0}")]
    Role(String),
    /// Not `ROLE@SECONDS`.
    #[error("ROLE@SECONDS, not {0}")]
    Kill(String),
    /// Not `PNS@IP,DNS@IP`.
    #[error("PNS@IP,DNS@IP, not {0}")]
    Netns(String),
}

/// Settings that parse but cannot work, refused before any worker starts (`disagg` exits 2).
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A pool without workers at start.
    #[error("--workers {prefill},{decode}: each pool needs at least one worker at start")]
    NoWorkers {
        /// Prefill workers asked for.
        prefill: u32,
        /// Decode workers asked for.
        decode: u32,
    },
    /// The planner's bound is below the starting pools.
    #[error("--max-workers {max} is below the starting workers {prefill},{decode}")]
    MaxWorkers {
        /// `--max-workers`.
        max: u32,
        /// Prefill workers at start.
        prefill: u32,
        /// Decode workers at start.
        decode: u32,
    },
    /// `--lib` names no file.
    #[error("--lib {}: no such file", .0.display())]
    NoLibrary(PathBuf),
    /// `--blocks 0`.
    #[error("--blocks 0: a worker needs a KV pool")]
    NoBlocks,
    /// The pools cannot fit in memory.
    #[error(transparent)]
    Memory(#[from] crate::kv::DoesNotFit),
    /// etcd discovery asked of a build without the store.
    #[error(
        "--discovery etcd (the default when NIXL_ETCD_ENDPOINTS is set) needs disagg built \
         with its `etcd` feature: cargo run --release -p disagg --features etcd (needs protoc), \
         or --discovery listener"
    )]
    EtcdFeature,
    /// `--trace` could not be read or parsed.
    #[error(transparent)]
    Trace(#[from] sim::workload::TraceError),
}

/// `disagg [OPTIONS]`, or `disagg worker ...` (started by the frontend).
#[derive(Debug, Parser)]
#[command(
    name = "disagg",
    long_about = None,
    about = "disagg — disaggregated serving end to end (prefill/decode workers moving real KV \
             blocks through the NIXL C ABI, KV-aware router, SLO planner)",
    // Later flags win, as the worker command lines rely on (`--host` given twice).
    args_override_self = true,
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    /// A worker process (internal: the frontend starts these).
    #[command(subcommand)]
    pub command: Option<Command>,
    /// The frontend's flags.
    #[command(flatten)]
    pub run: RunArgs,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// One worker process (started by the frontend).
    #[command(hide = true)]
    Worker(WorkerArgs),
}

/// `on` or `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Switch {
    /// Enabled.
    On,
    /// Disabled.
    Off,
}

/// The frontend's flags; unset ones take [`RunConfig::new`]'s defaults.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// CI variant: a few seconds, a few dozen requests
    #[arg(long)]
    pub quick: bool,
    /// Replay a Mooncake-format JSONL trace instead of the built-in load
    #[arg(long, value_name = "FILE")]
    pub trace: Option<PathBuf>,
    /// Divide the trace's arrival times by X (default 1)
    #[arg(long, value_name = "X")]
    pub time_scale: Option<f64>,
    /// Keep the trace's first N requests
    #[arg(long, value_name = "N")]
    pub max_requests: Option<usize>,
    /// Prefill and decode workers at start (default 2,2)
    #[arg(long, value_name = "P[,D]", value_parser = parse_workers)]
    pub workers: Option<(u32, u32)>,
    /// Decode READs prefill blocks (vLLM) or prefill WRITEs them (SGLang) (default pull)
    #[arg(long)]
    pub mode: Option<Mode>,
    /// Let the SLO planner resize the pools (default off; on for the built-in run)
    #[arg(long)]
    pub planner: Option<Switch>,
    /// Planner bound per pool (default 4)
    #[arg(long, value_name = "N")]
    pub max_workers: Option<u32>,
    /// Seconds between planner decisions (default 5)
    #[arg(long, value_name = "S")]
    pub planner_interval: Option<f64>,
    /// Load this libnixl_capi.so instead of the linked-in nixl-ffi
    #[arg(long, value_name = "PATH")]
    pub lib: Option<PathBuf>,
    /// How workers get each other's metadata: the transfer library's peer-to-peer listener
    /// (default), etcd (default when NIXL_ETCD_ENDPOINTS is set), or blobs relayed by the
    /// frontend
    #[arg(long)]
    pub discovery: Option<Discovery>,
    /// SIGKILL one prefill|decode worker at that time (repeatable)
    #[arg(long, value_name = "ROLE@SECONDS", value_parser = parse_kill)]
    pub kill: Vec<Kill>,
    /// KV pool blocks per worker (256 KiB each; default 1024)
    #[arg(long, value_name = "N")]
    pub blocks: Option<usize>,
    /// Host-memory tier blocks per worker, receiving blocks the pool evicts (default 0: no
    /// tier; a size that cannot fit in memory is refused). Off by default because the
    /// built-in load never re-uses an evicted block: its 8 shared prefixes (128 blocks) stay
    /// in every pool and the rest of each prompt is unique, so a tier would only copy blocks
    /// out. Worth it when prompts re-use more than the pool holds (a trace, small --blocks)
    #[arg(long, value_name = "N")]
    pub host_tier_blocks: Option<usize>,
    /// Prefill workers READ a longer cached prefix from the peer holding it instead of
    /// recomputing it (default on)
    #[arg(long)]
    pub fetch: Option<Switch>,
    /// Test hook: a holder names a reused slot when lending blocks.
    #[arg(long, hide = true)]
    pub inject_stale_fetch: bool,
    /// Test hook: a holder dies mid-fetch.
    #[arg(long, hide = true)]
    pub kill_holder_mid_fetch: bool,
    /// Divide the mock engine's step times by X (default 1)
    #[arg(long, value_name = "X")]
    pub speedup: Option<f64>,
    /// Never prefill on the decode worker
    #[arg(long)]
    pub no_local_prefill: bool,
    /// Fail requests unfinished after S seconds (default 60)
    #[arg(long, value_name = "S")]
    pub request_timeout: Option<f64>,
    /// Prefill frees pulled blocks after S seconds without notification (default 10)
    #[arg(long, value_name = "S")]
    pub pin_timeout: Option<f64>,
    /// Address the frontend and workers bind (default 127.0.0.1)
    #[arg(long, value_name = "IP")]
    pub host: Option<String>,
    /// report.json, report.png and worker logs (default target/disagg-out)
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// No progress bar
    #[arg(long)]
    pub no_progress: bool,
    /// Run prefill / decode workers in these network namespaces (`ip netns exec`), bound to
    /// these addresses (multi-host test)
    #[arg(long, value_name = "PNS@IP,DNS@IP", value_parser = parse_netns)]
    pub worker_netns: Option<NetnsPair>,
    /// Test hook: decode workers damage their first received block.
    #[arg(long, hide = true)]
    pub inject_corruption: bool,
}

/// Prefill and decode network namespaces, each as (namespace, ip).
pub type NetnsPair = [(String, String); 2];

fn parse_workers(v: &str) -> Result<(u32, u32), FlagError> {
    let (p, d) = v.split_once(',').unwrap_or((v, v));
    let n = |s: &str| {
        s.parse::<u32>().map_err(|source| FlagError::Count {
            value: s.into(),
            source,
        })
    };
    Ok((n(p)?, n(d)?))
}

fn parse_role(s: &str) -> Result<WorkerRole, FlagError> {
    WorkerRole::parse(s).ok_or_else(|| FlagError::Role(s.into()))
}

fn parse_kill(v: &str) -> Result<Kill, FlagError> {
    let (role, at) = v.split_once('@').ok_or_else(|| FlagError::Kill(v.into()))?;
    Ok(Kill {
        role: parse_role(role)?,
        at_s: at.parse().map_err(|source| FlagError::Seconds {
            value: at.into(),
            source,
        })?,
    })
}

fn parse_netns(v: &str) -> Result<NetnsPair, FlagError> {
    let one = |s: &str| -> Option<(String, String)> {
        let (ns, ip) = s.split_once('@')?;
        Some((ns.to_string(), ip.to_string()))
    };
    v.split_once(',')
        .and_then(|(p, d)| Some([one(p)?, one(d)?]))
        .ok_or_else(|| FlagError::Netns(v.into()))
}

/// `--role` of `disagg worker`.
pub(crate) fn worker_role(s: &str) -> Result<WorkerRole, FlagError> {
    parse_role(s)
}

/// `--lib` of `disagg worker`: `linked` or a path.
pub(crate) fn worker_lib(v: &str) -> Result<LibChoice, Infallible> {
    Ok(if v == "linked" {
        LibChoice::Linked
    } else {
        LibChoice::Path(v.into())
    })
}

impl RunArgs {
    /// The run these flags ask for, with `exe` as the workers' executable; refuses settings
    /// that cannot work.
    pub fn into_config(self, exe: PathBuf) -> Result<RunConfig, ConfigError> {
        let mut cfg = RunConfig::new(workload::quick(), exe);
        if let Some((p, d)) = self.workers {
            cfg.prefill = p;
            cfg.decode = d;
        }
        set(&mut cfg.mode, self.mode);
        set(&mut cfg.max_workers, self.max_workers);
        set(&mut cfg.planner_interval_s, self.planner_interval);
        set(&mut cfg.lib, self.lib.map(LibChoice::Path));
        cfg.kills = self.kill;
        set(&mut cfg.blocks, self.blocks);
        set(&mut cfg.speedup, self.speedup);
        cfg.local_prefill = !self.no_local_prefill;
        set(&mut cfg.request_timeout_s, self.request_timeout);
        set(&mut cfg.pin_timeout_s, self.pin_timeout);
        set(&mut cfg.host, self.host);
        set(&mut cfg.out_dir, self.out);
        cfg.progress = !self.no_progress;
        cfg.worker_netns = self.worker_netns;
        cfg.inject_corruption = self.inject_corruption;
        set(&mut cfg.fetch, self.fetch.map(|s| s == Switch::On));
        cfg.inject_stale_fetch = self.inject_stale_fetch;
        cfg.kill_holder_mid_fetch = self.kill_holder_mid_fetch;
        cfg.workload = match (&self.trace, self.quick) {
            (Some(path), _) => {
                workload::mooncake(path, self.time_scale.unwrap_or(1.0), self.max_requests)?
            }
            (None, true) => workload::quick(),
            (None, false) => workload::builtin(),
        };
        if self.quick {
            cfg.blocks = cfg.blocks.min(256);
            cfg.request_timeout_s = cfg.request_timeout_s.min(30.0);
            cfg.pin_timeout_s = cfg.pin_timeout_s.min(3.0);
        }
        // The planner runs by default on the built-in minute-long load, where it has time to act.
        cfg.planner = self
            .planner
            .map_or(self.trace.is_none() && !self.quick, |s| s == Switch::On);
        let etcd_env = std::env::var("NIXL_ETCD_ENDPOINTS").ok();
        cfg.discovery = self.discovery.unwrap_or(if etcd_env.is_some() {
            Discovery::Etcd
        } else {
            Discovery::Listener
        });
        if let Some(v) = etcd_env {
            cfg.worker_env.push(("NIXL_ETCD_ENDPOINTS".into(), v));
        }
        set(&mut cfg.host_tier_blocks, self.host_tier_blocks);
        check(&cfg)?;
        Ok(cfg)
    }
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

fn set<T>(field: &mut T, given: Option<T>) {
    if let Some(v) = given {
        *field = v;
    }
}

/// Refuses settings that cannot work, before any worker starts.
fn check(cfg: &RunConfig) -> Result<(), ConfigError> {
    if cfg.prefill == 0 || cfg.decode == 0 {
        return Err(ConfigError::NoWorkers {
            prefill: cfg.prefill,
            decode: cfg.decode,
        });
    }
    if cfg.planner && cfg.max_workers < cfg.prefill.max(cfg.decode) {
        return Err(ConfigError::MaxWorkers {
            max: cfg.max_workers,
            prefill: cfg.prefill,
            decode: cfg.decode,
        });
    }
    if let LibChoice::Path(p) = &cfg.lib
        && !p.is_file()
    {
        return Err(ConfigError::NoLibrary(p.clone()));
    }
    if cfg.blocks == 0 {
        return Err(ConfigError::NoBlocks);
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
        return Err(ConfigError::EtcdFeature);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("disagg").chain(args.iter().copied()))
    }

    #[test]
    fn flags_reach_the_config() {
        let cli = parse(&[
            "--quick",
            "--workers",
            "3,1",
            "--mode",
            "push",
            "--planner",
            "on",
            "--kill",
            "decode@2.5",
            "--kill",
            "prefill@1",
            "--worker-netns",
            "a@10.0.0.1,b@10.0.0.2",
            "--discovery",
            "channel",
        ])
        .unwrap();
        assert!(cli.command.is_none());
        let cfg = cli.run.into_config("disagg".into()).unwrap();
        assert_eq!((cfg.prefill, cfg.decode), (3, 1));
        assert_eq!(cfg.mode, Mode::Push);
        assert!(cfg.planner);
        assert_eq!(cfg.discovery, Discovery::Channel);
        assert_eq!(cfg.kills.len(), 2);
        assert_eq!(cfg.host_tier_blocks, 0, "no host tier unless asked for");
        assert_eq!(cfg.kills[0].role, WorkerRole::Decode);
        assert_eq!(cfg.kills[0].at_s, 2.5);
        assert_eq!(cfg.blocks, 256, "--quick caps the pool");
        let ns = cfg.worker_netns.unwrap();
        assert_eq!(ns[1], ("b".to_string(), "10.0.0.2".to_string()));
        let cli = parse(&["--quick", "--host-tier-blocks", "128"]).unwrap();
        let cfg = cli.run.into_config("disagg".into()).unwrap();
        assert_eq!(cfg.host_tier_blocks, 128);
    }

    #[test]
    fn malformed_flags_are_usage_errors() {
        for bad in [
            &["--mode", "sideways"][..],
            &["--kill", "decode"],
            &["--kill", "mid@3"],
            &["--workers", "x"],
            &["--worker-netns", "a@1"],
            &["--no-such-flag"],
        ] {
            let e = parse(bad).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{bad:?}: {e}");
        }
        let help = parse(&["--help"]).unwrap_err();
        assert_eq!(help.exit_code(), 0);
    }

    #[test]
    fn worker_flags_parse_and_later_ones_win() {
        let cli = parse(&[
            "worker",
            "--role",
            "decode",
            "--replica",
            "7",
            "--control",
            "127.0.0.1:9",
            "--host",
            "127.0.0.1",
            "--lib",
            "linked",
            "--host",
            "10.0.0.2",
            "--corrupt-first",
        ])
        .unwrap();
        let Some(Command::Worker(w)) = cli.command else {
            panic!("not a worker");
        };
        assert_eq!(w.role, WorkerRole::Decode);
        assert_eq!(w.replica, 7);
        assert_eq!(w.host, "10.0.0.2");
        assert_eq!(w.lib, LibChoice::Linked);
        assert_eq!(w.blocks, 1024);
        assert!(w.corrupt_first);
        assert!(
            parse(&["worker", "--role", "decode"]).is_err(),
            "--control is required"
        );
    }
}
