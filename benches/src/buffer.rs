//! Transfer buffers: ordinary `malloc` memory, or an anonymous mapping with
//! transparent huge pages requested (what numpy/PyTorch allocations get).

/// How a buffer is allocated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Segment {
    /// `malloc` (glibc maps large blocks with 4 KiB pages; THP only if the
    /// system's policy is `always`).
    Malloc,
    /// `mmap` anonymous + `madvise(MADV_HUGEPAGE)`, 2 MiB aligned.
    HugePage,
    /// A [`nixl_core::SharedBuffer`] (a memfd mapped shared): same-host peers of
    /// nixl-rs map it and copy once.
    Shared,
}

impl Segment {
    /// Parses `malloc`/`DRAM` or `huge`/`hugepage`/`THP`.
    pub fn parse(s: &str) -> Option<Segment> {
        match s.to_ascii_lowercase().as_str() {
            "malloc" | "dram" => Some(Segment::Malloc),
            "huge" | "hugepage" | "thp" => Some(Segment::HugePage),
            "shared" | "memfd" | "shm" => Some(Segment::Shared),
            _ => None,
        }
    }

    /// Short label.
    pub fn label(self) -> &'static str {
        match self {
            Segment::Malloc => "malloc",
            Segment::HugePage => "hugepage",
            Segment::Shared => "shared",
        }
    }
}

/// An owned, zero-filled, pre-faulted buffer.
pub struct Buffer {
    ptr: *mut u8,
    len: usize,
    seg: Segment,
    /// The owner of a `Shared` buffer's mapping (and of the memfd peers find it through).
    shared: Option<nixl_core::SharedBuffer>,
}

// SAFETY: plain memory owned by this value.
unsafe impl Send for Buffer {}
// SAFETY: shared access is through raw addresses handed to the transfer library.
unsafe impl Sync for Buffer {}

const HUGE: usize = 2 << 20;

impl Buffer {
    /// Allocates `len` bytes (at least 1) and touches every page.
    pub fn new(len: usize, seg: Segment) -> Buffer {
        let len = len.max(1);
        let mut shared = None;
        let ptr = match seg {
            // SAFETY: plain allocation; checked for NULL below.
            Segment::Malloc => unsafe { libc::malloc(len) }.cast::<u8>(),
            Segment::HugePage => {
                let map = len.next_multiple_of(HUGE) + HUGE;
                // SAFETY: anonymous private mapping, no fd.
                let p = unsafe {
                    libc::mmap(
                        std::ptr::null_mut(),
                        map,
                        libc::PROT_READ | libc::PROT_WRITE,
                        libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                        -1,
                        0,
                    )
                };
                assert!(p != libc::MAP_FAILED, "mmap of {map} bytes failed");
                let aligned = (p as usize).next_multiple_of(HUGE) as *mut libc::c_void;
                // SAFETY: advice on our own mapping; failure only loses the hint.
                unsafe { libc::madvise(aligned, len.next_multiple_of(HUGE), libc::MADV_HUGEPAGE) };
                aligned.cast::<u8>()
            }
            Segment::Shared => {
                let buf = nixl_core::SharedBuffer::new(len)
                    .unwrap_or_else(|e| panic!("shared buffer of {len} bytes: {e}"));
                let p = buf.addr() as *mut u8;
                shared = Some(buf);
                p
            }
        };
        assert!(!ptr.is_null(), "allocation of {len} bytes failed");
        // SAFETY: `ptr` is valid for `len` writable bytes; zeroing faults the pages in.
        unsafe { std::ptr::write_bytes(ptr, 0, len) };
        Buffer {
            ptr,
            len,
            seg,
            shared,
        }
    }

    /// Start address.
    pub fn addr(&self) -> usize {
        self.ptr as usize
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True for a zero-length buffer (never: at least 1 byte is allocated).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The bytes.
    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: valid for `len` bytes while `self` lives.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }

    /// The bytes, writable.
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: valid and exclusively borrowed.
        unsafe { std::slice::from_raw_parts_mut(self.ptr, self.len) }
    }

    /// How it was allocated.
    pub fn segment(&self) -> Segment {
        self.seg
    }
}

impl Drop for Buffer {
    fn drop(&mut self) {
        match self.seg {
            // SAFETY: allocated by malloc above.
            Segment::Malloc => unsafe { libc::free(self.ptr.cast()) },
            // The mapping is left to process exit: its base was rounded up for
            // alignment and benchmark buffers live for the whole run.
            Segment::HugePage => {}
            // `SharedBuffer` unmaps and closes its memfd.
            Segment::Shared => drop(self.shared.take()),
        }
    }
}
