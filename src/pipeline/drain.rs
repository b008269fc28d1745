//! Draining a job's actions: claim → execute → report rounds, the overlap with collection,
//! and the second purge pass.

use std::cell::Cell;
use std::time::Duration;

use futures_util::future::join;
use worker::Delay;

use super::step::{
    Next, Run, StepError, LEASED_RETRY_S, LEASE_MS, OVERLAP_ROUND_MS, RESERVE_FETCHES, RESERVE_OPS,
};
use crate::budget::Budget;
use crate::ledger::ops::{ClaimOp, NextClaim, Progress, ReportOp, Reported, SecondPassOp};
use crate::net::NetError;
use crate::purge::{cap_kv, ClaimedAction, ExecOutcome, Outcome};
use crate::queue::{JobMessage, Step};
use crate::runtime::{now_iso, now_ms};

/// What one claim → execute → report round did.
struct Round {
    progress: Progress,
    /// Actions executed (held-back ones not counted).
    claimed: usize,
    /// Whether it deleted KV keys (which may have unblocked purge actions).
    unblocked: bool,
    /// The next round's actions, claimed by this round's report (see [`Chain`]).
    next: Option<Claim>,
}

/// Where a drain round's budget comes from.
#[derive(Clone, Copy, PartialEq, Eq)]
enum RoundBudget {
    /// The invocation's own budget.
    Invocation,
    /// A slice split off it (counted with it in the ledger's subrequest figure).
    Slice,
}

/// The actions a round works on: up to `limit`, of which at most `kv_cap` KV actions (the rest
/// go back to pending). `ready` holds them when the previous round's report claimed them
/// already; otherwise the round claims them itself.
struct Claim {
    limit: u32,
    /// Purge calls to take by count (`ClaimOp::calls`; 0: they count in `limit`).
    calls: u32,
    kv_cap: usize,
    ready: Option<Vec<ClaimedAction>>,
}

impl Claim {
    fn fresh(limit: u32, kv_cap: usize) -> Claim {
        Claim {
            limit,
            calls: 0,
            kv_cap,
            ready: None,
        }
    }

    /// The same claim taking up to `calls` purge calls whatever their size.
    fn with_calls(self, calls: u32) -> Claim {
        Claim { calls, ..self }
    }

    /// Claimed already, and nothing was claimable.
    fn came_back_empty(&self) -> bool {
        self.ready.as_ref().is_some_and(Vec::is_empty)
    }
}

/// Given the budget after a round's work and whether it deleted KV keys, the next round's
/// claim, when the caller will run that round at once: the round's report then claims it in
/// the same ledger call (one Durable Object call per round instead of two). `None` when the
/// caller would not run it (claimed actions would sit leased).
type Chain<'c> = &'c dyn Fn(&Budget, bool) -> Option<Claim>;

/// What a drain round runs with: the step's context, the budget it spends (and where that comes
/// from) and the job.
struct Drainer<'r> {
    ctx: &'r Run<'r>,
    budget: &'r Budget,
    which: RoundBudget,
    job: &'r JobMessage,
}

impl Drainer<'_> {
    /// Claims pending actions (or takes those claimed already), executes them and reports the
    /// results. The ledger hands out purge actions a whole call at a time (docs/ARCHITECTURE.md,
    /// "Purge groups"), so every call this round makes is one the schedule makes.
    async fn round(&self, claim: Claim, chain: Chain<'_>) -> Result<Round, StepError> {
        let claimed = self.claimed(claim.ready, claim.limit, claim.calls).await?;
        let (claimed, held) = cap_kv(claimed, claim.kv_cap);
        // KV work in this claim may unblock purge actions of its groups for the next round.
        let unblocking = claimed.iter().any(|a| a.kind.is_kv());
        let (mut out, err) = self.execute(&claimed).await;
        // Held-back actions go back to pending (their lease released) for the next claim.
        out.settle(&held, Outcome::Pending, None);
        let stuck = stuck_error(&out);
        // A round that ends in an error claims nothing for the next.
        let failing = err.is_some() || stuck.is_some();
        let next = if failing {
            None
        } else {
            chain(self.budget, unblocking)
        };
        let reported = self.report(out, next.as_ref()).await?;
        let progress = reported.progress;
        log_if_ended(self.ctx, self.job, &progress);
        if progress.current && !(progress.is_final() && progress.pending == 0) {
            if let Some(e) = err {
                return Err(e.into());
            }
            if let Some(e) = stuck {
                return Err(StepError::Transient {
                    message: e,
                    retry_after_s: None,
                });
            }
        }
        Ok(Round {
            progress,
            claimed: claimed.len(),
            unblocked: unblocking,
            next: next.map(|c| Claim {
                ready: Some(reported.next),
                ..c
            }),
        })
    }

    /// The actions claimed already (`ready`), else up to `limit` (and `calls`) claimed now.
    async fn claimed(
        &self,
        ready: Option<Vec<ClaimedAction>>,
        limit: u32,
        calls: u32,
    ) -> Result<Vec<ClaimedAction>, StepError> {
        let Some(ready) = ready else {
            let ctx = self.ctx;
            return ctx
                .counted(
                    self.budget,
                    ctx.ledger.claim(ClaimOp {
                        job_id: self.job.job_id.clone(),
                        attempt: self.job.attempt,
                        limit,
                        calls,
                        now_ms: now_ms(),
                        lease_ms: LEASE_MS,
                    }),
                )
                .await;
        };
        Ok(ready)
    }

    /// Executes `claimed` within the budget the report leaves.
    async fn execute(&self, claimed: &[ClaimedAction]) -> (ExecOutcome, Option<NetError>) {
        if claimed.is_empty() {
            return (ExecOutcome::default(), None);
        }
        let budget = self.budget;
        // The executors never touch the reserve kept for the round's report.
        let work = budget.split(
            budget.remaining_fetches(),
            budget.remaining_ops().saturating_sub(RESERVE_OPS),
        );
        let r = self.ctx.effects.execute(&work, claimed).await;
        budget.absorb(work);
        r
    }

    /// Reports the round's results; the report claims `next` too, when given.
    async fn report(&self, out: ExecOutcome, next: Option<&Claim>) -> Result<Reported, StepError> {
        let ctx = self.ctx;
        let then_claim = next.map(|c| NextClaim {
            limit: c.limit,
            calls: c.calls,
            lease_ms: LEASE_MS,
        });
        ctx.counted(
            self.budget,
            ctx.ledger.report(ReportOp {
                job_id: self.job.job_id.clone(),
                attempt: self.job.attempt,
                results: out.results,
                api_calls: out.api_calls,
                zone_calls: out.zone_calls,
                errors: out.errors,
                subrequests: self.invocation_total() as u64 + 1,
                now: now_iso(),
                now_ms: now_ms(),
                then_claim,
            }),
        )
        .await
    }

    /// The invocation's subrequests so far, a slice's included.
    fn invocation_total(&self) -> usize {
        self.ctx.budget.used()
            + match self.which {
                RoundBudget::Invocation => 0,
                RoundBudget::Slice => self.budget.used(),
            }
    }
}

/// The error of an action left pending, when the round settled none (it is stuck).
fn stuck_error(out: &ExecOutcome) -> Option<String> {
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
    stuck_error.filter(|_| settled == 0)
}

/// Whether `budget` holds another round: `fetches` beyond the reserve, and the reserve's
/// operations plus a few. `reporting` counts the report about to be sent, not spent yet (a
/// report that claims the next round is asked for before it goes out).
fn room_for_round(budget: &Budget, fetches: usize, reporting: bool) -> bool {
    budget.allows(
        RESERVE_FETCHES + fetches,
        RESERVE_OPS + 8 + usize::from(reporting),
    )
}

/// The claim size that fits the rest of the budget: one service operation per action other
/// than a purge call's.
fn claim_limit(budget: &Budget) -> u32 {
    (budget.remaining_ops().saturating_sub(RESERVE_OPS)).clamp(1, 1000) as u32
}

/// The purge calls a drain round claims: one fetch each, beyond the reserve (at least one).
/// Taken by count, not by their values (a call of 100 values counted as 100 actions left the
/// Free plan's drain one call a round, two ledger calls each).
fn call_room(budget: &Budget) -> u32 {
    budget
        .remaining_fetches()
        .saturating_sub(RESERVE_FETCHES)
        .max(1) as u32
}

pub(super) async fn drain(ctx: &Run<'_>, job: &JobMessage) -> Result<Next, StepError> {
    // Rounds follow one another at once: each report claims the next round's actions while the
    // budget allows another round (one ledger call for the report and the next claim).
    let chain = |b: &Budget, _unblocked: bool| {
        room_for_round(b, 0, true).then(|| {
            Claim::fresh(claim_limit(b).saturating_sub(1).max(1), usize::MAX)
                .with_calls(call_room(b))
        })
    };
    let rounds = Drainer {
        ctx,
        budget: &ctx.budget,
        which: RoundBudget::Invocation,
        job,
    };
    let mut ready: Option<Claim> = None;
    loop {
        let claim = match ready.take() {
            Some(c) => c,
            None => {
                if !room_for_round(&ctx.budget, 0, false) {
                    return Ok(Next::Queue(Step::Drain, 0));
                }
                Claim::fresh(claim_limit(&ctx.budget), usize::MAX)
                    .with_calls(call_room(&ctx.budget))
            }
        };
        let round = rounds.round(claim, &chain).await?;
        let p = &round.progress;
        if let Some(next) = next_after(ctx, job, p) {
            return Ok(next);
        }
        let nothing_next = round.next.as_ref().is_some_and(Claim::came_back_empty);
        if round.claimed == 0 || nothing_next {
            if p.pending == 0 {
                // Another scope is still collecting; it finishes the job.
                return Ok(Next::Stop);
            }
            // Everything left is leased by another invocation: look again later.
            return Ok(Next::Queue(Step::Drain, LEASED_RETRY_S));
        }
        ready = round.next;
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
    if p.warm {
        return Some(Next::Inline(Step::Warm));
    }
    if let Some(delay) = p.second_pass_in_s {
        ctx.log(
            "first_pass_done",
            serde_json::json!({"job_id": job.job_id, "attempt": job.attempt, "second_pass_in_s": delay}),
        );
        return Some(Next::Queue(Step::SecondPass, delay));
    }
    if p.is_final() && p.pending == 0 {
        return Some(Next::Stop);
    }
    None
}

/// Logs `purged` when `p` is the answer of the ledger operation that ended the attempt (only
/// that operation answers an ended attempt as current; later ones answer it as over).
pub(super) fn log_if_ended(ctx: &Run<'_>, job: &JobMessage, p: &Progress) {
    if p.current && p.is_final() && p.pending == 0 {
        ctx.log(
            "purged",
            serde_json::json!({"job_id": job.job_id, "attempt": job.attempt, "status": p.status, "fetch": ctx.budget.fetches(), "service_ops": ctx.budget.ops()}),
        );
    }
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
    log_if_ended(ctx, job, &p);
    if !p.current || (p.is_final() && p.pending == 0) {
        return Ok(Next::Stop);
    }
    if p.verify {
        return Ok(Next::Inline(Step::Verify));
    }
    if p.warm {
        return Ok(Next::Inline(Step::Warm));
    }
    if p.pending == 0 {
        if let Some(delay) = p.second_pass_in_s {
            return Ok(Next::Queue(Step::SecondPass, delay));
        }
    }
    ctx.log(
        "second_pass",
        serde_json::json!({"job_id": job.job_id, "attempt": job.attempt, "pending": p.pending}),
    );
    Ok(Next::Inline(Step::Drain))
}

/// Service operations kept for the reading side beyond its next unit, when purges run alongside
/// it: the limiter and ledger calls of about 30 pages (stored a few pages at a time, their
/// start slots reserved several at a time).
const WORK_OPS: usize = 32;
/// Service operations the purge rounds alongside keep from KV deletes: the later rounds' claims
/// and reports and their purge calls' limiter reservations.
const PURGE_OPS: usize = 24;
/// Once the rounds alongside have deleted KV keys, a slice with fewer service operations than
/// this counts as spent: too few for another round of KV or Cache API deletes worth its ledger
/// calls, while the work could hand on to a fresh invocation.
const STARVED_OPS: usize = RESERVE_OPS + PURGE_OPS + 32;

/// What a step's work and the purge rounds alongside it tell each other.
#[derive(Default)]
pub(super) struct Alongside {
    /// The work has ended: the rounds stop (after a round already claimed).
    done: Cell<bool>,
    /// Windows the work has stored: a new one wakes a round waiting for actions.
    stored: Cell<u32>,
}

impl Alongside {
    /// The work stored a window of actions.
    pub(super) fn stored_window(&self) {
        self.stored.set(self.stored.get().wrapping_add(1));
    }
}

/// Runs `work` (a step reading Contentstack at its rate limit) with purge rounds alongside:
/// they get half of the fetches left beyond `keep` (what `work` needs for its next unit) and
/// all but [`WORK_OPS`] of the service operations, and stop when `work` ends; what they leave
/// goes back to the invocation. When they stop early for lack of budget, the invocation's
/// budget asks it to hand on ([`Budget::hand_on`]): paced waits give way, and `work` hands on
/// to a fresh invocation at its next stop instead of reading on while the purges wait.
pub(super) async fn with_purges_alongside(
    ctx: &Run<'_>,
    job: &JobMessage,
    keep: (usize, usize),
    signals: &Alongside,
    work: impl std::future::Future<Output = Result<Next, StepError>>,
) -> Result<Next, StepError> {
    // Reading costs few service operations (a limiter call per several pages, a ledger call per
    // stored window), KV deletes one each: the purges get all of the operations but `WORK_OPS`.
    let ops_left = ctx.budget.remaining_ops().saturating_sub(keep.1);
    let slice = ctx.budget.split(
        ctx.budget.remaining_fetches().saturating_sub(keep.0) / 2,
        ops_left.saturating_sub(WORK_OPS).max(ops_left / 2),
    );
    let work = async {
        let r = work.await;
        signals.done.set(true);
        r
    };
    let alongside = async {
        if drain_alongside(ctx, &slice, job, signals).await {
            ctx.budget.hand_on();
        }
    };
    let (next, ()) = join(work, alongside).await;
    ctx.budget.absorb(slice);
    next
}

/// Whether the purge rounds alongside are out of budget: no room for another round; or, once
/// they have `deleted` KV keys, too little for another round of deletes ([`STARVED_OPS`]).
fn slice_spent(budget: &Budget, deleted: bool) -> bool {
    !room_for_round(budget, 4, false) || (deleted && budget.remaining_ops() < STARVED_OPS)
}

/// The claim of a purge round alongside the reads: about one fetch per purge batch and one
/// service operation per KV key (KV work runs here too, so the purges it holds back can
/// follow). A round sends at most what the purge bucket refills in about a round and a half
/// (so it ends soon after collection does), and its KV deletes leave [`PURGE_OPS`] for the
/// purge calls they unblock.
fn alongside_claim(ctx: &Run<'_>, budget: &Budget) -> Claim {
    let per_round =
        (ctx.cfg.cloudflare.purge_bucket.rate_per_second * OVERLAP_ROUND_MS as f64 * 1.5 / 1000.0)
            .ceil()
            .max(2.0) as usize;
    let batches =
        (budget.remaining_fetches().saturating_sub(RESERVE_FETCHES) * 3 / 4).min(per_round);
    let kv = budget
        .remaining_ops()
        .saturating_sub(RESERVE_OPS + PURGE_OPS);
    let limit = (batches * ctx.cfg.cloudflare.purge_batch_for(false) + kv).clamp(1, 3000) as u32;
    Claim::fresh(limit, kv)
}

/// Runs purge rounds until the work ends, so purging overlaps the rate-limited page reads,
/// within its own slice of the budget. Errors end it quietly: the drain step that follows
/// collection retries them, with the queue's backoff (handing on at an error would retry at
/// once, again and again while an API is down). Returns true when it stopped because its slice
/// ran out while the work went on (whether or not actions are pending now: the windows still to
/// come need a fresh budget too).
pub(super) async fn drain_alongside(
    ctx: &Run<'_>,
    budget: &Budget,
    job: &JobMessage,
    signals: &Alongside,
) -> bool {
    // The purge calls a round's KV deletes unblocked go next, at once: its report claims them.
    let chain = |b: &Budget, unblocked: bool| {
        (unblocked && room_for_round(b, 4, true)).then(|| alongside_claim(ctx, b))
    };
    let rounds = Drainer {
        ctx,
        budget,
        which: RoundBudget::Slice,
        job,
    };
    let spent = |deleted: bool| slice_spent(budget, deleted);
    let mut ready: Option<Claim> = None;
    // Whether a round has deleted KV keys: from then on, a slice too small for another round of
    // deletes counts as spent.
    let mut deleted = false;
    // A claimed round runs even when the work has just ended (its actions are leased).
    while !signals.done.get() || ready.is_some() {
        let claim = match ready.take() {
            Some(c) => c,
            None => {
                if spent(deleted) {
                    return true;
                }
                alongside_claim(ctx, budget)
            }
        };
        let kv = claim.kv_cap;
        let stored = signals.stored.get();
        match rounds.round(claim, &chain).await {
            Ok(r) if !r.progress.current => return false,
            // This round could delete no KV key: it sent the purges earlier deletes unblocked,
            // and the KV work waits for a fresh invocation.
            Ok(_) if kv == 0 => return true,
            Ok(r) if r.next.as_ref().is_some_and(|c| !c.came_back_empty()) => {
                deleted |= r.unblocked;
                ready = r.next;
            }
            // Deletes that unblocked nothing claimable yet (or no budget left to chain):
            // the next round at once claims for itself, or finds the budget spent.
            Ok(r) if r.unblocked => deleted = true,
            // Out of budget for another round: stop now, not after the wait below.
            Ok(_) if spent(deleted) => return true,
            // Let actions accumulate between rounds (fewer ledger calls, fuller claims), but
            // stop waiting as soon as the work stores a window or ends.
            Ok(_) => {
                for _ in 0..OVERLAP_ROUND_MS / 20 {
                    if signals.done.get() || signals.stored.get() != stored {
                        break;
                    }
                    Delay::from(Duration::from_millis(20)).await;
                }
            }
            Err(e) => {
                ctx.log(
                    "overlap_drain_stopped",
                    serde_json::json!({"job_id": job.job_id, "error": e.message()}),
                );
                return false;
            }
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::budget::Spend;

    #[test]
    fn a_slice_is_spent_without_room_or_once_too_small_for_deletes() {
        let slice = Budget::new(40, 850);
        assert!(!slice_spent(&slice, false), "a fresh slice");
        // The first window's 800 KV deletes leave 50 operations: room for a round of purge
        // calls, too few for another round of deletes.
        slice.spend(Spend::Kv, 800);
        assert!(
            !slice_spent(&slice, false),
            "before any delete, still room for a round"
        );
        assert!(
            slice_spent(&slice, true),
            "after deletes, too small for another round of them"
        );
        // No room for a round at all.
        slice.spend(Spend::Cache, 40);
        assert!(slice_spent(&slice, false));
        let no_fetches = Budget::new(RESERVE_FETCHES + 3, 850);
        assert!(
            slice_spent(&no_fetches, false),
            "too few fetches for a round"
        );
    }
}
