//! The clocks expiry is judged with: the exact one for writes, and a cheap one for hits.
//!
//! An entry lives while `now < written + ttl`. `written` is read from the exact monotonic
//! clock ([`exact`]). A hit only has to decide whether that deadline has passed, and
//! reading the exact clock costs more than the rest of a hit's lookup on some machines
//! (about 40 ns on virtual machines), so a hit reads the kernel's coarse monotonic clock
//! first ([`HitTime`]): `CLOCK_MONOTONIC_COARSE`, the monotonic time as of the last timer
//! tick, which costs a memory read. It is never ahead of the exact clock, so a deadline it
//! says has passed has passed. It lags by up to a tick (1–10 ms; 4 ms on most kernels, up
//! to about 6 ms measured on a loaded virtual machine, whose ticks come late), so a
//! deadline less than [`EXACT_WITHIN`] ahead of it is judged with the exact clock instead.
//! Expiry is therefore exact, as long as the coarse clock lags by less than
//! `EXACT_WITHIN`; should the kernel ever fall further behind, an entry is served late by
//! the excess, and never early.
//!
//! A hit compares plain nanosecond counts: the coarse reading, and the deadline on the
//! same scale, worked out once when the entry is written ([`Deadline`]). `Instant` reads
//! `CLOCK_MONOTONIC` on Linux and the coarse clock counts on the same timeline, so the two
//! scales differ by a fixed offset, measured once; it is rounded so that a deadline's count
//! is never earlier than the deadline itself (the safe side). Elsewhere a hit reads the
//! exact clock.

use std::time::{Duration, Instant};

/// The coarsest tick the coarse clock may have for hits to use it. A kernel whose coarse
/// clock is coarser gets the exact one.
pub const MAX_TICK: Duration = Duration::from_millis(10);

/// How close to a deadline the coarse clock is not trusted: closer than this, a hit reads
/// the exact clock. Twice the coarsest tick allowed, so a tick that comes late is covered.
pub const EXACT_WITHIN: Duration = Duration::from_millis(20);

const EXACT_WITHIN_NANOS: u64 = EXACT_WITHIN.as_nanos() as u64;

/// The exact monotonic clock: the time an entry is written, and every reading that is not
/// a hit's expiry check.
#[inline]
pub fn exact() -> Instant {
    Instant::now()
}

/// The tick of the coarse clock hits read (zero when they read the exact one).
pub fn coarse_tick() -> Duration {
    imp::tick()
}

/// A deadline, and its count on the coarse clock's scale (never earlier than the deadline
/// itself), so that a hit compares two integers.
#[derive(Clone, Copy, Debug)]
pub struct Deadline {
    at: Instant,
    coarse: u64,
}

impl Deadline {
    pub fn new(at: Instant) -> Self {
        Deadline {
            at,
            coarse: imp::coarse_count_at_or_after(at),
        }
    }

    pub fn instant(&self) -> Instant {
        self.at
    }
}

/// A "now" that can say whether a deadline has passed. An `Instant` is one (exactly);
/// [`HitTime`] is the cheap one hits use.
pub trait Now: Copy {
    /// Whether `deadline` has passed: `now >= deadline`.
    fn reached(self, deadline: &Deadline) -> bool;
}

impl Now for Instant {
    fn reached(self, deadline: &Deadline) -> bool {
        self >= deadline.at
    }
}

/// The time a hit judges expiry by: a coarse reading, and the exact clock read only for a
/// deadline too close to it to decide.
#[derive(Clone, Copy, Debug)]
pub struct HitTime {
    /// The coarse clock's count; `None` where there is no usable coarse clock.
    coarse: Option<u64>,
}

impl HitTime {
    /// Reads the coarse clock.
    #[inline]
    pub fn read() -> Self {
        HitTime {
            coarse: imp::coarse_count(),
        }
    }

    /// A time that no deadline is ever compared with (a cache without a ttl): reads nothing.
    pub fn unused() -> Self {
        HitTime { coarse: None }
    }
}

impl Now for HitTime {
    #[inline]
    fn reached(self, deadline: &Deadline) -> bool {
        if let Some(now) = self.coarse {
            if now >= deadline.coarse {
                // The coarse clock is never ahead, and the deadline's count is not early:
                // the exact clock is past the deadline too.
                return true;
            }
            if deadline.coarse - now > EXACT_WITHIN_NANOS {
                return false;
            }
        }
        exact() >= deadline.at
    }
}

#[cfg(target_os = "linux")]
mod imp {
    use std::sync::OnceLock;
    use std::time::{Duration, Instant};

    use super::MAX_TICK;

    /// The offset between `Instant` and the coarse clock's count: an `Instant` and the raw
    /// monotonic count read just after it. The count of an instant `t` is
    /// `raw + (t - instant)`, which is `t`'s own count plus the gap between the two anchor
    /// reads: never earlier (the safe side for a deadline).
    struct Anchor {
        instant: Instant,
        raw: u64,
        tick: Duration,
    }

    fn read(clock: libc::clockid_t) -> Option<u64> {
        let mut now = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `now` is a valid, writable timespec; the call writes only into it.
        if unsafe { libc::clock_gettime(clock, &mut now) } != 0 {
            return None;
        }
        let secs = u64::try_from(now.tv_sec).ok()?;
        let nanos = u64::try_from(now.tv_nsec).ok()?;
        secs.checked_mul(1_000_000_000)?.checked_add(nanos)
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
    pub fn coarse_count() -> Option<u64> {
        anchor()?;
        read(libc::CLOCK_MONOTONIC_COARSE)
    }

    /// `at` on the coarse clock's scale, never earlier (the largest count when it does
    /// not fit, or without a coarse clock: then only the exact comparison decides).
    pub fn coarse_count_at_or_after(at: Instant) -> u64 {
        let Some(anchor) = anchor() else {
            return u64::MAX;
        };
        let nanos = |d: Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        match at.checked_duration_since(anchor.instant) {
            Some(after) => anchor.raw.saturating_add(nanos(after)),
            None => anchor
                .raw
                .saturating_sub(nanos(anchor.instant.duration_since(at))),
        }
    }

    pub fn tick() -> Duration {
        anchor().map_or(Duration::ZERO, |a| a.tick)
    }

    /// For tests: the exact clock's raw count.
    #[cfg(test)]
    pub fn exact_count() -> u64 {
        read(libc::CLOCK_MONOTONIC).expect("a monotonic clock")
    }

    /// For tests: the coarse clock as an `Instant`, never later than the true instant.
    #[cfg(test)]
    pub fn coarse_instant() -> Instant {
        let (Some(anchor), Some(raw)) = (anchor(), coarse_count()) else {
            return Instant::now();
        };
        match raw.checked_sub(anchor.raw) {
            Some(since) => anchor.instant + Duration::from_nanos(since),
            None => anchor.instant - Duration::from_nanos(anchor.raw - raw),
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod imp {
    use std::time::{Duration, Instant};

    pub fn coarse_count() -> Option<u64> {
        None
    }

    pub fn coarse_count_at_or_after(_at: Instant) -> u64 {
        u64::MAX
    }

    pub fn tick() -> Duration {
        Duration::ZERO
    }

    #[cfg(test)]
    pub fn coarse_instant() -> Instant {
        Instant::now()
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
            let coarse = imp::coarse_instant();
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
        for micros in [1, 50, 300, 5_000] {
            for _ in 0..20 {
                let deadline = Deadline::new(exact() + Duration::from_micros(micros));
                while !HitTime::read().reached(&deadline) {}
                assert!(exact() >= deadline.instant());
            }
        }
    }

    #[test]
    fn a_hit_time_judges_a_near_deadline_exactly() {
        // A deadline just ahead of the exact clock (so within a tick of the coarse one) is
        // judged by the exact clock: not passed before it, passed right after.
        let deadline = Deadline::new(exact() + Duration::from_millis(2));
        while exact() < deadline.instant() {
            // Only the exact clock can say so this close to the deadline.
            assert!(!HitTime::read().reached(&deadline) || exact() >= deadline.instant());
        }
        assert!(HitTime::read().reached(&deadline));
        // Far deadlines are decided by the coarse reading alone, either way.
        let far = Deadline::new(exact() + Duration::from_secs(60));
        assert!(!HitTime::read().reached(&far));
        if let Some(past) = exact().checked_sub(Duration::from_millis(30)) {
            assert!(HitTime::read().reached(&Deadline::new(past)));
        }
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_deadline_counts_on_the_coarse_scale_never_before_itself() {
        // The raw monotonic count read before an instant is not above the instant's own
        // count, so neither may the deadline's be below it; and counts keep their spacing.
        for _ in 0..1000 {
            let before = imp::exact_count();
            let now = exact();
            let count = Deadline::new(now).coarse;
            assert!(count >= before, "{count} < {before}");
            let later = Deadline::new(now + Duration::from_secs(1)).coarse;
            assert_eq!(later - count, 1_000_000_000);
        }
    }
}
