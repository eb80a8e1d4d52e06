-- A count of an item's writes, moved by each one: a write made from the item as read
-- (one language version) lands only when the count is still the one it read, so two
-- such writes cannot lose each other's change, and a write to another item does not
-- count against it (before, the site-wide content version was compared).
ALTER TABLE items ADD COLUMN revision INTEGER NOT NULL DEFAULT 0;
