//! Walking argument values into the tagged encoding of `engine::key` (`Encoder`), and the
//! user's `hash_funcs`. The built-in kinds are here; data libraries' objects are in `data`,
//! every other object rule in `objects`, and the classes both recognise in `classes`.
//!
//! Runs attached to the interpreter and before any cache lock is taken, because
//! `hash_funcs` (and the conversions of big ints and odd strings) call back into Python.

use std::sync::Arc;

use pyo3::exceptions::{PyException, PyRecursionError};
use pyo3::ffi;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{
    PyBool, PyByteArray, PyBytes, PyComplex, PyDict, PyFloat, PyFrozenSet, PyInt, PyList, PySet,
    PyString, PyTuple, PyType,
};

mod classes;
mod data;
pub(crate) mod instances;
pub(crate) mod interner;
mod objects;

use crate::bindings::errors::{CacheError, UserHashError, UserHashFailure};
use crate::bindings::exit_safe;
use crate::engine::buffer_hash::{digest, DETACH_LIMIT};
use crate::engine::key::{EncodedKey, KeyWriter, Pins, Tag};
use crate::engine::stack;

/// Writes `obj` when it is of a kind whose encoding takes nothing but its own bytes and no
/// call into Python: exactly `None`, `bool`, an `int` within 64 bits, a `str` that has a
/// UTF-8 form, a `float`, `bytes`; bodies under [`DETACH_LIMIT`] (see
/// [`Encoder::immutable_bytes`]). False, with nothing written, for anything else. Both the
/// call's fast path (`ArgPlan::simple_key`) and [`Encoder::value`] write these kinds with
/// this one function, so the two always produce the same key.
#[inline]
pub fn write_simple(writer: &mut KeyWriter, obj: &Bound<'_, PyAny>) -> bool {
    let ptr = obj.as_ptr();
    // SAFETY: `obj` is a live object (the `Bound` proves it and that we are attached); each
    // branch calls only what is valid for the exact type it checked.
    unsafe {
        let ty = ffi::Py_TYPE(ptr);
        if ty == std::ptr::addr_of_mut!(ffi::PyLong_Type) {
            let mut overflow = 0;
            let value = ffi::PyLong_AsLongLongAndOverflow(ptr, &mut overflow);
            if overflow != 0 {
                return false;
            }
            writer.small_int(value);
            true
        } else if ty == std::ptr::addr_of_mut!(ffi::PyUnicode_Type) {
            let mut size: ffi::Py_ssize_t = 0;
            let data = ffi::PyUnicode_AsUTF8AndSize(ptr, &mut size);
            if data.is_null() {
                // Lone surrogates: no UTF-8 form (the encoder keeps them another way).
                ffi::PyErr_Clear();
                return false;
            }
            let size = size as usize;
            if size >= DETACH_LIMIT {
                return false;
            }
            let text = std::slice::from_raw_parts(data.cast::<u8>(), size);
            writer.tagged_bytes(Tag::Str, text);
            true
        } else if ptr == ffi::Py_None() {
            writer.tag(Tag::None);
            true
        } else if ty == std::ptr::addr_of_mut!(ffi::PyBool_Type) {
            writer.tag(if ptr == ffi::Py_True() {
                Tag::True
            } else {
                Tag::False
            });
            true
        } else if ty == std::ptr::addr_of_mut!(ffi::PyFloat_Type) {
            writer.float(ffi::PyFloat_AS_DOUBLE(ptr));
            true
        } else if ty == std::ptr::addr_of_mut!(ffi::PyBytes_Type) {
            let size = ffi::Py_SIZE(ptr) as usize;
            if size >= DETACH_LIMIT {
                return false;
            }
            let data = std::slice::from_raw_parts(ffi::PyBytes_AS_STRING(ptr).cast::<u8>(), size);
            writer.tagged_bytes(Tag::Bytes, data);
            true
        } else {
            false
        }
    }
}

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

/// No `hash_funcs`: what structural parts (names, code) are encoded with.
static NO_HASH_FUNCS: HashFuncs = HashFuncs {
    by_type: Vec::new(),
    by_name: Vec::new(),
};

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
}

/// Deepest nesting of containers and objects an argument may have (Python's own default
/// recursion limit).
pub const MAX_DEPTH: usize = 1000;

/// What an encoding is for, which decides what happens to a value that has no encoding of
/// its own.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Mode {
    /// An argument key: such a value is an error (`UnhashableParamError`).
    Key,
    /// Part of an identity (a closure's captured values, a class body): such a value is
    /// written as its class, so the identity a Streamlit rerun recreates still matches, and
    /// everything that has content is compared by content.
    Identity,
}

/// Walks Python values into a [`KeyWriter`].
pub struct Encoder<'a> {
    pub(crate) hash_funcs: &'a HashFuncs,
    pub(crate) mode: Mode,
    pub(crate) func_name: &'a str,
    pub(crate) writer: KeyWriter,
    /// Containers being encoded, outermost first, so a container that contains itself is
    /// written as a back-reference instead of recursing forever.
    pub(crate) ancestors: Vec<usize>,
    /// The parameter whose value is being encoded, for error messages (formatted only
    /// when one is raised: doing it on every call would cost more than the lookup).
    pub(crate) current_arg: Option<ArgName<'a>>,
    /// What the key being written names by ordinal and must keep alive (see `interner`):
    /// handed to the finished key, or released if encoding stops half-way.
    pub(crate) pins: Vec<Box<dyn Send + Sync>>,
    /// `hash_funcs` outputs being encoded, one inside the other: hash functions that hand
    /// values to each other (`{list: tuple, tuple: list}`) nest without containers.
    pub(crate) hand_offs: usize,
}

impl<'a> Encoder<'a> {
    /// An encoder of argument keys.
    pub fn new(hash_funcs: &'a HashFuncs, func_name: &'a str) -> Self {
        Encoder {
            hash_funcs,
            mode: Mode::Key,
            func_name,
            writer: KeyWriter::new(),
            ancestors: Vec::new(),
            current_arg: None,
            pins: Vec::new(),
            hand_offs: 0,
        }
    }

    /// An encoder without `hash_funcs`, for `mode`.
    pub fn plain(mode: Mode, func_name: &'a str) -> Self {
        let mut encoder = Encoder::new(&NO_HASH_FUNCS, func_name);
        encoder.mode = mode;
        encoder
    }

    pub fn finish(&mut self) -> EncodedKey {
        let pins = std::mem::take(&mut self.pins);
        let pins: Option<Pins> = (!pins.is_empty()).then(|| Arc::new(pins) as Pins);
        std::mem::take(&mut self.writer).finish_pinned(pins)
    }

    pub(crate) fn arg(
        &mut self,
        name: Option<ArgName<'a>>,
        value: &Bound<'_, PyAny>,
    ) -> Result<(), CacheError> {
        self.current_arg = name;
        self.value(value)
    }

    /// Encodes a structural part of a value — a parameter or field name, a qualified name,
    /// a code object — with `hash_funcs` switched off: they apply to the user's values, and a
    /// `hash_funcs={str: str.lower}` must not make `f(Color=1)` and `f(color=1)` one entry.
    pub(crate) fn structure(&mut self, part: &Bound<'_, PyAny>) -> Result<(), CacheError> {
        let saved = std::mem::replace(&mut self.hash_funcs, &NO_HASH_FUNCS);
        let result = self.value(part);
        self.hash_funcs = saved;
        result
    }

    /// Encodes on its own and returns the bytes, leaving the key as it was: for items of
    /// unordered containers. (Written at the end of the key and cut off again, rather than
    /// into a writer of its own: a nested value recurses through here once per level, and
    /// a writer held in each frame would cost stack.)
    pub(crate) fn isolated(
        &mut self,
        f: impl FnOnce(&mut Self) -> Result<(), CacheError>,
    ) -> Result<Vec<u8>, CacheError> {
        let start = self.writer.written();
        let result = f(self);
        let inner = self.writer.cut_off(start);
        result.map(|()| inner)
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
        if write_simple(&mut self.writer, obj) {
            return Ok(());
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
            self.class(ty)?;
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
        if stack::nearly_exhausted() {
            return Err(PyRecursionError::new_err(format!(
                "an argument of '{}' is nested too deeply for this thread's stack ({} levels \
                 reached); fastcache cannot hash it here (pass it as an underscore \
                 parameter, give a hash function for its type in hash_funcs, or call from a \
                 thread with a larger stack)",
                self.func_name,
                self.ancestors.len()
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
            let d = exit_safe::detach(py, || digest(bytes));
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
        // Beyond 64 bits: the minimal two's-complement bytes, from Python itself — through
        // `int`'s own methods, which a subclass cannot override.
        let py = obj.py();
        let int = py.get_type::<PyInt>();
        let bits: usize = int
            .call_method1(intern!(py, "bit_length"), (obj,))?
            .extract()?;
        let signed = PyDict::new(py);
        signed.set_item(intern!(py, "signed"), true)?;
        let bytes = int.call_method(
            intern!(py, "to_bytes"),
            (obj, bits / 8 + 1, intern!(py, "little")),
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
                // Lone surrogates have no UTF-8 form; keep them distinct via surrogatepass
                // (`str.encode` itself: a subclass's override is not asked).
                let py = s.py();
                let bytes = py
                    .get_type::<PyString>()
                    .call_method1(intern!(py, "encode"), (s, "utf-8", "surrogatepass"))?;
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
        let output = exit_safe::call1(hash_func, obj).map_err(|cause| {
            // A hash function that calls the cached function again raises from the inner
            // call: pass that error on instead of wrapping it once per level.
            // Ctrl-C and `SystemExit` are not the hash function's bug: they go on as they are.
            if cause.is_instance_of::<UserHashError>(obj.py())
                || !cause.is_instance_of::<PyException>(obj.py())
            {
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
        // The output is hashed in turn, under a tag that tells its two forms apart: a
        // function returning its own input's type would recurse, so that output is encoded
        // without hash_funcs (in isolation: back-references never point outside it).
        if output.get_type().is(obj.get_type()) {
            self.writer.tag(Tag::HashFuncSameType);
            let saved = std::mem::take(&mut self.ancestors);
            let result = self.structure(&output);
            self.ancestors = saved;
            return result;
        }
        self.writer.tag(Tag::HashFunc);
        if self.hand_offs >= MAX_DEPTH || stack::nearly_exhausted() {
            return Err(PyRecursionError::new_err(format!(
                "the hash_funcs of '{}' hand values to each other without end ({} hand-offs, \
                 the last from a `{}`): each output is hashed in turn, so a hash function \
                 must return a value its own entry does not map back",
                self.func_name,
                self.hand_offs,
                type_fqn(&obj.get_type())
            ))
            .into());
        }
        self.hand_offs += 1;
        let result = self.value(&output);
        self.hand_offs -= 1;
        result
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
