//! Extension: appending many transfer descriptors in one call. NIXL's C++ API hands over whole
//! descriptor lists; converting one through `nixl_capi_xfer_dlist_add_desc` costs a call per
//! descriptor, which dominated `createXferReq` for requests of thousands of descriptors.

use libc::size_t;

use nixl_core::Desc;

use crate::boundary::Failure;
use crate::convert::SUCCESS;
use crate::status::CapiStatus;
use crate::types::nixl_capi_xfer_dlist_t;

/// # Safety
/// `p` must be NULL or valid for `count` reads of `T`.
unsafe fn array<'a, T>(p: *const T, count: usize, what: &str) -> Result<&'a [T], Failure> {
    if count == 0 {
        return Ok(&[]);
    }
    if p.is_null() {
        return Err(Failure::invalid(format!(
            "{what} is NULL but count is {count}"
        )));
    }
    // SAFETY: non-NULL and valid for `count` elements, per the caller's contract.
    Ok(unsafe { std::slice::from_raw_parts(p, count) })
}

/// Extension: appends `count` descriptors given as parallel arrays: descriptor `i` is
/// (`addrs[i]`, `lens[i]`, `dev_ids[i]`), or device 0 for all of them when `dev_ids` is NULL.
/// All or nothing: a NULL array (with `count > 0`) is INVALID_PARAM and appends none.
///
/// # Safety
/// `dlist` must be a live list; `addrs` and `lens` valid for `count` reads; `dev_ids` NULL or
/// valid for `count` reads.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nixl_capi_ext_xfer_dlist_add_descs(
    dlist: nixl_capi_xfer_dlist_t,
    addrs: *const usize,
    lens: *const size_t,
    dev_ids: *const u64,
    count: size_t,
) -> CapiStatus {
    ffi_boundary! {
        let d = arg!(mut dlist);
        // SAFETY: this function's `# Safety`: NULL or `count` readable elements.
        let addrs = unsafe { array(addrs, count, "addrs") }?;
        // SAFETY: this function's `# Safety`: NULL or `count` readable elements.
        let lens = unsafe { array(lens, count, "lens") }?;
        let devs = if dev_ids.is_null() {
            None
        } else {
            // SAFETY: this function's `# Safety`: NULL or `count` readable elements.
            Some(unsafe { array(dev_ids, count, "dev_ids") }?)
        };
        let descs = d.list.descs_mut();
        crate::convert::try_grow(descs, count, "descriptors")?;
        for i in 0..count {
            let dev = devs.map_or(0, |v| v[i]);
            descs.push(Desc::new(addrs[i] as u64, lens[i] as u64, dev));
        }
        SUCCESS
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dlist::nixl_capi_xfer_dlist_s;
    use crate::status::nixl_capi_status_t;
    use nixl_core::{MemType, XferDescList};

    #[test]
    fn appends_in_order_and_refuses_missing_arrays() {
        let mut l = nixl_capi_xfer_dlist_s {
            list: XferDescList::new(MemType::Vram),
        };
        let p: nixl_capi_xfer_dlist_t = &mut l;
        let (addrs, lens, devs) = ([0x10usize, 0x20, 0x30], [1usize, 2, 3], [7u64, 8, 9]);
        // SAFETY: the arrays hold 3 elements; `p` is live for the whole test.
        unsafe {
            let ok = nixl_capi_status_t::NIXL_CAPI_SUCCESS.into();
            assert_eq!(
                nixl_capi_ext_xfer_dlist_add_descs(
                    p,
                    addrs.as_ptr(),
                    lens.as_ptr(),
                    devs.as_ptr(),
                    3
                ),
                ok
            );
            assert_eq!(
                nixl_capi_ext_xfer_dlist_add_descs(
                    p,
                    addrs.as_ptr(),
                    lens.as_ptr(),
                    std::ptr::null(),
                    1
                ),
                ok
            );
            assert_eq!(
                nixl_capi_ext_xfer_dlist_add_descs(
                    p,
                    addrs.as_ptr(),
                    std::ptr::null(),
                    devs.as_ptr(),
                    2
                ),
                nixl_capi_status_t::NIXL_CAPI_ERROR_INVALID_PARAM.into()
            );
        }
        let got: Vec<_> = l
            .list
            .descs()
            .iter()
            .map(|d| (d.addr, d.len, d.dev_id))
            .collect();
        assert_eq!(
            got,
            vec![(0x10, 1, 7), (0x20, 2, 8), (0x30, 3, 9), (0x10, 1, 0)]
        );
    }
}
