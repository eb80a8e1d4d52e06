//! The names of lists, categories and partners in other languages (`list_names`,
//! `category_names`, `partner_names`): read with their owners, replaced with the rest of the owner's row
//! in its transaction.

use super::{StoreResult, placeholders};
use crate::domain::Names;
use sqlx::{Any, Pool, Row, Transaction};
use std::collections::HashMap;

/// Whose names: the table and the column naming the owner.
#[derive(Clone, Copy)]
pub(super) enum Owner {
    List,
    Category,
    Partner,
}

impl Owner {
    fn table(self) -> (&'static str, &'static str) {
        match self {
            Owner::List => ("list_names", "list_id"),
            Owner::Category => ("category_names", "category_id"),
            Owner::Partner => ("partner_names", "partner_id"),
        }
    }
}

/// The names of each of `ids` that has any.
pub(super) async fn read(
    pool: &Pool<Any>,
    owner: Owner,
    ids: &[i64],
) -> StoreResult<HashMap<i64, Names>> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let (table, key) = owner.table();
    let sql = format!(
        "SELECT {key}, language, name FROM {table} WHERE {key} IN ({}) ORDER BY {key}, language",
        placeholders(1, ids.len())
    );
    let mut q = sqlx::query(&sql);
    for id in ids {
        q = q.bind(*id);
    }
    let mut pairs: HashMap<i64, Vec<(String, String)>> = HashMap::new();
    for row in q.fetch_all(pool).await? {
        pairs
            .entry(row.try_get(0)?)
            .or_default()
            .push((row.try_get(1)?, row.try_get(2)?));
    }
    Ok(pairs
        .into_iter()
        .map(|(id, p)| (id, Names::from_stored(p)))
        .collect())
}

/// Replaces the names of `id` with `names`.
pub(super) async fn replace(
    tx: &mut Transaction<'_, Any>,
    owner: Owner,
    id: i64,
    names: &Names,
) -> StoreResult<()> {
    let (table, key) = owner.table();
    sqlx::query(&format!("DELETE FROM {table} WHERE {key} = $1"))
        .bind(id)
        .execute(&mut **tx)
        .await?;
    for (language, name) in names.iter() {
        sqlx::query(&format!(
            "INSERT INTO {table} ({key}, language, name) VALUES ($1, $2, $3)"
        ))
        .bind(id)
        .bind(language)
        .bind(name)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}
