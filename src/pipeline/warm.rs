//! The warm step (docs/CONTRACT.md, "Warm after the purge"): after an environment's last pass,
//! request up to its rule's `warm` purged URLs again, at most `warm_rate` starting in any one
//! second, so the edge is filled by a steady trickle instead of the first visitors' stampede.
//!
//! Choices where the contract is silent:
//! - Each request starts at least one interval after the one before and runs beside the
//!   others, so a slow origin does not slow the pace; the next start time is kept in the record,
//!   so the pace holds across invocations. The interval ([`interval_ms`]) is 1 s ÷ `warm_rate`
//!   planned 4 % longer (each start rounded up to a whole millisecond): `warm_rate + 1` starts
//!   then span more than a second even when the first reaches the origin up to 40 ms later than
//!   the last (1 s ÷ `warm_rate` exactly let `warm_rate + 1` requests arrive within one second
//!   at the site, and in whole ms rounded down it let more than `warm_rate` start, e.g. 33 ms
//!   for 30 a second).
//! - A round takes at most what the fetch budget leaves and [`MAX_ROUND`] URLs; each request is
//!   one fetch.

use std::collections::BTreeMap;
use std::time::Duration;

use futures_util::future::{select, Either};
use futures_util::stream::{FuturesUnordered, StreamExt};
use worker::Delay;

use super::drain::next_after;
use super::step::{Next, Run, StepError, LEASED_RETRY_S, LEASE_MS, RESERVE_FETCHES};
use crate::config::Config;
use crate::ledger::ops::{ClaimWarmOp, ReportWarmOp};
use crate::plan::PlanEnvironment;
use crate::queue::{JobMessage, Step};
use crate::rules::Warm;
use crate::runtime::{now_iso, now_ms};

/// Most warm requests in one round (one claim, one report).
const MAX_ROUND: usize = 25;

/// How much longer than `1 s ÷ warm_rate` the interval between warm starts is planned.
const WARM_MARGIN: f64 = 1.04;

/// The least time between two warm starts at `rate` a second, in ms (see the module docs).
fn interval_ms(rate: u32) -> f64 {
    1000.0 * WARM_MARGIN / f64::from(rate.max(1))
}

/// The next start after one planned at `planned` (ms) that began at `started` (whole ms): one
/// interval after the plan when it began on time (within the clock's millisecond), else after
/// the actual start, so a late start never lets the next one catch up.
fn next_start(planned: f64, started: i64, interval: f64) -> f64 {
    let started = started as f64;
    (if started < planned + 1.0 {
        planned
    } else {
        started
    }) + interval
}

/// Sends one round of warm requests, each started at least `interval` ms after the one
/// before (from `first` on) while earlier ones are still answering; returns (id, answered below
/// 500) for each, and when the next request may start.
async fn round(
    ctx: &Run<'_>,
    urls: &[(i64, String)],
    first: i64,
    interval: f64,
) -> (Vec<(i64, bool)>, i64) {
    let timeout = ctx.cfg.pacing.http_timeout_ms;
    let budget = &ctx.budget;
    let mut in_flight = FuturesUnordered::new();
    let mut results = Vec::with_capacity(urls.len());
    let mut next = first as f64;
    for (id, url) in urls {
        // Wait for this start, collecting answers meanwhile (which also sends the request
        // pushed last: a request goes out when first polled).
        loop {
            let wait = next.ceil() as i64 - now_ms();
            if wait <= 0 {
                break;
            }
            let delay = Delay::from(Duration::from_millis(wait as u64));
            if in_flight.is_empty() {
                delay.await;
                break;
            }
            match select(delay, in_flight.next()).await {
                Either::Left(_) => break,
                Either::Right((answer, _)) => results.extend(answer),
            }
        }
        let started = now_ms();
        in_flight.push(async move {
            let answer = crate::net::warm(url, timeout, budget).await;
            (*id, matches!(answer, Ok(a) if a.status < 500))
        });
        next = next_start(next, started, interval);
    }
    while let Some(answer) = in_flight.next().await {
        results.push(answer);
    }
    (results, next.ceil() as i64)
}

/// Per environment with a rule: its `warm` and `warm_rate`.
pub(super) fn warm_settings(
    cfg: &Config,
    api_key: &str,
    environments: &[PlanEnvironment],
) -> BTreeMap<String, Warm> {
    crate::sorted::map_of(environments.iter().filter_map(|e| {
        let w = cfg.rules.rule_for_stack(Some(api_key), &e.name)?.warm;
        (w.limit > 0).then(|| (e.name.clone(), w))
    }))
}

pub(super) async fn warm(ctx: &Run<'_>, job: &JobMessage) -> Result<Next, StepError> {
    loop {
        let room = ctx
            .budget
            .remaining_fetches()
            .saturating_sub(RESERVE_FETCHES);
        if room == 0 || !ctx.budget.allows(RESERVE_FETCHES + 1, 4) {
            return Ok(Next::Queue(Step::Warm, 0));
        }
        let claim = ctx
            .counted(
                &ctx.budget,
                ctx.ledger.claim_warm(ClaimWarmOp {
                    job_id: job.job_id.clone(),
                    attempt: job.attempt,
                    limit: room.min(MAX_ROUND) as u32,
                    now: now_iso(),
                    now_ms: now_ms(),
                    lease_ms: LEASE_MS,
                }),
            )
            .await?;
        if !claim.current {
            return Ok(Next::Stop);
        }
        if let Some(p) = &claim.progress {
            if !p.warm {
                return Ok(next_after(ctx, job, p).unwrap_or(Next::Inline(Step::Drain)));
            }
            continue;
        }
        if claim.urls.is_empty() {
            // Leased by another invocation (or nothing left): look again later.
            return Ok(Next::Queue(Step::Warm, LEASED_RETRY_S));
        }
        let interval = interval_ms(claim.rate);
        let first = claim.next_ms.max(now_ms());
        let (results, next_ms) = round(ctx, &claim.urls, first, interval).await;
        let ok = results.iter().filter(|(_, ok)| *ok).count();
        ctx.log(
            "warmed",
            serde_json::json!({"job_id": job.job_id, "environment": claim.env, "requested": results.len(), "ok": ok}),
        );
        let p = ctx
            .counted(
                &ctx.budget,
                ctx.ledger.report_warm(ReportWarmOp {
                    job_id: job.job_id.clone(),
                    attempt: job.attempt,
                    env: claim.env.clone(),
                    results,
                    next_ms,
                    now: now_iso(),
                    now_ms: now_ms(),
                }),
            )
            .await?;
        if !p.warm {
            return Ok(next_after(ctx, job, &p).unwrap_or(Next::Stop));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_second_holds_more_than_the_rate_even_with_late_arrivals() {
        // `warm_rate` is 1–50 (docs/CONTRACT.md). Starts as `round` makes them when every
        // start is on time (whole ms, rounded up).
        for rate in 1u32..=50 {
            let interval = interval_ms(rate);
            let mut planned = 0.0f64;
            let mut starts = Vec::new();
            for _ in 0..=rate * 3 {
                let at = planned.ceil() as i64;
                starts.push(at);
                planned = next_start(planned, at, interval);
            }
            // Any `rate + 1` consecutive starts span over a second by at least 39 ms: room for
            // the first to reach the origin that much later than the last.
            let r = rate as usize;
            let tightest = starts.windows(r + 1).map(|w| w[r] - w[0]).min();
            assert!(
                tightest.is_some_and(|t| t >= 1039),
                "{rate}/s: {tightest:?}"
            );
            // And not much slower than asked: the margin's 4 %, and up to a millisecond's
            // rounding per start.
            let pace = (starts.len() - 1) as f64 * 1000.0 / (starts[starts.len() - 1] as f64);
            assert!(pace >= f64::from(rate) * 0.93, "{rate}/s: {pace}");
        }
    }
}
