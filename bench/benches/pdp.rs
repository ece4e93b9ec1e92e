//! The seven access rules of the thesis, decided by auftrag's compiled
//! policies and by Cedar (cedar-policy, pinned), over the same generated
//! network (10,000 devices, 5,000 persons, deputies, org units) and the same
//! requests, with attributes already resolved for both. Both must agree on
//! every request. Prints median and p99 per decision and the ratio; criterion
//! adds its own estimates.
//!
//! auftrag is timed as the engine calls it: `pdp::decide` (what the PEP,
//! `pdp::pep`, calls), which decides and builds the explanation — the
//! deciding policy and rule, the attributes the decision used, the
//! obligations — as Cedar's `is_authorized` always builds its response
//! (decision and diagnostics). That is the headline row against Cedar.
//! `pdp::evaluate`, the bare outcome without an explanation, which no caller
//! in the engine uses, is a second row.
//!
//!     cargo bench --manifest-path bench/Cargo.toml --bench pdp

use std::collections::{HashMap, HashSet};
use std::hint::black_box;
use std::str::FromStr;
use std::time::Instant;

use auftrag::junet::generate::Network;
use auftrag_engine::pdp::{self, Decision, Request, Value};
use cedar_policy::{Authorizer, Context, Entities, EntityUid, PolicySet, RestrictedExpression};
use criterion::Criterion;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const CEDAR_POLICIES: &str = r#"
// 1. Every employee may register a new device (and staff).
permit(principal, action == Action::"register_device", resource)
  when { context.subject.is_employee || context.subject.is_staff };
// 2. An admin may change or delete their own devices.
permit(principal, action in [Action::"change_device", Action::"delete_device"], resource)
  when { context.subject.person == context.resource.admin };
// 4. A deputy may change or delete the devices assigned to them, until the deputyship ends.
permit(principal, action in [Action::"change_device", Action::"delete_device"], resource)
  when { context.resource.deputies.contains(context.subject.person)
         && context.now <= context.resource.deputy_until };
// 5. An IT officer may change or delete devices of their organisation unit.
permit(principal, action in [Action::"change_device", Action::"delete_device"], resource)
  when { context.subject.itb_orgs.contains(context.resource.org) };
// 7. IP-management staff may change or delete every device.
permit(principal, action in [Action::"change_device", Action::"delete_device"], resource)
  when { context.subject.is_staff };
// 3. An admin may name deputies for their devices (one or all).
permit(principal, action == Action::"name_deputy", resource)
  when { context.subject.person == context.resource.admin
         || (context.resource.all_devices && context.subject.is_admin) };
// 6. An IT officer may name deputies for their organisation unit.
permit(principal, action == Action::"name_deputy", resource)
  when { context.subject.itb_orgs.contains(context.resource.org)
         || (context.resource.all_devices && context.subject.is_itb) };
// 7. Staff may name deputies too.
permit(principal, action == Action::"name_deputy", resource)
  when { context.subject.is_staff };
"#;

/// Attributes of one request, resolved once from the network.
struct Resolved {
    person: String,
    order_type: &'static str,
    device: String,
    is_employee: bool,
    is_admin: bool,
    is_itb: bool,
    itb_orgs: Vec<String>,
    is_staff: bool,
    admin: String,
    deputies: Vec<String>,
    /// Unix seconds; `None`: the person is no deputy of the device.
    deputy_until: Option<i64>,
    org: String,
    all_devices: bool,
    now: i64,
}

const ORDER_TYPES: [&str; 4] = [
    "register_device",
    "change_device",
    "delete_device",
    "name_deputy",
];

fn requests(net: &Network, n: usize, seed: u64) -> Vec<Resolved> {
    let mut rng = StdRng::seed_from_u64(seed);
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let admins: HashSet<i64> = net.devices.iter().map(|d| d.admin).collect();
    let mut itb_orgs: HashMap<i64, Vec<String>> = HashMap::new();
    for (p, org) in &net.it_officers {
        itb_orgs.entry(*p).or_default().push(org.clone());
    }
    let by_org_itb: HashMap<&str, i64> = net
        .it_officers
        .iter()
        .map(|(p, o)| (o.as_str(), *p))
        .collect();
    (0..n)
        .map(|_| {
            let device = &net.devices[rng.random_range(0..net.devices.len())];
            // Who asks: the admin, a deputy, the org's IT officer, staff, or anybody.
            let deputies_of_device: Vec<&auftrag::junet::generate::Deputy> = net
                .deputies
                .iter()
                .filter(|d| {
                    d.device == Some(device.id)
                        || (d.device.is_none() && d.org.is_none() && d.named_by == device.admin)
                        || d.org.as_deref() == Some(device.org.as_str())
                })
                .collect();
            let person = match rng.random_range(0..10) {
                0..=3 => device.admin,
                4 | 5 if !deputies_of_device.is_empty() => {
                    deputies_of_device[rng.random_range(0..deputies_of_device.len())].deputy
                }
                6 => by_org_itb
                    .get(device.org.as_str())
                    .copied()
                    .unwrap_or(device.admin),
                7 => net.staff[rng.random_range(0..net.staff.len())],
                _ => net.persons[rng.random_range(0..net.persons.len())].key,
            };
            let order_type = ORDER_TYPES[rng.random_range(0..ORDER_TYPES.len())];
            let deputy_until = deputies_of_device
                .iter()
                .filter(|d| d.deputy == person)
                .map(|d| d.until.unwrap_or(i64::MAX / 2))
                .max();
            Resolved {
                person: person.to_string(),
                order_type,
                device: device.label.clone(),
                is_employee: true,
                is_admin: admins.contains(&person),
                is_itb: itb_orgs.contains_key(&person),
                itb_orgs: itb_orgs.get(&person).cloned().unwrap_or_default(),
                is_staff: net.staff.contains(&person),
                admin: device.admin.to_string(),
                deputies: deputies_of_device
                    .iter()
                    .map(|d| d.deputy.to_string())
                    .collect(),
                deputy_until,
                org: device.org.clone(),
                all_devices: order_type == "name_deputy" && rng.random_bool(0.2),
                now,
            }
        })
        .collect()
}

fn auftrag_request(r: &Resolved) -> Request {
    let mut req = Request::new(&auftrag::generated::ATTRIBUTES);
    let mut set = |name: &str, v: Value| {
        let id = req
            .id_of(name)
            .unwrap_or_else(|| panic!("attribute {name} is declared"));
        req.set(id, v);
    };
    set("subject.person", Value::String(r.person.clone()));
    set("subject.is_employee", Value::Boolean(r.is_employee));
    set("subject.is_admin", Value::Boolean(r.is_admin));
    set("subject.is_itb", Value::Boolean(r.is_itb));
    set(
        "subject.itb_orgs",
        Value::Set(r.itb_orgs.iter().cloned().map(Value::String).collect()),
    );
    set("subject.is_staff", Value::Boolean(r.is_staff));
    set("action.order_type", Value::String(r.order_type.into()));
    set("resource.host", Value::String(r.device.clone()));
    set("resource.all_devices", Value::Boolean(r.all_devices));
    set("resource.admin", Value::String(r.admin.clone()));
    set(
        "resource.deputies",
        Value::Set(r.deputies.iter().cloned().map(Value::String).collect()),
    );
    if let Some(until) = r.deputy_until {
        set("resource.deputy_until", Value::Time(until));
    }
    set("resource.org", Value::String(r.org.clone()));
    set("environment.now", Value::Time(r.now));
    req
}

fn cedar_request(r: &Resolved) -> cedar_policy::Request {
    let s = |v: &str| RestrictedExpression::new_string(v.to_owned());
    let set = |vs: &[String]| RestrictedExpression::new_set(vs.iter().map(|v| s(v)));
    let record = |pairs: Vec<(&str, RestrictedExpression)>| {
        RestrictedExpression::new_record(pairs.into_iter().map(|(k, v)| (k.to_owned(), v)))
            .expect("record")
    };
    let context = Context::from_pairs([
        (
            "subject".to_owned(),
            record(vec![
                ("person", s(&r.person)),
                ("is_employee", RestrictedExpression::new_bool(r.is_employee)),
                ("is_admin", RestrictedExpression::new_bool(r.is_admin)),
                ("is_itb", RestrictedExpression::new_bool(r.is_itb)),
                ("itb_orgs", set(&r.itb_orgs)),
                ("is_staff", RestrictedExpression::new_bool(r.is_staff)),
            ]),
        ),
        (
            "resource".to_owned(),
            record(vec![
                ("admin", s(&r.admin)),
                ("deputies", set(&r.deputies)),
                // no deputyship: a time before any `now`
                (
                    "deputy_until",
                    RestrictedExpression::new_long(r.deputy_until.unwrap_or(i64::MIN)),
                ),
                ("org", s(&r.org)),
                ("all_devices", RestrictedExpression::new_bool(r.all_devices)),
            ]),
        ),
        ("now".to_owned(), RestrictedExpression::new_long(r.now)),
    ])
    .expect("context");
    let uid = |t: &str, id: &str| EntityUid::from_str(&format!("{t}::{id:?}")).expect("uid");
    cedar_policy::Request::new(
        uid("User", &r.person),
        uid("Action", r.order_type),
        uid("Device", &r.device),
        context,
        None,
    )
    .expect("request")
}

fn percentiles(mut ns: Vec<u64>) -> (u64, u64) {
    ns.sort_unstable();
    (ns[ns.len() / 2], ns[ns.len() * 99 / 100])
}

fn main() {
    let net = Network::generate(10_000, 42);
    let resolved = requests(&net, 20_000, 7);
    let ours: Vec<Request> = resolved.iter().map(auftrag_request).collect();
    let theirs: Vec<cedar_policy::Request> = resolved.iter().map(cedar_request).collect();
    let policies = PolicySet::from_str(CEDAR_POLICIES).expect("cedar policies parse");
    let entities = Entities::empty();
    let authorizer = Authorizer::new();
    let root = &auftrag::generated::POLICIES;

    // Both engines must decide every request alike.
    let mut permits = 0;
    for (i, (a, c)) in ours.iter().zip(&theirs).enumerate() {
        let a = pdp::decide(root, a).decision;
        assert_eq!(
            a,
            pdp::evaluate(root, &ours[i]).decision,
            "request {i}: decide and evaluate differ"
        );
        let c = authorizer.is_authorized(c, &policies, &entities).decision();
        let same = matches!(
            (a, c),
            (Decision::Permit, cedar_policy::Decision::Allow)
                | (Decision::Deny, cedar_policy::Decision::Deny)
        );
        assert!(
            same,
            "request {i} decided differently: auftrag {a:?}, cedar {c:?}"
        );
        permits += usize::from(a == Decision::Permit);
    }
    println!(
        "{} requests, {permits} permitted, {} denied; auftrag and Cedar agree on all",
        ours.len(),
        ours.len() - permits
    );

    // Per-decision latency, each decision timed on its own.
    let rounds = 10;
    let time_each = |f: &dyn Fn(usize)| {
        let mut ns = Vec::with_capacity(ours.len() * rounds);
        for _ in 0..rounds {
            for i in 0..ours.len() {
                let t = Instant::now();
                f(i);
                ns.push(t.elapsed().as_nanos() as u64);
            }
        }
        ns
    };
    let empty = time_each(&|i| {
        black_box(i);
    });
    // what the engine calls: the decision with its explanation
    let d = time_each(&|i| {
        black_box(pdp::decide(root, black_box(&ours[i])));
    });
    // the bare outcome, without an explanation
    let a = time_each(&|i| {
        black_box(pdp::evaluate(root, black_box(&ours[i])));
    });
    let c = time_each(&|i| {
        black_box(authorizer.is_authorized(black_box(&theirs[i]), &policies, &entities));
    });
    let (e50, e99) = percentiles(empty);
    let (d50, d99) = percentiles(d);
    let (a50, a99) = percentiles(a);
    let (c50, c99) = percentiles(c);
    println!("timer overhead: median {e50} ns, p99 {e99} ns (included below)");
    println!("| engine | median | p99 | Cedar / this, median | Cedar / this, p99 |");
    println!("|---|---|---|---|---|");
    let ratio = |cedar: u64, ours: u64| cedar as f64 / ours.max(1) as f64;
    println!(
        "| auftrag, `pdp::decide` (what the engine calls: decision and explanation) | {d50} ns | {d99} ns | {:.1}× | {:.1}× |",
        ratio(c50, d50),
        ratio(c99, d99)
    );
    println!(
        "| auftrag, `pdp::evaluate` (the bare outcome) | {a50} ns | {a99} ns | {:.1}× | {:.1}× |",
        ratio(c50, a50),
        ratio(c99, a99)
    );
    println!("| Cedar 4.14.1, `is_authorized` | {c50} ns | {c99} ns | | |");

    pip_from_sqlite(&net, &resolved);

    let mut crit = Criterion::default().configure_from_args();
    let mut i = 0usize;
    crit.bench_function("pdp/auftrag-decide", |b| {
        b.iter(|| {
            i = (i + 1) % ours.len();
            pdp::decide(root, black_box(&ours[i]))
        })
    });
    crit.bench_function("pdp/auftrag-evaluate", |b| {
        b.iter(|| {
            i = (i + 1) % ours.len();
            pdp::evaluate(root, black_box(&ours[i]))
        })
    });
    crit.bench_function("pdp/cedar", |b| {
        b.iter(|| {
            i = (i + 1) % theirs.len();
            authorizer.is_authorized(black_box(&theirs[i]), &policies, &entities)
        })
    });
    crit.final_summary();
}

/// The whole decision as the engine makes it: attributes resolved by the
/// JuNet resolvers from a SQLite file holding the same network, then the
/// compiled policies.
fn pip_from_sqlite(net: &Network, resolved: &[Resolved]) {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let dir = std::env::temp_dir().join(format!("auftrag-pdp-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let url = format!("sqlite://{}", dir.join("bench.db").display());
        let engine = auftrag_engine::Engine::open(&url, auftrag::domain())
            .await
            .expect("open");
        let mut tx = engine.store.begin_write().await.expect("tx");
        net.insert(&mut tx).await.expect("insert network");
        tx.commit().await.expect("commit");
        let defs = &auftrag::generated::DEFINITIONS;
        let auth = defs.authorization.expect("policies");
        let mut conn = engine.store.pool.acquire().await.expect("connection");
        let mut ns = Vec::new();
        for r in resolved.iter().take(5_000) {
            let order_type = defs.order_type(r.order_type).expect("order type");
            let mut fields = auftrag_engine::context::Fields::new();
            if !r.all_devices {
                fields.insert(
                    "host".into(),
                    format!("{}.gen.kfa-juelich.de", r.device).into(),
                );
            }
            let order = auftrag_engine::context::OrderData {
                id: None,
                order_type,
                requester: r.person.clone(),
                fields,
                errors: Vec::new(),
                warnings: Vec::new(),
                accepted: Vec::new(),
                changes: Default::default(),
                facts: None,
            };
            let t = Instant::now();
            let response =
                auftrag_engine::pdp::decide_order(&mut conn, auth, &order, &r.person).await;
            ns.push(t.elapsed().as_nanos() as u64);
            black_box(response);
        }
        let (p50, p99) = percentiles(ns);
        println!(
            "| auftrag with PIP resolution from SQLite | {:.1} µs | {:.1} µs |",
            p50 as f64 / 1e3,
            p99 as f64 / 1e3
        );
        drop(conn);
        if std::env::var_os("AUFTRAG_BENCH_KEEP").is_none() {
            let _ = std::fs::remove_dir_all(&dir);
        }
    });
}
