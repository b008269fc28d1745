//! The RSA public key that verifies webhook signatures: configured, or fetched from the
//! region's app host once per isolate (beside its one caller, the intake).

use std::cell::RefCell;
use std::rc::Rc;

use crate::budget::Budget;
use crate::config::Config;
use crate::runtime::log;
use crate::signature::PublicKey;

thread_local! {
    static PUBLIC_KEY: RefCell<Option<(String, Rc<PublicKey>)>> = const { RefCell::new(None) };
}

/// The RSA public key: configured, or fetched from the app host once per isolate.
pub async fn public_key(cfg: &Config, budget: &Budget) -> Result<Rc<PublicKey>, String> {
    let url = format!("{}/.well-known/public-keys.json", cfg.contentstack.app_base);
    if let Some(k) = PUBLIC_KEY.with(|p| {
        p.borrow()
            .as_ref()
            .filter(|(u, _)| *u == url)
            .map(|(_, k)| k.clone())
    }) {
        return Ok(k);
    }
    let call = crate::net::Call {
        what: "public key",
        method: worker::Method::Get,
        url: url.clone(),
        headers: vec![("accept", "application/json".to_string())],
        body: None,
        timeout_ms: cfg.pacing.http_timeout_ms.min(10_000),
        rate_limited: None,
    };
    let answer = crate::net::send(&call, None, budget)
        .await
        .map_err(|e| e.to_string())?;
    if answer.status != 200 {
        return Err(format!("public key host answered {}", answer.status));
    }
    let bytes = answer.body;
    let key = Rc::new(PublicKey::from_well_known_json(&bytes).map_err(|e| e.to_string())?);
    PUBLIC_KEY.with(|p| *p.borrow_mut() = Some((url, key.clone())));
    log("public_key_fetched", serde_json::json!({}));
    Ok(key)
}
