//! The SMTP side of the mailer: a pool of lettre `AsyncSmtpConnection`s on sockets opened
//! here.
//!
//! Why not lettre's `AsyncSmtpTransport`: its sockets are opened without `TCP_NODELAY`,
//! and lettre writes the end of the data (`\r\n.\r\n`) as a separate small write. Nagle's
//! algorithm holds that write back until the server acknowledges the message, and the
//! server delays its acknowledgement (up to 40 ms on Linux) because it is waiting for that
//! very line: every message cost 40 ms per connection, some 100 messages a second with
//! four connections. Here the socket is opened with `TCP_NODELAY` and handed to lettre's
//! connection, which still speaks SMTP, STARTTLS (or TLS from the first byte), AUTH and
//! the dot-stuffing of the data. lettre's pool also sent NOOP before every message; this
//! one checks with NOOP only connections that sat idle for a while.
//!
//! A connection carries one message at a time and goes back to the pool after a reply
//! (with RSET after a refusal), so the next message skips the greeting, EHLO, TLS and
//! AUTH. It is dropped when the connection failed or the send timed out (its state is
//! unknown then), and closed with QUIT after [`IDLE_TIMEOUT`] unused.

#![allow(deprecated)] // lettre's `AsyncNetworkStream`, deprecated as public API, wraps TLS.

use super::tls_stream::TlsStream;
use super::transport::{Transport, Wire};
use super::{BuiltMail, MailError, SmtpEndpoint, SmtpSecurity};
use anyhow::Context as _;
use lettre::address::Envelope;
use lettre::transport::smtp::Error as SmtpError;
use lettre::transport::smtp::authentication::{Credentials, DEFAULT_MECHANISMS};
use lettre::transport::smtp::client::{
    AsyncNetworkStream, AsyncSmtpConnection, AsyncTokioStream, TlsParameters,
};
use lettre::transport::smtp::commands::{Data, Ehlo, Mail, Quit, Rcpt, Rset};
use lettre::transport::smtp::extension::{ClientId, Extension, MailBodyParameter, MailParameter};
use lettre::transport::smtp::response::Response;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, Instant};

/// A pooled connection unused this long is closed with QUIT (lettre's pool default too).
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// A pooled connection unused this long is checked with NOOP before it carries a message.
/// One used moments ago is not: that would cost a round trip per message.
const CHECK_AFTER_IDLE: Duration = Duration::from_secs(5);
/// Longest wait for the answer to RSET or QUIT, which are courtesies.
const COURTESY_TIMEOUT: Duration = Duration::from_secs(5);
/// What an exchange gets past its time-out to read an answer already in the socket.
const AFTER_THE_TIMEOUT: Duration = Duration::from_secs(1);

/// Sends messages over a pool of at most `pool_size` connections.
pub(super) struct SmtpSender {
    endpoint: SmtpEndpoint,
    server: Server,
    timeout: Duration,
    /// [`CHECK_AFTER_IDLE`] but in tests.
    check_after_idle: Duration,
    idle: Arc<Mutex<Vec<Parked>>>,
    /// Each message in flight holds a permit and at most one connection, so there are
    /// never more than `pool_size` connections: relays answer more with 421.
    in_flight: tokio::sync::Semaphore,
    /// The last connection opened was offered 8BITMIME: messages may go as 8bit text
    /// rather than quoted-printable. False until a connection says so.
    eight_bit_mime: AtomicBool,
    /// [`Transport::warm_up`] ran once.
    tried_ahead: AtomicBool,
}

/// How to reach and greet the server, read once from the URL the way lettre's
/// `AsyncSmtpTransport::from_url` reads it.
struct Server {
    /// For connecting: an IPv6 literal without its brackets.
    host: String,
    port: u16,
    encryption: Encryption,
    credentials: Option<Credentials>,
    hello: ClientId,
}

enum Encryption {
    None,
    StartTls(TlsParameters),
    StartTlsIfOffered(TlsParameters),
    /// TLS from the first byte (`smtps://`).
    Wrapper(TlsParameters),
}

/// A lettre connection, ready for MAIL FROM.
struct Connection {
    smtp: AsyncSmtpConnection,
    /// The server offers PIPELINING (RFC 2920): MAIL, RCPT and DATA go in one write.
    pipelining: bool,
    /// Out of step with the server: never to be reused.
    broken: bool,
}

struct Parked {
    conn: Connection,
    since: Instant,
}

/// Where a send was when it failed or ran out of time: tells whether the message may have
/// been accepted, and whether another connection may be tried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Taking a pooled connection or opening one (greeting, EHLO, TLS, AUTH).
    Connecting,
    /// MAIL, RCPT, DATA: nothing can have been delivered yet.
    Envelope,
    /// The message was sent, or is being sent: the final reply decides.
    Data,
}

/// What went wrong, before it is classified into a [`MailError`].
enum Failure {
    Connect(io::Error),
    Tls(SmtpError),
    Smtp(SmtpError),
    /// The message needs an extension the server lacks.
    Unsupported(&'static str),
}

impl From<SmtpError> for Failure {
    fn from(e: SmtpError) -> Self {
        Self::Smtp(e)
    }
}

impl Failure {
    /// The connection is gone or in an unknown state.
    fn lost_the_connection(&self) -> bool {
        match self {
            Self::Connect(_) | Self::Tls(_) => true,
            Self::Smtp(e) => connection_lost(e),
            Self::Unsupported(_) => false,
        }
    }
}

/// No reply at all (a network error, an unreadable or missing answer), or 421, which says
/// the server is closing the connection.
fn connection_lost(e: &SmtpError) -> bool {
    e.status().is_none_or(|code| code.to_string() == "421")
}

impl SmtpSender {
    pub(super) fn new(url: &str, pool_size: u32, timeout: Duration) -> anyhow::Result<Self> {
        Self::with_idle_limits(url, pool_size, timeout, IDLE_TIMEOUT, CHECK_AFTER_IDLE)
    }

    fn with_idle_limits(
        url: &str,
        pool_size: u32,
        timeout: Duration,
        idle_timeout: Duration,
        check_after_idle: Duration,
    ) -> anyhow::Result<Self> {
        let endpoint = SmtpEndpoint::parse(url).context("NEWSDESK_SMTP_URL is not usable")?;
        let server = Server::from_url(url, &endpoint)?;
        let idle = Arc::new(Mutex::new(Vec::new()));
        close_idle_connections(Arc::downgrade(&idle), idle_timeout);
        Ok(Self {
            endpoint,
            server,
            timeout,
            check_after_idle,
            idle,
            in_flight: tokio::sync::Semaphore::new(pool_size as usize),
            eight_bit_mime: AtomicBool::new(false),
            tried_ahead: AtomicBool::new(false),
        })
    }

    /// Sends one message. The timeout covers taking or opening a connection and the whole
    /// exchange, not the wait for a free connection: a busy pool is normal.
    #[cfg(test)]
    pub(super) async fn send(&self, envelope: &Envelope, raw: &[u8]) -> Result<(), MailError> {
        self.send_stuffed(envelope, raw, None).await
    }

    /// As [`SmtpSender::send`], with the data as it goes after DATA when it was made
    /// already ([`dot_stuffed`]).
    async fn send_stuffed(
        &self,
        envelope: &Envelope,
        raw: &[u8],
        stuffed: Option<&str>,
    ) -> Result<(), MailError> {
        let _permit = self
            .in_flight
            .acquire()
            .await
            .map_err(|_| MailError::Temporary("the mailer is shutting down".into()))?;
        let mut phase = Phase::Connecting;
        // On time-out the attempt is dropped, and its connection with it: a connection
        // stopped mid-conversation is never reused.
        let attempt = {
            let deadline = tokio::time::Instant::now() + self.timeout;
            let attempt = self.attempt(envelope, raw, stuffed, &mut phase);
            tokio::pin!(attempt);
            match tokio::time::timeout_at(deadline, &mut attempt).await {
                // When the process did not run for a while (SIGSTOP, a stalled VM), its
                // timer and the server's answer (the 250 after the data, say) are both
                // there when it wakes, and the timer may be seen first. The exchange gets
                // a moment more to read what came in: a message the server took is then
                // recorded as sent, not sent again. A server that is merely slow costs
                // that moment once.
                Err(elapsed) => tokio::time::timeout(AFTER_THE_TIMEOUT, &mut attempt)
                    .await
                    .map_err(|_| elapsed),
                done => done,
            }
        };
        match attempt {
            Ok(Ok(())) => Ok(()),
            Ok(Err((failure, reusable))) => {
                if let Some(conn) = reusable {
                    self.reset_and_park(conn).await;
                }
                Err(self.classify(&failure))
            }
            Err(_elapsed) => Err(self.timed_out(phase)),
        }
        // The permit goes only now, after the connection is back in the pool: the next
        // send finds it there instead of opening another.
    }

    /// `Err` carries the connection when the server refused with a reply and the
    /// connection can carry the next message after RSET.
    async fn attempt(
        &self,
        envelope: &Envelope,
        raw: &[u8],
        stuffed: Option<&str>,
        phase: &mut Phase,
    ) -> Result<(), (Failure, Option<Connection>)> {
        let mut retried = false;
        loop {
            *phase = Phase::Connecting;
            let pooled = if retried { None } else { self.checkout().await };
            let reused = pooled.is_some();
            let mut conn = match pooled {
                Some(conn) => conn,
                None => {
                    let conn = self.server.connect().await.map_err(|f| (f, None))?;
                    let offered = conn
                        .smtp
                        .server_info()
                        .supports_feature(Extension::EightBitMime);
                    self.eight_bit_mime.store(offered, Ordering::Relaxed);
                    conn
                }
            };
            match transaction(&mut conn, envelope, raw, stuffed, phase).await {
                Ok(response) => {
                    tracing::debug!(
                        server = %self.endpoint,
                        reply = %response.code(),
                        reused,
                        "message accepted"
                    );
                    self.park(conn);
                    return Ok(());
                }
                Err(failure) => {
                    let lost =
                        failure.lost_the_connection() || conn.broken || conn.smtp.has_broken();
                    // A pooled connection the server closed since its last message (its
                    // idle limit, a restart) fails at MAIL FROM, before anything could be
                    // delivered: the message goes on a fresh connection instead.
                    if lost && reused && *phase == Phase::Envelope && !retried {
                        tracing::debug!(
                            server = %self.endpoint,
                            "a pooled SMTP connection was closed by the server; opening another"
                        );
                        retried = true;
                        continue;
                    }
                    return Err((failure, (!lost).then_some(conn)));
                }
            }
        }
    }

    /// The most recently used idle connection, checked with NOOP when it sat long.
    async fn checkout(&self) -> Option<Connection> {
        loop {
            let Parked { mut conn, since } = lock(&self.idle).pop()?;
            if since.elapsed() < self.check_after_idle || conn.smtp.test_connected().await {
                return Some(conn);
            }
            tracing::debug!(server = %self.endpoint, "dropping a pooled SMTP connection that no longer answers");
        }
    }

    fn park(&self, conn: Connection) {
        // Most recently used last: `checkout` takes from the end, so under light load the
        // same connection carries everything and the others time out.
        lock(&self.idle).push(Parked {
            conn,
            since: Instant::now(),
        });
    }

    /// After a refusal the server may still hold part of the transaction; RSET clears it.
    async fn reset_and_park(&self, mut conn: Connection) {
        let limit = self.timeout.min(COURTESY_TIMEOUT);
        if let Ok(Ok(_)) = tokio::time::timeout(limit, conn.smtp.command(Rset)).await {
            self.park(conn);
        }
    }

    fn server(&self) -> String {
        format!("{}:{}", self.endpoint.host, self.endpoint.port)
    }

    fn timed_out(&self, phase: Phase) -> MailError {
        let server = self.server();
        let secs = self.timeout.as_secs();
        MailError::Temporary(match phase {
            Phase::Connecting => format!(
                "no answer from the SMTP server {server} within {secs} s \
                 (NEWSDESK_SMTP_TIMEOUT_SECS) while connecting; the message was not sent"
            ),
            Phase::Envelope => format!(
                "no answer from the SMTP server {server} within {secs} s \
                 (NEWSDESK_SMTP_TIMEOUT_SECS) before the message was sent; it was not sent"
            ),
            Phase::Data => format!(
                "no answer from the SMTP server {server} within {secs} s \
                 (NEWSDESK_SMTP_TIMEOUT_SECS); the message may or may not have been accepted"
            ),
        })
    }

    /// Sorts failures into retry-later and give-up, with a message that helps an admin:
    /// the server and its reply, never the credentials.
    fn classify(&self, failure: &Failure) -> MailError {
        let server = self.server();
        match failure {
            Failure::Connect(e) => {
                MailError::Temporary(format!("could not reach the SMTP server {server}: {e}"))
            }
            Failure::Unsupported(why) => MailError::Temporary(format!(
                "cannot send through the SMTP server {server}: {why}"
            )),
            Failure::Tls(e) if e.status().is_none() => MailError::Temporary(format!(
                "TLS with the SMTP server {server} failed ({e}); check tls= of NEWSDESK_SMTP_URL \
                 (smtps:// for port 465, ?tls=required for STARTTLS) and the server's certificate"
            )),
            Failure::Tls(e) | Failure::Smtp(e) => super::classify(e, &self.endpoint),
        }
    }
}

#[async_trait::async_trait]
impl Transport for SmtpSender {
    fn describe(&self) -> String {
        format!("SMTP to {}", self.endpoint)
    }

    fn wire(&self) -> Wire {
        Wire::DotStuffed
    }

    /// Whether the server offered 8BITMIME when last asked.
    fn takes_8bit(&self) -> bool {
        self.eight_bit_mime.load(Ordering::Relaxed)
    }

    /// Opens a first connection and parks it, unless one was opened (or tried) before:
    /// then [`Transport::takes_8bit`] knows the answer before the first send.
    async fn warm_up(&self) {
        if self.tried_ahead.swap(true, Ordering::Relaxed) || !lock(&self.idle).is_empty() {
            return;
        }
        let Ok(_permit) = self.in_flight.acquire().await else {
            return;
        };
        if let Ok(Ok(conn)) = tokio::time::timeout(self.timeout, self.server.connect()).await {
            let offered = conn
                .smtp
                .server_info()
                .supports_feature(Extension::EightBitMime);
            self.eight_bit_mime.store(offered, Ordering::Relaxed);
            self.park(conn);
        }
    }

    async fn send(&self, mail: &BuiltMail) -> Result<(), MailError> {
        self.send_stuffed(&mail.envelope, &mail.raw, mail.stuffed.as_deref())
            .await
    }
}

/// MAIL, RCPT, DATA and the message, as lettre's `send` does but without its QUIT after
/// a refusal (a refused recipient need not cost the connection), and with MAIL, RCPT and
/// DATA in one write when the server offers PIPELINING: two round trips per message
/// instead of four.
async fn transaction(
    conn: &mut Connection,
    envelope: &Envelope,
    raw: &[u8],
    stuffed: Option<&str>,
    phase: &mut Phase,
) -> Result<Response, Failure> {
    *phase = Phase::Envelope;
    let info = conn.smtp.server_info();
    let mut parameters = Vec::new();
    let ascii = |a: &lettre::Address| AsRef::<str>::as_ref(a).is_ascii();
    let non_ascii_address =
        envelope.from().is_some_and(|a| !ascii(a)) || envelope.to().iter().any(|a| !ascii(a));
    if non_ascii_address {
        if !info.supports_feature(Extension::SmtpUtfEight) {
            return Err(Failure::Unsupported(
                "an address is not ASCII and the server does not offer SMTPUTF8",
            ));
        }
        parameters.push(MailParameter::SmtpUtfEight);
    }
    // The stuffed data is the message with ASCII dots and line ends added.
    if !stuffed.map_or_else(|| raw.is_ascii(), str::is_ascii) {
        if !info.supports_feature(Extension::EightBitMime) {
            return Err(Failure::Unsupported(
                "the message is not 7-bit and the server does not offer 8BITMIME",
            ));
        }
        parameters.push(MailParameter::Body(MailBodyParameter::EightBitMime));
    }
    let mail = Mail::new(envelope.from().cloned(), parameters);
    if conn.pipelining {
        let mut batch = mail.to_string();
        for to in envelope.to() {
            batch.push_str(&Rcpt::new(to.clone(), Vec::new()).to_string());
        }
        batch.push_str(&Data.to_string());
        // One write, then one reply per command, in order (RFC 2920 3.1). The first
        // refusal is the one to report; every reply is read so the next command meets
        // none left over, unless the connection is lost.
        let mut refusal: Option<SmtpError> = None;
        let replies = envelope.to().len() + 2;
        for i in 0..replies {
            let reply = if i == 0 {
                conn.smtp.command(&batch).await
            } else {
                conn.smtp.read_response().await
            };
            match reply {
                Ok(_) if i == replies - 1 && refusal.is_some() => {
                    // DATA accepted although MAIL or every RCPT was refused: the server
                    // now reads a message. Nothing good can follow on this connection.
                    conn.broken = true;
                }
                Ok(_) => {}
                Err(e) => {
                    let lost = connection_lost(&e);
                    refusal.get_or_insert(e);
                    if lost {
                        break;
                    }
                }
            }
        }
        if let Some(e) = refusal {
            return Err(Failure::Smtp(e));
        }
    } else {
        conn.smtp.command(mail).await?;
        for to in envelope.to() {
            conn.smtp.command(Rcpt::new(to.clone(), Vec::new())).await?;
        }
        conn.smtp.command(Data).await?;
    }
    *phase = Phase::Data;
    if let Some(data) = stuffed {
        return Ok(conn.smtp.command(Verbatim(data)).await?);
    }
    match std::str::from_utf8(raw) {
        // The message, dot-stuffed, and its final dot in one write (lettre's `message`
        // makes two, and two packets with TCP_NODELAY).
        Ok(text) => Ok(conn.smtp.command(DataBody(text)).await?),
        Err(_) => Ok(conn.smtp.message(raw).await?),
    }
}

/// A message as sent after DATA ([`DataBody`]), or `None` when it is not UTF-8 (then
/// lettre's codec stuffs it at the time).
pub(super) fn dot_stuffed(raw: &[u8]) -> Option<String> {
    use std::fmt::Write as _;
    let text = std::str::from_utf8(raw).ok()?;
    let mut out = String::with_capacity(text.len() + 16);
    write!(out, "{}", DataBody(text)).ok()?;
    Some(out)
}

/// Text written as it is.
struct Verbatim<'a>(&'a str);

impl std::fmt::Display for Verbatim<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

/// A message as sent after DATA: every line starting with a dot gets one more (RFC 5321
/// 4.5.2, as lettre's codec does it), then CRLF, dot, CRLF.
struct DataBody<'a>(&'a str);

impl std::fmt::Display for DataBody<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // A new line starts after CRLF only, as in lettre's codec: the dots to double are
        // the first byte and those right after a CRLF. Most messages have none, and are
        // written in one piece.
        let text = self.0;
        if text.starts_with('.') {
            f.write_str(".")?;
        }
        let mut from = 0;
        for (at, _) in text.match_indices("\r\n.") {
            f.write_str(&text[from..at + 2])?;
            f.write_str(".")?;
            from = at + 2;
        }
        f.write_str(&text[from..])?;
        f.write_str("\r\n.\r\n")
    }
}

impl Server {
    fn from_url(url: &str, endpoint: &SmtpEndpoint) -> anyhow::Result<Self> {
        // `SmtpEndpoint::parse` has checked the URL; its errors never repeat the URL.
        let parsed = url::Url::parse(url).context("NEWSDESK_SMTP_URL is not a URL")?;
        let tls_parameters = || {
            TlsParameters::new(endpoint.host.clone())
                .map_err(|e| anyhow::anyhow!("NEWSDESK_SMTP_URL: cannot set up TLS: {e}"))
        };
        let encryption = match endpoint.security {
            SmtpSecurity::Plain => Encryption::None,
            SmtpSecurity::StartTls => Encryption::StartTls(tls_parameters()?),
            SmtpSecurity::StartTlsIfOffered => Encryption::StartTlsIfOffered(tls_parameters()?),
            SmtpSecurity::Tls => Encryption::Wrapper(tls_parameters()?),
        };
        let credentials = match parsed.password() {
            Some(password) => Some(Credentials::new(
                percent_decode(parsed.username()).context("NEWSDESK_SMTP_URL: the user name")?,
                percent_decode(password).context("NEWSDESK_SMTP_URL: the password")?,
            )),
            None => None,
        };
        // As lettre: a path names the client in EHLO (smtp://host/client.example.edu).
        let path = parsed.path().trim_matches('/');
        let hello = if path.is_empty() {
            ClientId::default()
        } else {
            ClientId::Domain(path.to_owned())
        };
        Ok(Self {
            host: endpoint
                .host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned(),
            port: endpoint.port,
            encryption,
            credentials,
            hello,
        })
    }

    /// Opens a connection ready for MAIL FROM: greeted, encrypted as asked, logged in.
    async fn connect(&self) -> Result<Connection, Failure> {
        let tcp = tokio::net::TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(Failure::Connect)?;
        // The point of this module (see the top).
        tcp.set_nodelay(true).map_err(Failure::Connect)?;
        let stream: Box<dyn AsyncTokioStream> = match &self.encryption {
            Encryption::Wrapper(parameters) => {
                // lettre's TLS, so certificates are checked exactly as its transport does,
                // then seen as a plain stream by the connection that speaks SMTP over it.
                let mut tls = AsyncNetworkStream::use_existing_tokio1(Box::new(tcp));
                tls.upgrade_tls(parameters.clone())
                    .await
                    .map_err(Failure::Tls)?;
                Box::new(TlsStream(tls))
            }
            _ => Box::new(tcp),
        };
        let mut conn = AsyncSmtpConnection::connect_with_transport(stream, &self.hello).await?;
        match &self.encryption {
            Encryption::StartTls(parameters) => conn
                .starttls(parameters.clone(), &self.hello)
                .await
                .map_err(Failure::Tls)?,
            Encryption::StartTlsIfOffered(parameters) if conn.can_starttls() => conn
                .starttls(parameters.clone(), &self.hello)
                .await
                .map_err(Failure::Tls)?,
            _ => {}
        }
        // lettre keeps only the extensions it uses from the EHLO reply, not PIPELINING:
        // asking again costs one round trip per connection and saves two per message.
        // Before AUTH, which a later EHLO could reset.
        let ehlo = conn.command(Ehlo::new(self.hello.clone())).await?;
        let pipelining = ehlo.message().skip(1).any(|line| {
            line.split_whitespace()
                .next()
                .is_some_and(|keyword| keyword.eq_ignore_ascii_case("PIPELINING"))
        });
        if let Some(credentials) = &self.credentials {
            conn.auth(DEFAULT_MECHANISMS, credentials).await?;
        }
        Ok(Connection {
            smtp: conn,
            pipelining,
            broken: false,
        })
    }
}

/// `%XX` escapes of a URL's user name or password, as lettre decodes them.
fn percent_decode(s: &str) -> anyhow::Result<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| anyhow::anyhow!("its %-escapes are not UTF-8"))
}

/// Closes pooled connections unused for `idle_timeout`, until the pool is dropped.
fn close_idle_connections(idle: Weak<Mutex<Vec<Parked>>>, idle_timeout: Duration) {
    tokio::spawn(async move {
        let period = idle_timeout / 4;
        loop {
            tokio::time::sleep(period).await;
            let expired: Vec<Parked> = {
                let Some(idle) = idle.upgrade() else {
                    return;
                };
                let mut idle = lock(&idle);
                let (expired, kept) = std::mem::take(&mut *idle)
                    .into_iter()
                    .partition(|p| p.since.elapsed() >= idle_timeout);
                *idle = kept;
                expired
            };
            if !expired.is_empty() {
                tracing::debug!(count = expired.len(), "closing idle SMTP connections");
                futures_util::future::join_all(expired.into_iter().map(|mut p| async move {
                    let _ = tokio::time::timeout(COURTESY_TIMEOUT, p.conn.smtp.command(Quit)).await;
                }))
                .await;
            }
        }
    });
}

fn lock(idle: &Mutex<Vec<Parked>>) -> MutexGuard<'_, Vec<Parked>> {
    // Nothing panics while holding it, and a Vec cannot be left half-written.
    idle.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The integration tests' SMTP server, which can misbehave in the ways tested here.
#[cfg(test)]
#[path = "../../tests/api/smtp_server.rs"]
pub(super) mod test_smtp_server;

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::test_smtp_server::{Behaviour, SmtpServer};

    fn message(to: &str) -> (Envelope, Vec<u8>) {
        let message = lettre::Message::builder()
            .from("news@partners.example.edu".parse().unwrap())
            .to(to.parse().unwrap())
            .subject("Weekly digest")
            .body("Hello".to_owned())
            .unwrap();
        (message.envelope().clone(), message.formatted())
    }

    fn commands(server: &SmtpServer) -> Vec<(usize, String)> {
        server
            .commands()
            .into_iter()
            .filter(|(_, c)| !c.starts_with("EHLO"))
            .collect()
    }

    #[tokio::test]
    async fn idle_connections_are_closed_with_quit_and_replaced_when_needed() {
        let server = SmtpServer::start(Behaviour::accept_all()).await;
        let sender = SmtpSender::with_idle_limits(
            &server.url(),
            4,
            Duration::from_secs(5),
            Duration::from_millis(200),
            Duration::from_secs(60),
        )
        .unwrap();
        let (envelope, raw) = message("ada@example.org");
        sender.send(&envelope, &raw).await.unwrap();
        assert_eq!(lock(&sender.idle).len(), 1);

        tokio::time::sleep(Duration::from_millis(600)).await;
        assert!(lock(&sender.idle).is_empty(), "the idle connection is gone");
        assert!(
            commands(&server).contains(&(1, "QUIT".to_owned())),
            "{:?}",
            server.commands()
        );

        sender.send(&envelope, &raw).await.unwrap();
        assert_eq!(server.connections(), 2);
        assert_eq!(server.messages().len(), 2);
    }

    #[tokio::test]
    async fn a_connection_idle_for_a_while_is_checked_with_noop_and_one_just_used_is_not() {
        let server = SmtpServer::start(Behaviour::accept_all()).await;
        let sender = SmtpSender::with_idle_limits(
            &server.url(),
            4,
            Duration::from_secs(5),
            Duration::from_secs(60),
            Duration::from_millis(100),
        )
        .unwrap();
        let (envelope, raw) = message("ada@example.org");
        sender.send(&envelope, &raw).await.unwrap();
        sender.send(&envelope, &raw).await.unwrap();
        let noops =
            |server: &SmtpServer| commands(server).iter().filter(|(_, c)| c == "NOOP").count();
        assert_eq!(noops(&server), 0);
        tokio::time::sleep(Duration::from_millis(200)).await;
        sender.send(&envelope, &raw).await.unwrap();
        assert_eq!(noops(&server), 1);
        assert_eq!(server.connections(), 1);
        assert_eq!(server.messages().len(), 3);
    }

    #[tokio::test]
    async fn a_connection_that_fails_its_noop_is_dropped_for_a_new_one() {
        let server = SmtpServer::start(
            Behaviour::accept_all().silent_idle_limit(Duration::from_millis(100)),
        )
        .await;
        let sender = SmtpSender::with_idle_limits(
            &server.url(),
            4,
            Duration::from_secs(5),
            Duration::from_secs(60),
            Duration::from_millis(150),
        )
        .unwrap();
        let (envelope, raw) = message("ada@example.org");
        sender.send(&envelope, &raw).await.unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        sender.send(&envelope, &raw).await.unwrap();
        assert_eq!(server.connections(), 2);
        let received = server.messages();
        assert_eq!(received.len(), 2);
        assert_eq!(received[1].connection, 2);
    }

    #[tokio::test]
    async fn urls_are_read_as_lettre_reads_them() {
        let server = Server::from_url(
            "smtp://news%40example.edu:p%25ss%20word@[::1]:2525/client.example.edu",
            &SmtpEndpoint::parse(
                "smtp://news%40example.edu:p%25ss%20word@[::1]:2525/client.example.edu",
            )
            .unwrap(),
        )
        .unwrap();
        assert_eq!(server.host, "::1");
        assert_eq!(server.port, 2525);
        assert!(matches!(server.encryption, Encryption::None));
        assert_eq!(
            server.credentials,
            Some(Credentials::new(
                "news@example.edu".into(),
                "p%ss word".into()
            ))
        );
        assert_eq!(server.hello, ClientId::Domain("client.example.edu".into()));
        for (url, starttls, wrapper) in [
            ("smtp://mail.example.edu?tls=required", true, false),
            ("smtp://mail.example.edu?tls=opportunistic", false, false),
            ("smtps://mail.example.edu", false, true),
        ] {
            let server = Server::from_url(url, &SmtpEndpoint::parse(url).unwrap()).unwrap();
            assert_eq!(
                matches!(server.encryption, Encryption::StartTls(_)),
                starttls,
                "{url}"
            );
            assert_eq!(
                matches!(server.encryption, Encryption::Wrapper(_)),
                wrapper,
                "{url}"
            );
            assert_eq!(server.hello, ClientId::default(), "{url}");
            assert!(server.credentials.is_none());
        }
    }

    // A CA and a certificate for `localhost` signed by it, valid until 2125 (made with
    // openssl; EC P-256). Only for these tests.
    const TEST_CA_PEM: &str = "-----BEGIN CERTIFICATE-----\nMIIBnjCCAUOgAwIBAgIUBELXVaNVFTbwK1ecGD+BS5cxQZ4wCgYIKoZIzj0EAwIw\nGzEZMBcGA1UEAwwQbmV3c2Rlc2sgdGVzdCBDQTAgFw0yNjExMjkwODI2MTNaGA8y\nMTI2MTEwNTA4MjYxM1owGzEZMBcGA1UEAwwQbmV3c2Rlc2sgdGVzdCBDQTBZMBMG\nByqGSM49AgEGCCqGSM49AwEHA0IABH/oKumncERQDe+Cb1XRhHzGU7mKM1o7pvlm\nraslyNcSkHkhiMu0FnE47x7/QuZ21jzM62/id3O3NcwDE4hX8iejYzBhMB0GA1Ud\nDgQWBBQRhAWHzfUrOG2+t7xm2PIvw4eL2zAfBgNVHSMEGDAWgBQRhAWHzfUrOG2+\nt7xm2PIvw4eL2zAPBgNVHRMBAf8EBTADAQH/MA4GA1UdDwEB/wQEAwICBDAKBggq\nhkjOPQQDAgNJADBGAiEAt/nRhz1KjdjoW4hdxHH10ivTMaiacDYqTFjfGhX8TbQC\nIQDxmVKGnvi80l4ZN1SKRZFwvsvFd0cT10yqUAGePpDKtg==\n-----END CERTIFICATE-----\n";
    const LOCALHOST_CERT_PEM: &str = "-----BEGIN CERTIFICATE-----\nMIIBwTCCAWagAwIBAgIUd4WB083K/lb9VRgLeTlGGknFxQswCgYIKoZIzj0EAwIw\nGzEZMBcGA1UEAwwQbmV3c2Rlc2sgdGVzdCBDQTAgFw0yNjExMjkwODI2MTNaGA8y\nMTI2MTEwNTA4MjYxM1owFDESMBAGA1UEAwwJbG9jYWxob3N0MFkwEwYHKoZIzj0C\nAQYIKoZIzj0DAQcDQgAEtdLmU4DLXY7bbvcXQOCVZZM/h3p/alyTKvKuMBx0f0W5\nZsinAvKmQpb+XVHoxdxCzE4HrfBLR8Z9T5PIDP8wqaOBjDCBiTAUBgNVHREEDTAL\ngglsb2NhbGhvc3QwDAYDVR0TAQH/BAIwADATBgNVHSUEDDAKBggrBgEFBQcDATAO\nBgNVHQ8BAf8EBAMCB4AwHQYDVR0OBBYEFOHAZ27pKbNplfLiEX3Wz7svedZMMB8G\nA1UdIwQYMBaAFBGEBYfN9Ss4bb63vGbY8i/Dh4vbMAoGCCqGSM49BAMCA0kAMEYC\nIQDg7wDzr2kF16DT0WzxjfhPX7tIKyWs5011icdPME+yLAIhAOJvmk9rab3+vrC4\ndRTmOiPnysaQFHaTzmsn1pf0xJC5\n-----END CERTIFICATE-----\n";
    const LOCALHOST_KEY_PEM: &str = "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgzJ0rfDtOA5SYHrt8\nK+dZp8aSPElzRDi+gFYJW11ytbyhRANCAAS10uZTgMtdjttu9xdA4JVlkz+Hen9q\nXJMq8q4wHHR/RblmyKcC8qZClv5dUejF3ELMTget8EtHxn1Pk8gM/zCp\n-----END PRIVATE KEY-----\n";

    /// An SMTP server on 127.0.0.1 that speaks TLS from the first byte (`implicit`) or
    /// after STARTTLS, and accepts every message. Counts connections and messages.
    async fn tls_server(implicit: bool) -> (u16, Arc<TlsServerCounts>) {
        use tokio_rustls::rustls;
        use tokio_rustls::rustls::pki_types::pem::PemObject as _;
        use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![CertificateDer::from_pem_slice(LOCALHOST_CERT_PEM.as_bytes()).unwrap()],
                PrivateKeyDer::from_pem_slice(LOCALHOST_KEY_PEM.as_bytes()).unwrap(),
            )
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let counts = Arc::new(TlsServerCounts::default());
        let shared = Arc::clone(&counts);
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                shared.connections.fetch_add(1, Ordering::SeqCst);
                let (acceptor, counts) = (acceptor.clone(), Arc::clone(&shared));
                tokio::spawn(async move {
                    let _ = tls_session(tcp, acceptor, implicit, counts).await;
                });
            }
        });
        (port, counts)
    }

    #[derive(Default)]
    struct TlsServerCounts {
        connections: AtomicUsize,
        messages: AtomicUsize,
    }

    async fn tls_session(
        tcp: tokio::net::TcpStream,
        acceptor: tokio_rustls::TlsAcceptor,
        implicit: bool,
        counts: Arc<TlsServerCounts>,
    ) -> io::Result<()> {
        use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
        let tls = if implicit {
            acceptor.accept(tcp).await?
        } else {
            // In the clear up to STARTTLS; nothing else is allowed before it.
            let mut plain = BufReader::new(tcp);
            plain.get_mut().write_all(b"220 tls-test ESMTP\r\n").await?;
            let mut line = String::new();
            loop {
                line.clear();
                if plain.read_line(&mut line).await? == 0 {
                    return Ok(());
                }
                let verb = line.trim_end().to_ascii_uppercase();
                if verb.starts_with("EHLO") {
                    plain
                        .get_mut()
                        .write_all(b"250-tls-test\r\n250-PIPELINING\r\n250 STARTTLS\r\n")
                        .await?;
                } else if verb == "STARTTLS" {
                    plain.get_mut().write_all(b"220 2.0.0 go ahead\r\n").await?;
                    break;
                } else {
                    plain
                        .get_mut()
                        .write_all(b"530 5.7.0 must issue a STARTTLS command first\r\n")
                        .await?;
                }
            }
            acceptor.accept(plain.into_inner()).await?
        };
        let mut stream = BufReader::new(tls);
        if implicit {
            stream
                .get_mut()
                .write_all(b"220 tls-test ESMTP\r\n")
                .await?;
            stream.get_mut().flush().await?;
        }
        let mut line = String::new();
        loop {
            line.clear();
            if stream.read_line(&mut line).await? == 0 {
                return Ok(());
            }
            let verb = line.get(..4).unwrap_or_default().to_ascii_uppercase();
            let reply: &[u8] = match verb.as_str() {
                "EHLO" => b"250-tls-test\r\n250-PIPELINING\r\n250 8BITMIME\r\n",
                "MAIL" | "RCPT" | "RSET" | "NOOP" => b"250 2.0.0 ok\r\n",
                "DATA" => {
                    stream.get_mut().write_all(b"354 go ahead\r\n").await?;
                    stream.get_mut().flush().await?;
                    loop {
                        line.clear();
                        if stream.read_line(&mut line).await? == 0 {
                            return Ok(());
                        }
                        if line == ".\r\n" {
                            break;
                        }
                    }
                    counts.messages.fetch_add(1, Ordering::SeqCst);
                    b"250 2.0.0 queued\r\n"
                }
                "QUIT" => {
                    stream.get_mut().write_all(b"221 2.0.0 bye\r\n").await?;
                    return stream.get_mut().shutdown().await;
                }
                _ => b"500 5.5.2 what\r\n",
            };
            stream.get_mut().write_all(reply).await?;
            stream.get_mut().flush().await?;
        }
    }

    fn trusting_the_test_ca() -> TlsParameters {
        use lettre::transport::smtp::client::Certificate;
        TlsParameters::builder("localhost".into())
            .add_root_certificate(Certificate::from_pem(TEST_CA_PEM.as_bytes()).unwrap())
            .build_rustls()
            .unwrap()
    }

    #[tokio::test]
    async fn tls_from_the_first_byte_and_starttls_carry_messages_over_reused_connections() {
        for implicit in [true, false] {
            let (port, counts) = tls_server(implicit).await;
            let url = if implicit {
                format!("smtps://localhost:{port}")
            } else {
                format!("smtp://localhost:{port}?tls=required")
            };
            let mut sender = SmtpSender::new(&url, 2, Duration::from_secs(5)).unwrap();
            sender.server.encryption = if implicit {
                Encryption::Wrapper(trusting_the_test_ca())
            } else {
                Encryption::StartTls(trusting_the_test_ca())
            };
            let (envelope, raw) = message("ada@example.org");
            for _ in 0..3 {
                sender
                    .send(&envelope, &raw)
                    .await
                    .unwrap_or_else(|e| panic!("{url}: {e}"));
            }
            assert_eq!(counts.messages.load(Ordering::SeqCst), 3, "{url}");
            assert_eq!(counts.connections.load(Ordering::SeqCst), 1, "{url}");
        }
    }

    #[tokio::test]
    async fn an_untrusted_certificate_is_a_temporary_tls_failure() {
        for implicit in [true, false] {
            let (port, counts) = tls_server(implicit).await;
            // lettre's default trust store does not know the test CA.
            let url = if implicit {
                format!("smtps://localhost:{port}")
            } else {
                format!("smtp://localhost:{port}?tls=required")
            };
            let sender = SmtpSender::new(&url, 2, Duration::from_secs(5)).unwrap();
            let (envelope, raw) = message("ada@example.org");
            let err = sender.send(&envelope, &raw).await.unwrap_err();
            assert!(err.is_temporary(), "{url}: {err}");
            assert!(
                err.message().contains("TLS with the SMTP server"),
                "{url}: {err}"
            );
            assert_eq!(counts.messages.load(Ordering::SeqCst), 0);
        }
    }
}
