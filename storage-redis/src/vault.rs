//! [`VaultStore`] and [`SessionStore`] on Redis.

use aqm_core::coin::CoinKind;
use aqm_core::crypto::SealedSecret;
use aqm_core::crypto::sizes::{AEAD_NONCE, AEAD_TAG};
use aqm_core::store::{Direction, SessionBlob, SessionStore, SessionVersion, StoredSession, VaultStore};
use aqm_core::vault::{
    KeyStatus, LAST_RESORT_OPENS_BYTES, LastResortOpens, MAX_LAST_RESORT_OPENS, OpenDigest, PurgeReport, Transition,
    VaultEntry, VaultStats,
};
use aqm_core::{KeyId, Tier, TierCounts, UnixSeconds, UserId};

use crate::keys::active_field;
use crate::pool::Resend;
use crate::scripts::{self, Cutoff};
use crate::sealing::{Domain, Kind, Sealing};
use crate::{Error, RedisStore, parse_u64};

/// Expired/deleted entries handled per purge script call; each batch is atomic on its own.
const PURGE_BATCH: u32 = 512;

/// Read-decide-commit rounds of one last-resort open. A round is repeated only when another
/// call's commit changed the entry or its opens in between, and one key takes at most
/// [`MAX_LAST_RESORT_OPENS`] opens and then one end (retirement, burn or purge), after which every
/// read is refused by the core: so this bound is never reached by honest callers.
const OPEN_ROUNDS: u32 = MAX_LAST_RESORT_OPENS as u32 + 4;

/// The stored opens record of the entry `ix`: the core's encoding zero-padded to
/// [`LAST_RESORT_OPENS_BYTES`] (so its length does not tell how many first messages the key
/// opened), then sealed.
fn seal_opens(seal: &Sealing, ix: &str, opens: &LastResortOpens) -> Result<Vec<u8>, Error> {
    let mut plain = opens.to_bytes().to_vec();
    plain.resize(LAST_RESORT_OPENS_BYTES, 0);
    seal.seal(Kind::LastResortOpens, ix, &plain)
}

/// Open and decode an opens record written by [`seal_opens`] (read under `key`): the padded size
/// exactly, one exact encoding of the core's, then zeros only.
pub(crate) fn decode_opens(seal: &Sealing, ix: &str, key: &str, sealed: &[u8]) -> Result<LastResortOpens, Error> {
    let plain = seal.open(Kind::LastResortOpens, ix, sealed, key)?;
    if plain.len() != LAST_RESORT_OPENS_BYTES {
        return Err(Error::corrupt(key, "last-resort opens record of the wrong size"));
    }
    let (_, padding) = postcard::take_from_bytes::<LastResortOpens>(&plain)
        .map_err(|_| Error::corrupt(key, "last-resort opens do not decode"))?;
    if padding.iter().any(|b| *b != 0) {
        return Err(Error::corrupt(key, "last-resort opens record padded with non-zero bytes"));
    }
    let used = plain.len() - padding.len();
    LastResortOpens::from_bytes(plain.get(..used).unwrap_or_default())
        .map_err(|_| Error::corrupt(key, "last-resort opens do not decode"))
}

/// The seed's `coin_version` field: which KEM the sealed seed regenerates.
fn coin_version(tier: Tier) -> &'static str {
    match tier {
        Tier::Gold => "xwing_v1",
        Tier::Silver => "mlkem768_v1",
        Tier::Bronze => "x25519_v1",
    }
}

/// How a burn script ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BurnOutcome {
    Burned,
    Missing,
    AlreadyBurned,
    Expired,
    /// The session half of a burn-and-save met another version: nothing was written.
    Conflict,
}

impl BurnOutcome {
    pub(crate) fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "ok" => BurnOutcome::Burned,
            "missing" => BurnOutcome::Missing,
            "burned" => BurnOutcome::AlreadyBurned,
            "expired" => BurnOutcome::Expired,
            "conflict" => BurnOutcome::Conflict,
            _ => return None,
        })
    }

    /// The same outcome as the core's [`VaultEntry::burn`] gives.
    pub(crate) fn into_result(self) -> Result<(), aqm_core::Error> {
        match self {
            BurnOutcome::Burned => Ok(()),
            BurnOutcome::Missing => Err(aqm_core::Error::KeyNotFound),
            BurnOutcome::Expired => Err(aqm_core::Error::CoinExpired),
            BurnOutcome::AlreadyBurned => Err(aqm_core::Error::KeyAlreadyBurned),
            BurnOutcome::Conflict => Err(aqm_core::Error::SessionConflict),
        }
    }
}

impl RedisStore {
    fn run_burn(
        &self,
        key_id: &KeyId,
        now: UnixSeconds,
        session: Option<(&UserId, &SessionBlob, Option<SessionVersion>)>,
    ) -> Result<BurnOutcome, Error> {
        let k = &self.keys;
        let id = self.vault_ix(key_id);
        let entry = k.vault_entry(&id);
        let cutoff = Cutoff::deadline(now, self.policy.vault_grace_secs).arg();
        let now_s = now.to_string();
        let session_key = session.map(|(peer, _, _)| self.session_key(peer, Direction::Receive));
        let expected = session.map(|(_, _, v)| version_arg(v)).unwrap_or_default();
        let token = self.op_token();
        let out: String = self.pool.run(Resend::Deduplicated, |c| {
            let mut inv = scripts::call(&scripts::VAULT_BURN);
            inv.key(&entry)
                .key(k.vault_stats())
                .key(k.vault_burned())
                .key(k.vault_active(Tier::Gold))
                .key(k.vault_active(Tier::Silver))
                .key(k.vault_active(Tier::Bronze))
                .key(k.vault_opens(&id))
                .arg(&id)
                .arg(&now_s)
                .arg(&cutoff)
                .arg(&token);
            if let (Some(sk), Some((_, blob, _))) = (&session_key, session) {
                inv.key(sk).arg(blob.as_slice()).arg(&expected);
            }
            inv.invoke(c, self.wait)
        })?;
        BurnOutcome::parse(&out).ok_or_else(|| Error::corrupt(&entry, "unexpected burn script reply"))
    }

    /// A last-resort open, optionally with the receive session it opened: read the entry and its
    /// opens, let the core decide ([`VaultEntry::open_last_resort`]), then commit with one script
    /// that first checks that neither moved since the read (`vault_open.lua`). When one did, the
    /// script writes nothing and the open is read and decided again: an optimistic transaction,
    /// so the rule stays the core's and is not restated in Lua. Returns whether the open retired
    /// the key.
    fn run_open(
        &self,
        key_id: &KeyId,
        digest: &OpenDigest,
        now: UnixSeconds,
        session: Option<(&UserId, &SessionBlob, Option<SessionVersion>)>,
    ) -> Result<bool, Error> {
        let k = &self.keys;
        let id = self.vault_ix(key_id);
        let entry_key = k.vault_entry(&id);
        let opens_key = k.vault_opens(&id);
        let now_s = now.to_string();
        let session_key = session.map(|(peer, _, _)| self.session_key(peer, Direction::Receive));
        let expected = session.map(|(_, _, v)| version_arg(v)).unwrap_or_default();
        let token = self.op_token();
        for _ in 0..OPEN_ROUNDS {
            // One MULTI: the entry and its opens as of one moment.
            let (fields, read): (Vec<Option<Vec<u8>>>, Option<Vec<u8>>) = self.pool.run(Resend::Safe, |c| {
                redis::pipe()
                    .atomic()
                    .cmd("HMGET")
                    .arg(&entry_key)
                    .arg(&ENTRY_FIELDS[..])
                    .cmd("HGET")
                    .arg(&opens_key)
                    .arg("rec")
                    .query(c)
            })?;
            let mut entry =
                decode_entry(&self.seal, &id, &entry_key, *key_id, fields)?.ok_or(aqm_core::Error::KeyNotFound)?;
            let mut opens = match &read {
                Some(rec) => decode_opens(&self.seal, &id, &opens_key, rec)?,
                None => LastResortOpens::default(),
            };
            let retired = match entry.open_last_resort(&mut opens, *digest, &self.policy, now)? {
                None => false,
                Some(Transition::Burned(_)) => true,
                Some(_) => return Err(Error::corrupt(&entry_key, "unexpected last-resort open transition")),
            };
            // A retired key refuses every open: its opens are dropped, not written ('').
            let write = if retired { Vec::new() } else { seal_opens(&self.seal, &id, &opens)? };
            let read = read.unwrap_or_default();
            let out: String = self.pool.run(Resend::Deduplicated, |c| {
                let mut inv = scripts::call(&scripts::VAULT_OPEN);
                inv.key(&entry_key)
                    .key(&opens_key)
                    .key(k.vault_stats())
                    .key(k.vault_burned())
                    .key(k.vault_active(Tier::Gold))
                    .key(k.vault_active(Tier::Silver))
                    .key(k.vault_active(Tier::Bronze))
                    .arg(&id)
                    .arg(&now_s)
                    .arg(&token)
                    .arg(&read[..])
                    .arg(&write[..]);
                if let (Some(sk), Some((_, blob, _))) = (&session_key, session) {
                    inv.key(sk).arg(blob.as_slice()).arg(&expected);
                }
                inv.invoke(c, self.wait)
            })?;
            match out.as_str() {
                "ok" => return Ok(retired),
                "changed" => continue,
                "conflict" => return Err(aqm_core::Error::SessionConflict.into()),
                _ => return Err(Error::corrupt(&entry_key, "unexpected open script reply")),
            }
        }
        Err(Error::Contended { key: entry_key, attempts: OPEN_ROUNDS })
    }

    /// The hashed name (and index member) of a vault entry.
    pub(crate) fn vault_ix(&self, key_id: &KeyId) -> String {
        self.seal.index(Domain::Vault, key_id.as_bytes())
    }

    /// The key of a session record: the peer's id hashed.
    pub(crate) fn session_key(&self, peer: &UserId, dir: Direction) -> String {
        self.keys.session(&self.seal.index(Domain::Session, peer.as_bytes()), dir)
    }

    pub(crate) fn vault_stats(&self) -> Result<VaultStats, Error> {
        let key = self.keys.vault_stats();
        let v: Vec<Option<i64>> = self.pool.run(Resend::Safe, |c| {
            redis::cmd("HMGET")
                .arg(&key)
                .arg("active_gold")
                .arg("active_silver")
                .arg("active_bronze")
                .arg("total_burned")
                .arg("total_expired")
                .query(c)
        })?;
        decode_vault_stats(&key, &v)
    }
}

/// The stats hash's `HMGET` fields (active GOLD, SILVER, BRONZE, burned, expired) as counters.
pub(crate) fn decode_vault_stats(key: &str, v: &[Option<i64>]) -> Result<VaultStats, Error> {
    let get = |i: usize| -> Result<u64, Error> {
        let n = v.get(i).copied().flatten().unwrap_or(0);
        u64::try_from(n).map_err(|_| Error::corrupt(key, "negative counter"))
    };
    let tier = |i: usize| -> Result<u32, Error> {
        u32::try_from(get(i)?).map_err(|_| Error::corrupt(key, "counter out of range"))
    };
    Ok(VaultStats { active: TierCounts([tier(0)?, tier(1)?, tier(2)?]), total_burned: get(3)?, total_expired: get(4)? })
}

/// A session hash's `v` and `blob` fields as a stored session (none when both are absent).
pub(crate) fn decode_session(
    key: &str,
    v: Option<Vec<u8>>,
    blob: Option<Vec<u8>>,
) -> Result<Option<StoredSession>, Error> {
    match (v, blob) {
        (None, None) => Ok(None),
        (Some(v), Some(b)) => {
            let version = SessionVersion(parse_u64(key, "bad session version", &v)?);
            let blob = SessionBlob::from_slice(&b).map_err(|_| Error::corrupt(key, "session blob too large"))?;
            Ok(Some(StoredSession { blob, version }))
        }
        _ => Err(Error::corrupt(key, "session record without its version or blob")),
    }
}

/// The scripts' form of an expected session version: the number, or '' for "none".
fn version_arg(v: Option<SessionVersion>) -> String {
    v.map(|v| v.0.to_string()).unwrap_or_default()
}

/// The version a successful compare-and-swap from `expected` wrote.
fn next_version(expected: Option<SessionVersion>) -> Result<SessionVersion, aqm_core::Error> {
    aqm_core::store::next_session_version(expected, expected)
}

/// Fields read back for an entry, in this order (its key id is the caller's: the entry holds it
/// only sealed, in `id`, for listing). The last, `kind`, is sealed: [`decode_entry`] opens it.
pub(crate) const ENTRY_FIELDS: [&str; 9] = [
    "coin_category",
    "encrypted_blob",
    "encryption_iv",
    "auth_tag",
    "status",
    "created_at",
    "burned_at",
    "expires_at",
    "kind",
];

/// The sealed `kind` field of the entry `ix` (stored under `key`): the coin kind's byte. An entry
/// without one was written before the store recorded kinds (issue 14), when it stored one-time
/// entries only: it is one-time.
fn decode_kind(seal: &Sealing, ix: &str, key: &str, sealed: Option<Vec<u8>>) -> Result<CoinKind, Error> {
    let Some(sealed) = sealed else { return Ok(CoinKind::OneTime) };
    match seal.open(Kind::VaultCoinType, ix, &sealed, key)?.as_slice() {
        [b] => CoinKind::try_from(*b).map_err(|_| Error::corrupt(key, "unknown coin kind")),
        _ => Err(Error::corrupt(key, "bad coin kind record")),
    }
}

/// An entry hash's [`ENTRY_FIELDS`], read under `key` (the entry `ix`, sealed as `seal` says).
pub(crate) fn decode_entry(
    seal: &Sealing,
    ix: &str,
    key: &str,
    key_id: KeyId,
    f: Vec<Option<Vec<u8>>>,
) -> Result<Option<VaultEntry>, Error> {
    let mut it = f.into_iter();
    let mut next = || it.next().flatten();
    let (tier, blob, iv, tag, status, created, burned, expires, kind) =
        (next(), next(), next(), next(), next(), next(), next(), next(), next());
    let Some(status) = status else { return Ok(None) };
    let status = core::str::from_utf8(&status)
        .ok()
        .and_then(|s| KeyStatus::parse(s).ok())
        .ok_or_else(|| Error::corrupt(key, "unknown status"))?;
    let tier: Tier = tier
        .as_deref()
        .and_then(|b| core::str::from_utf8(b).ok())
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| Error::corrupt(key, "bad coin_category"))?;
    let created_at = parse_u64(key, "bad created_at", created.as_deref().unwrap_or_default())?;
    let burned_at = burned.map(|b| parse_u64(key, "bad burned_at", &b)).transpose()?;
    let expires_at = parse_u64(key, "bad expires_at", expires.as_deref().unwrap_or_default())?;
    // A burned entry's secret is dropped at burn time; it is never handed out again.
    let mut ciphertext = heapless::Vec::new();
    let mut nonce = [0u8; AEAD_NONCE];
    if status == KeyStatus::Active {
        let (blob, iv, tag) = match (blob, iv, tag) {
            (Some(b), Some(i), Some(t)) => (b, i, t),
            _ => return Err(Error::corrupt(key, "sealed secret missing")),
        };
        nonce = iv.as_slice().try_into().map_err(|_| Error::corrupt(key, "bad encryption_iv"))?;
        ciphertext.extend_from_slice(&blob).map_err(|_| Error::corrupt(key, "encrypted_blob too long"))?;
        ciphertext.extend_from_slice(&tag).map_err(|_| Error::corrupt(key, "auth_tag too long"))?;
    }
    let sealed = SealedSecret { nonce, ciphertext };
    let kind = decode_kind(seal, ix, key, kind)?;
    VaultEntry::from_stored(key_id, tier, kind, sealed, created_at, expires_at, status, burned_at)
        .map(Some)
        .map_err(|_| Error::corrupt(key, "status and burned_at disagree"))
}

impl VaultStore for RedisStore {
    type Error = Error;

    fn put(&self, entry: &VaultEntry) -> Result<(), Error> {
        entry.check_new()?;
        let k = &self.keys;
        let id = self.vault_ix(&entry.key_id);
        let key = k.vault_entry(&id);
        let sealed_id = self.seal.seal(Kind::VaultId, &id, entry.key_id.as_bytes())?;
        // Every new entry records its kind, one-time too: sealed records of one length, so the
        // entries do not tell which are last-resort (until one has opened something).
        let sealed_kind = self.seal.seal(Kind::VaultCoinType, &id, &[entry.kind.to_byte()])?;
        // Seed fields: encrypted_blob ‖ auth_tag is the AEAD output, encryption_iv its nonce.
        let ct = entry.sealed.ciphertext.as_slice();
        let (blob, tag) = ct.split_at(ct.len().saturating_sub(AEAD_TAG));
        let created = entry.created_at.to_string();
        let token = self.op_token();
        let stored: i64 = self.pool.run(Resend::Deduplicated, |c| {
            scripts::call(&scripts::VAULT_PUT)
                .key(&key)
                .key(k.vault_stats())
                .key(k.vault_active(entry.tier))
                .arg(&id)
                .arg(entry.tier.as_str())
                .arg(blob)
                .arg(&entry.sealed.nonce[..])
                .arg(tag)
                .arg(&created)
                .arg(coin_version(entry.tier))
                .arg(active_field(entry.tier))
                .arg(&token)
                .arg(entry.expires_at.to_string())
                .arg(&sealed_id)
                .arg(&sealed_kind)
                .invoke(c, self.wait)
        })?;
        if stored == 1 { Ok(()) } else { Err(aqm_core::Error::KeyAlreadyExists.into()) }
    }

    fn get(&self, key_id: &KeyId, now: UnixSeconds) -> Result<Option<VaultEntry>, Error> {
        let ix = self.vault_ix(key_id);
        let key = self.keys.vault_entry(&ix);
        let f: Vec<Option<Vec<u8>>> =
            self.pool.run(Resend::Safe, |c| redis::cmd("HMGET").arg(&key).arg(&ENTRY_FIELDS[..]).query(c))?;
        Ok(decode_entry(&self.seal, &ix, &key, *key_id, f)?.filter(|e| e.is_usable(&self.policy, now)))
    }

    fn status(&self, key_id: &KeyId) -> Result<Option<KeyStatus>, Error> {
        let key = self.keys.vault_entry(&self.vault_ix(key_id));
        let s: Option<String> = self.pool.run(Resend::Safe, |c| redis::cmd("HGET").arg(&key).arg("status").query(c))?;
        s.map(|s| KeyStatus::parse(&s).map_err(|_| Error::corrupt(&key, "unknown status"))).transpose()
    }

    fn burn(&self, key_id: &KeyId, now: UnixSeconds) -> Result<(), Error> {
        Ok(self.run_burn(key_id, now, None)?.into_result()?)
    }

    fn purge(&self, now: UnixSeconds) -> Result<PurgeReport, Error> {
        let k = &self.keys;
        let ttl = Cutoff::deadline(now, self.policy.vault_grace_secs).arg();
        let grace = Cutoff::new(now, self.policy.burn_grace_secs).arg();
        let prefix = k.vault_entry_prefix();
        let opens_prefix = k.vault_opens_prefix();
        let mut report = PurgeReport::default();
        loop {
            // Not resent: a resent batch would report less than the first one did.
            let (expired, deleted, full): (u32, u32, u32) = self.pool.run(Resend::Never, |c| {
                scripts::call(&scripts::VAULT_PURGE)
                    .key(k.vault_stats())
                    .key(k.vault_burned())
                    .key(k.vault_active(Tier::Gold))
                    .key(k.vault_active(Tier::Silver))
                    .key(k.vault_active(Tier::Bronze))
                    .arg(&ttl)
                    .arg(&grace)
                    .arg(PURGE_BATCH)
                    .arg(&prefix)
                    .arg(&opens_prefix)
                    .invoke(c, self.wait)
            })?;
            report.expired += expired;
            report.deleted_burned += deleted;
            if full == 0 || expired + deleted == 0 {
                return Ok(report);
            }
        }
    }

    fn stats(&self) -> Result<VaultStats, Error> {
        self.vault_stats()
    }

    fn open_last_resort(&self, key_id: &KeyId, digest: &OpenDigest, now: UnixSeconds) -> Result<bool, Error> {
        self.run_open(key_id, digest, now, None)
    }

    fn active_ids(&self, tier: Option<Tier>, visit: &mut dyn FnMut(KeyId)) -> Result<(), Error> {
        let tiers: &[Tier] = match &tier {
            Some(t) => core::slice::from_ref(t),
            None => &Tier::ALL,
        };
        for t in tiers {
            let key = self.keys.vault_active(*t);
            let members: Vec<String> =
                self.pool.run(Resend::Safe, |c| redis::cmd("ZRANGE").arg(&key).arg(0).arg(-1).query(c))?;
            // The members are hashed: each entry keeps its key id sealed in `id`.
            for chunk in members.chunks(500) {
                let mut pipe = redis::pipe();
                for m in chunk {
                    pipe.cmd("HGET").arg(self.keys.vault_entry(m)).arg("id");
                }
                let ids: Vec<Option<Vec<u8>>> = self.pool.run(Resend::Safe, |c| pipe.query(c))?;
                for (m, sealed) in chunk.iter().zip(ids) {
                    // Burned or purged since the index was read: no longer ACTIVE.
                    let Some(sealed) = sealed else { continue };
                    let entry = self.keys.vault_entry(m);
                    let raw = self.seal.open(Kind::VaultId, m, &sealed, &entry)?;
                    visit(KeyId::from_slice(&raw).map_err(|_| Error::corrupt(&entry, "bad sealed key id"))?);
                }
            }
        }
        Ok(())
    }
}

impl SessionStore for RedisStore {
    fn load_session(&self, peer: &UserId, direction: Direction) -> Result<Option<StoredSession>, Error> {
        let key = self.session_key(peer, direction);
        let (v, blob): (Option<Vec<u8>>, Option<Vec<u8>>) =
            self.pool.run(Resend::Safe, |c| redis::cmd("HMGET").arg(&key).arg("v").arg("blob").query(c))?;
        decode_session(&key, v, blob)
    }

    fn save_session(
        &self,
        peer: &UserId,
        direction: Direction,
        blob: &SessionBlob,
        expected: Option<SessionVersion>,
    ) -> Result<SessionVersion, Error> {
        let key = self.session_key(peer, direction);
        let expected_arg = version_arg(expected);
        let token = self.op_token();
        let out: String = self.pool.run(Resend::Deduplicated, |c| {
            scripts::call(&scripts::SESSION_SAVE)
                .key(&key)
                .arg(&expected_arg)
                .arg(blob.as_slice())
                .arg(&token)
                .invoke(c, self.wait)
        })?;
        if out == "conflict" {
            return Err(aqm_core::Error::SessionConflict.into());
        }
        Ok(SessionVersion(parse_u64(&key, "bad session version", out.as_bytes())?))
    }

    fn burn_and_save_session(
        &self,
        key_id: &KeyId,
        now: UnixSeconds,
        peer: &UserId,
        blob: &SessionBlob,
        expected: Option<SessionVersion>,
    ) -> Result<SessionVersion, Error> {
        self.run_burn(key_id, now, Some((peer, blob, expected)))?.into_result()?;
        Ok(next_version(expected)?)
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
        self.run_open(key_id, digest, now, Some((peer, blob, expected)))?;
        Ok(next_version(expected)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aqm_core::Policy;
    use aqm_core::crypto::DeviceKey;

    #[test]
    fn opens_records_are_padded_sealed_and_checked() {
        let seal = Sealing::sealed(&DeviceKey::from_bytes([3; 32]));
        let key = KeyId([9; 16]);
        let mut entry = VaultEntry::new_active(
            key,
            Tier::Bronze,
            CoinKind::LastResort,
            SealedSecret { nonce: [0; AEAD_NONCE], ciphertext: heapless::Vec::new() },
            0,
            100,
        );
        let mut opens = LastResortOpens::default();
        let one = seal_opens(&seal, "ix", &opens).unwrap();
        let d = aqm_core::vault::open_digest(&key, b"ct");
        assert_eq!(entry.open_last_resort(&mut opens, d, &Policy::DEFAULT, 1), Ok(None));
        let two = seal_opens(&seal, "ix", &opens).unwrap();
        // The same length whatever the count, and the digest not in clear.
        assert_eq!(one.len(), two.len());
        assert!(!two.windows(16).any(|w| w == d.0));
        assert_eq!(decode_opens(&seal, "ix", "k", &two).unwrap(), opens);
        // Bound to its entry's name.
        assert!(matches!(decode_opens(&seal, "other", "k", &two), Err(Error::Corrupt { .. })));
        // Unsealed: wrong size and non-zero padding are corrupt, not opens.
        let clear = Sealing::unsealed();
        let mut plain = seal_opens(&clear, "ix", &opens).unwrap();
        assert_eq!(plain.len(), LAST_RESORT_OPENS_BYTES);
        assert_eq!(decode_opens(&clear, "ix", "k", &plain).unwrap(), opens);
        assert!(matches!(decode_opens(&clear, "ix", "k", &plain[..40]), Err(Error::Corrupt { .. })));
        *plain.last_mut().unwrap() = 1;
        assert!(matches!(decode_opens(&clear, "ix", "k", &plain), Err(Error::Corrupt { .. })));
    }

    #[test]
    fn an_entry_without_a_kind_field_is_one_time_and_a_bad_kind_is_corrupt() {
        let clear = Sealing::unsealed();
        assert_eq!(decode_kind(&clear, "ix", "k", None).unwrap(), CoinKind::OneTime);
        assert_eq!(decode_kind(&clear, "ix", "k", Some(vec![1])).unwrap(), CoinKind::LastResort);
        assert!(matches!(decode_kind(&clear, "ix", "k", Some(vec![7])), Err(Error::Corrupt { .. })));
        assert!(matches!(decode_kind(&clear, "ix", "k", Some(vec![0, 0])), Err(Error::Corrupt { .. })));
    }
}
