//! "References of an entry / asset": the path to ask, and which referrers an answer holds for
//! one environment and locale (docs/CONTRACT.md, "Reference-aware purge").
//!
//! Choices where the contract is silent:
//! - A referrer counts for an environment and locale when one of its `publish_details`
//!   names that environment uid and locale; a `publish_details` without a locale counts for
//!   the referrer's own `locale`. The version planned is that entry's `version` (else the
//!   referrer's `_version`).
//! - An answer that is not the documented shape holds no referrers (and is logged by the
//!   caller); a referrer without `entry_uid` or `content_type_uid` is passed over.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::encode;
use crate::plan::{ItemType, PlanItem};

/// One entry to look up: an entry (type, uid, locale) or an asset.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Subject {
    pub item_type: ItemType,
    /// Entries only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    pub uid: String,
    /// The publish locale (for an asset, the job item's publish locale).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locale: Option<String>,
}

impl Subject {
    /// The subject a job item (or a planned referrer) stands for.
    pub fn of(item: &PlanItem) -> Subject {
        Subject {
            item_type: item.item_type,
            content_type: match item.item_type {
                ItemType::Entry => item.content_type.clone(),
                ItemType::Asset => None,
            },
            uid: item.uid.clone(),
            locale: item.locale.clone(),
        }
    }

    /// What identifies it among a job's look-ups: type, uid and locale.
    pub fn key(&self) -> String {
        format!(
            "{}\u{1f}{}\u{1f}{}",
            self.item_type.as_str(),
            self.uid,
            self.locale.as_deref().unwrap_or("")
        )
    }

    /// The references path: entries by content type and locale; assets without a locale.
    pub fn path(&self) -> Option<String> {
        match self.item_type {
            ItemType::Entry => {
                let ct = self.content_type.as_deref()?;
                let mut p = format!(
                    "/v3/content_types/{}/entries/{}/references?include_publish_details=true",
                    encode(ct),
                    encode(&self.uid)
                );
                if let Some(l) = &self.locale {
                    p.push_str("&locale=");
                    p.push_str(&encode(l));
                }
                Some(p)
            }
            ItemType::Asset => Some(format!(
                "/v3/assets/{}/references?include_publish_details=true",
                encode(&self.uid)
            )),
        }
    }
}

/// A referrer published to one environment and locale, to be planned like a job item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Referrer {
    pub content_type: String,
    pub uid: String,
    pub locale: String,
    /// The published version (the matching `publish_details[].version`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
}

impl Referrer {
    /// The referrer as a plan item of `environment_uid` (URL unknown yet).
    pub fn item(&self, environment_uid: &str) -> PlanItem {
        PlanItem {
            uid: self.uid.clone(),
            item_type: ItemType::Entry,
            locale: Some(self.locale.clone()),
            content_type: Some(self.content_type.clone()),
            version: self.version,
            environment_uid: environment_uid.to_string(),
            success: true,
            url: None,
        }
    }

    /// The referrer as the next subject to look up (depth > 1).
    pub fn subject(&self) -> Subject {
        Subject {
            item_type: ItemType::Entry,
            content_type: Some(self.content_type.clone()),
            uid: self.uid.clone(),
            locale: Some(self.locale.clone()),
        }
    }
}

fn text<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str).filter(|s| !s.is_empty())
}

/// The referrers in an answer that are published to `environment_uid` in `locale` (any
/// locale when `None`), each once, in answer order. `Err` when the answer is not the
/// documented shape.
pub fn published_referrers(
    answer: &Value,
    environment_uid: &str,
    locale: Option<&str>,
) -> Result<Vec<Referrer>, String> {
    let list = answer
        .get("references")
        .and_then(Value::as_array)
        .ok_or("the answer has no \"references\" list")?;
    let mut out: Vec<Referrer> = Vec::new();
    for r in list {
        let (Some(uid), Some(ct)) = (text(r, "entry_uid"), text(r, "content_type_uid")) else {
            continue;
        };
        let own_locale = text(r, "locale");
        let details = r
            .get("publish_details")
            .map(|d| match d {
                Value::Array(a) => a.iter().collect::<Vec<_>>(),
                one @ Value::Object(_) => vec![one],
                _ => Vec::new(),
            })
            .unwrap_or_default();
        for d in details {
            if text(d, "environment") != Some(environment_uid) {
                continue;
            }
            let Some(pub_locale) = text(d, "locale").or(own_locale) else {
                continue;
            };
            if locale.is_some_and(|l| l != pub_locale) {
                continue;
            }
            if out.iter().any(|o| o.uid == uid && o.locale == pub_locale) {
                continue;
            }
            out.push(Referrer {
                content_type: ct.to_string(),
                uid: uid.to_string(),
                locale: pub_locale.to_string(),
                version: d
                    .get("version")
                    .and_then(Value::as_u64)
                    .or_else(|| r.get("_version").and_then(Value::as_u64)),
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn answer() -> Value {
        json!({"references": [
            {"entry_uid": "p1", "content_type_uid": "post", "locale": "en-us", "_version": 8,
             "publish_details": [
                {"environment": "prod", "locale": "en-us", "version": 7},
                {"environment": "stage", "locale": "en-us", "version": 8}]},
            {"entry_uid": "p2", "content_type_uid": "post", "locale": "fr-fr", "_version": 3,
             "publish_details": [{"environment": "prod", "locale": "fr-fr", "version": 3}]},
            {"entry_uid": "p3", "content_type_uid": "post", "locale": "en-us", "_version": 2,
             "publish_details": []},
            {"entry_uid": "p4", "content_type_uid": "page", "locale": "en-us", "_version": 5,
             "publish_details": {"environment": "prod", "version": 4}},
            {"content_type_uid": "post"},
            {"entry_uid": "p1", "content_type_uid": "post", "locale": "en-us",
             "publish_details": [{"environment": "prod", "locale": "en-us", "version": 7}]}
        ], "count": 6})
    }

    #[test]
    fn only_referrers_published_to_the_environment_and_locale_are_kept() {
        let got = published_referrers(&answer(), "prod", Some("en-us")).unwrap();
        assert_eq!(
            got,
            vec![
                Referrer {
                    content_type: "post".into(),
                    uid: "p1".into(),
                    locale: "en-us".into(),
                    version: Some(7),
                },
                Referrer {
                    content_type: "page".into(),
                    uid: "p4".into(),
                    locale: "en-us".into(),
                    version: Some(4),
                },
            ],
            "the publish-details version, not _version; p2 is another locale, p3 unpublished"
        );
        let stage = published_referrers(&answer(), "stage", Some("en-us")).unwrap();
        assert_eq!(stage.len(), 1);
        assert_eq!(stage[0].version, Some(8));
        let any = published_referrers(&answer(), "prod", None).unwrap();
        assert_eq!(any.len(), 3);
    }

    #[test]
    fn a_strange_answer_is_an_error_not_a_panic() {
        assert!(published_referrers(&json!({"entries": []}), "prod", None).is_err());
        assert!(
            published_referrers(&json!({"references": [1, "x", null]}), "prod", None)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn paths_encode_and_carry_the_locale_for_entries_only() {
        let e = Subject {
            item_type: ItemType::Entry,
            content_type: Some("blog post".into()),
            uid: "u/1".into(),
            locale: Some("en-us".into()),
        };
        assert_eq!(
            e.path().unwrap(),
            "/v3/content_types/blog%20post/entries/u%2F1/references?include_publish_details=true&locale=en-us"
        );
        let a = Subject {
            item_type: ItemType::Asset,
            content_type: None,
            uid: "a1".into(),
            locale: Some("en-us".into()),
        };
        assert_eq!(
            a.path().unwrap(),
            "/v3/assets/a1/references?include_publish_details=true"
        );
        let no_ct = Subject {
            content_type: None,
            ..e
        };
        assert_eq!(no_ct.path(), None);
    }
}
