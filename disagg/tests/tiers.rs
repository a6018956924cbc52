//! The host tier and cross-worker prefix fetch with real bytes: blocks evicted from a
//! worker's pool are offloaded to its host tier and onboarded back, prefill workers READ a
//! prefix another prefill worker holds, every onboarded or fetched block is verified, and
//! the report says where every prompt block came from. Faults: a holder killed mid-fetch and
//! a holder naming a stale slot both fall back to recomputing, nothing wrong is ever served.
//! Impossible tiers are refused before any worker starts.

mod common;

#[test]
fn evicted_blocks_come_back_from_the_host_tier_and_prefixes_from_peers() {
    // Small pools evict; three prefill workers see prefixes the others computed.
    let r = common::run(
        "tiers",
        &[
            "--quick",
            "--workers",
            "3,2",
            "--blocks",
            "64",
            "--host-tier-blocks",
            "128",
        ],
        120,
    );
    r.assert_sound();
    let o = &r.output;
    assert_eq!(r.n("failed"), 0, "{o}");
    assert!(r.n("blocks_offloaded") > 0, "evictions offloaded:\n{o}");
    assert!(r.n("blocks_from_host") > 0, "host tier onboarded:\n{o}");
    assert!(r.n("fetches") > 0, "prefixes fetched:\n{o}");
    assert!(r.n("blocks_from_peer") > 0, "fetched blocks used:\n{o}");
    assert!(r.n("blocks_recomputed") > 0, "{o}");
    assert!(r.n("blocks_from_gpu") > 0, "{o}");
    assert!(
        r.n("tier_blocks_verified") >= r.n("blocks_from_host") + r.n("blocks_from_peer"),
        "every onboarded and fetched block verified:\n{o}"
    );
    assert_eq!(
        r.n("peer_blocks_rejected"),
        0,
        "lent blocks stay pinned until read: their bytes match:\n{o}"
    );
    assert!(o.contains("prompt blocks from  GPU"), "report line:\n{o}");
    assert!(
        r.n("engine_blocks_from_peer") > 0,
        "the engine's timing takes fetched prefixes as loaded:\n{o}"
    );
}

#[test]
fn a_prefix_reused_after_eviction_is_onboarded_and_not_computed_again() {
    // One prefill worker with a 64-block pool: a 16-block prefix, then 4 unique prompts of
    // 32 blocks that evict it, then the prefix again with a new suffix.
    let line = |ms: u32, isl: u32, ids: &[u32]| {
        format!(
            "{{\"timestamp\": {ms}, \"input_length\": {isl}, \"output_length\": 4, \"hash_ids\": {ids:?}}}\n"
        )
    };
    let mut trace = line(0, 1024, &[1, 2]);
    for k in 0..4 {
        trace += &line(
            400 * (k + 1),
            2048,
            &[10 + 4 * k, 11 + 4 * k, 12 + 4 * k, 13 + 4 * k],
        );
    }
    trace += &line(2400, 1536, &[1, 2, 99]);
    let path = std::env::temp_dir().join(format!("disagg-reuse-{}.jsonl", std::process::id()));
    std::fs::write(&path, trace).unwrap();
    let r = common::run(
        "reuse",
        &[
            "--trace",
            path.to_str().unwrap(),
            "--workers",
            "1,1",
            "--blocks",
            "64",
            "--host-tier-blocks",
            "128",
            "--no-local-prefill",
        ],
        120,
    );
    let _ = std::fs::remove_file(&path);
    r.assert_sound();
    let o = &r.output;
    assert_eq!(r.n("failed"), 0, "{o}");
    assert!(
        r.n("blocks_offloaded") >= 16,
        "the prefix was evicted:\n{o}"
    );
    assert!(r.n("blocks_from_host") >= 16, "and onboarded back:\n{o}");
    // The engine's model of the tier made the same move: its timing loaded the 16 blocks
    // instead of computing them.
    assert_eq!(r.n("engine_blocks_from_host"), 16, "{o}");
    assert!(o.contains("engine timing"), "report line:\n{o}");
}

#[test]
fn push_mode_uses_the_host_tier_and_fetched_prefixes_too() {
    let r = common::run(
        "tiers-push",
        &[
            "--quick",
            "--mode",
            "push",
            "--workers",
            "3,2",
            "--blocks",
            "64",
            "--host-tier-blocks",
            "128",
        ],
        120,
    );
    r.assert_sound();
    let o = &r.output;
    assert_eq!(r.n("failed"), 0, "{o}");
    assert!(r.n("blocks_from_host") > 0, "{o}");
    assert!(r.n("blocks_from_peer") > 0, "{o}");
    assert_eq!(r.n("peer_blocks_rejected"), 0, "{o}");
}

#[test]
fn without_tier_and_fetch_every_block_is_gpu_or_recomputed() {
    let r = common::run(
        "no-tiers",
        &[
            "--quick",
            "--workers",
            "3,2",
            "--blocks",
            "64",
            "--host-tier-blocks",
            "0",
            "--fetch",
            "off",
        ],
        120,
    );
    r.assert_sound();
    let o = &r.output;
    assert_eq!(r.n("failed"), 0, "{o}");
    for k in [
        "blocks_offloaded",
        "blocks_from_host",
        "fetches",
        "blocks_from_peer",
    ] {
        assert_eq!(r.n(k), 0, "{k}:\n{o}");
    }
}

#[test]
fn a_stale_lent_block_is_rejected_and_recomputed() {
    let r = common::run(
        "stale-fetch",
        &["--quick", "--workers", "3,2", "--inject-stale-fetch"],
        120,
    );
    r.assert_sound();
    let o = &r.output;
    assert_eq!(r.n("failed"), 0, "{o}");
    assert!(r.n("fetches") > 0, "{o}");
    assert!(
        r.n("peer_blocks_rejected") > 0,
        "the holder's stale slot was caught:\n{o}"
    );
}

#[test]
fn a_holder_killed_mid_fetch_means_recompute_not_a_hang() {
    let r = common::run(
        "kill-holder",
        &["--quick", "--workers", "3,2", "--kill-holder-mid-fetch"],
        120,
    );
    r.assert_sound();
    let o = &r.output;
    assert_eq!(r.n("worker_deaths"), 1, "the holder died:\n{o}");
    assert!(r.n("fetch_fallbacks") >= 1, "the fetch fell back:\n{o}");
    for (why, _) in r.failures() {
        assert!(why.contains("died"), "unexpected failure {why}:\n{o}");
    }
}

#[test]
fn a_tier_larger_than_memory_is_refused_up_front() {
    let r = common::run(
        "huge-tier",
        &["--quick", "--host-tier-blocks", "1000000000"],
        30,
    );
    assert_eq!(r.code, Some(2), "{}", r.output);
    assert!(
        r.output.contains("--host-tier-blocks 1000000000") && r.output.contains("MemAvailable"),
        "{}",
        r.output
    );
    assert!(r.report.is_null(), "no run, no report");
}
