//! Command-line options of `sim replay` (clap, derive).

use clap::{Parser, Subcommand};
use sim::workload::{ArrivalShape, SyntheticSpec};
use std::path::PathBuf;

/// `sim <command>`.
#[derive(Debug, Parser)]
#[command(
    name = "sim",
    long_about = None,
    about = "GPU-free LLM engine simulator: replays a trace or a synthetic load",
    subcommand_required = true,
    arg_required_else_help = true
)]
pub struct Cli {
    /// What to run.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Replay a trace or synthetic load with one or more routing policies; print a table,
    /// optionally write JSON and PNG plots.
    Replay(Args),
}

/// Parsed options of `sim replay`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Mooncake JSONL trace (hash ids of --trace-block-size tokens)
    #[arg(
        long,
        value_name = "FILE",
        help_heading = "Workload",
        required_unless_present = "synthetic",
        conflicts_with = "synthetic"
    )]
    pub trace: Option<PathBuf>,
    /// Tokens per trace hash id
    #[arg(
        long,
        value_name = "N",
        default_value_t = 512,
        help_heading = "Workload"
    )]
    pub trace_block_size: usize,
    /// poisson:RATE | sin:MEAN:AMPLITUDE:PERIOD_S | step:BEFORE:AFTER:AT_S
    #[arg(long, value_name = "SHAPE", value_parser = shape, help_heading = "Workload")]
    pub synthetic: Option<ArrivalShape>,
    /// Synthetic load length, s [default: 60]
    #[arg(long, value_name = "S", help_heading = "Workload")]
    pub duration: Option<f64>,
    /// Synthetic prompt tokens [default: 3000]
    #[arg(long, value_name = "N", help_heading = "Workload")]
    pub isl: Option<usize>,
    /// Synthetic output tokens [default: 150]
    #[arg(long, value_name = "N", help_heading = "Workload")]
    pub osl: Option<usize>,
    /// Synthetic shared-prefix groups [default: 0]
    #[arg(long, value_name = "N", help_heading = "Workload")]
    pub prefix_groups: Option<usize>,
    /// Synthetic shared fraction of the prompt [default: 0]
    #[arg(long, value_name = "F", help_heading = "Workload")]
    pub prefix_ratio: Option<f64>,
    /// Replay only the first N requests
    #[arg(long, value_name = "N", help_heading = "Workload")]
    pub limit: Option<usize>,
    /// Divide arrival times by X
    #[arg(
        long,
        value_name = "X",
        default_value_t = 1.0,
        help_heading = "Workload"
    )]
    pub speedup: f64,

    /// Aggregated workers
    #[arg(long, value_name = "N", default_value_t = 8, help_heading = "Cluster")]
    pub workers: usize,
    /// Disaggregated: P prefill and D decode workers
    #[arg(long, value_name = "P:D", value_parser = pools, help_heading = "Cluster")]
    pub disagg: Option<(usize, usize)>,
    /// Disaggregated KV transfer size
    #[arg(
        long,
        value_name = "B",
        default_value_t = 131_072.0,
        help_heading = "Cluster"
    )]
    pub kv_bytes_per_token: f64,
    /// Disaggregated link bandwidth, GB/s
    #[arg(
        long,
        value_name = "G",
        default_value_t = 64.0,
        help_heading = "Cluster"
    )]
    pub link_gbps: f64,
    /// Comma-separated: round-robin,random,oracle-cost,dynamo,ours, ours:itl=W (ITL weight of
    /// ours, default 64), ours:reserve=S (S s of cost for a one-pass prompt on an idle worker,
    /// default 0), ours+tier (prices host-tier hits), ours+fetch (and peer fetch)
    #[arg(
        long = "policy",
        value_name = "LIST",
        value_delimiter = ',',
        default_value = "round-robin",
        help_heading = "Cluster"
    )]
    pub policies: Vec<String>,
    /// Autoscaler
    #[arg(long, value_name = "NAME", default_value = "none",
          value_parser = ["none", "load-rules"], help_heading = "Cluster")]
    pub planner: String,
    /// Planner interval, s
    #[arg(
        long,
        value_name = "S",
        default_value_t = 5.0,
        help_heading = "Cluster"
    )]
    pub interval_s: f64,
    /// Replica start-up delay, s
    #[arg(
        long,
        value_name = "S",
        default_value_t = 30.0,
        help_heading = "Cluster"
    )]
    pub startup_s: f64,

    /// Tokens per KV block
    #[arg(
        long,
        value_name = "N",
        default_value_t = 64,
        help_heading = "Engine (Dynamo mocker defaults)"
    )]
    pub block_size: usize,
    /// KV blocks per worker
    #[arg(
        long,
        value_name = "N",
        default_value_t = 16_384,
        help_heading = "Engine (Dynamo mocker defaults)"
    )]
    pub num_gpu_blocks: usize,
    /// Running sequences per worker
    #[arg(
        long,
        value_name = "N",
        default_value_t = 256,
        help_heading = "Engine (Dynamo mocker defaults)"
    )]
    pub max_num_seqs: usize,
    /// Tokens per scheduler step
    #[arg(
        long,
        value_name = "N",
        default_value_t = 8_192,
        help_heading = "Engine (Dynamo mocker defaults)"
    )]
    pub max_batched_tokens: usize,
    /// JSON tables instead of polynomials
    #[arg(
        long,
        value_name = "FILE",
        help_heading = "Engine (Dynamo mocker defaults)"
    )]
    pub perf_table: Option<PathBuf>,
    /// Disable prefix caching
    #[arg(long, help_heading = "Engine (Dynamo mocker defaults)")]
    pub no_prefix_cache: bool,

    /// Host-memory tier of X times the GPU blocks per worker (moves priced for Llama-3-70B,
    /// 320 KiB/token, 50 GB/s host and peer links)
    #[arg(long, value_name = "X", default_value_t = 0.0, value_parser = tier_multiple,
          help_heading = "KV tiers")]
    pub host_tier: f64,
    /// Pull a prompt's cached prefix from the worker holding it
    #[arg(long, help_heading = "KV tiers")]
    pub fetch: bool,

    /// Seed of the synthetic load and random policies
    #[arg(long, value_name = "N", default_value_t = 0, help_heading = "Output")]
    pub seed: u64,
    /// TTFT SLA, ms
    #[arg(
        long,
        value_name = "X",
        default_value_t = 2_000.0,
        help_heading = "Output"
    )]
    pub sla_ttft_ms: f64,
    /// ITL SLA, ms
    #[arg(
        long,
        value_name = "X",
        default_value_t = 50.0,
        help_heading = "Output"
    )]
    pub sla_itl_ms: f64,
    /// Write all reports as JSON
    #[arg(long, value_name = "FILE", help_heading = "Output")]
    pub json: Option<PathBuf>,
    /// Write PNG plots (ttft_cdf.png, replicas.png)
    #[arg(long, value_name = "DIR", help_heading = "Output")]
    pub plot_dir: Option<PathBuf>,
}

impl Args {
    /// The synthetic load asked for, if `--synthetic` was given.
    pub fn synthetic_spec(&self) -> Option<SyntheticSpec> {
        let mut syn = SyntheticSpec {
            arrivals: self.synthetic.clone()?,
            seed: self.seed,
            trace_block_size: self.trace_block_size,
            ..SyntheticSpec::default()
        };
        set(&mut syn.duration_s, self.duration);
        set(&mut syn.input_length, self.isl);
        set(&mut syn.output_length, self.osl);
        set(&mut syn.prefix_groups, self.prefix_groups);
        set(&mut syn.shared_prefix_ratio, self.prefix_ratio);
        Some(syn)
    }
}

fn set<T>(field: &mut T, given: Option<T>) {
    if let Some(v) = given {
        *field = v;
    }
}

/// Why a flag's value was refused; clap prints it after the flag's name.
#[derive(Debug, thiserror::Error)]
enum BadValue {
    /// A number that did not parse.
    #[error("{value:?}: {source}")]
    Number {
        /// The value given.
        value: String,
        /// Why it did not parse.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A negative or non-finite tier multiple.
    #[error("{0}: want a multiple >= 0")]
    Multiple(f64),
    /// `--disagg` without the colon.
    #[error("wants P:D")]
    Pools,
    /// A synthetic shape with too few fields.
    #[error("{spec}: missing field {index}")]
    MissingField {
        /// The shape given.
        spec: String,
        /// The field's position.
        index: usize,
    },
    /// A synthetic shape's name that is none of poisson, sin and step.
    #[error("unknown synthetic shape {0}")]
    Shape(String),
}

/// `value` as a number, or the error that names it.
fn number<T: std::str::FromStr>(value: &str) -> Result<T, BadValue>
where
    T::Err: std::error::Error + Send + Sync + 'static,
{
    value.parse().map_err(|e: T::Err| BadValue::Number {
        value: value.into(),
        source: Box::new(e),
    })
}

fn tier_multiple(v: &str) -> Result<f64, BadValue> {
    let x: f64 = number(v)?;
    if x >= 0.0 && x.is_finite() {
        Ok(x)
    } else {
        Err(BadValue::Multiple(x))
    }
}

fn pools(v: &str) -> Result<(usize, usize), BadValue> {
    let (p, d) = v.split_once(':').ok_or(BadValue::Pools)?;
    Ok((number(p)?, number(d)?))
}

fn shape(s: &str) -> Result<ArrivalShape, BadValue> {
    let parts: Vec<&str> = s.split(':').collect();
    let num = |index: usize| -> Result<f64, BadValue> {
        let field = parts.get(index).ok_or_else(|| BadValue::MissingField {
            spec: s.into(),
            index,
        })?;
        number(field)
    };
    Ok(match parts[0] {
        "poisson" => ArrivalShape::Poisson { rate: num(1)? },
        "sin" => ArrivalShape::Sinusoidal {
            mean: num(1)?,
            amplitude: num(2)?,
            period_s: num(3)?,
        },
        "step" => ArrivalShape::Step {
            before: num(1)?,
            after: num(2)?,
            at_s: num(3)?,
        },
        other => return Err(BadValue::Shape(other.into())),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Args, clap::Error> {
        let cli = Cli::try_parse_from(["sim", "replay"].iter().chain(args))?;
        let Command::Replay(a) = cli.command;
        Ok(a)
    }

    #[test]
    fn synthetic_flags_build_the_spec() {
        let a = parse(&[
            "--synthetic",
            "step:1:4:30",
            "--isl",
            "100",
            "--seed",
            "7",
            "--policy",
            "dynamo,ours:itl=8",
            "--disagg",
            "2:3",
        ])
        .unwrap();
        let syn = a.synthetic_spec().unwrap();
        assert_eq!(syn.input_length, 100);
        assert_eq!(syn.output_length, SyntheticSpec::default().output_length);
        assert_eq!(syn.seed, 7);
        assert_eq!(a.policies, ["dynamo", "ours:itl=8"]);
        assert_eq!(a.disagg, Some((2, 3)));
        assert_eq!(a.workers, 8);
    }

    #[test]
    fn exactly_one_workload_and_known_values() {
        for bad in [
            &[][..],
            &["--trace", "t.jsonl", "--synthetic", "poisson:1"],
            &["--synthetic", "burst:1"],
            &["--synthetic", "poisson:1", "--planner", "magic"],
            &["--synthetic", "poisson:1", "--disagg", "2"],
        ] {
            let e = parse(bad).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{bad:?}: {e}");
        }
        assert_eq!(parse(&["--help"]).unwrap_err().exit_code(), 0);
        assert!(
            parse(&["--trace", "t.jsonl"])
                .unwrap()
                .synthetic_spec()
                .is_none()
        );
    }
}
