//! The bridge to Python's `logging`: records go to the `fastcache` logger (through
//! `pyo3-log`), and whether debug records are wanted is kept in an atomic flag so that a
//! hit never asks Python.

use std::sync::atomic::{AtomicBool, Ordering};

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;

/// Whether the `fastcache` logger wants debug records. Read on the hot path instead of
/// asking the logging bridge, so a hit costs nothing when debug logging is off. Refreshed
/// at import and by `fastcache.refresh_logging()`.
static DEBUG_LOGGING: AtomicBool = AtomicBool::new(false);

pub fn refresh_debug_flag(py: Python<'_>) -> PyResult<()> {
    let enabled = fastcache_logger(py)?
        .call_method1(intern!(py, "isEnabledFor"), (10,))?
        .is_truthy()?;
    DEBUG_LOGGING.store(enabled, Ordering::Relaxed);
    Ok(())
}

pub fn debug_enabled() -> bool {
    DEBUG_LOGGING.load(Ordering::Relaxed)
}

fn fastcache_logger(py: Python<'_>) -> PyResult<&Bound<'_, PyAny>> {
    static LOGGER: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    LOGGER
        .get_or_try_init(py, || {
            py.import("logging")?
                .call_method1("getLogger", ("fastcache",))
                .map(Bound::unbind)
        })
        .map(|l| l.bind(py))
}

/// Logs `message` with the exception's traceback on the `fastcache` logger at ERROR.
pub fn log_exception(py: Python<'_>, message: &str, err: &PyErr) {
    let logged = fastcache_logger(py).and_then(|logger| {
        let kwargs = pyo3::types::PyDict::new(py);
        kwargs.set_item("exc_info", err.value(py))?;
        logger.call_method("error", ("%s", message), Some(&kwargs))
    });
    if let Err(log_err) = logged {
        // Logging itself failed: fall back to the unraisable hook rather than lose it.
        log_err.write_unraisable(py, None);
    }
}

static LOG_RESET: std::sync::OnceLock<pyo3_log::ResetHandle> = std::sync::OnceLock::new();

/// Re-reads the `fastcache` logger's level (fastcache caches it so a hit never asks
/// Python). Call after changing logging configuration at run time.
#[pyfunction]
pub fn refresh_logging(py: Python<'_>) -> PyResult<()> {
    if let Some(handle) = LOG_RESET.get() {
        handle.reset();
    }
    refresh_debug_flag(py)
}

pub fn init_logging(py: Python<'_>) -> PyResult<()> {
    if LOG_RESET.get().is_none() {
        let logger = pyo3_log::Logger::new(py, pyo3_log::Caching::LoggersAndLevels)?;
        // Another extension may own the `log` facade already; then records go there.
        if let Ok(handle) = logger.install() {
            let _ = LOG_RESET.set(handle);
        }
    }
    refresh_debug_flag(py)
}
