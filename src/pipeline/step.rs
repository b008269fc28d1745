//! What every pipeline step shares: the invocation's context ([`Run`]), where a step goes next
//! ([`Next`]), its error ([`StepError`]: transient, permanent or paced, by type), the budget
//! reserves and leases, and the `invocation` log line. A leaf of `pipeline`: the steps use it,
//! and [`super::run`] runs them.

use crate::budget::{Budget, Spend};
use crate::config::Config;
use crate::contentstack::client::Client;
use crate::ledger::client::JobClient;
use crate::net::NetError;
use crate::pace::queue_delay_seconds;
use crate::plan::PlanJob;
use crate::ports::Effects;
use crate::queue::enqueue;
use crate::queue::{JobMessage, Step};
use crate::runtime::now_ms;
use worker::Env;

/// How long claimed actions stay reserved for one invocation.
pub(super) const LEASE_MS: i64 = 5 * 60 * 1000;
/// Pause between purge rounds that run alongside the page reads.
pub(super) const OVERLAP_ROUND_MS: u64 = 500;
/// Service operations kept in reserve for the ledger calls and the queue send that close a step.
pub(super) const RESERVE_OPS: usize = 12;
/// External fetches kept in reserve (the retries of a call already started).
pub(super) const RESERVE_FETCHES: usize = 6;
/// Seconds before a drain looks again at actions another invocation holds.
pub(super) const LEASED_RETRY_S: u32 = 10;

/// Why a step stopped early. Whether it is worth trying again is decided by its cause's type.
#[derive(Debug)]
pub enum StepError {
    /// Worth trying again later (429, 5xx, timeouts, budget), not before `retry_after_s`.
    Transient {
        message: String,
        retry_after_s: Option<u32>,
    },
    /// Not a failure: the shared rate limiter's next start is this far away.
    Paced { wait_s: u32 },
    /// Not a failure: a paced read gave way, so that a fresh invocation (with a fresh budget)
    /// continues the step and the purges alongside it (`NetError::HandOn`).
    HandOn,
    /// Retrying cannot help (a refused token, a configuration problem): the job fails now.
    Permanent { message: String },
}

impl StepError {
    pub fn message(&self) -> &str {
        match self {
            StepError::Transient { message, .. } | StepError::Permanent { message } => message,
            StepError::Paced { .. } => "waiting for the shared rate limiter",
            StepError::HandOn => "handing on to a fresh invocation",
        }
    }

    pub fn is_transient(&self) -> bool {
        !matches!(self, StepError::Permanent { .. })
    }

    pub(super) fn retry_after_s(&self) -> u32 {
        match self {
            StepError::Transient { retry_after_s, .. } => retry_after_s.unwrap_or(0),
            StepError::Paced { wait_s } => *wait_s,
            StepError::HandOn | StepError::Permanent { .. } => 0,
        }
    }
}

impl From<NetError> for StepError {
    fn from(e: NetError) -> Self {
        if let NetError::Paced { wait_ms } = e {
            return StepError::Paced {
                wait_s: wait_ms.div_ceil(1000) as u32,
            };
        }
        if let NetError::HandOn = e {
            return StepError::HandOn;
        }
        if e.is_transient() {
            StepError::Transient {
                message: e.to_string(),
                retry_after_s: e.retry_after_ms().map(|ms| ms.div_ceil(1000) as u32),
            }
        } else {
            StepError::Permanent {
                message: e.to_string(),
            }
        }
    }
}

impl From<worker::Error> for StepError {
    fn from(e: worker::Error) -> Self {
        StepError::Transient {
            message: format!("runtime: {e}"),
            retry_after_s: None,
        }
    }
}

pub(super) fn permanent(message: String) -> StepError {
    StepError::Permanent { message }
}

/// The delay before a failed step's next try: exponential backoff, never shorter than what
/// the server asked for.
pub fn retry_delay_seconds(tries: u32, base_seconds: u32, retry_after_s: u32) -> u32 {
    queue_delay_seconds(tries, base_seconds).max(retry_after_s)
}

/// What a step runs with: the configuration, the bindings, its budget, its job's store and
/// its effects (the run's, or the dry run's, [`crate::ports`]).
pub(super) struct Run<'a> {
    pub(super) cfg: &'a Config,
    pub(super) env: &'a Env,
    pub(super) budget: Budget,
    pub(super) ledger: JobClient,
    pub(super) effects: &'a dyn Effects,
    /// The steps run so far, by kind ([`STEP_NAMES`] order), for the invocation's log line.
    steps_run: std::cell::Cell<[u16; STEP_NAMES.len()]>,
    /// Item pages read so far, and the most this invocation reads (the Free plan's one).
    pages_read: std::cell::Cell<usize>,
    page_cap: Option<usize>,
}

impl Run<'_> {
    /// A step run with `share` (fetches, service operations) of the invocation's budgets.
    pub(super) fn new<'a>(
        cfg: &'a Config,
        env: &'a Env,
        ledger: JobClient,
        share: (usize, usize),
        effects: &'a dyn Effects,
    ) -> Run<'a> {
        Run {
            cfg,
            env,
            budget: Budget::new(share.0, share.1),
            ledger,
            effects,
            steps_run: std::cell::Cell::new([0; STEP_NAMES.len()]),
            pages_read: std::cell::Cell::new(0),
            page_cap: cfg.pacing.item_pages_per_invocation(),
        }
    }

    /// The same run without the plan's cap on item pages (the dry run: one request that
    /// answers for the whole job).
    pub(super) fn reading_every_page(self) -> Self {
        Run {
            page_cap: None,
            ..self
        }
    }

    /// Counts one item page read by this invocation.
    pub(super) fn read_page(&self) {
        self.pages_read.set(self.pages_read.get() + 1);
    }

    /// Whether this invocation may read another item page (the plan's cap, if any).
    pub(super) fn may_read_page(&self) -> bool {
        self.page_cap.is_none_or(|max| self.pages_read.get() < max)
    }

    /// Counts one step of `step`'s kind as run by this invocation.
    pub(super) fn ran(&self, step: &Step) {
        let mut n = self.steps_run.get();
        let i = step_index(step);
        n[i] = n[i].saturating_add(1);
        self.steps_run.set(n);
    }

    /// The steps this invocation ran, by kind (kinds it did not run left out).
    fn steps_summary(&self) -> serde_json::Value {
        // Built by inserting: collecting into the map would link the standard library's sort
        // (crate::sorted), some 40 KB of the .wasm.
        let mut ran = serde_json::Map::new();
        for (name, n) in STEP_NAMES.iter().zip(self.steps_run.get()) {
            if n > 0 {
                ran.insert((*name).to_string(), n.into());
            }
        }
        serde_json::Value::Object(ran)
    }

    /// The job's Contentstack client on its branch, and the job as the planner sees it: what
    /// every step that reads the job's items starts with.
    pub(super) fn reader(
        &self,
        job: &JobMessage,
        api_key: &str,
        branch: Option<String>,
    ) -> Result<(Client<'_>, PlanJob), StepError> {
        let client =
            Client::new(self.cfg, self.env, &self.budget, api_key)?.with_branch(branch.clone());
        let plan_job = PlanJob {
            job_id: job.job_id.clone(),
            api_key: api_key.to_string(),
            branch,
        };
        Ok((client, plan_job))
    }

    /// A log line of the job's steps, through the effects (a dry run writes none).
    pub(super) fn log(&self, stage: &str, fields: serde_json::Value) {
        self.effects.log(stage, fields);
    }

    /// A ledger call, counted against `budget` (the invocation's, or a slice of it).
    pub(super) async fn counted<T>(
        &self,
        budget: &Budget,
        call: impl std::future::Future<Output = worker::Result<T>>,
    ) -> Result<T, StepError> {
        budget.spend(Spend::Durable, 1);
        Ok(call.await?)
    }

    /// Sends a message to the jobs queue, counted as a service operation.
    pub(super) async fn enqueue(&self, msg: &JobMessage, delay: u32) -> worker::Result<()> {
        self.budget.spend(Spend::Queue, 1);
        enqueue(self.env, msg, delay).await
    }
}

/// What a step asks for next.
pub(super) enum Next {
    Inline(Step),
    Queue(Step, u32),
    Stop,
}

/// One JSON line per invocation with what it used of both budgets.
pub(super) fn log_invocation(ctx: &Run<'_>, job: &JobMessage, started: i64) {
    let mut summary = ctx.budget.summary();
    summary["job_id"] = serde_json::json!(job.job_id);
    summary["step"] = serde_json::json!(step_name(&job.step));
    summary["scope"] = serde_json::json!(job.scope);
    summary["started_ms"] = serde_json::json!(started);
    summary["duration_ms"] = serde_json::json!(now_ms() - started);
    summary["steps"] = ctx.steps_summary();
    summary["pages"] = serde_json::json!(ctx.pages_read.get());
    ctx.log("invocation", summary);
}

/// Every step kind's name, as logs and the message's `step` field spell it.
const STEP_NAMES: [&str; 7] = [
    "start",
    "collect",
    "references",
    "drain",
    "second_pass",
    "verify",
    "warm",
];

fn step_index(s: &Step) -> usize {
    match s {
        Step::Start => 0,
        Step::Collect { .. } => 1,
        Step::References { .. } => 2,
        Step::Drain => 3,
        Step::SecondPass => 4,
        Step::Verify => 5,
        Step::Warm => 6,
    }
}

pub(super) fn step_name(s: &Step) -> &'static str {
    STEP_NAMES[step_index(s)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_retry_after_becomes_the_delay_and_never_shortens_it() {
        assert_eq!(retry_delay_seconds(1, 10, 45), 45);
        assert_eq!(retry_delay_seconds(3, 10, 5), 40);
        assert_eq!(retry_delay_seconds(1, 0, 0), 0);
    }

    #[test]
    fn net_errors_are_classified_by_type() {
        let rejected = |status| NetError::Rejected {
            what: "x".into(),
            status,
            detail: String::new(),
        };
        for status in [400, 401, 403, 412, 422] {
            assert!(
                !StepError::from(rejected(status)).is_transient(),
                "{status}"
            );
        }
        for status in [404, 408] {
            assert!(StepError::from(rejected(status)).is_transient(), "{status}");
        }
        let slow = NetError::Exhausted {
            what: "purge".into(),
            tries: 1,
            last: "HTTP 429".into(),
            retry_after_ms: Some(45_000),
        };
        let e = StepError::from(slow);
        assert!(e.is_transient());
        assert_eq!(e.retry_after_s(), 45);
        assert!(!StepError::from(NetError::Config("no token".into())).is_transient());
        assert!(StepError::from(NetError::Budget { what: "x".into() }).is_transient());
    }
}
