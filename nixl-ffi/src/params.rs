//! Parameter maps, their iterators, memory-type lists and string lists.

use libc::size_t;
use std::ffi::{CString, c_char};

use nixl_core::{MemType, Params};

use crate::boundary::Failure;
use crate::convert::{SUCCESS, into_handle, out_ptr, to_cstring, write_out};
use crate::status::CapiStatus;
use crate::types::{
    MemTypeArg, nixl_capi_mem_list_t, nixl_capi_param_iter_t, nixl_capi_params_t,
    nixl_capi_string_list_t,
};

/// Backend parameters: a string-to-string map (`nixl_b_params_t`).
pub struct nixl_capi_params_s {
    pub(crate) params: Params,
}

/// A snapshot iterator over a parameter map; the strings it hands out live as long as it.
pub struct nixl_capi_param_iter_s {
    items: Vec<(CString, CString)>,
    next: usize,
}

/// A list of memory types.
pub struct nixl_capi_mem_list_s {
    pub(crate) mems: Vec<MemType>,
}

/// A list of strings; the strings it hands out live as long as it.
pub struct nixl_capi_string_list_s {
    pub(crate) strings: Vec<CString>,
}

/// Creates an empty parameter map, owned by the caller (`nixl_capi_destroy_params`).
///
/// # Safety
/// `params` must be valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nixl_capi_create_params(params: *mut nixl_capi_params_t) -> CapiStatus {
    ffi_boundary! {
        let out = out_ptr(params, "params")?;
        // SAFETY: checked non-NULL.
        unsafe { write_out(out, into_handle(nixl_capi_params_s { params: Params::new() })) };
        SUCCESS
    }
}

/// Sets `key` to `value` (both copied), replacing any previous value.
///
/// # Safety
/// `params` must be a live parameter map; `key` and `value` NUL-terminated strings.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nixl_capi_params_add(
    params: nixl_capi_params_t,
    key: *const c_char,
    value: *const c_char,
) -> CapiStatus {
    ffi_boundary! {
        let params = arg!(mut params);
        let (key, value) = (arg!(str key), arg!(str value));
        params.params.insert(key.to_owned(), value.to_owned());
        SUCCESS
    }
}

/// Destroys a parameter map.
///
/// # Safety
/// `params` must be NULL or a live parameter map; iterators over it may still be used.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nixl_capi_destroy_params(params: nixl_capi_params_t) -> CapiStatus {
    ffi_boundary! {
        drop(arg!(take params));
        SUCCESS
    }
}

/// Tells whether the map is empty.
///
/// # Safety
/// `params` must be a live parameter map, `is_empty` valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nixl_capi_params_is_empty(
    params: nixl_capi_params_t,
    is_empty: *mut bool,
) -> CapiStatus {
    ffi_boundary! {
        let params = arg!(ref params);
        let out = out_ptr(is_empty, "is_empty")?;
        // SAFETY: checked non-NULL.
        unsafe { write_out(out, params.params.is_empty()) };
        SUCCESS
    }
}

/// Creates an iterator over a snapshot of the map, owned by the caller
/// (`nixl_capi_params_destroy_iterator`). Keys come in sorted order.
///
/// # Safety
/// `params` must be a live parameter map, `iter` valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nixl_capi_params_create_iterator(
    params: nixl_capi_params_t,
    iter: *mut nixl_capi_param_iter_t,
) -> CapiStatus {
    ffi_boundary! {
        let params = arg!(ref params);
        let out = out_ptr(iter, "iter")?;
        let items = params.params.iter().map(|(k, v)| (to_cstring(k), to_cstring(v))).collect();
        // SAFETY: checked non-NULL.
        unsafe { write_out(out, into_handle(nixl_capi_param_iter_s { items, next: 0 })) };
        SUCCESS
    }
}

/// Returns the next entry, as upstream: at the end, sets `*has_next = false` and leaves `key`
/// and `value` untouched; otherwise sets them (borrowed from the iterator, valid until it is
/// destroyed) and sets `*has_next` to whether another entry follows.
///
/// # Safety
/// `iter` must be a live iterator; the out pointers valid for writes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nixl_capi_params_iterator_next(
    iter: nixl_capi_param_iter_t,
    key: *mut *const c_char,
    value: *mut *const c_char,
    has_next: *mut bool,
) -> CapiStatus {
    ffi_boundary! {
        let iter = arg!(mut iter);
        let (key, value) = (out_ptr(key, "key")?, out_ptr(value, "value")?);
        let has_next = out_ptr(has_next, "has_next")?;
        let Some((k, v)) = iter.items.get(iter.next) else {
            // SAFETY: checked non-NULL.
            unsafe { write_out(has_next, false) };
            return SUCCESS;
        };
        // SAFETY: all three checked non-NULL.
        unsafe {
            write_out(key, k.as_ptr());
            write_out(value, v.as_ptr());
        }
        iter.next += 1;
        // SAFETY: checked non-NULL.
        unsafe { write_out(has_next, iter.next < iter.items.len()) };
        SUCCESS
    }
}

/// Destroys an iterator; strings it handed out become invalid.
///
/// # Safety
/// `iter` must be NULL or a live iterator.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nixl_capi_params_destroy_iterator(
    iter: nixl_capi_param_iter_t,
) -> CapiStatus {
    ffi_boundary! {
        drop(arg!(take iter));
        SUCCESS
    }
}

/// Destroys a memory-type list.
///
/// # Safety
/// `list` must be NULL or a live memory-type list.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nixl_capi_destroy_mem_list(list: nixl_capi_mem_list_t) -> CapiStatus {
    ffi_boundary! {
        drop(arg!(take list));
        SUCCESS
    }
}

/// Tells whether a memory-type list is empty.
///
/// # Safety
/// `list` must be a live memory-type list, `is_empty` valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nixl_capi_mem_list_is_empty(
    list: nixl_capi_mem_list_t,
    is_empty: *mut bool,
) -> CapiStatus {
    ffi_boundary! {
        let list = arg!(ref list);
        let out = out_ptr(is_empty, "is_empty")?;
        // SAFETY: checked non-NULL.
        unsafe { write_out(out, list.mems.is_empty()) };
        SUCCESS
    }
}

/// Number of memory types in the list.
///
/// # Safety
/// `list` must be a live memory-type list, `size` valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nixl_capi_mem_list_size(
    list: nixl_capi_mem_list_t,
    size: *mut size_t,
) -> CapiStatus {
    ffi_boundary! {
        let list = arg!(ref list);
        let out = out_ptr(size, "size")?;
        // SAFETY: checked non-NULL.
        unsafe { write_out(out, list.mems.len()) };
        SUCCESS
    }
}

/// The memory type at `index`; INVALID_PARAM past the end.
///
/// # Safety
/// `list` must be a live memory-type list, `mem_type` valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nixl_capi_mem_list_get(
    list: nixl_capi_mem_list_t,
    index: size_t,
    mem_type: *mut MemTypeArg,
) -> CapiStatus {
    ffi_boundary! {
        let list = arg!(ref list);
        let out = out_ptr(mem_type, "mem_type")?;
        let m = list.mems.get(index).ok_or_else(|| Failure::invalid(format!("index {index} is past the end ({})", list.mems.len())))?;
        // SAFETY: checked non-NULL.
        unsafe { write_out(out, (*m).into()) };
        SUCCESS
    }
}

/// The upstream name of a memory type ("DRAM", "VRAM", "BLOCK", "OBJECT", "FILE", "UNKNOWN"),
/// in static storage.
///
/// # Safety
/// `str` must be valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nixl_capi_mem_type_to_string(
    mem_type: MemTypeArg,
    str: *mut *const c_char,
) -> CapiStatus {
    ffi_boundary! {
        let out = out_ptr(str, "str")?;
        let name = match mem_type.0 {
            0 => c"DRAM",
            1 => c"VRAM",
            2 => c"BLOCK",
            3 => c"OBJECT",
            4 => c"FILE",
            5 => c"UNKNOWN",
            other => return Err(Failure::invalid(format!("invalid memory type {other}"))),
        };
        // SAFETY: checked non-NULL.
        unsafe { write_out(out, name.as_ptr()) };
        SUCCESS
    }
}

/// Destroys a string list; strings it handed out become invalid.
///
/// # Safety
/// `list` must be NULL or a live string list.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nixl_capi_destroy_string_list(
    list: nixl_capi_string_list_t,
) -> CapiStatus {
    ffi_boundary! {
        drop(arg!(take list));
        SUCCESS
    }
}

/// Number of strings in the list.
///
/// # Safety
/// `list` must be a live string list, `size` valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nixl_capi_string_list_size(
    list: nixl_capi_string_list_t,
    size: *mut size_t,
) -> CapiStatus {
    ffi_boundary! {
        let list = arg!(ref list);
        let out = out_ptr(size, "size")?;
        // SAFETY: checked non-NULL.
        unsafe { write_out(out, list.strings.len()) };
        SUCCESS
    }
}

/// The string at `index`, borrowed from the list (valid until it is destroyed);
/// INVALID_PARAM past the end.
///
/// # Safety
/// `list` must be a live string list, `str` valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nixl_capi_string_list_get(
    list: nixl_capi_string_list_t,
    index: size_t,
    str: *mut *const c_char,
) -> CapiStatus {
    ffi_boundary! {
        let list = arg!(ref list);
        let out = out_ptr(str, "str")?;
        let s = list.strings.get(index).ok_or_else(|| Failure::invalid(format!("index {index} is past the end ({})", list.strings.len())))?;
        // SAFETY: checked non-NULL.
        unsafe { write_out(out, s.as_ptr()) };
        SUCCESS
    }
}
