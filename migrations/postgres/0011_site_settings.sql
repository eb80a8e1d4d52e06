-- Settings that belong to the database, not to one start of the service.
--
-- `id_authority`: the authority of every `tag:` URI newsdesk mints (entry, feed and
-- digest ids, iCalendar UIDs). It is written once, from the host of the base URL the
-- service first runs with on this database (an existing database: the one it runs with
-- after this migration), and never again: a later NEWSDESK_BASE_URL changes the links,
-- not the ids, so moving the site does not make every item look new to feed readers.
CREATE TABLE site_settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
