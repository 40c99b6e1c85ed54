//! Decoding drift states (reference profiles, aggregate samples) never panics: arbitrary bytes,
//! and valid states with one byte flipped or cut short, give a state or an error.
use proptest::prelude::*;
use tidewatch_drift::profile::Profile;
use tidewatch_drift::samples::Samples;

fn valid() -> Vec<Vec<u8>> {
    let nums: Vec<f64> = (0..2000).map(|i| (i as f64 * 0.37).sin() * 10.0).collect();
    let cats: Vec<String> = (0..500).map(|i| format!("c{}", i % 17)).collect();
    let mut sn = Samples::<f64>::default();
    let mut sc = Samples::<String>::default();
    for (i, v) in nums.iter().enumerate() {
        sn.add(*v, i % 2 == 0);
    }
    for (i, c) in cats.iter().enumerate() {
        sc.add(c.clone(), i % 3 == 0);
    }
    sn.add_null(true);
    vec![
        Profile::from_numeric(&nums).to_bytes(),
        Profile::from_categorical(&cats).to_bytes(),
        sn.to_bytes(),
        sc.to_bytes(),
    ]
}

fn decode(b: &[u8]) {
    let _ = Profile::from_bytes(b);
    let _ = Samples::<f64>::from_bytes(b);
    let _ = Samples::<String>::from_bytes(b);
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..512)) {
        decode(&b);
    }

    #[test]
    fn a_flipped_or_cut_state_never_panics(which in 0usize..4, pos in any::<prop::sample::Index>(), bit in 0u8..8) {
        let v = valid();
        let mut b = v[which].clone();
        let i = pos.index(b.len());
        decode(&b[..i]);
        b[i] ^= 1 << bit;
        decode(&b);
    }
}
