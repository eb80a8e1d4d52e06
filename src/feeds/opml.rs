//! OPML 2.0 subscription list of the site's feeds, so a reader can subscribe to all of
//! them (or pick some) in one import.

use super::xml_safe;
use ::opml::{Body, Head, OPML, Outline};

/// One feed to list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpmlFeed {
    pub title: String,
    pub xml_url: String,
    pub html_url: String,
    /// The feed's format: "rss", "atom", "json", …
    pub kind: &'static str,
}

/// Feeds listed together under a heading (readers import it as a folder).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpmlGroup {
    pub title: String,
    pub feeds: Vec<OpmlFeed>,
}

/// Renders the subscription list: `feeds` at the top, then each group as an outline
/// holding its feeds. Every feed's outline has `type="rss"`, which OPML 2.0 uses for any
/// feed subscription whatever its format (readers look for exactly that); the format
/// itself goes in `version`.
pub fn render(title: &str, feeds: &[OpmlFeed], groups: &[OpmlGroup]) -> Vec<u8> {
    let doc = OPML {
        version: "2.0".into(),
        head: Some(Head {
            title: Some(xml_safe(title).into_owned()),
            ..Head::default()
        }),
        body: Body {
            outlines: feeds
                .iter()
                .map(outline)
                .chain(groups.iter().map(|g| {
                    let title = xml_safe(&g.title).into_owned();
                    Outline {
                        text: title.clone(),
                        title: Some(title),
                        outlines: g.feeds.iter().map(outline).collect(),
                        ..Outline::default()
                    }
                }))
                .collect(),
        },
    };
    let xml = doc
        .to_string()
        .expect("serialising plain strings into a String cannot fail");
    let mut out = Vec::with_capacity(xml.len() + 40);
    out.extend_from_slice(b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    out.extend_from_slice(xml.as_bytes());
    out.push(b'\n');
    out
}

fn outline(feed: &OpmlFeed) -> Outline {
    let title = xml_safe(&feed.title).into_owned();
    Outline {
        text: title.clone(),
        title: Some(title),
        r#type: Some("rss".into()),
        xml_url: Some(feed.xml_url.clone()),
        html_url: Some(feed.html_url.clone()),
        version: Some(version(feed.kind)),
        ..Outline::default()
    }
}

/// The spec's own value for RSS 2.0 feeds; the other formats have none, so their name
/// in capitals, after the same pattern.
fn version(kind: &str) -> String {
    match kind {
        "rss" => "RSS2".into(),
        other => other.to_ascii_uppercase(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::feeds::testdata::HOSTILE_TITLE;

    fn sample() -> Vec<OpmlFeed> {
        vec![
            OpmlFeed {
                title: "Example News: all items".into(),
                xml_url: "https://news.example.org/feeds/all.rss".into(),
                html_url: "https://news.example.org/".into(),
                kind: "rss",
            },
            OpmlFeed {
                title: HOSTILE_TITLE.into(),
                xml_url: "https://news.example.org/feeds/events.atom?a=1&b=2".into(),
                html_url: "https://news.example.org/categories/events".into(),
                kind: "atom",
            },
        ]
    }

    #[test]
    fn groups_hold_their_feeds() {
        let groups = [OpmlGroup {
            title: "中文".into(),
            feeds: sample(),
        }];
        let bytes = render("Example", &sample()[..1], &groups);
        let doc = OPML::from_str(std::str::from_utf8(&bytes).unwrap()).unwrap();
        let top = &doc.body.outlines;
        assert_eq!(top.len(), 2);
        assert_eq!(
            top[0].xml_url.as_deref(),
            Some(sample()[0].xml_url.as_str())
        );
        assert_eq!(top[1].text, "中文");
        assert_eq!(top[1].r#type, None, "a heading, not a feed");
        assert_eq!(top[1].xml_url, None);
        let inner: Vec<_> = top[1]
            .outlines
            .iter()
            .map(|o| o.xml_url.as_deref())
            .collect();
        assert_eq!(
            inner,
            [
                Some("https://news.example.org/feeds/all.rss"),
                Some("https://news.example.org/feeds/events.atom?a=1&b=2")
            ]
        );
    }

    #[test]
    fn outlines_round_trip_exactly() {
        let bytes = render("Example News & <friends>", &sample(), &[]);
        let xml = String::from_utf8(bytes).expect("UTF-8 output");
        assert!(xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<opml"));
        assert!(!xml.contains("<script>"), "attribute text must be escaped");

        let doc = OPML::from_str(&xml).expect("rendered OPML parses");
        assert_eq!(doc.version, "2.0");
        assert_eq!(
            doc.head.and_then(|h| h.title).as_deref(),
            Some("Example News & <friends>")
        );
        let got: Vec<_> = doc
            .body
            .outlines
            .iter()
            .map(|o| {
                (
                    o.text.as_str(),
                    o.title.as_deref(),
                    o.r#type.as_deref(),
                    o.xml_url.as_deref(),
                    o.html_url.as_deref(),
                    o.version.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                (
                    "Example News: all items",
                    Some("Example News: all items"),
                    Some("rss"),
                    Some("https://news.example.org/feeds/all.rss"),
                    Some("https://news.example.org/"),
                    Some("RSS2"),
                ),
                (
                    HOSTILE_TITLE,
                    Some(HOSTILE_TITLE),
                    Some("rss"),
                    Some("https://news.example.org/feeds/events.atom?a=1&b=2"),
                    Some("https://news.example.org/categories/events"),
                    Some("ATOM"),
                ),
            ]
        );
    }
}
