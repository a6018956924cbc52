//! What this backend puts in the agent metadata and on the wire: its connection info, each
//! region's public data (the provider's key), and notification messages. Versioned and bounded;
//! anything malformed is an error.

use crate::codec::{Reader, Writer};
use crate::status::{Result, err};

const VERSION: u8 = 1;
/// Connection info listing several endpoints (`num_endpoints` > 1); one endpoint is still
/// written as version 1, which earlier builds read.
const CONN_VERSION_MULTI: u8 = 2;
/// Most endpoints one agent lists.
pub const MAX_ENDPOINTS: usize = 16;
/// Longest endpoint address accepted (verbs/EFA names are tens of bytes).
pub const MAX_ADDR_LEN: usize = super::ep::MAX_ADDR_LEN;
const MAX_PROVIDER_LEN: usize = 64;
const MAX_NAME_LEN: usize = 4096;
/// Largest notification message this backend carries.
pub const MAX_NOTIF_LEN: usize = 16 << 10;
/// Receive buffer size: a message plus its header and proof.
pub const NOTIF_BUF_LEN: usize = MAX_NOTIF_LEN + MAX_NAME_LEN + 80;
/// Notifications carry the sender's instance, a sequence number and an optional proof.
const NOTIF_VERSION: u8 = 2;
/// Longest proof accepted (HMAC-SHA256).
const MAX_TAG_LEN: usize = crate::auth::PROOF_LEN;

/// A notification as carried: who sent it (as the sender wrote it), the message, and what
/// authenticates it when the agents share a secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notif {
    /// Sender's agent name.
    pub sender: String,
    /// The user's message.
    pub msg: Vec<u8>,
    /// Random per sending backend, so sequence numbers of two senders never collide.
    pub instance: u64,
    /// The sender's sequence number (replays are refused).
    pub seq: u64,
    /// HMAC over the receiver's address, sender and message (empty without a secret).
    pub tag: Vec<u8>,
}

/// How to reach a backend instance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnInfo {
    /// Provider name (peers must use the same one).
    pub provider: String,
    /// Endpoint addresses in the provider's format, 1 to [`MAX_ENDPOINTS`]; the first one
    /// receives notifications.
    pub addrs: Vec<Vec<u8>>,
}

impl ConnInfo {
    /// Serializes.
    pub fn encode(&self) -> Vec<u8> {
        let len: usize = self.addrs.iter().map(|a| a.len() + 4).sum();
        let mut w = Writer::with_capacity(16 + self.provider.len() + len);
        if let [addr] = &self.addrs[..] {
            w.u8(VERSION).bytes(self.provider.as_bytes()).bytes(addr);
        } else {
            w.u8(CONN_VERSION_MULTI)
                .bytes(self.provider.as_bytes())
                .u8(self.addrs.len() as u8);
            for a in &self.addrs {
                w.bytes(a);
            }
        }
        w.finish()
    }

    /// Parses, rejecting anything malformed.
    pub fn decode(bytes: &[u8]) -> Result<ConnInfo> {
        let mut r = Reader::new(bytes, "libfabric connection info");
        let version = r.u8()?;
        if version != VERSION && version != CONN_VERSION_MULTI {
            return Err(err!(
                NotSupported,
                "libfabric connection info version {version} (this build reads {VERSION} and \
                 {CONN_VERSION_MULTI})"
            ));
        }
        let provider = r.str(MAX_PROVIDER_LEN)?.to_owned();
        let count = if version == VERSION {
            1
        } else {
            usize::from(r.u8()?)
        };
        if !(1..=MAX_ENDPOINTS).contains(&count) {
            return Err(err!(
                InvalidParam,
                "libfabric connection info lists {count} endpoints (1 to {MAX_ENDPOINTS})"
            ));
        }
        let mut addrs = Vec::with_capacity(count);
        for _ in 0..count {
            let addr = r.bytes(MAX_ADDR_LEN)?.to_vec();
            if addr.is_empty() {
                return Err(err!(
                    InvalidParam,
                    "libfabric connection info has an empty address"
                ));
            }
            addrs.push(addr);
        }
        r.finish()?;
        Ok(ConnInfo { provider, addrs })
    }
}

/// A region's public data: the provider's key for it.
pub fn encode_key(key: u64) -> Vec<u8> {
    let mut w = Writer::with_capacity(9);
    w.u8(VERSION).u64(key);
    w.finish()
}

/// Parses a region's public data.
pub fn decode_key(bytes: &[u8]) -> Result<u64> {
    let mut r = Reader::new(bytes, "libfabric region data");
    let version = r.u8()?;
    if version != VERSION {
        return Err(err!(
            NotSupported,
            "libfabric region data version {version} (this build reads {VERSION})"
        ));
    }
    let key = r.u64()?;
    r.finish()?;
    Ok(key)
}

impl Notif {
    /// Serializes, refusing what a receiver would not accept.
    pub fn encode(&self) -> Result<Vec<u8>> {
        if self.msg.len() > MAX_NOTIF_LEN {
            return Err(err!(
                InvalidParam,
                "notification of {} bytes exceeds the LIBFABRIC backend's {MAX_NOTIF_LEN}",
                self.msg.len()
            ));
        }
        if self.sender.len() > MAX_NAME_LEN {
            return Err(err!(InvalidParam, "agent name too long for a notification"));
        }
        let mut w = Writer::with_capacity(64 + self.sender.len() + self.msg.len());
        w.u8(NOTIF_VERSION)
            .bytes(self.sender.as_bytes())
            .bytes(&self.msg)
            .u64(self.instance)
            .u64(self.seq)
            .bytes(&self.tag);
        Ok(w.finish())
    }

    /// Parses a received notification.
    pub fn decode(bytes: &[u8]) -> Result<Notif> {
        let mut r = Reader::new(bytes, "libfabric notification");
        let version = r.u8()?;
        if version != NOTIF_VERSION {
            return Err(err!(NotSupported, "notification version {version}"));
        }
        let n = Notif {
            sender: r.str(MAX_NAME_LEN)?.to_owned(),
            msg: r.bytes(MAX_NOTIF_LEN)?.to_vec(),
            instance: r.u64()?,
            seq: r.u64()?,
            tag: r.bytes(MAX_TAG_LEN)?.to_vec(),
        };
        r.finish()?;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_garbage() {
        let c = ConnInfo {
            provider: "tcp;ofi_rxm".into(),
            addrs: vec![vec![1, 2, 3]],
        };
        assert_eq!(
            c.encode()[0],
            VERSION,
            "one endpoint: the version earlier builds read"
        );
        assert_eq!(ConnInfo::decode(&c.encode()).unwrap(), c);
        assert_eq!(decode_key(&encode_key(77)).unwrap(), 77);
        let mut n = Notif {
            sender: "a".into(),
            msg: b"hi".to_vec(),
            instance: 3,
            seq: 4,
            tag: vec![9; MAX_TAG_LEN],
        };
        assert_eq!(Notif::decode(&n.encode().unwrap()).unwrap(), n);
        let mut full = n.clone();
        full.sender = "s".repeat(MAX_NAME_LEN);
        full.msg = vec![1; MAX_NOTIF_LEN];
        assert!(
            full.encode().unwrap().len() <= NOTIF_BUF_LEN,
            "fits a receive buffer"
        );
        n.msg = vec![0; MAX_NOTIF_LEN + 1];
        assert!(n.encode().is_err());
        for bad in [&[][..], &[2, 0, 0, 0, 0, 0, 0, 0, 0], &[1, 0, 0], &[1; 12]] {
            assert!(decode_key(bad).is_err(), "{bad:?}");
            assert!(ConnInfo::decode(bad).is_err(), "{bad:?}");
            assert!(Notif::decode(bad).is_err(), "{bad:?}");
        }
        let mut big = ConnInfo {
            provider: "shm".into(),
            addrs: vec![vec![0; MAX_ADDR_LEN + 1]],
        }
        .encode();
        assert!(ConnInfo::decode(&big).is_err());
        big.truncate(3);
        assert!(ConnInfo::decode(&big).is_err());
    }

    #[test]
    fn several_endpoints_round_trip_and_forged_lists_are_refused() {
        let c = ConnInfo {
            provider: "tcp;ofi_rxm".into(),
            addrs: vec![vec![1; 16], vec![2; 16], vec![3; 16]],
        };
        let bytes = c.encode();
        assert_eq!(bytes[0], CONN_VERSION_MULTI);
        assert_eq!(ConnInfo::decode(&bytes).unwrap(), c);
        // The most endpoints allowed round-trip; one more is refused.
        let most = ConnInfo {
            provider: "shm".into(),
            addrs: vec![vec![7; 8]; MAX_ENDPOINTS],
        };
        assert_eq!(ConnInfo::decode(&most.encode()).unwrap(), most);
        let mut over = most.clone();
        over.addrs.push(vec![7; 8]);
        assert!(
            ConnInfo::decode(&over.encode()).is_err(),
            "more than the maximum"
        );
        // Hand-forged: a count of 0, a count above what follows, an empty or oversized
        // address, trailing bytes, an unknown version.
        let forge = |version: u8, count: u8, addrs: &[&[u8]], tail: &[u8]| {
            let mut w = Writer::with_capacity(64);
            w.u8(version).bytes(b"shm").u8(count);
            for a in addrs {
                w.bytes(a);
            }
            w.raw(tail);
            w.finish()
        };
        let ok = forge(CONN_VERSION_MULTI, 2, &[&[1; 4], &[2; 4]], &[]);
        assert_eq!(ConnInfo::decode(&ok).unwrap().addrs.len(), 2);
        for (why, bad) in [
            ("no endpoint", forge(CONN_VERSION_MULTI, 0, &[], &[])),
            (
                "count past the list",
                forge(CONN_VERSION_MULTI, 3, &[&[1; 4], &[2; 4]], &[]),
            ),
            (
                "empty address",
                forge(CONN_VERSION_MULTI, 2, &[&[1; 4], &[]], &[]),
            ),
            (
                "oversized address",
                forge(CONN_VERSION_MULTI, 1, &[&[0; MAX_ADDR_LEN + 1]], &[]),
            ),
            (
                "trailing bytes",
                forge(CONN_VERSION_MULTI, 2, &[&[1; 4], &[2; 4]], &[0]),
            ),
            ("unknown version", forge(3, 2, &[&[1; 4], &[2; 4]], &[])),
            ("count 255", forge(CONN_VERSION_MULTI, 255, &[&[1; 4]], &[])),
        ] {
            assert!(ConnInfo::decode(&bad).is_err(), "{why} accepted");
        }
    }
}
