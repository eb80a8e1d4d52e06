//! `/api/v1/categories`: the category tree.

use crate::app::App;
use crate::domain::{Category, CategoryInput, Slug};
use crate::http::AppState;
use crate::http::auth::AdminUser;
use crate::http::error::{ApiResult, AppError, Problem};
use crate::http::extract::ApiJson;
use crate::services::content;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
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
    /// The default name, shown in a language without one in `names`.
    pub name: String,
    /// Its names in other languages, by language tag (`{"zh": "合作院校通讯"}`): a
    /// reader of a language with a name here (the exact tag, else one of the same
    /// primary language, as item versions are matched) sees it in place of `name`.
    /// The set given replaces the stored one; left out, the category has none.
    #[serde(default)]
    #[schema(example = json!({"zh": "活动"}))]
    pub names: BTreeMap<String, String>,
    #[serde(default)]
    pub description: String,
    /// Slug of the parent category; a top-level category when left out.
    pub parent: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CategoryResponse {
    pub slug: String,
    pub name: String,
    /// Its names in other languages, by language tag.
    pub names: BTreeMap<String, String>,
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

impl From<CategoryRequest> for CategoryInput {
    fn from(r: CategoryRequest) -> Self {
        Self {
            slug: Some(r.slug),
            name: r.name,
            names: r.names,
            description: r.description,
            parent: r.parent,
        }
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
        names: c.names.to_map(),
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
    State(app): State<App>,
) -> ApiResult<Json<Vec<CategoryResponse>>> {
    let base = &app.settings.base_url;
    let all = content::list_categories(&app).await?;
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
    State(app): State<App>,
    ApiJson(request): ApiJson<CategoryRequest>,
) -> ApiResult<(StatusCode, Json<CategoryResponse>)> {
    let draft = CategoryInput::from(request).parse()?;
    let created = content::create_category(&app, draft).await?;
    Ok((
        StatusCode::CREATED,
        Json(to_response(created, &app.settings.base_url)),
    ))
}

/// Read one category.
#[utoipa::path(get, path = "/api/v1/categories/{slug}", tag = "categories", params(("slug" = String, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = CategoryResponse), (status = 401, body = Problem), (status = 404, body = Problem)))]
async fn get_category(
    _: AdminUser,
    State(app): State<App>,
    Path(slug): Path<String>,
) -> ApiResult<Json<CategoryResponse>> {
    let category = content::category(&app, &slug).await?;
    Ok(Json(to_response(category, &app.settings.base_url)))
}

/// Rename, describe, re-slug or move a category.
#[utoipa::path(put, path = "/api/v1/categories/{slug}", tag = "categories", params(("slug" = String, Path)),
    request_body = CategoryRequest, security(("bearer" = [])),
    responses((status = 200, body = CategoryResponse), (status = 401, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn update_category(
    _: AdminUser,
    State(app): State<App>,
    Path(slug): Path<String>,
    ApiJson(request): ApiJson<CategoryRequest>,
) -> ApiResult<Json<CategoryResponse>> {
    if Slug::parse(&slug).is_err() {
        return Err(AppError::NotFound(format!("category {slug:?}")));
    }
    let draft = CategoryInput::from(request).parse()?;
    let updated = content::update_category(&app, &slug, draft).await?;
    Ok(Json(to_response(updated, &app.settings.base_url)))
}

/// Delete an empty category. One with child categories or items is refused (409)
/// with the reason.
#[utoipa::path(delete, path = "/api/v1/categories/{slug}", tag = "categories", params(("slug" = String, Path)),
    security(("bearer" = [])),
    responses((status = 204), (status = 401, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)))]
async fn delete_category(
    _: AdminUser,
    State(app): State<App>,
    Path(slug): Path<String>,
) -> ApiResult<StatusCode> {
    content::delete_category(&app, &slug).await?;
    Ok(StatusCode::NO_CONTENT)
}
