-- Limits shared by every instance on this database, counted on the database's clock
-- (seconds since 1970): N instances allow what one allows, and a restart resets nothing.

-- A fixed window per (scope, key): `hits` granted since `window_start`; the window ends
-- at `expires_at`; `last_at` is the last hit granted (for a least gap between hits).
-- Scopes: 'subscribe' (client address), 'sign_in' (client address, failures),
-- 'confirm_mail' (an address's confirmation mails).
CREATE TABLE rate_limits (
    scope TEXT NOT NULL,
    key TEXT NOT NULL,
    window_start BIGINT NOT NULL,
    hits BIGINT NOT NULL,
    last_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (scope, key)
);
CREATE INDEX rate_limits_expires ON rate_limits (expires_at);

-- Failed sign-ins in a row per user name (lower-cased), whether or not a user has that
-- name: a name of nobody locks exactly like an account, so answers do not tell names
-- apart. A row is forgotten a day after its last failure or lock.
CREATE TABLE sign_in_locks (
    name_key TEXT PRIMARY KEY,
    failures BIGINT NOT NULL,
    locked_until BIGINT,
    expires_at BIGINT NOT NULL
);
CREATE INDEX sign_in_locks_expires ON sign_in_locks (expires_at);

INSERT INTO sign_in_locks (name_key, failures, locked_until, expires_at)
SELECT name_key, failed_sign_ins, locked_until, COALESCE(locked_until, 0) + 86400
FROM users WHERE failed_sign_ins > 0 OR locked_until IS NOT NULL;

-- CSV uploads of the admin import pages between upload, preview and apply: in the
-- database, so the next step may reach any instance. `complete` once every chunk is in.
CREATE TABLE import_spools (
    id TEXT PRIMARY KEY,
    owner_user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    file_name TEXT NOT NULL,
    bytes BIGINT NOT NULL DEFAULT 0,
    complete BIGINT NOT NULL DEFAULT 0,
    expires_at BIGINT NOT NULL
);
CREATE INDEX import_spools_expires ON import_spools (expires_at);

CREATE TABLE import_spool_chunks (
    spool_id TEXT NOT NULL REFERENCES import_spools(id) ON DELETE CASCADE,
    seq BIGINT NOT NULL,
    data BYTEA NOT NULL,
    PRIMARY KEY (spool_id, seq)
);

-- Work done once per database whichever instance comes first (the demo content): the
-- instance holding the lease does it; `done_at` marks it done.
CREATE TABLE once_jobs (
    name TEXT PRIMARY KEY,
    lease_until BIGINT NOT NULL,
    done_at BIGINT
);
