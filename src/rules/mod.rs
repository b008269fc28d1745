//! The purge rules: parsing and validating the `ENVIRONMENTS` variable (see the README).
//!
//! This module owns the shape of `ENVIRONMENTS` and every check that can be
//! made without a job: field names, types, template syntax, which
//! placeholders each template may use, and which settings a template needs.
//! It produces [`Rules`], which the planner (`crate::plan`) reads. Errors name
//! the offending path, e.g. `ENVIRONMENTS.production.entry.tags[1]: …`.
//!
//! Choices where the contract is silent:
//! - `ENVIRONMENTS` may be a JSON object or a string holding one; an empty
//!   object is valid (no rules: every event is ignored).
//! - Keys are `<environment>`, `*`, `<api_key>/<environment>` or `<api_key>/*`:
//!   at most one `/`, both sides non-empty, no whitespace in the api key and
//!   none at either end of the environment name; the api key may not be `*`
//!   (a plain key already applies to every stack). Lookups
//!   ([`Rules::rule_for_stack`]) are exact and case-sensitive.
//! - An environment whose name contains `/` cannot have a key of its own; it
//!   gets `<api_key>/*` or `*`.
//! - `purge_mode` is `"purge"` (default) or `"invalidate"`, trimmed and in any case.
//! - Unknown fields are errors, with a "did you mean" hint for near misses.
//! - A template list may also be written as a single string; `null` counts as absent.
//! - `zone_id`, `kv_binding` and `kv_namespace_id` must be non-empty strings
//!   without whitespace or `/`; `zone_id` is not forced to be 32 hex digits so
//!   that test and proxy setups can use other ids.
//! - `resolve_urls` is a boolean or the string `"true"`/`"false"` (any case).
//! - `verify_sample` is a whole number 0–50 (default 0, off); it probes only URLs purged
//!   through the Cloudflare API, so a rule without `zone_id` verifies nothing.
//! - `kv_keys`, `kv_prefixes` and `kv_prefix:` need `kv_binding`.
//! - `asset` templates may not use `{content_type}`: assets have none, so the
//!   template could never expand.
//! - `on_failure` templates may use only `{environment}`, `{environment_uid}`,
//!   `{api_key}` and `{branch}` (there is no item when a job cannot be resolved).
//! - Tag templates whose literal text holds a space or a non-printable or
//!   non-ASCII character, and `urls`/`url:` templates that start with literal
//!   text other than `http://` or `https://`, are errors: they could never
//!   produce a valid value.
//! - Tags, prefixes, hosts and `everything` are allowed without `zone_id`; the
//!   planner leaves them out of the plan then (without a zone the rule still
//!   deletes KV keys and Cache API entries).

use std::collections::BTreeMap;
use std::fmt;

use serde::{Serialize, Serializer};
use serde_json::{Map, Value};

use crate::template::{Placeholder, Template, TemplateError};

pub mod references;
pub mod zones;
pub use references::References;
pub use zones::Zones;

/// The name of the variable, used as the root of error paths.
pub const ROOT: &str = "ENVIRONMENTS";
/// Most purged URLs one environment's verification probes.
pub const MAX_VERIFY_SAMPLE: u32 = 50;
/// The key of the rule that applies to environments without their own key.
pub const WILDCARD: &str = "*";

/// Separates the stack api key from the environment in a stack-scoped key.
pub const STACK_SEPARATOR: char = '/';

const ENV_FIELDS: [&str; 11] = [
    "zone_id",
    "zones",
    "kv_binding",
    "kv_namespace_id",
    "resolve_urls",
    "purge_mode",
    "on_failure",
    "entry",
    "asset",
    "references",
    "verify_sample",
];
/// The keys of an `entry`/`asset` section, one per [`Field`].
const ITEM_FIELDS: [&str; 6] = [
    Field::KvKey.list_name(),
    Field::KvPrefix.list_name(),
    Field::Tag.list_name(),
    Field::Url.list_name(),
    Field::Prefix.list_name(),
    Field::Host.list_name(),
];

/// What a template names: the one list of the things a rule can purge. Item sections hold a
/// template list per field; `on_failure` names a field by its prefix (`tag:…`). The planner
/// expands templates per field, and the purge actions follow from the plan's lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Field {
    KvKey,
    KvPrefix,
    Tag,
    Url,
    Prefix,
    Host,
}

impl Field {
    pub const ALL: [Field; 6] = [
        Field::KvKey,
        Field::KvPrefix,
        Field::Tag,
        Field::Url,
        Field::Prefix,
        Field::Host,
    ];

    /// The key of its list in an item section.
    pub const fn list_name(self) -> &'static str {
        match self {
            Field::KvKey => "kv_keys",
            Field::KvPrefix => "kv_prefixes",
            Field::Tag => "tags",
            Field::Url => "urls",
            Field::Prefix => "prefixes",
            Field::Host => "hosts",
        }
    }

    /// Its name in `on_failure` (`tag:…`); single KV keys cannot be named there.
    pub const fn failure_name(self) -> Option<&'static str> {
        match self {
            Field::KvKey => None,
            Field::KvPrefix => Some("kv_prefix"),
            Field::Tag => Some("tag"),
            Field::Url => Some("url"),
            Field::Prefix => Some("prefix"),
            Field::Host => Some("host"),
        }
    }

    /// Whether purging it needs a Cloudflare zone.
    pub fn needs_zone(self) -> bool {
        matches!(self, Field::Tag | Field::Prefix | Field::Host)
    }
}

/// The `on_failure` forms, for error messages.
fn failure_kinds() -> String {
    let names: Vec<String> = Field::ALL
        .iter()
        .filter_map(|f| f.failure_name())
        .map(|n| format!("{n}:…"))
        .collect();
    format!("{} or everything", names.join(", "))
}

/// A configuration error in `ENVIRONMENTS`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RulesError {
    /// The variable is a string that is not valid JSON.
    #[error("{ROOT}: not valid JSON: {0}")]
    InvalidJson(String),
    /// A value at `path` is wrong; `message` says why.
    #[error("{path}: {message}")]
    Invalid { path: String, message: String },
    /// Several values are wrong (each reported).
    #[error("{}", .0.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; "))]
    Many(Vec<RulesError>),
}

impl RulesError {
    fn at(path: &Path, message: impl Into<String>) -> Self {
        RulesError::Invalid {
            path: path.to_string(),
            message: message.into(),
        }
    }

    /// The path of the offending value (`ENVIRONMENTS` for JSON errors).
    pub fn path(&self) -> &str {
        match self {
            RulesError::InvalidJson(_) => ROOT,
            RulesError::Invalid { path, .. } => path,
            RulesError::Many(all) => all.first().map_or(ROOT, RulesError::path),
        }
    }

    /// Each problem's message.
    pub fn messages(&self) -> Vec<String> {
        match self {
            RulesError::Many(all) => all.iter().map(|e| e.to_string()).collect(),
            one => vec![one.to_string()],
        }
    }
}

/// A coarse purge run when a job cannot be resolved (`on_failure`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FailureAction {
    /// `tag:…`, `prefix:…`, `host:…`, `url:…` or `kv_prefix:…`.
    Purge(Field, Template),
    /// `everything`
    Everything,
}

impl FailureAction {
    /// The template, when the action has one.
    pub fn template(&self) -> Option<&Template> {
        match self {
            FailureAction::Purge(_, t) => Some(t),
            FailureAction::Everything => None,
        }
    }
}

impl fmt::Display for FailureAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FailureAction::Purge(field, t) => {
                write!(f, "{}:{t}", field.failure_name().unwrap_or("?"))
            }
            FailureAction::Everything => f.write_str("everything"),
        }
    }
}

impl Serialize for FailureAction {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// How the Cloudflare API is asked to drop cached content.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PurgeMode {
    /// Remove it (`purge_cache`).
    #[default]
    Purge,
    /// Mark it stale so the next request revalidates (`invalidate_cache`).
    Invalidate,
}

impl PurgeMode {
    /// The zone API endpoint: `purge_cache` or `invalidate_cache`.
    pub fn endpoint(self) -> &'static str {
        match self {
            PurgeMode::Purge => "purge_cache",
            PurgeMode::Invalidate => "invalidate_cache",
        }
    }

    fn parse(s: &str) -> Option<PurgeMode> {
        match s.trim().to_ascii_lowercase().as_str() {
            "purge" => Some(PurgeMode::Purge),
            "invalidate" => Some(PurgeMode::Invalidate),
            _ => None,
        }
    }
}

/// What to purge for each item of one type (`entry` or `asset`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ItemRule {
    /// KV keys to delete.
    pub kv_keys: Vec<Template>,
    /// KV prefixes to sweep (list + delete).
    pub kv_prefixes: Vec<Template>,
    /// Cloudflare cache tags to purge.
    pub tags: Vec<Template>,
    /// Absolute URLs: deleted from the Cache API, and purged by URL when there is a zone.
    pub urls: Vec<Template>,
    /// Cloudflare prefixes (`host/path`, scheme stripped) to purge.
    pub prefixes: Vec<Template>,
    /// Hostnames to purge.
    pub hosts: Vec<Template>,
}

impl ItemRule {
    /// The templates of one field.
    pub fn list(&self, field: Field) -> &[Template] {
        match field {
            Field::KvKey => &self.kv_keys,
            Field::KvPrefix => &self.kv_prefixes,
            Field::Tag => &self.tags,
            Field::Url => &self.urls,
            Field::Prefix => &self.prefixes,
            Field::Host => &self.hosts,
        }
    }

    /// True when the section lists no template.
    pub fn is_empty(&self) -> bool {
        self.templates().next().is_none()
    }

    /// Every template, in field order.
    pub fn templates(&self) -> impl Iterator<Item = &Template> {
        self.kv_keys
            .iter()
            .chain(&self.kv_prefixes)
            .chain(&self.tags)
            .chain(&self.urls)
            .chain(&self.prefixes)
            .chain(&self.hosts)
    }
}

/// The rule for one environment key.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct EnvRule {
    /// Cloudflare zones for purge API calls (`zone_id` or `zones`; none: no purge calls).
    #[serde(skip_serializing_if = "Zones::is_empty")]
    pub zones: Zones,
    /// KV namespace binding name.
    pub kv_binding: Option<String>,
    /// KV namespace id, for REST bulk deletes.
    pub kv_namespace_id: Option<String>,
    /// Look up each item's `url` (batched: one API call per 100 items of a content type and
    /// locale).
    pub resolve_urls: bool,
    /// Purge or invalidate (soft purge) on Cloudflare.
    pub purge_mode: PurgeMode,
    /// Coarse purge when the job cannot be resolved.
    pub on_failure: Vec<FailureAction>,
    /// Per-entry templates.
    pub entry: ItemRule,
    /// Per-asset templates.
    pub asset: ItemRule,
    /// Changes that reach the entries referencing them (`None`: off).
    pub references: Option<References>,
    /// Purged URLs probed after each purge pass (0: off; docs/CONTRACT.md, "Verified
    /// invalidation").
    pub verify_sample: u32,
}

impl EnvRule {
    /// True when the rule has a zone, so the Cloudflare purge API is used.
    pub fn needs_cloudflare_api(&self) -> bool {
        !self.zones.is_empty()
    }

    /// True when the rule uses a KV binding.
    #[cfg(test)]
    pub fn uses_kv(&self) -> bool {
        self.kv_binding.is_some()
    }

    /// True when any entry or asset template uses `{url}`.
    #[cfg(test)]
    pub fn uses_url(&self) -> bool {
        self.entry
            .templates()
            .chain(self.asset.templates())
            .any(|t| t.uses(Placeholder::Url))
    }
}

/// The parsed `ENVIRONMENTS` rules, keyed by environment name (`*` = default), optionally
/// scoped to one stack (`<api_key>/<environment>`, `<api_key>/*`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Rules {
    rules: BTreeMap<String, EnvRule>,
}

impl Rules {
    /// Parses the rules from a JSON value: an object, or a string holding one.
    pub fn from_value(value: &Value) -> Result<Rules, RulesError> {
        match value {
            Value::String(text) => Rules::from_json_str(text),
            Value::Object(map) => parse_root(map),
            other => Err(RulesError::at(
                &Path::root(),
                format!(
                    "expected an object keyed by environment name, got {}",
                    kind(other)
                ),
            )),
        }
    }

    /// Parses the rules from JSON text.
    pub fn from_json_str(text: &str) -> Result<Rules, RulesError> {
        let value: Value =
            serde_json::from_str(text).map_err(|e| RulesError::InvalidJson(e.to_string()))?;
        if value.is_string() {
            // A doubly-encoded string is not accepted: it is almost surely a mistake.
            return Err(RulesError::at(
                &Path::root(),
                "expected an object keyed by environment name, got a string",
            ));
        }
        Rules::from_value(&value)
    }

    /// The rule for `env_name` in any stack: [`Self::rule_for_stack`] without an api key.
    pub fn rule_for(&self, env_name: &str) -> Option<&EnvRule> {
        self.rule_for_stack(None, env_name)
    }

    /// The rule for `env_name` of the stack `api_key`: `api_key/env_name`, else `api_key/*`,
    /// else `env_name`, else `*`. Stack-scoped keys apply only to their stack.
    pub fn rule_for_stack(&self, api_key: Option<&str>, env_name: &str) -> Option<&EnvRule> {
        // A name with '/' would read as a stack-scoped key: it has no key of its own.
        let own_key = !env_name.contains(STACK_SEPARATOR);
        let stack = api_key.filter(|k| !k.is_empty() && !k.contains(STACK_SEPARATOR));
        let scoped =
            |env: &str| stack.and_then(|k| self.rules.get(&format!("{k}{STACK_SEPARATOR}{env}")));
        own_key
            .then(|| scoped(env_name))
            .flatten()
            .or_else(|| scoped(WILDCARD))
            .or_else(|| own_key.then(|| self.rules.get(env_name)).flatten())
            .or_else(|| self.rules.get(WILDCARD))
    }

    /// The environment part of every key except `*`, sorted and without duplicates
    /// (`blt1/production` and `production` both give `production`).
    pub fn environment_names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self
            .rules
            .keys()
            .map(|k| split_key(k).1)
            .filter(|env| *env != WILDCARD)
            .collect();
        crate::sorted::sort(&mut names);
        names.dedup();
        names
    }

    /// The stack api keys named by stack-scoped keys, sorted and without duplicates.
    pub fn stacks(&self) -> Vec<&str> {
        let mut stacks: Vec<&str> = self.rules.keys().filter_map(|k| split_key(k).0).collect();
        crate::sorted::sort(&mut stacks);
        stacks.dedup();
        stacks
    }

    /// The configured keys, sorted (including `*` when present).
    pub fn names(&self) -> Vec<&str> {
        self.rules.keys().map(String::as_str).collect()
    }

    /// Every (key, rule) pair, sorted by key.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &EnvRule)> {
        self.rules.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// True when no rule is configured.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// True when a `*` rule is configured.
    #[cfg(test)]
    pub fn has_wildcard(&self) -> bool {
        self.rules.contains_key(WILDCARD)
    }
}

/// A path into the configuration, for error messages.
#[derive(Debug, Clone)]
struct Path(String);

impl Path {
    fn root() -> Path {
        Path(ROOT.to_owned())
    }

    fn key(&self, key: &str) -> Path {
        let plain = !key.is_empty()
            && key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if plain {
            Path(format!("{}.{}", self.0, key))
        } else {
            Path(format!("{}[{:?}]", self.0, key))
        }
    }

    fn index(&self, i: usize) -> Path {
        Path(format!("{}[{}]", self.0, i))
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A key's stack api key (when stack-scoped) and environment part.
fn split_key(key: &str) -> (Option<&str>, &str) {
    match key.split_once(STACK_SEPARATOR) {
        Some((stack, env)) => (Some(stack), env),
        None => (None, key),
    }
}

/// Checks the shape of a key: `<environment>`, `*`, `<api_key>/<environment>` or `<api_key>/*`.
fn check_key(path: &Path, key: &str) -> Result<(), RulesError> {
    let (stack, env) = split_key(key);
    if let Some(stack) = stack {
        if env.contains(STACK_SEPARATOR) {
            return Err(RulesError::at(
                path,
                "a key is <environment> or <api_key>/<environment>: at most one '/'",
            ));
        }
        if stack.is_empty() {
            return Err(RulesError::at(
                path,
                "the stack api key before '/' must not be empty",
            ));
        }
        if stack.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(RulesError::at(
                path,
                "the stack api key before '/' must not contain whitespace",
            ));
        }
        if stack == WILDCARD {
            return Err(RulesError::at(
                path,
                format!("\"*/{env}\" is not a key; \"{env}\" already applies to every stack"),
            ));
        }
    }
    if env.trim().is_empty() {
        return Err(RulesError::at(path, "environment name must not be empty"));
    }
    if env.trim() != env || env.chars().any(char::is_control) {
        return Err(RulesError::at(
            path,
            "environment name must not start or end with whitespace",
        ));
    }
    Ok(())
}

fn parse_root(map: &Map<String, Value>) -> Result<Rules, RulesError> {
    let root = Path::root();
    let mut rules = BTreeMap::new();
    for (name, value) in map {
        let path = root.key(name);
        check_key(&path, name)?;
        rules.insert(name.clone(), parse_env(&path, value)?);
    }
    Ok(Rules { rules })
}

fn check_fields(path: &Path, map: &Map<String, Value>, known: &[&str]) -> Result<(), RulesError> {
    for key in map.keys() {
        if known.contains(&key.as_str()) {
            continue;
        }
        let hint = suggest(key, known)
            .map(|s| format!(" (did you mean {s:?}?)"))
            .unwrap_or_else(|| format!(" (expected one of: {})", known.join(", ")));
        return Err(RulesError::at(
            &path.key(key),
            format!("unknown field{hint}"),
        ));
    }
    Ok(())
}

fn suggest<'a>(key: &str, known: &[&'a str]) -> Option<&'a str> {
    let lower = key.to_ascii_lowercase();
    known
        .iter()
        .map(|k| (edit_distance(&lower, k), *k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 4))
        .min()
        .map(|(_, k)| k)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

fn parse_env(path: &Path, value: &Value) -> Result<EnvRule, RulesError> {
    let map = value.as_object().ok_or_else(|| {
        RulesError::at(
            path,
            format!("expected an object (a rule), got {}", kind(value)),
        )
    })?;
    check_fields(path, map, &ENV_FIELDS)?;

    let zones = zones::parse(path, map)?;
    let kv_binding = opt_id(path, map, "kv_binding")?;
    let kv_namespace_id = opt_id(path, map, "kv_namespace_id")?;
    let resolve_urls = opt_bool(path, map, "resolve_urls")?;
    let verify_sample = integer(
        &path.key("verify_sample"),
        map.get("verify_sample"),
        0,
        MAX_VERIFY_SAMPLE,
        0,
    )?;

    let purge_mode = match map.get("purge_mode") {
        None | Some(Value::Null) => PurgeMode::default(),
        Some(v) => v.as_str().and_then(PurgeMode::parse).ok_or_else(|| {
            RulesError::at(
                &path.key("purge_mode"),
                format!(
                    "expected \"purge\" or \"invalidate\", got {}",
                    match v {
                        Value::String(s) => format!("{s:?}"),
                        other => kind(other).to_string(),
                    }
                ),
            )
        })?,
    };

    let entry = parse_item(&path.key("entry"), map.get("entry"), false)?;
    let asset = parse_item(&path.key("asset"), map.get("asset"), true)?;
    let on_failure = parse_failure(&path.key("on_failure"), map.get("on_failure"))?;
    let references = references::parse(
        &path.key("references"),
        map.get("references"),
        !entry.is_empty(),
    )?;

    if kv_binding.is_none() {
        for (section, rule) in [("entry", &entry), ("asset", &asset)] {
            for (field, list) in [
                ("kv_keys", &rule.kv_keys),
                ("kv_prefixes", &rule.kv_prefixes),
            ] {
                if !list.is_empty() {
                    return Err(RulesError::at(
                        &path.key(section).key(field),
                        "needs kv_binding (the KV namespace binding of this environment)",
                    ));
                }
            }
        }
        if let Some(i) = on_failure
            .iter()
            .position(|a| matches!(a, FailureAction::Purge(Field::KvPrefix, _)))
        {
            return Err(RulesError::at(
                &path.key("on_failure").index(i),
                "kv_prefix needs kv_binding (the KV namespace binding of this environment)",
            ));
        }
    }

    Ok(EnvRule {
        zones,
        kv_binding,
        kv_namespace_id,
        resolve_urls,
        purge_mode,
        on_failure,
        entry,
        asset,
        references,
        verify_sample,
    })
}

/// An integer in `min..=max` (a whole number, or a string holding one); `default` when absent.
fn integer(
    path: &Path,
    value: Option<&Value>,
    min: u32,
    max: u32,
    default: u32,
) -> Result<u32, RulesError> {
    let n = match value {
        None | Some(Value::Null) => return Ok(default),
        Some(Value::Number(n)) => n.as_u64(),
        Some(Value::String(s)) => s.trim().parse::<u64>().ok(),
        Some(_) => None,
    };
    match n {
        Some(n) if (min as u64..=max as u64).contains(&n) => Ok(n as u32),
        _ => Err(RulesError::at(
            path,
            format!(
                "expected a whole number from {min} to {max}, got {}",
                match value {
                    Some(Value::Number(n)) => n.to_string(),
                    Some(Value::String(s)) => format!("{s:?}"),
                    Some(v) => kind(v).to_string(),
                    None => String::new(),
                }
            ),
        )),
    }
}

fn opt_id(
    path: &Path,
    map: &Map<String, Value>,
    field: &str,
) -> Result<Option<String>, RulesError> {
    let path = path.key(field);
    match map.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => {
            if s.is_empty() {
                Err(RulesError::at(
                    &path,
                    "must not be empty (leave it out instead)",
                ))
            } else if s
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || c == '/')
            {
                Err(RulesError::at(&path, "must not contain whitespace or '/'"))
            } else {
                Ok(Some(s.clone()))
            }
        }
        Some(other) => Err(RulesError::at(
            &path,
            format!("expected a string, got {}", kind(other)),
        )),
    }
}

/// An optional boolean field (`false` when absent or `null`).
fn opt_bool(path: &Path, map: &Map<String, Value>, field: &str) -> Result<bool, RulesError> {
    match map.get(field) {
        None | Some(Value::Null) => Ok(false),
        Some(v) => parse_bool(v).ok_or_else(|| {
            RulesError::at(
                &path.key(field),
                format!("expected true or false, got {}", kind(v)),
            )
        }),
    }
}

/// An optional object section with only `known` fields (`None` when absent or `null`).
fn section<'v>(
    path: &Path,
    value: Option<&'v Value>,
    known: &[&str],
) -> Result<Option<&'v Map<String, Value>>, RulesError> {
    let map = match value {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Object(map)) => map,
        Some(other) => {
            return Err(RulesError::at(
                path,
                format!("expected an object, got {}", kind(other)),
            ))
        }
    };
    check_fields(path, map, known)?;
    Ok(Some(map))
}

fn parse_bool(value: &Value) -> Option<bool> {
    match value {
        Value::Bool(b) => Some(*b),
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" => Some(true),
            "false" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

/// A list of strings (or one string), with the path of each element.
fn string_list<'v>(
    path: &Path,
    value: Option<&'v Value>,
) -> Result<Vec<(Path, &'v str)>, RulesError> {
    match value {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(vec![(path.clone(), s.as_str())]),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let p = path.index(i);
                match v {
                    Value::String(s) => Ok((p, s.as_str())),
                    other => Err(RulesError::at(
                        &p,
                        format!("expected a template string, got {}", kind(other)),
                    )),
                }
            })
            .collect(),
        Some(other) => Err(RulesError::at(
            path,
            format!("expected an array of template strings, got {}", kind(other)),
        )),
    }
}

fn template_at(path: &Path, text: &str) -> Result<Template, RulesError> {
    Template::parse(text).map_err(|e| match e {
        TemplateError::Empty => RulesError::at(path, "empty template"),
        other => RulesError::at(path, other.to_string()),
    })
}

/// Checks that only depend on the template text and the field it is in.
fn check_template_for_field(path: &Path, t: &Template, field: Field) -> Result<(), RulesError> {
    match field {
        Field::Tag => {
            if let Some(c) = t
                .literals()
                .flat_map(str::chars)
                .find(|c| !c.is_ascii_graphic())
            {
                return Err(RulesError::at(
                    path,
                    format!(
                        "tag template {:?} contains {c:?}: tags must be printable ASCII without spaces",
                        t.as_str()
                    ),
                ));
            }
        }
        Field::Url => {
            let lower = t.as_str().to_ascii_lowercase();
            let absolute = lower.starts_with("http://") || lower.starts_with("https://");
            if !absolute && !t.starts_with_placeholder() {
                return Err(RulesError::at(
                    path,
                    format!(
                        "URL template {:?} must start with http://, https:// or a placeholder such as {{base_url}}",
                        t.as_str()
                    ),
                ));
            }
        }
        Field::KvKey | Field::KvPrefix | Field::Prefix | Field::Host => {}
    }
    Ok(())
}

fn parse_item(path: &Path, value: Option<&Value>, is_asset: bool) -> Result<ItemRule, RulesError> {
    let Some(map) = section(path, value, &ITEM_FIELDS)? else {
        return Ok(ItemRule::default());
    };
    let list = |name: &str, field: Field| -> Result<Vec<Template>, RulesError> {
        let field_path = path.key(name);
        let mut out: Vec<Template> = Vec::new();
        for (p, text) in string_list(&field_path, map.get(name))? {
            let t = template_at(&p, text)?;
            if is_asset && t.uses(Placeholder::ContentType) {
                return Err(RulesError::at(
                    &p,
                    format!(
                        "template {:?} uses {{content_type}}, which assets do not have",
                        t.as_str()
                    ),
                ));
            }
            check_template_for_field(&p, &t, field)?;
            if !out.contains(&t) {
                out.push(t);
            }
        }
        Ok(out)
    };
    let l = |f: Field| list(f.list_name(), f);
    Ok(ItemRule {
        kv_keys: l(Field::KvKey)?,
        kv_prefixes: l(Field::KvPrefix)?,
        tags: l(Field::Tag)?,
        urls: l(Field::Url)?,
        prefixes: l(Field::Prefix)?,
        hosts: l(Field::Host)?,
    })
}

fn parse_failure(path: &Path, value: Option<&Value>) -> Result<Vec<FailureAction>, RulesError> {
    let mut out: Vec<FailureAction> = Vec::new();
    for (p, raw) in string_list(path, value)? {
        let text = raw.trim();
        let action = if text == "everything" {
            FailureAction::Everything
        } else {
            let (kind, rest) = text.split_once(':').ok_or_else(|| {
                RulesError::at(
                    &p,
                    format!(
                        "{raw:?} is not an on_failure action; expected {}",
                        failure_kinds()
                    ),
                )
            })?;
            let Some(field) = Field::ALL
                .into_iter()
                .find(|f| f.failure_name() == Some(kind))
            else {
                return Err(RulesError::at(
                    &p,
                    format!(
                        "unknown on_failure action {kind:?}; expected {}",
                        failure_kinds()
                    ),
                ));
            };
            if rest.is_empty() {
                return Err(RulesError::at(
                    &p,
                    format!("{kind}: needs a template after ':'"),
                ));
            }
            let t = template_at(&p, rest)?;
            if let Some(bad) = t
                .placeholders()
                .into_iter()
                .find(|x| !x.is_environment_level())
            {
                return Err(RulesError::at(
                    &p,
                    format!(
                        "{bad} cannot be used in on_failure (no item is known there); use {{environment}}, {{environment_uid}}, {{api_key}} or {{branch}}"
                    ),
                ));
            }
            check_template_for_field(&p, &t, field)?;
            FailureAction::Purge(field, t)
        };
        if !out.contains(&action) {
            out.push(action);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The README's TOML example, as wrangler hands it to the Worker.
    fn spec_example() -> Value {
        json!({
            "production": {
                "zone_id": "023e105f4ecef8ad9ca31a8372d0c353",
                "kv_binding": "CONTENT_KV",
                "kv_namespace_id": "0f2ac74b498b48028cb68387c421e279",
                "resolve_urls": true,
                "on_failure": ["tag:cs-{environment}"],
                "entry": {
                    "kv_keys": ["{environment}:{locale}:entry:{content_type}:{uid}"],
                    "kv_prefixes": ["{environment}:{locale}:list:{content_type}:"],
                    "tags": ["cs-{environment}-{uid}", "cs-{environment}-ct-{content_type}"],
                    "urls": ["{base_url}{url}"],
                    "prefixes": [],
                    "hosts": []
                },
                "asset": {
                    "kv_keys": ["{environment}:asset:{uid}"],
                    "tags": ["cs-{environment}-{uid}"],
                    "urls": ["{url}"]
                }
            }
        })
    }

    fn err(value: Value) -> RulesError {
        Rules::from_value(&value).unwrap_err()
    }

    fn assert_err(value: Value, path: &str, needle: &str) {
        let e = err(value);
        assert_eq!(e.path(), path, "{e}");
        let msg = e.to_string();
        assert!(msg.starts_with(&format!("{path}: ")), "{msg}");
        assert!(msg.contains(needle), "{msg:?} lacks {needle:?}");
    }

    #[test]
    fn spec_example_parses() {
        let rules = Rules::from_value(&spec_example()).unwrap();
        assert_eq!(rules.names(), vec!["production"]);
        assert!(!rules.has_wildcard());
        assert!(!rules.is_empty());
        let p = rules.rule_for("production").unwrap();
        assert_eq!(p.zones.only(), Some("023e105f4ecef8ad9ca31a8372d0c353"));
        assert_eq!(p.kv_binding.as_deref(), Some("CONTENT_KV"));
        assert_eq!(
            p.kv_namespace_id.as_deref(),
            Some("0f2ac74b498b48028cb68387c421e279")
        );
        assert!(p.resolve_urls);
        assert!(p.needs_cloudflare_api());
        assert!(p.uses_kv());
        assert!(p.uses_url());
        assert_eq!(p.on_failure.len(), 1);
        assert_eq!(p.on_failure[0].to_string(), "tag:cs-{environment}");
        assert_eq!(p.entry.tags.len(), 2);
        assert_eq!(p.entry.urls[0].as_str(), "{base_url}{url}");
        assert!(p.entry.prefixes.is_empty());
        assert_eq!(p.asset.kv_keys[0].as_str(), "{environment}:asset:{uid}");
        assert!(rules.rule_for("staging").is_none());
    }

    #[test]
    fn accepts_a_json_string_too() {
        let text = spec_example().to_string();
        let a = Rules::from_json_str(&text).unwrap();
        let b = Rules::from_value(&Value::String(text)).unwrap();
        assert_eq!(a, b);
        assert_eq!(a, Rules::from_value(&spec_example()).unwrap());
    }

    #[test]
    fn invalid_json_string_is_reported() {
        let e = Rules::from_json_str("{\"production\": ").unwrap_err();
        assert!(matches!(e, RulesError::InvalidJson(_)));
        assert!(
            e.to_string().starts_with("ENVIRONMENTS: not valid JSON"),
            "{e}"
        );
        let e = Rules::from_value(&json!("[1,")).unwrap_err();
        assert_eq!(e.path(), "ENVIRONMENTS");
    }

    #[test]
    fn root_must_be_an_object() {
        assert_err(
            json!([1]),
            "ENVIRONMENTS",
            "expected an object keyed by environment name, got an array",
        );
        assert_err(json!(null), "ENVIRONMENTS", "got null");
        let e = Rules::from_json_str("\"{}\"").unwrap_err();
        assert_eq!(e.path(), "ENVIRONMENTS");
    }

    #[test]
    fn empty_object_is_no_rules() {
        let rules = Rules::from_value(&json!({})).unwrap();
        assert!(rules.is_empty());
        assert!(rules.rule_for("production").is_none());
        let rules = Rules::from_json_str("{}").unwrap();
        assert!(rules.names().is_empty());
    }

    #[test]
    fn exact_key_wins_over_wildcard() {
        let rules = Rules::from_value(&json!({
            "*": {"zone_id": "zone-any"},
            "production": {"zone_id": "zone-prod"}
        }))
        .unwrap();
        assert!(rules.has_wildcard());
        assert_eq!(rules.names(), vec!["*", "production"]);
        assert_eq!(
            rules.rule_for("production").unwrap().zones.only(),
            Some("zone-prod")
        );
        assert_eq!(
            rules.rule_for("staging").unwrap().zones.only(),
            Some("zone-any")
        );
        // Names are exact: no case folding.
        assert_eq!(
            rules.rule_for("Production").unwrap().zones.only(),
            Some("zone-any")
        );
    }

    #[test]
    fn minimal_rule_defaults() {
        let rules = Rules::from_value(&json!({"dev": {}})).unwrap();
        let r = rules.rule_for("dev").unwrap();
        assert_eq!(r, &EnvRule::default());
        assert!(!r.needs_cloudflare_api());
        assert!(!r.resolve_urls);
        assert!(r.entry.is_empty() && r.asset.is_empty());
    }

    #[test]
    fn resolve_urls_accepts_strings() {
        for (v, want) in [
            (json!("true"), true),
            (json!("FALSE"), false),
            (json!(false), false),
            (json!(null), false),
        ] {
            let rules = Rules::from_value(&json!({"p": {"resolve_urls": v}})).unwrap();
            assert_eq!(rules.rule_for("p").unwrap().resolve_urls, want);
        }
        assert_err(
            json!({"p": {"resolve_urls": "yes"}}),
            "ENVIRONMENTS.p.resolve_urls",
            "expected true or false",
        );
        assert_err(
            json!({"p": {"resolve_urls": 1}}),
            "ENVIRONMENTS.p.resolve_urls",
            "got a number",
        );
    }

    #[test]
    fn unknown_fields_are_errors_with_hints() {
        assert_err(
            json!({"production": {"entry": {"tag": ["x"]}}}),
            "ENVIRONMENTS.production.entry.tag",
            "unknown field (did you mean \"tags\"?)",
        );
        assert_err(
            json!({"production": {"zoneid": "z"}}),
            "ENVIRONMENTS.production.zoneid",
            "did you mean \"zone_id\"?",
        );
        assert_err(
            json!({"production": {"onfailure": []}}),
            "ENVIRONMENTS.production.onfailure",
            "did you mean \"on_failure\"?",
        );
        assert_err(
            json!({"production": {"purge": true}}),
            "ENVIRONMENTS.production.purge",
            "unknown field (expected one of: zone_id, zones, kv_binding",
        );
        assert_err(
            json!({"*": {"asset": {"url": []}}}),
            "ENVIRONMENTS[\"*\"].asset.url",
            "did you mean \"urls\"?",
        );
    }

    #[test]
    fn wrong_types_are_errors() {
        assert_err(
            json!({"production": "zone"}),
            "ENVIRONMENTS.production",
            "expected an object (a rule), got a string",
        );
        assert_err(
            json!({"production": {"zone_id": 5}}),
            "ENVIRONMENTS.production.zone_id",
            "expected a string",
        );
        assert_err(
            json!({"production": {"entry": []}}),
            "ENVIRONMENTS.production.entry",
            "expected an object, got an array",
        );
        assert_err(
            json!({"production": {"entry": {"tags": {"a": 1}}}}),
            "ENVIRONMENTS.production.entry.tags",
            "expected an array of template strings",
        );
        assert_err(
            json!({"production": {"entry": {"tags": ["ok", 3]}}}),
            "ENVIRONMENTS.production.entry.tags[1]",
            "expected a template string, got a number",
        );
    }

    #[test]
    fn ids_must_be_non_empty_without_spaces() {
        assert_err(
            json!({"p": {"zone_id": ""}}),
            "ENVIRONMENTS.p.zone_id",
            "must not be empty",
        );
        assert_err(
            json!({"p": {"kv_binding": "MY KV"}}),
            "ENVIRONMENTS.p.kv_binding",
            "whitespace",
        );
        assert_err(
            json!({"p": {"kv_namespace_id": "a/b"}}),
            "ENVIRONMENTS.p.kv_namespace_id",
            "'/'",
        );
    }

    #[test]
    fn environment_names_must_be_non_empty() {
        assert_err(json!({"": {}}), "ENVIRONMENTS[\"\"]", "must not be empty");
        assert_err(
            json!({" prod": {}}),
            "ENVIRONMENTS[\" prod\"]",
            "whitespace",
        );
    }

    #[test]
    fn single_string_is_a_one_element_list() {
        let rules = Rules::from_value(&json!({"p": {"zone_id": "z", "entry": {"tags": "cs-{uid}"}, "on_failure": "everything"}})).unwrap();
        let r = rules.rule_for("p").unwrap();
        assert_eq!(r.entry.tags.len(), 1);
        assert_eq!(r.on_failure, vec![FailureAction::Everything]);
    }

    #[test]
    fn duplicate_templates_are_collapsed() {
        let rules = Rules::from_value(&json!({"p": {"entry": {"tags": ["cs-{uid}", "cs-{uid}"]}}}))
            .unwrap();
        assert_eq!(rules.rule_for("p").unwrap().entry.tags.len(), 1);
    }

    #[test]
    fn unknown_placeholder_names_path_and_placeholder() {
        assert_err(
            json!({"production": {"entry": {"tags": ["cs-{uid}", "cs-{enviroment}"]}}}),
            "ENVIRONMENTS.production.entry.tags[1]",
            "unknown placeholder \"{enviroment}\"",
        );
        assert_err(
            json!({"production": {"kv_binding": "KV", "asset": {"kv_keys": ["{uid"]}}}),
            "ENVIRONMENTS.production.asset.kv_keys[0]",
            "unclosed '{'",
        );
        assert_err(
            json!({"production": {"entry": {"hosts": [""]}}}),
            "ENVIRONMENTS.production.entry.hosts[0]",
            "empty template",
        );
    }

    #[test]
    fn kv_templates_need_kv_binding() {
        assert_err(
            json!({"production": {"entry": {"kv_keys": ["{uid}"]}}}),
            "ENVIRONMENTS.production.entry.kv_keys",
            "needs kv_binding",
        );
        assert_err(
            json!({"production": {"asset": {"kv_prefixes": ["a:"]}}}),
            "ENVIRONMENTS.production.asset.kv_prefixes",
            "needs kv_binding",
        );
        assert_err(
            json!({"production": {"on_failure": ["tag:x", "kv_prefix:{environment}:"]}}),
            "ENVIRONMENTS.production.on_failure[1]",
            "kv_prefix needs kv_binding",
        );
        // With a binding all three are fine.
        assert!(Rules::from_value(&json!({"production": {
            "kv_binding": "KV",
            "entry": {"kv_keys": ["{uid}"]},
            "asset": {"kv_prefixes": ["a:"]},
            "on_failure": ["kv_prefix:{environment}:"]
        }}))
        .is_ok());
    }

    #[test]
    fn on_failure_only_environment_level_placeholders() {
        assert_err(
            json!({"production": {"on_failure": ["tag:cs-{uid}"]}}),
            "ENVIRONMENTS.production.on_failure[0]",
            "{uid} cannot be used in on_failure",
        );
        let rules = Rules::from_value(&json!({"production": {"zone_id": "z", "on_failure": [
            "tag:cs-{environment}-{environment_uid}-{api_key}-{branch}",
            "prefix:www.example.com/{environment}",
            "host:{environment}.example.com",
            "url:https://www.example.com/",
            "everything"
        ]}}))
        .unwrap();
        let actions = &rules.rule_for("production").unwrap().on_failure;
        assert_eq!(actions.len(), 5);
        assert!(matches!(actions[1], FailureAction::Purge(Field::Prefix, _)));
        assert!(matches!(actions[2], FailureAction::Purge(Field::Host, _)));
        assert!(matches!(actions[3], FailureAction::Purge(Field::Url, _)));
        assert_eq!(actions[4], FailureAction::Everything);
        assert_eq!(
            serde_json::to_value(actions).unwrap()[0],
            json!("tag:cs-{environment}-{environment_uid}-{api_key}-{branch}")
        );
    }

    #[test]
    fn on_failure_syntax_errors() {
        assert_err(
            json!({"p": {"on_failure": ["purge_all"]}}),
            "ENVIRONMENTS.p.on_failure[0]",
            "is not an on_failure action",
        );
        assert_err(
            json!({"p": {"on_failure": ["tags:x"]}}),
            "ENVIRONMENTS.p.on_failure[0]",
            "unknown on_failure action \"tags\"",
        );
        assert_err(
            json!({"p": {"on_failure": ["tag:"]}}),
            "ENVIRONMENTS.p.on_failure[0]",
            "needs a template after ':'",
        );
        assert_err(
            json!({"p": {"on_failure": ["tag:{nope}"]}}),
            "ENVIRONMENTS.p.on_failure[0]",
            "unknown placeholder \"{nope}\"",
        );
        assert_err(
            json!({"p": {"on_failure": ["tag:cs {environment}"]}}),
            "ENVIRONMENTS.p.on_failure[0]",
            "printable ASCII without spaces",
        );
        assert_err(
            json!({"p": {"on_failure": ["url:/"]}}),
            "ENVIRONMENTS.p.on_failure[0]",
            "must start with http://",
        );
    }

    #[test]
    fn asset_rules_may_not_use_content_type() {
        assert_err(
            json!({"production": {"asset": {"tags": ["cs-ct-{content_type}"]}}}),
            "ENVIRONMENTS.production.asset.tags[0]",
            "uses {content_type}, which assets do not have",
        );
        // Entries may.
        assert!(Rules::from_value(
            &json!({"production": {"entry": {"tags": ["cs-ct-{content_type}"]}}})
        )
        .is_ok());
    }

    #[test]
    fn tag_literals_must_be_valid_tag_characters() {
        assert_err(
            json!({"p": {"entry": {"tags": ["cs {uid}"]}}}),
            "ENVIRONMENTS.p.entry.tags[0]",
            "printable ASCII without spaces",
        );
        assert_err(
            json!({"p": {"entry": {"tags": ["cs-é-{uid}"]}}}),
            "ENVIRONMENTS.p.entry.tags[0]",
            "contains 'é'",
        );
    }

    #[test]
    fn url_templates_must_be_absolute() {
        assert_err(
            json!({"p": {"entry": {"urls": ["/blog/{uid}"]}}}),
            "ENVIRONMENTS.p.entry.urls[0]",
            "must start with http://, https:// or a placeholder",
        );
        assert!(Rules::from_value(&json!({"p": {"entry": {"urls": ["HTTPS://x.com/{uid}", "{base_url}{url}", "http://x/"]}}})).is_ok());
    }

    #[test]
    fn suggestions_only_for_near_misses() {
        assert_eq!(suggest("tag", &ITEM_FIELDS), Some("tags"));
        assert_eq!(suggest("KV_KEYS", &ITEM_FIELDS), Some("kv_keys"));
        assert_eq!(suggest("banana", &ITEM_FIELDS), None);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }

    #[test]
    fn rules_serialize_for_the_dry_run() {
        let rules = Rules::from_value(&spec_example()).unwrap();
        let v = serde_json::to_value(&rules).unwrap();
        assert_eq!(v["production"]["entry"]["urls"], json!(["{base_url}{url}"]));
        assert_eq!(
            v["production"]["on_failure"],
            json!(["tag:cs-{environment}"])
        );
        assert_eq!(v["production"]["resolve_urls"], json!(true));
    }

    #[test]
    fn stack_keys_take_precedence_over_plain_keys() {
        let rules = Rules::from_value(&json!({
            "*": {"zone_id": "any"},
            "production": {"zone_id": "prod"},
            "blt1/*": {"zone_id": "blt1-any"},
            "blt1/production": {"zone_id": "blt1-prod"},
            "blt2/staging": {"zone_id": "blt2-staging"}
        }))
        .unwrap();
        let zone =
            |k: Option<&str>, e: &str| rules.rule_for_stack(k, e).and_then(|r| r.zones.only());
        assert_eq!(zone(Some("blt1"), "production"), Some("blt1-prod"));
        assert_eq!(zone(Some("blt1"), "staging"), Some("blt1-any"));
        assert_eq!(zone(Some("blt2"), "production"), Some("prod"));
        assert_eq!(zone(Some("blt2"), "staging"), Some("blt2-staging"));
        assert_eq!(zone(Some("blt2"), "dev"), Some("any"));
        assert_eq!(zone(Some("blt3"), "staging"), Some("any"));
        // Without a stack, stack-scoped keys never apply.
        assert_eq!(zone(None, "production"), Some("prod"));
        assert_eq!(zone(None, "staging"), Some("any"));
        assert_eq!(
            rules.rule_for("staging"),
            rules.rule_for_stack(None, "staging")
        );
        // A name with '/' cannot reach a stack-scoped key by itself.
        assert_eq!(zone(None, "blt1/production"), Some("any"));
        assert_eq!(zone(Some("blt1"), "a/b"), Some("blt1-any"));
        assert_eq!(rules.environment_names(), vec!["production", "staging"]);
        assert_eq!(rules.stacks(), vec!["blt1", "blt2"]);
    }

    #[test]
    fn two_stacks_can_share_an_environment_name_with_different_rules() {
        let rules = Rules::from_value(&json!({
            "blt1/production": {"kv_binding": "KV_ONE", "purge_mode": "invalidate"},
            "blt2/production": {"kv_binding": "KV_TWO"}
        }))
        .unwrap();
        let one = rules.rule_for_stack(Some("blt1"), "production").unwrap();
        let two = rules.rule_for_stack(Some("blt2"), "production").unwrap();
        assert_eq!(one.kv_binding.as_deref(), Some("KV_ONE"));
        assert_eq!(one.purge_mode, PurgeMode::Invalidate);
        assert_eq!(two.kv_binding.as_deref(), Some("KV_TWO"));
        assert_eq!(two.purge_mode, PurgeMode::Purge);
        assert!(rules.rule_for_stack(Some("blt3"), "production").is_none());
        assert!(rules.rule_for("production").is_none());
        assert_eq!(rules.environment_names(), vec!["production"]);
    }

    #[test]
    fn bad_keys_are_errors() {
        let rule = json!({});
        for (key, needle) in [
            ("a/b/c", "at most one '/'"),
            ("/production", "must not be empty"),
            ("blt1/", "environment name must not be empty"),
            ("blt 1/production", "must not contain whitespace"),
            ("blt1/ production", "whitespace"),
            ("*/production", "already applies to every stack"),
            ("", "must not be empty"),
        ] {
            let mut map = Map::new();
            map.insert(key.to_string(), rule.clone());
            let path = format!("ENVIRONMENTS[{key:?}]");
            assert_err(Value::Object(map), &path, needle);
        }
        assert!(Rules::from_value(&json!({"blt1/*": {}, "blt1/prod-eu": {}})).is_ok());
    }

    #[test]
    fn verify_sample_is_a_bounded_whole_number_defaulting_to_off() {
        let rules = Rules::from_value(&json!({
            "a": {"verify_sample": 5},
            "b": {"verify_sample": "50"},
            "c": {},
        }))
        .unwrap();
        let n = |e: &str| rules.rule_for(e).unwrap().verify_sample;
        assert_eq!((n("a"), n("b"), n("c")), (5, 50, 0));
        for bad in [json!(51), json!(-1), json!(2.5), json!("x"), json!(true)] {
            let e = Rules::from_value(&json!({"p": {"verify_sample": bad}}))
                .unwrap_err()
                .to_string();
            assert!(e.contains("ENVIRONMENTS.p.verify_sample"), "{e}");
        }
    }

    #[test]
    fn purge_mode_picks_the_endpoint() {
        let rules = Rules::from_value(&json!({
            "a": {"purge_mode": "invalidate"},
            "b": {"purge_mode": " Purge "},
            "c": {}
        }))
        .unwrap();
        let mode = |e: &str| rules.rule_for(e).unwrap().purge_mode;
        assert_eq!(mode("a").endpoint(), "invalidate_cache");
        assert_eq!(mode("b").endpoint(), "purge_cache");
        assert_eq!(mode("c"), PurgeMode::Purge);
        assert_eq!(
            serde_json::to_value(&rules).unwrap()["a"]["purge_mode"],
            json!("invalidate")
        );
        assert_err(
            json!({"p": {"purge_mode": "soft"}}),
            "ENVIRONMENTS.p.purge_mode",
            "expected \"purge\" or \"invalidate\", got \"soft\"",
        );
        assert_err(
            json!({"p": {"purge_mode": true}}),
            "ENVIRONMENTS.p.purge_mode",
            "got a boolean",
        );
        assert_err(
            json!({"p": {"purgemode": "purge"}}),
            "ENVIRONMENTS.p.purgemode",
            "did you mean \"purge_mode\"?",
        );
    }
}
