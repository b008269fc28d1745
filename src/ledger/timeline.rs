//! The record's `timeline` (docs/CONTRACT.md, "Job record"): what happened when during the
//! current attempt, for the dashboard's picture of a job. Plain data, written by the ledger's
//! operations as they store each step's results.
//!
//! Choices where the contract is silent:
//! - Times are the ledger's clock when a result was stored (`t`, ms since `origin_ms`, the
//!   attempt's start), so an event marks the end of the work it counts.
//! - Events of the same kind (and environment) less than [`MERGE_MS`] apart are merged, adding
//!   their counts; past [`MAX_EVENTS`] events only `end` is still kept and `dropped` counts the
//!   rest, so a record stays small however long the job.

use serde::{Deserialize, Serialize};

/// Most events kept per attempt.
pub const MAX_EVENTS: usize = 500;
/// Same-kind events closer than this are merged.
pub const MERGE_MS: i64 = 100;

/// What an event counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// The job status was read and the scope's environments resolved.
    Start,
    /// Items read and planned (`n` items).
    Pages,
    /// Reference look-ups answered (`n`).
    Lookups,
    /// KV deletes and prefix-sweep pages settled (`n`).
    Kv,
    /// Cloudflare purge API calls (`n`).
    Purge,
    /// An environment's first purge pass ended.
    FirstPass,
    /// An environment's second purge pass started.
    SecondPass,
    /// An environment's verification ended (`n` URLs checked, `stale` still cached).
    Verify,
    /// Warm requests answered (`n`; docs/CONTRACT.md, "Warm after the purge").
    Warm,
    /// The attempt ended (`status`).
    End,
}

/// One point on the timeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// Milliseconds since the timeline's origin.
    pub t: i64,
    pub kind: EventKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stale: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
}

impl Event {
    pub fn new(kind: EventKind) -> Event {
        Event {
            t: 0,
            kind,
            n: None,
            env: None,
            stale: None,
            status: None,
        }
    }

    pub fn count(mut self, n: u64) -> Event {
        self.n = Some(n);
        self
    }

    pub fn env(mut self, env: &str) -> Event {
        self.env = Some(env.to_string());
        self
    }
}

/// The record's `timeline`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timeline {
    /// When the attempt started (ms since the epoch).
    pub origin_ms: i64,
    pub events: Vec<Event>,
    /// Events left out past [`MAX_EVENTS`].
    #[serde(default)]
    pub dropped: u64,
}

impl Timeline {
    pub fn starting(origin_ms: i64) -> Timeline {
        Timeline {
            origin_ms,
            ..Timeline::default()
        }
    }

    /// Adds `event` at `now_ms`: merged into the last one when it is the same kind and
    /// environment and close enough, dropped (counted) when the timeline is full.
    pub fn add(&mut self, now_ms: i64, mut event: Event) {
        event.t = (now_ms - self.origin_ms).max(0);
        if let Some(last) = self.events.last_mut() {
            let mergeable = matches!(
                event.kind,
                EventKind::Pages | EventKind::Lookups | EventKind::Kv | EventKind::Purge
            );
            if mergeable
                && last.kind == event.kind
                && last.env == event.env
                && event.t - last.t < MERGE_MS
            {
                last.n = Some(last.n.unwrap_or(0) + event.n.unwrap_or(0));
                last.t = event.t;
                return;
            }
        }
        if self.events.len() >= MAX_EVENTS && event.kind != EventKind::End {
            self.dropped += 1;
            return;
        }
        self.events.push(event);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_relative_merged_when_close_and_capped() {
        let mut t = Timeline::starting(1_000);
        t.add(1_100, Event::new(EventKind::Start));
        t.add(1_500, Event::new(EventKind::Kv).count(3));
        t.add(1_550, Event::new(EventKind::Kv).count(4));
        t.add(1_700, Event::new(EventKind::Kv).count(1));
        t.add(1_710, Event::new(EventKind::Purge).count(2));
        t.add(1_720, Event::new(EventKind::FirstPass).env("production"));
        t.add(1_725, Event::new(EventKind::FirstPass).env("staging"));
        t.add(500, Event::new(EventKind::Pages).count(1));
        let got: Vec<(i64, EventKind, Option<u64>)> =
            t.events.iter().map(|e| (e.t, e.kind, e.n)).collect();
        assert_eq!(
            got,
            vec![
                (100, EventKind::Start, None),
                (550, EventKind::Kv, Some(7)),
                (700, EventKind::Kv, Some(1)),
                (710, EventKind::Purge, Some(2)),
                (720, EventKind::FirstPass, None),
                (725, EventKind::FirstPass, None),
                (0, EventKind::Pages, Some(1)),
            ]
        );
        for i in 0..(MAX_EVENTS as i64 * 2) {
            t.add(2_000 + i * 1_000, Event::new(EventKind::Kv).count(1));
        }
        assert_eq!(t.events.len(), MAX_EVENTS);
        t.add(9_000_000, Event::new(EventKind::End));
        assert_eq!(
            t.events.last().unwrap().kind,
            EventKind::End,
            "the end is kept"
        );
        assert!(t.dropped > 0);
        let json = serde_json::to_value(&t).unwrap();
        assert_eq!(
            json["events"][0],
            serde_json::json!({"t": 100, "kind": "start"})
        );
    }
}
