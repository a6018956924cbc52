//! Remote VRAM over TCP, target side (feature `cuda`): the control listener serves WRITEs into
//! and READs from this agent's registered VRAM through pinned staging buffers, pipelined with
//! the device copies. The wire format is the DRAM one; which table a request targets is decided
//! by its keys (VRAM and DRAM registrations have unrelated random keys, in separate tables), and
//! every descriptor is checked against the VRAM table before any byte moves.

use super::super::Shared;
use super::super::proto::{self, Kind};
use crate::backend::ResolvedDesc;
use crate::backend::cuda;
use crate::sockio::Timed;
use crate::status::{NixlError, err};

type IoResult<T> = std::io::Result<T>;

/// Refused WRITE payloads up to this size are read and dropped (as for DRAM); larger ones
/// close the connection.
const MAX_DISCARD: u64 = 256 << 20;

/// Whether every descriptor names a live VRAM registration (the request is for this module).
pub(in crate::backend::net) fn targets_vram(shared: &Shared, descs: &[ResolvedDesc]) -> bool {
    !descs.is_empty() && super::read_table(shared).check(descs).is_ok()
}

fn io_lost(e: &std::io::Error) -> NixlError {
    err!(RemoteDisconnect, "connection lost while staging VRAM: {e}")
}

/// Receives a WRITE's payload into VRAM: socket → pinned chunk → device, the next chunk read
/// while the previous one is copied. The notification is queued once every copy completed.
pub(in crate::backend::net) fn serve_write(
    shared: &Shared,
    stream: &mut Timed<'_>,
    peer: &str,
    descs: &[ResolvedDesc],
    notif: Option<Vec<u8>>,
    total: u64,
) -> IoResult<()> {
    let access = super::read_table(shared);
    let mut received = 0u64;
    let mut lost: Option<std::io::Error> = None;
    let mut source = |staged: &[ResolvedDesc], _: &[ResolvedDesc]| {
        // SAFETY: staged ranges lie in pinned buffers owned by this transfer.
        unsafe { proto::read_exact_descs(stream, staged) }.map_err(|e| {
            let lost_err = io_lost(&e);
            lost = Some(e);
            lost_err
        })?;
        received += staged.iter().map(|d| d.len).sum::<u64>();
        Ok(())
    };
    let answer = access.check(descs).and_then(|()| {
        // SAFETY: every descriptor was just checked against a live VRAM registration, and the
        // read lock keeps it registered until the copies have completed.
        unsafe {
            cuda::staging::host_to_vram(descs[0].dev_id, descs, descs, &mut source, &|| false)
        }
    });
    drop(access);
    if let Some(e) = lost {
        return Err(e);
    }
    match &answer {
        Ok(()) => {
            if let Some(msg) = notif {
                shared.notifs.push(peer, msg);
            }
        }
        Err(e) => {
            log::warn!(
                "agent {}: refused or failed a VRAM WRITE from {peer}: {e}",
                shared.agent_name
            );
            let rest = total - received;
            if rest > MAX_DISCARD {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    "refused an oversized VRAM WRITE",
                ));
            }
            proto::discard(stream, rest)?;
        }
    }
    proto::write_all_slices(stream, &[&proto::status_frame(Kind::Resp, &answer)])
}

/// Sends VRAM for a READ: device → pinned chunk → socket, the next chunk copied while the
/// previous one is sent. A failure after the answer closes the connection (the peer sees it).
pub(in crate::backend::net) fn serve_read(
    shared: &Shared,
    stream: &mut Timed<'_>,
    descs: &[ResolvedDesc],
) -> IoResult<()> {
    let access = super::read_table(shared);
    let checked = access
        .check(descs)
        .and_then(|()| cuda::driver::driver().map(|_| ()));
    proto::write_all_slices(stream, &[&proto::status_frame(Kind::Resp, &checked)])?;
    if checked.is_err() {
        return Ok(());
    }
    let mut lost: Option<std::io::Error> = None;
    let mut sink = |staged: &[ResolvedDesc], _: &[ResolvedDesc]| {
        // SAFETY: staged ranges lie in pinned buffers owned by this transfer.
        unsafe { proto::write_all_descs(stream, &[], staged) }.map_err(|e| {
            let lost_err = io_lost(&e);
            lost = Some(e);
            lost_err
        })
    };
    // SAFETY: checked against live VRAM registrations; the read lock keeps them registered.
    let sent =
        unsafe { cuda::staging::vram_to_host(descs[0].dev_id, descs, descs, &mut sink, &|| false) };
    drop(access);
    match (lost, sent) {
        (Some(e), _) => Err(e),
        (None, Ok(())) => Ok(()),
        (None, Err(e)) => Err(std::io::Error::other(format!(
            "VRAM READ failed after its answer: {e}"
        ))),
    }
}
