//! The dry run: the purge plan a job would get, computed from Contentstack's answers and the
//! rules with the pipeline's own functions, with nothing purged and nothing recorded.

use serde_json::Value;
use worker::Env;

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use super::job_items::{read_page, referencing, resolve_job};
use super::probe::probe_samples;
use super::references::{look_up_round, FETCHES_PER_LOOKUP, LOOKUPS_PER_ROUND};
use super::step::StepError;
use super::windows::{plan_window, window_cost};
use crate::budget::Budget;
use crate::config::Config;
use crate::contentstack::{client::Client, PAGE_SIZE};
use crate::ledger::ops::{ClaimedLookup, NewLookup};
use crate::ledger::references::{PulledIn, ReferenceSummary};
use crate::plan::{plan_failure, Plan, PlanEnvironment, PlanJob};
use crate::probe::{probeable, spread};
use crate::purge::{actions_from_plan, group_end, ActionKind, BatchSize};

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
    let budget = Budget::new(cfg.pacing.subrequest_budget, cfg.pacing.service_ops_budget);
    let client =
        Client::new(cfg, env, &budget, api_key).map_err(|e| DryRunError::Stack(e.to_string()))?;
    let resolved = resolve_job(cfg, &client, api_key, job_id, channel_env, hinted).await?;
    let client = client.with_branch(resolved.branch.clone());
    let pj = PlanJob {
        job_id: job_id.to_string(),
        api_key: api_key.to_string(),
        branch: resolved.branch.clone(),
    };
    let mut total = Plan::default();
    let mut skip = 0;
    let mut truncated = false;
    let mut refs = DryReferences::default();
    // The run's purge calls, group by group (docs/ARCHITECTURE.md, "Purge groups"): each group
    // of pages, then what the reference look-ups add, purged in whole calls of its own.
    let batch = BatchSize::of(cfg);
    let calls_of = |p: &Plan| -> usize {
        p.environments
            .values()
            .map(|e| e.cloudflare_calls(batch.files, batch.other))
            .sum()
    };
    let mut purge_calls = 0;
    if !resolved.with_rules.is_empty() {
        let mut items = Vec::new();
        loop {
            let (cost_f, cost_o) = window_cost(cfg, api_key, &resolved.with_rules, items.len());
            // The last page read: no more pages, or no budget for one (`truncated`).
            let last = if budget.allows(cost_f, cost_o) {
                let page = read_page(cfg, &client, &pj, skip, &resolved.with_rules).await?;
                items.extend(page.items);
                refs.queue_items(page.lookups);
                !page.more
            } else {
                truncated = true;
                true
            };
            let next = skip + PAGE_SIZE;
            if last || next >= group_end(skip, PAGE_SIZE) {
                let group =
                    plan_window(cfg, &client, &pj, &mut items, &resolved.with_rules).await?;
                purge_calls += calls_of(&group);
                total.merge(group);
                items.clear();
            }
            if last {
                break;
            }
            skip = next;
        }
        let mut referrers = Plan::default();
        truncated |= refs
            .run(
                cfg,
                &budget,
                &client,
                &pj,
                &resolved.with_rules,
                &mut referrers,
            )
            .await?;
        purge_calls += calls_of(&referrers);
        total.merge(referrers);
    }
    let actions = actions_from_plan(&total);
    // The second pass repeats the purge calls of environments that change KV and purge.
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
        .map(|e| e.cloudflare_calls(batch.files, batch.other))
        .sum();
    // The URLs each environment's verification would probe after the purge.
    let samples = probe_samples(cfg, api_key, &resolved.with_rules);
    let verification: BTreeMap<&String, Value> =
        crate::sorted::map_of(samples.iter().filter(|(_, n)| **n > 0).map(|(env, n)| {
            let urls: Vec<&str> = actions
                .iter()
                .filter(|a| &a.env == env && a.kind == ActionKind::File && probeable(&a.value))
                .map(|a| a.value.as_str())
                .collect();
            let urls = spread(&urls, *n as usize);
            (env, serde_json::json!({"verify_sample": n, "urls": urls}))
        }));
    Ok(serde_json::json!({
        "job_id": job_id,
        "verification": if verification.is_empty() { Value::Null } else { serde_json::json!(verification) },
        "second_pass": {
            "delay_seconds": cfg.timing.repurge_delay_seconds,
            "environments": repurged,
            "purge_calls": second_pass_calls,
        },
        "environments": resolved.names,
        "items": resolved.items,
        "plan": total,
        "actions": actions.len(),
        "purge_calls": purge_calls,
        "truncated": truncated,
        "references": refs.answer(),
    }))
}

/// The reference look-ups of a dry run, in memory: breadth first, each subject once per
/// environment, within each environment's `max_lookups` and the invocation's budget.
#[derive(Default)]
struct DryReferences {
    queue: VecDeque<ClaimedLookup>,
    seen: HashSet<(String, String)>,
    summary: ReferenceSummary,
    any: bool,
}

impl DryReferences {
    fn push(&mut self, l: ClaimedLookup) {
        self.queue.push_back(ClaimedLookup {
            id: self.seen.len() as i64,
            ..l
        });
    }

    fn queue_items(&mut self, lookups: Vec<NewLookup>) {
        for l in lookups {
            self.any = true;
            if self.seen.insert((l.env.clone(), l.subject.key())) {
                self.push(ClaimedLookup {
                    id: 0,
                    env: l.env,
                    from: l.subject.clone(),
                    subject: l.subject,
                    depth: 0,
                });
            }
        }
    }

    /// Runs the look-ups; true when the budget ran out first. Truncated environments get
    /// their `on_failure` plan merged in, as the job would.
    async fn run(
        &mut self,
        cfg: &Config,
        budget: &Budget,
        client: &Client<'_>,
        job: &PlanJob,
        environments: &[PlanEnvironment],
        total: &mut Plan,
    ) -> Result<bool, DryRunError> {
        let limits: Vec<(PlanEnvironment, u32)> = referencing(cfg, &job.api_key, environments)
            .into_iter()
            .map(|(e, r)| (e, r.max_lookups))
            .collect();
        let mut out_of_budget = false;
        while !self.queue.is_empty() {
            let room = budget.remaining_fetches() / FETCHES_PER_LOOKUP;
            if room == 0 {
                out_of_budget = true;
                break;
            }
            let mut round = Vec::new();
            let mut in_round: HashMap<String, u64> = HashMap::new();
            while round.len() < room.min(LOOKUPS_PER_ROUND) {
                let Some(l) = self.queue.pop_front() else {
                    break;
                };
                let max = limits
                    .iter()
                    .find(|(e, _)| e.name == l.env)
                    .map_or(0, |x| x.1);
                let taken = in_round.entry(l.env.clone()).or_default();
                if self.summary.allowance(&l.env, max, *taken) == 0 {
                    self.summary.truncate(&l.env);
                    continue;
                }
                *taken += 1;
                round.push(l);
            }
            let (looked, _errors) = look_up_round(cfg, client, job, environments, &round).await?;
            for l in looked {
                let Some(asked) = round.iter().find(|r| r.id == l.id) else {
                    continue;
                };
                self.summary.looked_up(&asked.env);
                if l.too_many {
                    self.summary.truncate(&asked.env);
                } else if l.refused {
                    self.summary.fall_back(&asked.env);
                }
                for (r, p) in l.referrers {
                    let subject = r.subject();
                    if !self.seen.insert((asked.env.clone(), subject.key())) {
                        continue;
                    }
                    total.merge(p);
                    self.summary.planned(PulledIn {
                        environment: asked.env.clone(),
                        content_type: r.content_type.clone(),
                        uid: r.uid.clone(),
                        locale: r.locale.clone(),
                        version: r.version,
                        depth: asked.depth + 1,
                        from: asked.from.clone(),
                    });
                    if l.follow {
                        self.push(ClaimedLookup {
                            id: 0,
                            env: asked.env.clone(),
                            subject,
                            depth: asked.depth + 1,
                            from: asked.from.clone(),
                        });
                    }
                }
            }
        }
        let fall_back: Vec<PlanEnvironment> = limits
            .into_iter()
            .map(|(e, _)| e)
            .filter(|e| self.summary.on_failure_pending.contains(&e.name))
            .collect();
        if !fall_back.is_empty() {
            total.merge(plan_failure(job, &fall_back, &cfg.rules));
        }
        Ok(out_of_budget)
    }

    fn answer(&self) -> Value {
        if !self.any && self.summary.lookups == 0 {
            return Value::Null;
        }
        serde_json::json!({
            "lookups": self.summary.lookups,
            "referrers": self.summary.referrers,
            "truncated": self.summary.truncated,
            "by_environment": self.summary.by_environment,
            "pulled_in": self.summary.pulled_in,
            "on_failure": self.summary.on_failure_pending,
        })
    }
}
