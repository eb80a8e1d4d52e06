//! The item form's language versions over real HTTP, on SQLite and PostgreSQL, as a
//! browser without JavaScript sends them: a Chinese version written beside the
//! original, the edit page saved as it is (which keeps every version), a version
//! refused with the problem under its field, removed, and the items list's languages.

use crate::admin_pages::{Browser, add_user, sign_in};
use crate::helpers::{Db, spawn_app_with};
use newsdesk::domain::{Item, Role};
use reqwest::StatusCode;

/// The value of attribute `name` in a start tag.
fn attr<'t>(tag: &'t str, name: &str) -> Option<&'t str> {
    let at = tag.find(&format!(" {name}=\""))? + name.len() + 3;
    Some(&tag[at..at + tag[at..].find('"')?])
}

/// Text as the page escaped it, read back.
fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#x27;", "'")
        .replace("&#x60;", "`")
        .replace("&#x3D;", "=")
        .replace("&amp;", "&")
}

/// What a browser sends for the form posting to `action` when nothing is changed:
/// text inputs, text areas, ticked check boxes and the chosen options.
fn form_fields(html: &str, action: &str) -> Vec<(String, String)> {
    let start = html
        .find(&format!("<form method=\"post\" action=\"{action}\""))
        .unwrap_or_else(|| panic!("no form posting to {action}"));
    let form = &html[start..];
    let form = &form[..form.find("</form>").unwrap()];
    let mut out = Vec::new();
    let mut rest = form;
    while let Some(i) = rest.find('<') {
        rest = &rest[i..];
        let end = rest.find('>').unwrap();
        let tag = &rest[..=end];
        let after = &rest[end + 1..];
        let name = attr(tag, "name").map(str::to_owned);
        match (tag.split([' ', '>']).next().unwrap(), name) {
            ("<input", Some(name)) => match attr(tag, "type").unwrap_or("text") {
                "checkbox" | "radio" => {
                    if tag.contains(" checked") {
                        out.push((name, attr(tag, "value").unwrap_or("on").to_owned()));
                    }
                }
                "submit" | "button" => {}
                _ => out.push((name, unescape(attr(tag, "value").unwrap_or("")))),
            },
            ("<textarea", Some(name)) => {
                out.push((name, unescape(&after[..after.find("</textarea>").unwrap()])));
            }
            ("<select", Some(name)) => {
                let options = &after[..after.find("</select>").unwrap()];
                let chosen = options
                    .split("<option")
                    .skip(1)
                    .find(|o| o.split('>').next().unwrap().contains(" selected"))
                    .or_else(|| options.split("<option").nth(1))
                    .unwrap();
                let value = match attr(&format!(" {chosen}"), "value") {
                    Some(v) => v.to_owned(),
                    None => chosen[chosen.find('>').unwrap() + 1..]
                        .split('<')
                        .next()
                        .unwrap()
                        .to_owned(),
                };
                out.push((name, unescape(&value)));
            }
            _ => {}
        }
        rest = after;
    }
    out
}

/// `fields` with `changes` made (a value replaced, or added when there was none).
fn with(fields: &[(String, String)], changes: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut out = fields.to_vec();
    for (name, value) in changes {
        match out.iter_mut().find(|(n, _)| n == name) {
            Some(slot) => slot.1 = (*value).to_owned(),
            None => out.push(((*name).to_owned(), (*value).to_owned())),
        }
    }
    out
}

async fn post_fields(
    b: &Browser<'_>,
    path: &str,
    fields: &[(String, String)],
) -> reqwest::Response {
    let pairs: Vec<(&str, &str)> = fields
        .iter()
        .filter(|(n, _)| n != "csrf")
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    b.post(path, &pairs).await
}

async fn stored(b: &Browser<'_>, id: i64) -> Item {
    let app = b.app;
    app.state
        .store
        .content()
        .item_by_id(id)
        .await
        .unwrap()
        .unwrap()
}

#[tokio::test]
async fn an_item_gets_a_chinese_version_side_by_side_through_the_form() {
    for db in [Db::Sqlite, Db::Postgres] {
        let Some(app) = spawn_app_with(db, |_| {}).await else {
            continue;
        };
        app.load_demo().await;
        add_user(&app, "ed", Role::Editor).await;
        let b = sign_in(&app, "ed").await;

        let (_, html) = b.page("/admin/items/new").await;
        assert!(html.contains("Add a language version"), "{db:?}");
        assert!(html.contains("name=\"vnew_language\""));

        // Created with a Chinese version typed in the column to add one.
        let (location, html) = b
            .post_and_follow(
                "/admin/items",
                &[
                    ("title", "Closing session"),
                    ("body", "The *end*."),
                    ("language", "en"),
                    ("categories", "events"),
                    ("status", "published"),
                    ("publish_tz", "UTC"),
                    ("has_event", "on"),
                    ("event_starts_at", "2023-11-23T14:00"),
                    ("event_timezone", "Asia/Shanghai"),
                    ("event_mode", "in_person"),
                    ("event_venue", "Hall A"),
                    ("event_mode_text", "In Hall A, first floor"),
                    ("vnew_language", "zh"),
                    ("vnew_title", "闭幕式"),
                    ("vnew_summary", "最后一场"),
                    ("vnew_body", "**结束** & <script>x</script>"),
                    ("vnew_venue", "A厅"),
                    ("vnew_mode_text", "线下，一楼"),
                    ("action", "save"),
                ],
            )
            .await;
        let id: i64 = location
            .trim_start_matches("/admin/items/")
            .parse()
            .unwrap();
        let item = stored(&b, id).await;
        assert_eq!(item.languages(), ["en", "zh"], "{db:?}");
        let zh = &item.translations[0];
        assert_eq!(
            (zh.title.as_str(), zh.summary.as_str()),
            ("闭幕式", "最后一场")
        );
        assert_eq!(
            zh.body_html, "<p><strong>结束</strong> &amp; </p>\n",
            "sanitised"
        );
        assert_eq!(zh.venue.as_deref(), Some("A厅"));
        assert_eq!(zh.mode_text.as_deref(), Some("线下，一楼"));
        let event = item.event.as_ref().unwrap();
        assert_eq!(event.mode_text.as_deref(), Some("In Hall A, first floor"));

        // The edit page has the version in its own column, beside the original.
        for needle in [
            "class=\"version original\"",
            "id=\"v0_title\"",
            "value=\"闭幕式\"",
            "lang=\"zh\"",
            "Version · zh",
            "value=\"In Hall A, first floor\"",
        ] {
            assert!(
                html.contains(needle),
                "{db:?}: the edit page lacks {needle:?}"
            );
        }

        // Saved as it is, the page keeps every version and word.
        let fields = form_fields(&html, &location);
        assert!(
            fields
                .iter()
                .any(|(n, v)| n == "v0_body" && v.contains("**结束**"))
        );
        let r = post_fields(&b, &location, &with(&fields, &[("action", "save")])).await;
        assert_eq!(
            r.status(),
            StatusCode::SEE_OTHER,
            "{db:?}: {}",
            r.text().await.unwrap()
        );
        let again = stored(&b, id).await;
        assert_eq!(again.translations, item.translations, "{db:?}");
        assert_eq!(again.event, item.event);
        assert_eq!(again.published_at, item.published_at);

        // Refused: the version in the original's language, and an empty title. The
        // form comes back as typed, each problem under its version's field.
        let r = post_fields(
            &b,
            &location,
            &with(
                &fields,
                &[
                    ("v0_language", "EN"),
                    ("v0_summary", "改过的摘要"),
                    ("vnew_language", "fr"),
                    ("vnew_title", " "),
                    ("action", "save"),
                ],
            ),
        )
        .await;
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "{db:?}");
        let html = r.text().await.unwrap();
        for needle in [
            "EN version: language:",
            "fr version: title:",
            "改过的摘要",
            "id=\"v0-e-language\"",
            "id=\"vnew-e-title\"",
            "<details class=\"version add\" open>",
        ] {
            assert!(
                html.contains(needle),
                "{db:?}: the refused form lacks {needle:?}"
            );
        }
        assert_eq!(stored(&b, id).await.translations, item.translations);

        // A second version added, then the first removed, with saves.
        let r = post_fields(
            &b,
            &location,
            &with(
                &fields,
                &[
                    ("vnew_language", "fr"),
                    ("vnew_title", "Séance de clôture"),
                    ("action", "save"),
                ],
            ),
        )
        .await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        assert_eq!(stored(&b, id).await.languages(), ["en", "fr", "zh"]);
        let (_, list) = b.page("/admin/items?q=Closing+session").await;
        assert!(
            list.contains(
                "<li class=\"original\">en <span class=\"muted\">(original)</span></li><li>fr</li><li>zh</li>"
            ),
            "{db:?}: the items list shows the languages: {list}"
        );
        let (_, html) = b.page(&location).await;
        let fields = form_fields(&html, &location);
        let zh_key = fields
            .iter()
            .find(|(n, v)| n.ends_with("_language") && v == "zh")
            .map(|(n, _)| n.trim_end_matches("_language").to_owned())
            .unwrap();
        let remove = format!("{zh_key}_remove");
        let r = post_fields(
            &b,
            &location,
            &with(&fields, &[(remove.as_str(), "on"), ("action", "save")]),
        )
        .await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        let item = stored(&b, id).await;
        assert_eq!(item.languages(), ["en", "fr"], "{db:?}");
        let (_, list) = b.page("/admin/items?q=Closing+session").await;
        assert!(list.contains("<li>fr</li>") && !list.contains("<li>zh</li>"));
    }
}

#[tokio::test]
async fn another_version_is_made_the_original_through_the_form_in_one_save() {
    for db in [Db::Sqlite, Db::Postgres] {
        let Some(app) = spawn_app_with(db, |_| {}).await else {
            continue;
        };
        app.load_demo().await;
        add_user(&app, "ed", Role::Editor).await;
        let b = sign_in(&app, "ed").await;
        let (location, html) = b
            .post_and_follow(
                "/admin/items",
                &[
                    ("title", "Closing session"),
                    ("summary", "The last one"),
                    ("body", "The end."),
                    ("language", "en"),
                    ("categories", "events"),
                    ("status", "published"),
                    ("publish_tz", "UTC"),
                    ("has_event", "on"),
                    ("event_starts_at", "2023-11-23T14:00"),
                    ("event_timezone", "Asia/Shanghai"),
                    ("event_mode", "hybrid"),
                    ("event_online_url", "https://meet.example.org/closing"),
                    ("event_venue", "Hall A"),
                    ("event_mode_text", "In Hall A and online"),
                    ("vnew_language", "zh"),
                    ("vnew_title", "闭幕式"),
                    ("vnew_summary", "最后一场"),
                    ("vnew_body", "结束。"),
                    ("vnew_venue", ""),
                    ("vnew_mode_text", "A厅及线上"),
                    ("action", "save"),
                ],
            )
            .await;
        let id: i64 = location
            .trim_start_matches("/admin/items/")
            .parse()
            .unwrap();
        let before = stored(&b, id).await;
        assert!(
            html.contains(
                "<input type=\"radio\" id=\"make_original_keep\" name=\"make_original\" value=\"\" checked>"
            ),
            "{db:?}: the original stays unless another is chosen"
        );
        assert!(html.contains("id=\"v0_make_original\""), "{db:?}");
        let fields = form_fields(&html, &location);

        // Chosen and removed at once: refused, nothing changed.
        let r = post_fields(
            &b,
            &location,
            &with(
                &fields,
                &[
                    ("make_original", "v0"),
                    ("v0_remove", "on"),
                    ("action", "save"),
                ],
            ),
        )
        .await;
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "{db:?}");
        let refused = r.text().await.unwrap();
        assert!(
            refused.contains("cannot be both removed and made the original"),
            "{db:?}: {refused}"
        );
        assert!(
            refused.contains("id=\"v0_make_original\" name=\"make_original\" value=\"v0\" checked")
        );
        assert_eq!(stored(&b, id).await, before, "{db:?}");

        // Chosen: one save swaps them; the venue left empty in the Chinese version
        // ("the original's") stays the event's, the English words go with English.
        let r = post_fields(
            &b,
            &location,
            &with(&fields, &[("make_original", "v0"), ("action", "save")]),
        )
        .await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "{db:?}");
        let item = stored(&b, id).await;
        assert_eq!(item.language, "zh", "{db:?}");
        assert_eq!(
            (
                item.title.as_str(),
                item.summary.as_str(),
                item.body_markdown.as_str()
            ),
            ("闭幕式", "最后一场", "结束。")
        );
        assert_eq!(item.languages(), ["zh", "en"], "{db:?}");
        let en = &item.translations[0];
        assert_eq!(
            (en.language.as_str(), en.title.as_str(), en.summary.as_str()),
            ("en", "Closing session", "The last one")
        );
        assert_eq!(en.body_markdown, "The end.");
        assert_eq!(en.venue.as_deref(), Some("Hall A"));
        assert_eq!(en.mode_text.as_deref(), Some("In Hall A and online"));
        let event = item.event.as_ref().unwrap();
        assert_eq!(event.venue.as_deref(), Some("Hall A"), "{db:?}");
        assert_eq!(event.mode_text.as_deref(), Some("A厅及线上"));
        assert_eq!(event.starts_at, before.event.as_ref().unwrap().starts_at);
        assert_eq!(item.slug, before.slug, "the address stays");

        // The edit page now has the Chinese original first, English beside it; the
        // original's column stays chosen.
        let (_, html) = b.page(&location).await;
        assert!(html.contains("Original · zh"), "{db:?}");
        assert!(html.contains("Version · en"), "{db:?}");
        assert!(html.contains("value=\"\" checked>"), "{db:?}");
    }
}

/// The ids an admin items list links to, in order.
fn listed_ids(html: &str) -> Vec<i64> {
    html.split("<td data-label=\"Title\"><a href=\"/admin/items/")
        .skip(1)
        .map(|s| s[..s.find('"').unwrap()].parse().unwrap())
        .collect()
}

#[tokio::test]
async fn items_are_found_by_the_title_and_summary_of_any_language_version() {
    for db in [Db::Sqlite, Db::Postgres] {
        let Some(app) = spawn_app_with(db, |_| {}).await else {
            continue;
        };
        app.load_demo().await;
        add_user(&app, "ed", Role::Editor).await;
        let b = sign_in(&app, "ed").await;
        let open_day = app
            .create_item(serde_json::json!({
                "title": "Open day",
                "summary": "Visitors welcome.",
                "body": "Come and see.",
                "language": "en",
                "categories": ["news"],
                "status": "draft",
                "translations": [
                    {"language": "zh", "title": "校园开放日", "summary": "欢迎家长参观，开放日全天进行。", "body": "欢迎。"},
                    {"language": "fr", "title": "Journée portes ouvertes", "summary": "Bienvenue.", "body": "Venez."}
                ]
            }))
            .await["id"]
            .as_i64()
            .unwrap();
        let final_session = app
            .state
            .store
            .content()
            .item_by_slug(newsdesk::demo::FINAL_SESSION_SLUG)
            .await
            .unwrap()
            .expect("the demo's final session")
            .id;

        // (words, the items found): a version's title, its summary, a title in another
        // case, the demo's Chinese title as the tester typed it, and words that only a
        // version's body holds (not searched). An item whose versions all match is
        // listed once.
        let cases: [(&str, Vec<i64>); 6] = [
            ("闭幕式", vec![final_session]),
            ("校园开放日", vec![open_day]),
            ("欢迎家长", vec![open_day]),
            ("JOURNÉE PORTES", vec![open_day]),
            ("开放日", vec![open_day]),
            ("Venez", vec![]),
        ];
        for (words, expected) in cases {
            let (status, html) = b
                .page(&format!("/admin/items?q={}", urlencode(words)))
                .await;
            assert_eq!(status, StatusCode::OK, "{db:?}");
            assert_eq!(
                listed_ids(&html),
                expected,
                "{db:?}: admin list for {words:?}"
            );
            assert!(
                html.contains(&format!("{} item(s) found.", expected.len())),
                "{db:?}: the count for {words:?}"
            );
            let r = app
                .admin(
                    reqwest::Method::GET,
                    &format!("/api/v1/items?q={}", urlencode(words)),
                )
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::OK, "{db:?}");
            let list: serde_json::Value = r.json().await.unwrap();
            let ids: Vec<i64> = list["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["id"].as_i64().unwrap())
                .collect();
            assert_eq!(ids, expected, "{db:?}: API list for {words:?}");
            assert_eq!(list["total"], expected.len(), "{db:?}: {words:?}");
        }

        // Search words beyond 200 characters are refused, naming the field.
        let r = app
            .admin(
                reqwest::Method::GET,
                &format!("/api/v1/items?q={}", "a".repeat(201)),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "{db:?}");
        let problem: serde_json::Value = r.json().await.unwrap();
        assert_eq!(problem["errors"][0]["field"], "q", "{problem}");
    }
}

/// `text` as a query string value.
fn urlencode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}
