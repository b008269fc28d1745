//! Outgoing requests built straight through `web_sys` (the API calls, the ledger and the rate
//! limiter), and their answers' bodies read the same way. Depends on nothing in the crate, so
//! every layer may use it.

use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use worker::{js_sys, web_sys, worker_sys, Env, Headers, Method};

/// An answer as the Worker reads it: its status, the headers asked for (in the order asked),
/// and its body.
pub struct Fetched {
    pub status: u16,
    pub headers: Vec<Option<String>>,
    pub body: Vec<u8>,
}

/// Sends a request through the runtime's own `fetch` and reads the answer in one call
/// (`arrayBuffer()`), with the headers named in `wanted`. worker's `Fetch` converts the request
/// and the answer on the way and reads a body chunk by chunk through a stream reader, each
/// chunk crossing into the module.
pub async fn fetch(
    url: &str,
    method: Method,
    headers: Option<&Headers>,
    body: Option<&str>,
    wanted: &[&str],
) -> worker::Result<Fetched> {
    let req = web_request(url, method, headers, body)?;
    let global: web_sys::WorkerGlobalScope = js_sys::global().unchecked_into();
    let resp: web_sys::Response = JsFuture::from(global.fetch_with_request(&req))
        .await?
        .dyn_into()?;
    let answer_headers = resp.headers();
    let headers = wanted
        .iter()
        .map(|name| answer_headers.get(name).ok().flatten())
        .collect();
    let buf = JsFuture::from(resp.array_buffer().map_err(body_error)?)
        .await
        .map_err(body_error)?;
    Ok(Fetched {
        status: resp.status(),
        headers,
        body: js_sys::Uint8Array::new(&buf).to_vec(),
    })
}

/// A request built straight through web_sys (method, headers when there are any, `redirect:
/// "follow"`, body), as `Request::new_with_init` with a `worker::RequestInit` would build it: the
/// conversion of `worker::RequestInit` links the serialization of every `cf` option (image
/// resizing and all), which no request here sets; and worker's `Request` would read the URL back
/// and parse its path.
fn web_request(
    url: &str,
    method: Method,
    headers: Option<&Headers>,
    body: Option<&str>,
) -> worker::Result<web_sys::Request> {
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
        .map_err(|e| js_error(e, "invalid URL or options for Request"))
}

/// A Durable Object's stub kept as the runtime's own object: a call is one `POST` whose answer
/// stays the runtime's Response, its body read in one call. worker's `Stub` converts each
/// request and answer on the way (the URL read back and parsed, headers, `cf`, the body as a
/// stream read chunk by chunk), which cost the Worker more CPU than the calls' own work.
pub struct ObjectStub(worker_sys::DurableObject);

impl ObjectStub {
    /// The object named `name` in the namespace bound as `binding`.
    pub fn new(env: &Env, binding: &str, name: &str) -> worker::Result<ObjectStub> {
        let ns = env.durable_object(binding)?;
        let ns: &worker_sys::DurableObjectNamespace = ns.as_ref().unchecked_ref();
        Ok(ObjectStub(ns.get_by_name(name)?))
    }

    /// POSTs `body` to `url` on the object: its answer's text, or an error naming `what`
    /// answered which status (with its text) when that is not 200.
    pub async fn post(&self, what: &str, url: &str, body: &str) -> worker::Result<String> {
        let req = web_request(url, Method::Post, None, Some(body))?;
        let resp: web_sys::Response = JsFuture::from(self.0.fetch_with_request(&req)?)
            .await?
            .dyn_into()?;
        let status = resp.status();
        let text = text_of(&resp).await?;
        if status != 200 {
            return Err(worker::Error::RustError(format!(
                "{what} answered {status}: {text}"
            )));
        }
        Ok(text)
    }
}

/// An answer's body as text, read by the runtime in one call (`Response.text()`).
async fn text_of(resp: &web_sys::Response) -> worker::Result<String> {
    let text = JsFuture::from(resp.text().map_err(body_error)?)
        .await
        .map_err(body_error)?;
    Ok(text.as_string().unwrap_or_default())
}

/// The runtime's error as its text, else `otherwise`.
fn js_error(e: wasm_bindgen::JsValue, otherwise: &str) -> worker::Error {
    worker::Error::JsError(e.as_string().unwrap_or_else(|| otherwise.to_string()))
}

/// [`js_error`] while reading an answer's body.
fn body_error(e: wasm_bindgen::JsValue) -> worker::Error {
    js_error(e, "could not read the answer's body")
}
