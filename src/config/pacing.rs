//! Pacing: what one invocation may spend (external subrequests and Cloudflare-service
//! operations, set by the Workers plan), how long one outbound try may take, and how a failed
//! pipeline step is retried.
//!
//! Choices where the contract is silent:
//! - `SUBREQUEST_BUDGET` is 10–9500; with `WORKERS_PLAN=free` it may not pass 50 (the Free plan's
//!   external subrequests), and its default is 45 so that the Worker's own bookkeeping fetches fit.
//! - `SERVICE_OPS_BUDGET` is 50–1000, default 900: room below the platform's 1,000 for the
//!   operations made after the last check.
//! - With `WORKERS_PLAN=free` an invocation is also sized for the Free plan's 10 ms of CPU time:
//!   it reads at most [`FREE_PLAN_ITEM_PAGES`] item page and makes at most
//!   [`FREE_PLAN_CPU_SERVICE_OPS`] service operations, whatever `SERVICE_OPS_BUDGET` allows (the
//!   budgets are maxima). Measured with `benches/cpu.mjs` (BENCHMARKS.md, section 11): a page of
//!   100 items costs the Worker about 10 ms, so one page is the most that can fit; the median
//!   invocation of a 10,000-item job is then at about the limit, at about five times the
//!   invocations.
use super::raw::{choice, number, RawConfig};

/// Most external subrequests one invocation may make on the Workers Free plan.
pub const FREE_PLAN_SUBREQUESTS: usize = 50;

/// Item pages one invocation reads on the Workers Free plan (its CPU time, module docs).
pub const FREE_PLAN_ITEM_PAGES: usize = 1;

/// Service operations one invocation makes at most on the Workers Free plan (its CPU time).
pub const FREE_PLAN_CPU_SERVICE_OPS: usize = 200;

/// The Workers plan, which sets the per-invocation budgets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkersPlan {
    Paid,
    Free,
}

impl WorkersPlan {
    pub fn parse(s: &str) -> Option<WorkersPlan> {
        Some(match s.trim().to_ascii_lowercase().as_str() {
            "" | "paid" => WorkersPlan::Paid,
            "free" => WorkersPlan::Free,
            _ => return None,
        })
    }

    /// The default `SUBREQUEST_BUDGET` on this plan.
    pub fn default_subrequest_budget(self) -> usize {
        match self {
            WorkersPlan::Paid => 900,
            WorkersPlan::Free => 45,
        }
    }
}

/// Queue retry policy (documented in the README).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Attempts per pipeline step before the job goes to the dead-letter queue.
    pub max_tries: u32,
    /// First retry delay; doubles per attempt.
    pub base_seconds: u32,
}

/// Per-invocation budgets, the outbound timeout and the retry policy.
#[derive(Debug, Clone)]
pub struct Pacing {
    pub workers_plan: WorkersPlan,
    /// External fetches one invocation may make.
    pub subrequest_budget: usize,
    /// Cloudflare-service operations (KV, Durable Object, Cache API, Queue) per invocation.
    pub service_ops_budget: usize,
    /// Time one outbound HTTP try may take.
    pub http_timeout_ms: u64,
    pub retry: RetryPolicy,
}

impl Pacing {
    /// What one invocation may spend: (external fetches, service operations). On the Free plan
    /// the operations are capped for its CPU time (module docs).
    pub fn invocation_budgets(&self) -> (usize, usize) {
        match self.workers_plan {
            WorkersPlan::Paid => (self.subrequest_budget, self.service_ops_budget),
            WorkersPlan::Free => (
                self.subrequest_budget,
                self.service_ops_budget.min(FREE_PLAN_CPU_SERVICE_OPS),
            ),
        }
    }

    /// Most item pages one invocation reads, if the plan limits them (module docs).
    pub fn item_pages_per_invocation(&self) -> Option<usize> {
        match self.workers_plan {
            WorkersPlan::Paid => None,
            WorkersPlan::Free => Some(FREE_PLAN_ITEM_PAGES),
        }
    }

    /// Reads the budgets, timeout and retry settings, recording every problem in `errors`.
    pub(super) fn parse(raw: &RawConfig, errors: &mut Vec<String>) -> Pacing {
        let retry = RetryPolicy {
            max_tries: number(raw, "QUEUE_MAX_ATTEMPTS", 5u32, (1, 100), errors),
            base_seconds: number(raw, "RETRY_BASE_SECONDS", 10u32, (0, 3600), errors),
        };
        let workers_plan = choice(
            raw,
            "WORKERS_PLAN",
            WorkersPlan::Paid,
            WorkersPlan::parse,
            "paid, free",
            errors,
        );
        let subrequest_budget = number(
            raw,
            "SUBREQUEST_BUDGET",
            workers_plan.default_subrequest_budget(),
            (10, 9500),
            errors,
        );
        if workers_plan == WorkersPlan::Free && subrequest_budget > FREE_PLAN_SUBREQUESTS {
            errors.push(format!(
                "SUBREQUEST_BUDGET must be at most {FREE_PLAN_SUBREQUESTS} with WORKERS_PLAN=free (the Free plan allows {FREE_PLAN_SUBREQUESTS} external subrequests)"
            ));
        }
        Pacing {
            workers_plan,
            subrequest_budget,
            service_ops_budget: number(raw, "SERVICE_OPS_BUDGET", 900usize, (50, 1000), errors),
            http_timeout_ms: number(raw, "HTTP_TIMEOUT_MS", 15_000u64, (100, 120_000), errors),
            retry,
        }
    }
}
