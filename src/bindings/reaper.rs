//! The eager expiry reaper: one thread for all caches that releases expired entries
//! (calling `on_release`, freeing the memory) within about a second of expiry, even when
//! the function is never called again.
//!
//! It starts with the first cache that has a ttl (no ttl anywhere: no thread, no cost),
//! sleeps detached until the earliest expiry it knows of (or a short poll interval, for
//! entries written since), then attaches, takes the expired entries out under each
//! cache's lock, and releases them after the lock is gone. It stops at interpreter exit.

use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use pyo3::prelude::*;
use std::sync::{Condvar, Mutex, MutexGuard};

use crate::bindings::registry::expiring_caches;
use crate::engine::fork_fresh::ForkFresh;

/// The longest the reaper sleeps, so entries written after it computed its wake-up time
/// are released within about this long of their expiry.
const POLL: Duration = Duration::from_millis(250);

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
        .spawn(move || run(shared));
    if spawned.is_err() {
        shared.lock().running = false;
    }
}

fn run(shared: &'static Shared) {
    let stopping = || shared.lock().stopping;
    let mut deadline = Instant::now() + POLL;
    loop {
        {
            let mut state = shared.lock();
            while !state.stopping && Instant::now() < deadline {
                state = shared.sleep_until(state, deadline);
            }
            if state.stopping {
                break;
            }
        }
        let pass = Python::try_attach(|py| {
            if stopping() {
                return None;
            }
            let now = Instant::now();
            let mut next_pass = now + POLL;
            for cache in expiring_caches(py) {
                let (removed, next) = cache.reap(py, now);
                if let Some(next) = next {
                    next_pass = next_pass.min(next.max(now + Duration::from_millis(5)));
                }
                cache.release_in_background_while(py, removed, || !stopping());
            }
            Some(next_pass)
        });
        match pass.flatten() {
            Some(next_pass) => deadline = next_pass,
            None => break, // stopping, or the interpreter is going away
        }
    }
    let mut state = shared.lock();
    state.running = false;
    shared.wake.notify_all();
}

/// How long exit waits for the reaper to leave the `on_release` it may be running. It
/// stops between two releases, so this is the length of one release; an `on_release`
/// blocked longer (on I/O, say) does not hold the exit up.
const EXIT_GRACE: Duration = Duration::from_secs(5);

/// At interpreter exit: stop the reaper and wait (detached) until it is out of any Python
/// call — at most the one `on_release` it may be running — so finalization never meets it
/// half-way through a release.
pub fn shut_down(py: Python<'_>) {
    SHUT_DOWN.store(true, Ordering::Relaxed);
    let shared = shared();
    py.detach(|| {
        let mut state = shared.lock();
        state.stopping = true;
        shared.wake.notify_all();
        let give_up = Instant::now() + EXIT_GRACE;
        while state.running && Instant::now() < give_up {
            state = shared.sleep_until(state, give_up);
        }
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
