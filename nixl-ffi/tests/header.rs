//! The committed header `include/nixl_capi.h` must be exactly what cbindgen generates from
//! this crate now. `NIXL_FFI_BLESS=1` rewrites it instead of failing.

use std::path::Path;

#[test]
fn committed_header_matches_a_fresh_generation() {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml")).unwrap();
    let mut fresh = Vec::new();
    cbindgen::Builder::new()
        .with_crate(crate_dir)
        .with_config(config)
        .generate()
        .expect("cbindgen could not generate the header")
        .write(&mut fresh);
    let fresh = String::from_utf8(fresh).unwrap();
    let path = crate_dir.join("../include/nixl_capi.h");
    if std::env::var_os("NIXL_FFI_BLESS").is_some() {
        std::fs::write(&path, &fresh).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == fresh,
        "include/nixl_capi.h is stale: regenerate it with \
         `NIXL_FFI_BLESS=1 cargo test -p nixl-ffi --test header` and commit it"
    );
}
