use std::fmt;

/// An email address of the common form `local@domain.tld`, checked strictly enough that
/// it can go into a mail header unquoted: no quoted local parts, comments, IP literals,
/// white space or control characters. The domain is kept in lowercase; `key()` is the
/// whole address in lowercase, for case-insensitive uniqueness.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

const LOCAL_SPECIALS: &str = "!#$%&'*+-/=?^_`{|}~.";

impl Email {
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if s.is_empty() {
            return Err("must not be empty".into());
        }
        if s.len() > 254 {
            return Err("must be at most 254 characters".into());
        }
        if let Some(c) = s.chars().find(|c| c.is_control() || c.is_whitespace()) {
            return Err(format!(
                "must not contain white space or control characters (found U+{:04X})",
                c as u32
            ));
        }
        let (local, domain) = s
            .rsplit_once('@')
            .ok_or_else(|| format!("must be an address such as name@example.org (got {s:?})"))?;
        if local.is_empty() || local.len() > 64 {
            return Err("must have 1 to 64 characters before the @".into());
        }
        if !local
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || LOCAL_SPECIALS.contains(c))
        {
            return Err(
                "may hold only letters, digits and !#$%&'*+-/=?^_`{|}~. before the @".into(),
            );
        }
        if local.starts_with('.') || local.ends_with('.') || local.contains("..") {
            return Err(
                "must not start or end with a dot or hold two dots in a row before the @".into(),
            );
        }
        let labels: Vec<&str> = domain.split('.').collect();
        if labels.len() < 2 {
            return Err(format!(
                "must have a domain with a dot after the @ (got {domain:?})"
            ));
        }
        for label in &labels {
            let ok = !label.is_empty()
                && label.len() <= 63
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !label.starts_with('-')
                && !label.ends_with('-');
            if !ok {
                return Err(format!(
                    "has an invalid domain {domain:?} (ASCII letters, digits and hyphens in dot-separated parts)"
                ));
            }
        }
        if !labels
            .last()
            .is_some_and(|tld| tld.chars().all(|c| c.is_ascii_alphabetic()) && tld.len() >= 2)
        {
            return Err(format!("has an invalid top-level domain in {domain:?}"));
        }
        Ok(Self(format!("{local}@{}", domain.to_ascii_lowercase())))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The address in lowercase: two addresses with the same key are the same subscriber.
    pub fn key(&self) -> String {
        self.0.to_lowercase()
    }

    pub fn domain(&self) -> &str {
        self.0.rsplit_once('@').map(|(_, d)| d).unwrap_or_default()
    }
}

impl AsRef<str> for Email {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn common_addresses_parse_and_lowercase_the_domain() {
        let e = Email::parse(" Zhong.Zhuoya+unevoc@SZPU.Example.EDU ").unwrap();
        assert_eq!(e.as_str(), "Zhong.Zhuoya+unevoc@szpu.example.edu");
        assert_eq!(e.key(), "zhong.zhuoya+unevoc@szpu.example.edu");
        assert_eq!(e.domain(), "szpu.example.edu");
    }

    #[test]
    fn invalid_and_hostile_addresses_are_refused() {
        let cases = [
            ("", "empty"),
            ("plainaddress", "no @"),
            ("@example.org", "no local part"),
            ("a@", "no domain"),
            ("a@localhost", "no dot in domain"),
            ("a b@example.org", "space"),
            (
                "a@example.org\r\nBcc: victim@example.org",
                "header injection",
            ),
            ("\"quoted\"@example.org", "quoted local part"),
            ("a..b@example.org", "double dot"),
            (".a@example.org", "leading dot"),
            ("a@-example.org", "label starts with hyphen"),
            ("a@example..org", "empty label"),
            ("a@[127.0.0.1]", "IP literal"),
            ("a@example.c0m", "numeric tld"),
            ("ü@example.org", "non-ASCII local"),
            ("a@exämple.org", "non-ASCII domain"),
            ("a<script>@example.org", "markup"),
        ];
        for (input, why) in cases {
            assert!(
                Email::parse(input).is_err(),
                "{input:?} ({why}) should be refused"
            );
        }
        assert!(Email::parse(&format!("{}@example.org", "a".repeat(65))).is_err());
        assert!(Email::parse(&format!("a@{}.org", "b".repeat(250))).is_err());
    }

    proptest! {
        #[test]
        fn parsed_addresses_have_no_header_breaking_characters(s in "\\PC{0,40}") {
            if let Ok(e) = Email::parse(&s) {
                prop_assert!(!e.as_str().contains(['\r', '\n', ' ', '<', '>', '"', ',', ';']));
            }
        }
    }
}
