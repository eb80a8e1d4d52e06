//! Tokens for mailed links: made at random, stored only as hashes.

use crate::domain::TokenPurpose;
use crate::store::Store;
use chrono::{DateTime, Utc};
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::fmt::Write as _;

/// How long a confirmation link works.
pub const CONFIRM_DAYS: i64 = 7;

/// Hex digits of a token's time prefix: microseconds since 1970 (until the year 2112).
const PREFIX_LEN: usize = 13;
/// Hex digits of a token's random part, and of the SHA-256 stored for it.
const SECRET_LEN: usize = 64;

/// A token for a mailed link: a time prefix (13 hex digits, microseconds, strictly
/// increasing within the process), then 32 random bytes (256 bits) from a CSPRNG
/// seeded by the OS, URL-safe hex. The prefix is no secret, and none is needed: it
/// makes the stored hashes of tokens minted together neighbours in the index, so a
/// batch of them is written to a few pages instead of one page each.
pub fn new_token() -> String {
    static LAST: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64);
    let prefix = match LAST.fetch_update(
        std::sync::atomic::Ordering::Relaxed,
        std::sync::atomic::Ordering::Relaxed,
        |last| Some(now.max(last + 1)),
    ) {
        Ok(last) | Err(last) => now.max(last + 1),
    };
    let mut bytes = [0u8; SECRET_LEN / 2];
    rand::thread_rng().fill_bytes(&mut bytes);
    let mut token = String::with_capacity(PREFIX_LEN + SECRET_LEN);
    // Written in place, without a formatter per digit.
    write!(token, "{prefix:013x}").expect("writing to a String");
    push_hex(&mut token, &bytes);
    token
}

/// Hex digits of the random part of a digest's link token ([`delivery_link_token`]).
const LINK_SECRET_LEN: usize = 32;

/// The token of the personal links (unsubscribe, preferences) in one digest message:
/// `d`, the delivery's id, `-`, then 16 random bytes (128 bits) from a CSPRNG seeded by
/// the OS, URL-safe hex. Its SHA-256 is kept in the delivery's own row, written with
/// the mark that records the message as sent: a digest to many readers writes no token
/// rows (and no index entries) of its own, and the id finds the row to check.
/// Returns the token and the hash to store.
pub fn delivery_link_token(delivery_id: i64) -> (String, String) {
    let mut bytes = [0u8; LINK_SECRET_LEN / 2];
    rand::thread_rng().fill_bytes(&mut bytes);
    delivery_link_token_from(delivery_id, bytes)
}

/// The same token with its secret part given: the delivery worker derives it from a
/// key kept in the database (an HMAC of the delivery's id), so that every attempt at a
/// delivery carries the same links, and the links of a copy sent twice both work.
pub fn delivery_link_token_from(
    delivery_id: i64,
    bytes: [u8; LINK_SECRET_LEN / 2],
) -> (String, String) {
    let mut token = String::with_capacity(24 + LINK_SECRET_LEN);
    token.push('d');
    token.push_str(&delivery_id.to_string());
    token.push('-');
    token.push_str(&hex::encode(bytes));
    let hash = link_hash(&token);
    (token, hash)
}

/// What is stored of a digest's link token: the first 128 bits of its SHA-256, as hard
/// to invert as the token is to guess, and half the bytes added to each delivery row (a
/// row that grows splits pages).
fn link_hash(token: &str) -> String {
    hex::encode(&Sha256::digest(token.as_bytes())[..16])
}

/// The delivery id and the stored hash of a digest's link token (32 hex digits), when
/// `token` has that form.
pub fn delivery_link(token: &str) -> Option<(i64, String)> {
    let (id, secret) = token.strip_prefix('d')?.split_once('-')?;
    let well_formed = !id.is_empty()
        && id.len() <= 18
        && id.bytes().all(|b| b.is_ascii_digit())
        && secret.len() == LINK_SECRET_LEN
        && secret
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if !well_formed {
        return None;
    }
    Some((id.parse().ok()?, link_hash(token)))
}

/// Appends `bytes` as lower-case hex, as `hex::encode` spells them, without its
/// character-by-character String.
fn push_hex(out: &mut String, bytes: &[u8; SECRET_LEN / 2]) {
    let mut digits = [0u8; SECRET_LEN];
    hex::encode_to_slice(bytes, &mut digits).expect("two digits a byte");
    out.push_str(std::str::from_utf8(&digits).expect("hex digits are ASCII"));
}

/// What is stored of a token: its SHA-256, so a leaked database holds no live links,
/// after the token's time prefix (tokens from [`new_token`]). Tokens of the earlier
/// form (64 hex digits, no prefix) are stored as the hash alone and keep working. For a
/// digest's link token: `d`, the delivery id, `-`, the hash ([`delivery_link`]).
pub fn token_hash(token: &str) -> String {
    if let Some((delivery, hash)) = delivery_link(token) {
        return format!("d{delivery}-{hash}");
    }
    let digest: [u8; SECRET_LEN / 2] = Sha256::digest(token.as_bytes()).into();
    let prefixed = token.len() == PREFIX_LEN + SECRET_LEN
        && token
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    let mut stored = String::with_capacity(PREFIX_LEN + SECRET_LEN);
    if prefixed {
        stored.push_str(&token[..PREFIX_LEN]);
    }
    push_hex(&mut stored, &digest);
    stored
}

/// Makes and stores a token; returns it for the link.
pub async fn mint_token(
    store: &Store,
    subscriber_id: i64,
    purpose: TokenPurpose,
    list_id: Option<i64>,
    expires_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> crate::store::StoreResult<String> {
    let token = new_token();
    store
        .tokens()
        .save(
            &token_hash(&token),
            subscriber_id,
            purpose,
            list_id,
            expires_at,
            now,
        )
        .await?;
    Ok(token)
}

/// `list.host` for the List-Id header, the host being the site's id authority (fixed
/// with the database, so mail filters on it survive a move of the site).
pub fn list_id_header(list_slug: &str, ids: &crate::domain::IdAuthority) -> String {
    format!("{list_slug}.{ids}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_digest_link_token_names_its_delivery_and_is_stored_as_a_hash() {
        let (token, stored) = delivery_link_token(4711);
        assert!(token.starts_with("d4711-"), "{token}");
        assert_eq!(token.len(), "d4711-".len() + LINK_SECRET_LEN);
        let (id, hash) = delivery_link(&token).unwrap();
        assert_eq!(id, 4711);
        assert_eq!(hash, hex::encode(&Sha256::digest(token.as_bytes())[..16]));
        assert_eq!(token_hash(&token), format!("d4711-{hash}"));
        assert_eq!(stored, hash);
        assert_ne!(delivery_link_token(4711).0, token, "random");
    }

    #[test]
    fn other_strings_are_not_digest_link_tokens() {
        let secret = "0123456789abcdef0123456789abcdef";
        for bad in [
            format!("d-{secret}"),
            format!("dx1-{secret}"),
            format!("d1-{}", &secret[1..]),
            format!("d1-{}A", &secret[1..]),
            format!("d1234567890123456789-{secret}"),
            format!("e1-{secret}"),
            "d1".to_owned(),
        ] {
            assert_eq!(delivery_link(&bad), None, "{bad}");
            assert!(!token_hash(&bad).contains('-'), "{bad}");
        }
        // Other tokens keep their form.
        let old = new_token();
        assert_eq!(token_hash(&old).len(), PREFIX_LEN + SECRET_LEN);
    }

    #[test]
    fn tokens_and_their_hashes_are_spelt_as_hex_encode_spells_them() {
        let token = new_token();
        assert_eq!(token.len(), PREFIX_LEN + SECRET_LEN);
        assert!(
            token
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        );
        assert!(new_token()[..PREFIX_LEN] > token[..PREFIX_LEN]);
        let digest = hex::encode(Sha256::digest(token.as_bytes()));
        assert_eq!(
            token_hash(&token),
            format!("{}{digest}", &token[..PREFIX_LEN])
        );
        // The earlier form: the hash alone.
        let old = "ab".repeat(SECRET_LEN / 2);
        assert_eq!(
            token_hash(&old),
            hex::encode(Sha256::digest(old.as_bytes()))
        );
    }
}
