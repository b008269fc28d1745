//! Contentstack's RSA public key as the runtime's WebCrypto imports it: a PEM (PKCS#1 or SPKI)
//! read into SubjectPublicKeyInfo DER, with just enough DER parsing to reject anything that is
//! not an RSA public key. The signature itself is checked by the shell
//! (`crate::http::webcrypto`), so no RSA arithmetic is compiled into the Worker.
//!
//! Choices where the contract is silent:
//! - The PEM's label decides the form: `RSA PUBLIC KEY` holds PKCS#1 `RSAPublicKey`,
//!   `PUBLIC KEY` holds SPKI with the `rsaEncryption` algorithm (its parameters `NULL` or
//!   absent). A label that does not match its contents is an error.
//! - Both forms are kept as the same SPKI bytes (parameters `NULL`), so the same key compares
//!   equal whichever form it came in.
//! - DER must be strict: definite, minimal lengths; positive, minimally encoded integers; no
//!   trailing bytes. The modulus must be 1,024 to 4,096 bits and the public exponent an odd
//!   number from 3 to 2³² − 1.

use base64::Engine as _;

use super::VerifierConfigError;

/// `rsaEncryption`, 1.2.840.113549.1.1.1.
const RSA_ENCRYPTION_OID: [u8; 9] = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
const MIN_MODULUS_BITS: usize = 1024;
const MAX_MODULUS_BITS: usize = 4096;

const SEQUENCE: u8 = 0x30;
const INTEGER: u8 = 0x02;
const BIT_STRING: u8 = 0x03;
const NULL: u8 = 0x05;
const OID: u8 = 0x06;

/// An RSA public key, as SubjectPublicKeyInfo DER.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey {
    spki: Vec<u8>,
    modulus_len: usize,
}

impl PublicKey {
    /// Parses a PEM public key: `-----BEGIN RSA PUBLIC KEY-----` (PKCS#1) or
    /// `-----BEGIN PUBLIC KEY-----` (SPKI). Surrounding whitespace, `\r\n` line ends and
    /// literal `\n` escapes (a PEM pasted into a one-line variable) are tolerated.
    pub fn from_pem(pem: &str) -> Result<Self, VerifierConfigError> {
        let pem = pem.trim().replace("\\n", "\n").replace("\r\n", "\n");
        let bad = |what: &str| VerifierConfigError::InvalidPublicKey(what.to_owned());
        let (pkcs1, form) = if let Some(der) = pem_body(&pem, "RSA PUBLIC KEY") {
            let der = der.ok_or_else(|| bad("not a valid PKCS#1 RSA public key PEM"))?;
            (der, "PKCS#1 RSA")
        } else if let Some(der) = pem_body(&pem, "PUBLIC KEY") {
            let der = der
                .as_deref()
                .and_then(pkcs1_of_spki)
                .ok_or_else(|| bad("not a valid SPKI RSA public key PEM"))?;
            (der.to_vec(), "SPKI RSA")
        } else {
            return Err(bad(
                "expected a PEM starting with `-----BEGIN RSA PUBLIC KEY-----` or `-----BEGIN PUBLIC KEY-----`",
            ));
        };
        let modulus_len = modulus_len(&pkcs1)
            .ok_or_else(|| bad(&format!("not a valid {form} public key PEM")))?;
        Ok(PublicKey {
            spki: spki_of_pkcs1(&pkcs1),
            modulus_len,
        })
    }

    /// Parses Contentstack's `/.well-known/public-keys.json` document,
    /// `{"signing-key": "-----BEGIN RSA PUBLIC KEY-----\n…"}`.
    pub fn from_well_known_json(doc: &[u8]) -> Result<Self, VerifierConfigError> {
        let value: serde_json::Value = serde_json::from_slice(doc)
            .map_err(|_| VerifierConfigError::InvalidWellKnown("not valid JSON".to_owned()))?;
        let pem = value
            .get("signing-key")
            .and_then(serde_json::Value::as_str)
            .ok_or_else(|| {
                VerifierConfigError::InvalidWellKnown(
                    "no `signing-key` string in the document".to_owned(),
                )
            })?;
        Self::from_pem(pem).map_err(|e| match e {
            VerifierConfigError::InvalidPublicKey(m) => VerifierConfigError::InvalidWellKnown(m),
            other => other,
        })
    }

    /// The SubjectPublicKeyInfo DER (what WebCrypto's `importKey("spki", …)` takes).
    pub fn spki_der(&self) -> &[u8] {
        &self.spki
    }

    /// The signature length: the modulus in bytes.
    pub fn size(&self) -> usize {
        self.modulus_len
    }

    /// Modulus size in bits.
    pub fn bits(&self) -> usize {
        self.modulus_len * 8
    }
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PublicKey(RSA {} bits)", self.bits())
    }
}

/// The DER inside a PEM with this exact label: `None` when the PEM has another label,
/// `Some(None)` when it has this one but no valid body.
fn pem_body(pem: &str, label: &str) -> Option<Option<Vec<u8>>> {
    let begin = format!("-----BEGIN {label}-----");
    let rest = pem.strip_prefix(&begin)?;
    let end = format!("-----END {label}-----");
    let Some(body) = rest.trim_end().strip_suffix(&end) else {
        return Some(None);
    };
    let text: String = body.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    Some(base64::engine::general_purpose::STANDARD.decode(text).ok())
}

/// One DER element: its tag, its contents and the bytes after it.
fn element(der: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = der.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (first as usize, rest)
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let (bytes, rest) = rest.split_at(n);
        if bytes[0] == 0 {
            return None;
        }
        let len = bytes.iter().fold(0usize, |acc, b| (acc << 8) | *b as usize);
        if len < 0x80 {
            return None;
        }
        (len, rest)
    };
    if rest.len() < len {
        return None;
    }
    let (contents, after) = rest.split_at(len);
    Some((tag, contents, after))
}

/// The only element of `der`, with this tag.
fn only(der: &[u8], tag: u8) -> Option<&[u8]> {
    match element(der)? {
        (t, contents, []) if t == tag => Some(contents),
        _ => None,
    }
}

/// A positive, minimally encoded INTEGER's magnitude (leading zero dropped).
fn positive_integer(contents: &[u8]) -> Option<&[u8]> {
    match contents {
        [] => None,
        [0, next, ..] if *next >= 0x80 => Some(&contents[1..]),
        [0, ..] if contents.len() > 1 => None,
        [first, ..] if *first >= 0x80 => None,
        _ => Some(contents),
    }
}

/// The modulus length in bytes of a PKCS#1 `RSAPublicKey`, when it is a usable key.
fn modulus_len(pkcs1: &[u8]) -> Option<usize> {
    let seq = only(pkcs1, SEQUENCE)?;
    let (tag, n, rest) = element(seq)?;
    if tag != INTEGER {
        return None;
    }
    let e = only(rest, INTEGER)?;
    let n = positive_integer(n)?;
    let e = positive_integer(e)?;
    let bits = n.len() * 8;
    if !(MIN_MODULUS_BITS..=MAX_MODULUS_BITS).contains(&bits) || n[n.len() - 1] & 1 == 0 {
        return None;
    }
    if e.len() > 4 {
        return None;
    }
    let e = e.iter().fold(0u64, |acc, b| (acc << 8) | *b as u64);
    if e < 3 || e & 1 == 0 {
        return None;
    }
    Some(n.len())
}

/// The PKCS#1 key inside an SPKI with the `rsaEncryption` algorithm.
fn pkcs1_of_spki(spki: &[u8]) -> Option<&[u8]> {
    let seq = only(spki, SEQUENCE)?;
    let (tag, algorithm, rest) = element(seq)?;
    if tag != SEQUENCE {
        return None;
    }
    let (tag, oid, params) = element(algorithm)?;
    if tag != OID || oid != RSA_ENCRYPTION_OID {
        return None;
    }
    if !params.is_empty() && only(params, NULL) != Some(&[]) {
        return None;
    }
    match only(rest, BIT_STRING)? {
        [0, key @ ..] => Some(key),
        _ => None,
    }
}

/// DER length octets.
fn length(len: usize) -> Vec<u8> {
    if len < 0x80 {
        return vec![len as u8];
    }
    let bytes: Vec<u8> = len
        .to_be_bytes()
        .into_iter()
        .skip_while(|b| *b == 0)
        .collect();
    let mut out = vec![0x80 | bytes.len() as u8];
    out.extend(bytes);
    out
}

fn wrap(tag: u8, contents: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    out.extend(length(contents.len()));
    out.extend_from_slice(contents);
    out
}

/// The SPKI of a PKCS#1 key (`rsaEncryption`, parameters `NULL`).
fn spki_of_pkcs1(pkcs1: &[u8]) -> Vec<u8> {
    let mut algorithm = wrap(OID, &RSA_ENCRYPTION_OID);
    algorithm.extend([NULL, 0]);
    let mut bits = vec![0];
    bits.extend_from_slice(pkcs1);
    let mut body = wrap(SEQUENCE, &algorithm);
    body.extend(wrap(BIT_STRING, &bits));
    wrap(SEQUENCE, &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A PKCS#1 key with this modulus and exponent (big-endian magnitudes).
    fn pkcs1(n: &[u8], e: &[u8]) -> Vec<u8> {
        let int = |m: &[u8]| {
            let mut c = Vec::new();
            if m[0] >= 0x80 {
                c.push(0);
            }
            c.extend_from_slice(m);
            wrap(INTEGER, &c)
        };
        let mut body = int(n);
        body.extend(int(e));
        wrap(SEQUENCE, &body)
    }

    fn modulus(bits: usize) -> Vec<u8> {
        let mut n = vec![0xc5; bits / 8];
        let last = n.len() - 1;
        n[last] |= 1;
        n
    }

    #[test]
    fn keys_outside_the_accepted_sizes_and_exponents_are_refused() {
        assert_eq!(modulus_len(&pkcs1(&modulus(2048), &[1, 0, 1])), Some(256));
        assert_eq!(modulus_len(&pkcs1(&modulus(1024), &[3])), Some(128));
        assert_eq!(modulus_len(&pkcs1(&modulus(4096), &[1, 0, 1])), Some(512));
        assert_eq!(modulus_len(&pkcs1(&modulus(1016), &[1, 0, 1])), None);
        assert_eq!(modulus_len(&pkcs1(&modulus(4104), &[1, 0, 1])), None);
        assert_eq!(
            modulus_len(&pkcs1(&modulus(2048), &[2])),
            None,
            "even exponent"
        );
        assert_eq!(
            modulus_len(&pkcs1(&modulus(2048), &[1])),
            None,
            "exponent 1"
        );
        assert_eq!(
            modulus_len(&pkcs1(&modulus(2048), &[1, 0, 0, 0, 1])),
            None,
            "over 2^32"
        );
        let mut even = modulus(2048);
        *even.last_mut().unwrap() = 0xc4;
        assert_eq!(modulus_len(&pkcs1(&even, &[1, 0, 1])), None, "even modulus");
    }

    #[test]
    fn der_must_be_strict() {
        let good = pkcs1(&modulus(2048), &[1, 0, 1]);
        let mut trailing = good.clone();
        trailing.push(0);
        assert_eq!(modulus_len(&trailing), None, "trailing bytes");
        assert_eq!(modulus_len(&good[..good.len() - 1]), None, "cut short");
        // A long-form length where a short one would do.
        assert_eq!(element(&[0x02, 0x81, 0x05, 1, 2, 3, 4, 5]), None);
        assert_eq!(element(&[0x02, 0x80]), None, "indefinite length");
        assert_eq!(
            element(&[0x02, 0x82, 0x00, 0x90]),
            None,
            "leading zero in the length"
        );
        assert_eq!(
            positive_integer(&[0x00, 0x10]),
            None,
            "needless leading zero"
        );
        assert_eq!(positive_integer(&[0x90]), None, "negative");
        assert_eq!(positive_integer(&[0x00, 0x90]), Some(&[0x90][..]));
        assert_eq!(positive_integer(&[]), None);
    }

    #[test]
    fn spki_wraps_pkcs1_and_unwraps_with_or_without_null_parameters() {
        let key = pkcs1(&modulus(2048), &[1, 0, 1]);
        let spki = spki_of_pkcs1(&key);
        assert_eq!(pkcs1_of_spki(&spki), Some(&key[..]));
        // The same without the NULL parameters.
        let mut algorithm = wrap(OID, &RSA_ENCRYPTION_OID);
        let mut bits = vec![0];
        bits.extend_from_slice(&key);
        let mut body = wrap(SEQUENCE, &algorithm);
        body.extend(wrap(BIT_STRING, &bits));
        assert_eq!(pkcs1_of_spki(&wrap(SEQUENCE, &body)), Some(&key[..]));
        // Another algorithm (id-ecPublicKey) is refused.
        algorithm = wrap(OID, &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01]);
        let mut body = wrap(SEQUENCE, &algorithm);
        body.extend(wrap(BIT_STRING, &bits));
        assert_eq!(pkcs1_of_spki(&wrap(SEQUENCE, &body)), None);
        // Unused bits in the BIT STRING are refused.
        let mut body = wrap(SEQUENCE, &wrap(OID, &RSA_ENCRYPTION_OID));
        let mut odd = vec![1];
        odd.extend_from_slice(&key);
        body.extend(wrap(BIT_STRING, &odd));
        assert_eq!(pkcs1_of_spki(&wrap(SEQUENCE, &body)), None);
    }

    #[test]
    fn lengths_encode_minimally() {
        assert_eq!(length(5), vec![5]);
        assert_eq!(length(0x7f), vec![0x7f]);
        assert_eq!(length(0x80), vec![0x81, 0x80]);
        assert_eq!(length(0x10e), vec![0x82, 0x01, 0x0e]);
        let big = wrap(SEQUENCE, &[7u8; 300]);
        assert_eq!(
            element(&big).map(|(t, c, r)| (t, c.len(), r.len())),
            Some((SEQUENCE, 300, 0))
        );
    }
}
