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

/// At interpreter exit (an `atexit` hook, so before finalization): fastcache's threads no
/// longer attach, queued refreshes are dropped, the reaper is told to stop. Nothing is
/// waited for beyond a worker caught between its check and attaching: like a daemon
/// thread, a refresh or release still running ends with the process (parked by
/// `exit_safe` when it next asks for the interpreter), so the process exits as promptly
/// as it would without fastcache.
#[pyfunction]
pub fn shutdown(py: Python<'_>) {
    crate::bindings::exit_safe::exit_begun(py);
    let unstarted = crate::bindings::exit_safe::detach(py, || {
        crate::engine::workers::refresh_pool().stop(Duration::ZERO)
    });
    drop(unstarted); // attached again: the jobs' Python references go here
    crate::bindings::reaper::shut_down(py);
}
