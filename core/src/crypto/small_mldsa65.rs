//! ML-DSA-65 key derivation and hedged signing (FIPS 204 Algorithms 2, 6 and 7) in little RAM:
//! A-hat is expanded one polynomial at a time and never stored, so deriving the public key needs
//! about 10 KiB and signing about 50 KiB, where `ml-dsa` 0.1.2 needs over 320 KiB (it builds its
//! 64 KiB expanded key by value and moves it several times) and `fips204` 0.5 about 200 KiB.
//! The arithmetic follows the FIPS 204 reference implementation (Montgomery and Barrett-style
//! reductions, no division on secret data, branch-free norm checks).
//!
//! Data-dependent branches and memory indices, exactly (checked under valgrind by
//! `scripts/ct-check.sh`, whose suppression file lists these and no others):
//! - the rejection samplers: RejNTTPoly (`a_hat`) on SHAKE128(ρ), which is public (ρ is in the
//!   public key); RejBoundedPoly (`s_poly`) on SHAKE256(ρ'), secret: which nibbles are rejected is
//!   independent of the values accepted, so their number and positions tell nothing about s1, s2
//!   (as in the reference implementation);
//! - SampleInBall (`sample_in_ball`) on c̃, which the signature publishes;
//! - the signing loop's retry-or-accept branch, once per attempt, on the single bit "some check
//!   failed" (the number of attempts is public, FIPS 204 §3.6.3). Each attempt (`attempt`) is
//!   otherwise straight-line: every norm check of every coefficient is computed and OR-ed in, and
//!   the hints are kept as a fixed-size bitmap, so nothing branches or indexes on
//!   w − cs2 + ct0, z, r0 or ct0, nor on which check rejected;
//! - HintBitPack (`encode_hints`) of the accepted attempt, whose hint positions the signature
//!   publishes.
//!
//! Keys and signatures are tested byte for byte against both `ml-dsa` and `fips204`; everyone
//! verifies with `ml-dsa`.

use shake::{ExtendableOutput, Shake128, Shake256, Update, XofReader};
use zeroize::Zeroize;

use super::sizes::MLDSA65_PUBLIC_KEY;

const Q: i32 = 8_380_417;
/// q^-1 mod 2^32.
const QINV: i32 = 58_728_449;
const D: u32 = 13;
const K: usize = 6;
const L: usize = 5;
const ETA: i32 = 4;
const N: usize = 256;

type Poly = [i32; N];

/// zeta^brv8(i) · 2^32 mod q (centred), zeta = 1753: the reference implementation's table,
/// computed at compile time.
const ZETAS: [i32; N] = zetas();

const fn pow_mod(mut b: i64, mut e: u32) -> i64 {
    let mut r = 1i64;
    while e > 0 {
        if e & 1 == 1 {
            r = r * b % Q as i64;
        }
        b = b * b % Q as i64;
        e >>= 1;
    }
    r
}

// In bounds: `t[i]` is written only while `i < N`, and `t` has N entries.
#[allow(clippy::indexing_slicing)]
const fn zetas() -> [i32; N] {
    let mut t = [0i32; N];
    let mont = (1i64 << 32) % Q as i64;
    let mut i = 0;
    while i < N {
        let brv = (i as u8).reverse_bits() as u32;
        let mut z = pow_mod(1753, brv) * mont % Q as i64;
        if z > (Q as i64) / 2 {
            z -= Q as i64;
        }
        t[i] = z as i32;
        i += 1;
    }
    t
}

/// a · 2^-32 mod q, in (-q, q), for |a| < 2^31 · q.
fn mont_reduce(a: i64) -> i32 {
    let t = (a as i32).wrapping_mul(QINV);
    ((a - i64::from(t) * i64::from(Q)) >> 32) as i32
}

/// A representative of a mod q in about (-q, q), for a <= 2^31 - 2^22 - 1.
fn reduce32(a: i32) -> i32 {
    let t = (a + (1 << 22)) >> 23;
    a - t * Q
}

/// Adds q if a is negative (branch free).
fn caddq(a: i32) -> i32 {
    a + ((a >> 31) & Q)
}

// In bounds (the reference loop nest): blocks of 2·len for len = 128, 64, …, 1 tile [0, N), so
// j + len < start + 2·len <= N; k is incremented once per block, 255 times in all, so k <= 255 < N.
#[allow(clippy::indexing_slicing)]
fn ntt(a: &mut Poly) {
    let mut k = 0;
    let mut len = 128;
    while len > 0 {
        let mut start = 0;
        while start < N {
            k += 1;
            let zeta = i64::from(ZETAS[k]);
            for j in start..start + len {
                let t = mont_reduce(zeta * i64::from(a[j + len]));
                a[j + len] = a[j] - t;
                a[j] += t;
            }
            start += 2 * len;
        }
        len >>= 1;
    }
}

/// Inverse NTT, multiplying by 2^32 (cancels the 2^-32 of a Montgomery product).
// In bounds (the reference loop nest): blocks of 2·len for len = 1, 2, …, 128 tile [0, N), so
// j + len < start + 2·len <= N; k starts at N and is decremented before each of the 255 uses, so
// 1 <= k < N.
#[allow(clippy::indexing_slicing)]
fn inv_ntt_tomont(a: &mut Poly) {
    // mont^2 / 256 mod q
    const F: i64 = 41_978;
    let mut k = N;
    let mut len = 1;
    while len < N {
        let mut start = 0;
        while start < N {
            k -= 1;
            let zeta = -i64::from(ZETAS[k]);
            for j in start..start + len {
                let t = a[j];
                a[j] = t + a[j + len];
                a[j + len] = t - a[j + len];
                a[j + len] = mont_reduce(zeta * i64::from(a[j + len]));
            }
            start += 2 * len;
        }
        len <<= 1;
    }
    for c in a.iter_mut() {
        *c = mont_reduce(F * i64::from(*c));
    }
}

/// RejNTTPoly (Algorithm 30): A-hat[i][j] from SHAKE128(ρ ‖ j ‖ i).
// In bounds: `b` is a `chunks_exact(3)` chunk, and `out[n]` is written only when `n < N`.
#[allow(clippy::indexing_slicing)]
fn a_hat(rho: &[u8; 32], i: usize, j: usize, out: &mut Poly) {
    let mut h = Shake128::default();
    h.update(rho);
    h.update(&[j as u8, i as u8]);
    let mut r = h.finalize_xof();
    let mut n = 0;
    let mut buf = [0u8; 168];
    while n < N {
        r.read(&mut buf);
        for b in buf.chunks_exact(3) {
            let t = i32::from(b[0]) | (i32::from(b[1]) << 8) | (i32::from(b[2] & 0x7f) << 16);
            if t < Q && n < N {
                out[n] = t;
                n += 1;
            }
        }
    }
}

/// RejBoundedPoly (Algorithm 31) for η = 4: s from SHAKE256(ρ' ‖ IntegerToBytes(r, 2)).
// In bounds: `out[n]` is written only when `n < N`.
#[allow(clippy::indexing_slicing)]
fn s_poly(rho_prime: &[u8; 64], r: u16, out: &mut Poly) {
    let mut h = Shake256::default();
    h.update(rho_prime);
    h.update(&r.to_le_bytes());
    let mut x = h.finalize_xof();
    let mut n = 0;
    let mut buf = [0u8; 136];
    while n < N {
        x.read(&mut buf);
        for &b in &buf {
            for z in [i32::from(b & 15), i32::from(b >> 4)] {
                if z < 9 && n < N {
                    out[n] = ETA - z;
                    n += 1;
                }
            }
        }
    }
    buf.zeroize();
}

/// The seeds (ρ, ρ', K) of ξ and NTT(s1).
struct Seeds {
    rho: [u8; 32],
    rho_prime: [u8; 64],
    k: [u8; 32],
}

impl Drop for Seeds {
    fn drop(&mut self) {
        self.rho_prime.zeroize();
        self.k.zeroize();
    }
}

/// Key generation, one row of A-hat at a time: writes pk = ρ ‖ SimpleBitPack(t1, 10 bits),
/// NTT(s1) and, when asked, NTT(t0).
// In bounds: `n < N` indexes N-entry polynomials and `i < K` the K rows; the slice of `pk` for
// row i < K ends at 32 + K · 320 = 1952 = MLDSA65_PUBLIC_KEY; `c` and `o` are `chunks_exact` chunks
// of 4 and 5 elements.
#[allow(clippy::indexing_slicing)]
fn keygen(
    xi: &[u8; 32],
    pk: &mut [u8; MLDSA65_PUBLIC_KEY],
    s1_hat: &mut [Poly; L],
    mut t0_hat: Option<&mut [Poly; K]>,
) -> Seeds {
    // (ρ, ρ', K) ← H(ξ ‖ k ‖ ℓ, 128)
    let mut bytes = [0u8; 128];
    let mut h = Shake256::default();
    h.update(xi);
    h.update(&[K as u8, L as u8]);
    h.finalize_xof().read(&mut bytes);
    let mut seeds = Seeds { rho: [0; 32], rho_prime: [0; 64], k: [0; 32] };
    seeds.rho.copy_from_slice(&bytes[..32]);
    seeds.rho_prime.copy_from_slice(&bytes[32..96]);
    seeds.k.copy_from_slice(&bytes[96..]);
    bytes.zeroize();

    for (r, s) in s1_hat.iter_mut().enumerate() {
        s_poly(&seeds.rho_prime, r as u16, s);
        ntt(s);
    }

    pk[..32].copy_from_slice(&seeds.rho);
    let mut a = [0i32; N];
    let mut t = [0i32; N];
    let mut s2 = [0i32; N];
    for i in 0..K {
        // t_i = NTT^-1(Σ_j A-hat[i][j] ∘ NTT(s1_j)) + s2_i
        t.fill(0);
        for (j, s) in s1_hat.iter().enumerate() {
            a_hat(&seeds.rho, i, j, &mut a);
            for n in 0..N {
                t[n] += mont_reduce(i64::from(a[n]) * i64::from(s[n]));
            }
        }
        for c in t.iter_mut() {
            *c = reduce32(*c);
        }
        inv_ntt_tomont(&mut t);
        s_poly(&seeds.rho_prime, (L + i) as u16, &mut s2);
        // Power2Round: t1 = ⌈t / 2^d⌋ of t mod⁺ q (packed 4 coefficients into 5 bytes),
        // t0 = t - t1 · 2^d.
        for n in 0..N {
            let v = caddq(reduce32(t[n] + s2[n]));
            let t1 = (v + (1 << (D - 1)) - 1) >> D;
            t[n] = t1;
            s2[n] = v - (t1 << D);
        }
        let out = &mut pk[32 + i * 320..32 + (i + 1) * 320];
        for (c, o) in t.chunks_exact(4).zip(out.chunks_exact_mut(5)) {
            let c = [c[0] as u32, c[1] as u32, c[2] as u32, c[3] as u32];
            o[0] = c[0] as u8;
            o[1] = ((c[0] >> 8) | (c[1] << 2)) as u8;
            o[2] = ((c[1] >> 6) | (c[2] << 4)) as u8;
            o[3] = ((c[2] >> 4) | (c[3] << 6)) as u8;
            o[4] = (c[3] >> 2) as u8;
        }
        if let Some(t0_hat) = t0_hat.as_deref_mut() {
            t0_hat[i] = s2;
            ntt(&mut t0_hat[i]);
        }
    }
    t.zeroize();
    s2.zeroize();
    seeds
}

/// pk = ρ ‖ SimpleBitPack(t1, 10 bits) for the seed ξ.
#[inline(never)]
pub(super) fn public_key(xi: &[u8; 32]) -> [u8; MLDSA65_PUBLIC_KEY] {
    let mut pk = [0u8; MLDSA65_PUBLIC_KEY];
    let mut s1_hat = [[0i32; N]; L];
    drop(keygen(xi, &mut pk, &mut s1_hat, None));
    s1_hat.zeroize();
    pk
}

const GAMMA1: i32 = 1 << 19;
const GAMMA2: i32 = (Q - 1) / 32;
const BETA: i32 = 196;
const OMEGA: usize = 55;
const TAU: usize = 49;
const LAMBDA_DIV4: usize = 48;
/// ML-DSA-65 signature length.
pub(super) const SIG_LEN: usize = LAMBDA_DIV4 + L * 640 + OMEGA + K;

/// (r1, r0) = Decompose(r) (Algorithm 36) for r in [0, q), γ2 = (q - 1)/32.
fn decompose(a: i32) -> (i32, i32) {
    let mut a1 = (a + 127) >> 7;
    a1 = (a1 * 1025 + (1 << 21)) >> 22;
    a1 &= 15;
    let mut a0 = a - a1 * 2 * GAMMA2;
    a0 -= (((Q - 1) / 2 - a0) >> 31) & Q;
    (a1, a0)
}

/// |a| for a centred representative (branch free).
fn abs(a: i32) -> i32 {
    let m = a >> 31;
    a - (m & (2 * a))
}

/// Pointwise product with the challenge, back out of the NTT domain, centred.
// In bounds: `n < N` and all three are N-entry polynomials.
#[allow(clippy::indexing_slicing)]
fn c_times(c_hat: &Poly, v_hat: &Poly, out: &mut Poly) {
    for n in 0..N {
        out[n] = mont_reduce(i64::from(c_hat[n]) * i64::from(v_hat[n]));
    }
    inv_ntt_tomont(out);
    for c in out.iter_mut() {
        *c = reduce32(*c);
    }
}

/// ExpandMask (Algorithm 34): y_r from SHAKE256(ρ'' ‖ IntegerToBytes(κ + r, 2)), γ1 = 2^19.
// In bounds: `b` and `c` are `chunks_exact` chunks of 5 and 2 elements.
#[allow(clippy::indexing_slicing)]
fn y_poly(rho2: &[u8; 64], nonce: u16, out: &mut Poly) {
    let mut h = Shake256::default();
    h.update(rho2);
    h.update(&nonce.to_le_bytes());
    let mut buf = [0u8; 640];
    h.finalize_xof().read(&mut buf);
    for (b, c) in buf.chunks_exact(5).zip(out.chunks_exact_mut(2)) {
        let r0 = (i32::from(b[0]) | (i32::from(b[1]) << 8) | (i32::from(b[2]) << 16)) & 0xF_FFFF;
        let r1 = ((i32::from(b[2]) >> 4) | (i32::from(b[3]) << 4) | (i32::from(b[4]) << 12)) & 0xF_FFFF;
        c[0] = GAMMA1 - r0;
        c[1] = GAMMA1 - r1;
    }
    buf.zeroize();
}

/// SampleInBall (Algorithm 29), τ = 49.
// In bounds: `buf[..8]` of 136 bytes; `pos` is reset to 0 when it reaches `buf.len()` before it is
// read, so `buf[pos]` is in bounds; `c[i]` has i < N and `c[j]` has j <= i.
#[allow(clippy::indexing_slicing)]
fn sample_in_ball(c_tilde: &[u8; LAMBDA_DIV4], c: &mut Poly) {
    let mut h = Shake256::default();
    h.update(c_tilde);
    let mut x = h.finalize_xof();
    let mut buf = [0u8; 136];
    x.read(&mut buf);
    let mut signs = u64::from_le_bytes([buf[0], buf[1], buf[2], buf[3], buf[4], buf[5], buf[6], buf[7]]);
    let mut pos = 8;
    c.fill(0);
    for i in N - TAU..N {
        let j = loop {
            if pos == buf.len() {
                x.read(&mut buf);
                pos = 0;
            }
            let j = usize::from(buf[pos]);
            pos += 1;
            if j <= i {
                break j;
            }
        };
        c[i] = c[j];
        c[j] = 1 - 2 * (signs & 1) as i32;
        signs >>= 1;
    }
}

/// Why signing attempts were rejected, counted per check (an attempt can fail several); filled
/// only by the tests' long run, never on the signing path itself.
#[cfg(test)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) struct Rejections {
    /// Attempts made.
    pub attempts: u64,
    /// ‖z‖∞ ≥ γ1 − β.
    pub z: u64,
    /// ‖LowBits(w − cs2)‖∞ ≥ γ2 − β.
    pub r0: u64,
    /// ‖ct0‖∞ ≥ γ2 (unreachable for ML-DSA-65: τ · 2^(d-1) = 200,704 < γ2).
    pub ct0: u64,
    /// More than ω hints.
    pub hints: u64,
}

/// Which of an attempt's checks failed, as bits (branch-free to compute; looked at only after the
/// attempt, by the long-run test).
const REJECT_Z: u8 = 1;
const REJECT_R0: u8 = 2;
const REJECT_CT0: u8 = 4;
const REJECT_HINTS: u8 = 8;

/// Hedged ML-DSA-65 signature (Algorithms 2 and 7) of `msg` with the empty context, by the key
/// of seed ξ, with the 32 random bytes `rnd`. Returns `None` only if the rejection loop runs
/// out of nonces (probability far below 2^-100).
#[cfg(test)]
pub(super) fn sign(xi: &[u8; 32], msg: &[u8], rnd: &[u8; 32]) -> Option<[u8; SIG_LEN]> {
    let mut sig = [0u8; SIG_LEN];
    sign_inner(xi, msg, rnd, &mut sig, &mut |_| {}).then_some(sig)
}

/// Hedged ML-DSA-65 signature into the caller's buffer (`false`, and `out` unspecified, when
/// the rejection loop ran out of nonces, as `sign` returns `None`): on a microcontroller the signature is written straight into the field that carries
/// it, instead of through two 3.3 KB return slots on the deepest stack of the firmware.
#[inline(never)]
pub(super) fn sign_into(xi: &[u8; 32], msg: &[u8], rnd: &[u8; 32], out: &mut [u8; SIG_LEN]) -> bool {
    sign_inner(xi, msg, rnd, out, &mut |_| {})
}

/// [`sign`], reporting each attempt's rejection bits to `on_attempt` (the long-run test counts
/// them; `sign` passes a closure that ignores them).
#[inline(never)]
// In bounds: the slices of `sig` end at LAMBDA_DIV4 + L · 640 < SIG_LEN; `c` and `o` are
// `chunks_exact` chunks of 2 and 5 elements.
#[allow(clippy::indexing_slicing)]
fn sign_inner(
    xi: &[u8; 32],
    msg: &[u8],
    rnd: &[u8; 32],
    sig: &mut [u8; SIG_LEN],
    on_attempt: &mut dyn FnMut(u8),
) -> bool {
    let mut key = SigningState::new(xi, msg, rnd);
    let mut att = Attempt::default();
    let mut kappa: u16 = 0;
    // The one branch on the attempt's secret-derived values is this loop's: retry or accept. How
    // many attempts a signature took is public (FIPS 204 §3.6.3); which check failed is not
    // branched on.
    let done = loop {
        if kappa > u16::MAX - L as u16 {
            break false;
        }
        let rejected = attempt(&key, kappa, &mut att);
        kappa += L as u16;
        on_attempt(rejected);
        if rejected == 0 {
            break true;
        }
    };
    if done {
        // σ = c̃ ‖ BitPack(z, γ1 - 1, γ1) ‖ HintBitPack(h): all of it is published now.
        sig[..LAMBDA_DIV4].copy_from_slice(&att.c_tilde);
        let zs = &mut sig[LAMBDA_DIV4..LAMBDA_DIV4 + L * 640];
        for (zl, out) in att.z.iter().zip(zs.chunks_exact_mut(640)) {
            for (c, o) in zl.chunks_exact(2).zip(out.chunks_exact_mut(5)) {
                let t0 = (GAMMA1 - c[0]) as u32;
                let t1 = (GAMMA1 - c[1]) as u32;
                o[0] = t0 as u8;
                o[1] = (t0 >> 8) as u8;
                o[2] = ((t0 >> 16) | (t1 << 4)) as u8;
                o[3] = (t1 >> 4) as u8;
                o[4] = (t1 >> 12) as u8;
            }
        }
        encode_hints(&att.hint, &mut sig[LAMBDA_DIV4 + L * 640..]);
    }
    att.zeroize();
    key.zeroize();
    done
}

/// What every attempt needs: NTT(s1), NTT(s2), NTT(t0), ρ, µ and ρ''.
struct SigningState {
    seeds: Seeds,
    s1_hat: [Poly; L],
    s2_hat: [Poly; K],
    t0_hat: [Poly; K],
    mu: [u8; 64],
    rho2: [u8; 64],
}

impl SigningState {
    fn new(xi: &[u8; 32], msg: &[u8], rnd: &[u8; 32]) -> SigningState {
        let mut pk = [0u8; MLDSA65_PUBLIC_KEY];
        let mut s1_hat = [[0i32; N]; L];
        let mut t0_hat = [[0i32; N]; K];
        let seeds = keygen(xi, &mut pk, &mut s1_hat, Some(&mut t0_hat));
        let mut s2_hat = [[0i32; N]; K];
        for (i, s) in s2_hat.iter_mut().enumerate() {
            s_poly(&seeds.rho_prime, (L + i) as u16, s);
            ntt(s);
        }
        // tr ← H(pk, 64); µ ← H(tr ‖ M', 64) with M' = 0 ‖ |ctx| = 0 ‖ M
        let mut tr = [0u8; 64];
        let mut h = Shake256::default();
        h.update(&pk);
        h.finalize_xof().read(&mut tr);
        let mut mu = [0u8; 64];
        let mut h = Shake256::default();
        h.update(&tr);
        h.update(&[0, 0]);
        h.update(msg);
        h.finalize_xof().read(&mut mu);
        // ρ'' ← H(K ‖ rnd ‖ µ, 64)
        let mut rho2 = [0u8; 64];
        let mut h = Shake256::default();
        h.update(&seeds.k);
        h.update(rnd);
        h.update(&mu);
        h.finalize_xof().read(&mut rho2);
        SigningState { seeds, s1_hat, s2_hat, t0_hat, mu, rho2 }
    }

    fn zeroize(&mut self) {
        self.s1_hat.zeroize();
        self.s2_hat.zeroize();
        self.t0_hat.zeroize();
        self.rho2.zeroize();
    }
}

/// One attempt's vectors. `hint[i][n]` is 1 where MakeHint sets a bit (published only once the
/// attempt is accepted).
struct Attempt {
    z: [Poly; L],
    y_hat: [Poly; L],
    w: [Poly; K],
    hint: [[u8; N]; K],
    a: Poly,
    c_hat: Poly,
    tmp: Poly,
    c_tilde: [u8; LAMBDA_DIV4],
}

impl Default for Attempt {
    fn default() -> Self {
        Attempt {
            z: [[0; N]; L],
            y_hat: [[0; N]; L],
            w: [[0; N]; K],
            hint: [[0; N]; K],
            a: [0; N],
            c_hat: [0; N],
            tmp: [0; N],
            c_tilde: [0; LAMBDA_DIV4],
        }
    }
}

impl Attempt {
    fn zeroize(&mut self) {
        self.z.zeroize();
        self.y_hat.zeroize();
        self.w.zeroize();
        self.hint.zeroize();
        self.c_hat.zeroize();
        self.tmp.zeroize();
    }
}

/// 1 if a ≥ b, else 0, for a, b in [0, 2^31) (branch free).
fn ge(a: i32, b: i32) -> u32 {
    ((b.wrapping_sub(a).wrapping_sub(1) as u32) >> 31) & 1
}

/// One signing attempt with nonce κ: fills `att` and returns the failed checks as `REJECT_*`
/// bits (0 = accepted). Straight-line on secret data: every check of every coefficient is
/// computed and OR-ed in, whatever an earlier one found, and the hints go to a fixed-size bitmap
/// instead of a list indexed by their count. The only data-dependent branches and indices are in
/// ExpandA (`a_hat`, on the public ρ) and SampleInBall (`sample_in_ball`, on c̃, which FIPS 204
/// treats as public and the signature publishes once accepted).
#[inline(never)]
// In bounds: `n < N` indexes N-entry polynomials and hint rows, `i < K` the K rows of `w`,
// `hint`, `s2_hat` and `t0_hat`; `c` is a `chunks_exact_mut(2)` chunk.
#[allow(clippy::indexing_slicing)]
fn attempt(key: &SigningState, kappa: u16, att: &mut Attempt) -> u8 {
    for (r, (y, yh)) in att.z.iter_mut().zip(att.y_hat.iter_mut()).enumerate() {
        y_poly(&key.rho2, kappa + r as u16, y);
        *yh = *y;
        ntt(yh);
    }
    // w = NTT^-1(A-hat ∘ NTT(y)), in [0, q); c̃ ← H(µ ‖ w1Encode(HighBits(w)), λ/4)
    let mut h = Shake256::default();
    h.update(&key.mu);
    for (i, wi) in att.w.iter_mut().enumerate() {
        wi.fill(0);
        for (j, yh) in att.y_hat.iter().enumerate() {
            a_hat(&key.seeds.rho, i, j, &mut att.a);
            for n in 0..N {
                wi[n] += mont_reduce(i64::from(att.a[n]) * i64::from(yh[n]));
            }
        }
        for c in wi.iter_mut() {
            *c = reduce32(*c);
        }
        inv_ntt_tomont(wi);
        let mut packed = [0u8; 128];
        for (p, c) in packed.iter_mut().zip(wi.chunks_exact_mut(2)) {
            c[0] = caddq(c[0]);
            c[1] = caddq(c[1]);
            *p = (decompose(c[0]).0 | (decompose(c[1]).0 << 4)) as u8;
        }
        h.update(&packed);
        packed.zeroize();
    }
    h.finalize_xof().read(&mut att.c_tilde);
    sample_in_ball(&att.c_tilde, &mut att.c_hat);
    ntt(&mut att.c_hat);

    // z = y + NTT^-1(c ∘ s1): reject if ‖z‖∞ ≥ γ1 - β
    let mut bad_z = 0u32;
    for (zl, s) in att.z.iter_mut().zip(key.s1_hat.iter()) {
        c_times(&att.c_hat, s, &mut att.tmp);
        for (zc, t) in zl.iter_mut().zip(att.tmp.iter()) {
            *zc = reduce32(*zc + t);
            bad_z |= ge(abs(*zc), GAMMA1 - BETA);
        }
    }
    // Per row: r = w - cs2; reject if ‖LowBits(r)‖∞ ≥ γ2 - β or ‖ct0‖∞ ≥ γ2;
    // h = MakeHint(-ct0, r + ct0) = [HighBits(r) ≠ HighBits(r + ct0)].
    let mut bad_r0 = 0u32;
    let mut bad_ct0 = 0u32;
    let mut count = 0u32;
    for i in 0..K {
        c_times(&att.c_hat, &key.s2_hat[i], &mut att.tmp);
        for n in 0..N {
            att.w[i][n] = caddq(reduce32(att.w[i][n] - att.tmp[n]));
            bad_r0 |= ge(abs(decompose(att.w[i][n]).1), GAMMA2 - BETA);
        }
        c_times(&att.c_hat, &key.t0_hat[i], &mut att.tmp);
        for n in 0..N {
            bad_ct0 |= ge(abs(att.tmp[n]), GAMMA2);
            let r1 = decompose(att.w[i][n]).0;
            let v1 = decompose(caddq(reduce32(att.w[i][n] + att.tmp[n]))).0;
            // r1, v1 in [0, 16): (r1 ^ v1) - 1 is negative exactly when they are equal.
            let differ = (((r1 ^ v1) - 1) as u32 >> 31) ^ 1;
            att.hint[i][n] = differ as u8;
            count += differ;
        }
    }
    let bad_hints = ge(count as i32, OMEGA as i32 + 1);
    (bad_z as u8 * REJECT_Z)
        | (bad_r0 as u8 * REJECT_R0)
        | (bad_ct0 as u8 * REJECT_CT0)
        | (bad_hints as u8 * REJECT_HINTS)
}

/// HintBitPack (Algorithm 20) of an accepted attempt's hint bitmap (at most ω bits set, public
/// from now on: the positions are the signature's).
#[inline(never)]
fn encode_hints(hint: &[[u8; N]; K], out: &mut [u8]) {
    out.fill(0);
    let mut count = 0usize;
    for (i, row) in hint.iter().enumerate() {
        for (n, &bit) in row.iter().enumerate() {
            if bit != 0 {
                if let Some(slot) = out.get_mut(count).filter(|_| count < OMEGA) {
                    *slot = n as u8;
                }
                count += 1;
            }
        }
        if let Some(slot) = out.get_mut(OMEGA + i) {
            *slot = count.min(OMEGA) as u8;
        }
    }
}

#[cfg(test)]
mod tests {
    //! The known-answer vectors of `tests/kat_mldsa65.rs`, run straight through this signer
    //! (the integration tests reach it through `Identity`, whose signer it is), and the long run.
    use std::path::PathBuf;
    use std::vec::Vec;

    use super::*;

    fn load(name: &str) -> serde_json::Value {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/vectors").join(name);
        serde_json::from_str(&std::fs::read_to_string(path).expect("vector file")).expect("json")
    }

    fn hex(v: &serde_json::Value) -> Vec<u8> {
        let s = v.as_str().expect("hex string");
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex")).collect()
    }

    #[test]
    fn acvp_keygen() {
        let file = load("acvp/ml_dsa_65_keygen.json");
        let mut n = 0;
        for t in file["testGroups"][0]["tests"].as_array().expect("tests") {
            let xi: [u8; 32] = hex(&t["seed"]).try_into().expect("seed");
            assert_eq!(public_key(&xi).as_slice(), hex(&t["pk"]).as_slice(), "tcId {}", t["tcId"]);
            n += 1;
        }
        std::println!("small_mldsa65 ACVP keyGen: valid {n}");
        assert!(n > 0);
    }

    #[test]
    fn wycheproof_sign_seeded() {
        let file = load("wycheproof/mldsa_65_sign_seed_test.json");
        let (mut n, mut skipped) = (0, 0);
        for g in file["testGroups"].as_array().expect("groups") {
            let Ok(xi) = <[u8; 32]>::try_from(hex(&g["privateSeed"])) else {
                skipped += g["tests"].as_array().expect("tests").len();
                continue;
            };
            for t in g["tests"].as_array().expect("tests") {
                let ctx = t.get("ctx").map(hex).unwrap_or_default();
                if t["result"] != "valid" || !ctx.is_empty() || t.get("msg").is_none() {
                    skipped += 1;
                    continue;
                }
                let rnd: [u8; 32] = t.get("rnd").map(hex).unwrap_or_else(|| std::vec![0; 32]).try_into().expect("rnd");
                let sig = sign(&xi, &hex(&t["msg"]), &rnd).expect("signs");
                assert_eq!(sig.as_slice(), hex(&t["sig"]).as_slice(), "tcId {}", t["tcId"]);
                n += 1;
            }
        }
        std::println!("small_mldsa65 Wycheproof sign (seeded): valid {n}, skipped {skipped}");
        assert!(n > 0);
    }

    /// ≥ 10,000 signatures on fresh keys and messages: every rejection check must fire at least
    /// once, and every signature must equal `ml-dsa`'s for the same randomness and verify with it.
    /// `AQM_MLDSA_LONG_RUN=N` sets the count. Outside CI:
    /// `cargo test -p aqm-core --release --lib small_mldsa65::tests::long_run -- --ignored --nocapture`
    #[test]
    #[ignore = "long run (minutes); outside CI"]
    fn long_run() {
        use ml_dsa::MlDsa65;
        use rand_chacha::ChaCha20Rng;
        use rand_core::{Rng, SeedableRng};

        let count: u64 = std::env::var("AQM_MLDSA_LONG_RUN").ok().and_then(|v| v.parse().ok()).unwrap_or(10_000);
        let seed: u64 = std::env::var("AQM_MLDSA_LONG_RUN_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or(0x5eed);
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let mut stats = Rejections::default();
        let mut max_attempts = 0u64;
        let start = std::time::Instant::now();
        let mut xi = [0u8; 32];
        for i in 0..count {
            // A new key every 16 signatures; messages of 0 to 300 bytes.
            if i % 16 == 0 {
                rng.fill_bytes(&mut xi);
            }
            let mut rnd = [0u8; 32];
            rng.fill_bytes(&mut rnd);
            let mut msg = std::vec![0u8; (rng.next_u32() % 301) as usize];
            rng.fill_bytes(&mut msg);
            let mut attempts = 0u64;
            let mut sig = [0u8; SIG_LEN];
            let signed = sign_inner(&xi, &msg, &rnd, &mut sig, &mut |bits| {
                attempts += 1;
                stats.z += u64::from(bits & REJECT_Z != 0);
                stats.r0 += u64::from(bits & REJECT_R0 != 0);
                stats.ct0 += u64::from(bits & REJECT_CT0 != 0);
                stats.hints += u64::from(bits & REJECT_HINTS != 0);
            });
            assert!(signed, "signs");
            stats.attempts += attempts;
            max_attempts = max_attempts.max(attempts);
            let sk = ml_dsa::SigningKey::<MlDsa65>::from_seed(&xi.into());
            let theirs = sk.expanded_key().sign_internal(&[&[0u8, 0u8], &msg], &rnd.into()).encode();
            assert_eq!(sig.as_slice(), theirs.as_slice(), "signature {i} differs from ml-dsa's");
            let sig = ml_dsa::Signature::<MlDsa65>::try_from(sig.as_slice()).expect("decodes");
            assert!(
                sk.expanded_key().verifying_key().verify_with_context(&msg, &[], &sig),
                "signature {i} does not verify"
            );
        }
        let report = std::format!(
            "small_mldsa65 long run: {count} signatures (seed {seed:#x}) in {:.1} s; {} attempts \
             ({:.2} per signature, at most {max_attempts}); rejections by check: z {}, r0 {}, ct0 {}, \
             hints > omega {}; every signature equals ml-dsa's and verifies with it",
            start.elapsed().as_secs_f64(),
            stats.attempts,
            stats.attempts as f64 / count as f64,
            stats.z,
            stats.r0,
            stats.ct0,
            stats.hints,
        );
        std::println!("{report}");
        assert!(stats.z > 0 && stats.r0 > 0 && stats.hints > 0, "a rejection branch was never taken: {stats:?}");
        // For ML-DSA-65 the ct0 check cannot fail: ‖c·t0‖∞ ≤ τ · 2^(d-1) = 49 · 4096 = 200,704 < γ2
        // = 261,888. It is computed anyway (FIPS 204 prescribes it).
        assert_eq!(stats.ct0, 0, "the ct0 bound is unreachable for ML-DSA-65");
    }
}
