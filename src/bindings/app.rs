//! The native side of fastcache inside a Streamlit app: when a call hands over to
//! `fastcache.streamlit` and what comes back. Streamlit itself is only ever touched by that
//! Python module; fastcache never imports Streamlit, it only notices that the app did.
//!
//! Three hand-overs, none of them on a plain hit:
//! - a miss while `streamlit` is imported: [`AppMiss::begin`] gets the spinner and element
//!   recorder of the current script run (nothing outside a run);
//! - a hit on an entry whose computation wrote elements: [`replay`];
//! - every call of a session-scoped function: [`session_id`].

use std::sync::atomic::{AtomicBool, Ordering};

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyString, PyTuple};
use pyo3::{intern, Py};

use crate::bindings::cache::MissScope;
use crate::bindings::exit_safe;

/// Whether the app has imported Streamlit (a look in `sys.modules`; nothing is imported).
/// Asked at every miss, so it is one dictionary lookup with a key whose hash is kept, and
/// once the answer is yes it stays yes (an app does not un-import Streamlit).
pub fn streamlit_imported(py: Python<'_>) -> bool {
    static SEEN: AtomicBool = AtomicBool::new(false);
    static LOOKUP: PyOnceLock<(Py<PyDict>, Py<PyString>)> = PyOnceLock::new();
    if SEEN.load(Ordering::Relaxed) {
        return true;
    }
    let lookup = LOOKUP.get_or_try_init(py, || -> PyResult<_> {
        let modules = py
            .import("sys")?
            .getattr("modules")?
            .cast_into::<PyDict>()?;
        Ok((modules.unbind(), PyString::intern(py, "streamlit").unbind()))
    });
    let Ok((modules, name)) = lookup else {
        return false;
    };
    // SAFETY: attached (the token); both objects are alive (held in `LOOKUP`), `modules`
    // is a dict and `name` a str, whose hash is computed once and kept by the string. A
    // lookup error (which a str key does not raise) is cleared, as "not imported".
    let found = unsafe {
        let found = ffi::PyDict_GetItemWithError(modules.as_ptr(), name.as_ptr());
        if found.is_null() && !ffi::PyErr_Occurred().is_null() {
            ffi::PyErr_Clear();
        }
        found
    };
    if found.is_null() {
        return false;
    }
    SEEN.store(true, Ordering::Relaxed);
    true
}

fn hook<'py>(
    py: Python<'py>,
    cell: &'static PyOnceLock<Py<PyAny>>,
    name: &str,
) -> PyResult<&'py Bound<'py, PyAny>> {
    cell.import(py, "fastcache.streamlit", name)
}

/// Whether this thread may be running a Streamlit script: false only when its
/// `threading.Thread` carries no script-run context. Streamlit keeps a script run's context
/// as an attribute of the thread that runs it (the name comes from
/// `fastcache.streamlit._script_run_ctx_attribute`, read from Streamlit once); looking in
/// the thread's `__dict__` from here spares a miss outside every script run (a worker
/// thread, the main thread of a process that merely imported Streamlit) the call into
/// Python. Anything unexpected (no such name, a thread `threading` does not know, no
/// `__dict__`) answers "maybe", and the Python hook decides as before.
fn maybe_in_script_run(py: Python<'_>) -> bool {
    static LOOKUP: PyOnceLock<Option<(Py<PyDict>, Py<PyString>)>> = PyOnceLock::new();
    let lookup = LOOKUP.get_or_init(py, || {
        static ATTRIBUTE: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
        let name = hook(py, &ATTRIBUTE, "_script_run_ctx_attribute")
            .and_then(|f| exit_safe::call(f, &PyTuple::empty(py), None))
            .ok()?
            .cast_into::<PyString>()
            .ok()?;
        let active = py
            .import("threading")
            .and_then(|t| t.getattr("_active"))
            .ok()?
            .cast_into::<PyDict>()
            .ok()?;
        Some((active.unbind(), name.unbind()))
    });
    let Some((active, name)) = lookup else {
        return true;
    };
    // SAFETY: attached (the token); the call only reads this thread's identifier.
    let ident = unsafe { ffi::PyThread_get_thread_ident() };
    let Ok(Some(thread)) = active.bind(py).get_item(ident) else {
        return true;
    };
    let Ok(attributes) = thread.getattr(intern!(py, "__dict__")) else {
        return true;
    };
    let Ok(attributes) = attributes.cast_into::<PyDict>() else {
        return true;
    };
    match attributes.get_item(name.bind(py)) {
        Ok(Some(ctx)) => !ctx.is_none(),
        Ok(None) => false,
        Err(_) => true,
    }
}

/// A value computed through the recorder, and its replay record (`None`: nothing written).
pub type Recorded = (Py<PyAny>, Option<Py<PyAny>>);

/// One miss seen from the app: inside a script run, the object that shows the spinner and
/// records the elements the computation writes (`compute`, `waiting`, `close`); `None`
/// elsewhere.
pub struct AppMiss(Option<Py<PyAny>>);

impl AppMiss {
    /// Outside Streamlit: nothing, and nothing is called.
    pub fn begin(
        py: Python<'_>,
        func: &Py<PyAny>,
        spinner: Option<&Py<PyString>>,
        show_time: bool,
        background_refresh: bool,
    ) -> PyResult<AppMiss> {
        if !streamlit_imported(py) || !maybe_in_script_run(py) {
            return Ok(AppMiss(None));
        }
        static BEGIN: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
        let args = (func, spinner, show_time, background_refresh).into_pyobject(py)?;
        let scope = exit_safe::call(hook(py, &BEGIN, "_begin_miss")?, &args, None)?;
        Ok(AppMiss((!scope.is_none()).then(|| scope.unbind())))
    }

    /// The scope of a miss while Streamlit is not imported (nothing to begin, nothing is
    /// called); `None` when it is, and [`Self::begin`] asks the app.
    pub fn outside_app(py: Python<'_>) -> Option<AppMiss> {
        (!streamlit_imported(py)).then_some(AppMiss(None))
    }

    /// Whether the computation runs through the app's recorder (inside a script run).
    pub fn is_recording(&self) -> bool {
        self.0.is_some()
    }

    /// The scope object, for Python to close itself (an async miss ends in Python).
    pub fn into_scope(mut self) -> Option<Py<PyAny>> {
        self.0.take()
    }

    /// Runs the function through the recorder: `Ok(None)` when there is none (call it
    /// directly), else the value and the replay record (`None` when nothing was written).
    pub fn compute(
        &self,
        py: Python<'_>,
        func: &Py<PyAny>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Option<Recorded>> {
        let Some(scope) = &self.0 else {
            return Ok(None);
        };
        // The user's function runs in there.
        let call = (func, args, kwargs).into_pyobject(py)?;
        let outcome = exit_safe::call_method(scope.bind(py), intern!(py, "compute"), &call)?;
        Ok(Some(outcome.extract()?))
    }
}

impl MissScope for AppMiss {
    /// A script run waiting for another session's computation can still be stopped or
    /// rerun, as it can while Streamlit waits for its own (the request is raised here).
    fn waiting(&self, py: Python<'_>) -> PyResult<()> {
        match &self.0 {
            Some(scope) => {
                exit_safe::call_method(scope.bind(py), intern!(py, "waiting"), &PyTuple::empty(py))
                    .map(drop)
            }
            None => Ok(()),
        }
    }

    fn close(mut self, py: Python<'_>) -> PyResult<()> {
        match self.0.take() {
            Some(scope) => {
                exit_safe::call_method(scope.bind(py), intern!(py, "close"), &PyTuple::empty(py))
                    .map(drop)
            }
            None => Ok(()),
        }
    }
}

/// Closed by `close` at the end of a miss; dropping one still open (a panic unwinding)
/// closes it too, reporting an error as unraisable.
impl Drop for AppMiss {
    fn drop(&mut self) {
        if let Some(scope) = self.0.take() {
            Python::attach(|py| {
                let closed = exit_safe::call_method(
                    scope.bind(py),
                    intern!(py, "close"),
                    &PyTuple::empty(py),
                );
                if let Err(err) = closed {
                    err.write_unraisable(py, None);
                }
                drop(scope);
            });
        }
    }
}

/// Replays, into the current script run, the elements a hit's computation wrote.
pub fn replay(py: Python<'_>, record: &Py<PyAny>, func: &Py<PyAny>) -> PyResult<()> {
    static REPLAY: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    let args = (record, func).into_pyobject(py)?;
    exit_safe::call(hook(py, &REPLAY, "_replay")?, &args, None)?;
    Ok(())
}

/// The browser session of the current script run; outside one, Streamlit's error.
pub fn session_id(py: Python<'_>) -> PyResult<String> {
    static SESSION_ID: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    hook(py, &SESSION_ID, "_session_id")?.call0()?.extract()
}

/// Lets `fastcache.streamlit` engage (clear hooks, in-page errors) when a function is
/// decorated after the app imported Streamlit.
pub fn engage_if_streamlit(py: Python<'_>) -> PyResult<()> {
    if !streamlit_imported(py) {
        return Ok(());
    }
    static ENGAGE: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    hook(py, &ENGAGE, "_engage")?.call0()?;
    Ok(())
}
