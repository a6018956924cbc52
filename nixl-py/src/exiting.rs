//! Native calls during interpreter exit. CPython before 3.14 ends a thread that takes the GIL
//! back while the interpreter finalizes with `pthread_exit`, whose forced unwind through this
//! module's Rust frames aborts the process ("FATAL: exception not rethrown"). A daemon thread
//! coming back from a wait or a transfer call at exit would crash it; instead, once `atexit`
//! has run, every thread but the exiting one sleeps where it is until the process ends.

use std::sync::OnceLock;
use std::thread::ThreadId;

use pyo3::prelude::*;

/// The thread running the interpreter's exit, once `atexit` ran.
static EXITING: OnceLock<ThreadId> = OnceLock::new();

/// Registered with `atexit`: the interpreter is about to finalize.
#[pyfunction]
fn _interpreter_exiting() {
    let _ = EXITING.set(std::thread::current().id());
}

/// Runs `f` with the GIL released, as `py.detach` does, but never takes the GIL back on a
/// thread other than the exiting one once the interpreter exits.
pub fn detach<T: Send, F: FnOnce() -> T + Send>(py: Python<'_>, f: F) -> T {
    py.detach(|| {
        let r = f();
        if EXITING
            .get()
            .is_some_and(|t| *t != std::thread::current().id())
        {
            loop {
                std::thread::park();
            }
        }
        r
    })
}

/// Registers the exit hook.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let hook = wrap_pyfunction!(_interpreter_exiting, m)?;
    m.py().import("atexit")?.call_method1("register", (hook,))?;
    Ok(())
}
