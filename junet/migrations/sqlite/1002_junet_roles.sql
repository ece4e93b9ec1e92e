-- Roles the thesis's access rules need beside the device database (§3):
-- deputies and IT officers. Own tables; the six thesis tables stay as they are.

-- A deputy may change or delete the devices assigned to them: one device
-- (DEVICE), all devices of the admin who named them (DEVICE and ORG null), or
-- all devices of an org unit (ORG, named by its IT officer). UNTIL ends it.
CREATE TABLE auftrag_deputies (
    ID         INTEGER PRIMARY KEY AUTOINCREMENT,
    DEPUTY     INTEGER NOT NULL,
    NAMED_BY   INTEGER NOT NULL,
    DEVICE     INTEGER,
    ORG        TEXT,
    UNTIL      TEXT,
    CREATED_AT TEXT NOT NULL,
    CHECK (DEVICE IS NULL OR ORG IS NULL)
);
CREATE INDEX auftrag_deputies_deputy ON auftrag_deputies (DEPUTY);

-- IT officers (IT-Beauftragte) of org units.
CREATE TABLE auftrag_it_officers (
    PERS_KEY INTEGER NOT NULL,
    ORG      TEXT    NOT NULL,
    PRIMARY KEY (PERS_KEY, ORG)
);
