//! Single flight: one computation per missing key, with every other caller waiting on it.
//!
//! A [`Flight`] is created by the thread that found a key missing and will compute it (the
//! owner). Other callers of the same key take a clone of the `Arc<Flight>` and wait on it;
//! the owner finishes it with the value or with a failure, and waiters either take the
//! value or retry (exceptions are never cached). Plain Rust: waiting is a condition
//! variable with a timeout, so the bindings can wait detached from the interpreter and
//! still look for Ctrl-C between waits; async waiters register a callback instead, run
//! by `finish` after it has published the outcome. The outcome is an atomic and a
//! set-once value, so reading it takes no lock and finishing never waits for a waiter.

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::ThreadId;
use std::time::Duration;

use std::sync::{Condvar, Mutex as SleepMutex, TryLockError};

use parking_lot::Mutex;

use crate::engine::key::{describe, Key};
use crate::engine::waits::{Awaited, Participant};

/// How a computation ended, as the owner reports it.
pub enum FlightState<V> {
    Done(V),
    /// The computation raised (or its owner went away): waiters must try again.
    Failed,
}

/// What a waiter sees.
pub enum Outcome<'a, V> {
    Running,
    Done(&'a V),
    Failed,
}

/// Called once when the flight finishes (an async waiter's wake-up).
pub type Listener = Box<dyn FnOnce() + Send>;

const RUNNING: u8 = 0;
const DONE: u8 = 1;
const FAILED: u8 = 2;

/// Times `finish` tries the sleepers' lock before waking them without it (a sleeper holds
/// it only between checking the outcome and parking; in a forked child a thread that does
/// not exist may hold it forever).
const WAKE_ATTEMPTS: usize = 1000;

/// What a flight computes, for messages: the function's name and the argument key.
pub struct FlightLabel {
    pub function: Arc<str>,
    pub key: Key,
}

impl FlightLabel {
    /// `load(1, 'a')`.
    pub fn describe(&self) -> String {
        format!("{}({})", self.function, describe(&self.key))
    }
}

/// Flight ids: never reused, so a stale id names no later flight.
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// A new flight id, for a computation whose [`Flight`] may be made later
/// ([`Flight::with_id`]: only when someone has to wait for it).
pub fn next_id() -> u64 {
    NEXT_ID.fetch_add(1, Ordering::Relaxed)
}

pub struct Flight<V> {
    id: u64,
    /// The thread or task computing it.
    owner: Participant,
    /// The thread it was started on (a task's event loop thread).
    thread: ThreadId,
    label: FlightLabel,
    /// `RUNNING`, `DONE` or `FAILED`; read without a lock.
    outcome: AtomicU8,
    /// Set once, before `outcome` becomes `DONE`.
    value: OnceLock<V>,
    /// Only for sleeping: how many waiters are parked; they check `outcome` and park under
    /// it. std's lock and condvar (futexes on their own memory) rather than parking_lot's,
    /// whose parked threads live in a process-wide table a forked child would inherit
    /// mid-update. The count spares `finish` the wake-up system call when nobody sleeps.
    sleepers: SleepMutex<usize>,
    finished: Condvar,
    listeners: Mutex<Vec<Listener>>,
}

impl<V> Flight<V> {
    /// A flight computed by `owner`, started on `thread` (the current one).
    pub fn new(owner: Participant, thread: ThreadId, label: FlightLabel) -> Self {
        Flight::with_id(next_id(), owner, thread, label)
    }

    /// The flight of a computation that already has its id (from [`next_id`]).
    pub fn with_id(id: u64, owner: Participant, thread: ThreadId, label: FlightLabel) -> Self {
        Flight {
            id,
            owner,
            thread,
            label,
            outcome: AtomicU8::new(RUNNING),
            value: OnceLock::new(),
            sleepers: SleepMutex::new(0),
            finished: Condvar::new(),
            listeners: Mutex::new(Vec::new()),
        }
    }

    pub fn id(&self) -> u64 {
        self.id
    }

    pub fn owner(&self) -> Participant {
        self.owner
    }

    pub fn thread(&self) -> ThreadId {
        self.thread
    }

    pub fn label(&self) -> &FlightLabel {
        &self.label
    }

    /// Publishes the outcome and wakes every waiter; listeners run after every lock of
    /// the flight is released. Never blocks on a lock a waiter could hold.
    pub fn finish(&self, outcome: FlightState<V>) {
        let code = match outcome {
            FlightState::Done(value) => {
                let _ = self.value.set(value);
                DONE
            }
            FlightState::Failed => FAILED,
        };
        self.outcome.store(code, Ordering::Release);
        // Taking the sleepers' lock once orders this wake-up after any waiter that saw
        // `RUNNING` has parked, so none misses it; a lock that stays taken (a thread that
        // does not exist in a forked child) gets an unconditional wake-up instead.
        let mut anyone_asleep = true;
        for _ in 0..WAKE_ATTEMPTS {
            match self.sleepers.try_lock() {
                Ok(sleeping) => anyone_asleep = *sleeping > 0,
                Err(TryLockError::Poisoned(poisoned)) => {
                    anyone_asleep = *poisoned.into_inner() > 0;
                }
                Err(TryLockError::WouldBlock) => {
                    std::thread::yield_now();
                    continue;
                }
            }
            break;
        }
        if anyone_asleep {
            self.finished.notify_all();
        }
        self.wake_listeners();
    }

    fn wake_listeners(&self) {
        let listeners = match self.listeners.try_lock() {
            Some(mut listeners) => std::mem::take(&mut *listeners),
            None => std::mem::take(&mut *self.listeners.lock()),
        };
        for listener in listeners {
            listener();
        }
    }

    /// In a forked child, for a flight whose owner was another thread of the parent: wake
    /// its async listeners (they look again and find the key free) without touching the
    /// sleepers' lock, which a parent thread may have held at the fork.
    pub fn wake_listeners_after_fork(&self) {
        let listeners = match self.listeners.try_lock() {
            Some(mut listeners) => std::mem::take(&mut *listeners),
            None => return,
        };
        for listener in listeners {
            listener();
        }
    }

    /// Runs `listener` when the flight finishes, or at once (returned back as `Err`) when
    /// it already has, so the caller can run it where it chooses.
    pub fn on_finish(&self, listener: Listener) -> Result<(), Listener> {
        let mut listeners = self.listeners.lock();
        if self.is_finished() {
            return Err(listener);
        }
        listeners.push(listener);
        Ok(())
    }

    pub fn is_finished(&self) -> bool {
        self.outcome.load(Ordering::Acquire) != RUNNING
    }

    /// Waits up to `timeout` for the outcome; true once the flight is no longer running.
    pub fn wait_for(&self, timeout: Duration) -> bool {
        // Nothing a panic could leave half-done is guarded here: a poisoned lock is fine.
        let mut sleeping = self.sleepers.lock().unwrap_or_else(|p| p.into_inner());
        if !self.is_finished() {
            *sleeping += 1;
            let (mut sleeping, _) = self
                .finished
                .wait_timeout(sleeping, timeout)
                .unwrap_or_else(|p| p.into_inner());
            *sleeping -= 1;
        }
        self.is_finished()
    }

    /// The outcome so far; reading it takes no lock.
    pub fn outcome(&self) -> Outcome<'_, V> {
        match self.outcome.load(Ordering::Acquire) {
            RUNNING => Outcome::Running,
            DONE => match self.value.get() {
                Some(value) => Outcome::Done(value),
                None => Outcome::Failed,
            },
            _ => Outcome::Failed,
        }
    }
}

impl<V> Awaited for Arc<Flight<V>> {
    fn owner(&self) -> Participant {
        self.owner
    }

    fn is_over(&self) -> bool {
        self.is_finished()
    }

    fn same_as(&self, other: &Self) -> bool {
        Arc::ptr_eq(self, other)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::thread;

    fn flight<V>() -> Flight<V> {
        let label = FlightLabel {
            function: Arc::from("load"),
            key: Key::from_bytes(&[]),
        };
        let me = thread::current().id();
        Flight::new(Participant::Thread(me), me, label)
    }

    #[test]
    fn waiters_see_the_owner_outcome() {
        let flight = Arc::new(flight());
        let waiters: Vec<_> = (0..4)
            .map(|_| {
                let f = Arc::clone(&flight);
                thread::spawn(move || {
                    while !f.wait_for(Duration::from_millis(10)) {}
                    match f.outcome() {
                        Outcome::Done(v) => *v,
                        _ => -1,
                    }
                })
            })
            .collect();
        flight.finish(FlightState::Done(42));
        for w in waiters {
            assert_eq!(w.join().unwrap(), 42);
        }
    }

    #[test]
    fn listeners_run_once_on_finish_or_are_handed_back_after() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let calls = Arc::new(AtomicUsize::new(0));
        let flight: Flight<i32> = flight();
        let c = Arc::clone(&calls);
        assert!(flight
            .on_finish(Box::new(move || {
                c.fetch_add(1, Ordering::SeqCst);
            }))
            .is_ok());
        flight.finish(FlightState::Done(1));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert!(flight.on_finish(Box::new(|| {})).is_err());
    }

    #[test]
    fn a_running_flight_times_out_and_a_failed_one_does_not() {
        let flight: Flight<i32> = flight();
        assert!(!flight.wait_for(Duration::from_millis(1)));
        flight.finish(FlightState::Failed);
        assert!(flight.wait_for(Duration::from_secs(60)));
        assert!(matches!(flight.outcome(), Outcome::Failed));
    }
}
