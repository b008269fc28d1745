//! Timing of a job's life in the ledger: when the second purge pass runs, when a job without
//! progress is driven again, and how long a finished job's record is kept.
//!
//! Choices where the contract is silent:
//! - `REPURGE_DELAY_SECONDS` is at most 43200 (the longest queue message delay).
//! - `PROGRESS_TIMEOUT_SECONDS` is 2–86400, default 900 (15 minutes).
//! - `LEDGER_RETENTION_DAYS` is whole days, 1–3650, default 90. `LEDGER_RETENTION_SECONDS`
//!   (undocumented for users, like `PROGRESS_TIMEOUT_SECONDS`) overrides it in seconds, so that a
//!   test can watch a finished job expire.

use super::raw::{number, number_opt, RawConfig};

/// The ledger's delays and timeouts.
#[derive(Debug, Clone)]
pub struct Timing {
    /// Delay of the second purge pass; 0 = no second pass.
    pub repurge_delay_seconds: u32,
    /// A job with no progress this long is driven again by the ledger alarm.
    pub progress_timeout_seconds: u32,
    /// How long a finished job's record is kept (`LEDGER_RETENTION_DAYS`), in seconds.
    pub retention_seconds: u64,
}

impl Timing {
    /// Reads the delays and the retention, recording every problem in `errors`.
    pub(super) fn parse(raw: &RawConfig, errors: &mut Vec<String>) -> Timing {
        let repurge_delay_seconds =
            number(raw, "REPURGE_DELAY_SECONDS", 60u32, (0, 43_200), errors);
        let progress_timeout_seconds =
            number(raw, "PROGRESS_TIMEOUT_SECONDS", 900u32, (2, 86_400), errors);
        let retention_days = number(raw, "LEDGER_RETENTION_DAYS", 90u32, (1, 3650), errors);
        // Tests only: a retention in seconds, so that a test can watch a job expire.
        let retention_seconds = number_opt(
            raw,
            "LEDGER_RETENTION_SECONDS",
            (1u64, 3650 * 86_400),
            "",
            errors,
        )
        .unwrap_or(retention_days as u64 * 86_400);
        Timing {
            repurge_delay_seconds,
            progress_timeout_seconds,
            retention_seconds,
        }
    }
}
