use serde::{Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// A URL-safe identifier: lowercase ASCII letters, digits and single hyphens, 1 to 100
/// characters, starting and ending with a letter or digit.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Slug(String);

impl Slug {
    pub const MAX_LEN: usize = 100;

    pub fn parse(s: &str) -> Result<Self, String> {
        if s.is_empty() {
            return Err("must not be empty".into());
        }
        if s.len() > Self::MAX_LEN {
            return Err(format!("must be at most {} characters", Self::MAX_LEN));
        }
        if !s
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err("may hold only lowercase letters a-z, digits and hyphens".into());
        }
        if s.starts_with('-') || s.ends_with('-') || s.contains("--") {
            return Err("must not start or end with a hyphen or hold two in a row".into());
        }
        if s == "all" {
            return Err("\"all\" is reserved for the feed of everything".into());
        }
        Ok(Self(s.to_owned()))
    }

    /// Builds a slug from free text (a title): ASCII letters and digits kept, the rest
    /// turned into single hyphens. Falls back to `item` when nothing is left.
    pub fn from_title(title: &str) -> Self {
        let mut out = String::new();
        for c in title.chars() {
            if c.is_ascii_alphanumeric() {
                out.push(c.to_ascii_lowercase());
            } else if !out.ends_with('-') && !out.is_empty() {
                out.push('-');
            }
            if out.len() >= 80 {
                break;
            }
        }
        let trimmed = out.trim_matches('-');
        Slug::parse(trimmed).unwrap_or_else(|_| Self("item".into()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for Slug {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Slug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for Slug {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

/// Text of bounded length with no control characters (newlines and tabs allowed only
/// where `multiline` says so). Leading and trailing white space is trimmed, and line
/// ends become LF.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Text(String);

impl Text {
    pub fn parse(
        s: &str,
        max_chars: usize,
        required: bool,
        multiline: bool,
    ) -> Result<Self, String> {
        let normalised = normalise_line_ends(s);
        let s = normalised.trim();
        if required && s.is_empty() {
            return Err("must not be empty".into());
        }
        let count = s.chars().count();
        if count > max_chars {
            return Err(format!(
                "must be at most {max_chars} characters (got {count})"
            ));
        }
        let bad = s
            .chars()
            .find(|&c| c.is_control() && !(multiline && (c == '\n' || c == '\t')));
        if let Some(c) = bad {
            return Err(format!(
                "must not contain control characters (found U+{:04X})",
                c as u32
            ));
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// CRLF and a lone CR become LF. Normalised here, where text enters, because XML
/// parsers turn a literal CR into LF (XML 1.0, 2.11) while JSON keeps it: text stored
/// with CRs would read differently in Atom and RSS than in JSON Feed and the API.
/// Borrowed when there is no CR, as in almost all input.
fn normalise_line_ends(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.contains('\r') {
        return std::borrow::Cow::Borrowed(s);
    }
    std::borrow::Cow::Owned(s.replace("\r\n", "\n").replace('\r', "\n"))
}

impl AsRef<str> for Text {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// A BCP 47 language tag such as `en`, `zh`, `zh-Hans` or `pt-BR` (checked for shape).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Language(String);

impl Language {
    pub fn parse(s: &str) -> Result<Self, String> {
        let mut parts = s.split('-');
        let primary = parts.next().unwrap_or_default();
        let primary_ok =
            (2..=3).contains(&primary.len()) && primary.bytes().all(|b| b.is_ascii_alphabetic());
        let rest_ok = parts
            .all(|p| (1..=8).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_alphanumeric()));
        if !primary_ok || !rest_ok {
            return Err(format!(
                "must be a language tag such as \"en\", \"zh\" or \"zh-Hans\" (got {s:?})"
            ));
        }
        Ok(Self(primary.to_ascii_lowercase() + &s[primary.len()..]))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for Language {
    fn default() -> Self {
        Self("en".into())
    }
}

impl AsRef<str> for Language {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// An IANA time zone name such as `Asia/Shanghai`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeZone(chrono_tz::Tz);

impl TimeZone {
    pub fn parse(s: &str) -> Result<Self, String> {
        chrono_tz::Tz::from_str(s)
            .map(Self)
            .map_err(|_| format!("must be an IANA time zone such as \"Asia/Shanghai\" (got {s:?})"))
    }

    pub fn tz(&self) -> chrono_tz::Tz {
        self.0
    }

    pub fn name(&self) -> &'static str {
        self.0.name()
    }
}

impl Default for TimeZone {
    fn default() -> Self {
        Self(chrono_tz::UTC)
    }
}

/// An absolute http or https URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebUrl(String);

impl WebUrl {
    pub fn parse(s: &str) -> Result<Self, String> {
        let url =
            url::Url::parse(s.trim()).map_err(|e| format!("must be an absolute URL ({e})"))?;
        if url.scheme() != "http" && url.scheme() != "https" {
            return Err("must be an http or https URL".into());
        }
        if url.host_str().is_none() {
            return Err("must name a host".into());
        }
        if s.len() > 2000 {
            return Err("must be at most 2000 characters".into());
        }
        Ok(Self(url.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for WebUrl {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn slug_accepts_lowercase_words_with_hyphens() {
        for ok in ["news", "news-events", "a1", "2023-unevoc"] {
            assert!(Slug::parse(ok).is_ok(), "{ok} should be a slug");
        }
    }

    #[test]
    fn slug_rejects_malformed_input() {
        let cases = [
            ("", "empty"),
            ("News", "uppercase"),
            ("-news", "leading hyphen"),
            ("news-", "trailing hyphen"),
            ("a--b", "double hyphen"),
            ("a b", "space"),
            ("a/b", "slash"),
            ("all", "reserved"),
            ("ü", "non-ascii"),
        ];
        for (input, why) in cases {
            assert!(
                Slug::parse(input).is_err(),
                "{input:?} ({why}) should be rejected"
            );
        }
        assert!(
            Slug::parse(&"a".repeat(101)).is_err(),
            "too long should be rejected"
        );
    }

    #[test]
    fn slug_from_title_keeps_ascii_words() {
        assert_eq!(
            Slug::from_title("The “2023 UNEVOC Network” <b>Seminar</b>!").as_str(),
            "the-2023-unevoc-network-b-seminar-b"
        );
        assert_eq!(Slug::from_title("研讨会").as_str(), "item");
    }

    #[test]
    fn text_rejects_control_characters_and_overlong_values() {
        assert!(Text::parse("a\r\nb", 10, true, false).is_err());
        assert!(Text::parse("a\r\nb", 10, true, true).is_ok());
        assert!(Text::parse("a\rb", 10, true, false).is_err());
        assert!(Text::parse("  ", 10, true, false).is_err());
        assert!(Text::parse("abcdef", 5, true, false).is_err());
        assert_eq!(
            Text::parse(" 研讨会 ", 3, true, false).unwrap().as_str(),
            "研讨会"
        );
    }

    #[test]
    fn text_line_ends_become_lf() {
        let text = Text::parse("a\r\nb\rc\r\n\r\nd\n\re", 100, false, true).unwrap();
        assert_eq!(text.as_str(), "a\nb\nc\n\nd\n\ne");
        // Counted after normalising: a CRLF is one character.
        assert!(Text::parse("ab\r\ncd", 5, true, true).is_ok());
        assert!(matches!(
            normalise_line_ends("no carriage return"),
            std::borrow::Cow::Borrowed(_)
        ));
    }

    #[test]
    fn language_timezone_and_url_parse() {
        assert_eq!(Language::parse("EN").unwrap().as_str(), "en");
        assert!(Language::parse("zh-Hans").is_ok());
        assert!(Language::parse("english").is_err());
        assert!(TimeZone::parse("Asia/Shanghai").is_ok());
        assert!(TimeZone::parse("Mars/Olympus").is_err());
        assert!(WebUrl::parse("https://meet.example.org/x").is_ok());
        assert!(WebUrl::parse("javascript:alert(1)").is_err());
        assert!(WebUrl::parse("/relative").is_err());
    }

    proptest! {
        #[test]
        fn every_parsed_slug_round_trips(s in "[a-z0-9]{1,10}(-[a-z0-9]{1,10}){0,3}") {
            prop_assume!(s != "all");
            let slug = Slug::parse(&s).unwrap();
            prop_assert_eq!(slug.as_str(), s.as_str());
        }

        #[test]
        fn slug_from_any_title_is_valid(title in "\\PC{0,60}") {
            let slug = Slug::from_title(&title);
            prop_assert!(Slug::parse(slug.as_str()).is_ok());
        }
    }
}
