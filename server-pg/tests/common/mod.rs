//! Test databases: every test gets its own schema in the machine's PostgreSQL
//! (`AQM_TEST_DATABASE_URL`, default `postgres://postgres@127.0.0.1:5432/postgres`), dropped
//! when its fixture goes away.
#![allow(dead_code)]

pub mod process;
pub mod server;

use std::sync::atomic::{AtomicU32, Ordering};

use tokio_postgres::NoTls;

/// The server the tests use.
pub fn database_url() -> String {
    std::env::var("AQM_TEST_DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A schema name no other test (or process) uses.
pub fn unique_schema(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    format!("{prefix}_{}_{}_{nanos}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

/// Create `schema` and return a configuration whose connections use it.
pub async fn create_schema(schema: &str) -> tokio_postgres::Config {
    let (client, conn) = tokio_postgres::connect(&database_url(), NoTls)
        .await
        .expect("connect to PostgreSQL (start it with `pg_ctlcluster 15 main start`, or set AQM_TEST_DATABASE_URL)");
    tokio::spawn(conn);
    client.batch_execute(&format!("CREATE SCHEMA {schema}")).await.expect("create schema");
    let mut config: tokio_postgres::Config = database_url().parse().expect("database URL");
    config.options(format!("-c search_path={schema}"));
    config
}

/// A connection string for `schema` (for the `aqm-server` binary's `--database-url`).
pub fn url_with_schema(schema: &str) -> String {
    let base = database_url();
    let sep = if base.contains('?') { '&' } else { '?' };
    format!("{base}{sep}options=-c%20search_path%3D{schema}")
}

/// Drop `schema` and everything in it.
pub async fn drop_schema(schema: &str) {
    if let Ok((client, conn)) = tokio_postgres::connect(&database_url(), NoTls).await {
        tokio::spawn(conn);
        let _ = client.batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE")).await;
    }
}
