//! [`VaultStore`] and [`SessionStore`]: each method one redb transaction.

use aqm_core::coin::CoinKind;
use aqm_core::store::{
    Direction, SessionBlob, SessionStore, SessionVersion, StoredSession, VaultStore, next_session_version,
};
use aqm_core::vault::{KeyStatus, OpenDigest, PurgeAction, PurgeReport, Transition, VaultEntry, VaultStats};
use aqm_core::{KeyId, Tier, UnixSeconds, UserId};
use redb::{ReadableTable, WriteTransaction};

use crate::RedbStore;
use crate::codec::{self, COUNTERS, SESSIONS, VAULT, domain};
use crate::error::{Ctx, Error};
use crate::records;

const fn direction_byte(d: Direction) -> u8 {
    match d {
        Direction::Send => 0,
        Direction::Receive => 1,
    }
}

/// The burn step shared by [`VaultStore::burn`] and [`SessionStore::burn_and_save_session`]:
/// read the entry, let the core decide, write the entry and the counters.
fn burn_in(s: &RedbStore, tx: &WriteTransaction, key_id: &KeyId, now: UnixSeconds) -> Result<(), Error> {
    let sealing = &s.sealing;
    let key = vault_key(s, key_id);
    let mut vault = tx.open_table(VAULT).ctx("burn: open table vault")?;
    let mut entry: VaultEntry = match vault.get(key.as_slice()).ctx("burn: read table vault")? {
        Some(g) => records::decode::<records::VaultRecord>(sealing, "vault", &key, g.value())?,
        None => return Err(aqm_core::Error::KeyNotFound.into()),
    };
    entry.burn(&s.policy, now)?;
    let bytes = records::encode::<records::VaultRecord>(sealing, "vault", &key, &entry)?;
    vault.insert(key.as_slice(), bytes.as_slice()).ctx("burn: write table vault")?;
    let mut counters = tx.open_table(COUNTERS).ctx("burn: open table counters")?;
    let mut stats = codec::vault_stats(sealing, &counters)?;
    stats.apply(Transition::Burned(entry.tier));
    codec::put_vault_stats(sealing, &mut counters, &stats)
}

/// The vault table key of `key_id`.
pub(crate) fn vault_key(s: &RedbStore, key_id: &KeyId) -> Vec<u8> {
    s.sealing.ix(domain::VAULT, &[&key_id.0])
}

/// The sessions table key of `peer` and `direction`.
fn session_key(s: &RedbStore, peer: &UserId, direction: Direction) -> Vec<u8> {
    s.sealing.ix(domain::SESSION, &[&peer.0, &[direction_byte(direction)]])
}

impl VaultStore for RedbStore {
    type Error = Error;

    fn put(&self, entry: &VaultEntry) -> Result<(), Error> {
        self.write("vault put", |tx| {
            let transition = entry.check_new()?;
            if entry.is_last_resort() {
                return Err(aqm_core::Error::UnsupportedCoinKind(CoinKind::LastResort.to_byte()).into());
            }
            let key = vault_key(self, &entry.key_id);
            let mut vault = tx.open_table(VAULT).ctx("put: open table vault")?;
            if vault.get(key.as_slice()).ctx("put: read table vault")?.is_some() {
                return Err(aqm_core::Error::KeyAlreadyExists.into());
            }
            let bytes = records::encode::<records::VaultRecord>(&self.sealing, "vault", &key, entry)?;
            vault.insert(key.as_slice(), bytes.as_slice()).ctx("put: write table vault")?;
            let mut counters = tx.open_table(COUNTERS).ctx("put: open table counters")?;
            let mut stats = codec::vault_stats(&self.sealing, &counters)?;
            stats.apply(transition);
            codec::put_vault_stats(&self.sealing, &mut counters, &stats)
        })
    }

    fn get(&self, key_id: &KeyId, now: UnixSeconds) -> Result<Option<VaultEntry>, Error> {
        self.read("vault get", |tx| {
            let key = vault_key(self, key_id);
            let vault = tx.open_table(VAULT).ctx("get: open table vault")?;
            let Some(g) = vault.get(key.as_slice()).ctx("get: read table vault")? else { return Ok(None) };
            let entry: VaultEntry = records::decode::<records::VaultRecord>(&self.sealing, "vault", &key, g.value())?;
            Ok(entry.is_usable(&self.policy, now).then_some(entry))
        })
    }

    fn status(&self, key_id: &KeyId) -> Result<Option<KeyStatus>, Error> {
        self.read("vault status", |tx| {
            let key = vault_key(self, key_id);
            let vault = tx.open_table(VAULT).ctx("status: open table vault")?;
            let Some(g) = vault.get(key.as_slice()).ctx("status: read table vault")? else { return Ok(None) };
            let entry: VaultEntry = records::decode::<records::VaultRecord>(&self.sealing, "vault", &key, g.value())?;
            Ok(Some(entry.status()))
        })
    }

    fn burn(&self, key_id: &KeyId, now: UnixSeconds) -> Result<(), Error> {
        self.write("vault burn", |tx| burn_in(self, tx, key_id, now))
    }

    fn purge(&self, now: UnixSeconds) -> Result<PurgeReport, Error> {
        self.write("vault purge", |tx| {
            let mut vault = tx.open_table(VAULT).ctx("purge: open table vault")?;
            let mut report = PurgeReport::default();
            let mut expired: Vec<Tier> = Vec::new();
            let mut doomed = Vec::new();
            for row in vault.iter().ctx("purge: scan table vault")? {
                let (k, v) = row.ctx("purge: scan table vault")?;
                let k = k.value().to_vec();
                let entry: VaultEntry = records::decode::<records::VaultRecord>(&self.sealing, "vault", &k, v.value())?;
                match entry.purge_action(&self.policy, now) {
                    PurgeAction::Keep => {}
                    PurgeAction::Expire => {
                        expired.push(entry.tier);
                        doomed.push(k.clone());
                    }
                    PurgeAction::Delete => {
                        report.deleted_burned += 1;
                        doomed.push(k.clone());
                    }
                }
            }
            for k in doomed {
                vault.remove(k.as_slice()).ctx("purge: delete from table vault")?;
            }
            if !expired.is_empty() {
                let mut counters = tx.open_table(COUNTERS).ctx("purge: open table counters")?;
                let mut stats = codec::vault_stats(&self.sealing, &counters)?;
                for tier in expired {
                    stats.apply(Transition::Expired(tier));
                    report.expired += 1;
                }
                codec::put_vault_stats(&self.sealing, &mut counters, &stats)?;
            }
            Ok(report)
        })
    }

    fn stats(&self) -> Result<VaultStats, Error> {
        self.read("vault stats", |tx| {
            let counters = tx.open_table(COUNTERS).ctx("stats: open table counters")?;
            codec::vault_stats(&self.sealing, &counters)
        })
    }

    fn open_last_resort(&self, _key_id: &KeyId, _digest: &OpenDigest, _now: UnixSeconds) -> Result<bool, Error> {
        // `put` refuses last-resort entries until this store records their opens.
        Err(aqm_core::Error::UnsupportedCoinKind(CoinKind::LastResort.to_byte()).into())
    }

    fn active_ids(&self, tier: Option<Tier>, visit: &mut dyn FnMut(KeyId)) -> Result<(), Error> {
        self.read("vault active_ids", |tx| {
            let vault = tx.open_table(VAULT).ctx("active_ids: open table vault")?;
            for row in vault.iter().ctx("active_ids: scan table vault")? {
                let (k, v) = row.ctx("active_ids: scan table vault")?;
                let entry: VaultEntry =
                    records::decode::<records::VaultRecord>(&self.sealing, "vault", k.value(), v.value())?;
                if entry.status() == KeyStatus::Active && tier.is_none_or(|t| t == entry.tier) {
                    visit(entry.key_id);
                }
            }
            Ok(())
        })
    }
}

/// The compare-and-swap write of a session record inside `tx` ([`next_session_version`]).
fn save_in(
    s: &RedbStore,
    tx: &WriteTransaction,
    peer: &UserId,
    direction: Direction,
    blob: &SessionBlob,
    expected: Option<SessionVersion>,
) -> Result<SessionVersion, Error> {
    let key = session_key(s, peer, direction);
    let mut t = tx.open_table(SESSIONS).ctx("save session: open table sessions")?;
    let current = match t.get(key.as_slice()).ctx("save session: read table sessions")? {
        Some(g) => {
            let (version, _) = records::decode::<records::SessionRecord>(&s.sealing, "sessions", &key, g.value())?;
            Some(SessionVersion(version))
        }
        None => None,
    };
    let version = next_session_version(current, expected)?;
    let bytes = records::encode::<records::SessionRecord>(&s.sealing, "sessions", &key, &(version.0, blob.clone()))?;
    t.insert(key.as_slice(), bytes.as_slice()).ctx("save session: write table sessions")?;
    Ok(version)
}

impl SessionStore for RedbStore {
    fn load_session(&self, peer: &UserId, direction: Direction) -> Result<Option<StoredSession>, Error> {
        self.read("load_session", |tx| {
            let key = session_key(self, peer, direction);
            let t = tx.open_table(SESSIONS).ctx("load_session: open table sessions")?;
            let Some(g) = t.get(key.as_slice()).ctx("load_session: read table sessions")? else {
                return Ok(None);
            };
            let (version, blob) =
                records::decode::<records::SessionRecord>(&self.sealing, "sessions", &key, g.value())?;
            Ok(Some(StoredSession { blob, version: SessionVersion(version) }))
        })
    }

    fn save_session(
        &self,
        peer: &UserId,
        direction: Direction,
        blob: &SessionBlob,
        expected: Option<SessionVersion>,
    ) -> Result<SessionVersion, Error> {
        self.write("save_session", |tx| save_in(self, tx, peer, direction, blob, expected))
    }

    fn burn_and_save_session(
        &self,
        key_id: &KeyId,
        now: UnixSeconds,
        peer: &UserId,
        blob: &SessionBlob,
        expected: Option<SessionVersion>,
    ) -> Result<SessionVersion, Error> {
        // One transaction: a refusal of either half aborts both.
        self.write("burn_and_save_session", |tx| {
            burn_in(self, tx, key_id, now)?;
            save_in(self, tx, peer, Direction::Receive, blob, expected)
        })
    }

    fn open_last_resort_and_save_session(
        &self,
        _key_id: &KeyId,
        _digest: &OpenDigest,
        _now: UnixSeconds,
        _peer: &UserId,
        _blob: &SessionBlob,
        _expected: Option<SessionVersion>,
    ) -> Result<SessionVersion, Error> {
        // `put` refuses last-resort entries until this store records their opens.
        Err(aqm_core::Error::UnsupportedCoinKind(CoinKind::LastResort.to_byte()).into())
    }
}
