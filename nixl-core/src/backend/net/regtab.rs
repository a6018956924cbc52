//! A registration table in shared memory, so that a same-host peer using cross-memory attach
//! or a shared mapping (neither involves this process) still checks every descriptor against
//! this agent's *live* registrations before touching them, copies only where this agent says
//! a region lives, and is waited for when the region is deregistered.
//!
//! The owner writes it under its access-table lock, inside a seqlock; peers map it through
//! `/proc/<pid>/fd/<fd>` (the same permission cross-memory attach needs, so the mapping gives
//! a peer nothing it could not already do) and validate under the seqlock. It is an
//! open-addressing hash table keyed by the registration key.
//!
//! Invariants, all decided by the owner (nothing a peer's metadata says widens them):
//! * **Checked or not at all.** [`RegTableReader::check`] vouches for every descriptor or
//!   refuses; when the table cannot vouch (more than [`MAX_LIVE`] live registrations) it says
//!   so and the caller must use a route on which the target checks (TCP), never copy.
//! * **Where the bytes go.** A region inside a shared file mapping has its file, offset and
//!   inode recorded in its slot by the owner; peers map that file only from these values.
//! * **Nothing after deregistration.** Each slot counts the peer copies in flight on it. A peer
//!   increments the count, then re-reads the slot's key, and copies only if the key is still
//!   there; the owner tombstones the key, then waits for the count to drop to zero (sequentially
//!   consistent on both sides, so one of them sees the other). When `deregister` returns no
//!   peer copy touches the region any more. A peer that dies mid-copy leaves its count behind:
//!   the owner waits at most the peer timeout, then treats it as dead (and never reuses that
//!   slot).

use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::backend::ResolvedDesc;
use crate::desc::Desc;
use crate::status::{Result, err};

/// Version 2: peers write in-flight counts and read shared-file backings (version 1 readers
/// did neither, so they must not mistake this table for theirs).
const MAGIC: u64 = u64::from_le_bytes(*b"NXRSREG2");
/// Slots in a table: 2^20 × 64 bytes of virtual memory, touched only where used.
const CAPACITY: u64 = 1 << 20;
/// Past this many live entries the owner marks the table overflowed: peers then move bytes
/// over TCP, where the target checks every request itself.
pub const MAX_LIVE: u64 = CAPACITY / 2;
/// How long a peer waits for the owner to finish a write before giving up on its table.
const STUCK_LIMIT: Duration = Duration::from_secs(1);
const EMPTY: u64 = 0;
const TOMBSTONE: u64 = u64::MAX;
/// One cache line per slot, so that in-flight counts of different regions do not share one.
const HEADER_WORDS: usize = 8;
const WORDS_PER_SLOT: usize = 8;

/// Header word indices.
const W_MAGIC: usize = 0;
const W_SEQ: usize = 1;
const W_LIVE: usize = 2;
const W_OVERFLOW: usize = 3;

/// Slot word indices.
const S_KEY: usize = 0;
const S_ADDR: usize = 1;
const S_LEN: usize = 2;
const S_DEV: usize = 3;
/// Peer copies in flight on this slot.
const S_INFLIGHT: usize = 4;
/// Shared-file backing: descriptor number + 1 (0: none), file offset, inode.
const S_FD: usize = 5;
const S_OFFSET: usize = 6;
const S_INODE: usize = 7;

fn byte_len() -> usize {
    (HEADER_WORDS + CAPACITY as usize * WORDS_PER_SLOT) * 8
}

/// Where the owner says a region lives in a shared file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backing {
    /// The owner's descriptor number on the file.
    pub fd: i32,
    /// File offset of the region's first byte.
    pub offset: u64,
    /// The file's inode.
    pub inode: u64,
}

/// A mapping of a table, by its owner or a peer (both write: the owner its entries, peers only
/// the in-flight counts).
struct Mapping {
    words: *mut AtomicU64,
    _file: File,
}

// SAFETY: the mapping is plain shared memory accessed only through atomics.
unsafe impl Send for Mapping {}
// SAFETY: as above.
unsafe impl Sync for Mapping {}

impl Mapping {
    fn map(file: File) -> Result<Mapping> {
        // SAFETY: a fresh shared mapping of the whole file; unmapped in Drop.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                byte_len(),
                libc::PROT_READ | libc::PROT_WRITE,
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

    /// The slot holding `key` and its region. Callers validate under the seqlock (peers) or
    /// hold the writer's lock (owner).
    fn find(&self, key: u64) -> Option<(u64, Desc)> {
        if key == EMPTY || key == TOMBSTONE {
            return None;
        }
        let mut i = key % CAPACITY;
        for _ in 0..CAPACITY {
            match self.slot(i, S_KEY).load(Ordering::Acquire) {
                EMPTY => return None,
                k if k == key => {
                    let s = |f| self.slot(i, f).load(Ordering::Relaxed);
                    return Some((i, Desc::new(s(S_ADDR), s(S_LEN), s(S_DEV))));
                }
                _ => i = (i + 1) % CAPACITY,
            }
        }
        None
    }

    /// Runs `f` inside one stable seqlock read section; None if the owner stays inside a write
    /// for [`STUCK_LIMIT`] (it died or was stopped mid-write).
    fn read_stable<T>(&self, mut f: impl FnMut() -> T) -> Option<T> {
        let seq = self.word(W_SEQ);
        let mut waits = 0u32;
        let mut since: Option<Instant> = None;
        loop {
            let before = seq.load(Ordering::Acquire);
            if before & 1 == 1 {
                // Writes take nanoseconds: only a long wait reads the clock.
                waits += 1;
                if waits < 1 << 12 {
                    std::hint::spin_loop();
                } else {
                    let start = *since.get_or_insert_with(Instant::now);
                    if start.elapsed() > STUCK_LIMIT {
                        return None;
                    }
                    std::thread::yield_now();
                }
                continue;
            }
            let value = f();
            std::sync::atomic::fence(Ordering::Acquire);
            if seq.load(Ordering::Relaxed) == before {
                return Some(value);
            }
        }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly what `map` mapped.
        unsafe { libc::munmap(self.words.cast(), byte_len()) };
    }
}

/// The owner's side. Writes are serialized by the caller (the access-table lock); waiting for
/// in-flight copies ([`RegTableWriter::drain`]) needs no lock.
pub struct RegTableWriter {
    map: Mapping,
    fd: i32,
    /// Live registrations the table does not list (it was full); the overflow flag stays set
    /// until they are all gone.
    unlisted: AtomicU64,
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
        let map = Mapping::map(file)?;
        map.word(W_MAGIC).store(MAGIC, Ordering::Release);
        Ok(RegTableWriter {
            map,
            fd,
            unlisted: AtomicU64::new(0),
        })
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

    fn unlist(&self) {
        self.unlisted.fetch_add(1, Ordering::Relaxed);
        self.write(|| self.map.word(W_OVERFLOW).store(1, Ordering::Release));
    }

    /// Adds a registration (or marks the table overflowed when it is full).
    pub fn insert(&self, key: u64, desc: Desc) {
        if key == EMPTY
            || key == TOMBSTONE
            || self.map.word(W_LIVE).load(Ordering::Relaxed) >= MAX_LIVE
        {
            return self.unlist();
        }
        let mut i = key % CAPACITY;
        for _ in 0..CAPACITY {
            let k = self.map.slot(i, S_KEY).load(Ordering::Relaxed);
            // A slot still counting a dead peer's copy is never reused.
            let free = k == EMPTY
                || (k == TOMBSTONE && self.map.slot(i, S_INFLIGHT).load(Ordering::SeqCst) == 0);
            if free {
                self.write(|| {
                    let s = |f: usize, v: u64| self.map.slot(i, f).store(v, Ordering::Relaxed);
                    s(S_ADDR, desc.addr);
                    s(S_LEN, desc.len);
                    s(S_DEV, desc.dev_id);
                    s(S_FD, 0);
                    s(S_OFFSET, 0);
                    s(S_INODE, 0);
                    self.map.slot(i, S_KEY).store(key, Ordering::Release);
                    self.map.word(W_LIVE).fetch_add(1, Ordering::Relaxed);
                });
                return;
            }
            i = (i + 1) % CAPACITY;
        }
        self.unlist();
    }

    /// Records where a registered region lives in a shared file (see `shm`).
    pub fn set_backing(&self, key: u64, b: Backing) {
        let Some((i, _)) = self.map.find(key) else {
            return;
        };
        self.write(|| {
            let s = |f: usize, v: u64| self.map.slot(i, f).store(v, Ordering::Relaxed);
            s(S_FD, u64::from(b.fd as u32) + 1);
            s(S_OFFSET, b.offset);
            s(S_INODE, b.inode);
        });
    }

    /// Removes a registration: from now on no peer starts a copy on it. Returns the slot to
    /// [`drain`](Self::drain) for the copies already started.
    pub fn remove(&self, key: u64) -> Option<u64> {
        let Some((i, _)) = self.map.find(key) else {
            let was = self.unlisted.load(Ordering::Relaxed);
            if was > 0 {
                self.unlisted.store(was - 1, Ordering::Relaxed);
                if was == 1 {
                    self.write(|| self.map.word(W_OVERFLOW).store(0, Ordering::Release));
                }
            }
            return None;
        };
        self.write(|| {
            // SeqCst pairs with the peers' increment-then-recheck (see the module docs).
            self.map.slot(i, S_KEY).store(TOMBSTONE, Ordering::SeqCst);
            self.map.word(W_LIVE).fetch_sub(1, Ordering::Relaxed);
        });
        Some(i)
    }

    /// Waits until no peer copy is in flight on `slot`, for at most `limit`. False if one
    /// still is: its peer is then treated as dead (crashed mid-copy).
    pub fn drain(&self, slot: u64, limit: Duration) -> bool {
        let count = self.map.slot(slot, S_INFLIGHT);
        if count.load(Ordering::SeqCst) == 0 {
            return true;
        }
        let deadline = Instant::now() + limit;
        let mut pause = Duration::from_micros(5);
        for spins in 0u32.. {
            if count.load(Ordering::SeqCst) == 0 {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            if spins < 256 {
                std::hint::spin_loop();
            } else {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(1));
            }
        }
        false
    }

    /// Empties the table (the agent is going away): no new peer copy starts, and those in
    /// flight on `live` keys are waited for (at most `limit` in all). Returns how many slots
    /// still had copies in flight at the deadline.
    pub fn clear(&self, live: impl IntoIterator<Item = u64>, limit: Duration) -> usize {
        self.write(|| self.map.word(W_MAGIC).store(0, Ordering::SeqCst));
        let slots: Vec<u64> = live.into_iter().filter_map(|k| self.remove(k)).collect();
        self.write(|| {
            self.map.word(W_OVERFLOW).store(0, Ordering::Relaxed);
            self.map.word(W_LIVE).store(0, Ordering::Relaxed);
        });
        let deadline = Instant::now() + limit;
        slots
            .into_iter()
            .filter(|&s| !self.drain(s, deadline.saturating_duration_since(Instant::now())))
            .count()
    }
}

/// A peer's view.
pub struct RegTableReader {
    map: Mapping,
}

/// Copies in flight on the slots a [`RegTableReader::check`] vouched for; the owner's
/// deregistration of those regions waits until this is dropped.
pub struct Hold<'a> {
    map: &'a Mapping,
    /// (slot, key) per region entered.
    slots: Vec<(u64, u64)>,
}

impl Drop for Hold<'_> {
    fn drop(&mut self) {
        for &(i, _) in &self.slots {
            self.map.slot(i, S_INFLIGHT).fetch_sub(1, Ordering::SeqCst);
        }
    }
}

impl RegTableReader {
    /// Maps `pid`'s table through `/proc/<pid>/fd/<fd>`.
    pub fn open(pid: u32, fd: i32) -> Result<RegTableReader> {
        let path = format!("/proc/{pid}/fd/{fd}");
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|e| err!(NotAllowed, "cannot open {path}: {e}"))?;
        let len = file
            .metadata()
            .map_err(|e| err!(Backend, "{path}: {e}"))?
            .len();
        if len != byte_len() as u64 {
            return Err(err!(Backend, "{path} is not a registration table"));
        }
        let map = Mapping::map(file)?;
        if map.word(W_MAGIC).load(Ordering::Acquire) != MAGIC {
            return Err(err!(Backend, "{path} is not a registration table"));
        }
        Ok(RegTableReader { map })
    }

    /// Whether the table cannot vouch for every registration (transfers must use TCP).
    pub fn overflowed(&self) -> bool {
        self.map.word(W_OVERFLOW).load(Ordering::Relaxed) != 0
    }

    /// Checks every descriptor against the owner's live registrations and, if all pass, enters
    /// them: the returned hold keeps the owner's deregistration of these regions waiting until
    /// it is dropped, so copy while holding it. `Ok(None)` means the table cannot vouch (it
    /// overflowed): the caller must not copy by itself.
    pub fn check(&self, descs: &[ResolvedDesc]) -> Result<Option<Hold<'_>>> {
        let mut slots = Vec::new();
        let vouched = self
            .map
            .read_stable(|| {
                slots.clear();
                self.check_unsynchronized(descs, &mut slots)
            })
            .ok_or_else(|| {
                err!(
                    RemoteDisconnect,
                    "the peer's registration table stays mid-update (the peer is stuck or dead)"
                )
            })??;
        if !vouched {
            return Ok(None);
        }
        let hold = Hold {
            map: &self.map,
            slots,
        };
        for &(i, _) in &hold.slots {
            self.map.slot(i, S_INFLIGHT).fetch_add(1, Ordering::SeqCst);
        }
        // Re-read after counting ourselves in: a key still there means its owner's removal
        // (SeqCst, before its wait) comes later and will wait for this hold.
        for &(i, key) in &hold.slots {
            if self.map.slot(i, S_KEY).load(Ordering::SeqCst) != key {
                return Err(err!(
                    NotAllowed,
                    "the peer deregistered this memory (key {key:#x}) meanwhile"
                ));
            }
        }
        if self.map.word(W_MAGIC).load(Ordering::SeqCst) != MAGIC {
            return Err(err!(RemoteDisconnect, "the peer's agent has shut down"));
        }
        Ok(Some(hold))
    }

    fn check_unsynchronized(
        &self,
        descs: &[ResolvedDesc],
        slots: &mut Vec<(u64, u64)>,
    ) -> Result<bool> {
        if self.map.word(W_MAGIC).load(Ordering::Relaxed) != MAGIC {
            return Err(err!(RemoteDisconnect, "the peer's agent has shut down"));
        }
        if self.overflowed() {
            return Ok(false);
        }
        let mut last: Option<(u64, Desc)> = None;
        for d in descs {
            let region = match last {
                Some((k, r)) if k == d.key => r,
                _ => {
                    let Some((i, r)) = self.map.find(d.key) else {
                        return Err(err!(
                            NotAllowed,
                            "the peer has no registration with this key (deregistered?)"
                        ));
                    };
                    slots.push((i, d.key));
                    last = Some((d.key, r));
                    r
                }
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

    /// The owner's live registration `key` and the shared file it lives in, if it recorded one.
    pub fn backing(&self, key: u64) -> Option<(Desc, Backing)> {
        self.map.read_stable(|| {
            if self.map.word(W_MAGIC).load(Ordering::Relaxed) != MAGIC {
                return None;
            }
            let (i, region) = self.map.find(key)?;
            let s = |f| self.map.slot(i, f).load(Ordering::Relaxed);
            let fd = s(S_FD).checked_sub(1)?;
            Some((
                region,
                Backing {
                    fd: i32::try_from(fd).ok()?,
                    offset: s(S_OFFSET),
                    inode: s(S_INODE),
                },
            ))
        })?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(addr: u64, len: u64, key: u64) -> ResolvedDesc {
        ResolvedDesc {
            addr,
            len,
            dev_id: 0,
            key,
        }
    }

    #[test]
    fn peers_see_inserts_and_removals() {
        let w = RegTableWriter::create().unwrap();
        let r = RegTableReader::open(std::process::id(), w.fd()).unwrap();
        assert!(r.check(&[d(100, 10, 7)]).is_err());
        w.insert(7, Desc::new(100, 50, 0));
        w.insert(7 + CAPACITY, Desc::new(1000, 50, 0)); // same slot: probes onward
        assert!(
            r.check(&[d(100, 50, 7), d(1010, 5, 7 + CAPACITY)])
                .unwrap()
                .is_some()
        );
        assert!(r.check(&[d(100, 51, 7)]).is_err(), "out of range");
        let slot = w.remove(7).expect("listed");
        assert!(w.drain(slot, Duration::ZERO), "nothing in flight");
        assert!(r.check(&[d(100, 10, 7)]).is_err(), "removed");
        assert!(
            r.check(&[d(1000, 1, 7 + CAPACITY)]).unwrap().is_some(),
            "found past a tombstone"
        );
        assert_eq!(w.clear([7 + CAPACITY], Duration::from_secs(1)), 0);
        assert_eq!(
            r.check(&[d(1000, 1, 7 + CAPACITY)]).err().unwrap().status(),
            crate::Status::RemoteDisconnect
        );
    }

    #[test]
    fn removal_waits_for_holds_and_a_dead_holder_only_for_the_limit() {
        let w = RegTableWriter::create().unwrap();
        let r = RegTableReader::open(std::process::id(), w.fd()).unwrap();
        w.insert(9, Desc::new(4096, 4096, 0));
        let hold = r.check(&[d(4096, 8, 9), d(5000, 8, 9)]).unwrap().unwrap();
        let slot = w.remove(9).unwrap();
        // A new check after the removal is refused; the old hold still counts.
        assert!(r.check(&[d(4096, 8, 9)]).is_err());
        assert!(!w.drain(slot, Duration::ZERO), "a copy is in flight");
        drop(hold);
        assert!(w.drain(slot, Duration::ZERO), "the copy ended");

        // A holder that never lets go (crashed peer): the wait ends at its limit and the slot
        // is not reused.
        w.insert(9 + 2 * CAPACITY, Desc::new(8192, 10, 0));
        let stuck = r.check(&[d(8192, 1, 9 + 2 * CAPACITY)]).unwrap().unwrap();
        std::mem::forget(stuck);
        let slot = w.remove(9 + 2 * CAPACITY).unwrap();
        assert!(!w.drain(slot, Duration::from_millis(20)));
        w.insert(9 + 3 * CAPACITY, Desc::new(1, 1, 0));
        assert_ne!(w.remove(9 + 3 * CAPACITY), Some(slot), "stuck slot reused");
    }

    #[test]
    fn an_owner_stuck_mid_write_is_an_error_not_a_hang() {
        let w = RegTableWriter::create().unwrap();
        let r = RegTableReader::open(std::process::id(), w.fd()).unwrap();
        w.insert(5, Desc::new(64, 64, 0));
        w.map.word(W_SEQ).fetch_add(1, Ordering::AcqRel); // the owner died mid-write
        assert_eq!(
            r.check(&[d(64, 1, 5)]).err().unwrap().status(),
            crate::Status::RemoteDisconnect
        );
        assert_eq!(r.backing(5), None);
        w.map.word(W_SEQ).fetch_add(1, Ordering::AcqRel);
        assert!(r.check(&[d(64, 1, 5)]).unwrap().is_some());
    }

    #[test]
    fn a_full_table_cannot_vouch_until_the_unlisted_are_gone() {
        let w = RegTableWriter::create().unwrap();
        let r = RegTableReader::open(std::process::id(), w.fd()).unwrap();
        for k in 1..=MAX_LIVE + 2 {
            w.insert(k, Desc::new(k, 1, 0));
        }
        assert!(r.overflowed());
        assert!(r.check(&[d(1, 1, 1)]).unwrap().is_none(), "cannot vouch");
        w.remove(MAX_LIVE + 1);
        assert!(r.overflowed());
        w.remove(MAX_LIVE + 2);
        assert!(!r.overflowed(), "every live registration is listed again");
        assert!(r.check(&[d(1, 1, 1)]).unwrap().is_some());
    }
}
