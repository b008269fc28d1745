//! `rules::Rules` and `config::Config::parse` on arbitrary JSON-ish bytes.
//!
//! The input text is used three ways:
//! - as `ENVIRONMENTS` text for `Rules::from_json_str`;
//! - as the `ENVIRONMENTS` string of an otherwise valid configuration (HMAC verification,
//!   canary secrets), passed to `Config::parse`;
//! - as a whole raw configuration: a JSON object is used as the name → value map (the
//!   way wrangler hands TOML vars over), anything else is read as `NAME=value` lines.
//!
//! Checks:
//! 1. Nothing panics.
//! 2. Parsed rules serialize (as the admin view shows them) to JSON that parses back to
//!    the same rules.
//! 3. `Config::parse` errors always carry at least one message, and no message contains a
//!    canary secret unless the input itself contains it.
//! 4. A configuration that parses with rules has the same rules as `Rules` parsed alone.
#![no_main]

use contentstack_edge_purge::config::{Config, RawConfig};
use contentstack_edge_purge::rules::Rules;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

const CANARIES: [&str; 4] = [
    "canary-hmac-5b1f0e27",
    "canary-cftoken-93ad41c8",
    "canary-admin-0c7e22f9",
    "canary-password-6e14aa3d",
];

fn check_errors(
    result: &Result<Config, contentstack_edge_purge::config::ConfigError>,
    input: &str,
) {
    if let Err(e) = result {
        assert!(!e.0.is_empty(), "Config::parse failed with no message");
        let msg = e.to_string();
        for c in CANARIES {
            if !input.contains(c) {
                assert!(!msg.contains(c), "secret {c} leaked into: {msg}");
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);

    // Rules alone.
    let rules = Rules::from_json_str(&text);
    if let Ok(rules) = &rules {
        let json = serde_json::to_value(rules).expect("rules serialize");
        let back = Rules::from_value(&json)
            .unwrap_or_else(|e| panic!("serialized rules do not parse back: {e}\n{json}"));
        assert_eq!(
            &back, rules,
            "rules changed after a round trip through JSON"
        );
        // Every key is reachable: a plain key by its environment name, a stack-scoped key
        // ("<api_key>/<environment>" or "<api_key>/*") for its stack.
        for name in rules.names() {
            let found = match name.split_once('/') {
                Some((api_key, "*")) => rules.rule_for_stack(Some(api_key), "any-environment"),
                Some((api_key, env)) => rules.rule_for_stack(Some(api_key), env),
                None => rules.rule_for(name),
            };
            assert!(found.is_some(), "no rule reachable for key {name:?}");
        }
    } else if let Err(e) = &rules {
        assert!(!e.to_string().is_empty());
        assert!(!e.path().is_empty());
    }

    // The text as ENVIRONMENTS in an otherwise valid configuration.
    let mut raw = RawConfig::new();
    let s = |v: &str| Value::String(v.to_owned());
    raw.insert("WEBHOOK_VERIFY".into(), s("hmac, basic"));
    raw.insert("CONTENTSTACK_HMAC_SECRETS".into(), s(CANARIES[0]));
    raw.insert("CLOUDFLARE_API_TOKEN".into(), s(CANARIES[1]));
    raw.insert("ADMIN_TOKEN".into(), s(CANARIES[2]));
    raw.insert(
        "WEBHOOK_BASIC_AUTH".into(),
        s(&format!("contentstack:{}", CANARIES[3])),
    );
    raw.insert("ENVIRONMENTS".into(), s(&text));
    let parsed = Config::parse(&raw);
    check_errors(&parsed, &text);
    if let (Ok(cfg), Ok(rules)) = (&parsed, &rules) {
        assert_eq!(&cfg.rules, rules, "Config::parse and Rules disagree");
    }
    if text.trim().is_empty() {
        assert!(parsed.is_ok(), "empty ENVIRONMENTS rejected");
    }

    // The text as a whole raw configuration.
    let mut raw = RawConfig::new();
    match serde_json::from_str::<Value>(&text) {
        Ok(Value::Object(map)) => raw.extend(map),
        _ => {
            for line in text.lines() {
                if let Some((k, v)) = line.split_once('=') {
                    raw.insert(k.trim().to_owned(), Value::String(v.to_owned()));
                }
            }
        }
    }
    let parsed = Config::parse(&raw);
    check_errors(&parsed, &text);
    if let Ok(cfg) = parsed {
        let _ = cfg.contentstack.stack_allowed(Some("blt0123456789abcdef"));
        let _ = cfg.contentstack.stack_allowed(None);
        let _ = cfg.contentstack.management_tokens.for_stack("blt0123456789abcdef");
    }
});
