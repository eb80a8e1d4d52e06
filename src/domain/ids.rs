//! The authority of newsdesk's `tag:` URIs (RFC 4151).

use chrono::{DateTime, Utc};
use std::fmt;

/// The host every `tag:` URI is minted under: entry ids (Atom `id`, RSS `guid`, JSON
/// Feed `id`, iCalendar `UID`), feed ids and digest ids. It is fixed when the database
/// is created (from the host of the base URL of that first start) and kept in the
/// database, so a new `NEWSDESK_BASE_URL` moves the links but keeps every id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdAuthority(String);

/// The date of feed ids, part of their form since the first release.
const FEED_DATE: &str = "2023-01-01";

impl IdAuthority {
    /// The host part of a base URL (`localhost` when it has none), as ids were made
    /// before the authority was kept.
    pub fn from_base_url(base_url: &str) -> Self {
        Self(
            url::Url::parse(base_url)
                .ok()
                .and_then(|u| u.host_str().map(str::to_ascii_lowercase))
                .unwrap_or_else(|| "localhost".into()),
        )
    }

    /// A stored authority: a host name or address, nothing else.
    pub fn parse(s: &str) -> Result<Self, String> {
        let ok = !s.is_empty()
            && s.len() <= 253
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'));
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(format!("must be a host name (got {s:?})"))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `tag:AUTHORITY,YYYY-MM-DD:item/ID`, the date being the item's creation day:
    /// nothing in it changes for the life of the item.
    pub fn item(&self, id: i64, created_at: DateTime<Utc>) -> String {
        format!("tag:{},{}:item/{id}", self.0, created_at.format("%Y-%m-%d"))
    }

    /// `tag:AUTHORITY,2023-01-01:feed/SCOPE` for a category slug or `all`.
    pub fn feed(&self, scope: &str) -> String {
        format!("tag:{},{FEED_DATE}:feed/{scope}", self.0)
    }

    /// `tag:AUTHORITY,YYYY-MM-DD:digest/ID`, the date being the digest's creation day.
    pub fn digest(&self, id: i64, created_at: DateTime<Utc>) -> String {
        format!(
            "tag:{},{}:digest/{id}",
            self.0,
            created_at.format("%Y-%m-%d")
        )
    }

    /// `tag:AUTHORITY,2023-01-01:digests/LIST`: the feed of a list's past digests.
    pub fn digest_archive(&self, list_slug: &str) -> String {
        format!("tag:{},{FEED_DATE}:digests/{list_slug}", self.0)
    }
}

impl fmt::Display for IdAuthority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn the_authority_is_the_base_urls_host() {
        let a = IdAuthority::from_base_url("https://News.Example.org:8443/site");
        assert_eq!(a.as_str(), "news.example.org");
        assert_eq!(
            IdAuthority::from_base_url("not a url").as_str(),
            "localhost"
        );
        let at = Utc.with_ymd_and_hms(2023, 10, 20, 9, 0, 0).unwrap();
        assert_eq!(a.item(41, at), "tag:news.example.org,2023-10-20:item/41");
        assert_eq!(a.feed("all"), "tag:news.example.org,2023-01-01:feed/all");
        assert_eq!(a.digest(7, at), "tag:news.example.org,2023-10-20:digest/7");
        assert_eq!(
            a.digest_archive("partners"),
            "tag:news.example.org,2023-01-01:digests/partners"
        );
    }

    #[test]
    fn a_stored_authority_is_a_host() {
        assert!(IdAuthority::parse("news.example.org").is_ok());
        assert!(IdAuthority::parse("127.0.0.1").is_ok());
        assert!(IdAuthority::parse("").is_err());
        assert!(IdAuthority::parse("a,b").is_err());
        assert!(IdAuthority::parse("a/b").is_err());
    }
}
