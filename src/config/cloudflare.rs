//! Cloudflare: the API token, base and account the purges and KV REST deletes go to, the plan
//! of the zones purged, and the purge calls' size and pace that follow from it.
//!
//! Choices where the contract is silent:
//! - `PURGE_RATE_PER_SECOND` (0.001–1000) and `PURGE_BURST` (1–10000, whole tokens) each override
//!   one side of the `CLOUDFLARE_PLAN` bucket; the other keeps the plan's number.
//! - `PURGE_BATCH_SIZE` over 100 is accepted only with `CLOUDFLARE_PLAN=enterprise`, and then
//!   applies to URL purges only ([`Cloudflare::purge_batch_for`]).

use super::raw::{base_url, choice, number_opt, number_why, secret, text, RawConfig};
use crate::pace::TokenBucket;
use crate::signature::Secret;

/// Most items in one purge call by tag, host or prefix, on every Cloudflare plan.
pub const MAX_PURGE_BATCH: usize = 100;
/// Most URLs in one purge call on the Cloudflare Enterprise plan.
pub const MAX_ENTERPRISE_URL_BATCH: usize = 500;

/// The Cloudflare plan of the zones purged, which sets the purge token bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloudflarePlan {
    Free,
    Pro,
    Business,
    Enterprise,
}

impl CloudflarePlan {
    pub fn parse(s: &str) -> Option<CloudflarePlan> {
        Some(match s.trim().to_ascii_lowercase().as_str() {
            "free" => CloudflarePlan::Free,
            "" | "pro" => CloudflarePlan::Pro,
            "business" => CloudflarePlan::Business,
            "enterprise" => CloudflarePlan::Enterprise,
            _ => return None,
        })
    }

    /// Cloudflare's published purge bucket for this plan.
    pub fn purge_bucket(self) -> TokenBucket {
        let (rate_per_second, burst) = match self {
            CloudflarePlan::Free => (5.0 / 60.0, 25.0),
            CloudflarePlan::Pro => (5.0, 25.0),
            CloudflarePlan::Business => (10.0, 50.0),
            CloudflarePlan::Enterprise => (50.0, 500.0),
        };
        TokenBucket {
            rate_per_second,
            burst,
        }
    }

    /// Largest `PURGE_BATCH_SIZE` on this plan.
    pub fn max_purge_batch(self) -> usize {
        match self {
            CloudflarePlan::Enterprise => MAX_ENTERPRISE_URL_BATCH,
            _ => MAX_PURGE_BATCH,
        }
    }
}

/// How the Worker reaches the Cloudflare API and paces its purge calls.
#[derive(Debug, Clone)]
pub struct Cloudflare {
    /// Needed by any rule with a `zone_id`.
    pub api_token: Option<Secret>,
    /// API base, including `/client/v4`.
    pub api_base: String,
    /// Enables KV REST bulk deletes.
    pub account_id: Option<String>,
    pub plan: CloudflarePlan,
    /// Items per purge call; see [`Cloudflare::purge_batch_for`].
    pub purge_batch_size: usize,
    /// The account's purge token bucket: the plan's, with any override.
    pub purge_bucket: TokenBucket,
}

impl Cloudflare {
    /// Reads the Cloudflare settings, recording every problem in `errors`.
    pub(super) fn parse(raw: &RawConfig, errors: &mut Vec<String>) -> Cloudflare {
        let api_base = base_url(
            "CLOUDFLARE_API_BASE",
            text(raw, "CLOUDFLARE_API_BASE")
                .unwrap_or_else(|| "https://api.cloudflare.com/client/v4".into()),
            errors,
            true,
        );
        let plan = choice(
            raw,
            "CLOUDFLARE_PLAN",
            CloudflarePlan::Pro,
            CloudflarePlan::parse,
            "free, pro, business, enterprise",
            errors,
        );
        let purge_batch_size = number_why(
            raw,
            "PURGE_BATCH_SIZE",
            100usize,
            (1, plan.max_purge_batch()),
            if plan == CloudflarePlan::Enterprise {
                " (Cloudflare's Enterprise limit for URLs per purge call)"
            } else {
                " (up to 500 with CLOUDFLARE_PLAN=enterprise)"
            },
            errors,
        );
        let preset = plan.purge_bucket();
        let purge_bucket = TokenBucket {
            rate_per_second: number_opt(
                raw,
                "PURGE_RATE_PER_SECOND",
                (0.001f64, 1000.0),
                "",
                errors,
            )
            .unwrap_or(preset.rate_per_second),
            burst: number_opt(raw, "PURGE_BURST", (1u32, 10_000), "", errors)
                .map_or(preset.burst, f64::from),
        };
        Cloudflare {
            api_token: secret(raw, "CLOUDFLARE_API_TOKEN"),
            api_base,
            account_id: text(raw, "CLOUDFLARE_ACCOUNT_ID"),
            plan,
            purge_batch_size,
            purge_bucket,
        }
    }

    /// Items per purge call of one kind: `purge_batch_size` for URLs (files), at most 100 for
    /// tags, hosts and prefixes.
    pub fn purge_batch_for(&self, kind_is_file: bool) -> usize {
        if kind_is_file {
            self.purge_batch_size
        } else {
            self.purge_batch_size.min(MAX_PURGE_BATCH)
        }
    }
}
