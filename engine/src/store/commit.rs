//! Write transactions, and group commit: orders that queue behind each other
//! share one transaction and one commit.
//!
//! A commit costs the database a flush to disk and the engine two round
//! trips (`BEGIN`, `COMMIT`) besides the pool's checks of the connection;
//! for an order that writes a few rows that is a large part of its cost. So
//! the engine lets an order that finds others waiting to write leave its
//! transaction open for them: the next order continues it, and the last one
//! in the queue (or the [`MAX_BATCH`]th, or the first to finish
//! [`MAX_BATCH_AGE`] after the transaction began) commits for all. Every order's
//! [`WriteTx::commit`] returns only once the commit that holds its writes
//! has succeeded, so a client hears "done" only for what is on disk, and
//! each order is still all or nothing: if anything in a shared transaction
//! fails, all of it is rolled back, and the orders before the failing one
//! learn so from their `commit` ([`EngineError::Aborted`]) and run again in
//! a transaction of their own. Nothing that failed is reported as done and
//! nothing is written twice.
//!
//! The queue is a *lane*: a connection and a turn (a fair mutex). SQLite
//! has one lane, its writer connection, and every write takes its turn
//! there ([`Store::begin_write`](crate::store::Store::begin_write) flushes
//! an open shared transaction first and then runs alone). PostgreSQL has
//! [`pg_lanes`] lanes for shared orders and runs everything else in
//! transactions of its own, in parallel as before. An order in a shared
//! transaction on PostgreSQL waits for locks at most [`LOCK_TIMEOUT`]: the
//! transaction holds the locks of the orders before it, and two lanes each
//! waiting for the other's locks would otherwise deadlock where single
//! orders would not. When the time is up, the shared
//! transaction is rolled back and its orders run alone, waiting as long as
//! they need. A PostgreSQL lane does not wait for its commit: the next
//! transaction begins on another connection meanwhile, and the committing
//! connection begins the lane's transaction after next in the same round
//! trip as its commit ([`Spare`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyConnection, AnyPool};
use tokio::sync::{Mutex, OwnedMutexGuard, oneshot};

use crate::error::EngineError;
use crate::store::Backend;

/// At most this many orders share a transaction.
pub const MAX_BATCH: usize = 32;

/// An order that finishes later than this after its shared transaction
/// began commits it, even when others wait: the first orders of a
/// transaction wait for its commit, and a lane that is never idle would
/// otherwise keep them waiting for [`MAX_BATCH`] orders (100 ms and more
/// on two cores at 1,000 orders/s, when it was tried).
///
/// The default of [`Store::set_max_batch_age`](crate::store::Store::set_max_batch_age).
pub const MAX_BATCH_AGE: std::time::Duration = std::time::Duration::from_millis(10);

/// Lanes for shared transactions on PostgreSQL: `AUFTRAG_PG_LANES` (1 to
/// 64) if set, else one per core of this machine and one more, at least
/// three and at most nine (each keeps a connection of the pool). A lane
/// runs its orders' statements one after another, so while one lane's
/// statement runs in the database and another's order in the engine, a core
/// would wait for the round trips in between; the extra lane fills those
/// gaps. More lanes make shorter queues, so fewer orders share a commit: on
/// two cores three lanes served more orders per second than two, four no
/// more than three (BENCHMARKS.md).
pub fn pg_lanes() -> Result<usize, EngineError> {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    lanes_for(std::env::var("AUFTRAG_PG_LANES").ok().as_deref(), cores)
}

fn lanes_for(setting: Option<&str>, cores: usize) -> Result<usize, EngineError> {
    match setting {
        None => Ok(cores.clamp(2, 8) + 1),
        Some(v) => v
            .trim()
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=64).contains(n))
            .ok_or_else(|| {
                EngineError::Internal(format!(
                    "AUFTRAG_PG_LANES must be a number of lanes from 1 to 64, not `{v}`"
                ))
            }),
    }
}

/// The texts below, put together at compile time (`concat!` takes
/// literals, not constants).
macro_rules! pg_begin {
    () => {
        "BEGIN; SET LOCAL plan_cache_mode = force_generic_plan"
    };
}
macro_rules! lock_timeout {
    () => {
        "50ms"
    };
}
macro_rules! pg_begin_shared {
    () => {
        concat!(
            pg_begin!(),
            "; SET LOCAL lock_timeout = '",
            lock_timeout!(),
            "'"
        )
    };
}

/// How long an order in a shared PostgreSQL transaction waits for a lock
/// before the transaction is rolled back and its orders run alone.
pub const LOCK_TIMEOUT: &str = lock_timeout!();

/// How a shared PostgreSQL transaction begins: as [`PG_BEGIN`], and with
/// the [`LOCK_TIMEOUT`] set from the start. Its first order holds no other
/// order's locks and could wait longer, but setting the timeout when a
/// second order joins cost a round trip per shared transaction; a first
/// order that times out runs again alone like any other.
const PG_BEGIN_SHARED: &str = pg_begin_shared!();

/// A shared PostgreSQL transaction's commit, followed by the beginning of
/// the next one on the same connection: one round trip for both. The
/// first two statements are the commit (see [`end`]).
const PG_COMMIT_THEN_BEGIN: &str = concat!("SELECT 1; COMMIT; ", pg_begin_shared!());

/// How long a transaction begun on a spare connection ([`Spare`]) is used
/// for the lane's next one. An older one is rolled back and begun anew in
/// one round trip (as a plain `BEGIN` costs one): a connection left idle in
/// a transaction for long may have been ended by the server
/// (`idle_in_transaction_session_timeout`), which the first statement of
/// an order would then find. A lane that has gone idle rolls them back
/// after this long too ([`sweep_spares`]).
const SPARE_BEGUN_FOR: std::time::Duration = std::time::Duration::from_secs(1);

/// A PostgreSQL lane's connection whose transaction has committed.
struct Spare {
    conn: PoolConnection<Any>,
    /// When the lane's next transaction was begun on it, in the round trip
    /// of the commit ([`PG_COMMIT_THEN_BEGIN`]); `None` if none was.
    begun: Option<std::time::Instant>,
}

/// What a shared transaction's orders learn when it ends.
#[derive(Clone)]
enum Outcome {
    Committed,
    /// Rolled back: nothing of it was written.
    RolledBack(String),
    /// The commit failed; whether it took effect may be unknown.
    Failed(String),
}

/// The state of a lane, guarded by its turn.
#[derive(Default)]
pub(crate) struct Batch {
    /// The lane's connection, kept from one transaction to the next.
    conn: Option<PoolConnection<Any>>,
    /// Orders done in the open transaction, waiting for its commit.
    members: Vec<oneshot::Sender<Outcome>>,
    /// When the transaction open on `conn` began; `None` when none is.
    began: Option<std::time::Instant>,
}

impl Batch {
    fn is_open(&self) -> bool {
        self.began.is_some()
    }

    /// Commits a transaction left open by orders that are done.
    async fn commit_left_open(&mut self) {
        if self.is_open() {
            let _ = end(self, true, "").await;
        }
    }
}

pub(crate) struct Lane {
    turn: Arc<Mutex<Batch>>,
    /// Connections whose transaction has committed, for the lane's next
    /// (PostgreSQL, where a lane goes on while its last transaction commits).
    spare: std::sync::Mutex<Vec<Spare>>,
    /// Tasks queued for the turn.
    waiting: AtomicUsize,
    /// A task will end transactions begun on spares that wait too long
    /// ([`sweep_spares`]).
    sweeping: std::sync::atomic::AtomicBool,
    /// The batch age, in µs (see [`MAX_BATCH_AGE`]).
    max_age_us: std::sync::atomic::AtomicU64,
    pool: AnyPool,
    backend: Backend,
}

/// The lanes of a store.
#[derive(Clone)]
pub(crate) struct Lanes {
    lanes: Arc<[Arc<Lane>]>,
    next: Arc<AtomicUsize>,
    /// Write transactions ended so far (see [`Lanes::commits`]).
    commits: Arc<AtomicU64>,
}

impl std::fmt::Debug for Lanes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lanes")
            .field("lanes", &self.lanes.len())
            .finish()
    }
}

impl Lanes {
    /// `n` lanes (SQLite: one) on `pool`.
    pub(crate) fn new(backend: Backend, pool: AnyPool, n: usize) -> Self {
        let lanes = (0..n)
            .map(|_| {
                Arc::new(Lane {
                    turn: Default::default(),
                    spare: Default::default(),
                    waiting: AtomicUsize::new(0),
                    sweeping: Default::default(),
                    max_age_us: (MAX_BATCH_AGE.as_micros() as u64).into(),
                    pool: pool.clone(),
                    backend,
                })
            })
            .collect();
        Self {
            lanes,
            next: Default::default(),
            commits: Default::default(),
        }
    }

    /// How many write transactions of this store have ended (committed,
    /// or tried to). What was read from the database before this number
    /// last changed may be out of date; caches of derived answers (the
    /// read policy's access conditions) compare it.
    pub(crate) fn commits(&self) -> u64 {
        self.commits.load(Ordering::Acquire)
    }

    /// The counter a transaction of its own (PostgreSQL) raises when it ends.
    pub(crate) fn commit_counter(&self) -> Arc<AtomicU64> {
        self.commits.clone()
    }

    pub(crate) fn set_max_age(&self, age: std::time::Duration) {
        let us = u64::try_from(age.as_micros()).unwrap_or(u64::MAX);
        for lane in self.lanes.iter() {
            lane.max_age_us.store(us, Ordering::Relaxed);
        }
    }

    /// How many lanes there are.
    pub(crate) fn count(&self) -> usize {
        self.lanes.len()
    }

    /// How many tasks wait for a lane's turn.
    pub(crate) fn queued(&self) -> usize {
        self.lanes
            .iter()
            .map(|l| l.waiting.load(Ordering::Acquire))
            .sum()
    }

    /// A transaction on a lane (the next one in turn), shared with the
    /// orders before and after this one if they queue.
    pub(crate) async fn begin_shared(&self) -> Result<WriteTx, EngineError> {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.lanes.len();
        let lane = self.lanes[i].clone();
        let batch = take_turn(&lane).await;
        let batch = detached(lane.clone(), batch, Op::Join).await?;
        Ok(WriteTx::on_lane(lane, batch, true, self.commits.clone()))
    }

    /// The (only) lane's connection outside any transaction: SQLite's
    /// single writes, each statement committed by itself.
    pub(crate) async fn single(&self) -> Result<WriteConn, EngineError> {
        let (_, batch) = self.first_lane(Op::Single).await?;
        Ok(WriteConn {
            kind: ConnKind::Lane(batch),
        })
    }

    /// A transaction of its own on the (only) lane: SQLite's writes.
    pub(crate) async fn begin_alone(&self) -> Result<WriteTx, EngineError> {
        let (lane, batch) = self.first_lane(Op::Alone).await?;
        Ok(WriteTx::on_lane(lane, batch, false, self.commits.clone()))
    }

    /// The first lane's turn, once `op` is done.
    async fn first_lane(&self, op: Op) -> Result<(Arc<Lane>, OwnedMutexGuard<Batch>), EngineError> {
        let lane = self.lanes[0].clone();
        let batch = take_turn(&lane).await;
        let batch = detached(lane.clone(), batch, op).await?;
        Ok((lane, batch))
    }
}

/// Counts a task as queued for a lane's turn until it has it; a task that
/// gives up waiting (its future dropped) makes sure that a transaction left
/// open for it is committed.
struct Queued(Option<Arc<Lane>>);

impl Drop for Queued {
    fn drop(&mut self) {
        if let Some(lane) = self.0.take() {
            lane.waiting.fetch_sub(1, Ordering::AcqRel);
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                rt.spawn(async move {
                    lane.turn
                        .clone()
                        .lock_owned()
                        .await
                        .commit_left_open()
                        .await;
                });
            }
        }
    }
}

async fn take_turn(lane: &Arc<Lane>) -> OwnedMutexGuard<Batch> {
    lane.waiting.fetch_add(1, Ordering::AcqRel);
    let mut queued = Queued(Some(lane.clone()));
    let batch = lane.turn.clone().lock_owned().await;
    queued.0 = None;
    lane.waiting.fetch_sub(1, Ordering::AcqRel);
    batch
}

/// What a turn does with the lane's transaction before or after an order.
enum Op {
    /// Continue the open transaction, or begin one.
    Join,
    /// Commit an open transaction, then begin one for this order alone.
    Alone,
    /// Commit an open transaction and begin none: statements that commit
    /// one by one.
    Single,
    Commit,
    Rollback,
}

/// Runs `op` in a task of its own, so that a request cancelled meanwhile
/// cannot leave the lane's transaction half begun or half ended; if nobody
/// takes the turn back, an open transaction is committed (it holds only
/// finished orders then).
async fn detached(
    lane: Arc<Lane>,
    mut batch: OwnedMutexGuard<Batch>,
    op: Op,
) -> Result<OwnedMutexGuard<Batch>, EngineError> {
    let (back, turn) = oneshot::channel();
    tokio::spawn(async move {
        let r = apply(&lane, &mut batch, op).await;
        if let Err(Ok(mut batch)) = back.send(r.map(|()| batch)) {
            batch.commit_left_open().await;
        }
    });
    turn.await
        .map_err(|_| EngineError::Internal("the runtime is shutting down".into()))?
}

async fn apply(lane: &Lane, batch: &mut Batch, op: Op) -> Result<(), EngineError> {
    match op {
        Op::Join if batch.is_open() => Ok(()),
        Op::Join => open(lane, batch).await,
        Op::Alone => {
            // the orders before this one are done: their commit
            batch.commit_left_open().await;
            open(lane, batch).await
        }
        Op::Single => {
            batch.commit_left_open().await;
            if batch.conn.is_none() {
                batch.conn = Some(lane.pool.acquire().await?);
            }
            Ok(())
        }
        Op::Commit => end(batch, true, "").await.map_err(commit_failed),
        Op::Rollback => Ok(end(batch, false, ABORTED).await?),
    }
}

/// How a PostgreSQL write transaction begins, shared or not: with generic
/// plans for its statements. An order runs the same few statements with
/// new values each time, and PostgreSQL would otherwise plan most of them
/// anew for every order (it estimates custom plans of the resolvers'
/// UNIONs as cheaper); measured, the generic plans run as fast and
/// planning was a fifth of an order's statement time (BENCHMARKS.md).
pub(crate) const PG_BEGIN: &str = pg_begin!();

/// Begins a transaction on the lane's connection. A connection kept from
/// before that fails to begin (the server restarted, say) is replaced by a
/// fresh one from the pool, once. On PostgreSQL a spare connection whose
/// commit began the next transaction ([`Spare`]) is used as it is, without
/// a round trip, if that was less than [`SPARE_BEGUN_FOR`] ago.
async fn open(lane: &Lane, batch: &mut Batch) -> Result<(), EngineError> {
    let begin = match lane.backend {
        // the write lock up front: a transaction that reads before it
        // writes cannot fail to upgrade when another process writes
        Backend::Sqlite => "BEGIN IMMEDIATE",
        Backend::Postgres => PG_BEGIN_SHARED,
    };
    let mut kept = true;
    loop {
        let mut sql = std::borrow::Cow::Borrowed(begin);
        if batch.conn.is_none() {
            let spare = lane.spare.lock().unwrap_or_else(|e| e.into_inner()).pop();
            batch.conn = Some(match spare {
                Some(Spare {
                    conn,
                    begun: Some(at),
                }) => {
                    if at.elapsed() < SPARE_BEGUN_FOR {
                        batch.conn = Some(conn);
                        break;
                    }
                    sql = format!("ROLLBACK; {begin}").into();
                    conn
                }
                Some(Spare { conn, begun: None }) => conn,
                None => {
                    kept = false;
                    // the pool checks the connection before it hands it out
                    lane.pool.acquire().await?
                }
            });
        }
        match run(batch, &sql).await {
            Ok(()) => break,
            // `run` dropped the connection; other database errors than
            // the server ending it (SQLSTATE classes 08 and 57) are not
            // the connection's fault
            Err(e) if kept && connection_lost(&e) => {
                tracing::debug!(error = %e, "a kept write connection failed; taking a fresh one");
                lane.spare.lock().unwrap_or_else(|e| e.into_inner()).clear();
                kept = false;
            }
            Err(e) => return Err(e.into()),
        }
    }
    batch.began = Some(std::time::Instant::now());
    Ok(())
}

fn connection_lost(e: &sqlx::Error) -> bool {
    match e.as_database_error().and_then(|d| d.code()) {
        Some(code) => code.starts_with("08") || code.starts_with("57"),
        None => !matches!(e, sqlx::Error::Database(_)),
    }
}

/// Runs `sql` (no parameters, no rows) on the lane's connection; a
/// connection that fails is dropped (closed, which ends its transaction)
/// and replaced at the next transaction.
async fn run(batch: &mut Batch, sql: &str) -> Result<(), sqlx::Error> {
    let conn = batch.conn.as_mut().expect("the lane's connection");
    // no parameters: PostgreSQL gets a simple query, which may hold
    // several statements
    match sqlx::Executor::execute(&mut **conn, sql).await {
        Ok(_) => Ok(()),
        Err(e) => {
            if let Some(mut conn) = batch.conn.take() {
                conn.close_on_drop();
            }
            batch.began = None;
            Err(e)
        }
    }
}

/// Ends the open transaction — commits it or rolls it back — and tells the
/// orders waiting for it: done when it committed, aborted (`why`)
/// otherwise. Returns what the database said.
///
/// The commit first runs `SELECT 1`, which fails in a transaction that a
/// failed statement has aborted: PostgreSQL would answer `COMMIT` there by
/// rolling back without an error, and the orders before would take it for
/// done.
async fn end(batch: &mut Batch, commit: bool, why: &str) -> Result<(), sqlx::Error> {
    let r = if batch.is_open() {
        run(
            batch,
            if commit {
                "SELECT 1; COMMIT"
            } else {
                "ROLLBACK"
            },
        )
        .await
    } else {
        Err(sqlx::Error::Protocol(
            "the transaction's connection failed".into(),
        ))
    };
    settle(batch, commit, why, r)
}

/// [`end`] with a commit, and the next transaction begun on the same
/// connection in the same round trip ([`PG_COMMIT_THEN_BEGIN`]). Returns
/// what the commit came to and whether the next transaction began.
async fn commit_then_begin(batch: &mut Batch) -> (Result<(), sqlx::Error>, bool) {
    use futures::StreamExt;
    if !batch.is_open() {
        return (end(batch, true, "").await, false);
    }
    let conn = batch.conn.as_mut().expect("the lane's connection");
    // one result per statement: the commit is done once the first two
    // (`SELECT 1`, `COMMIT`) came back; an error after them is the begin's
    let mut done = 0;
    let mut failed = None;
    {
        let mut results = sqlx::Executor::execute_many(&mut **conn, PG_COMMIT_THEN_BEGIN);
        while let Some(r) = results.next().await {
            match r {
                Ok(_) => done += 1,
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
        }
    }
    let begun = failed.is_none() && done == 5;
    if !begun {
        // a connection that failed here is not used again
        if let Some(mut conn) = batch.conn.take() {
            conn.close_on_drop();
        }
    }
    let r = match failed {
        Some(e) if done < 2 => Err(e),
        Some(e) => {
            tracing::debug!(error = %e, "beginning the next transaction after a commit failed");
            Ok(())
        }
        None => Ok(()),
    };
    (settle(batch, true, "", r), begun)
}

/// Tells the orders of the transaction that `r` ended what it came to.
fn settle(
    batch: &mut Batch,
    commit: bool,
    why: &str,
    r: Result<(), sqlx::Error>,
) -> Result<(), sqlx::Error> {
    let members = std::mem::take(&mut batch.members);
    batch.began = None;
    if commit && r.is_ok() {
        metrics::histogram!("auftrag_group_commit_orders").record((members.len() + 1) as f64);
    }
    let outcome = match &r {
        Ok(()) if commit => Outcome::Committed,
        Ok(()) => Outcome::RolledBack(why.to_owned()),
        // the connection is closed, which rolls the transaction back
        Err(e) if !commit => Outcome::RolledBack(format!("{why} (then: {e})")),
        // the database refused (`SELECT 1` in an aborted transaction, or
        // the commit itself): nothing was committed
        Err(e) if !connection_failed(e) => {
            Outcome::RolledBack(format!("the shared transaction could not commit: {e}"))
        }
        // the connection failed: whether the commit took effect is unknown,
        // so the orders must not run again
        Err(e) => Outcome::Failed(format!("committing the shared transaction failed: {e}")),
    };
    for member in members {
        let _ = member.send(outcome.clone());
    }
    r
}

/// A write transaction: a connection (it derefs to one) in a transaction,
/// from [`Store::begin_write`](crate::store::Store::begin_write) or
/// [`Store::begin_shared`](crate::store::Store::begin_shared). End it with
/// [`commit`](Self::commit) or [`rollback`](Self::rollback); dropped
/// without either, it is rolled back.
pub struct WriteTx {
    kind: Kind,
    /// Raised once the transaction has ended ([`Lanes::commits`]).
    commits: Arc<AtomicU64>,
}

enum Kind {
    /// A transaction of its own on a pooled connection (PostgreSQL);
    /// `None` once ended.
    Own(Option<sqlx::Transaction<'static, Any>>),
    /// On a lane; `shared`: other orders may continue the transaction.
    Lane {
        lane: Arc<Lane>,
        batch: Option<OwnedMutexGuard<Batch>>,
        shared: bool,
    },
}

impl WriteTx {
    pub(crate) fn own(tx: sqlx::Transaction<'static, Any>, commits: Arc<AtomicU64>) -> Self {
        Self {
            kind: Kind::Own(Some(tx)),
            commits,
        }
    }

    fn on_lane(
        lane: Arc<Lane>,
        batch: OwnedMutexGuard<Batch>,
        shared: bool,
        commits: Arc<AtomicU64>,
    ) -> Self {
        Self {
            kind: Kind::Lane {
                lane,
                batch: Some(batch),
                shared,
            },
            commits,
        }
    }

    /// Commits; returns once the writes are committed. In a shared
    /// transaction that may be a later order's commit, or fail with
    /// [`EngineError::Aborted`] when a later order rolled it back: then
    /// nothing of this transaction was written.
    pub async fn commit(mut self) -> Result<(), EngineError> {
        // counted once the commit has ended, whatever its outcome, and
        // also when this future is dropped halfway: a reader that counted
        // before sees the number change
        let _counted = CountOnDrop(self.commits.clone());
        self.commit_inner().await
    }

    async fn commit_inner(&mut self) -> Result<(), EngineError> {
        match &mut self.kind {
            Kind::Own(tx) => Ok(tx.take().expect("an open transaction").commit().await?),
            Kind::Lane {
                lane,
                batch,
                shared,
            } => {
                let mut guard = batch.take().expect("an open transaction");
                if *shared
                    && lane.waiting.load(Ordering::Acquire) > 0
                    && guard.members.len() + 1 < MAX_BATCH
                    && guard.began.is_some_and(|t| {
                        t.elapsed().as_micros()
                            < u128::from(lane.max_age_us.load(Ordering::Relaxed))
                    })
                {
                    // the next order in the queue continues the transaction
                    let (done, wait) = oneshot::channel();
                    guard.members.push(done);
                    drop(guard);
                    return match wait.await {
                        Ok(Outcome::Committed) => Ok(()),
                        Ok(Outcome::RolledBack(why)) => Err(EngineError::Aborted(why)),
                        Ok(Outcome::Failed(why)) => Err(EngineError::Internal(why)),
                        // the runtime is shutting down
                        Err(_) => Err(EngineError::Internal(
                            "the shared transaction was abandoned".into(),
                        )),
                    };
                }
                if lane.backend == Backend::Postgres {
                    return commit_aside(lane.clone(), guard).await;
                }
                detached(lane.clone(), guard, Op::Commit).await.map(drop)
            }
        }
    }

    /// Rolls back; in a shared transaction, the orders before this one
    /// too (their `commit` fails with [`EngineError::Aborted`]).
    pub async fn rollback(mut self) -> Result<(), EngineError> {
        match &mut self.kind {
            Kind::Own(tx) => Ok(tx.take().expect("an open transaction").rollback().await?),
            Kind::Lane { lane, batch, .. } => {
                let guard = batch.take().expect("an open transaction");
                detached(lane.clone(), guard, Op::Rollback).await.map(drop)
            }
        }
    }
}

const ABORTED: &str = "an order sharing the transaction failed";

/// A connection for writes that need no transaction around them: each
/// statement commits by itself, as on any pooled connection. On SQLite it
/// is the writer connection, taken in turn like a transaction
/// ([`Store::write_conn`](crate::store::Store::write_conn)): a write on
/// another connection would find the database locked while a transaction
/// is open there and poll for it with SQLite's busy handler, whose sleeps
/// (up to 100 ms each) outlast the transaction many times over. The turn
/// is given back when this is dropped.
pub struct WriteConn {
    kind: ConnKind,
}

enum ConnKind {
    Pooled(PoolConnection<Any>),
    Lane(OwnedMutexGuard<Batch>),
}

impl WriteConn {
    pub(crate) fn pooled(conn: PoolConnection<Any>) -> Self {
        Self {
            kind: ConnKind::Pooled(conn),
        }
    }
}

impl std::ops::Deref for WriteConn {
    type Target = AnyConnection;
    fn deref(&self) -> &Self::Target {
        match &self.kind {
            ConnKind::Pooled(conn) => conn,
            ConnKind::Lane(batch) => batch.conn.as_deref().expect("the lane's connection"),
        }
    }
}

impl std::ops::DerefMut for WriteConn {
    fn deref_mut(&mut self) -> &mut Self::Target {
        match &mut self.kind {
            ConnKind::Pooled(conn) => conn,
            ConnKind::Lane(batch) => batch.conn.as_deref_mut().expect("the lane's connection"),
        }
    }
}

/// PostgreSQL: commits the lane's transaction on its connection while the
/// lane goes on with the next one on another connection. A slow flush to
/// disk then delays only the orders of this transaction, not the ones
/// queued behind it (which would otherwise wait for it and then run one
/// after another). Orders of the next transaction that need a lock this one
/// holds wait for its commit as they would for any other transaction's.
/// The connection then waits among the lane's spares (at most two), with
/// a transaction begun in the round trip of the commit.
async fn commit_aside(
    lane: Arc<Lane>,
    mut guard: OwnedMutexGuard<Batch>,
) -> Result<(), EngineError> {
    // the lane keeps an empty batch: no connection, nothing open
    let mut aside = std::mem::take(&mut *guard);
    drop(guard);
    // in a task of its own: a cancelled request must not stop a commit
    // other orders wait for
    tokio::spawn(async move {
        let room = lane.spare.lock().unwrap_or_else(|e| e.into_inner()).len() < MAX_SPARE;
        let (r, begun) = if room {
            commit_then_begin(&mut aside).await
        } else {
            (end(&mut aside, true, "").await, false)
        };
        if let Some(conn) = aside.conn.take() {
            let mut spare = lane.spare.lock().unwrap_or_else(|e| e.into_inner());
            if spare.len() < MAX_SPARE {
                spare.push(Spare {
                    conn,
                    begun: begun.then(std::time::Instant::now),
                });
                drop(spare);
                if begun {
                    sweep_spares(&lane);
                }
            } else if begun {
                // no room after all: end the transaction begun on it
                // before the pool has it back
                drop(spare);
                tokio::spawn(end_begun(conn));
            }
        }
        r
    })
    .await
    .map_err(|e| EngineError::Internal(format!("committing: {e}")))?
    .map_err(commit_failed)
}

/// The error of the order whose commit of a shared transaction failed:
/// like the other orders' [`Outcome`], it runs again ([`retry_alone`]) if
/// the database refused the commit (nothing was written), and not if the
/// connection failed (whether the commit took effect is unknown).
fn commit_failed(e: sqlx::Error) -> EngineError {
    if connection_failed(&e) {
        EngineError::Internal(format!("committing the shared transaction failed: {e}"))
    } else {
        e.into()
    }
}

/// Whether `e` means the connection failed or the server ended it, so that
/// what was not committed on it is rolled back. (Unlike [`connection_lost`],
/// not for errors of the driver that leave the connection as it was.)
fn connection_failed(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(d) => d
            .code()
            .is_some_and(|c| c.starts_with("08") || matches!(&*c, "57P01" | "57P02" | "57P03")),
        _ => false,
    }
}

/// Spare connections a PostgreSQL lane keeps.
const MAX_SPARE: usize = 2;

/// Rolls back the transaction begun on a spare connection; returns the
/// connection, or closes it if that failed (dropped, a returned connection
/// goes back to the pool).
async fn end_begun(mut conn: PoolConnection<Any>) -> Option<PoolConnection<Any>> {
    match sqlx::Executor::execute(&mut *conn, "ROLLBACK").await {
        Ok(_) => Some(conn),
        Err(_) => {
            conn.close_on_drop();
            None
        }
    }
}

/// Makes sure a task ends the transactions begun on the lane's spares once
/// they have waited [`SPARE_BEGUN_FOR`] (the spares stay, without one): a
/// lane that has gone idle leaves no connection idle in a transaction,
/// which monitoring would report and the server may be set to end.
fn sweep_spares(lane: &Arc<Lane>) {
    if lane.sweeping.swap(true, Ordering::AcqRel) {
        return;
    }
    let lane = lane.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(SPARE_BEGUN_FOR).await;
            let stale: Vec<Spare> = {
                let mut spare = lane.spare.lock().unwrap_or_else(|e| e.into_inner());
                let (stale, fresh) = std::mem::take(&mut *spare)
                    .into_iter()
                    .partition(|s| s.begun.is_some_and(|at| at.elapsed() >= SPARE_BEGUN_FOR));
                *spare = fresh;
                stale
            };
            for Spare { conn, .. } in stale {
                if let Some(conn) = end_begun(conn).await {
                    let mut spare = lane.spare.lock().unwrap_or_else(|e| e.into_inner());
                    if spare.len() < MAX_SPARE {
                        spare.push(Spare { conn, begun: None });
                    }
                }
            }
            let begun = || {
                lane.spare
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .iter()
                    .any(|s| s.begun.is_some())
            };
            if !begun() {
                lane.sweeping.store(false, Ordering::Release);
                // one begun meanwhile found the flag still set
                if !begun() || lane.sweeping.swap(true, Ordering::AcqRel) {
                    return;
                }
            }
        }
    });
}

/// Raises a commit counter when dropped.
struct CountOnDrop(Arc<AtomicU64>);

impl Drop for CountOnDrop {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::AcqRel);
    }
}

impl Drop for WriteTx {
    fn drop(&mut self) {
        if let Kind::Lane { batch, .. } = &mut self.kind
            && let Some(mut guard) = batch.take()
        {
            // Neither committed nor rolled back (an error returned early,
            // or the request was cancelled): roll back, and keep the turn
            // until that is done.
            match tokio::runtime::Handle::try_current() {
                Ok(rt) => {
                    rt.spawn(async move {
                        let _ = end(&mut guard, false, ABORTED).await;
                    });
                }
                Err(_) => {
                    if let Some(mut conn) = guard.conn.take() {
                        conn.close_on_drop();
                    }
                    guard.began = None;
                    guard.members.clear();
                }
            }
        }
    }
}

impl std::ops::Deref for WriteTx {
    type Target = AnyConnection;
    fn deref(&self) -> &Self::Target {
        match &self.kind {
            Kind::Own(tx) => tx.as_deref().expect("an open transaction"),
            Kind::Lane { batch, .. } => batch
                .as_ref()
                .and_then(|b| b.conn.as_deref())
                .expect("an open transaction"),
        }
    }
}

impl std::ops::DerefMut for WriteTx {
    fn deref_mut(&mut self) -> &mut Self::Target {
        match &mut self.kind {
            Kind::Own(tx) => tx.as_deref_mut().expect("an open transaction"),
            Kind::Lane { batch, .. } => batch
                .as_mut()
                .and_then(|b| b.conn.as_deref_mut())
                .expect("an open transaction"),
        }
    }
}

/// Whether `e` is the database being out of reach (the connection failed,
/// the server ended it, no connection came in time) rather than something
/// about the order: trying again later may succeed.
pub fn unreachable(e: &EngineError) -> bool {
    let db = match e {
        EngineError::Db(e) => e,
        EngineError::Handler {
            source: crate::error::HandlerError::Db(e),
            ..
        } => e,
        _ => return false,
    };
    connection_failed(db) || matches!(db, sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed)
}

/// Whether `e` means "run the order again, alone": its shared transaction
/// was rolled back for another order, or it waited too long for a lock in
/// one (PostgreSQL's `lock_not_available`), or found it failed by an
/// earlier order (`in_failed_sql_transaction`), or the connection failed
/// under a statement of the order (on PostgreSQL the transaction may have
/// been begun ahead, in the round trip of an earlier commit, on a
/// connection the server has ended since). A commit that failed with the
/// connection is not among them ([`commit_failed`]).
pub fn retry_alone(e: &EngineError) -> bool {
    let db = match e {
        EngineError::Aborted(_) => return true,
        EngineError::Db(e) => e,
        EngineError::Handler {
            source: crate::error::HandlerError::Db(e),
            ..
        } => e,
        _ => return false,
    };
    connection_failed(db)
        || db
            .as_database_error()
            .and_then(|d| d.code())
            .is_some_and(|c| c == "55P03" || c == "25P02")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_transactions_begin_like_own_ones_with_the_lock_timeout() {
        let set_timeout = format!("SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'");
        for begin in [PG_BEGIN_SHARED, PG_COMMIT_THEN_BEGIN] {
            assert!(begin.contains(PG_BEGIN), "{begin}");
            assert!(begin.ends_with(&set_timeout), "{begin}");
        }
        // `commit_then_begin` counts on five statements, the commit first
        assert!(PG_COMMIT_THEN_BEGIN.starts_with("SELECT 1; COMMIT; BEGIN;"));
        assert_eq!(PG_COMMIT_THEN_BEGIN.matches(';').count(), 4);
    }

    #[test]
    fn lanes_are_cores_and_one_unless_set() {
        assert_eq!(lanes_for(None, 1).unwrap(), 3);
        assert_eq!(lanes_for(None, 2).unwrap(), 3);
        assert_eq!(lanes_for(None, 4).unwrap(), 5);
        assert_eq!(lanes_for(None, 64).unwrap(), 9);
        assert_eq!(lanes_for(Some(" 2 "), 2).unwrap(), 2);
        for bad in ["0", "65", "two", ""] {
            let e = lanes_for(Some(bad), 2).unwrap_err().to_string();
            assert!(e.contains("AUFTRAG_PG_LANES") && e.contains(bad), "{e}");
        }
    }
}
