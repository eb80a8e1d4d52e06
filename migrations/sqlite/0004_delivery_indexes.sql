-- Counting a digest's deliveries by state, and finding whether any are left, must not
-- read every row of a large digest each time a worker finishes a batch.
CREATE INDEX deliveries_digest_status ON deliveries(digest_id, status);
