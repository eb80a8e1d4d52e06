//! The people who sign in to the admin pages, and the API's bearer tokens: adding a
//! user, roles, disabling (never the last enabled admin), passwords, sign-in with its
//! lock-out ([`sign_in`]), sessions, API tokens ([`tokens`]).
//!
//! These functions take the store and the time rather than the whole application: the
//! `user` command runs them with a database and nothing else (no mail transport).

mod sign_in;
mod tokens;

pub use sign_in::{
    ADDRESS_FAILURES, ADDRESS_WINDOW_SECS, IDLE_SECONDS, LOCK_AFTER, LOCK_MINUTES, Resumed,
    SignInRefused, SignedIn, end_session, random_token, resume_session, same, session_is_live,
    set_flash, sign_in,
};
pub use tokens::{
    bearer_is_valid, create_api_token, generate_api_token, hash_token, revoke_api_token,
};

use super::{ServiceError, ServiceResult};
use crate::domain::{Role, User};
use crate::passwords;
use crate::store::Store;
use chrono::{DateTime, Utc};

/// Checks a new user name: 1 to 64 letters, digits, `.`, `_`, `-` or `@` (trimmed).
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

/// Argon2 is slow on purpose: hashing runs off the async threads.
async fn hash(password: String) -> ServiceResult<String> {
    Ok(
        tokio::task::spawn_blocking(move || passwords::hash(&password))
            .await
            .map_err(anyhow::Error::from)??,
    )
}

async fn verify(password: String, stored: String) -> bool {
    tokio::task::spawn_blocking(move || passwords::verify(&password, &stored))
        .await
        .unwrap_or(false)
}

/// A password chosen by a person, or generated when none was given.
fn chosen_or_generated(password: Option<String>) -> ServiceResult<String> {
    match password {
        None => Ok(passwords::generate()),
        Some(p) => {
            passwords::check_new(&p).map_err(|m| ServiceError::invalid("password", m))?;
            Ok(p)
        }
    }
}

/// A user and the password they were given; `generated` tells whether it must be
/// shown (once) to whoever hands it on.
pub struct WithPassword {
    pub user: User,
    pub password: String,
    pub generated: bool,
}

/// The time sign-in locks are counted on: the database's, shared by every instance.
pub async fn lock_clock(store: &Store) -> ServiceResult<DateTime<Utc>> {
    let secs = store.limits().db_now().await?;
    Ok(DateTime::from_timestamp(secs, 0).unwrap_or_default())
}

pub async fn list_users(store: &Store) -> ServiceResult<Vec<User>> {
    Ok(store.users().all().await?)
}

pub async fn user_by_name(store: &Store, name: &str) -> ServiceResult<User> {
    store
        .users()
        .by_name(name)
        .await?
        .ok_or_else(|| ServiceError::not_found(format!("user {name:?}")))
}

/// Adds a user with a role (`admin` or `editor`) and the password given, or a
/// generated one. A taken name is a conflict.
pub async fn add_user(
    store: &Store,
    now: DateTime<Utc>,
    name: &str,
    role: &str,
    password: Option<String>,
) -> ServiceResult<WithPassword> {
    let name = check_name(name).map_err(|m| ServiceError::invalid("name", m))?;
    let role = Role::parse(role).map_err(|m| ServiceError::invalid("role", m))?;
    let generated = password.is_none();
    let password = chosen_or_generated(password)?;
    let hash = hash(password.clone()).await?;
    let user = store.users().create(name, &hash, role, now).await?;
    tracing::info!(user = %user.name, role = role.as_str(), "user added");
    Ok(WithPassword {
        user,
        password,
        generated,
    })
}

/// Changes a user's role and whether they may sign in; a disabled user's sessions
/// end. Refused (a conflict) when it would leave no enabled admin.
pub async fn update_user(
    store: &Store,
    now: DateTime<Utc>,
    id: i64,
    role: &str,
    disabled: bool,
) -> ServiceResult<User> {
    let role = Role::parse(role).map_err(|m| ServiceError::invalid("role", m))?;
    Ok(store.users().update(id, role, disabled, now).await?)
}

/// Sets a new password (the one given, or a generated one); this also lifts a
/// lock-out and ends the user's sessions.
pub async fn set_password(
    store: &Store,
    now: DateTime<Utc>,
    user: User,
    password: Option<String>,
) -> ServiceResult<WithPassword> {
    let generated = password.is_none();
    let password = chosen_or_generated(password)?;
    store
        .users()
        .set_password(user.id, &hash(password.clone()).await?, now)
        .await?;
    tracing::info!(user = %user.name, "password set");
    Ok(WithPassword {
        user,
        password,
        generated,
    })
}

/// An admin gives user `id` a new, generated password.
pub async fn reset_password(
    store: &Store,
    now: DateTime<Utc>,
    id: i64,
) -> ServiceResult<WithPassword> {
    let user = store
        .users()
        .by_id(id)
        .await?
        .ok_or_else(|| ServiceError::not_found("user"))?;
    set_password(store, now, user, None).await
}

/// What someone typed to change their own password.
pub struct PasswordChange {
    pub current: String,
    pub new: String,
    pub repeat: String,
}

/// A signed-in user changes their own password. Refused: `NotFound` when the account
/// is gone; `Invalid` on `current` (wrong), `new` (too weak) or `repeat` (differs).
pub async fn change_own_password(
    store: &Store,
    now: DateTime<Utc>,
    user_id: i64,
    change: PasswordChange,
) -> ServiceResult<User> {
    let user = store
        .users()
        .by_id(user_id)
        .await?
        .ok_or_else(|| ServiceError::not_found("account"))?;
    if !verify(change.current, user.password_hash.clone()).await {
        return Err(ServiceError::invalid("current", "is wrong"));
    }
    passwords::check_new(&change.new).map_err(|m| ServiceError::invalid("new", m))?;
    if change.new != change.repeat {
        return Err(ServiceError::invalid("repeat", "differs"));
    }
    store
        .users()
        .set_password(user.id, &hash(change.new).await?, now)
        .await?;
    tracing::info!(user = %user.name, "password changed");
    Ok(user)
}

/// With the demo and no user yet: an admin named `admin` with a generated password
/// (returned, to be shown once). `None` when there are users already.
pub async fn demo_admin(store: &Store, now: DateTime<Utc>) -> ServiceResult<Option<String>> {
    if !store.users().all().await?.is_empty() {
        return Ok(None);
    }
    match add_user(store, now, "admin", "admin", None).await {
        Ok(added) => Ok(Some(added.password)),
        // Another instance started with the demo at the same moment made it.
        Err(ServiceError::Conflict { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_names_are_short_and_plain() {
        assert_eq!(check_name("  ada@example.org "), Ok("ada@example.org"));
        assert_eq!(check_name("zhang.wei_2"), Ok("zhang.wei_2"));
        assert!(check_name("").is_err());
        assert!(check_name(&"a".repeat(65)).is_err());
        assert!(check_name("ada lovelace").is_err());
        assert!(check_name("ada;drop").is_err());
    }

    #[test]
    fn a_chosen_password_must_be_strong_enough() {
        assert!(matches!(
            chosen_or_generated(Some("short".into())),
            Err(ServiceError::Invalid(_))
        ));
        assert_eq!(
            chosen_or_generated(Some("a long enough password".into())).unwrap(),
            "a long enough password"
        );
        assert_eq!(chosen_or_generated(None).unwrap().len(), 20);
    }
}
