//! Typed configuration: every variable and secret the Worker reads (listed in the README),
//! parsed and validated once.
//!
//! The Worker shell collects the raw values (strings, or TOML numbers/booleans/objects as JSON)
//! into a [`RawConfig`]; [`Config::parse`] turns them into typed settings or a list of clear,
//! secret-free error messages. Nothing here touches `worker` types.
//!
//! Choices where the contract is silent:
//! - Enumerated values (`CONTENTSTACK_REGION`, `WORKERS_PLAN`, `CLOUDFLARE_PLAN`) are trimmed and
//!   case-insensitive; an empty value counts as absent.
//! - `SUBREQUEST_BUDGET` is 10–9500; with `WORKERS_PLAN=free` it may not pass 50 (the Free plan's
//!   external subrequests), and its default is 45 so that the Worker's own bookkeeping fetches fit.
//! - `SERVICE_OPS_BUDGET` is 50–1000, default 900: room below the platform's 1,000 for the
//!   operations made after the last check.
//! - `PURGE_RATE_PER_SECOND` (0.001–1000) and `PURGE_BURST` (1–10000, whole tokens) each override
//!   one side of the `CLOUDFLARE_PLAN` bucket; the other keeps the plan's number.
//! - `PURGE_BATCH_SIZE` over 100 is accepted only with `CLOUDFLARE_PLAN=enterprise`, and then
//!   applies to URL purges only ([`Config::purge_batch_for`]).
//! - `REPURGE_DELAY_SECONDS` is at most 43200 (the longest queue message delay).
//! - `PROGRESS_TIMEOUT_SECONDS` is 2–86400, default 900 (15 minutes).
//! - `LEDGER_RETENTION_DAYS` is whole days, 1–3650, default 90. `LEDGER_RETENTION_SECONDS`
//!   (undocumented for users, like `PROGRESS_TIMEOUT_SECONDS`) overrides it in seconds, so that a
//!   test can watch a finished job expire.
//! - `DEAD_LETTER_QUEUE` must be a name without whitespace or control characters.
//! - `PUBLIC_URL` is checked like the other base URLs (`scheme://host[:port]`, no path), and a
//!   trailing `/` is dropped.
//! - A stack-scoped `ENVIRONMENTS` key (`<api_key>/…`) must name a stack in
//!   `CONTENTSTACK_API_KEYS` when that list is set: otherwise the rule could never apply.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::pace::TokenBucket;
use crate::rules::Rules;
use crate::verify::{self, BasicCredentials, Check, HeaderCheck, Secret, Verifier};

/// Smallest subrequest budget that fits a page of items with one URL lookup each.
pub const MIN_BUDGET_WITH_URLS: usize = 300;

/// Raw configuration values by name, as the runtime handed them over.
pub type RawConfig = BTreeMap<String, Value>;

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

/// Default name of the queue whose batches are dead letters.
pub const DEFAULT_DEAD_LETTER_QUEUE: &str = "contentstack-purge-dead-letters";
/// Most external subrequests one invocation may make on the Workers Free plan.
pub const FREE_PLAN_SUBREQUESTS: usize = 50;
/// Most items in one purge call by tag, host or prefix, on every Cloudflare plan.
pub const MAX_PURGE_BATCH: usize = 100;
/// Most URLs in one purge call on the Cloudflare Enterprise plan.
pub const MAX_ENTERPRISE_URL_BATCH: usize = 500;

/// Contentstack regions and their hosts (docs/CONTRACT.md, "Configuration").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Region {
    Na,
    Eu,
    Au,
    AzureNa,
    AzureEu,
    GcpNa,
    GcpEu,
}

impl Region {
    pub fn parse(s: &str) -> Option<Region> {
        Some(match s.trim().to_ascii_lowercase().as_str() {
            "" | "na" | "us" => Region::Na,
            "eu" => Region::Eu,
            "au" => Region::Au,
            "azure-na" => Region::AzureNa,
            "azure-eu" => Region::AzureEu,
            "gcp-na" => Region::GcpNa,
            "gcp-eu" => Region::GcpEu,
            _ => return None,
        })
    }

    fn prefix(self) -> Option<&'static str> {
        match self {
            Region::Na => None,
            Region::Eu => Some("eu"),
            Region::Au => Some("au"),
            Region::AzureNa => Some("azure-na"),
            Region::AzureEu => Some("azure-eu"),
            Region::GcpNa => Some("gcp-na"),
            Region::GcpEu => Some("gcp-eu"),
        }
    }

    /// Management API base URL, without `/v3`.
    pub fn api_base(self) -> String {
        match self.prefix() {
            None => "https://api.contentstack.io".into(),
            Some(p) => format!("https://{p}-api.contentstack.com"),
        }
    }

    /// Host serving `/.well-known/public-keys.json`.
    pub fn app_base(self) -> String {
        match self.prefix() {
            None => "https://app.contentstack.com".into(),
            Some(p) => format!("https://{p}-app.contentstack.com"),
        }
    }
}

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

/// Management tokens: one for every stack, or one per stack API key.
#[derive(Debug, Clone, Default)]
pub struct ManagementTokens {
    pub default: Option<Secret>,
    pub per_stack: BTreeMap<String, Secret>,
}

impl ManagementTokens {
    pub fn for_stack(&self, api_key: &str) -> Option<&Secret> {
        self.per_stack.get(api_key).or(self.default.as_ref())
    }
    pub fn is_empty(&self) -> bool {
        self.default.is_none() && self.per_stack.is_empty()
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

/// The whole validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub region: Region,
    pub contentstack_api_base: String,
    pub contentstack_app_base: String,
    pub api_keys: Vec<String>,
    pub management_tokens: ManagementTokens,
    pub branch: Option<String>,
    pub contentstack_rate_per_second: f64,
    pub cloudflare_api_token: Option<Secret>,
    pub cloudflare_api_base: String,
    pub cloudflare_account_id: Option<String>,
    pub cloudflare_plan: CloudflarePlan,
    /// Items per purge call; see [`Config::purge_batch_for`].
    pub purge_batch_size: usize,
    /// The account's purge token bucket: the plan's, with any override.
    pub purge_bucket: TokenBucket,
    /// Delay of the second purge pass; 0 = no second pass.
    pub repurge_delay_seconds: u32,
    /// Name of the queue whose batches are dead letters.
    pub dead_letter_queue: String,
    /// A job with no progress this long is driven again by the ledger alarm.
    pub progress_timeout_seconds: u32,
    /// How long a finished job's record is kept (`LEDGER_RETENTION_DAYS`), in seconds.
    pub retention_seconds: u64,
    /// This Worker's public base URL, when set.
    pub public_url: Option<String>,
    pub rules: Rules,
    pub admin_token: Option<Secret>,
    pub max_body_bytes: usize,
    pub replay_tolerance_seconds: u64,
    pub verifier: Verifier,
    pub retry: RetryPolicy,
    pub workers_plan: WorkersPlan,
    /// External fetches one invocation may make.
    pub subrequest_budget: usize,
    /// Cloudflare-service operations (KV, Durable Object, Cache API, Queue) per invocation.
    pub service_ops_budget: usize,
    /// Time one outbound HTTP try may take.
    pub http_timeout_ms: u64,
}

/// Configuration problems, all of them at once, each naming the variable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", .0.join("; "))]
pub struct ConfigError(pub Vec<String>);

/// Reads one raw value as text: strings as they are, numbers and booleans printed.
fn text(raw: &RawConfig, name: &str) -> Option<String> {
    match raw.get(name)? {
        Value::String(s) => {
            let t = s.trim();
            (!t.is_empty()).then(|| t.to_string())
        }
        Value::Number(n) => Some(match n.as_f64() {
            // Runtimes hand TOML integers over as floats: print 600.0 as 600.
            Some(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => format!("{}", f as i64),
            _ => n.to_string(),
        }),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Reads a secret without trimming inner content (only surrounding whitespace).
fn secret(raw: &RawConfig, name: &str) -> Option<Secret> {
    text(raw, name).map(Secret::new)
}

/// `ADMIN_TOKEN`, the one place it is read. [`Config::parse`] keeps it, and the admin API reads
/// it through here on its own: `/api/*` must keep answering (jobs, health, replays) while the
/// rest of the configuration is broken, so that an operator can see what the Worker did.
pub fn admin_token(raw: &RawConfig) -> Option<Secret> {
    secret(raw, "ADMIN_TOKEN")
}

fn base_url(name: &str, value: String, errors: &mut Vec<String>, allow_path: bool) -> String {
    let v = value.trim_end_matches('/').to_string();
    let rest = v
        .strip_prefix("https://")
        .or_else(|| v.strip_prefix("http://"));
    match rest {
        Some(r) if !r.is_empty() && (allow_path || !r.contains('/')) => {}
        _ => errors.push(format!(
            "{name} must be scheme://host[:port]{}",
            if allow_path {
                "[/path]"
            } else {
                " with no path"
            }
        )),
    }
    v
}

fn number<T: SettingNumber>(
    raw: &RawConfig,
    name: &str,
    default: T,
    range: (T, T),
    errors: &mut Vec<String>,
) -> T {
    number_why(raw, name, default, range, "", errors)
}

/// [`number`] with a reason appended to the range in the error message.
fn number_why<T: SettingNumber>(
    raw: &RawConfig,
    name: &str,
    default: T,
    range: (T, T),
    why: &str,
    errors: &mut Vec<String>,
) -> T {
    number_opt(raw, name, range, why, errors).unwrap_or(default)
}

/// A number in `range`, `None` when absent or wrong (then an error is recorded).
fn number_opt<T: SettingNumber>(
    raw: &RawConfig,
    name: &str,
    range: (T, T),
    why: &str,
    errors: &mut Vec<String>,
) -> Option<T> {
    let s = text(raw, name)?;
    match T::parse_setting(&s) {
        Some(v) if v >= range.0 && v <= range.1 => Some(v),
        _ => {
            errors.push(format!(
                "{name} must be a number from {} to {}{why}",
                range.0.show(),
                range.1.show()
            ));
            None
        }
    }
}

/// A setting's number type: parsed as `str::parse` parses it and shown as `Display` shows it,
/// with `f64` going through [`crate::decimal`] (the same results without the standard
/// library's float parsing and formatting code in the .wasm).
trait SettingNumber: Copy + PartialOrd {
    fn parse_setting(s: &str) -> Option<Self>;
    fn show(self) -> String;
}

macro_rules! integer_setting {
    ($($t:ty),*) => {$(
        impl SettingNumber for $t {
            fn parse_setting(s: &str) -> Option<Self> {
                s.parse().ok()
            }
            fn show(self) -> String {
                self.to_string()
            }
        }
    )*};
}
integer_setting!(u32, u64, usize);

impl SettingNumber for f64 {
    fn parse_setting(s: &str) -> Option<Self> {
        crate::decimal::parse_f64(s)
    }
    fn show(self) -> String {
        crate::decimal::show_f64(self)
    }
}

/// One of a few names, parsed by `parse`; `what` lists them for the error message.
fn choice<T: Copy>(
    raw: &RawConfig,
    name: &str,
    default: T,
    parse: fn(&str) -> Option<T>,
    what: &str,
    errors: &mut Vec<String>,
) -> T {
    match text(raw, name) {
        None => default,
        Some(s) => parse(&s).unwrap_or_else(|| {
            errors.push(format!("{name} {s:?} is not one of {what}"));
            default
        }),
    }
}

fn boolean(raw: &RawConfig, name: &str, errors: &mut Vec<String>) -> bool {
    match text(raw, name).map(|s| s.to_ascii_lowercase()) {
        None => false,
        Some(s) if s == "true" || s == "1" || s == "yes" => true,
        Some(s) if s == "false" || s == "0" || s == "no" => false,
        Some(_) => {
            errors.push(format!("{name} must be true or false"));
            false
        }
    }
}

impl Config {
    /// Parses and validates everything; on failure returns every problem found.
    pub fn parse(raw: &RawConfig) -> Result<Config, ConfigError> {
        let mut errors = Vec::new();

        let region = match text(raw, "CONTENTSTACK_REGION") {
            None => Region::Na,
            Some(s) => Region::parse(&s).unwrap_or_else(|| {
                errors.push(format!(
                    "CONTENTSTACK_REGION {s:?} is not one of na, eu, au, azure-na, azure-eu, gcp-na, gcp-eu"
                ));
                Region::Na
            }),
        };
        let contentstack_api_base = base_url(
            "CONTENTSTACK_API_BASE",
            text(raw, "CONTENTSTACK_API_BASE").unwrap_or_else(|| region.api_base()),
            &mut errors,
            false,
        );
        let contentstack_app_base = base_url(
            "CONTENTSTACK_APP_BASE",
            text(raw, "CONTENTSTACK_APP_BASE").unwrap_or_else(|| region.app_base()),
            &mut errors,
            false,
        );
        let cloudflare_api_base = base_url(
            "CLOUDFLARE_API_BASE",
            text(raw, "CLOUDFLARE_API_BASE")
                .unwrap_or_else(|| "https://api.cloudflare.com/client/v4".into()),
            &mut errors,
            true,
        );

        let api_keys: Vec<String> = text(raw, "CONTENTSTACK_API_KEYS")
            .map(|s| {
                s.split(',')
                    .map(|k| k.trim().to_string())
                    .filter(|k| !k.is_empty())
                    .collect()
            })
            .unwrap_or_default();

        let mut management_tokens = ManagementTokens {
            default: secret(raw, "CONTENTSTACK_MANAGEMENT_TOKEN"),
            per_stack: BTreeMap::new(),
        };
        if let Some(v) = raw.get("CONTENTSTACK_MANAGEMENT_TOKENS") {
            let parsed = match v {
                Value::String(s) if s.trim().is_empty() => Ok(Value::Object(Default::default())),
                Value::String(s) => serde_json::from_str::<Value>(s),
                other => Ok(other.clone()),
            };
            match parsed {
                Ok(Value::Object(map)) => {
                    for (k, v) in map {
                        match v.as_str().map(str::trim) {
                            Some(t) if !t.is_empty() => {
                                management_tokens
                                    .per_stack
                                    .insert(k.trim().to_string(), Secret::new(t.to_string()));
                            }
                            _ => errors.push(format!(
                                "CONTENTSTACK_MANAGEMENT_TOKENS[{k:?}] must be a non-empty string"
                            )),
                        }
                    }
                }
                _ => errors.push(
                    "CONTENTSTACK_MANAGEMENT_TOKENS must be a JSON object {\"<api_key>\": \"<token>\"}"
                        .into(),
                ),
            }
        }

        let cloudflare_plan = choice(
            raw,
            "CLOUDFLARE_PLAN",
            CloudflarePlan::Pro,
            CloudflarePlan::parse,
            "free, pro, business, enterprise",
            &mut errors,
        );
        let purge_batch_size = number_why(
            raw,
            "PURGE_BATCH_SIZE",
            100usize,
            (1, cloudflare_plan.max_purge_batch()),
            if cloudflare_plan == CloudflarePlan::Enterprise {
                " (Cloudflare's Enterprise limit for URLs per purge call)"
            } else {
                " (up to 500 with CLOUDFLARE_PLAN=enterprise)"
            },
            &mut errors,
        );
        let preset = cloudflare_plan.purge_bucket();
        let purge_bucket = TokenBucket {
            rate_per_second: number_opt(
                raw,
                "PURGE_RATE_PER_SECOND",
                (0.001f64, 1000.0),
                "",
                &mut errors,
            )
            .unwrap_or(preset.rate_per_second),
            burst: number_opt(raw, "PURGE_BURST", (1u32, 10_000), "", &mut errors)
                .map_or(preset.burst, f64::from),
        };
        let repurge_delay_seconds = number(
            raw,
            "REPURGE_DELAY_SECONDS",
            60u32,
            (0, 43_200),
            &mut errors,
        );
        let progress_timeout_seconds = number(
            raw,
            "PROGRESS_TIMEOUT_SECONDS",
            900u32,
            (2, 86_400),
            &mut errors,
        );
        let retention_days = number(raw, "LEDGER_RETENTION_DAYS", 90u32, (1, 3650), &mut errors);
        // Tests only: a retention in seconds, so that a test can watch a job expire.
        let retention_seconds = number_opt(
            raw,
            "LEDGER_RETENTION_SECONDS",
            (1u64, 3650 * 86_400),
            "",
            &mut errors,
        )
        .unwrap_or(retention_days as u64 * 86_400);
        let dead_letter_queue =
            text(raw, "DEAD_LETTER_QUEUE").unwrap_or_else(|| DEFAULT_DEAD_LETTER_QUEUE.into());
        if dead_letter_queue
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
        {
            errors.push("DEAD_LETTER_QUEUE must be a queue name without whitespace".into());
        }
        let public_url =
            text(raw, "PUBLIC_URL").map(|u| base_url("PUBLIC_URL", u, &mut errors, false));
        let contentstack_rate_per_second = number(
            raw,
            "CONTENTSTACK_RATE_PER_SECOND",
            10.0f64,
            (0.01, 10.0),
            &mut errors,
        );
        let max_body_bytes = number(
            raw,
            "MAX_BODY_BYTES",
            1_048_576usize,
            (1024, 100 * 1024 * 1024),
            &mut errors,
        );
        let replay_tolerance_seconds = number(
            raw,
            "REPLAY_TOLERANCE_SECONDS",
            1200u64,
            (1, 7 * 24 * 3600),
            &mut errors,
        );
        let retry = RetryPolicy {
            max_tries: number(raw, "QUEUE_MAX_ATTEMPTS", 5u32, (1, 100), &mut errors),
            base_seconds: number(raw, "RETRY_BASE_SECONDS", 10u32, (0, 3600), &mut errors),
        };
        let workers_plan = choice(
            raw,
            "WORKERS_PLAN",
            WorkersPlan::Paid,
            WorkersPlan::parse,
            "paid, free",
            &mut errors,
        );
        let subrequest_budget = number(
            raw,
            "SUBREQUEST_BUDGET",
            workers_plan.default_subrequest_budget(),
            (10, 9500),
            &mut errors,
        );
        if workers_plan == WorkersPlan::Free && subrequest_budget > FREE_PLAN_SUBREQUESTS {
            errors.push(format!(
                "SUBREQUEST_BUDGET must be at most {FREE_PLAN_SUBREQUESTS} with WORKERS_PLAN=free (the Free plan allows {FREE_PLAN_SUBREQUESTS} external subrequests)"
            ));
        }
        let service_ops_budget =
            number(raw, "SERVICE_OPS_BUDGET", 900usize, (50, 1000), &mut errors);

        let http_timeout_ms = number(
            raw,
            "HTTP_TIMEOUT_MS",
            15_000u64,
            (100, 120_000),
            &mut errors,
        );
        let rules = match raw.get("ENVIRONMENTS") {
            None => Rules::default(),
            Some(Value::String(s)) if s.trim().is_empty() => Rules::default(),
            Some(Value::String(s)) => Rules::from_json_str(s).unwrap_or_else(|e| {
                errors.push(e.to_string());
                Rules::default()
            }),
            Some(v) => Rules::from_value(v).unwrap_or_else(|e| {
                errors.push(e.to_string());
                Rules::default()
            }),
        };
        // A page of items with URL lookups needs about 200 subrequests; a smaller budget could
        // never read one.
        if rules.iter().any(|(_, r)| r.resolve_urls) && subrequest_budget < MIN_BUDGET_WITH_URLS {
            errors.push(if workers_plan == WorkersPlan::Free {
                format!(
                    "resolve_urls needs a SUBREQUEST_BUDGET of at least {MIN_BUDGET_WITH_URLS}, more than WORKERS_PLAN=free allows"
                )
            } else {
                format!(
                    "SUBREQUEST_BUDGET must be at least {MIN_BUDGET_WITH_URLS} when a rule sets resolve_urls"
                )
            });
        }
        let cloudflare_api_token = secret(raw, "CLOUDFLARE_API_TOKEN");
        if cloudflare_api_token.is_none() {
            for (name, _) in rules.iter().filter(|(_, r)| r.needs_cloudflare_api()) {
                errors.push(format!(
                    "ENVIRONMENTS.{name} has a zone_id but CLOUDFLARE_API_TOKEN is not set"
                ));
            }
        }
        if !api_keys.is_empty() {
            for stack in rules.stacks() {
                if !api_keys.iter().any(|k| k == stack) {
                    errors.push(format!(
                        "ENVIRONMENTS has rules for stack {stack:?}, which is not in CONTENTSTACK_API_KEYS"
                    ));
                }
            }
        }

        let checks = match text(raw, "WEBHOOK_VERIFY") {
            None => vec![Check::Rsa],
            Some(s) => verify::parse_checks(&s).unwrap_or_else(|e| {
                errors.push(format!("WEBHOOK_VERIFY: {e}"));
                vec![Check::Rsa]
            }),
        };
        if checks.contains(&Check::Rsa) && api_keys.is_empty() {
            errors.push(
                "CONTENTSTACK_API_KEYS is required when WEBHOOK_VERIFY includes rsa (the RSA key is shared by every Contentstack stack)"
                    .into(),
            );
        }
        let hmac_secrets = text(raw, "CONTENTSTACK_HMAC_SECRETS")
            .map(|s| verify::parse_hmac_secrets(&s))
            .unwrap_or_default();
        let basic = match text(raw, "WEBHOOK_BASIC_AUTH") {
            None => None,
            Some(s) => BasicCredentials::parse(&s)
                .map_err(|e| errors.push(format!("WEBHOOK_BASIC_AUTH: {e}")))
                .ok(),
        };
        let header = match text(raw, "WEBHOOK_HEADER") {
            None => None,
            Some(s) => HeaderCheck::parse(&s)
                .map_err(|e| errors.push(format!("WEBHOOK_HEADER: {e}")))
                .ok(),
        };
        let allow_unverified = boolean(raw, "ALLOW_UNVERIFIED", &mut errors);
        let public_key_pem = text(raw, "CONTENTSTACK_PUBLIC_KEY").map(|p| p.replace("\\n", "\n"));
        let verifier = Verifier::new(
            checks,
            hmac_secrets,
            basic,
            header,
            public_key_pem.as_deref(),
            allow_unverified,
        )
        .map_err(|e| errors.push(e.to_string()))
        .ok();

        let admin_token = admin_token(raw);
        let branch = text(raw, "CONTENTSTACK_BRANCH").filter(|b| b != "main");

        match verifier {
            Some(verifier) if errors.is_empty() => Ok(Config {
                region,
                contentstack_api_base,
                contentstack_app_base,
                api_keys,
                management_tokens,
                branch,
                contentstack_rate_per_second,
                cloudflare_api_token,
                cloudflare_api_base,
                cloudflare_account_id: text(raw, "CLOUDFLARE_ACCOUNT_ID"),
                cloudflare_plan,
                purge_batch_size,
                purge_bucket,
                repurge_delay_seconds,
                dead_letter_queue,
                progress_timeout_seconds,
                retention_seconds,
                public_url,
                rules,
                admin_token,
                max_body_bytes,
                replay_tolerance_seconds,
                verifier,
                retry,
                workers_plan,
                subrequest_budget,
                service_ops_budget,
                http_timeout_ms,
            }),
            _ => Err(ConfigError(errors)),
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

    /// The stacks the webhook health check reads: every stack with a token of its own, and
    /// with the single token, every stack in `CONTENTSTACK_API_KEYS`.
    pub fn watched_stacks(&self) -> Vec<String> {
        let mut stacks: Vec<String> = self.management_tokens.per_stack.keys().cloned().collect();
        if self.management_tokens.default.is_some() {
            stacks.extend(self.api_keys.iter().cloned());
        }
        crate::sorted::sort(&mut stacks);
        stacks.dedup();
        stacks
    }

    /// Whether a stack api_key passes the allow-list (an empty list allows every stack).
    pub fn stack_allowed(&self, api_key: Option<&str>) -> bool {
        if self.api_keys.is_empty() {
            return true;
        }
        match api_key {
            Some(k) => self.api_keys.iter().any(|a| a == k),
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
        assert_eq!(c.region, Region::Na);
        assert_eq!(c.contentstack_api_base, "https://api.contentstack.io");
        assert_eq!(c.contentstack_app_base, "https://app.contentstack.com");
        assert_eq!(
            c.cloudflare_api_base,
            "https://api.cloudflare.com/client/v4"
        );
        assert_eq!(c.purge_batch_size, 100);
        assert_eq!(c.purge_batch_for(true), 100);
        assert_eq!(c.purge_batch_for(false), 100);
        assert_eq!(c.retention_seconds, 90 * 86_400);
        assert_eq!(c.cloudflare_plan, CloudflarePlan::Pro);
        assert_eq!(
            c.purge_bucket,
            TokenBucket {
                rate_per_second: 5.0,
                burst: 25.0
            }
        );
        assert_eq!(c.workers_plan, WorkersPlan::Paid);
        assert_eq!(c.subrequest_budget, 900);
        assert_eq!(c.service_ops_budget, 900);
        assert_eq!(c.repurge_delay_seconds, 60);
        assert_eq!(c.progress_timeout_seconds, 900);
        assert_eq!(c.dead_letter_queue, "contentstack-purge-dead-letters");
        assert_eq!(c.public_url, None);
        assert_eq!(c.max_body_bytes, 1_048_576);
        assert_eq!(c.replay_tolerance_seconds, 1200);
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
                c.purge_bucket,
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
        assert_eq!(c.purge_bucket.rate_per_second, 0.5);
        assert_eq!(c.purge_bucket.burst, 50.0);

        let mut r = hmac_only();
        r.push(("CLOUDFLARE_PLAN", json!("free")));
        r.push(("PURGE_BURST", json!(10.0)));
        let c = Config::parse(&raw(&r)).unwrap();
        assert_eq!(c.purge_bucket.rate_per_second, 5.0 / 60.0);
        assert_eq!(c.purge_bucket.burst, 10.0);

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
    fn workers_free_plan_sets_and_caps_the_subrequest_budget() {
        let mut r = hmac_only();
        r.push(("WORKERS_PLAN", json!("free")));
        let c = Config::parse(&raw(&r)).unwrap();
        assert_eq!(c.workers_plan, WorkersPlan::Free);
        assert_eq!(c.subrequest_budget, 45);
        r.push(("SUBREQUEST_BUDGET", json!(50)));
        assert_eq!(Config::parse(&raw(&r)).unwrap().subrequest_budget, 50);
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
        assert_eq!(Config::parse(&raw(&r)).unwrap().subrequest_budget, 9500);
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
        assert_eq!(c.purge_batch_size, 500);
        assert_eq!(c.purge_batch_for(true), 500);
        assert_eq!(c.purge_batch_for(false), 100);
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
        assert_eq!(c.repurge_delay_seconds, 0);
        assert_eq!(c.progress_timeout_seconds, 2);
        assert_eq!(c.service_ops_budget, 1000);
        assert_eq!(c.dead_letter_queue, "my-dlq");
        assert_eq!(c.public_url.as_deref(), Some("https://purge.example.com"));

        let mut r = hmac_only();
        r.push(("LEDGER_RETENTION_DAYS", json!("7")));
        assert_eq!(
            Config::parse(&raw(&r)).unwrap().retention_seconds,
            7 * 86_400
        );
        r.push(("LEDGER_RETENTION_SECONDS", json!(3)));
        assert_eq!(Config::parse(&raw(&r)).unwrap().retention_seconds, 3);
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
        assert_eq!(c.purge_batch_size, 100);
        assert!((c.purge_bucket.rate_per_second - 0.083).abs() < 1e-9);
        assert_eq!(c.max_body_bytes, 2048);
        assert_eq!(c.replay_tolerance_seconds, 600);

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
        assert_eq!(c.api_keys, vec!["blt1", "blt2"]);
        assert!(c.stack_allowed(Some("blt2")));
        assert!(!c.stack_allowed(Some("blt3")));
        assert!(!c.stack_allowed(None));
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
        assert_eq!(c.watched_stacks(), vec!["blt1", "blt2", "blt3"]);
        let mut r = hmac_only();
        r.push(("CONTENTSTACK_API_KEYS", json!("blt2,blt3")));
        r.push(("CONTENTSTACK_MANAGEMENT_TOKENS", json!("{\"blt3\":\"t3\"}")));
        let c = Config::parse(&raw(&r)).unwrap();
        assert_eq!(c.watched_stacks(), vec!["blt3"], "blt2 has no token");
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
            c.management_tokens.for_stack("blt1").unwrap().expose(),
            "tok1"
        );
        assert_eq!(
            c.management_tokens.for_stack("other").unwrap().expose(),
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
        assert_eq!(c.contentstack_api_base, "http://127.0.0.1:8787");
        assert_eq!(c.cloudflare_api_base, "http://127.0.0.1:9000/client/v4");
        let mut r = hmac_only();
        r.push(("CONTENTSTACK_API_BASE", json!("http://127.0.0.1:8787/v3")));
        assert!(Config::parse(&raw(&r)).is_err());
        let mut r = hmac_only();
        r.push(("CONTENTSTACK_APP_BASE", json!("ftp://x")));
        assert!(Config::parse(&raw(&r)).is_err());
    }
}
