//! The webhook intake: which checks a delivery must pass (`WEBHOOK_VERIFY`) and their secrets
//! and key, how old a delivery may be, and how large its body.
//!
//! The checks are read on their own ([`checks`]) because the RSA check needs the stack
//! allow-list of another group, checked in [`super::Config::parse`] even when the verifier
//! cannot be built from the rest.

use super::raw::{boolean, number, text, RawConfig};
use crate::signature::{self, BasicCredentials, Check, HeaderCheck, Verifier};

/// How a webhook delivery is read and verified.
#[derive(Debug, Clone)]
pub struct Webhook {
    pub verifier: Verifier,
    /// How old (in seconds) a delivery may be.
    pub replay_tolerance_seconds: u64,
    /// Largest body read (webhook deliveries, and replays through the admin API).
    pub max_body_bytes: usize,
}

/// `WEBHOOK_VERIFY`, the checks a delivery must pass; `rsa` when absent or wrong.
pub(super) fn checks(raw: &RawConfig, errors: &mut Vec<String>) -> Vec<Check> {
    match text(raw, "WEBHOOK_VERIFY") {
        None => vec![Check::Rsa],
        Some(s) => signature::parse_checks(&s).unwrap_or_else(|e| {
            errors.push(format!("WEBHOOK_VERIFY: {e}"));
            vec![Check::Rsa]
        }),
    }
}

impl Webhook {
    /// Reads the intake settings for `checks` (from [`checks`]), recording every problem in
    /// `errors`; `None` when the verifier cannot be built (its problem is recorded).
    pub(super) fn parse(
        raw: &RawConfig,
        checks: &[Check],
        errors: &mut Vec<String>,
    ) -> Option<Webhook> {
        let hmac_secrets = text(raw, "CONTENTSTACK_HMAC_SECRETS")
            .map(|s| signature::parse_hmac_secrets(&s))
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
        let allow_unverified = boolean(raw, "ALLOW_UNVERIFIED", errors);
        let public_key_pem = text(raw, "CONTENTSTACK_PUBLIC_KEY").map(|p| p.replace("\\n", "\n"));
        let max_body_bytes = number(
            raw,
            "MAX_BODY_BYTES",
            1_048_576usize,
            (1024, 100 * 1024 * 1024),
            errors,
        );
        let replay_tolerance_seconds = number(
            raw,
            "REPLAY_TOLERANCE_SECONDS",
            1200u64,
            (1, 7 * 24 * 3600),
            errors,
        );
        let verifier = Verifier::new(
            checks.to_vec(),
            hmac_secrets,
            basic,
            header,
            public_key_pem.as_deref(),
            allow_unverified,
        )
        .map_err(|e| errors.push(e.to_string()))
        .ok()?;
        Some(Webhook {
            verifier,
            replay_tolerance_seconds,
            max_body_bytes,
        })
    }
}
