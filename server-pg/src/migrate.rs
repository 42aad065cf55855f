//! The schema runner: applies `migrations/NNNN_name.up.sql` in order at start-up.
//!
//! Safe in the ways a deployment needs: each migration runs in its own transaction together with
//! its row in `aqm_schema_migrations` (version, name, SHA-256 of the file), so a failed migration
//! leaves nothing behind; a PostgreSQL advisory lock makes two servers starting at once apply each
//! migration once; and the server refuses to start when an applied migration's checksum differs
//! from this build's file, or when the database has a migration this build does not know (an
//! older binary against a newer schema). Each `.up.sql` has a `.down.sql` that undoes it, for an
//! operator rolling back by hand (`aqm-server migrate-down` is deliberately not offered: a down
//! migration deletes data).

use sha2::{Digest, Sha256};
use tokio_postgres::GenericClient;

use crate::ServerError;

/// One migration of this build.
#[derive(Clone, Copy, Debug)]
pub struct Migration {
    /// Its version, the number its file name starts with.
    pub version: i64,
    /// The rest of its file name.
    pub name: &'static str,
    /// The SQL that applies it.
    pub up: &'static str,
    /// The SQL that undoes it.
    pub down: &'static str,
}

macro_rules! migration {
    ($version:literal, $file:literal, $name:literal) => {
        Migration {
            version: $version,
            name: $name,
            up: include_str!(concat!("../../migrations/", $file, "_", $name, ".up.sql")),
            down: include_str!(concat!("../../migrations/", $file, "_", $name, ".down.sql")),
        }
    };
}

/// Every migration, in order. A test checks this list against the files in `migrations/`.
pub const MIGRATIONS: &[Migration] = &[
    migration!(1, "0001", "coin_inventory"),
    migration!(2, "0002", "identities_and_tokens"),
    migration!(3, "0003", "claim_quotas_and_replies"),
    migration!(4, "0004", "last_resort_coins"),
];

/// Arbitrary constant of the advisory lock that serialises migration runs ("AQMMIGR" in ASCII).
const LOCK_KEY: i64 = 0x0041_514D_4D49_4752;

impl Migration {
    /// Hex SHA-256 of the up file, as recorded when it was applied.
    pub fn checksum(&self) -> String {
        Sha256::digest(self.up.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// What [`apply`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Applied {
    /// Versions applied now.
    pub applied: Vec<i64>,
    /// Versions that were already in place.
    pub already: Vec<i64>,
}

/// Apply every pending migration, checking the ones already applied.
///
/// Changed or unknown applied migrations → [`ServerError::Migration`] naming the version, and
/// nothing is applied.
pub async fn apply(client: &mut tokio_postgres::Client) -> Result<Applied, ServerError> {
    client
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS aqm_schema_migrations (
                 version    BIGINT PRIMARY KEY,
                 name       TEXT NOT NULL,
                 checksum   TEXT NOT NULL,
                 applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
             )",
        )
        .await?;
    // Session-level lock: held across the per-migration transactions below.
    client.execute("SELECT pg_advisory_lock($1)", &[&LOCK_KEY]).await?;
    let result = apply_locked(client).await;
    let unlock = client.execute("SELECT pg_advisory_unlock($1)", &[&LOCK_KEY]).await;
    let applied = result?;
    unlock?;
    Ok(applied)
}

async fn apply_locked(client: &mut tokio_postgres::Client) -> Result<Applied, ServerError> {
    let rows = client.query("SELECT version, name, checksum FROM aqm_schema_migrations ORDER BY version", &[]).await?;
    let mut out = Applied::default();
    for row in &rows {
        let (version, name, checksum): (i64, String, String) = (row.get(0), row.get(1), row.get(2));
        let Some(known) = MIGRATIONS.iter().find(|m| m.version == version) else {
            return Err(ServerError::Migration(format!(
                "the database has migration {version:04} ({name}) that this build does not know: \
                 run a server build at least as new as the schema"
            )));
        };
        if known.checksum() != checksum {
            return Err(ServerError::Migration(format!(
                "migration {version:04} ({name}) was changed after it was applied (checksum {checksum} in the \
                 database, {} in this build): never edit an applied migration, add a new one",
                known.checksum()
            )));
        }
        out.already.push(version);
    }
    for m in MIGRATIONS.iter().filter(|m| !out.already.contains(&m.version)) {
        let tx = client.transaction().await?;
        tx.batch_execute(m.up)
            .await
            .map_err(|e| ServerError::Migration(format!("migration {:04} ({}) failed: {e}", m.version, m.name)))?;
        record(&tx, m).await?;
        tx.commit().await?;
        tracing::info!(version = m.version, name = m.name, "applied migration");
        out.applied.push(m.version);
    }
    Ok(out)
}

async fn record(tx: &impl GenericClient, m: &Migration) -> Result<(), ServerError> {
    tx.execute(
        "INSERT INTO aqm_schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
        &[&m.version, &m.name, &m.checksum()],
    )
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every file in `migrations/` is in [`MIGRATIONS`] (a forgotten file would never run), each
    /// up file has its down file, and versions increase by one from 1.
    #[test]
    fn list_matches_the_directory() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../migrations");
        let mut ups: Vec<String> = std::fs::read_dir(dir)
            .expect("migrations/ directory")
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.ends_with(".up.sql"))
            .collect();
        ups.sort();
        let listed: Vec<String> = MIGRATIONS.iter().map(|m| format!("{:04}_{}.up.sql", m.version, m.name)).collect();
        assert_eq!(ups, listed, "migrations/ and MIGRATIONS disagree");
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(m.version, i as i64 + 1, "versions must count up from 1");
            assert!(!m.down.trim().is_empty(), "migration {} has no down file", m.version);
        }
    }
}
