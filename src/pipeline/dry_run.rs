//! The dry run: the purge plan a job would get, computed from Contentstack's answers and the
//! rules with the pipeline's own functions, with nothing purged and nothing recorded.

use serde_json::Value;
use worker::Env;

use super::resolve::{page_cost, plan_page, resolve_job};
use super::run::StepError;
use crate::budget::Budget;
use crate::config::Config;
use crate::contentstack::{client::Client, PAGE_SIZE};
use crate::plan::{Plan, PlanJob};
use crate::purge::actions_from_plan;

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
/// as the admin API answers it. Reads pages until one invocation's budgets run out
/// (`truncated` then).
pub async fn dry_run(
    cfg: &Config,
    env: &Env,
    job_id: &str,
    api_key: &str,
    channel_env: Option<&str>,
    hinted: &[String],
) -> Result<Value, DryRunError> {
    let budget = Budget::new(cfg.subrequest_budget, cfg.service_ops_budget);
    let client =
        Client::new(cfg, env, &budget, api_key).map_err(|e| DryRunError::Stack(e.to_string()))?;
    let resolved = resolve_job(cfg, &client, api_key, job_id, channel_env, hinted).await?;
    let client = client.with_branch(resolved.branch.clone());
    let (cost_f, cost_o) = page_cost(cfg, api_key, &resolved.with_rules);
    let pj = PlanJob {
        job_id: job_id.to_string(),
        api_key: api_key.to_string(),
        branch: resolved.branch.clone(),
    };
    let mut total = Plan::default();
    let mut skip = 0;
    let mut truncated = false;
    if !resolved.with_rules.is_empty() {
        loop {
            if !budget.allows(cost_f, cost_o) {
                truncated = true;
                break;
            }
            let (p, more, _) = plan_page(cfg, &client, &pj, skip, &resolved.with_rules).await?;
            total.merge(p);
            if !more {
                break;
            }
            skip += PAGE_SIZE;
        }
    }
    let actions = actions_from_plan(&total);
    let purge_calls: usize = total
        .environments
        .values()
        .map(|e| e.cloudflare_calls(cfg.purge_batch_for(false)))
        .sum();
    // The second pass repeats the purge calls of environments that change KV and purge.
    let repurged: Vec<&String> = if cfg.repurge_delay_seconds > 0 {
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
        .map(|e| e.cloudflare_calls(cfg.purge_batch_for(false)))
        .sum();
    Ok(serde_json::json!({
        "job_id": job_id,
        "second_pass": {
            "delay_seconds": cfg.repurge_delay_seconds,
            "environments": repurged,
            "purge_calls": second_pass_calls,
        },
        "environments": resolved.names,
        "items": resolved.items,
        "plan": total,
        "actions": actions.len(),
        "purge_calls": purge_calls,
        "truncated": truncated,
    }))
}
