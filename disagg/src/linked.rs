//! The `nixl-ffi` implementation of the C ABI, linked into this binary: `nixl-capi-client`'s
//! `linked` table resolves the `nixl_capi_*` symbols at link time, so nothing has to be
//! installed or found at run time.

// Forces the nixl-ffi rlib (and its `#[no_mangle]` C functions) into the link.
use nixl_ffi as _;

/// The C-ABI function table over the linked-in library.
pub fn api() -> nixl_capi_client::Api {
    nixl_capi_client::Api::linked()
}
