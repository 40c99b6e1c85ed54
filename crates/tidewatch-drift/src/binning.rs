//! numpy `histogram_bin_edges(bins='sturges')` / `histogram` and Evidently's
//! `get_binned_data` (zero smoothing included).

use std::collections::BTreeMap;

/// np.histogram_bin_edges(a, 'sturges'): width = ptp/(log2(n)+1), nbins = ceil(range/width)
/// (1 if width == 0), edges = linspace(lo, hi, nbins+1) with lo==hi widened by 0.5.
pub(crate) fn sturges_edges(a: &[f64]) -> Vec<f64> {
    let amin = a.iter().copied().fold(f64::INFINITY, f64::min);
    let amax = a.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    sturges_edges_from(amin, amax, a.len())
}

/// [`sturges_edges`] from the minimum, maximum and size of the sample alone.
pub(crate) fn sturges_edges_from(amin: f64, amax: f64, len: usize) -> Vec<f64> {
    let (mut lo, mut hi) = (amin, amax);
    if lo == hi {
        lo -= 0.5;
        hi += 0.5;
    }
    let width = (amax - amin) / ((len as f64).log2() + 1.0);
    let nbins = if width != 0.0 {
        ((hi - lo) / width).ceil() as usize
    } else {
        1
    };
    let step = (hi - lo) / nbins as f64;
    let mut edges: Vec<f64> = (0..=nbins).map(|i| i as f64 * step + lo).collect();
    edges[nbins] = hi;
    edges
}

/// np.histogram(x, edges)[0]: bins [e_i, e_{i+1}), last bin closed, outside values ignored.
pub(crate) fn histogram(x: &[f64], edges: &[f64]) -> Vec<u64> {
    let nb = edges.len() - 1;
    if x.is_sorted_by(|a, b| a <= b) {
        // Sorted: bin i holds #(v < e_{i+1}) - #(v < e_i), the last one #(v <= hi) - #(v < e_last).
        let below = |e: f64| x.partition_point(|&v| v < e) as u64;
        let mut counts: Vec<u64> = edges
            .windows(2)
            .map(|w| below(w[1]) - below(w[0]))
            .collect();
        if let Some(last) = counts.last_mut() {
            *last = x.partition_point(|&v| v <= edges[nb]) as u64 - below(edges[nb - 1]);
        }
        return counts;
    }
    let (lo, hi) = (edges[0], edges[nb]);
    let mut counts = vec![0u64; nb];
    for &v in x {
        if v < lo || v > hi {
            continue;
        }
        let i = edges.partition_point(|&e| e <= v);
        let i = if i > nb { nb - 1 } else { i - 1 };
        counts[i.min(nb - 1)] += 1;
    }
    counts
}

/// np.histogram(x, edges, density=True)[0] = counts / diff(edges) / counts.sum().
pub(crate) fn density(x: &[f64], edges: &[f64]) -> Vec<f64> {
    let c = histogram(x, edges);
    let total: u64 = c.iter().sum();
    c.iter()
        .enumerate()
        .map(|(i, &k)| k as f64 / (edges[i + 1] - edges[i]) / total as f64)
        .collect()
}

/// Evidently `_fill`: zeros replaced by 0.0001, or by min_nonzero/1e6 if min_nonzero <= 0.0001.
pub(crate) fn fill_zeroes(p: &mut [f64]) {
    let m = p
        .iter()
        .copied()
        .filter(|&v| v != 0.0)
        .fold(f64::INFINITY, f64::min);
    let repl = if m <= 0.0001 { m / 1e6 } else { 0.0001 };
    for v in p.iter_mut() {
        if *v == 0.0 {
            *v = repl;
        }
    }
}

/// Category shares of `r` and `c` over the union of keys (sorted key order).
pub(crate) fn category_shares<K: Ord + Clone>(r: &[K], c: &[K]) -> (Vec<f64>, Vec<f64>) {
    let (keys, rc, cc) = category_counts(r, c);
    let _ = keys;
    let rp = rc.iter().map(|&k| k as f64 / r.len() as f64).collect();
    let cp = cc.iter().map(|&k| k as f64 / c.len() as f64).collect();
    (rp, cp)
}

/// Union of keys (sorted) with counts in each sample.
pub(crate) fn category_counts<K: Ord + Clone>(r: &[K], c: &[K]) -> (Vec<K>, Vec<u64>, Vec<u64>) {
    let mut m: BTreeMap<K, (u64, u64)> = BTreeMap::new();
    for k in r {
        m.entry(k.clone()).or_default().0 += 1;
    }
    for k in c {
        m.entry(k.clone()).or_default().1 += 1;
    }
    let keys = m.keys().cloned().collect();
    let rc = m.values().map(|v| v.0).collect();
    let cc = m.values().map(|v| v.1).collect();
    (keys, rc, cc)
}

/// Total-ordered f64 key (no NaN after cleaning; -0.0 folded into 0.0 as Python's set does).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct FKey(pub f64);
impl Eq for FKey {}
impl PartialOrd for FKey {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for FKey {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&o.0)
    }
}
pub(crate) fn fkeys(x: &[f64]) -> Vec<FKey> {
    x.iter()
        .map(|&v| FKey(if v == 0.0 { 0.0 } else { v }))
        .collect()
}

/// Evidently `get_binned_data` for numeric columns: if nunique(ref) > 20, Sturges edges on
/// ref+cur and histogram shares; else shares of the distinct values (categorical path).
pub(crate) fn binned_numeric(r: &[f64], c: &[f64], fill: bool) -> (Vec<f64>, Vec<f64>) {
    let (mut rp, mut cp) = if distinct_more_than(&crate::numeric::sorted(r), 20) {
        let (rmin, rmax) = min_max(r);
        let (cmin, cmax) = min_max(c);
        let edges = sturges_edges_from(rmin.min(cmin), rmax.max(cmax), r.len() + c.len());
        let rc = histogram(r, &edges);
        let cc = histogram(c, &edges);
        (
            rc.iter()
                .map(|&k| k as f64 / r.len() as f64)
                .collect::<Vec<_>>(),
            cc.iter()
                .map(|&k| k as f64 / c.len() as f64)
                .collect::<Vec<_>>(),
        )
    } else {
        category_shares(&fkeys(r), &fkeys(c))
    };
    if fill {
        fill_zeroes(&mut rp);
        fill_zeroes(&mut cp);
    }
    (rp, cp)
}

/// Whether sorted `s` holds more than `k` distinct values (-0.0 and 0.0 are one), stopping early.
pub(crate) fn distinct_more_than(s: &[f64], k: usize) -> bool {
    let mut n = 0;
    let mut prev: Option<f64> = None;
    for &v in s {
        if prev != Some(v) {
            n += 1;
            if n > k {
                return true;
            }
            prev = Some(v);
        }
    }
    false
}

fn min_max(x: &[f64]) -> (f64, f64) {
    x.iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        })
}

pub(crate) fn binned_categorical<K: Ord + Clone>(
    r: &[K],
    c: &[K],
    fill: bool,
) -> (Vec<f64>, Vec<f64>) {
    let (mut rp, mut cp) = category_shares(r, c);
    if fill {
        fill_zeroes(&mut rp);
        fill_zeroes(&mut cp);
    }
    (rp, cp)
}

fn rel_entr(x: f64, y: f64) -> f64 {
    if x > 0.0 && y > 0.0 {
        x * (x / y).ln()
    } else if x == 0.0 && y >= 0.0 {
        0.0
    } else {
        f64::INFINITY
    }
}

fn normalise(p: &[f64]) -> Vec<f64> {
    let s: f64 = p.iter().sum();
    p.iter().map(|v| v / s).collect()
}

/// PSI = sum (r - c) * ln(r / c) over smoothed shares.
pub(crate) fn psi(r: &[f64], c: &[f64]) -> f64 {
    r.iter().zip(c).map(|(a, b)| (a - b) * (a / b).ln()).sum()
}

/// KL = scipy.stats.entropy(r, c) = sum rel_entr(r/sum r, c/sum c) over smoothed shares.
pub(crate) fn kl_div(r: &[f64], c: &[f64]) -> f64 {
    let (r, c) = (normalise(r), normalise(c));
    r.iter().zip(&c).map(|(&a, &b)| rel_entr(a, b)).sum()
}

/// JS distance = scipy.spatial.distance.jensenshannon(r, c) (natural log) over raw shares:
/// sqrt((KL(r||m) + KL(c||m)) / 2), m = (r+c)/2.
pub(crate) fn jensenshannon(r: &[f64], c: &[f64]) -> f64 {
    let (r, c) = (normalise(r), normalise(c));
    let m: Vec<f64> = r.iter().zip(&c).map(|(a, b)| (a + b) / 2.0).collect();
    let a: f64 = r.iter().zip(&m).map(|(&x, &y)| rel_entr(x, y)).sum();
    let b: f64 = c.iter().zip(&m).map(|(&x, &y)| rel_entr(x, y)).sum();
    ((a + b) / 2.0).sqrt()
}
