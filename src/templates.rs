//! Handlebars templates, compiled once at start-up in strict mode and built into the
//! binary, so `newsdesk` runs from any directory.

use anyhow::Context;
use handlebars::Handlebars;
use serde::Serialize;

const WEB_TEMPLATES: &[(&str, &str)] = &[
    (
        "header",
        include_str!("../templates/web/partials/header.hbs"),
    ),
    (
        "footer",
        include_str!("../templates/web/partials/footer.hbs"),
    ),
    (
        "item_card",
        include_str!("../templates/web/partials/item_card.hbs"),
    ),
    (
        "event_block",
        include_str!("../templates/web/partials/event_block.hbs"),
    ),
    ("index", include_str!("../templates/web/index.hbs")),
    ("category", include_str!("../templates/web/category.hbs")),
    ("item", include_str!("../templates/web/item.hbs")),
    ("not_found", include_str!("../templates/web/not_found.hbs")),
    ("error", include_str!("../templates/web/error.hbs")),
    ("subscribe", include_str!("../templates/web/subscribe.hbs")),
    ("message", include_str!("../templates/web/message.hbs")),
    ("digests", include_str!("../templates/web/digests.hbs")),
    ("digest", include_str!("../templates/web/digest.hbs")),
    (
        "unsubscribe",
        include_str!("../templates/web/unsubscribe.hbs"),
    ),
    (
        "preferences",
        include_str!("../templates/web/preferences.hbs"),
    ),
];

/// The admin pages (`admin/NAME`) and their partials.
const ADMIN_TEMPLATES: &[(&str, &str)] = &[
    (
        "admin_head",
        include_str!("../templates/admin/partials/admin_head.hbs"),
    ),
    (
        "admin_foot",
        include_str!("../templates/admin/partials/admin_foot.hbs"),
    ),
    (
        "form_errors",
        include_str!("../templates/admin/partials/form_errors.hbs"),
    ),
    (
        "partner_fields",
        include_str!("../templates/admin/partials/partner_fields.hbs"),
    ),
    (
        "list_fields",
        include_str!("../templates/admin/partials/list_fields.hbs"),
    ),
    (
        "digest_table",
        include_str!("../templates/admin/partials/digest_table.hbs"),
    ),
    (
        "admin/sign_in",
        include_str!("../templates/admin/sign_in.hbs"),
    ),
    (
        "admin/dashboard",
        include_str!("../templates/admin/dashboard.hbs"),
    ),
    ("admin/items", include_str!("../templates/admin/items.hbs")),
    (
        "admin/item_form",
        include_str!("../templates/admin/item_form.hbs"),
    ),
    (
        "admin/categories",
        include_str!("../templates/admin/categories.hbs"),
    ),
    (
        "admin/partners",
        include_str!("../templates/admin/partners.hbs"),
    ),
    (
        "admin/partner",
        include_str!("../templates/admin/partner.hbs"),
    ),
    (
        "admin/subscribers",
        include_str!("../templates/admin/subscribers.hbs"),
    ),
    (
        "admin/subscriber",
        include_str!("../templates/admin/subscriber.hbs"),
    ),
    (
        "admin/import",
        include_str!("../templates/admin/import.hbs"),
    ),
    (
        "admin/import_preview",
        include_str!("../templates/admin/import_preview.hbs"),
    ),
    ("admin/lists", include_str!("../templates/admin/lists.hbs")),
    ("admin/list", include_str!("../templates/admin/list.hbs")),
    (
        "admin/digest",
        include_str!("../templates/admin/digest.hbs"),
    ),
    ("admin/users", include_str!("../templates/admin/users.hbs")),
    (
        "admin/account",
        include_str!("../templates/admin/account.hbs"),
    ),
];

/// Mail templates: `NAME.html.hbs` and `NAME.txt.hbs`, with language variants
/// `NAME.LANG.html.hbs` that fall back to the English ones.
const EMAIL_TEMPLATES: &[(&str, &str)] = &[
    (
        "confirm.html",
        include_str!("../templates/email/confirm.html.hbs"),
    ),
    (
        "confirm.txt",
        include_str!("../templates/email/confirm.txt.hbs"),
    ),
    (
        "digest.html",
        include_str!("../templates/email/digest.html.hbs"),
    ),
    (
        "digest.txt",
        include_str!("../templates/email/digest.txt.hbs"),
    ),
];

/// Partials of the mail templates: (name, HTML version, text version).
const EMAIL_PARTIALS: &[(&str, &str, &str)] = &[
    (
        "digest_event",
        include_str!("../templates/email/partials/digest_event.html.hbs"),
        include_str!("../templates/email/partials/digest_event.txt.hbs"),
    ),
    (
        "digest_item",
        include_str!("../templates/email/partials/digest_item.html.hbs"),
        include_str!("../templates/email/partials/digest_item.txt.hbs"),
    ),
];

/// The words of the digest per language; English is the fallback.
const DIGEST_LABELS: &[(&str, &str)] = &[
    (
        "en",
        include_str!("../templates/email/digest.labels.en.json"),
    ),
    (
        "zh",
        include_str!("../templates/email/digest.labels.zh.json"),
    ),
];

/// The digest's words in `language`, or in English.
pub fn digest_labels(language: &str) -> &'static serde_json::Value {
    static PARSED: std::sync::OnceLock<Vec<(&'static str, serde_json::Value)>> =
        std::sync::OnceLock::new();
    let parsed = PARSED.get_or_init(|| {
        DIGEST_LABELS
            .iter()
            .map(|(lang, json)| {
                (
                    *lang,
                    serde_json::from_str(json).expect("digest labels are valid JSON"),
                )
            })
            .collect()
    });
    let primary = language.split('-').next().unwrap_or("en");
    parsed
        .iter()
        .find(|(l, _)| *l == primary)
        .or_else(|| parsed.iter().find(|(l, _)| *l == "en"))
        .map(|(_, v)| v)
        .expect("English labels exist")
}

#[derive(Debug)]
pub struct Templates {
    registry: Handlebars<'static>,
    /// HTML mail parts, escaped for HTML.
    email_html: Handlebars<'static>,
    /// Plain-text mail parts: nothing escaped, since nothing is HTML.
    email_text: Handlebars<'static>,
}

/// A rendered mail: its two parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedMail {
    pub html: String,
    pub text: String,
}

impl Templates {
    pub fn load() -> anyhow::Result<Self> {
        let mut registry = Handlebars::new();
        // A misspelt variable is an error at render time, not an empty string.
        registry.set_strict_mode(true);
        for (name, source) in WEB_TEMPLATES.iter().chain(ADMIN_TEMPLATES) {
            registry
                .register_template_string(name, source)
                .with_context(|| format!("compiling template {name}"))?;
        }
        let mut email_html = Handlebars::new();
        email_html.set_strict_mode(true);
        let mut email_text = Handlebars::new();
        email_text.set_strict_mode(true);
        email_text.register_escape_fn(handlebars::no_escape);
        for (name, html, text) in EMAIL_PARTIALS {
            email_html
                .register_partial(name, html)
                .with_context(|| format!("compiling mail partial {name}"))?;
            email_text
                .register_partial(name, text)
                .with_context(|| format!("compiling mail partial {name}"))?;
        }
        for (name, source) in EMAIL_TEMPLATES {
            let registry = if name.ends_with(".txt") {
                &mut email_text
            } else {
                &mut email_html
            };
            registry
                .register_template_string(name, source)
                .with_context(|| format!("compiling mail template {name}"))?;
        }
        Ok(Self {
            registry,
            email_html,
            email_text,
        })
    }

    /// Renders both parts of a mail, in `language` when a variant exists.
    pub fn render_email(
        &self,
        name: &str,
        language: &str,
        data: &impl Serialize,
    ) -> anyhow::Result<RenderedMail> {
        let pick = |registry: &Handlebars<'static>, kind: &str| {
            let localised = format!("{name}.{language}.{kind}");
            if registry.has_template(&localised) {
                localised
            } else {
                format!("{name}.{kind}")
            }
        };
        let html_name = pick(&self.email_html, "html");
        let text_name = pick(&self.email_text, "txt");
        Ok(RenderedMail {
            html: self
                .email_html
                .render(&html_name, data)
                .with_context(|| format!("rendering mail template {html_name}"))?,
            text: self
                .email_text
                .render(&text_name, data)
                .with_context(|| format!("rendering mail template {text_name}"))?,
        })
    }

    pub fn render(&self, name: &str, data: &impl Serialize) -> anyhow::Result<String> {
        self.registry
            .render(name, data)
            .with_context(|| format!("rendering template {name}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_templates_compile() {
        Templates::load().unwrap();
    }

    #[test]
    fn digest_labels_fall_back_to_english() {
        assert_eq!(digest_labels("zh")["news"], "新闻");
        assert_eq!(digest_labels("zh-Hans")["news"], "新闻");
        assert_eq!(digest_labels("fr")["news"], "News");
        let en = digest_labels("en").as_object().unwrap();
        let zh = digest_labels("zh").as_object().unwrap();
        let keys =
            |m: &serde_json::Map<String, serde_json::Value>| m.keys().cloned().collect::<Vec<_>>();
        assert_eq!(keys(en), keys(zh), "every language has every label");
    }

    #[test]
    fn strict_mode_refuses_missing_values() {
        let t = Templates::load().unwrap();
        assert!(t.render("not_found", &serde_json::json!({})).is_err());
    }
}
