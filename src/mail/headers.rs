//! The mailing-list headers lettre does not know: List-Unsubscribe (RFC 2369),
//! List-Unsubscribe-Post (RFC 8058) and List-Id (RFC 2919). Each value is checked when
//! built, so what reaches the message is plain ASCII without spaces or line breaks.

use lettre::message::header::{Header, HeaderName, HeaderValue};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// `List-Unsubscribe: <https://...>`: the one-click unsubscribe URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListUnsubscribe(String);

impl ListUnsubscribe {
    /// Accepts an absolute http or https URL. It is stored in its serialized form, in which
    /// spaces, `<`, `>` and non-ASCII characters are percent-encoded.
    pub fn new(url: &str) -> Result<Self, String> {
        let parsed = url::Url::parse(url)
            .map_err(|e| format!("the unsubscribe link is not an absolute URL ({e})"))?;
        if parsed.scheme() != "https" && parsed.scheme() != "http" {
            return Err(format!(
                "the unsubscribe link must be http or https (got {})",
                parsed.scheme()
            ));
        }
        let serialized = parsed.as_str();
        // A header line may not pass 998 characters (RFC 5322 2.1.1) and this one cannot
        // be folded: there is no space in a URL.
        if serialized.len() > 900 {
            return Err("the unsubscribe link is longer than 900 characters".into());
        }
        Ok(Self(serialized.to_owned()))
    }

    pub fn url(&self) -> &str {
        &self.0
    }
}

impl Header for ListUnsubscribe {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("List-Unsubscribe")
    }

    fn parse(s: &str) -> Result<Self, BoxError> {
        let inner = s
            .trim()
            .strip_prefix('<')
            .and_then(|rest| rest.split_once('>'))
            .map(|(url, _)| url)
            .ok_or("List-Unsubscribe must hold <URL>")?;
        Ok(Self::new(inner)?)
    }

    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), format!("<{}>", self.0))
    }
}

/// `List-Unsubscribe-Post: List-Unsubscribe=One-Click`: the URL in List-Unsubscribe
/// unsubscribes on a bare POST, so mail providers may show their own button (RFC 8058).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListUnsubscribePost;

impl Header for ListUnsubscribePost {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("List-Unsubscribe-Post")
    }

    fn parse(s: &str) -> Result<Self, BoxError> {
        if s.trim() == "List-Unsubscribe=One-Click" {
            Ok(Self)
        } else {
            Err("List-Unsubscribe-Post must be List-Unsubscribe=One-Click".into())
        }
    }

    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), "List-Unsubscribe=One-Click".into())
    }
}

/// `List-Id: <partners.news.example.edu>`: lets readers filter the list's mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListId(String);

impl ListId {
    /// Accepts a dot-atom with at least one dot (RFC 2919: a label, a dot, a namespace).
    pub fn new(id: &str) -> Result<Self, String> {
        // atext of RFC 5322 3.2.3, plus the dots between atoms.
        let atext = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c);
        let valid = id.len() <= 255
            && id.contains('.')
            && id
                .split('.')
                .all(|atom| !atom.is_empty() && atom.chars().all(atext));
        if valid {
            Ok(Self(id.to_owned()))
        } else {
            Err(format!(
                "the list id must look like partners.news.example.edu (got {id:?})"
            ))
        }
    }

    pub fn id(&self) -> &str {
        &self.0
    }
}

impl Header for ListId {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("List-Id")
    }

    fn parse(s: &str) -> Result<Self, BoxError> {
        // A List-Id may start with a description: `Partner news <partners.example.edu>`.
        let inner = s
            .rsplit_once('<')
            .and_then(|(_, rest)| rest.split_once('>'))
            .map(|(id, _)| id)
            .ok_or("List-Id must hold <list.id>")?;
        Ok(Self::new(inner)?)
    }

    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), format!("<{}>", self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsubscribe_links_must_be_absolute_web_urls() {
        let cases = [
            ("/unsubscribe/abc", "relative"),
            ("mailto:leave@example.edu", "mailto"),
            ("javascript:alert(1)", "javascript"),
            ("ftp://example.edu/x", "ftp"),
        ];
        for (url, why) in cases {
            assert!(ListUnsubscribe::new(url).is_err(), "{why}: {url}");
        }
        let long = format!("https://example.edu/{}", "a".repeat(900));
        assert!(ListUnsubscribe::new(&long).is_err());
    }

    #[test]
    fn unsubscribe_links_cannot_carry_line_breaks_or_brackets() {
        let link = ListUnsubscribe::new(
            "https://news.example.edu/unsubscribe/a b>\r\nBcc: x@evil.example",
        )
        .unwrap();
        assert!(
            link.url()
                .chars()
                .all(|c| c.is_ascii_graphic() && c != '>' && c != '<'),
            "{}",
            link.url()
        );
        let parsed = ListUnsubscribe::parse(&format!("<{}>", link.url())).unwrap();
        assert_eq!(parsed, link);
    }

    #[test]
    fn list_ids_are_dot_atoms_with_a_dot() {
        for good in ["partners.news.example.edu", "weekly_digest.example.edu"] {
            assert_eq!(ListId::new(good).unwrap().id(), good);
        }
        let cases = [
            ("", "empty"),
            ("nodot", "no dot"),
            ("a..b", "empty atom"),
            ("a.b>\r\nBcc: x", "line break"),
            ("a b.example", "space"),
            ("liste.exämple.edu", "non-ASCII"),
        ];
        for (id, why) in cases {
            assert!(ListId::new(id).is_err(), "{why}: {id:?}");
        }
        assert_eq!(
            ListId::parse("Partner news <partners.example.edu>")
                .unwrap()
                .id(),
            "partners.example.edu"
        );
    }
}
