//! The eager expiry reaper: one thread for all caches that releases expired entries
//! (calling `on_release`, freeing the memory) within about a second of expiry, even when
//! the function is never called again.
//!
//! It starts with the first cache that has a ttl (no ttl anywhere: no thread, no cost),
//! sleeps detached until the earliest expiry it knows of (or a short poll interval, for
//! entries written since), collects expired values under each cache's lock without
//! touching Python, and only then attaches to release them. It stops at interpreter exit.

use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};
use pyo3::prelude::*;

use crate::cache::expiring_caches_detached;

/// The longest the reaper sleeps, so entries written after it computed its wake-up time
/// are released within about this long of their expiry.
const POLL: Duration = Duration::from_millis(250);

struct ReaperState {
    running: bool,
    stopping: bool,
}

static STATE: Mutex<ReaperState> = parking_lot::const_mutex(ReaperState {
    running: false,
    stopping: false,
});
static WAKE: Condvar = Condvar::new();
/// Set at interpreter exit: never start again.
static SHUT_DOWN: AtomicBool = AtomicBool::new(false);

pub fn ensure_started() {
    let mut state = STATE.lock();
    if state.running || state.stopping || SHUT_DOWN.load(Ordering::Relaxed) {
        return;
    }
    state.running = true;
    drop(state);
    let spawned = thread::Builder::new()
        .name("fastcache-reaper".into())
        .spawn(run);
    if spawned.is_err() {
        STATE.lock().running = false;
    }
}

fn run() {
    let mut deadline = Instant::now() + POLL;
    loop {
        {
            let mut state = STATE.lock();
            while !state.stopping && Instant::now() < deadline {
                WAKE.wait_until(&mut state, deadline);
            }
            if state.stopping {
                state.running = false;
                WAKE.notify_all();
                return;
            }
        }
        let now = Instant::now();
        deadline = now + POLL;
        let caches = expiring_caches_detached();
        let mut expired = Vec::new();
        for cache in &caches {
            let (removed, next) = cache.reap_detached(now);
            if let Some(next) = next {
                deadline = deadline.min(next.max(now + Duration::from_millis(5)));
            }
            if !removed.is_empty() {
                expired.push((std::sync::Arc::clone(cache), removed));
            }
        }
        if expired.is_empty() && caches.iter().all(|c| std::sync::Arc::strong_count(c) > 1) {
            drop(caches); // dropping these references cannot free a cache: no Python runs
            continue;
        }
        let released = Python::try_attach(|py| {
            for (cache, removed) in expired {
                cache.release(py, removed);
            }
            drop(caches);
        });
        if released.is_none() {
            // The interpreter is going away: nothing can be released any more.
            let mut state = STATE.lock();
            state.running = false;
            WAKE.notify_all();
            return;
        }
    }
}

/// At interpreter exit: stop the reaper and wait (detached, briefly) until it is out of
/// any Python call, so finalization never meets it half-way through a release.
pub fn shut_down(py: Python<'_>) {
    SHUT_DOWN.store(true, Ordering::Relaxed);
    py.detach(|| {
        let mut state = STATE.lock();
        state.stopping = true;
        WAKE.notify_all();
        let give_up = Instant::now() + Duration::from_secs(2);
        while state.running && Instant::now() < give_up {
            WAKE.wait_until(&mut state, give_up);
        }
    });
}

/// Before `fork`: hold the reaper's lock so it is not inside it at that moment.
pub fn lock_for_fork() {
    std::mem::forget(STATE.lock());
}

/// After `fork`. In the child the reaper thread does not exist: it is marked stopped and
/// started again if any cache needs it.
pub fn unlock_after_fork(in_child: bool) {
    // SAFETY: locked by lock_for_fork on this thread, its guard forgotten.
    unsafe { STATE.force_unlock() };
    if in_child {
        let needed = {
            let mut state = STATE.lock();
            let was_running = state.running;
            state.running = false;
            was_running && !state.stopping
        };
        if needed {
            ensure_started();
        }
    }
}
