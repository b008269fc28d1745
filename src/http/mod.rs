//! HTTP surface (docs/CONTRACT.md, "Endpoints"): routing, JSON answers, and the size-capped body reader. The
//! handlers themselves are in [`intake`] and [`admin`].

pub mod admin;
pub mod intake;
mod public_key;
mod webcrypto;

use futures_util::StreamExt;
use serde::Serialize;
use worker::{Env, Request, Response, Result};

use crate::error::AppError;

/// Routes one request.
pub async fn route(req: Request, env: Env) -> Result<Response> {
    let path = req.path();
    let answer = if path == "/webhooks/contentstack" {
        intake::handle(req, &env).await
    } else if path == "/healthz" {
        json(
            200,
            &serde_json::json!({"ok": true, "version": env!("CARGO_PKG_VERSION")}),
        )
    } else if path.starts_with("/api/") || path == "/api" {
        admin::handle(req, &env).await
    } else {
        return env.assets("ASSETS")?.fetch_request(req).await;
    };
    match answer {
        Ok(resp) => Ok(resp),
        Err(e) => error_response(&e),
    }
}

/// A JSON answer with a status.
pub fn json<T: Serialize>(status: u16, body: &T) -> std::result::Result<Response, AppError> {
    Response::from_json(body)
        .map(|r| r.with_status(status))
        .map_err(|e| AppError::Unavailable(e.to_string()))
}

/// The one place where an [`AppError`] becomes an HTTP answer.
pub fn error_response(e: &AppError) -> Result<Response> {
    let mut resp = Response::from_json(&e.body())?.with_status(e.status());
    if let AppError::MethodNotAllowed { allow } = e {
        resp.headers_mut().set("Allow", allow)?;
    }
    Ok(resp)
}

/// Whether a Content-Type header names JSON (`application/json`, any parameters).
pub fn is_json_content_type(value: Option<&str>) -> bool {
    match value {
        None => false,
        Some(v) => v
            .split(';')
            .next()
            .map(|t| t.trim().eq_ignore_ascii_case("application/json"))
            .unwrap_or(false),
    }
}

/// Reads the body, failing as soon as it grows past `limit` (Content-Length is checked first,
/// but never trusted alone).
pub async fn read_capped(
    req: &mut Request,
    limit: usize,
) -> std::result::Result<Vec<u8>, AppError> {
    if let Ok(Some(len)) = req.headers().get("content-length") {
        if len
            .trim()
            .parse::<u64>()
            .map(|n| n > limit as u64)
            .unwrap_or(false)
        {
            return Err(AppError::BodyTooLarge { limit });
        }
    }
    let mut stream = match req.stream() {
        Ok(s) => s,
        Err(_) => return Ok(Vec::new()),
    };
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| AppError::BadRequest(format!("could not read body: {e}")))?;
        if out.len() + chunk.len() > limit {
            return Err(AppError::BodyTooLarge { limit });
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_content_types() {
        assert!(is_json_content_type(Some("application/json")));
        assert!(is_json_content_type(Some(
            "Application/JSON; charset=utf-8"
        )));
        assert!(!is_json_content_type(Some("application/jsonx")));
        assert!(!is_json_content_type(Some("text/plain")));
        assert!(!is_json_content_type(Some(
            "application/x-www-form-urlencoded"
        )));
        assert!(!is_json_content_type(None));
    }
}
