//! The dead-letter path: a job out of tries (or with a permanent error) records its failure
//! and its `on_failure` purge in the ledger, which is then drained like any other work.

use worker::Env;

use super::drain::drain;
use super::job_items::stack_key;
use super::step::{log_invocation, retry_delay_seconds, Next, Run, StepError};
use crate::budget::Spend;
use crate::config::Config;
use crate::contentstack::client::Client;
use crate::event::ANY_SCOPE;
use crate::ledger::client::JobClient;
use crate::ledger::ops::{FailOp, Progress};
use crate::ledger::{JobRecord, JobStatus};
use crate::plan::{plan_failure, Plan, PlanEnvironment, PlanJob};
use crate::purge::actions_from_plan;
use crate::queue::{JobMessage, Step};
use crate::runtime::{log, now_iso, now_ms};

/// A job out of tries (or with a permanent error): record its failure with its `on_failure`
/// purge in the ledger, then run that purge (continuing in the jobs queue when it does not fit
/// this invocation); the job is `failed` once the purge has run. Returns whether the message
/// may be acknowledged: only once the failure is recorded (or there is nothing to record).
pub(super) async fn dead_letter(
    cfg: &Config,
    env: &Env,
    job: &JobMessage,
    share: (usize, usize),
) -> bool {
    let Ok(ledger) = JobClient::new(env, &job.job_id) else {
        return false;
    };
    let live = super::effects::Live { cfg, env };
    let ctx = Run::new(cfg, env, ledger, share, &live);
    let started = now_ms();
    let record = match record_to_fail(&ctx, job).await {
        Ok(r) => r,
        Err(acknowledge) => return acknowledge,
    };
    let error = job
        .last_error
        .clone()
        .unwrap_or_else(|| "the queue's retries were exhausted".into());
    let (envs, p) = failure_plan(&ctx, job, &record).await;
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
        run_on_failure(&ctx, job).await;
    }
    log_invocation(&ctx, job, started);
    true
}

/// The job's record, when its attempt is the one to fail; otherwise whether the message may be
/// acknowledged (a record gone, or its attempt over or failing already: yes; the ledger
/// unavailable: no).
async fn record_to_fail(ctx: &Run<'_>, job: &JobMessage) -> Result<JobRecord, bool> {
    ctx.budget.spend(Spend::Durable, 1);
    let record = match ctx.ledger.get(&job.job_id).await {
        Ok(Some(r)) => r,
        Ok(None) => {
            log(
                "dead_letter_without_record",
                serde_json::json!({"job_id": job.job_id}),
            );
            return Err(true);
        }
        Err(_) => return Err(false),
    };
    if !record.open_for(job.attempt, false) {
        return Err(true);
    }
    Ok(record)
}

/// The `on_failure` purge: its environments and its plan.
async fn failure_plan(
    ctx: &Run<'_>,
    job: &JobMessage,
    record: &JobRecord,
) -> (Vec<PlanEnvironment>, Plan) {
    let (cfg, env) = (ctx.cfg, ctx.env);
    let api_key = stack_key(cfg, job).or_else(|| record.api_key.clone());
    let stack = match api_key
        .as_deref()
        .map(|k| Client::new(cfg, env, &ctx.budget, k))
    {
        Some(Ok(c)) => c.environments().await.unwrap_or_default(),
        _ => Vec::new(),
    };
    let envs = failure_environments(cfg, api_key.as_deref(), record, &stack);
    let p = plan_failure(
        &PlanJob {
            job_id: job.job_id.clone(),
            api_key: api_key.clone().unwrap_or_default(),
            branch: cfg.contentstack.branch.clone(),
        },
        &envs,
        &cfg.rules,
    );
    (envs, p)
}

/// Drains the recorded `on_failure` purge, and continues it in the jobs queue when it does not
/// fit this invocation (or was interrupted).
async fn run_on_failure(ctx: &Run<'_>, job: &JobMessage) {
    let drain_job = job.at(Step::Drain);
    let next = match drain(ctx, &drain_job).await {
        Ok(Next::Queue(s, delay)) => Some((s, delay)),
        Ok(_) => None,
        Err(e) => {
            log(
                "on_failure_interrupted",
                serde_json::json!({"job_id": job.job_id, "error": e.message()}),
            );
            let base = ctx.cfg.pacing.retry.base_seconds;
            Some((Step::Drain, retry_delay_seconds(1, base, e.retry_after_s())))
        }
    };
    if let Some((s, delay)) = next {
        // If this send fails, the ledger's alarm drives the purge on.
        if let Err(e) = ctx.enqueue(&drain_job.at(s), delay).await {
            log(
                "on_failure_not_continued",
                serde_json::json!({"job_id": job.job_id, "error": e.to_string()}),
            );
        }
    }
}

/// Environments for the `on_failure` purge: those the job's deliveries named, or, when one
/// named none, every environment with a rule for the stack plus those the job had resolved
/// (over-purging is safe, staleness is not).
fn failure_environments(
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
    crate::sorted::sort(&mut names);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Action;
    use serde_json::Value;

    fn cfg(rules: Value) -> Config {
        crate::config::for_tests(rules)
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
}
