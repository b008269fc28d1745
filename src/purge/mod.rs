//! Purge actions: the unit of work the executors perform, derived from a [`Plan`].
//!
//! A plan is flattened into [`NewAction`]s that the ledger stores (de-duplicated per job
//! attempt), hands out in claims and marks done, so a redelivered or replayed message never
//! counts an action twice. The executors that talk to KV, the Cache API and the Cloudflare API
//! live in [`exec`]; this file is pure.

pub mod exec;

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
}

/// An action handed out by the ledger for execution.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimedAction {
    pub id: i64,
    pub env: String,
    pub kind: ActionKind,
    pub target: String,
    pub value: String,
    /// KV list cursor where an interrupted prefix sweep resumes.
    #[serde(default)]
    pub cursor: Option<String>,
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
        let push = |out: &mut Vec<NewAction>, kind, target: &str, values: &[String]| {
            for v in values {
                out.push(NewAction {
                    env: env.clone(),
                    kind,
                    target: target.to_string(),
                    value: v.clone(),
                });
            }
        };
        if let Some(binding) = &p.kv_binding {
            push(&mut out, ActionKind::KvKey, binding, &p.kv_keys);
            push(&mut out, ActionKind::KvPrefix, binding, &p.kv_prefixes);
        }
        push(&mut out, ActionKind::CacheUrl, "", &p.cache_urls);
        if let Some(zone) = &p.zone_id {
            push(&mut out, ActionKind::Tag, zone, &p.tags);
            push(&mut out, ActionKind::File, zone, &p.files);
            push(&mut out, ActionKind::Prefix, zone, &p.prefixes);
            push(&mut out, ActionKind::Host, zone, &p.hosts);
            if p.purge_everything {
                out.push(NewAction {
                    env: env.clone(),
                    kind: ActionKind::Everything,
                    target: zone.clone(),
                    value: "*".into(),
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

    /// Items per call for one kind (at least 1; `everything` is always alone).
    pub fn for_kind(self, kind: ActionKind) -> usize {
        match kind {
            ActionKind::Everything => 1,
            ActionKind::File => self.files.max(1),
            _ => self.other.max(1),
        }
    }
}

/// Groups Cloudflare actions into purge calls: one mode and one zone per call, at most
/// `batch` items each. Returns (zone, kind, actions) in a stable order.
pub fn purge_batches(
    actions: &[ClaimedAction],
    batch: BatchSize,
) -> Vec<(String, ActionKind, Vec<ClaimedAction>)> {
    let mut sorted: Vec<&ClaimedAction> =
        actions.iter().filter(|a| a.kind.is_cloudflare()).collect();
    crate::sorted::sort_by(&mut sorted, |a, b| {
        (&a.env, &a.target, a.kind, a.id).cmp(&(&b.env, &b.target, b.kind, b.id))
    });
    let mut out: Vec<(String, ActionKind, Vec<ClaimedAction>)> = Vec::new();
    for a in sorted {
        let limit = batch.for_kind(a.kind);
        match out.last_mut() {
            Some((zone, kind, items))
                if *zone == a.target
                    && *kind == a.kind
                    && items.len() < limit
                    && items.first().is_some_and(|f| f.env == a.env) =>
            {
                items.push(a.clone())
            }
            _ => out.push((a.target.clone(), a.kind, vec![a.clone()])),
        }
    }
    out
}

/// Keeps purge calls full. When a claim was cut off at its limit, its last group of Cloudflare
/// actions may end in a partial batch although more are pending; while collection is still
/// adding actions (`more_coming`), every group may grow. Holds back those partial tails (returned
/// second) so every purge call but a job's last per zone and mode carries a full batch. A group
/// smaller than one batch is held back only while more are coming.
pub fn hold_back_partial_batch(
    claimed: Vec<ClaimedAction>,
    truncated: bool,
    more_coming: bool,
    batch: BatchSize,
) -> (Vec<ClaimedAction>, Vec<ClaimedAction>) {
    let holdable = |a: &ClaimedAction| a.kind.is_cloudflare() && a.kind != ActionKind::Everything;
    // Group sizes by (kind, target), and the last group of the claim.
    let mut sizes: std::collections::BTreeMap<(ActionKind, &str), usize> = Default::default();
    for a in claimed.iter().filter(|a| holdable(a)) {
        *sizes.entry((a.kind, a.target.as_str())).or_default() += 1;
    }
    let last = claimed
        .last()
        .filter(|a| holdable(a))
        .map(|a| (a.kind, a.target.as_str()));
    let mut hold: std::collections::BTreeMap<(ActionKind, String), usize> = Default::default();
    for (key, n) in sizes {
        let size = batch.for_kind(key.0);
        let tail = n % size;
        let cut_off = truncated && Some(key) == last && n >= size;
        if tail > 0 && (more_coming || cut_off) {
            hold.insert((key.0, key.1.to_string()), tail);
        }
    }
    if hold.is_empty() {
        return (claimed, Vec::new());
    }
    // Hold back the newest actions of each group (the claim is in id order within a group).
    let mut run = Vec::with_capacity(claimed.len());
    let mut held = Vec::new();
    for a in claimed.into_iter().rev() {
        match hold.get_mut(&(a.kind, a.target.clone())) {
            Some(n) if *n > 0 => {
                *n -= 1;
                held.push(a);
            }
            _ => run.push(a),
        }
    }
    run.reverse();
    held.reverse();
    (run, held)
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

    fn claimed(id: i64, kind: ActionKind, zone: &str, v: &str) -> ClaimedAction {
        ClaimedAction {
            id,
            env: "production".into(),
            kind,
            target: zone.into(),
            value: v.into(),
            cursor: None,
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

    #[test]
    fn a_cut_off_claim_holds_back_its_partial_purge_batch() {
        let mut all: Vec<ClaimedAction> = (0..5)
            .map(|i| claimed(i, ActionKind::KvKey, "KV", &format!("k{i}")))
            .collect();
        all.extend((0..65).map(|i| claimed(10 + i, ActionKind::Tag, "z1", &format!("t{i}"))));
        let (run, held) = hold_back_partial_batch(all.clone(), true, false, BatchSize::uniform(30));
        assert_eq!(run.len(), 5 + 60);
        assert_eq!(held.len(), 5);
        assert!(held.iter().all(|a| a.kind == ActionKind::Tag));
        assert_eq!(
            purge_batches(&run, BatchSize::uniform(30)).len(),
            2,
            "two full calls"
        );
        // Not cut off: the tail is the job's last batch and goes out now.
        let (run, held) =
            hold_back_partial_batch(all.clone(), false, false, BatchSize::uniform(30));
        assert_eq!((run.len(), held.len()), (70, 0));
        // While collection is still adding actions, every partial group waits.
        let mut growing = all;
        growing.extend(
            (0..7).map(|i| claimed(100 + i, ActionKind::File, "z1", &format!("https://a/{i}"))),
        );
        let (run, held) = hold_back_partial_batch(growing, false, true, BatchSize::uniform(30));
        assert_eq!(run.iter().filter(|a| a.kind == ActionKind::Tag).count(), 60);
        assert_eq!(run.iter().filter(|a| a.kind == ActionKind::File).count(), 0);
        assert_eq!(held.len(), 5 + 7);
        assert!(
            run.iter().any(|a| a.kind == ActionKind::KvKey),
            "KV work is never held"
        );
        // A group smaller than one batch always runs (progress over packing).
        let small: Vec<ClaimedAction> = (0..7)
            .map(|i| claimed(i, ActionKind::File, "z", &format!("https://a/{i}")))
            .collect();
        assert_eq!(
            hold_back_partial_batch(small, true, false, BatchSize::uniform(30))
                .1
                .len(),
            0
        );
        // A KV group at the end is never held back.
        let kv: Vec<ClaimedAction> = (0..40)
            .map(|i| claimed(i, ActionKind::KvKey, "KV", &format!("k{i}")))
            .collect();
        assert_eq!(
            hold_back_partial_batch(kv, true, false, BatchSize::uniform(30))
                .1
                .len(),
            0
        );
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
}
