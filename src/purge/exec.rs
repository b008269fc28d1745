//! Executors: KV deletes and prefix sweeps through the binding (or the REST bulk API), Cache
//! API deletes, and Cloudflare purge calls in paced batches. Each returns per-action results
//! for the ledger; nothing here decides job status.

use std::collections::BTreeMap;

use futures_util::future::join_all;
use serde_json::Value;
use worker::{Cache, Env, Method};

use super::{purge_batches, purge_body, ActionKind, ActionResult, ClaimedAction, Outcome};
use crate::config::Config;
use crate::net::{self, Call, NetError, Pacing};
use crate::pace::Pace;
use crate::runtime::{Budget, Sub};

/// KV keys listed per sweep page (the API maximum).
const LIST_PAGE: u64 = 1000;
/// Below this many keys a binding delete is cheaper than a REST bulk call.
const BULK_THRESHOLD: usize = 25;
/// Keys per REST bulk delete call.
const BULK_MAX: usize = 10_000;
/// KV deletes in flight at once through the binding.
const KV_CONCURRENCY: usize = 8;

/// Results of one execution pass.
#[derive(Debug, Default)]
pub struct ExecOutcome {
    pub results: Vec<ActionResult>,
    /// Purge API calls sent, by the environment of each batch's first action.
    pub api_calls: BTreeMap<String, u64>,
    pub errors: Vec<String>,
}

impl ExecOutcome {
    /// Records one outcome for each of `actions`.
    pub fn settle(&mut self, actions: &[ClaimedAction], outcome: Outcome, error: Option<String>) {
        for a in actions {
            self.results.push(ActionResult {
                id: a.id,
                outcome,
                swept: 0,
                cursor: a.cursor.clone(),
                error: error.clone(),
            });
        }
    }
}

/// The namespace id for REST bulk deletes of a binding, when the configuration allows them.
fn bulk_namespace<'c>(cfg: &'c Config, env_name: &str, binding: &str) -> Option<&'c str> {
    cfg.cloudflare_account_id.as_ref()?;
    cfg.cloudflare_api_token.as_ref()?;
    let rule = cfg.rules.rule_for(env_name)?;
    (rule.kv_binding.as_deref() == Some(binding))
        .then_some(rule.kv_namespace_id.as_deref())
        .flatten()
}

async fn rest_bulk_delete(
    cfg: &Config,
    budget: &Budget,
    namespace: &str,
    keys: &[&str],
) -> Result<(), String> {
    let (Some(account), Some(token)) = (&cfg.cloudflare_account_id, &cfg.cloudflare_api_token)
    else {
        return Err("REST bulk delete is not configured".into());
    };
    let body = serde_json::to_string(keys).map_err(|e| e.to_string())?;
    let call = Call {
        what: "KV bulk delete",
        method: Method::Post,
        url: format!(
            "{}/accounts/{}/storage/kv/namespaces/{}/bulk/delete",
            cfg.cloudflare_api_base, account, namespace
        ),
        headers: vec![
            ("authorization", format!("Bearer {}", token.expose())),
            ("content-type", "application/json".into()),
        ],
        body: Some(body),
        timeout_ms: cfg.http_timeout_ms,
    };
    let a = net::send(&call, None, budget)
        .await
        .map_err(|e| e.to_string())?;
    let v: Value = serde_json::from_slice(&a.body).unwrap_or(Value::Null);
    if a.status == 200 && v.get("success").and_then(Value::as_bool) == Some(true) {
        Ok(())
    } else {
        Err(format!(
            "KV bulk delete answered {}: {}",
            a.status,
            net::describe_body(&a.body)
        ))
    }
}

/// Deletes single KV keys, by binding or REST bulk.
async fn kv_keys(
    cfg: &Config,
    env: &Env,
    budget: &Budget,
    actions: &[ClaimedAction],
    out: &mut ExecOutcome,
) {
    let mut by_target: BTreeMap<(&str, &str), Vec<&ClaimedAction>> = BTreeMap::new();
    for a in actions {
        by_target
            .entry((a.target.as_str(), a.env.as_str()))
            .or_default()
            .push(a);
    }
    for ((binding, env_name), group) in by_target {
        if group.len() >= BULK_THRESHOLD {
            if let Some(ns) = bulk_namespace(cfg, env_name, binding) {
                for chunk in group.chunks(BULK_MAX) {
                    if !budget.allows(2) {
                        let rest: Vec<ClaimedAction> = chunk.iter().map(|a| (*a).clone()).collect();
                        out.settle(&rest, Outcome::Pending, None);
                        continue;
                    }
                    let keys: Vec<&str> = chunk.iter().map(|a| a.value.as_str()).collect();
                    let owned: Vec<ClaimedAction> = chunk.iter().map(|a| (*a).clone()).collect();
                    match rest_bulk_delete(cfg, budget, ns, &keys).await {
                        Ok(()) => out.settle(&owned, Outcome::Done, None),
                        Err(e) => {
                            out.errors.push(e.clone());
                            out.settle(&owned, Outcome::Pending, Some(e));
                        }
                    }
                }
                continue;
            }
        }
        let store = match env.kv(binding) {
            Ok(s) => s,
            Err(e) => {
                let msg = format!("KV binding {binding} is not available: {e}");
                out.errors.push(msg.clone());
                let owned: Vec<ClaimedAction> = group.iter().map(|a| (*a).clone()).collect();
                out.settle(&owned, Outcome::Failed, Some(msg));
                continue;
            }
        };
        for chunk in group.chunks(KV_CONCURRENCY) {
            if !budget.allows(chunk.len()) {
                let rest: Vec<ClaimedAction> = chunk.iter().map(|a| (*a).clone()).collect();
                out.settle(&rest, Outcome::Pending, None);
                continue;
            }
            budget.spend(Sub::Kv, chunk.len());
            let deletes = chunk.iter().map(|a| store.delete(&a.value));
            for (a, r) in chunk.iter().zip(join_all(deletes).await) {
                match r {
                    Ok(()) => out.settle(std::slice::from_ref(*a), Outcome::Done, None),
                    Err(e) => {
                        let msg = format!("KV delete failed: {e}");
                        out.errors.push(msg.clone());
                        out.settle(std::slice::from_ref(*a), Outcome::Pending, Some(msg));
                    }
                }
            }
        }
    }
}

/// Sweeps one KV prefix: lists from the saved cursor and deletes what it finds, until the list
/// is complete or the budget runs low (then it stays pending with its cursor).
async fn kv_prefix(cfg: &Config, env: &Env, budget: &Budget, a: &ClaimedAction) -> ActionResult {
    let mut result = ActionResult {
        id: a.id,
        outcome: Outcome::Pending,
        swept: 0,
        cursor: a.cursor.clone(),
        error: None,
    };
    let store = match env.kv(&a.target) {
        Ok(s) => s,
        Err(e) => {
            result.outcome = Outcome::Failed;
            result.error = Some(format!("KV binding {} is not available: {e}", a.target));
            return result;
        }
    };
    let bulk_ns = bulk_namespace(cfg, &a.env, &a.target);
    loop {
        if !budget.allows(3) {
            return result;
        }
        budget.spend(Sub::Kv, 1);
        let mut list = store.list().prefix(a.value.clone()).limit(LIST_PAGE);
        if let Some(c) = &result.cursor {
            list = list.cursor(c.clone());
        }
        let page = match list.execute().await {
            Ok(p) => p,
            Err(e) => {
                result.error = Some(format!("KV list failed: {e}"));
                return result;
            }
        };
        let names: Vec<String> = page.keys.into_iter().map(|k| k.name).collect();
        let mut deleted = 0u64;
        match bulk_ns {
            Some(ns) if names.len() >= BULK_THRESHOLD => {
                let keys: Vec<&str> = names.iter().map(String::as_str).collect();
                if let Err(e) = rest_bulk_delete(cfg, budget, ns, &keys).await {
                    result.error = Some(e);
                    return result;
                }
                deleted = names.len() as u64;
            }
            _ => {
                if !budget.allows(names.len() + 1) {
                    return result; // not enough budget for this page: resume from the same cursor
                }
                for chunk in names.chunks(KV_CONCURRENCY) {
                    budget.spend(Sub::Kv, chunk.len());
                    let results = join_all(chunk.iter().map(|n| store.delete(n))).await;
                    deleted += results.iter().filter(|r| r.is_ok()).count() as u64;
                    if let Some(Err(e)) = results.into_iter().find(Result::is_err) {
                        result.swept += deleted;
                        result.error = Some(format!("KV delete failed: {e}"));
                        return result;
                    }
                }
            }
        }
        result.swept += deleted;
        if page.list_complete {
            result.outcome = Outcome::Done;
            result.cursor = None;
            return result;
        }
        // An empty page with list_complete false is possible: follow the cursor.
        result.cursor = page.cursor;
        if result.cursor.is_none() {
            result.outcome = Outcome::Done;
            return result;
        }
    }
}

/// Deletes URLs from this location's Cache API.
async fn cache_urls(budget: &Budget, actions: &[ClaimedAction], out: &mut ExecOutcome) {
    let cache = Cache::default();
    for a in actions {
        if !budget.allows(1) {
            out.settle(std::slice::from_ref(a), Outcome::Pending, None);
            continue;
        }
        budget.spend(Sub::Cache, 1);
        match cache.delete(a.value.as_str(), true).await {
            Ok(_) => out.settle(std::slice::from_ref(a), Outcome::Done, None),
            Err(e) => {
                let msg = format!("Cache API delete failed: {e}");
                out.errors.push(msg.clone());
                out.settle(std::slice::from_ref(a), Outcome::Failed, Some(msg));
            }
        }
    }
}

/// Sends Cloudflare purge calls, one batch per call, paced by the shared limiter.
async fn cloudflare(
    cfg: &Config,
    env: &Env,
    budget: &Budget,
    actions: &[ClaimedAction],
    out: &mut ExecOutcome,
) -> Result<(), NetError> {
    let batches = purge_batches(actions, cfg.purge_batch_size);
    if batches.is_empty() {
        return Ok(());
    }
    let Some(token) = &cfg.cloudflare_api_token else {
        let msg = "CLOUDFLARE_API_TOKEN is not set; purge calls cannot be sent".to_string();
        out.errors.push(msg.clone());
        for (_, _, items) in &batches {
            out.settle(items, Outcome::Failed, Some(msg.clone()));
        }
        return Ok(());
    };
    let pacing = Pacing {
        env,
        key: "cloudflare-purge".into(),
        pace: Pace::Bucket {
            bucket: cfg.purge_bucket,
        },
    };
    let mut pending_from = None;
    for (idx, (zone, kind, items)) in batches.iter().enumerate() {
        if !budget.allows(4) {
            pending_from = Some(idx);
            break;
        }
        let call = Call {
            what: "Cloudflare purge",
            method: Method::Post,
            url: format!("{}/zones/{}/purge_cache", cfg.cloudflare_api_base, zone),
            headers: vec![
                ("authorization", format!("Bearer {}", token.expose())),
                ("content-type", "application/json".into()),
            ],
            body: Some(purge_body(*kind, items).to_string()),
            timeout_ms: cfg.http_timeout_ms,
        };
        let answer = match net::send(&call, Some(&pacing), budget).await {
            Ok(a) => a,
            Err(e) => {
                // Retries exhausted: leave this and later batches pending for the queue retry.
                out.errors.push(e.to_string());
                for (_, _, rest) in &batches[idx..] {
                    out.settle(rest, Outcome::Pending, None);
                }
                return Err(e);
            }
        };
        if let Some(first) = items.first() {
            *out.api_calls.entry(first.env.clone()).or_default() += 1;
        }
        let v: Value = serde_json::from_slice(&answer.body).unwrap_or(Value::Null);
        let ok = answer.status == 200 && v.get("success").and_then(Value::as_bool) == Some(true);
        if ok {
            out.settle(items, Outcome::Done, None);
        } else {
            let detail = v
                .get("errors")
                .map(|e| e.to_string())
                .unwrap_or_else(|| net::describe_body(&answer.body));
            let msg = format!(
                "Cloudflare purge ({} {}) for zone {zone} failed: HTTP {}: {detail}",
                items.len(),
                kind.as_str(),
                answer.status
            );
            out.errors.push(msg.clone());
            out.settle(items, Outcome::Failed, Some(msg));
        }
    }
    if let Some(idx) = pending_from {
        for (_, _, rest) in &batches[idx..] {
            out.settle(rest, Outcome::Pending, None);
        }
    }
    Ok(())
}

/// Executes a claimed set of actions. An `Err` means a retryable failure: the results gathered
/// so far are still returned inside the outcome so nothing is counted twice.
pub async fn execute(
    cfg: &Config,
    env: &Env,
    budget: &Budget,
    actions: &[ClaimedAction],
) -> (ExecOutcome, Option<NetError>) {
    let mut out = ExecOutcome::default();
    let of = |k: ActionKind| -> Vec<ClaimedAction> {
        actions.iter().filter(|a| a.kind == k).cloned().collect()
    };
    kv_keys(cfg, env, budget, &of(ActionKind::KvKey), &mut out).await;
    for a in of(ActionKind::KvPrefix) {
        let r = kv_prefix(cfg, env, budget, &a).await;
        if let Some(e) = &r.error {
            out.errors.push(e.clone());
        }
        out.results.push(r);
    }
    cache_urls(budget, &of(ActionKind::CacheUrl), &mut out).await;
    let cf: Vec<ClaimedAction> = actions
        .iter()
        .filter(|a| a.kind.is_cloudflare())
        .cloned()
        .collect();
    let err = cloudflare(cfg, env, budget, &cf, &mut out).await.err();
    (out, err)
}
