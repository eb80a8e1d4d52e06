//! The store's contract, written once and run on SQLite and PostgreSQL.

use crate::helpers::{default_now, fresh_postgres_url, note_postgres_skipped};
use chrono::{Duration, TimeZone, Utc};
use newsdesk::config::DatabaseUrl;
use newsdesk::domain::{
    Event, EventMode, ItemDraft, ItemStatus, Language, MailingList, NewCategory, Role, Slug,
    SubscriptionOutcome, Text, TimeZone as Tz, TokenPurpose, VersionDraft,
};
use newsdesk::store::NameLock;
use newsdesk::store::{FeedQuery, ItemFilter, ItemHtml, Store, StoreError};

async fn sqlite_store() -> (Store, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let url =
        DatabaseUrl::parse(&format!("sqlite://{}", dir.path().join("s.db").display())).unwrap();
    let store = Store::connect(&url, 4).await.unwrap();
    store.migrate().await.unwrap();
    (store, dir)
}

async fn postgres_store() -> Option<Store> {
    let Some(url) = fresh_postgres_url().await else {
        note_postgres_skipped();
        return None;
    };
    let store = Store::connect(&DatabaseUrl::parse(&url).unwrap(), 4)
        .await
        .unwrap();
    store.migrate().await.unwrap();
    Some(store)
}

macro_rules! contract {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    let (store, _dir) = super::sqlite_store().await;
                    super::$name(store).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    if let Some(store) = super::postgres_store().await {
                        super::$name(store).await;
                    }
                }
            )*
        }
    };
}

contract!(
    migrations_can_run_twice,
    categories_form_a_tree,
    an_item_reads_back_as_written,
    feeds_hold_only_visible_items_of_the_subtree,
    a_taken_slug_is_a_conflict_and_writes_nothing,
    an_update_replaces_links_and_reports_old_and_new_categories,
    deleting_moves_the_feed_change_time_and_the_content_version,
    non_empty_categories_are_not_deleted,
    api_tokens_are_checked_by_hash,
    a_form_subscription_is_confirmed_and_left_by_token,
    an_import_twice_changes_nothing_the_second_time,
    subscribers_are_filtered_and_searched,
    users_sign_in_lock_out_and_keep_one_admin,
    sessions_are_found_by_hash_and_end,
    items_are_searched_and_filtered_by_publication,
    the_outbox_leases_counts_releases_and_links_deliveries,
    a_row_handed_to_the_mail_server_is_held_for_its_worker_past_the_lease,
    a_conditional_item_write_fails_only_after_a_write_to_that_item,
);

use newsdesk::domain::{
    Email, JoinedVia, ListDraft, MembershipStatus, OptIn, SubscriberStatus, Visibility,
};
use newsdesk::store::{ImportRow, ImportTerms, SubscriberFilter};

async fn partners_list(store: &Store) -> MailingList {
    tree(store).await;
    store
        .lists()
        .create(
            &ListDraft {
                slug: slug("partners"),
                name: text("Partners"),
                names: Default::default(),
                description: text(""),
                categories: vec![slug("news-events")],
                opt_in: OptIn::Double,
                visibility: Visibility::Public,
                schedule: Default::default(),
            },
            default_now(),
        )
        .await
        .unwrap()
}

/// Mei's request from the public form (the form's rule and a double opt-in list give
/// a new address no consent of its own).
fn form_request(email: &Email, ip: Option<&str>) -> newsdesk::domain::SubscriptionRequest {
    newsdesk::domain::SubscriptionRequest {
        email: email.clone(),
        name: newsdesk::domain::Text::parse("Mei", 200, false, false).unwrap(),
        language: newsdesk::domain::Language::parse("en").unwrap(),
        ip: ip.map(str::to_owned),
    }
}

async fn a_form_subscription_is_confirmed_and_left_by_token(store: Store) {
    let list = partners_list(&store).await;
    assert_eq!(list.categories, ["news-events"]);
    let email = Email::parse("Mei@Example.org").unwrap();
    let now = default_now();
    let outcome = store
        .lists()
        .request_subscription(
            &form_request(&email, Some("192.0.2.7")),
            &list,
            None,
            now,
            newsdesk::services::subscriptions::public::form_admission(&list),
        )
        .await
        .unwrap();
    let SubscriptionOutcome::NeedsConfirmation { subscriber_id } = outcome else {
        panic!("{outcome:?}")
    };
    // Asking again is the same, and does not make a second subscriber.
    let again = store
        .lists()
        .request_subscription(
            &form_request(&email, Some("192.0.2.7")),
            &list,
            None,
            now,
            newsdesk::services::subscriptions::public::form_admission(&list),
        )
        .await
        .unwrap();
    assert_eq!(again, outcome);
    store
        .tokens()
        .save(
            "confirm-hash",
            subscriber_id,
            TokenPurpose::Confirm,
            Some(list.id),
            Some(now + Duration::days(7)),
            now,
        )
        .await
        .unwrap();
    store
        .tokens()
        .save(
            "leave-hash",
            subscriber_id,
            TokenPurpose::Unsubscribe,
            Some(list.id),
            None,
            now,
        )
        .await
        .unwrap();
    assert!(
        store
            .tokens()
            .confirm_subscription("wrong", now)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        store
            .tokens()
            .confirm_subscription("confirm-hash", now)
            .await
            .unwrap(),
        Some((subscriber_id, Some(list.id)))
    );
    assert!(
        store
            .tokens()
            .confirm_subscription("confirm-hash", now)
            .await
            .unwrap()
            .is_none(),
        "used once"
    );
    let s = store
        .people()
        .subscriber_by_email("mei@example.org")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (s.status, s.consent_ip.as_deref()),
        (SubscriberStatus::Confirmed, Some("192.0.2.7"))
    );
    assert_eq!(
        store
            .lists()
            .membership_status(list.id, s.id)
            .await
            .unwrap(),
        Some(MembershipStatus::Confirmed)
    );
    let confirmed = store
        .lists()
        .request_subscription(
            &form_request(&email, None),
            &list,
            None,
            now,
            newsdesk::services::subscriptions::public::form_admission(&list),
        )
        .await
        .unwrap();
    assert_eq!(confirmed, SubscriptionOutcome::NothingToDo);
    for _ in 0..2 {
        assert!(
            store
                .tokens()
                .unsubscribe("leave-hash", now)
                .await
                .unwrap()
                .is_some()
        );
    }
    assert_eq!(
        store
            .lists()
            .membership_status(list.id, s.id)
            .await
            .unwrap(),
        Some(MembershipStatus::Unsubscribed)
    );
    assert!(
        store
            .tokens()
            .unsubscribe("confirm-hash", now)
            .await
            .unwrap()
            .is_none(),
        "tokens are single-purpose"
    );
    let counts = store.lists().counts(list.id).await.unwrap();
    assert_eq!(counts[&MembershipStatus::Unsubscribed], 1);
}

fn import_row(line: u64, email: &str, name: &str) -> ImportRow {
    ImportRow {
        line,
        email: Email::parse(email).unwrap(),
        name: name.into(),
        partner_id: None,
        language: "en".into(),
        attributes: "{}".into(),
    }
}

async fn an_import_twice_changes_nothing_the_second_time(store: Store) {
    let list = partners_list(&store).await;
    let terms = ImportTerms {
        list_id: Some(list.id),
        member_status: MembershipStatus::Pending,
        subscriber_status: SubscriberStatus::Pending,
        consent_source: None,
        via: JoinedVia::Import,
    };
    let rows: Vec<ImportRow> = (0..1200)
        .map(|n| import_row(n + 2, &format!("p{n}@example.org"), "P"))
        .collect();
    let mut session = store
        .import()
        .begin(terms.clone(), default_now())
        .await
        .unwrap();
    let mut doubled = rows.clone();
    doubled.push(import_row(9999, "P7@example.org", "again"));
    let (first, repeated) = session.apply(&doubled).await.unwrap();
    assert_eq!(
        repeated.iter().map(|r| r.line).collect::<Vec<_>>(),
        [9999],
        "a repeat in the batch"
    );
    session.commit().await.unwrap();
    assert_eq!((first.created, first.added_to_list), (1200, 1200));
    let mut rows2 = rows.clone();
    rows2[5].name = "Changed".into();
    let mut session = store
        .import()
        .begin(terms.clone(), default_now())
        .await
        .unwrap();
    let (second, repeated) = session.apply(&rows2).await.unwrap();
    assert!(repeated.is_empty(), "a new import starts afresh");
    let (_, repeated) = session.apply(&rows2[..2]).await.unwrap();
    assert_eq!(repeated.len(), 2, "repeats of an earlier batch");
    session.commit().await.unwrap();
    assert_eq!(
        (
            second.created,
            second.updated,
            second.unchanged,
            second.added_to_list
        ),
        (0, 1, 1199, 0)
    );
    // A rolled-back session leaves nothing.
    let mut session = store.import().begin(terms, default_now()).await.unwrap();
    session
        .apply(&[import_row(9, "ghost@example.org", "G")])
        .await
        .unwrap();
    session.rollback().await.unwrap();
    assert!(
        store
            .people()
            .subscriber_by_email("ghost@example.org")
            .await
            .unwrap()
            .is_none()
    );
}

async fn subscribers_are_filtered_and_searched(store: Store) {
    let list = partners_list(&store).await;
    let terms = ImportTerms {
        list_id: Some(list.id),
        member_status: MembershipStatus::Confirmed,
        subscriber_status: SubscriberStatus::Confirmed,
        consent_source: Some("test".into()),
        via: JoinedVia::Import,
    };
    let mut session = store.import().begin(terms, default_now()).await.unwrap();
    session
        .apply(&[
            import_row(2, "wei.ling@tp-sg.example.edu", "Wei Ling Tan"),
            import_row(3, "sokha@ppi-kh.example.edu", "Sokha Chan"),
            import_row(4, "odd_name%@example.org", "Percent"),
        ])
        .await
        .unwrap();
    session.commit().await.unwrap();
    let find = |search: &str| SubscriberFilter {
        search: Some(search.into()),
        limit: 10,
        ..Default::default()
    };
    let emails = |r: (Vec<newsdesk::domain::Subscriber>, u64)| {
        r.0.into_iter().map(|s| s.email).collect::<Vec<_>>()
    };
    assert_eq!(
        emails(store.people().subscribers(&find("WEI LING")).await.unwrap()),
        ["wei.ling@tp-sg.example.edu"]
    );
    assert_eq!(
        emails(store.people().subscribers(&find("_name%")).await.unwrap()),
        ["odd_name%@example.org"]
    );
    assert_eq!(
        store.people().subscribers(&find("%")).await.unwrap().1,
        1,
        "% is literal"
    );
    let in_list = SubscriberFilter {
        list: Some(list.id),
        status: Some(SubscriberStatus::Confirmed),
        limit: 2,
        ..Default::default()
    };
    let (page, total) = store.people().subscribers(&in_list).await.unwrap();
    assert_eq!((page.len(), total), (2, 3));
    let after = store
        .people()
        .subscribers_after(Some(list.id), 0, 10, false)
        .await
        .unwrap();
    assert_eq!(after.len(), 3);
    // Recipients only: a left member and a blocked address drop out.
    let first = after[0].id;
    store
        .lists()
        .set_membership(
            list.id,
            first,
            MembershipStatus::Unsubscribed,
            "test",
            default_now(),
        )
        .await
        .unwrap();
    store
        .people()
        .set_subscriber_status(
            after[1].id,
            SubscriberStatus::Blocked,
            "test",
            default_now(),
        )
        .await
        .unwrap();
    let recipients = store
        .people()
        .subscribers_after(Some(list.id), 0, 10, true)
        .await
        .unwrap();
    assert_eq!(
        recipients.iter().map(|s| s.id).collect::<Vec<_>>(),
        [after[2].id]
    );
    assert_eq!(
        store
            .people()
            .subscribers_after(Some(list.id), 0, 10, false)
            .await
            .unwrap()
            .len(),
        3
    );
}

fn slug(s: &str) -> Slug {
    Slug::parse(s).unwrap()
}

fn text(s: &str) -> Text {
    Text::parse(s, 200_000, false, true).unwrap()
}

/// The demo tree, created a week before the test clock's now.
async fn tree(store: &Store) {
    for (s, parent) in [
        ("news-events", None),
        ("news", Some("news-events")),
        ("events", Some("news-events")),
        ("other", None),
    ] {
        store
            .content()
            .create_category(
                &NewCategory {
                    slug: slug(s),
                    name: text(&s.to_uppercase()),
                    names: Default::default(),
                    description: text(""),
                    parent: parent.map(slug),
                },
                default_now() - Duration::days(7),
            )
            .await
            .unwrap();
    }
}

fn draft(
    s: &str,
    categories: &[&str],
    status: ItemStatus,
    published_at: Option<chrono::DateTime<Utc>>,
) -> ItemDraft {
    ItemDraft {
        slug: slug(s),
        slug_from_title: false,
        title: text(&format!("Title of {s} <&> 研讨会")),
        summary: text("Summary"),
        body_markdown: text("Body *md*"),
        author: text("Pan Liucheng"),
        org_unit: text("Asia-Africa Center"),
        language: Language::parse("en").unwrap(),
        categories: categories.iter().map(|c| slug(c)).collect(),
        tags: vec![text("b-tag"), text("a-tag")],
        status,
        published_at,
        event: None,
        translations: Vec::new(),
    }
}

async fn migrations_can_run_twice(store: Store) {
    store.migrate().await.unwrap();
    store.ping().await.unwrap();
}

async fn categories_form_a_tree(store: Store) {
    tree(&store).await;
    let all = store.content().categories().await.unwrap();
    let shape: Vec<(&str, Option<&str>)> = all
        .iter()
        .map(|c| (c.slug.as_str(), c.parent.as_deref()))
        .collect();
    assert_eq!(
        shape,
        [
            ("news-events", None),
            ("news", Some("news-events")),
            ("events", Some("news-events")),
            ("other", None)
        ]
    );
    let news = store.content().category("news").await.unwrap().unwrap();
    assert_eq!(news.name, "NEWS");
    assert!(store.content().category("missing").await.unwrap().is_none());
    let err = store
        .content()
        .create_category(
            &NewCategory {
                slug: slug("x"),
                name: text("X"),
                names: Default::default(),
                description: text(""),
                parent: Some(slug("missing")),
            },
            default_now(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Invalid { ref field, .. } if field == "parent"),
        "{err:?}"
    );
}

async fn an_item_reads_back_as_written(store: Store) {
    tree(&store).await;
    let mut d = draft(
        "seminar",
        &["events", "news"],
        ItemStatus::Published,
        Some(default_now()),
    );
    d.event = Some(Event {
        starts_at: Utc.with_ymd_and_hms(2023, 11, 9, 6, 0, 0).unwrap(),
        ends_at: Some(Utc.with_ymd_and_hms(2023, 11, 9, 9, 30, 0).unwrap()),
        timezone: Tz::parse("Asia/Shanghai").unwrap(),
        venue: Some("Liuxiandong Campus".into()),
        online_url: Some("https://meet.example.org/x".into()),
        mode: EventMode::Hybrid,
        mode_text: Some("Hybrid: Hall A and online".into()),
    });
    d.translations = vec![VersionDraft {
        language: Language::parse("zh").unwrap(),
        title: text("国际研讨会"),
        summary: text("摘要"),
        body_markdown: text("正文"),
        venue: Some(text("留仙洞校区")),
        mode_text: None,
    }];
    let html = ItemHtml {
        original: "<p>Body <em>md</em></p>".into(),
        translations: vec!["<p>正文</p>".into()],
    };
    let written = store
        .content()
        .create_item(&d, &html, default_now())
        .await
        .unwrap();
    let mut touched = written.touched_categories.clone();
    touched.sort();
    assert_eq!(touched, ["events", "news", "news-events"]);
    let item = store
        .content()
        .item_by_slug("seminar")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(item, written.value);
    assert_eq!(item.title, "Title of seminar <&> 研讨会");
    assert_eq!(item.body_html, "<p>Body <em>md</em></p>");
    assert_eq!(item.tags, ["b-tag", "a-tag"], "tags keep their order");
    let cats: Vec<&str> = item.categories.iter().map(|c| c.slug.as_str()).collect();
    assert_eq!(cats, ["news", "events"]);
    assert_eq!(item.event, d.event);
    assert_eq!(item.published_at, Some(default_now()));
    assert_eq!(item.languages(), ["en", "zh"]);
    let zh = item.localized("zh-Hans");
    assert_eq!(zh.title, "国际研讨会");
    assert_eq!(zh.body_html, "<p>正文</p>");
    assert_eq!(zh.language, "zh");
    let event = zh.event.as_ref().unwrap();
    assert_eq!(event.venue.as_deref(), Some("留仙洞校区"));
    assert_eq!(
        event.mode_text, None,
        "the English mode text is not carried over"
    );
    assert_eq!(
        item.localized("fr").title,
        item.title,
        "no version: the original"
    );
    assert_eq!(
        store.content().item_by_id(item.id).await.unwrap(),
        Some(item.clone())
    );
    // A full replacement replaces the versions too; deleting the item takes them along.
    let mut d2 = d.clone();
    d2.translations.clear();
    let updated = store
        .content()
        .update_item(item.id, &d2, &ItemHtml::from("<p>x</p>"), default_now())
        .await
        .unwrap();
    assert!(updated.value.translations.is_empty());
    let again = store
        .content()
        .update_item(item.id, &d, &html, default_now())
        .await
        .unwrap();
    assert_eq!(again.value.translations.len(), 1);
    store
        .content()
        .delete_item(item.id, default_now())
        .await
        .unwrap();
    assert_eq!(store.content().item_by_id(item.id).await.unwrap(), None);
}

async fn feeds_hold_only_visible_items_of_the_subtree(store: Store) {
    tree(&store).await;
    let now = default_now();
    for (n, (s, cats, status, at)) in [
        (
            "old-news",
            &["news"][..],
            ItemStatus::Published,
            now - Duration::days(3),
        ),
        (
            "event",
            &["events"],
            ItemStatus::Published,
            now - Duration::days(2),
        ),
        (
            "draft",
            &["news"],
            ItemStatus::Draft,
            now - Duration::days(1),
        ),
        (
            "future",
            &["news"],
            ItemStatus::Published,
            now + Duration::hours(1),
        ),
        (
            "elsewhere",
            &["other"],
            ItemStatus::Published,
            now - Duration::days(1),
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let mut d = draft(s, cats, status, Some(at));
        if n == 1 {
            d.event = Some(Event {
                starts_at: now,
                ends_at: None,
                timezone: Tz::default(),
                venue: Some("Hall".into()),
                online_url: None,
                mode: EventMode::InPerson,
                mode_text: None,
            });
        }
        store
            .content()
            .create_item(&d, &ItemHtml::from(""), now)
            .await
            .unwrap();
    }
    let slugs = |page: newsdesk::store::ItemPage| {
        page.items.into_iter().map(|i| i.slug).collect::<Vec<_>>()
    };
    let q = |category, events_only, limit, offset| FeedQuery {
        category,
        events_only,
        now,
        limit,
        offset,
    };
    let page = store
        .content()
        .feed_items(&q(Some("news-events"), false, 10, 0))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(page.total, 2);
    assert_eq!(slugs(page), ["event", "old-news"]);
    let all = store
        .content()
        .feed_items(&q(None, false, 10, 0))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(slugs(all), ["elsewhere", "event", "old-news"]);
    let paged = store
        .content()
        .feed_items(&q(None, false, 1, 1))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((paged.total, slugs(paged)), (3, vec!["event".to_owned()]));
    let events = store
        .content()
        .feed_items(&q(Some("news-events"), true, 10, 0))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(slugs(events), ["event"]);
    assert!(
        store
            .content()
            .feed_items(&q(Some("missing"), false, 10, 0))
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        store.content().next_publication_after(now).await.unwrap(),
        Some(now + Duration::hours(1))
    );
    let later = FeedQuery {
        now: now + Duration::hours(1),
        ..q(Some("news"), false, 10, 0)
    };
    assert_eq!(
        slugs(store.content().feed_items(&later).await.unwrap().unwrap()),
        ["future", "old-news"]
    );
    // Admin lists see drafts.
    let admin = store
        .content()
        .items(&ItemFilter {
            category: Some("news".into()),
            status: None,
            search: None,
            published_within: None,
            limit: 10,
            offset: 0,
        })
        .await
        .unwrap();
    assert_eq!(admin.total, 3);
    let drafts = store
        .content()
        .items(&ItemFilter {
            category: None,
            status: Some(ItemStatus::Draft),
            search: None,
            published_within: None,
            limit: 10,
            offset: 0,
        })
        .await
        .unwrap();
    assert_eq!(slugs(drafts), ["draft"]);
}

async fn a_taken_slug_is_a_conflict_and_writes_nothing(store: Store) {
    tree(&store).await;
    store
        .content()
        .create_item(
            &draft("same", &["news"], ItemStatus::Draft, None),
            &ItemHtml::from(""),
            default_now(),
        )
        .await
        .unwrap();
    let version = store.content().version().await.unwrap();
    let err = store
        .content()
        .create_item(
            &draft("same", &["events"], ItemStatus::Draft, None),
            &ItemHtml::from(""),
            default_now(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Conflict { ref field, .. } if field == "slug"),
        "{err:?}"
    );
    let err = store
        .content()
        .create_item(
            &draft("new-one", &["events", "missing"], ItemStatus::Draft, None),
            &ItemHtml::from(""),
            default_now(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Invalid { ref field, .. } if field == "categories[1]"),
        "{err:?}"
    );
    assert!(
        store
            .content()
            .item_by_slug("new-one")
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        store.content().version().await.unwrap(),
        version,
        "nothing half-written"
    );
}

async fn an_update_replaces_links_and_reports_old_and_new_categories(store: Store) {
    tree(&store).await;
    let item = store
        .content()
        .create_item(
            &draft(
                "moving",
                &["news"],
                ItemStatus::Published,
                Some(default_now()),
            ),
            &ItemHtml::from(""),
            default_now(),
        )
        .await
        .unwrap()
        .value;
    let mut d = draft("moved", &["other"], ItemStatus::Published, None);
    d.tags = vec![text("only")];
    let later = default_now() + Duration::minutes(5);
    let written = store
        .content()
        .update_item(item.id, &d, &ItemHtml::from("<p>new</p>"), later)
        .await
        .unwrap();
    assert_eq!(written.touched_categories, ["news", "news-events", "other"]);
    let v = written.value;
    assert_eq!(
        (v.id, v.slug.as_str(), v.tags.as_slice()),
        (item.id, "moved", &["only".to_owned()][..])
    );
    assert_eq!(
        v.published_at,
        Some(default_now()),
        "an update keeps the publication time"
    );
    assert_eq!(v.updated_at, later);
    assert_eq!(v.created_at, item.created_at);
    let err = store
        .content()
        .update_item(9999, &d, &ItemHtml::from(""), later)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)));
}

async fn deleting_moves_the_feed_change_time_and_the_content_version(store: Store) {
    tree(&store).await;
    let t0 = default_now() - Duration::days(1);
    let item = store
        .content()
        .create_item(
            &draft("gone", &["news"], ItemStatus::Published, Some(t0)),
            &ItemHtml::from(""),
            t0,
        )
        .await
        .unwrap()
        .value;
    let version = store.content().version().await.unwrap();
    assert_eq!(
        store
            .content()
            .feed_changed_at(Some("news"), default_now())
            .await
            .unwrap(),
        t0
    );
    let t1 = default_now();
    let written = store.content().delete_item(item.id, t1).await.unwrap();
    assert_eq!(written.touched_categories, ["news", "news-events"]);
    assert_eq!(
        store
            .content()
            .feed_changed_at(Some("news"), t1)
            .await
            .unwrap(),
        t1
    );
    assert_eq!(
        store
            .content()
            .feed_changed_at(Some("news-events"), t1)
            .await
            .unwrap(),
        t1
    );
    let created = default_now() - Duration::days(7);
    assert_eq!(
        store
            .content()
            .feed_changed_at(Some("events"), t1)
            .await
            .unwrap(),
        created,
        "siblings keep their time"
    );
    assert!(store.content().version().await.unwrap() > version);
    assert!(matches!(
        store.content().delete_item(item.id, t1).await.unwrap_err(),
        StoreError::NotFound(_)
    ));
}

async fn non_empty_categories_are_not_deleted(store: Store) {
    tree(&store).await;
    store
        .content()
        .create_item(
            &draft("a", &["news"], ItemStatus::Draft, None),
            &ItemHtml::from(""),
            default_now(),
        )
        .await
        .unwrap();
    let err = store
        .content()
        .delete_category("news-events", default_now())
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Conflict { ref message, .. } if message.contains("events, news")),
        "{err:?}"
    );
    let err = store
        .content()
        .delete_category("news", default_now())
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Conflict { ref message, .. } if message.contains("1 item")),
        "{err:?}"
    );
    store
        .content()
        .delete_category("other", default_now())
        .await
        .unwrap();
    assert!(store.content().category("other").await.unwrap().is_none());
    assert!(matches!(
        store
            .content()
            .delete_category("other", default_now())
            .await
            .unwrap_err(),
        StoreError::NotFound(_)
    ));
}

async fn api_tokens_are_checked_by_hash(store: Store) {
    store
        .users()
        .ensure_api_token("t", "hash-1", default_now())
        .await
        .unwrap();
    store
        .users()
        .ensure_api_token("t again", "hash-1", default_now())
        .await
        .unwrap();
    assert!(
        store
            .users()
            .api_token_is_valid("hash-1", default_now())
            .await
            .unwrap()
    );
    assert!(
        !store
            .users()
            .api_token_is_valid("hash-2", default_now())
            .await
            .unwrap()
    );
    assert!(store.users().revoke_api_token("hash-1").await.unwrap());
    assert!(
        !store
            .users()
            .api_token_is_valid("hash-1", default_now())
            .await
            .unwrap()
    );
}

async fn users_sign_in_lock_out_and_keep_one_admin(store: Store) {
    let now = default_now();
    let alice = store
        .users()
        .create("Alice", "hash-a", Role::Admin, now)
        .await
        .unwrap();
    // Names are unique whatever their case, and found whatever the case typed.
    let taken = store.users().create("alice", "x", Role::Editor, now).await;
    assert!(
        matches!(taken, Err(StoreError::Conflict { .. })),
        "{taken:?}"
    );
    assert_eq!(
        store.users().by_name("ALICE").await.unwrap().unwrap().id,
        alice.id
    );
    assert!(store.users().by_name("nobody").await.unwrap().is_none());

    // Attempts are counted before the password is checked, per name (known or not),
    // on the database's clock: the fifth in a row locks at once for 15 minutes, and
    // while locked nothing more is counted.
    for name in ["alice", "nobody"] {
        let attempt = || store.limits().claim_sign_in(name, 5, 15 * 60);
        for _ in 0..4 {
            assert_eq!(attempt().await.unwrap(), NameLock::Open);
        }
        assert_eq!(attempt().await.unwrap(), NameLock::LockedNow(15 * 60));
        match attempt().await.unwrap() {
            NameLock::Locked(left) => assert!((15 * 60 - 2..=15 * 60).contains(&left)),
            other => panic!("{other:?}"),
        }
    }
    let user = store.users().by_id(alice.id).await.unwrap().unwrap();
    assert_eq!(user.failed_sign_ins, 5);
    let db_now = store.limits().db_now().await.unwrap();
    let until = user.locked_until.unwrap().timestamp();
    assert!((db_now + 15 * 60 - 2..=db_now + 15 * 60).contains(&until));

    // Budgets: at most `max` a window, and a least gap between hits when asked.
    let two = newsdesk::store::Budget::per_window(2, 3600);
    assert!(store.limits().take("t", "k", two).await.unwrap());
    assert!(store.limits().take("t", "k", two).await.unwrap());
    assert!(!store.limits().take("t", "k", two).await.unwrap());
    assert!(store.limits().take("t", "other", two).await.unwrap());
    assert_eq!(store.limits().hits("t", "k").await.unwrap(), 2);
    let gap = newsdesk::store::Budget {
        max: 5,
        window_secs: 3600,
        min_gap_secs: 600,
    };
    assert!(store.limits().take("gap", "k", gap).await.unwrap());
    assert!(!store.limits().take("gap", "k", gap).await.unwrap());
    assert_eq!(store.limits().hits("gap", "k").await.unwrap(), 1);
    // A window that has ended counts nothing and is pruned.
    let brief = newsdesk::store::Budget::per_window(1, 0);
    assert!(store.limits().take("brief", "k", brief).await.unwrap());
    assert_eq!(store.limits().hits("brief", "k").await.unwrap(), 0);
    // (A take prunes now and then by itself, so the row may be gone already.)
    store.limits().prune().await.unwrap();
    assert_eq!(
        store.limits().prune().await.unwrap(),
        0,
        "nothing expired is left"
    );

    // A job done once: one claim wins, a live lease keeps others out, done is done.
    assert!(store.limits().claim_once("job", 60).await.unwrap());
    assert!(!store.limits().claim_once("job", 60).await.unwrap());
    assert!(!store.limits().once_done("job").await.unwrap());
    store.limits().finish_once("job", false).await.unwrap();
    assert!(store.limits().claim_once("job", 60).await.unwrap());
    store.limits().finish_once("job", true).await.unwrap();
    assert!(store.limits().once_done("job").await.unwrap());
    assert!(!store.limits().claim_once("job", 0).await.unwrap());

    // A new password lifts the lock.
    store
        .users()
        .set_password(alice.id, "hash-b", now)
        .await
        .unwrap();
    let user = store.users().by_id(alice.id).await.unwrap().unwrap();
    assert_eq!((user.failed_sign_ins, user.locked_until), (0, None));
    assert_eq!(user.password_hash, "hash-b");

    // The last enabled admin can neither be demoted nor disabled.
    let refused = store
        .users()
        .update(alice.id, Role::Editor, false, now)
        .await;
    assert!(
        matches!(refused, Err(StoreError::Conflict { .. })),
        "{refused:?}"
    );
    let refused = store.users().update(alice.id, Role::Admin, true, now).await;
    assert!(
        matches!(refused, Err(StoreError::Conflict { .. })),
        "{refused:?}"
    );
    let bob = store
        .users()
        .create("bob", "h", Role::Admin, now)
        .await
        .unwrap();
    let alice = store
        .users()
        .update(alice.id, Role::Editor, true, now)
        .await
        .unwrap();
    assert_eq!((alice.role, alice.disabled), (Role::Editor, true));
    let names: Vec<String> = store
        .users()
        .all()
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.name)
        .collect();
    assert_eq!(names, ["Alice", "bob"]);
    assert_eq!(bob.role, Role::Admin);
}

async fn sessions_are_found_by_hash_and_end(store: Store) {
    let now = default_now();
    let user = store
        .users()
        .create("ed", "h", Role::Editor, now)
        .await
        .unwrap();
    store
        .users()
        .start_session(user.id, "s1", "csrf1", None, now, now + Duration::hours(12))
        .await
        .unwrap();
    let s = store.users().session("s1", now).await.unwrap().unwrap();
    assert_eq!((s.user.id, s.csrf_token.as_str()), (user.id, "csrf1"));
    assert_eq!(s.flash, None);
    assert!(store.users().session("s2", now).await.unwrap().is_none());
    // Expired sessions are not found.
    assert!(
        store
            .users()
            .session("s1", now + Duration::hours(13))
            .await
            .unwrap()
            .is_none()
    );
    // A message for the next page, then cleared.
    store
        .users()
        .set_flash("s1", Some(("ok", "Saved.")))
        .await
        .unwrap();
    let s = store.users().session("s1", now).await.unwrap().unwrap();
    assert_eq!(s.flash, Some(("ok".to_owned(), "Saved.".to_owned())));
    store.users().set_flash("s1", None).await.unwrap();
    assert_eq!(
        store
            .users()
            .session("s1", now)
            .await
            .unwrap()
            .unwrap()
            .flash,
        None
    );
    // Touching moves the expiry on.
    store
        .users()
        .touch_session("s1", now + Duration::hours(11), now + Duration::hours(23))
        .await
        .unwrap();
    assert!(
        store
            .users()
            .session("s1", now + Duration::hours(20))
            .await
            .unwrap()
            .is_some()
    );
    // A sign-in that replaces s1 ends it; a new password ends every session.
    store
        .users()
        .start_session(
            user.id,
            "s2",
            "csrf2",
            Some("s1"),
            now,
            now + Duration::hours(12),
        )
        .await
        .unwrap();
    assert!(store.users().session("s1", now).await.unwrap().is_none());
    assert!(store.users().session("s2", now).await.unwrap().is_some());
    store
        .users()
        .start_session(user.id, "s3", "csrf3", None, now, now + Duration::hours(12))
        .await
        .unwrap();
    store
        .users()
        .set_password(user.id, "h2", now)
        .await
        .unwrap();
    assert!(store.users().session("s2", now).await.unwrap().is_none());
    assert!(store.users().session("s3", now).await.unwrap().is_none());
    store
        .users()
        .start_session(user.id, "s4", "csrf4", None, now, now + Duration::hours(12))
        .await
        .unwrap();
    store.users().end_session("s4").await.unwrap();
    assert!(store.users().session("s4", now).await.unwrap().is_none());
}

async fn items_are_searched_and_filtered_by_publication(store: Store) {
    tree(&store).await;
    let now = default_now();
    let mut seminar = draft(
        "seminar",
        &["news"],
        ItemStatus::Published,
        Some(now - Duration::days(2)),
    );
    seminar.title = text("International Seminar: 100% of partners, 9 November");
    store
        .content()
        .create_item(&seminar, &ItemHtml::from("<p>x</p>"), now)
        .await
        .unwrap();
    let mut old = draft(
        "old-news",
        &["news"],
        ItemStatus::Published,
        Some(now - Duration::days(30)),
    );
    old.title = text("Old news about a seminar");
    store
        .content()
        .create_item(&old, &ItemHtml::from("<p>x</p>"), now)
        .await
        .unwrap();
    let mut later = draft(
        "later",
        &["news"],
        ItemStatus::Published,
        Some(now + Duration::days(1)),
    );
    later.title = text("A seminar not out yet");
    store
        .content()
        .create_item(&later, &ItemHtml::from("<p>x</p>"), now)
        .await
        .unwrap();
    let search = |q: &str, since: Option<chrono::DateTime<Utc>>| ItemFilter {
        search: Some(q.to_owned()),
        published_within: since.map(|s| (s, now)),
        limit: 10,
        ..Default::default()
    };
    let slugs_of = |page: newsdesk::store::ItemPage| {
        page.items.into_iter().map(|i| i.slug).collect::<Vec<_>>()
    };
    let found = store
        .content()
        .items(&search("SEMINAR", None))
        .await
        .unwrap();
    assert_eq!(found.total, 3);
    let found = store
        .content()
        .items(&search("seminar", Some(now - Duration::days(7))))
        .await
        .unwrap();
    assert_eq!(slugs_of(found), ["seminar"]);
    // LIKE's wildcards are matched as they are.
    let found = store.content().items(&search("100%", None)).await.unwrap();
    assert_eq!(slugs_of(found), ["seminar"]);
    let found = store.content().items(&search("_", None)).await.unwrap();
    assert_eq!(found.total, 0);
    // Published this week means visible now: not scheduled for later.
    let found = store
        .content()
        .items(&search("", Some(now - Duration::days(7))))
        .await
        .unwrap();
    assert_eq!(slugs_of(found), ["seminar"]);
}

/// The partners list with `count` confirmed readers (`{prefix}0@example.org`, ...,
/// named after the prefix's upper case) and its 2023-W45 digest, built: one pending
/// delivery per reader.
async fn built_digest(
    store: &Store,
    prefix: &str,
    count: u64,
) -> (MailingList, newsdesk::domain::Digest) {
    use newsdesk::domain::{DigestTrigger, DigestWindow, Selection};
    use newsdesk::store::Created;
    let list = partners_list(store).await;
    let now = default_now();
    let terms = ImportTerms {
        list_id: Some(list.id),
        member_status: MembershipStatus::Confirmed,
        subscriber_status: SubscriberStatus::Confirmed,
        consent_source: Some("test".into()),
        via: JoinedVia::Import,
    };
    let name = prefix.to_uppercase();
    let rows: Vec<ImportRow> = (0..count)
        .map(|n| import_row(n + 2, &format!("{prefix}{n}@example.org"), &name))
        .collect();
    let mut session = store.import().begin(terms, now).await.unwrap();
    session.apply(&rows).await.unwrap();
    session.commit().await.unwrap();
    let window = DigestWindow {
        period_start: now,
        period_end: now + Duration::days(7),
        news_since: now - Duration::days(7),
    };
    let Created::New(digest) = store
        .digests()
        .create(
            list.id,
            "2023-W45",
            &window,
            &Selection::default(),
            0,
            DigestTrigger::Manual,
            None,
            None,
            now,
        )
        .await
        .unwrap()
    else {
        panic!("a new digest")
    };
    // Its deliveries are written a chunk of readers at a time.
    while store
        .digests()
        .build_chunk(digest.id, 5_000, now)
        .await
        .unwrap()
    {}
    (list, digest)
}

/// The hand-off, recorded right before a message goes: the row stays its worker's for
/// the hold, past its lease, untouched by the lease renewal and the release of a
/// stopping worker, so that a worker paused between the hand-off and the mark finds it
/// still its own; only once the hold runs out (the worker never came back) is it taken
/// again. A row not the claim's any more is not handed.
async fn a_row_handed_to_the_mail_server_is_held_for_its_worker_past_the_lease(store: Store) {
    use newsdesk::store::{OutboxConnection, SentRecord};
    let now = default_now();
    let (_, digest) = built_digest(&store, "h", 4).await;
    let (mut a, mut b) = (
        OutboxConnection::new(store.clone()),
        OutboxConnection::new(store.clone()),
    );
    // "a" holds all four for a lease of a few seconds (on the database's clock).
    let lease = 4;
    let held = a.claim_deliveries("a:0", now, lease, 10).await.unwrap();
    let claimed_at = std::time::Instant::now();
    assert_eq!(held.len(), 4);
    let [first, second, third, fourth] = [held[0].id, held[1].id, held[2].id, held[3].id];
    // Only the claim holding a row hands it, and only once.
    assert!(!b.hand(first, "b:0", 600).await.unwrap(), "not b's row");
    assert!(a.hand(first, "a:0", 600).await.unwrap());
    assert!(!a.hand(first, "a:0", 600).await.unwrap(), "handed already");
    // A one-second hold: as if "a" had died right after this hand-off.
    assert!(a.hand(fourth, "a:0", 1).await.unwrap());
    // The renewal keeps the two rows not handed; the handed ones keep their hold.
    assert_eq!(store.outbox().renew_leases("a", lease).await.unwrap(), 2);
    // "a" stalls past its lease (paused, say).
    let expiry = claimed_at + std::time::Duration::from_millis(lease as u64 * 1000 + 1100);
    tokio::time::sleep_until(expiry.into()).await;
    let mut taken: Vec<i64> = b
        .claim_deliveries("b:0", now, 60, 10)
        .await
        .unwrap()
        .iter()
        .map(|d| d.id)
        .collect();
    taken.sort_unstable();
    let mut expected = vec![second, third, fourth];
    expected.sort_unstable();
    assert_eq!(
        taken, expected,
        "the rows a did not hand, and the one whose hold ran out; not the one in its hands"
    );
    // "a" wakes: a row "b" took is not handed by it, and its release gives back
    // nothing (the handed row stays held for it).
    assert!(!a.hand(second, "a:0", 600).await.unwrap());
    store.outbox().release_claims("a").await.unwrap();
    assert!(
        b.claim_deliveries("b:1", now, 60, 10)
            .await
            .unwrap()
            .is_empty(),
        "the handed row is still a's"
    );
    // Its mark for the row it handed counts: the message went once.
    let record = |id: i64, claim: &str| SentRecord {
        delivery_id: id,
        subscriber_id: held.iter().find(|d| d.id == id).unwrap().subscriber.id,
        digest_id: digest.id,
        message_id: format!("<h{id}@example.edu>"),
        items: Vec::new(),
        link_hash: format!("{id:032}"),
        claim: claim.into(),
    };
    let lost = a
        .mark_deliveries_sent(&[record(first, "a:0")], now)
        .await
        .unwrap();
    assert!(lost.is_empty(), "a's mark of its handed row counts");
    // The row whose hold ran out is b's now: a's late mark for it counts for nothing.
    let lost = a
        .mark_deliveries_sent(&[record(fourth, "a:0")], now)
        .await
        .unwrap();
    assert_eq!(lost, vec![fourth]);
    let c = store.digests().delivery_counts(digest.id).await.unwrap();
    assert_eq!((c.pending, c.sending, c.sent), (0, 3, 1));
}

/// The outbox's claims are leases: a claimed row is taken until its lease ends (then any
/// worker may take it), counted as being sent, given back by a stopping worker, kept by
/// renewal, passed over by a cancel; a message recorded as sent makes its link token work.
async fn the_outbox_leases_counts_releases_and_links_deliveries(store: Store) {
    use newsdesk::domain::DeliveryCounts;
    use newsdesk::store::{OutboxConnection, SentRecord};
    let now = default_now();
    let (list, digest) = built_digest(&store, "r", 10).await;
    let counts = |c: DeliveryCounts| (c.pending, c.sending, c.sent, c.cancelled);
    assert_eq!(
        counts(store.digests().delivery_counts(digest.id).await.unwrap()),
        (10, 0, 0, 0)
    );

    // Leases are on the database's clock, in seconds: "a" holds its rows for a few,
    // "b" for a minute. The callers' clocks (`now`, in 2023) play no part in them.
    // "a"'s lease must outlast the steps below on a loaded machine (one second did
    // not, in CI), and the test waits for it to run out further down.
    let (short, lease) = (5, 60);
    let (mut a, mut b) = (
        OutboxConnection::new(store.clone()),
        OutboxConnection::new(store.clone()),
    );
    let first = a.claim_deliveries("a:0", now, short, 4).await.unwrap();
    // The lease began on the database before this returned.
    let claimed_at = std::time::Instant::now();
    assert_eq!(first.len(), 4);
    assert!(
        first
            .iter()
            .all(|d| d.attempts == 1 && d.digest_id == digest.id)
    );
    assert!(
        first
            .iter()
            .all(|d| d.subscriber.email.starts_with('r') && d.subscriber.name == "R")
    );
    assert_eq!(
        counts(store.digests().delivery_counts(digest.id).await.unwrap()),
        (6, 4, 0, 0)
    );
    // Another worker gets the other six, and nothing more while the leases last, even
    // with its clock a day ahead.
    let second = b.claim_deliveries("b:0", now, lease, 100).await.unwrap();
    assert_eq!(second.len(), 6);
    let mut ids: Vec<i64> = first.iter().chain(&second).map(|d| d.id).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 10, "no row twice");
    let later = now + Duration::seconds(30);
    assert!(
        b.claim_deliveries("b:1", now + Duration::days(1), lease, 100)
            .await
            .unwrap()
            .is_empty()
    );

    // "a" sends one of its four and records it with its link's hash.
    let sent = &first[0];
    let (token, hash) = newsdesk::services::subscriptions::delivery_link_token(sent.id);
    a.mark_deliveries_sent(
        &[SentRecord {
            delivery_id: sent.id,
            subscriber_id: sent.subscriber.id,
            digest_id: digest.id,
            message_id: "<m1@example.edu>".into(),
            items: Vec::new(),
            link_hash: hash,
            claim: "a:0".into(),
        }],
        later,
    )
    .await
    .unwrap();
    for purpose in [TokenPurpose::Unsubscribe, TokenPurpose::Preferences] {
        let grant = store
            .tokens()
            .find(
                &newsdesk::services::subscriptions::token_hash(&token),
                purpose,
                later,
            )
            .await
            .unwrap()
            .expect("the sent message's link works");
        assert_eq!(
            (grant.subscriber_id, grant.list_id),
            (sent.subscriber.id, Some(list.id))
        );
    }
    let (other, _) = newsdesk::services::subscriptions::delivery_link_token(first[1].id);
    for t in [
        other,
        token.replace(&format!("d{}-", sent.id), &format!("d{}-", first[1].id)),
    ] {
        let hash = newsdesk::services::subscriptions::token_hash(&t);
        assert!(
            store
                .tokens()
                .find(&hash, TokenPurpose::Unsubscribe, later)
                .await
                .unwrap()
                .is_none(),
            "{t}"
        );
    }
    assert!(
        store
            .tokens()
            .find(
                &newsdesk::services::subscriptions::token_hash(&token),
                TokenPurpose::Confirm,
                later
            )
            .await
            .unwrap()
            .is_none()
    );

    // "b" renews its lease; "a" stalls with three rows held, and its lease of a few
    // seconds (on the database's clock) runs out.
    assert_eq!(store.outbox().renew_leases("b", lease).await.unwrap(), 6);
    let expiry = claimed_at + std::time::Duration::from_millis(short as u64 * 1000 + 1100);
    tokio::time::sleep_until(expiry.into()).await;
    let after_a = now + Duration::seconds(61);
    let taken = b
        .claim_deliveries("b:2", after_a, lease, 100)
        .await
        .unwrap();
    let mut taken_ids: Vec<i64> = taken.iter().map(|d| d.id).collect();
    taken_ids.sort_unstable();
    let mut expected: Vec<i64> = first[1..].iter().map(|d| d.id).collect();
    expected.sort_unstable();
    assert_eq!(
        taken_ids, expected,
        "a's unsent rows, once its lease ran out; not b's renewed ones"
    );
    assert!(taken.iter().all(|d| d.attempts == 2));
    assert_eq!(
        counts(store.digests().delivery_counts(digest.id).await.unwrap()),
        (0, 9, 1, 0)
    );
    // "a" wakes up: its rows are b's now. Its marks count for nothing, write nothing
    // of what the reader was sent, and its lease is not given back to it.
    let stolen = &first[1];
    let made = store
        .content()
        .create_item(
            &draft("sent-late", &["news"], ItemStatus::Published, Some(now)),
            &ItemHtml::from("<p>x</p>"),
            now,
        )
        .await
        .unwrap();
    let item = Some((made.value.id, made.value.updated_at));
    let lost = a
        .mark_deliveries_sent(
            &[SentRecord {
                delivery_id: stolen.id,
                subscriber_id: stolen.subscriber.id,
                digest_id: digest.id,
                message_id: "<late@example.edu>".into(),
                items: item.into_iter().collect(),
                link_hash: "0".repeat(32),
                claim: "a:0".into(),
            }],
            after_a,
        )
        .await
        .unwrap();
    assert_eq!(lost, vec![stolen.id], "a's late mark is dropped");
    if let Some((item_id, _)) = item {
        assert!(
            store
                .outbox()
                .delivered_items(&[stolen.subscriber.id], &[item_id], None)
                .await
                .unwrap()
                .is_empty(),
            "a late mark writes no delivered item"
        );
    }
    assert!(
        !store
            .outbox()
            .mark_skipped(first[2].id, "a:0", after_a)
            .await
            .unwrap()
    );
    assert!(
        !store
            .outbox()
            .mark_retry(first[2].id, "a:0", "4xx", 60, after_a)
            .await
            .unwrap()
    );
    assert_eq!(
        store
            .outbox()
            .mark_failed(
                first[2].id,
                "a:0",
                first[2].subscriber.id,
                "5xx",
                true,
                1,
                after_a
            )
            .await
            .unwrap(),
        None
    );
    assert!(a.relet(&expected, "a:0", lease).await.unwrap().is_empty());
    a.release();
    // b's own check keeps what it holds.
    assert_eq!(
        {
            let mut held = b.relet(&expected, "b:2", lease).await.unwrap();
            held.sort_unstable();
            held
        },
        expected
    );
    assert_eq!(
        counts(store.digests().delivery_counts(digest.id).await.unwrap()),
        (0, 9, 1, 0),
        "nothing recorded over b's rows"
    );

    // "b" stops: its rows are due again at once, the attempt not counted.
    store.outbox().release_claims("b").await.unwrap();
    assert_eq!(
        counts(store.digests().delivery_counts(digest.id).await.unwrap()),
        (9, 0, 1, 0)
    );
    let again = b.claim_deliveries("c:0", after_a, lease, 2).await.unwrap();
    assert_eq!(again.len(), 2);
    for d in &again {
        // Released claims do not count as attempts: one for each claim before b's last.
        let expected = if second.iter().any(|s| s.id == d.id) {
            1
        } else {
            2
        };
        assert_eq!(d.attempts, expected, "{d:?}");
    }
    b.release();

    // A cancel passes over the two rows "c" holds; the seven others are cancelled.
    assert_eq!(store.digests().cancel(digest.id, after_a).await.unwrap(), 7);
    assert_eq!(
        counts(store.digests().delivery_counts(digest.id).await.unwrap()),
        (0, 2, 1, 7)
    );
}

async fn a_conditional_item_write_fails_only_after_a_write_to_that_item(store: Store) {
    tree(&store).await;
    let now = default_now();
    let html = ItemHtml::from("<p>x</p>");
    let made = |slug: &str| draft(slug, &["news"], ItemStatus::Published, Some(now));
    let a = store
        .content()
        .create_item(&made("a"), &html, now)
        .await
        .unwrap()
        .value;
    let b = store
        .content()
        .create_item(&made("b"), &html, now)
        .await
        .unwrap()
        .value;
    let seen = store.content().item_revision(a.id).await.unwrap().unwrap();
    assert_eq!(
        store.content().item_revision(9_999_999).await.unwrap(),
        None
    );
    // Another item's writes (an edit, a status change) do not count against it.
    let mut other = made("b");
    other.title = text("B, edited");
    store
        .content()
        .update_item(b.id, &other, &html, now)
        .await
        .unwrap();
    store
        .content()
        .set_item_status(b.id, ItemStatus::Draft, None, now)
        .await
        .unwrap();
    let mut first = made("a");
    first.title = text("A, first");
    let written = store
        .content()
        .update_item_unless_changed(a.id, &first, &html, now, seen)
        .await
        .unwrap()
        .expect("no write to this item came between");
    assert_eq!(written.value.title, "A, first");
    // A second write made from the same read comes too late, and writes nothing.
    let mut second = made("a");
    second.title = text("A, second");
    assert!(
        store
            .content()
            .update_item_unless_changed(a.id, &second, &html, now, seen)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        store
            .content()
            .item_by_id(a.id)
            .await
            .unwrap()
            .unwrap()
            .title,
        "A, first"
    );
    // Made from the item as it is now, it lands; a status change moves the revision too.
    let now_seen = store.content().item_revision(a.id).await.unwrap().unwrap();
    assert_eq!(now_seen, seen + 1);
    store
        .content()
        .set_item_status(a.id, ItemStatus::Published, Some(now), now)
        .await
        .unwrap();
    assert!(
        store
            .content()
            .update_item_unless_changed(a.id, &second, &html, now, now_seen)
            .await
            .unwrap()
            .is_none()
    );
    let latest = store.content().item_revision(a.id).await.unwrap().unwrap();
    // A category renamed since the read: the draft names it as it was, and the write
    // is a change come between (read again), not a bad draft.
    store
        .content()
        .update_category(
            &slug("news"),
            &NewCategory {
                slug: slug("newsroom"),
                name: text("NEWSROOM"),
                names: Default::default(),
                description: text(""),
                parent: Some(slug("news-events")),
            },
            now,
        )
        .await
        .unwrap();
    assert!(
        store
            .content()
            .update_item_unless_changed(a.id, &second, &html, now, latest)
            .await
            .unwrap()
            .is_none()
    );
    let mut renamed = second.clone();
    renamed.categories = vec![slug("newsroom")];
    assert!(
        store
            .content()
            .update_item_unless_changed(a.id, &renamed, &html, now, latest)
            .await
            .unwrap()
            .is_some()
    );
}
