//! Pinned-identity cases: the first identity for a user id is kept, another one is refused,
//! trust only rises ([`crate::pins::decide`] applied in one atomic step).

use super::fixtures::{expect_core, fixtures, must};
use crate::Error;
use crate::pins::Trust;
use crate::store::PinStore;

/// The first identity offered for a user id is pinned, byte for byte, at the trust it came with.
pub fn pin_first_identity<S: PinStore>(s: &S) {
    let bob = fixtures().bob.identity.public();
    assert_eq!(must(s.pinned(&bob.user_id), "pinned"), None);
    let pin = must(s.pin_identity(bob, Trust::Directory), "pin");
    assert_eq!((&pin.identity, pin.trust), (bob, Trust::Directory));
    assert_eq!(must(s.pinned(&bob.user_id), "pinned"), Some(pin));
    assert_eq!(must(s.pinned(&fixtures().carol.id()), "pinned"), None);
}

/// Another identity under a pinned user id is `IdentityChanged` and never replaces the pin,
/// whatever trust it is offered with; a weak Ed25519 key is never pinned.
pub fn pin_change_refused<S: PinStore>(s: &S) {
    let f = fixtures();
    let bob = f.bob.identity.public();
    let pin = must(s.pin_identity(bob, Trust::Exchanged), "pin");
    let mut impostor = f.carol.identity.public().clone();
    impostor.user_id = bob.user_id;
    for trust in [Trust::Directory, Trust::Exchanged, Trust::Verified] {
        expect_core(s.pin_identity(&impostor, trust), Error::IdentityChanged, "another identity");
    }
    assert_eq!(must(s.pinned(&bob.user_id), "pinned"), Some(pin));
    let mut weak = f.dave.identity.public().clone();
    weak.ed25519 = [0; 32];
    weak.ed25519[0] = 1;
    expect_core(s.pin_identity(&weak, Trust::Exchanged), Error::WeakIdentityKey, "small-order key");
    assert_eq!(must(s.pinned(&weak.user_id), "pinned"), None);
}

/// Trust only rises: directory → exchanged → verified; offering a lower trust keeps the higher.
pub fn pin_trust_only_rises<S: PinStore>(s: &S) {
    let bob = fixtures().bob.identity.public();
    must(s.pin_identity(bob, Trust::Directory), "pin");
    assert_eq!(must(s.pin_identity(bob, Trust::Verified), "verify").trust, Trust::Verified);
    assert_eq!(must(s.pin_identity(bob, Trust::Directory), "again").trust, Trust::Verified);
    assert_eq!(must(s.pinned(&bob.user_id), "pinned").map(|p| p.trust), Some(Trust::Verified));
}
