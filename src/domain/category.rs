//! A stored category of the content tree.

use chrono::{DateTime, Utc};

/// A stored category.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Category {
    pub id: i64,
    pub slug: String,
    pub name: String,
    pub description: String,
    /// The parent's slug; `None` at the top of the tree.
    pub parent: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The last write to anything in the category's subtree.
    pub content_changed_at: DateTime<Utc>,
}
