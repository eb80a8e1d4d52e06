//! RSS 2.0 (rssboard.org/rss-specification) with the `content`, `dc` and `atom`
//! namespaces: full HTML in `content:encoded`, the author's name in `dc:creator` (RSS's
//! own `author` must be an e-mail address) and RFC 5005 paging as `atom:link`s.

use super::{FeedEntry, FeedMeta, common_language, escape_html, is_language_tag, xml_safe};
use ::rss::extension::dublincore::DublinCoreExtension;
use ::rss::extension::{Extension, ExtensionMap};
use ::rss::{Category, Channel, Guid, Item};
use std::collections::BTreeMap;

const ATOM_NS: &str = "http://www.w3.org/2005/Atom";
/// `type` of the `atom:link`s: every paging link points at this same format.
const RSS_TYPE: &str = "application/rss+xml";
/// Long enough to tell what an item is about, short enough for a reader's list view.
const EXCERPT_CHARS: usize = 280;

/// Renders one page of a feed as an RSS 2.0 document.
pub fn render(meta: &FeedMeta, entries: &[FeedEntry]) -> Vec<u8> {
    // An empty description is legal but some readers reject the channel; the title is
    // the least surprising stand-in.
    let channel_description = if meta.description.trim().is_empty() {
        &meta.title
    } else {
        &meta.description
    };
    let channel = Channel {
        title: xml_safe(&meta.title).into_owned(),
        link: meta.html_url.clone(),
        description: xml_safe(channel_description).into_owned(),
        language: channel_language(meta, entries).map(str::to_owned),
        last_build_date: Some(meta.updated.to_rfc2822()),
        generator: Some("newsdesk".into()),
        items: entries
            .iter()
            .map(|e| item(meta, channel_language(meta, entries), e))
            .collect(),
        extensions: atom_links(meta),
        // The rss crate's typed Atom extension sits behind a cargo feature the main
        // crate does not enable; the generic extension map writes the same elements.
        namespaces: BTreeMap::from([("atom".to_owned(), ATOM_NS.to_owned())]),
        ..Channel::default()
    };
    channel
        .write_to(Vec::new())
        .expect("writing XML into a Vec<u8> has no I/O to fail")
}

/// The channel's `language`: the feed's, or the one every entry shares.
fn channel_language<'a>(meta: &'a FeedMeta, entries: &'a [FeedEntry]) -> Option<&'a str> {
    meta.language
        .as_deref()
        .or_else(|| common_language(entries))
        .filter(|l| is_language_tag(l))
}

/// `atom:link` for self and for each RFC 5005 page that exists.
fn atom_links(meta: &FeedMeta) -> ExtensionMap {
    let p = &meta.paging;
    let links = [
        ("self", Some(&meta.self_url)),
        ("first", Some(&p.first)),
        ("previous", p.previous.as_ref()),
        ("next", p.next.as_ref()),
        ("last", Some(&p.last)),
    ]
    .into_iter()
    .filter_map(|(rel, href)| href.map(|h| atom_link(rel, h)))
    .collect();
    BTreeMap::from([(
        "atom".to_owned(),
        BTreeMap::from([("link".to_owned(), links)]),
    )])
}

fn atom_link(rel: &str, href: &str) -> Extension {
    Extension {
        name: "atom:link".into(),
        value: None,
        attrs: BTreeMap::from([
            ("href".to_owned(), href.to_owned()),
            ("rel".to_owned(), rel.to_owned()),
            ("type".to_owned(), RSS_TYPE.to_owned()),
        ]),
        children: BTreeMap::new(),
    }
}

/// An item; one in another language than the channel's says which in `dc:language`
/// (RSS's own `language` is the channel's only).
fn item(meta: &FeedMeta, channel_language: Option<&str>, e: &FeedEntry) -> Item {
    let own_language = Some(e.language.as_str())
        .filter(|l| is_language_tag(l) && Some(*l) != channel_language)
        .map(str::to_owned);
    let categories = e
        .categories
        .iter()
        .map(|c| Category {
            name: xml_safe(&c.name).into_owned(),
            domain: Some(e.category_scheme.clone()),
        })
        .chain(e.tags.iter().map(|t| Category {
            name: xml_safe(t).into_owned(),
            domain: None,
        }))
        .collect();
    Item {
        title: Some(xml_safe(&e.title).into_owned()),
        link: Some(e.url.clone()),
        description: Some(xml_safe(&description(e)).into_owned()),
        categories,
        // The tag: URI survives slug edits; the link does not, so it is no permalink.
        guid: Some(Guid {
            value: e.id.clone(),
            permalink: false,
        }),
        pub_date: Some(e.published.to_rfc2822()),
        content: Some(xml_safe(&e.content_html).into_owned()),
        dublin_core_ext: Some(DublinCoreExtension {
            creators: vec![xml_safe(e.byline(meta.author_name())).into_owned()],
            languages: own_language.into_iter().collect(),
            ..DublinCoreExtension::default()
        }),
        ..Item::default()
    }
}

/// Readers treat `description` as HTML, so the plain-text summary is escaped to be shown
/// as written rather than interpreted; without a summary, an excerpt of the content.
fn description(e: &FeedEntry) -> String {
    if e.summary.trim().is_empty() {
        escape_html(&text_excerpt(&e.content_html, EXCERPT_CHARS))
    } else {
        escape_html(&e.summary)
    }
}

/// Plain text from sanitised HTML: tags dropped, the common entities decoded,
/// white space collapsed, cut at a word boundary near `max_chars`.
fn text_excerpt(html: &str, max_chars: usize) -> String {
    let mut text = String::with_capacity(html.len().min(max_chars * 4));
    let mut rest = html;
    while let Some(c) = rest.chars().next() {
        match c {
            '<' => {
                // Tags separate words (`<p>a</p><p>b</p>`), so each becomes a space.
                rest = skip_tag(rest);
                text.push(' ');
            }
            '&' => {
                let (decoded, len) = decode_entity(rest);
                text.push_str(&decoded);
                rest = &rest[len..];
            }
            _ => {
                text.push(c);
                rest = &rest[c.len_utf8()..];
            }
        }
    }
    let mut out = String::new();
    let mut chars = 0;
    for word in text.split_whitespace() {
        let gap = usize::from(chars > 0);
        let len = word.chars().count();
        if chars + gap + len > max_chars {
            if chars == 0 {
                // One word longer than the whole excerpt: cut it rather than show nothing.
                out.extend(word.chars().take(max_chars));
            }
            out.push('…');
            break;
        }
        if gap > 0 {
            out.push(' ');
        }
        out.push_str(word);
        chars += gap + len;
    }
    out
}

/// Skips a tag starting at `<`, minding quoted attribute values, which may hold `>`.
fn skip_tag(s: &str) -> &str {
    let mut quote = None;
    for (i, c) in s.char_indices().skip(1) {
        match (quote, c) {
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), _) if c == q => quote = None,
            (None, '>') => return &s[i + 1..],
            _ => {}
        }
    }
    ""
}

/// Decodes the entity at the start of `s` (which starts with `&`); returns the text and
/// how many bytes it used. Unknown or malformed entities are kept as written.
fn decode_entity(s: &str) -> (String, usize) {
    let Some(end) = s
        .char_indices()
        .take(12)
        .find(|&(_, c)| c == ';')
        .map(|(i, _)| i)
    else {
        return ("&".into(), 1);
    };
    let name = &s[1..end];
    let decoded = match name {
        "amp" => Some('&'),
        "lt" => Some('<'),
        "gt" => Some('>'),
        "quot" => Some('"'),
        "apos" => Some('\''),
        "nbsp" => Some(' '),
        _ => name
            .strip_prefix("#x")
            .or_else(|| name.strip_prefix("#X"))
            .map(|hex| u32::from_str_radix(hex, 16))
            .or_else(|| name.strip_prefix('#').map(str::parse::<u32>))
            .and_then(Result::ok)
            .and_then(char::from_u32),
    };
    match decoded {
        Some(c) => (c.to_string(), end + 1),
        None => ("&".into(), 1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::feeds::testdata::{self, HOSTILE_SUMMARY, HOSTILE_TITLE};

    fn parse(meta: &FeedMeta, entries: &[FeedEntry]) -> Channel {
        let bytes = render(meta, entries);
        Channel::read_from(&bytes[..]).expect("rendered RSS parses")
    }

    #[test]
    fn channel_carries_meta_and_paging_links() {
        let meta = testdata::meta("rss");
        let ch = parse(&meta, &testdata::entries());
        assert_eq!(ch.title(), "Example News: all items");
        assert_eq!(ch.link(), "https://news.example.org/");
        assert_eq!(ch.description(), "Everything the newsroom publishes");
        assert_eq!(ch.generator(), Some("newsdesk"));
        assert_eq!(
            ch.last_build_date(),
            Some("Fri, 10 Nov 2023 09:30:00 +0000")
        );
        // Entries mix en and zh-Hans: no single channel language is true.
        assert_eq!(ch.language(), None);
        assert_eq!(
            ch.namespaces().get("atom").map(String::as_str),
            Some(ATOM_NS)
        );

        let links: Vec<(&str, &str, &str)> = ch.extensions()["atom"]["link"]
            .iter()
            .map(|l| {
                (
                    l.attrs["rel"].as_str(),
                    l.attrs["href"].as_str(),
                    l.attrs["type"].as_str(),
                )
            })
            .collect();
        let base = "https://news.example.org/feeds/all.rss";
        let expected_hrefs = [
            ("self", format!("{base}?page=2")),
            ("first", base.to_owned()),
            ("previous", format!("{base}?page=1")),
            ("next", format!("{base}?page=3")),
            ("last", format!("{base}?page=3")),
        ];
        assert_eq!(links.len(), expected_hrefs.len());
        for ((rel, href, ty), (want_rel, want_href)) in links.iter().zip(&expected_hrefs) {
            assert_eq!(
                (*rel, *href, *ty),
                (*want_rel, want_href.as_str(), RSS_TYPE)
            );
        }
    }

    #[test]
    fn missing_pages_are_not_linked_and_shared_language_is_declared() {
        let mut meta = testdata::meta("rss");
        meta.paging.previous = None;
        meta.paging.next = None;
        let entries: Vec<_> = testdata::entries()
            .into_iter()
            .filter(|e| e.language == "en")
            .collect();
        let ch = parse(&meta, &entries);
        let rels: Vec<&str> = ch.extensions()["atom"]["link"]
            .iter()
            .map(|l| l.attrs["rel"].as_str())
            .collect();
        assert_eq!(rels, ["self", "first", "last"]);
        assert_eq!(ch.language(), Some("en"));
    }

    #[test]
    fn a_channel_in_one_language_marks_the_items_in_another() {
        let mut meta = testdata::meta("rss");
        meta.language = Some("en".into());
        let ch = parse(&meta, &testdata::entries());
        assert_eq!(ch.language(), Some("en"));
        let languages = |i: &Item| {
            i.dublin_core_ext()
                .map(|dc| dc.languages().to_vec())
                .unwrap_or_default()
        };
        assert!(languages(&ch.items()[0]).is_empty(), "in the channel's");
        assert_eq!(languages(&ch.items()[1]), ["zh-Hans"]);
        // Without a channel language, every item says its own.
        let ch = parse(&testdata::meta("rss"), &testdata::entries());
        assert_eq!(ch.language(), None);
        assert_eq!(languages(&ch.items()[0]), ["en"]);
        assert_eq!(languages(&ch.items()[1]), ["zh-Hans"]);
    }

    #[test]
    fn items_round_trip_exactly() {
        let meta = testdata::meta("rss");
        let entries = testdata::entries();
        let ch = parse(&meta, &entries);
        assert_eq!(ch.items().len(), 3);

        let event = &ch.items()[0];
        assert_eq!(event.title(), Some(testdata::EVENT_TITLE));
        assert_eq!(
            event.link(),
            Some("https://news.example.org/items/unevoc-final-session")
        );
        let guid = event.guid().expect("guid present");
        assert_eq!(guid.value(), "tag:news.example.org,2023-10-20:item/41");
        assert!(!guid.is_permalink());
        assert_eq!(event.pub_date(), Some("Fri, 20 Oct 2023 08:00:00 +0000"));
        assert_eq!(
            event.description(),
            Some("The closing session of the 2023 Coaction Initiative.")
        );
        assert_eq!(event.content(), Some(entries[0].content_html.as_str()));
        let content = event.content().unwrap_or_default();
        assert!(content.contains("Liuxiandong Campus, Shenzhen Polytechnic University"));
        assert!(content.contains("Thu 9 November 2023, 14:00 – 17:30 CST (UTC+08:00)"));
        assert!(content.contains("href=\"https://meet.example.org/unevoc\""));
        let cats: Vec<(&str, Option<&str>)> = event
            .categories()
            .iter()
            .map(|c| (c.name(), c.domain()))
            .collect();
        let scheme = Some("https://news.example.org/categories/");
        assert_eq!(
            cats,
            [
                ("Events", scheme),
                ("UNEVOC Network", scheme),
                ("tvet", None),
                ("hybrid", None)
            ]
        );
        let dc = event.dublin_core_ext().expect("dc:creator present");
        assert_eq!(dc.creators(), ["Li Wei"]);
    }

    #[test]
    fn hostile_text_survives_exactly() {
        let meta = testdata::meta("rss");
        let entries = testdata::entries();
        let bytes = render(&meta, &entries);
        let xml = String::from_utf8(bytes.clone()).expect("UTF-8 output");
        assert!(
            !xml.contains("<script>"),
            "title must be escaped, not raw markup"
        );

        let ch = Channel::read_from(&bytes[..]).expect("rendered RSS parses");
        let hostile = &ch.items()[1];
        assert_eq!(hostile.title(), Some(HOSTILE_TITLE));
        // The description is HTML: its text, once unescaped, is the summary as written.
        assert_eq!(
            hostile.description(),
            Some(escape_html(HOSTILE_SUMMARY).as_str())
        );
        // `]]>` inside the CDATA-wrapped content must not end the section early.
        assert_eq!(hostile.content(), Some(testdata::HOSTILE_BODY));
        assert_eq!(hostile.pub_date(), Some("Thu, 2 Nov 2023 01:02:03 +0000"));
        let cats: Vec<&str> = hostile.categories().iter().map(|c| c.name()).collect();
        assert_eq!(cats, ["Research, Policy & <Practice>", "研讨会", "a;b,c"]);
        // No author: the unit is credited instead of nobody.
        let dc = hostile.dublin_core_ext().expect("dc:creator present");
        assert_eq!(dc.creators(), ["Press Office"]);
    }

    #[test]
    fn empty_summary_falls_back_to_a_text_excerpt() {
        let ch = parse(&testdata::meta("rss"), &testdata::entries());
        let plain = &ch.items()[2];
        assert_eq!(
            plain.description(),
            Some("The library opens at 08:00 &amp; closes at 22:00. Second paragraph.")
        );
    }

    #[test]
    fn excerpt_cuts_at_a_word_and_reads_through_markup() {
        let html = "<p title=\"a>b\">Hello&#x20;&#65;&amp;B &bogus; world</p> again and again";
        assert_eq!(
            text_excerpt(html, 100),
            "Hello A&B &bogus; world again and again"
        );
        assert_eq!(text_excerpt(html, 20), "Hello A&B &bogus;…");
        assert_eq!(text_excerpt("研讨会研讨会", 3), "研讨会…");
        assert_eq!(text_excerpt("", 10), "");
    }

    #[test]
    fn characters_xml_cannot_carry_are_dropped_not_fatal() {
        let mut entries = testdata::entries();
        entries[2].title = "Bell\u{7} and \u{FFFF}end".into();
        let ch = parse(&testdata::meta("rss"), &entries);
        assert_eq!(ch.items()[2].title(), Some("Bell and end"));
    }
}
