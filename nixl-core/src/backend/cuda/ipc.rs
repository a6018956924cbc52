//! CUDA IPC: what a registration publishes so another process on the host can map it, and the
//! peer side's opened mappings (opened once per process and handle, cached, closed when the
//! last registration using them is forgotten).
//!
//! Published data (little-endian): version `1`, the owner's GPU ordinal (u32), the number of
//! chunks (u32), then per chunk: kind (u8), start address (u64), size (u64) and, for kind
//! [`KIND_LEGACY`], the 64-byte `CUipcMemHandle`, for kind [`KIND_VMM`] the number (u32) of the
//! owner's file descriptor exporting the allocation (see [`super::vmm`]). Kind [`KIND_NONE`]
//! marks a chunk that cannot be shared (e.g. a VMM allocation made without POSIX-fd sharing).

use parking_lot::Mutex;
use std::collections::HashMap;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::Arc;

use cudarc::driver::sys;

use super::context;
use super::driver::check;
use super::pointer::Chunk;
use super::vmm::{self, VmmMapping};
use crate::backend::ResolvedDesc;
use crate::codec::{Reader, Writer};
use crate::desc::Desc;
use crate::status::{Result, err};

const VERSION: u8 = 1;
/// A chunk that cannot be shared with other processes.
pub const KIND_NONE: u8 = 0;
/// A chunk shared with a legacy CUDA IPC handle.
pub const KIND_LEGACY: u8 = 1;
/// A chunk shared as a file descriptor of the owner (a VMM allocation).
pub const KIND_VMM: u8 = 2;
const HANDLE_LEN: usize = 64;

/// One chunk of a remote registration as published by its owner.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteChunk {
    /// Kind ([`KIND_NONE`], [`KIND_LEGACY`] or [`KIND_VMM`]).
    pub kind: u8,
    /// Start address in the owner's process.
    pub start: u64,
    /// Size in bytes.
    pub size: u64,
    /// The IPC handle (legacy chunks).
    pub handle: Vec<u8>,
    /// The owner's descriptor number (VMM chunks).
    pub fd: u32,
}

/// What a registration exports: the public data, and the descriptors it names (VMM chunks),
/// which must stay open as long as the registration lives.
#[derive(Debug)]
pub struct Export {
    /// Published in the metadata.
    pub public: Vec<u8>,
    /// Keeps the exported VMM allocations reachable by peers; closed on drop.
    pub fds: Vec<OwnedFd>,
}

/// Builds the public data of a registration from its chunks (the driver makes the handles;
/// chunks it will not share are published as [`KIND_NONE`]).
pub fn export(dev: u32, chunks: &[Chunk]) -> Export {
    let mut fds = Vec::new();
    let mut w = Writer::with_capacity(64);
    w.u8(VERSION);
    w.u32(dev);
    w.u32(chunks.len() as u32);
    for c in chunks {
        if c.legacy_ipc
            && let Some(h) = legacy_handle(c.start)
        {
            w.u8(KIND_LEGACY);
            w.u64(c.start);
            w.u64(c.size);
            w.raw(&h);
        } else if let Some(fd) = vmm::export_fd(c.start) {
            w.u8(KIND_VMM);
            w.u64(c.start);
            w.u64(c.size);
            w.u32(fd.as_raw_fd() as u32);
            fds.push(fd);
        } else {
            w.u8(KIND_NONE);
            w.u64(c.start);
            w.u64(c.size);
        }
    }
    Export {
        public: w.finish(),
        fds,
    }
}

/// The legacy IPC handle of the allocation starting at `start`; None (with a warning: peers in
/// other processes will be refused) if the driver will not make one.
fn legacy_handle(start: u64) -> Option<[u8; HANDLE_LEN]> {
    let mut h = sys::CUipcMemHandle {
        reserved: [0; HANDLE_LEN],
    };
    let made = check(
        // SAFETY: `start` is the base of a live device allocation (just queried) and the
        // out-pointer is valid.
        unsafe { sys::cuIpcGetMemHandle(&mut h, start) },
        "cuIpcGetMemHandle",
    );
    match made {
        Ok(()) => Some(h.reserved.map(|b| b as u8)),
        Err(e) => {
            log::warn!("VRAM at {start:#x} will not be shared with other processes: {e}");
            None
        }
    }
}

/// Decodes published data; malformed input is INVALID_PARAM.
pub fn decode(bytes: &[u8]) -> Result<(u32, Vec<RemoteChunk>)> {
    let bad = |what: &str| err!(InvalidParam, "malformed CUDA IPC data: {what}");
    let mut r = Reader::new(bytes, "CUDA IPC data");
    if r.u8().map_err(|_| bad("empty"))? != VERSION {
        return Err(bad("unknown version"));
    }
    let dev = r.u32().map_err(|_| bad("truncated"))?;
    let n = r.u32().map_err(|_| bad("truncated"))?;
    if n as usize > bytes.len() {
        return Err(bad("chunk count exceeds the data"));
    }
    let mut chunks = Vec::with_capacity(n as usize);
    for _ in 0..n {
        let kind = r.u8().map_err(|_| bad("truncated"))?;
        let start = r.u64().map_err(|_| bad("truncated"))?;
        let size = r.u64().map_err(|_| bad("truncated"))?;
        if start.checked_add(size).is_none() || size == 0 {
            return Err(bad("chunk range"));
        }
        let (handle, fd) = match kind {
            KIND_LEGACY => (
                r.take(HANDLE_LEN)
                    .map_err(|_| bad("truncated handle"))?
                    .to_vec(),
                0,
            ),
            KIND_VMM => (Vec::new(), r.u32().map_err(|_| bad("truncated fd"))?),
            KIND_NONE => (Vec::new(), 0),
            _ => return Err(bad("unknown chunk kind")),
        };
        chunks.push(RemoteChunk {
            kind,
            start,
            size,
            handle,
            fd,
        });
    }
    r.finish().map_err(|_| bad("trailing bytes"))?;
    Ok((dev, chunks))
}

/// Handles opened in this process: the driver maps a given handle once per process, so equal
/// handles (several registrations on one allocation) share one mapping, counted.
static OPENED: Mutex<Vec<Opened>> = Mutex::new(Vec::new());

/// A handle mapped in this process.
struct Opened {
    handle: Vec<u8>,
    ptr: u64,
    /// Bytes the driver mapped (checked against every published size).
    mapped: u64,
    refs: usize,
}

fn too_large(size: u64, mapped: u64) -> crate::status::NixlError {
    err!(
        NotAllowed,
        "a peer published a {size}-byte VRAM chunk whose IPC mapping holds {mapped} bytes"
    )
}

fn open_handle(handle: &[u8], size: u64, dev_id: u64) -> Result<u64> {
    let mut opened = OPENED.lock();
    if let Some(entry) = opened.iter_mut().find(|o| o.handle == handle) {
        if size > entry.mapped {
            return Err(too_large(size, entry.mapped));
        }
        entry.refs += 1;
        return Ok(entry.ptr);
    }
    context::bind(dev_id)?;
    let mut h = sys::CUipcMemHandle {
        reserved: [0; HANDLE_LEN],
    };
    for (dst, src) in h.reserved.iter_mut().zip(handle) {
        *dst = *src as std::ffi::c_char;
    }
    let mut ptr: sys::CUdeviceptr = 0;
    check(
        // SAFETY: valid out-pointer; the handle came from a peer's metadata and the driver
        // validates it (a forged one fails with an error).
        unsafe {
            sys::cuIpcOpenMemHandle_v2(
                &mut ptr,
                h,
                sys::CUipcMem_flags::CU_IPC_MEM_LAZY_ENABLE_PEER_ACCESS as u32,
            )
        },
        "cuIpcOpenMemHandle",
    )?;
    // Never trust the published size: a larger one would send copies past the mapping.
    let (mut base, mut mapped) = (0, 0usize);
    let range = check(
        // SAFETY: `ptr` was just mapped; valid out-pointers.
        unsafe { sys::cuMemGetAddressRange_v2(&mut base, &mut mapped, ptr) },
        "cuMemGetAddressRange",
    );
    if range.is_err() || base != ptr || (mapped as u64) < size {
        // SAFETY: mapped above and used by nothing else yet.
        unsafe { sys::cuIpcCloseMemHandle(ptr) };
        range?;
        return Err(too_large(size, mapped as u64));
    }
    opened.push(Opened {
        handle: handle.to_vec(),
        ptr,
        mapped: mapped as u64,
        refs: 1,
    });
    Ok(ptr)
}

fn close_handle(handle: &[u8]) {
    let mut opened = OPENED.lock();
    let Some(i) = opened.iter().position(|o| o.handle == handle) else {
        return;
    };
    opened[i].refs -= 1;
    if opened[i].refs == 0 {
        let ptr = opened.swap_remove(i).ptr;
        // SAFETY: `ptr` was returned by cuIpcOpenMemHandle and no transfer uses it any more
        // (transfers hold the `RemoteVram` that owns this reference).
        unsafe { sys::cuIpcCloseMemHandle(ptr) };
    }
}

/// One chunk mapped into this process.
enum Mapped {
    /// Through the process-wide legacy IPC cache (released by handle).
    Legacy(u64),
    /// A VMM import of our own.
    Vmm(VmmMapping),
}

impl Mapped {
    fn base(&self) -> u64 {
        match self {
            Mapped::Legacy(b) => *b,
            Mapped::Vmm(m) => m.addr(),
        }
    }
}

/// A remote agent's VRAM registration, mapped into this process on first use.
pub struct RemoteVram {
    desc: Desc,
    dev: u32,
    chunks: Vec<RemoteChunk>,
    /// Each chunk's mapping, once opened.
    mapped: Mutex<Option<Vec<Mapped>>>,
}

impl RemoteVram {
    /// Learns a registration from its published data; nothing is opened yet.
    pub fn new(desc: Desc, public: &[u8]) -> Result<RemoteVram> {
        let (dev, chunks) = decode(public)?;
        Ok(RemoteVram {
            desc,
            dev,
            chunks,
            mapped: Mutex::new(None),
        })
    }

    /// The GPU ordinal the owner registered it on.
    pub fn owner_device(&self) -> u32 {
        self.dev
    }

    /// Opens every chunk (once); `pidfd` names the owner process, for VMM chunks.
    fn bases(&self, open_on: u64, pidfd: Option<RawFd>) -> Result<Vec<u64>> {
        let mut mapped = self.mapped.lock();
        if let Some(m) = &*mapped {
            return Ok(m.iter().map(Mapped::base).collect());
        }
        let mut opened: Vec<Mapped> = Vec::with_capacity(self.chunks.len());
        let result = self.chunks.iter().try_for_each(|c| {
            let m = match (c.kind, pidfd) {
                (KIND_LEGACY, _) => Mapped::Legacy(open_handle(&c.handle, c.size, open_on)?),
                (KIND_VMM, Some(pidfd)) => Mapped::Vmm(vmm::import(pidfd, c.fd, c.size, open_on)?),
                _ => {
                    return Err(err!(
                        NotSupported,
                        "remote VRAM at {:#x} cannot be shared with this process (allocated without IPC or POSIX-fd sharing)",
                        c.start
                    ));
                }
            };
            opened.push(m);
            Ok(())
        });
        if let Err(e) = result {
            release(&self.chunks, opened);
            return Err(e);
        }
        let bases = opened.iter().map(Mapped::base).collect();
        *mapped = Some(opened);
        Ok(bases)
    }

    /// Translates a remote descriptor (inside this registration, already checked) into local
    /// pieces `(local address, length)`, split where chunks end; maps on first use, in the
    /// context of GPU `open_on` (`pidfd`: the owner process, needed for VMM chunks).
    pub fn translate(
        &self,
        d: &ResolvedDesc,
        open_on: u64,
        pidfd: Option<RawFd>,
    ) -> Result<Vec<(u64, u64)>> {
        let inside = d.addr >= self.desc.addr
            && d.addr
                .checked_add(d.len)
                .zip(self.desc.end())
                .is_some_and(|(e, re)| e <= re);
        if !inside {
            return Err(err!(
                NotAllowed,
                "descriptor {:#x}+{} lies outside the remote VRAM registration",
                d.addr,
                d.len
            ));
        }
        let bases = self.bases(open_on, pidfd)?;
        let mut pieces = Vec::new();
        let (mut at, end) = (d.addr, d.addr + d.len);
        for (c, base) in self.chunks.iter().zip(&bases) {
            if at >= end {
                break;
            }
            if at >= c.start && at < c.start + c.size {
                let take = (c.start + c.size).min(end) - at;
                pieces.push((base + (at - c.start), take));
                at += take;
            }
        }
        if at < end && d.len > 0 {
            return Err(err!(
                NotAllowed,
                "descriptor {:#x}+{} is not covered by the published chunks",
                d.addr,
                d.len
            ));
        }
        Ok(pieces)
    }
}

/// Releases mappings made for `chunks` (pairwise, possibly fewer mappings than chunks).
fn release(chunks: &[RemoteChunk], mapped: Vec<Mapped>) {
    for (c, m) in chunks.iter().zip(mapped) {
        if let Mapped::Legacy(_) = m {
            close_handle(&c.handle);
        }
        // VMM mappings unmap themselves when dropped here.
    }
}

impl Drop for RemoteVram {
    fn drop(&mut self) {
        if let Some(m) = self.mapped.lock().take() {
            release(&self.chunks, m);
        }
    }
}

/// One remote agent's VRAM registrations by key; dropping it closes what nothing else uses.
#[derive(Default)]
pub struct PeerVram {
    by_key: Mutex<HashMap<u64, Arc<RemoteVram>>>,
}

impl PeerVram {
    /// Learns (or replaces) a registration.
    pub fn insert(&self, key: u64, region: RemoteVram) {
        self.by_key.lock().insert(key, Arc::new(region));
    }

    /// The registration a descriptor's key names.
    pub fn get(&self, key: u64) -> Result<Arc<RemoteVram>> {
        self.by_key.lock().get(&key).cloned().ok_or_else(|| {
            err!(
                NotAllowed,
                "no remote VRAM registration with the presented key"
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn published(chunks: &[(u8, u64, u64)]) -> Vec<u8> {
        let mut w = Writer::with_capacity(64);
        w.u8(VERSION);
        w.u32(0);
        w.u32(chunks.len() as u32);
        for &(kind, start, size) in chunks {
            w.u8(kind);
            w.u64(start);
            w.u64(size);
            if kind == KIND_LEGACY {
                w.raw(&[7u8; HANDLE_LEN]);
            }
            if kind == KIND_VMM {
                w.u32(42);
            }
        }
        w.finish()
    }

    #[test]
    fn decode_round_trips_and_refuses_garbage() {
        let data = published(&[
            (KIND_LEGACY, 0x1000, 0x1000),
            (KIND_NONE, 0x2000, 0x800),
            (KIND_VMM, 0x2800, 0x800),
        ]);
        let (dev, chunks) = decode(&data).unwrap();
        assert_eq!(dev, 0);
        assert_eq!(chunks.len(), 3);
        assert_eq!(chunks[0].handle, vec![7u8; HANDLE_LEN]);
        assert!(chunks[1].handle.is_empty());
        assert_eq!((chunks[2].kind, chunks[2].fd), (KIND_VMM, 42));
        for cut in 0..data.len() {
            assert!(decode(&data[..cut]).is_err(), "truncated at {cut}");
        }
        let mut extra = data.clone();
        extra.push(0);
        assert!(decode(&extra).is_err());
        assert!(decode(&published(&[(9, 0, 1)])).is_err());
        assert!(decode(&published(&[(KIND_NONE, u64::MAX, 2)])).is_err());
    }

    #[test]
    fn translate_refuses_ranges_outside_the_registration() {
        let r = RemoteVram::new(
            Desc::new(0x1000, 0x1800, 0),
            &published(&[(KIND_LEGACY, 0x1000, 0x1000), (KIND_LEGACY, 0x2000, 0x800)]),
        )
        .unwrap();
        let d = |addr, len| ResolvedDesc {
            addr,
            len,
            dev_id: 0,
            key: 1,
        };
        // Outside: refused before any driver call, so this runs without a GPU.
        for (addr, len) in [(0xfff, 1), (0x27ff, 2), (u64::MAX, 2)] {
            let e = r.translate(&d(addr, len), 0, None).unwrap_err();
            assert_eq!(e.status(), crate::Status::NotAllowed, "{addr:#x}+{len}");
        }
    }
}
