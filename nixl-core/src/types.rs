//! Memory types, transfer operations and thread-sync modes, with NIXL's values.

use std::fmt;

use crate::status::{Result, err};

/// Where a descriptor's bytes live (`nixl_mem_t`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u32)]
pub enum MemType {
    /// Host memory.
    Dram = 0,
    /// GPU memory; `dev_id` is the GPU ordinal.
    Vram = 1,
    /// A block device; `dev_id` is the volume id.
    Blk = 2,
    /// An object store; `dev_id` is the object key.
    Obj = 3,
    /// A file; `addr` is the offset and `dev_id` the file descriptor.
    File = 4,
}

impl MemType {
    /// Every memory type, in code order.
    pub const ALL: [MemType; 5] = [
        MemType::Dram,
        MemType::Vram,
        MemType::Blk,
        MemType::Obj,
        MemType::File,
    ];

    /// Converts the raw code (0..=4).
    pub fn from_code(code: u32) -> Result<MemType> {
        MemType::ALL
            .get(code as usize)
            .copied()
            .ok_or_else(|| err!(InvalidParam, "unknown memory type code {code}"))
    }

    /// The raw code.
    pub const fn code(self) -> u32 {
        self as u32
    }

    /// The index of this type in per-type arrays.
    pub const fn index(self) -> usize {
        self as usize
    }

    /// NIXL's spelling (`DRAM`, `VRAM`, `BLK`, `OBJ`, `FILE`).
    pub const fn name(self) -> &'static str {
        match self {
            MemType::Dram => "DRAM",
            MemType::Vram => "VRAM",
            MemType::Blk => "BLK",
            MemType::Obj => "OBJ",
            MemType::File => "FILE",
        }
    }

    /// Storage types treat a registered length of 0 as "unbounded".
    pub const fn zero_len_is_unbounded(self) -> bool {
        matches!(self, MemType::Blk | MemType::Obj | MemType::File)
    }
}

impl fmt::Display for MemType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The direction of a transfer, from the initiator's point of view (`nixl_xfer_op_t`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum XferOp {
    /// Pull: remote → local.
    Read = 0,
    /// Push: local → remote.
    Write = 1,
}

impl XferOp {
    /// Converts the raw code.
    pub fn from_code(code: u32) -> Result<XferOp> {
        match code {
            0 => Ok(XferOp::Read),
            1 => Ok(XferOp::Write),
            _ => Err(err!(InvalidParam, "unknown transfer op code {code}")),
        }
    }
}

/// The agent-level locking mode NIXL offers (`nixl_thread_sync_t`).
///
/// NIXL's default (`None`) is unsafe under concurrent calls; this agent is safe to share across
/// threads in every mode, so the mode is recorded and reported but changes nothing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ThreadSync {
    /// No agent lock in NIXL; still thread-safe here.
    #[default]
    None,
    /// One lock for all calls in NIXL.
    Strict,
    /// Reader/writer lock in NIXL.
    Rw,
}
