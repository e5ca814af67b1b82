//! The eager expiry reaper: one thread for all caches that releases expired entries
//! (calling `on_release`, freeing the memory) within about a second of expiry, even when
//! the function is never called again.
//!
//! It starts with the first cache that has a ttl (no ttl anywhere: no thread, no cost).
//! Its cost follows the entries that expire, not the entries stored: every write lowers a
//! process-wide mark of the earliest expiry (`EARLIEST`), and the reaper sleeps, detached,
//! until that mark (or a short poll interval, to see marks lowered meanwhile), attaching
//! only when something is due. Then it skips every cache whose own mark is not due — no
//! lock taken — and takes expired entries out of the others through their expiry-ordered
//! index, in batches, releasing each batch after the cache lock is gone. It stops at
//! interpreter exit.

use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use pyo3::prelude::*;
use std::sync::{Condvar, Mutex, MutexGuard};

use crate::bindings::exit_safe;
use crate::bindings::registry::expiring_caches;
use crate::engine::expiry_hint::ExpiryHint;
use crate::engine::fork_fresh::ForkFresh;

/// The longest the reaper sleeps without looking at `EARLIEST`, so an entry written with
/// an expiry earlier than its wake-up time is released within about this long of expiring.
/// Looking is an atomic load, detached: it costs the other threads nothing.
const POLL: Duration = Duration::from_millis(250);

/// The shortest time between two passes, so a cache whose entries expire as they are
/// written (`ttl=0`) cannot keep the reaper attached.
const MIN_INTERVAL: Duration = Duration::from_millis(5);

/// Expired entries taken out per lock hold: the cache lock is never held for long, and
/// each batch is released before the next is taken.
const BATCH: usize = 1024;

/// The earliest expiry any write has noted since the reaper last looked.
static EARLIEST: ExpiryHint = ExpiryHint::never();

/// A write of an entry expiring at `at` (`None`: never).
pub fn note_expiry(at: Option<Instant>) {
    EARLIEST.note(at);
}

struct ReaperState {
    running: bool,
    stopping: bool,
}

/// The reaper's bookkeeping. A forked child gets a fresh one (the parent's thread, and
/// whatever it was doing with these locks, does not exist there). std's lock and condvar,
/// not parking_lot's: parking_lot keeps parked threads in a process-wide table that a
/// child could inherit mid-update.
struct Shared {
    state: Mutex<ReaperState>,
    wake: Condvar,
}

static SHARED: ForkFresh<Shared> = ForkFresh::new(|| Shared {
    state: Mutex::new(ReaperState {
        running: false,
        stopping: false,
    }),
    wake: Condvar::new(),
});
/// Set at interpreter exit: never start again.
static SHUT_DOWN: AtomicBool = AtomicBool::new(false);

fn shared() -> &'static Shared {
    SHARED.get()
}

impl Shared {
    /// The state; a panic cannot leave it half-updated, so a poisoned lock is used as is.
    fn lock(&self) -> MutexGuard<'_, ReaperState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sleeps until notified or `deadline`, whichever comes first.
    fn sleep_until<'a>(
        &self,
        state: MutexGuard<'a, ReaperState>,
        deadline: Instant,
    ) -> MutexGuard<'a, ReaperState> {
        let timeout = deadline.saturating_duration_since(Instant::now());
        match self.wake.wait_timeout(state, timeout) {
            Ok((state, _)) => state,
            Err(poisoned) => poisoned.into_inner().0,
        }
    }
}

pub fn ensure_started() {
    let shared = shared();
    let mut state = shared.lock();
    if state.running || state.stopping || SHUT_DOWN.load(Ordering::Relaxed) {
        return;
    }
    state.running = true;
    drop(state);
    let spawned = thread::Builder::new()
        .name("fastcache-reaper".into())
        .stack_size(crate::engine::stack::own_thread_stack_size())
        .spawn(move || run(shared));
    if spawned.is_err() {
        shared.lock().running = false;
    }
}

fn run(shared: &'static Shared) {
    let mut earliest_pass = Instant::now();
    loop {
        {
            let mut state = shared.lock();
            loop {
                if state.stopping {
                    break;
                }
                let now = Instant::now();
                if now >= earliest_pass && EARLIEST.due(now) {
                    break;
                }
                let due = EARLIEST.get().unwrap_or(now + POLL);
                let deadline = due.clamp(earliest_pass, now + POLL);
                state = shared.sleep_until(state, deadline);
            }
            if state.stopping {
                break;
            }
        }
        let pass = exit_safe::attach_worker(|py| {
            let stopping = || shared.lock().stopping;
            let now = Instant::now();
            // Marks lowered from here on (by writes, or by on_release calling cached
            // functions) stay noted for the next pass.
            EARLIEST.set(None);
            for cache in expiring_caches(py) {
                while !stopping() && cache.expiry_due(now) {
                    let (removed, more) = cache.reap(py, now, BATCH);
                    cache.release_in_background_while(py, removed, || !stopping());
                    if !more {
                        break;
                    }
                    // Many entries expiring at once: let threads waiting for the
                    // interpreter in before the next batch.
                    exit_safe::detach(py, || {});
                }
                EARLIEST.note(cache.next_expiry());
            }
            !stopping()
        });
        if pass != Some(true) {
            break; // stopping, or the interpreter is going away
        }
        earliest_pass = Instant::now() + MIN_INTERVAL;
    }
    let mut state = shared.lock();
    state.running = false;
    shared.wake.notify_all();
}

/// At interpreter exit: tells the reaper to stop (it does between two releases) and
/// returns at once. Exit does not wait for it: a release still running when finalization
/// begins ends with the process, its thread parked by `exit_safe` as soon as it asks for
/// the interpreter again, as a daemon thread's would be.
pub fn shut_down(py: Python<'_>) {
    SHUT_DOWN.store(true, Ordering::Relaxed);
    let shared = shared();
    // The lock is the reaper's, held only briefly and detached: wait for it detached too.
    exit_safe::detach(py, || {
        shared.lock().stopping = true;
        shared.wake.notify_all();
    });
}

/// In a forked child: the reaper thread does not exist here. Start from fresh state (the
/// parent's is left as it was, unused) and restart the reaper if it was running.
pub fn reset_after_fork() {
    let Some(old) = SHARED.renew() else {
        return;
    };
    // A lock the parent's reaper held at the fork stays locked here: then it was running.
    let was_running = old.state.try_lock().map_or(true, |state| state.running);
    if was_running && !SHUT_DOWN.load(Ordering::Relaxed) {
        ensure_started();
    }
}
