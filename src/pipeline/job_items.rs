//! Resolving a job and reading its items: which stack it belongs to ([`stack_key`]), the
//! environments it works on ([`resolve_job`]), one page of its items ([`read_page`]) and the
//! items whose referrers each environment's `references` section looks up ([`referencing`]).

use crate::config::Config;
use crate::contentstack::references::Subject;
use crate::contentstack::{client::Client, has_more, resolve_environments};
use crate::ledger::ops::NewLookup;
use crate::plan::{ItemType, PlanEnvironment, PlanItem, PlanJob};
use crate::queue::JobMessage;
use crate::rules::References;
use crate::runtime::log;

use super::step::{permanent, StepError};

/// Picks the stack: the webhook's api_key, else the only one configured.
pub fn stack_key(cfg: &Config, job: &JobMessage) -> Option<String> {
    if let Some(k) = &job.api_key {
        return Some(k.clone());
    }
    let contentstack = &cfg.contentstack;
    if contentstack.api_keys.len() == 1 {
        return contentstack.api_keys.first().cloned();
    }
    let tokens = &contentstack.management_tokens;
    if tokens.per_stack.len() == 1 && tokens.default.is_none() {
        return tokens.per_stack.keys().next().cloned();
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
            .or_else(|| cfg.contentstack.branch.clone()),
    })
}

/// One page of job items, read.
#[derive(Default)]
pub struct Page {
    pub items: Vec<PlanItem>,
    /// More pages follow.
    pub more: bool,
    /// Items whose referrers are looked up, per environment with a `references` section.
    pub lookups: Vec<NewLookup>,
}

/// Reads one page of items.
pub async fn read_page(
    cfg: &Config,
    client: &Client<'_>,
    job: &PlanJob,
    skip: u64,
    environments: &[PlanEnvironment],
) -> Result<Page, StepError> {
    let page = client.items_page(&job.job_id, skip).await?;
    let lookups = lookups_of(cfg, &job.api_key, &page.items, environments);
    Ok(Page {
        more: has_more(skip, page.raw_len),
        items: page.items,
        lookups,
    })
}

/// The successful items each environment's `references` section looks up.
fn lookups_of(
    cfg: &Config,
    api_key: &str,
    items: &[PlanItem],
    environments: &[PlanEnvironment],
) -> Vec<NewLookup> {
    let mut out = Vec::new();
    for (e, refs) in referencing(cfg, api_key, environments) {
        for it in items
            .iter()
            .filter(|i| i.success && i.environment_uid == e.uid)
        {
            if refs.looks_up(it.item_type == ItemType::Asset, it.content_type.as_deref()) {
                out.push(NewLookup {
                    env: e.name.clone(),
                    subject: Subject::of(it),
                });
            }
        }
    }
    out
}

/// The environments whose rule has a `references` section, with that section.
pub fn referencing<'c>(
    cfg: &'c Config,
    api_key: &str,
    environments: &[PlanEnvironment],
) -> Vec<(PlanEnvironment, &'c References)> {
    environments
        .iter()
        .filter_map(|e| {
            cfg.rules
                .rule_for_stack(Some(api_key), &e.name)
                .and_then(|r| r.references.as_ref())
                .map(|r| (e.clone(), r))
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

    #[test]
    fn the_stack_is_the_webhooks_or_the_only_one_configured() {
        let c = cfg(serde_json::json!({}));
        let mut m = JobMessage::start("j", Action::Publish, None, 1);
        assert_eq!(stack_key(&c, &m), None, "two stacks: the webhook must say");
        m.api_key = Some("k2".into());
        assert_eq!(stack_key(&c, &m).as_deref(), Some("k2"));
    }
}
