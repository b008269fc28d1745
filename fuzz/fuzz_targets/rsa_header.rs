//! `signature::rsa_signatures` (the header side of the RSA check; the signature math runs in the
//! runtime's WebCrypto) and `PublicKey::from_pem` on arbitrary input, with the fixed 2048-bit
//! test key from `tests/fixtures/verify/rsa.json`.
//!
//! Checks:
//! 1. Never panics; every candidate signature is exactly the key's size, and there are at most
//!    `MAX_SIGNATURES` of them.
//! 2. The fixture's valid signature is a candidate only when the header carries its text.
//! 3. The fixture's valid header still yields it when `=`-free junk pieces from the input are
//!    put around it (such pieces are ignored).
//! 4. Any text read as a PEM either fails cleanly or gives a key of a usable size.
#![no_main]

use std::sync::OnceLock;

use base64::Engine as _;
use contentstack_edge_purge::signature::{rsa_signatures, PublicKey, MAX_SIGNATURES};
use libfuzzer_sys::fuzz_target;

const FIXTURE: &str = include_str!("../../tests/fixtures/verify/rsa.json");

struct Fixture {
    key: PublicKey,
    valid_header: String,
    /// The signature's base64 text without `=` padding, and its bytes.
    sig_b64: String,
    sig: Vec<u8>,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let v: serde_json::Value = serde_json::from_str(FIXTURE).expect("fixture JSON");
        let s = |k: &str| v[k].as_str().expect(k).to_owned();
        let key = PublicKey::from_pem(&s("public_key_pkcs1_pem")).expect("fixture key");
        let valid_header = s("valid_header");
        let padded = valid_header
            .trim()
            .strip_prefix("v1=")
            .expect("fixture header is `v1=<base64>`")
            .to_owned();
        let sig = base64::engine::general_purpose::STANDARD
            .decode(&padded)
            .expect("fixture signature");
        let f = Fixture {
            key,
            sig_b64: padded.trim_end_matches('=').to_owned(),
            valid_header,
            sig,
        };
        assert_eq!(rsa_signatures(&f.valid_header, &f.key), Ok(vec![f.sig.clone()]));
        f
    })
}

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    let header = String::from_utf8_lossy(data);

    // 1 and 2.
    if let Ok(sigs) = rsa_signatures(&header, &f.key) {
        assert!(!sigs.is_empty() && sigs.len() <= MAX_SIGNATURES, "{header:?}");
        assert!(sigs.iter().all(|s| s.len() == f.key.size()), "{header:?}");
        if sigs.contains(&f.sig) {
            assert!(
                header.contains(&f.sig_b64),
                "the valid signature without its text: {header:?}"
            );
        }
    }

    // 3: junk pieces without `=` around the valid header are ignored.
    let junk: String = header.chars().filter(|&c| c != '=').take(64).collect();
    let with_junk = format!("{junk},{},{junk}", f.valid_header);
    assert!(
        rsa_signatures(&with_junk, &f.key).is_ok_and(|s| s.contains(&f.sig)),
        "valid signature lost among ignorable pieces: {with_junk:?}"
    );

    // 4.
    if let Ok(key) = PublicKey::from_pem(&header) {
        assert!((1024..=4096).contains(&key.bits()));
    }
});
