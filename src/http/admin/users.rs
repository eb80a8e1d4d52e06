//! Users (admins only): add one with a generated password, change role, disable,
//! set a new password. Everyone: their own account and password.

use super::page::{self, FormData, PageResult, parse_id, when, when_opt};
use super::session::{Session, done};
use crate::domain::Role;
use crate::http::AppState;
use crate::passwords;
use crate::store::StoreError;
use axum::extract::{Path, State};
use axum::http::StatusCode;
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
    let now = state.clock.now();
    let users = state
        .store
        .users()
        .all()
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

/// Checks a new user name: 1 to 64 letters, digits, `.`, `_`, `-` or `@`.
pub fn check_name(name: &str) -> Result<&str, String> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 64 {
        return Err("must be 1 to 64 characters long".into());
    }
    if !name
        .chars()
        .all(|c| c.is_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'))
    {
        return Err("may hold letters, digits, '.', '_', '-' and '@' only".into());
    }
    Ok(name)
}

pub async fn create(State(state): State<AppState>, session: Session, f: FormData) -> PageResult {
    let name = match check_name(f.get("name")) {
        Ok(n) => n.to_owned(),
        Err(m) => {
            return done(
                &state,
                &session,
                false,
                &format!("Not added: name {m}."),
                "/admin/users",
            )
            .await;
        }
    };
    let role = match Role::parse(f.get("role")) {
        Ok(r) => r,
        Err(m) => {
            return done(
                &state,
                &session,
                false,
                &format!("Not added: role {m}."),
                "/admin/users",
            )
            .await;
        }
    };
    let password = passwords::generate();
    let hash = {
        let p = password.clone();
        tokio::task::spawn_blocking(move || passwords::hash(&p))
            .await
            .map_err(anyhow::Error::from)??
    };
    match state
        .store
        .users()
        .create(&name, &hash, role, state.clock.now())
        .await
    {
        Ok(u) => {
            tracing::info!(user = %u.name, role = role.as_str(), by = %session.name, "user added");
            render(
                &state,
                &session,
                StatusCode::OK,
                Some(NewPassword {
                    name: u.name,
                    password,
                }),
            )
            .await
        }
        Err(StoreError::Conflict { message, .. }) => {
            done(
                &state,
                &session,
                false,
                &format!("Not added: {message}."),
                "/admin/users",
            )
            .await
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn update(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<String>,
    f: FormData,
) -> PageResult {
    let id = parse_id("user", &id)?;
    let role = match Role::parse(f.get("role")) {
        Ok(r) => r,
        Err(m) => {
            return done(
                &state,
                &session,
                false,
                &format!("Not changed: role {m}."),
                "/admin/users",
            )
            .await;
        }
    };
    let disabled = f.get("disabled") == "yes";
    match state
        .store
        .users()
        .update(id, role, disabled, state.clock.now())
        .await
    {
        Ok(u) => {
            done(
                &state,
                &session,
                true,
                &format!(
                    "{} is now {}{}.",
                    u.name,
                    u.role.as_str(),
                    if u.disabled {
                        " (disabled: cannot sign in)"
                    } else {
                        ""
                    }
                ),
                "/admin/users",
            )
            .await
        }
        Err(StoreError::Conflict { message, .. }) => {
            done(
                &state,
                &session,
                false,
                &format!("Not changed: {message}."),
                "/admin/users",
            )
            .await
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn reset_password(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<String>,
) -> PageResult {
    let id = parse_id("user", &id)?;
    let Some(user) = state.store.users().by_id(id).await? else {
        return done(
            &state,
            &session,
            false,
            "There is no such user.",
            "/admin/users",
        )
        .await;
    };
    let password = passwords::generate();
    let p = password.clone();
    let hash = tokio::task::spawn_blocking(move || passwords::hash(&p))
        .await
        .map_err(anyhow::Error::from)??;
    state
        .store
        .users()
        .set_password(user.id, &hash, state.clock.now())
        .await?;
    tracing::info!(user = %user.name, by = %session.name, "password reset");
    render(
        &state,
        &session,
        StatusCode::OK,
        Some(NewPassword {
            name: user.name,
            password,
        }),
    )
    .await
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
    let refuse = |message: &str| {
        page::render(
            &state,
            &session,
            StatusCode::UNPROCESSABLE_ENTITY,
            "account",
            "admin/account",
            "Your account",
            &AccountBody {
                error: Some(message.to_owned()),
            },
        )
    };
    let Some(user) = state.store.users().by_id(session.user_id).await? else {
        return refuse("Your account is gone.");
    };
    let current = f.get("current").to_owned();
    let stored = user.password_hash.clone();
    let ok = tokio::task::spawn_blocking(move || passwords::verify(&current, &stored))
        .await
        .unwrap_or(false);
    if !ok {
        return refuse("The current password is wrong.");
    }
    let new = f.get("new").to_owned();
    if let Err(m) = passwords::check_new(&new) {
        return refuse(&format!("The new password {m}."));
    }
    if new != f.get("repeat") {
        return refuse("The two new passwords differ.");
    }
    let hash = tokio::task::spawn_blocking(move || passwords::hash(&new))
        .await
        .map_err(anyhow::Error::from)??;
    state
        .store
        .users()
        .set_password(user.id, &hash, state.clock.now())
        .await?;
    tracing::info!(user = %user.name, "password changed");
    Ok(axum::response::IntoResponse::into_response(
        axum::response::Redirect::to("/admin/sign-in?password_changed=1"),
    ))
}
