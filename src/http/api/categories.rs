//! `/api/v1/categories`: the category tree.

use crate::domain::{Category, FieldErrors, NewCategory, Slug, Text};
use crate::http::AppState;
use crate::http::auth::AdminUser;
use crate::http::error::{ApiResult, AppError, Problem};
use crate::http::extract::ApiJson;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_categories, create_category))
        .routes(routes!(get_category, update_category, delete_category))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CategoryRequest {
    pub slug: String,
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Slug of the parent category; a top-level category when left out.
    pub parent: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CategoryResponse {
    pub slug: String,
    pub name: String,
    pub description: String,
    pub parent: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The public page of the category.
    pub url: String,
    /// Its feeds, by format.
    pub feeds: CategoryFeeds,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CategoryFeeds {
    pub rss: String,
    pub atom: String,
    pub json: String,
    pub ics: String,
}

impl CategoryRequest {
    pub(crate) fn into_new(self) -> Result<NewCategory, FieldErrors> {
        let mut errors = FieldErrors::new();
        let slug = errors.check("slug", Slug::parse(&self.slug));
        let name = errors.check("name", Text::parse(&self.name, 200, true, false));
        let description = errors.check(
            "description",
            Text::parse(&self.description, 2000, false, true),
        );
        let parent = match self.parent.as_deref() {
            Some(p) => errors.check("parent", Slug::parse(p)).map(Some),
            None => Some(None),
        };
        errors.finish(|| {
            Some(NewCategory {
                slug: slug?,
                name: name?,
                description: description?,
                parent: parent?,
            })
        })
    }
}

pub(crate) fn to_response(c: Category, base: &str) -> CategoryResponse {
    let feed = |ext: &str| format!("{base}/feeds/{}.{ext}", c.slug);
    CategoryResponse {
        url: format!("{base}/categories/{}", c.slug),
        feeds: CategoryFeeds {
            rss: feed("rss"),
            atom: feed("atom"),
            json: feed("json"),
            ics: feed("ics"),
        },
        slug: c.slug,
        name: c.name,
        description: c.description,
        parent: c.parent,
        created_at: c.created_at,
        updated_at: c.updated_at,
    }
}

/// List every category, parents before children in creation order.
#[utoipa::path(get, path = "/api/v1/categories", tag = "categories", security(("bearer" = [])),
    responses((status = 200, body = Vec<CategoryResponse>), (status = 401, body = Problem)))]
async fn list_categories(
    _: AdminUser,
    State(state): State<AppState>,
) -> ApiResult<Json<Vec<CategoryResponse>>> {
    let base = &state.settings.base_url;
    let all = state.store.content().categories().await?;
    Ok(Json(
        all.into_iter().map(|c| to_response(c, base)).collect(),
    ))
}

/// Create a category.
#[utoipa::path(post, path = "/api/v1/categories", tag = "categories", request_body = CategoryRequest,
    security(("bearer" = [])),
    responses((status = 201, body = CategoryResponse), (status = 401, body = Problem), (status = 409, body = Problem),
        (status = 422, body = Problem)))]
async fn create_category(
    _: AdminUser,
    State(state): State<AppState>,
    ApiJson(request): ApiJson<CategoryRequest>,
) -> ApiResult<(StatusCode, Json<CategoryResponse>)> {
    let new = request.into_new()?;
    let written = state
        .store
        .content()
        .create_category(&new, state.clock.now())
        .await?;
    state.cache.clear();
    Ok((
        StatusCode::CREATED,
        Json(to_response(written.value, &state.settings.base_url)),
    ))
}

/// Read one category.
#[utoipa::path(get, path = "/api/v1/categories/{slug}", tag = "categories", params(("slug" = String, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = CategoryResponse), (status = 401, body = Problem), (status = 404, body = Problem)))]
async fn get_category(
    _: AdminUser,
    State(state): State<AppState>,
    Path(slug): Path<String>,
) -> ApiResult<Json<CategoryResponse>> {
    let category = state
        .store
        .content()
        .category(&slug)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("category {slug:?}")))?;
    Ok(Json(to_response(category, &state.settings.base_url)))
}

/// Rename, describe, re-slug or move a category.
#[utoipa::path(put, path = "/api/v1/categories/{slug}", tag = "categories", params(("slug" = String, Path)),
    request_body = CategoryRequest, security(("bearer" = [])),
    responses((status = 200, body = CategoryResponse), (status = 401, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn update_category(
    _: AdminUser,
    State(state): State<AppState>,
    Path(slug): Path<String>,
    ApiJson(request): ApiJson<CategoryRequest>,
) -> ApiResult<Json<CategoryResponse>> {
    let current =
        Slug::parse(&slug).map_err(|_| AppError::NotFound(format!("category {slug:?}")))?;
    let new = request.into_new()?;
    let written = state
        .store
        .content()
        .update_category(&current, &new, state.clock.now())
        .await?;
    state.cache.clear();
    Ok(Json(to_response(written.value, &state.settings.base_url)))
}

/// Delete an empty category. One with child categories or items is refused (409)
/// with the reason.
#[utoipa::path(delete, path = "/api/v1/categories/{slug}", tag = "categories", params(("slug" = String, Path)),
    security(("bearer" = [])),
    responses((status = 204), (status = 401, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)))]
async fn delete_category(
    _: AdminUser,
    State(state): State<AppState>,
    Path(slug): Path<String>,
) -> ApiResult<StatusCode> {
    state
        .store
        .content()
        .delete_category(&slug, state.clock.now())
        .await?;
    state.cache.clear();
    Ok(StatusCode::NO_CONTENT)
}
