//! The queue side of the Worker (docs/ARCHITECTURE.md): each accepted delivery moves through
//! `start` (job status, environments) → `collect` (item pages → plan → actions in the ledger)
//! → `drain` (execute actions until none are pending) → after `REPURGE_DELAY_SECONDS`, the
//! `second_pass`; after each pass, where a rule has `verify_sample`, the probe step (`probe`,
//! queued as `verify`) probes purged URLs. A step continues inline while the invocation's two
//! budgets allow and is otherwise handed to a new queue message, so no invocation exceeds
//! Workers' limits. Failed
//! steps are re-sent with exponential backoff (never sooner than a `Retry-After`) and a growing
//! `tries` counter; a permanent error, or the last try, sends the job to the dead-letter queue,
//! where it is marked `failed` and its environments' `on_failure` purge runs.

mod collect;
mod dead_letter;
mod drain;
pub mod dry_run;
mod effects;
pub mod job_items;
mod probe;
mod references;
pub mod run;
mod step;
mod warm;
mod windows;
