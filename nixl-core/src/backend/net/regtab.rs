//! A registration table in shared memory, so that a same-host peer using cross-memory attach
//! (which never involves this process) still checks every descriptor against this agent's
//! *live* registrations before touching them.
//!
//! The owner writes it under its access-table lock, inside a seqlock; peers map it read-only
//! through `/proc/<pid>/fd/<fd>` (the same permission cross-memory attach needs) and validate
//! under the seqlock. It is an open-addressing hash table keyed by the registration key.

use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::backend::ResolvedDesc;
use crate::desc::Desc;
use crate::status::{Result, err};

const MAGIC: u64 = u64::from_le_bytes(*b"NXRSREGT");
/// Slots in a table: 2^20 × 32 bytes of virtual memory, touched only where used.
const CAPACITY: u64 = 1 << 20;
/// Past this many live entries the owner marks the table overflowed and peers stop relying on
/// it (they then trust their metadata, as before this table existed).
const MAX_LIVE: u64 = CAPACITY / 2;
const EMPTY: u64 = 0;
const TOMBSTONE: u64 = u64::MAX;
const HEADER_WORDS: usize = 4;
const WORDS_PER_SLOT: usize = 4;

/// Header word indices.
const W_MAGIC: usize = 0;
const W_SEQ: usize = 1;
const W_LIVE: usize = 2;
const W_OVERFLOW: usize = 3;

fn byte_len() -> usize {
    (HEADER_WORDS + CAPACITY as usize * WORDS_PER_SLOT) * 8
}

/// A mapping of a table, as owner (read-write) or peer (read-only).
struct Mapping {
    words: *mut AtomicU64,
    _file: File,
}

// SAFETY: the mapping is plain shared memory accessed only through atomics.
unsafe impl Send for Mapping {}
// SAFETY: as above.
unsafe impl Sync for Mapping {}

impl Mapping {
    fn map(file: File, writable: bool) -> Result<Mapping> {
        let prot = if writable {
            libc::PROT_READ | libc::PROT_WRITE
        } else {
            libc::PROT_READ
        };
        // SAFETY: a fresh shared mapping of the whole file; unmapped in Drop.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                byte_len(),
                prot,
                libc::MAP_SHARED,
                file.as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(err!(
                Backend,
                "cannot map the registration table: {}",
                std::io::Error::last_os_error()
            ));
        }
        Ok(Mapping {
            words: ptr.cast(),
            _file: file,
        })
    }

    fn word(&self, i: usize) -> &AtomicU64 {
        // SAFETY: `i` is within the mapping (callers index header words or slots below
        // CAPACITY), and the memory is 8-byte aligned (page-aligned mapping).
        unsafe { &*self.words.add(i) }
    }

    fn slot(&self, i: u64, field: usize) -> &AtomicU64 {
        self.word(HEADER_WORDS + i as usize * WORDS_PER_SLOT + field)
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly what `map` mapped.
        unsafe { libc::munmap(self.words.cast(), byte_len()) };
    }
}

/// The owner's side.
pub struct RegTableWriter {
    map: Mapping,
    fd: i32,
}

impl RegTableWriter {
    /// Creates the table in a memfd.
    pub fn create() -> Result<RegTableWriter> {
        // SAFETY: memfd_create with a static name; the fd is owned by the File below.
        let fd = unsafe { libc::memfd_create(c"nixl-regtab".as_ptr(), libc::MFD_CLOEXEC) };
        if fd < 0 {
            return Err(err!(
                Backend,
                "memfd_create: {}",
                std::io::Error::last_os_error()
            ));
        }
        // SAFETY: `fd` is a fresh descriptor nobody else owns.
        let file = unsafe { File::from_raw_fd(fd) };
        file.set_len(byte_len() as u64)
            .map_err(|e| err!(Backend, "sizing the registration table: {e}"))?;
        let map = Mapping::map(file, true)?;
        map.word(W_MAGIC).store(MAGIC, Ordering::Release);
        Ok(RegTableWriter { map, fd })
    }

    /// The descriptor number peers open through `/proc/<pid>/fd/`.
    pub fn fd(&self) -> i32 {
        self.fd
    }

    fn write(&self, f: impl FnOnce()) {
        let seq = self.map.word(W_SEQ);
        seq.fetch_add(1, Ordering::AcqRel); // odd: writing
        f();
        seq.fetch_add(1, Ordering::Release); // even: stable
    }

    /// Adds a registration. Callers serialize writes (the access-table lock).
    pub fn insert(&self, key: u64, desc: Desc) {
        if key == EMPTY || key == TOMBSTONE {
            return self.write(|| self.map.word(W_OVERFLOW).store(1, Ordering::Release));
        }
        self.write(|| {
            if self.map.word(W_LIVE).load(Ordering::Relaxed) >= MAX_LIVE {
                self.map.word(W_OVERFLOW).store(1, Ordering::Release);
                return;
            }
            let mut i = key % CAPACITY;
            loop {
                let k = self.map.slot(i, 0).load(Ordering::Relaxed);
                if k == EMPTY || k == TOMBSTONE {
                    self.map.slot(i, 1).store(desc.addr, Ordering::Relaxed);
                    self.map.slot(i, 2).store(desc.len, Ordering::Relaxed);
                    self.map.slot(i, 3).store(desc.dev_id, Ordering::Relaxed);
                    self.map.slot(i, 0).store(key, Ordering::Release);
                    self.map.word(W_LIVE).fetch_add(1, Ordering::Relaxed);
                    return;
                }
                i = (i + 1) % CAPACITY;
            }
        });
    }

    /// Removes a registration.
    pub fn remove(&self, key: u64) {
        self.write(|| {
            let mut i = key % CAPACITY;
            for _ in 0..CAPACITY {
                match self.map.slot(i, 0).load(Ordering::Relaxed) {
                    EMPTY => return,
                    k if k == key => {
                        self.map.slot(i, 0).store(TOMBSTONE, Ordering::Release);
                        self.map.word(W_LIVE).fetch_sub(1, Ordering::Relaxed);
                        return;
                    }
                    _ => i = (i + 1) % CAPACITY,
                }
            }
        });
    }

    /// Empties the table (the agent is going away).
    pub fn clear(&self) {
        self.write(|| {
            self.map.word(W_OVERFLOW).store(0, Ordering::Relaxed);
            self.map.word(W_LIVE).store(0, Ordering::Relaxed);
            // A clear happens once, at shutdown: mark the table unusable instead of zeroing it.
            self.map.word(W_MAGIC).store(0, Ordering::Release);
        });
    }
}

/// A peer's read-only view.
pub struct RegTableReader {
    map: Mapping,
}

impl RegTableReader {
    /// Maps `pid`'s table through `/proc/<pid>/fd/<fd>`.
    pub fn open(pid: u32, fd: i32) -> Result<RegTableReader> {
        let path = format!("/proc/{pid}/fd/{fd}");
        let file = File::open(&path).map_err(|e| err!(NotAllowed, "cannot open {path}: {e}"))?;
        let len = file
            .metadata()
            .map_err(|e| err!(Backend, "{path}: {e}"))?
            .len();
        if len != byte_len() as u64 {
            return Err(err!(Backend, "{path} is not a registration table"));
        }
        let map = Mapping::map(file, false)?;
        if map.word(W_MAGIC).load(Ordering::Acquire) != MAGIC {
            return Err(err!(Backend, "{path} is not a registration table"));
        }
        Ok(RegTableReader { map })
    }

    /// Checks every descriptor against the owner's live registrations. `Ok(false)` means the
    /// table cannot vouch (it overflowed); the caller decides.
    pub fn check(&self, descs: &[ResolvedDesc]) -> Result<bool> {
        let seq = self.map.word(W_SEQ);
        loop {
            let before = seq.load(Ordering::Acquire);
            if before & 1 == 1 {
                std::hint::spin_loop();
                continue;
            }
            let verdict = self.check_unsynchronized(descs);
            std::sync::atomic::fence(Ordering::Acquire);
            if seq.load(Ordering::Relaxed) == before {
                return verdict;
            }
        }
    }

    fn check_unsynchronized(&self, descs: &[ResolvedDesc]) -> Result<bool> {
        if self.map.word(W_MAGIC).load(Ordering::Relaxed) != MAGIC {
            return Err(err!(RemoteDisconnect, "the peer's agent has shut down"));
        }
        if self.map.word(W_OVERFLOW).load(Ordering::Relaxed) != 0 {
            return Ok(false);
        }
        for d in descs {
            let Some(region) = self.find(d.key) else {
                return Err(err!(
                    NotAllowed,
                    "the peer has no registration with this key (deregistered?)"
                ));
            };
            let inside = region.dev_id == d.dev_id
                && d.addr >= region.addr
                && d.addr
                    .checked_add(d.len)
                    .zip(region.end())
                    .is_some_and(|(end, limit)| end <= limit);
            if !inside {
                return Err(err!(
                    NotAllowed,
                    "descriptor {:#x}+{} lies outside the peer's registration",
                    d.addr,
                    d.len
                ));
            }
        }
        Ok(true)
    }

    fn find(&self, key: u64) -> Option<Desc> {
        if key == EMPTY || key == TOMBSTONE {
            return None;
        }
        let mut i = key % CAPACITY;
        for _ in 0..CAPACITY {
            match self.map.slot(i, 0).load(Ordering::Acquire) {
                EMPTY => return None,
                k if k == key => {
                    let s = |f| self.map.slot(i, f).load(Ordering::Relaxed);
                    return Some(Desc::new(s(1), s(2), s(3)));
                }
                _ => i = (i + 1) % CAPACITY,
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peers_see_inserts_and_removals() {
        let w = RegTableWriter::create().unwrap();
        let r = RegTableReader::open(std::process::id(), w.fd()).unwrap();
        let d = |addr, len, key| ResolvedDesc {
            addr,
            len,
            dev_id: 0,
            key,
        };
        assert!(r.check(&[d(100, 10, 7)]).is_err());
        w.insert(7, Desc::new(100, 50, 0));
        w.insert(7 + CAPACITY, Desc::new(1000, 50, 0)); // same slot: probes onward
        assert!(r.check(&[d(100, 50, 7), d(1010, 5, 7 + CAPACITY)]).unwrap());
        assert!(r.check(&[d(100, 51, 7)]).is_err(), "out of range");
        w.remove(7);
        assert!(r.check(&[d(100, 10, 7)]).is_err(), "removed");
        assert!(
            r.check(&[d(1000, 1, 7 + CAPACITY)]).unwrap(),
            "found past a tombstone"
        );
        w.clear();
        assert_eq!(
            r.check(&[d(1000, 1, 7 + CAPACITY)]).unwrap_err().status(),
            crate::Status::RemoteDisconnect
        );
    }
}
