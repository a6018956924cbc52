//! nixlbench-style command-line flags (`--flag value` or `--flag=value`).

use nixl_benches::buffer::Segment;
use std::path::PathBuf;

/// Which process this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Runs the sweep, spawns one initiator per library, prints the report.
    Orchestrator,
    /// Drives transfers through one library; spawns its target.
    Initiator,
    /// Owns the remote buffer.
    Target,
}

/// Parsed flags.
#[derive(Debug, Clone)]
pub struct Args {
    /// Process role (internal flag `--role`).
    pub role: Role,
    /// `--op_type READ|WRITE`.
    pub op: String,
    /// `--start_block_size`.
    pub start_block: usize,
    /// `--max_block_size`.
    pub max_block: usize,
    /// `--start_batch_size`.
    pub start_batch: usize,
    /// `--max_batch_size`.
    pub max_batch: usize,
    /// `--block_sizes a,b,c`: explicit block sizes instead of the doubling sweep.
    pub block_sizes: Vec<usize>,
    /// `--request_bytes`: if set, batch = request_bytes / block (overrides the batch sweep).
    pub request_bytes: Option<usize>,
    /// `--num_iter`.
    pub num_iter: usize,
    /// `--warmup_iter`.
    pub warmup_iter: usize,
    /// `--large_blk_iter_ftr`: iterations divided by this for requests ≥ 1 MiB.
    pub large_iter_factor: usize,
    /// `--max_point_bytes`: iterations capped so one point moves at most this.
    pub max_point_bytes: usize,
    /// `--num_threads`.
    pub threads: usize,
    /// `--check_consistency`.
    pub check: bool,
    /// `--initiator_seg_type`/`--target_seg_type` (DRAM only).
    pub seg_type: String,
    /// `--buffer malloc|huge`: how both sides allocate.
    pub segment: Segment,
    /// `--backend` plugin name.
    pub backend: String,
    /// `--transport auto|tcp`.
    pub transport: String,
    /// `--params k=v,k=v`: backend parameters for `--lib` only (not `--compare`).
    pub params: String,
    /// `--lib_env K=V,K=V`: environment of `--lib`'s processes only (not `--compare`'s),
    /// e.g. to A/B metrics on against off with one library.
    pub lib_env: String,
    /// `--notif`: attach a notification to every request.
    pub notif: bool,
    /// `--lib PATH`.
    pub lib: PathBuf,
    /// `--compare PATH`.
    pub compare: Option<PathBuf>,
    /// `--names A,B`: labels of `--lib` and `--compare`.
    pub names: (String, String),
    /// `--workload sweep|vllm|sglang|trtllm|mt8|consumers`.
    pub workload: String,
    /// `--csv PATH`.
    pub csv: Option<PathBuf>,
    /// `--json PATH`.
    pub json: Option<PathBuf>,
    /// `--plot PATH` (PNG).
    pub plot: Option<PathBuf>,
    /// `--no_progress`.
    pub no_progress: bool,
    /// `--no_baseline`: skip the memcpy/TCP limits.
    pub no_baseline: bool,
    /// `--rounds N`: with `--compare`, each point's iterations run in N rounds that alternate
    /// between the libraries (default 4), so a burst of load on a shared machine hits both.
    pub rounds: usize,
    /// Internal: bytes per side to allocate.
    pub buf_bytes: usize,
}

/// Our library's default location: `$CARGO_TARGET_DIR` or `target`, release build.
pub fn default_lib() -> PathBuf {
    let dir =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| PathBuf::from("target"), PathBuf::from);
    dir.join("release").join("libnixl_capi.so")
}

fn size(v: &str) -> Result<usize, String> {
    let v = v.trim();
    let (num, mul) = match v.char_indices().find(|(_, c)| c.is_ascii_alphabetic()) {
        Some((i, _)) => {
            let mul = match v[i..].to_ascii_uppercase().as_str() {
                "K" | "KB" | "KIB" => 1 << 10,
                "M" | "MB" | "MIB" => 1 << 20,
                "G" | "GB" | "GIB" => 1 << 30,
                other => return Err(format!("unknown size suffix {other:?}")),
            };
            (&v[..i], mul)
        }
        None => (v, 1),
    };
    num.parse::<usize>()
        .map(|n| n * mul)
        .map_err(|e| format!("{v:?}: {e}"))
}

/// Usage text.
pub const USAGE: &str = "nixlbench (nixl-rs) — transfers through any libnixl_capi.so
  --op_type READ|WRITE        --start_block_size N   --max_block_size N
  --start_batch_size N        --max_batch_size N     --request_bytes N (batch = N / block)
  --block_sizes 4K,64K,...    (explicit list instead of the doubling sweep)
  --num_iter N  --warmup_iter N  --large_blk_iter_ftr N  --max_point_bytes N
  --num_threads N  --check_consistency  --notif
  --initiator_seg_type DRAM --target_seg_type DRAM  --buffer malloc|huge
  --backend UCX  --transport auto|tcp  --params k=v,k=v (backend params, --lib only)
  --lib_env K=V,K=V (environment of --lib's processes only)
  --lib PATH  --compare PATH  --names ours,nixl  --rounds N (alternations per point, default 4)
  --workload sweep|vllm|sglang|trtllm|mt8|consumers
  --csv PATH  --json PATH  --plot PATH  --no_progress  --no_baseline
Sizes accept K/M/G suffixes.";

impl Args {
    /// `--params` as pairs.
    pub fn param_pairs(&self) -> Vec<(String, String)> {
        self.params
            .split(',')
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect()
    }

    /// Parses `std::env::args()`.
    pub fn parse() -> Result<Args, String> {
        let mut a = Args {
            role: Role::Orchestrator,
            op: "WRITE".into(),
            start_block: 4096,
            max_block: 64 << 20,
            start_batch: 1,
            max_batch: 1,
            block_sizes: Vec::new(),
            request_bytes: None,
            num_iter: 1000,
            warmup_iter: 100,
            large_iter_factor: 16,
            max_point_bytes: 4 << 30,
            threads: 1,
            check: false,
            seg_type: "DRAM".into(),
            segment: Segment::Malloc,
            backend: "UCX".into(),
            transport: "auto".into(),
            params: String::new(),
            lib_env: String::new(),
            notif: false,
            lib: default_lib(),
            compare: None,
            names: ("ours".into(), "nixl".into()),
            workload: "sweep".into(),
            csv: None,
            json: None,
            plot: None,
            no_progress: false,
            no_baseline: false,
            rounds: 4,
            buf_bytes: 0,
        };
        let mut it = std::env::args().skip(1);
        while let Some(flag) = it.next() {
            let (name, inline) = match flag.split_once('=') {
                Some((n, v)) => (n.to_string(), Some(v.to_string())),
                None => (flag.clone(), None),
            };
            let switch = matches!(
                name.as_str(),
                "--check_consistency"
                    | "--notif"
                    | "--no_progress"
                    | "--no_baseline"
                    | "--help"
                    | "-h"
            );
            let val = if switch {
                inline.unwrap_or_else(|| "true".into())
            } else {
                inline
                    .or_else(|| it.next())
                    .ok_or_else(|| format!("{name} needs a value"))?
            };
            let on = val != "false" && val != "0";
            match name.as_str() {
                "--help" | "-h" => return Err(USAGE.into()),
                "--role" => {
                    a.role = match val.as_str() {
                        "initiator" => Role::Initiator,
                        "target" => Role::Target,
                        _ => Role::Orchestrator,
                    }
                }
                "--op_type" => a.op = val.to_ascii_uppercase(),
                "--start_block_size" => a.start_block = size(&val)?,
                "--max_block_size" => a.max_block = size(&val)?,
                "--start_batch_size" => a.start_batch = size(&val)?,
                "--max_batch_size" => a.max_batch = size(&val)?,
                "--request_bytes" => a.request_bytes = Some(size(&val)?),
                "--block_sizes" => {
                    a.block_sizes = val.split(',').map(size).collect::<Result<_, _>>()?
                }
                "--num_iter" => a.num_iter = size(&val)?,
                "--warmup_iter" => a.warmup_iter = size(&val)?,
                "--large_blk_iter_ftr" => a.large_iter_factor = size(&val)?.max(1),
                "--max_point_bytes" => a.max_point_bytes = size(&val)?,
                "--num_threads" => a.threads = size(&val)?.max(1),
                "--check_consistency" => a.check = on,
                "--notif" => a.notif = on,
                "--no_progress" => a.no_progress = on,
                "--no_baseline" => a.no_baseline = on,
                "--rounds" => a.rounds = size(&val)?.max(1),
                "--initiator_seg_type" | "--target_seg_type" => {
                    if !val.eq_ignore_ascii_case("DRAM") {
                        return Err(format!("{name} {val}: only DRAM runs on this machine"));
                    }
                    a.seg_type = val;
                }
                "--buffer" => {
                    a.segment = Segment::parse(&val).ok_or_else(|| format!("--buffer {val}"))?
                }
                "--backend" => a.backend = val,
                "--transport" => a.transport = val,
                "--params" => a.params = val,
                "--lib_env" => a.lib_env = val,
                "--lib" => a.lib = val.into(),
                "--compare" => a.compare = Some(val.into()),
                "--names" => {
                    let (x, y) = val.split_once(',').ok_or("--names takes A,B")?;
                    a.names = (x.into(), y.into());
                }
                "--workload" => a.workload = val,
                "--csv" => a.csv = Some(val.into()),
                "--json" => a.json = Some(val.into()),
                "--plot" => a.plot = Some(val.into()),
                "--buf_bytes" => a.buf_bytes = size(&val)?,
                other => return Err(format!("unknown flag {other}\n{USAGE}")),
            }
        }
        if a.op != "READ" && a.op != "WRITE" {
            return Err(format!("--op_type {}: READ or WRITE", a.op));
        }
        Ok(a)
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
}
