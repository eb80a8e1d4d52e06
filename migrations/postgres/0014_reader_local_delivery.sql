-- Digests delivered at the schedule's time in each reader's own zone.
--
-- 1. Whose clock a list's schedule is read on: 'list_zone' (the list's, as before) or
--    'reader_zone' (each reader's: their own zone, else their institution's, else the
--    list's; the digest is still built once per week).
ALTER TABLE lists ADD COLUMN schedule_delivery TEXT NOT NULL DEFAULT 'list_zone'
    CHECK (schedule_delivery IN ('list_zone', 'reader_zone'));

-- 2. A reader-local digest's local send time ('2023-11-06T08:00:00', the same in every
--    zone); NULL: every delivery is due when the digest is built.
ALTER TABLE digests ADD COLUMN send_local TEXT;

-- 3. When a reader-local delivery is due (seconds, set at build from the reader's zone;
--    NULL for the others). next_attempt_at starts there; due_at stays, so that a
--    delivery first taken more than the list's grace period after it is not sent.
ALTER TABLE deliveries ADD COLUMN due_at BIGINT;

-- 4. A skipped delivery that was not sent because its reader's time plus the grace
--    period had passed (1), rather than because nothing was new (0); and their number
--    kept with the totals of a pruned digest.
ALTER TABLE deliveries ADD COLUMN missed BIGINT NOT NULL DEFAULT 0;
ALTER TABLE digests ADD COLUMN missed_count BIGINT NOT NULL DEFAULT 0;
