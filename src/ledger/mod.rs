//! The job ledger: record types (SPEC §7), dedupe keys and the rules that turn a run's progress
//! into a job status. The Durable Object that stores them lives in [`durable`]; everything in
//! this file is plain data and pure functions.

pub mod durable;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::event::Action;
use crate::plan::Skipped;

/// Largest raw payload kept in a record.
pub const PAYLOAD_CAP_BYTES: usize = 64 * 1024;
/// Most error lines kept in a record.
pub const MAX_ERRORS: usize = 50;
/// Most skipped-template rows kept in a record.
pub const MAX_SKIPPED: usize = 200;

/// Lifecycle of a job (SPEC §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobStatus {
    Accepted,
    Processing,
    Done,
    Partial,
    Failed,
}

impl JobStatus {
    pub fn is_final(self) -> bool {
        matches!(
            self,
            JobStatus::Done | JobStatus::Partial | JobStatus::Failed
        )
    }
}

/// Contentstack's job summary (`skipped` = its `skip`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemCounts {
    pub total: u64,
    pub success: u64,
    pub failed: u64,
    pub skipped: u64,
}

/// What was sent, per SPEC §7.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PurgedCounts {
    pub kv_keys: u64,
    pub kv_prefix_keys: u64,
    pub cache_api: u64,
    pub tags: u64,
    pub urls: u64,
    pub prefixes: u64,
    pub hosts: u64,
    pub api_calls: u64,
}

impl PurgedCounts {
    pub fn add(&mut self, o: &PurgedCounts) {
        self.kv_keys += o.kv_keys;
        self.kv_prefix_keys += o.kv_prefix_keys;
        self.cache_api += o.cache_api;
        self.tags += o.tags;
        self.urls += o.urls;
        self.prefixes += o.prefixes;
        self.hosts += o.hosts;
        self.api_calls += o.api_calls;
    }
}

/// One earlier attempt, kept when a replay or redelivery starts a new one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttemptSummary {
    pub attempt: u32,
    pub status: JobStatus,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub purged: PurgedCounts,
    pub errors: Vec<String>,
}

/// A job record as stored and as served at `/api/jobs/{job_id}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobRecord {
    pub job_id: String,
    pub action: Action,
    pub status: JobStatus,
    pub environments: Vec<String>,
    pub received_at: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub duration_ms: Option<u64>,
    pub attempts: u32,
    pub items: ItemCounts,
    pub purged: PurgedCounts,
    /// The same counts split by environment name.
    pub purged_by_environment: BTreeMap<String, PurgedCounts>,
    pub errors: Vec<String>,
    pub skipped: Vec<Skipped>,
    /// Stack API key the webhook named.
    pub api_key: Option<String>,
    /// Environment named by the channel, if any (limits the work to it).
    pub channel_environment: Option<String>,
    /// Environment names or uids hinted by the payload's `data`.
    #[serde(default)]
    pub hinted_environments: Vec<String>,
    /// Largest number of subrequests one invocation used for this job.
    pub max_invocation_subrequests: u64,
    pub history: Vec<AttemptSummary>,
    pub payload: Value,
}

/// Identity of one accepted delivery: job, action and environment (`*` when none is named).
pub fn dedupe_key(job_id: &str, action: Action, channel_environment: Option<&str>) -> String {
    format!(
        "{}\u{1f}{}\u{1f}{}",
        job_id,
        action.as_str(),
        channel_environment.unwrap_or("*")
    )
}

/// Keeps the raw body as JSON when it fits the cap, else a truncated string marker.
pub fn cap_payload_value(raw: &[u8], parsed: &Value) -> Value {
    if raw.len() <= PAYLOAD_CAP_BYTES {
        parsed.clone()
    } else {
        let mut end = PAYLOAD_CAP_BYTES;
        while end > 0 && !is_char_boundary(raw, end) {
            end -= 1;
        }
        serde_json::json!({
            "truncated": true,
            "bytes": raw.len(),
            "prefix": String::from_utf8_lossy(&raw[..end]),
        })
    }
}

fn is_char_boundary(raw: &[u8], i: usize) -> bool {
    i >= raw.len() || (raw[i] as i8) >= -0x40
}

/// Appends errors, keeping at most [`MAX_ERRORS`] (the newest are dropped with a marker).
pub fn push_errors(errors: &mut Vec<String>, new: impl IntoIterator<Item = String>) {
    for e in new {
        if errors.len() >= MAX_ERRORS {
            if errors.last().map(String::as_str) != Some("… more errors not kept") {
                errors.push("… more errors not kept".into());
            }
            return;
        }
        if !errors.contains(&e) {
            errors.push(e);
        }
    }
}

/// The final status of a finished run: `partial` when some purge action failed for good while
/// others succeeded, `failed` when every action failed, `done` otherwise. Items Contentstack
/// failed to publish never count here.
pub fn final_status(actions_done: u64, actions_failed: u64) -> JobStatus {
    match (actions_done, actions_failed) {
        (_, 0) => JobStatus::Done,
        (0, _) => JobStatus::Failed,
        _ => JobStatus::Partial,
    }
}

impl JobRecord {
    /// A fresh record for an accepted delivery.
    pub fn accepted(
        job_id: String,
        action: Action,
        received_at: String,
        channel_environment: Option<String>,
        hinted_environments: Vec<String>,
        api_key: Option<String>,
        payload: Value,
    ) -> JobRecord {
        JobRecord {
            job_id,
            action,
            status: JobStatus::Accepted,
            environments: channel_environment.iter().cloned().collect(),
            received_at,
            started_at: None,
            finished_at: None,
            duration_ms: None,
            attempts: 1,
            items: ItemCounts::default(),
            purged: PurgedCounts::default(),
            purged_by_environment: BTreeMap::new(),
            errors: Vec::new(),
            skipped: Vec::new(),
            api_key,
            channel_environment,
            hinted_environments,
            max_invocation_subrequests: 0,
            history: Vec::new(),
            payload,
        }
    }

    /// Starts a new attempt (replay or redelivery for another environment): the current
    /// attempt's outcome moves to `history` and the counters start again.
    pub fn begin_attempt(&mut self, now: &str) {
        self.history.push(AttemptSummary {
            attempt: self.attempts,
            status: self.status,
            started_at: self
                .started_at
                .clone()
                .unwrap_or_else(|| self.received_at.clone()),
            finished_at: self.finished_at.clone(),
            purged: self.purged,
            errors: self.errors.clone(),
        });
        if self.history.len() > 20 {
            self.history.remove(0);
        }
        self.attempts += 1;
        self.status = JobStatus::Accepted;
        self.started_at = Some(now.to_string());
        self.finished_at = None;
        self.duration_ms = None;
        self.purged = PurgedCounts::default();
        self.purged_by_environment.clear();
        self.errors.clear();
        self.skipped.clear();
    }

    /// Undoes [`JobRecord::begin_attempt`] when the new attempt could not be enqueued.
    pub fn undo_attempt(&mut self) {
        if let Some(prev) = self.history.pop() {
            self.attempts = prev.attempt;
            self.status = prev.status;
            self.started_at = Some(prev.started_at);
            self.finished_at = prev.finished_at;
            self.purged = prev.purged;
            self.errors = prev.errors;
        }
    }

    /// Whether this attempt is still `accepted` (no queue message started it) `stuck_ms` after it
    /// began: its message was lost and it must be enqueued again.
    pub fn is_stuck(&self, now_ms: i64, stuck_ms: i64) -> bool {
        let since = self.started_at.as_deref().unwrap_or(&self.received_at);
        self.status == JobStatus::Accepted
            && crate::verify::parse_iso8601_utc_millis(since)
                .is_some_and(|t| now_ms - t >= stuck_ms)
    }

    /// Adds skipped-template rows, de-duplicated and capped.
    pub fn add_skipped(&mut self, rows: &[Skipped]) {
        for r in rows {
            if self.skipped.len() >= MAX_SKIPPED {
                break;
            }
            if !self.skipped.contains(r) {
                self.skipped.push(r.clone());
            }
        }
        self.skipped.sort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn dedupe_key_separates_action_and_environment() {
        let a = dedupe_key("j1", Action::Publish, Some("production"));
        let b = dedupe_key("j1", Action::Unpublish, Some("production"));
        let c = dedupe_key("j1", Action::Publish, None);
        let d = dedupe_key("j1", Action::Publish, Some("staging"));
        let all = [&a, &b, &c, &d];
        for (i, x) in all.iter().enumerate() {
            for y in &all[i + 1..] {
                assert_ne!(x, y);
            }
        }
        assert_eq!(a, dedupe_key("j1", Action::Publish, Some("production")));
        assert!(c.ends_with('*'));
    }

    #[test]
    fn payload_is_kept_whole_under_the_cap_and_truncated_above() {
        let v = json!({"a": 1});
        assert_eq!(cap_payload_value(br#"{"a":1}"#, &v), v);
        let big = format!("{{\"s\":\"{}\"}}", "é".repeat(40_000));
        let parsed: Value = serde_json::from_str(&big).unwrap();
        let capped = cap_payload_value(big.as_bytes(), &parsed);
        assert_eq!(capped["truncated"], true);
        assert_eq!(capped["bytes"], big.len());
        let prefix = capped["prefix"].as_str().unwrap();
        assert!(prefix.len() <= PAYLOAD_CAP_BYTES);
        assert!(!prefix.contains('\u{fffd}'), "cut inside a character");
    }

    #[test]
    fn final_status_rules() {
        assert_eq!(final_status(10, 0), JobStatus::Done);
        assert_eq!(final_status(0, 0), JobStatus::Done);
        assert_eq!(final_status(3, 1), JobStatus::Partial);
        assert_eq!(final_status(0, 2), JobStatus::Failed);
    }

    #[test]
    fn errors_are_capped_and_deduplicated() {
        let mut errs = Vec::new();
        push_errors(&mut errs, vec!["a".to_string(), "a".to_string()]);
        assert_eq!(errs, vec!["a"]);
        push_errors(&mut errs, (0..100).map(|i| i.to_string()));
        assert_eq!(errs.len(), MAX_ERRORS + 1);
        assert_eq!(errs.last().unwrap(), "… more errors not kept");
    }

    /// A fresh record received at 2026-01-01T00:00:00Z.
    fn record() -> JobRecord {
        JobRecord::accepted(
            "j".into(),
            Action::Publish,
            "2026-01-01T00:00:00Z".into(),
            None,
            vec![],
            None,
            json!({}),
        )
    }

    #[test]
    fn only_attempts_left_in_accepted_too_long_are_stuck() {
        let mut r = record();
        let t0 = crate::verify::parse_iso8601_utc_millis("2026-01-01T00:00:00Z").unwrap();
        assert!(!r.is_stuck(t0 + 599_999, 600_000));
        assert!(r.is_stuck(t0 + 600_000, 600_000));
        r.status = JobStatus::Processing;
        assert!(
            !r.is_stuck(t0 + 3_600_000, 600_000),
            "a started job is the queue's business"
        );
        // A replay restarts the clock.
        r.status = JobStatus::Done;
        r.begin_attempt("2026-01-01T00:30:00Z");
        assert!(!r.is_stuck(t0 + 35 * 60_000, 600_000));
        assert!(r.is_stuck(t0 + 40 * 60_000, 600_000));
    }

    #[test]
    fn a_new_attempt_moves_the_outcome_to_history() {
        let mut r = record();
        r.status = JobStatus::Done;
        r.purged.kv_keys = 5;
        r.errors.push("x".into());
        r.begin_attempt("2026-01-01T00:01:00Z");
        assert_eq!(r.attempts, 2);
        assert_eq!(r.status, JobStatus::Accepted);
        assert_eq!(r.purged, PurgedCounts::default());
        assert!(r.errors.is_empty());
        assert_eq!(r.history.len(), 1);
        assert_eq!(r.history[0].purged.kv_keys, 5);
        assert_eq!(r.history[0].status, JobStatus::Done);
        r.undo_attempt();
        assert_eq!(r.attempts, 1);
        assert_eq!(r.status, JobStatus::Done);
        assert_eq!(r.purged.kv_keys, 5);
        assert!(r.history.is_empty());
    }
}
