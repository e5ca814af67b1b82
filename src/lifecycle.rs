//! Process events: `os.fork()` (registered with `os.register_at_fork` by the Python
//! package) and interpreter exit (registered with `atexit`).

use pyo3::prelude::*;

use crate::workers::REFRESH_POOL;

/// Before `fork`: take every fastcache lock, so no other thread is inside one when the
/// process is copied.
#[pyfunction]
pub fn before_fork(py: Python<'_>) {
    crate::cache::lock_all_for_fork(py);
    crate::reaper::lock_for_fork();
    REFRESH_POOL.lock_for_fork();
}

/// After `fork`, in the parent: let the locks go.
#[pyfunction]
pub fn after_fork_in_parent(py: Python<'_>) {
    // SAFETY: before_fork locked the pool on this thread.
    unsafe { REFRESH_POOL.unlock_after_fork() };
    crate::reaper::unlock_after_fork(false);
    crate::cache::unlock_all_after_fork(py, false);
}

/// After `fork`, in the child: let the locks go, forget computations and workers of the
/// parent's other threads (they do not exist here), restart the reaper if needed.
#[pyfunction]
pub fn after_fork_in_child(py: Python<'_>) {
    // SAFETY: in the child only this thread exists.
    unsafe { REFRESH_POOL.reset_after_fork() };
    crate::reaper::unlock_after_fork(true);
    crate::cache::unlock_all_after_fork(py, true);
}

/// At interpreter exit: stop the reaper and the refresh workers.
#[pyfunction]
pub fn shutdown(py: Python<'_>) {
    REFRESH_POOL.stop();
    crate::reaper::shut_down(py);
}
