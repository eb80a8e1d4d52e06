//! Weekly digests' machinery: rendering per subscriber (`render`), the delivery outbox
//! (`outbox`) and the schedule (`schedule`). The workflows (plan, build, preview, dry
//! run, retry, cancel) are in [`crate::services::digests`].

pub mod outbox;
pub mod render;
pub mod schedule;

// The schedule builds through `super::build`; it is moved to src/delivery on another
// branch, which names `crate::services::digests::build` itself.
use crate::services::digests::build;
