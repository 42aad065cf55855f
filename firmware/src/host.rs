//! Host conveniences (feature `std`): a file-backed emulated flash, an in-process serial link
//! to a [`Device`], and an adapter from `std::io` ports to `embedded-io`.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::vec::Vec;
use std::{format, vec};

use embedded_hal::digital::OutputPin;
use embedded_io::{ErrorKind, ErrorType, Read, Write};
use embedded_storage::nor_flash::{ErrorType as FlashErrorType, MultiwriteNorFlash, NorFlash, ReadNorFlash};
use rand_core::CryptoRng;

use crate::device::Approver;
use crate::flash::{FlashError, PAGE_SIZE, RamFlash};
use crate::{Device, Error};

/// An emulated NOR flash kept in a file, so a simulated device keeps its vault between runs.
/// Every write and erase goes to the file (and is synced) before it returns.
pub struct FileFlash {
    ram: RamFlash<Vec<u8>>,
    file: File,
}

impl FileFlash {
    /// Open the image at `path`, creating an erased one of `size` bytes if it does not exist.
    /// An existing image must have exactly `size` bytes.
    pub fn open(path: &Path, size: usize) -> io::Result<Self> {
        if size == 0 || !size.is_multiple_of(PAGE_SIZE) {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "flash size must be a multiple of 4 KiB"));
        }
        let file = OpenOptions::new().read(true).write(true).create(true).truncate(false).open(path)?;
        let len = file.metadata()?.len() as usize;
        let mut mem = vec![0xFF; size];
        if len == 0 {
            file.write_all_at(&mem, 0)?;
            file.sync_all()?;
        } else if len != size {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{} holds a {len}-byte flash image, expected {size}: use another file", path.display()),
            ));
        } else {
            file.read_exact_at(&mut mem, 0)?;
        }
        Ok(FileFlash { ram: RamFlash::new(mem), file })
    }

    fn persist(&self, from: usize, to: usize) -> Result<(), FlashError> {
        let bytes = self.ram.as_bytes().get(from..to).ok_or(FlashError::OutOfBounds)?;
        self.file.write_all_at(bytes, from as u64).map_err(|_| FlashError::Backing)?;
        self.file.sync_data().map_err(|_| FlashError::Backing)
    }
}

impl FlashErrorType for FileFlash {
    type Error = FlashError;
}

impl ReadNorFlash for FileFlash {
    const READ_SIZE: usize = 1;
    fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), FlashError> {
        self.ram.read(offset, bytes)
    }
    fn capacity(&self) -> usize {
        self.ram.capacity()
    }
}

impl NorFlash for FileFlash {
    const WRITE_SIZE: usize = RamFlash::<Vec<u8>>::WRITE_SIZE;
    const ERASE_SIZE: usize = RamFlash::<Vec<u8>>::ERASE_SIZE;
    fn erase(&mut self, from: u32, to: u32) -> Result<(), FlashError> {
        let r = self.ram.erase(from, to);
        if !matches!(r, Err(FlashError::NotAligned | FlashError::OutOfBounds)) {
            self.persist(from as usize, to as usize)?;
        }
        r
    }
    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), FlashError> {
        self.ram.write(offset, bytes)?;
        self.persist(offset as usize, offset as usize + bytes.len())
    }
}

impl MultiwriteNorFlash for FileFlash {}

/// A `std::io` port (a `TcpStream`, a serial port) as an `embedded-io` port.
pub struct StdIo<T>(pub T);

impl<T> ErrorType for StdIo<T> {
    type Error = io::Error;
}

impl<T: io::Read> Read for StdIo<T> {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, io::Error> {
        loop {
            match self.0.read(buf) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                r => return r,
            }
        }
    }
}

impl<T: io::Write> Write for StdIo<T> {
    fn write(&mut self, buf: &[u8]) -> Result<usize, io::Error> {
        self.0.write(buf)
    }
    fn flush(&mut self) -> Result<(), io::Error> {
        self.0.flush()
    }
}

/// A serial link to a [`Device`] running in this process: bytes written are queued; a read runs
/// the device on every complete frame queued so far and returns its answer.
pub struct InProcess<F: MultiwriteNorFlash, const N: usize, R, L, A> {
    device: Device<F, N, R, L, A>,
    to_device: VecDeque<u8>,
    from_device: VecDeque<u8>,
}

struct Pipe<'a> {
    input: &'a mut VecDeque<u8>,
    output: &'a mut VecDeque<u8>,
}

impl ErrorType for Pipe<'_> {
    type Error = ErrorKind;
}

impl Read for Pipe<'_> {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, ErrorKind> {
        let n = buf.len().min(self.input.len());
        for (b, x) in buf.iter_mut().zip(self.input.drain(..n)) {
            *b = x;
        }
        Ok(n)
    }
}

impl Write for Pipe<'_> {
    fn write(&mut self, buf: &[u8]) -> Result<usize, ErrorKind> {
        self.output.extend(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> Result<(), ErrorKind> {
        Ok(())
    }
}

impl<F, const N: usize, R, L, A> InProcess<F, N, R, L, A>
where
    F: MultiwriteNorFlash,
    R: CryptoRng,
    L: OutputPin,
    A: Approver,
{
    /// A link to `device`.
    pub fn new(device: Device<F, N, R, L, A>) -> Self {
        InProcess { device, to_device: VecDeque::new(), from_device: VecDeque::new() }
    }

    /// The device.
    pub fn device(&self) -> &Device<F, N, R, L, A> {
        &self.device
    }

    /// Shut the link and get the device back.
    pub fn into_device(self) -> Device<F, N, R, L, A> {
        self.device
    }
}

impl<F: MultiwriteNorFlash, const N: usize, R, L, A> ErrorType for InProcess<F, N, R, L, A> {
    type Error = ErrorKind;
}

impl<F, const N: usize, R, L, A> Read for InProcess<F, N, R, L, A>
where
    F: MultiwriteNorFlash,
    R: CryptoRng,
    L: OutputPin,
    A: Approver,
{
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, ErrorKind> {
        while self.from_device.is_empty() && self.to_device.contains(&0) {
            let mut pipe = Pipe { input: &mut self.to_device, output: &mut self.from_device };
            match self.device.serve(&mut pipe) {
                Ok(_) => {}
                Err(Error::Io(kind)) => return Err(kind),
                Err(_) => return Err(ErrorKind::Other),
            }
        }
        if self.from_device.is_empty() {
            // Nothing was asked that the device could answer: reading would block forever.
            return Err(ErrorKind::BrokenPipe);
        }
        let n = buf.len().min(self.from_device.len());
        for (b, x) in buf.iter_mut().zip(self.from_device.drain(..n)) {
            *b = x;
        }
        Ok(n)
    }
}

impl<F, const N: usize, R, L, A> Write for InProcess<F, N, R, L, A>
where
    F: MultiwriteNorFlash,
    R: CryptoRng,
    L: OutputPin,
    A: Approver,
{
    fn write(&mut self, buf: &[u8]) -> Result<usize, ErrorKind> {
        self.to_device.extend(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> Result<(), ErrorKind> {
        Ok(())
    }
}

/// The scripted session a device must pass (the QEMU board in CI, a real board by hand, the
/// in-process device): info, mint two coins of every tier and verify them as v2 coins (signature,
/// kind, `expires_at` = mint + 30 days), open one of each (the secret must match the sender's),
/// refuse the second open, refuse a ciphertext of the wrong length and a damaged frame, have the
/// device sign a re-key of every tier (verified against its identity; counter 1 refused), send a
/// first message with a [`Messenger`](aqm_core::messaging::Messenger) whose signer is the device
/// to an in-memory receiver that verifies and decrypts it, check the counters, purge the burned
/// coins after their grace; in between, a last-resort coin of every tier opens two first messages and
/// refuses each again (`Replay`). `say` gets one line per step. Returns the first broken expectation as
/// an error. A device with an approve button needs it pressed for each open and re-key.
pub fn run_session<IO: Read + Write, R: CryptoRng>(
    client: &mut crate::Client<IO>,
    now: aqm_core::UnixSeconds,
    rng: &mut R,
    say: &mut dyn FnMut(&str),
) -> Result<(), Error> {
    use crate::protocol::{DeviceError, Reply};
    use aqm_core::Tier;
    use aqm_core::crypto::encapsulate;

    let expect = |ok: bool, what: &'static str| if ok { Ok(()) } else { Err(Error::Protocol { what }) };
    let info = client.info(now)?;
    say(&format!("info: user {} protocol v{} capacity {} coins", info.identity.user_id, info.protocol, info.capacity));
    let status = client.status(now)?;
    let before = status.stats;
    // The device's clock never runs backwards: it mints at the latest time it has seen.
    let minted_at = status.now;
    let policy = aqm_core::Policy::DEFAULT;
    for tier in Tier::ALL {
        let mut coins = Vec::new();
        client.mint(now, tier, 2, |c| coins.push(c))?;
        let [first, second] = coins.as_slice() else {
            return Err(Error::Protocol { what: "mint returned the wrong number of coins" });
        };
        for c in &coins {
            c.verify_fresh(&info.identity, &policy, now).map_err(Error::Core)?;
            expect(c.kind == aqm_core::coin::CoinKind::OneTime, "the device minted a coin that is not one-time")?;
            expect(c.expires_at == aqm_core::protocol::coin_expiry(minted_at), "coin expiry is not mint + 30 days")?;
        }
        let sig = if tier == Tier::Gold { "Ed25519 + ML-DSA-65" } else { "Ed25519" };
        say(&format!(
            "mint {tier}: 2 v2 coins ({sig}, {} B signature), expire at {} (mint + 30 days; vault keeps the secret {} days more)",
            first.signature.len(),
            first.expires_at,
            policy.vault_grace_secs / 86_400
        ));
        let (ct, ss) = encapsulate(tier, &first.public_key, rng)?;
        let got = client.open(now, first.key_id, &ct)?;
        expect(&*got == ss.as_bytes(), "the opened secret differs from the sender's")?;
        say(&format!("open {tier}: shared secret matches the sender's"));
        match client.open(now, first.key_id, &ct) {
            Err(Error::Device(DeviceError::KeyAlreadyBurned)) => say(&format!("open {tier} again: refused (burned)")),
            Ok(_) => return Err(Error::Protocol { what: "a coin opened twice" }),
            Err(e) => return Err(e),
        }
        let short = ct.split_last().map(|(_, short)| short).unwrap_or_default();
        match client.open(now, second.key_id, short) {
            Err(Error::Device(DeviceError::BadLength { .. })) => {}
            Ok(_) => return Err(Error::Protocol { what: "a short ciphertext was accepted" }),
            Err(e) => return Err(e),
        }
    }
    // Last-resort coins (issue 14): one per tier, opened by two first messages without being
    // burned, the same first message again refused as a replay.
    for tier in Tier::ALL {
        let c = client.mint_last_resort(now, tier)?;
        c.verify_fresh(&info.identity, &policy, now).map_err(Error::Core)?;
        expect(c.kind == aqm_core::coin::CoinKind::LastResort, "the device minted a coin that is not last-resort")?;
        let lr_expiry = aqm_core::protocol::last_resort_expiry(minted_at);
        expect(c.expires_at == lr_expiry, "last-resort expiry is not mint + 7 days")?;
        for _ in 0..2 {
            let (ct, ss) = encapsulate(tier, &c.public_key, rng)?;
            let got = client.open(now, c.key_id, &ct)?;
            expect(&*got == ss.as_bytes(), "the last-resort secret differs from the sender's")?;
            match client.open(now, c.key_id, &ct) {
                Err(Error::Device(DeviceError::Replay)) => {}
                Ok(_) => return Err(Error::Protocol { what: "a replayed first message opened" }),
                Err(e) => return Err(e),
            }
        }
        say(&format!("last-resort {tier}: minted (expires mint + 7 days), two first messages opened, replays refused"));
    }
    let proof = client.registration_proof(now)?;
    info.identity.verify_registration(&proof).map_err(Error::Core)?;
    say("registration proof: verifies against the device identity (what a directory checks)");
    sign_rekeys(client, now, &info.identity, rng, say)?;
    let r = client.send_raw(&[0x03, 0xFF, 0xFF, 0x00])?;
    expect(r.reply == Reply::Error(DeviceError::Malformed), "a damaged frame was not refused")?;
    say("damaged frame and short ciphertexts: refused");
    let s = client.status(now)?;
    let mut want = before;
    for tier in Tier::ALL {
        // The second one-time coin and the last-resort coin (opened, never burned).
        *want.active.get_mut(tier) += 2;
    }
    want.total_burned += 3;
    expect(s.stats == want, "counters differ from the session's own count")?;
    say(&format!(
        "status: active GOLD/SILVER/BRONZE {:?}, burned {}, expired {}; {} live slots",
        s.stats.active.0, s.stats.total_burned, s.stats.total_expired, s.usage.live_slots
    ));
    let grace = aqm_core::Policy::DEFAULT.burn_grace_secs;
    let (expired, deleted) = client.purge(now + grace)?;
    expect(deleted >= 3 && expired == 0, "purge did not delete the burned coins")?;
    say(&format!("purge after the burn grace: {deleted} burned coins deleted"));
    Ok(())
}

/// The re-key part of [`run_session`]: the device signs a re-key of every tier (fields from a
/// real encapsulation), the signature verifies against its identity, counter 1 is refused; then
/// a `Messenger` whose signer is the device opens a GOLD chain to an in-memory receiver, which
/// verifies the device's signature before it decapsulates, and decrypts.
fn sign_rekeys<IO: Read + Write, R: CryptoRng>(
    client: &mut crate::Client<IO>,
    now: aqm_core::UnixSeconds,
    device: &aqm_core::crypto::PublicIdentity,
    rng: &mut R,
    say: &mut dyn FnMut(&str),
) -> Result<(), Error> {
    use crate::protocol::{DeviceError, RekeyRequest};
    use aqm_core::crypto::{DeviceKey, Identity, encapsulate};
    use aqm_core::memory::MemoryStore;
    use aqm_core::messaging::Messenger;
    use aqm_core::pins::Trust;
    use aqm_core::rekey::{self, RekeyFields};
    use aqm_core::store::{PinStore, VaultStore};
    use aqm_core::{Policy, Tier, coin};

    let bob = Identity::generate(rng);
    let bob_key = DeviceKey::random(rng);
    for tier in Tier::ALL {
        let minted = coin::mint(&bob, tier, &bob_key, now, rng)?;
        let (ct, _) = encapsulate(tier, &minted.public.public_key, rng)?;
        let mut nonce = [0u8; 12];
        rng.fill_bytes(&mut nonce);
        let fields = RekeyFields {
            sender: device.user_id,
            recipient: bob.user_id(),
            coin: minted.public.key_id,
            tier,
            kem_ciphertext: &ct,
            coin_public_key_hash: rekey::coin_key_hash(&minted.public.public_key),
            counter: 0,
            nonce,
        };
        let sig = client.sign_rekey(now, RekeyRequest::from_fields(&fields)?)?;
        rekey::verify(device, &fields, &sig).map_err(Error::Core)?;
        let mut late = RekeyRequest::from_fields(&fields)?;
        late.counter = 1;
        match client.sign_rekey(now, late) {
            Err(Error::Device(DeviceError::RekeyNotFirst)) => {}
            Ok(_) => return Err(Error::Protocol { what: "the device signed a re-key at counter 1" }),
            Err(e) => return Err(e),
        }
        say(&format!(
            "sign re-key {tier}: device signed ({} B), verifies against its identity; counter 1 refused",
            sig.len()
        ));
    }

    // A user whose identity lives in the device sends with the core's Messenger.
    let policy = Policy::DEFAULT;
    let alice_store: std::boxed::Box<MemoryStore> = std::boxed::Box::new(MemoryStore::new(policy.clone()));
    let bob_store: std::boxed::Box<MemoryStore> = std::boxed::Box::new(MemoryStore::new(policy.clone()));
    let alice_key = DeviceKey::random(rng);
    let minted = coin::mint(&bob, Tier::Gold, &bob_key, now, rng)?;
    bob_store.put(&minted.vault)?;
    alice_store.pin_identity(bob.public(), Trust::Exchanged)?;
    bob_store.pin_identity(device, Trust::Exchanged)?;
    let envelope = {
        let signer = crate::DeviceSigner::new(client, now)?;
        let alice = Messenger::new(&*alice_store, &signer, &alice_key);
        let sent = alice
            .send_with_coin(&bob.user_id(), &minted.public, Tier::Gold, b"hello from the device", now, rng)
            .map_err(|e| signer.last_error().unwrap_or(Error::Core(e)))?;
        sent.envelope
    };
    let mut wire = vec![0u8; aqm_core::envelope::MAX_ENVELOPE];
    let wire = envelope.encode(&mut wire)?;
    let got = Messenger::new(&*bob_store, &bob, &bob_key).receive(wire, now, rng)?;
    let ok = got.from == device.user_id && &got.plaintext[..] == b"hello from the device";
    if !ok {
        return Err(Error::Protocol { what: "the receiver read another sender or text" });
    }
    say(&format!(
        "send as the device: GOLD first message signed by the device, receiver verified it and read {:?}",
        core::str::from_utf8(&got.plaintext).unwrap_or("?")
    ));
    Ok(())
}
