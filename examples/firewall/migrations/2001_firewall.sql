-- The firewall example domain: people and the rules table the firewall reads.
CREATE TABLE fw_person (
    id   TEXT PRIMARY KEY,
    name TEXT NOT NULL
);

CREATE TABLE fw_rule (
    id          INTEGER PRIMARY KEY,
    order_id    INTEGER NOT NULL,
    source      TEXT NOT NULL,
    destination TEXT NOT NULL,
    port        INTEGER NOT NULL,
    protocol    TEXT NOT NULL,
    hours       INTEGER NOT NULL
);
