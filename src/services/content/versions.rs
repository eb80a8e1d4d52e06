//! An item's language versions written one at a time: the stored item read, the
//! version put in or taken out ([`crate::domain::put_version`],
//! [`crate::domain::remove_version`]), and the whole item written back like every
//! other item write (announcements, caches, `updated_at`).
//!
//! Two such writes at once (two translators saving their languages) must not lose
//! each other's version: the write only lands when no write to the item came between
//! the read and it (its revision, [`crate::store::Content::update_item_unless_changed`]);
//! otherwise it is made again from the item as it is now, a few times before giving up
//! with a conflict. Writes to other items do not count against it.

use super::{html_of, touched};
use crate::app::App;
use crate::domain::{
    Item, ItemDraft, Language, VersionPut, VersionRemoval, VersionWrite, put_version,
    remove_version,
};
use crate::services::{ServiceError, ServiceResult};
use rand::Rng;
use std::time::Duration;

/// Reads and writes tried before a write that keeps being overtaken gives up.
const ATTEMPTS: u32 = 12;

/// Creates or replaces the version of item `id` in `language` (made the original when
/// `write.original` asks): the item written, and whether the version is new.
pub async fn put_item_version(
    app: &App,
    id: i64,
    language: &Language,
    write: VersionWrite,
) -> ServiceResult<(Item, VersionPut)> {
    edit_item(app, id, |item| {
        put_version(item, language, write.clone()).map_err(ServiceError::from)
    })
    .await
}

/// Removes the version of item `id` in `language`; the original cannot be removed.
pub async fn delete_item_version(app: &App, id: i64, language: &Language) -> ServiceResult<Item> {
    let (item, ()) = edit_item(app, id, |item| match remove_version(item, language) {
        Ok(draft) => Ok((draft, ())),
        Err(VersionRemoval::Invalid(errors)) => Err(errors.into()),
        Err(VersionRemoval::Missing) => Err(ServiceError::not_found(format!(
            "version in {} of item {id}",
            language.as_str()
        ))),
    })
    .await?;
    Ok(item)
}

/// Writes the draft `edit` makes from the stored item, unless another write to it came
/// between the read and the write; then again from the item as it is now.
async fn edit_item<T>(
    app: &App,
    id: i64,
    edit: impl Fn(&Item) -> ServiceResult<(ItemDraft, T)>,
) -> ServiceResult<(Item, T)> {
    for attempt in 0..ATTEMPTS {
        if attempt > 0 {
            // Writers overtaken together do not all come back at the same moment.
            let pause = rand::thread_rng().gen_range(1..=5 * u64::from(attempt));
            tokio::time::sleep(Duration::from_millis(pause)).await;
        }
        // The revision first: a write between the two reads fails the write's check.
        let seen = app.store.content().item_revision(id).await?;
        let item = super::item(app, id).await?;
        let Some(seen) = seen else {
            // Made between the two reads (ids are not reused): read again.
            continue;
        };
        let (draft, outcome) = edit(&item)?;
        let written = app
            .store
            .content()
            .update_item_unless_changed(id, &draft, &html_of(&draft), app.clock.now(), seen)
            .await?;
        if let Some(written) = written {
            return Ok((touched(app, written), outcome));
        }
        tracing::debug!(
            item = id,
            attempt,
            "item changed while a version was written"
        );
    }
    Err(ServiceError::conflict(
        "item",
        format!(
            "item {id} kept changing while its version was written ({ATTEMPTS} tries); \
             try again"
        ),
    ))
}
