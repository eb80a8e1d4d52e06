//! The admin pages in a real browser: `tests/e2e/admin.mjs` drives Debian's headless
//! Chromium (playwright-core) against the real server, with the demo content and a
//! real SMTP server on loopback. The script signs in, writes and publishes an item,
//! adds a Chinese version beside its original, imports a CSV with a bad row, previews
//! and sends a digest and signs out, taking screenshots at phone and desktop widths
//! into `target/screenshots/`. This test then checks from the outside what the browser
//! did: the feeds, the item's versions and the mail received.
//!
//! Needs `node`, `tests/e2e/node_modules` and `/usr/bin/chromium`: `bash scripts/test.sh`
//! installs them.

use crate::helpers::{TestApp, spawn_app_with_smtp};
use crate::smtp_server::{Behaviour, SmtpServer, parse};
use newsdesk::clock::Clock;
use newsdesk::domain::{DigestStatus, Role};
use reqwest::StatusCode;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

const ADMIN: &str = "alice";
const PASSWORD: &str = "a long password 123";
/// Rows the script's CSV adds to the `partners` list (see `GOOD_ROWS` in admin.mjs).
const IMPORTED: [&str; 3] = [
    "e2e.amina@example.org",
    "e2e.bruno@example.org",
    "e2e.chen@example.org",
];
/// Pages the script photographs, each at both widths.
const SCREENSHOTS: [&str; 11] = [
    "sign-in",
    "dashboard",
    "items",
    "item-form",
    "item-versions",
    "categories",
    "subscribers",
    "import-preview",
    "lists",
    "list-preview",
    "digest",
];
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(120);

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn chromium() -> PathBuf {
    std::env::var_os("CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"))
}

/// Fails (never skips) when the browser or the Node packages are missing.
fn require_tools() {
    let setup = "run `bash scripts/test.sh` once (it installs Debian's chromium and \
                 `npm ci --prefix tests/e2e`), or install them yourself";
    let playwright = root().join("tests/e2e/node_modules/playwright-core/package.json");
    assert!(
        playwright.is_file(),
        "the browser tests need playwright-core in tests/e2e/node_modules ({} is missing): {setup}",
        playwright.display()
    );
    let chromium = chromium();
    assert!(
        chromium.is_file(),
        "the browser tests need Chromium at {} (set CHROMIUM to use another): {setup}",
        chromium.display()
    );
    let node = std::process::Command::new("node").arg("--version").output();
    let version = node
        .as_ref()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
    let major = version.as_deref().and_then(|v| {
        v.trim_start_matches('v')
            .split('.')
            .next()?
            .parse::<u32>()
            .ok()
    });
    assert!(
        major.is_some_and(|m| m >= 20),
        "the browser tests need `node` 20 or later on the PATH (found {version:?}): {setup}"
    );
}

/// The addresses a digest of `partners` goes to: confirmed, and confirmed on the list.
async fn recipients(app: &TestApp, list_id: i64) -> BTreeSet<String> {
    app.state
        .store
        .people()
        .subscribers_after(Some(list_id), 0, 10_000, true)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.email.to_string().to_lowercase())
        .collect()
}

/// Runs the script, echoing its lines as they come; returns whether it passed and its
/// output.
async fn run_script(envs: &[(&str, String)]) -> (bool, String) {
    let mut child = Command::new("node")
        .arg(root().join("tests/e2e/admin.mjs"))
        .current_dir(root())
        .envs(envs.iter().map(|(k, v)| (*k, v.as_str())))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("starting node");
    let output = Arc::new(Mutex::new(String::new()));
    let mut readers = Vec::new();
    for stream in [
        Box::new(child.stdout.take().unwrap()) as Box<dyn tokio::io::AsyncRead + Send + Unpin>,
        Box::new(child.stderr.take().unwrap()),
    ] {
        let output = output.clone();
        readers.push(tokio::spawn(async move {
            let mut lines = BufReader::new(stream).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                eprintln!("{line}");
                let mut all = output.lock().unwrap();
                all.push_str(&line);
                all.push('\n');
            }
        }));
    }
    let passed = match tokio::time::timeout(SCRIPT_TIMEOUT, child.wait()).await {
        Ok(status) => status.expect("waiting for node").success(),
        Err(_) => {
            let _ = child.kill().await;
            output.lock().unwrap().push_str(&format!(
                "admin.mjs: killed after {} s\n",
                SCRIPT_TIMEOUT.as_secs()
            ));
            false
        }
    };
    for reader in readers {
        let _ = tokio::time::timeout(Duration::from_secs(5), reader).await;
    }
    let all = output.lock().unwrap().clone();
    (passed, all)
}

#[tokio::test(flavor = "multi_thread")]
async fn an_admin_publishes_imports_and_sends_a_digest_in_a_real_browser() {
    require_tools();
    let smtp = SmtpServer::start(Behaviour::accept_all()).await;
    let app = spawn_app_with_smtp(smtp.url()).await;
    app.load_demo().await;
    let hash = newsdesk::passwords::hash(PASSWORD).unwrap();
    app.state
        .store
        .users()
        .create(ADMIN, &hash, Role::Admin, app.clock.now())
        .await
        .unwrap();
    let list = app
        .state
        .store
        .lists()
        .all()
        .await
        .unwrap()
        .into_iter()
        .find(|l| l.slug.as_str() == newsdesk::demo::PARTNERS_LIST)
        .expect("the demo has the partners list");
    let before = recipients(&app, list.id).await;
    assert!(!before.is_empty(), "the demo list has confirmed members");

    let screenshots = root().join("target/screenshots");
    std::fs::create_dir_all(&screenshots).unwrap();
    for name in SCREENSHOTS {
        for width in ["phone", "desktop"] {
            let _ = std::fs::remove_file(screenshots.join(format!("{name}-{width}.png")));
        }
    }
    let _ = std::fs::remove_file(screenshots.join("failure-desktop.png"));
    let title = format!(
        "Notice written in the browser {}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );

    let (passed, output) = run_script(&[
        ("BASE_URL", app.address.clone()),
        ("ADMIN_USER", ADMIN.to_owned()),
        ("ADMIN_PASSWORD", PASSWORD.to_owned()),
        ("CHROMIUM", chromium().display().to_string()),
        ("SCREENSHOTS", screenshots.display().to_string()),
        ("ITEM_TITLE", title.clone()),
        ("LIST_MEMBERS", before.len().to_string()),
    ])
    .await;
    assert!(
        passed,
        "tests/e2e/admin.mjs failed: its output is above ({} lines), screenshots in {}",
        output.lines().count(),
        screenshots.display()
    );

    // The item the browser published is in the feeds, for anyone.
    for feed in ["news", "all"] {
        let (status, body) = app.feed(feed, "atom").await;
        assert_eq!(status, StatusCode::OK);
        assert!(
            body.contains(&title),
            "{title:?} is not in /feeds/{feed}.atom"
        );
    }

    // It has the Chinese version the browser added beside the original.
    let items: serde_json::Value = app
        .admin(reqwest::Method::GET, "/api/v1/items?per_page=200")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let item = items["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["title"] == title.as_str())
        .expect("the browser's item is listed");
    assert_eq!(item["language"], "en");
    assert_eq!(item["translations"][0]["language"], "zh", "{item}");
    assert_eq!(
        item["translations"][0]["title"],
        format!("{title}（中文版）")
    );
    assert!(
        item["translations"][0]["body_html"]
            .as_str()
            .unwrap()
            .contains("<strong>浏览器测试</strong>")
    );

    // The import put the three good rows on the list, confirmed; the bad one nowhere.
    let after = recipients(&app, list.id).await;
    let added: Vec<&str> = after.difference(&before).map(String::as_str).collect();
    assert_eq!(added, IMPORTED, "the imported members");
    assert!(
        app.state
            .store
            .people()
            .subscriber_by_email("not-an-address")
            .await
            .unwrap()
            .is_none()
    );

    // One digest of 2023-W45, sent to every confirmed member once; the preview sent nothing
    // (and no other digest went out: the SMTP server got one message per member).
    let mut digests = Vec::new();
    for _ in 0..100 {
        digests = app
            .state
            .store
            .digests()
            .list(Some(list.id), 10)
            .await
            .unwrap()
            .into_iter()
            .filter(|d| d.period == "2023-W45")
            .collect();
        if digests.iter().all(|d| d.status != DigestStatus::Sending) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(digests.len(), 1, "one digest of 2023-W45: {digests:?}");
    assert_eq!(digests[0].status, DigestStatus::Sent, "{digests:?}");
    let received = smtp.wait_for(after.len(), Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let received_all = smtp.messages();
    assert_eq!(
        received_all.len(),
        after.len(),
        "one message per member, nothing more"
    );
    let mut per: BTreeMap<String, usize> = BTreeMap::new();
    for message in &received {
        for to in &message.rcpt_to {
            *per.entry(to.to_lowercase()).or_default() += 1;
        }
    }
    assert_eq!(per.keys().cloned().collect::<BTreeSet<_>>(), after);
    assert!(per.values().all(|n| *n == 1), "each member once: {per:?}");

    let to_amina = received
        .iter()
        .find(|m| m.rcpt_to.iter().any(|t| t == IMPORTED[0]))
        .expect("the imported member got the digest");
    let mail = parse(&to_amina.raw);
    let subject = mail.subject.clone().unwrap_or_default();
    assert!(
        subject.contains("6–12 November 2023"),
        "the subject names week 45: {subject:?}"
    );
    let (text, html) = (mail.text.clone().unwrap(), mail.html.clone().unwrap());
    for part in [&text, &html] {
        assert!(
            part.contains(
                "2023 UNEVOC Network Coaction Initiative: final session and closing ceremony"
            ),
            "the digest has the event of 9 November: {part}"
        );
    }
    assert!(
        text.contains("Amina E2E"),
        "greets the imported name: {text}"
    );

    // Every page was photographed at both widths.
    for name in SCREENSHOTS {
        for width in ["phone", "desktop"] {
            let file = screenshots.join(format!("{name}-{width}.png"));
            let bytes = std::fs::read(&file)
                .unwrap_or_else(|e| panic!("screenshot {}: {e}", file.display()));
            assert!(
                bytes.starts_with(b"\x89PNG\r\n\x1a\n") && bytes.len() > 1000,
                "{} is not a PNG",
                file.display()
            );
        }
    }
}
