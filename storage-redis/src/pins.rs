//! [`PinStore`] on Redis: one hash per pinned user. A pin is decided by the core
//! ([`aqm_core::pins::decide`]) inside a `WATCH`/`MULTI` transaction on that hash, so no rule is
//! restated here and a concurrent pin of the same user makes the transaction retry.

use aqm_core::UserId;
use aqm_core::crypto::PublicIdentity;
use aqm_core::pins::{self, Pinned, Trust};
use aqm_core::store::PinStore;

use crate::pool::Resend;
use crate::{Error, RedisStore};

type RawPin = (Option<Vec<u8>>, Option<Vec<u8>>, Option<Vec<u8>>);

fn read_raw(c: &mut redis::Connection, key: &str) -> redis::RedisResult<RawPin> {
    redis::cmd("HMGET").arg(key).arg("ed25519").arg("mldsa65").arg("trust").query(c)
}

pub(crate) fn decode_pin(
    key: &str,
    user: &UserId,
    ed: Option<Vec<u8>>,
    ml: Option<Vec<u8>>,
    trust: Option<Vec<u8>>,
) -> Result<Option<Pinned>, Error> {
    let (Some(ed), Some(ml), Some(trust)) = (ed, ml, trust) else { return Ok(None) };
    let ed25519: [u8; 32] = ed.as_slice().try_into().map_err(|_| Error::corrupt(key, "bad ed25519 key"))?;
    let mldsa65 = heapless::Vec::from_slice(&ml).map_err(|_| Error::corrupt(key, "bad mldsa65 key"))?;
    let trust = crate::parse_u64(key, "bad trust", &trust)?;
    let trust = u8::try_from(trust)
        .ok()
        .and_then(|t| Trust::try_from(t).ok())
        .ok_or_else(|| Error::corrupt(key, "bad trust"))?;
    Ok(Some(Pinned { identity: PublicIdentity { user_id: *user, ed25519, mldsa65 }, trust }))
}

impl PinStore for RedisStore {
    type Error = Error;

    fn pin_identity(&self, identity: &PublicIdentity, trust: Trust) -> Result<Pinned, Error> {
        let key = self.keys.pin(&identity.user_id);
        // Pinning the same identity again changes nothing, so the call may be resent.
        self.pool
            .run(Resend::Safe, |c| {
                let mut decided: Option<Result<Pinned, Error>> = None;
                redis::transaction(c, &[&key], |con, pipe| {
                    let (ed, ml, tr) = read_raw(con, &key)?;
                    let existing = match decode_pin(&key, &identity.user_id, ed, ml, tr) {
                        Ok(p) => p,
                        Err(e) => {
                            decided = Some(Err(e));
                            return Ok(Some(()));
                        }
                    };
                    match pins::decide(existing.as_ref(), identity, trust) {
                        Err(e) => {
                            decided = Some(Err(e.into()));
                            Ok(Some(()))
                        }
                        Ok(None) => {
                            decided = existing.map(Ok);
                            Ok(Some(()))
                        }
                        Ok(Some(pin)) => {
                            let done: Option<()> = pipe
                                .hset_multiple(
                                    &key,
                                    &[
                                        ("ed25519", pin.identity.ed25519.to_vec()),
                                        ("mldsa65", pin.identity.mldsa65.to_vec()),
                                        ("trust", pin.trust.to_byte().to_string().into_bytes()),
                                    ],
                                )
                                .ignore()
                                .query(con)?;
                            if done.is_some() {
                                decided = Some(Ok(pin));
                            }
                            Ok(done)
                        }
                    }
                })?;
                Ok(decided)
            })?
            .unwrap_or_else(|| Err(Error::corrupt(&key, "pin transaction ended without a decision")))
    }

    fn pinned(&self, user: &UserId) -> Result<Option<Pinned>, Error> {
        let key = self.keys.pin(user);
        let (ed, ml, trust) = self.pool.run(Resend::Safe, |c| read_raw(c, &key))?;
        decode_pin(&key, user, ed, ml, trust)
    }
}
