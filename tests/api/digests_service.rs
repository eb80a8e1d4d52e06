//! The digest and list services called directly: what each refusal is, told apart, so
//! every adapter can answer in its own terms.

use crate::helpers::{Db, spawn_app_with};
use newsdesk::domain::{DigestStatus, Email, IsoWeek};
use newsdesk::services::{ServiceError, digests, lists};
use newsdesk::store::Created;

fn is_not_found<T>(r: Result<T, ServiceError>) -> bool {
    matches!(r, Err(ServiceError::NotFound(_)))
}

#[tokio::test]
async fn digests_and_lists_that_do_not_exist_are_not_found() {
    let app = spawn_app_with(Db::Sqlite, |s| s.run_workers = false)
        .await
        .unwrap();
    app.load_demo().await;
    let core = app.state.app();
    assert!(is_not_found(lists::find(core, "no-such-list").await));
    assert!(is_not_found(lists::delete(core, "no-such-list").await));
    assert!(is_not_found(digests::detail(core, 4242, 10).await));
    assert!(is_not_found(digests::retry(core, 4242).await));
    assert!(is_not_found(digests::cancel(core, 4242).await));
    assert!(is_not_found(
        digests::history(core, Some("no-such-list"), 10).await
    ));
    assert!(is_not_found(digests::archive(core, "no-such-list").await));
    let list = lists::find(core, newsdesk::demo::PARTNERS_LIST)
        .await
        .unwrap();
    let week = IsoWeek::parse("2023-W45").unwrap();
    let stranger = Email::parse("nobody@example.org").unwrap();
    assert!(is_not_found(
        digests::preview_for(core, &list, week, Some(&stranger)).await
    ));
    // A subscriber named in the body is a bad field (422), not a missing resource: the
    // list the path names is there.
    assert!(matches!(
        lists::add_member(core, &list, 4242, None).await,
        Err(newsdesk::services::ServiceError::Invalid(e)) if e.0[0].field == "subscriber_id"
    ));
    assert!(is_not_found(lists::remove_member(core, &list, 4242).await));
}

#[tokio::test]
async fn a_cancelled_digest_is_neither_retried_nor_cancelled_again() {
    // No delivery worker: the digest stays in sending until it is cancelled.
    let app = spawn_app_with(Db::Sqlite, |s| s.run_workers = false)
        .await
        .unwrap();
    app.load_demo().await;
    let core = app.state.app();
    let list = lists::find(core, newsdesk::demo::PARTNERS_LIST)
        .await
        .unwrap();
    let week = IsoWeek::parse("2023-W45").unwrap();
    let Created::New(digest) = digests::send_now(core, &list, week).await.unwrap() else {
        panic!("the first send of a period builds its digest");
    };
    assert_eq!(digest.status, DigestStatus::Sending);
    assert!(matches!(
        digests::send_now(core, &list, week).await.unwrap(),
        Created::Existing(d) if d.id == digest.id
    ));
    assert!(digests::cancel(core, digest.id).await.unwrap() > 0);
    for again in [
        digests::retry(core, digest.id).await,
        digests::cancel(core, digest.id).await,
    ] {
        match again {
            Err(ServiceError::Conflict { field, .. }) => assert_eq!(field, "status"),
            other => panic!("expected a conflict, got {other:?}"),
        }
    }
    let detail = digests::detail(core, digest.id, 10).await.unwrap();
    assert_eq!(detail.digest.status, DigestStatus::Cancelled);
    assert!(!detail.can_retry());
}

#[tokio::test]
async fn a_bad_consent_is_invalid_and_a_list_with_members_is_a_conflict() {
    let app = spawn_app_with(Db::Sqlite, |s| s.run_workers = false)
        .await
        .unwrap();
    app.load_demo().await;
    let core = app.state.app();
    let list = lists::find(core, newsdesk::demo::PARTNERS_LIST)
        .await
        .unwrap();
    let members = lists::members(core, &list, 1).await.unwrap();
    let (member, _) = &members.members[0];
    let long = "x".repeat(301);
    match lists::add_member(core, &list, member.id, Some(&long)).await {
        Err(ServiceError::Invalid(errors)) => assert_eq!(errors.0[0].field, "consent_source"),
        other => panic!("expected invalid input, got {:?}", other.map(|(_, s)| s)),
    }
    assert!(matches!(
        lists::delete(core, &list.slug).await,
        Err(ServiceError::Conflict { .. })
    ));
}
