//! Decoding a serialized state never panics, whatever the bytes: arbitrary bytes, and valid
//! states of every method with one byte flipped or cut short, give a state or an error.
//! CI runs proptest's default case count; `PROPTEST_CASES=100000` for the long run
//! (benches/RESULTS.md, "Bad input").
use proptest::prelude::*;
use tidewatch_anomaly::device;
use tidewatch_anomaly::monitor::MonitorState;
use tidewatch_anomaly::Model;

const METHODS: [&str; 6] = [
    "auto",
    "robust",
    "ewma",
    "seasonal",
    "changepoint",
    "iforest",
];

/// Valid states of every method (model, monitor state), made once.
fn states() -> &'static [(Vec<u8>, Vec<u8>)] {
    static STATES: std::sync::OnceLock<Vec<(Vec<u8>, Vec<u8>)>> = std::sync::OnceLock::new();
    STATES.get_or_init(|| {
        METHODS
            .iter()
            .map(|method| {
                let mut m = Model::new(method, &serde_json::json!({})).expect("a detector");
                let mut st =
                    MonitorState::new(method, &serde_json::json!({})).expect("a monitor state");
                let pts: Vec<(i64, f64)> = (0..300i64)
                    .map(|i| {
                        (
                            i * 60_000_000,
                            (i as f64 / 9.0).sin() + if i == 250 { 9.0 } else { 0.0 },
                        )
                    })
                    .collect();
                for &(t, v) in &pts {
                    m.update(t, v);
                }
                st.step(pts);
                (m.to_bytes(), st.to_bytes())
            })
            .collect()
    })
}

/// A valid trained device model (3 sensors), made once.
fn device_state() -> &'static Vec<u8> {
    static STATE: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    STATE.get_or_init(|| {
        let cfg = device::device_config(&serde_json::json!({})).expect("defaults");
        let mut m = tidewatch_anomaly::auto::MultiAuto::new(cfg, 3);
        for i in 0..300i64 {
            let x = (i as f64 / 9.0).sin();
            m.update(
                i * 60_000_000,
                &[x, 2.0 * x, if i == 250 { 9.0 } else { 0.1 * x }],
            );
        }
        device::device_to_bytes(&m)
    })
}

/// A device monitor's state (3 sensors, an episode open), made once.
fn device_monitor_state() -> &'static Vec<u8> {
    static STATE: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    STATE.get_or_init(|| {
        let mut st =
            device::DeviceMonitorState::new(&serde_json::json!({}), 3).expect("a device monitor");
        let rows = (0..300i64)
            .map(|i| {
                let x = (i as f64 / 9.0).sin();
                let spike = if i >= 298 { 9.0 } else { 0.1 * x };
                (i * 60_000_000, vec![x, 2.0 * x, spike])
            })
            .collect();
        st.step(rows);
        st.to_bytes()
    })
}

fn decode(b: &[u8]) {
    // Devices: a model or monitor state that decodes must also score a row without panicking.
    if let Ok(mut m) = device::device_from_bytes(b) {
        let _ = m.update(1, &[1.0, 2.0, 3.0]);
    }
    if let Ok(mut st) = device::DeviceMonitorState::from_bytes(b) {
        let width = st.sensors();
        let _ = st.step(vec![
            (1, vec![1.0; width]),
            (i64::MAX, vec![f64::NAN; width]),
        ]);
    }
    let _ = device::DeviceBatch::decode(b);
    if let Ok(p) = device::DevicePoints::parse(b) {
        let _ = p.iter().count();
    }
    let _ = Model::from_bytes(b);
    let _ = MonitorState::from_bytes(b);
    // The aggregate's state and result (crate::formats).
    let _ = tidewatch_anomaly::formats::Batch::decode(b);
    if let Ok(p) = tidewatch_anomaly::formats::ScoredPoints::parse(b) {
        let _ = p.iter().count();
    }
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..512)) {
        decode(&b);
    }

    #[test]
    fn a_flipped_byte_never_panics(which in 0usize..6, pos in any::<prop::sample::Index>(), bit in 0u8..8) {
        let (model, monitor) = &states()[which];
        for s in [model, monitor] {
            let mut b = s.clone();
            let i = pos.index(b.len());
            b[i] ^= 1 << bit;
            decode(&b);
        }
    }

    #[test]
    fn a_flipped_device_byte_never_panics(pos in any::<prop::sample::Index>(), bit in 0u8..8) {
        let mut b = device_state().clone();
        let i = pos.index(b.len());
        b[i] ^= 1 << bit;
        decode(&b);
    }

    #[test]
    fn a_flipped_device_monitor_byte_never_panics(pos in any::<prop::sample::Index>(), bit in 0u8..8) {
        let mut b = device_monitor_state().clone();
        let i = pos.index(b.len());
        b[i] ^= 1 << bit;
        decode(&b);
    }

    #[test]
    fn a_truncated_device_monitor_is_refused(cut in any::<prop::sample::Index>()) {
        let s = device_monitor_state();
        prop_assert!(device::DeviceMonitorState::from_bytes(&s[..cut.index(s.len())]).is_err());
    }

    #[test]
    fn a_truncated_device_is_refused(cut in any::<prop::sample::Index>()) {
        let s = device_state();
        prop_assert!(device::device_from_bytes(&s[..cut.index(s.len())]).is_err());
    }

    #[test]
    fn a_truncated_state_never_panics_and_is_refused(which in 0usize..6, cut in any::<prop::sample::Index>()) {
        let (model, monitor) = &states()[which];
        let m = &model[..cut.index(model.len())];
        prop_assert!(Model::from_bytes(m).is_err());
        let s = &monitor[..cut.index(monitor.len())];
        let _ = MonitorState::from_bytes(s);
    }
}

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>().prop_map(serde_json::Value::from),
        prop_oneof![
            Just(1e308),
            Just(-1e308),
            Just(0.0),
            Just(-0.0),
            Just(1e-320)
        ]
        .prop_map(serde_json::Value::from),
        ".{0,12}".prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::from),
            proptest::collection::btree_map(".{0,8}", inner, 0..6)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    /// Params parsing: any JSON, with the real parameter names or not, builds a detector or
    /// gives an error; the detector then scores without panicking.
    #[test]
    fn any_params_never_panic(
        which in 0usize..6,
        keys in proptest::collection::vec(prop::sample::select(tidewatch_anomaly::Params::KEYS.to_vec()), 0..4),
        values in proptest::collection::vec(json_value(), 0..4),
        extra in json_value(),
    ) {
        let mut obj = serde_json::Map::new();
        for (k, v) in keys.iter().zip(values) {
            obj.insert(k.to_string(), v);
        }
        for params in [serde_json::Value::Object(obj), extra] {
            if let Ok(mut m) = Model::new(METHODS[which], &params) {
                for i in 0..50i64 {
                    m.update(i * 60_000_000, (i % 7) as f64);
                }
                let _ = m.score(50 * 60_000_000, 1e9);
            }
        }
    }
}
