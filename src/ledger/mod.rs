//! The job ledger: record types (docs/CONTRACT.md, "Job record"), dedupe keys and the rules
//! that turn a run's progress into a job status. The Durable Object that stores them lives in
//! [`durable`]; everything in this file is plain data and pure functions.
//!
//! Choices where the contract is silent:
//! - One record per job. Each accepted delivery adds a *scope* (the environment its channel
//!   names, or `*`) to the job's current attempt; scopes are collected independently and the
//!   attempt ends when every scope is collected and nothing is pending, so no delivery cancels,
//!   replaces or starves another. A replay starts a new attempt with every scope again.
//! - `first_pass_at` / `second_pass_at` at the top level are the latest of the environments'
//!   (each environment's are under `passes`).
//! - A job waiting for its second pass counts as making progress until the pass is due.
//! - Verification (docs/CONTRACT.md, "Verified invalidation") runs after an environment's
//!   first pass, before any second pass is scheduled, and again after its second pass; the
//!   record keeps the latest per environment. The job ends `partial` when an environment's
//!   latest verification still finds a URL cached; a later verification that finds it fresh
//!   takes its `still cached` error back.

pub mod client;
pub mod index;
pub mod index_object;
pub mod job_object;
mod lookups;
pub mod ops;
pub mod references;
mod sql;
pub mod store;
pub mod timeline;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::counts::{JobItems, PurgedCounts};
use crate::event::{scope_of, Action, ANY_SCOPE};
use crate::lifecycle::{Effect, Event as PhaseEvent, Next, PassNo, Phase};
pub use crate::lifecycle::{EnvPasses, VerifyDue};
use crate::plan::Skipped;
use crate::probe::{still_cached, Verification};
use timeline::{Event, EventKind, Timeline};

/// Largest raw payload kept in a record.
pub const PAYLOAD_CAP_BYTES: usize = 64 * 1024;
/// Most error lines kept in a record.
pub const MAX_ERRORS: usize = 50;
/// Most skipped-template rows kept in a record.
pub const MAX_SKIPPED: usize = 200;

/// Lifecycle of a job (docs/CONTRACT.md, "Job record").
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
    /// The status as the record spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Accepted => "accepted",
            JobStatus::Processing => "processing",
            JobStatus::Done => "done",
            JobStatus::Partial => "partial",
            JobStatus::Failed => "failed",
        }
    }

    pub fn is_final(self) -> bool {
        matches!(
            self,
            JobStatus::Done | JobStatus::Partial | JobStatus::Failed
        )
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
    pub items: JobItems,
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
    /// Deliveries of the current attempt by scope (a channel's environment, or `*`).
    #[serde(default)]
    pub scopes: BTreeMap<String, Scope>,
    /// Per environment: its purge passes.
    #[serde(default)]
    pub passes: BTreeMap<String, EnvPasses>,
    #[serde(default)]
    pub first_pass_at: Option<String>,
    #[serde(default)]
    pub second_pass_at: Option<String>,
    /// Times the ledger's alarm drove this attempt again for lack of progress.
    #[serde(default)]
    pub drives: u32,
    /// When the attempt last made progress (ms since the epoch).
    #[serde(default)]
    pub progress_ms: i64,
    /// `webhook` or `replay`.
    #[serde(default = "source_webhook")]
    pub source: String,
    /// A failing job whose `on_failure` purge is still running (it is `failed` after).
    #[serde(default)]
    pub on_failure_running: bool,
    /// Action batches stored so far (orders purge calls after their batch's KV work).
    #[serde(default)]
    pub batches: u64,
    /// Reference look-ups, when a rule has a `references` section.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub references: Option<references::ReferenceSummary>,
    /// Per environment: the purged URLs its verification probes (its rule's `verify_sample`,
    /// 0 when it purges nothing through the Cloudflare API).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub verify_sample: BTreeMap<String, u32>,
    /// Per environment: its latest verification.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub verification: BTreeMap<String, Verification>,
    /// Per environment that warms its cache after the purge: what it requested and how that
    /// went (docs/CONTRACT.md, "Warm after the purge").
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub warm: BTreeMap<String, WarmState>,
    /// What happened when during the current attempt.
    #[serde(default)]
    pub timeline: Timeline,
}

/// Identity of one accepted delivery: stack, job, action and environment (`*` when none is
/// named).
pub fn dedupe_key(
    api_key: Option<&str>,
    job_id: &str,
    action: Action,
    channel_environment: Option<&str>,
) -> String {
    format!(
        "{}\u{1f}{}\u{1f}{}\u{1f}{}",
        api_key.unwrap_or(""),
        job_id,
        action.as_str(),
        scope_of(channel_environment)
    )
}

/// How far one delivery's scope has been collected.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scope {
    /// Every item page has been read and planned.
    pub collected: bool,
    /// The next item page to read (`skip`).
    pub next_skip: u64,
    /// Every item page has been read and stored (reference look-ups may still add work).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub read_all: bool,
}

/// One environment's cache warming, as the record shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WarmState {
    /// URLs requested so far.
    pub requested: u64,
    /// Answered below 500.
    pub ok: u64,
    /// No answer, or 5xx.
    pub failed: u64,
    /// When warming ended.
    pub at: Option<String>,
    /// Where the warm requests fill the cache.
    pub scope: String,
    /// The rule's `warm` and `warm_rate` when the attempt started.
    pub limit: u32,
    pub rate: u32,
    /// The earliest a next warm request may start (ms since the epoch), so the pace holds
    /// across invocations.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub next_ms: i64,
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

/// What the record says of where warming fills the cache.
pub const WARM_SCOPE: &str = "one data centre";

/// What closing the passes of an attempt whose work is all settled decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PassOutcome {
    /// Some environment's verification has to run first.
    Verify,
    /// Some environment waits for its second pass, due at `due_ms`; `newly` when this call
    /// scheduled it (the caller sends the delayed message).
    SecondPassDue { due_ms: i64, newly: bool },
    /// Some environment warms its cache; `newly` lists those that started warming with this
    /// call (the caller lists their URLs).
    Warm { newly: Vec<String> },
    /// The attempt ended with this status.
    Finished(JobStatus),
}

/// Where a record came from.
pub const SOURCE_WEBHOOK: &str = "webhook";
pub const SOURCE_REPLAY: &str = "replay";
/// Taken in by the webhook health check from a failed delivery (docs/CONTRACT.md, "Webhook
/// health").
pub const SOURCE_RECOVERED: &str = "recovered";

fn source_webhook() -> String {
    SOURCE_WEBHOOK.to_string()
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
        let scope = scope_of(channel_environment.as_deref()).to_string();
        let progress_ms = crate::time::parse_iso8601_utc_millis(&received_at).unwrap_or(0);
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
            items: JobItems::default(),
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
            scopes: crate::sorted::map_of([(scope, Scope::default())]),
            passes: BTreeMap::new(),
            first_pass_at: None,
            second_pass_at: None,
            drives: 0,
            progress_ms,
            source: source_webhook(),
            on_failure_running: false,
            batches: 0,
            references: None,
            verify_sample: BTreeMap::new(),
            verification: BTreeMap::new(),
            warm: BTreeMap::new(),
            timeline: Timeline::starting(progress_ms),
        }
    }

    /// Adds another delivery's scope to the current attempt. A job that already ended reopens
    /// (`processing`). Returns false when the scope was already there.
    pub fn add_scope(&mut self, channel_environment: Option<&str>, now_ms: i64) -> bool {
        let scope = scope_of(channel_environment).to_string();
        if self.scopes.contains_key(&scope) {
            return false;
        }
        self.scopes.insert(scope, Scope::default());
        if let Some(env) = channel_environment {
            if !self.environments.iter().any(|e| e == env) {
                self.environments.push(env.to_string());
            }
        }
        if self.status.is_final() {
            self.status = JobStatus::Processing;
            self.finished_at = None;
            self.duration_ms = None;
            self.on_failure_running = false;
        }
        self.drives = 0;
        self.progress_ms = now_ms;
        true
    }

    /// Whether every scope has been collected.
    pub fn all_collected(&self) -> bool {
        self.scopes.values().all(|s| s.collected)
    }

    /// The scopes still being collected.
    pub fn uncollected_scopes(&self) -> Vec<String> {
        self.scopes
            .iter()
            .filter(|(_, s)| !s.collected)
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// Closes the passes of an attempt whose scopes are all collected and whose actions are
    /// all settled. `envs` lists each environment with work and whether its plan both changed
    /// KV and purged Cloudflare (it then gets a second pass `delay_ms` after its last KV change,
    /// when `delay_ms` > 0). An environment with a `verify_sample` is verified after each pass
    /// first. `done`/`failed` count the attempt's settled actions.
    pub fn close_passes(
        &mut self,
        envs: &[(String, bool)],
        delay_ms: i64,
        done: u64,
        failed: u64,
        now: &str,
        now_ms: i64,
    ) -> PassOutcome {
        for (env, _) in envs {
            self.passes.entry(env.clone()).or_default();
        }
        for (env, p) in self.passes.iter_mut() {
            let probe = self.verify_sample.get(env).is_some_and(|n| *n > 0);
            if p.apply(PhaseEvent::Settled { now_ms, probe }, now) == Effect::FirstPassEnded {
                self.timeline
                    .add(now_ms, Event::new(EventKind::FirstPass).env(env));
            }
        }
        self.first_pass_at = self
            .passes
            .values()
            .filter_map(|p| p.first_pass_at.clone())
            .max();
        self.second_pass_at = self
            .passes
            .values()
            .filter_map(|p| p.second_pass_at.clone())
            .max();
        let mut newly = false;
        loop {
            match crate::lifecycle::next(self.passes.values().map(|p| &p.phase)) {
                Next::Verify => {
                    self.progress_ms = now_ms;
                    return PassOutcome::Verify;
                }
                Next::Plan => {
                    for (env, p) in self.passes.iter_mut() {
                        let needs = envs.iter().any(|(e, n)| e == env && *n);
                        let due_ms = (needs && delay_ms > 0)
                            .then(|| p.last_kv_ms.unwrap_or(now_ms) + delay_ms);
                        let planned = p.apply(PhaseEvent::Plan { due_ms }, now);
                        newly |= matches!(planned, Effect::SecondScheduled { .. });
                    }
                }
                Next::SecondPassAt { due_ms } => {
                    // Waiting is progress until the pass is due.
                    self.progress_ms = self.progress_ms.max(due_ms);
                    return PassOutcome::SecondPassDue { due_ms, newly };
                }
                Next::Warm => {
                    self.progress_ms = now_ms;
                    return PassOutcome::Warm { newly: Vec::new() };
                }
                // Every environment applied `Settled` above, so none is in a pass.
                Next::Work | Next::Finish => {
                    let newly = self.start_warming();
                    if !newly.is_empty() {
                        self.progress_ms = now_ms;
                        return PassOutcome::Warm { newly };
                    }
                    break;
                }
            }
        }
        let mut status = final_status(done, failed);
        if status == JobStatus::Done && self.verification.values().any(|v| !v.stale.is_empty()) {
            status = JobStatus::Partial;
        }
        self.status = status;
        self.progress_ms = now_ms;
        let mut end = Event::new(EventKind::End);
        end.status = Some(format!("{status:?}").to_lowercase());
        self.timeline.add(now_ms, end);
        PassOutcome::Finished(status)
    }

    /// The attempt guard, the one every step and the ledger use: whether the pipeline may
    /// still work on `attempt` (it is current and unfinished; `on_failure`: a failing job's
    /// `on_failure` purge counts as work too).
    pub fn open_for(&self, attempt: u32, on_failure: bool) -> bool {
        self.attempts == attempt
            && !self.status.is_final()
            && (on_failure || !self.on_failure_running)
    }

    /// Every environment whose passes are over and that warms its cache starts warming;
    /// returns them.
    fn start_warming(&mut self) -> Vec<String> {
        let mut newly = Vec::new();
        for (env, p) in self.passes.iter_mut() {
            let warms = self
                .warm
                .get(env)
                .is_some_and(|w| w.limit > 0 && w.at.is_none());
            if warms && p.apply(PhaseEvent::Warm, "") == Effect::WarmingStarted {
                newly.push(env.clone());
            }
        }
        newly
    }

    /// Ends `env`'s warming at `now`.
    pub fn end_warming(&mut self, env: &str, now: &str, now_ms: i64) {
        if let Some(p) = self.passes.get_mut(env) {
            p.apply(PhaseEvent::Warmed, now);
        }
        if let Some(w) = self.warm.get_mut(env) {
            w.at.get_or_insert_with(|| now.to_string());
        }
        self.progress_ms = now_ms;
    }

    /// Whether some environment's verification has not run yet.
    pub fn verifying(&self) -> bool {
        self.passes.values().any(|p| p.phase.verifying())
    }

    /// What the attempt does next by its environments' phases ([`crate::lifecycle::next`]).
    pub fn next(&self) -> Next {
        crate::lifecycle::next(self.passes.values().map(|p| &p.phase))
    }

    /// Hands out the first due verification not leased to another invocation, leased until
    /// `now_ms + lease_ms`. `None` with `true`: every due one is leased elsewhere.
    pub fn claim_verification(
        &mut self,
        now_ms: i64,
        lease_ms: i64,
    ) -> (Option<(String, VerifyDue)>, bool) {
        let mut waiting = false;
        let lease = PhaseEvent::Lease {
            now_ms,
            until_ms: now_ms + lease_ms,
        };
        for (env, p) in self.passes.iter_mut() {
            if p.apply(lease, "") == Effect::Leased {
                return (p.verify_due().map(|d| (env.clone(), d)), false);
            }
            waiting |= p.phase.verifying();
        }
        (None, waiting)
    }

    /// Stores an environment's verification of `pass`, when that verification is still due
    /// (a repeated report changes nothing). Returns whether it was stored.
    pub fn settle_verification(&mut self, env: &str, v: Verification, now_ms: i64) -> bool {
        let Some(p) = self.passes.get_mut(env) else {
            return false;
        };
        let Some(pass) = PassNo::from_u8(v.pass) else {
            return false;
        };
        if p.apply(PhaseEvent::Verified { pass }, "") != Effect::Verified {
            return false;
        }
        let mut event = Event::new(EventKind::Verify)
            .env(env)
            .count(v.checked as u64);
        event.stale = Some(v.stale.len() as u64);
        self.timeline.add(now_ms, event);
        // An earlier verification's URLs found fresh now take their error back.
        if let Some(before) = self.verification.get(env) {
            let cleared: Vec<String> = before
                .stale
                .iter()
                .filter(|u| !v.stale.contains(u))
                .map(|u| still_cached(u))
                .collect();
            self.errors.retain(|e| !cleared.contains(e));
        }
        push_errors(&mut self.errors, v.stale.iter().map(|u| still_cached(u)));
        self.verification.insert(env.to_string(), v);
        self.progress_ms = now_ms;
        true
    }

    /// Starts the second passes together once the latest is due by `now_ms` (with `slack_ms`
    /// of tolerance). Returns the environments started, or the time to wait.
    pub fn start_second_pass(&mut self, now_ms: i64, slack_ms: i64) -> Result<Vec<String>, i64> {
        let latest = self
            .passes
            .values()
            .filter_map(|p| match p.phase {
                Phase::AwaitingSecond { due_ms } => Some(due_ms),
                _ => None,
            })
            .max();
        let Some(latest) = latest else {
            self.progress_ms = now_ms;
            return Ok(Vec::new());
        };
        if latest > now_ms + slack_ms {
            return Err(latest - now_ms);
        }
        let start = PhaseEvent::Start { now_ms: latest };
        let mut names = Vec::new();
        for (env, p) in self.passes.iter_mut() {
            let was = p.phase;
            p.apply(start, "");
            if p.phase != was {
                names.push(env.clone());
            }
        }
        self.progress_ms = now_ms;
        Ok(names)
    }

    /// Whether the attempt is waiting for a second pass that has not started.
    pub fn awaiting_second_pass(&self) -> bool {
        self.passes
            .values()
            .any(|p| matches!(p.phase, Phase::AwaitingSecond { .. }))
    }

    /// New work for `env` after its first pass ended (a late delivery): its passes run again.
    /// (The phase [`PhaseEvent::NewWork`] leads to is the default one, so the entry goes.)
    pub fn new_work(&mut self, env: &str) {
        self.passes.remove(env);
    }

    /// Whether this job should make progress and has made none for `timeout_ms`: the ledger's
    /// alarm drives it again.
    pub fn is_stalled(&self, now_ms: i64, timeout_ms: i64) -> bool {
        !self.status.is_final() && now_ms - self.progress_ms >= timeout_ms
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
            purged: self.purged.clone(),
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
        for scope in self.scopes.values_mut() {
            *scope = Scope::default();
        }
        if self.scopes.is_empty() {
            self.scopes.insert(ANY_SCOPE.to_string(), Scope::default());
        }
        self.passes.clear();
        self.first_pass_at = None;
        self.second_pass_at = None;
        self.drives = 0;
        self.on_failure_running = false;
        self.references = None;
        self.verification.clear();
        self.warm.clear();
        self.source = SOURCE_REPLAY.to_string();
        self.progress_ms = crate::time::parse_iso8601_utc_millis(now).unwrap_or(self.progress_ms);
        self.timeline = Timeline::starting(self.progress_ms);
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
        crate::sorted::sort(&mut self.skipped);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn dedupe_key_separates_stack_action_and_environment() {
        let a = dedupe_key(Some("k1"), "j1", Action::Publish, Some("production"));
        let b = dedupe_key(Some("k1"), "j1", Action::Unpublish, Some("production"));
        let c = dedupe_key(Some("k1"), "j1", Action::Publish, None);
        let d = dedupe_key(Some("k1"), "j1", Action::Publish, Some("staging"));
        let e = dedupe_key(Some("k2"), "j1", Action::Publish, Some("production"));
        let all = [&a, &b, &c, &d, &e];
        for (i, x) in all.iter().enumerate() {
            for y in &all[i + 1..] {
                assert_ne!(x, y);
            }
        }
        assert_eq!(
            a,
            dedupe_key(Some("k1"), "j1", Action::Publish, Some("production"))
        );
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

    fn t0() -> i64 {
        crate::time::parse_iso8601_utc_millis("2026-01-01T00:00:00Z").unwrap()
    }

    #[test]
    fn a_job_without_progress_is_stalled_until_it_ends() {
        let mut r = record();
        assert!(!r.is_stalled(t0() + 899_999, 900_000));
        assert!(r.is_stalled(t0() + 900_000, 900_000));
        r.status = JobStatus::Processing;
        r.progress_ms = t0() + 60_000;
        assert!(
            !r.is_stalled(t0() + 900_000, 900_000),
            "progress restarts the clock"
        );
        r.status = JobStatus::Done;
        assert!(!r.is_stalled(t0() + 9_000_000, 900_000));
        r.status = JobStatus::Processing;
        r.on_failure_running = true;
        assert!(
            r.is_stalled(t0() + 9_000_000, 900_000),
            "its on_failure purge must end"
        );
    }

    #[test]
    fn a_second_delivery_adds_a_scope_and_reopens_an_ended_job() {
        let mut r = JobRecord::accepted(
            "j".into(),
            Action::Publish,
            "2026-01-01T00:00:00Z".into(),
            Some("production".into()),
            vec![],
            None,
            json!({}),
        );
        assert_eq!(r.uncollected_scopes(), vec!["production"]);
        r.scopes.get_mut("production").unwrap().collected = true;
        r.status = JobStatus::Done;
        r.finished_at = Some("x".into());
        assert!(r.add_scope(Some("staging"), t0() + 5));
        assert!(!r.add_scope(Some("staging"), t0() + 6), "once per scope");
        assert_eq!(r.status, JobStatus::Processing);
        assert_eq!(r.finished_at, None);
        assert_eq!(r.attempts, 1, "a delivery is not an attempt");
        assert_eq!(r.environments, vec!["production", "staging"]);
        assert_eq!(r.uncollected_scopes(), vec!["staging"]);
        assert!(!r.all_collected());
    }

    #[test]
    fn passes_schedule_a_second_pass_only_where_kv_and_purges_both_ran() {
        let mut r = record();
        r.status = JobStatus::Processing;
        r.passes.entry("production".into()).or_default().last_kv_ms = Some(t0() + 1_000);
        let envs = vec![
            ("production".to_string(), true),
            ("staging".to_string(), false),
        ];
        let out = r.close_passes(&envs, 60_000, 10, 0, "2026-01-01T00:00:02Z", t0() + 2_000);
        assert_eq!(
            out,
            PassOutcome::SecondPassDue {
                due_ms: t0() + 61_000,
                newly: true
            },
            "due a delay after the last KV change"
        );
        assert_eq!(
            r.status,
            JobStatus::Processing,
            "not done before the second pass"
        );
        assert!(r.first_pass_at.is_some() && r.second_pass_at.is_none());
        assert!(r.awaiting_second_pass());
        assert!(
            !r.is_stalled(t0() + 61_000 + 899_000, 900_000),
            "waiting is not stalling"
        );
        // Asked again before it is due: nothing new, and too early to start.
        let again = r.close_passes(&envs, 60_000, 10, 0, "2026-01-01T00:00:03Z", t0() + 3_000);
        assert_eq!(
            again,
            PassOutcome::SecondPassDue {
                due_ms: t0() + 61_000,
                newly: false
            }
        );
        assert_eq!(r.start_second_pass(t0() + 30_000, 1_000), Err(31_000));
        assert_eq!(
            r.start_second_pass(t0() + 60_500, 1_000),
            Ok(vec!["production".to_string()])
        );
        let end = r.close_passes(&envs, 60_000, 12, 0, "2026-01-01T00:01:02Z", t0() + 62_000);
        assert_eq!(end, PassOutcome::Finished(JobStatus::Done));
        assert_eq!(r.second_pass_at.as_deref(), Some("2026-01-01T00:01:02Z"));
        assert_eq!(
            r.passes["staging"].second_pass_at, None,
            "no second pass without both KV and purge work"
        );
    }

    fn verification(pass: u8, stale: &[&str]) -> Verification {
        Verification {
            checked: 3,
            fresh: 3 - stale.len() as u32,
            stale: stale.iter().map(|s| s.to_string()).collect(),
            at: "t".into(),
            scope: crate::probe::SCOPE.into(),
            pass,
            ..Verification::default()
        }
    }

    #[test]
    fn verification_runs_after_each_pass_before_the_second_is_scheduled() {
        let mut r = record();
        r.status = JobStatus::Processing;
        r.verify_sample.insert("production".into(), 5);
        r.passes.entry("production".into()).or_default().last_kv_ms = Some(t0() + 1_000);
        let envs = vec![("production".to_string(), true)];
        let out = r.close_passes(&envs, 60_000, 10, 0, "2026-01-01T00:00:02Z", t0() + 2_000);
        assert_eq!(out, PassOutcome::Verify, "verified before anything else");
        assert!(r.verifying());
        assert_eq!(
            r.passes["production"].phase.second_due_ms(),
            None,
            "not scheduled yet"
        );
        // Handed out once, under a lease; a second claim waits.
        let (claimed, _) = r.claim_verification(t0() + 2_100, 60_000);
        let (env, due) = claimed.unwrap();
        assert_eq!(
            (env.as_str(), due.pass, due.since_ms),
            ("production", 1, t0() + 2_000)
        );
        assert_eq!(r.claim_verification(t0() + 2_200, 60_000), (None, true));
        assert!(
            r.claim_verification(t0() + 70_000, 60_000).0.is_some(),
            "a lost lease is handed out again"
        );
        assert!(
            !r.settle_verification("production", verification(2, &[]), t0() + 3_000),
            "wrong pass"
        );
        assert!(r.settle_verification("production", verification(1, &["u1"]), t0() + 3_000));
        assert!(
            !r.settle_verification("production", verification(1, &[]), t0() + 3_100),
            "a repeated report changes nothing"
        );
        assert_eq!(r.errors, vec!["still cached: u1"]);
        // Now the second pass is scheduled, a delay after the last KV change.
        let out = r.close_passes(&envs, 60_000, 10, 0, "2026-01-01T00:00:03Z", t0() + 3_000);
        assert_eq!(
            out,
            PassOutcome::SecondPassDue {
                due_ms: t0() + 61_000,
                newly: true
            }
        );
        assert_eq!(
            r.start_second_pass(t0() + 61_000, 1_000),
            Ok(vec!["production".to_string()])
        );
        let out = r.close_passes(&envs, 60_000, 12, 0, "2026-01-01T00:01:02Z", t0() + 62_000);
        assert_eq!(
            out,
            PassOutcome::Verify,
            "verified again after the second pass"
        );
        assert_eq!(r.passes["production"].verify_due().unwrap().pass, 2);
        let (claimed, _) = r.claim_verification(t0() + 62_000, 60_000);
        assert_eq!(claimed.unwrap().1.since_ms, t0() + 62_000);
        assert!(r.settle_verification("production", verification(2, &[]), t0() + 63_000));
        assert!(r.errors.is_empty(), "fresh now: the error is taken back");
        let end = r.close_passes(&envs, 60_000, 12, 0, "2026-01-01T00:01:03Z", t0() + 63_000);
        assert_eq!(end, PassOutcome::Finished(JobStatus::Done));
        let kinds: Vec<EventKind> = r.timeline.events.iter().map(|e| e.kind).collect();
        assert_eq!(
            kinds,
            vec![
                EventKind::FirstPass,
                EventKind::Verify,
                EventKind::Verify,
                EventKind::End
            ]
        );
    }

    #[test]
    fn a_url_still_cached_at_the_end_makes_a_done_job_partial() {
        let mut r = record();
        r.status = JobStatus::Processing;
        r.verify_sample.insert("production".into(), 3);
        r.verify_sample.insert("staging".into(), 0);
        let envs = vec![
            ("production".to_string(), false),
            ("staging".to_string(), false),
        ];
        assert_eq!(
            r.close_passes(&envs, 0, 5, 0, "t", t0()),
            PassOutcome::Verify
        );
        assert!(
            r.passes["staging"].verify_due().is_none(),
            "sample 0: no verification"
        );
        assert!(r.settle_verification("production", verification(1, &["u"]), t0()));
        assert_eq!(
            r.close_passes(&envs, 0, 5, 0, "t", t0()),
            PassOutcome::Finished(JobStatus::Partial)
        );
        let mut failed = record();
        failed.verify_sample.insert("production".into(), 3);
        let one = vec![("production".to_string(), false)];
        failed.close_passes(&one, 0, 0, 2, "t", t0());
        failed.settle_verification("production", verification(1, &["u"]), t0());
        assert_eq!(
            failed.close_passes(&one, 0, 0, 2, "t", t0()),
            PassOutcome::Finished(JobStatus::Failed),
            "failed stays failed"
        );
    }

    #[test]
    fn no_second_pass_when_it_is_turned_off() {
        let mut r = record();
        let envs = vec![("production".to_string(), true)];
        let out = r.close_passes(&envs, 0, 3, 1, "2026-01-01T00:00:02Z", t0() + 2_000);
        assert_eq!(out, PassOutcome::Finished(JobStatus::Partial));
        assert!(r.second_pass_at.is_none());
    }

    #[test]
    fn a_new_attempt_moves_the_outcome_to_history() {
        let mut r = record();
        r.status = JobStatus::Done;
        r.purged.kv_keys = 5;
        r.errors.push("x".into());
        r.scopes.get_mut("*").unwrap().collected = true;
        r.first_pass_at = Some("t".into());
        r.verification
            .insert("production".into(), Verification::default());
        r.timeline.add(t0() + 5, Event::new(EventKind::Start));
        r.begin_attempt("2026-01-01T00:01:00Z");
        assert_eq!(r.attempts, 2);
        assert_eq!(r.status, JobStatus::Accepted);
        assert_eq!(r.purged, PurgedCounts::default());
        assert!(r.errors.is_empty());
        assert_eq!(r.history.len(), 1);
        assert_eq!(r.history[0].purged.kv_keys, 5);
        assert_eq!(r.history[0].status, JobStatus::Done);
        assert_eq!(r.uncollected_scopes(), vec!["*"], "every scope runs again");
        assert_eq!(r.first_pass_at, None);
        assert_eq!(r.source, SOURCE_REPLAY);
        assert!(r.verification.is_empty());
        assert!(r.timeline.events.is_empty());
        assert_eq!(
            r.timeline.origin_ms,
            t0() + 60_000,
            "the new attempt's start"
        );
    }
}
