//! The `nixlbench` command line: `--help` answers with exit code 0, malformed flags are refused
//! with exit code 2 before any process starts.

use std::process::{Command, Output};

fn nixlbench(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_nixlbench"))
        .args(args)
        .output()
        .expect("run nixlbench")
}

#[test]
fn help_exits_zero_and_bad_flags_exit_two() {
    let out = nixlbench(&["--help"]);
    assert_eq!(out.status.code(), Some(0));
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--op_type",
        "--block_sizes",
        "--check_consistency",
        "--compare",
        "K/M/G",
    ] {
        assert!(help.contains(flag), "{flag} missing:\n{help}");
    }
    assert!(
        !help.contains("--buf_bytes"),
        "internal flags stay hidden:\n{help}"
    );
    for args in [
        &["--op_type", "COPY"][..],
        &["--num_iter", "many"],
        &["--initiator_seg_type", "VRAM"],
        &["--no_such_flag"],
    ] {
        assert_eq!(nixlbench(args).status.code(), Some(2), "{args:?}");
    }
}
