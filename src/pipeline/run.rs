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
use super::probe::probe;
use super::references::references;
use super::step::*;
use crate::budget::{share_batch, Spend};
use crate::config::Config;
use crate::ledger::client::JobClient;
use crate::queue::{decode_message, enqueue, send_to, JobMessage, Step, DEAD_LETTER_QUEUE};
use crate::runtime::{self, log, now_ms};
use futures_util::future::join_all;

/// Entry point for both queues: the dead-letter queue is the one `DEAD_LETTER_QUEUE` names.
pub async fn handle_batch(batch: MessageBatch<Value>, env: &Env) -> worker::Result<()> {
    let cfg_rc = runtime::config(env);
    let Ok(cfg) = cfg_rc.as_ref() else {
        batch.retry_all();
        return Ok(());
    };
    let dead = batch.queue() == cfg.deployment.dead_letter_queue;
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
    let (fetches, ops) = cfg.pacing.invocation_budgets();
    let (now, share) = share_batch(fetches, ops, jobs.len());
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
    let ledger = match JobClient::new(env, &job.job_id) {
        Ok(l) => l,
        Err(_) => {
            msg.retry();
            return;
        }
    };
    let live = super::effects::Live { cfg, env };
    let ctx = Run::new(cfg, env, ledger, share, &live);
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
        Err(e @ (StepError::Paced { .. } | StepError::HandOn)) => {
            let wait_s = e.retry_after_s();
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
    ctx.budget.spend(Spend::Queue, 1);
    let sent = if e.is_transient() && tries < cfg.pacing.retry.max_tries {
        let delay = retry_delay_seconds(tries, cfg.pacing.retry.base_seconds, e.retry_after_s());
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

pub(super) async fn run_step(
    ctx: &Run<'_>,
    job: &JobMessage,
    step: Step,
) -> Result<Next, StepError> {
    ctx.ran(&step);
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
        Step::Verify => probe(ctx, job).await,
        Step::Warm => super::warm::warm(ctx, job).await,
    }
}
