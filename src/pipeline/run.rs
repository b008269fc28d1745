//! Runs pipeline steps for one queue message: the entry point of both queues, the step loop,
//! hand-offs and retries. Thin glue: the decisions (paging, planning, batching, status, passes)
//! are made by the pure modules and the ledger.
//!
//! Choices where the contract is silent:
//! - Each invocation keeps a reserve of both budgets for the ledger calls and the queue send
//!   that close its step, so the `invocation` log line never shows more than either budget.
//! - A step that failed for a transient reason is retried after `RETRY_BASE_SECONDS × 2^(n-1)`,
//!   or after the server's `Retry-After` when that is longer; both count as one try. A wait
//!   the shared rate limiter asks for is not a try.
//! - The dead-letter queue is the queue named by `DEAD_LETTER_QUEUE`.

use serde_json::Value;
use worker::{Env, MessageBatch, MessageExt, RawMessage};

use super::collect::{collect, start};
use super::dead_letter::dead_letter;
use super::drain::{drain, second_pass};
use super::references::references;
use super::verify::verify;
use crate::budget::{share_batch, Budget, Sub};
use crate::config::Config;
use crate::ledger::client::LedgerClient;
use crate::net::NetError;
use crate::pace::queue_delay_seconds;
use crate::queue::{decode_message, enqueue, send_to, JobMessage, Step, DEAD_LETTER_QUEUE};
use crate::runtime::{self, log, now_ms};
use futures_util::future::join_all;

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
    /// Retrying cannot help (a refused token, a configuration problem): the job fails now.
    Permanent { message: String },
}

impl StepError {
    pub fn message(&self) -> &str {
        match self {
            StepError::Transient { message, .. } | StepError::Permanent { message } => message,
            StepError::Paced { .. } => "waiting for the shared rate limiter",
        }
    }

    pub fn is_transient(&self) -> bool {
        !matches!(self, StepError::Permanent { .. })
    }

    pub(super) fn retry_after_s(&self) -> u32 {
        match self {
            StepError::Transient { retry_after_s, .. } => retry_after_s.unwrap_or(0),
            StepError::Paced { wait_s } => *wait_s,
            StepError::Permanent { .. } => 0,
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

pub(super) struct Run<'a> {
    pub(super) cfg: &'a Config,
    pub(super) env: &'a Env,
    pub(super) budget: Budget,
    pub(super) ledger: LedgerClient,
}

impl Run<'_> {
    /// A step run with `share` (fetches, service operations) of the invocation's budgets.
    pub(super) fn new<'a>(
        cfg: &'a Config,
        env: &'a Env,
        ledger: LedgerClient,
        share: (usize, usize),
    ) -> Run<'a> {
        Run {
            cfg,
            env,
            budget: Budget::new(share.0, share.1),
            ledger,
        }
    }

    /// A ledger call, counted against `budget` (the invocation's, or a slice of it).
    pub(super) async fn counted<T>(
        &self,
        budget: &Budget,
        call: impl std::future::Future<Output = worker::Result<T>>,
    ) -> Result<T, StepError> {
        budget.spend(Sub::Durable, 1);
        Ok(call.await?)
    }

    /// Sends a message to the jobs queue, counted as a service operation.
    pub(super) async fn enqueue(&self, msg: &JobMessage, delay: u32) -> worker::Result<()> {
        self.budget.spend(Sub::Queue, 1);
        enqueue(self.env, msg, delay).await
    }
}

/// What a step asks for next.
pub(super) enum Next {
    Inline(Step),
    Queue(Step, u32),
    Stop,
}

/// Entry point for both queues: the dead-letter queue is the one `DEAD_LETTER_QUEUE` names.
pub async fn handle_batch(batch: MessageBatch<Value>, env: &Env) -> worker::Result<()> {
    let cfg_rc = runtime::config(env);
    let Ok(cfg) = cfg_rc.as_ref() else {
        batch.retry_all();
        return Ok(());
    };
    let dead = batch.queue() == cfg.dead_letter_queue;
    // Raw bodies, read as JSON text by serde_json: `batch.messages()` would convert each body
    // through serde_wasm_bindgen (a second deserializer in the .wasm).
    let mut jobs = Vec::new();
    for msg in batch.raw_iter() {
        match decode_raw(&msg.body()) {
            Some(job) => jobs.push((msg, job)),
            None => {
                log("bad_message", serde_json::json!({"queue": batch.queue()}));
                msg.ack();
            }
        }
    }
    // The batch's messages run at once, each with its share of the invocation's budgets
    // (docs/ARCHITECTURE.md, "Budgets per invocation"); those the budgets cannot share go back
    // to the queue as new messages (a retry would count toward the dead-letter limit).
    let (now, share) = share_batch(cfg.subrequest_budget, cfg.service_ops_budget, jobs.len());
    for (msg, job) in jobs.split_off(now) {
        let sent = if dead {
            send_to(env, DEAD_LETTER_QUEUE, &job, 0).await
        } else {
            enqueue(env, &job, 0).await
        };
        match sent {
            Ok(()) => msg.ack(),
            Err(_) => msg.retry(),
        }
    }
    join_all(jobs.iter().map(|(msg, job)| async move {
        if dead {
            if dead_letter(cfg, env, job, share).await {
                msg.ack();
            } else {
                msg.retry();
            }
        } else {
            run_message(cfg, env, msg, job.clone(), share).await;
        }
    }))
    .await;
    Ok(())
}

/// One JSON line per invocation with what it used of both budgets.
pub(super) fn log_invocation(ctx: &Run<'_>, job: &JobMessage, started: i64) {
    let mut summary = ctx.budget.summary();
    summary["job_id"] = serde_json::json!(job.job_id);
    summary["step"] = serde_json::json!(step_name(&job.step));
    summary["scope"] = serde_json::json!(job.scope);
    summary["started_ms"] = serde_json::json!(started);
    summary["duration_ms"] = serde_json::json!(now_ms() - started);
    log("invocation", summary);
}

/// A raw queue message body: JSON text (as [`crate::queue::send_to`] sends it), or an object
/// (read as its `JSON.stringify` text), through [`decode_message`]; `None` when it is neither or
/// not a job message.
fn decode_raw(body: &wasm_bindgen::JsValue) -> Option<JobMessage> {
    let text = match body.as_string() {
        Some(text) => text,
        None if body.is_object() => String::from(js_sys::JSON::stringify(body).ok()?),
        None => return None,
    };
    decode_message(&text).ok()
}

pub(super) async fn run_message(
    cfg: &Config,
    env: &Env,
    msg: &RawMessage,
    job: JobMessage,
    share: (usize, usize),
) {
    let ledger = match LedgerClient::new(env) {
        Ok(l) => l,
        Err(_) => {
            msg.retry();
            return;
        }
    };
    let ctx = Run::new(cfg, env, ledger, share);
    let started = now_ms();
    let mut step = job.step.clone();
    // Where a retry resumes: collection resumes through `start`, from the page the ledger
    // recorded last.
    let mut resume;
    let outcome = loop {
        resume = match &step {
            Step::Collect { .. } => Step::Start,
            other => other.clone(),
        };
        match run_step(&ctx, &job, step).await {
            Ok(Next::Inline(s)) => step = s,
            Ok(Next::Queue(s, delay)) => {
                log(
                    "continued",
                    serde_json::json!({"job_id": job.job_id, "step": step_name(&s), "delay_s": delay, "fetch": ctx.budget.fetches(), "service_ops": ctx.budget.ops()}),
                );
                break ctx
                    .enqueue(&job.at(s), delay)
                    .await
                    .map_err(StepError::from);
            }
            Ok(Next::Stop) => break Ok(()),
            Err(e) => break Err(e),
        }
    };
    let e = match outcome {
        Ok(()) => {
            log_invocation(&ctx, &job, started);
            msg.ack();
            return;
        }
        Err(StepError::Paced { wait_s }) => {
            // The same step, later, with the same try count.
            log(
                "paced",
                serde_json::json!({"job_id": job.job_id, "delay_s": wait_s}),
            );
            let mut later = job.at(resume);
            later.tries = job.tries;
            let sent = ctx.enqueue(&later, wait_s).await;
            log_invocation(&ctx, &job, started);
            match sent {
                Ok(()) => msg.ack(),
                Err(_) => msg.retry(),
            }
            return;
        }
        Err(e) => e,
    };
    let tries = job.tries + 1;
    log(
        "step_failed",
        serde_json::json!({"job_id": job.job_id, "tries": tries, "transient": e.is_transient(), "error": e.message()}),
    );
    let mut again = job.at(resume);
    again.tries = tries;
    again.last_error = Some(e.message().to_string());
    ctx.budget.spend(Sub::Queue, 1);
    let sent = if e.is_transient() && tries < cfg.retry.max_tries {
        let delay = retry_delay_seconds(tries, cfg.retry.base_seconds, e.retry_after_s());
        enqueue(env, &again, delay).await
    } else {
        send_to(env, DEAD_LETTER_QUEUE, &again, 0).await
    };
    log_invocation(&ctx, &job, started);
    match sent {
        Ok(()) => msg.ack(),
        // The queue's own retries (then its dead-letter queue) are the safety net.
        Err(_) => msg.retry(),
    }
}

pub(super) fn step_name(s: &Step) -> &'static str {
    match s {
        Step::Start => "start",
        Step::Collect { .. } => "collect",
        Step::References { .. } => "references",
        Step::Drain => "drain",
        Step::SecondPass => "second_pass",
        Step::Verify => "verify",
    }
}

pub(super) async fn run_step(
    ctx: &Run<'_>,
    job: &JobMessage,
    step: Step,
) -> Result<Next, StepError> {
    match step {
        Step::Start => start(ctx, job).await,
        Step::Collect {
            skip,
            api_key,
            branch,
            environments,
        } => collect(ctx, job, skip, api_key, branch, environments).await,
        Step::References {
            api_key,
            branch,
            environments,
        } => references(ctx, job, api_key, branch, environments).await,
        Step::Drain => drain(ctx, job).await,
        Step::SecondPass => second_pass(ctx, job).await,
        Step::Verify => verify(ctx, job).await,
    }
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
