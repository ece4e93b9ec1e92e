//! A realistic generated network for benchmarks and load tests: persons in
//! org units, IT officers, subnets, devices with interfaces, aliases, admins,
//! users and deputies. Deterministic for a seed, so two runs (and the auftrag
//! and Cedar sides of a benchmark) see the same data.

use std::net::Ipv4Addr;

use auftrag_engine::EngineError;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sqlx::AnyConnection;

pub struct Person {
    pub key: i64,
    pub name: String,
    pub org: String,
}

pub struct Subnet {
    pub id: i64,
    pub net: Ipv4Addr,
}

pub struct Port {
    pub id: i64,
    pub net: i64,
    pub ipv4: Ipv4Addr,
    pub mac: String,
    /// (DN_NAME, DOMAIN, canonical)
    pub aliases: Vec<(String, String, bool)>,
}

pub struct Device {
    pub id: i64,
    pub label: String,
    pub org: String,
    pub admin: i64,
    pub users: Vec<i64>,
    pub ports: Vec<Port>,
}

/// A deputyship: for one device, for all devices of `named_by` (both
/// `device` and `org` empty), or for an org unit.
pub struct Deputy {
    pub deputy: i64,
    pub named_by: i64,
    pub device: Option<i64>,
    pub org: Option<String>,
    /// Unix seconds; `None`: unlimited.
    pub until: Option<i64>,
}

pub struct Network {
    pub persons: Vec<Person>,
    /// (PERS_KEY, ORG)
    pub it_officers: Vec<(i64, String)>,
    pub subnets: Vec<Subnet>,
    pub devices: Vec<Device>,
    pub deputies: Vec<Deputy>,
    /// PERS_KEYs of IP-management staff.
    pub staff: Vec<i64>,
}

/// Key ranges, far from the demo data's.
const PERSON_BASE: i64 = 100_000;
const DEVICE_BASE: i64 = 1_000_000;
const PORT_BASE: i64 = 2_000_000;
const SUBNET_BASE: i64 = 10_000;

pub fn org_name(i: usize) -> String {
    format!("ORG-{i:02}")
}

impl Network {
    /// `devices` devices, half as many persons, 50 org units, a /24 per 180
    /// devices, ~20 % of admins with a deputy (a quarter of them expired).
    pub fn generate(devices: usize, seed: u64) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let orgs = 50;
        let n_persons = (devices / 2).max(10);
        let persons: Vec<Person> = (0..n_persons)
            .map(|i| Person {
                key: PERSON_BASE + i as i64,
                name: format!("Person{i}"),
                org: org_name(rng.random_range(0..orgs)),
            })
            .collect();
        let it_officers: Vec<(i64, String)> = (0..orgs)
            .map(|o| (persons[rng.random_range(0..n_persons)].key, org_name(o)))
            .collect();
        let staff: Vec<i64> = persons.iter().take(5).map(|p| p.key).collect();
        // ~180 devices per /24; a second interface goes to the next subnet
        // (one interface per subnet per device), hosts numbered per subnet.
        let n_subnets = devices.div_ceil(180).max(2);
        let subnets: Vec<Subnet> = (0..n_subnets)
            .map(|i| Subnet {
                id: SUBNET_BASE + i as i64,
                net: Ipv4Addr::new(10, 100 + (i / 256) as u8, (i % 256) as u8, 0),
            })
            .collect();
        let mut next_host = vec![10u8; n_subnets];
        let mut next_port = PORT_BASE;
        let devices: Vec<Device> = (0..devices)
            .map(|i| {
                let admin = &persons[rng.random_range(0..n_persons)];
                let n_ports = if rng.random_bool(0.1) { 2 } else { 1 };
                let ports = (0..n_ports)
                    .map(|p| {
                        let id = next_port;
                        next_port += 1;
                        let idx = (i / 180 + p) % n_subnets;
                        let subnet = &subnets[idx];
                        let host = next_host[idx];
                        next_host[idx] += 1;
                        let octets = subnet.net.octets();
                        let label = format!("dev{i}{}", if p == 0 { "" } else { "-b" });
                        Port {
                            id,
                            net: subnet.id,
                            ipv4: Ipv4Addr::new(octets[0], octets[1], octets[2], host),
                            mac: format!(
                                "02:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
                                (id >> 32) & 0xff,
                                (id >> 24) & 0xff,
                                (id >> 16) & 0xff,
                                (id >> 8) & 0xff,
                                id & 0xff
                            ),
                            aliases: vec![(label, "gen.kfa-juelich.de".to_owned(), true)],
                        }
                    })
                    .collect();
                let users = (0..rng.random_range(0..3))
                    .map(|_| persons[rng.random_range(0..n_persons)].key)
                    .collect();
                Device {
                    id: DEVICE_BASE + i as i64,
                    label: format!("dev{i}"),
                    org: admin.org.clone(),
                    admin: admin.key,
                    users,
                    ports,
                }
            })
            .collect();
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let mut deputies = Vec::new();
        for d in &devices {
            if !rng.random_bool(0.2) {
                continue;
            }
            let until = match rng.random_range(0..4) {
                0 => Some(now - 86_400),
                1 => Some(now + 30 * 86_400),
                _ => None,
            };
            let deputy = persons[rng.random_range(0..n_persons)].key;
            let whole = rng.random_bool(0.3);
            deputies.push(Deputy {
                deputy,
                named_by: d.admin,
                device: (!whole).then_some(d.id),
                org: None,
                until,
            });
        }
        for (itb, org) in &it_officers {
            if !rng.random_bool(0.3) {
                continue;
            }
            deputies.push(Deputy {
                deputy: persons[rng.random_range(0..n_persons)].key,
                named_by: *itb,
                device: None,
                org: Some(org.clone()),
                until: None,
            });
        }
        Self {
            persons,
            it_officers,
            subnets,
            devices,
            deputies,
            staff,
        }
    }

    /// Whether this network's first device is in the device database.
    pub async fn is_loaded(
        &self,
        store: &auftrag_engine::store::Store,
    ) -> Result<bool, EngineError> {
        let Some(first) = self.devices.first() else {
            return Ok(false);
        };
        let mut conn = store.acquire().await?;
        Ok(sqlx::query("SELECT 1 FROM x_device WHERE DV_OBJ_ID = $1")
            .bind(first.id)
            .fetch_optional(&mut *conn)
            .await?
            .is_some())
    }

    /// Writes the network into the device database (one transaction, batched).
    pub async fn insert(&self, conn: &mut AnyConnection) -> Result<(), EngineError> {
        let mut batch = Batch::default();
        for p in &self.persons {
            batch
                .row(
                    conn,
                    "INSERT INTO d_pers (PERS_KEY, NAME, VORNAME, ORG, EMAIL) VALUES",
                    vec![
                        Arg::I(p.key),
                        Arg::S(p.name.clone()),
                        Arg::S("Gen".into()),
                        Arg::S(p.org.clone()),
                        Arg::S(format!("p{}@example.org", p.key)),
                    ],
                )
                .await?;
        }
        batch.flush(conn).await?;
        for s in &self.subnets {
            batch
                .row(
                    conn,
                    "INSERT INTO n_netname (NN_OBJ_ID, NN_NET_ADDR, SUBNET_MASK, NN_NAME, NN_V4_STATE, NN_V6_STATE) VALUES",
                    vec![
                        Arg::I(s.id),
                        Arg::S(s.net.to_string()),
                        Arg::S("255.255.255.0".into()),
                        Arg::S(format!("gen-{}", s.id)),
                        Arg::S("Y".into()),
                        Arg::S("N".into()),
                    ],
                )
                .await?;
        }
        batch.flush(conn).await?;
        for d in &self.devices {
            batch
                .row(
                    conn,
                    "INSERT INTO x_device (DV_OBJ_ID, DV_LABEL, DV_CLASS, DV_LOC_ORG, PERSDATA) VALUES",
                    vec![
                        Arg::I(d.id),
                        Arg::S(d.label.clone()),
                        Arg::S("PC".into()),
                        Arg::S(d.org.clone()),
                        Arg::S("N".into()),
                    ],
                )
                .await?;
        }
        batch.flush(conn).await?;
        for d in &self.devices {
            for p in &d.ports {
                batch
                    .row(
                        conn,
                        "INSERT INTO x_port (PT_OBJ_ID, PT_DEV_ADDR, NET_OBJ_ID, HARDW_ADDR, SSH) VALUES",
                        vec![
                            Arg::I(p.id),
                            Arg::S(p.ipv4.to_string()),
                            Arg::I(p.net),
                            Arg::S(p.mac.clone()),
                            Arg::S("N".into()),
                        ],
                    )
                    .await?;
            }
        }
        batch.flush(conn).await?;
        for d in &self.devices {
            let links = d
                .ports
                .iter()
                .map(|p| ("PORT", p.id))
                .chain([("ADMIN", d.admin)])
                .chain(
                    d.users
                        .iter()
                        .filter(|u| **u != d.admin)
                        .map(|u| ("USER", *u)),
                );
            let mut seen = Vec::new();
            for (class, low) in links {
                if seen.contains(&(class, low)) {
                    continue;
                }
                seen.push((class, low));
                batch
                    .row(
                        conn,
                        "INSERT INTO x_link (CLASS_H, OBJ_ID_H, CLASS_L, OBJ_ID_L) VALUES",
                        vec![
                            Arg::S("PC".into()),
                            Arg::I(d.id),
                            Arg::S(class.into()),
                            Arg::I(low),
                        ],
                    )
                    .await?;
            }
        }
        batch.flush(conn).await?;
        for d in &self.devices {
            for p in &d.ports {
                for (name, domain, canonical) in &p.aliases {
                    batch
                        .row(
                            conn,
                            "INSERT INTO n_devname (DN_NAME, DOMAIN, PT_OBJ_ID, CANONICAL) VALUES",
                            vec![
                                Arg::S(name.clone()),
                                Arg::S(domain.clone()),
                                Arg::I(p.id),
                                Arg::S(if *canonical { "Y" } else { "N" }.into()),
                            ],
                        )
                        .await?;
                }
            }
        }
        batch.flush(conn).await?;
        for (key, org) in &self.it_officers {
            sqlx::query(
                "INSERT INTO auftrag_it_officers (PERS_KEY, ORG) VALUES ($1, $2) ON CONFLICT (PERS_KEY, ORG) DO NOTHING",
            )
            .bind(key)
            .bind(org)
            .execute(&mut *conn)
            .await?;
        }
        let created = auftrag_engine::store::history::now();
        for d in &self.deputies {
            let until = d
                .until
                .and_then(|t| time::OffsetDateTime::from_unix_timestamp(t).ok())
                .map(auftrag_engine::store::history::format_instant);
            batch
                .row(
                    conn,
                    "INSERT INTO auftrag_deputies (DEPUTY, NAMED_BY, DEVICE, ORG, UNTIL, CREATED_AT, ADMIN) VALUES",
                    vec![
                        Arg::I(d.deputy),
                        Arg::I(d.named_by),
                        d.device.map_or(Arg::NullI, Arg::I),
                        d.org.clone().map_or(Arg::NullS, Arg::S),
                        until.map_or(Arg::NullS, Arg::S),
                        Arg::S(created.clone()),
                        // a device's or all devices' deputyship: its admin's
                        if d.org.is_none() {
                            Arg::I(d.named_by)
                        } else {
                            Arg::NullI
                        },
                    ],
                )
                .await?;
        }
        batch.flush(conn).await?;
        for key in &self.staff {
            auftrag_engine::store::add_staff(conn, &key.to_string()).await?;
        }
        Ok(())
    }
}

enum Arg {
    I(i64),
    S(String),
    NullI,
    NullS,
}

/// Multi-row INSERTs of up to 500 rows, portable between SQLite and
/// PostgreSQL (`$n` placeholders).
#[derive(Default)]
struct Batch {
    head: &'static str,
    rows: Vec<Vec<Arg>>,
}

impl Batch {
    async fn row(
        &mut self,
        conn: &mut AnyConnection,
        head: &'static str,
        row: Vec<Arg>,
    ) -> Result<(), EngineError> {
        if self.head != head || self.rows.len() >= 500 {
            self.flush(conn).await?;
            self.head = head;
        }
        self.rows.push(row);
        Ok(())
    }

    async fn flush(&mut self, conn: &mut AnyConnection) -> Result<(), EngineError> {
        if self.rows.is_empty() {
            return Ok(());
        }
        let mut sql = String::from(self.head);
        let mut n = 0;
        for (i, row) in self.rows.iter().enumerate() {
            sql.push_str(if i == 0 { " (" } else { ", (" });
            for j in 0..row.len() {
                n += 1;
                sql.push_str(&format!("{}${n}", if j == 0 { "" } else { ", " }));
            }
            sql.push(')');
        }
        let mut query = sqlx::query(&sql);
        for row in self.rows.drain(..) {
            for arg in row {
                query = match arg {
                    Arg::I(v) => query.bind(v),
                    Arg::S(v) => query.bind(v),
                    Arg::NullI => query.bind(None::<i64>),
                    Arg::NullS => query.bind(None::<String>),
                };
            }
        }
        query.execute(&mut *conn).await?;
        Ok(())
    }
}
