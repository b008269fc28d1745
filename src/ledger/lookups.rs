//! The `refs` table: the reference look-ups of a job attempt, one row per entry (or asset) and
//! environment. A row is a job item to look up (depth 0) or a referrer found (depth ≥ 1), so
//! the unique key plans each referrer once and cuts cycles. Rows are handed out in breadth
//! order (shallowest first) under a lease, like purge actions. Shell (SQL only).

use serde::Deserialize;
use worker::{Result, SqlStorage};

use super::ops::{ClaimLookupsOp, ClaimedLookup, LookupClaim, LookupDone, NewLookup};
use super::references::PulledIn;
use super::sql::{count, i, json, s};
use super::JobRecord;
use crate::contentstack::references::Subject;
use crate::purge::NewAction;

pub const SCHEMA: &[&str] = &[
    // `state`: 0 to look up, 1 looked up, 2 planned and not looked up (at the rule's depth),
    // 3 cut (past `max_lookups`). `origin`: the job item that led here.
    "CREATE TABLE IF NOT EXISTS refs (id INTEGER PRIMARY KEY AUTOINCREMENT, job_id TEXT NOT NULL, attempt INTEGER NOT NULL, env TEXT NOT NULL, key TEXT NOT NULL, subject TEXT NOT NULL, depth INTEGER NOT NULL, origin TEXT NOT NULL, state INTEGER NOT NULL DEFAULT 0, lease INTEGER NOT NULL DEFAULT 0, UNIQUE(job_id, attempt, env, key))",
    "CREATE INDEX IF NOT EXISTS refs_by_state ON refs(job_id, attempt, env, state, depth, id)",
];

const TO_LOOK_UP: i64 = 0;
const LOOKED_UP: i64 = 1;
const PLANNED_ONLY: i64 = 2;
const CUT: i64 = 3;

fn parse<T: serde::de::DeserializeOwned>(text: &str) -> Result<T> {
    serde_json::from_str(text)
        .map_err(|e| worker::Error::RustError(format!("corrupt refs row: {e}")))
}

/// Inserts one row unless its subject is known for the environment; true when inserted.
fn insert(
    sql: &SqlStorage,
    (job_id, attempt): (&str, u32),
    env: &str,
    subject: &Subject,
    depth: u8,
    origin: &Subject,
    state: i64,
) -> Result<bool> {
    #[derive(Deserialize)]
    struct Id {
        #[allow(dead_code)]
        id: i64,
    }
    let rows: Vec<Id> = sql
        .exec(
            "INSERT INTO refs (job_id, attempt, env, key, subject, depth, origin, state) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(job_id, attempt, env, key) DO NOTHING RETURNING id",
            vec![
                s(job_id),
                i(attempt as i64),
                s(env),
                s(subject.key()),
                s(json(subject)?),
                i(depth as i64),
                s(json(origin)?),
                i(state),
            ],
        )?
        .to_array()?;
    Ok(!rows.is_empty())
}

/// Stores job items to look up (each once per environment). A job item already planned as
/// someone's referrer at the rule's depth is looked up all the same.
pub fn add(sql: &SqlStorage, rec: &JobRecord, lookups: &[NewLookup]) -> Result<()> {
    for l in lookups {
        let origin = json(&l.subject)?;
        sql.exec(
            &format!("INSERT INTO refs (job_id, attempt, env, key, subject, depth, origin, state) VALUES (?1, ?2, ?3, ?4, ?5, 0, ?5, {TO_LOOK_UP}) ON CONFLICT(job_id, attempt, env, key) DO UPDATE SET state = {TO_LOOK_UP}, depth = 0, origin = ?5 WHERE refs.state = {PLANNED_ONLY}"),
            vec![
                s(rec.job_id.clone()),
                i(rec.attempts as i64),
                s(l.env.clone()),
                s(l.subject.key()),
                s(origin),
            ],
        )?;
    }
    Ok(())
}

/// Hands out look-ups: per environment at most what `max_lookups` still allows, counting
/// those in flight. An environment with rows left, none in flight and no allowance is cut
/// (truncated): its rows stop and its `on_failure` purge becomes due.
pub fn claim(sql: &SqlStorage, rec: &mut JobRecord, op: &ClaimLookupsOp) -> Result<LookupClaim> {
    #[derive(Deserialize)]
    struct Row {
        id: i64,
        env: String,
        subject: String,
        depth: i64,
        origin: String,
    }
    let job = || s(op.job_id.clone());
    let at = i(op.attempt as i64);
    let summary = rec.references.get_or_insert_with(Default::default);
    let mut answer = LookupClaim {
        current: true,
        ..LookupClaim::default()
    };
    let mut left = op.limit as u64;
    for (env, max) in &op.environments {
        summary.env(env);
        let in_flight = count(
            sql,
            &format!("SELECT COUNT(*) AS n FROM refs WHERE job_id = ? AND attempt = ? AND env = ? AND state = {TO_LOOK_UP} AND lease > ?"),
            vec![job(), at.clone(), s(env.clone()), i(op.now_ms)],
        )? as u64;
        let waiting = count(
            sql,
            &format!("SELECT COUNT(*) AS n FROM refs WHERE job_id = ? AND attempt = ? AND env = ? AND state = {TO_LOOK_UP}"),
            vec![job(), at.clone(), s(env.clone())],
        )? as u64;
        let allowance = summary.allowance(env, *max, in_flight);
        if allowance == 0 && in_flight == 0 && waiting > 0 {
            sql.exec(
                &format!("UPDATE refs SET state = {CUT} WHERE job_id = ? AND attempt = ? AND env = ? AND state = {TO_LOOK_UP}"),
                vec![job(), at.clone(), s(env.clone())],
            )?;
            summary.truncate(env);
            continue;
        }
        let take = allowance.min(left);
        let rows: Vec<Row> = if take == 0 {
            Vec::new()
        } else {
            sql.exec(
                &format!("UPDATE refs SET lease = ?1 WHERE id IN (SELECT id FROM refs WHERE job_id = ?2 AND attempt = ?3 AND env = ?4 AND state = {TO_LOOK_UP} AND lease <= ?5 ORDER BY depth, id LIMIT ?6) RETURNING id, env, subject, depth, origin"),
                vec![
                    i(op.now_ms + op.lease_ms),
                    job(),
                    at.clone(),
                    s(env.clone()),
                    i(op.now_ms),
                    i(take as i64),
                ],
            )?
            .to_array()?
        };
        left -= rows.len() as u64;
        answer.waiting += waiting - rows.len() as u64;
        for r in rows {
            answer.lookups.push(ClaimedLookup {
                id: r.id,
                env: r.env,
                subject: parse(&r.subject)?,
                depth: r.depth.clamp(0, u8::MAX as i64) as u8,
                from: parse(&r.origin)?,
            });
        }
    }
    crate::sorted::sort_by(&mut answer.lookups, |a, b| {
        (a.depth, a.id).cmp(&(b.depth, b.id))
    });
    answer.fall_back = summary.on_failure_pending.clone();
    Ok(answer)
}

/// Settles reported look-ups still to do (a repeated report changes nothing) and stores the
/// referrers not known yet. Returns the actions of the newly planned referrers.
pub fn settle(
    sql: &SqlStorage,
    rec: &mut JobRecord,
    done: Vec<LookupDone>,
) -> Result<Vec<NewAction>> {
    #[derive(Deserialize)]
    struct Row {
        env: String,
        depth: i64,
        origin: String,
    }
    let job = (rec.job_id.as_str(), rec.attempts);
    let summary = rec.references.get_or_insert_with(Default::default);
    let mut actions = Vec::new();
    for d in done {
        let rows: Vec<Row> = sql
            .exec(
                &format!("UPDATE refs SET state = {LOOKED_UP}, lease = 0 WHERE id = ? AND job_id = ? AND attempt = ? AND state = {TO_LOOK_UP} RETURNING env, depth, origin"),
                vec![i(d.id), s(job.0), i(job.1 as i64)],
            )?
            .to_array()?;
        let Some(row) = rows.into_iter().next() else {
            continue;
        };
        let origin: Subject = parse(&row.origin)?;
        let depth = (row.depth + 1).clamp(1, u8::MAX as i64) as u8;
        summary.looked_up(&row.env);
        if d.too_many {
            summary.truncate(&row.env);
        } else if d.refused {
            summary.fall_back(&row.env);
        }
        for r in d.referrers {
            let state = if r.follow { TO_LOOK_UP } else { PLANNED_ONLY };
            if !insert(sql, job, &row.env, &r.subject, depth, &origin, state)? {
                continue;
            }
            summary.planned(PulledIn {
                environment: row.env.clone(),
                content_type: r.subject.content_type.clone().unwrap_or_default(),
                uid: r.subject.uid.clone(),
                locale: r.subject.locale.clone().unwrap_or_default(),
                version: r.version,
                depth,
                from: origin.clone(),
            });
            actions.extend(r.actions);
        }
    }
    Ok(actions)
}

/// Forgets the rows of a job's attempts up to `attempt` (all of them when `None`).
pub fn forget(sql: &SqlStorage, job_id: &str, attempt: Option<u32>) -> Result<()> {
    match attempt {
        Some(a) => sql.exec(
            "DELETE FROM refs WHERE job_id = ? AND attempt <= ?",
            vec![s(job_id), i(a as i64)],
        )?,
        None => sql.exec("DELETE FROM refs WHERE job_id = ?", vec![s(job_id)])?,
    };
    Ok(())
}
