//! The `references` step (docs/CONTRACT.md, "Reference-aware purge"): after a scope's item
//! pages are planned, look up who references its changed items, plan those referrers with the
//! rule's `entry` templates, and go up the chain to the rule's `depth`. The queue of look-ups
//! lives in the ledger, so the work fans out across invocations like item pages do; the dry run
//! runs the same look-ups in memory ([`look_up_round`] is shared).
//!
//! Choices where the contract is silent:
//! - Look-ups of one round run one after another, paced by the stack's shared rate limiter
//!   (a caller that waits for the window reserves several starts per limiter call, see
//!   [`crate::net::wait_slot`]; concurrent calls would each reserve their own and drop most).
//! - A look-up answered 404 (the item is gone) finds no referrers; a look-up refused (another
//!   4xx) is an error on the record and runs the environment's `on_failure` purge.
//! - Referrers' URLs (for `{url}` templates) are resolved like job items', batched per content
//!   type and locale, at the version published to the environment.

use super::collect::{store_batch, Batch};
use super::drain::{with_purges_alongside, Alongside};
use super::job_items::referencing;
use super::step::{Next, Run, StepError, LEASED_RETRY_S, LEASE_MS, RESERVE_FETCHES, RESERVE_OPS};
use super::windows::resolve_item_urls;
use crate::budget::Spend;
use crate::config::Config;
use crate::contentstack::client::Client;
use crate::contentstack::references::{published_referrers, Referrer};
use crate::ledger::ops::{
    ClaimLookupsOp, ClaimedLookup, FoundReferrer, LookupClaim, LookupDone, Progress,
    ReportLookupsOp,
};
use crate::net::NetError;
use crate::plan::{plan, plan_failure, Plan, PlanEnvironment, PlanJob};
use crate::purge::actions_from_plan;
use crate::purge::REFERRERS_GROUP;
use crate::queue::{JobMessage, Step};
use crate::runtime::{now_iso, now_ms};

/// Look-ups claimed per round at most.
pub(super) const LOOKUPS_PER_ROUND: usize = 20;
/// External fetches one look-up may cost: the look-up and its share of the referrers' URL
/// look-ups.
pub(super) const FETCHES_PER_LOOKUP: usize = 3;

/// Referrers one look-up may plan for an environment; an entry referenced by more is handled
/// like a truncated job (the environment's `on_failure` purge), which keeps every ledger
/// request small.
pub(super) const MAX_REFERRERS_PER_LOOKUP: usize = 1_000;

/// What one look-up found: its referrers, each planned on its own.
pub(super) struct Looked {
    pub id: i64,
    pub refused: bool,
    pub too_many: bool,
    pub referrers: Vec<(Referrer, Plan)>,
    /// Their own referrers are looked up too (below the rule's `depth`).
    pub follow: bool,
}

impl Looked {
    fn nothing(id: i64, refused: bool) -> Looked {
        Looked {
            id,
            refused,
            too_many: false,
            referrers: Vec::new(),
            follow: false,
        }
    }

    /// As the ledger stores it.
    pub fn into_done(self) -> LookupDone {
        let follow = self.follow;
        LookupDone {
            id: self.id,
            refused: self.refused,
            too_many: self.too_many,
            referrers: self
                .referrers
                .into_iter()
                .map(|(r, p)| FoundReferrer {
                    subject: r.subject(),
                    version: r.version,
                    follow,
                    actions: actions_from_plan(&p),
                })
                .collect(),
        }
    }
}

/// Looks up `lookups` (each in its environment), resolves the referrers' URLs where the rule
/// wants them, and plans each referrer on its own so the ledger can keep only new ones.
/// Returns what each found and the errors to record.
pub(super) async fn look_up_round(
    cfg: &Config,
    client: &Client<'_>,
    job: &PlanJob,
    environments: &[PlanEnvironment],
    lookups: &[ClaimedLookup],
) -> Result<(Vec<Looked>, Vec<String>), StepError> {
    let ruled = referencing(cfg, &job.api_key, environments);
    // One after another: a caller waiting for the stack's window reserves several start slots
    // per limiter call, which concurrent calls would each reserve and mostly drop.
    let mut answers = Vec::with_capacity(lookups.len());
    for l in lookups {
        answers.push(client.references(&l.subject).await);
    }
    let mut found: Vec<(usize, Vec<Referrer>)> = Vec::new();
    let mut looked = Vec::new();
    let mut errors = Vec::new();
    for (n, (l, answer)) in lookups.iter().zip(answers).enumerate() {
        let Some((env, _)) = ruled.iter().find(|(e, _)| e.name == l.env) else {
            // The rule changed since the look-up was stored: nothing to plan it with.
            looked.push(Looked::nothing(l.id, false));
            continue;
        };
        match answer {
            Ok(Some(v)) => match published_referrers(&v, &env.uid, l.subject.locale.as_deref()) {
                Ok(r) if r.len() > MAX_REFERRERS_PER_LOOKUP => {
                    errors.push(format!(
                        "{} is referenced by {} entries in {} (more than {MAX_REFERRERS_PER_LOOKUP}): ran on_failure",
                        l.subject.uid,
                        r.len(),
                        l.env
                    ));
                    looked.push(Looked {
                        too_many: true,
                        ..Looked::nothing(l.id, false)
                    });
                }
                Ok(r) => found.push((n, r)),
                Err(e) => {
                    errors.push(format!("references of {}: {e}", l.subject.uid));
                    looked.push(Looked::nothing(l.id, true));
                }
            },
            Ok(None) => looked.push(Looked::nothing(l.id, false)),
            Err(NetError::Rejected { status, .. }) => {
                errors.push(format!(
                    "references of {} refused (HTTP {status}): ran on_failure for {}",
                    l.subject.uid, l.env
                ));
                looked.push(Looked::nothing(l.id, true));
            }
            Err(e) => return Err(e.into()),
        }
    }
    // Every referrer of the round as a plan item, URLs resolved together.
    let mut items = Vec::new();
    for (n, refs) in &found {
        if let Some((env, _)) = ruled.iter().find(|(e, _)| e.name == lookups[*n].env) {
            items.extend(refs.iter().map(|r| r.item(&env.uid)));
        }
    }
    let envs: Vec<PlanEnvironment> = ruled.iter().map(|(e, _)| e.clone()).collect();
    resolve_item_urls(cfg, client, &job.api_key, &mut items, &envs).await?;
    let mut items = items.into_iter();
    for (n, refs) in found {
        let l = &lookups[n];
        let Some((env, rule)) = ruled.iter().find(|(e, _)| e.name == l.env) else {
            continue;
        };
        let mut planned = Vec::with_capacity(refs.len());
        for r in refs {
            let Some(item) = items.next() else { break };
            let envs = std::slice::from_ref(env);
            planned.push((r, plan(job, std::slice::from_ref(&item), envs, &cfg.rules)));
        }
        looked.push(Looked {
            id: l.id,
            refused: false,
            too_many: false,
            referrers: planned,
            follow: l.depth + 1 < rule.depth,
        });
    }
    Ok((looked, errors))
}

/// The step: claim → look up → report, until this scope's environments have nothing left to
/// look up; purge rounds run alongside. Then the scope is collected.
pub(super) async fn references(
    ctx: &Run<'_>,
    job: &JobMessage,
    api_key: String,
    branch: Option<String>,
    environments: Vec<PlanEnvironment>,
) -> Result<Next, StepError> {
    with_purges_alongside(
        ctx,
        job,
        (
            FETCHES_PER_LOOKUP * LOOKUPS_PER_ROUND + RESERVE_FETCHES,
            RESERVE_OPS * 2,
        ),
        &Alongside::default(),
        rounds(ctx, job, api_key, branch, environments),
    )
    .await
}

async fn rounds(
    ctx: &Run<'_>,
    job: &JobMessage,
    api_key: String,
    branch: Option<String>,
    environments: Vec<PlanEnvironment>,
) -> Result<Next, StepError> {
    let r = Referencing::new(ctx, job, api_key, branch, environments)?;
    loop {
        let Some(room) = r.room() else {
            return Ok(Next::Queue(r.again(), 0));
        };
        let claim = r.claim(room).await?;
        if !claim.current {
            return Ok(Next::Stop);
        }
        if claim.lookups.is_empty() {
            if !claim.fall_back.is_empty() {
                let progress = r.fall_back(claim.fall_back).await?;
                if !progress.current {
                    return Ok(Next::Stop);
                }
                continue;
            }
            if claim.waiting > 0 {
                // Leased by another invocation: look again when its lease may have run out.
                return Ok(Next::Queue(r.again(), LEASED_RETRY_S));
            }
            return r.collected().await;
        }
        let progress = r.look_up(&claim.lookups).await?;
        if !progress.current {
            return Ok(Next::Stop);
        }
    }
}

/// What one `references` step runs its rounds with.
struct Referencing<'r> {
    ctx: &'r Run<'r>,
    job: &'r JobMessage,
    client: Client<'r>,
    plan_job: PlanJob,
    /// Each referencing environment with its rule's `max_lookups`.
    limits: Vec<(String, u32)>,
    api_key: String,
    branch: Option<String>,
    environments: Vec<PlanEnvironment>,
}

impl<'r> Referencing<'r> {
    fn new(
        ctx: &'r Run<'r>,
        job: &'r JobMessage,
        api_key: String,
        branch: Option<String>,
        environments: Vec<PlanEnvironment>,
    ) -> Result<Self, StepError> {
        let (client, plan_job) = ctx.reader(job, &api_key, branch.clone())?;
        let limits: Vec<(String, u32)> = referencing(ctx.cfg, &api_key, &environments)
            .into_iter()
            .map(|(e, r)| (e.name, r.max_lookups))
            .collect();
        Ok(Referencing {
            ctx,
            job,
            client,
            plan_job,
            limits,
            api_key,
            branch,
            environments,
        })
    }

    /// The step again (in a new invocation).
    fn again(&self) -> Step {
        Step::References {
            api_key: self.api_key.clone(),
            branch: self.branch.clone(),
            environments: self.environments.clone(),
        }
    }

    /// Look-ups the budget holds in this round; `None` when it holds no round.
    fn room(&self) -> Option<usize> {
        let budget = &self.ctx.budget;
        let room = budget.remaining_fetches().saturating_sub(RESERVE_FETCHES) / FETCHES_PER_LOOKUP;
        if room == 0 || !budget.allows(RESERVE_FETCHES, RESERVE_OPS * 2) {
            return None;
        }
        Some(room)
    }

    /// Claims up to `room` look-ups (at most [`LOOKUPS_PER_ROUND`]).
    async fn claim(&self, room: usize) -> Result<LookupClaim, StepError> {
        self.ctx.budget.spend(Spend::Durable, 1);
        let claim = self
            .ctx
            .ledger
            .claim_lookups(ClaimLookupsOp {
                job_id: self.job.job_id.clone(),
                attempt: self.job.attempt,
                environments: self.limits.clone(),
                limit: room.min(LOOKUPS_PER_ROUND) as u32,
                now_ms: now_ms(),
                lease_ms: LEASE_MS,
            })
            .await?;
        Ok(claim)
    }

    /// Truncated or refused: the environments' on_failure purge, stored once.
    async fn fall_back(&self, fall_back: Vec<String>) -> Result<Progress, StepError> {
        let (ctx, job) = (self.ctx, self.job);
        let envs: Vec<PlanEnvironment> = self
            .environments
            .iter()
            .filter(|e| fall_back.contains(&e.name))
            .cloned()
            .collect();
        let p = plan_failure(&self.plan_job, &envs, &ctx.cfg.rules);
        ctx.effects.planned(&p, &fall_back);
        ctx.log(
            "references_fall_back",
            serde_json::json!({"job_id": job.job_id, "environments": fall_back}),
        );
        let batch = Batch {
            actions: actions_from_plan(&p),
            skipped: p.skipped,
            fell_back: fall_back,
            group: REFERRERS_GROUP,
            read_all: true,
            ..Batch::default()
        };
        store_batch(ctx, job, batch).await
    }

    /// Nothing is left to look up: the scope is collected.
    async fn collected(&self) -> Result<Next, StepError> {
        let (ctx, job) = (self.ctx, self.job);
        let batch = Batch {
            collected: true,
            group: REFERRERS_GROUP,
            read_all: true,
            ..Batch::default()
        };
        let progress = store_batch(ctx, job, batch).await?;
        ctx.log(
            "references_done",
            serde_json::json!({"job_id": job.job_id, "scope": job.scope}),
        );
        Ok(after_collection(&progress))
    }

    /// Runs the claimed look-ups and reports what they found.
    async fn look_up(&self, lookups: &[ClaimedLookup]) -> Result<Progress, StepError> {
        let (ctx, job) = (self.ctx, self.job);
        let (looked, errors) = look_up_round(
            ctx.cfg,
            &self.client,
            &self.plan_job,
            &self.environments,
            lookups,
        )
        .await?;
        for (_, p) in looked.iter().flat_map(|l| l.referrers.iter()) {
            ctx.effects.planned(p, &[]);
        }
        let skipped = looked
            .iter()
            .flat_map(|l| {
                l.referrers
                    .iter()
                    .flat_map(|(_, p)| p.skipped.iter().cloned())
            })
            .collect();
        ctx.counted(
            &ctx.budget,
            ctx.ledger.report_lookups(ReportLookupsOp {
                job_id: job.job_id.clone(),
                attempt: job.attempt,
                done: looked.into_iter().map(Looked::into_done).collect(),
                skipped,
                errors,
                subrequests: ctx.budget.used() as u64 + 1,
                now: now_iso(),
                now_ms: now_ms(),
            }),
        )
        .await
    }
}

/// Where a scope goes once it is collected: the second pass when it became due, else drain.
pub(super) fn after_collection(progress: &Progress) -> Next {
    match progress.second_pass_in_s {
        Some(delay) => Next::Queue(Step::SecondPass, delay),
        None => Next::Inline(Step::Drain),
    }
}
