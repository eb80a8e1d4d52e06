//! Partners and subscribers: the directory an admin keeps. Who joins which list, and
//! how, is [`super::subscriptions`].

use super::{ServiceError, ServiceResult};
use crate::app::App;
use crate::domain::{
    DeliveryRecord, Membership, Partner, PartnerDraft, StatusChange, Subscriber, SubscriberDraft,
    SubscriberEvent,
};
use crate::store::SubscriberFilter;

// ---- partners ---------------------------------------------------------------------

/// Every partner, by name.
pub async fn partners(app: &App) -> ServiceResult<Vec<Partner>> {
    Ok(app.store.people().partners().await?)
}

pub async fn partner(app: &App, id: i64) -> ServiceResult<Partner> {
    app.store
        .people()
        .partner(id)
        .await?
        .ok_or_else(|| ServiceError::not_found(format!("partner {id}")))
}

/// Adds a partner; a name taken already (in any case) is a conflict.
pub async fn create_partner(app: &App, draft: &PartnerDraft) -> ServiceResult<Partner> {
    Ok(app
        .store
        .people()
        .create_partner(draft, app.clock.now())
        .await?)
}

pub async fn update_partner(app: &App, id: i64, draft: &PartnerDraft) -> ServiceResult<Partner> {
    Ok(app
        .store
        .people()
        .update_partner(id, draft, app.clock.now())
        .await?)
}

/// Deletes a partner; refused (a conflict) while subscribers belong to it.
pub async fn delete_partner(app: &App, id: i64) -> ServiceResult<()> {
    Ok(app.store.people().delete_partner(id).await?)
}

// ---- subscribers ------------------------------------------------------------------

/// Subscribers matching a filter, in address order, and how many match in all.
pub async fn search_subscribers(
    app: &App,
    filter: &SubscriberFilter,
) -> ServiceResult<(Vec<Subscriber>, u64)> {
    Ok(app.store.people().subscribers(filter).await?)
}

pub async fn subscriber(app: &App, id: i64) -> ServiceResult<Subscriber> {
    app.store
        .people()
        .subscriber(id)
        .await?
        .ok_or_else(|| ServiceError::not_found(format!("subscriber {id}")))
}

/// A subscriber with their lists and what happened to them, oldest first.
#[derive(Debug, Clone)]
pub struct SubscriberRecord {
    pub subscriber: Subscriber,
    pub memberships: Vec<Membership>,
    pub history: Vec<SubscriberEvent>,
}

pub async fn subscriber_record(app: &App, id: i64) -> ServiceResult<SubscriberRecord> {
    let subscriber = subscriber(app, id).await?;
    Ok(SubscriberRecord {
        memberships: app.store.lists().memberships_of(id).await?,
        history: app.store.people().history_of(id).await?,
        subscriber,
    })
}

/// The last `limit` digests sent (or tried) to a subscriber, newest first.
pub async fn digests_received(
    app: &App,
    id: i64,
    limit: u32,
) -> ServiceResult<Vec<DeliveryRecord>> {
    Ok(app.store.digests().deliveries_of(id, limit).await?)
}

/// Replaces a subscriber's details (not their status or lists).
pub async fn update_subscriber(
    app: &App,
    id: i64,
    draft: &SubscriberDraft,
) -> ServiceResult<Subscriber> {
    Ok(app
        .store
        .people()
        .update_subscriber(id, draft, app.clock.now())
        .await?)
}

/// Sets a subscriber's status by hand, recording why and, when known, by whom.
pub async fn set_status(
    app: &App,
    id: i64,
    change: &StatusChange,
    by: Option<&str>,
) -> ServiceResult<Subscriber> {
    let reason = match (change.reason.as_str(), by) {
        ("", Some(by)) => format!("set by {by}"),
        ("", None) => "set by an admin".to_owned(),
        (given, Some(by)) => format!("{given} (by {by})"),
        (given, None) => given.to_owned(),
    };
    Ok(app
        .store
        .people()
        .set_subscriber_status(id, change.status, &reason, app.clock.now())
        .await?)
}

/// Deletes a subscriber and everything about them.
pub async fn delete_subscriber(app: &App, id: i64) -> ServiceResult<()> {
    Ok(app.store.people().delete_subscriber(id).await?)
}
