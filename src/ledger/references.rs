//! The record's `references` part (docs/CONTRACT.md, "Reference-aware purge"): look-ups made,
//! referrers planned, truncation, and which job item pulled each referrer in. Plain data; the
//! look-up queue itself is the `refs` table ([`super::lookups`]).
//!
//! Choices where the contract is silent:
//! - Counts are kept per environment too (`by_environment`), since `max_lookups` is per job
//!   and environment; the top-level counts are their sums.
//! - `pulled_in` lists the first [`MAX_PULLED_IN`] referrers with the job item that led to
//!   each (`from`) and how far up the chain they were found (`depth`, 1 = direct referrer).
//! - A refused look-up (a 4xx other than 404) is an error on the record and runs the
//!   environment's `on_failure` purge, like truncation: over-purging is safe, staleness is not.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::contentstack::references::Subject;

/// Most `pulled_in` rows kept in a record.
pub const MAX_PULLED_IN: usize = 200;

/// One environment's reference counts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvReferences {
    pub lookups: u64,
    pub referrers: u64,
    pub truncated: bool,
}

/// A referrer planned because of a job item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PulledIn {
    pub environment: String,
    pub content_type: String,
    pub uid: String,
    pub locale: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
    /// 1 = references the job item directly.
    pub depth: u8,
    /// The job item that led to it.
    pub from: Subject,
}

/// The record's `references`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReferenceSummary {
    pub lookups: u64,
    pub referrers: u64,
    pub truncated: bool,
    #[serde(default)]
    pub by_environment: BTreeMap<String, EnvReferences>,
    #[serde(default)]
    pub pulled_in: Vec<PulledIn>,
    /// Environments whose `on_failure` purge is due (truncated or refused) and not yet stored.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub on_failure_pending: Vec<String>,
}

impl ReferenceSummary {
    pub fn env(&mut self, env: &str) -> &mut EnvReferences {
        self.by_environment.entry(env.to_string()).or_default()
    }

    /// Counts one look-up made for `env`.
    pub fn looked_up(&mut self, env: &str) {
        self.lookups += 1;
        self.env(env).lookups += 1;
    }

    /// Counts one referrer planned for `env`, listed while there is room.
    pub fn planned(&mut self, row: PulledIn) {
        self.referrers += 1;
        self.env(&row.environment).referrers += 1;
        if self.pulled_in.len() < MAX_PULLED_IN {
            self.pulled_in.push(row);
        }
    }

    /// Marks `env` truncated (past `max_lookups`): its `on_failure` purge is due.
    pub fn truncate(&mut self, env: &str) {
        self.truncated = true;
        self.env(env).truncated = true;
        self.fall_back(env);
    }

    /// The `on_failure` purge of `env` is due (once).
    pub fn fall_back(&mut self, env: &str) {
        if !self.on_failure_pending.iter().any(|e| e == env) {
            self.on_failure_pending.push(env.to_string());
        }
    }

    /// The pipeline stored these environments' `on_failure` purges.
    pub fn fell_back(&mut self, envs: &[String]) {
        self.on_failure_pending.retain(|e| !envs.contains(e));
    }

    /// Look-ups `env` may still make under `max_lookups`, with `in_flight` claimed already.
    pub fn allowance(&self, env: &str, max_lookups: u32, in_flight: u64) -> u64 {
        let made = self.by_environment.get(env).map_or(0, |e| e.lookups);
        (max_lookups as u64).saturating_sub(made + in_flight)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::ItemType;

    fn row(env: &str, uid: &str) -> PulledIn {
        PulledIn {
            environment: env.into(),
            content_type: "post".into(),
            uid: uid.into(),
            locale: "en-us".into(),
            version: Some(2),
            depth: 1,
            from: Subject {
                item_type: ItemType::Entry,
                content_type: Some("author".into()),
                uid: "a1".into(),
                locale: Some("en-us".into()),
            },
        }
    }

    #[test]
    fn counts_sum_environments_and_the_list_is_capped() {
        let mut r = ReferenceSummary::default();
        r.looked_up("production");
        r.looked_up("staging");
        for n in 0..(MAX_PULLED_IN + 5) {
            r.planned(row("production", &format!("p{n}")));
        }
        assert_eq!((r.lookups, r.referrers), (2, MAX_PULLED_IN as u64 + 5));
        assert_eq!(r.pulled_in.len(), MAX_PULLED_IN);
        assert_eq!(r.by_environment["staging"].lookups, 1);
        assert_eq!(r.allowance("production", 3, 1), 1);
        assert_eq!(r.allowance("production", 1, 1), 0);
        assert_eq!(r.allowance("preview", 2, 0), 2);
    }

    #[test]
    fn truncation_asks_for_on_failure_once_until_stored() {
        let mut r = ReferenceSummary::default();
        r.truncate("production");
        r.fall_back("production");
        assert!(r.truncated && r.by_environment["production"].truncated);
        assert_eq!(r.on_failure_pending, vec!["production"]);
        r.fell_back(&["production".to_string()]);
        assert!(r.on_failure_pending.is_empty());
        assert!(r.truncated, "the record still says it was truncated");
    }
}
