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
];

#[derive(Debug)]
pub struct Templates {
    registry: Handlebars<'static>,
}

impl Templates {
    pub fn load() -> anyhow::Result<Self> {
        let mut registry = Handlebars::new();
        // A misspelt variable is an error at render time, not an empty string.
        registry.set_strict_mode(true);
        for (name, source) in WEB_TEMPLATES {
            registry
                .register_template_string(name, source)
                .with_context(|| format!("compiling template {name}"))?;
        }
        Ok(Self { registry })
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
    fn strict_mode_refuses_missing_values() {
        let t = Templates::load().unwrap();
        assert!(t.render("not_found", &serde_json::json!({})).is_err());
    }
}
