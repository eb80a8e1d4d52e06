//! Overrides from `NEWSDESK_TEMPLATES_DIR`: reading the directory, and checking each file
//! before it takes the place of the built-in.
//!
//! What is read: the directory mirrors `templates/` (`web/item.hbs`,
//! `email/partials/digest_item.txt.hbs`, `email/digest.labels.zh.json`, ...; the names
//! are those of [`super::catalog`], plus language variants of the mail templates,
//! `email/NAME.LANG.html.hbs`, and the labels of more languages,
//! `email/digest.labels.LANG.json`; the pages' and feeds' words,
//! `web/labels.LANG.json`, of the built-in languages only, since a site language needs
//! its words built in).
//! - A `.hbs` or `.json` file with any other name is refused, as a broken template is: a
//!   misspelt name would otherwise do nothing without a word.
//! - Other files (a README, `static/site.css`) are ignored, with a warning.
//! - Hidden entries (a leading `.`: editors' swap files, `.git`, Kubernetes' `..data`)
//!   are skipped without one.
//! - A symbolic link is followed only when it resolves inside the directory; one that
//!   leads out of it is refused, so nothing outside the directory is ever read. Names
//!   come from the directory listing, never from a request.
//! - Files over [`MAX_FILE_BYTES`] or not UTF-8 are refused.
//!
//! What is checked, in strict mode: a template parses, and renders against the sample
//! data of its template (see [`super::sample_of`]); a partial renders inside every
//! template of its kind (pages, HTML mail or text mail) with their sample data. A
//! variable the sample lacks is found here, not in a reader's mail. Label files are a
//! JSON object with every key the built-in English labels have, each of the same type,
//! keeping the placeholders (`{name}`) of the built-in value; the page words' date
//! patterns must read as chrono patterns, and `weekdays` name seven days.
//! Partials are checked first, then the templates with the partials taken, then labels.

use super::{Builtin, Registries, Registry, Role, Templates, catalog, catalog_role};
use crate::i18n::PageWords;
use handlebars::{RenderError, RenderErrorReason, TemplateError};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

/// The largest template or label file read.
pub const MAX_FILE_BYTES: u64 = 256 * 1024;

/// How deep the directory is read (`web/partials/x.hbs` is two levels down).
const MAX_DEPTH: usize = 3;

/// A file that was refused: the built-in stays in use for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// Its path in the directory, such as `web/item.hbs`.
    pub path: String,
    /// The file, for messages.
    pub file: String,
    /// The line the problem is on, when it is on one.
    pub line: Option<usize>,
    pub reason: String,
}

impl fmt::Display for Problem {
    /// `FILE:LINE: reason`, or `FILE: reason` for a file as a whole.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}: {}", self.file, self.reason),
            None => write!(f, "{}: {}", self.file, self.reason),
        }
    }
}

/// Which overrides are in use, which were refused, and what was ignored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Status {
    /// `NEWSDESK_TEMPLATES_DIR`; `None`: the built-ins alone.
    pub dir: Option<PathBuf>,
    /// Paths of the overrides in use, such as `email/digest.html.hbs`.
    pub overridden: Vec<String>,
    /// Files refused, with why; the built-in is used for each.
    pub refused: Vec<Problem>,
    /// Files that are no template (not `.hbs` or `.json`), left alone.
    pub ignored: Vec<String>,
}

impl Status {
    /// Whether `path` is overridden, refused or built in.
    pub fn state_of(&self, path: &str) -> &'static str {
        if self.overridden.iter().any(|p| p == path) {
            "overridden"
        } else if self.refused.iter().any(|p| p.path == path) {
            "refused"
        } else {
            "built-in"
        }
    }
}

/// What a reading of the directory found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Scan {
    /// (path, text) of each template and label file with a known name.
    pub files: Vec<(String, String)>,
    /// Files refused before any check (unknown name, a link out, unreadable).
    pub problems: Vec<Problem>,
    pub ignored: Vec<String>,
}

/// Reads the directory (see the module's doc for what is read).
pub(crate) fn scan(dir: &Path) -> Scan {
    let mut scan = Scan::default();
    match dir.canonicalize() {
        Ok(root) if root.is_dir() => walk(dir, &root, "", 0, &mut scan),
        Ok(_) => scan
            .problems
            .push(whole(dir, "", "is not a directory".into())),
        Err(e) => scan
            .problems
            .push(whole(dir, "", format!("cannot be read: {e}"))),
    }
    scan.files.sort();
    scan.problems.sort_by(|a, b| a.path.cmp(&b.path));
    scan.ignored.sort();
    scan
}

fn whole(dir: &Path, path: &str, reason: String) -> Problem {
    Problem {
        path: path.to_owned(),
        file: if path.is_empty() {
            dir.display().to_string()
        } else {
            dir.join(path).display().to_string()
        },
        line: None,
        reason,
    }
}

fn walk(dir: &Path, root: &Path, prefix: &str, depth: usize, scan: &mut Scan) {
    let here = dir.join(prefix);
    let entries = match std::fs::read_dir(&here) {
        Ok(entries) => entries,
        Err(e) => {
            scan.problems
                .push(whole(dir, prefix, format!("cannot be read: {e}")));
            return;
        }
    };
    let mut names: Vec<String> = Vec::new();
    for entry in entries {
        match entry {
            Ok(entry) => match entry.file_name().into_string() {
                Ok(name) => names.push(name),
                Err(name) => scan
                    .ignored
                    .push(format!("{prefix}/{}", name.to_string_lossy())),
            },
            Err(e) => scan
                .problems
                .push(whole(dir, prefix, format!("cannot be read: {e}"))),
        }
    }
    names.sort();
    for name in names {
        if name.starts_with('.') {
            continue;
        }
        let path = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}/{name}")
        };
        let file = dir.join(&path);
        // Links are followed, but only to what is inside the directory.
        let real = match file.canonicalize() {
            Ok(real) => real,
            Err(e) => {
                scan.problems
                    .push(whole(dir, &path, format!("cannot be read: {e}")));
                continue;
            }
        };
        if !real.starts_with(root) {
            scan.problems.push(whole(
                dir,
                &path,
                format!(
                    "leads to {}, outside NEWSDESK_TEMPLATES_DIR: not read",
                    real.display()
                ),
            ));
            continue;
        }
        let meta = match std::fs::metadata(&real) {
            Ok(meta) => meta,
            Err(e) => {
                scan.problems
                    .push(whole(dir, &path, format!("cannot be read: {e}")));
                continue;
            }
        };
        if meta.is_dir() {
            if depth + 1 < MAX_DEPTH {
                walk(dir, root, &path, depth + 1, scan);
            } else {
                scan.ignored.push(format!("{path}/"));
            }
            continue;
        }
        let template_like = name.ends_with(".hbs") || name.ends_with(".json");
        if !meta.is_file() || !template_like {
            scan.ignored.push(path);
            continue;
        }
        if catalog_role(&path).is_none() {
            let reason = if path.starts_with("web/labels.") && name.ends_with(".json") {
                "the pages' and feeds' words are web/labels.LANG.json, LANG a language's \
                 primary subtag in lower case (web/labels.zh.json, or web/labels.fr.json \
                 for a language the site adds); not used"
            } else {
                "no template has this name (`newsdesk templates list` names them); not used"
            };
            scan.problems.push(whole(dir, &path, reason.into()));
            continue;
        }
        if meta.len() > MAX_FILE_BYTES {
            scan.problems.push(whole(
                dir,
                &path,
                format!(
                    "is {} bytes; a template may have {MAX_FILE_BYTES} at most",
                    meta.len()
                ),
            ));
            continue;
        }
        match std::fs::read(&real).map(String::from_utf8) {
            Ok(Ok(text)) => scan.files.push((path, text)),
            Ok(Err(_)) => scan
                .problems
                .push(whole(dir, &path, "is not UTF-8 text".into())),
            Err(e) => scan
                .problems
                .push(whole(dir, &path, format!("cannot be read: {e}"))),
        }
    }
}

/// The templates: the built-ins with each override of `scan` that passes its checks.
pub(crate) fn build(builtin: &Arc<Builtin>, dir: &Path, scan: &Scan) -> Templates {
    let mut registries = builtin.registries.clone();
    let mut labels = builtin.labels.clone();
    let mut page_words = PageWords::builtin().clone();
    let mut refused = scan.problems.clone();
    let mut overridden = Vec::new();
    let mut override_paths = Vec::new();
    let mut files: Vec<(&str, Role, &str)> = scan
        .files
        .iter()
        .filter_map(|(path, text)| {
            catalog_role(path).map(|role| (path.as_str(), role, text.as_str()))
        })
        .collect();
    // Partials first: the templates are then checked with the partials that were taken.
    files.sort_by_key(|(path, role, _)| {
        let rank = match role {
            Role::Partial { .. } => 0,
            Role::Template { .. } => 1,
            Role::Labels { .. } | Role::PageLabels { .. } => 2,
        };
        (rank, *path)
    });
    for (path, role, text) in files {
        let file = dir.join(path).display().to_string();
        let checked = match &role {
            Role::Partial { registry, name } => {
                check_partial(&mut registries, *registry, name, path, text, &file)
            }
            Role::Template {
                registry,
                name,
                sample,
            } => check_template(&mut registries, *registry, name, sample, path, text, &file),
            Role::Labels { language } => check_labels(
                text,
                builtin.english_labels(),
                builtin.labels_of(language),
                path,
                &file,
            )
            .map(
                |value| match labels.iter_mut().find(|(l, _)| l == language) {
                    Some(slot) => slot.1 = value,
                    None => labels.push((language.clone(), value)),
                },
            ),
            Role::PageLabels { language } => {
                check_page_labels(text, language, path, &file).map(|map| {
                    page_words.replace(language, map);
                })
            }
        };
        match checked {
            Ok(()) => {
                if let Role::Partial { registry, name } | Role::Template { registry, name, .. } =
                    &role
                {
                    override_paths.push((*registry, name.clone(), path.to_owned()));
                }
                overridden.push(path.to_owned());
            }
            Err(problem) => refused.push(problem),
        }
    }
    overridden.sort();
    refused.sort_by(|a, b| a.path.cmp(&b.path));
    let status = Status {
        dir: Some(dir.to_owned()),
        overridden,
        refused,
        ignored: scan.ignored.clone(),
    };
    Templates::with_overrides(
        builtin.clone(),
        registries,
        labels,
        page_words,
        override_paths,
        status,
    )
}

/// The sample data of each template, parsed once.
fn sample(key: &str) -> &'static serde_json::Value {
    static PARSED: OnceLock<HashMap<&'static str, serde_json::Value>> = OnceLock::new();
    static EMPTY: serde_json::Value = serde_json::Value::Null;
    PARSED
        .get_or_init(|| {
            super::SAMPLES
                .iter()
                .map(|(key, json)| {
                    (
                        *key,
                        serde_json::from_str(json).expect("the samples are valid JSON"),
                    )
                })
                .collect()
        })
        .get(key)
        .unwrap_or(&EMPTY)
}

/// A partial: it parses, and every built-in template of its registry renders with it.
fn check_partial(
    registries: &mut Registries,
    registry: Registry,
    name: &str,
    path: &str,
    text: &str,
    file: &str,
) -> Result<(), Problem> {
    let handlebars = registries.get_mut(registry);
    handlebars
        .register_template_string(name, text)
        .map_err(|e| template_problem(&e, path, file))?;
    let users = catalog().filter_map(|(p, _)| match Role::of(p) {
        Some(Role::Template {
            registry: r,
            name,
            sample,
        }) if r == registry => Some((name, sample)),
        _ => None,
    });
    for (template, sample_key) in users {
        if let Err(e) = handlebars.render(&template, sample(&sample_key)) {
            let problem = checked_problem(&e, name, &template, path, file);
            restore(handlebars, name, path);
            return Err(problem);
        }
    }
    Ok(())
}

/// A page or mail part: it parses, and renders with its sample data.
fn check_template(
    registries: &mut Registries,
    registry: Registry,
    name: &str,
    sample_key: &str,
    path: &str,
    text: &str,
    file: &str,
) -> Result<(), Problem> {
    let handlebars = registries.get_mut(registry);
    handlebars
        .register_template_string(name, text)
        .map_err(|e| template_problem(&e, path, file))?;
    if let Err(e) = handlebars.render(name, sample(sample_key)) {
        let problem = checked_problem(&e, name, name, path, file);
        restore(handlebars, name, path);
        return Err(problem);
    }
    Ok(())
}

/// Puts the built-in back after a refused override (or removes an added variant).
fn restore(handlebars: &mut handlebars::Handlebars<'static>, name: &str, path: &str) {
    match Builtin::source_of(path) {
        Some(source) => {
            // The built-in compiled at start-up; it compiles again.
            let _ = handlebars.register_template_string(name, source);
        }
        None => handlebars.unregister_template(name),
    }
}

/// A label file: a JSON object with every key of the English labels, of the same type,
/// each keeping the placeholders (`{name}`) of the built-in value (of `own`, the
/// built-in file of its language, when there is one; else of English): the code fills
/// those in, and a dropped one would drop a reader's name or a count without a word.
fn check_labels(
    text: &str,
    english: &serde_json::Value,
    own: Option<&serde_json::Value>,
    path: &str,
    file: &str,
) -> Result<serde_json::Value, Problem> {
    let problem = |line: Option<usize>, reason: String| Problem {
        path: path.to_owned(),
        file: file.to_owned(),
        line,
        reason,
    };
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| {
        let reason = e.to_string();
        // serde_json ends its message with the place, given here as the line.
        let reason = match reason.rfind(" at line ") {
            Some(at) => format!("not valid JSON: {} (column {})", &reason[..at], e.column()),
            None => format!("not valid JSON: {reason}"),
        };
        problem(Some(e.line().max(1)), reason)
    })?;
    let Some(object) = value.as_object() else {
        return Err(problem(
            Some(1),
            "must be a JSON object of labels, as the built-in".into(),
        ));
    };
    let english_keys = english.as_object().map(|o| o.iter()).into_iter().flatten();
    let mut missing = Vec::new();
    let mut mistyped = None;
    for (key, built_in) in english_keys {
        match object.get(key) {
            None => missing.push(format!("\"{key}\"")),
            Some(v) if json_type(v) != json_type(built_in) && mistyped.is_none() => {
                mistyped = Some(problem(
                    Some(line_of(text, key)),
                    format!(
                        "the label \"{key}\" must be a {}, as in the built-in (got a {})",
                        json_type(built_in),
                        json_type(v)
                    ),
                ));
            }
            Some(_) => {}
        }
    }
    if !missing.is_empty() {
        return Err(problem(
            Some(1),
            format!(
                "{} label(s) missing: {} (a label file needs every label of the built-in \
                 English one)",
                missing.len(),
                missing.join(", ")
            ),
        ));
    }
    if let Some(mistyped) = mistyped {
        return Err(mistyped);
    }
    let built_in = own.unwrap_or(english);
    for (key, v) in object {
        let (Some(given), Some(wanted)) = (
            v.as_str(),
            built_in
                .get(key)
                .or_else(|| english.get(key))
                .and_then(|b| b.as_str()),
        ) else {
            continue;
        };
        let dropped: Vec<String> = placeholders(wanted)
            .into_iter()
            .filter(|p| !given.contains(p.as_str()))
            .collect();
        if !dropped.is_empty() {
            return Err(problem(
                Some(line_of(text, key)),
                format!(
                    "the label \"{key}\" must keep {} of the built-in ({wanted:?}): the \
                     service fills it in (got {given:?})",
                    dropped.join(" and ")
                ),
            ));
        }
    }
    Ok(value)
}

/// The placeholders of a label: `{name}`, `{count}`, ... (lower case and `_`).
fn placeholders(label: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = label;
    while let Some(open) = rest.find('{') {
        rest = &rest[open + 1..];
        if let Some(close) = rest.find('}') {
            let name = &rest[..close];
            if !name.is_empty() && name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
                found.push(format!("{{{name}}}"));
            }
        }
    }
    found
}

/// The keys of the page words that are chrono patterns (`%-d %B %Y`).
const DATE_PATTERNS: &[&str] = &[
    "date",
    "event_start",
    "event_end_same_day",
    "event_end_other_day",
    "event_zone",
];

/// The pages' and feeds' words of `language` (one with a built-in file): as a digest
/// label file, every value a string, the date patterns readable and seven weekdays.
fn check_page_labels(
    text: &str,
    language: &str,
    path: &str,
    file: &str,
) -> Result<BTreeMap<String, String>, Problem> {
    let builtin = PageWords::builtin();
    let as_json = |l: &str| serde_json::to_value(builtin.get(l)).unwrap_or_default();
    let english = as_json("en");
    let own = as_json(language);
    let value = check_labels(text, &english, Some(&own), path, file)?;
    let problem = |key: &str, reason: String| Problem {
        path: path.to_owned(),
        file: file.to_owned(),
        line: Some(line_of(text, key)),
        reason,
    };
    let mut map = BTreeMap::new();
    for (key, v) in value.as_object().into_iter().flatten() {
        if let Some(v) = v.as_str() {
            map.insert(key.clone(), v.to_owned());
        }
    }
    // A language the site adds names itself: its own name in the language switch.
    let own_name = format!("language_{language}");
    if !crate::i18n::has_words(language) && !map.contains_key(&own_name) {
        return Err(Problem {
            path: path.to_owned(),
            file: file.to_owned(),
            line: Some(1),
            reason: format!(
                "a language without built-in words needs \"{own_name}\", its own name in \
                 the language switch (\"Français\" for fr)"
            ),
        });
    }
    for key in DATE_PATTERNS {
        let pattern = map[*key].replace("{weekday}", "x");
        if chrono::format::StrftimeItems::new(&pattern).any(|i| i == chrono::format::Item::Error) {
            return Err(problem(
                key,
                format!(
                    "the label \"{key}\" is a date pattern (chrono's strftime: %-d %B %Y), and \
                     {pattern:?} is not one"
                ),
            ));
        }
    }
    let weekdays = map["weekdays"].split_whitespace().count();
    if weekdays != 7 {
        return Err(problem(
            "weekdays",
            format!(
                "the label \"weekdays\" must name the seven days from Monday, separated by \
                 spaces (got {weekdays})"
            ),
        ));
    }
    Ok(map)
}

fn json_type(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "true or false",
        serde_json::Value::Number(_) => "number",
        serde_json::Value::String(_) => "string",
        serde_json::Value::Array(_) => "list",
        serde_json::Value::Object(_) => "object",
    }
}

/// The first line naming `"key"`.
fn line_of(text: &str, key: &str) -> usize {
    let quoted = format!("\"{key}\"");
    text.lines().position(|l| l.contains(&quoted)).unwrap_or(0) + 1
}

/// A template that does not parse: its line and why.
fn template_problem(e: &TemplateError, path: &str, file: &str) -> Problem {
    let (line, reason) = match e.pos() {
        Some((line, column)) => (Some(line), format!("{} (column {column})", e.reason())),
        None => (None, e.reason().to_string()),
    };
    Problem {
        path: path.to_owned(),
        file: file.to_owned(),
        line,
        reason: format!("does not parse: {reason}"),
    }
}

/// A failed check of the override `name` (`path`) while rendering `rendering` with its
/// sample data.
fn checked_problem(
    e: &RenderError,
    name: &str,
    rendering: &str,
    path: &str,
    file: &str,
) -> Problem {
    let mut problem = render_problem(e, file.to_owned(), rendering);
    problem.path = path.to_owned();
    // An error inside another template (a partial this one calls, or the page that
    // calls this partial) has that template's line, not this file's.
    if let Some(other) = e.template_name.as_deref()
        && other != name
    {
        problem.line = None;
        problem.reason = format!("{} (in the template {other})", problem.reason);
    }
    problem
}

/// A render error as `FILE:LINE: reason`; `rendering` is the template that was asked for.
pub(crate) fn render_problem(e: &RenderError, file: String, rendering: &str) -> Problem {
    let reason = match e.reason() {
        RenderErrorReason::MissingVariable(Some(variable)) => format!(
            "{{{{{variable}}}}} is not in the data of {} (strict mode: every variable \
             must exist; `newsdesk templates sample` shows the data)",
            shown(rendering)
        ),
        RenderErrorReason::MissingVariable(None) => format!(
            "a variable that is not in the data of {} (strict mode)",
            shown(rendering)
        ),
        RenderErrorReason::PartialNotFound(partial) => {
            format!("there is no partial {partial:?}")
        }
        RenderErrorReason::HelperNotFound(helper) => format!("there is no helper {helper:?}"),
        other => other.to_string(),
    };
    let reason = match e.column_no {
        Some(column) => format!("{reason} (column {column})"),
        None => reason,
    };
    Problem {
        path: String::new(),
        file,
        line: e.line_no,
        reason,
    }
}

/// A registry name as its path says it: `item` → `web/item.hbs`.
fn shown(name: &str) -> String {
    catalog()
        .find(|(p, _)| matches!(Role::of(p), Some(Role::Template { name: n, .. }) if n == name))
        .map(|(p, _)| p.to_owned())
        .unwrap_or_else(|| name.to_owned())
}

#[cfg(test)]
mod tests {
    use super::super::lock;
    use super::*;

    fn dir_with(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (path, text) in files {
            let file = dir.path().join(path);
            std::fs::create_dir_all(file.parent().unwrap()).unwrap();
            std::fs::write(file, text).unwrap();
        }
        dir
    }

    fn built(dir: &Path) -> Templates {
        build(&Arc::new(Builtin::load().unwrap()), dir, &scan(dir))
    }

    #[test]
    fn a_good_override_is_used_and_a_broken_one_refused_with_file_line_and_reason() {
        let item = Builtin::source_of("web/item.hbs").unwrap();
        let dir = dir_with(&[
            (
                "web/item.hbs",
                &item.replace("</article>", "<p>OVERRIDDEN</p></article>"),
            ),
            (
                "web/index.hbs",
                "{{> header}}\n<p>{{#if items}}\n{{titel}}{{/if}}</p>",
            ),
            ("web/category.hbs", "line one\n{{#if items}}\n{{/each}}\n"),
            ("email/digest.labels.zh.json", "{\"news\": \"新闻\"}"),
            ("web/itme.hbs", "typo"),
            ("README.md", "notes"),
            (".item.hbs.swp", "editor"),
        ]);
        let t = built(dir.path());
        let status = t.status();
        assert_eq!(status.overridden, vec!["web/item.hbs"]);
        let refused: Vec<String> = status.refused.iter().map(|p| p.to_string()).collect();
        let root = dir.path().display();
        assert_eq!(refused.len(), 4, "{refused:#?}");
        assert!(
            refused[0].starts_with(&format!("{root}/email/digest.labels.zh.json:1: "))
                && refused[0].contains(" label(s) missing: ")
                && refused[0].contains("\"archive\""),
            "{refused:#?}"
        );
        assert!(
            refused[1].starts_with(&format!("{root}/web/category.hbs:3: does not parse")),
            "{refused:#?}"
        );
        assert!(
            refused[2].starts_with(&format!(
                "{root}/web/index.hbs:3: {{{{titel}}}} is not in the data of web/index.hbs"
            )),
            "{refused:#?}"
        );
        assert!(
            refused[3].starts_with(&format!("{root}/web/itme.hbs: no template has this name")),
            "{refused:#?}"
        );
        assert_eq!(status.ignored, vec!["README.md"]);
    }

    #[test]
    fn a_link_out_of_the_directory_is_not_read() {
        let outside = dir_with(&[("item.hbs", "secret {{title}}")]);
        let dir = dir_with(&[]);
        std::fs::create_dir(dir.path().join("web")).unwrap();
        std::os::unix::fs::symlink(
            outside.path().join("item.hbs"),
            dir.path().join("web/item.hbs"),
        )
        .unwrap();
        std::os::unix::fs::symlink(outside.path(), dir.path().join("email")).unwrap();
        let t = built(dir.path());
        let status = t.status();
        assert!(status.overridden.is_empty());
        assert_eq!(status.refused.len(), 2, "{:#?}", status.refused);
        for p in &status.refused {
            assert!(p.reason.contains("outside NEWSDESK_TEMPLATES_DIR"), "{p}");
        }
        // A link inside the directory (as Kubernetes mounts a ConfigMap) is followed.
        let footer = Builtin::source_of("web/partials/footer.hbs").unwrap();
        let dir = dir_with(&[(
            "..data/web/partials/footer.hbs",
            &format!("<!-- mine -->{footer}"),
        )]);
        std::os::unix::fs::symlink("..data/web", dir.path().join("web")).unwrap();
        let t = built(dir.path());
        assert_eq!(t.status().overridden, vec!["web/partials/footer.hbs"]);
        assert!(t.status().refused.is_empty(), "{:#?}", t.status().refused);
    }

    #[test]
    fn an_override_that_fails_on_real_data_gives_way_to_the_built_in() {
        // The sample item is an event; an override that reads the event without asking
        // passes its check, and fails on an item that is not one.
        let item = Builtin::source_of("web/item.hbs").unwrap().replace(
            ">{{item.title}}</h1>",
            ">{{item.title}}</h1><p>At {{item.event.venue}}</p>",
        );
        let dir = dir_with(&[("web/item.hbs", &item)]);
        let t = built(dir.path());
        assert_eq!(t.status().overridden, vec!["web/item.hbs"]);
        let mut data: serde_json::Value =
            serde_json::from_str(super::super::sample_of("web/item.hbs").unwrap()).unwrap();
        let with_event = t.render("item", &data).unwrap();
        assert!(with_event.contains("<p>At "), "{with_event}");
        data["item"]["event"] = serde_json::Value::Null;
        let without = t.render("item", &data).unwrap();
        assert!(!without.contains("<p>At "), "the built-in: {without}");
        assert!(without.contains("<h1"));
        // Said once per template.
        assert_eq!(lock(&t.fell_back).len(), 1);
        t.render("item", &data).unwrap();
        assert_eq!(lock(&t.fell_back).len(), 1);
    }

    #[test]
    fn a_mail_template_may_gain_a_language_and_the_labels_one_more() {
        let fr = Builtin::source_of("email/digest.labels.en.json")
            .unwrap()
            .replace("\"News\"", "\"Actualités\"");
        let dir = dir_with(&[
            (
                "email/digest.zh.txt.hbs",
                "ZH {{list_name}} {{labels.news}}",
            ),
            ("email/digest.labels.fr.json", &fr),
        ]);
        let t = built(dir.path());
        assert_eq!(
            t.status().overridden,
            vec!["email/digest.labels.fr.json", "email/digest.zh.txt.hbs"]
        );
        let data: serde_json::Value =
            serde_json::from_str(super::super::sample_of("email/digest.html.hbs").unwrap())
                .unwrap();
        let zh = t.render_email("digest", "zh", &data).unwrap();
        assert!(zh.text.starts_with("ZH "), "{}", zh.text);
        let en = t.render_email("digest", "en", &data).unwrap();
        assert!(!en.text.starts_with("ZH "));
        assert_eq!(t.digest_labels("fr-CA")["news"], "Actualités");
        assert_eq!(t.digest_labels("de")["news"], "News");
    }

    #[test]
    fn page_words_may_be_overridden_for_the_built_in_languages_and_are_checked() {
        let zh = Builtin::source_of("web/labels.zh.json").unwrap();
        let good = zh.replace("\"首页\"", "\"主页\"");
        let t = built(dir_with(&[("web/labels.zh.json", &good)]).path());
        assert_eq!(t.status().overridden, vec!["web/labels.zh.json"]);
        assert_eq!(t.words("zh-Hans").get("home"), "主页");
        assert_eq!(t.words("en").get("home"), "Home");
        assert_eq!(crate::i18n::words("zh").get("home"), "首页", "the built-in");

        let en = Builtin::source_of("web/labels.en.json").unwrap();
        let cases = [
            (
                "web/labels.zh.json",
                zh.replace("  \"home\": \"首页\",\n", ""),
                "1: 1 label(s) missing: \"home\"",
            ),
            (
                "web/labels.zh.json",
                zh.replace("\"首页\"", "[\"首页\"]"),
                "the label \"home\" must be a string, as in the built-in (got a list)",
            ),
            (
                "web/labels.en.json",
                en.replace("\"{count} item(s)\"", "\"some items\""),
                "the label \"item_count\" must keep {count} of the built-in",
            ),
            (
                "web/labels.en.json",
                en.replace("\"%-d %B %Y\"", "\"%Q\""),
                "the label \"date\" is a date pattern",
            ),
            (
                "web/labels.en.json",
                en.replace("Mon Tue", "MonTue"),
                "the label \"weekdays\" must name the seven days",
            ),
            (
                "web/labels.FR.json",
                en.to_owned(),
                "primary subtag in lower case",
            ),
        ];
        for (path, text, reason) in cases {
            let dir = dir_with(&[(path, &text)]);
            let t = built(dir.path());
            let status = t.status();
            assert!(status.overridden.is_empty(), "{path}: {status:#?}");
            let problem = status.refused[0].to_string();
            assert!(
                problem.starts_with(&format!("{}/{path}:", dir.path().display()))
                    && problem.contains(reason),
                "{problem}"
            );
            if !path.ends_with("FR.json") {
                let key = reason.split('"').nth(1).unwrap();
                let line = text
                    .lines()
                    .position(|l| l.contains(&format!("\"{key}\"")))
                    .map_or(1, |n| n + 1);
                let line = if reason.starts_with("1: ") { 1 } else { line };
                assert_eq!(status.refused[0].line, Some(line), "{problem}");
            }
            assert_eq!(t.words("zh").get("home"), "首页", "the built-in stays");
            assert_eq!(t.words("en").get("item_count"), "{count} item(s)");
        }
    }

    /// What a poll costs: `cargo test --lib templates::overrides::tests::cost
    /// -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn cost_of_a_poll_and_of_a_check() {
        let files: Vec<(&str, &str)> = super::super::catalog().collect();
        let dir = dir_with(&files);
        let builtin = Arc::new(Builtin::load().unwrap());
        let n = 200;
        let start = std::time::Instant::now();
        for _ in 0..n {
            std::hint::black_box(scan(dir.path()));
        }
        let per_scan = start.elapsed() / n;
        let scanned = scan(dir.path());
        let start = std::time::Instant::now();
        for _ in 0..20 {
            std::hint::black_box(build(&builtin, dir.path(), &scanned));
        }
        let per_build = start.elapsed() / 20;
        println!(
            "{} files: a poll (read and compare) {per_scan:?}, a check of all of them {per_build:?}",
            files.len()
        );
    }
}
