//! The `start` and `collect` steps: resolve the job for one delivery's scope, then read its
//! item pages, plan each and store the actions, purging alongside the rate-limited reads.

use std::cell::Cell;

use super::drain::{log_if_ended, with_purges_alongside};
use super::job_items::{read_page, referencing, resolve_job, stack_key};
use super::probe::probe_samples;
use super::step::{permanent, Next, Run, StepError, RESERVE_FETCHES, RESERVE_OPS};
use super::windows::{any_resolves, plan_window, window_cost, WINDOW_ITEMS};
use crate::budget::Spend;
use crate::contentstack::{client::Client, PAGE_SIZE};
use crate::event::ANY_SCOPE;
use crate::ledger::ops::{AddActionsOp, NewLookup, Progress, StartOp};
use crate::plan::{PlanEnvironment, PlanItem, PlanJob, Skipped};
use crate::purge::{actions_from_plan, group_end, group_of_skip, NewAction};
use crate::queue::{JobMessage, Step};
use crate::runtime::{now_iso, now_ms};

pub(super) async fn start(ctx: &Run<'_>, job: &JobMessage) -> Result<Next, StepError> {
    ctx.budget.spend(Spend::Durable, 1);
    let Some(record) = ctx.ledger.get(&job.job_id).await? else {
        ctx.log("record_missing", serde_json::json!({"job_id": job.job_id}));
        return Ok(Next::Stop);
    };
    if record.attempts != job.attempt || record.status.is_final() || record.on_failure_running {
        return Ok(Next::Stop);
    }
    let scope = record.scopes.get(&job.scope).cloned().unwrap_or_default();
    if scope.collected {
        return Ok(Next::Inline(Step::Drain));
    }
    let api_key = stack_key(ctx.cfg, job).ok_or_else(|| {
        permanent("the webhook named no api_key and several stacks are configured".into())
    })?;
    let client = Client::new(ctx.cfg, ctx.env, &ctx.budget, &api_key)?;
    let channel = (job.scope != ANY_SCOPE).then_some(job.scope.as_str());
    let r = resolve_job(
        ctx.cfg,
        &client,
        &api_key,
        &job.job_id,
        channel,
        &record.hinted_environments,
    )
    .await?;
    let progress: Progress = ctx
        .counted(
            &ctx.budget,
            ctx.ledger.start(StartOp {
                job_id: job.job_id.clone(),
                attempt: job.attempt,
                scope: job.scope.clone(),
                now: now_iso(),
                now_ms: now_ms(),
                environments: r.names.clone(),
                items: r.items,
                verify_sample: probe_samples(ctx.cfg, &api_key, &r.with_rules),
                subrequests: ctx.budget.used() as u64,
            }),
        )
        .await?;
    if !progress.current {
        return Ok(Next::Stop);
    }
    ctx.log(
        "started",
        serde_json::json!({"job_id": job.job_id, "attempt": job.attempt, "scope": job.scope, "environments": r.names, "items": r.items, "branch": r.branch}),
    );
    Ok(Next::Inline(Step::Collect {
        skip: scope.next_skip,
        api_key,
        branch: r.branch,
        environments: r.with_rules,
    }))
}

pub(super) async fn collect(
    ctx: &Run<'_>,
    job: &JobMessage,
    skip: u64,
    api_key: String,
    branch: Option<String>,
    environments: Vec<PlanEnvironment>,
) -> Result<Next, StepError> {
    // Half of what is left beyond the next page purges alongside the page reads; the page
    // reads keep the rest, so collection always makes progress.
    let (page_f, page_o) = window_cost(ctx.cfg, &api_key, &environments, 0);
    let key = api_key.clone();
    let spent = Cell::new(false);
    with_purges_alongside(
        ctx,
        job,
        &key,
        (page_f + RESERVE_FETCHES, page_o + RESERVE_OPS),
        &spent,
        collect_pages(ctx, job, skip, api_key, branch, environments, &spent),
    )
    .await
}

/// Reads item pages from `skip` on, plans them in windows and stores each window's actions.
/// Where a rule resolves URLs, a window holds up to [`WINDOW_ITEMS`] items (what the budget
/// allows), looked up together; otherwise up to [`STORE_ITEMS`] items, stored at the latest
/// [`STORE_AFTER_MS`] after its first page was read. A window is stored with
/// the `skip` after its last page, so a retry resumes after the last window stored. A retried
/// step plans page by page (the smallest window).
async fn collect_pages(
    ctx: &Run<'_>,
    job: &JobMessage,
    mut skip: u64,
    api_key: String,
    branch: Option<String>,
    environments: Vec<PlanEnvironment>,
    purges_spent: &Cell<bool>,
) -> Result<Next, StepError> {
    let client = Client::new(ctx.cfg, ctx.env, &ctx.budget, &api_key)?.with_branch(branch.clone());
    let plan_job = PlanJob {
        job_id: job.job_id.clone(),
        api_key: api_key.clone(),
        branch: branch.clone(),
    };
    let window_max = if job.tries > 0 {
        1
    } else if any_resolves(ctx.cfg, &api_key, &environments) {
        WINDOW_ITEMS
    } else {
        STORE_ITEMS
    };
    // With reference look-ups to make, the scope is collected once they are done.
    let looks_up = !referencing(ctx.cfg, &api_key, &environments).is_empty();
    let mut window = Window::default();
    let mut fetched = 0usize;
    loop {
        let mut more = false;
        let mut handing_off = false;
        if !environments.is_empty() {
            let (cost_f, cost_o) =
                window_cost(ctx.cfg, &api_key, &environments, window.items.len());
            if ctx
                .budget
                .allows(cost_f + RESERVE_FETCHES, cost_o + RESERVE_OPS)
            {
                let page = match read_page(ctx.cfg, &client, &plan_job, skip, &environments).await {
                    Ok(page) => page,
                    Err(e) => {
                        // Keep the pages already read: a retry resumes at the failing one. If
                        // storing fails too, the retry reads them again.
                        if window.pages > 0 {
                            let stored = window
                                .store(
                                    ctx,
                                    job,
                                    &client,
                                    &plan_job,
                                    &environments,
                                    skip,
                                    false,
                                    false,
                                )
                                .await;
                            if let Err(also) = stored {
                                ctx.log(
                                    "window_not_stored",
                                    serde_json::json!({"job_id": job.job_id, "error": also.message()}),
                                );
                            }
                        }
                        return Err(e);
                    }
                };
                fetched += page.items.len();
                more = page.more;
                window.items.extend(page.items);
                window.lookups.extend(page.lookups);
                if window.pages == 0 {
                    window.group = group_of_skip(skip, PAGE_SIZE);
                }
                window.pages += 1;
                window.first_page_ms.get_or_insert_with(now_ms);
            } else if window.pages == 0 {
                return Ok(Next::Queue(
                    Step::Collect {
                        skip,
                        api_key,
                        branch,
                        environments,
                    },
                    0,
                ));
            } else {
                // Store what is held, then go on in a new invocation.
                handing_off = true;
                more = true;
            }
        }
        let next_skip = if more && !handing_off {
            skip + PAGE_SIZE
        } else {
            skip
        };
        // Stored now: held long enough, or the purges alongside are out of budget (this
        // invocation hands on after storing).
        // A window never spans two purge groups: it is stored before the next group's first page.
        let group_full = next_skip >= group_end(skip, PAGE_SIZE);
        let store_now = window
            .first_page_ms
            .is_some_and(|t| now_ms() - t >= STORE_AFTER_MS)
            || purges_spent.get()
            || group_full;
        if more && !handing_off && window.items.len() < window_max && !store_now {
            skip = next_skip;
            continue;
        }
        let progress = std::mem::take(&mut window)
            .store(
                ctx,
                job,
                &client,
                &plan_job,
                &environments,
                next_skip,
                !more,
                !more && !looks_up,
            )
            .await?;
        if !progress.current {
            return Ok(Next::Stop);
        }
        if let Some(delay) = progress.second_pass_in_s {
            return Ok(Next::Queue(Step::SecondPass, delay));
        }
        // The purges alongside used up their share while work is pending: a fresh invocation
        // continues both, so purging keeps pace with the page reads.
        let purges_waiting = purges_spent.get() && more && progress.pending > 0;
        if handing_off || purges_waiting {
            return Ok(Next::Queue(
                Step::Collect {
                    skip: next_skip,
                    api_key,
                    branch,
                    environments,
                },
                0,
            ));
        }
        if !more {
            ctx.log(
                "items_fetched",
                serde_json::json!({"job_id": job.job_id, "scope": job.scope, "last_skip": skip, "items_this_invocation": fetched, "pending_actions": progress.pending}),
            );
            if looks_up {
                return Ok(Next::Inline(Step::References {
                    api_key,
                    branch,
                    environments,
                }));
            }
            return Ok(Next::Inline(Step::Drain));
        }
        skip = next_skip;
    }
}

/// Items a window holds where no rule resolves URLs: pages are stored a few at a time (one
/// ledger call for several pages), never held longer than [`STORE_AFTER_MS`], so the purges
/// alongside get their actions soon.
const STORE_ITEMS: usize = 8 * PAGE_SIZE as usize;
/// Longest a read page waits to be stored (about one purge round alongside).
const STORE_AFTER_MS: i64 = 800;

/// Items read and not yet planned.
#[derive(Default)]
struct Window {
    items: Vec<PlanItem>,
    lookups: Vec<NewLookup>,
    pages: usize,
    /// The purge group of its pages.
    group: u64,
    /// When its first page was read.
    first_page_ms: Option<i64>,
}

impl Window {
    /// Plans the window's items and stores their actions, with the page to resume at.
    #[allow(clippy::too_many_arguments)]
    async fn store(
        mut self,
        ctx: &Run<'_>,
        job: &JobMessage,
        client: &Client<'_>,
        plan_job: &PlanJob,
        environments: &[PlanEnvironment],
        next_skip: u64,
        read_all: bool,
        collected: bool,
    ) -> Result<Progress, StepError> {
        let plan = plan_window(ctx.cfg, client, plan_job, &mut self.items, environments).await?;
        ctx.effects.planned(&plan, &[]);
        store_batch(
            ctx,
            job,
            Batch {
                items: self.items.len() as u64,
                actions: actions_from_plan(&plan),
                skipped: plan.skipped,
                lookups: self.lookups,
                next_skip,
                collected,
                group: self.group,
                read_all,
                ..Batch::default()
            },
        )
        .await
    }
}

/// What one `AddActions` stores.
#[derive(Default)]
pub(super) struct Batch {
    /// Job items read and planned for it.
    pub items: u64,
    pub actions: Vec<NewAction>,
    pub skipped: Vec<Skipped>,
    pub lookups: Vec<NewLookup>,
    pub fell_back: Vec<String>,
    pub next_skip: u64,
    pub collected: bool,
    /// The purge group of `actions` (`purge::group_of_skip`, or `purge::REFERRERS_GROUP`).
    pub group: u64,
    /// Every job-items page of the scope is stored.
    pub read_all: bool,
}

/// Stores one batch of the job's work in the ledger.
pub(super) async fn store_batch(
    ctx: &Run<'_>,
    job: &JobMessage,
    b: Batch,
) -> Result<Progress, StepError> {
    let progress = ctx
        .counted(
            &ctx.budget,
            ctx.ledger.add_actions(AddActionsOp {
                job_id: job.job_id.clone(),
                attempt: job.attempt,
                scope: job.scope.clone(),
                items: b.items,
                actions: b.actions,
                skipped: b.skipped,
                next_skip: b.next_skip,
                collected: b.collected,
                lookups: b.lookups,
                fell_back: b.fell_back,
                group: b.group,
                read_all: b.read_all,
                subrequests: ctx.budget.used() as u64 + 1,
                now: now_iso(),
                now_ms: now_ms(),
            }),
        )
        .await?;
    log_if_ended(ctx, job, &progress);
    Ok(progress)
}
