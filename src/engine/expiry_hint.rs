//! `ExpiryHint`: a lock-free mark "nothing here expires before this instant", so the
//! expiry reaper can tell without taking a lock (or, for the process-wide mark, without
//! attaching to the interpreter) whether any work is due.
//!
//! The mark is conservative: it may be earlier than the true next expiry (an entry that
//! was since removed or rewritten) — which costs one look that finds nothing and sets it
//! right — but never later, because every write lowers it before the written entry can
//! expire.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The mark, as nanoseconds since [`epoch`]; `NEVER` when nothing is due ever.
pub struct ExpiryHint(AtomicU64);

const NEVER: u64 = u64::MAX;

/// The process-wide origin of the marks (any instant before it counts as the epoch
/// itself: due at once, which is the safe side).
fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

fn to_mark(at: Option<Instant>) -> u64 {
    match at {
        None => NEVER,
        Some(at) => {
            let nanos = at.saturating_duration_since(epoch()).as_nanos();
            u64::try_from(nanos).unwrap_or(NEVER - 1).min(NEVER - 1)
        }
    }
}

fn from_mark(mark: u64) -> Option<Instant> {
    (mark != NEVER).then(|| epoch() + Duration::from_nanos(mark))
}

impl ExpiryHint {
    pub const fn never() -> Self {
        ExpiryHint(AtomicU64::new(NEVER))
    }

    /// Lowers the mark to `at` if that is earlier (a write whose entry expires at `at`).
    pub fn note(&self, at: Option<Instant>) {
        let mark = to_mark(at);
        if mark != NEVER {
            self.0.fetch_min(mark, Ordering::Relaxed);
        }
    }

    /// Sets the mark to the exact next expiry, after a look at the entries.
    pub fn set(&self, at: Option<Instant>) {
        self.0.store(to_mark(at), Ordering::Relaxed);
    }

    /// The mark.
    pub fn get(&self) -> Option<Instant> {
        from_mark(self.0.load(Ordering::Relaxed))
    }

    /// Whether something may have expired by `now`.
    pub fn due(&self, now: Instant) -> bool {
        self.0.load(Ordering::Relaxed) <= to_mark(Some(now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notes_keep_the_earliest_and_set_overrides() {
        let now = Instant::now();
        let hint = ExpiryHint::never();
        assert!(!hint.due(now + Duration::from_secs(1 << 30)));
        assert_eq!(hint.get(), None);
        hint.note(Some(now + Duration::from_secs(10)));
        hint.note(Some(now + Duration::from_secs(20)));
        hint.note(None);
        let at = hint.get().expect("a mark");
        assert!(at >= now + Duration::from_secs(10) - Duration::from_micros(1));
        assert!(at <= now + Duration::from_secs(10));
        assert!(!hint.due(now + Duration::from_secs(9)));
        assert!(hint.due(now + Duration::from_secs(10)));
        hint.set(Some(now + Duration::from_secs(30)));
        assert!(!hint.due(now + Duration::from_secs(29)));
        hint.set(None);
        assert_eq!(hint.get(), None);
    }

    #[test]
    fn instants_before_the_epoch_are_due_at_once_and_far_ones_never_overflow() {
        let before = Instant::now();
        let _ = epoch();
        let hint = ExpiryHint::never();
        hint.note(Some(before));
        assert!(hint.due(Instant::now()));
        let far = ExpiryHint::never();
        far.note(Instant::now().checked_add(Duration::from_secs(u64::MAX / 4)));
        assert!(!far.due(Instant::now()));
    }
}
