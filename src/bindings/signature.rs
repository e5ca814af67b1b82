//! Binding a call to the cached function's signature (`ArgPlan`, computed once at
//! decoration): defaults applied, `_`-prefixed parameters left out, `*args`/`**kwargs`
//! kept apart, then each hashed value handed to the `Encoder` in signature order. A call's
//! arguments arrive as the vectorcall protocol passes them (`CallArgs`).

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString, PyTuple};
use smallvec::SmallVec;

use crate::bindings::encode::{write_simple, ArgName, Encoder};
use crate::bindings::errors::CacheError;
use crate::engine::key::{EncodedKey, KeyWriter, Tag};

/// A call's arguments as the vectorcall protocol passes them: the positional values, then
/// one value per name in `kwnames`, all borrowed from the caller for the call's duration.
/// Nothing is copied or counted to look at them.
#[derive(Clone, Copy)]
pub struct CallArgs<'a, 'py> {
    py: Python<'py>,
    /// Positional values, then keyword values.
    values: &'a [*mut ffi::PyObject],
    nargs: usize,
    kwnames: Option<Borrowed<'a, 'py, PyTuple>>,
}

impl<'a, 'py> CallArgs<'a, 'py> {
    /// # Safety
    /// `args` points at `nargs` positional values followed by one value per item of
    /// `kwnames` (a tuple of `str`, or NULL for none), all valid references that outlive
    /// `'a`, as a vectorcall entry receives them (`nargs` without the offset flag).
    pub unsafe fn from_vectorcall(
        py: Python<'py>,
        args: *const *mut ffi::PyObject,
        nargs: usize,
        kwnames: *mut ffi::PyObject,
    ) -> Self {
        // SAFETY: per this function's contract; a NULL `kwnames` means no keywords.
        let kwnames = unsafe { Borrowed::from_ptr_or_opt(py, kwnames) }
            .map(|names| unsafe { names.cast_unchecked::<PyTuple>() });
        let nkw = kwnames.as_ref().map_or(0, |names| names.len());
        let values = match nargs + nkw {
            0 => &[][..],
            // SAFETY: per this function's contract, `args` holds that many values.
            n => unsafe { std::slice::from_raw_parts(args, n) },
        };
        CallArgs {
            py,
            values,
            nargs,
            kwnames,
        }
    }

    pub fn py(&self) -> Python<'py> {
        self.py
    }

    /// How many positional values.
    pub fn nargs(&self) -> usize {
        self.nargs
    }

    /// The raw values and names, to pass the call on with `PyObject_Vectorcall`.
    pub fn raw(&self) -> (&'a [*mut ffi::PyObject], *mut ffi::PyObject) {
        let names = self
            .kwnames
            .as_ref()
            .map_or(std::ptr::null_mut(), |names| names.as_ptr());
        (self.values, names)
    }

    fn value(&self, index: usize) -> Borrowed<'a, 'py, PyAny> {
        // SAFETY: every pointer in `values` is a valid reference for `'a` (see
        // `from_vectorcall`).
        unsafe { Borrowed::from_ptr(self.py, self.values[index]) }
    }

    /// The `i`-th positional value.
    pub fn positional(&self, i: usize) -> Borrowed<'a, 'py, PyAny> {
        debug_assert!(i < self.nargs);
        self.value(i)
    }

    pub fn has_keywords(&self) -> bool {
        self.values.len() > self.nargs
    }

    /// Whether the call passes no argument at all.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// `(name, value)` for each keyword argument, in the order given.
    pub fn keywords(
        &self,
    ) -> impl Iterator<Item = (Borrowed<'a, 'py, PyAny>, Borrowed<'a, 'py, PyAny>)> + '_ {
        let names = self.kwnames;
        (self.nargs..self.values.len()).map(move |i| {
            let names = names.expect("keyword values come with their names");
            // SAFETY: `kwnames` is a tuple with one item per keyword value, alive for `'a`.
            let name = unsafe {
                let item =
                    ffi::PyTuple_GET_ITEM(names.as_ptr(), (i - self.nargs) as ffi::Py_ssize_t);
                Borrowed::from_ptr(self.py, item)
            };
            (name, self.value(i))
        })
    }

    /// The arguments as a tuple and a dict (`None` without keywords), for what keeps them
    /// beyond the call or hands them on that way (a background refresh, an async call, the
    /// app's recorder).
    pub fn to_tuple_and_dict(&self) -> PyResult<(Bound<'py, PyTuple>, Option<Bound<'py, PyDict>>)> {
        let args = PyTuple::new(self.py, (0..self.nargs).map(|i| self.positional(i)))?;
        if !self.has_keywords() {
            return Ok((args, None));
        }
        let kwargs = PyDict::new(self.py);
        for (name, value) in self.keywords() {
            kwargs.set_item(name, value)?;
        }
        Ok((args, Some(kwargs)))
    }
}

/// Arguments that arrived as a tuple and a dict (the `tp_call` protocol, `clear(*args,
/// **kwargs)`, a stored async call), laid out as [`CallArgs`] reads them, with an instance
/// first for a method bound to one.
pub struct OwnedCallArgs<'py> {
    py: Python<'py>,
    /// Keeps every value alive while `raw` points at them.
    _held: SmallVec<[Bound<'py, PyAny>; 8]>,
    raw: SmallVec<[*mut ffi::PyObject; 8]>,
    nargs: usize,
    kwnames: Option<Bound<'py, PyTuple>>,
}

impl<'py> OwnedCallArgs<'py> {
    pub fn new(
        instance: Option<&Bound<'py, PyAny>>,
        args: &Bound<'py, PyTuple>,
        kwargs: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Self> {
        let py = args.py();
        let mut held: SmallVec<[Bound<'py, PyAny>; 8]> = SmallVec::new();
        held.extend(instance.cloned());
        held.extend(args.iter());
        let nargs = held.len();
        let mut names = Vec::new();
        if let Some(kwargs) = kwargs {
            for (name, value) in kwargs.iter() {
                names.push(name);
                held.push(value);
            }
        }
        let kwnames = match names.is_empty() {
            true => None,
            false => Some(PyTuple::new(py, names)?),
        };
        let raw = held.iter().map(Bound::as_ptr).collect();
        Ok(OwnedCallArgs {
            py,
            _held: held,
            raw,
            nargs,
            kwnames,
        })
    }

    pub fn view(&self) -> CallArgs<'_, 'py> {
        CallArgs {
            py: self.py,
            values: &self.raw,
            nargs: self.nargs,
            kwnames: self.kwnames.as_ref().map(Bound::as_borrowed),
        }
    }
}

/// One parameter of the cached function's signature.
pub struct Param {
    name: Py<PyString>,
    default: Option<Py<PyAny>>,
    /// False for names with a leading underscore: excluded from the key, never hashed.
    hashed: bool,
}

/// How to bind a call to the signature, computed once at decoration.
#[derive(Default)]
pub struct ArgPlan {
    /// A wrapper's own signature, when it differs from the one it shows (that of the
    /// function it wraps): calls that fit only this one are bound to it.
    outer: Option<Box<ArgPlan>>,
    /// Positional-only then positional-or-keyword parameters, in order.
    positional: Vec<Param>,
    posonly_count: usize,
    var_args: bool,
    keyword_only: Vec<Param>,
    var_kwargs: bool,
}

/// `inspect.Parameter.kind` values.
const POSITIONAL_ONLY: u8 = 0;
const POSITIONAL_OR_KEYWORD: u8 = 1;
const VAR_POSITIONAL: u8 = 2;
const KEYWORD_ONLY: u8 = 3;
const VAR_KEYWORD: u8 = 4;

impl ArgPlan {
    /// From `(shown, own)`: the signature a call is bound to first, and the wrapper's own
    /// (or `None`); each as `(name, kind, has_default, default)` tuples in order.
    pub fn from_params(params: &Bound<'_, PyAny>) -> PyResult<Self> {
        let (shown, own): (Bound<'_, PyAny>, Bound<'_, PyAny>) = params.extract()?;
        let mut plan = Self::from_signature(&shown)?;
        if !own.is_none() {
            plan.outer = Some(Box::new(Self::from_signature(&own)?));
        }
        Ok(plan)
    }

    fn from_signature(params: &Bound<'_, PyAny>) -> PyResult<Self> {
        let mut plan = ArgPlan::default();
        for item in params.try_iter()? {
            let (name, kind, has_default, default): (Bound<PyString>, u8, bool, Bound<PyAny>) =
                item?.extract()?;
            let param = Param {
                hashed: !name.to_str()?.starts_with('_'),
                name: name.unbind(),
                default: has_default.then(|| default.unbind()),
            };
            match kind {
                POSITIONAL_ONLY => {
                    plan.posonly_count += 1;
                    plan.positional.push(param);
                }
                POSITIONAL_OR_KEYWORD => plan.positional.push(param),
                VAR_POSITIONAL => plan.var_args = true,
                KEYWORD_ONLY => plan.keyword_only.push(param),
                VAR_KEYWORD => plan.var_kwargs = true,
                other => {
                    return Err(pyo3::exceptions::PyValueError::new_err(format!(
                        "unknown parameter kind {other}"
                    )))
                }
            }
        }
        Ok(plan)
    }

    pub fn traverse(&self, visit: &pyo3::PyVisit<'_>) -> Result<(), pyo3::PyTraverseError> {
        for p in self.positional.iter().chain(&self.keyword_only) {
            visit.call(&p.name)?;
            if let Some(d) = &p.default {
                visit.call(d)?;
            }
        }
        match &self.outer {
            Some(outer) => outer.traverse(visit),
            None => Ok(()),
        }
    }

    fn slot_of(&self, py: Python<'_>, name: &Bound<'_, PyAny>) -> PyResult<Option<usize>> {
        if let Some(i) = self.slot_of_interned(name) {
            return Ok(Some(i));
        }
        for (i, p) in self.keyword_slots() {
            if p.name.bind(py).as_any().eq(name)? {
                return Ok(Some(i));
            }
        }
        Ok(None)
    }

    /// The parameters a keyword can name, with their slots.
    fn keyword_slots(&self) -> impl Iterator<Item = (usize, &Param)> {
        let keyword_capable = self.positional.iter().enumerate().skip(self.posonly_count);
        let keyword_only = self
            .keyword_only
            .iter()
            .enumerate()
            .map(|(i, p)| (i + self.positional.len(), p));
        keyword_capable.chain(keyword_only)
    }

    /// The slot of the parameter named by this very string object: names in calls and in
    /// the signature are nearly always the same interned string, so identity settles it.
    fn slot_of_interned(&self, name: &Bound<'_, PyAny>) -> Option<usize> {
        self.keyword_slots()
            .find(|(_, p)| p.name.as_ptr() == name.as_ptr())
            .map(|(i, _)| i)
    }

    /// Binds the call to the signature and encodes the hashed values; a call that does not
    /// fit it but fits a wrapper's own signature is bound to that one (under its own tag, so
    /// the two never share a key). `Ok(None)` when the call fits neither: the caller then
    /// runs the function uncached so Python raises its own, exact `TypeError`.
    pub fn key<'a>(
        &'a self,
        encoder: &mut Encoder<'a>,
        call: CallArgs<'_, '_>,
    ) -> Result<Option<EncodedKey>, CacheError> {
        // Binding writes nothing until the call is known to fit, so a call that does not
        // leaves the encoder empty for the next signature.
        if let Some(key) = self.bind(encoder, call)? {
            return Ok(Some(key));
        }
        let Some(outer) = &self.outer else {
            return Ok(None);
        };
        encoder.writer.tag(Tag::OuterSignature);
        outer.bind(encoder, call)
    }

    /// The key of a call whose arguments are all of the simple kinds (None, bool, int, str,
    /// float, bytes: see `encode::write_simple`) and name no parameter but by the very
    /// string the signature holds, written straight into `writer`: no encoder, no binding
    /// table. The same bytes [`Self::key`] writes (it writes these kinds with the same
    /// function). `None` when the call is not of that shape (`writer` then holds a part of
    /// a key, to be thrown away); the caller takes the general path.
    pub fn simple_key(&self, writer: &mut KeyWriter, call: CallArgs<'_, '_>) -> Option<()> {
        if self.var_args || self.var_kwargs {
            return None;
        }
        let n_positional = self.positional.len();
        let nargs = call.nargs();
        if nargs > n_positional {
            return None;
        }
        if !call.has_keywords() {
            for (i, param) in self.positional.iter().enumerate() {
                let value = match i < nargs {
                    true => call.positional(i),
                    false => param.default.as_ref()?.bind_borrowed(call.py()),
                };
                if param.hashed && !write_simple(writer, &value) {
                    return None;
                }
            }
            for param in &self.keyword_only {
                let value = param.default.as_ref()?.bind_borrowed(call.py());
                if param.hashed && !write_simple(writer, &value) {
                    return None;
                }
            }
            return Some(());
        }
        // Keywords: each names a slot by identity, once, and not one filled positionally.
        let mut slots: SmallVec<[Option<Borrowed<'_, '_, PyAny>>; 8]> = SmallVec::new();
        slots.resize(n_positional + self.keyword_only.len(), None);
        for (i, slot) in slots.iter_mut().enumerate().take(nargs) {
            *slot = Some(call.positional(i));
        }
        for (name, value) in call.keywords() {
            let i = self.slot_of_interned(&name)?;
            if slots[i].replace(value).is_some() {
                return None;
            }
        }
        let params = self.positional.iter().chain(&self.keyword_only);
        for (slot, param) in slots.iter().zip(params) {
            let value = match slot {
                Some(value) => *value,
                None => param.default.as_ref()?.bind_borrowed(call.py()),
            };
            if param.hashed && !write_simple(writer, &value) {
                return None;
            }
        }
        Some(())
    }

    fn bind<'a>(
        &'a self,
        encoder: &mut Encoder<'a>,
        call: CallArgs<'_, '_>,
    ) -> Result<Option<EncodedKey>, CacheError> {
        let py = call.py();
        let n_named = self.positional.len() + self.keyword_only.len();
        // Inline for the usual handful of parameters: a hit allocates nothing here.
        let mut slots: SmallVec<[Option<Bound<'_, PyAny>>; 8]> = SmallVec::new();
        slots.resize(n_named, None);
        let mut extra_positional = Vec::new();
        for i in 0..call.nargs() {
            let value = call.positional(i).to_owned();
            if i < self.positional.len() {
                slots[i] = Some(value);
            } else if self.var_args {
                extra_positional.push(value);
            } else {
                return Ok(None);
            }
        }
        let mut extra_keywords = Vec::new();
        for (name, value) in call.keywords() {
            match self.slot_of(py, &name)? {
                Some(i) if slots[i].is_some() => return Ok(None),
                Some(i) => slots[i] = Some(value.to_owned()),
                None if self.var_kwargs => extra_keywords.push((name.to_owned(), value.to_owned())),
                None => return Ok(None),
            }
        }
        let params = self.positional.iter().chain(&self.keyword_only);
        for (slot, param) in slots.iter_mut().zip(params) {
            if slot.is_none() {
                match &param.default {
                    Some(default) => *slot = Some(default.bind(py).clone()),
                    None => return Ok(None),
                }
            }
        }

        let params = self.positional.iter().chain(&self.keyword_only);
        for (value, param) in slots.iter().zip(params) {
            if !param.hashed {
                continue;
            }
            let value = value.as_ref().expect("every slot was filled above");
            encoder.arg(Some(ArgName::Param(&param.name)), value)?;
        }
        if self.var_args {
            encoder
                .writer
                .sequence(Tag::VarArgs, extra_positional.len());
            for value in &extra_positional {
                encoder.arg(None, value)?;
            }
        }
        if self.var_kwargs {
            let mut items = Vec::with_capacity(extra_keywords.len());
            for (name, value) in &extra_keywords {
                let name = name.cast::<PyString>().map_err(PyErr::from)?;
                if name.to_str()?.starts_with('_') {
                    continue;
                }
                items.push(encoder.isolated(|e| {
                    e.structure(name.as_any())?;
                    e.arg(Some(ArgName::Keyword(name.clone().unbind())), value)
                })?);
            }
            encoder.writer.unordered(Tag::VarKwargs, items);
        }
        Ok(Some(encoder.finish()))
    }
}
