//! Tidewatch log analysis: masking ([`mask`]), Drain-style template mining ([`drain`]),
//! header parsing ([`header`]) and rule-based + naive Bayes classification ([`classify`]).
//! Plain Rust, no pgrx: the SQL face lives in the extension.

pub mod classify;
pub mod drain;
pub mod header;
pub mod mask;

pub use classify::{classify, Category, Classification, NaiveBayes, Rule, RuleSet, Severity};
pub use drain::{Changes, Cluster, Config, Match, Miner};
pub use header::{parse_header, Header, HeaderFormat};
pub use mask::{template_of, tokenize, MaskKind, MaskOptions, Masker, Token, WILDCARD};

/// Errors of this crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("state (de)serialization failed: {0}")]
    Serde(#[from] serde_json::Error),
    #[error("invalid rule {id:?}: {source}")]
    Rule {
        id: String,
        #[source]
        source: regex::Error,
    },
}
