//! Conversions between the directory's rows and the core's types.

use aqm_core::coin::{CoinKind, PublicCoin};
use aqm_core::directory::DirectoryCoin;
use aqm_core::{KeyId, Tier, UserId};
use tokio_postgres::Row;
use uuid::Uuid;

use super::to_u64;
use crate::ServerError;

/// The columns [`coin_from_row`] reads, in order.
pub(crate) const COIN_COLUMNS: &str = "user_id, key_id, coin_category, coin_kind, expires_at, public_key_blob, \
     signature_blob, record_id, uploaded_at, fetched_by, fetched_at";

pub(crate) fn uuid(id: &[u8; 16]) -> Uuid {
    Uuid::from_bytes(*id)
}

pub(crate) fn user(u: Uuid) -> UserId {
    UserId(*u.as_bytes())
}

fn corrupt(what: &str) -> ServerError {
    ServerError::Database(format!("corrupt directory row: {what}"))
}

/// A coin row ([`COIN_COLUMNS`]) as the core's directory record.
pub(crate) fn coin_from_row(row: &Row) -> Result<DirectoryCoin, ServerError> {
    let owner = user(row.try_get(0)?);
    let key_id = KeyId(*row.try_get::<_, Uuid>(1)?.as_bytes());
    let tier: Tier = row.try_get::<_, &str>(2)?.parse().map_err(|_| corrupt("coin_category"))?;
    let kind = u8::try_from(row.try_get::<_, i16>(3)?).map_err(|_| corrupt("coin_kind"))?;
    let kind = CoinKind::try_from(kind).map_err(|_| corrupt("coin_kind"))?;
    let expires_at = to_u64(row.try_get(4)?)?;
    let public_key = heapless::Vec::from_slice(row.try_get::<_, &[u8]>(5)?).map_err(|_| corrupt("public key"))?;
    let signature = heapless::Vec::from_slice(row.try_get::<_, &[u8]>(6)?).map_err(|_| corrupt("signature"))?;
    let seq = to_u64(row.try_get(7)?)?;
    let uploaded_at = to_u64(row.try_get(8)?)?;
    let claimed_by = row.try_get::<_, Option<Uuid>>(9)?.map(user);
    let claimed_at = row.try_get::<_, Option<i64>>(10)?.map(to_u64).transpose()?;
    Ok(DirectoryCoin {
        coin: PublicCoin { owner, key_id, tier, kind, expires_at, public_key, signature },
        uploaded_at,
        seq,
        claimed_by,
        claimed_at,
    })
}
