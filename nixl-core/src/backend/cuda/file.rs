//! VRAM <-> FILE for the POSIX backend: positioned file I/O through pinned staging buffers,
//! pipelined with the device copies.

use crate::backend::{Completion, ResolvedDesc, XferJob};
use crate::status::{Result, err};
use crate::types::{MemType, XferOp};

/// Whether a job moves VRAM to or from a file (the POSIX backend hands those over).
pub fn handles(job: &XferJob) -> bool {
    matches!(
        (job.local_mem, job.remote_mem),
        (MemType::Vram, MemType::File) | (MemType::File, MemType::Vram)
    )
}

/// Runs a VRAM <-> FILE job to the end on the calling thread and finishes `completion`'s one
/// part. File descriptors are the descriptors' `dev_id`, offsets their `addr`.
pub fn run(job: &XferJob, completion: &Completion) {
    let result = if completion.enter() {
        let r = transfer(job, &|| completion.is_canceled());
        completion.leave();
        r
    } else {
        Err(err!(Canceled, "the request was released"))
    };
    completion.finish_part(result);
}

fn transfer(job: &XferJob, stop: &dyn Fn() -> bool) -> Result<()> {
    let file_is_local = job.local_mem == MemType::File;
    let (vram, file) = if file_is_local {
        (&job.remote, &job.local)
    } else {
        (&job.local, &job.remote)
    };
    let Some(first) = vram.first() else {
        return Ok(());
    };
    let into_file = (job.op == XferOp::Write) != file_is_local;
    if into_file {
        // SAFETY: VRAM descriptors were resolved against this agent's registrations.
        unsafe {
            super::staging::vram_to_host(
                first.dev_id,
                vram,
                file,
                &mut |staged, files| pairwise(staged, files, write_at),
                stop,
            )
        }
    } else {
        // SAFETY: as above; the job owns the destination VRAM while it runs.
        unsafe {
            super::staging::host_to_vram(
                first.dev_id,
                vram,
                file,
                &mut |staged, files| pairwise(staged, files, read_at),
                stop,
            )
        }
    }
}

fn pairwise(
    staged: &[ResolvedDesc],
    files: &[ResolvedDesc],
    io: fn(&ResolvedDesc, &ResolvedDesc) -> Result<()>,
) -> Result<()> {
    staged.iter().zip(files).try_for_each(|(s, f)| io(s, f))
}

fn fd_of(f: &ResolvedDesc) -> Result<i32> {
    crate::backend::posix::fd_of(f.dev_id)
}

/// Writes a staged piece at the file descriptor's offset, all of it.
fn write_at(staged: &ResolvedDesc, f: &ResolvedDesc) -> Result<()> {
    // The staged range lies in a live pinned buffer owned by this transfer.
    crate::backend::posix::pwrite_all(
        fd_of(f)?,
        staged.addr as *const u8,
        staged.len as usize,
        f.addr,
    )
}

/// Reads a staged piece from the file descriptor's offset; a short file is an error.
fn read_at(staged: &ResolvedDesc, f: &ResolvedDesc) -> Result<()> {
    // The staged range lies in a live pinned buffer owned by this transfer.
    crate::backend::posix::pread_exact(
        fd_of(f)?,
        staged.addr as *mut u8,
        staged.len as usize,
        f.addr,
    )
}
