//! The per-invocation budgets: external fetches (`SUBREQUEST_BUDGET`) and Cloudflare-service
//! operations (`SERVICE_OPS_BUDGET`), counted by kind for the `invocation` log line. Pure.

use std::cell::Cell;

use serde_json::Value;

/// What one unit of an invocation's spending is: an external fetch or an operation on one
/// Cloudflare service, counted by kind against the budgets for the logs and benchmarks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spend {
    /// An outbound HTTP call (Contentstack, Cloudflare, public key): an external fetch.
    Fetch,
    /// A KV operation (delete, list page).
    Kv,
    /// A ledger Durable Object call.
    Durable,
    /// A rate-limiter Durable Object call (counted with the ledger's in `durable_object`).
    Limiter,
    /// A Cache API operation.
    Cache,
    /// A queue send.
    Queue,
}

impl Spend {
    /// Whether this is an operation on a Cloudflare service (KV, Durable Object, Cache API,
    /// Queue) rather than an external fetch. The two are budgeted separately.
    #[cfg(test)]
    pub fn is_service_op(self) -> bool {
        !matches!(self, Spend::Fetch)
    }
}

/// Fewest fetches and service operations one message's share of an invocation's budget holds:
/// enough for a step to make progress past its reserve (a page, a round of purges).
pub const MIN_SHARE: usize = 90;

/// How an invocation's budget serves a batch of `messages` run at once: how many of them run
/// now, and each one's share (fetches, service operations). Each share holds at least
/// [`MIN_SHARE`] of both (or the whole budget, for one message); the messages left over are sent
/// back to the queue, one queue operation each, taken from the budget before it is shared.
pub fn share_batch(
    fetch_limit: usize,
    ops_limit: usize,
    messages: usize,
) -> (usize, (usize, usize)) {
    if messages <= 1 {
        return (messages, (fetch_limit, ops_limit));
    }
    let fit = |n: usize| {
        let resend = messages - n;
        n == 1
            || (fetch_limit / n >= MIN_SHARE && ops_limit.saturating_sub(resend) / n >= MIN_SHARE)
    };
    let n = (1..=messages).rev().find(|&n| fit(n)).unwrap_or(1);
    let resend = messages - n;
    (n, (fetch_limit / n, ops_limit.saturating_sub(resend) / n))
}

/// Counts one invocation's work against its two budgets: external fetches
/// (`SUBREQUEST_BUDGET`) and Cloudflare-service operations (`SERVICE_OPS_BUDGET`). Work is
/// checked with [`Budget::allows`] before it starts and recorded with [`Budget::spend`].
#[derive(Debug)]
pub struct Budget {
    fetch_limit: Cell<usize>,
    ops_limit: Cell<usize>,
    counts: [Cell<usize>; 6],
    /// Work running alongside ran out of budget while some was pending: waits that may give
    /// way should, so a fresh invocation (a fresh budget) takes over ([`Budget::hand_on`]).
    hand_on: Cell<bool>,
}

impl Budget {
    pub fn new(fetch_limit: usize, ops_limit: usize) -> Budget {
        Budget {
            fetch_limit: Cell::new(fetch_limit),
            ops_limit: Cell::new(ops_limit),
            counts: Default::default(),
            hand_on: Cell::new(false),
        }
    }
    /// Asks the invocation to hand on: a paced wait that may give way returns instead of
    /// holding the invocation (`net`, [`crate::net::NetError::HandOn`]).
    pub fn hand_on(&self) {
        self.hand_on.set(true);
    }
    /// Whether [`Budget::hand_on`] was asked.
    pub fn hands_on(&self) -> bool {
        self.hand_on.get()
    }
    /// Sets part of what remains aside as a budget of its own (for work running concurrently
    /// in the same invocation); give it back with [`Budget::absorb`].
    pub fn split(&self, fetches: usize, ops: usize) -> Budget {
        let f = fetches.min(self.remaining_fetches());
        let o = ops.min(self.remaining_ops());
        self.fetch_limit.set(self.fetch_limit.get() - f);
        self.ops_limit.set(self.ops_limit.get() - o);
        Budget::new(f, o)
    }
    /// Takes back a budget made by [`Budget::split`]: its counts, and what it did not use.
    pub fn absorb(&self, child: Budget) {
        for (mine, theirs) in self.counts.iter().zip(child.counts.iter()) {
            mine.set(mine.get() + theirs.get());
        }
        self.fetch_limit
            .set(self.fetch_limit.get() + child.fetch_limit.get());
        self.ops_limit
            .set(self.ops_limit.get() + child.ops_limit.get());
    }
    /// Records `n` operations of a kind.
    pub fn spend(&self, kind: Spend, n: usize) {
        let c = &self.counts[kind as usize];
        c.set(c.get() + n);
    }
    /// Operations of one kind so far.
    pub fn count(&self, kind: Spend) -> usize {
        self.counts[kind as usize].get()
    }
    /// External fetches so far.
    pub fn fetches(&self) -> usize {
        self.count(Spend::Fetch)
    }
    /// Cloudflare-service operations so far.
    pub fn ops(&self) -> usize {
        self.used() - self.fetches()
    }
    /// Everything so far (both budgets together).
    pub fn used(&self) -> usize {
        self.counts.iter().map(Cell::get).sum()
    }
    pub fn remaining_fetches(&self) -> usize {
        self.fetch_limit.get().saturating_sub(self.fetches())
    }
    pub fn remaining_ops(&self) -> usize {
        self.ops_limit.get().saturating_sub(self.ops())
    }
    /// Whether `fetches` more external fetches and `ops` more service operations both fit.
    pub fn allows(&self, fetches: usize, ops: usize) -> bool {
        self.remaining_fetches() >= fetches && self.remaining_ops() >= ops
    }
    /// The counts as a JSON object for log lines.
    pub fn summary(&self) -> Value {
        serde_json::json!({
            "subrequests": self.used(),
            "fetch": self.fetches(),
            "service_ops": self.ops(),
            "kv": self.count(Spend::Kv),
            "budget": [self.fetch_limit.get(), self.ops_limit.get()],
            "durable_object": self.count(Spend::Durable) + self.count(Spend::Limiter),
            "limiter": self.count(Spend::Limiter),
            "cache": self.count(Spend::Cache),
            "queue": self.count(Spend::Queue),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_shares_the_budget_while_each_share_is_workable() {
        assert_eq!(share_batch(900, 900, 0), (0, (900, 900)));
        assert_eq!(share_batch(900, 900, 1), (1, (900, 900)));
        assert_eq!(share_batch(900, 900, 4), (4, (225, 225)));
        assert_eq!(share_batch(900, 900, 10), (10, (90, 90)));
        // Beyond ten, the rest go back to the queue (their sends come off the operations).
        assert_eq!(share_batch(900, 900, 12), (9, (100, 99)));
        // The Free plan's 50 fetches: one message at a time, with the whole budget less the
        // sends of the others.
        assert_eq!(share_batch(50, 1000, 3), (1, (50, 998)));
        for n in 1..200 {
            let (run, (f, o)) = share_batch(900, 1000, n);
            assert!(run >= 1 && run <= n);
            assert!(run * f <= 900 && run * o + (n - run) <= 1000, "{n}");
        }
    }

    #[test]
    fn fetches_and_service_operations_have_separate_budgets() {
        let b = Budget::new(10, 5);
        b.spend(Spend::Fetch, 3);
        b.spend(Spend::Kv, 4);
        assert_eq!(b.remaining_fetches(), 7);
        assert_eq!(b.remaining_ops(), 1);
        assert!(b.allows(7, 1));
        assert!(!b.allows(0, 2), "service ops are used up first");
        assert!(!b.allows(8, 0));
        b.spend(Spend::Durable, 1);
        b.spend(Spend::Queue, 1);
        assert_eq!(b.remaining_ops(), 0, "never negative");
        let s = b.summary();
        assert_eq!(s["fetch"], 3);
        assert_eq!(s["service_ops"], 6);
        assert_eq!(s["queue"], 1);
        assert_eq!(s["subrequests"], 9);
        assert!(Spend::Cache.is_service_op() && !Spend::Fetch.is_service_op());
    }

    #[test]
    fn a_split_budget_cannot_eat_into_the_parent_and_is_counted_back() {
        let b = Budget::new(100, 50);
        b.spend(Spend::Fetch, 10);
        let child = b.split(60, 20);
        assert_eq!(b.remaining_fetches(), 30, "the slice is set aside");
        assert_eq!(b.remaining_ops(), 30);
        child.spend(Spend::Kv, 15);
        assert!(!child.allows(0, 6));
        b.spend(Spend::Fetch, 30);
        assert!(!b.allows(1, 0));
        b.absorb(child);
        assert_eq!(b.used(), 55);
        assert_eq!(b.count(Spend::Kv), 15);
        assert_eq!(
            b.remaining_fetches(),
            60,
            "the unused part of the slice comes back"
        );
        assert_eq!(b.remaining_ops(), 35);
        let greedy = b.split(1000, 1000);
        assert_eq!(
            greedy.remaining_fetches(),
            60,
            "never more than what is left"
        );
    }

    #[test]
    fn hand_on_is_asked_of_the_invocation_not_of_its_slices() {
        let b = Budget::new(50, 900);
        let slice = b.split(20, 400);
        assert!(!b.hands_on() && !slice.hands_on());
        b.hand_on();
        assert!(b.hands_on());
        assert!(
            !slice.hands_on(),
            "a slice's own waits (purge calls) never give way"
        );
        b.absorb(slice);
        assert!(b.hands_on());
    }
}
