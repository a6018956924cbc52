//! Unit tests that run everywhere: with no driver they check the errors; with a GPU they check
//! that host memory is refused as VRAM.

use super::*;
use crate::desc::Desc;
use crate::status::Status;
use std::sync::Arc;

fn region(addr: u64, len: u64, dev: u64) -> Region {
    Region {
        desc: Desc::new(addr, len, dev),
        key: 1,
        meta: Arc::from(&[][..]),
        public: Arc::from(&[][..]),
    }
}

#[test]
fn host_memory_is_never_accepted_as_vram() {
    let host = vec![0u8; 1 << 16];
    let e = register(&region(host.as_ptr() as u64, host.len() as u64, 0)).unwrap_err();
    if available() {
        assert_eq!(e.status(), Status::InvalidParam, "{e}");
        assert!(e.message().contains("not GPU memory"), "{e}");
    } else {
        assert_eq!(e.status(), Status::NotSupported, "{e}");
        assert!(e.message().contains("CUDA is not available"), "{e}");
    }
}

#[test]
fn every_entry_point_fails_cleanly_without_a_device() {
    if available() {
        return test_support::skip(
            "no-gpu",
            "a CUDA device is present (tests/cuda_gpu.rs covers it)",
        );
    }
    let not_supported = |r: Result<()>| {
        let e = r.unwrap_err();
        assert_eq!(e.status(), Status::NotSupported, "{e}");
    };
    not_supported(context::bind(0).map(|_| ()));
    not_supported(stream::Stream::take(0).map(|_| ()));
    not_supported(mem::DeviceBuffer::new(0, 4096).map(|_| ()));
    not_supported(mem::VmmBuffer::new(0, 2, 1).map(|_| ()));
    not_supported(mem::HostPinned::new(4096).map(|_| ()));
    not_supported(prepare_peer(0, 1));
    let local = [ResolvedDesc {
        addr: 0x1000,
        len: 16,
        dev_id: 0,
        key: 0,
    }];
    // SAFETY: fails before any copy is queued.
    not_supported(unsafe { copy_pairs(0, XferOp::Write, &local, &[(0x2000, 16)]) });
}

#[test]
#[ignore = "needs a GPU"]
fn a_gpu_ordinal_beyond_the_devices_is_refused() {
    if !available() {
        return test_support::skip("gpu", "no CUDA device");
    }
    let e = context::ordinal(1 << 20).unwrap_err();
    assert_eq!(e.status(), Status::InvalidParam, "{e}");
}
