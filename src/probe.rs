//! Verified invalidation, the pure part (docs/CONTRACT.md, "Verified invalidation"): which
//! purged URLs are probed, what a probe's `CF-Cache-Status` and `Age` say, and the summary an
//! environment's verification leaves in the record.
//!
//! Choices where the contract is silent:
//! - The sample is spread evenly over the environment's purged URLs in the order they were
//!   planned (the middle of each of `n` equal slices), so a large job is checked at its start,
//!   middle and end, and the same job always probes the same URLs.
//! - Only `http://` and `https://` URLs purged through the Cloudflare API are probed.
//! - Stale means `CF-Cache-Status: HIT` (any case) with an `Age` (whole seconds) older than the
//!   time since the purge. Every other answer (`MISS`, `EXPIRED`, `REVALIDATED`, `DYNAMIC`, a
//!   `HIT` without `Age`, a 404) counts as fresh: nothing shows a copy from before the purge.
//! - The first probe measures from the end of the purge pass (later than each URL's own purge
//!   call), so a copy cached between a URL's purge and the end of the pass looks stale too. It
//!   is purged once more, and the probe after that extra purge measures from its own call,
//!   which settles it.
//! - A probe that gets no answer, or a 5xx that is not a cache hit, is `unreachable`: neither
//!   fresh nor stale, and it does not make the job partial (the purge itself did not fail).

use serde::{Deserialize, Serialize};

/// What every verification says about its reach.
pub const SCOPE: &str = "one data centre";

/// What one probe found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    Fresh,
    Stale,
    Unreachable(String),
}

/// Reads a probe's answer. `since_ms` is the purge the copy must be younger than.
pub fn classify(
    status: u16,
    cache_status: Option<&str>,
    age: Option<&str>,
    since_ms: i64,
    now_ms: i64,
) -> Probe {
    let hit = cache_status.is_some_and(|s| s.trim().eq_ignore_ascii_case("hit"));
    if !hit {
        if status >= 500 {
            return Probe::Unreachable(format!("HTTP {status}"));
        }
        return Probe::Fresh;
    }
    let Some(age_s) = age.and_then(|a| a.trim().parse::<u64>().ok()) else {
        return Probe::Fresh;
    };
    let elapsed_ms = (now_ms - since_ms).max(0) as u64;
    if age_s.saturating_mul(1000) > elapsed_ms {
        Probe::Stale
    } else {
        Probe::Fresh
    }
}

/// Up to `n` items spread evenly over `all` (the middle of each of `n` equal slices), in order.
pub fn spread<T: Clone>(all: &[T], n: usize) -> Vec<T> {
    if n == 0 || all.is_empty() {
        return Vec::new();
    }
    if all.len() <= n {
        return all.to_vec();
    }
    (0..n)
        .map(|i| all[(2 * i + 1) * all.len() / (2 * n)].clone())
        .collect()
}

/// Whether a purged value is a URL a probe can request.
pub fn probeable(url: &str) -> bool {
    let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    lower.starts_with("http://") || lower.starts_with("https://")
}

/// One environment's verification, as the record shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verification {
    /// Distinct URLs probed (a re-probe after the extra purge does not count again).
    pub checked: u32,
    /// URLs fresh at the end.
    pub fresh: u32,
    /// URLs still cached after the extra purge.
    pub stale: Vec<String>,
    pub at: String,
    /// What a probe sees: the data centre the Worker ran in.
    pub scope: String,
    /// After the first purge pass (1) or the second (2).
    pub pass: u8,
    /// URLs that looked stale at the first probe and were purged once more.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub repurged: Vec<String>,
    /// URLs whose probe got no usable answer.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unreachable: Vec<String>,
}

/// Builds an environment's verification from each URL's first probe and, for those that
/// looked stale, the probe after the extra purge (`None` when it was not made, e.g. the extra
/// purge failed: the URL stays stale).
pub fn summarise(
    first: &[(String, Probe)],
    again: &[(String, Option<Probe>)],
    pass: u8,
    at: &str,
) -> Verification {
    let mut v = Verification {
        checked: first.len() as u32,
        at: at.to_string(),
        scope: SCOPE.to_string(),
        pass,
        ..Verification::default()
    };
    for (url, p) in first {
        match p {
            Probe::Fresh => v.fresh += 1,
            Probe::Unreachable(_) => v.unreachable.push(url.clone()),
            Probe::Stale => {
                v.repurged.push(url.clone());
                match again
                    .iter()
                    .find(|(u, _)| u == url)
                    .and_then(|(_, p)| p.as_ref())
                {
                    Some(Probe::Fresh) => v.fresh += 1,
                    Some(Probe::Unreachable(_)) => v.unreachable.push(url.clone()),
                    Some(Probe::Stale) | None => v.stale.push(url.clone()),
                }
            }
        }
    }
    v
}

/// The error line of a URL still cached after its extra purge.
pub fn still_cached(url: &str) -> String {
    format!("still cached: {url}")
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_800_000_000_000;

    #[test]
    fn a_hit_older_than_the_purge_is_stale() {
        // Purged 10 s ago; a copy 3600 s old predates it.
        let at = |status, cs: Option<&str>, age: Option<&str>| {
            classify(status, cs, age, T0, T0 + 10_000)
        };
        assert_eq!(at(200, Some("HIT"), Some("3600")), Probe::Stale);
        assert_eq!(at(200, Some(" hit "), Some("11")), Probe::Stale);
        assert_eq!(
            at(200, Some("HIT"), Some("10")),
            Probe::Fresh,
            "cached at the purge"
        );
        assert_eq!(
            at(200, Some("HIT"), Some("3")),
            Probe::Fresh,
            "cached after it"
        );
        assert_eq!(at(200, Some("MISS"), None), Probe::Fresh);
        assert_eq!(at(200, Some("EXPIRED"), Some("9999")), Probe::Fresh);
        assert_eq!(at(200, Some("REVALIDATED"), Some("9999")), Probe::Fresh);
        assert_eq!(
            at(200, Some("HIT"), None),
            Probe::Fresh,
            "no age: nothing shows staleness"
        );
        assert_eq!(at(200, Some("HIT"), Some("x")), Probe::Fresh);
        assert_eq!(
            at(404, Some("MISS"), None),
            Probe::Fresh,
            "an unpublished page"
        );
        assert_eq!(at(200, None, None), Probe::Fresh);
        assert_eq!(at(502, None, None), Probe::Unreachable("HTTP 502".into()));
        assert_eq!(at(502, Some("HIT"), Some("3600")), Probe::Stale);
    }

    #[test]
    fn a_clock_behind_the_purge_never_panics() {
        assert_eq!(
            classify(200, Some("HIT"), Some("1"), T0, T0 - 5_000),
            Probe::Stale
        );
        assert_eq!(
            classify(200, Some("HIT"), Some("99999999999999999999"), T0, T0),
            Probe::Fresh,
            "an age that does not parse"
        );
        assert_eq!(
            classify(200, Some("HIT"), Some("18446744073709551615"), T0, T0),
            Probe::Stale
        );
    }

    #[test]
    fn the_sample_is_spread_over_the_job() {
        let all: Vec<u32> = (0..100).collect();
        assert_eq!(spread(&all, 5), vec![10, 30, 50, 70, 90]);
        assert_eq!(spread(&all, 1), vec![50]);
        assert_eq!(spread(&all[..3], 5), vec![0, 1, 2]);
        assert!(spread(&all, 0).is_empty());
        assert!(spread::<u32>(&[], 3).is_empty());
        for len in 1..60usize {
            let all: Vec<usize> = (0..len).collect();
            for n in 1..12usize {
                let s = spread(&all, n);
                assert_eq!(s.len(), n.min(len));
                assert!(s.windows(2).all(|w| w[0] < w[1]), "distinct, in order");
            }
        }
    }

    #[test]
    fn only_web_urls_are_probed() {
        assert!(probeable("https://www.example.com/a"));
        assert!(probeable("HTTP://x/"));
        assert!(!probeable("ftp://x/"));
        assert!(!probeable("www.example.com/a"));
        assert!(!probeable("é"));
    }

    #[test]
    fn the_summary_counts_distinct_urls_and_settles_stale_ones_by_their_reprobe() {
        let first = vec![
            ("a".to_string(), Probe::Fresh),
            ("b".to_string(), Probe::Stale),
            ("c".to_string(), Probe::Stale),
            ("d".to_string(), Probe::Unreachable("timed out".into())),
            ("e".to_string(), Probe::Stale),
        ];
        let again = vec![
            ("b".to_string(), Some(Probe::Fresh)),
            ("c".to_string(), Some(Probe::Stale)),
            ("e".to_string(), None),
        ];
        let v = summarise(&first, &again, 2, "2026-01-01T00:00:00Z");
        assert_eq!(v.checked, 5, "re-probes do not count again");
        assert_eq!(v.fresh, 2);
        assert_eq!(v.stale, vec!["c", "e"]);
        assert_eq!(v.repurged, vec!["b", "c", "e"]);
        assert_eq!(v.unreachable, vec!["d"]);
        assert_eq!((v.pass, v.scope.as_str()), (2, SCOPE));
        let json = serde_json::to_value(&v).unwrap();
        for k in ["checked", "fresh", "stale", "at", "scope"] {
            assert!(json.get(k).is_some(), "{k}");
        }
    }
}
