//! The host side of the serial protocol, over any `embedded-io` port (a UART, a TCP socket to
//! QEMU's serial port, a USB serial device, or an in-process device): [`Client`], and
//! [`DeviceSigner`], the core's [`RekeySigner`] for a user whose identity lives in the device.

use core::cell::{Cell, RefCell};

use aqm_core::coin::PublicCoin;
use aqm_core::crypto::sizes::ED25519_SIGNATURE;
use aqm_core::crypto::{KemCiphertext, PublicIdentity, RegistrationProof, SignatureBytes};
use aqm_core::rekey::{self, RekeyFields, RekeySigner};
use aqm_core::{KeyId, Tier, UnixSeconds, UserId};
use embedded_io::{Read, Write};
use rand_core::CryptoRng;
use zeroize::Zeroizing;

use crate::Error;
use crate::protocol::{
    self, Command, DeviceInfo, DeviceStatus, Frame, FrameReader, MAX_REQUEST_FRAME, MAX_RESPONSE_FRAME, RekeyRequest,
    Reply, Request, Response,
};

/// Talks to a device. Holds its own frame buffers (about 6 KiB), so keep it on the heap or in a
/// static on small hosts.
pub struct Client<IO> {
    io: IO,
    next_id: u32,
    rx: FrameReader<MAX_RESPONSE_FRAME>,
    tx: [u8; MAX_REQUEST_FRAME],
}

fn io_err<E: embedded_io::Error>(e: E) -> Error {
    Error::Io(e.kind())
}

impl<IO: Read + Write> Client<IO> {
    /// A client on `io`.
    pub fn new(io: IO) -> Self {
        Client { io, next_id: 1, rx: FrameReader::new(), tx: [0; MAX_REQUEST_FRAME] }
    }

    /// Close the client and get the port back.
    pub fn into_inner(self) -> IO {
        self.io
    }

    /// The port.
    pub fn io_mut(&mut self) -> &mut IO {
        &mut self.io
    }

    /// Send `command` and hand every response for it to `on_reply` until it returns false.
    pub fn call(
        &mut self,
        now: UnixSeconds,
        command: Command,
        mut on_reply: impl FnMut(Reply) -> Result<bool, Error>,
    ) -> Result<(), Error> {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1).max(1);
        let frame = protocol::encode(&Request { id, now, command }, &mut self.tx)?;
        self.io.write_all(frame).map_err(io_err)?;
        self.io.flush().map_err(io_err)?;
        zeroize::Zeroize::zeroize(&mut self.tx[..]);
        loop {
            let r = self.read_response()?;
            if r.id != id {
                if r.id == 0 {
                    // The device could not read our id: the refusal is for us.
                    if let Reply::Error(e) = r.reply {
                        return Err(Error::Device(e));
                    }
                }
                return Err(Error::Protocol { what: "response to another request id" });
            }
            if !on_reply(r.reply)? {
                return Ok(());
            }
        }
    }

    /// Send raw bytes (e.g. a damaged frame, for tests) and read one response.
    pub fn send_raw(&mut self, bytes: &[u8]) -> Result<Response, Error> {
        self.io.write_all(bytes).map_err(io_err)?;
        self.io.flush().map_err(io_err)?;
        self.read_response()
    }

    fn read_response(&mut self) -> Result<Response, Error> {
        let mut byte = [0u8; 1];
        loop {
            if self.io.read(&mut byte).map_err(io_err)? == 0 {
                return Err(Error::Io(embedded_io::ErrorKind::BrokenPipe));
            }
            match self.rx.push(byte[0]) {
                None => {}
                Some(Frame::TooLarge) => return Err(Error::Protocol { what: "response frame too large" }),
                Some(Frame::Complete(frame)) => {
                    let r = protocol::decode::<Response>(frame)
                        .map_err(|_| Error::Protocol { what: "response frame does not decode" });
                    self.rx.wipe();
                    return r;
                }
            }
        }
    }

    /// The device's identity and capacity.
    pub fn info(&mut self, now: UnixSeconds) -> Result<DeviceInfo, Error> {
        let mut out = None;
        self.call(now, Command::Info, |r| match r {
            Reply::Info(i) => {
                out = Some(i);
                Ok(false)
            }
            other => unexpected(other),
        })?;
        out.ok_or(Error::Protocol { what: "no info" })
    }

    /// Mint `count` coins of `tier`; `on_coin` gets each signed public half as it arrives (each
    /// is already stored on the device). Returns how many arrived.
    pub fn mint(
        &mut self,
        now: UnixSeconds,
        tier: Tier,
        count: u8,
        mut on_coin: impl FnMut(PublicCoin),
    ) -> Result<u8, Error> {
        let mut got = 0;
        self.call(now, Command::Mint { tier, count }, |r| match r {
            Reply::Coin { coin, remaining } => {
                got += 1;
                on_coin(coin);
                Ok(remaining > 0)
            }
            other => unexpected(other),
        })?;
        Ok(got)
    }

    /// Mint the device's last-resort coin of `tier` ([`Command::MintLastResort`]): returns its
    /// signed public half (already stored on the device), to publish.
    pub fn mint_last_resort(&mut self, now: UnixSeconds, tier: Tier) -> Result<PublicCoin, Error> {
        let mut out = None;
        self.call(now, Command::MintLastResort { tier }, |r| match r {
            Reply::Coin { coin, remaining: 0 } => {
                out = Some(coin);
                Ok(false)
            }
            other => unexpected(other),
        })?;
        out.ok_or(Error::Protocol { what: "no last-resort coin" })
    }

    /// Open a coin: the device burns a one-time coin (a last-resort coin records the first
    /// message instead, refusing it again with [`protocol::DeviceError::Replay`]) and returns the
    /// KEM shared secret.
    pub fn open(&mut self, now: UnixSeconds, key_id: KeyId, ciphertext: &[u8]) -> Result<Zeroizing<[u8; 32]>, Error> {
        let ciphertext = KemCiphertext::from_slice(ciphertext).map_err(|_| {
            Error::Core(aqm_core::Error::BadLength {
                what: "KEM ciphertext",
                expected: aqm_core::crypto::sizes::MAX_CIPHERTEXT,
                got: ciphertext.len(),
            })
        })?;
        let mut out = None;
        self.call(now, Command::Open { key_id, ciphertext }, |r| match r {
            Reply::Opened { shared_secret } => {
                out = Some(Zeroizing::new(shared_secret.0));
                Ok(false)
            }
            other => unexpected(other),
        })?;
        out.ok_or(Error::Protocol { what: "no shared secret" })
    }

    /// Ask the device to sign a re-key as its own identity (the request carries no sender). The
    /// device may wait for its approve button; a refusal is [`Error::Device`] (e.g.
    /// [`protocol::DeviceError::NotApproved`], [`protocol::DeviceError::RekeyNotFirst`]).
    pub fn sign_rekey(&mut self, now: UnixSeconds, request: RekeyRequest) -> Result<SignatureBytes, Error> {
        let mut out = None;
        self.call(now, Command::SignRekey(request), |r| match r {
            Reply::RekeySigned { signature } => {
                out = Some(signature);
                Ok(false)
            }
            other => unexpected(other),
        })?;
        out.ok_or(Error::Protocol { what: "no re-key signature" })
    }

    /// The device identity's proof of possession, for registering it at a coin directory
    /// ([`Command::ProveRegistration`]; check it with
    /// [`aqm_core::crypto::PublicIdentity::verify_registration`] against [`Client::info`]'s
    /// identity, as the directory will).
    pub fn registration_proof(&mut self, now: UnixSeconds) -> Result<RegistrationProof, Error> {
        let mut out = None;
        self.call(now, Command::ProveRegistration, |r| match r {
            Reply::RegistrationProof { signature } => {
                let (ed, ml) = signature
                    .split_at_checked(ED25519_SIGNATURE)
                    .ok_or(Error::Protocol { what: "registration proof shorter than an Ed25519 signature" })?;
                let part = |b: &[u8]| {
                    SignatureBytes::from_slice(b).map_err(|_| Error::Protocol { what: "registration proof too long" })
                };
                out = Some(RegistrationProof { ed25519: part(ed)?, mldsa65: part(ml)? });
                Ok(false)
            }
            other => unexpected(other),
        })?;
        out.ok_or(Error::Protocol { what: "no registration proof" })
    }

    /// Counters and flash usage.
    pub fn status(&mut self, now: UnixSeconds) -> Result<DeviceStatus, Error> {
        let mut out = None;
        self.call(now, Command::Status, |r| match r {
            Reply::Status(s) => {
                out = Some(s);
                Ok(false)
            }
            other => unexpected(other),
        })?;
        out.ok_or(Error::Protocol { what: "no status" })
    }

    /// Purge expired and old burned coins: returns (expired, deleted burned).
    pub fn purge(&mut self, now: UnixSeconds) -> Result<(u32, u32), Error> {
        let mut out = None;
        self.call(now, Command::Purge, |r| match r {
            Reply::Purged { expired, deleted_burned } => {
                out = Some((expired, deleted_burned));
                Ok(false)
            }
            other => unexpected(other),
        })?;
        out.ok_or(Error::Protocol { what: "no purge report" })
    }
}

impl<IO: Read + Write> Client<IO> {
    /// End the session: the device answers, then halts or resets.
    pub fn shutdown(&mut self, now: UnixSeconds) -> Result<(), Error> {
        self.call(now, Command::Shutdown, |r| match r {
            Reply::ShuttingDown => Ok(false),
            other => unexpected(other),
        })
    }
}

fn unexpected(r: Reply) -> Result<bool, Error> {
    match r {
        Reply::Error(e) => Err(Error::Device(e)),
        _ => Err(Error::Protocol { what: "unexpected reply kind" }),
    }
}

/// The core's [`RekeySigner`] for a user whose identity lives in a device: every re-key a
/// [`aqm_core::messaging::Messenger`] opens is signed by the device over the serial link (behind
/// its approve button where it has one), and the host never holds the identity's secrets.
///
/// The signer learns the device's identity once ([`DeviceSigner::new`]) and checks every
/// signature the device returns against it, so a device that answers with garbage (or another
/// identity) fails the send instead of producing an envelope the receiver refuses. Every failure
/// of the device or the link is [`aqm_core::Error::SignerFailed`], as the trait asks;
/// [`DeviceSigner::last_error`] says what it was. The signer borrows the [`Client`], so the same
/// link keeps serving mints and opens between sends.
pub struct DeviceSigner<'c, IO> {
    client: RefCell<&'c mut Client<IO>>,
    identity: PublicIdentity,
    last_error: Cell<Option<Error>>,
}

impl<'c, IO: Read + Write> DeviceSigner<'c, IO> {
    /// A signer over `client`: asks the device for its identity (an [`Command::Info`]).
    pub fn new(client: &'c mut Client<IO>, now: UnixSeconds) -> Result<Self, Error> {
        let identity = client.info(now)?.identity;
        Ok(DeviceSigner { client: RefCell::new(client), identity, last_error: Cell::new(None) })
    }

    /// The device's public identity (what receivers pin for this user).
    pub fn identity(&self) -> &PublicIdentity {
        &self.identity
    }

    /// Why the last [`RekeySigner::sign_rekey`] that returned `SignerFailed` failed.
    pub fn last_error(&self) -> Option<Error> {
        self.last_error.get()
    }

    fn fail(&self, e: Error) -> aqm_core::Error {
        self.last_error.set(Some(e));
        aqm_core::Error::SignerFailed
    }
}

impl<IO: Read + Write> RekeySigner for DeviceSigner<'_, IO> {
    fn user_id(&self) -> UserId {
        self.identity.user_id
    }

    /// Fields for another sender → [`aqm_core::Error::WrongOwner`] and a KEM ciphertext of the
    /// wrong size → [`aqm_core::Error::BadLength`], as the in-memory identity answers, without
    /// asking the device. The device's own randomness hedges its signature, so `rng` is unused.
    fn sign_rekey<R: CryptoRng + ?Sized>(
        &self,
        fields: &RekeyFields<'_>,
        _rng: &mut R,
    ) -> Result<SignatureBytes, aqm_core::Error> {
        if fields.sender != self.identity.user_id {
            return Err(aqm_core::Error::WrongOwner);
        }
        fields.signed_bytes()?;
        let request = RekeyRequest::from_fields(fields)?;
        let mut client = self.client.try_borrow_mut().map_err(|_| self.fail(Error::Busy))?;
        // A signature involves no time: `now` = 0 leaves the device's clock where it is (it
        // only ever moves forward).
        let signature = client.sign_rekey(0, request).map_err(|e| self.fail(e))?;
        rekey::verify(&self.identity, fields, &signature)
            .map_err(|_| self.fail(Error::Protocol { what: "the device's re-key signature does not verify" }))?;
        self.last_error.set(None);
        Ok(signature)
    }
}
