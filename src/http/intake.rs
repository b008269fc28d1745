//! `POST /webhooks/contentstack`: checks, verification, recognition, dedupe and enqueue —
//! answering without waiting for Contentstack or for any purge (docs/ARCHITECTURE.md; docs/CONTRACT.md, "Intake answers" and "Verification").

use serde_json::Value;
use worker::{Env, Method, Request, Response};

use crate::budget::Budget;
use crate::config::Config;
use crate::error::AppError;
use crate::event::{self, scope_of, Action, Recognition};
use crate::http::{is_json_content_type, json, read_capped};
use crate::ledger::client::{accept_op, JobClient};
use crate::ledger::ops::RollbackOp;
use crate::ledger::{dedupe_key, SOURCE_WEBHOOK};
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
    let raw = read_capped(req, cfg.webhook.max_body_bytes).await?;

    // Signatures and auth over the raw bytes.
    let budget = Budget::new(cfg.pacing.subrequest_budget, cfg.pacing.service_ops_budget);
    let key = if cfg.webhook.verifier.needs_public_key() {
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
    let verified = cfg.webhook.verifier.verify(&lookup, &raw, key.as_deref())?;
    let rsa_valid =
        match &verified.rsa {
            Some(pending) => Some(super::webcrypto::verify_pss(pending, &raw).await.map_err(
                |e| {
                    log("webcrypto_failed", serde_json::json!({"error": e}));
                    AppError::Unavailable("cannot verify signatures now".into())
                },
            )?),
            None => None,
        };
    let outcome = verified.finish(rsa_valid)?;

    // JSON, then the replay window, then the stack allow-list.
    let body = event::parse_body(&raw)?;
    let now = runtime::now_ms() / 1000;
    cfg.webhook.verifier.check_replay_window(
        &outcome,
        event::triggered_at(&body),
        now,
        cfg.webhook.replay_tolerance_seconds,
    )?;
    match take_in(env, cfg, &raw, &body, SOURCE_WEBHOOK).await? {
        TakenIn::Ignored { job_id, reason } => json(
            200,
            &serde_json::json!({"status": "ignored", "job_id": job_id, "reason": reason}),
        ),
        TakenIn::Duplicate { job_id, action } => json(
            200,
            &serde_json::json!({"status": "duplicate", "job_id": job_id, "action": action}),
        ),
        TakenIn::Accepted {
            job_id,
            action,
            environments,
        } => json(
            202,
            &serde_json::json!({
                "status": "accepted",
                "job_id": job_id,
                "action": action,
                "environments": environments,
            }),
        ),
    }
}

/// What taking in a delivery came to.
pub enum TakenIn {
    /// Not a job event, or an environment without a rule.
    Ignored {
        job_id: Option<String>,
        reason: String,
    },
    /// This job, action and environment is already in the ledger.
    Duplicate { job_id: String, action: Action },
    /// Recorded and queued.
    Accepted {
        job_id: String,
        action: Action,
        environments: Vec<String>,
    },
}

/// Takes in a delivery whose authenticity is settled (a verified webhook, or a failed
/// delivery read back from the Management API): the stack allow-list, recognition, the rule
/// for the channel's environment, then the ledger (dedupe) and the queue. `source` goes into a
/// new record.
pub async fn take_in(
    env: &Env,
    cfg: &Config,
    raw: &[u8],
    body: &Value,
    source: &str,
) -> Result<TakenIn, AppError> {
    let api_key = body
        .get("api_key")
        .and_then(|v| v.as_str())
        .map(str::to_string);
    if !cfg.contentstack.stack_allowed(api_key.as_deref()) {
        return Err(AppError::StackNotAllowed);
    }

    let ev = match event::recognize(body)? {
        Recognition::NotJob { reason } => {
            log("ignored", serde_json::json!({"reason": reason}));
            return Ok(TakenIn::Ignored {
                job_id: None,
                reason: reason.to_string(),
            });
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
            return Ok(TakenIn::Ignored {
                job_id: Some(ev.job_id),
                reason,
            });
        }
    }

    // Record (dedupe) before answering, then enqueue; undo the record when the queue fails.
    let ledger = JobClient::new(env, &ev.job_id).map_err(unavailable)?;
    let key = dedupe_key(
        api_key.as_deref(),
        &ev.job_id,
        ev.action,
        ev.channel_environment.as_deref(),
    );
    let received_at = runtime::now_iso();
    let answer = ledger
        .accept(accept_op(key.clone(), &ev, received_at, raw, body, source))
        .await
        .map_err(unavailable)?;
    if !answer.accepted {
        log(
            "duplicate",
            serde_json::json!({"job_id": ev.job_id, "action": ev.action.as_str(), "source": source}),
        );
        return Ok(TakenIn::Duplicate {
            job_id: ev.job_id,
            action: ev.action,
        });
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
    let environments: Vec<String> = ev.channel_environment.iter().cloned().collect();
    log(
        "accepted",
        serde_json::json!({"job_id": ev.job_id, "action": ev.action.as_str(), "environments": environments, "attempt": answer.attempt, "source": source}),
    );
    Ok(TakenIn::Accepted {
        job_id: ev.job_id,
        action: ev.action,
        environments,
    })
}

fn unavailable(e: worker::Error) -> AppError {
    log("unavailable", serde_json::json!({"error": e.to_string()}));
    AppError::Unavailable("the job ledger or queue is unavailable; retry later".into())
}
