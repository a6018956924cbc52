//! The planner resizes the pools during a run through the local-process connector: an
//! over-provisioned fleet is scaled down, and the workers it removes drain first (no request
//! fails, none is cut off), then stop.

mod common;

#[test]
fn planner_scales_down_by_draining_workers() {
    let r = common::run("planner", common::PLANNER_SCALE_DOWN, 120);
    r.assert_sound();
    let series = r.report["replicas"].as_array().expect("replica series");
    let decode: Vec<u64> = series.iter().filter_map(|s| s[2].as_u64()).collect();
    assert_eq!(decode.first(), Some(&4), "{}", r.output);
    assert!(
        decode.iter().any(|&d| d < 4),
        "the planner shrank the decode pool:\n{}",
        r.output
    );
    // Each decision is reported beside what the load needed in hindsight.
    let plan = r.report["plan"]
        .as_array()
        .expect("planned vs needed series");
    assert!(!plan.is_empty(), "{}", r.output);
    assert!(
        plan.iter()
            .all(|p| p["planned"][1].as_u64().is_some() && p["needed"][1].as_u64().is_some()),
        "{}",
        r.output
    );
    assert!(r.output.contains("planned vs needed"), "{}", r.output);
    assert!(r.n("workers_drained") >= 1, "{}", r.output);
    assert_eq!(r.n("workers_drain_timeout"), 0, "{}", r.output);
    assert_eq!(r.n("failed"), 0, "draining cuts nothing off:\n{}", r.output);
    assert_eq!(r.n("worker_deaths"), 0, "{}", r.output);
}
