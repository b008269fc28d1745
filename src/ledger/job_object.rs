//! One job's Durable Object, named by the job id: its deliveries (dedupe), record, purge
//! actions and reference look-ups in SQLite ([`super::store`]), and the alarm that drives the
//! job when it makes no progress and forgets it after `LEDGER_RETENTION_DAYS`. A thin shell:
//! each request decodes one operation, runs its store function, tells the job index when the
//! job's attempt or status changed ([`store::index_change`]), and answers the typed result.
//!
//! The index learns of a new job off the webhook's path (`wait_until` after the answer); when
//! telling it fails, the next operation or the alarm tells it again. One tell at a time per
//! object: an operation that finds one under way leaves its change to it (the tell under way
//! reads the change again after each put), so operations that interleave while the index is
//! being told do not tell it the same change twice.

use std::cell::Cell;
use std::rc::Rc;

use serde::Serialize;
use worker::{durable_object, DurableObject, Env, Request, Response, Result, SqlStorage, State};

use super::ops::LedgerOp;
use super::store::{self, Settings, SCHEMA};
use super::{push_errors, JobRecord};
use crate::lifecycle::Next;

/// Settings from the configuration (defaults when it is broken).
pub(super) fn settings(env: &Env) -> Settings {
    Settings::of(crate::runtime::config(env).as_ref().as_ref().ok())
}

/// The Durable Object class.
#[durable_object]
pub struct Job {
    state: State,
    env: Env,
    /// Whether a tell of the index is under way in this instance ([`tell_index`]).
    telling: Rc<Cell<bool>>,
}

impl DurableObject for Job {
    fn new(state: State, env: Env) -> Self {
        let sql = state.storage().sql();
        for stmt in SCHEMA.iter().chain(super::lookups::SCHEMA) {
            if let Err(e) = sql.exec(stmt, None) {
                worker::console_error!(
                    "{{\"stage\":\"ledger_schema\",\"error\":{:?}}}",
                    e.to_string()
                );
            }
        }
        Job {
            state,
            env,
            telling: Rc::new(Cell::new(false)),
        }
    }

    /// Forgets the jobs past their retention, drives jobs that made no progress for
    /// `PROGRESS_TIMEOUT_SECONDS` again, and keeps watching while any job is unfinished (or
    /// until the next kept job expires).
    async fn alarm(&self) -> Result<Response> {
        let settings = settings(&self.env);
        let sql = self.state.storage().sql();
        if store::is_scratch(&sql)? {
            // A dry run that did not discard its job (its request died): nothing to keep.
            self.state.storage().delete_all().await?;
            return Response::ok("");
        }
        let now = js_sys::Date::now() as i64;
        store::expire(&sql, now, settings.retention_ms)?;
        let next_expiry = store::next_expiry(&sql, settings.retention_ms)?;
        let rows: Vec<store::RecordRow> = sql
            .exec(
                "SELECT record, seq, collected FROM jobs WHERE finished_ms IS NULL ORDER BY seq DESC LIMIT 500",
                None,
            )?
            .to_array()?;
        let mut unfinished = false;
        for row in rows {
            let Ok(mut rec) = serde_json::from_str::<JobRecord>(&row.record) else {
                continue;
            };
            if rec.status.is_final() {
                continue;
            }
            unfinished = true;
            if !rec.is_stalled(now, settings.progress_timeout_ms) {
                continue;
            }
            self.drive(&sql, &mut rec, settings, now).await?;
        }
        // Untold changes (an expiry above, or a report that failed) are told now, or retried
        // at the next watch.
        let told = tell_index(&self.telling, &self.env, &sql).await;
        let watch = (unfinished || !told).then(|| now + settings.alarm_every_ms() as i64);
        let next = match (watch, next_expiry) {
            (Some(w), Some(e)) => Some(w.min(e)),
            (w, e) => w.or(e),
        };
        if let Some(at) = next {
            let wait = (at - now).max(1_000) as u64;
            self.state
                .storage()
                .set_alarm(std::time::Duration::from_millis(wait))
                .await?;
        }
        Response::ok("")
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        // Text through serde_json (not `req.json()`, which goes through serde_wasm_bindgen
        // and would link a second deserializer for every operation type).
        let op: LedgerOp = match serde_json::from_str(&req.text().await.unwrap_or_default()) {
            Ok(op) => op,
            Err(e) => return Response::error(format!("bad ledger op: {e}"), 400),
        };
        let settings = settings(&self.env);
        let sql = self.state.storage().sql();
        if matches!(op, LedgerOp::Discard) {
            self.state.storage().delete_all().await?;
            return Response::from_json(&());
        }
        let watch = matches!(op, LedgerOp::Accept(_) | LedgerOp::Replay(_));
        // Retention is applied before anything reads or takes in a job, so an expired job is
        // gone at once, whenever the alarm runs.
        if matches!(
            op,
            LedgerOp::Accept(_) | LedgerOp::Replay(_) | LedgerOp::Get(_)
        ) {
            if let Err(e) = store::expire(&sql, js_sys::Date::now() as i64, settings.retention_ms) {
                return Response::error(e.to_string(), 500);
            }
        }
        let new_job = matches!(op, LedgerOp::Accept(_));
        match dispatch(&sql, op, settings) {
            Ok(answer) => {
                if new_job {
                    // Off the webhook's path: answered first, the index told after.
                    let env = self.env.clone();
                    let storage = self.state.storage();
                    let telling = self.telling.clone();
                    self.state.wait_until(async move {
                        tell_index(&telling, &env, &storage.sql()).await;
                    });
                } else {
                    tell_index(&self.telling, &self.env, &sql).await;
                }
                // Watch new work: the alarm drives a job whose messages were lost. An alarm set
                // only for the next expiry (days away) is brought forward.
                let due = js_sys::Date::now() as i64 + settings.alarm_every_ms() as i64;
                if watch
                    && self
                        .state
                        .storage()
                        .get_alarm()
                        .await?
                        .is_none_or(|at| at > due)
                {
                    self.state
                        .storage()
                        .set_alarm(std::time::Duration::from_millis(settings.alarm_every_ms()))
                        .await?;
                }
                Ok(answer)
            }
            Err(e) => Response::error(e.to_string(), 500),
        }
    }
}

/// Tells the job index what changed since it last heard ([`store::index_change`]), until it
/// agrees (a change made while the index was being told is told next). Returns false when the
/// index could not be told; the next operation or the alarm tries again.
async fn tell_index(telling: &Cell<bool>, env: &Env, sql: &SqlStorage) -> bool {
    // Under way already: that tell reads the change again after its put (no await between this
    // check and its last read), so it tells this one too. Not known to be told: false.
    if telling.replace(true) {
        return false;
    }
    let told = tell_changes(env, sql).await;
    telling.set(false);
    told
}

/// [`tell_index`]'s work, up to three changes in a row.
async fn tell_changes(env: &Env, sql: &SqlStorage) -> bool {
    for _ in 0..3 {
        let change = match store::index_change(sql) {
            Ok(None) => return true,
            Ok(Some(c)) => c,
            Err(_) => return false,
        };
        let told = match super::client::IndexClient::new(env) {
            Ok(index) => index.put(change.clone()).await,
            Err(e) => Err(e),
        };
        if let Err(e) = told.and_then(|_| store::index_told(sql, &change)) {
            crate::runtime::log(
                "index_failed",
                serde_json::json!({"job_id": change.job_id, "error": e.to_string()}),
            );
            return false;
        }
        crate::runtime::log(
            "index_told",
            serde_json::json!({"job_id": change.job_id, "status": change.told.as_ref().map(|t| t.1.as_str())}),
        );
    }
    false
}

/// Runs one operation and answers its result as JSON.
fn dispatch(sql: &SqlStorage, op: LedgerOp, settings: Settings) -> Result<Response> {
    fn answer<T: Serialize>(v: Result<T>) -> Result<Response> {
        Response::from_json(&v?)
    }
    match op {
        LedgerOp::Accept(o) => answer(store::accept(sql, o, settings)),
        LedgerOp::Rollback(o) => answer(store::rollback(sql, o)),
        LedgerOp::Get(o) => answer(store::get(sql, o)),
        LedgerOp::Replay(o) => answer(store::replay(sql, o)),
        LedgerOp::Start(o) => answer(store::start(sql, o, settings)),
        LedgerOp::AddActions(o) => answer(store::add_actions(sql, o, settings)),
        LedgerOp::Claim(o) => answer(store::claim(sql, o, settings)),
        LedgerOp::Report(o) => answer(store::report(sql, o, settings)),
        LedgerOp::SecondPass(o) => answer(store::second_pass(sql, o, settings)),
        LedgerOp::Fail(o) => answer(store::fail(sql, o, settings)),
        LedgerOp::ClaimLookups(o) => answer(store::claim_lookups(sql, o)),
        LedgerOp::ReportLookups(o) => answer(store::report_lookups(sql, o, settings)),
        LedgerOp::ClaimVerification(o) => answer(store::claim_verification(sql, o)),
        LedgerOp::ReportVerification(o) => answer(store::report_verification(sql, o, settings)),
        LedgerOp::ClaimWarm(o) => answer(store::claim_warm(sql, o, settings)),
        LedgerOp::ReportWarm(o) => answer(store::report_warm(sql, o, settings)),
        // Handled before dispatch (it deletes the storage).
        LedgerOp::Discard => answer(Ok(())),
    }
}

impl Job {
    /// Sends a stalled job's next messages again; after `QUEUE_MAX_ATTEMPTS` drives it goes to
    /// the dead-letter queue (which fails it and runs `on_failure`), and one drive later it is
    /// marked failed here if even that did not happen.
    async fn drive(
        &self,
        sql: &SqlStorage,
        rec: &mut JobRecord,
        settings: Settings,
        now: i64,
    ) -> Result<()> {
        use crate::queue::{enqueue, send_to, JobMessage, Step};
        let now_iso = crate::runtime::now_iso();
        rec.drives += 1;
        rec.progress_ms = now;
        let base = JobMessage::start(&rec.job_id, rec.action, rec.api_key.clone(), rec.attempts);
        let mut sent = true;
        let mut what = "drive";
        let fail_here = |rec: &mut JobRecord, why: String| -> Result<()> {
            push_errors(&mut rec.errors, [why]);
            store::end_failed(sql, rec, &now_iso, now)
        };
        if rec.on_failure_running && rec.drives > settings.max_drives {
            fail_here(
                rec,
                "the on_failure purge made no progress and was given up".to_string(),
            )?;
            what = "gave_up_on_failure";
        } else if rec.on_failure_running {
            sent = enqueue(&self.env, &base.at(Step::Drain), 0).await.is_ok();
        } else if rec.drives > settings.max_drives + 1 {
            fail_here(
                rec,
                format!(
                    "no progress after {} drives by the ledger's alarm",
                    settings.max_drives
                ),
            )?;
            what = "failed";
        } else if rec.drives > settings.max_drives {
            let mut m = base.clone();
            m.last_error = Some(format!(
                "no progress after {} drives by the ledger's alarm",
                settings.max_drives
            ));
            sent = send_to(&self.env, crate::queue::DEAD_LETTER_QUEUE, &m, 0)
                .await
                .is_ok();
            what = "dead_letter";
        } else {
            let mut messages = Vec::new();
            if !rec.all_collected() {
                for scope in rec.uncollected_scopes() {
                    let mut m = base.clone();
                    m.scope = scope;
                    messages.push(m);
                }
            } else {
                // The same answer the steps obey ([`crate::lifecycle::Next`]).
                messages.push(base.at(match rec.next() {
                    Next::Verify => Step::Verify,
                    Next::SecondPassAt { .. } => Step::SecondPass,
                    Next::Warm => Step::Warm,
                    Next::Work | Next::Plan | Next::Finish => Step::Drain,
                }));
            }
            for m in &messages {
                sent &= enqueue(&self.env, m, 0).await.is_ok();
            }
        }
        crate::runtime::log(
            "redriven",
            serde_json::json!({"job_id": rec.job_id, "attempt": rec.attempts, "drives": rec.drives, "action": what, "sent": sent}),
        );
        store::store(sql, rec)
    }
}
