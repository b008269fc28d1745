//! `POST /webhooks/contentstack`: the HTTP part of the intake — method, content type, body
//! cap, verification and the replay window — then [`crate::admission::take_in`] (allow-list,
//! recognition, rule, dedupe, enqueue) and the answer, without waiting for Contentstack or for
//! any purge (docs/ARCHITECTURE.md; docs/CONTRACT.md, "Intake answers" and "Verification").
//! Admission's errors become HTTP errors here ([`AppError`]'s `From<AdmissionError>`), with the
//! status, code and message the contract gives them.

use worker::{Env, Method, Request, Response};

use crate::admission::{take_in, AdmissionError, TakenIn};
use crate::budget::Budget;
use crate::config::Config;
use crate::error::AppError;
use crate::event;
use crate::http::{is_json_content_type, json, read_capped};
use crate::ledger::SOURCE_WEBHOOK;
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
    let (fetches, ops) = cfg.pacing.invocation_budgets();
    let budget = Budget::new(fetches, ops);
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

/// An admission failure as the webhook's answer: 403 `stack_not_allowed`, 400 with the event's
/// code, or 503 `unavailable` (docs/CONTRACT.md, "Intake answers").
impl From<AdmissionError> for AppError {
    fn from(e: AdmissionError) -> Self {
        match e {
            AdmissionError::StackNotAllowed => AppError::StackNotAllowed,
            AdmissionError::Event(e) => AppError::Event(e),
            AdmissionError::Unavailable => AppError::Unavailable(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::EventError;

    #[test]
    fn admission_errors_answer_as_before() {
        let cases = [
            (AdmissionError::StackNotAllowed, 403, "stack_not_allowed"),
            (
                AdmissionError::Event(EventError::MissingJobId),
                400,
                "missing_job_id",
            ),
            (
                AdmissionError::Event(EventError::InvalidJobId),
                400,
                "invalid_job_id",
            ),
            (AdmissionError::Unavailable, 503, "unavailable"),
        ];
        for (err, status, code) in cases {
            let message = err.to_string();
            let answer = AppError::from(err.clone());
            assert_eq!(answer.status(), status, "{err:?}");
            assert_eq!(answer.code(), code, "{err:?}");
            assert_eq!(answer.code(), err.code(), "{err:?}");
            let body = answer.body();
            assert_eq!(body["error"], code);
            assert_eq!(body["message"], message.as_str());
        }
        assert_eq!(
            AppError::from(AdmissionError::Unavailable).to_string(),
            "the job ledger or queue is unavailable; retry later"
        );
        assert_eq!(
            AppError::from(AdmissionError::StackNotAllowed).to_string(),
            "this stack's api_key is not allowed"
        );
    }
}
