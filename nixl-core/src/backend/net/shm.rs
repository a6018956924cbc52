//! Shared-mapping fast path for same-host peers. When a registered DRAM region lies in a
//! shared mapping of a memfd or `/dev/shm` file (detected from `/proc/self/maps`, with the
//! descriptor found among this process's open files), its owner records the descriptor
//! number, file offset and inode in its shared registration table (and publishes them in the
//! metadata for information); a peer on the same host opens `/proc/<pid>/fd/<n>` (the same
//! permission cross-memory attach needs), checks the inode and the file's size and maps the
//! region. Its transfers then copy once at memcpy speed instead of pinning pages through
//! `process_vm_*`.
//!
//! Where the mapping points is the owner's word, never the metadata's: the peer maps only
//! from the values in the owner's table (a forged or bit-flipped blob changes nothing), never
//! past the end of the file (no SIGBUS), and every transfer is still validated against the
//! owner's live registrations and holds them in flight (see `regtab`) during the copy.
//!
//! [`SharedBuffer`] allocates memory that takes this path.

use parking_lot::Mutex;
use std::collections::HashMap;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::Arc;

use super::peer::{NetPeer, Route};
pub(super) use super::regtab::Backing;
use crate::backend::{PeerHandle, ResolvedDesc};
use crate::desc::Desc;
use crate::registry::Region;
use crate::status::{Result, err};
use crate::types::XferOp;

const TAG: &[u8; 4] = b"SHM1";

/// The published form of a backing (informational: peers use the owner's table).
pub(super) fn encode(b: Backing) -> Vec<u8> {
    let mut v = TAG.to_vec();
    v.extend_from_slice(&b.fd.to_le_bytes());
    v.extend_from_slice(&b.offset.to_le_bytes());
    v.extend_from_slice(&b.inode.to_le_bytes());
    v
}

/// The shared file backing `[addr, addr+len)`, if any, and an open descriptor on it.
fn find_backing(addr: u64, len: u64) -> Option<Backing> {
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    for line in maps.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let (range, perms, off, inode) = (f.first()?, f.get(1)?, f.get(2)?, f.get(4)?);
        let (s, e) = range.split_once('-')?;
        let (start, end) = (
            u64::from_str_radix(s, 16).ok()?,
            u64::from_str_radix(e, 16).ok()?,
        );
        if addr < start || addr.checked_add(len)? > end {
            continue;
        }
        let path = f.get(5).copied().unwrap_or("");
        let shared_file = perms.as_bytes().get(3) == Some(&b's')
            && (path.starts_with("/memfd:") || path.starts_with("/dev/shm/"));
        if !shared_file {
            return None;
        }
        let inode: u64 = inode.parse().ok()?;
        let offset = u64::from_str_radix(off, 16).ok()? + (addr - start);
        return open_fd_with_inode(inode).map(|fd| Backing { fd, offset, inode });
    }
    None
}

fn inode_of(fd: i32) -> Option<u64> {
    // SAFETY: fstat on a descriptor number into a zeroed struct.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `st` is a valid out pointer.
    (unsafe { libc::fstat(fd, &mut st) } == 0).then_some(st.st_ino)
}

/// An open descriptor of this process on the file with `inode`.
fn open_fd_with_inode(inode: u64) -> Option<i32> {
    std::fs::read_dir("/proc/self/fd")
        .ok()?
        .flatten()
        .find_map(|e| {
            let fd: i32 = e.file_name().to_str()?.parse().ok()?;
            (inode_of(fd) == Some(inode)).then_some(fd)
        })
}

/// Backings by registration key: computed once per registration (reading
/// `/proc/self/maps` costs about 100 µs), not at every metadata request.
static PUBLISHED: Mutex<Option<HashMap<u64, Option<Backing>>>> = Mutex::new(None);

/// The shared file a registration lives in, if it is a shared mapping of an open file.
pub(super) fn backing_of(region: &Region) -> Option<Backing> {
    let mut cache = PUBLISHED.lock();
    *cache
        .get_or_insert_with(HashMap::new)
        .entry(region.key)
        .or_insert_with(|| find_backing(region.desc.addr, region.desc.len))
}

/// Forgets what a deregistered region published.
pub(super) fn forget_region(key: u64) {
    if let Some(c) = PUBLISHED.lock().as_mut() {
        c.remove(&key);
    }
}

/// A peer's region mapped into this process.
struct Mapping {
    base: *mut u8,
    map_len: usize,
    /// Offset of the region's first byte inside the mapping.
    delta: usize,
    region_addr: u64,
    region_len: u64,
}

// SAFETY: a shared mapping; accessed only by copies validated against live registrations.
unsafe impl Send for Mapping {}
// SAFETY: as above.
unsafe impl Sync for Mapping {}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: mapped in `map_remote` with exactly this base and length.
        unsafe { libc::munmap(self.base.cast(), self.map_len) };
    }
}

/// Remote regions mapped here, by (peer backend instance, registration key).
type Maps = HashMap<(u64, u64), Arc<Mapping>>;
static MAPS: Mutex<Option<Maps>> = Mutex::new(None);

fn maps() -> parking_lot::MutexGuard<'static, Option<Maps>> {
    MAPS.lock()
}

/// Maps the region the owner's table places at `b` (`region` is the table's, too). Refuses
/// a file that is not the one recorded or that ends before the region does.
fn map_remote(pid: i32, b: Backing, region: Desc) -> Option<Mapping> {
    let path = std::ffi::CString::new(format!("/proc/{pid}/fd/{}", b.fd)).ok()?;
    // SAFETY: opening a path; the result is checked.
    let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) };
    if fd < 0 {
        return None;
    }
    // SAFETY: a fresh descriptor we own.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: fstat into a zeroed struct on our own descriptor.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `st` is a valid out pointer.
    if unsafe { libc::fstat(fd.as_raw_fd(), &mut st) } != 0 || st.st_ino != b.inode {
        return None;
    }
    // Touching a page past the end of the file would raise SIGBUS here.
    let file_len = u64::try_from(st.st_size).ok()?;
    if region.len == 0 || b.offset.checked_add(region.len)? > file_len {
        return None;
    }
    let page = 4096u64;
    let aligned = b.offset / page * page;
    let delta = (b.offset - aligned) as usize;
    let map_len = delta.checked_add(usize::try_from(region.len).ok()?)?;
    // SAFETY: a new shared mapping of the peer's file, inside its size; unmapped in Drop.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            map_len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED | libc::MAP_POPULATE,
            fd.as_raw_fd(),
            libc::off_t::try_from(aligned).ok()?,
        )
    };
    (p != libc::MAP_FAILED).then(|| Mapping {
        base: p.cast(),
        map_len,
        delta,
        region_addr: region.addr,
        region_len: region.len,
    })
}

/// Maps a same-host peer's shared region, when its owner's table records one. Failure only
/// loses the fast path (transfers use cross-memory attach). The metadata's own backing
/// (`region.public`) is ignored: only the owner's table says where a region lives.
pub(super) fn load_remote_region(peer: &PeerHandle, region: &Region) -> Result<()> {
    let Some(peer) = peer.downcast_ref::<NetPeer>() else {
        return Err(err!(
            InvalidParam,
            "peer handle does not belong to the network backend"
        ));
    };
    let Route::CrossMemory { pid, regtab, .. } = &peer.route else {
        return Ok(());
    };
    let key = (peer.info.instance, region.key);
    let mapped = regtab
        .backing(region.key)
        .and_then(|(desc, b)| map_remote(*pid, b, desc));
    match mapped {
        Some(m) => {
            maps()
                .get_or_insert_with(HashMap::new)
                .insert(key, Arc::new(m));
        }
        None => {
            if let Some(m) = maps().as_mut() {
                m.remove(&key);
            }
        }
    }
    Ok(())
}

/// Forgets every mapping of a peer backend instance (it disconnected or was replaced).
pub(super) fn forget_peer(instance: u64) {
    if let Some(m) = maps().as_mut() {
        m.retain(|(i, _), _| *i != instance);
    }
}

/// Whether every remote descriptor lies in a region of `instance` mapped here (what
/// [`try_copy`] needs); for the `transport` label, so checked once per request made.
pub(super) fn all_mapped(instance: u64, remote: &[ResolvedDesc]) -> bool {
    let guard = maps();
    let Some(all) = guard.as_ref() else {
        return false;
    };
    !remote.is_empty()
        && remote.iter().all(|d| {
            all.get(&(instance, d.key)).is_some_and(|m| {
                d.addr >= m.region_addr
                    && d.addr
                        .checked_add(d.len)
                        .is_some_and(|e| e <= m.region_addr + m.region_len)
            })
        })
}

/// Copies every pair through mapped regions if all remote descriptors have one; returns
/// false (having copied nothing) otherwise. The caller has already checked `remote` against
/// the target's live registrations and holds them in flight until this returns.
pub(super) fn try_copy(
    instance: u64,
    op: XferOp,
    local: &[ResolvedDesc],
    remote: &[ResolvedDesc],
) -> bool {
    let mut ptrs = Vec::with_capacity(remote.len());
    let mut held: Vec<Arc<Mapping>> = Vec::new();
    {
        let guard = maps();
        let Some(all) = guard.as_ref() else {
            return false;
        };
        let mut last: Option<(u64, Arc<Mapping>)> = None;
        for d in remote {
            let m = match &last {
                Some((k, m)) if *k == d.key => m.clone(),
                _ => match all.get(&(instance, d.key)) {
                    Some(m) => {
                        last = Some((d.key, m.clone()));
                        held.push(m.clone());
                        m.clone()
                    }
                    None => return false,
                },
            };
            let inside = d.addr >= m.region_addr
                && d.addr
                    .checked_add(d.len)
                    .is_some_and(|e| e <= m.region_addr + m.region_len);
            if !inside {
                return false;
            }
            // SAFETY: within the mapping (checked just above).
            ptrs.push(unsafe { m.base.add(m.delta + (d.addr - m.region_addr) as usize) });
        }
    }
    for (l, &r) in local.iter().zip(&ptrs) {
        let (src, dst) = match op {
            XferOp::Write => (l.addr as *const u8, r),
            XferOp::Read => (r.cast_const(), l.addr as *mut u8),
        };
        // SAFETY: local descriptors are registered with the initiator; remote ones lie in a
        // live mapping (held in `held`) of a region the target still registers.
        unsafe { std::ptr::copy(src, dst, l.len as usize) };
    }
    drop(held);
    true
}

/// Memory for transfer buffers that takes the shared-mapping fast path: a memfd mapped
/// shared (transparent huge pages requested where the system allows them for shmem).
pub struct SharedBuffer {
    ptr: *mut u8,
    len: usize,
    _fd: OwnedFd,
}

// SAFETY: plain memory owned by this value.
unsafe impl Send for SharedBuffer {}
// SAFETY: shared access goes through raw addresses handed to the transfer engine.
unsafe impl Sync for SharedBuffer {}

impl SharedBuffer {
    /// Allocates `len` bytes (zeroed, pre-faulted). Keep it alive while registered.
    pub fn new(len: usize) -> Result<SharedBuffer> {
        let len = len.max(1);
        // SAFETY: memfd_create with a static NUL-terminated name.
        let fd = unsafe { libc::memfd_create(c"nixl-rs-buffer".as_ptr(), libc::MFD_CLOEXEC) };
        if fd < 0 {
            return Err(err!(
                Backend,
                "memfd_create: {}",
                std::io::Error::last_os_error()
            ));
        }
        // SAFETY: a fresh descriptor we own.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: sizing our own memfd.
        if unsafe { libc::ftruncate(fd.as_raw_fd(), len as libc::off_t) } != 0 {
            return Err(err!(
                Backend,
                "ftruncate: {}",
                std::io::Error::last_os_error()
            ));
        }
        // SAFETY: a new shared mapping of the memfd; unmapped in Drop.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_POPULATE,
                fd.as_raw_fd(),
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(err!(Backend, "mmap: {}", std::io::Error::last_os_error()));
        }
        // SAFETY: advice on our own mapping; failure only loses the hint.
        unsafe { libc::madvise(p, len, libc::MADV_HUGEPAGE) };
        Ok(SharedBuffer {
            ptr: p.cast(),
            len,
            _fd: fd,
        })
    }

    /// Start address.
    pub fn addr(&self) -> usize {
        self.ptr as usize
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Always false (at least one byte is allocated).
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Copies `out.len()` bytes starting at `offset` out of the buffer. The copy goes through
    /// raw addresses, so it is sound while peers write the memory (the bytes then are whatever
    /// the copy saw, as with any memory a transfer is writing).
    ///
    /// # Panics
    /// If the range does not lie inside the buffer.
    pub fn read_at(&self, offset: usize, out: &mut [u8]) {
        self.check_range(offset, out.len());
        // SAFETY: the range lies inside the live mapping (checked); no reference to the
        // mapping is formed and `copy` tolerates `out` being anywhere.
        unsafe { std::ptr::copy(self.ptr.add(offset), out.as_mut_ptr(), out.len()) };
    }

    /// Copies `data` into the buffer at `offset`, through raw addresses (sound while peers read
    /// or write the memory; what they then see is theirs to order).
    ///
    /// # Panics
    /// If the range does not lie inside the buffer.
    pub fn write_at(&self, offset: usize, data: &[u8]) {
        self.check_range(offset, data.len());
        // SAFETY: as in `read_at`; the mapping is writable.
        unsafe { std::ptr::copy(data.as_ptr(), self.ptr.add(offset), data.len()) };
    }

    /// A copy of the whole buffer (see [`SharedBuffer::read_at`]).
    pub fn to_vec(&self) -> Vec<u8> {
        let mut out = vec![0u8; self.len];
        self.read_at(0, &mut out);
        out
    }

    /// The bytes as a slice.
    ///
    /// # Safety
    /// While the slice lives, nothing may write the buffer: no transfer into it in flight, no
    /// peer holding it registered for WRITEs, no [`SharedBuffer::write_at`]. Prefer
    /// [`SharedBuffer::read_at`], which has no such condition.
    pub unsafe fn as_slice(&self) -> &[u8] {
        // SAFETY: valid for `len` bytes while `self` lives; no writer (caller).
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }

    /// The bytes as a writable slice.
    ///
    /// # Safety
    /// While the slice lives, nothing else may read or write the buffer (no transfer from or
    /// into it in flight, no peer accessing it). Prefer [`SharedBuffer::write_at`].
    pub unsafe fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: valid, exclusively borrowed here, and no peer access (caller).
        unsafe { std::slice::from_raw_parts_mut(self.ptr, self.len) }
    }

    fn check_range(&self, offset: usize, len: usize) {
        let end = offset.checked_add(len);
        assert!(
            end.is_some_and(|e| e <= self.len),
            "range {offset}+{len} is outside the {}-byte buffer",
            self.len
        );
    }
}

impl Drop for SharedBuffer {
    fn drop(&mut self) {
        // SAFETY: mapped in `new` with this base and length.
        unsafe { libc::munmap(self.ptr.cast(), self.len) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_buffer_is_detected_and_malloc_is_not() {
        let buf = SharedBuffer::new(1 << 20).unwrap();
        let b = find_backing(buf.addr() as u64 + 4096, 8192).expect("memfd mapping detected");
        assert_eq!(b.offset, 4096);
        assert_eq!(encode(b).len(), 24);
        let heap = vec![0u8; 1 << 20];
        assert!(find_backing(heap.as_ptr() as u64, 4096).is_none());
        assert!(
            find_backing(buf.addr() as u64, (2 << 20) as u64).is_none(),
            "range past the mapping"
        );
    }

    #[test]
    fn copies_in_and_out_are_bounded() {
        let buf = SharedBuffer::new(4096).unwrap();
        buf.write_at(4000, &[7u8; 96]);
        let mut out = [0u8; 100];
        buf.read_at(3996, &mut out);
        assert_eq!(out[..4], [0u8; 4]);
        assert_eq!(out[4..], [7u8; 96]);
        assert_eq!(buf.to_vec()[4000..], [7u8; 96]);
        let past = std::panic::catch_unwind(|| buf.read_at(4000, &mut [0u8; 97]));
        assert!(past.is_err(), "a range past the end must be refused");
        let wrap = std::panic::catch_unwind(|| buf.write_at(usize::MAX, &[1]));
        assert!(wrap.is_err(), "an overflowing range must be refused");
    }
}
