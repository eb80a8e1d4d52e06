//! Outgoing mail over lettre, handed to a [`transport::Transport`] chosen once from the
//! settings: a pool of SMTP connections when `NEWSDESK_SMTP_URL` is set, `.eml` files in
//! the outbox directory otherwise. Callers only see [`Mailer`]. Every message gets the
//! headers the large mail providers want from bulk senders (Message-ID on the sender's
//! domain, one-click List-Unsubscribe, List-Id) and, when configured, a DKIM signature.
//!
//! Errors come back classified: [`MailError::Permanent`] when the server refused the
//! message for good (5xx) or the message cannot be built, [`MailError::Temporary`] for
//! everything worth retrying later.

mod files;
mod headers;
mod skeleton;
mod smtp;
mod tls_stream;
mod transport;

use crate::config::{MailSettings, SmtpEndpoint, SmtpSecurity};
pub use headers::{ListId, ListUnsubscribe, ListUnsubscribePost};

use anyhow::Context;
use lettre::message::dkim::{DkimCanonicalization, DkimCanonicalizationType, DkimConfig};
use lettre::message::header::ContentTransferEncoding;
use lettre::message::header::HeaderName;
use lettre::message::{Body, Mailbox};
use lettre::{Address, Message};
use skeleton::Stamp;
use std::fmt;
use std::sync::Arc;
use transport::{Transport, Wire};

/// One message to one recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingMail {
    /// Already validated by the caller; checked again by lettre.
    pub to_email: String,
    /// May be empty. Refused when it holds control characters.
    pub to_name: String,
    pub subject: String,
    /// The text/plain part.
    pub text: String,
    /// The text/html part.
    pub html: String,
    /// Absolute http(s) URL: gives `List-Unsubscribe: <url>` and
    /// `List-Unsubscribe-Post: List-Unsubscribe=One-Click`.
    pub list_unsubscribe: Option<String>,
    /// Such as `partners.news.example.edu`: gives `List-Id: <partners.news.example.edu>`.
    pub list_id: Option<String>,
}

/// Why a message was not sent, and whether trying again later may help.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MailError {
    /// Try again later: the server said 4xx, could not be reached, timed out, or the
    /// configuration needs fixing (login, TLS) before any message can go out.
    Temporary(String),
    /// Do not try again: the server refused this message or recipient (5xx), or the
    /// message itself is malformed.
    Permanent(String),
}

impl MailError {
    pub fn is_temporary(&self) -> bool {
        matches!(self, Self::Temporary(_))
    }

    /// What happened, written for an admin reading the log or the delivery status.
    pub fn message(&self) -> &str {
        match self {
            Self::Temporary(m) | Self::Permanent(m) => m,
        }
    }
}

impl fmt::Display for MailError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Temporary(m) => write!(f, "temporary mail failure: {m}"),
            Self::Permanent(m) => write!(f, "permanent mail failure: {m}"),
        }
    }
}

impl std::error::Error for MailError {}

/// A message built and signed, ready to go: what [`Mailer::build_mail`] makes.
#[derive(Debug, Clone)]
pub struct BuiltMail {
    envelope: lettre::address::Envelope,
    /// The message as sent (before SMTP dot-stuffing); empty when `stuffed` holds it.
    raw: Vec<u8>,
    /// For SMTP: the message as it goes after DATA, dot-stuffed, with its final dot.
    stuffed: Option<String>,
    message_id: String,
}

/// What makes a built message the one it is besides its content: its Date, the local
/// part of its Message-ID (before `@` and the sender's domain; letters and digits) and
/// its MIME boundary (up to 70 letters and digits).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageIdentity {
    pub date: std::time::SystemTime,
    pub local_part: String,
    pub boundary: String,
}

/// A message handed over to the transport.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    /// The Message-ID header, angle brackets included: `<uuid@example.edu>`.
    pub message_id: String,
}

/// Sends [`OutgoingMail`]. Cheap to clone: clones share one connection pool.
#[derive(Clone)]
pub struct Mailer {
    inner: Arc<Inner>,
}

struct Inner {
    from: Mailbox,
    dkim: Option<DkimConfig>,
    transport: Box<dyn Transport>,
    /// The header blocks of recent messages, for the quick way to build (see
    /// [`skeleton`]).
    skeletons: skeleton::Cache,
    /// How long SMTP exchanges took, by result (`/metrics`); empty for `.eml` files.
    replies: Option<SmtpReplies>,
}

/// The time from handing a message to the SMTP transport to its final reply, by result.
#[derive(Debug, Default)]
pub struct SmtpReplies {
    pub accepted: crate::metrics::Histogram,
    pub temporary: crate::metrics::Histogram,
    pub permanent: crate::metrics::Histogram,
}

impl fmt::Debug for Mailer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Mailer({})", self.describe())
    }
}

/// The headers the DKIM signature covers. Listing the List-* headers even on messages
/// without them is deliberate: it signs their absence, so nobody can add them on the way
/// (RFC 6376 5.4). Content-Type cannot be listed: lettre writes it with the body.
const DKIM_SIGNED_HEADERS: [&str; 9] = [
    "From",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "MIME-Version",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
    "List-Id",
];

impl Mailer {
    /// Picks SMTP when `smtp_url` is set, `.eml` files in `outbox_dir` (created here)
    /// otherwise. Must run inside a Tokio runtime: the SMTP pool starts a task that closes
    /// idle connections. Nothing is connected yet; the first send opens the first
    /// connection.
    pub fn new(settings: &MailSettings) -> anyhow::Result<Self> {
        tokio::runtime::Handle::try_current()
            .context("the mailer must be built inside a Tokio runtime")?;
        let dkim = match &settings.dkim {
            Some(dkim) => Some(DkimConfig::new(
                dkim.selector.clone(),
                dkim.domain.clone(),
                dkim.key.signing_key()?,
                DKIM_SIGNED_HEADERS
                    .into_iter()
                    .map(HeaderName::new_from_ascii_str)
                    .collect(),
                // Relaxed survives the re-folding and whitespace changes that relays make.
                DkimCanonicalization {
                    header: DkimCanonicalizationType::Relaxed,
                    body: DkimCanonicalizationType::Relaxed,
                },
            )),
            None => None,
        };
        let replies = settings.smtp_url.as_ref().map(|_| SmtpReplies::default());
        let transport: Box<dyn Transport> = match &settings.smtp_url {
            Some(url) => Box::new(smtp::SmtpSender::new(
                url.expose(),
                settings.pool_size,
                settings.timeout,
            )?),
            None => Box::new(files::FileOutbox::new(&settings.outbox_dir)?),
        };
        Ok(Self {
            inner: Arc::new(Inner {
                from: settings.from.clone(),
                dkim,
                transport,
                skeletons: skeleton::Cache::default(),
                replies,
            }),
        })
    }

    /// How long SMTP exchanges took; `None` when mail goes to `.eml` files.
    pub fn smtp_replies(&self) -> Option<&SmtpReplies> {
        self.inner.replies.as_ref()
    }

    /// Where mail goes, for the start-up log: never a user name or password.
    pub fn describe(&self) -> String {
        self.inner.transport.describe()
    }

    /// Builds, signs and sends one message. Safe to call from many tasks at once (over
    /// SMTP they share the pool, each on its own connection).
    pub async fn send(&self, mail: &OutgoingMail) -> Result<Sent, MailError> {
        let built = self.build_mail(mail)?;
        self.send_built(&built).await
    }

    /// Builds and signs one message, ready to be sent with [`Mailer::send_built`]: the
    /// work of a send that needs no connection, so it can be done elsewhere and ahead.
    /// Errors are permanent: the message cannot be built.
    pub fn build_mail(&self, mail: &OutgoingMail) -> Result<BuiltMail, MailError> {
        self.build_stamped(mail, Stamp::new(self.inner.from.email.domain()))
    }

    /// [`Mailer::build_mail`] with the message's identity given rather than drawn:
    /// built again with the same identity (and the same mail), the message is the same
    /// bytes, so that a resend after a crash is the message first sent. With DKIM the
    /// signature differs in its time (`t=`) and therefore its `b=` value; everything
    /// else is the same.
    pub fn build_mail_as(
        &self,
        mail: &OutgoingMail,
        identity: &MessageIdentity,
    ) -> Result<BuiltMail, MailError> {
        let domain = self.inner.from.email.domain();
        let stamp = Stamp {
            date: identity.date,
            message_id: format!("<{}@{domain}>", identity.local_part),
            boundary: identity.boundary.clone(),
        };
        self.build_stamped(mail, stamp)
    }

    fn build_stamped(&self, mail: &OutgoingMail, stamp: Stamp) -> Result<BuiltMail, MailError> {
        let stamp = &stamp;
        // 8bit bodies spare the quoted-printable encoding (and its decoding at the other
        // end), but only a server that offers 8BITMIME may be sent them.
        let transport = &self.inner.transport;
        let eight_bit = transport.takes_8bit();
        let (to, envelope) = self.recipient(mail)?;
        // Dot-stuffed data without a signature: the same bytes, built the quick way (once
        // per kind of message through lettre, then filled in). A signature needs lettre's
        // message, and formatted data is lettre's output as it is.
        if transport.wire() == Wire::DotStuffed && self.inner.dkim.is_none() {
            let built =
                self.inner
                    .skeletons
                    .build(&self.inner.from, mail, to.clone(), eight_bit, stamp)?;
            if let Some(stuffed) = built {
                return Ok(BuiltMail {
                    envelope,
                    raw: Vec::new(),
                    stuffed: Some(stuffed),
                    message_id: stamp.message_id.clone(),
                });
            }
        }
        let message = self.build(mail, to, envelope, eight_bit, stamp)?;
        let raw = message.formatted();
        let stuffed = match transport.wire() {
            Wire::DotStuffed => smtp::dot_stuffed(&raw),
            Wire::Formatted => None,
        };
        Ok(BuiltMail {
            // Not needed once stuffed: half the memory for a message waiting its turn.
            raw: if stuffed.is_some() { Vec::new() } else { raw },
            stuffed,
            envelope: message.envelope().clone(),
            message_id: stamp.message_id.clone(),
        })
    }

    /// Sends a message built by [`Mailer::build_mail`].
    pub async fn send_built(&self, built: &BuiltMail) -> Result<Sent, MailError> {
        let started = std::time::Instant::now();
        let sent = self.inner.transport.send(built).await;
        if let Some(replies) = &self.inner.replies {
            let histogram = match &sent {
                Ok(()) => &replies.accepted,
                Err(e) if e.is_temporary() => &replies.temporary,
                Err(_) => &replies.permanent,
            };
            histogram.observe(started.elapsed());
        }
        sent?;
        Ok(Sent {
            message_id: built.message_id.clone(),
        })
    }

    /// Lets the transport learn, once, what building needs to know (whether the SMTP
    /// server takes 8bit bodies), so that messages built before the first send are
    /// built for it. Failing is fine: the sends report it.
    pub async fn warm_up(&self) {
        self.inner.transport.warm_up().await;
    }

    /// Checks what both ways of building check first: the recipient (returned as the To
    /// mailbox and the envelope) and the subject.
    fn recipient(
        &self,
        mail: &OutgoingMail,
    ) -> Result<(Mailbox, lettre::address::Envelope), MailError> {
        let permanent = MailError::Permanent;
        let address: Address = mail.to_email.trim().parse().map_err(|e| {
            permanent(format!(
                "{:?} is not a valid recipient address ({e})",
                mail.to_email
            ))
        })?;
        // lettre would encode a line break in a name harmlessly, but a control character
        // there means the validation upstream was bypassed: better to stop.
        if mail.to_name.chars().any(char::is_control) {
            return Err(permanent(format!(
                "the name of recipient {address} contains a line break or control character"
            )));
        }
        if mail.subject.chars().any(char::is_control) {
            return Err(permanent(
                "the subject contains a line break or control character".into(),
            ));
        }
        let name = mail.to_name.trim();
        // Given rather than read back from the headers (which parses them again).
        let envelope = lettre::address::Envelope::new(
            Some(self.inner.from.email.clone()),
            vec![address.clone()],
        )
        .map_err(|e| permanent(format!("the message cannot be built: {e}")))?;
        let to = Mailbox::new((!name.is_empty()).then(|| name.to_owned()), address);
        Ok((to, envelope))
    }

    /// The message through lettre's builder, signed when DKIM is configured. The
    /// Message-ID is on the sender's domain (see [`Stamp::new`]) rather than lettre's
    /// default, the host name of whatever machine runs newsdesk: that name says nothing
    /// to the reader and may be internal.
    fn build(
        &self,
        mail: &OutgoingMail,
        to: Mailbox,
        envelope: lettre::address::Envelope,
        eight_bit: bool,
        stamp: &Stamp,
    ) -> Result<Message, MailError> {
        let permanent = MailError::Permanent;
        let unsubscribe = match &mail.list_unsubscribe {
            Some(url) => Some(ListUnsubscribe::new(url).map_err(permanent)?),
            None => None,
        };
        let list_id = match &mail.list_id {
            Some(id) => Some(ListId::new(id).map_err(permanent)?),
            None => None,
        };
        let mut message = skeleton::headers(
            &self.inner.from,
            to,
            &mail.subject,
            stamp,
            unsubscribe,
            list_id,
        )
        .envelope(envelope)
        .multipart(skeleton::alternative(
            stamp,
            body(&mail.text, eight_bit),
            body(&mail.html, eight_bit),
        ))
        .map_err(|e| permanent(format!("the message cannot be built: {e}")))?;
        if let Some(dkim) = &self.inner.dkim {
            message.sign(dkim);
        }
        Ok(message)
    }
}

/// A body part as lettre would encode it (7bit, quoted-printable or base64), or when
/// `eight_bit` (the server takes 8BITMIME) as the text itself with CRLF line ends: 7bit
/// or 8bit with lines of up to 998 bytes (RFC 5322 2.1.1), which is most HTML.
fn body(text: &str, eight_bit: bool) -> Body {
    if eight_bit && let Some(crlf) = crlf_lines(text, skeleton::MAX_LINE) {
        let encoding = if text.is_ascii() {
            ContentTransferEncoding::SevenBit
        } else {
            ContentTransferEncoding::EightBit
        };
        return Body::dangerous_pre_encoded(crlf, encoding);
    }
    Body::new(text.to_owned())
}

/// `text` with CRLF for each LF, or `None` when it holds a CR or NUL, or a line longer
/// than `max_line` bytes.
fn crlf_lines(text: &str, max_line: usize) -> Option<Vec<u8>> {
    // Searches for one byte at a time run on memchr.
    if text.as_bytes().contains(&b'\r') || text.as_bytes().contains(&b'\0') {
        return None;
    }
    let mut out = Vec::with_capacity(text.len() + text.len() / 32 + 2);
    let mut lines = text.split('\n');
    if let Some(first) = lines.next() {
        if first.len() > max_line {
            return None;
        }
        out.extend_from_slice(first.as_bytes());
    }
    for line in lines {
        if line.len() > max_line {
            return None;
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(line.as_bytes());
    }
    Some(out)
}

/// Sorts lettre's SMTP errors into retry-later and give-up, with a message that helps an
/// admin: the server and its reply, never the credentials.
fn classify(e: &lettre::transport::smtp::Error, endpoint: &SmtpEndpoint) -> MailError {
    let server = format!("{}:{}", endpoint.host, endpoint.port);
    let detail = std::error::Error::source(e)
        .map(ToString::to_string)
        .unwrap_or_default();
    if let Some(code) = e.status() {
        let code = code.to_string();
        let reply = format!("{code} {detail}").trim_end().to_owned();
        // Refused logins and demands for encryption are 5xx, but they say nothing about
        // the message: every message would fail the same way until the settings are fixed,
        // so the outbox must keep them (RFC 4954 codes 530, 534, 535, 538).
        if ["530", "534", "535", "538"].contains(&code.as_str()) {
            return MailError::Temporary(format!(
                "the SMTP server {server} refused the login or wants encryption ({reply}); \
                 check the user, password and tls= of NEWSDESK_SMTP_URL"
            ));
        }
        return if e.is_permanent() {
            MailError::Permanent(format!(
                "the SMTP server {server} refused the message: {reply}"
            ))
        } else {
            MailError::Temporary(format!(
                "the SMTP server {server} asked to try later: {reply}"
            ))
        };
    }
    if e.is_timeout() {
        return MailError::Temporary(format!("timed out connecting to the SMTP server {server}"));
    }
    if e.is_tls() {
        return MailError::Temporary(format!(
            "TLS with the SMTP server {server} failed ({e}); check tls= of NEWSDESK_SMTP_URL \
             (smtps:// for port 465, ?tls=required for STARTTLS) and the server's certificate"
        ));
    }
    if e.is_client() {
        return MailError::Temporary(format!("cannot send through the SMTP server {server}: {e}"));
    }
    MailError::Temporary(format!(
        "could not reach or lost the connection to the SMTP server {server}: {e}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn settings(outbox: &std::path::Path) -> MailSettings {
        MailSettings {
            smtp_url: None,
            outbox_dir: outbox.to_owned(),
            from: "Partner News <news@partners.example.edu>".parse().unwrap(),
            dkim: None,
            pool_size: 2,
            timeout: Duration::from_secs(5),
        }
    }

    fn mail() -> OutgoingMail {
        OutgoingMail {
            to_email: "ada@example.org".into(),
            to_name: "Ada".into(),
            subject: "Weekly digest".into(),
            text: "Hello".into(),
            html: "<p>Hello</p>".into(),
            list_unsubscribe: None,
            list_id: None,
        }
    }

    #[tokio::test]
    async fn describe_names_the_server_and_never_the_credentials() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = settings(dir.path());
        s.smtp_url = Some(crate::config::Secret::new(
            "smtp://news:hunter2secret@mail.example.edu:2587?tls=required",
        ));
        let mailer = Mailer::new(&s).unwrap();
        let described = mailer.describe();
        assert_eq!(
            described,
            "SMTP to mail.example.edu:2587 (STARTTLS, with login)"
        );
        assert!(!format!("{mailer:?}").contains("hunter2secret"));
    }

    #[tokio::test]
    async fn without_smtp_the_outbox_directory_is_created_and_described() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = dir.path().join("outbox");
        let mailer = Mailer::new(&settings(&outbox)).unwrap();
        assert!(outbox.is_dir());
        assert_eq!(mailer.describe(), format!("files in {}/", outbox.display()));
    }

    #[test]
    fn the_mailer_refuses_to_be_built_outside_a_runtime() {
        let dir = tempfile::tempdir().unwrap();
        assert!(Mailer::new(&settings(dir.path())).is_err());
    }

    #[tokio::test]
    async fn malformed_messages_are_refused_for_good() {
        let dir = tempfile::tempdir().unwrap();
        let mailer = Mailer::new(&settings(dir.path())).unwrap();
        type Change = fn(&mut OutgoingMail);
        let cases: [(&str, Change); 5] = [
            ("bad address", |m| m.to_email = "not an address".into()),
            ("line break in name", |m| {
                m.to_name = "Ada\r\nBcc: evil@example.org".into()
            }),
            ("line break in subject", |m| {
                m.subject = "Hi\r\nBcc: evil@example.org".into()
            }),
            ("relative unsubscribe link", |m| {
                m.list_unsubscribe = Some("/unsubscribe/x".into())
            }),
            ("bad list id", |m| m.list_id = Some("no dots".into())),
        ];
        for (why, change) in cases {
            let mut m = mail();
            change(&mut m);
            let err = mailer.send(&m).await.unwrap_err();
            assert!(!err.is_temporary(), "{why}: {err}");
        }
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[tokio::test]
    async fn message_ids_are_on_the_domain_of_the_sender() {
        let dir = tempfile::tempdir().unwrap();
        let mailer = Mailer::new(&settings(dir.path())).unwrap();
        let sent = mailer.send(&mail()).await.unwrap();
        assert!(sent.message_id.starts_with('<'), "{}", sent.message_id);
        assert!(
            sent.message_id.ends_with("@partners.example.edu>"),
            "{}",
            sent.message_id
        );
    }
}
