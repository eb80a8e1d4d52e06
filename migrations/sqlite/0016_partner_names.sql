-- The names of partner institutions in other languages, as for lists and categories
-- (0015): the row's own `name` stays the default one. A reader of a language reads
-- their institution's name in it, where it has one (a digest's intro).
CREATE TABLE partner_names (
    partner_id INTEGER NOT NULL REFERENCES partners(id) ON DELETE CASCADE,
    language TEXT NOT NULL,
    name TEXT NOT NULL,
    PRIMARY KEY (partner_id, language)
);
