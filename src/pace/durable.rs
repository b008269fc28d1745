//! The shared rate limiter: one Durable Object instance per limited resource (a Contentstack
//! stack, the Cloudflare purge API), handing out start times so that every invocation together
//! stays under the configured rate.

use serde::{Deserialize, Serialize};
use std::cell::Cell;
use worker::{
    durable_object, DurableObject, Env, Method, Request, RequestInit, Response, Result, State,
};

use super::{reserve, spacing_ms};

#[derive(Debug, Serialize, Deserialize)]
pub struct ReserveRequest {
    pub rate_per_second: f64,
    pub count: u32,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct ReserveAnswer {
    /// Milliseconds from now at which each call may start.
    pub waits_ms: Vec<u64>,
}

#[durable_object]
pub struct RateLimiter {
    next_free: Cell<f64>,
}

impl DurableObject for RateLimiter {
    fn new(_state: State, _env: Env) -> Self {
        RateLimiter {
            next_free: Cell::new(0.0),
        }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        let r: ReserveRequest = match req.json().await {
            Ok(r) => r,
            Err(e) => return Response::error(format!("bad reserve request: {e}"), 400),
        };
        let now = js_sys::Date::now();
        let (starts, next) = reserve(
            self.next_free.get(),
            now,
            spacing_ms(r.rate_per_second),
            r.count.clamp(1, 100),
        );
        self.next_free.set(next);
        Response::from_json(&ReserveAnswer {
            waits_ms: starts.iter().map(|s| (s - now).max(0.0) as u64).collect(),
        })
    }
}

/// Asks the limiter named `key` for `count` start times.
pub async fn reserve_slots(env: &Env, key: &str, rate: f64, count: u32) -> Result<Vec<u64>> {
    let stub = env.durable_object("LIMITER")?.get_by_name(key)?;
    let body = serde_json::to_string(&ReserveRequest {
        rate_per_second: rate,
        count,
    })
    .map_err(|e| worker::Error::RustError(e.to_string()))?;
    let mut init = RequestInit::new();
    init.with_method(Method::Post)
        .with_body(Some(wasm_bindgen::JsValue::from_str(&body)));
    let mut resp = stub
        .fetch_with_request(Request::new_with_init("https://limiter/reserve", &init)?)
        .await?;
    let a: ReserveAnswer = resp.json().await?;
    Ok(a.waits_ms)
}
