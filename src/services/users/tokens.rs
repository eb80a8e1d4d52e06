//! The admin API's bearer tokens: made here, shown once, stored as their hash.

use crate::domain::{FieldErrors, Text};
use crate::services::{ServiceError, ServiceResult};
use crate::store::Store;
use chrono::{DateTime, Utc};
use rand::RngCore;
use sha2::{Digest, Sha256};

/// Tokens are stored as their SHA-256: a token has 256 random bits, so a fast hash
/// is as good as a slow one and keeps each request cheap.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A new API token: 32 random bytes from the OS generator, hex-encoded, prefixed so a
/// leaked one is recognisable.
pub fn generate_api_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!("nd_{}", hex::encode(bytes))
}

/// True when the token is a stored one; its use is recorded.
pub async fn bearer_is_valid(
    store: &Store,
    token: &str,
    now: DateTime<Utc>,
) -> ServiceResult<bool> {
    Ok(store
        .users()
        .api_token_is_valid(&hash_token(token), now)
        .await?)
}

/// A new token under a name (what it is for): the name as stored and the token, which
/// is never seen again.
pub async fn create_api_token(
    store: &Store,
    now: DateTime<Utc>,
    name: &str,
) -> ServiceResult<(String, String)> {
    let mut errors = FieldErrors::new();
    let name = errors.check("name", Text::parse(name, 200, true, false));
    let name = errors.finish(|| name)?;
    let token = generate_api_token();
    store
        .users()
        .ensure_api_token(name.as_str(), &hash_token(&token), now)
        .await?;
    Ok((name.into_string(), token))
}

/// Revokes a token (any, including the caller's own).
pub async fn revoke_api_token(store: &Store, token: &str) -> ServiceResult<()> {
    if store.users().revoke_api_token(&hash_token(token)).await? {
        Ok(())
    } else {
        Err(ServiceError::not_found("token"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_tokens_are_long_distinct_and_hash_stably() {
        let a = generate_api_token();
        let b = generate_api_token();
        assert_ne!(a, b);
        assert_eq!(a.len(), 3 + 64);
        assert_eq!(hash_token(&a), hash_token(&a));
        assert_ne!(hash_token(&a), hash_token(&b));
        assert!(!hash_token(&a).contains(&a[3..]));
    }
}
