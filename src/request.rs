//! Outgoing requests built straight through `web_sys` (the API calls, the ledger and the rate
//! limiter). Depends on nothing in the crate, so every layer may use it.

use worker::{web_sys, Headers, Method, Request};

/// A request, as `Request::new_with_init` with a `worker::RequestInit` builds it (method,
/// headers when there are any, `redirect: "follow"`, body) but straight through web_sys: the
/// conversion of `worker::RequestInit` links the serialization of every `cf` option (image
/// resizing and all), which no request here sets.
pub fn new_request(
    url: &str,
    method: Method,
    headers: Option<&Headers>,
    body: Option<&str>,
) -> worker::Result<Request> {
    let init = web_sys::RequestInit::new();
    if let Some(h) = headers.filter(|h| !h.is_empty()) {
        init.set_headers(h.0.as_ref());
    }
    init.set_method(method.as_ref());
    init.set_redirect(web_sys::RequestRedirect::Follow);
    if let Some(b) = body {
        init.set_body(&wasm_bindgen::JsValue::from_str(b));
    }
    web_sys::Request::new_with_str_and_init(url, &init)
        .map(Request::from)
        .map_err(|e| {
            worker::Error::JsError(
                e.as_string()
                    .unwrap_or_else(|| "invalid URL or options for Request".to_string()),
            )
        })
}
