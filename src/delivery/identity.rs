//! What makes a digest message the same message each time it is built: its Message-ID,
//! Date, MIME boundary and the token of its personal links, all derived from the
//! delivery (its id, and when it was first claimed) and a key kept in the database
//! (migration 0008). A message resent after a crash (sent, but its mark never
//! committed) is byte for byte the one first sent, from whichever instance: receivers
//! and mailbox providers that drop a repeated Message-ID drop it, and the links of
//! both copies work.

use crate::mail::MessageIdentity;
use crate::services::subscriptions::delivery_link_token_from;
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

/// The database's delivery key, read once per worker.
pub(super) struct DeliveryKey {
    key: Vec<u8>,
}

/// Characters of a derived MIME boundary (as lettre draws them: 40).
const BOUNDARY_LEN: usize = 40;

impl DeliveryKey {
    pub(super) fn new(secret: &str) -> Self {
        Self {
            key: secret.as_bytes().to_vec(),
        }
    }

    /// HMAC-SHA256 (RFC 2104) of `purpose`, `:` and the delivery's id under the key.
    fn mac(&self, purpose: &str, delivery_id: i64) -> [u8; 32] {
        self.mac_raw(format!("{purpose}:{delivery_id}").as_bytes())
    }

    /// HMAC-SHA256 (RFC 2104) of `data` under the key.
    fn mac_raw(&self, data: &[u8]) -> [u8; 32] {
        const BLOCK: usize = 64;
        let mut key = [0u8; BLOCK];
        if self.key.len() > BLOCK {
            key[..32].copy_from_slice(&Sha256::digest(&self.key));
        } else {
            key[..self.key.len()].copy_from_slice(&self.key);
        }
        let pad = |byte: u8| key.map(|k| k ^ byte);
        let inner = Sha256::new()
            .chain_update(pad(0x36))
            .chain_update(data)
            .finalize();
        Sha256::new()
            .chain_update(pad(0x5c))
            .chain_update(inner)
            .finalize()
            .into()
    }

    /// The Message-ID's local part, boundary and Date of a delivery's message.
    pub(super) fn message(&self, delivery_id: i64, built_at: DateTime<Utc>) -> MessageIdentity {
        let id = self.mac("message-id", delivery_id);
        let boundary = self.mac("boundary", delivery_id);
        const ALPHANUMERIC: &[u8; 62] =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        // 32 bytes give 32 characters; the other 8 from a second round.
        let more = self.mac("boundary-2", delivery_id);
        let boundary = boundary
            .iter()
            .chain(&more)
            .take(BOUNDARY_LEN)
            .map(|b| char::from(ALPHANUMERIC[usize::from(*b) % ALPHANUMERIC.len()]))
            .collect();
        MessageIdentity {
            date: built_at.into(),
            local_part: hex::encode(&id[..16]),
            boundary,
        }
    }

    /// The token of the message's personal links and its hash to store.
    pub(super) fn link_token(&self, delivery_id: i64) -> (String, String) {
        let mac = self.mac("links", delivery_id);
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&mac[..16]);
        delivery_link_token_from(delivery_id, bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc_4231_test_case_2() {
        let key = DeliveryKey::new("Jefe");
        assert_eq!(
            hex::encode(key.mac_raw(b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn the_same_delivery_gets_the_same_identity_and_others_differ() {
        let key = DeliveryKey::new("0123456789abcdef0123456789abcdef");
        let at = chrono::TimeZone::timestamp_opt(&Utc, 1_700_000_000, 0).unwrap();
        assert_eq!(key.message(7, at), key.message(7, at));
        assert_eq!(key.link_token(7), key.link_token(7));
        assert_ne!(key.message(7, at).local_part, key.message(8, at).local_part);
        assert_ne!(key.message(7, at).boundary, key.message(8, at).boundary);
        assert_ne!(key.link_token(7).0, key.link_token(8).0);
        let other = DeliveryKey::new("another key of the same length, 32");
        assert_ne!(key.link_token(7).0, other.link_token(7).0);
        let m = key.message(7, at);
        assert_eq!(m.boundary.len(), 40);
        assert!(m.boundary.bytes().all(|b| b.is_ascii_alphanumeric()));
        assert!(key.link_token(7).0.starts_with("d7-"));
    }
}
