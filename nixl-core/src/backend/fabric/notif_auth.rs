//! Notifications authenticated like the net backend's connections: when the agents share a
//! secret (`NIXL_RS_SECRET` / `AgentConfig::auth_secret`), every notification carries
//! HMAC-SHA256(secret, sequence ‖ sender instance ‖ receiver's endpoint address ‖ sender name ‖
//! message). The receiver drops one whose proof does not check (no secret, another secret, a
//! forged name or message, or one meant for another endpoint) and one whose (instance,
//! sequence) it has already accepted, so a captured notification cannot be delivered twice.
//! libfabric has no connection handshake to hang a challenge on, hence a proof per message.
//! Without a secret nothing is checked (as with the net backend without one).

use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use super::wire::Notif;
use crate::status::{Result, err};

/// Senders whose replay windows are kept; past this the oldest is forgotten (a replay of
/// that sender's notifications would then be accepted again: logged).
const MAX_SENDERS: usize = 4096;
/// Out-of-order arrivals accepted behind the highest sequence seen (posters on several
/// threads may overtake each other).
const WINDOW: u64 = 64;

/// Highest sequence accepted and which of the `WINDOW` below it were.
#[derive(Clone, Copy)]
struct Seen {
    top: u64,
    bits: u64,
    /// Insertion order, for eviction.
    born: u64,
}

impl Seen {
    /// Accepts `seq` once; false for a repeat or one too far behind.
    fn accept(&mut self, seq: u64) -> bool {
        if seq > self.top {
            let shift = seq - self.top;
            self.bits = if shift >= WINDOW {
                0
            } else {
                self.bits << shift
            };
            self.bits |= 1;
            self.top = seq;
            return true;
        }
        let back = self.top - seq;
        if back >= WINDOW || self.bits & (1 << back) != 0 {
            return false;
        }
        self.bits |= 1 << back;
        true
    }
}

/// Replay windows by (sender name, sender instance), and a counter ordering their creation.
type Windows = (HashMap<(String, u64), Seen>, u64);

/// Seals outgoing and opens incoming notifications of one backend.
pub struct NotifAuth {
    secret: Option<Vec<u8>>,
    instance: u64,
    next_seq: AtomicU64,
    seen: Mutex<Windows>,
}

impl NotifAuth {
    /// With `secret` None, notifications are neither proven nor checked.
    pub fn new(secret: Option<Vec<u8>>) -> NotifAuth {
        NotifAuth {
            secret,
            instance: crate::util::random_u64(),
            next_seq: AtomicU64::new(1),
            seen: Mutex::new((HashMap::new(), 0)),
        }
    }

    /// Whether notifications are authenticated.
    pub fn enabled(&self) -> bool {
        self.secret.is_some()
    }

    /// The wire form of `msg` from `sender` to the endpoint whose address is `dest`.
    pub fn seal(&self, dest: &[u8], sender: &str, msg: &[u8]) -> Result<Vec<u8>> {
        let seq = self.next_seq.fetch_add(1, Ordering::Relaxed);
        let tag = self.secret.as_ref().map_or_else(Vec::new, |s| {
            crate::auth::tag(s, seq, self.instance, &[dest, sender.as_bytes(), msg]).to_vec()
        });
        Notif {
            sender: sender.to_owned(),
            msg: msg.to_vec(),
            instance: self.instance,
            seq,
            tag,
        }
        .encode()
    }

    /// Parses a notification received on the endpoint whose address is `own`, checking its
    /// proof and that it was not accepted before when a secret is configured.
    pub fn open(&self, own: &[u8], bytes: &[u8]) -> Result<(String, Vec<u8>)> {
        let n = Notif::decode(bytes)?;
        let Some(secret) = &self.secret else {
            return Ok((n.sender, n.msg));
        };
        let parts: [&[u8]; 3] = [own, n.sender.as_bytes(), &n.msg];
        if !crate::auth::verify_tag(secret, n.seq, n.instance, &parts, &n.tag) {
            return Err(err!(
                NotAllowed,
                "notification claiming to come from {:?} has no valid proof of the shared secret",
                n.sender
            ));
        }
        let mut seen = self.seen.lock();
        let (map, clock) = &mut *seen;
        *clock += 1;
        let born = *clock;
        if !map.contains_key(&(n.sender.clone(), n.instance)) && map.len() >= MAX_SENDERS {
            let oldest = map
                .iter()
                .min_by_key(|(_, s)| s.born)
                .map(|(k, _)| k.clone());
            if let Some(k) = oldest {
                log::warn!(
                    "LIBFABRIC: forgetting the replay window of {:?} ({MAX_SENDERS} senders kept)",
                    k.0
                );
                map.remove(&k);
            }
        }
        let entry = map.entry((n.sender.clone(), n.instance)).or_insert(Seen {
            top: 0,
            bits: 0,
            born,
        });
        if !entry.accept(n.seq) {
            return Err(err!(
                NotAllowed,
                "notification {} from {:?} replayed (or older than the last {WINDOW})",
                n.seq,
                n.sender
            ));
        }
        Ok((n.sender, n.msg))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::Status;

    #[test]
    fn without_a_secret_anything_well_formed_is_delivered() {
        let a = NotifAuth::new(None);
        let b = NotifAuth::new(None);
        let w = a.seal(b"dest", "alice", b"hi").unwrap();
        assert_eq!(
            b.open(b"other", &w).unwrap(),
            ("alice".into(), b"hi".to_vec())
        );
        assert_eq!(
            b.open(b"other", &w).unwrap().1,
            b"hi",
            "no replay check without a secret"
        );
    }

    #[test]
    fn with_a_secret_forged_misdirected_and_replayed_notifications_are_refused() {
        let a = NotifAuth::new(Some(b"k".to_vec()));
        let b = NotifAuth::new(Some(b"k".to_vec()));
        let w = a.seal(b"B", "alice", b"hi").unwrap();
        assert_eq!(b.open(b"B", &w).unwrap(), ("alice".into(), b"hi".to_vec()));
        let e = b.open(b"B", &w).unwrap_err();
        assert_eq!(e.status(), Status::NotAllowed, "replay: {e}");
        let other = a.seal(b"C", "alice", b"hi").unwrap();
        assert!(b.open(b"B", &other).is_err(), "meant for another endpoint");
        let unsigned = NotifAuth::new(None).seal(b"B", "alice", b"hi").unwrap();
        assert!(b.open(b"B", &unsigned).is_err(), "no proof");
        let wrong = NotifAuth::new(Some(b"x".to_vec()))
            .seal(b"B", "alice", b"hi")
            .unwrap();
        assert!(b.open(b"B", &wrong).is_err(), "another secret");
        let mut n = Notif::decode(&a.seal(b"B", "alice", b"hi").unwrap()).unwrap();
        n.sender = "mallory".into();
        assert!(
            b.open(b"B", &n.encode().unwrap()).is_err(),
            "renamed sender"
        );
        n.sender = "alice".into();
        n.msg = b"ho".to_vec();
        assert!(
            b.open(b"B", &n.encode().unwrap()).is_err(),
            "changed message"
        );
    }

    #[test]
    fn the_replay_window_takes_reordering_but_each_sequence_once() {
        let mut s = Seen {
            top: 0,
            bits: 0,
            born: 0,
        };
        assert!(s.accept(3));
        assert!(s.accept(1), "behind the top, first time");
        assert!(!s.accept(1));
        assert!(!s.accept(3));
        assert!(s.accept(100));
        assert!(!s.accept(100 - WINDOW), "too old to tell");
        assert!(s.accept(100 - WINDOW + 1));
        assert!(s.accept(2000), "a jump clears the window");
        assert!(!s.accept(2000));
    }
}
