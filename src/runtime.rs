//! Binding adapters shared by every handler: configuration loaded once per isolate, the clock
//! and structured logs.

use std::cell::RefCell;
use std::rc::Rc;

use serde_json::Value;
use worker::Env;

use crate::config::{Config, ConfigError, RawConfig, NAMES};

thread_local! {
    static CONFIG: RefCell<Option<Rc<Result<Config, ConfigError>>>> = const { RefCell::new(None) };
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
    iso_of(now_ms())
}

/// ISO-8601 UTC timestamp with milliseconds of a time in ms since the epoch.
pub fn iso_of(ms: i64) -> String {
    js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(ms as f64))
        .to_iso_string()
        .as_string()
        .unwrap_or_default()
}

/// One JSON log line per stage (docs/CONTRACT.md, "Logs"). Callers never pass secrets.
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
