//! Template overrides (`NEWSDESK_TEMPLATES_DIR`) end to end: a page override over HTTP, a
//! mail override and label overrides through the real SMTP server, the admin's digest
//! preview, a broken override refused at start-up by the real binary, and one broken
//! while the service runs: logged, and the built-in used.

use crate::helpers::{Db, HOSTILE_TITLE, TestApp, hostile_event, spawn_app_with};
use crate::smtp_server::{Behaviour, SmtpServer, parse};
use newsdesk::domain::Role;
use reqwest::StatusCode;
use reqwest::header::{COOKIE, SET_COOKIE};
use serde_json::json;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A built-in template or label file's text.
fn builtin(path: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("templates")
            .join(path),
    )
    .unwrap()
}

fn write(dir: &Path, path: &str, text: &str) {
    let file = dir.join(path);
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    // Written to a new file and renamed over the old one, as editors and deployments do,
    // so the poller never reads half a file.
    let tmp = dir.join(format!(".{}.tmp", path.replace('/', "_")));
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(tmp, file).unwrap();
}

/// The built-in item page with a marker in it.
fn item_page_with(marker: &str) -> String {
    let page = builtin("web/item.hbs");
    let changed = page.replace(
        ">{{item.title}}</h1>",
        &format!(" class=\"mine\">{{{{item.title}}}}</h1><p id=\"override\">{marker}</p>"),
    );
    assert_ne!(page, changed, "the item page has its heading");
    changed
}

/// The item page with a variable the data lacks, on line 5.
fn broken_item_page() -> String {
    let page = builtin("web/item.hbs");
    let lines: Vec<&str> = page.lines().collect();
    assert!(lines[4].contains("{{item.title}}"), "{}", lines[4]);
    page.replace(">{{item.title}}</h1>", ">{{item.titel}}</h1>")
}

async fn app_with(db: Db, dir: &Path, smtp: Option<String>) -> Option<TestApp> {
    let dir = dir.to_owned();
    let app = spawn_app_with(db, move |s| {
        s.templates_dir = Some(dir);
        if let Some(url) = smtp {
            s.mail.smtp_url = Some(newsdesk::config::Secret::new(url));
        }
    })
    .await?;
    app.load_demo().await;
    Some(app)
}

/// Waits (the service reads the directory every 2 s) until `check` holds of the status.
async fn until_status(
    app: &TestApp,
    what: &str,
    check: impl Fn(&newsdesk::templates::Status) -> bool,
) {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(15) {
        if check(&app.state.templates.status()) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{what}: {:#?}", app.state.templates.status());
}

async fn page(app: &TestApp, path: &str) -> (StatusCode, String) {
    let r = app.get(path).send().await.unwrap();
    (r.status(), r.text().await.unwrap())
}

#[tokio::test]
async fn a_page_override_is_served_and_one_broken_while_running_gives_way_to_the_built_in() {
    for db in [Db::Sqlite, Db::Postgres] {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "web/item.hbs",
            &item_page_with("Overridden item page"),
        );
        let footer = builtin("web/partials/footer.hbs").replace(
            "</footer>",
            "<p id=\"my-footer\">Our own footer</p></footer>",
        );
        write(dir.path(), "web/partials/footer.hbs", &footer);
        let Some(app) = app_with(db, dir.path(), None).await else {
            continue;
        };
        let item = app.create_item(hostile_event()).await;
        let path = format!("/items/{}", item["slug"].as_str().unwrap());
        let (status, html) = page(&app, &path).await;
        assert_eq!(status, StatusCode::OK, "{db:?}: {html}");
        assert!(
            html.contains("<p id=\"override\">Overridden item page</p>"),
            "{db:?}: {html}"
        );
        assert!(html.contains("Our own footer"), "{db:?}: the partial");
        // Overrides escape as the built-ins do.
        assert!(!html.contains(HOSTILE_TITLE), "{db:?}: {html}");
        assert!(html.contains("&lt;script&gt;alert("), "{db:?}: {html}");
        // The front page (built-in) uses the overridden footer too.
        assert!(page(&app, "/").await.1.contains("Our own footer"));

        // Broken while running: refused, and the built-in is used (not the old override).
        write(dir.path(), "web/item.hbs", &broken_item_page());
        until_status(&app, "the broken page is refused", |s| {
            s.refused.iter().any(|p| p.path == "web/item.hbs")
        })
        .await;
        let status = app.state.templates.status();
        let problem = status
            .refused
            .iter()
            .find(|p| p.path == "web/item.hbs")
            .unwrap();
        assert_eq!(
            problem.to_string().split(": ").next().unwrap(),
            format!("{}:5", dir.path().join("web/item.hbs").display())
        );
        assert!(problem.reason.contains("{{item.titel}}"), "{problem}");
        assert_eq!(status.overridden, ["web/partials/footer.hbs"]);
        let (status, html) = page(&app, &path).await;
        assert_eq!(status, StatusCode::OK, "{db:?}: {html}");
        assert!(
            !html.contains("id=\"override\""),
            "{db:?}: the cached page was dropped"
        );
        assert!(
            html.contains("<h1>&lt;script&gt;"),
            "{db:?}: the built-in page: {html}"
        );
        assert!(
            html.contains("Our own footer"),
            "{db:?}: the good partial stays"
        );

        // Fixed: the override is back.
        write(
            dir.path(),
            "web/item.hbs",
            &item_page_with("Fixed item page"),
        );
        until_status(&app, "the fixed page is taken", |s| {
            s.overridden.iter().any(|p| p == "web/item.hbs")
        })
        .await;
        assert!(
            page(&app, &path).await.1.contains("Fixed item page"),
            "{db:?}"
        );

        // Removed: the built-in again.
        std::fs::remove_file(dir.path().join("web/item.hbs")).unwrap();
        until_status(&app, "the removed page is forgotten", |s| {
            !s.overridden.iter().any(|p| p == "web/item.hbs")
        })
        .await;
        assert!(
            !page(&app, &path).await.1.contains("id=\"override\""),
            "{db:?}"
        );
    }
}

#[tokio::test]
async fn a_mail_override_and_label_overrides_reach_the_readers_over_smtp() {
    for db in [Db::Sqlite, Db::Postgres] {
        let dir = tempfile::tempdir().unwrap();
        let html = builtin("email/digest.html.hbs").replace(
            "<p style=\"margin:0;font-size:13px;\">{{site_name}}</p>",
            "<p style=\"margin:0;font-size:13px;\">{{site_name}} · our own digest</p>",
        );
        assert!(html.contains("our own digest"));
        write(dir.path(), "email/digest.html.hbs", &html);
        let en = builtin("email/digest.labels.en.json")
            .replace("\"Hello {name},\"", "\"Greetings {name},\"");
        let zh = builtin("email/digest.labels.zh.json")
            .replace("\"{name}，您好！\"", "\"{name}，诸位好！\"");
        assert!(en.contains("Greetings") && zh.contains("诸位好"));
        write(dir.path(), "email/digest.labels.en.json", &en);
        write(dir.path(), "email/digest.labels.zh.json", &zh);
        let smtp = SmtpServer::start(Behaviour::accept_all()).await;
        let Some(app) = app_with(db, dir.path(), Some(smtp.url())).await else {
            continue;
        };
        assert_eq!(
            app.state.templates.status().overridden,
            [
                "email/digest.html.hbs",
                "email/digest.labels.en.json",
                "email/digest.labels.zh.json"
            ]
        );
        let r = app
            .admin(reqwest::Method::POST, "/api/v1/lists/partners/digests")
            .json(&json!({"period": "2023-W45"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED, "{db:?}");
        let received = smtp.wait_for(8, Duration::from_secs(20)).await;
        assert_eq!(received.len(), 8, "{db:?}");
        let mut chinese = 0;
        for message in &received {
            let mail = parse(&message.raw);
            let (text, html) = (mail.text.unwrap(), mail.html.unwrap());
            assert!(
                html.contains("SZPU News · our own digest"),
                "{db:?}: {html}"
            );
            // The text part is the built-in one, with the overridden words.
            assert!(!text.contains("our own digest"), "{db:?}");
            let to_chen = message
                .rcpt_to
                .iter()
                .any(|to| to.starts_with("chen.jing@"));
            if text.contains("，诸位好！") {
                chinese += 1;
                assert!(html.contains("诸位好"), "{db:?}");
            } else {
                assert!(!to_chen, "{db:?}: Chen Jing reads Chinese: {text}");
                assert!(text.contains("\nGreetings "), "{db:?}: {text}");
                assert!(!text.contains("Hello"), "{db:?}: {text}");
            }
            if to_chen {
                assert!(text.contains("\nChen Jing，诸位好！"), "{db:?}: {text}");
            }
        }
        assert!((1..8).contains(&chinese), "{db:?}: {chinese}");
    }
}

const PASSWORD: &str = "correct horse battery staple";

/// Signs `name` in to the admin pages; the session cookie.
async fn sign_in(app: &TestApp, name: &str, role: Role) -> String {
    let hash = newsdesk::passwords::hash(PASSWORD).unwrap();
    app.state
        .store
        .users()
        .create(name, &hash, role, crate::helpers::default_now())
        .await
        .unwrap();
    let cookie = |r: &reqwest::Response, wanted: &str| {
        r.headers()
            .get_all(SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|v| {
                let (k, val) = v.split(';').next()?.split_once('=')?;
                (k == wanted && !val.is_empty()).then(|| val.to_owned())
            })
            .unwrap()
    };
    let form = app.get("/admin/sign-in").send().await.unwrap();
    let pre = cookie(&form, "nd_signin");
    let html = form.text().await.unwrap();
    let at = html.find("name=\"csrf\" value=\"").unwrap() + "name=\"csrf\" value=\"".len();
    let csrf = &html[at..at + html[at..].find('"').unwrap()];
    let r = app
        .client
        .post(app.url("/admin/sign-in"))
        .header(COOKIE, format!("nd_signin={pre}"))
        .form(&[
            ("csrf", csrf),
            ("name", name),
            ("password", PASSWORD),
            ("next", "/admin"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    format!("nd_session={}", cookie(&r, "nd_session"))
}

async fn admin_page(app: &TestApp, cookie: &str, path: &str) -> (StatusCode, String) {
    let r = app.get(path).header(COOKIE, cookie).send().await.unwrap();
    (r.status(), r.text().await.unwrap())
}

#[tokio::test]
async fn the_admin_preview_renders_with_the_overrides_before_sending_and_names_the_refused() {
    for db in [Db::Sqlite, Db::Postgres] {
        let dir = tempfile::tempdir().unwrap();
        let html = builtin("email/digest.html.hbs").replace(
            "<h1 style=",
            "<p id=\"preview-marker\">Preview of our own digest</p><h1 style=",
        );
        write(dir.path(), "email/digest.html.hbs", &html);
        let Some(app) = app_with(db, dir.path(), None).await else {
            continue;
        };
        let admin = sign_in(&app, "alice", Role::Admin).await;
        let list_page =
            "/admin/lists/partners?period=2023-W45&subscriber=chen.jing%40zjtie-cn.example.edu";
        let (status, page) = admin_page(&app, &admin, list_page).await;
        assert_eq!(status, StatusCode::OK, "{db:?}: {page}");
        let section = &page[page
            .find("id=\"preview-templates\"")
            .expect("the templates are named")..];
        let section = &section[..section.find("</div>").unwrap()];
        assert!(
            section.contains("<code>email/digest.html.hbs</code>"),
            "{db:?}: {section}"
        );
        assert!(!section.contains("Refused"), "{db:?}: {section}");
        let (status, frame) = admin_page(
            &app,
            &admin,
            "/admin/lists/partners/preview?period=2023-W45&subscriber=chen.jing%40zjtie-cn.example.edu",
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert!(
            frame.contains("Preview of our own digest"),
            "{db:?}: {frame}"
        );
        assert!(frame.contains("您好"), "{db:?}: the reader's language");

        // A text part broken while running: refused, named on the preview, built-in used.
        let text = builtin("email/digest.txt.hbs").replacen("{{list_name}}", "{{list_nam}}", 1);
        write(dir.path(), "email/digest.txt.hbs", &text);
        until_status(&app, "the broken text part is refused", |s| {
            s.refused.iter().any(|p| p.path == "email/digest.txt.hbs")
        })
        .await;
        let (_, page) = admin_page(&app, &admin, list_page).await;
        let section = &page[page.find("id=\"preview-templates\"").unwrap()..];
        assert!(
            section.contains("email/digest.txt.hbs, line 1: {{list_nam}} is not in the data"),
            "{db:?}: {section}"
        );
        assert!(
            page.contains("<pre class=\"mail\">合作院校通讯 - "),
            "{db:?}: the built-in text part"
        );

        // Nothing was sent or stored by previewing.
        let digests: serde_json::Value = app
            .admin(reqwest::Method::GET, "/api/v1/digests?list=partners")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(
            digests.as_array().map(Vec::len),
            Some(0),
            "{db:?}: {digests}"
        );

        // Every template's state, for admins only.
        let (status, all) = admin_page(&app, &admin, "/admin/templates").await;
        assert_eq!(status, StatusCode::OK, "{db:?}: {all}");
        assert!(all.contains(&dir.path().display().to_string()), "{db:?}");
        assert!(all.contains("<code>email/digest.html.hbs</code></td><td data-label=\"What\">mail</td><td data-label=\"In use\"><span class=\"badge ok\">overridden</span>"), "{db:?}: {all}");
        assert!(
            all.contains("<code>email/digest.txt.hbs</code>, line 1: {{list_nam}}"),
            "{db:?}: {all}"
        );
        let editor = sign_in(&app, "ed", Role::Editor).await;
        assert_eq!(
            admin_page(&app, &editor, "/admin/templates").await.0,
            StatusCode::FORBIDDEN
        );
        let r = app.get("/admin/templates").send().await.unwrap();
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "signed out");
    }
}

// ---- the real binary -------------------------------------------------------------------

fn newsdesk(dir: &Path, args: &[&str], vars: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_newsdesk"));
    command
        .args(args)
        .current_dir(dir)
        .env_clear()
        .env("RUST_LOG", "warn");
    for (key, value) in vars {
        command.env(key, value);
    }
    command.output().expect("the newsdesk binary runs")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn a_broken_override_stops_serve_and_the_commands_that_render_naming_file_line_and_reason() {
    let work = tempfile::tempdir().unwrap();
    let templates = work.path().join("templates");
    write(&templates, "web/item.hbs", &broken_item_page());
    let dir = templates.display().to_string();
    let vars = [
        ("NEWSDESK_TEMPLATES_DIR", dir.as_str()),
        ("NEWSDESK_BIND", "127.0.0.1:0"),
    ];
    let expected =
        format!("{dir}/web/item.hbs:5: {{{{item.titel}}}} is not in the data of web/item.hbs");
    let output = newsdesk(work.path(), &["serve"], &vars);
    assert!(!output.status.success());
    assert!(stderr(&output).contains(&expected), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("1 file(s) refused"),
        "{}",
        stderr(&output)
    );
    // `digest preview` renders: it stops too. `templates check` says the same.
    assert!(newsdesk(work.path(), &["migrate"], &[]).status.success());
    let output = newsdesk(
        work.path(),
        &[
            "digest", "preview", "--list", "partners", "--period", "2023-W45",
        ],
        &vars,
    );
    assert!(!output.status.success());
    assert!(stderr(&output).contains(&expected), "{}", stderr(&output));
    let output = newsdesk(work.path(), &["templates", "check"], &vars);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains(&expected), "{}", stderr(&output));

    // A template that does not parse: its line.
    write(
        &templates,
        "web/item.hbs",
        "<h1>\n{{#if item}}\n{{/each}}\n",
    );
    let output = newsdesk(work.path(), &["serve"], &vars);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains(&format!(
            "{dir}/web/item.hbs:3: does not parse: helper \"if\" was opened, but \"each\" is closing"
        )),
        "{}",
        stderr(&output)
    );

    // A misspelt name, a link out of the directory, labels short of a key.
    std::fs::remove_file(templates.join("web/item.hbs")).unwrap();
    write(&templates, "web/itme.hbs", "<p>typo</p>");
    let secret = work.path().join("secret.hbs");
    std::fs::write(&secret, "{{site_name}}").unwrap();
    std::os::unix::fs::symlink(&secret, templates.join("web/index.hbs")).unwrap();
    write(
        &templates,
        "email/digest.labels.zh.json",
        "{\"news\": \"新闻\",\n\"hello\": 1}",
    );
    let output = newsdesk(work.path(), &["serve"], &vars);
    assert!(!output.status.success());
    let said = stderr(&output);
    assert!(said.contains("3 file(s) refused"), "{said}");
    assert!(
        said.contains(&format!("{dir}/web/itme.hbs: no template has this name")),
        "{said}"
    );
    assert!(
        said.contains(&format!(
            "{dir}/web/index.hbs: leads to {}, outside NEWSDESK_TEMPLATES_DIR",
            secret.canonicalize().unwrap().display()
        )),
        "{said}"
    );
    assert!(
        said.contains(&format!("{dir}/email/digest.labels.zh.json:1: "))
            && said.contains("label(s) missing: \"add_to_calendar\""),
        "{said}"
    );

    // A directory that is not there is a bad setting, named.
    let output = newsdesk(
        work.path(),
        &["serve"],
        &[("NEWSDESK_TEMPLATES_DIR", "/nonexistent/tpl")],
    );
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("NEWSDESK_TEMPLATES_DIR must be a directory that exists"),
        "{}",
        stderr(&output)
    );

    // `templates export` gives a directory that passes; it never overwrites.
    let exported = work.path().join("exported");
    let output = newsdesk(work.path(), &["templates", "export", "exported"], &[]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        builtin("web/item.hbs"),
        std::fs::read_to_string(exported.join("web/item.hbs")).unwrap()
    );
    let output = newsdesk(
        work.path(),
        &["templates", "check"],
        &[("NEWSDESK_TEMPLATES_DIR", "exported")],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let output = newsdesk(work.path(), &["templates", "export", "exported"], &[]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("exist already; nothing was written"),
        "{}",
        stderr(&output)
    );
}

/// `serve` started in `dir`: its lines (standard error) as they come, and its address.
struct Serving {
    child: std::process::Child,
    lines: mpsc::Receiver<String>,
    address: String,
}

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Serving {
    fn start(dir: &Path, templates: &Path) -> Serving {
        let mut child = Command::new(env!("CARGO_BIN_EXE_newsdesk"))
            .args(["serve", "--demo"])
            .current_dir(dir)
            .env_clear()
            .env("RUST_LOG", "info,newsdesk::access=off")
            .env("NEWSDESK_BIND", "127.0.0.1:0")
            .env("NEWSDESK_WORKERS", "off")
            .env("NEWSDESK_TEMPLATES_DIR", templates)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, lines) = mpsc::channel();
        let err = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut serving = Serving {
            child,
            lines,
            address: String::new(),
        };
        let line = serving.wait_for("newsdesk is serving");
        let at = line.find("address=").expect("the address is logged") + "address=".len();
        let address = line[at..].split_whitespace().next().unwrap();
        serving.address = format!("http://{address}");
        serving
    }

    /// Reads lines until one contains `wanted` (20 s at most).
    fn wait_for(&self, wanted: &str) -> String {
        let mut seen = String::new();
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(20)) {
            if line.contains(wanted) {
                return line;
            }
            seen.push_str(&line);
            seen.push('\n');
        }
        panic!("no line with {wanted:?}:\n{seen}");
    }
}

#[tokio::test]
async fn a_template_broken_while_serving_is_logged_with_file_line_and_reason() {
    let work = tempfile::tempdir().unwrap();
    let templates: PathBuf = work.path().join("templates");
    write(
        &templates,
        "web/item.hbs",
        &item_page_with("Overridden item page"),
    );
    let serving = Serving::start(work.path(), &templates);
    let url = format!(
        "{}/items/unevoc-coaction-initiative-2023-approved",
        serving.address
    );
    let html = reqwest::get(&url).await.unwrap().text().await.unwrap();
    assert!(html.contains("Overridden item page"), "{html}");

    write(&templates, "web/item.hbs", &broken_item_page());
    let line = serving.wait_for("refused: the built-in template is used");
    assert!(
        line.contains(&format!(
            "{}:5: {{{{item.titel}}}} is not in the data of web/item.hbs",
            templates.join("web/item.hbs").display()
        )),
        "{line}"
    );
    let r = reqwest::get(&url).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let html = r.text().await.unwrap();
    assert!(
        !html.contains("Overridden item page") && html.contains("<h1>"),
        "{html}"
    );
}

#[tokio::test]
async fn without_a_directory_the_built_ins_are_used_and_said_to_be() {
    let app = crate::helpers::spawn_app().await;
    app.load_demo().await;
    let admin = sign_in(&app, "alice", Role::Admin).await;
    let (status, all) = admin_page(&app, &admin, "/admin/templates").await;
    assert_eq!(status, StatusCode::OK, "{all}");
    assert!(
        all.contains("<code>NEWSDESK_TEMPLATES_DIR</code> is not set"),
        "{all}"
    );
    assert!(all.contains("<code>web/item.hbs</code></td><td data-label=\"What\">page</td><td data-label=\"In use\"><span class=\"badge skipped\">built-in</span>"), "{all}");
    // The page words are listed like the others.
    for language in ["en", "zh"] {
        assert!(all.contains(&format!("<code>web/labels.{language}.json</code></td><td data-label=\"What\">page labels</td><td data-label=\"In use\"><span class=\"badge skipped\">built-in</span>")), "{all}");
    }
    let (status, page) = admin_page(&app, &admin, "/admin/lists/partners?period=2023-W45").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        !page.contains("preview-templates"),
        "nothing to say without overrides"
    );
    assert!(
        page.contains("<pre class=\"mail\">"),
        "the preview is there"
    );
}

/// The built-in Chinese page words with `front_heading` and `feed_all_description` set.
fn zh_words(heading: &str, feed: &str) -> String {
    let zh = builtin("web/labels.zh.json");
    let changed = zh
        .replace("\"最新新闻与活动\"", &format!("\"{heading}\""))
        .replace("\"{site}发布的全部内容\"", &format!("\"{feed}\""));
    assert_ne!(zh, changed);
    changed
}

#[tokio::test]
async fn page_words_overridden_reach_the_zh_pages_and_feeds_and_a_broken_file_gives_way_to_the_built_in()
 {
    for db in [Db::Sqlite, Db::Postgres] {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "web/labels.zh.json",
            &zh_words("本站要闻与活动", "{site}的全部新闻"),
        );
        let Some(app) = app_with(db, dir.path(), None).await else {
            continue;
        };
        assert_eq!(
            app.state.templates.status().overridden,
            ["web/labels.zh.json"]
        );
        let (status, html) = page(&app, "/zh/").await;
        assert_eq!(status, StatusCode::OK, "{db:?}: {html}");
        assert!(html.contains("本站要闻与活动"), "{db:?}: {html}");
        assert!(!html.contains("最新新闻与活动"), "{db:?}: {html}");
        assert!(html.contains("<html lang=\"zh\""), "{db:?}");
        let (_, en) = page(&app, "/en/").await;
        assert!(
            en.contains("Latest news and events"),
            "{db:?}: English unchanged"
        );
        let (_, feed) = page(&app, "/feeds/all.atom?lang=zh").await;
        assert!(feed.contains("SZPU News的全部新闻"), "{db:?}: {feed}");

        // Broken while running (a placeholder dropped): logged, the built-in words used,
        // the cached page and feed dropped.
        let broken = zh_words("本站要闻与活动", "全部新闻");
        write(dir.path(), "web/labels.zh.json", &broken);
        until_status(&app, "the broken words are refused", |s| {
            s.refused.iter().any(|p| p.path == "web/labels.zh.json")
        })
        .await;
        let status = app.state.templates.status();
        let problem = &status.refused[0];
        let line = broken
            .lines()
            .position(|l| l.contains("\"feed_all_description\""))
            .unwrap()
            + 1;
        assert!(
            problem.to_string().starts_with(&format!(
                "{}:{line}: the label \"feed_all_description\" must keep {{site}}",
                dir.path().join("web/labels.zh.json").display()
            )),
            "{db:?}: {problem}"
        );
        assert!(status.overridden.is_empty(), "{db:?}");
        let (_, html) = page(&app, "/zh/").await;
        assert!(
            html.contains("最新新闻与活动"),
            "{db:?}: the built-in: {html}"
        );
        assert!(!html.contains("本站要闻与活动"), "{db:?}");
        let (_, feed) = page(&app, "/feeds/all.atom?lang=zh").await;
        assert!(feed.contains("SZPU News发布的全部内容"), "{db:?}: {feed}");

        // Fixed: taken.
        write(
            dir.path(),
            "web/labels.zh.json",
            &zh_words("今日要闻与活动", "{site}：全部"),
        );
        until_status(&app, "the fixed words are taken", |s| {
            s.overridden.iter().any(|p| p == "web/labels.zh.json")
        })
        .await;
        assert!(
            page(&app, "/zh/").await.1.contains("今日要闻与活动"),
            "{db:?}"
        );
        let (_, feed) = page(&app, "/feeds/all.atom?lang=zh").await;
        assert!(feed.contains("SZPU News：全部"), "{db:?}: {feed}");
    }
}

#[test]
fn broken_page_words_stop_serve_naming_file_line_and_reason() {
    let work = tempfile::tempdir().unwrap();
    let templates = work.path().join("templates");
    let dir = templates.display().to_string();
    let vars = [
        ("NEWSDESK_TEMPLATES_DIR", dir.as_str()),
        ("NEWSDESK_BIND", "127.0.0.1:0"),
    ];
    let zh = builtin("web/labels.zh.json");
    let en = builtin("web/labels.en.json");
    let line_of = |text: &str, key: &str| {
        text.lines()
            .position(|l| l.contains(&format!("\"{key}\"")))
            .unwrap()
            + 1
    };
    let cases = [
        (
            "web/labels.zh.json",
            zh.replace("  \"home\": \"首页\",\n", ""),
            format!(
                "{dir}/web/labels.zh.json:1: 1 label(s) missing: \"home\" (a label file needs \
                 every label of the built-in English one)"
            ),
        ),
        (
            "web/labels.zh.json",
            zh.replace("\"首页\"", "7"),
            format!(
                "{dir}/web/labels.zh.json:{}: the label \"home\" must be a string, as in the \
                 built-in (got a number)",
                line_of(&zh, "home")
            ),
        ),
        (
            "web/labels.en.json",
            en.replace("\"{count} item(s)\"", "\"several items\""),
            format!(
                "{dir}/web/labels.en.json:{}: the label \"item_count\" must keep {{count}} of \
                 the built-in",
                line_of(&en, "item_count")
            ),
        ),
    ];
    for (path, text, expected) in cases {
        let _ = std::fs::remove_dir_all(&templates);
        write(&templates, path, &text);
        let output = newsdesk(work.path(), &["serve"], &vars);
        assert!(!output.status.success(), "{path}");
        let said = stderr(&output);
        assert!(said.contains("1 file(s) refused"), "{said}");
        assert!(said.contains(&expected), "{expected}\n{said}");
        // `templates check` says the same, and `list` names the file refused.
        let output = newsdesk(work.path(), &["templates", "check"], &vars);
        assert_eq!(output.status.code(), Some(1));
        assert!(stderr(&output).contains(&expected), "{}", stderr(&output));
    }
    let output = newsdesk(work.path(), &["templates", "list"], &vars);
    let listed = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        listed.lines().any(|l| l.starts_with("web/labels.en.json")
            && l.contains("page labels")
            && l.ends_with("refused")),
        "{listed}"
    );
    assert!(
        listed
            .lines()
            .any(|l| l.starts_with("web/labels.zh.json") && l.ends_with("built-in")),
        "{listed}"
    );
    // A language without built-in words is taken (a site may add it); a file name
    // that is no language's is refused, saying why.
    let _ = std::fs::remove_dir_all(&templates);
    write(&templates, "web/labels.fr.json", &en);
    let output = newsdesk(work.path(), &["templates", "check"], &vars);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains(&format!(
            "{dir}/web/labels.fr.json:1: a language without built-in words needs \"language_fr\""
        )),
        "{}",
        stderr(&output)
    );
    write(&templates, "web/labels.fr.json", &fr_words());
    let output = newsdesk(work.path(), &["templates", "check"], &vars);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let _ = std::fs::remove_dir_all(&templates);
    write(&templates, "web/labels.FR.json", &en);
    let output = newsdesk(work.path(), &["templates", "check"], &vars);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains(&format!(
            "{dir}/web/labels.FR.json: the pages' and feeds' words are web/labels.LANG.json, \
             LANG a language's primary subtag in lower case"
        )),
        "{}",
        stderr(&output)
    );
    // Exported, they pass.
    let output = newsdesk(work.path(), &["templates", "export", "exported"], &[]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        en,
        std::fs::read_to_string(work.path().join("exported/web/labels.en.json")).unwrap()
    );
}

/// French page words made from the built-in English ones: a few words changed and the
/// language's own name added.
fn fr_words() -> String {
    let en = builtin("web/labels.en.json");
    let fr = en
        .replacen("{\n", "{\n  \"language_fr\": \"Français\",\n", 1)
        .replace(
            "\"Latest news and events\"",
            "\"Dernières nouvelles et événements\"",
        )
        .replace("\"Subscribe\"", "\"S'abonner\"")
        .replace("\"%-d %B %Y\"", "\"%d/%m/%Y\"")
        .replace(
            "\"Mon Tue Wed Thu Fri Sat Sun\"",
            "\"lun. mar. mer. jeu. ven. sam. dim.\"",
        );
    assert_eq!(
        fr.matches("Dernières").count(),
        1,
        "the front heading is there"
    );
    fr
}

#[tokio::test]
async fn a_site_language_without_built_in_words_is_added_by_its_labels_in_the_overrides() {
    for db in [Db::Sqlite, Db::Postgres] {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "web/labels.fr.json", &fr_words());
        let languages =
            newsdesk::i18n::SiteLanguages::parse_with("en,zh,fr", Some(dir.path())).unwrap();
        let templates = dir.path().to_owned();
        let Some(app) = spawn_app_with(db, move |s| {
            s.templates_dir = Some(templates);
            s.languages = languages;
        })
        .await
        else {
            continue;
        };
        app.load_demo().await;
        assert_eq!(
            app.state.templates.status().overridden,
            ["web/labels.fr.json"]
        );
        // The French pages: their language, their words, their dates.
        let r = app.get("/fr/").send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{db:?}");
        assert_eq!(
            r.headers()
                .get("content-language")
                .unwrap()
                .to_str()
                .unwrap(),
            "fr"
        );
        let html = r.text().await.unwrap();
        assert!(html.contains("<html lang=\"fr\""), "{db:?}: {html}");
        assert!(html.contains("Dernières nouvelles et événements"), "{db:?}");
        // Its front page leads to its own subscription form, as the Chinese one does.
        assert!(
            html.contains(&format!("href=\"{}/fr/subscribe\"", app.address)),
            "{html}"
        );
        let (_, zh) = page(&app, "/zh/").await;
        assert!(zh.contains(&format!("href=\"{}/zh/subscribe\"", app.address)));
        assert!(html.contains("/11/2023"), "French dates: {html}");
        // Every language's pages offer it by its own name, and it them.
        let (_, en) = page(&app, "/en/").await;
        assert!(en.contains("hreflang=\"fr\""), "{db:?}: {en}");
        assert!(en.contains("Français"), "{db:?}: {en}");
        assert!(
            html.contains("中文") && html.contains("hreflang=\"zh\""),
            "{html}"
        );
        // Its feeds, and Accept-Language on the front page.
        let (status, feed) = page(&app, "/feeds/all.atom?lang=fr").await;
        assert_eq!(status, StatusCode::OK);
        let feed = atom_syndication::Feed::read_from(feed.as_bytes()).unwrap();
        assert_eq!(feed.lang(), Some("fr"));
        let front = app
            .get("/")
            .header("accept-language", "fr-CH, fr;q=0.9, en;q=0.5")
            .send()
            .await
            .unwrap();
        assert_eq!(
            front
                .headers()
                .get("content-language")
                .unwrap()
                .to_str()
                .unwrap(),
            "fr"
        );
        // The subscription form in it makes French subscriptions.
        let (status, form) = page(&app, "/fr/subscribe").await;
        assert_eq!(status, StatusCode::OK);
        assert!(form.contains("<html lang=\"fr\""), "{form}");
        assert!(
            form.contains("S&#x27;abonner") || form.contains("S'abonner"),
            "{form}"
        );
        // The mail languages offered: the site's, by their own names, its own first.
        assert!(
            form.contains("<option value=\"fr\" selected>Français</option>")
                && form.contains("<option value=\"en\">English</option>")
                && form.contains("<option value=\"zh\">中文</option>"),
            "{form}"
        );
        let r = app
            .client
            .post(app.url("/fr/subscribe"))
            .form(&[("email", "marie@example.org"), ("list", "partners")])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let found = app.subscriber_by_email("marie@example.org").await;
        assert_eq!(found["language"], "fr", "{found}");
    }
}

#[test]
fn a_site_language_without_labels_anywhere_stops_serve_naming_the_file_it_needs() {
    let work = tempfile::tempdir().unwrap();
    let templates = work.path().join("templates");
    std::fs::create_dir_all(&templates).unwrap();
    let dir = templates.display().to_string();
    let vars = [
        ("NEWSDESK_TEMPLATES_DIR", dir.as_str()),
        ("NEWSDESK_BIND", "127.0.0.1:0"),
        ("NEWSDESK_LANGUAGES", "en,zh,fr-CA"),
    ];
    let output = newsdesk(work.path(), &["serve"], &vars);
    assert!(!output.status.success());
    let said = stderr(&output);
    assert!(
        said.contains("NEWSDESK_LANGUAGES \"fr-CA\" has no page labels")
            && said.contains("web/labels.fr.json in NEWSDESK_TEMPLATES_DIR"),
        "{said}"
    );
    // With the file it starts; one that is broken stops it, naming file, line, reason.
    let broken = fr_words().replace("\"{count} item(s)\"", "\"items\"");
    write(&templates, "web/labels.fr.json", &broken);
    let output = newsdesk(work.path(), &["serve"], &vars);
    assert!(!output.status.success());
    let said = stderr(&output);
    assert!(
        said.contains(&format!("{dir}/web/labels.fr.json:"))
            && said.contains("the label \"item_count\" must keep {count}"),
        "{said}"
    );
}
