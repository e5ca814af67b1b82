//! Turning a call's arguments into a [`Key`]: binding them to the signature, then walking
//! each hashed value into the tagged encoding of `key.rs`.
//!
//! Runs attached to the interpreter and before any cache lock is taken, because
//! `hash_funcs` (and the conversions of big ints and odd strings) call back into Python.

use pyo3::exceptions::PyRecursionError;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{
    PyBool, PyByteArray, PyBytes, PyComplex, PyDict, PyFloat, PyFrozenSet, PyInt, PyList, PySet,
    PyString, PyTuple, PyType,
};
use smallvec::SmallVec;

use crate::buffer_hash::{digest, DETACH_LIMIT};
use crate::errors::{CacheError, UserHashError, UserHashFailure};
use crate::key::{EncodedKey, KeyWriter, Tag};

/// `module.qualname` of a class, as Streamlit spells type names in `hash_funcs` and errors.
pub fn type_fqn(ty: &Bound<'_, PyType>) -> String {
    let module = ty.module().map(|m| m.to_string()).unwrap_or_default();
    let qualname = ty
        .qualname()
        .map(|q| q.to_string())
        .unwrap_or_else(|_| "<unknown>".to_owned());
    format!("{module}.{qualname}")
}

/// The user's `hash_funcs`, split by how they match: an exact type, or a type's
/// `module.qualname`. Matching is on the exact type, never a subclass (as Streamlit).
#[derive(Default)]
pub struct HashFuncs {
    by_type: Vec<(Py<PyType>, Py<PyAny>)>,
    by_name: Vec<(String, Py<PyAny>)>,
}

impl HashFuncs {
    /// From the mapping the decorator received; keys were checked to be types or strings.
    pub fn from_mapping(mapping: Option<&Bound<'_, PyDict>>) -> PyResult<Self> {
        let mut funcs = HashFuncs::default();
        let Some(mapping) = mapping else {
            return Ok(funcs);
        };
        for (key, func) in mapping.iter() {
            if let Ok(ty) = key.cast::<PyType>() {
                funcs.by_type.push((ty.clone().unbind(), func.unbind()));
            } else if let Ok(name) = key.cast::<PyString>() {
                funcs
                    .by_name
                    .push((name.to_str()?.to_owned(), func.unbind()));
            } else {
                return Err(pyo3::exceptions::PyTypeError::new_err(format!(
                    "hash_funcs keys must be types or fully-qualified type names such as \
                     \"numpy.ndarray\"; got {} of type {}",
                    key.repr()?,
                    type_fqn(&key.get_type())
                )));
            }
        }
        Ok(funcs)
    }

    pub fn is_empty(&self) -> bool {
        self.by_type.is_empty() && self.by_name.is_empty()
    }

    fn lookup<'py>(&self, ty: &Bound<'py, PyType>) -> Option<Bound<'py, PyAny>> {
        let py = ty.py();
        if let Some((_, f)) = self.by_type.iter().find(|(t, _)| t.bind(py).is(ty)) {
            return Some(f.bind(py).clone());
        }
        if self.by_name.is_empty() {
            return None;
        }
        let name = type_fqn(ty);
        self.by_name
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, f)| f.bind(py).clone())
    }

    pub fn traverse(&self, visit: &pyo3::PyVisit<'_>) -> Result<(), pyo3::PyTraverseError> {
        for (t, f) in &self.by_type {
            visit.call(t)?;
            visit.call(f)?;
        }
        for (_, f) in &self.by_name {
            visit.call(f)?;
        }
        Ok(())
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
    /// From `(name, kind, has_default, default)` tuples in signature order.
    pub fn from_params(params: &Bound<'_, PyAny>) -> PyResult<Self> {
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
        Ok(())
    }

    fn slot_of(&self, py: Python<'_>, name: &Bound<'_, PyAny>) -> PyResult<Option<usize>> {
        let keyword_capable = self.positional.iter().enumerate().skip(self.posonly_count);
        let keyword_only = self
            .keyword_only
            .iter()
            .enumerate()
            .map(|(i, p)| (i + self.positional.len(), p));
        // Names are nearly always interned, so identity settles most comparisons.
        for (i, p) in keyword_capable.chain(keyword_only) {
            let param_name = p.name.bind(py);
            if param_name.is(name) || param_name.as_any().eq(name)? {
                return Ok(Some(i));
            }
        }
        Ok(None)
    }

    /// Binds the call to the signature and encodes the hashed values. `Ok(None)` when the
    /// call does not fit the signature: the caller then runs the function uncached so
    /// Python raises its own, exact `TypeError`.
    pub fn key<'a>(
        &'a self,
        encoder: &mut Encoder<'a>,
        bound_to: Option<&Bound<'_, PyAny>>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> Result<Option<EncodedKey>, CacheError> {
        if let Some(key) = self.positional_key(encoder, bound_to, args, kwargs)? {
            return Ok(Some(key));
        }
        let py = args.py();
        let n_named = self.positional.len() + self.keyword_only.len();
        // Inline for the usual handful of parameters: a hit allocates nothing here.
        let mut slots: SmallVec<[Option<Bound<'_, PyAny>>; 8]> = SmallVec::new();
        slots.resize(n_named, None);
        let given = bound_to.into_iter().cloned().chain(args.iter());
        let mut extra_positional = Vec::new();
        for (i, value) in given.enumerate() {
            if i < self.positional.len() {
                slots[i] = Some(value);
            } else if self.var_args {
                extra_positional.push(value);
            } else {
                return Ok(None);
            }
        }
        let mut extra_keywords = Vec::new();
        if let Some(kwargs) = kwargs {
            for (name, value) in kwargs.iter() {
                match self.slot_of(py, &name)? {
                    Some(i) if slots[i].is_some() => return Ok(None),
                    Some(i) => slots[i] = Some(value),
                    None if self.var_kwargs => extra_keywords.push((name, value)),
                    None => return Ok(None),
                }
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
                    e.value(name.as_any())?;
                    e.arg(Some(ArgName::Keyword(name.clone().unbind())), value)
                })?);
            }
            encoder.writer.unordered(Tag::VarKwargs, items);
        }
        Ok(Some(encoder.finish()))
    }
}

impl ArgPlan {
    /// The common call: every argument positional, one per named parameter, nothing for
    /// `*args`/`**kwargs`/keyword-only parameters. Encodes straight from the argument
    /// tuple, with no binding table. `None` when the call is not of that shape.
    fn positional_key<'a>(
        &'a self,
        encoder: &mut Encoder<'a>,
        bound_to: Option<&Bound<'_, PyAny>>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> Result<Option<EncodedKey>, CacheError> {
        let offset = usize::from(bound_to.is_some());
        let simple = kwargs.is_none_or(|k| k.is_empty())
            && !self.var_args
            && !self.var_kwargs
            && self.keyword_only.is_empty()
            && args.len() + offset == self.positional.len();
        if !simple {
            return Ok(None);
        }
        for (i, param) in self.positional.iter().enumerate() {
            if !param.hashed {
                continue;
            }
            let name = Some(ArgName::Param(&param.name));
            match (i, bound_to) {
                (0, Some(instance)) => encoder.arg(name, instance)?,
                _ => encoder.arg(name, &*args.get_borrowed_item(i - offset)?)?,
            }
        }
        Ok(Some(encoder.finish()))
    }
}

/// The parameter an argument is bound to, for error messages: borrowed from the plan
/// for named parameters (no reference counting on the hot path), owned for `**kwargs`
/// keys, which come from the call.
pub(crate) enum ArgName<'a> {
    Param(&'a Py<PyString>),
    Keyword(Py<PyString>),
}

impl ArgName<'_> {
    fn describe(&self, py: Python<'_>) -> String {
        match self {
            ArgName::Param(name) => name.bind(py).to_string(),
            ArgName::Keyword(name) => name.bind(py).to_string(),
        }
    }

    fn clone_ref(&self, py: Python<'_>) -> Self {
        match self {
            ArgName::Param(name) => ArgName::Param(name),
            ArgName::Keyword(name) => ArgName::Keyword(name.clone_ref(py)),
        }
    }
}

/// Deepest nesting of containers and objects an argument may have (Python's own default
/// recursion limit).
pub const MAX_DEPTH: usize = 1000;

/// Walks Python values into a [`KeyWriter`].
pub struct Encoder<'a> {
    pub(crate) hash_funcs: &'a HashFuncs,
    pub(crate) func_name: &'a str,
    pub(crate) writer: KeyWriter,
    /// Containers being encoded, outermost first, so a container that contains itself is
    /// written as a back-reference instead of recursing forever.
    pub(crate) ancestors: Vec<usize>,
    /// The parameter whose value is being encoded, for error messages (formatted only
    /// when one is raised: doing it on every call would cost more than the lookup).
    pub(crate) current_arg: Option<ArgName<'a>>,
}

impl<'a> Encoder<'a> {
    pub fn new(hash_funcs: &'a HashFuncs, func_name: &'a str) -> Self {
        Encoder {
            hash_funcs,
            func_name,
            writer: KeyWriter::new(),
            ancestors: Vec::new(),
            current_arg: None,
        }
    }

    pub fn finish(&mut self) -> EncodedKey {
        std::mem::take(&mut self.writer).finish()
    }

    fn arg(
        &mut self,
        name: Option<ArgName<'a>>,
        value: &Bound<'_, PyAny>,
    ) -> Result<(), CacheError> {
        self.current_arg = name;
        self.value(value)
    }

    /// Encodes with a fresh writer and returns the bytes: for items of unordered containers.
    pub(crate) fn isolated(
        &mut self,
        f: impl FnOnce(&mut Self) -> Result<(), CacheError>,
    ) -> Result<Vec<u8>, CacheError> {
        let outer = std::mem::take(&mut self.writer);
        let result = f(self);
        let inner = std::mem::replace(&mut self.writer, outer);
        result.map(|()| inner.into_bytes())
    }

    /// Encodes one value. The common kinds (exact `None`, `bool`, `int`, `str`, `float`,
    /// `bytes`, built-in containers, classes) are tested first with C-level type checks;
    /// everything else goes to [`Self::object`] (`encode_objects.rs`), so ordinary arguments
    /// never pay for the longer chain of rules.
    pub fn value(&mut self, obj: &Bound<'_, PyAny>) -> Result<(), CacheError> {
        if !self.hash_funcs.is_empty() {
            if let Some(hash_func) = self.hash_funcs.lookup(&obj.get_type()) {
                return self.user_hash(obj, &hash_func);
            }
        }
        let w = &mut self.writer;
        if obj.is_none() {
            w.tag(Tag::None);
        } else if obj.is_exact_instance_of::<PyBool>() {
            w.tag(if obj.is_truthy()? {
                Tag::True
            } else {
                Tag::False
            });
        } else if obj.is_exact_instance_of::<PyInt>() {
            self.int(obj)?;
        } else if let Ok(s) = obj.cast_exact::<PyString>() {
            self.string(s)?;
        } else if let Ok(f) = obj.cast_exact::<PyFloat>() {
            w.float(f.value());
        } else if let Ok(b) = obj.cast_exact::<PyBytes>() {
            self.immutable_bytes(obj.py(), Tag::Bytes, b.as_bytes());
        } else if obj.is_exact_instance_of::<PyTuple>()
            || obj.is_exact_instance_of::<PyList>()
            || obj.is_exact_instance_of::<PyDict>()
            || obj.is_exact_instance_of::<PySet>()
            || obj.is_exact_instance_of::<PyFrozenSet>()
            || obj.is_exact_instance_of::<PyByteArray>()
            || obj.is_exact_instance_of::<PyComplex>()
        {
            self.builtin_body(obj)?;
        } else if let Ok(ty) = obj.cast::<PyType>() {
            self.writer.tagged_bytes(Tag::Type, type_fqn(ty).as_bytes());
        } else {
            self.object(obj)?;
        }
        Ok(())
    }

    /// Marks a container or object as being encoded (for back-references), refusing
    /// nesting deeper than [`MAX_DEPTH`]: each level is a Rust stack frame, and a value
    /// nested without end (a `__reduce__` that builds a fresh object every time) must give
    /// an exception, not a stack overflow.
    pub(crate) fn enter(&mut self, id: usize) -> Result<(), CacheError> {
        if self.ancestors.len() >= MAX_DEPTH {
            return Err(PyRecursionError::new_err(format!(
                "an argument of '{}' is nested more than {MAX_DEPTH} levels deep; \
                 fastcache cannot hash it (pass it as an underscore parameter, or give \
                 a hash function for its type in hash_funcs)",
                self.func_name
            ))
            .into());
        }
        self.ancestors.push(id);
        Ok(())
    }

    /// The error for a value no rule accepts.
    pub(crate) fn unhashable(&self, obj: &Bound<'_, PyAny>) -> CacheError {
        CacheError::Unhashable {
            arg: self.current_arg.as_ref().map(|n| n.describe(obj.py())),
            type_name: type_fqn(&obj.get_type()),
            func: self.func_name.to_owned(),
        }
    }

    /// The body of an immutable byte string (`bytes`, UTF-8 of a `str`): verbatim when short,
    /// else a digest, computed detached from the interpreter when large.
    pub(crate) fn immutable_bytes(&mut self, py: Python<'_>, tag: Tag, bytes: &[u8]) {
        if bytes.len() >= DETACH_LIMIT {
            // Sound without a buffer export: the caller holds a reference to an immutable
            // `bytes`/`str`, so the memory can neither be freed nor change while detached,
            // and the closure runs no Python.
            let d = py.detach(|| digest(bytes));
            self.writer.tagged_digest(tag, bytes.len(), &d);
        } else {
            self.writer.tagged_bytes(tag, bytes);
        }
    }

    /// Encodes a value of a built-in kind (or a subclass of one) by that kind's content.
    pub(crate) fn builtin_body(&mut self, obj: &Bound<'_, PyAny>) -> Result<(), CacheError> {
        if obj.is_instance_of::<PyInt>() {
            // bool is final, so an int subclass here is never a bool.
            return self.int(obj);
        }
        if let Ok(s) = obj.cast::<PyString>() {
            return self.string(s);
        }
        if let Ok(f) = obj.cast::<PyFloat>() {
            self.writer.float(f.value());
            return Ok(());
        }
        if let Ok(c) = obj.cast::<PyComplex>() {
            self.writer.complex(c.real(), c.imag());
            return Ok(());
        }
        if let Ok(b) = obj.cast::<PyBytes>() {
            self.immutable_bytes(obj.py(), Tag::Bytes, b.as_bytes());
            return Ok(());
        }
        if obj.is_instance_of::<PyByteArray>() {
            // Through a buffer export: it pins the size, so the bytes can be hashed detached.
            return self.buffer_data(obj, Tag::ByteArray);
        }
        let id = obj.as_ptr() as usize;
        if let Some(depth) = self.ancestors.iter().position(|&a| a == id) {
            self.writer.back_ref(depth);
            return Ok(());
        }
        self.enter(id)?;
        let result = self.container(obj);
        self.ancestors.pop();
        result
    }

    fn container(&mut self, obj: &Bound<'_, PyAny>) -> Result<(), CacheError> {
        if let Ok(t) = obj.cast::<PyTuple>() {
            self.writer.sequence(Tag::Tuple, t.len());
            for item in t.iter() {
                self.value(&item)?;
            }
        } else if let Ok(l) = obj.cast::<PyList>() {
            // A snapshot, so a hash function that mutates the list cannot derail the walk.
            let items: Vec<_> = l.iter().collect();
            self.writer.sequence(Tag::List, items.len());
            for item in &items {
                self.value(item)?;
            }
        } else if let Ok(d) = obj.cast::<PyDict>() {
            let items: Vec<_> = d.iter().collect();
            if is_ordered_dict(obj) {
                self.writer.sequence(Tag::OrderedDict, items.len());
                for (k, v) in &items {
                    self.value(k)?;
                    self.value(v)?;
                }
            } else {
                let mut encoded = Vec::with_capacity(items.len());
                for (k, v) in &items {
                    encoded.push(self.isolated(|e| {
                        e.value(k)?;
                        e.value(v)
                    })?);
                }
                self.writer.unordered(Tag::Dict, encoded);
            }
        } else if let Ok(s) = obj.cast::<PySet>() {
            let items: Vec<_> = s.iter().collect();
            let encoded = self.each_isolated(&items)?;
            self.writer.unordered(Tag::Set, encoded);
        } else if let Ok(s) = obj.cast::<PyFrozenSet>() {
            let items: Vec<_> = s.iter().collect();
            let encoded = self.each_isolated(&items)?;
            self.writer.unordered(Tag::FrozenSet, encoded);
        } else {
            unreachable!("only called for built-in containers");
        }
        Ok(())
    }

    pub(crate) fn each_isolated(
        &mut self,
        items: &[Bound<'_, PyAny>],
    ) -> Result<Vec<Vec<u8>>, CacheError> {
        items
            .iter()
            .map(|item| self.isolated(|e| e.value(item)))
            .collect()
    }

    fn int(&mut self, obj: &Bound<'_, PyAny>) -> Result<(), CacheError> {
        if let Ok(v) = obj.extract::<i64>() {
            self.writer.small_int(v);
            return Ok(());
        }
        // Beyond 64 bits: the minimal two's-complement bytes, from Python itself.
        let py = obj.py();
        let bits: usize = obj.call_method0(intern!(py, "bit_length"))?.extract()?;
        let signed = PyDict::new(py);
        signed.set_item(intern!(py, "signed"), true)?;
        let bytes = obj.call_method(
            intern!(py, "to_bytes"),
            (bits / 8 + 1, intern!(py, "little")),
            Some(&signed),
        )?;
        let bytes = bytes.cast::<PyBytes>().map_err(PyErr::from)?;
        self.writer.tagged_bytes(Tag::BigInt, bytes.as_bytes());
        Ok(())
    }

    fn string(&mut self, s: &Bound<'_, PyString>) -> Result<(), CacheError> {
        match s.to_str() {
            Ok(text) => self.immutable_bytes(s.py(), Tag::Str, text.as_bytes()),
            Err(_) => {
                // Lone surrogates have no UTF-8 form; keep them distinct via surrogatepass.
                let py = s.py();
                let bytes = s.call_method1(intern!(py, "encode"), ("utf-8", "surrogatepass"))?;
                let bytes = bytes.cast::<PyBytes>().map_err(PyErr::from)?;
                self.writer.tagged_bytes(Tag::Str, bytes.as_bytes());
            }
        }
        Ok(())
    }

    fn user_hash(
        &mut self,
        obj: &Bound<'_, PyAny>,
        hash_func: &Bound<'_, PyAny>,
    ) -> Result<(), CacheError> {
        let output = hash_func.call1((obj,)).map_err(|cause| {
            // A hash function that calls the cached function again raises from the inner
            // call: pass that error on instead of wrapping it once per level.
            if cause.is_instance_of::<UserHashError>(obj.py()) {
                return CacheError::Python(cause);
            }
            CacheError::UserHash(Box::new(UserHashFailure {
                cause,
                type_name: type_fqn(&obj.get_type()),
                hash_func: hash_func
                    .getattr(intern!(obj.py(), "__name__"))
                    .map(|n| n.to_string())
                    .unwrap_or_else(|_| "a hash function".to_owned()),
                func: self.func_name.to_owned(),
            }))
        })?;
        self.writer.tag(Tag::HashFunc);
        // The output is hashed in turn; a function returning its own input's type would
        // recurse, so the output's exact type bypasses hash_funcs when it is the same type.
        if output.get_type().is(obj.get_type()) {
            let saved = std::mem::take(&mut self.ancestors);
            let empty = HashFuncs::default();
            let mut inner = Encoder::new(&empty, self.func_name);
            inner.current_arg = self.current_arg.as_ref().map(|n| n.clone_ref(obj.py()));
            let result = inner.value(&output);
            self.ancestors = saved;
            result?;
            let bytes = inner.writer.into_bytes();
            self.writer.raw_bytes(&bytes);
            return Ok(());
        }
        self.value(&output)
    }
}

pub(crate) fn is_builtin_subclass(obj: &Bound<'_, PyAny>) -> bool {
    obj.is_instance_of::<PyInt>()
        || obj.is_instance_of::<PyString>()
        || obj.is_instance_of::<PyFloat>()
        || obj.is_instance_of::<PyTuple>()
        || obj.is_instance_of::<PyList>()
        || obj.is_instance_of::<PyDict>()
        || obj.is_instance_of::<PySet>()
        || obj.is_instance_of::<PyFrozenSet>()
        || obj.is_instance_of::<PyBytes>()
        || obj.is_instance_of::<PyByteArray>()
        || obj.is_instance_of::<PyComplex>()
}

fn is_ordered_dict(obj: &Bound<'_, PyAny>) -> bool {
    static ORDERED_DICT: pyo3::sync::PyOnceLock<Py<PyType>> = pyo3::sync::PyOnceLock::new();
    let py = obj.py();
    match ORDERED_DICT.import(py, "collections", "OrderedDict") {
        Ok(od) => obj.is_instance(od.as_any()).unwrap_or(false),
        Err(_) => false,
    }
}
