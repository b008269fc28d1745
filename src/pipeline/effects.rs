//! The run's effects ([`crate::ports::Effects`]): KV deletes and sweeps, Cache API deletes and
//! purge calls for real ([`crate::purge::exec`]), and log lines written.

use worker::Env;

use crate::budget::Budget;
use crate::config::Config;
use crate::net::NetError;
use crate::ports::{Effects, Fut};
use crate::purge::{exec, ClaimedAction, ExecOutcome};

/// The run's effects.
pub struct Live<'a> {
    pub cfg: &'a Config,
    pub env: &'a Env,
}

impl Effects for Live<'_> {
    fn execute<'a>(
        &'a self,
        budget: &'a Budget,
        actions: &'a [ClaimedAction],
    ) -> Fut<'a, (ExecOutcome, Option<NetError>)> {
        Box::pin(exec::execute(self.cfg, self.env, budget, actions))
    }
}
