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

/// Kinds of subrequest, counted separately for the logs and benchmarks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sub {
    /// An outbound HTTP call (Contentstack, Cloudflare, public key).
    Fetch,
    /// A KV operation (delete, list).
    Kv,
    /// A Durable Object call (ledger, rate limiter).
    Durable,
    /// A Cache API operation.
    Cache,
}

/// Counts the subrequests of one invocation against its budget.
#[derive(Debug)]
pub struct Budget {
    limit: Cell<usize>,
    counts: [Cell<usize>; 4],
}

impl Budget {
    pub fn new(limit: usize) -> Budget {
        Budget {
            limit: Cell::new(limit),
            counts: Default::default(),
        }
    }
    /// Sets `n` of the remaining subrequests aside as a budget of its own (for work running
    /// concurrently in the same invocation); give it back with [`Budget::absorb`].
    pub fn split(&self, n: usize) -> Budget {
        let n = n.min(self.remaining());
        self.limit.set(self.limit.get() - n);
        Budget::new(n)
    }
    /// Takes back a budget made by [`Budget::split`]: its counts, and what it did not use.
    pub fn absorb(&self, child: Budget) {
        for (mine, theirs) in self.counts.iter().zip(child.counts.iter()) {
            mine.set(mine.get() + theirs.get());
        }
        self.limit.set(self.limit.get() + child.limit.get());
    }
    /// Records `n` subrequests of a kind.
    pub fn spend(&self, kind: Sub, n: usize) {
        let c = &self.counts[kind as usize];
        c.set(c.get() + n);
    }
    /// Subrequests of one kind so far.
    pub fn count(&self, kind: Sub) -> usize {
        self.counts[kind as usize].get()
    }
    pub fn used(&self) -> usize {
        self.counts.iter().map(Cell::get).sum()
    }
    pub fn remaining(&self) -> usize {
        self.limit.get().saturating_sub(self.used())
    }
    /// Whether `n` more subrequests fit.
    pub fn allows(&self, n: usize) -> bool {
        self.remaining() >= n
    }
    /// The counts as a JSON object for log lines.
    pub fn summary(&self) -> Value {
        serde_json::json!({
            "subrequests": self.used(),
            "fetch": self.count(Sub::Fetch),
            "kv": self.count(Sub::Kv),
            "durable_object": self.count(Sub::Durable),
            "cache": self.count(Sub::Cache),
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
    fn budget_counts_each_kind_against_one_limit() {
        let b = Budget::new(10);
        b.spend(Sub::Fetch, 3);
        b.spend(Sub::Kv, 4);
        b.spend(Sub::Durable, 1);
        assert_eq!(b.used(), 8);
        assert_eq!(b.remaining(), 2);
        assert!(b.allows(2));
        assert!(!b.allows(3));
        b.spend(Sub::Cache, 5);
        assert_eq!(b.remaining(), 0, "never negative");
        let s = b.summary();
        assert_eq!(s["kv"], 4);
        assert_eq!(s["cache"], 5);
        assert_eq!(s["subrequests"], 13);
    }

    #[test]
    fn a_split_budget_cannot_eat_into_the_parent_and_is_counted_back() {
        let b = Budget::new(100);
        b.spend(Sub::Fetch, 10);
        let child = b.split(60);
        assert_eq!(b.remaining(), 30, "the slice is set aside");
        child.spend(Sub::Kv, 50);
        assert!(!child.allows(11));
        b.spend(Sub::Fetch, 30);
        assert!(!b.allows(1));
        b.absorb(child);
        assert_eq!(b.used(), 90);
        assert_eq!(b.count(Sub::Kv), 50);
        assert_eq!(b.remaining(), 10, "the unused part of the slice comes back");
        let greedy = b.split(1000);
        assert_eq!(greedy.remaining(), 10, "never more than what is left");
    }
}
