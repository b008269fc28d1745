//! Purge actions: the unit of work the executors perform, derived from a [`Plan`].
//!
//! A plan is flattened into [`NewAction`]s that the ledger stores (de-duplicated per job
//! attempt), hands out in claims and marks done, so a redelivered or replayed message never
//! counts an action twice. The executors that talk to KV, the Cache API and the Cloudflare API
//! live in [`exec`]; this file is pure.

pub mod exec;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::counts::PurgedCounts;
use crate::plan::Plan;

/// What one action does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionKind {
    /// Delete one KV key (target = binding name).
    KvKey,
    /// Delete every KV key under a prefix (target = binding name).
    KvPrefix,
    /// Delete one URL from this location's Cache API.
    CacheUrl,
    /// Cloudflare purge by tag (target = zone id).
    Tag,
    /// Cloudflare purge by URL.
    File,
    /// Cloudflare purge by prefix.
    Prefix,
    /// Cloudflare purge by host.
    Host,
    /// Cloudflare purge everything.
    Everything,
}

impl ActionKind {
    pub const ALL: [ActionKind; 8] = [
        ActionKind::KvKey,
        ActionKind::KvPrefix,
        ActionKind::CacheUrl,
        ActionKind::Tag,
        ActionKind::File,
        ActionKind::Prefix,
        ActionKind::Host,
        ActionKind::Everything,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ActionKind::KvKey => "kv_key",
            ActionKind::KvPrefix => "kv_prefix",
            ActionKind::CacheUrl => "cache_url",
            ActionKind::Tag => "tag",
            ActionKind::File => "file",
            ActionKind::Prefix => "prefix",
            ActionKind::Host => "host",
            ActionKind::Everything => "everything",
        }
    }

    pub fn parse(s: &str) -> Option<ActionKind> {
        ActionKind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// Whether this action changes Workers KV (a key delete or a prefix sweep).
    pub fn is_kv(self) -> bool {
        matches!(self, ActionKind::KvKey | ActionKind::KvPrefix)
    }

    /// Whether this is a call to the Cloudflare purge API.
    pub fn is_cloudflare(self) -> bool {
        matches!(
            self,
            ActionKind::Tag
                | ActionKind::File
                | ActionKind::Prefix
                | ActionKind::Host
                | ActionKind::Everything
        )
    }

    /// The body field of the purge API for this kind.
    pub fn purge_field(self) -> Option<&'static str> {
        match self {
            ActionKind::Tag => Some("tags"),
            ActionKind::File => Some("files"),
            ActionKind::Prefix => Some("prefixes"),
            ActionKind::Host => Some("hosts"),
            _ => None,
        }
    }

    /// Adds what one executed action of this kind counts as: 1 when done, and for a prefix
    /// sweep the keys it removed (whatever its outcome, since they are gone).
    pub fn count_result(self, counts: &mut PurgedCounts, outcome: Outcome, swept: u64) {
        match (outcome, self) {
            (_, ActionKind::KvPrefix) => self.count_into(counts, swept),
            (Outcome::Done, _) => self.count_into(counts, 1),
            _ => {}
        }
    }

    /// Adds `n` completed actions of this kind (plus swept keys for prefixes) to the counts.
    pub fn count_into(self, counts: &mut PurgedCounts, n: u64) {
        match self {
            ActionKind::KvKey => counts.kv_keys += n,
            ActionKind::KvPrefix => counts.kv_prefix_keys += n,
            ActionKind::CacheUrl => counts.cache_api += n,
            ActionKind::Tag => counts.tags += n,
            ActionKind::File => counts.urls += n,
            ActionKind::Prefix => counts.prefixes += n,
            ActionKind::Host => counts.hosts += n,
            ActionKind::Everything => {}
        }
    }
}

/// An action to store for a job attempt.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct NewAction {
    pub env: String,
    pub kind: ActionKind,
    /// KV binding name, or zone id, or "" for the Cache API.
    pub target: String,
    pub value: String,
    /// How it is carried out, fixed when it is planned: the purge endpoint of a purge call,
    /// the namespace id for REST bulk deletes of a KV key (or "").
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub via: String,
    /// A purge value that may recur on later pages: stored in [`DEFERRED_GROUP`], purged once
    /// after the last page.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deferred: bool,
}

/// One stored action as one call to the ledger stores it: its purge group and whether the same
/// value is already stored in another group (`dup`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActionRow<'a> {
    pub action: &'a NewAction,
    pub group: u64,
    /// The same value (environment, kind, target, value) came earlier in the same call, in
    /// another group. The ledger adds "or it is stored already" itself.
    pub dup: bool,
}

/// The rows one call's `actions` store, in order, with `group_of` giving each one's purge group:
/// a KV action once per value (its first group), any other action once per value and group.
/// The ledger writes them in one statement, which checks only the rows stored before the call:
/// this is the same rule applied within the call, so the result is the one row-by-row inserts
/// would give (docs/ARCHITECTURE.md, "Purge groups").
pub fn action_rows(
    actions: &[NewAction],
    group_of: impl Fn(&NewAction) -> u64,
) -> Vec<ActionRow<'_>> {
    use std::collections::BTreeSet;
    let mut values: BTreeSet<(&str, &str, &str, &str)> = BTreeSet::new();
    let mut in_group: BTreeSet<(&str, &str, &str, &str, u64)> = BTreeSet::new();
    let mut rows = Vec::with_capacity(actions.len());
    for a in actions {
        let group = group_of(a);
        let value = (
            a.env.as_str(),
            a.kind.as_str(),
            a.target.as_str(),
            a.value.as_str(),
        );
        let earlier = values.contains(&value);
        let fresh = if a.kind.is_kv() {
            !earlier
        } else {
            in_group.insert((value.0, value.1, value.2, value.3, group))
        };
        if fresh {
            values.insert(value);
            rows.push(ActionRow {
                action: a,
                group,
                dup: earlier && !a.kind.is_kv(),
            });
        }
    }
    rows
}

/// An action handed out by the ledger for execution.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimedAction {
    pub id: i64,
    pub env: String,
    pub kind: ActionKind,
    pub target: String,
    pub value: String,
    /// How it is carried out ([`NewAction::via`]).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub via: String,
    /// KV list cursor where an interrupted prefix sweep resumes.
    #[serde(default)]
    pub cursor: Option<String>,
    /// The purge group the action belongs to ([`group_of_skip`]): a purge call never mixes
    /// groups.
    #[serde(default)]
    pub group: u64,
    /// The purge call it goes out in, as the claim cut it ([`claim_by_calls`], 1, 2, …; 0
    /// when not cut by a claim): the executor sends exactly these calls.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub call: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// What happened to one claimed action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionResult {
    pub id: i64,
    pub outcome: Outcome,
    /// Keys removed (prefix sweeps), counted even when the sweep is not finished yet.
    #[serde(default)]
    pub swept: u64,
    #[serde(default)]
    pub cursor: Option<String>,
    #[serde(default)]
    pub error: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Done,
    /// Failed for good (a 4xx answer, `success:false`): makes the job `partial`.
    Failed,
    /// Not finished (a prefix sweep that ran out of budget): stays pending with its cursor.
    Pending,
}

/// Flattens a plan into de-duplicated actions, in a stable order.
pub fn actions_from_plan(plan: &Plan) -> Vec<NewAction> {
    let mut out = Vec::new();
    for (env, p) in &plan.environments {
        let push = |out: &mut Vec<NewAction>,
                    kind: ActionKind,
                    target: &str,
                    via: &str,
                    values: &[String]| {
            for v in values {
                out.push(NewAction {
                    env: env.clone(),
                    kind,
                    target: target.to_string(),
                    value: v.clone(),
                    via: via.to_string(),
                    deferred: kind.is_cloudflare() && p.recurring.contains(v),
                });
            }
        };
        if let Some(binding) = &p.kv_binding {
            let bulk = p.kv_namespace_id.as_deref().unwrap_or("");
            push(&mut out, ActionKind::KvKey, binding, bulk, &p.kv_keys);
            push(
                &mut out,
                ActionKind::KvPrefix,
                binding,
                bulk,
                &p.kv_prefixes,
            );
        }
        push(&mut out, ActionKind::CacheUrl, "", "", &p.cache_urls);
        // One purge action per zone: a tag on two zones is two actions (docs/CONTRACT.md,
        // "Several zones").
        let endpoint = p.purge_mode.unwrap_or_default().endpoint();
        for (zone, z) in &p.zones {
            push(&mut out, ActionKind::Tag, zone, endpoint, &z.tags);
            push(&mut out, ActionKind::File, zone, endpoint, &z.files);
            push(&mut out, ActionKind::Prefix, zone, endpoint, &z.prefixes);
            push(&mut out, ActionKind::Host, zone, endpoint, &z.hosts);
            if z.purge_everything {
                out.push(NewAction {
                    env: env.clone(),
                    kind: ActionKind::Everything,
                    target: zone.clone(),
                    value: "*".into(),
                    via: endpoint.to_string(),
                    deferred: false,
                });
            }
        }
    }
    // De-duplicated per environment only: each environment's purge calls wait for that
    // environment's KV work (docs/ARCHITECTURE.md, "Order").
    crate::sorted::sort(&mut out);
    out.dedup();
    out
}

/// Items per Cloudflare purge call: URL (file) purges may be larger than tag, host and
/// prefix purges (500 against 100 on Enterprise).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchSize {
    pub files: usize,
    pub other: usize,
}

impl BatchSize {
    /// The same size for every mode.
    #[cfg(test)]
    pub fn uniform(n: usize) -> BatchSize {
        BatchSize { files: n, other: n }
    }

    /// The configured sizes: `PURGE_BATCH_SIZE` for URLs, at most 100 for the other kinds.
    pub fn of(cfg: &crate::config::Config) -> BatchSize {
        BatchSize {
            files: cfg.cloudflare.purge_batch_for(true),
            other: cfg.cloudflare.purge_batch_for(false),
        }
    }

    /// Items per call for one kind (at least 1; `everything` is always alone).
    pub fn for_kind(self, kind: ActionKind) -> usize {
        match kind {
            ActionKind::Everything => 1,
            ActionKind::File => self.files.max(1),
            _ => self.other.max(1),
        }
    }
}

/// Job-item pages per purge group. The run's purge schedule is a function of the job's items
/// only (docs/ARCHITECTURE.md, "Purge groups"): the items of pages `[8g, 8g+8)` form group
/// `g + 1`, whose purge calls go out once every page of the group is stored and its KV work is
/// done, in `⌈n ÷ batch⌉` calls per environment, zone and kind. How fast pages arrive changes
/// when those calls go out, never which calls are made.
pub const GROUP_PAGES: u64 = 8;
/// The group of everything the reference look-ups add (referrers, their `on_failure` fallback):
/// closed when the scope is collected.
pub const REFERRERS_GROUP: u64 = 1 << 40;
/// The group of the second pass's calls (each first-pass item once more).
pub const SECOND_PASS_GROUP: u64 = REFERRERS_GROUP + 1;
/// Whether a job defers the purge values that may recur ([`DEFERRED_GROUP`]): only when the
/// purge bucket, not Contentstack's pages, bounds it. Estimated from the job's item count with
/// one purge value per item (the fewest calls it can make): the bucket binds when those calls,
/// beyond its burst, take longer at its rate than reading the pages (`cs_rate` pages a second).
/// Deferring a value sends it once per pass, after the last page: fewer calls where the bucket
/// binds, a later tail where it does not.
pub fn defer_recurring(
    items: u64,
    bucket: crate::pace::TokenBucket,
    batch: BatchSize,
    cs_rate: f64,
) -> bool {
    let calls = items.div_ceil(batch.other.max(1) as u64) as f64;
    let purge_s = (calls - bucket.burst).max(0.0) / bucket.rate_per_second.max(0.001);
    let read_s = (1 + items.div_ceil(crate::contentstack::PAGE_SIZE)) as f64 / cs_rate.max(0.001);
    purge_s > read_s
}

/// The group of purge values that may recur on later pages ([`NewAction::deferred`]): after
/// every page group, closed once every page is stored (before the referrers' group), so each
/// is purged once per pass, after the KV work of every page.
pub const DEFERRED_GROUP: u64 = REFERRERS_GROUP - 1;
/// The group of a failing job's `on_failure` purge.
pub const ON_FAILURE_GROUP: u64 = 0;

/// The purge group of the page read at `skip` (pages of `page_size` items).
pub fn group_of_skip(skip: u64, page_size: u64) -> u64 {
    skip / (GROUP_PAGES * page_size.max(1)) + 1
}

/// The first item (`skip`) after the group of the page at `skip`.
pub fn group_end(skip: u64, page_size: u64) -> u64 {
    group_of_skip(skip, page_size) * GROUP_PAGES * page_size.max(1)
}

/// The groups still open for a scope: every group from the returned one on may still gain
/// actions (`next_skip` is the next page to read; `read_all` once the last page is stored, while
/// reference look-ups may still add referrers; `None` once the scope is collected).
pub fn first_open_group(
    collected: bool,
    read_all: bool,
    next_skip: u64,
    page_size: u64,
) -> Option<u64> {
    if collected {
        None
    } else if read_all {
        Some(REFERRERS_GROUP)
    } else {
        Some(group_of_skip(next_skip, page_size))
    }
}

/// The key of the purge call an action goes into (one environment, zone, kind and group).
fn call_key(a: &ClaimedAction) -> (&str, &str, ActionKind, u64) {
    (&a.env, &a.target, a.kind, a.group)
}

/// Results of one execution pass.
#[derive(Debug, Default)]
pub struct ExecOutcome {
    pub results: Vec<ActionResult>,
    /// Purge API calls sent, by the environment of each batch's first action.
    pub api_calls: BTreeMap<String, u64>,
    /// The same calls by (environment, zone).
    pub zone_calls: Vec<ZoneCalls>,
    pub errors: Vec<String>,
}

/// Purge calls sent to one zone for one environment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZoneCalls {
    pub env: String,
    pub zone: String,
    pub calls: u64,
}

impl ExecOutcome {
    /// Counts one purge call sent to `zone` for `env`.
    pub fn called(&mut self, env: &str, zone: &str) {
        *self.api_calls.entry(env.to_string()).or_default() += 1;
        match self
            .zone_calls
            .iter_mut()
            .find(|c| c.env == env && c.zone == zone)
        {
            Some(c) => c.calls += 1,
            None => self.zone_calls.push(ZoneCalls {
                env: env.to_string(),
                zone: zone.to_string(),
                calls: 1,
            }),
        }
    }

    /// Records one outcome for each of `actions`.
    pub fn settle(&mut self, actions: &[ClaimedAction], outcome: Outcome, error: Option<String>) {
        for a in actions {
            self.results.push(ActionResult {
                id: a.id,
                outcome,
                swept: 0,
                cursor: a.cursor.clone(),
                error: error.clone(),
            });
        }
    }
}

/// Groups Cloudflare actions into purge calls: the calls a claim cut them into (`call`), or,
/// for actions no claim cut, one environment, zone, mode and group per call, at most `batch`
/// items each. Returns (zone, kind, actions) in a stable order.
pub fn purge_batches(
    actions: &[ClaimedAction],
    batch: BatchSize,
) -> Vec<(String, ActionKind, Vec<ClaimedAction>)> {
    let mut sorted: Vec<&ClaimedAction> =
        actions.iter().filter(|a| a.kind.is_cloudflare()).collect();
    crate::sorted::sort_by(&mut sorted, |a, b| {
        (call_key(a), a.call, a.id).cmp(&(call_key(b), b.call, b.id))
    });
    let mut out: Vec<(String, ActionKind, Vec<ClaimedAction>)> = Vec::new();
    for a in sorted {
        let limit = if a.call > 0 {
            usize::MAX
        } else {
            batch.for_kind(a.kind)
        };
        match out.last_mut() {
            Some((_, _, items))
                if items.len() < limit
                    && items
                        .first()
                        .is_some_and(|f| call_key(f) == call_key(a) && f.call == a.call) =>
            {
                items.push(a.clone())
            }
            _ => out.push((a.target.clone(), a.kind, vec![a.clone()])),
        }
    }
    out
}

/// Picks a claim from pending actions so that every purge call it makes is the one the schedule
/// says: `rows` are the claimable actions in claim order (purge actions first, sorted by call
/// key, then the rest), `complete` says whether they are all the claimable ones (else the last
/// purge call key may continue past them). Purge actions are taken a whole call at a time (a
/// full batch, or the rest of its key), at least one call even past `limit`; a call that may
/// continue past the rows is left for a later claim unless it is the only one. With `max_calls`
/// 0 a call's actions count in `limit` and the rest fills what is left of it; above 0, up to
/// that many calls are taken whatever their size (a call costs one fetch, not one
/// service operation per value) and the rest fills `limit` on its own.
pub fn claim_by_calls(
    rows: Vec<ClaimedAction>,
    complete: bool,
    limit: usize,
    max_calls: usize,
    batch: BatchSize,
) -> Vec<ClaimedAction> {
    let (purge, rest): (Vec<ClaimedAction>, Vec<ClaimedAction>) =
        rows.into_iter().partition(|a| a.kind.is_cloudflare());
    // Cut the purge rows into calls.
    let mut calls: Vec<Vec<ClaimedAction>> = Vec::new();
    for a in purge {
        match calls.last_mut() {
            Some(c)
                if c.len() < batch.for_kind(a.kind)
                    && c.first().is_some_and(|f| call_key(f) == call_key(&a)) =>
            {
                c.push(a)
            }
            _ => calls.push(vec![a]),
        }
    }
    if !complete && calls.len() > 1 {
        if let Some(last) = calls.last() {
            if last.len() < batch.for_kind(last[0].kind) {
                calls.pop();
            }
        }
    }
    let mut out = Vec::new();
    for (n, mut c) in calls.into_iter().enumerate() {
        let full = if max_calls > 0 {
            n >= max_calls
        } else {
            out.len() + c.len() > limit
        };
        if !out.is_empty() && full {
            break;
        }
        for a in c.iter_mut() {
            a.call = n as u32 + 1;
        }
        out.extend(c);
    }
    let room = if max_calls > 0 {
        limit
    } else {
        limit.saturating_sub(out.len())
    };
    out.extend(rest.into_iter().take(room));
    out
}

/// Purge calls for `n` items of one kind with `batch` items per call.
pub fn calls_for(n: usize, batch: usize) -> usize {
    n.div_ceil(batch.max(1))
}

/// Keeps the first `cap` KV actions of a claim and returns the rest second (to go back to
/// pending), so a round's KV deletes leave service operations for the purge calls they unblock.
pub fn cap_kv(claimed: Vec<ClaimedAction>, cap: usize) -> (Vec<ClaimedAction>, Vec<ClaimedAction>) {
    let mut kv = 0;
    claimed.into_iter().partition(|a| {
        if !a.kind.is_kv() {
            return true;
        }
        kv += 1;
        kv <= cap
    })
}

/// The JSON body of one purge call.
pub fn purge_body(kind: ActionKind, items: &[ClaimedAction]) -> serde_json::Value {
    match kind.purge_field() {
        Some(field) => {
            let values: Vec<&str> = items.iter().map(|a| a.value.as_str()).collect();
            serde_json::json!({ field: values })
        }
        None => serde_json::json!({"purge_everything": true}),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::EnvPlan;
    use std::collections::BTreeSet;

    fn new(kind: ActionKind, value: &str, deferred: bool) -> NewAction {
        NewAction {
            env: "production".into(),
            kind,
            target: "zone".into(),
            value: value.into(),
            via: String::new(),
            deferred,
        }
    }

    #[test]
    fn action_rows_store_kv_once_and_others_once_per_group() {
        let actions = [
            new(ActionKind::KvKey, "k1", false),
            new(ActionKind::Tag, "t1", false),
            new(ActionKind::KvKey, "k1", false),
            new(ActionKind::Tag, "t1", false),
            new(ActionKind::Tag, "t1", true),
            new(ActionKind::Tag, "t2", true),
            new(ActionKind::Tag, "t1", true),
        ];
        // Deferred values go to group 9, the others to group 2.
        let rows = action_rows(&actions, |a| if a.deferred { 9 } else { 2 });
        let got: Vec<(&str, &str, u64, bool)> = rows
            .iter()
            .map(|r| {
                (
                    r.action.kind.as_str(),
                    r.action.value.as_str(),
                    r.group,
                    r.dup,
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                ("kv_key", "k1", 2, false),
                ("tag", "t1", 2, false),
                // t1 again in another group: stored, and marked as a value seen before.
                ("tag", "t1", 9, true),
                ("tag", "t2", 9, false),
            ]
        );
    }

    fn claimed(id: i64, kind: ActionKind, zone: &str, v: &str) -> ClaimedAction {
        ClaimedAction {
            id,
            env: "production".into(),
            kind,
            target: zone.into(),
            value: v.into(),
            via: String::new(),
            cursor: None,
            group: 1,
            call: 0,
        }
    }

    #[test]
    fn kind_names_round_trip() {
        for k in ActionKind::ALL {
            assert_eq!(ActionKind::parse(k.as_str()), Some(k));
            let json = serde_json::to_string(&k).unwrap();
            assert_eq!(json, format!("\"{}\"", k.as_str()));
        }
        assert_eq!(ActionKind::parse("nope"), None);
    }

    #[test]
    fn results_count_once_when_done_and_sweeps_count_their_keys() {
        let mut c = PurgedCounts::default();
        ActionKind::Tag.count_result(&mut c, Outcome::Done, 0);
        ActionKind::Tag.count_result(&mut c, Outcome::Failed, 0);
        ActionKind::KvKey.count_result(&mut c, Outcome::Pending, 0);
        ActionKind::KvPrefix.count_result(&mut c, Outcome::Pending, 7);
        ActionKind::KvPrefix.count_result(&mut c, Outcome::Done, 3);
        assert_eq!(c.tags, 1);
        assert_eq!(c.kv_keys, 0);
        assert_eq!(c.kv_prefix_keys, 10);
    }

    #[test]
    fn batches_respect_size_zone_and_mode() {
        let mut actions = Vec::new();
        for i in 0..65 {
            actions.push(claimed(i, ActionKind::Tag, "z1", &format!("t{i}")));
        }
        for i in 0..3 {
            actions.push(claimed(
                100 + i,
                ActionKind::File,
                "z1",
                &format!("https://a/{i}"),
            ));
            actions.push(claimed(200 + i, ActionKind::Tag, "z2", &format!("u{i}")));
        }
        actions.push(claimed(300, ActionKind::KvKey, "KV", "k"));
        let batches = purge_batches(&actions, BatchSize::uniform(30));
        let sizes: Vec<(String, ActionKind, usize)> = batches
            .iter()
            .map(|(z, k, v)| (z.clone(), *k, v.len()))
            .collect();
        assert_eq!(
            sizes,
            vec![
                ("z1".into(), ActionKind::Tag, 30),
                ("z1".into(), ActionKind::Tag, 30),
                ("z1".into(), ActionKind::Tag, 5),
                ("z1".into(), ActionKind::File, 3),
                ("z2".into(), ActionKind::Tag, 3),
            ]
        );
        let total: usize = batches.iter().map(|b| b.2.len()).sum();
        assert_eq!(total, 71, "the KV action is not a purge call");
    }

    fn grouped(id: i64, kind: ActionKind, group: u64, v: &str) -> ClaimedAction {
        ClaimedAction {
            group,
            ..claimed(id, kind, "z1", v)
        }
    }

    #[test]
    fn calls_never_mix_groups() {
        let mut actions: Vec<ClaimedAction> = (0..5)
            .map(|i| grouped(i, ActionKind::Tag, 1, &format!("t{i}")))
            .collect();
        actions.extend((0..5).map(|i| grouped(10 + i, ActionKind::Tag, 2, &format!("t{i}"))));
        let sizes: Vec<usize> = purge_batches(&actions, BatchSize::uniform(100))
            .iter()
            .map(|b| b.2.len())
            .collect();
        assert_eq!(
            sizes,
            vec![5, 5],
            "the same tags in two groups are two calls"
        );
    }

    #[test]
    fn claims_take_whole_calls() {
        let b = BatchSize::uniform(30);
        let mut rows: Vec<ClaimedAction> = (0..65)
            .map(|i| grouped(i, ActionKind::Tag, 1, &format!("t{i}")))
            .collect();
        rows.extend((0..3).map(|i| grouped(100 + i, ActionKind::Tag, 2, &format!("u{i}"))));
        rows.extend((0..5).map(|i| claimed(200 + i, ActionKind::KvKey, "KV", &format!("k{i}"))));
        // All rows, room for everything: every call whole, the KV keys too.
        let all = claim_by_calls(rows.clone(), true, 1000, 0, b);
        assert_eq!(all.len(), 73);
        // A limit inside the third call of group 1 stops after two whole calls.
        let some = claim_by_calls(rows.clone(), true, 62, 0, b);
        assert_eq!(some.len(), 62, "two calls, then two KV keys");
        assert_eq!(
            purge_batches(&some, b)
                .iter()
                .map(|c| c.2.len())
                .collect::<Vec<_>>(),
            vec![30, 30]
        );
        // A limit below one call still takes one call (progress).
        assert_eq!(claim_by_calls(rows.clone(), true, 3, 0, b).len(), 30);
        // Rows cut off inside a call key: its partial tail waits for a later claim.
        let cut: Vec<ClaimedAction> = rows.iter().take(64).cloned().collect();
        let taken = claim_by_calls(cut, false, 1000, 0, b);
        assert_eq!(taken.len(), 60);
        // A lone partial call is taken when the rows are complete.
        let lone: Vec<ClaimedAction> = rows.iter().skip(65).take(3).cloned().collect();
        assert_eq!(claim_by_calls(lone, true, 1000, 0, b).len(), 3);
        // Calls taken by count: three whole calls (65 + 3 values, past a limit of 10), then
        // the limit for the KV keys alone.
        let by_count = claim_by_calls(rows.clone(), true, 10, 3, b);
        assert_eq!(
            purge_batches(&by_count, b)
                .iter()
                .map(|c| c.2.len())
                .collect::<Vec<_>>(),
            vec![30, 30, 5]
        );
        assert_eq!(by_count.iter().filter(|a| a.kind.is_kv()).count(), 5);
        assert_eq!(by_count.iter().map(|a| a.call).max(), Some(3));
        // Every call when there is room for more, and at least one when asked for one.
        assert_eq!(claim_by_calls(rows.clone(), true, 0, 9, b).len(), 68);
        assert_eq!(claim_by_calls(rows.clone(), true, 0, 1, b).len(), 30);
    }

    #[test]
    fn groups_follow_pages() {
        assert_eq!(group_of_skip(0, 100), 1);
        assert_eq!(group_of_skip(700, 100), 1);
        assert_eq!(group_of_skip(800, 100), 2);
        assert_eq!(group_end(0, 100), 800);
        assert_eq!(group_end(800, 100), 1600);
        assert_eq!(first_open_group(true, true, 0, 100), None);
        assert_eq!(first_open_group(false, true, 0, 100), Some(REFERRERS_GROUP));
        assert_eq!(first_open_group(false, false, 1600, 100), Some(3));
    }

    #[test]
    fn a_kv_cap_keeps_purge_actions_and_the_first_kv_ones() {
        let mut all: Vec<ClaimedAction> = (0..4)
            .map(|i| claimed(i, ActionKind::Tag, "z1", &format!("t{i}")))
            .collect();
        all.extend((0..6).map(|i| claimed(10 + i, ActionKind::KvKey, "KV", &format!("k{i}"))));
        all.push(claimed(20, ActionKind::KvPrefix, "KV", "p:"));
        let (run, back) = cap_kv(all.clone(), 3);
        let ids = |v: &[ClaimedAction]| v.iter().map(|a| a.id).collect::<Vec<_>>();
        assert_eq!(ids(&run), vec![0, 1, 2, 3, 10, 11, 12]);
        assert_eq!(ids(&back), vec![13, 14, 15, 20]);
        let (run, back) = cap_kv(all.clone(), usize::MAX);
        assert_eq!((run.len(), back.len()), (all.len(), 0));
        let (run, back) = cap_kv(all, 0);
        assert_eq!((run.len(), back.len()), (4, 7));
    }

    #[test]
    fn purge_bodies_use_one_mode() {
        let items = vec![claimed(1, ActionKind::Prefix, "z", "www.example.com/blog")];
        assert_eq!(
            purge_body(ActionKind::Prefix, &items),
            serde_json::json!({"prefixes": ["www.example.com/blog"]})
        );
        assert_eq!(
            purge_body(ActionKind::Everything, &[]),
            serde_json::json!({"purge_everything": true})
        );
    }

    #[test]
    fn the_executor_sends_the_calls_the_claim_cut_whatever_the_batch_now() {
        // 250 tags claimed with the job's batch of 100: three calls (100, 100, 50).
        let rows: Vec<ClaimedAction> = (0..250)
            .map(|i| claimed(i, ActionKind::Tag, "z1", &format!("t{i:03}")))
            .collect();
        let claim = claim_by_calls(rows, true, 1000, 0, BatchSize::uniform(100));
        let calls: BTreeSet<u32> = claim.iter().map(|a| a.call).collect();
        assert_eq!(calls, BTreeSet::from([1, 2, 3]));
        // A deploy since then made the batch 30 or 500: the same three calls go out.
        for now in [30, 500] {
            let sizes: Vec<usize> = purge_batches(&claim, BatchSize::uniform(now))
                .iter()
                .map(|b| b.2.len())
                .collect();
            assert_eq!(sizes, vec![100, 100, 50], "batch {now} now");
        }
    }

    #[test]
    fn actions_carry_how_they_are_carried_out() {
        let zone = crate::plan::ZonePlan {
            tags: vec!["a".into()],
            ..Default::default()
        };
        let mut env = EnvPlan {
            zone_id: Some("z1".into()),
            kv_binding: Some("KV".into()),
            kv_namespace_id: Some("ns1".into()),
            kv_keys: vec!["k".into()],
            zones: [("z1".to_string(), zone)].into_iter().collect(),
            purge_mode: Some(crate::rules::PurgeMode::Invalidate),
            ..EnvPlan::default()
        };
        let mut plan = Plan::default();
        plan.environments.insert("production".into(), env.clone());
        let actions = actions_from_plan(&plan);
        let via = |k: ActionKind| actions.iter().find(|a| a.kind == k).map(|a| a.via.clone());
        assert_eq!(via(ActionKind::Tag).as_deref(), Some("invalidate_cache"));
        assert_eq!(via(ActionKind::KvKey).as_deref(), Some("ns1"));
        env.purge_mode = None;
        plan.environments.insert("production".into(), env);
        let actions = actions_from_plan(&plan);
        let tag = actions.iter().find(|a| a.kind == ActionKind::Tag);
        assert_eq!(tag.map(|a| a.via.as_str()), Some("purge_cache"));
    }

    #[test]
    fn values_that_may_recur_are_deferred_and_the_rest_streams() {
        let mut plan = Plan::default();
        let zone = crate::plan::ZonePlan {
            tags: vec!["ct-page".into(), "e1-en".into()],
            ..Default::default()
        };
        plan.environments.insert(
            "production".into(),
            EnvPlan {
                zone_id: Some("z1".into()),
                zones: [("z1".to_string(), zone)].into_iter().collect(),
                recurring: ["ct-page".to_string()].into_iter().collect(),
                ..EnvPlan::default()
            },
        );
        let deferred: Vec<(String, bool)> = actions_from_plan(&plan)
            .into_iter()
            .map(|a| (a.value, a.deferred))
            .collect();
        assert_eq!(
            deferred,
            vec![("ct-page".to_string(), true), ("e1-en".to_string(), false)]
        );
        assert!(
            DEFERRED_GROUP > group_of_skip(10_000_000, 100) && DEFERRED_GROUP < REFERRERS_GROUP
        );
        assert_eq!(
            first_open_group(false, true, 500, 100),
            Some(REFERRERS_GROUP),
            "closed once every page is read"
        );
    }

    #[test]
    fn recurring_values_are_deferred_only_where_the_purge_bucket_binds() {
        use crate::pace::TokenBucket;
        let bucket = |rate_per_second, burst| TokenBucket {
            rate_per_second,
            burst,
        };
        let b = BatchSize::uniform(100);
        assert!(
            defer_recurring(10_000, bucket(5.0, 25.0), b, 10.0),
            "Pro, 10,000 items: 15 s of purging against 10 s of reading"
        );
        assert!(
            !defer_recurring(10_000, bucket(10.0, 50.0), b, 10.0),
            "Business: 5 s against 10 s"
        );
        assert!(
            !defer_recurring(10_000, bucket(50.0, 500.0), b, 10.0),
            "Enterprise"
        );
        assert!(
            defer_recurring(1_000, bucket(0.5, 6.0), b, 10.0),
            "Free (scaled)"
        );
        assert!(
            !defer_recurring(100, bucket(5.0, 25.0), b, 10.0),
            "a small job fits the burst"
        );
    }
}
