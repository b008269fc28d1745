//! The probe step (queued as `Step::Verify`, `"step":"verify"`; docs/CONTRACT.md, "Verified
//! invalidation"): after a purge pass, probe a sample of the purged URLs, purge the ones still
//! cached once more, probe those again, and store what was found. The decisions (sample,
//! staleness, summary) are in [`crate::probe`].

use std::time::Duration;

use futures_util::future::join_all;
use worker::Delay;

use super::drain::{log_if_ended, next_after};
use super::step::{Next, Run, StepError, LEASED_RETRY_S, RESERVE_FETCHES, RESERVE_OPS};
use crate::budget::Budget;
use crate::config::Config;
use crate::ledger::ops::{ClaimVerificationOp, ReportVerificationOp, VerificationWork};
use crate::plan::PlanEnvironment;
use crate::probe::{classify, summarise, Probe};
use crate::purge::{exec, ActionKind, ClaimedAction, Outcome, ZoneCalls};
use crate::queue::{JobMessage, Step};
use crate::runtime::{now_iso, now_ms};

/// How long a verification stays handed out to one invocation.
const PROBE_LEASE_MS: i64 = 60_000;
/// Probes in flight at once (Workers allow six open connections).
const PROBES_AT_ONCE: usize = 6;
/// Pause between the extra purge and the probe after it, for the purge to reach the edge.
const REPROBE_DELAY_MS: u64 = 1_000;
/// Fetches kept for the extra purge calls of one verification.
const EXTRA_PURGE_FETCHES: usize = 4;

pub(super) async fn probe(ctx: &Run<'_>, job: &JobMessage) -> Result<Next, StepError> {
    // Each URL may be probed twice; the extra purge and the report need a few more.
    let room = ctx
        .budget
        .remaining_fetches()
        .saturating_sub(RESERVE_FETCHES + EXTRA_PURGE_FETCHES)
        / 2;
    if room == 0 || !ctx.budget.allows(RESERVE_FETCHES, RESERVE_OPS + 8) {
        return Ok(Next::Queue(Step::Verify, 0));
    }
    let claim = ctx
        .counted(
            &ctx.budget,
            ctx.ledger.claim_verification(ClaimVerificationOp {
                job_id: job.job_id.clone(),
                attempt: job.attempt,
                max_urls: room as u32,
                now: now_iso(),
                now_ms: now_ms(),
                lease_ms: PROBE_LEASE_MS,
            }),
        )
        .await?;
    if !claim.current {
        return Ok(Next::Stop);
    }
    let Some(work) = claim.work else {
        if claim.waiting {
            return Ok(Next::Queue(Step::Verify, LEASED_RETRY_S));
        }
        // Nothing left to probe: the next drain round moves the attempt on.
        return Ok(Next::Inline(Step::Drain));
    };
    let (verification, (api_calls, zone_calls), errors) =
        probe_environment(ctx.cfg, ctx.env, &ctx.budget, &work).await?;
    ctx.log(
        "verified",
        serde_json::json!({"job_id": job.job_id, "environment": work.env, "pass": work.pass, "checked": verification.checked, "fresh": verification.fresh, "stale": verification.stale.len(), "repurged": verification.repurged.len(), "unreachable": verification.unreachable.len()}),
    );
    let p = ctx
        .counted(
            &ctx.budget,
            ctx.ledger.report_verification(ReportVerificationOp {
                job_id: job.job_id.clone(),
                attempt: job.attempt,
                env: work.env.clone(),
                verification,
                api_calls,
                zone_calls,
                errors,
                subrequests: ctx.budget.used() as u64 + 1,
                now: now_iso(),
                now_ms: now_ms(),
            }),
        )
        .await?;
    // Another environment's verification, the second pass, the end, or purge work left.
    log_if_ended(ctx, job, &p);
    Ok(next_after(ctx, job, &p).unwrap_or(Next::Inline(Step::Drain)))
}

/// Probes one environment's sample, purges the stale URLs once more and probes them again.
/// Returns the verification, the extra purge calls made (in all, and per zone) and their errors.
async fn probe_environment(
    cfg: &Config,
    env: &worker::Env,
    budget: &Budget,
    work: &VerificationWork,
) -> Result<
    (
        crate::probe::Verification,
        (u64, Vec<ZoneCalls>),
        Vec<String>,
    ),
    StepError,
> {
    let urls: Vec<String> = work.urls.iter().map(|(_, u)| u.clone()).collect();
    let first = probe_all(cfg, budget, &urls, work.since_ms).await;
    let stale: Vec<&(String, String)> = work
        .urls
        .iter()
        .filter(|(_, u)| first.iter().any(|(f, p)| f == u && *p == Probe::Stale))
        .collect();
    let mut again = Vec::new();
    let mut api_calls = 0;
    let mut zone_calls = Vec::new();
    let mut errors = Vec::new();
    if !stale.is_empty() {
        let actions: Vec<ClaimedAction> = stale
            .iter()
            .enumerate()
            .map(|(i, (zone, url))| ClaimedAction {
                id: i as i64,
                env: work.env.clone(),
                kind: ActionKind::File,
                target: zone.clone(),
                value: url.clone(),
                via: work.via.clone(),
                cursor: None,
                group: 0,
                call: 0,
            })
            .collect();
        let (out, err) = exec::execute(cfg, env, budget, &actions).await;
        if let Some(e) = err {
            // Rate limited or refused: the step is retried (or the job fails) like a drain.
            return Err(e.into());
        }
        api_calls = out.api_calls.values().sum();
        zone_calls = out.zone_calls;
        errors = out.errors;
        let purged: Vec<String> = out
            .results
            .iter()
            .filter(|r| r.outcome == Outcome::Done)
            .filter_map(|r| actions.get(r.id as usize).map(|a| a.value.clone()))
            .collect();
        let since = now_ms();
        Delay::from(Duration::from_millis(REPROBE_DELAY_MS)).await;
        let second = probe_all(cfg, budget, &purged, since).await;
        for (_, url) in &stale {
            let p = second
                .iter()
                .find(|(u, _)| u == url)
                .map(|(_, p)| p.clone());
            again.push((url.clone(), p));
        }
    }
    let v = summarise(&first, &again, work.pass, &now_iso());
    Ok((v, (api_calls, zone_calls), errors))
}

/// Probes each URL once, a few at a time.
async fn probe_all(
    cfg: &Config,
    budget: &Budget,
    urls: &[String],
    since_ms: i64,
) -> Vec<(String, Probe)> {
    let mut out = Vec::with_capacity(urls.len());
    for chunk in urls.chunks(PROBES_AT_ONCE) {
        let answers = join_all(
            chunk
                .iter()
                .map(|u| crate::net::probe(u, cfg.pacing.http_timeout_ms, budget)),
        )
        .await;
        for (url, a) in chunk.iter().zip(answers) {
            let p = match a {
                Ok(a) => classify(
                    a.status,
                    a.cache_status.as_deref(),
                    a.age.as_deref(),
                    since_ms,
                    now_ms(),
                ),
                Err(e) => Probe::Unreachable(e),
            };
            out.push((url.clone(), p));
        }
    }
    out
}

/// Per environment: how many purged URLs the probe step samples (0 when nothing is purged
/// through the Cloudflare API there).
pub(super) fn probe_samples(
    cfg: &Config,
    api_key: &str,
    environments: &[PlanEnvironment],
) -> std::collections::BTreeMap<String, u32> {
    crate::sorted::map_of(environments.iter().map(|e| {
        let n = cfg
            .rules
            .rule_for_stack(Some(api_key), &e.name)
            .filter(|r| !r.zones.is_empty() && cfg.cloudflare.api_token.is_some())
            .map_or(0, |r| r.verify_sample);
        (e.name.clone(), n)
    }))
}
