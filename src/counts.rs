//! The counts a job record carries: Contentstack's item summary and what was purged. A leaf
//! module shared by the Contentstack client, the purge actions and the ledger. Pure.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Contentstack's job summary (`skipped` = its `skip`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobItems {
    pub total: u64,
    pub success: u64,
    pub failed: u64,
    pub skipped: u64,
}

/// What was sent, per docs/CONTRACT.md, "Job record".
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PurgedCounts {
    pub kv_keys: u64,
    pub kv_prefix_keys: u64,
    pub cache_api: u64,
    pub tags: u64,
    pub urls: u64,
    pub prefixes: u64,
    pub hosts: u64,
    pub api_calls: u64,
    /// The Cloudflare part per zone id (docs/CONTRACT.md, "Several zones"): the totals above
    /// are their sums.
    #[serde(default)]
    pub by_zone: BTreeMap<String, ZoneCounts>,
}

/// What was sent to one zone.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZoneCounts {
    pub api_calls: u64,
    pub tags: u64,
    pub urls: u64,
    pub prefixes: u64,
    pub hosts: u64,
}

impl ZoneCounts {
    fn add(&mut self, o: &ZoneCounts) {
        self.api_calls += o.api_calls;
        self.tags += o.tags;
        self.urls += o.urls;
        self.prefixes += o.prefixes;
        self.hosts += o.hosts;
    }
}

impl PurgedCounts {
    pub fn add(&mut self, o: &PurgedCounts) {
        self.kv_keys += o.kv_keys;
        self.kv_prefix_keys += o.kv_prefix_keys;
        self.cache_api += o.cache_api;
        self.tags += o.tags;
        self.urls += o.urls;
        self.prefixes += o.prefixes;
        self.hosts += o.hosts;
        self.api_calls += o.api_calls;
        for (zone, z) in &o.by_zone {
            self.by_zone.entry(zone.clone()).or_default().add(z);
        }
    }

    /// Files this count's Cloudflare part (tags, URLs, prefixes, hosts) under `zone` too.
    pub fn in_zone(mut self, zone: &str) -> PurgedCounts {
        let z = ZoneCounts {
            api_calls: self.api_calls,
            tags: self.tags,
            urls: self.urls,
            prefixes: self.prefixes,
            hosts: self.hosts,
        };
        if z != ZoneCounts::default() {
            self.by_zone.entry(zone.to_string()).or_default().add(&z);
        }
        self
    }
}
