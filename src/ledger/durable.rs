//! The ledger Durable Object (SQLite storage) and the client the Worker uses to reach it.
//!
//! One instance (`"ledger"`) holds deliveries (dedupe), job records and the per-attempt purge
//! actions. Every operation runs synchronously against SQLite inside one request, so a check
//! and the write that follows it cannot interleave with another delivery.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use worker::{
    durable_object, DurableObject, Env, Method, Request, RequestInit, Response, Result, SqlStorage,
    SqlStorageValue, State,
};

use super::{cap_payload_value, push_errors, JobRecord, JobStatus, PassOutcome};
use crate::counts::PurgedCounts;
use crate::plan::Skipped;
use crate::purge::{ActionKind, ActionResult, ClaimedAction, NewAction, Outcome};

/// Name of the single ledger instance.
pub const LEDGER_NAME: &str = "ledger";
/// Jobs kept before the oldest records are dropped.
const MAX_JOBS: i64 = 5000;

/// Operations the ledger understands.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum LedgerOp {
    Accept {
        key: String,
        record: Box<JobRecord>,
    },
    /// Undoes an `Accept` or `Replay` whose queue message could not be sent: forgets the
    /// delivery key and puts back the record as it was (or removes a new one).
    Rollback {
        key: Option<String>,
        job_id: String,
        previous: Option<Box<JobRecord>>,
    },
    Get {
        job_id: String,
    },
    List {
        limit: u32,
        cursor: Option<i64>,
    },
    Replay {
        job_id: String,
        now: String,
    },
    Start {
        job_id: String,
        attempt: u32,
        scope: String,
        now: String,
        now_ms: i64,
        environments: Vec<String>,
        items: crate::counts::JobItems,
        subrequests: u64,
    },
    AddActions {
        job_id: String,
        attempt: u32,
        scope: String,
        actions: Vec<NewAction>,
        skipped: Vec<Skipped>,
        /// The next page to read (`skip`) once these are stored.
        next_skip: u64,
        collected: bool,
        subrequests: u64,
        now: String,
        now_ms: i64,
    },
    Claim {
        job_id: String,
        attempt: u32,
        limit: u32,
        now_ms: i64,
        lease_ms: i64,
    },
    Report {
        job_id: String,
        attempt: u32,
        results: Vec<ActionResult>,
        api_calls: std::collections::BTreeMap<String, u64>,
        errors: Vec<String>,
        subrequests: u64,
        now: String,
        now_ms: i64,
    },
    /// Starts the second purge pass of the environments that wait for it.
    SecondPass {
        job_id: String,
        attempt: u32,
        now: String,
        now_ms: i64,
    },
    /// Marks the job failed and stores its `on_failure` actions, drained like any others.
    Fail {
        job_id: String,
        attempt: u32,
        error: String,
        actions: Vec<NewAction>,
        now: String,
        now_ms: i64,
    },
}

/// Answer to `Accept`.
#[derive(Debug, Serialize, Deserialize)]
pub struct AcceptAnswer {
    pub accepted: bool,
    pub attempt: u32,
    /// The record before this delivery, when the job was known (for a rollback).
    #[serde(default)]
    pub previous: Option<Box<JobRecord>>,
}

/// Answer to `Replay`.
#[derive(Debug, Serialize, Deserialize)]
pub struct ReplayAnswer {
    pub record: Box<JobRecord>,
    pub previous: Box<JobRecord>,
}

/// Answer to the pipeline's operations: how far the attempt is.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Progress {
    pub pending: u64,
    pub status: Option<JobStatus>,
    /// False when this attempt is over (a newer one started, or it ended): stop.
    pub current: bool,
    /// Set once, when the attempt starts waiting for its second pass: send the message that
    /// runs it after this many seconds.
    #[serde(default)]
    pub second_pass_in_s: Option<u32>,
}

impl Progress {
    fn stale(status: JobStatus) -> Progress {
        Progress {
            pending: 0,
            status: Some(status),
            current: false,
            second_pass_in_s: None,
        }
    }

    pub fn is_final(&self) -> bool {
        self.status.is_some_and(JobStatus::is_final)
    }
}

/// Settings the ledger takes from the configuration (defaults when it is broken).
#[derive(Debug, Clone, Copy)]
struct Settings {
    repurge_delay_ms: i64,
    progress_timeout_ms: i64,
    max_drives: u32,
}

impl Settings {
    fn from_env(env: &Env) -> Settings {
        match crate::runtime::config(env).as_ref() {
            Ok(cfg) => Settings {
                repurge_delay_ms: cfg.repurge_delay_seconds as i64 * 1000,
                progress_timeout_ms: cfg.progress_timeout_seconds as i64 * 1000,
                max_drives: cfg.retry.max_tries,
            },
            Err(_) => Settings {
                repurge_delay_ms: 60_000,
                progress_timeout_ms: 900_000,
                max_drives: 5,
            },
        }
    }

    /// How often the alarm looks for stalled jobs.
    fn alarm_every_ms(self) -> u64 {
        (self.progress_timeout_ms / 3).clamp(1_000, 300_000) as u64
    }
}

/// The Durable Object class.
#[durable_object]
pub struct Ledger {
    state: State,
    env: Env,
}

impl DurableObject for Ledger {
    fn new(state: State, env: Env) -> Self {
        let sql = state.storage().sql();
        for stmt in SCHEMA {
            if let Err(e) = sql.exec(stmt, None) {
                worker::console_error!(
                    "{{\"stage\":\"ledger_schema\",\"error\":{:?}}}",
                    e.to_string()
                );
            }
        }
        Ledger { state, env }
    }

    /// Drives jobs that made no progress for `PROGRESS_TIMEOUT_SECONDS` again, and keeps
    /// watching while any job is unfinished.
    async fn alarm(&self) -> Result<Response> {
        let settings = Settings::from_env(&self.env);
        let sql = self.state.storage().sql();
        let now = js_sys::Date::now() as i64;
        let rows: Vec<RecordRow> = sql
            .exec(
                "SELECT record, seq, collected FROM jobs ORDER BY seq DESC LIMIT 500",
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
        if unfinished {
            self.state
                .storage()
                .set_alarm(std::time::Duration::from_millis(settings.alarm_every_ms()))
                .await?;
        }
        Response::ok("")
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        let op: LedgerOp = match req.json().await {
            Ok(op) => op,
            Err(e) => return Response::error(format!("bad ledger op: {e}"), 400),
        };
        let settings = Settings::from_env(&self.env);
        let sql = self.state.storage().sql();
        let watch = matches!(op, LedgerOp::Accept { .. } | LedgerOp::Replay { .. });
        match handle(&sql, op, settings) {
            Ok(v) => {
                // Watch new work: the alarm drives a job whose messages were lost.
                if watch && self.state.storage().get_alarm().await?.is_none() {
                    self.state
                        .storage()
                        .set_alarm(std::time::Duration::from_millis(settings.alarm_every_ms()))
                        .await?;
                }
                Response::from_json(&v)
            }
            Err(e) => Response::error(e.to_string(), 500),
        }
    }
}

impl Ledger {
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
            rec.on_failure_running = false;
            rec.status = JobStatus::Failed;
            push_errors(&mut rec.errors, [why]);
            finish_times(rec, &now_iso, now);
            sql.exec(
                "DELETE FROM work WHERE job_id = ?",
                vec![s(rec.job_id.clone())],
            )?;
            Ok(())
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
            } else if rec.awaiting_second_pass() {
                messages.push(base.at(Step::SecondPass));
            } else {
                messages.push(base.at(Step::Drain));
            }
            for m in &messages {
                sent &= enqueue(&self.env, m, 0).await.is_ok();
            }
        }
        crate::runtime::log(
            "redriven",
            serde_json::json!({"job_id": rec.job_id, "attempt": rec.attempts, "drives": rec.drives, "action": what, "sent": sent}),
        );
        store(sql, rec)
    }
}

const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS deliveries (key TEXT PRIMARY KEY, job_id TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS jobs (job_id TEXT PRIMARY KEY, seq INTEGER NOT NULL, collected INTEGER NOT NULL DEFAULT 0, record TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS jobs_by_seq ON jobs(seq)",
    // Purge actions per job attempt. `pass`: 1 first pass, 2 second pass, 3 on_failure.
    // `batch`: the AddActions call that last wanted the action (purge calls wait for the KV
    // work of their batch and earlier ones). `counted`: times it was settled done (what it
    // purged is counted the first time only).
    "CREATE TABLE IF NOT EXISTS work (id INTEGER PRIMARY KEY AUTOINCREMENT, job_id TEXT NOT NULL, attempt INTEGER NOT NULL, env TEXT NOT NULL, kind TEXT NOT NULL, target TEXT NOT NULL, value TEXT NOT NULL, state INTEGER NOT NULL DEFAULT 0, lease INTEGER NOT NULL DEFAULT 0, cursor TEXT, swept INTEGER NOT NULL DEFAULT 0, batch INTEGER NOT NULL DEFAULT 0, pass INTEGER NOT NULL DEFAULT 1, counted INTEGER NOT NULL DEFAULT 0, UNIQUE(job_id, attempt, env, kind, target, value))",
    "CREATE INDEX IF NOT EXISTS work_by_state ON work(job_id, attempt, state, id)",
    "CREATE INDEX IF NOT EXISTS work_by_env ON work(job_id, attempt, env, state, batch)",
    // The first version's table, replaced by `work`.
    "DROP TABLE IF EXISTS actions",
];

/// Action states in the `work` table.
const PENDING: i64 = 0;
const DONE: i64 = 1;
const FAILED: i64 = 2;
/// Passes in the `work` table.
const PASS_FIRST: i64 = 1;
const PASS_SECOND: i64 = 2;
const PASS_ON_FAILURE: i64 = 3;

/// The SQL list of action kinds that change KV, e.g. `('kv_key', 'kv_prefix')`.
fn kv_kinds_sql() -> String {
    kinds_sql(|k| k.is_kv())
}

/// The SQL list of action kinds that are Cloudflare purge calls.
fn cloudflare_kinds_sql() -> String {
    kinds_sql(|k| k.is_cloudflare())
}

fn kinds_sql(pick: impl Fn(ActionKind) -> bool) -> String {
    let names: Vec<String> = ActionKind::ALL
        .into_iter()
        .filter(|k| pick(*k))
        .map(|k| format!("'{}'", k.as_str()))
        .collect();
    format!("({})", names.join(", "))
}

fn s(v: impl Into<String>) -> SqlStorageValue {
    SqlStorageValue::String(v.into())
}
fn i(v: i64) -> SqlStorageValue {
    SqlStorageValue::Integer(v)
}

#[derive(Deserialize)]
struct RecordRow {
    record: String,
    #[allow(dead_code)]
    seq: i64,
    #[allow(dead_code)]
    collected: i64,
}

fn load(sql: &SqlStorage, job_id: &str) -> Result<Option<JobRecord>> {
    let rows: Vec<RecordRow> = sql
        .exec(
            "SELECT record, seq, collected FROM jobs WHERE job_id = ?",
            vec![s(job_id)],
        )?
        .to_array()?;
    match rows.into_iter().next() {
        None => Ok(None),
        Some(r) => {
            let rec: JobRecord = serde_json::from_str(&r.record)
                .map_err(|e| worker::Error::RustError(format!("corrupt record: {e}")))?;
            Ok(Some(rec))
        }
    }
}

fn store(sql: &SqlStorage, rec: &JobRecord) -> Result<()> {
    let json = serde_json::to_string(rec).map_err(|e| worker::Error::RustError(e.to_string()))?;
    sql.exec(
        "UPDATE jobs SET record = ?, collected = ? WHERE job_id = ?",
        vec![
            s(json),
            i(rec.all_collected() as i64),
            s(rec.job_id.clone()),
        ],
    )?;
    Ok(())
}

#[derive(Deserialize)]
struct CountRow {
    n: i64,
}

fn count(sql: &SqlStorage, q: &str, binds: Vec<SqlStorageValue>) -> Result<i64> {
    let rows: Vec<CountRow> = sql.exec(q, binds)?.to_array()?;
    Ok(rows.first().map(|r| r.n).unwrap_or(0))
}

fn pending(sql: &SqlStorage, job_id: &str, attempt: u32) -> Result<i64> {
    count(
        sql,
        "SELECT COUNT(*) AS n FROM work WHERE job_id = ? AND attempt = ? AND state = 0",
        vec![s(job_id), i(attempt as i64)],
    )
}

fn not_found() -> Value {
    serde_json::json!({"not_found": true})
}

fn to_value<T: Serialize>(v: &T) -> Result<Value> {
    serde_json::to_value(v).map_err(|e| worker::Error::RustError(e.to_string()))
}

/// Whether the pipeline may still work on this attempt: it is current and unfinished (a
/// failing job's `on_failure` purge included).
fn workable(rec: &JobRecord, attempt: u32) -> bool {
    rec.attempts == attempt && !rec.status.is_final()
}

/// After any change: ends the attempt (or schedules its second pass) when every scope is
/// collected and nothing is pending; ends a failed job's `on_failure` purge when it is done.
fn progress(
    sql: &SqlStorage,
    rec: &mut JobRecord,
    settings: Settings,
    now: &str,
    now_ms: i64,
) -> Result<Progress> {
    let attempt = rec.attempts;
    let left = pending(sql, &rec.job_id, attempt)? as u64;
    let mut answer = Progress {
        pending: left,
        status: Some(rec.status),
        current: true,
        second_pass_in_s: None,
    };
    if rec.on_failure_running {
        // A failing job is `failed` once its on_failure purge has run.
        if left == 0 {
            rec.on_failure_running = false;
            rec.status = JobStatus::Failed;
            finish_times(rec, now, now_ms);
            answer.status = Some(rec.status);
            sql.exec(
                "DELETE FROM work WHERE job_id = ?",
                vec![s(rec.job_id.clone())],
            )?;
        }
        return Ok(answer);
    }
    if rec.status.is_final() {
        return Ok(answer);
    }
    if left > 0 || !rec.all_collected() {
        return Ok(answer);
    }
    #[derive(Deserialize)]
    struct EnvRow {
        env: String,
        kv: i64,
        cf: i64,
    }
    let envs: Vec<EnvRow> = sql
        .exec(
            &format!(
                "SELECT env, SUM(CASE WHEN kind IN {kv} AND (state = {DONE} OR swept > 0) THEN 1 ELSE 0 END) AS kv, SUM(CASE WHEN kind IN {cf} AND state = {DONE} THEN 1 ELSE 0 END) AS cf FROM work WHERE job_id = ? AND attempt = ? GROUP BY env",
                kv = kv_kinds_sql(),
                cf = cloudflare_kinds_sql(),
            ),
            vec![s(rec.job_id.clone()), i(attempt as i64)],
        )?
        .to_array()?;
    let envs: Vec<(String, bool)> = envs
        .into_iter()
        .map(|e| (e.env, e.kv > 0 && e.cf > 0))
        .collect();
    let done = count(
        sql,
        "SELECT COUNT(*) AS n FROM work WHERE job_id = ? AND attempt = ? AND state = 1",
        vec![s(rec.job_id.clone()), i(attempt as i64)],
    )?;
    let failed = count(
        sql,
        "SELECT COUNT(*) AS n FROM work WHERE job_id = ? AND attempt = ? AND state = 2",
        vec![s(rec.job_id.clone()), i(attempt as i64)],
    )?;
    match rec.close_passes(
        &envs,
        settings.repurge_delay_ms,
        done as u64,
        failed as u64,
        now,
        now_ms,
    ) {
        PassOutcome::SecondPassDue { due_ms, newly } => {
            if newly {
                answer.second_pass_in_s =
                    Some(((due_ms - now_ms).max(0) as u64).div_ceil(1000) as u32);
            }
        }
        PassOutcome::Finished(status) => {
            finish_times(rec, now, now_ms);
            answer.status = Some(status);
            sql.exec(
                "DELETE FROM work WHERE job_id = ? AND attempt <= ?",
                vec![s(rec.job_id.clone()), i(attempt as i64)],
            )?;
        }
    }
    Ok(answer)
}

fn finish_times(rec: &mut JobRecord, now: &str, now_ms: i64) {
    rec.finished_at = Some(now.to_string());
    let start = rec
        .started_at
        .as_deref()
        .unwrap_or(rec.received_at.as_str());
    if let Some(start_ms) = crate::time::parse_iso8601_utc_millis(start) {
        rec.duration_ms = Some((now_ms - start_ms).max(0) as u64);
    }
}

/// Ids per `IN (…)` list (SQLite limits bound parameters).
const IDS_PER_STATEMENT: usize = 90;

#[derive(Deserialize)]
struct Settled {
    env: String,
    kind: String,
    counted: i64,
}

/// Counts what one settled action adds to the record: what it purged the first time it is
/// done (`counted` = 1 then), and the keys a sweep removed whenever it reports some.
fn count_settled(rec: &mut JobRecord, row: Settled, outcome: Outcome, swept: u64, now_ms: i64) {
    let Some(kind) = ActionKind::parse(&row.kind) else {
        return;
    };
    let mut delta = PurgedCounts::default();
    match outcome {
        Outcome::Done if row.counted == 1 || kind == ActionKind::KvPrefix => {
            kind.count_result(&mut delta, outcome, swept)
        }
        _ if swept > 0 => kind.count_result(&mut delta, outcome, swept),
        _ => {}
    }
    if kind.is_kv() && (outcome == Outcome::Done || swept > 0) {
        rec.passes.entry(row.env.clone()).or_default().last_kv_ms = Some(now_ms);
    }
    rec.purged.add(&delta);
    rec.purged_by_environment
        .entry(row.env)
        .or_default()
        .add(&delta);
}

/// Applies a report's results. Only actions still pending change state, so a result that an
/// earlier (or concurrent) delivery already settled is never counted twice. Plain results are
/// settled a statement per outcome and batch of ids; sweeps with a cursor or count one by one.
fn settle_results(
    sql: &SqlStorage,
    job_id: &str,
    attempt: u32,
    results: &[ActionResult],
    rec: &mut JobRecord,
    now_ms: i64,
) -> Result<usize> {
    let state_of = |o: Outcome| match o {
        Outcome::Done => DONE,
        Outcome::Failed => FAILED,
        Outcome::Pending => PENDING,
    };
    let mut settled = 0;
    let (plain, detailed): (Vec<&ActionResult>, Vec<&ActionResult>) = results
        .iter()
        .partition(|r| r.cursor.is_none() && r.swept == 0);
    for outcome in [Outcome::Done, Outcome::Failed, Outcome::Pending] {
        let ids: Vec<i64> = plain
            .iter()
            .filter(|r| r.outcome == outcome)
            .map(|r| r.id)
            .collect();
        for chunk in ids.chunks(IDS_PER_STATEMENT) {
            let marks = vec!["?"; chunk.len()].join(", ");
            let query = format!(
                "UPDATE work SET state = ?1, lease = 0, counted = counted + (CASE WHEN ?1 = {DONE} THEN 1 ELSE 0 END) WHERE job_id = ?2 AND attempt = ?3 AND state = 0 AND id IN ({marks}) RETURNING env, kind, counted"
            );
            let mut binds = vec![i(state_of(outcome)), s(job_id), i(attempt as i64)];
            binds.extend(chunk.iter().map(|id| i(*id)));
            let rows: Vec<Settled> = sql.exec(&query, binds)?.to_array()?;
            for row in rows {
                if outcome != Outcome::Pending {
                    settled += 1;
                }
                count_settled(rec, row, outcome, 0, now_ms);
            }
        }
    }
    for r in detailed {
        let rows: Vec<Settled> = sql
            .exec(
                &format!("UPDATE work SET state = ?1, cursor = ?2, swept = swept + ?3, lease = 0, counted = counted + (CASE WHEN ?1 = {DONE} THEN 1 ELSE 0 END) WHERE id = ?4 AND job_id = ?5 AND attempt = ?6 AND state = 0 RETURNING env, kind, counted"),
                vec![
                    i(state_of(r.outcome)),
                    r.cursor.clone().map(s).unwrap_or(SqlStorageValue::Null),
                    i(r.swept as i64),
                    i(r.id),
                    s(job_id),
                    i(attempt as i64),
                ],
            )?
            .to_array()?;
        for row in rows {
            settled += 1;
            count_settled(rec, row, r.outcome, r.swept, now_ms);
        }
    }
    Ok(settled)
}

/// Stores actions for an attempt. An action wanted again by a later batch moves to that batch
/// (its purge call then waits for the later batch's KV work); a purge action already sent in
/// the first pass is sent again after that KV work, while the environment's first pass runs.
fn insert_actions(
    sql: &SqlStorage,
    rec: &JobRecord,
    actions: &[NewAction],
    batch: u64,
    pass: i64,
) -> Result<()> {
    for a in actions {
        let in_first_pass = rec
            .passes
            .get(&a.env)
            .is_none_or(|p| p.first_pass_at.is_none());
        let resend = (!a.kind.is_kv() && in_first_pass && pass == PASS_FIRST) as i64;
        sql.exec(
            "INSERT INTO work (job_id, attempt, env, kind, target, value, batch, pass) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) \
             ON CONFLICT(job_id, attempt, env, kind, target, value) DO UPDATE SET batch = excluded.batch, lease = 0, \
             state = CASE WHEN work.state = 1 AND ?9 = 1 AND work.pass = 1 THEN 0 ELSE work.state END \
             WHERE work.state = 0 OR (work.state = 1 AND ?9 = 1 AND work.pass = 1)",
            vec![
                s(rec.job_id.clone()),
                i(rec.attempts as i64),
                s(a.env.clone()),
                s(a.kind.as_str()),
                s(a.target.clone()),
                s(a.value.clone()),
                i(batch as i64),
                i(pass),
                i(resend),
            ],
        )?;
    }
    Ok(())
}

fn handle(sql: &SqlStorage, op: LedgerOp, settings: Settings) -> Result<Value> {
    match op {
        LedgerOp::Accept { key, record } => {
            // One statement both checks and records the delivery.
            let inserted = sql
                .exec(
                    "INSERT OR IGNORE INTO deliveries (key, job_id) VALUES (?, ?)",
                    vec![s(key), s(record.job_id.clone())],
                )?
                .rows_written();
            if inserted == 0 {
                return to_value(&AcceptAnswer {
                    accepted: false,
                    attempt: 0,
                    previous: None,
                });
            }
            match load(sql, &record.job_id)? {
                Some(mut existing) => {
                    // Another environment's delivery of a known job: a scope of its attempt.
                    let previous = Box::new(existing.clone());
                    existing.add_scope(record.channel_environment.as_deref(), record.progress_ms);
                    store(sql, &existing)?;
                    to_value(&AcceptAnswer {
                        accepted: true,
                        attempt: existing.attempts,
                        previous: Some(previous),
                    })
                }
                None => {
                    let json = serde_json::to_string(&record)
                        .map_err(|e| worker::Error::RustError(e.to_string()))?;
                    sql.exec(
                        "INSERT INTO jobs (job_id, seq, collected, record) VALUES (?, (SELECT COALESCE(MAX(seq), 0) + 1 FROM jobs), 0, ?)",
                        vec![s(record.job_id.clone()), s(json)],
                    )?;
                    sql.exec(
                        "DELETE FROM jobs WHERE seq <= (SELECT MAX(seq) FROM jobs) - ?",
                        vec![i(MAX_JOBS)],
                    )?;
                    to_value(&AcceptAnswer {
                        accepted: true,
                        attempt: 1,
                        previous: None,
                    })
                }
            }
        }
        LedgerOp::Rollback {
            key,
            job_id,
            previous,
        } => {
            if let Some(key) = key {
                sql.exec("DELETE FROM deliveries WHERE key = ?", vec![s(key)])?;
            }
            match previous {
                Some(prev) => store(sql, &prev)?,
                None => {
                    sql.exec("DELETE FROM jobs WHERE job_id = ?", vec![s(job_id.clone())])?;
                    sql.exec("DELETE FROM work WHERE job_id = ?", vec![s(job_id)])?;
                }
            }
            Ok(serde_json::json!({"ok": true}))
        }
        LedgerOp::Get { job_id } => match load(sql, &job_id)? {
            Some(rec) => to_value(&rec),
            None => Ok(not_found()),
        },
        LedgerOp::List { limit, cursor } => {
            let limit = limit.clamp(1, 200) as i64;
            let rows: Vec<RecordRow> = sql
                .exec(
                    "SELECT record, seq, collected FROM jobs WHERE seq < ? ORDER BY seq DESC LIMIT ?",
                    vec![i(cursor.unwrap_or(i64::MAX)), i(limit + 1)],
                )?
                .to_array()?;
            let more = rows.len() as i64 > limit;
            let mut jobs = Vec::new();
            let mut last_seq = None;
            for r in rows.into_iter().take(limit as usize) {
                last_seq = Some(r.seq);
                let v: Value = serde_json::from_str(&r.record).unwrap_or(Value::Null);
                jobs.push(v);
            }
            let cursor = if more {
                last_seq.map(|s| s.to_string())
            } else {
                None
            };
            Ok(serde_json::json!({"jobs": jobs, "cursor": cursor}))
        }
        LedgerOp::Replay { job_id, now } => match load(sql, &job_id)? {
            Some(mut rec) => {
                let previous = Box::new(rec.clone());
                rec.begin_attempt(&now);
                store(sql, &rec)?;
                to_value(&ReplayAnswer {
                    record: Box::new(rec),
                    previous,
                })
            }
            None => Ok(not_found()),
        },
        LedgerOp::Start {
            job_id,
            attempt,
            scope,
            now,
            now_ms,
            environments,
            items,
            subrequests,
        } => {
            let Some(mut rec) = load(sql, &job_id)? else {
                return Ok(not_found());
            };
            if !workable(&rec, attempt) || rec.status.is_final() || rec.on_failure_running {
                return to_value(&Progress::stale(rec.status));
            }
            if rec.status == JobStatus::Accepted {
                rec.status = JobStatus::Processing;
            }
            if rec.started_at.is_none() {
                rec.started_at = Some(now.clone());
            }
            for e in environments {
                if !rec.environments.contains(&e) {
                    rec.environments.push(e);
                }
            }
            rec.scopes.entry(scope).or_default();
            rec.items = items;
            rec.progress_ms = now_ms;
            rec.max_invocation_subrequests = rec.max_invocation_subrequests.max(subrequests);
            let p = progress(sql, &mut rec, settings, &now, now_ms)?;
            store(sql, &rec)?;
            to_value(&p)
        }
        LedgerOp::AddActions {
            job_id,
            attempt,
            scope,
            actions,
            skipped,
            next_skip,
            collected,
            subrequests,
            now,
            now_ms,
        } => {
            let Some(mut rec) = load(sql, &job_id)? else {
                return Ok(not_found());
            };
            if !workable(&rec, attempt) || rec.status.is_final() || rec.on_failure_running {
                return to_value(&Progress::stale(rec.status));
            }
            rec.batches += 1;
            insert_actions(sql, &rec, &actions, rec.batches, PASS_FIRST)?;
            // An environment with new work after its first pass ended runs its passes again.
            for a in &actions {
                if let Some(p) = rec.passes.get(&a.env) {
                    if p.first_pass_at.is_some() && pending_in_env(sql, &rec, &a.env)? {
                        rec.passes.remove(&a.env);
                    }
                }
            }
            rec.add_skipped(&skipped);
            let sc = rec.scopes.entry(scope).or_default();
            sc.next_skip = sc.next_skip.max(next_skip);
            sc.collected |= collected;
            rec.progress_ms = now_ms;
            rec.max_invocation_subrequests = rec.max_invocation_subrequests.max(subrequests);
            let p = progress(sql, &mut rec, settings, &now, now_ms)?;
            store(sql, &rec)?;
            to_value(&p)
        }
        LedgerOp::Claim {
            job_id,
            attempt,
            limit,
            now_ms,
            lease_ms,
        } => {
            #[derive(Deserialize)]
            struct Row {
                id: i64,
                env: String,
                kind: String,
                target: String,
                value: String,
                cursor: Option<String>,
            }
            match load(sql, &job_id)? {
                Some(rec) if workable(&rec, attempt) => {}
                _ => return to_value(&Vec::<ClaimedAction>::new()),
            }
            let kv = kv_kinds_sql();
            // KV work first in each environment: anything else waits until no KV action of
            // its environment, batch or an earlier one, is pending. Then rate-limited purge
            // calls first, so they start early and overlap the rest; within a kind, by zone or
            // binding, so batches fill.
            let query = format!(
                "WITH kv_left AS (SELECT env, MIN(batch) AS first FROM work WHERE job_id = ?1 AND attempt = ?2 AND state = 0 AND kind IN {kv} GROUP BY env) \
                 SELECT w.id, w.env, w.kind, w.target, w.value, w.cursor FROM work w LEFT JOIN kv_left ON kv_left.env = w.env \
                 WHERE w.job_id = ?1 AND w.attempt = ?2 AND w.state = 0 AND w.lease <= ?3 \
                 AND (w.kind IN {kv} OR kv_left.first IS NULL OR w.batch < kv_left.first) \
                 ORDER BY CASE w.kind WHEN 'kv_key' THEN 2 WHEN 'kv_prefix' THEN 3 WHEN 'cache_url' THEN 1 ELSE 0 END, w.kind, w.target, w.id LIMIT ?4"
            );
            let rows: Vec<Row> = sql
                .exec(
                    &query,
                    vec![
                        s(job_id),
                        i(attempt as i64),
                        i(now_ms),
                        i(limit.clamp(1, 10_000) as i64),
                    ],
                )?
                .to_array()?;
            let mut out = Vec::with_capacity(rows.len());
            let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
            for chunk in ids.chunks(IDS_PER_STATEMENT) {
                let marks = vec!["?"; chunk.len()].join(", ");
                let mut binds = vec![i(now_ms + lease_ms)];
                binds.extend(chunk.iter().map(|id| i(*id)));
                sql.exec(
                    &format!("UPDATE work SET lease = ? WHERE id IN ({marks})"),
                    binds,
                )?;
            }
            for r in rows {
                if let Some(kind) = ActionKind::parse(&r.kind) {
                    out.push(ClaimedAction {
                        id: r.id,
                        env: r.env,
                        kind,
                        target: r.target,
                        value: r.value,
                        cursor: r.cursor,
                    });
                }
            }
            to_value(&out)
        }
        LedgerOp::Report {
            job_id,
            attempt,
            results,
            api_calls,
            errors,
            subrequests,
            now,
            now_ms,
        } => {
            let Some(mut rec) = load(sql, &job_id)? else {
                return Ok(not_found());
            };
            rec.max_invocation_subrequests = rec.max_invocation_subrequests.max(subrequests);
            if !workable(&rec, attempt) {
                store(sql, &rec)?;
                return to_value(&Progress::stale(rec.status));
            }
            let settled = settle_results(sql, &job_id, attempt, &results, &mut rec, now_ms)?;
            for (env, n) in api_calls {
                rec.purged.api_calls += n;
                rec.purged_by_environment.entry(env).or_default().api_calls += n;
            }
            push_errors(&mut rec.errors, errors);
            if settled > 0 {
                rec.progress_ms = now_ms;
            }
            let p = progress(sql, &mut rec, settings, &now, now_ms)?;
            store(sql, &rec)?;
            to_value(&p)
        }
        LedgerOp::SecondPass {
            job_id,
            attempt,
            now,
            now_ms,
        } => {
            let Some(mut rec) = load(sql, &job_id)? else {
                return Ok(not_found());
            };
            if !workable(&rec, attempt) || rec.status.is_final() || rec.on_failure_running {
                return to_value(&Progress::stale(rec.status));
            }
            let mut p = match rec.start_second_pass(now_ms, 1_000) {
                Ok(envs) => {
                    for env in envs {
                        sql.exec(
                            &format!(
                                "UPDATE work SET state = {PENDING}, pass = {PASS_SECOND}, lease = 0 WHERE job_id = ? AND attempt = ? AND env = ? AND pass = {PASS_FIRST} AND state = {DONE} AND kind IN {cf}",
                                cf = cloudflare_kinds_sql()
                            ),
                            vec![s(job_id.clone()), i(attempt as i64), s(env)],
                        )?;
                    }
                    progress(sql, &mut rec, settings, &now, now_ms)?
                }
                Err(wait_ms) => Progress {
                    pending: 0,
                    status: Some(rec.status),
                    current: true,
                    second_pass_in_s: Some((wait_ms.max(0) as u64).div_ceil(1000) as u32),
                },
            };
            if p.second_pass_in_s.is_none() && rec.awaiting_second_pass() {
                p.second_pass_in_s = Some(1);
            }
            store(sql, &rec)?;
            to_value(&p)
        }
        LedgerOp::Fail {
            job_id,
            attempt,
            error,
            actions,
            now,
            now_ms,
        } => {
            let Some(mut rec) = load(sql, &job_id)? else {
                return Ok(not_found());
            };
            if rec.attempts != attempt || rec.status.is_final() || rec.on_failure_running {
                return to_value(&Progress::stale(rec.status));
            }
            // `failed` once the on_failure purge has run (at once when there is none).
            push_errors(&mut rec.errors, [error]);
            sql.exec("DELETE FROM work WHERE job_id = ?", vec![s(job_id.clone())])?;
            insert_actions(sql, &rec, &actions, 0, PASS_ON_FAILURE)?;
            rec.on_failure_running = !actions.is_empty();
            if rec.on_failure_running {
                rec.status = JobStatus::Processing;
            } else {
                rec.status = JobStatus::Failed;
                finish_times(&mut rec, &now, now_ms);
            }
            rec.drives = 0;
            rec.progress_ms = now_ms;
            let p = progress(sql, &mut rec, settings, &now, now_ms)?;
            store(sql, &rec)?;
            to_value(&p)
        }
    }
}

/// Whether an environment has pending work in the attempt.
fn pending_in_env(sql: &SqlStorage, rec: &JobRecord, env: &str) -> Result<bool> {
    Ok(count(
        sql,
        "SELECT COUNT(*) AS n FROM work WHERE job_id = ? AND attempt = ? AND env = ? AND state = 0",
        vec![s(rec.job_id.clone()), i(rec.attempts as i64), s(env)],
    )? > 0)
}

/// Worker-side handle on the ledger instance.
pub struct LedgerClient {
    stub: worker::Stub,
}

/// Binding name of the ledger namespace.
pub const LEDGER_BINDING: &str = "LEDGER";

impl LedgerClient {
    pub fn new(env: &Env) -> Result<LedgerClient> {
        let ns = env.durable_object(LEDGER_BINDING)?;
        Ok(LedgerClient {
            stub: ns.get_by_name(LEDGER_NAME)?,
        })
    }

    /// Sends one operation and decodes the answer.
    pub async fn call<T: serde::de::DeserializeOwned>(&self, op: &LedgerOp) -> Result<T> {
        let body =
            serde_json::to_string(op).map_err(|e| worker::Error::RustError(e.to_string()))?;
        let mut init = RequestInit::new();
        init.with_method(Method::Post)
            .with_body(Some(wasm_bindgen::JsValue::from_str(&body)));
        let req = Request::new_with_init("https://ledger/op", &init)?;
        let mut resp = self.stub.fetch_with_request(req).await?;
        if resp.status_code() != 200 {
            let text = resp.text().await.unwrap_or_default();
            return Err(worker::Error::RustError(format!(
                "ledger answered {}: {}",
                resp.status_code(),
                text
            )));
        }
        resp.json().await
    }

    /// Reads one record, if any.
    pub async fn get(&self, job_id: &str) -> Result<Option<JobRecord>> {
        let v: Value = self
            .call(&LedgerOp::Get {
                job_id: job_id.to_string(),
            })
            .await?;
        if v.get("not_found").is_some() {
            return Ok(None);
        }
        serde_json::from_value(v)
            .map(Some)
            .map_err(|e| worker::Error::RustError(e.to_string()))
    }
}

/// Builds the `Accept` operation for a verified delivery.
pub fn accept_op(
    key: String,
    ev: &crate::event::JobEvent,
    received_at: String,
    raw: &[u8],
    parsed: &Value,
) -> LedgerOp {
    LedgerOp::Accept {
        key,
        record: Box::new(JobRecord::accepted(
            ev.job_id.clone(),
            ev.action,
            received_at,
            ev.channel_environment.clone(),
            ev.hinted_environments.clone(),
            ev.api_key.clone(),
            cap_payload_value(raw, parsed),
        )),
    }
}
