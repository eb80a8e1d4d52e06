//! stub
use super::FeedEntry;
use chrono::{DateTime, Utc};
pub fn render(_n: &str, _h: &str, _e: &[FeedEntry], _d: DateTime<Utc>) -> Vec<u8> { Vec::new() }
