//! The counts a job record carries: Contentstack's item summary and what was purged. A leaf
//! module shared by the Contentstack client, the purge actions and the ledger. Pure.

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
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PurgedCounts {
    pub kv_keys: u64,
    pub kv_prefix_keys: u64,
    pub cache_api: u64,
    pub tags: u64,
    pub urls: u64,
    pub prefixes: u64,
    pub hosts: u64,
    pub api_calls: u64,
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
    }
}
