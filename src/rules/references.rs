//! The `references` section of a rule: which changed items reach the entries that reference
//! them, and how far (docs/CONTRACT.md, "Reference-aware purge").
//!
//! Choices where the contract is silent:
//! - `content_types` is a list of content type uids (or one string), or `"*"` for every
//!   type; absent means none (only assets, with `assets = true`). An empty or duplicated uid
//!   is an error.
//! - `assets` is a boolean or `"true"`/`"false"`; default `false`.
//! - `depth` is an integer 1–5, default 1. `max_lookups` is an integer 1–100,000, default
//!   1,000 (per job and environment).
//! - A section that looks up nothing (no content types, `assets = false`) is an error, and so
//!   is one in a rule whose `entry` section has no templates: referrers are planned with the
//!   `entry` templates, so they would purge nothing.

use serde::Serialize;
use serde_json::Value;

use super::{integer, kind, opt_bool, section, Path, RulesError};

/// The keys of a `references` section.
const FIELDS: [&str; 4] = ["content_types", "assets", "depth", "max_lookups"];

/// The deepest reference chain followed.
pub const MAX_DEPTH: u8 = 5;
/// The default lookups per job and environment.
pub const DEFAULT_MAX_LOOKUPS: u32 = 1_000;
/// The largest `max_lookups` accepted.
pub const MAX_MAX_LOOKUPS: u32 = 100_000;

/// Which content types' entries are looked up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum ContentTypes {
    /// `"*"`: every content type.
    All(AllTypes),
    /// These content type uids.
    Listed(Vec<String>),
}

/// Serializes as `"*"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AllTypes;

impl Serialize for AllTypes {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(super::WILDCARD)
    }
}

impl ContentTypes {
    pub fn contains(&self, content_type: &str) -> bool {
        match self {
            ContentTypes::All(_) => true,
            ContentTypes::Listed(l) => l.iter().any(|c| c == content_type),
        }
    }

    fn is_empty(&self) -> bool {
        matches!(self, ContentTypes::Listed(l) if l.is_empty())
    }
}

/// A rule's `references` section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct References {
    pub content_types: ContentTypes,
    pub assets: bool,
    /// 1 = direct referrers only.
    pub depth: u8,
    /// Look-ups per job and environment before the job falls back to `on_failure`.
    pub max_lookups: u32,
}

impl References {
    /// Whether a changed job item is looked up: an entry of a listed type, or an asset when
    /// `assets` is on.
    pub fn looks_up(&self, is_asset: bool, content_type: Option<&str>) -> bool {
        if is_asset {
            self.assets
        } else {
            content_type.is_some_and(|c| self.content_types.contains(c))
        }
    }
}

/// Parses `references` (absent or `null` → `None`). `has_entry_templates`: whether the rule's
/// `entry` section plans anything.
pub(super) fn parse(
    path: &Path,
    value: Option<&Value>,
    has_entry_templates: bool,
) -> Result<Option<References>, RulesError> {
    let Some(map) = section(path, value, &FIELDS)? else {
        return Ok(None);
    };
    let content_types = content_types(&path.key("content_types"), map.get("content_types"))?;
    let assets = opt_bool(path, map, "assets")?;
    let depth = integer(&path.key("depth"), map.get("depth"), 1, MAX_DEPTH as u32, 1)? as u8;
    let max_lookups = integer(
        &path.key("max_lookups"),
        map.get("max_lookups"),
        1,
        MAX_MAX_LOOKUPS,
        DEFAULT_MAX_LOOKUPS,
    )?;
    if content_types.is_empty() && !assets {
        return Err(RulesError::at(
            path,
            "looks nothing up: list content_types (or \"*\") or set assets = true",
        ));
    }
    if !has_entry_templates {
        return Err(RulesError::at(
            path,
            "needs an entry section with templates: referrers are purged with the entry templates",
        ));
    }
    Ok(Some(References {
        content_types,
        assets,
        depth,
        max_lookups,
    }))
}

fn content_types(path: &Path, value: Option<&Value>) -> Result<ContentTypes, RulesError> {
    let list: Vec<&Value> = match value {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s)) if s.trim() == super::WILDCARD => {
            return Ok(ContentTypes::All(AllTypes))
        }
        Some(v @ Value::String(_)) => vec![v],
        Some(Value::Array(items)) => items.iter().collect(),
        Some(other) => {
            return Err(RulesError::at(
                path,
                format!(
                    "expected a list of content type uids or \"*\", got {}",
                    kind(other)
                ),
            ))
        }
    };
    if list.len() == 1 && list[0].as_str().map(str::trim) == Some(super::WILDCARD) {
        return Ok(ContentTypes::All(AllTypes));
    }
    let mut uids: Vec<String> = Vec::with_capacity(list.len());
    for (i, v) in list.into_iter().enumerate() {
        let p = path.index(i);
        let Some(s) = v.as_str() else {
            return Err(RulesError::at(
                &p,
                format!("expected a content type uid, got {}", kind(v)),
            ));
        };
        if s.is_empty() || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(RulesError::at(
                &p,
                "a content type uid is not empty and has no whitespace",
            ));
        }
        if s == super::WILDCARD {
            return Err(RulesError::at(
                &p,
                "\"*\" stands alone: write content_types = \"*\"",
            ));
        }
        if uids.iter().any(|u| u == s) {
            return Err(RulesError::at(&p, format!("{s:?} is listed twice")));
        }
        uids.push(s.to_string());
    }
    Ok(ContentTypes::Listed(uids))
}

#[cfg(test)]
mod tests {
    use super::super::Rules;
    use super::*;
    use serde_json::json;

    fn rules(refs: Value) -> Result<Rules, RulesError> {
        Rules::from_value(&json!({"production": {
            "entry": {"tags": ["cs-{uid}"]},
            "references": refs,
        }}))
    }

    fn refs(value: Value) -> References {
        rules(value)
            .unwrap()
            .rule_for("production")
            .unwrap()
            .references
            .clone()
            .unwrap()
    }

    fn error(value: Value) -> String {
        rules(value).unwrap_err().to_string()
    }

    #[test]
    fn the_contracts_example_parses_with_defaults_elsewhere() {
        let r = refs(
            json!({"content_types": ["author", "category"], "assets": true, "depth": 2, "max_lookups": 1000}),
        );
        assert!(r.looks_up(false, Some("author")));
        assert!(!r.looks_up(false, Some("post")));
        assert!(!r.looks_up(false, None));
        assert!(r.looks_up(true, None));
        assert_eq!((r.depth, r.max_lookups), (2, 1000));
        let d = refs(json!({"content_types": "*"}));
        assert!(d.looks_up(false, Some("anything")));
        assert!(!d.looks_up(true, None), "assets default to false");
        assert_eq!((d.depth, d.max_lookups), (1, DEFAULT_MAX_LOOKUPS));
        assert_eq!(
            refs(json!({"content_types": ["*"]})).content_types,
            d.content_types
        );
        assert_eq!(
            serde_json::to_value(&d).unwrap()["content_types"],
            json!("*")
        );
    }

    #[test]
    fn bad_values_name_their_path() {
        for (value, path, needle) in [
            (
                json!({"content_types": ["a"], "depth": 0}),
                "references.depth",
                "1 to 5",
            ),
            (
                json!({"content_types": ["a"], "depth": 6}),
                "references.depth",
                "got 6",
            ),
            (
                json!({"content_types": ["a"], "depth": 1.5}),
                "references.depth",
                "whole number",
            ),
            (
                json!({"content_types": ["a"], "max_lookups": 0}),
                "references.max_lookups",
                "1 to 100000",
            ),
            (
                json!({"content_types": ["a"], "assets": "yes"}),
                "references.assets",
                "true or false",
            ),
            (
                json!({"content_types": ["a", "a"]}),
                "references.content_types[1]",
                "twice",
            ),
            (
                json!({"content_types": [""]}),
                "references.content_types[0]",
                "not empty",
            ),
            (
                json!({"content_types": ["a", "*"]}),
                "references.content_types[1]",
                "stands alone",
            ),
            (
                json!({"content_types": 3}),
                "references.content_types",
                "list of content type",
            ),
            (
                json!({"content_type": ["a"]}),
                "references.content_type",
                "did you mean \"content_types\"",
            ),
            (json!({}), "references", "looks nothing up"),
            (json!("author"), "references", "expected an object"),
        ] {
            let e = error(value.clone());
            assert!(
                e.contains(path) && e.contains(needle),
                "{value}: {e:?} should name {path} and say {needle}"
            );
        }
    }

    #[test]
    fn referrers_need_entry_templates() {
        let e = Rules::from_value(&json!({"production": {
            "asset": {"tags": ["a-{uid}"]},
            "references": {"assets": true},
        }}))
        .unwrap_err()
        .to_string();
        assert!(e.contains("needs an entry section"), "{e}");
    }
}
