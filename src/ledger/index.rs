//! The job index's storage and operations: one row per job for the dashboard's list (newest
//! first, with a cursor), and the webhook health check's state. Each job's object tells the
//! index what it holds whenever the job's attempt or status changes ([`IndexEntry`]); the
//! index keeps a copy of the record as it was then. Pure but for `worker`'s SQL binding; the
//! Durable Object around it is [`super::index_object`].
//!
//! Choices where the contract is silent:
//! - The list is ordered by when the index first heard of a job; a replay keeps its place.
//! - A finished job leaves the list `LEDGER_RETENTION_DAYS` after it ended even when its
//!   object's own expiry has not told the index yet (the index checks `finished_ms` itself).

use serde::{Deserialize, Serialize};
use serde_json::Value;
use worker::{Result, SqlStorage, SqlStorageValue};

use super::ops::{JobList, ListOp};
use super::sql::{i, json, s};
use crate::webhook_health::HealthState;

pub const SCHEMA: &[&str] = &[
    // `record`: the job's record as its object last reported it; `finished_ms`: when a final
    // job ended (NULL while it runs).
    "CREATE TABLE IF NOT EXISTS jobs (job_id TEXT PRIMARY KEY, seq INTEGER NOT NULL, record TEXT NOT NULL, finished_ms INTEGER)",
    "CREATE INDEX IF NOT EXISTS jobs_by_seq ON jobs(seq)",
    "CREATE INDEX IF NOT EXISTS jobs_by_finish ON jobs(finished_ms)",
    // The webhook health check's state: one row (docs/CONTRACT.md, "Webhook health").
    "CREATE TABLE IF NOT EXISTS health (id INTEGER PRIMARY KEY, state TEXT NOT NULL)",
];

/// One operation on the index, externally tagged like [`super::ops::LedgerOp`].
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IndexOp {
    Put(Box<IndexEntry>),
    List(ListOp),
    GetHealth,
    PutHealth(Box<HealthState>),
}

/// What one job's object holds now, as the index is told it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IndexEntry {
    pub job_id: String,
    /// The attempt and status this entry reports (`None`: the job is gone, forget it).
    pub told: Option<(i64, String)>,
    /// The record's JSON text (`None`: the job is gone).
    pub record: Option<String>,
    pub finished_ms: Option<i64>,
}

/// Applies one job object's report: keeps its record (a new job goes to the top of the list),
/// or forgets a job that is gone.
pub fn put(sql: &SqlStorage, entry: &IndexEntry) -> Result<()> {
    match &entry.record {
        Some(record) => sql.exec(
            "INSERT INTO jobs (job_id, seq, record, finished_ms) VALUES (?1, (SELECT COALESCE(MAX(seq), 0) + 1 FROM jobs), ?2, ?3) ON CONFLICT(job_id) DO UPDATE SET record = excluded.record, finished_ms = excluded.finished_ms",
            vec![
                s(entry.job_id.clone()),
                s(record.clone()),
                entry.finished_ms.map_or(SqlStorageValue::Null, i),
            ],
        )?,
        None => sql.exec(
            "DELETE FROM jobs WHERE job_id = ?",
            vec![s(entry.job_id.clone())],
        )?,
    };
    Ok(())
}

/// Forgets every job that ended more than `retention_ms` before `now_ms`.
pub fn expire(sql: &SqlStorage, now_ms: i64, retention_ms: i64) -> Result<()> {
    sql.exec(
        "DELETE FROM jobs WHERE finished_ms IS NOT NULL AND finished_ms < ?",
        vec![i(now_ms - retention_ms)],
    )?;
    Ok(())
}

/// One page of records, newest first; the cursor is the last row's place in the list.
pub fn list(sql: &SqlStorage, op: ListOp) -> Result<JobList> {
    #[derive(Deserialize)]
    struct Row {
        record: String,
        seq: i64,
    }
    let ListOp { limit, cursor } = op;
    let limit = limit.clamp(1, 200) as i64;
    let rows: Vec<Row> = sql
        .exec(
            "SELECT record, seq FROM jobs WHERE seq < ? ORDER BY seq DESC LIMIT ?",
            vec![i(cursor.unwrap_or(i64::MAX)), i(limit + 1)],
        )?
        .to_array()?;
    let more = rows.len() as i64 > limit;
    let mut jobs = Vec::new();
    let mut last_seq = None;
    for r in rows.into_iter().take(limit as usize) {
        last_seq = Some(r.seq);
        jobs.push(serde_json::from_str::<Value>(&r.record).unwrap_or(Value::Null));
    }
    let cursor = if more {
        last_seq.map(|s| s.to_string())
    } else {
        None
    };
    Ok(JobList { jobs, cursor })
}

/// The webhook health check's state (empty before the first check).
pub fn get_health(sql: &SqlStorage) -> Result<HealthState> {
    #[derive(Deserialize)]
    struct Row {
        state: String,
    }
    let rows: Vec<Row> = sql
        .exec("SELECT state FROM health WHERE id = 1", None)?
        .to_array()?;
    Ok(rows
        .first()
        .and_then(|r| serde_json::from_str(&r.state).ok())
        .unwrap_or_default())
}

/// Replaces the webhook health check's state.
pub fn put_health(sql: &SqlStorage, state: &HealthState) -> Result<()> {
    let text = json(state)?;
    sql.exec(
        "INSERT INTO health (id, state) VALUES (1, ?) ON CONFLICT(id) DO UPDATE SET state = excluded.state",
        vec![s(text)],
    )?;
    Ok(())
}
