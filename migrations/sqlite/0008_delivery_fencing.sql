-- Delivery across instances on the database's clock, with messages that are the same
-- bytes when they go again.
--
-- 1. When a delivery was first claimed (the database's clock, seconds): its message's
--    Date header, so that a resend after a crash carries the same one.
ALTER TABLE deliveries ADD COLUMN built_at INTEGER;

-- 2. The key from which each delivery's Message-ID, MIME boundary and link token are
--    derived (HMAC-SHA256 of the delivery's id): every instance, and every attempt,
--    builds the same message. Made here, once, from the database's random source.
CREATE TABLE delivery_key (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    secret TEXT NOT NULL
);
INSERT INTO delivery_key (id, secret) VALUES (1, lower(hex(randomblob(32))));

-- 3. NEWSDESK_SEND_RATE counted for all instances together: the next free send slot
--    (microseconds since 1970 on the database's clock); a worker takes a few at a time.
CREATE TABLE send_budget (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    next_slot_us INTEGER NOT NULL
);
INSERT INTO send_budget (id, next_slot_us) VALUES (1, 0);
