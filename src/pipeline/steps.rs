//! Runs pipeline steps for one queue message, and the dead-letter handling. Thin glue: the
//! decisions (paging, planning, batching, status, passes) are made by the pure modules and the
//! ledger.
//!
//! Choices where the contract is silent:
//! - Each invocation keeps a reserve of both budgets for the ledger calls and the queue send
//!   that close its step, so the `invocation` log line never shows more than either budget.
//! - A step that failed for a transient reason is retried after `RETRY_BASE_SECONDS × 2^(n-1)`,
//!   or after the server's `Retry-After` when that is longer; both count as one try.
//! - The dead-letter queue is the queue named by `DEAD_LETTER_QUEUE`. A dead letter for a job
//!   that is already final (or of an older attempt) is acknowledged and changes nothing.
//! - The `on_failure` purge is stored in the ledger and drained like any other work, across
//!   as many invocations as its sweeps need.

use std::cell::Cell;
use std::time::Duration;

use futures_util::future::join;
use serde_json::Value;
use worker::{Delay, Env, Message, MessageBatch, MessageExt};

use crate::budget::{Budget, Sub};
use crate::config::Config;
use crate::contentstack::{client::Client, has_more, resolve_environments, PAGE_SIZE};
use crate::event::ANY_SCOPE;
use crate::ledger::client::LedgerClient;
use crate::ledger::ops::{
    AddActionsOp, ClaimOp, FailOp, Progress, ReportOp, SecondPassOp, StartOp,
};
use crate::ledger::{JobRecord, JobStatus};
use crate::net::NetError;
use crate::pace::queue_delay_seconds;
use crate::plan::{plan, plan_failure, PlanEnvironment, PlanJob};
use crate::purge::{actions_from_plan, exec, hold_back_partial_batch, BatchSize, Outcome};
use crate::queue::{decode_message, enqueue, send_to, JobMessage, Step, DEAD_LETTER_QUEUE};
use crate::runtime::{self, log, now_iso, now_ms};

/// How long claimed actions stay reserved for one invocation.
const LEASE_MS: i64 = 5 * 60 * 1000;
/// Pause between purge rounds that run alongside the page reads.
const OVERLAP_ROUND_MS: u64 = 400;
/// Service operations kept in reserve for the ledger calls and the queue send that close a step.
const RESERVE_OPS: usize = 12;
/// External fetches kept in reserve (the retries of a call already started).
const RESERVE_FETCHES: usize = 6;
/// Seconds before a drain looks again at actions another invocation holds.
const LEASED_RETRY_S: u32 = 10;

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

    fn retry_after_s(&self) -> u32 {
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

fn permanent(message: String) -> StepError {
    StepError::Permanent { message }
}

/// The delay before a failed step's next try: exponential backoff, never shorter than what
/// the server asked for.
pub fn retry_delay_seconds(tries: u32, base_seconds: u32, retry_after_s: u32) -> u32 {
    queue_delay_seconds(tries, base_seconds).max(retry_after_s)
}

struct Run<'a> {
    cfg: &'a Config,
    env: &'a Env,
    budget: Budget,
    ledger: LedgerClient,
}

impl Run<'_> {
    fn new<'a>(cfg: &'a Config, env: &'a Env, ledger: LedgerClient) -> Run<'a> {
        Run {
            cfg,
            env,
            budget: Budget::new(cfg.subrequest_budget, cfg.service_ops_budget),
            ledger,
        }
    }

    /// A ledger call, counted against `budget` (the invocation's, or a slice of it).
    async fn counted<T>(
        &self,
        budget: &Budget,
        call: impl std::future::Future<Output = worker::Result<T>>,
    ) -> Result<T, StepError> {
        budget.spend(Sub::Durable, 1);
        Ok(call.await?)
    }

    /// Sends a message to the jobs queue, counted as a service operation.
    async fn enqueue(&self, msg: &JobMessage, delay: u32) -> worker::Result<()> {
        self.budget.spend(Sub::Queue, 1);
        enqueue(self.env, msg, delay).await
    }
}

/// What a step asks for next.
enum Next {
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
    for msg in batch.messages()? {
        let parsed = decode_message(msg.body());
        let Ok(job) = parsed else {
            log("bad_message", serde_json::json!({"queue": batch.queue()}));
            msg.ack();
            continue;
        };
        if dead {
            if dead_letter(cfg, env, &job).await {
                msg.ack();
            } else {
                msg.retry();
            }
        } else {
            run_message(cfg, env, &msg, job).await;
        }
    }
    Ok(())
}

/// One JSON line per invocation with what it used of both budgets.
fn log_invocation(ctx: &Run<'_>, job: &JobMessage, started: i64) {
    let mut summary = ctx.budget.summary();
    summary["job_id"] = serde_json::json!(job.job_id);
    summary["step"] = serde_json::json!(step_name(&job.step));
    summary["scope"] = serde_json::json!(job.scope);
    summary["started_ms"] = serde_json::json!(started);
    summary["duration_ms"] = serde_json::json!(now_ms() - started);
    log("invocation", summary);
}

async fn run_message(cfg: &Config, env: &Env, msg: &Message<Value>, job: JobMessage) {
    let ledger = match LedgerClient::new(env) {
        Ok(l) => l,
        Err(_) => {
            msg.retry();
            return;
        }
    };
    let ctx = Run::new(cfg, env, ledger);
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

fn step_name(s: &Step) -> &'static str {
    match s {
        Step::Start => "start",
        Step::Collect { .. } => "collect",
        Step::Drain => "drain",
        Step::SecondPass => "second_pass",
    }
}

async fn run_step(ctx: &Run<'_>, job: &JobMessage, step: Step) -> Result<Next, StepError> {
    match step {
        Step::Start => start(ctx, job).await,
        Step::Collect {
            skip,
            api_key,
            branch,
            environments,
        } => collect(ctx, job, skip, api_key, branch, environments).await,
        Step::Drain => drain(ctx, job).await,
        Step::SecondPass => second_pass(ctx, job).await,
    }
}

/// Picks the stack: the webhook's api_key, else the only one configured.
pub fn stack_key(cfg: &Config, job: &JobMessage) -> Option<String> {
    if let Some(k) = &job.api_key {
        return Some(k.clone());
    }
    if cfg.api_keys.len() == 1 {
        return cfg.api_keys.first().cloned();
    }
    if cfg.management_tokens.per_stack.len() == 1 && cfg.management_tokens.default.is_none() {
        return cfg.management_tokens.per_stack.keys().next().cloned();
    }
    None
}

/// What the job status API and the stack's environments say about a job.
pub struct Resolved {
    pub items: crate::counts::JobItems,
    /// Every resolved environment name (recorded).
    pub names: Vec<String>,
    /// The environments that have a purge rule (planned).
    pub with_rules: Vec<PlanEnvironment>,
    /// The job's branch (else `CONTENTSTACK_BRANCH`).
    pub branch: Option<String>,
}

/// Job status + environments → the environments this job works on (docs/CONTRACT.md,
/// "Processing").
pub async fn resolve_job(
    cfg: &Config,
    client: &Client<'_>,
    api_key: &str,
    job_id: &str,
    channel_environment: Option<&str>,
    hinted: &[String],
) -> Result<Resolved, StepError> {
    let status = client.job_status(job_id).await?;
    let stack_envs = client.environments().await?;
    let (envs, unknown) = resolve_environments(
        channel_environment,
        &status.body.environments,
        hinted,
        &stack_envs,
    );
    if let Some(name) = channel_environment {
        if envs.is_empty() {
            return Err(permanent(format!(
                "environment {name:?} named by the channel is not in the stack"
            )));
        }
    }
    if !unknown.is_empty() {
        log(
            "unknown_environments",
            serde_json::json!({"job_id": job_id, "environments": unknown}),
        );
    }
    Ok(Resolved {
        items: status.summary.counts(),
        names: envs.iter().map(|e| e.name.clone()).collect(),
        with_rules: envs
            .into_iter()
            .filter(|e| cfg.rules.rule_for_stack(Some(api_key), &e.name).is_some())
            .collect(),
        branch: status
            .body
            .branch
            .filter(|b| !b.is_empty())
            .or_else(|| cfg.branch.clone()),
    })
}

/// Reads one page of items, resolves their URLs where a rule asks for it, and plans them.
/// Returns the page's plan, whether more pages follow, and how many items it held.
pub async fn plan_page(
    cfg: &Config,
    client: &Client<'_>,
    job: &PlanJob,
    skip: u64,
    environments: &[PlanEnvironment],
) -> Result<(crate::plan::Plan, bool, usize), StepError> {
    let mut page = client.items_page(&job.job_id, skip).await?;
    let resolving: Vec<&str> = environments
        .iter()
        .filter(|e| resolves_urls(cfg, &job.api_key, e))
        .map(|e| e.uid.as_str())
        .collect();
    if !resolving.is_empty() {
        let mut wanted: Vec<_> = page
            .items
            .iter()
            .filter(|i| resolving.contains(&i.environment_uid.as_str()))
            .cloned()
            .collect();
        client.resolve_urls(&mut wanted).await?;
        for it in page.items.iter_mut() {
            if let Some(w) = wanted.iter().find(|w| {
                w.uid == it.uid && w.locale == it.locale && w.environment_uid == it.environment_uid
            }) {
                it.url = w.url.clone();
            }
        }
    }
    let p = plan(job, &page.items, environments, &cfg.rules);
    Ok((p, has_more(skip, page.raw_len), page.items.len()))
}

fn resolves_urls(cfg: &Config, api_key: &str, e: &PlanEnvironment) -> bool {
    cfg.rules
        .rule_for_stack(Some(api_key), &e.name)
        .is_some_and(|r| r.resolve_urls)
}

/// What one page may cost: (external fetches, service operations). The page itself, one
/// lookup per item where a rule resolves URLs, a limiter call per four starts, and the ledger.
pub fn page_cost(cfg: &Config, api_key: &str, environments: &[PlanEnvironment]) -> (usize, usize) {
    let resolve = environments.iter().any(|e| resolves_urls(cfg, api_key, e));
    let fetches = 1 + if resolve { PAGE_SIZE as usize } else { 0 };
    (fetches, fetches.div_ceil(4) + 2)
}

async fn start(ctx: &Run<'_>, job: &JobMessage) -> Result<Next, StepError> {
    ctx.budget.spend(Sub::Durable, 1);
    let Some(record) = ctx.ledger.get(&job.job_id).await? else {
        log("record_missing", serde_json::json!({"job_id": job.job_id}));
        return Ok(Next::Stop);
    };
    if record.attempts != job.attempt || record.status.is_final() || record.on_failure_running {
        return Ok(Next::Stop);
    }
    let scope = record.scopes.get(&job.scope).cloned().unwrap_or_default();
    if scope.collected {
        return Ok(Next::Inline(Step::Drain));
    }
    let api_key = stack_key(ctx.cfg, job).ok_or_else(|| {
        permanent("the webhook named no api_key and several stacks are configured".into())
    })?;
    let client = Client::new(ctx.cfg, ctx.env, &ctx.budget, &api_key)?;
    let channel = (job.scope != ANY_SCOPE).then_some(job.scope.as_str());
    let r = resolve_job(
        ctx.cfg,
        &client,
        &api_key,
        &job.job_id,
        channel,
        &record.hinted_environments,
    )
    .await?;
    let progress: Progress = ctx
        .counted(
            &ctx.budget,
            ctx.ledger.start(StartOp {
                job_id: job.job_id.clone(),
                attempt: job.attempt,
                scope: job.scope.clone(),
                now: now_iso(),
                now_ms: now_ms(),
                environments: r.names.clone(),
                items: r.items,
                subrequests: ctx.budget.used() as u64,
            }),
        )
        .await?;
    if !progress.current {
        return Ok(Next::Stop);
    }
    log(
        "started",
        serde_json::json!({"job_id": job.job_id, "attempt": job.attempt, "scope": job.scope, "environments": r.names, "items": r.items, "branch": r.branch}),
    );
    Ok(Next::Inline(Step::Collect {
        skip: scope.next_skip,
        api_key,
        branch: r.branch,
        environments: r.with_rules,
    }))
}

async fn collect(
    ctx: &Run<'_>,
    job: &JobMessage,
    skip: u64,
    api_key: String,
    branch: Option<String>,
    environments: Vec<PlanEnvironment>,
) -> Result<Next, StepError> {
    let collecting = Cell::new(true);
    // Half of what is left beyond the next page purges alongside the page reads; the page
    // reads keep the rest, so collection always makes progress.
    let (page_f, page_o) = page_cost(ctx.cfg, &api_key, &environments);
    let slice = ctx.budget.split(
        ctx.budget
            .remaining_fetches()
            .saturating_sub(page_f + RESERVE_FETCHES)
            / 2,
        ctx.budget
            .remaining_ops()
            .saturating_sub(page_o + RESERVE_OPS)
            / 2,
    );
    let pages = async {
        let r = collect_pages(ctx, job, skip, api_key.clone(), branch, environments).await;
        collecting.set(false);
        r
    };
    let (next, ()) = join(
        pages,
        drain_alongside(ctx, &slice, job, Some(api_key.as_str()), &collecting),
    )
    .await;
    ctx.budget.absorb(slice);
    next
}

/// Reads item pages from `skip` on, plans each and stores its actions.
async fn collect_pages(
    ctx: &Run<'_>,
    job: &JobMessage,
    mut skip: u64,
    api_key: String,
    branch: Option<String>,
    environments: Vec<PlanEnvironment>,
) -> Result<Next, StepError> {
    let (cost_f, cost_o) = page_cost(ctx.cfg, &api_key, &environments);
    let client = Client::new(ctx.cfg, ctx.env, &ctx.budget, &api_key)?.with_branch(branch.clone());
    let plan_job = PlanJob {
        job_id: job.job_id.clone(),
        api_key: api_key.clone(),
        branch: branch.clone(),
    };
    let mut fetched = 0usize;
    loop {
        let (p, more_pages) = if environments.is_empty() {
            (crate::plan::Plan::default(), false)
        } else {
            if !ctx
                .budget
                .allows(cost_f + RESERVE_FETCHES, cost_o + RESERVE_OPS)
            {
                return Ok(Next::Queue(
                    Step::Collect {
                        skip,
                        api_key,
                        branch,
                        environments,
                    },
                    0,
                ));
            }
            let (p, more, n) = plan_page(ctx.cfg, &client, &plan_job, skip, &environments).await?;
            fetched += n;
            (p, more)
        };
        let next_skip = if more_pages { skip + PAGE_SIZE } else { skip };
        let progress: Progress = ctx
            .counted(
                &ctx.budget,
                ctx.ledger.add_actions(AddActionsOp {
                    job_id: job.job_id.clone(),
                    attempt: job.attempt,
                    scope: job.scope.clone(),
                    actions: actions_from_plan(&p),
                    skipped: p.skipped,
                    next_skip,
                    collected: !more_pages,
                    subrequests: ctx.budget.used() as u64 + 1,
                    now: now_iso(),
                    now_ms: now_ms(),
                }),
            )
            .await?;
        if !progress.current {
            return Ok(Next::Stop);
        }
        if let Some(delay) = progress.second_pass_in_s {
            return Ok(Next::Queue(Step::SecondPass, delay));
        }
        if !more_pages {
            log(
                "items_fetched",
                serde_json::json!({"job_id": job.job_id, "scope": job.scope, "last_skip": skip, "items_this_invocation": fetched, "pending_actions": progress.pending}),
            );
            return Ok(Next::Inline(Step::Drain));
        }
        skip = next_skip;
    }
}

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
    let (claimed, held) = hold_back_partial_batch(claimed, truncated, more_coming, sizes);
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

async fn drain(ctx: &Run<'_>, job: &JobMessage) -> Result<Next, StepError> {
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
        if !p.current {
            return Ok(Next::Stop);
        }
        if let Some(delay) = p.second_pass_in_s {
            log(
                "first_pass_done",
                serde_json::json!({"job_id": job.job_id, "attempt": job.attempt, "second_pass_in_s": delay}),
            );
            return Ok(Next::Queue(Step::SecondPass, delay));
        }
        if p.is_final() && p.pending == 0 {
            log(
                "purged",
                serde_json::json!({"job_id": job.job_id, "attempt": job.attempt, "status": p.status, "fetch": ctx.budget.fetches(), "service_ops": ctx.budget.ops()}),
            );
            return Ok(Next::Stop);
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

/// Starts the second purge pass (or waits longer when it is not due yet), then drains it.
async fn second_pass(ctx: &Run<'_>, job: &JobMessage) -> Result<Next, StepError> {
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

/// Runs purge rounds while `collecting` is set, so purging overlaps the rate-limited page
/// reads, within its own slice of the budget. Errors end it quietly: the drain step that
/// follows collection retries them.
async fn drain_alongside(
    ctx: &Run<'_>,
    budget: &Budget,
    job: &JobMessage,
    api_key: Option<&str>,
    collecting: &Cell<bool>,
) {
    while collecting.get() {
        if !budget.allows(RESERVE_FETCHES + 4, RESERVE_OPS + 8) {
            return;
        }
        // About one fetch (and a quarter of a limiter call) per purge batch, one service
        // operation per KV key: KV work runs here too, so the purges it holds back can follow.
        let batches = (budget.remaining_fetches() - RESERVE_FETCHES) * 3 / 4;
        let kv = budget.remaining_ops().saturating_sub(RESERVE_OPS);
        let limit = (batches * ctx.cfg.purge_batch_for(false) + kv).clamp(1, 3000) as u32;
        match drain_round(ctx, budget, RoundBudget::Slice, job, api_key, limit, true).await {
            Ok(r) if !r.progress.current => return,
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
                return;
            }
        }
    }
}

/// Environments for the `on_failure` purge: those the job's deliveries named, or, when one
/// named none, every environment with a rule for the stack plus those the job had resolved
/// (over-purging is safe, staleness is not).
pub fn failure_environments(
    cfg: &Config,
    api_key: Option<&str>,
    record: &JobRecord,
    stack: &[PlanEnvironment],
) -> Vec<PlanEnvironment> {
    let any = record.scopes.is_empty() || record.scopes.contains_key(ANY_SCOPE);
    let mut names: Vec<String> = if any {
        let mut v: Vec<String> = cfg
            .rules
            .environment_names()
            .into_iter()
            .map(str::to_string)
            .collect();
        v.extend(record.environments.iter().cloned());
        v
    } else {
        record.scopes.keys().cloned().collect()
    };
    names.sort();
    names.dedup();
    names
        .into_iter()
        .filter(|n| cfg.rules.rule_for_stack(api_key, n).is_some())
        .map(|n| {
            stack
                .iter()
                .find(|e| e.name == n)
                .cloned()
                .unwrap_or(PlanEnvironment {
                    name: n,
                    uid: String::new(),
                    base_urls: Default::default(),
                })
        })
        .collect()
}

/// A job out of tries (or with a permanent error): record its failure with its `on_failure`
/// purge in the ledger, then run that purge (continuing in the jobs queue when it does not fit
/// this invocation); the job is `failed` once the purge has run. Returns whether the message
/// may be acknowledged: only once the failure is recorded (or there is nothing to record).
async fn dead_letter(cfg: &Config, env: &Env, job: &JobMessage) -> bool {
    let Ok(ledger) = LedgerClient::new(env) else {
        return false;
    };
    let ctx = Run::new(cfg, env, ledger);
    let started = now_ms();
    ctx.budget.spend(Sub::Durable, 1);
    let record = match ctx.ledger.get(&job.job_id).await {
        Ok(Some(r)) => r,
        Ok(None) => {
            log(
                "dead_letter_without_record",
                serde_json::json!({"job_id": job.job_id}),
            );
            return true;
        }
        Err(_) => return false,
    };
    if record.attempts != job.attempt || record.status.is_final() || record.on_failure_running {
        return true;
    }
    let error = job
        .last_error
        .clone()
        .unwrap_or_else(|| "the queue's retries were exhausted".into());
    let api_key = stack_key(cfg, job).or_else(|| record.api_key.clone());
    let stack = match api_key
        .as_deref()
        .map(|k| Client::new(cfg, env, &ctx.budget, k))
    {
        Some(Ok(c)) => c.environments().await.unwrap_or_default(),
        _ => Vec::new(),
    };
    let envs = failure_environments(cfg, api_key.as_deref(), &record, &stack);
    let p = plan_failure(
        &PlanJob {
            job_id: job.job_id.clone(),
            api_key: api_key.clone().unwrap_or_default(),
            branch: cfg.branch.clone(),
        },
        &envs,
        &cfg.rules,
    );
    let actions = actions_from_plan(&p);
    let n_actions = actions.len();
    let marked: Result<Progress, StepError> = ctx
        .counted(
            &ctx.budget,
            ctx.ledger.fail(FailOp {
                job_id: job.job_id.clone(),
                attempt: job.attempt,
                error: error.clone(),
                actions,
                now: now_iso(),
                now_ms: now_ms(),
            }),
        )
        .await;
    let Ok(progress) = marked else {
        log_invocation(&ctx, job, started);
        return false;
    };
    let env_names: Vec<&str> = envs.iter().map(|e| e.name.as_str()).collect();
    log(
        "failed",
        serde_json::json!({"job_id": job.job_id, "attempt": job.attempt, "error": error, "on_failure_environments": env_names, "on_failure_actions": n_actions, "status": JobStatus::Failed}),
    );
    if progress.current && progress.pending > 0 {
        let drain_job = job.at(Step::Drain);
        let next = match drain(&ctx, &drain_job).await {
            Ok(Next::Queue(s, delay)) => Some((s, delay)),
            Ok(_) => None,
            Err(e) => {
                log(
                    "on_failure_interrupted",
                    serde_json::json!({"job_id": job.job_id, "error": e.message()}),
                );
                Some((
                    Step::Drain,
                    retry_delay_seconds(1, cfg.retry.base_seconds, e.retry_after_s()),
                ))
            }
        };
        if let Some((s, delay)) = next {
            // If this send fails, the ledger's alarm drives the purge on.
            let _sent = ctx.enqueue(&drain_job.at(s), delay).await;
        }
    }
    log_invocation(&ctx, job, started);
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Action;

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

    fn cfg(rules: Value) -> Config {
        let raw: crate::config::RawConfig = [
            ("WEBHOOK_VERIFY".to_string(), serde_json::json!("hmac")),
            (
                "CONTENTSTACK_HMAC_SECRETS".to_string(),
                serde_json::json!("s"),
            ),
            (
                "CONTENTSTACK_MANAGEMENT_TOKENS".to_string(),
                serde_json::json!({"k1": "t1", "k2": "t2"}),
            ),
            ("ENVIRONMENTS".to_string(), rules),
        ]
        .into_iter()
        .collect();
        Config::parse(&raw).unwrap()
    }

    fn record(scopes: &[&str], resolved: &[&str]) -> JobRecord {
        let mut r = JobRecord::accepted(
            "j".into(),
            Action::Publish,
            "2026-01-01T00:00:00Z".into(),
            None,
            vec![],
            Some("k1".into()),
            serde_json::json!({}),
        );
        r.scopes.clear();
        for s in scopes {
            r.scopes.insert(s.to_string(), Default::default());
        }
        r.environments = resolved.iter().map(|s| s.to_string()).collect();
        r
    }

    #[test]
    fn on_failure_reaches_the_named_environments_or_every_ruled_one() {
        let c = cfg(serde_json::json!({
            "production": {"on_failure": ["everything"]},
            "staging": {"on_failure": ["everything"]},
            "k2/preview": {"on_failure": ["everything"]},
        }));
        let names = |v: Vec<PlanEnvironment>| v.into_iter().map(|e| e.name).collect::<Vec<_>>();
        assert_eq!(
            names(failure_environments(
                &c,
                Some("k1"),
                &record(&["staging"], &[]),
                &[]
            )),
            vec!["staging"]
        );
        assert_eq!(
            names(failure_environments(
                &c,
                Some("k1"),
                &record(&["*"], &[]),
                &[]
            )),
            vec!["production", "staging"],
            "another stack's scoped rule is not this stack's"
        );
        assert_eq!(
            names(failure_environments(
                &c,
                Some("k2"),
                &record(&["*"], &[]),
                &[]
            )),
            vec!["preview", "production", "staging"]
        );
    }

    #[test]
    fn the_stack_is_the_webhooks_or_the_only_one_configured() {
        let c = cfg(serde_json::json!({}));
        let mut m = JobMessage::start("j", Action::Publish, None, 1);
        assert_eq!(stack_key(&c, &m), None, "two stacks: the webhook must say");
        m.api_key = Some("k2".into());
        assert_eq!(stack_key(&c, &m).as_deref(), Some("k2"));
    }
}
