//! Signing in and the sessions it starts.
//!
//! - A session token holds 256 random bits; the database keeps only their SHA-256.
//! - Failed sign-ins lock a user name for a while (doubling); the attempt is counted
//!   before the slow password check, so guesses sent in parallel cannot all be checked
//!   before the first failure is recorded.
//! - A name that names nobody locks exactly like an account (the same rows, the same
//!   rule), so the answers do not tell which names exist.
//! - Each client address has a budget of failed sign-ins.
//!
//! All of it is counted in the database on its own clock (`store.limits()`): instances
//! sharing a database share the limits, and a restart resets none.

use super::{hash_token, verify};
use crate::domain::User;
use crate::services::ServiceResult;
use crate::store::{NameLock, SessionRecord, Store};
use chrono::{DateTime, Duration, Utc};
use rand::RngCore;

/// A session ends after this long without a request.
pub const IDLE_SECONDS: i64 = 12 * 3600;
/// Failed sign-ins before the account locks, and the first lock's length.
pub const LOCK_AFTER: i64 = 5;
pub const LOCK_MINUTES: i64 = 15;
/// Failed sign-ins a client address may have per window.
pub const ADDRESS_FAILURES: i64 = 30;
pub const ADDRESS_WINDOW_SECS: i64 = 15 * 60;
/// The limit scope of failed sign-ins per client address.
const ADDRESS_SCOPE: &str = "sign_in";
/// A session's idle expiry moves on at most this often.
const TOUCH_MINUTES: i64 = 5;

/// 32 random bytes from the OS, hex.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// Equal strings, compared in time that does not depend on where they differ.
pub fn same(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Why a sign-in was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignInRefused {
    /// Too many failures from the client's address.
    AddressOver,
    /// The name or the password was left blank.
    Incomplete,
    /// The name is locked for this much longer.
    Locked(Duration),
    /// The name or the password is wrong.
    Wrong,
    /// The account may not sign in.
    Disabled,
}

/// A started session: the token for the cookie (the store keeps only its hash).
pub struct SignedIn {
    pub user: User,
    pub token: String,
}

/// A hash to check passwords of unknown users against, so that "no such user" takes
/// as long as "wrong password".
fn dummy_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| crate::passwords::hash("not a real password").unwrap_or_default())
}

/// Checks a name and password from `client` (the client's address); on success starts
/// a session, replacing the one whose token the browser still had (`replaces`).
pub async fn sign_in(
    store: &Store,
    now: DateTime<Utc>,
    name: &str,
    password: &str,
    client: &str,
    replaces: Option<&str>,
) -> ServiceResult<Result<SignedIn, SignInRefused>> {
    let limits = store.limits();
    if limits.hits(ADDRESS_SCOPE, client).await? >= ADDRESS_FAILURES {
        return Ok(Err(SignInRefused::AddressOver));
    }
    if name.is_empty() || password.is_empty() {
        return Ok(Err(SignInRefused::Incomplete));
    }
    let name_key = name.trim().to_lowercase();
    let lock = limits
        .claim_sign_in(&name_key, LOCK_AFTER, LOCK_MINUTES * 60)
        .await?;
    if let NameLock::Locked(secs) = lock {
        limits
            .count(ADDRESS_SCOPE, client, ADDRESS_WINDOW_SECS)
            .await?;
        tracing::warn!(name = %name_key, "sign-in refused: name locked");
        return Ok(Err(SignInRefused::Locked(Duration::seconds(secs))));
    }
    let user = store.users().by_name(name).await?;
    let hash = user
        .as_ref()
        .map(|u| u.password_hash.clone())
        .unwrap_or_else(|| dummy_hash().to_owned());
    let password_ok = verify(password.to_owned(), hash).await;
    let user = match user {
        Some(u) if password_ok => u,
        other => {
            limits
                .count(ADDRESS_SCOPE, client, ADDRESS_WINDOW_SECS)
                .await?;
            match other {
                Some(u) => tracing::warn!(user = %u.name, "sign-in failed: wrong password"),
                None => tracing::warn!("sign-in failed: no such user"),
            }
            return Ok(Err(match lock {
                NameLock::LockedNow(secs) => SignInRefused::Locked(Duration::seconds(secs)),
                _ => SignInRefused::Wrong,
            }));
        }
    };
    if user.disabled {
        return Ok(Err(SignInRefused::Disabled));
    }
    let token = start_session(store, &user, replaces, now).await?;
    Ok(Ok(SignedIn { user, token }))
}

/// A new session with a new token; the one the browser had (`replaces`), if any, ends.
async fn start_session(
    store: &Store,
    user: &User,
    replaces: Option<&str>,
    now: DateTime<Utc>,
) -> ServiceResult<String> {
    let token = random_token();
    let csrf = random_token();
    let old = replaces.map(hash_token);
    store
        .users()
        .start_session(
            user.id,
            &hash_token(&token),
            &csrf,
            old.as_deref(),
            now,
            now + Duration::seconds(IDLE_SECONDS),
        )
        .await?;
    tracing::info!(user = %user.name, role = user.role.as_str(), "signed in");
    Ok(token)
}

/// A session found again from its token.
pub struct Resumed {
    pub record: SessionRecord,
    pub token_hash: String,
    /// Its idle expiry moved on: the cookie's should too.
    pub touched: bool,
    /// The message left for the next page, if it is taken now.
    pub flash: Option<(String, String)>,
}

/// The live session of a token, or `None`. In use, its idle expiry moves on (every
/// few minutes); with `take_flash` the message left for the next page is taken (and
/// removed).
pub async fn resume_session(
    store: &Store,
    token: &str,
    now: DateTime<Utc>,
    take_flash: bool,
) -> ServiceResult<Option<Resumed>> {
    let token_hash = hash_token(token);
    let Some(record) = store.users().session(&token_hash, now).await? else {
        return Ok(None);
    };
    let touched = now - record.last_seen_at > Duration::minutes(TOUCH_MINUTES);
    if touched {
        store
            .users()
            .touch_session(&token_hash, now, now + Duration::seconds(IDLE_SECONDS))
            .await?;
    }
    let flash = if take_flash {
        record.flash.clone()
    } else {
        None
    };
    if flash.is_some() {
        store.users().set_flash(&token_hash, None).await?;
    }
    Ok(Some(Resumed {
        record,
        token_hash,
        touched,
        flash,
    }))
}

/// Whether a token names a live session (without touching it).
pub async fn session_is_live(
    store: &Store,
    token: &str,
    now: DateTime<Utc>,
) -> ServiceResult<bool> {
    Ok(store
        .users()
        .session(&hash_token(token), now)
        .await?
        .is_some())
}

/// Leaves a message (`ok` or `error`) for the session's next page.
pub async fn set_flash(
    store: &Store,
    token_hash: &str,
    ok: bool,
    message: &str,
) -> ServiceResult<()> {
    let kind = if ok { "ok" } else { "error" };
    Ok(store
        .users()
        .set_flash(token_hash, Some((kind, message)))
        .await?)
}

pub async fn end_session(store: &Store, token_hash: &str) -> ServiceResult<()> {
    Ok(store.users().end_session(token_hash).await?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DatabaseUrl;
    use crate::services::users::add_user;
    use chrono::TimeZone as _;

    const CLIENT: &str = "192.0.2.7";

    #[test]
    fn tokens_compare_in_full() {
        assert!(same("abc", "abc"));
        assert!(!same("abc", "abd"));
        assert!(!same("abc", "ab"));
        assert_eq!(random_token().len(), 64);
        assert_ne!(random_token(), random_token());
    }

    async fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("users.db").display());
        let store = Store::connect(&DatabaseUrl::parse(&url).unwrap(), 1)
            .await
            .unwrap();
        store.migrate().await.unwrap();
        (dir, store)
    }

    /// Lets the database's time pass for every lock and budget: they are moved back.
    async fn age(store: &Store, secs: i64) {
        sqlx::query("UPDATE sign_in_locks SET locked_until = locked_until - $1")
            .bind(secs)
            .execute(&store.pool)
            .await
            .unwrap();
    }

    fn locked_about(r: Option<SignInRefused>, minutes: i64) -> bool {
        matches!(r, Some(SignInRefused::Locked(d))
            if (d - Duration::minutes(minutes)).num_seconds().abs() <= 2)
    }

    async fn address_failures(store: &Store) -> i64 {
        store.limits().hits(ADDRESS_SCOPE, CLIENT).await.unwrap()
    }

    #[tokio::test]
    async fn the_fifth_wrong_password_locks_the_account_and_counts_the_address() {
        let (_dir, store) = store().await;
        let now = Utc.with_ymd_and_hms(2023, 11, 9, 14, 0, 0).unwrap();
        let password = "a long enough password".to_owned();
        add_user(&store, now, "ada", "editor", Some(password.clone()))
            .await
            .unwrap();
        for _ in 0..4 {
            let r = sign_in(&store, now, "ada", "wrong", CLIENT, None).await;
            assert_eq!(r.unwrap().err(), Some(SignInRefused::Wrong));
        }
        let fifth = sign_in(&store, now, "ada", "wrong", CLIENT, None).await;
        assert!(locked_about(fifth.unwrap().err(), LOCK_MINUTES));
        let user = store.users().by_name("ADA").await.unwrap().unwrap();
        assert_eq!(user.failed_sign_ins, 5);
        assert!(user.locked_until.is_some());
        // Locked: even the right password is refused, and that counts too.
        let right = sign_in(&store, now, "ada", &password, CLIENT, None).await;
        assert!(locked_about(right.unwrap().err(), LOCK_MINUTES));
        assert_eq!(address_failures(&store).await, 6);
        // After the lock, the right password signs in, and the failures are forgotten.
        age(&store, LOCK_MINUTES * 60 + 1).await;
        let signed_in = sign_in(&store, now, "ada", &password, CLIENT, None).await;
        let signed_in = signed_in.unwrap().unwrap();
        assert_eq!(signed_in.user.name, "ada");
        assert!(
            session_is_live(&store, &signed_in.token, now)
                .await
                .unwrap()
        );
        let user = store.users().by_name("ada").await.unwrap().unwrap();
        assert_eq!((user.failed_sign_ins, user.locked_until), (0, None));
    }

    #[tokio::test]
    async fn a_lock_doubles_at_each_failure_after_it_ends_and_a_new_password_lifts_it() {
        let (_dir, store) = store().await;
        let now = Utc.with_ymd_and_hms(2023, 11, 9, 14, 0, 0).unwrap();
        let ada = add_user(&store, now, "ada", "editor", None).await.unwrap();
        for _ in 0..5 {
            sign_in(&store, now, "ada", "wrong", CLIENT, None)
                .await
                .unwrap()
                .err()
                .unwrap();
        }
        age(&store, LOCK_MINUTES * 60 + 1).await;
        let sixth = sign_in(&store, now, "ada", "wrong", CLIENT, None).await;
        assert!(locked_about(sixth.unwrap().err(), 2 * LOCK_MINUTES));
        crate::services::users::set_password(&store, now, ada.user, None)
            .await
            .unwrap();
        let after = sign_in(&store, now, "ada", "wrong", CLIENT, None).await;
        assert_eq!(after.unwrap().err(), Some(SignInRefused::Wrong));
    }

    #[tokio::test]
    async fn a_name_of_nobody_locks_like_an_account() {
        let (_dir, store) = store().await;
        let now = Utc.with_ymd_and_hms(2023, 11, 9, 14, 0, 0).unwrap();
        add_user(&store, now, "ada", "editor", None).await.unwrap();
        let mut answers = Vec::new();
        for name in ["ada", "Nobody"] {
            let mut got = Vec::new();
            for _ in 0..6 {
                let r = sign_in(&store, now, name, "guess", CLIENT, None).await;
                got.push(match r.unwrap().err().unwrap() {
                    SignInRefused::Locked(d) => format!("locked {}", (d.num_seconds() + 59) / 60),
                    other => format!("{other:?}"),
                });
            }
            answers.push(got);
        }
        assert_eq!(answers[0], answers[1]);
        assert_eq!(answers[0][4], "locked 15");
        let blank = sign_in(&store, now, "", "guess", CLIENT, None).await;
        assert_eq!(blank.unwrap().err(), Some(SignInRefused::Incomplete));
    }

    #[tokio::test]
    async fn an_address_has_a_budget_of_failures() {
        let (_dir, store) = store().await;
        let now = Utc.with_ymd_and_hms(2023, 11, 9, 14, 0, 0).unwrap();
        for n in 0..ADDRESS_FAILURES {
            let r = sign_in(&store, now, &format!("nobody{n}"), "guess", CLIENT, None).await;
            assert_eq!(r.unwrap().err(), Some(SignInRefused::Wrong), "attempt {n}");
        }
        let over = sign_in(&store, now, "someone", "guess", CLIENT, None).await;
        assert_eq!(over.unwrap().err(), Some(SignInRefused::AddressOver));
        let other = sign_in(&store, now, "someone", "guess", "192.0.2.8", None).await;
        assert_eq!(other.unwrap().err(), Some(SignInRefused::Wrong));
    }

    #[tokio::test]
    async fn the_last_enabled_admin_cannot_be_disabled_and_the_disabled_cannot_sign_in() {
        let (_dir, store) = store().await;
        let now = Utc.with_ymd_and_hms(2023, 11, 9, 14, 0, 0).unwrap();
        let password = "a long enough password".to_owned();
        let admin = add_user(&store, now, "root", "admin", None).await.unwrap();
        let refused =
            crate::services::users::update_user(&store, now, admin.user.id, "admin", true)
                .await
                .unwrap_err();
        assert!(matches!(
            refused,
            crate::services::ServiceError::Conflict { .. }
        ));
        let editor = add_user(&store, now, "ed", "editor", Some(password.clone()))
            .await
            .unwrap();
        crate::services::users::update_user(&store, now, editor.user.id, "editor", true)
            .await
            .unwrap();
        let r = sign_in(&store, now, "ed", &password, CLIENT, None).await;
        assert_eq!(r.unwrap().err(), Some(SignInRefused::Disabled));
    }
}
