//! A small bounded pool of daemon-like worker threads for background refreshes.
//!
//! "Busy" means every worker is running a job: a new job is then refused (the caller
//! skips the refresh), never queued behind the others. Workers are plain Rust threads with
//! the main thread's stack size (a refresh runs the user's function; see `stack`):
//! they hold no Python state while idle, never keep the interpreter alive, and stop when
//! told to at interpreter exit. Pure Rust; jobs attach to the interpreter themselves.
//! std's lock and condvar, not parking_lot's: parking_lot keeps parked threads in a
//! process-wide table that a forked child could inherit mid-update.

use std::collections::VecDeque;
use std::thread;
use std::time::{Duration, Instant};

use std::sync::{Condvar, Mutex, MutexGuard};

use crate::engine::fork_fresh::ForkFresh;

pub type Job = Box<dyn FnOnce() + Send>;

pub struct Pool {
    max_workers: usize,
    state: Mutex<PoolState>,
    work: Condvar,
    /// Signalled when a job ends, for `stop` to wait on.
    job_done: Condvar,
}

#[derive(Default)]
struct PoolState {
    threads: usize,
    idle: usize,
    running: usize,
    queue: VecDeque<Job>,
    stopping: bool,
}

impl Pool {
    pub const fn new(max_workers: usize) -> Self {
        Pool {
            max_workers,
            state: Mutex::new(PoolState {
                threads: 0,
                idle: 0,
                running: 0,
                queue: VecDeque::new(),
                stopping: false,
            }),
            work: Condvar::new(),
            job_done: Condvar::new(),
        }
    }

    /// The state; a panic cannot leave it half-updated, so a poisoned lock is used as is.
    fn lock(&self) -> MutexGuard<'_, PoolState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Hands `job` to an idle worker (starting one if the pool is not full). When every
    /// worker is busy or the pool is stopping, the job is handed back, not queued.
    pub fn try_submit(&'static self, job: Job) -> Result<(), Job> {
        let mut state = self.lock();
        if state.stopping {
            return Err(job);
        }
        if state.idle > state.queue.len() {
            state.queue.push_back(job);
            self.work.notify_one();
            return Ok(());
        }
        if state.threads >= self.max_workers {
            return Err(job);
        }
        state.threads += 1;
        state.queue.push_back(job);
        drop(state);
        let spawned = thread::Builder::new()
            .name("fastcache-refresh".into())
            .stack_size(crate::engine::stack::own_thread_stack_size())
            .spawn(move || self.work_loop());
        if spawned.is_err() {
            let mut state = self.lock();
            state.threads -= 1;
            return state.queue.pop_back().map_or(Ok(()), Err);
        }
        Ok(())
    }

    fn work_loop(&self) {
        let mut state = self.lock();
        loop {
            if state.stopping {
                break;
            }
            if let Some(job) = state.queue.pop_front() {
                state.running += 1;
                drop(state);
                job();
                state = self.lock();
                state.running -= 1;
                self.job_done.notify_all();
                continue;
            }
            state.idle += 1;
            state = self.work.wait(state).unwrap_or_else(|p| p.into_inner());
            state.idle -= 1;
        }
        state.threads -= 1;
    }

    /// Stops accepting jobs, lets idle workers end, and waits up to `grace` for running
    /// jobs to finish (at interpreter exit, so none is half-way through Python when the
    /// interpreter goes). Returns the jobs that were queued but never started, for the
    /// caller to drop where it is safe to.
    pub fn stop(&self, grace: Duration) -> Vec<Job> {
        let mut state = self.lock();
        state.stopping = true;
        let unstarted = state.queue.drain(..).collect();
        self.work.notify_all();
        let give_up = Instant::now() + grace;
        while state.running > 0 && Instant::now() < give_up {
            let timeout = give_up.saturating_duration_since(Instant::now());
            state = match self.job_done.wait_timeout(state, timeout) {
                Ok((state, _)) => state,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
        unstarted
    }
}

/// Workers in the refresh pool: enough for refreshes to overlap without letting a burst of
/// stale keys start unbounded threads.
const REFRESH_WORKERS: usize = 4;

static REFRESH_POOL: ForkFresh<Pool> = ForkFresh::new(|| Pool::new(REFRESH_WORKERS));

/// The process' refresh pool.
pub fn refresh_pool() -> &'static Pool {
    REFRESH_POOL.get()
}

/// In a forked child: the parent's workers do not exist here, and its pool's lock and
/// queue may have been in use by them at the fork. The child starts a fresh pool; the old
/// one is left untouched (and its queued jobs, which hold parent-only state, unrun).
pub fn reset_refresh_pool_after_fork() {
    REFRESH_POOL.renew();
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{mpsc, Arc};
    use std::time::Duration;

    #[test]
    fn a_busy_pool_refuses_instead_of_queueing() {
        static POOL: Pool = Pool::new(2);
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let release_rx = Arc::new(Mutex::new(release_rx));
        let (started_tx, started_rx) = mpsc::channel::<()>();
        for _ in 0..2 {
            let rx = Arc::clone(&release_rx);
            let started = started_tx.clone();
            assert!(POOL
                .try_submit(Box::new(move || {
                    started.send(()).unwrap();
                    let _ = rx.lock().unwrap().recv();
                }))
                .is_ok());
        }
        for _ in 0..2 {
            started_rx.recv_timeout(Duration::from_secs(5)).unwrap();
        }
        assert!(POOL.try_submit(Box::new(|| {})).is_err());
        release_tx.send(()).unwrap();
        release_tx.send(()).unwrap();
        drop(POOL.stop(Duration::from_secs(5)));
    }

    #[test]
    fn idle_workers_are_reused() {
        static POOL: Pool = Pool::new(1);
        let done = Arc::new(AtomicUsize::new(0));
        for _ in 0..3 {
            let d = Arc::clone(&done);
            let (tx, rx) = mpsc::channel();
            assert!(POOL
                .try_submit(Box::new(move || {
                    d.fetch_add(1, Ordering::SeqCst);
                    tx.send(()).unwrap();
                }))
                .is_ok());
            rx.recv_timeout(Duration::from_secs(5)).unwrap();
            // Wait for the worker to go idle again before the next submit.
            while POOL.lock().idle == 0 {
                thread::yield_now();
            }
        }
        assert_eq!(done.load(Ordering::SeqCst), 3);
        assert_eq!(POOL.lock().threads, 1);
        drop(POOL.stop(Duration::from_secs(5)));
    }
}
