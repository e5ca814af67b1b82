//! The objects users hold: `CachedFunction` (what the decorator returns) and
//! `BoundCachedMethod` (what it becomes when looked up on an instance).
//!
//! A call is native end to end: bind and encode the arguments, look the key up, and only
//! on a miss call back into the user's function. Both types are called through the
//! vectorcall protocol (see `install_call_protocol`): the interpreter hands the arguments
//! over as an array, so a call builds no tuple and no dict, and a hit on simple arguments
//! takes a path that allocates nothing (`CachedFunction::quick`).

use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use pyo3::exceptions::{PyRecursionError, PyTypeError};
use pyo3::ffi;
use pyo3::panic::PanicException;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyString, PyTuple};
use pyo3::{intern, PyTraverseError, PyVisit};

use parking_lot::Mutex;
use pyo3::types::PyType;
use smallvec::SmallVec;

use crate::bindings::app::{self, AppMiss};
use crate::bindings::cache::{
    lock_attached, CacheOptions, Callbacks, Claim, Owed, OwnerSlot, QuickClaim, RefreshRun,
    RefreshTicket, Resolved, ResourceCache, Served, WaitRegistration,
};
use crate::bindings::encode::{interner, Encoder, HashFuncs};
use crate::bindings::exit_safe;
use crate::bindings::registry::cache_for;
use crate::bindings::signature::{ArgPlan, CallArgs, OwnedCallArgs};
use crate::engine::flight::Flight;
use crate::engine::human::human_secs;
use crate::engine::key::{session_prefix, EncodedKey, Key, KeyLike, KeyWriter};
use crate::engine::stack;
use crate::engine::workers::refresh_pool;

/// What `@fastcache.cache_resource` returns: the function, cached.
///
/// Call it as the function. `clear()` empties its cache and `clear(*args, **kwargs)`
/// removes the entry those arguments select, each value going through `on_release`;
/// `cache_clear` is the same. `cache_info()` gives `CacheInfo(hits, misses, maxsize,
/// currsize)` and `cache_parameters()` the options it was decorated with. Through an
/// instance it binds like a method (a `BoundCachedMethod`); `__wrapped__` is the original.
#[pyclass(frozen, dict, weakref, module = "fastcache")]
pub struct CachedFunction {
    /// The vectorcall entry the type's `tp_vectorcall_offset` points at (`None`, calls go
    /// through `__call__`).
    vectorcall: Option<ffi::vectorcallfunc>,
    /// Keys of calls with simple arguments may be written without an encoder (no
    /// `hash_funcs`, no session field), and a hit returns the value itself (not `async`).
    simple_calls: bool,
    /// False until PyO3 has moved the fields in. Creating the instance `__dict__` can start
    /// a GC pass that traverses the half-built object (its memory zeroed, so this reads
    /// false there); `__traverse__` must not touch the other fields then.
    initialized: bool,
    func: Py<PyAny>,
    plan: ArgPlan,
    hash_funcs: HashFuncs,
    cache: Arc<ResourceCache>,
    /// `__name__`, as error messages name the function.
    name: String,
    session_scoped: bool,
    /// The spinner's text inside a Streamlit app, for a call without and with arguments
    /// (`None`: no spinner), and whether it shows the elapsed time.
    spinner: Option<(Py<PyString>, Py<PyString>)>,
    show_time: bool,
    /// An `async def`: calls return a coroutine that resolves the key when awaited.
    is_async: bool,
    /// What `cache_parameters()` returns (a fresh copy each time).
    parameters: Py<PyDict>,
}

impl CachedFunction {
    /// A call through any entry: a new reference to the value, or NULL with the exception
    /// set (the interpreter's own convention, so no Rust error value is carried while the
    /// function runs).
    ///
    /// In three steps, so that a miss keeps little on the stack while the user's function
    /// runs (a cached function that calls itself nests this frame once per level, and the
    /// depth it reaches is the stack divided by what each level keeps): [`Self::quick`]
    /// or [`Self::look_up`] settles the call or claims its key, [`Self::compute`] runs the
    /// function from this frame, and [`Self::finish`] stores the value. The first and
    /// last hold the key's encoding and the cache's bookkeeping, and have returned or not
    /// begun while the function runs.
    #[inline(always)]
    fn call(slf: &Bound<'_, Self>, call: CallArgs<'_, '_>) -> *mut ffi::PyObject {
        let mut duty = None;
        if let Some(result) = Self::quick(slf, call, &mut duty) {
            // `duty` is `None` when there is a result: nothing to drop (and no check).
            std::mem::forget(duty);
            return result;
        }
        let Some(owed) = &mut duty else {
            unreachable!("`quick` leaves the duty to compute when it settles nothing")
        };
        let computed = slf.get().compute(slf.py(), owed.scope(), call);
        Self::finish(slf, owed, computed)
    }

    /// The first step of a call: its result, or `None` and the duty to compute its key in
    /// `duty` (written in place, so the caller's frame holds the one copy). For simple
    /// arguments the key is written without an encoder, and one lock round trip
    /// (`ResourceCache::quick_claim`) settles a plain hit or makes this call the owner of
    /// a missing key; nothing there drops a `Py` handle, so PyO3 need not be told the
    /// thread is attached (see `cached_function_vectorcall`). The rest is
    /// [`Self::look_up`]. Out of line: the key's buffer is on this frame's stack, gone
    /// before a miss computes.
    #[inline(never)]
    fn quick<'a>(
        slf: &'a Bound<'_, Self>,
        call: CallArgs<'_, '_>,
        duty: &mut Option<Owed<'a, AppMiss>>,
    ) -> Option<*mut ffi::PyObject> {
        let this = slf.get();
        let py = slf.py();
        if !(this.simple_calls && this.cache.quick_claims()) {
            return Self::look_up(slf, call, None).settled(duty);
        }
        let mut writer = KeyWriter::new();
        if this.plan.simple_key(&mut writer, call).is_none() {
            return Self::look_up(slf, call, None).settled(duty);
        }
        let key = writer.finish();
        let slot = match this.cache.quick_claim(py, &key) {
            QuickClaim::Hit(value) => return Some(value.into_ptr()),
            QuickClaim::Own(slot) => slot,
            QuickClaim::Other => return Self::look_up(slf, call, None).settled(duty),
        };
        // Outside a Streamlit app a miss has no scope to begin, so this call computes at
        // once; a stack too deep for it is `look_up`'s to report.
        match AppMiss::outside_app(py) {
            Some(scope) if !stack::nearly_exhausted() => {
                *duty = Some(this.cache.owe(slot, scope));
                None
            }
            _ => Self::look_up(slf, call, Some(slot)).settled(duty),
        }
    }

    /// The first step of a call that [`Self::quick`] did not settle: the call's result, or
    /// the duty to compute its key. `owned`: the key's flight, when `quick` already made
    /// this call its owner.
    #[inline(never)]
    fn look_up<'a>(
        slf: &'a Bound<'_, Self>,
        call: CallArgs<'_, '_>,
        owned: Option<OwnerSlot>,
    ) -> Step<'a> {
        attached(slf.py(), |py| {
            Self::look_up_with(slf, call, owned).unwrap_or_else(|err| Step::Done(raised(py, err)))
        })
    }

    /// [`Self::look_up`], its error as a `PyResult`.
    #[inline(always)]
    fn look_up_with<'a>(
        slf: &'a Bound<'_, Self>,
        call: CallArgs<'_, '_>,
        owned: Option<OwnerSlot>,
    ) -> PyResult<Step<'a>> {
        let this = slf.get();
        let py = slf.py();
        if stack::nearly_exhausted() {
            // Cached recursion (or any deep chain of calls) about to run out of stack: the
            // user's function would be called from the caller's frame and needs room of
            // its own.
            if let Some(slot) = owned {
                this.cache.abandon(py, slot);
            }
            return Err(PyRecursionError::new_err(format!(
                "maximum recursion depth exceeded in '{}': calls nest too deeply for this \
                 thread's stack",
                this.name
            )));
        }
        if let Some(slot) = owned {
            // `quick` wrote the key and claimed it; the slot holds the table's copy.
            let key = slot.key().clone();
            return this.resolve(slf, call, &key, Some(slot));
        }
        let mut encoder = Encoder::new(&this.hash_funcs, &this.name);
        if this.session_scoped {
            encoder.writer.session(&app::session_id(py)?);
        }
        let key = match this.plan.key(&mut encoder, call) {
            Ok(Some(key)) => key,
            // The call does not fit the signature: let Python say exactly why.
            Ok(None) => return Ok(Step::Done(this.invoke_unfitted(py, call)?.into_ptr())),
            Err(err) => return Err(err.into_pyerr(py)),
        };
        if this.is_async {
            return Ok(Step::Done(this.async_call(slf, call, &key)?.into_ptr()));
        }
        this.resolve(slf, call, &key, None)
    }

    /// The cache's answer for `key`: the value (replaying its elements in a Streamlit
    /// app), or the duty to compute it.
    fn resolve<'a>(
        &'a self,
        slf: &Bound<'_, Self>,
        call: CallArgs<'_, '_>,
        key: &impl KeyLike,
        owned: Option<OwnerSlot>,
    ) -> PyResult<Step<'a>> {
        let py = slf.py();
        let resolved = self
            .cache
            .resolve(
                py,
                key,
                owned,
                || self.begin_miss(py, call),
                |ticket| self.refresh_in_background(py, ticket, call),
            )
            .map_err(|err| err.into_pyerr(py))?;
        match resolved {
            Resolved::Compute(owed) => Ok(Step::Compute(owed)),
            Resolved::Served(stored) => {
                if let Some(record) = &stored.replay {
                    app::replay(py, record, &self.func)?;
                }
                Ok(Step::Done(stored.value.into_ptr()))
            }
        }
    }

    /// The coroutine a call of an `async def` returns: it resolves `key` when awaited.
    fn async_call(
        &self,
        slf: &Bound<'_, Self>,
        call: CallArgs<'_, '_>,
        key: &EncodedKey,
    ) -> PyResult<Py<PyAny>> {
        let py = slf.py();
        let (args, kwargs) = call.to_tuple_and_dict()?;
        let call = AsyncCall {
            function: slf.clone().unbind(),
            args: args.unbind(),
            kwargs: kwargs.map(Bound::unbind),
            key: key.to_key(),
        };
        Ok(async_resolve(py)?.call1((call,))?.unbind())
    }

    /// The second step of a miss: runs the user's function (through the app's recorder
    /// when there is one). Only what the function's own call needs is on the stack here.
    #[inline]
    fn compute(&self, py: Python<'_>, miss: &AppMiss, call: CallArgs<'_, '_>) -> Computed {
        if miss.is_recording() {
            return self.compute_recorded(py, miss, call);
        }
        Computed {
            value: self.invoke_raw(py, call),
            replay: None,
        }
    }

    /// [`Self::compute`] inside a Streamlit script run: the app's recorder calls the
    /// function, and keeps the elements it writes for replaying on later hits.
    #[inline(never)]
    fn compute_recorded(&self, py: Python<'_>, miss: &AppMiss, call: CallArgs<'_, '_>) -> Computed {
        attached(py, |py| {
            let recorded = call
                .to_tuple_and_dict()
                .and_then(|(args, kwargs)| miss.compute(py, &self.func, &args, kwargs.as_ref()));
            match recorded {
                Ok(Some((value, replay))) => Computed {
                    value: value.into_ptr(),
                    replay,
                },
                Ok(None) => Computed {
                    value: self.invoke_raw(py, call),
                    replay: None,
                },
                Err(err) => Computed {
                    value: raised(py, err),
                    replay: None,
                },
            }
        })
    }

    /// The last step of a miss: stores the computed value (waking waiters) or gives the
    /// computation up, and closes the miss scope, inside [`attached`]. A coroutine from a
    /// synchronous function is refused: caching the coroutine object would hand every
    /// caller the same, once-awaitable object.
    #[inline(never)]
    fn finish(
        slf: &Bound<'_, Self>,
        owed: &mut Owed<'_, AppMiss>,
        computed: Computed,
    ) -> *mut ffi::PyObject {
        // The function's exception is taken before anything else runs.
        let outcome = taken(slf.py(), computed.value).map(|value| Served {
            value,
            replay: computed.replay,
        });
        attached(slf.py(), |py| {
            let outcome = outcome.and_then(|served| slf.get().refuse_coroutine(py, served));
            match owed.finish(py, outcome) {
                Ok(served) => served.value.into_ptr(),
                Err(err) => raised(py, err.into_pyerr(py)),
            }
        })
    }

    /// `served`, unless its value is a coroutine (closed here, and a `TypeError`).
    fn refuse_coroutine(&self, py: Python<'_>, served: Served) -> PyResult<Served> {
        let value = &served.value;
        // SAFETY: `value` is a live object; the check only reads its type. (Coroutines'
        // type cannot be subclassed, so the exact check is `isinstance(value,
        // types.CoroutineType)`.)
        if unsafe { ffi::PyCoro_CheckExact(value.as_ptr()) } == 0 {
            return Ok(served);
        }
        // The coroutine's `finally` blocks run here.
        let no_args = PyTuple::empty(py);
        exit_safe::call_method(value.bind(py), intern!(py, "close"), &no_args)?;
        Err(PyTypeError::new_err(format!(
            "'{}' is a synchronous function but returned a coroutine; the coroutine was \
             closed and nothing was cached. Declare it with `async def` so fastcache caches \
             the awaited value, or return the resource itself.",
            self.name
        )))
    }

    /// Runs a call that fits none of the function's signatures, uncached: Python's own
    /// `TypeError` is the best explanation. A function that accepts it all the same (its
    /// signature is not what `inspect.signature` reports) ran without the cache, which is
    /// said with a `RuntimeWarning` rather than silently.
    fn invoke_unfitted(&self, py: Python<'_>, call: CallArgs<'_, '_>) -> PyResult<Py<PyAny>> {
        let value = self.invoke(py, call)?;
        let message = std::ffi::CString::new(format!(
            "'{}' accepted arguments that fit no signature fastcache could read for it \
             (inspect.signature), so the call ran without the cache and its value was not \
             stored. Give it a signature that matches what it accepts (`__signature__`, \
             `functools.wraps`), or call it with arguments that fit the one it shows.",
            self.name
        ))
        .unwrap_or_default();
        PyErr::warn(
            py,
            &py.get_type::<pyo3::exceptions::PyRuntimeWarning>(),
            &message,
            1,
        )?;
        Ok(value)
    }

    /// A miss as the app sees it: Streamlit's spinner (with this call's text) and
    /// element recorder inside a script run, nothing elsewhere.
    fn begin_miss(&self, py: Python<'_>, call: CallArgs<'_, '_>) -> PyResult<AppMiss> {
        // As Streamlit words it: `()` only for a call made with no arguments at all.
        let with_args = !call.is_empty();
        let spinner = self
            .spinner
            .as_ref()
            .map(|(bare, with)| if with_args { with } else { bare });
        let background = self.cache.options().background_refresh;
        AppMiss::begin(py, &self.func, spinner, self.show_time, background)
    }

    /// Starts the background refresh of a stale entry on the worker pool; when every
    /// worker is busy the refresh is skipped (the next stale hit tries again). For an
    /// `async def` the refresh runs on the caller's event loop instead (see `AsyncRefresh`).
    fn refresh_in_background(&self, py: Python<'_>, ticket: RefreshTicket, call: CallArgs<'_, '_>) {
        let mark = ticket.mark();
        let Ok((all_args, kwargs)) = call.to_tuple_and_dict() else {
            self.cache.cancel_refresh(py, &mark);
            return;
        };
        let (all_args, kwargs) = (all_args.unbind(), kwargs.map(Bound::unbind));
        let cache = Arc::clone(&self.cache);
        let func = self.func.clone_ref(py);
        let job = Box::new(move || {
            // Refused (the interpreter is exiting): the captured references are dropped
            // into PyO3's deferred pool, which never runs Python.
            let _ = exit_safe::attach_worker(move |py| {
                if let Some(run) = cache.begin_refresh(py, ticket, None) {
                    let kwargs_bound = kwargs.as_ref().map(|k| k.bind(py));
                    let outcome = exit_safe::call(func.bind(py), all_args.bind(py), kwargs_bound)
                        .map(Bound::unbind);
                    cache.finish_refresh(py, run, outcome);
                }
                drop((func, all_args, kwargs, cache));
            });
        });
        if let Err(job) = refresh_pool().try_submit(job) {
            drop(job);
            self.cache.cancel_refresh(py, &mark);
        }
    }

    /// Calls the user's function with the call's arguments, passed on as they came.
    fn invoke(&self, py: Python<'_>, call: CallArgs<'_, '_>) -> PyResult<Py<PyAny>> {
        taken(py, self.invoke_raw(py, call))
    }

    /// [`Self::invoke`] as the interpreter returns it: a new reference, or NULL with the
    /// exception set.
    #[inline]
    fn invoke_raw(&self, py: Python<'_>, call: CallArgs<'_, '_>) -> *mut ffi::PyObject {
        let (values, kwnames) = call.raw();
        // SAFETY: `values` holds the call's positional values then one value per name in
        // `kwnames`, borrowed from the caller for the whole call; no offset flag is passed,
        // so the callee does not write before the array.
        unsafe {
            exit_safe::vectorcall_raw(self.func.bind(py), values.as_ptr(), call.nargs(), kwnames)
        }
    }

    /// `clear()` without arguments: every entry (of the current session, for a
    /// session-scoped function: outside one, Streamlit's error, as for a call).
    fn clear_all_entries(&self, py: Python<'_>) -> PyResult<()> {
        let cleared = match self.session_scoped {
            true => self
                .cache
                .clear_session(py, &session_prefix(&app::session_id(py)?)),
            false => self.cache.clear(py),
        };
        interner::release_unused(py);
        cleared
    }

    /// `clear(*args, **kwargs)`: the one entry those arguments select.
    fn clear_entry(&self, py: Python<'_>, call: CallArgs<'_, '_>) -> PyResult<()> {
        let mut encoder = Encoder::new(&self.hash_funcs, &self.name);
        if self.session_scoped {
            encoder.writer.session(&app::session_id(py)?);
        }
        match self.plan.key(&mut encoder, call) {
            Ok(Some(key)) => {
                let cleared = self.cache.clear_key(py, key.as_bytes());
                drop(key);
                interner::release_unused(py);
                cleared
            }
            Ok(None) => Err(PyTypeError::new_err(format!(
                "{}.clear() takes the arguments of {}(): the ones given do not fit its \
                 signature; call clear() with no arguments to clear every entry",
                self.name, self.name
            ))),
            Err(err) => Err(err.into_pyerr(py)),
        }
    }

    /// `clear(*args, **kwargs)` from Python, for this function or a method bound to
    /// `instance`: without arguments every entry (of every instance), else one.
    fn clear_from(
        &self,
        instance: Option<&Bound<'_, PyAny>>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<()> {
        let py = args.py();
        if args.is_empty() && kwargs.is_none_or(|k| k.is_empty()) {
            return self.clear_all_entries(py);
        }
        let call = OwnedCallArgs::new(instance, args, kwargs)?;
        self.clear_entry(py, call.view())
    }
}

#[pymethods]
impl CachedFunction {
    /// Built by `fastcache.cache_resource`; not meant to be called directly.
    #[new]
    #[pyo3(signature = (
        func, params, identity, name, qualname, ttl_secs, max_entries, background_refresh,
        validate, on_release, hash_funcs, session_scoped, is_async, parameters, spinner=None,
        show_time=false
    ))]
    #[allow(clippy::too_many_arguments)] // one flat constructor mirrors the decorator's options
    fn new(
        py: Python<'_>,
        func: Py<PyAny>,
        params: &Bound<'_, PyAny>,
        identity: &str,
        name: String,
        qualname: String,
        ttl_secs: f64,
        max_entries: Option<usize>,
        background_refresh: bool,
        validate: Option<Py<PyAny>>,
        on_release: Option<Py<PyAny>>,
        hash_funcs: Option<&Bound<'_, PyDict>>,
        session_scoped: bool,
        is_async: bool,
        parameters: Py<PyDict>,
        spinner: Option<(Py<PyString>, Py<PyString>)>,
        show_time: bool,
    ) -> PyResult<Self> {
        app::engage_if_streamlit(py)?;
        let plan = ArgPlan::from_params(params)?;
        let hash_funcs = HashFuncs::from_mapping(hash_funcs)?;
        let options = CacheOptions {
            ttl_secs,
            max_entries,
            background_refresh,
            has_validate: validate.is_some(),
            session_scoped,
        };
        let callbacks = Callbacks {
            validate,
            on_release,
        };
        let cache = cache_for(py, identity, qualname, options, callbacks)?;
        if cache.expires() {
            crate::bindings::reaper::ensure_started();
        }
        Ok(CachedFunction {
            vectorcall: Some(cached_function_vectorcall),
            simple_calls: hash_funcs.is_empty() && !session_scoped && !is_async,
            initialized: true,
            func,
            plan,
            hash_funcs,
            cache,
            name,
            session_scoped,
            spinner,
            show_time,
            is_async,
            parameters,
        })
    }

    /// Calls come in through the vectorcall entry; this is the same call for code that
    /// uses the type's `__call__` slot directly.
    #[pyo3(signature = (*args, **kwargs))]
    fn __call__(
        slf: &Bound<'_, Self>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Py<PyAny>> {
        let call = OwnedCallArgs::new(None, args, kwargs)?;
        taken(slf.py(), Self::call(slf, call.view()))
    }

    /// Through an instance it binds like a method; through the class it is itself.
    fn __get__(
        slf: &Bound<'_, Self>,
        instance: Option<&Bound<'_, PyAny>>,
        _owner: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        match instance {
            Some(instance) if !instance.is_none() => Ok(Bound::new(
                slf.py(),
                BoundCachedMethod {
                    vectorcall: Some(bound_method_vectorcall),
                    function: slf.clone().unbind(),
                    instance: instance.clone().unbind(),
                },
            )?
            .into_any()
            .unbind()),
            _ => Ok(slf.clone().into_any().unbind()),
        }
    }

    /// No arguments: clear every entry of this function. With arguments: clear the one
    /// entry those arguments select (bound the same way a call is).
    #[pyo3(signature = (*args, **kwargs))]
    fn clear(&self, args: &Bound<'_, PyTuple>, kwargs: Option<&Bound<'_, PyDict>>) -> PyResult<()> {
        self.clear_from(None, args, kwargs)
    }

    /// The same as `clear`, under the name `functools.lru_cache` gives it.
    #[pyo3(signature = (*args, **kwargs))]
    fn cache_clear(
        &self,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<()> {
        self.clear_from(None, args, kwargs)
    }

    /// `functools`-style statistics: `CacheInfo(hits, misses, maxsize, currsize)`.
    fn cache_info(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let (hits, misses, size) = self.cache.stats(py);
        let max = self.cache.options().max_entries;
        Ok(cache_info_type(py)?
            .call1((hits, misses, max, size))?
            .unbind())
    }

    /// The options this function was decorated with.
    fn cache_parameters<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        self.parameters.bind(py).copy()
    }

    /// `<fastcache cached function <function load ...> (ttl 1h, max_entries 8)>`: the
    /// options that shape its entries' lives, durations spelled for people.
    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let options = self.cache.options();
        let mut shaped = Vec::new();
        if options.ttl_secs.is_finite() {
            shaped.push(format!("ttl {}", human_secs(options.ttl_secs)));
        }
        if let Some(max) = options.max_entries {
            shaped.push(format!("max_entries {max}"));
        }
        if options.background_refresh {
            shaped.push("background refresh".to_owned());
        }
        let shaped = if shaped.is_empty() {
            String::new()
        } else {
            format!(" ({})", shaped.join(", "))
        };
        Ok(format!(
            "<fastcache cached function {}{shaped}>",
            self.func.bind(py).repr()?
        ))
    }

    /// `CachedFunction[[int], str]` at run time too (the stub makes it generic in the
    /// function's parameters and result), as for `collections.abc.Callable`.
    #[classmethod]
    fn __class_getitem__(cls: &Bound<'_, PyType>, item: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        generic_alias(cls, item)
    }

    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        if !self.initialized {
            return Ok(());
        }
        visit.call(&self.func)?;
        visit.call(&self.parameters)?;
        self.plan.traverse(&visit)?;
        self.hash_funcs.traverse(&visit)
    }
}

// A cached function looked up on an instance: calls pass the instance first. (A `//`
// comment, not a doc comment: a class docstring would shadow the `__doc__` getter below.)
#[pyclass(frozen, module = "fastcache")]
pub struct BoundCachedMethod {
    /// The vectorcall entry (see `CachedFunction::vectorcall`).
    vectorcall: Option<ffi::vectorcallfunc>,
    function: Py<CachedFunction>,
    instance: Py<PyAny>,
}

#[pymethods]
impl BoundCachedMethod {
    /// Calls come in through the vectorcall entry; this is the same call for code that
    /// uses the type's `__call__` slot directly.
    #[pyo3(signature = (*args, **kwargs))]
    fn __call__(
        &self,
        py: Python<'_>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Py<PyAny>> {
        let call = OwnedCallArgs::new(Some(self.instance.bind(py)), args, kwargs)?;
        taken(
            py,
            CachedFunction::call(self.function.bind(py), call.view()),
        )
    }

    /// With arguments: clear the entry of this instance and those arguments. Without:
    /// clear every entry of the function (as Streamlit does).
    #[pyo3(signature = (*args, **kwargs))]
    fn clear(
        &self,
        py: Python<'_>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<()> {
        self.function
            .get()
            .clear_from(Some(self.instance.bind(py)), args, kwargs)
    }

    /// The same as `clear`, under the name `functools.lru_cache` gives it.
    #[pyo3(signature = (*args, **kwargs))]
    fn cache_clear(
        &self,
        py: Python<'_>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<()> {
        self.clear(py, args, kwargs)
    }

    /// The function's statistics (every instance's entries: one cache per function).
    fn cache_info(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.function.get().cache_info(py)
    }

    /// The options the function was decorated with.
    fn cache_parameters<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        self.function.get().cache_parameters(py)
    }

    #[getter]
    fn __self__(&self, py: Python<'_>) -> Py<PyAny> {
        self.instance.clone_ref(py)
    }

    #[getter]
    fn __func__(&self, py: Python<'_>) -> Py<CachedFunction> {
        self.function.clone_ref(py)
    }

    /// The function's, as a Python bound method reports them (the class defines its own,
    /// so `__getattr__` alone would not reach these two).
    #[getter]
    fn __doc__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.function
            .bind(py)
            .as_any()
            .getattr(intern!(py, "__doc__"))
    }

    #[getter]
    fn __module__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.function
            .bind(py)
            .as_any()
            .getattr(intern!(py, "__module__"))
    }

    /// Everything else (`__wrapped__`, `__name__`, `cache_info`, ...) is the function's.
    fn __getattr__<'py>(
        &self,
        py: Python<'py>,
        name: &Bound<'py, PyString>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.function.bind(py).as_any().getattr(name)
    }

    /// `BoundCachedMethod[[int], str]` at run time too, as `CachedFunction`.
    #[classmethod]
    fn __class_getitem__(cls: &Bound<'_, PyType>, item: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        generic_alias(cls, item)
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!(
            "<bound fastcache cached method {} of {}>",
            self.function
                .bind(py)
                .getattr(intern!(py, "__qualname__"))?,
            self.instance.bind(py).repr()?
        ))
    }

    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        visit.call(&self.function)?;
        visit.call(&self.instance)
    }
}

/// One call of a cached `async def`, resolved when its coroutine is awaited
/// (`fastcache._aio.resolve` drives it): the key is computed at call time, the lookup
/// happens inside the running task so re-entrancy is judged per task.
#[pyclass(frozen, module = "fastcache")]
pub struct AsyncCall {
    function: Py<CachedFunction>,
    /// The call's arguments (a method's instance first).
    args: Py<PyTuple>,
    kwargs: Option<Py<PyDict>>,
    key: Key,
}

impl AsyncCall {
    fn call_args<'py>(&self, py: Python<'py>) -> PyResult<OwnedCallArgs<'py>> {
        let kwargs = self.kwargs.as_ref().map(|k| k.bind(py));
        OwnedCallArgs::new(None, self.args.bind(py), kwargs)
    }
}

/// What `AsyncCall.claim` found: a value, a flight to wait for, the duty to compute, or
/// a stale value whose refresh the caller starts on its own event loop.
const CLAIM_HIT: u8 = 0;
const CLAIM_WAIT: u8 = 1;
const CLAIM_OWN: u8 = 2;
const CLAIM_STALE: u8 = 3;

#[pymethods]
impl AsyncCall {
    /// `(0, value)`, `(1, FlightWaiter)`, `(2, PendingEntry)` or
    /// `(3, (value, AsyncRefresh))`. `inside`: the ids of the flights the calling task's
    /// ancestors are computing (from its context).
    #[pyo3(signature = (task, inside))]
    fn claim(
        &self,
        py: Python<'_>,
        task: Option<&Bound<'_, PyAny>>,
        inside: &Bound<'_, PyTuple>,
    ) -> PyResult<(u8, Py<PyAny>)> {
        let function = self.function.get();
        let inside = inside
            .iter()
            .map(|id| id.extract::<u64>())
            .collect::<PyResult<SmallVec<[u64; 4]>>>()?;
        let claim = function
            .cache
            .claim(py, &self.key, task, &inside)
            .map_err(|err| err.into_pyerr(py))?;
        Ok(match claim {
            Claim::Hit {
                value,
                replay,
                refresh,
            } => {
                if let Some(record) = &replay {
                    app::replay(py, record, &function.func)?;
                }
                match refresh {
                    None => (CLAIM_HIT, value),
                    Some(ticket) => {
                        let refresh = AsyncRefresh {
                            cache: Arc::clone(&function.cache),
                            stage: Mutex::new(RefreshStage::Ready(ticket)),
                        };
                        let refresh = Bound::new(py, refresh)?.into_any();
                        let pair = PyTuple::new(py, [value.bind(py).clone(), refresh])?;
                        (CLAIM_STALE, pair.into_any().unbind())
                    }
                }
            }
            Claim::Wait(waiting) => {
                let flight = Arc::clone(waiting.flight());
                let waiter = FlightWaiter {
                    may_stall: function.cache.is_async_refresh(py, &self.key, &flight),
                    cache: Arc::clone(&function.cache),
                    key: self.key.clone(),
                    flight,
                    waiting: Mutex::new(Some(waiting)),
                };
                (CLAIM_WAIT, Bound::new(py, waiter)?.into_any().unbind())
            }
            Claim::Own(slot) => (
                CLAIM_OWN,
                Bound::new(
                    py,
                    PendingEntry {
                        cache: Arc::clone(&function.cache),
                        slot: Mutex::new(Some(slot)),
                    },
                )?
                .into_any()
                .unbind(),
            ),
        })
    }

    /// At the first lookup that is not a hit: inside a Streamlit script run, the object
    /// that shows the spinner and records elements (`compute_async`, `close`); else None.
    fn begin_miss(&self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        let call = self.call_args(py)?;
        let miss = self.function.get().begin_miss(py, call.view())?;
        Ok(miss.into_scope())
    }

    /// Runs the user's function: the coroutine to await.
    fn invoke(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let call = self.call_args(py)?;
        self.function.get().invoke(py, call.view())
    }

    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        visit.call(&self.function)?;
        visit.call(&self.args)?;
        if let Some(k) = &self.kwargs {
            visit.call(k)?;
        }
        Ok(())
    }
}

/// The background refresh of a stale async entry, run by `fastcache._aio` as a task on
/// the event loop of the call that found the entry stale, so values bound to that loop
/// (streams, async clients) stay usable there. Dropped before it ends (its task was
/// cancelled or never ran, its loop closed), the refresh is given up: the stale value
/// stays and callers waiting for the key retry.
#[pyclass(frozen, module = "fastcache")]
pub struct AsyncRefresh {
    cache: Arc<ResourceCache>,
    stage: Mutex<RefreshStage>,
}

enum RefreshStage {
    Ready(RefreshTicket),
    Running(RefreshRun),
    Over,
}

impl AsyncRefresh {
    fn take(&self, py: Python<'_>) -> RefreshStage {
        std::mem::replace(&mut *lock_attached(py, &self.stage), RefreshStage::Over)
    }

    fn end(&self, py: Python<'_>, outcome: PyResult<Py<PyAny>>) {
        if let RefreshStage::Running(run) = self.take(py) {
            self.cache.finish_refresh(py, run, outcome);
        }
    }
}

#[pymethods]
impl AsyncRefresh {
    /// Called first in the refresh task: the refresh's flight id, or `None` when there is
    /// nothing to refresh any more (a clear discarded it, or a caller is computing the key).
    fn begin(&self, py: Python<'_>, task: Option<&Bound<'_, PyAny>>) -> Option<u64> {
        let RefreshStage::Ready(ticket) = self.take(py) else {
            return None;
        };
        let run = self.cache.begin_refresh(py, ticket, task)?;
        let id = run.flight_id();
        *lock_attached(py, &self.stage) = RefreshStage::Running(run);
        Some(id)
    }

    fn complete(&self, py: Python<'_>, value: Py<PyAny>) {
        self.end(py, Ok(value));
    }

    /// The refresh raised `error` (an `Exception`): logged, and not retried for a while.
    fn fail(&self, py: Python<'_>, error: Bound<'_, PyAny>) {
        self.end(py, Err(PyErr::from_value(error)));
    }

    /// The refresh was cancelled or its loop is going away: given up, not failed.
    fn abandon(&self, py: Python<'_>) {
        self.give_up(py, self.take(py));
    }
}

impl AsyncRefresh {
    fn give_up(&self, py: Python<'_>, stage: RefreshStage) {
        match stage {
            RefreshStage::Ready(ticket) => self.cache.cancel_refresh(py, &ticket.mark()),
            RefreshStage::Running(run) => self.cache.abandon_refresh(py, run),
            RefreshStage::Over => {}
        }
    }
}

impl Drop for AsyncRefresh {
    fn drop(&mut self) {
        let stage = std::mem::replace(self.stage.get_mut(), RefreshStage::Over);
        if !matches!(stage, RefreshStage::Over) {
            Python::attach(|py| self.give_up(py, stage));
        }
    }
}

/// Another caller's computation, for an async waiter to be woken by.
#[pyclass(frozen, module = "fastcache")]
pub struct FlightWaiter {
    cache: Arc<ResourceCache>,
    key: Key,
    flight: Arc<Flight<Served>>,
    /// The flight is a refresh run by a task of some event loop, which stalls if that
    /// loop stops: the waiter then checks now and then (`take_over_if_stalled`).
    #[pyo3(get)]
    may_stall: bool,
    /// The wait as recorded for cycle detection, until `done()` (or the waiter's end).
    waiting: Mutex<Option<WaitRegistration>>,
}

#[pymethods]
impl FlightWaiter {
    /// When the computation is a refresh whose event loop no longer runs: takes the key
    /// back from it (true), so the waiter computes the key itself.
    fn take_over_if_stalled(&self, py: Python<'_>) -> bool {
        self.cache.take_over_if_stalled(py, &self.key, &self.flight)
    }

    /// The waiter stopped waiting (woken, or cancelled).
    fn done(&self, py: Python<'_>) {
        let waiting = lock_attached(py, &self.waiting).take();
        drop(waiting);
    }

    /// Calls `callback()` once the computation is over — at once if it already is. It
    /// may run on another thread (the one that finished the computation).
    fn add_done_callback(&self, callback: Py<PyAny>) {
        let listener: crate::engine::flight::Listener = Box::new(move || {
            Python::attach(move |py| {
                if let Err(err) = exit_safe::call0(callback.bind(py)) {
                    err.write_unraisable(py, None);
                }
                drop(callback);
            })
        });
        if let Err(now) = self.flight.on_finish(listener) {
            now();
        }
    }
}

/// An async caller's duty to compute a key: `complete(value)` or `abandon()`. Dropped
/// unfinished (the coroutine was discarded), it abandons, so waiters never hang.
#[pyclass(frozen, module = "fastcache")]
pub struct PendingEntry {
    cache: Arc<ResourceCache>,
    /// Holds the key it computes.
    slot: Mutex<Option<OwnerSlot>>,
}

impl PendingEntry {
    fn take_slot(&self, py: Python<'_>) -> PyResult<OwnerSlot> {
        lock_attached(py, &self.slot).take().ok_or_else(|| {
            pyo3::exceptions::PyRuntimeError::new_err("this computation was already finished")
        })
    }
}

#[pymethods]
impl PendingEntry {
    /// Which flight this is, for the tasks the computation starts (they inherit it in
    /// their context and may not wait for it).
    #[getter]
    fn flight_id(&self, py: Python<'_>) -> Option<u64> {
        lock_attached(py, &self.slot)
            .as_ref()
            .map(OwnerSlot::flight_id)
    }

    /// Stores the value (with the record that replays the elements computing it wrote,
    /// if any) and returns it.
    #[pyo3(signature = (value, replay=None))]
    fn complete(
        &self,
        py: Python<'_>,
        value: Py<PyAny>,
        replay: Option<Py<PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        let slot = self.take_slot(py)?;
        Ok(self
            .cache
            .complete(py, slot, Served { value, replay })?
            .value)
    }

    fn abandon(&self, py: Python<'_>) -> PyResult<()> {
        let slot = self.take_slot(py)?;
        self.cache.abandon(py, slot);
        Ok(())
    }
}

impl Drop for PendingEntry {
    fn drop(&mut self) {
        if let Some(slot) = self.slot.get_mut().take() {
            Python::attach(|py| self.cache.abandon(py, slot));
        }
    }
}

/// What [`CachedFunction::look_up`] settled.
enum Step<'a> {
    /// The call's result: a new reference, or NULL with the exception set.
    Done(*mut ffi::PyObject),
    /// The call computes its key.
    Compute(Owed<'a, AppMiss>),
}

impl<'a> Step<'a> {
    /// As [`CachedFunction::quick`] returns it: the result, or `None` with the duty
    /// moved into `duty`.
    fn settled(self, duty: &mut Option<Owed<'a, AppMiss>>) -> Option<*mut ffi::PyObject> {
        match self {
            Step::Done(result) => Some(result),
            Step::Compute(owed) => {
                *duty = Some(owed);
                None
            }
        }
    }
}

/// What the user's function returned: a new reference, or NULL with the exception set;
/// and, through the app's recorder, the record replaying the elements it wrote.
struct Computed {
    value: *mut ffi::PyObject,
    replay: Option<Py<PyAny>>,
}

/// A result as the interpreter returns it (a new reference, or NULL with the exception
/// set), as a `PyResult`.
fn taken(py: Python<'_>, result: *mut ffi::PyObject) -> PyResult<Py<PyAny>> {
    if result.is_null() {
        return Err(PyErr::fetch(py));
    }
    // SAFETY: a non-NULL result is a new reference, handed over here.
    Ok(unsafe { Bound::from_owned_ptr(py, result) }.unbind())
}

/// Sets `err` as the current exception: the NULL result that reports it.
fn raised(py: Python<'_>, err: PyErr) -> *mut ffi::PyObject {
    err.restore(py);
    std::ptr::null_mut()
}

fn async_resolve(py: Python<'_>) -> PyResult<&Bound<'_, PyAny>> {
    static RESOLVE: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    RESOLVE.import(py, "fastcache._aio", "resolve")
}

/// The entry the interpreter calls a `CachedFunction` through (vectorcall).
///
/// A plain hit on simple arguments runs here as it is, the interpreter attached as it is
/// for every call: it creates no `Py` handle whose drop would need PyO3 to know the
/// thread is attached (it only hands a new reference back). Everything else runs inside
/// `Python::try_attach`, which tells PyO3 so (a reference let go of there is released at
/// once, not deferred). A panic becomes a `PanicException`, as in PyO3's own entries; no
/// unwind from the interpreter ever reaches this frame (calls into Python code go through
/// `exit_safe`, whose barrier stops a thread ended at exit before it unwinds into Rust).
///
/// # Safety
/// Called by the interpreter, attached, with `callable` a live `CachedFunction` and the
/// arguments laid out as the vectorcall protocol says.
unsafe extern "C" fn cached_function_vectorcall(
    callable: *mut ffi::PyObject,
    args: *const *mut ffi::PyObject,
    nargsf: usize,
    kwnames: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    // SAFETY: the interpreter calls this attached (this function's contract).
    let py = unsafe { Python::assume_attached() };
    // SAFETY: `callable` is a live `CachedFunction`, borrowed for the call.
    let slf = unsafe { Borrowed::from_ptr(py, callable).cast_unchecked::<CachedFunction>() };
    // SAFETY: the arguments are laid out as the protocol says (this function's contract).
    let call = unsafe {
        CallArgs::from_vectorcall(py, args, ffi::PyVectorcall_NARGS(nargsf) as usize, kwnames)
    };
    entry(py, || CachedFunction::call(&slf, call))
}

/// The entry the interpreter calls a `BoundCachedMethod` through: the function's call
/// with the instance first, as a bound method's.
///
/// # Safety
/// As [`cached_function_vectorcall`], with `callable` a live `BoundCachedMethod`.
unsafe extern "C" fn bound_method_vectorcall(
    callable: *mut ffi::PyObject,
    args: *const *mut ffi::PyObject,
    nargsf: usize,
    kwnames: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    // SAFETY: as in `cached_function_vectorcall`.
    let py = unsafe { Python::assume_attached() };
    // SAFETY: `callable` is a live `BoundCachedMethod`, borrowed for the call.
    let method = unsafe { Borrowed::from_ptr(py, callable).cast_unchecked::<BoundCachedMethod>() };
    let method = method.get();
    let nargs = ffi::PyVectorcall_NARGS(nargsf) as usize;
    let nkw = match kwnames.is_null() {
        true => 0,
        // SAFETY: a non-NULL `kwnames` is a tuple (the protocol).
        false => unsafe { ffi::PyTuple_GET_SIZE(kwnames) as usize },
    };
    // The instance, then the values as they came: on the stack for up to 8 values.
    let mut values: SmallVec<[*mut ffi::PyObject; 8]> = SmallVec::with_capacity(1 + nargs + nkw);
    values.push(method.instance.as_ptr());
    if nargs + nkw > 0 {
        // SAFETY: `args` holds `nargs + nkw` values (the protocol).
        values.extend_from_slice(unsafe { std::slice::from_raw_parts(args, nargs + nkw) });
    }
    // SAFETY: `values` holds `1 + nargs` positional values then the keyword values, all
    // borrowed (the instance from this method, the rest from the caller) for the call.
    let call = unsafe { CallArgs::from_vectorcall(py, values.as_ptr(), 1 + nargs, kwnames) };
    entry(py, || CachedFunction::call(method.function.bind(py), call))
}

/// Runs an entry's body: its result as the interpreter expects it (a new reference, or
/// NULL with the exception set), a panic as a `PanicException`.
fn entry(py: Python<'_>, body: impl FnOnce() -> *mut ffi::PyObject) -> *mut ffi::PyObject {
    match std::panic::catch_unwind(AssertUnwindSafe(body)) {
        Ok(result) => result,
        Err(payload) => panicked(py, payload),
    }
}

/// A panic that reached an entry, raised as a `PanicException` (out of the entry's own
/// frame, which stays on the stack while cached functions call each other).
#[cold]
#[inline(never)]
fn panicked(py: Python<'_>, payload: Box<dyn std::any::Any + Send>) -> *mut ffi::PyObject {
    let message = payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_else(|| "panic from Rust code".to_owned());
    raised(py, PanicException::new_err((message,)))
}

/// Runs `f` with PyO3 told that the thread is attached (it is: the interpreter called
/// us), so the `Py` handles dropped in there are released at once. PyO3 refuses while
/// the interpreter finalizes (3.13+): `f` then runs as it is, and what it lets go of is
/// deferred, which at that point only means it waits for the process to end.
fn attached<R>(py: Python<'_>, f: impl FnOnce(Python<'_>) -> R) -> R {
    let mut f = Some(f);
    match Python::try_attach(|inner| (f.take().expect("called once"))(inner)) {
        Some(result) => result,
        None => (f.take().expect("not called by a refused attach"))(py),
    }
}

/// Makes both types callable through the vectorcall protocol, and lets `obj.method(x)`
/// call a cached method without building a `BoundCachedMethod`.
///
/// Vectorcall: PyO3 gives a class only `tp_call`, which takes the arguments as a tuple
/// (and a dict), built for every call. With `Py_TPFLAGS_HAVE_VECTORCALL` the interpreter
/// instead reads a function pointer at `tp_vectorcall_offset` inside each instance (the
/// `vectorcall` field, set when the instance is made) and calls it with the arguments as
/// they sit on its stack. The field's offset is measured on a real instance of each type,
/// so it holds whatever layout PyO3 gives the object.
///
/// Method descriptor: with `Py_TPFLAGS_METHOD_DESCRIPTOR` the interpreter calls the
/// descriptor with the instance prepended instead of binding first (as it does for plain
/// functions, and as `functools.lru_cache`'s wrapper does). That equals binding then
/// calling, because the bound object only prepends the instance.
pub fn install_call_protocol(py: Python<'_>) -> PyResult<()> {
    let probe_cache = Arc::new(ResourceCache::new(
        "<probe>".to_owned(),
        CacheOptions {
            ttl_secs: f64::INFINITY,
            max_entries: None,
            background_refresh: false,
            has_validate: false,
            session_scoped: false,
        },
        Callbacks {
            validate: None,
            on_release: None,
        },
    ));
    let function = Bound::new(
        py,
        CachedFunction {
            vectorcall: Some(cached_function_vectorcall),
            simple_calls: false,
            initialized: true,
            func: py.None(),
            plan: ArgPlan::default(),
            hash_funcs: HashFuncs::default(),
            cache: probe_cache,
            name: String::new(),
            session_scoped: false,
            spinner: None,
            show_time: false,
            is_async: false,
            parameters: PyDict::new(py).unbind(),
        },
    )?;
    let method = Bound::new(
        py,
        BoundCachedMethod {
            vectorcall: Some(bound_method_vectorcall),
            function: function.clone().unbind(),
            instance: py.None(),
        },
    )?;
    let function_offset =
        std::ptr::addr_of!(function.get().vectorcall) as isize - function.as_ptr() as isize;
    let method_offset =
        std::ptr::addr_of!(method.get().vectorcall) as isize - method.as_ptr() as isize;
    let function_type = py.get_type::<CachedFunction>().as_type_ptr();
    let method_type = py.get_type::<BoundCachedMethod>().as_type_ptr();
    // SAFETY: attached, at module initialisation, before any other instance exists (and
    // every instance sets its `vectorcall` field when it is made, so any instance the
    // interpreter calls has a valid pointer at the offset, measured just above inside an
    // instance of the same type). `PyType_Modified` drops lookups cached before.
    unsafe {
        (*function_type).tp_vectorcall_offset = function_offset;
        (*function_type).tp_flags |=
            ffi::Py_TPFLAGS_HAVE_VECTORCALL | ffi::Py_TPFLAGS_METHOD_DESCRIPTOR;
        ffi::PyType_Modified(function_type);
        (*method_type).tp_vectorcall_offset = method_offset;
        (*method_type).tp_flags |= ffi::Py_TPFLAGS_HAVE_VECTORCALL;
        ffi::PyType_Modified(method_type);
    }
    Ok(())
}

/// `types.GenericAlias(cls, item)`: what subscripting a generic class gives.
fn generic_alias(cls: &Bound<'_, PyType>, item: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
    static GENERIC_ALIAS: PyOnceLock<Py<PyType>> = PyOnceLock::new();
    let py = cls.py();
    Ok(GENERIC_ALIAS
        .import(py, "types", "GenericAlias")?
        .call1((cls, item))?
        .unbind())
}

fn cache_info_type(py: Python<'_>) -> PyResult<&Bound<'_, PyAny>> {
    static CACHE_INFO: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    CACHE_INFO.import(py, "fastcache._decorator", "CacheInfo")
}
