-- The names of mailing lists and categories in other languages. The row's own `name`
-- stays the default one: shown in a language without a name here. A language tag is
-- stored as the domain's Language normalises it (`zh`, `zh-Hans`); a write replaces
-- a list's or a category's set of names with the rest of its row.
CREATE TABLE list_names (
    list_id BIGINT NOT NULL REFERENCES lists(id) ON DELETE CASCADE,
    language TEXT NOT NULL,
    name TEXT NOT NULL,
    PRIMARY KEY (list_id, language)
);

CREATE TABLE category_names (
    category_id BIGINT NOT NULL REFERENCES categories(id) ON DELETE CASCADE,
    language TEXT NOT NULL,
    name TEXT NOT NULL,
    PRIMARY KEY (category_id, language)
);
