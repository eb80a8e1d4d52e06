//! A real SMTP server on 127.0.0.1 for the tests, written here so each test can make it
//! misbehave in exactly one way: greylist (451), reject a recipient (550), drop the
//! connection after the data, stall, or ask for a login. It speaks plain SMTP (no
//! STARTTLS), serves many connections at once and many messages per connection, and
//! records every accepted message.
//!
//! Messages are read back with `mail-parser`, a parser independent of lettre, through
//! [`parse`].

#![allow(dead_code)] // Each test binary module uses a different part of the helper.

use base64::Engine;
use std::collections::HashSet;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

/// How the server answers. Counters are shared by all connections, so "the first two
/// RCPT commands fail" holds however the client spreads its messages.
#[derive(Debug, Clone, Default)]
pub struct Behaviour {
    temporary_failures_at_rcpt: usize,
    temporary_failures_at_data: usize,
    drops_after_data: usize,
    stalls_after_data: usize,
    unknown_recipients: HashSet<String>,
    greeting_delay: Option<Duration>,
    login: Option<(String, String)>,
    idle_limit: Option<IdleLimit>,
    no_pipelining: bool,
}

/// What the server does to a connection that sends no command for a while.
#[derive(Debug, Clone, Copy)]
struct IdleLimit {
    after: Duration,
    /// Says `421` first, as Postfix does; otherwise hangs up without a word.
    say_421: bool,
}

impl Behaviour {
    /// Accepts every message.
    pub fn accept_all() -> Self {
        Self::default()
    }

    /// Answers `451 4.3.0 try later` to the first `n` RCPT commands (greylisting).
    pub fn temporary_failure_at_rcpt(mut self, n: usize) -> Self {
        self.temporary_failures_at_rcpt = n;
        self
    }

    /// Answers `451 4.3.0 try later` to the first `n` messages, after their data.
    pub fn temporary_failure_at_data(mut self, n: usize) -> Self {
        self.temporary_failures_at_data = n;
        self
    }

    /// Answers `550 5.1.1 no such user` to RCPT TO this address.
    pub fn unknown_recipient(mut self, address: &str) -> Self {
        self.unknown_recipients.insert(address.to_ascii_lowercase());
        self
    }

    /// Closes the connection right after the final dot of the first `n` messages, without
    /// an answer: the client cannot know whether the message went through. Those messages
    /// are not recorded.
    pub fn drop_after_data(mut self, n: usize) -> Self {
        self.drops_after_data = n;
        self
    }

    /// Never answers the data of the first `n` messages, keeping the connection open: the
    /// client must time out, and must not reuse that connection. Not recorded either.
    pub fn stall_after_data(mut self, n: usize) -> Self {
        self.stalls_after_data = n;
        self
    }

    /// Waits this long before the greeting, to make clients time out.
    pub fn greeting_delay(mut self, delay: Duration) -> Self {
        self.greeting_delay = Some(delay);
        self
    }

    /// Does not advertise PIPELINING, so clients wait for each reply.
    pub fn without_pipelining(mut self) -> Self {
        self.no_pipelining = true;
        self
    }

    /// Closes a connection that sent no command for `after`, saying `421 4.4.2 idle
    /// timeout` first as Postfix does (its `smtpd_timeout`).
    pub fn idle_limit(mut self, after: Duration) -> Self {
        self.idle_limit = Some(IdleLimit {
            after,
            say_421: true,
        });
        self
    }

    /// Closes a connection that sent no command for `after`, without a word.
    pub fn silent_idle_limit(mut self, after: Duration) -> Self {
        self.idle_limit = Some(IdleLimit {
            after,
            say_421: false,
        });
        self
    }

    /// Advertises `AUTH PLAIN` and refuses MAIL FROM until this user logs in with this
    /// password (`535 5.7.8` for a wrong one).
    pub fn require_login(mut self, user: &str, password: &str) -> Self {
        self.login = Some((user.to_owned(), password.to_owned()));
        self
    }
}

/// One accepted message, as it arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
    /// The message after dot-unstuffing, with its CRLF line ends.
    pub raw: Vec<u8>,
    /// Which connection brought it (numbered from 1 in order of arrival).
    pub connection: usize,
}

#[derive(Debug, Default)]
struct State {
    behaviour: Behaviour,
    received: Vec<Received>,
    connections: usize,
    /// Every DATA command that reached the end of its data, accepted or not.
    data_transfers: usize,
    /// Every SMTP command line, with its connection, for tests of the conversation.
    commands: Vec<(usize, String)>,
    /// Transactions between an accepted MAIL FROM and their end, now and at most.
    open_transactions: usize,
    peak_transactions: usize,
    /// Commands that had arrived before the reply to the previous one was sent.
    pipelined_commands: usize,
}

pub struct SmtpServer {
    pub port: u16,
    state: Arc<Mutex<State>>,
    accept_loop: JoinHandle<()>,
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        // Dropping the accept loop drops its JoinSet, which aborts every connection.
        self.accept_loop.abort();
    }
}

/// Longest message the server takes, so a runaway client cannot eat the test's memory.
const MAX_MESSAGE_BYTES: usize = 10 * 1024 * 1024;
/// Longest command or data line (RFC 5321 says 1000 with the CRLF; allow slack).
const MAX_LINE_BYTES: u64 = 64 * 1024;

impl SmtpServer {
    pub async fn start(behaviour: Behaviour) -> SmtpServer {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding the test SMTP server on 127.0.0.1");
        let port = listener.local_addr().expect("a bound address").port();
        let state = Arc::new(Mutex::new(State {
            behaviour,
            ..State::default()
        }));
        let shared = Arc::clone(&state);
        let accept_loop = tokio::spawn(async move {
            let mut sessions = JoinSet::new();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let connection = {
                    let mut state = lock(&shared);
                    state.connections += 1;
                    state.connections
                };
                let state = Arc::clone(&shared);
                sessions.spawn(async move {
                    // A client that vanishes ends its session; nothing to report.
                    let _ = Session::new(stream, state, connection).run().await;
                });
                // Reap finished sessions so the set does not grow for ever.
                while sessions.try_join_next().is_some() {}
            }
        });
        SmtpServer {
            port,
            state,
            accept_loop,
        }
    }

    /// `smtp://127.0.0.1:PORT`, for `NEWSDESK_SMTP_URL`.
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Every accepted message so far, in order of acceptance.
    pub fn messages(&self) -> Vec<Received> {
        lock(&self.state).received.clone()
    }

    /// How many TCP connections the server has accepted.
    pub fn connections(&self) -> usize {
        lock(&self.state).connections
    }

    /// How many messages reached the end of their data, accepted or not.
    pub fn data_transfers(&self) -> usize {
        lock(&self.state).data_transfers
    }

    /// The most transactions (MAIL FROM to the end of the data) open at the same time.
    pub fn peak_concurrent_transactions(&self) -> usize {
        lock(&self.state).peak_transactions
    }

    /// How many commands arrived before the reply to the one before them was sent: none
    /// from a client that waits for each reply.
    pub fn pipelined_commands(&self) -> usize {
        lock(&self.state).pipelined_commands
    }

    /// Every command line received, with its connection number.
    pub fn commands(&self) -> Vec<(usize, String)> {
        lock(&self.state).commands.clone()
    }

    /// Waits until at least `n` messages were accepted or `timeout` passed, then returns
    /// all accepted messages (maybe fewer than `n`: the caller asserts).
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Received> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let messages = self.messages();
            if messages.len() >= n || tokio::time::Instant::now() >= deadline {
                return messages;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    // A panicking session must not hide the messages from the test that reads them.
    state.lock().unwrap_or_else(|e| e.into_inner())
}

struct Session {
    reader: BufReader<tokio::net::tcp::OwnedReadHalf>,
    writer: tokio::net::tcp::OwnedWriteHalf,
    state: Arc<Mutex<State>>,
    connection: usize,
    logged_in: bool,
    mail_from: Option<String>,
    rcpt_to: Vec<String>,
}

impl Drop for Session {
    fn drop(&mut self) {
        // A connection that ends mid-transaction ends the transaction too.
        self.reset();
    }
}

impl Session {
    fn new(stream: TcpStream, state: Arc<Mutex<State>>, connection: usize) -> Self {
        let _ = stream.set_nodelay(true);
        let (read, write) = stream.into_split();
        Self {
            reader: BufReader::new(read),
            writer: write,
            state,
            connection,
            logged_in: false,
            mail_from: None,
            rcpt_to: Vec::new(),
        }
    }

    async fn reply(&mut self, text: &str) -> std::io::Result<()> {
        // One write per reply: two small writes would meet Nagle's algorithm and the
        // client's delayed ACK, and every reply would take 40 ms.
        self.writer
            .write_all(format!("{text}\r\n").as_bytes())
            .await?;
        self.writer.flush().await
    }

    /// One line without its line end, or `None` at the end of the stream.
    async fn read_line(&mut self) -> std::io::Result<Option<Vec<u8>>> {
        let mut line = Vec::new();
        let n = (&mut self.reader)
            .take(MAX_LINE_BYTES)
            .read_until(b'\n', &mut line)
            .await?;
        if n == 0 {
            return Ok(None);
        }
        if line.ends_with(b"\n") {
            line.pop();
            if line.ends_with(b"\r") {
                line.pop();
            }
        }
        Ok(Some(line))
    }

    fn reset(&mut self) {
        if self.mail_from.take().is_some() {
            lock(&self.state).open_transactions -= 1;
        }
        self.rcpt_to.clear();
    }

    fn begin(&mut self, from: String) {
        self.mail_from = Some(from);
        let mut state = lock(&self.state);
        state.open_transactions += 1;
        state.peak_transactions = state.peak_transactions.max(state.open_transactions);
    }

    async fn run(mut self) -> std::io::Result<()> {
        let (delay, login, idle_limit, no_pipelining) = {
            let state = lock(&self.state);
            (
                state.behaviour.greeting_delay,
                state.behaviour.login.clone(),
                state.behaviour.idle_limit,
                state.behaviour.no_pipelining,
            )
        };
        if let Some(delay) = delay {
            tokio::time::sleep(delay).await;
        }
        self.reply("220 newsdesk-test ESMTP ready").await?;
        // Commands are read one line at a time from a buffer, so a client that pipelines
        // several commands in one packet gets its answers in order.
        loop {
            // Bytes already waiting: the client sent this command without waiting for the
            // reply to the previous one.
            let pipelined = !self.reader.buffer().is_empty();
            let line = match idle_limit {
                None => self.read_line().await?,
                Some(limit) => match tokio::time::timeout(limit.after, self.read_line()).await {
                    Ok(line) => line?,
                    Err(_idle) => {
                        if limit.say_421 {
                            self.reply("421 4.4.2 newsdesk-test idle timeout").await?;
                        }
                        return self.writer.shutdown().await;
                    }
                },
            };
            let Some(line) = line else {
                break;
            };
            let line = String::from_utf8_lossy(&line).into_owned();
            {
                let mut state = lock(&self.state);
                state.commands.push((self.connection, line.clone()));
                state.pipelined_commands += usize::from(pipelined);
            }
            let (verb, argument) = match line.split_once(' ') {
                Some((verb, argument)) => (verb.to_ascii_uppercase(), argument.trim()),
                None => (line.to_ascii_uppercase(), ""),
            };
            match verb.as_str() {
                "EHLO" => {
                    self.reset();
                    let auth = if login.is_some() {
                        "250-AUTH PLAIN\r\n"
                    } else {
                        ""
                    };
                    let pipelining = if no_pipelining {
                        ""
                    } else {
                        "250-PIPELINING\r\n"
                    };
                    let greeting = format!(
                        "250-newsdesk-test greets {argument}\r\n{auth}{pipelining}250-8BITMIME\r\n250-SMTPUTF8\r\n250 SIZE {MAX_MESSAGE_BYTES}"
                    );
                    self.reply(&greeting).await?;
                }
                "HELO" => {
                    self.reset();
                    self.reply("250 newsdesk-test").await?;
                }
                "AUTH" => {
                    let Some((user, password)) = &login else {
                        self.reply("502 5.5.1 AUTH not available").await?;
                        continue;
                    };
                    let expected = format!("\0{user}\0{password}");
                    let given = argument
                        .strip_prefix("PLAIN ")
                        .and_then(|b64| {
                            base64::engine::general_purpose::STANDARD
                                .decode(b64.trim())
                                .ok()
                        })
                        .unwrap_or_default();
                    if given == expected.as_bytes() {
                        self.logged_in = true;
                        self.reply("235 2.7.0 authentication successful").await?;
                    } else {
                        self.reply("535 5.7.8 authentication credentials invalid")
                            .await?;
                    }
                }
                "MAIL" => {
                    if login.is_some() && !self.logged_in {
                        self.reply("530 5.7.0 authentication required").await?;
                    } else if self.mail_from.is_some() {
                        self.reply("503 5.5.1 nested MAIL command").await?;
                    } else if let Some(from) = path_of(argument, "FROM:") {
                        self.begin(from);
                        self.reply("250 2.1.0 sender ok").await?;
                    } else {
                        self.reply("501 5.5.4 syntax: MAIL FROM:<address>").await?;
                    }
                }
                "RCPT" => {
                    let Some(to) = path_of(argument, "TO:") else {
                        self.reply("501 5.5.4 syntax: RCPT TO:<address>").await?;
                        continue;
                    };
                    if self.mail_from.is_none() {
                        self.reply("503 5.5.1 need MAIL before RCPT").await?;
                        continue;
                    }
                    let answer = {
                        let mut state = lock(&self.state);
                        if state
                            .behaviour
                            .unknown_recipients
                            .contains(&to.to_ascii_lowercase())
                        {
                            "550 5.1.1 no such user"
                        } else if state.behaviour.temporary_failures_at_rcpt > 0 {
                            state.behaviour.temporary_failures_at_rcpt -= 1;
                            "451 4.3.0 try later"
                        } else {
                            "250 2.1.5 recipient ok"
                        }
                    };
                    if answer.starts_with('2') {
                        self.rcpt_to.push(to);
                    }
                    self.reply(answer).await?;
                }
                "DATA" => {
                    if self.rcpt_to.is_empty() {
                        self.reply("503 5.5.1 need RCPT before DATA").await?;
                        continue;
                    }
                    self.reply("354 end data with <CR><LF>.<CR><LF>").await?;
                    let Some(raw) = self.read_data().await? else {
                        self.reply("552 5.3.4 message too big").await?;
                        self.reset();
                        continue;
                    };
                    let outcome = {
                        let mut state = lock(&self.state);
                        state.data_transfers += 1;
                        let b = &mut state.behaviour;
                        if b.stalls_after_data > 0 {
                            b.stalls_after_data -= 1;
                            DataOutcome::Stall
                        } else if b.drops_after_data > 0 {
                            b.drops_after_data -= 1;
                            DataOutcome::HangUp
                        } else if b.temporary_failures_at_data > 0 {
                            b.temporary_failures_at_data -= 1;
                            DataOutcome::Reply("451 4.3.0 try later".to_owned())
                        } else {
                            state.received.push(Received {
                                mail_from: self.mail_from.clone().unwrap_or_default(),
                                rcpt_to: self.rcpt_to.clone(),
                                raw,
                                connection: self.connection,
                            });
                            DataOutcome::Reply(format!(
                                "250 2.0.0 queued as {}",
                                state.received.len()
                            ))
                        }
                    };
                    self.reset();
                    match outcome {
                        DataOutcome::Reply(answer) => self.reply(&answer).await?,
                        // Mid-transaction hang-up: close without a word.
                        DataOutcome::HangUp => return self.writer.shutdown().await,
                        DataOutcome::Stall => {
                            // Silent until the client hangs up or the server is dropped.
                            let mut rest = Vec::new();
                            let _ = self.reader.read_to_end(&mut rest).await;
                            return Ok(());
                        }
                    }
                }
                "RSET" => {
                    self.reset();
                    self.reply("250 2.0.0 reset").await?;
                }
                "NOOP" => self.reply("250 2.0.0 ok").await?,
                "VRFY" => self.reply("252 2.1.5 cannot verify").await?,
                "QUIT" => {
                    self.reply("221 2.0.0 bye").await?;
                    return self.writer.shutdown().await;
                }
                _ => self.reply("500 5.5.2 command not recognized").await?,
            }
        }
        Ok(())
    }

    /// Reads the data up to the line holding a lone dot, undoing the dot-stuffing of
    /// RFC 5321 4.5.2. `None` when it is larger than the server takes.
    async fn read_data(&mut self) -> std::io::Result<Option<Vec<u8>>> {
        let mut raw = Vec::new();
        let mut too_big = false;
        loop {
            let Some(line) = self.read_line().await? else {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            };
            if line == b"." {
                return Ok((!too_big).then_some(raw));
            }
            let line = line.strip_prefix(b".").unwrap_or(&line);
            if raw.len() + line.len() + 2 > MAX_MESSAGE_BYTES {
                too_big = true;
                continue;
            }
            raw.extend_from_slice(line);
            raw.extend_from_slice(b"\r\n");
        }
    }
}

enum DataOutcome {
    Reply(String),
    HangUp,
    Stall,
}

/// The address in `FROM:<a@b> SIZE=123` or `TO:<a@b>`; the empty reverse path `<>` gives "".
fn path_of(argument: &str, prefix: &str) -> Option<String> {
    let rest = argument.get(..prefix.len())?;
    if !rest.eq_ignore_ascii_case(prefix) {
        return None;
    }
    let rest = argument[prefix.len()..].trim_start();
    let inner = rest.strip_prefix('<')?;
    let (address, _parameters) = inner.split_once('>')?;
    Some(address.to_owned())
}

/// A received message read back by `mail-parser`.
#[derive(Debug, Clone, Default)]
pub struct ParsedMail {
    /// Decoded (RFC 2047) subject.
    pub subject: Option<String>,
    /// Address of the first From mailbox.
    pub from: Option<String>,
    /// Display name of the first From mailbox.
    pub from_name: Option<String>,
    /// Addresses of all To mailboxes.
    pub to: Vec<String>,
    /// Display names of the To mailboxes, "" when there is none.
    pub to_names: Vec<String>,
    /// Without angle brackets, as mail-parser gives it.
    pub message_id: Option<String>,
    /// The Date header parsed, as RFC 3339.
    pub date: Option<String>,
    /// Top-level headers in order: name as written, value raw (not decoded), unfolded
    /// and trimmed.
    pub headers: Vec<(String, String)>,
    /// `type/subtype` of the whole message, lower case.
    pub content_type: String,
    /// `type/subtype; charset=...` of each leaf part, in order.
    pub part_types: Vec<String>,
    /// The first text/plain body, decoded.
    pub text: Option<String>,
    /// The first text/html body, decoded.
    pub html: Option<String>,
}

impl ParsedMail {
    /// The first header with this name (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every header with this name (any case), in order.
    pub fn header_all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

/// Parses a message with `mail-parser`. Panics when it is not a message at all.
pub fn parse(raw: &[u8]) -> ParsedMail {
    use mail_parser::{MessageParser, MimeHeaders, PartType};

    let message = MessageParser::default()
        .parse(raw)
        .expect("mail-parser reads the message");
    let mailbox = |address: Option<&mail_parser::Address>| -> Vec<(String, String)> {
        address
            .map(|a| {
                a.iter()
                    .map(|addr| {
                        (
                            addr.address().unwrap_or_default().to_owned(),
                            addr.name().unwrap_or_default().to_owned(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let from = mailbox(message.from());
    let to = mailbox(message.to());
    let headers = message
        .headers_raw()
        .map(|(name, value)| {
            let unfolded = value.replace("\r\n", "").replace('\n', "");
            (name.to_owned(), unfolded.trim().to_owned())
        })
        .collect();
    let type_of = |part: &mail_parser::MessagePart| -> String {
        match part.content_type() {
            Some(ct) => {
                let mut t = ct.ctype().to_ascii_lowercase();
                if let Some(sub) = ct.subtype() {
                    t = format!("{t}/{}", sub.to_ascii_lowercase());
                }
                if let Some(charset) = ct.attribute("charset") {
                    t = format!("{t}; charset={}", charset.to_ascii_lowercase());
                }
                t
            }
            None => "text/plain".to_owned(),
        }
    };
    let part_types = message
        .parts
        .iter()
        .filter(|part| !matches!(part.body, PartType::Multipart(_)))
        .map(type_of)
        .collect();
    let content_type = type_of(message.root_part())
        .split(';')
        .next()
        .unwrap_or_default()
        .to_owned();
    ParsedMail {
        subject: message.subject().map(str::to_owned),
        from: from.first().map(|(a, _)| a.clone()),
        from_name: from.first().map(|(_, n)| n.clone()),
        to: to.iter().map(|(a, _)| a.clone()).collect(),
        to_names: to.iter().map(|(_, n)| n.clone()).collect(),
        message_id: message.message_id().map(str::to_owned),
        date: message.date().map(|d| d.to_rfc3339()),
        headers,
        content_type,
        part_types,
        // Straight from the parts: mail-parser's body_text/body_html would convert one
        // into the other when a part is missing, which would hide a missing part.
        text: message.parts.iter().find_map(|part| match &part.body {
            PartType::Text(text) => Some(text.clone().into_owned()),
            _ => None,
        }),
        html: message.parts.iter().find_map(|part| match &part.body {
            PartType::Html(html) => Some(html.clone().into_owned()),
            _ => None,
        }),
    }
}
