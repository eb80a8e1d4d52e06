-- Language versions of an item. The item's own row holds the original (its `language`
-- column says which); this table holds the other versions, one per language, with the
-- words a reader reads: title, summary, body (Markdown and its sanitised HTML) and, for
-- events, the venue and a free text on how to take part (`event_mode_text`). Times,
-- links, categories and tags are the item's and shared by every version.
CREATE TABLE item_translations (
    item_id BIGINT NOT NULL REFERENCES items(id) ON DELETE CASCADE,
    language TEXT NOT NULL,
    title TEXT NOT NULL,
    summary TEXT NOT NULL,
    body_markdown TEXT NOT NULL,
    body_html TEXT NOT NULL,
    event_venue TEXT,
    event_mode_text TEXT,
    PRIMARY KEY (item_id, language)
);

-- The original's words on how to take part in an event ("Hybrid: Hall A and Tencent
-- Meeting"); when empty, pages and mails say the mode in the reader's language.
ALTER TABLE items ADD COLUMN event_mode_text TEXT;
