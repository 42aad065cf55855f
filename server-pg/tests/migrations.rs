//! The schema runner on a database of an earlier release: a directory at migration 0003 with
//! coins in it is upgraded to 0004 (last-resort coins) at start, its coins untouched and still
//! claimable; 0004's down file takes it back to a schema that refuses kind 1.

mod common;

use aqm_core::coin;
use aqm_core::testkit::fixtures::{T0, fixtures};
use aqm_core::{Policy, Tier};
use aqm_server::directory::PgDirectory;
use aqm_server::migrate::MIGRATIONS;
use tokio_postgres::NoTls;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_0003_directory_is_upgraded_and_keeps_its_coins() {
    let schema = common::unique_schema("migr");
    let config = common::create_schema(&schema).await;
    let (client, conn) = config.connect(NoTls).await.expect("connect");
    tokio::spawn(conn);

    // The schema as the previous release left it: migrations 1-3 applied and recorded.
    let dir = PgDirectory::from_config(config.clone(), 2, Policy::DEFAULT).expect("pool");
    client
        .batch_execute(
            "CREATE TABLE aqm_schema_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL,
                 checksum TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
        )
        .await
        .expect("runner table");
    for m in &MIGRATIONS[..3] {
        client.batch_execute(m.up).await.expect("old migration");
        client
            .execute(
                "INSERT INTO aqm_schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                &[&m.version, &m.name, &m.checksum()],
            )
            .await
            .expect("record");
    }
    let bob = &fixtures().bob;
    dir.register(bob.identity.public(), bob.proof(), T0).await.expect("register");
    let coins: Vec<_> = (0..3).map(|i| bob.coin(Tier::Silver, i).clone()).collect();
    assert_eq!(dir.upload(&bob.id(), &coins, T0).await.expect("upload"), 3);
    let mut rng = aqm_core::testkit::fixtures::rng(4);
    let lr =
        coin::mint_last_resort(&bob.identity, Tier::Silver, &fixtures().device_key, T0, &mut rng).expect("mint").public;
    // The 0003 schema itself refuses a last-resort row (its coin_kind check).
    assert!(dir.upload(&bob.id(), std::slice::from_ref(&lr), T0).await.is_err());

    let applied = dir.migrate().await.expect("migrate");
    assert_eq!((applied.already, applied.applied), (vec![1, 2, 3], vec![4]));
    let counts = dir.available(&bob.id()).await.expect("count");
    assert_eq!(counts.get(Tier::Silver), 3, "the old coins are still there");
    assert_eq!(dir.upload(&bob.id(), std::slice::from_ref(&lr), T0).await.expect("upload"), 1);
    let requester = fixtures().carol.id();
    let got = dir.claim(&bob.id(), &requester, Tier::Silver, 4, None, T0).await.expect("claim");
    assert_eq!(got.iter().map(|c| c.key_id).collect::<Vec<_>>(), coins.iter().map(|c| c.key_id).collect::<Vec<_>>());
    let got = dir.claim(&bob.id(), &requester, Tier::Silver, 1, None, T0).await.expect("claim");
    assert_eq!(got.as_slice(), std::slice::from_ref(&lr));

    // Down: the last-resort coins go, the rest stay, and kind 1 is refused again.
    client.batch_execute(MIGRATIONS[3].down).await.expect("down");
    client.execute("DELETE FROM aqm_schema_migrations WHERE version = 4", &[]).await.expect("unrecord");
    let left: i64 = client.query_one("SELECT count(*) FROM coin_inventory", &[]).await.expect("count").get(0);
    assert_eq!(left, 3);
    let refused = client
        .execute(
            "INSERT INTO coin_inventory (user_id, key_id, coin_category, coin_kind, expires_at, public_key_blob,
                 signature_blob, uploaded_at) VALUES (gen_random_uuid(), gen_random_uuid(), 'GOLD', 1, 1, '', '', 1)",
            &[],
        )
        .await;
    assert!(refused.is_err(), "the 0003 schema must refuse kind 1");
    drop(dir);
    common::drop_schema(&schema).await;
}
