//! Digests per language, end to end on both backends: the demo's W45 and W46 digests
//! delivered through a real SMTP server on loopback and read back with mail-parser, for
//! the partner that reads Chinese, the ones that read English, and a reader of French
//! (a language no item has); the preview per language in the API and the admin pages;
//! the public page of a sent digest in each site language.

use crate::admin_pages::{add_user, sign_in};
use crate::helpers::{Db, TestApp, spawn_app_with};
use crate::smtp_server::{Behaviour, ParsedMail, SmtpServer, parse};
use newsdesk::demo::{FINAL_SESSION_TITLE_ZH, REPORT_TITLE_ZH};
use newsdesk::domain::Role;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::time::Duration;

const FINAL_SESSION_EN: &str =
    "2023 UNEVOC Network Coaction Initiative: final session and closing ceremony";
const REPORT_EN: &str =
    "The 2023 UNEVOC Network Coaction Initiative ends with shared cases from six institutions";
const ZHEJIANG: &str = "Zhejiang Technical Institute of Economics";
const LI_WEI: &str = "li.wei@zjtie-cn.example.edu";
const ZOE: &str = "zoe.martin@example.fr";
/// The demo's eight members and Zoé.
const READERS: usize = 9;

/// The demo on `db`, mailing through a real SMTP server, with a reader of French on
/// the partners list; `None` when the backend is not there.
async fn demo(db: Db) -> Option<(TestApp, SmtpServer)> {
    let smtp = SmtpServer::start(Behaviour::accept_all()).await;
    let url = smtp.url();
    let app = spawn_app_with(db, move |s| {
        s.mail.smtp_url = Some(newsdesk::config::Secret::new(url));
    })
    .await?;
    app.load_demo().await;
    let r = app
        .admin(Method::POST, "/api/v1/subscribers")
        .json(
            &json!({"email": ZOE, "name": "Zoé Martin", "language": "fr", "list": "partners",
                      "consent_source": "test: a reader of French"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::CREATED,
        "{}",
        r.text().await.unwrap()
    );
    Some((app, smtp))
}

/// Sends the partners' digest of `period` by hand and waits until every message of it
/// has arrived: `total` messages in all so far.
async fn send(app: &TestApp, smtp: &SmtpServer, period: &str, total: usize) -> i64 {
    let r = app
        .admin(Method::POST, "/api/v1/lists/partners/digests")
        .json(&json!({"period": period}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let created: Value = r.json().await.unwrap();
    smtp.wait_for(total, Duration::from_secs(20)).await;
    created["id"].as_i64().unwrap()
}

/// Each recipient's message of a digest, parsed: the last one each was sent.
fn mail_by_recipient(smtp: &SmtpServer) -> HashMap<String, ParsedMail> {
    let mut out = HashMap::new();
    for m in smtp.messages() {
        let mut mail = parse(&m.raw);
        // Lines as the templates wrote them.
        for part in [&mut mail.text, &mut mail.html].into_iter().flatten() {
            *part = part.replace("\r\n", "\n");
        }
        for to in &m.rcpt_to {
            out.insert(to.clone(), mail.clone());
        }
    }
    out
}

/// `s` as handlebars writes it into HTML (`&` and `=` escaped; no `"` in `s`).
fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('=', "&#x3D;")
}

/// The text of an HTML part without its tags.
fn visible(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out
}

fn is_cjk(c: char) -> bool {
    matches!(c, '\u{2e80}'..='\u{303f}' | '\u{3400}'..='\u{9fff}' | '\u{f900}'..='\u{faff}' | '\u{ff00}'..='\u{ffef}')
}

fn has_cjk(s: &str) -> bool {
    s.chars().any(is_cjk)
}

/// The intro sentence of a text part: the line after the greeting.
fn text_intro(text: &str) -> String {
    let mut lines = text.lines().skip_while(|l| !l.contains("您好"));
    lines.next();
    lines.next().unwrap_or_default().to_owned()
}

/// The intro sentence of an HTML part: the paragraph with the id `intro`.
fn html_intro(html: &str) -> String {
    let start = html.find("id=\"intro\">").expect("an intro paragraph") + "id=\"intro\">".len();
    let end = start + html[start..].find("</p>").unwrap();
    html[start..end].to_owned()
}

#[tokio::test]
async fn each_reader_gets_the_demo_digests_in_their_language_on_both_backends() {
    for db in [Db::Sqlite, Db::Postgres] {
        let Some((app, smtp)) = demo(db).await else {
            continue;
        };
        send(&app, &smtp, "2023-W45", READERS).await;
        let w45 = mail_by_recipient(&smtp);
        assert_eq!(w45.len(), READERS, "{db:?}");

        // The reader in China: Chinese subject (the list's Chinese name in it: not
        // one Latin letter), title, dates, mode, venue and chrome.
        let li = &w45[LI_WEI];
        assert_eq!(
            li.subject.as_deref(),
            Some("合作院校通讯：2023年第45周摘要（11月6日至12日）"),
            "{db:?}"
        );
        let subject = li.subject.as_deref().unwrap();
        assert!(
            !subject.chars().any(|c| c.is_ascii_alphabetic()),
            "{db:?}: {subject}"
        );
        let (text, html) = (li.text.clone().unwrap(), li.html.clone().unwrap());
        for part in [&text, &visible(&html)] {
            for expected in [
                "2023年11月6日至12日",
                "Li Wei，您好！",
                "近期活动",
                FINAL_SESSION_TITLE_ZH,
                "各合作院校交流本校的数字化转型案例",
                "2023年11月9日（星期四）14:00至17:30（北京时间，UTC+08:00）",
                "线上线下结合",
                "深圳市南山区留仙大道7098号，留仙洞校区",
                "添加到日历",
                "文中时间均为北京时间。",
                "您收到此邮件，是因为您订阅了“合作院校通讯”。",
                "订阅设置",
                "退订",
            ] {
                assert!(part.contains(expected), "{db:?}: {expected:?} in {part}");
            }
            for english in [
                FINAL_SESSION_EN,
                "Partners share their digital transformation cases",
                "Hybrid",
                "Liuxiandong Campus",
                "Hello",
                "Here is what",
                "Coming up",
                "November",
                "Thu",
                "Times are shown",
                "You receive this",
                "Add to calendar",
                "Read more",
                "Unsubscribe",
                "not available",
                "Partner institutions digest",
            ] {
                assert!(!part.contains(english), "{db:?}: {english:?} in {part}");
            }
        }
        assert!(html.contains("<html lang=\"zh\">"), "{html}");
        assert!(
            !html.contains(" lang=\"en\""),
            "nothing fell back to English: {html}"
        );
        // The intro is one Chinese sentence around the institution's Chinese name (its
        // `names.zh`): not one Latin letter in it.
        let expected = format!(
            "以下是为{}各位同事整理的近期活动与最新动态。",
            newsdesk::demo::ZHEJIANG_NAME_ZH
        );
        assert_eq!(text_intro(&text), expected, "{db:?}: {text}");
        assert_eq!(html_intro(&html), expected, "{db:?}");
        for intro in [text_intro(&text), html_intro(&html)] {
            assert!(
                !intro.chars().any(|c| c.is_ascii_alphabetic()),
                "{db:?}: {intro}"
            );
            assert!(intro.chars().all(is_cjk), "{db:?}: {intro}");
        }
        assert!(!text.contains(ZHEJIANG), "{db:?}: the English name nowhere");

        // The readers of English: the English original, and not one Chinese character.
        let english: Vec<&String> = w45
            .keys()
            .filter(|to| !to.ends_with("@zjtie-cn.example.edu") && *to != ZOE)
            .collect();
        assert_eq!(english.len(), 6, "{db:?}");
        for to in english {
            let mail = &w45[to];
            let (text, html) = (mail.text.clone().unwrap(), mail.html.clone().unwrap());
            assert_eq!(
                mail.subject.as_deref(),
                Some("Partner institutions digest: 6–12 November 2023"),
                "{db:?} {to}"
            );
            for part in [&text, &html] {
                assert!(part.contains(FINAL_SESSION_EN), "{db:?} {to}");
                assert!(
                    part.contains("Hybrid (in person and online)"),
                    "{db:?} {to}"
                );
                assert!(
                    part.contains(
                        "Here is what is coming up and what happened, for colleagues at "
                    )
                );
                assert!(!part.contains("(not available in English)"), "{db:?} {to}");
            }
            for s in [mail.subject.as_deref().unwrap(), &text, &html] {
                assert!(!has_cjk(s), "{db:?} {to}: {s}");
            }
            assert!(html.contains("<html lang=\"en\">"));
        }

        // The reader of French: the originals, in English words, marked as English.
        let zoe = &w45[ZOE];
        let (text, html) = (zoe.text.clone().unwrap(), zoe.html.clone().unwrap());
        assert_eq!(
            zoe.subject.as_deref(),
            Some("Partner institutions digest: 6–12 November 2023")
        );
        assert!(
            text.contains("Hello Zoé Martin,\nHere is what is coming up and what happened.\n"),
            "{text}"
        );
        assert!(text.contains(&format!("* {FINAL_SESSION_EN}\n")), "{text}");
        assert!(html.contains("<html lang=\"en\">"));
        assert!(
            html.contains(&format!(
                "lang=\"en\" style=\"color:#0b5394;text-decoration:none;\">{FINAL_SESSION_EN}</a>"
            )),
            "the original is marked as English: {html}"
        );
        assert!(!has_cjk(&text) && !has_cjk(&html), "{db:?}");

        // Week 46 brings the report: its Chinese version to Li Wei, the English one
        // to the others.
        send(&app, &smtp, "2023-W46", 2 * READERS).await;
        let w46 = mail_by_recipient(&smtp);
        let li = &w46[LI_WEI];
        assert_eq!(
            li.subject.as_deref(),
            Some("合作院校通讯：2023年第46周摘要（11月13日至19日）")
        );
        for part in [li.text.as_deref().unwrap(), li.html.as_deref().unwrap()] {
            assert!(part.contains(REPORT_TITLE_ZH), "{db:?}: {part}");
            assert!(
                part.contains("新闻") && part.contains("2023年11月10日"),
                "{part}"
            );
            assert!(!part.contains(REPORT_EN), "{db:?}");
        }
        // The office that wrote it is the original's words, marked as such.
        assert!(
            li.html
                .as_deref()
                .unwrap()
                .contains("· <span lang=\"en\">Asia-Africa Center</span>")
        );
        let ayesha = &w46["ayesha.khan@ntu-pk.example.edu"];
        for part in [
            ayesha.text.as_deref().unwrap(),
            ayesha.html.as_deref().unwrap(),
        ] {
            assert!(part.contains(REPORT_EN), "{db:?}");
            assert!(part.contains("10 November 2023"), "{db:?}");
            assert!(!has_cjk(part), "{db:?}: {part}");
        }
    }
}

#[tokio::test]
async fn previews_and_the_digest_pages_show_each_language_on_both_backends() {
    for db in [Db::Sqlite, Db::Postgres] {
        let Some((app, smtp)) = demo(db).await else {
            continue;
        };
        // The API's preview in a language, for a sample reader or a member.
        let preview = |query: &str| {
            app.admin(
                Method::GET,
                &format!("/api/v1/lists/partners/digests/2023-W45/preview?format=text{query}"),
            )
            .send()
        };
        let zh = preview("&language=zh").await.unwrap();
        assert_eq!(zh.status(), StatusCode::OK);
        let zh = zh.text().await.unwrap();
        assert!(
            zh.contains("\n您好！\n以下是近期活动与最新动态。\n"),
            "{db:?}: {zh}"
        );
        assert!(zh.contains(FINAL_SESSION_TITLE_ZH));
        // The list by its Chinese name: the heading and the footer.
        assert!(zh.starts_with("合作院校通讯 - "), "{db:?}: {zh}");
        assert!(zh.contains("您订阅了“合作院校通讯”"), "{db:?}: {zh}");
        assert!(!zh.contains("Partner institutions digest"), "{db:?}: {zh}");
        let en = preview("").await.unwrap().text().await.unwrap();
        assert!(
            en.contains(FINAL_SESSION_EN) && !has_cjk(&en),
            "{db:?}: {en}"
        );
        let ayesha_in_zh = preview("&subscriber=ayesha.khan@ntu-pk.example.edu&language=zh-Hans")
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            ayesha_in_zh.contains("Ayesha Khan，您好！"),
            "{ayesha_in_zh}"
        );
        assert!(
            ayesha_in_zh.contains("（卡拉奇时间，UTC+05:00）"),
            "{ayesha_in_zh}"
        );
        let bad = preview("&language=zh_CN").await.unwrap();
        assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let problem: Value = bad.json().await.unwrap();
        assert_eq!(problem["errors"][0]["field"], "language", "{problem}");

        // The list page: a tab per language its readers read, with how many.
        let unsigned = app
            .get("/admin/lists/partners?period=2023-W45&language=zh")
            .send()
            .await
            .unwrap();
        assert_ne!(
            unsigned.status(),
            StatusCode::OK,
            "admin pages need a session"
        );
        add_user(&app, "alice", Role::Admin).await;
        let b = sign_in(&app, "alice").await;
        let (status, page) = b.page("/admin/lists/partners?period=2023-W45").await;
        assert_eq!(status, StatusCode::OK);
        for tab in ["en (6)", "zh (2)", "fr (1)"] {
            assert!(page.contains(tab), "{db:?}: {tab} in {page}");
        }
        assert!(page.contains("Partner institutions digest: 6–12 November 2023"));
        let (_, page) = b
            .page("/admin/lists/partners?period=2023-W45&language=zh")
            .await;
        assert!(
            page.contains("<strong aria-current=\"page\">zh (2)</strong>"),
            "{page}"
        );
        assert!(page.contains("合作院校通讯：2023年第45周摘要（11月6日至12日）"));
        assert!(page.contains(FINAL_SESSION_TITLE_ZH));
        assert!(page.contains(&esc(
            "/admin/lists/partners/preview?period=2023-W45&subscriber=&language=zh"
        )));
        let (_, page) = b
            .page("/admin/lists/partners?period=2023-W45&language=%3Cb%3E")
            .await;
        assert!(
            page.contains("Cannot preview: language must be a language tag"),
            "{page}"
        );
        assert!(!page.contains("<b>"), "escaped");
        let (status, frame) = b
            .page("/admin/lists/partners/preview?period=2023-W45&subscriber=&language=zh")
            .await;
        assert_eq!(status, StatusCode::OK);
        assert!(frame.contains("<html lang=\"zh\">") && frame.contains(FINAL_SESSION_TITLE_ZH));
        let (status, _) = b
            .page("/admin/lists/partners/preview?period=2023-W45&subscriber=&language=-")
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);

        // Sent: the digest's page counts its deliveries per language, each with its
        // preview, and says which languages each item is in.
        let id = send(&app, &smtp, "2023-W45", READERS).await;
        let mut page = String::new();
        for _ in 0..200 {
            page = b.page(&format!("/admin/digests/{id}")).await.1;
            if page.contains("id=\"count-pending\">0<") && page.contains("id=\"count-sending\">0<")
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let row = |language: &str, readers: u32| {
            format!(
                "<td data-label=\"Language\">{language}</td><td class=\"num\" data-label=\"Readers\">{readers}</td><td class=\"num\" data-label=\"Sent\">{readers}</td>"
            )
        };
        for (language, readers) in [("en", 6), ("zh", 2), ("fr", 1)] {
            assert!(
                page.contains(&row(language, readers)),
                "{db:?}: {language} in {page}"
            );
            let url =
                format!("/admin/lists/partners?period=2023-W45&language={language}#h-preview");
            assert!(page.contains(&format!("href=\"{}\"", esc(&url))), "{page}");
        }
        assert!(
            page.contains("· en, zh</span>"),
            "the final session's languages: {page}"
        );

        // The public page of the digest, in the site's languages (the pages' own
        // routes): the sent digest's items in each.
        for (path, title, other) in [
            (
                "/digests/partners/2023-W45",
                FINAL_SESSION_EN,
                FINAL_SESSION_TITLE_ZH,
            ),
            (
                "/zh/digests/partners/2023-W45",
                FINAL_SESSION_TITLE_ZH,
                FINAL_SESSION_EN,
            ),
        ] {
            let r = app.get(path).send().await.unwrap();
            assert_eq!(r.status(), StatusCode::OK, "{db:?} {path}");
            let page = r.text().await.unwrap();
            assert!(
                page.contains(title) && !page.contains(other),
                "{db:?} {path}: {page}"
            );
        }
    }
}
