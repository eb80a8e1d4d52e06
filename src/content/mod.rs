//! Markdown in, sanitised HTML out. The HTML is stored beside the Markdown and goes
//! into pages, feeds and mail as it is, so this is the one place that decides what
//! markup a writer may use.

use pulldown_cmark::{Options, Parser, html};

/// Renders Markdown to HTML with scripts, event handlers, `javascript:` URLs and
/// other active content removed. Links get `rel="noopener noreferrer"`.
pub fn render_markdown(markdown: &str) -> String {
    let mut options = Options::empty();
    options.insert(Options::ENABLE_TABLES);
    options.insert(Options::ENABLE_STRIKETHROUGH);
    options.insert(Options::ENABLE_FOOTNOTES);
    let parser = Parser::new_ext(markdown, options);
    let mut unsafe_html = String::with_capacity(markdown.len() * 3 / 2);
    html::push_html(&mut unsafe_html, parser);
    sanitise_html(&unsafe_html)
}

/// Cleans HTML from any source down to the allowed markup.
pub fn sanitise_html(html: &str) -> String {
    ammonia::Builder::default()
        .url_schemes(["http", "https", "mailto"].into_iter().collect())
        .link_rel(Some("noopener noreferrer"))
        .clean(html)
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_becomes_html() {
        let html = render_markdown("# Title\n\nSome *text* and [a link](https://example.org).");
        assert!(html.contains("<h1>Title</h1>"), "{html}");
        assert!(html.contains("<em>text</em>"), "{html}");
        assert!(
            html.contains(r#"<a href="https://example.org" rel="noopener noreferrer">a link</a>"#),
            "{html}"
        );
    }

    #[test]
    fn active_content_is_removed() {
        let cases = [
            "<script>alert(1)</script>hello",
            "<img src=x onerror=alert(1)>",
            "[click](javascript:alert(1))",
            "<a href=\"javascript:alert(1)\">x</a>",
            "<iframe src=\"https://evil.example\"></iframe>",
            "<div onclick=\"steal()\">x</div>",
            "<style>body{display:none}</style>",
        ];
        for case in cases {
            let html = render_markdown(case);
            let lower = html.to_lowercase();
            for bad in [
                "<script",
                "onerror",
                "javascript:",
                "<iframe",
                "onclick",
                "<style",
            ] {
                assert!(!lower.contains(bad), "{case:?} left {bad:?} in {html:?}");
            }
        }
    }

    #[test]
    fn text_survives_exactly() {
        let html = render_markdown("Fish & chips: 5 < 6, \"quoted\" ]]> 🎉 研讨会");
        assert!(html.contains("Fish &amp; chips: 5 &lt; 6"), "{html}");
        assert!(html.contains("]]&gt;"), "{html}");
        assert!(html.contains("🎉 研讨会"), "{html}");
    }
}
