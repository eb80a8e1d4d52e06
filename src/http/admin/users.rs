//! Users (admins only): add one with a generated password, change role, disable,
//! set a new password. Everyone: their own account and password.

use super::page::{self, FormData, PageResult, parse_id, when, when_opt};
use super::session::{Session, done};
use crate::http::AppState;
use crate::services::ServiceError;
use crate::services::users::{self, PasswordChange};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use serde::Serialize;

#[derive(Serialize)]
struct UserRow {
    id: i64,
    name: String,
    role: &'static str,
    disabled: bool,
    locked: bool,
    last_sign_in: String,
    created: String,
    is_me: bool,
}

#[derive(Serialize)]
struct Body {
    users: Vec<UserRow>,
    /// Shown once, right after a user was added or a password was reset.
    new_password: Option<NewPassword>,
}

#[derive(Serialize)]
struct NewPassword {
    name: String,
    password: String,
}

async fn render(
    state: &AppState,
    session: &Session,
    status: StatusCode,
    new_password: Option<NewPassword>,
) -> PageResult {
    // Locks run on the database's clock.
    let now = users::lock_clock(&state.store).await?;
    let users = users::list_users(&state.store)
        .await?
        .into_iter()
        .map(|u| UserRow {
            is_me: u.id == session.user_id,
            id: u.id,
            name: u.name,
            role: u.role.as_str(),
            disabled: u.disabled,
            locked: u.locked_until.is_some_and(|t| t > now),
            last_sign_in: when_opt(u.last_sign_in_at),
            created: when(u.created_at),
        })
        .collect();
    let body = Body {
        users,
        new_password,
    };
    page::render(
        state,
        session,
        status,
        "users",
        "admin/users",
        "Users",
        &body,
    )
}

pub async fn index(State(state): State<AppState>, session: Session) -> PageResult {
    render(&state, &session, StatusCode::OK, None).await
}

/// Where a refused change goes: the users page, with what was wrong.
async fn refused(state: &AppState, session: &Session, what: &str, e: ServiceError) -> PageResult {
    let why = match e {
        ServiceError::Invalid(errors) => errors
            .0
            .iter()
            .map(|e| format!("{} {}", e.field, e.message))
            .collect::<Vec<_>>()
            .join("; "),
        ServiceError::Conflict { message, .. } => message,
        other => return Err(other.into()),
    };
    done(
        state,
        session,
        false,
        &format!("{what}: {why}."),
        "/admin/users",
    )
    .await
}

pub async fn create(State(state): State<AppState>, session: Session, f: FormData) -> PageResult {
    let now = state.clock.now();
    let added = users::add_user(&state.store, now, f.get("name"), f.get("role"), None).await;
    match added {
        Ok(added) => {
            tracing::info!(user = %added.user.name, by = %session.name, "user added by an admin");
            let shown = NewPassword {
                name: added.user.name,
                password: added.password,
            };
            render(&state, &session, StatusCode::OK, Some(shown)).await
        }
        Err(e) => refused(&state, &session, "Not added", e).await,
    }
}

pub async fn update(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<String>,
    f: FormData,
) -> PageResult {
    let id = parse_id("user", &id)?;
    let disabled = f.get("disabled") == "yes";
    let now = state.clock.now();
    match users::update_user(&state.store, now, id, f.get("role"), disabled).await {
        Ok(u) => {
            let message = format!(
                "{} is now {}{}.",
                u.name,
                u.role.as_str(),
                if u.disabled {
                    " (disabled: cannot sign in)"
                } else {
                    ""
                }
            );
            done(&state, &session, true, &message, "/admin/users").await
        }
        Err(e) => refused(&state, &session, "Not changed", e).await,
    }
}

pub async fn reset_password(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<String>,
) -> PageResult {
    let id = parse_id("user", &id)?;
    let reset = match users::reset_password(&state.store, state.clock.now(), id).await {
        Ok(reset) => reset,
        Err(ServiceError::NotFound(_)) => {
            let message = "There is no such user.";
            return done(&state, &session, false, message, "/admin/users").await;
        }
        Err(e) => return Err(e.into()),
    };
    tracing::info!(user = %reset.user.name, by = %session.name, "password reset");
    let shown = NewPassword {
        name: reset.user.name,
        password: reset.password,
    };
    render(&state, &session, StatusCode::OK, Some(shown)).await
}

#[derive(Serialize)]
struct AccountBody {
    error: Option<String>,
}

pub async fn account(State(state): State<AppState>, session: Session) -> PageResult {
    page::render(
        &state,
        &session,
        StatusCode::OK,
        "account",
        "admin/account",
        "Your account",
        &AccountBody { error: None },
    )
}

pub async fn change_own_password(
    State(state): State<AppState>,
    session: Session,
    f: FormData,
) -> PageResult {
    let change = PasswordChange {
        current: f.get("current").to_owned(),
        new: f.get("new").to_owned(),
        repeat: f.get("repeat").to_owned(),
    };
    let now = state.clock.now();
    let error = match users::change_own_password(&state.store, now, session.user_id, change).await {
        Ok(_) => return Ok(Redirect::to("/admin/sign-in?password_changed=1").into_response()),
        Err(ServiceError::NotFound(_)) => "Your account is gone.".to_owned(),
        Err(ServiceError::Invalid(errors)) => match errors.0.first() {
            Some(e) if e.field == "new" => format!("The new password {}.", e.message),
            Some(e) if e.field == "repeat" => "The two new passwords differ.".to_owned(),
            _ => "The current password is wrong.".to_owned(),
        },
        Err(e) => return Err(e.into()),
    };
    page::render(
        &state,
        &session,
        StatusCode::UNPROCESSABLE_ENTITY,
        "account",
        "admin/account",
        "Your account",
        &AccountBody { error: Some(error) },
    )
}
