//! Subscribers: search and filter, add (with consent or a confirmation mail), edit,
//! status with a reason, lists, history and the digests they received.

use super::super::page::{
    self, Choice, FormData, FormErrors, PageError, PageResult, choices, parse_id, when, when_opt,
    zone_choices,
};
use super::super::session::{Session, done};
use super::{SubscriberRow, list_choices, partner_choices};
use crate::domain::{
    Consent, MembershipStatus, StatusChange, Subscriber, SubscriberDraft, SubscriberInput,
    SubscriberStatus,
};
use crate::http::AppState;
use crate::services::subscriptions::{self, add_subscriber, add_to_list};
use crate::services::{ServiceError, people};
use crate::store::SubscriberFilter;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

const SUBSCRIBER_FIELDS: &[&str] = &[
    "email",
    "name",
    "partner_id",
    "language",
    "timezone",
    "list",
    "consent_source",
];
const PER_PAGE: u32 = 50;

fn non_blank(s: &str) -> Option<String> {
    Some(s.trim().to_owned()).filter(|s| !s.is_empty())
}

#[derive(Debug, Deserialize)]
pub struct SubscriberQuery {
    q: Option<String>,
    list: Option<String>,
    status: Option<String>,
    partner: Option<String>,
    page: Option<String>,
}

#[derive(Serialize, Default)]
struct SubscriberForm {
    email: String,
    name: String,
    partner_id: String,
    language: String,
    timezone: String,
    list: String,
    consent_source: String,
}

impl SubscriberForm {
    fn posted(f: &FormData) -> Self {
        Self {
            email: f.get("email").into(),
            name: f.get("name").into(),
            partner_id: f.get("partner_id").into(),
            language: f.get("language").into(),
            timezone: f.get("timezone").into(),
            list: f.get("list").into(),
            consent_source: f.get("consent_source").into(),
        }
    }

    /// The checked subscriber, with the consent stated on the form.
    fn draft(&self) -> Result<(SubscriberDraft, Option<Consent>), ServiceError> {
        let partner_id = match self.partner_id.trim() {
            "" => None,
            p => Some(
                p.parse::<i64>()
                    .map_err(|_| ServiceError::invalid("partner_id", "is not a partner"))?,
            ),
        };
        Ok(SubscriberDraft::parse(&SubscriberInput {
            email: self.email.clone(),
            name: self.name.clone(),
            partner_id,
            language: non_blank(&self.language),
            timezone: non_blank(&self.timezone),
            attributes: Default::default(),
            consent_source: non_blank(&self.consent_source),
        })?)
    }
}

#[derive(Serialize)]
struct SubscribersBody {
    q: String,
    lists: Vec<Choice>,
    statuses: Vec<Choice>,
    partners: Vec<Choice>,
    rows: Vec<SubscriberRow>,
    total: u64,
    page: u32,
    prev: Option<String>,
    next: Option<String>,
    export_url: Option<String>,
    form: SubscriberForm,
    form_partners: Vec<Choice>,
    form_lists: Vec<Choice>,
    errors: FormErrors,
}

async fn subscribers_page(
    state: &AppState,
    session: &Session,
    status: StatusCode,
    q: SubscriberQuery,
    form: SubscriberForm,
    errors: FormErrors,
) -> PageResult {
    let lists = subscriptions::all_lists(state.app()).await?;
    let partners = people::partners(state.app()).await?;
    let page_no = q
        .page
        .as_deref()
        .and_then(|p| p.parse::<u32>().ok())
        .filter(|p| *p >= 1)
        .unwrap_or(1);
    let list = q
        .list
        .as_deref()
        .and_then(|slug| lists.iter().find(|l| l.slug == slug));
    let status_filter = q
        .status
        .as_deref()
        .and_then(|s| SubscriberStatus::parse(s).ok());
    let partner = q
        .partner
        .as_deref()
        .and_then(|p| p.parse::<i64>().ok())
        .filter(|id| partners.iter().any(|p| p.id == *id));
    let search =
        q.q.as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| s.chars().take(200).collect::<String>());
    let filter = SubscriberFilter {
        list: list.map(|l| l.id),
        status: status_filter,
        partner,
        search: search.clone(),
        limit: PER_PAGE,
        offset: u64::from(page_no - 1) * u64::from(PER_PAGE),
    };
    let (found, total) = people::search_subscribers(state.app(), &filter).await?;
    let link = |p: u32| {
        let mut s = url::form_urlencoded::Serializer::new(String::new());
        if let Some(q) = &search {
            s.append_pair("q", q);
        }
        if let Some(l) = list {
            s.append_pair("list", &l.slug);
        }
        if let Some(st) = status_filter {
            s.append_pair("status", st.as_str());
        }
        if let Some(p) = partner {
            s.append_pair("partner", &p.to_string());
        }
        s.append_pair("page", &p.to_string());
        format!("/admin/subscribers?{}", s.finish())
    };
    let body = SubscribersBody {
        q: search.clone().unwrap_or_default(),
        lists: list_choices(&lists, list.map(|l| l.slug.as_str()).unwrap_or("")),
        statuses: choices(
            SubscriberStatus::ALL
                .iter()
                .map(|s| (s.as_str().to_owned(), s.as_str().to_owned())),
            status_filter.map(|s| s.as_str()).unwrap_or(""),
        ),
        partners: partner_choices(
            &partners,
            &partner.map(|p| p.to_string()).unwrap_or_default(),
        ),
        rows: found.iter().map(SubscriberRow::of).collect(),
        total,
        page: page_no,
        prev: (page_no > 1).then(|| link(page_no - 1)),
        next: (u64::from(page_no) * u64::from(PER_PAGE) < total).then(|| link(page_no + 1)),
        export_url: list.map(|l| format!("/admin/lists/{}/export.csv", l.slug)),
        form_partners: partner_choices(&partners, &form.partner_id),
        form_lists: list_choices(&lists, &form.list),
        form,
        errors,
    };
    page::render(
        state,
        session,
        status,
        "subscribers",
        "admin/subscribers",
        "Subscribers",
        &body,
    )
}

pub async fn subscribers(
    State(state): State<AppState>,
    session: Session,
    Query(q): Query<SubscriberQuery>,
) -> PageResult {
    subscribers_page(
        &state,
        &session,
        StatusCode::OK,
        q,
        SubscriberForm {
            language: "en".into(),
            ..Default::default()
        },
        FormErrors::none(SUBSCRIBER_FIELDS),
    )
    .await
}

fn no_query() -> SubscriberQuery {
    SubscriberQuery {
        q: None,
        list: None,
        status: None,
        partner: None,
        page: None,
    }
}

/// Adds a contact from the form: checked, then on the chosen list by the opt-in rule.
async fn add_from_form(
    state: &AppState,
    form: &SubscriberForm,
) -> Result<(Subscriber, Option<MembershipStatus>, String), ServiceError> {
    let (draft, consent) = form.draft()?;
    let list = match non_blank(&form.list) {
        Some(slug) => Some(subscriptions::find_list(state.app(), &slug).await.map_err(
            |e| match e {
                ServiceError::NotFound(_) => {
                    ServiceError::invalid("list", format!("there is no list {slug:?}"))
                }
                other => other,
            },
        )?),
        None => None,
    };
    let list_name = list.as_ref().map(|l| l.name.clone()).unwrap_or_default();
    let (subscriber, status) =
        add_subscriber(state.app(), &draft, consent, list, state.clock.now()).await?;
    Ok((subscriber, status, list_name))
}

pub async fn create_subscriber(
    State(state): State<AppState>,
    session: Session,
    f: FormData,
) -> PageResult {
    let form = SubscriberForm::posted(&f);
    let (subscriber, status, list_name) =
        match page::submitted(add_from_form(&state, &form).await, SUBSCRIBER_FIELDS)? {
            Ok(added) => added,
            Err(errors) => {
                let status = StatusCode::UNPROCESSABLE_ENTITY;
                return subscribers_page(&state, &session, status, no_query(), form, errors).await;
            }
        };
    let message = match status {
        None => format!("{} was added.", subscriber.email),
        Some(MembershipStatus::Confirmed) => {
            format!("{} was added to {list_name} (confirmed).", subscriber.email)
        }
        Some(_) => format!(
            "{} was added to {list_name}; a confirmation mail is on its way and they stay pending until they follow it.",
            subscriber.email
        ),
    };
    let to = format!("/admin/subscribers/{}", subscriber.id);
    done(&state, &session, true, &message, &to).await
}

#[derive(Serialize)]
struct MembershipRow {
    list: String,
    list_name: String,
    status: &'static str,
    since: String,
    confirmed: String,
}

#[derive(Serialize)]
struct HistoryRow {
    at: String,
    kind: String,
    detail: String,
}

#[derive(Serialize)]
struct DeliveryRow {
    digest_id: i64,
    digest: String,
    status: String,
    attempts: i64,
    sent: String,
    error: String,
}

#[derive(Serialize)]
struct SubscriberBody {
    id: i64,
    email: String,
    status: &'static str,
    joined_via: &'static str,
    consent: String,
    created: String,
    form: SubscriberForm,
    partners: Vec<Choice>,
    zones: Vec<Choice>,
    statuses: Vec<Choice>,
    memberships: Vec<MembershipRow>,
    other_lists: Vec<Choice>,
    history: Vec<HistoryRow>,
    deliveries: Vec<DeliveryRow>,
    errors: FormErrors,
}

async fn find_subscriber(state: &AppState, id: &str) -> Result<Subscriber, PageError> {
    let id = parse_id("subscriber", id)?;
    Ok(people::subscriber(state.app(), id).await?)
}

async fn subscriber_page(
    state: &AppState,
    session: &Session,
    status: StatusCode,
    s: &Subscriber,
    form: SubscriberForm,
    errors: FormErrors,
) -> PageResult {
    let app = state.app();
    let partners = people::partners(app).await?;
    let lists = subscriptions::all_lists(app).await?;
    let record = people::subscriber_record(app, s.id).await?;
    let (memberships, history) = (record.memberships, record.history);
    let deliveries = people::digests_received(app, s.id, 100).await?;
    let body = SubscriberBody {
        id: s.id,
        email: s.email.clone(),
        status: s.status.as_str(),
        joined_via: s.joined_via.as_str(),
        consent: match (&s.consent_at, &s.consent_source) {
            (Some(at), Some(src)) => format!("{src} ({})", when(*at)),
            (Some(at), None) => when(*at),
            _ => "none recorded".into(),
        },
        created: when(s.created_at),
        partners: partner_choices(&partners, &form.partner_id),
        zones: zone_choices(&form.timezone),
        statuses: choices(
            SubscriberStatus::ALL
                .iter()
                .map(|x| (x.as_str().to_owned(), x.as_str().to_owned())),
            s.status.as_str(),
        ),
        other_lists: list_choices(
            &lists
                .iter()
                .filter(|l| {
                    !memberships
                        .iter()
                        .any(|m| m.list_id == l.id && m.status != MembershipStatus::Unsubscribed)
                })
                .cloned()
                .collect::<Vec<_>>(),
            "",
        ),
        memberships: memberships
            .iter()
            .map(|m| MembershipRow {
                list: m.list_slug.clone(),
                list_name: m.list_name.clone(),
                status: m.status.as_str(),
                since: when(m.created_at),
                confirmed: when_opt(m.confirmed_at),
            })
            .collect(),
        history: history
            .into_iter()
            .rev()
            .map(|h| HistoryRow {
                at: when(h.at),
                kind: h.kind,
                detail: h.detail,
            })
            .collect(),
        deliveries: deliveries
            .into_iter()
            .map(|d| DeliveryRow {
                digest_id: d.digest_id,
                digest: format!("{} · {}", d.list_name, d.period),
                status: d.status,
                attempts: d.attempts,
                sent: when_opt(d.sent_at),
                error: match (d.last_error, d.permanent_failure) {
                    (Some(e), true) => format!("{e} (permanent)"),
                    (Some(e), false) => e,
                    (None, _) => String::new(),
                },
            })
            .collect(),
        form,
        errors,
    };
    page::render(
        state,
        session,
        status,
        "subscribers",
        "admin/subscriber",
        &s.email,
        &body,
    )
}

fn form_of(s: &Subscriber) -> SubscriberForm {
    SubscriberForm {
        email: s.email.clone(),
        name: s.name.clone(),
        partner_id: s.partner_id.map(|p| p.to_string()).unwrap_or_default(),
        language: s.language.clone(),
        timezone: s.timezone.clone().unwrap_or_default(),
        list: String::new(),
        consent_source: String::new(),
    }
}

pub async fn subscriber(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<String>,
) -> PageResult {
    let s = find_subscriber(&state, &id).await?;
    let form = form_of(&s);
    subscriber_page(
        &state,
        &session,
        StatusCode::OK,
        &s,
        form,
        FormErrors::none(SUBSCRIBER_FIELDS),
    )
    .await
}

pub async fn update_subscriber(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<String>,
    f: FormData,
) -> PageResult {
    let s = find_subscriber(&state, &id).await?;
    let mut form = SubscriberForm::posted(&f);
    form.list.clear();
    form.consent_source.clear();
    let updated = match form.draft() {
        Ok((mut draft, _)) => {
            draft.attributes = s.attributes.clone();
            people::update_subscriber(state.app(), s.id, &draft).await
        }
        Err(e) => Err(e),
    };
    match page::submitted(updated, SUBSCRIBER_FIELDS)? {
        Ok(updated) => {
            let message = format!("{} was saved.", updated.email);
            done(
                &state,
                &session,
                true,
                &message,
                &format!("/admin/subscribers/{}", s.id),
            )
            .await
        }
        Err(errors) => {
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            subscriber_page(&state, &session, status, &s, form, errors).await
        }
    }
}

pub async fn set_subscriber_status(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<String>,
    f: FormData,
) -> PageResult {
    let s = find_subscriber(&state, &id).await?;
    let back = format!("/admin/subscribers/{}", s.id);
    let change = match StatusChange::parse(f.get("status"), f.get("reason")) {
        Ok(change) => change,
        Err(errors) => {
            let first = errors.0.first();
            let (field, m) = first.map_or(("status", ""), |e| (&e.field, &e.message));
            let message = format!("Status not changed: {field} {m}.");
            return done(&state, &session, false, &message, &back).await;
        }
    };
    let updated = people::set_status(state.app(), s.id, &change, Some(&session.name)).await?;
    let message = format!("{} is now {}.", updated.email, updated.status.as_str());
    done(&state, &session, true, &message, &back).await
}

/// Add to a list (`action=add`, with an optional consent) or take off one.
pub async fn set_membership(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<String>,
    f: FormData,
) -> PageResult {
    let s = find_subscriber(&state, &id).await?;
    let back = format!("/admin/subscribers/{}", s.id);
    let list = match subscriptions::find_list(state.app(), f.get("list")).await {
        Ok(list) => list,
        Err(ServiceError::NotFound(_)) => {
            return done(&state, &session, false, "Choose a list.", &back).await;
        }
        Err(e) => return Err(e.into()),
    };
    if f.get("action") == "remove" {
        let why = format!("removed by {}", session.name);
        subscriptions::remove_from_list(state.app(), &list, s.id, &why).await?;
        let message = format!("{} was taken off {}.", s.email, list.name);
        return done(&state, &session, true, &message, &back).await;
    }
    let consent = match f.non_blank("consent_source").map(Consent::parse_source) {
        None => None,
        Some(Ok(c)) => Some(c.source),
        Some(Err(m)) => {
            let message = format!("Not added: consent {m}.");
            return done(&state, &session, false, &message, &back).await;
        }
    };
    let now = state.clock.now();
    let status = add_to_list(
        state.app(),
        &list,
        &s,
        consent.as_deref(),
        &session.name,
        now,
    )
    .await?;
    let message = if status == MembershipStatus::Confirmed {
        format!("{} was added to {} (confirmed).", s.email, list.name)
    } else {
        format!(
            "{} was added to {}; a confirmation mail is on its way.",
            s.email, list.name
        )
    };
    done(&state, &session, true, &message, &back).await
}
