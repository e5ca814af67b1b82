//! Decoration-time option parsing that belongs on the Rust side (the ttl), the global
//! clear and the end of a browser session.

use pyo3::exceptions::{PyOverflowError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBool, PyFloat, PyInt, PyString, PyType};

use crate::bindings::errors::BadTTLStringError;
use crate::engine::ttl::parse_ttl_str;

/// A `ttl` argument in seconds: `None` → `inf`; a number of seconds; a
/// `datetime.timedelta`; or a pandas-style duration string such as `"1h"` or `"2 days"`.
#[pyfunction]
pub fn ttl_seconds(value: &Bound<'_, PyAny>) -> PyResult<f64> {
    let py = value.py();
    if value.is_none() {
        return Ok(f64::INFINITY);
    }
    let seconds = if value.is_instance_of::<PyBool>() {
        return Err(wrong_ttl_type(value));
    } else if value.is_instance_of::<PyInt>()
        || value.is_instance_of::<PyFloat>()
        || value.is_instance(real_number_type(py)?)?
    {
        // Any real number Streamlit's timer arithmetic accepts: numpy integers and floats,
        // `Fraction`, … — as a float, which a value beyond ~1.8e308 has none of.
        match py.get_type::<PyFloat>().call1((value,)) {
            Ok(seconds) => seconds.extract::<f64>()?,
            Err(err) if err.is_instance_of::<PyOverflowError>(py) => {
                return Err(PyValueError::new_err(format!(
                    "ttl={} cannot be represented in seconds (it is beyond ±1.8e308); use \
                     None for no expiry",
                    short_repr(value)
                )))
            }
            Err(err) => return Err(err),
        }
    } else if let Ok(text) = value.cast::<PyString>() {
        let text = text.to_str()?;
        parse_ttl_str(text).map_err(|err| BadTTLStringError::new_err(err.to_string()))?
    } else if value.is_instance(&py.import("datetime")?.getattr("timedelta")?)? {
        value.call_method0("total_seconds")?.extract::<f64>()?
    } else {
        return Err(wrong_ttl_type(value));
    };
    if seconds.is_nan() {
        return Err(PyValueError::new_err(
            "ttl is NaN; pass a number of seconds, a timedelta, a string like \"1h\", or \
             None for no expiry",
        ));
    }
    Ok(seconds)
}

/// `numbers.Real`, which numpy's and the standard library's number types register with.
fn real_number_type(py: Python<'_>) -> PyResult<&Bound<'_, PyType>> {
    static REAL: PyOnceLock<Py<PyType>> = PyOnceLock::new();
    REAL.import(py, "numbers", "Real")
}

/// `repr(value)`, shortened for a message (`10**400` has 401 digits).
fn short_repr(value: &Bound<'_, PyAny>) -> String {
    let text = value.repr().map(|r| r.to_string()).unwrap_or_default();
    if text.chars().count() <= 40 {
        return text;
    }
    let head: String = text.chars().take(20).collect();
    let tail: String = text.chars().skip(text.chars().count() - 10).collect();
    format!("{head}...{tail} ({} characters)", text.chars().count())
}

fn wrong_ttl_type(value: &Bound<'_, PyAny>) -> PyErr {
    let type_name = value
        .get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_default();
    PyTypeError::new_err(format!(
        "ttl must be None, a number of seconds, a datetime.timedelta or a string such as \
         \"1h\" or \"2 days\"; got {} of type {type_name}",
        value.repr().map(|r| r.to_string()).unwrap_or_default()
    ))
}

/// `cache_resource.clear()`: clears every cache, releasing every entry.
#[pyfunction]
pub fn clear_all(py: Python<'_>) -> PyResult<()> {
    let cleared = crate::bindings::registry::clear_every_cache(py);
    // What the cleared keys kept alive goes now, not at the next call.
    crate::bindings::encode::interner::release_unused(py);
    cleared
}

/// A browser session ended: releases its entries in every session-scoped cache.
#[pyfunction]
pub fn clear_session(py: Python<'_>, session_id: &str) -> PyResult<()> {
    crate::bindings::registry::clear_session_everywhere(py, session_id)
}
