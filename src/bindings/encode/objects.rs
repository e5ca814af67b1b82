//! Encoding of every argument that is not a plain built-in value: the ordered chain of rules
//! of SPEC §4, from mocks and enums through dataclasses and `__reduce__` to objects keyed by
//! their own `__hash__`/`__eq__`, and the rejection of identity-only objects.
//!
//! Optional libraries (numpy, pandas, polars, PIL, pydantic, attrs) are never imported: their
//! classes are looked up in `sys.modules` ([`LoadedClass`]), so when a library is not loaded
//! no argument can be one of its objects and the check costs one dict lookup.
//!
//! Everything here runs attached to the interpreter with no Rust lock held, so it may call
//! Python (`__reduce_ex__`, `__hash__`, `__eq__`, `model_dump`) freely.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{
    PyCFunction, PyCode, PyDict, PyDictItems, PyDictKeys, PyDictValues, PyFunction, PyList,
    PyMappingProxy, PyMemoryView, PyModule, PyString, PyTuple, PyType, PyWeakrefReference,
};

use super::classes::{
    stdlib, ARRAY, BUILTIN_METHOD, BYTES_IO, CELL, CLASS_METHOD, DEFAULT_DICT, DESCRIPTORS, ENUM,
    FIELD_SPECS, IO_BASE, METHOD, MOCK, NUMPY_SCALAR, NUMPY_UFUNC, PARTIAL, PATTERN, PROPERTY,
    STATIC_METHOD, STRING_IO, TEMP_FILE, UUID,
};
use super::instances::ClassKind;
use super::{is_builtin_subclass, type_fqn, Encoder, Mode};
use crate::bindings::errors::CacheError;
use crate::bindings::exit_safe;
use crate::bindings::wrapper::{BoundCachedMethod, CachedFunction};
use crate::engine::key::Tag;

/// `object`'s own slots, to tell a class that customises hashing or pickling from one that
/// inherits the identity defaults.
struct ObjectSlots {
    hash: Py<PyAny>,
    eq: Py<PyAny>,
    reduce: Py<PyAny>,
    reduce_ex: Py<PyAny>,
}

fn object_slots(py: Python<'_>) -> &ObjectSlots {
    static SLOTS: PyOnceLock<ObjectSlots> = PyOnceLock::new();
    SLOTS.get_or_init(py, || {
        let object = py.get_type::<PyAny>();
        let slot = |name: &str| {
            object
                .getattr(name)
                .expect("`object` has its standard slots")
                .unbind()
        };
        ObjectSlots {
            hash: slot("__hash__"),
            eq: slot("__eq__"),
            reduce: slot("__reduce__"),
            reduce_ex: slot("__reduce_ex__"),
        }
    })
}

/// The class defines (or inherits from a class other than `object`) both a `__hash__` and an
/// `__eq__`: its instances have value semantics Python itself honours (dict keys, sets,
/// `functools.lru_cache`).
fn has_own_hash_and_eq(ty: &Bound<'_, PyType>) -> bool {
    let py = ty.py();
    let slots = object_slots(py);
    let Ok(hash) = ty.getattr(intern!(py, "__hash__")) else {
        return false;
    };
    if hash.is_none() || hash.is(slots.hash.bind(py)) {
        return false;
    }
    ty.getattr(intern!(py, "__eq__"))
        .map(|eq| !eq.is(slots.eq.bind(py)))
        .unwrap_or(false)
}

/// The class says how its instances are pickled (`__reduce__` or `__reduce_ex__` of its
/// own or of a base other than `object`).
fn customises_reduce(ty: &Bound<'_, PyType>) -> bool {
    let py = ty.py();
    let slots = object_slots(py);
    let own = |name, default: &Py<PyAny>| {
        ty.getattr(name)
            .map(|f| !f.is(default.bind(py)))
            .unwrap_or(false)
    };
    own(intern!(py, "__reduce_ex__"), &slots.reduce_ex)
        || own(intern!(py, "__reduce__"), &slots.reduce)
}

/// Ordinals for mocks: process-wide, never reused.
static NEXT_ORDINAL: AtomicU64 = AtomicU64::new(0);

impl Encoder<'_> {
    /// Everything `value()` does not settle with its built-in fast path: SPEC §4's rules,
    /// first match wins. The order matters where a value fits several: mocks answer every
    /// attribute, so they come first; enum members and numpy scalars can be `int`/`str`/
    /// `float` subclasses, so they come before the built-in-subclass rule; dataclasses, attrs
    /// and pydantic models are keyed by content before the generic `__reduce__` and hash/eq
    /// rules.
    pub(crate) fn object(&mut self, obj: &Bound<'_, PyAny>) -> Result<(), CacheError> {
        if self.mode == Mode::Key {
            return self.object_rules(obj);
        }
        // In an identity, a value no rule accepts is written as its class (see `Mode`);
        // the innermost such value is the one replaced.
        let depth = self.ancestors.len();
        match self.isolated(|e| e.object_rules(obj)) {
            Ok(bytes) => {
                self.writer.extend(&bytes);
                Ok(())
            }
            Err(CacheError::Python(err))
                if !err.is_instance_of::<pyo3::exceptions::PyException>(obj.py()) =>
            {
                Err(CacheError::Python(err)) // KeyboardInterrupt and the like
            }
            Err(_) => {
                self.ancestors.truncate(depth);
                self.by_type(obj)
            }
        }
    }

    fn object_rules(&mut self, obj: &Bound<'_, PyAny>) -> Result<(), CacheError> {
        let ty = obj.get_type();
        if MOCK.has_instance(obj) {
            return self.mock(obj);
        }
        if ENUM.has_instance(obj) {
            return self.enum_member(obj, &ty);
        }
        if NUMPY_SCALAR.has_instance(obj) {
            return self.numpy_scalar(obj);
        }
        if is_builtin_subclass(obj) {
            return self.builtin_subclass(obj, &ty);
        }
        // The remaining kinds may contain themselves (a dataclass field, a closure cell, an
        // object array holding the array): a value already being encoded further out is
        // written as a back-reference.
        let id = obj.as_ptr() as usize;
        if let Some(depth) = self.ancestors.iter().position(|&a| a == id) {
            self.writer.back_ref(depth);
            return Ok(());
        }
        self.enter(id)?;
        let result = self.composite(obj, &ty);
        self.ancestors.pop();
        result
    }

    /// The rules for values that may contain others, in SPEC §4 order: dataclass/attrs/
    /// pydantic state, arrays, functions and code, built-ins and descriptors, methods,
    /// modules, standard-library values, views and buffers, files, data frames and images,
    /// `__reduce__`, other buffer exporters, own hash/eq, and finally rejection.
    fn composite(
        &mut self,
        obj: &Bound<'_, PyAny>,
        ty: &Bound<'_, PyType>,
    ) -> Result<(), CacheError> {
        let py = obj.py();
        // First, as the commonest composite arguments: their kind is remembered per class,
        // so they skip the longer chain below. (No rule before it could also match them:
        // mocks, enums and built-in subclasses were settled by `object`.)
        if let Some(done) = self.by_fields(obj, ty)? {
            return done;
        }
        if self.ndarray_if_any(obj)? {
            return Ok(());
        }
        if let Ok(func) = obj.cast::<PyFunction>() {
            return self.function(func.as_any());
        }
        if obj.is_instance_of::<CachedFunction>() {
            // A cached function (a closure may capture one) is the function it caches.
            self.writer.tag(Tag::Cached);
            return self.value(&obj.getattr(intern!(py, "__wrapped__"))?);
        }
        if obj.is_instance_of::<BoundCachedMethod>() {
            self.writer.tag(Tag::Method);
            self.value(&obj.getattr(intern!(py, "__func__"))?)?;
            return self.value(&obj.getattr(intern!(py, "__self__"))?);
        }
        if self.mode == Mode::Identity {
            if let Some(done) = self.identity_only(obj, ty)? {
                return done;
            }
        }
        if CELL.has_instance(obj) {
            self.writer.tag(Tag::Cell);
            return match obj.getattr(intern!(py, "cell_contents")) {
                Ok(contents) => self.value(&contents),
                Err(e) if e.is_instance_of::<PyValueError>(py) => {
                    self.writer.tag(Tag::Opaque); // not assigned yet
                    Ok(())
                }
                Err(e) => Err(e.into()),
            };
        }
        if let Ok(code) = obj.cast::<PyCode>() {
            return self.code(code.as_any());
        }
        if obj.is_instance_of::<PyCFunction>() || BUILTIN_METHOD.has_instance(obj) {
            return self.builtin(obj, true);
        }
        if DESCRIPTORS.iter().any(|d| d.has_instance(obj)) {
            return self.builtin(obj, false);
        }
        if NUMPY_UFUNC.has_instance(obj) {
            // `np.add`: numpy pickles ufuncs by name, and so does this key.
            self.writer.tag(Tag::Builtin);
            self.writer.raw_bytes(b"numpy");
            let name = obj.getattr(intern!(py, "__name__"))?;
            self.writer.raw_bytes(name.str()?.to_str()?.as_bytes());
            self.writer.tag(Tag::None);
            return Ok(());
        }
        if METHOD.has_instance(obj) {
            self.writer.tag(Tag::Method);
            self.value(&obj.getattr(intern!(py, "__func__"))?)?;
            return self.value(&obj.getattr(intern!(py, "__self__"))?);
        }
        if let Ok(module) = obj.cast::<PyModule>() {
            let name = module.name()?;
            self.writer
                .tagged_bytes(Tag::Module, name.to_str()?.as_bytes());
            return Ok(());
        }
        if UUID.has_instance(obj) {
            let int: u128 = obj.getattr(intern!(py, "int"))?.extract()?;
            self.writer.tagged_bytes(Tag::Uuid, type_fqn(ty).as_bytes());
            self.writer.raw_bytes(&int.to_le_bytes());
            return Ok(());
        }
        if PATTERN.has_instance(obj) {
            self.writer.tag(Tag::Pattern);
            self.value(&obj.getattr(intern!(py, "pattern"))?)?;
            return self.value(&obj.getattr(intern!(py, "flags"))?);
        }
        if PARTIAL.has_instance(obj) {
            self.writer
                .tagged_bytes(Tag::Partial, type_fqn(ty).as_bytes());
            self.value(&obj.getattr(intern!(py, "func"))?)?;
            self.value(&obj.getattr(intern!(py, "args"))?)?;
            return self.value(&obj.getattr(intern!(py, "keywords"))?);
        }
        if obj.is_instance_of::<PyMappingProxy>() {
            let as_dict = py.get_type::<PyDict>().call1((obj,))?;
            self.writer.tag(Tag::MappingProxy);
            return self.value(&as_dict);
        }
        if obj.is_instance_of::<PyDictKeys>() || obj.is_instance_of::<PyDictItems>() {
            let tag = if obj.is_instance_of::<PyDictKeys>() {
                Tag::DictKeys
            } else {
                Tag::DictItems
            };
            let items: Vec<_> = obj.try_iter()?.collect::<PyResult<_>>()?;
            let encoded = self.each_isolated(&items)?;
            self.writer.unordered(tag, encoded);
            return Ok(());
        }
        if obj.is_instance_of::<PyDictValues>() {
            let items: Vec<_> = obj.try_iter()?.collect::<PyResult<_>>()?;
            self.writer.sequence(Tag::DictValues, items.len());
            for item in &items {
                self.value(item)?;
            }
            return Ok(());
        }
        if obj.is_instance_of::<PyMemoryView>() || ARRAY.has_instance(obj) {
            return self.buffer(obj);
        }
        if STRING_IO.has_instance(obj) || BYTES_IO.has_instance(obj) {
            // In-memory files (and subclasses such as Streamlit's UploadedFile): the name
            // when they carry one, the position and the whole content.
            self.writer
                .tagged_bytes(Tag::MemoryFile, type_fqn(ty).as_bytes());
            let name = obj.getattr_opt(intern!(py, "name"))?;
            self.value(&name.unwrap_or_else(|| py.None().into_bound(py)))?;
            self.value(&obj.call_method0(intern!(py, "tell"))?)?;
            return self.value(&obj.call_method0(intern!(py, "getvalue"))?);
        }
        if (IO_BASE.has_instance(obj) || TEMP_FILE.has_instance(obj))
            && obj.hasattr(intern!(py, "name"))?
        {
            return self.open_file(obj, ty);
        }
        if self.dataframe_like(obj)? {
            return Ok(());
        }
        if self.mode == Mode::Identity && is_iterator(obj) {
            // A captured iterator (an itertools counter, a generator, a map, filter or zip
            // object) is state that moves on: what it yields next is no content two
            // decorations could compare, and pickling itertools objects (what `reduce`
            // would ask) is deprecated. It counts by its class, as other values without
            // content do, so a rerun over a fresh one finds its cache.
            return self.by_type(obj);
        }
        if customises_reduce(ty) {
            return self.with_hash_eq_fallback(obj, ty, |e| e.reduce(obj, ty));
        }
        // SAFETY: `obj` is a valid object pointer for the duration of the call.
        if unsafe { pyo3::ffi::PyObject_CheckBuffer(obj.as_ptr()) } == 1 {
            return self.buffer(obj);
        }
        if has_own_hash_and_eq(ty) {
            let seen = self.class_seen(ty)?;
            return self.interned(obj, &seen);
        }
        Err(self.unhashable(obj))
    }

    /// Dataclasses, attrs classes and pydantic models by their class and all of their state
    /// (fields hidden from equality or serialisation included); a class with its own
    /// `__hash__`/`__eq__` whose state cannot be encoded (a frozen dataclass holding a lock)
    /// falls back to hash and equality. `None`: not such an object.
    fn by_fields(
        &mut self,
        obj: &Bound<'_, PyAny>,
        ty: &Bound<'_, PyType>,
    ) -> PyResult<Option<Result<(), CacheError>>> {
        let kind = match self.class_info(ty) {
            Ok(info) => info.get().kind,
            Err(CacheError::Python(err)) => return Err(err),
            Err(other) => return Ok(Some(Err(other))),
        };
        let tag = match kind {
            ClassKind::Fields => Tag::Fields,
            ClassKind::Pydantic => Tag::Pydantic,
            ClassKind::Other => return Ok(None),
        };
        Ok(Some(self.with_hash_eq_fallback(obj, ty, |e| {
            e.instance(obj, ty, tag)
        })))
    }

    /// A subclass of a built-in kind (namedtuples, `OrderedDict`, `defaultdict`, `Counter`,
    /// `str`/`int` subclasses): its class, the value as its built-in base (read through the
    /// base's own methods, so an override of `to_bytes` or `__iter__` is not asked), then
    /// whatever else the instance holds — so two instances of a subclass that carries extra
    /// state never share an entry because their base values are equal.
    fn builtin_subclass(
        &mut self,
        obj: &Bound<'_, PyAny>,
        ty: &Bound<'_, PyType>,
    ) -> Result<(), CacheError> {
        let py = obj.py();
        let seen = self.class_seen(ty)?;
        self.writer
            .tagged_bytes(Tag::Subclass, seen.info.get().fqn.as_bytes());
        self.writer.u64(seen.ordinal);
        // `builtin_body` guards against self-reference itself.
        self.builtin_body(obj)?;
        if DEFAULT_DICT.has_instance(obj) {
            // State kept in C: which factory fills missing keys.
            self.value(&obj.getattr(intern!(py, "default_factory"))?)?;
        }
        let id = obj.as_ptr() as usize;
        self.enter(id)?;
        let result = self.state(obj, seen.info.get());
        self.ancestors.pop();
        result
    }

    /// Runs a content encoding in isolation; if some part of the content cannot be encoded
    /// and the class has its own `__hash__`/`__eq__`, the value is keyed by those instead.
    fn with_hash_eq_fallback(
        &mut self,
        obj: &Bound<'_, PyAny>,
        ty: &Bound<'_, PyType>,
        encode: impl FnOnce(&mut Self) -> Result<(), CacheError>,
    ) -> Result<(), CacheError> {
        let depth = self.ancestors.len();
        match self.isolated(encode) {
            Ok(bytes) => {
                self.writer.extend(&bytes);
                Ok(())
            }
            Err(CacheError::Unhashable { .. }) if has_own_hash_and_eq(ty) => {
                self.ancestors.truncate(depth);
                let seen = self.class_seen(ty)?;
                self.interned(obj, &seen)
            }
            Err(err) => Err(err),
        }
    }

    /// An enum member: its class, name and value, so members of two enums with one
    /// `__name__`, or one member whose value changed between reruns, stay apart.
    fn enum_member(
        &mut self,
        obj: &Bound<'_, PyAny>,
        ty: &Bound<'_, PyType>,
    ) -> Result<(), CacheError> {
        let py = obj.py();
        self.writer.tagged_bytes(Tag::Enum, type_fqn(ty).as_bytes());
        self.structure(&obj.getattr(intern!(py, "_name_"))?)?;
        let value = obj.getattr(intern!(py, "_value_"))?;
        match self.isolated(|e| e.value(&value)) {
            Ok(bytes) => self.writer.extend(&bytes),
            // A member whose value has no encoding (a function, a lock) is still one
            // member of one class: class and name identify it.
            Err(CacheError::Unhashable { .. }) => self.writer.tag(Tag::Opaque),
            Err(err) => return Err(err),
        }
        Ok(())
    }

    /// A Python function or lambda by what it is, not where it lives in memory: module,
    /// qualname, code (bytecode with constants and names, recursively: two lambdas on one
    /// line differ), defaults, and the values its closure captured. Rerunning the same
    /// `def` gives the same key; a closure over different values gives another.
    fn function(&mut self, func: &Bound<'_, PyAny>) -> Result<(), CacheError> {
        let py = func.py();
        self.writer.tag(Tag::Function);
        for attr in [intern!(py, "__module__"), intern!(py, "__qualname__")] {
            self.structure(&func.getattr(attr)?)?;
        }
        self.code(&func.getattr(intern!(py, "__code__"))?)?;
        self.value(&func.getattr(intern!(py, "__defaults__"))?)?;
        self.value(&func.getattr(intern!(py, "__kwdefaults__"))?)?;
        let closure = func.getattr(intern!(py, "__closure__"))?;
        if closure.is_none() {
            self.writer.tag(Tag::None);
            return Ok(());
        }
        let cells = closure.cast::<PyTuple>().map_err(PyErr::from)?;
        self.writer.sequence(Tag::Tuple, cells.len());
        for cell in cells.iter() {
            match cell.getattr(intern!(py, "cell_contents")) {
                Ok(contents) => self.value(&contents)?,
                // A cell not yet assigned (a name bound after the inner def).
                Err(e) if e.is_instance_of::<PyValueError>(py) => self.writer.tag(Tag::Opaque),
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    fn code(&mut self, code: &Bound<'_, PyAny>) -> Result<(), CacheError> {
        let py = code.py();
        self.writer.tag(Tag::Code);
        for attr in [
            intern!(py, "co_code"),
            intern!(py, "co_names"),
            intern!(py, "co_varnames"),
            intern!(py, "co_freevars"),
            intern!(py, "co_cellvars"),
            intern!(py, "co_argcount"),
            intern!(py, "co_posonlyargcount"),
            intern!(py, "co_kwonlyargcount"),
            intern!(py, "co_flags"),
            // Constants may be nested code objects (inner functions, comprehensions), which
            // `value()` encodes through this same method.
            intern!(py, "co_consts"),
        ] {
            // Code is structure: `hash_funcs` for `str` or `bytes` do not apply to it.
            self.structure(&code.getattr(attr)?)?;
        }
        Ok(())
    }

    /// Built-in functions (`len`, `math.sqrt`, `[].append`) by owner and qualified name, plus
    /// the object a built-in method is bound to; method descriptors (`str.upper`) by their
    /// class and name.
    fn builtin(&mut self, obj: &Bound<'_, PyAny>, bound: bool) -> Result<(), CacheError> {
        let py = obj.py();
        self.writer.tag(Tag::Builtin);
        let owner = match obj.getattr_opt(intern!(py, "__objclass__"))? {
            Some(cls) => match cls.cast::<PyType>() {
                Ok(cls) => type_fqn(cls),
                Err(_) => String::new(),
            },
            None => match obj.getattr_opt(intern!(py, "__module__"))? {
                Some(m) if !m.is_none() => m.str()?.to_str()?.to_owned(),
                _ => String::new(),
            },
        };
        self.writer.raw_bytes(owner.as_bytes());
        let qualname = obj
            .getattr_opt(intern!(py, "__qualname__"))?
            .or(obj.getattr_opt(intern!(py, "__name__"))?)
            .map(|q| q.str().map(|s| s.to_string()))
            .transpose()?
            .unwrap_or_default();
        self.writer.raw_bytes(qualname.as_bytes());
        match obj.getattr_opt(intern!(py, "__self__"))? {
            Some(owner) if bound || !owner.is_none() => self.value(&owner),
            _ => {
                self.writer.tag(Tag::None);
                Ok(())
            }
        }
    }

    /// An open file: its name, last modification time and position (as Streamlit).
    fn open_file(
        &mut self,
        obj: &Bound<'_, PyAny>,
        ty: &Bound<'_, PyType>,
    ) -> Result<(), CacheError> {
        static GETMTIME: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
        let py = obj.py();
        let name = obj.getattr(intern!(py, "name"))?;
        let mtime = exit_safe::call1(&stdlib(&GETMTIME, py, "os.path", "getmtime")?, &name)?;
        self.writer.tagged_bytes(Tag::File, type_fqn(ty).as_bytes());
        self.value(&name)?;
        self.value(&mtime)?;
        self.value(&obj.call_method0(intern!(py, "tell"))?)
    }

    /// The `__reduce_ex__` output of a class that customises pickling (datetime, Decimal,
    /// Fraction, pathlib paths, range, slice, deque, user classes with `__reduce__`).
    ///
    /// Why only those: Streamlit also falls back to `__reduce__`, but for a class that
    /// does not customise it the output is `copyreg`'s default, whose first part is a
    /// function Streamlit cannot hash, so Streamlit rejects plain instances in practice.
    /// fastcache hashes functions, so it would accept them, keyed by their `__dict__` of the
    /// moment; SPEC §4 keeps plain instances (identity-only objects) rejected, and this rule
    /// is what does it. The iterators of list and dict items are materialised.
    fn reduce(&mut self, obj: &Bound<'_, PyAny>, ty: &Bound<'_, PyType>) -> Result<(), CacheError> {
        let py = obj.py();
        let protocol = PyTuple::new(py, [4])?;
        let reduce_ex = obj.getattr(intern!(py, "__reduce_ex__"))?;
        let reduced = match exit_safe::call(&reduce_ex, &protocol, None) {
            Ok(r) => r,
            // Pickling refused ("cannot pickle 'X' object", ctypes' "objects containing
            // pointers cannot be pickled", `pickle.PicklingError`): not hashable either.
            Err(e) if refuses_pickling(py, &e) => return Err(self.unhashable(obj)),
            Err(e) => return Err(e.into()),
        };
        self.writer
            .tagged_bytes(Tag::Reduce, type_fqn(ty).as_bytes());
        if reduced.is_instance_of::<PyString>() {
            // A global's name: the object is a singleton such as `Ellipsis`.
            return self.value(&reduced);
        }
        let Ok(parts) = reduced.cast::<PyTuple>() else {
            return Err(self.unhashable(obj));
        };
        self.writer.len(parts.len());
        for (i, part) in parts.iter().enumerate() {
            if (i == 3 || i == 4) && !part.is_none() {
                let items = PyList::new(py, part.try_iter()?.collect::<PyResult<Vec<_>>>()?)?;
                self.value(items.as_any())?;
            } else {
                self.value(&part)?;
            }
        }
        Ok(())
    }

    /// A `unittest.mock` object, by identity. Its `id()` alone could be reused by a later
    /// mock once this one is freed, giving the new mock the old one's entry; instead each
    /// mock gets an ordinal that is never reused, remembered through a weak reference (so
    /// fastcache keeps no mock alive). A dead entry whose id comes back is replaced.
    fn mock(&mut self, obj: &Bound<'_, PyAny>) -> Result<(), CacheError> {
        static BY_ID: PyOnceLock<Py<PyDict>> = PyOnceLock::new();
        static SWEEP_AT: AtomicUsize = AtomicUsize::new(1024);
        let py = obj.py();
        let by_id = BY_ID.get_or_init(py, || PyDict::new(py).unbind()).bind(py);
        let id = obj.as_ptr() as usize;
        let mut ordinal = None;
        if let Some(entry) = by_id.get_item(id)? {
            let (holder, known, weak): (Bound<'_, PyAny>, u64, bool) = entry.extract()?;
            let referent = if weak { holder.call0()? } else { holder };
            if referent.is(obj) {
                ordinal = Some(known);
            }
        }
        let ordinal = match ordinal {
            Some(o) => o,
            None => {
                let fresh = NEXT_ORDINAL.fetch_add(1, Ordering::Relaxed);
                let entry = match PyWeakrefReference::new(obj) {
                    Ok(weak) => (weak.into_any(), fresh, true),
                    // Not weak-referenceable: keep it alive so its id cannot be reused.
                    Err(_) => (obj.clone(), fresh, false),
                };
                by_id.set_item(id, entry)?;
                if by_id.len() >= SWEEP_AT.load(Ordering::Relaxed) {
                    sweep_dead_mocks(by_id)?;
                    SWEEP_AT.store((by_id.len() * 2).max(1024), Ordering::Relaxed);
                }
                fresh
            }
        };
        self.writer.tag(Tag::Mock);
        self.writer.u64(ordinal);
        Ok(())
    }
}

/// Drops the entries of mocks that no longer exist.
fn sweep_dead_mocks(by_id: &Bound<'_, PyDict>) -> PyResult<()> {
    let mut dead = Vec::new();
    for (id, entry) in by_id.iter() {
        let (holder, _, weak): (Bound<'_, PyAny>, u64, bool) = entry.extract()?;
        if weak && holder.call0()?.is_none() {
            dead.push(id);
        }
    }
    for id in dead {
        by_id.del_item(id)?;
    }
    Ok(())
}

/// Whether `obj` is an iterator (its type has `__next__`).
fn is_iterator(obj: &Bound<'_, PyAny>) -> bool {
    // SAFETY: `obj` is a valid object pointer; the check only reads its type's slot.
    unsafe { pyo3::ffi::PyIter_Check(obj.as_ptr()) != 0 }
}

/// Whether an exception from `__reduce_ex__` is a refusal to be pickled.
fn refuses_pickling(py: Python<'_>, err: &PyErr) -> bool {
    static PICKLING_ERROR: PyOnceLock<Py<PyType>> = PyOnceLock::new();
    err.is_instance_of::<PyTypeError>(py)
        || err.is_instance_of::<PyValueError>(py)
        || err.is_instance_of::<pyo3::exceptions::PyNotImplementedError>(py)
        || PICKLING_ERROR
            .import(py, "pickle", "PicklingError")
            .is_ok_and(|e| err.is_instance(py, e.as_any()))
}

impl Encoder<'_> {
    /// Rules that exist for identities only (class bodies, captured values): the
    /// descriptors a class body is made of, by the functions they hold, and the objects
    /// dataclasses, attrs and pydantic describe fields with, by their state. Anything else
    /// is left to [`Encoder::by_type`]. `None`: not such an object.
    fn identity_only(
        &mut self,
        obj: &Bound<'_, PyAny>,
        ty: &Bound<'_, PyType>,
    ) -> PyResult<Option<Result<(), CacheError>>> {
        let py = obj.py();
        let parts: &[&Bound<'_, PyString>] = if PROPERTY.has_instance(obj) {
            &[
                intern!(py, "fget"),
                intern!(py, "fset"),
                intern!(py, "fdel"),
                intern!(py, "__doc__"),
            ]
        } else if CLASS_METHOD.has_instance(obj) || STATIC_METHOD.has_instance(obj) {
            &[intern!(py, "__func__")]
        } else if FIELD_SPECS.iter().any(|spec| spec.has_instance(obj)) {
            return Ok(Some(self.instance(obj, ty, Tag::PlainInstance)));
        } else {
            return Ok(None);
        };
        self.writer
            .tagged_bytes(Tag::Descriptor, type_fqn(ty).as_bytes());
        for part in parts {
            let value = obj.getattr(*part)?;
            if let Err(err) = self.value(&value) {
                return Ok(Some(Err(err)));
            }
        }
        Ok(Some(Ok(())))
    }
}
