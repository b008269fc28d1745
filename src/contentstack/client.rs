//! The Contentstack Management API client: auth headers, the shared per-stack rate limit,
//! retries (via [`crate::net`]) and a per-isolate cache of each stack's environments.

use std::cell::RefCell;
use std::collections::HashMap;

use serde_json::Value;
use worker::{Env, Method};

use super::{
    batch_path, job_path, lookup_batches, parse_batch_answer, parse_environments, parse_item_url,
    parse_items_page, url_path, BulkJob, ItemsPage,
};
use crate::budget::Budget;
use crate::config::Config;
use crate::net::{self, Call, NetError, Pacing};
use crate::pace::Pace;
use crate::plan::{ItemType, PlanEnvironment, PlanItem};
use crate::runtime::{log, now_ms};

/// How long a stack's environment list is reused.
const ENV_CACHE_MS: i64 = 5 * 60 * 1000;

thread_local! {
    static ENVS: RefCell<HashMap<String, (i64, Vec<PlanEnvironment>)>> = RefCell::new(HashMap::new());
}

pub struct Client<'a> {
    cfg: &'a Config,
    env: &'a Env,
    budget: &'a Budget,
    api_key: String,
    token: String,
    /// The job's branch (job status `body.branch`), else `CONTENTSTACK_BRANCH`.
    branch: Option<String>,
    /// The batched look-up was refused once: look items up singly from then on.
    queries_refused: std::cell::Cell<bool>,
    /// Its waits for a start give way when the invocation hands on ([`Client::give_way`]).
    gives_way: std::cell::Cell<bool>,
}

impl<'a> Client<'a> {
    /// A client for one stack; fails when no management token is configured for it.
    pub fn new(
        cfg: &'a Config,
        env: &'a Env,
        budget: &'a Budget,
        api_key: &str,
    ) -> Result<Self, NetError> {
        let token = cfg
            .contentstack.management_tokens
            .for_stack(api_key)
            .ok_or_else(|| {
                NetError::Config(format!(
                    "no management token configured for stack {api_key} (CONTENTSTACK_MANAGEMENT_TOKEN or CONTENTSTACK_MANAGEMENT_TOKENS)"
                ))
            })?
            .expose()
            .to_string();
        Ok(Client {
            cfg,
            env,
            budget,
            api_key: api_key.to_string(),
            token,
            branch: cfg.contentstack.branch.clone(),
            queries_refused: std::cell::Cell::new(false),
            gives_way: std::cell::Cell::new(false),
        })
    }

    /// From now on, this client's waits for a start give way when the invocation is asked to
    /// hand on (`Budget::hand_on`): a call then fails with `NetError::HandOn` before it is sent.
    /// A step turns it on once it has made progress (a page read), so that a fresh invocation
    /// always reads before it can give way again.
    pub fn give_way(&self) {
        self.gives_way.set(true);
    }

    /// The same client sending `branch` (the job's) instead of `CONTENTSTACK_BRANCH`.
    pub fn with_branch(mut self, branch: Option<String>) -> Self {
        if let Some(b) = branch.filter(|b| !b.is_empty()) {
            self.branch = Some(b);
        }
        self
    }

    fn pacing(&self) -> Pacing<'a> {
        Pacing {
            env: self.env,
            key: format!("contentstack:{}", self.api_key),
            pace: Pace::Window {
                rate_per_second: self.cfg.contentstack.rate_per_second,
            },
            upcoming: std::cell::Cell::new(1),
            gives_way: self.gives_way.get(),
        }
    }

    /// GET a path; `Ok(None)` for 404.
    async fn get(&self, what: &str, path: &str) -> Result<Option<Value>, NetError> {
        let mut headers = vec![
            ("api_key", self.api_key.clone()),
            ("authorization", self.token.clone()),
            ("api_version", "3.2".to_string()),
            ("accept", "application/json".to_string()),
        ];
        if let Some(b) = &self.branch {
            headers.push(("branch", b.clone()));
        }
        let call = Call {
            what,
            method: Method::Get,
            url: format!("{}{}", self.cfg.contentstack.api_base, path),
            headers,
            body: None,
            timeout_ms: self.cfg.pacing.http_timeout_ms,
            rate_limited: None,
        };
        let a = net::send(&call, Some(&self.pacing()), self.budget).await?;
        match a.status {
            200 => serde_json::from_slice(&a.body)
                .map(Some)
                .map_err(|e| NetError::Other(format!("{what}: answer is not JSON: {e}"))),
            404 => Ok(None),
            s => Err(NetError::Rejected {
                what: what.to_string(),
                status: s,
                detail: net::describe_body(&a.body),
            }),
        }
    }

    /// One page of the stack's webhooks (docs/CONTRACT.md, "Webhook health").
    pub async fn webhooks_page(&self, skip: u64) -> Result<Value, NetError> {
        let path = crate::webhook_health::webhooks_path(skip);
        Ok(self.get("webhooks", &path).await?.unwrap_or(Value::Null))
    }

    /// One page of a webhook's executions between two ISO times.
    pub async fn executions_page(
        &self,
        webhook_uid: &str,
        from: &str,
        to: &str,
        skip: u64,
    ) -> Result<Value, NetError> {
        let path = crate::webhook_health::executions_path(webhook_uid, from, to, skip);
        Ok(self
            .get("webhook executions", &path)
            .await?
            .unwrap_or(Value::Null))
    }

    /// The job status API.
    pub async fn job_status(&self, job_id: &str) -> Result<BulkJob, NetError> {
        let v = self
            .get("job status", &job_path(job_id))
            .await?
            .ok_or_else(|| NetError::Rejected {
                what: "job status".into(),
                status: 404,
                detail: format!("Contentstack does not know job {job_id}"),
            })?;
        serde_json::from_value(v).map_err(|e| NetError::Other(format!("job status: {e}")))
    }

    /// One page of successful job items.
    pub async fn items_page(&self, job_id: &str, skip: u64) -> Result<ItemsPage, NetError> {
        let v = self
            .get("job items", &super::items_path(job_id, skip))
            .await?
            .ok_or_else(|| NetError::Rejected {
                what: "job items".into(),
                status: 404,
                detail: format!("no items for job {job_id}"),
            })?;
        parse_items_page(&v).map_err(|e| NetError::Other(format!("job items: {e}")))
    }

    /// The stack's environments (cached per isolate for five minutes).
    pub async fn environments(&self) -> Result<Vec<PlanEnvironment>, NetError> {
        let now = now_ms();
        if let Some(envs) = ENVS.with(|c| {
            c.borrow()
                .get(&self.api_key)
                .filter(|(at, _)| now - at < ENV_CACHE_MS)
                .map(|(_, e)| e.clone())
        }) {
            return Ok(envs);
        }
        let v = self
            .get("environments", "/v3/environments")
            .await?
            .unwrap_or(Value::Null);
        let envs = parse_environments(&v).map_err(NetError::Other)?;
        ENVS.with(|c| {
            c.borrow_mut()
                .insert(self.api_key.clone(), (now, envs.clone()))
        });
        Ok(envs)
    }

    /// The entries that reference `subject` (`Ok(None)` when Contentstack does not know it).
    pub async fn references(
        &self,
        subject: &super::references::Subject,
    ) -> Result<Option<Value>, NetError> {
        let Some(path) = subject.path() else {
            return Ok(None);
        };
        self.get("references", &path).await
    }

    /// Fills in each item's `url`: one query per content type and locale (assets together), at
    /// most 100 uids each. An item whose job version is not the latest the query answers is
    /// fetched singly at its version, so the URL the job published is the one purged. When the
    /// query form is refused (4xx), every later item of this client is looked up singly, and
    /// that is logged once. Items whose entry or asset is gone keep no url and show up as
    /// skipped templates.
    pub async fn resolve_urls(&self, items: &mut [PlanItem]) -> Result<(), NetError> {
        // Items a batch answered (with or without a url): no single look-up for them.
        let mut answered = vec![false; items.len()];
        if !self.queries_refused.get() {
            for batch in lookup_batches(items) {
                let answer = match self.get("item urls", &batch_path(&batch)).await {
                    Ok(Some(v)) => parse_batch_answer(batch.item_type, &v),
                    Ok(None) | Err(NetError::Rejected { .. }) => {
                        self.queries_refused.set(true);
                        log(
                            "batched_lookups_refused",
                            serde_json::json!({"api_key": self.api_key, "fallback": "one look-up per item"}),
                        );
                        break;
                    }
                    Err(e) => return Err(e),
                };
                for (item, done) in items.iter_mut().zip(answered.iter_mut()) {
                    let in_batch = item.success
                        && item.url.is_none()
                        && item.item_type == batch.item_type
                        && item.content_type == batch.content_type
                        && (batch.item_type == ItemType::Asset || item.locale == batch.locale)
                        && batch.uids.contains(&item.uid);
                    match answer.get(&item.uid) {
                        // The latest version is the one the job published (or the job names none).
                        Some((url, latest))
                            if in_batch && (item.version.is_none() || *latest == item.version) =>
                        {
                            item.url = url.clone();
                            *done = true;
                        }
                        // Another version, or not answered: fetched singly below.
                        _ => {}
                    }
                }
            }
        }
        for (item, done) in items.iter_mut().zip(answered) {
            if done || !item.success || item.url.is_some() {
                continue;
            }
            let Some(path) = url_path(item) else { continue };
            if let Some(v) = self.get("item url", &path).await? {
                item.url = parse_item_url(item.item_type, &v);
            }
        }
        Ok(())
    }
}
