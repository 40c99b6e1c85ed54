use tidewatch_logs::{drain::mine_batch, Config, Miner};

#[test]
fn mostly_masked_line_joins_its_own_template() {
    // Drain3 counts template wildcards as mismatches: this line would open a new cluster
    // each time. Here every occurrence joins the first cluster.
    let mut m = Miner::default();
    let a = m.add("10.0.0.1 10.0.0.2 42 7 ok");
    let b = m.add("10.0.0.3 10.0.0.4 43 8 ok");
    let c = m.add("10.0.0.5 10.0.0.6 44 9 ok");
    assert!(a.is_new);
    assert!(!b.is_new && !c.is_new);
    assert_eq!(a.cluster_id, c.cluster_id);
    assert_eq!(m.len(), 1);
    assert_eq!(c.template, "<*> ok");
}

#[test]
fn multi_token_variable_does_not_split() {
    let mut m = Miner::default();
    let a = m.add("Memory store started with capacity 3.5 GB on host");
    let b = m.add("Memory store started with capacity 120MB on host");
    let c = m.add("job finished at 2024-01-01 12:00:00 after 12 ms");
    let d = m.add("job finished at 2024-01-02T13:00:00Z after 1.5 s");
    assert_eq!(a.cluster_id, b.cluster_id);
    assert_eq!(c.cluster_id, d.cluster_id);
    assert_eq!(m.len(), 2);
}

#[test]
fn one_meaningful_word_keeps_lines_apart() {
    let mut m = Miner::default();
    let a = m.add("VM Started");
    let b = m.add("VM Paused");
    let c = m.add("VM Started");
    assert_ne!(a.cluster_id, b.cluster_id);
    assert_eq!(a.cluster_id, c.cluster_id);
    let x = m.add("attempt_1_0001_m_000001_0 TaskAttempt Transitioned from NEW to UNASSIGNED");
    let y = m.add("attempt_1_0001_m_000002_0 TaskAttempt Transitioned from UNASSIGNED to ASSIGNED");
    assert_ne!(x.cluster_id, y.cluster_id);
    let p = m.add("PAM 1 more authentication failure; uid=0");
    let q = m.add("PAM 4 more authentication failures; uid=0");
    assert_ne!(p.cluster_id, q.cluster_id);
}

#[test]
fn templates_evolve_and_stay_stable() {
    let mut m = Miner::default();
    let users = [
        "root", "admin", "guest", "oracle", "postgres", "test", "ubuntu",
    ];
    let mut last = None;
    for (i, u) in users.iter().enumerate() {
        let r = m.add(&format!(
            "Failed password for {u} from 10.0.0.{i} port 22 ssh2"
        ));
        last = Some(r);
    }
    let last = last.expect("added");
    assert_eq!(m.len(), 1);
    // once more than max_enum_values users were seen, the position is a plain parameter
    assert_eq!(
        last.template,
        "Failed password for <*> from <*> port <*> ssh2"
    );
    assert_eq!(last.parameters, vec!["ubuntu", "10.0.0.6", "22"]);
    // stable: more lines do not change it
    let again = m.add("Failed password for root from 10.9.9.9 port 2222 ssh2");
    assert_eq!(again.template, last.template);
    assert_eq!(again.cluster_id, last.cluster_id);
}

#[test]
fn enumerated_words_stay_in_template_until_open_ended() {
    let mut m = Miner::default();
    let a = m.add("Block broadcast_1 stored as bytes in memory");
    let b = m.add("Block broadcast_2 stored as values in memory");
    assert_eq!(a.cluster_id, b.cluster_id);
    assert_eq!(b.template, "Block <*> stored as values in memory");
    assert_eq!(
        m.template_for(a.cluster_id, "Block x_3 stored as bytes in memory")
            .as_deref(),
        Some("Block <*> stored as bytes in memory")
    );
}

#[test]
fn match_only_does_not_change_state() {
    let mut m = Miner::default();
    m.add("user 1 logged in");
    m.add("user 2 logged in");
    let before = m.clone();
    let r = m.match_only("user 99 logged in").expect("matches");
    assert_eq!(r.template, "user <*> logged in");
    assert_eq!(r.parameters, vec!["99"]);
    assert!(m.match_only("completely different line here").is_none());
    assert_eq!(m, before);
}

#[test]
fn eviction_bounds_cluster_count() {
    // Wide tree nodes keep leaves short so the debug-build test stays fast; the bound on
    // clusters is what is tested here.
    let cfg = Config {
        max_clusters: 1000,
        max_children: 1_000_000,
        ..Config::default()
    };
    let mut m = Miner::new(cfg);
    let mut state: u64 = 0x9E3779B97F4A7C15;
    let mut word = || {
        // xorshift, letters only so nothing is masked
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (0..8)
            .map(|i| (b'a' + ((state >> (i * 5)) % 26) as u8) as char)
            .collect::<String>()
    };
    let mut max_seen = 0;
    for i in 0..100_000 {
        let line = format!("{} {} {} {}", word(), word(), word(), word());
        let r = m.add(&line);
        if i % 1000 == 0 {
            max_seen = max_seen.max(m.len());
        }
        assert!(r.is_new || m.len() <= 1000);
    }
    assert!(m.len() <= 1000, "{} clusters", m.len());
    assert!(max_seen <= 1000);
    assert!(
        m.len() >= 900,
        "eviction should keep the recent clusters, got {}",
        m.len()
    );
}

#[test]
fn evicts_least_recently_used() {
    let cfg = Config {
        max_clusters: 2,
        ..Config::default()
    };
    let mut m = Miner::new(cfg);
    let a = m.add("alpha one");
    let _b = m.add("beta two three");
    m.add("alpha one"); // touch a
    let _c = m.add("gamma four five six");
    assert_eq!(m.len(), 2);
    assert!(
        m.cluster(a.cluster_id).is_some(),
        "recently used cluster must survive"
    );
    assert!(m.match_only("beta two three").is_none());
}

#[test]
fn serde_round_trip() {
    let mut m = Miner::default();
    for l in [
        "a 1 b",
        "a 2 b",
        "VM Started",
        "x y z",
        "Block broadcast_1 stored as bytes",
    ] {
        m.add(l);
    }
    let js = m.to_json().expect("serialize");
    let mut back = Miner::from_json(&js).expect("deserialize");
    assert_eq!(back, m);
    let r1 = m.add("a 3 b");
    let r2 = back.add("a 3 b");
    assert_eq!(r1, r2);
    assert!(Miner::from_json("{not json").is_err());
}

#[test]
fn merge_two_miners() {
    let mut a = Miner::default();
    let mut b = Miner::default();
    a.add("user 1 logged in");
    a.add("disk sda1 full");
    b.add("user 7 logged in");
    b.add("VM Paused");
    let map = a.merge(&b);
    assert_eq!(a.len(), 3);
    let ids: Vec<u64> = map.values().copied().collect();
    assert!(ids.iter().all(|id| a.cluster(*id).is_some()));
    let u = a
        .match_only("user 3 logged in")
        .expect("merged cluster matches");
    assert_eq!(a.cluster(u.cluster_id).map(|c| c.size), Some(2));
    assert!(a.match_only("VM Paused").is_some());
}

#[test]
fn batch_labels_use_final_templates() {
    let mut m = Miner::default();
    let lines = [
        "job 1 started",
        "job 2 started",
        "VM Started",
        "VM Paused",
        "job 3 started",
    ];
    let out = mine_batch(&mut m, lines.iter().copied());
    assert_eq!(out[0].0, out[1].0);
    assert_eq!(out[0].0, out[4].0);
    assert_ne!(out[2].0, out[3].0);
    assert_eq!(out[0].1, "job <*> started");
    assert_eq!(out[3].1, "VM Paused");
}

#[test]
fn rebuilt_from_clusters_matches_like_the_original() {
    let mut a = Miner::default();
    for i in 0..200 {
        a.add(&format!(
            "user u{} logged in from 10.0.0.{}",
            i % 7,
            i % 250
        ));
        a.add(&format!(
            "Block broadcast_{i} stored as {} in memory",
            ["bytes", "values"][i % 2]
        ));
        a.add(&format!("VM {}", ["Started", "Paused"][i % 2]));
    }
    let rows: Vec<String> = a
        .clusters()
        .iter()
        .map(|c| serde_json::to_string(c).expect("row"))
        .collect();
    let back: Vec<tidewatch_logs::Cluster> = rows
        .iter()
        .map(|r| serde_json::from_str(r).expect("row"))
        .collect();
    let mut b = Miner::from_clusters(Config::default(), back);
    assert_eq!(b, a);
    assert!(b.take_changes().is_empty());
    for l in [
        "user u3 logged in from 10.0.0.9",
        "VM Paused",
        "Block broadcast_9 stored as bytes in memory",
        "brand new line",
    ] {
        assert_eq!(a.add(l), b.add(l));
    }
    assert_eq!(a.next_id(), b.next_id());
}

#[test]
fn changes_report_new_changed_counted_and_evicted_clusters() {
    let mut m = Miner::new(Config {
        max_clusters: 2,
        ..Config::default()
    });
    let x = m.add("alpha one two three four").cluster_id;
    m.add("alpha one two three four");
    let c = m.take_changes();
    assert_eq!(c.changed, vec![x]);
    assert_eq!(c.counts, vec![(x, 2)]);
    assert!(c.evicted.is_empty());
    assert!(m.take_changes().is_empty());
    m.add("alpha one two three five"); // generalises the template
    let c = m.take_changes();
    assert_eq!(c.changed, vec![x]);
    assert_eq!(c.counts, vec![(x, 1)]);
    let y = m.add("beta two three four").cluster_id;
    let z = m.add("gamma five six seven eight").cluster_id; // evicts x
    let w = m.add("delta x y z w v").cluster_id; // evicts y (created since the last call)
    let c = m.take_changes();
    assert_eq!(c.evicted, vec![x]);
    assert_eq!(c.changed, vec![z, w]);
    assert!(!c.changed.contains(&y) && !c.counts.iter().any(|p| p.0 == y));
    assert_eq!(m.set_next_id(1), w + 1);
    assert_eq!(m.set_next_id(1000), 1000);
    assert_eq!(m.add("epsilon").cluster_id, 1000);
}

/// A letter prefix + digits (`u5`, `u13`) is one variable whatever the number of digits: the
/// masker leaves a single digit glued to letters alone (`ssh2`, `alt0` are names), masks two
/// or more, and the miner must still put every member of the family in one template, in
/// either order, at a routed position (first tokens) or later.
#[test]
fn letter_digit_ids_do_not_split_templates() {
    let families: &[(&[&str], &str)] = &[
        (
            &[
                "User u5 logged in from 192.168.0.5",
                "User u13 logged in from 192.168.0.13",
                "User u21 logged in from 192.168.0.21",
                "User u6 logged in from 192.168.0.6",
            ],
            "User <*> logged in from <*>",
        ),
        (
            &[
                "node n12 is down",
                "node n7 is down",
                "node n8 is down",
                "node n130 is down",
            ],
            "node <*> is down",
        ),
        (
            &[
                "pool db-1 exhausted after retry",
                "pool db-12 exhausted after retry",
                "pool db-3 exhausted after retry",
            ],
            "pool db-<*> exhausted after retry",
        ),
        (
            &[
                "sensor load_3 over threshold",
                "sensor load_13 over threshold",
                "sensor load_4 over threshold",
            ],
            "sensor <*> over threshold",
        ),
        (
            &[
                "Session opened for account A7 on shard s2",
                "Session opened for account A17 on shard s31",
                "Session opened for account A9 on shard s4",
            ],
            "Session opened for account <*> on shard <*>",
        ),
    ];
    for (lines, want) in families {
        for rev in [false, true] {
            let mut m = Miner::default();
            let mut order: Vec<&str> = lines.to_vec();
            if rev {
                order.reverse();
            }
            let ids: Vec<u64> = order.iter().map(|l| m.add(l).cluster_id).collect();
            assert!(
                ids.iter().all(|&i| i == ids[0]),
                "{order:?} split into {:?}",
                m.clusters()
                    .iter()
                    .map(|c| c.template())
                    .collect::<Vec<_>>()
            );
            assert_eq!(m.len(), 1, "{order:?}");
            assert_eq!(m.clusters()[0].template(), *want, "{order:?}");
            let mut b = Miner::default();
            let labels = mine_batch(&mut b, order.iter().copied());
            assert!(labels.iter().all(|(_, t)| t == want), "{labels:?}");
        }
    }
    // a name with a digit is presumed a variable whatever its letters
    let mut m = Miner::default();
    let a = m.add("Component alt0 is in the unavailable state");
    let b = m.add("Component ee0 is in the unavailable state");
    let c = m.add("Component alt1 is in the unavailable state");
    assert_eq!(a.cluster_id, b.cluster_id);
    assert_eq!(a.cluster_id, c.cluster_id);
}

/// A state written by an older version (routing by any unmasked token, tree path key `u5`,
/// or another depth) is re-filed on load, so the family still joins its cluster.
#[test]
fn old_state_with_another_tree_path_is_refiled() {
    for depth in [4, 2] {
        let config = Config {
            depth,
            ..Config::default()
        };
        let mut m = Miner::new(config);
        let a = m.add("User u5 logged in from 192.168.0.5");
        let json = m.to_json().expect("serializes");
        let path = if depth == 4 {
            r#""path":["User","<*>"]"#
        } else {
            r#""path":[]"#
        };
        assert!(json.contains(path), "{json}");
        let old = json.replace(path, r#""path":["User","u5"]"#);
        let mut back = Miner::from_json(&old).expect("loads");
        let b = back.add("User u13 logged in from 192.168.0.13");
        assert_eq!(a.cluster_id, b.cluster_id);
        assert_eq!(b.template, "User <*> logged in from <*>");
        assert_eq!(b.parameters, vec!["u13", "192.168.0.13"]);
    }
    // a state written before the settings of this version existed takes their defaults
    let old = r#"{"config":{"depth":4,"sim_threshold":0.5,"wildcard_word_weight":0.5,"max_children":100,"max_clusters":10000,"max_line_len":16384,"split_keywords":true,"max_word_changes":1,"max_enum_values":4},"clusters":[{"id":7,"tokens":["VM","Started"],"size":3,"last_used":3,"enums":{},"path":["VM","Started"]}],"next_id":8,"clock":3}"#;
    let mut back = Miner::from_json(old).expect("loads");
    assert_eq!(
        back.config().lead_positions,
        Config::default().lead_positions
    );
    assert_eq!(back.add("VM Started").cluster_id, 7);
}

/// `add_id` is `add` without the strings: same ids, same state, same change log, on a
/// stream that exercises large indexed leaves, keywords, enumerations, letter-prefixed
/// numbers and eviction.
/// A distinct capitalised word (a keyword) for i.
fn word(mut i: u64) -> String {
    let mut w = String::from("K");
    loop {
        w.push(char::from(b'a' + (i % 26) as u8));
        i /= 26;
        if i == 0 {
            break w;
        }
    }
}

#[test]
fn add_id_matches_add() {
    let mut lines: Vec<String> = Vec::new();
    for i in 0..6_000u64 {
        let kw = ["Started", "Paused", "RUNNING", "FAILED"][(i % 4) as usize];
        lines.push(match i % 7 {
            0 => format!("Job{} {kw} on host h{} after {} ms", i % 50, i % 9, i),
            1 => format!("User u{} logged in from 10.0.{}.{}", i % 30, i % 7, i % 251),
            2 => format!(
                "Block broadcast_{i} stored as {} in memory",
                ["bytes", "values"][(i % 2) as usize]
            ),
            3 => format!(
                "{} request from user w{} status {}",
                word(i % 700),
                i % 13,
                ["ok", "failed"][(i % 2) as usize]
            ),
            4 => format!(
                "session {} closed for {} reason {kw}",
                i % 40,
                ["alice", "bob", "carol", "dave", "erin", "frank"][(i % 6) as usize]
            ),
            5 => ["", "   ", "\u{0}\u{7} ctl", "x\u{1b}[31mred"][(i % 4) as usize].to_string(),
            _ => format!("node n{} is {}", i % 12, ["down", "up"][(i % 2) as usize]),
        });
    }
    for cap in [10_000, 150] {
        let config = Config {
            max_clusters: cap,
            ..Config::default()
        };
        let mut a = Miner::new(config.clone());
        let mut b = Miner::new(config);
        for l in &lines {
            assert_eq!(a.add(l).cluster_id, b.add_id(l), "{l:?}");
        }
        assert!(a.len() > 40, "{}", a.len());
        assert_eq!(a, b);
        assert_eq!(a.take_changes(), b.take_changes());
        assert_eq!(a.to_json().expect("json"), b.to_json().expect("json"));
    }
}

/// The first token may be a variable: with no prefix tree, lines whose first word differs
/// join one template while the template is young; once two lines repeated a leading word,
/// another word there is another event.
#[test]
fn a_variable_first_word_and_leading_words_that_tell_events_apart() {
    let mut m = Miner::default();
    let a = m.add("alice logged in from 10.0.0.1 via ssh");
    let b = m.add("bob logged in from 10.0.0.2 via ssh");
    let c = m.add("carol logged in from 10.0.0.3 via ssh");
    assert_eq!(a.cluster_id, b.cluster_id);
    assert_eq!(a.cluster_id, c.cluster_id);
    // the generic template (the reported one shows the enumerated name, see
    // `enumerated_words_stay_in_template_until_open_ended`)
    assert_eq!(
        m.cluster(c.cluster_id).map(|x| x.template()).as_deref(),
        Some("<*> logged in from <*> via ssh")
    );
    let mut m = Miner::default();
    let p1 = m.add("Failed password for root from 10.0.0.1 port 22 ssh2");
    let p2 = m.add("Failed password for root from 10.0.0.2 port 23 ssh2");
    let n = m.add("Failed none for root from 10.0.0.3 port 24 ssh2");
    assert_eq!(p1.cluster_id, p2.cluster_id);
    assert_ne!(p1.cluster_id, n.cluster_id);
}

/// A word that many lines of a template repeated is a constant: a later line that changes
/// it is another event, although it shares every other word (support weight); the same
/// change to a young template is a parameter.
#[test]
fn well_supported_words_are_constants() {
    let line = |w: &str, i: u32| format!("Received disconnect from 10.0.0.{i}: 11: Bye Bye {w}");
    let mut m = Miner::default();
    let first = m.add(&line("preauth", 1)).cluster_id;
    for i in 2..40 {
        assert_eq!(m.add(&line("preauth", i)).cluster_id, first);
    }
    assert_ne!(m.add(&line("postauth", 99)).cluster_id, first);
    let mut young = Miner::default();
    let a = young.add(&line("preauth", 1)).cluster_id;
    assert_eq!(young.add(&line("postauth", 2)).cluster_id, a);
    // several words at once never, once the template has two lines
    let mut m = Miner::default();
    let x = m
        .add("Received disconnect from 10.0.0.1: 11: Bye Bye preauth")
        .cluster_id;
    m.add("Received disconnect from 10.0.0.2: 11: Bye Bye preauth");
    let y = m
        .add("Received disconnect from 10.0.0.3: 11: disconnected by user")
        .cluster_id;
    assert_ne!(x, y);
}

/// Evidence is counted on words: a short line differing in its one word is another event
/// (the disagreement prior), punctuation and variables count for nothing, and a compound
/// token (identifier, dotted name, path) is presumed a variable.
#[test]
fn evidence_is_counted_on_words() {
    let mut m = Miner::default();
    let boot = m.add("boot  (command 1911)").cluster_id;
    let wait = m.add("wait  (command 1975)").cluster_id;
    assert_ne!(boot, wait);
    let mut m = Miner::default();
    let a =
        m.add("Registering class org.apache.mr.JobEventType for class org.apache.mr.JobDispatcher");
    let b = m.add(
        "Registering class org.apache.mr.TaskEventType for class org.apache.mr.TaskDispatcher",
    );
    assert_eq!(a.cluster_id, b.cluster_id);
    assert_eq!(
        m.cluster(b.cluster_id).map(|x| x.template()).as_deref(),
        Some("Registering class <*> for class <*>")
    );
    // a line of variables and punctuation joins its own template
    let mut m = Miner::default();
    let x = m.add("[10.0.0.1] - - 42 (7)");
    let y = m.add("[10.0.0.9] - - 43 (8)");
    assert_eq!(x.cluster_id, y.cluster_id);
}

/// Templates of one length beyond LEAF_SCAN are found through the inverted index and the
/// exact-template shortcut: the results equal those of comparing every line with every
/// cluster of its length (the oracle), on streams with many templates of one length.
#[test]
fn indexes_find_what_a_full_scan_finds() {
    let mut rng: u64 = 0x2545_F491_4F6C_DD1D;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    const WORDS: [&str; 24] = [
        "alpha", "beta", "gamma", "delta", "eps", "zeta", "eta", "theta", "iota", "kappa",
        "lambda", "mu", "nu", "xi", "omicron", "pi", "rho", "sigma", "tau", "upsilon", "phi",
        "chi", "psi", "omega",
    ];
    let mut lines = Vec::new();
    for _ in 0..3000 {
        let r = next();
        // 6 tokens: mostly words from a small vocabulary, some numbers and compound tokens
        let toks: Vec<String> = (0..6)
            .map(|k| {
                let x = (r >> (k * 9)) as usize;
                match x % 7 {
                    0 => format!("{}", x % 1000),
                    1 => format!("node-{}.{}", WORDS[x % 24], x % 5),
                    _ => WORDS[(x / 7) % 24].to_string(),
                }
            })
            .collect();
        lines.push(toks.join(" "));
    }
    for config in [
        Config::default(),
        Config {
            max_clusters: 300,
            ..Config::default()
        },
        Config {
            sim_threshold: 0.3,
            wildcard_word_weight: 0.0,
            ..Config::default()
        },
    ] {
        let mut fast = Miner::new(config.clone());
        let mut slow = Miner::new(config).exhaustive();
        for l in &lines {
            assert_eq!(fast.add(l), slow.add(l), "{l}");
        }
        assert!(fast.len() > 100, "{} clusters", fast.len());
        assert_eq!(fast, slow);
    }
}
