//! RSA-PSS verification with the runtime's WebCrypto (`crypto.subtle`), for the signature
//! check that [`crate::signature::Verifier::verify`] leaves pending: SHA-256, salt length 32, the
//! key imported from its SPKI DER once per isolate and reused.

use std::cell::RefCell;

use js_sys::{Array, Function, Object, Promise, Reflect, Uint8Array};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

use crate::signature::{PendingRsa, PSS_SALT_LEN};

/// Imported keys kept per isolate (a key rotation adds one; the oldest goes).
const KEYS_KEPT: usize = 4;

thread_local! {
    static KEYS: RefCell<Vec<(Vec<u8>, JsValue)>> = const { RefCell::new(Vec::new()) };
}

fn js_error(what: &str, e: JsValue) -> String {
    let detail = e
        .dyn_ref::<js_sys::Error>()
        .map(|e| String::from(e.message()))
        .unwrap_or_else(|| format!("{e:?}"));
    format!("WebCrypto {what}: {detail}")
}

/// `crypto.subtle` and one of its methods.
fn subtle_method(name: &str) -> Result<(JsValue, Function), String> {
    let crypto =
        Reflect::get(&js_sys::global(), &"crypto".into()).map_err(|e| js_error("crypto", e))?;
    let subtle = Reflect::get(&crypto, &"subtle".into()).map_err(|e| js_error("subtle", e))?;
    let method = Reflect::get(&subtle, &name.into())
        .map_err(|e| js_error(name, e))?
        .dyn_into::<Function>()
        .map_err(|e| js_error(name, e))?;
    Ok((subtle, method))
}

/// Calls a `crypto.subtle` method and awaits its promise.
async fn call(name: &str, args: &Array) -> Result<JsValue, String> {
    let (subtle, method) = subtle_method(name)?;
    let promise = method
        .apply(&subtle, args)
        .map_err(|e| js_error(name, e))?
        .dyn_into::<Promise>()
        .map_err(|e| js_error(name, e))?;
    JsFuture::from(promise).await.map_err(|e| js_error(name, e))
}

fn object(pairs: &[(&str, JsValue)]) -> Result<Object, String> {
    let o = Object::new();
    for (k, v) in pairs {
        Reflect::set(&o, &(*k).into(), v).map_err(|e| js_error("algorithm", e))?;
    }
    Ok(o)
}

/// The imported verification key for this SPKI (cached).
async fn key_for(spki: &[u8]) -> Result<JsValue, String> {
    let cached = KEYS.with(|k| {
        k.borrow()
            .iter()
            .find(|(der, _)| der == spki)
            .map(|(_, key)| key.clone())
    });
    if let Some(key) = cached {
        return Ok(key);
    }
    let algorithm = object(&[("name", "RSA-PSS".into()), ("hash", "SHA-256".into())])?;
    let args = Array::of5(
        &"spki".into(),
        &Uint8Array::from(spki).into(),
        &algorithm.into(),
        &JsValue::FALSE,
        &Array::of1(&"verify".into()).into(),
    );
    let key = call("importKey", &args).await?;
    KEYS.with(|k| {
        let mut k = k.borrow_mut();
        if k.len() >= KEYS_KEPT {
            k.remove(0);
        }
        k.push((spki.to_vec(), key.clone()));
    });
    Ok(key)
}

/// Whether one of the pending signatures is a valid RSA-PSS signature of `message`. `Err`
/// when WebCrypto could not be used at all (the key would not import).
pub async fn verify_pss(pending: &PendingRsa, message: &[u8]) -> Result<bool, String> {
    let key = key_for(pending.key.spki_der()).await?;
    let algorithm = object(&[
        ("name", "RSA-PSS".into()),
        ("saltLength", JsValue::from(PSS_SALT_LEN as u32)),
    ])?;
    let data = Uint8Array::from(message);
    for signature in &pending.signatures {
        let args = Array::of4(
            &algorithm,
            &key,
            &Uint8Array::from(signature.as_slice()).into(),
            &data,
        );
        // A signature WebCrypto refuses to even check is simply not valid.
        if let Ok(v) = call("verify", &args).await {
            if v.as_bool() == Some(true) {
                return Ok(true);
            }
        }
    }
    Ok(false)
}
