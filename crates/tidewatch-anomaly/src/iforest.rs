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

    /// Check the invariants [`IsolationForest::score`] relies on (a decoded forest may come from
    /// anywhere): `Err` names the first one broken. `build` lays each tree out in pre-order (a
    /// node, then its left subtree, then its right one), so every child lies strictly after its
    /// parent: walks then end within `nodes.len()` steps, whatever the stored indices.
    pub fn check(&self) -> Result<(), String> {
        if self.dims == 0 || self.psi == 0 || self.trees.is_empty() {
            return Err(format!(
                "iforest state: empty forest ({} dims, subsample {}, {} trees)",
                self.dims,
                self.psi,
                self.trees.len()
            ));
        }
        for (t, tree) in self.trees.iter().enumerate() {
            let n = tree.nodes.len();
            if n == 0 {
                return Err(format!("iforest state: tree {t} has no nodes"));
            }
            for (i, node) in tree.nodes.iter().enumerate() {
                match *node {
                    Node::Split {
                        dim, left, right, ..
                    } => {
                        let child = |c: u32| (c as usize) > i && (c as usize) < n;
                        if !(child(left) && child(right)) {
                            return Err(format!(
                                "iforest state: tree {t} node {i} has children {left}, {right} \
                                 (must lie after it, below {n})"
                            ));
                        }
                        if dim as usize >= self.dims {
                            return Err(format!(
                                "iforest state: tree {t} node {i} splits on dimension {dim} of {}",
                                self.dims
                            ));
                        }
                    }
                    Node::Leaf { size } => {
                        if size as usize > self.psi {
                            return Err(format!(
                                "iforest state: tree {t} leaf {i} holds {size} rows of a \
                                 subsample of {}",
                                self.psi
                            ));
                        }
                    }
                }
            }
        }
        Ok(())
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
                        // `check` vouches for a decoded forest; stay bounded and in range anyway
                        // (children lie after their parent, see `build`).
                        let Some(&v) = x.get(*dim as usize) else {
                            break;
                        };
                        depth += 1.0;
                        let next = if v < *at { *left } else { *right } as usize;
                        if next <= i {
                            break;
                        }
                        i = next;
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

/// Ways to corrupt a fitted forest, for the decoded-state tests (here and in `model`).
#[cfg(test)]
#[derive(Clone, Copy, Debug)]
pub(crate) enum Corrupt {
    /// The root's left child is the root itself (a cycle).
    SelfLoop,
    /// A deeper split's right child points back at the root.
    BackEdge,
    /// The root's right child is past the last node.
    ChildOutOfRange,
    /// The root splits on this dimension.
    Dim(u32),
    /// A leaf holds more rows than the subsample.
    LeafSize,
    /// No trees (the score divides by their number).
    NoTrees,
    /// A tree with no nodes.
    EmptyTree,
    /// The forest claims this many dimensions.
    Dims(usize),
    /// Subsample size 0.
    NoSubsample,
}

#[cfg(test)]
impl Corrupt {
    pub(crate) const ALL: [Corrupt; 9] = [
        Corrupt::SelfLoop,
        Corrupt::BackEdge,
        Corrupt::ChildOutOfRange,
        Corrupt::Dim(5),
        Corrupt::LeafSize,
        Corrupt::NoTrees,
        Corrupt::EmptyTree,
        Corrupt::Dims(0),
        Corrupt::NoSubsample,
    ];

    /// Apply to `f` (fitted on varied rows, so its first tree's root is a split).
    pub(crate) fn apply(self, f: &mut IsolationForest) {
        let psi = f.psi as u32;
        let nodes = &mut f.trees[0].nodes;
        let len = nodes.len() as u32;
        match self {
            Corrupt::SelfLoop => match &mut nodes[0] {
                Node::Split { left, right, .. } => {
                    *left = 0;
                    *right = 0;
                }
                Node::Leaf { .. } => panic!("root is a leaf"),
            },
            Corrupt::BackEdge => {
                let deeper = nodes
                    .iter()
                    .enumerate()
                    .skip(1)
                    .find(|(_, n)| matches!(n, Node::Split { .. }))
                    .map(|(i, _)| i)
                    .expect("a deeper split");
                if let Node::Split { left, right, .. } = &mut nodes[deeper] {
                    *left = 0;
                    *right = 0;
                }
            }
            Corrupt::ChildOutOfRange => {
                if let Node::Split { right, .. } = &mut nodes[0] {
                    *right = len;
                }
            }
            Corrupt::Dim(d) => {
                if let Node::Split { dim, .. } = &mut nodes[0] {
                    *dim = d;
                }
            }
            Corrupt::LeafSize => {
                let leaf = nodes
                    .iter_mut()
                    .find(|n| matches!(n, Node::Leaf { .. }))
                    .expect("a leaf");
                *leaf = Node::Leaf { size: psi + 1 };
            }
            Corrupt::NoTrees => f.trees.clear(),
            Corrupt::EmptyTree => nodes.clear(),
            Corrupt::Dims(d) => f.dims = d,
            Corrupt::NoSubsample => f.psi = 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fitted() -> IsolationForest {
        let mut r = Rng(3);
        let rows: Vec<Vec<f64>> = (0..300).map(|_| vec![r.unit(), r.unit() * 2.0]).collect();
        IsolationForest::fit(&rows, &IForestParams::default()).expect("fit")
    }

    #[test]
    fn fitted_forests_pass_check_and_round_trip() {
        let f = fitted();
        assert_eq!(f.check(), Ok(()));
        let bytes = postcard::to_allocvec(&f).expect("encodes");
        let g: IsolationForest = postcard::from_bytes(&bytes).expect("decodes");
        assert_eq!(g.check(), Ok(()));
        assert_eq!(f, g);
        // A one-row forest (every tree a single leaf) is valid too.
        let one = IsolationForest::fit(&[vec![1.0]], &IForestParams::default()).expect("fit");
        assert_eq!(one.check(), Ok(()));
    }

    #[test]
    fn crafted_forests_fail_check_and_score_without_looping_or_panicking() {
        for c in Corrupt::ALL {
            let mut f = fitted();
            c.apply(&mut f);
            // Through the encoder, as a stored state would arrive.
            let bytes = postcard::to_allocvec(&f).expect("encodes");
            let g: IsolationForest = postcard::from_bytes(&bytes).expect("decodes");
            assert!(g.check().is_err(), "{c:?} passed check");
            // Unchecked, the score still returns (a self-loop used to spin forever, dim 5 to
            // index out of bounds).
            let s = g.score(&[0.5, 1.0]);
            assert!(s.is_nan() || (0.0..=1.0).contains(&s), "{c:?}: {s}");
        }
    }

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
