//! The subscription pages and the confirmation mail in the reader's language: the form
//! under `/zh/`, its errors, the subscriber's language, the confirmation mail over the
//! real SMTP server (subject, body, links to the `/zh/` pages), the confirm, preferences
//! and unsubscribe pages in Chinese; English unchanged. Both backends.

use crate::helpers::{Db, TestApp, spawn_app_with};
use crate::smtp_server::{Behaviour, SmtpServer, parse};
use reqwest::StatusCode;
use serde_json::Value;
use std::time::Duration;

async fn app_with_mail(db: Db) -> Option<(TestApp, SmtpServer)> {
    let smtp = SmtpServer::start(Behaviour::accept_all()).await;
    let url = smtp.url();
    let app = spawn_app_with(db, move |s| {
        s.mail.smtp_url = Some(newsdesk::config::Secret::new(url))
    })
    .await?;
    app.load_demo().await;
    Some((app, smtp))
}

async fn get(app: &TestApp, path: &str) -> (StatusCode, Option<String>, String) {
    let r = app.get(path).send().await.unwrap();
    let language = r
        .headers()
        .get("content-language")
        .map(|v| v.to_str().unwrap().to_owned());
    (r.status(), language, r.text().await.unwrap())
}

async fn post(app: &TestApp, path: &str, fields: &[(&str, &str)]) -> (StatusCode, String) {
    let r = app
        .client
        .post(app.url(path))
        .form(fields)
        .send()
        .await
        .unwrap();
    (r.status(), r.text().await.unwrap())
}

/// The first link in `text` that starts with `prefix`.
fn link(text: &str, prefix: &str) -> String {
    let start = text
        .find(prefix)
        .unwrap_or_else(|| panic!("no {prefix} link in {text}"));
    text[start..]
        .split(|c: char| c.is_whitespace() || c == '"' || c == '<' || c == '>')
        .next()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn a_subscription_from_the_zh_form_is_chinese_from_the_page_to_the_mail_and_its_pages() {
    for db in [Db::Sqlite, Db::Postgres] {
        let Some((app, smtp)) = app_with_mail(db).await else {
            continue;
        };
        let base = &app.address;

        // The form, in Chinese, linked to its other languages.
        let (status, language, form) = get(&app, "/zh/subscribe").await;
        assert_eq!(status, StatusCode::OK, "{db:?}: {form}");
        assert_eq!(language.as_deref(), Some("zh"), "{db:?}");
        assert!(form.contains("<html lang=\"zh\""), "{db:?}: {form}");
        for words in ["<h1>订阅</h1>", "电子邮件地址", "姓名（选填）", "邮件语言"]
        {
            assert!(form.contains(words), "{db:?}: {words} in {form}");
        }
        assert!(!form.contains("Email address"), "{db:?}");
        assert!(
            form.contains("合作院校通讯") && !form.contains("Partner institutions digest"),
            "{db:?}: the list by its Chinese name: {form}"
        );
        assert!(
            form.contains(&format!("action=\"{base}/zh/subscribe\"")),
            "{db:?}: {form}"
        );
        assert!(
            form.contains(&format!("hreflang=\"en\" href=\"{base}/en/subscribe\""))
                && form.contains(&format!("hreflang=\"x-default\" href=\"{base}/subscribe\"")),
            "{db:?}: {form}"
        );
        assert!(
            form.contains("<option value=\"zh\" selected>中文</option>"),
            "{db:?}: the page's language is offered first"
        );

        // Errors in Chinese, naming the field; nothing stored, nothing sent.
        let (status, page) = post(
            &app,
            "/zh/subscribe",
            &[("email", "not an address"), ("list", "partners")],
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{db:?}");
        assert!(page.contains("<html lang=\"zh\""), "{db:?}");
        assert!(page.contains("请检查表单："), "{db:?}: {page}");
        assert!(
            page.contains("<li data-field=\"email\">电子邮件地址: 请填写有效的电子邮件地址</li>"),
            "{db:?}: {page}"
        );
        assert!(
            page.contains("value=\"not an address\""),
            "{db:?}: the form keeps what was typed"
        );
        assert_eq!(app.find_subscriber("not an address").await, None);

        // A subscription from the Chinese form is in Chinese.
        let (status, page) = post(
            &app,
            "/zh/subscribe",
            &[
                ("email", "li.na@partner.example.cn"),
                ("name", "李娜"),
                ("list", "partners"),
            ],
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{db:?}: {page}");
        assert!(page.contains("<h1>请查收邮件</h1>"), "{db:?}: {page}");
        assert_eq!(
            app.subscriber_by_email("li.na@partner").await["language"],
            "zh",
            "{db:?}"
        );
        let received = smtp.wait_for(1, Duration::from_secs(10)).await;
        assert_eq!(received.len(), 1, "{db:?}");
        let mail = parse(&received[0].raw);
        assert_eq!(
            mail.subject.as_deref(),
            Some("请确认订阅：合作院校通讯"),
            "{db:?}"
        );
        let (text, html) = (mail.text.clone().unwrap(), mail.html.clone().unwrap());
        assert!(text.starts_with("李娜，您好！"), "{db:?}: {text}");
        assert!(text.contains("天内有效"), "{db:?}: {text}");
        assert!(html.contains("<html lang=\"zh\">") && html.contains("确认订阅"));
        let confirm = link(&text, &format!("{base}/zh/subscribe/confirm/"));
        assert!(html.contains(&confirm), "{db:?}: the same link in HTML");
        let unsubscribe = link(&text, &format!("{base}/zh/unsubscribe/"));
        // The header a mail program posts to stays unprefixed.
        assert!(
            mail.header("List-Unsubscribe")
                .unwrap()
                .starts_with(&format!("<{base}/unsubscribe/")),
            "{db:?}"
        );

        // The link opens the Chinese confirmation page, linking to the Chinese preferences.
        let (status, language, page) = get(&app, confirm.trim_start_matches(base.as_str())).await;
        assert_eq!(status, StatusCode::OK, "{db:?}: {page}");
        assert_eq!(language.as_deref(), Some("zh"));
        assert!(page.contains("<h1>订阅已确认</h1>"), "{db:?}: {page}");
        assert!(
            page.contains("您的地址已确认，您将收到合作院校通讯。"),
            "{db:?}: {page}"
        );
        assert!(page.contains(">管理我的订阅</a>"), "{db:?}");
        assert_eq!(
            app.subscriber_by_email("li.na@partner").await["status"],
            "confirmed"
        );
        let preferences = link(&page, &format!("{base}/zh/preferences/"));
        let path = preferences.trim_start_matches(base.as_str()).to_owned();
        let (status, _, page) = get(&app, &path).await;
        assert_eq!(status, StatusCode::OK, "{db:?}: {page}");
        assert!(page.contains("<html lang=\"zh\""), "{db:?}");
        assert!(page.contains("<h1>我的订阅</h1>"), "{db:?}: {page}");
        assert!(
            page.contains("邮件将发送至<strong>li.na@partner.example.cn</strong>。"),
            "{db:?}: {page}"
        );
        assert!(page.contains("<button type=\"submit\">保存</button>"));
        assert!(page.contains(&format!("action=\"{base}{path}\"")), "{db:?}");
        let (status, page) = post(&app, &path, &[("language", "zh"), ("list", "partners")]).await;
        assert_eq!(status, StatusCode::OK, "{db:?}: {page}");
        assert!(page.contains("您的设置已保存。"), "{db:?}: {page}");

        // Unsubscribing, in Chinese.
        let path = unsubscribe.trim_start_matches(base.as_str()).to_owned();
        let (status, _, page) = get(&app, &path).await;
        assert_eq!(status, StatusCode::OK, "{db:?}: {page}");
        assert!(
            page.contains(
                "确定不再通过li.na@partner.example.cn接收<strong>合作院校通讯</strong>吗？"
            ),
            "{db:?}: {page}"
        );
        let (status, page) = post(&app, &path, &[("List-Unsubscribe", "One-Click")]).await;
        assert_eq!(status, StatusCode::OK, "{db:?}: {page}");
        assert!(page.contains("<h1>您已退订</h1>"), "{db:?}: {page}");
        let (status, _, page) = get(
            &app,
            "/zh/subscribe/confirm/0123456789abcdef0123456789abcdef",
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert!(page.contains("此链接无效"), "{db:?}: {page}");
        // A language the site does not have is no page.
        assert_eq!(get(&app, "/fr/subscribe").await.0, StatusCode::NOT_FOUND);
    }
}

#[tokio::test]
async fn english_subscription_pages_and_mail_are_unchanged() {
    for db in [Db::Sqlite, Db::Postgres] {
        let Some((app, smtp)) = app_with_mail(db).await else {
            continue;
        };
        let base = &app.address;
        let (status, language, form) = get(&app, "/subscribe").await;
        assert_eq!(status, StatusCode::OK, "{db:?}");
        assert_eq!(language.as_deref(), Some("en"));
        assert!(form.contains("<html lang=\"en\""), "{db:?}");
        assert!(form.contains("<label for=\"email\">Email address</label>"));
        assert!(
            form.contains(&format!("action=\"{base}/subscribe\"")),
            "{db:?}"
        );
        assert!(form.contains("<option value=\"en\" selected>English</option>"));
        // Errors name the field, with the service's message.
        let (status, page) = post(
            &app,
            "/en/subscribe",
            &[("email", "x@example.org"), ("list", "nope")],
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(
            page.contains(
                "<li data-field=\"list\">List: there is no public list &quot;nope&quot;</li>"
            ),
            "{db:?}: {page}"
        );
        // From the English pages: an English mail linking to the /en/ pages, as a
        // digest does.
        let (status, page) = post(
            &app,
            "/en/subscribe",
            &[("email", "sam@example.org"), ("list", "partners")],
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{db:?}");
        assert!(page.contains("Check your inbox"));
        let mail = parse(&smtp.wait_for(1, Duration::from_secs(10)).await[0].raw);
        assert_eq!(
            mail.subject.as_deref(),
            Some("Please confirm: Partner institutions digest")
        );
        let text = mail.text.unwrap();
        assert!(text.starts_with("Hello,"), "{db:?}: {text}");
        let confirm = link(&text, &format!("{base}/en/subscribe/confirm/"));
        let (status, _, page) = get(&app, confirm.trim_start_matches(base.as_str())).await;
        assert_eq!(status, StatusCode::OK);
        assert!(
            page.contains("<h1>Subscription confirmed</h1>"),
            "{db:?}: {page}"
        );
        assert!(
            page.contains(&format!("{base}/en/preferences/")),
            "{db:?}: {page}"
        );
    }
}

#[tokio::test]
async fn the_json_answer_to_a_subscription_is_in_its_language() {
    let Some((app, smtp)) = app_with_mail(Db::Sqlite).await else {
        return;
    };
    let post_json = |path: &'static str, body: Value| {
        let app = &app;
        async move {
            let r = app
                .client
                .post(app.url(path))
                .json(&body)
                .send()
                .await
                .unwrap();
            let status = r.status();
            let body: Value = r.json().await.unwrap();
            (
                status,
                body["status"].clone(),
                body["message"].as_str().unwrap().to_owned(),
            )
        }
    };
    let chinese = "如果该地址可以接收邮件，一封确认邮件正在发送途中。请点击邮件中的链接完成确认。";
    let english =
        "If this address can receive mail, a message is on its way. Follow its link to confirm.";
    // The subscription's language (any region of a site language) picks the words.
    let (status, said, text) = post_json(
        "/subscribe",
        serde_json::json!({"email": "wang@example.org", "list": "partners", "language": "zh-CN"}),
    )
    .await;
    assert_eq!(
        (status, said.as_str()),
        (StatusCode::ACCEPTED, Some("accepted"))
    );
    assert_eq!(text, chinese);
    // Without one, the page's language, then the site's default.
    let (status, _, text) = post_json(
        "/zh/subscribe",
        serde_json::json!({"email": "zhao@example.org", "list": "partners"}),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(text, chinese);
    let (_, _, text) = post_json(
        "/subscribe",
        serde_json::json!({"email": "kim@example.org", "list": "partners"}),
    )
    .await;
    assert_eq!(text, english);
    // A language the site is not read in: the page's words; the mail still goes.
    let (status, _, text) = post_json(
        "/zh/subscribe",
        serde_json::json!({"email": "marie@example.org", "list": "partners", "language": "fr"}),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(text, chinese);
    let mails = smtp.wait_for(4, Duration::from_secs(10)).await;
    let to_wang = mails
        .iter()
        .map(|m| parse(&m.raw))
        .find(|m| m.to.iter().any(|t| t.contains("wang@example.org")))
        .expect("a mail to wang");
    assert!(
        to_wang.subject.as_deref().is_some_and(|s| !s.is_ascii()),
        "{:?}",
        to_wang.subject
    );
}
