-- Digests built in chunks, and per-recipient rows pruned after a retention period.
--
-- 1. A digest's outbox is built a chunk of readers per transaction. build_cursor is NULL
--    once the digest is built. While it is built it holds the last subscriber id whose
--    delivery exists (0 at the start), and -1 once every delivery exists and the held
--    rows are being released. A large digest's rows are written "held" (next_attempt_at
--    far in the future, so no worker claims them) and released together at the end: a
--    digest whose build stopped half-way sends nothing until the build is resumed.
ALTER TABLE digests ADD COLUMN build_cursor BIGINT;

-- 2. Once the deliveries of a finished digest are older than the retention period, their
--    totals are kept here (pruned_at set) and the per-recipient rows are deleted.
ALTER TABLE digests ADD COLUMN pruned_at BIGINT;
ALTER TABLE digests ADD COLUMN sent_count BIGINT NOT NULL DEFAULT 0;
ALTER TABLE digests ADD COLUMN failed_count BIGINT NOT NULL DEFAULT 0;
ALTER TABLE digests ADD COLUMN skipped_count BIGINT NOT NULL DEFAULT 0;
ALTER TABLE digests ADD COLUMN cancelled_count BIGINT NOT NULL DEFAULT 0;
