//! Timestamps: ISO-8601 parsing shared by verification (the replay window) and the ledger
//! (durations, progress). Pure.

/// Parses an ISO-8601 / RFC 3339 UTC timestamp into unix seconds.
///
/// Accepted, exactly: `YYYY-MM-DDTHH:MM:SS[.f](Z|+HH:MM|-HH:MM)` where the fraction
/// has 1 to 9 digits and is truncated (the result is the floor in whole seconds).
/// Upper-case `T` and `Z` only. Years 0000–9999 (proleptic Gregorian), real month
/// lengths and leap years, hours 00–23, minutes and seconds 00–59 (no leap second
/// `60`), offset hours 00–23 and minutes 00–59. Anything else — a space instead of
/// `T`, a missing zone, a basic (`20260514T…`) form, surrounding whitespace — is `None`.
pub fn parse_iso8601_utc(s: &str) -> Option<i64> {
    parse(s).map(|(secs, _)| secs)
}

/// Like [`parse_iso8601_utc`], in unix milliseconds (fraction truncated to
/// whole milliseconds; floor, also before 1970).
pub fn parse_iso8601_utc_millis(s: &str) -> Option<i64> {
    parse(s).map(|(secs, millis)| secs * 1000 + millis)
}

/// Unix seconds and the milliseconds (0..=999) after them.
fn parse(s: &str) -> Option<(i64, i64)> {
    let b = s.as_bytes();
    if b.len() < 20 {
        return None;
    }
    let year = digits(b, 0, 4)?;
    let month = digits(b, 5, 2)?;
    let day = digits(b, 8, 2)?;
    let hour = digits(b, 11, 2)?;
    let minute = digits(b, 14, 2)?;
    let second = digits(b, 17, 2)?;
    if b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return None;
    }

    let mut i = 19;
    let mut millis = 0;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        let n = i - start;
        if !(1..=9).contains(&n) {
            return None;
        }
        // First three fraction digits, right-padded with zeros.
        millis = (0..3).fold(0, |acc, k| {
            let d = if k < n {
                i64::from(b[start + k] - b'0')
            } else {
                0
            };
            acc * 10 + d
        });
    }

    let offset_secs: i64 = match b.get(i)? {
        b'Z' => {
            i += 1;
            0
        }
        sign @ (b'+' | b'-') => {
            let oh = digits(b, i + 1, 2)?;
            let om = digits(b, i + 4, 2)?;
            if b.get(i + 3) != Some(&b':') || oh > 23 || om > 59 {
                return None;
            }
            i += 6;
            let off = oh * 3600 + om * 60;
            if *sign == b'-' {
                -off
            } else {
                off
            }
        }
        _ => return None,
    };
    if i != b.len() {
        return None;
    }

    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset_secs;
    Some((secs, millis))
}

/// `len` ASCII digits at `at`, as a number.
fn digits(b: &[u8], at: usize, len: usize) -> Option<i64> {
    let part = b.get(at..at.checked_add(len)?)?;
    part.iter().try_fold(0i64, |acc, &c| {
        c.is_ascii_digit().then(|| acc * 10 + i64::from(c - b'0'))
    })
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(year) => 29,
        2 => 28,
        _ => 0,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (valid for any year).
///
/// Counts in 400-year eras starting on March 1st, so the leap day is the last
/// day of the counting year.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y.rem_euclid(400); // 0..=399
    let month_from_march = (month + 9) % 12; // March = 0 … February = 11
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1; // 0..=365
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    // 719_468 days from 0000-03-01 to 1970-01-01.
    era * 146_097 + day_of_era - 719_468
}
