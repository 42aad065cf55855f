//! The decoders of everything this crate reads back from Redis, for the fuzz targets in `fuzz/`
//! (feature `fuzzing`; not a public API). Each takes the reply exactly as the store gets it from
//! `redis` (fields of an `HMGET`, a script's reply as `redis::Value`s, a set member) and must
//! return a value or `Error::Corrupt`, never panic, whatever the bytes.

use aqm_core::inventory::{ContactMeta, Selection};
use aqm_core::pins::Pinned;
use aqm_core::store::StoredSession;
use aqm_core::vault::{KeyStatus, VaultEntry, VaultStats};
use aqm_core::{ContactId, KeyId, TierCounts, UserId};
use redis::Value;

use crate::Error;

const KEY: &str = "fuzz:vault:v1:key:0";

/// A vault entry hash (`HMGET` of its nine fields, in the store's order), opened in the unsealed
/// mode (the decoding after the seals are opened).
pub fn vault_entry(fields: Vec<Option<Vec<u8>>>) -> Result<Option<VaultEntry>, Error> {
    crate::vault::decode_entry(&crate::Sealing::unsealed(), "00", KEY, KeyId([0; 16]), fields)
}

/// A last-resort key's opens record (`rec`), opened in the unsealed mode.
pub fn last_resort_opens(rec: &[u8]) -> Result<aqm_core::vault::LastResortOpens, Error> {
    crate::vault::decode_opens(&crate::Sealing::unsealed(), "00", KEY, rec)
}

/// A vault entry's `status` field alone (what `VaultStore::status` reads).
pub fn vault_status(status: &str) -> Result<KeyStatus, Error> {
    KeyStatus::parse(status).map_err(|_| Error::corrupt(KEY, "unknown status"))
}

/// The vault stats hash, as `HMGET` reads it into integers (`redis` converts the bytes first:
/// [`stats_reply`] runs that conversion too).
pub fn vault_stats(fields: &[Option<i64>]) -> Result<VaultStats, Error> {
    crate::vault::decode_vault_stats(KEY, fields)
}

/// The vault stats hash from a raw reply: `redis`'s conversion to integers, then the decoder.
pub fn stats_reply(reply: Value) -> Result<VaultStats, Error> {
    let fields: Vec<Option<i64>> =
        redis::from_redis_value(reply).map_err(|_| Error::corrupt(KEY, "unexpected reply"))?;
    vault_stats(&fields)
}

/// A session hash (`v`, `blob`).
pub fn session(v: Option<Vec<u8>>, blob: Option<Vec<u8>>) -> Result<Option<StoredSession>, Error> {
    crate::vault::decode_session(KEY, v, blob)
}

/// A burn script's reply word.
pub fn burn_reply(out: &str) -> Option<Result<(), aqm_core::Error>> {
    crate::vault::BurnOutcome::parse(out).map(crate::vault::BurnOutcome::into_result)
}

/// A contact's meta hash (`rec`, `pt`, `last`) opened in the unsealed mode (the decoding after
/// the seal is opened), from a raw reply as the contact listing converts it.
pub fn contact_meta(contact: ContactId, reply: Value) -> Result<Option<ContactMeta>, Error> {
    let fields: Vec<Option<Vec<u8>>> =
        redis::from_redis_value(reply).map_err(|_| Error::corrupt(KEY, "unexpected reply"))?;
    let fields: [Option<Vec<u8>>; 3] = fields.try_into().map_err(|_| Error::corrupt(KEY, "unexpected reply"))?;
    let ix = crate::sealing::hex(contact.as_bytes());
    crate::inventory::open_meta_with(&crate::Sealing::unsealed(), &ix, fields)
}

/// A script's `{gold, silver, bronze}` (or negative status) reply.
pub fn tier_counts(reply: &[Value]) -> Result<Result<TierCounts, i64>, Error> {
    crate::inventory::tier_counts(KEY, reply)
}

/// One select step's reply (a popped coin's record decoded unsealed, or none).
pub fn selection(contact: &ContactId, reply: Vec<Value>) -> Result<Selection, Error> {
    let tiers = [aqm_core::Tier::Gold, aqm_core::Tier::Silver, aqm_core::Tier::Bronze];
    match crate::inventory::decode_pop(KEY, &tiers, reply)? {
        crate::inventory::Pop::Coin { rec: Some(rec), seq, .. } => {
            let coin = crate::inventory::decode_coin(KEY, contact, &rec, seq)?;
            Ok(Selection { coin: Some(coin), wasted: 0 })
        }
        _ => Ok(Selection::default()),
    }
}

/// A pin record after its seal is opened (the first field; format v4 has one field, `rec`: the
/// other two are ignored, kept so that the fuzz target's calls stay as they were).
pub fn pin(
    user: &UserId,
    rec: Option<Vec<u8>>,
    _unused: Option<Vec<u8>>,
    _unused2: Option<Vec<u8>>,
) -> Result<Option<Pinned>, Error> {
    crate::pins::decode_pin(KEY, user, rec.as_deref())
}

/// A sealed vault key id after its seal is opened (what `active_ids` decodes per member).
pub fn id_member(member: &str) -> Result<KeyId, Error> {
    KeyId::from_slice(member.as_bytes()).map_err(|_| Error::corrupt(KEY, "bad sealed key id"))
}
