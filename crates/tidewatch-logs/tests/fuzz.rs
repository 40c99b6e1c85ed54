//! Property tests over hostile input: arbitrary strings (control characters, private-use
//! sentinels, any Unicode), log-like lines, lines made only of variables, and very long
//! lines. Default case count is modest; run e.g. `PROPTEST_CASES=100000 cargo test --release
//! -p tidewatch-logs --test fuzz` for a long session.

use proptest::prelude::*;
use tidewatch_logs::{classify, parse_header, template_of, tokenize, Config, Miner};

/// Log-like lines: words, numbers, ids, IPs, paths, quotes, brackets, key=value, unicode.
fn log_line() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        "[a-zA-Z]{1,10}",
        "[0-9]{1,12}",
        "[a-z]{1,5}[-_][0-9]{1,4}",
        "[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}(:[0-9]{1,5})?",
        "/[a-z]{1,6}(/[a-z0-9._-]{1,8}){0,3}",
        "0x[0-9a-f]{1,12}",
        "[a-z]{1,6}=[^ ]{0,8}",
        "\"[^\"]{0,12}\"",
        "'[^']{0,12}'",
        "[\\[\\](){}<>*:;,.!?=\"'/\\\\-]{1,4}",
        "<\\*>",
        "\\PC{1,6}",
        "[\\x00-\\x1f\\x7f]{1,3}",
        "[\u{F0000}-\u{F0010}\u{FFFFD}]",
        "20[0-9]{2}-[01][0-9]-[0-3][0-9]( [0-2][0-9]:[0-5][0-9]:[0-5][0-9])?",
        "[0-9]{1,4}(\\.[0-9])? ?(ms|s|MB|GB|KiB)",
    ];
    proptest::collection::vec(piece, 0..24).prop_map(|v| v.join(" "))
}

/// Lines made only of variables.
fn variables_only() -> impl Strategy<Value = String> {
    let var = prop_oneof![
        "[0-9]{1,9}",
        "[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}",
        "0x[0-9a-f]{2,8}",
        "/[a-z]{1,6}/[a-z0-9]{1,6}",
        "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
        "blk_-?[0-9]{5,12}",
        "[0-9]{1,3}ms",
    ];
    proptest::collection::vec(var, 1..16).prop_map(|v| v.join(" "))
}

fn any_line() -> impl Strategy<Value = String> {
    prop_oneof![any::<String>(), log_line(), variables_only()]
}

proptest! {
    // 512 cases by default; PROPTEST_CASES sets more for a long session.
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(512)
    ))]

    #[test]
    fn nothing_panics(s in any_line()) {
        let toks = tokenize(&s, 16 * 1024);
        let tpl = template_of(&s);
        // the template is the token texts joined by one space
        let joined = toks.iter().map(|t| t.text.as_str()).collect::<Vec<_>>().join(" ");
        prop_assert_eq!(&tpl, &joined);
        prop_assert!(!tpl.chars().any(|c| c.is_control()));
        let h = parse_header(&s);
        prop_assert!(h.message.len() <= s.len());
        let _ = classify(&s);
        let mut m = Miner::default();
        let a = m.add(&s);
        let b = m.add(&s);
        // the same line twice joins the same cluster, whose template it matches
        prop_assert_eq!(a.cluster_id, b.cluster_id);
        prop_assert_eq!(m.len(), 1);
        prop_assert!(m.match_only(&s).is_some());
    }

    #[test]
    fn variables_only_lines_are_one_wildcard(s in variables_only()) {
        prop_assert_eq!(template_of(&s), "<*>");
    }

    /// Holds for lines without quote characters and `=`. With them it does not hold: a
    /// quote left in a template can pair with another one on a second pass around a `<*>`
    /// (`' \"0'` -> `' <*>'` -> `<*>`), and `0_=a` -> `<*>_=a` -> `<*>` (a key=value
    /// appears once the digits are masked); found by 100,000-case runs, cases in
    /// fuzz.proptest-regressions.
    #[test]
    fn template_of_is_idempotent(s in any_line().prop_map(|s| s.replace(['"', '\'', '='], ""))) {
        let t = template_of(&s);
        prop_assert_eq!(template_of(&t), t);
    }

    #[test]
    fn cluster_cap_holds_and_state_round_trips(
        lines in proptest::collection::vec(any_line(), 1..60),
        cap in 1usize..8,
    ) {
        let mut m = Miner::new(Config { max_clusters: cap, ..Config::default() });
        for l in &lines {
            let r = m.add(l);
            prop_assert!(m.len() <= cap, "{} clusters > cap {}", m.len(), cap);
            prop_assert!(m.cluster(r.cluster_id).is_some());
        }
        let js = m.to_json().expect("serialize");
        let back = Miner::from_json(&js).expect("deserialize");
        prop_assert_eq!(&back, &m);
        // the restored miner behaves the same on the next line
        let (mut a, mut b) = (m.clone(), back);
        for l in lines.iter().rev().take(5) {
            prop_assert_eq!(a.add(l), b.add(l));
        }
    }
}

#[test]
fn one_megabyte_lines() {
    let kinds: [String; 4] = [
        "x".repeat(1 << 20),
        "é漢\u{0}\u{F0000} ".repeat(1 << 17),
        "10.0.0.1:80 ".repeat(90_000),
        "\"".repeat(1 << 20),
    ];
    let mut m = Miner::default();
    for line in &kinds {
        assert!(line.len() >= 1 << 20);
        let t = template_of(line);
        assert!(t.len() <= 2 * 16 * 1024, "{}", t.len());
        let r = m.add(line);
        assert!(r.template.len() <= 2 * 16 * 1024);
        let _ = parse_header(line);
        let _ = classify(line);
    }
}
