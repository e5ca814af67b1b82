//! The objects users hold: `CachedFunction` (what the decorator returns) and
//! `BoundCachedMethod` (what it becomes when looked up on an instance).
//!
//! `__call__` is native end to end: bind and encode the arguments, look the key up,
//! and only on a miss call back into the user's function.

use std::sync::Arc;

use pyo3::exceptions::{PyRecursionError, PyTypeError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyString, PyTuple};
use pyo3::{intern, PyTraverseError, PyVisit};

use parking_lot::Mutex;
use pyo3::types::PyType;
use smallvec::SmallVec;

use crate::bindings::app::{self, AppMiss};
use crate::bindings::cache::{
    lock_attached, CacheOptions, Callbacks, Claim, OwnerSlot, RefreshRun, RefreshTicket,
    ResourceCache, Served, WaitRegistration,
};
use crate::bindings::encode::{interner, Encoder, HashFuncs};
use crate::bindings::exit_safe;
use crate::bindings::registry::cache_for;
use crate::bindings::signature::ArgPlan;
use crate::engine::flight::Flight;
use crate::engine::human::human_secs;
use crate::engine::key::{session_prefix, Key};
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
    fn call_with(
        slf: &Bound<'_, Self>,
        bound_to: Option<&Bound<'_, PyAny>>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Py<PyAny>> {
        let this = slf.get();
        let py = slf.py();
        if stack::nearly_exhausted() {
            // Cached recursion (or any deep chain of calls) about to run out of stack: the
            // user's function is called from this frame and needs room of its own.
            return Err(PyRecursionError::new_err(format!(
                "maximum recursion depth exceeded in '{}': calls nest too deeply for this \
                 thread's stack",
                this.name
            )));
        }
        let mut encoder = Encoder::new(&this.hash_funcs, &this.name);
        if this.session_scoped {
            encoder.writer.session(&app::session_id(py)?);
        }
        let key = match this.plan.key(&mut encoder, bound_to, args, kwargs) {
            Ok(Some(key)) => key,
            // The call does not fit the signature: let Python say exactly why.
            Ok(None) => return this.invoke_unfitted(py, bound_to, args, kwargs),
            Err(err) => return Err(err.into_pyerr(py)),
        };
        if this.is_async {
            let call = AsyncCall {
                function: slf.clone().unbind(),
                bound_to: bound_to.map(|b| b.clone().unbind()),
                args: args.clone().unbind(),
                kwargs: kwargs.map(|k| k.copy()).transpose()?.map(Bound::unbind),
                key: key.to_key(),
            };
            return Ok(async_resolve(py)?.call1((call,))?.unbind());
        }
        let stored = this
            .cache
            .get_or_compute(
                py,
                &key,
                || this.begin_miss(py, bound_to, args, kwargs),
                |miss| this.invoke_sync(py, miss, bound_to, args, kwargs),
                |ticket| this.refresh_in_background(py, ticket, bound_to, args, kwargs),
            )
            .map_err(|err| err.into_pyerr(py))?;
        if let Some(record) = &stored.replay {
            app::replay(py, record, &this.func)?;
        }
        Ok(stored.value)
    }

    /// Runs a call that fits none of the function's signatures, uncached: Python's own
    /// `TypeError` is the best explanation. A function that accepts it all the same (its
    /// signature is not what `inspect.signature` reports) ran without the cache, which is
    /// said with a `RuntimeWarning` rather than silently.
    fn invoke_unfitted(
        &self,
        py: Python<'_>,
        bound_to: Option<&Bound<'_, PyAny>>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Py<PyAny>> {
        let value = self.invoke(py, bound_to, args, kwargs)?;
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
    fn begin_miss(
        &self,
        py: Python<'_>,
        bound_to: Option<&Bound<'_, PyAny>>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<AppMiss> {
        // As Streamlit words it: `()` only for a call made with no arguments at all.
        let with_args =
            bound_to.is_some() || !args.is_empty() || kwargs.is_some_and(|k| !k.is_empty());
        let spinner = self
            .spinner
            .as_ref()
            .map(|(bare, with)| if with_args { with } else { bare });
        let background = self.cache.options().background_refresh;
        AppMiss::begin(py, &self.func, spinner, self.show_time, background)
    }

    /// Calls a synchronous function (through the app's recorder when there is one),
    /// refusing a coroutine it returns: caching the coroutine object would hand every
    /// caller the same, once-awaitable object.
    fn invoke_sync(
        &self,
        py: Python<'_>,
        miss: &AppMiss,
        bound_to: Option<&Bound<'_, PyAny>>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Served> {
        let stored = match miss.compute(py, &self.func, &full_args(py, bound_to, args)?, kwargs)? {
            Some((value, replay)) => Served { value, replay },
            None => Served::plain(self.invoke(py, bound_to, args, kwargs)?),
        };
        let value = &stored.value;
        if value.bind(py).is_instance(coroutine_type(py)?)? {
            // The coroutine's `finally` blocks run here.
            let no_args = PyTuple::empty(py);
            exit_safe::call_method(value.bind(py), intern!(py, "close"), &no_args)?;
            return Err(PyTypeError::new_err(format!(
                "'{}' is a synchronous function but returned a coroutine; the coroutine was \
                 closed and nothing was cached. Declare it with `async def` so fastcache \
                 caches the awaited value, or return the resource itself.",
                self.name
            )));
        }
        Ok(stored)
    }

    /// Starts the background refresh of a stale entry on the worker pool; when every
    /// worker is busy the refresh is skipped (the next stale hit tries again). For an
    /// `async def` the refresh runs on the caller's event loop instead (see `AsyncRefresh`).
    fn refresh_in_background(
        &self,
        py: Python<'_>,
        ticket: RefreshTicket,
        bound_to: Option<&Bound<'_, PyAny>>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) {
        let mark = ticket.mark();
        let prepared = full_args(py, bound_to, args).and_then(|all| {
            let kwargs = kwargs.map(|k| k.copy()).transpose()?;
            Ok((all.unbind(), kwargs.map(Bound::unbind)))
        });
        let Ok((all_args, kwargs)) = prepared else {
            self.cache.cancel_refresh(py, &mark);
            return;
        };
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

    fn invoke(
        &self,
        py: Python<'_>,
        bound_to: Option<&Bound<'_, PyAny>>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Py<PyAny>> {
        let func = self.func.bind(py);
        let result = match bound_to {
            None => exit_safe::call(func, args, kwargs)?,
            Some(_) => exit_safe::call(func, &full_args(py, bound_to, args)?, kwargs)?,
        };
        Ok(result.unbind())
    }

    fn clear_with(
        &self,
        py: Python<'_>,
        bound_to: Option<&Bound<'_, PyAny>>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<()> {
        let no_arguments = args.is_empty() && kwargs.is_none_or(|k| k.is_empty());
        // A session-scoped function clears in the current session only (outside one:
        // Streamlit's error, as for a call).
        let session = match self.session_scoped {
            true => Some(app::session_id(py)?),
            false => None,
        };
        if no_arguments {
            let cleared = match &session {
                Some(id) => self.cache.clear_session(py, &session_prefix(id)),
                None => self.cache.clear(py),
            };
            interner::release_unused(py);
            return cleared;
        }
        let mut encoder = Encoder::new(&self.hash_funcs, &self.name);
        if let Some(id) = &session {
            encoder.writer.session(id);
        }
        match self.plan.key(&mut encoder, bound_to, args, kwargs) {
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
        identity: String,
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

    #[pyo3(signature = (*args, **kwargs))]
    fn __call__(
        slf: &Bound<'_, Self>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Py<PyAny>> {
        Self::call_with(slf, None, args, kwargs)
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
    fn clear(
        &self,
        py: Python<'_>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<()> {
        self.clear_with(py, None, args, kwargs)
    }

    /// The same as `clear`, under the name `functools.lru_cache` gives it.
    #[pyo3(signature = (*args, **kwargs))]
    fn cache_clear(
        &self,
        py: Python<'_>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<()> {
        self.clear_with(py, None, args, kwargs)
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
    function: Py<CachedFunction>,
    instance: Py<PyAny>,
}

#[pymethods]
impl BoundCachedMethod {
    #[pyo3(signature = (*args, **kwargs))]
    fn __call__(
        &self,
        py: Python<'_>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Py<PyAny>> {
        CachedFunction::call_with(
            self.function.bind(py),
            Some(self.instance.bind(py)),
            args,
            kwargs,
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
            .clear_with(py, Some(self.instance.bind(py)), args, kwargs)
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
    bound_to: Option<Py<PyAny>>,
    args: Py<PyTuple>,
    kwargs: Option<Py<PyDict>>,
    key: Key,
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
        let bound_to = self.bound_to.as_ref().map(|b| b.bind(py));
        let kwargs = self.kwargs.as_ref().map(|k| k.bind(py));
        let miss = self
            .function
            .get()
            .begin_miss(py, bound_to, self.args.bind(py), kwargs)?;
        Ok(miss.into_scope())
    }

    /// Runs the user's function: the coroutine to await.
    fn invoke(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let bound_to = self.bound_to.as_ref().map(|b| b.bind(py));
        let kwargs = self.kwargs.as_ref().map(|k| k.bind(py));
        self.function
            .get()
            .invoke(py, bound_to, self.args.bind(py), kwargs)
    }

    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        visit.call(&self.function)?;
        if let Some(b) = &self.bound_to {
            visit.call(b)?;
        }
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

/// The instance first, then the call's positional arguments.
fn full_args<'py>(
    py: Python<'py>,
    bound_to: Option<&Bound<'py, PyAny>>,
    args: &Bound<'py, PyTuple>,
) -> PyResult<Bound<'py, PyTuple>> {
    match bound_to {
        None => Ok(args.clone()),
        Some(instance) => {
            let mut all = Vec::with_capacity(args.len() + 1);
            all.push(instance.clone());
            all.extend(args.iter());
            PyTuple::new(py, all)
        }
    }
}

fn coroutine_type(py: Python<'_>) -> PyResult<&Bound<'_, PyType>> {
    static COROUTINE: PyOnceLock<Py<PyType>> = PyOnceLock::new();
    COROUTINE.import(py, "types", "CoroutineType")
}

fn async_resolve(py: Python<'_>) -> PyResult<&Bound<'_, PyAny>> {
    static RESOLVE: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    RESOLVE.import(py, "fastcache._aio", "resolve")
}

/// Lets `obj.method(x)` call a cached method without building a `BoundCachedMethod`:
/// with `Py_TPFLAGS_METHOD_DESCRIPTOR` the interpreter calls the descriptor with the
/// instance prepended instead of binding first (as it does for plain functions, and as
/// `functools.lru_cache`'s wrapper does). That equals binding then calling, because the
/// bound object only prepends the instance.
pub fn mark_method_descriptor(py: Python<'_>) {
    let ty = py.get_type::<CachedFunction>();
    let raw = ty.as_type_ptr();
    // SAFETY: runs once at module initialisation, before any instance exists and with the
    // interpreter attached; the flag changes how calls through instances are dispatched,
    // and `PyType_Modified` drops any cached lookups made before.
    unsafe {
        (*raw).tp_flags |= pyo3::ffi::Py_TPFLAGS_METHOD_DESCRIPTOR;
        pyo3::ffi::PyType_Modified(raw);
    }
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
