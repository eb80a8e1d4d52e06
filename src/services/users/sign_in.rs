//! Signing in and the sessions it starts.
//!
//! - A session token holds 256 random bits; the database keeps only their SHA-256.
//! - Failed sign-ins lock the account for a while (doubling); the attempt is counted
//!   before the slow password check, so guesses sent in parallel cannot all be checked
//!   before the first failure is recorded.
//! - A name that names nobody "locks" like a real account, so the answers do not tell
//!   which names exist; the per-address budget and that lock are counted by the caller
//!   ([`SignInLimits`]: per-process limiters that belong to the web layer).

use super::{hash_token, verify};
use crate::domain::User;
use crate::services::ServiceResult;
use crate::store::{SessionRecord, Store};
use chrono::{DateTime, Duration, Utc};
use rand::RngCore;

/// A session ends after this long without a request.
pub const IDLE_SECONDS: i64 = 12 * 3600;
/// Failed sign-ins before the account locks, and the first lock's length.
pub const LOCK_AFTER: i64 = 5;
pub const LOCK_MINUTES: i64 = 15;
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

/// The limits a sign-in is counted against besides the account's own lock. Only
/// failures count: people signing in do not use them up.
pub trait SignInLimits {
    /// The client's address has used up its failed attempts.
    fn address_is_over(&self) -> bool;
    /// Counts a failure against the client's address.
    fn address_failed(&self);
    /// Counts a failure for a name that names nobody (lower-cased); false once that
    /// name has failed as often as an account may before it locks.
    fn unknown_name_failed(&self, name: String) -> bool;
}

/// Why a sign-in was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignInRefused {
    /// Too many failures from the client's address.
    AddressOver,
    /// The name or the password was left blank.
    Incomplete,
    /// The account is locked until then.
    Locked(DateTime<Utc>),
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

/// Checks a name and password; on success starts a session, replacing the one whose
/// token the browser still had (`replaces`).
pub async fn sign_in(
    store: &Store,
    now: DateTime<Utc>,
    name: &str,
    password: &str,
    limits: &impl SignInLimits,
    replaces: Option<&str>,
) -> ServiceResult<Result<SignedIn, SignInRefused>> {
    if limits.address_is_over() {
        return Ok(Err(SignInRefused::AddressOver));
    }
    if name.is_empty() || password.is_empty() {
        return Ok(Err(SignInRefused::Incomplete));
    }
    let user = store.users().by_name(name).await?;
    let locks = match &user {
        None => None,
        Some(u) => match store
            .users()
            .claim_sign_in_attempt(u.id, LOCK_AFTER, Duration::minutes(LOCK_MINUTES), now)
            .await?
        {
            Ok(locks) => locks,
            Err(until) => {
                limits.address_failed();
                tracing::warn!(user = %u.name, "sign-in refused: account locked");
                return Ok(Err(SignInRefused::Locked(until)));
            }
        },
    };
    let hash = user
        .as_ref()
        .map(|u| u.password_hash.clone())
        .unwrap_or_else(|| dummy_hash().to_owned());
    let password_ok = verify(password.to_owned(), hash).await;
    let user = match user {
        Some(u) if password_ok => u,
        other => {
            limits.address_failed();
            match other {
                Some(u) => tracing::warn!(user = %u.name, "sign-in failed: wrong password"),
                None => {
                    if !limits.unknown_name_failed(name.to_lowercase()) {
                        let until = now + Duration::minutes(LOCK_MINUTES);
                        return Ok(Err(SignInRefused::Locked(until)));
                    }
                }
            }
            return Ok(Err(match locks {
                Some(until) => SignInRefused::Locked(until),
                None => SignInRefused::Wrong,
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
    use std::cell::{Cell, RefCell};
    use std::collections::HashMap;

    #[test]
    fn tokens_compare_in_full() {
        assert!(same("abc", "abc"));
        assert!(!same("abc", "abd"));
        assert!(!same("abc", "ab"));
        assert_eq!(random_token().len(), 64);
        assert_ne!(random_token(), random_token());
    }

    /// Counts what the web layer's limiters would count; the unknown-name lock comes
    /// at the fifth failure, as an account's does.
    #[derive(Default)]
    struct Counted {
        address_failures: Cell<u32>,
        unknown: RefCell<HashMap<String, u32>>,
    }

    impl SignInLimits for Counted {
        fn address_is_over(&self) -> bool {
            self.address_failures.get() >= 30
        }
        fn address_failed(&self) {
            self.address_failures.set(self.address_failures.get() + 1);
        }
        fn unknown_name_failed(&self, name: String) -> bool {
            let mut unknown = self.unknown.borrow_mut();
            let n = unknown.entry(name).or_default();
            *n += 1;
            *n < 5
        }
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

    #[tokio::test]
    async fn the_fifth_wrong_password_locks_the_account_and_counts_the_address() {
        let (_dir, store) = store().await;
        let now = Utc.with_ymd_and_hms(2023, 11, 9, 14, 0, 0).unwrap();
        let password = "a long enough password".to_owned();
        add_user(&store, now, "ada", "editor", Some(password.clone()))
            .await
            .unwrap();
        let limits = Counted::default();
        for _ in 0..4 {
            let r = sign_in(&store, now, "ada", "wrong", &limits, None).await;
            assert_eq!(r.unwrap().err(), Some(SignInRefused::Wrong));
        }
        let fifth = sign_in(&store, now, "ada", "wrong", &limits, None).await;
        let locked_until = now + Duration::minutes(LOCK_MINUTES);
        assert_eq!(
            fifth.unwrap().err(),
            Some(SignInRefused::Locked(locked_until))
        );
        // Locked: even the right password is refused, and that counts too.
        let right = sign_in(&store, now, "ada", &password, &limits, None).await;
        assert_eq!(
            right.unwrap().err(),
            Some(SignInRefused::Locked(locked_until))
        );
        assert_eq!(limits.address_failures.get(), 6);
        // After the lock, the right password signs in.
        let later = locked_until + Duration::seconds(1);
        let signed_in = sign_in(&store, later, "ada", &password, &limits, None).await;
        let signed_in = signed_in.unwrap().unwrap();
        assert_eq!(signed_in.user.name, "ada");
        assert!(
            session_is_live(&store, &signed_in.token, later)
                .await
                .unwrap()
        );
    }

    #[tokio::test]
    async fn a_name_of_nobody_locks_like_an_account() {
        let (_dir, store) = store().await;
        let now = Utc.with_ymd_and_hms(2023, 11, 9, 14, 0, 0).unwrap();
        let limits = Counted::default();
        for _ in 0..4 {
            let r = sign_in(&store, now, "Nobody", "guess", &limits, None).await;
            assert_eq!(r.unwrap().err(), Some(SignInRefused::Wrong));
        }
        let fifth = sign_in(&store, now, "nobody", "guess", &limits, None).await;
        assert_eq!(
            fifth.unwrap().err(),
            Some(SignInRefused::Locked(now + Duration::minutes(LOCK_MINUTES)))
        );
        let blank = sign_in(&store, now, "", "guess", &limits, None).await;
        assert_eq!(blank.unwrap().err(), Some(SignInRefused::Incomplete));
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
        let r = sign_in(&store, now, "ed", &password, &Counted::default(), None).await;
        assert_eq!(r.unwrap().err(), Some(SignInRefused::Disabled));
    }
}
