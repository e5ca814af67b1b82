//! The parts of a function identity that the encoder writes (the rest — module, qualname,
//! source — is `fastcache._identity`'s): what a closure captured and its defaults, the
//! arguments of a `partial`, the instance behind a bound method or callable instance.

use pyo3::exceptions::PyTypeError;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::bindings::encode::{type_fqn, Encoder, Mode};
use crate::bindings::errors::CacheError;
use crate::engine::key::Tag;

/// `value` encoded for a function identity: by content wherever it has content, and a value
/// with none (an open connection, a lock) by its class, so that a closure re-created by a
/// Streamlit rerun over a fresh such object still finds its cache.
#[pyfunction]
pub fn identity_bytes<'py>(value: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyBytes>> {
    let py = value.py();
    let mut encoder = Encoder::plain(Mode::Identity, "<function identity>");
    encoder.value(value).map_err(|err| err.into_pyerr(py))?;
    let mut key = encoder.finish();
    // Identities are kept for the life of the process.
    key.leak_pins();
    Ok(PyBytes::new(py, key.as_bytes()))
}

/// `value` encoded by content as an argument would be (a callable being decorated, or the
/// instance it is bound to); an instance of a plain class is taken by its class and state.
/// Something with no content-based identity is a `TypeError` whose message is the
/// `module.qualname` of the part that has none (the caller words the error).
#[pyfunction]
pub fn content_bytes<'py>(value: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyBytes>> {
    let py = value.py();
    let mut encoder = Encoder::plain(Mode::Key, "<function identity>");
    let encoded = match encoder.value(value) {
        Ok(()) => encoder.finish(),
        Err(CacheError::Unhashable { type_name, .. }) => {
            let mut encoder = Encoder::plain(Mode::Key, "<function identity>");
            let ty = value.get_type();
            if type_fqn(&ty) != type_name || !state_is_all_visible(value) {
                return Err(PyTypeError::new_err(type_name));
            }
            match encoder.instance(value, &ty, Tag::PlainInstance) {
                Ok(()) => encoder.finish(),
                Err(CacheError::Unhashable { type_name, .. }) => {
                    return Err(PyTypeError::new_err(type_name))
                }
                Err(err) => return Err(err.into_pyerr(py)),
            }
        }
        Err(err) => return Err(err.into_pyerr(py)),
    };
    let mut key = encoded;
    key.leak_pins();
    Ok(PyBytes::new(py, key.as_bytes()))
}

/// Whether everything `value` holds is in its `__dict__` and slots (an instance of a plain
/// Python class), not in C fields that only its type can read (a socket, a connection).
/// Asked of `object.__reduce_ex__` itself, which refuses to pickle exactly the objects whose
/// layout has more than those.
fn state_is_all_visible(value: &Bound<'_, PyAny>) -> bool {
    let py = value.py();
    py.get_type::<PyAny>()
        .call_method1(intern!(py, "__reduce_ex__"), (value, 2))
        .is_ok()
}
