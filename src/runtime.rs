//! Binding adapters shared by every handler: configuration loaded once per isolate, the
//! public-key cache, clock, structured logs and the per-invocation subrequest budget.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use serde_json::Value;
use worker::Env;

use crate::config::{Config, ConfigError, RawConfig, NAMES};
use crate::verify::PublicKey;

thread_local! {
    static CONFIG: RefCell<Option<Rc<Result<Config, ConfigError>>>> = const { RefCell::new(None) };
    static PUBLIC_KEY: RefCell<Option<(String, Rc<PublicKey>)>> = const { RefCell::new(None) };
}

/// Reads every configuration name from the environment as JSON values.
pub fn raw_config(env: &Env) -> RawConfig {
    let mut raw = RawConfig::new();
    let this: &wasm_bindgen::JsValue = env.as_ref();
    for name in NAMES {
        let Ok(v) = js_sys::Reflect::get(this, &wasm_bindgen::JsValue::from_str(name)) else {
            continue;
        };
        let value = if let Some(s) = v.as_string() {
            Value::String(s)
        } else if let Some(b) = v.as_bool() {
            Value::Bool(b)
        } else if let Some(n) = v.as_f64() {
            serde_json::Number::from_f64(n)
                .map(Value::Number)
                .unwrap_or(Value::Null)
        } else if v.is_object() {
            js_sys::JSON::stringify(&v)
                .ok()
                .and_then(|s| s.as_string())
                .and_then(|s| serde_json::from_str(&s).ok())
                .unwrap_or(Value::Null)
        } else {
            continue;
        };
        raw.insert((*name).to_string(), value);
    }
    raw
}

/// The configuration, parsed once per isolate. A configuration error is logged once.
pub fn config(env: &Env) -> Rc<Result<Config, ConfigError>> {
    CONFIG.with(|c| {
        if let Some(cfg) = c.borrow().as_ref() {
            return cfg.clone();
        }
        let parsed = Rc::new(Config::parse(&raw_config(env)));
        if let Err(e) = parsed.as_ref() {
            log("misconfigured", serde_json::json!({"errors": e.0}));
        }
        *c.borrow_mut() = Some(parsed.clone());
        parsed
    })
}

/// Milliseconds since the epoch.
pub fn now_ms() -> i64 {
    js_sys::Date::now() as i64
}

/// ISO-8601 UTC timestamp with milliseconds.
pub fn now_iso() -> String {
    js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(now_ms() as f64))
        .to_iso_string()
        .as_string()
        .unwrap_or_default()
}

/// One JSON log line per stage (SPEC §8). Callers never pass secrets.
pub fn log(stage: &str, fields: Value) {
    let mut obj = match fields {
        Value::Object(m) => m,
        other => {
            let mut m = serde_json::Map::new();
            m.insert("detail".into(), other);
            m
        }
    };
    obj.insert("stage".into(), Value::String(stage.to_string()));
    let line = Value::Object(obj).to_string();
    worker::console_log!("{}", line);
}

/// Kinds of work an invocation does, counted separately for the logs and benchmarks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sub {
    /// An outbound HTTP call (Contentstack, Cloudflare, public key): an external fetch.
    Fetch,
    /// A KV operation (delete, list page).
    Kv,
    /// A Durable Object call (ledger, rate limiter).
    Durable,
    /// A Cache API operation.
    Cache,
    /// A queue send.
    Queue,
}

impl Sub {
    /// Whether this is an operation on a Cloudflare service (KV, Durable Object, Cache API,
    /// Queue) rather than an external fetch. The two are budgeted separately.
    pub fn is_service_op(self) -> bool {
        !matches!(self, Sub::Fetch)
    }
}

/// Counts one invocation's work against its two budgets: external fetches
/// (`SUBREQUEST_BUDGET`) and Cloudflare-service operations (`SERVICE_OPS_BUDGET`). Work is
/// checked with [`Budget::allows`] before it starts and recorded with [`Budget::spend`].
#[derive(Debug)]
pub struct Budget {
    fetch_limit: Cell<usize>,
    ops_limit: Cell<usize>,
    counts: [Cell<usize>; 5],
}

impl Budget {
    pub fn new(fetch_limit: usize, ops_limit: usize) -> Budget {
        Budget {
            fetch_limit: Cell::new(fetch_limit),
            ops_limit: Cell::new(ops_limit),
            counts: Default::default(),
        }
    }
    /// Sets part of what remains aside as a budget of its own (for work running concurrently
    /// in the same invocation); give it back with [`Budget::absorb`].
    pub fn split(&self, fetches: usize, ops: usize) -> Budget {
        let f = fetches.min(self.remaining_fetches());
        let o = ops.min(self.remaining_ops());
        self.fetch_limit.set(self.fetch_limit.get() - f);
        self.ops_limit.set(self.ops_limit.get() - o);
        Budget::new(f, o)
    }
    /// Takes back a budget made by [`Budget::split`]: its counts, and what it did not use.
    pub fn absorb(&self, child: Budget) {
        for (mine, theirs) in self.counts.iter().zip(child.counts.iter()) {
            mine.set(mine.get() + theirs.get());
        }
        self.fetch_limit
            .set(self.fetch_limit.get() + child.fetch_limit.get());
        self.ops_limit
            .set(self.ops_limit.get() + child.ops_limit.get());
    }
    /// Records `n` operations of a kind.
    pub fn spend(&self, kind: Sub, n: usize) {
        let c = &self.counts[kind as usize];
        c.set(c.get() + n);
    }
    /// Operations of one kind so far.
    pub fn count(&self, kind: Sub) -> usize {
        self.counts[kind as usize].get()
    }
    /// External fetches so far.
    pub fn fetches(&self) -> usize {
        self.count(Sub::Fetch)
    }
    /// Cloudflare-service operations so far.
    pub fn ops(&self) -> usize {
        self.used() - self.fetches()
    }
    /// Everything so far (both budgets together).
    pub fn used(&self) -> usize {
        self.counts.iter().map(Cell::get).sum()
    }
    pub fn remaining_fetches(&self) -> usize {
        self.fetch_limit.get().saturating_sub(self.fetches())
    }
    pub fn remaining_ops(&self) -> usize {
        self.ops_limit.get().saturating_sub(self.ops())
    }
    /// Whether `fetches` more external fetches and `ops` more service operations both fit.
    pub fn allows(&self, fetches: usize, ops: usize) -> bool {
        self.remaining_fetches() >= fetches && self.remaining_ops() >= ops
    }
    /// The counts as a JSON object for log lines.
    pub fn summary(&self) -> Value {
        serde_json::json!({
            "subrequests": self.used(),
            "fetch": self.fetches(),
            "service_ops": self.ops(),
            "kv": self.count(Sub::Kv),
            "durable_object": self.count(Sub::Durable),
            "cache": self.count(Sub::Cache),
            "queue": self.count(Sub::Queue),
        })
    }
}

/// The RSA public key: configured, or fetched from the app host once per isolate.
pub async fn public_key(cfg: &Config, budget: &Budget) -> Result<Rc<PublicKey>, String> {
    let url = format!("{}/.well-known/public-keys.json", cfg.contentstack_app_base);
    if let Some(k) = PUBLIC_KEY.with(|p| {
        p.borrow()
            .as_ref()
            .filter(|(u, _)| *u == url)
            .map(|(_, k)| k.clone())
    }) {
        return Ok(k);
    }
    let call = crate::net::Call {
        what: "public key",
        method: worker::Method::Get,
        url: url.clone(),
        headers: vec![("accept", "application/json".to_string())],
        body: None,
        timeout_ms: cfg.http_timeout_ms.min(10_000),
        rate_limited: None,
    };
    let answer = crate::net::send(&call, None, budget)
        .await
        .map_err(|e| e.to_string())?;
    if answer.status != 200 {
        return Err(format!("public key host answered {}", answer.status));
    }
    let bytes = answer.body;
    let key = Rc::new(PublicKey::from_well_known_json(&bytes).map_err(|e| e.to_string())?);
    PUBLIC_KEY.with(|p| *p.borrow_mut() = Some((url, key.clone())));
    log("public_key_fetched", serde_json::json!({}));
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fetches_and_service_operations_have_separate_budgets() {
        let b = Budget::new(10, 5);
        b.spend(Sub::Fetch, 3);
        b.spend(Sub::Kv, 4);
        assert_eq!(b.remaining_fetches(), 7);
        assert_eq!(b.remaining_ops(), 1);
        assert!(b.allows(7, 1));
        assert!(!b.allows(0, 2), "service ops are used up first");
        assert!(!b.allows(8, 0));
        b.spend(Sub::Durable, 1);
        b.spend(Sub::Queue, 1);
        assert_eq!(b.remaining_ops(), 0, "never negative");
        let s = b.summary();
        assert_eq!(s["fetch"], 3);
        assert_eq!(s["service_ops"], 6);
        assert_eq!(s["queue"], 1);
        assert_eq!(s["subrequests"], 9);
        assert!(Sub::Cache.is_service_op() && !Sub::Fetch.is_service_op());
    }

    #[test]
    fn a_split_budget_cannot_eat_into_the_parent_and_is_counted_back() {
        let b = Budget::new(100, 50);
        b.spend(Sub::Fetch, 10);
        let child = b.split(60, 20);
        assert_eq!(b.remaining_fetches(), 30, "the slice is set aside");
        assert_eq!(b.remaining_ops(), 30);
        child.spend(Sub::Kv, 15);
        assert!(!child.allows(0, 6));
        b.spend(Sub::Fetch, 30);
        assert!(!b.allows(1, 0));
        b.absorb(child);
        assert_eq!(b.used(), 55);
        assert_eq!(b.count(Sub::Kv), 15);
        assert_eq!(
            b.remaining_fetches(),
            60,
            "the unused part of the slice comes back"
        );
        assert_eq!(b.remaining_ops(), 35);
        let greedy = b.split(1000, 1000);
        assert_eq!(
            greedy.remaining_fetches(),
            60,
            "never more than what is left"
        );
    }
}
