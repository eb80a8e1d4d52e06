//! Other instances' writes, passed on to this process's listeners (the feed and page
//! caches, the digest scheduler), so that every instance sharing the database serves
//! and schedules what was last written, at once.
//!
//! - On PostgreSQL, a connection of its own `LISTEN`s on [`CHANNEL`]: every write's
//!   announcement (sent inside the writing transaction, see `store/changes.rs`) arrives
//!   when it commits, and is published here as if the write had been made here. This
//!   process's own announcements come back too and only mark their content version as
//!   known. When the connection is lost, announcements may have been missed: once
//!   listening again, everything cached is dropped and every list read again.
//! - On both backends, a safety net: every second the site's content version is read;
//!   when a write committed a whole second ago is still unheard of (an announcement
//!   lost, another process writing to one SQLite file), everything cached is dropped.

use crate::app::{App, ContentChange};
use crate::store::{Backend, CHANNEL, Notice};
use std::str::FromStr;
use std::time::Duration;

/// How often the content version is read (the safety net).
pub const POLL: Duration = Duration::from_secs(1);

/// The `application_name` of the listening connection (it shows in `pg_stat_activity`).
pub const LISTENER_NAME: &str = "newsdesk-listener";

/// Runs until aborted.
pub async fn run(app: App) {
    if app.store.backend() == Backend::Postgres {
        tokio::join!(safety_net(app.clone()), listen(app));
    } else {
        safety_net(app).await;
    }
}

/// Passes an announcement on; `false` when it could not be read.
pub fn receive(app: &App, payload: &str) -> bool {
    let Some(notice) = Notice::parse(payload) else {
        tracing::warn!(payload, "an announcement that could not be read");
        return false;
    };
    let events = &app.content_events;
    if notice.origin != events.origin() {
        events.publish(notice.change);
    }
    if let Some(v) = notice.version {
        events.saw_version(v);
    }
    true
}

/// Everything may have changed unheard of: drops what is cached, reads every list again.
async fn resync(app: &App) {
    app.content_events.publish(ContentChange::Everything);
    app.lists_changed.notify_one();
    if let Ok(v) = app.store.content().version().await {
        app.content_events.skip_to(v);
    }
}

async fn listen(app: App) {
    let url = app.settings.database_url.expose().to_owned();
    let mut heard_before = false;
    loop {
        match connect(&url).await {
            Ok(mut listener) => {
                if heard_before {
                    tracing::warn!(
                        "listening for other instances' writes again: dropping every cached feed and page, reading every list again"
                    );
                    resync(&app).await;
                }
                heard_before = true;
                loop {
                    match listener.try_recv().await {
                        Ok(Some(n)) => {
                            receive(&app, n.payload());
                        }
                        Ok(None) => {
                            tracing::warn!(
                                "lost the connection listening for other instances' writes"
                            );
                            break;
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "listening for other instances' writes failed");
                            break;
                        }
                    }
                }
            }
            Err(e) => tracing::warn!(
                error = format!("{e:#}"),
                "cannot listen for other instances' writes; trying again"
            ),
        }
        tokio::time::sleep(POLL).await;
    }
}

async fn connect(url: &str) -> anyhow::Result<sqlx::postgres::PgListener> {
    use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions};
    let options = PgConnectOptions::from_str(url)?.application_name(LISTENER_NAME);
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(options)
        .await?;
    let mut listener = PgListener::connect_with(&pool).await?;
    listener.listen(CHANNEL).await?;
    Ok(listener)
}

async fn safety_net(app: App) {
    let events = &app.content_events;
    if let Ok(v) = app.store.content().version().await {
        events.skip_to(v);
    }
    // The version that was unheard of at the last look, if any.
    let mut behind: Option<i64> = None;
    let mut tick = tokio::time::interval(POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let current = match app.store.content().version().await {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!(
                    error = format!("{e:#}"),
                    "could not read the content version"
                );
                continue;
            }
        };
        let known = events.known_version();
        if known >= current {
            behind = None;
            continue;
        }
        match behind {
            Some(was) if known < was => {
                tracing::info!(
                    known,
                    current,
                    "a content write was not announced here: dropping every cached feed and page"
                );
                events.publish(ContentChange::Everything);
                events.skip_to(current);
                behind = None;
            }
            _ => behind = Some(current),
        }
    }
}
