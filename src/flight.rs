//! Single flight: one computation per missing key, with every other caller waiting on it.
//!
//! A [`Flight`] is created by the thread that found a key missing and will compute it (the
//! owner). Other callers of the same key take a clone of the `Arc<Flight>` and wait on it;
//! the owner finishes it with the value or with a failure, and waiters either take the
//! value or retry (exceptions are never cached). Plain Rust: waiting is a condition
//! variable with a timeout, so the bindings can wait detached from the interpreter and
//! still look for Ctrl-C between waits.

use std::thread::ThreadId;
use std::time::Duration;

use parking_lot::{Condvar, Mutex, MutexGuard};

pub enum FlightState<V> {
    Running,
    Done(V),
    /// The computation raised (or its owner went away): waiters must try again.
    Failed,
}

pub struct Flight<V> {
    owner: ThreadId,
    state: Mutex<FlightState<V>>,
    finished: Condvar,
}

impl<V> Flight<V> {
    pub fn new(owner: ThreadId) -> Self {
        Flight {
            owner,
            state: Mutex::new(FlightState::Running),
            finished: Condvar::new(),
        }
    }

    pub fn owner(&self) -> ThreadId {
        self.owner
    }

    /// Publishes the outcome and wakes every waiter.
    pub fn finish(&self, outcome: FlightState<V>) {
        *self.state.lock() = outcome;
        self.finished.notify_all();
    }

    /// Waits up to `timeout` for the outcome; true once the flight is no longer running.
    pub fn wait_for(&self, timeout: Duration) -> bool {
        let mut state = self.state.lock();
        if matches!(*state, FlightState::Running) {
            self.finished.wait_for(&mut state, timeout);
        }
        !matches!(*state, FlightState::Running)
    }

    /// The state, for reading the outcome (held only for a moment, never across Python).
    pub fn state(&self) -> MutexGuard<'_, FlightState<V>> {
        self.state.lock()
    }

    pub fn try_state(&self) -> Option<MutexGuard<'_, FlightState<V>>> {
        self.state.try_lock()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::thread;

    #[test]
    fn waiters_see_the_owner_outcome() {
        let flight = Arc::new(Flight::new(thread::current().id()));
        let waiters: Vec<_> = (0..4)
            .map(|_| {
                let f = Arc::clone(&flight);
                thread::spawn(move || {
                    while !f.wait_for(Duration::from_millis(10)) {}
                    match &*f.state() {
                        FlightState::Done(v) => *v,
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
    fn a_running_flight_times_out_and_a_failed_one_does_not() {
        let flight: Flight<i32> = Flight::new(thread::current().id());
        assert!(!flight.wait_for(Duration::from_millis(1)));
        flight.finish(FlightState::Failed);
        assert!(flight.wait_for(Duration::from_secs(60)));
        assert!(matches!(*flight.state(), FlightState::Failed));
    }
}
