//! Weekly digests: what goes in (`plan`), building one once per list and period
//! (`build`, `send_now`), previews and dry runs that write nothing, retrying and
//! cancelling deliveries, the history of a list's digests and the public archive.

use super::{ServiceError, ServiceResult};
use crate::app::App;
use crate::digest::render::{self, DigestContext, PersonalLinks, RenderedDigest};
use crate::domain::{
    DeliveryCounts, Digest, DigestStatus, DigestTrigger, DigestWindow, Email, FailedDelivery,
    IsoWeek, Item, Language, LocalWait, MailingList, Selection, Subscriber,
};
use crate::store::{Created, Store};
use chrono::{DateTime, Utc};
use std::collections::HashMap;

/// The window and items of a list's digest for a period, from what is stored now.
pub async fn plan(
    store: &Store,
    list: &MailingList,
    period: IsoWeek,
) -> ServiceResult<(DigestWindow, Selection)> {
    let tz = list.schedule.fire_zone();
    let period_start = period.start(tz);
    let window = DigestWindow {
        period_start,
        period_end: period.end(tz),
        news_since: store.digests().news_since(list.id, period_start).await?,
    };
    let selection = store.digests().select_items(list.id, &window).await?;
    Ok((window, selection))
}

/// Readers whose deliveries one transaction of a build makes.
pub const BUILD_CHUNK: u32 = 5_000;

/// Builds the digest of a list for a period, once: a second call (a second tick,
/// a restart, another instance, an admin) finds the first, and finishes its build when
/// that stopped half-way. Returns once every delivery exists.
pub async fn build(
    store: &Store,
    list: &MailingList,
    period: IsoWeek,
    trigger: DigestTrigger,
    scheduled_for: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> ServiceResult<Created> {
    let created = start_build(store, list, period, trigger, scheduled_for, now).await?;
    let digest = match &created {
        Created::New(d) | Created::Existing(d) => d,
    };
    if digest.building {
        finish_build(store, digest.id, BUILD_CHUNK, now).await?;
        let id = digest.id;
        let again =
            |d: Option<Digest>| d.ok_or_else(|| ServiceError::not_found(format!("digest {id}")));
        return Ok(match created {
            Created::New(_) => Created::New(again(store.digests().by_id(id).await?)?),
            Created::Existing(_) => Created::Existing(again(store.digests().by_id(id).await?)?),
        });
    }
    Ok(created)
}

/// The digest's row and items, left to be built (see [`finish_build`]); or the one
/// that exists.
async fn start_build(
    store: &Store,
    list: &MailingList,
    period: IsoWeek,
    trigger: DigestTrigger,
    scheduled_for: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> ServiceResult<Created> {
    if let Some(existing) = store
        .digests()
        .for_period(list.id, &period.to_string())
        .await?
    {
        return Ok(Created::Existing(existing));
    }
    let (window, selection) = plan(store, list, period).await?;
    // A reader-local list's scheduled (or caught-up) window goes to each reader at the
    // schedule's local time in their zone; a digest sent by hand goes now.
    let send_local = match trigger {
        DigestTrigger::Manual => None,
        DigestTrigger::Schedule | DigestTrigger::Late => {
            scheduled_for.and_then(|fired| list.schedule.local_send_time(fired))
        }
    };
    Ok(store
        .digests()
        .create(
            list.id,
            &period.to_string(),
            &window,
            &selection,
            list.schedule.min_items,
            trigger,
            scheduled_for,
            send_local,
            now,
        )
        .await?)
}

/// Builds a digest's outbox to the end from where it stands: `chunk` readers per
/// transaction, so no transaction holds the database for long. Safe to run twice at
/// once (two instances resuming): the chunks take turns and none is written twice.
pub async fn finish_build(
    store: &Store,
    digest_id: i64,
    chunk: u32,
    now: DateTime<Utc>,
) -> ServiceResult<()> {
    while store.digests().build_chunk(digest_id, chunk, now).await? {}
    Ok(())
}

/// Finishes every build that stopped half-way (a crash, a kill); returns how many.
pub async fn resume_builds(app: &App) -> ServiceResult<usize> {
    let unbuilt = app.store.digests().unbuilt().await?;
    for &id in &unbuilt {
        tracing::info!(digest = id, "resuming the build of a digest");
        finish_build(&app.store, id, BUILD_CHUNK, app.clock.now()).await?;
    }
    if !unbuilt.is_empty() {
        app.outbox_wake.notify_one();
    }
    Ok(unbuilt.len())
}

/// Builds a list's digest for a period by hand, now, and wakes the delivery worker for
/// it. A period that has a digest already gets no second one: the caller is told which
/// there is ([`Created::Existing`]) and decides what that means to its user.
///
/// Answers after the first chunk of readers: a list that fits in one
/// ([`BUILD_CHUNK`]) is built when this returns; a larger one goes on building in
/// the background (`building` in the digest), and a build that dies with the process
/// is finished by the maintenance loop ([`resume_builds`]) of any instance.
pub async fn send_now(app: &App, list: &MailingList, period: IsoWeek) -> ServiceResult<Created> {
    let now = app.clock.now();
    let created = start_build(&app.store, list, period, DigestTrigger::Manual, None, now).await?;
    let Created::New(digest) = created else {
        return Ok(created);
    };
    let more = digest.building
        && app
            .store
            .digests()
            .build_chunk(digest.id, BUILD_CHUNK, now)
            .await?;
    if more {
        let (app, id) = (app.clone(), digest.id);
        tokio::spawn(async move {
            match finish_build(&app.store, id, BUILD_CHUNK, now).await {
                Ok(()) => app.outbox_wake.notify_one(),
                Err(e) => tracing::error!(
                    digest = id,
                    error = format!("{e:#}"),
                    "the build of a digest stopped; it is resumed later"
                ),
            }
        });
    } else {
        app.outbox_wake.notify_one();
    }
    let digest = app
        .store
        .digests()
        .by_id(digest.id)
        .await?
        .ok_or_else(|| ServiceError::not_found(format!("digest {}", digest.id)))?;
    Ok(Created::New(digest))
}

/// The week a preview or a send by hand is for when none is named: the one of the
/// list's next scheduled digest.
pub fn next_period(list: &MailingList, now: DateTime<Utc>) -> IsoWeek {
    let tz = list.schedule.fire_zone();
    let at = list.schedule.cron.next_fire_after(now, tz).unwrap_or(now);
    IsoWeek::containing(at, tz)
}

/// The week it is now in the list's zone (for a reader-local list, in UTC+14, where
/// its weeks begin).
pub fn current_period(list: &MailingList, now: DateTime<Utc>) -> IsoWeek {
    IsoWeek::containing(now, list.schedule.fire_zone())
}

/// The items of a period: the stored digest's when there is one, else the plan.
async fn items_of(
    store: &Store,
    list: &MailingList,
    period: IsoWeek,
) -> ServiceResult<(Option<i64>, Selection)> {
    match store
        .digests()
        .for_period(list.id, &period.to_string())
        .await?
    {
        Some(d) => Ok((Some(d.id), store.digests().items(d.id).await?)),
        None => Ok((None, plan(store, list, period).await?.1)),
    }
}

fn item_ids(selection: &Selection) -> Vec<i64> {
    selection
        .coming_up
        .iter()
        .chain(&selection.news)
        .map(|i| i.id)
        .collect()
}

/// The subscriber a preview is rendered for.
pub async fn reader(app: &App, email: &Email) -> ServiceResult<Subscriber> {
    app.store
        .people()
        .subscriber_by_email(&email.key())
        .await?
        .ok_or_else(|| ServiceError::not_found(format!("subscriber {email}")))
}

/// A preview for the subscriber with this address (not found when there is none), or
/// for a stand-in reader of English.
pub async fn preview_for(
    app: &App,
    list: &MailingList,
    period: IsoWeek,
    reader_email: Option<&Email>,
) -> ServiceResult<Option<RenderedDigest>> {
    preview_in(app, list, period, reader_email, None).await
}

/// As [`preview_for`], in `language` when one is given: the subscriber's digest as it
/// would be in that language, or a stand-in reader's of that language.
pub async fn preview_in(
    app: &App,
    list: &MailingList,
    period: IsoWeek,
    reader_email: Option<&Email>,
    language: Option<&Language>,
) -> ServiceResult<Option<RenderedDigest>> {
    let subscriber = match reader_email {
        Some(email) => Some(reader(app, email).await?),
        None => None,
    };
    match subscriber {
        Some(mut s) => {
            if let Some(language) = language {
                s.language = language.as_str().to_owned();
            }
            preview_with(app, list, period, &s, true).await
        }
        None => {
            let stand_in = stand_in(app, language.map_or("en", Language::as_str));
            preview_with(app, list, period, &stand_in, false).await
        }
    }
}

/// A reader with no name, institution or history, of `language`.
fn stand_in(app: &App, language: &str) -> Subscriber {
    Subscriber {
        language: language.to_owned(),
        ..Subscriber::blank(app.clock.now())
    }
}

/// Renders a digest without sending anything or writing anything: for a subscriber
/// (what they would get), or for a stand-in reader when `subscriber` is `None`.
/// `None` when the reader would get nothing.
pub async fn preview(
    app: &App,
    list: &MailingList,
    period: IsoWeek,
    subscriber: Option<&Subscriber>,
) -> ServiceResult<Option<RenderedDigest>> {
    match subscriber {
        Some(s) => preview_with(app, list, period, s, true).await,
        None => preview_with(app, list, period, &stand_in(app, "en"), false).await,
    }
}

/// Renders the digest of `subscriber`: with what they were sent before when `real`,
/// as if nothing had been sent for a stand-in.
async fn preview_with(
    app: &App,
    list: &MailingList,
    period: IsoWeek,
    subscriber: &Subscriber,
    real: bool,
) -> ServiceResult<Option<RenderedDigest>> {
    // Their institution in their language, as a sent digest names it.
    let partner: Vec<i64> = subscriber.partner_id.into_iter().collect();
    let mut subscriber = subscriber.clone();
    subscriber.name_partner_in_language(&app.store.people().partner_names(&partner).await?);
    let subscriber = &subscriber;
    let (digest_id, selection) = items_of(&app.store, list, period).await?;
    let sent_before = if real {
        app.store
            .outbox()
            .delivered_items(&[subscriber.id], &item_ids(&selection), digest_id)
            .await?
            .into_iter()
            .map(|((_, item), at)| (item, at))
            .collect()
    } else {
        HashMap::new()
    };
    let base = &app.settings.base_url;
    let ctx = DigestContext {
        list,
        period,
        selection: &selection,
        site_name: &app.settings.site_name,
        base_url: base,
        languages: &app.settings.languages,
    };
    // Previews carry no working personal links: nothing is minted for them.
    let pages = ctx.pages_base(&subscriber.language);
    let links = PersonalLinks {
        unsubscribe_url: format!("{pages}/unsubscribe/PREVIEW"),
        preferences_url: format!("{pages}/preferences/PREVIEW"),
    };
    Ok(render::render_for(
        &app.templates.current(),
        &ctx,
        subscriber,
        &sent_before,
        &links,
    )?)
}

/// Who would get what, without sending or writing anything.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct DryRun {
    pub list: String,
    pub period: String,
    pub items: usize,
    pub coming_up: Vec<String>,
    pub news: Vec<String>,
    /// Would be skipped: fewer items than the list's minimum.
    pub skipped: bool,
    pub recipients: Vec<DryRunRecipient>,
}

#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct DryRunRecipient {
    pub email: String,
    /// Items this subscriber would get (0: nothing new, no mail).
    pub items: usize,
}

pub async fn dry_run(app: &App, list: &MailingList, period: IsoWeek) -> ServiceResult<DryRun> {
    let (digest_id, selection) = items_of(&app.store, list, period).await?;
    let ids = item_ids(&selection);
    let all_items: Vec<&Item> = selection.coming_up.iter().chain(&selection.news).collect();
    let mut recipients = Vec::new();
    let mut after = 0;
    loop {
        let page = app
            .store
            .people()
            .subscribers_after(Some(list.id), after, 500, true)
            .await?;
        let Some(last) = page.last() else { break };
        after = last.id;
        let subscriber_ids: Vec<i64> = page.iter().map(|s| s.id).collect();
        let sent = app
            .store
            .outbox()
            .delivered_items(&subscriber_ids, &ids, digest_id)
            .await?;
        for s in &page {
            let count = all_items
                .iter()
                .filter(|i| {
                    sent.get(&(s.id, i.id))
                        .is_none_or(|then| i.updated_at > *then)
                })
                .count();
            recipients.push(DryRunRecipient {
                email: s.email.clone(),
                items: count,
            });
        }
    }
    Ok(DryRun {
        list: list.slug.clone(),
        period: period.to_string(),
        items: selection.len(),
        coming_up: selection
            .coming_up
            .iter()
            .map(|i| i.title.clone())
            .collect(),
        news: selection.news.iter().map(|i| i.title.clone()).collect(),
        skipped: selection.len() < list.schedule.min_items as usize,
        recipients,
    })
}

// ---- digests that exist -------------------------------------------------------------

/// A digest and its list.
pub async fn find(app: &App, id: i64) -> ServiceResult<(Digest, MailingList)> {
    let not_found = || ServiceError::not_found(format!("digest {id}"));
    let digest = app.store.digests().by_id(id).await?.ok_or_else(not_found)?;
    let list = app
        .store
        .lists()
        .by_id(digest.list_id)
        .await?
        .ok_or_else(not_found)?;
    Ok((digest, list))
}

/// A digest with what it carries and how its deliveries stand.
pub struct DigestDetail {
    pub digest: Digest,
    pub list: MailingList,
    pub counts: DeliveryCounts,
    pub items: Selection,
    /// The first failed deliveries, up to the limit asked for.
    pub failed: Vec<FailedDelivery>,
}

impl DigestDetail {
    /// Deliveries waiting or being sent.
    pub fn in_progress(&self) -> bool {
        self.counts.pending + self.counts.sending > 0
    }

    /// Failed deliveries, of a digest that was not cancelled.
    pub fn can_retry(&self) -> bool {
        self.counts.failed > 0 && self.digest.status != DigestStatus::Cancelled
    }
}

pub async fn detail(app: &App, id: i64, failed_limit: u32) -> ServiceResult<DigestDetail> {
    let (digest, list) = find(app, id).await?;
    Ok(DigestDetail {
        counts: app.store.digests().delivery_counts(digest.id).await?,
        items: app.store.digests().items(digest.id).await?,
        failed: app
            .store
            .digests()
            .failed_deliveries(digest.id, failed_limit)
            .await?,
        digest,
        list,
    })
}

/// How a digest's deliveries to the readers of one language stand.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct LanguageCounts {
    /// A reader's language tag, as they chose it.
    pub language: String,
    /// Deliveries to readers of this language, whatever became of them.
    pub readers: u64,
    pub sent: u64,
    /// Pending or being sent.
    pub waiting: u64,
    pub failed: u64,
}

/// A digest's deliveries by their reader's language (as it is now), most readers
/// first; empty once the deliveries are pruned.
pub async fn language_counts(app: &App, id: i64) -> ServiceResult<Vec<LanguageCounts>> {
    let mut out: Vec<LanguageCounts> = Vec::new();
    for (language, status, n) in app.store.digests().delivery_languages(id).await? {
        let at = match out.iter().position(|c| c.language == language) {
            Some(at) => at,
            None => {
                out.push(LanguageCounts {
                    language,
                    ..Default::default()
                });
                out.len() - 1
            }
        };
        let c = &mut out[at];
        c.readers += n;
        match status.as_str() {
            "sent" => c.sent += n,
            "pending" => c.waiting += n,
            "failed" => c.failed += n,
            _ => {}
        }
    }
    out.sort_by(|a, b| b.readers.cmp(&a.readers).then(a.language.cmp(&b.language)));
    Ok(out)
}

/// The languages of a list's readers, with how many read each, most first.
pub async fn reader_languages(app: &App, list: &MailingList) -> ServiceResult<Vec<(String, u64)>> {
    Ok(app.store.digests().reader_languages(list.id).await?)
}

/// How a digest's deliveries stand.
pub async fn counts(app: &App, id: i64) -> ServiceResult<DeliveryCounts> {
    Ok(app.store.digests().delivery_counts(id).await?)
}

/// The digest's deliveries waiting for their readers' local time (`None`: none).
pub async fn waiting_for_local_time(app: &App, id: i64) -> ServiceResult<Option<LocalWait>> {
    Ok(app.store.digests().waiting_for_local_time(id).await?)
}

/// Marks sent every digest with nothing left to deliver; returns how many.
pub async fn complete_finished(app: &App) -> ServiceResult<u64> {
    Ok(app.store.digests().complete(app.clock.now()).await?)
}

/// A digest in a history: with its list (none when the list is gone) and counts.
pub struct HistoryEntry {
    pub digest: Digest,
    pub list: Option<MailingList>,
    pub counts: DeliveryCounts,
}

/// The latest digests, newest first: every list's, or the one's with this slug.
pub async fn history(
    app: &App,
    list_slug: Option<&str>,
    limit: u32,
) -> ServiceResult<Vec<HistoryEntry>> {
    let lists = app.store.lists().all().await?;
    let list_id = match list_slug {
        Some(slug) => Some(super::lists::find(app, slug).await?.id),
        None => None,
    };
    let mut out = Vec::new();
    for digest in app.store.digests().list(list_id, limit).await? {
        out.push(HistoryEntry {
            counts: app.store.digests().delivery_counts(digest.id).await?,
            list: lists.iter().find(|l| l.id == digest.list_id).cloned(),
            digest,
        });
    }
    Ok(out)
}

/// Puts a digest's failed deliveries back in the outbox: those to readers still
/// confirmed and on the list. A cancelled digest is a conflict: nothing of it is sent
/// again. Returns how many deliveries go out again.
pub async fn retry(app: &App, id: i64) -> ServiceResult<u64> {
    let (digest, _) = find(app, id).await?;
    let n = app
        .store
        .digests()
        .retry_failed(digest.id, app.clock.now())
        .await?;
    app.outbox_wake.notify_one();
    Ok(n)
}

/// Cancels a digest being sent: its pending deliveries are dropped. Any other digest is
/// a conflict. Returns how many deliveries were dropped.
pub async fn cancel(app: &App, id: i64) -> ServiceResult<u64> {
    let (digest, _) = find(app, id).await?;
    Ok(app
        .store
        .digests()
        .cancel(digest.id, app.clock.now())
        .await?)
}

// ---- the public archive -------------------------------------------------------------

/// A digest as the archive shows it.
pub struct Issue {
    pub digest: Digest,
    pub items: Selection,
}

/// A public list and the digests it sent (or is sending), newest first.
pub struct Archive {
    pub list: MailingList,
    pub issues: Vec<Issue>,
}

/// A list the public may see: a private one is "not found" like a missing one.
async fn public_list(app: &App, slug: &str) -> ServiceResult<MailingList> {
    app.store
        .lists()
        .by_slug(slug)
        .await?
        .filter(MailingList::has_public_archive)
        .ok_or_else(|| ServiceError::not_found(format!("list {slug:?}")))
}

/// Digests that went out (or are going out), newest first.
async fn published(app: &App, list: &MailingList) -> ServiceResult<Vec<Digest>> {
    Ok(app
        .store
        .digests()
        .list(Some(list.id), 200)
        .await?
        .into_iter()
        .filter(Digest::is_published)
        .collect())
}

pub async fn archive(app: &App, slug: &str) -> ServiceResult<Archive> {
    let list = public_list(app, slug).await?;
    let mut issues = Vec::new();
    for digest in published(app, &list).await? {
        issues.push(Issue {
            items: app.store.digests().items(digest.id).await?,
            digest,
        });
    }
    Ok(Archive { list, issues })
}

/// One published digest of a public list: not found names the list or the digest.
pub async fn issue(app: &App, slug: &str, period: &str) -> ServiceResult<(MailingList, Issue)> {
    let list = public_list(app, slug).await?;
    let digest = published(app, &list)
        .await?
        .into_iter()
        .find(|d| d.period == period)
        .ok_or_else(|| ServiceError::not_found(format!("digest {period:?}")))?;
    let items = app.store.digests().items(digest.id).await?;
    Ok((list, Issue { digest, items }))
}
