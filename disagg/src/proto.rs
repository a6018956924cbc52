//! The control channel between the frontend and its workers: length-prefixed JSON frames
//! (4-byte big-endian length, then the message) over a local TCP connection.

use crate::kv::{KvLayout, SlotId};
use serde::{Deserialize, Serialize};
use std::io::{self, Read, Write};

/// Serving role of a worker process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkerRole {
    /// Computes prompts and hands their KV blocks over.
    Prefill,
    /// Receives KV blocks, verifies them and decodes.
    Decode,
}

impl WorkerRole {
    /// `"prefill"` or `"decode"`.
    pub fn as_str(self) -> &'static str {
        match self {
            WorkerRole::Prefill => "prefill",
            WorkerRole::Decode => "decode",
        }
    }

    /// Parses `"prefill"` or `"decode"`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "prefill" => Some(WorkerRole::Prefill),
            "decode" => Some(WorkerRole::Decode),
            _ => None,
        }
    }
}

/// One request as the workers see it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestInfo {
    /// Frontend request id (unique per run).
    pub id: u64,
    /// Prompt tokens.
    pub isl: usize,
    /// Tokens to generate.
    pub osl: usize,
    /// Prefix-chained ids of the prompt's trace blocks (Mooncake format).
    pub hash_ids: Vec<u64>,
    /// Tokens each hash id stands for.
    pub trace_block: usize,
}

/// Where a push-mode prefill writes its blocks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PushTarget {
    /// The decode worker's agent name.
    pub agent: String,
    /// Destination slot per prompt block; `None` where the decode worker already caches it.
    pub slots: Vec<Option<SlotId>>,
}

/// A prefix another prefill worker holds, for the chosen worker to fetch instead of
/// recomputing (the frontend's view from KV events; the holder may have evicted it since).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FetchHint {
    /// The holder's agent name.
    pub agent: String,
    /// Leading prompt blocks the holder is believed to cache.
    pub blocks: usize,
}

/// Where a worker's prompt blocks came from, and how tier moves and peer fetches went
/// (cumulative counters).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct TierCounts {
    /// Prompt blocks found in the worker's own GPU pool.
    pub from_gpu: u64,
    /// Prompt blocks onboarded from its host tier (verified).
    pub from_host: u64,
    /// Prompt blocks fetched from another worker's pool (verified).
    pub from_peer: u64,
    /// Prompt blocks computed (written) here.
    pub recomputed: u64,
    /// Blocks offloaded from the GPU pool to the host tier on eviction.
    pub offloaded: u64,
    /// Onboarded or fetched blocks checked against their contents.
    pub verified: u64,
    /// Onboarded blocks whose bytes did not match (recomputed instead; a bug if ever > 0).
    pub host_corrupt: u64,
    /// Blocks a fetch wanted that the holder no longer had (evicted since the frontend
    /// heard of them): recomputed instead.
    pub peer_evicted: u64,
    /// Fetched blocks whose bytes did not match (the holder's slot reused meanwhile):
    /// rejected and recomputed, never used.
    pub peer_rejected: u64,
    /// Prefix fetches started.
    pub fetches: u64,
    /// Fetches that gave up (holder gone, timed out, transfer failed): recomputed.
    pub fetch_fallbacks: u64,
    /// Prompt blocks the engine's step timing took as onboarded from the host tier (no
    /// prefill compute; the copy priced by the simulator's transfer model).
    #[serde(default)]
    pub timed_from_host: u64,
    /// Prompt blocks the engine's step timing took as fetched from a peer (likewise).
    #[serde(default)]
    pub timed_from_peer: u64,
}

/// How a decode worker gets a request's KV.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum KvSource {
    /// READ the blocks from a prefill worker (vLLM's way); the read's notification frees them.
    Pull {
        /// The prefill worker's agent name.
        agent: String,
        /// The prefill worker's slot of each prompt block.
        slots: Vec<SlotId>,
    },
    /// Compute the prompt here (conditional local prefill).
    Local,
}

/// A worker's load, sent periodically.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct WorkerLoad {
    /// Requests waiting in the engine.
    pub waiting: usize,
    /// Requests running in the engine.
    pub running: usize,
    /// Prompt tokens not yet computed.
    pub pending_prefill_tokens: usize,
    /// KV tokens of decoding requests.
    pub decode_kv_tokens: usize,
    /// Pool slots referenced (in use or pinned for a transfer).
    pub slots_in_use: usize,
    /// Pinned prefill blocks freed by the decode side's notification so far.
    pub freed_by_notif: u64,
    /// Pinned prefill blocks freed by timeout so far.
    pub freed_by_timeout: u64,
    /// Block sources, tier moves and fetches so far.
    #[serde(default)]
    pub tiers: TierCounts,
}

/// Worker → frontend.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum WorkerMsg {
    /// First message: who the worker is and how to reach its KV pool.
    Hello {
        /// Replica id given by the frontend.
        replica: u64,
        /// Role.
        role: WorkerRole,
        /// NIXL agent name.
        agent: String,
        /// NIXL agent metadata blob.
        md: Vec<u8>,
        /// Pool geometry.
        layout: KvLayout,
        /// Pool base address in the worker's address space.
        base_addr: u64,
        /// ZMQ endpoint of its KV-event publisher.
        events: String,
        /// Transfer library in use (path or "linked").
        library: String,
        /// Its metadata listener (`ip`, `port`), when it runs one.
        listener: Option<(String, u16)>,
        /// The port of its NIXL Prometheus endpoint (on the run's host), when it runs one.
        #[serde(default)]
        metrics: Option<u16>,
    },
    /// Pull mode: the prompt's blocks are computed and pinned in `slots`.
    Prefilled {
        /// Request.
        id: u64,
        /// Slot of each prompt block.
        slots: Vec<SlotId>,
        /// Prompt tokens the engine found cached.
        cached_tokens: usize,
        /// Blocks actually written (not found in the pool's cache).
        computed_blocks: usize,
    },
    /// Push mode: every block was written to the decode worker.
    Pushed {
        /// Request.
        id: u64,
        /// Prompt tokens the engine found cached.
        cached_tokens: usize,
        /// Blocks actually written (not found in the pool's cache).
        computed_blocks: usize,
        /// Bytes written.
        bytes: u64,
        /// Seconds from the first WRITE to the last completion.
        transfer_s: f64,
    },
    /// Push mode (decode side): slots allocated for a request.
    Allocated {
        /// Request.
        id: u64,
        /// Destination per prompt block (`None`: already cached here).
        slots: Vec<Option<SlotId>>,
    },
    /// The decode worker has the request's KV, verified, and starts decoding.
    KvReady {
        /// Request.
        id: u64,
        /// Blocks received over the network.
        received_blocks: usize,
        /// Blocks found in this worker's own cache.
        cached_blocks: usize,
        /// Bytes received.
        bytes: u64,
        /// Seconds the transfer took (0 for local prefill).
        transfer_s: f64,
        /// Blocks verified (received or computed locally).
        verified: usize,
        /// Blocks whose contents did not match.
        corrupt: usize,
        /// Prefilled here instead of on a prefill worker.
        local: bool,
    },
    /// Tokens generated in one engine pass (one per listed request).
    Tokens {
        /// Requests that got a token.
        ids: Vec<u64>,
    },
    /// The request generated its last token.
    Finished {
        /// Request.
        id: u64,
    },
    /// The request failed on this worker.
    Failed {
        /// Request.
        id: u64,
        /// Why.
        error: String,
    },
    /// Periodic load report.
    Load(WorkerLoad),
}

/// Frontend → worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum FrontMsg {
    /// A peer joined: load its metadata.
    Peer {
        /// Agent name.
        agent: String,
        /// Metadata blob (empty: fetch it through the peer-to-peer listener).
        md: Vec<u8>,
        /// Listener address for fetching when `md` is empty.
        listener: Option<(String, u16)>,
        /// Pool geometry.
        layout: KvLayout,
        /// Pool base address.
        base_addr: u64,
    },
    /// A peer left.
    PeerGone {
        /// Agent name.
        agent: String,
    },
    /// Prefill a request (push mode when `push` is set).
    Prefill {
        /// The request.
        req: RequestInfo,
        /// Push destination.
        push: Option<PushTarget>,
        /// A longer cached prefix on another prefill worker, to fetch.
        #[serde(default)]
        fetch: Option<FetchHint>,
    },
    /// Push mode: allocate slots for a request whose KV will be written here.
    Allocate {
        /// The request.
        req: RequestInfo,
    },
    /// Abandon a request (its prefill failed): free what it holds.
    Abort {
        /// Request.
        id: u64,
    },
    /// Decode a request.
    Decode {
        /// The request.
        req: RequestInfo,
        /// Where its KV comes from.
        source: KvSource,
    },
    /// Exit cleanly.
    Shutdown,
}

/// Writes one frame.
pub fn write_msg<T: Serialize>(w: &mut impl Write, msg: &T) -> io::Result<()> {
    let body = serde_json::to_vec(msg).map_err(io::Error::other)?;
    let len = u32::try_from(body.len()).map_err(io::Error::other)?;
    let mut frame = Vec::with_capacity(body.len() + 4);
    frame.extend_from_slice(&len.to_be_bytes());
    frame.extend_from_slice(&body);
    w.write_all(&frame)?;
    w.flush()
}

/// Reads one frame; `Ok(None)` on a clean end of stream.
pub fn read_msg<T: for<'de> Deserialize<'de>>(r: &mut impl Read) -> io::Result<Option<T>> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_be_bytes(len) as usize;
    if len > 64 << 20 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "frame too large",
        ));
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body)?;
    serde_json::from_slice(&body)
        .map(Some)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_eof_is_clean() {
        let mut buf = Vec::new();
        let msg = WorkerMsg::Failed {
            id: 3,
            error: "x".into(),
        };
        write_msg(&mut buf, &msg).unwrap();
        write_msg(&mut buf, &FrontMsg::Shutdown).unwrap();
        let mut r = &buf[..];
        assert_eq!(read_msg::<WorkerMsg>(&mut r).unwrap(), Some(msg));
        assert_eq!(
            read_msg::<FrontMsg>(&mut r).unwrap(),
            Some(FrontMsg::Shutdown)
        );
        assert_eq!(read_msg::<FrontMsg>(&mut r).unwrap(), None);
    }
}
