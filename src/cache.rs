//! `ResourceCache`: one cached function's entries, its in-flight computations and its
//! callbacks, plus the process-wide registry that finds a function's cache again when its
//! `def` is re-executed (as every Streamlit rerun does).
//!
//! Reentrancy rule (as in CPython's `_functoolsmodule.c`): a cache lock is held only for
//! table work. Python — the user's function, `validate`, `on_release`, a value's `__del__`
//! — runs after the lock is released: lookups are get → unlock → compute → relock → insert,
//! and values leaving the table are collected under the lock and released after it.
//! A lock that is busy is waited for detached from the interpreter.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Weak};
use std::time::{Duration, Instant};

use parking_lot::{Mutex, MutexGuard};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;

use crate::errors::CacheError;
use crate::flight::{Flight, FlightState};
use crate::key::Key;
use crate::store::{Lookup, RemovalCause, Removed, Store, Ttl};

/// Takes a lock without ever blocking while attached: a busy lock is waited for detached,
/// so the thread holding it can take the interpreter if it needs it.
pub fn lock_attached<'a, T: Send>(py: Python<'_>, mutex: &'a Mutex<T>) -> MutexGuard<'a, T> {
    if let Some(guard) = mutex.try_lock() {
        return guard;
    }
    py.detach(|| mutex.lock())
}

/// Whether the `fastcache` logger wants debug records. Read on the hot path instead of
/// asking the logging bridge, so a hit costs nothing when debug logging is off. Refreshed
/// at import and by `fastcache.refresh_logging()`.
static DEBUG_LOGGING: AtomicBool = AtomicBool::new(false);

pub fn refresh_debug_flag(py: Python<'_>) -> PyResult<()> {
    let enabled = fastcache_logger(py)?
        .call_method1(intern!(py, "isEnabledFor"), (10,))?
        .is_truthy()?;
    DEBUG_LOGGING.store(enabled, Ordering::Relaxed);
    Ok(())
}

fn debug_enabled() -> bool {
    DEBUG_LOGGING.load(Ordering::Relaxed)
}

fn fastcache_logger(py: Python<'_>) -> PyResult<&Bound<'_, PyAny>> {
    static LOGGER: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    LOGGER
        .get_or_try_init(py, || {
            py.import("logging")?
                .call_method1("getLogger", ("fastcache",))
                .map(Bound::unbind)
        })
        .map(|l| l.bind(py))
}

/// The options that decide whether a re-decorated function may keep its cache: Streamlit
/// replaces the cache when any of them changes.
#[derive(Clone, Debug, PartialEq)]
pub struct CacheOptions {
    /// Seconds, `inf` for no ttl (so `3600 == "1h" == timedelta(hours=1)`).
    pub ttl_secs: f64,
    pub max_entries: Option<usize>,
    pub background_refresh: bool,
    pub has_validate: bool,
}

pub struct Callbacks {
    pub validate: Option<Py<PyAny>>,
    pub on_release: Option<Py<PyAny>>,
}

struct InFlight {
    flight: Arc<Flight<Py<PyAny>>>,
    /// Set by a clear while computing: the value goes to its caller but is not stored.
    discard: bool,
}

struct CacheState {
    store: Store<Py<PyAny>>,
    inflight: HashMap<Key, InFlight, ahash::RandomState>,
}

pub struct ResourceCache {
    /// `qualname` of the function, for logs.
    name: String,
    options: CacheOptions,
    state: Mutex<CacheState>,
    /// Swapped when the same function is decorated again, so the newest closures are used.
    callbacks: Mutex<Arc<Callbacks>>,
    hits: AtomicU64,
    misses: AtomicU64,
}

thread_local! {
    /// The (cache, key) pairs this thread is computing or validating right now. A call
    /// for one of them from the same thread could only wait for itself.
    static ACTIVE: RefCell<Vec<(usize, Key)>> = const { RefCell::new(Vec::new()) };
}

/// Marks (cache, key) as active on this thread for its lifetime.
struct ActiveMark {
    cache: usize,
}

impl ActiveMark {
    fn enter(cache: usize, key: &Key) -> Self {
        ACTIVE.with_borrow_mut(|active| active.push((cache, key.clone())));
        ActiveMark { cache }
    }
}

impl Drop for ActiveMark {
    fn drop(&mut self) {
        ACTIVE.with_borrow_mut(|active| {
            if let Some(pos) = active.iter().rposition(|(c, _)| *c == self.cache) {
                active.remove(pos);
            }
        });
    }
}

fn is_active(cache: usize, key: &Key) -> bool {
    ACTIVE.with_borrow(|active| active.iter().any(|(c, k)| *c == cache && k == key))
}

/// Why a call computes, for the debug log.
#[derive(Clone, Copy)]
enum MissReason {
    Absent,
    Expired,
    Invalid,
}

impl MissReason {
    fn as_str(self) -> &'static str {
        match self {
            MissReason::Absent => "not cached",
            MissReason::Expired => "expired",
            MissReason::Invalid => "validate rejected the cached value",
        }
    }
}

/// Between a waiter's checks for Ctrl-C.
const WAIT_SLICE: Duration = Duration::from_millis(50);

impl ResourceCache {
    pub fn new(name: String, options: CacheOptions, callbacks: Callbacks) -> Self {
        let store = Store::new(Ttl::from_secs(options.ttl_secs), options.max_entries);
        ResourceCache {
            name,
            options,
            state: Mutex::new(CacheState {
                store,
                inflight: HashMap::default(),
            }),
            callbacks: Mutex::new(Arc::new(callbacks)),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    pub fn options(&self) -> &CacheOptions {
        &self.options
    }

    fn id(&self) -> usize {
        self as *const Self as usize
    }

    fn callbacks(&self, py: Python<'_>) -> Arc<Callbacks> {
        Arc::clone(&lock_attached(py, &self.callbacks))
    }

    /// Installs the callbacks of a newer decoration; the old ones are dropped unlocked.
    fn replace_callbacks(&self, py: Python<'_>, callbacks: Callbacks) {
        let old = std::mem::replace(&mut *lock_attached(py, &self.callbacks), Arc::new(callbacks));
        drop(old);
    }

    /// `(hits, misses, current size)`.
    pub fn stats(&self, py: Python<'_>) -> (u64, u64, usize) {
        let size = lock_attached(py, &self.state).store.len();
        (
            self.hits.load(Ordering::Relaxed),
            self.misses.load(Ordering::Relaxed),
            size,
        )
    }

    /// The cached value for `key`, computing it with `compute` when it is missing,
    /// expired or rejected by `validate`. One computation per key at a time: other callers
    /// wait for it (detached) and share its value; a failed computation is retried by the
    /// next waiter and never cached.
    pub fn get_or_compute(
        &self,
        py: Python<'_>,
        key: Key,
        compute: impl FnOnce() -> PyResult<Py<PyAny>>,
    ) -> Result<Py<PyAny>, CacheError> {
        let mut reason = MissReason::Absent;
        loop {
            let mut state = lock_attached(py, &self.state);
            let mut expired = None;
            match state.store.get(&key, Instant::now()) {
                Lookup::Hit(value) => {
                    let value = value.clone_ref(py);
                    drop(state);
                    match self.validated(py, &key, value)? {
                        Some(value) => {
                            self.hits.fetch_add(1, Ordering::Relaxed);
                            if debug_enabled() {
                                log::debug!(target: "fastcache", "hit: {}", self.name);
                            }
                            return Ok(value);
                        }
                        None => {
                            reason = MissReason::Invalid;
                            continue;
                        }
                    }
                }
                Lookup::Expired(old) => {
                    expired = Some(old);
                    reason = MissReason::Expired;
                }
                Lookup::Missing => {}
            }

            if let Some(running) = state.inflight.get(&key) {
                let flight = Arc::clone(&running.flight);
                drop(state);
                self.release_expired(py, expired);
                if is_active(self.id(), &key) {
                    return Err(CacheError::Reentrant {
                        func: self.name.clone(),
                    });
                }
                if let Some(value) = wait_for_flight(py, &flight)? {
                    self.hits.fetch_add(1, Ordering::Relaxed);
                    return Ok(value);
                }
                continue; // the computation failed: try again, possibly as the owner
            }

            if is_active(self.id(), &key) {
                drop(state);
                self.release_expired(py, expired);
                return Err(CacheError::Reentrant {
                    func: self.name.clone(),
                });
            }
            let flight = Arc::new(Flight::new(std::thread::current().id()));
            state.inflight.insert(
                key.clone(),
                InFlight {
                    flight: Arc::clone(&flight),
                    discard: false,
                },
            );
            drop(state);
            self.release_expired(py, expired);

            self.misses.fetch_add(1, Ordering::Relaxed);
            if debug_enabled() {
                log::debug!(target: "fastcache", "miss ({}): {}", reason.as_str(), self.name);
            }
            let owner = FlightOwner {
                py,
                cache: self,
                key,
                flight,
                done: false,
            };
            let result = {
                let _mark = ActiveMark::enter(self.id(), &owner.key);
                compute()
            };
            return match result {
                Ok(value) => Ok(owner.complete(value)),
                Err(err) => Err(CacheError::Python(err)), // `owner` drops: flight failed
            };
        }
    }

    /// Runs `validate` (if any) on a hit, outside every lock. `None` when it rejected the
    /// value, which has then been removed and released.
    fn validated(
        &self,
        py: Python<'_>,
        key: &Key,
        value: Py<PyAny>,
    ) -> Result<Option<Py<PyAny>>, CacheError> {
        let callbacks = self.callbacks(py);
        let Some(validate) = &callbacks.validate else {
            return Ok(Some(value));
        };
        if is_active(self.id(), key) {
            return Err(CacheError::Reentrant {
                func: self.name.clone(),
            });
        }
        let verdict = {
            let _mark = ActiveMark::enter(self.id(), key);
            validate.bind(py).call1((value.bind(py),))?.is_truthy()?
        };
        if verdict {
            return Ok(Some(value));
        }
        let removed = lock_attached(py, &self.state)
            .store
            .remove_if(key, |stored| stored.is(&value));
        drop(value);
        if let Some(stale) = removed {
            self.release(
                py,
                vec![Removed {
                    value: stale,
                    cause: RemovalCause::Invalid,
                }],
            );
        }
        Ok(None)
    }

    fn release_expired(&self, py: Python<'_>, expired: Option<Py<PyAny>>) {
        if let Some(value) = expired {
            self.release(
                py,
                vec![Removed {
                    value,
                    cause: RemovalCause::Expired,
                }],
            );
        }
    }

    /// Hands values that left the cache to `on_release`, one by one, with no lock held.
    /// An exception there is logged and never stops the others.
    pub fn release(&self, py: Python<'_>, removed: Vec<Removed<Py<PyAny>>>) {
        if removed.is_empty() {
            return;
        }
        let callbacks = self.callbacks(py);
        for Removed { value, cause } in removed {
            if debug_enabled() {
                log::debug!(target: "fastcache", "release ({}): {}", cause.as_str(), self.name);
            }
            if let Some(on_release) = &callbacks.on_release {
                if let Err(err) = on_release.bind(py).call1((value.bind(py),)) {
                    self.log_release_error(py, err, cause);
                }
            }
            drop(value);
        }
    }

    fn log_release_error(&self, py: Python<'_>, err: PyErr, cause: RemovalCause) {
        let logged = fastcache_logger(py).and_then(|logger| {
            let kwargs = pyo3::types::PyDict::new(py);
            kwargs.set_item("exc_info", err.value(py))?;
            logger.call_method(
                "error",
                (
                    "on_release of '%s' raised while releasing a value (%s); the value was \
                     released anyway",
                    &self.name,
                    cause.as_str(),
                ),
                Some(&kwargs),
            )
        });
        if let Err(log_err) = logged {
            // Logging itself failed: fall back to the unraisable hook rather than lose it.
            log_err.write_unraisable(py, None);
        }
    }

    /// Removes every entry (releasing each) and makes running computations not store
    /// their value.
    pub fn clear(&self, py: Python<'_>) {
        let values = {
            let mut state = lock_attached(py, &self.state);
            for running in state.inflight.values_mut() {
                running.discard = true;
            }
            state.store.drain()
        };
        self.release(py, cleared(values));
    }

    /// Removes one entry (releasing it) and keeps a running computation of it from storing.
    pub fn clear_key(&self, py: Python<'_>, key: &Key) {
        let value = {
            let mut state = lock_attached(py, &self.state);
            if let Some(running) = state.inflight.get_mut(key) {
                running.discard = true;
            }
            state.store.remove(key)
        };
        self.release(py, cleared(value.into_iter().collect()));
    }
}

fn cleared(values: Vec<Py<PyAny>>) -> Vec<Removed<Py<PyAny>>> {
    values
        .into_iter()
        .map(|value| Removed {
            value,
            cause: RemovalCause::Cleared,
        })
        .collect()
}

/// Waits, detached, until `flight` is over; checks for signals between slices so Ctrl-C
/// reaches a waiting main thread. `None` when the computation failed.
fn wait_for_flight(
    py: Python<'_>,
    flight: &Flight<Py<PyAny>>,
) -> Result<Option<Py<PyAny>>, CacheError> {
    while !py.detach(|| flight.wait_for(WAIT_SLICE)) {
        py.check_signals()?;
    }
    let state = match flight.try_state() {
        Some(state) => state,
        None => py.detach(|| flight.state()),
    };
    Ok(match &*state {
        FlightState::Done(value) => Some(value.clone_ref(py)),
        FlightState::Failed | FlightState::Running => None,
    })
}

/// The thread computing a key. Completing stores the value; dropping without completing
/// (an exception, or a panic unwinding) takes the flight out and tells waiters to retry,
/// so a key can never stay stuck.
struct FlightOwner<'a, 'py> {
    py: Python<'py>,
    cache: &'a ResourceCache,
    key: Key,
    flight: Arc<Flight<Py<PyAny>>>,
    done: bool,
}

impl FlightOwner<'_, '_> {
    fn take_inflight(&self) -> (Option<InFlight>, MutexGuard<'_, CacheState>) {
        let mut state = lock_attached(self.py, &self.cache.state);
        let mine = match state.inflight.get(&self.key) {
            Some(running) if Arc::ptr_eq(&running.flight, &self.flight) => {
                state.inflight.remove(&self.key)
            }
            _ => None,
        };
        (mine, state)
    }

    fn complete(mut self, value: Py<PyAny>) -> Py<PyAny> {
        let py = self.py;
        let mut removed = Vec::new();
        let (running, mut state) = self.take_inflight();
        let store = matches!(running, Some(InFlight { discard: false, .. }));
        if store {
            state
                .store
                .insert(self.key.clone(), value.clone_ref(py), Instant::now(), &mut removed);
        }
        drop(state);
        drop(running);
        self.flight.finish(FlightState::Done(value.clone_ref(py)));
        self.done = true;
        if !store {
            // Cleared while computing: the caller gets the value, the cache does not keep it.
            removed.push(Removed {
                value: value.clone_ref(py),
                cause: RemovalCause::Cleared,
            });
        }
        self.cache.release(py, removed);
        value
    }
}

impl Drop for FlightOwner<'_, '_> {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let (running, state) = self.take_inflight();
        drop(state);
        drop(running);
        self.flight.finish(FlightState::Failed);
    }
}

/// Every cache of the process: by function identity for reuse, and all of them for
/// `cache_resource.clear()` (a replaced cache still used by an old wrapper included).
#[derive(Default)]
struct Registry {
    by_identity: HashMap<String, Arc<ResourceCache>>,
    all: Vec<Weak<ResourceCache>>,
}

static REGISTRY: LazyLock<Mutex<Registry>> = LazyLock::new(Default::default);

/// The cache of the function with this identity: the existing one when its options are
/// unchanged (its callbacks updated to the newest), else a new one that replaces it — the
/// replaced cache's entries are released through its own `on_release`.
pub fn cache_for(
    py: Python<'_>,
    identity: String,
    name: String,
    options: CacheOptions,
    callbacks: Callbacks,
) -> Arc<ResourceCache> {
    let mut registry = lock_attached(py, &REGISTRY);
    if let Some(existing) = registry.by_identity.get(&identity) {
        if existing.options == options {
            let existing = Arc::clone(existing);
            drop(registry);
            existing.replace_callbacks(py, callbacks);
            return existing;
        }
    }
    let cache = Arc::new(ResourceCache::new(name, options, callbacks));
    registry.all.retain(|weak| weak.strong_count() > 0);
    registry.all.push(Arc::downgrade(&cache));
    let replaced = registry.by_identity.insert(identity, Arc::clone(&cache));
    drop(registry);
    if let Some(old) = replaced {
        if debug_enabled() {
            log::debug!(target: "fastcache", "options changed, cache replaced: {}", old.name);
        }
        old.clear(py);
    }
    cache
}

/// `cache_resource.clear()`: every entry of every cache, released.
pub fn clear_every_cache(py: Python<'_>) {
    let caches: Vec<Arc<ResourceCache>> = {
        let registry = lock_attached(py, &REGISTRY);
        registry.all.iter().filter_map(Weak::upgrade).collect()
    };
    for cache in &caches {
        cache.clear(py);
    }
}
