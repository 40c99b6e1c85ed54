//! Placement of anomalies on a regular time grid: the range after the
//! warm-up is cut into equal slots, one anomaly per slot, with a margin on
//! both sides so anomalies of one series never touch.

use crate::rng::Xoshiro256pp;

/// Fraction of the time range kept free of anomalies (training window).
pub const WARMUP_FRACTION: f64 = 0.15;

/// First step index after the warm-up.
pub fn warmup_ticks(ticks: u64) -> u64 {
    (ticks as f64 * WARMUP_FRACTION).ceil() as u64
}

/// Slot layout for `per_series` anomalies in `ticks` steps.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Slots {
    first: u64,
    slot_len: u64,
    margin: u64,
    /// Anomalies per series that fit (may be fewer than requested).
    pub count: u64,
}

impl Slots {
    pub(crate) fn new(ticks: u64, requested: u64) -> Self {
        let first = warmup_ticks(ticks);
        let avail = ticks.saturating_sub(first);
        // Each slot needs room for a margin on both sides and one point.
        let count = requested.min(avail / 4);
        let slot_len = avail.checked_div(count).unwrap_or(0);
        Self {
            first,
            slot_len,
            margin: (slot_len / 20).max(1),
            count,
        }
    }

    /// Longest anomaly that fits in a slot.
    pub(crate) fn max_len(&self) -> u64 {
        self.slot_len.saturating_sub(2 * self.margin).max(1)
    }

    /// Places an anomaly of `want` steps (clamped to fit) in `slot`; returns
    /// `(start_idx, len)`.
    pub(crate) fn place(&self, slot: u64, want: u64, r: &mut Xoshiro256pp) -> (u64, u64) {
        let len = want.clamp(1, self.max_len());
        let slot_start = self.first + slot * self.slot_len;
        let lo = slot_start + self.margin;
        let hi = (slot_start + self.slot_len - self.margin)
            .saturating_sub(len)
            .max(lo);
        (r.int_in(lo, hi), len)
    }
}

/// Steps for a duration in seconds, at least `min`.
pub(crate) fn points(secs: f64, step: u32, min: u64) -> u64 {
    ((secs / f64::from(step)).round() as u64).max(min)
}

/// A shuffled deck of `total` items where each of `kinds` appears equally
/// often (±1).
pub(crate) fn deck<T: Copy>(kinds: &[T], total: usize, r: &mut Xoshiro256pp) -> Vec<T> {
    let mut d: Vec<T> = (0..total).map(|i| kinds[i % kinds.len()]).collect();
    r.shuffle(&mut d);
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placements_stay_in_their_slot() {
        let mut r = Xoshiro256pp::from_u64(1);
        for ticks in [10u64, 57, 1000, 362_880] {
            for req in [1u64, 3, 7, 50] {
                let s = Slots::new(ticks, req);
                let mut prev_end: Option<u64> = None;
                for slot in 0..s.count {
                    let (start, len) = s.place(slot, r.int_in(1, ticks), &mut r);
                    assert!(start >= warmup_ticks(ticks));
                    assert!(start + len <= ticks);
                    if let Some(e) = prev_end {
                        assert!(start > e + 1, "anomalies touch");
                    }
                    prev_end = Some(start + len - 1);
                }
            }
        }
    }
}
