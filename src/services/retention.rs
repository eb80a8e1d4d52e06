//! Housekeeping every instance runs beside the delivery worker: builds that stopped
//! half-way are finished, and the per-recipient rows of old digests pruned (their
//! totals stay in the digest).

use super::ServiceResult;
use super::digests::resume_builds;
use crate::app::App;
use std::time::Duration;
use tokio::sync::watch;

/// Rows deleted per statement.
const BATCH: u32 = 5_000;
/// The PostgreSQL advisory lock that lets one instance at a time prune.
pub const PRUNE_LOCK: i64 = 0x006e_6470_7275_6e65;
/// How often unfinished builds are looked for.
const EVERY: Duration = Duration::from_secs(60);
/// How often the retention is applied.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// What a prune removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pruned {
    /// Digests whose totals were kept and rows pruned.
    pub digests: u64,
    pub deliveries: u64,
    pub delivered_items: u64,
}

/// Prunes the deliveries of digests finished more than `retention_days` ago, in
/// batches, keeping each digest's totals; then what readers were sent by them (except
/// events still to come). `None` when another instance is pruning right now (on
/// PostgreSQL the database decides, with an advisory lock).
pub async fn prune(app: &App, retention_days: u32) -> ServiceResult<Option<Pruned>> {
    let store = &app.store;
    let Some(only_us) = store.try_exclusive(PRUNE_LOCK).await? else {
        return Ok(None);
    };
    let now = app.clock.now();
    let before = now - chrono::Duration::days(i64::from(retention_days));
    let mut out = Pruned::default();
    loop {
        let due = store.digests().prunable(before, 100).await?;
        let mut sealed = 0;
        for &id in &due {
            sealed += u64::from(store.digests().seal(id, now).await?);
        }
        out.digests += sealed;
        if sealed == 0 {
            break;
        }
    }
    // Also the rows of a prune that stopped half-way.
    for id in store.digests().sealed_with_rows().await? {
        loop {
            let n = store.digests().delete_deliveries(id, BATCH).await?;
            out.deliveries += n;
            if n < u64::from(BATCH) {
                break;
            }
        }
    }
    if out.digests > 0 || out.deliveries > 0 {
        let end = store.digests().delivered_items_end().await?;
        let mut after = 0;
        while after < end {
            let upto = after.saturating_add(i64::from(BATCH));
            out.delivered_items += store
                .digests()
                .delete_delivered_items(after, upto, now)
                .await?;
            after = upto;
        }
    }
    // Let go at once, not when the pool next hands out the lock's connection.
    only_us.release().await;
    Ok(Some(out))
}

/// Resumes unfinished builds every minute, and applies the retention every hour
/// (`NEWSDESK_DELIVERY_RETENTION_DAYS`), until `stop`. Stopping drops the step under
/// way: each batch is a transaction of its own, and the next run goes on from there.
pub async fn run(app: App, mut stop: watch::Receiver<bool>) {
    let mut last_prune: Option<tokio::time::Instant> = None;
    loop {
        let step = async {
            if let Err(e) = resume_builds(&app).await {
                tracing::warn!(error = format!("{e:#}"), "could not resume a digest build");
            }
            let Some(days) = app.settings.delivery_retention_days else {
                return;
            };
            if last_prune.is_some_and(|t| t.elapsed() < PRUNE_EVERY) {
                return;
            }
            last_prune = Some(tokio::time::Instant::now());
            match prune(&app, days).await {
                Ok(Some(p)) if p != Pruned::default() => tracing::info!(
                    digests = p.digests,
                    deliveries = p.deliveries,
                    delivered_items = p.delivered_items,
                    "pruned old deliveries"
                ),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = format!("{e:#}"), "could not prune deliveries"),
            }
        };
        tokio::select! {
            _ = step => {}
            _ = stop.changed() => break,
        }
        tokio::select! {
            _ = tokio::time::sleep(EVERY) => {}
            _ = stop.changed() => break,
        }
        if *stop.borrow() {
            break;
        }
    }
}
