//! nixlbench-style command-line flags (`--flag value` or `--flag=value`), parsed by clap.

use crate::error::BenchError;
use clap::{Parser, ValueEnum};
use nixl_benches::buffer::Segment;
use std::path::PathBuf;

/// Which process this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Role {
    /// Runs the sweep, spawns one initiator per library, prints the report.
    Orchestrator,
    /// Drives transfers through one library; spawns its target.
    Initiator,
    /// Owns the remote buffer.
    Target,
}

/// Parsed flags. Later flags win over earlier ones, as in the hand-written parser this
/// replaced; switches take an optional `=false`/`=0`.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "nixlbench",
    long_about = None,
    about = "nixlbench (nixl-rs) — transfers through any libnixl_capi.so",
    after_help = "Sizes accept K/M/G suffixes.",
    args_override_self = true
)]
pub struct Args {
    /// Process role (internal).
    #[arg(long, value_enum, default_value = "orchestrator", hide = true)]
    pub role: Role,
    /// READ or WRITE
    #[arg(long = "op_type", value_name = "READ|WRITE", default_value = "WRITE", value_parser = op_type)]
    pub op: String,
    /// First block size of the doubling sweep
    #[arg(long = "start_block_size", value_name = "N", default_value = "4096", value_parser = size)]
    pub start_block: usize,
    /// Last block size of the doubling sweep
    #[arg(long = "max_block_size", value_name = "N", default_value = "64M", value_parser = size)]
    pub max_block: usize,
    /// First batch size of the doubling sweep
    #[arg(long = "start_batch_size", value_name = "N", default_value = "1", value_parser = size)]
    pub start_batch: usize,
    /// Last batch size of the doubling sweep
    #[arg(long = "max_batch_size", value_name = "N", default_value = "1", value_parser = size)]
    pub max_batch: usize,
    /// Explicit block sizes instead of the doubling sweep (4K,64K,...)
    #[arg(long = "block_sizes", value_name = "LIST", value_delimiter = ',', value_parser = size)]
    pub block_sizes: Vec<usize>,
    /// If set, batch = N / block (overrides the batch sweep)
    #[arg(long = "request_bytes", value_name = "N", value_parser = size)]
    pub request_bytes: Option<usize>,
    /// Timed iterations per point
    #[arg(long = "num_iter", value_name = "N", default_value = "1000", value_parser = size)]
    pub num_iter: usize,
    /// Untimed iterations per point
    #[arg(long = "warmup_iter", value_name = "N", default_value = "100", value_parser = size)]
    pub warmup_iter: usize,
    /// Iterations divided by this for requests ≥ 1 MiB
    #[arg(long = "large_blk_iter_ftr", value_name = "N", default_value = "16", value_parser = at_least_one)]
    pub large_iter_factor: usize,
    /// Iterations capped so one point moves at most this
    #[arg(long = "max_point_bytes", value_name = "N", default_value = "4G", value_parser = size)]
    pub max_point_bytes: usize,
    /// Initiator threads
    #[arg(long = "num_threads", value_name = "N", default_value = "1", value_parser = at_least_one)]
    pub threads: usize,
    /// Verify the data of every point
    #[arg(long = "check_consistency", value_name = "BOOL", action = clap::ArgAction::Set, num_args = 0..=1, require_equals = true,
          default_value = "false", default_missing_value = "true", value_parser = switch)]
    pub check: bool,
    /// Segment type of both sides (DRAM only)
    #[arg(long = "initiator_seg_type", visible_alias = "target_seg_type", value_name = "DRAM",
          default_value = "DRAM", value_parser = dram_only)]
    pub seg_type: String,
    /// How both sides allocate: malloc|huge|shared
    #[arg(long = "buffer", value_name = "KIND", default_value = "malloc", value_parser = segment)]
    pub segment: Segment,
    /// Backend plugin name
    #[arg(long, value_name = "NAME", default_value = "UCX")]
    pub backend: String,
    /// auto|tcp
    #[arg(long, value_name = "auto|tcp", default_value = "auto")]
    pub transport: String,
    /// Backend parameters k=v,k=v for --lib only (not --compare)
    #[arg(long, value_name = "k=v,...", default_value = "")]
    pub params: String,
    /// Environment K=V,K=V of --lib's processes only (not --compare's), e.g. to A/B metrics
    /// on against off with one library
    #[arg(long = "lib_env", value_name = "K=V,...", default_value = "")]
    pub lib_env: String,
    /// Attach a notification to every request
    #[arg(long, value_name = "BOOL", action = clap::ArgAction::Set, num_args = 0..=1, require_equals = true,
          default_value = "false", default_missing_value = "true", value_parser = switch)]
    pub notif: bool,
    /// The libnixl_capi.so to measure [default: $CARGO_TARGET_DIR/release/libnixl_capi.so, or
    /// target/release/libnixl_capi.so]
    #[arg(long, value_name = "PATH", default_value_os_t = default_lib(), hide_default_value = true)]
    pub lib: PathBuf,
    /// A second library, run alternately with --lib (ratios printed)
    #[arg(long, value_name = "PATH")]
    pub compare: Option<PathBuf>,
    /// Labels of --lib and --compare
    #[arg(long, value_name = "A,B", default_value = "ours,nixl", value_parser = names)]
    pub names: (String, String),
    /// sweep|vllm|sglang|trtllm|mt8|consumers
    #[arg(long, value_name = "NAME", default_value = "sweep")]
    pub workload: String,
    /// Write the rows as CSV
    #[arg(long, value_name = "PATH")]
    pub csv: Option<PathBuf>,
    /// Write the rows as JSON
    #[arg(long, value_name = "PATH")]
    pub json: Option<PathBuf>,
    /// Write a bandwidth plot (PNG)
    #[arg(long, value_name = "PATH")]
    pub plot: Option<PathBuf>,
    /// No progress bar
    #[arg(long = "no_progress", value_name = "BOOL", action = clap::ArgAction::Set, num_args = 0..=1, require_equals = true,
          default_value = "false", default_missing_value = "true", value_parser = switch)]
    pub no_progress: bool,
    /// Skip the memcpy/TCP limits
    #[arg(long = "no_baseline", value_name = "BOOL", action = clap::ArgAction::Set, num_args = 0..=1, require_equals = true,
          default_value = "false", default_missing_value = "true", value_parser = switch)]
    pub no_baseline: bool,
    /// With --compare, each point's iterations run in N rounds that alternate between the
    /// libraries, so a burst of load on a shared machine hits both
    #[arg(long, value_name = "N", default_value = "4", value_parser = at_least_one)]
    pub rounds: usize,
    /// More combinations measured beside --lib/--compare, alternating with them per point
    /// (repeatable). LIB is `ours` (--lib), `nixl` (--compare) or a path; TRANSPORT auto|tcp
    #[arg(long = "variant", value_name = "NAME:LIB:BACKEND:TRANSPORT:PARAMS", value_parser = variant_spec)]
    pub variants: Vec<VariantSpec>,
    /// Internal: bytes per side to allocate.
    #[arg(long = "buf_bytes", default_value = "0", value_parser = size, hide = true)]
    pub buf_bytes: usize,
}

/// A `--variant` as written: the library still by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VariantSpec {
    /// Label in the table.
    pub name: String,
    /// `ours`, `nixl` or a path.
    pub lib: String,
    /// Backend plugin name.
    pub backend: String,
    /// `auto` or `tcp`.
    pub transport: String,
    /// Backend parameters `k=v,k=v`.
    pub params: String,
}

/// One library + backend + transport measured side by side with the others.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variant {
    /// Label in the table (`Lib` column).
    pub name: String,
    /// The `libnixl_capi.so`.
    pub lib: PathBuf,
    /// Backend plugin name.
    pub backend: String,
    /// `auto` or `tcp`.
    pub transport: String,
    /// Backend parameters `k=v,k=v`.
    pub params: String,
    /// Extra environment `K=V,K=V` of its processes.
    pub env: String,
}

/// Why a flag's value was refused; clap prints it after the flag's name.
#[derive(Debug, thiserror::Error)]
enum BadValue {
    /// `--variant` with fewer than five fields.
    #[error("expected NAME:LIB:BACKEND:TRANSPORT:PARAMS")]
    VariantFields,
    /// `--variant` with an empty name.
    #[error("the name must not be empty")]
    EmptyName,
    /// A transport other than `auto` and `tcp`.
    #[error("transport auto or tcp, not {0:?}")]
    Transport(String),
    /// `--op_type` other than READ and WRITE.
    #[error("READ or WRITE")]
    Op,
    /// A segment type other than DRAM.
    #[error("only DRAM runs on this machine")]
    NotDram,
    /// An unknown `--buffer` kind.
    #[error("malloc, huge or shared")]
    Buffer,
    /// `--names` without a comma.
    #[error("takes A,B")]
    Pair,
    /// A size with a suffix other than K, M and G.
    #[error("unknown size suffix {0:?}")]
    SizeSuffix(String),
    /// A size that is not a number.
    #[error("{value:?}: {source}")]
    Number {
        /// The value given.
        value: String,
        /// Why it did not parse.
        source: std::num::ParseIntError,
    },
}

fn variant_spec(v: &str) -> Result<VariantSpec, BadValue> {
    let f: Vec<&str> = v.splitn(5, ':').collect();
    let [name, lib, backend, transport, params] = f[..] else {
        return Err(BadValue::VariantFields);
    };
    if name.is_empty() {
        return Err(BadValue::EmptyName);
    }
    if !matches!(transport, "auto" | "tcp") {
        return Err(BadValue::Transport(transport.into()));
    }
    Ok(VariantSpec {
        name: name.into(),
        lib: lib.into(),
        backend: backend.into(),
        transport: transport.into(),
        params: params.into(),
    })
}

/// Our library's default location: `$CARGO_TARGET_DIR` or `target`, release build.
pub fn default_lib() -> PathBuf {
    let dir =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| PathBuf::from("target"), PathBuf::from);
    dir.join("release").join("libnixl_capi.so")
}

fn at_least_one(v: &str) -> Result<usize, BadValue> {
    size(v).map(|n| n.max(1))
}

/// A switch's optional value: anything but `false` and `0` turns it on.
fn switch(v: &str) -> Result<bool, std::convert::Infallible> {
    Ok(v != "false" && v != "0")
}

fn op_type(v: &str) -> Result<String, BadValue> {
    let op = v.to_ascii_uppercase();
    match op.as_str() {
        "READ" | "WRITE" => Ok(op),
        _ => Err(BadValue::Op),
    }
}

fn dram_only(v: &str) -> Result<String, BadValue> {
    if v.eq_ignore_ascii_case("DRAM") {
        Ok(v.into())
    } else {
        Err(BadValue::NotDram)
    }
}

fn segment(v: &str) -> Result<Segment, BadValue> {
    Segment::parse(v).ok_or(BadValue::Buffer)
}

fn names(v: &str) -> Result<(String, String), BadValue> {
    let (x, y) = v.split_once(',').ok_or(BadValue::Pair)?;
    Ok((x.into(), y.into()))
}

fn size(v: &str) -> Result<usize, BadValue> {
    let v = v.trim();
    let (num, mul) = match v.char_indices().find(|(_, c)| c.is_ascii_alphabetic()) {
        Some((i, _)) => {
            let mul = match v[i..].to_ascii_uppercase().as_str() {
                "K" | "KB" | "KIB" => 1 << 10,
                "M" | "MB" | "MIB" => 1 << 20,
                "G" | "GB" | "GIB" => 1 << 30,
                other => return Err(BadValue::SizeSuffix(other.into())),
            };
            (&v[..i], mul)
        }
        None => (v, 1),
    };
    num.parse::<usize>()
        .map(|n| n * mul)
        .map_err(|source| BadValue::Number {
            value: v.into(),
            source,
        })
}

impl Args {
    /// Everything to measure: `--lib` (first: the ratios are over it), `--compare`, then each
    /// `--variant`.
    pub fn all_variants(&self) -> Result<Vec<Variant>, BenchError> {
        let mut out = vec![Variant {
            name: self.names.0.clone(),
            lib: self.lib.clone(),
            backend: self.backend.clone(),
            transport: self.transport.clone(),
            params: self.params.clone(),
            env: self.lib_env.clone(),
        }];
        if let Some(c) = &self.compare {
            out.push(Variant {
                name: self.names.1.clone(),
                lib: c.clone(),
                backend: self.backend.clone(),
                transport: self.transport.clone(),
                params: String::new(),
                env: String::new(),
            });
        }
        for spec in &self.variants {
            let bad = |why: &str| BenchError::Variant(format!("--variant {}: {why}", spec.name));
            let lib = match spec.lib.as_str() {
                "ours" => self.lib.clone(),
                "nixl" => self
                    .compare
                    .clone()
                    .ok_or_else(|| bad("names nixl without --compare"))?,
                path => path.into(),
            };
            if out.iter().any(|v| v.name == spec.name) {
                return Err(bad("names must be unique"));
            }
            out.push(Variant {
                name: spec.name.clone(),
                lib,
                backend: spec.backend.clone(),
                transport: spec.transport.clone(),
                params: spec.params.clone(),
                env: String::new(),
            });
        }
        Ok(out)
    }

    /// `--params` as pairs.
    pub fn param_pairs(&self) -> Vec<(String, String)> {
        self.params
            .split(',')
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn sizes() {
        assert_eq!(super::size("4K").unwrap(), 4096);
        assert_eq!(super::size("16MiB").unwrap(), 16 << 20);
        assert_eq!(super::size("123").unwrap(), 123);
        assert!(super::size("1X").is_err());
    }

    fn parse(args: &[&str]) -> Result<super::Args, clap::Error> {
        use clap::Parser;
        super::Args::try_parse_from(std::iter::once("nixlbench").chain(args.iter().copied()))
    }

    #[test]
    fn defaults_switches_and_refusals() {
        let a = parse(&[]).unwrap();
        assert_eq!(
            (a.op.as_str(), a.start_block, a.max_block),
            ("WRITE", 4096, 64 << 20)
        );
        assert_eq!(
            (a.num_iter, a.rounds, a.max_point_bytes),
            (1000, 4, 4 << 30)
        );
        assert_eq!(a.names, ("ours".to_string(), "nixl".to_string()));
        assert!(!a.check && !a.notif);
        assert_eq!(a.role, super::Role::Orchestrator);

        let a = parse(&[
            "--op_type=read",
            "--check_consistency",
            "--notif=false",
            "--block_sizes",
            "4K,1M",
            "--num_threads",
            "0",
            "--target_seg_type",
            "dram",
            "--params",
            "",
            "--num_iter",
            "5",
            "--num_iter",
            "7",
            "--role",
            "initiator",
        ])
        .unwrap();
        assert_eq!(a.op, "READ");
        assert!(a.check && !a.notif);
        assert_eq!(a.block_sizes, [4096, 1 << 20]);
        assert_eq!(a.threads, 1, "0 threads means 1");
        assert_eq!(a.num_iter, 7, "later flags win");
        assert_eq!(a.role, super::Role::Initiator);

        for bad in [
            &["--op_type", "COPY"][..],
            &["--initiator_seg_type", "VRAM"],
            &["--buffer", "disk"],
            &["--names", "one"],
            &["--num_iter", "many"],
            &["--bogus"],
        ] {
            assert_eq!(parse(bad).unwrap_err().exit_code(), 2, "{bad:?}");
        }
        assert_eq!(parse(&["--help"]).unwrap_err().exit_code(), 0);
    }

    #[test]
    fn variants() {
        let mut a = parse(&[
            "--variant",
            "fab:ours:LIBFABRIC:tcp:provider=tcp;ofi_rxm,chunk_bytes=1M",
        ])
        .unwrap();
        let v = a.all_variants().unwrap();
        assert_eq!(v.len(), 2);
        assert_eq!(v[1].backend, "LIBFABRIC");
        assert_eq!(v[1].params, "provider=tcp;ofi_rxm,chunk_bytes=1M");
        assert_eq!(v[1].lib, a.lib);
        a.variants
            .push(super::variant_spec("x:nixl:UCX:auto:").unwrap());
        assert!(a.all_variants().is_err(), "nixl without --compare");
        a.variants[1] = super::variant_spec("fab:ours:UCX:auto:").unwrap();
        assert!(a.all_variants().is_err(), "duplicate name");
        assert!(
            super::variant_spec("y:ours:UCX:rdma:").is_err(),
            "bad transport"
        );
        assert!(
            super::variant_spec(":ours:UCX:auto:").is_err(),
            "empty name"
        );
        assert_eq!(parse(&["--variant", "a:b"]).unwrap_err().exit_code(), 2);
    }
}
