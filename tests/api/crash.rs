//! A send killed in the middle and started again: the rest is sent, nobody is skipped,
//! and a message sent twice (accepted in the instant before the kill, its mark not yet
//! committed) is byte for byte its first copy, counted at the SMTP server.

use crate::smtp_server::{Behaviour, SmtpServer, parse};
use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const CONTACTS: usize = 60;
const MEMBERS: usize = 8 + CONTACTS;

// Several threads: the test blocks on the child processes while the SMTP server, a
// task of this runtime, must keep answering them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_and_restarted_send_completes_with_no_gap_and_identical_resends() {
    let smtp = SmtpServer::start(Behaviour::accept_all()).await;
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("crash.db").display());
    let newsdesk = |args: &[&str]| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_newsdesk"));
        c.args(args)
            .env("DATABASE_URL", &db)
            .env("NEWSDESK_SMTP_URL", smtp.url())
            .env("NEWSDESK_MAIL_FROM", "SZPU News <news@szpu.example.edu>")
            // Slow and in small batches, so the kill lands mid-digest.
            .env("NEWSDESK_SEND_RATE", "40")
            .env("NEWSDESK_SEND_BATCH", "5")
            .env("NEWSDESK_SEND_CONCURRENCY", "1")
            .env("NEWSDESK_DELIVERY_LEASE_SECS", "2")
            .env("NEWSDESK_POLL_MS", "100")
            .env("NEWSDESK_RETRY_BASE_SECS", "1")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        c
    };
    assert!(newsdesk(&["demo"]).status().unwrap().success());
    let csv = dir.path().join("contacts.csv");
    let rows: String = (0..CONTACTS)
        .map(|n| format!("member{n}@example.org,Member {n}\n"))
        .collect();
    std::fs::write(&csv, format!("email,name\n{rows}")).unwrap();
    let out = newsdesk(&[
        "subscribers",
        "import",
        csv.to_str().unwrap(),
        "--list",
        "partners",
        "--consent-source",
        "test",
    ])
    .output()
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let send = [
        "digest", "send", "--list", "partners", "--period", "2023-W45",
    ];
    let mut first = newsdesk(&send).spawn().unwrap();
    let started = Instant::now();
    while smtp.messages().len() < 20 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the first run stalled"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    // Killed between two messages (40 per second: 25 ms apart), the hard way.
    tokio::time::sleep(Duration::from_millis(8)).await;
    first.kill().unwrap();
    first.wait().unwrap();
    let at_kill = smtp.messages().len();
    assert!(at_kill < MEMBERS, "the kill came too late to test anything");

    let second = newsdesk(&send).output().unwrap();
    let stdout = String::from_utf8_lossy(&second.stdout);
    assert!(
        second.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&second.stderr)
    );
    assert!(
        stdout.contains(&format!("{MEMBERS} sent, 0 failed")),
        "{stdout}"
    );

    let received = smtp.messages();
    let mut per: HashMap<String, Vec<&crate::smtp_server::Received>> = HashMap::new();
    for m in &received {
        for to in &m.rcpt_to {
            per.entry(to.clone()).or_default().push(m);
        }
    }
    assert_eq!(per.len(), MEMBERS, "nobody skipped");
    // A message the server took in the instant before the kill, whose mark was not
    // committed, goes again: at most the messages in flight (one at a time here), and
    // byte for byte the first copy, with the same Message-ID.
    let twice: Vec<_> = per.iter().filter(|(_, m)| m.len() > 1).collect();
    assert!(
        twice.len() <= 1,
        "sent twice: {:?} (killed after {at_kill})",
        twice.iter().map(|(to, _)| to).collect::<Vec<_>>()
    );
    for (to, copies) in &twice {
        assert_eq!(copies.len(), 2, "{to}");
        assert_eq!(
            String::from_utf8_lossy(&copies[0].raw),
            String::from_utf8_lossy(&copies[1].raw),
            "the resend to {to} is not the first copy"
        );
        let (a, b) = (parse(&copies[0].raw), parse(&copies[1].raw));
        assert!(a.message_id.is_some());
        assert_eq!(a.message_id, b.message_id, "{to}");
    }
    eprintln!(
        "crash test: {} resends, all byte-identical to their first copy",
        twice.len()
    );
    assert_eq!(received.len(), MEMBERS + twice.len());
}
