//! Digests of everything the masker, the miner and the default classifier return on the
//! `bench_miner` streams, to check that a speed-up changes no result: run it before and
//! after, the lines must be equal.
//!
//! `cargo run --release -p tidewatch-logs --example digest -- [N] [DATA_DIR]`
//! (defaults: 200,000 lines per stream; data as for `bench_miner`).
//!
//! Streams: `repeat`, `tenth`, `distinct` as in `bench_miner`, and `keywords`: lines that
//! each start with a distinct capitalised word (as in `miner_memory`), over a small cluster
//! cap so that eviction runs. Per stream: the tokens (text, original, kind) of every line,
//! every `Miner::add` result, the final state (JSON), and every classification.

#[path = "common/mod.rs"]
mod common;

use common::{data_dir, keyword_line, read_contents, stream};
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use tidewatch_logs::{classify, mask::DEFAULT_MAX_LEN, tokenize, Config, Miner};

fn digest(name: &str, lines: &[String], config: Config) -> Result<(), tidewatch_logs::Error> {
    let mut h_mask = DefaultHasher::new();
    let mut h_add = DefaultHasher::new();
    let mut h_cls = DefaultHasher::new();
    let mut miner = Miner::new(config);
    for l in lines {
        for t in tokenize(l, DEFAULT_MAX_LEN) {
            (t.text, t.original, format!("{:?}", t.kind)).hash(&mut h_mask);
        }
        let r = miner.add(l);
        (r.cluster_id, r.template, r.parameters, r.is_new).hash(&mut h_add);
        let c = classify(l);
        (
            c.category.as_str(),
            c.severity.as_str(),
            c.rule_id,
            c.confidence.to_bits(),
        )
            .hash(&mut h_cls);
    }
    let mut h_state = DefaultHasher::new();
    miner.to_json()?.hash(&mut h_state);
    println!(
        "{name:<8} lines={} mask={:016x} add={:016x} state={:016x} classify={:016x}",
        lines.len(),
        h_mask.finish(),
        h_add.finish(),
        h_state.finish(),
        h_cls.finish()
    );
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let n: usize = match args.first() {
        Some(a) => a.parse()?,
        None => 200_000,
    };
    if let Some(dir) = data_dir(args.get(1)) {
        let base = read_contents(&dir)?;
        if !base.is_empty() {
            for name in ["repeat", "tenth", "distinct"] {
                if let Some(lines) = stream(&base, name, n) {
                    digest(name, &lines, Config::default())?;
                }
            }
        }
    } else {
        println!("(Loghub-2k data not found: keywords stream only)");
    }
    let mut keywords = Vec::with_capacity(n);
    let mut line = String::new();
    for i in 0..n as u64 {
        keyword_line(&mut line, i, i % 5000)?;
        keywords.push(line.clone());
    }
    let config = Config {
        max_clusters: 2_000,
        ..Config::default()
    };
    digest("keywords", &keywords, config)?;
    Ok(())
}
