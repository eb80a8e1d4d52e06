//! The admin pages over real HTTP, as a browser without JavaScript uses them: forms
//! posted with the session cookie and the CSRF token, redirects read, pages checked.

use crate::helpers::{TestApp, spawn_app, spawn_app_with_smtp};
use crate::smtp_server::{Behaviour, SmtpServer};
use newsdesk::domain::Role;
use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE};
use std::time::Duration;

const PASSWORD: &str = "correct horse battery staple";

/// A signed-in browser: its session cookie and the CSRF token of its forms.
pub(crate) struct Browser<'a> {
    pub(crate) app: &'a TestApp,
    cookie: String,
    csrf: String,
}

fn set_cookie(r: &reqwest::Response, name: &str) -> Option<String> {
    r.headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| {
            let pair = v.split(';').next()?;
            let (k, val) = pair.split_once('=')?;
            (k == name && !val.is_empty()).then(|| val.to_owned())
        })
}

fn csrf_of(html: &str) -> String {
    let at = html
        .find("name=\"csrf\" value=\"")
        .expect("the page has a form with a CSRF token");
    let rest = &html[at + "name=\"csrf\" value=\"".len()..];
    rest[..rest.find('"').unwrap()].to_owned()
}

pub(crate) async fn add_user(app: &TestApp, name: &str, role: Role) {
    let hash = newsdesk::passwords::hash(PASSWORD).unwrap();
    app.state
        .store
        .users()
        .create(name, &hash, role, crate::helpers::default_now())
        .await
        .unwrap();
}

pub(crate) async fn sign_in<'a>(app: &'a TestApp, name: &str) -> Browser<'a> {
    let form = app.get("/admin/sign-in").send().await.unwrap();
    let pre = set_cookie(&form, "nd_signin").unwrap();
    let csrf = csrf_of(&form.text().await.unwrap());
    let r = app
        .client
        .post(app.url("/admin/sign-in"))
        .header(COOKIE, format!("nd_signin={pre}"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("name", name),
            ("password", PASSWORD),
            ("next", "/admin"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "sign-in of {name}");
    let cookie = format!("nd_session={}", set_cookie(&r, "nd_session").unwrap());
    let mut b = Browser {
        app,
        cookie,
        csrf: String::new(),
    };
    b.csrf = csrf_of(&b.page("/admin").await.1);
    b
}

impl Browser<'_> {
    pub(crate) async fn page(&self, path: &str) -> (StatusCode, String) {
        let r = self
            .app
            .get(path)
            .header(COOKIE, &self.cookie)
            .send()
            .await
            .unwrap();
        (r.status(), r.text().await.unwrap())
    }

    pub(crate) async fn post(&self, path: &str, fields: &[(&str, &str)]) -> reqwest::Response {
        let mut form: Vec<(&str, &str)> = vec![("csrf", self.csrf.as_str())];
        form.extend_from_slice(fields);
        self.app
            .client
            .post(self.app.url(path))
            .header(COOKIE, &self.cookie)
            .form(&form)
            .send()
            .await
            .unwrap()
    }

    /// Posts a form that answers with a redirect, and reads the page it leads to.
    pub(crate) async fn post_and_follow(
        &self,
        path: &str,
        fields: &[(&str, &str)],
    ) -> (String, String) {
        let r = self.post(path, fields).await;
        let status = r.status();
        let location = r
            .headers()
            .get(LOCATION)
            .map(|v| v.to_str().unwrap().to_owned());
        let Some(location) = location else {
            panic!(
                "POST {path} answered {status} without a redirect: {}",
                r.text().await.unwrap()
            );
        };
        assert_eq!(status, StatusCode::SEE_OTHER);
        let (status, html) = self.page(&location).await;
        assert_eq!(status, StatusCode::OK, "{location}");
        (location, html)
    }
}

#[tokio::test]
async fn every_page_renders_for_an_admin_and_content_pages_for_an_editor() {
    let app = spawn_app().await;
    app.load_demo().await;
    add_user(&app, "alice", Role::Admin).await;
    add_user(&app, "ed", Role::Editor).await;
    let admin = sign_in(&app, "alice").await;
    for path in [
        "/admin",
        "/admin/items",
        "/admin/items?q=seminar&status=published&category=events",
        "/admin/items/new",
        "/admin/items/1",
        "/admin/categories",
        "/admin/partners",
        "/admin/partners/1",
        "/admin/subscribers",
        "/admin/subscribers?list=partners&status=confirmed",
        "/admin/subscribers/1",
        "/admin/import",
        "/admin/lists",
        "/admin/lists/partners",
        "/admin/lists/partners?period=2023-W45",
        "/admin/users",
        "/admin/account",
    ] {
        let (status, html) = admin.page(path).await;
        assert_eq!(status, StatusCode::OK, "{path}: {html}");
        assert!(html.contains("<h1>"), "{path} has a heading");
        assert!(html.contains("Sign out"), "{path} has the layout");
    }
    let editor = sign_in(&app, "ed").await;
    let (status, html) = editor.page("/admin").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        !html.contains("/admin/subscribers"),
        "editors see no admin links"
    );
    for path in ["/admin/items", "/admin/items/new", "/admin/categories"] {
        assert_eq!(editor.page(path).await.0, StatusCode::OK, "{path}");
    }
    for path in [
        "/admin/lists/partners",
        "/admin/partners",
        "/admin/digests/1",
    ] {
        let (status, html) = editor.page(path).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}");
        assert!(html.contains("for admins"), "{path}: {html}");
    }
}

#[tokio::test]
async fn an_item_is_written_previewed_published_and_unpublished_through_forms() {
    let app = spawn_app().await;
    app.load_demo().await;
    add_user(&app, "ed", Role::Editor).await;
    let b = sign_in(&app, "ed").await;

    // A refused form comes back with every problem named and what was typed kept.
    let r = b
        .post(
            "/admin/items",
            &[
                ("title", ""),
                ("body", "Kept *as typed*"),
                ("has_event", "on"),
                ("event_starts_at", "2023-11-09T14:00"),
                ("event_timezone", "Asia/Shanghai"),
                ("event_mode", "hybrid"),
                ("action", "save"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = r.text().await.unwrap();
    for needle in [
        "title:",
        "categories:",
        "event.venue:",
        "event.online_url:",
        "Kept *as typed*",
        "aria-invalid=\"true\"",
    ] {
        assert!(html.contains(needle), "missing {needle:?}");
    }

    // Preview without JavaScript: the same form comes back with the rendered text,
    // sanitised.
    let r = b
        .post(
            "/admin/items",
            &[
                ("title", "Seminar report"),
                ("body", "**Five** partners <script>alert(1)</script>"),
                ("categories", "news"),
                ("action", "preview"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let html = r.text().await.unwrap();
    assert!(html.contains("<strong>Five</strong>"));
    assert!(!html.contains("<script>alert"));
    // And the live preview's endpoint.
    let r = b
        .post(
            "/admin/items/preview",
            &[("body", "*hi* <img src=x onerror=alert(1)>")],
        )
        .await;
    let fragment = r.text().await.unwrap();
    assert!(fragment.contains("<em>hi</em>"));
    assert!(!fragment.contains("onerror"));

    // Saved as published: it is in the feed at once.
    let (location, html) = b
        .post_and_follow(
            "/admin/items",
            &[
                ("title", "Seminar report from the browser"),
                ("body", "**Five** partner universities took part."),
                ("categories", "news"),
                ("status", "published"),
                ("publish_at", ""),
                ("publish_tz", "UTC"),
                ("action", "save"),
            ],
        )
        .await;
    assert!(location.starts_with("/admin/items/"), "{location}");
    assert!(html.contains("class=\"flash ok\""));
    assert!(html.contains("published in the feeds"));
    let (_, atom) = app.feed("news", "atom").await;
    assert!(atom.contains("Seminar report from the browser"));
    let id = location.trim_start_matches("/admin/items/").to_owned();

    // Unpublished: gone from the feed.
    let (_, html) = b
        .post_and_follow(&format!("/admin/items/{id}/unpublish"), &[])
        .await;
    assert!(html.contains("was unpublished"));
    let (_, atom) = app.feed("news", "atom").await;
    assert!(!atom.contains("Seminar report from the browser"));

    // Published at a wall-clock time in a zone: stored as that instant.
    let (_, html) = b
        .post_and_follow(
            &format!("/admin/items/{id}/publish"),
            &[("at", "2023-12-01T09:30"), ("at_tz", "Asia/Shanghai")],
        )
        .await;
    assert!(html.contains("scheduled to appear"), "{html}");
    let item = app
        .state
        .store
        .content()
        .item_by_id(id.parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        item.published_at.unwrap().to_rfc3339(),
        "2023-12-01T01:30:00+00:00"
    );
    let (_, atom) = app.feed("news", "atom").await;
    assert!(!atom.contains("Seminar report from the browser"), "not yet");

    // Search finds it; delete removes it.
    let (_, html) = b.page("/admin/items?q=browser").await;
    assert!(html.contains("1 item(s) found"));
    let (_, html) = b
        .post_and_follow(&format!("/admin/items/{id}/delete"), &[])
        .await;
    assert!(html.contains("was deleted"));
    assert!(
        app.state
            .store
            .content()
            .item_by_id(id.parse().unwrap())
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn categories_are_created_moved_and_not_deleted_while_in_use() {
    let app = spawn_app().await;
    app.load_demo().await;
    add_user(&app, "ed", Role::Editor).await;
    let b = sign_in(&app, "ed").await;
    let (_, html) = b
        .post_and_follow(
            "/admin/categories",
            &[("name", "Seminars"), ("slug", ""), ("parent", "events")],
        )
        .await;
    assert!(html.contains("“Seminars” was created"));
    let created = app
        .state
        .store
        .content()
        .category("seminars")
        .await
        .unwrap();
    assert_eq!(created.unwrap().parent.as_deref(), Some("events"));
    // Moved to the top and renamed.
    let (_, html) = b
        .post_and_follow(
            "/admin/categories/seminars",
            &[
                ("name", "Seminars and talks"),
                ("slug", "seminars"),
                ("description", ""),
                ("parent", ""),
            ],
        )
        .await;
    assert!(html.contains("was saved"));
    let moved = app
        .state
        .store
        .content()
        .category("seminars")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (moved.name.as_str(), moved.parent),
        ("Seminars and talks", None)
    );
    // A category with items is not deleted, and the page says why.
    let (_, html) = b
        .post_and_follow("/admin/categories/events/delete", &[])
        .await;
    assert!(html.contains("class=\"flash error\""));
    assert!(html.contains("Not deleted"), "{html}");
    assert!(
        app.state
            .store
            .content()
            .category("events")
            .await
            .unwrap()
            .is_some()
    );
    // An empty one is.
    let (_, html) = b
        .post_and_follow("/admin/categories/seminars/delete", &[])
        .await;
    assert!(html.contains("was deleted"));
    // A taken slug is a field error on the form.
    let r = b
        .post("/admin/categories", &[("name", "News"), ("slug", "news")])
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.text().await.unwrap().contains("slug:"));
}

#[tokio::test]
async fn a_csv_upload_is_previewed_with_its_bad_rows_then_applied_once() {
    let app = spawn_app().await;
    app.load_demo().await;
    add_user(&app, "alice", Role::Admin).await;
    let b = sign_in(&app, "alice").await;
    let csv = "email,name,partner\n\
               new.one@tp-sg.example.edu,New One,Temasek Polytechnic of Singapore\n\
               not-an-address,Bad Row,\n\
               new.two@uthm-my.example.edu,New Two,University Tun Hussein Onn Malaysia\n";
    let form = reqwest::multipart::Form::new()
        .text("list", "partners")
        .text("consent_source", "partner agreement 2023")
        .text("mode", "good_rows")
        .part(
            "file",
            reqwest::multipart::Part::bytes(csv.as_bytes().to_vec())
                .file_name("contacts.csv")
                .mime_str("text/csv")
                .unwrap(),
        );
    let r = app
        .client
        .post(app.url(&format!("/admin/import?csrf={}", b.csrf)))
        .header(COOKIE, &b.cookie)
        .multipart(form)
        .send()
        .await
        .unwrap();
    // The upload leads to its preview, a page of its own without the token in its address.
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let preview = r.headers()[LOCATION].to_str().unwrap().to_owned();
    assert!(preview.starts_with("/admin/import/"), "{preview}");
    assert!(!preview.contains("csrf"));
    let (status, html) = b.page(&preview).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("id=\"count-created\">2<"), "{html}");
    assert!(html.contains("id=\"count-bad\">1<"));
    let bad = &html[html.find("id=\"bad-rows\"").unwrap()..];
    assert!(bad.contains(">3<"), "the bad row's line number");
    assert!(bad.contains("not-an-address"));
    // Nothing stored yet.
    assert!(
        app.state
            .store
            .people()
            .subscriber_by_email("new.one@tp-sg.example.edu")
            .await
            .unwrap()
            .is_none()
    );
    let upload = {
        let at = html.find("name=\"upload\" value=\"").unwrap() + 21;
        html[at..at + 64].to_owned()
    };
    let apply = [
        ("upload", upload.as_str()),
        ("list", "partners"),
        ("consent_source", "partner agreement 2023"),
        ("mode", "good_rows"),
    ];
    let (location, html) = b.post_and_follow("/admin/import/apply", &apply).await;
    assert_eq!(location, "/admin/subscribers?list=partners");
    assert!(html.contains("2 new"), "{html}");
    assert!(html.contains("new.one@tp-sg.example.edu"));
    let s = app
        .state
        .store
        .people()
        .subscriber_by_email("new.two@uthm-my.example.edu")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        s.partner_name.as_deref(),
        Some("University Tun Hussein Onn Malaysia")
    );
    // The upload is gone once applied.
    let (_, html) = b.post_and_follow("/admin/import/apply", &apply).await;
    assert!(html.contains("no longer there"));
    // The list exports as CSV.
    let r = app
        .get("/admin/lists/partners/export.csv")
        .header(COOKIE, &b.cookie)
        .send()
        .await
        .unwrap();
    assert!(
        r.headers()[CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("new.two@uthm-my.example.edu")
    );
}

#[tokio::test]
async fn a_digest_is_previewed_sent_from_the_list_page_and_counted() {
    let smtp =
        SmtpServer::start(Behaviour::accept_all().unknown_recipient("li.wei@zjtie-cn.example.edu"))
            .await;
    let app = spawn_app_with_smtp(smtp.url()).await;
    app.load_demo().await;
    add_user(&app, "alice", Role::Admin).await;
    let b = sign_in(&app, "alice").await;
    let (_, html) = b
        .page("/admin/lists/partners?period=2023-W45&subscriber=chen.jing%40zjtie-cn.example.edu")
        .await;
    assert!(html.contains("Subject:"), "{html}");
    // Chen Jing reads Chinese: the final session's Chinese version.
    assert!(
        html.contains(newsdesk::demo::FINAL_SESSION_TITLE_ZH),
        "{html}"
    );
    assert!(
        html.contains("Chen Jing，您好！"),
        "rendered for the chosen member"
    );
    // The frame's own page: the HTML part, sandboxed.
    let r = app
        .get("/admin/lists/partners/preview?period=2023-W45&subscriber=")
        .header(COOKIE, &b.cookie)
        .send()
        .await
        .unwrap();
    assert!(
        r.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .starts_with("sandbox")
    );
    assert!(r.text().await.unwrap().contains("Coaction"));

    let (location, html) = b
        .post_and_follow("/admin/lists/partners/send", &[("period", "2023-W45")])
        .await;
    assert!(location.starts_with("/admin/digests/"), "{location}");
    assert!(html.contains("is being sent"));
    smtp.wait_for(7, Duration::from_secs(10)).await;
    // The counts reach 7 sent and 1 failed (the unknown recipient) with its reason.
    let mut html = String::new();
    for _ in 0..100 {
        html = b.page(&location).await.1;
        if html.contains("id=\"count-sent\">7<") && html.contains("id=\"count-failed\">1<") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(html.contains("id=\"count-sent\">7<"), "{html}");
    assert!(html.contains("id=\"count-pending\">0<"));
    assert!(html.contains("li.wei@zjtie-cn.example.edu"));
    assert!(html.contains("Retry 1 failed"));
    // Sending the same week again sends nothing and says so.
    let (_, html) = b
        .post_and_follow("/admin/lists/partners/send", &[("period", "2023-W45")])
        .await;
    assert!(html.contains("not sent twice"), "{html}");
    assert_eq!(smtp.messages().len(), 7);
    // The subscriber's page shows the digest received.
    let chen = app
        .state
        .store
        .people()
        .subscriber_by_email("chen.jing@zjtie-cn.example.edu")
        .await
        .unwrap()
        .unwrap();
    let (_, html) = b.page(&format!("/admin/subscribers/{}", chen.id)).await;
    assert!(html.contains("2023-W45"));
    assert!(html.contains("badge sent"));
}

#[tokio::test]
async fn an_admin_adds_a_user_whose_shown_password_signs_in() {
    let app = spawn_app().await;
    add_user(&app, "alice", Role::Admin).await;
    let b = sign_in(&app, "alice").await;
    let r = b
        .post(
            "/admin/users",
            &[("name", "pan.liucheng"), ("role", "editor")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let html = r.text().await.unwrap();
    let at = html.find("id=\"new-password\">").unwrap() + "id=\"new-password\">".len();
    let password = &html[at..at + 20];
    // It signs in with that password.
    let form = app.get("/admin/sign-in").send().await.unwrap();
    let pre = set_cookie(&form, "nd_signin").unwrap();
    let csrf = csrf_of(&form.text().await.unwrap());
    let r = app
        .client
        .post(app.url("/admin/sign-in"))
        .header(COOKIE, format!("nd_signin={pre}"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("name", "Pan.Liucheng"),
            ("password", password),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(set_cookie(&r, "nd_session").is_some());
    // The last admin cannot make herself an editor.
    let alice = app
        .state
        .store
        .users()
        .by_name("alice")
        .await
        .unwrap()
        .unwrap();
    let (_, html) = b
        .post_and_follow(
            &format!("/admin/users/{}", alice.id),
            &[("role", "editor"), ("disabled", "no")],
        )
        .await;
    assert!(html.contains("at least one enabled admin"), "{html}");
}

#[tokio::test]
async fn the_user_command_makes_a_user_who_signs_in() {
    let app = spawn_app().await;
    let db = app.state.settings.database_url.expose().to_owned();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_newsdesk"))
        .args(["user", "add", "wang.fang", "--role", "admin"])
        .env("DATABASE_URL", &db)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let password = stdout
        .lines()
        .find_map(|l| l.strip_prefix("password: "))
        .expect("the password is printed");
    assert_eq!(password.len(), 20);
    let user = app
        .state
        .store
        .users()
        .by_name("wang.fang")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(user.role, Role::Admin);
    assert!(newsdesk::passwords::verify(password, &user.password_hash));
    // A bad role is refused by name.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_newsdesk"))
        .args(["user", "add", "x", "--role", "owner"])
        .env("DATABASE_URL", &db)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("role"));
}

#[tokio::test]
async fn an_upload_over_the_limit_is_refused_and_leaves_nothing() {
    let app =
        crate::helpers::spawn_app_with(crate::helpers::Db::Sqlite, |s| s.max_import_bytes = 2048)
            .await
            .unwrap();
    app.load_demo().await;
    add_user(&app, "alice", Role::Admin).await;
    let b = sign_in(&app, "alice").await;
    let mut csv = String::from("email,name\n");
    for i in 0..200 {
        csv.push_str(&format!("reader{i}@example.org,Reader {i}\n"));
    }
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(csv.into_bytes()).file_name("big.csv"),
    );
    let r = app
        .client
        .post(app.url(&format!("/admin/import?csrf={}", b.csrf)))
        .header(COOKIE, &b.cookie)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.text().await.unwrap().contains("larger than"));
    assert!(
        app.state
            .store
            .people()
            .subscriber_by_email("reader0@example.org")
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn guesses_sent_in_parallel_are_counted_before_any_password_is_checked() {
    let app = spawn_app().await;
    add_user(&app, "alice", Role::Admin).await;
    let form = app.get("/admin/sign-in").send().await.unwrap();
    let pre = set_cookie(&form, "nd_signin").unwrap();
    let csrf = csrf_of(&form.text().await.unwrap());
    let guesses = (0..12).map(|i| {
        let (client, url, pre, csrf) = (
            app.client.clone(),
            app.url("/admin/sign-in"),
            pre.clone(),
            csrf.clone(),
        );
        async move {
            client
                .post(url)
                .header(COOKIE, format!("nd_signin={pre}"))
                .form(&[
                    ("csrf", csrf.as_str()),
                    ("name", "alice"),
                    ("password", &format!("wrong guess {i}")),
                ])
                .send()
                .await
                .unwrap()
                .status()
        }
    });
    let statuses = futures_util::future::join_all(guesses).await;
    let checked = statuses
        .iter()
        .filter(|s| **s == StatusCode::UNAUTHORIZED)
        .count();
    let locked = statuses
        .iter()
        .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    // Four wrong answers at most, then the fifth attempt locks: 12 parallel guesses
    // get no more passwords checked than 12 sent one after another.
    assert!(checked <= 4, "{statuses:?}");
    assert_eq!(checked + locked, 12, "{statuses:?}");
    let user = app
        .state
        .store
        .users()
        .by_name("alice")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(user.failed_sign_ins, 5);
    assert!(user.locked_until.is_some());
}

#[tokio::test]
async fn a_name_of_nobody_locks_like_an_account_so_names_cannot_be_told_apart() {
    let app = spawn_app().await;
    add_user(&app, "alice", Role::Admin).await;
    let form = app.get("/admin/sign-in").send().await.unwrap();
    let pre = set_cookie(&form, "nd_signin").unwrap();
    let csrf = csrf_of(&form.text().await.unwrap());
    let mut answers = Vec::new();
    for name in ["alice", "nobody"] {
        let mut statuses = Vec::new();
        for _ in 0..5 {
            let r = app
                .client
                .post(app.url("/admin/sign-in"))
                .header(COOKIE, format!("nd_signin={pre}"))
                .form(&[
                    ("csrf", csrf.as_str()),
                    ("name", name),
                    ("password", "wrong"),
                ])
                .send()
                .await
                .unwrap();
            let status = r.status();
            let locked = r
                .text()
                .await
                .unwrap()
                .contains("locked for 15 more minute");
            statuses.push((status, locked));
        }
        answers.push(statuses);
    }
    assert_eq!(answers[0], answers[1]);
    assert_eq!(answers[0][4], (StatusCode::TOO_MANY_REQUESTS, true));
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_client_has_its_own_sign_in_budget() {
    let app = crate::helpers::spawn_app_with(crate::helpers::Db::Sqlite, |s| {
        s.trust_forwarded_for = true
    })
    .await
    .unwrap();
    let form = app.get("/admin/sign-in").send().await.unwrap();
    let pre = set_cookie(&form, "nd_signin").unwrap();
    let csrf = csrf_of(&form.text().await.unwrap());
    let attempt = |client: &'static str, n: usize| {
        app.client
            .post(app.url("/admin/sign-in"))
            .header(COOKIE, format!("nd_signin={pre}"))
            // The proxy appends what it saw; the client's own claim comes first.
            .header("x-forwarded-for", format!("203.0.113.9, {client}"))
            .form(&[
                ("csrf", csrf.as_str()),
                ("name", &format!("nobody{n}")),
                ("password", "wrong"),
            ])
            .send()
    };
    for n in 0..30 {
        let r = attempt("198.51.100.1", n).await.unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "attempt {n}");
    }
    let r = attempt("198.51.100.1", 30).await.unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(r.text().await.unwrap().contains("from your address"));
    // Another client behind the same proxy is not held back.
    let r = attempt("198.51.100.2", 31).await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}
