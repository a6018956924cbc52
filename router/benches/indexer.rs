//! Our `Indexer` vs `dynamo-kv-router`'s `RadixTree`, side by side on the same event
//! stream (the Mooncake conversation trace expanded into KV events, see `common`):
//! ingest rate, find-matches latency p50/p99 at 8 / 64 / 1,000 workers with 2,000-block
//! prompts, and heap bytes per (block, worker) entry (measured by a counting allocator).
//!
//! `cargo bench -p router --bench indexer` prints a report table first, then runs the
//! criterion groups (about three minutes on two cores). Set `ROUTER_BENCH_WORKERS=8,64`
//! to choose worker counts, and `ROUTER_BENCH_PROFILE=ingest|ingest-dynamo|ingest-ab|
//! memory|expand|match` to loop over one side of one measurement (for `perf record`).

mod common;

use criterion::{BatchSize, Criterion, Throughput};
use dynamo_kv_router::RadixTree;
use router::Indexer;
use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

/// Counts live heap bytes so both indexes' memory is measured the same way.
struct Counting;
static LIVE: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every method forwards to the system allocator with the caller's arguments
// and only adds bookkeeping on an atomic counter.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        // SAFETY: forwarded contract.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        // SAFETY: forwarded contract (calloc can skip zeroing pages that are fresh).
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: forwarded contract.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size, Ordering::Relaxed);
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: forwarded contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn percentile(sorted: &[u64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize] as f64 / 1e3
}

fn build_ours(stream: &common::Stream) -> Indexer {
    let mut index = Indexer::new();
    for (w, e) in &stream.ours {
        index.apply(*w, e);
    }
    index
}

fn build_dynamo(stream: &common::Stream) -> RadixTree {
    let mut tree = RadixTree::new();
    for e in stream.dynamo.iter().cloned() {
        let _ = tree.apply_event(e);
    }
    tree
}

/// Seconds to build each index from the stream, ours then Dynamo's, alternating over
/// `rounds` rounds and keeping each side's best (the machine is shared: the minimum is
/// the least disturbed run). Dynamo's events are cloned before its clock starts, and
/// neither side's drop is timed.
fn ingest_seconds(stream: &common::Stream, rounds: usize) -> (f64, f64) {
    let (mut ours, mut theirs) = (f64::INFINITY, f64::INFINITY);
    for _ in 0..rounds {
        let start = Instant::now();
        let index = build_ours(stream);
        ours = ours.min(start.elapsed().as_secs_f64());
        drop(black_box(index));

        let events = stream.dynamo.clone();
        let start = Instant::now();
        let mut tree = RadixTree::new();
        for e in events {
            let _ = tree.apply_event(e);
        }
        theirs = theirs.min(start.elapsed().as_secs_f64());
        drop(black_box(tree));
    }
    (ours, theirs)
}

fn report(prompts: &[common::Prompt], worker_counts: &[u64]) {
    let queries = common::queries(prompts, 200);
    println!(
        "\nrouter vs dynamo-kv-router 1.6.1 RadixTree — Mooncake conversation trace, block {} tokens, {}-block queries",
        common::BLOCK_SIZE,
        common::QUERY_BLOCKS
    );
    println!(
        "{:>7} {:>10} | {:>12} {:>12} | {:>9} {:>9} {:>9} {:>9} | {:>8} {:>8} | {:>9}",
        "workers",
        "entries",
        "ingest ours",
        "ingest dyn",
        "p50 ours",
        "p99 ours",
        "p50 dyn",
        "p99 dyn",
        "B/e ours",
        "B/e dyn",
        "mean hit"
    );
    for &workers in worker_counts {
        let stream = common::expand(prompts, workers);
        let (ours_s, dyn_s) = ingest_seconds(&stream, 5);
        let ours_rate = stream.blocks as f64 / ours_s / 1e6;
        let dyn_rate = stream.blocks as f64 / dyn_s / 1e6;

        let before = LIVE.load(Ordering::Relaxed);
        let ours = build_ours(&stream);
        let ours_bytes = LIVE.load(Ordering::Relaxed) - before;
        let before = LIVE.load(Ordering::Relaxed);
        let theirs = build_dynamo(&stream);
        let dyn_bytes = LIVE.load(Ordering::Relaxed) - before;
        assert_eq!(ours.entries(), stream.final_entries);

        let (mut ours_ns, mut dyn_ns, mut hit) = (Vec::new(), Vec::new(), 0u64);
        for _round in 0..5 {
            for (seq, locals) in &queries {
                let start = Instant::now();
                let scores = black_box(ours.find_matches(black_box(seq)));
                ours_ns.push(start.elapsed().as_nanos() as u64);
                hit += u64::from(scores.best());
                let input = locals.clone();
                let start = Instant::now();
                let theirs_scores = black_box(theirs.find_matches(input, false));
                dyn_ns.push(start.elapsed().as_nanos() as u64);
                let their_best = theirs_scores.scores.values().copied().max().unwrap_or(0);
                assert_eq!(
                    scores.best(),
                    their_best,
                    "both indexes agree on the best overlap"
                );
            }
        }
        ours_ns.sort_unstable();
        dyn_ns.sort_unstable();
        let entries = stream.final_entries as f64;
        println!(
            "{:>7} {:>10} | {:>9.2} M/s {:>9.2} M/s | {:>6.2} µs {:>6.2} µs {:>6.2} µs {:>6.2} µs | {:>8.1} {:>8.1} | {:>9.1}",
            workers,
            stream.final_entries,
            ours_rate,
            dyn_rate,
            percentile(&ours_ns, 0.5),
            percentile(&ours_ns, 0.99),
            percentile(&dyn_ns, 0.5),
            percentile(&dyn_ns, 0.99),
            ours_bytes as f64 / entries,
            dyn_bytes as f64 / entries,
            hit as f64 / ours_ns.len() as f64,
        );
    }
    println!(
        "(ingest = blocks named by Stored+Removed events per second, one core, best of 5 alternating runs; p50/p99 per find_matches call; B/e = live heap bytes per (block, worker) entry; mean hit = mean best overlap in blocks)\n"
    );
}

/// Runs only our side of one measurement in a loop, for `perf record`:
/// `ROUTER_BENCH_PROFILE=ingest|ingest-dynamo|ingest-ab|expand|match`.
fn profile(prompts: &[common::Prompt], worker_counts: &[u64], what: &str) {
    let queries = common::queries(prompts, 200);
    for &workers in worker_counts {
        let stream = common::expand(prompts, workers);
        println!(
            "{workers}w: {} events, {} blocks",
            stream.ours.len(),
            stream.blocks
        );
        let start = Instant::now();
        let mut work = 0usize;
        if what == "memory" {
            let index = build_ours(&stream);
            println!(
                "{workers}w heap {} entries {}",
                index.heap_bytes(),
                index.entries()
            );
            continue;
        }
        if what == "ingest-ab" {
            let (ours, theirs) = ingest_seconds(&stream, 7);
            let rate = |s: f64| stream.blocks as f64 / s / 1e6;
            println!(
                "{workers}w ingest ours {:.2} M/s, dynamo {:.2} M/s",
                rate(ours),
                rate(theirs)
            );
            continue;
        }
        for _ in 0..10 {
            match what {
                "ingest" => work += black_box(build_ours(&stream)).entries(),
                "ingest-dynamo" => work += black_box(build_dynamo(&stream)).current_size(),
                "expand" => work += black_box(common::expand(prompts, workers)).blocks,
                _ => {
                    let index = build_ours(&stream);
                    let start = Instant::now();
                    for _ in 0..20 {
                        for (seq, _) in &queries {
                            work += index.find_matches(seq).scores.len();
                        }
                    }
                    println!(
                        "{workers}w match: {:?} per query",
                        start.elapsed() / 20 / queries.len() as u32
                    );
                }
            }
        }
        println!(
            "{workers}w {what}: {:?} per round ({work})",
            start.elapsed() / 10
        );
    }
}

fn main() {
    let Some(prompts) = common::load_trace() else {
        println!("skipped: trace {} not found", common::TRACE);
        return;
    };
    let worker_counts: Vec<u64> = std::env::var("ROUTER_BENCH_WORKERS")
        .unwrap_or_else(|_| "8,64,1000".into())
        .split(',')
        .filter_map(|w| w.trim().parse().ok())
        .collect();
    if let Ok(what) = std::env::var("ROUTER_BENCH_PROFILE") {
        profile(&prompts, &worker_counts, &what);
        return;
    }
    report(&prompts, &worker_counts);

    let mut c = Criterion::default()
        .sample_size(10)
        .measurement_time(std::time::Duration::from_secs(4))
        .configure_from_args();
    let queries = common::queries(&prompts, 50);
    for &workers in &worker_counts {
        let stream = common::expand(&prompts, workers);
        let mut group = c.benchmark_group(format!("ingest/{workers}w"));
        group.throughput(Throughput::Elements(stream.blocks as u64));
        // Both sides return the built index so that its drop is not timed.
        group.bench_function("ours", |b| {
            b.iter_batched(|| (), |()| build_ours(&stream), BatchSize::PerIteration)
        });
        group.bench_function("dynamo", |b| {
            b.iter_batched(
                || stream.dynamo.clone(),
                |events| {
                    let mut tree = RadixTree::new();
                    for e in events {
                        let _ = tree.apply_event(e);
                    }
                    tree
                },
                BatchSize::PerIteration,
            )
        });
        group.finish();

        let ours = build_ours(&stream);
        let theirs = build_dynamo(&stream);
        let mut group = c.benchmark_group(format!("find_matches/{workers}w"));
        group.throughput(Throughput::Elements(queries.len() as u64));
        group.bench_function("ours", |b| {
            b.iter(|| {
                queries
                    .iter()
                    .map(|(s, _)| ours.find_matches(s).scores.len())
                    .sum::<usize>()
            })
        });
        group.bench_function("dynamo", |b| {
            b.iter_batched(
                || queries.iter().map(|(_, l)| l.clone()).collect::<Vec<_>>(),
                |inputs| {
                    inputs
                        .into_iter()
                        .map(|l| theirs.find_matches(l, false).scores.len())
                        .sum::<usize>()
                },
                BatchSize::PerIteration,
            )
        });
        group.finish();
    }
    c.final_summary();
}
