//! The webhook health check, run by the cron trigger every 10 minutes (docs/CONTRACT.md,
//! "Webhook health"; docs/ARCHITECTURE.md). For each stack with a management token it lists
//! the webhooks that deliver to this Worker, reads their failed executions since the last
//! check, and takes in each job-completion delivery the ledger does not know through
//! [`crate::admission`], the same path as a webhook (`source: "recovered"`). It changes nothing in Contentstack. The
//! decisions (which webhooks, which executions, the window) are in [`crate::webhook_health`].
//!
//! Choices where the contract is silent:
//! - Failed executions are taken in oldest first; a delivery the ledger already has (same job,
//!   action and environment) is a duplicate and left alone, so overlapping windows and
//!   Contentstack's own retries never run a job twice.
//! - A stack whose check fails (a refused token, the budget used up, the ledger unavailable)
//!   keeps its webhooks as last seen and its window start, and the error is reported; the
//!   other stacks are still checked.
//! - `last_failure_at` keeps the last failure an earlier check saw when this one saw none.

use serde_json::Value;
use worker::Env;

use crate::admission::{take_in, AdmissionError, TakenIn};
use crate::budget::{Budget, Spend};
use crate::config::Config;
use crate::contentstack::client::Client;
use crate::ledger::client::IndexClient;
use crate::ledger::SOURCE_RECOVERED;
use crate::runtime::{self, iso_of, log, now_ms};
use crate::webhook_health::{
    delivers_here, executions_of, webhooks_of, window, Execution, HealthState, Recovered,
    WebhookHealth, PAGE_LIMIT,
};

/// Most pages of webhooks read per stack.
const MAX_WEBHOOK_PAGES: u64 = 20;
/// The check's error when its budget runs out before every page is read.
const OUT_OF_BUDGET: &str = "the check used up its budget; the rest is read by the next check";
/// Fetches and service operations kept back for the ledger write that ends the check.
const RESERVE: usize = 4;

/// Runs one check and stores its outcome for `GET /api/health`.
pub async fn check(env: &Env) {
    let cfg_rc = runtime::config(env);
    let Ok(cfg) = cfg_rc.as_ref() else {
        log(
            "health_check_skipped",
            serde_json::json!({"error": "the configuration is invalid"}),
        );
        return;
    };
    let Some((ledger, mut state)) = last_health(env).await else {
        return;
    };
    let (fetches, ops) = cfg.pacing.invocation_budgets();
    let budget = Budget::new(fetches, ops);
    let now = now_ms();
    let (webhooks, recovered, errors) = check_stacks(cfg, env, &budget, &mut state, now).await;
    state.checked_at = Some(iso_of(now));
    state.error = (!errors.is_empty()).then(|| errors.join("; "));
    state.webhooks = webhooks;
    state.recovered = recovered;
    log(
        "health_checked",
        serde_json::json!({
            "webhooks": state.webhooks.len(),
            "disabled": state.webhooks.iter().filter(|w| w.disabled).count(),
            "unhealthy": state.webhooks.iter().filter(|w| w.unhealthy).count(),
            "recovered": state.recovered.len(),
            "error": state.error,
            "fetch": budget.fetches(),
        }),
    );
    if let Err(e) = ledger.put_health(state).await {
        log(
            "health_check_failed",
            serde_json::json!({"error": e.to_string()}),
        );
    }
}

/// The index and the health state the last check stored; `None` (logged) when either is
/// unavailable.
async fn last_health(env: &Env) -> Option<(IndexClient, HealthState)> {
    let ledger = match IndexClient::new(env) {
        Ok(l) => l,
        Err(e) => {
            log(
                "health_check_failed",
                serde_json::json!({"error": e.to_string()}),
            );
            return None;
        }
    };
    match ledger.health().await {
        Ok(s) => Some((ledger, s)),
        Err(e) => {
            log(
                "health_check_failed",
                serde_json::json!({"error": e.to_string()}),
            );
            None
        }
    }
}

/// Checks every watched stack: the webhooks found (a failed stack keeps those last seen), the
/// deliveries recovered and the errors. A stack checked moves its window start in `state` to
/// `now`.
async fn check_stacks(
    cfg: &Config,
    env: &Env,
    budget: &Budget,
    state: &mut HealthState,
    now: i64,
) -> (Vec<WebhookHealth>, Vec<Recovered>, Vec<String>) {
    let mut errors = Vec::new();
    let mut webhooks = Vec::new();
    let mut recovered = Vec::new();
    let stacks = cfg.contentstack.watched_stacks();
    if stacks.is_empty() {
        errors.push(
            "no stack to check: list the stacks in CONTENTSTACK_API_KEYS (with CONTENTSTACK_MANAGEMENT_TOKEN) or give each a token in CONTENTSTACK_MANAGEMENT_TOKENS"
                .to_string(),
        );
    }
    for api_key in stacks {
        let before: Vec<WebhookHealth> = state
            .webhooks
            .iter()
            .filter(|w| w.api_key == api_key)
            .cloned()
            .collect();
        let last = state.windows.get(&api_key).copied();
        match check_stack(
            cfg,
            env,
            budget,
            &api_key,
            last,
            now,
            &before,
            &mut recovered,
        )
        .await
        {
            Ok(found) => {
                webhooks.extend(found);
                state.windows.insert(api_key, now);
            }
            Err(e) => {
                errors.push(format!("stack {api_key}: {e}"));
                webhooks.extend(before);
            }
        }
    }
    (webhooks, recovered, errors)
}

/// Checks one stack: its webhooks that deliver here, and their failed executions since `last`.
#[allow(clippy::too_many_arguments)]
async fn check_stack(
    cfg: &Config,
    env: &Env,
    budget: &Budget,
    api_key: &str,
    last: Option<i64>,
    now: i64,
    before: &[WebhookHealth],
    recovered: &mut Vec<Recovered>,
) -> Result<Vec<WebhookHealth>, String> {
    let client = Client::new(cfg, env, budget, api_key).map_err(|e| e.to_string())?;
    let mut listed = Vec::new();
    for page in 0..MAX_WEBHOOK_PAGES {
        let answer = client
            .webhooks_page(page * PAGE_LIMIT)
            .await
            .map_err(|e| e.to_string())?;
        let n = answer
            .get("webhooks")
            .and_then(Value::as_array)
            .map_or(0, Vec::len);
        listed.extend(webhooks_of(&answer));
        if (n as u64) < PAGE_LIMIT {
            break;
        }
    }
    let (from, to) = window(last, now);
    let (from, to) = (iso_of(from), iso_of(to));
    let mut out = Vec::new();
    for w in listed
        .into_iter()
        .filter(|w| delivers_here(w, cfg.deployment.public_url.as_deref()))
    {
        let mut failed = failed_executions(&client, budget, &w.uid, &from, &to).await?;
        crate::sorted::sort_by(&mut failed, |a, b| a.created_at.cmp(&b.created_at));
        let last_failure_at = failed
            .last()
            .map(|e| e.created_at.clone())
            .filter(|t| !t.is_empty())
            .or_else(|| {
                before
                    .iter()
                    .find(|b| b.uid == w.uid)
                    .and_then(|b| b.last_failure_at.clone())
            });
        for e in &failed {
            recover(cfg, env, budget, api_key, e, recovered).await?;
        }
        out.push(WebhookHealth {
            api_key: api_key.to_string(),
            uid: w.uid,
            name: w.name,
            disabled: w.disabled,
            unhealthy: w.unhealthy,
            last_failure_at,
            failed_executions: failed.len() as u64,
        });
    }
    Ok(out)
}

/// Every failed execution of a webhook in the window, page by page.
async fn failed_executions(
    client: &Client<'_>,
    budget: &Budget,
    webhook_uid: &str,
    from: &str,
    to: &str,
) -> Result<Vec<Execution>, String> {
    let mut failed = Vec::new();
    let mut skip = 0;
    loop {
        if !budget.allows(RESERVE + 2, RESERVE + 2) {
            return Err(OUT_OF_BUDGET.into());
        }
        let answer = client
            .executions_page(webhook_uid, from, to, skip)
            .await
            .map_err(|e| e.to_string())?;
        let page = executions_of(&answer);
        let n = page.len() as u64;
        failed.extend(page.into_iter().filter(Execution::failed));
        if n < PAGE_LIMIT {
            return Ok(failed);
        }
        skip += PAGE_LIMIT;
    }
}

/// Takes in one failed delivery as if it had arrived now; a known one is left alone.
async fn recover(
    cfg: &Config,
    env: &Env,
    budget: &Budget,
    api_key: &str,
    e: &Execution,
    recovered: &mut Vec<Recovered>,
) -> Result<(), String> {
    let Some(payload) = &e.payload else {
        return Ok(());
    };
    if !budget.allows(RESERVE, RESERVE + 2) {
        return Err(OUT_OF_BUDGET.into());
    }
    budget.spend(Spend::Durable, 1);
    budget.spend(Spend::Queue, 1);
    let raw = serde_json::to_vec(payload).unwrap_or_default();
    match take_in(env, cfg, &raw, payload, SOURCE_RECOVERED).await {
        Ok(TakenIn::Accepted {
            job_id,
            action,
            environments,
        }) => {
            recovered.push(Recovered {
                job_id,
                environment: environments.into_iter().next(),
                at: runtime::now_iso(),
                api_key: api_key.to_string(),
                action: action.as_str().to_string(),
            });
            Ok(())
        }
        Ok(TakenIn::Duplicate { .. } | TakenIn::Ignored { .. }) => Ok(()),
        Err(not_taken) => not_taken_in(&e.uid, not_taken),
    }
}

/// A delivery that admission did not take: an unavailable ledger or queue (transient) fails
/// the stack's check, so the next check reads the delivery again; a refusal (another stack, a
/// malformed event) is logged and left alone, since it would be refused again.
fn not_taken_in(execution: &str, e: AdmissionError) -> Result<(), String> {
    if e.is_transient() {
        return Err(e.to_string());
    }
    log(
        "not_recovered",
        serde_json::json!({"execution": execution, "error": e.code()}),
    );
    Ok(())
}
