//! Optional arguments (`nixl_opt_args_t`).

use libc::size_t;
use std::ffi::{c_char, c_void};

use nixl_core::{BackendHandle, OptArgs};

use crate::convert::{SUCCESS, into_handle, malloc_bytes, out_ptr, try_copy, write_out};
use crate::status::CapiStatus;
use crate::types::{nixl_capi_backend_t, nixl_capi_opt_args_t};

/// Optional arguments, with upstream's notification fields (`notifMsg`, `hasNotif` and the
/// resulting `notif`) kept as upstream keeps them.
#[derive(Default)]
pub struct nixl_capi_opt_args_s {
    backends: Vec<BackendHandle>,
    notif_msg: Vec<u8>,
    has_notif: bool,
    notif: Option<Vec<u8>>,
    custom_param: Vec<u8>,
    skip_desc_merge: bool,
    ip_addr: Option<String>,
    port: Option<u16>,
    include_conn_info: bool,
    metadata_label: Option<String>,
}

impl nixl_capi_opt_args_s {
    fn to_core(&self) -> OptArgs {
        OptArgs {
            backends: self.backends.clone(),
            notif: self.notif.clone(),
            skip_desc_merge: self.skip_desc_merge,
            ip_addr: self.ip_addr.clone(),
            port: self.port.unwrap_or(OptArgs::default().port),
            include_conn_info: self.include_conn_info,
            metadata_label: self.metadata_label.clone(),
        }
    }
}

/// The core optional arguments of a possibly-NULL handle.
///
/// # Safety
/// `args` must be NULL or a live optional-arguments handle.
pub(crate) unsafe fn opt(args: nixl_capi_opt_args_t) -> Option<OptArgs> {
    // SAFETY: `args` is NULL or a live handle (this function's `# Safety`).
    unsafe { args.as_ref() }.map(nixl_capi_opt_args_s::to_core)
}

/// Creates empty optional arguments, owned by the caller (`nixl_capi_destroy_opt_args`).
///
/// # Safety
/// `args` must be valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nixl_capi_create_opt_args(args: *mut nixl_capi_opt_args_t) -> CapiStatus {
    ffi_boundary! {
        let out = out_ptr(args, "args")?;
        // SAFETY: checked non-NULL.
        unsafe { write_out(out, into_handle(nixl_capi_opt_args_s::default())) };
        SUCCESS
    }
}

/// Destroys optional arguments.
///
/// # Safety
/// `args` must be NULL or a live optional-arguments handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nixl_capi_destroy_opt_args(args: nixl_capi_opt_args_t) -> CapiStatus {
    ffi_boundary! {
        drop(arg!(take args));
        SUCCESS
    }
}

/// Adds a backend to restrict (or hint) the backends a call may use.
///
/// # Safety
/// `args` must be a live optional-arguments handle and `backend` a live backend handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nixl_capi_opt_args_add_backend(
    args: nixl_capi_opt_args_t,
    backend: nixl_capi_backend_t,
) -> CapiStatus {
    ffi_boundary! {
        let args = arg!(mut args);
        let backend = arg!(ref backend);
        args.backends.push(backend.handle);
        SUCCESS
    }
}

/// Sets the notification message (copied). As upstream, it becomes the request's
/// notification once `has_notif` is set (or if it already was).
///
/// # Safety
/// `args` must be a live handle; `data` NULL (only with `len == 0`) or valid for `len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nixl_capi_opt_args_set_notif_msg(
    args: nixl_capi_opt_args_t,
    data: *const c_void,
    len: size_t,
) -> CapiStatus {
    ffi_boundary! {
        let args = arg!(mut args);
        let msg = arg!(bytes data, len, "data");
        args.notif_msg = try_copy(msg, "the notification")?;
        if args.has_notif || args.notif.is_some() {
            args.notif = Some(args.notif_msg.clone());
        }
        SUCCESS
    }
}

/// Copies the notification message into a `malloc`ed buffer the caller frees with `free`;
/// an empty message gives `NULL` and 0.
///
/// # Safety
/// `args` must be a live handle; `data` and `len` valid for writes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nixl_capi_opt_args_get_notif_msg(
    args: nixl_capi_opt_args_t,
    data: *mut *mut c_void,
    len: *mut size_t,
) -> CapiStatus {
    ffi_boundary! {
        let args = arg!(ref args);
        let (data, len) = (out_ptr(data, "data")?, out_ptr(len, "len")?);
        let msg = args.notif.as_ref().unwrap_or(&args.notif_msg);
        let (buf, n) = malloc_bytes(msg, true)?;
        // SAFETY: both checked non-NULL.
        unsafe {
            write_out(data, buf);
            write_out(len, n);
        }
        SUCCESS
    }
}

/// Sets the backend-defined custom parameter (copied). No backend of this library reads it.
///
/// # Safety
/// `args` must be a live handle; `data` NULL (only with `len == 0`) or valid for `len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nixl_capi_opt_args_set_custom_param(
    args: nixl_capi_opt_args_t,
    data: *const c_void,
    len: size_t,
) -> CapiStatus {
    ffi_boundary! {
        let args = arg!(mut args);
        args.custom_param = try_copy(arg!(bytes data, len, "data"), "the custom parameter")?;
        SUCCESS
    }
}

/// Copies the custom parameter into a `malloc`ed buffer the caller frees with `free`; unset
/// gives `NULL` and 0.
///
/// # Safety
/// `args` must be a live handle; `data` and `len` valid for writes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nixl_capi_opt_args_get_custom_param(
    args: nixl_capi_opt_args_t,
    data: *mut *mut c_void,
    len: *mut size_t,
) -> CapiStatus {
    ffi_boundary! {
        let args = arg!(ref args);
        let (data, len) = (out_ptr(data, "data")?, out_ptr(len, "len")?);
        let (buf, n) = malloc_bytes(&args.custom_param, true)?;
        // SAFETY: both checked non-NULL.
        unsafe {
            write_out(data, buf);
            write_out(len, n);
        }
        SUCCESS
    }
}

/// Enables (with the current message) or disables the notification.
///
/// # Safety
/// `args` must be a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nixl_capi_opt_args_set_has_notif(
    args: nixl_capi_opt_args_t,
    has_notif: bool,
) -> CapiStatus {
    ffi_boundary! {
        let args = arg!(mut args);
        args.has_notif = has_notif;
        args.notif = has_notif.then(|| args.notif_msg.clone());
        SUCCESS
    }
}

/// Whether a notification is enabled.
///
/// # Safety
/// `args` must be a live handle, `has_notif` valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nixl_capi_opt_args_get_has_notif(
    args: nixl_capi_opt_args_t,
    has_notif: *mut bool,
) -> CapiStatus {
    ffi_boundary! {
        let args = arg!(ref args);
        let out = out_ptr(has_notif, "has_notif")?;
        // SAFETY: checked non-NULL.
        unsafe { write_out(out, args.notif.is_some() || args.has_notif) };
        SUCCESS
    }
}

/// Disables merging of contiguous descriptors in `nixl_capi_make_xfer_req`.
///
/// # Safety
/// `args` must be a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nixl_capi_opt_args_set_skip_desc_merge(
    args: nixl_capi_opt_args_t,
    skip_merge: bool,
) -> CapiStatus {
    ffi_boundary! {
        arg!(mut args).skip_desc_merge = skip_merge;
        SUCCESS
    }
}

/// Whether descriptor merging is disabled.
///
/// # Safety
/// `args` must be a live handle, `skip_merge` valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nixl_capi_opt_args_get_skip_desc_merge(
    args: nixl_capi_opt_args_t,
    skip_merge: *mut bool,
) -> CapiStatus {
    ffi_boundary! {
        let args = arg!(ref args);
        let out = out_ptr(skip_merge, "skip_merge")?;
        // SAFETY: checked non-NULL.
        unsafe { write_out(out, args.skip_desc_merge) };
        SUCCESS
    }
}

/// Sets the peer address for the peer-to-peer metadata calls (copied).
///
/// # Safety
/// `args` must be a live handle, `ip_addr` a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nixl_capi_opt_args_set_ip_addr(
    args: nixl_capi_opt_args_t,
    ip_addr: *const c_char,
) -> CapiStatus {
    ffi_boundary! {
        let args = arg!(mut args);
        let ip = arg!(str ip_addr);
        args.ip_addr = Some(ip.to_owned());
        SUCCESS
    }
}

/// Sets the peer port for the peer-to-peer metadata calls (default 8888).
///
/// # Safety
/// `args` must be a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nixl_capi_opt_args_set_port(
    args: nixl_capi_opt_args_t,
    port: u16,
) -> CapiStatus {
    ffi_boundary! {
        arg!(mut args).port = Some(port);
        SUCCESS
    }
}

/// Extension: with a non-empty descriptor list, `nixl_capi_get_local_partial_md` and
/// `nixl_capi_send_local_partial_md` also include connection info (NIXL's
/// `includeConnInfo`, which upstream's C API cannot set).
///
/// # Safety
/// `args` must be a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nixl_capi_ext_opt_args_set_include_conn_info(
    args: nixl_capi_opt_args_t,
    include: bool,
) -> CapiStatus {
    ffi_boundary! {
        arg!(mut args).include_conn_info = include;
        SUCCESS
    }
}

/// Extension: the central-store label of partial metadata (NIXL's `metadataLabel`, which
/// upstream's C API cannot set); copied.
///
/// # Safety
/// `args` must be a live handle, `label` a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nixl_capi_ext_opt_args_set_metadata_label(
    args: nixl_capi_opt_args_t,
    label: *const c_char,
) -> CapiStatus {
    ffi_boundary! {
        let args = arg!(mut args);
        let label = arg!(str label);
        args.metadata_label = Some(label.to_owned());
        SUCCESS
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::nixl_capi_status_t;

    #[test]
    fn notif_follows_upstream_rules() {
        let mut a = nixl_capi_opt_args_s::default();
        let p: nixl_capi_opt_args_t = &mut a;
        // SAFETY: `p` points to a live value for the whole test.
        unsafe {
            assert_eq!(
                nixl_capi_opt_args_set_notif_msg(p, b"hi".as_ptr().cast(), 2),
                nixl_capi_status_t::NIXL_CAPI_SUCCESS.into()
            );
            assert_eq!(
                (*p).to_core().notif,
                None,
                "a message alone does not enable the notification"
            );
            nixl_capi_opt_args_set_has_notif(p, true);
            assert_eq!((*p).to_core().notif.as_deref(), Some(&b"hi"[..]));
            nixl_capi_opt_args_set_notif_msg(p, b"yo".as_ptr().cast(), 2);
            assert_eq!((*p).to_core().notif.as_deref(), Some(&b"yo"[..]));
            nixl_capi_opt_args_set_has_notif(p, false);
            assert_eq!((*p).to_core().notif, None);
            assert_eq!(
                nixl_capi_opt_args_set_notif_msg(p, std::ptr::null(), 3),
                nixl_capi_status_t::NIXL_CAPI_ERROR_INVALID_PARAM.into()
            );
        }
    }

    #[test]
    fn ext_setters_reach_the_core_args() {
        let mut a = nixl_capi_opt_args_s::default();
        let p: nixl_capi_opt_args_t = &mut a;
        // SAFETY: `p` points to a live value for the whole test.
        unsafe {
            assert!(!(*p).to_core().include_conn_info);
            nixl_capi_ext_opt_args_set_include_conn_info(p, true);
            assert!((*p).to_core().include_conn_info);
            assert_eq!(
                nixl_capi_ext_opt_args_set_metadata_label(p, c"kv".as_ptr()),
                nixl_capi_status_t::NIXL_CAPI_SUCCESS.into()
            );
            assert_eq!((*p).to_core().metadata_label.as_deref(), Some("kv"));
            assert_eq!(
                nixl_capi_ext_opt_args_set_metadata_label(p, std::ptr::null()),
                nixl_capi_status_t::NIXL_CAPI_ERROR_INVALID_PARAM.into()
            );
        }
    }
}
