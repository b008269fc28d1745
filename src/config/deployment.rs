//! The deployment's own names: the queue whose batches are dead letters (it must match
//! `wrangler.toml`) and the public URL the Worker is reached at (which the webhook health check
//! looks for among the webhooks' destinations).
//!
//! Choices where the contract is silent:
//! - `DEAD_LETTER_QUEUE` must be a name without whitespace or control characters.
//! - `PUBLIC_URL` is checked like the other base URLs (`scheme://host[:port]`, no path), and a
//!   trailing `/` is dropped.

use super::raw::{base_url, text, RawConfig};

/// Default name of the queue whose batches are dead letters.
pub const DEFAULT_DEAD_LETTER_QUEUE: &str = "contentstack-purge-dead-letters";

/// The deployment's queue name and public URL.
#[derive(Debug, Clone)]
pub struct Deployment {
    /// Name of the queue whose batches are dead letters.
    pub dead_letter_queue: String,
    /// This Worker's public base URL, when set.
    pub public_url: Option<String>,
}

impl Deployment {
    /// Reads `DEAD_LETTER_QUEUE` and `PUBLIC_URL`, recording every problem in `errors`.
    pub(super) fn parse(raw: &RawConfig, errors: &mut Vec<String>) -> Deployment {
        let dead_letter_queue =
            text(raw, "DEAD_LETTER_QUEUE").unwrap_or_else(|| DEFAULT_DEAD_LETTER_QUEUE.into());
        if dead_letter_queue
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
        {
            errors.push("DEAD_LETTER_QUEUE must be a queue name without whitespace".into());
        }
        let public_url = text(raw, "PUBLIC_URL").map(|u| base_url("PUBLIC_URL", u, errors, false));
        Deployment {
            dead_letter_queue,
            public_url,
        }
    }
}
