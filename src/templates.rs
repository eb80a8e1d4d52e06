//! Handlebars templates: the built-in ones, compiled into the binary so `newsdesk` runs
//! from any directory, and an operator's overrides read from `NEWSDESK_TEMPLATES_DIR`.
//!
//! Every template and label file has a path, the same under `templates/` in the source
//! and in the overrides directory: `web/item.hbs`, `web/partials/header.hbs`,
//! `admin/list.hbs`, `email/digest.html.hbs`, `email/partials/digest_item.txt.hbs`,
//! `email/digest.labels.zh.json`, `web/labels.zh.json` ([`catalog`] lists them). A file
//! found in the directory replaces the built-in of that path once it passes the checks
//! of [`overrides`]; one that does not is refused and the built-in stays in use. [`LiveTemplates`] holds the
//! set in use and, while `serve` runs, reads the directory again every few seconds.
//!
//! Everything renders in strict mode: a variable that is not in the data is an error,
//! not an empty string. Pages and HTML mail escape values for HTML; text mail escapes
//! nothing, as nothing in it is HTML.

mod live;
pub mod overrides;

pub use live::{LiveTemplates, POLL_INTERVAL};
pub use overrides::{Problem, Status};

use crate::i18n::{PageWords, Words};
use anyhow::Context;
use handlebars::Handlebars;
use serde::Serialize;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};

/// `("web/item.hbs", its text)` for each path under `templates/`.
macro_rules! builtin {
    ($($path:literal),* $(,)?) => {
        &[$(($path, include_str!(concat!("../templates/", $path)))),*]
    };
}

/// Every built-in template and label file, by its path (under `templates/` here, and in
/// `NEWSDESK_TEMPLATES_DIR`). What a path is (a page, a partial, a mail part, labels)
/// follows from where it is: see [`Role::of`].
const BUILTIN: &[(&str, &str)] = builtin![
    "web/partials/header.hbs",
    "web/partials/footer.hbs",
    "web/partials/item_card.hbs",
    "web/partials/event_block.hbs",
    "web/index.hbs",
    "web/category.hbs",
    "web/item.hbs",
    "web/not_found.hbs",
    "web/error.hbs",
    "web/subscribe.hbs",
    "web/message.hbs",
    "web/digests.hbs",
    "web/digest.hbs",
    "web/unsubscribe.hbs",
    "web/preferences.hbs",
    // The words of the pages and feeds per language; English is the fallback, and has
    // every key. Only these languages (see `i18n::LABELS`).
    "web/labels.en.json",
    "web/labels.zh.json",
    "admin/partials/admin_head.hbs",
    "admin/partials/admin_foot.hbs",
    "admin/partials/form_errors.hbs",
    "admin/partials/partner_fields.hbs",
    "admin/partials/list_fields.hbs",
    "admin/partials/digest_table.hbs",
    "admin/sign_in.hbs",
    "admin/dashboard.hbs",
    "admin/items.hbs",
    "admin/item_form.hbs",
    "admin/categories.hbs",
    "admin/partners.hbs",
    "admin/partner.hbs",
    "admin/subscribers.hbs",
    "admin/subscriber.hbs",
    "admin/import.hbs",
    "admin/import_preview.hbs",
    "admin/lists.hbs",
    "admin/list.hbs",
    "admin/digest.hbs",
    "admin/users.hbs",
    "admin/account.hbs",
    "admin/templates.hbs",
    // Mail: `NAME.html.hbs` and `NAME.txt.hbs`, with language variants
    // `NAME.LANG.html.hbs` that fall back to the English ones.
    "email/confirm.html.hbs",
    "email/confirm.txt.hbs",
    "email/confirm.zh.html.hbs",
    "email/confirm.zh.txt.hbs",
    "email/digest.html.hbs",
    "email/digest.txt.hbs",
    "email/partials/digest_event.html.hbs",
    "email/partials/digest_event.txt.hbs",
    "email/partials/digest_item.html.hbs",
    "email/partials/digest_item.txt.hbs",
    // The words of the digest per language; English is the fallback, and has every key.
    "email/digest.labels.en.json",
    "email/digest.labels.zh.json",
];

/// `("web/item", its sample data)` for each file under `templates/samples/`.
macro_rules! samples {
    ($($path:literal),* $(,)?) => {
        &[$(($path, include_str!(concat!("../templates/samples/", $path, ".json")))),*]
    };
}

/// The data each page and mail is checked against before an override of it (or of a
/// partial it uses) is taken: what the code gives the template, captured from real
/// renders (`newsdesk templates sample PATH` prints one). Keyed by the template's path
/// without `.hbs` (mail: without `.html.hbs` / `.txt.hbs`, shared by both parts and
/// every language).
const SAMPLES: &[(&str, &str)] = samples![
    "web/index",
    "web/category",
    "web/item",
    "web/not_found",
    "web/error",
    "web/subscribe",
    "web/message",
    "web/digests",
    "web/digest",
    "web/unsubscribe",
    "web/preferences",
    "admin/sign_in",
    "admin/dashboard",
    "admin/items",
    "admin/item_form",
    "admin/categories",
    "admin/partners",
    "admin/partner",
    "admin/subscribers",
    "admin/subscriber",
    "admin/import",
    "admin/import_preview",
    "admin/lists",
    "admin/list",
    "admin/digest",
    "admin/users",
    "admin/account",
    "admin/templates",
    "email/confirm",
    "email/digest",
];

/// Which of the three registries a template lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Registry {
    /// Public and admin pages and their partials, escaped for HTML.
    Pages,
    /// HTML mail parts, escaped for HTML.
    MailHtml,
    /// Text mail parts: nothing escaped.
    MailText,
}

/// What a path in the catalog (or in the overrides directory) is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Role {
    /// A template rendered on its own (a page, a mail part), checked with `sample`.
    Template {
        registry: Registry,
        /// Its name in the registry: `item`, `admin/list`, `digest.html`, `digest.zh.html`.
        name: String,
        /// The key of its sample data in [`SAMPLES`].
        sample: String,
    },
    /// A partial (`{{> name}}`), checked by rendering every template of its registry.
    Partial { registry: Registry, name: String },
    /// The digest's words in one language (its primary subtag).
    Labels { language: String },
    /// The pages' and feeds' words in one language (its primary subtag).
    PageLabels { language: String },
}

impl Role {
    /// What `path` would be. Syntax only: whether the catalog has it is another matter
    /// ([`catalog_role`]).
    pub(crate) fn of(path: &str) -> Option<Role> {
        let segments: Vec<&str> = path.split('/').collect();
        let hbs = |s: &str| {
            s.strip_suffix(".hbs")
                .filter(|n| !n.is_empty())
                .map(str::to_owned)
        };
        match segments.as_slice() {
            ["web", "partials", file] | ["admin", "partials", file] => Some(Role::Partial {
                registry: Registry::Pages,
                name: hbs(file)?,
            }),
            ["web", file] if file.ends_with(".json") => {
                let language = file
                    .strip_prefix("labels.")
                    .and_then(|f| f.strip_suffix(".json"))?;
                let ok = (2..=3).contains(&language.len())
                    && language.bytes().all(|b| b.is_ascii_lowercase());
                ok.then(|| Role::PageLabels {
                    language: language.to_owned(),
                })
            }
            ["web", file] => {
                let name = hbs(file)?;
                Some(Role::Template {
                    registry: Registry::Pages,
                    sample: format!("web/{name}"),
                    name,
                })
            }
            ["admin", file] => {
                let name = format!("admin/{}", hbs(file)?);
                Some(Role::Template {
                    registry: Registry::Pages,
                    sample: name.clone(),
                    name,
                })
            }
            ["email", "partials", file] => {
                let stem = hbs(file)?;
                let (name, registry) = mail_part(&stem)?;
                Some(Role::Partial {
                    registry,
                    name: name.to_owned(),
                })
            }
            ["email", file] => {
                if let Some(language) = file
                    .strip_prefix("digest.labels.")
                    .and_then(|f| f.strip_suffix(".json"))
                {
                    let ok = (2..=3).contains(&language.len())
                        && language.bytes().all(|b| b.is_ascii_lowercase());
                    return ok.then(|| Role::Labels {
                        language: language.to_owned(),
                    });
                }
                let stem = hbs(file)?;
                let (without_part, registry) = mail_part(&stem)?;
                // `digest` or `digest.zh`: a language variant of `digest`.
                let (base, language) = match without_part.split_once('.') {
                    Some((base, language)) => (base, Some(language)),
                    None => (without_part, None),
                };
                if let Some(language) = language
                    && crate::domain::Language::parse(language)
                        .ok()
                        .is_none_or(|l| l.as_str() != language)
                {
                    return None;
                }
                let kind = if registry == Registry::MailHtml {
                    "html"
                } else {
                    "txt"
                };
                Some(Role::Template {
                    registry,
                    name: format!("{without_part}.{kind}"),
                    sample: format!("email/{base}"),
                })
            }
            _ => None,
        }
    }

    /// A word for `newsdesk templates list` and the admin page.
    pub fn kind(&self) -> &'static str {
        match self {
            Role::Template {
                registry: Registry::Pages,
                name,
                ..
            } if name.starts_with("admin/") => "admin page",
            Role::Template {
                registry: Registry::Pages,
                ..
            } => "page",
            Role::Partial {
                registry: Registry::Pages,
                ..
            } => "page partial",
            Role::Template { .. } => "mail",
            Role::Partial { .. } => "mail partial",
            Role::Labels { .. } => "digest labels",
            Role::PageLabels { .. } => "page labels",
        }
    }
}

/// `digest.html` → (`digest`, HTML mail); `digest.txt` → (`digest`, text mail).
fn mail_part(stem: &str) -> Option<(&str, Registry)> {
    if let Some(name) = stem.strip_suffix(".html") {
        Some((name, Registry::MailHtml))
    } else {
        stem.strip_suffix(".txt")
            .map(|name| (name, Registry::MailText))
    }
    .filter(|(name, _)| !name.is_empty())
}

/// Every built-in path with its text, in the catalog's order.
pub fn catalog() -> impl Iterator<Item = (&'static str, &'static str)> {
    BUILTIN.iter().copied()
}

/// The sample data of a template path (`web/item.hbs`, `email/digest.zh.html.hbs`), as
/// JSON text; `None` for partials and label files, which have none of their own.
pub fn sample_of(path: &str) -> Option<&'static str> {
    match Role::of(path)? {
        Role::Template { sample, .. } => SAMPLES
            .iter()
            .find(|(key, _)| *key == sample)
            .map(|(_, json)| *json),
        _ => None,
    }
}

/// Checks the overrides in `dir` as `serve` does, without stopping at a refused one.
pub fn check_dir(dir: &std::path::Path) -> Status {
    match Builtin::load() {
        Ok(builtin) => {
            let scan = overrides::scan(dir);
            overrides::build(&Arc::new(builtin), dir, &scan)
                .status()
                .as_ref()
                .clone()
        }
        Err(e) => Status {
            dir: Some(dir.to_owned()),
            refused: vec![Problem {
                path: String::new(),
                file: "(built-in)".into(),
                line: None,
                reason: format!("{e:#}"),
            }],
            ..Status::default()
        },
    }
}

/// A word for what `path` is (`page`, `mail partial`, `digest labels`, ...).
pub fn kind_of(path: &str) -> &'static str {
    Role::of(path).map_or("unknown", |r| r.kind())
}

/// What `path` is, when an override may have it: a built-in path, a language variant
/// of a built-in mail template, or the labels of a language.
pub(crate) fn catalog_role(path: &str) -> Option<Role> {
    let role = Role::of(path)?;
    if BUILTIN.iter().any(|(p, _)| *p == path) {
        return Some(role);
    }
    match &role {
        // The digest's or the pages' words of a language, built in or an operator's.
        Role::Labels { .. } | Role::PageLabels { .. } => Some(role),
        // `email/digest.fr.html.hbs`: a language variant of a built-in mail template.
        Role::Template {
            registry: Registry::MailHtml | Registry::MailText,
            sample,
            ..
        } if SAMPLES.iter().any(|(key, _)| key == sample) => Some(role),
        _ => None,
    }
}

/// Where `NEWSDESK_TEMPLATE_SAMPLES_OUT` says (a directory; for maintainers, never
/// set in service), keeps the data of the largest render of each template as its sample
/// (`web/item.json`, `email/digest.json`, ...): run the tests with it set and copy what
/// changed into `templates/samples/`, then trim. The largest render is the one most
/// likely to take every branch of the template.
fn capture_sample(registry: Registry, name: &str, data: &impl Serialize) {
    static OUT: std::sync::OnceLock<Option<std::path::PathBuf>> = std::sync::OnceLock::new();
    let Some(dir) = OUT.get_or_init(|| {
        std::env::var_os("NEWSDESK_TEMPLATE_SAMPLES_OUT")
            .filter(|d| !d.is_empty())
            .map(Into::into)
    }) else {
        return;
    };
    let key = match registry {
        Registry::Pages if name.starts_with("admin/") => name.to_owned(),
        Registry::Pages => format!("web/{name}"),
        Registry::MailHtml | Registry::MailText => {
            format!("email/{}", name.split('.').next().unwrap_or(name))
        }
    };
    let Ok(json) = serde_json::to_string_pretty(data) else {
        return;
    };
    let path = dir.join(format!("{key}.json"));
    static WRITING: Mutex<()> = Mutex::new(());
    let _one_at_a_time = lock(&WRITING);
    let kept = std::fs::metadata(&path).map_or(0, |m| m.len());
    if json.len() as u64 > kept
        && let Some(parent) = path.parent()
        && std::fs::create_dir_all(parent).is_ok()
    {
        let _ = std::fs::write(&path, json + "\n");
    }
}

/// The three registries.
#[derive(Debug, Clone)]
pub(crate) struct Registries {
    pages: Handlebars<'static>,
    mail_html: Handlebars<'static>,
    mail_text: Handlebars<'static>,
}

impl Registries {
    fn empty() -> Self {
        let strict = || {
            let mut h = Handlebars::new();
            // A misspelt variable is an error at render time, not an empty string.
            h.set_strict_mode(true);
            h
        };
        let mut mail_text = strict();
        mail_text.register_escape_fn(handlebars::no_escape);
        Self {
            pages: strict(),
            mail_html: strict(),
            mail_text,
        }
    }

    pub(crate) fn get(&self, r: Registry) -> &Handlebars<'static> {
        match r {
            Registry::Pages => &self.pages,
            Registry::MailHtml => &self.mail_html,
            Registry::MailText => &self.mail_text,
        }
    }

    pub(crate) fn get_mut(&mut self, r: Registry) -> &mut Handlebars<'static> {
        match r {
            Registry::Pages => &mut self.pages,
            Registry::MailHtml => &mut self.mail_html,
            Registry::MailText => &mut self.mail_text,
        }
    }
}

/// The built-in templates and labels, compiled and parsed once.
#[derive(Debug)]
pub(crate) struct Builtin {
    registries: Registries,
    /// (primary language, labels); English first.
    labels: Vec<(String, serde_json::Value)>,
    /// Registry name → built-in path, for messages.
    paths: Vec<(Registry, String, &'static str)>,
}

impl Builtin {
    pub(crate) fn load() -> anyhow::Result<Self> {
        let mut registries = Registries::empty();
        let mut labels = Vec::new();
        let mut paths = Vec::new();
        for (path, source) in BUILTIN {
            match Role::of(path).with_context(|| format!("{path} is not a template path"))? {
                Role::Template { registry, name, .. } | Role::Partial { registry, name } => {
                    registries
                        .get_mut(registry)
                        .register_template_string(&name, *source)
                        .with_context(|| format!("compiling template {path}"))?;
                    paths.push((registry, name, *path));
                }
                Role::Labels { language } => {
                    let value: serde_json::Value =
                        serde_json::from_str(source).with_context(|| format!("reading {path}"))?;
                    labels.push((language, value));
                }
                // Parsed by `i18n::PageWords::builtin`, from the same files.
                Role::PageLabels { .. } => {}
            }
        }
        labels.sort_by_key(|(language, _)| *language != "en");
        anyhow::ensure!(
            labels.first().is_some_and(|(l, _)| l == "en"),
            "the English digest labels are built in"
        );
        Ok(Self {
            registries,
            labels,
            paths,
        })
    }

    /// The English labels: every label file must have each of their keys.
    pub(crate) fn english_labels(&self) -> &serde_json::Value {
        &self.labels[0].1
    }

    /// The built-in digest labels of `language`, when there is a file of it.
    pub(crate) fn labels_of(&self, language: &str) -> Option<&serde_json::Value> {
        self.labels
            .iter()
            .find(|(l, _)| l == language)
            .map(|(_, v)| v)
    }

    pub(crate) fn source_of(path: &str) -> Option<&'static str> {
        BUILTIN.iter().find(|(p, _)| *p == path).map(|(_, s)| *s)
    }
}

/// A set of templates in use: the built-ins with the overrides that passed their checks.
/// [`LiveTemplates`] swaps in a new one when the overrides change; a render holds on to
/// the one it started with.
#[derive(Debug)]
pub struct Templates {
    current: Registries,
    builtin: Arc<Builtin>,
    /// (primary language, labels); English first.
    labels: Vec<(String, serde_json::Value)>,
    /// The pages' and feeds' words.
    page_words: Arc<PageWords>,
    /// Which swap of [`LiveTemplates`] made this set (0: the first).
    generation: u64,
    /// The registries that hold an override (the others are the built-in ones).
    overridden: HashSet<Registry>,
    /// (registry, name) → path in the overrides directory, of each override in use.
    override_paths: Vec<(Registry, String, String)>,
    status: Arc<Status>,
    /// The overrides that failed a render and were replaced by the built-in, already
    /// logged.
    fell_back: Mutex<HashSet<(Registry, String)>>,
}

/// A rendered mail: its two parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedMail {
    pub html: String,
    pub text: String,
}

impl Templates {
    /// The built-in templates alone.
    pub fn load() -> anyhow::Result<Self> {
        Ok(Self::builtin_only(Arc::new(Builtin::load()?)))
    }

    pub(crate) fn builtin_only(builtin: Arc<Builtin>) -> Self {
        Self {
            current: builtin.registries.clone(),
            labels: builtin.labels.clone(),
            page_words: Arc::new(PageWords::builtin().clone()),
            generation: 0,
            builtin,
            overridden: HashSet::new(),
            override_paths: Vec::new(),
            status: Arc::new(Status::default()),
            fell_back: Mutex::new(HashSet::new()),
        }
    }

    pub(crate) fn with_overrides(
        builtin: Arc<Builtin>,
        current: Registries,
        labels: Vec<(String, serde_json::Value)>,
        page_words: PageWords,
        override_paths: Vec<(Registry, String, String)>,
        status: Status,
    ) -> Self {
        Self {
            current,
            labels,
            page_words: Arc::new(page_words),
            generation: 0,
            builtin,
            overridden: override_paths.iter().map(|(r, _, _)| *r).collect(),
            override_paths,
            status: Arc::new(status),
            fell_back: Mutex::new(HashSet::new()),
        }
    }

    /// Which overrides are in use and which were refused.
    pub fn status(&self) -> &Arc<Status> {
        &self.status
    }

    /// The pages' and feeds' words, with the overrides of `web/labels.LANG.json`.
    pub fn page_words(&self) -> &PageWords {
        &self.page_words
    }

    /// The pages' and feeds' words in `language` (its primary subtag), or in English.
    pub fn words(&self, language: &str) -> &Words {
        self.page_words.get(language)
    }

    /// Which swap of [`LiveTemplates`] made this set: a page rendered with it is kept
    /// under this number ([`LiveTemplates::generation`]).
    pub fn generation(&self) -> u64 {
        self.generation
    }

    pub(crate) fn set_generation(&mut self, generation: u64) {
        self.generation = generation;
    }

    /// The digest's words in `language` (its primary subtag), or in English.
    pub fn digest_labels(&self, language: &str) -> &serde_json::Value {
        let primary = crate::domain::primary_language(language);
        &self
            .labels
            .iter()
            .find(|(l, _)| l == primary)
            .unwrap_or(&self.labels[0])
            .1
    }

    /// Renders both parts of a mail, in `language` when a variant exists (of the tag, or
    /// of its primary subtag).
    pub fn render_email(
        &self,
        name: &str,
        language: &str,
        data: &impl Serialize,
    ) -> anyhow::Result<RenderedMail> {
        // `digest.zh-Hans.html`, else `digest.zh.html`, else `digest.html`.
        let primary = crate::domain::primary_language(language);
        let pick = |registry: Registry, kind: &str| {
            [language, primary]
                .iter()
                .map(|l| format!("{name}.{l}.{kind}"))
                .find(|n| self.current.get(registry).has_template(n))
                .unwrap_or_else(|| format!("{name}.{kind}"))
        };
        let html_name = pick(Registry::MailHtml, "html");
        let text_name = pick(Registry::MailText, "txt");
        Ok(RenderedMail {
            html: self
                .render_in(
                    Registry::MailHtml,
                    &html_name,
                    &format!("{name}.html"),
                    data,
                )
                .with_context(|| format!("rendering mail template {html_name}"))?,
            text: self
                .render_in(Registry::MailText, &text_name, &format!("{name}.txt"), data)
                .with_context(|| format!("rendering mail template {text_name}"))?,
        })
    }

    pub fn render(&self, name: &str, data: &impl Serialize) -> anyhow::Result<String> {
        self.render_in(Registry::Pages, name, name, data)
            .with_context(|| format!("rendering template {name}"))
    }

    /// Renders `name`; when an override fails (its check passed on the sample data, but
    /// this data differs), logs it once and renders the built-in (`fallback`, the name
    /// without a language the built-ins lack) instead.
    fn render_in(
        &self,
        registry: Registry,
        name: &str,
        fallback: &str,
        data: &impl Serialize,
    ) -> anyhow::Result<String> {
        capture_sample(registry, fallback, data);
        let failed = match self.current.get(registry).render(name, data) {
            Ok(out) => return Ok(out),
            Err(e) if self.overridden.contains(&registry) => e,
            Err(e) => return Err(e.into()),
        };
        let builtin = &self.builtin.registries.get(registry);
        let fallback = if builtin.has_template(name) {
            name
        } else {
            fallback
        };
        let out = builtin.render(fallback, data).map_err(|_| {
            anyhow::anyhow!(
                "{}",
                overrides::render_problem(
                    &failed,
                    self.file_of(registry, failed.template_name.as_deref().unwrap_or(name)),
                    name,
                )
            )
        })?;
        let first = lock(&self.fell_back).insert((registry, name.to_owned()));
        if first {
            let file = self.file_of(registry, failed.template_name.as_deref().unwrap_or(name));
            tracing::warn!(
                "{}; the built-in template was used (this is said once per template until the \
                 overrides change)",
                overrides::render_problem(&failed, file, name)
            );
        }
        Ok(out)
    }

    /// The file a template name came from: the override's, or the built-in's path.
    fn file_of(&self, registry: Registry, name: &str) -> String {
        if let Some((_, _, path)) = self
            .override_paths
            .iter()
            .find(|(r, n, _)| *r == registry && n == name)
        {
            return match &self.status.dir {
                Some(dir) => dir.join(path).display().to_string(),
                None => path.clone(),
            };
        }
        self.builtin
            .paths
            .iter()
            .find(|(r, n, _)| *r == registry && n == name)
            .map(|(_, _, p)| format!("(built-in) {p}"))
            .unwrap_or_else(|| name.to_owned())
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
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
        let t = Templates::load().unwrap();
        assert_eq!(t.digest_labels("zh")["news"], "新闻");
        assert_eq!(t.digest_labels("zh-Hans")["news"], "新闻");
        assert_eq!(t.digest_labels("fr")["news"], "News");
        let en = t.digest_labels("en").as_object().unwrap();
        let zh = t.digest_labels("zh").as_object().unwrap();
        let keys =
            |m: &serde_json::Map<String, serde_json::Value>| m.keys().cloned().collect::<Vec<_>>();
        assert_eq!(keys(en), keys(zh), "every language has every label");
    }

    #[test]
    fn strict_mode_refuses_missing_values() {
        let t = Templates::load().unwrap();
        assert!(t.render("not_found", &serde_json::json!({})).is_err());
    }

    #[test]
    fn every_built_in_template_renders_with_its_sample_in_strict_mode() {
        let t = Templates::load().unwrap();
        for (path, _) in catalog() {
            let Some(Role::Template { registry, name, .. }) = Role::of(path) else {
                continue;
            };
            let sample = sample_of(path).unwrap_or_else(|| panic!("{path} has no sample"));
            let data: serde_json::Value =
                serde_json::from_str(sample).unwrap_or_else(|e| panic!("{path}'s sample: {e}"));
            t.current
                .get(registry)
                .render(&name, &data)
                .unwrap_or_else(|e| panic!("{path} with its sample: {e}"));
        }
        // And no sample is left over.
        for (key, _) in SAMPLES {
            assert!(
                catalog().any(|(p, _)| sample_of(p).is_some() && p.starts_with(key)),
                "{key} is no template's sample"
            );
        }
    }

    #[test]
    fn paths_say_what_they_are() {
        let template = |registry, name: &str, sample: &str| {
            Some(Role::Template {
                registry,
                name: name.into(),
                sample: sample.into(),
            })
        };
        assert_eq!(
            Role::of("web/item.hbs"),
            template(Registry::Pages, "item", "web/item")
        );
        assert_eq!(
            Role::of("admin/list.hbs"),
            template(Registry::Pages, "admin/list", "admin/list")
        );
        assert_eq!(
            Role::of("email/digest.zh-Hans.txt.hbs"),
            template(Registry::MailText, "digest.zh-Hans.txt", "email/digest")
        );
        assert_eq!(
            Role::of("web/partials/header.hbs"),
            Some(Role::Partial {
                registry: Registry::Pages,
                name: "header".into()
            })
        );
        assert_eq!(
            Role::of("email/digest.labels.fr.json"),
            Some(Role::Labels {
                language: "fr".into()
            })
        );
        assert_eq!(
            Role::of("web/labels.zh.json"),
            Some(Role::PageLabels {
                language: "zh".into()
            })
        );
        assert!(catalog_role("web/labels.zh.json").is_some());
        assert_eq!(
            catalog_role("web/labels.fr.json"),
            Some(Role::PageLabels {
                language: "fr".into()
            }),
            "a language the site adds"
        );
        for not_one in [
            "web/labels.ZH.json",
            "web/other.json",
            "web/item.html",
            "web/.hbs",
            "item.hbs",
            "web/deep/item.hbs",
            "email/digest.hbs",
            "email/digest.labels.FR.json",
            "email/digest.x!.html.hbs",
            "email/partials/digest_item.hbs",
            "../web/item.hbs",
        ] {
            assert_eq!(Role::of(not_one), None, "{not_one}");
        }
        // Known names only, but a mail template may gain a language.
        assert!(catalog_role("web/itme.hbs").is_none());
        assert!(catalog_role("email/digest.fr.html.hbs").is_some());
        assert!(catalog_role("email/welcome.fr.html.hbs").is_none());
        assert!(catalog_role("email/partials/digest_extra.html.hbs").is_none());
    }
}
