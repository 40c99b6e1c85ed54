//! Shared by the examples: timing (wall time and the process's CPU time, user + system
//! from `getrusage(RUSAGE_SELF)`, so that a run on a loaded machine can still be compared)
//! and the benchmark streams. Each example uses a part of it.
#![allow(dead_code)]

use std::fmt::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// CPU seconds (user + system) used by this process so far; None if getrusage fails.
pub fn cpu_seconds() -> Option<f64> {
    let mut ru = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage writes one `rusage` into the pointer it is given, which points to
    // a zeroed, properly aligned `rusage` owned by this frame.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, ru.as_mut_ptr()) };
    if rc != 0 {
        return None;
    }
    // SAFETY: zero-initialised and filled by a successful getrusage
    let ru = unsafe { ru.assume_init() };
    let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 * 1e-6;
    Some(t(ru.ru_utime) + t(ru.ru_stime))
}

/// A started measurement.
pub struct Timer {
    wall: Instant,
    cpu: Option<f64>,
}

/// Wall and CPU seconds of one measurement.
pub struct Elapsed {
    pub wall: f64,
    pub cpu: Option<f64>,
}

impl Timer {
    pub fn start() -> Timer {
        Timer {
            cpu: cpu_seconds(),
            wall: Instant::now(),
        }
    }

    pub fn stop(&self) -> Elapsed {
        let wall = self.wall.elapsed().as_secs_f64();
        let cpu = match (self.cpu, cpu_seconds()) {
            (Some(a), Some(b)) => Some(b - a),
            _ => None,
        };
        Elapsed { wall, cpu }
    }
}

impl Elapsed {
    /// `wall_s=… cpu_s=… lines_per_cpu_sec=… lines_per_wall_sec=…` for `n` lines.
    pub fn rates(&self, n: usize) -> String {
        let cpu = match self.cpu {
            Some(c) if c > 0.0 => format!("cpu_s={c:.3} lines_per_cpu_sec={:.0}", n as f64 / c),
            _ => "cpu_s=? lines_per_cpu_sec=?".to_string(),
        };
        format!(
            "wall_s={:.3} {cpu} lines_per_wall_sec={:.0}",
            self.wall,
            n as f64 / self.wall
        )
    }
}

/// The 1-, 5- and 15-minute load averages (Linux /proc/loadavg), to print beside results.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| "?".to_string())
}

/// The Loghub-2k systems the benchmarks read.
pub const SYSTEMS: &[&str] = &[
    "HDFS",
    "Hadoop",
    "Spark",
    "Zookeeper",
    "BGL",
    "HPC",
    "Apache",
    "OpenSSH",
];

/// The Loghub-2k directory: `arg` (unless empty), else $LOGHUB_DATA, else
/// ../shared/data/loghub-2k beside the repository; None if none exists.
pub fn data_dir(arg: Option<&String>) -> Option<PathBuf> {
    let candidates = [
        arg.filter(|a| !a.is_empty()).map(PathBuf::from),
        std::env::var("LOGHUB_DATA").ok().map(PathBuf::from),
        Some(manifest_dir().join("../../../shared/data/loghub-2k")),
    ];
    candidates.into_iter().flatten().find(|p| p.is_dir())
}

/// The Content column of every system in [`SYSTEMS`] (unreadable systems skipped).
pub fn read_contents(dir: &Path) -> Result<Vec<String>, Box<dyn std::error::Error>> {
    let mut out = Vec::new();
    for s in SYSTEMS {
        let path = dir.join(s).join(format!("{s}_2k.log_structured.csv"));
        let Ok(mut rdr) = csv::Reader::from_path(&path) else {
            eprintln!("skip {s}: {} unreadable", path.display());
            continue;
        };
        let ci = rdr
            .headers()?
            .iter()
            .position(|h| h == "Content")
            .ok_or("no Content column")?;
        for rec in rdr.records() {
            out.push(rec?.get(ci).unwrap_or("").to_string());
        }
    }
    Ok(out)
}

/// `n` lines from `base` (not empty) repeated: `repeat` as they are, `tenth` with the line
/// number appended to every tenth line (as benches/logs_sql.sh feeds the extension),
/// `distinct` with the line number appended to every line. None for another name.
pub fn stream(base: &[String], name: &str, n: usize) -> Option<Vec<String>> {
    let every = match name {
        "repeat" => 0,
        "tenth" => 10,
        "distinct" => 1,
        _ => return None,
    };
    let lines = (0..n)
        .map(|i| {
            let l = base.get(i % base.len().max(1)).map_or("", String::as_str);
            if every > 0 && i % every == 0 {
                format!("{l} {i}")
            } else {
                l.to_string()
            }
        })
        .collect();
    Some(lines)
}

/// Append a distinct capitalised word for i (base-26 letters).
pub fn push_word(out: &mut String, mut i: u64) {
    out.push('K');
    loop {
        out.push(char::from(b'a' + (i % 26) as u8));
        i /= 26;
        if i == 0 {
            break;
        }
    }
}

/// Line `i` of the keyword stream, written into `out` (cleared first): it starts with the
/// capitalised word of `first`, which the miner treats as a keyword that never merges.
pub fn keyword_line(out: &mut String, i: u64, first: u64) -> std::fmt::Result {
    out.clear();
    push_word(out, first);
    out.push_str(" request from user ");
    push_word(out, i.wrapping_mul(2_654_435_761) % 1_000_003);
    write!(
        out,
        " on node-{} took {} ms status {}",
        i % 977,
        i % 1000,
        ["ok", "failed", "retry"][(i % 3) as usize]
    )
}

/// This crate's directory: cargo's `CARGO_MANIFEST_DIR` at run time, else the one it was built in
/// (a target dir shared by several clones keeps binaries built in another, perhaps deleted, clone).
fn manifest_dir() -> std::path::PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")))
}
