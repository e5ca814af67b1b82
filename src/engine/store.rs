//! The per-function entry table: a true LRU map with one time-to-live for every entry.
//!
//! Plain Rust, generic over the stored value, with the clock passed in so tests control
//! time. The store never runs or drops anything on its own: every value that leaves it is
//! handed back to the caller (with the reason), so the bindings can release it after the
//! cache lock is gone — `on_release` and a value's `__del__` never run under a lock.
//!
//! A session-scoped cache keeps every browser session's entries in one store, each key
//! starting with its session's field (`key::session_prefix`): `max_entries` then counts per
//! session, and one session's entries can be taken out together.
//!
//! One object may be stored under several keys (a function returning a singleton client
//! for different arguments). A store asked to track sharing counts its entries per value
//! identity, and marks a value that leaves while another entry still stores it
//! ([`Removed::still_stored`]): the caller lets go of that entry without releasing the
//! object, which is released when its last entry leaves. Stores not asked pay nothing.
//!
//! Expiry has its own index, ordered by write time (with one ttl for every entry, that is
//! expiry order): finding the expired entries, or the next expiry, looks at those entries
//! only, never at the live ones — a store of a million live entries costs the reaper
//! nothing until some expire.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use hashlink::linked_hash_map::RawEntryMut;
use hashlink::LinkedHashMap;

use crate::engine::clock::{Deadline, Now};
use crate::engine::key::{session_of, Key};

/// Why a value left the store; logged, and used by callers that treat causes differently.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RemovalCause {
    /// Its ttl ran out.
    Expired,
    /// The store was full and it was the least recently used.
    Evicted,
    /// A new value was written under the same key.
    Replaced,
    /// `clear()` (of the function, of one key, or of every cache).
    Cleared,
    /// `validate` returned a falsy value for it.
    Invalid,
}

impl RemovalCause {
    pub fn as_str(self) -> &'static str {
        match self {
            RemovalCause::Expired => "expired",
            RemovalCause::Evicted => "evicted (least recently used)",
            RemovalCause::Replaced => "replaced",
            RemovalCause::Cleared => "cleared",
            RemovalCause::Invalid => "failed validate",
        }
    }
}

/// A value that left the store, to be released by the caller.
#[derive(Debug)]
pub struct Removed<V> {
    pub value: V,
    pub cause: RemovalCause,
    /// Another entry still stores the same object (by identity, in a store that tracks
    /// sharing): the object did not leave, only this entry did, so it is not released.
    pub still_stored: bool,
}

impl<V> Removed<V> {
    /// A value that left for good (no other entry holds it, or nobody tracks sharing).
    pub fn gone(value: V, cause: RemovalCause) -> Self {
        Removed {
            value,
            cause,
            still_stored: false,
        }
    }
}

/// How many entries store each object, by the identity a value gives it.
struct Sharing<V> {
    /// A value's identity: equal for two values that are the same object, and stable while
    /// the store holds the value (an object's address, for a reference the store owns).
    identity: fn(&V) -> usize,
    counts: HashMap<usize, usize, ahash::RandomState>,
}

// Kept out of line: the store's paths stay as small as they were for stores that do not
// track sharing.
impl<V> Sharing<V> {
    #[inline(never)]
    fn stored(&mut self, value: &V) {
        *self.counts.entry((self.identity)(value)).or_insert(0) += 1;
    }

    /// One entry holding `value` left; true when another still holds the same object.
    #[inline(never)]
    fn left(&mut self, value: &V) -> bool {
        let id = (self.identity)(value);
        match self.counts.get_mut(&id) {
            Some(count) if *count > 1 => {
                *count -= 1;
                true
            }
            _ => {
                self.counts.remove(&id);
                false
            }
        }
    }
}

struct Entry<V> {
    value: V,
    written: Instant,
    /// `written + ttl`, worked out once for the hits to compare (`None`: never).
    expires: Option<Deadline>,
    /// Where it sits in the expiry index: `(written, write number)`.
    order: u64,
}

impl<V> Entry<V> {
    #[inline]
    fn expired(&self, now: impl Now) -> bool {
        self.expires
            .as_ref()
            .is_some_and(|deadline| now.reached(deadline))
    }
}

/// The outcome of [`Store::get`].
pub enum Lookup<'a, V> {
    /// The value and when it was written (background refresh judges staleness by it).
    Hit(&'a V, Instant),
    /// The entry had expired; it has been taken out and is returned for release.
    Expired(Removed<V>),
    Missing,
}

/// Where a store puts the values it lets go of: a `Vec`, or a `SmallVec` kept inline for
/// the one or two a write usually pushes out.
pub trait Removals<V> {
    fn add(&mut self, removed: Removed<V>);
}

impl<V> Removals<V> for Vec<Removed<V>> {
    fn add(&mut self, removed: Removed<V>) {
        self.push(removed);
    }
}

impl<V, A: smallvec::Array<Item = Removed<V>>> Removals<V> for smallvec::SmallVec<A> {
    fn add(&mut self, removed: Removed<V>) {
        self.push(removed);
    }
}

/// The outcome of [`Store::get_live`].
pub enum LiveLookup<'a, V> {
    Hit(&'a V, Instant),
    /// The entry has expired (and is still there).
    Expired,
    Missing,
}

/// Expiry rule shared by every entry: live while `now < written + ttl`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Ttl {
    Never,
    After(Duration),
}

impl Ttl {
    /// From seconds as the user gave them: `inf` never expires, `<= 0` is always expired.
    /// NaN is rejected before it gets here.
    pub fn from_secs(secs: f64) -> Ttl {
        if secs <= 0.0 {
            Ttl::After(Duration::ZERO)
        } else {
            // Durations past ~584 years are beyond any process' life: treat as never.
            Duration::try_from_secs_f64(secs).map_or(Ttl::Never, Ttl::After)
        }
    }

    /// Whether a value written at `written` has expired by `now` (`now >= written + ttl`;
    /// never for a deadline past the clock's range).
    pub fn is_expired(self, written: Instant, now: impl Now) -> bool {
        self.deadline(written)
            .is_some_and(|deadline| now.reached(&deadline))
    }

    /// When a value written at `written` expires, as a hit compares it.
    #[inline]
    pub fn deadline(self, written: Instant) -> Option<Deadline> {
        self.expires_at(written).map(Deadline::new)
    }

    /// When a value written at `written` expires; `None` for never, including a ttl so
    /// long that the instant is past what the clock can represent (`ttl=sys.maxsize` is a
    /// common way to say "never").
    #[inline]
    pub fn expires_at(self, written: Instant) -> Option<Instant> {
        match self {
            Ttl::Never => None,
            Ttl::After(ttl) => written.checked_add(ttl),
        }
    }
}

pub struct Store<V> {
    entries: LinkedHashMap<Key, Entry<V>, ahash::RandomState>,
    ttl: Ttl,
    max_entries: Option<usize>,
    /// Every entry's key by `(write time, write number)`: oldest write first, so expired
    /// entries are found at the front. Empty when entries never expire.
    by_write: BTreeMap<(Instant, u64), Key>,
    /// Numbers writes, so two writes at the same instant keep distinct index positions.
    writes: u64,
    /// Entries per stored object, once [`Self::track_sharing`] asked for it.
    sharing: Option<Sharing<V>>,
}

impl<V> Store<V> {
    pub fn new(ttl: Ttl, max_entries: Option<usize>) -> Self {
        Self::with_hasher(ttl, max_entries, ahash::RandomState::new())
    }

    /// A store hashing keys with `hasher`, which a caller shares with its other tables to
    /// hash a key once for all of them (see [`Self::hash_of`]).
    pub fn with_hasher(ttl: Ttl, max_entries: Option<usize>, hasher: ahash::RandomState) -> Self {
        Store {
            entries: LinkedHashMap::with_hasher(hasher),
            ttl,
            max_entries,
            by_write: BTreeMap::new(),
            writes: 0,
            sharing: None,
        }
    }

    /// From now on, counts the entries storing each object (`identity` tells objects
    /// apart) so that a value leaving while another entry stores the same object is marked
    /// [`Removed::still_stored`]. The entries already stored are counted now; asking again
    /// changes nothing.
    pub fn track_sharing(&mut self, identity: fn(&V) -> usize) {
        if self.sharing.is_some() {
            return;
        }
        let mut sharing = Sharing {
            identity,
            counts: HashMap::default(),
        };
        for entry in self.entries.values() {
            sharing.stored(&entry.value);
        }
        self.sharing = Some(sharing);
    }

    /// Whether some entry stores the same object as `value` (false when sharing is not
    /// tracked).
    pub fn holds_same(&self, value: &V) -> bool {
        self.sharing
            .as_ref()
            .is_some_and(|sharing| sharing.counts.contains_key(&(sharing.identity)(value)))
    }

    /// Wraps a value whose entry was just taken out, marking it when the same object is
    /// still stored under another key.
    #[inline(always)] // a branch where sharing is not tracked: removals cost what they did
    fn leaving(&mut self, value: V, cause: RemovalCause) -> Removed<V> {
        leaving(&mut self.sharing, value, cause)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The ttl every entry shares.
    pub fn ttl(&self) -> Ttl {
        self.ttl
    }

    fn indexed(&self) -> bool {
        self.ttl != Ttl::Never
    }

    /// Takes a removed entry out of the expiry index.
    fn unindex(&mut self, entry: &Entry<V>) {
        if self.indexed() {
            unindex(&mut self.by_write, entry);
        }
    }

    /// Looks a key up; a hit becomes the most recently used entry. Hits do not extend
    /// the ttl: expiry is measured from the write. `now` may be a cheap reading
    /// (`clock::HitTime`) that consults the exact clock only near a deadline.
    pub fn get(&mut self, key: &[u8], now: impl Now) -> Lookup<'_, V> {
        // One hash and probe per lookup: the entry is found once, then judged in place.
        let RawEntryMut::Occupied(mut found) = self.entries.raw_entry_mut().from_key(key) else {
            return Lookup::Missing;
        };
        if found.get().expired(now) {
            let entry = found.remove();
            unindex(&mut self.by_write, &entry);
            let gone = leaving(&mut self.sharing, entry.value, RemovalCause::Expired);
            return Lookup::Expired(gone);
        }
        // Recency only matters when something can be evicted for it.
        if self.max_entries.is_some() {
            found.to_back();
        }
        let entry = found.into_mut();
        Lookup::Hit(&entry.value, entry.written)
    }

    /// [`Self::get`] without taking anything out: a live entry becomes the most recently
    /// used, as there; an expired one is only reported, and stays for `get` to take out
    /// and hand back.
    pub fn get_live(&mut self, key: &[u8], now: impl Now) -> LiveLookup<'_, V> {
        let RawEntryMut::Occupied(mut found) = self.entries.raw_entry_mut().from_key(key) else {
            return LiveLookup::Missing;
        };
        if found.get().expired(now) {
            return LiveLookup::Expired;
        }
        if self.max_entries.is_some() {
            found.to_back();
        }
        let entry = found.into_mut();
        LiveLookup::Hit(&entry.value, entry.written)
    }

    /// The hash the `_hashed` methods take for `key`: the store's hasher's (the one given
    /// to [`Self::with_hasher`]).
    #[inline]
    pub fn hash_of(&self, key: &[u8]) -> u64 {
        self.entries.hasher().hash_one(key)
    }

    /// Writes a value as the most recently used entry. Whatever had to leave to make room
    /// (expired entries first, then least recently used ones) or was replaced is added to
    /// `removed` (a `Vec`, or an inline `SmallVec` for a caller that expects one or two).
    /// The key is hashed once. The new value counts as stored before anything leaves, so an
    /// entry holding the same object that leaves now is marked still stored.
    pub fn insert(&mut self, key: Key, value: V, now: Instant, removed: &mut impl Removals<V>) {
        let hash = self.hash_of(&key);
        self.insert_hashed(key, hash, value, now, removed);
    }

    /// [`Self::insert`] with the key's hash (from [`Self::hash_of`], or from a clone of the
    /// store's hasher).
    pub fn insert_hashed(
        &mut self,
        key: Key,
        hash: u64,
        value: V,
        now: Instant,
        removed: &mut impl Removals<V>,
    ) {
        if let Some(sharing) = &mut self.sharing {
            sharing.stored(&value);
        }
        let replaced = match self
            .entries
            .raw_entry_mut()
            .from_key_hashed_nocheck(hash, &key)
        {
            RawEntryMut::Occupied(found) => Some(found.remove()),
            RawEntryMut::Vacant(_) => None,
        };
        if let Some(old) = replaced {
            self.unindex(&old);
            removed.add(self.leaving(old.value, RemovalCause::Replaced));
        }
        if let Some(max) = self.max_entries {
            match session_of(&key) {
                None => self.make_room(max, now, removed),
                Some(session) => self.make_room_in_session(session, max, now, removed),
            }
        }
        self.writes += 1;
        let order = self.writes;
        if self.indexed() {
            self.by_write.insert((now, order), key.clone());
        }
        let entry = Entry {
            value,
            written: now,
            expires: self.ttl.deadline(now),
            order,
        };
        match self
            .entries
            .raw_entry_mut()
            .from_key_hashed_nocheck(hash, &key)
        {
            RawEntryMut::Vacant(vacant) => {
                vacant.insert_hashed_nocheck(hash, key, entry);
            }
            // Taken out above, and nothing was written since.
            RawEntryMut::Occupied(mut found) => {
                found.replace_value(entry);
                found.to_back();
            }
        }
    }

    /// The value under `key`, expired or not, without touching recency or taking it out.
    pub fn peek(&self, key: &[u8]) -> Option<&V> {
        self.entries.get(key).map(|entry| &entry.value)
    }

    /// Evicts (expired entries first, then the least recently used) until a new entry fits.
    fn make_room(&mut self, max: usize, now: Instant, removed: &mut impl Removals<V>) {
        if self.entries.len() >= max {
            self.reap_expired_into(now, usize::MAX, removed);
        }
        while self.entries.len() >= max {
            match self.entries.pop_front() {
                Some((_, entry)) => {
                    self.unindex(&entry);
                    removed.add(self.leaving(entry.value, RemovalCause::Evicted));
                }
                None => break,
            }
        }
    }

    /// [`Self::make_room`] for one session: only that session's entries count and go.
    /// Scans the store, which is fine for the few entries a session-scoped cache holds.
    fn make_room_in_session(
        &mut self,
        session: &[u8],
        max: usize,
        now: Instant,
        removed: &mut impl Removals<V>,
    ) {
        if self.count_prefixed(session) >= max {
            self.reap_expired_into(now, usize::MAX, removed);
        }
        while self.count_prefixed(session) >= max {
            // Iteration runs from the least recently used entry.
            let lru = self
                .entries
                .keys()
                .find(|k| k.starts_with(session))
                .cloned();
            match lru.and_then(|k| self.remove(&k, RemovalCause::Evicted)) {
                Some(gone) => removed.add(gone),
                None => break,
            }
        }
    }

    fn count_prefixed(&self, prefix: &[u8]) -> usize {
        self.entries
            .keys()
            .filter(|k| k.starts_with(prefix))
            .count()
    }

    /// Takes out every entry whose key starts with `prefix` (one session's entries).
    pub fn remove_prefixed(&mut self, prefix: &[u8], cause: RemovalCause) -> Vec<Removed<V>> {
        let keys: Vec<Key> = self
            .entries
            .keys()
            .filter(|k| k.starts_with(prefix))
            .cloned()
            .collect();
        keys.iter()
            .filter_map(|k| self.remove(k.as_bytes(), cause))
            .collect()
    }

    pub fn remove(&mut self, key: &[u8], cause: RemovalCause) -> Option<Removed<V>> {
        let entry = self.entries.remove(key)?;
        self.unindex(&entry);
        Some(self.leaving(entry.value, cause))
    }

    /// Removes the entry under `key` only when `is_same` says it is still the one the
    /// caller saw (a validate that failed must not remove a value written since).
    pub fn remove_if(
        &mut self,
        key: &[u8],
        cause: RemovalCause,
        is_same: impl FnOnce(&V) -> bool,
    ) -> Option<Removed<V>> {
        match self.entries.get(key) {
            Some(entry) if is_same(&entry.value) => self.remove(key, cause),
            _ => None,
        }
    }

    /// Takes every entry out (cleared), oldest use first. An object stored under several
    /// keys is unmarked once: at its last entry.
    pub fn drain(&mut self) -> Vec<Removed<V>> {
        self.by_write.clear();
        let entries: Vec<V> = self.entries.drain().map(|(_, e)| e.value).collect();
        entries
            .into_iter()
            .map(|value| self.leaving(value, RemovalCause::Cleared))
            .collect()
    }

    /// Takes out the expired entries, oldest write first, at most `limit` of them (so a
    /// caller holding a lock can bound how long it holds it). Only the expired entries
    /// are looked at.
    pub fn reap_expired(&mut self, now: Instant, limit: usize) -> Vec<Removed<V>> {
        let mut removed = Vec::new();
        self.reap_expired_into(now, limit, &mut removed);
        removed
    }

    fn reap_expired_into(&mut self, now: Instant, limit: usize, removed: &mut impl Removals<V>) {
        if !self.indexed() {
            return;
        }
        for _ in 0..limit {
            let Some(oldest) = self.by_write.first_entry() else {
                return;
            };
            if !self.ttl.is_expired(oldest.key().0, now) {
                return;
            }
            let key = oldest.remove();
            if let Some(entry) = self.entries.remove(&key) {
                removed.add(self.leaving(entry.value, RemovalCause::Expired));
            }
        }
    }

    /// The earliest moment an entry will expire, for a background reaper.
    pub fn next_expiry(&self) -> Option<Instant> {
        let (&(oldest, _), _) = self.by_write.first_key_value()?;
        self.ttl.expires_at(oldest)
    }
}

/// [`Store::leaving`], for a caller that holds a borrow of the entries.
#[inline(always)] // as `Store::leaving`
fn leaving<V>(sharing: &mut Option<Sharing<V>>, value: V, cause: RemovalCause) -> Removed<V> {
    let still_stored = match sharing {
        Some(sharing) => sharing.left(&value),
        None => false,
    };
    Removed {
        value,
        cause,
        still_stored,
    }
}

/// Takes a removed entry out of the expiry index (a no-op when the store keeps none).
fn unindex<V>(by_write: &mut BTreeMap<(Instant, u64), Key>, entry: &Entry<V>) {
    by_write.remove(&(entry.written, entry.order));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::key::KeyWriter;

    fn key(n: i64) -> Key {
        let mut w = KeyWriter::new();
        w.small_int(n);
        w.finish().to_key()
    }

    fn hit<V: Copy>(store: &mut Store<V>, k: i64, now: Instant) -> Option<V> {
        match store.get(&key(k), now) {
            Lookup::Hit(v, _) => Some(*v),
            _ => None,
        }
    }

    #[test]
    fn entries_live_until_exactly_ttl_after_the_write() {
        let t0 = Instant::now();
        let mut store = Store::new(Ttl::from_secs(10.0), None);
        let mut removed = Vec::new();
        store.insert(key(1), "a", t0, &mut removed);
        assert_eq!(hit(&mut store, 1, t0 + Duration::from_secs(9)), Some("a"));
        match store.get(&key(1), t0 + Duration::from_secs(10)) {
            Lookup::Expired(gone) => assert_eq!(gone.value, "a"),
            _ => panic!("entry should have expired at written + ttl"),
        }
        assert!(store.is_empty());
    }

    #[test]
    fn hits_do_not_extend_the_ttl() {
        let t0 = Instant::now();
        let mut store = Store::new(Ttl::from_secs(10.0), None);
        store.insert(key(1), 1, t0, &mut Vec::new());
        for s in 1..10 {
            assert_eq!(hit(&mut store, 1, t0 + Duration::from_secs(s)), Some(1));
        }
        assert!(matches!(
            store.get(&key(1), t0 + Duration::from_secs(10)),
            Lookup::Expired(Removed { value: 1, .. })
        ));
    }

    #[test]
    fn non_positive_ttl_is_always_expired_and_infinite_never() {
        let t0 = Instant::now();
        let mut zero = Store::new(Ttl::from_secs(0.0), None);
        zero.insert(key(1), 1, t0, &mut Vec::new());
        assert!(matches!(
            zero.get(&key(1), t0),
            Lookup::Expired(Removed { value: 1, .. })
        ));
        assert_eq!(Ttl::from_secs(-5.0), Ttl::After(Duration::ZERO));
        assert_eq!(Ttl::from_secs(f64::INFINITY), Ttl::Never);
        let mut never = Store::new(Ttl::Never, None);
        never.insert(key(1), 1, t0, &mut Vec::new());
        let far = t0 + Duration::from_secs(10_000_000);
        assert_eq!(hit(&mut never, 1, far), Some(1));
        assert_eq!(never.next_expiry(), None);
    }

    #[test]
    fn a_ttl_past_the_clock_range_never_expires() {
        let t0 = Instant::now();
        for secs in [i64::MAX as f64, 1e300, u64::MAX as f64] {
            let ttl = Ttl::from_secs(secs);
            assert_eq!(ttl.expires_at(t0), None, "ttl of {secs} s");
            let mut store = Store::new(ttl, Some(2));
            let mut removed = Vec::new();
            store.insert(key(1), 1, t0, &mut removed);
            store.insert(key(2), 2, t0, &mut removed);
            store.insert(key(3), 3, t0, &mut removed); // the expiry scan before eviction
            assert_eq!(store.next_expiry(), None);
            assert!(store
                .reap_expired(t0 + Duration::from_secs(1 << 40), usize::MAX)
                .is_empty());
            assert_eq!(
                hit(&mut store, 3, t0 + Duration::from_secs(1 << 40)),
                Some(3)
            );
        }
    }

    #[test]
    fn full_store_evicts_least_recently_used_and_hits_refresh() {
        let t0 = Instant::now();
        let mut store = Store::new(Ttl::Never, Some(2));
        let mut removed = Vec::new();
        store.insert(key(1), 1, t0, &mut removed);
        store.insert(key(2), 2, t0, &mut removed);
        assert_eq!(hit(&mut store, 1, t0), Some(1)); // 2 is now the LRU
        store.insert(key(3), 3, t0, &mut removed);
        assert_eq!(removed.len(), 1);
        assert_eq!(removed[0].value, 2);
        assert_eq!(removed[0].cause, RemovalCause::Evicted);
        assert_eq!(hit(&mut store, 1, t0), Some(1));
        assert_eq!(hit(&mut store, 3, t0), Some(3));
    }

    #[test]
    fn expired_entries_are_reaped_before_a_live_lru_victim() {
        let t0 = Instant::now();
        let mut store = Store::new(Ttl::from_secs(10.0), Some(2));
        let mut removed = Vec::new();
        store.insert(key(1), 1, t0, &mut removed); // LRU, still live at t0+12
        store.insert(key(2), 2, t0 + Duration::from_secs(1), &mut removed);
        assert_eq!(hit(&mut store, 1, t0 + Duration::from_secs(2)), Some(1));
        // At t0+11 both 1 (written t0) and 2 (written t0+1) are expired.
        store.insert(key(3), 3, t0 + Duration::from_secs(11), &mut removed);
        let causes: Vec<_> = removed.iter().map(|r| (r.value, r.cause)).collect();
        assert!(causes.contains(&(1, RemovalCause::Expired)));
        assert!(causes.contains(&(2, RemovalCause::Expired)));
        assert_eq!(store.len(), 1);
    }

    #[test]
    fn reaping_prefers_expired_over_lru_order() {
        let t0 = Instant::now();
        let mut store = Store::new(Ttl::from_secs(10.0), Some(2));
        let mut removed = Vec::new();
        store.insert(key(1), 1, t0, &mut removed);
        store.insert(key(2), 2, t0 + Duration::from_secs(5), &mut removed);
        assert_eq!(hit(&mut store, 2, t0 + Duration::from_secs(6)), Some(2));
        assert_eq!(hit(&mut store, 1, t0 + Duration::from_secs(6)), Some(1)); // 2 is LRU
        store.insert(key(3), 3, t0 + Duration::from_secs(10), &mut removed);
        // 1 expired, so 2 (the LRU, still live) survives.
        assert_eq!(removed.len(), 1);
        assert_eq!(
            (removed[0].value, removed[0].cause),
            (1, RemovalCause::Expired)
        );
        assert_eq!(hit(&mut store, 2, t0 + Duration::from_secs(10)), Some(2));
    }

    #[test]
    fn rewriting_a_key_hands_back_the_old_value() {
        let t0 = Instant::now();
        let mut store = Store::new(Ttl::Never, Some(1));
        let mut removed = Vec::new();
        store.insert(key(1), "old", t0, &mut removed);
        store.insert(key(1), "new", t0, &mut removed);
        assert_eq!(removed.len(), 1);
        assert_eq!(
            (removed[0].value, removed[0].cause),
            ("old", RemovalCause::Replaced)
        );
        assert_eq!(hit(&mut store, 1, t0), Some("new"));
    }

    #[test]
    fn peek_neither_expires_nor_reorders() {
        let t0 = Instant::now();
        let mut store = Store::new(Ttl::from_secs(1.0), Some(2));
        let mut removed = Vec::new();
        store.insert(key(1), 1, t0, &mut removed);
        store.insert(key(2), 2, t0, &mut removed);
        assert_eq!(store.peek(&key(1)), Some(&1)); // 1 stays the least recently used
        assert_eq!(store.peek(&key(3)), None);
        store.insert(key(3), 3, t0, &mut removed);
        assert_eq!(removed.iter().map(|r| r.value).collect::<Vec<_>>(), vec![1]);
        let late = t0 + Duration::from_secs(5);
        assert_eq!(store.peek(&key(2)), Some(&2), "expired, but still there");
        assert!(matches!(
            store.get(&key(2), late),
            Lookup::Expired(Removed { value: 2, .. })
        ));
    }

    #[test]
    fn remove_if_keeps_a_value_written_since() {
        let t0 = Instant::now();
        let mut store = Store::new(Ttl::Never, None);
        store.insert(key(1), 7, t0, &mut Vec::new());
        let invalid = RemovalCause::Invalid;
        assert!(store.remove_if(&key(1), invalid, |v| *v == 6).is_none());
        let gone = store.remove_if(&key(1), invalid, |v| *v == 7).unwrap();
        assert_eq!((gone.value, gone.cause), (7, invalid));
        assert!(store.is_empty());
    }

    #[test]
    fn reap_and_drain_return_everything_once() {
        let t0 = Instant::now();
        let mut store = Store::new(Ttl::from_secs(1.0), None);
        let mut removed = Vec::new();
        for k in 0..5 {
            store.insert(
                key(k),
                k,
                t0 + Duration::from_millis(k as u64 * 300),
                &mut removed,
            );
        }
        assert_eq!(store.next_expiry(), Some(t0 + Duration::from_secs(1)));
        let reaped = store.reap_expired(t0 + Duration::from_millis(1000), usize::MAX);
        assert_eq!(reaped.iter().map(|r| r.value).collect::<Vec<_>>(), vec![0]);
        assert_eq!(store.next_expiry(), Some(t0 + Duration::from_millis(1300)));
        let mut rest: Vec<_> = store.drain().into_iter().map(|r| r.value).collect();
        rest.sort();
        assert_eq!(rest, vec![1, 2, 3, 4]);
        assert!(store.is_empty());
    }

    fn session_key(session: &str, n: i64) -> Key {
        let mut w = KeyWriter::new();
        w.session(session);
        w.small_int(n);
        w.finish().to_key()
    }

    #[test]
    fn max_entries_counts_per_session() {
        let t0 = Instant::now();
        let mut store = Store::new(Ttl::Never, Some(2));
        let mut removed = Vec::new();
        store.insert(session_key("a", 1), "a1", t0, &mut removed);
        store.insert(session_key("a", 2), "a2", t0, &mut removed);
        store.insert(session_key("b", 1), "b1", t0, &mut removed);
        store.insert(session_key("b", 2), "b2", t0, &mut removed);
        assert!(removed.is_empty(), "each session holds its own two entries");
        store.insert(session_key("b", 3), "b3", t0, &mut removed);
        assert_eq!(removed.len(), 1);
        assert_eq!(
            (removed[0].value, removed[0].cause),
            ("b1", RemovalCause::Evicted)
        );
        assert_eq!(store.len(), 4);
        assert!(matches!(
            store.get(&session_key("a", 1), t0),
            Lookup::Hit(&"a1", _)
        ));
    }

    #[test]
    fn session_eviction_takes_expired_entries_of_the_session_first() {
        let t0 = Instant::now();
        let mut store = Store::new(Ttl::from_secs(10.0), Some(2));
        let mut removed = Vec::new();
        store.insert(session_key("a", 1), 1, t0, &mut removed);
        store.insert(
            session_key("a", 2),
            2,
            t0 + Duration::from_secs(5),
            &mut removed,
        );
        store.insert(
            session_key("a", 3),
            3,
            t0 + Duration::from_secs(10),
            &mut removed,
        );
        assert_eq!(
            removed
                .iter()
                .map(|r| (r.value, r.cause))
                .collect::<Vec<_>>(),
            vec![(1, RemovalCause::Expired)]
        );
    }

    #[test]
    fn remove_prefixed_takes_one_session_out() {
        let t0 = Instant::now();
        let mut store = Store::new(Ttl::Never, None);
        let mut removed = Vec::new();
        for n in 0..3 {
            store.insert(session_key("a", n), ("a", n), t0, &mut removed);
            store.insert(session_key("ab", n), ("ab", n), t0, &mut removed);
        }
        let cleared = RemovalCause::Cleared;
        let mut gone: Vec<_> = store
            .remove_prefixed(&crate::engine::key::session_prefix("a"), cleared)
            .into_iter()
            .map(|r| r.value)
            .collect();
        gone.sort();
        assert_eq!(gone, vec![("a", 0), ("a", 1), ("a", 2)]);
        assert_eq!(store.len(), 3);
        assert!(store
            .remove_prefixed(&crate::engine::key::session_prefix("a"), cleared)
            .is_empty());
        assert_eq!(
            store
                .remove_prefixed(&crate::engine::key::session_prefix("ab"), cleared)
                .len(),
            3
        );
        assert!(store.is_empty());
    }

    #[test]
    fn reaping_takes_only_the_expired_oldest_write_first_and_at_most_the_limit() {
        let t0 = Instant::now();
        let mut store = Store::new(Ttl::from_secs(10.0), None);
        let mut removed = Vec::new();
        for k in 0..1000 {
            store.insert(
                key(k),
                k,
                t0 + Duration::from_millis(k as u64),
                &mut removed,
            );
        }
        // At t0 + 10.004 s the writes at 0..=4 ms have expired.
        let now = t0 + Duration::from_millis(10_004);
        let first = store.reap_expired(now, 3);
        assert_eq!(
            first.iter().map(|r| r.value).collect::<Vec<_>>(),
            vec![0, 1, 2]
        );
        let rest = store.reap_expired(now, usize::MAX);
        assert_eq!(rest.iter().map(|r| r.value).collect::<Vec<_>>(), vec![3, 4]);
        assert!(rest.iter().all(|r| r.cause == RemovalCause::Expired));
        assert_eq!(store.len(), 995);
        assert_eq!(
            store.next_expiry(),
            Some(t0 + Duration::from_millis(10_005))
        );
    }

    #[test]
    fn a_rewrite_counts_expiry_from_the_new_write() {
        let t0 = Instant::now();
        let mut store = Store::new(Ttl::from_secs(10.0), None);
        let mut removed = Vec::new();
        store.insert(key(1), "old", t0, &mut removed);
        store.insert(key(2), "other", t0 + Duration::from_secs(1), &mut removed);
        store.insert(key(1), "new", t0 + Duration::from_secs(5), &mut removed);
        assert_eq!(store.next_expiry(), Some(t0 + Duration::from_secs(11)));
        let reaped = store.reap_expired(t0 + Duration::from_secs(12), usize::MAX);
        assert_eq!(
            reaped.iter().map(|r| r.value).collect::<Vec<_>>(),
            vec!["other"]
        );
        assert_eq!(
            hit(&mut store, 1, t0 + Duration::from_secs(12)),
            Some("new")
        );
    }

    #[test]
    fn entries_that_left_otherwise_are_never_reaped_and_do_not_hold_the_next_expiry() {
        let t0 = Instant::now();
        let mut store = Store::new(Ttl::from_secs(10.0), Some(3));
        let mut removed = Vec::new();
        for k in 0..3 {
            store.insert(key(k), k, t0 + Duration::from_secs(k as u64), &mut removed);
        }
        store.insert(key(3), 3, t0 + Duration::from_secs(3), &mut removed); // evicts 0
        let cleared = RemovalCause::Cleared;
        assert_eq!(store.remove(&key(1), cleared).map(|r| r.value), Some(1));
        let gone = store.remove_if(&key(2), cleared, |v| *v == 2);
        assert_eq!(gone.map(|r| r.value), Some(2));
        assert_eq!(store.next_expiry(), Some(t0 + Duration::from_secs(13)));
        let reaped = store.reap_expired(t0 + Duration::from_secs(100), usize::MAX);
        assert_eq!(reaped.iter().map(|r| r.value).collect::<Vec<_>>(), vec![3]);
        store.insert(key(4), 4, t0, &mut removed);
        assert_eq!(
            store
                .drain()
                .into_iter()
                .map(|r| r.value)
                .collect::<Vec<_>>(),
            vec![4]
        );
        assert_eq!(store.next_expiry(), None);
    }

    /// Every sequence of operations leaves the index naming exactly the stored entries, and
    /// reaping returns exactly what a full scan would call expired.
    #[test]
    fn the_expiry_index_agrees_with_a_full_scan() {
        let t0 = Instant::now();
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        for max_entries in [None, Some(8)] {
            let mut store: Store<u64> = Store::new(Ttl::from_secs(5.0), max_entries);
            let mut clock = 0u64;
            for step in 0..5000u64 {
                clock += next(3);
                let now = t0 + Duration::from_millis(clock * 100);
                let k = next(20) as i64;
                match next(6) {
                    0..=2 => store.insert(key(k), step, now, &mut Vec::new()),
                    3 => {
                        let _ = store.get(&key(k), now);
                    }
                    4 => {
                        store.remove(&key(k), RemovalCause::Cleared);
                    }
                    _ => {
                        let expected: Vec<u64> = store
                            .entries
                            .values()
                            .filter(|e| store.ttl.is_expired(e.written, now))
                            .map(|e| e.value)
                            .collect();
                        let mut reaped: Vec<u64> = store
                            .reap_expired(now, usize::MAX)
                            .into_iter()
                            .map(|r| r.value)
                            .collect();
                        let mut expected = expected;
                        expected.sort_unstable();
                        reaped.sort_unstable();
                        assert_eq!(reaped, expected, "step {step}");
                    }
                }
                assert_eq!(store.by_write.len(), store.entries.len(), "step {step}");
                for entry in store.entries.values() {
                    assert!(store.by_write.contains_key(&(entry.written, entry.order)));
                }
            }
        }
    }

    /// Test values are their own identity: equal numbers stand for one shared object.
    fn sharing_store(ttl: Ttl, max_entries: Option<usize>) -> Store<u32> {
        let mut store = Store::new(ttl, max_entries);
        store.track_sharing(|v: &u32| *v as usize);
        store
    }

    fn marks(removed: &[Removed<u32>]) -> Vec<(u32, bool)> {
        removed.iter().map(|r| (r.value, r.still_stored)).collect()
    }

    #[test]
    fn an_object_under_two_keys_leaves_unmarked_only_with_its_last_entry() {
        let t0 = Instant::now();
        let mut store = sharing_store(Ttl::Never, None);
        store.insert(key(1), 7, t0, &mut Vec::new());
        store.insert(key(2), 7, t0, &mut Vec::new());
        store.insert(key(3), 8, t0, &mut Vec::new());
        let first = store.remove(&key(1), RemovalCause::Cleared).unwrap();
        assert!(first.still_stored, "key 2 still stores it");
        assert!(store.holds_same(&7));
        let other = store.remove(&key(3), RemovalCause::Cleared).unwrap();
        assert!(!other.still_stored);
        let last = store.remove_if(&key(2), RemovalCause::Invalid, |_| true);
        assert!(!last.unwrap().still_stored);
        assert!(!store.holds_same(&7));
    }

    #[test]
    fn eviction_of_a_shared_object_is_marked_while_another_key_holds_it() {
        let t0 = Instant::now();
        let mut store = sharing_store(Ttl::Never, Some(2));
        let mut removed = Vec::new();
        store.insert(key(1), 7, t0, &mut removed);
        store.insert(key(2), 7, t0, &mut removed);
        store.insert(key(3), 8, t0, &mut removed); // evicts key 1
        store.insert(key(4), 9, t0, &mut removed); // evicts key 2, the last 7
        assert_eq!(marks(&removed), vec![(7, true), (7, false)]);
    }

    #[test]
    fn an_entry_pushed_out_by_a_write_of_the_same_object_is_marked() {
        let t0 = Instant::now();
        let mut store = sharing_store(Ttl::Never, Some(1));
        let mut removed = Vec::new();
        store.insert(key(1), 7, t0, &mut removed);
        store.insert(key(1), 7, t0, &mut removed); // replaced by itself
        store.insert(key(2), 7, t0, &mut removed); // evicted for itself
        assert_eq!(marks(&removed), vec![(7, true), (7, true)]);
        assert!(store.holds_same(&7));
        assert_eq!(marks(&store.drain()), vec![(7, false)]);
    }

    #[test]
    fn expiry_of_a_shared_object_is_marked_until_its_last_entry() {
        let t0 = Instant::now();
        let mut store = sharing_store(Ttl::from_secs(10.0), None);
        store.insert(key(1), 7, t0, &mut Vec::new());
        store.insert(key(2), 7, t0 + Duration::from_secs(5), &mut Vec::new());
        let at = t0 + Duration::from_secs(11);
        assert_eq!(marks(&store.reap_expired(at, usize::MAX)), vec![(7, true)]);
        match store.get(&key(2), t0 + Duration::from_secs(15)) {
            Lookup::Expired(gone) => assert!(!gone.still_stored),
            _ => panic!("key 2 should have expired"),
        }
    }

    #[test]
    fn a_drain_leaves_each_distinct_object_unmarked_once() {
        let t0 = Instant::now();
        let mut store = sharing_store(Ttl::Never, None);
        for (k, v) in [(1, 7), (2, 8), (3, 7), (4, 7), (5, 9)] {
            store.insert(key(k), v, t0, &mut Vec::new());
        }
        let mut unmarked: Vec<u32> = store
            .drain()
            .into_iter()
            .filter(|r| !r.still_stored)
            .map(|r| r.value)
            .collect();
        unmarked.sort_unstable();
        assert_eq!(unmarked, vec![7, 8, 9]);
        assert!(!store.holds_same(&7));
    }

    #[test]
    fn a_session_removal_marks_an_object_another_session_still_stores() {
        let t0 = Instant::now();
        let mut store = sharing_store(Ttl::Never, None);
        store.insert(session_key("a", 1), 7, t0, &mut Vec::new());
        store.insert(session_key("b", 1), 7, t0, &mut Vec::new());
        let prefix = crate::engine::key::session_prefix("a");
        let gone = store.remove_prefixed(&prefix, RemovalCause::Cleared);
        assert_eq!(marks(&gone), vec![(7, true)]);
    }

    #[test]
    fn tracking_counts_the_entries_already_stored() {
        let t0 = Instant::now();
        let mut store: Store<u32> = Store::new(Ttl::Never, None);
        store.insert(key(1), 7, t0, &mut Vec::new());
        store.insert(key(2), 7, t0, &mut Vec::new());
        let untracked = store.remove(&key(1), RemovalCause::Cleared).unwrap();
        assert!(!untracked.still_stored, "nobody asked to track sharing");
        store.insert(key(1), 7, t0, &mut Vec::new());
        store.track_sharing(|v: &u32| *v as usize);
        store.track_sharing(|_: &u32| 0); // asking again changes nothing
        assert!(
            store
                .remove(&key(1), RemovalCause::Cleared)
                .unwrap()
                .still_stored
        );
        assert!(
            !store
                .remove(&key(2), RemovalCause::Cleared)
                .unwrap()
                .still_stored
        );
    }

    /// Under every sequence of operations, a value leaves marked exactly when another entry
    /// still stores it, and the counts match the entries.
    #[test]
    fn sharing_marks_agree_with_the_entries_left() {
        let t0 = Instant::now();
        let mut seed = 0x2545_F491_4F6C_DD1Du64;
        let mut next = move |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        let mut store = sharing_store(Ttl::from_secs(3.0), Some(6));
        let mut clock = 0u64;
        for step in 0..5000u64 {
            clock += next(3);
            let now = t0 + Duration::from_millis(clock * 100);
            let k = next(12) as i64;
            let mut removed = Vec::new();
            match next(5) {
                0..=2 => store.insert(key(k), next(4) as u32, now, &mut removed),
                3 => removed.extend(store.remove(&key(k), RemovalCause::Cleared)),
                _ => removed.extend(store.reap_expired(now, usize::MAX)),
            }
            for gone in &removed {
                let stored = store.entries.values().any(|e| e.value == gone.value);
                assert_eq!(gone.still_stored, stored, "step {step}");
            }
            let counts = &store.sharing.as_ref().unwrap().counts;
            assert_eq!(counts.values().sum::<usize>(), store.len(), "step {step}");
            for (&id, &count) in counts {
                let held = store.entries.values().filter(|e| e.value as usize == id);
                assert_eq!(held.count(), count, "step {step}");
            }
        }
    }

    #[test]
    fn stores_that_never_expire_keep_no_index() {
        let t0 = Instant::now();
        let mut store = Store::new(Ttl::Never, Some(2));
        for k in 0..5 {
            store.insert(key(k), k, t0, &mut Vec::new());
        }
        assert!(store.by_write.is_empty());
        assert!(store
            .reap_expired(t0 + Duration::from_secs(1 << 30), usize::MAX)
            .is_empty());
    }
}
