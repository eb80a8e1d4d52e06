//! Mail settings, checked at start-up so that a bad SMTP URL or DKIM key stops the start
//! instead of failing every send later.

use super::{Env, Secret, args_from, number};
use anyhow::{Context, bail};
use base64::Engine;
use lettre::message::Mailbox;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// Where mail goes and how it is signed.
#[derive(Debug, Clone)]
pub struct MailSettings {
    /// `smtp://`, `smtp://...?tls=required` (STARTTLS) or `smtps://` (TLS). May hold a
    /// password, hence a `Secret`. Without it, mail is written as `.eml` files.
    pub smtp_url: Option<Secret>,
    /// Where `.eml` files go when there is no SMTP URL.
    pub outbox_dir: PathBuf,
    /// `From` of every message and the envelope sender; its domain names Message-IDs.
    pub from: Mailbox,
    pub dkim: Option<DkimSettings>,
    /// Most SMTP connections open at once, hence most messages in flight.
    pub pool_size: u32,
    /// Longest wait for a connection and for the whole exchange of one message.
    pub timeout: Duration,
}

/// A DKIM key and where its public half is published (`SELECTOR._domainkey.DOMAIN`).
#[derive(Debug, Clone)]
pub struct DkimSettings {
    pub selector: String,
    /// The `d=` domain; DMARC wants it aligned with the domain of `From`.
    pub domain: String,
    pub key: DkimKey,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DkimAlgorithm {
    Rsa,
    Ed25519,
}

/// A DKIM private key, already checked and held in the form lettre reads: PKCS#1 PEM for
/// RSA, base64 of the 32-byte seed for Ed25519. Its `Debug` shows only the algorithm.
#[derive(Clone)]
pub struct DkimKey {
    algorithm: DkimAlgorithm,
    lettre_form: Secret,
}

impl fmt::Debug for DkimKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DkimKey({:?}, ***)", self.algorithm)
    }
}

impl DkimKey {
    /// Reads an RSA key (PKCS#1 `BEGIN RSA PRIVATE KEY` or PKCS#8 `BEGIN PRIVATE KEY`, at
    /// least 1024 bits as RFC 8301 requires) or an Ed25519 key (PKCS#8, what
    /// `openssl genpkey -algorithm ed25519` writes).
    pub fn from_pem(pem: &str) -> anyhow::Result<Self> {
        // One trait for both key types: rsa and ed25519-dalek share the pkcs8 crate.
        use ed25519_dalek::pkcs8::DecodePrivateKey as _;
        use rsa::pkcs1::{DecodeRsaPrivateKey as _, EncodeRsaPrivateKey as _, LineEnding};
        use rsa::traits::PublicKeyParts as _;

        let pem = pem.trim();
        if pem.contains("ENCRYPTED PRIVATE KEY") {
            bail!("the DKIM key is encrypted; give the key without a passphrase");
        }
        let rsa = if pem.starts_with("-----BEGIN RSA PRIVATE KEY-----") {
            Some(rsa::RsaPrivateKey::from_pkcs1_pem(pem).context("not a valid PKCS#1 RSA key")?)
        } else if pem.starts_with("-----BEGIN PRIVATE KEY-----") {
            rsa::RsaPrivateKey::from_pkcs8_pem(pem).ok()
        } else {
            bail!(
                "the DKIM key must be a PEM file starting with -----BEGIN PRIVATE KEY----- or -----BEGIN RSA PRIVATE KEY-----"
            );
        };
        if let Some(rsa) = rsa {
            let bits = rsa.n().bits();
            if bits < 1024 {
                bail!(
                    "the RSA DKIM key has {bits} bits; verifiers ignore keys under 1024 bits (RFC 8301), use 2048"
                );
            }
            let pkcs1 = rsa
                .to_pkcs1_pem(LineEnding::LF)
                .context("re-encoding the RSA key")?;
            return Ok(Self {
                algorithm: DkimAlgorithm::Rsa,
                lettre_form: Secret::new(pkcs1.as_str()),
            });
        }
        let ed25519 = ed25519_dalek::SigningKey::from_pkcs8_pem(pem)
            .ok()
            .context("the DKIM key is neither an RSA nor an Ed25519 private key")?;
        Ok(Self {
            algorithm: DkimAlgorithm::Ed25519,
            lettre_form: Secret::new(
                base64::engine::general_purpose::STANDARD.encode(ed25519.to_bytes()),
            ),
        })
    }

    pub fn algorithm(&self) -> DkimAlgorithm {
        self.algorithm
    }

    pub(crate) fn signing_key(&self) -> anyhow::Result<lettre::message::dkim::DkimSigningKey> {
        let algorithm = match self.algorithm {
            DkimAlgorithm::Rsa => lettre::message::dkim::DkimSigningAlgorithm::Rsa,
            DkimAlgorithm::Ed25519 => lettre::message::dkim::DkimSigningAlgorithm::Ed25519,
        };
        lettre::message::dkim::DkimSigningKey::new(self.lettre_form.expose(), algorithm)
            .map_err(|e| anyhow::anyhow!("lettre does not accept the DKIM key: {e}"))
    }
}

const SMTP_URL: &str = "NEWSDESK_SMTP_URL";
const OUTBOX_DIR: &str = "NEWSDESK_OUTBOX_DIR";
const MAIL_FROM: &str = "NEWSDESK_MAIL_FROM";
const DKIM_SELECTOR: &str = "NEWSDESK_DKIM_SELECTOR";
const DKIM_DOMAIN: &str = "NEWSDESK_DKIM_DOMAIN";
const DKIM_KEY_FILE: &str = "NEWSDESK_DKIM_PRIVATE_KEY_FILE";
const POOL_SIZE: &str = "NEWSDESK_SMTP_POOL_SIZE";
const TIMEOUT_SECS: &str = "NEWSDESK_SMTP_TIMEOUT_SECS";

/// The mail flags and variables as given; [`MailArgs::settings`] checks them.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Mail")]
pub struct MailArgs {
    /// Outgoing mail: smtp://host:25 (plain), smtp://user:pass@host:587?tls=required
    /// (STARTTLS), smtps://user:pass@host:465 (TLS). Unset: .eml files in the outbox
    /// directory.
    #[arg(long, global = true, value_name = "URL", env = SMTP_URL, hide_env_values = true,
        value_parser = Secret::parse_arg)]
    pub smtp_url: Option<Secret>,
    /// Where .eml files go without an SMTP URL.
    #[arg(long, global = true, value_name = "DIR", env = OUTBOX_DIR, hide_env_values = true,
        default_value = "outbox")]
    pub outbox_dir: PathBuf,
    /// Sender of every message; its domain names the Message-IDs.
    #[arg(long, global = true, value_name = "MAILBOX", env = MAIL_FROM, hide_env_values = true,
        default_value = "newsdesk <newsdesk@localhost>")]
    pub mail_from: String,
    /// DKIM selector (DKIM: all three of selector, domain and key file, or none).
    #[arg(long, global = true, value_name = "SELECTOR", env = DKIM_SELECTOR,
        hide_env_values = true)]
    pub dkim_selector: Option<String>,
    /// DKIM signing domain (d=), aligned with the domain of the sender.
    #[arg(long, global = true, value_name = "DOMAIN", env = DKIM_DOMAIN, hide_env_values = true)]
    pub dkim_domain: Option<String>,
    /// DKIM private key: RSA (2048 bits) or Ed25519, PEM without a passphrase.
    #[arg(long, global = true, value_name = "FILE", env = DKIM_KEY_FILE, hide_env_values = true)]
    pub dkim_private_key_file: Option<String>,
    /// SMTP connections (and messages in flight) at most (1 to 100).
    #[arg(long, global = true, value_name = "N", env = POOL_SIZE, hide_env_values = true,
        default_value = "4")]
    pub smtp_pool_size: String,
    /// Longest wait for one message's SMTP exchange, in seconds (1 to 3600).
    #[arg(long, global = true, value_name = "SECS", env = TIMEOUT_SECS, hide_env_values = true,
        default_value = "30")]
    pub smtp_timeout_secs: String,
}

impl MailSettings {
    /// Reads the `NEWSDESK_SMTP_*`, `NEWSDESK_MAIL_FROM`, `NEWSDESK_OUTBOX_DIR` and
    /// `NEWSDESK_DKIM_*` variables that `get` gives, through the same parser as the
    /// command line. Every error names the variable at fault.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        args_from::<MailArgs>(&Env::from_lookup(get))?.settings()
    }
}

impl MailArgs {
    /// Checks every value: the SMTP URL, the sender, the DKIM key (read now, so that a
    /// missing file stops the start).
    pub fn settings(&self) -> anyhow::Result<MailSettings> {
        let smtp_url = match &self.smtp_url {
            Some(url) => {
                let url = url.expose().trim();
                SmtpEndpoint::parse(url).with_context(|| format!("{SMTP_URL} is not usable"))?;
                Some(Secret::new(url))
            }
            None => None,
        };
        let from_text = &self.mail_from;
        let from: Mailbox = from_text.trim().parse().map_err(|e| {
            anyhow::anyhow!(
                "{MAIL_FROM} must be an address such as `News <news@example.edu>` (got {from_text:?}: {e})"
            )
        })?;
        Ok(MailSettings {
            smtp_url,
            outbox_dir: self.outbox_dir.clone(),
            from,
            dkim: self.dkim()?,
            pool_size: number(POOL_SIZE, &self.smtp_pool_size, 1, 100)?,
            timeout: Duration::from_secs(
                number(TIMEOUT_SECS, &self.smtp_timeout_secs, 1, 3600)?.into(),
            ),
        })
    }

    fn dkim(&self) -> anyhow::Result<Option<DkimSettings>> {
        let (selector, domain, key_file) = (
            &self.dkim_selector,
            &self.dkim_domain,
            &self.dkim_private_key_file,
        );
        if selector.is_none() && domain.is_none() && key_file.is_none() {
            return Ok(None);
        }
        // Half a DKIM configuration is a mistake: signing nothing silently would hurt delivery.
        let missing: Vec<&str> = [
            (DKIM_SELECTOR, selector.is_none()),
            (DKIM_DOMAIN, domain.is_none()),
            (DKIM_KEY_FILE, key_file.is_none()),
        ]
        .into_iter()
        .filter_map(|(name, absent)| absent.then_some(name))
        .collect();
        let (Some(selector), Some(domain), Some(key_file)) = (selector, domain, key_file) else {
            bail!(
                "DKIM needs {DKIM_SELECTOR}, {DKIM_DOMAIN} and {DKIM_KEY_FILE} together; missing: {}",
                missing.join(", ")
            );
        };
        let selector = selector.trim().to_owned();
        if !is_domain_like(&selector) {
            bail!(
                "{DKIM_SELECTOR} must be letters, digits, '-' and '_' in dot-separated labels (got {selector:?})"
            );
        }
        let domain = domain.trim().trim_end_matches('.').to_ascii_lowercase();
        if !is_domain_like(&domain) || !domain.contains('.') {
            bail!("{DKIM_DOMAIN} must be a domain name such as example.edu (got {domain:?})");
        }
        let key_file = key_file.trim();
        let pem = std::fs::read_to_string(key_file)
            .with_context(|| format!("{DKIM_KEY_FILE}: cannot read {key_file}"))?;
        let key =
            DkimKey::from_pem(&pem).with_context(|| format!("{DKIM_KEY_FILE} ({key_file})"))?;
        Ok(Some(DkimSettings {
            selector,
            domain,
            key,
        }))
    }
}

/// Dot-separated labels of ASCII letters, digits, `-` and `_`. This keeps selector and
/// domain from carrying `;` or line breaks into the DKIM-Signature header.
fn is_domain_like(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// How the connection to the SMTP server is secured, as lettre reads the URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpSecurity {
    /// `smtp://` without `tls=`: plain text, for a relay on the same machine or network.
    Plain,
    /// `smtp://...?tls=required`: STARTTLS, refusing to go on without it.
    StartTls,
    /// `smtp://...?tls=opportunistic`: STARTTLS when the server offers it.
    StartTlsIfOffered,
    /// `smtps://`: TLS from the first byte.
    Tls,
}

/// The parts of an SMTP URL that may be shown: no user name, no password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpEndpoint {
    pub host: String,
    pub port: u16,
    pub security: SmtpSecurity,
    pub has_credentials: bool,
}

impl SmtpEndpoint {
    /// Checks an SMTP URL the way lettre's `from_url` will read it, with errors that never
    /// repeat the URL (it may hold a password).
    pub fn parse(url: &str) -> anyhow::Result<Self> {
        let parsed = url::Url::parse(url).map_err(|e| {
            anyhow::anyhow!("not a URL ({e}); expected smtp://host:port or smtps://user:pass@host")
        })?;
        let host = parsed
            .host_str()
            .filter(|h| !h.is_empty())
            .context("the URL names no host")?
            .to_owned();
        let tls = parsed
            .query_pairs()
            .find(|(k, _)| k == "tls")
            .map(|(_, v)| v.into_owned());
        let security = match (parsed.scheme(), tls.as_deref()) {
            ("smtp", None) => SmtpSecurity::Plain,
            ("smtp", Some("required")) => SmtpSecurity::StartTls,
            ("smtp", Some("opportunistic")) => SmtpSecurity::StartTlsIfOffered,
            ("smtp", Some(other)) => {
                bail!(
                    "tls={other} is not understood; use tls=required (STARTTLS) or tls=opportunistic"
                )
            }
            ("smtps", _) => SmtpSecurity::Tls,
            (scheme, _) => bail!("the scheme must be smtp or smtps (got {scheme})"),
        };
        // lettre's defaults for a URL without a port.
        let default_port = match security {
            SmtpSecurity::Plain => 25,
            SmtpSecurity::StartTls | SmtpSecurity::StartTlsIfOffered => 587,
            SmtpSecurity::Tls => 465,
        };
        Ok(Self {
            host,
            port: parsed.port().unwrap_or(default_port),
            security,
            has_credentials: parsed.password().is_some(),
        })
    }
}

impl fmt::Display for SmtpEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let security = match self.security {
            SmtpSecurity::Plain => "plain text",
            SmtpSecurity::StartTls => "STARTTLS",
            SmtpSecurity::StartTlsIfOffered => "STARTTLS if offered",
            SmtpSecurity::Tls => "TLS",
        };
        let login = if self.has_credentials {
            ", with login"
        } else {
            ""
        };
        write!(f, "{}:{} ({security}{login})", self.host, self.port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    pub(crate) const RSA_PKCS8_PEM: &str = include_str!("../../tests/fixtures/dkim-test-rsa.pem");

    fn settings(vars: &[(&str, &str)]) -> anyhow::Result<MailSettings> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        MailSettings::from_lookup(|k| map.get(k).cloned())
    }

    fn key_file(pem: &str) -> tempfile::NamedTempFile {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), pem).unwrap();
        file
    }

    fn ed25519_pkcs8_pem() -> String {
        use ed25519_dalek::pkcs8::EncodePrivateKey as _;
        let key = ed25519_dalek::SigningKey::from_bytes(&[7u8; 32]);
        key.to_pkcs8_pem(ed25519_dalek::pkcs8::spki::der::pem::LineEnding::LF)
            .unwrap()
            .to_string()
    }

    #[test]
    fn defaults_write_files_into_outbox_as_newsdesk_at_localhost() {
        let s = settings(&[]).unwrap();
        assert!(s.smtp_url.is_none());
        assert_eq!(s.outbox_dir, PathBuf::from("outbox"));
        assert_eq!(s.from.email.to_string(), "newsdesk@localhost");
        assert_eq!(s.from.name.as_deref(), Some("newsdesk"));
        assert!(s.dkim.is_none());
        assert_eq!(s.pool_size, 4);
        assert_eq!(s.timeout, Duration::from_secs(30));
    }

    #[test]
    fn empty_values_count_as_unset() {
        let s = settings(&[(SMTP_URL, ""), (MAIL_FROM, " "), (DKIM_SELECTOR, "")]).unwrap();
        assert!(s.smtp_url.is_none());
        assert!(s.dkim.is_none());
    }

    #[test]
    fn every_value_is_read() {
        let file = key_file(RSA_PKCS8_PEM);
        let path = file.path().to_str().unwrap();
        let s = settings(&[
            (SMTP_URL, "smtp://u:p@mail.example.edu:2587?tls=required"),
            (OUTBOX_DIR, "/var/spool/newsdesk"),
            (MAIL_FROM, "Partner News <news@partners.example.edu>"),
            (DKIM_SELECTOR, "nd2024"),
            (DKIM_DOMAIN, "Partners.Example.edu"),
            (DKIM_KEY_FILE, path),
            (POOL_SIZE, "8"),
            (TIMEOUT_SECS, "5"),
        ])
        .unwrap();
        assert_eq!(
            s.smtp_url.as_ref().map(Secret::expose),
            Some("smtp://u:p@mail.example.edu:2587?tls=required")
        );
        assert_eq!(s.outbox_dir, PathBuf::from("/var/spool/newsdesk"));
        assert_eq!(s.from.email.domain(), "partners.example.edu");
        let dkim = s.dkim.unwrap();
        assert_eq!(dkim.selector, "nd2024");
        assert_eq!(dkim.domain, "partners.example.edu");
        assert_eq!(dkim.key.algorithm(), DkimAlgorithm::Rsa);
        assert_eq!(s.pool_size, 8);
        assert_eq!(s.timeout, Duration::from_secs(5));
    }

    #[test]
    fn bad_values_are_named() {
        let cases = [
            (SMTP_URL, "mail.example.edu:25", SMTP_URL),
            (SMTP_URL, "http://mail.example.edu", SMTP_URL),
            (SMTP_URL, "smtp://mail.example.edu?tls=yes", SMTP_URL),
            (SMTP_URL, "smtp://", SMTP_URL),
            (MAIL_FROM, "not an address", MAIL_FROM),
            (MAIL_FROM, "News <news@>", MAIL_FROM),
            (POOL_SIZE, "0", POOL_SIZE),
            (POOL_SIZE, "many", POOL_SIZE),
            (TIMEOUT_SECS, "0", TIMEOUT_SECS),
            (TIMEOUT_SECS, "-1", TIMEOUT_SECS),
            (TIMEOUT_SECS, "99999", TIMEOUT_SECS),
        ];
        for (key, value, named) in cases {
            let err = format!("{:#}", settings(&[(key, value)]).unwrap_err());
            assert!(err.contains(named), "{key}={value}: {err}");
        }
    }

    #[test]
    fn smtp_url_errors_do_not_repeat_the_password() {
        for url in [
            "smtp://user:hunter2secret@mail.example.edu?tls=maybe",
            "imap://user:hunter2secret@mail.example.edu",
        ] {
            let err = format!("{:#}", settings(&[(SMTP_URL, url)]).unwrap_err());
            assert!(!err.contains("hunter2secret"), "{err}");
        }
    }

    #[test]
    fn debug_output_hides_the_smtp_password_and_the_dkim_key() {
        let file = key_file(RSA_PKCS8_PEM);
        let s = settings(&[
            (SMTP_URL, "smtps://news:hunter2secret@mail.example.edu"),
            (DKIM_SELECTOR, "s1"),
            (DKIM_DOMAIN, "example.edu"),
            (DKIM_KEY_FILE, file.path().to_str().unwrap()),
        ])
        .unwrap();
        let debug = format!("{s:?}");
        assert!(!debug.contains("hunter2secret"), "{debug}");
        assert!(!debug.contains("PRIVATE KEY"), "{debug}");
        assert!(!debug.contains(&RSA_PKCS8_PEM[40..80]), "{debug}");
    }

    #[test]
    fn dkim_needs_all_three_variables_and_names_the_missing_one() {
        let file = key_file(RSA_PKCS8_PEM);
        let path = file.path().to_str().unwrap();
        let cases: [(&[(&str, &str)], &str); 3] = [
            (
                &[(DKIM_DOMAIN, "example.edu"), (DKIM_KEY_FILE, path)],
                DKIM_SELECTOR,
            ),
            (&[(DKIM_SELECTOR, "s1"), (DKIM_KEY_FILE, path)], DKIM_DOMAIN),
            (
                &[(DKIM_SELECTOR, "s1"), (DKIM_DOMAIN, "example.edu")],
                DKIM_KEY_FILE,
            ),
        ];
        for (vars, missing) in cases {
            let err = format!("{:#}", settings(vars).unwrap_err());
            assert!(err.contains(&format!("missing: {missing}")), "{err}");
        }
    }

    #[test]
    fn bad_dkim_values_are_named() {
        let rsa = key_file(RSA_PKCS8_PEM);
        let rsa = rsa.path().to_str().unwrap().to_owned();
        let garbage = key_file("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n");
        let garbage = garbage.path().to_str().unwrap().to_owned();
        let not_pem = key_file("ssh-ed25519 AAAAC3Nza...");
        let not_pem = not_pem.path().to_str().unwrap().to_owned();
        let cases = [
            ("s1; x=y", "example.edu", rsa.as_str(), DKIM_SELECTOR),
            ("s1", "example edu", rsa.as_str(), DKIM_DOMAIN),
            ("s1", "localhost", rsa.as_str(), DKIM_DOMAIN),
            ("s1", "example.edu", "/nonexistent/dkim.pem", DKIM_KEY_FILE),
            ("s1", "example.edu", garbage.as_str(), DKIM_KEY_FILE),
            ("s1", "example.edu", not_pem.as_str(), DKIM_KEY_FILE),
        ];
        for (selector, domain, file, named) in cases {
            let err = format!(
                "{:#}",
                settings(&[
                    (DKIM_SELECTOR, selector),
                    (DKIM_DOMAIN, domain),
                    (DKIM_KEY_FILE, file),
                ])
                .unwrap_err()
            );
            assert!(err.contains(named), "{selector} {domain} {file}: {err}");
        }
    }

    #[test]
    fn rsa_keys_in_pkcs1_and_pkcs8_and_ed25519_keys_are_accepted_and_usable() {
        use rsa::pkcs1::{EncodeRsaPrivateKey as _, LineEnding};
        use rsa::pkcs8::DecodePrivateKey as _;
        let pkcs1 = rsa::RsaPrivateKey::from_pkcs8_pem(RSA_PKCS8_PEM)
            .unwrap()
            .to_pkcs1_pem(LineEnding::LF)
            .unwrap();
        for (pem, algorithm) in [
            (RSA_PKCS8_PEM.to_owned(), DkimAlgorithm::Rsa),
            (pkcs1.to_string(), DkimAlgorithm::Rsa),
            (ed25519_pkcs8_pem(), DkimAlgorithm::Ed25519),
        ] {
            let key = DkimKey::from_pem(&pem).unwrap();
            assert_eq!(key.algorithm(), algorithm);
            key.signing_key().unwrap();
        }
    }

    #[test]
    fn small_and_encrypted_rsa_keys_are_refused_with_the_reason() {
        use rsa::pkcs8::{EncodePrivateKey as _, LineEnding};
        let small = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 512)
            .unwrap()
            .to_pkcs8_pem(LineEnding::LF)
            .unwrap();
        let err = format!("{:#}", DkimKey::from_pem(&small).unwrap_err());
        assert!(err.contains("512 bits"), "{err}");

        let encrypted =
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----";
        let err = format!("{:#}", DkimKey::from_pem(encrypted).unwrap_err());
        assert!(err.contains("encrypted"), "{err}");
    }

    #[test]
    fn smtp_endpoints_show_host_port_and_security_only() {
        let cases = [
            ("smtp://127.0.0.1:2525", "127.0.0.1:2525 (plain text)"),
            (
                "smtp://relay.example.edu",
                "relay.example.edu:25 (plain text)",
            ),
            (
                "smtp://u:secret@mail.example.edu?tls=required",
                "mail.example.edu:587 (STARTTLS, with login)",
            ),
            (
                "smtp://mail.example.edu:2587?tls=opportunistic",
                "mail.example.edu:2587 (STARTTLS if offered)",
            ),
            (
                "smtps://u:secret@mail.example.edu",
                "mail.example.edu:465 (TLS, with login)",
            ),
        ];
        for (url, shown) in cases {
            assert_eq!(
                SmtpEndpoint::parse(url).unwrap().to_string(),
                shown,
                "{url}"
            );
        }
    }
}
