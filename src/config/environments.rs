//! `ENVIRONMENTS`, the purge rules: read here as a TOML object or as JSON text of one, and
//! validated by [`crate::rules`], whose messages are reported as they are. An absent or empty
//! value means no rules.
//!
//! What the rules ask of other groups (a Cloudflare token for a `zone_id`, a budget that fits
//! URL look-ups, stacks in the allow-list) is checked across groups in [`super::Config::parse`].

use serde_json::Value;

use super::raw::RawConfig;
use crate::rules::Rules;

/// Reads `ENVIRONMENTS`, recording a problem in `errors` (then no rules are kept).
pub(super) fn parse(raw: &RawConfig, errors: &mut Vec<String>) -> Rules {
    let parsed = match raw.get("ENVIRONMENTS") {
        None => return Rules::default(),
        Some(Value::String(s)) if s.trim().is_empty() => return Rules::default(),
        Some(Value::String(s)) => Rules::from_json_str(s),
        Some(v) => Rules::from_value(v),
    };
    parsed.unwrap_or_else(|e| {
        errors.extend(e.messages());
        Rules::default()
    })
}
