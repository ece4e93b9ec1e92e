-- The engine's own tables. The six tables of the device database belong to
-- the domain and are never touched here.

-- One row per order: its current state and its history document (thesis
-- Listing 5.3). JSON columns are validated so a broken document cannot be stored.
CREATE TABLE auftrag_orders (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    order_type  TEXT    NOT NULL,
    requester   TEXT    NOT NULL,
    host        TEXT,
    state       TEXT    NOT NULL,
    closed      INTEGER NOT NULL DEFAULT 0 CHECK (closed IN (0, 1)),
    created_at  TEXT    NOT NULL,
    updated_at  TEXT    NOT NULL,
    fields      TEXT    NOT NULL CHECK (json_valid(fields) AND json_type(fields) = 'object'),
    changes     TEXT    NOT NULL DEFAULT '{}' CHECK (json_valid(changes) AND json_type(changes) = 'object'),
    states      TEXT    NOT NULL CHECK (json_valid(states) AND json_type(states) = 'array'),
    errors      TEXT    NOT NULL DEFAULT '[]' CHECK (json_valid(errors) AND json_type(errors) = 'array'),
    warnings    TEXT    NOT NULL DEFAULT '[]' CHECK (json_valid(warnings) AND json_type(warnings) = 'array'),
    accepted    TEXT    NOT NULL DEFAULT '[]' CHECK (json_valid(accepted) AND json_type(accepted) = 'array')
);
CREATE INDEX auftrag_orders_requester ON auftrag_orders (requester, id);
CREATE INDEX auftrag_orders_host ON auftrag_orders (host, id);
CREATE INDEX auftrag_orders_state ON auftrag_orders (state, id);

-- Engine settings: the token signing key, later the agency secret.
CREATE TABLE auftrag_settings (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- IP-management staff: may accept, edit and reject waiting orders.
CREATE TABLE auftrag_staff (
    person TEXT PRIMARY KEY
);
