//! The subscriber's side: tokens for mailed links, confirmation mails.

use crate::app::App;
use crate::domain::{MailingList, MembershipStatus, TokenPurpose};
use crate::mail::OutgoingMail;
use crate::store::Store;
use chrono::{DateTime, Duration, Utc};
use rand::RngCore;
use serde::Serialize;
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
) -> anyhow::Result<String> {
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

/// `list.host` for the List-Id header.
pub fn list_id_header(list_slug: &str, base_url: &str) -> String {
    format!("{list_slug}.{}", crate::feeds::tag_authority(base_url))
}

#[derive(Serialize)]
struct ConfirmMail<'a> {
    name: &'a str,
    list_name: &'a str,
    site_name: &'a str,
    site_url: &'a str,
    confirm_url: String,
    unsubscribe_url: String,
    valid_days: i64,
}

/// Sends the mail whose link confirms the address and joins the list.
pub async fn send_confirmation(
    state: &App,
    subscriber_id: i64,
    list: &MailingList,
) -> anyhow::Result<()> {
    let now = state.clock.now();
    let subscriber = state
        .store
        .people()
        .subscriber(subscriber_id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("subscriber {subscriber_id} vanished"))?;
    let store = &state.store;
    let base = &state.settings.base_url;
    let confirm = mint_token(
        store,
        subscriber_id,
        TokenPurpose::Confirm,
        Some(list.id),
        Some(now + Duration::days(CONFIRM_DAYS)),
        now,
    )
    .await?;
    let unsubscribe = mint_token(
        store,
        subscriber_id,
        TokenPurpose::Unsubscribe,
        Some(list.id),
        None,
        now,
    )
    .await?;
    let unsubscribe_url = format!("{base}/unsubscribe/{unsubscribe}");
    let data = ConfirmMail {
        name: &subscriber.name,
        list_name: &list.name,
        site_name: &state.settings.site_name,
        site_url: base,
        confirm_url: format!("{base}/subscribe/confirm/{confirm}"),
        unsubscribe_url: unsubscribe_url.clone(),
        valid_days: CONFIRM_DAYS,
    };
    let rendered = state
        .templates
        .render_email("confirm", &subscriber.language, &data)?;
    let mail = OutgoingMail {
        to_email: subscriber.email.clone(),
        to_name: subscriber.name.clone(),
        subject: format!("Please confirm: {}", list.name),
        text: rendered.text,
        html: rendered.html,
        list_unsubscribe: Some(unsubscribe_url),
        list_id: Some(list_id_header(&list.slug, base)),
    };
    state
        .mailer
        .send(&mail)
        .await
        .map_err(|e| anyhow::anyhow!("sending the confirmation mail: {e}"))?;
    Ok(())
}

/// Sends a confirmation in the background so the answer to the request neither waits
/// for the mail server nor reveals by its timing whether a mail went out.
pub fn send_confirmation_later(state: &App, subscriber_id: i64, list: MailingList) {
    let state = state.clone();
    tokio::spawn(async move {
        if let Err(e) = send_confirmation(&state, subscriber_id, &list).await {
            tracing::warn!(
                error = format!("{e:#}"),
                subscriber_id,
                list = list.slug,
                "confirmation mail not sent"
            );
        }
    });
}

/// An admin adds a contact (through the API or the pages), optionally on a list. A
/// stated consent, or a single opt-in list, confirms them at once; otherwise, on a
/// list, they stay pending and are mailed a confirmation link. Returns the subscriber
/// and, with a list, where they stand on it.
pub async fn add_subscriber(
    state: &App,
    draft: &crate::domain::SubscriberDraft,
    consent: Option<crate::domain::Consent>,
    list: Option<MailingList>,
    now: DateTime<Utc>,
) -> crate::store::StoreResult<(crate::domain::Subscriber, Option<MembershipStatus>)> {
    let single = list
        .as_ref()
        .is_some_and(|l| l.opt_in == crate::domain::OptIn::Single);
    let consent = consent.or_else(|| {
        single.then(|| crate::domain::Consent {
            source: "admin: single opt-in list".into(),
            ip: None,
        })
    });
    let subscriber = state
        .store
        .people()
        .create_subscriber(
            draft,
            crate::domain::JoinedVia::Admin,
            consent.as_ref(),
            now,
        )
        .await?;
    let Some(list) = list else {
        return Ok((subscriber, None));
    };
    let status = if consent.is_some() {
        MembershipStatus::Confirmed
    } else {
        MembershipStatus::Pending
    };
    state
        .store
        .lists()
        .set_membership(list.id, subscriber.id, status, "added by an admin", now)
        .await?;
    if status == MembershipStatus::Pending {
        send_confirmation_later(state, subscriber.id, list);
    }
    Ok((subscriber, Some(status)))
}

/// An admin (`by`) puts an existing subscriber on a list: confirmed at once with a
/// stated consent, on a single opt-in list, or when their address is confirmed
/// already; otherwise pending, with a confirmation mail.
pub async fn add_to_list(
    state: &App,
    list: &MailingList,
    subscriber: &crate::domain::Subscriber,
    consent: Option<&str>,
    by: &str,
    now: DateTime<Utc>,
) -> crate::store::StoreResult<MembershipStatus> {
    let confirmed = consent.is_some()
        || list.opt_in == crate::domain::OptIn::Single
        || subscriber.status == crate::domain::SubscriberStatus::Confirmed;
    let status = if confirmed {
        MembershipStatus::Confirmed
    } else {
        MembershipStatus::Pending
    };
    let why = match consent {
        Some(c) => format!("added by {by}; consent: {c}"),
        None => format!("added by {by}"),
    };
    state
        .store
        .lists()
        .set_membership(list.id, subscriber.id, status, &why, now)
        .await?;
    if status == MembershipStatus::Pending {
        send_confirmation_later(state, subscriber.id, list.clone());
    }
    Ok(status)
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
