//! Atom 1.0 (RFC 4287) with RFC 5005 paging links. The output validates against the
//! RFC's RELAX NG schema: nothing optional is written empty, and language tags are only
//! written when they have the shape the schema demands.

use super::{FeedEntry, FeedMeta, common_language, is_language_tag, xml_safe};
use atom_syndication::{Category, Content, Entry, Feed, Generator, Link, Person, Text};

const ATOM_TYPE: &str = "application/atom+xml";
const HTML_TYPE: &str = "text/html";

/// Renders one page of a feed as an Atom document.
pub fn render(meta: &FeedMeta, entries: &[FeedEntry]) -> Vec<u8> {
    // A feed in one language says so even where an entry is in another (that entry then
    // says its own); a feed of originals only when every entry shares one.
    let feed_lang = meta
        .language
        .as_deref()
        .or_else(|| common_language(entries))
        .filter(|l| is_language_tag(l));
    // The feed always names an author, so an entry's own is a refinement, never a gap.
    let site = meta.author_name();
    let feed = Feed {
        title: Text::plain(xml_safe(&meta.title)),
        id: meta.id.clone(),
        updated: meta.updated.fixed_offset(),
        authors: vec![person(site)],
        generator: Some(Generator {
            value: "newsdesk".into(),
            uri: None,
            version: None,
        }),
        links: feed_links(meta),
        subtitle: (!meta.description.trim().is_empty())
            .then(|| Text::plain(xml_safe(&meta.description))),
        entries: entries.iter().map(|e| entry(site, feed_lang, e)).collect(),
        lang: feed_lang.map(str::to_owned),
        ..Feed::default()
    };
    feed.write_to(Vec::new())
        .expect("writing XML into a Vec<u8> has no I/O to fail")
}

fn feed_links(meta: &FeedMeta) -> Vec<Link> {
    let p = &meta.paging;
    let mut links = vec![
        link("self", &meta.self_url, ATOM_TYPE),
        link("alternate", &meta.html_url, HTML_TYPE),
        link("first", &p.first, ATOM_TYPE),
    ];
    if let Some(prev) = &p.previous {
        links.push(link("previous", prev, ATOM_TYPE));
    }
    if let Some(next) = &p.next {
        links.push(link("next", next, ATOM_TYPE));
    }
    links.push(link("last", &p.last, ATOM_TYPE));
    links
}

fn link(rel: &str, href: &str, mime_type: &str) -> Link {
    Link {
        href: href.to_owned(),
        rel: rel.to_owned(),
        mime_type: Some(mime_type.to_owned()),
        ..Link::default()
    }
}

fn person(name: &str) -> Person {
    Person {
        name: xml_safe(name).into_owned(),
        ..Person::default()
    }
}

fn entry(site: &str, feed_lang: Option<&str>, e: &FeedEntry) -> Entry {
    let entry_lang = Some(e.language.as_str()).filter(|l| is_language_tag(l));
    // Stated on the entry's text only where it differs from what the feed declares.
    let lang = entry_lang
        .filter(|&l| Some(l) != feed_lang)
        .map(str::to_owned);
    let text = |s: &str| Text {
        lang: lang.clone(),
        ..Text::plain(xml_safe(s))
    };
    let categories = e
        .categories
        .iter()
        .map(|c| Category {
            term: xml_safe(&c.slug).into_owned(),
            scheme: Some(e.category_scheme.clone()),
            label: Some(xml_safe(&c.name).into_owned()),
        })
        .chain(e.tags.iter().filter(|t| !t.is_empty()).map(|t| Category {
            term: xml_safe(t).into_owned(),
            scheme: None,
            label: None,
        }))
        .collect();
    Entry {
        title: text(&e.title),
        id: e.id.clone(),
        updated: e.updated.fixed_offset(),
        authors: vec![person(e.byline(site))],
        categories,
        links: vec![Link {
            hreflang: entry_lang.map(str::to_owned),
            ..link("alternate", &e.url, HTML_TYPE)
        }],
        published: Some(e.published.fixed_offset()),
        summary: (!e.summary.trim().is_empty()).then(|| text(&e.summary)),
        content: Some(Content {
            lang: lang.clone(),
            value: Some(xml_safe(&e.content_html).into_owned()),
            content_type: Some("html".into()),
            ..Content::default()
        }),
        ..Entry::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::feeds::testdata::{self, HOSTILE_BODY, HOSTILE_SUMMARY, HOSTILE_TITLE, at};
    use atom_syndication::TextType;

    fn parse(meta: &FeedMeta, entries: &[FeedEntry]) -> Feed {
        let bytes = render(meta, entries);
        Feed::read_from(&bytes[..]).expect("rendered Atom parses")
    }

    fn rels(links: &[Link]) -> Vec<(&str, &str, Option<&str>)> {
        links
            .iter()
            .map(|l| (l.rel(), l.href(), l.mime_type()))
            .collect()
    }

    #[test]
    fn feed_carries_meta_author_and_paging_links() {
        let meta = testdata::meta("atom");
        let feed = parse(&meta, &testdata::entries());
        assert_eq!(feed.id(), "tag:news.example.org,2023-01-01:feed/all");
        assert_eq!(feed.title().as_str(), "Example News: all items");
        assert_eq!(
            feed.subtitle().map(Text::as_str),
            Some("Everything the newsroom publishes")
        );
        assert_eq!(feed.updated(), &at("2023-11-10T09:30:00Z").fixed_offset());
        assert_eq!(feed.authors().len(), 1);
        assert_eq!(feed.authors()[0].name(), "Example News");
        assert_eq!(feed.generator().map(Generator::value), Some("newsdesk"));
        // Mixed entry languages: the feed declares none.
        assert_eq!(feed.lang(), None);

        let base = "https://news.example.org/feeds/all.atom";
        let atom = Some(ATOM_TYPE);
        assert_eq!(
            rels(feed.links()),
            [
                ("self", format!("{base}?page=2").as_str(), atom),
                ("alternate", "https://news.example.org/", Some(HTML_TYPE)),
                ("first", base, atom),
                ("previous", format!("{base}?page=1").as_str(), atom),
                ("next", format!("{base}?page=3").as_str(), atom),
                ("last", format!("{base}?page=3").as_str(), atom),
            ]
        );
    }

    #[test]
    fn the_only_page_links_first_and_last_but_no_neighbours() {
        let mut meta = testdata::meta("atom");
        meta.paging.previous = None;
        meta.paging.next = None;
        let feed = parse(&meta, &testdata::entries());
        let rels: Vec<&str> = feed.links().iter().map(Link::rel).collect();
        assert_eq!(rels, ["self", "alternate", "first", "last"]);
    }

    #[test]
    fn event_entry_round_trips() {
        let entries = testdata::entries();
        let feed = parse(&testdata::meta("atom"), &entries);
        assert_eq!(feed.entries().len(), 3);
        let e = &feed.entries()[0];
        assert_eq!(e.id(), "tag:news.example.org,2023-10-20:item/41");
        assert_eq!(e.title().as_str(), testdata::EVENT_TITLE);
        assert_eq!(e.title().r#type, TextType::Text);
        assert_eq!(e.title().lang.as_deref(), Some("en"));
        assert_eq!(e.updated(), &at("2023-10-25T10:15:00Z").fixed_offset());
        assert_eq!(
            e.published(),
            Some(&at("2023-10-20T08:00:00Z").fixed_offset())
        );
        assert_eq!(e.authors()[0].name(), "Li Wei");
        assert_eq!(
            rels(e.links()),
            [(
                "alternate",
                "https://news.example.org/items/unevoc-final-session",
                Some(HTML_TYPE)
            )]
        );
        assert_eq!(e.links()[0].hreflang(), Some("en"));
        assert_eq!(
            e.summary().map(Text::as_str),
            Some("The closing session of the 2023 Coaction Initiative.")
        );
        let content = e.content().expect("content present");
        assert_eq!(content.content_type(), Some("html"));
        assert_eq!(content.value(), Some(entries[0].content_html.as_str()));
        assert!(entries[0].content_html.contains("Liuxiandong Campus"));

        let cats: Vec<(&str, Option<&str>, Option<&str>)> = e
            .categories()
            .iter()
            .map(|c| (c.term(), c.label(), c.scheme()))
            .collect();
        let scheme = Some("https://news.example.org/categories/");
        assert_eq!(
            cats,
            [
                ("events", Some("Events"), scheme),
                ("unevoc", Some("UNEVOC Network"), scheme),
                ("tvet", None, None),
                ("hybrid", None, None),
            ]
        );
    }

    #[test]
    fn hostile_entry_round_trips_exactly() {
        let feed = parse(&testdata::meta("atom"), &testdata::entries());
        let e = &feed.entries()[1];
        assert_eq!(e.title().as_str(), HOSTILE_TITLE);
        assert_eq!(e.title().lang.as_deref(), Some("zh-Hans"));
        assert_eq!(e.summary().map(Text::as_str), Some(HOSTILE_SUMMARY));
        assert_eq!(e.content().and_then(Content::value), Some(HOSTILE_BODY));
        // No author of its own: the unit is credited.
        assert_eq!(e.authors()[0].name(), "Press Office");
        let cats: Vec<(&str, Option<&str>)> = e
            .categories()
            .iter()
            .map(|c| (c.term(), c.label()))
            .collect();
        assert_eq!(
            cats,
            [
                ("research", Some("Research, Policy & <Practice>")),
                ("研讨会", None),
                ("a;b,c", None)
            ]
        );
    }

    #[test]
    fn subsecond_updates_and_missing_summaries_are_kept_as_they_are() {
        let feed = parse(&testdata::meta("atom"), &testdata::entries());
        let e = &feed.entries()[2];
        assert_eq!(e.updated(), &at("2023-11-06T12:00:00.123Z").fixed_offset());
        assert_eq!(e.summary(), None);
        assert_eq!(e.authors()[0].name(), "Maria Santos");
        assert!(e.categories().is_empty());
    }

    #[test]
    fn a_shared_language_is_declared_once_on_the_feed() {
        let entries: Vec<_> = testdata::entries()
            .into_iter()
            .filter(|e| e.language == "en")
            .collect();
        let feed = parse(&testdata::meta("atom"), &entries);
        assert_eq!(feed.lang(), Some("en"));
        assert_eq!(feed.entries()[0].title().lang, None);
        assert_eq!(feed.entries()[0].content().and_then(Content::lang), None);
    }

    #[test]
    fn a_feed_in_one_language_declares_it_and_entries_in_another_say_theirs() {
        let mut meta = testdata::meta("atom");
        meta.language = Some("zh".into());
        let mut entries = testdata::entries();
        entries[1].language = "zh".into();
        let feed = parse(&meta, &entries);
        assert_eq!(feed.lang(), Some("zh"));
        let e = &feed.entries()[1];
        assert_eq!(e.title().lang, None, "in the feed's language");
        let en = &feed.entries()[0];
        assert_eq!(en.title().lang.as_deref(), Some("en"));
        assert_eq!(en.content().and_then(Content::lang), Some("en"));
        assert_eq!(en.summary().and_then(|s| s.lang.as_deref()), Some("en"));
        assert_eq!(en.links()[0].hreflang(), Some("en"));
    }

    #[test]
    fn bad_language_tags_are_left_out_rather_than_break_validation() {
        let mut entries = testdata::entries();
        entries[0].language = "en_GB".into();
        entries[2].language = String::new();
        let feed = parse(&testdata::meta("atom"), &entries);
        assert_eq!(feed.entries()[0].title().lang, None);
        assert_eq!(feed.entries()[0].links()[0].hreflang(), None);
        assert_eq!(feed.entries()[2].title().lang, None);
    }

    #[test]
    fn empty_author_unit_and_site_name_still_give_a_named_author() {
        let mut meta = testdata::meta("atom");
        meta.site_name = String::new();
        let mut entries = testdata::entries();
        entries[1].org_unit = " ".into();
        let feed = parse(&meta, &entries);
        assert_eq!(feed.authors()[0].name(), "Example News: all items");
        assert_eq!(
            feed.entries()[1].authors()[0].name(),
            "Example News: all items"
        );
    }
}
