//! The one error type every HTTP handler returns, and its mapping to an HTTP answer.
//!
//! Each variant carries a stable machine code (docs/CONTRACT.md, "Intake answers") and a human message that never
//! contains a secret or signature material. `status()` and `code()` are the only place where
//! errors become status codes. Admission's errors (`AdmissionError`) become these variants in
//! `http::intake`, so this module stays below admission.

use crate::event::EventError;
use crate::signature::VerifyError;

/// Everything that can end a request early.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("only {allow} is accepted here")]
    MethodNotAllowed { allow: &'static str },
    #[error("the body must be application/json")]
    UnsupportedMediaType,
    #[error("the body is larger than {limit} bytes")]
    BodyTooLarge { limit: usize },
    #[error("{0}")]
    Verify(#[from] VerifyError),
    #[error("{0}")]
    Event(#[from] EventError),
    #[error("this stack's api_key is not allowed")]
    StackNotAllowed,
    #[error("invalid admin token")]
    Unauthorized,
    #[error("{0}")]
    BadRequest(String),
    #[error("not found")]
    NotFound,
    #[error("the worker is misconfigured: {0}")]
    Misconfigured(String),
    #[error("{0}")]
    Unavailable(String),
}

impl AppError {
    /// HTTP status for this error.
    pub fn status(&self) -> u16 {
        match self {
            AppError::MethodNotAllowed { .. } => 405,
            AppError::UnsupportedMediaType => 415,
            AppError::BodyTooLarge { .. } => 413,
            AppError::Verify(e) => e.status(),
            AppError::Unauthorized => 401,
            AppError::Event(_) | AppError::BadRequest(_) => 400,
            AppError::StackNotAllowed => 403,
            AppError::NotFound => 404,
            AppError::Misconfigured(_) => 500,
            AppError::Unavailable(_) => 503,
        }
    }

    /// Stable error code for the JSON body.
    pub fn code(&self) -> &'static str {
        match self {
            AppError::MethodNotAllowed { .. } => "method_not_allowed",
            AppError::UnsupportedMediaType => "unsupported_media_type",
            AppError::BodyTooLarge { .. } => "body_too_large",
            AppError::Verify(e) => e.code(),
            AppError::Event(e) => e.code(),
            AppError::StackNotAllowed => "stack_not_allowed",
            AppError::Unauthorized => "unauthorized",
            AppError::BadRequest(_) => "bad_request",
            AppError::NotFound => "not_found",
            AppError::Misconfigured(_) => "misconfigured",
            AppError::Unavailable(_) => "unavailable",
        }
    }

    /// The JSON error body (docs/CONTRACT.md, "Intake answers").
    pub fn body(&self) -> serde_json::Value {
        serde_json::json!({
            "status": "error",
            "error": self.code(),
            "message": self.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_codes_follow_the_spec_table() {
        let cases: Vec<(AppError, u16, &str)> = vec![
            (
                AppError::MethodNotAllowed { allow: "POST" },
                405,
                "method_not_allowed",
            ),
            (
                AppError::UnsupportedMediaType,
                415,
                "unsupported_media_type",
            ),
            (AppError::BodyTooLarge { limit: 10 }, 413, "body_too_large"),
            (AppError::StackNotAllowed, 403, "stack_not_allowed"),
            (AppError::Unauthorized, 401, "unauthorized"),
            (AppError::NotFound, 404, "not_found"),
            (AppError::Misconfigured("x".into()), 500, "misconfigured"),
            (AppError::Unavailable("x".into()), 503, "unavailable"),
            (
                AppError::Event(EventError::MissingJobId),
                400,
                "missing_job_id",
            ),
            (
                AppError::Verify(VerifyError::StaleTimestamp),
                401,
                "stale_timestamp",
            ),
        ];
        for (err, status, code) in cases {
            assert_eq!(err.status(), status, "{err:?}");
            assert_eq!(err.code(), code, "{err:?}");
            let body = err.body();
            assert_eq!(body["status"], "error");
            assert_eq!(body["error"], code);
            assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
        }
    }
}
