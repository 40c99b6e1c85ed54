//! The two scorers of `../shared/tools`, re-implemented so that a grid of configurations can be
//! scored in-process: NAB (`nab_score.py`: probation, sigmoid window credit, one global threshold
//! swept per profile) and event-level precision/recall (`event_score.py`: a labelled range is
//! found when a run of flagged points overlaps it, a run overlapping none is a false positive).
//! `eval verify` checks both against the Python tools on the same outputs.

/// NAB application profile: weights of a true positive, a false negative and a false positive.
#[derive(Clone, Copy, Debug)]
#[allow(dead_code)] // printed with {:?} when debugging a profile
pub struct Profile {
    pub name: &'static str,
    pub tp: f64,
    pub fn_: f64,
    pub fp: f64,
}

pub const PROFILES: [Profile; 3] = [
    Profile {
        name: "standard",
        tp: 1.0,
        fn_: 1.0,
        fp: 0.11,
    },
    Profile {
        name: "reward_low_FP_rate",
        tp: 1.0,
        fn_: 1.0,
        fp: 0.22,
    },
    Profile {
        name: "reward_low_FN_rate",
        tp: 1.0,
        fn_: 2.0,
        fp: 0.11,
    },
];

/// g(p) = 2 / (1 + e^{5p}) − 1, clamped to −1 beyond 3 window lengths.
fn position_value(p: f64) -> f64 {
    if p > 3.0 {
        return -1.0;
    }
    2.0 / (1.0 + (5.0 * p).exp()) - 1.0
}

/// The scorable rows of one NAB file (after probation): window id (global, or −1), credit inside
/// windows, and the false-positive weight outside.
#[derive(Clone, Debug)]
pub struct NabLayout {
    pub n_prob: usize,
    pub window_id: Vec<i64>,
    pub tp_unit: Vec<f64>,
    pub fp_unit: Vec<f64>,
    /// Global ids of this file's windows with at least one scorable row.
    pub windows: Vec<i64>,
    /// All windows of the file (for the "perfect" score).
    pub n_windows: usize,
}

impl NabLayout {
    /// `spans`: (first row, last row) of each window, any order; `first_id`: global id of the
    /// first window.
    pub fn new(n: usize, spans: &[(usize, usize)], first_id: i64) -> Self {
        let mut spans = spans.to_vec();
        spans.sort();
        let max_tp = position_value(-1.0);
        let mut window_id = vec![-1i64; n];
        let mut tp_unit = vec![0.0; n];
        let mut fp_unit = vec![0.0; n];
        for (k, &(lo, hi)) in spans.iter().enumerate() {
            let width = (hi - lo + 1) as f64;
            for i in lo..=hi.min(n - 1) {
                window_id[i] = first_id + k as i64;
                tp_unit[i] = position_value(-((hi - i + 1) as f64) / width) / max_tp;
            }
        }
        let (mut prev_end, mut prev_width, mut passed) = (None::<usize>, 0usize, 0usize);
        for i in 0..n {
            while passed < spans.len() && spans[passed].1 < i {
                prev_end = Some(spans[passed].1);
                prev_width = spans[passed].1 - spans[passed].0 + 1;
                passed += 1;
            }
            if window_id[i] >= 0 {
                continue;
            }
            fp_unit[i] = match prev_end {
                None => -1.0,
                Some(e) => {
                    position_value((i - e) as f64 / (prev_width.saturating_sub(1).max(1)) as f64)
                }
            };
        }
        let probation = ((0.15 * n as f64).floor()).min(750.0);
        let n_prob = probation.ceil() as usize;
        let mut windows: Vec<i64> = window_id[n_prob..]
            .iter()
            .copied()
            .filter(|&w| w >= 0)
            .collect();
        windows.sort();
        windows.dedup();
        NabLayout {
            n_prob,
            window_id: window_id[n_prob..].to_vec(),
            tp_unit: tp_unit[n_prob..].to_vec(),
            fp_unit: fp_unit[n_prob..].to_vec(),
            windows,
            n_windows: spans.len(),
        }
    }
}

/// NAB result of a set of files under one profile.
#[derive(Clone, Copy, Debug, Default)]
#[allow(dead_code)] // raw: the unnormalised score, for debugging
pub struct NabScore {
    pub score: f64,
    pub threshold: f64,
    pub raw: f64,
    /// The raw score of flagging nothing and of finding every window at its start (additive
    /// over files, so that groups scored separately can be pooled).
    pub null: f64,
    pub perfect: f64,
}

impl NabScore {
    /// Pool scores of disjoint file sets (each with its own threshold): NAB's normalisation of
    /// the summed raw, null and perfect scores.
    pub fn pool(parts: &[NabScore]) -> f64 {
        let (raw, null, perfect) = parts.iter().fold((0.0, 0.0, 0.0), |a, p| {
            (a.0 + p.raw, a.1 + p.null, a.2 + p.perfect)
        });
        if perfect - null > 0.0 {
            100.0 * (raw - null) / (perfect - null)
        } else {
            f64::NAN
        }
    }
}

/// Score `scores[f]` (every row of file f) over `layouts`, with the threshold swept (None) or
/// fixed. Normalised as NAB does: 100 (raw − null) / (perfect − null).
pub fn nab_score(
    layouts: &[&NabLayout],
    scores: &[&[f64]],
    prof: Profile,
    fixed: Option<f64>,
) -> NabScore {
    let mut rows: Vec<(f64, i64, f64)> = Vec::new();
    let mut n_scorable = 0usize;
    let mut total_windows = 0usize;
    for (lay, sc) in layouts.iter().zip(scores) {
        n_scorable += lay.windows.len();
        total_windows += lay.n_windows;
        for (k, &w) in lay.window_id.iter().enumerate() {
            let s = sc.get(lay.n_prob + k).copied().unwrap_or(0.0);
            let s = if s.is_nan() { 0.0 } else { s };
            let v = if w >= 0 {
                lay.tp_unit[k] * prof.tp
            } else {
                lay.fp_unit[k] * prof.fp
            };
            rows.push((s, w, v));
        }
    }
    let null = -prof.fn_ * n_scorable as f64;
    let perfect = prof.tp * total_windows as f64;
    // Sort descending by score (stable), then sweep: a window's credit is the best value among
    // its firing rows.
    rows.sort_by(|a, b| b.0.total_cmp(&a.0));
    let mut best: std::collections::HashMap<i64, f64> = std::collections::HashMap::new();
    let mut running = null;
    let (mut best_total, mut best_thr) = (null, f64::INFINITY);
    let mut i = 0;
    while i < rows.len() {
        let s = rows[i].0;
        if let Some(t) = fixed {
            if s < t {
                break;
            }
        }
        while i < rows.len() && rows[i].0 == s {
            let (_, w, v) = rows[i];
            if w < 0 {
                running += v;
            } else {
                let b = best.entry(w).or_insert(-prof.fn_);
                if v > *b {
                    running += v - *b;
                    *b = v;
                }
            }
            i += 1;
        }
        if fixed.is_some() || (running > best_total && s.is_finite()) {
            best_total = running;
            best_thr = s;
        }
    }
    if fixed.is_some() {
        best_total = running;
        best_thr = fixed.unwrap_or(best_thr);
    }
    let score = if perfect - null > 0.0 {
        100.0 * (best_total - null) / (perfect - null)
    } else {
        f64::NAN
    };
    NabScore {
        score,
        threshold: best_thr,
        raw: best_total,
        null,
        perfect,
    }
}

/// Event counts of one entity: true positives, false positives, false negatives, flagged normal
/// points and normal points.
#[derive(Clone, Copy, Debug, Default)]
pub struct Events {
    pub tp: usize,
    pub fp: usize,
    pub fn_: usize,
    pub fa: usize,
    pub normal: usize,
}

impl Events {
    pub fn add(&mut self, o: &Events) {
        self.tp += o.tp;
        self.fp += o.fp;
        self.fn_ += o.fn_;
        self.fa += o.fa;
        self.normal += o.normal;
    }
    pub fn precision(&self) -> f64 {
        if self.tp + self.fp > 0 {
            self.tp as f64 / (self.tp + self.fp) as f64
        } else {
            0.0
        }
    }
    pub fn recall(&self) -> f64 {
        if self.tp + self.fn_ > 0 {
            self.tp as f64 / (self.tp + self.fn_) as f64
        } else {
            0.0
        }
    }
    pub fn f05(&self) -> f64 {
        let (p, r) = (self.precision(), self.recall());
        if p + r > 0.0 {
            1.25 * p * r / (0.25 * p + r)
        } else {
            0.0
        }
    }
    pub fn far(&self) -> f64 {
        if self.normal > 0 {
            self.fa as f64 / self.normal as f64
        } else {
            0.0
        }
    }
    pub fn line(&self) -> String {
        format!(
            "tp={:4} fp={:5} fn={:4} precision={:.3} recall={:.3} f0.5={:.3} false_alarm_points={:.4}",
            self.tp, self.fp, self.fn_, self.precision(), self.recall(), self.f05(), self.far()
        )
    }
}

/// Event scoring of one entity's test split: `flags[t]`, labelled `ranges` (ends inclusive).
pub fn events(flags: &[bool], ranges: &[(usize, usize)]) -> Events {
    let mut runs = Vec::new();
    let mut start = None;
    for (t, &f) in flags.iter().enumerate() {
        match (f, start) {
            (true, None) => start = Some(t),
            (false, Some(s)) => {
                runs.push((s, t - 1));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        runs.push((s, flags.len() - 1));
    }
    let overlaps = |(a, b): (usize, usize), (c, d): (usize, usize)| a <= d && b >= c;
    let tp = ranges
        .iter()
        .filter(|&&r| runs.iter().any(|&p| overlaps(p, r)))
        .count();
    let fp = runs
        .iter()
        .filter(|&&p| !ranges.iter().any(|&r| overlaps(p, r)))
        .count();
    let inside = |t: usize| ranges.iter().any(|&(a, b)| a <= t && t <= b);
    let fa = flags
        .iter()
        .enumerate()
        .filter(|&(t, &f)| f && !inside(t))
        .count();
    let normal = (0..flags.len()).filter(|&t| !inside(t)).count();
    Events {
        tp,
        fp,
        fn_: ranges.len() - tp,
        fa,
        normal,
    }
}
