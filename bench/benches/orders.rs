//! Orders per second over HTTP — a register / change / delete mix — on a
//! SQLite file and on PostgreSQL, each next to its floor measured in the same
//! run: the same row inserts, updates and deletes of the device tables done
//! directly with sqlx, with the same durability settings (SQLite: WAL,
//! `synchronous = FULL`, `BEGIN IMMEDIATE`, through the engine's own
//! `Store`; PostgreSQL: a throwaway cluster with fsync and synchronous
//! commit on, `AUFTRAG_TEST_PG_DURABLE=1`) and the same way of committing:
//! orders that arrive while others are being written share a transaction
//! and its commit, by the engine's own group commit (`Store::begin_shared`:
//! the same lanes, at most 32 orders or 10 ms per transaction) — the fair
//! floor. The floors of the old method, a transaction and a commit per
//! order, run too, and auftrag with group commit off against them (neither
//! batching), so that the change of method stays visible.
//!
//! Both sides work on a generated network (`Network::generate`, 10,000
//! devices by default) plus a /16 benchmark subnet. Each client repeats a
//! cycle: register a device (one interface, one alias), change its MAC and
//! SSH flag, delete it. auftrag gets the orders over HTTP as IP-management
//! staff: authorization by the compiled policies, every check of
//! checks.xml, execution, history — the floor only writes the rows.
//!
//! A second floor (of each kind) writes, besides the device rows, what
//! auftrag stores for the order itself — its row with the history, its
//! decision, its job — copied from orders auftrag stored during the warm-up.
//!
//! Two measurements per side: throughput with `BENCH_CLIENTS` closed-loop
//! clients (`BENCH_ROUNDS` rounds of `BENCH_ROUND_SECS` each, the floors and
//! auftrag in turn; medians, and per round the CPU time per order of this
//! process, of the rest of the machine, what the hypervisor gave to others
//! meanwhile, and the machine's slow 100 ms windows), and latency
//! (p50 / p99, from the scheduled send time, so a backlog counts) at a
//! fixed offered rate `BENCH_RATE` for `BENCH_SECS`, after a second of the
//! same load that is not measured (with the CPU time stolen, the disk's
//! slowest flushes and the machine's speed meanwhile, to tell a slow spell
//! of the machine from one of the code: see [`Speed`]; the p99 of each
//! second is printed with the machine's slowest 100 ms around it, and the
//! table gives the p99 of the seconds the machine ran at its usual speed
//! next to the p99 of all).
//!
//!     cargo bench --manifest-path bench/Cargo.toml --bench orders
//!
//! Environment: BENCH_DEVICES (10000), BENCH_ROUND_SECS (5; each side's closed loop per
//! round), BENCH_ORDERS (rounds of this many orders instead), BENCH_ROUNDS (3),
//! BENCH_CLIENTS (16), BENCH_RATE (1000), BENCH_SECS (10), BENCH_SKIP_SQLITE=1,
//! BENCH_SKIP_POSTGRES=1, BENCH_MAX_BATCH_AGE_MS (group commit of auftrag and the fair
//! floors, default 10),
//! BENCH_SQLITE_ANALYZE=1 (run SQLite's ANALYZE on both sides, which the engine does not),
//! AUFTRAG_TEST_POSTGRES=URL (an existing server instead of a throwaway one),
//! AUFTRAG_PG_LANES (the lanes of auftrag and the fair floors on PostgreSQL, as for the server).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// The server's allocator, as in the `auftrag` binary (the floors run in
/// this process too).
#[global_allocator]
static ALLOCATOR: auftrag::Allocator = auftrag::ALLOCATOR;

use auftrag::junet::generate::Network;
use auftrag_engine::store::commit::retry_alone;
use auftrag_engine::store::{Store, WriteTx};
use auftrag_engine::{Engine, EngineError};
use bytes::Bytes;
use http_body_util::Full;
use serde_json::json;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

const SUBNET_ID: i64 = 90_001;

/// One step of a client's cycle.
#[derive(Clone, Copy)]
enum Op {
    Register,
    Change,
    Delete,
}

/// The device a client works on in its `cycle`-th cycle.
struct Slot {
    client: usize,
    cycle: usize,
}

impl Slot {
    fn label(&self) -> String {
        format!("bench-{}-{}", self.client, self.cycle)
    }
    fn alias(&self) -> String {
        format!("{}.bench.kfa-juelich.de", self.label())
    }
    fn ipv4(&self) -> String {
        // one live device per client at a time: addresses are reused after delete
        format!("10.200.{}.{}", self.client % 250, self.cycle % 250 + 1)
    }
    fn mac(&self, n: u8) -> String {
        format!(
            "02:{n:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            (self.client >> 8) & 0xff,
            self.client & 0xff,
            (self.cycle >> 8) & 0xff,
            self.cycle & 0xff
        )
    }
    /// Fixed ids for the floor (auftrag allocates its own).
    fn device_id(&self) -> i64 {
        500_000_000 + (self.client * 1_000_000 + self.cycle) as i64
    }
    fn port_id(&self) -> i64 {
        700_000_000 + (self.client * 1_000_000 + self.cycle) as i64
    }
}

/// Where the orders go.
#[derive(Clone)]
enum Target {
    Http(Arc<Http>),
    /// The device rows only; with `Some`, also the rows auftrag writes for
    /// the order itself (its row, decision, job), copied from auftrag's own;
    /// committed as [`Commit`] says.
    Floor(Store, Option<Arc<OrderRows>>, Commit),
}

/// How a floor commits its orders.
#[derive(Clone, Copy, PartialEq)]
enum Commit {
    /// Orders that arrive while others are being written share a
    /// transaction and its commit, by the rule auftrag's orders follow:
    /// the engine's own group commit (`Store::begin_shared`, the same
    /// lanes, at most 32 orders or 10 ms per transaction,
    /// `engine/src/store/commit.rs`). The fair floor.
    Shared,
    /// Every order in a transaction of its own (`Store::begin_write`): the
    /// floors of runs 1–14, which auftrag's group commit could beat while
    /// doing more work.
    Alone,
}

impl Target {
    async fn run(&self, op: Op, slot: &Slot) -> Result<(), String> {
        match self {
            Target::Http(http) => {
                let (order_type, fields) = match op {
                    Op::Register => (
                        "register_device",
                        json!({"host": slot.label(), "dv_class": "PC", "geb": "16.3", "raum": "R 1",
                               "admin": "1002",
                               "interfaces": [{"net": "10.200.0.0/16", "ipv4": slot.ipv4(), "hwa": slot.mac(1),
                                               "aliases": [{"name": slot.alias(), "canonical": "Y"}]}]}),
                    ),
                    Op::Change => (
                        "change_device",
                        json!({"host": slot.alias(), "hwa": slot.mac(2), "ssh": "Y"}),
                    ),
                    Op::Delete => ("delete_device", json!({"host": slot.alias()})),
                };
                let order = serde_json::to_vec(&json!({"type": order_type, "fields": fields}))
                    .map_err(|e| e.to_string())?;
                let body = http.post_order(order).await?;
                // only the state is read (serde skips the rest unparsed)
                #[derive(serde::Deserialize)]
                struct Answer<'a> {
                    #[serde(borrow)]
                    state: Option<std::borrow::Cow<'a, str>>,
                }
                match serde_json::from_slice::<Answer>(&body) {
                    Ok(Answer { state: Some(state) }) if state == "COMPLETED" => Ok(()),
                    _ => Err(format!("{order_type}: {}", String::from_utf8_lossy(&body))),
                }
            }
            Target::Floor(store, rows, commit) => floor(store, op, slot, rows.as_deref(), *commit)
                .await
                .map_err(|e| e.to_string()),
        }
    }
}

/// The load generator's HTTP side: it shares the two cores with the
/// server and the database, so it is HTTP/1.1 on plain hyper connections
/// kept open (one per request in flight, reused), with the request line and
/// headers prepared once — what a load generator like wrk does, not a
/// general client (no URL parsing, redirects, decompression or pool
/// bookkeeping per request).
struct Http {
    addr: std::net::SocketAddr,
    /// `Bearer …`, formatted once
    auth: hyper::header::HeaderValue,
    host: hyper::header::HeaderValue,
    idle: std::sync::Mutex<Vec<hyper::client::conn::http1::SendRequest<Full<Bytes>>>>,
}

impl Http {
    fn new(addr: std::net::SocketAddr, token: &str) -> Self {
        Http {
            addr,
            auth: format!("Bearer {token}").parse().expect("header"),
            host: addr.to_string().parse().expect("header"),
            idle: Default::default(),
        }
    }

    /// `POST /api/v1/orders` with `body`; the answer's body, whatever its
    /// status. A kept connection the server has closed meanwhile (it
    /// closes one that sends no request for 10 s, `Limits`, as it is while
    /// the floors run) is left for a new one, and so is one that closes
    /// before the request went out on it.
    async fn post_order(&self, body: Vec<u8>) -> Result<Bytes, String> {
        use http_body_util::BodyExt;
        use hyper::header;
        let mut request = hyper::Request::post("/api/v1/orders")
            .header(header::HOST, self.host.clone())
            .header(header::AUTHORIZATION, self.auth.clone())
            .header(header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| e.to_string())?;
        loop {
            let kept = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
            let mut sender = match kept {
                Some(mut sender) => {
                    if sender.ready().await.is_err() {
                        continue; // closed while idle
                    }
                    sender
                }
                None => self.connect().await?,
            };
            let response = match sender.try_send_request(request).await {
                Ok(response) => response,
                Err(mut e) => match e.take_message() {
                    // not sent: the connection closed first
                    Some(unsent) => {
                        request = unsent;
                        continue;
                    }
                    None => return Err(e.into_error().to_string()),
                },
            };
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(|e| e.to_string())?
                .to_bytes();
            self.idle
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(sender);
            return Ok(body);
        }
    }

    /// A new connection to the server.
    async fn connect(
        &self,
    ) -> Result<hyper::client::conn::http1::SendRequest<Full<Bytes>>, String> {
        let stream = tokio::net::TcpStream::connect(self.addr)
            .await
            .map_err(|e| e.to_string())?;
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        let (sender, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                .await
                .map_err(|e| e.to_string())?;
        tokio::spawn(conn);
        Ok(sender)
    }
}

/// What auftrag stored for one order besides the device rows: the order's
/// row, its decisions and its jobs, read back from auftrag's database after
/// the warm-up, one order of each type.
#[derive(Default)]
struct OrderRows {
    /// register, change, delete
    by_op: [OrderRow; 3],
    next_id: std::sync::atomic::AtomicI64,
}

#[derive(Default)]
struct OrderRow {
    /// order_type, requester, created_at, host, state, updated_at, fields,
    /// changes, states, errors, warnings, accepted
    text: Vec<Option<String>>,
    closed: i64,
    /// (at, decision)
    decisions: Vec<(String, String)>,
    /// queue, job_type, owner, state; input; attempts, max_attempts,
    /// lease_secs, retention_secs, created_ms, updated_ms
    jobs: Vec<(Vec<String>, Vec<u8>, Vec<i64>)>,
}

const ORDER_TEXT: &str = "order_type, requester, created_at, host, state, updated_at, fields, changes, states, errors, warnings, accepted";
const JOB_COLUMNS: &str = "queue, job_type, owner, state, input, attempts, max_attempts, lease_secs, retention_secs, created_ms, updated_ms";

impl OrderRows {
    async fn read(pool: &sqlx::AnyPool) -> OrderRows {
        use sqlx::Row;
        let mut rows = OrderRows {
            next_id: std::sync::atomic::AtomicI64::new(2_000_000_000),
            ..OrderRows::default()
        };
        for (i, order_type) in ["register_device", "change_device", "delete_device"]
            .into_iter()
            .enumerate()
        {
            let order = sqlx::query(&format!(
                "SELECT id, closed, {ORDER_TEXT} FROM auftrag_orders \
                 WHERE order_type = $1 AND state = 'COMPLETED' ORDER BY id DESC LIMIT 1"
            ))
            .bind(order_type)
            .fetch_one(pool)
            .await
            .expect("a completed order of each type");
            let id: i64 = order.get(0);
            let row = &mut rows.by_op[i];
            row.closed = order.get(1);
            row.text = (2..14).map(|c| order.get::<Option<String>, _>(c)).collect();
            row.decisions = sqlx::query_as(
                "SELECT at, decision FROM auftrag_decisions WHERE order_id = $1 ORDER BY id",
            )
            .bind(id)
            .fetch_all(pool)
            .await
            .expect("decisions");
            for job in sqlx::query(&format!(
                "SELECT {JOB_COLUMNS} FROM auftrag_jobs WHERE order_id = $1 ORDER BY id"
            ))
            .bind(id)
            .fetch_all(pool)
            .await
            .expect("jobs")
            {
                row.jobs.push((
                    (0..4).map(|c| job.get::<String, _>(c)).collect(),
                    job.get::<Vec<u8>, _>(4),
                    (5..11).map(|c| job.get::<i64, _>(c)).collect(),
                ));
            }
        }
        rows
    }

    /// Writes the rows of an order like the one `op` makes, as a new order.
    async fn write(&self, conn: &mut sqlx::AnyConnection, op: Op) -> Result<(), sqlx::Error> {
        let row = &self.by_op[op as usize];
        let id = self
            .next_id
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut insert = sqlx::query(
            "INSERT INTO auftrag_orders (id, closed, order_type, requester, created_at, host, state, \
             updated_at, fields, changes, states, errors, warnings, accepted) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
        )
        .bind(id)
        .bind(row.closed);
        for t in &row.text {
            insert = insert.bind(t.clone());
        }
        insert.execute(&mut *conn).await?;
        for (at, decision) in &row.decisions {
            sqlx::query(
                "INSERT INTO auftrag_decisions (order_id, at, decision) VALUES ($1, $2, $3)",
            )
            .bind(id)
            .bind(at)
            .bind(decision)
            .execute(&mut *conn)
            .await?;
        }
        let job_sql = format!(
            "INSERT INTO auftrag_jobs (order_id, {JOB_COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
        );
        for (text, input, ints) in &row.jobs {
            let mut insert = sqlx::query(&job_sql).bind(id);
            for t in text {
                insert = insert.bind(t);
            }
            insert = insert.bind(input.clone());
            for n in ints {
                insert = insert.bind(*n);
            }
            insert.execute(&mut *conn).await?;
        }
        Ok(())
    }
}

/// The rows an order writes, directly: in a transaction of its own, or
/// (`Commit::Shared`) in one shared with the orders queued behind it, as
/// auftrag does — rolled back for another order, it runs again alone, as
/// auftrag's orders do (it never happened in the runs reported).
async fn floor(
    store: &Store,
    op: Op,
    slot: &Slot,
    order_rows: Option<&OrderRows>,
    commit: Commit,
) -> Result<(), EngineError> {
    if commit == Commit::Shared {
        let mut tx = store.begin_shared().await?;
        match floor_rows(&mut tx, op, slot, order_rows).await {
            Ok(()) => match tx.commit().await {
                Ok(()) => return Ok(()),
                Err(e) if retry_alone(&e) => {}
                Err(e) => return Err(e),
            },
            Err(e) => {
                let _ = tx.rollback().await;
                let e = EngineError::Db(e);
                if !retry_alone(&e) {
                    return Err(e);
                }
            }
        }
    }
    let mut tx = store.begin_write().await?;
    floor_rows(&mut tx, op, slot, order_rows).await?;
    tx.commit().await
}

/// The floor's statements for `op`.
async fn floor_rows(
    tx: &mut WriteTx,
    op: Op,
    slot: &Slot,
    order_rows: Option<&OrderRows>,
) -> Result<(), sqlx::Error> {
    let (device, port) = (slot.device_id(), slot.port_id());
    match op {
        Op::Register => {
            sqlx::query(
                "INSERT INTO x_device (DV_OBJ_ID, DV_LABEL, SERIAL, DV_CLASS, TYPE, DV_BUILDING, DV_ROOM, DV_LOC_ORG, PERSDATA, ARRIVAL) \
                 VALUES ($1, $2, NULL, 'PC', NULL, '16.3', 'R 1', 'JSC', 'N', NULL)",
            )
            .bind(device)
            .bind(slot.label())
            .execute(&mut **tx)
            .await?;
            sqlx::query("INSERT INTO x_link (CLASS_H, OBJ_ID_H, CLASS_L, OBJ_ID_L) VALUES ('PC', $1, 'ADMIN', 1002)")
                .bind(device)
                .execute(&mut **tx)
                .await?;
            sqlx::query(
                "INSERT INTO x_port (PT_OBJ_ID, PT_DEV_ADDR, NET_OBJ_ID, HARDW_ADDR, SSH, INET6_ADDR_TYPE, LLA, GUA) \
                 VALUES ($1, $2, $3, $4, 'N', NULL, NULL, NULL)",
            )
            .bind(port)
            .bind(slot.ipv4())
            .bind(SUBNET_ID)
            .bind(slot.mac(1))
            .execute(&mut **tx)
            .await?;
            sqlx::query("INSERT INTO x_link (CLASS_H, OBJ_ID_H, CLASS_L, OBJ_ID_L) VALUES ('PC', $1, 'PORT', $2)")
                .bind(device)
                .bind(port)
                .execute(&mut **tx)
                .await?;
            sqlx::query("INSERT INTO n_devname (DN_NAME, DOMAIN, PT_OBJ_ID, CANONICAL) VALUES ($1, 'bench.kfa-juelich.de', $2, 'Y')")
                .bind(slot.label())
                .bind(port)
                .execute(&mut **tx)
                .await?;
        }
        Op::Change => {
            sqlx::query("UPDATE x_port SET HARDW_ADDR = $1, SSH = 'Y' WHERE PT_OBJ_ID = $2")
                .bind(slot.mac(2))
                .bind(port)
                .execute(&mut **tx)
                .await?;
        }
        Op::Delete => {
            sqlx::query("DELETE FROM n_devname WHERE PT_OBJ_ID = $1")
                .bind(port)
                .execute(&mut **tx)
                .await?;
            sqlx::query("DELETE FROM x_link WHERE OBJ_ID_H = $1")
                .bind(device)
                .execute(&mut **tx)
                .await?;
            sqlx::query("DELETE FROM x_port WHERE PT_OBJ_ID = $1")
                .bind(port)
                .execute(&mut **tx)
                .await?;
            sqlx::query("DELETE FROM x_device WHERE DV_OBJ_ID = $1")
                .bind(device)
                .execute(&mut **tx)
                .await?;
        }
    }
    if let Some(rows) = order_rows {
        rows.write(tx, op).await?;
    }
    Ok(())
}

const CYCLE: [Op; 3] = [Op::Register, Op::Change, Op::Delete];

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// CPU time used so far, in clock ticks: (this process, the whole machine's
/// busy time, the time the hypervisor gave this machine's CPUs to others
/// while they had work: "steal", not counted as busy). Linux only; zeros
/// elsewhere.
fn cpu_ticks() -> (u64, u64, u64) {
    let own = std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            // fields after the command name, which is in parentheses
            let rest = s.rsplit_once(')')?.1.split_whitespace().collect::<Vec<_>>();
            Some(rest.get(11)?.parse::<u64>().ok()? + rest.get(12)?.parse::<u64>().ok()?)
        })
        .unwrap_or(0);
    let all = std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|s| {
            let cpu = s.lines().next()?.split_whitespace().skip(1);
            let v: Vec<u64> = cpu.filter_map(|x| x.parse().ok()).collect();
            // user nice system idle iowait irq softirq steal (guest time is
            // within user): busy = the first seven but idle and iowait
            let busy = v.iter().take(7).sum::<u64>() - v.get(3)? - v.get(4)?;
            Some((busy, *v.get(7)?))
        })
        .unwrap_or((0, 0));
    (own, all.0, all.1)
}

const TICK_US: f64 = 1e6 / 100.0; // USER_HZ is 100 on Linux

/// Flushes to disk so far (the fsyncs of both databases) and the ms spent
/// in them, of the disk that flushed most: `/proc/diskstats` (Linux 5.5+;
/// zeros elsewhere).
fn disk_flushes() -> (u64, u64) {
    std::fs::read_to_string("/proc/diskstats")
        .ok()
        .and_then(|s| {
            s.lines()
                .filter_map(|l| {
                    let f: Vec<&str> = l.split_whitespace().collect();
                    Some((f.get(18)?.parse().ok()?, f.get(19)?.parse().ok()?))
                })
                .max()
        })
        .unwrap_or((0, 0))
}

/// Watches the disk's flushes in 50 ms slices until `done`; returns the
/// longest average flush time of a slice, in ms — how slow the disk was at
/// its slowest while the load ran.
async fn slowest_flushes(done: tokio::sync::oneshot::Receiver<()>) -> f64 {
    let mut done = done;
    let mut last = disk_flushes();
    let mut slowest = 0.0f64;
    loop {
        tokio::select! {
            _ = &mut done => return slowest,
            () = tokio::time::sleep(Duration::from_millis(50)) => {}
        }
        let now = disk_flushes();
        if now.0 > last.0 {
            slowest = slowest.max((now.1 - last.1) as f64 / (now.0 - last.0) as f64);
        }
        last = now;
    }
}

/// A closed loop's figures: orders/s, and CPU per order in µs of this
/// process (the clients and, for auftrag, the server) and of everything
/// else on the machine (mostly the database).
struct Loop {
    rate: f64,
    cpu: (f64, f64),
    /// CPU time stolen by the hypervisor, µs per order: a slow spell of
    /// the machine rather than of the code.
    stolen: f64,
    /// 100 ms windows the machine ran [`SLOW`] times slower or more, of all
    slow: (usize, usize),
}

/// How long a closed loop runs.
#[derive(Clone, Copy)]
enum Run {
    /// this many orders in all (whole cycles)
    Orders(usize),
    /// each client starts cycles until this long has passed (and finishes
    /// the one it is in)
    For(Duration),
}

/// Closed loop: `clients` clients until `run` is over. `first_client`
/// keeps slots of different runs apart.
async fn throughput(target: &Target, clients: usize, run: Run, first_client: usize) -> Loop {
    let cycles = match run {
        Run::Orders(orders) => (orders / 3).div_ceil(clients),
        Run::For(_) => usize::MAX,
    };
    let speed = Speed::watch();
    let cpu_before = cpu_ticks();
    let start = Instant::now();
    let deadline = match run {
        Run::Orders(_) => None,
        Run::For(d) => Some(start + d),
    };
    let mut tasks = Vec::new();
    for c in 0..clients {
        let target = target.clone();
        tasks.push(tokio::spawn(async move {
            let mut done = 0;
            for cycle in 0..cycles {
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    break;
                }
                let slot = Slot {
                    client: first_client + c,
                    cycle,
                };
                for op in CYCLE {
                    target.run(op, &slot).await.expect("order");
                }
                done += CYCLE.len();
            }
            done
        }));
    }
    let mut n = 0;
    for t in tasks {
        n += t.await.expect("client");
    }
    let elapsed = start.elapsed().as_secs_f64();
    let cpu_after = cpu_ticks();
    let windows = speed.finish();
    let n = n as f64;
    let own = (cpu_after.0 - cpu_before.0) as f64 * TICK_US / n;
    let all = (cpu_after.1 - cpu_before.1) as f64 * TICK_US / n;
    Loop {
        rate: n / elapsed,
        cpu: (own, (all - own).max(0.0)),
        stolen: (cpu_after.2 - cpu_before.2) as f64 * TICK_US / n,
        slow: (slow_windows(&windows), windows.len()),
    }
}

/// Open loop at `rate` orders/s for `secs`: `slots` clients each send the
/// next step of their cycle at its scheduled time (later if the previous
/// step has not come back: the wait counts into the latency). The clients
/// start a window apart (up to two), so the load ramps up and down over
/// the first and last two windows (0.4 s at the defaults); the figures are
/// of the orders scheduled between, when every client sends.
async fn fixed_rate(target: &Target, rate: usize, secs: usize, first_client: usize) -> Latency {
    let slots = (rate / 5).max(3); // each slot sends every 5 ms * slots / rate
    let total = rate * secs;
    // whole cycles, so that no device is left behind for a later run
    let per_slot = total / slots / 3 * 3;
    let interval = Duration::from_secs_f64(slots as f64 / rate as f64);
    let speed = Speed::watch();
    let start = Instant::now() + Duration::from_millis(50);
    // Every slot sends from window `s % 3` on, so all of them send in the
    // windows from 2 to `per_slot`: that plateau is what is measured.
    let plateau = (start + interval * 2, start + interval * per_slot as u32);
    let mut tasks = Vec::new();
    for s in 0..slots {
        let target = target.clone();
        let offset = Duration::from_secs_f64(s as f64 / rate as f64);
        tasks.push(tokio::spawn(async move {
            let mut sent = Vec::with_capacity(per_slot);
            for j in 0..per_slot {
                // slots start their cycles a window apart (s % 3), so
                // that each window mixes registrations, changes and
                // deletions instead of all slots doing the same step
                let scheduled = start + offset + interval * (j + s % 3) as u32;
                tokio::time::sleep_until(scheduled.into()).await;
                let slot = Slot {
                    client: first_client + s,
                    cycle: j / 3,
                };
                target.run(CYCLE[j % 3], &slot).await.expect("order");
                if (plateau.0..plateau.1).contains(&scheduled) {
                    sent.push(Sent {
                        scheduled,
                        latency: scheduled.elapsed(),
                        done: Instant::now(),
                    });
                }
            }
            sent
        }));
    }
    let stolen_before = cpu_ticks().2;
    let (watched, watch) = tokio::sync::oneshot::channel();
    let disk = tokio::spawn(slowest_flushes(watch));
    let mut all = Vec::with_capacity(total);
    for t in tasks {
        all.extend(t.await.expect("slot"));
    }
    let _ = watched.send(());
    let slowest_flush = disk.await.expect("disk watch");
    let windows = speed.finish();
    // CPU time stolen by the hypervisor, ms per second of the run
    let stolen = (cpu_ticks().2 - stolen_before) as f64 * TICK_US
        / 1e3
        / (Instant::now() - start).as_secs_f64().max(1e-3);
    // orders of the plateau per second, until the last of them came back
    let done = all.iter().map(|s| s.done).max().unwrap_or(plateau.1);
    let achieved = all.len() as f64 / (done - plateau.0).as_secs_f64();
    let seconds = per_second(&all, plateau.0, &windows);
    let mut at_speed: Vec<Duration> = all
        .iter()
        .filter(|s| {
            let second = (s.scheduled - plateau.0).as_secs() as usize;
            seconds.get(second).is_some_and(|s| s.at_speed)
        })
        .map(|s| s.latency)
        .collect();
    at_speed.sort();
    let mut all: Vec<Duration> = all.into_iter().map(|s| s.latency).collect();
    all.sort();
    Latency {
        achieved,
        p50: percentile(&all, 0.5),
        p99: percentile(&all, 0.99),
        max: *all.last().unwrap_or(&Duration::ZERO),
        stolen,
        slowest_flush,
        slow_windows: slow_windows(&windows),
        windows: windows.len(),
        slowest: windows.iter().map(|w| w.1).fold(1.0, f64::max),
        p99_at_speed: (!at_speed.is_empty()).then(|| percentile(&at_speed, 0.99)),
        seconds,
    }
}

/// An order of a fixed-rate run.
struct Sent {
    scheduled: Instant,
    /// from the scheduled send time to the answer
    latency: Duration,
    done: Instant,
}

/// A second of a fixed-rate run's plateau.
struct Second {
    p99: Duration,
    /// how many times slower than usual the machine ran in its slowest
    /// 100 ms window from half a second before this second to its end
    slowest: f64,
    /// no window of that time ran [`SLOW`] or slower
    at_speed: bool,
}

/// The orders sent in each whole second of the plateau (from `from`), with
/// the machine's speed meanwhile. Half a second before counts: the queue a
/// slow spell builds takes a few hundred ms to drain.
fn per_second(sent: &[Sent], from: Instant, windows: &[(Instant, f64)]) -> Vec<Second> {
    // a last, partial second is left out
    let whole = sent
        .iter()
        .map(|s| s.scheduled)
        .max()
        .map_or(0, |last| (last - from).as_secs() as usize);
    let mut buckets: Vec<Vec<Duration>> = vec![Vec::new(); whole];
    for s in sent {
        if let Some(bucket) = buckets.get_mut((s.scheduled - from).as_secs() as usize) {
            bucket.push(s.latency);
        }
    }
    buckets
        .into_iter()
        .enumerate()
        .map(|(i, mut latencies)| {
            latencies.sort();
            let begin = from + Duration::from_secs(i as u64);
            let watched = (
                begin
                    .checked_sub(Duration::from_millis(500))
                    .unwrap_or(begin),
                begin + Duration::from_secs(1),
            );
            let slowest = windows
                .iter()
                .filter(|(at, _)| *at + SPEED_WINDOW > watched.0 && *at < watched.1)
                .map(|w| w.1)
                .fold(1.0, f64::max);
            Second {
                p99: percentile(&latencies, 0.99),
                slowest,
                at_speed: slowest < SLOW,
            }
        })
        .collect()
}

/// A window this many times slower than the machine's usual speed is a
/// slow spell.
const SLOW: f64 = 1.5;

/// How many of [`Speed::finish`]'s windows were slow spells.
fn slow_windows(windows: &[(Instant, f64)]) -> usize {
    windows.iter().filter(|w| w.1 >= SLOW).count()
}
const SPEED_WINDOW: Duration = Duration::from_millis(100);

/// How fast the machine runs, watched from a thread of its own: every 2 ms
/// it does the same arithmetic (about 0.1 ms of it) and times it in its own
/// CPU time, so that waiting for a core does not count, only the CPU running
/// the same instructions slower. The 2-core machine of BENCHMARKS.md has
/// spells of that — both virtual CPUs at once, 1.5 to 6 times slower for
/// 100–300 ms every few seconds, idle or not, without the hypervisor
/// reporting stolen time — and at 1,000 orders/s such a spell builds a
/// queue that the p99 shows.
struct Speed {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<Vec<(Instant, u64)>>,
}

impl Speed {
    fn watch() -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut units = Vec::new();
            while !stopped.load(Ordering::Relaxed) {
                let at = Instant::now();
                let before = thread_cpu_ns();
                let mut x = 1u64;
                for i in 0..40_000u64 {
                    x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(i);
                }
                std::hint::black_box(x);
                units.push((at, thread_cpu_ns() - before));
                std::thread::sleep(Duration::from_millis(2));
            }
            units
        });
        Self { stop, thread }
    }

    /// Stops watching; returns per 100 ms window its start and how many
    /// times slower than usual (the median unit of the whole watch) its
    /// units ran on average.
    fn finish(self) -> Vec<(Instant, f64)> {
        self.stop.store(true, Ordering::Relaxed);
        let units = self.thread.join().expect("speed watch");
        let Some(first) = units.first().map(|u| u.0) else {
            return Vec::new();
        };
        let mut sorted: Vec<u64> = units.iter().map(|u| u.1).collect();
        sorted.sort_unstable();
        let usual = sorted[sorted.len() / 2].max(1) as f64;
        let mut windows: Vec<(Instant, u64, u64)> = Vec::new();
        for (at, ns) in units {
            let i = ((at - first).as_secs_f64() / SPEED_WINDOW.as_secs_f64()) as u32;
            let begin = first + SPEED_WINDOW * i;
            match windows.last_mut() {
                Some(w) if w.0 == begin => {
                    w.1 += ns;
                    w.2 += 1;
                }
                _ => windows.push((begin, ns, 1)),
            }
        }
        windows
            .into_iter()
            .map(|(begin, ns, n)| (begin, ns as f64 / n as f64 / usual))
            .collect()
    }
}

/// CPU time of the calling thread, ns.
fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec to write to; the clock exists on
    // Linux (should the call fail, `ts` stays zero and the watch sees no
    // slowdown).
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// A fixed-rate run's figures, and what the machine did meanwhile.
struct Latency {
    /// orders/s
    achieved: f64,
    p50: Duration,
    p99: Duration,
    max: Duration,
    /// CPU time the hypervisor gave to others, ms per s
    stolen: f64,
    /// the longest average time of the disk's flushes in a 50 ms slice, ms
    slowest_flush: f64,
    /// 100 ms windows the machine ran [`SLOW`] times slower or more, of
    /// `windows`
    slow_windows: usize,
    windows: usize,
    /// how many times slower than usual in the slowest window
    slowest: f64,
    /// p99 of the orders sent in the seconds the machine ran at its usual
    /// speed (`None`: there was none)
    p99_at_speed: Option<Duration>,
    seconds: Vec<Second>,
}

/// A database with the schema, the demo data, the generated network and the
/// benchmark subnet; returns the engine on it.
async fn prepare(url: &str, devices: usize) -> Engine {
    let engine = Engine::open(url, auftrag::domain()).await.expect("open");
    engine.seed_demo().await.expect("demo data");
    let mut tx = engine.store.pool.begin().await.expect("begin");
    Network::generate(devices, 42)
        .insert(&mut tx)
        .await
        .expect("generated network");
    sqlx::query(
        "INSERT INTO n_netname (NN_OBJ_ID, NN_NET_ADDR, SUBNET_MASK, NN_NAME, NN_V4_STATE, NN_V6_STATE) \
         VALUES ($1, '10.200.0.0', '255.255.0.0', 'bench', 'Y', 'N')",
    )
    .bind(SUBNET_ID)
    .execute(&mut *tx)
    .await
    .expect("bench subnet");
    tx.commit().await.expect("commit");
    // statistics as a database in service has them (autovacuum, or a
    // periodic ANALYZE), on both sides; and nothing of the load left for
    // autovacuum or a checkpoint to do during the measurement
    engine.store.analyze().await.expect("analyze");
    if engine.store.backend == auftrag_engine::store::Backend::Sqlite
        && std::env::var_os("BENCH_SQLITE_ANALYZE").is_some()
    {
        // what `Store::analyze` does not do on SQLite, to measure why
        sqlx::query("ANALYZE")
            .execute(&engine.store.pool)
            .await
            .expect("ANALYZE");
    }
    if engine.store.backend == auftrag_engine::store::Backend::Postgres {
        // needs a superuser (the throwaway cluster's user is one)
        let _ = sqlx::query("CHECKPOINT").execute(&engine.store.pool).await;
    }
    engine
}

/// The sides of a closed-loop round, in the order they run.
const SIDES: [&str; 6] = [
    "floor, device rows, shared commits",
    "floor with the order's rows, shared commits",
    "auftrag",
    "floor, device rows, a commit per order",
    "floor with the order's rows, a commit per order",
    "auftrag, group commit off",
];
const FLOOR: usize = 0;
const FLOOR_ALL: usize = 1;
const AUFTRAG: usize = 2;
const FLOOR_ALONE: usize = 3;
const FLOOR_ALL_ALONE: usize = 4;
const AUFTRAG_ALONE: usize = 5;

struct Figures {
    backend: &'static str,
    /// orders/s of each of [`SIDES`], per round
    rounds: Vec<[f64; SIDES.len()]>,
    /// the floor with shared commits (the fair floor), with a commit per
    /// order, auftrag
    floor_rate: Latency,
    floor_alone_rate: Latency,
    auftrag_rate: Latency,
}

impl Figures {
    /// The median over the rounds of side `i`, orders/s.
    fn median(&self, i: usize) -> f64 {
        median(&mut self.rounds.iter().map(|r| r[i]).collect::<Vec<_>>())
    }

    /// `a`'s share of `b` and of `c` per round, in %: "x % / y %, …".
    fn per_round(&self, a: usize, b: usize, c: usize) -> String {
        let shares: Vec<String> = self
            .rounds
            .iter()
            .map(|r| {
                format!(
                    "{:.0} % / {:.0} %",
                    100.0 * r[a] / r[b],
                    100.0 * r[a] / r[c]
                )
            })
            .collect();
        shares.join(", ")
    }
}

async fn measure(
    backend: &'static str,
    auftrag_url: &str,
    floor_url: &str,
    devices: usize,
) -> Figures {
    let clients = env("BENCH_CLIENTS", 16);
    // Rounds of equal length rather than of equal orders: the machine's
    // slow spells (see [`Speed`]) come every few seconds, and a side that
    // finishes 3,000 orders in one second often misses them all while one
    // that takes three seconds rarely does.
    let run = match std::env::var("BENCH_ORDERS") {
        Ok(orders) => Run::Orders(orders.parse().expect("BENCH_ORDERS: a number")),
        Err(_) => Run::For(Duration::from_secs(env("BENCH_ROUND_SECS", 5) as u64)),
    };
    let rate = env("BENCH_RATE", 1000);
    let secs = env("BENCH_SECS", 10);
    // auftrag's group commit rule, and the shared floors' (the same)
    let max_age = std::env::var("BENCH_MAX_BATCH_AGE_MS")
        .map_or(auftrag_engine::store::commit::MAX_BATCH_AGE, |ms| {
            Duration::from_millis(ms.parse().expect("BENCH_MAX_BATCH_AGE_MS: milliseconds"))
        });

    eprintln!("[{backend}] preparing two databases with {devices} generated devices …");
    let floor_engine = prepare(floor_url, devices).await;
    let floor_store = floor_engine.store.clone();
    floor_store.set_max_batch_age(max_age);
    let floor_shared = Target::Floor(floor_store.clone(), None, Commit::Shared);
    let floor_alone = Target::Floor(floor_store.clone(), None, Commit::Alone);
    let engine = prepare(auftrag_url, devices).await;
    let auftrag_store = engine.store.clone();
    auftrag_store.set_max_batch_age(max_age);
    let auftrag_pool = engine.store.pool.clone();
    let token = engine
        .issue_token("1005", time::Duration::hours(2))
        .await
        .expect("staff token");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let listener_addr = listener.local_addr().expect("addr");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(auftrag_engine::http::server::serve(
        Arc::new(engine),
        listener,
        async {
            let _ = stopped.await;
        },
    ));
    let http = Target::Http(Arc::new(Http::new(listener_addr, &token)));

    // warm-up (connections, caches), then the closed loop, then the fixed rate
    throughput(&floor_shared, clients, Run::Orders(300), 0).await;
    throughput(&floor_alone, clients, Run::Orders(300), 100).await;
    throughput(&http, clients, Run::Orders(300), 0).await;
    // The floors with the order's rows also write what auftrag stores for
    // the order itself (the order's row with its history, its decision, its
    // job), copied from orders auftrag stored in the warm-up.
    let order_rows = Arc::new(OrderRows::read(&auftrag_pool).await);
    let floor_all_shared = Target::Floor(
        floor_store.clone(),
        Some(order_rows.clone()),
        Commit::Shared,
    );
    let floor_all_alone = Target::Floor(floor_store.clone(), Some(order_rows), Commit::Alone);
    throughput(&floor_all_shared, clients, Run::Orders(300), 50).await;
    throughput(&floor_all_alone, clients, Run::Orders(300), 150).await;
    // Rounds of the floors and auftrag in turn, so that a slow spell of the
    // machine (disk flushes, other tenants) hits all alike; the medians
    // are reported, and each round's shares.
    let rounds = env("BENCH_ROUNDS", 3).max(1);
    let each = match run {
        Run::Orders(n) => format!("{n} orders"),
        Run::For(d) => format!("{} s", d.as_secs()),
    };
    eprintln!(
        "[{backend}] throughput, {clients} clients, {each} each, {rounds} rounds of: {} …",
        SIDES.join("; ")
    );
    let mut figures = Vec::new();
    for round in 0..rounds {
        // slots of different sides on the same database kept apart (up to
        // 50 clients)
        let first = 1000 + 200 * round;
        let mut loops = Vec::new();
        loops.push(throughput(&floor_shared, clients, run, first).await);
        loops.push(throughput(&floor_all_shared, clients, run, first + 50).await);
        loops.push(throughput(&http, clients, run, first).await);
        loops.push(throughput(&floor_alone, clients, run, first + 100).await);
        loops.push(throughput(&floor_all_alone, clients, run, first + 150).await);
        auftrag_store.set_max_batch_age(Duration::ZERO);
        loops.push(throughput(&http, clients, run, first + 100).await);
        auftrag_store.set_max_batch_age(max_age);
        let r: [f64; SIDES.len()] = std::array::from_fn(|i| loops[i].rate);
        eprintln!(
            "[{backend}] round {}: auftrag {:.0}/s = {:.0} % of the floor with shared commits ({:.0}/s), \
             {:.0} % of the one with the order's rows ({:.0}/s); old method, a commit per order: \
             {:.0} % / {:.0} % of {:.0} / {:.0}/s; auftrag with group commit off {:.0}/s = {:.0} % / {:.0} % of those",
            round + 1,
            r[AUFTRAG],
            100.0 * r[AUFTRAG] / r[FLOOR],
            r[FLOOR],
            100.0 * r[AUFTRAG] / r[FLOOR_ALL],
            r[FLOOR_ALL],
            100.0 * r[AUFTRAG] / r[FLOOR_ALONE],
            100.0 * r[AUFTRAG] / r[FLOOR_ALL_ALONE],
            r[FLOOR_ALONE],
            r[FLOOR_ALL_ALONE],
            r[AUFTRAG_ALONE],
            100.0 * r[AUFTRAG_ALONE] / r[FLOOR_ALONE],
            100.0 * r[AUFTRAG_ALONE] / r[FLOOR_ALL_ALONE],
        );
        for (side, l) in SIDES.iter().zip(&loops) {
            eprintln!(
                "[{backend}] round {}, {side}: {:.0}/s; CPU per order, bench process {:.0} µs, \
                 rest of the machine {:.0} µs, stolen by the hypervisor {:.0} µs; \
                 machine slowed {SLOW}× or more in {} of {} windows of 100 ms",
                round + 1,
                l.rate,
                l.cpu.0,
                l.cpu.1,
                l.stolen,
                l.slow.0,
                l.slow.1,
            );
        }
        figures.push(r);
    }
    eprintln!("[{backend}] fixed rate {rate}/s for {secs} s …");
    // A second of the same load first, not measured: the open loop has
    // more clients than the closed one, and their first orders would
    // measure connecting (HTTP) or the pool growing (floor).
    fixed_rate(&floor_shared, rate, 1, 6000).await;
    let floor_rate = fixed_rate(&floor_shared, rate, secs, 5000).await;
    fixed_rate(&floor_alone, rate, 1, 8000).await;
    let floor_alone_rate = fixed_rate(&floor_alone, rate, secs, 7000).await;
    fixed_rate(&http, rate, 1, 6000).await;
    let auftrag_rate = fixed_rate(&http, rate, secs, 5000).await;
    let _ = stop.send(());
    for (who, l) in [
        ("floor, shared commits", &floor_rate),
        ("floor, a commit per order", &floor_alone_rate),
        ("auftrag", &auftrag_rate),
    ] {
        let seconds: Vec<String> = l
            .seconds
            .iter()
            .map(|s| format!("{:.1} ms ({:.1}×)", ms(s.p99), s.slowest))
            .collect();
        eprintln!(
            "[{backend}] {who} at {rate}/s, p99 per second (the machine's slowest 100 ms meanwhile): {}",
            seconds.join(", ")
        );
    }
    Figures {
        backend,
        rounds: figures,
        floor_rate,
        floor_alone_rate,
        auftrag_rate,
    }
}

fn main() {
    // durable PostgreSQL for both sides (before the test cluster starts)
    if std::env::var_os("AUFTRAG_TEST_PG_DURABLE").is_none() {
        // SAFETY: set before any other thread exists.
        unsafe { std::env::set_var("AUFTRAG_TEST_PG_DURABLE", "1") };
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let devices = env("BENCH_DEVICES", 10_000);
    let mut results = Vec::new();
    runtime.block_on(async {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = |name: &str| format!("sqlite://{}", dir.path().join(name).display());
        if std::env::var("BENCH_SKIP_SQLITE").is_err() {
            results.push(
                measure(
                    "SQLite file",
                    &file("auftrag.db"),
                    &file("floor.db"),
                    devices,
                )
                .await,
            );
        }
        if std::env::var("BENCH_SKIP_POSTGRES").is_err() {
            let a = auftrag_testkit::fresh_postgres_database().await;
            let f = auftrag_testkit::fresh_postgres_database().await;
            results.push(measure("PostgreSQL", &a, &f, devices).await);
        }
    });
    let rate = env("BENCH_RATE", 1000);
    println!();
    println!(
        "Against the fair floors (their orders share commits as auftrag's do; medians over the rounds):"
    );
    println!();
    println!(
        "| backend | floor, device rows | floor with the order's rows | auftrag (HTTP) | auftrag / floors | per round |"
    );
    println!("|---|---|---|---|---|---|");
    for r in &results {
        let (f, fa, a) = (r.median(FLOOR), r.median(FLOOR_ALL), r.median(AUFTRAG));
        println!(
            "| {} | {f:.0} orders/s | {fa:.0} orders/s | {a:.0} orders/s | {:.0} % / {:.0} % | {} |",
            r.backend,
            100.0 * a / f,
            100.0 * a / fa,
            r.per_round(AUFTRAG, FLOOR, FLOOR_ALL),
        );
    }
    println!();
    println!(
        "The old method, floors with a commit per order (flattering: auftrag shares commits), \
         and auftrag with group commit off against them (neither batching):"
    );
    println!();
    println!(
        "| backend | floor, device rows | floor with the order's rows | auftrag / floors | per round \
         | auftrag, group commit off | that / floors | per round |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for r in &results {
        let (f, fa, a, u) = (
            r.median(FLOOR_ALONE),
            r.median(FLOOR_ALL_ALONE),
            r.median(AUFTRAG),
            r.median(AUFTRAG_ALONE),
        );
        println!(
            "| {} | {f:.0} orders/s | {fa:.0} orders/s | {:.0} % / {:.0} % | {} \
             | {u:.0} orders/s | {:.0} % / {:.0} % | {} |",
            r.backend,
            100.0 * a / f,
            100.0 * a / fa,
            r.per_round(AUFTRAG, FLOOR_ALONE, FLOOR_ALL_ALONE),
            100.0 * u / f,
            100.0 * u / fa,
            r.per_round(AUFTRAG_ALONE, FLOOR_ALONE, FLOOR_ALL_ALONE),
        );
    }
    println!();
    println!(
        "| backend, offered {rate}/s | achieved | p50 | p99 | max | CPU stolen by the hypervisor | slowest disk flushes (50 ms) \
         | machine slowed {SLOW}× or more (100 ms windows) | p99 in the seconds at speed |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for r in &results {
        for (who, l) in [
            ("floor, shared commits", &r.floor_rate),
            ("floor, a commit per order", &r.floor_alone_rate),
            ("auftrag", &r.auftrag_rate),
        ] {
            let at_speed = l.seconds.iter().filter(|s| s.at_speed).count();
            println!(
                "| {} {who} | {:.0}/s | {:.1} ms | {:.1} ms | {:.1} ms | {:.0} ms/s | {:.1} ms each \
                 | {} of {} (slowest {:.1}×) | {} ({at_speed} of {} s) |",
                r.backend,
                l.achieved,
                ms(l.p50),
                ms(l.p99),
                ms(l.max),
                l.stolen,
                l.slowest_flush,
                l.slow_windows,
                l.windows,
                l.slowest,
                l.p99_at_speed
                    .map_or_else(|| "–".to_owned(), |p| format!("{:.1} ms", ms(p))),
                l.seconds.len(),
            );
        }
    }
}
