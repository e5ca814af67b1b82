//! Calling into Python so that the interpreter may end the calling thread at exit.
//!
//! While the interpreter finalizes, CPython 3.11–3.13 end any thread other than the
//! finalizing one that asks for the interpreter again — when the Python code it runs lets
//! go of the interpreter and takes it back (every few milliseconds under contention, or
//! around any blocking call), or when it returns from a detached wait — by calling
//! `pthread_exit`, which on glibc unwinds the thread's stack. Daemon threads are ended this
//! way (Streamlit's script threads among them), and so are fastcache's own threads.
//!
//! Every place where fastcache runs Python code that may take a while — the user's
//! function, `validate`, `on_release`, `hash_funcs`, a background refresh, a logging
//! handler, a value's last reference (its `__del__`) — or takes the interpreter back after
//! waiting goes through here, behind `engine::exit_barrier`: a thread ended there parks
//! for good instead of unwinding into fastcache's frames (that module says why the unwind
//! would abort the process). The C functions are declared here with the `"C-unwind"` ABI:
//! a call that may unwind must say so.
//!
//! fastcache's own threads (refresh workers, the reaper) attach through [`attach_worker`],
//! which never attaches once the exit hook has run: after finalization there is no
//! interpreter to attach to. The exit hook waits (detached, briefly) for a worker caught
//! between its check and attaching, so none is left in that window.

use std::ptr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use pyo3::ffi::{PyObject, PyThreadState};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString, PyTuple};

use crate::engine::exit_barrier::{guarded1, guarded2, guarded3, guarded4};
use crate::engine::process;

mod unwinding {
    use super::{PyObject, PyThreadState};

    // The same C functions as `pyo3::ffi`'s, declared as able to unwind (`pthread_exit`).
    #[allow(clashing_extern_declarations)] // the same symbols, declared as able to unwind
    extern "C-unwind" {
        pub fn PyObject_Call(
            callable: *mut PyObject,
            args: *mut PyObject,
            kwargs: *mut PyObject,
        ) -> *mut PyObject;
        pub fn PyObject_CallNoArgs(callable: *mut PyObject) -> *mut PyObject;
        pub fn PyObject_CallOneArg(callable: *mut PyObject, arg: *mut PyObject) -> *mut PyObject;
        pub fn PyObject_Vectorcall(
            callable: *mut PyObject,
            args: *const *mut PyObject,
            nargsf: usize,
            kwnames: *mut PyObject,
        ) -> *mut PyObject;
        pub fn PyEval_RestoreThread(tstate: *mut PyThreadState);
        pub fn Py_DecRef(obj: *mut PyObject);
    }
}

/// The result of a C call that returns a new reference, or NULL with an exception set.
fn owned_result(py: Python<'_>, result: *mut PyObject) -> PyResult<Bound<'_, PyAny>> {
    if result.is_null() {
        Err(PyErr::fetch(py))
    } else {
        // SAFETY: a non-NULL result of these calls is a new (owned) reference.
        Ok(unsafe { Bound::from_owned_ptr(py, result) })
    }
}

/// `callable(*args, **kwargs)`.
pub fn call<'py>(
    callable: &Bound<'py, PyAny>,
    args: &Bound<'py, PyTuple>,
    kwargs: Option<&Bound<'py, PyDict>>,
) -> PyResult<Bound<'py, PyAny>> {
    let kwargs = kwargs.map_or(ptr::null_mut(), |k| k.as_ptr());
    // SAFETY: attached (the `Bound`s prove it); the pointers are borrowed from objects the
    // caller keeps alive for the duration of the call.
    let result = unsafe {
        guarded3(
            unwinding::PyObject_Call,
            callable.as_ptr(),
            args.as_ptr(),
            kwargs,
        )
    };
    owned_result(callable.py(), result)
}

/// `callable()`.
pub fn call0<'py>(callable: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    // SAFETY: as in `call`.
    let result = unsafe { guarded1(unwinding::PyObject_CallNoArgs, callable.as_ptr()) };
    owned_result(callable.py(), result)
}

/// `callable(arg)`.
pub fn call1<'py>(
    callable: &Bound<'py, PyAny>,
    arg: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    // SAFETY: as in `call`.
    let result = unsafe {
        guarded2(
            unwinding::PyObject_CallOneArg,
            callable.as_ptr(),
            arg.as_ptr(),
        )
    };
    owned_result(callable.py(), result)
}

/// `obj.name(*args)`; the attribute lookup itself is not behind the barrier (it runs no
/// code that waits, short of a property doing so).
pub fn call_method<'py>(
    obj: &Bound<'py, PyAny>,
    name: &Bound<'py, PyString>,
    args: &Bound<'py, PyTuple>,
) -> PyResult<Bound<'py, PyAny>> {
    call(&obj.getattr(name)?, args, None)
}

/// `callable(*args[..nargs], **dict(zip(kwnames, args[nargs..])))`, the vectorcall way,
/// with the result as the interpreter gives it: a new reference, or NULL with the
/// exception set. (No `PyResult`: the caller of a user's function keeps its frame small
/// while the function runs, as a cached function calling itself nests one per level.)
///
/// # Safety
/// Attached; `args` holds `nargs` positional values followed by one value per name in
/// `kwnames` (NULL for none), all borrowed for the duration of the call; `nargsf` may carry
/// `PY_VECTORCALL_ARGUMENTS_OFFSET` only if `args[-1]` may be overwritten.
#[inline]
pub unsafe fn vectorcall_raw(
    callable: &Bound<'_, PyAny>,
    args: *const *mut PyObject,
    nargsf: usize,
    kwnames: *mut PyObject,
) -> *mut PyObject {
    // SAFETY: per this function's contract.
    unsafe {
        guarded4(
            unwinding::PyObject_Vectorcall,
            callable.as_ptr(),
            args,
            nargsf,
            kwnames,
        )
    }
}

/// Lets go of a reference that may be the last one, so the object's `__del__` (which may
/// close a connection, join a thread) runs behind the barrier.
pub fn drop_ref(_py: Python<'_>, obj: Py<PyAny>) {
    let raw = obj.into_ptr();
    // SAFETY: attached (the token proves it); `into_ptr` handed this reference over.
    unsafe { guarded1(unwinding::Py_DecRef, raw) }
}

/// Runs `f` detached from the interpreter (other threads run Python meanwhile), then
/// attaches again behind the barrier. `f` must not touch Python objects (`Send` keeps
/// `Bound`s and the token out).
pub fn detach<T, F>(_py: Python<'_>, f: F) -> T
where
    F: FnOnce() -> T + Send,
    T: Send,
{
    /// Attaches again when dropped — also if `f` panics, so the panic goes on attached,
    /// as PyO3 expects when it turns it into an exception.
    struct Reattach(*mut PyThreadState);
    impl Drop for Reattach {
        fn drop(&mut self) {
            // SAFETY: the thread state `PyEval_SaveThread` returned below, not restored yet.
            unsafe { guarded1(unwinding::PyEval_RestoreThread, self.0) }
        }
    }
    // SAFETY: attached (the token proves it); `Reattach` restores the state it returns.
    let _reattach = Reattach(unsafe { pyo3::ffi::PyEval_SaveThread() });
    f()
}

/// fastcache's own threads between "the interpreter is not exiting" and being attached.
static ATTACHING: AtomicUsize = AtomicUsize::new(0);

/// Runs `f` attached, for one of fastcache's own threads; `None`, without attaching, once
/// the interpreter is exiting (or is gone).
pub fn attach_worker<R>(f: impl FnOnce(Python<'_>) -> R) -> Option<R> {
    // SeqCst here and in `exit_begun`: either this thread sees the exit, or the exit
    // hook sees this thread in the window and waits for it to attach.
    ATTACHING.fetch_add(1, Ordering::SeqCst);
    let mut in_window = true;
    let result = if process::exiting() {
        None
    } else {
        Python::try_attach(|py| {
            ATTACHING.fetch_sub(1, Ordering::SeqCst);
            in_window = false;
            f(py)
        })
    };
    if in_window {
        ATTACHING.fetch_sub(1, Ordering::SeqCst);
    }
    result
}

/// Longest the exit hook waits for a worker between its check and attaching; it only
/// needs the interpreter, which the exit hook leaves free while it waits.
const ATTACH_WINDOW_GRACE: Duration = Duration::from_secs(1);

/// At interpreter exit (the `atexit` hook, before finalization): from now on fastcache's
/// own threads do not attach; waits, detached, for any caught in the window to attach.
/// Those that are attached go on until they next let go of the interpreter, and are
/// parked by the barrier if they ask for it during finalization.
pub fn exit_begun(py: Python<'_>) {
    process::set_exiting();
    if ATTACHING.load(Ordering::SeqCst) == 0 {
        return;
    }
    detach(py, || {
        let give_up = Instant::now() + ATTACH_WINDOW_GRACE;
        while ATTACHING.load(Ordering::SeqCst) > 0 && Instant::now() < give_up {
            std::thread::sleep(Duration::from_micros(200));
        }
    });
}
