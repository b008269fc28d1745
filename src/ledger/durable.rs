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

use super::{cap_payload_value, final_status, push_errors, JobRecord, JobStatus, PurgedCounts};
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
    Rollback {
        key: Option<String>,
        job_id: String,
        attempt: u32,
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
        now: String,
        environments: Vec<String>,
        items: super::ItemCounts,
        subrequests: u64,
    },
    AddActions {
        job_id: String,
        attempt: u32,
        actions: Vec<NewAction>,
        skipped: Vec<Skipped>,
        collected: bool,
        subrequests: u64,
    },
    Claim {
        job_id: String,
        attempt: u32,
        limit: u32,
        now_ms: i64,
        lease_ms: i64,
        /// Only Cloudflare purge actions (the rate-limited work worth overlapping).
        #[serde(default)]
        purge_calls_only: bool,
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
    Fail {
        job_id: String,
        attempt: u32,
        error: String,
        now: String,
        now_ms: i64,
    },
    Note {
        job_id: String,
        attempt: u32,
        errors: Vec<String>,
        purged: PurgedCounts,
        subrequests: u64,
    },
}

/// Answer to `Accept`.
#[derive(Debug, Serialize, Deserialize)]
pub struct AcceptAnswer {
    pub accepted: bool,
    pub attempt: u32,
}

/// Answer to `Report` / `AddActions`: how far the attempt is.
#[derive(Debug, Serialize, Deserialize)]
pub struct Progress {
    pub pending: u64,
    pub status: JobStatus,
    /// False when a newer attempt has started: this one should stop.
    pub current: bool,
}

/// A job still `accepted` this long after its attempt began is enqueued again by the alarm
/// (its first message was lost, e.g. the enqueue failed and so did the rollback).
const STUCK_MS: i64 = 10 * 60 * 1000;

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

    /// Re-enqueues jobs stuck in `accepted`, and keeps watching while any job is unfinished.
    async fn alarm(&self) -> Result<Response> {
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
            let Ok(rec) = serde_json::from_str::<JobRecord>(&row.record) else {
                continue;
            };
            if rec.status.is_final() {
                continue;
            }
            unfinished = true;
            if rec.is_stuck(now, STUCK_MS) {
                let msg = crate::pipeline::JobMessage::start(
                    &rec.job_id,
                    rec.action,
                    rec.api_key.clone(),
                    rec.attempts,
                );
                let sent = crate::pipeline::enqueue(&self.env, &msg, 0).await.is_ok();
                crate::runtime::log(
                    "requeued",
                    serde_json::json!({"job_id": rec.job_id, "attempt": rec.attempts, "sent": sent}),
                );
            }
        }
        if unfinished {
            self.state
                .storage()
                .set_alarm(std::time::Duration::from_millis(STUCK_MS as u64))
                .await?;
        }
        Response::ok("")
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        let op: LedgerOp = match req.json().await {
            Ok(op) => op,
            Err(e) => return Response::error(format!("bad ledger op: {e}"), 400),
        };
        let sql = self.state.storage().sql();
        let accepted = matches!(op, LedgerOp::Accept { .. } | LedgerOp::Replay { .. });
        match handle(&sql, op) {
            Ok(v) => {
                // Watch new work: the alarm re-enqueues a job whose message never arrived.
                if accepted && self.state.storage().get_alarm().await?.is_none() {
                    self.state
                        .storage()
                        .set_alarm(std::time::Duration::from_millis(STUCK_MS as u64))
                        .await?;
                }
                Response::from_json(&v)
            }
            Err(e) => Response::error(e.to_string(), 500),
        }
    }
}

const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS deliveries (key TEXT PRIMARY KEY, job_id TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS jobs (job_id TEXT PRIMARY KEY, seq INTEGER NOT NULL, collected INTEGER NOT NULL DEFAULT 0, record TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS jobs_by_seq ON jobs(seq)",
    "CREATE TABLE IF NOT EXISTS actions (id INTEGER PRIMARY KEY AUTOINCREMENT, job_id TEXT NOT NULL, attempt INTEGER NOT NULL, env TEXT NOT NULL, kind TEXT NOT NULL, target TEXT NOT NULL, value TEXT NOT NULL, state INTEGER NOT NULL DEFAULT 0, lease INTEGER NOT NULL DEFAULT 0, cursor TEXT, swept INTEGER NOT NULL DEFAULT 0, UNIQUE(job_id, attempt, kind, target, value))",
    "CREATE INDEX IF NOT EXISTS actions_by_state ON actions(job_id, attempt, state, id)",
];

fn s(v: impl Into<String>) -> SqlStorageValue {
    SqlStorageValue::String(v.into())
}
fn i(v: i64) -> SqlStorageValue {
    SqlStorageValue::Integer(v)
}

#[derive(Deserialize)]
struct RecordRow {
    record: String,
    seq: i64,
    collected: i64,
}

fn load(sql: &SqlStorage, job_id: &str) -> Result<Option<(JobRecord, i64, bool)>> {
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
            Ok(Some((rec, r.seq, r.collected != 0)))
        }
    }
}

fn store(sql: &SqlStorage, rec: &JobRecord, collected: bool) -> Result<()> {
    let json = serde_json::to_string(rec).map_err(|e| worker::Error::RustError(e.to_string()))?;
    sql.exec(
        "UPDATE jobs SET record = ?, collected = ? WHERE job_id = ?",
        vec![s(json), i(collected as i64), s(rec.job_id.clone())],
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
        "SELECT COUNT(*) AS n FROM actions WHERE job_id = ? AND attempt = ? AND state = 0",
        vec![s(job_id), i(attempt as i64)],
    )
}

fn not_found() -> Value {
    serde_json::json!({"not_found": true})
}

fn to_value<T: Serialize>(v: &T) -> Result<Value> {
    serde_json::to_value(v).map_err(|e| worker::Error::RustError(e.to_string()))
}

/// Finishes the attempt when everything is collected and nothing is pending.
fn maybe_finish(
    sql: &SqlStorage,
    rec: &mut JobRecord,
    collected: bool,
    now: &str,
    now_ms: i64,
) -> Result<u64> {
    let attempt = rec.attempts;
    let left = pending(sql, &rec.job_id, attempt)? as u64;
    if collected && left == 0 && !rec.status.is_final() {
        let done = count(
            sql,
            "SELECT COUNT(*) AS n FROM actions WHERE job_id = ? AND attempt = ? AND state = 1",
            vec![s(rec.job_id.clone()), i(attempt as i64)],
        )?;
        let failed = count(
            sql,
            "SELECT COUNT(*) AS n FROM actions WHERE job_id = ? AND attempt = ? AND state = 2",
            vec![s(rec.job_id.clone()), i(attempt as i64)],
        )?;
        rec.status = final_status(done as u64, failed as u64);
        finish_times(rec, now, now_ms);
        sql.exec(
            "DELETE FROM actions WHERE job_id = ? AND attempt <= ?",
            vec![s(rec.job_id.clone()), i(attempt as i64)],
        )?;
    }
    Ok(left)
}

fn finish_times(rec: &mut JobRecord, now: &str, now_ms: i64) {
    rec.finished_at = Some(now.to_string());
    let start = rec
        .started_at
        .as_deref()
        .unwrap_or(rec.received_at.as_str());
    if let Some(start_ms) = crate::verify::parse_iso8601_utc_millis(start) {
        rec.duration_ms = Some((now_ms - start_ms).max(0) as u64);
    }
}

/// Ids per `IN (…)` list (SQLite limits bound parameters).
const IDS_PER_STATEMENT: usize = 90;

/// Counts what one settled action adds to the record.
fn count_settled(rec: &mut JobRecord, env: String, kind: ActionKind, outcome: Outcome, swept: u64) {
    let mut delta = PurgedCounts::default();
    kind.count_result(&mut delta, outcome, swept);
    rec.purged.add(&delta);
    rec.purged_by_environment
        .entry(env)
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
) -> Result<()> {
    #[derive(Deserialize)]
    struct Settled {
        env: String,
        kind: String,
    }
    let state_of = |o: Outcome| match o {
        Outcome::Done => 1,
        Outcome::Failed => 2,
        Outcome::Pending => 0,
    };
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
                "UPDATE actions SET state = ?, lease = 0 WHERE job_id = ? AND attempt = ? AND state = 0 AND id IN ({marks}) RETURNING env, kind"
            );
            let mut binds = vec![i(state_of(outcome)), s(job_id), i(attempt as i64)];
            binds.extend(chunk.iter().map(|id| i(*id)));
            let rows: Vec<Settled> = sql.exec(&query, binds)?.to_array()?;
            for row in rows {
                if let Some(kind) = ActionKind::parse(&row.kind) {
                    count_settled(rec, row.env, kind, outcome, 0);
                }
            }
        }
    }
    for r in detailed {
        let rows: Vec<Settled> = sql
            .exec(
                "UPDATE actions SET state = ?, cursor = ?, swept = swept + ?, lease = 0 WHERE id = ? AND job_id = ? AND attempt = ? AND state = 0 RETURNING env, kind",
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
            if let Some(kind) = ActionKind::parse(&row.kind) {
                count_settled(rec, row.env, kind, r.outcome, r.swept);
            }
        }
    }
    Ok(())
}

fn handle(sql: &SqlStorage, op: LedgerOp) -> Result<Value> {
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
                });
            }
            let attempt = match load(sql, &record.job_id)? {
                Some((mut existing, _, _)) => {
                    // Another environment's delivery of a job already known: a new attempt.
                    existing.begin_attempt(&record.received_at);
                    for env in &record.environments {
                        if !existing.environments.contains(env) {
                            existing.environments.push(env.clone());
                        }
                    }
                    existing.channel_environment = record.channel_environment.clone();
                    store(sql, &existing, false)?;
                    existing.attempts
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
                    1
                }
            };
            to_value(&AcceptAnswer {
                accepted: true,
                attempt,
            })
        }
        LedgerOp::Rollback {
            key,
            job_id,
            attempt,
        } => {
            if let Some(key) = key {
                sql.exec("DELETE FROM deliveries WHERE key = ?", vec![s(key)])?;
            }
            if let Some((mut rec, _, _)) = load(sql, &job_id)? {
                if rec.attempts == attempt {
                    if attempt <= 1 {
                        sql.exec("DELETE FROM jobs WHERE job_id = ?", vec![s(job_id)])?;
                    } else {
                        rec.undo_attempt();
                        store(sql, &rec, true)?;
                    }
                }
            }
            Ok(serde_json::json!({"ok": true}))
        }
        LedgerOp::Get { job_id } => match load(sql, &job_id)? {
            Some((rec, _, _)) => to_value(&rec),
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
            Some((mut rec, _, _)) => {
                rec.begin_attempt(&now);
                store(sql, &rec, false)?;
                to_value(&rec)
            }
            None => Ok(not_found()),
        },
        LedgerOp::Start {
            job_id,
            attempt,
            now,
            environments,
            items,
            subrequests,
        } => {
            let Some((mut rec, _, collected)) = load(sql, &job_id)? else {
                return Ok(not_found());
            };
            if rec.attempts != attempt {
                return to_value(&Progress {
                    pending: 0,
                    status: rec.status,
                    current: false,
                });
            }
            if rec.status == JobStatus::Accepted {
                rec.status = JobStatus::Processing;
            }
            if rec.started_at.is_none() {
                rec.started_at = Some(now);
            }
            rec.environments = environments;
            rec.items = items;
            rec.max_invocation_subrequests = rec.max_invocation_subrequests.max(subrequests);
            store(sql, &rec, collected)?;
            to_value(&Progress {
                pending: 0,
                status: rec.status,
                current: true,
            })
        }
        LedgerOp::AddActions {
            job_id,
            attempt,
            actions,
            skipped,
            collected,
            subrequests,
        } => {
            let Some((mut rec, _, _)) = load(sql, &job_id)? else {
                return Ok(not_found());
            };
            if rec.attempts != attempt || rec.status.is_final() {
                return to_value(&Progress {
                    pending: 0,
                    status: rec.status,
                    current: false,
                });
            }
            for a in &actions {
                sql.exec(
                    "INSERT OR IGNORE INTO actions (job_id, attempt, env, kind, target, value) VALUES (?, ?, ?, ?, ?, ?)",
                    vec![
                        s(job_id.clone()),
                        i(attempt as i64),
                        s(a.env.clone()),
                        s(a.kind.as_str()),
                        s(a.target.clone()),
                        s(a.value.clone()),
                    ],
                )?;
            }
            rec.add_skipped(&skipped);
            rec.max_invocation_subrequests = rec.max_invocation_subrequests.max(subrequests);
            store(sql, &rec, collected)?;
            let left = pending(sql, &job_id, attempt)? as u64;
            to_value(&Progress {
                pending: left,
                status: rec.status,
                current: true,
            })
        }
        LedgerOp::Claim {
            job_id,
            attempt,
            limit,
            now_ms,
            lease_ms,
            purge_calls_only,
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
            // Rate-limited purge calls first, so they start early and overlap the rest; within
            // a kind, by zone or binding, so batches fill.
            let only = if purge_calls_only {
                "AND kind IN ('tag', 'file', 'prefix', 'host', 'everything')"
            } else {
                ""
            };
            let query = format!(
                "SELECT id, env, kind, target, value, cursor FROM actions WHERE job_id = ? AND attempt = ? AND state = 0 AND lease <= ? {only} ORDER BY CASE kind WHEN 'kv_key' THEN 2 WHEN 'kv_prefix' THEN 3 WHEN 'cache_url' THEN 1 ELSE 0 END, kind, target, id LIMIT ?"
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
            for r in rows {
                sql.exec(
                    "UPDATE actions SET lease = ? WHERE id = ?",
                    vec![i(now_ms + lease_ms), i(r.id)],
                )?;
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
            let Some((mut rec, _, collected)) = load(sql, &job_id)? else {
                return Ok(not_found());
            };
            let current = rec.attempts == attempt && !rec.status.is_final();
            if current {
                settle_results(sql, &job_id, attempt, &results, &mut rec)?;
                for (env, n) in api_calls {
                    rec.purged.api_calls += n;
                    rec.purged_by_environment.entry(env).or_default().api_calls += n;
                }
                push_errors(&mut rec.errors, errors);
            }
            rec.max_invocation_subrequests = rec.max_invocation_subrequests.max(subrequests);
            let left = if current {
                maybe_finish(sql, &mut rec, collected, &now, now_ms)?
            } else {
                0
            };
            store(sql, &rec, collected)?;
            to_value(&Progress {
                pending: left,
                status: rec.status,
                current,
            })
        }
        LedgerOp::Fail {
            job_id,
            attempt,
            error,
            now,
            now_ms,
        } => {
            let Some((mut rec, _, collected)) = load(sql, &job_id)? else {
                return Ok(not_found());
            };
            if rec.attempts == attempt && !rec.status.is_final() {
                rec.status = JobStatus::Failed;
                push_errors(&mut rec.errors, [error]);
                finish_times(&mut rec, &now, now_ms);
                sql.exec(
                    "DELETE FROM actions WHERE job_id = ? AND attempt <= ?",
                    vec![s(job_id), i(attempt as i64)],
                )?;
                store(sql, &rec, collected)?;
            }
            to_value(&rec)
        }
        LedgerOp::Note {
            job_id,
            attempt,
            errors,
            purged,
            subrequests,
        } => {
            let Some((mut rec, _, collected)) = load(sql, &job_id)? else {
                return Ok(not_found());
            };
            if rec.attempts == attempt {
                push_errors(&mut rec.errors, errors);
                rec.purged.add(&purged);
                rec.max_invocation_subrequests = rec.max_invocation_subrequests.max(subrequests);
                store(sql, &rec, collected)?;
            }
            to_value(&rec)
        }
    }
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
