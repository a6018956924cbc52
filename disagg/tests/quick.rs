//! The CI variant of the main command, end to end: worker processes, real KV blocks through
//! the C ABI, both transfer styles.

mod common;

#[test]
fn quick_pull_serves_everything_and_verifies_every_block() {
    let r = common::run("pull", &["--quick", "--mode", "pull"], 120);
    r.assert_sound();
    assert_eq!(r.code, Some(0), "{}", r.output);
    assert_eq!(r.n("failed"), 0, "{}", r.output);
    assert!(
        r.n("freed_by_notification") > 0,
        "pull frees by notification:\n{}",
        r.output
    );
    assert!(
        r.n("kv_event_batches") > 0,
        "router got KV events:\n{}",
        r.output
    );
    assert!(r.out.join("report.png").exists());
}

#[test]
fn quick_push_serves_everything_and_verifies_every_block() {
    let r = common::run("push", &["--quick", "--mode", "push"], 120);
    r.assert_sound();
    assert_eq!(r.code, Some(0), "{}", r.output);
    assert_eq!(r.n("failed"), 0, "{}", r.output);
    assert_eq!(
        r.n("freed_by_notification"),
        0,
        "push pins nothing:\n{}",
        r.output
    );
}

#[test]
fn damaged_blocks_are_caught_and_the_request_fails() {
    let r = common::run(
        "corrupt",
        &["--quick", "--no-local-prefill", "--inject-corruption"],
        120,
    );
    // Each decode worker damages its first received block: both are caught.
    assert!(r.n("blocks_corrupt") >= 1, "{}", r.output);
    assert_ne!(r.code, Some(0), "a corrupt run must fail:\n{}", r.output);
    let f = r.failures();
    assert!(
        f.iter().any(|(why, _)| why.contains("failed verification")),
        "{f:?}\n{}",
        r.output
    );
    assert_eq!(r.n("unaccounted"), 0, "{}", r.output);
}
