-- The web pages (issue 21): sign-in sessions, one-time sign-in links, and
-- the claims staff put on orders they work on.

-- A signed-in browser. The cookie holds a random secret; the table keeps
-- its SHA-256 (a leaked table opens no session), the bearer token the
-- session acts with (checked like any token on every request, so a revoked
-- token ends the session), the form token against CSRF, and the end.
CREATE TABLE auftrag_ui_sessions (
    id         TEXT PRIMARY KEY,
    person     TEXT NOT NULL,
    token      TEXT NOT NULL,
    csrf       TEXT NOT NULL,
    expires_at TEXT NOT NULL
);

-- A one-time sign-in link (`auftrag login-link`): SHA-256 of its secret;
-- the row is deleted when the link is used.
CREATE TABLE auftrag_login_links (
    id         TEXT PRIMARY KEY,
    person     TEXT NOT NULL,
    expires_at TEXT NOT NULL
);

-- Claims, as events: claim, take_over (of another's claim), unclaim. The
-- order's current claim is its latest event when that is a claim or a
-- take-over whose until has not passed; the events are part of the
-- order's history document (`claims`).
CREATE TABLE auftrag_claims (
    id       BIGSERIAL PRIMARY KEY,
    order_id BIGINT NOT NULL,
    person   TEXT NOT NULL,
    event    TEXT NOT NULL,
    at       TEXT NOT NULL,
    until    TEXT
);
CREATE INDEX auftrag_claims_order ON auftrag_claims (order_id, id);
