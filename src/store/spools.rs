//! Uploads waiting between the steps of the admin import (upload, preview, apply): in
//! the database, in chunks, so that any instance can take the next step and an upload
//! costs no memory. Each belongs to the user who sent it and expires.

use super::{Store, StoreResult};

/// Import uploads: `store.spools()`.
#[derive(Clone, Copy)]
pub struct Spools<'a> {
    pub(super) store: &'a Store,
}

/// A complete upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spool {
    pub id: String,
    pub file_name: String,
    pub bytes: i64,
    /// Its chunks are numbered 0 to `chunks - 1`.
    pub chunks: i64,
}

impl Spools<'_> {
    /// Starts an upload of `owner`'s, kept for `keep_secs` (database time).
    pub async fn create(
        self,
        id: &str,
        owner: i64,
        file_name: &str,
        keep_secs: i64,
    ) -> StoreResult<()> {
        let now = self.store.db_now_secs();
        sqlx::query(&format!(
            "INSERT INTO import_spools (id, owner_user_id, file_name, bytes, complete, expires_at)
             VALUES ($1, $2, $3, 0, 0, {now} + $4)"
        ))
        .bind(id)
        .bind(owner)
        .bind(file_name)
        .bind(keep_secs)
        .execute(&self.store.pool)
        .await?;
        Ok(())
    }

    /// Adds chunk number `seq`.
    pub async fn append(self, id: &str, seq: i64, data: Vec<u8>) -> StoreResult<()> {
        sqlx::query("INSERT INTO import_spool_chunks (spool_id, seq, data) VALUES ($1, $2, $3)")
            .bind(id)
            .bind(seq)
            .bind(data)
            .execute(&self.store.pool)
            .await?;
        Ok(())
    }

    /// Every chunk is in: the upload can be used.
    pub async fn complete(self, id: &str, bytes: i64) -> StoreResult<()> {
        sqlx::query("UPDATE import_spools SET complete = 1, bytes = $1 WHERE id = $2")
            .bind(bytes)
            .bind(id)
            .execute(&self.store.pool)
            .await?;
        Ok(())
    }

    /// `owner`'s complete upload `id`, unless it expired.
    pub async fn find(self, id: &str, owner: i64) -> StoreResult<Option<Spool>> {
        let now = self.store.db_now_secs();
        let row: Option<(String, String, i64, i64)> = sqlx::query_as(&format!(
            "SELECT s.id, s.file_name, s.bytes,
                    (SELECT COUNT(*) FROM import_spool_chunks c WHERE c.spool_id = s.id)
             FROM import_spools s
             WHERE s.id = $1 AND s.owner_user_id = $2 AND s.complete = 1 AND s.expires_at > {now}"
        ))
        .bind(id)
        .bind(owner)
        .fetch_optional(&self.store.pool)
        .await?;
        Ok(row.map(|(id, file_name, bytes, chunks)| Spool {
            id,
            file_name,
            bytes,
            chunks,
        }))
    }

    /// Chunk number `seq` of upload `id`.
    pub async fn chunk(self, id: &str, seq: i64) -> StoreResult<Option<Vec<u8>>> {
        Ok(sqlx::query_scalar(
            "SELECT data FROM import_spool_chunks WHERE spool_id = $1 AND seq = $2",
        )
        .bind(id)
        .bind(seq)
        .fetch_optional(&self.store.pool)
        .await?)
    }

    /// Removes an upload (applied, refused or abandoned); true when there was one.
    pub async fn delete(self, id: &str) -> StoreResult<bool> {
        let mut tx = self.store.write_tx().await?;
        sqlx::query("DELETE FROM import_spool_chunks WHERE spool_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let gone = sqlx::query("DELETE FROM import_spools WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(gone == 1)
    }
}
