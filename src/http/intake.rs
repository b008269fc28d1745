//! `POST /webhooks/contentstack`: checks, verification, recognition, dedupe and enqueue —
//! answering without waiting for Contentstack or for any purge (docs/ARCHITECTURE.md; docs/CONTRACT.md, "Intake answers" and "Verification").

use worker::{Env, Method, Request, Response};

use crate::budget::Budget;
use crate::config::Config;
use crate::error::AppError;
use crate::event::scope_of;
use crate::event::{self, Recognition};
use crate::http::{is_json_content_type, json, read_capped};
use crate::ledger::client::{accept_op, LedgerClient};
use crate::ledger::dedupe_key;
use crate::ledger::ops::RollbackOp;
use crate::queue::JobMessage;
use crate::runtime::{self, log};

pub async fn handle(mut req: Request, env: &Env) -> Result<Response, AppError> {
    let result = intake(&mut req, env).await;
    if let Err(e) = &result {
        log(
            "rejected",
            serde_json::json!({"status": e.status(), "error": e.code()}),
        );
    }
    result
}

async fn intake(req: &mut Request, env: &Env) -> Result<Response, AppError> {
    if req.method() != Method::Post {
        return Err(AppError::MethodNotAllowed { allow: "POST" });
    }
    let content_type = req.headers().get("content-type").ok().flatten();
    if !is_json_content_type(content_type.as_deref()) {
        return Err(AppError::UnsupportedMediaType);
    }
    let cfg_rc = runtime::config(env);
    let cfg: &Config = match cfg_rc.as_ref() {
        Ok(c) => c,
        Err(_) => {
            return Err(AppError::Misconfigured(
                "see the Worker log for the configuration errors".into(),
            ))
        }
    };
    let raw = read_capped(req, cfg.max_body_bytes).await?;

    // Signatures and auth over the raw bytes.
    let budget = Budget::new(cfg.subrequest_budget, cfg.service_ops_budget);
    let key = if cfg.verifier.needs_public_key() {
        Some(
            super::public_key::public_key(cfg, &budget)
                .await
                .map_err(|e| AppError::Unavailable(format!("cannot verify signatures now: {e}")))?,
        )
    } else {
        None
    };
    let headers = req.headers();
    let lookup = |name: &str| headers.get(name).ok().flatten();
    let outcome = cfg.verifier.verify(&lookup, &raw, key.as_deref())?;

    // JSON, then the replay window, then the stack allow-list.
    let body = event::parse_body(&raw)?;
    let now = runtime::now_ms() / 1000;
    cfg.verifier.check_replay_window(
        &outcome,
        event::triggered_at(&body),
        now,
        cfg.replay_tolerance_seconds,
    )?;
    let api_key = body
        .get("api_key")
        .and_then(|v| v.as_str())
        .map(str::to_string);
    if !cfg.stack_allowed(api_key.as_deref()) {
        return Err(AppError::StackNotAllowed);
    }

    let ev = match event::recognize(&body)? {
        Recognition::NotJob { reason } => {
            log("ignored", serde_json::json!({"reason": reason}));
            return json(
                200,
                &serde_json::json!({"status": "ignored", "reason": reason}),
            );
        }
        Recognition::Job(ev) => ev,
    };
    if let Some(name) = &ev.channel_environment {
        if cfg.rules.rule_for_stack(api_key.as_deref(), name).is_none() {
            let reason = format!("no purge rule for environment {name:?}");
            log(
                "ignored",
                serde_json::json!({"job_id": ev.job_id, "reason": reason}),
            );
            return json(
                200,
                &serde_json::json!({"status": "ignored", "job_id": ev.job_id, "reason": reason}),
            );
        }
    }

    // Record (dedupe) before the 202, then enqueue; undo the record when the queue fails.
    let ledger = LedgerClient::new(env).map_err(unavailable)?;
    let key = dedupe_key(
        api_key.as_deref(),
        &ev.job_id,
        ev.action,
        ev.channel_environment.as_deref(),
    );
    let received_at = runtime::now_iso();
    let answer = ledger
        .accept(accept_op(key.clone(), &ev, received_at, &raw, &body))
        .await
        .map_err(unavailable)?;
    if !answer.accepted {
        log(
            "duplicate",
            serde_json::json!({"job_id": ev.job_id, "action": ev.action.as_str()}),
        );
        return json(
            200,
            &serde_json::json!({"status": "duplicate", "job_id": ev.job_id, "action": ev.action}),
        );
    }
    let mut msg = JobMessage::start(&ev.job_id, ev.action, ev.api_key.clone(), answer.attempt);
    msg.scope = scope_of(ev.channel_environment.as_deref()).to_string();
    if let Err(e) = crate::queue::enqueue(env, &msg, 0).await {
        let rollback = ledger
            .rollback(RollbackOp {
                key: Some(key),
                job_id: ev.job_id.clone(),
                previous: answer.previous,
            })
            .await;
        log(
            "enqueue_failed",
            serde_json::json!({"job_id": ev.job_id, "rolled_back": rollback.is_ok()}),
        );
        return Err(unavailable(e));
    }
    let environments: Vec<&String> = ev.channel_environment.iter().collect();
    log(
        "accepted",
        serde_json::json!({"job_id": ev.job_id, "action": ev.action.as_str(), "environments": environments, "attempt": answer.attempt}),
    );
    json(
        202,
        &serde_json::json!({
            "status": "accepted",
            "job_id": ev.job_id,
            "action": ev.action,
            "environments": environments,
        }),
    )
}

fn unavailable(e: worker::Error) -> AppError {
    log("unavailable", serde_json::json!({"error": e.to_string()}));
    AppError::Unavailable("the job ledger or queue is unavailable; retry later".into())
}
