//! `signature::verify_hmac` on arbitrary `x-contentstack-hmac-signature` values and bodies.
//!
//! Input framing (so seeds stay readable): everything before the first `\n` is the header
//! value (invalid UTF-8 replaced), everything after it is the raw body.
//!
//! Checks:
//! 1. `verify_hmac` never panics on arbitrary header + body.
//! 2. It accepts only when the header really carries `HMAC-SHA256(secret, t_raw + "." + body)`
//!    for one of the configured secrets (reference computed here, independently).
//! 3. A header built here with a correct MAC over the body always verifies and returns its
//!    `t` — in canonical form, with upper-case hex, with the pieces swapped, with spaces
//!    around pieces, with a wrong `v1` before the right one, with `=`-free junk pieces around
//!    it, and when the known secret is the second one configured (rotation).
//! 4. The same header over a different body is rejected.
#![no_main]

use contentstack_edge_purge::signature::{verify_hmac, Secret, VerifyError};
use hmac::{Hmac, KeyInit, Mac};
use libfuzzer_sys::fuzz_target;
use sha2::Sha256;

const KNOWN_SECRET: &str = "cs_whsec_fuzz_0123456789abcdef";
const OTHER_SECRET: &str = "cs_whsec_fuzz_rotated_out";

fn mac_hex(secret: &str, t_raw: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(t_raw.as_bytes());
    mac.update(b".");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// Reference: is there a `t` piece with value `t_raw` and a `v1` piece equal (ignoring
/// hex case) to the MAC of `t_raw.body` under one of `secrets`?
fn really_signed(header: &str, body: &[u8], secrets: &[&str]) -> bool {
    let pieces: Vec<(&str, &str)> = header
        .split(',')
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| (k.trim(), v.trim()))
        .collect();
    pieces.iter().filter(|(k, _)| *k == "t").any(|(_, t_raw)| {
        secrets.iter().any(|s| {
            let want = mac_hex(s, t_raw, body);
            pieces
                .iter()
                .any(|(k, v)| *k == "v1" && v.eq_ignore_ascii_case(&want))
        })
    })
}

fuzz_target!(|data: &[u8]| {
    let (header_bytes, body) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let header = String::from_utf8_lossy(header_bytes);
    let secrets = [Secret::new(OTHER_SECRET), Secret::new(KNOWN_SECRET)];

    // 1 + 2: arbitrary header.
    if let Ok(t) = verify_hmac(&header, body, &secrets) {
        assert!(
            really_signed(&header, body, &[OTHER_SECRET, KNOWN_SECRET]),
            "accepted a header that carries no valid MAC: {header:?}"
        );
        assert!(t >= 0, "negative t accepted: {t}");
    }

    // 3: a correct signature always verifies. `t` is derived from the input so that
    // many values (including leading zeros and i64::MAX-sized ones) get exercised.
    let seed = body.iter().chain(header_bytes).fold(0u64, |acc, &b| {
        acc.wrapping_mul(31).wrapping_add(u64::from(b))
    });
    let t_raw = match seed % 4 {
        0 => "1778729300".to_owned(),
        1 => format!("{}", seed % 10_000_000_000),
        2 => format!("000{}", seed % 1000),
        _ => format!("{}", i64::MAX - (seed % 7) as i64),
    };
    let t_expected: i64 = t_raw.parse().expect("digits that fit i64");
    let good = mac_hex(KNOWN_SECRET, &t_raw, body);
    let wrong = mac_hex(KNOWN_SECRET, &t_raw, b"some other body");
    // `=`-free junk from the fuzz input: such pieces must be ignored.
    let junk: String = header.chars().filter(|&c| c != '=').take(64).collect();
    let variants = [
        format!("t={t_raw},v1={good}"),
        format!("t={t_raw},v1={}", good.to_ascii_uppercase()),
        format!("v1={good},t={t_raw}"),
        format!(" t = {t_raw} ,\tv1={good} "),
        format!("t={t_raw},v1={wrong},v1={good}"),
        format!("{junk},t={t_raw},{junk},v1={good},{junk}"),
    ];
    for v in &variants {
        assert_eq!(
            verify_hmac(v, body, &secrets),
            Ok(t_expected),
            "valid signature rejected: header {v:?}"
        );
        // Only the known secret configured.
        assert_eq!(
            verify_hmac(v, body, &secrets[1..]),
            Ok(t_expected),
            "valid signature rejected with a single secret: header {v:?}"
        );
    }

    // 4: the same header over another body (body + one byte) never verifies.
    let mut tampered = body.to_vec();
    tampered.push(b'x');
    assert_eq!(
        verify_hmac(&variants[0], &tampered, &secrets),
        Err(VerifyError::InvalidSignature),
        "a signature verified over a different body"
    );
    // ... nor with no secrets at all.
    assert_eq!(
        verify_hmac(&variants[0], body, &[]),
        Err(VerifyError::InvalidSignature)
    );
});
