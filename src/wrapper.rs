//! The objects users hold: `CachedFunction` (what the decorator returns) and
//! `BoundCachedMethod` (what it becomes when looked up on an instance).
//!
//! `__call__` is native end to end: bind and encode the arguments, look the key up,
//! and only on a miss call back into the user's function.

use std::sync::Arc;

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyString, PyTuple};
use pyo3::{intern, PyTraverseError, PyVisit};

use crate::cache::{cache_for, CacheOptions, Callbacks, ResourceCache};
use crate::encode::{ArgPlan, Encoder, HashFuncs};
use crate::errors::SessionScopeError;

#[pyclass(frozen, dict, weakref, module = "fastcache")]
pub struct CachedFunction {
    func: Py<PyAny>,
    plan: ArgPlan,
    hash_funcs: HashFuncs,
    cache: Arc<ResourceCache>,
    /// `__name__`, as error messages name the function.
    name: String,
    session_scoped: bool,
    /// What `cache_parameters()` returns (a fresh copy each time).
    parameters: Py<PyDict>,
}

impl CachedFunction {
    fn call_with(
        &self,
        py: Python<'_>,
        bound_to: Option<&Bound<'_, PyAny>>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Py<PyAny>> {
        if self.session_scoped {
            return Err(session_scope_error(py));
        }
        let mut encoder = Encoder::new(&self.hash_funcs, &self.name);
        let key = match self.plan.key(&mut encoder, bound_to, args, kwargs) {
            Ok(Some(key)) => key,
            // The call does not fit the signature: let Python say exactly why.
            Ok(None) => return self.invoke(py, bound_to, args, kwargs),
            Err(err) => return Err(err.into_pyerr(py)),
        };
        self.cache
            .get_or_compute(py, key, || self.invoke(py, bound_to, args, kwargs))
            .map_err(|err| err.into_pyerr(py))
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
            None => func.call(args, kwargs)?,
            Some(instance) => {
                let mut all = Vec::with_capacity(args.len() + 1);
                all.push(instance.clone());
                all.extend(args.iter());
                func.call(PyTuple::new(py, all)?, kwargs)?
            }
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
        if no_arguments {
            self.cache.clear(py);
            return Ok(());
        }
        let mut encoder = Encoder::new(&self.hash_funcs, &self.name);
        match self.plan.key(&mut encoder, bound_to, args, kwargs) {
            Ok(Some(key)) => {
                self.cache.clear_key(py, &key);
                Ok(())
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
        validate, on_release, hash_funcs, session_scoped, parameters
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
        parameters: Py<PyDict>,
    ) -> PyResult<Self> {
        let plan = ArgPlan::from_params(params)?;
        let hash_funcs = HashFuncs::from_mapping(hash_funcs)?;
        let options = CacheOptions {
            ttl_secs,
            max_entries,
            background_refresh,
            has_validate: validate.is_some(),
        };
        let callbacks = Callbacks {
            validate,
            on_release,
        };
        let cache = cache_for(py, identity, qualname, options, callbacks);
        Ok(CachedFunction {
            func,
            plan,
            hash_funcs,
            cache,
            name,
            session_scoped,
            parameters,
        })
    }

    #[pyo3(signature = (*args, **kwargs))]
    fn __call__(
        &self,
        py: Python<'_>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Py<PyAny>> {
        self.call_with(py, None, args, kwargs)
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

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!("<fastcache cached function {}>", self.func.bind(py).repr()?))
    }

    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        visit.call(&self.func)?;
        visit.call(&self.parameters)?;
        self.plan.traverse(&visit)?;
        self.hash_funcs.traverse(&visit)
    }
}

/// A cached function looked up on an instance: calls pass the instance first.
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
        self.function
            .get()
            .call_with(py, Some(self.instance.bind(py)), args, kwargs)
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

    #[getter]
    fn __self__(&self, py: Python<'_>) -> Py<PyAny> {
        self.instance.clone_ref(py)
    }

    #[getter]
    fn __func__(&self, py: Python<'_>) -> Py<CachedFunction> {
        self.function.clone_ref(py)
    }

    /// Everything else (`__wrapped__`, `__name__`, `cache_info`, ...) is the function's.
    fn __getattr__<'py>(&self, py: Python<'py>, name: &Bound<'py, PyString>) -> PyResult<Bound<'py, PyAny>> {
        self.function.bind(py).as_any().getattr(name)
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!(
            "<bound fastcache cached method {} of {}>",
            self.function.bind(py).getattr(intern!(py, "__qualname__"))?,
            self.instance.bind(py).repr()?
        ))
    }

    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        visit.call(&self.function)?;
        visit.call(&self.instance)
    }
}

fn cache_info_type(py: Python<'_>) -> PyResult<&Bound<'_, PyAny>> {
    static CACHE_INFO: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    CACHE_INFO
        .get_or_try_init(py, || {
            py.import("fastcache._options")?
                .getattr("CacheInfo")
                .map(Bound::unbind)
        })
        .map(|t| t.bind(py))
}

/// Streamlit's error for a session-scoped cache used outside a script run. Inside a
/// Streamlit run, session scope is not supported yet and says so.
fn session_scope_error(py: Python<'_>) -> PyErr {
    let in_script_run = py
        .import("fastcache._options")
        .and_then(|m| m.call_method0("in_streamlit_script_run"))
        .and_then(|r| r.is_truthy())
        .unwrap_or(false);
    if in_script_run {
        return pyo3::exceptions::PyNotImplementedError::new_err(
            "scope=\"session\" inside a Streamlit app is not supported by this fastcache \
             version yet; use scope=\"global\" (the default) or st.cache_resource for this \
             function",
        );
    }
    SessionScopeError::new_err(
        "A session-scoped cache was accessed outside of the app execution thread. Make sure \
         all session-scoped caches are read during rendering and not read in background \
         threads.",
    )
}
