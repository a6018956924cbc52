//! Issue 15, F1: sizes from the caller are reserved fallibly. A resize to 2^40 descriptors
//! (26 TB) used to abort the whole process ("memory allocation failed"); it must answer an
//! error status and leave the list as it was.

use nixl_capi::dlist::*;
use nixl_capi::status::CapiStatus;
use nixl_capi::types::{MemTypeArg, nixl_capi_reg_dlist_t, nixl_capi_xfer_dlist_t};

const DRAM: MemTypeArg = MemTypeArg(0);
const NIXL_CAPI_SUCCESS: CapiStatus = CapiStatus(0);

/// Sizes whose reservation must fail: past `isize::MAX` bytes always; 2^40 descriptors too,
/// unless the kernel promises any amount of memory (`vm.overcommit_memory` = 1), where that
/// allocation would succeed and then be filled.
fn huge_sizes() -> Vec<usize> {
    let mut sizes = vec![usize::MAX / 2];
    let mode = std::fs::read_to_string("/proc/sys/vm/overcommit_memory").unwrap_or_default();
    if mode.trim() == "1" {
        println!("skipped: resize to 2^40 (vm.overcommit_memory is 1: the allocation succeeds)");
    } else {
        sizes.push(1 << 40);
    }
    sizes
}

fn failed(status: CapiStatus) -> bool {
    status != NIXL_CAPI_SUCCESS
}

#[test]
fn huge_xfer_dlist_resize_is_an_error_not_an_abort() {
    let mut l: nixl_capi_xfer_dlist_t = std::ptr::null_mut();
    // SAFETY: valid out-pointer; the list is used only while alive and destroyed once.
    unsafe {
        assert_eq!(nixl_capi_create_xfer_dlist(DRAM, &mut l), NIXL_CAPI_SUCCESS);
        assert_eq!(nixl_capi_xfer_dlist_resize(l, 3), NIXL_CAPI_SUCCESS);
        for n in huge_sizes() {
            assert!(failed(nixl_capi_xfer_dlist_resize(l, n)), "resize({n})");
        }
        let mut count = 0;
        assert_eq!(
            nixl_capi_xfer_dlist_desc_count(l, &mut count),
            NIXL_CAPI_SUCCESS
        );
        assert_eq!(count, 3, "a failed resize leaves the list as it was");
        assert_eq!(nixl_capi_destroy_xfer_dlist(l), NIXL_CAPI_SUCCESS);
    }
}

#[test]
fn huge_reg_dlist_resize_is_an_error_not_an_abort() {
    let mut l: nixl_capi_reg_dlist_t = std::ptr::null_mut();
    // SAFETY: as above.
    unsafe {
        assert_eq!(nixl_capi_create_reg_dlist(DRAM, &mut l), NIXL_CAPI_SUCCESS);
        assert_eq!(nixl_capi_reg_dlist_resize(l, 2), NIXL_CAPI_SUCCESS);
        for n in huge_sizes() {
            assert!(failed(nixl_capi_reg_dlist_resize(l, n)), "resize({n})");
        }
        let mut count = 0;
        assert_eq!(
            nixl_capi_reg_dlist_desc_count(l, &mut count),
            NIXL_CAPI_SUCCESS
        );
        assert_eq!(count, 2);
        assert_eq!(nixl_capi_destroy_reg_dlist(l), NIXL_CAPI_SUCCESS);
    }
}
