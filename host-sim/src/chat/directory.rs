//! The chat's default coin directory: one redb file that both chat processes use.
//!
//! redb locks a database file for the process that opened it, so two processes cannot both hold
//! it open. [`SharedDirectory`] therefore opens the file for each call and closes it after: each
//! [`DirectoryStore`] method is still exactly one redb transaction (the redb backend's own
//! implementation runs it), and a call that finds the file held by the other process waits and
//! tries again. A chat does a handful of directory calls per re-key, so the re-open costs
//! nothing a person notices.

use std::path::{Path, PathBuf};
use std::thread::sleep;
use std::time::{Duration, Instant};

use aqm_core::coin::PublicCoin;
use aqm_core::crypto::{PublicIdentity, RegistrationProof};
use aqm_core::directory::{Claimed, IdempotencyKey};
use aqm_core::store::{DirectoryStore, HasPolicy};
use aqm_core::{Policy, Tier, TierCounts, UnixSeconds, UserId};
use aqm_storage_redb::{Error, RedbStore};

/// How long a call waits for the other process to release the file before it gives up.
const LOCK_WAIT: Duration = Duration::from_secs(10);

/// A coin directory in a redb file shared by several processes.
#[derive(Debug)]
pub struct SharedDirectory {
    path: PathBuf,
    policy: Policy,
}

impl SharedDirectory {
    /// The directory in `path` (created on first use), ruling under `policy`. Opens the file once
    /// to check that it is usable, so a bad path fails here rather than at the first message.
    pub fn open(path: impl AsRef<Path>, policy: Policy) -> Result<SharedDirectory, Error> {
        let dir = SharedDirectory { path: path.as_ref().to_path_buf(), policy };
        dir.with(|_| Ok(()))?;
        Ok(dir)
    }

    /// Run `f` on the file, opened for this call only.
    fn with<T>(&self, f: impl FnOnce(&RedbStore) -> Result<T, Error>) -> Result<T, Error> {
        let started = Instant::now();
        let mut pause = Duration::from_millis(2);
        loop {
            match RedbStore::open_unsealed(&self.path, self.policy.clone()) {
                Ok(store) => return f(&store),
                // The other chat process holds it for its own call: it lets go within milliseconds.
                Err(Error::Open { source: redb::DatabaseError::DatabaseAlreadyOpen, .. })
                    if started.elapsed() < LOCK_WAIT =>
                {
                    sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(50));
                }
                Err(e) => return Err(e),
            }
        }
    }
}

impl HasPolicy for SharedDirectory {
    fn policy(&self) -> &Policy {
        &self.policy
    }
}

impl DirectoryStore for SharedDirectory {
    type Error = Error;

    fn register_identity(&self, identity: &PublicIdentity, proof: &RegistrationProof) -> Result<(), Error> {
        self.with(|d| d.register_identity(identity, proof))
    }

    fn identity(&self, user: &UserId) -> Result<Option<PublicIdentity>, Error> {
        self.with(|d| d.identity(user))
    }

    fn upload(&self, owner: &UserId, coins: &[PublicCoin], now: UnixSeconds) -> Result<u32, Error> {
        self.with(|d| d.upload(owner, coins, now))
    }

    fn claim(
        &self,
        owner: &UserId,
        requester: &UserId,
        tier: Tier,
        count: u32,
        idempotency: Option<IdempotencyKey>,
        now: UnixSeconds,
    ) -> Result<Claimed, Error> {
        self.with(|d| d.claim(owner, requester, tier, count, idempotency, now))
    }

    fn available(&self, owner: &UserId) -> Result<TierCounts, Error> {
        self.with(|d| d.available(owner))
    }

    fn purge_stale(&self, now: UnixSeconds) -> Result<u32, Error> {
        self.with(|d| d.purge_stale(now))
    }

    fn hard_delete_claimed(&self, now: UnixSeconds) -> Result<u32, Error> {
        self.with(|d| d.hard_delete_claimed(now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aqm_core::coin;
    use aqm_core::crypto::{DeviceKey, Identity};

    /// Two handles on one file (as two processes have) see each other's writes, and a handle
    /// waits while the file is held open elsewhere.
    #[test]
    fn two_handles_share_one_file() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("directory.redb");
        let a = SharedDirectory::open(&path, Policy::DEFAULT).unwrap();
        let b = SharedDirectory::open(&path, Policy::DEFAULT).unwrap();
        let mut rng = rand::rng();
        let bob = Identity::generate(&mut rng);
        a.register_identity(bob.public(), &bob.registration_proof(&mut rng).unwrap()).unwrap();
        let minted = coin::mint(&bob, Tier::Bronze, &DeviceKey::random(&mut rng), 0, &mut rng).unwrap();
        assert_eq!(a.upload(&bob.user_id(), &[minted.public], 0).unwrap(), 1);

        let held = RedbStore::open_unsealed(&path, Policy::DEFAULT).unwrap();
        let waiter = std::thread::spawn(move || b.available(&bob.user_id()).unwrap());
        sleep(Duration::from_millis(100));
        drop(held);
        assert_eq!(waiter.join().unwrap(), TierCounts([0, 0, 1]));
    }
}
