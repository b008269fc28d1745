//! The ledger's operations and their answers: what the Worker sends to the ledger Durable
//! Object and what comes back, one request type and one answer type per operation (the typed
//! client is [`super::client`]). Plain data.

use serde::{Deserialize, Serialize};

use super::JobRecord;
use crate::contentstack::references::Subject;
use crate::counts::JobItems;
use crate::ledger::JobStatus;
use crate::plan::Skipped;
use crate::purge::{ActionResult, ClaimedAction, NewAction};

/// One operation on a job's object, as sent: externally tagged (`{"accept":{…}}`), which
/// serde_json reads without buffering the body (an internally tagged enum pulls in serde's
/// `Content` deserializer, a large share of the .wasm). Only this Worker reads it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LedgerOp {
    Accept(AcceptOp),
    Rollback(RollbackOp),
    Get(GetOp),
    Replay(ReplayOp),
    Start(StartOp),
    AddActions(AddActionsOp),
    Claim(ClaimOp),
    Report(ReportOp),
    SecondPass(SecondPassOp),
    Fail(FailOp),
    ClaimLookups(ClaimLookupsOp),
    ReportLookups(ReportLookupsOp),
    ClaimVerification(ClaimVerificationOp),
    ReportVerification(ReportVerificationOp),
    ClaimWarm(ClaimWarmOp),
    ReportWarm(ReportWarmOp),
    /// Deletes everything a dry run's throwaway job stored.
    Discard,
}

/// The `accept` operation.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AcceptOp {
    pub key: String,
    pub record: Box<JobRecord>,
    /// A dry run's throwaway job (docs/ARCHITECTURE.md, "The dry run"): never told to the
    /// index, never driven, deleted by `Discard` or its alarm.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub scratch: bool,
}

/// Undoes an `Accept` or `Replay` whose queue message could not be sent: forgets the
/// delivery key and puts back the record as it was (or removes a new one).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RollbackOp {
    pub key: Option<String>,
    pub job_id: String,
    pub previous: Option<Box<JobRecord>>,
}

/// The `get` operation.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GetOp {
    pub job_id: String,
}

/// The `list` operation.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ListOp {
    pub limit: u32,
    pub cursor: Option<i64>,
}

/// The `replay` operation.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReplayOp {
    pub job_id: String,
    pub now: String,
}

/// The `start` operation.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StartOp {
    pub job_id: String,
    pub attempt: u32,
    pub scope: String,
    pub now: String,
    pub now_ms: i64,
    pub environments: Vec<String>,
    pub items: JobItems,
    /// Per environment: how many purged URLs its verification probes (0: none).
    #[serde(default)]
    pub verify_sample: std::collections::BTreeMap<String, u32>,
    /// Per environment: its rule's `warm` and `warm_rate`.
    #[serde(default)]
    pub warm: std::collections::BTreeMap<String, crate::rules::Warm>,
    pub subrequests: u64,
}

/// The `add_actions` operation.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AddActionsOp {
    pub job_id: String,
    pub attempt: u32,
    pub scope: String,
    /// Job items read and planned for these actions (the timeline's `pages`).
    #[serde(default)]
    pub items: u64,
    pub actions: Vec<NewAction>,
    pub skipped: Vec<Skipped>,
    /// The next page to read (`skip`) once these are stored.
    pub next_skip: u64,
    pub collected: bool,
    /// Job items whose referrers are to be looked up (docs/CONTRACT.md, "Reference-aware
    /// purge").
    #[serde(default)]
    pub lookups: Vec<NewLookup>,
    /// Environments whose reference `on_failure` purge is among `actions`.
    #[serde(default)]
    pub fell_back: Vec<String>,
    /// The purge group of `actions` (`purge::group_of_skip`, or `purge::REFERRERS_GROUP`).
    #[serde(default)]
    pub group: u64,
    /// Every job-items page of the scope is stored (reference look-ups may still add work).
    #[serde(default)]
    pub read_all: bool,
    pub subrequests: u64,
    pub now: String,
    pub now_ms: i64,
}

/// A job item whose referrers are looked up in one environment.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NewLookup {
    pub env: String,
    pub subject: Subject,
}

/// Hands out reference look-ups of these environments, within each one's `max_lookups`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClaimLookupsOp {
    pub job_id: String,
    pub attempt: u32,
    /// (environment, its `max_lookups`).
    pub environments: Vec<(String, u32)>,
    pub limit: u32,
    pub now_ms: i64,
    pub lease_ms: i64,
}

/// One look-up handed out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClaimedLookup {
    pub id: i64,
    pub env: String,
    pub subject: Subject,
    /// 0 = a job item; n = found n steps up the chain.
    pub depth: u8,
    /// The job item that led here (the subject itself at depth 0).
    pub from: Subject,
}

/// Answer to `ClaimLookups`.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct LookupClaim {
    /// False when this attempt is over: stop.
    pub current: bool,
    pub lookups: Vec<ClaimedLookup>,
    /// Look-ups of these environments not handed out (leased elsewhere, or past the limit).
    pub waiting: u64,
    /// Environments whose `on_failure` purge is due (truncated or refused) and not stored yet.
    pub fall_back: Vec<String>,
}

/// The results of claimed look-ups: the referrers each found, with their planned actions.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReportLookupsOp {
    pub job_id: String,
    pub attempt: u32,
    pub done: Vec<LookupDone>,
    pub skipped: Vec<Skipped>,
    pub errors: Vec<String>,
    pub subrequests: u64,
    pub now: String,
    pub now_ms: i64,
}

/// One look-up's result.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LookupDone {
    pub id: i64,
    /// Contentstack refused the look-up: the environment falls back to `on_failure`.
    #[serde(default)]
    pub refused: bool,
    /// The answer held more referrers than one look-up may plan: the environment is truncated.
    #[serde(default)]
    pub too_many: bool,
    pub referrers: Vec<FoundReferrer>,
}

/// A referrer published to the look-up's environment and locale, planned.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FoundReferrer {
    pub subject: Subject,
    pub version: Option<u64>,
    /// Its own referrers are looked up too (below `depth`).
    pub follow: bool,
    pub actions: Vec<NewAction>,
}

/// The `claim` operation.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClaimOp {
    pub job_id: String,
    pub attempt: u32,
    pub limit: u32,
    /// Purge calls to take whatever their size, the other actions filling `limit` on their own;
    /// 0: the calls' actions count in `limit` (`purge::claim_by_calls`).
    #[serde(default)]
    pub calls: u32,
    pub now_ms: i64,
    pub lease_ms: i64,
}

/// The `report` operation.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReportOp {
    pub job_id: String,
    pub attempt: u32,
    pub results: Vec<ActionResult>,
    pub api_calls: std::collections::BTreeMap<String, u64>,
    /// The same calls by environment and zone.
    #[serde(default)]
    pub zone_calls: Vec<crate::purge::ZoneCalls>,
    pub errors: Vec<String>,
    pub subrequests: u64,
    pub now: String,
    pub now_ms: i64,
    /// Claims the next round's actions in the same call, when the attempt's work goes on.
    #[serde(default)]
    pub then_claim: Option<NextClaim>,
}

/// What `report` claims for the next round: as `claim` would, right after settling.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct NextClaim {
    pub limit: u32,
    /// As [`ClaimOp::calls`].
    #[serde(default)]
    pub calls: u32,
    pub lease_ms: i64,
}

/// Answer to `report`.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Reported {
    pub progress: Progress,
    /// The next round's actions, when `then_claim` asked for them and the work goes on (empty
    /// when nothing is claimable now).
    #[serde(default)]
    pub next: Vec<ClaimedAction>,
}

/// Starts the second purge pass of the environments that wait for it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SecondPassOp {
    pub job_id: String,
    pub attempt: u32,
    pub now: String,
    pub now_ms: i64,
}

/// Marks the job failed and stores its `on_failure` actions, drained like any others.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FailOp {
    pub job_id: String,
    pub attempt: u32,
    pub error: String,
    pub actions: Vec<NewAction>,
    pub now: String,
    pub now_ms: i64,
}

/// Hands out one due verification (docs/CONTRACT.md, "Verified invalidation") with its sample
/// of purged URLs, at most `max_urls` of them.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClaimVerificationOp {
    pub job_id: String,
    pub attempt: u32,
    pub max_urls: u32,
    pub now: String,
    pub now_ms: i64,
    pub lease_ms: i64,
}

/// A verification handed out: probe `urls` (zone, URL) of `env`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VerificationWork {
    pub env: String,
    pub pass: u8,
    pub since_ms: i64,
    pub urls: Vec<(String, String)>,
    /// How its URLs were purged (the purge endpoint), to purge them again the same way.
    #[serde(default)]
    pub via: String,
}

/// Answer to `ClaimVerification`.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct VerificationClaim {
    /// False when this attempt is over: stop.
    pub current: bool,
    pub work: Option<VerificationWork>,
    /// Due verifications leased by another invocation.
    pub waiting: bool,
}

/// An environment's verification, done.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReportVerificationOp {
    pub job_id: String,
    pub attempt: u32,
    pub env: String,
    pub verification: crate::probe::Verification,
    /// Purge API calls of the extra purge.
    pub api_calls: u64,
    /// The same calls by environment and zone.
    #[serde(default)]
    pub zone_calls: Vec<crate::purge::ZoneCalls>,
    pub errors: Vec<String>,
    pub subrequests: u64,
    pub now: String,
    pub now_ms: i64,
}

/// Answer to `Accept`.
#[derive(Debug, Serialize, Deserialize)]
pub struct AcceptAnswer {
    pub accepted: bool,
    pub attempt: u32,
    /// The record before this delivery, when the job was known (for a rollback).
    #[serde(default)]
    pub previous: Option<Box<JobRecord>>,
}

/// Answer to `Replay`.
#[derive(Debug, Serialize, Deserialize)]
pub struct ReplayAnswer {
    pub record: Box<JobRecord>,
    pub previous: Box<JobRecord>,
}

/// Answer to the pipeline's operations: how far the attempt is.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Progress {
    pub pending: u64,
    pub status: Option<JobStatus>,
    /// False when this attempt is over (a newer one started, or it ended): stop.
    pub current: bool,
    /// Set once, when the attempt starts waiting for its second pass: send the message that
    /// runs it after this many seconds.
    #[serde(default)]
    pub second_pass_in_s: Option<u32>,
    /// Some environment's verification is due: run the probe step (queued as `verify`).
    #[serde(default)]
    pub verify: bool,
    /// Some environment warms its cache: run the warm step.
    #[serde(default)]
    pub warm: bool,
}

impl Progress {
    /// The answer for an attempt that is over (a newer one started, or it ended).
    pub fn stale(status: JobStatus) -> Progress {
        Progress {
            pending: 0,
            status: Some(status),
            current: false,
            second_pass_in_s: None,
            verify: false,
            warm: false,
        }
    }

    /// The answer for a job the ledger does not know.
    pub fn gone() -> Progress {
        Progress::default()
    }

    pub fn is_final(&self) -> bool {
        self.status.is_some_and(JobStatus::is_final)
    }

    /// Whether the step that got this answer goes on draining: the attempt is current, no
    /// verification is due, no second pass is being waited for and work is pending. Only then
    /// does a `report` with `then_claim` claim the next round (the step would otherwise leave
    /// the actions leased).
    pub fn goes_on(&self) -> bool {
        self.current
            && !self.verify
            && !self.warm
            && self.second_pass_in_s.is_none()
            && self.pending > 0
    }
}

/// Answer to `list`: one page of records, newest first.
#[derive(Debug, Serialize, Deserialize)]
pub struct JobList {
    pub jobs: Vec<serde_json::Value>,
    pub cursor: Option<String>,
}

/// Hands out the next warm requests (`pipeline::warm`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClaimWarmOp {
    pub job_id: String,
    pub attempt: u32,
    pub limit: u32,
    pub now: String,
    pub now_ms: i64,
    pub lease_ms: i64,
}

/// Answer to `ClaimWarm`: one environment's next URLs with its pace.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct WarmClaim {
    /// False when this attempt is over: stop.
    pub current: bool,
    pub env: String,
    /// Requests started per second.
    pub rate: u32,
    /// The earliest the first may start (ms since the epoch).
    pub next_ms: i64,
    /// (id, URL), in warm order; empty while every pending one is leased elsewhere.
    pub urls: Vec<(i64, String)>,
    /// Set when the claim ended an environment's warming: where the attempt goes.
    pub progress: Option<Progress>,
}

/// Warm requests answered: (id, answered below 500).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReportWarmOp {
    pub job_id: String,
    pub attempt: u32,
    pub env: String,
    pub results: Vec<(i64, bool)>,
    /// The earliest the next request may start.
    pub next_ms: i64,
    pub now: String,
    pub now_ms: i64,
}
