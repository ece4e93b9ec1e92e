//! A generated order history for benchmarks and load tests (`auftrag
//! demo-data --orders N`): orders of every JuNet type about the devices of a
//! generated [`Network`], by their admins, spread over two years, most of
//! them carried out at once, some parked for staff and accepted or
//! rejected with a comment, some aborted by a check's error, a few still
//! waiting — written as history rows in bulk (nothing runs; the device
//! database is not touched). Deterministic for a seed.

use std::collections::BTreeMap;

use auftrag_engine::EngineError;
use auftrag_engine::context::{Fields, Finding, OrderData};
use auftrag_engine::defs::Definitions;
use auftrag_engine::store::StoredOrder;
use auftrag_engine::store::history::{INSERTED, StateEntry, format_instant};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

use super::generate::Network;

/// Orders per statement (19 columns each, under both databases' limits of
/// parameters).
const CHUNK: usize = 500;

/// Comments staff write, for full-text searches.
const ACCEPT_COMMENTS: &[&str] = &[
    "accepted: the device moved to another building",
    "accepted: MAC confirmed with the admin by phone",
    "accepted: second network card of the same server",
];
const REJECT_COMMENTS: &[&str] = &[
    "rejected: the MAC belongs to a printer in another institute",
    "rejected: please register the device first",
    "rejected: duplicate request",
];

struct Clock {
    /// Milliseconds since the Unix epoch.
    ms: i64,
}

impl Clock {
    fn at(&self) -> String {
        format_instant(
            time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.ms) * 1_000_000)
                .unwrap_or(time::OffsetDateTime::UNIX_EPOCH),
        )
    }

    fn step(&mut self, ms: i64) -> String {
        self.ms += ms;
        self.at()
    }
}

fn mac(rng: &mut StdRng) -> String {
    let b: [u8; 5] = rng.random();
    format!(
        "0a:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        b[0], b[1], b[2], b[3], b[4]
    )
}

/// Where generated orders go: ids from `base`, `total` of them, created
/// evenly over the `span_ms` up to now.
struct Plan {
    base: i64,
    total: usize,
    span_ms: i64,
    now_ms: i64,
}

/// The orders `first..first + count` of the history `plan` describes.
fn orders(
    defs: &'static Definitions,
    network: &Network,
    seed: u64,
    plan: &Plan,
    first: i64,
    count: usize,
) -> Vec<StoredOrder> {
    let mut out = Vec::with_capacity(count);
    for i in 0..count {
        let id = first + i as i64;
        // one generator per order: any chunk can be made on its own
        let mut rng = StdRng::seed_from_u64(seed ^ (id as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let device = &network.devices[rng.random_range(0..network.devices.len())];
        let port = &device.ports[0];
        let host = format!("{}.gen.kfa-juelich.de", device.label);
        // orders come in id order, spread evenly over the span
        let created_ms = plan.now_ms - plan.span_ms
            + plan.span_ms * (id - plan.base) / (plan.total as i64).max(1);
        let mut clock = Clock { ms: created_ms };
        let kind = rng.random_range(0..100);
        let (type_name, fields, changed): (&str, Fields, BTreeMap<String, [Value; 2]>) = match kind
        {
            0..=54 => {
                let new = mac(&mut rng);
                (
                    "change_device",
                    [
                        ("host".to_owned(), json!(host)),
                        ("hwa".to_owned(), json!(new)),
                    ]
                    .into(),
                    [("hwa".to_owned(), [json!(port.mac), json!(new)])].into(),
                )
            }
            55..=64 => {
                let octets = port.ipv4.octets();
                let new = format!(
                    "{}.{}.{}.{}",
                    octets[0],
                    octets[1],
                    octets[2],
                    rng.random_range(200..=250)
                );
                (
                    "change_device",
                    [
                        ("host".to_owned(), json!(host)),
                        ("ipv4".to_owned(), json!(new)),
                    ]
                    .into(),
                    [(
                        "ipv4".to_owned(),
                        [json!(port.ipv4.to_string()), json!(new)],
                    )]
                    .into(),
                )
            }
            65..=79 => {
                let name = format!("new{id}.gen.kfa-juelich.de");
                let hwa = mac(&mut rng);
                (
                    "register_device",
                    [
                        ("host".to_owned(), json!(name)),
                        ("dv_class".to_owned(), json!("PC")),
                        ("geb".to_owned(), json!("16.3")),
                        ("raum".to_owned(), json!("R 2012")),
                        (
                            "interfaces".to_owned(),
                            json!([{"net": "10.100.0.0/24", "hwa": hwa, "aliases": [{"name": name}]}]),
                        ),
                    ]
                    .into(),
                    [
                        ("host".to_owned(), [Value::Null, json!(name)]),
                        ("hwa".to_owned(), [Value::Null, json!(hwa)]),
                    ]
                    .into(),
                )
            }
            80..=87 => (
                "delete_device",
                [("host".to_owned(), json!(host))].into(),
                [
                    ("host".to_owned(), [json!(host), Value::Null]),
                    ("hwa".to_owned(), [json!(port.mac), Value::Null]),
                    (
                        "ipv4".to_owned(),
                        [json!(port.ipv4.to_string()), Value::Null],
                    ),
                ]
                .into(),
            ),
            _ => {
                let deputy = network.persons[rng.random_range(0..network.persons.len())].key;
                (
                    "name_deputy",
                    [
                        ("host".to_owned(), json!(host)),
                        ("deputy".to_owned(), json!(deputy.to_string())),
                    ]
                    .into(),
                    [(
                        "deputy".to_owned(),
                        [Value::Null, json!(deputy.to_string())],
                    )]
                    .into(),
                )
            }
        };
        let order_type = defs
            .order_type(type_name)
            .expect("JuNet has the generated order types");
        let created_at = clock.at();
        let mut states = vec![StateEntry {
            state: INSERTED.into(),
            at: created_at.clone(),
            comment: None,
            by: Some(device.admin.to_string()),
        }];
        let mut push =
            |clock: &mut Clock, state: &str, ms: i64, comment: Option<&str>, by: Option<i64>| {
                states.push(StateEntry {
                    state: state.into(),
                    at: clock.step(ms),
                    comment: comment.map(str::to_owned),
                    by: by.map(|b| b.to_string()),
                });
            };
        let (mut errors, mut warnings, mut accepted) = (Vec::new(), Vec::new(), Vec::new());
        let staff = network.staff[rng.random_range(0..network.staff.len())];
        let outcome = rng.random_range(0..100);
        let warning = Finding {
            check: "check_hwa_unique".into(),
            field: Some("hwa".into()),
            message: "the MAC address is registered for another device".into(),
        };
        push(
            &mut clock,
            "CHECKS_DONE",
            rng.random_range(2..20),
            None,
            None,
        );
        let (state, closed, changed) = match outcome {
            0..=77 => {
                push(&mut clock, "CHECKS_OK", 0, None, None);
                push(&mut clock, "COMPLETED", rng.random_range(1..30), None, None);
                ("COMPLETED", true, changed)
            }
            78..=84 => {
                push(&mut clock, "CHECKS_WARN", 0, None, None);
                push(&mut clock, "WAITING", 1, None, None);
                let comment = ACCEPT_COMMENTS[rng.random_range(0..ACCEPT_COMMENTS.len())];
                push(
                    &mut clock,
                    "INITIAL",
                    rng.random_range(60_000..259_200_000),
                    Some(comment),
                    Some(staff),
                );
                push(
                    &mut clock,
                    "CHECKS_DONE",
                    rng.random_range(2..20),
                    None,
                    None,
                );
                push(&mut clock, "CHECKS_OK", 0, None, None);
                push(&mut clock, "COMPLETED", rng.random_range(1..30), None, None);
                accepted.push(warning);
                ("COMPLETED", true, changed)
            }
            85..=91 => {
                push(&mut clock, "CHECKS_ERR", 0, None, None);
                push(&mut clock, "ABORTED", 1, None, None);
                errors.push(Finding {
                    check: if type_name == "register_device" {
                        "check_host_free"
                    } else {
                        "check_ipv4_free"
                    }
                    .into(),
                    field: Some("host".into()),
                    message: "the name or address is taken".into(),
                });
                ("ABORTED", true, BTreeMap::new())
            }
            92..=96 => {
                push(&mut clock, "CHECKS_WARN", 0, None, None);
                push(&mut clock, "WAITING", 1, None, None);
                let comment = REJECT_COMMENTS[rng.random_range(0..REJECT_COMMENTS.len())];
                push(
                    &mut clock,
                    "ABORTED",
                    rng.random_range(60_000..259_200_000),
                    Some(comment),
                    Some(staff),
                );
                warnings.push(warning);
                ("ABORTED", true, BTreeMap::new())
            }
            _ => {
                push(&mut clock, "CHECKS_WARN", 0, None, None);
                push(&mut clock, "WAITING", 1, None, None);
                warnings.push(warning);
                ("WAITING", false, BTreeMap::new())
            }
        };
        let updated_at = states.last().map(|s| s.at.clone()).unwrap_or_default();
        let facts: Fields = [
            ("resource.admin".to_owned(), json!(device.admin.to_string())),
            ("resource.device".to_owned(), json!(device.id)),
            ("resource.org".to_owned(), json!(device.org)),
        ]
        .into();
        out.push(StoredOrder {
            data: OrderData {
                id: Some(id),
                order_type,
                requester: device.admin.to_string(),
                fields,
                errors,
                warnings,
                accepted,
                changes: changed,
                facts: Some(facts),
            },
            state: state.to_owned(),
            closed,
            created_at,
            updated_at,
            states,
        });
    }
    out
}

/// Writes `count` generated orders after the largest order id there is,
/// in transactions of 20,000; `progress` is told how many are written.
/// `defs` are JuNet's definitions (`Engine::defs` of an engine opened with
/// the JuNet domain).
pub async fn insert(
    store: &auftrag_engine::store::Store,
    defs: &'static Definitions,
    network: &Network,
    count: usize,
    seed: u64,
    mut progress: impl FnMut(usize),
) -> Result<(), EngineError> {
    let mut conn = store.acquire().await?;
    let first: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(id), 0) + 1 FROM auftrag_orders")
        .fetch_one(&mut *conn)
        .await?;
    drop(conn);
    let plan = Plan {
        base: first,
        total: count,
        // two years, ending three days ago (the longest wait for staff)
        span_ms: 730 * 86_400_000,
        now_ms: time::OffsetDateTime::now_utc().unix_timestamp() * 1000 - 3 * 86_400_000,
    };
    let mut done = 0;
    while done < count {
        let mut tx = store.begin_write().await?;
        let end = (done + 20_000).min(count);
        while done < end {
            let n = CHUNK.min(end - done);
            let batch = orders(defs, network, seed, &plan, first + done as i64, n);
            auftrag_engine::store::insert_history_rows(&mut tx, defs, &batch).await?;
            done += n;
        }
        tx.commit().await?;
        progress(done);
    }
    let mut conn = store.acquire().await?;
    auftrag_engine::store::reset_order_ids(&mut conn, store.backend).await?;
    Ok(())
}
