//! Runs aqm-core's secret-handling paths with every secret input marked *undefined* for valgrind
//! memcheck (the ctgrind / TIMECOP method): memcheck then reports each conditional branch and
//! each memory address computed from a secret. Outputs that are public by design (signatures,
//! ciphertexts, tags, a verdict) are marked defined again before the harness looks at them.
//!
//! Run by `scripts/ct-check.sh`, which fails on any report not in `scripts/ct-check.supp`. The
//! ML-DSA-65 signer checked is the core's `small_mldsa65`, the signer of every build. Outside
//! valgrind it refuses to run (it would check nothing).

use aqm_core::crypto::{
    DeviceKey, Identity, IdentitySecret, SealedSecret, SecretSeed, decapsulate, encapsulate, generate_keypair,
};
use aqm_core::ratchet::{RecvChain, RecvSession, SendChain};
use aqm_core::rekey::{RekeyFields, RekeySigner, coin_key_hash};
use aqm_core::{KeyId, Tier, UserId};
use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};

mod valgrind {
    //! Valgrind client requests: the x86-64 "special instruction" sequence of `valgrind.h`. On a
    //! real CPU it is a no-op (four rotations of rdi by 3 + 13 + 61 + 51 = 128 bits, i.e. rdi
    //! unchanged, then `xchg rbx, rbx`) and rdx keeps its default value; under valgrind the
    //! request in the argument block at rax is carried out and its answer left in rdx.

    const RUNNING_ON_VALGRIND: usize = 0x1001;
    const COUNT_ERRORS: usize = 0x1201;
    /// `VG_USERREQ_TOOL_BASE('M', 'C')` = 'M' << 24 | 'C' << 16.
    const MC_BASE: usize = (b'M' as usize) << 24 | (b'C' as usize) << 16;
    const MAKE_MEM_UNDEFINED: usize = MC_BASE + 1;
    const MAKE_MEM_DEFINED: usize = MC_BASE + 2;

    #[cfg(target_arch = "x86_64")]
    fn request(default: usize, req: usize, a1: usize, a2: usize) -> usize {
        let args: [usize; 6] = [req, a1, a2, 0, 0, 0];
        let result;
        // SAFETY: the sequence only rotates rdi by a whole 128 bits (declared clobbered anyway)
        // and exchanges rbx with itself, so on hardware it changes no register or memory we do not
        // declare. Under valgrind it reads the six words at `args`, which live until after the
        // asm, and for the memcheck requests changes only valgrind's shadow (definedness) state of
        // the `a2` bytes at address `a1`, never their contents: no Rust-visible memory is written,
        // so no aliasing rule is broken even when the bytes are behind a shared reference.
        unsafe {
            core::arch::asm!(
                "rol rdi, 3",
                "rol rdi, 13",
                "rol rdi, 61",
                "rol rdi, 51",
                "xchg rbx, rbx",
                inout("rdx") default => result,
                in("rax") args.as_ptr(),
                inout("rdi") 0usize => _,
                options(nostack, preserves_flags),
            );
        }
        result
    }

    #[cfg(not(target_arch = "x86_64"))]
    fn request(default: usize, _req: usize, _a1: usize, _a2: usize) -> usize {
        default
    }

    /// Whether this process runs under valgrind.
    pub fn running() -> bool {
        request(0, RUNNING_ON_VALGRIND, 0, 0) != 0
    }

    /// Errors valgrind has reported so far (suppressed ones excluded).
    pub fn errors() -> usize {
        request(0, COUNT_ERRORS, 0, 0)
    }

    /// Mark `bytes` secret: memcheck reports any branch or address that depends on them.
    pub fn secret(bytes: &[u8]) {
        request(0, MAKE_MEM_UNDEFINED, bytes.as_ptr() as usize, bytes.len());
    }

    /// Mark `bytes` public (declassify): only for outputs that are public by design.
    pub fn public(bytes: &[u8]) {
        request(0, MAKE_MEM_DEFINED, bytes.as_ptr() as usize, bytes.len());
    }

    /// Mark the whole of `value` public: its address and size go to valgrind, its bytes are never
    /// read (so padding is no concern).
    pub fn public_value<T>(value: &T) {
        request(0, MAKE_MEM_DEFINED, value as *const T as usize, core::mem::size_of::<T>());
    }
}

/// An RNG whose every output is marked secret (signing randomness, ephemeral keys).
struct SecretRng(ChaCha20Rng);

impl rand_core::TryRng for SecretRng {
    type Error = core::convert::Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        let v = self.0.next_u32();
        valgrind::secret(&v.to_le_bytes());
        Ok(v)
    }
    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        let mut b = [0u8; 8];
        self.try_fill_bytes(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        self.0.fill_bytes(dst);
        valgrind::secret(dst);
        Ok(())
    }
}
impl rand_core::TryCryptoRng for SecretRng {}

fn secret_bytes<const N: usize>(rng: &mut ChaCha20Rng) -> [u8; N] {
    let mut b = [0u8; N];
    rng.fill_bytes(&mut b);
    valgrind::secret(&b);
    b
}

fn step(name: &str, f: impl FnOnce()) {
    let before = valgrind::errors();
    f();
    let after = valgrind::errors();
    println!("ct-check: {name}: {} new report(s)", after - before);
}

fn main() {
    if !valgrind::running() {
        eprintln!("ct-check: not running under valgrind, so nothing would be checked; use scripts/ct-check.sh");
        std::process::exit(2);
    }
    if std::env::args().nth(1).as_deref() == Some("--canary") {
        // The check must be able to fail: branch on a secret on purpose (ct-check.sh expects a
        // report from this run).
        let s: [u8; 1] = secret_bytes(&mut ChaCha20Rng::seed_from_u64(0));
        if s[0] & 1 == 1 {
            println!("ct-check canary: odd");
        } else {
            println!("ct-check canary: even");
        }
        println!("ct-check canary: {} report(s)", valgrind::errors());
        return;
    }
    let signer = "small_mldsa65";
    let mut rng = ChaCha20Rng::seed_from_u64(0xc7);

    let identity_secret = |rng: &mut ChaCha20Rng| IdentitySecret {
        user_id: UserId([1; 16]),
        ed25519_seed: secret_bytes(rng),
        mldsa65_seed: secret_bytes(rng),
    };

    // The identity never signs raw bytes (docs/protocol.md): the registration proof and the re-key
    // signature are the product's signing paths, so they are what is checked.
    step(&format!("identity from secret seeds + registration proof (Ed25519 + ML-DSA-65, {signer})"), || {
        let id = Identity::from_secret(identity_secret(&mut rng));
        let public = id.public().clone();
        valgrind::public(&public.ed25519); // public keys are public
        valgrind::public(&public.mldsa65);
        let mut srng = SecretRng(ChaCha20Rng::seed_from_u64(1));
        let proof = id.registration_proof(&mut srng);
        valgrind::public_value(&proof); // signatures are public, as is whether signing succeeded
        let proof = proof.expect("signs");
        valgrind::public(&proof.ed25519);
        valgrind::public(&proof.mldsa65);
        assert!(public.verify_registration(&proof).is_ok());
    });

    for tier in Tier::ALL {
        let hybrid = if tier.hybrid_signature() { "Ed25519 + ML-DSA-65" } else { "Ed25519" };
        step(&format!("re-key signature {tier:?} ({hybrid}, {signer})"), || {
            let id = Identity::from_secret(identity_secret(&mut rng));
            let public = id.public().clone();
            valgrind::public(&public.ed25519);
            valgrind::public(&public.mldsa65);
            let (_, coin_pk) = generate_keypair(tier, &mut rng);
            let (kem_ciphertext, _) = encapsulate(tier, &coin_pk, &mut rng).expect("encapsulates");
            let mut nonce = [0u8; 12];
            rng.fill_bytes(&mut nonce);
            let fields = RekeyFields {
                sender: id.user_id(),
                recipient: UserId([2; 16]),
                coin: KeyId([3; 16]),
                tier,
                kem_ciphertext: &kem_ciphertext,
                coin_public_key_hash: coin_key_hash(&coin_pk),
                counter: 0,
                nonce,
            };
            let mut srng = SecretRng(ChaCha20Rng::seed_from_u64(3));
            let sig = id.sign_rekey(&fields, &mut srng);
            valgrind::public_value(&sig);
            let sig = sig.expect("signs");
            valgrind::public(&sig); // the signature field goes on the wire
            assert!(aqm_core::rekey::verify(&public, &fields, &sig).is_ok());
        });
    }

    for tier in Tier::ALL {
        step(&format!("decapsulate {tier:?}"), || {
            let (seed, pk) = generate_keypair(tier, &mut rng);
            let (ct, ss) = encapsulate(tier, &pk, &mut rng).expect("encapsulates");
            let secret = SecretSeed::from_slice(seed.as_bytes()).expect("seed");
            valgrind::secret(secret.as_bytes());
            let got = decapsulate(tier, &secret, &ct).expect("decapsulates");
            valgrind::public(got.as_bytes()); // compared below only to check the harness
            assert_eq!(got, ss);
            let mut bad = ct.clone();
            bad[0] ^= 1;
            if let Ok(other) = decapsulate(tier, &secret, &bad) {
                valgrind::public(other.as_bytes());
                assert_ne!(other, ss);
            }
        });
        step(&format!("encapsulate {tier:?} (secret ephemeral randomness)"), || {
            let (_, pk) = generate_keypair(tier, &mut rng);
            let mut srng = SecretRng(ChaCha20Rng::seed_from_u64(2));
            let (ct, ss) = encapsulate(tier, &pk, &mut srng).expect("encapsulates");
            valgrind::public(&ct); // the ciphertext is sent
            valgrind::public(ss.as_bytes());
        });
    }

    step("seal / open a secret seed (AES-256-GCM)", || {
        let device_key = DeviceKey::from_bytes(secret_bytes(&mut rng));
        let key_id = KeyId([3; 16]);
        let seed = SecretSeed::from_slice(&secret_bytes::<64>(&mut rng)).expect("seed");
        let sealed = SealedSecret::seal(&device_key, &key_id, Tier::Silver, &seed, &mut rng).expect("seals");
        valgrind::public(&sealed.ciphertext); // stored at rest: public
        let opened = sealed.open(&device_key, &key_id, Tier::Silver).expect("opens");
        valgrind::public(opened.as_bytes());
        assert_eq!(opened.as_bytes(), {
            valgrind::public(seed.as_bytes());
            seed.as_bytes()
        });
        let mut bad = sealed.clone();
        bad.ciphertext[1] ^= 1;
        assert!(bad.open(&device_key, &key_id, Tier::Silver).is_err());
    });

    step("ratchet: open a chain from a KEM secret, encrypt, decrypt, seal and reopen the session", || {
        let (alice, bob, coin) = (UserId([0xa; 16]), UserId([0xb; 16]), KeyId([0xc; 16]));
        let (seed, pk) = generate_keypair(Tier::Silver, &mut rng);
        let (ct, _) = encapsulate(Tier::Silver, &pk, &mut rng).expect("encapsulates");
        let secret = SecretSeed::from_slice(seed.as_bytes()).expect("seed");
        valgrind::secret(secret.as_bytes());
        let ss = decapsulate(Tier::Silver, &secret, &ct).expect("decapsulates");
        // The transcript hash (SHA-256 of the signed re-key bytes) is public: it is computed from
        // wire fields.
        let transcript = [0x5a; 32];
        let mut send = SendChain::new(&ss, &alice, &bob, coin, Tier::Silver, 10, &transcript);
        let mut recv = RecvSession::new(alice, RecvChain::new(&ss, &alice, &bob, coin, Tier::Silver, &transcript));
        for i in 0..3u8 {
            let mut buf = [i; 48];
            valgrind::secret(&buf); // the plaintext
            let mut nonce = [0u8; 12];
            rng.fill_bytes(&mut nonce); // public: the header carries it
            let (n, tag) = send.encrypt(b"header", &nonce, &mut buf).expect("encrypts");
            valgrind::public(&buf); // ciphertext and tag go on the wire
            valgrind::public(&tag);
            recv.decrypt(32, &coin, n, &nonce, b"header", &mut buf, &tag).expect("decrypts");
            valgrind::public(&buf);
            assert_eq!(buf, [i; 48]);
        }
        let device_key = DeviceKey::from_bytes(secret_bytes(&mut rng));
        let blob = send.seal(&device_key, &mut rng).expect("seals");
        valgrind::public(&blob);
        // Whether a record opens is public (the caller learns it); only then is it looked at.
        let reopened = SendChain::open(&blob, &device_key, &bob);
        valgrind::public_value(&reopened);
        assert_eq!(reopened.expect("opens").counter(), 3);
        let blob = recv.seal(&device_key, &mut rng).expect("seals");
        valgrind::public(&blob);
        let reopened = RecvSession::open(&blob, &device_key, &alice);
        valgrind::public_value(&reopened);
        assert_eq!(reopened.expect("opens").current().next_counter(), 3);
    });

    println!("ct-check ({signer}): {} unsuppressed report(s) in total", valgrind::errors());
}
