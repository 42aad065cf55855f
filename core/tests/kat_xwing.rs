//! X-Wing (draft-connolly-cfrg-xwing-kem-06), the GOLD tier, through `aqm_core::crypto`: the
//! public key from the 32-byte seed, encapsulation with the vector's 64-byte `eseed` fed through a
//! fixed RNG, and decapsulation.

mod kat_common;

use aqm_core::Tier;
use aqm_core::crypto::{SecretSeed, decapsulate, encapsulate, public_key_from_seed};
use kat_common::{Counts, FixedRng, field, load};

#[test]
fn xwing_draft06() {
    let file = load("x-wing/test-vectors.json");
    let mut counts = Counts::new("X-Wing draft-06 via public_key_from_seed / encapsulate / decapsulate");
    for (i, t) in file.as_array().expect("a list of vectors").iter().enumerate() {
        let seed = field(t, "seed");
        assert_eq!(seed, field(t, "sk"), "vector {i}: the draft-06 secret key is the seed");
        let seed = SecretSeed::from_slice(&seed).expect("32-byte seed");
        let pk = public_key_from_seed(Tier::Gold, &seed).expect("derives");
        assert_eq!(pk.as_slice(), field(t, "pk").as_slice(), "vector {i}: pk");

        let mut rng = FixedRng::new(&field(t, "eseed"));
        let (ct, ss) = encapsulate(Tier::Gold, &pk, &mut rng).expect("encapsulates");
        assert!(rng.is_drained(), "vector {i}: eseed is 64 bytes");
        assert_eq!(ct.as_slice(), field(t, "ct").as_slice(), "vector {i}: ct");
        assert_eq!(ss.as_bytes().as_slice(), field(t, "ss").as_slice(), "vector {i}: ss");

        let ss2 = decapsulate(Tier::Gold, &seed, &field(t, "ct")).expect("decapsulates");
        assert_eq!(ss2.as_bytes().as_slice(), field(t, "ss").as_slice(), "vector {i}: decaps ss");
        counts.ran("valid");
    }
    counts.finish(&["valid"]);
}
