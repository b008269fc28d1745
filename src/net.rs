//! Outbound HTTP for both APIs: one call with a timeout, and the retry loop that honours
//! `Retry-After` and the shared rate limiter. Every call is counted against the budget.

use futures_util::future::{select, Either};
use std::time::Duration;
use worker::{Delay, Env, Headers, Method};

use crate::budget::{Budget, Spend};
use crate::pace::{self, durable::reserve_slots, Pace};

/// An answer that arrived.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub retry_after_ms: Option<u64>,
    pub body: Vec<u8>,
    /// `CF-Cache-Status` and `Age`, read by verification probes.
    pub cache_status: Option<String>,
    pub age: Option<String>,
}

/// Why a call did not produce a usable answer. Whether it is worth trying again later is a
/// property of the variant ([`NetError::is_transient`]), never of its message.
#[derive(Debug, Clone, thiserror::Error)]
pub enum NetError {
    /// Retries exhausted on 429/5xx/timeouts/network errors, or a `Retry-After` longer than an
    /// invocation should wait (`retry_after_ms`): the step should be retried later, not sooner
    /// than `retry_after_ms`.
    #[error("{what}: gave up after {tries} tries (last: {last})")]
    Exhausted {
        what: String,
        tries: u32,
        last: String,
        retry_after_ms: Option<u64>,
    },
    /// A definitive answer that retrying cannot fix (4xx other than 429).
    #[error("{what}: HTTP {status}: {detail}")]
    Rejected {
        what: String,
        status: u16,
        detail: String,
    },
    /// The shared rate limiter's next start is further away than an invocation should wait:
    /// continue later. Not a failure.
    #[error("rate limited: the next start is {wait_ms} ms away")]
    Paced { wait_ms: u64 },
    /// The invocation's budget is used up: hand on to a new invocation.
    #[error("{what}: the invocation's budget is used up")]
    Budget { what: String },
    /// A paced wait gave way ([`Pacing::gives_way`]): the invocation was asked to hand on
    /// ([`Budget::hand_on`]) and the call's start was still far. Not a failure: the start slot
    /// stays with the isolate for the next call.
    #[error("handing on to a fresh invocation before a paced start")]
    HandOn,
    /// A configuration problem found while calling (no token for the stack, …): permanent.
    #[error("{0}")]
    Config(String),
    /// Anything else (the rate limiter unavailable, an unreadable answer): transient.
    #[error("{0}")]
    Other(String),
}

impl NetError {
    /// Whether trying again later may succeed. Refusals of the credentials (401, 403), of the
    /// request (400, 412, 422, …) and configuration problems are permanent; 404 and 408 are not
    /// (a job may not be readable yet).
    pub fn is_transient(&self) -> bool {
        match self {
            NetError::Exhausted { .. }
            | NetError::Budget { .. }
            | NetError::Paced { .. }
            | NetError::HandOn
            | NetError::Other(_) => true,
            NetError::Rejected { status, .. } => matches!(status, 404 | 408),
            NetError::Config(_) => false,
        }
    }

    /// How long the server asked to wait, when that was too long to wait inline.
    pub fn retry_after_ms(&self) -> Option<u64> {
        match self {
            NetError::Exhausted { retry_after_ms, .. } => *retry_after_ms,
            NetError::Paced { wait_ms } => Some(*wait_ms),
            _ => None,
        }
    }
}

/// A request description that can be sent more than once.
pub struct Call<'a> {
    pub what: &'a str,
    pub method: Method,
    pub url: String,
    pub headers: Vec<(&'a str, String)>,
    pub body: Option<String>,
    /// How long one try may take before it counts as failed (and is retried).
    pub timeout_ms: u64,
    /// Recognises a rate-limit answer that is not a 429 (Cloudflare's purge code 1134).
    pub rate_limited: Option<fn(u16, &[u8]) -> bool>,
}

async fn send_once(call: &Call<'_>, budget: &Budget) -> Result<Answer, String> {
    let headers = Headers::new();
    for (k, v) in &call.headers {
        headers.set(k, v).map_err(|e| e.to_string())?;
    }
    budget.spend(Spend::Fetch, 1);
    let fetch = Box::pin(async move {
        let answer = crate::request::fetch(
            &call.url,
            call.method.clone(),
            Some(&headers),
            call.body.as_deref(),
            &["retry-after", "cf-cache-status", "age"],
        )
        .await
        .map_err(|e| e.to_string())?;
        let mut headers = answer.headers.into_iter();
        let mut next = || headers.next().flatten();
        let (retry_after, cache_status, age) = (next(), next(), next());
        Ok::<Answer, String>(Answer {
            status: answer.status,
            retry_after_ms: retry_after.and_then(|v| pace::parse_retry_after(&v)),
            body: answer.body,
            cache_status,
            age,
        })
    });
    let timeout_ms = call.timeout_ms;
    let timeout = Box::pin(Delay::from(Duration::from_millis(timeout_ms)));
    match select(fetch, timeout).await {
        Either::Left((r, _)) => r,
        Either::Right(_) => Err(format!("timed out after {timeout_ms} ms")),
    }
}

/// One GET of a page as a visitor would request it, no retries: what a verification probe
/// sees (docs/CONTRACT.md, "Verified invalidation").
pub async fn probe(url: &str, timeout_ms: u64, budget: &Budget) -> Result<Answer, String> {
    let call = Call {
        what: "probe",
        method: Method::Get,
        url: url.to_string(),
        headers: Vec::new(),
        body: None,
        timeout_ms,
        rate_limited: None,
    };
    send_once(&call, budget).await
}

/// One warm request (docs/CONTRACT.md, "Warm after the purge"): a GET as a browser would send
/// it, its body read to the end (so the edge stores it), no retries.
pub async fn warm(url: &str, timeout_ms: u64, budget: &Budget) -> Result<Answer, String> {
    let call = Call {
        what: "warm",
        method: Method::Get,
        url: url.to_string(),
        headers: vec![
            (
                "user-agent",
                concat!(
                    "contentstack-edge-purge/",
                    env!("CARGO_PKG_VERSION"),
                    " (warm)"
                )
                .into(),
            ),
            ("accept-encoding", "gzip, br".into()),
        ],
        body: None,
        timeout_ms,
        rate_limited: None,
    };
    send_once(&call, budget).await
}

/// Rate limit to apply before each start: limiter name and how it paces.
pub struct Pacing<'a> {
    pub env: &'a Env,
    pub key: String,
    pub pace: Pace,
    /// Starts still to come in this invocation (at least 1): a token bucket reserves up to
    /// [`SLOTS_PER_RESERVE`] of them per limiter call, never more than will be used.
    pub upcoming: std::cell::Cell<u32>,
    /// A wait for a start gives way when the invocation is asked to hand on and the start is
    /// more than [`GIVE_WAY_MS`] away ([`NetError::HandOn`]).
    pub gives_way: bool,
}

/// A paced wait that may give way does so only for a start at least this far off: a nearer
/// one is cheaper to wait for than a fresh invocation is to start.
const GIVE_WAY_MS: f64 = 150.0;
/// How often a wait that may give way looks whether it should.
const GIVE_WAY_POLL_MS: f64 = 20.0;

/// Token-bucket slots reserved per limiter call: one Durable Object round trip serves several
/// calls, and never more than the invocation's upcoming starts, so few tokens go unused.
const SLOTS_PER_RESERVE: u32 = 32;
/// Most window slots reserved per limiter call (see [`Slots::next_count`]).
const WINDOW_SLOTS_PER_RESERVE: u32 = 10;
/// A reserved window slot used later than this is dropped (the window's 10 % margin covers
/// calls up to 100 ms late; half of it is left for the network).
const SLOT_STALE_MS: f64 = 50.0;
/// A token-bucket slot may be used this late: the bucket's margin covers the delay.
const BUCKET_SLOT_STALE_MS: f64 = 150.0;

/// Slots reserved for one limiter and not used yet, per isolate.
#[derive(Default)]
struct Slots {
    starts: std::collections::VecDeque<f64>,
    /// Window slots to reserve next time. A window slot is only good for a call starting at
    /// its time, and slots reserved together are spaced for calls made one after another, so
    /// the count is one while the window has room (a small job's calls start at once) and
    /// doubles (up to [`WINDOW_SLOTS_PER_RESERVE`]) while the caller waits for the window and
    /// uses every slot in time; a slot that went stale halves it. Pages read at the
    /// rate (a long job's) then cost one limiter call per several pages.
    next_count: u32,
}

thread_local! {
    static SLOTS: std::cell::RefCell<std::collections::HashMap<String, Slots>> =
        std::cell::RefCell::new(std::collections::HashMap::new());
}

/// Runs `f` on this isolate's slots for the limiter named `key`.
fn with_slots<R>(key: &str, f: impl FnOnce(&mut Slots) -> R) -> R {
    SLOTS.with(|s| f(s.borrow_mut().entry(key.to_string()).or_default()))
}

/// Times a start may be given up because the wait for it ended too late (see [`wait_slot`]).
const LATE_TRIES: usize = 3;

/// Waits for a start slot from the shared limiter, reserving several at a time. A wait that
/// ends later than the slot allows (timers fire late in a busy isolate) gives that start up
/// and takes another, a few times at most, so a call never leaves much later than planned.
pub async fn wait_slot(p: &Pacing<'_>, budget: &Budget) -> Result<(), NetError> {
    let stale_ms = stale_ms(&p.pace);
    for _ in 0..LATE_TRIES {
        let slot = take_slot(p, budget, stale_ms).await?;
        let late = crate::runtime::now_ms() as f64 - slot;
        if late <= stale_ms || !budget.allows(0, 1) {
            return Ok(());
        }
    }
    Ok(())
}

/// How late a reserved start may still be used.
fn stale_ms(pace: &Pace) -> f64 {
    match pace {
        Pace::Window { .. } => SLOT_STALE_MS,
        Pace::Bucket { .. } => BUCKET_SLOT_STALE_MS.min(crate::pace::JITTER_MS),
    }
}

/// Reserves `count` starts from the shared limiter (one Durable Object call): the time of each
/// (ms since the epoch), earliest first, and whether the first may start at once.
async fn reserve(
    p: &Pacing<'_>,
    budget: &Budget,
    count: u32,
) -> Result<(Vec<f64>, bool), NetError> {
    budget.spend(Spend::Limiter, 1);
    let waits = reserve_slots(p.env, &p.key, &p.pace, count)
        .await
        .map_err(|e| NetError::Other(format!("rate limiter unavailable: {e}")))?;
    let base = crate::runtime::now_ms() as f64;
    let at_once = waits.first().is_none_or(|w| *w == 0);
    Ok((
        waits.into_iter().map(|w| base + w as f64).collect(),
        at_once,
    ))
}

/// How many of `n` calls may start together now: makes sure `n` token-bucket start slots are
/// cached for `p` in this isolate (reserving those missing in one limiter call, never fewer than
/// `p.upcoming`, at most [`SLOTS_PER_RESERVE`]), and answers how many of them are due within
/// [`TOGETHER_MS`] (at least 1). Concurrent callers would otherwise all find the cache empty and
/// over-reserve; and a call whose slot is far off would be sent back to the queue with its token
/// spent, so only calls whose slots are due go together. A window limiter answers 1.
pub async fn ready_together(p: &Pacing<'_>, budget: &Budget, n: u32) -> Result<u32, NetError> {
    if !matches!(p.pace, Pace::Bucket { .. }) || n <= 1 {
        return Ok(1);
    }
    let stale_ms = stale_ms(&p.pace);
    let now = crate::runtime::now_ms() as f64;
    let have = with_slots(&p.key, |q| {
        q.starts.retain(|t| t + stale_ms >= now);
        q.starts.len() as u32
    });
    if have < n {
        let count = (p.upcoming.get().max(n) - have).clamp(1, SLOTS_PER_RESERVE);
        let (slots, _) = reserve(p, budget, count).await?;
        with_slots(&p.key, |q| q.starts.extend(slots));
    }
    let due = crate::runtime::now_ms() as f64 + TOGETHER_MS;
    let ready = with_slots(&p.key, |q| {
        q.starts
            .iter()
            .take(n as usize)
            .take_while(|t| **t <= due)
            .count()
    });
    Ok((ready as u32).max(1))
}

/// Slots due within this long of now are taken by calls sent together ([`ready_together`]).
const TOGETHER_MS: f64 = 50.0;

/// What the per-isolate cache has for a caller: a slot still in time, or how many to reserve.
enum Cached {
    Slot(f64),
    Reserve(u32),
}

/// Takes a start slot (cached, or reserved from the limiter) and waits for it; returns it.
async fn take_slot(p: &Pacing<'_>, budget: &Budget, stale_ms: f64) -> Result<f64, NetError> {
    let now = crate::runtime::now_ms() as f64;
    let cached = with_slots(&p.key, |q| {
        while let Some(t) = q.starts.pop_front() {
            if t + stale_ms >= now {
                return Cached::Slot(t);
            }
            q.next_count = (q.next_count / 2).max(1);
        }
        Cached::Reserve(match p.pace {
            Pace::Window { .. } => {
                let count = q.next_count.clamp(1, WINDOW_SLOTS_PER_RESERVE);
                q.next_count = (count * 2).min(WINDOW_SLOTS_PER_RESERVE);
                count
            }
            Pace::Bucket { .. } => p.upcoming.get().clamp(1, SLOTS_PER_RESERVE),
        })
    });
    let slot = match cached {
        Cached::Slot(t) => t,
        Cached::Reserve(count) => {
            let (slots, at_once) = reserve(p, budget, count).await?;
            let mut slots = slots.into_iter();
            let first = slots.next().unwrap_or(crate::runtime::now_ms() as f64);
            with_slots(&p.key, |q| {
                q.starts.extend(slots);
                if at_once {
                    // The window has room: calls take its burst one slot at a time.
                    q.next_count = 1;
                }
            });
            first
        }
    };
    let wait = slot - crate::runtime::now_ms() as f64;
    if wait > pace::MAX_INLINE_WAIT_MS as f64 {
        // Longer than an invocation should hold: the work continues in a delayed message.
        return Err(NetError::Paced {
            wait_ms: wait as u64,
        });
    }
    if p.gives_way {
        wait_or_give_way(p, budget, slot).await?;
    } else if wait > 0.0 {
        Delay::from(Duration::from_millis(wait as u64)).await;
    }
    Ok(slot)
}

/// Waits for `slot` in short steps, giving way ([`NetError::HandOn`]) as soon as the
/// invocation is asked to hand on while the start is more than [`GIVE_WAY_MS`] away; the slot
/// then goes back to the front of the isolate's cache, for the fresh invocation to use.
async fn wait_or_give_way(p: &Pacing<'_>, budget: &Budget, slot: f64) -> Result<(), NetError> {
    loop {
        let left = slot - crate::runtime::now_ms() as f64;
        if left <= 0.0 {
            return Ok(());
        }
        if budget.hands_on() && left > GIVE_WAY_MS {
            with_slots(&p.key, |q| q.starts.push_front(slot));
            return Err(NetError::HandOn);
        }
        Delay::from(Duration::from_millis(left.min(GIVE_WAY_POLL_MS) as u64)).await;
    }
}

/// Sends `call` with retries: 429 and 5xx (honouring `Retry-After`), timeouts and network
/// errors are retried with exponential backoff; other statuses are returned as they are.
pub async fn send(
    call: &Call<'_>,
    pacing: Option<&Pacing<'_>>,
    budget: &Budget,
) -> Result<Answer, NetError> {
    let mut last = String::new();
    for attempt in 0..pace::HTTP_TRIES {
        // One fetch, and perhaps one limiter call.
        if !budget.allows(1, 1) {
            return Err(NetError::Budget {
                what: call.what.to_string(),
            });
        }
        if let Some(p) = pacing {
            wait_slot(p, budget).await?;
        }
        let limited = |a: &Answer| call.rate_limited.is_some_and(|f| f(a.status, &a.body));
        let retry_after = match send_once(call, budget).await {
            Ok(a) if pace::retryable(a.status) || limited(&a) => {
                last = format!("HTTP {}", a.status);
                a.retry_after_ms
            }
            Ok(a) => return Ok(a),
            Err(e) => {
                last = e;
                None
            }
        };
        if attempt + 1 == pace::HTTP_TRIES {
            break;
        }
        let wait = pace::backoff_ms(attempt + 1, 300, 8_000, retry_after);
        if wait > pace::MAX_INLINE_WAIT_MS {
            // Too long to sit in this invocation: the queue message that continues the step
            // waits instead, never less than the server asked.
            return Err(NetError::Exhausted {
                what: call.what.to_string(),
                tries: attempt + 1,
                last,
                retry_after_ms: Some(wait),
            });
        }
        Delay::from(Duration::from_millis(wait)).await;
    }
    Err(NetError::Exhausted {
        what: call.what.to_string(),
        tries: pace::HTTP_TRIES,
        last,
        retry_after_ms: None,
    })
}

/// A short, secret-free description of an error body.
pub fn describe_body(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let mut s: String = text.chars().take(200).collect();
    if text.chars().count() > 200 {
        s.push('…');
    }
    s
}
