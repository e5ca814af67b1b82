//! `ResourceCache`: one cached function's entries, its in-flight computations and its
//! callbacks. (The registry that finds a function's cache again when its `def` is
//! re-executed is `registry.rs`.)
//!
//! Reentrancy rule (as in CPython's `_functoolsmodule.c`): a cache lock is held only for
//! table work. Python — the user's function, `validate`, `on_release`, a value's `__del__`
//! — runs after the lock is released: lookups are get → unlock → compute → relock → insert,
//! and values leaving the table are collected under the lock and released after it.
//! A lock that is busy is waited for detached from the interpreter.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use parking_lot::{Mutex, MutexGuard};
use pyo3::exceptions::PyException;
use pyo3::intern;
use pyo3::prelude::*;
use smallvec::SmallVec;

use crate::bindings::errors::CacheError;
use crate::bindings::exit_safe;
use crate::bindings::logging::{
    debug_enabled, log_exception, log_hit, log_inherited_drop, log_miss, log_release,
    removal_reason,
};
use crate::engine::clock::{self, Deadline, HitTime, Now};
use crate::engine::expiry_hint::ExpiryHint;
use crate::engine::flight::{self, Flight, FlightLabel, FlightState, Outcome};
use crate::engine::human::human_duration;
use crate::engine::key::{Key, KeyLike};
use crate::engine::key_table::KeyTable;
use crate::engine::process::{self, Generation};
use crate::engine::store::{LiveLookup, Lookup, RemovalCause, Removed, Store, Ttl};
use crate::engine::waits::{Participant, WaitGraph};

/// Takes a cache lock. Every cache lock is held only by attached threads and only for
/// table work (no Python, no waiting), so with the GIL an attached thread finds it free;
/// if it ever is busy, the thread steps out of the interpreter to let the holder finish
/// and tries again — it never blocks while attached, and never holds the lock detached.
///
/// That discipline is also what makes `fork` safe: the forking thread is attached and holds
/// none of these locks, so no thread holds one, or is queued on one, at the fork.
pub fn lock_attached<'a, T: Send>(py: Python<'_>, mutex: &'a Mutex<T>) -> MutexGuard<'a, T> {
    loop {
        if let Some(guard) = mutex.try_lock() {
            return guard;
        }
        crate::bindings::exit_safe::detach(py, std::thread::yield_now);
    }
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
    /// One set of entries per browser session (keys start with the session's field).
    pub session_scoped: bool,
}

pub struct Callbacks {
    pub validate: Option<Py<PyAny>>,
    pub on_release: Option<Py<PyAny>>,
}

/// A cached value, its replay record (see [`Served`]), and which process created it: only
/// that one releases it.
pub struct Stored {
    value: Py<PyAny>,
    replay: Option<Py<PyAny>>,
    created_in: Generation,
}

impl Stored {
    /// The cached object's identity, by which the store counts the entries holding it
    /// (`on_release` runs when the last of them leaves). The address is stable and unique
    /// while the store holds its reference.
    fn identity(&self) -> usize {
        self.value.as_ptr() as usize
    }

    fn new(py: Python<'_>, served: &Served) -> Self {
        Stored {
            value: served.value.clone_ref(py),
            replay: served.replay.as_ref().map(|r| r.clone_ref(py)),
            created_in: process::generation(),
        }
    }
}

/// What a caller gets: the value and, when computing it wrote app elements (inside a
/// Streamlit script run), the record that replays them. Only the value goes to callers,
/// `validate` and `on_release`.
pub struct Served {
    pub value: Py<PyAny>,
    pub replay: Option<Py<PyAny>>,
}

impl Served {
    pub fn plain(value: Py<PyAny>) -> Self {
        Served {
            value,
            replay: None,
        }
    }

    fn clone_ref(&self, py: Python<'_>) -> Self {
        Served {
            value: self.value.clone_ref(py),
            replay: self.replay.as_ref().map(|r| r.clone_ref(py)),
        }
    }
}

/// A computation under way, as the in-flight table keeps it.
struct InFlight {
    /// The computation's id (process-wide, never reused: `flight::next_id`).
    id: u64,
    /// Who computes it, and on which thread (a task's event loop thread).
    owner: Participant,
    thread: ThreadId,
    /// What waiters wait on: made when the first one comes (most computations never have
    /// a waiter, and then make none), at once for a background refresh.
    flight: Option<Arc<Flight<Served>>>,
    /// The asyncio task computing it, for an async function (None: the flight's thread),
    /// held so the task lives while it owns the flight: its address is its identity in
    /// waits and re-entrancy checks, and must not be reused meanwhile.
    owner_task: Option<Py<PyAny>>,
    /// A background refresh (its id), rather than a caller's computation: a clear takes
    /// it out of the table, since its value will be discarded.
    refresh: Option<u64>,
}

impl InFlight {
    /// The flight to wait on, made now if nobody waited before (labelled with the
    /// function and `key`, for messages).
    fn flight(&mut self, function: &Arc<str>, key: &[u8]) -> Arc<Flight<Served>> {
        let (id, owner, thread) = (self.id, self.owner, self.thread);
        Arc::clone(self.flight.get_or_insert_with(|| {
            let label = FlightLabel {
                function: Arc::clone(function),
                key: Key::from_bytes(key),
            };
            Arc::new(Flight::with_id(id, owner, thread, label))
        }))
    }

    /// Ends the computation for whoever waits (if anyone does).
    fn finish(&self, state: impl FnOnce() -> FlightState<Served>) {
        if let Some(flight) = &self.flight {
            flight.finish(state());
        }
    }
}

struct CacheState {
    store: Store<Stored>,
    /// Hashes with the store's hasher: a miss hashes its key once for both.
    inflight: KeyTable<InFlight>,
    /// Keys with a background refresh reserved or running, and its id (a clear removes the
    /// mark, so a refresh finding its mark gone knows it was discarded).
    refreshing: HashMap<Key, u64, ahash::RandomState>,
    /// The next refresh id.
    next_refresh: u64,
    /// Keys whose last background refresh failed: not retried before the instant given.
    refresh_cooldown: HashMap<Key, Instant, ahash::RandomState>,
    /// The current `validate`/`on_release`, swapped when the same function is decorated
    /// again, so the newest closures are used. Here, under the state lock, so a write that
    /// pushes values out takes them in the same lock round trip.
    callbacks: Arc<Callbacks>,
}

pub struct ResourceCache {
    /// `qualname` of the function, for logs.
    name: String,
    /// The same, shared by this cache's flights (it names them in a waiting cycle).
    label: Arc<str>,
    options: CacheOptions,
    /// How long a value is fresh; with background refresh the store keeps it for twice
    /// that, serving it stale (and refreshing it) in the second half.
    fresh_for: Ttl,
    state: Mutex<CacheState>,
    hits: AtomicU64,
    misses: AtomicU64,
    created: Instant,
    /// No entry expires before this (lowered by every write, set exactly by the reaper,
    /// both under the state lock): the reaper skips the cache, lock untouched, until then.
    next_expiry: ExpiryHint,
}

thread_local! {
    /// The (cache, key) pairs this thread is validating right now: a call for one of them
    /// from inside `validate` could only loop or wait for itself.
    static VALIDATING: RefCell<Vec<(usize, Key)>> = const { RefCell::new(Vec::new()) };
}

/// Marks (cache, key) as being validated on this thread for its lifetime.
struct ValidatingMark;

impl ValidatingMark {
    fn enter(cache: usize, key: &[u8]) -> Self {
        VALIDATING.with_borrow_mut(|active| active.push((cache, Key::from_bytes(key))));
        ValidatingMark
    }
}

impl Drop for ValidatingMark {
    fn drop(&mut self) {
        VALIDATING.with_borrow_mut(|active| {
            active.pop();
        });
    }
}

fn is_validating(cache: usize, key: &[u8]) -> bool {
    VALIDATING.with_borrow(|active| {
        active
            .iter()
            .any(|(c, k)| *c == cache && k.as_bytes() == key)
    })
}

/// Why a call computes, for the debug log.
#[derive(Clone, Copy)]
enum MissReason {
    Absent,
    Expired,
    Invalid,
}

impl MissReason {
    /// The record's `fastcache_reason`.
    fn as_str(self) -> &'static str {
        match self {
            MissReason::Absent => "new key",
            MissReason::Expired => "expired",
            MissReason::Invalid => "validate failed",
        }
    }
}

/// Between a waiter's checks for Ctrl-C.
const WAIT_SLICE: Duration = Duration::from_millis(50);

/// How long a key whose background refresh failed keeps being served stale before the
/// next refresh is tried.
const REFRESH_COOLDOWN: Duration = Duration::from_secs(60);

/// What a lookup found for the caller to do.
pub enum Claim {
    /// A (validated) value; with a ticket when it is stale and the caller should start
    /// its background refresh.
    Hit {
        value: Py<PyAny>,
        /// The elements to replay (see [`Served`]).
        replay: Option<Py<PyAny>>,
        refresh: Option<RefreshTicket>,
    },
    /// Another caller is computing it: wait for that flight, then look again. The wait is
    /// registered (no cycle found) until the registration is dropped.
    Wait(WaitRegistration),
    /// The caller computes it and must hand the outcome to `complete` or `abandon`.
    Own(OwnerSlot),
}

/// What [`ResourceCache::quick_claim`] settled.
pub enum QuickClaim<'py> {
    Hit(Bound<'py, PyAny>),
    /// The caller computes the key: hand the slot to `resolve`.
    Own(OwnerSlot),
    Other,
}

/// The right (and duty) to compute one key (the key is handed back to `complete` or
/// `abandon` with it).
pub struct OwnerSlot {
    /// The computation's id in the in-flight table.
    id: u64,
    /// The in-flight table's key (its bytes shared, not copied): a synchronous owner keeps
    /// this rather than the call's own encoding, which is larger and dies with the lookup.
    key: Key,
}

impl OwnerSlot {
    pub fn flight_id(&self) -> u64 {
        self.id
    }

    /// The key this slot computes (the in-flight table's copy).
    pub fn key(&self) -> &Key {
        &self.key
    }
}

/// Which refresh of which key: handed back to give an unused refresh up.
#[derive(Clone)]
pub struct RefreshMark {
    key: Key,
    id: u64,
}

/// The right to refresh one stale key in the background, with the stale value it
/// replaces (a refresh that returns that very object must not release it).
pub struct RefreshTicket {
    mark: RefreshMark,
    stale: Py<PyAny>,
}

impl RefreshTicket {
    pub fn mark(&self) -> RefreshMark {
        self.mark.clone()
    }
}

/// A background refresh under way: its flight is what callers arriving after `2·ttl` wait
/// for, so a key never has two computations at once.
pub struct RefreshRun {
    ticket: RefreshTicket,
    flight: Arc<Flight<Served>>,
}

impl RefreshRun {
    pub fn flight_id(&self) -> u64 {
        self.flight.id()
    }
}

impl ResourceCache {
    pub fn new(name: String, options: CacheOptions, callbacks: Callbacks) -> Self {
        let fresh_for = Ttl::from_secs(options.ttl_secs);
        let keep_for = if options.background_refresh {
            Ttl::from_secs(options.ttl_secs * 2.0)
        } else {
            fresh_for
        };
        let hasher = ahash::RandomState::new();
        let mut store = Store::with_hasher(keep_for, options.max_entries, hasher.clone());
        // The in-flight table hashes as the store does: a miss hashes its key once.
        if callbacks.on_release.is_some() {
            store.track_sharing(Stored::identity);
        }
        ResourceCache {
            label: Arc::from(name.as_str()),
            name,
            fresh_for,
            state: Mutex::new(CacheState {
                store,
                inflight: KeyTable::with_hasher(hasher),
                refreshing: HashMap::default(),
                next_refresh: 0,
                refresh_cooldown: HashMap::default(),
                callbacks: Arc::new(callbacks),
            }),
            options,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            created: Instant::now(),
            next_expiry: ExpiryHint::never(),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn options(&self) -> &CacheOptions {
        &self.options
    }

    /// The time a lookup judges expiry by: the coarse clock, the exact one only for a
    /// deadline within a few ticks (`engine::clock`). Without a ttl nothing ever compares
    /// it, so a hit skips the clock read altogether.
    fn lookup_time(&self) -> HitTime {
        if self.expires() {
            HitTime::read()
        } else {
            HitTime::unused()
        }
    }

    /// The time a value is written at (its ttl counts from it): the exact clock.
    fn write_time(&self) -> Instant {
        if self.expires() {
            clock::exact()
        } else {
            self.created
        }
    }

    /// How long an entry written at `written` stays fresh from `now` (None without a ttl).
    fn expires_in(&self, written: Instant, now: Instant) -> Option<Duration> {
        match self.fresh_for {
            Ttl::Never => None,
            Ttl::After(ttl) => Some(ttl.saturating_sub(now.saturating_duration_since(written))),
        }
    }

    fn id(&self) -> usize {
        self as *const Self as usize
    }

    fn callbacks(&self, py: Python<'_>) -> Arc<Callbacks> {
        Arc::clone(&lock_attached(py, &self.state).callbacks)
    }

    /// Installs the callbacks of a newer decoration; the old ones are dropped unlocked.
    pub fn replace_callbacks(&self, py: Python<'_>, callbacks: Callbacks) {
        let mut state = lock_attached(py, &self.state);
        if callbacks.on_release.is_some() {
            state.store.track_sharing(Stored::identity);
        }
        let old = std::mem::replace(&mut state.callbacks, Arc::new(callbacks));
        drop(state);
        drop(old);
    }

    /// `(hits, misses, current size)`.
    pub fn stats(&self, py: Python<'_>) -> (u64, u64, usize) {
        let state = lock_attached(py, &self.state);
        (
            self.hits.load(Ordering::Relaxed),
            self.misses.load(Ordering::Relaxed),
            state.store.len(),
        )
    }

    /// Looks `key` up for a caller: a hit, a flight to wait for, or the duty to compute.
    /// `task` is the asyncio task of an async caller (re-entrancy is judged per task
    /// there, per thread otherwise). A key stored from here keeps `held`'s pins.
    ///
    /// `inside` lists the flights (by id) that the caller's ancestors are computing: an
    /// asyncio task started inside a computation inherits that computation's context, and
    /// asking for the very key it computes could only wait for its own ancestor.
    pub fn claim(
        &self,
        py: Python<'_>,
        held: &impl KeyLike,
        task: Option<&Bound<'_, PyAny>>,
        inside: &[u64],
    ) -> Result<Claim, CacheError> {
        let key = held.bytes();
        let me = participant(task);
        let mut reason = MissReason::Absent;
        loop {
            let mut state = lock_attached(py, &self.state);
            let now = self.lookup_time();
            let mut expired = None;
            match state.store.get(key, now) {
                Lookup::Hit(stored, written) => {
                    let value = stored.value.clone_ref(py);
                    let replay = stored.replay.as_ref().map(|r| r.clone_ref(py));
                    let stale =
                        self.options.background_refresh && self.fresh_for.is_expired(written, now);
                    let refresh = if stale {
                        start_refresh(&mut state, held, now)
                    } else {
                        None
                    };
                    drop(state);
                    let refresh = refresh.map(|mark| RefreshTicket {
                        mark,
                        stale: value.clone_ref(py),
                    });
                    match self.validated(py, key, value) {
                        Ok(Some(value)) => {
                            count(&self.hits);
                            if debug_enabled() {
                                let expires_in = self.expires_in(written, clock::exact());
                                log_hit(py, &self.name, stale, expires_in);
                            }
                            return Ok(Claim::Hit {
                                value,
                                replay,
                                refresh,
                            });
                        }
                        other => {
                            if let Some(ticket) = refresh {
                                self.cancel_refresh(py, &ticket.mark);
                            }
                            if other?.is_none() {
                                reason = MissReason::Invalid;
                            }
                            continue;
                        }
                    }
                }
                Lookup::Expired(gone) => {
                    expired = Some(gone);
                    reason = MissReason::Expired;
                }
                Lookup::Missing => {}
            }

            if let Some(running) = state.inflight.get_mut(key) {
                let refreshing_task = refresh_task(py, running);
                let flight = running.flight(&self.label, key);
                drop(state);
                self.release_expired(py, expired)?;
                if let Some(task) = refreshing_task {
                    if self.take_over_stalled_refresh(py, key, &flight, task) {
                        continue;
                    }
                }
                if flight.owner() == me {
                    return Err(CacheError::Reentrant {
                        func: self.name.clone(),
                    });
                }
                if inside.contains(&flight.id()) {
                    return Err(CacheError::ReentrantTask {
                        func: self.name.clone(),
                    });
                }
                return Ok(Claim::Wait(WaitRegistration::begin(py, me, flight)?));
            }

            let hash = state.store.hash_of(key);
            let slot = self.start_flight(&mut state, held, hash, me, task);
            drop(state);
            if let Err(interrupt) = self.release_expired(py, expired) {
                self.abandon(py, slot);
                return Err(interrupt.into());
            }
            count(&self.misses);
            if debug_enabled() {
                log_miss(py, &self.name, reason.as_str());
            }
            return Ok(Claim::Own(slot));
        }
    }

    /// Inserts a flight for `held` (`hash`: its hash by the cache's hasher) owned by `me`
    /// (and `task`): the caller computes the key. One copy of the key serves the table, the
    /// flight's label and the slot.
    fn start_flight(
        &self,
        state: &mut CacheState,
        held: &impl KeyLike,
        hash: u64,
        me: Participant,
        task: Option<&Bound<'_, PyAny>>,
    ) -> OwnerSlot {
        let id = flight::next_id();
        let key = held.to_key();
        state.inflight.insert_hashed(
            hash,
            key.clone(),
            InFlight {
                id,
                owner: me,
                thread: current_thread(),
                flight: None,
                owner_task: task.map(|t| t.clone().unbind()),
                refresh: None,
            },
        );
        OwnerSlot { id, key }
    }

    /// Whether [`Self::quick_claim`] may settle a call: not when a hit needs more than the
    /// value (`validate` to ask, a background refresh to judge, a debug record to write).
    #[inline]
    pub fn quick_claims(&self) -> bool {
        !(self.options.has_validate || self.options.background_refresh || debug_enabled())
    }

    /// The duty to compute `slot`'s key in `scope`, for an owner that needs no scope begun
    /// (see [`Self::resolve`]).
    pub fn owe<S: MissScope>(&self, slot: OwnerSlot, scope: S) -> Owed<'_, S> {
        Owed {
            cache: self,
            slot: Some(slot),
            scope: Some(scope),
        }
    }

    /// A lookup that settles the common cases in one lock round trip: a live entry that
    /// needs nothing but its value (no `validate` to ask, no background refresh to judge,
    /// nothing to replay), or a missing key nobody computes yet, which this thread then
    /// owns. Anything else (an expired entry to release, a computation to wait for) is
    /// [`QuickClaim::Other`], with nothing changed: the caller takes [`Self::resolve`].
    /// Makes no `Py` handle (the value comes back bound), so it may run before PyO3 is
    /// told the thread is attached (see the wrapper's entries).
    ///
    /// Only for a cache that [`Self::quick_claims`] (the caller asks first, before writing
    /// the key; debug logging switched on meanwhile starts with the next call).
    pub fn quick_claim<'py>(&self, py: Python<'py>, held: &impl KeyLike) -> QuickClaim<'py> {
        debug_assert!(!self.options.has_validate && !self.options.background_refresh);
        let now = self.lookup_time();
        let mut state = lock_attached(py, &self.state);
        let hit = match state.store.get_live(held.bytes(), now) {
            LiveLookup::Hit(stored, _) if stored.replay.is_none() => {
                Some(stored.value.bind(py).clone())
            }
            LiveLookup::Missing => None,
            _ => return QuickClaim::Other,
        };
        if let Some(value) = hit {
            drop(state);
            count(&self.hits);
            return QuickClaim::Hit(value);
        }
        self.quick_own(state, held)
    }

    /// [`Self::quick_claim`]'s miss: the key becomes this thread's to compute unless
    /// another caller computes it already. Out of line, so that the hit path the caller
    /// inlines keeps its registers.
    #[inline(never)]
    fn quick_own<'py>(
        &self,
        mut state: MutexGuard<'_, CacheState>,
        held: &impl KeyLike,
    ) -> QuickClaim<'py> {
        // One hash serves the in-flight table and the write that ends the computation.
        let hash = state.store.hash_of(held.bytes());
        if !state.inflight.is_empty() && state.inflight.get_hashed(held.bytes(), hash).is_some() {
            return QuickClaim::Other;
        }
        let slot = self.start_flight(&mut state, held, hash, participant(None), None);
        drop(state);
        count(&self.misses);
        QuickClaim::Own(slot)
    }

    /// The synchronous call path up to the user's function: the cached value for `key`
    /// (with its replay record), or the duty to compute it ([`Resolved::Compute`]), which
    /// the caller discharges through [`Owed::finish`]. Other callers of the key wait
    /// (detached) and share the value; a failed computation is never cached and the next
    /// waiter tries again. `on_stale` receives the ticket of a stale hit whose background
    /// refresh the caller should start.
    ///
    /// The lookup and the computation are two steps, not one call taking the function, so
    /// that nothing of the lookup stays on the stack while the function runs: a cached
    /// function that calls itself nests one computation per level, and its depth is bound
    /// by what each level leaves on the stack.
    ///
    /// `begin_miss` runs once, at the first lookup that is not a hit (before waiting for
    /// another caller or computing): the scope it returns (inside a Streamlit app, the
    /// spinner and the element recorder) goes with the duty to compute, or is closed when
    /// the value came from another caller, whatever the outcome; while waiting, its
    /// `waiting` runs between slices. A hit never calls it. `owned`: the key's flight, when
    /// [`Self::quick_claim`] already made this caller its owner.
    pub fn resolve<S: MissScope>(
        &self,
        py: Python<'_>,
        key: &impl KeyLike,
        owned: Option<OwnerSlot>,
        begin_miss: impl Fn() -> PyResult<S>,
        on_stale: impl FnOnce(RefreshTicket),
    ) -> Result<Resolved<'_, S>, CacheError> {
        let mut scope: Option<S> = None;
        let outcome = self.look_up(py, key, owned, &mut scope, begin_miss, on_stale);
        let served = match outcome {
            Ok(Looked::Own(slot)) => {
                return Ok(Resolved::Compute(Owed {
                    cache: self,
                    slot: Some(slot),
                    scope,
                }));
            }
            Ok(Looked::Served(served)) => Ok(served),
            Err(err) => Err(err),
        };
        // A hit built no scope. A miss closes its own whatever the outcome; an error from
        // closing (a stop requested meanwhile, which Streamlit raises as its spinner goes)
        // reaches the caller when the miss itself succeeded, as with Streamlit's spinner.
        close_scope(py, scope, served).map(Resolved::Served)
    }

    /// [`Self::resolve`] up to closing the miss scope, which it leaves in `scope`.
    fn look_up<S: MissScope>(
        &self,
        py: Python<'_>,
        key: &impl KeyLike,
        mut owned: Option<OwnerSlot>,
        scope: &mut Option<S>,
        begin_miss: impl Fn() -> PyResult<S>,
        on_stale: impl FnOnce(RefreshTicket),
    ) -> Result<Looked, CacheError> {
        let enter = |scope: &mut Option<S>| -> PyResult<()> {
            if scope.is_none() {
                *scope = Some(begin_miss()?);
            }
            Ok(())
        };
        loop {
            let claim = match owned.take() {
                Some(slot) => Claim::Own(slot),
                None => self.claim(py, key, None, &[])?,
            };
            match claim {
                Claim::Hit {
                    value,
                    replay,
                    refresh,
                } => {
                    if let Some(ticket) = refresh {
                        on_stale(ticket);
                    }
                    return Ok(Looked::Served(Served { value, replay }));
                }
                Claim::Wait(waiting) => {
                    if let Err(err) = enter(scope) {
                        drop(waiting);
                        return Err(err.into());
                    }
                    let in_scope = scope.as_ref().expect("entered just above");
                    let outcome = wait_for_flight(py, waiting.flight(), || in_scope.waiting(py));
                    drop(waiting);
                    if let Some(served) = outcome? {
                        count(&self.hits);
                        return Ok(Looked::Served(served));
                    }
                }
                Claim::Own(slot) => {
                    if let Err(err) = enter(scope) {
                        // The flight fails, waiters retry.
                        self.abandon(py, slot);
                        return Err(err.into());
                    }
                    return Ok(Looked::Own(slot));
                }
            }
        }
    }

    /// Stores the value an owner computed (with its replay record) and wakes its waiters.
    /// Returns it for the owner's caller. A clear while it was computing does not stop it
    /// from being stored: the clear removed what was cached at that moment, and every
    /// caller of this computation gets a value that is still cached (never one already
    /// released). `Err` only for a Ctrl-C or `SystemExit` from `on_release` of a value the
    /// write pushed out (the new value is stored all the same).
    pub fn complete(&self, py: Python<'_>, slot: OwnerSlot, served: Served) -> PyResult<Served> {
        // Usually one value leaves (an eviction) or none: kept inline.
        let mut removed: SmallVec<[Removed<Stored>; 2]> = SmallVec::new();
        let (running, hash, mut state) = self.take_inflight(py, &slot);
        let stored = Stored::new(py, &served);
        let now = self.write_time();
        // The table's copy of the key moves into the store (the slot's is the same bytes).
        let (key, running) = match running {
            Some((table_key, running)) => (table_key, Some(running)),
            None => (slot.key, None),
        };
        state
            .store
            .insert_hashed(key, hash, stored, now, &mut removed);
        if self.expires() {
            self.noted_write(&state, now);
        }
        // The callbacks are needed only to call `on_release` or to log: not for values
        // that are only let go of.
        let callbacks = (!removed.is_empty()
            && (state.callbacks.on_release.is_some() || debug_enabled()))
        .then(|| Arc::clone(&state.callbacks));
        drop(state);
        // Waiters, if any came, get the value (with no waiter there is no flight).
        if let Some(running) = running {
            running.finish(|| FlightState::Done(served.clone_ref(py)));
        }
        match callbacks {
            Some(callbacks) => self.release_while(py, removed, &callbacks, || true)?,
            None => {
                for gone in removed {
                    exit_safe::drop_ref(py, gone.value.value);
                    if let Some(replay) = gone.value.replay {
                        exit_safe::drop_ref(py, replay);
                    }
                }
            }
        }
        Ok(served)
    }

    /// Gives a computation up (it raised, or was cancelled): waiters wake and retry.
    pub fn abandon(&self, py: Python<'_>, slot: OwnerSlot) {
        let (running, _, state) = self.take_inflight(py, &slot);
        drop(state);
        if let Some((_, running)) = running {
            running.finish(|| FlightState::Failed);
        }
    }

    /// Takes the owner's computation of the slot's key out of the in-flight table, with the
    /// table's copy of the key and its hash (which the store shares, for the write that
    /// follows); the state stays locked for the caller.
    fn take_inflight(
        &self,
        py: Python<'_>,
        slot: &OwnerSlot,
    ) -> (Option<(Key, InFlight)>, u64, MutexGuard<'_, CacheState>) {
        let mut state = lock_attached(py, &self.state);
        let hash = state.inflight.hash_of(&slot.key);
        // One look: taken out, and put back in the rare case it is another flight (ours
        // was discarded, and another caller has started computing the key since).
        let mine = match state.inflight.remove_entry_hashed(&slot.key, hash) {
            Some(entry) if entry.1.id == slot.id => Some(entry),
            Some((key, other)) => {
                state.inflight.insert_hashed(hash, key, other);
                None
            }
            None => None,
        };
        (mine, hash, state)
    }

    /// Runs `validate` (if any) on a hit, outside every lock. `None` when it rejected the
    /// value, which has then been removed and released.
    fn validated(
        &self,
        py: Python<'_>,
        key: &[u8],
        value: Py<PyAny>,
    ) -> Result<Option<Py<PyAny>>, CacheError> {
        // Decided per cache (a re-decoration that adds or drops validate replaces the
        // cache), so a hit without validate takes no lock for the callbacks.
        if !self.options.has_validate {
            return Ok(Some(value));
        }
        let callbacks = self.callbacks(py);
        let Some(validate) = &callbacks.validate else {
            return Ok(Some(value));
        };
        if is_validating(self.id(), key) {
            return Err(CacheError::Reentrant {
                func: self.name.clone(),
            });
        }
        let verdict = {
            let _mark = ValidatingMark::enter(self.id(), key);
            exit_safe::call1(validate.bind(py), value.bind(py))?.is_truthy()?
        };
        if verdict {
            return Ok(Some(value));
        }
        let removed =
            lock_attached(py, &self.state)
                .store
                .remove_if(key, RemovalCause::Invalid, |stored| stored.value.is(&value));
        drop(value);
        if let Some(stale) = removed {
            self.release(py, vec![stale])?;
        }
        Ok(None)
    }

    /// Starts a refresh on the thread (or asyncio task) that will run it: the refresh
    /// becomes the key's computation, which callers finding the entry expired wait for.
    /// `None` when there is nothing to do: a clear discarded it before it started, or a
    /// caller is already computing the key (the entry expired meanwhile).
    pub fn begin_refresh(
        &self,
        py: Python<'_>,
        ticket: RefreshTicket,
        task: Option<&Bound<'_, PyAny>>,
    ) -> Option<RefreshRun> {
        let mut state = lock_attached(py, &self.state);
        let key = &ticket.mark.key;
        if state.refreshing.get(key) != Some(&ticket.mark.id) {
            return None;
        }
        if state.inflight.contains_key(key) {
            state.refreshing.remove(key);
            return None;
        }
        let label = FlightLabel {
            function: Arc::clone(&self.label),
            key: key.clone(),
        };
        let (owner, thread) = (participant(task), current_thread());
        let flight = Arc::new(Flight::new(owner, thread, label));
        state.inflight.insert(
            key.clone(),
            InFlight {
                id: flight.id(),
                owner,
                thread,
                flight: Some(Arc::clone(&flight)),
                owner_task: task.map(|t| t.clone().unbind()),
                refresh: Some(ticket.mark.id),
            },
        );
        drop(state);
        Some(RefreshRun { ticket, flight })
    }

    /// Ends a background refresh: stores the new value (releasing the one it replaces,
    /// unless the refresh returned that very object) and hands it to callers waiting for
    /// the key. A clear meanwhile discarded the refresh: its value is released instead
    /// (unless it is the stale object the clear released already). On failure the stale
    /// value stays and the key is not refreshed again for a minute.
    pub fn finish_refresh(&self, py: Python<'_>, run: RefreshRun, outcome: PyResult<Py<PyAny>>) {
        let RefreshRun { ticket, flight } = run;
        let RefreshTicket { mark, stale } = ticket;
        let mut removed = Vec::new();
        let mut state = lock_attached(py, &self.state);
        let running = match state.inflight.get(&mark.key) {
            Some(running) if running.id == flight.id() => state.inflight.remove(&mark.key),
            _ => None,
        };
        let current = running.is_some();
        if state.refreshing.get(&mark.key) == Some(&mark.id) {
            state.refreshing.remove(&mark.key);
        }
        let (finished, failure) = match outcome {
            Ok(value) if current => {
                let refreshed = Served::plain(value.clone_ref(py));
                let stored = Stored::new(py, &refreshed);
                let now = clock::exact();
                state.store.insert(mark.key, stored, now, &mut removed);
                self.noted_write(&state, now);
                // A refresh returning the object already cached (a singleton, a pooled
                // client) replaced nothing: that object is still being served. (With an
                // `on_release`, the store marks it still stored anyway; this keeps the
                // debug log from recording a release.)
                removed.retain(|gone| !gone.value.value.is(&value));
                (Some(FlightState::Done(refreshed)), None)
            }
            Ok(value) => {
                // The stale object was released by the clear, unless another key still
                // stores it (then the check below finds it).
                let already_released = value.is(&stale);
                let unstored = Stored::new(py, &Served::plain(value));
                let still_stored = state.store.holds_same(&unstored)
                    || state
                        .store
                        .peek(&mark.key)
                        .is_some_and(|stored| stored.value.is(&unstored.value));
                if !already_released && !still_stored {
                    removed.push(Removed::gone(unstored, RemovalCause::Cleared));
                }
                (None, None)
            }
            Err(err) => {
                if current {
                    state
                        .refresh_cooldown
                        .insert(mark.key, Instant::now() + REFRESH_COOLDOWN);
                }
                (current.then_some(FlightState::Failed), Some(err))
            }
        };
        drop(state);
        drop(running);
        // A flight a clear took out of the table was finished by that clear.
        if let Some(finished) = finished {
            flight.finish(finished);
        }
        drop(stale);
        if let Some(err) = failure {
            log_exception(
                py,
                "refresh",
                &self.name,
                "raised",
                format!(
                    "background refresh of '{}' raised; the stale value keeps being served \
                     and the refresh is retried in {}",
                    self.name,
                    human_duration(REFRESH_COOLDOWN)
                ),
                &err,
            );
        }
        self.release_in_background(py, removed);
    }

    /// Ends a refresh that never got its value (its task was cancelled, its event loop
    /// closed): the stale value stays, and the next stale hit may try again at once.
    pub fn abandon_refresh(&self, py: Python<'_>, run: RefreshRun) {
        let RefreshRun { ticket, flight } = run;
        let mut state = lock_attached(py, &self.state);
        let key = &ticket.mark.key;
        let running = match state.inflight.get(key) {
            Some(running) if running.id == flight.id() => state.inflight.remove(key),
            _ => None,
        };
        if state.refreshing.get(key) == Some(&ticket.mark.id) {
            state.refreshing.remove(key);
        }
        drop(state);
        if running.is_some() {
            flight.finish(FlightState::Failed);
        }
        drop((running, ticket));
    }

    /// Whether `flight` is a background refresh run by an asyncio task, which only makes
    /// progress while its event loop runs.
    pub fn is_async_refresh(
        &self,
        py: Python<'_>,
        key: &[u8],
        flight: &Arc<Flight<Served>>,
    ) -> bool {
        let state = lock_attached(py, &self.state);
        let found = state.inflight.get(key);
        found.is_some_and(|running| {
            running.id == flight.id() && running.refresh.is_some() && running.owner_task.is_some()
        })
    }

    /// A refresh running as a task of an event loop that no longer runs (closed, or
    /// stopped with the task pending) would keep every caller of the key waiting: it is
    /// taken out of the table and failed, so they compute the key themselves (should the
    /// loop run again, the refresh finds itself discarded). True when it was.
    pub fn take_over_if_stalled(
        &self,
        py: Python<'_>,
        key: &[u8],
        flight: &Arc<Flight<Served>>,
    ) -> bool {
        let task = {
            let state = lock_attached(py, &self.state);
            match state.inflight.get(key) {
                Some(running) if running.id == flight.id() => refresh_task(py, running),
                _ => None,
            }
        };
        task.is_some_and(|task| self.take_over_stalled_refresh(py, key, flight, task))
    }

    fn take_over_stalled_refresh(
        &self,
        py: Python<'_>,
        key: &[u8],
        flight: &Arc<Flight<Served>>,
        task: Py<PyAny>,
    ) -> bool {
        let loop_runs = task
            .bind(py)
            .call_method0(intern!(py, "get_loop"))
            .and_then(|event_loop| event_loop.call_method0(intern!(py, "is_running")))
            .and_then(|running| running.is_truthy())
            .unwrap_or(true);
        drop(task);
        if loop_runs {
            return false;
        }
        let taken = {
            let mut state = lock_attached(py, &self.state);
            match state.inflight.get(key) {
                Some(running) if running.id == flight.id() => {
                    let taken = state.inflight.remove(key);
                    if let Some(id) = taken.as_ref().and_then(|t| t.refresh) {
                        if state.refreshing.get(key) == Some(&id) {
                            state.refreshing.remove(key);
                        }
                    }
                    taken
                }
                _ => None,
            }
        };
        let Some(taken) = taken else {
            return false;
        };
        taken.finish(|| FlightState::Failed);
        drop(taken);
        true
    }

    /// Gives a refresh up before it started (the worker pool was busy, validate failed).
    pub fn cancel_refresh(&self, py: Python<'_>, mark: &RefreshMark) {
        let mut state = lock_attached(py, &self.state);
        if state.refreshing.get(&mark.key) == Some(&mark.id) {
            state.refreshing.remove(&mark.key);
        }
    }

    fn release_expired(&self, py: Python<'_>, expired: Option<Removed<Stored>>) -> PyResult<()> {
        match expired {
            Some(gone) => self.release(py, vec![gone]),
            None => Ok(()),
        }
    }

    /// Hands values that left the cache to `on_release`, one by one, with no lock held.
    /// An entry that left while another entry still stores the same object is only let go
    /// of: the object is released when its last entry leaves.
    /// An `Exception` there is logged and never stops the others; a `BaseException` that
    /// is not one (Ctrl-C, `SystemExit`) is returned, for the caller to raise, once every
    /// other value has been released.
    pub fn release(&self, py: Python<'_>, removed: Vec<Removed<Stored>>) -> PyResult<()> {
        if removed.is_empty() {
            return Ok(());
        }
        let callbacks = self.callbacks(py);
        self.release_while(py, removed, &callbacks, || true)
    }

    /// [`ResourceCache::release`] where there is no caller to raise to (a background
    /// refresh, the reaper): a Ctrl-C or `SystemExit` from `on_release` is logged too.
    pub fn release_in_background(&self, py: Python<'_>, removed: Vec<Removed<Stored>>) {
        self.release_in_background_while(py, removed, || true);
    }

    /// [`ResourceCache::release_in_background`], stopping (dropping the rest without
    /// `on_release`) as soon as `go_on` says so: the reaper stops this way at exit.
    pub fn release_in_background_while(
        &self,
        py: Python<'_>,
        removed: Vec<Removed<Stored>>,
        go_on: impl Fn() -> bool,
    ) {
        if removed.is_empty() {
            return;
        }
        let callbacks = self.callbacks(py);
        if let Err(interrupt) = self.release_while(py, removed, &callbacks, go_on) {
            log_exception(
                py,
                "release",
                &self.name,
                "raised",
                format!(
                    "on_release of '{}' raised in a background thread, where there is no \
                     caller to raise it to",
                    self.name
                ),
                &interrupt,
            );
        }
    }

    /// Releases `removed` with `callbacks` (the cache's current ones).
    fn release_while(
        &self,
        py: Python<'_>,
        removed: impl IntoIterator<Item = Removed<Stored>>,
        callbacks: &Callbacks,
        go_on: impl Fn() -> bool,
    ) -> PyResult<()> {
        let mut interrupt: Option<PyErr> = None;
        for Removed {
            value: stored,
            cause,
            still_stored,
        } in removed
        {
            if !go_on() {
                continue;
            }
            let Stored {
                value,
                replay,
                created_in,
            } = stored;
            drop(replay);
            if still_stored {
                exit_safe::drop_ref(py, value);
                continue;
            }
            if !process::created_here(created_in) {
                // Inherited through a fork: the parent still owns what it holds (its
                // connection, file or directory), so the child only lets go of it.
                if debug_enabled() {
                    log_inherited_drop(py, &self.name, cause);
                }
                exit_safe::drop_ref(py, value);
                continue;
            }
            if debug_enabled() {
                log_release(py, &self.name, cause);
            }
            if let Some(on_release) = &callbacks.on_release {
                if let Err(err) = exit_safe::call1(on_release.bind(py), value.bind(py)) {
                    if interrupt.is_none() && !err.is_instance_of::<PyException>(py) {
                        interrupt = Some(err);
                        exit_safe::drop_ref(py, value);
                        continue;
                    }
                    let reason = removal_reason(cause);
                    log_exception(
                        py,
                        "release",
                        &self.name,
                        reason,
                        format!(
                            "on_release of '{}' raised while releasing a value ({reason}); the \
                             value was released anyway",
                            self.name,
                        ),
                        &err,
                    );
                }
            }
            exit_safe::drop_ref(py, value);
        }
        interrupt.map_or(Ok(()), Err)
    }

    /// Removes every entry (releasing each), discards running refreshes (their values
    /// will not be stored; callers waiting for them retry), and starts the statistics
    /// afresh (as `functools`' `cache_clear()` does). Computations running meanwhile still
    /// store theirs when they finish.
    pub fn clear(&self, py: Python<'_>) -> PyResult<()> {
        let (values, refreshes) = {
            let mut state = lock_attached(py, &self.state);
            // Under the cache lock, so a `cache_info()` never pairs the old counts with the
            // emptied store.
            self.hits.store(0, Ordering::Relaxed);
            self.misses.store(0, Ordering::Relaxed);
            state.refreshing.clear();
            state.refresh_cooldown.clear();
            let refreshes: Vec<Key> = state
                .inflight
                .iter()
                .filter(|(_, running)| running.refresh.is_some())
                .map(|(key, _)| key.clone())
                .collect();
            let refreshes: Vec<InFlight> = refreshes
                .iter()
                .filter_map(|key| state.inflight.remove(key))
                .collect();
            (state.store.drain(), refreshes)
        };
        discard_refreshes(refreshes);
        self.release(py, values)
    }

    /// Removes every entry of one browser session (keys starting with `session`, its key
    /// field), releasing each, and discards that session's running refreshes, as `clear`
    /// does for the whole cache (computations running meanwhile still store theirs).
    pub fn clear_session(&self, py: Python<'_>, session: &[u8]) -> PyResult<()> {
        let (values, refreshes) = {
            let mut state = lock_attached(py, &self.state);
            state.refreshing.retain(|key, _| !key.starts_with(session));
            state
                .refresh_cooldown
                .retain(|key, _| !key.starts_with(session));
            let refreshes: Vec<Key> = state
                .inflight
                .iter()
                .filter(|(key, running)| running.refresh.is_some() && key.starts_with(session))
                .map(|(key, _)| key.clone())
                .collect();
            let refreshes: Vec<InFlight> = refreshes
                .iter()
                .filter_map(|key| state.inflight.remove(key))
                .collect();
            let values = state.store.remove_prefixed(session, RemovalCause::Cleared);
            (values, refreshes)
        };
        discard_refreshes(refreshes);
        self.release(py, values)
    }

    /// Whether entries are kept per browser session.
    pub fn session_scoped(&self) -> bool {
        self.options.session_scoped
    }

    /// Removes one entry (releasing it) and keeps a running refresh of it from storing (a
    /// running computation of it still stores its value).
    pub fn clear_key(&self, py: Python<'_>, key: &[u8]) -> PyResult<()> {
        let (value, refresh) = {
            let mut state = lock_attached(py, &self.state);
            state.refreshing.remove(key);
            state.refresh_cooldown.remove(key);
            let refresh = match state.inflight.get(key) {
                Some(running) if running.refresh.is_some() => state.inflight.remove(key),
                _ => None,
            };
            (state.store.remove(key, RemovalCause::Cleared), refresh)
        };
        discard_refreshes(refresh.into_iter().collect());
        self.release(py, value.into_iter().collect())
    }

    /// Lowers the expiry marks (this cache's and the reaper's) for a value written at
    /// `written`; called with the state lock held, so it is ordered with the reaper's
    /// exact setting in [`ResourceCache::reap`].
    fn noted_write(&self, state: &CacheState, written: Instant) {
        let expires = state.store.ttl().expires_at(written);
        self.next_expiry.note(expires);
        crate::bindings::reaper::note_expiry(expires);
    }

    /// For the reaper: whether some entry may have expired by `now` (no lock taken).
    pub fn expiry_due(&self, now: Instant) -> bool {
        self.next_expiry.due(now)
    }

    /// The earliest instant an entry may expire, as far as this cache knows.
    pub fn next_expiry(&self) -> Option<Instant> {
        self.next_expiry.get()
    }

    /// For the reaper: takes out up to `limit` expired entries (released by the caller
    /// after the lock is gone); true when more may be left. Only expired entries are
    /// looked at.
    pub fn reap(&self, py: Python<'_>, now: Instant, limit: usize) -> (Vec<Removed<Stored>>, bool) {
        let mut state = lock_attached(py, &self.state);
        let removed = state.store.reap_expired(now, limit);
        let next = state.store.next_expiry();
        self.next_expiry.set(next);
        let more = next.is_some_and(|at| at <= now);
        (removed, more)
    }

    /// Whether entries of this cache ever expire (the reaper skips the others).
    pub fn expires(&self) -> bool {
        self.fresh_for != Ttl::Never
    }

    /// In a forked child: computations owned by the parent's other threads will never
    /// finish here, so they are removed (those keys are computed afresh) and their async
    /// waiters on this thread's loops woken; the parent's background refreshes are gone
    /// too. Cache locks are free at the fork (see `lock_attached`); a flight's own lock may
    /// not be, so it is not touched.
    pub fn forget_other_threads_after_fork(&self, py: Python<'_>) {
        let me = std::thread::current().id();
        let orphans: Vec<InFlight> = {
            let mut state = lock_attached(py, &self.state);
            state.refreshing.clear();
            let orphaned: Vec<Key> = state
                .inflight
                .iter()
                .filter(|(_, running)| running.thread != me)
                .map(|(key, _)| Key::from_bytes(key))
                .collect();
            orphaned
                .iter()
                .filter_map(|key| state.inflight.remove(key))
                .collect()
        };
        for running in orphans {
            if let Some(flight) = &running.flight {
                flight.wake_listeners_after_fork();
            }
        }
    }
}

impl Drop for ResourceCache {
    /// The last holder of a cache let go of it: a cache replaced by a re-decoration with
    /// other options lives on while wrappers from before still use it, and values they
    /// computed are stored in it. Whatever is still stored leaves through `on_release`
    /// here, as every value leaves, unless the interpreter is exiting (then values are
    /// only dropped, as at exit for every cache) or this thread cannot run Python.
    fn drop(&mut self) {
        let values = self.state.get_mut().store.drain();
        if values.is_empty() {
            return;
        }
        // SAFETY: `PyGILState_Check` only reads this thread's interpreter state.
        let attached = unsafe { pyo3::ffi::PyGILState_Check() } == 1;
        if !attached || process::exiting() {
            // Not attached: PyO3 defers these decrements to the next attached moment.
            drop(values);
            return;
        }
        // Refused (only possible inside a GC traversal): the values go with the closure.
        let _ = Python::try_attach(|py| self.release_in_background(py, values));
    }
}

/// Adds one to a statistics counter. A plain load and store, not a locked add: callers are
/// attached, so the GIL already orders them, and `cache_info()` figures need no more.
fn count(counter: &AtomicU64) {
    counter.store(counter.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
}

/// The asyncio task running `running`, if it is a background refresh run by one.
fn refresh_task(py: Python<'_>, running: &InFlight) -> Option<Py<PyAny>> {
    running.refresh?;
    running.owner_task.as_ref().map(|task| task.clone_ref(py))
}

/// Refreshes a clear took out of the table: callers waiting for them wake and compute the
/// key themselves; the refreshes, when they end, find themselves discarded.
fn discard_refreshes(refreshes: Vec<InFlight>) {
    for running in refreshes {
        running.finish(|| FlightState::Failed);
    }
}

/// Marks `key` as refreshing, unless it already is or its last refresh failed recently.
fn start_refresh(state: &mut CacheState, held: &impl KeyLike, now: HitTime) -> Option<RefreshMark> {
    let key = held.bytes();
    if state.refreshing.contains_key(key) {
        return None;
    }
    match state.refresh_cooldown.get(key) {
        Some(until) if !now.reached(&Deadline::new(*until)) => return None,
        Some(_) => {
            state.refresh_cooldown.remove(key);
        }
        None => {}
    }
    let id = state.next_refresh;
    state.next_refresh += 1;
    state.refreshing.insert(Key::from_bytes(key), id);
    Some(RefreshMark {
        key: held.to_key(),
        id,
    })
}

/// The caller as a participant in waits: its asyncio task, or else its thread.
fn participant(task: Option<&Bound<'_, PyAny>>) -> Participant {
    match task {
        Some(task) => Participant::Task(task.as_ptr() as usize),
        None => Participant::Thread(current_thread()),
    }
}

thread_local! {
    static THREAD_ID: ThreadId = std::thread::current().id();
}

/// This thread's id, without `thread::current()`'s reference counting.
fn current_thread() -> ThreadId {
    THREAD_ID.with(|id| *id)
}

/// Who waits for whose flight, across every cache (a cycle can span functions). Held only
/// by attached threads, for table work, like the cache locks.
static WAITS: LazyLock<Mutex<Waits>> = LazyLock::new(Default::default);

type Waits = WaitGraph<Arc<Flight<Served>>>;

/// A caller's wait for another's flight, recorded in `WAITS` until dropped.
pub struct WaitRegistration {
    waiter: Participant,
    flight: Arc<Flight<Served>>,
}

impl WaitRegistration {
    /// Records the wait, unless the flight's owner is itself waiting (down a chain) for
    /// something `waiter` computes: then the wait could never end, and this fails instead.
    fn begin(
        py: Python<'_>,
        waiter: Participant,
        flight: Arc<Flight<Served>>,
    ) -> Result<Self, CacheError> {
        let refused = lock_attached(py, &WAITS).begin(waiter, &flight);
        match refused {
            Ok(()) => Ok(WaitRegistration { waiter, flight }),
            Err(cycle) => {
                let steps: Vec<String> = cycle.iter().map(|f| f.label().describe()).collect();
                drop(cycle); // unlocked: the last reference to a flight may drop its value
                Err(CacheError::WaitCycle { steps })
            }
        }
    }

    pub fn flight(&self) -> &Arc<Flight<Served>> {
        &self.flight
    }
}

impl Drop for WaitRegistration {
    fn drop(&mut self) {
        // Dropped where the wait ended, attached. Should a thread ever get here detached
        // (ended at interpreter exit), the record stays: it names a flight that is over
        // or never will be, and walks skip finished flights.
        // SAFETY: `PyGILState_Check` only reads this thread's interpreter state.
        if unsafe { pyo3::ffi::PyGILState_Check() } == 0 {
            return;
        }
        let _ = Python::try_attach(|py| {
            let recorded = lock_attached(py, &WAITS).end(self.waiter, &self.flight);
            drop(recorded);
        });
    }
}

/// In a forked child: the waits of the parent's threads (and of tasks on their loops)
/// will never end here. Forgetting every wait only loses detections, never raises falsely.
pub fn forget_waits_after_fork(py: Python<'_>) {
    let waits = lock_attached(py, &WAITS).take_all();
    drop(waits);
}

/// What a caller's miss scope (see [`ResourceCache::resolve`]) does between two
/// slices of a wait for another caller's computation; an error ends the wait.
pub trait MissScope {
    fn waiting(&self, py: Python<'_>) -> PyResult<()>;
    /// Ends the scope (the spinner goes), once the miss is over.
    fn close(self, py: Python<'_>) -> PyResult<()>;
}

/// Waits, detached, until `flight` is over; checks for signals between slices so Ctrl-C
/// reaches a waiting main thread, and runs `between_slices`. `None` when the computation
/// failed.
pub fn wait_for_flight(
    py: Python<'_>,
    flight: &Flight<Served>,
    between_slices: impl Fn() -> PyResult<()>,
) -> Result<Option<Served>, CacheError> {
    while !exit_safe::detach(py, || flight.wait_for(WAIT_SLICE)) {
        py.check_signals()?;
        between_slices()?;
    }
    Ok(flight_value(py, flight))
}

/// The value of a finished flight (`None` if it failed); no lock is taken.
fn flight_value(py: Python<'_>, flight: &Flight<Served>) -> Option<Served> {
    match flight.outcome() {
        Outcome::Done(served) => Some(served.clone_ref(py)),
        Outcome::Failed | Outcome::Running => None,
    }
}

/// What [`ResourceCache::look_up`] found: a value, or the duty to compute it.
enum Looked {
    Served(Served),
    Own(OwnerSlot),
}

/// Closes a miss scope (if one was begun) after `outcome`: an error from closing reaches
/// the caller only when the miss itself succeeded.
fn close_scope<S: MissScope, T>(
    py: Python<'_>,
    scope: Option<S>,
    outcome: Result<T, CacheError>,
) -> Result<T, CacheError> {
    let Some(scope) = scope else {
        return outcome;
    };
    match (outcome, scope.close(py)) {
        (Ok(_), Err(err)) => Err(err.into()),
        (outcome, _) => outcome,
    }
}

/// What a synchronous lookup leaves the caller (see [`ResourceCache::resolve`]).
pub enum Resolved<'a, S: MissScope> {
    /// The value (a hit, or another caller's computation); the miss scope is closed.
    Served(Served),
    /// The caller computes the key: it runs the function, then hands the outcome to
    /// [`Owed::finish`].
    Compute(Owed<'a, S>),
}

/// A synchronous caller's duty to compute one key, from [`ResourceCache::resolve`] to
/// [`Owed::finish`]. It is what stays on the stack while the user's function runs, so it
/// is small (the key's bytes are the in-flight table's, on the heap). Dropped unfinished
/// (a panic unwinding), it gives the computation up, so a key can never stay stuck.
pub struct Owed<'a, S: MissScope> {
    cache: &'a ResourceCache,
    /// Taken by `finish`.
    slot: Option<OwnerSlot>,
    /// The miss scope, closed by `finish` (`None` only when taken there).
    scope: Option<S>,
}

impl<S: MissScope> Owed<'_, S> {
    /// The miss scope the computation runs in.
    pub fn scope(&self) -> &S {
        self.scope.as_ref().expect("present until finished")
    }

    /// Ends the duty with the computation's outcome: a value is stored (and waiters get
    /// it), an error gives the flight up (waiters retry); then the miss scope is closed.
    /// Returns the value for the caller (nothing to replay: its elements were written
    /// live).
    ///
    /// By reference, so the caller's frame keeps the one copy it has.
    pub fn finish(
        &mut self,
        py: Python<'_>,
        outcome: PyResult<Served>,
    ) -> Result<Served, CacheError> {
        let slot = self.slot.take().expect("finished once");
        let stored = match outcome {
            Ok(served) => match self.cache.complete(py, slot, served) {
                Ok(served) => Ok(Served::plain(served.value)),
                Err(err) => Err(err.into()),
            },
            Err(err) => {
                self.cache.abandon(py, slot);
                Err(err.into())
            }
        };
        close_scope(py, self.scope.take(), stored)
    }
}

impl<S: MissScope> Drop for Owed<'_, S> {
    fn drop(&mut self) {
        if let Some(slot) = self.slot.take() {
            Python::attach(|py| self.cache.abandon(py, slot));
        }
    }
}
