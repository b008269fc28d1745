//! The ledger's storage: the SQLite schema of the ledger Durable Object and one function per
//! operation. Each runs synchronously inside one request, so a check and the write that
//! follows it cannot interleave with another delivery. Pure but for `worker`'s SQL binding.

use serde::Deserialize;
use worker::{Result, SqlStorage, SqlStorageValue};

use super::index::IndexEntry;
use super::lookups;
use super::ops::*;
use super::sql::{count, i, json, s};
use super::timeline::{Event, EventKind};
use super::{push_errors, JobRecord, JobStatus, PassOutcome};
use crate::counts::PurgedCounts;
use crate::purge::{
    action_rows, claim_by_calls, first_open_group, ActionKind, ActionResult, BatchSize,
    ClaimedAction, NewAction, Outcome, DEFERRED_GROUP, ON_FAILURE_GROUP, REFERRERS_GROUP,
    SECOND_PASS_GROUP,
};

/// Settings the ledger takes from the configuration (defaults when it is broken).
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    pub repurge_delay_ms: i64,
    pub progress_timeout_ms: i64,
    pub max_drives: u32,
    /// How long a finished job is kept (`LEDGER_RETENTION_DAYS`).
    pub retention_ms: i64,
    /// Items per purge call, by kind.
    pub batch: BatchSize,
    /// The purge bucket and Contentstack's rate (whether a job defers recurring values).
    pub bucket: crate::pace::TokenBucket,
    pub cs_rate: f64,
}

impl Settings {
    /// The settings of a configuration; defaults when it is broken (a broken configuration
    /// stops the pipeline, the ledger still answers).
    pub fn of(cfg: Option<&crate::config::Config>) -> Settings {
        match cfg {
            Some(cfg) => Settings {
                repurge_delay_ms: cfg.timing.repurge_delay_seconds as i64 * 1000,
                progress_timeout_ms: cfg.timing.progress_timeout_seconds as i64 * 1000,
                max_drives: cfg.pacing.retry.max_tries,
                retention_ms: cfg.timing.retention_seconds as i64 * 1000,
                batch: BatchSize::of(cfg),
                bucket: cfg.cloudflare.purge_bucket,
                cs_rate: cfg.contentstack.rate_per_second,
            },
            None => Settings {
                repurge_delay_ms: 60_000,
                progress_timeout_ms: 900_000,
                max_drives: 5,
                retention_ms: 90 * 86_400_000,
                batch: BatchSize {
                    files: crate::config::MAX_PURGE_BATCH,
                    other: crate::config::MAX_PURGE_BATCH,
                },
                bucket: crate::config::CloudflarePlan::Pro.purge_bucket(),
                cs_rate: 10.0,
            },
        }
    }

    /// How often the alarm looks for stalled jobs.
    pub fn alarm_every_ms(self) -> u64 {
        (self.progress_timeout_ms / 3).clamp(1_000, 300_000) as u64
    }
}

pub const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS deliveries (key TEXT PRIMARY KEY, job_id TEXT NOT NULL)",
    // `finished_ms`: when a final job ended (retention counts from it); NULL while it runs.
    // `attempts` and `status` repeat the record's, for the index (`index_change`).
    // `batch_files` / `batch_other`: items per purge call, fixed when the job was accepted;
    // `defer`: whether it defers recurring purge values (`purge::defer_recurring`), fixed at its
    // first start.
    "CREATE TABLE IF NOT EXISTS jobs (job_id TEXT PRIMARY KEY, seq INTEGER NOT NULL, collected INTEGER NOT NULL DEFAULT 0, record TEXT NOT NULL, finished_ms INTEGER, attempts INTEGER NOT NULL DEFAULT 0, status TEXT NOT NULL DEFAULT '', batch_files INTEGER, batch_other INTEGER, defer INTEGER)",
    "CREATE INDEX IF NOT EXISTS jobs_by_finish ON jobs(finished_ms)",
    "CREATE INDEX IF NOT EXISTS deliveries_by_job ON deliveries(job_id)",
    // Purge actions per job attempt. `pass`: 1 first pass, 2 second pass, 3 on_failure.
    // `batch`: the action's purge group (`purge::group_of_skip`): purge calls wait for the KV
    // work of their group and earlier ones, and never mix groups. KV actions are stored once per
    // value (in the first group that wants them); the others once per value and group, `dup` = 1
    // on every row but a value's first (what a value purged is counted once). `counted`: times
    // it was settled done (counted the first time only).
    "CREATE TABLE IF NOT EXISTS work (id INTEGER PRIMARY KEY AUTOINCREMENT, job_id TEXT NOT NULL, attempt INTEGER NOT NULL, env TEXT NOT NULL, kind TEXT NOT NULL, target TEXT NOT NULL, value TEXT NOT NULL, state INTEGER NOT NULL DEFAULT 0, lease INTEGER NOT NULL DEFAULT 0, cursor TEXT, swept INTEGER NOT NULL DEFAULT 0, via TEXT NOT NULL DEFAULT '', batch INTEGER NOT NULL DEFAULT 0, pass INTEGER NOT NULL DEFAULT 1, counted INTEGER NOT NULL DEFAULT 0, dup INTEGER NOT NULL DEFAULT 0, UNIQUE(job_id, attempt, env, kind, target, value, batch))",
    // Look-ups by value use the unique key's index (its first six columns); the separate
    // `work_by_value` index of earlier versions repeated them, one more index write per row.
    "DROP INDEX IF EXISTS work_by_value",
    "CREATE INDEX IF NOT EXISTS work_by_state ON work(job_id, attempt, state, id)",
    "CREATE INDEX IF NOT EXISTS work_by_env ON work(job_id, attempt, env, state, batch)",
    // The first version's table, replaced by `work`.
    "DROP TABLE IF EXISTS actions",
    // URLs an environment requests again after its last pass (`warm`), in warm order; `state`:
    // 0 pending, 1 answered below 500, 2 failed.
    "CREATE TABLE IF NOT EXISTS warm_urls (id INTEGER PRIMARY KEY AUTOINCREMENT, job_id TEXT NOT NULL, attempt INTEGER NOT NULL, env TEXT NOT NULL, url TEXT NOT NULL, state INTEGER NOT NULL DEFAULT 0, lease INTEGER NOT NULL DEFAULT 0)",
    "CREATE INDEX IF NOT EXISTS warm_by_state ON warm_urls(job_id, attempt, state, id)",
    // A dry run's throwaway job (one row when it is one).
    "CREATE TABLE IF NOT EXISTS scratch (id INTEGER PRIMARY KEY)",
    // What the job index was last told of this job (`attempts`, `status`); no row: nothing.
    "CREATE TABLE IF NOT EXISTS indexed (job_id TEXT PRIMARY KEY, attempts INTEGER NOT NULL, status TEXT NOT NULL)",
];

/// Action states in the `work` table.
const PENDING: i64 = ActionState::Pending as i64;
const DONE: i64 = ActionState::Done as i64;
const FAILED: i64 = ActionState::Failed as i64;
/// Passes in the `work` table.
const PASS_FIRST: i64 = Pass::First as i64;
const PASS_SECOND: i64 = Pass::Second as i64;
const PASS_ON_FAILURE: i64 = Pass::OnFailure as i64;

/// Where an action is, as stored in `work.state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActionState {
    Pending = 0,
    Done = 1,
    /// Failed for good (the job ends `partial`).
    Failed = 2,
}

impl From<Outcome> for ActionState {
    fn from(o: Outcome) -> Self {
        match o {
            Outcome::Done => ActionState::Done,
            Outcome::Failed => ActionState::Failed,
            Outcome::Pending => ActionState::Pending,
        }
    }
}

/// Which pass an action belongs to, as stored in `work.pass`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pass {
    First = 1,
    /// The second purge pass (purge calls sent again).
    Second = 2,
    /// The `on_failure` purge of a failing job.
    OnFailure = 3,
}

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

#[derive(Deserialize)]
pub struct RecordRow {
    pub record: String,
    pub seq: i64,
    #[allow(dead_code)]
    collected: i64,
}

pub fn load(sql: &SqlStorage, job_id: &str) -> Result<Option<JobRecord>> {
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

pub fn store(sql: &SqlStorage, rec: &JobRecord) -> Result<()> {
    let json = serde_json::to_string(rec).map_err(|e| worker::Error::RustError(e.to_string()))?;
    let finished_ms = rec
        .finished_at
        .as_deref()
        .filter(|_| rec.status.is_final())
        .and_then(crate::time::parse_iso8601_utc_millis)
        .map_or(SqlStorageValue::Null, i);
    sql.exec(
        "UPDATE jobs SET record = ?, collected = ?, finished_ms = ?, attempts = ?, status = ? WHERE job_id = ?",
        vec![
            s(json),
            i(rec.all_collected() as i64),
            finished_ms,
            i(rec.attempts as i64),
            s(rec.status.as_str()),
            s(rec.job_id.clone()),
        ],
    )?;
    Ok(())
}

/// Retention: forgets every job that ended more than `retention_ms` before `now_ms`, with all
/// that is stored for it (deliveries included, so a new delivery of it is a new job).
pub fn expire(sql: &SqlStorage, now_ms: i64, retention_ms: i64) -> Result<()> {
    #[derive(Deserialize)]
    struct Expired {
        job_id: String,
    }
    let cutoff = now_ms - retention_ms;
    let gone: Vec<Expired> = sql
        .exec(
            "DELETE FROM jobs WHERE finished_ms IS NOT NULL AND finished_ms < ? RETURNING job_id",
            vec![i(cutoff)],
        )?
        .to_array()?;
    for g in gone {
        sql.exec(
            "DELETE FROM deliveries WHERE job_id = ?",
            vec![s(g.job_id.clone())],
        )?;
        sql.exec(
            "DELETE FROM work WHERE job_id = ?",
            vec![s(g.job_id.clone())],
        )?;
        sql.exec(
            "DELETE FROM warm_urls WHERE job_id = ?",
            vec![s(g.job_id.clone())],
        )?;
        lookups::forget(sql, &g.job_id, None)?;
    }
    Ok(())
}

/// When the next kept job expires, if any job has ended.
pub fn next_expiry(sql: &SqlStorage, retention_ms: i64) -> Result<Option<i64>> {
    #[derive(Deserialize)]
    struct Next {
        first: Option<i64>,
    }
    let next: Vec<Next> = sql
        .exec(
            "SELECT MIN(finished_ms) AS first FROM jobs WHERE finished_ms IS NOT NULL",
            None,
        )?
        .to_array()?;
    Ok(next.first().and_then(|n| n.first).map(|f| f + retention_ms))
}

fn pending(sql: &SqlStorage, job_id: &str, attempt: u32) -> Result<i64> {
    count(
        sql,
        &format!(
            "SELECT COUNT(*) AS n FROM work WHERE job_id = ? AND attempt = ? AND state = {PENDING}"
        ),
        vec![s(job_id), i(attempt as i64)],
    )
}

/// The record of an attempt that is still collecting or purging (not ended, not running its
/// `on_failure` purge), or the answer that says to stop.
fn open_attempt(
    sql: &SqlStorage,
    job_id: &str,
    attempt: u32,
) -> Result<Result<JobRecord, Progress>> {
    let Some(rec) = load(sql, job_id)? else {
        return Ok(Err(Progress::gone()));
    };
    if !rec.open_for(attempt, false) {
        return Ok(Err(Progress::stale(rec.status)));
    }
    Ok(Ok(rec))
}

/// Whether the pipeline may still work on this attempt: it is current and unfinished (a
/// failing job's `on_failure` purge included).
fn workable(rec: &JobRecord, attempt: u32) -> bool {
    rec.open_for(attempt, true)
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
        verify: false,
        warm: false,
    };
    if rec.on_failure_running {
        // A failing job is `failed` once its on_failure purge has run.
        if left == 0 {
            end_failed(sql, rec, now, now_ms)?;
            answer.status = Some(rec.status);
        }
        return Ok(answer);
    }
    if rec.status.is_final() {
        return Ok(answer);
    }
    if left > 0 || !rec.all_collected() {
        return Ok(answer);
    }
    let outcome = close_passes(sql, rec, settings, now, now_ms)?;
    match outcome {
        PassOutcome::Verify => answer.verify = true,
        PassOutcome::Warm { .. } => answer.warm = true,
        PassOutcome::SecondPassDue { due_ms, newly } => {
            if newly {
                answer.second_pass_in_s =
                    Some(((due_ms - now_ms).max(0) as u64).div_ceil(1000) as u32);
            }
        }
        PassOutcome::Finished(status) => {
            finish_times(rec, now, now_ms);
            answer.status = Some(status);
            for table in ["work", "warm_urls"] {
                sql.exec(
                    &format!("DELETE FROM {table} WHERE job_id = ? AND attempt <= ?"),
                    vec![s(rec.job_id.clone()), i(attempt as i64)],
                )?;
            }
            lookups::forget(sql, &rec.job_id, Some(attempt))?;
        }
    }
    Ok(answer)
}

/// Ends a job `failed` where it stands (its `on_failure` purge ran, or was given up), with
/// its work and reference look-ups forgotten: the one way a failing job ends, for the steps
/// and the alarm alike.
pub fn end_failed(sql: &SqlStorage, rec: &mut JobRecord, now: &str, now_ms: i64) -> Result<()> {
    rec.on_failure_running = false;
    rec.status = JobStatus::Failed;
    finish_times(rec, now, now_ms);
    for table in ["work", "warm_urls"] {
        sql.exec(
            &format!("DELETE FROM {table} WHERE job_id = ?"),
            vec![s(rec.job_id.clone())],
        )?;
    }
    lookups::forget(sql, &rec.job_id, None)
}

/// Closes the passes of an attempt whose work is all settled ([`JobRecord::close_passes`]),
/// from what its `work` rows say: per environment, whether it both changed KV and purged
/// Cloudflare, and the attempt's done and failed counts. An environment that starts warming
/// gets its URLs listed; one with none is warmed at once.
fn close_passes(
    sql: &SqlStorage,
    rec: &mut JobRecord,
    settings: Settings,
    now: &str,
    now_ms: i64,
) -> Result<PassOutcome> {
    #[derive(Deserialize)]
    struct EnvRow {
        env: String,
        kv: i64,
        cf: i64,
    }
    let (job, attempt) = (s(rec.job_id.clone()), i(rec.attempts as i64));
    let envs: Vec<EnvRow> = sql
        .exec(
            &format!(
                "SELECT env, SUM(CASE WHEN kind IN {kv} AND (state = {DONE} OR swept > 0) THEN 1 ELSE 0 END) AS kv, SUM(CASE WHEN kind IN {cf} AND state = {DONE} THEN 1 ELSE 0 END) AS cf FROM work WHERE job_id = ? AND attempt = ? GROUP BY env",
                kv = kv_kinds_sql(),
                cf = cloudflare_kinds_sql(),
            ),
            vec![job.clone(), attempt.clone()],
        )?
        .to_array()?;
    let envs: Vec<(String, bool)> = envs
        .into_iter()
        .map(|e| (e.env, e.kv > 0 && e.cf > 0))
        .collect();
    let in_state = |state: i64| {
        count(
            sql,
            &format!("SELECT COUNT(*) AS n FROM work WHERE job_id = ? AND attempt = ? AND state = {state}"),
            vec![job.clone(), attempt.clone()],
        )
    };
    let (done, failed) = (in_state(DONE)? as u64, in_state(FAILED)? as u64);
    loop {
        let outcome = rec.close_passes(&envs, settings.repurge_delay_ms, done, failed, now, now_ms);
        let PassOutcome::Warm { newly } = &outcome else {
            return Ok(outcome);
        };
        let mut none = false;
        for env in newly {
            if list_warm_urls(sql, rec, env)? == 0 {
                rec.end_warming(env, now, now_ms);
                none = true;
            }
        }
        if !none {
            return Ok(outcome);
        }
    }
}

pub fn finish_times(rec: &mut JobRecord, now: &str, now_ms: i64) {
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
    target: String,
    counted: i64,
    dup: i64,
}

/// Counts purge calls per zone, in the totals and in their environment's.
fn count_zone_calls(rec: &mut JobRecord, calls: &[crate::purge::ZoneCalls]) {
    for c in calls {
        let env = rec.purged_by_environment.entry(c.env.clone()).or_default();
        for counts in [&mut rec.purged, env] {
            counts.by_zone.entry(c.zone.clone()).or_default().api_calls += c.calls;
        }
    }
}

/// Counts what one settled action adds to the record: what it purged the first time it is
/// done (`counted` = 1 then), and the keys a sweep removed whenever it reports some.
fn count_settled(rec: &mut JobRecord, row: Settled, outcome: Outcome, swept: u64, now_ms: i64) {
    let Some(kind) = ActionKind::parse(&row.kind) else {
        return;
    };
    let mut delta = PurgedCounts::default();
    match outcome {
        Outcome::Done if (row.counted == 1 && row.dup == 0) || kind == ActionKind::KvPrefix => {
            kind.count_result(&mut delta, outcome, swept)
        }
        _ if swept > 0 => kind.count_result(&mut delta, outcome, swept),
        _ => {}
    }
    if kind.is_kv() && (outcome == Outcome::Done || swept > 0) {
        rec.passes.entry(row.env.clone()).or_default().last_kv_ms = Some(now_ms);
    }
    if kind.is_cloudflare() {
        delta = delta.in_zone(&row.target);
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
                "UPDATE work SET state = ?1, lease = 0, counted = counted + (CASE WHEN ?1 = {DONE} THEN 1 ELSE 0 END) WHERE job_id = ?2 AND attempt = ?3 AND state = {PENDING} AND id IN ({marks}) RETURNING env, kind, target, counted, dup"
            );
            let mut binds = vec![
                i(ActionState::from(outcome) as i64),
                s(job_id),
                i(attempt as i64),
            ];
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
                &format!("UPDATE work SET state = ?1, cursor = ?2, swept = swept + ?3, lease = 0, counted = counted + (CASE WHEN ?1 = {DONE} THEN 1 ELSE 0 END) WHERE id = ?4 AND job_id = ?5 AND attempt = ?6 AND state = {PENDING} RETURNING env, kind, target, counted, dup"),
                vec![
                    i(ActionState::from(r.outcome) as i64),
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

/// One row of [`insert_actions`]'s JSON array: env, kind, target, value, group, via, dup, is KV.
type RowJson<'a> = (&'a str, &'a str, &'a str, &'a str, u64, &'a str, u8, u8);

/// Stores actions for an attempt in purge group `group`. A KV action is stored once per value,
/// in the first group that wants it (a later group's purge calls wait for it all the same); any
/// other action once per value and group, so each group's purge calls are the same whenever
/// its actions arrive (docs/ARCHITECTURE.md, "Purge groups").
fn insert_actions(
    sql: &SqlStorage,
    rec: &JobRecord,
    actions: &[NewAction],
    group: u64,
    pass: i64,
) -> Result<()> {
    /// Rows per statement: one bound JSON text of a few dozen kilobytes, far below SQLite's
    /// limits on a bound value.
    const ROWS_PER_STATEMENT: usize = 400;
    /// Reads [`RowJson`] rows.
    const INSERT: &str = "INSERT INTO work (job_id, attempt, env, kind, target, value, batch, pass, via, dup) \
        SELECT ?1, ?2, r.env, r.kind, r.target, r.value, r.batch, ?3, r.via, \
        CASE WHEN r.kv = 1 THEN 0 ELSE (r.dup OR EXISTS (SELECT 1 FROM work w WHERE w.job_id = ?1 AND w.attempt = ?2 AND w.env = r.env AND w.kind = r.kind AND w.target = r.target AND w.value = r.value)) END \
        FROM (SELECT j.key AS n, json_extract(j.value, '$[0]') AS env, json_extract(j.value, '$[1]') AS kind, json_extract(j.value, '$[2]') AS target, json_extract(j.value, '$[3]') AS value, json_extract(j.value, '$[4]') AS batch, json_extract(j.value, '$[5]') AS via, json_extract(j.value, '$[6]') AS dup, json_extract(j.value, '$[7]') AS kv FROM json_each(?4) j) r \
        WHERE NOT EXISTS (SELECT 1 FROM work w WHERE w.job_id = ?1 AND w.attempt = ?2 AND w.env = r.env AND w.kind = r.kind AND w.target = r.target AND w.value = r.value AND (r.kv = 1 OR w.batch = r.batch)) \
        ORDER BY r.n";
    let defer = count(
        sql,
        "SELECT COUNT(*) AS n FROM jobs WHERE job_id = ? AND defer = 1",
        vec![s(rec.job_id.clone())],
    )? > 0;
    // A value that may recur waits for every page where the purge bucket binds (purge groups,
    // docs/ARCHITECTURE.md).
    let rows = action_rows(actions, |a| {
        if defer && a.deferred && group != ON_FAILURE_GROUP && group < DEFERRED_GROUP {
            DEFERRED_GROUP
        } else {
            group
        }
    });
    // One statement per slice of rows (each row bound one by one cost the object most of its
    // CPU: docs/ARCHITECTURE.md, "Where state lives").
    for slice in rows.chunks(ROWS_PER_STATEMENT) {
        let rows_json: Vec<RowJson> = slice
            .iter()
            .map(|r| {
                let a = r.action;
                (
                    a.env.as_str(),
                    a.kind.as_str(),
                    a.target.as_str(),
                    a.value.as_str(),
                    r.group,
                    a.via.as_str(),
                    u8::from(r.dup),
                    u8::from(a.kind.is_kv()),
                )
            })
            .collect();
        sql.exec(
            INSERT,
            vec![
                s(rec.job_id.clone()),
                i(rec.attempts as i64),
                i(pass),
                s(json(&rows_json)?),
            ],
        )?;
    }
    Ok(())
}

pub fn accept(sql: &SqlStorage, op: AcceptOp, settings: Settings) -> Result<AcceptAnswer> {
    let AcceptOp {
        key,
        record,
        scratch,
    } = op;
    if scratch {
        sql.exec("INSERT OR IGNORE INTO scratch (id) VALUES (1)", None)?;
    }
    // One statement both checks and records the delivery.
    let inserted = sql
        .exec(
            "INSERT OR IGNORE INTO deliveries (key, job_id) VALUES (?, ?)",
            vec![s(key), s(record.job_id.clone())],
        )?
        .rows_written();
    if inserted == 0 {
        return Ok(AcceptAnswer {
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
            Ok(AcceptAnswer {
                accepted: true,
                attempt: existing.attempts,
                previous: Some(previous),
            })
        }
        None => {
            let json = serde_json::to_string(&record)
                .map_err(|e| worker::Error::RustError(e.to_string()))?;
            sql.exec(
                    "INSERT INTO jobs (job_id, seq, collected, record, attempts, status, batch_files, batch_other) VALUES (?, (SELECT COALESCE(MAX(seq), 0) + 1 FROM jobs), 0, ?, ?, ?, ?, ?)",
                    vec![s(record.job_id.clone()), s(json), i(record.attempts as i64), s(record.status.as_str()), i(settings.batch.files as i64), i(settings.batch.other as i64)],
                )?;
            Ok(AcceptAnswer {
                accepted: true,
                attempt: 1,
                previous: None,
            })
        }
    }
}

pub fn rollback(sql: &SqlStorage, op: RollbackOp) -> Result<()> {
    let RollbackOp {
        key,
        job_id,
        previous,
    } = op;
    if let Some(key) = key {
        sql.exec("DELETE FROM deliveries WHERE key = ?", vec![s(key)])?;
    }
    match previous {
        Some(prev) => store(sql, &prev)?,
        None => {
            sql.exec("DELETE FROM jobs WHERE job_id = ?", vec![s(job_id.clone())])?;
            sql.exec("DELETE FROM work WHERE job_id = ?", vec![s(job_id.clone())])?;
            sql.exec(
                "DELETE FROM warm_urls WHERE job_id = ?",
                vec![s(job_id.clone())],
            )?;
            lookups::forget(sql, &job_id, None)?;
        }
    }
    Ok(())
}

pub fn get(sql: &SqlStorage, op: GetOp) -> Result<Option<JobRecord>> {
    let GetOp { job_id } = op;
    load(sql, &job_id)
}

pub fn replay(sql: &SqlStorage, op: ReplayOp) -> Result<Option<ReplayAnswer>> {
    let ReplayOp { job_id, now } = op;
    let Some(mut rec) = load(sql, &job_id)? else {
        return Ok(None);
    };
    let previous = Box::new(rec.clone());
    rec.begin_attempt(&now);
    store(sql, &rec)?;
    Ok(Some(ReplayAnswer {
        record: Box::new(rec),
        previous,
    }))
}

pub fn start(sql: &SqlStorage, op: StartOp, settings: Settings) -> Result<Progress> {
    let StartOp {
        job_id,
        attempt,
        scope,
        now,
        now_ms,
        environments,
        items,
        verify_sample,
        warm,
        subrequests,
    } = op;
    let mut rec = match open_attempt(sql, &job_id, attempt)? {
        Ok(rec) => rec,
        Err(answer) => return Ok(answer),
    };
    rec.verify_sample.extend(verify_sample);
    for (env, w) in warm.into_iter().filter(|(_, w)| w.limit > 0) {
        rec.warm.entry(env).or_insert_with(|| super::WarmState {
            limit: w.limit,
            rate: w.rate,
            scope: super::WARM_SCOPE.to_string(),
            ..super::WarmState::default()
        });
    }
    rec.timeline.add(now_ms, Event::new(EventKind::Start));
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
    let defer = crate::purge::defer_recurring(
        items.total,
        settings.bucket,
        settings.batch,
        settings.cs_rate,
    );
    sql.exec(
        "UPDATE jobs SET defer = ? WHERE job_id = ? AND defer IS NULL",
        vec![i(defer as i64), s(rec.job_id.clone())],
    )?;
    rec.progress_ms = now_ms;
    rec.max_invocation_subrequests = rec.max_invocation_subrequests.max(subrequests);
    let p = progress(sql, &mut rec, settings, &now, now_ms)?;
    store(sql, &rec)?;
    Ok(p)
}

pub fn add_actions(sql: &SqlStorage, op: AddActionsOp, settings: Settings) -> Result<Progress> {
    let AddActionsOp {
        job_id,
        attempt,
        scope,
        items,
        actions,
        skipped,
        next_skip,
        collected,
        lookups: to_look_up,
        fell_back,
        group,
        read_all,
        subrequests,
        now,
        now_ms,
    } = op;
    let mut rec = match open_attempt(sql, &job_id, attempt)? {
        Ok(rec) => rec,
        Err(answer) => return Ok(answer),
    };
    add_work(sql, &mut rec, &actions, group)?;
    lookups::add(sql, &rec, &to_look_up)?;
    if !fell_back.is_empty() {
        if let Some(r) = rec.references.as_mut() {
            r.fell_back(&fell_back);
        }
    }
    rec.add_skipped(&skipped);
    let sc = rec.scopes.entry(scope).or_default();
    sc.next_skip = sc.next_skip.max(next_skip);
    if items > 0 {
        rec.timeline
            .add(now_ms, Event::new(EventKind::Pages).count(items));
    }
    sc.collected |= collected;
    sc.read_all |= read_all || collected;
    rec.progress_ms = now_ms;
    rec.max_invocation_subrequests = rec.max_invocation_subrequests.max(subrequests);
    let p = progress(sql, &mut rec, settings, &now, now_ms)?;
    store(sql, &rec)?;
    Ok(p)
}

/// Stores one batch of first-pass actions in purge group `group`. An environment with new work
/// after its first pass ended runs its passes again.
fn add_work(
    sql: &SqlStorage,
    rec: &mut JobRecord,
    actions: &[NewAction],
    group: u64,
) -> Result<()> {
    rec.batches += 1;
    insert_actions(sql, rec, actions, group, PASS_FIRST)?;
    let envs = crate::sorted::set_of(actions.iter().map(|a| a.env.as_str()));
    for env in envs {
        let passed = rec
            .passes
            .get(env)
            .is_some_and(|p| p.first_pass_at.is_some());
        if passed && pending_in_env(sql, rec, env)? {
            rec.new_work(env);
        }
    }
    Ok(())
}

/// Hands out reference look-ups ([`lookups::claim`]).
pub fn claim_lookups(sql: &SqlStorage, op: ClaimLookupsOp) -> Result<LookupClaim> {
    let mut rec = match open_attempt(sql, &op.job_id, op.attempt)? {
        Ok(rec) => rec,
        Err(_) => return Ok(LookupClaim::default()),
    };
    let answer = lookups::claim(sql, &mut rec, &op)?;
    store(sql, &rec)?;
    Ok(answer)
}

/// Stores what reference look-ups found: the look-ups are settled, new referrers planned.
pub fn report_lookups(
    sql: &SqlStorage,
    op: ReportLookupsOp,
    settings: Settings,
) -> Result<Progress> {
    let ReportLookupsOp {
        job_id,
        attempt,
        done,
        skipped,
        errors,
        subrequests,
        now,
        now_ms,
    } = op;
    let mut rec = match open_attempt(sql, &job_id, attempt)? {
        Ok(rec) => rec,
        Err(answer) => return Ok(answer),
    };
    if !done.is_empty() {
        rec.timeline.add(
            now_ms,
            Event::new(EventKind::Lookups).count(done.len() as u64),
        );
    }
    let actions = lookups::settle(sql, &mut rec, done)?;
    add_work(sql, &mut rec, &actions, crate::purge::REFERRERS_GROUP)?;
    rec.add_skipped(&skipped);
    push_errors(&mut rec.errors, errors);
    rec.progress_ms = now_ms;
    rec.max_invocation_subrequests = rec.max_invocation_subrequests.max(subrequests);
    let p = progress(sql, &mut rec, settings, &now, now_ms)?;
    store(sql, &rec)?;
    Ok(p)
}

/// The first purge group still open per environment: `(env, group)` pairs for environments
/// named by a scope, and the group for every other environment (from the `*` scope).
fn open_groups(rec: &JobRecord, page_size: u64) -> (Vec<(String, u64)>, Option<u64>) {
    let mut named = Vec::new();
    let mut any = None;
    for (name, sc) in &rec.scopes {
        let open = first_open_group(sc.collected, sc.read_all, sc.next_skip, page_size);
        if name == crate::event::ANY_SCOPE {
            any = open;
        } else if let Some(g) = open {
            named.push((name.clone(), g));
        }
    }
    // An environment named by its own scope is also collected by a `*` scope, if any.
    if let Some(a) = any {
        for (_, g) in named.iter_mut() {
            *g = (*g).min(a);
        }
    }
    (named, any)
}

/// Most purge calls one claim takes by count ([`ClaimOp::calls`]).
const MAX_CALLS_PER_CLAIM: u32 = 32;

pub fn claim(sql: &SqlStorage, op: ClaimOp, settings: Settings) -> Result<Vec<ClaimedAction>> {
    let ClaimOp {
        job_id,
        attempt,
        limit,
        calls,
        now_ms,
        lease_ms,
    } = op;
    #[derive(Deserialize)]
    struct Row {
        id: i64,
        env: String,
        kind: String,
        target: String,
        value: String,
        via: String,
        cursor: Option<String>,
        batch: i64,
    }
    let rec = match load(sql, &job_id)? {
        Some(rec) if workable(&rec, attempt) => rec,
        _ => return Ok(Vec::<ClaimedAction>::new()),
    };
    let kv = kv_kinds_sql();
    let cf = cloudflare_kinds_sql();
    // A purge action's group must be closed (every page of it stored): `batch < open`.
    let (named, any) = open_groups(&rec, crate::contentstack::PAGE_SIZE);
    let mut binds = vec![
        s(job_id.clone()),
        i(attempt as i64),
        i(now_ms),
        SqlStorageValue::Null,
    ];
    let mut open = String::new();
    for (env, g) in &named {
        binds.push(s(env.clone()));
        binds.push(i(*g as i64));
        open.push_str(&format!(" WHEN ?{} THEN ?{}", binds.len() - 1, binds.len()));
    }
    binds.push(i(any.map_or(i64::MAX, |g| g as i64)));
    let open = if open.is_empty() {
        format!("?{}", binds.len())
    } else {
        format!("CASE w.env{open} ELSE ?{} END", binds.len())
    };
    let limit = limit.clamp(1, 10_000) as usize;
    let calls = calls.min(MAX_CALLS_PER_CLAIM) as usize;
    let batch = job_batch(sql, &job_id, settings)?;
    // Rows past `limit`: the calls asked for and one more (to see whether the last is whole),
    // or, counting calls in `limit`, one call of the largest size.
    let fetch = limit
        + if calls > 0 {
            (calls + 1) * batch.files.max(batch.other)
        } else {
            crate::config::MAX_ENTERPRISE_URL_BATCH
        };
    binds[3] = i(fetch as i64);
    // KV work first in each environment: anything else waits until no KV action of its
    // environment, group or an earlier one, is pending; purge calls also wait for their group
    // to close. Then rate-limited purge calls first, so they start early and overlap the rest,
    // sorted by call (environment, zone, kind, group), so each is whole.
    let query = format!(
            "WITH kv_left AS (SELECT env, MIN(batch) AS first FROM work WHERE job_id = ?1 AND attempt = ?2 AND state = {PENDING} AND kind IN {kv} GROUP BY env) \
             SELECT w.id, w.env, w.kind, w.target, w.value, w.via, w.cursor, w.batch FROM work w LEFT JOIN kv_left ON kv_left.env = w.env \
             WHERE w.job_id = ?1 AND w.attempt = ?2 AND w.state = {PENDING} AND w.lease <= ?3 \
             AND (w.kind IN {kv} OR ((kv_left.first IS NULL OR w.batch < kv_left.first) AND (w.kind NOT IN {cf} OR w.batch < ({open})))) \
             ORDER BY CASE w.kind WHEN 'kv_key' THEN 2 WHEN 'kv_prefix' THEN 3 WHEN 'cache_url' THEN 1 ELSE 0 END, w.env, w.target, w.kind, w.batch, w.id LIMIT ?4"
        );
    let rows: Vec<Row> = sql.exec(&query, binds)?.to_array()?;
    let complete = rows.len() < fetch
        || rows
            .last()
            .and_then(|r| ActionKind::parse(&r.kind))
            .is_none_or(|k| !k.is_cloudflare());
    let rows: Vec<ClaimedAction> = rows
        .into_iter()
        .filter_map(|r| {
            Some(ClaimedAction {
                id: r.id,
                env: r.env,
                kind: ActionKind::parse(&r.kind)?,
                target: r.target,
                value: r.value,
                via: r.via,
                cursor: r.cursor,
                group: r.batch.max(0) as u64,
                call: 0,
            })
        })
        .collect();
    let out = claim_by_calls(rows, complete, limit, calls, batch);
    let ids: Vec<i64> = out.iter().map(|r| r.id).collect();
    for chunk in ids.chunks(IDS_PER_STATEMENT) {
        let marks = vec!["?"; chunk.len()].join(", ");
        let mut binds = vec![i(now_ms + lease_ms)];
        binds.extend(chunk.iter().map(|id| i(*id)));
        sql.exec(
            &format!("UPDATE work SET lease = ? WHERE id IN ({marks})"),
            binds,
        )?;
    }
    Ok(out)
}

/// Settles a round's results; with `then_claim`, also claims the next round's actions while
/// the attempt's work goes on in the same step (not when it ends, waits for its second pass or
/// has a verification due: those actions would sit leased).
pub fn report(sql: &SqlStorage, op: ReportOp, settings: Settings) -> Result<Reported> {
    let then_claim = op.then_claim;
    let (job_id, attempt, now_ms) = (op.job_id.clone(), op.attempt, op.now_ms);
    let progress = settle_report(sql, op, settings)?;
    let next = match then_claim {
        Some(c) if progress.goes_on() => claim(
            sql,
            ClaimOp {
                job_id,
                attempt,
                limit: c.limit,
                calls: c.calls,
                now_ms,
                lease_ms: c.lease_ms,
            },
            settings,
        )?,
        _ => Vec::new(),
    };
    Ok(Reported { progress, next })
}

fn settle_report(sql: &SqlStorage, op: ReportOp, settings: Settings) -> Result<Progress> {
    let ReportOp {
        job_id,
        attempt,
        results,
        api_calls,
        zone_calls,
        errors,
        subrequests,
        now,
        now_ms,
        then_claim: _,
    } = op;
    let Some(mut rec) = load(sql, &job_id)? else {
        return Ok(Progress::gone());
    };
    rec.max_invocation_subrequests = rec.max_invocation_subrequests.max(subrequests);
    if !workable(&rec, attempt) {
        store(sql, &rec)?;
        return Ok(Progress::stale(rec.status));
    }
    let kv_before = rec.purged.kv_keys + rec.purged.kv_prefix_keys;
    let settled = settle_results(sql, &job_id, attempt, &results, &mut rec, now_ms)?;
    let kv = rec.purged.kv_keys + rec.purged.kv_prefix_keys - kv_before;
    if kv > 0 {
        rec.timeline
            .add(now_ms, Event::new(EventKind::Kv).count(kv));
    }
    let calls: u64 = api_calls.values().sum();
    if calls > 0 {
        rec.timeline
            .add(now_ms, Event::new(EventKind::Purge).count(calls));
    }
    for (env, n) in api_calls {
        rec.purged.api_calls += n;
        rec.purged_by_environment.entry(env).or_default().api_calls += n;
    }
    count_zone_calls(&mut rec, &zone_calls);
    push_errors(&mut rec.errors, errors);
    if settled > 0 {
        rec.progress_ms = now_ms;
    }
    let p = progress(sql, &mut rec, settings, &now, now_ms)?;
    store(sql, &rec)?;
    Ok(p)
}

pub fn second_pass(sql: &SqlStorage, op: SecondPassOp, settings: Settings) -> Result<Progress> {
    let SecondPassOp {
        job_id,
        attempt,
        now,
        now_ms,
    } = op;
    let mut rec = match open_attempt(sql, &job_id, attempt)? {
        Ok(rec) => rec,
        Err(answer) => return Ok(answer),
    };
    let mut p = match rec.start_second_pass(now_ms, 1_000) {
        Ok(envs) => {
            for env in &envs {
                rec.timeline
                    .add(now_ms, Event::new(EventKind::SecondPass).env(env));
            }
            for env in envs {
                sql.exec(
                        &format!(
                            "UPDATE work SET state = {PENDING}, pass = {PASS_SECOND}, lease = 0, batch = {SECOND_PASS_GROUP} WHERE id IN (SELECT MIN(w.id) FROM work w WHERE w.job_id = ?1 AND w.attempt = ?2 AND w.env = ?3 AND w.pass = {PASS_FIRST} AND w.state = {DONE} AND w.kind IN {cf} AND NOT EXISTS (SELECT 1 FROM work v WHERE v.job_id = ?1 AND v.attempt = ?2 AND v.env = ?3 AND v.kind = w.kind AND v.target = w.target AND v.value = w.value AND v.pass = {PASS_SECOND}) GROUP BY w.kind, w.target, w.value)",
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
            verify: false,
            warm: false,
        },
    };
    if p.second_pass_in_s.is_none() && rec.awaiting_second_pass() {
        p.second_pass_in_s = Some(1);
    }
    store(sql, &rec)?;
    Ok(p)
}

pub fn fail(sql: &SqlStorage, op: FailOp, settings: Settings) -> Result<Progress> {
    let FailOp {
        job_id,
        attempt,
        error,
        actions,
        now,
        now_ms,
    } = op;
    let mut rec = match open_attempt(sql, &job_id, attempt)? {
        Ok(rec) => rec,
        Err(answer) => return Ok(answer),
    };
    // `failed` once the on_failure purge has run (at once when there is none).
    push_errors(&mut rec.errors, [error]);
    sql.exec("DELETE FROM work WHERE job_id = ?", vec![s(job_id.clone())])?;
    lookups::forget(sql, &job_id, None)?;
    insert_actions(
        sql,
        &rec,
        &actions,
        crate::purge::ON_FAILURE_GROUP,
        PASS_ON_FAILURE,
    )?;
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
    Ok(p)
}

/// Whether an environment has pending work in the attempt.
fn pending_in_env(sql: &SqlStorage, rec: &JobRecord, env: &str) -> Result<bool> {
    Ok(count(
        sql,
        &format!("SELECT COUNT(*) AS n FROM work WHERE job_id = ? AND attempt = ? AND env = ? AND state = {PENDING}"),
        vec![s(rec.job_id.clone()), i(rec.attempts as i64), s(env)],
    )? > 0)
}

/// Hands out one due verification with its sample of purged URLs (docs/CONTRACT.md,
/// "Verified invalidation"). An environment with no URL to probe is settled at once.
pub fn claim_verification(sql: &SqlStorage, op: ClaimVerificationOp) -> Result<VerificationClaim> {
    let mut rec = match open_attempt(sql, &op.job_id, op.attempt)? {
        Ok(rec) => rec,
        Err(_) => return Ok(VerificationClaim::default()),
    };
    #[derive(Deserialize)]
    struct Row {
        target: String,
        value: String,
        via: String,
    }
    let mut answer = VerificationClaim {
        current: true,
        ..VerificationClaim::default()
    };
    loop {
        let (claimed, waiting) = rec.claim_verification(op.now_ms, op.lease_ms);
        answer.waiting = waiting;
        let Some((env, due)) = claimed else {
            break;
        };
        let rows: Vec<Row> = sql
            .exec(
                &format!(
                    "SELECT target, value, MIN(via) AS via FROM work WHERE job_id = ? AND attempt = ? AND env = ? AND kind = '{file}' AND state = {DONE} GROUP BY target, value ORDER BY MIN(id)",
                    file = ActionKind::File.as_str()
                ),
                vec![s(op.job_id.clone()), i(op.attempt as i64), s(env.clone())],
            )?
            .to_array()?;
        // The environment's purge endpoint, as its actions were planned.
        let via = rows.first().map(|r| r.via.clone()).unwrap_or_default();
        let urls: Vec<(String, String)> = rows
            .into_iter()
            .filter(|r| crate::probe::probeable(&r.value))
            .map(|r| (r.target, r.value))
            .collect();
        let n = rec
            .verify_sample
            .get(&env)
            .copied()
            .unwrap_or(0)
            .min(op.max_urls);
        let sample = crate::probe::spread(&urls, n as usize);
        if sample.is_empty() {
            // Nothing was purged by URL here: nothing to probe.
            let v = crate::probe::summarise(&[], &[], due.pass, &op.now);
            rec.settle_verification(&env, v, op.now_ms);
            continue;
        }
        answer.work = Some(VerificationWork {
            env,
            pass: due.pass,
            since_ms: due.since_ms,
            urls: sample,
            via,
        });
        break;
    }
    store(sql, &rec)?;
    Ok(answer)
}

/// Stores an environment's verification and moves the attempt on.
pub fn report_verification(
    sql: &SqlStorage,
    op: ReportVerificationOp,
    settings: Settings,
) -> Result<Progress> {
    let ReportVerificationOp {
        job_id,
        attempt,
        env,
        verification,
        api_calls,
        zone_calls,
        errors,
        subrequests,
        now,
        now_ms,
    } = op;
    let mut rec = match open_attempt(sql, &job_id, attempt)? {
        Ok(rec) => rec,
        Err(answer) => return Ok(answer),
    };
    rec.max_invocation_subrequests = rec.max_invocation_subrequests.max(subrequests);
    if rec.settle_verification(&env, verification, now_ms) {
        rec.purged.api_calls += api_calls;
        rec.purged_by_environment.entry(env).or_default().api_calls += api_calls;
        count_zone_calls(&mut rec, &zone_calls);
        push_errors(&mut rec.errors, errors);
    }
    let p = progress(sql, &mut rec, settings, &now, now_ms)?;
    store(sql, &rec)?;
    Ok(p)
}

/// What the job index should be told so that it agrees with this object: the job's record
/// when its attempt or status changed since the index last heard (or the index never did), a
/// forget when the job is gone (rolled back or expired) but the index still lists it; `None`
/// when the index is up to date (docs/ARCHITECTURE.md, "Where state lives").
pub fn index_change(sql: &SqlStorage) -> Result<Option<IndexEntry>> {
    let change = untold_change(sql)?;
    // A dry run's throwaway job is never told (checked only when there is something to tell).
    if change.is_some() && is_scratch(sql)? {
        return Ok(None);
    }
    Ok(change)
}

fn untold_change(sql: &SqlStorage) -> Result<Option<IndexEntry>> {
    #[derive(Deserialize)]
    struct Row {
        job_id: String,
        attempts: i64,
        status: String,
        told_attempts: Option<i64>,
        told_status: Option<String>,
        record: String,
        finished_ms: Option<i64>,
    }
    let rows: Vec<Row> = sql
        .exec(
            "SELECT j.job_id, j.attempts, j.status, x.attempts AS told_attempts, x.status AS told_status, j.record, j.finished_ms FROM jobs j LEFT JOIN indexed x ON x.job_id = j.job_id",
            None,
        )?
        .to_array()?;
    if let Some(r) = rows.into_iter().next() {
        if r.told_attempts == Some(r.attempts) && r.told_status.as_deref() == Some(&r.status) {
            return Ok(None);
        }
        return Ok(Some(IndexEntry {
            job_id: r.job_id,
            told: Some((r.attempts, r.status)),
            record: Some(r.record),
            finished_ms: r.finished_ms,
        }));
    }
    #[derive(Deserialize)]
    struct Told {
        job_id: String,
    }
    let told: Vec<Told> = sql.exec("SELECT job_id FROM indexed", None)?.to_array()?;
    Ok(told.into_iter().next().map(|t| IndexEntry {
        job_id: t.job_id,
        told: None,
        record: None,
        finished_ms: None,
    }))
}

/// Records that the index now holds `entry`.
pub fn index_told(sql: &SqlStorage, entry: &IndexEntry) -> Result<()> {
    match &entry.told {
        Some((attempts, status)) => sql.exec(
            "INSERT INTO indexed (job_id, attempts, status) VALUES (?, ?, ?) ON CONFLICT(job_id) DO UPDATE SET attempts = excluded.attempts, status = excluded.status",
            vec![s(entry.job_id.clone()), i(*attempts), s(status.clone())],
        )?,
        None => sql.exec(
            "DELETE FROM indexed WHERE job_id = ?",
            vec![s(entry.job_id.clone())],
        )?,
    };
    Ok(())
}

/// Whether this object holds a dry run's throwaway job.
pub fn is_scratch(sql: &SqlStorage) -> Result<bool> {
    Ok(count(sql, "SELECT COUNT(*) AS n FROM scratch", Vec::new())? > 0)
}

/// Items per purge call for this job: fixed when it was accepted, so a deploy that changes
/// `PURGE_BATCH_SIZE` changes new jobs only (the configuration's for a job stored without).
fn job_batch(sql: &SqlStorage, job_id: &str, settings: Settings) -> Result<BatchSize> {
    #[derive(Deserialize)]
    struct Row {
        batch_files: Option<i64>,
        batch_other: Option<i64>,
    }
    let rows: Vec<Row> = sql
        .exec(
            "SELECT batch_files, batch_other FROM jobs WHERE job_id = ?",
            vec![s(job_id)],
        )?
        .to_array()?;
    Ok(match rows.first() {
        Some(Row {
            batch_files: Some(f),
            batch_other: Some(o),
        }) if *f > 0 && *o > 0 => BatchSize {
            files: *f as usize,
            other: *o as usize,
        },
        _ => settings.batch,
    })
}

/// Lists the URLs `env` requests again after its last pass: those it purged by URL in its first
/// pass, each once, in warm order (the job's item pages in order, then the referrers), at most
/// its `warm`. Returns how many.
fn list_warm_urls(sql: &SqlStorage, rec: &JobRecord, env: &str) -> Result<u64> {
    let limit = rec.warm.get(env).map_or(0, |w| w.limit);
    let kinds = kinds_sql(|k| matches!(k, ActionKind::File | ActionKind::CacheUrl));
    let written = sql
        .exec(
            &format!(
                "INSERT INTO warm_urls (job_id, attempt, env, url) SELECT ?1, ?2, ?3, value FROM work WHERE job_id = ?1 AND attempt = ?2 AND env = ?3 AND kind IN {kinds} AND pass = {PASS_FIRST} AND state = {DONE} GROUP BY value ORDER BY MIN(batch = {REFERRERS_GROUP}), MIN(id) LIMIT ?4"
            ),
            vec![
                s(rec.job_id.clone()),
                i(rec.attempts as i64),
                s(env),
                i(limit as i64),
            ],
        )?
        .rows_written();
    Ok(written as u64)
}

/// Hands out the next warm requests of the first environment that has some, leased until
/// `now_ms + lease_ms`, with its pace; an environment whose URLs are all answered ends its
/// warming here (then `progress` says where the attempt goes).
pub fn claim_warm(sql: &SqlStorage, op: ClaimWarmOp, settings: Settings) -> Result<WarmClaim> {
    #[derive(Deserialize)]
    struct Row {
        id: i64,
        env: String,
        url: String,
    }
    let mut rec = match open_attempt(sql, &op.job_id, op.attempt)? {
        Ok(rec) => rec,
        Err(_) => return Ok(WarmClaim::default()),
    };
    let mut answer = WarmClaim {
        current: true,
        ..WarmClaim::default()
    };
    if end_warmed(sql, &mut rec, &op.now, op.now_ms)? {
        answer.progress = Some(progress(sql, &mut rec, settings, &op.now, op.now_ms)?);
        store(sql, &rec)?;
        return Ok(answer);
    }
    let rows: Vec<Row> = sql
        .exec(
            "SELECT id, env, url FROM warm_urls WHERE job_id = ? AND attempt = ? AND state = 0 AND lease <= ? ORDER BY id LIMIT ?",
            vec![
                s(op.job_id.clone()),
                i(op.attempt as i64),
                i(op.now_ms),
                i(op.limit.clamp(1, 500) as i64),
            ],
        )?
        .to_array()?;
    let Some(env) = rows.first().map(|r| r.env.clone()) else {
        // Leased by another invocation: the step looks again later.
        return Ok(answer);
    };
    for r in rows.iter().filter(|r| r.env == env) {
        sql.exec(
            "UPDATE warm_urls SET lease = ? WHERE id = ?",
            vec![i(op.now_ms + op.lease_ms), i(r.id)],
        )?;
        answer.urls.push((r.id, r.url.clone()));
    }
    let state = rec.warm.get(&env).cloned().unwrap_or_default();
    answer.rate = state.rate.max(1);
    answer.next_ms = state.next_ms;
    answer.env = env;
    Ok(answer)
}

/// Ends the warming of every environment whose URLs are all answered; whether any ended.
fn end_warmed(sql: &SqlStorage, rec: &mut JobRecord, now: &str, now_ms: i64) -> Result<bool> {
    let warming: Vec<String> = rec
        .passes
        .iter()
        .filter(|(_, p)| p.phase == crate::lifecycle::Phase::Warming)
        .map(|(e, _)| e.clone())
        .collect();
    let mut ended = false;
    for env in warming {
        let left = count(
            sql,
            "SELECT COUNT(*) AS n FROM warm_urls WHERE job_id = ? AND attempt = ? AND env = ? AND state = 0",
            vec![s(rec.job_id.clone()), i(rec.attempts as i64), s(env.clone())],
        )?;
        if left == 0 {
            rec.end_warming(&env, now, now_ms);
            ended = true;
        }
    }
    Ok(ended)
}

/// Counts warm requests answered: each URL once, whatever repeats; then ends the warming of
/// environments with none left.
pub fn report_warm(sql: &SqlStorage, op: ReportWarmOp, settings: Settings) -> Result<Progress> {
    let mut rec = match open_attempt(sql, &op.job_id, op.attempt)? {
        Ok(rec) => rec,
        Err(answer) => return Ok(answer),
    };
    let mut answered = 0;
    for (id, ok) in &op.results {
        let changed = sql
            .exec(
                "UPDATE warm_urls SET state = ?, lease = 0 WHERE id = ? AND job_id = ? AND attempt = ? AND env = ? AND state = 0",
                vec![
                    i(if *ok { 1 } else { 2 }),
                    i(*id),
                    s(op.job_id.clone()),
                    i(op.attempt as i64),
                    s(op.env.clone()),
                ],
            )?
            .rows_written();
        if changed == 0 {
            continue;
        }
        answered += 1;
        if let Some(w) = rec.warm.get_mut(&op.env) {
            w.requested += 1;
            if *ok {
                w.ok += 1;
            } else {
                w.failed += 1;
            }
        }
    }
    if let Some(w) = rec.warm.get_mut(&op.env) {
        w.next_ms = w.next_ms.max(op.next_ms);
    }
    if answered > 0 {
        rec.timeline.add(
            op.now_ms,
            Event::new(EventKind::Warm).env(&op.env).count(answered),
        );
        rec.progress_ms = op.now_ms;
    }
    end_warmed(sql, &mut rec, &op.now, op.now_ms)?;
    let p = progress(sql, &mut rec, settings, &op.now, op.now_ms)?;
    store(sql, &rec)?;
    Ok(p)
}
