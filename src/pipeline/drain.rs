//! Draining a job's actions: claim → execute → report rounds, the overlap with collection,
//! and the second purge pass.

use std::cell::Cell;
use std::time::Duration;

use futures_util::future::join;
use worker::Delay;

use super::resolve::stack_key;
use super::run::{
    Next, Run, StepError, LEASED_RETRY_S, LEASE_MS, OVERLAP_ROUND_MS, RESERVE_FETCHES, RESERVE_OPS,
};
use crate::budget::Budget;
use crate::ledger::ops::{ClaimOp, Progress, ReportOp, SecondPassOp};
use crate::purge::{exec, hold_back_partial_batch, BatchSize, Outcome};
use crate::queue::{JobMessage, Step};
use crate::runtime::{log, now_iso, now_ms};

/// What one claim → execute → report round did.
struct Round {
    progress: Progress,
    /// Actions executed (held-back ones not counted).
    claimed: usize,
}

/// Where a drain round's budget comes from.
#[derive(Clone, Copy, PartialEq, Eq)]
enum RoundBudget {
    /// The invocation's own budget.
    Invocation,
    /// A slice split off it (counted with it in the ledger's subrequest figure).
    Slice,
}

/// Claims up to `limit` pending actions, executes them and reports the results. `more_coming`
/// says that more actions may still be added (collection is running), so a partial purge batch
/// at the end of the claim waits for them.
#[allow(clippy::too_many_arguments)]
async fn drain_round(
    ctx: &Run<'_>,
    budget: &Budget,
    which: RoundBudget,
    job: &JobMessage,
    api_key: Option<&str>,
    limit: u32,
    more_coming: bool,
) -> Result<Round, StepError> {
    let invocation_total = || {
        ctx.budget.used()
            + match which {
                RoundBudget::Invocation => 0,
                RoundBudget::Slice => budget.used(),
            }
    };
    let claimed: Vec<crate::purge::ClaimedAction> = ctx
        .counted(
            budget,
            ctx.ledger.claim(ClaimOp {
                job_id: job.job_id.clone(),
                attempt: job.attempt,
                limit,
                now_ms: now_ms(),
                lease_ms: LEASE_MS,
            }),
        )
        .await?;
    let truncated = claimed.len() == limit as usize;
    let sizes = BatchSize {
        files: ctx.cfg.purge_batch_for(true),
        other: ctx.cfg.purge_batch_for(false),
    };
    // KV work in this claim unblocks more purge actions of its batches for the next round, so
    // partial purge batches wait for them then, as they do while collection adds actions.
    let unblocking = claimed.iter().any(|a| a.kind.is_kv());
    let (claimed, held) =
        hold_back_partial_batch(claimed, truncated, more_coming || unblocking, sizes);
    let (mut out, err) = if claimed.is_empty() {
        (exec::ExecOutcome::default(), None)
    } else {
        // The executors never touch the reserve kept for the report below.
        let work = budget.split(
            budget.remaining_fetches(),
            budget.remaining_ops().saturating_sub(RESERVE_OPS),
        );
        let r = exec::execute(ctx.cfg, ctx.env, &work, api_key, &claimed).await;
        budget.absorb(work);
        r
    };
    // Held-back actions go back to pending (their lease released) for the next claim.
    out.settle(&held, Outcome::Pending, None);
    let settled = out
        .results
        .iter()
        .filter(|r| r.outcome != Outcome::Pending || r.swept > 0)
        .count();
    let stuck_error = out
        .results
        .iter()
        .find(|r| r.outcome == Outcome::Pending && r.error.is_some())
        .and_then(|r| r.error.clone());
    let progress: Progress = ctx
        .counted(
            budget,
            ctx.ledger.report(ReportOp {
                job_id: job.job_id.clone(),
                attempt: job.attempt,
                results: out.results,
                api_calls: out.api_calls,
                errors: out.errors,
                subrequests: invocation_total() as u64 + 1,
                now: now_iso(),
                now_ms: now_ms(),
            }),
        )
        .await?;
    if progress.current && !(progress.is_final() && progress.pending == 0) {
        if let Some(e) = err {
            return Err(e.into());
        }
        if let Some(e) = stuck_error.filter(|_| settled == 0) {
            return Err(StepError::Transient {
                message: e,
                retry_after_s: None,
            });
        }
    }
    Ok(Round {
        progress,
        claimed: claimed.len(),
    })
}

/// The claim size that fits the rest of the budget.
fn claim_limit(ctx: &Run<'_>) -> u32 {
    (ctx.budget.remaining_ops().saturating_sub(RESERVE_OPS)).clamp(1, 1000) as u32
}

pub(super) async fn drain(ctx: &Run<'_>, job: &JobMessage) -> Result<Next, StepError> {
    let api_key = stack_key(ctx.cfg, job);
    loop {
        if !ctx.budget.allows(RESERVE_FETCHES, RESERVE_OPS + 8) {
            return Ok(Next::Queue(Step::Drain, 0));
        }
        let round = drain_round(
            ctx,
            &ctx.budget,
            RoundBudget::Invocation,
            job,
            api_key.as_deref(),
            claim_limit(ctx),
            false,
        )
        .await?;
        let p = &round.progress;
        if let Some(next) = next_after(ctx, job, p) {
            return Ok(next);
        }
        if round.claimed == 0 {
            if p.pending == 0 {
                // Another scope is still collecting; it finishes the job.
                return Ok(Next::Stop);
            }
            // Everything left is leased by another invocation: look again later.
            return Ok(Next::Queue(Step::Drain, LEASED_RETRY_S));
        }
    }
}

/// Where the attempt goes after a ledger answer that settled work: stop (over, or ended), verify,
/// or wait for the second pass; `None` while purge work remains.
pub(super) fn next_after(ctx: &Run<'_>, job: &JobMessage, p: &Progress) -> Option<Next> {
    if !p.current {
        return Some(Next::Stop);
    }
    if p.verify {
        return Some(Next::Inline(Step::Verify));
    }
    if let Some(delay) = p.second_pass_in_s {
        log(
            "first_pass_done",
            serde_json::json!({"job_id": job.job_id, "attempt": job.attempt, "second_pass_in_s": delay}),
        );
        return Some(Next::Queue(Step::SecondPass, delay));
    }
    if p.is_final() && p.pending == 0 {
        log(
            "purged",
            serde_json::json!({"job_id": job.job_id, "attempt": job.attempt, "status": p.status, "fetch": ctx.budget.fetches(), "service_ops": ctx.budget.ops()}),
        );
        return Some(Next::Stop);
    }
    None
}

/// Starts the second purge pass (or waits longer when it is not due yet), then drains it.
pub(super) async fn second_pass(ctx: &Run<'_>, job: &JobMessage) -> Result<Next, StepError> {
    let p: Progress = ctx
        .counted(
            &ctx.budget,
            ctx.ledger.second_pass(SecondPassOp {
                job_id: job.job_id.clone(),
                attempt: job.attempt,
                now: now_iso(),
                now_ms: now_ms(),
            }),
        )
        .await?;
    if !p.current || (p.is_final() && p.pending == 0) {
        return Ok(Next::Stop);
    }
    if p.verify {
        return Ok(Next::Inline(Step::Verify));
    }
    if p.pending == 0 {
        if let Some(delay) = p.second_pass_in_s {
            return Ok(Next::Queue(Step::SecondPass, delay));
        }
    }
    log(
        "second_pass",
        serde_json::json!({"job_id": job.job_id, "attempt": job.attempt, "pending": p.pending}),
    );
    Ok(Next::Inline(Step::Drain))
}

/// Service operations kept for the reading side beyond its next unit, when purges run alongside
/// it: about 30 pages' limiter and ledger calls.
const WORK_OPS: usize = 96;

/// Runs `work` (a step reading Contentstack at its rate limit) with purge rounds alongside:
/// they get half of the fetches left beyond `keep` (what `work` needs for its next unit) and
/// all but [`WORK_OPS`] of the service operations, and stop when `work` ends; what they leave goes back to the invocation. `spent`
/// is set when they stop early for lack of budget, so `work` can hand on to a fresh invocation
/// instead of reading on while the purges wait.
pub(super) async fn with_purges_alongside(
    ctx: &Run<'_>,
    job: &JobMessage,
    api_key: &str,
    keep: (usize, usize),
    spent: &Cell<bool>,
    work: impl std::future::Future<Output = Result<Next, StepError>>,
) -> Result<Next, StepError> {
    let busy = Cell::new(true);
    // Reading costs few service operations (a limiter and a ledger call per page or round),
    // KV deletes one each: the purges get all of the operations but `WORK_OPS`.
    let ops_left = ctx.budget.remaining_ops().saturating_sub(keep.1);
    let slice = ctx.budget.split(
        ctx.budget.remaining_fetches().saturating_sub(keep.0) / 2,
        ops_left.saturating_sub(WORK_OPS).max(ops_left / 2),
    );
    let work = async {
        let r = work.await;
        busy.set(false);
        r
    };
    let alongside = async {
        if drain_alongside(ctx, &slice, job, Some(api_key), &busy).await {
            spent.set(true);
        }
    };
    let (next, ()) = join(work, alongside).await;
    ctx.budget.absorb(slice);
    next
}

/// Runs purge rounds while `collecting` is set, so purging overlaps the rate-limited page
/// reads, within its own slice of the budget. Errors end it quietly: the drain step that
/// follows collection retries them. Returns true when it stopped because its slice ran out
/// while collection went on.
pub(super) async fn drain_alongside(
    ctx: &Run<'_>,
    budget: &Budget,
    job: &JobMessage,
    api_key: Option<&str>,
    collecting: &Cell<bool>,
) -> bool {
    while collecting.get() {
        if !budget.allows(RESERVE_FETCHES + 4, RESERVE_OPS + 8) {
            return true;
        }
        // About one fetch (and a quarter of a limiter call) per purge batch, one service
        // operation per KV key: KV work runs here too, so the purges it holds back can follow.
        let batches = (budget.remaining_fetches() - RESERVE_FETCHES) * 3 / 4;
        let kv = budget.remaining_ops().saturating_sub(RESERVE_OPS);
        let limit = (batches * ctx.cfg.purge_batch_for(false) + kv).clamp(1, 3000) as u32;
        match drain_round(ctx, budget, RoundBudget::Slice, job, api_key, limit, true).await {
            Ok(r) if !r.progress.current => return false,
            // Let actions accumulate between rounds (fewer ledger calls, fuller claims), but
            // stop waiting as soon as collection ends.
            Ok(_) => {
                for _ in 0..OVERLAP_ROUND_MS / 20 {
                    if !collecting.get() {
                        break;
                    }
                    Delay::from(Duration::from_millis(20)).await;
                }
            }
            Err(e) => {
                log(
                    "overlap_drain_stopped",
                    serde_json::json!({"job_id": job.job_id, "error": e.message()}),
                );
                return false;
            }
        }
    }
    false
}
