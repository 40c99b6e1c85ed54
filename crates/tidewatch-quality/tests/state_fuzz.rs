//! Decoding model-quality states never panics: arbitrary bytes, and valid states with one byte
//! flipped or cut short, give a state or an error.
use proptest::prelude::*;
use tidewatch_quality::{Classification, Regression};

fn valid() -> Vec<Vec<u8>> {
    let mut r = Regression::default();
    let mut c = Classification::default();
    for i in 0..500 {
        r.add(i as f64 * 0.5, i as f64 * 0.49 + 1.0);
        c.add(
            if i % 3 == 0 { "a" } else { "b" },
            if i % 4 == 0 { "a" } else { "b" },
        );
    }
    vec![r.to_bytes(), c.to_bytes()]
}

fn decode(b: &[u8]) {
    let _ = Regression::from_bytes(b);
    let _ = Classification::from_bytes(b);
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..512)) {
        decode(&b);
    }

    #[test]
    fn a_flipped_or_cut_state_never_panics(which in 0usize..2, pos in any::<prop::sample::Index>(), bit in 0u8..8) {
        let v = valid();
        let mut b = v[which].clone();
        let i = pos.index(b.len());
        decode(&b[..i]);
        b[i] ^= 1 << bit;
        decode(&b);
    }
}
