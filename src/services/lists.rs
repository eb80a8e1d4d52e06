//! Mailing lists: their settings (categories, schedule and zone), their members, and
//! how each stands (member counts, the next digest). A change to a list or its schedule
//! is announced by the store ([`crate::app::ContentChange::List`]) to the scheduler of
//! every instance, which plans that list's job again.

use super::{ServiceError, ServiceResult};
use crate::app::App;
use crate::domain::{
    Category, IsoWeek, ListDraft, MailingList, MembershipStatus, Subscriber, Text, ZoneSend,
    zone_sends,
};
use crate::store::SubscriberFilter;
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;

/// Every list, in the store's order.
pub async fn all(app: &App) -> ServiceResult<Vec<MailingList>> {
    Ok(app.store.lists().all().await?)
}

/// The list with this slug.
pub async fn find(app: &App, slug: &str) -> ServiceResult<MailingList> {
    app.store
        .lists()
        .by_slug(slug)
        .await?
        .ok_or_else(|| ServiceError::not_found(format!("list {slug:?}")))
}

pub async fn create(app: &App, draft: &ListDraft) -> ServiceResult<MailingList> {
    let list = app.store.lists().create(draft, app.clock.now()).await?;
    Ok(list)
}

/// Replaces the settings of the list with this slug (the draft may rename it).
pub async fn update(app: &App, slug: &str, draft: &ListDraft) -> ServiceResult<MailingList> {
    let list = app
        .store
        .lists()
        .update(slug, draft, app.clock.now())
        .await?;
    Ok(list)
}

/// Deletes a list nobody is a confirmed member of (a conflict otherwise).
pub async fn delete(app: &App, slug: &str) -> ServiceResult<()> {
    app.store.lists().delete(slug).await?;
    Ok(())
}

/// The categories a list may carry, for choosing them.
pub async fn categories(app: &App) -> ServiceResult<Vec<Category>> {
    Ok(app.store.content().categories().await?)
}

// ---- how a list stands ---------------------------------------------------------------

/// A list with its member counts and its next digest: what the dashboard, the list
/// pages and the API show of it.
pub struct Overview {
    pub list: MailingList,
    /// Members by status; every status is there, 0 when none.
    pub counts: BTreeMap<MembershipStatus, u64>,
    /// When the schedule next fires (never again: `None`), and the week that digest is of.
    pub next_digest: Option<(DateTime<Utc>, IsoWeek)>,
}

impl Overview {
    pub fn count(&self, status: MembershipStatus) -> u64 {
        self.counts.get(&status).copied().unwrap_or(0)
    }
}

pub async fn overview(app: &App, list: MailingList) -> ServiceResult<Overview> {
    let counts = app.store.lists().counts(list.id).await?;
    let tz = list.schedule.fire_zone();
    let next_digest = list
        .schedule
        .cron
        .next_fire_after(app.clock.now(), tz)
        .map(|at| (at, IsoWeek::containing(at, tz)));
    Ok(Overview {
        list,
        counts,
        next_digest,
    })
}

/// For a reader-local list, its next digest's sends: per zone of its readers (their
/// own, else their institution's, else the list's), the local and UTC time and how many
/// readers, earliest first, as they stand now (the digest fixes them when it is built).
/// Empty for a list-zone list, or one whose schedule does not fire again.
pub async fn next_sends(app: &App, overview: &Overview) -> ServiceResult<Vec<ZoneSend>> {
    let schedule = &overview.list.schedule;
    let Some(local) = overview
        .next_digest
        .and_then(|(at, _)| schedule.local_send_time(at))
    else {
        return Ok(Vec::new());
    };
    let zones = app.store.lists().reader_zones(overview.list.id).await?;
    Ok(zone_sends(
        local,
        zones.iter().map(|(zone, n)| (zone.as_deref(), *n)),
        schedule.timezone.tz(),
    ))
}

/// One digest's sends by due time and zone name.
type ZoneSendsByTime = BTreeMap<(DateTime<Utc>, &'static str), ZoneSend>;

/// The sends of a list's digests already built and still being sent (a reader-local
/// digest whose readers' times are not all reached yet): per digest, its period and,
/// per zone of its waiting readers (their own, else their institution's, else the
/// list's), the local and UTC time they are due (as stored, on the database's clock)
/// and how many, earliest first. Empty when none waits.
pub async fn sending_sends(
    app: &App,
    list: &MailingList,
) -> ServiceResult<Vec<(String, Vec<ZoneSend>)>> {
    let fallback = list.schedule.timezone.tz();
    let mut out: Vec<(String, ZoneSendsByTime)> = Vec::new();
    for w in app.store.digests().waiting_local_sends(list.id).await? {
        let zone = w
            .zone
            .as_deref()
            .and_then(|n| n.parse::<chrono_tz::Tz>().ok())
            .unwrap_or(fallback);
        if out.last().is_none_or(|(period, _)| *period != w.period) {
            out.push((w.period.clone(), BTreeMap::new()));
        }
        let Some((_, sends)) = out.last_mut() else {
            continue;
        };
        sends
            .entry((w.due, zone.name()))
            .or_insert_with(|| ZoneSend {
                zone,
                local: w.due.with_timezone(&zone).naive_local(),
                at: w.due,
                readers: 0,
            })
            .readers += w.readers;
    }
    Ok(out
        .into_iter()
        .map(|(period, sends)| (period, sends.into_values().collect()))
        .collect())
}

/// Every list with its counts and next digest.
pub async fn overviews(app: &App) -> ServiceResult<Vec<Overview>> {
    let mut out = Vec::new();
    for list in all(app).await? {
        out.push(overview(app, list).await?);
    }
    Ok(out)
}

// ---- members -------------------------------------------------------------------------

/// The first members of a list, in address order, with their status on it.
pub struct Members {
    pub members: Vec<(Subscriber, Option<MembershipStatus>)>,
    /// How many there are in all.
    pub total: u64,
}

pub async fn members(app: &App, list: &MailingList, limit: u32) -> ServiceResult<Members> {
    let (subscribers, total) = app
        .store
        .people()
        .subscribers(&SubscriberFilter {
            list: Some(list.id),
            limit,
            ..Default::default()
        })
        .await?;
    let ids: Vec<i64> = subscribers.iter().map(|m| m.id).collect();
    let statuses = app.store.lists().membership_statuses(list.id, &ids).await?;
    let members = subscribers
        .into_iter()
        .map(|s| {
            let status = statuses.get(&s.id).copied();
            (s, status)
        })
        .collect();
    Ok(Members { members, total })
}

/// An admin puts an existing subscriber on a list: confirmed at once with a stated
/// consent (checked here: at most 300 characters), on a single opt-in list, or when
/// their address is confirmed already; otherwise pending, with a confirmation mail.
pub async fn add_member(
    app: &App,
    list: &MailingList,
    subscriber_id: i64,
    consent_source: Option<&str>,
) -> ServiceResult<(Subscriber, MembershipStatus)> {
    let consent = match consent_source {
        Some(c) => Some(
            Text::parse(c, 300, true, false)
                .map_err(|m| ServiceError::invalid("consent_source", m))?,
        ),
        None => None,
    };
    let subscriber = app
        .store
        .people()
        .subscriber(subscriber_id)
        .await?
        .ok_or_else(|| {
            // A reference in the body, like an unknown partner or category: the list
            // named by the path exists, so this is not a 404.
            ServiceError::invalid(
                "subscriber_id",
                format!("no subscriber has the id {subscriber_id}"),
            )
        })?;
    let status = crate::services::subscriptions::add_to_list(
        app,
        list,
        &subscriber,
        consent.as_ref().map(|c| c.as_str()),
        "an admin",
        app.clock.now(),
    )
    .await?;
    Ok((subscriber, status))
}

/// Takes a subscriber off a list (they stay on their other lists); not found when
/// they were never on it.
pub async fn remove_member(app: &App, list: &MailingList, subscriber_id: i64) -> ServiceResult<()> {
    if app
        .store
        .lists()
        .membership_status(list.id, subscriber_id)
        .await?
        .is_none()
    {
        return Err(ServiceError::not_found(format!(
            "subscriber {subscriber_id} on list {}",
            list.slug
        )));
    }
    app.store
        .lists()
        .set_membership(
            list.id,
            subscriber_id,
            MembershipStatus::Unsubscribed,
            "removed by an admin",
            app.clock.now(),
        )
        .await?;
    Ok(())
}
