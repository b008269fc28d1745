//! contentstack-edge-purge: a Cloudflare Worker that receives Contentstack job-based
//! publish/unpublish webhooks, verifies them, asks Contentstack which entries and assets the
//! job touched, and invalidates exactly those in Workers KV and the edge cache.
//!
//! The modules come in three layers (docs/ARCHITECTURE.md), declared below in that order:
//!
//! - **Pure core** (no `worker` types, unit-tested on the host): [`config`], [`signature`]
//!   (webhook signature checks), [`event`], [`template`], [`rules`], [`plan`], [`probe`]
//!   (verified invalidation), [`webhook_health`], [`lifecycle`], [`budget`], [`counts`],
//!   [`error`], [`decimal`], [`sorted`], [`time`]; and four whose platform half sits in one
//!   submodule: [`contentstack`] (shapes; `client`), [`purge`] (actions; `exec`), [`pace`]
//!   (arithmetic; the rate limiter in [`pace::durable`]) and [`ledger`] (records; the client
//!   and the Durable Objects in [`ledger::job_object`] and [`ledger::index_object`]).
//! - **Platform adapters**: [`net`] (outbound HTTP), [`request`], [`queue`] (messages and
//!   sends) and [`runtime`] (bindings, clock, logs).
//! - **Entry points** (thin shell): [`http`] (`fetch`), [`admission`] (taking in a delivery,
//!   for the webhook and the health check), [`pipeline`] (`queue`) and [`cron`] (`scheduled`:
//!   the webhook health check).
//!
//! `clippy.toml` forbids the standard sorts and `worker::RequestInit` outside [`sorted`] and
//! [`request`] (they keep the .wasm small); tests may use them.
#![cfg_attr(test, allow(clippy::disallowed_methods))]

// Pure core: no `worker` types.
pub mod budget;
pub mod config;
pub mod counts;
pub mod decimal;
pub mod error;
pub mod event;
pub mod lifecycle;
pub mod plan;
pub mod probe;
pub mod rules;
pub mod signature;
pub mod sorted;
pub mod template;
pub mod text;
pub mod time;
pub mod webhook_health;
// Pure core with a platform half in one submodule (`client`, `exec`, `durable`, the ledger's
// client and Durable Objects).
pub mod contentstack;
pub mod ledger;
pub mod pace;
pub mod purge;

// Platform adapters: outbound HTTP, requests, queue sends, bindings and logs.
pub mod net;
pub mod ports;
pub mod queue;
pub mod request;
pub mod runtime;

// Entry points: `fetch` (http, admission), `queue` (pipeline), `scheduled` (cron).
pub mod admission;
pub mod cron;
pub mod http;
pub mod pipeline;

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
    cron::check(&env).await;
}
