//! Group commit (`auftrag_engine::store::commit`) on a real SQLite file and a real
//! PostgreSQL server: orders queued behind each other share a transaction,
//! every `commit` returns only once its writes are committed, and when one
//! of them fails the others learn that nothing of theirs was written. And
//! the order ids the transactions take increase.

use std::time::Duration;

use auftrag_engine::EngineError;
use auftrag_engine::store::commit::retry_alone;
use auftrag_engine::store::{Store, WriteTx};
use tempfile::TempDir;

use reqwest::StatusCode;
use serde_json::json;

use crate::support::{Db, TestServer, ZAM2212, ZAM2212_PORT, for_both_backends};

/// A store on a fresh database, with a table to write into.
async fn store(db: Db) -> (Store, Option<TempDir>) {
    let (url, dir) = match db {
        Db::Sqlite => {
            let dir = tempfile::tempdir().expect("tempdir");
            let url = format!("sqlite://{}", dir.path().join("commit.db").display());
            (url, Some(dir))
        }
        Db::Postgres => (auftrag_testkit::fresh_postgres_database().await, None),
    };
    let store = Store::connect(&url).await.expect("connect");
    // the tests decide when transactions end, not the clock
    store.set_max_batch_age(Duration::from_secs(600));
    sqlx::query("CREATE TABLE probe (k TEXT PRIMARY KEY)")
        .execute(&store.pool)
        .await
        .expect("probe table");
    (store, dir)
}

async fn insert(tx: &mut WriteTx, key: &str) {
    sqlx::query("INSERT INTO probe (k) VALUES ($1)")
        .bind(key)
        .execute(&mut **tx)
        .await
        .expect("insert");
}

async fn keys(store: &Store) -> Vec<String> {
    sqlx::query_scalar("SELECT k FROM probe ORDER BY k")
        .fetch_all(&store.pool)
        .await
        .expect("read probe")
}

/// Waits until `n` write transactions queue for their turn.
async fn queued(store: &Store, n: usize) {
    tokio::time::timeout(Duration::from_secs(10), async {
        while store.queued_writes() < n {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    })
    .await
    .expect("transactions queue for their turn");
}

/// Guards against a hang: a turn never given back would block for ever.
async fn within<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(20), f)
        .await
        .unwrap_or_else(|_| panic!("{what} did not finish"))
}

/// Runs `then` in a task that queues behind `shared` (an open shared
/// transaction on SQLite's writer), then commits `shared`; returns what
/// `then` returned once it had its turn.
async fn queued_behind<T: Send + 'static>(
    store: &Store,
    shared: WriteTx,
    then: impl std::future::Future<Output = T> + Send + 'static,
) -> T {
    let task = tokio::spawn(then);
    queued(store, 1).await;
    within("the shared commit", shared.commit())
        .await
        .expect("commit");
    within("the write queued behind it", task)
        .await
        .expect("task")
}

/// Starts shared transactions that each take the next lane, one per lane,
/// so that the next `begin_shared` queues behind the first one.
async fn one_per_lane(store: &Store) -> Vec<WriteTx> {
    let mut txs = Vec::new();
    for _ in 0..store.write_lanes() {
        txs.push(store.begin_shared().await.expect("begin"));
    }
    txs
}

/// Spawns one task per lane, in turn, each queued behind the transaction
/// [`one_per_lane`] opened there; each runs `then` on its own shared
/// transaction once it has its turn.
async fn queue_one_per_lane<T, Fut>(
    store: &Store,
    then: impl Fn(usize, WriteTx) -> Fut + Send + Sync + 'static,
) -> Vec<tokio::task::JoinHandle<T>>
where
    Fut: std::future::Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let then = std::sync::Arc::new(then);
    let mut tasks = Vec::new();
    for i in 0..store.write_lanes() {
        let (s, then) = (store.clone(), then.clone());
        tasks.push(tokio::spawn(async move {
            let tx = s.begin_shared().await.expect("begin");
            then(i, tx).await
        }));
        // one at a time, so that each takes the next lane
        queued(store, i + 1).await;
    }
    tasks
}

for_both_backends!(queued_orders_share_a_commit, #[tokio::test(flavor = "multi_thread", worker_threads = 2)]);
/// An order that finds others queued leaves its transaction open for them;
/// its `commit` returns after the commit that holds its row. On PostgreSQL
/// the rows' `xmin` shows that they were written by one transaction.
async fn queued_orders_share_a_commit(db: Db) {
    let (store, _dir) = store(db).await;
    let mut first = one_per_lane(&store).await;
    insert(&mut first[0], "a").await;
    let lanes = first.len();
    let later = queue_one_per_lane(&store, |i, mut tx| async move {
        insert(&mut tx, &format!("b{i}")).await;
        tx.commit().await
    })
    .await;
    let commits = first.into_iter().map(|tx| tokio::spawn(tx.commit()));
    for c in commits {
        within("a commit", c).await.expect("task").expect("commit");
    }
    for t in later {
        within("a later commit", t)
            .await
            .expect("task")
            .expect("commit");
    }
    let mut want = vec!["a".to_owned()];
    want.extend((0..lanes).map(|i| format!("b{i}")));
    assert_eq!(keys(&store).await, want);
    if db == Db::Postgres {
        // "a" and the order queued behind it on its lane share a transaction
        let writers: i64 = sqlx::query_scalar(
            "SELECT COUNT(DISTINCT xmin::text) FROM probe WHERE k IN ('a', 'b0')",
        )
        .fetch_one(&store.pool)
        .await
        .unwrap();
        assert_eq!(writers, 1, "one transaction wrote both rows");
    }
}

for_both_backends!(a_failing_order_rolls_back_the_orders_before_it, #[tokio::test(flavor = "multi_thread", worker_threads = 2)]);
/// When an order in a shared transaction fails, the whole transaction is
/// rolled back and the orders before it learn from their `commit` that
/// nothing of theirs was written; alone, they then succeed.
async fn a_failing_order_rolls_back_the_orders_before_it(db: Db) {
    a_later_order_ends_the_transaction(db, false).await
}

for_both_backends!(a_dropped_transaction_is_rolled_back_and_frees_its_turn, #[tokio::test(flavor = "multi_thread", worker_threads = 2)]);
/// A transaction dropped without commit or rollback (a request cancelled
/// midway) is rolled back the same way, and its lane is free again.
async fn a_dropped_transaction_is_rolled_back_and_frees_its_turn(db: Db) {
    a_later_order_ends_the_transaction(db, true).await
}

/// One order per lane writes and commits while a later one queued on its
/// lane writes and then rolls back (or is dropped, `dropped`).
async fn a_later_order_ends_the_transaction(db: Db, dropped: bool) {
    let (store, _dir) = store(db).await;
    let mut first = one_per_lane(&store).await;
    insert(&mut first[0], "a").await;
    let later = queue_one_per_lane(&store, move |i, mut tx| async move {
        insert(&mut tx, &format!("doomed{i}")).await;
        if dropped {
            drop(tx);
            Ok(())
        } else {
            tx.rollback().await
        }
    })
    .await;
    let mut first = first.into_iter();
    let a = first.next().unwrap();
    let others: Vec<_> = first.map(|tx| tokio::spawn(tx.commit())).collect();
    let r = within("the first commit", a.commit()).await;
    assert!(
        matches!(r, Err(EngineError::Aborted(_))),
        "the order before the failing one is told it was rolled back: {r:?}"
    );
    assert!(retry_alone(&r.unwrap_err()));
    for t in later {
        within("the later ones", t)
            .await
            .expect("task")
            .expect("rollback");
    }
    for t in others {
        let r = within("the others", t).await.expect("task");
        assert!(matches!(r, Err(EngineError::Aborted(_))), "{r:?}");
    }
    assert!(keys(&store).await.is_empty(), "nothing was written");
    // every lane takes turns again
    for _ in 0..store.write_lanes() {
        let mut tx = within("a new turn", store.begin_shared())
            .await
            .expect("begin");
        insert(&mut tx, "n").await;
        tx.rollback().await.expect("rollback");
    }
    let mut alone = within("a transaction alone", store.begin_write())
        .await
        .expect("begin alone");
    insert(&mut alone, "a").await;
    alone.commit().await.expect("commit alone");
    assert_eq!(keys(&store).await, ["a"]);
}

/// SQLite: `begin_write` does not join a shared transaction; it commits
/// the one before it (whose orders are done) and then runs alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_a_transaction_alone_commits_the_shared_one_before_it() {
    let (store, _dir) = store(Db::Sqlite).await;
    let mut a = store.begin_shared().await.expect("begin");
    insert(&mut a, "a").await;
    let alone = {
        let store = store.clone();
        async move {
            let mut tx = store.begin_write().await.expect("begin alone");
            // the shared transaction before this one is committed by now
            let seen = keys(&store).await;
            insert(&mut tx, "c").await;
            tx.rollback().await.expect("rollback");
            seen
        }
    };
    let seen = queued_behind(&store, a, alone).await;
    assert_eq!(seen, ["a"], "committed before the next transaction began");
    assert_eq!(keys(&store).await, ["a"]);
}

/// SQLite: writes outside a transaction (`Store::write_conn`) take their
/// turn on the writer connection like transactions do — on another
/// connection they would find the database locked by the shared
/// transaction and poll for it with SQLite's busy handler — and commit
/// each statement by itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_single_writes_take_their_turn_on_the_writer() {
    let (store, _dir) = store(Db::Sqlite).await;
    let mut shared = store.begin_shared().await.expect("begin");
    insert(&mut shared, "a").await;
    let single = {
        let store = store.clone();
        async move {
            let mut conn = store.write_conn().await.expect("write connection");
            // the transaction before has committed
            let seen = keys(&store).await;
            sqlx::query("INSERT INTO probe (k) VALUES ('b')")
                .execute(&mut *conn)
                .await
                .expect("insert");
            seen
        }
    };
    let seen = queued_behind(&store, shared, single).await;
    assert_eq!(seen, ["a"]);
    // committed by itself: a transaction after it sees it, and so does
    // another connection
    let mut next = store.begin_shared().await.expect("begin");
    insert(&mut next, "c").await;
    next.rollback().await.expect("rollback");
    assert_eq!(keys(&store).await, ["a", "b"]);
}

/// SQLite: an agency's heartbeat (and so its result, a new job, a secret)
/// waits for its turn on the writer while orders share a transaction there,
/// and goes through once they have committed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_job_writes_wait_their_turn_behind_a_shared_transaction() {
    use auftrag_engine::jobs::db;
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("jobs.db").display());
    let engine = auftrag_engine::Engine::open(&url, auftrag::domain())
        .await
        .expect("open engine");
    let store = engine.store.clone();
    store.set_max_batch_age(Duration::from_secs(600));
    let id = {
        let mut conn = store.write_conn().await.expect("write connection");
        db::enqueue(&mut conn, engine.defs, "labels", b"label", "1005", None)
            .await
            .expect("enqueue")
    };
    let lease = db::lease(&store, "test", &["labels"], 1)
        .await
        .expect("lease")
        .pop()
        .expect("the job is leased");
    assert_eq!(lease.job.id, id);
    let shared = store.begin_shared().await.expect("begin");
    let heartbeat = {
        let store = store.clone();
        async move { db::heartbeat(&store, id, &lease.token).await }
    };
    let expires = queued_behind(&store, shared, heartbeat)
        .await
        .expect("heartbeat taken");
    assert!(expires > lease.job.lease_expires_ms.unwrap_or_default() - 1);
}

/// PostgreSQL: an order in a shared transaction waits for a lock at most
/// the lock timeout — two lanes each waiting for a lock the other holds for
/// an order already done would otherwise deadlock — and the error says to
/// run it again alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_shared_transaction_does_not_wait_for_locks_held_by_another_lane() {
    let (store, _dir) = store(Db::Postgres).await;
    let lanes = store.write_lanes();
    assert!(lanes >= 2, "PostgreSQL has at least two lanes");
    // x: lane 0 holds the lock; y: lane 1
    let mut x = store.begin_shared().await.expect("begin");
    let y = store.begin_shared().await.expect("begin");
    sqlx::query("SELECT pg_advisory_xact_lock(4242)")
        .execute(&mut *x)
        .await
        .expect("lock");
    // the next begin_shared takes lane 0 again
    for _ in 2..lanes {
        let tx = store.begin_shared().await.expect("begin");
        tx.commit().await.expect("commit");
    }
    let (go, wait) = tokio::sync::oneshot::channel::<()>();
    let x2 = {
        let store = store.clone();
        tokio::spawn(async move {
            let tx = store.begin_shared().await.expect("begin");
            let _ = wait.await;
            tx.commit().await
        })
    };
    queued(&store, 1).await;
    let y2 = {
        let store = store.clone();
        tokio::spawn(async move {
            let mut tx = store.begin_shared().await.expect("begin");
            let r = sqlx::query("SELECT pg_advisory_xact_lock(4242)")
                .execute(&mut *tx)
                .await;
            let _ = tx.rollback().await;
            r
        })
    };
    queued(&store, 2).await;
    // x and y are done and wait for the orders queued behind them
    let x = tokio::spawn(x.commit());
    let y = tokio::spawn(y.commit());
    let r = within("the waiting order", y2).await.expect("task");
    let e = EngineError::Db(r.expect_err("the lock wait times out"));
    assert!(retry_alone(&e), "{e}");
    let y = within("y", y).await.expect("task");
    assert!(matches!(y, Err(EngineError::Aborted(_))), "{y:?}");
    go.send(()).unwrap();
    within("x2", x2).await.expect("task").expect("commit");
    within("x", x).await.expect("task").expect("commit");
}

for_both_backends!(a_transaction_older_than_the_batch_age_is_committed_at_once, #[tokio::test(flavor = "multi_thread", worker_threads = 2)]);
/// An order that finishes after the batch age commits its transaction even
/// when others wait: a later order's failure then costs it nothing.
async fn a_transaction_older_than_the_batch_age_is_committed_at_once(db: Db) {
    let (store, _dir) = store(db).await;
    store.set_max_batch_age(Duration::ZERO);
    let mut first = one_per_lane(&store).await;
    insert(&mut first[0], "a").await;
    let failing = queue_one_per_lane(&store, |i, mut tx| async move {
        insert(&mut tx, &format!("doomed{i}")).await;
        tx.rollback().await
    })
    .await;
    for tx in first {
        within("a commit", tx.commit())
            .await
            .expect("committed alone");
    }
    for t in failing {
        within("the failing ones", t)
            .await
            .expect("task")
            .expect("rollback");
    }
    assert_eq!(keys(&store).await, ["a"]);
}

/// Ends every connection of the test's database but the asking one, as an
/// administrator or a restart would; returns how many.
async fn end_other_connections(pool: &sqlx::AnyPool) -> usize {
    let ended: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    .fetch_all(pool)
    .await
    .expect("end the other connections");
    assert!(ended.iter().all(|e| *e), "{ended:?}");
    ended.len()
}

/// PostgreSQL: a lane keeps its connections between transactions, and
/// begins the next transaction on one in the round trip of its commit; when
/// the server has ended them (a restart, an administrator), a transaction
/// begun ahead fails at its first statement with an error that makes the
/// order run again ([`retry_alone`]), and the lane takes fresh connections
/// from the pool: no lane fails twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_lane_replaces_connections_the_server_ended() {
    let (store, _dir) = store(Db::Postgres).await;
    for tx in one_per_lane(&store).await {
        tx.commit().await.expect("commit");
    }
    assert!(end_other_connections(&store.pool).await >= store.write_lanes());
    let lanes = store.write_lanes();
    let (mut failed, mut committed) = (0, 0);
    for i in 0..2 * lanes {
        let mut tx = store.begin_shared().await.expect("a transaction");
        let first = sqlx::query("INSERT INTO probe (k) VALUES ($1)")
            .bind(format!("k{i}"))
            .execute(&mut *tx)
            .await;
        match first {
            Ok(_) => {
                tx.commit().await.expect("commit");
                committed += 1;
            }
            Err(e) => {
                let e = EngineError::from(e);
                assert!(retry_alone(&e), "not run again: {e}");
                failed += 1;
            }
        }
    }
    assert!(failed <= lanes, "{failed} of {} failed", 2 * lanes);
    assert_eq!(keys(&store).await.len(), committed);
}

/// PostgreSQL: a commit begins the lane's next transaction in the same
/// round trip, so right after commits there are connections idle in a
/// transaction; a lane that has gone idle ends them within about two
/// seconds, and the lane goes on as before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_an_idle_lane_leaves_no_transaction_open() {
    let (store, _dir) = store(Db::Postgres).await;
    let idle_in_transaction = || async {
        sqlx::query_scalar::<_, i64>(
            "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() \
             AND state = 'idle in transaction'",
        )
        .fetch_one(&store.pool)
        .await
        .expect("pg_stat_activity")
    };
    for round in 0..2 {
        for (i, mut tx) in one_per_lane(&store).await.into_iter().enumerate() {
            insert(&mut tx, &format!("r{round}k{i}")).await;
            tx.commit().await.expect("commit");
        }
        assert!(
            idle_in_transaction().await > 0,
            "no transaction begun ahead"
        );
        let gone = tokio::time::timeout(Duration::from_secs(5), async {
            while idle_in_transaction().await > 0 {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
        .await;
        assert!(gone.is_ok(), "transactions left open on an idle lane");
    }
    assert_eq!(keys(&store).await.len(), 2 * store.write_lanes());
}

/// The same through the API: orders placed after the server ended all of
/// the engine's connections complete.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_orders_complete_after_the_server_ended_the_connections() {
    let s = TestServer::start_on(Db::Postgres).await;
    let at_once = 9;
    let macs: Vec<String> = (0..2 * at_once)
        .map(|i| format!("00:1a:2b:3c:5e:{i:02x}"))
        .collect();
    let (warm, after) = macs.split_at(at_once);
    let db = s.db().await;
    for (round, macs) in [warm, after].into_iter().enumerate() {
        if round == 1 {
            assert!(end_other_connections(&db).await > 0);
        }
        // at once, so that the lanes share transactions and keep spares
        let replies = futures::future::join_all(
            macs.iter()
                .map(|mac| s.submit("admin", json!({"host": ZAM2212, "hwa": mac}))),
        )
        .await;
        for r in replies {
            assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
            assert_eq!(r.body["state"], "COMPLETED", "{}", r.body);
        }
    }
    assert!(
        s.hwa(ZAM2212_PORT)
            .await
            .is_some_and(|hwa| after.iter().any(|m| m.eq_ignore_ascii_case(&hwa))),
        "the last changes are written"
    );
}

/// Order ids on PostgreSQL come from blocks of the sequence that this engine
/// reserves one `nextval` at a time; when several orders find the block
/// used up at once, each reserves a new one. Still, an order that takes its
/// id after another one did gets the larger id: eight clients each taking
/// ids one after the other, all at once, across many blocks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_order_ids_increase_across_blocks_taken_at_once() {
    let url = auftrag_testkit::fresh_postgres_database().await;
    let engine = auftrag_engine::Engine::open(&url, auftrag::domain())
        .await
        .expect("open");
    let store = std::sync::Arc::new(engine.store.clone());
    let clients: Vec<_> = (0..8)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut ids = Vec::new();
                for _ in 0..200 {
                    let mut conn = store.pool.acquire().await.expect("connection");
                    ids.push(store.next_order_id(&mut conn).await.expect("id"));
                }
                ids
            })
        })
        .collect();
    let mut all = Vec::new();
    for c in clients {
        let ids = c.await.expect("client");
        assert!(
            ids.windows(2).all(|w| w[0] < w[1]),
            "a later id is smaller: {ids:?}"
        );
        all.extend(ids);
    }
    all.sort_unstable();
    all.dedup();
    assert_eq!(all.len(), 8 * 200, "ids are unique");
}

/// A lease takes at most the jobs asked for, also on PostgreSQL, where a
/// `LIMIT … SKIP LOCKED` subquery inside the UPDATE could run again and
/// lease all three of three jobs with `max` 1.
async fn a_lease_takes_no_more_jobs_than_asked(db: Db) {
    use auftrag_engine::jobs::db;
    let dir = tempfile::tempdir().expect("tempdir");
    let url = match db {
        Db::Sqlite => format!("sqlite://{}", dir.path().join("jobs.db").display()),
        Db::Postgres => auftrag_testkit::fresh_postgres_database().await,
    };
    let engine = auftrag_engine::Engine::open(&url, auftrag::domain())
        .await
        .expect("open engine");
    let (store, defs) = (engine.store.clone(), engine.defs);
    let mut ids = Vec::new();
    for n in 0..3 {
        let mut conn = store.write_conn().await.expect("write connection");
        ids.push(
            db::enqueue(
                &mut conn,
                defs,
                "labels",
                format!("label {n}").as_bytes(),
                "1005",
                None,
            )
            .await
            .expect("enqueue"),
        );
    }
    let first = db::lease(&store, "a", &["labels"], 1).await.expect("lease");
    assert_eq!(
        first.iter().map(|l| l.job.id).collect::<Vec<_>>(),
        ids[..1],
        "one job for max 1"
    );
    let next = db::lease(&store, "b", &["labels"], 2).await.expect("lease");
    assert_eq!(next.iter().map(|l| l.job.id).collect::<Vec<_>>(), ids[1..]);
    assert!(
        db::lease(&store, "c", &["labels"], 5)
            .await
            .expect("lease")
            .is_empty()
    );
}
for_both_backends!(a_lease_takes_no_more_jobs_than_asked);
