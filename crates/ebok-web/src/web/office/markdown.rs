//! The Markdown of news and FAQ as HTML: raw HTML shown as text, images as their text, links
//! only to http(s), mailto or the panel's own paths.

use pulldown_cmark::{Alignment, CodeBlockKind, Event, HeadingLevel, Options, Parser, Tag, TagEnd};

/// Whether a link target may be followed: http(s), mailto, or relative (no scheme at all).
/// Anything else — `javascript:`, `data:`, `vbscript:`, schemes disguised with control
/// characters — is refused.
pub(crate) fn safe_url(url: &str) -> bool {
    let u = url.trim();
    if u.chars().any(char::is_control) {
        return false;
    }
    match u.find([':', '/', '?', '#']) {
        Some(i) if u.as_bytes()[i] == b':' => {
            matches!(
                u[..i].to_ascii_lowercase().as_str(),
                "http" | "https" | "mailto"
            )
        }
        _ => true,
    }
}

/// Headings inside a news item or an answer sit below the page's own `h1`/`h2`.
fn demote(level: HeadingLevel) -> HeadingLevel {
    match level {
        HeadingLevel::H1 => HeadingLevel::H3,
        HeadingLevel::H2 => HeadingLevel::H4,
        HeadingLevel::H3 => HeadingLevel::H5,
        _ => HeadingLevel::H6,
    }
}

/// Markdown from the billing system or the office as HTML that is safe to insert: raw HTML
/// becomes visible text, links other than http(s)/mailto/relative become their text, images
/// become their alt text, no attributes but `href` and `title` (escaped) are produced.
pub(crate) fn markdown_html(md: &str) -> String {
    let mut options = Options::empty();
    options.insert(Options::ENABLE_TABLES);
    options.insert(Options::ENABLE_STRIKETHROUGH);
    // One entry per open link: whether it is kept.
    let mut links: Vec<bool> = Vec::new();
    let events = Parser::new_ext(md, options).filter_map(|event| match event {
        Event::Html(s) | Event::InlineHtml(s) => Some(Event::Text(s)),
        Event::Start(Tag::Link {
            link_type,
            dest_url,
            title,
            id,
        }) => {
            let keep = safe_url(&dest_url);
            links.push(keep);
            keep.then_some(Event::Start(Tag::Link {
                link_type,
                dest_url,
                title,
                id,
            }))
        }
        Event::End(TagEnd::Link) => links
            .pop()
            .unwrap_or(false)
            .then_some(Event::End(TagEnd::Link)),
        Event::Start(Tag::Image { .. }) | Event::End(TagEnd::Image) => None,
        Event::Start(Tag::Heading { level, .. }) => Some(Event::Start(Tag::Heading {
            level: demote(level),
            id: None,
            classes: Vec::new(),
            attrs: Vec::new(),
        })),
        Event::End(TagEnd::Heading(level)) => Some(Event::End(TagEnd::Heading(demote(level)))),
        // No inline styles (the CSP refuses them) and no classes from the text.
        Event::Start(Tag::Table(align)) => {
            Some(Event::Start(Tag::Table(vec![Alignment::None; align.len()])))
        }
        Event::Start(Tag::CodeBlock(CodeBlockKind::Fenced(_))) => {
            Some(Event::Start(Tag::CodeBlock(CodeBlockKind::Indented)))
        }
        other => Some(other),
    });
    let mut out = String::with_capacity(md.len() * 3 / 2);
    pulldown_cmark::html::push_html(&mut out, events);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_is_rendered_and_made_inert() {
        let html = markdown_html(
            "# Awaria\n\n**Uwaga**: [status](https://status.example.pl \"Status\") i \
             [mail](mailto:bok@example.pl), [cennik](/zamawianie).\n\n\
             <script>alert(1)</script>\n\n\
             Tekst <img src=x onerror=alert(1)> dalej <b onclick=\"x()\">b</b>.\n\n\
             [a](javascript:alert(1)) [b](JaVaScRiPt:alert(2)) [c](jav&#x61;script:alert(3)) \
             [d](data:text/html;base64,PHNjcmlwdD4=) [e](vbscript:msgbox) <javascript:alert(4)>\n\n\
             ![obrazek](https://tracker.example/x.png)\n\n[ref][r]\n\n[r]: javascript:alert(5)\n",
        );
        assert!(html.contains("<h3>Awaria</h3>"), "{html}");
        assert!(html.contains("<strong>Uwaga</strong>"));
        assert!(html.contains("<a href=\"https://status.example.pl\" title=\"Status\">status</a>"));
        assert!(html.contains("<a href=\"mailto:bok@example.pl\">mail</a>"));
        assert!(html.contains("<a href=\"/zamawianie\">cennik</a>"));
        assert!(
            html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{html}"
        );
        assert!(
            html.contains("&lt;img src=x onerror=alert(1)&gt;"),
            "{html}"
        );
        let lower = html.to_lowercase();
        for bad in [
            "<script",
            "<img",
            "<b ",
            "onerror=\"",
            "href=\"javascript",
            "href=\"data",
            "href=\"vbscript",
            "src=\"",
        ] {
            assert!(!lower.contains(bad), "{bad} in {html}");
        }
        for text in ["a", "b", "c", "d", "e", "ref", "obrazek"] {
            assert!(html.contains(text));
        }
        assert_eq!(html.matches("<a ").count(), 3, "{html}");
    }

    #[test]
    fn link_targets() {
        for ok in [
            "https://a.pl/x?y#z",
            "HTTP://a.pl",
            "mailto:x@y.pl",
            "/faq",
            "faq#a",
            "?strona=2",
            "#top",
            "",
        ] {
            assert!(safe_url(ok), "{ok}");
        }
        for bad in [
            "javascript:x",
            " javascript:x",
            "java\tscript:x",
            "data:x",
            "file:///etc/passwd",
            "ftp://a",
        ] {
            assert!(!safe_url(bad), "{bad}");
        }
    }
}
