-- The people side: partner institutions, subscribers, lists and memberships.

CREATE TABLE partners (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    -- Lowercased name: CSV files name partners in any case.
    name_key TEXT NOT NULL UNIQUE,
    country TEXT NOT NULL DEFAULT '',
    website TEXT,
    timezone TEXT NOT NULL DEFAULT 'UTC',
    language TEXT NOT NULL DEFAULT 'en',
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE TABLE subscribers (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    email TEXT NOT NULL,
    -- The address in lowercase: one subscriber per address, whatever its case.
    email_key TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL DEFAULT '',
    -- Keeping the contact when the partner goes would mail them as somebody they are not.
    partner_id INTEGER REFERENCES partners(id),
    language TEXT NOT NULL DEFAULT 'en',
    status TEXT NOT NULL CHECK (status IN ('pending', 'confirmed', 'unsubscribed', 'bounced', 'blocked')),
    joined_via TEXT NOT NULL CHECK (joined_via IN ('form', 'import', 'admin')),
    consent_at INTEGER,
    consent_source TEXT,
    consent_ip TEXT,
    -- Extra CSV columns, as a JSON object of strings.
    attributes TEXT NOT NULL DEFAULT '{}',
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX subscribers_partner ON subscribers(partner_id);
CREATE INDEX subscribers_status ON subscribers(status);

CREATE TABLE lists (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    slug TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    opt_in TEXT NOT NULL CHECK (opt_in IN ('double', 'single')),
    visibility TEXT NOT NULL CHECK (visibility IN ('public', 'private')),
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE TABLE list_categories (
    list_id INTEGER NOT NULL REFERENCES lists(id) ON DELETE CASCADE,
    category_id INTEGER NOT NULL REFERENCES categories(id),
    PRIMARY KEY (list_id, category_id)
);

-- One row per subscriber and list, so leaving one list keeps the others.
CREATE TABLE memberships (
    list_id INTEGER NOT NULL REFERENCES lists(id) ON DELETE CASCADE,
    subscriber_id INTEGER NOT NULL REFERENCES subscribers(id) ON DELETE CASCADE,
    status TEXT NOT NULL CHECK (status IN ('pending', 'confirmed', 'unsubscribed')),
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    confirmed_at INTEGER,
    unsubscribed_at INTEGER,
    PRIMARY KEY (list_id, subscriber_id)
);
CREATE INDEX memberships_subscriber ON memberships(subscriber_id);
CREATE INDEX memberships_list_status ON memberships(list_id, status);

-- Links sent by mail. Only the SHA-256 of a token is kept; each serves one purpose.
CREATE TABLE subscriber_tokens (
    token_hash TEXT PRIMARY KEY,
    subscriber_id INTEGER NOT NULL REFERENCES subscribers(id) ON DELETE CASCADE,
    purpose TEXT NOT NULL CHECK (purpose IN ('confirm', 'unsubscribe', 'preferences')),
    list_id INTEGER REFERENCES lists(id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER,
    used_at INTEGER
);
CREATE INDEX subscriber_tokens_subscriber ON subscriber_tokens(subscriber_id);

-- What happened to a subscriber, for admins: joined, confirmed, left, bounced.
CREATE TABLE subscriber_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    subscriber_id INTEGER NOT NULL REFERENCES subscribers(id) ON DELETE CASCADE,
    at INTEGER NOT NULL,
    kind TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT ''
);
CREATE INDEX subscriber_events_subscriber ON subscriber_events(subscriber_id, at);
