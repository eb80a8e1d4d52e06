//! Partners and subscribers: search, filter by list and status, add, edit, change
//! status, memberships, and a subscriber's history (joined, confirmed, digests,
//! bounces).

use super::page::{
    self, Choice, FormData, FormErrors, PageError, PageResult, choices, parse_id, when, when_opt,
    zone_choices,
};
use super::session::{Session, done};
use crate::domain::{MailingList, MembershipStatus, Partner, Subscriber, SubscriberStatus, Text};
use crate::http::AppState;
use crate::http::api::partners::PartnerRequest;
use crate::http::api::subscribers::SubscriberRequest;
use crate::http::error::AppError;
use crate::store::SubscriberFilter;
use crate::subscriptions::{add_subscriber, add_to_list};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

const PARTNER_FIELDS: &[&str] = &["name", "country", "website", "timezone", "language"];
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

fn partner_choices(partners: &[Partner], selected: &str) -> Vec<Choice> {
    choices(
        partners.iter().map(|p| (p.id.to_string(), p.name.clone())),
        selected,
    )
}

fn list_choices(lists: &[MailingList], selected: &str) -> Vec<Choice> {
    choices(
        lists.iter().map(|l| (l.slug.clone(), l.name.clone())),
        selected,
    )
}

// ---- partners ------------------------------------------------------------------------

#[derive(Serialize, Default)]
struct PartnerForm {
    name: String,
    country: String,
    website: String,
    timezone: String,
    language: String,
}

impl PartnerForm {
    fn posted(f: &FormData) -> Self {
        Self {
            name: f.get("name").into(),
            country: f.get("country").into(),
            website: f.get("website").into(),
            timezone: f.get("timezone").into(),
            language: f.get("language").into(),
        }
    }

    fn of(p: &Partner) -> Self {
        Self {
            name: p.name.clone(),
            country: p.country.clone(),
            website: p.website.clone().unwrap_or_default(),
            timezone: p.timezone.clone(),
            language: p.language.clone(),
        }
    }

    fn request(&self) -> PartnerRequest {
        PartnerRequest {
            name: self.name.clone(),
            country: self.country.clone(),
            website: Some(self.website.clone()),
            timezone: Some(self.timezone.clone()).filter(|t| !t.trim().is_empty()),
            language: Some(self.language.clone()).filter(|t| !t.trim().is_empty()),
        }
    }
}

#[derive(Serialize)]
struct PartnerRow {
    id: i64,
    name: String,
    country: String,
    timezone: String,
    language: String,
    website: String,
}

#[derive(Serialize)]
struct PartnersBody {
    partners: Vec<PartnerRow>,
    form: PartnerForm,
    zones: Vec<Choice>,
    errors: FormErrors,
}

async fn partners_page(
    state: &AppState,
    session: &Session,
    status: StatusCode,
    form: PartnerForm,
    errors: FormErrors,
) -> PageResult {
    let partners = state
        .store
        .people()
        .partners()
        .await?
        .into_iter()
        .map(|p| PartnerRow {
            id: p.id,
            name: p.name,
            country: p.country,
            timezone: p.timezone,
            language: p.language,
            website: p.website.unwrap_or_default(),
        })
        .collect();
    let body = PartnersBody {
        partners,
        zones: zone_choices(if form.timezone.is_empty() {
            "UTC"
        } else {
            &form.timezone
        }),
        form,
        errors,
    };
    page::render(
        state,
        session,
        status,
        "partners",
        "admin/partners",
        "Partners",
        &body,
    )
}

pub async fn partners(State(state): State<AppState>, session: Session) -> PageResult {
    partners_page(
        &state,
        &session,
        StatusCode::OK,
        PartnerForm {
            language: "en".into(),
            timezone: "UTC".into(),
            ..Default::default()
        },
        FormErrors::none(PARTNER_FIELDS),
    )
    .await
}

pub async fn create_partner(
    State(state): State<AppState>,
    session: Session,
    f: FormData,
) -> PageResult {
    let form = PartnerForm::posted(&f);
    let draft = match form.request().into_draft() {
        Ok(d) => d,
        Err(e) => {
            return partners_page(
                &state,
                &session,
                StatusCode::UNPROCESSABLE_ENTITY,
                form,
                FormErrors::new(e, PARTNER_FIELDS),
            )
            .await;
        }
    };
    match state
        .store
        .people()
        .create_partner(&draft, state.clock.now())
        .await
    {
        Ok(p) => {
            done(
                &state,
                &session,
                true,
                &format!("Partner “{}” was added.", p.name),
                &format!("/admin/partners/{}", p.id),
            )
            .await
        }
        Err(e) => {
            let errors = page::form_error(e, PARTNER_FIELDS)?;
            partners_page(
                &state,
                &session,
                StatusCode::UNPROCESSABLE_ENTITY,
                form,
                errors,
            )
            .await
        }
    }
}

#[derive(Serialize)]
struct PartnerBody {
    id: i64,
    name: String,
    form: PartnerForm,
    zones: Vec<Choice>,
    errors: FormErrors,
    contacts: Vec<SubscriberRow>,
    contacts_total: u64,
}

async fn find_partner(state: &AppState, id: &str) -> Result<Partner, PageError> {
    let id = parse_id("partner", id)?;
    state
        .store
        .people()
        .partner(id)
        .await?
        .ok_or_else(|| PageError(AppError::NotFound(format!("partner {id}"))))
}

async fn partner_page(
    state: &AppState,
    session: &Session,
    status: StatusCode,
    partner: &Partner,
    form: PartnerForm,
    errors: FormErrors,
) -> PageResult {
    let (contacts, contacts_total) = state
        .store
        .people()
        .subscribers(&SubscriberFilter {
            partner: Some(partner.id),
            limit: 200,
            ..Default::default()
        })
        .await?;
    let body = PartnerBody {
        id: partner.id,
        name: partner.name.clone(),
        zones: zone_choices(&form.timezone),
        form,
        errors,
        contacts: contacts.iter().map(SubscriberRow::of).collect(),
        contacts_total,
    };
    page::render(
        state,
        session,
        status,
        "partners",
        "admin/partner",
        &partner.name,
        &body,
    )
}

pub async fn partner(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<String>,
) -> PageResult {
    let p = find_partner(&state, &id).await?;
    let form = PartnerForm::of(&p);
    partner_page(
        &state,
        &session,
        StatusCode::OK,
        &p,
        form,
        FormErrors::none(PARTNER_FIELDS),
    )
    .await
}

pub async fn update_partner(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<String>,
    f: FormData,
) -> PageResult {
    let p = find_partner(&state, &id).await?;
    let form = PartnerForm::posted(&f);
    let draft = match form.request().into_draft() {
        Ok(d) => d,
        Err(e) => {
            let errors = FormErrors::new(e, PARTNER_FIELDS);
            return partner_page(
                &state,
                &session,
                StatusCode::UNPROCESSABLE_ENTITY,
                &p,
                form,
                errors,
            )
            .await;
        }
    };
    match state
        .store
        .people()
        .update_partner(p.id, &draft, state.clock.now())
        .await
    {
        Ok(p) => {
            done(
                &state,
                &session,
                true,
                &format!("Partner “{}” was saved.", p.name),
                &format!("/admin/partners/{}", p.id),
            )
            .await
        }
        Err(e) => {
            let errors = page::form_error(e, PARTNER_FIELDS)?;
            partner_page(
                &state,
                &session,
                StatusCode::UNPROCESSABLE_ENTITY,
                &p,
                form,
                errors,
            )
            .await
        }
    }
}

pub async fn delete_partner(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<String>,
) -> PageResult {
    let p = find_partner(&state, &id).await?;
    match state.store.people().delete_partner(p.id).await {
        Ok(()) => {
            done(
                &state,
                &session,
                true,
                &format!("Partner “{}” was deleted.", p.name),
                "/admin/partners",
            )
            .await
        }
        Err(crate::store::StoreError::Conflict { message, .. }) => {
            done(
                &state,
                &session,
                false,
                &format!("Not deleted: {message}."),
                &format!("/admin/partners/{}", p.id),
            )
            .await
        }
        Err(e) => Err(e.into()),
    }
}

// ---- subscribers ---------------------------------------------------------------------

#[derive(Serialize)]
struct SubscriberRow {
    id: i64,
    email: String,
    name: String,
    partner: String,
    status: &'static str,
    language: String,
}

impl SubscriberRow {
    fn of(s: &Subscriber) -> Self {
        Self {
            id: s.id,
            email: s.email.clone(),
            name: s.name.clone(),
            partner: s.partner_name.clone().unwrap_or_default(),
            status: s.status.as_str(),
            language: s.language.clone(),
        }
    }
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

    fn request(&self) -> Result<SubscriberRequest, FormErrors> {
        let partner_id = match self.partner_id.trim() {
            "" => None,
            p => Some(p.parse::<i64>().map_err(|_| {
                FormErrors::one("partner_id", "is not a partner", SUBSCRIBER_FIELDS)
            })?),
        };
        let opt = |s: &str| Some(s.trim().to_owned()).filter(|s| !s.is_empty());
        Ok(SubscriberRequest {
            email: self.email.clone(),
            name: self.name.clone(),
            partner_id,
            language: opt(&self.language),
            timezone: opt(&self.timezone),
            attributes: Default::default(),
            list: opt(&self.list),
            consent_source: opt(&self.consent_source),
        })
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
    let lists = state.store.lists().all().await?;
    let partners = state.store.people().partners().await?;
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
    let (found, total) = state
        .store
        .people()
        .subscribers(&SubscriberFilter {
            list: list.map(|l| l.id),
            status: status_filter,
            partner,
            search: search.clone(),
            limit: PER_PAGE,
            offset: u64::from(page_no - 1) * u64::from(PER_PAGE),
        })
        .await?;
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

pub async fn create_subscriber(
    State(state): State<AppState>,
    session: Session,
    f: FormData,
) -> PageResult {
    let form = SubscriberForm::posted(&f);
    let refused = |errors: FormErrors, form: SubscriberForm| {
        let (state, session) = (state.clone(), session.clone());
        async move {
            subscribers_page(
                &state,
                &session,
                StatusCode::UNPROCESSABLE_ENTITY,
                no_query(),
                form,
                errors,
            )
            .await
        }
    };
    let request = match form.request() {
        Ok(r) => r,
        Err(e) => return refused(e, form).await,
    };
    let (draft, consent) = match request.to_draft() {
        Ok(d) => d,
        Err(e) => return refused(FormErrors::new(e, SUBSCRIBER_FIELDS), form).await,
    };
    let list = match request.list.as_deref() {
        Some(slug) => match state.store.lists().by_slug(slug).await? {
            Some(l) => Some(l),
            None => {
                let e = FormErrors::one(
                    "list",
                    format!("there is no list {slug:?}"),
                    SUBSCRIBER_FIELDS,
                );
                return refused(e, form).await;
            }
        },
        None => None,
    };
    let list_name = list.as_ref().map(|l| l.name.clone()).unwrap_or_default();
    let (subscriber, status) =
        match add_subscriber(state.app(), &draft, consent, list, state.clock.now()).await {
            Ok(added) => added,
            Err(e) => {
                let errors = page::form_error(e, SUBSCRIBER_FIELDS)?;
                return refused(errors, form).await;
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
    done(
        &state,
        &session,
        true,
        &message,
        &format!("/admin/subscribers/{}", subscriber.id),
    )
    .await
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
    state
        .store
        .people()
        .subscriber(id)
        .await?
        .ok_or_else(|| PageError(AppError::NotFound(format!("subscriber {id}"))))
}

async fn subscriber_page(
    state: &AppState,
    session: &Session,
    status: StatusCode,
    s: &Subscriber,
    form: SubscriberForm,
    errors: FormErrors,
) -> PageResult {
    let partners = state.store.people().partners().await?;
    let lists = state.store.lists().all().await?;
    let memberships = state.store.lists().memberships_of(s.id).await?;
    let history = state.store.people().history_of(s.id).await?;
    let deliveries = state.store.digests().deliveries_of(s.id, 100).await?;
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
    let draft = form.request().and_then(|r| {
        r.to_draft()
            .map(|(mut d, _)| {
                d.attributes = s.attributes.clone();
                d
            })
            .map_err(|e| FormErrors::new(e, SUBSCRIBER_FIELDS))
    });
    let draft = match draft {
        Ok(d) => d,
        Err(errors) => {
            return subscriber_page(
                &state,
                &session,
                StatusCode::UNPROCESSABLE_ENTITY,
                &s,
                form,
                errors,
            )
            .await;
        }
    };
    match state
        .store
        .people()
        .update_subscriber(s.id, &draft, state.clock.now())
        .await
    {
        Ok(updated) => {
            done(
                &state,
                &session,
                true,
                &format!("{} was saved.", updated.email),
                &format!("/admin/subscribers/{}", s.id),
            )
            .await
        }
        Err(e) => {
            let errors = page::form_error(e, SUBSCRIBER_FIELDS)?;
            subscriber_page(
                &state,
                &session,
                StatusCode::UNPROCESSABLE_ENTITY,
                &s,
                form,
                errors,
            )
            .await
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
    let status = match SubscriberStatus::parse(f.get("status")) {
        Ok(st) => st,
        Err(m) => {
            return done(
                &state,
                &session,
                false,
                &format!("Status not changed: status {m}."),
                &back,
            )
            .await;
        }
    };
    let reason = match Text::parse(f.get("reason"), 300, false, false) {
        Ok(r) if !r.as_str().is_empty() => format!("{} (by {})", r.as_str(), session.name),
        Ok(_) => format!("set by {}", session.name),
        Err(m) => {
            return done(
                &state,
                &session,
                false,
                &format!("Status not changed: reason {m}."),
                &back,
            )
            .await;
        }
    };
    let updated = state
        .store
        .people()
        .set_subscriber_status(s.id, status, &reason, state.clock.now())
        .await?;
    done(
        &state,
        &session,
        true,
        &format!("{} is now {}.", updated.email, updated.status.as_str()),
        &back,
    )
    .await
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
    let Some(list) = state.store.lists().by_slug(f.get("list")).await? else {
        return done(&state, &session, false, "Choose a list.", &back).await;
    };
    let now = state.clock.now();
    if f.get("action") == "remove" {
        state
            .store
            .lists()
            .set_membership(
                list.id,
                s.id,
                MembershipStatus::Unsubscribed,
                &format!("removed by {}", session.name),
                now,
            )
            .await?;
        return done(
            &state,
            &session,
            true,
            &format!("{} was taken off {}.", s.email, list.name),
            &back,
        )
        .await;
    }
    let consent = match f.non_blank("consent_source") {
        Some(c) => match Text::parse(c, 300, true, false) {
            Ok(t) => Some(t),
            Err(m) => {
                return done(
                    &state,
                    &session,
                    false,
                    &format!("Not added: consent {m}."),
                    &back,
                )
                .await;
            }
        },
        None => None,
    };
    let status = add_to_list(
        state.app(),
        &list,
        &s,
        consent.as_ref().map(|c| c.as_str()),
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
