//! The mailer against a real SMTP server on loopback (tests/api/smtp_server.rs), read
//! back with mail-parser; DKIM signatures checked by a verifier written here from
//! RFC 6376, independent of lettre's signer.

use crate::smtp_server::{Behaviour, SmtpServer, parse};
use newsdesk::config::MailSettings;
use newsdesk::mail::{MailError, Mailer, OutgoingMail};
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

const FROM: &str = "Partner News <news@partners.example.edu>";
const RSA_KEY_PEM: &str = include_str!("../fixtures/dkim-test-rsa.pem");

fn settings(vars: &[(&str, &str)]) -> MailSettings {
    let mut map: HashMap<String, String> = HashMap::from([
        ("NEWSDESK_MAIL_FROM".to_owned(), FROM.to_owned()),
        ("NEWSDESK_SMTP_TIMEOUT_SECS".to_owned(), "10".to_owned()),
    ]);
    for (k, v) in vars {
        map.insert(k.to_string(), v.to_string());
    }
    MailSettings::from_lookup(|k| map.get(k).cloned()).expect("valid test mail settings")
}

fn smtp_mailer(server: &SmtpServer) -> Mailer {
    Mailer::new(&settings(&[("NEWSDESK_SMTP_URL", &server.url())])).expect("a mailer")
}

fn mail_to(address: &str) -> OutgoingMail {
    OutgoingMail {
        to_email: address.to_owned(),
        to_name: "Ada Lovelace".to_owned(),
        subject: "Weekly digest".to_owned(),
        text: "Hello Ada".to_owned(),
        html: "<p>Hello Ada</p>".to_owned(),
        list_unsubscribe: None,
        list_id: None,
    }
}

const WAIT: Duration = Duration::from_secs(5);

#[tokio::test]
async fn a_message_arrives_with_every_header_and_both_parts_in_exact_utf8() {
    let server = SmtpServer::start(Behaviour::accept_all()).await;
    let mailer = smtp_mailer(&server);
    let subject = "研讨会 🎉 Weekly digest: Ünïcödé, \"quotes\" & <brackets>";
    let text = "早上好 👋 Ada,\r\n\r\n.a line starting with a dot\r\nEvents: 研讨会 🎓\r\n";
    let html = "<p>早上好 👋 <b>Ada</b> &amp; 研讨会 🎓</p>\r\n<p>.dot</p>\r\n";
    let mail = OutgoingMail {
        to_email: "ada@example.org".into(),
        to_name: "Ada Lovelace (研究)".into(),
        subject: subject.into(),
        text: text.into(),
        html: html.into(),
        list_unsubscribe: Some("https://news.example.edu/unsubscribe/tok_123".into()),
        list_id: Some("partners.news.example.edu".into()),
    };

    let sent = mailer.send(&mail).await.expect("the server accepts");

    let received = server.wait_for(1, WAIT).await;
    assert_eq!(received.len(), 1);
    let message = &received[0];
    assert_eq!(message.mail_from, "news@partners.example.edu");
    assert_eq!(message.rcpt_to, vec!["ada@example.org"]);
    let parsed = parse(&message.raw);
    assert_eq!(parsed.subject.as_deref(), Some(subject));
    assert_eq!(parsed.from.as_deref(), Some("news@partners.example.edu"));
    assert_eq!(parsed.from_name.as_deref(), Some("Partner News"));
    assert_eq!(parsed.to, vec!["ada@example.org"]);
    assert_eq!(parsed.to_names, vec!["Ada Lovelace (研究)"]);
    assert!(parsed.date.is_some(), "a Date header: {:?}", parsed.headers);
    let id = parsed.message_id.as_deref().expect("a Message-ID");
    assert_eq!(format!("<{id}>"), sent.message_id);
    assert!(id.ends_with("@partners.example.edu"), "{id}");
    assert_eq!(parsed.header_all("Message-ID").len(), 1);

    assert_eq!(parsed.content_type, "multipart/alternative");
    assert_eq!(
        parsed.part_types,
        vec!["text/plain; charset=utf-8", "text/html; charset=utf-8"]
    );
    assert_eq!(parsed.text.as_deref(), Some(text));
    assert_eq!(parsed.html.as_deref(), Some(html));

    assert_eq!(
        parsed.header("List-Unsubscribe"),
        Some("<https://news.example.edu/unsubscribe/tok_123>")
    );
    assert_eq!(
        parsed.header("List-Unsubscribe-Post"),
        Some("List-Unsubscribe=One-Click")
    );
    assert_eq!(
        parsed.header("List-Id"),
        Some("<partners.news.example.edu>")
    );
    assert_eq!(parsed.header("MIME-Version"), Some("1.0"));
    // Headers must be 7-bit: non-ASCII only through RFC 2047 encoded words.
    for (name, value) in &parsed.headers {
        assert!(value.is_ascii(), "{name}: {value}");
    }
}

#[tokio::test]
async fn messages_without_list_fields_carry_no_list_headers() {
    let server = SmtpServer::start(Behaviour::accept_all()).await;
    let mailer = smtp_mailer(&server);
    mailer.send(&mail_to("ada@example.org")).await.unwrap();
    let parsed = parse(&server.wait_for(1, WAIT).await[0].raw);
    for name in ["List-Unsubscribe", "List-Unsubscribe-Post", "List-Id"] {
        assert_eq!(parsed.header(name), None, "{name}");
    }
}

#[tokio::test]
async fn a_451_at_rcpt_is_temporary_and_the_next_try_goes_through() {
    let server = SmtpServer::start(Behaviour::accept_all().temporary_failure_at_rcpt(1)).await;
    let mailer = smtp_mailer(&server);

    let err = mailer.send(&mail_to("ada@example.org")).await.unwrap_err();
    assert!(matches!(err, MailError::Temporary(_)), "{err}");
    assert!(err.message().contains("451"), "{err}");
    assert!(err.message().contains("try later"), "{err}");
    assert!(
        err.message()
            .contains(&format!("127.0.0.1:{}", server.port)),
        "{err}"
    );

    mailer.send(&mail_to("ada@example.org")).await.unwrap();
    assert_eq!(server.wait_for(1, WAIT).await.len(), 1);
}

#[tokio::test]
async fn a_451_after_the_data_is_temporary() {
    let server = SmtpServer::start(Behaviour::accept_all().temporary_failure_at_data(1)).await;
    let mailer = smtp_mailer(&server);
    let err = mailer.send(&mail_to("ada@example.org")).await.unwrap_err();
    assert!(err.is_temporary(), "{err}");
    assert!(err.message().contains("451"), "{err}");
    assert_eq!(server.data_transfers(), 1);
    assert!(server.messages().is_empty());
}

#[tokio::test]
async fn an_unknown_recipient_is_permanent_with_the_servers_reply() {
    let server =
        SmtpServer::start(Behaviour::accept_all().unknown_recipient("nobody@example.org")).await;
    let mailer = smtp_mailer(&server);

    let err = mailer
        .send(&mail_to("nobody@example.org"))
        .await
        .unwrap_err();
    assert!(matches!(err, MailError::Permanent(_)), "{err}");
    assert!(!err.is_temporary());
    assert!(err.message().contains("550"), "{err}");
    assert!(err.message().contains("no such user"), "{err}");

    // The refusal of one recipient leaves the mailer usable for the next.
    mailer.send(&mail_to("ada@example.org")).await.unwrap();
    let received = server.wait_for(1, WAIT).await;
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].rcpt_to, vec!["ada@example.org"]);
}

#[tokio::test]
async fn a_closed_port_is_temporary() {
    // Bind and release a port, so nothing listens there.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let url = format!("smtp://127.0.0.1:{port}");
    let mailer = Mailer::new(&settings(&[("NEWSDESK_SMTP_URL", &url)])).unwrap();
    let err = mailer.send(&mail_to("ada@example.org")).await.unwrap_err();
    assert!(matches!(err, MailError::Temporary(_)), "{err}");
    assert!(
        err.message().contains(&format!("127.0.0.1:{port}")),
        "{err}"
    );
}

#[tokio::test]
async fn a_connection_dropped_after_the_data_is_temporary_and_the_next_send_reconnects() {
    let server = SmtpServer::start(Behaviour::accept_all().drop_after_data(1)).await;
    let mailer = smtp_mailer(&server);

    let err = mailer.send(&mail_to("ada@example.org")).await.unwrap_err();
    assert!(err.is_temporary(), "{err}");

    mailer.send(&mail_to("ada@example.org")).await.unwrap();
    assert_eq!(server.wait_for(1, WAIT).await.len(), 1);
    assert_eq!(server.data_transfers(), 2);
    assert_eq!(server.connections(), 2);
}

#[tokio::test]
async fn a_server_that_does_not_answer_times_out_as_temporary() {
    let server =
        SmtpServer::start(Behaviour::accept_all().greeting_delay(Duration::from_secs(30))).await;
    let mailer = Mailer::new(&settings(&[
        ("NEWSDESK_SMTP_URL", &server.url()),
        ("NEWSDESK_SMTP_TIMEOUT_SECS", "1"),
    ]))
    .unwrap();
    let started = Instant::now();
    let err = mailer.send(&mail_to("ada@example.org")).await.unwrap_err();
    assert!(err.is_temporary(), "{err}");
    assert!(err.message().contains("within 1 s"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn after_a_timeout_the_stuck_connection_is_never_reused() {
    let server = SmtpServer::start(Behaviour::accept_all().stall_after_data(1)).await;
    let mailer = Mailer::new(&settings(&[
        ("NEWSDESK_SMTP_URL", &server.url()),
        ("NEWSDESK_SMTP_TIMEOUT_SECS", "1"),
    ]))
    .unwrap();

    let err = mailer.send(&mail_to("ada@example.org")).await.unwrap_err();
    assert!(err.is_temporary(), "{err}");
    assert!(err.message().contains("may or may not"), "{err}");

    // Had the stuck connection gone back into the pool, this send would wait on it and
    // time out too. The pause lets lettre's pool take back whatever it is given.
    tokio::time::sleep(Duration::from_millis(200)).await;
    mailer.send(&mail_to("ada@example.org")).await.unwrap();
    let received = server.wait_for(1, WAIT).await;
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].connection, 2);
}

#[tokio::test]
async fn lines_of_dots_survive_the_smtp_dot_stuffing() {
    let server = SmtpServer::start(Behaviour::accept_all()).await;
    let mailer = smtp_mailer(&server);
    let mut mail = mail_to("ada@example.org");
    mail.text = "first\r\n.\r\n..two dots\r\n.\r\nlast".into();
    mailer.send(&mail).await.unwrap();
    let received = server.wait_for(1, WAIT).await;
    assert_eq!(received.len(), 1);
    assert_eq!(
        parse(&received[0].raw).text.as_deref(),
        Some(mail.text.as_str())
    );
}

#[tokio::test]
async fn the_test_server_answers_pipelined_commands_in_order() {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let server =
        SmtpServer::start(Behaviour::accept_all().unknown_recipient("x@example.org")).await;
    let stream = tokio::net::TcpStream::connect(("127.0.0.1", server.port))
        .await
        .unwrap();
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    // Everything in one write, as a pipelining client sends it (RFC 2920).
    write
        .write_all(
            b"EHLO client.example\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<x@example.org>\r\n\
              RCPT TO:<b@example.org>\r\nDATA\r\nSubject: hi\r\n\r\n..dot\r\n.\r\n\
              MAIL FROM:<>\r\nRSET\r\nNOOP\r\nQUIT\r\n",
        )
        .await
        .unwrap();
    let mut codes = Vec::new();
    while let Some(line) = lines.next_line().await.unwrap() {
        // Continuation lines of a multi-line reply have a '-' after the code.
        if line.as_bytes().get(3) != Some(&b'-') {
            codes.push(line[..3].to_owned());
        }
    }
    assert_eq!(
        codes,
        [
            "220", "250", "250", "550", "250", "354", "250", "250", "250", "250", "221"
        ]
    );
    let received = server.messages();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].mail_from, "a@example.org");
    assert_eq!(received[0].rcpt_to, vec!["b@example.org"]);
    assert_eq!(received[0].raw, b"Subject: hi\r\n\r\n.dot\r\n");
}

#[tokio::test]
async fn a_refused_login_is_temporary_and_never_shows_the_password() {
    let server =
        SmtpServer::start(Behaviour::accept_all().require_login("news", "right-pass")).await;
    let wrong = format!("smtp://news:wrong-pass-42@127.0.0.1:{}", server.port);
    let mailer = Mailer::new(&settings(&[("NEWSDESK_SMTP_URL", &wrong)])).unwrap();
    assert_eq!(
        mailer.describe(),
        format!("SMTP to 127.0.0.1:{} (plain text, with login)", server.port)
    );
    let err = mailer.send(&mail_to("ada@example.org")).await.unwrap_err();
    assert!(
        err.is_temporary(),
        "a wrong password must not fail the recipient: {err}"
    );
    assert!(err.message().contains("535"), "{err}");
    assert!(err.message().contains("NEWSDESK_SMTP_URL"), "{err}");
    assert!(!err.to_string().contains("wrong-pass-42"), "{err}");
    assert!(!format!("{err:?}").contains("wrong-pass-42"), "{err:?}");

    let right = format!("smtp://news:right-pass@127.0.0.1:{}", server.port);
    let mailer = Mailer::new(&settings(&[("NEWSDESK_SMTP_URL", &right)])).unwrap();
    mailer.send(&mail_to("ada@example.org")).await.unwrap();
    assert_eq!(server.wait_for(1, WAIT).await.len(), 1);
}

#[tokio::test]
async fn sequential_messages_reuse_one_connection() {
    let server = SmtpServer::start(Behaviour::accept_all()).await;
    let mailer = smtp_mailer(&server);
    for i in 0..3 {
        mailer
            .send(&mail_to(&format!("reader{i}@example.org")))
            .await
            .unwrap();
        // A worker between two messages: other tasks get to run.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let received = server.wait_for(3, WAIT).await;
    assert_eq!(received.len(), 3);
    assert_eq!(server.connections(), 1);
    assert!(received.iter().all(|m| m.connection == 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_concurrent_messages_arrive_exactly_once_over_the_pool() {
    let server = SmtpServer::start(Behaviour::accept_all()).await;
    let mailer = Mailer::new(&settings(&[
        ("NEWSDESK_SMTP_URL", &server.url()),
        ("NEWSDESK_SMTP_POOL_SIZE", "4"),
    ]))
    .unwrap();

    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..20 {
        let mailer = mailer.clone();
        tasks.spawn(async move {
            let mut mail = mail_to(&format!("reader{i}@example.org"));
            mail.subject = format!("Digest for reader {i}");
            mailer.send(&mail).await
        });
    }
    let mut sent_ids = HashSet::new();
    while let Some(result) = tasks.join_next().await {
        let sent = result.expect("the task ran").expect("the server accepts");
        assert!(sent_ids.insert(sent.message_id), "a Message-ID used twice");
    }

    let received = server.wait_for(20, WAIT).await;
    assert_eq!(received.len(), 20, "every message once, none twice");
    assert_eq!(server.data_transfers(), 20);
    let recipients: HashSet<String> = received.iter().map(|m| m.rcpt_to.join(",")).collect();
    assert_eq!(recipients.len(), 20);
    let received_ids: HashSet<String> = received
        .iter()
        .map(|m| format!("<{}>", parse(&m.raw).message_id.unwrap()))
        .collect();
    assert_eq!(received_ids, sent_ids);
    for m in &received {
        let parsed = parse(&m.raw);
        let i = m.rcpt_to[0]
            .trim_start_matches("reader")
            .trim_end_matches("@example.org");
        assert_eq!(parsed.subject.unwrap(), format!("Digest for reader {i}"));
    }
    assert!(
        server.peak_concurrent_transactions() <= 4,
        "NEWSDESK_SMTP_POOL_SIZE=4 but {} messages in flight at once",
        server.peak_concurrent_transactions()
    );
    assert!(
        server.connections() < 20,
        "connections are reused: {} for 20 messages",
        server.connections()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_messages_over_the_pool_take_well_under_a_second() {
    // With Nagle's algorithm on, each message waited ~40 ms for the server's delayed ACK
    // of its data before the final dot went out: 200 messages over 4 connections took
    // 2.2 s. Without that stall they take ~50 ms in a debug build; 1.5 s leaves room for
    // a busy machine and still catches the stall (5 s would not).
    let server = SmtpServer::start(Behaviour::accept_all()).await;
    let mailer = Mailer::new(&settings(&[
        ("NEWSDESK_SMTP_URL", &server.url()),
        ("NEWSDESK_SMTP_POOL_SIZE", "4"),
    ]))
    .unwrap();
    // Connections opened before the clock starts, as in a long run.
    mailer.send(&mail_to("warm-up@example.org")).await.unwrap();

    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..200 {
        let mailer = mailer.clone();
        tasks.spawn(async move {
            mailer
                .send(&mail_to(&format!("reader{i}@example.org")))
                .await
        });
    }
    while let Some(result) = tasks.join_next().await {
        result.expect("the task ran").expect("the server accepts");
    }
    let elapsed = started.elapsed();

    assert_eq!(server.messages().len(), 201);
    assert!(
        elapsed < Duration::from_millis(1500),
        "200 messages took {elapsed:?}: is the Nagle stall back?"
    );
    assert!(
        server.connections() <= 4,
        "{} connections for a pool of 4",
        server.connections()
    );
    assert!(server.peak_concurrent_transactions() <= 4);
}

#[tokio::test]
async fn one_connection_carries_many_sequential_messages_quickly() {
    // One connection, one message at a time: a 40 ms stall per message shows as 2.2 s
    // here; without it, 50 messages take ~20 ms in a debug build.
    let server = SmtpServer::start(Behaviour::accept_all()).await;
    let mailer = smtp_mailer(&server);
    let started = Instant::now();
    for i in 0..50 {
        mailer
            .send(&mail_to(&format!("reader{i}@example.org")))
            .await
            .unwrap();
    }
    let elapsed = started.elapsed();
    assert_eq!(server.messages().len(), 50);
    assert_eq!(server.connections(), 1);
    assert!(
        elapsed < Duration::from_secs(1),
        "50 messages took {elapsed:?}"
    );
}

#[tokio::test]
async fn refusals_keep_the_connection_for_the_next_message() {
    // With PIPELINING the refusals come back in a batch of replies, without it one by one.
    for pipelining in [true, false] {
        refusals_keep_the_connection(pipelining).await;
    }
}

async fn refusals_keep_the_connection(pipelining: bool) {
    let mut behaviour = Behaviour::accept_all()
        .unknown_recipient("nobody@example.org")
        .temporary_failure_at_rcpt(1)
        .temporary_failure_at_data(1);
    if !pipelining {
        behaviour = behaviour.without_pipelining();
    }
    let server = SmtpServer::start(behaviour).await;
    let mailer = smtp_mailer(&server);

    // 451 at RCPT, then 451 after the data, then 550 at RCPT: each a reply, after which
    // RSET leaves the connection ready for the next message.
    let err = mailer.send(&mail_to("ada@example.org")).await.unwrap_err();
    assert!(err.is_temporary() && err.message().contains("451"), "{err}");
    let err = mailer.send(&mail_to("ada@example.org")).await.unwrap_err();
    assert!(err.is_temporary() && err.message().contains("451"), "{err}");
    let err = mailer
        .send(&mail_to("nobody@example.org"))
        .await
        .unwrap_err();
    assert!(
        !err.is_temporary() && err.message().contains("550"),
        "{err}"
    );
    mailer.send(&mail_to("ada@example.org")).await.unwrap();

    let received = server.wait_for(1, WAIT).await;
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].rcpt_to, vec!["ada@example.org"]);
    assert_eq!(server.connections(), 1);
    let commands: Vec<String> = server.commands().into_iter().map(|(_, c)| c).collect();
    assert_eq!(
        commands.iter().filter(|c| *c == "RSET").count(),
        3,
        "{commands:?}"
    );
    assert!(!commands.iter().any(|c| c == "QUIT"), "{commands:?}");
    if pipelining {
        // RCPT and DATA of each of the four messages came with their MAIL.
        assert!(
            server.pipelined_commands() >= 8,
            "{}",
            server.pipelined_commands()
        );
    } else {
        assert_eq!(server.pipelined_commands(), 0);
    }
}

#[tokio::test]
async fn a_pooled_connection_the_server_closed_is_replaced_without_an_error() {
    for behaviour in [
        Behaviour::accept_all().idle_limit(Duration::from_millis(100)),
        Behaviour::accept_all().silent_idle_limit(Duration::from_millis(100)),
    ] {
        let server = SmtpServer::start(behaviour.clone()).await;
        let mailer = smtp_mailer(&server);
        mailer.send(&mail_to("ada@example.org")).await.unwrap();
        // The server drops the idle connection; the pool does not know yet.
        tokio::time::sleep(Duration::from_millis(300)).await;
        mailer
            .send(&mail_to("grace@example.org"))
            .await
            .unwrap_or_else(|e| panic!("{behaviour:?}: {e}"));
        let received = server.wait_for(2, WAIT).await;
        assert_eq!(received.len(), 2, "{behaviour:?}");
        assert_eq!(received[1].connection, 2, "{behaviour:?}");
        assert_eq!(server.connections(), 2, "{behaviour:?}");
    }
}

#[tokio::test]
async fn a_timeout_while_connecting_says_the_message_was_not_sent() {
    let server =
        SmtpServer::start(Behaviour::accept_all().greeting_delay(Duration::from_secs(30))).await;
    let mailer = Mailer::new(&settings(&[
        ("NEWSDESK_SMTP_URL", &server.url()),
        ("NEWSDESK_SMTP_TIMEOUT_SECS", "1"),
    ]))
    .unwrap();
    let err = mailer.send(&mail_to("ada@example.org")).await.unwrap_err();
    assert!(err.is_temporary(), "{err}");
    assert!(err.message().contains("while connecting"), "{err}");
    assert!(err.message().contains("was not sent"), "{err}");
}

#[tokio::test]
async fn a_name_with_a_line_break_is_refused_and_nothing_is_sent() {
    let server = SmtpServer::start(Behaviour::accept_all()).await;
    let mailer = smtp_mailer(&server);
    for name in [
        "Eve\r\nBcc: evil@example.org",
        "Eve\nBcc: evil@example.org",
        "Eve\rBcc: evil@example.org",
    ] {
        let mut mail = mail_to("eve@example.org");
        mail.to_name = name.into();
        let err = mailer.send(&mail).await.unwrap_err();
        assert!(matches!(err, MailError::Permanent(_)), "{name:?}: {err}");
    }
    let mut mail = mail_to("eve@example.org");
    mail.subject = "Hi\r\nBcc: evil@example.org".into();
    assert!(!mailer.send(&mail).await.unwrap_err().is_temporary());

    // Awkward but legal names travel safely encoded, to one recipient only.
    let mut mail = mail_to("eve@example.org");
    mail.to_name = "Eve \"the\" <Admin>, Bcc: evil@example.org; 研究".into();
    mailer.send(&mail).await.unwrap();
    let received = server.wait_for(1, WAIT).await;
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].rcpt_to, vec!["eve@example.org"]);
    let parsed = parse(&received[0].raw);
    assert_eq!(parsed.header("Bcc"), None);
    assert_eq!(parsed.header_all("To").len(), 1);
    assert_eq!(parsed.to, vec!["eve@example.org"]);
    assert_eq!(parsed.to_names, vec![mail.to_name.as_str()]);
}

#[tokio::test]
async fn without_an_smtp_url_an_eml_file_appears_in_the_outbox() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = dir.path().join("outbox");
    let mailer = Mailer::new(&settings(&[(
        "NEWSDESK_OUTBOX_DIR",
        outbox.to_str().unwrap(),
    )]))
    .unwrap();
    assert_eq!(mailer.describe(), format!("files in {}/", outbox.display()));
    let mut mail = mail_to("ada@example.org");
    mail.subject = "研讨会 🎉".into();
    mail.list_unsubscribe = Some("https://news.example.edu/unsubscribe/tok".into());

    let sent = mailer.send(&mail).await.unwrap();

    let files: Vec<_> = std::fs::read_dir(&outbox)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(files[0].extension().and_then(|e| e.to_str()), Some("eml"));
    let parsed = parse(&std::fs::read(&files[0]).unwrap());
    assert_eq!(parsed.subject.as_deref(), Some("研讨会 🎉"));
    assert_eq!(parsed.to, vec!["ada@example.org"]);
    assert_eq!(
        format!("<{}>", parsed.message_id.as_deref().unwrap()),
        sent.message_id
    );
    assert_eq!(parsed.text.as_deref(), Some("Hello Ada"));
    assert_eq!(parsed.html.as_deref(), Some("<p>Hello Ada</p>"));
    assert_eq!(
        parsed.header("List-Unsubscribe"),
        Some("<https://news.example.edu/unsubscribe/tok>")
    );
}

// ---------------------------------------------------------------------------------------
// DKIM

fn dkim_mailer(server: &SmtpServer, key_pem: &str) -> (Mailer, tempfile::NamedTempFile) {
    let key_file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(key_file.path(), key_pem).unwrap();
    let mailer = Mailer::new(&settings(&[
        ("NEWSDESK_SMTP_URL", &server.url()),
        ("NEWSDESK_DKIM_SELECTOR", "nd2024"),
        ("NEWSDESK_DKIM_DOMAIN", "partners.example.edu"),
        (
            "NEWSDESK_DKIM_PRIVATE_KEY_FILE",
            key_file.path().to_str().unwrap(),
        ),
    ]))
    .unwrap();
    (mailer, key_file)
}

fn digest_mail() -> OutgoingMail {
    OutgoingMail {
        to_email: "ada@example.org".into(),
        to_name: "Ada Lovelace".into(),
        subject: "研讨会 🎉 this week".into(),
        text: "Events  this week:\r\n\t研讨会 🎓   \r\n\r\n\r\n".into(),
        html: "<p>Events this week: 研讨会 🎓</p>".into(),
        list_unsubscribe: Some("https://news.example.edu/unsubscribe/tok_1".into()),
        list_id: Some("partners.news.example.edu".into()),
    }
}

fn assert_signature_tags(tags: &HashMap<String, String>) {
    assert_eq!(tags["d"], "partners.example.edu");
    assert_eq!(tags["s"], "nd2024");
    assert_eq!(tags["c"], "relaxed/relaxed");
    let signed: Vec<String> = tags["h"]
        .split(':')
        .map(|h| h.trim().to_ascii_lowercase())
        .collect();
    for needed in [
        "from",
        "to",
        "subject",
        "date",
        "message-id",
        "list-unsubscribe",
        "list-unsubscribe-post",
        "list-id",
    ] {
        assert!(
            signed.iter().any(|h| h == needed),
            "h= lacks {needed}: {signed:?}"
        );
    }
}

#[tokio::test]
async fn dkim_with_an_rsa_key_signs_the_list_headers_and_verifies() {
    use rsa::pkcs8::DecodePrivateKey as _;
    let server = SmtpServer::start(Behaviour::accept_all()).await;
    let (mailer, _key_file) = dkim_mailer(&server, RSA_KEY_PEM);
    mailer.send(&digest_mail()).await.unwrap();
    let raw = server.wait_for(1, WAIT).await[0].raw.clone();

    let public = PublicKey::Rsa(
        rsa::RsaPrivateKey::from_pkcs8_pem(RSA_KEY_PEM)
            .unwrap()
            .to_public_key(),
    );
    let tags = dkim::verify(&raw, &public).expect("the signature verifies");
    assert_eq!(tags["a"], "rsa-sha256");
    assert_signature_tags(&tags);
    assert_eq!(parse(&raw).header_all("DKIM-Signature").len(), 1);

    // The verifier is not a rubber stamp: a changed subject or body fails it.
    let tampered =
        String::from_utf8(raw.clone())
            .unwrap()
            .replacen("Subject: ", "Subject: Re: ", 1);
    assert!(dkim::verify(tampered.as_bytes(), &public).is_err());
    let mut tampered = raw.clone();
    let last = tampered.len() - 10;
    tampered[last] ^= 0x01;
    assert!(dkim::verify(&tampered, &public).is_err());
}

#[tokio::test]
async fn dkim_with_an_ed25519_key_signs_and_verifies() {
    use ed25519_dalek::pkcs8::EncodePrivateKey as _;
    let server = SmtpServer::start(Behaviour::accept_all()).await;
    let signing = ed25519_dalek::SigningKey::from_bytes(&rand::random::<[u8; 32]>());
    let pem = signing
        .to_pkcs8_pem(ed25519_dalek::pkcs8::spki::der::pem::LineEnding::LF)
        .unwrap();
    let (mailer, _key_file) = dkim_mailer(&server, &pem);
    mailer.send(&digest_mail()).await.unwrap();
    let raw = server.wait_for(1, WAIT).await[0].raw.clone();

    let public = PublicKey::Ed25519(signing.verifying_key());
    let tags = dkim::verify(&raw, &public).expect("the signature verifies");
    assert_eq!(tags["a"], "ed25519-sha256");
    assert_signature_tags(&tags);
}

pub enum PublicKey {
    Rsa(rsa::RsaPublicKey),
    Ed25519(ed25519_dalek::VerifyingKey),
}

/// A small DKIM verifier for relaxed/relaxed signatures (RFC 6376 3.4.2, 3.4.4, 3.7),
/// RSA-SHA256 and Ed25519-SHA256 (RFC 8463). Returns the signature's tags.
mod dkim {
    use super::PublicKey;
    use base64::Engine;
    use sha2::{Digest, Sha256};
    use std::collections::HashMap;

    /// Header fields in order, each the full text `Name: value` with its folding, without
    /// the final CRLF; and the body.
    fn split(raw: &[u8]) -> Result<(Vec<String>, &[u8]), String> {
        let end = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .ok_or("no end of headers")?;
        let head = std::str::from_utf8(&raw[..end]).map_err(|_| "headers are not UTF-8")?;
        let mut fields: Vec<String> = Vec::new();
        for line in head.split("\r\n") {
            if line.starts_with(' ') || line.starts_with('\t') {
                let last = fields.last_mut().ok_or("continuation before any header")?;
                last.push_str("\r\n");
                last.push_str(line);
            } else {
                fields.push(line.to_owned());
            }
        }
        Ok((fields, &raw[end + 4..]))
    }

    fn is_wsp(c: char) -> bool {
        c == ' ' || c == '\t'
    }

    /// Relaxed header canonicalization: lower-case name, unfolded value, runs of
    /// whitespace as one space, none around the colon or at the end.
    fn canonical_header(field: &str) -> String {
        let (name, value) = field.split_once(':').unwrap_or((field, ""));
        let unfolded = value.replace("\r\n", "");
        let mut out = String::new();
        let mut in_wsp = false;
        for c in unfolded.chars() {
            if is_wsp(c) {
                in_wsp = true;
            } else {
                if in_wsp && !out.is_empty() {
                    out.push(' ');
                }
                in_wsp = false;
                out.push(c);
            }
        }
        format!("{}:{}", name.trim_end().to_ascii_lowercase(), out)
    }

    /// Relaxed body canonicalization.
    fn canonical_body(body: &[u8]) -> Vec<u8> {
        let mut lines: Vec<Vec<u8>> = Vec::new();
        let mut rest = body;
        while !rest.is_empty() {
            let (line, next) = match rest.windows(2).position(|w| w == b"\r\n") {
                Some(i) => (&rest[..i], &rest[i + 2..]),
                None => (rest, &rest[rest.len()..]),
            };
            let mut out = Vec::new();
            let mut in_wsp = false;
            for &b in line {
                if b == b' ' || b == b'\t' {
                    in_wsp = true;
                } else {
                    if in_wsp {
                        out.push(b' ');
                    }
                    in_wsp = false;
                    out.push(b);
                }
            }
            lines.push(out);
            rest = next;
        }
        while lines.last().is_some_and(Vec::is_empty) {
            lines.pop();
        }
        let mut out = Vec::new();
        for line in lines {
            out.extend_from_slice(&line);
            out.extend_from_slice(b"\r\n");
        }
        out
    }

    fn tags(value: &str) -> HashMap<String, String> {
        value
            .split(';')
            .filter_map(|tag| tag.split_once('='))
            .map(|(k, v)| {
                let v: String = v.chars().filter(|c| !c.is_whitespace()).collect();
                (k.trim().to_owned(), v)
            })
            .collect()
    }

    pub fn verify(raw: &[u8], key: &PublicKey) -> Result<HashMap<String, String>, String> {
        let b64 = base64::engine::general_purpose::STANDARD;
        let (fields, body) = split(raw)?;
        let signature_field = fields
            .iter()
            .find(|f| {
                f.split_once(':')
                    .is_some_and(|(n, _)| n.trim().eq_ignore_ascii_case("DKIM-Signature"))
            })
            .ok_or("no DKIM-Signature")?;
        let (_, signature_value) = signature_field.split_once(':').ok_or("bad field")?;
        let tags = tags(signature_value);
        if tags.get("c").map(String::as_str) != Some("relaxed/relaxed") {
            return Err(format!(
                "this verifier only knows relaxed/relaxed: {tags:?}"
            ));
        }

        let body_hash = b64.encode(Sha256::digest(canonical_body(body)));
        if tags.get("bh") != Some(&body_hash) {
            return Err(format!("body hash {body_hash} != bh={:?}", tags.get("bh")));
        }

        // Signed headers, each taken from the bottom up (RFC 6376 5.4.2); a name with no
        // field left contributes nothing.
        let mut used = vec![false; fields.len()];
        let mut hashed = String::new();
        for name in tags.get("h").ok_or("no h=")?.split(':') {
            let found = fields.iter().enumerate().rev().find(|(i, f)| {
                !used[*i]
                    && f.split_once(':')
                        .is_some_and(|(n, _)| n.trim().eq_ignore_ascii_case(name.trim()))
            });
            if let Some((i, field)) = found {
                used[i] = true;
                hashed.push_str(&canonical_header(field));
                hashed.push_str("\r\n");
            }
        }
        // The signature header itself, with an empty b= and no final CRLF.
        let without_b: Vec<String> = signature_field
            .split(';')
            .map(|segment| match segment.split_once('=') {
                Some((k, _)) if k.trim() == "b" => format!("{k}="),
                _ => segment.to_owned(),
            })
            .collect();
        hashed.push_str(&canonical_header(&without_b.join(";")));
        let digest = Sha256::digest(hashed.as_bytes());

        let signature = b64
            .decode(tags.get("b").ok_or("no b=")?)
            .map_err(|e| format!("b= is not base64: {e}"))?;
        match key {
            PublicKey::Rsa(public) => public
                .verify(rsa::Pkcs1v15Sign::new::<Sha256>(), &digest, &signature)
                .map_err(|e| format!("RSA signature does not verify: {e}"))?,
            PublicKey::Ed25519(public) => {
                let signature = ed25519_dalek::Signature::from_slice(&signature)
                    .map_err(|e| format!("not an Ed25519 signature: {e}"))?;
                public
                    .verify_strict(&digest, &signature)
                    .map_err(|e| format!("Ed25519 signature does not verify: {e}"))?
            }
        }
        Ok(tags)
    }
}
