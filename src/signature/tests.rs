//! Tests for webhook verification. The HMAC, RSA-PSS, basic-auth and timestamp
//! vectors come from `tests/fixtures/gen-verify.mjs` (Node's `node:crypto` and
//! `Date.parse`), an implementation independent of this one.

use super::*;
use crate::time::parse_iso8601_utc_millis;
use proptest::prelude::*;
use serde_json::Value;
use std::collections::HashMap;

const HMAC_JSON: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/verify/hmac.json"
));
const RSA_JSON: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/verify/rsa.json"
));
const BASIC_JSON: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/verify/basic.json"
));
const TIMESTAMPS_JSON: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/verify/timestamps.json"
));

fn fixture(s: &str) -> Value {
    serde_json::from_str(s).unwrap()
}

/// The fixture's one valid RSA-PSS signature (of its `body`, by its PKCS#1 key).
fn valid_signature() -> Vec<u8> {
    let f = fixture(RSA_JSON);
    let header = s(&f, "valid_header").trim().strip_prefix("v1=").unwrap();
    BASE64_LENIENT.decode(header).unwrap()
}

/// The RSA-PSS math runs in the runtime's WebCrypto, which `tests/intake.test.mjs` checks with
/// these same vectors in workerd. Here a pending RSA check is answered from the fixture: valid
/// only for its body, its key and its one valid signature. Everything before the math (the
/// header, the base64, the lengths, which key) is this module's and is checked for real.
fn rsa_answer(p: &PendingRsa, body: &[u8]) -> bool {
    let f = fixture(RSA_JSON);
    p.key == PublicKey::from_pem(s(&f, "public_key_pkcs1_pem")).unwrap()
        && body == s(&f, "body").as_bytes()
        && p.signatures.contains(&valid_signature())
}

/// `Verifier::verify`, with a pending RSA check answered by [`rsa_answer`].
fn check(
    v: &Verifier,
    header: &dyn Fn(&str) -> Option<String>,
    body: &[u8],
    fetched_key: Option<&PublicKey>,
) -> Result<SignatureOutcome, VerifyError> {
    let verified = v.verify(header, body, fetched_key)?;
    let answer = verified.rsa.as_ref().map(|p| rsa_answer(p, body));
    verified.finish(answer)
}

fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("fixture field {key}"))
}

/// Case-insensitive header map, as the Worker shell provides.
struct Headers(HashMap<String, String>);

impl Headers {
    fn new(pairs: &[(&str, &str)]) -> Self {
        Self(
            pairs
                .iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), (*v).to_owned()))
                .collect(),
        )
    }
    fn lookup(&self) -> impl Fn(&str) -> Option<String> + '_ {
        |name| self.0.get(&name.to_ascii_lowercase()).cloned()
    }
}

fn verifier(checks: &[Check], secrets: &[&str], pem: Option<&str>) -> Verifier {
    Verifier::new(
        checks.to_vec(),
        secrets.iter().map(|s| Secret::new(*s)).collect(),
        None,
        None,
        pem,
        false,
    )
    .unwrap()
}

fn outcome_code(r: &Result<SignatureOutcome, VerifyError>) -> &'static str {
    match r {
        Ok(_) => "ok",
        Err(e) => e.code(),
    }
}

// ---------------------------------------------------------------------------
// HMAC vectors
// ---------------------------------------------------------------------------

#[test]
fn hmac_vectors_from_node() {
    let f = fixture(HMAC_JSON);
    let body = s(&f, "body").as_bytes();
    let cases = f["cases"].as_array().unwrap();
    assert!(cases.len() >= 30, "fixture looks truncated");
    for case in cases {
        let name = s(case, "name");
        let secrets: Vec<&str> = case["secrets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        let v = verifier(&[Check::Hmac], &secrets, None);
        let headers = match case["header"].as_str() {
            Some(h) => Headers::new(&[("X-Contentstack-Hmac-Signature", h)]),
            None => Headers::new(&[]),
        };
        let got = check(&v, &headers.lookup(), body, None);
        assert_eq!(outcome_code(&got), s(case, "expect"), "case: {name}");
        if let Some(t) = case["hmac_timestamp"].as_i64() {
            assert_eq!(got.unwrap().hmac_timestamp, Some(t), "case: {name}");
        }
    }
}

#[test]
fn hmac_tampered_body_fails_and_original_passes() {
    let f = fixture(HMAC_JSON);
    let secret = s(&f, "tampered_body_secret");
    let header = s(&f, "tampered_body_header");
    let v = verifier(&[Check::Hmac], &[secret], None);
    let h = Headers::new(&[("x-contentstack-hmac-signature", header)]);
    let tampered = s(&f, "tampered_body").as_bytes();
    assert_ne!(tampered, s(&f, "body").as_bytes());
    assert_eq!(
        check(&v, &h.lookup(), tampered, None),
        Err(VerifyError::InvalidSignature)
    );
    assert_eq!(
        check(&v, &h.lookup(), s(&f, "body").as_bytes(), None)
            .unwrap()
            .hmac_timestamp,
        f["t"].as_i64()
    );
    // One trailing byte is tampering too (raw bytes, not re-serialised JSON).
    let mut longer = s(&f, "body").as_bytes().to_vec();
    longer.push(b'\n');
    assert_eq!(
        check(&v, &h.lookup(), &longer, None),
        Err(VerifyError::InvalidSignature)
    );
}

#[test]
fn hmac_empty_body_and_empty_secret_list_are_handled() {
    // No secrets can only happen through verify_hmac directly: nothing matches.
    let f = fixture(HMAC_JSON);
    let header = s(&f, "tampered_body_header");
    assert_eq!(
        verify_hmac(header, s(&f, "body").as_bytes(), &[]),
        Err(VerifyError::InvalidSignature)
    );
    assert_eq!(
        verify_hmac(header, b"", &[Secret::new("x")]),
        Err(VerifyError::InvalidSignature)
    );
}

#[test]
fn legacy_signature_header_is_ignored() {
    let f = fixture(HMAC_JSON);
    let v = verifier(&[Check::Hmac], &["whatever"], None);
    let h = Headers::new(&[(
        "X-Contentstack-Signature",
        "0123456789abcdef0123456789abcdef01234567",
    )]);
    assert_eq!(
        check(&v, &h.lookup(), s(&f, "body").as_bytes(), None),
        Err(VerifyError::MissingSignature)
    );
}

// ---------------------------------------------------------------------------
// RSA-PSS vectors
// ---------------------------------------------------------------------------

#[test]
fn rsa_vectors_from_node_with_pkcs1_spki_and_well_known_keys() {
    let f = fixture(RSA_JSON);
    let body = s(&f, "body").as_bytes();
    let pkcs1 = PublicKey::from_pem(s(&f, "public_key_pkcs1_pem")).unwrap();
    let spki = PublicKey::from_pem(s(&f, "public_key_spki_pem")).unwrap();
    let well_known =
        PublicKey::from_well_known_json(s(&f, "well_known_document").as_bytes()).unwrap();
    assert_eq!(pkcs1, spki, "PKCS#1 and SPKI forms are the same key");
    // The SPKI built from the PKCS#1 form is byte for byte what Node wrote for the key.
    let spki_pem = s(&f, "public_key_spki_pem");
    let der: String = spki_pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    assert_eq!(
        pkcs1.spki_der(),
        BASE64_LENIENT.decode(der).unwrap().as_slice()
    );
    assert_eq!(pkcs1.size(), 256);
    assert_eq!(pkcs1, well_known);
    assert_eq!(pkcs1.bits(), 2048);

    let cases = f["cases"].as_array().unwrap();
    assert!(cases.len() >= 18, "fixture looks truncated");
    for key in [&pkcs1, &spki, &well_known] {
        // Key fetched by the shell.
        let fetched = verifier(&[Check::Rsa], &[], None);
        assert!(fetched.needs_public_key());
        for case in cases {
            let name = s(case, "name");
            let headers = match case["header"].as_str() {
                Some(h) => Headers::new(&[("X-Contentstack-Request-Signature", h)]),
                None => Headers::new(&[]),
            };
            let got = check(&fetched, &headers.lookup(), body, Some(key));
            assert_eq!(outcome_code(&got), s(case, "expect"), "case: {name}");
            if let Ok(o) = got {
                assert_eq!(o.hmac_timestamp, None);
            }
        }
    }
    // Key configured as PEM (both forms).
    for pem in [s(&f, "public_key_pkcs1_pem"), s(&f, "public_key_spki_pem")] {
        let configured = verifier(&[Check::Rsa], &[], Some(pem));
        assert!(!configured.needs_public_key());
        let h = Headers::new(&[("x-contentstack-request-signature", s(&f, "valid_header"))]);
        assert!(check(&configured, &h.lookup(), body, None).is_ok());
    }
}

#[test]
fn rsa_tampered_body_and_wrong_key_fail() {
    let f = fixture(RSA_JSON);
    let key = PublicKey::from_pem(s(&f, "public_key_pkcs1_pem")).unwrap();
    let other = PublicKey::from_pem(s(&f, "other_public_key_pkcs1_pem")).unwrap();
    assert_ne!(key, other);
    let header = s(&f, "valid_header");
    let body = s(&f, "body").as_bytes();
    // The header gives the same one candidate whatever the key's origin; the math decides.
    assert_eq!(rsa_signatures(header, &key), Ok(vec![valid_signature()]));
    assert_eq!(rsa_signatures(header, &other), Ok(vec![valid_signature()]));
    let v = verifier(&[Check::Rsa], &[], Some(s(&f, "public_key_pkcs1_pem")));
    let h = Headers::new(&[(RSA_SIGNATURE_HEADER, header)]);
    assert!(check(&v, &h.lookup(), body, None).is_ok());
    assert_eq!(
        check(&v, &h.lookup(), s(&f, "tampered_body").as_bytes(), None),
        Err(VerifyError::InvalidSignature)
    );
    // A pending check that is never answered fails.
    let pending = v.verify(&h.lookup(), body, None).unwrap();
    assert_eq!(pending.rsa.as_ref().map(|p| p.signatures.len()), Some(1));
    assert_eq!(
        pending.clone().finish(None),
        Err(VerifyError::InvalidSignature)
    );
    assert_eq!(
        pending.finish(Some(false)),
        Err(VerifyError::InvalidSignature)
    );
    // A configured key wins over a fetched one.
    let v = verifier(&[Check::Rsa], &[], Some(s(&f, "public_key_pkcs1_pem")));
    let h = Headers::new(&[(RSA_SIGNATURE_HEADER, header)]);
    assert!(check(&v, &h.lookup(), body, Some(&other)).is_ok());
    let v = verifier(
        &[Check::Rsa],
        &[],
        Some(s(&f, "other_public_key_pkcs1_pem")),
    );
    assert_eq!(
        check(&v, &h.lookup(), body, Some(&key)),
        Err(VerifyError::InvalidSignature)
    );
}

#[test]
fn rsa_without_any_key_is_unavailable_not_401() {
    let v = verifier(&[Check::Rsa], &[], None);
    let h = Headers::new(&[(RSA_SIGNATURE_HEADER, "v1=AAAA")]);
    let err = check(&v, &h.lookup(), b"{}", None).unwrap_err();
    assert_eq!(err, VerifyError::KeyUnavailable);
    assert_eq!(err.code(), "unavailable");
    assert_eq!(err.status(), 503);
}

#[test]
fn pem_variants_are_tolerated() {
    let f = fixture(RSA_JSON);
    let pkcs1_pem = s(&f, "public_key_pkcs1_pem");
    let spki_pem = s(&f, "public_key_spki_pem");
    let reference = PublicKey::from_pem(pkcs1_pem).unwrap();
    let crlf = pkcs1_pem.replace('\n', "\r\n");
    let padded = format!("\n\n   {spki_pem}  \n\t");
    let escaped = spki_pem.trim().replace('\n', "\\n");
    for pem in [crlf.as_str(), padded.as_str(), escaped.as_str()] {
        assert_eq!(PublicKey::from_pem(pem).unwrap(), reference, "pem: {pem:?}");
    }
}

#[test]
fn bad_pems_are_config_errors() {
    let f = fixture(RSA_JSON);
    let pkcs1_pem = s(&f, "public_key_pkcs1_pem");
    let spki_pem = s(&f, "public_key_spki_pem");
    // Label swapped: the DER inside does not match the label.
    let swapped = pkcs1_pem.replace("RSA PUBLIC KEY", "PUBLIC KEY");
    // One base64 character changed in the body of the key.
    let mut lines: Vec<String> = spki_pem.lines().map(str::to_owned).collect();
    lines[2] = lines[2].replacen(|c: char| c.is_ascii_alphanumeric(), "!", 1);
    let corrupted = lines.join("\n");
    let truncated: String = pkcs1_pem.lines().take(3).collect::<Vec<_>>().join("\n");
    for pem in [
        "",
        "not a pem",
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----",
        "-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----",
        swapped.as_str(),
        corrupted.as_str(),
        truncated.as_str(),
    ] {
        let err = PublicKey::from_pem(pem).unwrap_err();
        assert!(
            matches!(err, VerifierConfigError::InvalidPublicKey(_)),
            "pem: {pem:?}"
        );
        assert_eq!(err.code(), "misconfigured");
    }
    // Through the constructor too.
    let err = Verifier::new(vec![Check::Rsa], vec![], None, None, Some("junk"), false).unwrap_err();
    assert!(matches!(err, VerifierConfigError::InvalidPublicKey(_)));
}

#[test]
fn well_known_document_errors() {
    let f = fixture(RSA_JSON);
    let pem = s(&f, "public_key_pkcs1_pem");
    for doc in [
        "".to_owned(),
        "not json".to_owned(),
        "[]".to_owned(),
        r#"{"signing_key":"x"}"#.to_owned(),
        r#"{"signing-key":42}"#.to_owned(),
        serde_json::json!({"signing-key": pem.replace("MII", "mii")}).to_string(),
    ] {
        let err = PublicKey::from_well_known_json(doc.as_bytes()).unwrap_err();
        assert!(
            matches!(err, VerifierConfigError::InvalidWellKnown(_)),
            "doc: {doc:?}"
        );
    }
    // Extra fields are fine.
    let doc = serde_json::json!({"signing-key": pem, "other": 1}).to_string();
    assert!(PublicKey::from_well_known_json(doc.as_bytes()).is_ok());
}

// ---------------------------------------------------------------------------
// Basic auth and custom header
// ---------------------------------------------------------------------------

#[test]
fn basic_vectors_from_node() {
    let f = fixture(BASIC_JSON);
    let creds = BasicCredentials::parse(s(&f, "config")).unwrap();
    let v = Verifier::new(vec![Check::Basic], vec![], Some(creds), None, None, false).unwrap();
    let cases = f["cases"].as_array().unwrap();
    assert!(cases.len() >= 12);
    for case in cases {
        let name = s(case, "name");
        let headers = match case["header"].as_str() {
            Some(h) => Headers::new(&[("Authorization", h)]),
            None => Headers::new(&[]),
        };
        let got = check(&v, &headers.lookup(), b"{}", None);
        assert_eq!(outcome_code(&got), s(case, "expect"), "case: {name}");
    }
}

#[test]
fn basic_credentials_parsing() {
    assert!(BasicCredentials::parse("user:pa:ss").is_ok());
    assert!(
        BasicCredentials::parse("user:").is_ok(),
        "empty password is allowed"
    );
    assert!(matches!(
        BasicCredentials::parse("userpass"),
        Err(VerifierConfigError::InvalidBasicAuth(_))
    ));
    assert!(matches!(
        BasicCredentials::parse(":pass"),
        Err(VerifierConfigError::InvalidBasicAuth(_))
    ));
    // Trailing newline from `wrangler secret put` is trimmed.
    let c = BasicCredentials::parse("user:pass\n").unwrap();
    assert_eq!(c, BasicCredentials::parse("user:pass").unwrap());
    // user:pass => dXNlcjpwYXNz (RFC 7617 style, computed by hand)
    let v = Verifier::new(vec![Check::Basic], vec![], Some(c), None, None, false).unwrap();
    let ok = Headers::new(&[("authorization", "Basic dXNlcjpwYXNz")]);
    assert!(check(&v, &ok.lookup(), b"", None).is_ok());
    let tab = Headers::new(&[("authorization", "Basic\tdXNlcjpwYXNz")]);
    assert_eq!(
        check(&v, &tab.lookup(), b"", None),
        Err(VerifyError::Unauthorized)
    );
}

#[test]
fn header_check_parsing_and_matching() {
    let h = HeaderCheck::parse("X-Webhook-Token:  s3cr3t:value ").unwrap();
    assert_eq!(h.name(), "X-Webhook-Token");
    let v = Verifier::new(vec![Check::Header], vec![], None, Some(h), None, false).unwrap();
    let run = |pairs: &[(&str, &str)]| check(&v, &Headers::new(pairs).lookup(), b"{}", None);
    assert!(
        run(&[("x-webhook-token", "s3cr3t:value")]).is_ok(),
        "name is case-insensitive"
    );
    assert!(
        run(&[("X-WEBHOOK-TOKEN", " s3cr3t:value\t")]).is_ok(),
        "OWS trimmed"
    );
    assert_eq!(
        run(&[("x-webhook-token", "S3CR3T:value")]),
        Err(VerifyError::Unauthorized)
    );
    assert_eq!(
        run(&[("x-webhook-token", "s3cr3t:valu")]),
        Err(VerifyError::Unauthorized)
    );
    assert_eq!(
        run(&[("x-webhook-token", "s3cr3t:value2")]),
        Err(VerifyError::Unauthorized)
    );
    assert_eq!(
        run(&[("x-webhook-token", "")]),
        Err(VerifyError::Unauthorized)
    );
    assert_eq!(
        run(&[("x-other", "s3cr3t:value")]),
        Err(VerifyError::Unauthorized)
    );
    assert_eq!(run(&[]), Err(VerifyError::Unauthorized));

    for bad in [
        "no colon",
        ": value",
        "Bad Name: value",
        "Bad\u{e9}: value",
        "X-Token:",
        "X-Token:   ",
        "X-Token: a\u{0}b",
        "X-Token: a\r\nInjected: b",
    ] {
        assert!(
            matches!(
                HeaderCheck::parse(bad),
                Err(VerifierConfigError::InvalidHeaderCheck(_))
            ),
            "{bad:?}"
        );
    }
}

#[test]
fn debug_output_is_redacted() {
    let secret = Secret::new("hunter2-secret");
    let basic = BasicCredentials::parse("admin:hunter2-pass").unwrap();
    let header = HeaderCheck::parse("X-Token: hunter2-token").unwrap();
    let v = Verifier::new(
        vec![Check::Hmac, Check::Basic, Check::Header],
        vec![secret.clone()],
        Some(basic.clone()),
        Some(header.clone()),
        None,
        false,
    )
    .unwrap();
    assert_eq!(format!("{secret:?}"), "Secret(***)");
    for text in [
        format!("{secret:?}"),
        format!("{basic:?}"),
        format!("{header:?}"),
        format!("{v:?}"),
        format!("{v:#?}"),
    ] {
        assert!(!text.contains("hunter2"), "leaked: {text}");
        assert!(!text.contains("admin"), "leaked: {text}");
    }
    assert!(format!("{header:?}").contains("X-Token"));
}

// ---------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------

#[test]
fn parse_checks_rules() {
    assert_eq!(parse_checks("").unwrap(), vec![Check::Rsa]);
    assert_eq!(parse_checks(" , ").unwrap(), vec![Check::Rsa]);
    assert_eq!(
        parse_checks(" HMAC , rsa,Basic,header ").unwrap(),
        vec![Check::Hmac, Check::Rsa, Check::Basic, Check::Header]
    );
    assert_eq!(parse_checks("rsa,RSA, rsa").unwrap(), vec![Check::Rsa]);
    assert_eq!(parse_checks("none").unwrap(), vec![Check::None]);
    let err = parse_checks("rsa,hmac256").unwrap_err();
    assert_eq!(err, VerifierConfigError::UnknownCheck("hmac256".into()));
    assert!(err.to_string().contains("hmac256"));
    assert!(
        parse_checks("rsa hmac").is_err(),
        "space is not a separator"
    );
}

#[test]
fn parse_hmac_secrets_rules() {
    let got = parse_hmac_secrets(" a ,b\n\nc\r\n, ,d");
    let got: Vec<&str> = got.iter().map(Secret::expose).collect();
    assert_eq!(got, ["a", "b", "c", "d"]);
    assert!(parse_hmac_secrets(" \n , ").is_empty());
}

#[test]
fn verifier_config_validation() {
    let basic = || Some(BasicCredentials::parse("u:p").unwrap());
    let header = || Some(HeaderCheck::parse("X-T: v").unwrap());
    let secrets = || vec![Secret::new("s")];
    use VerifierConfigError as E;
    let new = |c: Vec<Check>, s: Vec<Secret>, b, h, allow| Verifier::new(c, s, b, h, None, allow);

    assert_eq!(
        new(vec![Check::Hmac], vec![], None, None, false).unwrap_err(),
        E::MissingHmacSecrets
    );
    assert_eq!(
        new(vec![Check::Basic], vec![], None, None, false).unwrap_err(),
        E::MissingBasicAuth
    );
    assert_eq!(
        new(vec![Check::Header], vec![], None, None, false).unwrap_err(),
        E::MissingHeaderCheck
    );
    assert_eq!(
        new(vec![Check::None], vec![], None, None, false).unwrap_err(),
        E::UnverifiedNotAllowed
    );
    assert_eq!(
        new(vec![Check::None, Check::Rsa], vec![], None, None, true).unwrap_err(),
        E::NoneCombined
    );
    // rsa without a PEM is fine; the key is fetched later.
    let v = new(vec![Check::Rsa], vec![], None, None, false).unwrap();
    assert!(v.needs_public_key());
    // Empty list means the default rsa.
    let v = new(vec![], vec![], None, None, false).unwrap();
    assert_eq!(v.checks(), [Check::Rsa]);
    // Everything configured.
    let v = new(
        vec![
            Check::Rsa,
            Check::Hmac,
            Check::Basic,
            Check::Header,
            Check::Hmac,
        ],
        secrets(),
        basic(),
        header(),
        false,
    )
    .unwrap();
    assert_eq!(
        v.checks(),
        [Check::Rsa, Check::Hmac, Check::Basic, Check::Header]
    );
    // Config errors never include the secret values.
    let err = BasicCredentials::parse("secretvalue").unwrap_err();
    assert!(!err.to_string().contains("secretvalue"));
    let err = HeaderCheck::parse("secretvalue").unwrap_err();
    assert!(!err.to_string().contains("secretvalue"));
}

#[test]
fn none_with_allow_unverified_accepts_anything() {
    let v = Verifier::new(vec![Check::None], vec![], None, None, None, true).unwrap();
    assert!(!v.needs_public_key());
    let out = check(&v, &Headers::new(&[]).lookup(), b"anything", None).unwrap();
    assert_eq!(out.hmac_timestamp, None);
    // No timestamp source: the replay window does not apply.
    assert_eq!(v.check_replay_window(&out, None, 0, 1200), Ok(()));
}

// ---------------------------------------------------------------------------
// Combining checks
// ---------------------------------------------------------------------------

#[test]
fn all_listed_checks_must_pass_and_first_failure_is_reported() {
    let hf = fixture(HMAC_JSON);
    let rf = fixture(RSA_JSON);
    // The HMAC and RSA fixtures sign the same body.
    assert_eq!(s(&hf, "body"), s(&rf, "body"));
    let body = s(&hf, "body").as_bytes();
    let hmac_secret = s(&hf, "tampered_body_secret");
    let hmac_header = s(&hf, "tampered_body_header");
    let rsa_header = s(&rf, "valid_header");
    let key = PublicKey::from_pem(s(&rf, "public_key_spki_pem")).unwrap();
    let v = Verifier::new(
        vec![Check::Rsa, Check::Hmac, Check::Basic, Check::Header],
        vec![Secret::new(hmac_secret)],
        Some(BasicCredentials::parse("user:pass").unwrap()),
        Some(HeaderCheck::parse("X-Token: tok").unwrap()),
        None,
        false,
    )
    .unwrap();
    let good = [
        (RSA_SIGNATURE_HEADER, rsa_header),
        (HMAC_SIGNATURE_HEADER, hmac_header),
        ("Authorization", "Basic dXNlcjpwYXNz"),
        ("X-Token", "tok"),
    ];
    let run = |skip: &[&str], replace: &[(&str, &str)]| {
        let mut pairs: Vec<(&str, &str)> = good
            .iter()
            .copied()
            .filter(|(k, _)| !skip.contains(k))
            .collect();
        for (k, val) in replace {
            pairs.retain(|(pk, _)| pk != k);
            pairs.push((k, val));
        }
        check(&v, &Headers::new(&pairs).lookup(), body, Some(&key))
    };
    assert_eq!(run(&[], &[]).unwrap().hmac_timestamp, hf["t"].as_i64());
    assert_eq!(
        run(&[RSA_SIGNATURE_HEADER], &[]),
        Err(VerifyError::MissingSignature)
    );
    assert_eq!(
        run(&[HMAC_SIGNATURE_HEADER], &[]),
        Err(VerifyError::MissingSignature)
    );
    assert_eq!(
        run(&[], &[(RSA_SIGNATURE_HEADER, "v1=")]),
        Err(VerifyError::InvalidSignature)
    );
    assert_eq!(run(&["Authorization"], &[]), Err(VerifyError::Unauthorized));
    assert_eq!(run(&["X-Token"], &[]), Err(VerifyError::Unauthorized));
    // Order: header, basic, hmac, rsa. A bad custom header wins over a missing signature.
    assert_eq!(
        run(
            &[RSA_SIGNATURE_HEADER, HMAC_SIGNATURE_HEADER],
            &[("X-Token", "nope")]
        ),
        Err(VerifyError::Unauthorized)
    );
    // hmac is checked before rsa.
    assert_eq!(
        run(
            &[RSA_SIGNATURE_HEADER],
            &[(HMAC_SIGNATURE_HEADER, "t=1,v1=00")]
        ),
        Err(VerifyError::InvalidSignature)
    );
    // A tampered body fails even though every credential is right.
    let tampered = s(&hf, "tampered_body").as_bytes();
    let h = Headers::new(&good);
    assert_eq!(
        check(&v, &h.lookup(), tampered, Some(&key)),
        Err(VerifyError::InvalidSignature)
    );
}

#[test]
fn error_codes_and_messages() {
    let all = [
        (VerifyError::MissingSignature, "missing_signature", 401),
        (VerifyError::InvalidSignature, "invalid_signature", 401),
        (VerifyError::Unauthorized, "unauthorized", 401),
        (VerifyError::MissingTimestamp, "missing_timestamp", 401),
        (VerifyError::StaleTimestamp, "stale_timestamp", 401),
        (VerifyError::KeyUnavailable, "unavailable", 503),
    ];
    for (e, code, status) in all {
        assert_eq!(e.code(), code);
        assert_eq!(e.status(), status);
        let msg = e.to_string();
        assert!(!msg.is_empty());
        assert!(!msg.contains("v1="), "{msg}");
    }
}

// ---------------------------------------------------------------------------
// Replay window and timestamps
// ---------------------------------------------------------------------------

#[test]
fn replay_window_boundaries() {
    let now = 1_778_729_300;
    let tol = 1200;
    assert_eq!(
        check_replay(None, now, tol),
        Err(VerifyError::MissingTimestamp)
    );
    assert_eq!(check_replay(Some(now), now, tol), Ok(()));
    assert_eq!(
        check_replay(Some(now - 600), now, tol),
        Ok(()),
        "within window"
    );
    assert_eq!(
        check_replay(Some(now - 1200), now, tol),
        Ok(()),
        "oldest accepted"
    );
    assert_eq!(
        check_replay(Some(now - 1201), now, tol),
        Err(VerifyError::StaleTimestamp)
    );
    assert_eq!(
        check_replay(Some(now - 86_400), now, tol),
        Err(VerifyError::StaleTimestamp)
    );
    assert_eq!(
        check_replay(Some(now + 300), now, tol),
        Ok(()),
        "newest accepted"
    );
    assert_eq!(
        check_replay(Some(now + 301), now, tol),
        Err(VerifyError::StaleTimestamp)
    );
    assert_eq!(
        check_replay(Some(0), now, tol),
        Err(VerifyError::StaleTimestamp)
    );
    // Tolerance is configurable, including 0 and absurdly large values.
    assert_eq!(
        check_replay(Some(now - 1), now, 0),
        Err(VerifyError::StaleTimestamp)
    );
    assert_eq!(check_replay(Some(now), now, 0), Ok(()));
    assert_eq!(check_replay(Some(i64::MIN), now, u64::MAX), Ok(()));
    assert_eq!(
        check_replay(Some(i64::MAX), now, u64::MAX),
        Err(VerifyError::StaleTimestamp)
    );
    assert_eq!(check_replay(Some(i64::MAX), i64::MAX, 0), Ok(()));
    assert_eq!(DEFAULT_REPLAY_TOLERANCE_SECS, 1200);
}

#[test]
fn replay_window_uses_hmac_t_and_triggered_at() {
    let now = 1_778_729_300;
    let hmac_only = verifier(&[Check::Hmac], &["s"], None);
    let rsa_only = verifier(&[Check::Rsa], &[], None);
    let both = verifier(&[Check::Rsa, Check::Hmac], &["s"], None);
    let fresh = SignatureOutcome {
        hmac_timestamp: Some(now - 10),
    };
    let stale = SignatureOutcome {
        hmac_timestamp: Some(now - 5000),
    };
    let fresh_iso = Some("2026-05-14T03:28:00Z");
    let stale_iso = Some("2026-05-14T02:00:00Z");

    assert_eq!(
        hmac_only.check_replay_window(&fresh, None, now, 1200),
        Ok(())
    );
    assert_eq!(
        hmac_only.check_replay_window(&stale, fresh_iso, now, 1200),
        Err(VerifyError::StaleTimestamp),
        "hmac trusts the signed t, not the body"
    );
    assert_eq!(
        rsa_only.check_replay_window(&SignatureOutcome::default(), fresh_iso, now, 1200),
        Ok(())
    );
    assert_eq!(
        rsa_only.check_replay_window(&SignatureOutcome::default(), stale_iso, now, 1200),
        Err(VerifyError::StaleTimestamp)
    );
    assert_eq!(
        rsa_only.check_replay_window(&SignatureOutcome::default(), None, now, 1200),
        Err(VerifyError::MissingTimestamp)
    );
    assert_eq!(
        rsa_only.check_replay_window(&SignatureOutcome::default(), Some("yesterday"), now, 1200),
        Err(VerifyError::MissingTimestamp),
        "unparseable triggered_at is missing"
    );
    assert_eq!(
        both.check_replay_window(&fresh, fresh_iso, now, 1200),
        Ok(())
    );
    assert_eq!(
        both.check_replay_window(&fresh, None, now, 1200),
        Err(VerifyError::MissingTimestamp)
    );
    assert_eq!(
        both.check_replay_window(&stale, fresh_iso, now, 1200),
        Err(VerifyError::StaleTimestamp)
    );
}

#[test]
fn iso8601_vectors_from_date_parse() {
    let f = fixture(TIMESTAMPS_JSON);
    let valid = f["valid"].as_array().unwrap();
    assert!(valid.len() > 200);
    for case in valid {
        let text = s(case, "s");
        assert_eq!(parse_iso8601_utc(text), case["unix"].as_i64(), "{text}");
        assert_eq!(
            parse_iso8601_utc_millis(text),
            case["ms"].as_i64(),
            "{text}"
        );
    }
}

#[test]
fn iso8601_known_values() {
    assert_eq!(
        parse_iso8601_utc_millis("1969-12-31T23:59:59.999999999Z"),
        Some(-1)
    );
    assert_eq!(
        parse_iso8601_utc_millis("1970-01-01T00:00:01.5Z"),
        Some(1500)
    );
    assert_eq!(
        parse_iso8601_utc_millis("1970-01-01T00:00:01.05Z"),
        Some(1050)
    );
    assert_eq!(
        parse_iso8601_utc_millis("1970-01-01T00:00:01.0009Z"),
        Some(1000)
    );
    assert_eq!(parse_iso8601_utc_millis("1970-01-01T00:00:01Z"), Some(1000));
    assert_eq!(parse_iso8601_utc_millis("1970-01-01T00:00:01.5"), None);
    assert_eq!(parse_iso8601_utc("1970-01-01T00:00:00Z"), Some(0));
    assert_eq!(
        parse_iso8601_utc("2001-09-09T01:46:40Z"),
        Some(1_000_000_000)
    );
    assert_eq!(
        parse_iso8601_utc("2009-02-13T23:31:30Z"),
        Some(1_234_567_890)
    );
    assert_eq!(
        parse_iso8601_utc("2038-01-19T03:14:07Z"),
        Some(i64::from(i32::MAX))
    );
    assert_eq!(
        parse_iso8601_utc("1969-12-31T23:59:59.999999999Z"),
        Some(-1)
    );
    assert_eq!(
        parse_iso8601_utc("2000-03-01T00:00:00+14:00"),
        Some(951_868_800 - 14 * 3600)
    );
}

#[test]
fn iso8601_rejects_everything_else() {
    for bad in [
        "",
        "2026-05-14",
        "2026-05-14T03:28:20",             // no zone
        "2026-05-14 03:28:20Z",            // space
        "2026-05-14t03:28:20Z",            // lower-case t
        "2026-05-14T03:28:20z",            // lower-case z
        "2026-05-14T03:28Z",               // no seconds
        "2026-05-14T03:28:20.Z",           // empty fraction
        "2026-05-14T03:28:20.1234567890Z", // 10 fraction digits
        "2026-05-14T03:28:20,5Z",          // comma fraction
        "2026-05-14T03:28:20+0200",        // offset without colon
        "2026-05-14T03:28:20+02",          // short offset
        "2026-05-14T03:28:20+24:00",
        "2026-05-14T03:28:20+02:60",
        "2026-05-14T03:28:20Z ",
        " 2026-05-14T03:28:20Z",
        "2026-05-14T03:28:20ZZ",
        "20260514T032820Z",
        "+2026-05-14T03:28:20Z",
        "-2026-05-14T03:28:20Z",
        "12026-05-14T03:28:20Z",
        "2026-5-14T03:28:20Z",
        "2026-00-10T00:00:00Z",
        "2026-13-10T00:00:00Z",
        "2026-01-00T00:00:00Z",
        "2026-01-32T00:00:00Z",
        "2026-04-31T00:00:00Z",
        "2026-02-29T00:00:00Z", // not a leap year
        "1900-02-29T00:00:00Z", // not a leap year (century)
        "2026-05-14T24:00:00Z",
        "2026-05-14T23:60:00Z",
        "2026-05-14T23:59:60Z", // no leap seconds
        "2026-05-14T03:28:2OZ",
        "2026-05-14T03:28:20\u{2212}02:00", // unicode minus
        "２026-05-14T03:28:20Z",            // full-width digit
        "2026-05-14T03:28:20.5+",
    ] {
        assert_eq!(parse_iso8601_utc(bad), None, "{bad:?}");
    }
    // Leap days that do exist.
    assert!(parse_iso8601_utc("2000-02-29T00:00:00Z").is_some());
    assert!(parse_iso8601_utc("2024-02-29T00:00:00Z").is_some());
}

/// Reference: days since 1970-01-01 by plain counting (a different method from
/// the era arithmetic in the implementation).
fn reference_days(year: i64, month: i64, day: i64) -> i64 {
    let leap = |y: i64| (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let year_len = |y: i64| if leap(y) { 366 } else { 365 };
    let month_lens = |y: i64| {
        [
            31,
            if leap(y) { 29 } else { 28 },
            31,
            30,
            31,
            30,
            31,
            31,
            30,
            31,
            30,
            31,
        ]
    };
    let mut days = 0i64;
    if year >= 1970 {
        for y in 1970..year {
            days += year_len(y);
        }
    } else {
        for y in year..1970 {
            days -= year_len(y);
        }
    }
    for m in 0..(month - 1) as usize {
        days += month_lens(year)[m];
    }
    days + day - 1
}

proptest! {
    #[test]
    fn iso8601_matches_reference(
        year in 0i64..=9999,
        month in 1i64..=12,
        day in 1i64..=31,
        hour in 0i64..=23,
        minute in 0i64..=59,
        second in 0i64..=59,
        frac in proptest::option::of("[0-9]{1,9}"),
        offset in proptest::option::of((any::<bool>(), 0i64..=23, 0i64..=59)),
    ) {
        let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
        let month_len = [31, if leap { 29 } else { 28 }, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][(month - 1) as usize];
        let frac_text = frac.map(|f| format!(".{f}")).unwrap_or_default();
        let (zone, offset_secs) = match offset {
            None => ("Z".to_owned(), 0),
            Some((neg, h, m)) => (
                format!("{}{h:02}:{m:02}", if neg { '-' } else { '+' }),
                if neg { -(h * 3600 + m * 60) } else { h * 3600 + m * 60 },
            ),
        };
        let text = format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}{frac_text}{zone}");
        let got = parse_iso8601_utc(&text);
        if day > month_len {
            prop_assert_eq!(got, None, "{}", text);
        } else {
            let expected = reference_days(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second - offset_secs;
            prop_assert_eq!(got, Some(expected), "{}", text);
        }
    }

    #[test]
    fn iso8601_never_panics(text in "\\PC{0,40}") {
        let _ = parse_iso8601_utc(&text);
    }

    #[test]
    fn hmac_verify_never_panics_and_rejects_garbage(header in "\\PC{0,200}", body in proptest::collection::vec(any::<u8>(), 0..64)) {
        let v = verifier(&[Check::Hmac], &["secret-a", "secret-b"], None);
        let h = Headers::new(&[(HMAC_SIGNATURE_HEADER, header.as_str())]);
        // Random text is (overwhelmingly) not a valid MAC.
        prop_assert_eq!(check(&v, &h.lookup(), &body, None), Err(VerifyError::InvalidSignature));
    }

    #[test]
    fn hmac_structured_headers_never_panic(
        t in "[0-9a-z-]{0,25}",
        sigs in proptest::collection::vec("[0-9a-fA-F]{0,70}", 0..12),
        labels in proptest::collection::vec("(v0|v1|v2|t|x|)", 0..12),
    ) {
        let mut header = format!("t={t}");
        for (sig, label) in sigs.iter().zip(labels.iter().chain(std::iter::repeat(&"v1".to_owned()))) {
            header.push_str(&format!(",{label}={sig}"));
        }
        let _ = verify_hmac(&header, b"{}", &[Secret::new("k")]);
    }

    #[test]
    fn rsa_verify_never_panics(header in "\\PC{0,600}") {
        let f = fixture(RSA_JSON);
        let key = PublicKey::from_pem(s(&f, "public_key_pkcs1_pem")).unwrap();
        match rsa_signatures(&header, &key) {
            Err(e) => prop_assert_eq!(e, VerifyError::InvalidSignature),
            Ok(sigs) => prop_assert!(sigs.iter().all(|sig| sig.len() == key.size())),
        }
    }

    #[test]
    fn basic_and_header_never_panic(value in "\\PC{0,80}") {
        let v = Verifier::new(
            vec![Check::Basic],
            vec![],
            Some(BasicCredentials::parse("user:pass").unwrap()),
            None,
            None,
            false,
        ).unwrap();
        let h = Headers::new(&[("authorization", value.as_str())]);
        let _ = check(&v, &h.lookup(), b"", None);
        let _ = HeaderCheck::parse(&value);
        let _ = BasicCredentials::parse(&value);
        let _ = parse_checks(&value);
        let _ = PublicKey::from_pem(&value);
    }
}
