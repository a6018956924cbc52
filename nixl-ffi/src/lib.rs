//! # nixl-ffi: NIXL's C API over nixl-core
//!
//! This crate builds `libnixl_capi.so` and `libnixl_capi.a`, a binary-compatible drop-in for
//! the `nixl_capi_*` API of NIXL 1.5 (the `wrapper.h` of the `nixl-sys` 1.5.2 crate): the same
//! symbols, argument types, enum values, struct layouts and ownership rules. Programs that link
//! or `dlopen` NIXL's C API, such as `nixl-sys` built with its `stub-api` feature, run on it
//! unchanged. The header is `include/nixl_capi.h`, generated from this crate by cbindgen.
//!
//! The crate holds no logic: every exported function checks its pointers, converts its
//! arguments, calls [`nixl_core::Agent`], and converts the result. Each one runs inside
//! [`ffi_boundary!`], which turns panics into `NIXL_CAPI_ERROR_EXCEPTION` and records the
//! precise NIXL status and message of a failure for [`status::nixl_capi_ext_last_status`].
//!
//! Ownership, as upstream: handles created by a `nixl_capi_create_*` call are owned by the
//! caller and freed by the matching `destroy`/`release` call; buffers returned by
//! `nixl_capi_get_local_md`, `nixl_capi_get_local_partial_md` and `nixl_capi_opt_args_get_*`
//! and the name returned by `nixl_capi_load_remote_md` are `malloc`ed for the caller to `free`;
//! strings handed out by lists, iterators and notification maps are borrowed from them.
#![allow(non_camel_case_types)]

#[macro_use]
mod boundary;
#[macro_use]
mod convert;
pub mod agent;
pub mod dlist;
pub mod dlist_ext;
pub mod mem_view;
pub mod memory;
pub mod metadata;
pub mod metrics;
pub mod notif;
pub mod opt_args;
pub mod params;
pub mod plugins;
pub mod status;
pub mod types;
pub mod xfer;

/// Reports whether this library is a stub that forwards to another one: always `false`, the
/// calls are implemented here.
#[unsafe(no_mangle)]
pub extern "C" fn nixl_capi_is_stub() -> bool {
    false
}
