//! Runs pipeline steps for one queue message, and the dead-letter handling. Thin glue: the
//! decisions (paging, planning, batching, status) are made by the pure modules.

use std::cell::Cell;
use std::time::Duration;

use futures_util::future::join;
use serde_json::Value;
use worker::{Delay, Env, Message, MessageBatch, MessageExt};

use super::{enqueue, send_to, JobMessage, Step, DEAD_LETTER_QUEUE};
use crate::config::Config;
use crate::contentstack::{client::Client, has_more, resolve_environments, PAGE_SIZE};
use crate::ledger::durable::{LedgerClient, LedgerOp, Progress};
use crate::ledger::{JobRecord, JobStatus, PurgedCounts};
use crate::net::NetError;
use crate::pace::queue_delay_seconds;
use crate::plan::{plan, plan_failure, PlanEnvironment, PlanJob};
use crate::purge::{actions_from_plan, exec, hold_back_partial_batch, Outcome};
use crate::runtime::{self, log, now_iso, now_ms, Budget, Sub};

/// How long claimed actions stay reserved for one invocation.
const LEASE_MS: i64 = 5 * 60 * 1000;
/// Pause between purge rounds that run alongside the page reads.
const OVERLAP_ROUND_MS: u64 = 400;
/// Subrequests kept in reserve for the ledger calls that close a step.
const RESERVE: usize = 12;

/// Why a step stopped early.
#[derive(Debug)]
pub struct StepError {
    pub message: String,
    /// Worth trying again later (429, 5xx, timeouts, budget); otherwise straight to the DLQ.
    pub retryable: bool,
}

impl From<NetError> for StepError {
    fn from(e: NetError) -> Self {
        let retryable = !matches!(e, NetError::Rejected { status, .. } if status != 408);
        StepError {
            message: e.to_string(),
            retryable,
        }
    }
}

impl From<worker::Error> for StepError {
    fn from(e: worker::Error) -> Self {
        StepError {
            message: format!("runtime: {e}"),
            retryable: true,
        }
    }
}

fn fatal(message: String) -> StepError {
    StepError {
        message,
        retryable: false,
    }
}

struct Ctx<'a> {
    cfg: &'a Config,
    env: &'a Env,
    budget: Budget,
    ledger: LedgerClient,
}

impl Ctx<'_> {
    async fn call<T: serde::de::DeserializeOwned>(&self, op: &LedgerOp) -> Result<T, StepError> {
        self.call_with(&self.budget, op).await
    }

    /// A ledger call counted against `budget` (the invocation's, or a slice of it).
    async fn call_with<T: serde::de::DeserializeOwned>(
        &self,
        budget: &Budget,
        op: &LedgerOp,
    ) -> Result<T, StepError> {
        budget.spend(Sub::Durable, 1);
        Ok(self.ledger.call(op).await?)
    }
}

/// What a step asks for next.
enum Next {
    Inline(Step),
    Queue(Step, u32),
    Stop,
}

/// Entry point for the jobs queue.
pub async fn handle_batch(batch: MessageBatch<Value>, env: &Env) -> worker::Result<()> {
    let cfg_rc = runtime::config(env);
    let Ok(cfg) = cfg_rc.as_ref() else {
        batch.retry_all();
        return Ok(());
    };
    let dead = batch.queue().contains("dead-letter");
    for msg in batch.messages()? {
        let parsed = super::decode(msg.body());
        let Ok(job) = parsed else {
            log("bad_message", serde_json::json!({"queue": batch.queue()}));
            msg.ack();
            continue;
        };
        if dead {
            dead_letter(cfg, env, &job).await;
            msg.ack();
        } else {
            run_message(cfg, env, &msg, job).await;
        }
    }
    Ok(())
}

async fn run_message(cfg: &Config, env: &Env, msg: &Message<Value>, job: JobMessage) {
    let ledger = match LedgerClient::new(env) {
        Ok(l) => l,
        Err(_) => {
            msg.retry();
            return;
        }
    };
    let ctx = Ctx {
        cfg,
        env,
        budget: Budget::new(cfg.subrequest_budget),
        ledger,
    };
    let started = now_ms();
    let mut step = job.step.clone();
    let outcome = loop {
        match run_step(&ctx, &job, step).await {
            Ok(Next::Inline(s)) => step = s,
            Ok(Next::Queue(s, delay)) => {
                log(
                    "continued",
                    serde_json::json!({"job_id": job.job_id, "subrequests": ctx.budget.used()}),
                );
                break enqueue(env, &job.at(s), delay)
                    .await
                    .map_err(StepError::from);
            }
            Ok(Next::Stop) => break Ok(()),
            Err(e) => break Err(e),
        }
    };
    let mut summary = ctx.budget.summary();
    summary["job_id"] = serde_json::json!(job.job_id);
    summary["step"] = serde_json::json!(step_name(&job.step));
    summary["started_ms"] = serde_json::json!(started);
    summary["duration_ms"] = serde_json::json!(now_ms() - started);
    log("invocation", summary);
    let Err(e) = outcome else {
        msg.ack();
        return;
    };
    let tries = job.tries + 1;
    log(
        "step_failed",
        serde_json::json!({"job_id": job.job_id, "tries": tries, "retryable": e.retryable, "error": e.message, "subrequests": ctx.budget.used()}),
    );
    let mut again = job.clone();
    again.tries = tries;
    again.last_error = Some(e.message.clone());
    let sent = if e.retryable && tries < cfg.retry.max_attempts {
        let delay = queue_delay_seconds(tries, cfg.retry.base_seconds);
        enqueue(env, &again, delay).await
    } else {
        send_to(env, DEAD_LETTER_QUEUE, &again, 0).await
    };
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
    }
}

fn stale(p: &Progress) -> bool {
    !p.current
}

async fn run_step(ctx: &Ctx<'_>, job: &JobMessage, step: Step) -> Result<Next, StepError> {
    match step {
        Step::Start => start(ctx, job).await,
        Step::Collect {
            skip,
            api_key,
            branch,
            environments,
        } => collect(ctx, job, skip, api_key, branch, environments).await,
        Step::Drain => drain(ctx, job).await,
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
    pub items: crate::ledger::ItemCounts,
    /// Every resolved environment name (recorded).
    pub names: Vec<String>,
    /// The environments that have a purge rule (planned).
    pub with_rules: Vec<PlanEnvironment>,
    pub branch: Option<String>,
}

/// Job status + environments → the environments this job works on (SPEC §4, §6).
pub async fn resolve_job(
    cfg: &Config,
    client: &Client<'_>,
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
            return Err(fatal(format!(
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
            .filter(|e| cfg.rules.rule_for(&e.name).is_some())
            .collect(),
        branch: status
            .body
            .branch
            .filter(|b| !b.is_empty())
            .or_else(|| cfg.branch.clone()),
    })
}

/// Reads one page of items, resolves their URLs where a rule asks for it, and plans them.
/// Returns the page's plan and whether more pages follow.
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
        .filter(|e| cfg.rules.rule_for(&e.name).is_some_and(|r| r.resolve_urls))
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

/// Subrequests one page may need (page, limiter, ledger; plus one lookup per item).
pub fn page_cost(cfg: &Config, environments: &[PlanEnvironment]) -> usize {
    let resolve = environments
        .iter()
        .any(|e| cfg.rules.rule_for(&e.name).is_some_and(|r| r.resolve_urls));
    3 + if resolve { 2 * PAGE_SIZE as usize } else { 0 }
}

async fn start(ctx: &Ctx<'_>, job: &JobMessage) -> Result<Next, StepError> {
    ctx.budget.spend(Sub::Durable, 1);
    let Some(record) = ctx.ledger.get(&job.job_id).await? else {
        log("record_missing", serde_json::json!({"job_id": job.job_id}));
        return Ok(Next::Stop);
    };
    if record.attempts != job.attempt || record.status.is_final() {
        return Ok(Next::Stop);
    }
    let api_key = stack_key(ctx.cfg, job).ok_or_else(|| {
        fatal("the webhook named no api_key and several stacks are configured".into())
    })?;
    let client = Client::new(ctx.cfg, ctx.env, &ctx.budget, &api_key).map_err(StepError::from)?;
    let r = resolve_job(
        ctx.cfg,
        &client,
        &job.job_id,
        record.channel_environment.as_deref(),
        &record.hinted_environments,
    )
    .await?;
    let progress: Progress = ctx
        .call(&LedgerOp::Start {
            job_id: job.job_id.clone(),
            attempt: job.attempt,
            now: now_iso(),
            environments: r.names.clone(),
            items: r.items,
            subrequests: ctx.budget.used() as u64,
        })
        .await?;
    if stale(&progress) {
        return Ok(Next::Stop);
    }
    log(
        "started",
        serde_json::json!({"job_id": job.job_id, "attempt": job.attempt, "environments": r.names, "items": r.items}),
    );
    Ok(Next::Inline(Step::Collect {
        skip: 0,
        api_key,
        branch: r.branch,
        environments: r.with_rules,
    }))
}

async fn collect(
    ctx: &Ctx<'_>,
    job: &JobMessage,
    skip: u64,
    api_key: String,
    branch: Option<String>,
    environments: Vec<PlanEnvironment>,
) -> Result<Next, StepError> {
    let collecting = Cell::new(true);
    // Half of what is left beyond the next page purges alongside the page reads; the page
    // reads keep the rest, so collection always makes progress.
    let next_page = page_cost(ctx.cfg, &environments) + RESERVE;
    let slice = ctx
        .budget
        .split(ctx.budget.remaining().saturating_sub(next_page) / 2);
    let pages = async {
        let r = collect_pages(ctx, job, skip, api_key, branch, environments).await;
        collecting.set(false);
        r
    };
    let (next, ()) = join(pages, drain_alongside(ctx, &slice, job, &collecting)).await;
    ctx.budget.absorb(slice);
    next
}

/// Reads item pages from `skip` on, plans each and stores its actions.
async fn collect_pages(
    ctx: &Ctx<'_>,
    job: &JobMessage,
    mut skip: u64,
    api_key: String,
    branch: Option<String>,
    environments: Vec<PlanEnvironment>,
) -> Result<Next, StepError> {
    let cost = page_cost(ctx.cfg, &environments);
    let client = Client::new(ctx.cfg, ctx.env, &ctx.budget, &api_key).map_err(StepError::from)?;
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
            if !ctx.budget.allows(cost + RESERVE) {
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
        let progress: Progress = ctx
            .call(&LedgerOp::AddActions {
                job_id: job.job_id.clone(),
                attempt: job.attempt,
                actions: actions_from_plan(&p),
                skipped: p.skipped,
                collected: !more_pages,
                subrequests: ctx.budget.used() as u64 + 1,
            })
            .await?;
        if stale(&progress) {
            return Ok(Next::Stop);
        }
        if !more_pages {
            log(
                "items_fetched",
                serde_json::json!({"job_id": job.job_id, "last_skip": skip, "items_this_invocation": fetched, "pending_actions": progress.pending}),
            );
            return Ok(Next::Inline(Step::Drain));
        }
        skip += PAGE_SIZE;
    }
}

/// What one claim → execute → report round did.
struct Round {
    progress: Progress,
    /// Actions executed (held-back ones not counted).
    claimed: usize,
}

/// Claims up to `limit` pending actions, executes them and reports the results. `more_coming`
/// says that more actions may still be added (collection is running), so a partial purge batch
/// at the end of the claim waits for them.
async fn drain_round(
    ctx: &Ctx<'_>,
    budget: &Budget,
    job: &JobMessage,
    limit: u32,
    more_coming: bool,
) -> Result<Round, StepError> {
    let own = std::ptr::eq(budget, &ctx.budget);
    let invocation_total = || ctx.budget.used() + if own { 0 } else { budget.used() };
    let claimed: Vec<crate::purge::ClaimedAction> = ctx
        .call_with(
            budget,
            &LedgerOp::Claim {
                job_id: job.job_id.clone(),
                attempt: job.attempt,
                limit,
                now_ms: now_ms(),
                lease_ms: LEASE_MS,
                purge_calls_only: more_coming,
            },
        )
        .await?;
    let truncated = claimed.len() == limit as usize;
    let (claimed, held) =
        hold_back_partial_batch(claimed, truncated, more_coming, ctx.cfg.purge_batch_size);
    let (mut out, err) = if claimed.is_empty() {
        (exec::ExecOutcome::default(), None)
    } else {
        exec::execute(ctx.cfg, ctx.env, budget, &claimed).await
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
        .call_with(
            budget,
            &LedgerOp::Report {
                job_id: job.job_id.clone(),
                attempt: job.attempt,
                results: out.results,
                api_calls: out.api_calls,
                errors: out.errors,
                subrequests: invocation_total() as u64 + 1,
                now: now_iso(),
                now_ms: now_ms(),
            },
        )
        .await?;
    if !stale(&progress) && !progress.status.is_final() {
        if let Some(e) = err {
            return Err(e.into());
        }
        if let Some(e) = stuck_error.filter(|_| settled == 0) {
            return Err(StepError {
                message: e,
                retryable: true,
            });
        }
    }
    Ok(Round {
        progress,
        claimed: claimed.len(),
    })
}

/// The claim size that fits the rest of the budget.
fn claim_limit(ctx: &Ctx<'_>) -> u32 {
    (ctx.budget.remaining().saturating_sub(RESERVE)).min(1000) as u32
}

async fn drain(ctx: &Ctx<'_>, job: &JobMessage) -> Result<Next, StepError> {
    loop {
        if !ctx.budget.allows(RESERVE + 8) {
            return Ok(Next::Queue(Step::Drain, 0));
        }
        let round = drain_round(ctx, &ctx.budget, job, claim_limit(ctx), false).await?;
        if stale(&round.progress) || round.progress.status.is_final() {
            if round.progress.status.is_final() {
                log(
                    "purged",
                    serde_json::json!({"job_id": job.job_id, "attempt": job.attempt, "status": round.progress.status, "subrequests": ctx.budget.used()}),
                );
            }
            return Ok(Next::Stop);
        }
        if round.claimed == 0 {
            // Everything left is leased by another invocation: look again later.
            return Ok(Next::Queue(Step::Drain, 30));
        }
    }
}

/// Runs purge rounds while `collecting` is set, so purging overlaps the rate-limited page
/// reads, within its own slice of the budget. Errors end it quietly: the drain step that
/// follows collection retries them.
async fn drain_alongside(
    ctx: &Ctx<'_>,
    budget: &Budget,
    job: &JobMessage,
    collecting: &Cell<bool>,
) {
    while collecting.get() {
        if !budget.allows(RESERVE + 40) {
            return;
        }
        // Purge actions only: about one subrequest (and a quarter of a limiter call) per batch.
        let batches = (budget.remaining() - RESERVE) * 3 / 4;
        let limit = (batches * ctx.cfg.purge_batch_size).min(3000) as u32;
        match drain_round(ctx, budget, job, limit, true).await {
            Ok(r) if stale(&r.progress) => return,
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
                    serde_json::json!({"job_id": job.job_id, "error": e.message}),
                );
                return;
            }
        }
    }
}

/// Environments for the `on_failure` purge: the channel's, else every environment named in
/// `ENVIRONMENTS` plus those the job had resolved (over-purging is safe, staleness is not).
fn failure_environments(
    cfg: &Config,
    record: &JobRecord,
    stack: &[PlanEnvironment],
) -> Vec<PlanEnvironment> {
    let mut names: Vec<String> = match &record.channel_environment {
        Some(n) => vec![n.clone()],
        None => {
            let mut v: Vec<String> = cfg
                .rules
                .names()
                .into_iter()
                .filter(|n| *n != "*")
                .map(str::to_string)
                .collect();
            v.extend(record.environments.iter().cloned());
            v
        }
    };
    names.sort();
    names.dedup();
    names
        .into_iter()
        .filter(|n| cfg.rules.rule_for(n).is_some())
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

/// A job out of tries: run the coarse `on_failure` purge and mark it `failed`.
async fn dead_letter(cfg: &Config, env: &Env, job: &JobMessage) {
    let Ok(ledger) = LedgerClient::new(env) else {
        return;
    };
    let budget = Budget::new(cfg.subrequest_budget);
    let record = match ledger.get(&job.job_id).await {
        Ok(Some(r)) => r,
        _ => {
            log(
                "dead_letter_without_record",
                serde_json::json!({"job_id": job.job_id}),
            );
            return;
        }
    };
    if record.attempts != job.attempt || record.status.is_final() {
        return;
    }
    let error = job
        .last_error
        .clone()
        .unwrap_or_else(|| "the queue's retries were exhausted".into());
    let api_key = stack_key(cfg, job).unwrap_or_default();
    let stack = match Client::new(cfg, env, &budget, &api_key) {
        Ok(c) => c.environments().await.unwrap_or_default(),
        Err(_) => Vec::new(),
    };
    let envs = failure_environments(cfg, &record, &stack);
    let p = plan_failure(
        &PlanJob {
            job_id: job.job_id.clone(),
            api_key,
            branch: cfg.branch.clone(),
        },
        &envs,
        &cfg.rules,
    );
    let actions: Vec<crate::purge::ClaimedAction> = actions_from_plan(&p)
        .into_iter()
        .enumerate()
        .map(|(i, a)| crate::purge::ClaimedAction {
            id: i as i64,
            env: a.env,
            kind: a.kind,
            target: a.target,
            value: a.value,
            cursor: None,
        })
        .collect();
    let (out, err) = exec::execute(cfg, env, &budget, &actions).await;
    let mut purged = PurgedCounts::default();
    for r in &out.results {
        // Ids are the actions' positions (assigned above).
        if let Some(a) = usize::try_from(r.id).ok().and_then(|i| actions.get(i)) {
            a.kind.count_result(&mut purged, r.outcome, r.swept);
        }
    }
    purged.api_calls = out.api_calls.values().sum();
    let mut errors = out.errors;
    if let Some(e) = err {
        errors.push(format!("on_failure purge: {e}"));
    }
    let _ = ledger
        .call::<Value>(&LedgerOp::Note {
            job_id: job.job_id.clone(),
            attempt: job.attempt,
            errors,
            purged,
            subrequests: budget.used() as u64,
        })
        .await;
    let failed = ledger
        .call::<Value>(&LedgerOp::Fail {
            job_id: job.job_id.clone(),
            attempt: job.attempt,
            error: error.clone(),
            now: now_iso(),
            now_ms: now_ms(),
        })
        .await;
    let env_names: Vec<&str> = envs.iter().map(|e| e.name.as_str()).collect();
    log(
        "failed",
        serde_json::json!({"job_id": job.job_id, "attempt": job.attempt, "error": error, "on_failure_environments": env_names, "on_failure_actions": actions.len(), "recorded": failed.is_ok(), "status": JobStatus::Failed}),
    );
}
