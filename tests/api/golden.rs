//! Golden files: the demo's feeds as a reader receives them, so any change in output is
//! a visible diff. `UPDATE_GOLDEN=1 cargo test golden` rewrites them.

use crate::helpers::{Db, spawn_app_with};
use std::path::PathBuf;

#[tokio::test]
async fn demo_feeds_match_their_golden_files() {
    let app = spawn_app_with(Db::Sqlite, |s| {
        s.base_url = "https://news.example.edu".into();
        s.base_url_from_bind = false;
    })
    .await
    .unwrap();
    app.load_demo().await;
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let update = std::env::var("UPDATE_GOLDEN").is_ok();
    let mut stale = Vec::new();
    for path in [
        "/feeds/events.rss",
        "/feeds/events.atom",
        "/feeds/events.json",
        "/feeds/events.ics",
        "/feeds.opml",
    ] {
        let body = app.get(path).send().await.unwrap().text().await.unwrap();
        let file = dir.join(path.trim_start_matches('/').replace('/', "_"));
        if update {
            std::fs::write(&file, &body).unwrap();
            continue;
        }
        let expected = std::fs::read_to_string(&file).unwrap_or_default();
        if expected != body {
            stale.push(format!(
                "{} differs from the response to {path}:\n{body}",
                file.display()
            ));
        }
    }
    assert!(
        stale.is_empty(),
        "{}\n(run UPDATE_GOLDEN=1 cargo test golden after checking the change)",
        stale.join("\n\n")
    );
}
