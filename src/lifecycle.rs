//! Process events: `os.fork()` (registered with `os.register_at_fork` by the Python
//! package) and interpreter exit (registered with `atexit`).
//!
//! Fork needs no locking beforehand: cache locks are only ever held by attached threads
//! (see `cache::lock_attached`) and the forking thread is attached, so none is held or
//! waited for at the fork. What the child must undo is the work of threads it does not
//! have: computations they owned, the reaper, the refresh workers.

use pyo3::prelude::*;

/// After `fork`, in the child.
#[pyfunction]
pub fn after_fork_in_child(py: Python<'_>) {
    crate::workers::reset_refresh_pool_after_fork();
    crate::cache::forget_other_threads_after_fork(py);
    crate::reaper::reset_after_fork();
}

/// At interpreter exit: stop the reaper and the refresh workers.
#[pyfunction]
pub fn shutdown(py: Python<'_>) {
    crate::workers::refresh_pool().stop();
    crate::reaper::shut_down(py);
}
