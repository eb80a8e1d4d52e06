//! Subscriptions: who joins which list and how (the opt-in rule, once, in
//! [`opt_in`]), confirmation mails, tokens for mailed links, and the public side
//! (subscribe, confirm, unsubscribe, preferences) in [`public`].

pub mod opt_in;
pub mod public;
mod tokens;

pub use opt_in::admission;
pub use tokens::*;

use super::{ServiceError, ServiceResult};
use crate::app::App;
use crate::domain::{
    Consent, JoinedVia, Joining, MailingList, MembershipStatus, Subscriber, SubscriberDraft,
    TokenPurpose,
};
use crate::mail::OutgoingMail;
use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

#[derive(Serialize)]
struct ConfirmMail<'a> {
    name: &'a str,
    list_name: &'a str,
    site_name: &'a str,
    site_url: &'a str,
    confirm_url: String,
    unsubscribe_url: String,
    valid_days: i64,
}

/// Sends the mail whose link confirms the address and joins the list.
pub async fn send_confirmation(
    state: &App,
    subscriber_id: i64,
    list: &MailingList,
) -> ServiceResult<()> {
    let now = state.clock.now();
    let subscriber = state
        .store
        .people()
        .subscriber(subscriber_id)
        .await?
        .ok_or_else(|| ServiceError::not_found(format!("subscriber {subscriber_id}")))?;
    let store = &state.store;
    let base = &state.settings.base_url;
    let confirm = mint_token(
        store,
        subscriber_id,
        TokenPurpose::Confirm,
        Some(list.id),
        Some(now + Duration::days(CONFIRM_DAYS)),
        now,
    )
    .await?;
    let unsubscribe = mint_token(
        store,
        subscriber_id,
        TokenPurpose::Unsubscribe,
        Some(list.id),
        None,
        now,
    )
    .await?;
    // The pages the mail links to are in the reader's language, under `/{lang}/`, as a
    // digest's are; unprefixed for a language the site is not read in.
    let languages = &state.settings.languages;
    let prefix = match languages.for_content(&subscriber.language) {
        Some(l) => format!("/{}", l.as_str()),
        None => String::new(),
    };
    // The List-Unsubscribe header's address is the unprefixed one: a mail program
    // posts to it, nobody reads it.
    let unsubscribe_url = format!("{base}/unsubscribe/{unsubscribe}");
    let site_url = match prefix.as_str() {
        "" => base.clone(),
        p => format!("{base}{p}/"),
    };
    let data = ConfirmMail {
        name: &subscriber.name,
        list_name: list.name_in(&subscriber.language),
        site_name: &state.settings.site_name,
        site_url: &site_url,
        confirm_url: format!("{base}{prefix}/subscribe/confirm/{confirm}"),
        unsubscribe_url: format!("{base}{prefix}/unsubscribe/{unsubscribe}"),
        valid_days: CONFIRM_DAYS,
    };
    // One set for the mail and its subject (`confirm_subject` of the page words).
    let templates = state.templates.current();
    let rendered = templates.render_email("confirm", &subscriber.language, &data)?;
    let subject = templates.words(&subscriber.language).fill(
        "confirm_subject",
        &[("list", list.name_in(&subscriber.language))],
    );
    let mail = OutgoingMail {
        to_email: subscriber.email.clone(),
        to_name: subscriber.name.clone(),
        subject,
        text: rendered.text,
        html: rendered.html,
        list_unsubscribe: Some(unsubscribe_url),
        list_id: Some(list_id_header(&list.slug, &state.ids)),
    };
    state
        .mailer
        .send(&mail)
        .await
        .map_err(|e| ServiceError::Unavailable(format!("sending the confirmation mail: {e}")))?;
    Ok(())
}

/// Sends a confirmation in the background so the answer to the request neither waits
/// for the mail server nor reveals by its timing whether a mail went out.
pub fn send_confirmation_later(state: &App, subscriber_id: i64, list: MailingList) {
    let state = state.clone();
    tokio::spawn(async move {
        if let Err(e) = send_confirmation(&state, subscriber_id, &list).await {
            tracing::warn!(
                error = format!("{e:#}"),
                subscriber_id,
                list = list.slug,
                "confirmation mail not sent"
            );
        }
    });
}

/// An admin adds a contact (through the API or the pages), optionally on a list. A
/// stated consent, or a single opt-in list, confirms them at once; otherwise, on a
/// list, they stay pending and are mailed a confirmation link. Returns the subscriber
/// and, with a list, where they stand on it.
pub async fn add_subscriber(
    state: &App,
    draft: &SubscriberDraft,
    consent: Option<Consent>,
    list: Option<MailingList>,
    now: DateTime<Utc>,
) -> ServiceResult<(Subscriber, Option<MembershipStatus>)> {
    let stated = consent.is_some();
    let consent = opt_in::consent_for_new(list.as_ref().map(|l| l.opt_in), consent, || Consent {
        source: "admin: single opt-in list".into(),
        ip: None,
    });
    let subscriber = state
        .store
        .people()
        .create_subscriber(draft, JoinedVia::Admin, consent.as_ref(), now)
        .await?;
    let Some(list) = list else {
        return Ok((subscriber, None));
    };
    let admitted = admission(Joining::Admin, list.opt_in, stated, None, None);
    let status = admit(
        state,
        &list,
        &subscriber,
        admitted,
        "added by an admin",
        now,
    )
    .await?;
    Ok((subscriber, Some(status)))
}

/// An admin (`by`) puts an existing subscriber on a list: confirmed at once with a
/// stated consent, on a single opt-in list, or when their address is confirmed
/// already; otherwise pending, with a confirmation mail.
pub async fn add_to_list(
    state: &App,
    list: &MailingList,
    subscriber: &Subscriber,
    consent: Option<&str>,
    by: &str,
    now: DateTime<Utc>,
) -> ServiceResult<MembershipStatus> {
    let admitted = admission(
        Joining::Admin,
        list.opt_in,
        consent.is_some(),
        Some(subscriber.status),
        None,
    );
    let why = match consent {
        Some(c) => format!("added by {by}; consent: {c}"),
        None => format!("added by {by}"),
    };
    admit(state, list, subscriber, admitted, &why, now).await
}

/// Carries out an admin's admission: the standing written, a mail sent when due.
async fn admit(
    state: &App,
    list: &MailingList,
    subscriber: &Subscriber,
    admitted: crate::domain::Admission,
    why: &str,
    now: DateTime<Utc>,
) -> ServiceResult<MembershipStatus> {
    let status = admitted.membership.unwrap_or(MembershipStatus::Pending);
    state
        .store
        .lists()
        .set_membership(list.id, subscriber.id, status, why, now)
        .await?;
    if admitted.confirm_by_mail {
        send_confirmation_later(state, subscriber.id, list.clone());
    }
    Ok(status)
}

/// Takes a subscriber off a list (they stay on their other lists), recording why.
pub async fn remove_from_list(
    state: &App,
    list: &MailingList,
    subscriber_id: i64,
    why: &str,
) -> ServiceResult<()> {
    let now = state.clock.now();
    Ok(state
        .store
        .lists()
        .set_membership(
            list.id,
            subscriber_id,
            MembershipStatus::Unsubscribed,
            why,
            now,
        )
        .await?)
}

/// Every list, by slug (for choosing one).
pub async fn all_lists(state: &App) -> ServiceResult<Vec<MailingList>> {
    Ok(state.store.lists().all().await?)
}

/// The list with this slug.
pub async fn find_list(state: &App, slug: &str) -> ServiceResult<MailingList> {
    state
        .store
        .lists()
        .by_slug(slug)
        .await?
        .ok_or_else(|| ServiceError::not_found(format!("list {slug:?}")))
}

/// The list with this slug, when one is named.
pub async fn find_list_opt(state: &App, slug: Option<&str>) -> ServiceResult<Option<MailingList>> {
    match slug {
        Some(slug) => find_list(state, slug).await.map(Some),
        None => Ok(None),
    }
}
