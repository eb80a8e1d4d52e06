-- Fewer writes per digest message.
--
-- 1. The token of a message's personal links (unsubscribe, preferences) is kept as its
--    SHA-256 in the message's own delivery row, written with the mark that records it
--    as sent: no token row, and no index entries, per message.
ALTER TABLE deliveries ADD COLUMN link_hash TEXT;

-- 2. A worker's claim keeps a row 'pending' and moves its next attempt to the end of
--    its lease (the row is due again if the worker dies): one index entry moves per
--    claim, none per status. The due index holds pending rows only, so a row sent
--    leaves it and the index stays the size of what is left to send.
UPDATE deliveries SET status = 'pending', next_attempt_at = COALESCE(lease_until, next_attempt_at)
WHERE status = 'sending';
DROP INDEX deliveries_due;
CREATE INDEX deliveries_due ON deliveries(next_attempt_at) WHERE status = 'pending';
