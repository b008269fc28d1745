//! Webhook health and missed jobs, the pure part (docs/CONTRACT.md, "Webhook health"): the
//! state `GET /api/health` answers, reading Contentstack's webhooks and executions answers,
//! which webhooks deliver to this Worker, which executions failed, and the window each check
//! reads.
//!
//! Choices where the contract is silent:
//! - A failed execution is one whose `status` is missing (a timeout, an unreachable Worker) or
//!   not 2xx. Executions are read without a `query` filter and filtered here, so timeouts are
//!   never missed whatever the API's filter does with a `null` status.
//! - Each stack's window starts where its last successful check ended, less
//!   [`OVERLAP_MS`] (deliveries are deduplicated, so reading one twice is harmless); the first
//!   check looks back [`FIRST_LOOKBACK_MS`] (24 hours) and no window reaches further back than
//!   Contentstack keeps logs (30 days). A stack whose check failed keeps its old start, so the
//!   next check reads what this one missed.
//! - The payload of an execution is its first request's `body` (an object, or a string
//!   holding one), else its `event_data`.
//! - `recovered` lists what the last check took in; the jobs themselves keep
//!   `source: "recovered"` in their records.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Where Contentstack delivers to this Worker when `PUBLIC_URL` is not set.
pub const WEBHOOK_PATH: &str = "/webhooks/contentstack";
/// The first check of a stack looks back this far.
pub const FIRST_LOOKBACK_MS: i64 = 24 * 60 * 60 * 1000;
/// Contentstack keeps execution logs this long.
pub const LOG_RETENTION_MS: i64 = 30 * 24 * 60 * 60 * 1000;
/// Each window reaches this far back into the previous one.
pub const OVERLAP_MS: i64 = 5 * 60 * 1000;
/// Webhooks or executions per page.
pub const PAGE_LIMIT: u64 = 100;

/// One webhook that delivers to this Worker, as `/api/health` shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookHealth {
    pub api_key: String,
    pub uid: String,
    pub name: String,
    pub disabled: bool,
    pub unhealthy: bool,
    pub last_failure_at: Option<String>,
    /// Failed executions the last check read.
    #[serde(default)]
    pub failed_executions: u64,
}

/// A job the last check took in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recovered {
    pub job_id: String,
    pub environment: Option<String>,
    pub at: String,
    pub api_key: String,
    pub action: String,
}

/// What the ledger keeps between checks; `/api/health` answers it without `windows`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthState {
    pub checked_at: Option<String>,
    pub error: Option<String>,
    pub webhooks: Vec<WebhookHealth>,
    pub recovered: Vec<Recovered>,
    /// Per stack api_key: where its last successful check ended (ms since the epoch).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub windows: BTreeMap<String, i64>,
}

impl HealthState {
    /// The answer of `GET /api/health`.
    pub fn public(&self) -> Value {
        serde_json::json!({
            "checked_at": self.checked_at,
            "error": self.error,
            "webhooks": self.webhooks,
            "recovered": self.recovered,
        })
    }
}

/// The window (from, to) of a stack's check at `now_ms`, given where its last one ended.
pub fn window(last_to_ms: Option<i64>, now_ms: i64) -> (i64, i64) {
    let from = match last_to_ms {
        Some(t) => t - OVERLAP_MS,
        None => now_ms - FIRST_LOOKBACK_MS,
    };
    (from.max(now_ms - LOG_RETENTION_MS).min(now_ms), now_ms)
}

/// A webhook as Contentstack lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webhook {
    pub uid: String,
    pub name: String,
    pub target_urls: Vec<String>,
    pub disabled: bool,
    pub unhealthy: bool,
}

/// Reads `GET /v3/webhooks` leniently: entries without a uid are left out.
pub fn webhooks_of(answer: &Value) -> Vec<Webhook> {
    let list = answer.get("webhooks").and_then(Value::as_array);
    list.into_iter()
        .flatten()
        .filter_map(|w| {
            let uid = w.get("uid")?.as_str()?.to_string();
            let target_urls = w
                .get("destinations")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|d| d.get("target_url").and_then(Value::as_str))
                .map(str::to_string)
                .collect();
            let unhealthy = match w.get("unhealthy") {
                Some(Value::Bool(b)) => *b,
                Some(v) => v.get("state").and_then(Value::as_bool).unwrap_or(false),
                None => false,
            };
            Some(Webhook {
                name: w
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or(&uid)
                    .to_string(),
                uid,
                target_urls,
                disabled: w.get("disabled").and_then(Value::as_bool).unwrap_or(false),
                unhealthy,
            })
        })
        .collect()
}

/// Whether a webhook delivers to this Worker: a destination starting with `PUBLIC_URL` when
/// it is set, else one whose path is [`WEBHOOK_PATH`].
pub fn delivers_here(w: &Webhook, public_url: Option<&str>) -> bool {
    w.target_urls.iter().any(|t| match public_url {
        Some(base) => t.starts_with(base.trim_end_matches('/')),
        None => path_of(t) == WEBHOOK_PATH,
    })
}

/// The path of an absolute URL (without query or fragment, trailing `/` dropped).
fn path_of(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let path = rest.find('/').map_or("", |i| &rest[i..]);
    let path = path.split(['?', '#']).next().unwrap_or("");
    if path.len() > 1 {
        path.trim_end_matches('/')
    } else {
        path
    }
}

/// One execution (delivery) of a webhook.
#[derive(Debug, Clone, PartialEq)]
pub struct Execution {
    pub uid: String,
    pub created_at: String,
    pub status: Option<u16>,
    /// The body that was sent.
    pub payload: Option<Value>,
}

impl Execution {
    /// A delivery that did not get a 2xx (or no answer at all).
    pub fn failed(&self) -> bool {
        !matches!(self.status, Some(200..=299))
    }
}

/// Reads one page of `GET /v3/webhooks/{uid}/executions` (wrapped as `{"webhooks": […]}`).
pub fn executions_of(answer: &Value) -> Vec<Execution> {
    let list = answer
        .get("webhooks")
        .or_else(|| answer.get("executions"))
        .and_then(Value::as_array);
    list.into_iter()
        .flatten()
        .map(|e| {
            let body = e
                .get("request_details")
                .and_then(Value::as_array)
                .and_then(|d| d.first())
                .and_then(|d| d.get("request"))
                .and_then(|r| r.get("body"));
            let payload = match body {
                Some(Value::Object(_)) => body.cloned(),
                Some(Value::String(s)) => serde_json::from_str::<Value>(s)
                    .ok()
                    .filter(Value::is_object),
                _ => None,
            }
            .or_else(|| e.get("event_data").filter(|v| v.is_object()).cloned());
            Execution {
                uid: e
                    .get("uid")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
                created_at: e
                    .get("created_at")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
                status: e
                    .get("status")
                    .and_then(Value::as_u64)
                    .and_then(|s| u16::try_from(s).ok()),
                payload,
            }
        })
        .collect()
}

/// The path of one page of webhooks.
pub fn webhooks_path(skip: u64) -> String {
    format!("/v3/webhooks?include_count=true&skip={skip}&limit={PAGE_LIMIT}")
}

/// The path of one page of a webhook's executions between two ISO times.
pub fn executions_path(webhook_uid: &str, from: &str, to: &str, skip: u64) -> String {
    format!(
        "/v3/webhooks/{}/executions?from={}&to={}&skip={skip}&limit={PAGE_LIMIT}",
        encode(webhook_uid),
        encode(from),
        encode(to)
    )
}

/// Percent-encodes everything but unreserved characters.
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn webhooks_are_read_leniently() {
        let a = json!({"webhooks": [
            {"uid": "w1", "name": "Purge", "destinations": [{"target_url": "https://purge.example.com/webhooks/contentstack"}],
             "disabled": true, "unhealthy": {"state": true}},
            {"uid": "w2", "destinations": [{"target_url": "https://other.example.com/hook"}]},
            {"name": "no uid"},
            {"uid": "w3", "unhealthy": true, "destinations": "x"}
        ]});
        let w = webhooks_of(&a);
        assert_eq!(w.len(), 3);
        assert!(w[0].disabled && w[0].unhealthy);
        assert_eq!(w[1].name, "w2", "the uid when there is no name");
        assert!(!w[1].disabled && !w[1].unhealthy);
        assert!(w[2].unhealthy && w[2].target_urls.is_empty());
        assert!(webhooks_of(&json!({"webhooks": "x"})).is_empty());
        assert!(webhooks_of(&json!(null)).is_empty());
    }

    #[test]
    fn a_webhook_delivers_here_by_public_url_or_by_path() {
        let w = |t: &str| Webhook {
            uid: "u".into(),
            name: "n".into(),
            target_urls: vec![t.into()],
            disabled: false,
            unhealthy: false,
        };
        assert!(delivers_here(
            &w("https://p.example.com/webhooks/contentstack"),
            None
        ));
        assert!(delivers_here(
            &w("http://127.0.0.1:8787/webhooks/contentstack/?x=1"),
            None
        ));
        assert!(!delivers_here(
            &w("https://p.example.com/webhooks/contentstack2"),
            None
        ));
        assert!(!delivers_here(&w("https://p.example.com/"), None));
        let public = Some("https://purge.example.com/");
        assert!(delivers_here(
            &w("https://purge.example.com/webhooks/contentstack"),
            public
        ));
        assert!(!delivers_here(
            &w("https://other.example.com/webhooks/contentstack"),
            public
        ));
    }

    #[test]
    fn executions_carry_their_payload_and_failure() {
        let a = json!({"webhooks": [
            {"uid": "e1", "created_at": "2026-11-30T00:00:00Z", "status": 500,
             "request_details": [{"request": {"body": {"event": "bulk_publish", "api_key": "k"}}}]},
            {"uid": "e2", "created_at": "2026-11-30T00:01:00Z", "status": null,
             "request_details": [{"request": {"body": "{\"event\":\"x\"}"}}]},
            {"uid": "e3", "status": 200, "event_data": {"event": "y"}},
            {"uid": "e4", "status": 401, "request_details": [{"request": {"body": "not json"}}]},
            {"uid": "e5", "status": 70000}
        ]});
        let e = executions_of(&a);
        assert_eq!(e.len(), 5);
        assert_eq!(e[0].payload.as_ref().unwrap()["api_key"], "k");
        assert!(e[0].failed() && e[1].failed() && !e[2].failed() && e[3].failed());
        assert_eq!(e[1].payload.as_ref().unwrap()["event"], "x");
        assert_eq!(e[2].payload.as_ref().unwrap()["event"], "y");
        assert_eq!(e[3].payload, None);
        assert_eq!(e[4].status, None, "an impossible status reads as none");
    }

    #[test]
    fn windows_overlap_and_stay_within_the_retention() {
        let now = 100 * 24 * 60 * 60 * 1000;
        assert_eq!(window(None, now), (now - FIRST_LOOKBACK_MS, now));
        assert_eq!(
            window(Some(now - 600_000), now),
            (now - 600_000 - OVERLAP_MS, now)
        );
        assert_eq!(window(Some(0), now), (now - LOG_RETENTION_MS, now));
        assert_eq!(
            window(Some(now + 10_000_000), now),
            (now, now),
            "a clock that went back"
        );
    }

    #[test]
    fn paths_encode_their_parts() {
        assert_eq!(
            executions_path("w/1", "2026-11-30T00:00:00.000Z", "2026-11-30T00:10:00.000Z", 100),
            "/v3/webhooks/w%2F1/executions?from=2026-11-30T00%3A00%3A00.000Z&to=2026-11-30T00%3A10%3A00.000Z&skip=100&limit=100"
        );
        assert_eq!(
            webhooks_path(0),
            "/v3/webhooks?include_count=true&skip=0&limit=100"
        );
    }

    #[test]
    fn the_public_answer_leaves_the_windows_out() {
        let mut s = HealthState::default();
        s.windows.insert("k".into(), 5);
        let v = s.public();
        assert_eq!(
            v,
            json!({"checked_at": null, "error": null, "webhooks": [], "recovered": []})
        );
    }
}
