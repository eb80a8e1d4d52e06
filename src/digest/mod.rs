//! Weekly digests' rendering per subscriber (`render`). The workflows (plan, build,
//! preview, dry run, retry, cancel) are in [`crate::services::digests`]; sending them
//! and the schedule in [`crate::delivery`].

pub mod render;
