//! One digest: its items, delivery counts, failed deliveries with their reasons;
//! retry the failed ones, or cancel what is still pending.

use super::page::{self, PageError, PageResult, parse_id, when, when_opt};
use super::session::{Session, done};
use crate::domain::{Digest, MailingList};
use crate::http::AppState;
use crate::http::error::AppError;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Serialize;

#[derive(Serialize)]
struct ItemRow {
    id: i64,
    title: String,
    when: String,
}

#[derive(Serialize)]
struct FailedRow {
    subscriber_id: i64,
    email: String,
    attempts: u32,
    error: String,
    permanent: bool,
}

#[derive(Serialize)]
struct Body {
    id: i64,
    list: String,
    list_name: String,
    period: String,
    status: &'static str,
    trigger: &'static str,
    built: String,
    completed: String,
    note: String,
    pending: u64,
    sending: u64,
    sent: u64,
    failed: u64,
    skipped: u64,
    cancelled: u64,
    in_progress: bool,
    /// Failed deliveries, and a digest that was not cancelled.
    can_retry: bool,
    coming_up: Vec<ItemRow>,
    news: Vec<ItemRow>,
    failures: Vec<FailedRow>,
    archive_url: String,
}

async fn find(state: &AppState, id: &str) -> Result<(Digest, MailingList), PageError> {
    let id = parse_id("digest", id)?;
    let digest = state
        .store
        .digests()
        .by_id(id)
        .await?
        .ok_or_else(|| PageError(AppError::NotFound(format!("digest {id}"))))?;
    let list = state
        .store
        .lists()
        .by_id(digest.list_id)
        .await?
        .ok_or_else(|| PageError(AppError::NotFound(format!("digest {id}"))))?;
    Ok((digest, list))
}

pub async fn show(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<String>,
) -> PageResult {
    let (d, list) = find(&state, &id).await?;
    let counts = state.store.digests().delivery_counts(d.id).await?;
    let items = state.store.digests().items(d.id).await?;
    let failures = state.store.digests().failed_deliveries(d.id, 500).await?;
    let row = |i: &crate::domain::Item| ItemRow {
        id: i.id,
        title: i.title.clone(),
        when: match &i.event {
            Some(e) => e
                .starts_at
                .with_timezone(&e.timezone.tz())
                .format("%a %-d %b %Y %H:%M %Z")
                .to_string(),
            None => when_opt(i.published_at),
        },
    };
    let body = Body {
        id: d.id,
        list: list.slug.clone(),
        list_name: list.name.clone(),
        period: d.period.clone(),
        status: d.status.as_str(),
        trigger: d.trigger.as_str(),
        built: when(d.created_at),
        completed: when_opt(d.completed_at),
        note: d.note.clone(),
        pending: counts.pending,
        sending: counts.sending,
        sent: counts.sent,
        failed: counts.failed,
        skipped: counts.skipped,
        cancelled: counts.cancelled,
        in_progress: counts.pending + counts.sending > 0,
        can_retry: counts.failed > 0 && d.status != crate::domain::DigestStatus::Cancelled,
        coming_up: items.coming_up.iter().map(row).collect(),
        news: items.news.iter().map(row).collect(),
        failures: failures
            .into_iter()
            .map(|f| FailedRow {
                subscriber_id: f.subscriber_id,
                email: f.email,
                attempts: f.attempts,
                error: f.error,
                permanent: f.permanent,
            })
            .collect(),
        archive_url: format!(
            "{}/digests/{}/{}",
            state.settings.base_url, list.slug, d.period
        ),
    };
    let title = format!("{} · {}", list.name, d.period);
    page::render(
        &state,
        &session,
        StatusCode::OK,
        "lists",
        "admin/digest",
        &title,
        &body,
    )
}

pub async fn retry(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<String>,
) -> PageResult {
    let (d, _) = find(&state, &id).await?;
    let back = format!("/admin/digests/{}", d.id);
    match state
        .store
        .digests()
        .retry_failed(d.id, state.clock.now())
        .await
    {
        Ok(n) => {
            state.outbox_wake.notify_one();
            let message = if n == 0 {
                "Nothing to retry: the failed deliveries are to addresses that have bounced or \
                 left the list."
                    .to_owned()
            } else {
                format!(
                    "{n} failed delivery(ies) are being sent again (not to addresses that have \
                     bounced or left the list)."
                )
            };
            done(&state, &session, n > 0, &message, &back).await
        }
        Err(crate::store::StoreError::Conflict { message, .. }) => {
            done(
                &state,
                &session,
                false,
                &format!("Not retried: {message}."),
                &back,
            )
            .await
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn cancel(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<String>,
) -> PageResult {
    let (d, _) = find(&state, &id).await?;
    match state.store.digests().cancel(d.id, state.clock.now()).await {
        Ok(n) => {
            done(
                &state,
                &session,
                true,
                &format!("The digest was cancelled; {n} pending delivery(ies) will not be sent."),
                &format!("/admin/digests/{}", d.id),
            )
            .await
        }
        Err(crate::store::StoreError::Conflict { message, .. }) => {
            done(
                &state,
                &session,
                false,
                &format!("Not cancelled: {message}."),
                &format!("/admin/digests/{}", d.id),
            )
            .await
        }
        Err(e) => Err(e.into()),
    }
}
