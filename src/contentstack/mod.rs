//! Contentstack Management API: answer shapes (lenient, since Contentstack documents them only
//! in part), their mapping to planner inputs, and the paths the client calls. The client that
//! performs the calls is in [`client`].

pub mod client;
pub mod references;

use serde::Deserialize;
use serde_json::Value;

use crate::counts::JobItems;
use crate::plan::{ItemType, PlanEnvironment, PlanItem};

/// Items per page of the job items API (its maximum).
pub const PAGE_SIZE: u64 = 100;
/// Upper bound on pages read for one job, whatever `total_count` says.
pub const MAX_PAGES: u64 = 2_000;

/// `GET /v3/bulk/jobs/{job_id}`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct BulkJob {
    #[serde(default)]
    pub uid: Option<String>,
    #[serde(default)]
    pub action: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub body: JobBody,
    #[serde(default)]
    pub summary: Summary,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct JobBody {
    #[serde(default)]
    pub branch: Option<String>,
    #[serde(default)]
    pub locales: Vec<String>,
    #[serde(default)]
    pub environments: Vec<String>,
}

#[derive(Debug, Clone, Copy, Default, Deserialize)]
pub struct Summary {
    #[serde(default)]
    pub skip: u64,
    #[serde(default)]
    pub success: u64,
    #[serde(default)]
    pub total_processed: u64,
    #[serde(default)]
    pub unsuccess: u64,
}

impl Summary {
    /// The record's `items`, mirroring the summary (`skipped` = `skip`).
    pub fn counts(&self) -> JobItems {
        JobItems {
            total: self.total_processed,
            success: self.success,
            failed: self.unsuccess,
            skipped: self.skip,
        }
    }
}

/// One page of `GET /v3/bulk/jobs/{job_id}/items`.
#[derive(Debug, Clone, Default)]
pub struct ItemsPage {
    pub items: Vec<PlanItem>,
    /// How many raw items the page held (including ones that could not be read).
    pub raw_len: usize,
    pub total_count: Option<u64>,
    /// Items that had no uid or type and were passed over.
    pub unreadable: usize,
}

fn str_at<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str).filter(|s| !s.is_empty())
}

/// Reads one job item leniently; `None` when it has no uid or no known type.
pub fn parse_item(v: &Value) -> Option<PlanItem> {
    let uid = str_at(v, "uid")?.to_string();
    let item_type = match str_at(v, "type")? {
        "entry" => ItemType::Entry,
        "asset" => ItemType::Asset,
        _ => return None,
    };
    let locale = str_at(v, "publish_locale")
        .or_else(|| str_at(v, "locale"))
        .map(str::to_string);
    let content_type = match v.get("content_type") {
        Some(Value::Object(o)) => o.get("uid").and_then(Value::as_str).map(str::to_string),
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        _ => str_at(v, "content_type_uid").map(str::to_string),
    };
    let version = v
        .get("version")
        .or_else(|| v.get("_version"))
        .and_then(|x| {
            x.as_u64()
                .or_else(|| x.as_str().and_then(|s| s.parse().ok()))
        });
    let environment_uid = str_at(v, "environment").unwrap_or_default().to_string();
    let success = v
        .get("publish_details")
        .and_then(|p| p.get("status"))
        .and_then(Value::as_str)
        .map(|s| s.eq_ignore_ascii_case("success"))
        .unwrap_or(false);
    Some(PlanItem {
        uid,
        item_type,
        locale,
        content_type,
        version,
        environment_uid,
        success,
        url: None,
    })
}

/// Reads a job items page.
pub fn parse_items_page(v: &Value) -> Result<ItemsPage, String> {
    let raw = v
        .get("items")
        .and_then(Value::as_array)
        .ok_or_else(|| "job items answer has no items array".to_string())?;
    let mut page = ItemsPage {
        raw_len: raw.len(),
        total_count: v.get("total_count").and_then(Value::as_u64),
        ..Default::default()
    };
    for it in raw {
        match parse_item(it) {
            Some(i) => page.items.push(i),
            None => page.unreadable += 1,
        }
    }
    Ok(page)
}

/// Reads `GET /v3/environments`.
pub fn parse_environments(v: &Value) -> Result<Vec<PlanEnvironment>, String> {
    let list = v
        .get("environments")
        .and_then(Value::as_array)
        .ok_or_else(|| "environments answer has no environments array".to_string())?;
    let mut out = Vec::new();
    for e in list {
        let (Some(name), Some(uid)) = (str_at(e, "name"), str_at(e, "uid")) else {
            continue;
        };
        let mut base_urls = std::collections::BTreeMap::new();
        if let Some(urls) = e.get("urls").and_then(Value::as_array) {
            for u in urls {
                if let Some(url) = str_at(u, "url") {
                    let locale = u.get("locale").and_then(Value::as_str).unwrap_or("");
                    base_urls.insert(locale.to_string(), url.to_string());
                }
            }
        }
        out.push(PlanEnvironment {
            name: name.to_string(),
            uid: uid.to_string(),
            base_urls,
        });
    }
    Ok(out)
}

/// Picks the environments a job works on: the channel's environment when it names one,
/// else the job status API's uids (or, when it lists none, the payload's hints), mapped by
/// uid or name. Returns the environments and the identifiers that matched nothing.
pub fn resolve_environments(
    channel_environment: Option<&str>,
    status_envs: &[String],
    hinted: &[String],
    stack_envs: &[PlanEnvironment],
) -> (Vec<PlanEnvironment>, Vec<String>) {
    let wanted: Vec<String> = match channel_environment {
        Some(name) => vec![name.to_string()],
        None if !status_envs.is_empty() => status_envs.to_vec(),
        None => hinted.to_vec(),
    };
    let mut found: Vec<PlanEnvironment> = Vec::new();
    let mut unknown = Vec::new();
    for w in wanted {
        match stack_envs.iter().find(|e| e.uid == w || e.name == w) {
            Some(e) => {
                if !found.iter().any(|f| f.uid == e.uid) {
                    found.push(e.clone());
                }
            }
            None => unknown.push(w),
        }
    }
    crate::sorted::sort_by(&mut found, |a, b| a.name.cmp(&b.name));
    (found, unknown)
}

/// Percent-encodes one path segment or query value.
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Path of the job status API.
pub fn job_path(job_id: &str) -> String {
    format!("/v3/bulk/jobs/{}", encode(job_id))
}

/// Path of one page of successful job items.
pub fn items_path(job_id: &str, skip: u64) -> String {
    format!(
        "/v3/bulk/jobs/{}/items?include_count=true&skip={skip}&limit={PAGE_SIZE}&status=success",
        encode(job_id)
    )
}

/// Path that answers an item's `url`: the entry at its version and locale, or the asset.
pub fn url_path(item: &PlanItem) -> Option<String> {
    match item.item_type {
        ItemType::Entry => {
            let ct = item.content_type.as_deref()?;
            let mut p = format!(
                "/v3/content_types/{}/entries/{}",
                encode(ct),
                encode(&item.uid)
            );
            let mut q = Vec::new();
            if let Some(v) = item.version {
                q.push(format!("version={v}"));
            }
            if let Some(l) = &item.locale {
                q.push(format!("locale={}", encode(l)));
            }
            if !q.is_empty() {
                p.push('?');
                p.push_str(&q.join("&"));
            }
            Some(p)
        }
        ItemType::Asset => Some(format!("/v3/assets/{}", encode(&item.uid))),
    }
}

/// Reads the `url` from an entry or asset answer.
pub fn parse_item_url(item_type: ItemType, v: &Value) -> Option<String> {
    let key = match item_type {
        ItemType::Entry => "entry",
        ItemType::Asset => "asset",
    };
    v.get(key)
        .and_then(|o| o.get("url"))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// Uids per batched look-up (the entries and assets queries answer at most 100).
pub const LOOKUP_BATCH: usize = 100;

/// Items whose URLs one batched query looks up: entries of one content type and locale, or
/// assets; at most [`LOOKUP_BATCH`] distinct uids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LookupBatch {
    pub item_type: ItemType,
    pub content_type: Option<String>,
    pub locale: Option<String>,
    pub uids: Vec<String>,
}

/// Groups the items that need a URL into batched look-ups, in a stable order, each uid once
/// per group.
pub fn lookup_batches(items: &[PlanItem]) -> Vec<LookupBatch> {
    use std::collections::{BTreeMap, BTreeSet};
    type Key = (u8, Option<String>, Option<String>);
    let mut groups: BTreeMap<Key, BTreeSet<String>> = BTreeMap::new();
    for it in items.iter().filter(|i| i.success && i.url.is_none()) {
        let key = match it.item_type {
            ItemType::Entry => match &it.content_type {
                Some(ct) => (0, Some(ct.clone()), it.locale.clone()),
                None => continue,
            },
            ItemType::Asset => (1, None, None),
        };
        groups.entry(key).or_default().insert(it.uid.clone());
    }
    let mut out = Vec::new();
    for ((t, content_type, locale), uids) in groups {
        let uids: Vec<String> = uids.into_iter().collect();
        for chunk in uids.chunks(LOOKUP_BATCH) {
            out.push(LookupBatch {
                item_type: if t == 0 {
                    ItemType::Entry
                } else {
                    ItemType::Asset
                },
                content_type: content_type.clone(),
                locale: locale.clone(),
                uids: chunk.to_vec(),
            });
        }
    }
    out
}

/// The query path of a batch: `uid` `$in` the batch, latest versions.
pub fn batch_path(b: &LookupBatch) -> String {
    let query = serde_json::json!({"uid": {"$in": b.uids}}).to_string();
    match (&b.item_type, &b.content_type) {
        (ItemType::Entry, Some(ct)) => {
            let mut p = format!(
                "/v3/content_types/{}/entries?query={}&limit={LOOKUP_BATCH}",
                encode(ct),
                encode(&query)
            );
            if let Some(l) = &b.locale {
                p.push_str(&format!("&locale={}", encode(l)));
            }
            p
        }
        _ => format!("/v3/assets?query={}&limit={LOOKUP_BATCH}", encode(&query)),
    }
}

/// What a batch query answered, per uid: the URL (when the item has one) and the version.
pub fn parse_batch_answer(
    item_type: ItemType,
    v: &Value,
) -> std::collections::BTreeMap<String, (Option<String>, Option<u64>)> {
    let key = match item_type {
        ItemType::Entry => "entries",
        ItemType::Asset => "assets",
    };
    let mut out = std::collections::BTreeMap::new();
    for o in v.get(key).and_then(Value::as_array).into_iter().flatten() {
        let Some(uid) = o.get("uid").and_then(Value::as_str) else {
            continue;
        };
        let url = o
            .get("url")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string);
        let version = o.get("_version").and_then(Value::as_u64);
        out.insert(uid.to_string(), (url, version));
    }
    out
}

/// Whether another page must be read after a page of `raw_len` items at `skip`.
/// Only a short page ends the job: `total_count` can disagree with the pages, and trusting a
/// low count would leave content stale (one extra, empty page costs one call).
pub fn has_more(skip: u64, raw_len: usize) -> bool {
    raw_len as u64 >= PAGE_SIZE && (skip / PAGE_SIZE + 1) < MAX_PAGES
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sample_items() -> Value {
        json!({ "items": [
            { "uid": "bltfc507bd97607bb5b", "locale": "", "version": 1, "title": "Headshot.jpg",
              "type": "asset", "publish_details": { "status": "success" }, "publish_locale": "en-us",
              "environment": "blt6c683aa0c6be0dce", "action": "publish" },
            { "uid": "blt212c614af8c395cc", "locale": "en-us", "version": 2, "title": "Mark Twain",
              "type": "entry", "publish_details": { "status": "failed", "failure_reason": "x" },
              "publish_locale": "en-us", "environment": "blt6c683aa0c6be0dce", "action": "publish",
              "content_type": { "uid": "author" } },
            { "title": "no uid", "type": "entry" },
            { "uid": "bltx", "type": "folder" }
          ], "skip": 0, "limit": 100, "total_count": 29 })
    }

    #[test]
    fn items_follow_the_documented_shape() {
        let page = parse_items_page(&sample_items()).unwrap();
        assert_eq!(page.raw_len, 4);
        assert_eq!(page.unreadable, 2);
        assert_eq!(page.total_count, Some(29));
        let asset = &page.items[0];
        assert_eq!(asset.item_type, ItemType::Asset);
        assert_eq!(
            asset.locale.as_deref(),
            Some("en-us"),
            "assets use publish_locale"
        );
        assert!(asset.success);
        assert_eq!(asset.content_type, None);
        let entry = &page.items[1];
        assert_eq!(entry.content_type.as_deref(), Some("author"));
        assert_eq!(entry.version, Some(2));
        assert!(!entry.success);
        assert_eq!(entry.environment_uid, "blt6c683aa0c6be0dce");
        assert!(parse_items_page(&json!({"nope": []})).is_err());
    }

    #[test]
    fn environments_map_names_uids_and_locale_urls() {
        let v = json!({"environments": [
            {"name": "production", "uid": "blt1", "urls": [{"locale": "en-us", "url": "https://www.example.com/"}]},
            {"name": "staging", "uid": "blt2"},
            {"uid": "nameless"}
        ]});
        let envs = parse_environments(&v).unwrap();
        assert_eq!(envs.len(), 2);
        assert_eq!(envs[0].base_urls["en-us"], "https://www.example.com/");
        assert!(envs[1].base_urls.is_empty());
    }

    #[test]
    fn channel_environment_wins_then_status_then_hints() {
        let stack = parse_environments(&json!({"environments": [
            {"name": "production", "uid": "blt1"}, {"name": "staging", "uid": "blt2"}]}))
        .unwrap();
        let (e, u) = resolve_environments(Some("staging"), &["blt1".into()], &[], &stack);
        assert_eq!(
            e.iter().map(|e| e.name.as_str()).collect::<Vec<_>>(),
            ["staging"]
        );
        assert!(u.is_empty());
        let (e, _) =
            resolve_environments(None, &["blt2".into(), "blt1".into()], &["x".into()], &stack);
        assert_eq!(
            e.iter().map(|e| e.name.as_str()).collect::<Vec<_>>(),
            ["production", "staging"]
        );
        let (e, u) = resolve_environments(None, &[], &["production".into(), "gone".into()], &stack);
        assert_eq!(e.len(), 1);
        assert_eq!(u, vec!["gone"]);
    }

    #[test]
    fn paths_are_encoded() {
        assert_eq!(job_path("a/b c"), "/v3/bulk/jobs/a%2Fb%20c");
        assert_eq!(
            items_path("j1", 200),
            "/v3/bulk/jobs/j1/items?include_count=true&skip=200&limit=100&status=success"
        );
        let item = parse_item(&json!({"uid": "e1", "type": "entry", "version": 3,
            "publish_locale": "fr-fr", "content_type": {"uid": "blog"}}))
        .unwrap();
        assert_eq!(
            url_path(&item).unwrap(),
            "/v3/content_types/blog/entries/e1?version=3&locale=fr-fr"
        );
        let no_ct = parse_item(&json!({"uid": "e1", "type": "entry"})).unwrap();
        assert_eq!(url_path(&no_ct), None);
    }

    #[test]
    fn item_urls() {
        assert_eq!(
            parse_item_url(ItemType::Entry, &json!({"entry": {"url": "/blog/hello"}})).as_deref(),
            Some("/blog/hello")
        );
        assert_eq!(
            parse_item_url(ItemType::Entry, &json!({"entry": {"url": ""}})),
            None
        );
        assert_eq!(
            parse_item_url(ItemType::Asset, &json!({"entry": {"url": "x"}})),
            None
        );
    }

    #[test]
    fn paging_stops_only_on_short_pages() {
        assert!(has_more(0, 100));
        assert!(has_more(100, 100));
        assert!(!has_more(200, 50));
        assert!(
            !has_more(0, 40),
            "a short first page ends the job whatever total_count says"
        );
        assert!(!has_more(300, 0));
        assert!(!has_more((MAX_PAGES - 1) * PAGE_SIZE, 100), "bounded");
    }

    fn item(uid: &str, t: ItemType, ct: Option<&str>, locale: Option<&str>) -> PlanItem {
        PlanItem {
            uid: uid.into(),
            item_type: t,
            locale: locale.map(str::to_string),
            content_type: ct.map(str::to_string),
            version: Some(1),
            environment_uid: "e".into(),
            success: true,
            url: None,
        }
    }

    #[test]
    fn look_ups_are_batched_per_content_type_and_locale_at_most_100_uids() {
        let mut items = Vec::new();
        for i in 0..150 {
            items.push(item(
                &format!("b{i:03}"),
                ItemType::Entry,
                Some("blog"),
                Some("en-us"),
            ));
        }
        items.push(item("b000", ItemType::Entry, Some("blog"), Some("en-us")));
        items.push(item("b000", ItemType::Entry, Some("blog"), Some("fr-fr")));
        items.push(item("p1", ItemType::Entry, Some("page"), Some("en-us")));
        items.push(item("a1", ItemType::Asset, None, Some("en-us")));
        items.push(item("a2", ItemType::Asset, None, Some("fr-fr")));
        let mut failed = item("x", ItemType::Entry, Some("blog"), Some("en-us"));
        failed.success = false;
        items.push(failed);
        let b = lookup_batches(&items);
        let shape: Vec<(Option<&str>, Option<&str>, usize)> = b
            .iter()
            .map(|b| (b.content_type.as_deref(), b.locale.as_deref(), b.uids.len()))
            .collect();
        assert_eq!(
            shape,
            vec![
                (Some("blog"), Some("en-us"), 100),
                (Some("blog"), Some("en-us"), 50),
                (Some("blog"), Some("fr-fr"), 1),
                (Some("page"), Some("en-us"), 1),
                (None, None, 2),
            ]
        );
        let p = batch_path(&b[3]);
        assert!(
            p.starts_with("/v3/content_types/page/entries?query="),
            "{p}"
        );
        assert!(p.contains("%24in") && p.ends_with("&locale=en-us"), "{p}");
        assert!(batch_path(&b[4]).starts_with("/v3/assets?query="));
    }

    #[test]
    fn batch_answers_give_url_and_version_per_uid() {
        let v = json!({"entries": [
            {"uid": "b1", "url": "/blog/one", "_version": 3},
            {"uid": "b2", "url": "", "_version": 1},
            {"url": "/no-uid"}
        ]});
        let m = parse_batch_answer(ItemType::Entry, &v);
        assert_eq!(m["b1"], (Some("/blog/one".into()), Some(3)));
        assert_eq!(m["b2"], (None, Some(1)));
        assert_eq!(m.len(), 2);
        assert!(parse_batch_answer(ItemType::Asset, &v).is_empty());
    }
}
