//! Webhook signature checks (docs/CONTRACT.md, "Verification"), as plain Rust with no Worker types.
//!
//! This module owns:
//! - parsing the verification settings (`WEBHOOK_VERIFY`, `CONTENTSTACK_HMAC_SECRETS`,
//!   `WEBHOOK_BASIC_AUTH`, `WEBHOOK_HEADER`, `CONTENTSTACK_PUBLIC_KEY` and the
//!   `/.well-known/public-keys.json` document) into a [`Verifier`], rejecting bad
//!   configuration with a [`VerifierConfigError`];
//! - checking one request's headers and raw body bytes against every listed check
//!   ([`Verifier::verify`]), reporting the first failure as a [`VerifyError`];
//! - the replay window ([`check_replay`], [`Verifier::check_replay_window`]) and the
//!   `triggered_at` parser ([`parse_iso8601_utc`]).
//!
//! The Worker shell supplies header lookup, the body, the clock and — when
//! [`Verifier::needs_public_key`] says so — the fetched Contentstack public key.
//!
//! Behaviour the spec leaves open, decided here:
//! - Checks run in a fixed order, cheapest first: `header`, `basic`, `hmac`, `rsa`;
//!   the first failure is reported. So unauthenticated junk never costs an RSA operation.
//! - `none` must be the only check, and only with `ALLOW_UNVERIFIED=true`.
//! - HMAC: `t` must be ASCII digits (no sign) fitting an `i64`, and is signed exactly
//!   as sent; a repeated `t` with a different value is malformed. Each `v1` must be
//!   exactly 64 hex digits; upper- or mixed-case hex is accepted, because it encodes
//!   the same 32 MAC bytes (Contentstack sends lower case). Labels other than `t`
//!   and `v1`, and pieces without `=`, are ignored; whitespace around pieces is trimmed.
//! - RSA: `v1` is standard-alphabet base64 with or without `=` padding (URL-safe
//!   alphabet is rejected); the decoded signature must be exactly the key's size.
//!   The PSS salt length must be exactly 32 bytes. The signature math runs in the
//!   runtime's WebCrypto (`RSA-PSS`, SHA-256, `saltLength` 32): [`Verifier::verify`]
//!   checks everything else and hands the candidate signatures over as a [`PendingRsa`],
//!   which [`Verified::finish`] requires an answer for.
//! - At most [`MAX_SIGNATURES`] `v1` values per header are tried; later ones are ignored.
//! - A header that is present but empty is malformed (`invalid_signature`), not missing.
//! - `rsa` listed but no key configured or supplied: [`VerifyError::KeyUnavailable`]
//!   (code `unavailable`, 503), so Contentstack retries instead of counting a 401.
//! - Basic auth: the scheme is case-insensitive and may be followed by several spaces;
//!   the credentials are standard base64 (padding optional), split at the first `:`.
//! - Custom header: the value is compared exactly after trimming surrounding spaces
//!   and tabs (which HTTP does not count as part of a value).

mod key;
mod time;

#[cfg(test)]
mod tests;

use crate::time::parse_iso8601_utc;
pub use key::PublicKey;
pub use time::{check_replay, DEFAULT_REPLAY_TOLERANCE_SECS, FUTURE_TOLERANCE_SECS};

use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use std::fmt;
use std::str::FromStr;
use subtle::ConstantTimeEq;

/// RSA signature header (case-insensitive lookup is the caller's job).
pub const RSA_SIGNATURE_HEADER: &str = "X-Contentstack-Request-Signature";
/// HMAC signature header.
pub const HMAC_SIGNATURE_HEADER: &str = "x-contentstack-hmac-signature";
/// Basic auth header.
pub const AUTHORIZATION_HEADER: &str = "Authorization";
/// Most `v1` signatures tried per header.
pub const MAX_SIGNATURES: usize = 8;
/// The PSS salt length Contentstack uses, in bytes.
pub const PSS_SALT_LEN: usize = 32;

/// Standard base64 alphabet, padding optional.
const BASE64_LENIENT: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

/// Why a request failed verification. Messages never contain secrets,
/// signatures, or where a comparison differed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// A required signature header (rsa or hmac) is absent.
    #[error("the webhook signature header is missing")]
    MissingSignature,
    /// A signature header is malformed or no signature in it matches.
    #[error("the webhook signature is malformed or does not match")]
    InvalidSignature,
    /// Basic auth or the custom header is missing or wrong.
    #[error("the webhook credentials are missing or wrong")]
    Unauthorized,
    /// No usable timestamp for the replay window.
    #[error("the webhook carries no usable timestamp for the replay check")]
    MissingTimestamp,
    /// The timestamp is too old or too far in the future.
    #[error("the webhook timestamp is outside the accepted time window")]
    StaleTimestamp,
    /// `rsa` is on but no public key was configured or supplied: the shell could
    /// not fetch it. Not the sender's fault, so 503 and Contentstack retries.
    #[error("the Contentstack signing key is not available")]
    KeyUnavailable,
}

impl VerifyError {
    /// The error code (docs/CONTRACT.md, "Intake answers").
    pub fn code(&self) -> &'static str {
        match self {
            Self::MissingSignature => "missing_signature",
            Self::InvalidSignature => "invalid_signature",
            Self::Unauthorized => "unauthorized",
            Self::MissingTimestamp => "missing_timestamp",
            Self::StaleTimestamp => "stale_timestamp",
            Self::KeyUnavailable => "unavailable",
        }
    }

    /// The HTTP status docs/CONTRACT.md ("Intake answers") assigns to this error.
    pub fn status(&self) -> u16 {
        match self {
            Self::KeyUnavailable => 503,
            _ => 401,
        }
    }
}

/// Invalid verification configuration (answered as 500 `misconfigured`).
/// Messages never contain secret values. Errors from the stand-alone parsers
/// ([`parse_checks`], [`BasicCredentials::parse`], [`HeaderCheck::parse`]) do not
/// name the variable (the caller prefixes it); those from [`Verifier::new`] do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifierConfigError {
    /// `WEBHOOK_VERIFY` names a check that does not exist.
    #[error("unknown check `{0}` (expected rsa, hmac, basic, header or none)")]
    UnknownCheck(String),
    /// `none` listed together with real checks.
    #[error("WEBHOOK_VERIFY: `none` cannot be combined with other checks")]
    NoneCombined,
    /// `none` without `ALLOW_UNVERIFIED=true`.
    #[error("WEBHOOK_VERIFY=none requires ALLOW_UNVERIFIED=true (local development only)")]
    UnverifiedNotAllowed,
    /// `hmac` listed, no secret.
    #[error("WEBHOOK_VERIFY lists `hmac` but CONTENTSTACK_HMAC_SECRETS is empty")]
    MissingHmacSecrets,
    /// `basic` listed, no credentials.
    #[error("WEBHOOK_VERIFY lists `basic` but WEBHOOK_BASIC_AUTH is not set")]
    MissingBasicAuth,
    /// `header` listed, no header.
    #[error("WEBHOOK_VERIFY lists `header` but WEBHOOK_HEADER is not set")]
    MissingHeaderCheck,
    /// `WEBHOOK_BASIC_AUTH` malformed.
    #[error("{0}")]
    InvalidBasicAuth(&'static str),
    /// `WEBHOOK_HEADER` malformed.
    #[error("{0}")]
    InvalidHeaderCheck(&'static str),
    /// The public key PEM could not be used.
    #[error("CONTENTSTACK_PUBLIC_KEY: {0}")]
    InvalidPublicKey(String),
    /// The `/.well-known/public-keys.json` document could not be used.
    #[error("public-keys.json: {0}")]
    InvalidWellKnown(String),
}

impl VerifierConfigError {
    /// The error code (docs/CONTRACT.md, "Intake answers") for every configuration problem.
    pub fn code(&self) -> &'static str {
        "misconfigured"
    }
}

// ---------------------------------------------------------------------------
// Settings
// ---------------------------------------------------------------------------

/// One entry of `WEBHOOK_VERIFY`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Check {
    /// RSA-PSS signature (the default).
    Rsa,
    /// HMAC-SHA256 signature.
    Hmac,
    /// `Authorization: Basic`.
    Basic,
    /// A custom header with a fixed value.
    Header,
    /// No verification (development only).
    None,
}

impl Check {
    /// The name used in `WEBHOOK_VERIFY`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Rsa => "rsa",
            Self::Hmac => "hmac",
            Self::Basic => "basic",
            Self::Header => "header",
            Self::None => "none",
        }
    }
}

impl FromStr for Check {
    type Err = VerifierConfigError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let name = s.trim();
        [Self::Rsa, Self::Hmac, Self::Basic, Self::Header, Self::None]
            .into_iter()
            .find(|c| c.as_str().eq_ignore_ascii_case(name))
            .ok_or_else(|| {
                VerifierConfigError::UnknownCheck(crate::text::prefix(name, 40).to_owned())
            })
    }
}

/// Parses `WEBHOOK_VERIFY`: comma-separated, trimmed, case-insensitive names.
/// Empty pieces are skipped, duplicates collapsed (first position kept), and a
/// value with no names at all (empty or only commas/spaces) gives the default `[Rsa]`.
pub fn parse_checks(s: &str) -> Result<Vec<Check>, VerifierConfigError> {
    let mut out = Vec::new();
    for piece in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let check: Check = piece.parse()?;
        if !out.contains(&check) {
            out.push(check);
        }
    }
    if out.is_empty() {
        out.push(Check::Rsa);
    }
    Ok(out)
}

/// A secret value. `Debug` prints `Secret(***)`; there is no `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret's bytes, for comparisons and MACs only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Parses `CONTENTSTACK_HMAC_SECRETS`: secrets separated by commas or newlines,
/// each trimmed, empty pieces dropped. (A secret therefore cannot contain a comma
/// or begin/end with whitespace.)
pub fn parse_hmac_secrets(s: &str) -> Vec<Secret> {
    s.split([',', '\n'])
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(Secret::new)
        .collect()
}

/// `WEBHOOK_BASIC_AUTH` = `user:password`.
#[derive(Clone, PartialEq, Eq)]
pub struct BasicCredentials {
    user: Secret,
    password: Secret,
}

impl BasicCredentials {
    /// Parses `user:password`: surrounding whitespace of the whole value is
    /// trimmed, the first `:` splits, the password may contain `:` and may be
    /// empty, the user may not.
    pub fn parse(s: &str) -> Result<Self, VerifierConfigError> {
        let (user, password) =
            s.trim()
                .split_once(':')
                .ok_or(VerifierConfigError::InvalidBasicAuth(
                    "expected `user:password`",
                ))?;
        if user.is_empty() {
            return Err(VerifierConfigError::InvalidBasicAuth(
                "the user name is empty",
            ));
        }
        Ok(Self {
            user: Secret::new(user),
            password: Secret::new(password),
        })
    }

    fn matches(&self, authorization: Option<&str>) -> bool {
        let Some(decoded) = authorization.and_then(decode_basic) else {
            return false;
        };
        let Some(colon) = decoded.iter().position(|&b| b == b':') else {
            return false;
        };
        let (user, password) = (&decoded[..colon], &decoded[colon + 1..]);
        let ok = user.ct_eq(self.user.expose().as_bytes())
            & password.ct_eq(self.password.expose().as_bytes());
        bool::from(ok)
    }
}

impl FromStr for BasicCredentials {
    type Err = VerifierConfigError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Debug for BasicCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BasicCredentials(***)")
    }
}

/// `Basic <base64>` → decoded credential bytes.
fn decode_basic(value: &str) -> Option<Vec<u8>> {
    let value = value.trim();
    let (scheme, rest) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let creds = rest.trim_start_matches(' ');
    if creds.is_empty() {
        return None;
    }
    BASE64_LENIENT.decode(creds).ok()
}

/// `WEBHOOK_HEADER` = `Header-Name: value`.
#[derive(Clone, PartialEq, Eq)]
pub struct HeaderCheck {
    name: String,
    value: Secret,
}

impl HeaderCheck {
    /// Parses `Header-Name: value`. The name (trimmed) must be a valid HTTP
    /// field name; the value (trimmed of spaces and tabs) must be non-empty and
    /// free of control characters.
    pub fn parse(s: &str) -> Result<Self, VerifierConfigError> {
        let (name, value) = s
            .split_once(':')
            .ok_or(VerifierConfigError::InvalidHeaderCheck(
                "expected `Header-Name: value`",
            ))?;
        let name = name.trim();
        if name.is_empty() || !name.bytes().all(is_tchar) {
            return Err(VerifierConfigError::InvalidHeaderCheck(
                "the header name is empty or not a valid HTTP header name",
            ));
        }
        let value = trim_ows(value.trim_end_matches(['\r', '\n']));
        if value.is_empty() {
            return Err(VerifierConfigError::InvalidHeaderCheck(
                "the header value is empty",
            ));
        }
        if value.chars().any(|c| c.is_control() && c != '\t') {
            return Err(VerifierConfigError::InvalidHeaderCheck(
                "the header value contains control characters",
            ));
        }
        Ok(Self {
            name: name.to_owned(),
            value: Secret::new(value),
        })
    }

    /// The header name (not secret).
    pub fn name(&self) -> &str {
        &self.name
    }

    fn matches(&self, received: Option<&str>) -> bool {
        received.is_some_and(|v| {
            bool::from(trim_ows(v).as_bytes().ct_eq(self.value.expose().as_bytes()))
        })
    }
}

impl FromStr for HeaderCheck {
    type Err = VerifierConfigError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Debug for HeaderCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HeaderCheck")
            .field("name", &self.name)
            .field("value", &self.value)
            .finish()
    }
}

/// RFC 9110 `tchar`.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Trims HTTP optional whitespace (spaces and tabs).
fn trim_ows(s: &str) -> &str {
    s.trim_matches([' ', '\t'])
}

// ---------------------------------------------------------------------------
// The verifier
// ---------------------------------------------------------------------------

/// RSA-PSS signatures still to be checked against `key` (by the shell's WebCrypto): each is
/// exactly the key's size; any one valid is enough.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingRsa {
    pub key: PublicKey,
    pub signatures: Vec<Vec<u8>>,
}

/// What [`Verifier::verify`] decided, with the RSA check that remains (when `rsa` is listed).
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use = "an RSA check may remain: call `finish` with its result"]
pub struct Verified {
    outcome: SignatureOutcome,
    pub rsa: Option<PendingRsa>,
}

impl Verified {
    /// The outcome, once the pending RSA check (if any) has been answered: `rsa_valid` says
    /// whether one of its signatures verified. A pending check without an answer fails.
    pub fn finish(self, rsa_valid: Option<bool>) -> Result<SignatureOutcome, VerifyError> {
        match (self.rsa, rsa_valid) {
            (None, _) | (Some(_), Some(true)) => Ok(self.outcome),
            (Some(_), _) => Err(VerifyError::InvalidSignature),
        }
    }
}

/// What a successful [`Verifier::verify`] learned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SignatureOutcome {
    /// The HMAC `t` (unix seconds), when `hmac` was checked.
    pub hmac_timestamp: Option<i64>,
}

/// Every configured check, validated.
#[derive(Debug, Clone)]
pub struct Verifier {
    checks: Vec<Check>,
    hmac_secrets: Vec<Secret>,
    basic: Option<BasicCredentials>,
    header: Option<HeaderCheck>,
    public_key: Option<PublicKey>,
}

/// Order in which listed checks are evaluated.
const CHECK_ORDER: [Check; 4] = [Check::Header, Check::Basic, Check::Hmac, Check::Rsa];

impl Verifier {
    /// Validates the configuration.
    ///
    /// `checks` usually comes from [`parse_checks`]; an empty list means the
    /// default `[Rsa]`. Errors: `hmac` with no secret, `basic` with no
    /// credentials, `header` with no header, `none` with other checks, `none`
    /// without `allow_unverified`, or an unparseable `public_key_pem`. `rsa`
    /// without a PEM is fine: the shell fetches the key ([`Self::needs_public_key`]).
    /// Settings for checks that are not listed are kept but unused.
    pub fn new(
        checks: Vec<Check>,
        hmac_secrets: Vec<Secret>,
        basic: Option<BasicCredentials>,
        header: Option<HeaderCheck>,
        public_key_pem: Option<&str>,
        allow_unverified: bool,
    ) -> Result<Self, VerifierConfigError> {
        let mut unique: Vec<Check> = Vec::with_capacity(checks.len());
        for c in checks {
            if !unique.contains(&c) {
                unique.push(c);
            }
        }
        if unique.is_empty() {
            unique.push(Check::Rsa);
        }
        if unique.contains(&Check::None) {
            if unique.len() > 1 {
                return Err(VerifierConfigError::NoneCombined);
            }
            if !allow_unverified {
                return Err(VerifierConfigError::UnverifiedNotAllowed);
            }
        }
        if unique.contains(&Check::Hmac) && hmac_secrets.is_empty() {
            return Err(VerifierConfigError::MissingHmacSecrets);
        }
        if unique.contains(&Check::Basic) && basic.is_none() {
            return Err(VerifierConfigError::MissingBasicAuth);
        }
        if unique.contains(&Check::Header) && header.is_none() {
            return Err(VerifierConfigError::MissingHeaderCheck);
        }
        let public_key = match public_key_pem.map(str::trim).filter(|p| !p.is_empty()) {
            Some(pem) => Some(PublicKey::from_pem(pem)?),
            None => None,
        };
        Ok(Self {
            checks: unique,
            hmac_secrets,
            basic,
            header,
            public_key,
        })
    }

    /// The listed checks (deduplicated, in configuration order).
    #[cfg(test)]
    pub fn checks(&self) -> &[Check] {
        &self.checks
    }

    /// Whether `check` is listed.
    pub fn has(&self, check: Check) -> bool {
        self.checks.contains(&check)
    }

    /// True when `rsa` is listed and no key was configured: the shell must
    /// fetch `/.well-known/public-keys.json` and pass the key to [`Self::verify`].
    pub fn needs_public_key(&self) -> bool {
        self.has(Check::Rsa) && self.public_key.is_none()
    }

    /// The configured (`CONTENTSTACK_PUBLIC_KEY`) key, if any.
    #[cfg(test)]
    pub fn configured_public_key(&self) -> Option<&PublicKey> {
        self.public_key.as_ref()
    }

    /// Runs every listed check on the request, in the order header, basic,
    /// hmac, rsa, and returns the first failure.
    ///
    /// `header` looks a header up by name (case-insensitively: the caller's
    /// job). `body` is the raw body exactly as received. `fetched_key` is used
    /// for `rsa` when no key was configured; if neither exists the result is
    /// [`VerifyError::KeyUnavailable`] (checked before any header is examined).
    pub fn verify(
        &self,
        header: &dyn Fn(&str) -> Option<String>,
        body: &[u8],
        fetched_key: Option<&PublicKey>,
    ) -> Result<Verified, VerifyError> {
        let rsa_key = self.public_key.as_ref().or(fetched_key);
        if self.has(Check::Rsa) && rsa_key.is_none() {
            return Err(VerifyError::KeyUnavailable);
        }
        let mut outcome = SignatureOutcome::default();
        let mut rsa = None;
        for check in CHECK_ORDER.into_iter().filter(|c| self.has(*c)) {
            match check {
                Check::Header => {
                    let ok = self
                        .header
                        .as_ref()
                        .is_some_and(|h| h.matches(header(h.name()).as_deref()));
                    if !ok {
                        return Err(VerifyError::Unauthorized);
                    }
                }
                Check::Basic => {
                    let ok = self
                        .basic
                        .as_ref()
                        .is_some_and(|b| b.matches(header(AUTHORIZATION_HEADER).as_deref()));
                    if !ok {
                        return Err(VerifyError::Unauthorized);
                    }
                }
                Check::Hmac => {
                    let value =
                        header(HMAC_SIGNATURE_HEADER).ok_or(VerifyError::MissingSignature)?;
                    outcome.hmac_timestamp = Some(verify_hmac(&value, body, &self.hmac_secrets)?);
                }
                Check::Rsa => {
                    let value =
                        header(RSA_SIGNATURE_HEADER).ok_or(VerifyError::MissingSignature)?;
                    let key = rsa_key.ok_or(VerifyError::KeyUnavailable)?;
                    rsa = Some(PendingRsa {
                        key: key.clone(),
                        signatures: rsa_signatures(&value, key)?,
                    });
                }
                Check::None => {}
            }
        }
        Ok(Verified { outcome, rsa })
    }

    /// The replay window (docs/CONTRACT.md, "Verification") for a request that passed [`Self::verify`]:
    /// with `hmac` the signed `t` must be in the window; with `rsa` the body's
    /// `triggered_at` must parse ([`parse_iso8601_utc`]) and be in the window
    /// (both apply when both are listed). With neither there is no timestamp
    /// to trust and the check passes.
    pub fn check_replay_window(
        &self,
        outcome: &SignatureOutcome,
        triggered_at: Option<&str>,
        now_unix: i64,
        tolerance_past_secs: u64,
    ) -> Result<(), VerifyError> {
        if self.has(Check::Hmac) {
            check_replay(outcome.hmac_timestamp, now_unix, tolerance_past_secs)?;
        }
        if self.has(Check::Rsa) {
            let ts = triggered_at.and_then(parse_iso8601_utc);
            check_replay(ts, now_unix, tolerance_past_secs)?;
        }
        Ok(())
    }
}

/// Splits a signature header into `(label, value)` pairs: comma-separated,
/// trimmed, split at the first `=`; pieces without `=` are skipped.
fn labelled(value: &str) -> impl Iterator<Item = (&str, &str)> {
    value
        .split(',')
        .filter_map(|piece| piece.split_once('='))
        .map(|(k, v)| (k.trim(), v.trim()))
}

/// Checks an `x-contentstack-hmac-signature` value; returns `t` on success.
pub fn verify_hmac(
    header_value: &str,
    body: &[u8],
    secrets: &[Secret],
) -> Result<i64, VerifyError> {
    let mut t_raw: Option<&str> = None;
    let mut candidates: Vec<[u8; 32]> = Vec::new();
    for (label, value) in labelled(header_value) {
        match label {
            "t" => {
                if t_raw.is_some_and(|t| t != value) {
                    return Err(VerifyError::InvalidSignature);
                }
                t_raw = Some(value);
            }
            // Exactly 64 hex digits (either case); anything else never matches.
            "v1" if candidates.len() < MAX_SIGNATURES && value.len() == 64 => {
                let mut mac = [0u8; 32];
                if hex::decode_to_slice(value, &mut mac).is_ok() {
                    candidates.push(mac);
                }
            }
            _ => {}
        }
    }
    let t_raw = t_raw.ok_or(VerifyError::InvalidSignature)?;
    if t_raw.is_empty() || !t_raw.bytes().all(|b| b.is_ascii_digit()) {
        return Err(VerifyError::InvalidSignature);
    }
    let t: i64 = t_raw.parse().map_err(|_| VerifyError::InvalidSignature)?;
    if candidates.is_empty() {
        return Err(VerifyError::InvalidSignature);
    }
    for secret in secrets {
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.expose().as_bytes()) else {
            continue;
        };
        mac.update(t_raw.as_bytes());
        mac.update(b".");
        mac.update(body);
        let expected = mac.finalize().into_bytes();
        for candidate in &candidates {
            if bool::from(candidate.as_slice().ct_eq(expected.as_slice())) {
                return Ok(t);
            }
        }
    }
    Err(VerifyError::InvalidSignature)
}

/// The candidate signatures of an `X-Contentstack-Request-Signature` value for `key`: the
/// first [`MAX_SIGNATURES`] `v1` values that decode to exactly the key's size. None is an
/// invalid signature already.
pub fn rsa_signatures(header_value: &str, key: &PublicKey) -> Result<Vec<Vec<u8>>, VerifyError> {
    let signatures: Vec<Vec<u8>> = labelled(header_value)
        .filter(|(label, _)| *label == "v1")
        .take(MAX_SIGNATURES)
        .filter(|(_, value)| !value.is_empty())
        .filter_map(|(_, value)| BASE64_LENIENT.decode(value).ok())
        .filter(|sig| sig.len() == key.size())
        .collect();
    if signatures.is_empty() {
        Err(VerifyError::InvalidSignature)
    } else {
        Ok(signatures)
    }
}
