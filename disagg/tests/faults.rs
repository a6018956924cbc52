//! Faults: a worker process is SIGKILLed mid-run. Nothing hangs, every request finishes or
//! is reported failed, the surviving prefill workers free every pinned block, and the
//! report counts what happened. The engine runs 4x slower so queues are non-empty at the
//! moment of the kill.

mod common;

#[test]
fn killing_a_decode_worker_reroutes_or_fails_its_requests() {
    let r = common::run(
        "kill-decode",
        &["--quick", "--speedup", "0.25", "--kill", "decode@1.5"],
        150,
    );
    r.assert_sound();
    assert_eq!(r.n("worker_deaths"), 1, "{}", r.output);
    let hit = r.n("retries") + r.n("failed");
    assert!(hit > 0, "the killed worker held requests:\n{}", r.output);
    for (why, _) in r.failures() {
        assert!(
            why.contains("decode worker died"),
            "unexpected failure {why}:\n{}",
            r.output
        );
    }
}

#[test]
fn killing_a_prefill_worker_retries_its_queued_requests_elsewhere() {
    let r = common::run(
        "kill-prefill",
        &[
            "--quick",
            // One prefill worker, 10x slower: it has requests queued when it dies (those it
            // already handed off stream on, untouched).
            "--workers",
            "1,2",
            "--speedup",
            "0.1",
            "--no-local-prefill",
            "--kill",
            "prefill@1.5",
        ],
        150,
    );
    r.assert_sound();
    assert_eq!(r.n("worker_deaths"), 1, "{}", r.output);
    assert!(
        r.n("retries") > 0,
        "queued requests were retried:\n{}",
        r.output
    );
    assert_eq!(r.n("failed"), 0, "retries succeed elsewhere:\n{}", r.output);
}

#[test]
fn push_mode_survives_a_decode_worker_kill() {
    let r = common::run(
        "kill-decode-push",
        &[
            "--quick",
            "--mode",
            "push",
            "--speedup",
            "0.25",
            "--kill",
            "decode@1.5",
        ],
        150,
    );
    r.assert_sound();
    assert_eq!(r.n("worker_deaths"), 1, "{}", r.output);
    assert!(r.n("retries") + r.n("failed") > 0, "{}", r.output);
    for (why, _) in r.failures() {
        assert!(
            why.contains("decode worker died"),
            "unexpected failure {why}:\n{}",
            r.output
        );
    }
}

#[test]
fn push_mode_survives_a_prefill_worker_kill() {
    let r = common::run(
        "kill-prefill-push",
        &[
            "--quick",
            "--mode",
            "push",
            // As in pull mode: one slow prefill worker, with requests queued when it dies.
            "--workers",
            "1,2",
            "--speedup",
            "0.1",
            "--no-local-prefill",
            "--kill",
            "prefill@1.5",
        ],
        150,
    );
    r.assert_sound();
    assert_eq!(r.n("worker_deaths"), 1, "{}", r.output);
    assert!(
        r.n("retries") > 0,
        "queued requests were retried:\n{}",
        r.output
    );
    assert_eq!(r.n("failed"), 0, "retries succeed elsewhere:\n{}", r.output);
}
