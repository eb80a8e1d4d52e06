-- Weekly digests: a schedule per list, one digest per (list, period), one delivery row
-- per (digest, subscriber), and what each subscriber has already been sent.

-- Cron with seconds (sec min hour day-of-month month day-of-week), in the list's zone.
ALTER TABLE lists ADD COLUMN schedule_cron TEXT NOT NULL DEFAULT '0 0 8 * * Mon';
ALTER TABLE lists ADD COLUMN schedule_timezone TEXT NOT NULL DEFAULT 'UTC';
-- Fewer items than this and the digest is skipped.
ALTER TABLE lists ADD COLUMN min_items INTEGER NOT NULL DEFAULT 1;
-- A window missed (the service was down) is still sent when caught up within this
-- many minutes; later it is recorded as missed.
ALTER TABLE lists ADD COLUMN grace_minutes INTEGER NOT NULL DEFAULT 1440;

-- Event times are shown in the subscriber's zone, else their institution's.
ALTER TABLE subscribers ADD COLUMN timezone TEXT;
-- Permanent delivery failures since the last delivery that went through.
ALTER TABLE subscribers ADD COLUMN permanent_failures INTEGER NOT NULL DEFAULT 0;

CREATE TABLE digests (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    list_id INTEGER NOT NULL REFERENCES lists(id) ON DELETE CASCADE,
    -- ISO week, e.g. 2023-W45.
    period TEXT NOT NULL,
    period_start INTEGER NOT NULL,
    period_end INTEGER NOT NULL,
    -- News published from here to period_start goes in.
    news_since INTEGER NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('sending', 'sent', 'skipped', 'missed', 'cancelled')),
    trigger TEXT NOT NULL CHECK (trigger IN ('schedule', 'late', 'manual')),
    -- The schedule window this digest answers, when it came from the schedule.
    scheduled_for INTEGER,
    created_at INTEGER NOT NULL,
    completed_at INTEGER,
    note TEXT NOT NULL DEFAULT '',
    -- Whatever ticks, restarts or other instances do, one digest per list and period.
    UNIQUE (list_id, period)
);

CREATE TABLE digest_items (
    digest_id INTEGER NOT NULL REFERENCES digests(id) ON DELETE CASCADE,
    item_id INTEGER NOT NULL REFERENCES items(id) ON DELETE CASCADE,
    section TEXT NOT NULL CHECK (section IN ('coming_up', 'news')),
    position INTEGER NOT NULL,
    PRIMARY KEY (digest_id, item_id)
);

-- The durable outbox: one row per subscriber of a digest, made when it is built.
CREATE TABLE deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    digest_id INTEGER NOT NULL REFERENCES digests(id) ON DELETE CASCADE,
    subscriber_id INTEGER NOT NULL REFERENCES subscribers(id) ON DELETE CASCADE,
    status TEXT NOT NULL CHECK (status IN ('pending', 'sending', 'sent', 'failed', 'skipped', 'cancelled')),
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    -- A worker holds a 'sending' row until then; after it, the row is free again
    -- (the worker died). Workers renew the leases of the rows they hold.
    lease_until INTEGER,
    claimed_by TEXT,
    last_error TEXT,
    permanent_failure INTEGER NOT NULL DEFAULT 0,
    message_id TEXT,
    sent_at INTEGER,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    UNIQUE (digest_id, subscriber_id)
);
CREATE INDEX deliveries_due ON deliveries(status, next_attempt_at);
CREATE INDEX deliveries_subscriber ON deliveries(subscriber_id);

-- What each subscriber was last sent of each item, so no item is repeated and an item
-- edited since can be marked as updated.
CREATE TABLE delivered_items (
    subscriber_id INTEGER NOT NULL REFERENCES subscribers(id) ON DELETE CASCADE,
    item_id INTEGER NOT NULL REFERENCES items(id) ON DELETE CASCADE,
    digest_id INTEGER NOT NULL,
    item_updated_at INTEGER NOT NULL,
    PRIMARY KEY (subscriber_id, item_id)
);
