//! [`VaultStore`] and [`SessionStore`]: each method one redb transaction.
//!
//! An entry's kind sits in `vault_kinds` (last-resort entries only) and a last-resort key's
//! opens in `last_resort_opens`, both under the entry's own table key; every step that reads
//! an entry reads its kind in the same transaction, and every step that ends a key's life
//! (burn, retirement, purge) drops its opens with it.

use aqm_core::coin::CoinKind;
use aqm_core::store::{
    Direction, SessionBlob, SessionStore, SessionVersion, StoredSession, VaultStore, next_session_version,
};
use aqm_core::vault::{
    KeyStatus, LastResortOpens, OpenDigest, PurgeAction, PurgeReport, Transition, VaultEntry, VaultStats,
};
use aqm_core::{KeyId, Tier, UnixSeconds, UserId};
use redb::{ReadableTable, WriteTransaction};

use crate::RedbStore;
use crate::codec::{self, COUNTERS, Ix, LR_OPENS, SESSIONS, VAULT, VAULT_KINDS, domain};
use crate::error::{Ctx, Error};
use crate::records;

const fn direction_byte(d: Direction) -> u8 {
    match d {
        Direction::Send => 0,
        Direction::Receive => 1,
    }
}

/// The kind of the entry stored under `key`: its `vault_kinds` row, or one-time without one.
pub(crate) fn kind_in<T: ReadableTable<Ix, &'static [u8]>>(
    s: &RedbStore,
    kinds: &T,
    key: &[u8],
) -> Result<CoinKind, Error> {
    match kinds.get(key).ctx("read table vault_kinds")? {
        Some(g) => records::decode::<records::KindRecord>(&s.sealing, "vault_kinds", key, g.value()),
        None => Ok(CoinKind::OneTime),
    }
}

/// The entry stored under `key`, with its kind.
fn entry_in<V, K>(s: &RedbStore, vault: &V, kinds: &K, key: &[u8]) -> Result<Option<VaultEntry>, Error>
where
    V: ReadableTable<Ix, &'static [u8]>,
    K: ReadableTable<Ix, &'static [u8]>,
{
    let Some(g) = vault.get(key).ctx("read table vault")? else { return Ok(None) };
    let mut entry: VaultEntry = records::decode::<records::VaultRecord>(&s.sealing, "vault", key, g.value())?;
    entry.kind = kind_in(s, kinds, key)?;
    Ok(Some(entry))
}

/// Apply `transition` to the stored vault counters inside `tx`.
fn count(s: &RedbStore, tx: &WriteTransaction, transition: Transition) -> Result<(), Error> {
    let mut counters = tx.open_table(COUNTERS).ctx("open table counters")?;
    let mut stats = codec::vault_stats(&s.sealing, &counters)?;
    stats.apply(transition);
    codec::put_vault_stats(&s.sealing, &mut counters, &stats)
}

/// The burn step shared by [`VaultStore::burn`] and [`SessionStore::burn_and_save_session`]:
/// read the entry, let the core decide, write the entry and the counters; a burned key's opens
/// go (it refuses every open from now on).
fn burn_in(s: &RedbStore, tx: &WriteTransaction, key_id: &KeyId, now: UnixSeconds) -> Result<(), Error> {
    let key = vault_key(s, key_id);
    let mut vault = tx.open_table(VAULT).ctx("burn: open table vault")?;
    let kinds = tx.open_table(VAULT_KINDS).ctx("burn: open table vault_kinds")?;
    let mut entry = entry_in(s, &vault, &kinds, &key)?.ok_or(aqm_core::Error::KeyNotFound)?;
    entry.burn(&s.policy, now)?;
    let bytes = records::encode::<records::VaultRecord>(&s.sealing, "vault", &key, &entry)?;
    vault.insert(key.as_slice(), bytes.as_slice()).ctx("burn: write table vault")?;
    tx.open_table(LR_OPENS)
        .ctx("burn: open table last_resort_opens")?
        .remove(key.as_slice())
        .ctx("burn: delete from table last_resort_opens")?;
    count(s, tx, Transition::Burned(entry.tier))
}

/// The last-resort open step shared by [`VaultStore::open_last_resort`] and
/// [`SessionStore::open_last_resort_and_save_session`]: read the entry and its opens, let the
/// core decide, then write the opens, or (the open that fills the record) the retired entry,
/// its counters, and no opens. Returns whether the key retired.
fn open_in(
    s: &RedbStore,
    tx: &WriteTransaction,
    key_id: &KeyId,
    digest: &OpenDigest,
    now: UnixSeconds,
) -> Result<bool, Error> {
    let key = vault_key(s, key_id);
    let mut vault = tx.open_table(VAULT).ctx("open last-resort: open table vault")?;
    let kinds = tx.open_table(VAULT_KINDS).ctx("open last-resort: open table vault_kinds")?;
    let mut opens_t = tx.open_table(LR_OPENS).ctx("open last-resort: open table last_resort_opens")?;
    let mut entry = entry_in(s, &vault, &kinds, &key)?.ok_or(aqm_core::Error::KeyNotFound)?;
    let mut opens: LastResortOpens = match opens_t.get(key.as_slice()).ctx("read table last_resort_opens")? {
        Some(g) => records::decode::<records::OpensRecord>(&s.sealing, "last_resort_opens", &key, g.value())?,
        None => LastResortOpens::default(),
    };
    match entry.open_last_resort(&mut opens, *digest, &s.policy, now)? {
        Some(transition) => {
            let bytes = records::encode::<records::VaultRecord>(&s.sealing, "vault", &key, &entry)?;
            vault.insert(key.as_slice(), bytes.as_slice()).ctx("open last-resort: write table vault")?;
            opens_t.remove(key.as_slice()).ctx("open last-resort: delete from table last_resort_opens")?;
            drop((vault, kinds, opens_t));
            count(s, tx, transition)?;
            Ok(true)
        }
        None => {
            let bytes = records::encode::<records::OpensRecord>(&s.sealing, "last_resort_opens", &key, &opens)?;
            opens_t.insert(key.as_slice(), bytes.as_slice()).ctx("open last-resort: write table last_resort_opens")?;
            Ok(false)
        }
    }
}

/// The vault table key of `key_id` (also its key in `vault_kinds` and `last_resort_opens`).
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
            let key = vault_key(self, &entry.key_id);
            let mut vault = tx.open_table(VAULT).ctx("put: open table vault")?;
            if vault.get(key.as_slice()).ctx("put: read table vault")?.is_some() {
                return Err(aqm_core::Error::KeyAlreadyExists.into());
            }
            let bytes = records::encode::<records::VaultRecord>(&self.sealing, "vault", &key, entry)?;
            vault.insert(key.as_slice(), bytes.as_slice()).ctx("put: write table vault")?;
            if entry.kind != CoinKind::OneTime {
                let bytes = records::encode::<records::KindRecord>(&self.sealing, "vault_kinds", &key, &entry.kind)?;
                tx.open_table(VAULT_KINDS)
                    .ctx("put: open table vault_kinds")?
                    .insert(key.as_slice(), bytes.as_slice())
                    .ctx("put: write table vault_kinds")?;
            }
            drop(vault);
            count(self, tx, transition)
        })
    }

    fn get(&self, key_id: &KeyId, now: UnixSeconds) -> Result<Option<VaultEntry>, Error> {
        self.read("vault get", |tx| {
            let key = vault_key(self, key_id);
            let vault = tx.open_table(VAULT).ctx("get: open table vault")?;
            let kinds = tx.open_table(VAULT_KINDS).ctx("get: open table vault_kinds")?;
            Ok(entry_in(self, &vault, &kinds, &key)?.filter(|e| e.is_usable(&self.policy, now)))
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
            // An expired or deleted key takes its kind and its opens with it.
            let mut kinds = tx.open_table(VAULT_KINDS).ctx("purge: open table vault_kinds")?;
            let mut opens = tx.open_table(LR_OPENS).ctx("purge: open table last_resort_opens")?;
            for k in doomed {
                vault.remove(k.as_slice()).ctx("purge: delete from table vault")?;
                kinds.remove(k.as_slice()).ctx("purge: delete from table vault_kinds")?;
                opens.remove(k.as_slice()).ctx("purge: delete from table last_resort_opens")?;
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

    fn open_last_resort(&self, key_id: &KeyId, digest: &OpenDigest, now: UnixSeconds) -> Result<bool, Error> {
        self.write("vault open_last_resort", |tx| open_in(self, tx, key_id, digest, now))
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
        key_id: &KeyId,
        digest: &OpenDigest,
        now: UnixSeconds,
        peer: &UserId,
        blob: &SessionBlob,
        expected: Option<SessionVersion>,
    ) -> Result<SessionVersion, Error> {
        // One transaction: a refused open or a lost compare-and-swap aborts both halves.
        self.write("open_last_resort_and_save_session", |tx| {
            open_in(self, tx, key_id, digest, now)?;
            save_in(self, tx, peer, Direction::Receive, blob, expected)
        })
    }
}
