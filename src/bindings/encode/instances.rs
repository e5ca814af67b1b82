//! Instances by all of their state, and classes by their name plus a fingerprint of their
//! body.
//!
//! An instance's state is everything it holds: its `__dict__` and every slot of its class's
//! MRO. Keying dataclasses, attrs classes and pydantic models by their declared fields (or
//! their dump) alone would miss what is hidden from those — a pydantic
//! `Field(exclude=True)` or private attribute, a dataclass `compare=False` field or an
//! attribute set in `__post_init__` — and hand the entry made with one password to a call
//! with another.
//!
//! A class is its `module.qualname` and the ordinal of its body's fingerprint: metaclass,
//! bases, and the class namespace (methods by their code, defaults and captured values,
//! class attributes by content), encoded in [`Mode::Identity`]. A class that a Streamlit
//! rerun re-creates from the same code has the same fingerprint, so its instances and the
//! class itself still hit; two classes made by one factory, or two `type("M", ...)` with
//! different bodies, do not share entries. Built-in (static) classes need no fingerprint.
//!
//! Both are remembered per class object ([`ClassInfo`], weakly: a class that goes away is
//! not kept alive), so a hit pays one dict lookup for them. The fingerprint is taken when the
//! class is first seen; a class body changed afterwards (monkeypatching) keeps it.

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::OnceLock;

use pyo3::exceptions::PyAttributeError;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBytes, PyDict, PyInt, PyString, PyTuple, PyType, PyWeakrefReference};

use super::classes::{PYDANTIC, PYDANTIC_V1};
use super::{type_fqn, Encoder, Mode};
use crate::bindings::errors::CacheError;
use crate::engine::key::Tag;

/// What fastcache remembers about one class: what its instances need (decided on first
/// sight) and its fingerprint's ordinal (taken when first needed: a class whose instances
/// are never keyed by class — a pandas frame — is never fingerprinted).
#[pyclass(frozen, module = "fastcache")]
pub struct ClassInfo {
    class: Py<PyWeakrefReference>,
    /// `module.qualname`.
    pub(crate) fqn: String,
    /// The slot names of the class and its bases, mangled as attributes are.
    slots: Py<PyTuple>,
    /// Whether instances have a `__dict__` (asking one that has none raises, which costs
    /// more than the rest of a small key).
    has_dict: bool,
    pub(crate) kind: ClassKind,
    /// The fingerprint's ordinal (0 for built-in classes), once taken.
    ordinal: OnceLock<u64>,
}

#[pymethods]
impl ClassInfo {
    fn __traverse__(&self, visit: pyo3::PyVisit<'_>) -> Result<(), pyo3::PyTraverseError> {
        visit.call(&self.class)?;
        visit.call(&self.slots)
    }
}

/// Which content rule a class's instances follow, decided once per class.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum ClassKind {
    /// A dataclass or attrs class.
    Fields,
    /// A pydantic model (v2 or v1).
    Pydantic,
    Other,
}

impl ClassInfo {
    fn of(ty: &Bound<'_, PyType>) -> PyResult<Self> {
        let py = ty.py();
        let subclass_of = |base: Option<Bound<'_, PyType>>| {
            base.is_some_and(|base| ty.is_subclass(&base).unwrap_or(false))
        };
        let kind = if subclass_of(PYDANTIC.get(py)) || subclass_of(PYDANTIC_V1.get(py)) {
            ClassKind::Pydantic
        } else if ty.hasattr(intern!(py, "__dataclass_fields__"))?
            || ty.hasattr(intern!(py, "__attrs_attrs__"))?
        {
            ClassKind::Fields
        } else {
            ClassKind::Other
        };
        let dict_offset: isize = ty.getattr(intern!(py, "__dictoffset__"))?.extract()?;
        let ordinal = OnceLock::new();
        if !is_heap_type(ty) {
            // A built-in class is its name: nothing to fingerprint.
            let _ = ordinal.set(0);
        }
        Ok(ClassInfo {
            class: PyWeakrefReference::new(ty)?.unbind(),
            fqn: type_fqn(ty),
            slots: slot_names(ty)?.unbind(),
            has_dict: dict_offset != 0,
            kind,
            ordinal,
        })
    }
}

/// A class as an encoding uses it: what is remembered of it, and its fingerprint's ordinal.
pub(crate) struct Seen<'py> {
    pub(crate) info: Bound<'py, ClassInfo>,
    pub(crate) ordinal: u64,
}

/// Names in a class namespace that are bookkeeping derived from the rest of it (caches,
/// generated validators, ids), not part of the body: fingerprinting them would make a class
/// re-created from the same code look different.
fn derived_name(name: &str) -> bool {
    matches!(
        name,
        "__dict__"
            | "__weakref__"
            | "__module__"
            | "__qualname__"
            | "_abc_impl"
            | "__abstractmethods__"
            | "__slotnames__"
            | "__dataclass_fields__"
            | "__dataclass_params__"
            | "__signature__"
            | "__pydantic_decorators__"
    ) || (name.starts_with("__pydantic_")
        && name != "__pydantic_fields__"
        && name != "__pydantic_computed_fields__")
}

/// How many class fingerprints may be in progress inside one another on a thread.
const MAX_NESTED_FINGERPRINTS: usize = 64;

thread_local! {
    /// Classes whose fingerprint is being taken on this thread, outermost first: a method's
    /// `__class__` cell (every `super()` call makes one) refers back to its class.
    static FINGERPRINTING: RefCell<Vec<usize>> = const { RefCell::new(Vec::new()) };
}

/// id(class) → [`ClassInfo`].
fn class_infos(py: Python<'_>) -> &Bound<'_, PyDict> {
    static INFOS: PyOnceLock<Py<PyDict>> = PyOnceLock::new();
    INFOS.get_or_init(py, || PyDict::new(py).unbind()).bind(py)
}

/// Fingerprint → ordinal. Fingerprints are compared in full (bytes), never by a hash.
fn fingerprints(py: Python<'_>) -> &Bound<'_, PyDict> {
    static FINGERPRINTS: PyOnceLock<Py<PyDict>> = PyOnceLock::new();
    FINGERPRINTS
        .get_or_init(py, || PyDict::new(py).unbind())
        .bind(py)
}

fn is_heap_type(ty: &Bound<'_, PyType>) -> bool {
    // SAFETY: `ty` is a valid type object for the duration of the call.
    unsafe { pyo3::ffi::PyType_HasFeature(ty.as_type_ptr(), pyo3::ffi::Py_TPFLAGS_HEAPTYPE) != 0 }
}

/// The slot names declared by `ty` and its bases, mangled (`__x` in class `_C` is `_C__x`).
fn slot_names<'py>(ty: &Bound<'py, PyType>) -> PyResult<Bound<'py, PyTuple>> {
    let py = ty.py();
    let mut names: Vec<Bound<'py, PyString>> = Vec::new();
    for base in ty.getattr(intern!(py, "__mro__"))?.try_iter()? {
        let base = base?;
        let Ok(base) = base.cast_into::<PyType>() else {
            continue;
        };
        let Some(declared) = base
            .getattr(intern!(py, "__dict__"))?
            .get_item("__slots__")
            .ok()
        else {
            continue;
        };
        let declared: Vec<Bound<'py, PyAny>> = if declared.is_instance_of::<PyString>() {
            vec![declared]
        } else {
            declared.try_iter()?.collect::<PyResult<_>>()?
        };
        let class_name = base.name()?.to_string();
        for name in declared {
            let Ok(name) = name.cast_into::<PyString>() else {
                continue;
            };
            let text = name.to_str()?;
            if text == "__dict__" || text == "__weakref__" {
                continue;
            }
            let name = if text.starts_with("__") && !text.ends_with("__") {
                PyString::new(
                    py,
                    &format!("_{}{text}", class_name.trim_start_matches('_')),
                )
            } else {
                name
            };
            if !names.iter().any(|n| n.to_str().ok() == name.to_str().ok()) {
                names.push(name);
            }
        }
    }
    PyTuple::new(py, names)
}

/// Forgets classes that no longer exist, when the table has doubled since the last sweep.
fn sweep_dead_classes(infos: &Bound<'_, PyDict>) -> PyResult<()> {
    static SWEEP_AT: AtomicUsize = AtomicUsize::new(1024);
    if infos.len() < SWEEP_AT.load(Ordering::Relaxed) {
        return Ok(());
    }
    let mut dead = Vec::new();
    for (id, info) in infos.iter() {
        let info = info.cast_into::<ClassInfo>()?;
        if info.get().class.bind(infos.py()).call0()?.is_none() {
            dead.push(id);
        }
    }
    for id in dead {
        infos.del_item(id)?;
    }
    SWEEP_AT.store((infos.len() * 2).max(1024), Ordering::Relaxed);
    Ok(())
}

impl Encoder<'_> {
    /// A class: `module.qualname` and its fingerprint's ordinal.
    pub(crate) fn class(&mut self, ty: &Bound<'_, PyType>) -> Result<(), CacheError> {
        let seen = self.class_seen(ty)?;
        self.writer
            .tagged_bytes(Tag::Type, seen.info.get().fqn.as_bytes());
        self.writer.u64(seen.ordinal);
        Ok(())
    }

    /// What is remembered of `ty` ([`ClassInfo`]), decided on first sight; cheap after.
    pub(crate) fn class_info<'py>(
        &mut self,
        ty: &Bound<'py, PyType>,
    ) -> Result<Bound<'py, ClassInfo>, CacheError> {
        let py = ty.py();
        let infos = class_infos(py);
        let id = ty.as_ptr() as usize;
        if let Some(info) = infos.get_item(id)? {
            let info = info.cast_into::<ClassInfo>().map_err(PyErr::from)?;
            if info.get().class.bind(py).call0()?.is(ty) {
                return Ok(info);
            }
        }
        let info = Bound::new(py, ClassInfo::of(ty)?)?;
        infos.set_item(id, &info)?;
        sweep_dead_classes(infos)?;
        Ok(info)
    }

    /// `ty` with its fingerprint's ordinal, taking the fingerprint when first needed. Inside
    /// `ty`'s own fingerprint (a method's `__class__` cell, an instance of the class as a
    /// class attribute) the ordinal is a back-reference instead.
    pub(crate) fn class_seen<'py>(
        &mut self,
        ty: &Bound<'py, PyType>,
    ) -> Result<Seen<'py>, CacheError> {
        let info = self.class_info(ty)?;
        if let Some(&ordinal) = info.get().ordinal.get() {
            return Ok(Seen { info, ordinal });
        }
        let id = ty.as_ptr() as usize;
        let (in_progress, depth) = FINGERPRINTING
            .with_borrow(|active| (active.iter().position(|&c| c == id), active.len()));
        let ordinal = if let Some(position) = in_progress {
            u64::MAX - position as u64
        } else if depth >= MAX_NESTED_FINGERPRINTS {
            // A chain of classes whose bodies name each other this deep: the innermost
            // are written by name only (and not remembered, so a class met at the top
            // level later gets its full fingerprint).
            0
        } else {
            let ordinal = fingerprint_ordinal(ty.py(), ty, self.func_name)?;
            *info.get().ordinal.get_or_init(|| ordinal)
        };
        Ok(Seen { info, ordinal })
    }

    /// An instance by its class and all of its state, under `tag`.
    pub(crate) fn instance(
        &mut self,
        obj: &Bound<'_, PyAny>,
        ty: &Bound<'_, PyType>,
        tag: Tag,
    ) -> Result<(), CacheError> {
        let seen = self.class_seen(ty)?;
        self.writer
            .tagged_bytes(tag, seen.info.get().fqn.as_bytes());
        self.writer.u64(seen.ordinal);
        self.state(obj, seen.info.get())
    }

    /// Everything `obj` holds: its `__dict__` and its slots, as (name, value) pairs in name
    /// order (so the order attributes were set in does not matter). An unset slot is written
    /// as such.
    pub(crate) fn state(
        &mut self,
        obj: &Bound<'_, PyAny>,
        seen: &ClassInfo,
    ) -> Result<(), CacheError> {
        let py = obj.py();
        let mut named: Vec<(Bound<'_, PyString>, Option<Bound<'_, PyAny>>)> = Vec::new();
        let mut odd_names = Vec::new();
        if seen.has_dict {
            if let Some(dict) = obj.getattr_opt(intern!(py, "__dict__"))? {
                if let Ok(dict) = dict.cast::<PyDict>() {
                    for (name, value) in dict.iter() {
                        match name.cast_into::<PyString>() {
                            Ok(name) => named.push((name, Some(value))),
                            Err(err) => odd_names.push((err.into_inner(), value)),
                        }
                    }
                }
            }
        }
        for name in seen.slots.bind(py).iter() {
            let name = name.cast_into::<PyString>().map_err(PyErr::from)?;
            let value = match obj.getattr(&name) {
                Ok(value) => Some(value),
                Err(e) if e.is_instance_of::<PyAttributeError>(py) => None,
                Err(e) => return Err(e.into()),
            };
            named.push((name, value));
        }
        if !odd_names.is_empty() || named.iter().any(|(n, _)| n.to_str().is_err()) {
            // A `__dict__` key that is not a plain string: every pair is encoded on its own
            // and the encodings sorted, which orders any keys.
            let mut items = Vec::with_capacity(named.len() + odd_names.len());
            for (name, value) in named.iter().map(|(n, v)| (n.as_any(), v.as_ref())) {
                items.push(self.isolated(|e| e.state_pair(name, value))?);
            }
            for (name, value) in &odd_names {
                items.push(self.isolated(|e| e.state_pair(name, Some(value)))?);
            }
            self.writer.unordered(Tag::State, items);
            return Ok(());
        }
        named.sort_by(|(a, _), (b, _)| a.to_str().ok().cmp(&b.to_str().ok()));
        self.writer.tag(Tag::StateByName);
        self.writer.len(named.len());
        for (name, value) in &named {
            self.state_pair(name.as_any(), value.as_ref())?;
        }
        Ok(())
    }

    fn state_pair(
        &mut self,
        name: &Bound<'_, PyAny>,
        value: Option<&Bound<'_, PyAny>>,
    ) -> Result<(), CacheError> {
        self.structure(name)?;
        match value {
            Some(value) => self.value(value),
            None => {
                self.writer.tag(Tag::Opaque); // an unset slot
                Ok(())
            }
        }
    }

    /// A value that has no encoding, in an identity: its class alone (see [`Mode`]).
    pub(crate) fn by_type(&mut self, obj: &Bound<'_, PyAny>) -> Result<(), CacheError> {
        let seen = self.class_seen(&obj.get_type())?;
        self.writer
            .tagged_bytes(Tag::ByType, seen.info.get().fqn.as_bytes());
        self.writer.u64(seen.ordinal);
        Ok(())
    }
}

/// The ordinal of `ty`'s body fingerprint (see the module comment).
fn fingerprint_ordinal(
    py: Python<'_>,
    ty: &Bound<'_, PyType>,
    func_name: &str,
) -> Result<u64, CacheError> {
    let id = ty.as_ptr() as usize;
    FINGERPRINTING.with_borrow_mut(|active| active.push(id));
    let result = fingerprint(ty, func_name);
    FINGERPRINTING.with_borrow_mut(|active| active.pop());
    let bytes = PyBytes::new(py, &result?);
    let table = fingerprints(py);
    if let Some(ordinal) = table.get_item(&bytes)? {
        return Ok(ordinal.extract()?);
    }
    // Never reused; 0 is for built-in classes.
    static NEXT_FINGERPRINT: AtomicU64 = AtomicU64::new(1);
    let fresh = PyInt::new(py, NEXT_FINGERPRINT.fetch_add(1, Ordering::Relaxed));
    Ok(table
        .call_method1(intern!(py, "setdefault"), (bytes, fresh))?
        .extract()?)
}

fn fingerprint(ty: &Bound<'_, PyType>, func_name: &str) -> Result<Vec<u8>, CacheError> {
    let py = ty.py();
    let mut encoder = Encoder::plain(Mode::Identity, func_name);
    encoder.value(ty.get_type().as_any())?;
    encoder.value(&ty.getattr(intern!(py, "__bases__"))?)?;
    let namespace = ty.getattr(intern!(py, "__dict__"))?;
    let mut members: Vec<(String, Bound<'_, PyAny>)> = Vec::new();
    for item in namespace.call_method0(intern!(py, "items"))?.try_iter()? {
        let (name, value): (Bound<'_, PyAny>, Bound<'_, PyAny>) = item?.extract()?;
        let name = name.str()?.to_string();
        if !derived_name(&name) {
            members.push((name, value));
        }
    }
    members.sort_by(|a, b| a.0.cmp(&b.0));
    encoder.writer.len(members.len());
    for (name, value) in &members {
        encoder.writer.raw_bytes(name.as_bytes());
        encoder.value(value)?;
    }
    let mut key = encoder.finish();
    // A class body lives as long as the process may meet the class again.
    key.leak_pins();
    Ok(key.as_bytes().to_vec())
}
