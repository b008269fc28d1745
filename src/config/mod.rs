//! Typed configuration: every variable and secret the Worker reads (listed in the README),
//! parsed and validated once.
//!
//! The Worker shell collects the raw values (strings, or TOML numbers/booleans/objects as JSON)
//! into a [`RawConfig`]; [`Config::parse`] turns them into typed settings or a list of clear,
//! secret-free error messages. Nothing here touches `worker` types.
//!
//! The settings come in groups, one file each, so that each concern reads and validates its own
//! variables and a reader finds a setting next to its neighbours:
//! - `contentstack.rs`: [`Contentstack`], region, hosts, stack allow-list, management tokens,
//!   branch, call rate;
//! - `webhook.rs`: [`Webhook`], the verifier's checks, secrets and key, replay window, body cap;
//! - `cloudflare.rs`: [`Cloudflare`], API token, base, account, plan, purge batch and bucket;
//! - `pacing.rs`: [`Pacing`], the per-invocation budgets, the HTTP timeout, the retry policy;
//! - `timing.rs`: [`Timing`], the second pass's delay, the progress timeout, the retention;
//! - `deployment.rs`: [`Deployment`], the dead-letter queue's name and the public URL;
//! - `environments.rs`: `ENVIRONMENTS`, the purge rules ([`Rules`]);
//! - `raw.rs`: the reading helpers every group uses, and [`admin_token`].
//!
//! Each group's `parse` records its problems in one shared list and goes on, and the checks
//! between groups run after all of them (`check_across_groups`), so that every problem is
//! reported at once.
//!
//! Choices where the contract is silent (each group's file lists its own; these concern several
//! groups):
//! - Enumerated values (`CONTENTSTACK_REGION`, `WORKERS_PLAN`, `CLOUDFLARE_PLAN`) are trimmed and
//!   case-insensitive; an empty value counts as absent.
//! - A stack-scoped `ENVIRONMENTS` key (`<api_key>/…`) must name a stack in
//!   `CONTENTSTACK_API_KEYS` when that list is set: otherwise the rule could never apply.

mod cloudflare;
mod contentstack;
mod deployment;
mod environments;
mod pacing;
mod raw;
mod timing;
mod webhook;

pub use cloudflare::{Cloudflare, CloudflarePlan, MAX_ENTERPRISE_URL_BATCH, MAX_PURGE_BATCH};
pub use contentstack::{Contentstack, ManagementTokens, Region};
pub use deployment::{Deployment, DEFAULT_DEAD_LETTER_QUEUE};
pub use pacing::{Pacing, RetryPolicy, WorkersPlan, FREE_PLAN_SUBREQUESTS};
pub use raw::{admin_token, RawConfig};
pub use timing::Timing;
pub use webhook::Webhook;

use crate::rules::Rules;
use crate::signature::{Check, Secret};

/// Smallest subrequest budget that fits a page of items with one URL lookup each.
pub const MIN_BUDGET_WITH_URLS: usize = 300;

/// Every name the Worker reads from its environment.
pub const NAMES: &[&str] = &[
    "CONTENTSTACK_REGION",
    "CONTENTSTACK_API_BASE",
    "CONTENTSTACK_APP_BASE",
    "CONTENTSTACK_API_KEYS",
    "CONTENTSTACK_MANAGEMENT_TOKEN",
    "CONTENTSTACK_MANAGEMENT_TOKENS",
    "CONTENTSTACK_BRANCH",
    "CONTENTSTACK_PUBLIC_KEY",
    "CONTENTSTACK_HMAC_SECRETS",
    "CONTENTSTACK_RATE_PER_SECOND",
    "CLOUDFLARE_API_TOKEN",
    "CLOUDFLARE_API_BASE",
    "CLOUDFLARE_ACCOUNT_ID",
    "CLOUDFLARE_PLAN",
    "PURGE_BATCH_SIZE",
    "PURGE_RATE_PER_SECOND",
    "PURGE_BURST",
    "REPURGE_DELAY_SECONDS",
    "DEAD_LETTER_QUEUE",
    "PROGRESS_TIMEOUT_SECONDS",
    "LEDGER_RETENTION_DAYS",
    "LEDGER_RETENTION_SECONDS",
    "PUBLIC_URL",
    "ENVIRONMENTS",
    "ADMIN_TOKEN",
    "MAX_BODY_BYTES",
    "REPLAY_TOLERANCE_SECONDS",
    "WEBHOOK_VERIFY",
    "WEBHOOK_BASIC_AUTH",
    "WEBHOOK_HEADER",
    "ALLOW_UNVERIFIED",
    "QUEUE_MAX_ATTEMPTS",
    "RETRY_BASE_SECONDS",
    "WORKERS_PLAN",
    "SUBREQUEST_BUDGET",
    "SERVICE_OPS_BUDGET",
    "HTTP_TIMEOUT_MS",
];

/// The whole validated configuration, by group.
#[derive(Debug, Clone)]
pub struct Config {
    pub contentstack: Contentstack,
    pub webhook: Webhook,
    pub cloudflare: Cloudflare,
    pub pacing: Pacing,
    pub timing: Timing,
    pub deployment: Deployment,
    /// The purge rules (`ENVIRONMENTS`).
    pub rules: Rules,
    /// `ADMIN_TOKEN`, which enables `/api/*`. Also read on its own by the admin API ([`admin_token`]).
    pub admin_token: Option<Secret>,
}

/// Configuration problems, all of them at once, each naming the variable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", .0.join("; "))]
pub struct ConfigError(pub Vec<String>);

impl Config {
    /// Parses and validates everything; on failure returns every problem found. Each group
    /// reads its own variables; the checks between groups run last.
    pub fn parse(raw: &RawConfig) -> Result<Config, ConfigError> {
        let mut errors = Vec::new();
        let contentstack = Contentstack::parse(raw, &mut errors);
        let cloudflare = Cloudflare::parse(raw, &mut errors);
        let timing = Timing::parse(raw, &mut errors);
        let deployment = Deployment::parse(raw, &mut errors);
        let pacing = Pacing::parse(raw, &mut errors);
        let rules = environments::parse(raw, &mut errors);
        let checks = webhook::checks(raw, &mut errors);
        let webhook = Webhook::parse(raw, &checks, &mut errors);
        check_across_groups(
            &contentstack,
            &cloudflare,
            &pacing,
            &rules,
            &checks,
            &mut errors,
        );
        match webhook {
            Some(webhook) if errors.is_empty() => Ok(Config {
                contentstack,
                webhook,
                cloudflare,
                pacing,
                timing,
                deployment,
                rules,
                admin_token: admin_token(raw),
            }),
            _ => Err(ConfigError(errors)),
        }
    }
}

/// The checks between groups, each recorded in `errors`: URL look-ups need a budget that fits
/// a page; a rule with a `zone_id` needs a Cloudflare token; a stack-scoped rule must name an
/// allowed stack; and the RSA check needs the stack allow-list.
fn check_across_groups(
    contentstack: &Contentstack,
    cloudflare: &Cloudflare,
    pacing: &Pacing,
    rules: &Rules,
    checks: &[Check],
    errors: &mut Vec<String>,
) {
    // A page of items with URL lookups needs about 200 subrequests; a smaller budget could
    // never read one.
    if rules.iter().any(|(_, r)| r.resolve_urls) && pacing.subrequest_budget < MIN_BUDGET_WITH_URLS
    {
        errors.push(if pacing.workers_plan == WorkersPlan::Free {
            format!(
                "resolve_urls needs a SUBREQUEST_BUDGET of at least {MIN_BUDGET_WITH_URLS}, more than WORKERS_PLAN=free allows"
            )
        } else {
            format!(
                "SUBREQUEST_BUDGET must be at least {MIN_BUDGET_WITH_URLS} when a rule sets resolve_urls"
            )
        });
    }
    if cloudflare.api_token.is_none() {
        for (name, _) in rules.iter().filter(|(_, r)| r.needs_cloudflare_api()) {
            errors.push(format!(
                "ENVIRONMENTS.{name} has a zone_id but CLOUDFLARE_API_TOKEN is not set"
            ));
        }
    }
    let api_keys = &contentstack.api_keys;
    if !api_keys.is_empty() {
        for stack in rules.stacks() {
            if !api_keys.iter().any(|k| k == stack) {
                errors.push(format!(
                    "ENVIRONMENTS has rules for stack {stack:?}, which is not in CONTENTSTACK_API_KEYS"
                ));
            }
        }
    }
    if checks.contains(&Check::Rsa) && api_keys.is_empty() {
        errors.push(
            "CONTENTSTACK_API_KEYS is required when WEBHOOK_VERIFY includes rsa (the RSA key is shared by every Contentstack stack)"
                .into(),
        );
    }
}

/// A configuration for tests elsewhere: HMAC webhooks, two stacks with tokens (`k1`, `k2`) and
/// these rules.
#[cfg(test)]
pub fn for_tests(rules: serde_json::Value) -> Config {
    let raw: RawConfig = [
        ("WEBHOOK_VERIFY".to_string(), serde_json::json!("hmac")),
        (
            "CONTENTSTACK_HMAC_SECRETS".to_string(),
            serde_json::json!("s"),
        ),
        (
            "CONTENTSTACK_MANAGEMENT_TOKENS".to_string(),
            serde_json::json!({"k1": "t1", "k2": "t2"}),
        ),
        ("ENVIRONMENTS".to_string(), rules),
    ]
    .into_iter()
    .collect();
    Config::parse(&raw).unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pace::TokenBucket;
    use serde_json::json;
    use serde_json::Value;

    fn raw(pairs: &[(&str, Value)]) -> RawConfig {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    fn hmac_only() -> Vec<(&'static str, Value)> {
        vec![
            ("WEBHOOK_VERIFY", json!("hmac")),
            ("CONTENTSTACK_HMAC_SECRETS", json!("s3cret")),
        ]
    }

    #[test]
    fn defaults_follow_the_spec() {
        let c = Config::parse(&raw(&hmac_only())).unwrap();
        assert_eq!(c.contentstack.region, Region::Na);
        assert_eq!(c.contentstack.api_base, "https://api.contentstack.io");
        assert_eq!(c.contentstack.app_base, "https://app.contentstack.com");
        assert_eq!(
            c.cloudflare.api_base,
            "https://api.cloudflare.com/client/v4"
        );
        assert_eq!(c.cloudflare.purge_batch_size, 100);
        assert_eq!(c.cloudflare.purge_batch_for(true), 100);
        assert_eq!(c.cloudflare.purge_batch_for(false), 100);
        assert_eq!(c.timing.retention_seconds, 90 * 86_400);
        assert_eq!(c.cloudflare.plan, CloudflarePlan::Pro);
        assert_eq!(
            c.cloudflare.purge_bucket,
            TokenBucket {
                rate_per_second: 5.0,
                burst: 25.0
            }
        );
        assert_eq!(c.pacing.workers_plan, WorkersPlan::Paid);
        assert_eq!(c.pacing.subrequest_budget, 900);
        assert_eq!(c.pacing.service_ops_budget, 900);
        assert_eq!(c.timing.repurge_delay_seconds, 60);
        assert_eq!(c.timing.progress_timeout_seconds, 900);
        assert_eq!(
            c.deployment.dead_letter_queue,
            "contentstack-purge-dead-letters"
        );
        assert_eq!(c.deployment.public_url, None);
        assert_eq!(c.webhook.max_body_bytes, 1_048_576);
        assert_eq!(c.webhook.replay_tolerance_seconds, 1200);
        assert!(c.admin_token.is_none());
    }

    #[test]
    fn every_name_read_is_listed() {
        let mut names = NAMES.to_vec();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), NAMES.len());
        for n in [
            "WORKERS_PLAN",
            "SERVICE_OPS_BUDGET",
            "CLOUDFLARE_PLAN",
            "PURGE_BURST",
            "REPURGE_DELAY_SECONDS",
            "DEAD_LETTER_QUEUE",
            "PROGRESS_TIMEOUT_SECONDS",
            "PUBLIC_URL",
        ] {
            assert!(NAMES.contains(&n), "{n}");
        }
    }

    #[test]
    fn cloudflare_plans_set_the_purge_bucket() {
        for (plan, rate, burst) in [
            ("free", 5.0 / 60.0, 25.0),
            ("PRO", 5.0, 25.0),
            ("business", 10.0, 50.0),
            (" enterprise ", 50.0, 500.0),
        ] {
            let mut r = hmac_only();
            r.push(("CLOUDFLARE_PLAN", json!(plan)));
            let c = Config::parse(&raw(&r)).unwrap();
            assert_eq!(
                c.cloudflare.purge_bucket,
                TokenBucket {
                    rate_per_second: rate,
                    burst
                },
                "{plan}"
            );
        }
        let mut r = hmac_only();
        r.push(("CLOUDFLARE_PLAN", json!("platinum")));
        let e = Config::parse(&raw(&r)).unwrap_err().to_string();
        assert!(e.contains("CLOUDFLARE_PLAN \"platinum\""), "{e}");
    }

    #[test]
    fn purge_rate_and_burst_override_the_plan_each_on_its_own() {
        let mut r = hmac_only();
        r.push(("CLOUDFLARE_PLAN", json!("business")));
        r.push(("PURGE_RATE_PER_SECOND", json!("0.5")));
        let c = Config::parse(&raw(&r)).unwrap();
        assert_eq!(c.cloudflare.purge_bucket.rate_per_second, 0.5);
        assert_eq!(c.cloudflare.purge_bucket.burst, 50.0);

        let mut r = hmac_only();
        r.push(("CLOUDFLARE_PLAN", json!("free")));
        r.push(("PURGE_BURST", json!(10.0)));
        let c = Config::parse(&raw(&r)).unwrap();
        assert_eq!(c.cloudflare.purge_bucket.rate_per_second, 5.0 / 60.0);
        assert_eq!(c.cloudflare.purge_bucket.burst, 10.0);

        for (name, bad) in [
            ("PURGE_RATE_PER_SECOND", json!(0)),
            ("PURGE_RATE_PER_SECOND", json!("1001")),
            ("PURGE_BURST", json!(0)),
            ("PURGE_BURST", json!(2.5)),
            ("PURGE_BURST", json!(10_001)),
        ] {
            let mut r = hmac_only();
            r.push((name, bad.clone()));
            let e = Config::parse(&raw(&r)).unwrap_err().to_string();
            assert!(e.contains(name), "{name}={bad}: {e}");
        }
    }

    #[test]
    fn workers_free_plan_sizes_invocations_for_its_cpu_time() {
        let paid = Config::parse(&raw(&hmac_only())).unwrap();
        assert_eq!(paid.pacing.invocation_budgets(), (900, 900));
        assert_eq!(paid.pacing.item_pages_per_invocation(), None);
        let mut r = hmac_only();
        r.push(("WORKERS_PLAN", json!("free")));
        let free = Config::parse(&raw(&r)).unwrap();
        assert_eq!(
            free.pacing.service_ops_budget, 900,
            "the variable keeps its value"
        );
        assert_eq!(free.pacing.invocation_budgets(), (45, 200));
        assert_eq!(free.pacing.item_pages_per_invocation(), Some(1));
        r.push(("SERVICE_OPS_BUDGET", json!(120)));
        let lower = Config::parse(&raw(&r)).unwrap();
        assert_eq!(
            lower.pacing.invocation_budgets(),
            (45, 120),
            "a lower budget stands"
        );
    }

    #[test]
    fn workers_free_plan_sets_and_caps_the_subrequest_budget() {
        let mut r = hmac_only();
        r.push(("WORKERS_PLAN", json!("free")));
        let c = Config::parse(&raw(&r)).unwrap();
        assert_eq!(c.pacing.workers_plan, WorkersPlan::Free);
        assert_eq!(c.pacing.subrequest_budget, 45);
        r.push(("SUBREQUEST_BUDGET", json!(50)));
        assert_eq!(
            Config::parse(&raw(&r)).unwrap().pacing.subrequest_budget,
            50
        );
        r.pop();
        r.push(("SUBREQUEST_BUDGET", json!(51)));
        let e = Config::parse(&raw(&r)).unwrap_err().to_string();
        assert!(
            e.contains("the Free plan allows 50 external subrequests"),
            "{e}"
        );

        let mut r = hmac_only();
        r.push(("WORKERS_PLAN", json!("free")));
        r.push((
            "ENVIRONMENTS",
            json!({"p": {"resolve_urls": true, "entry": {"tags": ["t-{uid}"]}}}),
        ));
        let e = Config::parse(&raw(&r)).unwrap_err().to_string();
        assert!(e.contains("resolve_urls") && e.contains("free"), "{e}");

        let mut r = hmac_only();
        r.push(("WORKERS_PLAN", json!("enterprise")));
        let e = Config::parse(&raw(&r)).unwrap_err().to_string();
        assert!(e.contains("WORKERS_PLAN"), "{e}");

        let mut r = hmac_only();
        r.push(("SUBREQUEST_BUDGET", json!(9)));
        assert!(Config::parse(&raw(&r)).is_err());
        let mut r = hmac_only();
        r.push(("SUBREQUEST_BUDGET", json!(9500)));
        assert_eq!(
            Config::parse(&raw(&r)).unwrap().pacing.subrequest_budget,
            9500
        );
    }

    #[test]
    fn enterprise_allows_larger_url_batches_only() {
        let mut r = hmac_only();
        r.push(("PURGE_BATCH_SIZE", json!(500)));
        let e = Config::parse(&raw(&r)).unwrap_err().to_string();
        assert!(
            e.contains("PURGE_BATCH_SIZE must be a number from 1 to 100 (up to 500 with CLOUDFLARE_PLAN=enterprise)"),
            "{e}"
        );
        r.push(("CLOUDFLARE_PLAN", json!("enterprise")));
        let c = Config::parse(&raw(&r)).unwrap();
        assert_eq!(c.cloudflare.purge_batch_size, 500);
        assert_eq!(c.cloudflare.purge_batch_for(true), 500);
        assert_eq!(c.cloudflare.purge_batch_for(false), 100);
        r.pop();
        r.pop();
        r.push(("CLOUDFLARE_PLAN", json!("enterprise")));
        r.push(("PURGE_BATCH_SIZE", json!(501)));
        let e = Config::parse(&raw(&r)).unwrap_err().to_string();
        assert!(e.contains("from 1 to 500"), "{e}");
    }

    #[test]
    fn pass_timing_queue_and_public_url_settings() {
        let mut r = hmac_only();
        r.push(("REPURGE_DELAY_SECONDS", json!(0)));
        r.push(("PROGRESS_TIMEOUT_SECONDS", json!("2")));
        r.push(("SERVICE_OPS_BUDGET", json!(1000)));
        r.push(("DEAD_LETTER_QUEUE", json!("my-dlq")));
        r.push(("PUBLIC_URL", json!("https://purge.example.com/")));
        let c = Config::parse(&raw(&r)).unwrap();
        assert_eq!(c.timing.repurge_delay_seconds, 0);
        assert_eq!(c.timing.progress_timeout_seconds, 2);
        assert_eq!(c.pacing.service_ops_budget, 1000);
        assert_eq!(c.deployment.dead_letter_queue, "my-dlq");
        assert_eq!(
            c.deployment.public_url.as_deref(),
            Some("https://purge.example.com")
        );

        let mut r = hmac_only();
        r.push(("LEDGER_RETENTION_DAYS", json!("7")));
        assert_eq!(
            Config::parse(&raw(&r)).unwrap().timing.retention_seconds,
            7 * 86_400
        );
        r.push(("LEDGER_RETENTION_SECONDS", json!(3)));
        assert_eq!(Config::parse(&raw(&r)).unwrap().timing.retention_seconds, 3);
        let mut r = hmac_only();
        r.push(("LEDGER_RETENTION_DAYS", json!(3651)));
        let e = Config::parse(&raw(&r)).unwrap_err().to_string();
        assert!(e.contains("LEDGER_RETENTION_DAYS"), "{e}");

        let mut r = hmac_only();
        r.push(("PUBLIC_URL", json!("https://purge.example.com/hook")));
        let e = Config::parse(&raw(&r)).unwrap_err().to_string();
        assert!(e.contains("PUBLIC_URL must be scheme://host[:port]"), "{e}");
    }

    #[test]
    fn every_error_is_reported_at_once() {
        let mut r = hmac_only();
        for (name, bad) in [
            ("WORKERS_PLAN", json!("gold")),
            ("SUBREQUEST_BUDGET", json!(5)),
            ("SERVICE_OPS_BUDGET", json!(1001)),
            ("CLOUDFLARE_PLAN", json!("gold")),
            ("PURGE_RATE_PER_SECOND", json!(0)),
            ("PURGE_BURST", json!(0)),
            ("PURGE_BATCH_SIZE", json!(101)),
            ("REPURGE_DELAY_SECONDS", json!(43_201)),
            ("DEAD_LETTER_QUEUE", json!("dead letters")),
            ("PROGRESS_TIMEOUT_SECONDS", json!(1)),
            ("PUBLIC_URL", json!("purge.example.com")),
            ("LEDGER_RETENTION_DAYS", json!(0)),
        ] {
            r.push((name, bad));
        }
        let ConfigError(errors) = Config::parse(&raw(&r)).unwrap_err();
        assert_eq!(errors.len(), 12, "{errors:#?}");
        for name in [
            "WORKERS_PLAN",
            "SUBREQUEST_BUDGET",
            "SERVICE_OPS_BUDGET",
            "CLOUDFLARE_PLAN",
            "PURGE_RATE_PER_SECOND",
            "PURGE_BURST",
            "PURGE_BATCH_SIZE",
            "REPURGE_DELAY_SECONDS",
            "DEAD_LETTER_QUEUE",
            "PROGRESS_TIMEOUT_SECONDS",
            "PUBLIC_URL",
            "LEDGER_RETENTION_DAYS",
        ] {
            assert!(errors.iter().any(|e| e.starts_with(name)), "{name}");
        }
    }

    #[test]
    fn stack_scoped_rules_must_name_an_allowed_stack() {
        let rules =
            json!({"blt1/production": {"kv_binding": "KV"}, "blt9/*": {"kv_binding": "KV"}});
        let mut r = vec![
            ("CONTENTSTACK_API_KEYS", json!("blt1,blt2")),
            ("ENVIRONMENTS", rules.clone()),
        ];
        r.extend(hmac_only());
        let e = Config::parse(&raw(&r)).unwrap_err().to_string();
        assert!(e.contains("\"blt9\"") && !e.contains("\"blt1\""), "{e}");
        // Without an allow-list every stack is allowed.
        let mut r = hmac_only();
        r.push(("ENVIRONMENTS", rules));
        assert!(Config::parse(&raw(&r)).is_ok());
    }

    #[test]
    fn regions_map_to_their_hosts() {
        assert_eq!(
            Region::parse("eu").unwrap().api_base(),
            "https://eu-api.contentstack.com"
        );
        assert_eq!(
            Region::parse("gcp-eu").unwrap().app_base(),
            "https://gcp-eu-app.contentstack.com"
        );
        assert_eq!(Region::parse("AZURE-NA"), Some(Region::AzureNa));
        assert_eq!(Region::parse("mars"), None);
        let mut r = hmac_only();
        r.push(("CONTENTSTACK_REGION", json!("mars")));
        let e = Config::parse(&raw(&r)).unwrap_err();
        assert!(e.to_string().contains("CONTENTSTACK_REGION"), "{e}");
    }

    #[test]
    fn numbers_accept_toml_values_and_strings_and_reject_out_of_range() {
        let mut r = hmac_only();
        r.push(("PURGE_BATCH_SIZE", json!(100.0)));
        r.push(("REPLAY_TOLERANCE_SECONDS", json!(600)));
        r.push(("PURGE_RATE_PER_SECOND", json!("0.083")));
        r.push(("MAX_BODY_BYTES", json!("2048")));
        let c = Config::parse(&raw(&r)).unwrap();
        assert_eq!(c.cloudflare.purge_batch_size, 100);
        assert!((c.cloudflare.purge_bucket.rate_per_second - 0.083).abs() < 1e-9);
        assert_eq!(c.webhook.max_body_bytes, 2048);
        assert_eq!(c.webhook.replay_tolerance_seconds, 600);

        let mut r = hmac_only();
        r.push(("PURGE_BATCH_SIZE", json!(501)));
        let e = Config::parse(&raw(&r)).unwrap_err();
        assert!(e.to_string().contains("PURGE_BATCH_SIZE"), "{e}");
    }

    #[test]
    fn rsa_requires_an_api_key_allow_list() {
        let e = Config::parse(&raw(&[])).unwrap_err();
        assert!(e.to_string().contains("CONTENTSTACK_API_KEYS"), "{e}");
        let c = Config::parse(&raw(&[("CONTENTSTACK_API_KEYS", json!(" blt1 , blt2 ,"))])).unwrap();
        assert_eq!(c.contentstack.api_keys, vec!["blt1", "blt2"]);
        assert!(c.contentstack.stack_allowed(Some("blt2")));
        assert!(!c.contentstack.stack_allowed(Some("blt3")));
        assert!(!c.contentstack.stack_allowed(None));
    }

    #[test]
    fn zone_without_cloudflare_token_is_a_config_error() {
        let mut r = hmac_only();
        r.push((
            "ENVIRONMENTS",
            json!({"production": {"zone_id": "023e105f4ecef8ad9ca31a8372d0c353",
                   "entry": {"tags": ["cs-{uid}"]}}}),
        ));
        let e = Config::parse(&raw(&r)).unwrap_err();
        assert!(e.to_string().contains("CLOUDFLARE_API_TOKEN"), "{e}");
        r.push(("CLOUDFLARE_API_TOKEN", json!("cf-token")));
        assert!(Config::parse(&raw(&r)).is_ok());
    }

    #[test]
    fn environments_accepts_object_or_json_string_and_reports_bad_templates() {
        let mut r = hmac_only();
        r.push((
            "ENVIRONMENTS",
            json!("{\"production\":{\"kv_binding\":\"KV\",\"entry\":{\"kv_keys\":[\"{uid}\"]}}}"),
        ));
        let c = Config::parse(&raw(&r)).unwrap();
        assert!(c.rules.rule_for("production").is_some());

        let mut r = hmac_only();
        r.push((
            "ENVIRONMENTS",
            json!({"production": {"kv_binding": "KV", "entry": {"kv_keys": ["{nope}"]}}}),
        ));
        let e = Config::parse(&raw(&r)).unwrap_err();
        assert!(e.to_string().contains("nope"), "{e}");
    }

    #[test]
    fn url_lookups_need_a_budget_that_fits_a_page() {
        let mut r = hmac_only();
        r.push((
            "ENVIRONMENTS",
            json!({"production": {"kv_binding": "KV", "resolve_urls": true,
                   "entry": {"kv_keys": ["{uid}"]}}}),
        ));
        r.push(("SUBREQUEST_BUDGET", json!(200)));
        let e = Config::parse(&raw(&r)).unwrap_err();
        assert!(e.to_string().contains("SUBREQUEST_BUDGET"), "{e}");
        r.pop();
        r.push(("SUBREQUEST_BUDGET", json!(300)));
        assert!(Config::parse(&raw(&r)).is_ok());
    }

    #[test]
    fn the_health_check_watches_every_stack_with_a_token() {
        let mut r = hmac_only();
        r.push(("CONTENTSTACK_API_KEYS", json!("blt2, blt1")));
        r.push(("CONTENTSTACK_MANAGEMENT_TOKEN", json!("t")));
        r.push((
            "CONTENTSTACK_MANAGEMENT_TOKENS",
            json!("{\"blt3\":\"t3\",\"blt1\":\"t1\"}"),
        ));
        let c = Config::parse(&raw(&r)).unwrap();
        assert_eq!(
            c.contentstack.watched_stacks(),
            vec!["blt1", "blt2", "blt3"]
        );
        let mut r = hmac_only();
        r.push(("CONTENTSTACK_API_KEYS", json!("blt2,blt3")));
        r.push(("CONTENTSTACK_MANAGEMENT_TOKENS", json!("{\"blt3\":\"t3\"}")));
        let c = Config::parse(&raw(&r)).unwrap();
        assert_eq!(
            c.contentstack.watched_stacks(),
            vec!["blt3"],
            "blt2 has no token"
        );
    }

    #[test]
    fn management_tokens_per_stack_and_default() {
        let mut r = hmac_only();
        r.push(("CONTENTSTACK_MANAGEMENT_TOKEN", json!("default-token")));
        r.push((
            "CONTENTSTACK_MANAGEMENT_TOKENS",
            json!("{\"blt1\":\"tok1\"}"),
        ));
        let c = Config::parse(&raw(&r)).unwrap();
        assert_eq!(
            c.contentstack
                .management_tokens
                .for_stack("blt1")
                .unwrap()
                .expose(),
            "tok1"
        );
        assert_eq!(
            c.contentstack
                .management_tokens
                .for_stack("other")
                .unwrap()
                .expose(),
            "default-token"
        );
        let mut r = hmac_only();
        r.push(("CONTENTSTACK_MANAGEMENT_TOKENS", json!("[1,2]")));
        assert!(Config::parse(&raw(&r)).is_err());
    }

    #[test]
    fn errors_never_contain_secret_values() {
        let r = raw(&[
            ("WEBHOOK_VERIFY", json!("hmac,bogus")),
            ("CONTENTSTACK_HMAC_SECRETS", json!("topsecretvalue")),
            ("WEBHOOK_BASIC_AUTH", json!("nocolonsecret")),
            ("ADMIN_TOKEN", json!("adminsecret")),
        ]);
        let e = Config::parse(&r).unwrap_err().to_string();
        assert!(e.contains("bogus"), "{e}");
        for s in ["topsecretvalue", "nocolonsecret", "adminsecret"] {
            assert!(!e.contains(s), "{e}");
        }
    }

    #[test]
    fn base_urls_must_have_no_path_except_cloudflare() {
        let mut r = hmac_only();
        r.push(("CONTENTSTACK_API_BASE", json!("http://127.0.0.1:8787/")));
        r.push((
            "CLOUDFLARE_API_BASE",
            json!("http://127.0.0.1:9000/client/v4"),
        ));
        let c = Config::parse(&raw(&r)).unwrap();
        assert_eq!(c.contentstack.api_base, "http://127.0.0.1:8787");
        assert_eq!(c.cloudflare.api_base, "http://127.0.0.1:9000/client/v4");
        let mut r = hmac_only();
        r.push(("CONTENTSTACK_API_BASE", json!("http://127.0.0.1:8787/v3")));
        assert!(Config::parse(&raw(&r)).is_err());
        let mut r = hmac_only();
        r.push(("CONTENTSTACK_APP_BASE", json!("ftp://x")));
        assert!(Config::parse(&raw(&r)).is_err());
    }
}
