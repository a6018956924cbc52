//! The C ABI constants this binding declares by hand (statuses, memory types, transfer
//! operations, thread-sync modes) against `include/nixl_capi.h`, the header nixl-ffi generates
//! and checks against upstream: a value changed or a status added there fails here.

use nixl_capi_client::{MemType, ThreadSync, XferOp, code_name};
use std::collections::BTreeMap;

/// `NAME = value` of each enumerator of `typedef enum <name> { ... } <name>;`.
fn enum_values(header: &str, name: &str) -> BTreeMap<String, i64> {
    let open = format!("typedef enum {name} {{");
    let start = header
        .find(&open)
        .unwrap_or_else(|| panic!("{name} not in the header"));
    let body = &header[start + open.len()..];
    let body = &body[..body.find(&format!("}} {name};")).expect("enum end")];
    body.lines()
        .filter_map(|l| {
            let (k, v) = l.trim().trim_end_matches(',').split_once(" = ")?;
            Some((k.to_string(), v.parse().ok()?))
        })
        .collect()
}

fn header() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../include/nixl_capi.h");
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn every_status_of_the_header_has_our_value_and_name() {
    let statuses = enum_values(&header(), "nixl_capi_status_t");
    assert!(statuses.len() >= 8, "{statuses:?}");
    for (name, value) in statuses {
        let code = i32::try_from(value).expect("an int");
        assert_eq!(
            format!("NIXL_CAPI_{}", code_name(code)),
            name,
            "status {value}"
        );
    }
}

#[test]
fn enum_values_match_the_header() {
    let h = header();
    let check = |enum_name: &str, ours: &[(&str, i32)]| {
        let values = enum_values(&h, enum_name);
        for &(name, v) in ours {
            assert_eq!(values.get(name), Some(&i64::from(v)), "{enum_name}::{name}");
        }
    };
    check(
        "nixl_capi_mem_type_t",
        &[
            ("NIXL_CAPI_MEM_DRAM", MemType::Dram as i32),
            ("NIXL_CAPI_MEM_VRAM", MemType::Vram as i32),
            ("NIXL_CAPI_MEM_BLOCK", MemType::Block as i32),
            ("NIXL_CAPI_MEM_OBJECT", MemType::Object as i32),
            ("NIXL_CAPI_MEM_FILE", MemType::File as i32),
        ],
    );
    check(
        "nixl_capi_xfer_op_t",
        &[
            ("NIXL_CAPI_XFER_OP_READ", XferOp::Read as i32),
            ("NIXL_CAPI_XFER_OP_WRITE", XferOp::Write as i32),
        ],
    );
    check(
        "nixl_capi_thread_sync_t",
        &[
            ("NIXL_CAPI_THREAD_SYNC_NONE", ThreadSync::None as i32),
            ("NIXL_CAPI_THREAD_SYNC_STRICT", ThreadSync::Strict as i32),
            ("NIXL_CAPI_THREAD_SYNC_RW", ThreadSync::Rw as i32),
        ],
    );
}
