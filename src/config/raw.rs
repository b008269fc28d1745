//! Reading raw values: the helpers every group of settings parses with.
//!
//! Each helper reads one name from the [`RawConfig`], falls back to a default when it is absent
//! (an empty or whitespace-only string counts as absent), and records a secret-free message
//! naming the variable when the value is wrong, so that the groups can go on and report every
//! problem at once.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::signature::Secret;

/// Raw configuration values by name, as the runtime handed them over.
pub type RawConfig = BTreeMap<String, Value>;

/// Reads one raw value as text: strings as they are, numbers and booleans printed.
pub(super) fn text(raw: &RawConfig, name: &str) -> Option<String> {
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
pub(super) fn secret(raw: &RawConfig, name: &str) -> Option<Secret> {
    text(raw, name).map(Secret::new)
}

/// `ADMIN_TOKEN`, the one place it is read. [`super::Config::parse`] keeps it, and the admin
/// API reads it through here on its own: `/api/*` must keep answering (jobs, health, replays)
/// while the rest of the configuration is broken, so that an operator can see what the Worker
/// did.
pub fn admin_token(raw: &RawConfig) -> Option<Secret> {
    secret(raw, "ADMIN_TOKEN")
}

/// A base URL, `scheme://host[:port]` (and `[/path]` when `allow_path`), without a trailing `/`.
pub(super) fn base_url(
    name: &str,
    value: String,
    errors: &mut Vec<String>,
    allow_path: bool,
) -> String {
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

/// A number in `range`, else `default` (with an error recorded when the value is wrong).
pub(super) fn number<T: SettingNumber>(
    raw: &RawConfig,
    name: &str,
    default: T,
    range: (T, T),
    errors: &mut Vec<String>,
) -> T {
    number_why(raw, name, default, range, "", errors)
}

/// [`number`] with a reason appended to the range in the error message.
pub(super) fn number_why<T: SettingNumber>(
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
pub(super) fn number_opt<T: SettingNumber>(
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
pub(super) trait SettingNumber: Copy + PartialOrd {
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
pub(super) fn choice<T: Copy>(
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

/// `true`/`1`/`yes` or `false`/`0`/`no` (any case); absent is `false`.
pub(super) fn boolean(raw: &RawConfig, name: &str, errors: &mut Vec<String>) -> bool {
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
