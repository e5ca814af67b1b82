//! The process-wide registry of caches: it finds a function's cache again when its `def`
//! is re-executed (as every Streamlit rerun does), replaces it when the options change,
//! and lists every live cache for the global clear, the reaper and the fork hook.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Weak};

use parking_lot::Mutex;
use pyo3::prelude::*;

use crate::bindings::cache::{lock_attached, CacheOptions, Callbacks, ResourceCache};
use crate::bindings::logging::{debug_enabled, log_cache_replaced};
use crate::engine::key::session_prefix;

/// Every cache of the process: by function identity for reuse, and all of them for
/// `cache_resource.clear()`, the reaper and fork handling (a replaced cache still used by
/// an old wrapper included).
#[derive(Default)]
struct Registry {
    /// Keyed by the whole identity string (module, qualname, source, code), hashed with
    /// ahash: every rerun looks each decorated function up here, and the string is long.
    by_identity: HashMap<String, Arc<ResourceCache>, ahash::RandomState>,
    all: Vec<Weak<ResourceCache>>,
}

static REGISTRY: LazyLock<Mutex<Registry>> = LazyLock::new(Default::default);

/// The cache of the function with this identity: the existing one when its options are
/// unchanged (its callbacks updated to the newest), else a new one that replaces it — the
/// replaced cache's entries are released through its own `on_release`.
pub fn cache_for(
    py: Python<'_>,
    identity: &str,
    name: String,
    options: CacheOptions,
    callbacks: Callbacks,
) -> PyResult<Arc<ResourceCache>> {
    let mut registry = lock_attached(py, &REGISTRY);
    if let Some(existing) = registry.by_identity.get(identity) {
        if *existing.options() == options {
            let existing = Arc::clone(existing);
            drop(registry);
            existing.replace_callbacks(py, callbacks);
            return Ok(existing);
        }
    }
    let cache = Arc::new(ResourceCache::new(name, options, callbacks));
    registry.all.retain(|weak| weak.strong_count() > 0);
    registry.all.push(Arc::downgrade(&cache));
    let replaced = registry
        .by_identity
        .insert(identity.to_owned(), Arc::clone(&cache));
    drop(registry);
    if let Some(old) = replaced {
        if debug_enabled() {
            log_cache_replaced(py, old.name());
        }
        // A Ctrl-C from its on_release reaches the decoration; the new cache is in place.
        old.clear(py)?;
    }
    Ok(cache)
}

/// Every live cache (the registry lock is held by the caller).
fn live_caches(registry: &Registry) -> Vec<Arc<ResourceCache>> {
    registry.all.iter().filter_map(Weak::upgrade).collect()
}

/// `cache_resource.clear()`: every entry of every cache, released. A Ctrl-C or
/// `SystemExit` from an `on_release` is raised once every cache has been cleared.
pub fn clear_every_cache(py: Python<'_>) -> PyResult<()> {
    let caches = live_caches(&lock_attached(py, &REGISTRY));
    let mut interrupt = Ok(());
    for cache in &caches {
        let cleared = cache.clear(py);
        if interrupt.is_ok() {
            interrupt = cleared;
        }
    }
    interrupt
}

/// A browser session ended (or was cleared): every session-scoped cache releases that
/// session's entries. A Ctrl-C or `SystemExit` from an `on_release` is raised once every
/// cache has been cleared.
pub fn clear_session_everywhere(py: Python<'_>, session_id: &str) -> PyResult<()> {
    let prefix = session_prefix(session_id);
    let caches = live_caches(&lock_attached(py, &REGISTRY));
    let mut interrupt = Ok(());
    for cache in caches.iter().filter(|c| c.session_scoped()) {
        let cleared = cache.clear_session(py, &prefix);
        if interrupt.is_ok() {
            interrupt = cleared;
        }
    }
    interrupt
}

/// For the reaper: the caches whose entries expire.
pub fn expiring_caches(py: Python<'_>) -> Vec<Arc<ResourceCache>> {
    let caches = live_caches(&lock_attached(py, &REGISTRY));
    caches.into_iter().filter(|c| c.expires()).collect()
}

/// In a forked child: every cache forgets the computations and refreshes of the parent's
/// other threads (see `ResourceCache::forget_other_threads_after_fork`).
pub fn forget_other_threads_after_fork(py: Python<'_>) {
    let caches = live_caches(&lock_attached(py, &REGISTRY));
    for cache in &caches {
        cache.forget_other_threads_after_fork(py);
    }
}
