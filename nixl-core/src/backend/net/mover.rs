//! Moving bytes by the peer's route (in-process copy, cross-memory attach, TCP) and
//! delivering notifications; shared by `post` and the worker threads.

use super::*;

/// What worker threads need to move bytes and deliver notifications.
#[derive(Clone)]
pub(super) struct Mover {
    pub(super) shared: Arc<Shared>,
}

pub(super) fn peer_of(handle: &PeerHandle) -> Result<&NetPeer> {
    handle.downcast_ref::<NetPeer>().ok_or_else(|| {
        err!(
            InvalidParam,
            "peer handle does not belong to the network backend"
        )
    })
}

impl Mover {
    /// Moves one run of pairs by the peer's route; the notification is the caller's job.
    pub(super) fn move_bytes(
        &self,
        target: &Target,
        op: XferOp,
        local: &[ResolvedDesc],
        remote: &[ResolvedDesc],
        stop: &dyn Fn() -> bool,
    ) -> Result<()> {
        let peer = match target {
            Target::Loopback => return copy_in_process(&self.shared, op, local, remote),
            Target::Peer(h) => peer_of(h)?,
        };
        match &peer.route {
            Route::SameProcess(weak) => {
                let shared = peer.in_process(weak)?;
                copy_in_process(&shared, op, local, remote).map_err(|e| peer::named(peer, e))
            }
            Route::CrossMemory { pid, pidfd, regtab } if peer.cma_allowed() => {
                peer.ensure_running(*pid, pidfd)?;
                // The target takes no part in cross-memory attach: check its live
                // registrations through the table it shares, and stay counted in flight on
                // them until the copy is over (its deregistration waits for that).
                let Some(hold) = regtab.check(remote).map_err(|e| peer::named(peer, e))? else {
                    // The table cannot vouch for every registration: let the target check.
                    return move_tcp(peer, op, local, remote);
                };
                // Validated: copy through the peer's shared mapping when it has one.
                if shm::try_copy(peer.info.instance, op, local, remote) {
                    return Ok(());
                }
                let result = cma::transfer(*pid, op, local, remote, stop);
                drop(hold);
                match result {
                    Ok(()) => Ok(()),
                    Err(cma::CmaError::NotPermitted) => {
                        peer.refuse_cma();
                        move_tcp(peer, op, local, remote)
                    }
                    Err(cma::CmaError::Failed(e)) => {
                        if e.status() == crate::Status::RemoteDisconnect {
                            peer.close();
                        }
                        Err(e)
                    }
                }
            }
            _ => move_tcp(peer, op, local, remote),
        }
    }

    /// Delivers a notification; called only once the data is visible at the target.
    pub(super) fn notify(&self, target: &Target, msg: &[u8]) -> Result<()> {
        let peer = match target {
            Target::Loopback => {
                self.shared
                    .notifs
                    .push(&self.shared.agent_name, msg.to_vec());
                return Ok(());
            }
            Target::Peer(h) => peer_of(h)?,
        };
        match &peer.route {
            Route::SameProcess(weak) => {
                let began = std::time::Instant::now();
                let shared = peer.in_process(weak)?;
                shared.notifs.push(&self.shared.agent_name, msg.to_vec());
                peer.notif_sent(began);
                Ok(())
            }
            _ => peer.send_notif(msg),
        }
    }

    pub(super) fn goes_over_tcp(&self, target: &Target) -> bool {
        let Target::Peer(h) = target else {
            return false;
        };
        peer_of(h).is_ok_and(|p| match p.route {
            Route::Tcp => true,
            Route::CrossMemory { ref regtab, .. } => !p.cma_allowed() || regtab.overflowed(),
            Route::SameProcess(_) => false,
        })
    }
}

pub(super) fn move_tcp(
    peer: &NetPeer,
    op: XferOp,
    local: &[ResolvedDesc],
    remote: &[ResolvedDesc],
) -> Result<()> {
    match op {
        XferOp::Write => peer.tcp_write(local, remote, None),
        XferOp::Read => peer.tcp_read(local, remote, None),
    }
}

/// Copies within this process after checking the target's registrations; the target's read
/// lock is held for the copy, so its deregistration waits until the bytes are in.
pub(super) fn copy_in_process(
    target: &Shared,
    op: XferOp,
    local: &[ResolvedDesc],
    remote: &[ResolvedDesc],
) -> Result<()> {
    if target.shutting_down.load(Ordering::Acquire) {
        return Err(err!(
            RemoteDisconnect,
            "agent {} is shutting down",
            target.agent_name
        ));
    }
    let access = read_access(target);
    access.check(remote)?;
    // SAFETY: local descriptors are registered with the initiator (checked at request
    // creation); remote ones were just checked against the target's live registrations.
    unsafe { memory::copy_pairs(op, local, remote) };
    Ok(())
}

/// Counts finished parts of a split job and keeps the first error.
pub(super) struct PartTracker {
    remaining: AtomicU64,
    first_error: Mutex<Option<NixlError>>,
}

impl PartTracker {
    pub(super) fn new(parts: usize) -> Self {
        PartTracker {
            remaining: AtomicU64::new(parts as u64),
            first_error: Mutex::new(None),
        }
    }

    /// Records a part; returns the overall outcome when it was the last one.
    pub(super) fn finish(&self, result: Result<()>) -> Option<Result<()>> {
        if let Err(e) = result {
            self.first_error.lock().get_or_insert(e);
        }
        if self.remaining.fetch_sub(1, Ordering::AcqRel) != 1 {
            return None;
        }
        Some(match self.first_error.lock().take() {
            Some(e) => Err(e),
            None => Ok(()),
        })
    }
}
