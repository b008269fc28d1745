//! Admission: taking in a delivery whose authenticity is already settled — the stack
//! allow-list, recognition, the rule for the channel's environment, the dedupe in the job's
//! Durable Object ([`JobClient::accept`]), the enqueue, and the rollback when the enqueue fails
//! (docs/CONTRACT.md, "Intake answers", steps 8 to 12; docs/ARCHITECTURE.md, "One webhook, from
//! intake to `done`").
//!
//! Two callers take deliveries in: the webhook ([`crate::http::intake`], after its HTTP checks,
//! the signatures and the replay window) and the webhook health check ([`crate::cron`], for
//! failed deliveries read back from the Management API). Admission lives here, beside neither,
//! so both meet the same rules and neither depends on the other; its errors are its own
//! ([`AdmissionError`], which says by its variant whether a failure is worth retrying), and the
//! HTTP layer turns them into answers.
//!
//! Choices where the contract is silent:
//! - The stack is the body's top-level `api_key` when it is a string; any other value counts as
//!   none, which the allow-list refuses when `CONTENTSTACK_API_KEYS` is set.
//! - The ledger and the queue being unavailable are one error with one message: the caller is
//!   not told which failed; the cause is logged (`unavailable`).
//! - A rollback that itself fails changes nothing in the answer (still unavailable); it is
//!   logged (`enqueue_failed`, `rolled_back: false`), and the job's alarm redrives the record
//!   left without a message (docs/ARCHITECTURE.md, "an intake rollback that itself failed").

use serde_json::Value;
use worker::Env;

use crate::config::Config;
use crate::event::{self, scope_of, Action, EventError, Recognition};
use crate::ledger::client::{accept_op, JobClient};
use crate::ledger::dedupe_key;
use crate::ledger::ops::RollbackOp;
use crate::queue::JobMessage;
use crate::runtime::{self, log};

/// Why a delivery was not taken in. Whether it is worth trying again later is a property of
/// the variant ([`AdmissionError::is_transient`]), never of its message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdmissionError {
    /// The payload's `api_key` is not in `CONTENTSTACK_API_KEYS` (or it has none while the
    /// list is set). Permanent.
    #[error("this stack's api_key is not allowed")]
    StackNotAllowed,
    /// A job-completion event that cannot be read: its `job_id` is missing or invalid
    /// ([`event::recognize`]). Permanent.
    #[error("{0}")]
    Event(#[from] EventError),
    /// The job's Durable Object or the queue could not be reached; nothing stays recorded
    /// (the record is rolled back when only the enqueue failed). Transient.
    #[error("the job ledger or queue is unavailable; retry later")]
    Unavailable,
}

impl AdmissionError {
    /// Whether the same delivery may be taken in later: only when the ledger or the queue
    /// was unavailable. A refused stack or an unreadable event is refused again.
    pub fn is_transient(&self) -> bool {
        match self {
            AdmissionError::Unavailable => true,
            AdmissionError::StackNotAllowed | AdmissionError::Event(_) => false,
        }
    }

    /// The stable error code (docs/CONTRACT.md, "Intake answers"), the same as the webhook's
    /// answer carries for this failure.
    pub fn code(&self) -> &'static str {
        match self {
            AdmissionError::StackNotAllowed => "stack_not_allowed",
            AdmissionError::Event(e) => e.code(),
            AdmissionError::Unavailable => "unavailable",
        }
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
/// for the channel's environment, then the ledger (dedupe) and the queue. `raw` and `body` are
/// the same delivery (`raw` is kept in a new record's payload); `source` goes into a new
/// record.
pub async fn take_in(
    env: &Env,
    cfg: &Config,
    raw: &[u8],
    body: &Value,
    source: &str,
) -> Result<TakenIn, AdmissionError> {
    let api_key = body
        .get("api_key")
        .and_then(|v| v.as_str())
        .map(str::to_string);
    if !cfg.contentstack.stack_allowed(api_key.as_deref()) {
        return Err(AdmissionError::StackNotAllowed);
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

/// Logs the runtime's error and gives the one unavailable error (whose message does not carry
/// the runtime's text).
fn unavailable(e: worker::Error) -> AdmissionError {
    log("unavailable", serde_json::json!({"error": e.to_string()}));
    AdmissionError::Unavailable
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_unavailable_ledger_or_queue_is_worth_retrying() {
        let cases = [
            (AdmissionError::StackNotAllowed, false, "stack_not_allowed"),
            (
                AdmissionError::Event(EventError::MissingJobId),
                false,
                "missing_job_id",
            ),
            (
                AdmissionError::Event(EventError::InvalidJobId),
                false,
                "invalid_job_id",
            ),
            (AdmissionError::Unavailable, true, "unavailable"),
        ];
        for (err, transient, code) in cases {
            assert_eq!(err.is_transient(), transient, "{err:?}");
            assert_eq!(err.code(), code, "{err:?}");
            assert!(!err.to_string().is_empty(), "{err:?}");
        }
    }

    #[test]
    fn recognition_errors_convert_with_their_message() {
        let err: AdmissionError = EventError::InvalidJobId.into();
        assert_eq!(err, AdmissionError::Event(EventError::InvalidJobId));
        assert_eq!(err.to_string(), EventError::InvalidJobId.to_string());
    }
}
