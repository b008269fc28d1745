//! `verify::verify_rsa` on arbitrary `X-Contentstack-Request-Signature` values, with the
//! fixed 2048-bit test key from `tests/fixtures/verify/rsa.json`.
//!
//! Checks:
//! 1. Never panics, and never accepts a body that was never signed.
//! 2. Over the fixture body (which *is* signed), it accepts only when the header carries
//!    the fixture's valid signature text.
//! 3. The fixture's valid header still verifies when `=`-free junk pieces from the input
//!    are put around it (such pieces are ignored).
#![no_main]

use std::sync::OnceLock;

use contentstack_edge_purge::verify::{verify_rsa, PublicKey};
use libfuzzer_sys::fuzz_target;

const FIXTURE: &str = include_str!("../../tests/fixtures/verify/rsa.json");
const UNSIGNED_BODY: &[u8] =
    br#"{"module":"jobs","event":"environments.production.publish.completed","data":{"job_id":"never-signed"}}"#;

struct Fixture {
    key: PublicKey,
    body: String,
    valid_header: String,
    /// The signature's base64 text without `=` padding.
    sig_b64: String,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let v: serde_json::Value = serde_json::from_str(FIXTURE).expect("fixture JSON");
        let s = |k: &str| v[k].as_str().expect(k).to_owned();
        let key = PublicKey::from_pem(&s("public_key_pkcs1_pem")).expect("fixture key");
        let valid_header = s("valid_header");
        let sig_b64 = valid_header
            .trim()
            .strip_prefix("v1=")
            .expect("fixture header is `v1=<base64>`")
            .trim_end_matches('=')
            .to_owned();
        let f = Fixture {
            key,
            body: s("body"),
            valid_header,
            sig_b64,
        };
        assert!(verify_rsa(&f.valid_header, f.body.as_bytes(), &f.key).is_ok());
        f
    })
}

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    let header = String::from_utf8_lossy(data);

    // 1: an unsigned body is never accepted.
    assert!(
        verify_rsa(&header, UNSIGNED_BODY, &f.key).is_err(),
        "accepted a signature over a body nobody signed: {header:?}"
    );

    // 2: over the signed body, acceptance needs the real signature text.
    if verify_rsa(&header, f.body.as_bytes(), &f.key).is_ok() {
        assert!(
            header.contains(&f.sig_b64),
            "accepted a header without the valid signature: {header:?}"
        );
    }

    // 3: junk pieces without `=` around the valid header are ignored.
    let junk: String = header.chars().filter(|&c| c != '=').take(64).collect();
    let with_junk = format!("{junk},{},{junk}", f.valid_header);
    assert!(
        verify_rsa(&with_junk, f.body.as_bytes(), &f.key).is_ok(),
        "valid signature rejected when surrounded by ignorable pieces: {with_junk:?}"
    );
});
