//! Planning items in windows: where a rule resolves URLs, items are read page by page into a
//! window of up to [`WINDOW_ITEMS`] whose URLs are looked up together ([`plan_window`],
//! [`resolve_item_urls`]); [`window_cost`] is what one more page may cost.

use crate::config::Config;
use crate::contentstack::{client::Client, LOOKUP_BATCH, PAGE_SIZE};
use crate::plan::{plan, PlanEnvironment, PlanItem, PlanJob};

use super::step::StepError;

/// Plans a window of items (one or more pages): their URLs are resolved together, so each
/// content type and locale costs one query per 100 uids of the window, not of each page.
pub async fn plan_window(
    cfg: &Config,
    client: &Client<'_>,
    job: &PlanJob,
    items: &mut [PlanItem],
    environments: &[PlanEnvironment],
) -> Result<crate::plan::Plan, StepError> {
    resolve_item_urls(cfg, client, &job.api_key, items, environments).await?;
    Ok(plan(job, items, environments, &cfg.rules))
}

/// Fills in the URLs of the items of environments whose rule resolves URLs.
pub async fn resolve_item_urls(
    cfg: &Config,
    client: &Client<'_>,
    api_key: &str,
    items: &mut [PlanItem],
    environments: &[PlanEnvironment],
) -> Result<(), StepError> {
    let resolving: Vec<&str> = environments
        .iter()
        .filter(|e| resolves_urls(cfg, api_key, e))
        .map(|e| e.uid.as_str())
        .collect();
    if resolving.is_empty() {
        return Ok(());
    }
    let picked: Vec<usize> = (0..items.len())
        .filter(|&n| resolving.contains(&items[n].environment_uid.as_str()))
        .collect();
    let mut wanted: Vec<PlanItem> = picked.iter().map(|&n| items[n].clone()).collect();
    client.resolve_urls(&mut wanted).await?;
    for (n, w) in picked.into_iter().zip(wanted) {
        items[n].url = w.url;
    }
    Ok(())
}

/// Whether the environment's rule resolves URLs.
pub(super) fn resolves_urls(cfg: &Config, api_key: &str, e: &PlanEnvironment) -> bool {
    cfg.rules
        .rule_for_stack(Some(api_key), &e.name)
        .is_some_and(|r| r.resolve_urls)
}

/// Items planned together at most: up to this many are read before their URLs are looked up
/// (when a rule resolves URLs). One purge group (`purge::GROUP_PAGES` pages), which a window
/// never spans anyway.
pub const WINDOW_ITEMS: usize = 800;

/// What reading one more page and planning a window of `held` items plus that page may cost:
/// (external fetches, service operations). The page; where a rule resolves URLs, one query
/// per 100 uids, one more per content type and locale that fills a query only in part (a
/// dozen assumed), and a single look-up for one item in ten whose version moved on; limiter
/// calls, one per four starts assumed (starts are reserved several at a time while the caller
/// waits for the window, see [`crate::net::wait_slot`]); and the ledger.
pub fn window_cost(
    cfg: &Config,
    api_key: &str,
    environments: &[PlanEnvironment],
    held: usize,
) -> (usize, usize) {
    let resolve = environments.iter().any(|e| resolves_urls(cfg, api_key, e));
    let items = held + PAGE_SIZE as usize;
    let fetches = 1 + if resolve {
        items.div_ceil(LOOKUP_BATCH) + 12 + items / 10
    } else {
        0
    };
    (fetches, fetches.div_ceil(4) + 2)
}

/// Whether any environment's rule resolves URLs (items are then planned in windows).
pub fn any_resolves(cfg: &Config, api_key: &str, environments: &[PlanEnvironment]) -> bool {
    environments.iter().any(|e| resolves_urls(cfg, api_key, e))
}
