//! Ports: what a pipeline step does to the world besides reading Contentstack and talking to
//! its job's store. The run's implementation (`pipeline::effects::Live`) deletes KV keys,
//! Cache API entries and sends purge calls; the dry run's ([`crate::pipeline::dry_run`])
//! records them and purges nothing. The steps are the same code over either, so the dry run
//! is the run (docs/ARCHITECTURE.md, "The dry run").
//!
//! The job's store is the other port: a job's own Durable Object for the run, a throwaway one
//! for the dry run ([`crate::ledger::client::JobClient`] over either), so the two share the
//! store's code as well.

use std::future::Future;
use std::pin::Pin;

use crate::budget::Budget;
use crate::net::NetError;
use crate::plan::Plan;
use crate::purge::{ClaimedAction, ExecOutcome};

/// A boxed future (the steps hold the port as `&dyn Effects`, one copy of their code).
pub type Fut<'a, T> = Pin<Box<dyn Future<Output = T> + 'a>>;

/// What the steps do to KV, the Cache API and the purge API.
pub trait Effects {
    /// Executes claimed actions within `budget`: KV work first, then the Cache API, then purge
    /// calls, each as the action says (`target`, `via`, and the `call` its claim cut). An `Err` beside the outcome is a failure of the step (transient or permanent, by
    /// its type); the results gathered so far are in the outcome either way.
    fn execute<'a>(
        &'a self,
        budget: &'a Budget,
        actions: &'a [ClaimedAction],
    ) -> Fut<'a, (ExecOutcome, Option<NetError>)>;

    /// Sees each plan a step makes, before its actions are stored: `on_failure_of` names the
    /// environments whose `on_failure` purge it is (the dry run keeps them for its answer; the
    /// run has nothing to do).
    fn planned(&self, _plan: &Plan, _on_failure_of: &[String]) {}

    /// Writes one log line of the job's steps (the dry run's are not the job's: it drops them).
    fn log(&self, stage: &str, fields: serde_json::Value) {
        crate::runtime::log(stage, fields);
    }
}
