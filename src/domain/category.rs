//! A stored category of the content tree.

use super::Names;
use chrono::{DateTime, Utc};

/// A stored category.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Category {
    pub id: i64,
    pub slug: String,
    /// The default name: shown in a language without a name in `names`.
    pub name: String,
    /// Its names in other languages.
    pub names: Names,
    pub description: String,
    /// The parent's slug; `None` at the top of the tree.
    pub parent: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The last write to anything in the category's subtree.
    pub content_changed_at: DateTime<Utc>,
}

impl Category {
    /// The category's name for a reader of `language` (see [`Names::pick`]).
    pub fn name_in(&self, language: &str) -> &str {
        self.names.pick(&self.name, language)
    }
}
