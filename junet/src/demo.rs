//! Demo data for `auftrag serve --demo`: one person per demo role, a few
//! subnets, and devices with interfaces, aliases and ADMIN/USER/PORT links.
//! Loading it twice changes nothing.

use auftrag_engine::{DemoPerson, EngineError};
use sqlx::AnyConnection;

struct Person {
    role: &'static str,
    key: i64,
    name: &'static str,
    first_name: &'static str,
    sex: &'static str,
    org: &'static str,
    email: &'static str,
    staff: bool,
}

#[allow(clippy::too_many_arguments)] // a table row, read in column order
const fn person(
    role: &'static str,
    key: i64,
    name: &'static str,
    first_name: &'static str,
    sex: &'static str,
    org: &'static str,
    email: &'static str,
    staff: bool,
) -> Person {
    Person {
        role,
        key,
        name,
        first_name,
        sex,
        org,
        email,
        staff,
    }
}

const PERSONS: &[Person] = &[
    person(
        "employee",
        1001,
        "Muster",
        "Erika",
        "Frau",
        "ZEA-2",
        "e.muster@fz-juelich.de",
        false,
    ),
    person(
        "admin",
        1002,
        "Schmidt",
        "Jan",
        "Herr",
        "JSC",
        "j.schmidt@fz-juelich.de",
        false,
    ),
    person(
        "deputy",
        1003,
        "Weber",
        "Anna",
        "Frau",
        "JSC",
        "a.weber@fz-juelich.de",
        false,
    ),
    person(
        "itb",
        1004,
        "Fischer",
        "Tom",
        "Herr",
        "JSC",
        "t.fischer@fz-juelich.de",
        false,
    ),
    person(
        "staff",
        1005,
        "Klein",
        "Eva",
        "Frau",
        "JSC-IPM",
        "e.klein@fz-juelich.de",
        true,
    ),
];

struct Subnet {
    id: i64,
    addr: &'static str,
    mask: &'static str,
    vlan: i64,
    name: &'static str,
    desc: &'static str,
    v6: bool,
    v6_prefix: Option<&'static str>,
}

const SUBNETS: &[Subnet] = &[
    Subnet {
        id: 301,
        addr: "134.94.16.0",
        mask: "255.255.255.0",
        vlan: 16,
        name: "zam-16",
        desc: "JSC office network",
        v6: true,
        v6_prefix: Some("2001:638:404:16::/64"),
    },
    Subnet {
        id: 302,
        addr: "134.94.32.0",
        mask: "255.255.255.0",
        vlan: 32,
        name: "jsc-lab",
        desc: "JSC lab network",
        v6: false,
        v6_prefix: None,
    },
    Subnet {
        id: 303,
        addr: "10.20.0.0",
        mask: "255.255.0.0",
        vlan: 200,
        name: "printers",
        desc: "Printers and label printers",
        v6: false,
        v6_prefix: None,
    },
];

/// A device with one interface.
struct Device {
    id: i64,
    label: &'static str,
    class: &'static str,
    kind: &'static str,
    building: &'static str,
    room: &'static str,
    org: &'static str,
    admin: i64,
    users: &'static [i64],
    port: i64,
    ipv4: &'static str,
    net: i64,
    mac: &'static str,
    /// (DN_NAME, DOMAIN, canonical)
    aliases: &'static [(&'static str, &'static str, bool)],
}

const DEVICES: &[Device] = &[
    Device {
        id: 5001,
        label: "zam2212",
        class: "PC",
        kind: "Workstation",
        building: "16.3",
        room: "203",
        org: "JSC",
        admin: 1002,
        users: &[1003],
        port: 7001,
        ipv4: "134.94.16.12",
        net: 301,
        mac: "00:1a:2b:3c:4d:01",
        aliases: &[
            ("zam2212", "zam.kfa-juelich.de", true),
            ("build-jsc", "zam.kfa-juelich.de", false),
        ],
    },
    Device {
        id: 5002,
        label: "zam2213",
        class: "PC",
        kind: "Workstation",
        building: "16.3",
        room: "204",
        org: "JSC",
        admin: 1002,
        users: &[],
        port: 7002,
        ipv4: "134.94.16.13",
        net: 301,
        mac: "00:1a:2b:3c:4d:02",
        aliases: &[("zam2213", "zam.kfa-juelich.de", true)],
    },
    Device {
        id: 5003,
        label: "jsclab7",
        class: "SERVER",
        kind: "Compute node",
        building: "16.4",
        room: "010",
        org: "JSC",
        admin: 1004,
        users: &[1002],
        port: 7003,
        ipv4: "134.94.32.7",
        net: 302,
        mac: "00:1a:2b:3c:4d:03",
        aliases: &[("jsclab7", "jsc.kfa-juelich.de", true)],
    },
    Device {
        id: 5004,
        label: "lblprn1",
        class: "PRINTER",
        kind: "Label printer",
        building: "16.3",
        room: "001",
        org: "JSC-IPM",
        admin: 1005,
        users: &[],
        port: 7004,
        ipv4: "10.20.0.4",
        net: 303,
        mac: "00:1a:2b:3c:4d:04",
        aliases: &[("lblprn1", "prn.kfa-juelich.de", true)],
    },
];

fn yes_no(b: bool) -> &'static str {
    if b { "Y" } else { "N" }
}

pub async fn seed(conn: &mut AnyConnection) -> Result<Vec<DemoPerson>, EngineError> {
    for p in PERSONS {
        sqlx::query(
            "INSERT INTO d_pers (PERS_KEY, NAME, VORNAME, SEX, TITEL, ORG, EMAIL, VORWAHL, TEL) \
             VALUES ($1, $2, $3, $4, NULL, $5, $6, '02461', '61-0000') ON CONFLICT (PERS_KEY) DO NOTHING",
        )
        .bind(p.key)
        .bind(p.name)
        .bind(p.first_name)
        .bind(p.sex)
        .bind(p.org)
        .bind(p.email)
        .execute(&mut *conn)
        .await?;
    }
    for n in SUBNETS {
        sqlx::query(
            "INSERT INTO n_netname (NN_OBJ_ID, NN_NET_ADDR, SUBNET_MASK, NN_VLAN_NUM, NN_NAME, MAIN_NAME, \
             NN_S_SCOPE, NN_DESC, NN_V4_STATE, NN_V6_STATE, NN_V6_NETPREF, NN_V6_AUTOCONF) \
             VALUES ($1, $2, $3, $4, $5, 'Y', 'JuNet', $6, 'Y', $7, $8, 'N') ON CONFLICT (NN_OBJ_ID) DO NOTHING",
        )
        .bind(n.id)
        .bind(n.addr)
        .bind(n.mask)
        .bind(n.vlan)
        .bind(n.name)
        .bind(n.desc)
        .bind(yes_no(n.v6))
        .bind(n.v6_prefix)
        .execute(&mut *conn)
        .await?;
    }
    for d in DEVICES {
        sqlx::query(
            "INSERT INTO x_device (DV_OBJ_ID, DV_LABEL, SERIAL, DV_CLASS, TYPE, DV_BUILDING, DV_ROOM, DV_LOC_ORG, PERSDATA, ARRIVAL) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'N', '2026-01-15') ON CONFLICT (DV_OBJ_ID) DO NOTHING",
        )
        .bind(d.id)
        .bind(d.label)
        .bind(format!("SN-{}", d.id))
        .bind(d.class)
        .bind(d.kind)
        .bind(d.building)
        .bind(d.room)
        .bind(d.org)
        .execute(&mut *conn)
        .await?;
        sqlx::query(
            "INSERT INTO x_port (PT_OBJ_ID, PT_DEV_ADDR, NET_OBJ_ID, HARDW_ADDR, SSH, INET6_ADDR_TYPE, LLA, GUA) \
             VALUES ($1, $2, $3, $4, 'N', NULL, NULL, NULL) ON CONFLICT (PT_OBJ_ID) DO NOTHING",
        )
        .bind(d.port)
        .bind(d.ipv4)
        .bind(d.net)
        .bind(d.mac)
        .execute(&mut *conn)
        .await?;
        let mut links = vec![("PORT", d.port), ("ADMIN", d.admin)];
        links.extend(d.users.iter().map(|u| ("USER", *u)));
        for (class_l, low) in links {
            sqlx::query(
                "INSERT INTO x_link (CLASS_H, OBJ_ID_H, CLASS_L, OBJ_ID_L) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (OBJ_ID_H, CLASS_L, OBJ_ID_L) DO NOTHING",
            )
            .bind(d.class)
            .bind(d.id)
            .bind(class_l)
            .bind(low)
            .execute(&mut *conn)
            .await?;
        }
        for (name, domain, canonical) in d.aliases {
            sqlx::query(
                "INSERT INTO n_devname (DN_NAME, DOMAIN, PT_OBJ_ID, CANONICAL) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (DN_NAME, DOMAIN) DO NOTHING",
            )
            .bind(*name)
            .bind(*domain)
            .bind(d.port)
            .bind(yes_no(*canonical))
            .execute(&mut *conn)
            .await?;
        }
    }
    // Tom Fischer is the IT officer of JSC; Anna Weber deputises for
    // zam2212 (named by its admin) until the end of 2027.
    sqlx::query("INSERT INTO auftrag_it_officers (PERS_KEY, ORG) VALUES (1004, 'JSC') ON CONFLICT (PERS_KEY, ORG) DO NOTHING")
        .execute(&mut *conn)
        .await?;
    let deputy_exists =
        sqlx::query("SELECT 1 FROM auftrag_deputies WHERE DEPUTY = 1003 AND DEVICE = 5001")
            .fetch_optional(&mut *conn)
            .await?
            .is_some();
    if !deputy_exists {
        sqlx::query(
            "INSERT INTO auftrag_deputies (DEPUTY, NAMED_BY, DEVICE, ORG, UNTIL, CREATED_AT, ADMIN) \
             VALUES (1003, 1002, 5001, NULL, '2027-12-31T23:59:59.000Z', '2026-01-15T00:00:00.000Z', 1002)",
        )
        .execute(&mut *conn)
        .await?;
    }
    Ok(PERSONS
        .iter()
        .map(|p| DemoPerson {
            role: p.role,
            person: p.key.to_string(),
            staff: p.staff,
        })
        .collect())
}
