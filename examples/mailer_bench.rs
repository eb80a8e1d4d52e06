//! Sends MESSAGES messages of about SIZE bytes through newsdesk's `Mailer` to an SMTP
//! server, as the weekly digest does: one message built per subscriber, many tasks sharing
//! one pool of POOL connections. Prints the rate. Used by `bench/smtp.sh` against
//! Postfix's `smtp-sink`; only for loopback.
//!
//! ```sh
//! cargo run --release --example mailer_bench -- smtp://127.0.0.1:2525 [MESSAGES] [SIZE] [POOL] [TASKS]
//! ```
//!
//! Defaults: 20000 messages, 8000 bytes, a pool of 4, 32 tasks. SIZE is the whole
//! message as it goes over the wire (headers, MIME parts, text and HTML), before SMTP
//! dot-stuffing.

use anyhow::{Context, bail};
use newsdesk::config::MailSettings;
use newsdesk::mail::{Mailer, OutgoingMail};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

const FROM: &str = "Partner News <news@partners.example.edu>";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(url) = args.first().cloned() else {
        bail!("usage: mailer_bench smtp://127.0.0.1:PORT [MESSAGES] [SIZE] [POOL] [TASKS]");
    };
    let number = |i: usize, default: usize, name: &str| -> anyhow::Result<usize> {
        match args.get(i) {
            Some(v) => v
                .parse()
                .with_context(|| format!("{name} must be a number")),
            None => Ok(default),
        }
    };
    let messages = number(1, 20_000, "MESSAGES")?;
    let size = number(2, 8_000, "SIZE")?;
    let pool = number(3, 4, "POOL")?;
    let tasks = number(4, 32, "TASKS")?.max(1);
    if !url.starts_with("smtp://127.") && !url.starts_with("smtp://localhost") {
        bail!("this benchmark only sends to loopback addresses (got {url})");
    }

    let filler = filler_for(size).await?;
    let settings = settings(&[
        ("NEWSDESK_SMTP_URL", url.as_str()),
        ("NEWSDESK_SMTP_POOL_SIZE", &pool.to_string()),
    ])?;
    let mailer = Mailer::new(&settings)?;
    println!(
        "mailer_bench: {messages} messages of {} bytes to {} over {pool} connections, {tasks} tasks",
        filler.size,
        mailer.describe()
    );

    let next = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    let filler = Arc::new(filler);
    let started = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..tasks {
        let (mailer, next, failed, filler) = (
            mailer.clone(),
            Arc::clone(&next),
            Arc::clone(&failed),
            Arc::clone(&filler),
        );
        set.spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= messages {
                    return;
                }
                if let Err(e) = mailer.send(&filler.mail(i)).await
                    && failed.fetch_add(1, Ordering::Relaxed) < 5
                {
                    eprintln!("message {i}: {e}");
                }
            }
        });
    }
    while let Some(joined) = set.join_next().await {
        joined.context("a sending task panicked")?;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let failed = failed.load(Ordering::Relaxed);
    let sent = messages - failed;
    println!(
        "mailer_bench: {sent} sent, {failed} failed in {elapsed:.3} s: {:.1} messages/s",
        sent as f64 / elapsed
    );
    // The line bench/smtp.sh reads.
    println!("RATE {:.1}", sent as f64 / elapsed);
    if failed > 0 {
        bail!("{failed} messages failed");
    }
    Ok(())
}

fn settings(vars: &[(&str, &str)]) -> anyhow::Result<MailSettings> {
    let mut map: HashMap<&str, String> = HashMap::from([("NEWSDESK_MAIL_FROM", FROM.to_owned())]);
    for (k, v) in vars {
        map.insert(k, (*v).to_owned());
    }
    MailSettings::from_lookup(|k| map.get(k).cloned())
}

/// Text and HTML bodies of plain ASCII lines (sent as 7bit, so their size is what goes
/// over the wire), sized so that the whole message is `size` bytes.
struct Filler {
    text: String,
    html: String,
    size: usize,
}

impl Filler {
    fn new(body_bytes: usize) -> Self {
        let line = "Workshop on skills for the green transition, 9 November, Liuxiandong.";
        let mut text = String::new();
        while text.len() + line.len() + 2 <= body_bytes / 2 {
            text.push_str(line);
            text.push_str("\r\n");
        }
        let mut html = String::new();
        while html.len() + line.len() + 9 <= body_bytes - text.len() {
            html.push_str("<p>");
            html.push_str(line);
            html.push_str("</p>\r\n");
        }
        Self {
            text,
            html,
            size: 0,
        }
    }

    /// The message for subscriber `i`: built per subscriber, as the digest does.
    fn mail(&self, i: usize) -> OutgoingMail {
        OutgoingMail {
            to_email: format!("reader{i}@example.org"),
            to_name: format!("Reader {i}"),
            subject: "Partner news this week".to_owned(),
            text: self.text.clone(),
            html: self.html.clone(),
            list_unsubscribe: Some(format!("https://news.example.edu/unsubscribe/{i:0>43}")),
            list_id: Some("partners.news.example.edu".to_owned()),
        }
    }
}

/// Finds the body size that gives a message of `size` bytes by writing one to an outbox
/// directory and measuring it.
async fn filler_for(size: usize) -> anyhow::Result<Filler> {
    let dir = tempfile::tempdir()?;
    let mailer = Mailer::new(&settings(&[(
        "NEWSDESK_OUTBOX_DIR",
        dir.path().to_str().context("a UTF-8 temp dir")?,
    )])?)?;
    let mut body = size;
    for _ in 0..3 {
        let mut filler = Filler::new(body);
        mailer.send(&filler.mail(0)).await?;
        let mut files = std::fs::read_dir(dir.path())?.collect::<Result<Vec<_>, _>>()?;
        let file = files.pop().context("the outbox holds the message")?;
        let written = std::fs::metadata(file.path())?.len() as usize;
        std::fs::remove_file(file.path())?;
        filler.size = written;
        if written.abs_diff(size) < 80 {
            return Ok(filler);
        }
        body = (body + size).saturating_sub(written).max(100);
    }
    bail!("cannot make a message of {size} bytes")
}
