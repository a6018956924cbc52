//! The POSIX file backend, plugin **"POSIX"**: FILE <-> DRAM transfers within one agent.
//!
//! Transfers are loopback requests: one side is DRAM (registered with this backend), the other
//! FILE, where a descriptor's `addr` is the file offset, `len` the byte count and `dev_id` an
//! open file descriptor owned by the caller (registration refuses one that is not open).
//! Registration `metaInfo` may carry the file's path, which [`Backend::query_mem`] uses to
//! report whether the file exists and its size.
//!
//! I/O is positioned (`pread`/`pwrite`), so one descriptor may be used by many transfers at
//! once. Small jobs run inline in `post`; larger ones are split across a few worker threads.
//! Every failure (bad descriptor, short read at end of file, ENOSPC, ...) fails the request
//! with a message naming the descriptor; nothing is silently truncated.

mod fd;
mod io;

/// FILE `dev_id` to descriptor, shared with the CUDA backend's file staging.
#[cfg(feature = "cuda")]
pub(crate) use fd::fd_of;
/// Positioned I/O that never truncates silently, shared with the CUDA backend's file staging.
#[cfg(feature = "cuda")]
pub(crate) use io::{pread_exact, pwrite_all};
mod query;

use std::sync::Arc;

use super::plugins::Plugin;
use super::{Backend, BackendContext, Capabilities, Completion, Params, Target, XferJob};
use crate::registry::Region;
use crate::status::{Result, err};
use crate::types::MemType;
use io::{Direction, IoPlan};

/// The plugin entry for this backend.
pub const PLUGIN: Plugin = Plugin {
    name: "POSIX",
    mem_types: MEM_TYPES,
    default_params,
    create,
};

#[cfg(not(feature = "cuda"))]
const MEM_TYPES: &[MemType] = &[MemType::Dram, MemType::File];
/// VRAM <-> FILE goes through pinned staging in `backend::cuda::file`.
#[cfg(feature = "cuda")]
const MEM_TYPES: &[MemType] = &[MemType::Dram, MemType::File, MemType::Vram];

/// Parameters of NIXL's own POSIX plugin: accepted (and reported back) so configurations
/// written for it keep working, but they choose nothing here.
const UPSTREAM_PARAMS: &[&str] = &[
    "use_aio",
    "use_uring",
    "use_posix_aio",
    "ios_pool_size",
    "kernel_queue_size",
];

fn default_params() -> Params {
    [("num_threads", "2"), ("inline_max_bytes", "262144")]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

fn create(ctx: &BackendContext, params: &Params) -> Result<Arc<dyn Backend>> {
    let _ = ctx;
    Ok(Arc::new(PosixBackend::new(params)?))
}

/// The POSIX backend instance of one agent.
pub struct PosixBackend {
    params: Params,
    inline_max: u64,
    pool: io::Pool,
}

impl PosixBackend {
    fn new(params: &Params) -> Result<Self> {
        let mut effective = default_params();
        for (k, v) in params {
            if !effective.contains_key(k) && !UPSTREAM_PARAMS.contains(&k.as_str()) {
                return Err(err!(InvalidParam, "unknown POSIX backend parameter {k:?}"));
            }
            effective.insert(k.clone(), v.clone());
        }
        let r = super::params::ParamReader::new(PLUGIN.name, &effective, Params::new());
        let num = |k: &str| r.num(k);
        let threads = num("num_threads")?.clamp(1, 64) as usize;
        let inline_max = num("inline_max_bytes")?;
        Ok(PosixBackend {
            pool: io::Pool::new(threads),
            inline_max,
            params: effective,
        })
    }
}

impl Backend for PosixBackend {
    fn name(&self) -> &str {
        PLUGIN.name
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            remote: false,
            local: true,
            notif: false,
        }
    }

    fn mem_types(&self) -> &[MemType] {
        MEM_TYPES
    }

    fn params(&self) -> Params {
        self.params.clone()
    }

    fn register(&self, mem: MemType, region: &Region) -> Result<()> {
        if !MEM_TYPES.contains(&mem) {
            return Err(err!(
                NotSupported,
                "the POSIX backend does not serve {mem} memory"
            ));
        }
        #[cfg(feature = "cuda")]
        if mem == MemType::Vram {
            return super::cuda::check(region).map(|_| ());
        }
        if mem == MemType::File {
            fd::check_open(region.desc.dev_id)?;
        }
        Ok(())
    }

    fn deregister(&self, _mem: MemType, _region: &Region) {}

    fn post(&self, job: XferJob) -> Result<Arc<Completion>> {
        if !matches!(job.target, Target::Loopback) {
            return Err(err!(
                NotSupported,
                "the POSIX backend only serves transfers within one agent"
            ));
        }
        #[cfg(feature = "cuda")]
        if super::cuda::file::handles(&job) {
            return post_vram(job, self.inline_max);
        }
        let direction = Direction::of(&job)?;
        let plan = IoPlan::new(direction, job.local.clone(), job.remote.clone());
        if job.total_bytes <= self.inline_max {
            let completion = Completion::new(1);
            plan.run_all(&completion);
            return Ok(Arc::new(completion));
        }
        Ok(self.pool.submit(plan))
    }

    fn query_mem(
        &self,
        mem: MemType,
        descs: &[crate::desc::RegDesc],
    ) -> Result<Vec<Option<Params>>> {
        if mem != MemType::File {
            return Err(err!(
                NotSupported,
                "the POSIX backend answers queries about FILE descriptors only, not {mem}"
            ));
        }
        Ok(descs.iter().map(query::file_info).collect())
    }

    fn shutdown(&self) {
        self.pool.shutdown();
    }
}

/// VRAM <-> FILE: inline when small, else on a thread of its own; completes after the last
/// device copy (reads) or file write (writes).
#[cfg(feature = "cuda")]
fn post_vram(job: XferJob, inline_max: u64) -> Result<Arc<Completion>> {
    super::cuda::driver::driver()?;
    let completion = Arc::new(Completion::new(1));
    if job.total_bytes <= inline_max {
        super::cuda::file::run(&job, &completion);
        return Ok(completion);
    }
    let c = completion.clone();
    std::thread::Builder::new()
        .name("nixl-posix-vram".into())
        .spawn(move || super::cuda::file::run(&job, &c))
        .map_err(|e| err!(Backend, "cannot start a VRAM file-transfer thread: {e}"))?;
    Ok(completion)
}

#[cfg(test)]
mod tests;
