//! The generated network (benchmarks, load tests) loads into both backends
//! and keeps the thesis's invariants.

use auftrag::junet::generate::Network;
use sqlx::Row;

use crate::support::*;

on_both_backends! {
async fn generated_network_keeps_the_invariants(s) {
    let network = Network::generate(2_000, 7);
    let pool = s.db().await;
    let mut conn = pool.acquire().await.unwrap();
    network.insert(&mut conn).await.expect("insert the generated network");

    let count = |sql: &'static str| {
        let pool = pool.clone();
        async move { sqlx::query(sql).fetch_one(&pool).await.unwrap().try_get::<i64, _>(0).unwrap() }
    };
    assert_eq!(count("SELECT COUNT(*) FROM x_device WHERE DV_OBJ_ID >= 1000000").await, 2_000);
    // exactly one ADMIN link and at least one PORT link per device
    assert_eq!(
        count("SELECT COUNT(*) FROM x_device d WHERE (SELECT COUNT(*) FROM x_link l WHERE l.OBJ_ID_H = d.DV_OBJ_ID AND l.CLASS_L = 'ADMIN') <> 1").await,
        0
    );
    assert_eq!(
        count("SELECT COUNT(*) FROM x_device d WHERE NOT EXISTS (SELECT 1 FROM x_link l WHERE l.OBJ_ID_H = d.DV_OBJ_ID AND l.CLASS_L = 'PORT')").await,
        0
    );
    // one interface per subnet per device; IPv4 and MAC unique
    assert_eq!(
        count("SELECT COUNT(*) FROM (SELECT l.OBJ_ID_H, p.NET_OBJ_ID FROM x_link l JOIN x_port p ON p.PT_OBJ_ID = l.OBJ_ID_L WHERE l.CLASS_L = 'PORT' GROUP BY l.OBJ_ID_H, p.NET_OBJ_ID HAVING COUNT(*) > 1) t").await,
        0
    );
    assert_eq!(count("SELECT COUNT(*) FROM (SELECT PT_DEV_ADDR FROM x_port GROUP BY PT_DEV_ADDR HAVING COUNT(*) > 1) t").await, 0);
    assert_eq!(count("SELECT COUNT(*) FROM (SELECT HARDW_ADDR FROM x_port GROUP BY HARDW_ADDR HAVING COUNT(*) > 1) t").await, 0);
    // exactly one canonical alias per interface
    assert_eq!(
        count("SELECT COUNT(*) FROM x_port p WHERE (SELECT COUNT(*) FROM n_devname n WHERE n.PT_OBJ_ID = p.PT_OBJ_ID AND n.CANONICAL = 'Y') <> 1").await,
        0
    );
    assert!(count("SELECT COUNT(*) FROM auftrag_deputies").await > 100);
}
}
