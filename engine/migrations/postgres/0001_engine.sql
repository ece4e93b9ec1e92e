-- The engine's own tables (PostgreSQL). Same names, columns and meaning as
-- the SQLite migration; JSON is kept as validated text so both backends hand
-- the engine the same values.

CREATE TABLE auftrag_orders (
    id          BIGSERIAL PRIMARY KEY,
    order_type  TEXT   NOT NULL,
    requester   TEXT   NOT NULL,
    host        TEXT,
    state       TEXT   NOT NULL,
    closed      BIGINT NOT NULL DEFAULT 0 CHECK (closed IN (0, 1)),
    created_at  TEXT   NOT NULL,
    updated_at  TEXT   NOT NULL,
    fields      TEXT   NOT NULL CHECK (jsonb_typeof(fields::jsonb) = 'object'),
    changes     TEXT   NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(changes::jsonb) = 'object'),
    states      TEXT   NOT NULL CHECK (jsonb_typeof(states::jsonb) = 'array'),
    errors      TEXT   NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(errors::jsonb) = 'array'),
    warnings    TEXT   NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(warnings::jsonb) = 'array'),
    accepted    TEXT   NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(accepted::jsonb) = 'array')
);
CREATE INDEX auftrag_orders_requester ON auftrag_orders (requester, id);
CREATE INDEX auftrag_orders_host ON auftrag_orders (host, id);
CREATE INDEX auftrag_orders_state ON auftrag_orders (state, id);

CREATE TABLE auftrag_settings (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE auftrag_staff (
    person TEXT PRIMARY KEY
);
