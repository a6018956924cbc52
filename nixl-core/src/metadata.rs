//! The agent metadata blob: what a peer needs to reach this agent and its registered memory.
//!
//! Layout (version 1, little-endian; see `docs/PROTOCOL.md`):
//! ```text
//! magic "NIXLRSMD" | version u16 | flags u16 | name (u32 len + UTF-8)
//! conns:    u32 count, each { backend name, conn info bytes }
//! sections: u32 count, each { backend name, mem type u32, u32 count,
//!                             regions: addr u64, len u64, dev_id u64, key u64,
//!                                      public data (u32 len + bytes, backend-specific) }
//! ```
//! Decoding checks every length against the remaining bytes and rejects trailing bytes, so a
//! truncated, garbage or oversized blob is an error, never a panic or a huge allocation.

use crate::codec::{Reader, Writer};
use crate::desc::Desc;
use crate::status::{Result, err};
use crate::types::MemType;

const MAGIC: &[u8; 8] = b"NIXLRSMD";
const VERSION: u16 = 1;
/// The largest blob accepted.
pub const MAX_BLOB_LEN: usize = 1 << 30;
/// Longest agent name, in bytes (agents refuse longer names at creation).
pub const MAX_NAME_LEN: usize = 4096;
const MAX_BACKEND_NAME_LEN: usize = 256;
const MAX_CONN_INFO_LEN: usize = 1 << 20;
const REGION_WIRE_LEN: usize = 36;
const MAX_PUBLIC_LEN: usize = 4096;
/// Flag: the blob carries only some registrations (partial metadata).
pub const FLAG_PARTIAL: u16 = 1;

/// A registered region as a peer sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteRegion {
    /// The registered range.
    pub desc: Desc,
    /// The access key the owner checks on every remote access.
    pub key: u64,
    /// What the owning backend publishes for the region (e.g. a CUDA IPC handle); usually empty.
    pub public: Vec<u8>,
}

/// Regions of one memory type registered with one backend.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Section {
    /// The backend (plugin) name the regions belong to.
    pub backend: String,
    /// Their memory type.
    pub mem_type: MemType,
    /// The regions.
    pub regions: Vec<RemoteRegion>,
}

/// The decoded content of a metadata blob.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentMetadata {
    /// The agent's name.
    pub name: String,
    /// True if only some registrations are included.
    pub partial: bool,
    /// Connection info per remote-capable backend.
    pub conns: Vec<(String, Vec<u8>)>,
    /// Exported registrations.
    pub sections: Vec<Section>,
}

impl AgentMetadata {
    /// Serializes to a blob.
    pub fn encode(&self) -> Vec<u8> {
        let regions: usize = self.sections.iter().map(|s| s.regions.len()).sum();
        let mut w = Writer::with_capacity(64 + self.name.len() + regions * REGION_WIRE_LEN);
        w.raw(MAGIC)
            .u16(VERSION)
            .u16(if self.partial { FLAG_PARTIAL } else { 0 })
            .bytes(self.name.as_bytes());
        w.u32(self.conns.len() as u32);
        for (backend, info) in &self.conns {
            w.bytes(backend.as_bytes()).bytes(info);
        }
        w.u32(self.sections.len() as u32);
        for section in &self.sections {
            w.bytes(section.backend.as_bytes())
                .u32(section.mem_type.code())
                .u32(section.regions.len() as u32);
            for r in &section.regions {
                w.u64(r.desc.addr)
                    .u64(r.desc.len)
                    .u64(r.desc.dev_id)
                    .u64(r.key)
                    .bytes(&r.public);
            }
        }
        w.finish()
    }

    /// Parses a blob, validating every field.
    pub fn decode(blob: &[u8]) -> Result<AgentMetadata> {
        if blob.len() > MAX_BLOB_LEN {
            return Err(err!(
                InvalidParam,
                "metadata blob of {} bytes is too large",
                blob.len()
            ));
        }
        let mut r = Reader::new(blob, "metadata blob");
        if r.take(MAGIC.len())? != MAGIC {
            return Err(err!(InvalidParam, "not a metadata blob (bad magic)"));
        }
        let version = r.u16()?;
        if version != VERSION {
            return Err(err!(
                NotSupported,
                "metadata blob version {version} (this build reads {VERSION})"
            ));
        }
        let flags = r.u16()?;
        if flags & !FLAG_PARTIAL != 0 {
            return Err(err!(
                InvalidParam,
                "metadata blob has unknown flags {flags:#x}"
            ));
        }
        let name = r.str(MAX_NAME_LEN)?.to_owned();
        if name.is_empty() {
            return Err(err!(InvalidParam, "metadata blob names no agent"));
        }
        let n_conns = r.count(8)?;
        let mut conns = Vec::with_capacity(n_conns);
        for _ in 0..n_conns {
            let backend = r.str(MAX_BACKEND_NAME_LEN)?.to_owned();
            let info = r.bytes(MAX_CONN_INFO_LEN)?.to_vec();
            conns.push((backend, info));
        }
        let n_sections = r.count(12)?;
        let mut sections = Vec::with_capacity(n_sections);
        for _ in 0..n_sections {
            let backend = r.str(MAX_BACKEND_NAME_LEN)?.to_owned();
            let mem_type = MemType::from_code(r.u32()?)?;
            let n = r.count(REGION_WIRE_LEN)?;
            let mut regions = Vec::with_capacity(n);
            for _ in 0..n {
                let desc = Desc::new(r.u64()?, r.u64()?, r.u64()?);
                let key = r.u64()?;
                let public = r.bytes(MAX_PUBLIC_LEN)?.to_vec();
                regions.push(RemoteRegion { desc, key, public });
            }
            sections.push(Section {
                backend,
                mem_type,
                regions,
            });
        }
        r.finish()?;
        Ok(AgentMetadata {
            name,
            partial: flags & FLAG_PARTIAL != 0,
            conns,
            sections,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample() -> AgentMetadata {
        AgentMetadata {
            name: "prefill-0".into(),
            partial: false,
            conns: vec![("UCX".into(), vec![1, 2, 3])],
            sections: vec![Section {
                backend: "UCX".into(),
                mem_type: MemType::Dram,
                regions: vec![RemoteRegion {
                    desc: Desc::new(0x1000, 4096, 0),
                    key: 42,
                    public: vec![9; 3],
                }],
            }],
        }
    }

    #[test]
    fn round_trips() {
        let md = sample();
        assert_eq!(AgentMetadata::decode(&md.encode()).unwrap(), md);
    }

    #[test]
    fn every_truncation_is_an_error() {
        let blob = sample().encode();
        for cut in 0..blob.len() {
            assert!(AgentMetadata::decode(&blob[..cut]).is_err(), "cut at {cut}");
        }
        let mut longer = blob.clone();
        longer.push(0);
        assert!(AgentMetadata::decode(&longer).is_err());
    }

    #[test]
    fn huge_counts_are_refused_without_allocating() {
        let mut blob = sample().encode();
        // The conn count sits right after magic, version, flags and the name.
        let at = 8 + 2 + 2 + 4 + "prefill-0".len();
        blob[at..at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        let e = AgentMetadata::decode(&blob).unwrap_err();
        assert!(e.message().contains("cannot fit"), "{e}");
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = AgentMetadata::decode(&bytes);
        }

        #[test]
        fn mutated_blobs_never_panic(pos in 0usize..80, byte in any::<u8>()) {
            let mut blob = sample().encode();
            let pos = pos % blob.len();
            blob[pos] = byte;
            let _ = AgentMetadata::decode(&blob);
        }
    }
}
