//! `/api/*` for operators: job list and records, replay, the dry-run planner and webhook
//! health. Every call
//! needs `Authorization: Bearer <ADMIN_TOKEN>`; with no token configured the API is absent (404).

use serde::Deserialize;
use serde_json::Value;
use subtle::ConstantTimeEq;
use worker::{Env, Method, Request, Response};

use crate::config::Config;
use crate::error::AppError;
use crate::event::{self, Recognition};
use crate::http::{json, read_capped};
use crate::ledger::client::{IndexClient, JobClient};
use crate::ledger::ops::{ListOp, ReplayOp, RollbackOp};
use crate::pipeline::dry_run::DryRunError;
use crate::pipeline::job_items::stack_key;
use crate::queue::{enqueue, JobMessage};
use crate::runtime::{self, log};

/// Constant-time, length-checked comparison of the presented token.
pub fn token_matches(expected: &str, authorization: Option<&str>) -> bool {
    let Some(h) = authorization else { return false };
    let h = h.trim();
    let Some((scheme, token)) = h.split_once(' ') else {
        return false;
    };
    if !scheme.eq_ignore_ascii_case("bearer") {
        return false;
    }
    let token = token.trim_start().as_bytes();
    let expected = expected.as_bytes();
    token.len() == expected.len() && bool::from(token.ct_eq(expected))
}

pub async fn handle(mut req: Request, env: &Env) -> Result<Response, AppError> {
    // Read apart from the parsed configuration (see `config::admin_token`).
    let Some(token) = crate::config::admin_token(&runtime::raw_config(env)) else {
        return Err(AppError::NotFound);
    };
    let auth = req.headers().get("authorization").ok().flatten();
    if !token_matches(token.expose(), auth.as_deref()) {
        return Err(AppError::Unauthorized);
    }
    let path = req.path();
    let parts: Vec<&str> = path.trim_start_matches("/api/").split('/').collect();
    let method = req.method();
    match (method.clone(), parts.as_slice()) {
        (Method::Get, ["jobs"]) => list(&req, env).await,
        (Method::Get, ["jobs", id]) => get(env, &decode_segment(id)?).await,
        (Method::Post, ["jobs", id, "replay"]) => replay(env, &decode_segment(id)?).await,
        (Method::Post, ["plan"]) => dry_run(&mut req, env).await,
        (Method::Get, ["health"]) => health(env).await,
        (_, ["health"]) => Err(AppError::MethodNotAllowed { allow: "GET" }),
        (_, ["jobs"]) | (_, ["jobs", _]) => Err(AppError::MethodNotAllowed { allow: "GET" }),
        (_, ["jobs", _, "replay"]) | (_, ["plan"]) => {
            Err(AppError::MethodNotAllowed { allow: "POST" })
        }
        _ => Err(AppError::NotFound),
    }
}

/// Percent-decodes a path segment (job ids are plain, but be exact).
fn decode_segment(seg: &str) -> Result<String, AppError> {
    let bytes = seg.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).map_err(|_| AppError::NotFound)?;
            let b = u8::from_str_radix(hex, 16).map_err(|_| AppError::NotFound)?;
            out.push(b);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    let s = String::from_utf8(out).map_err(|_| AppError::NotFound)?;
    if s.is_empty() || s.len() > 256 {
        return Err(AppError::NotFound);
    }
    Ok(s)
}

fn job(env: &Env, job_id: &str) -> Result<JobClient, AppError> {
    JobClient::new(env, job_id).map_err(|e| AppError::Unavailable(format!("ledger: {e}")))
}

fn index(env: &Env) -> Result<IndexClient, AppError> {
    IndexClient::new(env).map_err(|e| AppError::Unavailable(format!("ledger: {e}")))
}

/// Unfinished jobs of a list page read live from their own objects (the index's copy is as
/// of their last status change); the rest of the page keeps the index's copy.
const LIVE_PER_PAGE: usize = 10;

#[derive(Deserialize, Default)]
struct ListQuery {
    limit: Option<String>,
    cursor: Option<String>,
}

async fn list(req: &Request, env: &Env) -> Result<Response, AppError> {
    let q: ListQuery = req.query().unwrap_or_default();
    let limit = match q.limit {
        None => 50,
        Some(l) => l
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=200).contains(n))
            .ok_or_else(|| AppError::BadRequest("limit must be 1–200".into()))?,
    };
    let cursor = match q.cursor.filter(|c| !c.is_empty()) {
        None => None,
        Some(c) => Some(
            c.parse::<i64>()
                .map_err(|_| AppError::BadRequest("bad cursor".into()))?,
        ),
    };
    let mut v = index(env)?
        .list(ListOp { limit, cursor })
        .await
        .map_err(|e| AppError::Unavailable(e.to_string()))?;
    refresh_unfinished(env, &mut v.jobs).await;
    json(200, &v)
}

/// Replaces the index's copy of up to [`LIVE_PER_PAGE`] unfinished jobs with their live
/// records, read concurrently; a job whose object does not answer keeps the copy.
async fn refresh_unfinished(env: &Env, jobs: &mut [Value]) {
    let unfinished: Vec<(usize, String)> = jobs
        .iter()
        .enumerate()
        .filter_map(|(n, j)| {
            let status = j.get("status").and_then(Value::as_str)?;
            let running = !matches!(status, "done" | "partial" | "failed");
            let id = j.get("job_id").and_then(Value::as_str)?;
            running.then(|| (n, id.to_string()))
        })
        .take(LIVE_PER_PAGE)
        .collect();
    let reads = unfinished.iter().map(|(_, id)| async move {
        let client = JobClient::new(env, id).ok()?;
        client.get(id).await.ok().flatten()
    });
    let live = futures_util::future::join_all(reads).await;
    for ((n, _), rec) in unfinished.iter().zip(live) {
        if let Some(v) = rec.and_then(|r| serde_json::to_value(r).ok()) {
            jobs[*n] = v;
        }
    }
}

/// Webhook health and what the last check recovered (docs/CONTRACT.md, "Webhook health").
async fn health(env: &Env) -> Result<Response, AppError> {
    let state = index(env)?
        .health()
        .await
        .map_err(|e| AppError::Unavailable(e.to_string()))?;
    json(200, &state.public())
}

async fn get(env: &Env, job_id: &str) -> Result<Response, AppError> {
    match job(env, job_id)?
        .get(job_id)
        .await
        .map_err(|e| AppError::Unavailable(e.to_string()))?
    {
        Some(r) => json(200, &r),
        None => Err(AppError::NotFound),
    }
}

async fn replay(env: &Env, job_id: &str) -> Result<Response, AppError> {
    let l = job(env, job_id)?;
    let answer = l
        .replay(ReplayOp {
            job_id: job_id.to_string(),
            now: runtime::now_iso(),
        })
        .await
        .map_err(|e| AppError::Unavailable(e.to_string()))?
        .ok_or(AppError::NotFound)?;
    let rec = answer.record;
    // One message per delivery scope: each runs again.
    for scope in rec.scopes.keys() {
        let mut msg = JobMessage::start(&rec.job_id, rec.action, rec.api_key.clone(), rec.attempts);
        msg.scope = scope.clone();
        if let Err(e) = enqueue(env, &msg, 0).await {
            if let Err(undo) = l
                .rollback(RollbackOp {
                    key: None,
                    job_id: rec.job_id.clone(),
                    previous: Some(answer.previous.clone()),
                })
                .await
            {
                log(
                    "replay_rollback_failed",
                    serde_json::json!({"job_id": rec.job_id, "error": undo.to_string()}),
                );
            }
            return Err(AppError::Unavailable(format!("queue: {e}")));
        }
    }
    log(
        "replayed",
        serde_json::json!({"job_id": rec.job_id, "attempt": rec.attempts}),
    );
    json(
        202,
        &serde_json::json!({"status": "accepted", "job_id": rec.job_id, "action": rec.action, "attempt": rec.attempts}),
    )
}

/// `POST /api/plan`: the purge plan a job would get, computed from Contentstack's answers and
/// the rules, with nothing purged and nothing recorded.
async fn dry_run(req: &mut Request, env: &Env) -> Result<Response, AppError> {
    let cfg_rc = runtime::config(env);
    let cfg: &Config = cfg_rc
        .as_ref()
        .as_ref()
        .map_err(|e| AppError::Misconfigured(e.to_string()))?;
    let raw = read_capped(req, cfg.webhook.max_body_bytes).await?;
    let body = event::parse_body(&raw)?;
    let (job_id, action, api_key, channel_env, hinted) = match event::recognize(&body)? {
        Recognition::Job(ev) => (
            ev.job_id,
            Some(ev.action),
            body.get("api_key")
                .and_then(Value::as_str)
                .map(str::to_string),
            ev.channel_environment,
            ev.hinted_environments,
        ),
        Recognition::NotJob { reason } => match body.get("job_id").and_then(Value::as_str) {
            Some(id) if !id.is_empty() && id.len() <= 256 => (
                id.to_string(),
                None,
                body.get("api_key")
                    .and_then(Value::as_str)
                    .map(str::to_string),
                body.get("environment")
                    .and_then(Value::as_str)
                    .map(str::to_string),
                Vec::new(),
            ),
            _ => {
                return Err(AppError::BadRequest(format!(
                    "expected a job webhook payload or {{\"job_id\": \"…\"}} ({reason})"
                )))
            }
        },
    };
    if let Some(name) = &channel_env {
        if cfg.rules.rule_for_stack(api_key.as_deref(), name).is_none() {
            return json(
                200,
                &serde_json::json!({"job_id": job_id, "ignored": true, "reason": format!("no purge rule for environment {name:?}")}),
            );
        }
    }
    let msg = JobMessage::start(
        &job_id,
        action.unwrap_or(event::Action::Publish),
        api_key,
        0,
    );
    let api_key = stack_key(cfg, &msg).ok_or_else(|| {
        AppError::BadRequest(
            "name the stack with \"api_key\" (several stacks are configured)".into(),
        )
    })?;
    let answer = crate::pipeline::dry_run::dry_run(
        cfg,
        env,
        &job_id,
        action.unwrap_or(crate::event::Action::Publish),
        &api_key,
        channel_env.as_deref(),
        &hinted,
    )
    .await
    .map_err(|e| match e {
        DryRunError::Stack(message) => AppError::BadRequest(message),
        DryRunError::Failed(e) => AppError::Unavailable(e.message().to_string()),
    })?;
    json(200, &answer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_tokens_compare_exactly_and_scheme_case_insensitively() {
        assert!(token_matches("s3cret", Some("Bearer s3cret")));
        assert!(token_matches("s3cret", Some("bearer s3cret")));
        assert!(token_matches("s3cret", Some("BEARER   s3cret")));
        assert!(!token_matches("s3cret", Some("Bearer S3cret")));
        assert!(!token_matches("s3cret", Some("Bearer s3cre")));
        assert!(!token_matches("s3cret", Some("Bearer s3cretx")));
        assert!(!token_matches("s3cret", Some("Basic s3cret")));
        assert!(!token_matches("s3cret", Some("s3cret")));
        assert!(!token_matches("s3cret", Some("Bearer ")));
        assert!(!token_matches("s3cret", None));
    }

    #[test]
    fn path_segments_decode() {
        assert_eq!(decode_segment("abc-123").unwrap(), "abc-123");
        assert_eq!(decode_segment("a%2Fb").unwrap(), "a/b");
        assert!(decode_segment("").is_err());
        assert!(decode_segment("%ZZ").is_err());
        assert!(decode_segment(&"x".repeat(257)).is_err());
    }
}
