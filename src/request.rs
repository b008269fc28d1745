//! Outgoing requests built straight through `web_sys` (the API calls, the ledger and the rate
//! limiter), and their answers' bodies read the same way. Depends on nothing in the crate, so
//! every layer may use it.

use wasm_bindgen_futures::JsFuture;
use worker::{js_sys, web_sys, Headers, Method, Request, Response};

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

/// An answer's body as text, read by the runtime in one call (`Response.text()`). worker's
/// `Response::text` reads a streamed body chunk by chunk through a stream reader, each chunk
/// crossing into the module and appended: for the ledger's answers (claims of hundreds of
/// actions) that was a large share of an invocation's CPU.
pub async fn body_text(resp: Response) -> worker::Result<String> {
    let resp = web_sys::Response::from(resp);
    let text = JsFuture::from(resp.text().map_err(js_error)?)
        .await
        .map_err(js_error)?;
    Ok(text.as_string().unwrap_or_default())
}

/// An answer's body as bytes, read by the runtime in one call (`Response.arrayBuffer()`), for
/// the same reason as [`body_text`].
pub async fn body_bytes(resp: Response) -> worker::Result<Vec<u8>> {
    let resp = web_sys::Response::from(resp);
    let buf = JsFuture::from(resp.array_buffer().map_err(js_error)?)
        .await
        .map_err(js_error)?;
    Ok(js_sys::Uint8Array::new(&buf).to_vec())
}

fn js_error(e: wasm_bindgen::JsValue) -> worker::Error {
    worker::Error::JsError(
        e.as_string()
            .unwrap_or_else(|| "could not read the answer's body".to_string()),
    )
}
