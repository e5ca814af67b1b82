//! Process events: `os.fork()` (registered with `os.register_at_fork` by the Python
//! package) and interpreter exit (registered with `atexit`).
//!
//! Fork needs no locking beforehand: cache locks are only ever held by attached threads
//! (see `cache::lock_attached`) and the forking thread is attached, so none is held or
//! waited for at the fork. What the child must undo is the work of threads it does not
//! have: computations they owned, the reaper, the refresh workers.

use std::time::Duration;

use pyo3::prelude::*;

/// After `fork`, in the child.
#[pyfunction]
pub fn after_fork_in_child(py: Python<'_>) {
    crate::engine::process::start_new_generation_after_fork();
    crate::engine::workers::reset_refresh_pool_after_fork();
    crate::bindings::registry::forget_other_threads_after_fork(py);
    crate::bindings::cache::forget_waits_after_fork(py);
    crate::bindings::reaper::reset_after_fork();
}

/// How long exit waits for background refreshes still running. A refresh that ends
/// meanwhile is out of Python before the interpreter goes; one that takes longer (blocked
/// on I/O, say) does not hold the exit up — like a daemon thread, it is ended with the
/// process.
const REFRESH_GRACE: Duration = Duration::from_secs(1);

/// At interpreter exit: stop the refresh workers and the reaper.
#[pyfunction]
pub fn shutdown(py: Python<'_>) {
    crate::engine::process::set_exiting();
    let unstarted = py.detach(|| crate::engine::workers::refresh_pool().stop(REFRESH_GRACE));
    drop(unstarted); // attached again: the jobs' Python references go here
    crate::bindings::reaper::shut_down(py);
}
