//! Categories: the tree; create, rename, move, delete (refused with the reason when
//! the category is not empty).

use super::page::{self, FormData, FormErrors, PageResult};
use super::session::{Session, done};
use crate::domain::Slug;
use crate::http::AppState;
use crate::http::api::categories::CategoryRequest;
use crate::http::public::views::category_tree;
use crate::store::StoreError;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Serialize;

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
    description: String,
    parent: String,
}

#[derive(Serialize)]
struct Body {
    nodes: Vec<Node>,
    parents: Vec<ParentChoice>,
    form: NewForm,
    errors: FormErrors,
}

async fn render(
    state: &AppState,
    session: &Session,
    status: StatusCode,
    form: NewForm,
    errors: FormErrors,
) -> PageResult {
    let all = state.store.content().categories().await?;
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
    let mut nodes = Vec::with_capacity(tree.len());
    for c in &tree {
        let stored = all.iter().find(|k| k.slug == c.slug);
        let items = state
            .store
            .content()
            .items(&crate::store::ItemFilter {
                category: Some(c.slug.clone()),
                limit: 1,
                ..Default::default()
            })
            .await?
            .total;
        nodes.push(Node {
            slug: c.slug.clone(),
            name: c.name.clone(),
            description: stored.map(|s| s.description.clone()).unwrap_or_default(),
            depth: c.indent,
            indent: "— ".repeat(c.indent),
            items,
            public_url: c.url.clone(),
            feed_url: format!("{base}/feeds/{}.atom", c.slug),
            parents: choices(
                stored.and_then(|s| s.parent.as_deref()),
                Some(c.slug.as_str()),
            ),
        });
    }
    let body = Body {
        nodes,
        parents: choices(Some(form.parent.as_str()), None),
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

fn request(f: &FormData) -> CategoryRequest {
    CategoryRequest {
        slug: f.get("slug").trim().to_owned(),
        name: f.get("name").to_owned(),
        description: f.get("description").to_owned(),
        parent: f.non_blank("parent").map(str::to_owned),
    }
}

pub async fn create(State(state): State<AppState>, session: Session, f: FormData) -> PageResult {
    let form = NewForm {
        slug: f.get("slug").into(),
        name: f.get("name").into(),
        description: f.get("description").into(),
        parent: f.get("parent").into(),
    };
    let mut req = request(&f);
    if req.slug.is_empty() {
        req.slug = Slug::from_title(&req.name).as_str().to_owned();
    }
    let new = match req.into_new() {
        Ok(n) => n,
        Err(e) => {
            return render(
                &state,
                &session,
                StatusCode::UNPROCESSABLE_ENTITY,
                form,
                FormErrors::new(e, FIELDS),
            )
            .await;
        }
    };
    match state
        .store
        .content()
        .create_category(&new, state.clock.now())
        .await
    {
        Ok(w) => {
            state.cache.clear();
            done(
                &state,
                &session,
                true,
                &format!("Category “{}” was created.", w.value.name),
                "/admin/categories",
            )
            .await
        }
        Err(e) => {
            let errors = page::form_error(e, FIELDS)?;
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
    let current = Slug::parse(&slug).map_err(|_| {
        page::PageError(crate::http::error::AppError::NotFound(format!(
            "category {slug:?}"
        )))
    })?;
    let outcome = match request(&f).into_new() {
        Ok(new) => state
            .store
            .content()
            .update_category(&current, &new, state.clock.now())
            .await
            .map(|w| w.value.name)
            .map_err(|e| match e {
                StoreError::Conflict { field, message }
                | StoreError::Invalid { field, message } => Ok(format!("{field}: {message}")),
                other => Err(other),
            }),
        Err(e) => Err(Ok(e.to_string())),
    };
    match outcome {
        Ok(name) => {
            state.cache.clear();
            done(
                &state,
                &session,
                true,
                &format!("Category “{name}” was saved."),
                "/admin/categories",
            )
            .await
        }
        Err(Ok(problem)) => {
            done(
                &state,
                &session,
                false,
                &format!("Category {slug} was not changed: {problem}"),
                "/admin/categories",
            )
            .await
        }
        Err(Err(e)) => Err(e.into()),
    }
}

pub async fn delete(
    State(state): State<AppState>,
    session: Session,
    Path(slug): Path<String>,
) -> PageResult {
    match state
        .store
        .content()
        .delete_category(&slug, state.clock.now())
        .await
    {
        Ok(()) => {
            state.cache.clear();
            done(
                &state,
                &session,
                true,
                &format!("Category {slug} was deleted."),
                "/admin/categories",
            )
            .await
        }
        Err(StoreError::Conflict { message, .. }) => {
            done(
                &state,
                &session,
                false,
                &format!("Not deleted: {message}."),
                "/admin/categories",
            )
            .await
        }
        Err(e) => Err(e.into()),
    }
}
