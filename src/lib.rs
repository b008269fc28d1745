//! contentstack-edge-purge: a Cloudflare Worker that receives Contentstack job-based
//! publish/unpublish webhooks, verifies them, asks Contentstack which entries and assets the
//! job touched, and invalidates exactly those in Workers KV and the edge cache.
//!
//! Pure modules (no `worker` types, unit-tested on the host): [`config`], [`verify`],
//! [`event`], [`template`], [`rules`], [`plan`], [`pace`], [`contentstack`] (shapes),
//! [`purge`] (actions), [`ledger`] (records). Thin shell: [`http`], [`admission`] (taking in a
//! delivery, for the webhook and the health check), [`pipeline`], [`net`],
//! [`runtime`] and the Durable Objects in [`ledger::job_object`], [`ledger::index_object`] and [`pace::durable`].
//!
//! `clippy.toml` forbids the standard sorts and `worker::RequestInit` outside [`sorted`] and
//! [`request`] (they keep the .wasm small); tests may use them.
#![cfg_attr(test, allow(clippy::disallowed_methods))]

pub mod admission;
pub mod budget;
pub mod config;
pub mod contentstack;
pub mod counts;
pub mod decimal;
pub mod error;
pub mod event;
pub mod health;
pub mod http;
pub mod ledger;
pub mod lifecycle;
pub mod net;
pub mod pace;
pub mod pipeline;
pub mod plan;
pub mod probe;
pub mod purge;
pub mod queue;
pub mod request;
pub mod rules;
pub mod runtime;
pub mod sorted;
pub mod template;
pub mod time;
pub mod verify;
pub mod watch;

use worker::{
    event, Context, Env, MessageBatch, Request, Response, Result, ScheduleContext, ScheduledEvent,
};

pub use ledger::index_object::JobIndex;
pub use ledger::job_object::Job;
pub use pace::durable::RateLimiter;

#[event(fetch)]
async fn fetch(req: Request, env: Env, _ctx: Context) -> Result<Response> {
    http::route(req, env).await
}

#[event(queue)]
async fn queue(batch: MessageBatch<serde_json::Value>, env: Env, _ctx: Context) -> Result<()> {
    pipeline::run::handle_batch(batch, &env).await
}

#[event(scheduled)]
async fn scheduled(_event: ScheduledEvent, env: Env, _ctx: ScheduleContext) {
    watch::check(&env).await;
}
