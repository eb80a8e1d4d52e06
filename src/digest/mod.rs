//! Weekly digests: what goes in (`plan`), building one once per list and period
//! (`build`), rendering per subscriber (`render`), the delivery outbox (`outbox`) and
//! the schedule (`schedule`).

pub mod outbox;
pub mod render;
pub mod schedule;

use crate::app::App;
use crate::domain::{DigestTrigger, DigestWindow, IsoWeek, MailingList, Selection, Subscriber};
use crate::store::{Created, Store};
use chrono::{DateTime, Utc};
use render::{DigestContext, PersonalLinks, RenderedDigest};
use std::collections::HashMap;

/// The window and items of a list's digest for a period, from what is stored now.
pub async fn plan(
    store: &Store,
    list: &MailingList,
    period: IsoWeek,
) -> anyhow::Result<(DigestWindow, Selection)> {
    let tz = list.schedule.timezone.tz();
    let period_start = period.start(tz);
    let window = DigestWindow {
        period_start,
        period_end: period.end(tz),
        news_since: store.digests().news_since(list.id, period_start).await?,
    };
    let selection = store.digests().select_items(list.id, &window).await?;
    Ok((window, selection))
}

/// Builds the digest of a list for a period, once: a second call (a second tick,
/// a restart, another instance, an admin) finds the first.
pub async fn build(
    store: &Store,
    list: &MailingList,
    period: IsoWeek,
    trigger: DigestTrigger,
    scheduled_for: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> anyhow::Result<Created> {
    if let Some(existing) = store
        .digests()
        .for_period(list.id, &period.to_string())
        .await?
    {
        return Ok(Created::Existing(existing));
    }
    let (window, selection) = plan(store, list, period).await?;
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
            now,
        )
        .await?)
}

/// The items of a period: the stored digest's when there is one, else the plan.
async fn items_of(
    store: &Store,
    list: &MailingList,
    period: IsoWeek,
) -> anyhow::Result<(Option<i64>, Selection)> {
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

/// Renders a digest without sending anything or writing anything: for a subscriber
/// (what they would get), or for a stand-in reader when `subscriber` is `None`.
pub async fn preview(
    state: &App,
    list: &MailingList,
    period: IsoWeek,
    subscriber: Option<&Subscriber>,
) -> anyhow::Result<Option<RenderedDigest>> {
    let (digest_id, selection) = items_of(&state.store, list, period).await?;
    let stand_in;
    let (subscriber, sent_before) = match subscriber {
        Some(s) => {
            let sent = state
                .store
                .outbox()
                .delivered_items(&[s.id], &item_ids(&selection), digest_id)
                .await?
                .into_iter()
                .map(|((_, item), at)| (item, at))
                .collect();
            (s, sent)
        }
        None => {
            stand_in = Subscriber {
                language: "en".into(),
                ..Subscriber::blank(state.clock.now())
            };
            (&stand_in, HashMap::new())
        }
    };
    let base = &state.settings.base_url;
    let ctx = DigestContext {
        list,
        period,
        selection: &selection,
        site_name: &state.settings.site_name,
        base_url: base,
    };
    // Previews carry no working personal links: nothing is minted for them.
    let links = PersonalLinks {
        unsubscribe_url: format!("{base}/unsubscribe/PREVIEW"),
        preferences_url: format!("{base}/preferences/PREVIEW"),
    };
    render::render_for(&state.templates, &ctx, subscriber, &sent_before, &links)
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

pub async fn dry_run(state: &App, list: &MailingList, period: IsoWeek) -> anyhow::Result<DryRun> {
    let (digest_id, selection) = items_of(&state.store, list, period).await?;
    let ids = item_ids(&selection);
    let mut recipients = Vec::new();
    let mut after = 0;
    loop {
        let page = state
            .store
            .people()
            .subscribers_after(Some(list.id), after, 500, true)
            .await?;
        let Some(last) = page.last() else { break };
        after = last.id;
        let subscriber_ids: Vec<i64> = page.iter().map(|s| s.id).collect();
        let sent = state
            .store
            .outbox()
            .delivered_items(&subscriber_ids, &ids, digest_id)
            .await?;
        let all_items: Vec<&crate::domain::Item> =
            selection.coming_up.iter().chain(&selection.news).collect();
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
