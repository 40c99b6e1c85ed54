//! Serialized states carry a format version: this build reads its own and, for every method
//! whose encoding did not change, the previous one (Tidewatch 0.1.0 wrote version 3); an `auto`
//! state of version 3 is refused with a clear error, never misread; anything else is refused as
//! corrupt.
use tidewatch_anomaly::monitor::MonitorState;
use tidewatch_anomaly::{AnomalyError, Model, STATE_VERSION};

fn trained(method: &str) -> Model {
    let mut m = Model::new(method, &serde_json::json!({})).expect("a detector");
    for i in 0..500i64 {
        m.update(i * 60_000_000, (i as f64 / 10.0).sin());
    }
    m
}

fn as_version(mut b: Vec<u8>, v: u8) -> Vec<u8> {
    b[0] = v;
    b
}

#[test]
fn version_3_states_of_unchanged_methods_read_as_they_were_written() {
    assert_eq!(STATE_VERSION, 4);
    for method in ["robust", "ewma", "seasonal", "changepoint", "iforest"] {
        let m = trained(method);
        let now = m.to_bytes();
        let old = as_version(now.clone(), 3);
        let back = Model::from_bytes(&old).unwrap_or_else(|e| panic!("{method}: {e}"));
        // Same detector: re-encoded identically, and scores the next point identically.
        assert_eq!(back.to_bytes(), now, "{method}");
        let (a, b) = (
            m.score(500 * 60_000_000, 3.0),
            back.score(500 * 60_000_000, 3.0),
        );
        assert_eq!(format!("{a:?}"), format!("{b:?}"), "{method}");
    }
}

#[test]
fn a_version_3_auto_state_is_refused_with_a_clear_error() {
    let old = as_version(trained("auto").to_bytes(), 3);
    match Model::from_bytes(&old) {
        Err(e @ AnomalyError::OldState { version: 3, .. }) => {
            assert!(e.to_string().contains("auto"), "{e}");
            assert!(e.hint().contains("train_detector"), "{}", e.hint());
        }
        other => panic!("expected OldState, got {other:?}"),
    }
}

#[test]
fn other_versions_and_garbage_are_refused_as_corrupt() {
    let b = trained("ewma").to_bytes();
    for v in [0u8, 1, 2, 5, 255] {
        assert!(
            matches!(
                Model::from_bytes(&as_version(b.clone(), v)),
                Err(AnomalyError::CorruptState(_))
            ),
            "{v}"
        );
    }
    assert!(matches!(
        Model::from_bytes(&[]),
        Err(AnomalyError::CorruptState(_))
    ));
    assert!(Model::from_bytes(&b[..b.len() / 2]).is_err());
}

#[test]
fn monitor_states_follow_the_same_rule() {
    for (method, readable) in [("ewma", true), ("robust", true), ("auto", false)] {
        let mut st = MonitorState::new(method, &serde_json::json!({})).unwrap();
        st.step(
            (0..300i64)
                .map(|i| (i * 60_000_000, (i as f64 / 7.0).cos()))
                .collect(),
        );
        let now = st.to_bytes();
        let old = as_version(now.clone(), 3);
        match MonitorState::from_bytes(&old) {
            Ok(back) => {
                assert!(readable, "{method}: a version 3 auto state was read");
                assert_eq!(back.to_bytes(), now, "{method}");
            }
            Err(e) => {
                assert!(!readable, "{method}: {e}");
                assert!(
                    matches!(e, AnomalyError::OldState { version: 3, .. }),
                    "{e:?}"
                );
            }
        }
    }
}
