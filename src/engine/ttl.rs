//! `ttl` strings: pandas `Timedelta` syntax ("1h30m", "1.5 days", "1 days 02:03:04",
//! "P1DT2H", "10" for ten nanoseconds) parsed into seconds, without importing pandas.
//!
//! Streamlit passes a string `ttl` to `pandas.Timedelta`, so a drop-in replacement has to
//! accept exactly the strings pandas accepts and read them as the same number of nanoseconds.
//! pandas does not parse these with a grammar: it scans the text one character at a time with
//! a small state machine, and its quirks are observable ("30 1h" is 301 hours, "5-3s" is
//! -53 seconds, "P1M" is one *minute*). The parsers below reproduce those machines state for
//! state, so every such oddity is matched on purpose; each is pointed out where it happens.
//! Behaviour was checked against pandas 3.1.1, string by string (see the tests).
//!
//! `humantime` (which the crate uses to spell durations, in `human.rs`) does not parse
//! these: its grammar is not pandas'. It has no fractions ("1.5 days"), no clock form
//! ("02:03:04"), no ISO-8601 durations, no bare nanosecond numbers, and it reads "1M" as a
//! month where pandas refuses it.
//!
//! Pure Rust: no Python types, unit-tested with `cargo test`.

use std::fmt;

/// Why a ttl string was rejected.
#[derive(Debug, Clone, PartialEq)]
pub struct TtlParseError {
    pub input: String,
}

impl fmt::Display for TtlParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Time string doesn't look right. It should be formatted as '1d2h34m' or 2 days, \
             for example. Got: {}",
            self.input
        )
    }
}

impl std::error::Error for TtlParseError {}

/// Parse a ttl string in pandas `Timedelta` syntax into seconds (may be negative; never NaN).
///
/// Whitespace at either end is ignored.
///
/// # Errors
///
/// Every string pandas refuses, and those it turns into `NaT` (`""`, `"nan"`, `"NaT"`), which
/// Streamlit refuses as well.
pub fn parse_ttl_str(text: &str) -> Result<f64, TtlParseError> {
    let nanos = parse_nanos(text.trim()).map_err(|Rejected| TtlParseError {
        input: text.to_owned(),
    })?;
    // One rounding, from the exact nanosecond count: "1.5 days" is exactly 129600.0, and the
    // result equals pandas' `Timedelta.value / 1e9`.
    Ok(nanos as f64 / NANOS_PER_SECOND as f64)
}

/// A string pandas would refuse. It carries no detail because every refusal becomes the one
/// message Streamlit shows.
#[derive(Debug, PartialEq)]
struct Rejected;

type Parsed<T> = Result<T, Rejected>;

const NANOS_PER_SECOND: i128 = 1_000_000_000;

/// 2^63, the smallest `f64` whose whole part does not fit an `i64`.
const F64_BEYOND_I64: f64 = 9_223_372_036_854_775_808.0;

/// The string as a pandas `Timedelta`, in nanoseconds.
fn parse_nanos(text: &str) -> Parsed<i64> {
    // pandas picks the ISO-8601 parser from the first character(s) alone.
    let nanos = if text.starts_with('P') || text.starts_with("-P") {
        parse_iso8601(text)?
    } else {
        parse_free_form(text)?
    };
    // A Timedelta is an i64 of nanoseconds, and i64::MIN is reserved for NaT: pandas raises
    // `OutOfBoundsTimedelta` (a ValueError) for anything outside the rest of the range.
    match i64::try_from(nanos) {
        Ok(nanos) if nanos != i64::MIN => Ok(nanos),
        _ => Err(Rejected),
    }
}

/// The units pandas accepts after a number.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Unit {
    Week,
    Day,
    Hour,
    Minute,
    Second,
    Milli,
    Micro,
    Nano,
}

impl Unit {
    /// pandas' unit spellings. The lookup is case-insensitive ("1 Hours", "1DAYS"), except
    /// that "M", "Y" and "y" (months and years, which have no fixed length) are refused by
    /// exact spelling, so "1m" is a minute but "1M" is an error. Near misses such as "mins",
    /// "hrs", "weeks", "T" or "L" are refused, as in pandas.
    fn from_abbreviation(text: &str) -> Option<Unit> {
        if matches!(text, "M" | "Y" | "y") {
            return None;
        }
        let unit = match text.to_lowercase().as_str() {
            "w" => Unit::Week,
            "d" | "day" | "days" => Unit::Day,
            "h" | "hr" | "hour" | "hours" => Unit::Hour,
            "m" | "min" | "minute" | "minutes" => Unit::Minute,
            "s" | "sec" | "second" | "seconds" => Unit::Second,
            "ms" | "milli" | "millis" | "millisecond" | "milliseconds" => Unit::Milli,
            // "µ" is U+00B5 MICRO SIGN; the Greek "μ" (U+03BC) is not accepted by pandas.
            "us" | "µs" | "micro" | "micros" | "microsecond" | "microseconds" => Unit::Micro,
            "ns" | "nano" | "nanos" | "nanosecond" | "nanoseconds" => Unit::Nano,
            _ => return None,
        };
        Some(unit)
    }

    fn nanos(self) -> i128 {
        match self {
            Unit::Week => 7 * 86_400 * NANOS_PER_SECOND,
            Unit::Day => 86_400 * NANOS_PER_SECOND,
            Unit::Hour => 3_600 * NANOS_PER_SECOND,
            Unit::Minute => 60 * NANOS_PER_SECOND,
            Unit::Second => NANOS_PER_SECOND,
            Unit::Milli => 1_000_000,
            Unit::Micro => 1_000,
            Unit::Nano => 1,
        }
    }

    /// How many decimals of a fractional amount of this unit pandas keeps before scaling it
    /// to nanoseconds: the number of digits of `nanos()` minus one.
    fn rounding_decimals(self) -> usize {
        match self {
            Unit::Week => 14,
            Unit::Day => 13,
            Unit::Hour => 12,
            Unit::Minute => 10,
            Unit::Second => 9,
            Unit::Milli => 6,
            Unit::Micro => 3,
            Unit::Nano => 0,
        }
    }
}

/// One `<whole>.<fraction> <unit>` component in nanoseconds, computed the way pandas does it:
/// through an `f64`, whose fractional part is rounded (half to even) to
/// `unit.rounding_decimals()` decimals and then scaled and truncated. Exact decimal arithmetic
/// would differ from pandas in the last nanosecond of some inputs ("1.0009765625s" is
/// `1_000_976_562` ns in pandas, a tie rounded to even; "123456789012345678" is
/// `123_456_789_012_345_680` ns, the nearest `f64`), so the float route is kept on purpose. For
/// everyday inputs ("1.5h", "0.3 days") both routes give the same exact count.
fn component_nanos(whole: &str, fraction: &str, unit: Unit) -> Parsed<i128> {
    // Either side may be empty (".5", "5."), but not both (".").
    let value: f64 = format!("{whole}.{fraction}")
        .parse()
        .map_err(|_| Rejected)?;
    // pandas converts the whole part to an i64 first. Digit strings are never negative or
    // NaN, but may be infinite (hundreds of digits), which this refuses too.
    if value >= F64_BEYOND_I64 {
        return Err(Rejected);
    }
    let whole_part = value.trunc();
    let mut fraction_part = value - whole_part;
    let decimals = unit.rounding_decimals();
    if decimals > 0 {
        fraction_part = round_to_decimals(fraction_part, decimals);
    }
    let nanos = whole_part as i128 * unit.nanos() + (fraction_part * unit.nanos() as f64) as i128;
    // pandas checks each component on its own, before adding it to the total.
    if nanos > i128::from(i64::MAX) {
        return Err(Rejected);
    }
    Ok(nanos)
}

/// Python's `round(value, decimals)` for a float: the nearest `f64` to the value correctly
/// rounded, half to even, to that many decimals. Rust's fixed-precision formatting rounds the
/// exact binary value the same way, so formatting and parsing back reproduces it.
fn round_to_decimals(value: f64, decimals: usize) -> f64 {
    format!("{value:.decimals$}")
        .parse()
        .expect("a formatted finite f64 parses back")
}

/// An integer made of ASCII digits.
fn parse_integer(digits: &str) -> Parsed<i128> {
    digits.parse().map_err(|_| Rejected)
}

/// A clock field ("02" of "02:03:04") in nanoseconds: exact integer arithmetic, as in pandas.
/// pandas' integers are unbounded; here anything beyond `i128` is refused, which only differs
/// for contrived strings whose huge fields cancel out (see the tests).
fn clock_field_nanos(digits: &str, nanos_per_unit: i128) -> Parsed<i128> {
    parse_integer(digits)?
        .checked_mul(nanos_per_unit)
        .ok_or(Rejected)
}

/// Fraction digits after a clock's seconds ("02:03:04.5") in nanoseconds: the first nine
/// digits count, the rest are dropped (truncation, unlike the rounding of `component_nanos`).
fn clock_fraction_nanos(digits: &str) -> Parsed<i128> {
    if digits.is_empty() {
        return Err(Rejected);
    }
    // ASCII digits, so byte indices are character indices.
    let kept = &digits[..digits.len().min(9)];
    Ok(parse_integer(kept)? * 10_i128.pow(9 - kept.len() as u32))
}

/// pandas' free-form syntax: a bare number of nanoseconds ("10"), `<number><unit>` components
/// ("1d2h34m", "1.5 days", "1h 23s", "1,000s"), and an "hh:mm:ss[.fffffffff]" clock, optionally
/// after components ("1 days 02:03:04").
fn parse_free_form(text: &str) -> Parsed<i128> {
    let mut parser = FreeFormParser::default();
    for c in text.chars() {
        parser.feed(c)?;
    }
    parser.finish()
}

/// The clock field a `:` has just closed.
#[derive(Debug, Clone, Copy, PartialEq)]
enum ClockField {
    Hours,
    Minutes,
    Seconds,
}

impl ClockField {
    /// The field the next `:` closes. A fourth field counts as seconds again; pandas then
    /// refuses the string at the end ("1:2:3:4").
    fn after(previous: Option<ClockField>) -> ClockField {
        match previous {
            None => ClockField::Hours,
            Some(ClockField::Hours) => ClockField::Minutes,
            Some(ClockField::Minutes | ClockField::Seconds) => ClockField::Seconds,
        }
    }

    fn nanos(self) -> i128 {
        match self {
            ClockField::Hours => Unit::Hour.nanos(),
            ClockField::Minutes => Unit::Minute.nanos(),
            ClockField::Seconds => Unit::Second.nanos(),
        }
    }
}

/// The state of pandas' free-form scanner. Digits and unit letters pile up in `whole`,
/// `fraction` and `unit` until something completes a component.
#[derive(Default)]
struct FreeFormParser {
    total: i128,
    /// A leading '-' was seen: every amount added while this is set is negated.
    negative: bool,
    /// A '.' was seen and no unit letter since, so digits are fraction digits.
    after_dot: bool,
    /// A unit letter was seen, or a clock's seconds were closed by '.'.
    seen_unit: bool,
    /// A ':' was seen.
    seen_clock: bool,
    /// The last clock field closed by a ':'.
    last_clock_field: Option<ClockField>,
    whole: String,
    fraction: String,
    unit: String,
}

impl FreeFormParser {
    fn feed(&mut self, c: char) -> Parsed<()> {
        match c {
            // Separators anywhere, even inside a number: "1,000s" and "1 000s" are 1000 s.
            ' ' | ',' | '+' => Ok(()),
            '-' => self.on_minus(),
            '0'..='9' => self.on_digit(c),
            ':' => self.on_colon(),
            '.' => self.on_dot(),
            // Anything else, including tabs and non-ASCII digits, is part of a unit name and
            // fails the unit lookup later.
            _ => {
                self.unit.push(c);
                self.seen_unit = true;
                self.after_dot = false;
                Ok(())
            }
        }
    }

    /// Adds an amount, negated while a leading '-' is in force.
    fn add(&mut self, nanos: i128) -> Parsed<()> {
        let signed = if self.negative { -nanos } else { nanos };
        // Out-of-range totals are refused at the end, as in pandas; this only guards i128.
        self.total = self.total.checked_add(signed).ok_or(Rejected)?;
        Ok(())
    }

    fn flush_component(&mut self) -> Parsed<()> {
        let unit = Unit::from_abbreviation(&self.unit).ok_or(Rejected)?;
        self.add(component_nanos(&self.whole, &self.fraction, unit)?)?;
        self.whole.clear();
        self.fraction.clear();
        self.unit.clear();
        Ok(())
    }

    fn on_minus(&mut self) -> Parsed<()> {
        // Only one '-', before any unit or clock. It need not come first: pandas reads "5-3s"
        // as -53 s, the '-' negating the component that contains it.
        if self.negative || self.seen_unit || self.seen_clock {
            return Err(Rejected);
        }
        self.negative = true;
        Ok(())
    }

    fn on_digit(&mut self, digit: char) -> Parsed<()> {
        if self.after_dot {
            if self.unit.is_empty() {
                self.fraction.push(digit);
            } else {
                // A digit after "<unit>." joins the whole digits of the pending component, so
                // pandas reads "1h.5" as 15 hours and "1m.5s" as 15 ms. Matched deliberately.
                self.whole.push(digit);
                self.after_dot = false;
            }
        } else if self.unit.is_empty() {
            // Digits keep joining the same number across separators: "30 1h" is 301 hours.
            self.whole.push(digit);
        } else {
            // A digit after a unit starts the next component ("1h23s").
            self.flush_component()?;
            self.whole.push(digit);
        }
        Ok(())
    }

    fn on_colon(&mut self) -> Parsed<()> {
        // Components before a clock end the reach of a leading '-': pandas reads
        // "-1 days 02:03:04" as -1 day + 2:03:04, like its own repr of negative Timedeltas.
        if self.seen_unit {
            self.negative = false;
        }
        if self.whole.is_empty() {
            return Err(Rejected);
        }
        let field = ClockField::after(self.last_clock_field);
        self.add(clock_field_nanos(&self.whole, field.nanos())?)?;
        self.last_clock_field = Some(field);
        self.seen_clock = true;
        // pandas drops a unit typed before a ':' ("1s:2:3" is 1:02:03) but keeps any fraction
        // digits, which a later component picks up ("1.5s:2:3s 4" has 3.5 s). Matched.
        self.whole.clear();
        self.unit.clear();
        Ok(())
    }

    fn on_dot(&mut self) -> Parsed<()> {
        if !self.whole.is_empty() {
            if let Some(field) = self.last_clock_field {
                // In "hh:mm:ss.fff" the dot closes the seconds field.
                if field != ClockField::Minutes {
                    return Err(Rejected);
                }
                self.add(clock_field_nanos(&self.whole, NANOS_PER_SECOND)?)?;
                self.seen_unit = true;
                self.whole.clear();
                self.fraction.clear();
                self.unit.clear();
            }
        }
        // Further dots are ignored: "1.2.3s" is 1.23 s, "01:02:03.5.5" ends in .55 s.
        self.after_dot = true;
        Ok(())
    }

    fn finish(mut self) -> Parsed<i128> {
        if self.after_dot && !self.unit.is_empty() {
            // "1h.": the dot after the unit changes nothing.
            self.flush_component()?;
        } else if self.after_dot {
            // A trailing fraction belongs to a clock's seconds; without a clock the number
            // has no unit ("1.5"), which pandas refuses.
            let has_digits = !self.whole.is_empty() || !self.fraction.is_empty();
            if has_digits && self.last_clock_field.is_none() {
                return Err(Rejected);
            }
            let nanos = clock_fraction_nanos(&self.fraction)?;
            self.add(nanos)?;
        } else if let Some(field) = self.last_clock_field {
            // The clock must end on its seconds field, with nothing after it ("1:2" and
            // "01:02:03 days" are refused).
            if field != ClockField::Minutes || !self.unit.is_empty() {
                return Err(Rejected);
            }
            self.add(clock_field_nanos(&self.whole, NANOS_PER_SECOND)?)?;
        } else if !self.unit.is_empty() {
            // A unit needs whole digits: "s" and ".5s" are refused (yet ".5s 1h" is accepted,
            // because pandas checks this for the last component only).
            if self.whole.is_empty() {
                return Err(Rejected);
            }
            self.flush_component()?;
        } else {
            // Digits only: a bare number is nanoseconds ("10"). Nothing at all ("", "-"), or
            // digits left over after a unit ("1h30"), is refused.
            if self.whole.is_empty() || self.seen_unit {
                return Err(Rejected);
            }
            self.add(component_nanos(&self.whole, &self.fraction, Unit::Nano)?)?;
        }
        Ok(self.total)
    }
}

/// pandas' ISO-8601 duration parser ("P1DT2H", "PT1H30M", "P0DT0H0M1.5S", "-P1D"). Like the
/// free-form one it is a character scanner, with its own quirks, all matched: 'P' and 'T' are
/// ignored wherever they appear, 'M' always means minutes (so "P1M" is one minute, not a
/// month), there are no years, digits without a designator are dropped ("P1D2" is one day),
/// and a dot ends a seconds component even before another designator ("P1.5D" is 1 s + 5 days).
fn parse_iso8601(text: &str) -> Parsed<i128> {
    let (sign, body) = match text.strip_prefix('-') {
        Some(rest) => (-1, rest),
        None => (1, text),
    };
    let mut parser = Iso8601Parser::default();
    for c in body.chars() {
        parser.feed(c)?;
    }
    Ok(sign * parser.finish()?)
}

/// The state of pandas' ISO-8601 scanner.
struct Iso8601Parser {
    total: i128,
    /// A '-' after the 'P' negates the next component only ("P-1DT2H" is -1 day + 2 hours).
    negative: bool,
    seen_digit: bool,
    /// A '.' was seen: digits are seconds' fraction, read in groups of three.
    after_dot: bool,
    digits: String,
    /// Digits read in the current group of three fraction digits.
    group_len: usize,
    /// The unit of the current group: milliseconds, then micro-, then nanoseconds.
    group_unit: Unit,
}

impl Default for Iso8601Parser {
    fn default() -> Self {
        Iso8601Parser {
            total: 0,
            negative: false,
            seen_digit: false,
            after_dot: false,
            digits: String::new(),
            group_len: 0,
            group_unit: Unit::Milli,
        }
    }
}

impl Iso8601Parser {
    fn feed(&mut self, c: char) -> Parsed<()> {
        match c {
            '0'..='9' => self.on_digit(c),
            'P' | 'T' | '+' => Ok(()),
            '-' => {
                if self.negative || self.seen_digit {
                    return Err(Rejected);
                }
                self.negative = true;
                Ok(())
            }
            'W' => self.on_designator(Unit::Week),
            'D' => self.on_designator(Unit::Day),
            'H' => self.on_designator(Unit::Hour),
            'M' => self.on_designator(Unit::Minute),
            '.' => {
                if !self.digits.is_empty() {
                    self.add_digits(Unit::Second)?;
                    self.digits.clear();
                }
                self.after_dot = true;
                Ok(())
            }
            'S' => self.on_seconds(),
            _ => Err(Rejected),
        }
    }

    /// Adds `digits` as a whole number of `unit`, negated if a '-' is pending.
    fn add_digits(&mut self, unit: Unit) -> Parsed<()> {
        // No digits is zero: "P1DH" is one day.
        let nanos = component_nanos(&self.digits, "0", unit)?;
        let signed = if self.negative { -nanos } else { nanos };
        self.total = self.total.checked_add(signed).ok_or(Rejected)?;
        Ok(())
    }

    fn on_digit(&mut self, digit: char) -> Parsed<()> {
        self.seen_digit = true;
        if self.after_dot {
            if self.group_len == 3 && self.group_unit != Unit::Nano {
                // A fourth fraction digit: the three before it are a whole number of
                // milli- (or micro-) seconds.
                let finished_unit = self.group_unit;
                self.group_unit = if finished_unit == Unit::Milli {
                    Unit::Micro
                } else {
                    Unit::Nano
                };
                self.group_len = 1;
                self.add_digits(finished_unit)?;
                self.negative = false;
                self.digits.clear();
                self.digits.push(digit);
                return Ok(());
            }
            self.group_len += 1;
        }
        self.digits.push(digit);
        Ok(())
    }

    fn on_designator(&mut self, unit: Unit) -> Parsed<()> {
        // pandas allows at most two digits of hours and minutes, any number of days.
        if matches!(unit, Unit::Hour | Unit::Minute) && self.digits.len() > 2 {
            return Err(Rejected);
        }
        self.add_digits(unit)?;
        self.negative = false;
        self.digits.clear();
        Ok(())
    }

    fn on_seconds(&mut self) -> Parsed<()> {
        if self.after_dot {
            // A fraction: pad its last group to three digits ("1.5S" ends in 500 ms). More
            // than nine fraction digits leave a group longer than three, which is refused.
            if self.digits.is_empty() || self.group_len > 3 {
                return Err(Rejected);
            }
            for _ in self.group_len..3 {
                self.digits.push('0');
            }
            self.add_digits(self.group_unit)
        } else {
            self.add_digits(Unit::Second)
        }
        // pandas keeps the digits (and any pending '-') after 'S', so digits that follow join
        // them: "PT1S2S" is 1 s + 12 s. Matched deliberately.
    }

    fn finish(self) -> Parsed<i128> {
        if !self.seen_digit {
            return Err(Rejected);
        }
        Ok(self.total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Expected seconds are pandas 3.1.1's `Timedelta(s).value / 1e9`. (pandas' own
    /// `total_seconds()` sums days, seconds and sub-second parts in floating point, so it can
    /// be an ulp or so away for some values: -0.30000000000000004 for "-0.3s".)
    #[test]
    fn accepts_what_pandas_accepts() {
        let cases: &[(&str, f64)] = &[
            // SPEC §5 examples.
            ("1d", 86400.0),
            ("1D", 86400.0),
            ("1.5 days", 129600.0),
            ("1h23s", 3623.0),
            ("1h 23s", 3623.0),
            ("1d2h34m", 95640.0),
            ("1m", 60.0),
            ("1min", 60.0),
            ("1 hour", 3600.0),
            ("1hr", 3600.0),
            ("1w", 604800.0),
            ("1ms", 0.001),
            ("1us", 1e-06),
            ("1ns", 1e-09),
            ("02:03:04", 7384.0),
            ("1 days 02:03:04", 93784.0),
            ("P1DT2H", 93600.0),
            ("PT1H30M", 5400.0),
            ("1,000s", 1000.0),
            (" 5s ", 5.0),
            ("-1h", -3600.0),
            ("10", 1e-08),
            // Unit spellings: case-insensitive, except that 'M', 'Y' and 'y' are refused.
            ("2day", 172800.0),
            ("2days", 172800.0),
            ("2Days", 172800.0),
            ("2DAYS", 172800.0),
            ("3h", 10800.0),
            ("3H", 10800.0),
            ("3hours", 10800.0),
            ("3Hours", 10800.0),
            ("3HR", 10800.0),
            ("4minute", 240.0),
            ("4minutes", 240.0),
            ("4MIN", 240.0),
            ("4Min", 240.0),
            ("5s", 5.0),
            ("5S", 5.0),
            ("5sec", 5.0),
            ("5second", 5.0),
            ("5seconds", 5.0),
            ("6milli", 0.006),
            ("6millis", 0.006),
            ("6millisecond", 0.006),
            ("6milliseconds", 0.006),
            ("6MS", 0.006),
            ("7µs", 7e-06),
            ("7µS", 7e-06),
            ("7micro", 7e-06),
            ("7micros", 7e-06),
            ("7microsecond", 7e-06),
            ("7microseconds", 7e-06),
            ("8nano", 8e-09),
            ("8nanos", 8e-09),
            ("8nanosecond", 8e-09),
            ("8nanoseconds", 8e-09),
            ("2W", 1209600.0),
            // Signs: one '-' (or '+'), before the first unit, applying to every component.
            ("+5s", 5.0),
            ("-5s", -5.0),
            ("- 5s", -5.0),
            ("+-5s", -5.0),
            ("-1d2h", -93600.0),
            ("-5", -5e-09),
            ("-0s", 0.0),
            ("0", 0.0),
            // Spaces and commas are skipped anywhere.
            ("5 s", 5.0),
            ("1 d 2 h", 93600.0),
            ("1d,2h", 93600.0),
            ("1,000", 1e-06),
            ("5s,", 5.0),
            ("1 minutes 1 minutes", 120.0),
            // Decimals.
            ("0.5s", 0.5),
            ("1.5h", 5400.0),
            ("5.s", 5.0),
            ("1.h", 3600.0),
            ("1.25s", 1.25),
            ("0.3h", 1080.0),
            ("0.001h", 3.6),
            ("1.5h 2.5m", 5550.0),
            ("2.675s", 2.675),
            ("1.1W", 665280.0),
            // Clock forms.
            ("1:2:3", 3723.0),
            ("-01:02:03", -3723.0),
            ("+01:02:03", 3723.0),
            ("01:02:03.5", 3723.5),
            ("12:34:56.789", 45296.789),
            ("01:02:03.123456789", 3723.123456789),
            ("01:02:03.1234567891", 3723.123456789),
            ("99:99:99", 362439.0),
            ("1 day 01:02:03", 90123.0),
            ("1 days, 01:02:03", 90123.0),
            ("-1 days 01:02:03", -82677.0),
            ("-1 days +01:02:03", -82677.0),
            ("1 days 01:02:03.5", 90123.5),
            ("-1 days 1:00:00.5", -82799.5),
            ("1h 1:00:00", 7200.0),
            ("-0:00:00.5", -0.5),
            // ISO-8601 durations.
            ("P1D", 86400.0),
            ("P0DT0H0M1.5S", 1.5),
            ("PT1.5S", 1.5),
            ("PT1.05S", 1.05),
            ("PT.5S", 0.5),
            ("P1W", 604800.0),
            ("P2W3D", 1468800.0),
            ("P1DT", 86400.0),
            ("-P1D", -86400.0),
            ("-P1DT2H", -93600.0),
            ("P-1DT2H", -79200.0),
            ("P+1D", 86400.0),
            ("PT99H", 356400.0),
            ("P100D", 8640000.0),
            ("P1DT2H3M4.123S", 93784.123),
            ("P1DT2H3M4.1234S", 93784.1234),
            ("PT0.000000001S", 1e-09),
            // pandas quirks, matched on purpose.
            ("30 1h", 1083600.0),
            ("5-3s", -53.0),
            ("1h.5", 54000.0),
            ("1m.5s", 0.015),
            ("1..5h", 5400.0),
            ("1.2.3s", 1.23),
            (".5s 1h", 3600.5),
            ("1s:2:3", 3723.0),
            ("1.5s:2:3s 4", 3727.5),
            ("1:2:3 4", 3754.0),
            ("1:2:3:.5", 3723.5),
            ("00:00:01,5", 15.0),
            ("1s1s", 2.0),
            ("P1M", 60.0),
            ("P1.5D", 432001.0),
            ("PT1S2S", 13.0),
            ("PT1.5S2S", 51.52),
            ("P1D2", 86400.0),
            ("P1DH", 86400.0),
            ("P1", 0.0),
            ("PPP1D", 86400.0),
            ("-P-1D", 86400.0),
            // Nanosecond precision follows pandas' float route (ties round to even).
            ("1.0009765625s", 1.000976562),
            ("1.0029296875s", 1.002929688),
            ("1.0000000009s", 1.000000001),
            ("1.0000000004s", 1.0),
            ("1.5ns", 1e-09),
            ("1.9ns", 1e-09),
            ("0.0000000005s", 1e-09),
            ("0.0000005ms", 0.0),
            ("123456789012345678", 123456789.01234569),
            // Range: an i64 of nanoseconds, i64::MIN excluded.
            ("106751D", 9223286400.0),
            ("-106751D", -9223286400.0),
            ("15250W", 9223200000.0),
            ("2562047:00:00", 9223369200.0),
            ("106751 days 23:47:16.854775807", 9223372036.854776),
            ("-106751 days 23:47:16.854775807", -9223200763.145224),
            ("P106751DT23H47M16.854775807S", 9223372036.854776),
            ("-P106751DT23H47M16.854775807S", -9223372036.854776),
            ("9223372036854774784", 9223372036.854774),
            ("-60000 days 60000 days 2562047:00:00", -1144630800.0),
            // Whitespace at either end is trimmed first. pandas skips only ' ' (so it refuses
            // these four); the values are pandas' for the trimmed strings.
            ("\t5s\n", 5.0),
            (" P1D", 86400.0),
            ("P1D ", 86400.0),
            ("\n-PT1H30M\t", -5400.0),
        ];
        for &(input, seconds) in cases {
            assert_eq!(parse_ttl_str(input), Ok(seconds), "{input:?}");
        }
    }

    /// Every string here raises `ValueError` in pandas 3.1.1 or gives `NaT`.
    #[test]
    fn rejects_what_pandas_rejects() {
        let cases: &[&str] = &[
            // SPEC §5 examples.
            "1M",
            "1Y",
            "3 weeks",
            "5 mins",
            "1hrs",
            "1.5",
            "1e3s",
            "1T",
            "",
            "abc",
            "nan",
            "NaT",
            // Unknown or ambiguous units.
            "1y",
            "1week",
            "1wk",
            "1mins",
            "1secs",
            "1L",
            "1U",
            "1N",
            "1μs",
            "1mo",
            "1year",
            "1E3s",
            "1_000s",
            "1h2x",
            // Numbers without units, units without numbers.
            "s",
            ".5s",
            "-.5s",
            "5.",
            ".5",
            ".",
            "-",
            "+",
            " ",
            ",",
            "1h30",
            "1 days 02",
            "1.5D 1",
            "１s",
            "5\ts",
            // Misplaced signs.
            "--5s",
            "5s -3s",
            "1d-2h",
            "-1d -2h",
            "1 days -01:02:03",
            "1:-2:3",
            // Malformed clocks.
            ":",
            "1:2",
            "1:",
            ":1",
            "1:2:3:4",
            "1:2:",
            "1:2:3.",
            "01:02.5",
            "1.5:00:00",
            "01:02:03 5s",
            "01:02:03 days",
            "3:25:00 PM",
            "1:00:00 1h",
            "1d:2",
            // Garbled decimals.
            "1.5h.5m",
            "1h.5h",
            "s5",
            ".5 1D",
            // Malformed ISO-8601.
            "P",
            "PT",
            "-P",
            "P1Y",
            "PT100H",
            "PT100M",
            "P1D T2H",
            "P1,5D",
            "PT1.S",
            "P0DT0H0M1.1234567891S",
            "P1DT-2H",
            "+P1D",
            "p1d",
            "P1d",
            "--P1D",
            "PS",
            // Out of range.
            "106752D",
            "-106752D",
            "15251W",
            "1000000 days",
            "106751.99999D",
            "2562048:00:00",
            "106751 days 23:47:16.854775808",
            "-2562047:47:16.854775808",
            "P106751DT23H47M16.854775808S",
            "-P106751DT23H47M16.854775808S",
            "9223372036854775807",
            "99999999999999999999",
            "-60000 days 60000 days",
            "99999999999999999999999999999999999999:00:00",
            "-99999999999999999999999999999999999999:00:00",
            "0:0:99999999999999999999999999999999999999.5",
        ];
        let too_long_for_f64 = format!("1{}", "0".repeat(400));
        for input in cases.iter().copied().chain([too_long_for_f64.as_str()]) {
            let expected = Err(TtlParseError {
                input: input.to_owned(),
            });
            assert_eq!(parse_ttl_str(input), expected, "{input:?}");
        }
    }

    /// Apart from trimming whitespace, the one known difference in what is accepted: pandas
    /// computes clock fields with unbounded integers, so huge fields that cancel out are
    /// accepted there (this string is -10^38 hours + 6 * 10^39 minutes = 0 in pandas).
    /// Refused here, as out of range.
    #[test]
    fn refuses_clock_fields_beyond_i128() {
        let hours = "1".to_owned() + &"0".repeat(38);
        let minutes = "6".to_owned() + &"0".repeat(39);
        let input = format!("-{hours}:{minutes}s:00");
        assert!(parse_ttl_str(&input).is_err());
    }

    #[test]
    fn error_message_names_the_original_string() {
        let err = parse_ttl_str(" 1M ").unwrap_err();
        assert_eq!(err.input, " 1M ");
        assert_eq!(
            err.to_string(),
            "Time string doesn't look right. It should be formatted as '1d2h34m' or 2 days, \
             for example. Got:  1M "
        );
    }
}
