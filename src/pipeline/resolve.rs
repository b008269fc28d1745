//! What a job is about: its stack, its environments (job status + the stack's environments),
//! one planned page of items, what a page costs, and where an `on_failure` purge goes.

use crate::config::Config;
use crate::contentstack::references::Subject;
use crate::contentstack::{
    client::Client, has_more, resolve_environments, LOOKUP_BATCH, PAGE_SIZE,
};
use crate::event::ANY_SCOPE;
use crate::ledger::ops::NewLookup;
use crate::ledger::JobRecord;
use crate::plan::{plan, ItemType, PlanEnvironment, PlanItem, PlanJob};
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

/// Plans a window of items (one or more pages): their URLs are resolved together, so each
/// content type and locale costs one query per 100 uids of the window, not of each page.
pub async fn plan_window(
    cfg: &Config,
    client: &Client<'_>,
    job: &PlanJob,
    items: &mut [PlanItem],
    environments: &[PlanEnvironment],
) -> Result<crate::plan::Plan, StepError> {
    resolve_item_urls(cfg, client, &job.api_key, items, environments).await?;
    Ok(plan(job, items, environments, &cfg.rules))
}

/// Fills in the URLs of the items of environments whose rule resolves URLs.
pub async fn resolve_item_urls(
    cfg: &Config,
    client: &Client<'_>,
    api_key: &str,
    items: &mut [PlanItem],
    environments: &[PlanEnvironment],
) -> Result<(), StepError> {
    let resolving: Vec<&str> = environments
        .iter()
        .filter(|e| resolves_urls(cfg, api_key, e))
        .map(|e| e.uid.as_str())
        .collect();
    if resolving.is_empty() {
        return Ok(());
    }
    let picked: Vec<usize> = (0..items.len())
        .filter(|&n| resolving.contains(&items[n].environment_uid.as_str()))
        .collect();
    let mut wanted: Vec<PlanItem> = picked.iter().map(|&n| items[n].clone()).collect();
    client.resolve_urls(&mut wanted).await?;
    for (n, w) in picked.into_iter().zip(wanted) {
        items[n].url = w.url;
    }
    Ok(())
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

/// Per environment: the purged URLs its verification probes (0 when nothing is purged
/// through the Cloudflare API there).
pub(super) fn verify_samples(
    cfg: &crate::config::Config,
    api_key: &str,
    environments: &[PlanEnvironment],
) -> std::collections::BTreeMap<String, u32> {
    crate::sorted::map_of(environments.iter().map(|e| {
        let n = cfg
            .rules
            .rule_for_stack(Some(api_key), &e.name)
            .filter(|r| r.zone_id.is_some() && cfg.cloudflare.api_token.is_some())
            .map_or(0, |r| r.verify_sample);
        (e.name.clone(), n)
    }))
}

pub(super) fn resolves_urls(cfg: &Config, api_key: &str, e: &PlanEnvironment) -> bool {
    cfg.rules
        .rule_for_stack(Some(api_key), &e.name)
        .is_some_and(|r| r.resolve_urls)
}

/// Items planned together at most: up to this many are read before their URLs are looked up
/// (when a rule resolves URLs). One purge group (`purge::GROUP_PAGES` pages), which a window
/// never spans anyway.
pub const WINDOW_ITEMS: usize = 800;

/// What reading one more page and planning a window of `held` items plus that page may cost:
/// (external fetches, service operations). The page; where a rule resolves URLs, one query
/// per 100 uids, one more per content type and locale that fills a query only in part (a
/// dozen assumed), and a single look-up for one item in ten whose version moved on; a limiter
/// call per four starts; and the ledger.
pub fn window_cost(
    cfg: &Config,
    api_key: &str,
    environments: &[PlanEnvironment],
    held: usize,
) -> (usize, usize) {
    let resolve = environments.iter().any(|e| resolves_urls(cfg, api_key, e));
    let items = held + PAGE_SIZE as usize;
    let fetches = 1 + if resolve {
        items.div_ceil(LOOKUP_BATCH) + 12 + items / 10
    } else {
        0
    };
    (fetches, fetches.div_ceil(4) + 2)
}

/// Whether any environment's rule resolves URLs (items are then planned in windows).
pub fn any_resolves(cfg: &Config, api_key: &str, environments: &[PlanEnvironment]) -> bool {
    environments.iter().any(|e| resolves_urls(cfg, api_key, e))
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
    use crate::ledger::JobRecord;
    use serde_json::Value;

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
