//! Contentstack access: which region and hosts the Worker talks to, which stacks it accepts,
//! the management tokens it reads them with, the branch, and how fast it may call.
//!
//! The stack allow-list (`CONTENTSTACK_API_KEYS`) is also what the webhook's RSA check and
//! stack-scoped `ENVIRONMENTS` keys are checked against; those checks span groups and live in
//! [`super::Config::parse`].

use std::collections::BTreeMap;

use serde_json::Value;

use super::raw::{base_url, choice, number, secret, text, RawConfig};
use crate::signature::Secret;

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

    /// `CONTENTSTACK_MANAGEMENT_TOKEN` and `CONTENTSTACK_MANAGEMENT_TOKENS` (a JSON object, or
    /// JSON text of one, from stack API key to token).
    fn parse(raw: &RawConfig, errors: &mut Vec<String>) -> ManagementTokens {
        let mut tokens = ManagementTokens {
            default: secret(raw, "CONTENTSTACK_MANAGEMENT_TOKEN"),
            per_stack: BTreeMap::new(),
        };
        let Some(v) = raw.get("CONTENTSTACK_MANAGEMENT_TOKENS") else {
            return tokens;
        };
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
                            tokens
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
        tokens
    }
}

/// How the Worker reaches Contentstack and which stacks it serves.
#[derive(Debug, Clone)]
pub struct Contentstack {
    pub region: Region,
    /// Management API base (`CONTENTSTACK_API_BASE`, else the region's).
    pub api_base: String,
    /// Host of the public keys (`CONTENTSTACK_APP_BASE`, else the region's).
    pub app_base: String,
    /// The stack allow-list; empty allows every stack.
    pub api_keys: Vec<String>,
    pub management_tokens: ManagementTokens,
    /// `CONTENTSTACK_BRANCH`, unless it is `main`.
    pub branch: Option<String>,
    /// Management API calls per second per stack.
    pub rate_per_second: f64,
}

impl Contentstack {
    /// Reads the `CONTENTSTACK_*` access settings, recording every problem in `errors`.
    pub(super) fn parse(raw: &RawConfig, errors: &mut Vec<String>) -> Contentstack {
        let region = choice(
            raw,
            "CONTENTSTACK_REGION",
            Region::Na,
            Region::parse,
            "na, eu, au, azure-na, azure-eu, gcp-na, gcp-eu",
            errors,
        );
        let api_base = base_url(
            "CONTENTSTACK_API_BASE",
            text(raw, "CONTENTSTACK_API_BASE").unwrap_or_else(|| region.api_base()),
            errors,
            false,
        );
        let app_base = base_url(
            "CONTENTSTACK_APP_BASE",
            text(raw, "CONTENTSTACK_APP_BASE").unwrap_or_else(|| region.app_base()),
            errors,
            false,
        );
        let api_keys = text(raw, "CONTENTSTACK_API_KEYS")
            .map(|s| {
                s.split(',')
                    .map(|k| k.trim().to_string())
                    .filter(|k| !k.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        Contentstack {
            region,
            api_base,
            app_base,
            api_keys,
            management_tokens: ManagementTokens::parse(raw, errors),
            branch: text(raw, "CONTENTSTACK_BRANCH").filter(|b| b != "main"),
            rate_per_second: number(
                raw,
                "CONTENTSTACK_RATE_PER_SECOND",
                10.0f64,
                (0.01, 10.0),
                errors,
            ),
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
