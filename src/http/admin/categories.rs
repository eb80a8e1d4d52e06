//! Categories: the tree; create, rename, move, delete (refused with the reason when
//! the category is not empty).

use super::page::{self, FormData, FormErrors, NameField, PageError, PageResult};
use super::session::{Session, done};
use crate::domain::{CategoryInput, Slug};
use crate::http::AppState;
use crate::http::error::AppError;
use crate::http::public::views::category_tree;
use crate::services::{ServiceError, content};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Serialize;
use std::collections::BTreeMap;

const FIELDS: &[&str] = &["slug", "name", "description", "parent"];

#[derive(Serialize)]
struct Node {
    slug: String,
    name: String,
    description: String,
    depth: usize,
    indent: String,
    items: u64,
    public_url: String,
    feed_url: String,
    parents: Vec<ParentChoice>,
    /// The name fields of its edit form, filled with its names.
    names: Vec<NameField>,
    /// Its names in other languages, as the tree shows them: `zh: 活动`.
    names_shown: String,
}

#[derive(Serialize)]
struct ParentChoice {
    slug: String,
    label: String,
    selected: bool,
}

#[derive(Serialize, Default)]
struct NewForm {
    slug: String,
    name: String,
    /// The posted names by language tag.
    names: BTreeMap<String, String>,
    description: String,
    parent: String,
}

#[derive(Serialize)]
struct Body {
    nodes: Vec<Node>,
    parents: Vec<ParentChoice>,
    form: NewForm,
    /// The new form's name fields.
    names: Vec<NameField>,
    errors: FormErrors,
}

async fn render(
    state: &AppState,
    session: &Session,
    status: StatusCode,
    form: NewForm,
    errors: FormErrors,
) -> PageResult {
    let counted = content::categories_with_counts(state.app()).await?;
    let all: Vec<_> = counted.iter().map(|(c, _)| c.clone()).collect();
    let base = &state.settings.base_url;
    let tree = category_tree(&all, base);
    let choices = |selected: Option<&str>, exclude: Option<&str>| {
        tree.iter()
            .filter(|c| Some(c.slug.as_str()) != exclude)
            .map(|c| ParentChoice {
                slug: c.slug.clone(),
                label: format!("{}{}", "— ".repeat(c.indent), c.name),
                selected: Some(c.slug.as_str()) == selected,
            })
            .collect::<Vec<_>>()
    };
    let nodes = tree
        .iter()
        .map(|c| {
            let stored = counted.iter().find(|(k, _)| k.slug == c.slug);
            let names = stored.map(|(s, _)| s.names.to_map()).unwrap_or_default();
            Node {
                names: page::name_fields(state, &names, &FormErrors::default()),
                names_shown: names
                    .iter()
                    .map(|(t, n)| format!("{t}: {n}"))
                    .collect::<Vec<_>>()
                    .join(" · "),
                slug: c.slug.clone(),
                name: c.name.clone(),
                description: stored
                    .map(|(s, _)| s.description.clone())
                    .unwrap_or_default(),
                depth: c.indent,
                indent: "— ".repeat(c.indent),
                items: stored.map_or(0, |(_, n)| *n),
                public_url: c.url.clone(),
                feed_url: format!("{base}/feeds/{}.atom", c.slug),
                parents: choices(
                    stored.and_then(|(s, _)| s.parent.as_deref()),
                    Some(c.slug.as_str()),
                ),
            }
        })
        .collect();
    let body = Body {
        nodes,
        parents: choices(Some(form.parent.as_str()), None),
        names: page::name_fields(state, &form.names, &errors),
        form,
        errors,
    };
    page::render(
        state,
        session,
        status,
        "categories",
        "admin/categories",
        "Categories",
        &body,
    )
}

pub async fn index(State(state): State<AppState>, session: Session) -> PageResult {
    render(
        &state,
        &session,
        StatusCode::OK,
        NewForm::default(),
        FormErrors::none(FIELDS),
    )
    .await
}

fn input(f: &FormData) -> CategoryInput {
    CategoryInput {
        slug: Some(f.get("slug").trim().to_owned()),
        name: f.get("name").to_owned(),
        names: crate::domain::Names::posted(&page::posted_names(f)),
        description: f.get("description").to_owned(),
        parent: f.non_blank("parent").map(str::to_owned),
    }
}

pub async fn create(State(state): State<AppState>, session: Session, f: FormData) -> PageResult {
    let form = NewForm {
        slug: f.get("slug").into(),
        name: f.get("name").into(),
        names: page::posted_names(&f),
        description: f.get("description").into(),
        parent: f.get("parent").into(),
    };
    let mut typed = input(&f);
    // Left blank, the slug is made from the name.
    typed.slug = typed.slug.filter(|s| !s.is_empty());
    let created = match typed.parse() {
        Ok(draft) => content::create_category(state.app(), draft).await,
        Err(e) => Err(e.into()),
    };
    match page::submitted(created, FIELDS)? {
        Ok(category) => {
            let message = format!("Category “{}” was created.", category.name);
            done(&state, &session, true, &message, "/admin/categories").await
        }
        Err(errors) => {
            render(
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

pub async fn update(
    State(state): State<AppState>,
    session: Session,
    Path(slug): Path<String>,
    f: FormData,
) -> PageResult {
    if Slug::parse(&slug).is_err() {
        return Err(PageError(AppError::NotFound(format!("category {slug:?}"))));
    }
    let updated = match input(&f).parse() {
        Ok(draft) => content::update_category(state.app(), &slug, draft).await,
        Err(e) => Err(e.into()),
    };
    let (ok, message) = match updated {
        Ok(category) => (true, format!("Category “{}” was saved.", category.name)),
        Err(ServiceError::Invalid(e)) => (false, format!("Category {slug} was not changed: {e}")),
        Err(ServiceError::Conflict { field, message }) => (
            false,
            format!("Category {slug} was not changed: {field}: {message}"),
        ),
        Err(e) => return Err(e.into()),
    };
    done(&state, &session, ok, &message, "/admin/categories").await
}

pub async fn delete(
    State(state): State<AppState>,
    session: Session,
    Path(slug): Path<String>,
) -> PageResult {
    let (ok, message) = match content::delete_category(state.app(), &slug).await {
        Ok(()) => (true, format!("Category {slug} was deleted.")),
        Err(ServiceError::Conflict { message, .. }) => (false, format!("Not deleted: {message}.")),
        Err(e) => return Err(e.into()),
    };
    done(&state, &session, ok, &message, "/admin/categories").await
}
