//! The admin pages' defences, tried over plain HTTP: no page without a session, no form
//! without its CSRF token, no admin page for editors, a new session cookie at every
//! sign-in, accounts locked after repeated wrong passwords, sign-out that ends the
//! session, and headers that keep the pages out of caches and frames.
//!
//! The client follows no redirects and keeps no cookies: each test holds its cookies
//! in a [`Browser`] and reads every `Set-Cookie` itself.

use crate::helpers::{Db, TestApp, spawn_app, spawn_app_with};
use newsdesk::clock::Clock;
use newsdesk::domain::Role;
use reqwest::{Response, StatusCode, header};
use std::collections::BTreeMap;

const PASSWORD: &str = "a long password 123";

async fn add_user(app: &TestApp, name: &str, role: Role) {
    let hash = newsdesk::passwords::hash(PASSWORD).unwrap();
    app.state
        .store
        .users()
        .create(name, &hash, role, app.clock.now())
        .await
        .unwrap();
}

/// One `Set-Cookie` header, split into its value and attributes.
#[derive(Debug, Clone)]
struct SetCookie {
    name: String,
    value: String,
    /// Lowercased attribute names with their values (`httponly` → "").
    attributes: BTreeMap<String, String>,
    raw: String,
}

impl SetCookie {
    fn parse(raw: &str) -> Self {
        let mut parts = raw.split(';').map(str::trim);
        let (name, value) = parts.next().unwrap().split_once('=').unwrap();
        let attributes = parts
            .filter(|p| !p.is_empty())
            .map(|p| match p.split_once('=') {
                Some((k, v)) => (k.to_ascii_lowercase(), v.to_owned()),
                None => (p.to_ascii_lowercase(), String::new()),
            })
            .collect();
        Self {
            name: name.to_owned(),
            value: value.to_owned(),
            attributes,
            raw: raw.to_owned(),
        }
    }

    fn has(&self, attribute: &str) -> bool {
        self.attributes.contains_key(attribute)
    }

    fn removes(&self) -> bool {
        self.value.is_empty() || self.attributes.get("max-age").is_some_and(|v| v == "0")
    }
}

fn set_cookies(response: &Response) -> Vec<SetCookie> {
    response
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| SetCookie::parse(v.to_str().unwrap()))
        .collect()
}

fn location(response: &Response) -> String {
    response
        .headers()
        .get(header::LOCATION)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

/// The value of `<input ... name="csrf" value="...">` in a page.
fn csrf_in(html: &str) -> String {
    let at = html
        .find("name=\"csrf\" value=\"")
        .unwrap_or_else(|| panic!("no csrf input in the page:\n{html}"));
    let rest = &html[at + "name=\"csrf\" value=\"".len()..];
    rest[..rest.find('"').unwrap()].to_owned()
}

/// A cookie jar and the answers of one client.
struct Browser<'a> {
    app: &'a TestApp,
    cookies: BTreeMap<String, String>,
}

struct Answer {
    status: StatusCode,
    location: String,
    set_cookies: Vec<SetCookie>,
    headers: reqwest::header::HeaderMap,
    body: String,
}

impl Answer {
    fn cookie(&self, name: &str) -> Option<&SetCookie> {
        self.set_cookies.iter().find(|c| c.name == name)
    }

    fn redirects_to_sign_in(&self) -> bool {
        self.status == StatusCode::SEE_OTHER && self.location.starts_with("/admin/sign-in")
    }
}

impl<'a> Browser<'a> {
    fn new(app: &'a TestApp) -> Self {
        Self {
            app,
            cookies: BTreeMap::new(),
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn session(&self) -> Option<&str> {
        self.cookies.get("nd_session").map(String::as_str)
    }

    async fn send(&mut self, request: reqwest::RequestBuilder) -> Answer {
        let request = if self.cookies.is_empty() {
            request
        } else {
            request.header(header::COOKIE, self.cookie_header())
        };
        let response = request.send().await.unwrap();
        let set_cookies = set_cookies(&response);
        for c in &set_cookies {
            if c.removes() {
                self.cookies.remove(&c.name);
            } else {
                self.cookies.insert(c.name.clone(), c.value.clone());
            }
        }
        Answer {
            status: response.status(),
            location: location(&response),
            headers: response.headers().clone(),
            set_cookies,
            body: response.text().await.unwrap(),
        }
    }

    async fn get(&mut self, path: &str) -> Answer {
        let request = self.app.client.get(self.app.url(path));
        self.send(request).await
    }

    async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Answer {
        let request = self.app.client.post(self.app.url(path)).form(form);
        self.send(request).await
    }

    /// Opens the sign-in form and sends it; returns the answer to the POST.
    async fn sign_in(&mut self, name: &str, password: &str) -> Answer {
        let form = self.get("/admin/sign-in").await;
        assert_eq!(form.status, StatusCode::OK, "{}", form.body);
        let csrf = csrf_in(&form.body);
        self.post(
            "/admin/sign-in",
            &[
                ("csrf", &csrf),
                ("name", name),
                ("password", password),
                ("next", "/admin"),
            ],
        )
        .await
    }

    /// Signs in and checks it worked.
    async fn signed_in(app: &'a TestApp, name: &str) -> Browser<'a> {
        let mut b = Browser::new(app);
        let a = b.sign_in(name, PASSWORD).await;
        assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.body);
        assert_eq!(a.location, "/admin");
        assert!(b.session().is_some(), "{:?}", a.set_cookies);
        b
    }

    /// The CSRF token of this session, as its pages carry it.
    async fn csrf(&mut self) -> String {
        let page = self.get("/admin").await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        csrf_in(&page.body)
    }
}

// ---------------------------------------------------------------------------
// Scenarios, each run on SQLite by its own test and all on PostgreSQL by one.

async fn pages_need_a_session(app: &TestApp) {
    let mut b = Browser::new(app);
    for path in [
        "/admin",
        "/admin/items",
        "/admin/items/new",
        "/admin/categories",
        "/admin/lists",
        "/admin/lists/partners",
        "/admin/subscribers",
        "/admin/import",
        "/admin/users",
        "/admin/digests/1",
    ] {
        let a = b.get(path).await;
        assert_eq!(a.status, StatusCode::SEE_OTHER, "GET {path}: {}", a.body);
        assert!(
            a.location.starts_with("/admin/sign-in?next="),
            "GET {path} → {}",
            a.location
        );
    }
    // The page asked for is where sign-in leads back to, query and all.
    let a = b.get("/admin/items?status=draft").await;
    assert_eq!(
        a.location,
        "/admin/sign-in?next=%2Fadmin%2Fitems%3Fstatus%3Ddraft"
    );
    // A made-up cookie is no session either.
    b.cookies.insert("nd_session".into(), "0".repeat(64));
    assert!(b.get("/admin").await.redirects_to_sign_in());
    // Nor can a form be sent without one.
    let before = app.state.store.content().categories().await.unwrap().len();
    let a = b
        .post(
            "/admin/categories",
            &[("name", "No session"), ("slug", "no-session")],
        )
        .await;
    assert!(
        a.redirects_to_sign_in() || a.status == StatusCode::FORBIDDEN,
        "{} {}",
        a.status,
        a.location
    );
    assert_eq!(
        app.state.store.content().categories().await.unwrap().len(),
        before
    );
}

async fn sign_in_sets_a_session_cookie(app: &TestApp, name: &str) {
    let mut b = Browser::new(app);
    let form = b.get("/admin/sign-in").await;
    assert_eq!(form.status, StatusCode::OK);
    let pre = form
        .cookie("nd_signin")
        .expect("the sign-in form sets nd_signin")
        .clone();
    assert_eq!(pre.value.len(), 64, "{pre:?}");
    assert!(pre.has("httponly"), "{}", pre.raw);
    assert_eq!(
        csrf_in(&form.body),
        pre.value,
        "the form's token is the cookie's"
    );
    assert!(form.body.contains("<label for=\"name\">User name</label>"));
    assert!(
        form.body
            .contains("<label for=\"password\">Password</label>")
    );

    let a = b
        .post(
            "/admin/sign-in",
            &[
                ("csrf", &pre.value),
                ("name", name),
                ("password", PASSWORD),
                // Never somewhere else after signing in.
                ("next", "https://evil.example/admin"),
            ],
        )
        .await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.body);
    assert_eq!(a.location, "/admin");
    let session = a.cookie("nd_session").expect("a session cookie").clone();
    assert_eq!(session.value.len(), 64, "{}", session.raw);
    assert_eq!(
        session.attributes.get("path").map(String::as_str),
        Some("/admin")
    );
    assert!(session.has("httponly"), "{}", session.raw);
    assert_eq!(
        session
            .attributes
            .get("samesite")
            .map(|v| v.to_ascii_lowercase()),
        Some("lax".to_owned()),
        "{}",
        session.raw
    );
    assert!(
        !session.has("secure"),
        "no Secure over http: {}",
        session.raw
    );
    assert!(
        a.cookie("nd_signin").is_some_and(SetCookie::removes),
        "the sign-in cookie is dropped: {:?}",
        a.set_cookies
    );
    let dashboard = b.get("/admin").await;
    assert_eq!(dashboard.status, StatusCode::OK);
    assert!(dashboard.body.contains("<h1>Dashboard</h1>"));
    assert!(dashboard.body.contains(name));

    // A signed-in person asking for the form is sent on (only to admin pages).
    let a = b.get("/admin/sign-in?next=/admin/items").await;
    assert_eq!(
        (a.status, a.location.as_str()),
        (StatusCode::SEE_OTHER, "/admin/items")
    );
    let a = b.get("/admin/sign-in?next=//evil.example").await;
    assert_eq!(
        (a.status, a.location.as_str()),
        (StatusCode::SEE_OTHER, "/admin")
    );
}

async fn session_cookie_changes_at_sign_in(app: &TestApp, name: &str) {
    // A cookie planted before sign-in (session fixation) is not the one signed in.
    let mut b = Browser::new(app);
    let planted = "ab".repeat(32);
    b.cookies.insert("nd_session".into(), planted.clone());
    let a = b.sign_in(name, PASSWORD).await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.body);
    let first = b.session().unwrap().to_owned();
    assert_ne!(first, planted);

    // Signing in again with the first session's cookie gives a new one and ends the first.
    let mut again = Browser::new(app);
    let form = again.get("/admin/sign-in").await;
    let csrf = csrf_in(&form.body);
    again.cookies.insert("nd_session".into(), first.clone());
    let a = again
        .post(
            "/admin/sign-in",
            &[
                ("csrf", &csrf),
                ("name", name),
                ("password", PASSWORD),
                ("next", "/admin"),
            ],
        )
        .await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.body);
    let second = a
        .cookie("nd_session")
        .expect("a new session cookie")
        .value
        .clone();
    assert_ne!(second, first, "sign-in must make a new session cookie");
    assert_eq!(again.get("/admin").await.status, StatusCode::OK);
    let old = b.get("/admin").await;
    assert!(
        old.redirects_to_sign_in(),
        "the first session still works: {} {}",
        old.status,
        old.location
    );

    // Two people (or two browsers) signed in separately each keep their session.
    let other = Browser::signed_in(app, name).await;
    assert_ne!(other.session(), again.session());
    assert_eq!(again.get("/admin").await.status, StatusCode::OK);
}

async fn sign_in_needs_its_token(app: &TestApp, name: &str) {
    // Without the nd_signin cookie (a form posted from another site).
    let mut b = Browser::new(app);
    let form = b.get("/admin/sign-in").await;
    let csrf = csrf_in(&form.body);
    b.cookies.clear();
    let a = b
        .post(
            "/admin/sign-in",
            &[("csrf", &csrf), ("name", name), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN, "{}", a.body);
    assert!(a.cookie("nd_session").is_none(), "{:?}", a.set_cookies);

    // With the cookie and a wrong token, or none.
    for token in ["0".repeat(64), String::new()] {
        let mut b = Browser::new(app);
        b.get("/admin/sign-in").await;
        let a = b
            .post(
                "/admin/sign-in",
                &[("csrf", &token), ("name", name), ("password", PASSWORD)],
            )
            .await;
        assert_eq!(a.status, StatusCode::FORBIDDEN, "{}", a.body);
        assert!(a.cookie("nd_session").is_none(), "{:?}", a.set_cookies);
        assert!(b.session().is_none());
    }
}

async fn forms_need_the_csrf_token(app: &TestApp, admin: &str, editor: &str) {
    let mut b = Browser::signed_in(app, admin).await;
    let csrf = b.csrf().await;
    let exists = |slug: &'static str| async move {
        app.state
            .store
            .content()
            .categories()
            .await
            .unwrap()
            .iter()
            .any(|c| c.slug.as_str() == slug)
    };
    // No token, a wrong one, and another session's.
    let mut other = Browser::signed_in(app, editor).await;
    let others = other.csrf().await;
    assert_ne!(others, csrf);
    for token in [None, Some("0".repeat(64)), Some(others)] {
        let mut form = vec![("name", "Forged"), ("slug", "forged")];
        if let Some(t) = &token {
            form.push(("csrf", t));
        }
        let a = b.post("/admin/categories", &form).await;
        assert_eq!(
            a.status,
            StatusCode::FORBIDDEN,
            "token {token:?}: {}",
            a.body
        );
        assert!(!exists("forged").await, "token {token:?}");
    }
    // The token in a URL does not do for an ordinary form either (only uploads use it).
    let a = b
        .post(
            &format!("/admin/categories?csrf={csrf}"),
            &[("name", "Forged"), ("slug", "forged")],
        )
        .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN, "{}", a.body);
    assert!(!exists("forged").await);
    // An upload (multipart: the token travels in the form's address) without the token,
    // with a wrong one, and with the right one.
    let upload = |query: String| {
        let csv = reqwest::multipart::Part::bytes(b"email\nforged@example.org\n".to_vec())
            .file_name("x.csv")
            .mime_str("text/csv")
            .unwrap();
        app.client
            .post(app.url(&format!("/admin/import{query}")))
            .header(header::COOKIE, b.cookie_header())
            .multipart(
                reqwest::multipart::Form::new()
                    .part("file", csv)
                    .text("list", "partners"),
            )
            .send()
    };
    let right = upload(format!("?csrf={csrf}")).await.unwrap();
    assert_eq!(right.status(), StatusCode::SEE_OTHER);
    let preview = right.headers()[header::LOCATION]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(preview.starts_with("/admin/import/"), "{preview}");
    // A form that is not the upload cannot be sent as multipart (unlimited) data.
    let not_upload = app
        .client
        .post(app.url(&format!("/admin/items/preview?csrf={csrf}")))
        .header(header::COOKIE, b.cookie_header())
        .multipart(reqwest::multipart::Form::new().text("body", "x"))
        .send()
        .await
        .unwrap();
    assert_eq!(not_upload.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let wrong = upload(format!("?csrf={}", "0".repeat(64))).await.unwrap();
    assert_eq!(wrong.status(), StatusCode::FORBIDDEN);
    let upload = upload(String::new()).await.unwrap();
    assert_eq!(upload.status(), StatusCode::FORBIDDEN);
    assert!(
        app.state
            .store
            .people()
            .subscriber_by_email("forged@example.org")
            .await
            .unwrap()
            .is_none()
    );
    // Signing out is a form too: without the token it does not end the session.
    let a = b.post("/admin/sign-out", &[]).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    assert_eq!(b.get("/admin").await.status, StatusCode::OK);

    // With the right token it goes through.
    let a = b
        .post(
            "/admin/categories",
            &[("csrf", &csrf), ("name", "Forged"), ("slug", "forged")],
        )
        .await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.body);
    assert!(exists("forged").await);
}

async fn editors_stay_out_of_admin_pages(app: &TestApp, editor: &str) {
    let mut b = Browser::signed_in(app, editor).await;
    for path in [
        "/admin/subscribers",
        "/admin/partners",
        "/admin/lists",
        "/admin/lists/partners",
        "/admin/users",
        "/admin/import",
        "/admin/digests/1",
    ] {
        let a = b.get(path).await;
        assert_eq!(a.status, StatusCode::FORBIDDEN, "editor GET {path}");
    }
    for path in [
        "/admin",
        "/admin/items",
        "/admin/items/new",
        "/admin/categories",
    ] {
        let a = b.get(path).await;
        assert_eq!(a.status, StatusCode::OK, "editor GET {path}: {}", a.body);
    }
    let items = b.get("/admin/items").await.body;
    assert!(
        !items.contains("href=\"/admin/users\""),
        "no admin links for editors"
    );
    // Forms of admin pages, with the editor's own valid token.
    let csrf = b.csrf().await;
    let a = b
        .post(
            "/admin/users",
            &[("csrf", &csrf), ("name", "mallory"), ("role", "admin")],
        )
        .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    assert!(
        app.state
            .store
            .users()
            .by_name("mallory")
            .await
            .unwrap()
            .is_none()
    );
    let a = b
        .post(
            "/admin/lists/partners/send",
            &[("csrf", &csrf), ("period", "2023-W45")],
        )
        .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    assert!(
        app.state
            .store
            .digests()
            .list(None, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let me = app
        .state
        .store
        .users()
        .by_name(editor)
        .await
        .unwrap()
        .unwrap();
    let a = b
        .post(
            &format!("/admin/users/{}", me.id),
            &[("csrf", &csrf), ("role", "admin")],
        )
        .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    let me = app
        .state
        .store
        .users()
        .by_name(editor)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        me.role,
        Role::Editor,
        "an editor cannot make themself admin"
    );
}

async fn sign_out_ends_the_session(app: &TestApp, name: &str) {
    let mut b = Browser::signed_in(app, name).await;
    let cookie = b.session().unwrap().to_owned();
    let csrf = b.csrf().await;
    let a = b.post("/admin/sign-out", &[("csrf", &csrf)]).await;
    assert_eq!(a.status, StatusCode::SEE_OTHER);
    assert_eq!(a.location, "/admin/sign-in?signed_out=1");
    assert!(
        a.cookie("nd_session").is_some_and(SetCookie::removes),
        "the cookie is removed: {:?}",
        a.set_cookies
    );
    let page = b.get(&a.location).await;
    assert!(page.body.contains("You have signed out."));
    // The old cookie, kept by someone, is worth nothing now.
    b.cookies.insert("nd_session".into(), cookie);
    assert!(b.get("/admin").await.redirects_to_sign_in());
}

async fn wrong_passwords_lock_the_account(app: &TestApp, name: &str) {
    let mut b = Browser::new(app);
    let mut statuses = Vec::new();
    let mut locked_at = None;
    for attempt in 1..=6 {
        let a = b.sign_in(name, "not the password at all").await;
        assert!(a.cookie("nd_session").is_none());
        statuses.push(a.status);
        if a.status == StatusCode::TOO_MANY_REQUESTS {
            assert!(a.body.contains("locked"), "{}", a.body);
            locked_at = Some(attempt);
            break;
        }
        assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{}", a.body);
    }
    assert!(
        matches!(locked_at, Some(5 | 6)),
        "locked after 5 wrong passwords: {statuses:?}"
    );
    // Now even the right password is refused, and says why.
    let a = b.sign_in(name, PASSWORD).await;
    assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS, "{}", a.body);
    assert!(a.body.contains("locked"), "{}", a.body);
    assert!(a.cookie("nd_session").is_none());
    // Locks run on the database's clock.
    crate::helpers::let_database_time_pass(&app.database_url(), 14 * 60).await;
    let a = b.sign_in(name, PASSWORD).await;
    assert_eq!(
        a.status,
        StatusCode::TOO_MANY_REQUESTS,
        "still locked after 14 minutes"
    );
    // After the lock, the right password works.
    crate::helpers::let_database_time_pass(&app.database_url(), 2 * 60).await;
    let a = b.sign_in(name, PASSWORD).await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.body);
    assert!(b.session().is_some());
    assert_eq!(b.get("/admin").await.status, StatusCode::OK);
}

async fn sessions_expire_when_idle(app: &TestApp, name: &str) {
    let mut b = Browser::signed_in(app, name).await;
    app.clock.advance(chrono::Duration::hours(11));
    assert_eq!(b.get("/admin").await.status, StatusCode::OK, "in use: kept");
    app.clock
        .advance(chrono::Duration::hours(12) + chrono::Duration::minutes(1));
    assert!(b.get("/admin").await.redirects_to_sign_in(), "idle: ended");
}

async fn pages_carry_security_headers(app: &TestApp, name: &str) {
    let mut b = Browser::new(app);
    let sign_in = b.get("/admin/sign-in").await;
    let mut signed_in = Browser::signed_in(app, name).await;
    let dashboard = signed_in.get("/admin").await;
    let forbidden = signed_in.post("/admin/categories", &[]).await;
    for (what, a) in [
        ("sign-in", &sign_in),
        ("dashboard", &dashboard),
        ("refused form", &forbidden),
    ] {
        let h = |n: &str| {
            a.headers
                .get(n)
                .map(|v| v.to_str().unwrap().to_owned())
                .unwrap_or_default()
        };
        assert_eq!(h("cache-control"), "no-store", "{what}");
        assert_eq!(h("x-frame-options"), "DENY", "{what}");
        assert_eq!(h("x-content-type-options"), "nosniff", "{what}");
        let csp = h("content-security-policy");
        assert!(csp.contains("frame-ancestors 'none'"), "{what}: {csp:?}");
        assert!(csp.contains("script-src 'self'"), "{what}: {csp:?}");
        assert!(!csp.contains("unsafe-inline"), "{what}: {csp:?}");
    }
}

// ---------------------------------------------------------------------------

async fn app_with_users() -> TestApp {
    let app = spawn_app().await;
    app.load_demo().await;
    add_user(&app, "alice", Role::Admin).await;
    add_user(&app, "eddie", Role::Editor).await;
    app
}

#[tokio::test]
async fn pages_without_a_session_redirect_to_sign_in() {
    pages_need_a_session(&app_with_users().await).await;
}

#[tokio::test]
async fn signing_in_sets_an_http_only_same_site_session_cookie() {
    sign_in_sets_a_session_cookie(&app_with_users().await, "alice").await;
}

#[tokio::test]
async fn the_session_cookie_is_secure_on_an_https_site() {
    let app = spawn_app_with(Db::Sqlite, |s| {
        s.base_url = "https://news.szpu.example.edu".into();
        s.base_url_from_bind = false;
    })
    .await
    .unwrap();
    add_user(&app, "alice", Role::Admin).await;
    let mut b = Browser::new(&app);
    let form = b.get("/admin/sign-in").await;
    let pre = form.cookie("nd_signin").unwrap();
    assert!(pre.has("secure"), "{}", pre.raw);
    let a = b.sign_in("alice", PASSWORD).await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.body);
    let session = a.cookie("nd_session").unwrap();
    assert!(session.has("secure"), "{}", session.raw);
    assert!(session.has("httponly"), "{}", session.raw);
}

#[tokio::test]
async fn the_session_cookie_changes_at_sign_in() {
    session_cookie_changes_at_sign_in(&app_with_users().await, "alice").await;
}

#[tokio::test]
async fn sign_in_without_its_csrf_token_is_refused() {
    sign_in_needs_its_token(&app_with_users().await, "alice").await;
}

#[tokio::test]
async fn a_form_posted_without_the_csrf_token_is_refused() {
    forms_need_the_csrf_token(&app_with_users().await, "alice", "eddie").await;
}

#[tokio::test]
async fn an_editor_cannot_reach_admin_only_pages() {
    editors_stay_out_of_admin_pages(&app_with_users().await, "eddie").await;
}

#[tokio::test]
async fn repeated_wrong_passwords_lock_the_account_for_fifteen_minutes() {
    wrong_passwords_lock_the_account(&app_with_users().await, "alice").await;
}

#[tokio::test]
async fn signing_out_ends_the_session() {
    sign_out_ends_the_session(&app_with_users().await, "alice").await;
}

#[tokio::test]
async fn idle_sessions_end_after_twelve_hours() {
    sessions_expire_when_idle(&app_with_users().await, "alice").await;
}

#[tokio::test]
async fn admin_pages_are_not_cached_or_framed() {
    pages_carry_security_headers(&app_with_users().await, "alice").await;
}

/// Every scenario once more on PostgreSQL (sessions, tokens and locks live in the
/// database); skipped when NEWSDESK_TEST_POSTGRES_URL is not set.
#[tokio::test]
async fn the_defences_hold_on_postgresql() {
    let Some(app) = spawn_app_with(Db::Postgres, |_| {}).await else {
        return;
    };
    app.load_demo().await;
    add_user(&app, "alice", Role::Admin).await;
    add_user(&app, "eddie", Role::Editor).await;
    add_user(&app, "olga", Role::Admin).await;
    pages_need_a_session(&app).await;
    sign_in_sets_a_session_cookie(&app, "alice").await;
    session_cookie_changes_at_sign_in(&app, "alice").await;
    sign_in_needs_its_token(&app, "alice").await;
    forms_need_the_csrf_token(&app, "alice", "eddie").await;
    editors_stay_out_of_admin_pages(&app, "eddie").await;
    sign_out_ends_the_session(&app, "alice").await;
    pages_carry_security_headers(&app, "alice").await;
    // These move the clock: last.
    wrong_passwords_lock_the_account(&app, "olga").await;
    sessions_expire_when_idle(&app, "alice").await;
}
