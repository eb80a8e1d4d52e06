//! The public side of lists: the subscribe form, the confirmation link, one-click
//! unsubscribe and the preference page. Every unknown, used or expired token is
//! answered `None`, so the page says nothing of why.

use super::opt_in::{admission, consent_for_new};
use super::{mint_token, send_confirmation_later, token_hash};
use crate::app::App;
use crate::domain::{
    Admission, Consent, Email, FieldErrors, Joining, Language, MailingList, MembershipStatus, Slug,
    Subscriber, SubscriberStatus, SubscriptionOutcome, SubscriptionRequest, Text, TimeZone,
    TokenGrant, TokenPurpose, Visibility,
};
use crate::services::{ServiceError, ServiceResult};
use crate::store::Budget;

/// The lists anyone may join from the form.
pub async fn public_lists(app: &App) -> ServiceResult<Vec<MailingList>> {
    Ok(app
        .store
        .lists()
        .all()
        .await?
        .into_iter()
        .filter(|l| l.visibility == Visibility::Public)
        .collect())
}

/// The subscribe form as sent.
#[derive(Debug, Clone, Copy, Default)]
pub struct SubscribeInput<'a> {
    pub email: &'a str,
    pub name: &'a str,
    pub list: Option<&'a str>,
    pub language: Option<&'a str>,
}

/// The form checked against the public lists (a private list is answered exactly like
/// one that does not exist; with one public list, naming none means that one).
fn check(
    input: &SubscribeInput,
    lists: &[MailingList],
    ip: Option<&str>,
) -> Result<(SubscriptionRequest, MailingList), FieldErrors> {
    let mut errors = FieldErrors::new();
    let email = errors.check("email", Email::parse(input.email));
    let name = errors.check("name", Text::parse(input.name, 200, false, false));
    let language = match input.language.filter(|l| !l.is_empty()) {
        Some(l) => errors.check("language", Language::parse(l)),
        None => Some(Language::default()),
    };
    let list = match input.list.filter(|l| !l.is_empty()) {
        None if lists.len() == 1 => Some(lists[0].clone()),
        None => {
            errors.add("list", "choose a list");
            None
        }
        Some(slug) => {
            let found = Slug::parse(slug)
                .ok()
                .and_then(|s| lists.iter().find(|l| l.slug == s.as_str()));
            if found.is_none() {
                errors.add("list", format!("there is no public list {slug:?}"));
            }
            found.cloned()
        }
    };
    errors.finish(|| {
        Some((
            SubscriptionRequest {
                email: email?,
                name: name?,
                language: language?,
                ip: ip.map(str::to_owned),
            },
            list?,
        ))
    })
}

/// The opt-in rule as the public form applies it to one list.
pub fn form_admission(
    list: &MailingList,
) -> impl Fn(SubscriberStatus, Option<MembershipStatus>) -> Admission + use<> {
    let opt_in = list.opt_in;
    move |subscriber, member| admission(Joining::Form, opt_in, false, Some(subscriber), member)
}

/// The limit scope of subscribe requests per client address.
const SUBSCRIBE_SCOPE: &str = "subscribe";
/// The limit scope of confirmation mails per address.
const CONFIRM_MAIL_SCOPE: &str = "confirm_mail";
/// Confirmation mails the form sends one address: one per 10 minutes, 3 a day.
pub const CONFIRM_MAILS: Budget = Budget {
    max: 3,
    window_secs: 24 * 3600,
    min_gap_secs: 10 * 60,
};

/// Takes one of the subscribe requests the client's address `ip` may send per hour
/// (`NEWSDESK_SUBSCRIBE_RATE_PER_HOUR`); false when it has used them up. Counted in the
/// database: every instance on it shares the budget.
pub async fn subscribe_allowed(app: &App, ip: &str) -> ServiceResult<bool> {
    let budget = Budget::per_window(i64::from(app.settings.subscribe_rate_per_hour), 3600);
    Ok(app.store.limits().take(SUBSCRIBE_SCOPE, ip, budget).await?)
}

/// A request from the subscribe form, from `ip`. Invalid input is `Invalid`; anything
/// else is answered the same whether the address was new, pending or confirmed, and
/// whether or not a mail goes out: the confirmation mail is sent (or, past the
/// address's limit of [`CONFIRM_MAILS`], not sent) after the answer.
pub async fn subscribe(app: &App, input: &SubscribeInput<'_>, ip: &str) -> ServiceResult<()> {
    let lists = public_lists(app).await?;
    let (request, list) = check(input, &lists, Some(ip))?;
    // A new address joining a single opt-in list gives its consent by joining.
    let consent = consent_for_new(Some(list.opt_in), None, || Consent {
        source: format!("form: single opt-in to {}", list.slug),
        ip: Some(ip.to_owned()),
    });
    let outcome = app
        .store
        .lists()
        .request_subscription(
            &request,
            &list,
            consent.as_ref(),
            app.clock.now(),
            form_admission(&list),
        )
        .await?;
    if let SubscriptionOutcome::NeedsConfirmation { subscriber_id } = outcome {
        let app = app.clone();
        let key = request.email.key().to_owned();
        tokio::spawn(async move {
            match app
                .store
                .limits()
                .take(CONFIRM_MAIL_SCOPE, &key, CONFIRM_MAILS)
                .await
            {
                Ok(true) => send_confirmation_later(&app, subscriber_id, list),
                Ok(false) => tracing::info!(
                    subscriber_id,
                    "confirmation mail not sent: the address had its share"
                ),
                Err(e) => tracing::warn!(
                    error = format!("{e:#}"),
                    subscriber_id,
                    "confirmation mail not sent: its limit could not be counted"
                ),
            }
        });
    }
    Ok(())
}

/// A followed confirmation link.
#[derive(Debug, Clone)]
pub struct Confirmed {
    /// The list joined, when the link named one.
    /// The list, to be named in the page's language.
    pub list: Option<MailingList>,
    /// A token for the preference page, when one could be made.
    pub preferences_token: Option<String>,
}

/// Follows a confirmation link: the address is confirmed, the list joined.
pub async fn confirm(app: &App, token: &str) -> ServiceResult<Option<Confirmed>> {
    let now = app.clock.now();
    let Some((subscriber_id, list_id)) = app
        .store
        .tokens()
        .confirm_subscription(&token_hash(token), now)
        .await?
    else {
        return Ok(None);
    };
    // The confirmation is done; what follows only decorates the answer.
    let list = match list_id {
        Some(id) => app.store.lists().by_id(id).await.ok().flatten(),
        None => None,
    };
    let preferences_token = match mint_token(
        &app.store,
        subscriber_id,
        TokenPurpose::Preferences,
        None,
        None,
        now,
    )
    .await
    {
        Ok(t) => Some(t),
        Err(e) => {
            tracing::warn!(
                error = format!("{e:#}"),
                "could not make a preferences link"
            );
            None
        }
    };
    Ok(Some(Confirmed {
        list,
        preferences_token,
    }))
}

/// Whom an unsubscribe link is for, to name on its page.
#[derive(Debug, Clone)]
pub struct UnsubscribeTarget {
    pub email: Option<String>,
    /// The list, to be named in the page's language.
    pub list: Option<MailingList>,
}

pub async fn unsubscribe_target(
    app: &App,
    token: &str,
) -> ServiceResult<Option<UnsubscribeTarget>> {
    let Some(grant) = grant(app, token, TokenPurpose::Unsubscribe).await? else {
        return Ok(None);
    };
    let email = app
        .store
        .people()
        .subscriber(grant.subscriber_id)
        .await
        .ok()
        .flatten()
        .map(|s| s.email);
    let list = match grant.list_id {
        Some(id) => app.store.lists().by_id(id).await.ok().flatten(),
        None => None,
    };
    Ok(Some(UnsubscribeTarget { email, list }))
}

/// One-click unsubscribe: leaves the token's list (every list for a token without
/// one). Repeating it changes nothing. False for an unknown token.
pub async fn unsubscribe(app: &App, token: &str) -> ServiceResult<bool> {
    Ok(app
        .store
        .tokens()
        .unsubscribe(&token_hash(token), app.clock.now())
        .await?
        .is_some())
}

async fn grant(app: &App, token: &str, purpose: TokenPurpose) -> ServiceResult<Option<TokenGrant>> {
    Ok(app
        .store
        .tokens()
        .find(&token_hash(token), purpose, app.clock.now())
        .await?)
}

/// What the preference page shows.
#[derive(Debug, Clone)]
pub struct Preferences {
    pub subscriber: Subscriber,
    /// The public lists and the private ones they are on, with where they stand.
    pub lists: Vec<(MailingList, Option<MembershipStatus>)>,
    /// Their partner's zone, used when they have none of their own.
    pub institution_zone: Option<String>,
}

pub async fn preferences(app: &App, token: &str) -> ServiceResult<Option<Preferences>> {
    let Some(grant) = grant(app, token, TokenPurpose::Preferences).await? else {
        return Ok(None);
    };
    let subscriber = app
        .store
        .people()
        .subscriber(grant.subscriber_id)
        .await?
        .ok_or_else(|| ServiceError::not_found("subscriber"))?;
    let memberships = app.store.lists().memberships_of(subscriber.id).await?;
    let institution_zone = match subscriber.partner_id {
        Some(id) => app.store.people().partner(id).await?.map(|p| p.timezone),
        None => None,
    };
    let lists = app
        .store
        .lists()
        .all()
        .await?
        .into_iter()
        .filter_map(|l| {
            let membership = memberships.iter().find(|m| m.list_id == l.id);
            if l.visibility == Visibility::Private && membership.is_none() {
                return None;
            }
            Some((l, membership.map(|m| m.status)))
        })
        .collect();
    Ok(Some(Preferences {
        subscriber,
        lists,
        institution_zone,
    }))
}

/// The preference form as sent: a language, a zone (empty: the institution's) and
/// the slugs of the lists to be on.
#[derive(Debug, Clone, Default)]
pub struct PreferencesInput {
    pub language: Option<String>,
    pub timezone: Option<String>,
    pub lists: Vec<String>,
}

/// Saves the preference page. False for an unknown token.
pub async fn save_preferences(
    app: &App,
    token: &str,
    input: &PreferencesInput,
) -> ServiceResult<bool> {
    let Some(grant) = grant(app, token, TokenPurpose::Preferences).await? else {
        return Ok(false);
    };
    let mut errors = FieldErrors::new();
    let language = match input.language.as_deref() {
        Some(l) => errors.check("language", Language::parse(l)),
        None => Some(Language::default()),
    };
    let timezone = match input.timezone.as_deref().map(str::trim) {
        None => Some(None),
        Some("") => Some(Some(None)),
        Some(t) => errors
            .check("timezone", TimeZone::parse(t))
            .map(|z| Some(Some(z))),
    };
    let lists = app.store.lists().all().await?;
    let memberships = app
        .store
        .lists()
        .memberships_of(grant.subscriber_id)
        .await?;
    let mut wanted = Vec::new();
    for slug in &input.lists {
        // Private lists can be kept but not joined from here.
        match lists.iter().find(|l| &l.slug == slug) {
            Some(l)
                if l.visibility == Visibility::Public
                    || memberships.iter().any(|m| m.list_id == l.id) =>
            {
                wanted.push(l.id)
            }
            _ => errors.add("list", format!("there is no list {slug:?} to join")),
        }
    }
    let (language, timezone) = errors.finish(|| Some((language?, timezone?)))?;
    app.store
        .lists()
        .save_preferences(
            grant.subscriber_id,
            language.as_str(),
            timezone.as_ref().map(|z| z.as_ref().map(|z| z.name())),
            &wanted,
            app.clock.now(),
            |subscriber, member| {
                // The list's kind does not matter here: the address decides.
                admission(
                    Joining::Preferences,
                    crate::domain::OptIn::Double,
                    false,
                    Some(subscriber),
                    member,
                )
            },
        )
        .await?;
    Ok(true)
}
