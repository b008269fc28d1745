//! The purge planner: a pure function from a job, its items, the environments
//! it is limited to and the rules, to a purge [`Plan`] (docs/CONTRACT.md, "Rule format" and "Processing").
//!
//! This module owns what gets purged, not how: it expands the rule templates
//! per item, validates and normalises the results, de-duplicates and sorts
//! them, and reports templates it could not expand in [`Plan::skipped`]. It
//! does no I/O; the executor sends what the plan lists. It also holds the pure
//! batching helpers [`chunk`] and [`purge_calls`].
//!
//! Choices where the contract is silent:
//! - Only items with `success == true` are planned. An item belongs to every
//!   given environment whose `uid` equals its `environment_uid`; an item whose
//!   environment is not given, or has no rule (own key or `*`), is not planned.
//! - Every given environment that has a rule appears in
//!   [`Plan::environments`], even when none of its lists has anything in it.
//!   Two given environments with the same name are merged under that name; the
//!   smallest uid is reported.
//! - `{branch}` is `main` when the job has no branch (or an empty one): that
//!   is the branch Contentstack uses when none is sent.
//! - `{base_url}` is the environment's URL for the item's locale; failing an
//!   exact match, a case-insensitive match; failing that, the URL stored under
//!   the empty locale `""` (a URL configured without a locale). Otherwise it is
//!   missing: another locale's URL is never borrowed.
//! - A placeholder with no value or an empty value skips that template for that
//!   item; `missing` is the placeholder name (`url`, `base_url`, …).
//! - Expanded values are checked, and a rejected value is skipped with
//!   `missing` set to: `valid_url` (not an absolute `http(s)://host…` URL, or
//!   a control character), `valid_tag` (not 1–1024 printable ASCII characters
//!   without spaces), `valid_kv_key` / `valid_kv_prefix` (over 512 bytes, or
//!   `.`/`..`), `valid_prefix` (empty after removing the scheme, starts with
//!   `/`, or has whitespace), `valid_host` (no host left, or whitespace).
//! - URLs are normalised: scheme and host lower-cased, the `#fragment`
//!   dropped, spaces and non-ASCII characters percent-encoded (UTF-8).
//!   Prefixes lose a leading `http://`/`https://`. Hosts keep only the host
//!   name, lower-cased (no scheme, credentials, port, path or query).
//! - Without a `zone_id`, `files`, `tags`, `prefixes`, `hosts` and
//!   `purge_everything` stay empty/false (those need the Cloudflare purge API)
//!   and their templates are not expanded; KV and Cache API work still happens.
//! - `purge_everything` (from `on_failure = ["everything"]`) makes the plan
//!   drop that environment's `tags`, `files`, `prefixes` and `hosts`, which it
//!   covers; KV work and Cache API deletes are kept.
//! - `on_failure` rows in `skipped` have an empty `uid` (there is no item).

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::rules::{EnvRule, FailureAction, Field, ItemRule, Rules};
use crate::template::{Placeholder, Template};

/// Longest Cloudflare cache tag, in characters.
pub const MAX_TAG_LEN: usize = 1024;
/// Longest Workers KV key, in bytes.
pub const MAX_KV_KEY_BYTES: usize = 512;
/// The branch assumed when a job names none.
pub const DEFAULT_BRANCH: &str = "main";

/// Whether a job item is an entry or an asset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ItemType {
    /// An entry.
    Entry,
    /// An asset.
    Asset,
}

impl ItemType {
    /// `"entry"` or `"asset"`, the value of `{type}`.
    pub fn as_str(self) -> &'static str {
        match self {
            ItemType::Entry => "entry",
            ItemType::Asset => "asset",
        }
    }
}

/// One job item, as the planner needs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanItem {
    /// Entry or asset uid.
    pub uid: String,
    /// Entry or asset.
    pub item_type: ItemType,
    /// The publish locale.
    #[serde(default)]
    pub locale: Option<String>,
    /// The content type uid (entries).
    #[serde(default)]
    pub content_type: Option<String>,
    /// The published version.
    #[serde(default)]
    pub version: Option<u64>,
    /// The environment uid the item was published to.
    pub environment_uid: String,
    /// `publish_details.status == "success"`.
    pub success: bool,
    /// The resolved URL (entry `url` field or asset URL), when known.
    #[serde(default)]
    pub url: Option<String>,
}

/// An environment the job is limited to, already resolved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanEnvironment {
    /// Environment name (the `ENVIRONMENTS` key).
    pub name: String,
    /// Environment uid (what job items carry).
    pub uid: String,
    /// Base URL per locale, from the environment settings.
    #[serde(default)]
    pub base_urls: BTreeMap<String, String>,
}

/// The job-level values.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanJob {
    /// The Contentstack job id.
    pub job_id: String,
    /// The stack API key.
    pub api_key: String,
    /// The branch, when not the default.
    #[serde(default)]
    pub branch: Option<String>,
}

/// What to purge in one environment. Every list is sorted and duplicate-free. What goes to
/// Cloudflare is held per zone only ([`EnvPlan::zones`]); the flat lists of the dry run's answer
/// (tags, files, prefixes, hosts, `purge_everything`) are their union, computed when asked for
/// ([`EnvPlan::tags`] and its siblings) and when the plan is written out.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct EnvPlan {
    /// The environment uid.
    pub environment_uid: String,
    /// Cloudflare zone for purge API calls.
    pub zone_id: Option<String>,
    /// KV binding for deletes and sweeps.
    pub kv_binding: Option<String>,
    /// KV namespace id, for REST bulk deletes.
    pub kv_namespace_id: Option<String>,
    /// KV keys to delete.
    pub kv_keys: Vec<String>,
    /// KV prefixes to sweep.
    pub kv_prefixes: Vec<String>,
    /// URLs to delete from the Cache API (the expanded `urls`).
    pub cache_urls: Vec<String>,
    /// What goes to each zone (docs/CONTRACT.md, "Several zones"): URLs, prefixes and hosts to
    /// the zone that serves their host, tags and `everything` to every zone.
    #[serde(default)]
    pub zones: BTreeMap<String, ZonePlan>,
    /// Tags, URLs, prefixes and hosts a template may give two items of the job
    /// ([`crate::template::Template::may_recur`]): their purge is deferred to after the last
    /// page (not part of the dry run's answer).
    #[serde(skip)]
    pub recurring: BTreeSet<String>,
    /// How the rule asks the zone to drop content, fixed when the plan is made and carried by
    /// its actions (not part of the dry run's answer).
    #[serde(skip)]
    pub purge_mode: Option<crate::rules::PurgeMode>,
}

/// What one zone purges.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZonePlan {
    pub tags: Vec<String>,
    pub files: Vec<String>,
    pub prefixes: Vec<String>,
    pub hosts: Vec<String>,
    pub purge_everything: bool,
}

impl ZonePlan {
    /// Purge calls with `files` URLs and `other` tags, prefixes or hosts per call.
    fn calls(&self, files: usize, other: usize) -> usize {
        purge_calls(self.tags.len(), other)
            + purge_calls(self.files.len(), files)
            + purge_calls(self.prefixes.len(), other)
            + purge_calls(self.hosts.len(), other)
            + usize::from(self.purge_everything)
    }

    fn merge(&mut self, other: ZonePlan) {
        union(&mut self.tags, other.tags);
        union(&mut self.files, other.files);
        union(&mut self.prefixes, other.prefixes);
        union(&mut self.hosts, other.hosts);
        self.purge_everything |= other.purge_everything;
        if self.purge_everything {
            self.clear_covered_by_everything();
        }
    }

    fn clear_covered_by_everything(&mut self) {
        self.tags.clear();
        self.files.clear();
        self.prefixes.clear();
        self.hosts.clear();
    }
}

/// Sorted, duplicate-free union of two sorted lists.
fn union(into: &mut Vec<String>, from: Vec<String>) {
    let set: BTreeSet<String> = crate::sorted::set_of(std::mem::take(into).into_iter().chain(from));
    *into = set.into_iter().collect();
}

/// Sizes of an [`EnvPlan`]'s lists.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvCounts {
    pub kv_keys: usize,
    pub kv_prefixes: usize,
    pub cache_urls: usize,
    pub tags: usize,
    pub files: usize,
    pub prefixes: usize,
    pub hosts: usize,
    pub purge_everything: bool,
}

impl EnvCounts {
    /// Total actions: every list element, plus one for `purge_everything`.
    pub fn total(&self) -> usize {
        self.kv_keys
            + self.kv_prefixes
            + self.cache_urls
            + self.tags
            + self.files
            + self.prefixes
            + self.hosts
            + usize::from(self.purge_everything)
    }
}

impl EnvPlan {
    /// The size of each list.
    pub fn counts(&self) -> EnvCounts {
        EnvCounts {
            kv_keys: self.kv_keys.len(),
            kv_prefixes: self.kv_prefixes.len(),
            cache_urls: self.cache_urls.len(),
            tags: self.tags().len(),
            files: self.files().len(),
            prefixes: self.prefixes().len(),
            hosts: self.hosts().len(),
            purge_everything: self.purge_everything(),
        }
    }

    /// One list over every zone: sorted, duplicate-free.
    fn over_zones(&self, pick: fn(&ZonePlan) -> &Vec<String>) -> Vec<String> {
        crate::sorted::set_of(self.zones.values().flat_map(|z| pick(z).iter().cloned()))
            .into_iter()
            .collect()
    }

    /// Cache tags to purge (each goes to every zone).
    pub fn tags(&self) -> Vec<String> {
        self.over_zones(|z| &z.tags)
    }

    /// URLs to purge with the Cloudflare API (the expanded `urls` some zone serves).
    pub fn files(&self) -> Vec<String> {
        self.over_zones(|z| &z.files)
    }

    /// Prefixes (`host/path`) to purge.
    pub fn prefixes(&self) -> Vec<String> {
        self.over_zones(|z| &z.prefixes)
    }

    /// Hostnames to purge.
    pub fn hosts(&self) -> Vec<String> {
        self.over_zones(|z| &z.hosts)
    }

    /// Whether the zones are purged whole (`everything` goes to every zone).
    pub fn purge_everything(&self) -> bool {
        self.zones.values().any(|z| z.purge_everything)
    }

    /// Number of actions (see [`EnvCounts::total`]).
    pub fn action_count(&self) -> usize {
        self.counts().total()
    }

    /// True when there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.action_count() == 0
    }

    /// True when the Cloudflare purge API has work to do.
    #[cfg(test)]
    pub fn has_cloudflare_work(&self) -> bool {
        self.cloudflare_calls(1, 1) > 0
    }

    /// Whether this plan gets a second purge pass: it both changes KV and purges Cloudflare.
    pub fn wants_second_pass(&self) -> bool {
        self.kv_binding.is_some()
            && !(self.kv_keys.is_empty() && self.kv_prefixes.is_empty())
            && !self.zones.is_empty()
            && self.cloudflare_calls(1, 1) > 0
    }

    /// Cloudflare purge API calls needed with `files` URLs and `other` tags, prefixes or hosts
    /// per call (one mode and one zone per call); none without a zone.
    pub fn cloudflare_calls(&self, files: usize, other: usize) -> usize {
        self.zones.values().map(|z| z.calls(files, other)).sum()
    }

    fn merge(&mut self, other: EnvPlan) {
        if self.environment_uid.is_empty()
            || (!other.environment_uid.is_empty() && other.environment_uid < self.environment_uid)
        {
            self.environment_uid = other.environment_uid;
        }
        self.zone_id = self.zone_id.take().or(other.zone_id);
        self.kv_binding = self.kv_binding.take().or(other.kv_binding);
        self.kv_namespace_id = self.kv_namespace_id.take().or(other.kv_namespace_id);
        self.purge_mode = self.purge_mode.or(other.purge_mode);
        self.recurring.extend(other.recurring);
        union(&mut self.kv_keys, other.kv_keys);
        union(&mut self.kv_prefixes, other.kv_prefixes);
        union(&mut self.cache_urls, other.cache_urls);
        for (zone, z) in other.zones {
            self.zones.entry(zone).or_default().merge(z);
        }
        // `everything` goes to every zone.
        if self.purge_everything() {
            for z in self.zones.values_mut() {
                z.purge_everything = true;
                z.clear_covered_by_everything();
            }
        }
    }
}

/// The plan as the dry run answers it: the zones' lists also flat, as their union.
impl Serialize for EnvPlan {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Answer<'a> {
            environment_uid: &'a str,
            zone_id: &'a Option<String>,
            kv_binding: &'a Option<String>,
            kv_namespace_id: &'a Option<String>,
            kv_keys: &'a [String],
            kv_prefixes: &'a [String],
            cache_urls: &'a [String],
            tags: Vec<String>,
            files: Vec<String>,
            prefixes: Vec<String>,
            hosts: Vec<String>,
            purge_everything: bool,
            zones: &'a BTreeMap<String, ZonePlan>,
        }
        Answer {
            environment_uid: &self.environment_uid,
            zone_id: &self.zone_id,
            kv_binding: &self.kv_binding,
            kv_namespace_id: &self.kv_namespace_id,
            kv_keys: &self.kv_keys,
            kv_prefixes: &self.kv_prefixes,
            cache_urls: &self.cache_urls,
            tags: self.tags(),
            files: self.files(),
            prefixes: self.prefixes(),
            hosts: self.hosts(),
            purge_everything: self.purge_everything(),
            zones: &self.zones,
        }
        .serialize(s)
    }
}

/// A template that was not expanded for an item.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Skipped {
    /// The template as configured (`on_failure` ones without their `kind:`).
    pub template: String,
    /// The item uid (empty for `on_failure`).
    pub uid: String,
    /// The environment name.
    pub environment: String,
    /// The placeholder name without braces, or a `valid_*` reason.
    pub missing: String,
}

impl Ord for Skipped {
    fn cmp(&self, other: &Self) -> Ordering {
        (&self.environment, &self.uid, &self.template, &self.missing).cmp(&(
            &other.environment,
            &other.uid,
            &other.template,
            &other.missing,
        ))
    }
}

impl PartialOrd for Skipped {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Item counts of a plan.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedItems {
    /// Items given to the planner.
    pub considered: usize,
    /// Successful items in an environment with a rule.
    pub purged: usize,
    /// Items Contentstack did not publish successfully.
    pub failed: usize,
}

/// A purge plan: per environment name, what to purge.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    /// Per environment name.
    pub environments: BTreeMap<String, EnvPlan>,
    /// Templates not expanded, sorted and duplicate-free.
    pub skipped: Vec<Skipped>,
    /// Item counts.
    pub items: PlannedItems,
}

impl Plan {
    /// True when no environment has anything to do.
    pub fn is_empty(&self) -> bool {
        self.environments.values().all(EnvPlan::is_empty)
    }

    /// Total actions over every environment.
    pub fn action_count(&self) -> usize {
        self.environments.values().map(EnvPlan::action_count).sum()
    }

    /// The list sizes per environment name.
    pub fn counts(&self) -> BTreeMap<&str, EnvCounts> {
        self.environments
            .iter()
            .map(|(name, env)| (name.as_str(), env.counts()))
            .collect()
    }

    /// The list sizes summed over every environment (`purge_everything` if any).
    #[cfg(test)]
    pub fn total_counts(&self) -> EnvCounts {
        self.environments
            .values()
            .map(EnvPlan::counts)
            .fold(EnvCounts::default(), |a, b| EnvCounts {
                kv_keys: a.kv_keys + b.kv_keys,
                kv_prefixes: a.kv_prefixes + b.kv_prefixes,
                cache_urls: a.cache_urls + b.cache_urls,
                tags: a.tags + b.tags,
                files: a.files + b.files,
                prefixes: a.prefixes + b.prefixes,
                hosts: a.hosts + b.hosts,
                purge_everything: a.purge_everything || b.purge_everything,
            })
    }

    /// Folds another plan (e.g. of another page of the same job) into this
    /// one: lists are unioned, item counts added. The result is the same
    /// whichever order plans are merged in.
    pub fn merge(&mut self, other: Plan) {
        for (name, env) in other.environments {
            match self.environments.get_mut(&name) {
                Some(mine) => mine.merge(env),
                None => {
                    self.environments.insert(name, env);
                }
            }
        }
        let skipped: BTreeSet<Skipped> = crate::sorted::set_of(
            std::mem::take(&mut self.skipped)
                .into_iter()
                .chain(other.skipped),
        );
        self.skipped = skipped.into_iter().collect();
        self.items.considered += other.items.considered;
        self.items.purged += other.items.purged;
        self.items.failed += other.items.failed;
    }
}

/// Plans the purge for `items` of `job` in `envs` (the environments the job
/// is limited to) according to `rules`.
pub fn plan(job: &PlanJob, items: &[PlanItem], envs: &[PlanEnvironment], rules: &Rules) -> Plan {
    let targets = targets(job, envs, rules);
    let mut acc: BTreeMap<&str, Acc> = crate::sorted::map_of(
        targets
            .iter()
            .map(|t| (t.env.name.as_str(), Acc::new(t.env, t.rule))),
    );
    let mut skipped = BTreeSet::new();
    let mut counts = PlannedItems {
        considered: items.len(),
        ..PlannedItems::default()
    };
    let branch = branch_of(job);
    let version_text: Vec<Option<String>> = items
        .iter()
        .map(|i| i.version.map(|v| v.to_string()))
        .collect();

    for (item, version) in items.iter().zip(&version_text) {
        if !item.success {
            counts.failed += 1;
            continue;
        }
        let mut planned = false;
        for target in targets.iter().filter(|t| t.env.uid == item.environment_uid) {
            planned = true;
            let Some(env_acc) = acc.get_mut(target.env.name.as_str()) else {
                continue;
            };
            let base_url = base_url_for(target.env, item.locale.as_deref());
            let lookup = |p: Placeholder| -> Option<&str> {
                match p {
                    Placeholder::Environment => Some(&target.env.name),
                    Placeholder::EnvironmentUid => Some(&target.env.uid),
                    Placeholder::Locale => item.locale.as_deref(),
                    Placeholder::ContentType => item.content_type.as_deref(),
                    Placeholder::Uid => Some(&item.uid),
                    Placeholder::Type => Some(item.item_type.as_str()),
                    Placeholder::Version => version.as_deref(),
                    Placeholder::ApiKey => Some(&job.api_key),
                    Placeholder::Branch => Some(branch),
                    Placeholder::Url => item.url.as_deref(),
                    Placeholder::BaseUrl => base_url,
                }
            };
            let rule = match item.item_type {
                ItemType::Entry => &target.rule.entry,
                ItemType::Asset => &target.rule.asset,
            };
            let mut ctx = Expansion {
                acc: env_acc,
                skipped: &mut skipped,
                uid: &item.uid,
                environment: &target.env.name,
            };
            ctx.apply_item_rule(rule, &lookup);
        }
        if planned {
            counts.purged += 1;
        }
    }

    Plan {
        environments: crate::sorted::map_of(
            acc.into_iter()
                .map(|(name, a)| (name.to_owned(), a.finish())),
        ),
        skipped: skipped.into_iter().collect(),
        items: counts,
    }
}

/// Plans the `on_failure` coarse purge for `envs`.
pub fn plan_failure(job: &PlanJob, envs: &[PlanEnvironment], rules: &Rules) -> Plan {
    let targets = targets(job, envs, rules);
    let mut skipped = BTreeSet::new();
    let branch = branch_of(job);
    let mut environments = BTreeMap::new();
    for target in &targets {
        let mut acc = Acc::new(target.env, target.rule);
        let lookup = |p: Placeholder| -> Option<&str> {
            match p {
                Placeholder::Environment => Some(&target.env.name),
                Placeholder::EnvironmentUid => Some(&target.env.uid),
                Placeholder::ApiKey => Some(&job.api_key),
                Placeholder::Branch => Some(branch),
                _ => None,
            }
        };
        let mut ctx = Expansion {
            acc: &mut acc,
            skipped: &mut skipped,
            uid: "",
            environment: &target.env.name,
        };
        for action in &target.rule.on_failure {
            match action {
                FailureAction::Purge(field, t) => ctx.add(t, *field, &lookup),
                FailureAction::Everything => {
                    if ctx.acc.zone {
                        ctx.acc.purge_everything = true;
                    }
                }
            }
        }
        environments.insert(target.env.name.clone(), acc.finish());
    }
    Plan {
        environments,
        skipped: skipped.into_iter().collect(),
        items: PlannedItems::default(),
    }
}

/// Splits `items` into chunks of at most `size` (at least 1).
#[cfg(test)]
pub fn chunk<T: Clone>(items: &[T], size: usize) -> Vec<Vec<T>> {
    items.chunks(size.max(1)).map(<[T]>::to_vec).collect()
}

/// API calls needed for `n_items` items at `batch` per call (batch at least 1).
pub fn purge_calls(n_items: usize, batch: usize) -> usize {
    n_items.div_ceil(batch.max(1))
}

struct Target<'a> {
    env: &'a PlanEnvironment,
    rule: &'a EnvRule,
}

/// The given environments that have a rule, one per name (smallest uid wins),
/// sorted by name so the result does not depend on the order of `envs`.
fn targets<'a>(job: &PlanJob, envs: &'a [PlanEnvironment], rules: &'a Rules) -> Vec<Target<'a>> {
    let mut by_name: BTreeMap<&str, &PlanEnvironment> = BTreeMap::new();
    for env in envs {
        by_name
            .entry(env.name.as_str())
            .and_modify(|cur| {
                if (&env.uid, &env.base_urls) < (&cur.uid, &cur.base_urls) {
                    *cur = env;
                }
            })
            .or_insert(env);
    }
    by_name
        .into_values()
        .filter_map(|env| {
            rules
                .rule_for_stack(Some(job.api_key.as_str()), &env.name)
                .map(|rule| Target { env, rule })
        })
        .collect()
}

fn branch_of(job: &PlanJob) -> &str {
    match job.branch.as_deref() {
        Some(b) if !b.is_empty() => b,
        _ => DEFAULT_BRANCH,
    }
}

fn base_url_for<'a>(env: &'a PlanEnvironment, locale: Option<&str>) -> Option<&'a str> {
    let by_locale = locale.filter(|l| !l.is_empty()).and_then(|l| {
        env.base_urls.get(l).or_else(|| {
            env.base_urls
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(l))
                .map(|(_, v)| v)
        })
    });
    by_locale
        .or_else(|| env.base_urls.get(""))
        .map(String::as_str)
        .filter(|s| !s.is_empty())
}

/// One zone's part of an [`Acc`] (tags and `everything` go to every zone, kept once in `Acc`).
#[derive(Default)]
struct ZoneAcc {
    files: BTreeSet<String>,
    prefixes: BTreeSet<String>,
    hosts: BTreeSet<String>,
}

/// Per-environment accumulator.
struct Acc {
    environment_uid: String,
    rule_zones: crate::rules::Zones,
    /// Per zone id: its tags, files, prefixes and hosts.
    zones: BTreeMap<String, ZoneAcc>,
    zone_id: Option<String>,
    kv_binding: Option<String>,
    kv_namespace_id: Option<String>,
    purge_mode: crate::rules::PurgeMode,
    zone: bool,
    recurring: BTreeSet<String>,
    kv_keys: BTreeSet<String>,
    kv_prefixes: BTreeSet<String>,
    urls: BTreeSet<String>,
    tags: BTreeSet<String>,
    purge_everything: bool,
}

impl Acc {
    fn new(env: &PlanEnvironment, rule: &EnvRule) -> Acc {
        Acc {
            environment_uid: env.uid.clone(),
            rule_zones: rule.zones.clone(),
            zones: rule
                .zones
                .ids()
                .map(|z| (z.to_string(), ZoneAcc::default()))
                .collect(),
            zone_id: rule.zones.only().map(str::to_string),
            kv_binding: rule.kv_binding.clone(),
            kv_namespace_id: rule.kv_namespace_id.clone(),
            purge_mode: rule.purge_mode,
            zone: !rule.zones.is_empty(),
            recurring: BTreeSet::new(),
            kv_keys: BTreeSet::new(),
            kv_prefixes: BTreeSet::new(),
            urls: BTreeSet::new(),
            tags: BTreeSet::new(),
            purge_everything: false,
        }
    }

    fn finish(self) -> EnvPlan {
        let zones: BTreeMap<String, ZonePlan> = self
            .zones
            .into_iter()
            .map(|(id, z)| {
                let mut plan = ZonePlan {
                    tags: self.tags.iter().cloned().collect(),
                    files: z.files.into_iter().collect(),
                    prefixes: z.prefixes.into_iter().collect(),
                    hosts: z.hosts.into_iter().collect(),
                    purge_everything: self.purge_everything,
                };
                if plan.purge_everything {
                    plan.clear_covered_by_everything();
                }
                (id, plan)
            })
            .collect();
        EnvPlan {
            environment_uid: self.environment_uid,
            zone_id: self.zone_id,
            kv_binding: self.kv_binding,
            kv_namespace_id: self.kv_namespace_id,
            kv_keys: self.kv_keys.into_iter().collect(),
            kv_prefixes: self.kv_prefixes.into_iter().collect(),
            cache_urls: self.urls.into_iter().collect(),
            zones,
            purge_mode: Some(self.purge_mode),
            recurring: self.recurring,
        }
    }
}

struct Expansion<'a> {
    acc: &'a mut Acc,
    skipped: &'a mut BTreeSet<Skipped>,
    uid: &'a str,
    environment: &'a str,
}

impl Expansion<'_> {
    fn apply_item_rule<'v>(
        &mut self,
        rule: &ItemRule,
        lookup: &impl Fn(Placeholder) -> Option<&'v str>,
    ) {
        for kind in Field::ALL {
            for t in rule.list(kind) {
                self.add(t, kind, lookup);
            }
        }
    }

    fn add<'v>(
        &mut self,
        template: &Template,
        kind: Field,
        lookup: &impl Fn(Placeholder) -> Option<&'v str>,
    ) {
        let needs_zone = kind.needs_zone();
        if needs_zone && !self.acc.zone {
            return;
        }
        let expanded = match template.expand(lookup) {
            Ok(s) => s,
            Err(p) => return self.skip(template, p.name()),
        };
        // Prefixes and hosts are kept by the zone they are routed to (below) only.
        let (value, set, reason) = match kind {
            Field::KvKey => (
                valid_kv(expanded),
                Some(&mut self.acc.kv_keys),
                "valid_kv_key",
            ),
            Field::KvPrefix => (
                valid_kv(expanded),
                Some(&mut self.acc.kv_prefixes),
                "valid_kv_prefix",
            ),
            Field::Tag => (valid_tag(expanded), Some(&mut self.acc.tags), "valid_tag"),
            Field::Url => (
                normalize_url(&expanded),
                Some(&mut self.acc.urls),
                "valid_url",
            ),
            Field::Prefix => (normalize_prefix(&expanded), None, "valid_prefix"),
            Field::Host => (normalize_host(&expanded), None, "valid_host"),
        };
        let Some(v) = value else {
            return self.skip(template, reason);
        };
        if let Some(set) = set {
            set.insert(v.clone());
        }
        if matches!(kind, Field::Tag | Field::Url | Field::Prefix | Field::Host)
            && template.may_recur()
        {
            self.acc.recurring.insert(v.clone());
        }
        if matches!(kind, Field::Url | Field::Prefix | Field::Host) && self.acc.zone {
            self.route(kind, v);
        }
    }

    /// Sends a URL, prefix or host to the zone that serves its host; one that no zone takes
    /// goes nowhere and is listed in `skipped` (`missing: "zone"`; a URL is still deleted from
    /// the Cache API).
    fn route(&mut self, kind: Field, value: String) {
        let zones = &self.acc.rule_zones;
        let zone = match kind {
            Field::Url => zones.route_url(&value),
            Field::Prefix => zones.route_prefix(&value),
            _ => zones.route(&value),
        };
        let Some(zone) = zone.map(str::to_string) else {
            self.skipped.insert(Skipped {
                template: value,
                uid: self.uid.to_owned(),
                environment: self.environment.to_owned(),
                missing: "zone".to_owned(),
            });
            return;
        };
        let z = self.acc.zones.entry(zone).or_default();
        match kind {
            Field::Url => z.files.insert(value),
            Field::Prefix => z.prefixes.insert(value),
            _ => z.hosts.insert(value),
        };
    }

    fn skip(&mut self, template: &Template, missing: &str) {
        self.skipped.insert(Skipped {
            template: template.as_str().to_owned(),
            uid: self.uid.to_owned(),
            environment: self.environment.to_owned(),
            missing: missing.to_owned(),
        });
    }
}

fn valid_kv(key: String) -> Option<String> {
    let ok = !key.is_empty() && key.len() <= MAX_KV_KEY_BYTES && key != "." && key != "..";
    ok.then_some(key)
}

fn valid_tag(tag: String) -> Option<String> {
    let ok =
        !tag.is_empty() && tag.len() <= MAX_TAG_LEN && tag.bytes().all(|b| b.is_ascii_graphic());
    ok.then_some(tag)
}

/// Splits `scheme://rest` when the scheme is http or https (any case).
fn split_http_scheme(s: &str) -> Option<(&'static str, &str)> {
    let (scheme, rest) = s.split_once("://")?;
    if scheme.eq_ignore_ascii_case("https") {
        Some(("https", rest))
    } else if scheme.eq_ignore_ascii_case("http") {
        Some(("http", rest))
    } else {
        None
    }
}

fn strip_http_scheme(s: &str) -> &str {
    split_http_scheme(s).map_or(s, |(_, rest)| rest)
}

/// An absolute http(s) URL, normalised; `None` when it is not one.
fn normalize_url(raw: &str) -> Option<String> {
    let (scheme, rest) = split_http_scheme(raw.trim())?;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let host = authority.rsplit('@').next().unwrap_or(authority);
    if host.is_empty() || host.starts_with(':') || !authority.bytes().all(|b| b.is_ascii_graphic())
    {
        return None;
    }
    let tail = tail.split('#').next().unwrap_or("");
    let mut out = String::with_capacity(raw.len() + 8);
    out.push_str(scheme);
    out.push_str("://");
    out.push_str(&authority.to_ascii_lowercase());
    for c in tail.chars() {
        if c.is_control() {
            return None;
        }
        if c == ' ' || !c.is_ascii() {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        } else {
            out.push(c);
        }
    }
    Some(out)
}

fn normalize_prefix(raw: &str) -> Option<String> {
    let p = strip_http_scheme(raw.trim());
    let ok = !p.is_empty()
        && !p.starts_with('/')
        && !p.chars().any(|c| c.is_whitespace() || c.is_control());
    ok.then(|| p.to_owned())
}

fn normalize_host(raw: &str) -> Option<String> {
    let rest = strip_http_scheme(raw.trim());
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..end];
    let host_port = authority.rsplit('@').next().unwrap_or(authority);
    let host = if let Some(v6) = host_port.strip_prefix('[') {
        // [v6]:port → [v6]
        let close = v6.find(']')?;
        &host_port[..close + 2]
    } else {
        host_port.split(':').next().unwrap_or(host_port)
    };
    let ok = !host.is_empty() && host.bytes().all(|b| b.is_ascii_graphic());
    ok.then(|| host.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn rules() -> Rules {
        Rules::from_value(&json!({
            "production": {
                "zone_id": "023e105f4ecef8ad9ca31a8372d0c353",
                "kv_binding": "CONTENT_KV",
                "kv_namespace_id": "0f2ac74b498b48028cb68387c421e279",
                "resolve_urls": true,
                "on_failure": ["tag:cs-{environment}", "kv_prefix:{environment}:", "url:https://www.example.com/"],
                "entry": {
                    "kv_keys": ["{environment}:{locale}:entry:{content_type}:{uid}"],
                    "kv_prefixes": ["{environment}:{locale}:list:{content_type}:"],
                    "tags": ["cs-{environment}-{uid}", "cs-{environment}-ct-{content_type}"],
                    "urls": ["{base_url}{url}"]
                },
                "asset": {
                    "kv_keys": ["{environment}:asset:{uid}"],
                    "tags": ["cs-{environment}-{uid}"],
                    "urls": ["{url}"]
                }
            },
            "*": {
                "kv_binding": "STAGE_KV",
                "on_failure": ["kv_prefix:{environment}:", "tag:cs-{environment}", "everything"],
                "entry": {
                    "kv_keys": ["{environment}:{locale}:entry:{content_type}:{uid}"],
                    "tags": ["cs-{environment}-{uid}"],
                    "urls": ["{base_url}{url}"]
                }
            }
        }))
        .unwrap()
    }

    fn env(name: &str, uid: &str, urls: &[(&str, &str)]) -> PlanEnvironment {
        PlanEnvironment {
            name: name.into(),
            uid: uid.into(),
            base_urls: urls
                .iter()
                .map(|(l, u)| (l.to_string(), u.to_string()))
                .collect(),
        }
    }

    fn envs() -> Vec<PlanEnvironment> {
        vec![
            env(
                "production",
                "blt_prod",
                &[
                    ("en-us", "https://www.example.com/"),
                    ("fr-fr", "https://www.example.fr"),
                ],
            ),
            env(
                "staging",
                "blt_stage",
                &[("en-us", "https://staging.example.com/")],
            ),
        ]
    }

    fn job() -> PlanJob {
        PlanJob {
            job_id: "job-1".into(),
            api_key: "blt_key".into(),
            branch: None,
        }
    }

    fn entry(uid: &str, ct: &str, locale: &str, env_uid: &str, url: Option<&str>) -> PlanItem {
        PlanItem {
            uid: uid.into(),
            item_type: ItemType::Entry,
            locale: Some(locale.into()),
            content_type: Some(ct.into()),
            version: Some(3),
            environment_uid: env_uid.into(),
            success: true,
            url: url.map(Into::into),
        }
    }

    fn asset(uid: &str, locale: &str, env_uid: &str, url: Option<&str>) -> PlanItem {
        PlanItem {
            uid: uid.into(),
            item_type: ItemType::Asset,
            locale: Some(locale.into()),
            content_type: None,
            version: Some(1),
            environment_uid: env_uid.into(),
            success: true,
            url: url.map(Into::into),
        }
    }

    fn items() -> Vec<PlanItem> {
        let mut failed = entry(
            "e_failed",
            "author",
            "en-us",
            "blt_prod",
            Some("/authors/mark"),
        );
        failed.success = false;
        vec![
            entry("e1", "page", "en-us", "blt_prod", Some("/blog/hello")),
            entry("e1", "page", "fr-fr", "blt_prod", Some("/blog/bonjour")),
            failed,
            // No base URL for de-de in production.
            entry("e3", "page", "de-de", "blt_prod", Some("/de/x")),
            // URL not resolved.
            entry("e4", "page", "en-us", "blt_prod", None),
            asset(
                "a1",
                "en-us",
                "blt_prod",
                Some("https://images.contentstack.io/v3/assets/blt_key/a1/h/Head Shot.jpg"),
            ),
            entry("e1", "page", "en-us", "blt_stage", Some("/blog/hello")),
            // An environment the job is not limited to.
            entry("e9", "page", "en-us", "blt_dev", Some("/nope")),
        ]
    }

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    fn skip(template: &str, uid: &str, environment: &str, missing: &str) -> Skipped {
        Skipped {
            template: template.into(),
            uid: uid.into(),
            environment: environment.into(),
            missing: missing.into(),
        }
    }

    #[test]
    fn realistic_job() {
        let p = plan(&job(), &items(), &envs(), &rules());
        assert_eq!(
            p.items,
            PlannedItems {
                considered: 8,
                purged: 6,
                failed: 1
            }
        );
        assert_eq!(
            p.environments.keys().collect::<Vec<_>>(),
            vec!["production", "staging"]
        );

        let prod = &p.environments["production"];
        assert_eq!(prod.environment_uid, "blt_prod");
        assert_eq!(
            prod.zone_id.as_deref(),
            Some("023e105f4ecef8ad9ca31a8372d0c353")
        );
        assert_eq!(prod.kv_binding.as_deref(), Some("CONTENT_KV"));
        assert_eq!(
            prod.kv_namespace_id.as_deref(),
            Some("0f2ac74b498b48028cb68387c421e279")
        );
        assert_eq!(
            prod.kv_keys,
            strings(&[
                "production:asset:a1",
                "production:de-de:entry:page:e3",
                "production:en-us:entry:page:e1",
                "production:en-us:entry:page:e4",
                "production:fr-fr:entry:page:e1",
            ])
        );
        assert_eq!(
            prod.kv_prefixes,
            strings(&[
                "production:de-de:list:page:",
                "production:en-us:list:page:",
                "production:fr-fr:list:page:",
            ])
        );
        assert_eq!(
            prod.tags(),
            strings(&[
                "cs-production-a1",
                "cs-production-ct-page",
                "cs-production-e1",
                "cs-production-e3",
                "cs-production-e4",
            ])
        );
        let urls = strings(&[
            "https://images.contentstack.io/v3/assets/blt_key/a1/h/Head%20Shot.jpg",
            "https://www.example.com/blog/hello",
            "https://www.example.fr/blog/bonjour",
        ]);
        assert_eq!(prod.cache_urls, urls);
        assert_eq!(prod.files(), urls);
        assert!(prod.prefixes().is_empty() && prod.hosts().is_empty() && !prod.purge_everything());

        // Staging: the `*` rule, no zone, so only KV keys and Cache API deletes.
        let stage = &p.environments["staging"];
        assert_eq!(stage.environment_uid, "blt_stage");
        assert_eq!(stage.zone_id, None);
        assert_eq!(stage.kv_binding.as_deref(), Some("STAGE_KV"));
        assert_eq!(stage.kv_keys, strings(&["staging:en-us:entry:page:e1"]));
        assert_eq!(
            stage.cache_urls,
            strings(&["https://staging.example.com/blog/hello"])
        );
        assert!(stage.files().is_empty(), "no zone: no purge by URL");
        assert!(stage.tags().is_empty(), "no zone: no tags");

        assert_eq!(
            p.skipped,
            vec![
                skip("{base_url}{url}", "e3", "production", "base_url"),
                skip("{base_url}{url}", "e4", "production", "url"),
            ]
        );
        // The failed item and the item of the other environment left no trace.
        let json = serde_json::to_string(&p).unwrap();
        assert!(!json.contains("e_failed") && !json.contains("e9") && !json.contains("blt_dev"));
    }

    #[test]
    fn zones_route_urls_prefixes_and_hosts_and_every_zone_gets_the_tags() {
        let rules = Rules::from_value(&json!({
            "production": {
                "zones": [
                    {"zone_id": "com", "hosts": ["www.example.com"]},
                    {"zone_id": "fr", "hosts": ["*.example.fr", "www.example.fr"]}
                ],
                "on_failure": ["host:www.example.fr", "prefix:www.example.org/x"],
                "entry": {
                    "tags": ["t-{uid}"],
                    "urls": ["{base_url}{url}"],
                    "prefixes": ["www.example.com/p/{uid}"]
                },
                "asset": {"urls": ["{url}"]}
            }
        }))
        .unwrap();
        let items = vec![
            entry("e1", "page", "en-us", "blt_prod", Some("/blog/hello")),
            entry("e1", "page", "fr-fr", "blt_prod", Some("/blog/bonjour")),
            asset(
                "a1",
                "en-us",
                "blt_prod",
                Some("https://images.contentstack.io/a1.jpg"),
            ),
        ];
        let p = plan(&job(), &items, &envs(), &rules);
        let prod = &p.environments["production"];
        assert_eq!(prod.zone_id, None, "several zones: no single zone_id");
        let (com, fr) = (&prod.zones["com"], &prod.zones["fr"]);
        assert_eq!(com.files, vec!["https://www.example.com/blog/hello"]);
        assert_eq!(fr.files, vec!["https://www.example.fr/blog/bonjour"]);
        assert_eq!(com.tags, vec!["t-e1"]);
        assert_eq!(fr.tags, vec!["t-e1"], "tags go to every zone");
        assert_eq!(com.prefixes, vec!["www.example.com/p/e1"]);
        assert!(fr.prefixes.is_empty());
        assert_eq!(prod.files().len(), 2, "the flat list is the union");
        // The asset's host is served by no zone: listed in skipped, still in the Cache API list.
        let zoneless: Vec<&Skipped> = p.skipped.iter().filter(|s| s.missing == "zone").collect();
        assert_eq!(zoneless.len(), 1, "{:?}", p.skipped);
        assert_eq!(
            zoneless[0].template,
            "https://images.contentstack.io/a1.jpg"
        );
        assert_eq!(zoneless[0].uid, "a1");
        assert!(prod
            .cache_urls
            .contains(&"https://images.contentstack.io/a1.jpg".to_string()));
        assert!(!prod
            .files()
            .contains(&"https://images.contentstack.io/a1.jpg".to_string()));
        assert_eq!(
            prod.cloudflare_calls(100, 100),
            2 + 1 + 1 + 1,
            "per zone: tags twice, a URL call each, the prefix"
        );
        // on_failure is routed the same way.
        let f = plan_failure(&job(), &envs()[..1], &rules);
        let fp = &f.environments["production"];
        assert_eq!(fp.zones["fr"].hosts, vec!["www.example.fr"]);
        assert!(fp.zones["com"].hosts.is_empty());
        assert!(f
            .skipped
            .iter()
            .any(|s| s.missing == "zone" && s.template == "www.example.org/x"));
    }

    #[test]
    fn plan_json_shape() {
        let p = plan(&job(), &items(), &envs(), &rules());
        let v = serde_json::to_value(&p).unwrap();
        assert_eq!(
            v["items"],
            json!({"considered": 8, "purged": 6, "failed": 1})
        );
        assert_eq!(
            v["skipped"][1],
            json!({"template": "{base_url}{url}", "uid": "e4", "environment": "production", "missing": "url"})
        );
        let stage = &v["environments"]["staging"];
        for key in [
            "environment_uid",
            "zone_id",
            "kv_binding",
            "kv_namespace_id",
            "kv_keys",
            "kv_prefixes",
            "cache_urls",
            "tags",
            "files",
            "prefixes",
            "hosts",
            "purge_everything",
        ] {
            assert!(stage.get(key).is_some(), "missing {key}");
        }
        let back: Plan = serde_json::from_value(v).unwrap();
        // The purge mode and the recurring values travel with the actions, not in the answer.
        let mut expected = p.clone();
        for e in expected.environments.values_mut() {
            e.purge_mode = None;
            e.recurring.clear();
        }
        assert_eq!(back, expected);
    }

    #[test]
    fn every_placeholder_expands() {
        let rules = Rules::from_value(&json!({"production": {"kv_binding": "KV", "entry": {"kv_keys": [
            "{environment}|{environment_uid}|{locale}|{content_type}|{uid}|{type}|{version}|{api_key}|{branch}|{url}|{base_url}"
        ]}, "asset": {"kv_keys": ["{type}:{uid}:{version}:{locale}"]}}}))
        .unwrap();
        let mut job = job();
        job.branch = Some("dev".into());
        let mut e = entry("e1", "page", "en-us", "blt_prod", Some("/blog/hello"));
        e.version = Some(12);
        let items = vec![e, asset("a1", "fr-fr", "blt_prod", None)];
        let p = plan(&job, &items, &envs(), &rules);
        assert_eq!(
            p.environments["production"].kv_keys,
            strings(&[
                "asset:a1:1:fr-fr",
                "production|blt_prod|en-us|page|e1|entry|12|blt_key|dev|/blog/hello|https://www.example.com/",
            ])
        );
        assert!(p.skipped.is_empty());
    }

    #[test]
    fn branch_defaults_to_main() {
        let rules = Rules::from_value(
            &json!({"*": {"kv_binding": "KV", "entry": {"kv_keys": ["{branch}:{uid}"]}}}),
        )
        .unwrap();
        let items = vec![entry("e1", "page", "en-us", "blt_prod", None)];
        for branch in [None, Some(String::new())] {
            let job = PlanJob { branch, ..job() };
            let p = plan(&job, &items, &envs(), &rules);
            assert_eq!(p.environments["production"].kv_keys, strings(&["main:e1"]));
        }
        let job = PlanJob {
            branch: Some("feature-x".into()),
            ..job()
        };
        let p = plan(&job, &items, &envs(), &rules);
        assert_eq!(
            p.environments["production"].kv_keys,
            strings(&["feature-x:e1"])
        );
    }

    #[test]
    fn missing_and_empty_values_are_skipped_never_blank() {
        let rules = Rules::from_value(&json!({"*": {"kv_binding": "KV",
            "entry": {"kv_keys": ["{locale}:{content_type}:{uid}:{version}"]}}}))
        .unwrap();
        let mut no_locale = entry("e1", "page", "", "blt_prod", None);
        no_locale.locale = Some(String::new());
        let mut no_ct = entry("e2", "page", "en-us", "blt_prod", None);
        no_ct.content_type = None;
        let mut no_version = entry("e3", "page", "en-us", "blt_prod", None);
        no_version.version = None;
        let p = plan(&job(), &[no_locale, no_ct, no_version], &envs(), &rules);
        assert!(p.environments["production"].kv_keys.is_empty());
        let missing: Vec<_> = p
            .skipped
            .iter()
            .map(|s| (s.uid.as_str(), s.missing.as_str()))
            .collect();
        assert_eq!(
            missing,
            vec![("e1", "locale"), ("e2", "content_type"), ("e3", "version")]
        );
    }

    #[test]
    fn base_url_slash_rule_in_plans() {
        let rules =
            Rules::from_value(&json!({"*": {"entry": {"urls": ["{base_url}{url}"]}}})).unwrap();
        let cases = [
            ("https://a.com/", "/x", "https://a.com/x"),
            ("https://a.com", "/x", "https://a.com/x"),
            ("https://a.com/", "x", "https://a.com/x"),
            ("https://a.com/", "/", "https://a.com/"),
        ];
        for (base, url, want) in cases {
            let envs = vec![env("production", "blt_prod", &[("en-us", base)])];
            let p = plan(
                &job(),
                &[entry("e1", "page", "en-us", "blt_prod", Some(url))],
                &envs,
                &rules,
            );
            assert_eq!(
                p.environments["production"].cache_urls,
                strings(&[want]),
                "{base} + {url}"
            );
        }
    }

    #[test]
    fn base_url_lookup_fallbacks() {
        let rules =
            Rules::from_value(&json!({"*": {"entry": {"urls": ["{base_url}{url}"]}}})).unwrap();
        let envs = vec![env(
            "production",
            "blt_prod",
            &[
                ("en-US", "https://us.example.com"),
                ("", "https://default.example.com/"),
            ],
        )];
        let items = vec![
            entry("e1", "page", "en-us", "blt_prod", Some("/a")),
            entry("e2", "page", "ja-jp", "blt_prod", Some("/b")),
        ];
        let p = plan(&job(), &items, &envs, &rules);
        assert_eq!(
            p.environments["production"].cache_urls,
            strings(&["https://default.example.com/b", "https://us.example.com/a"])
        );
        // Without a locale-less URL, another locale's URL is never borrowed.
        let envs = vec![env(
            "production",
            "blt_prod",
            &[("en-us", "https://us.example.com")],
        )];
        let p = plan(&job(), &items[1..], &envs, &rules);
        assert!(p.environments["production"].cache_urls.is_empty());
        assert_eq!(
            p.skipped,
            vec![skip("{base_url}{url}", "e2", "production", "base_url")]
        );
    }

    #[test]
    fn exact_rule_beats_wildcard() {
        let rules = Rules::from_value(&json!({
            "*": {"kv_binding": "KV", "entry": {"kv_keys": ["any:{uid}"]}},
            "production": {"kv_binding": "KV", "entry": {"kv_keys": ["prod:{uid}"]}}
        }))
        .unwrap();
        let items = vec![
            entry("e1", "page", "en-us", "blt_prod", None),
            entry("e1", "page", "en-us", "blt_stage", None),
        ];
        let p = plan(&job(), &items, &envs(), &rules);
        assert_eq!(p.environments["production"].kv_keys, strings(&["prod:e1"]));
        assert_eq!(p.environments["staging"].kv_keys, strings(&["any:e1"]));
    }

    #[test]
    fn environments_without_rule_are_not_planned() {
        let rules = Rules::from_value(
            &json!({"production": {"kv_binding": "KV", "entry": {"kv_keys": ["{uid}"]}}}),
        )
        .unwrap();
        let p = plan(&job(), &items(), &envs(), &rules);
        assert_eq!(
            p.environments.keys().collect::<Vec<_>>(),
            vec!["production"]
        );
        // Staging and dev items are neither purged nor failed.
        assert_eq!(
            p.items,
            PlannedItems {
                considered: 8,
                purged: 5,
                failed: 1
            }
        );
        // No rules at all: nothing planned.
        let p = plan(&job(), &items(), &envs(), &Rules::default());
        assert!(p.environments.is_empty() && p.is_empty());
        assert_eq!(p.items.purged, 0);
    }

    #[test]
    fn environment_with_rule_but_no_items_is_listed_empty() {
        let p = plan(&job(), &[], &envs(), &rules());
        assert_eq!(p.environments.len(), 2);
        assert!(p.is_empty());
        assert_eq!(p.action_count(), 0);
        assert_eq!(
            p.environments["production"].zone_id.as_deref(),
            Some("023e105f4ecef8ad9ca31a8372d0c353")
        );
    }

    #[test]
    fn failed_items_are_not_planned() {
        let mut e = entry("e1", "page", "en-us", "blt_prod", Some("/x"));
        e.success = false;
        let p = plan(&job(), &[e], &envs(), &rules());
        assert!(p.is_empty());
        assert!(p.skipped.is_empty());
        assert_eq!(
            p.items,
            PlannedItems {
                considered: 1,
                purged: 0,
                failed: 1
            }
        );
    }

    #[test]
    fn invalid_values_are_skipped_with_a_reason() {
        let rules = Rules::from_value(&json!({"production": {
            "zone_id": "z", "kv_binding": "KV",
            "entry": {
                "kv_keys": ["k:{url}"],
                "kv_prefixes": ["p:{url}"],
                "tags": ["t-{url}"],
                "urls": ["{url}"],
                "prefixes": ["{url}"],
                "hosts": ["{url}"]
            }
        }}))
        .unwrap();
        let long = format!("/{}", "a".repeat(1100));
        let items = vec![
            entry("spaces", "page", "en-us", "blt_prod", Some("/has space")),
            entry("long", "page", "en-us", "blt_prod", Some(&long)),
            entry("ftp", "page", "en-us", "blt_prod", Some("ftp://x.com/a")),
        ];
        let p = plan(&job(), &items, &envs(), &rules);
        let reasons: BTreeSet<(String, String)> = p
            .skipped
            .iter()
            .map(|s| (s.uid.clone(), s.missing.clone()))
            .collect();
        let want: BTreeSet<(String, String)> = [
            ("spaces", "valid_tag"),
            ("spaces", "valid_url"),
            ("spaces", "valid_prefix"),
            ("long", "valid_kv_key"),
            ("long", "valid_kv_prefix"),
            ("long", "valid_tag"),
            ("long", "valid_url"),
            ("long", "valid_prefix"),
            ("long", "valid_host"),
            ("spaces", "valid_host"),
            ("ftp", "valid_url"),
        ]
        .into_iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
        assert_eq!(reasons, want);
        let prod = &p.environments["production"];
        // What was valid made it through.
        assert_eq!(prod.kv_keys, strings(&["k:/has space", "k:ftp://x.com/a"]));
        assert_eq!(prod.tags(), strings(&["t-ftp://x.com/a"]));
        assert!(prod.cache_urls.is_empty());
        // "ftp://x.com/a" is a valid prefix ("ftp:" is not an http scheme to strip).
        assert_eq!(prod.prefixes(), strings(&["ftp://x.com/a"]));
        // "/has space" → host "" is invalid; "ftp:..." → host "ftp".
        assert_eq!(prod.hosts(), strings(&["ftp"]));
    }

    #[test]
    fn tag_and_kv_limits_are_exact() {
        assert!(valid_tag("a".repeat(1024)).is_some());
        assert!(valid_tag("a".repeat(1025)).is_none());
        assert!(valid_tag("a\u{7f}".into()).is_none());
        assert!(valid_tag("é".into()).is_none());
        assert!(valid_kv("k".repeat(512)).is_some());
        assert!(valid_kv("é".repeat(257)).is_none(), "514 bytes");
        assert!(valid_kv("..".into()).is_none());
    }

    #[test]
    fn urls_are_normalised() {
        assert_eq!(
            normalize_url("HTTPS://WWW.Example.com/A b#frag").as_deref(),
            Some("https://www.example.com/A%20b")
        );
        assert_eq!(
            normalize_url("https://x.com/caf\u{e9}?q=1").as_deref(),
            Some("https://x.com/caf%C3%A9?q=1")
        );
        assert_eq!(
            normalize_url("http://x.com").as_deref(),
            Some("http://x.com")
        );
        assert_eq!(normalize_url("https:///path"), None);
        assert_eq!(normalize_url("/path"), None);
        assert_eq!(normalize_url("https://x.com/a\nb"), None);
        assert_eq!(normalize_url("https://:80/"), None);
    }

    #[test]
    fn prefixes_lose_the_scheme_and_hosts_keep_the_host() {
        let rules = Rules::from_value(&json!({"production": {"zone_id": "z", "entry": {
            "prefixes": ["{base_url}{url}", "www.example.com/static/{uid}"],
            "hosts": ["{base_url}", "https://user@CDN.example.com:8443/x?y", "http://[::1]:8080/"]
        }}}))
        .unwrap();
        let envs = vec![env(
            "production",
            "blt_prod",
            &[("en-us", "HTTPS://www.example.com/")],
        )];
        let p = plan(
            &job(),
            &[entry("e1", "page", "en-us", "blt_prod", Some("/blog/"))],
            &envs,
            &rules,
        );
        let prod = &p.environments["production"];
        assert_eq!(
            prod.prefixes(),
            strings(&["www.example.com/blog/", "www.example.com/static/e1"])
        );
        assert_eq!(
            prod.hosts(),
            strings(&["[::1]", "cdn.example.com", "www.example.com"])
        );
        assert_eq!(normalize_host("https://"), None);
        assert_eq!(normalize_prefix("https:///x"), None);
    }

    #[test]
    fn without_zone_no_cloudflare_lists() {
        let rules = Rules::from_value(&json!({"production": {
            "on_failure": ["tag:cs-{environment}", "host:x.com", "everything", "url:https://x.com/"],
            "entry": {"tags": ["t-{uid}"], "urls": ["{base_url}{url}"], "prefixes": ["x.com/{uid}"], "hosts": ["x.com"]}
        }}))
        .unwrap();
        let p = plan(
            &job(),
            &[entry("e1", "page", "en-us", "blt_prod", Some("/a"))],
            &envs(),
            &rules,
        );
        let prod = &p.environments["production"];
        assert_eq!(prod.cache_urls, strings(&["https://www.example.com/a"]));
        assert!(!prod.has_cloudflare_work());
        assert_eq!(prod.cloudflare_calls(30, 30), 0);
        let f = plan_failure(&job(), &envs(), &rules);
        let prod = &f.environments["production"];
        assert!(!prod.purge_everything());
        assert!(prod.tags().is_empty() && prod.hosts().is_empty() && prod.files().is_empty());
        assert_eq!(prod.cache_urls, strings(&["https://x.com/"]));
    }

    #[test]
    fn on_failure_plan() {
        let f = plan_failure(&job(), &envs(), &rules());
        assert_eq!(f.items, PlannedItems::default());
        assert!(f.skipped.is_empty());
        let prod = &f.environments["production"];
        assert_eq!(prod.tags(), strings(&["cs-production"]));
        assert_eq!(prod.kv_prefixes, strings(&["production:"]));
        assert_eq!(prod.cache_urls, strings(&["https://www.example.com/"]));
        assert_eq!(prod.files(), strings(&["https://www.example.com/"]));
        assert!(!prod.purge_everything());
        assert!(prod.kv_keys.is_empty());
        // Staging uses `*`, which has no zone: `everything` and tags need one.
        let stage = &f.environments["staging"];
        assert_eq!(stage.kv_prefixes, strings(&["staging:"]));
        assert!(!stage.purge_everything() && stage.tags().is_empty());
        assert_eq!(f.action_count(), 4 + 1);
    }

    #[test]
    fn on_failure_everything_covers_cloudflare_lists() {
        let rules = Rules::from_value(&json!({"*": {"zone_id": "z", "kv_binding": "KV",
            "on_failure": ["tag:cs-{environment}", "url:https://x.com/", "kv_prefix:{environment_uid}:", "everything"]}}))
        .unwrap();
        let f = plan_failure(&job(), &envs(), &rules);
        for (name, uid) in [("production", "blt_prod"), ("staging", "blt_stage")] {
            let e = &f.environments[name];
            assert!(e.purge_everything());
            assert!(e.tags().is_empty() && e.files().is_empty());
            assert_eq!(e.cache_urls, strings(&["https://x.com/"]));
            assert_eq!(e.kv_prefixes, vec![format!("{uid}:")]);
            assert_eq!(e.cloudflare_calls(30, 30), 1);
        }
    }

    #[test]
    fn on_failure_missing_value_is_skipped() {
        let rules = Rules::from_value(
            &json!({"*": {"zone_id": "z", "on_failure": ["tag:cs-{api_key}", "tag:cs-{branch}"]}}),
        )
        .unwrap();
        let job = PlanJob {
            api_key: String::new(),
            ..job()
        };
        let f = plan_failure(&job, &envs()[..1], &rules);
        assert_eq!(f.environments["production"].tags(), strings(&["cs-main"]));
        assert_eq!(
            f.skipped,
            vec![skip("cs-{api_key}", "", "production", "api_key")]
        );
    }

    #[test]
    fn duplicate_environment_names_merge_deterministically() {
        let rules = Rules::from_value(
            &json!({"*": {"kv_binding": "KV", "entry": {"kv_keys": ["{environment_uid}:{uid}"]}}}),
        )
        .unwrap();
        let a = env("production", "blt_b", &[]);
        let b = env("production", "blt_a", &[]);
        let items = vec![
            entry("e1", "page", "en-us", "blt_a", None),
            entry("e2", "page", "en-us", "blt_b", None),
        ];
        let p1 = plan(&job(), &items, &[a.clone(), b.clone()], &rules);
        let p2 = plan(&job(), &items, &[b, a], &rules);
        assert_eq!(p1, p2);
        assert_eq!(p1.environments["production"].environment_uid, "blt_a");
    }

    #[test]
    fn helpers_count_actions() {
        let p = plan(&job(), &items(), &envs(), &rules());
        let prod = p.environments["production"].counts();
        assert_eq!(
            prod,
            EnvCounts {
                kv_keys: 5,
                kv_prefixes: 3,
                cache_urls: 3,
                tags: 5,
                files: 3,
                prefixes: 0,
                hosts: 0,
                purge_everything: false
            }
        );
        assert_eq!(prod.total(), 19);
        assert_eq!(p.counts()["staging"].total(), 2);
        assert_eq!(p.action_count(), 21);
        assert_eq!(p.total_counts().kv_keys, 6);
        assert!(!p.is_empty());
        assert_eq!(p.environments["production"].cloudflare_calls(30, 30), 2);
        assert_eq!(p.environments["production"].cloudflare_calls(2, 2), 3 + 2);
        assert!(p.environments["production"].has_cloudflare_work());
    }

    #[test]
    fn merging_page_plans_equals_one_plan() {
        let all = items();
        let whole = plan(&job(), &all, &envs(), &rules());
        let mut merged = plan(&job(), &all[4..], &envs(), &rules());
        merged.merge(plan(&job(), &all[..4], &envs(), &rules()));
        assert_eq!(
            serde_json::to_string(&merged).unwrap(),
            serde_json::to_string(&whole).unwrap()
        );
    }

    #[test]
    fn plan_item_wire_format() {
        let item: PlanItem = serde_json::from_value(json!({
            "uid": "a1", "item_type": "asset", "environment_uid": "blt_prod", "success": true
        }))
        .unwrap();
        assert_eq!(item.item_type, ItemType::Asset);
        assert_eq!(item.locale, None);
        assert_eq!(
            serde_json::to_value(ItemType::Entry).unwrap(),
            json!("entry")
        );
        let e = envs()[0].clone();
        let back: PlanEnvironment =
            serde_json::from_str(&serde_json::to_string(&e).unwrap()).unwrap();
        assert_eq!(back, e);
    }

    #[test]
    fn chunking() {
        let v: Vec<u32> = (0..7).collect();
        assert_eq!(chunk(&v, 3), vec![vec![0, 1, 2], vec![3, 4, 5], vec![6]]);
        assert_eq!(chunk(&v, 0).len(), 7, "size clamped to 1");
        assert!(chunk::<u32>(&[], 5).is_empty());
        assert_eq!(purge_calls(0, 30), 0);
        assert_eq!(purge_calls(30, 30), 1);
        assert_eq!(purge_calls(31, 30), 2);
        assert_eq!(purge_calls(5, 0), 5);
    }

    fn arb_item() -> impl Strategy<Value = PlanItem> {
        (
            prop::sample::select(vec!["e1", "e2", "a1", "a2", "x"]),
            any::<bool>(),
            prop::option::of(prop::sample::select(vec!["en-us", "fr-fr", "de-de", ""])),
            prop::option::of(prop::sample::select(vec!["page", "author", ""])),
            prop::option::of(0u64..4),
            prop::sample::select(vec!["blt_prod", "blt_stage", "blt_dev"]),
            prop::bool::weighted(0.8),
            prop::option::of(prop::sample::select(vec![
                "/a",
                "a",
                "/",
                "",
                "https://cdn.x.com/f g",
                "/b c",
            ])),
        )
            .prop_map(
                |(uid, is_asset, locale, ct, version, env_uid, success, url)| PlanItem {
                    uid: uid.into(),
                    item_type: if is_asset {
                        ItemType::Asset
                    } else {
                        ItemType::Entry
                    },
                    locale: locale.map(Into::into),
                    content_type: if is_asset { None } else { ct.map(Into::into) },
                    version,
                    environment_uid: env_uid.into(),
                    success,
                    url: url.map(Into::into),
                },
            )
    }

    fn sorted_unique(v: &[String]) -> bool {
        v.windows(2).all(|w| w[0] < w[1])
    }

    proptest! {
        #[test]
        fn plan_is_deterministic_and_duplicate_free(
            (items, shuffled) in prop::collection::vec(arb_item(), 0..24)
                .prop_flat_map(|v| (Just(v.clone()), Just(v).prop_shuffle())),
            reverse_envs in any::<bool>(),
        ) {
            let rules = rules();
            let a = plan(&job(), &items, &envs(), &rules);
            let mut e = envs();
            if reverse_envs {
                e.reverse();
            }
            let b = plan(&job(), &shuffled, &e, &rules);
            prop_assert_eq!(serde_json::to_string(&a).unwrap(), serde_json::to_string(&b).unwrap());
            prop_assert!(p_sorted(&a));
            // Merging the plan of each half gives the whole plan too.
            let mid = shuffled.len() / 2;
            let mut m = plan(&job(), &shuffled[..mid], &e, &rules);
            m.merge(plan(&job(), &shuffled[mid..], &e, &rules));
            prop_assert_eq!(serde_json::to_string(&m).unwrap(), serde_json::to_string(&a).unwrap());
        }

        #[test]
        fn plan_never_contains_an_empty_placeholder_value(items in prop::collection::vec(arb_item(), 0..24)) {
            let p = plan(&job(), &items, &envs(), &rules());
            for env in p.environments.values() {
                for key in env.kv_keys.iter().chain(&env.kv_prefixes) {
                    // Every KV template separates placeholders with ':'; values have none.
                    prop_assert!(!key.contains("::"), "{}", key);
                    prop_assert!(!key.starts_with(':'));
                }
                for tag in &env.tags() {
                    prop_assert!(!tag.ends_with('-') && !tag.contains("--"), "{}", tag);
                }
                for url in &env.cache_urls {
                    prop_assert!(url.starts_with("https://") && url.len() > "https://".len() + 1, "{}", url);
                    prop_assert!(!url.contains(' '));
                }
            }
            // An item whose URL rule can reach `{url}` but has no url is reported.
            for item in &items {
                let has_base = |locales: &[&str]| item.locale.as_deref().is_some_and(|l| locales.contains(&l));
                let reaches_url = match (item.environment_uid.as_str(), item.item_type) {
                    ("blt_prod", ItemType::Asset) => true,
                    ("blt_prod", ItemType::Entry) => has_base(&["en-us", "fr-fr"]),
                    ("blt_stage", ItemType::Entry) => has_base(&["en-us"]),
                    _ => false,
                };
                if item.success && reaches_url && item.url.as_deref().is_none_or(str::is_empty) {
                    prop_assert!(
                        p.skipped.iter().any(|s| s.uid == item.uid && s.missing == "url"),
                        "{:?}", item
                    );
                }
            }
        }
    }

    fn p_sorted(p: &Plan) -> bool {
        p.skipped.windows(2).all(|w| w[0] < w[1])
            && p.environments.values().all(|e| {
                [
                    &e.kv_keys,
                    &e.kv_prefixes,
                    &e.cache_urls,
                    &e.tags(),
                    &e.files(),
                    &e.prefixes(),
                    &e.hosts(),
                ]
                .into_iter()
                .all(|v| sorted_unique(v))
            })
    }
}
