//! Demo data for `auftrag serve --demo`: one person per demo role, a few
//! subnets, and devices with interfaces, aliases and ADMIN/USER/PORT links.
//! Loading it twice changes nothing.

use auftrag_engine::{DemoPerson, EngineError};
use sqlx::AnyConnection;

/// (role, PERS_KEY, NAME, VORNAME, SEX, ORG, EMAIL, staff)
const PERSONS: &[(&str, i64, &str, &str, &str, &str, &str, bool)] = &[
    ("employee", 1001, "Muster", "Erika", "Frau", "ZEA-2", "e.muster@fz-juelich.de", false),
    ("admin", 1002, "Schmidt", "Jan", "Herr", "JSC", "j.schmidt@fz-juelich.de", false),
    ("deputy", 1003, "Weber", "Anna", "Frau", "JSC", "a.weber@fz-juelich.de", false),
    ("itb", 1004, "Fischer", "Tom", "Herr", "JSC", "t.fischer@fz-juelich.de", false),
    ("staff", 1005, "Klein", "Eva", "Frau", "JSC-IPM", "e.klein@fz-juelich.de", true),
];

/// (NN_OBJ_ID, NN_NET_ADDR, SUBNET_MASK, VLAN, NN_NAME, NN_DESC, V6 state, V6 prefix)
const SUBNETS: &[(i64, &str, &str, i64, &str, &str, &str, &str)] = &[
    (301, "134.94.16.0", "255.255.255.0", 16, "zam-16", "JSC office network", "Y", "2001:638:404:16::/64"),
    (302, "134.94.32.0", "255.255.255.0", 32, "jsc-lab", "JSC lab network", "N", ""),
    (303, "10.20.0.0", "255.255.0.0", 200, "printers", "Printers and label printers", "N", ""),
];

/// (DV_OBJ_ID, DV_LABEL, class, type, building, room, org, admin, users,
///  PT_OBJ_ID, IPv4, subnet, MAC, aliases as (name, domain, canonical))
type Device = (
    i64,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    i64,
    &'static [i64],
    i64,
    &'static str,
    i64,
    &'static str,
    &'static [(&'static str, &'static str, bool)],
);

const DEVICES: &[Device] = &[
    (
        5001, "zam2212", "PC", "Workstation", "16.3", "203", "JSC", 1002, &[1003],
        7001, "134.94.16.12", 301, "00:1a:2b:3c:4d:01",
        &[("zam2212", "zam.kfa-juelich.de", true), ("build-jsc", "zam.kfa-juelich.de", false)],
    ),
    (
        5002, "zam2213", "PC", "Workstation", "16.3", "204", "JSC", 1002, &[],
        7002, "134.94.16.13", 301, "00:1a:2b:3c:4d:02",
        &[("zam2213", "zam.kfa-juelich.de", true)],
    ),
    (
        5003, "jsclab7", "SERVER", "Compute node", "16.4", "010", "JSC", 1004, &[1002],
        7003, "134.94.32.7", 302, "00:1a:2b:3c:4d:03",
        &[("jsclab7", "jsc.kfa-juelich.de", true)],
    ),
    (
        5004, "lblprn1", "PRINTER", "Label printer", "16.3", "001", "JSC-IPM", 1005, &[],
        7004, "10.20.0.4", 303, "00:1a:2b:3c:4d:04",
        &[("lblprn1", "prn.kfa-juelich.de", true)],
    ),
];

pub async fn seed(conn: &mut AnyConnection) -> Result<Vec<DemoPerson>, EngineError> {
    for (_, key, name, first, sex, org, email, _) in PERSONS {
        sqlx::query(
            "INSERT INTO d_pers (PERS_KEY, NAME, VORNAME, SEX, TITEL, ORG, EMAIL, VORWAHL, TEL) \
             VALUES ($1, $2, $3, $4, NULL, $5, $6, '02461', '61-0000') ON CONFLICT (PERS_KEY) DO NOTHING",
        )
        .bind(key)
        .bind(*name)
        .bind(*first)
        .bind(*sex)
        .bind(*org)
        .bind(*email)
        .execute(&mut *conn)
        .await?;
    }
    for (id, addr, mask, vlan, name, desc, v6, prefix) in SUBNETS {
        sqlx::query(
            "INSERT INTO n_netname (NN_OBJ_ID, NN_NET_ADDR, SUBNET_MASK, NN_VLAN_NUM, NN_NAME, MAIN_NAME, \
             NN_S_SCOPE, NN_DESC, NN_V4_STATE, NN_V6_STATE, NN_V6_NETPREF, NN_V6_AUTOCONF) \
             VALUES ($1, $2, $3, $4, $5, 'Y', 'JuNet', $6, 'Y', $7, $8, 'N') ON CONFLICT (NN_OBJ_ID) DO NOTHING",
        )
        .bind(id)
        .bind(*addr)
        .bind(*mask)
        .bind(vlan)
        .bind(*name)
        .bind(*desc)
        .bind(*v6)
        .bind(Some(*prefix).filter(|p| !p.is_empty()))
        .execute(&mut *conn)
        .await?;
    }
    for (id, label, class, ty, building, room, org, admin, users, port, ipv4, net, mac, aliases) in DEVICES {
        sqlx::query(
            "INSERT INTO x_device (DV_OBJ_ID, DV_LABEL, SERIAL, DV_CLASS, TYPE, DV_BUILDING, DV_ROOM, DV_LOC_ORG, PERSDATA, ARRIVAL) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'N', '2026-01-15') ON CONFLICT (DV_OBJ_ID) DO NOTHING",
        )
        .bind(id)
        .bind(*label)
        .bind(format!("SN-{id}"))
        .bind(*class)
        .bind(*ty)
        .bind(*building)
        .bind(*room)
        .bind(*org)
        .execute(&mut *conn)
        .await?;
        sqlx::query(
            "INSERT INTO x_port (PT_OBJ_ID, PT_DEV_ADDR, NET_OBJ_ID, HARDW_ADDR, SSH, INET6_ADDR_TYPE, LLA, GUA) \
             VALUES ($1, $2, $3, $4, 'N', NULL, NULL, NULL) ON CONFLICT (PT_OBJ_ID) DO NOTHING",
        )
        .bind(port)
        .bind(*ipv4)
        .bind(net)
        .bind(*mac)
        .execute(&mut *conn)
        .await?;
        let mut links = vec![("PORT", *port), ("ADMIN", *admin)];
        links.extend(users.iter().map(|u| ("USER", *u)));
        for (class_l, low) in links {
            sqlx::query(
                "INSERT INTO x_link (CLASS_H, OBJ_ID_H, CLASS_L, OBJ_ID_L) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (OBJ_ID_H, CLASS_L, OBJ_ID_L) DO NOTHING",
            )
            .bind(*class)
            .bind(id)
            .bind(class_l)
            .bind(low)
            .execute(&mut *conn)
            .await?;
        }
        for (name, domain, canonical) in *aliases {
            sqlx::query(
                "INSERT INTO n_devname (DN_NAME, DOMAIN, PT_OBJ_ID, CANONICAL) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (DN_NAME, DOMAIN) DO NOTHING",
            )
            .bind(*name)
            .bind(*domain)
            .bind(port)
            .bind(if *canonical { "Y" } else { "N" })
            .execute(&mut *conn)
            .await?;
        }
    }
    Ok(PERSONS
        .iter()
        .map(|(role, key, .., staff)| DemoPerson {
            role,
            person: key.to_string(),
            staff: *staff,
        })
        .collect())
}
