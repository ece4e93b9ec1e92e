//! The database: connection, migrations, and the engine's tables (orders and
//! their history, settings, staff). SQLite (the embedded default) and
//! PostgreSQL; the code goes through sqlx's `Any` driver so that domain
//! handlers see one connection type whatever the backend, and keeps to SQL
//! both understand (`$n` placeholders, `ON CONFLICT`, `RETURNING`).

pub mod commit;
pub mod history;
pub mod writes;

use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::migrate::Migrator;
use sqlx::{AnyConnection, AnyPool, Row};

use crate::error::EngineError;
use crate::store::history::{OrderDocument, StateEntry};
use crate::workflow::context::{Fields, Finding, OrderData};
use crate::workflow::defs::Definitions;

/// The entity tag of an order's history document as
/// [`StoredOrder::document`] makes it (before decisions, notifications or
/// claims are added to it).
pub fn etag_of(document: &OrderDocument) -> String {
    use sha2::Digest;
    let json = serde_json::to_vec(document).unwrap_or_default();
    let digest = sha2::Sha256::digest(&json);
    format!("\"{}\"", hex::encode(&digest[..12]))
}

/// Which database a URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn of_url(url: &str) -> Result<Self, EngineError> {
        if url.starts_with("sqlite:") {
            Ok(Self::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Self::Postgres)
        } else {
            Err(EngineError::Internal(format!(
                "unsupported database URL `{url}`: use a file path, sqlite://FILE or postgres://USER@HOST/DB"
            )))
        }
    }
}

/// A database URL from what a user typed: a URL, or a plain file path that
/// means a SQLite file (created when missing).
pub fn database_url(input: &str) -> String {
    if input.contains("://") || input.starts_with("sqlite:") {
        if input.starts_with("sqlite:") && !input.contains("mode=") && !input.contains(":memory:") {
            let sep = if input.contains('?') { '&' } else { '?' };
            return format!("{input}{sep}mode=rwc");
        }
        input.to_owned()
    } else {
        format!("sqlite://{input}?mode=rwc")
    }
}

#[derive(Debug, Clone)]
pub struct Store {
    pub pool: AnyPool,
    pub backend: Backend,
    /// Where write transactions queue (see [`crate::store::commit`]): on SQLite
    /// the one connection that writes, on PostgreSQL the lanes of shared
    /// order transactions.
    lanes: crate::store::commit::Lanes,
    /// Order ids this engine has reserved and not yet used (PostgreSQL; see
    /// [`Store::next_order_id`]).
    order_ids: std::sync::Arc<std::sync::Mutex<std::ops::Range<i64>>>,
}

/// SQLite connections: WAL lets readers go on while one order commits; the
/// busy timeout makes writers of other processes queue instead of failing.
fn sqlite_options(options: AnyPoolOptions) -> AnyPoolOptions {
    options.after_connect(|conn, _meta| {
        Box::pin(async move {
            for pragma in [
                "PRAGMA journal_mode = WAL",
                "PRAGMA busy_timeout = 10000",
                "PRAGMA foreign_keys = ON",
                "PRAGMA synchronous = FULL",
            ] {
                sqlx::query(pragma).execute(&mut *conn).await?;
            }
            Ok(())
        })
    })
}

/// How many order ids one `nextval` reserves on PostgreSQL (the sequence's
/// increment, set by migration 0004).
const ORDER_ID_BLOCK: i64 = 64;

impl Store {
    /// Connects to the database at `url` (see [`database_url`]).
    pub async fn connect(url: &str) -> Result<Self, EngineError> {
        install_default_drivers();
        let url = database_url(url);
        let backend = Backend::of_url(&url)?;
        let options = AnyPoolOptions::new().acquire_timeout(Duration::from_secs(30));
        let lanes = match backend {
            Backend::Sqlite => 1,
            Backend::Postgres => crate::store::commit::pg_lanes()?,
        };
        let (pool, writer_pool) = if backend == Backend::Sqlite {
            let pool = sqlite_options(options.clone().max_connections(8))
                .connect(&url)
                .await?;
            // One connection for every write (they take turns anyway, see
            // `crate::store::commit`), so that its page cache stays valid from one
            // order to the next: SQLite empties a connection's cache
            // whenever another connection has written since it last read.
            // (Not for an in-memory database: a second pool would get a
            // database of its own.)
            let writer = if url.contains(":memory:") {
                None
            } else {
                let writer = sqlite_options(options.max_connections(1).min_connections(1));
                Some(writer.connect(&url).await?)
            };
            (pool, writer)
        } else {
            // the lanes of shared transactions keep a connection each, and
            // up to two more that are committing or wait to be reused
            let max = 10 + 3 * lanes as u32;
            (options.max_connections(max).connect(&url).await?, None)
        };
        let lanes = crate::store::commit::Lanes::new(
            backend,
            writer_pool.unwrap_or_else(|| pool.clone()),
            lanes,
        );
        Ok(Self {
            pool,
            lanes,
            backend,
            order_ids: std::sync::Arc::new(std::sync::Mutex::new(0..0)),
        })
    }

    /// Applies the engine's migrations, then the domain's.
    pub async fn migrate(&self, domain: Migrator) -> Result<(), EngineError> {
        let mut engine = match self.backend {
            Backend::Sqlite => sqlx::migrate!("./migrations/sqlite"),
            Backend::Postgres => sqlx::migrate!("./migrations/postgres"),
        };
        // Engine and domain migrations share sqlx's bookkeeping table; each
        // migrator must tolerate the other's versions.
        engine.set_ignore_missing(true);
        engine.run(&self.pool).await?;
        let mut domain = domain;
        domain.set_ignore_missing(true);
        domain.run(&self.pool).await?;
        Ok(())
    }

    /// A connection of the pool (for reads and single statements).
    pub async fn acquire(&self) -> Result<sqlx::pool::PoolConnection<sqlx::Any>, EngineError> {
        Ok(self.pool.acquire().await?)
    }

    /// Tidies up after a bulk load on PostgreSQL: `VACUUM (ANALYZE)` — planner
    /// statistics (without them the planner may scan tables it believes
    /// empty) and the visibility map (index-only scans) — so that
    /// autovacuum does not do it later, in the middle of the load it was
    /// meant for.
    ///
    /// On SQLite it does nothing, on purpose: its planner's heuristics pick
    /// the indexes the engine's queries are written for, while statistics
    /// make things worse — the bundled SQLite is built with STAT4, under
    /// which a statement whose parameters meet sampled columns is compiled
    /// anew whenever its bound values change, i.e. on nearly every
    /// execution (`BENCH_SQLITE_ANALYZE=1` on the orders benchmark shows
    /// it; BENCHMARKS.md).
    pub async fn analyze(&self) -> Result<(), EngineError> {
        if self.backend == Backend::Postgres {
            sqlx::query("VACUUM (ANALYZE)").execute(&self.pool).await?;
        }
        Ok(())
    }

    /// Starts a transaction that will write, alone. On SQLite it takes the
    /// write lock up front (`BEGIN IMMEDIATE`), so a transaction that reads
    /// before it writes cannot fail to upgrade when another process commits
    /// in between; and this process's writers queue for it in turn (first
    /// come, first served) instead of polling the file lock with SQLite's
    /// busy handler, whose sleeps of up to 100 ms leave the database idle
    /// while writers wait. All of them use the same connection, whose cache
    /// of the database's pages stays valid between them.
    pub async fn begin_write(&self) -> Result<WriteTx, EngineError> {
        match self.backend {
            Backend::Sqlite => self.lanes.begin_alone().await,
            Backend::Postgres => Ok(WriteTx::own(
                self.pool.begin_with(crate::store::commit::PG_BEGIN).await?,
                self.lanes.commit_counter(),
            )),
        }
    }

    /// A connection for a write or a few that need no transaction around
    /// them (each statement commits by itself): a pooled one on
    /// PostgreSQL; on SQLite the writer connection, in turn with the
    /// transactions there (see [`crate::store::commit::WriteConn`]). Whoever
    /// needs several writes to stand or fall together takes
    /// [`Store::begin_write`].
    pub async fn write_conn(&self) -> Result<crate::store::commit::WriteConn, EngineError> {
        match self.backend {
            Backend::Sqlite => self.lanes.single().await,
            Backend::Postgres => Ok(crate::store::commit::WriteConn::pooled(
                self.pool.acquire().await?,
            )),
        }
    }

    /// How many write transactions ([`Store::begin_write`],
    /// [`Store::begin_shared`]) this store has ended so far. An answer
    /// derived from the database before this number changed may be out of
    /// date (writes of other processes are not counted).
    pub fn commits(&self) -> u64 {
        self.lanes.commits()
    }

    /// Starts a transaction that will write and may be shared with other
    /// orders queued to write (group commit, see [`crate::store::commit`]): its
    /// [`WriteTx::commit`] may fail with [`EngineError::Aborted`], after
    /// which the caller runs the order again with [`Store::begin_write`].
    pub async fn begin_shared(&self) -> Result<WriteTx, EngineError> {
        self.lanes.begin_shared().await
    }

    /// How many queues write transactions take turns in: one on SQLite,
    /// [`crate::store::commit::pg_lanes`] for shared ones on PostgreSQL (a shared
    /// transaction takes the next one in turn).
    pub fn write_lanes(&self) -> usize {
        self.lanes.count()
    }

    /// How long a shared transaction stays open for orders queued behind
    /// its first (default [`crate::store::commit::MAX_BATCH_AGE`]): an order that
    /// finishes later commits it even when others wait. Zero turns group
    /// commit off. Applies to every clone of this store.
    pub fn set_max_batch_age(&self, age: std::time::Duration) {
        self.lanes.set_max_age(age);
    }

    /// How many write transactions are waiting for their turn.
    pub fn queued_writes(&self) -> usize {
        self.lanes.queued()
    }
}

impl Store {
    /// The id the next order will get, asked inside the order's write
    /// transaction, so that an order can be processed — its actions see its
    /// id — and then written once. PostgreSQL: from a block of ids this
    /// engine reserved with one `nextval` (the sequence counts in blocks),
    /// so most orders need no round trip for it; ids are handed out in
    /// increasing order (after a restart, past the last block). SQLite: from
    /// `sqlite_sequence` and the table (the write transaction is exclusive).
    pub async fn next_order_id(&self, conn: &mut AnyConnection) -> Result<i64, EngineError> {
        match self.backend {
            Backend::Postgres => loop {
                if let Some(id) = self.take_order_id() {
                    return Ok(id);
                }
                let first: i64 = sqlx::query_scalar("SELECT nextval('auftrag_orders_id_seq')")
                    .fetch_one(&mut *conn)
                    .await?;
                let mut ids = self.order_ids.lock().unwrap_or_else(|e| e.into_inner());
                // `ids.end`: past the last id handed out
                if ids.is_empty() && first >= ids.end {
                    *ids = first + 1..first + ORDER_ID_BLOCK;
                    return Ok(first);
                }
                // Another order reserved a block meanwhile: take the next
                // id of that one and leave this block unused (a gap, as
                // sequences have), or, were that one used up already,
                // reserve another — so that this engine hands ids out in
                // increasing order: an order placed after another one was
                // answered has the larger id.
                if let Some(id) = ids.next() {
                    return Ok(id);
                }
            },
            Backend::Sqlite => Ok(sqlx::query_scalar(
                "SELECT MAX(COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'auftrag_orders'), 0), \
                            COALESCE((SELECT MAX(id) FROM auftrag_orders), 0)) + 1",
            )
            .fetch_one(&mut *conn)
            .await?),
        }
    }

    fn take_order_id(&self) -> Option<i64> {
        self.order_ids
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .next()
    }
}

pub use crate::store::commit::WriteTx;

fn to_json<T: serde::Serialize>(value: &T) -> Result<String, EngineError> {
    serde_json::to_string(value).map_err(|e| EngineError::Internal(format!("encoding JSON: {e}")))
}

fn from_json<T: serde::de::DeserializeOwned>(column: &str, text: &str) -> Result<T, EngineError> {
    serde_json::from_str(text)
        .map_err(|e| EngineError::Internal(format!("stored column `{column}` is not valid: {e}")))
}

/// An order as stored: its data, current state and history.
#[derive(Debug, Clone)]
pub struct StoredOrder {
    pub data: OrderData,
    pub state: String,
    pub closed: bool,
    pub created_at: String,
    pub updated_at: String,
    pub states: Vec<StateEntry>,
}

impl StoredOrder {
    /// The order's version as an HTTP entity tag: a digest of its history
    /// document, so any change of state, fields, findings or history makes
    /// a new one.
    pub fn etag(&self) -> String {
        etag_of(&self.document())
    }

    pub fn document(&self) -> OrderDocument {
        OrderDocument {
            id: self.data.id.unwrap_or_default(),
            host_id: self.data.key().map(str::to_owned),
            requester: self.data.requester.clone(),
            order_type: self.data.order_type.name.to_owned(),
            state: self.state.clone(),
            closed: self.closed,
            created_at: self.created_at.clone(),
            updated_at: self.updated_at.clone(),
            fields: self.data.fields.clone(),
            changed: self.data.changes.clone(),
            states: self.states.clone(),
            errors: self.data.errors.clone(),
            warnings: self.data.warnings.clone(),
            accepted_warnings: self.data.accepted.clone(),
            decisions: Vec::new(),
            facts: self.data.facts.clone(),
            notifications: Vec::new(),
            claims: Vec::new(),
            links: Default::default(),
        }
    }
}

pub(crate) const ORDER_COLUMNS: &str = "id, order_type, requester, state, closed, created_at, updated_at, \
     fields, changes, states, errors, warnings, accepted, facts";

/// Inserts a new order; returns its id.
pub async fn insert_order(
    conn: &mut AnyConnection,
    order: &OrderData,
    state: &str,
    states: &[StateEntry],
    at: &str,
) -> Result<i64, EngineError> {
    let row = sqlx::query(
        "INSERT INTO auftrag_orders \
         (order_type, requester, host, state, closed, created_at, updated_at, fields, changes, states, errors, warnings, accepted) \
         VALUES ($1, $2, $3, $4, 0, $5, $5, $6, $7, $8, $9, $10, $11) RETURNING id",
    )
    .bind(order.order_type.name)
    .bind(&order.requester)
    .bind(order.key())
    .bind(state)
    .bind(at)
    .bind(to_json(&order.fields)?)
    .bind(to_json(&order.changes)?)
    .bind(to_json(&states)?)
    .bind(to_json(&order.errors)?)
    .bind(to_json(&order.warnings)?)
    .bind(to_json(&order.accepted)?)
    .fetch_one(&mut *conn)
    .await?;
    Ok(row.try_get::<i64, _>(0)?)
}

/// An authorization decision waiting to be appended to the order's
/// decision log: (time, JSON).
pub type PendingDecision = (String, String);

/// What processing an order leaves to be written with its row, in the same
/// round trip: the writes its actions deferred, the checks' authorization
/// decisions and the jobs its actions created.
#[derive(Debug, Default)]
pub struct Pending {
    pub(crate) writes: crate::store::writes::Writes,
    pub(crate) decisions: Vec<PendingDecision>,
    pub(crate) jobs: Vec<crate::jobs::NewJob>,
    /// What the run collected for its notifications; becomes outbox rows
    /// ([`crate::notify::rows_for`]) in the same write.
    pub(crate) notify: crate::notify::Collected,
    pub(crate) outbox: Vec<Vec<crate::store::writes::Arg>>,
}

impl Pending {
    /// Whether the write creates jobs (agencies are woken after the commit).
    pub fn has_jobs(&self) -> bool {
        !self.jobs.is_empty()
    }

    /// Whether the write carries mails (senders are woken after the commit).
    pub fn has_mail(&self) -> bool {
        !self.outbox.is_empty()
    }

    /// Turns the run's notification events into outbox rows for `order`.
    pub(crate) fn take_mail(&mut self, defs: &'static Definitions, order: &StoredOrder) {
        let collected = std::mem::take(&mut self.notify);
        if !collected.events.is_empty() {
            self.outbox = crate::notify::rows_for(
                defs,
                &order.data,
                &order.states,
                collected,
                crate::notify::now_ms(),
            );
        }
    }

    /// The deferred writes, then `row` (the order's row; it may refer to the
    /// order's id as `id`, a parameter of `writes`), then the decisions and
    /// jobs that refer to the order.
    fn into_writes(
        self,
        row: impl FnOnce(&mut crate::store::writes::Writes) -> Result<String, EngineError>,
        order_id: i64,
    ) -> Result<crate::store::writes::Writes, EngineError> {
        use crate::store::writes::Arg;
        let mut w = self.writes;
        let id = w.arg(order_id);
        let sql = row(&mut w)?.replace("{id}", &id);
        w.push(sql);
        let decisions: Vec<Vec<Arg>> = self
            .decisions
            .into_iter()
            .map(|(at, decision)| vec![Arg::Int(order_id), at.into(), decision.into()])
            .collect();
        w.insert("auftrag_decisions (order_id, at, decision)", decisions);
        let jobs: Vec<Vec<Arg>> = self
            .jobs
            .into_iter()
            .map(|j| {
                vec![
                    j.queue.into(),
                    j.job_type.into(),
                    j.owner.into(),
                    Arg::Int(order_id),
                    "PENDING".into(),
                    j.input.into(),
                    Arg::Int(0),
                    Arg::Int(j.max_attempts),
                    Arg::Int(j.lease_secs),
                    Arg::Int(j.retention_secs),
                    Arg::Int(j.created_ms),
                    Arg::Int(j.created_ms),
                ]
            })
            .collect();
        w.insert(
            "auftrag_jobs (queue, job_type, owner, order_id, state, input, attempts, \
             max_attempts, lease_secs, retention_secs, created_ms, updated_ms)",
            jobs,
        );
        w.insert(crate::notify::OUTBOX_INSERT, self.outbox);
        Ok(w)
    }
}

fn order_id(order: &StoredOrder) -> Result<i64, EngineError> {
    order
        .data
        .id
        .ok_or_else(|| EngineError::Internal("writing an order without id".into()))
}

/// The columns of an order's row that processing changes, with their
/// values as parameters of `w`.
fn order_columns(
    w: &mut crate::store::writes::Writes,
    defs: &'static Definitions,
    order: &StoredOrder,
) -> Result<Vec<(&'static str, String)>, EngineError> {
    let derived = crate::history::Derived::of_order(defs, order);
    Ok(vec![
        ("closed_at", w.arg(derived.closed_at)),
        ("duration_ms", w.arg(derived.duration_ms)),
        ("waiting_ms", w.arg(derived.waiting_ms)),
        ("waited", w.arg(i64::from(derived.waited))),
        ("host", w.arg(order.data.key())),
        ("state", w.arg(order.state.as_str())),
        ("closed", w.arg(i64::from(order.closed))),
        ("updated_at", w.arg(order.updated_at.as_str())),
        ("fields", w.arg(to_json(&order.data.fields)?)),
        ("changes", w.arg(to_json(&order.data.changes)?)),
        ("states", w.arg(to_json(&order.states)?)),
        ("errors", w.arg(to_json(&order.data.errors)?)),
        ("warnings", w.arg(to_json(&order.data.warnings)?)),
        ("accepted", w.arg(to_json(&order.data.accepted)?)),
        (
            "facts",
            w.arg(order.data.facts.as_ref().map(to_json).transpose()?),
        ),
    ])
}

/// Writes a new order — processed, with id from [`Store::next_order_id`] —
/// and what its processing left pending, in one round trip.
pub async fn insert_processed_order(
    conn: &mut AnyConnection,
    defs: &'static Definitions,
    order: &StoredOrder,
    pending: Pending,
) -> Result<(), EngineError> {
    let writes = pending.into_writes(
        |w| {
            let mut columns = vec![
                ("id", "{id}".to_owned()),
                ("order_type", w.arg(order.data.order_type.name)),
                ("requester", w.arg(order.data.requester.as_str())),
                ("created_at", w.arg(order.created_at.as_str())),
            ];
            columns.extend(order_columns(w, defs, order)?);
            let (names, values): (Vec<&str>, Vec<String>) = columns.into_iter().unzip();
            Ok(format!(
                "INSERT INTO auftrag_orders ({}) VALUES ({})",
                names.join(", "),
                values.join(", ")
            ))
        },
        order_id(order)?,
    )?;
    writes.run(conn).await?;
    Ok(())
}

/// Writes an order's state, context and history back, with what its
/// processing left pending, in one round trip.
pub async fn update_order(
    conn: &mut AnyConnection,
    defs: &'static Definitions,
    order: &StoredOrder,
    pending: Pending,
) -> Result<(), EngineError> {
    let writes = pending.into_writes(
        |w| {
            let mut sets: Vec<String> = order_columns(w, defs, order)?
                .into_iter()
                .map(|(c, v)| format!("{c} = {v}"))
                .collect();
            sets.push("version = version + 1".to_owned());
            Ok(format!(
                "UPDATE auftrag_orders SET {} WHERE id = {{id}}",
                sets.join(", ")
            ))
        },
        order_id(order)?,
    )?;
    writes.run(conn).await?;
    Ok(())
}

pub(crate) fn order_from_row(
    defs: &'static Definitions,
    row: &sqlx::any::AnyRow,
) -> Result<StoredOrder, EngineError> {
    let order_type: String = row.try_get("order_type")?;
    let order_type = defs.order_type(&order_type).ok_or_else(|| {
        EngineError::Internal(format!(
            "stored order has order type `{order_type}`, which the definitions no longer have"
        ))
    })?;
    Ok(StoredOrder {
        data: OrderData {
            id: Some(row.try_get("id")?),
            order_type,
            requester: row.try_get("requester")?,
            fields: from_json::<Fields>("fields", &row.try_get::<String, _>("fields")?)?,
            errors: from_json::<Vec<Finding>>("errors", &row.try_get::<String, _>("errors")?)?,
            warnings: from_json::<Vec<Finding>>(
                "warnings",
                &row.try_get::<String, _>("warnings")?,
            )?,
            accepted: from_json::<Vec<Finding>>(
                "accepted",
                &row.try_get::<String, _>("accepted")?,
            )?,
            changes: from_json("changes", &row.try_get::<String, _>("changes")?)?,
            facts: row
                .try_get::<Option<String>, _>("facts")?
                .map(|f| from_json::<Fields>("facts", &f))
                .transpose()?,
        },
        state: row.try_get("state")?,
        closed: row.try_get::<i64, _>("closed")? != 0,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        states: from_json("states", &row.try_get::<String, _>("states")?)?,
    })
}

/// Reads an order.
pub async fn load_order(
    conn: &mut AnyConnection,
    defs: &'static Definitions,
    id: i64,
) -> Result<StoredOrder, EngineError> {
    load(conn, defs, id, "").await
}

/// Reads an order to change it: the row stays locked until the transaction
/// ends, so two requests on one order (on any instance) take turns. (SQLite
/// write transactions hold the database lock already.)
pub async fn lock_order(
    conn: &mut AnyConnection,
    backend: Backend,
    defs: &'static Definitions,
    id: i64,
) -> Result<StoredOrder, EngineError> {
    let lock = match backend {
        Backend::Sqlite => "",
        Backend::Postgres => " FOR UPDATE",
    };
    load(conn, defs, id, lock).await
}

async fn load(
    conn: &mut AnyConnection,
    defs: &'static Definitions,
    id: i64,
    lock: &str,
) -> Result<StoredOrder, EngineError> {
    let row = sqlx::query(&format!(
        "SELECT {ORDER_COLUMNS} FROM auftrag_orders WHERE id = $1{lock}"
    ))
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?
    .ok_or(EngineError::NotFound(id))?;
    order_from_row(defs, &row)
}

/// Filters of `GET /api/v1/orders`.
#[derive(Debug, Clone, Default)]
pub struct OrderFilter {
    pub requester: Option<String>,
    pub host: Option<String>,
    pub state: Option<String>,
    /// Only orders created at or after this RFC 3339 instant.
    pub since: Option<String>,
    /// Only orders created before this RFC 3339 instant.
    pub until: Option<String>,
    /// Only orders with a smaller id (the cursor of the previous page).
    pub before_id: Option<i64>,
    pub limit: i64,
    /// Only orders meeting this condition (what a person may read, see
    /// [`crate::history::access`]; for [`Access::Verify`] its candidates).
    ///
    /// [`Access::Verify`]: crate::history::access::Access::Verify
    pub access: Option<crate::history::access::Access>,
}

/// A text to search for, from a request: no stored value holds control
/// characters or is longer than [`crate::workflow::types::TYPED_MAX_LENGTH`],
/// and PostgreSQL refuses a text with NUL with an error of its own, so such
/// a text is refused here, naming the parameter (HTTP 400).
pub fn search_text(name: &str, value: &str) -> Result<(), EngineError> {
    crate::workflow::types::check_text(value, crate::workflow::types::TYPED_MAX_LENGTH, false)
        .map_err(|m| {
            EngineError::InvalidFields(vec![crate::error::FieldProblem {
                field: name.to_owned(),
                message: format!("(a query parameter) {m}"),
            }])
        })
}

/// Orders matching the filter, newest first.
pub async fn list_orders(
    pool: &AnyPool,
    defs: &'static Definitions,
    filter: &OrderFilter,
) -> Result<Vec<StoredOrder>, EngineError> {
    for (name, value) in [
        ("requester", &filter.requester),
        ("host", &filter.host),
        ("state", &filter.state),
        ("since", &filter.since),
        ("until", &filter.until),
    ] {
        if let Some(v) = value {
            search_text(name, v)?;
        }
    }
    let mut sql = format!("SELECT {ORDER_COLUMNS} FROM auftrag_orders WHERE 1 = 1");
    let mut binds: Vec<String> = Vec::new();
    let mut push = |sql: &mut String, clause: &str, value: String| {
        binds.push(value);
        sql.push_str(&format!(" AND {clause} ${}", binds.len()));
    };
    if let Some(v) = &filter.requester {
        push(&mut sql, "requester =", v.clone());
    }
    if let Some(v) = &filter.host {
        push(&mut sql, "host =", v.clone());
    }
    if let Some(v) = &filter.state {
        push(&mut sql, "state =", v.clone());
    }
    if let Some(v) = &filter.since {
        push(&mut sql, "created_at >=", v.clone());
    }
    if let Some(v) = &filter.until {
        push(&mut sql, "created_at <", v.clone());
    }
    let mut query_sql = sql;
    let mut args: Vec<writes::Arg> = binds.into_iter().map(writes::Arg::from).collect();
    if let Some(access) = &filter.access {
        let backend = Backend::of_url(pool.connect_options().database_url.as_str())?;
        let cond = access.sql(backend, args.len() + 1);
        query_sql.push_str(&format!(" AND ({})", cond.sql));
        args.extend(cond.args);
    }
    if let Some(before) = filter.before_id {
        query_sql.push_str(&format!(" AND id < {before}"));
    }
    query_sql.push_str(&format!(" ORDER BY id DESC LIMIT {}", filter.limit));
    let mut query = sqlx::query(&query_sql);
    for a in args {
        query = a.bind(query);
    }
    let rows = query.fetch_all(pool).await?;
    rows.iter().map(|r| order_from_row(defs, r)).collect()
}

pub async fn get_setting(
    conn: &mut AnyConnection,
    name: &str,
) -> Result<Option<String>, EngineError> {
    Ok(
        sqlx::query("SELECT value FROM auftrag_settings WHERE name = $1")
            .bind(name)
            .fetch_optional(&mut *conn)
            .await?
            .map(|r| r.try_get::<String, _>(0))
            .transpose()?,
    )
}

/// Stores `value` under `name` unless a value is there already; returns the
/// value that is stored afterwards (so two instances starting at once agree).
pub async fn init_setting(
    conn: &mut AnyConnection,
    name: &str,
    value: &str,
) -> Result<String, EngineError> {
    sqlx::query(
        "INSERT INTO auftrag_settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
    )
    .bind(name)
    .bind(value)
    .execute(&mut *conn)
    .await?;
    get_setting(conn, name)
        .await?
        .ok_or_else(|| EngineError::Internal(format!("setting `{name}` vanished")))
}

pub async fn is_staff(conn: &mut AnyConnection, person: &str) -> Result<bool, EngineError> {
    Ok(sqlx::query("SELECT 1 FROM auftrag_staff WHERE person = $1")
        .bind(person)
        .fetch_optional(&mut *conn)
        .await?
        .is_some())
}

pub async fn add_staff(conn: &mut AnyConnection, person: &str) -> Result<(), EngineError> {
    sqlx::query("INSERT INTO auftrag_staff (person) VALUES ($1) ON CONFLICT (person) DO NOTHING")
        .bind(person)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Parses a `limit` query value.
pub fn parse_limit(value: Option<&str>) -> Result<i64, String> {
    match value {
        None => Ok(50),
        Some(v) => match i64::from_str(v) {
            Ok(n) if (1..=1000).contains(&n) => Ok(n),
            _ => Err(format!("limit must be a number from 1 to 1000, not `{v}`")),
        },
    }
}

/// An order's authorization decisions, oldest first.
pub async fn decisions_of(
    conn: &mut AnyConnection,
    order_id: i64,
) -> Result<Vec<serde_json::Value>, EngineError> {
    let rows =
        sqlx::query("SELECT at, decision FROM auftrag_decisions WHERE order_id = $1 ORDER BY id")
            .bind(order_id)
            .fetch_all(&mut *conn)
            .await?;
    rows.iter()
        .map(|r| {
            let mut v: serde_json::Value = from_json("decision", &r.try_get::<String, _>(1)?)?;
            if let Some(obj) = v.as_object_mut() {
                obj.insert("at".into(), serde_json::Value::String(r.try_get(0)?));
            }
            Ok(v)
        })
        .collect()
}

/// Orders with their row version, for the history export: those with the
/// given ids, or (`ids` empty) up to `limit` orders with an id above
/// `after`, in id order.
pub async fn orders_with_version(
    conn: &mut AnyConnection,
    defs: &'static Definitions,
    ids: &[i64],
    after: i64,
    limit: i64,
) -> Result<Vec<(StoredOrder, i64)>, EngineError> {
    let rows = if ids.is_empty() {
        sqlx::query(&format!(
            "SELECT {ORDER_COLUMNS}, version FROM auftrag_orders WHERE id > $1 ORDER BY id LIMIT $2"
        ))
        .bind(after)
        .bind(limit)
        .fetch_all(&mut *conn)
        .await?
    } else {
        // ids are integers: a list of them in the statement is safe
        let list: Vec<String> = ids.iter().map(i64::to_string).collect();
        sqlx::query(&format!(
            "SELECT {ORDER_COLUMNS}, version FROM auftrag_orders WHERE id IN ({}) ORDER BY id",
            list.join(", ")
        ))
        .fetch_all(&mut *conn)
        .await?
    };
    // a row the definitions cannot read (an order type they no longer
    // have, a broken column) is left out, with a warning, rather than
    // stopping the export of every other order
    let mut orders = Vec::with_capacity(rows.len());
    for r in &rows {
        match order_from_row(defs, r) {
            Ok(order) => orders.push((order, r.try_get::<i64, _>("version")?)),
            Err(e) => tracing::warn!(
                id = r.try_get::<i64, _>("id").unwrap_or_default(),
                error = %e,
                "an order is left out of the history export"
            ),
        }
    }
    Ok(orders)
}

/// Writes orders as they are, ids included, many rows per statement: a
/// generated history for benchmarks and load tests (`auftrag demo-data
/// --orders`). Nothing runs — no checks, no actions, no mails; the
/// device database is not touched. The derived columns are computed as for
/// any order. At most a few hundred orders per call (one statement).
pub async fn insert_history_rows(
    conn: &mut AnyConnection,
    defs: &'static Definitions,
    orders: &[StoredOrder],
) -> Result<(), EngineError> {
    use crate::store::writes::{Arg, Writes};
    let rows = orders
        .iter()
        .map(|o| {
            let d = crate::history::Derived::of_order(defs, o);
            Ok(vec![
                Arg::Int(order_id(o)?),
                o.data.order_type.name.into(),
                o.data.requester.as_str().into(),
                o.data.key().into(),
                o.state.as_str().into(),
                Arg::Int(i64::from(o.closed)),
                o.created_at.as_str().into(),
                o.updated_at.as_str().into(),
                to_json(&o.data.fields)?.into(),
                to_json(&o.data.changes)?.into(),
                to_json(&o.states)?.into(),
                to_json(&o.data.errors)?.into(),
                to_json(&o.data.warnings)?.into(),
                to_json(&o.data.accepted)?.into(),
                o.data.facts.as_ref().map(to_json).transpose()?.into(),
                d.closed_at.into(),
                d.duration_ms.into(),
                Arg::Int(d.waiting_ms),
                Arg::Int(i64::from(d.waited)),
            ])
        })
        .collect::<Result<Vec<_>, EngineError>>()?;
    let mut w = Writes::default();
    w.insert(
        "auftrag_orders (id, order_type, requester, host, state, closed, created_at, \
         updated_at, fields, changes, states, errors, warnings, accepted, facts, closed_at, \
         duration_ms, waiting_ms, waited)",
        rows,
    );
    w.run(conn).await?;
    Ok(())
}

/// Sets the order id sequence past the largest id (after ids were given
/// explicitly, [`insert_history_rows`]).
pub async fn reset_order_ids(
    conn: &mut AnyConnection,
    backend: Backend,
) -> Result<(), EngineError> {
    if backend == Backend::Postgres {
        sqlx::query(
            "SELECT setval('auftrag_orders_id_seq', GREATEST((SELECT MAX(id) FROM auftrag_orders), 1))",
        )
        .execute(&mut *conn)
        .await?;
    }
    // SQLite: AUTOINCREMENT keeps the largest id in sqlite_sequence itself
    Ok(())
}
