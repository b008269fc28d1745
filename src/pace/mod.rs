//! Pacing arithmetic: retry backoff that honours `Retry-After`, queue retry delays, and the
//! slot spacing a shared rate limiter hands out. Pure; the limiter Durable Object that applies
//! it is in [`durable`].

pub mod durable;

/// Retries of one HTTP call inside an invocation before the step gives up.
pub const HTTP_TRIES: u32 = 5;
/// Longest single wait inside an invocation, in milliseconds.
pub const MAX_INLINE_WAIT_MS: u64 = 20_000;

/// Delay before retry number `attempt` (1 = first retry) of an HTTP call: exponential from
/// `base_ms`, capped at `max_ms`, and never shorter than the server's `Retry-After`.
pub fn backoff_ms(attempt: u32, base_ms: u64, max_ms: u64, retry_after_ms: Option<u64>) -> u64 {
    let exp = base_ms.saturating_mul(1u64 << attempt.saturating_sub(1).min(20));
    let d = exp.min(max_ms);
    match retry_after_ms {
        Some(r) => d.max(r).min(max_ms.max(r)),
        None => d,
    }
}

/// Parses `Retry-After` as delta-seconds (decimal allowed); HTTP dates are not used by either API.
pub fn parse_retry_after(v: &str) -> Option<u64> {
    let v = v.trim();
    if v.is_empty() || v.len() > 12 {
        return None;
    }
    let secs: f64 = v.parse().ok()?;
    if !(0.0..=86_400.0).contains(&secs) {
        return None;
    }
    Some((secs * 1000.0).ceil() as u64)
}

/// Whether an HTTP status is worth retrying (429 and 5xx).
pub fn retryable(status: u16) -> bool {
    status == 429 || (500..600).contains(&status)
}

/// Queue redelivery delay for a failed step: `base * 2^(attempt-1)` seconds, capped at 12 h.
pub fn queue_delay_seconds(attempt: u32, base_seconds: u32) -> u32 {
    let d = (base_seconds as u64).saturating_mul(1u64 << attempt.saturating_sub(1).min(20));
    d.min(12 * 3600) as u32
}

/// Minimum spacing between call starts for `rate` calls per second, with a 10 % margin so that
/// no window of one second ever holds more than `rate` starts, even with network jitter.
pub fn spacing_ms(rate_per_second: f64) -> f64 {
    if rate_per_second <= 0.0 || !rate_per_second.is_finite() {
        return 0.0;
    }
    1000.0 / rate_per_second * 1.1
}

/// Reserves `n` call slots: given the next free slot time and now, returns the start time of
/// each call and the new next free slot.
pub fn reserve(next_free_ms: f64, now_ms: f64, spacing: f64, n: u32) -> (Vec<f64>, f64) {
    let mut t = next_free_ms.max(now_ms);
    let mut starts = Vec::with_capacity(n as usize);
    for _ in 0..n {
        starts.push(t);
        t += spacing;
    }
    (starts, t)
}

/// Largest number of starts inside any window of `window_ms` (closed on both ends).
pub fn max_in_window(starts: &[f64], window_ms: f64) -> usize {
    let mut s = starts.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    let mut best = 0;
    let mut lo = 0;
    for hi in 0..s.len() {
        while s[hi] - s[lo] > window_ms {
            lo += 1;
        }
        best = best.max(hi - lo + 1);
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn backoff_doubles_and_caps() {
        let seq: Vec<u64> = (1..=6).map(|a| backoff_ms(a, 500, 8_000, None)).collect();
        assert_eq!(seq, vec![500, 1000, 2000, 4000, 8000, 8000]);
    }

    #[test]
    fn backoff_never_undercuts_retry_after() {
        assert_eq!(backoff_ms(1, 500, 8_000, Some(3_000)), 3_000);
        assert_eq!(backoff_ms(4, 500, 8_000, Some(1_000)), 4_000);
        // A Retry-After above the cap wins: the server said so.
        assert_eq!(backoff_ms(1, 500, 8_000, Some(30_000)), 30_000);
    }

    #[test]
    fn retry_after_parsing() {
        assert_eq!(parse_retry_after("1"), Some(1000));
        assert_eq!(parse_retry_after(" 2.5 "), Some(2500));
        assert_eq!(parse_retry_after("0"), Some(0));
        assert_eq!(parse_retry_after("-1"), None);
        assert_eq!(parse_retry_after("soon"), None);
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
        assert_eq!(parse_retry_after("99999999"), None);
    }

    #[test]
    fn retryable_statuses() {
        assert!(retryable(429));
        assert!(retryable(500));
        assert!(retryable(503));
        assert!(!retryable(400));
        assert!(!retryable(401));
        assert!(!retryable(404));
        assert!(!retryable(200));
    }

    #[test]
    fn queue_delays_grow_and_cap_at_twelve_hours() {
        assert_eq!(queue_delay_seconds(1, 10), 10);
        assert_eq!(queue_delay_seconds(2, 10), 20);
        assert_eq!(queue_delay_seconds(5, 10), 160);
        assert_eq!(queue_delay_seconds(40, 10), 12 * 3600);
        assert_eq!(queue_delay_seconds(3, 0), 0);
    }

    #[test]
    fn free_plan_rate_spaces_calls_twelve_seconds_apart() {
        let s = spacing_ms(0.083);
        assert!(s > 12_000.0 && s < 13_300.0, "{s}");
        assert_eq!(spacing_ms(0.0), 0.0);
    }

    proptest! {
        #[test]
        fn reserved_slots_never_exceed_the_rate(
            rate in 1u32..50,
            calls in proptest::collection::vec((0u32..5, 0f64..3000.0), 1..40)
        ) {
            // Several callers reserve at arbitrary times; all starts together must respect the rate.
            let spacing = spacing_ms(rate as f64);
            let mut next = 0.0;
            let mut now = 0.0;
            let mut all = Vec::new();
            for (n, dt) in calls {
                now += dt;
                let (starts, nx) = reserve(next, now, spacing, n);
                for s in &starts { prop_assert!(*s >= now); }
                all.extend(starts);
                next = nx;
            }
            prop_assert!(max_in_window(&all, 1000.0) <= rate as usize);
        }

        #[test]
        fn backoff_is_monotonic(base in 1u64..2000, max in 2000u64..60_000) {
            let mut prev = 0;
            for a in 1..12 {
                let d = backoff_ms(a, base, max, None);
                prop_assert!(d >= prev);
                prop_assert!(d <= max);
                prev = d;
            }
        }
    }
}
