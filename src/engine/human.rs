//! Durations as people read them — "59m 58s", "1h", "250ms" — for log records, reprs and
//! messages. The spelling is `humantime`'s; what is added here is the rounding: a
//! remaining time is rounded up (a live entry never "expires in 0s"), and only the unit
//! that matters is kept (whole seconds from one second up, milliseconds below).
//!
//! Pure Rust: no Python types, unit-tested with `cargo test`.

use std::time::Duration;

/// `d` rounded up to whole seconds (or to whole milliseconds below one second), spelled
/// as `humantime` does: `"1h"`, `"59m 58s"`, `"2days 3h"`, `"250ms"`, `"0s"`.
pub fn human_duration(d: Duration) -> String {
    let rounded = if d >= Duration::from_secs(1) {
        let whole = d.as_secs();
        let up = if d.subsec_nanos() > 0 { 1 } else { 0 };
        Duration::from_secs(whole.saturating_add(up))
    } else {
        let millis = d.as_nanos().div_ceil(1_000_000);
        // Below one second, so at most 1000 milliseconds: the cast cannot truncate.
        Duration::from_millis(millis as u64)
    };
    humantime::format_duration(rounded).to_string()
}

/// A number of seconds as given to `ttl` (already checked not to be NaN): `"never"` for
/// infinity or a duration too long to represent, `"0s"` for zero or less.
pub fn human_secs(secs: f64) -> String {
    if secs <= 0.0 {
        return "0s".to_owned();
    }
    match Duration::try_from_secs_f64(secs) {
        Ok(d) => human_duration(d),
        Err(_) => "never".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_units_are_kept_as_they_are() {
        assert_eq!(human_duration(Duration::from_secs(3600)), "1h");
        assert_eq!(human_duration(Duration::from_secs(3598)), "59m 58s");
        assert_eq!(
            human_duration(Duration::from_secs(86_400 * 2 + 3600 * 3)),
            "2days 3h"
        );
        assert_eq!(human_duration(Duration::ZERO), "0s");
    }

    #[test]
    fn a_remaining_time_rounds_up() {
        assert_eq!(human_duration(Duration::from_millis(3_599_999)), "1h");
        assert_eq!(human_duration(Duration::from_millis(1_001)), "2s");
        assert_eq!(human_duration(Duration::from_micros(249_001)), "250ms");
        assert_eq!(human_duration(Duration::from_nanos(1)), "1ms");
    }

    #[test]
    fn seconds_as_given_to_ttl() {
        assert_eq!(human_secs(60.0), "1m");
        assert_eq!(human_secs(0.5), "500ms");
        assert_eq!(human_secs(-3.0), "0s");
        assert_eq!(human_secs(f64::INFINITY), "never");
        assert_eq!(human_secs(1e300), "never");
    }
}
