//! Recognising Contentstack job-completion events (docs/CONTRACT.md, "Intake answers" and "Recognising job events"), as
//! plain Rust with no Worker types.
//!
//! This module owns:
//! - [`parse_body`]: the raw body → JSON, rejecting what docs/CONTRACT.md ("Intake answers") calls
//!   `invalid_json` (not UTF-8, a byte-order mark, nesting deeper than
//!   [`MAX_DEPTH`], or invalid JSON);
//! - [`recognize`]: is the payload a job-completion event, and if so its
//!   `job_id`, action, environment hints, `api_key` and `triggered_at`;
//! - small accessors ([`api_key`], [`triggered_at`]) the intake needs for every
//!   verified payload, job event or not (replay window, stack allow-list).
//!
//! Decisions where the spec is silent:
//! - Depth counts open arrays/objects: `[]` and `{}` are depth 1, so 128 nested
//!   containers are accepted and 129 rejected, whatever is inside them.
//! - Any valid JSON parses; a top-level value that is not an object is
//!   recognised as [`Recognition::NotJob`] (answered `ignored`), not an error.
//! - Channel candidates are tried in the order `event`, `module` + "." + `event`,
//!   `channel`, then each string of `channels`; the first job-completion channel
//!   wins. Matching is exact, case-sensitive ASCII; no trimming.
//! - The environment name in a channel is everything between
//!   `jobs.environments.` and `.publish.completed` / `.unpublish.completed`; it
//!   may contain dots but must be non-empty and free of control characters.
//! - `job_id` is looked up at `job_id`, `data.job_id`, `data.job.uid`,
//!   `data.job.job_id`; a JSON `null` counts as absent, so the first non-null one
//!   wins. It must be a string of 1–256 bytes; any other value (number, object,
//!   empty, too long) is `invalid_job_id`. Its content is not otherwise
//!   restricted: percent-encode it before putting it in a URL.
//! - Environment hints come from `data.environment`, `data.environments`, then the
//!   top-level `environment`, `environments`: a string, an object with
//!   `name` (preferred) or `uid`, or an array of those; empty strings are
//!   skipped and duplicates removed, order kept.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::fmt;

#[cfg(test)]
mod tests;

/// Deepest accepted nesting of arrays/objects.
pub const MAX_DEPTH: usize = 128;
/// Longest accepted `job_id`, in bytes.
pub const MAX_JOB_ID_BYTES: usize = 256;

/// What the job did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// `…publish.completed`
    Publish,
    /// `…unpublish.completed`
    Unpublish,
}

impl Action {
    /// `"publish"` or `"unpublish"`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Publish => "publish",
            Self::Unpublish => "unpublish",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A recognised job-completion event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobEvent {
    /// The job's id (1–256 bytes).
    pub job_id: String,
    /// Publish or unpublish.
    pub action: Action,
    /// The environment **name** the channel names, if it names one.
    pub channel_environment: Option<String>,
    /// Environment names or uids found in `data.environment(s)` (hints only).
    pub hinted_environments: Vec<String>,
    /// The stack API key (top-level `api_key`), if a string.
    pub api_key: Option<String>,
    /// The top-level `triggered_at`, unparsed, if a string.
    pub triggered_at: Option<String>,
    /// The normalised channel, e.g. `jobs.environments.production.publish.completed`.
    pub channel: String,
}

/// The scope of a delivery: the environment its channel names, or `*`.
pub fn scope_of(channel_environment: Option<&str>) -> &str {
    channel_environment.unwrap_or(ANY_SCOPE)
}

/// The scope of a delivery whose channel names no environment.
pub const ANY_SCOPE: &str = "*";

/// The outcome of [`recognize`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recognition {
    /// A job-completion event.
    Job(JobEvent),
    /// Anything else; `reason` is short and safe to return in an `ignored` answer.
    NotJob {
        /// Why it is not a job-completion event.
        reason: String,
    },
}

/// A body that cannot be accepted (400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    /// Not UTF-8, BOM, too deep, or invalid JSON. The message holds no body content.
    #[error("{0}")]
    InvalidJson(String),
    /// A job-completion event without a `job_id`.
    #[error("the job event has no job_id")]
    MissingJobId,
    /// `job_id` is not a string of 1–256 bytes.
    #[error("job_id must be a string of 1 to 256 bytes")]
    InvalidJobId,
}

impl EventError {
    /// The error code (docs/CONTRACT.md, "Intake answers").
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidJson(_) => "invalid_json",
            Self::MissingJobId => "missing_job_id",
            Self::InvalidJobId => "invalid_job_id",
        }
    }

    /// HTTP status (always 400).
    pub fn status(&self) -> u16 {
        400
    }
}

// ---------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------

/// Parses the raw webhook body.
///
/// Rejected as [`EventError::InvalidJson`]: a leading UTF-8 byte-order mark,
/// bytes that are not UTF-8, arrays/objects nested more than [`MAX_DEPTH`]
/// deep (see the module docs for how depth is counted), and anything
/// `serde_json` does not accept as one JSON value (surrounding JSON whitespace
/// is allowed).
pub fn parse_body(raw: &[u8]) -> Result<Value, EventError> {
    if raw.starts_with(&[0xEF, 0xBB, 0xBF]) {
        return Err(invalid("the body starts with a byte-order mark"));
    }
    let text = std::str::from_utf8(raw).map_err(|_| invalid("the body is not valid UTF-8"))?;
    // The common case in one pass: serde_json accepts up to 127 levels and says so when a body
    // goes deeper; only then is the depth measured (128 is still allowed, 129 is not).
    match serde_json::from_str(text) {
        Ok(v) => return Ok(v),
        Err(e) if !e.to_string().starts_with("recursion limit exceeded") => {
            return Err(json_error(e))
        }
        Err(_) => {}
    }
    let depth = max_depth(text.as_bytes(), MAX_DEPTH + 1);
    if depth > MAX_DEPTH {
        return Err(invalid(
            "the body nests arrays/objects deeper than 128 levels",
        ));
    }
    if depth < MAX_DEPTH {
        return serde_json::from_str(text).map_err(json_error);
    }
    // serde_json stops at 127 levels; peel the outermost container so each
    // piece it parses is at most 127 deep.
    parse_peeled(text)
}

fn invalid(msg: &str) -> EventError {
    EventError::InvalidJson(msg.to_owned())
}

/// serde_json's messages name the problem and a line/column, never content.
fn json_error(e: serde_json::Error) -> EventError {
    EventError::InvalidJson(format!("the body is not valid JSON: {e}"))
}

/// Maximum nesting depth of arrays/objects outside strings, stopping early once
/// `stop` is reached. Brackets inside strings (including after escaped quotes)
/// do not count. Unbalanced input is left to the JSON parser.
fn max_depth(bytes: &[u8], stop: usize) -> usize {
    let mut depth = 0usize;
    let mut max = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for &b in bytes {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    max = depth;
                    if max >= stop {
                        return max;
                    }
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

/// Splits `s` at commas (or, with `colon`, at the first colon) that are outside
/// strings and nested containers. `None` if brackets are unbalanced.
fn split_top_level(s: &str, sep: u8, first_only: bool) -> Option<Vec<&str>> {
    let bytes = s.as_bytes();
    let mut parts = Vec::new();
    let mut start = 0;
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for (i, &b) in bytes.iter().enumerate() {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => depth += 1,
            b']' | b'}' => depth = depth.checked_sub(1)?,
            _ if b == sep && depth == 0 && (!first_only || parts.is_empty()) => {
                // `sep` is ASCII, so `i` and `i + 1` are char boundaries.
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if in_string || depth != 0 {
        return None;
    }
    parts.push(&s[start..]);
    Some(parts)
}

fn is_json_ws(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r')
}

/// Parses a document whose outermost value is an array or object by parsing
/// its members one at a time.
fn parse_peeled(text: &str) -> Result<Value, EventError> {
    let trimmed = text.trim_matches(is_json_ws);
    let malformed = || invalid("the body is not valid JSON");
    let (open, inner, close) = match (trimmed.chars().next(), trimmed.chars().last()) {
        (Some(o @ ('[' | '{')), Some(c @ (']' | '}'))) if trimmed.len() >= 2 => {
            (o, &trimmed[1..trimmed.len() - 1], c)
        }
        _ => return Err(malformed()),
    };
    let members = if inner.trim_matches(is_json_ws).is_empty() {
        Vec::new()
    } else {
        split_top_level(inner, b',', false).ok_or_else(malformed)?
    };
    match (open, close) {
        ('[', ']') => members
            .into_iter()
            .map(|m| serde_json::from_str::<Value>(m).map_err(json_error))
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array),
        ('{', '}') => {
            let mut map = Map::new();
            for member in members {
                let kv = split_top_level(member, b':', true).ok_or_else(malformed)?;
                let [key, value] = kv.as_slice() else {
                    return Err(malformed());
                };
                let key: String = serde_json::from_str(key).map_err(json_error)?;
                let value: Value = serde_json::from_str(value).map_err(json_error)?;
                map.insert(key, value);
            }
            Ok(Value::Object(map))
        }
        _ => Err(malformed()),
    }
}

// ---------------------------------------------------------------------------
// Recognition
// ---------------------------------------------------------------------------

/// The top-level `api_key`, if it is a string.
pub fn api_key(v: &Value) -> Option<&str> {
    v.get("api_key").and_then(Value::as_str)
}

/// The top-level `triggered_at`, if it is a string.
pub fn triggered_at(v: &Value) -> Option<&str> {
    v.get("triggered_at").and_then(Value::as_str)
}

/// A parsed job channel: action and optional environment name.
fn parse_channel(channel: &str) -> Option<(Action, Option<&str>)> {
    const PREFIX: &str = "jobs.environments.";
    let rest = channel.strip_prefix(PREFIX)?;
    match rest {
        "publish.completed" => return Some((Action::Publish, None)),
        "unpublish.completed" => return Some((Action::Unpublish, None)),
        _ => {}
    }
    let (name, action) = if let Some(name) = rest.strip_suffix(".unpublish.completed") {
        (name, Action::Unpublish)
    } else {
        (rest.strip_suffix(".publish.completed")?, Action::Publish)
    };
    if name.is_empty() || name.chars().any(char::is_control) {
        return None;
    }
    Some((action, Some(name)))
}

/// Channel strings a payload carries, in the order they are tried.
fn channel_candidates(obj: &Map<String, Value>) -> Vec<String> {
    let mut out = Vec::new();
    let event = obj.get("event").and_then(Value::as_str);
    if let Some(event) = event {
        out.push(event.to_owned());
        if let Some(module) = obj.get("module").and_then(Value::as_str) {
            out.push(format!("{module}.{event}"));
        }
    }
    if let Some(channel) = obj.get("channel").and_then(Value::as_str) {
        out.push(channel.to_owned());
    }
    match obj.get("channels") {
        Some(Value::Array(items)) => {
            out.extend(items.iter().filter_map(Value::as_str).map(str::to_owned))
        }
        Some(Value::String(s)) => out.push(s.clone()),
        _ => {}
    }
    out
}

/// Decides whether `v` is a job-completion event and extracts its fields.
///
/// Errors only for a job-completion event whose `job_id` is missing or invalid.
pub fn recognize(v: &Value) -> Result<Recognition, EventError> {
    let Some(obj) = v.as_object() else {
        return Ok(not_job("the payload is not a JSON object"));
    };
    let candidates = channel_candidates(obj);
    let Some((channel, action, env)) = candidates
        .iter()
        .find_map(|c| parse_channel(c).map(|(a, e)| (c, a, e)))
    else {
        return Ok(match candidates.first() {
            None => not_job("the payload names no event or channel"),
            Some(first) => not_job_channel(first),
        });
    };

    let job_id = find_job_id(obj).ok_or(EventError::MissingJobId)?;
    let job_id = match job_id {
        Value::String(s) if !s.is_empty() && s.len() <= MAX_JOB_ID_BYTES => s.clone(),
        _ => return Err(EventError::InvalidJobId),
    };

    Ok(Recognition::Job(JobEvent {
        job_id,
        action,
        channel_environment: env.map(str::to_owned),
        hinted_environments: hinted_environments(obj),
        api_key: api_key(v).map(str::to_owned),
        triggered_at: triggered_at(v).map(str::to_owned),
        channel: channel.clone(),
    }))
}

fn not_job(reason: &str) -> Recognition {
    Recognition::NotJob {
        reason: reason.to_owned(),
    }
}

/// `NotJob` naming the sender's channel, quoted with escapes and cut short.
fn not_job_channel(channel: &str) -> Recognition {
    let shown = crate::text::prefix(channel, 80);
    let ellipsis = if shown.len() < channel.len() {
        "…"
    } else {
        ""
    };
    Recognition::NotJob {
        reason: format!("{shown:?}{ellipsis} is not a job-completion event"),
    }
}

/// The first non-null `job_id` among the documented positions.
fn find_job_id(obj: &Map<String, Value>) -> Option<&Value> {
    let data = obj.get("data");
    let job = data.and_then(|d| d.get("job"));
    [
        obj.get("job_id"),
        data.and_then(|d| d.get("job_id")),
        job.and_then(|j| j.get("uid")),
        job.and_then(|j| j.get("job_id")),
    ]
    .into_iter()
    .flatten()
    .find(|v| !v.is_null())
}

fn hinted_environments(obj: &Map<String, Value>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let data = obj.get("data").and_then(Value::as_object);
    let sources = [
        data.and_then(|d| d.get("environment")),
        data.and_then(|d| d.get("environments")),
        obj.get("environment"),
        obj.get("environments"),
    ];
    for source in sources.into_iter().flatten() {
        let items: &[Value] = match source {
            Value::Array(items) => items,
            other => std::slice::from_ref(other),
        };
        for item in items {
            if let Some(name) = environment_name(item) {
                if !out.iter().any(|e| e == name) {
                    out.push(name.to_owned());
                }
            }
        }
    }
    out
}

fn environment_name(v: &Value) -> Option<&str> {
    let s = match v {
        Value::String(s) => s.as_str(),
        Value::Object(o) => ["name", "uid"]
            .into_iter()
            .filter_map(|k| o.get(k).and_then(Value::as_str))
            .find(|s| !s.is_empty())?,
        _ => return None,
    };
    (!s.is_empty()).then_some(s)
}
