//! Timestamps for the replay window: the HMAC `t` and the body's `triggered_at`.

use super::VerifyError;

/// How far in the future a webhook timestamp may be (clock skew allowance).
pub const FUTURE_TOLERANCE_SECS: i64 = 300;

/// Default for `REPLAY_TOLERANCE_SECONDS`: Contentstack resends the same body for
/// about 13 minutes, so 20 minutes in the past are accepted.
pub const DEFAULT_REPLAY_TOLERANCE_SECS: u64 = 1200;

/// The replay window check.
///
/// `ts_unix` is the webhook's timestamp (HMAC `t`, or the parsed `triggered_at`).
/// It must be at most `tolerance_past_secs` before `now_unix` and at most
/// [`FUTURE_TOLERANCE_SECS`] after it; both bounds are inclusive.
///
/// `None` is [`VerifyError::MissingTimestamp`]; outside the window (either side)
/// is [`VerifyError::StaleTimestamp`].
pub fn check_replay(
    ts_unix: Option<i64>,
    now_unix: i64,
    tolerance_past_secs: u64,
) -> Result<(), VerifyError> {
    let ts = i128::from(ts_unix.ok_or(VerifyError::MissingTimestamp)?);
    let now = i128::from(now_unix);
    let earliest = now - i128::from(tolerance_past_secs);
    let latest = now + i128::from(FUTURE_TOLERANCE_SECS);
    if ts < earliest || ts > latest {
        return Err(VerifyError::StaleTimestamp);
    }
    Ok(())
}
