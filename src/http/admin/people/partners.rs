//! Partner institutions: the list with an add form, one partner with its contacts.

use super::super::page::{
    self, Choice, FormData, FormErrors, NameField, PageResult, parse_id, zone_choices,
};
use super::super::session::{Session, done};
use super::SubscriberRow;
use crate::domain::{Partner, PartnerDraft, PartnerInput};
use crate::http::AppState;
use crate::services::{ServiceError, people};
use crate::store::SubscriberFilter;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Serialize;
use std::collections::BTreeMap;

const PARTNER_FIELDS: &[&str] = &["name", "country", "website", "timezone", "language"];

#[derive(Serialize, Default)]
struct PartnerForm {
    name: String,
    /// Names in other languages as typed, blank ones included.
    names: BTreeMap<String, String>,
    country: String,
    website: String,
    timezone: String,
    language: String,
}

impl PartnerForm {
    fn posted(f: &FormData) -> Self {
        Self {
            name: f.get("name").into(),
            names: page::posted_names(f),
            country: f.get("country").into(),
            website: f.get("website").into(),
            timezone: f.get("timezone").into(),
            language: f.get("language").into(),
        }
    }

    fn of(p: &Partner) -> Self {
        Self {
            name: p.name.clone(),
            names: p.names.to_map(),
            country: p.country.clone(),
            website: p.website.clone().unwrap_or_default(),
            timezone: p.timezone.clone(),
            language: p.language.clone(),
        }
    }

    fn draft(&self) -> Result<PartnerDraft, ServiceError> {
        Ok(PartnerDraft::parse(&PartnerInput {
            name: self.name.clone(),
            names: crate::domain::Names::posted(&self.names),
            country: self.country.clone(),
            website: Some(self.website.clone()),
            timezone: Some(self.timezone.clone()).filter(|t| !t.trim().is_empty()),
            language: Some(self.language.clone()).filter(|t| !t.trim().is_empty()),
        })?)
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
    /// The form's per-language name fields.
    names: Vec<NameField>,
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
    let partners = people::partners(state.app())
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
        names: page::name_fields(state, &form.names, &errors),
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
    let created = match form.draft() {
        Ok(draft) => people::create_partner(state.app(), &draft).await,
        Err(e) => Err(e),
    };
    match page::submitted(created, PARTNER_FIELDS)? {
        Ok(p) => {
            let message = format!("Partner “{}” was added.", p.name);
            done(
                &state,
                &session,
                true,
                &message,
                &format!("/admin/partners/{}", p.id),
            )
            .await
        }
        Err(errors) => {
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            partners_page(&state, &session, status, form, errors).await
        }
    }
}

#[derive(Serialize)]
struct PartnerBody {
    id: i64,
    name: String,
    names: Vec<NameField>,
    form: PartnerForm,
    zones: Vec<Choice>,
    errors: FormErrors,
    contacts: Vec<SubscriberRow>,
    contacts_total: u64,
}

async fn find_partner(state: &AppState, id: &str) -> Result<Partner, page::PageError> {
    let id = parse_id("partner", id)?;
    Ok(people::partner(state.app(), id).await?)
}

async fn partner_page(
    state: &AppState,
    session: &Session,
    status: StatusCode,
    partner: &Partner,
    form: PartnerForm,
    errors: FormErrors,
) -> PageResult {
    let filter = SubscriberFilter {
        partner: Some(partner.id),
        limit: 200,
        ..Default::default()
    };
    let (contacts, contacts_total) = people::search_subscribers(state.app(), &filter).await?;
    let body = PartnerBody {
        id: partner.id,
        name: partner.name.clone(),
        names: page::name_fields(state, &form.names, &errors),
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
    let errors = FormErrors::none(PARTNER_FIELDS);
    partner_page(&state, &session, StatusCode::OK, &p, form, errors).await
}

pub async fn update_partner(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<String>,
    f: FormData,
) -> PageResult {
    let p = find_partner(&state, &id).await?;
    let form = PartnerForm::posted(&f);
    let updated = match form.draft() {
        Ok(draft) => people::update_partner(state.app(), p.id, &draft).await,
        Err(e) => Err(e),
    };
    match page::submitted(updated, PARTNER_FIELDS)? {
        Ok(p) => {
            let message = format!("Partner “{}” was saved.", p.name);
            done(
                &state,
                &session,
                true,
                &message,
                &format!("/admin/partners/{}", p.id),
            )
            .await
        }
        Err(errors) => {
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            partner_page(&state, &session, status, &p, form, errors).await
        }
    }
}

pub async fn delete_partner(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<String>,
) -> PageResult {
    let p = find_partner(&state, &id).await?;
    match people::delete_partner(state.app(), p.id).await {
        Ok(()) => {
            let message = format!("Partner “{}” was deleted.", p.name);
            done(&state, &session, true, &message, "/admin/partners").await
        }
        Err(ServiceError::Conflict { message, .. }) => {
            let message = format!("Not deleted: {message}.");
            done(
                &state,
                &session,
                false,
                &message,
                &format!("/admin/partners/{}", p.id),
            )
            .await
        }
        Err(e) => Err(e.into()),
    }
}
