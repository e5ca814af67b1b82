//! Values keyed by their own `__hash__`/`__eq__` (hashable user classes, frozen dataclasses
//! holding an unencodable field, …), as `functools.lru_cache` keys its arguments: equality
//! decides, never the hash alone.
//!
//! A key cannot hold such a value's content, so it holds an ordinal: the value is looked up
//! in a process-wide table (a Python dict from `(class name, class fingerprint, value)` to an
//! [`InternSlot`], so the lookup runs the value's `__hash__` and `__eq__`), and the key
//! carries the slot's ordinal. Ordinals are never reused, so a key can never come to name a
//! value it was not made from.
//!
//! What the table keeps lives only as long as a key names it. Every key that carries an
//! ordinal pins its slot (a count, [`Pin`]): the key being encoded for a call, the key of
//! every stored entry, in-flight and refresh keys. When the last pin goes (the entry was
//! evicted, cleared, expired or replaced; the call that made a fresh slot failed) the
//! ordinal is queued, and the next [`release_unused`] (at the next interning, and after every
//! clear) removes the slot, dropping the table's references to the value. A hit only reads
//! the table and moves one count up and down.
//!
//! Pins are dropped wherever keys are, including under cache locks, so dropping one runs no
//! Python: it touches an atomic and, when it was the last, a small queue. The table itself is
//! only touched attached, with no lock held, because its lookups run the value's own code.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyInt, PyString, PyTuple};

use super::instances::Seen;
use super::Encoder;
use crate::bindings::errors::CacheError;
use crate::engine::key::Tag;

/// The count of a slot that has been removed from the table: it can no longer be pinned.
const RETIRED: usize = usize::MAX;

/// How many live keys name one slot.
struct SlotCount {
    ordinal: u64,
    refs: AtomicUsize,
}

impl SlotCount {
    /// One more key names the slot — unless it was already retired.
    fn try_pin(&self) -> bool {
        let mut current = self.refs.load(Ordering::Acquire);
        loop {
            if current == RETIRED {
                return false;
            }
            match self.refs.compare_exchange_weak(
                current,
                current + 1,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return true,
                Err(now) => current = now,
            }
        }
    }

    /// Retires the slot if no key names it (a key that pins it first keeps it).
    fn try_retire(&self) -> bool {
        self.refs
            .compare_exchange(0, RETIRED, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }
}

/// One key's hold on one slot. Dropping the last hold queues the slot for removal.
struct Pin(Arc<SlotCount>);

impl Drop for Pin {
    fn drop(&mut self) {
        if self.0.refs.fetch_sub(1, Ordering::AcqRel) == 1 {
            released().push(self.0.ordinal);
            PENDING.store(true, Ordering::Release);
        }
    }
}

/// Ordinals whose last pin went, waiting for [`release_unused`].
static RELEASED: Mutex<Vec<u64>> = Mutex::new(Vec::new());

/// The queue, locked. A leaf lock held for a push or a swap, never while anything else is
/// done; std's (futex-based), as every lock a forked child may inherit. A panic while it
/// was held cannot leave the vector half-updated, so poisoning is ignored.
fn released() -> MutexGuard<'static, Vec<u64>> {
    RELEASED
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
static PENDING: AtomicBool = AtomicBool::new(false);
static NEXT_ORDINAL: AtomicU64 = AtomicU64::new(1);

/// A value's place in the table: its count, and the table key it is stored under (to
/// remove it again).
#[pyclass(frozen, module = "fastcache")]
pub struct InternSlot {
    count: Arc<SlotCount>,
    entry: Py<PyTuple>,
}

#[pymethods]
impl InternSlot {
    fn __traverse__(&self, visit: pyo3::PyVisit<'_>) -> Result<(), pyo3::PyTraverseError> {
        visit.call(&self.entry)
    }
}

/// `(class name, class fingerprint, value)` → [`InternSlot`].
fn table(py: Python<'_>) -> &Bound<'_, PyDict> {
    static TABLE: PyOnceLock<Py<PyDict>> = PyOnceLock::new();
    TABLE.get_or_init(py, || PyDict::new(py).unbind()).bind(py)
}

/// ordinal → [`InternSlot`], to find a released slot again.
fn by_ordinal(py: Python<'_>) -> &Bound<'_, PyDict> {
    static BY_ORDINAL: PyOnceLock<Py<PyDict>> = PyOnceLock::new();
    BY_ORDINAL
        .get_or_init(py, || PyDict::new(py).unbind())
        .bind(py)
}

/// Removes the slots no key names any more, dropping the table's references to their
/// values (whose `__del__` may run: this is called attached, with no lock held). An error
/// from a value's `__hash__`/`__eq__` here is reported as unraisable: it belongs to no call.
pub fn release_unused(py: Python<'_>) {
    if !PENDING.swap(false, Ordering::AcqRel) {
        return;
    }
    let released = std::mem::take(&mut *released());
    for ordinal in released {
        if let Err(err) = release_one(py, ordinal) {
            err.write_unraisable(py, None);
        }
    }
}

fn release_one(py: Python<'_>, ordinal: u64) -> PyResult<()> {
    let Some(slot) = by_ordinal(py).get_item(ordinal)? else {
        return Ok(());
    };
    let slot = slot.cast_into::<InternSlot>()?;
    if !slot.get().count.try_retire() {
        return Ok(()); // pinned again since: released again when that pin goes
    }
    by_ordinal(py).del_item(ordinal)?;
    let entry = slot.get().entry.bind(py);
    // Only if the table still maps to this slot (an equal value may have been interned
    // afresh in its place after it was retired).
    if let Some(current) = table(py).get_item(entry)? {
        if current.is(&slot) {
            table(py).del_item(entry)?;
        }
    }
    Ok(())
}

/// How many values the table holds now, after releasing those no key names (for tests of
/// the memory bound).
#[pyfunction]
pub fn interned_count(py: Python<'_>) -> usize {
    release_unused(py);
    table(py).len()
}

impl Encoder<'_> {
    /// Writes `obj` as its class and its slot's ordinal, pinning the slot for the key
    /// being written. The class's body fingerprint is part of the table key, so instances
    /// of two different classes that share a name never meet, even if `__eq__` says equal.
    pub(crate) fn interned(
        &mut self,
        obj: &Bound<'_, PyAny>,
        class: &Seen,
    ) -> Result<(), CacheError> {
        let py = obj.py();
        release_unused(py);
        let (fqn, class_ordinal) = (&class.info.get().fqn, class.ordinal);
        let entry = PyTuple::new(
            py,
            [
                PyString::new(py, fqn).into_any(),
                PyInt::new(py, class_ordinal).into_any(),
                obj.clone(),
            ],
        )?;
        let found = match table(py).get_item(&entry) {
            Ok(found) => found,
            // `__hash__` refused (a frozen dataclass holding a list): not hashable.
            Err(e) if e.is_instance_of::<PyTypeError>(py) => return Err(self.unhashable(obj)),
            Err(e) => return Err(e.into()),
        };
        let count = match found {
            Some(slot) => {
                let count = Arc::clone(
                    &slot
                        .cast_into::<InternSlot>()
                        .map_err(PyErr::from)?
                        .get()
                        .count,
                );
                if count.try_pin() {
                    count
                } else {
                    self.new_slot(py, &entry)?
                }
            }
            None => self.new_slot(py, &entry)?,
        };
        let ordinal = count.ordinal;
        self.pins.push(Box::new(Pin(count)));
        self.writer.tagged_bytes(Tag::Interned, fqn.as_bytes());
        self.writer.u64(class_ordinal);
        self.writer.u64(ordinal);
        Ok(())
    }

    /// A fresh slot for `entry`, already pinned once — or the one another thread stored
    /// meanwhile (the table's lookups run Python, so the interpreter may switch threads).
    fn new_slot(
        &mut self,
        py: Python<'_>,
        entry: &Bound<'_, PyTuple>,
    ) -> Result<Arc<SlotCount>, CacheError> {
        let count = Arc::new(SlotCount {
            ordinal: NEXT_ORDINAL.fetch_add(1, Ordering::Relaxed),
            refs: AtomicUsize::new(1),
        });
        let slot = Bound::new(
            py,
            InternSlot {
                count: Arc::clone(&count),
                entry: entry.clone().unbind(),
            },
        )?;
        let stored = table(py).call_method1(pyo3::intern!(py, "setdefault"), (entry, &slot))?;
        if !stored.is(&slot) {
            let other = Arc::clone(
                &stored
                    .cast_into::<InternSlot>()
                    .map_err(PyErr::from)?
                    .get()
                    .count,
            );
            if other.try_pin() {
                return Ok(other);
            }
            // Retired but not yet removed: this slot takes its place.
            table(py).set_item(entry, &slot)?;
        }
        by_ordinal(py).set_item(count.ordinal, &slot)?;
        Ok(count)
    }
}
