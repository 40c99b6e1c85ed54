//! Isolation forest (Liu, Ting & Zhou, "Isolation Forest", ICDM 2008) for trained multi-column
//! models. Each tree isolates a subsample of ψ rows with random axis-aligned splits; the anomaly
//! score of x is s(x) = 2^(−E[h(x)] / c(ψ)), with h the path length (plus c(size) at an unsplit
//! leaf) and c(n) = 2H(n−1) − 2(n−1)/n the average path length of an unsuccessful BST search.
//! Seeded (SplitMix64), so the same rows and params give the same forest.

use serde::{Deserialize, Serialize};

use crate::AnomalyError;

/// Parameters of [`IsolationForest::fit`].
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct IForestParams {
    pub trees: usize,
    pub sample_size: usize,
    pub seed: u64,
}

impl Default for IForestParams {
    fn default() -> Self {
        IForestParams {
            trees: 100,
            sample_size: 256,
            seed: 42,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
enum Node {
    Split {
        dim: u32,
        at: f64,
        left: u32,
        right: u32,
    },
    Leaf {
        size: u32,
    },
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
struct Tree {
    nodes: Vec<Node>,
}

/// A fitted isolation forest.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct IsolationForest {
    dims: usize,
    psi: usize,
    trees: Vec<Tree>,
}

/// SplitMix64 (Steele, Lea & Flood 2014).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Average path length of an unsuccessful search in a BST of n nodes.
pub fn c_factor(n: usize) -> f64 {
    match n {
        0 | 1 => 0.0,
        2 => 1.0,
        _ => {
            let n = n as f64;
            2.0 * ((n - 1.0).ln() + 0.577_215_664_901_532_9) - 2.0 * (n - 1.0) / n
        }
    }
}

impl IsolationForest {
    /// Fit on `rows` (all of the same width, finite values; rows with non-finite values are skipped).
    pub fn fit(rows: &[Vec<f64>], params: &IForestParams) -> Result<Self, AnomalyError> {
        let dims = rows.first().map_or(0, Vec::len);
        if dims == 0 {
            return Err(AnomalyError::InvalidParam {
                key: "rows".into(),
                reason: "need at least one row with one column".into(),
            });
        }
        if rows.iter().any(|r| r.len() != dims) {
            return Err(AnomalyError::InvalidParam {
                key: "rows".into(),
                reason: "all rows must have the same number of columns".into(),
            });
        }
        if params.trees == 0 || params.sample_size < 2 {
            return Err(AnomalyError::InvalidParam {
                key: "trees".into(),
                reason: "trees must be ≥ 1 and sample_size ≥ 2".into(),
            });
        }
        let good: Vec<&Vec<f64>> = rows
            .iter()
            .filter(|r| r.iter().all(|v| v.is_finite()))
            .collect();
        if good.is_empty() {
            return Err(AnomalyError::InvalidParam {
                key: "rows".into(),
                reason: "no row with only finite values".into(),
            });
        }
        let psi = params.sample_size.min(good.len());
        let max_depth = (psi as f64).log2().ceil() as usize;
        let mut rng = Rng(params.seed);
        let mut trees = Vec::with_capacity(params.trees);
        for _ in 0..params.trees {
            // Sample ψ rows without replacement (partial Fisher-Yates over indices).
            let mut idx: Vec<usize> = (0..good.len()).collect();
            for i in 0..psi {
                let j = i + rng.below(idx.len() - i);
                idx.swap(i, j);
            }
            idx.truncate(psi);
            let mut nodes = Vec::new();
            build(&good, idx, 0, max_depth, dims, &mut rng, &mut nodes);
            trees.push(Tree { nodes });
        }
        Ok(IsolationForest { dims, psi, trees })
    }

    pub fn dims(&self) -> usize {
        self.dims
    }

    /// Anomaly score in [0, 1] (≈0.5 or below: normal; → 1: isolated quickly). Rows of the wrong
    /// width or with non-finite values score NaN.
    pub fn score(&self, x: &[f64]) -> f64 {
        if x.len() != self.dims || x.iter().any(|v| !v.is_finite()) {
            return f64::NAN;
        }
        let mut total = 0.0;
        for t in &self.trees {
            let mut i = 0usize;
            let mut depth = 0.0;
            loop {
                match t.nodes.get(i) {
                    Some(Node::Split {
                        dim,
                        at,
                        left,
                        right,
                    }) => {
                        depth += 1.0;
                        i = if x[*dim as usize] < *at {
                            *left as usize
                        } else {
                            *right as usize
                        };
                    }
                    Some(Node::Leaf { size }) => {
                        depth += c_factor(*size as usize);
                        break;
                    }
                    None => break,
                }
            }
            total += depth;
        }
        let e = total / self.trees.len() as f64;
        let c = c_factor(self.psi).max(1e-12);
        2f64.powf(-e / c).clamp(0.0, 1.0)
    }
}

fn build(
    rows: &[&Vec<f64>],
    idx: Vec<usize>,
    depth: usize,
    max_depth: usize,
    dims: usize,
    rng: &mut Rng,
    nodes: &mut Vec<Node>,
) -> u32 {
    let me = nodes.len() as u32;
    nodes.push(Node::Leaf {
        size: idx.len() as u32,
    });
    if idx.len() <= 1 || depth >= max_depth {
        return me;
    }
    // Pick a dimension with spread (try each at most once, starting at a random one).
    let start = rng.below(dims);
    for k in 0..dims {
        let d = (start + k) % dims;
        let (lo, hi) = idx
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &i| {
                (lo.min(rows[i][d]), hi.max(rows[i][d]))
            });
        if hi > lo {
            let at = lo + rng.unit() * (hi - lo);
            let at = if at <= lo {
                hi.min(lo + (hi - lo) * 0.5)
            } else {
                at
            };
            let (l, r): (Vec<usize>, Vec<usize>) = idx.iter().partition(|&&i| rows[i][d] < at);
            let left = build(rows, l, depth + 1, max_depth, dims, rng, nodes);
            let right = build(rows, r, depth + 1, max_depth, dims, rng, nodes);
            nodes[me as usize] = Node::Split {
                dim: d as u32,
                at,
                left,
                right,
            };
            return me;
        }
    }
    me
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn isolated_point_scores_higher_and_fit_is_deterministic() {
        let mut rows = Vec::new();
        let mut r = Rng(1);
        for _ in 0..500 {
            rows.push(vec![r.unit(), r.unit() * 2.0]);
        }
        let p = IForestParams::default();
        let f = IsolationForest::fit(&rows, &p).expect("fit");
        let g = IsolationForest::fit(&rows, &p).expect("fit");
        assert_eq!(f, g);
        let out = f.score(&[5.0, -3.0]);
        let inl = f.score(&[0.5, 1.0]);
        assert!(out > 0.65 && inl < 0.5, "out {out} in {inl}");
        assert!(f.score(&[1.0]).is_nan());
        assert!((c_factor(256) - 10.244).abs() < 0.01);
    }
}
