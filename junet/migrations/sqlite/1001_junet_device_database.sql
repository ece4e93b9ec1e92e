-- The JuNet device database (thesis §2.1). Table and column names are those
-- of the existing database, because other programs read it.

-- d_pers: persons (kept by JSC dispatch; read here).
CREATE TABLE d_pers (
    PERS_KEY INTEGER PRIMARY KEY,
    NAME     TEXT NOT NULL,
    VORNAME  TEXT,
    SEX      TEXT,
    TITEL    TEXT,
    ORG      TEXT,
    EMAIL    TEXT,
    VORWAHL  TEXT,
    TEL      TEXT
);

-- x_device: devices.
CREATE TABLE x_device (
    DV_OBJ_ID   INTEGER PRIMARY KEY,
    DV_LABEL    TEXT NOT NULL,
    SERIAL      TEXT,
    DV_CLASS    TEXT,
    TYPE        TEXT,
    DV_BUILDING TEXT,
    DV_ROOM     TEXT,
    DV_LOC_ORG  TEXT,
    PERSDATA    TEXT CHECK (PERSDATA IN ('Y', 'N')),
    ARRIVAL     TEXT
);
CREATE INDEX x_device_label ON x_device (DV_LABEL);

-- n_netname: subnets.
CREATE TABLE n_netname (
    NN_OBJ_ID      INTEGER PRIMARY KEY,
    NN_NET_ADDR    TEXT NOT NULL,
    SUBNET_MASK    TEXT NOT NULL,
    NN_VLAN_NUM    INTEGER,
    NN_NAME        TEXT,
    MAIN_NAME      TEXT CHECK (MAIN_NAME IN ('Y', 'N')),
    NN_S_SCOPE     TEXT,
    NN_DESC        TEXT,
    NN_V4_STATE    TEXT CHECK (NN_V4_STATE IN ('Y', 'N')),
    NN_V6_STATE    TEXT CHECK (NN_V6_STATE IN ('Y', 'N')),
    NN_V6_NETPREF  TEXT,
    NN_V6_AUTOCONF TEXT CHECK (NN_V6_AUTOCONF IN ('Y', 'N'))
);

-- x_port: interfaces.
CREATE TABLE x_port (
    PT_OBJ_ID       INTEGER PRIMARY KEY,
    PT_DEV_ADDR     TEXT,
    NET_OBJ_ID      INTEGER REFERENCES n_netname (NN_OBJ_ID),
    HARDW_ADDR      TEXT,
    SSH             TEXT CHECK (SSH IN ('Y', 'N')),
    INET6_ADDR_TYPE TEXT CHECK (INET6_ADDR_TYPE IN ('EUI64', '4to6')),
    LLA             TEXT,
    GUA             TEXT
);
CREATE INDEX x_port_hardw_addr ON x_port (HARDW_ADDR);
CREATE INDEX x_port_dev_addr ON x_port (PT_DEV_ADDR);

-- x_link: device -> admin (exactly one), users, ports (at least one).
CREATE TABLE x_link (
    CLASS_H  TEXT    NOT NULL,
    OBJ_ID_H INTEGER NOT NULL,
    CLASS_L  TEXT    NOT NULL CHECK (CLASS_L IN ('PORT', 'ADMIN', 'USER')),
    OBJ_ID_L INTEGER NOT NULL,
    PRIMARY KEY (OBJ_ID_H, CLASS_L, OBJ_ID_L)
);
CREATE INDEX x_link_low ON x_link (CLASS_L, OBJ_ID_L);

-- n_devname: aliases; (DN_NAME, DOMAIN) is unique in the whole network.
CREATE TABLE n_devname (
    DN_NAME   TEXT    NOT NULL,
    DOMAIN    TEXT    NOT NULL,
    PT_OBJ_ID INTEGER NOT NULL REFERENCES x_port (PT_OBJ_ID),
    CANONICAL TEXT    NOT NULL CHECK (CANONICAL IN ('Y', 'N')),
    PRIMARY KEY (DN_NAME, DOMAIN)
);
CREATE INDEX n_devname_port ON n_devname (PT_OBJ_ID);
