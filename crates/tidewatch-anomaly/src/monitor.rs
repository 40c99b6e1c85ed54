//! Per-series state of a real-time monitor: the detector, and the episode it may have open.
//!
//! An episode opens at a point whose score reaches the threshold (`is_anomaly`), extends while
//! points stay outside the normal band, and closes after `CLOSE_AFTER` consecutive normal points.
//! Late rows (older than the newest point seen) are scored against the current state but not
//! learned from, so the state stays causal; they are counted, never dropped.

use serde::{Deserialize, Serialize};

use crate::{AnomalyError, Kind, Model, Scored};

/// Normal points in a row that close an open episode.
pub const CLOSE_AFTER: u32 = 3;

/// One anomaly episode, as the extension writes it to `tidewatch.anomalies`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Episode {
    pub started_at: i64,
    pub ended_at: i64,
    pub peak_at: i64,
    pub peak_value: f64,
    pub expected: f64,
    pub lower: f64,
    pub upper: f64,
    /// Highest score seen in the episode.
    pub score: f64,
    /// Deviation at the peak, in robust sigmas.
    pub sigma: f64,
    pub kind: Kind,
    /// Points in the episode.
    pub points: u64,
    /// The episode was already open before this batch (update it rather than insert).
    #[serde(default)]
    pub existing: bool,
    /// The episode is still open after this batch.
    #[serde(default)]
    pub open: bool,
}

/// Severity cut-offs of [`Episode::severity`], in sigmas at the episode's peak (issue 16: a
/// deviation of 10 robust sigmas or more is critical).
pub const CRITICAL_SIGMA: f64 = 10.0;
pub const WARNING_SIGMA: f64 = 6.0;
/// The same for an episode of at least [`SUSTAINED_POINTS`] points.
pub const CRITICAL_SUSTAINED_SIGMA: f64 = 6.0;
pub const WARNING_SUSTAINED_SIGMA: f64 = 4.0;
pub const SUSTAINED_POINTS: u64 = 5;

impl Episode {
    fn start(ts: i64, value: f64, s: &Scored) -> Self {
        Episode {
            started_at: ts,
            ended_at: ts,
            peak_at: ts,
            peak_value: value,
            expected: s.expected,
            lower: s.lower,
            upper: s.upper,
            score: s.score,
            sigma: s.sigma,
            kind: s.kind.unwrap_or(if s.sigma >= 0.0 {
                Kind::Spike
            } else {
                Kind::Dip
            }),
            points: 1,
            existing: false,
            open: true,
        }
    }

    fn extend(&mut self, ts: i64, value: f64, s: &Scored) {
        self.ended_at = self.ended_at.max(ts);
        self.points += 1;
        self.score = self.score.max(s.score);
        if s.sigma.abs() > self.sigma.abs() {
            self.peak_at = ts;
            self.peak_value = value;
            self.sigma = s.sigma;
            self.expected = s.expected;
            self.lower = s.lower;
            self.upper = s.upper;
            // A spike whose largest excursion turns out below the band is a dip, and the other
            // way round: the episode's direction is its peak's (other kinds keep theirs).
            self.kind = match self.kind {
                Kind::Spike if s.sigma < 0.0 => Kind::Dip,
                Kind::Dip if s.sigma > 0.0 => Kind::Spike,
                k => k,
            };
        }
    }

    /// info / warning / critical from how far outside the normal band the episode went, in
    /// standardised (robust, for `auto`) sigmas at its peak, and for how many points:
    ///
    /// | severity | peak \|σ\| | or, sustained over ≥ 5 points |
    /// |---|---|---|
    /// | critical | ≥ 10 | ≥ 6 |
    /// | warning  | ≥ 6  | ≥ 4 |
    /// | info     | otherwise | |
    ///
    /// So a severity says the same whatever the detector's score calibration: a 97σ spike is
    /// critical, a 9σ one a warning, a 4σ blip info (docs/anomaly.md, "Severity").
    pub fn severity(&self) -> &'static str {
        let z = if self.sigma.is_finite() {
            self.sigma.abs()
        } else {
            0.0
        };
        let sustained = self.points >= SUSTAINED_POINTS;
        if z >= CRITICAL_SIGMA || (sustained && z >= CRITICAL_SUSTAINED_SIGMA) {
            "critical"
        } else if z >= WARNING_SIGMA || (sustained && z >= WARNING_SUSTAINED_SIGMA) {
            "warning"
        } else {
            "info"
        }
    }
}

/// Episode bookkeeping of one series, whatever judges its points: the episode it may have open,
/// the newest time learned, spacing and counts. Serialised inside [`MonitorState`] right after
/// its model, field by field as they were when they lived there (postcard writes a nested struct
/// as its fields in order), so states written before keep their bytes.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Tracker {
    open: Option<Episode>,
    normal_run: u32,
    /// Newest timestamp learned from.
    pub last_ts: Option<i64>,
    /// Exponentially weighted spacing between points, in µs (0 until two points).
    pub spacing_us: f64,
    pub n: u64,
    pub late: u64,
    pub skipped: u64,
    /// The newest point learned from, with its verdict: `auto` can raise a spike's alarm on the
    /// point after it, and the episode then starts at the spike.
    #[serde(default)]
    prev: Option<(i64, f64, Scored)>,
}

/// Everything a monitor keeps per series.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MonitorState {
    model: Model,
    pub track: Tracker,
}

/// What one batch did to a series.
#[derive(Clone, Debug, Default)]
pub struct StepOutcome {
    /// Episodes opened, extended or closed by the batch, in time order.
    pub episodes: Vec<Episode>,
    pub scored: u64,
    pub late: u64,
    pub skipped: u64,
}

impl Tracker {
    /// Apply a batch of points (any order; sorted here by time, stable for duplicates).
    /// `judge(ts, point, late)` gives the value an episode reports for the point and its
    /// verdict, learning from the point unless it is late; `None` skips it (nothing finite).
    pub fn step<T>(
        &mut self,
        mut points: Vec<(i64, T)>,
        mut judge: impl FnMut(i64, &T, bool) -> Option<(f64, Scored)>,
    ) -> StepOutcome {
        points.sort_by_key(|p| p.0);
        let mut out = StepOutcome::default();
        let mut touched: Vec<Episode> = Vec::new();
        if let Some(e) = self.open.as_mut() {
            e.existing = true;
        }
        let had_open = self.open.is_some();
        let mut open_touched = false;
        for (ts, p) in points {
            let late = self.last_ts.is_some_and(|last| ts < last);
            let Some((v, s)) = judge(ts, &p, late) else {
                out.skipped += 1;
                self.skipped += 1;
                continue;
            };
            if late {
                out.late += 1;
                self.late += 1;
            } else {
                if let Some(last) = self.last_ts {
                    let dt = (ts - last) as f64;
                    self.spacing_us = if self.spacing_us == 0.0 {
                        dt
                    } else {
                        0.9 * self.spacing_us + 0.1 * dt
                    };
                }
                self.last_ts = Some(ts);
                self.n += 1;
            }
            out.scored += 1;
            let prev = self.prev;
            if !late {
                self.prev = Some((ts, v, s));
            }
            match self.open.as_mut() {
                Some(e) if s.outside || s.is_anomaly => {
                    e.extend(ts, v, &s);
                    self.normal_run = 0;
                    open_touched = true;
                }
                Some(_) => {
                    self.normal_run += 1;
                    open_touched = true;
                    if self.normal_run >= CLOSE_AFTER {
                        if let Some(mut e) = self.open.take() {
                            e.open = false;
                            touched.push(e);
                        }
                        self.normal_run = 0;
                    }
                }
                None if s.is_anomaly => {
                    let mut e = match prev {
                        Some((pt, pv, ps))
                            if !late && ps.outside && ps.sigma.abs() > s.sigma.abs() =>
                        {
                            let mut e = Episode::start(pt, pv, &ps);
                            e.extend(ts, v, &s);
                            e
                        }
                        _ => Episode::start(ts, v, &s),
                    };
                    e.score = e.score.max(s.score);
                    self.open = Some(e);
                    self.normal_run = 0;
                    open_touched = true;
                }
                None => {}
            }
        }
        if let Some(e) = &self.open {
            if open_touched || !had_open {
                touched.push(e.clone());
            }
        }
        out.episodes = touched;
        out
    }

    /// The open episode, if any.
    pub fn open_episode(&self) -> Option<&Episode> {
        self.open.as_ref()
    }
}

impl MonitorState {
    pub fn new(method: &str, params: &serde_json::Value) -> Result<Self, AnomalyError> {
        Ok(MonitorState {
            model: Model::new(method, params)?,
            track: Tracker::default(),
        })
    }

    /// Score a batch of points (any order; sorted here by time, stable for duplicates). Late
    /// points are scored against the current state, not learned from.
    pub fn step(&mut self, points: Vec<(i64, f64)>) -> StepOutcome {
        let model = &mut self.model;
        self.track.step(points, |ts, &v, late| {
            if !v.is_finite() {
                None
            } else if late {
                Some((v, model.score(ts, v)))
            } else {
                Some((v, model.update(ts, v)))
            }
        })
    }

    /// Layout: the model's version byte, then postcard (compact, keeps NaN and ±inf exactly).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = vec![crate::STATE_VERSION];
        match postcard::to_allocvec(self) {
            Ok(b) => out.extend_from_slice(&b),
            Err(_) => out.clear(),
        }
        out
    }

    pub fn from_bytes(b: &[u8]) -> Result<Self, AnomalyError> {
        let rest = crate::model::state_payload(b)?;
        let st: MonitorState =
            postcard::from_bytes(rest).map_err(|e| AnomalyError::CorruptState(e.to_string()))?;
        st.model.check()?;
        Ok(st)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn episode(sigma: f64, points: u64, score: f64) -> Episode {
        Episode {
            started_at: 0,
            ended_at: points as i64 - 1,
            peak_at: 0,
            peak_value: sigma,
            expected: 0.0,
            lower: -1.0,
            upper: 1.0,
            score,
            sigma,
            kind: Kind::Spike,
            points,
            existing: false,
            open: false,
        }
    }

    #[test]
    fn severity_follows_the_deviation_and_its_duration_not_the_score() {
        // (peak sigma, points, expected): the cut-offs of the table in Episode::severity, both
        // signs, and scores that disagree with the deviation on purpose.
        let cases = [
            (97.0, 1, "critical"),
            (-29.0, 1, "critical"),
            (12.0, 1, "critical"),
            (10.0, 1, "critical"),
            (-10.0, 1, "critical"),
            (9.9, 1, "warning"),
            (9.3, 1, "warning"),
            (6.0, 1, "warning"),
            (5.9, 1, "info"),
            (4.4, 1, "info"),
            (6.0, 5, "critical"),
            (-6.5, 7, "critical"),
            (5.9, 5, "warning"),
            (4.0, 5, "warning"),
            (4.0, 4, "info"),
            (3.9, 50, "info"),
            (f64::NAN, 10, "info"),
        ];
        for (sigma, points, want) in cases {
            for score in [0.0, 0.5, 0.99] {
                assert_eq!(
                    episode(sigma, points, score).severity(),
                    want,
                    "sigma {sigma}, {points} points, score {score}"
                );
            }
        }
    }

    fn noisy(n: usize) -> Vec<(i64, f64)> {
        (0..n)
            .map(|i| (i as i64 * 1_000_000, 10.0 + ((i * 7919) % 13) as f64 * 0.1))
            .collect()
    }

    #[test]
    fn one_spike_opens_and_closes_one_episode() {
        let mut st =
            MonitorState::new("robust", &serde_json::json!({})).unwrap_or_else(|e| panic!("{e}"));
        let mut pts = noisy(200);
        pts[150].1 = 100.0;
        let out = st.step(pts);
        assert_eq!(out.episodes.len(), 1, "{:?}", out.episodes);
        let e = &out.episodes[0];
        assert_eq!(e.peak_at, 150_000_000);
        assert!(!e.open && !e.existing);
        assert_eq!(e.kind, Kind::Spike);
    }

    #[test]
    fn auto_episode_starts_and_peaks_at_the_spike() {
        let mut st =
            MonitorState::new("auto", &serde_json::json!({})).unwrap_or_else(|e| panic!("{e}"));
        // Deterministic pseudo-noise (a Weyl sequence), then one spike.
        let mut x: u64 = 42;
        let mut pts: Vec<(i64, f64)> = (0..2000)
            .map(|i| {
                // Knuth's MMIX LCG: uniform noise in [0, 1).
                x = x
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                (
                    i as i64 * 60_000_000,
                    10.0 + (x >> 11) as f64 / (1u64 << 53) as f64,
                )
            })
            .collect();
        pts[1500].1 = 30.0;
        let out = st.step(pts);
        let spikes: Vec<_> = out
            .episodes
            .iter()
            .filter(|e| e.peak_at == 1500 * 60_000_000)
            .collect();
        assert_eq!(spikes.len(), 1, "{:?}", out.episodes);
        assert_eq!(spikes[0].started_at, 1500 * 60_000_000);
        assert_eq!(spikes[0].peak_value, 30.0);
    }

    fn verdict(sigma: f64, anomaly: bool, kind: Option<Kind>) -> Scored {
        Scored {
            expected: 10.0,
            lower: 9.0,
            upper: 11.0,
            score: if anomaly { 0.9 } else { 0.0 },
            sigma,
            is_anomaly: anomaly,
            outside: sigma.abs() >= 3.0,
            kind,
        }
    }

    #[test]
    fn an_episode_is_a_spike_or_a_dip_by_its_peak() {
        // (sigma, alarm, kind) per point: an excursion that opens upwards (+4σ) and peaks
        // downwards (−13σ) is a dip; one that opens downwards and peaks upwards a spike; a level
        // shift keeps its kind whichever way its peak goes. The truth is the sign of the
        // largest |σ| of each episode, read off the input by hand.
        type Point = (f64, bool, Option<Kind>);
        let runs: [(&[Point], Kind); 3] = [
            (
                &[
                    (4.0, true, Some(Kind::Spike)),
                    (5.0, false, Some(Kind::Spike)),
                    (-13.0, true, Some(Kind::Dip)),
                    (-4.0, false, Some(Kind::Dip)),
                ],
                Kind::Dip,
            ),
            (
                &[
                    (-6.0, true, Some(Kind::Dip)),
                    (9.0, true, Some(Kind::Spike)),
                ],
                Kind::Spike,
            ),
            (
                &[
                    (5.0, true, Some(Kind::LevelShift)),
                    (-8.0, false, Some(Kind::Dip)),
                ],
                Kind::LevelShift,
            ),
        ];
        for (run, want) in runs {
            let mut t = Tracker::default();
            let pts: Vec<(i64, Scored)> = run
                .iter()
                .enumerate()
                .map(|(i, &(z, a, k))| (i as i64, verdict(z, a, k)))
                .chain((0..3).map(|i| (100 + i, verdict(0.0, false, None))))
                .collect();
            let out = t.step(pts, |_, s, _| Some((s.expected + s.sigma, *s)));
            assert_eq!(out.episodes.len(), 1, "{:?}", out.episodes);
            let e = &out.episodes[0];
            assert_eq!(e.kind, want, "{run:?}");
            let peak = run
                .iter()
                .map(|r| r.0)
                .fold(0.0f64, |m, z| if z.abs() > m.abs() { z } else { m });
            assert_eq!(e.sigma, peak, "{run:?}");
        }
    }

    #[test]
    fn episode_spanning_batches_is_marked_existing() {
        let mut st =
            MonitorState::new("robust", &serde_json::json!({})).unwrap_or_else(|e| panic!("{e}"));
        let mut pts = noisy(100);
        pts[99].1 = 100.0;
        let first = st.step(pts);
        assert_eq!(first.episodes.len(), 1);
        assert!(first.episodes[0].open && !first.episodes[0].existing);
        let next: Vec<(i64, f64)> = (100..110).map(|i| (i * 1_000_000, 10.3)).collect();
        let second = st.step(next);
        assert_eq!(second.episodes.len(), 1);
        assert!(second.episodes[0].existing && !second.episodes[0].open);
        // Round trip keeps the state.
        let back = MonitorState::from_bytes(&st.to_bytes()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back.track.n, 110);
    }

    #[test]
    fn monitor_state_bytes_keep_the_layout_of_before_the_tracker() {
        // States written before Tracker existed: version byte, then postcard of the fields in
        // this order. Postcard writes a nested struct as its fields, so nothing moved.
        let mut st =
            MonitorState::new("auto", &serde_json::json!({})).unwrap_or_else(|e| panic!("{e}"));
        let mut pts = noisy(300);
        pts[299].1 = 1e3;
        st.step(pts);
        assert!(st.track.open.is_some());
        let t = &st.track;
        let old = (
            &st.model,
            &t.open,
            t.normal_run,
            t.last_ts,
            t.spacing_us,
            t.n,
            t.late,
            t.skipped,
            &t.prev,
        );
        let mut want = vec![crate::STATE_VERSION];
        want.extend(postcard::to_allocvec(&old).unwrap_or_else(|e| panic!("{e}")));
        assert_eq!(st.to_bytes(), want);
    }

    #[test]
    fn late_and_non_finite_points_are_counted_not_learned() {
        let mut st =
            MonitorState::new("ewma", &serde_json::json!({})).unwrap_or_else(|e| panic!("{e}"));
        st.step(noisy(50));
        let out = st.step(vec![
            (10, 10.0),
            (60_000_000, f64::NAN),
            (61_000_000, f64::INFINITY),
        ]);
        assert_eq!((out.late, out.skipped, out.scored), (1, 2, 1));
        assert_eq!(st.track.n, 50);
        assert_eq!(st.track.last_ts, Some(49_000_000));
    }
}
