//! The shared rate limiter: one Durable Object instance per limited resource (a Contentstack
//! stack, the Cloudflare purge API), handing out start times so that every invocation together
//! stays under the limit.
//!
//! Choices where the contract is silent:
//! - [`Pace::Window`] keeps its latest starts in memory only: an evicted limiter forgets them,
//!   which can let one more window's worth of calls start at once (Contentstack answers 429 with
//!   `Retry-After`, and the call is retried).
//! - [`Pace::Bucket`] keeps the bucket states in the object's storage as well (memory is a
//!   cache), so an evicted limiter never hands out a fresh burst that Cloudflare has not refilled.
//! - A request for an invalid bucket (rate or burst not positive and finite) is refused with 400.

use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use worker::{durable_object, DurableObject, Env, Request, Response, Result, State};

pub use super::Pace;
use super::{reserve_in_window, take_slots, window_of, BucketState, ACCOUNT_API_BUCKET};

/// Storage key of the bucket states (`[purge bucket, account API bucket]`).
const STATES_KEY: &str = "bucket_states";
/// Most slots one request may reserve.
const MAX_COUNT: u32 = 100;

#[derive(Debug, Serialize, Deserialize)]
pub struct ReserveRequest {
    pub pace: Pace,
    pub count: u32,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct ReserveAnswer {
    /// Milliseconds from now at which each call may start.
    pub waits_ms: Vec<u64>,
}

#[durable_object]
pub struct RateLimiter {
    state: State,
    /// The latest starts handed out under [`Pace::Window`], oldest first.
    recent: RefCell<std::collections::VecDeque<f64>>,
    /// The bucket states as last stored; `None` until read from storage.
    buckets: RefCell<Option<[BucketState; 2]>>,
}

impl RateLimiter {
    /// The bucket states: from memory, else from storage (full buckets when none is stored,
    /// empty ones when what is stored cannot be read).
    async fn load_buckets(&self) -> [BucketState; 2] {
        if let Some(b) = *self.buckets.borrow() {
            return b;
        }
        let stored = match self
            .state
            .storage()
            .get::<[BucketState; 2]>(STATES_KEY)
            .await
        {
            Ok(s) => s.unwrap_or_default(),
            Err(_) => {
                let empty = BucketState {
                    tokens: 0.0,
                    at_ms: js_sys::Date::now(),
                };
                [empty; 2]
            }
        };
        // Another request may have loaded (and used) the states while this one waited.
        *self.buckets.borrow_mut().get_or_insert(stored)
    }
}

impl DurableObject for RateLimiter {
    fn new(state: State, _env: Env) -> Self {
        RateLimiter {
            state,
            recent: RefCell::new(std::collections::VecDeque::new()),
            buckets: RefCell::new(None),
        }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        // Text through serde_json, like the ledger (no serde_wasm_bindgen copy).
        let r: ReserveRequest = match serde_json::from_str(&req.text().await.unwrap_or_default()) {
            Ok(r) => r,
            Err(e) => return Response::error(format!("bad reserve request: {e}"), 400),
        };
        let count = r.count.clamp(1, MAX_COUNT);
        let (now, starts) = match r.pace {
            Pace::Window { rate_per_second } => {
                let now = js_sys::Date::now();
                let starts = reserve_in_window(
                    &mut self.recent.borrow_mut(),
                    now,
                    window_of(rate_per_second),
                    count,
                );
                (now, starts)
            }
            Pace::Bucket { bucket } => {
                if !bucket.is_valid() {
                    return Response::error("bad reserve request: invalid bucket", 400);
                }
                let mut states = self.load_buckets().await;
                // No await between reading the cache and writing it back: requests cannot
                // interleave here.
                let now = js_sys::Date::now();
                let starts = take_slots(&mut states, &[bucket, ACCOUNT_API_BUCKET], now, count);
                *self.buckets.borrow_mut() = Some(states);
                self.state.storage().put(STATES_KEY, states).await?;
                (now, starts)
            }
        };
        Response::from_json(&ReserveAnswer {
            waits_ms: starts.iter().map(|s| (s - now).max(0.0) as u64).collect(),
        })
    }
}

/// Asks the limiter named `key` for `count` start times, as waits in ms from now.
pub async fn reserve_slots(env: &Env, key: &str, pace: &Pace, count: u32) -> Result<Vec<u64>> {
    let stub = crate::request::ObjectStub::new(env, "LIMITER", key)?;
    let body = serde_json::to_string(&ReserveRequest { pace: *pace, count })?;
    let text = stub
        .post("rate limiter", "https://limiter/reserve", &body)
        .await?;
    let a: ReserveAnswer = serde_json::from_str(&text)?;
    Ok(a.waits_ms)
}
