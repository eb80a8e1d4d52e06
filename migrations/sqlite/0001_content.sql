-- Content: a tree of categories, items in one or more of them, API tokens.
-- Times are Unix seconds (INTEGER) so both backends compare and sort them alike.

CREATE TABLE categories (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    slug TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    parent_id INTEGER REFERENCES categories(id),
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    -- Moved forward whenever an item in this category or a descendant is written,
    -- including when it leaves: a feed's Last-Modified must move on deletions too.
    content_changed_at INTEGER NOT NULL
);
CREATE INDEX categories_parent ON categories(parent_id);

CREATE TABLE items (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    slug TEXT NOT NULL UNIQUE,
    title TEXT NOT NULL,
    summary TEXT NOT NULL,
    body_markdown TEXT NOT NULL,
    -- Rendered and sanitised once, at write time, not on every read.
    body_html TEXT NOT NULL,
    author TEXT NOT NULL,
    org_unit TEXT NOT NULL,
    language TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('draft', 'published')),
    published_at INTEGER,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    event_starts_at INTEGER,
    event_ends_at INTEGER,
    event_timezone TEXT,
    event_venue TEXT,
    event_online_url TEXT,
    event_mode TEXT CHECK (event_mode IN ('in_person', 'online', 'hybrid')),
    CHECK ((event_starts_at IS NULL) = (event_mode IS NULL))
);
-- Feeds read published items newest first.
CREATE INDEX items_feed ON items(status, published_at DESC, id DESC);
CREATE INDEX items_event ON items(event_starts_at);

CREATE TABLE item_categories (
    item_id INTEGER NOT NULL REFERENCES items(id) ON DELETE CASCADE,
    -- No cascade: a category that holds items is not deleted behind the writer's back.
    category_id INTEGER NOT NULL REFERENCES categories(id),
    PRIMARY KEY (item_id, category_id)
);
CREATE INDEX item_categories_category ON item_categories(category_id, item_id);

CREATE TABLE item_tags (
    item_id INTEGER NOT NULL REFERENCES items(id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    tag TEXT NOT NULL,
    PRIMARY KEY (item_id, position)
);

-- Bearer tokens for the admin API, stored as SHA-256 hashes: the token itself is
-- shown once and never kept.
CREATE TABLE api_tokens (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    last_used_at INTEGER
);

-- One row. content_version goes up on every content write; each instance polls it
-- to drop its feed cache when another instance wrote.
CREATE TABLE site_state (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    content_version INTEGER NOT NULL,
    content_changed_at INTEGER NOT NULL
);
INSERT INTO site_state (id, content_version, content_changed_at) VALUES (1, 0, 0);
