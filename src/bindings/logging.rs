//! The bridge to Python's `logging`: fastcache's records go to the `fastcache` logger
//! through `fastcache._logging.emit`, and an atomic flag says whether debug records are
//! wanted at all, so that a hit with debug logging off never calls into Python.
//!
//! The flag follows the user's logging configuration at once: `fastcache._logging` hooks
//! the point every level change goes through (`logging.Manager._clear_cache`) and sets it
//! from there. It only pre-filters: a record that passes it still goes through the logger's
//! own checks in Python, so a flag that is on too eagerly costs time, never a wrong record.
//!
//! Records are built by Python's `logging`, not through the `log` facade: each carries
//! `fastcache_event`, `fastcache_function` and `fastcache_reason` attributes, and a handler
//! that raises is dealt with by `logging`'s own rules (`Handler.handleError`) in `emit`,
//! so no exception is ever left set behind a value fastcache returns.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use pyo3::exceptions::PyKeyboardInterrupt;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;

use crate::engine::human::human_duration;
use crate::engine::store::RemovalCause;

/// Whether the `fastcache` logger wants debug records, as last computed by
/// `fastcache._logging` (on import and on every change of logging levels).
static DEBUG_LOGGING: AtomicBool = AtomicBool::new(false);

/// Read on the hot path instead of asking `logging`.
pub fn debug_enabled() -> bool {
    DEBUG_LOGGING.load(Ordering::Relaxed)
}

/// Called by `fastcache._logging` whenever the logging configuration may have changed.
#[pyfunction]
pub fn set_debug_logging(enabled: bool) {
    DEBUG_LOGGING.store(enabled, Ordering::Relaxed);
}

const DEBUG: u8 = 10;
const ERROR: u8 = 40;

/// The `fastcache_reason` of a value leaving a cache.
pub fn removal_reason(cause: RemovalCause) -> &'static str {
    match cause {
        RemovalCause::Expired => "expired",
        RemovalCause::Evicted => "evicted",
        RemovalCause::Replaced => "replaced",
        RemovalCause::Cleared => "cleared",
        RemovalCause::Invalid => "validate failed",
    }
}

/// A hit; `expires_in` when the cache has a ttl. A stale hit (background refresh) says so.
pub fn log_hit(py: Python<'_>, function: &str, stale: bool, expires_in: Option<Duration>) {
    let (reason, message) = if stale {
        (
            Some("stale"),
            format!("hit: {function} (stale, refreshing in the background)"),
        )
    } else if let Some(left) = expires_in {
        (
            None,
            format!("hit: {function} (expires in {})", human_duration(left)),
        )
    } else {
        (None, format!("hit: {function}"))
    };
    emit(py, DEBUG, message, "hit", function, reason, None);
}

/// A miss, with why the call computes: `"new key"`, `"expired"` or `"validate failed"`.
pub fn log_miss(py: Python<'_>, function: &str, reason: &str) {
    let message = format!("miss: {function} ({reason})");
    emit(py, DEBUG, message, "miss", function, Some(reason), None);
}

/// A value leaving the cache, with why.
pub fn log_release(py: Python<'_>, function: &str, cause: RemovalCause) {
    let reason = removal_reason(cause);
    let message = format!("release: {function} ({reason})");
    emit(py, DEBUG, message, "release", function, Some(reason), None);
}

/// In a forked child: a value inherited from the parent left the cache without
/// `on_release` (the parent still owns what it holds).
pub fn log_inherited_drop(py: Python<'_>, function: &str, cause: RemovalCause) {
    let reason = removal_reason(cause);
    let message = format!("drop without release: {function} ({reason}, created before a fork)");
    emit(py, DEBUG, message, "drop", function, Some(reason), None);
}

/// A re-decoration with other options replaced the function's cache.
pub fn log_cache_replaced(py: Python<'_>, function: &str) {
    let message = format!("cache replaced: {function} (its options changed)");
    emit(
        py,
        DEBUG,
        message,
        "cache replaced",
        function,
        Some("options changed"),
        None,
    );
}

/// An exception fastcache does not propagate (from `on_release`, or from a background
/// refresh), logged at ERROR with its traceback.
pub fn log_exception(
    py: Python<'_>,
    event: &str,
    function: &str,
    reason: &str,
    message: String,
    err: &PyErr,
) {
    emit(py, ERROR, message, event, function, Some(reason), Some(err));
}

fn emit(
    py: Python<'_>,
    level: u8,
    message: String,
    event: &str,
    function: &str,
    reason: Option<&str>,
    exception: Option<&PyErr>,
) {
    let outcome = emitter(py).and_then(|emit| {
        let args = (
            level,
            message,
            event,
            function,
            reason,
            exception.map(|e| e.value(py)),
        )
            .into_pyobject(py)?;
        // Handlers write files and sockets: behind the exit barrier.
        crate::bindings::exit_safe::call(emit, &args, None)
    });
    if let Err(err) = outcome {
        // `emit` hands every `Exception` from a handler to `Handler.handleError`; what
        // gets here is a `BaseException` (or `fastcache._logging` could not be imported,
        // as late in interpreter exit). Nothing may stay set behind the caller's value.
        if err.is_instance_of::<PyKeyboardInterrupt>(py) {
            // Ctrl-C while a handler ran: never swallowed. Re-raised in the main thread at
            // its next check, as if the signal had arrived just now.
            // SAFETY: `PyErr_SetInterrupt` only marks a pending signal; it may be called
            // from any thread, attached or not.
            unsafe { pyo3::ffi::PyErr_SetInterrupt() };
        } else {
            err.write_unraisable(py, None);
        }
    }
}

fn emitter(py: Python<'_>) -> PyResult<&Bound<'_, PyAny>> {
    static EMIT: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    EMIT.import(py, "fastcache._logging", "emit")
}
