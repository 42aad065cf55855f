//! The device: identity in flash, the request handler, and the board's pins.

use aqm_core::crypto::{self, DeviceKey, Identity, IdentitySecret, SealedSecret, SecretSeed, SignatureBytes};
use aqm_core::rekey::RekeySigner;
use aqm_core::store::VaultStore;
use aqm_core::{KeyId, Tier, UnixSeconds, coin};
use embedded_hal::delay::DelayNs;
use embedded_hal::digital::{InputPin, OutputPin};
use embedded_io::{Read, Write};
use embedded_storage::nor_flash::MultiwriteNorFlash;
use rand_core::CryptoRng;
use zeroize::Zeroizing;

use crate::protocol::{
    self, Command, CommandKind, DeviceError, DeviceInfo, DeviceStatus, Frame, FrameReader, MAX_MINT, MAX_REQUEST_FRAME,
    MAX_RESPONSE_FRAME, PROTOCOL_VERSION, RekeyRequest, Reply, Request, Response, SecretBytes,
};
use crate::{Error, FlashVault, StoredIdentity};

/// The key id under which the identity's seeds are sealed (AAD), distinct from any coin's
/// random (version 4) key id.
const IDENTITY_SEAL_ID: KeyId = KeyId(*b"AQM-identity-v1\0");
/// The identity's two 32-byte seeds are sealed as one 64-byte seed; SILVER is the tier whose
/// seed is 64 bytes, which is all the tier byte means here.
const IDENTITY_SEAL_TIER: Tier = Tier::Silver;

/// Decides whether an open or a re-key signature may go ahead (the "touch to approve" button).
pub trait Approver {
    /// Whether the user approved, waiting for it if the board has a way to ask.
    fn approve(&mut self) -> bool;
    /// Whether opens and re-key signatures need approval at all.
    fn required(&self) -> bool;
}

/// No approve button fitted: every open and re-key signature goes ahead.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoButton;

impl Approver for NoButton {
    fn approve(&mut self) -> bool {
        true
    }
    fn required(&self) -> bool {
        false
    }
}

/// An active-low push button (`embedded-hal` [`InputPin`]) that must be pressed within
/// `timeout_ms` of an open or re-key signature request.
#[derive(Debug)]
pub struct Button<P, D> {
    pin: P,
    delay: D,
    timeout_ms: u32,
}

impl<P: InputPin, D: DelayNs> Button<P, D> {
    /// A button on `pin` (pressed = low), polled every 10 ms for up to `timeout_ms`.
    pub fn new(pin: P, delay: D, timeout_ms: u32) -> Self {
        Button { pin, delay, timeout_ms }
    }
}

impl<P: InputPin, D: DelayNs> Approver for Button<P, D> {
    fn approve(&mut self) -> bool {
        let mut waited = 0;
        loop {
            // A pin that cannot be read counts as not pressed.
            if self.pin.is_low().unwrap_or(false) {
                return true;
            }
            if waited >= self.timeout_ms {
                return false;
            }
            self.delay.delay_ms(10);
            waited += 10;
        }
    }
    fn required(&self) -> bool {
        true
    }
}

/// The request handler: everything but the serial buffers.
pub struct Handler<F: MultiwriteNorFlash, const N: usize, R, L, A> {
    vault: FlashVault<F, N>,
    identity: Identity,
    device_key: DeviceKey,
    rng: R,
    led: L,
    approver: A,
    clock: UnixSeconds,
}

/// A secure-element device: a [`FlashVault`], an identity kept (sealed) in the same flash, an
/// RNG, an activity LED and an approver, speaking the [`protocol`] over any `embedded-io` port.
///
/// ```
/// use aqm_core::Policy;
/// use aqm_core::crypto::DeviceKey;
/// use aqm_firmware::flash::{RamFlash, PAGE_SIZE};
/// use aqm_firmware::{Device, FlashVault, NoButton, NoLed, VaultLayout};
/// use rand::SeedableRng;
/// let layout = VaultLayout::contiguous(0, PAGE_SIZE as u32, 4, 4);
/// let vault: FlashVault<_, 64> =
///     FlashVault::open(RamFlash::new(vec![0xFF; 8 * PAGE_SIZE]), layout, Policy::DEFAULT).unwrap();
/// let rng = rand_chacha::ChaCha20Rng::seed_from_u64(7);
/// let device = Device::new(vault, DeviceKey::from_bytes([9; 32]), rng, NoLed, NoButton).unwrap();
/// assert_eq!(device.identity().user_id(), device.identity().public().user_id);
/// ```
pub struct Device<F: MultiwriteNorFlash, const N: usize, R, L, A> {
    handler: Handler<F, N, R, L, A>,
    rx: FrameReader<MAX_REQUEST_FRAME>,
    tx: [u8; MAX_RESPONSE_FRAME],
}

/// An activity LED that is not there.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoLed;

impl embedded_hal::digital::ErrorType for NoLed {
    type Error = core::convert::Infallible;
}

impl OutputPin for NoLed {
    fn set_low(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
    fn set_high(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
}

fn seal_identity<R: CryptoRng>(id: &Identity, dk: &DeviceKey, rng: &mut R) -> Result<StoredIdentity, Error> {
    let s = id.secret();
    let mut both = Zeroizing::new([0u8; 64]);
    let halves: &mut [u8; 64] = &mut both;
    halves[..32].copy_from_slice(&s.ed25519_seed);
    halves[32..].copy_from_slice(&s.mldsa65_seed);
    let seed = SecretSeed::from_slice(&both[..])?;
    let sealed = SealedSecret::seal(dk, &IDENTITY_SEAL_ID, IDENTITY_SEAL_TIER, &seed, rng)?;
    Ok(StoredIdentity { user_id: s.user_id, sealed })
}

#[inline(never)]
fn unseal_identity(stored: &StoredIdentity, dk: &DeviceKey) -> Result<Identity, Error> {
    let seed = stored.sealed.open(dk, &IDENTITY_SEAL_ID, IDENTITY_SEAL_TIER)?;
    // `open` checked the seed has the identity tier's 64 bytes.
    let b: &[u8; 64] = seed.as_bytes().try_into().map_err(|_| aqm_core::Error::SealBroken)?;
    let mut secret = IdentitySecret { user_id: stored.user_id, ed25519_seed: [0; 32], mldsa65_seed: [0; 32] };
    secret.ed25519_seed.copy_from_slice(&b[..32]);
    secret.mldsa65_seed.copy_from_slice(&b[32..]);
    Ok(Identity::from_secret(secret))
}

impl<F, const N: usize, R, L, A> Device<F, N, R, L, A>
where
    F: MultiwriteNorFlash,
    R: CryptoRng,
    L: OutputPin,
    A: Approver,
{
    /// Boot: repair the vault after any power cut, then load the identity from flash, or create
    /// and store one on first boot. `device_key` seals the identity and every coin secret; a
    /// different key cannot open an existing vault ([`aqm_core::Error::SealBroken`]).
    pub fn new(vault: FlashVault<F, N>, device_key: DeviceKey, mut rng: R, led: L, approver: A) -> Result<Self, Error> {
        vault.recover()?;
        let identity = match vault.identity()? {
            Some(stored) => unseal_identity(&stored, &device_key)?,
            None => {
                let id = Identity::generate(&mut rng);
                vault.set_identity(&seal_identity(&id, &device_key, &mut rng)?)?;
                crate::log!("identity created");
                id
            }
        };
        Ok(Device {
            handler: Handler { vault, identity, device_key, rng, led, approver, clock: 0 },
            rx: FrameReader::new(),
            tx: [0; MAX_RESPONSE_FRAME],
        })
    }

    /// The device identity.
    pub fn identity(&self) -> &Identity {
        &self.handler.identity
    }

    /// The vault.
    pub fn vault(&self) -> &FlashVault<F, N> {
        &self.handler.vault
    }

    /// Shut down and get the vault back.
    pub fn into_vault(self) -> FlashVault<F, N> {
        self.handler.vault
    }

    /// Read one request frame from `io`, answer it, and say which command it was. Errors are
    /// only I/O errors of `io`; every refusal goes back to the host as an error frame.
    pub fn serve<IO: Read + Write>(&mut self, io: &mut IO) -> Result<CommandKind, Error> {
        let Device { handler, rx, tx } = self;
        let mut byte = [0u8; 1];
        let kind = loop {
            let n = io.read(&mut byte).map_err(|e| Error::Io(embedded_io::Error::kind(&e)))?;
            if n == 0 {
                return Err(Error::Io(embedded_io::ErrorKind::BrokenPipe));
            }
            match rx.push(byte[0]) {
                None => continue,
                Some(Frame::TooLarge) => {
                    let max = MAX_REQUEST_FRAME as u32;
                    let r = Response { id: 0, reply: Reply::Error(DeviceError::FrameTooLarge { max }) };
                    send(io, tx, &r)?;
                    break CommandKind::Malformed;
                }
                Some(Frame::Complete(frame)) => {
                    let request = match protocol::decode_request(frame) {
                        Ok(r) => r,
                        Err(id) => {
                            crate::log!("malformed frame");
                            let r = Response { id, reply: Reply::Error(DeviceError::Malformed) };
                            send(io, tx, &r)?;
                            break CommandKind::Malformed;
                        }
                    };
                    break handler.handle(&request, &mut |r| send(io, tx, r))?;
                }
            }
        };
        rx.wipe();
        Ok(kind)
    }
}

fn send<IO: Write>(io: &mut IO, tx: &mut [u8], r: &Response) -> Result<(), Error> {
    let res = match protocol::encode(r, tx) {
        Ok(frame) => io.write_all(frame).and_then(|_| io.flush()).map_err(|e| Error::Io(embedded_io::Error::kind(&e))),
        Err(e) => Err(e),
    };
    // The frame may have carried a shared secret.
    zeroize::Zeroize::zeroize(tx);
    res
}

impl<F, const N: usize, R, L, A> Handler<F, N, R, L, A>
where
    F: MultiwriteNorFlash,
    R: CryptoRng,
    L: OutputPin,
    A: Approver,
{
    /// Answer one request through `send` (several responses for a mint). Returns which command
    /// it was; `Err` only when `send` fails.
    fn handle(
        &mut self,
        req: &Request,
        send: &mut dyn FnMut(&Response) -> Result<(), Error>,
    ) -> Result<CommandKind, Error> {
        // The LED is best effort: a broken LED must not stop the vault.
        let _ = self.led.set_high();
        self.clock = self.clock.max(req.now);
        let now = self.clock;
        let id = req.id;
        // Each command runs in its own frame, so the stack a command needs is only its own.
        let kind = match &req.command {
            Command::Info => self.cmd_info(id, send)?,
            Command::Status => self.cmd_status(id, now, send)?,
            Command::Purge => self.cmd_purge(id, now, send)?,
            Command::Shutdown => {
                send(&Response { id, reply: Reply::ShuttingDown })?;
                CommandKind::Shutdown
            }
            Command::Mint { tier, count } => self.cmd_mint(id, *tier, *count, now, send)?,
            Command::Open { key_id, ciphertext } => self.cmd_open(id, key_id, ciphertext, now, send)?,
            Command::SignRekey(r) => self.cmd_sign_rekey(id, r, send)?,
            Command::MintLastResort { tier } => self.cmd_mint_last_resort(id, *tier, now, send)?,
            Command::ProveRegistration => self.cmd_prove_registration(id, send)?,
        };
        let _ = self.led.set_low();
        Ok(kind)
    }

    #[inline(never)]
    fn cmd_info(
        &mut self,
        id: u32,
        send: &mut dyn FnMut(&Response) -> Result<(), Error>,
    ) -> Result<CommandKind, Error> {
        let reply = self.info().map(Reply::Info).unwrap_or_else(|e| Reply::Error((&e).into()));
        send(&Response { id, reply })?;
        Ok(CommandKind::Info)
    }

    #[inline(never)]
    fn cmd_status(
        &mut self,
        id: u32,
        now: UnixSeconds,
        send: &mut dyn FnMut(&Response) -> Result<(), Error>,
    ) -> Result<CommandKind, Error> {
        let reply = self.status(now).map(Reply::Status).unwrap_or_else(|e| Reply::Error((&e).into()));
        send(&Response { id, reply })?;
        Ok(CommandKind::Status)
    }

    #[inline(never)]
    fn cmd_purge(
        &mut self,
        id: u32,
        now: UnixSeconds,
        send: &mut dyn FnMut(&Response) -> Result<(), Error>,
    ) -> Result<CommandKind, Error> {
        let reply = match self.vault.purge(now) {
            Ok(p) => Reply::Purged { expired: p.expired, deleted_burned: p.deleted_burned },
            Err(e) => Reply::Error((&e).into()),
        };
        send(&Response { id, reply })?;
        Ok(CommandKind::Purge)
    }

    #[inline(never)]
    fn cmd_mint(
        &mut self,
        id: u32,
        tier: Tier,
        count: u8,
        now: UnixSeconds,
        send: &mut dyn FnMut(&Response) -> Result<(), Error>,
    ) -> Result<CommandKind, Error> {
        if count == 0 || count > MAX_MINT {
            send(&Response { id, reply: Reply::Error(DeviceError::BadCount { max: MAX_MINT }) })?;
        } else {
            for remaining in (0..count).rev() {
                // The reply is built before it is sent (as in `cmd_mint_last_resort`): sending
                // from inside the match kept a second copy of the coin in this frame while the
                // next mint ran, 4.7 KiB of stack on GOLD.
                let (reply, failed) = match self.mint_one(tier, now) {
                    Ok(coin) => (Reply::Coin { coin, remaining }, false),
                    Err(e) => (Reply::Error((&e).into()), true),
                };
                send(&Response { id, reply })?;
                if failed {
                    break;
                }
            }
        }
        Ok(CommandKind::Mint(tier.to_byte()))
    }

    #[inline(never)]
    fn cmd_mint_last_resort(
        &mut self,
        id: u32,
        tier: Tier,
        now: UnixSeconds,
        send: &mut dyn FnMut(&Response) -> Result<(), Error>,
    ) -> Result<CommandKind, Error> {
        let reply = match self.mint_last_resort_one(tier, now) {
            Ok(coin) => Reply::Coin { coin, remaining: 0 },
            Err(e) => Reply::Error((&e).into()),
        };
        send(&Response { id, reply })?;
        Ok(CommandKind::MintLastResort(tier.to_byte()))
    }

    #[inline(never)]
    fn cmd_open(
        &mut self,
        id: u32,
        key_id: &KeyId,
        ciphertext: &[u8],
        now: UnixSeconds,
        send: &mut dyn FnMut(&Response) -> Result<(), Error>,
    ) -> Result<CommandKind, Error> {
        let (tier, r) = self.open(key_id, ciphertext, now);
        let reply = match r {
            Ok(ss) => Reply::Opened { shared_secret: SecretBytes(*ss) },
            Err(e) => Reply::Error((&e).into()),
        };
        send(&Response { id, reply })?;
        Ok(CommandKind::Open(tier.map(Tier::to_byte).unwrap_or(0)))
    }

    #[inline(never)]
    fn cmd_sign_rekey(
        &mut self,
        id: u32,
        request: &RekeyRequest,
        send: &mut dyn FnMut(&Response) -> Result<(), Error>,
    ) -> Result<CommandKind, Error> {
        let reply = match self.sign_rekey(request) {
            Ok(signature) => Reply::RekeySigned { signature },
            Err(e) => Reply::Error((&e).into()),
        };
        send(&Response { id, reply })?;
        Ok(CommandKind::SignRekey(request.tier.to_byte()))
    }

    #[inline(never)]
    fn cmd_prove_registration(
        &mut self,
        id: u32,
        send: &mut dyn FnMut(&Response) -> Result<(), Error>,
    ) -> Result<CommandKind, Error> {
        let joined = self.identity.registration_proof(&mut self.rng).and_then(|p| {
            let mut signature = SignatureBytes::new();
            signature
                .extend_from_slice(&p.ed25519)
                .and_then(|()| signature.extend_from_slice(&p.mldsa65))
                .map_err(|_| aqm_core::Error::BufferTooSmall)?;
            Ok(signature)
        });
        let reply = match joined {
            Ok(signature) => Reply::RegistrationProof { signature },
            Err(e) => Reply::Error((&Error::from(e)).into()),
        };
        send(&Response { id, reply })?;
        Ok(CommandKind::ProveRegistration)
    }

    fn info(&self) -> Result<DeviceInfo, Error> {
        Ok(DeviceInfo {
            protocol: PROTOCOL_VERSION,
            identity: self.identity.public().clone(),
            capacity: self.vault.capacity()?,
            approve_button: self.approver.required(),
        })
    }

    fn status(&self, now: UnixSeconds) -> Result<DeviceStatus, Error> {
        Ok(DeviceStatus { stats: self.vault.stats()?, usage: self.vault.usage()?, now })
    }

    /// Sign a re-key as the device's identity: the fields are checked first (counter 0, the
    /// tier's ciphertext size), then the approver is asked (the same path an open takes), then
    /// the core builds the signed bytes and signs them. Nothing is stored; a refusal signs
    /// nothing.
    #[inline(never)]
    fn sign_rekey(&mut self, request: &RekeyRequest) -> Result<SignatureBytes, Error> {
        if request.counter != 0 {
            return Err(aqm_core::Error::RekeyNotFirst.into());
        }
        let fields = request.fields(self.identity.user_id());
        let expected = fields.tier.ciphertext_len();
        if fields.kem_ciphertext.len() != expected {
            let got = fields.kem_ciphertext.len();
            return Err(aqm_core::Error::BadLength { what: "KEM ciphertext", expected, got }.into());
        }
        if !self.approver.approve() {
            return Err(Error::Device(DeviceError::NotApproved));
        }
        crate::log!("signing a re-key");
        Ok(self.identity.sign_rekey(&fields, &mut self.rng)?)
    }

    /// Mint one coin and store its sealed secret; the public half goes back only once stored.
    #[inline(never)]
    fn mint_one(&mut self, tier: Tier, now: UnixSeconds) -> Result<coin::PublicCoin, Error> {
        let minted = coin::mint(&self.identity, tier, &self.device_key, now, &mut self.rng)?;
        self.vault.put(&minted.vault)?;
        crate::log!("minted a coin");
        Ok(minted.public)
    }

    /// Mint the last-resort coin of `tier` and store its sealed secret; as [`Self::mint_one`]
    /// (the same frame size: only the kind and the expiry differ).
    #[inline(never)]
    fn mint_last_resort_one(&mut self, tier: Tier, now: UnixSeconds) -> Result<coin::PublicCoin, Error> {
        let minted = coin::mint_last_resort(&self.identity, tier, &self.device_key, now, &mut self.rng)?;
        self.vault.put(&minted.vault)?;
        crate::log!("minted a last-resort coin");
        Ok(minted.public)
    }

    /// Open a coin: check everything that can be checked without touching the vault, commit the
    /// open in flash, and only then decapsulate. A one-time coin is burned (the flash commit, then
    /// the secret zeroed in place); a last-resort coin records the first message's digest
    /// ([`FlashVault`]'s `open_last_resort`: a replay is refused before any secret is computed,
    /// and the open that fills its record retires it as a burn does).
    #[inline(never)]
    fn open(
        &mut self,
        key_id: &KeyId,
        ciphertext: &[u8],
        now: UnixSeconds,
    ) -> (Option<Tier>, Result<Zeroizing<[u8; 32]>, Error>) {
        let entry = match self.vault.get(key_id, now) {
            Ok(Some(e)) => e,
            Ok(None) => {
                let e = match self.vault.status(key_id) {
                    Ok(Some(aqm_core::vault::KeyStatus::Burned)) => aqm_core::Error::KeyAlreadyBurned.into(),
                    // ACTIVE but not usable: past `expires_at + vault_grace`, awaiting a purge.
                    Ok(Some(aqm_core::vault::KeyStatus::Active)) => aqm_core::Error::CoinExpired.into(),
                    Ok(None) => aqm_core::Error::KeyNotFound.into(),
                    Err(e) => e,
                };
                return (None, Err(e));
            }
            Err(e) => return (None, Err(e)),
        };
        let tier = Some(entry.tier);
        let expected = entry.tier.ciphertext_len();
        if ciphertext.len() != expected {
            let e = aqm_core::Error::BadLength { what: "KEM ciphertext", expected, got: ciphertext.len() };
            return (tier, Err(e.into()));
        }
        if !self.approver.approve() {
            return (tier, Err(Error::Device(DeviceError::NotApproved)));
        }
        let seed = match entry.sealed.open(&self.device_key, key_id, entry.tier) {
            Ok(s) => s,
            Err(e) => return (tier, Err(e.into())),
        };
        // Commit the open before the secret exists anywhere but in this function's RAM.
        if entry.is_last_resort() {
            let digest = aqm_core::vault::open_digest(key_id, ciphertext);
            if let Err(e) = self.vault.open_last_resort(key_id, &digest, now) {
                return (tier, Err(e));
            }
            crate::log!("last-resort open recorded, decapsulating");
        } else {
            if let Err(e) = self.vault.burn(key_id, now) {
                return (tier, Err(e));
            }
            crate::log!("coin burned, decapsulating");
        }
        let r = crypto::decapsulate(entry.tier, &seed, ciphertext).map(|ss| Zeroizing::new(*ss.as_bytes()));
        (tier, r.map_err(Error::from))
    }
}
