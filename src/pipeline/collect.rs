//! The `start` and `collect` steps: resolve the job for one delivery's scope, then read its
//! item pages, plan each and store the actions, purging alongside the rate-limited reads.

use super::drain::{log_if_ended, with_purges_alongside, Alongside};
use super::job_items::{read_page, referencing, resolve_job, stack_key, Page};
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
    if !record.open_for(job.attempt, false) {
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
                warm: super::warm::warm_settings(ctx.cfg, &api_key, &r.with_rules),
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
    let signals = Alongside::default();
    with_purges_alongside(
        ctx,
        job,
        (page_f + RESERVE_FETCHES, page_o + RESERVE_OPS),
        &signals,
        collect_pages(ctx, job, skip, api_key, branch, environments, &signals),
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
    alongside: &Alongside,
) -> Result<Next, StepError> {
    let c = Collecting::new(ctx, job, api_key, branch, environments)?;
    let window_max = c.window_max();
    // With reference look-ups to make, the scope is collected once they are done.
    let looks_up = c.looks_up();
    let mut window = Window::default();
    let mut fetched = 0usize;
    loop {
        let (more, handing_off) = match c.read_next(&mut window, skip).await? {
            Read::Page { items, more } => {
                fetched += items;
                (more, false)
            }
            Read::Nothing => (false, false),
            Read::NoRoom if window.pages == 0 => return Ok(Next::Queue(c.resume_at(skip), 0)),
            // Store what is held, then go on in a new invocation.
            Read::NoRoom => (true, true),
        };
        let next_skip = if more && !handing_off {
            skip + PAGE_SIZE
        } else {
            skip
        };
        let store_now = window.store_now(skip, next_skip, ctx.budget.hands_on());
        if more && !handing_off && window.items.len() < window_max && !store_now {
            skip = next_skip;
            continue;
        }
        let progress = std::mem::take(&mut window)
            .store(&c, next_skip, !more, !more && !looks_up)
            .await?;
        alongside.stored_window();
        if !progress.current {
            return Ok(Next::Stop);
        }
        if let Some(delay) = progress.second_pass_in_s {
            return Ok(Next::Queue(Step::SecondPass, delay));
        }
        // The purges alongside used up their share while work is pending: a fresh invocation
        // continues both, so purging keeps pace with the page reads.
        let purges_waiting = ctx.budget.hands_on() && more && progress.pending > 0;
        if handing_off || purges_waiting {
            return Ok(Next::Queue(c.resume_at(next_skip), 0));
        }
        if !more {
            return Ok(c.read_all(skip, fetched, &progress, looks_up));
        }
        skip = next_skip;
    }
}

/// What one `collect` step reads, plans and stores every window with.
struct Collecting<'r> {
    ctx: &'r Run<'r>,
    job: &'r JobMessage,
    client: Client<'r>,
    /// The job as plans see it; also the step's `api_key` and `branch`.
    plan_job: PlanJob,
    environments: Vec<PlanEnvironment>,
}

/// What trying to read the next page came to.
enum Read {
    /// A page was read into the window: its item count, and whether more pages follow.
    Page { items: usize, more: bool },
    /// No environment to read for.
    Nothing,
    /// The budget holds no further page, or the read gave way to a fresh invocation (the
    /// purges alongside ran out while it waited for its start).
    NoRoom,
}

impl<'r> Collecting<'r> {
    fn new(
        ctx: &'r Run<'r>,
        job: &'r JobMessage,
        api_key: String,
        branch: Option<String>,
        environments: Vec<PlanEnvironment>,
    ) -> Result<Self, StepError> {
        let (client, plan_job) = ctx.reader(job, &api_key, branch)?;
        Ok(Collecting {
            ctx,
            job,
            client,
            plan_job,
            environments,
        })
    }

    /// Most items a window holds: page by page on a retry, else by whether a rule resolves URLs.
    fn window_max(&self) -> usize {
        if self.job.tries > 0 {
            1
        } else if any_resolves(self.ctx.cfg, &self.plan_job.api_key, &self.environments) {
            WINDOW_ITEMS
        } else {
            STORE_ITEMS
        }
    }

    /// Whether a rule looks up references of the scope's items.
    fn looks_up(&self) -> bool {
        !referencing(self.ctx.cfg, &self.plan_job.api_key, &self.environments).is_empty()
    }

    /// Reads the page at `skip` into `window`, when the budget holds the window with it.
    async fn read_next(&self, window: &mut Window, skip: u64) -> Result<Read, StepError> {
        if self.environments.is_empty() {
            return Ok(Read::Nothing);
        }
        let cfg = self.ctx.cfg;
        let (cost_f, cost_o) = window_cost(
            cfg,
            &self.plan_job.api_key,
            &self.environments,
            window.items.len(),
        );
        if !self.ctx.may_read_page()
            || !self
                .ctx
                .budget
                .allows(cost_f + RESERVE_FETCHES, cost_o + RESERVE_OPS)
        {
            return Ok(Read::NoRoom);
        }
        self.ctx.read_page();
        let read = read_page(cfg, &self.client, &self.plan_job, skip, &self.environments).await;
        let page = match read {
            Ok(page) => page,
            // The purges alongside ran out while this read waited for its start: a fresh
            // invocation reads it (with the start kept in the isolate) and purges on.
            Err(StepError::HandOn) => {
                self.ctx.log(
                    "handed_on",
                    serde_json::json!({"job_id": self.job.job_id, "scope": self.job.scope, "skip": skip, "pages_held": window.pages}),
                );
                return Ok(Read::NoRoom);
            }
            Err(e) => {
                self.keep_read(window, skip).await;
                return Err(e);
            }
        };
        let (items, more) = (page.items.len(), page.more);
        window.add_page(page, skip);
        // A page read: from now on, a wait for the next one gives way when the purges
        // alongside run out (`Alongside`); never before the invocation has read one, so that
        // handing on always makes progress.
        self.client.give_way();
        Ok(Read::Page { items, more })
    }

    /// After a failed read: keep the pages already read, so a retry resumes at the failing
    /// one. If storing fails too, the retry reads them again.
    async fn keep_read(&self, window: &mut Window, skip: u64) {
        if window.pages == 0 {
            return;
        }
        let stored = std::mem::take(window).store(self, skip, false, false).await;
        if let Err(also) = stored {
            self.ctx.log(
                "window_not_stored",
                serde_json::json!({"job_id": self.job.job_id, "error": also.message()}),
            );
        }
    }

    /// The step again, from `skip` (in a new invocation).
    fn resume_at(self, skip: u64) -> Step {
        Step::Collect {
            skip,
            api_key: self.plan_job.api_key,
            branch: self.plan_job.branch,
            environments: self.environments,
        }
    }

    /// Every page is read (the last at `last_skip`): on to the reference look-ups, or drain.
    fn read_all(self, last_skip: u64, fetched: usize, progress: &Progress, looks_up: bool) -> Next {
        let job = self.job;
        self.ctx.log(
            "items_fetched",
            serde_json::json!({"job_id": job.job_id, "scope": job.scope, "last_skip": last_skip, "items_this_invocation": fetched, "pending_actions": progress.pending}),
        );
        if looks_up {
            return Next::Inline(Step::References {
                api_key: self.plan_job.api_key,
                branch: self.plan_job.branch,
                environments: self.environments,
            });
        }
        Next::Inline(Step::Drain)
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
    /// Adds the page read at `skip`.
    fn add_page(&mut self, page: Page, skip: u64) {
        self.items.extend(page.items);
        self.lookups.extend(page.lookups);
        if self.pages == 0 {
            self.group = group_of_skip(skip, PAGE_SIZE);
        }
        self.pages += 1;
        self.first_page_ms.get_or_insert_with(now_ms);
    }

    /// Whether the window is stored now, before reading on from `next_skip`: held long enough,
    /// or the purges alongside are out of budget (this invocation hands on after storing).
    /// A window never spans two purge groups: it is stored before the next group's first page.
    fn store_now(&self, skip: u64, next_skip: u64, handing_on: bool) -> bool {
        let group_full = next_skip >= group_end(skip, PAGE_SIZE);
        self.first_page_ms
            .is_some_and(|t| now_ms() - t >= STORE_AFTER_MS)
            || handing_on
            || group_full
    }

    /// Plans the window's items and stores their actions, with the page to resume at.
    async fn store(
        mut self,
        c: &Collecting<'_>,
        next_skip: u64,
        read_all: bool,
        collected: bool,
    ) -> Result<Progress, StepError> {
        let (ctx, envs) = (c.ctx, &c.environments);
        let plan = plan_window(ctx.cfg, &c.client, &c.plan_job, &mut self.items, envs).await?;
        ctx.effects.planned(&plan, &[]);
        store_batch(
            ctx,
            c.job,
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
