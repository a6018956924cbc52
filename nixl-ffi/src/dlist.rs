//! Descriptor lists: transfer (`xfer_dlist`), registration (`reg_dlist`) and remote
//! (`remote_dlist`, for memory views).

use libc::size_t;
use std::ffi::{c_char, c_int, c_void};
use std::io::Write;

use nixl_core::{Desc, DescList, MemType, RegDesc, RegDescList, XferDescList};

use crate::boundary::{CapiResult, Failure};
use crate::convert::{SUCCESS, into_handle, out_ptr, try_copy, try_resize, write_out};
use crate::status::CapiStatus;
use crate::types::{
    MemTypeArg, nixl_capi_reg_dlist_t, nixl_capi_remote_dlist_t, nixl_capi_xfer_dlist_t,
};

/// A transfer descriptor list (`nixl_xfer_dlist_t`).
pub struct nixl_capi_xfer_dlist_s {
    pub(crate) list: XferDescList,
}

/// A registration descriptor list (`nixl_reg_dlist_t`).
pub struct nixl_capi_reg_dlist_s {
    pub(crate) list: RegDescList,
}

/// A remote descriptor list (`nixl_remote_dlist_t`): descriptors that each name their agent.
pub struct nixl_capi_remote_dlist_s {
    pub(crate) list: DescList<(Desc, String)>,
}

/// What the shared list operations need.
trait Dlist<T: Clone + Default> {
    fn list(&mut self) -> &mut DescList<T>;
}

impl Dlist<Desc> for nixl_capi_xfer_dlist_s {
    fn list(&mut self) -> &mut XferDescList {
        &mut self.list
    }
}

impl Dlist<RegDesc> for nixl_capi_reg_dlist_s {
    fn list(&mut self) -> &mut RegDescList {
        &mut self.list
    }
}

/// # Safety
/// `p` must be NULL or a live list handle; `out` NULL or valid for a write.
unsafe fn get_type<T: Clone + Default>(p: *mut impl Dlist<T>, out: *mut MemTypeArg) -> CapiResult {
    let d = arg!(mut p, "dlist");
    let out = out_ptr(out, "mem_type")?;
    // SAFETY: checked non-NULL.
    unsafe { write_out(out, d.list().mem_type().into()) };
    SUCCESS
}

/// # Safety
/// As [`get_type`].
unsafe fn count<T: Clone + Default>(p: *mut impl Dlist<T>, out: *mut size_t) -> CapiResult {
    let d = arg!(mut p, "dlist");
    let out = out_ptr(out, "count")?;
    // SAFETY: checked non-NULL.
    unsafe { write_out(out, d.list().len()) };
    SUCCESS
}

/// # Safety
/// As [`get_type`].
unsafe fn is_empty<T: Clone + Default>(p: *mut impl Dlist<T>, out: *mut bool) -> CapiResult {
    let d = arg!(mut p, "dlist");
    let out = out_ptr(out, "is_empty")?;
    // SAFETY: checked non-NULL.
    unsafe { write_out(out, d.list().is_empty()) };
    SUCCESS
}

/// Applies `f` to a list's descriptors.
fn edit<T: Clone + Default>(
    d: &mut impl Dlist<T>,
    f: impl FnOnce(&mut Vec<T>) -> CapiResult,
) -> CapiResult {
    f(d.list().descs_mut())
}

fn remove_at<T>(v: &mut Vec<T>, index: c_int) -> CapiResult {
    match usize::try_from(index).ok().filter(|&i| i < v.len()) {
        Some(i) => {
            v.remove(i);
            SUCCESS
        }
        // Upstream throws std::out_of_range, which its wrapper reports as BACKEND.
        None => {
            Err(Failure::invalid(format!("index {index} is out of range ({})", v.len())).folded())
        }
    }
}

fn print_list(kind: &str, mem: MemType, lines: impl Iterator<Item = String>) -> CapiResult {
    let mut out = std::io::stdout().lock();
    // A closed stdout is not the caller's error; the list is still fine.
    let _ = writeln!(out, "{kind} of type {mem}:");
    for line in lines {
        let _ = writeln!(out, "  {line}");
    }
    SUCCESS
}

fn desc_line(d: &Desc) -> String {
    format!("addr=0x{:x} len={} dev_id={}", d.addr, d.len, d.dev_id)
}

/// Creates an empty transfer descriptor list, owned by the caller
/// (`nixl_capi_destroy_xfer_dlist`). `NIXL_CAPI_MEM_UNKNOWN` and other values are
/// INVALID_PARAM.
///
/// # Safety
/// `dlist` must be valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nixl_capi_create_xfer_dlist(
    mem_type: MemTypeArg,
    dlist: *mut nixl_capi_xfer_dlist_t,
) -> CapiStatus {
    ffi_boundary! {
        let mem = mem_type.get()?;
        let out = out_ptr(dlist, "dlist")?;
        // SAFETY: checked non-NULL.
        unsafe { write_out(out, into_handle(nixl_capi_xfer_dlist_s { list: XferDescList::new(mem) })) };
        SUCCESS
    }
}

/// Destroys a transfer descriptor list.
///
/// # Safety
/// `dlist` must be NULL or a live transfer descriptor list.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nixl_capi_destroy_xfer_dlist(dlist: nixl_capi_xfer_dlist_t) -> CapiStatus {
    ffi_boundary! { drop(arg!(take dlist)); SUCCESS }
}

/// The list's memory type.
///
/// # Safety
/// `dlist` must be a live list, `mem_type` valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nixl_capi_xfer_dlist_get_type(
    dlist: nixl_capi_xfer_dlist_t,
    mem_type: *mut MemTypeArg,
) -> CapiStatus {
    // SAFETY: the helper's `# Safety` is this function's, for the same arguments.
    ffi_boundary! { unsafe { get_type(dlist, mem_type) } }
}

/// Appends a descriptor.
///
/// # Safety
/// `dlist` must be a live list.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nixl_capi_xfer_dlist_add_desc(
    dlist: nixl_capi_xfer_dlist_t,
    addr: usize,
    len: size_t,
    dev_id: u64,
) -> CapiStatus {
    ffi_boundary! {
        edit(arg!(mut dlist), |v| { v.push(Desc::new(addr as u64, len as u64, dev_id)); SUCCESS })
    }
}

/// Number of descriptors.
///
/// # Safety
/// `dlist` must be a live list, `count` valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nixl_capi_xfer_dlist_desc_count(
    dlist: nixl_capi_xfer_dlist_t,
    count: *mut size_t,
) -> CapiStatus {
    // SAFETY: the helper's `# Safety` is this function's, for the same arguments.
    ffi_boundary! { unsafe { self::count(dlist, count) } }
}

/// Number of descriptors (deprecated upstream alias of `nixl_capi_xfer_dlist_desc_count`).
///
/// # Safety
/// `dlist` must be a live list, `len` valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nixl_capi_xfer_dlist_len(
    dlist: nixl_capi_xfer_dlist_t,
    len: *mut size_t,
) -> CapiStatus {
    // SAFETY: the helper's `# Safety` is this function's, for the same arguments.
    ffi_boundary! { unsafe { count(dlist, len) } }
}

/// Whether the list is empty.
///
/// # Safety
/// `dlist` must be a live list, `is_empty` valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nixl_capi_xfer_dlist_is_empty(
    dlist: nixl_capi_xfer_dlist_t,
    is_empty: *mut bool,
) -> CapiStatus {
    // SAFETY: the helper's `# Safety` is this function's, for the same arguments.
    ffi_boundary! { unsafe { self::is_empty(dlist, is_empty) } }
}

/// Releases spare capacity.
///
/// # Safety
/// `dlist` must be a live list.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nixl_capi_xfer_dlist_trim(dlist: nixl_capi_xfer_dlist_t) -> CapiStatus {
    ffi_boundary! { edit(arg!(mut dlist), |v| { v.shrink_to_fit(); SUCCESS }) }
}

/// Removes the descriptor at `index`; out of range is NIXL_CAPI_ERROR_BACKEND, as upstream
/// (INVALID_PARAM in the extension).
///
/// # Safety
/// `dlist` must be a live list.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nixl_capi_xfer_dlist_rem_desc(
    dlist: nixl_capi_xfer_dlist_t,
    index: c_int,
) -> CapiStatus {
    ffi_boundary! { edit(arg!(mut dlist), |v| remove_at(v, index)) }
}

/// Removes every descriptor.
///
/// # Safety
/// `dlist` must be a live list.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nixl_capi_xfer_dlist_clear(dlist: nixl_capi_xfer_dlist_t) -> CapiStatus {
    ffi_boundary! { edit(arg!(mut dlist), |v| { v.clear(); SUCCESS }) }
}

/// Resizes the list; new descriptors are all zero.
///
/// # Safety
/// `dlist` must be a live list.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nixl_capi_xfer_dlist_resize(
    dlist: nixl_capi_xfer_dlist_t,
    new_size: size_t,
) -> CapiStatus {
    // SAFETY: the helper's `# Safety` is this function's, for the same arguments.
    ffi_boundary! {
        edit(arg!(mut dlist), |v| { try_resize(v, new_size, Desc::default(), "descriptors")?; SUCCESS })
    }
}

/// Prints the list to standard output.
///
/// # Safety
/// `dlist` must be a live list.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nixl_capi_xfer_dlist_print(dlist: nixl_capi_xfer_dlist_t) -> CapiStatus {
    ffi_boundary! {
        let d = arg!(ref dlist);
        print_list("Transfer descriptor list", d.list.mem_type(), d.list.descs().iter().map(desc_line))
    }
}

/// Creates an empty registration descriptor list, owned by the caller
/// (`nixl_capi_destroy_reg_dlist`).
///
/// # Safety
/// `dlist` must be valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nixl_capi_create_reg_dlist(
    mem_type: MemTypeArg,
    dlist: *mut nixl_capi_reg_dlist_t,
) -> CapiStatus {
    ffi_boundary! {
        let mem = mem_type.get()?;
        let out = out_ptr(dlist, "dlist")?;
        // SAFETY: checked non-NULL.
        unsafe { write_out(out, into_handle(nixl_capi_reg_dlist_s { list: RegDescList::new(mem) })) };
        SUCCESS
    }
}

/// Destroys a registration descriptor list.
///
/// # Safety
/// `dlist` must be NULL or a live registration descriptor list.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nixl_capi_destroy_reg_dlist(dlist: nixl_capi_reg_dlist_t) -> CapiStatus {
    ffi_boundary! { drop(arg!(take dlist)); SUCCESS }
}

/// The list's memory type.
///
/// # Safety
/// `dlist` must be a live list, `mem_type` valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nixl_capi_reg_dlist_get_type(
    dlist: nixl_capi_reg_dlist_t,
    mem_type: *mut MemTypeArg,
) -> CapiStatus {
    // SAFETY: the helper's `# Safety` is this function's, for the same arguments.
    ffi_boundary! { unsafe { get_type(dlist, mem_type) } }
}

/// Appends a registration descriptor with `metadata_len` bytes of metadata (copied; e.g. a
/// file path for FILE memory). `metadata` may be NULL when `metadata_len` is 0.
///
/// # Safety
/// `dlist` must be a live list; `metadata` NULL or valid for `metadata_len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nixl_capi_reg_dlist_add_desc(
    dlist: nixl_capi_reg_dlist_t,
    addr: usize,
    len: size_t,
    dev_id: u64,
    metadata: *const c_void,
    metadata_len: size_t,
) -> CapiStatus {
    ffi_boundary! {
        let meta = try_copy(arg!(bytes metadata, metadata_len, "metadata"), "metadata")?;
        let desc = RegDesc::with_meta(addr as u64, len as u64, dev_id, meta);
        edit(arg!(mut dlist), |v| { v.push(desc); SUCCESS })
    }
}

/// Number of descriptors.
///
/// # Safety
/// `dlist` must be a live list, `count` valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nixl_capi_reg_dlist_desc_count(
    dlist: nixl_capi_reg_dlist_t,
    count: *mut size_t,
) -> CapiStatus {
    // SAFETY: the helper's `# Safety` is this function's, for the same arguments.
    ffi_boundary! { unsafe { self::count(dlist, count) } }
}

/// Whether the list is empty.
///
/// # Safety
/// `dlist` must be a live list, `is_empty` valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nixl_capi_reg_dlist_is_empty(
    dlist: nixl_capi_reg_dlist_t,
    is_empty: *mut bool,
) -> CapiStatus {
    // SAFETY: the helper's `# Safety` is this function's, for the same arguments.
    ffi_boundary! { unsafe { self::is_empty(dlist, is_empty) } }
}

/// Releases spare capacity.
///
/// # Safety
/// `dlist` must be a live list.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nixl_capi_reg_dlist_trim(dlist: nixl_capi_reg_dlist_t) -> CapiStatus {
    ffi_boundary! { edit(arg!(mut dlist), |v| { v.shrink_to_fit(); SUCCESS }) }
}

/// Removes the descriptor at `index`; out of range is NIXL_CAPI_ERROR_BACKEND, as upstream.
///
/// # Safety
/// `dlist` must be a live list.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nixl_capi_reg_dlist_rem_desc(
    dlist: nixl_capi_reg_dlist_t,
    index: c_int,
) -> CapiStatus {
    ffi_boundary! { edit(arg!(mut dlist), |v| remove_at(v, index)) }
}

/// Removes every descriptor.
///
/// # Safety
/// `dlist` must be a live list.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nixl_capi_reg_dlist_clear(dlist: nixl_capi_reg_dlist_t) -> CapiStatus {
    ffi_boundary! { edit(arg!(mut dlist), |v| { v.clear(); SUCCESS }) }
}

/// Resizes the list; new descriptors are zero with no metadata.
///
/// # Safety
/// `dlist` must be a live list.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nixl_capi_reg_dlist_resize(
    dlist: nixl_capi_reg_dlist_t,
    new_size: size_t,
) -> CapiStatus {
    // SAFETY: the helper's `# Safety` is this function's, for the same arguments.
    ffi_boundary! {
        edit(arg!(mut dlist), |v| { try_resize(v, new_size, RegDesc::default(), "descriptors")?; SUCCESS })
    }
}

/// Prints the list to standard output.
///
/// # Safety
/// `dlist` must be a live list.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nixl_capi_reg_dlist_print(dlist: nixl_capi_reg_dlist_t) -> CapiStatus {
    ffi_boundary! {
        let d = arg!(ref dlist);
        let line = |r: &RegDesc| format!("{} meta={:?}", desc_line(&r.desc), String::from_utf8_lossy(&r.meta));
        print_list("Registration descriptor list", d.list.mem_type(), d.list.descs().iter().map(line))
    }
}

/// Creates an empty remote descriptor list, owned by the caller
/// (`nixl_capi_destroy_remote_dlist`).
///
/// # Safety
/// `dlist` must be valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nixl_capi_create_remote_dlist(
    mem_type: MemTypeArg,
    dlist: *mut nixl_capi_remote_dlist_t,
) -> CapiStatus {
    ffi_boundary! {
        let mem_type = mem_type.get()?;
        let out = out_ptr(dlist, "dlist")?;
        // SAFETY: checked non-NULL.
        unsafe { write_out(out, into_handle(nixl_capi_remote_dlist_s { list: DescList::new(mem_type) })) };
        SUCCESS
    }
}

/// Destroys a remote descriptor list.
///
/// # Safety
/// `dlist` must be NULL or a live remote descriptor list.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nixl_capi_destroy_remote_dlist(
    dlist: nixl_capi_remote_dlist_t,
) -> CapiStatus {
    ffi_boundary! { drop(arg!(take dlist)); SUCCESS }
}

/// Appends a descriptor of `remote_agent`'s memory; NULL names upstream's placeholder
/// agent `"NULL_AGENT"`, which keeps indices aligned.
///
/// # Safety
/// `dlist` must be a live list; `remote_agent` NULL or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nixl_capi_remote_dlist_add_desc(
    dlist: nixl_capi_remote_dlist_t,
    addr: usize,
    len: size_t,
    dev_id: u64,
    remote_agent: *const c_char,
) -> CapiStatus {
    ffi_boundary! {
        let d = arg!(mut dlist);
        let agent = if remote_agent.is_null() {
            "NULL_AGENT"
        } else {
            arg!(str remote_agent)
        };
        d.list.push((Desc::new(addr as u64, len as u64, dev_id), agent.to_owned()));
        SUCCESS
    }
}
