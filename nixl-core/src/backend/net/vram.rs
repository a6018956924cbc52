//! VRAM through the network backend (feature `cuda`): registration checks, IPC publication
//! and opening, and transfer routes, all delegated to [`crate::backend::cuda`].
//!
//! VRAM registrations live in their own access table, never in the DRAM one: the TCP server
//! and cross-memory attach touch memory through host pointers, and a device address must never
//! reach them. In the shared registration table (for same-host peers) VRAM keys are stored
//! XOR [`REGTAB_TAG`], so a DRAM access can never validate against a VRAM registration.
//!
//! Routes, by where the other side lives:
//! - this process (loopback or an agent in it): device copies on a dedicated stream, under the
//!   read lock of the target's VRAM or DRAM access table (deregistration waits for the copies);
//! - another process on this host, remote VRAM: the owner's published CUDA IPC handles,
//!   opened once per peer and key (closed on `disconnect`), checked against the owner's shared
//!   registration table, then device copies (peer-to-peer where the GPUs allow);
//!
//!   these two are queued by `post` itself, on the caller's thread, and finished by the next
//!   status poll or the watcher thread (`vram/device.rs`); the rest run on worker threads:
//! - local VRAM and remote DRAM on any other route: pinned staging buffers, chunked and
//!   pipelined, each chunk moved by the DRAM route (cross-memory attach or TCP);
//! - remote VRAM over TCP: ordinary TCP frames (staged first where the local side is VRAM);
//!   the target's listener stages them into or out of its VRAM (`vram/tcp.rs`).

mod device;
pub(super) mod tcp;

use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::RwLock;

use super::access::AccessTable;
use super::mover::peer_of;
use super::peer::{NetPeer, Route};
use super::{Mover, Shared};
use crate::backend::cuda::{self, ipc::PeerVram, ipc::RemoteVram};
use crate::backend::{PeerHandle, ResolvedDesc, Target, XferJob};
use crate::registry::Region;
use crate::status::{Result, err};
use crate::types::{MemType, XferOp};

/// XORed into VRAM keys in the shared registration table.
pub(super) const REGTAB_TAG: u64 = u64::from_le_bytes(*b"VRAMREGN");

/// One agent's VRAM state inside the network backend.
#[derive(Default)]
pub(super) struct VramState {
    /// Shared so that queued device copies can hold it read-locked until they complete.
    access: Arc<RwLock<AccessTable>>,
    exports: Mutex<HashMap<u64, cuda::ipc::Export>>,
    peers: Mutex<HashMap<u64, Arc<PeerVram>>>,
}

fn write(t: &RwLock<AccessTable>) -> parking_lot::RwLockWriteGuard<'_, AccessTable> {
    t.write()
}

/// The VRAM access table, read-locked (the TCP server's check, `vram/tcp.rs`).
pub(super) fn read_table(shared: &Shared) -> parking_lot::RwLockReadGuard<'_, AccessTable> {
    shared.vram.access.read()
}

/// Whether a job touches VRAM on either side.
pub(super) fn involves_vram(job: &XferJob) -> bool {
    job.local_mem == MemType::Vram || job.remote_mem == MemType::Vram
}

/// Checks a VRAM registration with the driver and makes it reachable by key.
pub(super) fn register(shared: &Shared, region: &Region) -> Result<()> {
    let public = cuda::register(region)?;
    let v = &shared.vram;
    let mut access = write(&v.access);
    access.insert(region.key, region.desc);
    if let Some(t) = &shared.regtab {
        t.insert(region.key ^ REGTAB_TAG, region.desc);
    }
    v.exports.lock().insert(region.key, public);
    Ok(())
}

/// Forgets a VRAM registration; waits for in-process copies that use it.
pub(super) fn deregister(shared: &Shared, region: &Region) {
    let v = &shared.vram;
    let mut access = write(&v.access);
    access.remove(region.key);
    if let Some(t) = &shared.regtab {
        t.remove(region.key ^ REGTAB_TAG);
    }
    v.exports.lock().remove(&region.key);
}

/// Forgets everything (shutdown).
pub(super) fn clear(shared: &Shared) {
    write(&shared.vram.access).clear();
    shared.vram.exports.lock().clear();
    shared.vram.peers.lock().clear();
}

/// What peers need to map a registration (its CUDA IPC handles).
pub(super) fn public_data(shared: &Shared, region: &Region) -> Vec<u8> {
    shared
        .vram
        .exports
        .lock()
        .get(&region.key)
        .map(|e| e.public.clone())
        .unwrap_or_default()
}

/// Learns a remote VRAM registration; kept only for same-host peers in other processes (the
/// only ones that map IPC handles). Opening waits for the first transfer.
pub(super) fn load_remote_region(
    shared: &Shared,
    peer: &PeerHandle,
    region: &Region,
) -> Result<()> {
    let peer = peer_of(peer)?;
    if !matches!(peer.route, Route::CrossMemory { .. }) || region.public.is_empty() {
        return Ok(());
    }
    let remote = RemoteVram::new(region.desc, &region.public)?;
    shared
        .vram
        .peers
        .lock()
        .entry(peer.info.instance)
        .or_default()
        .insert(region.key, remote);
    Ok(())
}

/// Drops a peer's opened IPC mappings (closed once no transfer uses them).
pub(super) fn disconnect(shared: &Shared, peer: &NetPeer) {
    shared.vram.peers.lock().remove(&peer.info.instance);
}

/// Moves the bytes of a VRAM job that [`queue_on_device`] left (DRAM of another process, by
/// cross-memory attach, or another host, by TCP), returning once every device copy has
/// completed (so a notification sent next follows the data).
fn move_bytes(mover: &Mover, job: &XferJob, stop: &dyn Fn() -> bool) -> Result<()> {
    let (local, remote) = (&job.local[..], &job.remote[..]);
    match job.local_mem {
        // Remote VRAM over TCP from local DRAM: plain TCP frames; the target stages
        // (`vram/tcp.rs`).
        MemType::Dram => mover.move_bytes(&job.target, job.op, local, remote, stop),
        _ => {
            // Local VRAM: stage through pinned buffers, moving each chunk by the host route
            // (cross-memory attach or TCP to remote DRAM, TCP to remote VRAM, which the target
            // stages in turn); the target checks its registrations for every chunk.
            let dev = local.first().map_or(0, |d| d.dev_id);
            let target = &job.target;
            match job.op {
                // SAFETY: local VRAM descriptors were resolved against this agent's registrations.
                XferOp::Write => unsafe {
                    cuda::staging::vram_to_host(
                        dev,
                        local,
                        remote,
                        &mut |staged, rem| {
                            mover.move_bytes(target, XferOp::Write, staged, rem, stop)
                        },
                        stop,
                    )
                },
                // SAFETY: as above.
                XferOp::Read => unsafe {
                    cuda::staging::host_to_vram(
                        dev,
                        local,
                        remote,
                        &mut |staged, rem| {
                            mover.move_bytes(target, XferOp::Read, staged, rem, stop)
                        },
                        stop,
                    )
                },
            }
        }
    }
}

/// Queues the copies of a job the GPU moves alone — both sides in this process, or remote
/// VRAM of a process on this host through its IPC mappings — after checking the target's
/// registrations; None for routes that stage through pinned buffers or go over TCP.
fn queue_on_device(mover: &Mover, job: &XferJob) -> Result<Option<device::Queued>> {
    let peer = match &job.target {
        Target::Loopback => return queue_in_process(&mover.shared, job).map(Some),
        Target::Peer(h) => peer_of(h)?,
    };
    match &peer.route {
        Route::SameProcess(weak) => {
            let shared = peer.in_process(weak)?;
            queue_in_process(&shared, job)
                .map(Some)
                .map_err(|e| super::peer::named(peer, e))
        }
        Route::CrossMemory { pidfd, regtab, pid } if job.remote_mem == MemType::Vram => {
            peer.ensure_running(*pid, pidfd)?;
            let tagged: Vec<ResolvedDesc> = job
                .remote
                .iter()
                .map(|d| ResolvedDesc {
                    key: d.key ^ REGTAB_TAG,
                    ..*d
                })
                .collect();
            // The hold ends here: device copies are not counted in flight (only DRAM
            // deregistration waits for same-host copies).
            if regtab
                .check(&tagged)
                .map_err(|e| super::peer::named(peer, e))?
                .is_none()
            {
                return Err(super::peer::named(
                    peer,
                    err!(
                        NotAllowed,
                        "its registration table is full and cannot vouch for this VRAM"
                    ),
                ));
            }
            queue_over_ipc(&mover.shared, peer, pidfd, job).map(Some)
        }
        Route::CrossMemory { .. } | Route::Tcp => Ok(None),
    }
}

/// The GPU whose stream runs a job's copies: the local VRAM's, else the remote VRAM's.
fn copy_device(job: &XferJob) -> u64 {
    let side = if job.local_mem == MemType::Vram {
        &job.local
    } else {
        &job.remote
    };
    side.first().map_or(0, |d| d.dev_id)
}

/// Fails if the agent that owns the remote side is shutting down.
fn ensure_open(target: &Shared) -> Result<()> {
    if target
        .shutting_down
        .load(std::sync::atomic::Ordering::Acquire)
    {
        return Err(err!(
            RemoteDisconnect,
            "agent {} is shutting down",
            target.agent_name
        ));
    }
    Ok(())
}

/// Both sides in this process: the remote side is checked against the target's VRAM or DRAM
/// table, which stays read-locked (its deregistrations wait) until the queued copies
/// complete. Pageable host memory makes the driver copy it before `cuMemcpyAsync` returns, as
/// `cudaMemcpyAsync` does; pinned memory is copied asynchronously.
fn queue_in_process(target: &Shared, job: &XferJob) -> Result<device::Queued> {
    ensure_open(target)?;
    let table = match job.remote_mem {
        MemType::Vram => target.vram.access.read_arc(),
        _ => target.access.read_arc(),
    };
    table.check(&job.remote)?;
    if job.local_mem == MemType::Vram && job.remote_mem == MemType::Vram {
        peer_access(&job.local, &job.remote)?;
    }
    let pieces: Vec<(u64, u64)> = job.remote.iter().map(|d| (d.addr, d.len)).collect();
    // SAFETY: local descriptors are this agent's registrations (checked at request creation),
    // remote ones were just checked against the target's live registrations, kept by the
    // read lock that `Queued` holds until the copies have completed.
    unsafe { device::Queued::new(copy_device(job), job, &pieces, device::Hold::Table(table)) }
}

/// Enables peer-to-peer between the GPUs of each VRAM pair (once per pair of devices).
fn peer_access(local: &[ResolvedDesc], remote: &[ResolvedDesc]) -> Result<()> {
    let mut seen: Vec<(u64, u64)> = Vec::new();
    for (l, r) in local.iter().zip(remote) {
        if l.dev_id != r.dev_id && !seen.contains(&(l.dev_id, r.dev_id)) {
            seen.push((l.dev_id, r.dev_id));
            cuda::prepare_peer(l.dev_id, r.dev_id)?;
        }
    }
    Ok(())
}

/// Remote VRAM of a same-host process, through its IPC handles (opened on first use), queued;
/// the mappings used stay open until the copies complete.
fn queue_over_ipc(
    shared: &Shared,
    peer: &NetPeer,
    pidfd: &std::os::fd::OwnedFd,
    job: &XferJob,
) -> Result<device::Queued> {
    use std::os::fd::AsRawFd;
    let regions = shared
        .vram
        .peers
        .lock()
        .get(&peer.info.instance)
        .cloned()
        .ok_or_else(|| {
            err!(
                NotSupported,
                "agent {} published no CUDA IPC handles for its VRAM",
                peer.name
            )
        })?;
    let dev = copy_device(job);
    let open_on = if job.local_mem == MemType::Vram {
        dev
    } else {
        0
    };
    let mut pieces = Vec::with_capacity(job.remote.len());
    // Hold every mapping used until the copies complete.
    let mut held = Vec::new();
    for r in job.remote.iter() {
        let region = regions.get(r.key)?;
        pieces.extend(
            region
                .translate(r, open_on, Some(pidfd.as_raw_fd()))
                .map_err(|e| super::peer::named(peer, e))?,
        );
        held.push(region);
    }
    // SAFETY: local descriptors are this agent's registrations; remote pieces lie inside IPC
    // mappings of registrations the owner still lists (its shared table was just checked),
    // kept open by `Queued` until the copies have completed.
    unsafe { device::Queued::new(open_on, job, &pieces, device::Hold::Mappings(held)) }
}

/// Posts a VRAM job. Copies the GPU moves alone are checked and queued here, on the caller's
/// thread, and finish when a status poll or the watcher thread sees them complete
/// (`vram/device.rs`); other routes run on a worker thread. Either way the notification is
/// sent only after the copies have completed.
pub(super) fn post(
    backend: &super::NetBackend,
    job: XferJob,
) -> Result<Arc<crate::backend::Completion>> {
    for mem in [job.local_mem, job.remote_mem] {
        if !matches!(mem, MemType::Dram | MemType::Vram) {
            return Err(err!(
                NotSupported,
                "the network backend moves DRAM and VRAM, not {} to {}",
                job.local_mem,
                job.remote_mem
            ));
        }
    }
    // Fail early, in post, where CUDA is unusable.
    cuda::driver::driver()?;
    let executor = backend.executor()?;
    let queued = {
        // The application's thread: its current context is restored afterwards.
        let _ctx = cuda::context::Scoped::bind(copy_device(&job))?;
        queue_on_device(&backend.mover, &job)?
    };
    let completion = Arc::new(match queued {
        Some(_) => crate::backend::Completion::for_device_copies(1),
        None => crate::backend::Completion::new(1),
    });
    {
        let mut inflight = backend.inflight.lock();
        inflight.retain(|w| w.strong_count() > 0);
        inflight.push(Arc::downgrade(&completion));
    }
    let (c, mover) = (completion.clone(), backend.mover.clone());
    if let Some(queued) = queued {
        device::track(queued, job, c, mover)?;
        return Ok(completion);
    }
    executor.spawn(move || {
        let moved = if c.enter() {
            let r = move_bytes(&mover, &job, &|| c.is_canceled());
            c.leave();
            r
        } else {
            Err(err!(Canceled, "the request was released"))
        };
        let outcome = moved.and_then(|()| match &job.notif {
            Some(msg) => mover.notify(&job.target, msg),
            None => Ok(()),
        });
        c.finish_part(outcome);
    });
    Ok(completion)
}
