//! The dry run (`POST /api/plan`): the run's own steps over a throwaway job object and effects
//! that record instead of purging ([`crate::ports`]), so the plan it answers is the run's by
//! construction: the same pages, windows and purge groups, the same reference look-ups, the
//! same claims in whole calls, and so the same purge calls (docs/ARCHITECTURE.md, "The dry
//! run"). It runs within one invocation's budgets and stops where the run's first pass ends.
//!
//! Choices where the contract is silent:
//! - The throwaway job lives in a job object of its own (`dry-run:<job id>:<random>`), never
//!   listed, deleted before the answer (or by its alarm when the request dies first). It is
//!   the store's own code rather than a copy in memory, so the two cannot drift apart.
//! - The steps' log lines are not written for a dry run (they would read as the job's).
//! - Where the run would hand on to a new invocation (the budgets are spent), the dry run
//!   stops and answers `truncated`.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;

use serde_json::Value;
use worker::Env;

use super::run::run_step;
use super::step::{Next, Run, StepError};
use crate::config::Config;
use crate::event::{scope_of, Action};
use crate::ledger::client::JobClient;
use crate::ledger::ops::AcceptOp;
use crate::ledger::JobRecord;
use crate::net::NetError;
use crate::plan::Plan;
use crate::ports::{Effects, Fut};
use crate::probe::{probeable, spread};
use crate::purge::{
    actions_from_plan, purge_batches, ActionKind, BatchSize, ClaimedAction, ExecOutcome, Outcome,
};
use crate::queue::{JobMessage, Step};

/// Why a dry run could not be made.
#[derive(Debug)]
pub enum DryRunError {
    /// The stack cannot be read (no management token for it): the request is at fault.
    Stack(String),
    /// Contentstack could not answer.
    Failed(StepError),
}

impl From<StepError> for DryRunError {
    fn from(e: StepError) -> Self {
        DryRunError::Failed(e)
    }
}

/// The plan for a job of stack `api_key`, limited to `channel_env` when a channel names one,
/// as the admin API answers it.
pub async fn dry_run(
    cfg: &Config,
    env: &Env,
    job_id: &str,
    action: Action,
    api_key: &str,
    channel_env: Option<&str>,
    hinted: &[String],
) -> Result<Value, DryRunError> {
    if cfg
        .contentstack
        .management_tokens
        .for_stack(api_key)
        .is_none()
    {
        return Err(DryRunError::Stack(format!(
            "no management token configured for stack {api_key} (CONTENTSTACK_MANAGEMENT_TOKEN or CONTENTSTACK_MANAGEMENT_TOKENS)"
        )));
    }
    let name = format!(
        "dry-run:{job_id}:{:x}",
        (js_sys::Math::random() * 9_007_199_254_740_992.0) as u64
    );
    let store = JobClient::new(env, &name).map_err(|e| DryRunError::Failed(e.into()))?;
    let record = JobRecord::accepted(
        job_id.to_string(),
        action,
        crate::runtime::now_iso(),
        channel_env.map(str::to_string),
        hinted.to_vec(),
        Some(api_key.to_string()),
        Value::Null,
    );
    let accepted = store
        .accept(AcceptOp {
            key: name.clone(),
            record: Box::new(record),
            scratch: true,
        })
        .await;
    let recorder = Recorder::new(cfg);
    let answer = match accepted {
        Ok(_) => {
            run(
                cfg,
                env,
                store,
                &recorder,
                job_id,
                action,
                api_key,
                channel_env,
            )
            .await
        }
        Err(e) => Err(DryRunError::Failed(e.into())),
    };
    if let Ok(discard) = JobClient::new(env, &name) {
        // Best effort: the object's alarm deletes it otherwise.
        let _ = discard.discard().await;
    }
    answer
}

/// Runs the steps from `start` to the end of the first pass, then answers from what they did.
#[allow(clippy::too_many_arguments)]
async fn run(
    cfg: &Config,
    env: &Env,
    store: JobClient,
    recorder: &Recorder,
    job_id: &str,
    action: Action,
    api_key: &str,
    channel_env: Option<&str>,
) -> Result<Value, DryRunError> {
    let mut job = JobMessage::start(job_id, action, Some(api_key.to_string()), 1);
    job.scope = scope_of(channel_env).to_string();
    // The whole budgets and every page: the answer covers the job as far as one request can.
    let share = (cfg.pacing.subrequest_budget, cfg.pacing.service_ops_budget);
    let ctx = Run::new(cfg, env, store, share, recorder).reading_every_page();
    let mut step = Step::Start;
    let mut truncated = false;
    loop {
        match run_step(&ctx, &job, step).await? {
            // The first pass is over: what comes next is the probe, the second pass or nothing.
            Next::Inline(Step::Verify | Step::Warm)
            | Next::Queue(Step::SecondPass, _)
            | Next::Stop => break,
            Next::Inline(next) => step = next,
            // The run would go on in a new invocation.
            Next::Queue(_, _) => {
                truncated = true;
                break;
            }
        }
    }
    let record = ctx
        .ledger
        .get(job_id)
        .await
        .map_err(|e| DryRunError::Failed(e.into()))?
        .ok_or_else(|| {
            DryRunError::Failed(super::step::permanent("the dry run's job is gone".into()))
        })?;
    Ok(recorder.answer(cfg, &record, truncated))
}

/// The dry run's effects: every action succeeds at once, purge calls are counted as the run
/// sends them (`purge_batches` of each claim), and each plan is kept.
struct Recorder {
    batch: BatchSize,
    plan: RefCell<Plan>,
    on_failure: RefCell<Vec<String>>,
    calls: Cell<usize>,
    /// URLs purged through the Cloudflare API, per environment, in the order sent.
    files: RefCell<BTreeMap<String, Vec<String>>>,
    /// URLs purged by URL, per environment, in the order they were planned (the warm order:
    /// item pages in order, then referrers).
    warm: RefCell<BTreeMap<String, Vec<String>>>,
}

impl Recorder {
    fn new(cfg: &Config) -> Recorder {
        Recorder {
            batch: BatchSize::of(cfg),
            plan: RefCell::new(Plan::default()),
            on_failure: RefCell::new(Vec::new()),
            calls: Cell::new(0),
            files: RefCell::new(BTreeMap::new()),
            warm: RefCell::new(BTreeMap::new()),
        }
    }

    /// The answer of `POST /api/plan` (docs/CONTRACT.md, "Dry run").
    fn answer(&self, cfg: &Config, record: &JobRecord, truncated: bool) -> Value {
        let total = self.plan.borrow();
        // The second pass repeats the purge calls of environments that change KV and purge,
        // each value once.
        let repurged: Vec<&String> = if cfg.timing.repurge_delay_seconds > 0 {
            total
                .environments
                .iter()
                .filter(|(_, e)| e.wants_second_pass())
                .map(|(name, _)| name)
                .collect()
        } else {
            Vec::new()
        };
        let second_pass_calls: usize = repurged
            .iter()
            .filter_map(|n| total.environments.get(*n))
            .map(|e| e.cloudflare_calls(self.batch.files, self.batch.other))
            .sum();
        let files = self.files.borrow();
        let verification: BTreeMap<&String, Value> =
            crate::sorted::map_of(record.verify_sample.iter().filter(|(_, n)| **n > 0).map(
                |(env, n)| {
                    let urls: Vec<&str> = files
                        .get(env)
                        .map(|f| {
                            f.iter()
                                .map(String::as_str)
                                .filter(|u| probeable(u))
                                .collect()
                        })
                        .unwrap_or_default();
                    let urls = spread(&urls, *n as usize);
                    (env, serde_json::json!({"verify_sample": n, "urls": urls}))
                },
            ));
        let references = match &record.references {
            Some(r) => serde_json::json!({
                "lookups": r.lookups,
                "referrers": r.referrers,
                "truncated": r.truncated,
                "by_environment": r.by_environment,
                "pulled_in": r.pulled_in,
                "on_failure": *self.on_failure.borrow(),
            }),
            None => Value::Null,
        };
        let mut plan = serde_json::json!(*total);
        // Per environment that warms: the URLs it would request, in warm order.
        let warm = self.warm.borrow();
        for (env, w) in &record.warm {
            let urls: Vec<&String> = warm
                .get(env)
                .map(|l| l.iter().take(w.limit as usize).collect())
                .unwrap_or_default();
            if let Some(e) = plan["environments"].get_mut(env.as_str()) {
                e["warm"] = serde_json::json!(urls);
            }
        }
        serde_json::json!({
            "job_id": record.job_id,
            "verification": if verification.is_empty() { Value::Null } else { serde_json::json!(verification) },
            "second_pass": {
                "delay_seconds": cfg.timing.repurge_delay_seconds,
                "environments": repurged,
                "purge_calls": second_pass_calls,
            },
            "environments": record.environments,
            "items": record.items,
            "plan": plan,
            "actions": actions_from_plan(&total).len(),
            "purge_calls": self.calls.get(),
            "truncated": truncated,
            "references": references,
        })
    }
}

impl Effects for Recorder {
    fn execute<'a>(
        &'a self,
        _budget: &'a crate::budget::Budget,
        actions: &'a [ClaimedAction],
    ) -> Fut<'a, (ExecOutcome, Option<NetError>)> {
        let mut out = ExecOutcome::default();
        out.settle(actions, Outcome::Done, None);
        let purged: Vec<ClaimedAction> = actions
            .iter()
            .filter(|a| a.kind.is_cloudflare())
            .cloned()
            .collect();
        self.calls
            .set(self.calls.get() + purge_batches(&purged, self.batch).len());
        let mut files = self.files.borrow_mut();
        for a in actions.iter().filter(|a| a.kind == ActionKind::File) {
            files
                .entry(a.env.clone())
                .or_default()
                .push(a.value.clone());
        }
        Box::pin(async move { (out, None) })
    }

    fn planned(&self, plan: &Plan, on_failure_of: &[String]) {
        let mut warm = self.warm.borrow_mut();
        for (env, p) in &plan.environments {
            let list = warm.entry(env.clone()).or_default();
            for url in &p.cache_urls {
                if !list.contains(url) {
                    list.push(url.clone());
                }
            }
        }
        self.plan.borrow_mut().merge(plan.clone());
        let mut on_failure = self.on_failure.borrow_mut();
        for e in on_failure_of {
            if !on_failure.contains(e) {
                on_failure.push(e.clone());
            }
        }
    }

    fn log(&self, _stage: &str, _fields: Value) {}
}
