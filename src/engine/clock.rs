//! The clocks expiry is judged with: the exact one for writes, and a cheap one for hits.
//!
//! An entry lives while `now < written + ttl`. `written` is read from the exact monotonic
//! clock ([`exact`]). A hit only has to decide whether that deadline has passed, and
//! reading the exact clock costs more than the rest of a hit's lookup on some machines
//! (about 40 ns on virtual machines), so a hit reads [`coarse`] first: the kernel's
//! `CLOCK_MONOTONIC_COARSE`, the monotonic time as of the last timer tick, which costs a
//! memory read. It is never later than the exact clock, so a deadline it says has passed
//! has passed. It lags by up to a tick (1–10 ms; 4 ms on most kernels, up to about 6 ms
//! measured on a loaded virtual machine, whose ticks come late), so a deadline less than
//! [`EXACT_WITHIN`] ahead of it is judged with the exact clock instead ([`HitTime`]).
//! Expiry is therefore exact, as long as the coarse clock lags by less than
//! `EXACT_WITHIN`; should the kernel ever fall further behind, an entry is served late by
//! the excess, and never early.
//!
//! `std::time::Instant` reads `CLOCK_MONOTONIC` on Linux; the coarse clock counts on the
//! same timeline, so a coarse reading converts to an `Instant` by a fixed offset, taken
//! once, on the safe side (see `Anchor`). Elsewhere `coarse` is the exact clock.

use std::time::{Duration, Instant};

/// The coarsest tick the coarse clock may have for hits to use it. A kernel whose coarse
/// clock is coarser gets the exact one.
pub const MAX_TICK: Duration = Duration::from_millis(10);

/// How close to a deadline the coarse clock is not trusted: closer than this, a hit reads
/// the exact clock. Twice the coarsest tick allowed, so a tick that comes late is covered.
pub const EXACT_WITHIN: Duration = Duration::from_millis(20);

/// The exact monotonic clock: the time an entry is written, and every other reading that
/// is not a hit's expiry check.
#[inline]
pub fn exact() -> Instant {
    Instant::now()
}

/// A reading no later than [`exact`] at the same moment, and earlier by about one tick
/// of the coarse clock (see the module comment).
#[inline]
pub fn coarse() -> Instant {
    imp::coarse()
}

/// The tick of the clock [`coarse`] reads (zero when it is the exact clock).
pub fn coarse_tick() -> Duration {
    imp::tick()
}

/// A "now" that can say whether a deadline has passed. An `Instant` is one (exactly);
/// [`HitTime`] is the cheap one hits use.
pub trait Now: Copy {
    /// Whether `deadline` has passed: `now >= deadline`.
    fn reached(self, deadline: Instant) -> bool;
    /// The time itself, for figures (how long until a deadline): may lag the exact clock.
    fn instant(self) -> Instant;
}

impl Now for Instant {
    fn reached(self, deadline: Instant) -> bool {
        self >= deadline
    }

    fn instant(self) -> Instant {
        self
    }
}

/// The time a hit judges expiry by: a coarse reading, and the exact clock read only for a
/// deadline too close to it to decide.
#[derive(Clone, Copy, Debug)]
pub struct HitTime(Instant);

impl HitTime {
    /// Reads the coarse clock.
    #[inline]
    pub fn read() -> Self {
        HitTime(coarse())
    }

    /// A fixed time that no deadline is ever compared with (a cache without a ttl).
    pub fn unused(at: Instant) -> Self {
        HitTime(at)
    }
}

impl Now for HitTime {
    #[inline]
    fn reached(self, deadline: Instant) -> bool {
        if self.0 >= deadline {
            // The coarse clock is never ahead: the exact one is past it too.
            return true;
        }
        if deadline.duration_since(self.0) > EXACT_WITHIN {
            return false;
        }
        exact() >= deadline
    }

    fn instant(self) -> Instant {
        self.0
    }
}

#[cfg(target_os = "linux")]
mod imp {
    use std::sync::OnceLock;
    use std::time::{Duration, Instant};

    use super::MAX_TICK;

    /// The offset between the raw coarse clock and `Instant`: the `Instant` of one moment
    /// and the raw monotonic time read just after it. A raw reading `m` converts to
    /// `instant + (m - raw)`, which is `m` less the gap between the two anchor reads:
    /// never later than the true instant, the safe side for expiry.
    pub struct Anchor {
        instant: Instant,
        raw: Duration,
        tick: Duration,
    }

    fn read(clock: libc::clockid_t) -> Option<Duration> {
        let mut now = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `now` is a valid, writable timespec; the call writes only into it.
        if unsafe { libc::clock_gettime(clock, &mut now) } != 0 {
            return None;
        }
        Some(Duration::new(
            u64::try_from(now.tv_sec).ok()?,
            u32::try_from(now.tv_nsec).ok()?,
        ))
    }

    fn resolution(clock: libc::clockid_t) -> Option<Duration> {
        let mut res = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: as in `read`.
        if unsafe { libc::clock_getres(clock, &mut res) } != 0 {
            return None;
        }
        Some(Duration::new(
            u64::try_from(res.tv_sec).ok()?,
            u32::try_from(res.tv_nsec).ok()?,
        ))
    }

    /// `None` when the coarse clock is missing or too coarse: hits read the exact clock.
    fn anchor() -> Option<&'static Anchor> {
        static ANCHOR: OnceLock<Option<Anchor>> = OnceLock::new();
        ANCHOR
            .get_or_init(|| {
                let tick = resolution(libc::CLOCK_MONOTONIC_COARSE)?;
                read(libc::CLOCK_MONOTONIC_COARSE)?;
                if tick.is_zero() || tick > MAX_TICK {
                    return None;
                }
                // In this order: `raw` is read after `instant`, so it is not earlier.
                let instant = Instant::now();
                let raw = read(libc::CLOCK_MONOTONIC)?;
                Some(Anchor { instant, raw, tick })
            })
            .as_ref()
    }

    #[inline]
    pub fn coarse() -> Instant {
        let Some(anchor) = anchor() else {
            return Instant::now();
        };
        let Some(raw) = read(libc::CLOCK_MONOTONIC_COARSE) else {
            return Instant::now();
        };
        // The coarse clock may still show the tick before the anchor was taken.
        match raw.checked_sub(anchor.raw) {
            Some(since) => anchor.instant + since,
            None => anchor
                .instant
                .checked_sub(anchor.raw - raw)
                .unwrap_or_else(Instant::now),
        }
    }

    pub fn tick() -> Duration {
        anchor().map_or(Duration::ZERO, |a| a.tick)
    }
}

#[cfg(not(target_os = "linux"))]
mod imp {
    use std::time::{Duration, Instant};

    pub fn coarse() -> Instant {
        Instant::now()
    }

    pub fn tick() -> Duration {
        Duration::ZERO
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_coarse_clock_is_never_ahead_of_the_exact_one_and_lags_about_a_tick() {
        let tick = coarse_tick();
        assert!(tick <= MAX_TICK);
        let start = exact();
        let mut lags = Vec::new();
        while start.elapsed() < Duration::from_millis(200) {
            let before = exact();
            let coarse = coarse();
            let after = exact();
            assert!(
                coarse <= after,
                "the coarse reading is ahead of the exact one"
            );
            // Only readings taken close together say how far the clock lags (a thread
            // preempted between two reads says nothing).
            if after - before < Duration::from_micros(20) {
                lags.push(after - coarse);
            }
        }
        // Typically within a tick; a virtual machine's ticks can come late, but not by
        // more than the margin hits leave for it, except under extreme load: the median.
        lags.sort_unstable();
        let median = lags[lags.len() / 2];
        assert!(
            median <= EXACT_WITHIN,
            "a median lag of {median:?}, tick {tick:?}"
        );
    }

    #[test]
    fn a_deadline_is_never_judged_passed_before_the_exact_clock_reaches_it() {
        // Once `coarse() >= deadline`, `exact() >= deadline`; and a hit time says a
        // deadline has passed only when the exact clock says so.
        for _ in 0..50 {
            let deadline = exact() + Duration::from_micros(300);
            while coarse() < deadline {}
            assert!(exact() >= deadline);
        }
        for _ in 0..200 {
            let deadline = exact() + Duration::from_micros(50);
            while !HitTime::read().reached(deadline) {}
            assert!(exact() >= deadline);
        }
    }

    #[test]
    fn a_hit_time_judges_a_near_deadline_exactly() {
        // A deadline just ahead of the exact clock (so within a tick of the coarse one) is
        // judged by the exact clock: not passed before it, passed right after.
        let deadline = exact() + Duration::from_millis(2);
        while exact() < deadline {
            // Only the exact clock can say so this close to the deadline.
            assert!(!HitTime::read().reached(deadline) || exact() >= deadline);
        }
        assert!(HitTime::read().reached(deadline));
        // Far deadlines are decided by the coarse reading alone, either way.
        let far = exact() + Duration::from_secs(60);
        assert!(!HitTime::read().reached(far));
        let past = exact().checked_sub(Duration::from_millis(30));
        assert!(past.is_none_or(|past| HitTime::read().reached(past)));
    }
}
