//! What a `register_device` or `change_device` order would make of the
//! device database: the interfaces it adds or changes, as they will be, with
//! their subnets looked up. The checks judge this plan; the actions apply it.
//! Also the helpers both need: subnets, IPv6 generation (EUI-64 and 4to6),
//! object ids, and the advisory locks that make check-then-insert race-free
//! on PostgreSQL.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use auftrag_engine::HandlerError;
use auftrag_engine::context::{Memo, OrderData};
use auftrag_engine::defs::Stage;
use auftrag_engine::types::{Hostname, PersonRef};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use macaddr::MacAddr6;
use sqlx::{AnyConnection, Row};

use super::{Target, resolve_host_memo};
use auftrag_junet_types::{ChangeDevice, RegisterDevice};

/// How an interface's IPv6 address is made (`INET6_ADDR_TYPE`; `manual` is
/// stored as NULL, the address as given).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum V6Type {
    Eui64,
    FourToSix,
    Manual,
}

impl V6Type {
    fn from_name(name: &str) -> Option<Self> {
        match name {
            "EUI64" => Some(Self::Eui64),
            "4to6" => Some(Self::FourToSix),
            "manual" => Some(Self::Manual),
            _ => None,
        }
    }

    /// The value of `x_port.INET6_ADDR_TYPE`.
    pub fn column(self) -> Option<&'static str> {
        match self {
            Self::Eui64 => Some("EUI64"),
            Self::FourToSix => Some("4to6"),
            Self::Manual => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Eui64 => "EUI64",
            Self::FourToSix => "4to6",
            Self::Manual => "manual",
        }
    }
}

/// A subnet of `n_netname`.
#[derive(Debug, Clone)]
pub struct SubnetRow {
    pub id: i64,
    pub net: Ipv4Net,
    pub v4_on: bool,
    pub v6_on: bool,
    pub v6_prefix: Option<Ipv6Net>,
}

const SUBNET_COLUMNS: &str =
    "NN_OBJ_ID, NN_NET_ADDR, SUBNET_MASK, NN_V4_STATE, NN_V6_STATE, NN_V6_NETPREF";

fn subnet_row(row: &sqlx::any::AnyRow) -> Result<SubnetRow, HandlerError> {
    subnet_row_at(row, 0)
}

/// A subnet from the [`SUBNET_COLUMNS`] of `row` starting at column `at`.
fn subnet_row_at(row: &sqlx::any::AnyRow, at: usize) -> Result<SubnetRow, HandlerError> {
    let addr: String = row.try_get(at + 1)?;
    let mask: String = row.try_get(at + 2)?;
    subnet_of(
        row.try_get(at)?,
        &addr,
        &mask,
        row.try_get(at + 3)?,
        row.try_get(at + 4)?,
        row.try_get(at + 5)?,
    )
}

/// A subnet from the values of its [`SUBNET_COLUMNS`].
fn subnet_of(
    id: i64,
    addr: &str,
    mask: &str,
    v4_state: Option<String>,
    v6_state: Option<String>,
    v6_prefix: Option<String>,
) -> Result<SubnetRow, HandlerError> {
    let bad =
        |what: &str| HandlerError::Failed(format!("subnet {id} has a bad {what} in n_netname"));
    let addr: Ipv4Addr = addr.trim().parse().map_err(|_| bad("NN_NET_ADDR"))?;
    let mask: Ipv4Addr = mask.trim().parse().map_err(|_| bad("SUBNET_MASK"))?;
    let prefix = ipnet::ipv4_mask_to_prefix(mask).map_err(|_| bad("SUBNET_MASK"))?;
    let net = Ipv4Net::new(addr, prefix).map_err(|_| bad("SUBNET_MASK"))?;
    let yes = |v: Option<String>| v.as_deref() == Some("Y");
    let v6_prefix = match v6_prefix
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        Some(p) => Some(p.parse::<Ipv6Net>().map_err(|_| bad("NN_V6_NETPREF"))?),
        None => None,
    };
    Ok(SubnetRow {
        id,
        net: net.trunc(),
        v4_on: yes(v4_state),
        v6_on: yes(v6_state),
        v6_prefix,
    })
}

/// The most subnets the forms offer as a select; with more, a subnet is
/// typed (a select of thousands helps nobody).
pub const MAX_SUBNET_CHOICES: i64 = 300;

/// The subnets of `n_netname` whose IPv4 is on, as the forms offer them
/// (`134.94.16.0/24`, labelled with name and description); none when there
/// are more than [`MAX_SUBNET_CHOICES`].
pub async fn subnet_choices(
    conn: &mut AnyConnection,
) -> Result<Vec<auftrag_engine::Choice>, HandlerError> {
    let rows = sqlx::query(
        "SELECT NN_OBJ_ID, NN_NET_ADDR, SUBNET_MASK, NN_NAME, NN_DESC FROM n_netname \
         WHERE NN_V4_STATE = 'Y' ORDER BY NN_OBJ_ID LIMIT $1",
    )
    .bind(MAX_SUBNET_CHOICES + 1)
    .fetch_all(&mut *conn)
    .await?;
    if rows.len() as i64 > MAX_SUBNET_CHOICES {
        return Ok(Vec::new());
    }
    let mut out = Vec::with_capacity(rows.len());
    for row in &rows {
        let addr: String = row.try_get(1)?;
        let mask: String = row.try_get(2)?;
        let s = subnet_of(row.try_get(0)?, &addr, &mask, None, None, None)?;
        let name: Option<String> = row.try_get(3)?;
        let desc: Option<String> = row.try_get(4)?;
        let mut label = s.net.to_string();
        for part in [name, desc].into_iter().flatten() {
            let part = part.trim();
            if !part.is_empty() {
                label.push_str(if label.contains(' ') { ": " } else { " " });
                label.push_str(part);
            }
        }
        out.push(auftrag_engine::Choice {
            value: s.net.to_string(),
            label,
        });
    }
    Ok(out)
}

/// The subnet with this address range, if JuNet has it.
pub async fn subnet_by_net(
    conn: &mut AnyConnection,
    net: Ipv4Net,
) -> Result<Option<SubnetRow>, HandlerError> {
    let row = sqlx::query(&format!(
        "SELECT {SUBNET_COLUMNS} FROM n_netname WHERE NN_NET_ADDR = $1 AND SUBNET_MASK = $2"
    ))
    .bind(net.network().to_string())
    .bind(net.netmask().to_string())
    .fetch_optional(&mut *conn)
    .await?;
    row.as_ref().map(subnet_row).transpose()
}

pub async fn subnet_by_id(
    conn: &mut AnyConnection,
    id: i64,
) -> Result<Option<SubnetRow>, HandlerError> {
    let row = sqlx::query(&format!(
        "SELECT {SUBNET_COLUMNS} FROM n_netname WHERE NN_OBJ_ID = $1"
    ))
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?;
    row.as_ref().map(subnet_row).transpose()
}

/// The modified EUI-64 interface identifier of a MAC (RFC 4291, appendix A):
/// `ff:fe` in the middle, the universal/local bit flipped.
pub fn eui64(mac: &MacAddr6) -> [u8; 8] {
    let b = mac.as_bytes();
    [b[0] ^ 0x02, b[1], b[2], 0xff, 0xfe, b[3], b[4], b[5]]
}

/// The link-local address of a MAC: `fe80::/64` and its EUI-64.
pub fn link_local(mac: &MacAddr6) -> Ipv6Addr {
    let mut o = [0u8; 16];
    o[0] = 0xfe;
    o[1] = 0x80;
    o[8..].copy_from_slice(&eui64(mac));
    Ipv6Addr::from(o)
}

/// The global address an interface gets in a subnet with IPv6 on: the
/// prefix and the EUI-64 of the MAC, the prefix and the IPv4 (4to6), or
/// the address given by hand, which must lie inside the prefix.
pub fn global_address(
    prefix: Ipv6Net,
    kind: V6Type,
    mac: &MacAddr6,
    ipv4: Option<Ipv4Addr>,
    manual: Option<Ipv6Addr>,
) -> Result<Ipv6Addr, String> {
    let net = prefix.trunc().network().octets();
    match kind {
        V6Type::Eui64 => {
            if prefix.prefix_len() > 64 {
                return Err(format!(
                    "the subnet's IPv6 prefix {prefix} is longer than /64; EUI-64 addresses need a /64"
                ));
            }
            let mut o = net;
            o[8..].copy_from_slice(&eui64(mac));
            Ok(Ipv6Addr::from(o))
        }
        V6Type::FourToSix => {
            let Some(v4) = ipv4 else {
                return Err("4to6 needs an IPv4 address of the interface".into());
            };
            if prefix.prefix_len() > 96 {
                return Err(format!(
                    "the subnet's IPv6 prefix {prefix} is longer than /96; 4to6 addresses need 32 bits"
                ));
            }
            let mut o = net;
            o[12..].copy_from_slice(&v4.octets());
            Ok(Ipv6Addr::from(o))
        }
        V6Type::Manual => {
            let Some(v6) = manual else {
                return Err("inet6_addr_type manual needs the address in ipv6".into());
            };
            if !prefix.contains(&v6) {
                return Err(format!(
                    "{v6} is not inside the subnet's IPv6 prefix {prefix}"
                ));
            }
            Ok(v6)
        }
    }
}

/// An alias as `n_devname` keeps it: (DN_NAME, DOMAIN).
pub fn split_alias(name: &Hostname) -> Option<(String, String)> {
    name.as_str()
        .split_once('.')
        .map(|(n, d)| (n.to_owned(), d.to_owned()))
}

/// The device label of a host name: its first label.
pub fn label_of(host: &Hostname) -> String {
    host.as_str()
        .split('.')
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// One interface as an order leaves it.
#[derive(Debug, Clone)]
pub struct Iface {
    /// Field path of the interface in the order (`interfaces[0]`), empty for
    /// the interface `host` names in a change (its fields are top-level).
    pub path: String,
    /// The existing port (a change of the host interface).
    pub port: Option<i64>,
    pub net: Ipv4Net,
    /// `None`: not a subnet of JuNet.
    pub subnet: Option<SubnetRow>,
    pub ipv4: Option<Ipv4Addr>,
    pub hwa: MacAddr6,
    pub ssh: Option<bool>,
    pub v6_type: Option<V6Type>,
    pub ipv6: Option<Ipv6Addr>,
    /// All aliases after the order, with their CANONICAL flag.
    pub aliases: Vec<(Hostname, bool)>,
    /// Aliases the order adds.
    pub new_aliases: Vec<Hostname>,
    /// The order sets the address (new interface, or net / ipv4 given).
    pub addr_changed: bool,
    /// The order touches what the IPv6 address depends on.
    pub v6_changed: bool,
    /// The order sets the aliases (new interface, or aliases added/removed).
    pub aliases_changed: bool,
}

impl Iface {
    /// The path of one of the interface's fields, for findings.
    pub fn field(&self, name: &str) -> String {
        if self.path.is_empty() {
            match name {
                "aliases" => "add_aliases".to_owned(),
                other => other.to_owned(),
            }
        } else {
            format!("{}.{name}", self.path)
        }
    }

    /// The address in `x_port.GUA` and `LLA` (both `None` when the subnet has
    /// IPv6 off), or why there is none.
    pub fn ipv6_addresses(&self) -> Result<(Option<Ipv6Addr>, Option<Ipv6Addr>), String> {
        let Some(subnet) = &self.subnet else {
            return Ok((None, None));
        };
        if !subnet.v6_on {
            return Ok((None, None));
        }
        let Some(prefix) = subnet.v6_prefix else {
            return Err(format!(
                "subnet {} has IPv6 on but no prefix (NN_V6_NETPREF)",
                subnet.net
            ));
        };
        let kind = self.v6_type.unwrap_or(V6Type::Eui64);
        let gua = global_address(prefix, kind, &self.hwa, self.ipv4, self.ipv6)?;
        Ok((Some(gua), Some(link_local(&self.hwa))))
    }
}

/// The interfaces an order adds or changes, and what stays.
#[derive(Debug, Default)]
pub struct Plan {
    /// The device a change is about.
    pub target: Option<Target>,
    pub ifaces: Vec<Iface>,
    /// Existing ports of the device the order leaves as they are: (port, subnet).
    pub kept_ports: Vec<(i64, Option<i64>)>,
    pub removed_ports: Vec<i64>,
    /// Aliases the order removes from the host interface.
    pub removed_aliases: Vec<(String, String)>,
    /// Contradictions in the order itself: (field, message).
    pub problems: Vec<(String, String)>,
}

impl Plan {
    /// Ports whose current addresses and aliases no longer count (they are
    /// removed or changed by the order).
    pub fn replaced_ports(&self) -> Vec<i64> {
        self.removed_ports
            .iter()
            .copied()
            .chain(self.ifaces.iter().filter_map(|i| i.port))
            .collect()
    }
}

fn aliases_of(list: Vec<(Hostname, Option<bool>)>) -> Vec<(Hostname, bool)> {
    let single = list.len() == 1;
    list.into_iter()
        .map(|(name, canonical)| (name, canonical.unwrap_or(single)))
        .collect()
}

/// A new interface as an order gives it: register_device's `interfaces`
/// and change_device's `add_interfaces` have the same fields in two
/// generated types.
#[derive(Debug)]
struct NewIface {
    net: auftrag_engine::types::Subnet,
    ipv4: Option<Ipv4Addr>,
    hwa: MacAddr6,
    ssh: Option<bool>,
    v6_type: Option<&'static str>,
    ipv6: Option<Ipv6Addr>,
    aliases: Vec<(Hostname, Option<bool>)>,
}

macro_rules! new_iface_of {
    ($x:expr) => {{
        let x = $x;
        NewIface {
            net: x.net,
            ipv4: x.ipv4,
            hwa: x.hwa,
            ssh: x.ssh,
            v6_type: x.inet6_addr_type.map(|t| t.name()),
            ipv6: x.ipv6,
            aliases: x
                .aliases
                .into_iter()
                .map(|a| (a.name, a.canonical))
                .collect(),
        }
    }};
}

fn registered_ifaces(o: &RegisterDevice) -> Vec<NewIface> {
    o.interfaces
        .iter()
        .cloned()
        .map(|x| new_iface_of!(x))
        .collect()
}

fn added_ifaces(o: &ChangeDevice) -> Vec<NewIface> {
    o.add_interfaces
        .iter()
        .flatten()
        .cloned()
        .map(|x| new_iface_of!(x))
        .collect()
}

/// Adds the new interfaces of the order's list `field` to `plan`.
async fn push_new_ifaces(
    conn: &mut AnyConnection,
    memo: &mut Memo,
    plan: &mut Plan,
    field: &str,
    ifaces: Vec<NewIface>,
) -> Result<(), HandlerError> {
    for (i, n) in ifaces.into_iter().enumerate() {
        if let Some(iface) =
            new_iface(conn, memo, format!("{field}[{i}]"), n, &mut plan.problems).await?
        {
            plan.ifaces.push(iface);
        }
    }
    Ok(())
}

async fn new_iface(
    conn: &mut AnyConnection,
    memo: &mut Memo,
    path: String,
    n: NewIface,
    problems: &mut Vec<(String, String)>,
) -> Result<Option<Iface>, HandlerError> {
    let IpNet::V4(net) = n.net.0 else {
        problems.push((
            format!("{path}.net"),
            format!(
                "{} is not an IPv4 subnet; name the JuNet subnet by its IPv4 range",
                n.net
            ),
        ));
        return Ok(None);
    };
    let subnet = match memo.get::<Option<SubnetRow>>(&subnet_net_memo(net)) {
        Some(subnet) => (*subnet).clone(),
        None => subnet_by_net(conn, net).await?,
    };
    let aliases = aliases_of(n.aliases);
    Ok(Some(Iface {
        path,
        port: None,
        net,
        subnet,
        ipv4: n.ipv4,
        hwa: n.hwa,
        ssh: n.ssh,
        v6_type: n.v6_type.and_then(V6Type::from_name),
        ipv6: n.ipv6,
        new_aliases: aliases.iter().map(|(a, _)| a.clone()).collect(),
        aliases,
        addr_changed: true,
        v6_changed: true,
        aliases_changed: true,
    }))
}

/// A port as stored, with its aliases.
#[derive(Debug, Clone)]
pub struct PortRow {
    pub port: i64,
    pub net: Option<i64>,
    pub ipv4: Option<String>,
    pub hwa: Option<String>,
    pub ssh: Option<String>,
    pub v6_type: Option<String>,
    pub lla: Option<String>,
    pub gua: Option<String>,
    /// (DN_NAME, DOMAIN, canonical)
    pub aliases: Vec<(String, String, bool)>,
    /// Its subnet (`NET_OBJ_ID`), if JuNet has it.
    pub subnet: Option<SubnetRow>,
}

impl PortRow {
    pub fn canonical(&self) -> String {
        self.aliases
            .iter()
            .find(|a| a.2)
            .or(self.aliases.first())
            .map_or_else(
                || format!("port {}", self.port),
                |(n, d, _)| format!("{n}.{d}"),
            )
    }

    pub fn alias_names(&self) -> Vec<String> {
        self.aliases
            .iter()
            .map(|(n, d, _)| format!("{n}.{d}"))
            .collect()
    }
}

/// The device columns `change_device` can set, in this order.
pub const DEVICE_COLUMNS: &str =
    "DV_LABEL, DV_CLASS, TYPE, SERIAL, DV_BUILDING, DV_ROOM, DV_LOC_ORG, PERSDATA";

/// A device row: the values of [`DEVICE_COLUMNS`].
pub type DeviceRow = Vec<Option<String>>;

/// Reads the device's row, locking it until the transaction ends
/// (`FOR UPDATE`) when `lock` is set; `None` when there is no such device.
pub async fn device_row(
    conn: &mut AnyConnection,
    device: i64,
    lock: bool,
) -> Result<Option<DeviceRow>, sqlx::Error> {
    static TEXTS: super::Texts<bool> = super::Texts::new();
    let sql = TEXTS.get(lock, |&lock| {
        let lock = if lock { " FOR UPDATE" } else { "" };
        format!("SELECT {DEVICE_COLUMNS} FROM x_device WHERE DV_OBJ_ID = $1{lock}")
    });
    let Some(row) = sqlx::query(&sql).bind(device).fetch_optional(conn).await? else {
        return Ok(None);
    };
    (0..DEVICE_COLUMNS.split(", ").count())
        .map(|i| row.try_get::<Option<String>, _>(i))
        .collect::<Result<_, _>>()
        .map(Some)
}

/// Where the device row is remembered once the order's transaction holds
/// its lock (a [`DeviceRow`]).
pub fn locked_memo(device: i64) -> String {
    super::id_key("junet.locked:", device)
}

/// Where [`device_ports_memo`] keeps a device's ports.
pub fn ports_memo(device: i64) -> String {
    super::id_key("junet.ports:", device)
}

/// [`device_ports`], once per transaction.
pub async fn device_ports_memo(
    conn: &mut AnyConnection,
    memo: &mut Memo,
    device: i64,
) -> Result<Arc<Vec<PortRow>>, HandlerError> {
    let key = ports_memo(device);
    if let Some(ports) = memo.get::<Vec<PortRow>>(&key) {
        return Ok(ports);
    }
    let ports = device_ports(conn, device).await?;
    Ok(remember_ports(memo, device, ports))
}

/// Remembers a device's ports (and their subnets) as read in this
/// transaction, for [`device_ports_memo`].
pub fn remember_ports(memo: &mut Memo, device: i64, ports: Vec<PortRow>) -> Arc<Vec<PortRow>> {
    for p in &ports {
        if let Some(subnet) = &p.subnet {
            memo.put(subnet_memo(subnet.id), Some(subnet.clone()));
        }
    }
    memo.put(ports_memo(device), ports)
}

fn subnet_memo(id: i64) -> String {
    super::id_key("junet.subnet:", id)
}

/// A subnet by id, once per transaction (orders never change subnets).
pub async fn subnet_by_id_memo(
    conn: &mut AnyConnection,
    memo: &mut Memo,
    id: i64,
) -> Result<Option<SubnetRow>, HandlerError> {
    let key = subnet_memo(id);
    if let Some(subnet) = memo.get::<Option<SubnetRow>>(&key) {
        return Ok((*subnet).clone());
    }
    let subnet = subnet_by_id(conn, id).await?;
    memo.put(key, subnet.clone());
    Ok(subnet)
}

/// The ports of a device with their aliases, by port id (one query).
pub async fn device_ports(
    conn: &mut AnyConnection,
    device: i64,
) -> Result<Vec<PortRow>, HandlerError> {
    let rows = sqlx::query(
        "SELECT p.PT_OBJ_ID, p.NET_OBJ_ID, p.PT_DEV_ADDR, p.HARDW_ADDR, p.SSH, p.INET6_ADDR_TYPE, p.LLA, p.GUA, \
                n.DN_NAME, n.DOMAIN, n.CANONICAL, \
                s.NN_OBJ_ID, s.NN_NET_ADDR, s.SUBNET_MASK, s.NN_V4_STATE, s.NN_V6_STATE, s.NN_V6_NETPREF \
         FROM x_link l JOIN x_port p ON p.PT_OBJ_ID = l.OBJ_ID_L \
         LEFT JOIN n_devname n ON n.PT_OBJ_ID = p.PT_OBJ_ID \
         LEFT JOIN n_netname s ON s.NN_OBJ_ID = p.NET_OBJ_ID \
         WHERE l.OBJ_ID_H = $1 AND l.CLASS_L = 'PORT' \
         ORDER BY p.PT_OBJ_ID, n.CANONICAL DESC, n.DN_NAME, n.DOMAIN",
    )
    .bind(device)
    .fetch_all(&mut *conn)
    .await?;
    let mut ports: Vec<PortRow> = Vec::new();
    for r in &rows {
        let port: i64 = r.try_get(0)?;
        if ports.last().is_none_or(|p| p.port != port) {
            ports.push(PortRow {
                port,
                net: r.try_get(1)?,
                ipv4: r.try_get(2)?,
                hwa: r.try_get(3)?,
                ssh: r.try_get(4)?,
                v6_type: r.try_get(5)?,
                lla: r.try_get(6)?,
                gua: r.try_get(7)?,
                aliases: Vec::new(),
                subnet: match r.try_get::<Option<i64>, _>(11)? {
                    Some(_) => Some(subnet_row_at(r, 11)?),
                    None => None,
                },
            });
        }
        let name: Option<String> = r.try_get(8)?;
        if let (Some(name), Some(p)) = (name, ports.last_mut()) {
            let canonical: Option<String> = r.try_get(10)?;
            p.aliases
                .push((name, r.try_get(9)?, canonical.as_deref() == Some("Y")));
        }
    }
    Ok(ports)
}

/// Where the checks remember the order's plan (an `Option<Arc<Plan>>`).
pub const PLAN_MEMO: &str = "junet.plan";

/// The plan of a `register_device` or `change_device` order; `None` for
/// other order types, fields that do not parse (the syntax check reports
/// them) or a change of an unknown host (check_host_exists reports it).
pub async fn plan(
    conn: &mut AnyConnection,
    memo: &mut Memo,
    order: &OrderData,
) -> Result<Option<Plan>, HandlerError> {
    let mut plan = Plan::default();
    if order.order_type.name == RegisterDevice::NAME {
        let Ok(o) = registration(memo, order) else {
            return Ok(None);
        };
        push_new_ifaces(conn, memo, &mut plan, "interfaces", registered_ifaces(&o)).await?;
        return Ok(Some(plan));
    }
    if order.order_type.name != ChangeDevice::NAME {
        return Ok(None);
    }
    let Ok(o) = change_of(memo, order) else {
        return Ok(None);
    };
    let Some(target) = resolve_host_memo(conn, memo, o.host.as_str()).await? else {
        return Ok(None);
    };
    let ports = device_ports_memo(conn, memo, target.device).await?;
    // interfaces to remove
    for (i, name) in o.remove_interfaces.iter().flatten().enumerate() {
        match resolve_host_memo(conn, memo, name.as_str()).await? {
            Some(t) if t.device == target.device => {
                if t.port == target.port {
                    plan.problems.push((
                        format!("remove_interfaces[{i}]"),
                        format!("`{name}` is the interface `host` names; name the device by another interface to remove this one"),
                    ));
                } else if !plan.removed_ports.contains(&t.port) {
                    plan.removed_ports.push(t.port);
                }
            }
            Some(_) => plan.problems.push((
                format!("remove_interfaces[{i}]"),
                format!("`{name}` is an interface of another device"),
            )),
            None => plan.problems.push((
                format!("remove_interfaces[{i}]"),
                format!("there is no interface `{name}`"),
            )),
        }
    }
    // the host interface, when the order changes it
    let touches_host = o.hwa.is_some()
        || o.net.is_some()
        || o.ipv4.is_some()
        || o.ssh.is_some()
        || o.inet6_addr_type.is_some()
        || o.ipv6.is_some()
        || o.add_aliases.as_ref().is_some_and(|a| !a.is_empty())
        || o.remove_aliases.as_ref().is_some_and(|a| !a.is_empty());
    let host_port = ports.iter().find(|p| p.port == target.port).cloned();
    if touches_host && let Some(current) = host_port {
        let current_subnet = match current.net {
            Some(id) => subnet_by_id_memo(conn, memo, id).await?,
            None => None,
        };
        let (net, subnet) = match o.net {
            Some(n) => match n.0 {
                IpNet::V4(net) => (Some(net), subnet_by_net(conn, net).await?),
                IpNet::V6(_) => {
                    plan.problems.push((
                        "net".into(),
                        format!(
                            "{n} is not an IPv4 subnet; name the JuNet subnet by its IPv4 range"
                        ),
                    ));
                    (None, None)
                }
            },
            None => (current_subnet.as_ref().map(|s| s.net), current_subnet),
        };
        let ipv4 = o
            .ipv4
            .or_else(|| current.ipv4.as_deref().and_then(|s| s.trim().parse().ok()));
        if o.net.is_some() && o.ipv4.is_none() && ipv4.is_some() {
            plan.problems.push((
                "ipv4".into(),
                "moving the interface to another subnet needs its new IPv4 address".into(),
            ));
        }
        let hwa = o
            .hwa
            .or_else(|| current.hwa.as_deref().and_then(|s| s.trim().parse().ok()));
        let mut aliases: Vec<(Hostname, bool)> = current
            .aliases
            .iter()
            .filter_map(|(n, d, c)| format!("{n}.{d}").parse::<Hostname>().ok().map(|h| (h, *c)))
            .collect();
        for (i, name) in o.remove_aliases.iter().flatten().enumerate() {
            let before = aliases.len();
            aliases.retain(|(a, _)| a != name);
            if aliases.len() == before {
                plan.problems.push((
                    format!("remove_aliases[{i}]"),
                    format!("`{name}` is no alias of the interface `{}`", o.host),
                ));
            } else if let Some(split) = split_alias(name) {
                plan.removed_aliases.push(split);
            }
        }
        let added: Vec<(Hostname, bool)> = o
            .add_aliases
            .iter()
            .flatten()
            .map(|a| (a.name.clone(), a.canonical.unwrap_or(false)))
            .collect();
        if added.iter().any(|(_, c)| *c) {
            for a in &mut aliases {
                a.1 = false;
            }
        }
        let new_aliases: Vec<Hostname> = added.iter().map(|(a, _)| a.clone()).collect();
        aliases.extend(added);
        let v6_type = match o.inet6_addr_type {
            Some(t) => V6Type::from_name(t.name()),
            None => match current.v6_type.as_deref() {
                Some("EUI64") => Some(V6Type::Eui64),
                Some("4to6") => Some(V6Type::FourToSix),
                // NULL with a GUA: given by hand
                _ if current.gua.is_some() => Some(V6Type::Manual),
                _ => None,
            },
        };
        let ipv6 = o.ipv6.or_else(|| {
            (v6_type == Some(V6Type::Manual))
                .then(|| current.gua.as_deref().and_then(|s| s.parse().ok()))
                .flatten()
        });
        match (net, hwa) {
            (Some(net), Some(hwa)) => plan.ifaces.push(Iface {
                path: String::new(),
                port: Some(current.port),
                net,
                subnet,
                ipv4,
                hwa,
                ssh: o.ssh,
                v6_type,
                ipv6,
                aliases,
                new_aliases,
                addr_changed: o.net.is_some() || o.ipv4.is_some(),
                v6_changed: o.net.is_some()
                    || o.ipv4.is_some()
                    || o.hwa.is_some()
                    || o.inet6_addr_type.is_some()
                    || o.ipv6.is_some(),
                aliases_changed: o.add_aliases.is_some() || o.remove_aliases.is_some(),
            }),
            (None, _) if o.net.is_none() => plan.problems.push((
                "host".into(),
                format!(
                    "the interface `{}` has no subnet in the device database",
                    o.host
                ),
            )),
            (_, None) => plan.problems.push((
                "hwa".into(),
                format!(
                    "the interface `{}` has no hardware address; give one in hwa",
                    o.host
                ),
            )),
            _ => {}
        }
    }
    push_new_ifaces(conn, memo, &mut plan, "add_interfaces", added_ifaces(&o)).await?;
    plan.kept_ports = ports
        .iter()
        .filter(|p| !plan.removed_ports.contains(&p.port))
        .filter(|p| !plan.ifaces.iter().any(|i| i.port == Some(p.port)))
        .map(|p| (p.port, p.net))
        .collect();
    if plan.kept_ports.is_empty() && plan.ifaces.is_empty() {
        plan.problems.push((
            "remove_interfaces".into(),
            "a device keeps at least one interface; order a delete_device to remove it".into(),
        ));
    }
    plan.target = Some(target);
    Ok(Some(plan))
}

/// Who uses the values an order introduces — IPv4 addresses, hardware
/// addresses, aliases, device labels — read in one query for the checks
/// that guard their uniqueness (after the order's locks are taken). Values
/// are lower-case; users are port ids (device ids for labels), ascending.
#[derive(Debug, Default)]
pub struct Usage {
    users: std::collections::HashMap<(&'static str, String), Vec<i64>>,
    /// The persons the order names (admin, users) by `PERS_KEY`: `None`
    /// when `d_pers` has no such person, else their org unit.
    pub persons: std::collections::HashMap<i64, Option<Option<String>>>,
    /// With [`Wanted::facts_of`]: the device's admin …
    pub admin: Option<i64>,
    /// … and the deputyships that cover it: (deputy, until).
    pub deputyships: Vec<(i64, Option<String>)>,
}

impl Usage {
    /// Ports (or devices) holding `value` of `kind` (`ipv4`, `mac`,
    /// `alias` as `name.domain`, `label`); `None` when the value was not
    /// looked up.
    pub fn users(&self, kind: &'static str, value: &str) -> Option<&[i64]> {
        self.users
            .get(&(kind, value.to_ascii_lowercase()))
            .map(Vec::as_slice)
    }

    /// Looks up everything `wanted` asks for, in one query: the users of its
    /// values, its persons, and — remembered in `memo` for [`plan`] and the
    /// execution — its subnets and new object ids.
    pub async fn load(
        conn: &mut AnyConnection,
        memo: &mut Memo,
        wanted: &Wanted,
    ) -> Result<Self, HandlerError> {
        // The statement's text depends only on the shape of what is wanted
        // (which arms, in which order), so it is built once per shape; the
        // values are parameters.
        let postgres = is_postgres(conn);
        let mut usage = Usage::default();
        let mut shape = Vec::new();
        let mut binds: Vec<String> = Vec::new();
        for key in &wanted.persons {
            usage.persons.insert(*key, None);
            shape.push(Arm::Person);
            binds.push(key.to_string());
        }
        for (kind, value) in &wanted.values {
            usage.users.insert((kind, value.clone()), Vec::new());
            binds.push(value.clone());
            shape.push(match *kind {
                "ipv4" | "mac" | "label" => Arm::Value(kind),
                _ => {
                    // an alias that is not fully qualified: check_alias_unique reports it
                    let Some((name, domain)) = value.split_once('.') else {
                        binds.pop();
                        continue;
                    };
                    binds.push(name.to_owned());
                    binds.push(domain.to_owned());
                    Arm::Alias(kind)
                }
            });
        }
        for net in &wanted.nets {
            shape.push(Arm::Subnet);
            binds.push(net.network().to_string());
            binds.push(net.netmask().to_string());
            memo.put(subnet_net_memo(*net), None::<SubnetRow>);
        }
        if let Some(device) = wanted.ports_of {
            shape.push(Arm::Ports);
            binds.push(device.to_string());
        }
        if let Some(device) = wanted.facts_of {
            shape.push(Arm::Facts);
            binds.push(device.to_string());
        }
        if let Some(ports) = wanted.ids {
            shape.push(if postgres { Arm::Ids(ports) } else { Arm::Max });
        }
        if shape.is_empty() {
            return Ok(usage);
        }
        let sql = usage_sql(shape);
        let mut query = sqlx::query(&sql);
        for b in &binds {
            query = query.bind(b.as_str());
        }
        let mut ids = Vec::new();
        let (mut max_device, mut max_port) = (0, 0);
        let mut ports: Vec<PortRow> = Vec::new();
        let mut aliases: Vec<(i64, (String, String, bool))> = Vec::new();
        for row in query.fetch_all(&mut *conn).await? {
            let kind: String = row.try_get(0)?;
            let id: i64 = row.try_get(2)?;
            let text = |i: usize| row.try_get::<Option<String>, _>(3 + i);
            match kind.as_str() {
                "port" => {
                    let net: Option<i64> = row.try_get(3)?;
                    if !ports.iter().any(|p| p.port == id) {
                        let subnet = match (net, text(10)?, text(11)?) {
                            (Some(net), Some(addr), Some(mask)) => Some(subnet_of(
                                net,
                                &addr,
                                &mask,
                                text(12)?,
                                text(13)?,
                                text(14)?,
                            )?),
                            _ => None,
                        };
                        ports.push(PortRow {
                            port: id,
                            net,
                            ipv4: text(1)?,
                            hwa: text(2)?,
                            ssh: text(3)?,
                            v6_type: text(4)?,
                            lla: text(5)?,
                            gua: text(6)?,
                            aliases: Vec::new(),
                            subnet,
                        });
                    }
                    if let (Some(name), Some(domain)) = (text(7)?, text(8)?) {
                        let canonical = text(9)?.as_deref() == Some("Y");
                        aliases.push((id, (name, domain, canonical)));
                    }
                }
                "person" => {
                    usage.persons.insert(id, Some(row.try_get(1)?));
                }
                "subnet" => {
                    let (Some(addr), Some(mask)) = (text(1)?, text(2)?) else {
                        continue;
                    };
                    let subnet = subnet_of(id, &addr, &mask, text(3)?, text(4)?, text(5)?)?;
                    memo.put(subnet_net_memo(subnet.net), Some(subnet));
                }
                "id" => ids.push(id),
                "admin" => usage.admin = usage.admin.or(Some(id)),
                "deputy" => usage.deputyships.push((id, text(1)?)),
                "max" if row.try_get::<String, _>(1)? == "x_device" => max_device = id,
                "max" => max_port = id,
                _ => {
                    let value: String = row.try_get(1)?;
                    if let Some(users) = usage
                        .users
                        .iter_mut()
                        .find(|((k, v), _)| *k == kind && *v == value)
                        .map(|(_, u)| u)
                    {
                        users.push(id);
                    }
                }
            }
        }
        if let Some(ports) = wanted.ids {
            let ids = if is_postgres(conn) {
                ids.sort_unstable();
                ids
            } else {
                let n = i64::try_from(ports).unwrap_or(i64::MAX);
                std::iter::once(max_device + 1)
                    .chain((1..=n).map(|i| max_port + i))
                    .collect()
            };
            memo.put(IDS_MEMO, ids);
        }
        if let Some(device) = wanted.ports_of {
            // as `device_ports` orders them: by id, canonical alias first
            ports.sort_by_key(|p| p.port);
            aliases
                .sort_by(|a, b| (a.0, !a.1.2, &a.1.0, &a.1.1).cmp(&(b.0, !b.1.2, &b.1.0, &b.1.1)));
            for (port, alias) in aliases {
                if let Some(p) = ports.iter_mut().find(|p| p.port == port) {
                    p.aliases.push(alias);
                }
            }
            remember_ports(memo, device, ports);
        }
        for users in usage.users.values_mut() {
            users.sort_unstable();
            users.dedup();
        }
        Ok(usage)
    }
}

/// One arm of [`Usage::load`]'s `UNION ALL`, with the parameters it takes.
#[derive(Clone, PartialEq, Eq, Hash)]
enum Arm {
    /// `PERS_KEY`: 1
    Person,
    /// `ipv4`, `mac` or `label` and the value: 1
    Value(&'static str),
    /// the value, name and domain: 3 (the kind is the one the order gave)
    Alias(&'static str),
    /// network, mask: 2
    Subnet,
    /// the device: 1
    Ports,
    /// the device: 1
    Facts,
    /// new object ids for a device and this many ports (PostgreSQL): none
    Ids(usize),
    /// the largest object ids so far (SQLite): none
    Max,
}

/// The text of [`Usage::load`]'s statement for `shape`, made once per
/// shape: an order's statement differs from the last one of its kind only
/// in its parameters.
fn usage_sql(shape: Vec<Arm>) -> std::sync::Arc<str> {
    static TEXTS: super::Texts<Vec<Arm>> = super::Texts::new();
    TEXTS.get(shape, |shape| build_usage_sql(shape))
}

fn build_usage_sql(shape: &[Arm]) -> String {
    // Every arm has the same columns: kind, value, id, a second id, then
    // fourteen texts (a port's columns) — NULLs typed: PostgreSQL types a
    // UNION's columns arm by arm.
    let pad = |n: usize| vec!["CAST(NULL AS TEXT)"; n].join(", ");
    let pad_ = &format!("CAST(NULL AS BIGINT), {}", pad(14));
    // parameters, not literals: one prepared statement per shape
    let mut n = 0;
    let mut next = || {
        n += 1;
        n
    };
    // who uses a value: the id column and where to find it
    let value_arm = |kind: &str, n: usize, id: &str, rest: &str| {
        format!("SELECT '{kind}', CAST(${n} AS TEXT), {id}, {pad_} FROM {rest}")
    };
    let mut arms = Vec::new();
    for arm in shape {
        arms.push(match arm {
            Arm::Person => format!(
                "SELECT 'person', ORG, CAST(PERS_KEY AS BIGINT), {pad_} FROM d_pers \
                 WHERE PERS_KEY = CAST(${} AS BIGINT)",
                next()
            ),
            Arm::Value(kind) => {
                let n = next();
                let (id, rest) = match *kind {
                    "ipv4" => ("PT_OBJ_ID", format!("x_port WHERE PT_DEV_ADDR = ${n}")),
                    "mac" => ("PT_OBJ_ID", format!("x_port WHERE LOWER(HARDW_ADDR) = ${n}")),
                    _ => ("DV_OBJ_ID", format!("x_device WHERE LOWER(DV_LABEL) = ${n}")),
                };
                value_arm(kind, n, id, &rest)
            }
            Arm::Alias(kind) => {
                let (v, name, domain) = (next(), next(), next());
                value_arm(
                    kind,
                    v,
                    "PT_OBJ_ID",
                    &format!("n_devname WHERE LOWER(DN_NAME) = ${name} AND LOWER(DOMAIN) = ${domain}"),
                )
            }
            Arm::Subnet => {
                let (a, m) = (next(), next());
                format!(
                    "SELECT 'subnet', CAST(NULL AS TEXT), NN_OBJ_ID, CAST(NULL AS BIGINT), NN_NET_ADDR, \
                     SUBNET_MASK, NN_V4_STATE, NN_V6_STATE, NN_V6_NETPREF, {} \
                     FROM n_netname WHERE NN_NET_ADDR = ${a} AND SUBNET_MASK = ${m}",
                    pad(9)
                )
            }
            Arm::Ports => format!(
                "SELECT 'port', CAST(NULL AS TEXT), p.PT_OBJ_ID, p.NET_OBJ_ID, p.PT_DEV_ADDR, \
                 p.HARDW_ADDR, p.SSH, p.INET6_ADDR_TYPE, p.LLA, p.GUA, n.DN_NAME, n.DOMAIN, \
                 n.CANONICAL, s.NN_NET_ADDR, s.SUBNET_MASK, s.NN_V4_STATE, s.NN_V6_STATE, \
                 s.NN_V6_NETPREF \
                 FROM x_link l JOIN x_port p ON p.PT_OBJ_ID = l.OBJ_ID_L \
                 LEFT JOIN n_devname n ON n.PT_OBJ_ID = p.PT_OBJ_ID \
                 LEFT JOIN n_netname s ON s.NN_OBJ_ID = p.NET_OBJ_ID \
                 WHERE l.OBJ_ID_H = CAST(${} AS BIGINT) AND l.CLASS_L = 'PORT'",
                next()
            ),
            Arm::Facts => {
                let d = next();
                // one indexed lookup per arm (see `pip::device_facts`)
                [
                    format!(
                        "SELECT 'admin', CAST(NULL AS TEXT), OBJ_ID_L, {pad_} FROM x_link \
                         WHERE OBJ_ID_H = CAST(${d} AS BIGINT) AND CLASS_L = 'ADMIN'"
                    ),
                    format!(
                        "SELECT 'deputy', CAST(NULL AS TEXT), p.DEPUTY, CAST(NULL AS BIGINT), p.UNTIL, {} \
                         FROM x_link l CROSS JOIN auftrag_deputies p \
                         WHERE l.OBJ_ID_H = CAST(${d} AS BIGINT) AND l.CLASS_L = 'ADMIN' \
                         AND p.DEVICE = CAST(${d} AS BIGINT) AND p.ADMIN = l.OBJ_ID_L",
                        pad(13)
                    ),
                    format!(
                        "SELECT 'deputy', CAST(NULL AS TEXT), p.DEPUTY, CAST(NULL AS BIGINT), p.UNTIL, {} \
                         FROM x_link l CROSS JOIN auftrag_deputies p \
                         WHERE l.OBJ_ID_H = CAST(${d} AS BIGINT) AND l.CLASS_L = 'ADMIN' \
                         AND p.NAMED_BY = l.OBJ_ID_L AND p.DEVICE IS NULL AND p.ORG IS NULL",
                        pad(13)
                    ),
                    format!(
                        "SELECT 'deputy', CAST(NULL AS TEXT), p.DEPUTY, CAST(NULL AS BIGINT), p.UNTIL, {} \
                         FROM x_device x CROSS JOIN auftrag_deputies p \
                         WHERE x.DV_OBJ_ID = CAST(${d} AS BIGINT) AND p.ORG = x.DV_LOC_ORG",
                        pad(13)
                    ),
                ]
                .join(" UNION ALL ")
            }
            Arm::Ids(ports) => format!(
                "SELECT 'id', CAST(NULL AS TEXT), nextval('auftrag_object_id'), {pad_} \
                 FROM generate_series(0, {ports})"
            ),
            Arm::Max => [
                format!(
                    "SELECT 'max', 'x_device', (SELECT COALESCE(MAX(DV_OBJ_ID), 0) FROM x_device), {pad_}"
                ),
                format!(
                    "SELECT 'max', 'x_port', (SELECT COALESCE(MAX(PT_OBJ_ID), 0) FROM x_port), {pad_}"
                ),
            ]
            .join(" UNION ALL "),
        });
    }
    arms.join(" UNION ALL ")
}

/// Where the checks find the [`Usage`] of the order's values.
pub const USAGE_MEMO: &str = "junet.usage";

/// Remembers `usage` for the checks, and the persons it looked up.
pub fn remember_usage(memo: &mut Memo, usage: Usage) {
    for (key, org) in &usage.persons {
        memo.put(person_memo(*key), org.clone());
    }
    memo.put(USAGE_MEMO, usage);
}

/// Where a person's `d_pers` row was looked up: `None` when there is none,
/// else the org unit (an `Option<Option<String>>`); registration reads the
/// admin's org unit from here.
pub fn person_memo(key: i64) -> String {
    super::id_key("junet.d_pers:", key)
}

/// What [`Usage::load`] looks up.
#[derive(Debug, Default)]
pub struct Wanted {
    /// (kind, value): `ipv4`, `mac`, `alias` (`name.domain`), `label`; lower-case.
    pub values: Vec<(&'static str, String)>,
    /// `PERS_KEY`s.
    pub persons: Vec<i64>,
    /// Subnets by range.
    pub nets: Vec<Ipv4Net>,
    /// New object ids for a device and this many ports (at the engine stage).
    pub ids: Option<usize>,
    /// Read the ports of this device too (see [`device_ports`]).
    pub ports_of: Option<i64>,
    /// Read this device's admin and the deputyships that cover it too.
    pub facts_of: Option<i64>,
}

impl Wanted {
    /// The values a registration introduces, the order's label and the
    /// persons it names — from its fields alone, so that they can be locked
    /// and loaded before the plan, with the plan's subnets.
    pub fn of_registration(o: &RegisterDevice, order: &OrderData) -> Self {
        let mut w = Wanted::default();
        w.add_new_ifaces(&registered_ifaces(o));
        w.add_order(order);
        w
    }

    /// The keys an order must hold exclusively from its check to its
    /// commit: its IPv4 addresses, aliases and device label.
    pub fn lock_keys(&self) -> Vec<String> {
        self.values
            .iter()
            .filter_map(|(kind, value)| match *kind {
                "ipv4" => Some(format!("ipv4:{value}")),
                "alias" => Some(format!("alias:{value}")),
                "label" => Some(format!("host:{value}")),
                _ => None,
            })
            .collect()
    }

    /// The same for a change, from its fields alone (so that it can be
    /// loaded with the device's ports, before the plan): the values it
    /// sets or adds.
    pub fn of_change(o: &ChangeDevice, order: &OrderData) -> Self {
        let mut w = Wanted::default();
        let added: Vec<Hostname> = o
            .add_aliases
            .iter()
            .flatten()
            .map(|a| a.name.clone())
            .collect();
        w.add_iface(o.ipv4, o.hwa.as_ref(), &added);
        w.add_new_ifaces(&added_ifaces(o));
        if let Some(IpNet::V4(net)) = o.net.map(|n| n.0) {
            w.nets.push(net.trunc());
        }
        w.add_order(order);
        w
    }

    fn add_new_ifaces(&mut self, ifaces: &[NewIface]) {
        for x in ifaces {
            let aliases: Vec<Hostname> = x.aliases.iter().map(|(a, _)| a.clone()).collect();
            self.add_iface(x.ipv4, Some(&x.hwa), &aliases);
            if let IpNet::V4(net) = x.net.0 {
                self.nets.push(net.trunc());
            }
        }
    }

    fn add_iface(&mut self, ipv4: Option<Ipv4Addr>, hwa: Option<&MacAddr6>, aliases: &[Hostname]) {
        if let Some(ip) = ipv4 {
            self.values.push(("ipv4", ip.to_string()));
        }
        if let Some(hwa) = hwa {
            self.values.push(("mac", crate::checks::normalize_mac(hwa)));
        }
        for a in aliases {
            self.values.push(("alias", a.as_str().to_ascii_lowercase()));
        }
    }

    fn add_order(&mut self, order: &OrderData) {
        for field in ["host", "label"] {
            if (field == "label" || order.order_type.name == RegisterDevice::NAME)
                && let Ok(Some(host)) = order.typed::<Hostname>(field)
            {
                self.values.push(("label", label_of(&host)));
            }
        }
        if let Ok(Some(admin)) = order.typed::<PersonRef>("admin") {
            self.persons.extend(admin.as_str().parse::<i64>());
        }
        if let Ok(Some(users)) = order.typed::<Vec<PersonRef>>("users") {
            self.persons
                .extend(users.iter().filter_map(|u| u.as_str().parse::<i64>().ok()));
        }
        self.values.sort();
        self.values.dedup();
        self.persons.sort_unstable();
        self.persons.dedup();
        self.nets.sort();
        self.nets.dedup();
    }
}

/// Where [`Usage::load`] leaves new object ids: the device's, then the
/// ports' (a `Vec<i64>`).
pub const IDS_MEMO: &str = "junet.ids";

fn subnet_net_memo(net: Ipv4Net) -> String {
    format!("junet.subnet_net:{}", net.trunc())
}

/// Set in the memo once the order's advisory keys ([`order_lock_keys`]) are
/// held (the policy resolvers take them with their first query).
pub const KEYS_LOCKED: &str = "junet.keys_locked";

/// The order's fields as a `register_device`, parsed once per workflow run
/// (the policy resolvers, the checks and the executing action all need
/// them; a handler that changes the fields clears the memo). A parse error
/// is not remembered.
pub fn registration(
    memo: &mut Memo,
    order: &OrderData,
) -> Result<Arc<RegisterDevice>, auftrag_engine::types::FieldError> {
    parsed_once(
        memo,
        order,
        "junet.order.register_device",
        RegisterDevice::from_order,
    )
}

/// The order's fields as a `change_device`, parsed once per workflow run
/// (see [`registration`]).
pub fn change_of(
    memo: &mut Memo,
    order: &OrderData,
) -> Result<Arc<ChangeDevice>, auftrag_engine::types::FieldError> {
    parsed_once(
        memo,
        order,
        "junet.order.change_device",
        ChangeDevice::from_order,
    )
}

fn parsed_once<T: Send + Sync + 'static>(
    memo: &mut Memo,
    order: &OrderData,
    key: &'static str,
    parse: fn(&OrderData) -> Result<T, auftrag_engine::types::FieldError>,
) -> Result<Arc<T>, auftrag_engine::types::FieldError> {
    if let Some(parsed) = memo.get::<T>(key) {
        return Ok(parsed);
    }
    Ok(memo.put(key, parse(order)?))
}

/// The advisory lock keys of a registration's or change's values, from its
/// fields, sorted (see [`Wanted::lock_keys`]).
pub fn order_lock_keys(memo: &mut Memo, order: &OrderData) -> Vec<String> {
    let wanted = match order.order_type.name {
        RegisterDevice::NAME => registration(memo, order)
            .ok()
            .map(|o| Wanted::of_registration(&o, order)),
        ChangeDevice::NAME => change_of(memo, order)
            .ok()
            .map(|o| Wanted::of_change(&o, order)),
        _ => None,
    };
    let mut keys = wanted.map(|w| w.lock_keys()).unwrap_or_default();
    keys.sort();
    keys.dedup();
    keys
}

/// Whether the connection is PostgreSQL (READ COMMITTED: a check and the
/// insert after it are not atomic without a lock).
pub fn is_postgres(conn: &AnyConnection) -> bool {
    conn.backend_name().eq_ignore_ascii_case("postgresql")
}

/// Takes transaction-scoped advisory locks on `keys` (sorted, so two orders
/// never wait for each other in a cycle). Held until the order's transaction
/// ends, so a concurrent order with the same IPv4, alias or host name checks
/// after this one has committed — and sees its rows. SQLite needs none: the
/// order's transaction holds the database's write lock (`BEGIN IMMEDIATE`).
/// Not taken in the portal stage, which writes nothing.
pub async fn lock_keys(
    conn: &mut AnyConnection,
    stage: Stage,
    mut keys: Vec<String>,
) -> Result<(), HandlerError> {
    if stage != Stage::Engine || !is_postgres(conn) {
        return Ok(());
    }
    keys.sort();
    keys.dedup();
    if keys.is_empty() {
        return Ok(());
    }
    // One statement; PostgreSQL evaluates a target list from left to right,
    // so the locks are taken in the sorted order.
    let locks: Vec<String> = (1..=keys.len())
        .map(|i| format!("pg_advisory_xact_lock(hashtextextended(${i}, 0))"))
        .collect();
    let sql = format!("SELECT COUNT(*) FROM (SELECT {}) AS l", locks.join(", "));
    let mut query = sqlx::query(&sql);
    for key in keys {
        query = query.bind(key);
    }
    query.fetch_one(&mut *conn).await?;
    Ok(())
}

/// Ids for a new device and its `ports` new ports, in one query: from the
/// sequence on PostgreSQL, the next free ones on SQLite (whose write
/// transaction is exclusive).
pub async fn object_ids(
    conn: &mut AnyConnection,
    memo: &mut Memo,
    ports: usize,
) -> Result<(i64, Vec<i64>), HandlerError> {
    if let Some(ids) = memo.get::<Vec<i64>>(IDS_MEMO)
        && let Some((device, rest)) = ids.split_first()
        && rest.len() == ports
    {
        let ids = (*device, rest.to_vec());
        memo.remove(IDS_MEMO);
        return Ok(ids);
    }
    let n = i64::try_from(ports).unwrap_or(i64::MAX);
    if is_postgres(conn) {
        let ids: Vec<i64> = sqlx::query_scalar(
            "SELECT nextval('auftrag_object_id') FROM generate_series(CAST(0 AS BIGINT), $1)",
        )
        .bind(n)
        .fetch_all(&mut *conn)
        .await?;
        let (device, ports) = ids
            .split_first()
            .ok_or_else(|| HandlerError::Failed("no object id from the sequence".into()))?;
        return Ok((*device, ports.to_vec()));
    }
    let row = sqlx::query(
        "SELECT (SELECT COALESCE(MAX(DV_OBJ_ID), 0) FROM x_device), \
                (SELECT COALESCE(MAX(PT_OBJ_ID), 0) FROM x_port)",
    )
    .fetch_one(&mut *conn)
    .await?;
    let (device, port): (i64, i64) = (row.try_get(0)?, row.try_get(1)?);
    Ok((device + 1, (1..=n).map(|i| port + i).collect()))
}

/// An SQL expression for a new object id of `x_device` / `x_port`, to use
/// in the row's `INSERT … RETURNING`: a sequence on PostgreSQL (so that
/// concurrent orders never pick the same), the next free id on SQLite
/// (whose write transaction is exclusive).
pub fn new_object_id(conn: &AnyConnection, table: &'static str) -> &'static str {
    match (is_postgres(conn), table) {
        (true, _) => "nextval('auftrag_object_id')",
        (false, "x_device") => "(SELECT COALESCE(MAX(DV_OBJ_ID), 0) + 1 FROM x_device)",
        (false, _) => "(SELECT COALESCE(MAX(PT_OBJ_ID), 0) + 1 FROM x_port)",
    }
}
