//! `include/nixl_capi.h` must be usable in place of upstream's `wrapper.h` (nixl-sys 1.5.2):
//!
//! 1. A C file includes upstream's header and then redeclares every function with *our*
//!    prototypes: any difference in a parameter or return type is a "conflicting types"
//!    error. It also takes the address of every upstream function and is linked against our
//!    `libnixl_capi.so`, so a missing symbol fails the link.
//! 2. A C file includes our header and a renamed copy of upstream's (`up_` prefix) and
//!    statically asserts that every enum constant, enum size, struct size and field offset is
//!    the same.
//!
//! Upstream's header comes from the nixl-sys crate in cargo's registry (`.ci/fetch-nixl-sys.sh`
//! fetches it) or from `NIXL_SYS_SRC`. Without it the test says "skipped", unless
//! `NIXL_RS_REQUIRE` names `nixl-sys` (CI does), which makes that a failure.

use std::path::{Path, PathBuf};
use std::process::Command;

fn upstream_header() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("NIXL_SYS_SRC") {
        return Some(Path::new(&dir).join("wrapper.h")).filter(|p| p.exists());
    }
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cargo")))?;
    let registry = home.join("registry/src");
    std::fs::read_dir(registry)
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.path().join("nixl-sys-1.5.2/wrapper.h"))
        .find(|p| p.exists())
}

/// Names of the functions upstream declares, in order.
fn upstream_functions(header: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = header;
    while let Some(pos) = rest.find("nixl_capi_") {
        let tail = &rest[pos..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        let name = &tail[..end];
        let after = tail[end..].trim_start();
        let before = rest[..pos].trim_end();
        // A declaration: the name is followed by '(' and preceded by a type, not by '*' (a
        // typedef of a pointer) or '(' / ',' (a call or an argument).
        if after.starts_with('(')
            && !before.ends_with('*')
            && !before.ends_with('(')
            && !before.ends_with(',')
            && !names.iter().any(|n| n == name)
        {
            names.push(name.to_owned());
        }
        rest = &tail[end..];
    }
    names
}

/// Our function prototypes: the `extern "C"` section of our header. A returned
/// `enum nixl_capi_status_t` is written without the tag, which names the same type in our
/// header but would be an unknown tag next to upstream's anonymous enum.
fn our_prototypes(ours: &str) -> String {
    let start = ours
        .find("extern \"C\" {\n#endif // __cplusplus\n")
        .unwrap();
    let start = start + ours[start..].find('\n').unwrap() + 1;
    let start = start + ours[start..].find('\n').unwrap() + 1;
    let end = ours.rfind("#ifdef __cplusplus\n}").unwrap();
    ours[start..end].replace("enum nixl_capi_", "nixl_capi_")
}

fn compile_and_run(dir: &Path, name: &str, source: &str, include: &[&Path], link: bool) {
    let src = dir.join(format!("{name}.c"));
    std::fs::write(&src, source).unwrap();
    let bin = dir.join(name);
    let mut cmd = Command::new("cc");
    cmd.args([
        "-std=c11",
        "-Wall",
        "-Wextra",
        "-Werror",
        "-Wno-unused-parameter",
    ]);
    for i in include {
        cmd.arg(format!("-I{}", i.display()));
    }
    cmd.arg(&src).arg("-o").arg(&bin);
    let lib_dir = std::env::current_exe()
        .unwrap()
        .parent()
        .unwrap()
        .to_path_buf();
    if link {
        cmd.arg(format!("-L{}", lib_dir.display()))
            .arg("-lnixl_capi")
            .arg(format!("-Wl,-rpath,{}", lib_dir.display()));
    } else {
        cmd.arg("-c");
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{name}.c does not compile:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    if link {
        let run = Command::new(&bin).output().unwrap();
        assert!(
            run.status.success(),
            "{name} failed: {}",
            String::from_utf8_lossy(&run.stderr)
        );
    }
}

#[test]
fn our_header_is_a_drop_in_for_upstream_wrapper_h() {
    let Some(up_path) = upstream_header() else {
        return test_support::skip(
            "nixl-sys",
            "nixl-sys 1.5.2's wrapper.h not found (run .ci/fetch-nixl-sys.sh or set NIXL_SYS_SRC)",
        );
    };
    if !test_support::have("cc") {
        return test_support::skip("cc", "no C compiler (cc) on PATH");
    }
    let upstream = std::fs::read_to_string(&up_path).unwrap();
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let include = crate_dir.join("../include");
    let ours = std::fs::read_to_string(include.join("nixl_capi.h")).unwrap();
    let dir = std::env::current_exe()
        .unwrap()
        .parent()
        .unwrap()
        .join("header-compat");
    std::fs::create_dir_all(&dir).unwrap();
    let functions = upstream_functions(&upstream);
    assert!(
        functions.len() >= 100,
        "parsed only {} functions",
        functions.len()
    );

    // 1. Signatures and symbols.
    let mut c = String::from("#include \"wrapper.h\"\n#include <stdio.h>\n");
    c += &our_prototypes(&ours);
    c += "\nstatic void (*const table[])(void) = {\n";
    for f in &functions {
        c += &format!("    (void (*)(void))&{f},\n");
    }
    c += "};\nint main(void) {\n    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)\n";
    c += "        if (!table[i]) return 1;\n    return nixl_capi_is_stub() ? 2 : 0;\n}\n";
    compile_and_run(&dir, "signatures", &c, &[up_path.parent().unwrap()], true);

    // 2. Enum values and struct layouts.
    let renamed = upstream
        .replace("nixl_capi_", "up_nixl_capi_")
        .replace("NIXL_CAPI_", "UP_NIXL_CAPI_");
    std::fs::write(dir.join("up_wrapper.h"), renamed).unwrap();
    let mut c =
        String::from("#include \"nixl_capi.h\"\n#include \"up_wrapper.h\"\n#include <stddef.h>\n");
    let mut constants: Vec<&str> = upstream
        .split(|ch: char| !(ch.is_ascii_alphanumeric() || ch == '_'))
        .filter(|w| w.starts_with("NIXL_CAPI_"))
        .collect();
    constants.sort_unstable();
    constants.dedup();
    for k in &constants {
        c += &format!("_Static_assert((long){k} == (long)UP_{k}, \"{k}\");\n");
    }
    for t in [
        "status_t",
        "mem_type_t",
        "thread_sync_t",
        "xfer_op_t",
        "cost_t",
    ] {
        c += &format!(
            "_Static_assert(sizeof(nixl_capi_{t}) == sizeof(up_nixl_capi_{t}), \"{t}\");\n"
        );
    }
    let structs = [
        (
            "nixl_capi_agent_config_t",
            &[
                "enable_prog_thread",
                "enable_listen_thread",
                "listen_port",
                "thread_sync",
                "num_workers",
                "pthr_delay_us",
                "lthr_delay_us",
                "capture_telemetry",
            ][..],
        ),
        (
            "struct nixl_capi_xfer_telemetry_s",
            &[
                "start_time_us",
                "post_duration_us",
                "xfer_duration_us",
                "total_bytes",
                "desc_count",
            ][..],
        ),
    ];
    for (ty, fields) in structs {
        let up = ty.replace("nixl_capi_", "up_nixl_capi_");
        c += &format!("_Static_assert(sizeof({ty}) == sizeof({up}), \"{ty}\");\n");
        for f in fields {
            c += &format!(
                "_Static_assert(offsetof({ty}, {f}) == offsetof({up}, {f}) && sizeof((({ty} *)0)->{f}) == sizeof((({up} *)0)->{f}), \"{f}\");\n"
            );
        }
    }
    c += "void every_function_is_declared(void);\nvoid every_function_is_declared(void) {\n";
    for f in &functions {
        c += &format!("    (void)&{f};\n");
    }
    c += "}\n";
    compile_and_run(&dir, "layout", &c, &[&include, &dir], false);
}
