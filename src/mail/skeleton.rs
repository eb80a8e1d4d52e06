//! The quick way to build a message for SMTP, byte for byte what lettre would build.
//!
//! Building a digest with lettre's `MessageBuilder` costs more than sending it: the
//! builder parses its own From header back (nom), encodes and folds every header value,
//! the unsubscribe link is parsed as a URL, the formatted message is copied whole, and
//! the dot-stuffing for SMTP copies it once more. Yet most of the header block is the
//! same for every reader of a digest: From, Subject, List-Id, MIME-Version, the
//! multipart Content-Type and the part headers.
//!
//! So lettre formats that block once per (subject, list id, with or without an
//! unsubscribe link), with random markers standing for the message's own values, and the
//! block is cut at the markers (the trick `GroupRenderer` plays on the templates). Each
//! message is then written in one pass into one buffer sized up front: the cut block with
//! the reader's To (names that need quoting with escapes, RFC 2047 or folding still
//! formatted by lettre), Date, Message-ID, List-Unsubscribe and boundary filled in, and
//! the two bodies, converted to CRLF and dot-stuffed as they are copied. What comes out
//! is [`super::smtp::dot_stuffed`] of what lettre would have formatted with the same
//! date, Message-ID and boundary; the tests below compare the two byte for byte.
//!
//! Only for SMTP without DKIM: a signature is computed over lettre's message, and files
//! keep lettre's output as it is.

use super::{ListId, ListUnsubscribe, ListUnsubscribePost, MailError, OutgoingMail};
use lettre::Message;
use lettre::message::header::{self, ContentTransferEncoding, Headers};
use lettre::message::{Body, Mailbox, Mailboxes, MessageBuilder, MultiPart, SinglePart};
use rand::{Rng as _, RngCore as _};
use std::borrow::Cow;
use std::sync::{Arc, LazyLock, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

/// Longest line of a body sent as it is (RFC 5322 2.1.1): longer ones are encoded.
pub(super) const MAX_LINE: usize = 998;

/// Characters of a MIME boundary, as lettre draws them.
const BOUNDARY_LEN: usize = 40;

/// The parts of a message drawn at random or read from the clock, drawn once so that
/// both builders can be handed the same (which is how the tests compare them).
#[derive(Debug, Clone)]
pub(super) struct Stamp {
    pub date: SystemTime,
    /// `<32 hex digits@sender's domain>`.
    pub message_id: String,
    /// 40 letters and digits, as lettre draws them.
    pub boundary: String,
}

impl Stamp {
    /// Now, a random Message-ID on `domain` and a random boundary. The Message-ID is a
    /// version 4 UUID as before, its bits from the thread's CSPRNG rather than a
    /// `getrandom` system call per message.
    pub(super) fn new(domain: &str) -> Self {
        let mut rng = rand::thread_rng();
        let mut bytes = [0u8; 16];
        rng.fill_bytes(&mut bytes);
        let uuid = uuid::Builder::from_random_bytes(bytes).into_uuid();
        let mut message_id = String::with_capacity(36 + domain.len());
        message_id.push('<');
        message_id.push_str(uuid.simple().encode_lower(&mut uuid::Uuid::encode_buffer()));
        message_id.push('@');
        message_id.push_str(domain);
        message_id.push('>');
        Self {
            date: SystemTime::now(),
            message_id,
            boundary: random_alphanumeric(&mut rng, BOUNDARY_LEN),
        }
    }
}

/// `len` letters and digits, as in lettre's boundaries. Each from one random byte
/// (modulo 62: the first eight a little more often, which a boundary does not mind; it
/// need only be unlikely to be in the message).
fn random_alphanumeric(rng: &mut impl rand::RngCore, len: usize) -> String {
    const ALPHANUMERIC: &[u8; 62] =
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut bytes = vec![0u8; len];
    rng.fill_bytes(&mut bytes);
    bytes
        .iter()
        .map(|b| char::from(ALPHANUMERIC[usize::from(*b) % ALPHANUMERIC.len()]))
        .collect()
}

/// The top-level headers in the order lettre writes them, for both builders: the fast
/// path cuts what this gives, so the two cannot drift apart.
pub(super) fn headers(
    from: &Mailbox,
    to: Mailbox,
    subject: &str,
    stamp: &Stamp,
    unsubscribe: Option<ListUnsubscribe>,
    list_id: Option<ListId>,
) -> MessageBuilder {
    let mut builder = Message::builder()
        .from(from.clone())
        .to(to)
        .subject(subject)
        .date(stamp.date)
        .message_id(Some(stamp.message_id.clone()));
    if let Some(unsubscribe) = unsubscribe {
        builder = builder.header(unsubscribe).header(ListUnsubscribePost);
    }
    if let Some(id) = list_id {
        builder = builder.header(id);
    }
    builder
}

/// The multipart/alternative body (text, then HTML) both builders send.
pub(super) fn alternative(stamp: &Stamp, text: Body, html: Body) -> MultiPart {
    MultiPart::alternative()
        .boundary(stamp.boundary.as_str())
        .singlepart(SinglePart::plain(text))
        .singlepart(SinglePart::html(html))
}

/// Skeletons of recent messages, and what they learnt: shared by every build.
#[derive(Debug, Default)]
pub(super) struct Cache {
    skeletons: Mutex<Vec<Arc<Skeleton>>>,
    /// An unsubscribe link up to its last path segment (`https://host/unsubscribe/`),
    /// seen to come out of URL parsing unchanged: the same with a segment of letters and
    /// digits (a token) needs no parsing.
    unsubscribe_prefix: OnceLock<String>,
    /// The Date line of the last second a message was built in.
    date: Mutex<(u64, String)>,
}

/// Skeletons kept at most; a digest send needs one.
const CACHED_SKELETONS: usize = 16;

/// The header block lettre writes for one (subject, list id, unsubscribe or not), cut
/// where each message's own values go.
#[derive(Debug)]
struct Skeleton {
    subject: String,
    list_id: Option<String>,
    unsubscribe: bool,
    /// `None` when lettre wrote a marker in a way that cannot be cut (an
    /// internationalised sender domain in the Message-ID is encoded, say): then every
    /// message of this kind takes lettre's path.
    head: Option<Vec<Piece>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Literal(String),
    /// The whole To field.
    To,
    /// The whole Date field.
    Date,
    MessageId,
    UnsubscribeUrl,
    Boundary,
}

impl Skeleton {
    fn matches(&self, mail: &OutgoingMail) -> bool {
        self.subject == mail.subject
            && self.list_id == mail.list_id
            && self.unsubscribe == mail.list_unsubscribe.is_some()
    }

    /// Formats a message with markers through lettre and cuts its header block.
    fn new(from: &Mailbox, mail: &OutgoingMail) -> Result<Self, MailError> {
        let list_id = match &mail.list_id {
            Some(id) => Some(ListId::new(id).map_err(MailError::Permanent)?),
            None => None,
        };
        let mut rng = rand::thread_rng();
        let stamp = Stamp {
            date: UNIX_EPOCH,
            message_id: format!(
                "<{}@{}>",
                hex::encode(rng.r#gen::<[u8; 16]>()),
                from.email.domain()
            ),
            boundary: random_alphanumeric(&mut rng, BOUNDARY_LEN),
        };
        // A token-like last segment, so the marker looks like the links it stands for.
        let url_marker = format!(
            "https://unsubscribe.invalid/{}",
            random_alphanumeric(&mut rng, 32)
        );
        let unsubscribe = match mail.list_unsubscribe {
            Some(_) => Some(ListUnsubscribe::new(&url_marker).map_err(MailError::Permanent)?),
            None => None,
        };
        let message = headers(
            from,
            from.clone(),
            &mail.subject,
            &stamp,
            unsubscribe,
            list_id,
        )
        .multipart(alternative(
            &stamp,
            Body::new(String::new()),
            Body::new(String::new()),
        ))
        .map_err(|e| MailError::Permanent(format!("the message cannot be built: {e}")))?;
        let formatted = message.formatted();
        let head = std::str::from_utf8(&formatted)
            .ok()
            .and_then(|text| text.split_once("\r\n\r\n"))
            .and_then(|(head, _)| {
                cut(
                    head,
                    &[
                        (&stamp.message_id, Piece::MessageId),
                        (&url_marker, Piece::UnsubscribeUrl),
                        (&stamp.boundary, Piece::Boundary),
                    ],
                    mail.list_unsubscribe.is_some(),
                )
            });
        Ok(Self {
            subject: mail.subject.clone(),
            list_id: mail.list_id.clone(),
            unsubscribe: mail.list_unsubscribe.is_some(),
            head,
        })
    }
}

/// `head` (header fields, each line ending in CRLF but the last) cut into pieces: the To
/// and Date fields whole, the markers inside the others. `None` unless every marker is
/// found exactly once (the URL's only when `unsubscribe`), or when a line would start
/// with a dot (which the fast path does not stuff; header lines never do).
fn cut(head: &str, markers: &[(&str, Piece)], unsubscribe: bool) -> Option<Vec<Piece>> {
    let mut pieces = Vec::new();
    let mut literal = String::new();
    let push = |pieces: &mut Vec<Piece>, literal: &mut String, piece: Piece| {
        if !literal.is_empty() {
            pieces.push(Piece::Literal(std::mem::take(literal)));
        }
        pieces.push(piece);
    };
    // Fields: a line that does not start with white space, and its continuation lines.
    let mut fields: Vec<String> = Vec::new();
    for line in head.split("\r\n") {
        match fields.last_mut() {
            Some(field) if line.starts_with([' ', '\t']) => {
                field.push_str(line);
                field.push_str("\r\n");
            }
            _ => fields.push(format!("{line}\r\n")),
        }
    }
    for field in &fields {
        let name = field.split_once(':')?.0;
        if name.eq_ignore_ascii_case("To") {
            push(&mut pieces, &mut literal, Piece::To);
            continue;
        }
        if name.eq_ignore_ascii_case("Date") {
            push(&mut pieces, &mut literal, Piece::Date);
            continue;
        }
        let mut rest = field.as_str();
        loop {
            let next = markers
                .iter()
                .filter_map(|(marker, piece)| rest.find(*marker).map(|at| (at, *marker, piece)))
                .min_by_key(|(at, _, _)| *at);
            let Some((at, marker, piece)) = next else {
                literal.push_str(rest);
                break;
            };
            literal.push_str(&rest[..at]);
            push(&mut pieces, &mut literal, piece.clone());
            rest = &rest[at + marker.len()..];
        }
    }
    // The blank line that ends the header block.
    literal.push_str("\r\n");
    pieces.push(Piece::Literal(literal));
    let count = |wanted: &Piece| pieces.iter().filter(|p| *p == wanted).count();
    let complete = count(&Piece::To) == 1
        && count(&Piece::Date) == 1
        && count(&Piece::MessageId) == 1
        && count(&Piece::Boundary) == 1
        && count(&Piece::UnsubscribeUrl) == usize::from(unsubscribe);
    let no_dot_lines = pieces.iter().all(|p| match p {
        Piece::Literal(s) => !s.starts_with('.') && !s.contains("\r\n."),
        _ => true,
    });
    (complete && no_dot_lines).then_some(pieces)
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Cache {
    /// The message as it goes after DATA (dot-stuffed, with its final dot), or `None`
    /// when it must take lettre's path. `to` is the checked recipient; `mail` has passed
    /// the checks both paths make first.
    pub(super) fn build(
        &self,
        from: &Mailbox,
        mail: &OutgoingMail,
        to: Mailbox,
        eight_bit: bool,
        stamp: &Stamp,
    ) -> Result<Option<String>, MailError> {
        let url = match &mail.list_unsubscribe {
            Some(url) => Some(self.unsubscribe_url(url)?),
            None => None,
        };
        let skeleton = self.skeleton(from, mail)?;
        let Some(head) = &skeleton.head else {
            return Ok(None);
        };
        let date = self.date_line(stamp.date);
        let to_line = to_line(to);

        let literal: usize = head
            .iter()
            .map(|p| match p {
                Piece::Literal(s) => s.len(),
                _ => 0,
            })
            .sum();
        let bodies = mail.text.len() + mail.html.len();
        // Room for the variable fields, the part headers and boundaries, CRLF line ends
        // (a line every 16 bytes would still fit) and dot-stuffing.
        let capacity = literal
            + 2 * mail.to_name.len()
            + mail.to_email.len()
            + 64
            + date.len()
            + stamp.message_id.len()
            + url.as_ref().map_or(0, |u| u.len())
            + 3 * (BOUNDARY_LEN + 8)
            + 2 * 96
            + bodies
            + bodies / 16
            + 16;
        let mut out = String::with_capacity(capacity);
        for piece in head {
            match piece {
                Piece::Literal(s) => out.push_str(s),
                // Header fields never start with a dot, and folding starts each
                // continuation line with a space: nothing here to stuff.
                Piece::To => out.push_str(&to_line),
                Piece::Date => out.push_str(&date),
                Piece::MessageId => out.push_str(&stamp.message_id),
                Piece::UnsubscribeUrl => out.push_str(url.as_deref().unwrap_or_default()),
                Piece::Boundary => out.push_str(&stamp.boundary),
            }
        }
        for (kind, text) in [(Kind::Plain, &mail.text), (Kind::Html, &mail.html)] {
            out.push_str("--");
            out.push_str(&stamp.boundary);
            out.push_str("\r\n");
            if !push_part(&mut out, kind, text, eight_bit) {
                return Ok(None);
            }
        }
        out.push_str("--");
        out.push_str(&stamp.boundary);
        out.push_str("--\r\n");
        // The end of the data, as `DataBody` writes it.
        out.push_str("\r\n.\r\n");
        Ok(Some(out))
    }

    /// The serialized unsubscribe link, as `ListUnsubscribe::new` makes it, and with its
    /// errors; without parsing when it is a known prefix and a token.
    fn unsubscribe_url<'a>(&self, url: &'a str) -> Result<Cow<'a, str>, MailError> {
        if let Some(prefix) = self.unsubscribe_prefix.get()
            && is_prefix_and_token(url, prefix)
        {
            return Ok(Cow::Borrowed(url));
        }
        let checked = ListUnsubscribe::new(url).map_err(MailError::Permanent)?;
        if checked.url() == url
            && let Some((dir, _)) = url.rsplit_once('/')
        {
            let prefix = format!("{dir}/");
            // The last segment is in the path (not the host), and nothing after it is a
            // query or fragment: what follows the prefix is one path segment.
            let in_path = prefix
                .split_once("://")
                .is_some_and(|(_, rest)| rest.contains('/'));
            if in_path && !prefix.contains(['?', '#']) && is_prefix_and_token(url, &prefix) {
                let _ = self.unsubscribe_prefix.set(prefix);
            }
        }
        Ok(Cow::Owned(checked.url().to_owned()))
    }

    fn skeleton(&self, from: &Mailbox, mail: &OutgoingMail) -> Result<Arc<Skeleton>, MailError> {
        if let Some(found) = lock(&self.skeletons).iter().find(|s| s.matches(mail)) {
            return Ok(found.clone());
        }
        let made = Arc::new(Skeleton::new(from, mail)?);
        let mut skeletons = lock(&self.skeletons);
        if skeletons.len() >= CACHED_SKELETONS {
            skeletons.clear();
        }
        skeletons.push(made.clone());
        Ok(made)
    }

    /// `Date: ...` with its CRLF, formatted by lettre once a second.
    fn date_line(&self, date: SystemTime) -> String {
        let second = date.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let mut cached = lock(&self.date);
        if cached.0 != second || cached.1.is_empty() {
            let mut line = Headers::new();
            line.set(header::Date::new(date));
            *cached = (second, line.to_string());
        }
        cached.1.clone()
    }
}

/// `To: ...` with its CRLF, as lettre writes it. Names of letters, digits, `-`, `_`, `.`
/// and spaces, short enough never to be folded, are written here the way lettre's
/// `quoted_string` writes them (as they are without spaces, in quotes with); any other
/// name goes through lettre, which quotes, escapes, encodes (RFC 2047) and folds it.
fn to_line(to: Mailbox) -> String {
    /// Longest name written here: "To: " and the opening quote leave 76 - 5 for it
    /// before lettre would fold at a space.
    const LONGEST_NAME: usize = 76 - 5;
    let word = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.');
    let email: &str = to.email.as_ref();
    let mut line =
        String::with_capacity(12 + email.len() + to.name.as_ref().map_or(0, String::len));
    match &to.name {
        None => {
            line.push_str("To: ");
            line.push_str(email);
        }
        Some(name) if !name.is_empty() && name.bytes().all(word) => {
            line.push_str("To: ");
            line.push_str(name);
            line.push_str(" <");
            line.push_str(email);
            line.push('>');
        }
        Some(name)
            if !name.is_empty()
                && name.len() <= LONGEST_NAME
                && !name.starts_with(' ')
                && !name.ends_with(' ')
                && name.bytes().all(|b| b == b' ' || word(b)) =>
        {
            line.push_str("To: \"");
            line.push_str(name);
            line.push_str("\" <");
            line.push_str(email);
            line.push('>');
        }
        Some(_) => {
            let mut headers = Headers::new();
            headers.set(header::To::from(Mailboxes::from(to)));
            return headers.to_string();
        }
    }
    line.push_str("\r\n");
    line
}

/// `url` is `prefix` and then one or more letters and digits, and no longer than
/// `ListUnsubscribe::new` allows.
fn is_prefix_and_token(url: &str, prefix: &str) -> bool {
    url.len() <= 900
        && url.strip_prefix(prefix).is_some_and(|token| {
            !token.is_empty() && token.bytes().all(|b| b.is_ascii_alphanumeric())
        })
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    Plain,
    Html,
}

/// The headers lettre gives a text part of this kind and encoding, CRLF after each.
fn part_head(kind: Kind, encoding: ContentTransferEncoding) -> Cow<'static, str> {
    fn format(kind: Kind, encoding: ContentTransferEncoding) -> String {
        let body = Body::dangerous_pre_encoded(Vec::new(), encoding);
        let part = match kind {
            Kind::Plain => SinglePart::plain(body),
            Kind::Html => SinglePart::html(body),
        };
        part.headers().to_string()
    }
    // The four encodings a text body gets, formatted once.
    const ENCODINGS: [ContentTransferEncoding; 4] = [
        ContentTransferEncoding::SevenBit,
        ContentTransferEncoding::EightBit,
        ContentTransferEncoding::QuotedPrintable,
        ContentTransferEncoding::Base64,
    ];
    static HEADS: LazyLock<[[String; 4]; 2]> = LazyLock::new(|| {
        [Kind::Plain, Kind::Html].map(|kind| ENCODINGS.map(|encoding| format(kind, encoding)))
    });
    let row = match kind {
        Kind::Plain => 0,
        Kind::Html => 1,
    };
    match ENCODINGS.iter().position(|e| *e == encoding) {
        Some(column) => Cow::Borrowed(&HEADS[row][column]),
        None => Cow::Owned(format(kind, encoding)),
    }
}

/// Appends a part: its headers, a blank line, the body and CRLF, as `SinglePart`
/// formats it, the body dot-stuffed. The body as `super::body` encodes it: the text
/// itself with CRLF line ends when the server takes 8BITMIME and its lines fit, lettre's
/// encoding otherwise. `false` when lettre's encoding is not text (never for a string).
fn push_part(out: &mut String, kind: Kind, text: &str, eight_bit: bool) -> bool {
    if eight_bit {
        let encoding = if text.is_ascii() {
            ContentTransferEncoding::SevenBit
        } else {
            ContentTransferEncoding::EightBit
        };
        let start = out.len();
        out.push_str(&part_head(kind, encoding));
        out.push_str("\r\n");
        if push_lines_stuffed(out, text) {
            out.push_str("\r\n");
            return true;
        }
        // A CR, a NUL or a line too long: encoded after all.
        out.truncate(start);
    }
    let body = Body::new(text.to_owned());
    let Ok(encoded) = std::str::from_utf8(body.as_ref()) else {
        return false;
    };
    out.push_str(&part_head(kind, body.encoding()));
    out.push_str("\r\n");
    push_stuffed(out, encoded);
    out.push_str("\r\n");
    true
}

/// Appends `text` with CRLF for each LF and a dot doubled at the start of every line
/// (RFC 5321 4.5.2; `out` ends a line). `false`, with part of it appended, when `text`
/// holds a CR or a NUL or a line longer than [`MAX_LINE`] (what `super::crlf_lines`
/// refuses).
///
/// One pass: `memchr3` finds LF, CR and NUL together, many bytes at a time. Searching
/// for each in turn (CR, NUL, then the lines) was a third of the time of this path.
fn push_lines_stuffed(out: &mut String, text: &str) -> bool {
    let mut line_start = 0;
    for at in memchr::memchr3_iter(b'\n', b'\r', b'\0', text.as_bytes()) {
        if text.as_bytes()[at] != b'\n' || !push_line(out, &text[line_start..at]) {
            return false;
        }
        out.push_str("\r\n");
        line_start = at + 1;
    }
    push_line(out, &text[line_start..])
}

/// Appends one line (without its end), its leading dot doubled; `false` when it is
/// longer than [`MAX_LINE`].
fn push_line(out: &mut String, line: &str) -> bool {
    if line.len() > MAX_LINE {
        return false;
    }
    if line.starts_with('.') {
        out.push('.');
    }
    out.push_str(line);
    true
}

/// Appends `text` (CRLF line ends) with a dot doubled at the start of every line, as
/// `DataBody` does (`out` ends a line).
fn push_stuffed(out: &mut String, text: &str) {
    if text.starts_with('.') {
        out.push('.');
    }
    let mut from = 0;
    for (at, _) in text.match_indices("\r\n.") {
        out.push_str(&text[from..at + 2]);
        out.push('.');
        from = at + 2;
    }
    out.push_str(&text[from..]);
}

#[cfg(test)]
mod tests {
    use super::super::smtp::{dot_stuffed, test_smtp_server::parse};
    use super::super::{MailSettings, Mailer};
    use super::*;
    use proptest::prelude::*;
    use std::time::Duration;

    const FROM: &str = "SZPU News – 深圳 <news@szpu.example.edu>";

    /// A mailer for SMTP (nothing is connected until a send) or, with `dkim`, one that
    /// signs: only the first takes the quick path.
    fn mailer() -> Mailer {
        Mailer::new(&MailSettings {
            smtp_url: Some(crate::config::Secret::new("smtp://127.0.0.1:9")),
            outbox_dir: std::env::temp_dir(),
            from: FROM.parse().unwrap(),
            dkim: None,
            pool_size: 1,
            timeout: Duration::from_secs(1),
        })
        .unwrap()
    }

    fn digest(name: &str, subject: &str) -> OutgoingMail {
        OutgoingMail {
            to_email: "zhang.wei@partner.example.edu".into(),
            to_name: name.into(),
            subject: subject.into(),
            text: "Hello,\n\n.a line starting with a dot\n.\n..\nEvents: 研讨会 🎓\n".into(),
            html: "<p>早上好 <b>Zhang</b> &amp; co</p>\n<p>.dot</p>\n".into(),
            list_unsubscribe: Some(format!(
                "https://news.example.edu/unsubscribe/{}",
                "0123456789abcdef".repeat(4)
            )),
            list_id: Some("partners.news.example.edu".into()),
        }
    }

    /// The message both ways with the same stamp: (quick, lettre's), both as sent after
    /// DATA. `None` for the quick one when it stepped aside.
    fn both_ways(
        mailer: &Mailer,
        mail: &OutgoingMail,
        eight_bit: bool,
    ) -> (Option<String>, String) {
        let stamp = Stamp::new(mailer.inner.from.email.domain());
        let (to, envelope) = mailer.recipient(mail).unwrap();
        let quick = mailer
            .inner
            .skeletons
            .build(&mailer.inner.from, mail, to.clone(), eight_bit, &stamp)
            .unwrap();
        let lettre = mailer
            .build(mail, to, envelope, eight_bit, &stamp)
            .unwrap()
            .formatted();
        (quick, dot_stuffed(&lettre).unwrap())
    }

    /// The message as it was before SMTP stuffed it.
    fn unstuffed(data: &str) -> String {
        let message = data.strip_suffix("\r\n.\r\n").expect("the final dot");
        let message = message.strip_prefix('.').unwrap_or(message);
        message.replace("\r\n..", "\r\n.")
    }

    #[tokio::test]
    async fn the_quick_way_writes_what_lettre_writes_byte_for_byte() {
        let mailer = mailer();
        let mut names: Vec<String> = [
            "",
            "Ada",
            "x_y-z.w",
            "Reader 7",
            "Ada  Lovelace",
            "Zhang Wei 张伟",
            "Doe, \"Johnny\" Jr.",
            ".starts with a dot",
            "O'Brien (Partner Office) <admin@example.org>",
            "Maximilian Alexander Ferdinand von Hohenzollern-Sigmaringen und Württemberg der Dritte",
            "Maximilian Alexander Ferdinand von Hohenzollern Sigmaringen und Wuerttemberg der Dritte",
            "  padded  ",
        ]
        .map(String::from)
        .into();
        // Around the length at which lettre starts folding a quoted name.
        for len in 66..=76 {
            let mut name: String = "ab cd ".repeat(20).chars().take(len - 1).collect();
            name.push('z');
            names.push(name);
            names.push("x".repeat(len));
        }
        let subjects = [
            "Weekly digest",
            "Partner News: Week 45, 6–12 November 2023",
            "合作伙伴新闻：2023年第45周 · Partner news for the week that runs from the sixth to the twelfth",
            "A \"quoted\" subject with =?utf-8?q?lookalike?= encoded words",
        ];
        let mut cases = 0;
        for subject in subjects {
            for name in &names {
                for eight_bit in [true, false] {
                    let mail = digest(name, subject);
                    let (quick, lettre) = both_ways(&mailer, &mail, eight_bit);
                    assert_eq!(
                        quick.as_deref(),
                        Some(lettre.as_str()),
                        "{name:?} {subject:?}"
                    );
                    cases += 1;
                }
            }
        }
        // Bodies that take lettre's encodings, and messages without the list headers.
        let long_line = format!("<p>{}</p>", "wide ".repeat(300));
        let bodies: [(&str, &str); 6] = [
            ("", ""),
            ("plain ASCII\nsecond line\n", "<p>ascii</p>"),
            ("CRLF already\r\nand a dot\r\n.\r\n", "<p>x</p>\r\n"),
            ("NUL \0 inside", "<p>y</p>"),
            ("short", long_line.as_str()),
            (".\n.\n", ".leading dot and no newline at the end"),
        ];
        for (text, html) in bodies {
            for eight_bit in [true, false] {
                let mut mail = digest("Ada", "Weekly digest");
                mail.text = text.into();
                mail.html = html.into();
                let (quick, lettre) = both_ways(&mailer, &mail, eight_bit);
                assert_eq!(quick.as_deref(), Some(lettre.as_str()), "{text:?} {html:?}");
                mail.list_unsubscribe = None;
                mail.list_id = None;
                let (quick, lettre) = both_ways(&mailer, &mail, eight_bit);
                assert_eq!(quick.as_deref(), Some(lettre.as_str()), "{text:?} {html:?}");
                cases += 2;
            }
        }
        // Unsubscribe links that are not a known prefix and a token: parsed, and written
        // as parsing serializes them.
        for url in [
            "https://news.example.edu/unsubscribe/tok_123",
            "https://news.example.edu/unsubscribe/a b?x=<1>",
            "https://NEWS.example.edu/unsubscribe/%7Ex",
            "https://news.example.edu/other/abc",
            &format!("https://news.example.edu/unsubscribe/{}", "a".repeat(600)),
        ] {
            let mut mail = digest("Ada", "Weekly digest");
            mail.list_unsubscribe = Some(url.into());
            let (quick, lettre) = both_ways(&mailer, &mail, true);
            assert_eq!(quick.as_deref(), Some(lettre.as_str()), "{url}");
            cases += 1;
        }
        assert_eq!(cases, 4 * names.len() * 2 + 6 * 2 * 2 + 5);
        // One skeleton per subject and set of list headers.
        assert_eq!(lock(&mailer.inner.skeletons.skeletons).len(), 4 + 1);
    }

    #[tokio::test]
    async fn mail_parser_reads_the_same_message_both_ways() {
        let mailer = mailer();
        for name in ["Zhang Wei 张伟", "Doe, \"Johnny\" Jr.", "Ada"] {
            let mail = digest(name, "合作伙伴新闻：Partner News, week 45");
            let (quick, lettre) = both_ways(&mailer, &mail, true);
            let quick = parse(unstuffed(&quick.expect("the quick way")).as_bytes());
            let lettre = parse(unstuffed(&lettre).as_bytes());

            assert_eq!(quick.from.as_deref(), Some("news@szpu.example.edu"));
            assert_eq!(quick.from_name.as_deref(), Some("SZPU News – 深圳"));
            assert_eq!(quick.to, ["zhang.wei@partner.example.edu"]);
            assert_eq!(quick.to_names, [name]);
            assert_eq!(
                quick.subject.as_deref(),
                Some("合作伙伴新闻：Partner News, week 45")
            );
            assert_eq!(
                quick.header("List-Unsubscribe"),
                Some(format!("<{}>", mail.list_unsubscribe.as_deref().unwrap()).as_str())
            );
            assert_eq!(
                quick.header("List-Unsubscribe-Post"),
                Some("List-Unsubscribe=One-Click")
            );
            assert_eq!(quick.header("List-Id"), Some("<partners.news.example.edu>"));
            assert!(
                quick
                    .message_id
                    .as_deref()
                    .is_some_and(|id| id.ends_with("@szpu.example.edu"))
            );
            assert!(quick.date.is_some());
            assert_eq!(quick.content_type, "multipart/alternative");
            assert_eq!(
                quick.part_types,
                ["text/plain; charset=utf-8", "text/html; charset=utf-8"]
            );
            assert_eq!(
                quick.text.as_deref(),
                Some(mail.text.replace('\n', "\r\n").as_str())
            );
            assert_eq!(
                quick.html.as_deref(),
                Some(mail.html.replace('\n', "\r\n").as_str())
            );

            for (a, b) in [
                (&quick.from, &lettre.from),
                (&quick.from_name, &lettre.from_name),
                (&quick.subject, &lettre.subject),
                (&quick.message_id, &lettre.message_id),
                (&quick.date, &lettre.date),
                (&quick.text, &lettre.text),
                (&quick.html, &lettre.html),
            ] {
                assert_eq!(a, b);
            }
            assert_eq!(quick.to, lettre.to);
            assert_eq!(quick.to_names, lettre.to_names);
            assert_eq!(quick.headers, lettre.headers);
            assert_eq!(quick.content_type, lettre.content_type);
            assert_eq!(quick.part_types, lettre.part_types);
        }
    }

    #[tokio::test]
    async fn lines_starting_with_a_dot_are_stuffed_as_they_are_copied() {
        let mailer = mailer();
        let mut mail = digest("Ada", "Weekly digest");
        mail.text = ".first\n.\nmiddle\n..two\n".into();
        mail.html = ".<p>x</p>".into();
        let stamp = Stamp::new("szpu.example.edu");
        let (to, _) = mailer.recipient(&mail).unwrap();
        let data = mailer
            .inner
            .skeletons
            .build(&mailer.inner.from, &mail, to, true, &stamp)
            .unwrap()
            .unwrap();
        assert!(
            data.contains("\r\n\r\n..first\r\n..\r\nmiddle\r\n...two\r\n\r\n--"),
            "{data}"
        );
        assert!(data.contains("\r\n\r\n..<p>x</p>\r\n--"), "{data}");
        // The only line that is a lone dot is the last one.
        assert_eq!(data.matches("\r\n.\r\n").count(), 1);
        assert!(data.ends_with("--\r\n\r\n.\r\n"));
        let parsed = parse(unstuffed(&data).as_bytes());
        assert_eq!(
            parsed.text.as_deref(),
            Some(".first\r\n.\r\nmiddle\r\n..two\r\n")
        );
        assert_eq!(parsed.html.as_deref(), Some(".<p>x</p>"));
    }

    proptest! {
        /// The one-pass copy makes what the LF-to-CRLF conversion and the dot-stuffing
        /// made in two, and refuses what the conversion refused.
        #[test]
        fn copying_a_body_converts_checks_and_stuffs_in_one_pass(
            pieces in proptest::collection::vec(
                prop_oneof![
                    "[a.\\n\\r\\x00é]{0,40}",
                    (990usize..1005).prop_map(|n| "x".repeat(n)),
                ],
                0..8,
            )
        ) {
            let text = pieces.concat();
            let mut out = String::from("\r\n");
            let quick = push_lines_stuffed(&mut out, &text).then(|| out[2..].to_owned());
            let two_passes = super::super::crlf_lines(&text, MAX_LINE).map(|crlf| {
                let stuffed = dot_stuffed(&crlf).unwrap();
                stuffed.strip_suffix("\r\n.\r\n").unwrap().to_owned()
            });
            prop_assert_eq!(quick, two_passes);
        }
    }

    #[tokio::test]
    async fn known_unsubscribe_prefixes_skip_the_url_parser_only_for_tokens() {
        let cache = Cache::default();
        let base = "https://news.example.edu/unsubscribe/";
        assert_eq!(
            cache.unsubscribe_url(&format!("{base}abc123")).unwrap(),
            format!("{base}abc123")
        );
        assert_eq!(
            cache.unsubscribe_prefix.get().map(String::as_str),
            Some(base)
        );
        for (url, serialized) in [
            (format!("{base}.."), "https://news.example.edu/".to_owned()),
            (format!("{base}a b"), format!("{base}a%20b")),
            (format!("{base}x?y"), format!("{base}x?y")),
        ] {
            assert_eq!(cache.unsubscribe_url(&url).unwrap(), serialized, "{url}");
        }
        assert!(
            cache
                .unsubscribe_url(&format!("{base}{}", "a".repeat(900)))
                .is_err()
        );
        assert!(cache.unsubscribe_url("/unsubscribe/abc").is_err());

        // A link without a path learns no prefix: a host is not a token.
        let cache = Cache::default();
        assert_eq!(
            cache.unsubscribe_url("https://example.edu").unwrap(),
            "https://example.edu/"
        );
        assert_eq!(cache.unsubscribe_prefix.get(), None);
    }

    #[tokio::test]
    async fn refusals_are_the_same_the_quick_way() {
        let mailer = mailer();
        type Change = fn(&mut OutgoingMail);
        let cases: [(&str, Change); 4] = [
            ("bad address", |m| m.to_email = "not an address".into()),
            ("line break in name", |m| {
                m.to_name = "Ada\r\nBcc: evil@example.org".into()
            }),
            ("relative unsubscribe link", |m| {
                m.list_unsubscribe = Some("/unsubscribe/x".into())
            }),
            ("bad list id", |m| m.list_id = Some("no dots".into())),
        ];
        for (why, change) in cases {
            let mut mail = digest("Ada", "Weekly digest");
            change(&mut mail);
            let err = mailer.build_mail(&mail).unwrap_err();
            assert!(!err.is_temporary(), "{why}: {err}");
        }
    }

    #[tokio::test]
    async fn a_sender_domain_lettre_encodes_takes_lettres_way() {
        let settings = MailSettings {
            smtp_url: Some(crate::config::Secret::new("smtp://127.0.0.1:9")),
            outbox_dir: std::env::temp_dir(),
            from: "News <news@bücher.example>".parse().unwrap(),
            dkim: None,
            pool_size: 1,
            timeout: Duration::from_secs(1),
        };
        let mailer = Mailer::new(&settings).unwrap();
        let mail = digest("Ada", "Weekly digest");
        let (quick, _) = both_ways(&mailer, &mail, true);
        assert_eq!(quick, None);
        assert!(mailer.build_mail(&mail).unwrap().stuffed.is_some());
    }
}
