//! The schedule: a tokio-cron-scheduler job per list, in the list's time zone, that
//! builds the digest of the week it fires in. Building is idempotent, so a second tick,
//! a restart or another instance sharing the database makes no second digest.
//!
//! The job only says "look now": what is due is decided by [`due`] at the time the
//! application clock gives ([`on_schedule`]), never the wall clock, so a test clock
//! can drive the schedule tick by tick.
//!
//! Changes: a list created, changed or deleted, here or on another instance, comes as a
//! [`ContentChange::List`] (see `crate::bridge`) and its job is planned again at once;
//! every list is read again every few minutes and after a lost announcement. When its
//! job fires, the list's schedule is read from the database: a job left over from an
//! older schedule builds nothing ([`on_schedule`]).
//!
//! Missed windows: at start-up and every few minutes, each list's latest window is
//! checked. If no digest exists for it and it is within the list's grace period, it is
//! built late (trigger `late`); past the grace period it is recorded as `missed` and
//! nothing is sent. Windows before the list existed do not count.
//!
//! Reader-local lists (`schedule_delivery = reader_zone`, see `domain::local_time`):
//! the job runs in UTC+14, where the schedule's local time comes first, and builds the
//! week's digest once; each reader's delivery is due at that local time in their zone.
//! A window missed is built late while any reader could still be within the grace
//! period (26 hours more than for a list-zone list); each delivery first taken more
//! than the grace period after its reader's time is then recorded as missed, not sent.

use crate::app::{App, ContentChange};
use crate::domain::{DigestTrigger, DigestWindow, IsoWeek, MailingList};
use crate::store::Created;
use anyhow::Context;
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio_cron_scheduler::{Job, JobScheduler};
use uuid::Uuid;

/// What a tick or a catch-up did for one list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TickOutcome {
    Built { period: String, digest_id: i64 },
    AlreadyThere { period: String },
    Missed { period: String },
    NotDue,
}

/// Builds the digest for the window that fired last at or before the application
/// clock's now.
pub async fn tick(
    app: &App,
    list: &MailingList,
    trigger: DigestTrigger,
) -> anyhow::Result<TickOutcome> {
    due(app, list, trigger, app.clock.now()).await
}

/// How long after its list's schedule says a job may fire and still build: a job that
/// fires later than that was planned from a schedule that has changed since.
pub const FIRE_TOLERANCE: chrono::TimeDelta = chrono::TimeDelta::minutes(2);

/// What a scheduled job does when it fires: reads the list and its schedule afresh from
/// the database and builds what is due at the application clock's now. `None` when the
/// list is gone.
///
/// A job may have been planned from a schedule that another instance has changed since
/// (its announcement on the way, or lost): it fires at the old time. Then the current
/// schedule's last window is not now, and nothing is built (the window of the current
/// schedule is built when it comes, or by the missed-window policy): never an earlier
/// week's digest from a stale plan.
pub async fn on_schedule(app: &App, list_id: i64) -> anyhow::Result<Option<TickOutcome>> {
    let Some(list) = app.store.lists().by_id(list_id).await? else {
        return Ok(None);
    };
    let now = app.clock.now();
    let tz = list.schedule.fire_zone();
    if let Some(fired) = list.schedule.cron.last_fire_before(now, tz)
        && now - fired > FIRE_TOLERANCE
    {
        let period = IsoWeek::containing(fired, tz).to_string();
        if app
            .store
            .digests()
            .for_period(list.id, &period)
            .await?
            .is_some()
        {
            return Ok(Some(TickOutcome::AlreadyThere { period }));
        }
        tracing::info!(
            list = list.slug,
            schedule = list.schedule.cron.as_str(),
            "a job fired that its list's current schedule does not have: nothing built, the schedule is read again"
        );
        app.lists_changed.notify_one();
        return Ok(Some(TickOutcome::NotDue));
    }
    due(app, &list, DigestTrigger::Schedule, now)
        .await
        .with_context(|| format!("list {}", list.slug))
        .map(Some)
}

/// What is due for `list` at `now`: the digest of the window that fired last at or
/// before `now`, built once. Windows before the list existed are not due.
pub async fn due(
    app: &App,
    list: &MailingList,
    trigger: DigestTrigger,
    now: DateTime<Utc>,
) -> anyhow::Result<TickOutcome> {
    let tz = list.schedule.fire_zone();
    let Some(fired) = list.schedule.cron.last_fire_before(now, tz) else {
        return Ok(TickOutcome::NotDue);
    };
    if fired < list.created_at {
        return Ok(TickOutcome::NotDue);
    }
    let period = IsoWeek::containing(fired, tz);
    let created =
        crate::services::digests::build(&app.store, list, period, trigger, Some(fired), now)
            .await?;
    app.outbox_wake.notify_one();
    Ok(match created {
        Created::New(d) => {
            tracing::info!(list = list.slug, period = d.period, status = ?d.status, "digest built");
            TickOutcome::Built {
                period: d.period,
                digest_id: d.id,
            }
        }
        Created::Existing(d) => TickOutcome::AlreadyThere { period: d.period },
    })
}

/// The missed-window policy for one list (see the module's doc).
pub async fn catch_up(app: &App, list: &MailingList) -> anyhow::Result<TickOutcome> {
    let now = app.clock.now();
    let tz = list.schedule.fire_zone();
    let Some(fired) = list.schedule.cron.last_fire_before(now, tz) else {
        return Ok(TickOutcome::NotDue);
    };
    if fired < list.created_at {
        return Ok(TickOutcome::NotDue);
    }
    let period = IsoWeek::containing(fired, tz);
    if app
        .store
        .digests()
        .for_period(list.id, &period.to_string())
        .await?
        .is_some()
    {
        return Ok(TickOutcome::AlreadyThere {
            period: period.to_string(),
        });
    }
    if now - fired <= list.schedule.catch_up_window() {
        return due(app, list, DigestTrigger::Late, now).await;
    }
    let window = DigestWindow {
        period_start: period.start(tz),
        period_end: period.end(tz),
        news_since: app
            .store
            .digests()
            .news_since(list.id, period.start(tz))
            .await?,
    };
    app.store
        .digests()
        .record_missed(list.id, &period.to_string(), &window, fired, now)
        .await?;
    tracing::warn!(list = list.slug, period = %period, "digest window missed; recorded, nothing sent");
    Ok(TickOutcome::Missed {
        period: period.to_string(),
    })
}

/// What this process's scheduler has planned: per list id, the cron expression and
/// time zone its job runs on (for the admin's view and the tests).
#[derive(Debug, Default)]
pub struct Planned(RwLock<HashMap<i64, (String, String)>>);

impl Planned {
    pub fn get(&self, list_id: i64) -> Option<(String, String)> {
        self.0
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&list_id)
            .cloned()
    }

    fn set(&self, list_id: i64, plan: Option<(String, String)>) {
        let mut map = self.0.write().unwrap_or_else(|e| e.into_inner());
        match plan {
            Some(p) => map.insert(list_id, p),
            None => map.remove(&list_id),
        };
    }
}

/// The running schedule: one cron job per list, kept in step with the lists.
pub struct DigestScheduler {
    scheduler: JobScheduler,
    jobs: HashMap<i64, (Uuid, String, String)>,
    app: App,
    /// Lists changed here or on another instance ([`ContentChange::List`]).
    changed_lists: tokio::sync::mpsc::UnboundedReceiver<i64>,
}

impl DigestScheduler {
    pub async fn start(app: App) -> anyhow::Result<Self> {
        let scheduler = JobScheduler::new()
            .await
            .context("starting the digest scheduler")?;
        scheduler
            .start()
            .await
            .context("starting the digest scheduler")?;
        let (tx, changed_lists) = tokio::sync::mpsc::unbounded_channel();
        app.content_events.subscribe(move |change| {
            if let ContentChange::List(id) = change {
                // The scheduler may have stopped: then nobody needs to hear it.
                let _ = tx.send(*id);
            }
        });
        let mut me = Self {
            scheduler,
            jobs: HashMap::new(),
            app,
            changed_lists,
        };
        me.sync().await?;
        Ok(me)
    }

    /// Adds, replaces and removes jobs so there is one per list with its current
    /// schedule, then applies the missed-window policy.
    pub async fn sync(&mut self) -> anyhow::Result<()> {
        let lists = self.app.store.lists().all().await?;
        for list in &lists {
            self.plan(list).await?;
        }
        let gone: Vec<i64> = self
            .jobs
            .keys()
            .filter(|id| !lists.iter().any(|l| l.id == **id))
            .copied()
            .collect();
        for id in gone {
            self.unplan(id).await;
        }
        for list in &lists {
            if let Err(e) = catch_up(&self.app, list).await {
                tracing::error!(
                    error = format!("{e:#}"),
                    list = list.slug,
                    "catching up a digest window failed"
                );
            }
        }
        Ok(())
    }

    /// Reads one list again (created, changed or deleted): its job follows its schedule.
    pub async fn sync_list(&mut self, list_id: i64) -> anyhow::Result<()> {
        match self.app.store.lists().by_id(list_id).await? {
            Some(list) => {
                self.plan(&list).await?;
                catch_up(&self.app, &list).await?;
            }
            None => self.unplan(list_id).await,
        }
        Ok(())
    }

    /// The list's job, on its current schedule (replaced when that changed).
    async fn plan(&mut self, list: &MailingList) -> anyhow::Result<()> {
        let wanted = (
            list.schedule.cron.as_str().to_owned(),
            list.schedule.fire_zone().name().to_owned(),
        );
        if let Some((uuid, cron, tz)) = self.jobs.get(&list.id) {
            if (cron, tz) == (&wanted.0, &wanted.1) {
                return Ok(());
            }
            self.scheduler.remove(uuid).await.ok();
        }
        let app = self.app.clone();
        let list_id = list.id;
        let job = Job::new_async_tz(
            list.schedule.cron.as_str(),
            list.schedule.fire_zone(),
            move |_, _| {
                let app = app.clone();
                Box::pin(async move {
                    if let Err(e) = on_schedule(&app, list_id).await {
                        tracing::error!(error = format!("{e:#}"), "scheduled digest failed");
                    }
                })
            },
        )
        .with_context(|| format!("scheduling list {}", list.slug))?;
        let uuid = self
            .scheduler
            .add(job)
            .await
            .context("adding a digest job")?;
        tracing::debug!(
            list = list.slug,
            cron = wanted.0,
            tz = wanted.1,
            "digest job planned"
        );
        self.app.planned.set(list.id, Some(wanted.clone()));
        self.jobs.insert(list.id, (uuid, wanted.0, wanted.1));
        Ok(())
    }

    async fn unplan(&mut self, list_id: i64) {
        if let Some((uuid, _, _)) = self.jobs.remove(&list_id) {
            self.scheduler.remove(&uuid).await.ok();
        }
        self.app.planned.set(list_id, None);
    }

    /// Keeps the jobs in step: a list at once when it changed (here or on another
    /// instance), every list when changes may have been missed, and every few minutes.
    pub async fn run(
        mut self,
        changed: Arc<tokio::sync::Notify>,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) {
        loop {
            let synced = tokio::select! {
                Some(id) = self.changed_lists.recv() => self.sync_list(id).await,
                _ = changed.notified() => self.sync().await,
                _ = tokio::time::sleep(Duration::from_secs(300)) => self.sync().await,
                _ = stop.changed() => break,
            };
            if let Err(e) = synced {
                tracing::error!(
                    error = format!("{e:#}"),
                    "the digest schedule could not be brought up to date"
                );
            }
        }
        self.scheduler.shutdown().await.ok();
    }
}
