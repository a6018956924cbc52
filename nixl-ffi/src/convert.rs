//! Pointer checks and conversions shared by the exported functions.

use libc::size_t;
use std::ffi::{CStr, CString, c_char, c_int, c_void};

use crate::boundary::Failure;
use crate::status::nixl_capi_status_t;

/// Reads a pointer argument of an exported function, as rustls-ffi's `try_ref_from_ptr!`:
/// the one audited `unsafe` for every argument, NULL and bad input returned from the body
/// through `?` as `INVALID_PARAM`.
///
/// | form | gives | reads the argument as |
/// |---|---|---|
/// | `arg!(ref p)` | `&T` | a live handle ([`borrow`]) |
/// | `arg!(mut p)` | `&mut T` | a live handle, not used elsewhere during the call ([`borrow_mut`]) |
/// | `arg!(take p)` | `Box<T>` | a live handle the caller gives up ([`take`]) |
/// | `arg!(str p)` | `&str` | a NUL-terminated UTF-8 string ([`c_str`]) |
/// | `arg!(bytes p, len, "what")` | `&[u8]` | `len` readable bytes ([`bytes`]) |
/// | `arg!(ints p, n)` | `&[c_int]` | `n` readable ints ([`ints`]) |
/// | `arg!(agent p)` | `&Agent` | a live agent handle (`agent::agent_ref`) |
/// | `arg!(opt p)` | `Option<OptArgs>` | NULL or live optional arguments (`opt_args::opt`) |
///
/// The name in an error message is the argument's; `arg!(ref p, "what")` names it otherwise.
///
/// Use it only in the body of an exported `unsafe extern "C" fn`: its `# Safety` section
/// requires each such argument to be NULL or valid as the table says for the whole call, and
/// that requirement is what the `unsafe` inside relies on (each helper checks NULL itself).
macro_rules! arg {
    (ref $p:ident) => { arg!(ref $p, stringify!($p)) };
    (mut $p:ident) => { arg!(mut $p, stringify!($p)) };
    (take $p:ident) => { arg!(take $p, stringify!($p)) };
    (ints $p:ident, $n:expr) => { arg!(ints $p, $n, stringify!($p)) };
    (ref $p:ident, $what:expr) => {{
        let (p, what) = ($p, $what);
        // SAFETY: `p` is NULL (refused) or a live handle: the export's `# Safety` (see `arg!`).
        unsafe { $crate::convert::borrow(p, what) }?
    }};
    (mut $p:ident, $what:expr) => {{
        let (p, what) = ($p, $what);
        // SAFETY: `p` is NULL (refused) or a live handle used by nothing else during the call:
        // the export's `# Safety` (see `arg!`).
        unsafe { $crate::convert::borrow_mut(p, what) }?
    }};
    (take $p:ident, $what:expr) => {{
        let (p, what) = ($p, $what);
        // SAFETY: `p` is NULL (refused) or a live handle the caller gives up: the export's
        // `# Safety` (see `arg!`).
        unsafe { $crate::convert::take(p, what) }?
    }};
    (str $p:ident) => {{
        let (p, what) = ($p, stringify!($p));
        // SAFETY: `p` is NULL (refused) or a NUL-terminated string valid for the call: the
        // export's `# Safety` (see `arg!`).
        unsafe { $crate::convert::c_str(p, what) }?
    }};
    (bytes $p:ident, $len:expr, $what:expr) => {{
        let (p, len, what) = ($p, $len, $what);
        // SAFETY: `p` is NULL (refused unless `len` is 0) or valid for reads of `len` bytes
        // for the call: the export's `# Safety` (see `arg!`).
        unsafe { $crate::convert::bytes(p, len, what) }?
    }};
    (ints $p:ident, $n:expr, $what:expr) => {{
        let (p, n, what) = ($p, $n, $what);
        // SAFETY: `p` is NULL (refused unless `n` is 0) or valid for reads of `n` ints for the
        // call: the export's `# Safety` (see `arg!`).
        unsafe { $crate::convert::ints(p, n, what) }?
    }};
    (agent $p:ident) => {{
        let p = $p;
        // SAFETY: `p` is NULL (refused) or a live agent handle: the export's `# Safety`.
        unsafe { $crate::agent::agent_ref(p) }?
    }};
    (opt $p:ident) => {{
        let p = $p;
        // SAFETY: `p` is NULL (no options) or a live optional-arguments handle: the export's
        // `# Safety` (see `arg!`).
        unsafe { $crate::opt_args::opt(p) }
    }};
}

/// Returned by successful calls.
pub const SUCCESS: Result<nixl_capi_status_t, Failure> = Ok(nixl_capi_status_t::NIXL_CAPI_SUCCESS);

/// Borrows a handle the caller passed in.
///
/// # Safety
/// `p` must be NULL or point to a live `T` created by this library and not used mutably
/// elsewhere for `'a`.
pub unsafe fn borrow<'a, T>(p: *const T, what: &str) -> Result<&'a T, Failure> {
    // SAFETY: guaranteed by the caller for non-NULL `p`.
    unsafe { p.as_ref() }.ok_or_else(|| Failure::invalid(format!("{what} is NULL")))
}

/// Borrows a handle mutably.
///
/// # Safety
/// As [`borrow`], and no other reference to `*p` may exist for `'a`.
pub unsafe fn borrow_mut<'a, T>(p: *mut T, what: &str) -> Result<&'a mut T, Failure> {
    // SAFETY: guaranteed by the caller for non-NULL `p`.
    unsafe { p.as_mut() }.ok_or_else(|| Failure::invalid(format!("{what} is NULL")))
}

/// Takes back ownership of a handle created with [`into_handle`].
///
/// # Safety
/// `p` must be NULL or a pointer returned by [`into_handle`] for a `T` and not freed since.
pub unsafe fn take<T>(p: *mut T, what: &str) -> Result<Box<T>, Failure> {
    if p.is_null() {
        return Err(Failure::invalid(format!("{what} is NULL")));
    }
    // SAFETY: guaranteed by the caller: `p` came from `Box::into_raw` and is still owned.
    Ok(unsafe { Box::from_raw(p) })
}

/// Hands ownership of a new handle to the caller.
pub fn into_handle<T>(value: T) -> *mut T {
    Box::into_raw(Box::new(value))
}

/// Checks an output pointer before any work is done.
pub fn out_ptr<T>(p: *mut T, what: &str) -> Result<*mut T, Failure> {
    if p.is_null() {
        Err(Failure::invalid(format!("{what} (output) is NULL")))
    } else {
        Ok(p)
    }
}

/// Writes an output value.
///
/// # Safety
/// `p` must have been checked by [`out_ptr`] and be valid for a write of `T`.
pub unsafe fn write_out<T>(p: *mut T, value: T) {
    // SAFETY: guaranteed by the caller; `write` does not read or drop the old contents.
    unsafe { p.write(value) }
}

/// Borrows a NUL-terminated UTF-8 string argument.
///
/// # Safety
/// `p` must be NULL or point to a NUL-terminated string that stays valid for `'a`.
pub unsafe fn c_str<'a>(p: *const c_char, what: &str) -> Result<&'a str, Failure> {
    if p.is_null() {
        return Err(Failure::invalid(format!("{what} is NULL")));
    }
    // SAFETY: guaranteed by the caller.
    unsafe { CStr::from_ptr(p) }
        .to_str()
        .map_err(|_| Failure::invalid(format!("{what} is not valid UTF-8")))
}

/// Borrows `len` bytes at `data`; NULL is allowed only with `len == 0`.
///
/// # Safety
/// `data` must be NULL or valid for reads of `len` bytes for `'a`.
pub unsafe fn bytes<'a>(data: *const c_void, len: size_t, what: &str) -> Result<&'a [u8], Failure> {
    if len == 0 {
        return Ok(&[]);
    }
    if data.is_null() {
        return Err(Failure::invalid(format!(
            "{what} is NULL but its length is {len}"
        )));
    }
    // SAFETY: guaranteed by the caller.
    Ok(unsafe { std::slice::from_raw_parts(data.cast::<u8>(), len) })
}

/// Borrows an array of `count` C ints; NULL is allowed only with `count == 0`.
///
/// # Safety
/// `data` must be NULL or valid for reads of `count` ints for `'a`.
pub unsafe fn ints<'a>(
    data: *const c_int,
    count: size_t,
    what: &str,
) -> Result<&'a [c_int], Failure> {
    if count == 0 {
        return Ok(&[]);
    }
    if data.is_null() {
        return Err(Failure::invalid(format!(
            "{what} is NULL but its count is {count}"
        )));
    }
    // SAFETY: guaranteed by the caller.
    Ok(unsafe { std::slice::from_raw_parts(data, count) })
}

/// Makes room for `extra` more elements in `v`, or fails with a BACKEND status (as upstream's
/// `std::bad_alloc`): a size from the caller must never abort the process.
pub fn try_grow<T>(v: &mut Vec<T>, extra: usize, what: &str) -> Result<(), Failure> {
    v.try_reserve(extra).map_err(|e| {
        Failure::from(nixl_core::NixlError::new(
            nixl_core::Status::Backend,
            format!("cannot allocate {what} ({extra} more elements): {e}"),
        ))
    })
}

/// Resizes `v` to `n` elements (new ones are `fill`), failing instead of aborting when the
/// memory cannot be had.
pub fn try_resize<T: Clone>(v: &mut Vec<T>, n: usize, fill: T, what: &str) -> Result<(), Failure> {
    if let Some(extra) = n.checked_sub(v.len()) {
        try_grow(v, extra, what)?;
    }
    v.resize(n, fill);
    Ok(())
}

/// Copies caller bytes into a new vector, failing instead of aborting.
pub fn try_copy(data: &[u8], what: &str) -> Result<Vec<u8>, Failure> {
    let mut v = Vec::new();
    try_grow(&mut v, data.len(), what)?;
    v.extend_from_slice(data);
    Ok(v)
}

/// Copies bytes into a `malloc`ed buffer the caller frees with `free`.
/// An empty input gives `(NULL, 0)` when `empty_is_null`, as upstream's `opt_args_get_*`.
pub fn malloc_bytes(data: &[u8], empty_is_null: bool) -> Result<(*mut c_void, usize), Failure> {
    if data.is_empty() && empty_is_null {
        return Ok((std::ptr::null_mut(), 0));
    }
    // SAFETY: malloc has no preconditions; at least one byte so the result is unique.
    let buf = unsafe { libc::malloc(data.len().max(1)) };
    if buf.is_null() {
        return Err(Failure::from(nixl_core::NixlError::new(
            nixl_core::Status::Backend,
            format!("malloc of {} bytes failed", data.len()),
        )));
    }
    // SAFETY: `buf` holds at least `data.len()` bytes and does not overlap `data`.
    unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), buf.cast::<u8>(), data.len()) };
    Ok((buf, data.len()))
}

/// Copies a string into a `malloc`ed NUL-terminated buffer the caller frees with `free`.
pub fn malloc_cstr(s: &str) -> Result<*mut c_char, Failure> {
    let mut v = Vec::with_capacity(s.len() + 1);
    v.extend_from_slice(s.as_bytes());
    v.push(0);
    malloc_bytes(&v, false).map(|(p, _)| p.cast::<c_char>())
}

/// A C string for a value handed out as a borrowed `const char *` (interior NULs escaped).
pub fn to_cstring(s: &str) -> CString {
    CString::new(s.replace('\0', "\\0")).unwrap_or_default()
}
