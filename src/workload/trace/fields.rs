//! Parsing of individual trace fields: token counts, times in seconds or
//! milliseconds, and civil datetimes (Azure traces) into epoch nanoseconds.
//!
//! Every parser returns `Err(reason)` naming what was expected; the caller
//! attaches file, line and field.

/// Largest magnitude of a timestamp in seconds (keeps nanoseconds inside i64).
const MAX_ABS_SECS: f64 = 9.0e9;

/// Parse a token count: a non-negative integer (an integral decimal such as
/// `12.0` is accepted, `12.5` is not), at most `u32::MAX`. Zero is returned
/// as is; callers decide whether it is an error.
pub(crate) fn parse_count(s: &str) -> Result<u32, String> {
    let t = s.trim();
    if t.is_empty() {
        return Err("empty; expected a positive integer token count".into());
    }
    if let Ok(v) = t.parse::<u64>() {
        return u32::try_from(v).map_err(|_| format!("`{t}` exceeds {}", u32::MAX));
    }
    match t.parse::<f64>() {
        Ok(v) if v.is_finite() && v < 0.0 => Err(format!(
            "`{t}` is negative; expected a positive integer token count"
        )),
        Ok(v) if v.is_finite() && v.fract() == 0.0 && v <= u32::MAX as f64 => Ok(v as u32),
        Ok(v) if v.is_finite() && v.fract() != 0.0 => Err(format!(
            "`{t}` is not an integer; expected a positive integer token count"
        )),
        _ => Err(format!("`{t}`: expected a positive integer token count")),
    }
}

/// Parse a token count that must be ≥ 1.
pub(crate) fn parse_tokens(s: &str) -> Result<u32, String> {
    match parse_count(s)? {
        0 => Err("0 tokens; expected a positive integer token count".into()),
        v => Ok(v),
    }
}

/// Token count from a JSON value (number or numeric string), ≥ 1.
pub(crate) fn json_tokens(v: &serde_json::Value) -> Result<u32, String> {
    match v {
        serde_json::Value::Number(n) => parse_tokens(&n.to_string()),
        serde_json::Value::String(s) => parse_tokens(s),
        other => Err(format!(
            "found {other}; expected a positive integer token count"
        )),
    }
}

/// Seconds (a decimal, possibly with an exponent) to nanoseconds. Plain
/// decimals are converted exactly (digits beyond the ninth decimal are
/// dropped).
pub(crate) fn parse_seconds_ns(s: &str) -> Result<i64, String> {
    parse_scaled_ns(s, 9, "seconds")
}

/// Milliseconds to nanoseconds (see [`parse_seconds_ns`]).
pub(crate) fn parse_millis_ns(s: &str) -> Result<i64, String> {
    parse_scaled_ns(s, 6, "milliseconds")
}

/// A decimal number of units of `10^exp10` ns each, to ns.
fn parse_scaled_ns(s: &str, exp10: u32, unit: &str) -> Result<i64, String> {
    let t = s.trim();
    let expected = || format!("`{t}`: expected a time in {unit} (a finite number)");
    let (neg, body) = match t.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let (int, frac) = body.split_once('.').unwrap_or((body, ""));
    let plain = !(int.is_empty() && frac.is_empty())
        && int.bytes().all(|b| b.is_ascii_digit())
        && frac.bytes().all(|b| b.is_ascii_digit());
    let scale = 10i64.pow(exp10);
    if plain {
        let int_v: i64 = if int.is_empty() {
            0
        } else {
            int.parse().map_err(|_| expected())?
        };
        let mut frac_v: i64 = 0;
        for (i, b) in frac.bytes().take(exp10 as usize).enumerate() {
            frac_v += (b - b'0') as i64 * 10i64.pow(exp10 - 1 - i as u32);
        }
        let ns = int_v
            .checked_mul(scale)
            .and_then(|v| v.checked_add(frac_v))
            .ok_or_else(|| format!("`{t}` is out of range"))?;
        return Ok(if neg { -ns } else { ns });
    }
    match t.parse::<f64>() {
        Ok(v) if v.is_finite() => {
            let ns = v * scale as f64;
            if ns.abs() > MAX_ABS_SECS * 1e9 {
                Err(format!("`{t}` is out of range"))
            } else {
                Ok(ns.round() as i64)
            }
        }
        _ => Err(expected()),
    }
}

/// A JSON time value (number or numeric string) in seconds or milliseconds.
pub(crate) fn json_time_ns(v: &serde_json::Value, millis: bool) -> Result<i64, String> {
    let text = match v {
        serde_json::Value::Number(n) => n.to_string(),
        serde_json::Value::String(s) => s.clone(),
        other => {
            return Err(format!(
                "found {other}; expected a number of {}",
                if millis { "milliseconds" } else { "seconds" }
            ));
        }
    };
    if millis {
        parse_millis_ns(&text)
    } else {
        parse_seconds_ns(&text)
    }
}

/// Days from 1970-01-01 to the given civil (proleptic Gregorian) date.
pub(crate) fn days_since_epoch(year: i64, month: u32, day: u32) -> i64 {
    // Leap days in years 1..=y (for y ≥ 0 this counts leap years up to y).
    let leaps_through = |y: i64| y.div_euclid(4) - y.div_euclid(100) + y.div_euclid(400);
    let is_leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    // Cumulative days before each month in a common year.
    const BEFORE: [i64; 12] = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334];
    let year_days = 365 * (year - 1970) + leaps_through(year - 1) - leaps_through(1969);
    let month_days = BEFORE[(month - 1) as usize] + i64::from(is_leap && month > 2);
    year_days + month_days + day as i64 - 1
}

fn days_in_month(year: i64, month: u32) -> u32 {
    let is_leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    match month {
        2 if is_leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

fn digits(s: &str, n: usize) -> Option<u32> {
    if s.len() == n && s.bytes().all(|b| b.is_ascii_digit()) {
        s.parse().ok()
    } else {
        None
    }
}

/// Parse `YYYY-MM-DD HH:MM:SS[.fraction][Z|±HH:MM|±HHMM]` (a `T` may replace
/// the space; up to 9 fractional digits are kept) to ns since the Unix epoch.
/// Without a zone the time is taken as UTC.
pub(crate) fn parse_datetime_ns(s: &str) -> Result<i64, String> {
    let t = s.trim();
    let bad = |what: &str| {
        format!(
            "`{t}`: {what}; expected a datetime like `2023-11-16 18:15:46.6805900` or `2024-05-10 00:00:00.009930+00:00`"
        )
    };
    if t.len() < 19 || !t.is_char_boundary(10) || !t.is_char_boundary(19) {
        return Err(bad("too short"));
    }
    let (date, rest) = t.split_at(10);
    let sep = rest.as_bytes()[0];
    if sep != b' ' && sep != b'T' {
        return Err(bad("no date/time separator"));
    }
    let (clock, mut tail) = rest[1..].split_at(8);
    let dp: Vec<&str> = date.split('-').collect();
    let cp: Vec<&str> = clock.split(':').collect();
    let (Some(year), Some(month), Some(day)) = (
        dp.first().and_then(|x| digits(x, 4)),
        dp.get(1).and_then(|x| digits(x, 2)),
        dp.get(2).and_then(|x| digits(x, 2)),
    ) else {
        return Err(bad("bad date"));
    };
    let (Some(hour), Some(minute), Some(second)) = (
        cp.first().and_then(|x| digits(x, 2)),
        cp.get(1).and_then(|x| digits(x, 2)),
        cp.get(2).and_then(|x| digits(x, 2)),
    ) else {
        return Err(bad("bad time of day"));
    };
    let year = year as i64;
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return Err(bad("no such date"));
    }
    if hour > 23 || minute > 59 || second > 60 {
        return Err(bad("no such time of day"));
    }
    let mut nanos: i64 = 0;
    if let Some(f) = tail.strip_prefix('.') {
        let n = f.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 {
            return Err(bad("empty fraction"));
        }
        for (i, b) in f[..n].bytes().take(9).enumerate() {
            nanos += (b - b'0') as i64 * 10i64.pow(8 - i as u32);
        }
        tail = &f[n..];
    }
    let offset_s: i64 = match tail {
        "" | "Z" | "z" => 0,
        z if z.starts_with('+') || z.starts_with('-') => {
            let sign = if z.starts_with('-') { -1 } else { 1 };
            let body = z[1..].replace(':', "");
            let (Some(h), Some(m)) = (
                body.get(..2).and_then(|x| digits(x, 2)),
                body.get(2..).and_then(|x| digits(x, 2)),
            ) else {
                return Err(bad("bad zone offset"));
            };
            if h > 23 || m > 59 {
                return Err(bad("bad zone offset"));
            }
            sign * (h as i64 * 3600 + m as i64 * 60)
        }
        _ => return Err(bad("unexpected text after the time")),
    };
    let secs = days_since_epoch(year, month, day) * 86_400
        + hour as i64 * 3600
        + minute as i64 * 60
        + second as i64
        - offset_s;
    Ok(secs * 1_000_000_000 + nanos)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts() {
        assert_eq!(parse_tokens("12"), Ok(12));
        assert_eq!(parse_tokens(" 12.0 "), Ok(12));
        assert!(parse_tokens("12.5").unwrap_err().contains("not an integer"));
        assert!(parse_tokens("-3").unwrap_err().contains("negative"));
        assert!(parse_tokens("0").is_err());
        assert_eq!(parse_count("0"), Ok(0));
        assert!(parse_tokens("").is_err());
        assert!(parse_tokens("abc").is_err());
        assert!(parse_tokens("99999999999").is_err());
        assert!(parse_tokens("nan").is_err());
        assert!(json_tokens(&serde_json::json!(7)).is_ok());
        assert!(json_tokens(&serde_json::json!(null)).is_err());
        assert!(json_tokens(&serde_json::json!(-1)).is_err());
    }

    #[test]
    fn seconds_and_millis() {
        assert_eq!(parse_seconds_ns("0.546"), Ok(546_000_000));
        assert_eq!(parse_seconds_ns("12"), Ok(12_000_000_000));
        assert_eq!(parse_seconds_ns(".5"), Ok(500_000_000));
        assert_eq!(parse_seconds_ns("-1.25"), Ok(-1_250_000_000));
        assert_eq!(parse_seconds_ns("1.0000000019"), Ok(1_000_000_001));
        assert_eq!(parse_seconds_ns("1e-3"), Ok(1_000_000));
        assert_eq!(parse_millis_ns("27482"), Ok(27_482_000_000));
        assert_eq!(parse_millis_ns("1.5"), Ok(1_500_000));
        for bad in ["", ".", "abc", "1.2.3", "inf", "NaN", "1e300", "--1"] {
            assert!(parse_seconds_ns(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn civil_dates() {
        assert_eq!(days_since_epoch(1970, 1, 1), 0);
        assert_eq!(days_since_epoch(1970, 3, 1), 59);
        assert_eq!(days_since_epoch(2000, 3, 1), 11_017);
        assert_eq!(days_since_epoch(1969, 12, 31), -1);
        // 2023-11-16 = 19677 days (1700092800 s).
        assert_eq!(days_since_epoch(2023, 11, 16), 19_677);
        assert_eq!(days_since_epoch(2024, 5, 10), 19_853);
        assert_eq!(
            days_since_epoch(2024, 2, 29) + 1,
            days_since_epoch(2024, 3, 1)
        );
    }

    #[test]
    fn datetimes() {
        let a = parse_datetime_ns("2023-11-16 18:15:46.6805900").unwrap();
        assert_eq!(
            a,
            (1_700_092_800 + 18 * 3600 + 15 * 60 + 46) * 1_000_000_000 + 680_590_000
        );
        let b = parse_datetime_ns("2024-05-10 00:00:00.009930+00:00").unwrap();
        assert_eq!(b, 1_715_299_200 * 1_000_000_000 + 9_930_000);
        let c = parse_datetime_ns("2024-05-10T02:00:00+02:00").unwrap();
        assert_eq!(c, 1_715_299_200 * 1_000_000_000);
        assert_eq!(parse_datetime_ns("2024-05-10 00:00:00Z").unwrap(), c);
        for bad in [
            "",
            "2023-11-16",
            "2023-13-01 00:00:00",
            "2023-02-29 00:00:00",
            "2023-11-16 24:00:00",
            "2023-11-16 18:15:46.",
            "2023-11-16 18:15:46 UTC",
            "2023-11-16 18:15:46+0x:00",
            "yesterday at noon please",
            "2023-11-16 18:15:4é",
        ] {
            assert!(parse_datetime_ns(bad).is_err(), "{bad}");
        }
    }
}
