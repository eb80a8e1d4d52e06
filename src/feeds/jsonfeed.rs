//! stub
use super::{FeedEntry, FeedMeta};
pub fn render(_meta: &FeedMeta, _entries: &[FeedEntry]) -> Vec<u8> { Vec::new() }
