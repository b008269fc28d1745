//! Executors: KV deletes and prefix sweeps through the binding (or the REST bulk API), Cache
//! API deletes, and Cloudflare purge calls in paced batches. Each returns per-action results
//! for the ledger; nothing here decides job status.
//!
//! Choices where the contract is silent:
//! - A prefix sweep lists at most as many keys as the invocation can still delete (the list
//!   `limit`), so every page it reads is finished and its cursor saved: a prefix of any size
//!   advances in every invocation, never re-listing the same page.
//! - A purge answer with Cloudflare error code 1134 ("rate limit reached") is a rate limit,
//!   retried like a 429. A 401/403 is a permanent error for the whole job (a bad token).
//! - KV REST bulk deletes retry the `unsuccessful_keys` the API reports, twice, then leave those
//!   keys pending for the next invocation.

use std::collections::BTreeMap;

use futures_util::future::join_all;
use serde_json::Value;
use worker::{Cache, Env, Method};

use super::{
    purge_batches, purge_body, ActionKind, ActionResult, BatchSize, ClaimedAction, ExecOutcome,
    Outcome,
};
use crate::budget::{Budget, Spend};
use crate::config::Config;
use crate::net::{self, Call, NetError, Pacing};
use crate::pace::Pace;
use crate::signature::Secret;

/// KV keys listed per sweep page (the API maximum).
const LIST_PAGE: u64 = 1000;
/// Below this many keys a binding delete is cheaper than a REST bulk call.
const BULK_THRESHOLD: usize = 25;
/// Keys per REST bulk delete call.
const BULK_MAX: usize = 10_000;
/// KV deletes in flight at once through the binding.
const KV_CONCURRENCY: usize = 8;
/// Cache API deletes in flight at once (they were awaited one by one: the drain's tail).
const CACHE_CONCURRENCY: usize = 8;
/// Cloudflare purge calls in flight at once (fewer than Workers' six open connections).
const PURGE_CONCURRENCY: usize = 4;
/// Tries of a REST bulk delete for keys the API reported unsuccessful.
const BULK_TRIES: usize = 3;
/// Cloudflare's error code for "Unable to purge, rate limit reached".
const PURGE_RATE_LIMITED: i64 = 1134;

/// What every executor works with: the configuration (credentials, limits), the bindings and
/// the invocation's budget. What an action does is carried by the action itself (`target`,
/// `via`), fixed when it was planned; no rule is read here.
struct Exec<'a> {
    cfg: &'a Config,
    env: &'a Env,
    budget: &'a Budget,
}

/// The namespace id for REST bulk deletes of a binding, when the configuration allows them.
/// The namespace id is the one the action was planned with (`via`).
fn bulk_namespace<'a>(cfg: &Config, via: &'a str) -> Option<&'a str> {
    cfg.cloudflare.account_id.as_ref()?;
    cfg.cloudflare.api_token.as_ref()?;
    (!via.is_empty()).then_some(via)
}

/// Deletes keys with the REST bulk API, retrying the keys it reports unsuccessful. Returns the
/// keys that were still not deleted after the last try.
async fn rest_bulk_delete(
    cfg: &Config,
    budget: &Budget,
    namespace: &str,
    keys: &[&str],
) -> Result<Vec<String>, NetError> {
    let (Some(account), Some(token)) = (&cfg.cloudflare.account_id, &cfg.cloudflare.api_token)
    else {
        return Err(NetError::Config(
            "REST bulk delete is not configured".into(),
        ));
    };
    let mut left: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
    for _ in 0..BULK_TRIES {
        if left.is_empty() || !budget.allows(1, 1) {
            break;
        }
        let body = serde_json::to_string(&left).map_err(|e| NetError::Other(e.to_string()))?;
        let call = Call {
            what: "KV bulk delete",
            method: Method::Post,
            url: format!(
                "{}/accounts/{}/storage/kv/namespaces/{}/bulk/delete",
                cfg.cloudflare.api_base, account, namespace
            ),
            headers: vec![
                ("authorization", format!("Bearer {}", token.expose())),
                ("content-type", "application/json".into()),
            ],
            body: Some(body),
            timeout_ms: cfg.pacing.http_timeout_ms,
            rate_limited: None,
        };
        let a = net::send(&call, None, budget).await?;
        let v: Value = serde_json::from_slice(&a.body).unwrap_or(Value::Null);
        if a.status != 200 || v.get("success").and_then(Value::as_bool) != Some(true) {
            return Err(NetError::Rejected {
                what: "KV bulk delete".into(),
                status: a.status,
                detail: net::describe_body(&a.body),
            });
        }
        left = v
            .pointer("/result/unsuccessful_keys")
            .and_then(Value::as_array)
            .map(|keys| {
                keys.iter()
                    .filter_map(|k| k.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
    }
    Ok(left)
}

/// Deletes single KV keys, by binding or REST bulk.
async fn kv_keys(x: &Exec<'_>, actions: &[ClaimedAction], out: &mut ExecOutcome) {
    let (cfg, env, budget) = (x.cfg, x.env, x.budget);
    let mut by_target: BTreeMap<(&str, &str), Vec<&ClaimedAction>> = BTreeMap::new();
    for a in actions {
        by_target
            .entry((a.target.as_str(), a.via.as_str()))
            .or_default()
            .push(a);
    }
    for ((binding, via), group) in by_target {
        if group.len() >= BULK_THRESHOLD {
            if let Some(ns) = bulk_namespace(cfg, via) {
                for chunk in group.chunks(BULK_MAX) {
                    let owned: Vec<ClaimedAction> = chunk.iter().map(|a| (*a).clone()).collect();
                    if !budget.allows(1, 1) {
                        out.settle(&owned, Outcome::Pending, None);
                        continue;
                    }
                    let keys: Vec<&str> = chunk.iter().map(|a| a.value.as_str()).collect();
                    match rest_bulk_delete(cfg, budget, ns, &keys).await {
                        Ok(left) => {
                            for a in &owned {
                                let outcome = if left.contains(&a.value) {
                                    Outcome::Pending
                                } else {
                                    Outcome::Done
                                };
                                out.settle(std::slice::from_ref(a), outcome, None);
                            }
                        }
                        Err(e) => {
                            let msg = e.to_string();
                            out.errors.push(msg.clone());
                            out.settle(&owned, Outcome::Pending, Some(msg));
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
            if !budget.allows(0, chunk.len()) {
                let rest: Vec<ClaimedAction> = chunk.iter().map(|a| (*a).clone()).collect();
                out.settle(&rest, Outcome::Pending, None);
                continue;
            }
            budget.spend(Spend::Kv, chunk.len());
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

/// How many keys one sweep page may list: no more than the invocation can still delete, so
/// every page read is finished (and its cursor saved) before the budget runs out. `None` when
/// not even a small page fits.
pub fn sweep_page_limit(remaining_ops: usize, bulk: bool) -> Option<u64> {
    // One operation for the list itself; the REST bulk path deletes a page in one fetch.
    let room = remaining_ops.checked_sub(1)?;
    if bulk {
        return (room >= 1).then_some(LIST_PAGE);
    }
    (room >= KV_CONCURRENCY).then(|| (room as u64).min(LIST_PAGE))
}

/// Sweeps one KV prefix: lists from the saved cursor and deletes what it finds, until the list
/// is complete or the budget runs low (then it stays pending with its cursor).
async fn kv_prefix(x: &Exec<'_>, a: &ClaimedAction) -> ActionResult {
    let (cfg, env, budget) = (x.cfg, x.env, x.budget);
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
    let bulk_ns = bulk_namespace(cfg, &a.via);
    loop {
        let bulk = bulk_ns.is_some() && budget.allows(BULK_TRIES, 1);
        let Some(limit) = sweep_page_limit(budget.remaining_ops(), bulk) else {
            return result;
        };
        budget.spend(Spend::Kv, 1);
        let page = match kv_list(env, &a.target, &a.value, limit, result.cursor.as_deref()).await {
            Ok(p) => p,
            Err(e) => {
                result.error = Some(format!("KV list failed: {e}"));
                return result;
            }
        };
        let names = page.names;
        let mut deleted = 0u64;
        match bulk_ns {
            Some(ns) if bulk && names.len() >= BULK_THRESHOLD => {
                let keys: Vec<&str> = names.iter().map(String::as_str).collect();
                match rest_bulk_delete(cfg, budget, ns, &keys).await {
                    Ok(left) if left.is_empty() => deleted = names.len() as u64,
                    Ok(left) => {
                        // Resume from the same cursor: the page is listed again.
                        result.swept += (names.len() - left.len()) as u64;
                        result.error = Some(format!(
                            "KV bulk delete left {} keys under {} undeleted",
                            left.len(),
                            a.value
                        ));
                        return result;
                    }
                    Err(e) => {
                        result.error = Some(e.to_string());
                        return result;
                    }
                }
            }
            _ => {
                for chunk in names.chunks(KV_CONCURRENCY) {
                    budget.spend(Spend::Kv, chunk.len());
                    let results = join_all(chunk.iter().map(|n| store.delete(n))).await;
                    deleted += results.iter().filter(|r| r.is_ok()).count() as u64;
                    if let Some(Err(e)) = results.into_iter().find(Result::is_err) {
                        // The page is listed again from the same cursor next time.
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

/// One page of a KV listing: what worker's `KvStore::list()…execute()` answers, key names only.
struct KvPage {
    names: Vec<String>,
    list_complete: bool,
    cursor: Option<String>,
}

/// Lists one page of the KV namespace bound as `binding` (`list({prefix, limit, cursor})`),
/// reading the answer's fields directly: worker's `ListOptionsBuilder::execute` converts the
/// answer (with every key's metadata) through serde_wasm_bindgen. Errors read as worker's
/// `KvError` would display them.
async fn kv_list(
    env: &Env,
    binding: &str,
    prefix: &str,
    limit: u64,
    cursor: Option<&str>,
) -> Result<KvPage, String> {
    use wasm_bindgen::{JsCast, JsValue};
    let js_error = |e: JsValue| format!("js error: {e:?}");
    let get = |o: &JsValue, k: &str| js_sys::Reflect::get(o, &JsValue::from_str(k));
    let store = get(env, binding).map_err(js_error)?;
    let options = js_sys::Object::new();
    let set = |k: &str, v: &JsValue| js_sys::Reflect::set(&options, &JsValue::from_str(k), v);
    set("limit", &JsValue::from_f64(limit as f64)).map_err(js_error)?;
    if let Some(c) = cursor {
        set("cursor", &JsValue::from_str(c)).map_err(js_error)?;
    }
    set("prefix", &JsValue::from_str(prefix)).map_err(js_error)?;
    let list: js_sys::Function = get(&store, "list").map_err(js_error)?.unchecked_into();
    let promise: js_sys::Promise = list
        .call1(&store, &options)
        .map_err(js_error)?
        .unchecked_into();
    let answer = wasm_bindgen_futures::JsFuture::from(promise)
        .await
        .map_err(js_error)?;
    let bad = |what: &str| format!("js error: the KV list answer has no valid {what}");
    let keys: js_sys::Array = get(&answer, "keys")
        .ok()
        .filter(js_sys::Array::is_array)
        .ok_or_else(|| bad("keys"))?
        .unchecked_into();
    let mut names = Vec::with_capacity(keys.length() as usize);
    for k in keys.iter() {
        names.push(
            get(&k, "name")
                .ok()
                .and_then(|n| n.as_string())
                .ok_or_else(|| bad("key name"))?,
        );
    }
    let list_complete = get(&answer, "list_complete")
        .ok()
        .and_then(|v| v.as_bool())
        .ok_or_else(|| bad("list_complete"))?;
    let cursor = get(&answer, "cursor").ok().and_then(|v| v.as_string());
    Ok(KvPage {
        names,
        list_complete,
        cursor,
    })
}

/// Deletes URLs from this location's Cache API, [`CACHE_CONCURRENCY`] at a time.
async fn cache_urls(budget: &Budget, actions: &[ClaimedAction], out: &mut ExecOutcome) {
    let cache = Cache::default();
    for chunk in actions.chunks(CACHE_CONCURRENCY) {
        if !budget.allows(0, chunk.len()) {
            out.settle(chunk, Outcome::Pending, None);
            continue;
        }
        budget.spend(Spend::Cache, chunk.len());
        let deletes = chunk.iter().map(|a| cache.delete(a.value.as_str(), true));
        for (a, r) in chunk.iter().zip(join_all(deletes).await) {
            match r {
                Ok(_) => out.settle(std::slice::from_ref(a), Outcome::Done, None),
                Err(e) => {
                    let msg = format!("Cache API delete failed: {e}");
                    out.errors.push(msg.clone());
                    out.settle(std::slice::from_ref(a), Outcome::Failed, Some(msg));
                }
            }
        }
    }
}

/// Whether a purge answer is Cloudflare's purge rate limit (error code 1134), whatever its status.
pub fn is_purge_rate_limited(status: u16, body: &[u8]) -> bool {
    if status == 200 {
        return false;
    }
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    v.get("errors")
        .and_then(Value::as_array)
        .is_some_and(|errs| {
            errs.iter()
                .any(|e| e.get("code").and_then(Value::as_i64) == Some(PURGE_RATE_LIMITED))
        })
}

/// Sends Cloudflare purge calls, one batch per call, paced by the shared token bucket.
async fn cloudflare(
    x: &Exec<'_>,
    actions: &[ClaimedAction],
    out: &mut ExecOutcome,
) -> Result<(), NetError> {
    let (cfg, env, budget) = (x.cfg, x.env, x.budget);
    let batches = purge_batches(actions, BatchSize::of(cfg));
    if batches.is_empty() {
        return Ok(());
    }
    let Some(token) = &cfg.cloudflare.api_token else {
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
            bucket: cfg.cloudflare.purge_bucket,
        },
        upcoming: std::cell::Cell::new(1),
        gives_way: false,
    };
    // Up to PURGE_CONCURRENCY calls at a time, as many as have start slots due now (reserved
    // together first, `net::ready_together`): within the burst they go out at once; where the
    // bucket binds, one at a time at its rate, as before.
    let mut idx = 0;
    while idx < batches.len() {
        let room = budget
            .remaining_fetches()
            .min(budget.remaining_ops() / 2)
            .min(PURGE_CONCURRENCY);
        let n = room.min(batches.len() - idx);
        if n == 0 {
            leave_pending(&batches[idx..], out);
            return Ok(());
        }
        pacing.upcoming.set((batches.len() - idx) as u32);
        let n = match net::ready_together(&pacing, budget, n as u32).await {
            Ok(ready) => (ready as usize).min(n),
            Err(e) => return give_up(e, &batches[idx..], out),
        };
        let chunk = &batches[idx..idx + n];
        let calls: Vec<Call<'static>> = chunk
            .iter()
            .map(|(zone, kind, items)| x.purge_call(token, zone, *kind, items))
            .collect();
        let answers = join_all(calls.iter().map(|call| send_purge(call, &pacing, budget))).await;
        idx += n;
        let mut failed = None;
        for ((zone, kind, items), answer) in chunk.iter().zip(answers) {
            match answer {
                Ok(a) => settle_purge(out, zone, *kind, items, &a),
                // Left pending: the step is retried (or, for a refused token, the job fails).
                Err(e) => {
                    out.settle(items, Outcome::Pending, None);
                    failed.get_or_insert(e);
                }
            }
        }
        if let Some(e) = failed {
            return give_up(e, &batches[idx..], out);
        }
    }
    Ok(())
}

/// Ends a round of purge calls on `e`: the batches not sent are left pending, and the error is
/// recorded unless it is a wait the server or the limiter asked for (not an error of the job).
fn give_up(
    e: NetError,
    rest: &[(String, ActionKind, Vec<ClaimedAction>)],
    out: &mut ExecOutcome,
) -> Result<(), NetError> {
    if e.retry_after_ms().is_none() {
        out.errors.push(e.to_string());
    }
    leave_pending(rest, out);
    Err(e)
}

impl Exec<'_> {
    /// The purge call of one batch, to the endpoint of its first action's rule.
    fn purge_call(
        &self,
        token: &Secret,
        zone: &str,
        kind: ActionKind,
        items: &[ClaimedAction],
    ) -> Call<'static> {
        let cfg = self.cfg;
        // Fixed when the actions were planned (a later deploy changes new jobs only).
        let endpoint = items
            .first()
            .map(|a| a.via.as_str())
            .filter(|v| !v.is_empty())
            .unwrap_or("purge_cache");
        Call {
            what: "Cloudflare purge",
            method: Method::Post,
            url: format!("{}/zones/{}/{}", cfg.cloudflare.api_base, zone, endpoint),
            headers: vec![
                ("authorization", format!("Bearer {}", token.expose())),
                ("content-type", "application/json".into()),
            ],
            body: Some(purge_body(kind, items).to_string()),
            timeout_ms: cfg.pacing.http_timeout_ms,
            rate_limited: Some(is_purge_rate_limited),
        }
    }
}

/// Sends one purge call; a refused token (401/403) is an error.
async fn send_purge(
    call: &Call<'_>,
    pacing: &Pacing<'_>,
    budget: &Budget,
) -> Result<net::Answer, NetError> {
    match net::send(call, Some(pacing), budget).await {
        Ok(a) if a.status == 401 || a.status == 403 => Err(NetError::Rejected {
            what: "Cloudflare purge".into(),
            status: a.status,
            detail: "the API token was refused (it needs the Cache Purge permission)".into(),
        }),
        other => other,
    }
}

/// Leaves the actions of `batches` pending.
fn leave_pending(batches: &[(String, ActionKind, Vec<ClaimedAction>)], out: &mut ExecOutcome) {
    for (_, _, rest) in batches {
        out.settle(rest, Outcome::Pending, None);
    }
}

/// Counts a purge call sent for `items` and settles them by its answer.
fn settle_purge(
    out: &mut ExecOutcome,
    zone: &str,
    kind: ActionKind,
    items: &[ClaimedAction],
    answer: &net::Answer,
) {
    if let Some(first) = items.first() {
        out.called(&first.env, zone);
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

/// Executes a claimed set of actions. KV work runs first, then the
/// Cache API, then purge calls. An `Err` is a failure of the step (transient or permanent, by
/// its type): the results gathered so far are still returned inside the outcome so nothing is
/// counted twice.
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
    let x = Exec { cfg, env, budget };
    kv_keys(&x, &of(ActionKind::KvKey), &mut out).await;
    for a in of(ActionKind::KvPrefix) {
        let r = kv_prefix(&x, &a).await;
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
    let err = cloudflare(&x, &cf, &mut out).await.err();
    (out, err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sweep_page_never_lists_more_than_it_can_delete() {
        assert_eq!(sweep_page_limit(900, false), Some(899));
        assert_eq!(sweep_page_limit(5000, false), Some(1000));
        assert_eq!(sweep_page_limit(9, false), Some(8));
        assert_eq!(sweep_page_limit(8, false), None);
        assert_eq!(sweep_page_limit(0, false), None);
        assert_eq!(sweep_page_limit(2, true), Some(1000));
        assert_eq!(sweep_page_limit(1, true), None);
    }

    #[test]
    fn code_1134_is_a_rate_limit_whatever_the_status() {
        let body = br#"{"success":false,"errors":[{"code":1134,"message":"Unable to purge, rate limit reached"}]}"#;
        assert!(is_purge_rate_limited(429, body));
        assert!(is_purge_rate_limited(400, body));
        assert!(!is_purge_rate_limited(200, body));
        assert!(!is_purge_rate_limited(
            400,
            br#"{"success":false,"errors":[{"code":1018}]}"#
        ));
        assert!(!is_purge_rate_limited(400, b"not json"));
    }
}
