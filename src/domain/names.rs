//! The names an admin gives a mailing list or a category in other languages, besides
//! its default `name` (the one shown in a language without a name of its own).

use super::{FieldErrors, Language, Text, language_matches};
use std::collections::BTreeMap;

/// The most characters of a name, the default one's limit.
pub const NAME_CHARS: usize = 200;

/// A list's or a category's names by language tag (`zh` -> `合作院校通讯`). Built by
/// [`Names::parse`] (checked tags and names) or from the store.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Names(BTreeMap<String, String>);

impl Names {
    /// The names of a form as the parsers take them: a blank field is no name in that
    /// language (so clearing a field removes the name), not a bad one.
    pub fn posted(fields: &BTreeMap<String, String>) -> BTreeMap<String, String> {
        fields
            .iter()
            .filter(|(_, n)| !n.trim().is_empty())
            .map(|(t, n)| (t.clone(), n.clone()))
            .collect()
    }

    /// Checks a map of language tag -> name as a client sends it, recording each bad
    /// entry under `names.TAG` (the tag as sent). Tags are normalised as [`Language`]
    /// does; two spellings of one tag are refused.
    pub fn parse(input: &BTreeMap<String, String>, errors: &mut FieldErrors) -> Option<Names> {
        let mut names: BTreeMap<String, String> = BTreeMap::new();
        let mut ok = true;
        for (tag, name) in input {
            let field = format!("names.{tag}");
            let language = errors.check(&field, Language::parse(tag.trim()));
            let text = errors.check(&field, Text::parse(name, NAME_CHARS, true, false));
            match (language, text) {
                (Some(language), Some(text)) => {
                    let tag = language.as_str();
                    if let Some(first) = names.keys().find(|t| t.eq_ignore_ascii_case(tag)) {
                        errors.add(
                            &field,
                            format!("is the language {first:?} again (tags are case-insensitive)"),
                        );
                        ok = false;
                    } else {
                        names.insert(tag.to_owned(), text.into_string());
                    }
                }
                _ => ok = false,
            }
        }
        ok.then_some(Names(names))
    }

    /// Names as the store read them back.
    pub fn from_stored(pairs: impl IntoIterator<Item = (String, String)>) -> Self {
        Self(pairs.into_iter().collect())
    }

    /// The name for a reader of `wanted`, by the rule items follow
    /// ([`language_matches`]): the exact tag, then one of the same primary language;
    /// `default` when the names hold neither.
    pub fn pick<'a>(&'a self, default: &'a str, wanted: &str) -> &'a str {
        let exact = self
            .0
            .iter()
            .find(|(tag, _)| tag.eq_ignore_ascii_case(wanted));
        exact
            .or_else(|| self.0.iter().find(|(tag, _)| language_matches(tag, wanted)))
            .map_or(default, |(_, name)| name.as_str())
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(t, n)| (t.as_str(), n.as_str()))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn to_map(&self) -> BTreeMap<String, String> {
        self.0.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn names_are_picked_by_tag_then_primary_language_else_the_default() {
        let mut errors = FieldErrors::new();
        let names = Names::parse(
            &map(&[("zh", "合作院校通讯"), ("pt-BR", "Parceiros")]),
            &mut errors,
        )
        .unwrap();
        assert!(errors.is_empty());
        assert_eq!(names.pick("Partners", "zh"), "合作院校通讯");
        assert_eq!(names.pick("Partners", "zh-Hans"), "合作院校通讯");
        assert_eq!(names.pick("Partners", "ZH"), "合作院校通讯");
        assert_eq!(names.pick("Partners", "pt"), "Parceiros");
        assert_eq!(names.pick("Partners", "pt-PT"), "Partners");
        assert_eq!(names.pick("Partners", "en"), "Partners");
    }

    #[test]
    fn bad_names_are_named_by_their_tag() {
        let mut errors = FieldErrors::new();
        let names = Names::parse(
            &map(&[
                ("chinese", "中文"),
                ("zh", "  "),
                ("en", "ok"),
                ("EN", "twice"),
                ("pt-BR", "ok"),
                ("pt-br", "twice"),
            ]),
            &mut errors,
        );
        assert!(names.is_none());
        let fields: Vec<&str> = errors.0.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            ["names.chinese", "names.en", "names.pt-br", "names.zh"]
        );
        let mut errors = FieldErrors::new();
        let long = "名".repeat(NAME_CHARS + 1);
        assert!(Names::parse(&map(&[("zh", &long)]), &mut errors).is_none());
        assert_eq!(errors.0[0].field, "names.zh");
    }
}
