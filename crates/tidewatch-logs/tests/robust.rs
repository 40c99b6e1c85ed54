use proptest::prelude::*;
use tidewatch_logs::{classify, parse_header, template_of, Miner};

#[test]
fn empty_and_whitespace() {
    let mut m = Miner::default();
    let a = m.add("");
    let b = m.add("   \t ");
    assert_eq!(a.template, "");
    assert_eq!(a.cluster_id, b.cluster_id);
    assert_eq!(template_of(""), "");
    assert_eq!(classify("").category.as_str(), "unknown");
    assert_eq!(parse_header("").message, "");
}

#[test]
fn one_megabyte_line() {
    let line: String = (0..260_000)
        .map(|i| format!("w{} ", i % 97))
        .collect::<String>();
    assert!(line.len() > 1_000_000);
    let mut m = Miner::default();
    let r = m.add(&line);
    assert!(r.is_new);
    assert!(r.template.len() <= 16 * 1024 + 16);
    let numbers: String = "1 ".repeat(600_000);
    let r2 = m.add(&numbers);
    assert_eq!(r2.template, "<*>");
    let _ = classify(&line);
}

#[test]
fn control_characters_and_sentinels() {
    let mut m = Miner::default();
    let r = m.add("a\u{0}b\u{7}c\r\nd \u{F0000} \u{FFFFD}");
    assert_eq!(r.template, "a b c d");
    assert_eq!(template_of("x\u{1b}[31mred\u{1b}[0m"), "x [<*> [<*>");
}

#[test]
fn line_made_only_of_variables() {
    let mut m = Miner::default();
    let a = m.add("10.0.0.1 2024-01-01 12:00:00 0xdead 42 /var/log/x");
    let b = m.add("10.0.0.2 2024-01-02 13:00:00 0xbeef 43 /var/log/y");
    assert_eq!(a.template, "<*>");
    assert_eq!(a.cluster_id, b.cluster_id);
    assert_eq!(m.len(), 1);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    #[test]
    fn never_panics(s in any::<String>(), t in "[ -~\\t]{0,200}") {
        let mut m = Miner::default();
        let r1 = m.add(&s);
        let r2 = m.add(&t);
        prop_assert!(m.len() <= 2);
        prop_assert!(m.match_only(&s).is_some() || r1.cluster_id != r2.cluster_id || m.len() <= 2);
        let _ = template_of(&s);
        let _ = parse_header(&s);
        let _ = classify(&s);
        // the template has as many tokens as the masked message, and `<*>` per parameter
        let n_wild = r1.template.split(' ').filter(|x| x.contains("<*>")).count();
        prop_assert!(r1.parameters.len() <= n_wild);
    }

    #[test]
    fn template_is_idempotent_on_plain_words(words in proptest::collection::vec("[a-z]{1,8}", 0..12)) {
        let line = words.join(" ");
        prop_assert_eq!(template_of(&line), line);
    }
}
