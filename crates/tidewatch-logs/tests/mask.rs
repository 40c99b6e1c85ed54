use tidewatch_logs::{template_of, tokenize, MaskKind};

fn kinds(s: &str) -> Vec<Option<MaskKind>> {
    tokenize(s, 1 << 20).into_iter().map(|t| t.kind).collect()
}

#[test]
fn ipv4_with_port() {
    assert_eq!(
        template_of("connect to 10.251.73.220:50010 failed"),
        "connect to <*> failed"
    );
    assert_eq!(template_of("from /10.10.34.11 ok"), "from <*> ok");
    assert_eq!(kinds("peer 192.168.0.1:80")[1], Some(MaskKind::Ip));
}

#[test]
fn ipv6() {
    assert_eq!(
        template_of("peer fe80::1ff:fe23:4567:890a up"),
        "peer <*> up"
    );
    assert_eq!(
        template_of("peer 2001:0db8:85a3:0000:0000:8a2e:0370:7334 up"),
        "peer <*> up"
    );
    assert_eq!(template_of("listen [::1]:5432 ok"), "listen <*> ok");
}

#[test]
fn numbers_and_partial_ids() {
    assert_eq!(
        template_of("PacketResponder 1 for block terminating"),
        "PacketResponder <*> for block terminating"
    );
    assert_eq!(template_of("value -3.25 rejected"), "value <*> rejected");
    assert_eq!(template_of("node node-129 down"), "node node-<*> down");
    // single digit glued to a word is a name, not a number
    assert_eq!(template_of("via interface alt0"), "via interface alt0");
}

#[test]
fn hex_and_uuid() {
    assert_eq!(template_of("addr 0x1f3a ok"), "addr <*> ok");
    assert_eq!(
        template_of("session 0x24f0557806a0020 closed"),
        "session <*> closed"
    );
    assert_eq!(template_of("hash deadbeef42 done"), "hash <*> done");
    assert_eq!(
        template_of("id 123e4567-e89b-12d3-a456-426614174000 x"),
        "id <*> x"
    );
    assert_eq!(
        kinds("id 123e4567-e89b-12d3-a456-426614174000")[1],
        Some(MaskKind::Uuid)
    );
    // an all-letter word that happens to be hex is kept
    assert_eq!(template_of("cafe added"), "cafe added");
}

#[test]
fn paths_and_urls() {
    assert_eq!(
        template_of("Created local directory at /opt/hdfs/nodemanager/usercache"),
        "Created local directory at <*>"
    );
    assert_eq!(
        template_of("GET https://example.com/a/b?c=1 done"),
        "GET <*> done"
    );
    assert_eq!(
        template_of("open C:\\Users\\x\\file.txt failed"),
        "open <*> failed"
    );
    assert_eq!(kinds("read /etc/passwd")[1], Some(MaskKind::Path));
}

#[test]
fn emails_and_hosts() {
    assert_eq!(
        template_of("mail to alice.smith@example.org bounced"),
        "mail to <*> bounced"
    );
    assert_eq!(
        template_of("Resolved MSRA-SA-39.fareast.corp.microsoft.com to rack"),
        "Resolved <*> to rack"
    );
}

#[test]
fn timestamps_and_dates() {
    assert_eq!(
        template_of("at 2024-01-01 12:00:00,123 job ran"),
        "at <*> job ran"
    );
    assert_eq!(
        template_of("at 2024-01-01T12:00:00Z job ran"),
        "at <*> job ran"
    );
    assert_eq!(template_of("on 2024/03/05 ok"), "on <*> ok");
    assert_eq!(
        template_of("changed Thu Aug 04 15:29:45 PDT 2005 ok"),
        "changed <*> ok"
    );
    assert_eq!(template_of("at 12:30:45.120 tick"), "at <*> tick");
}

#[test]
fn durations_and_sizes_are_one_variable() {
    assert_eq!(template_of("took 12ms"), "took <*>");
    assert_eq!(template_of("free 3.5 GB left"), "free <*> left");
    assert_eq!(template_of("free 120 MB left"), "free <*> left");
    assert_eq!(kinds("took 12ms")[1], Some(MaskKind::Duration));
    // same token count whatever the unit spelling
    assert_eq!(
        template_of("estimated size 917.0 B, free 3 KB"),
        template_of("estimated size 5.4 KB, free 378.2 KB")
    );
}

#[test]
fn key_value_values() {
    assert_eq!(
        template_of("uid=0 euid=0 tty=ssh ruser= rhost=1.2.3.4"),
        "uid=<*> euid=<*> tty=<*> ruser= rhost=<*>"
    );
    assert_eq!(
        template_of("user=\"John Smith\" logged in"),
        "user=<*> logged in"
    );
}

#[test]
fn quoted_strings_are_tokens_like_any_other() {
    // the method of a quoted HTTP request line tells events apart: it is kept
    assert_eq!(
        template_of(r#"10.11.10.1 "GET /v2/servers/detail HTTP/1.1" status: 200"#),
        r#"<*> "GET <*> HTTP/<*>.<*>" status: <*>"#
    );
    assert_eq!(
        template_of("Added global filter 'safety'"),
        "Added global filter 'safety'"
    );
    // a quoted value of a key is masked with the key=value rule
    assert_eq!(
        template_of("user=\"John Smith\" logged in"),
        "user=<*> logged in"
    );
}

/// Masking a quoted string as one variable is an option (`Config::mask_quoted`).
#[test]
fn quoted_strings_as_one_variable_on_request() {
    use tidewatch_logs::{Config, Miner};
    let mut m = Miner::new(Config {
        mask_quoted: true,
        ..Config::default()
    });
    assert_eq!(
        m.add("file 'my report 2.txt' saved").template,
        "file <*> saved"
    );
    assert_eq!(
        m.add("cannot open \"a b c\" now").template,
        "cannot open <*> now"
    );
}

#[test]
fn identifiers_with_numbers() {
    assert_eq!(
        template_of("Deleting block blk_-1608999687919862906 file x"),
        "Deleting block <*> file x"
    );
    assert_eq!(
        template_of("Deleting block blk_38865049064139660 file x"),
        "Deleting block <*> file x"
    );
    assert_eq!(
        template_of("Created MRAppMaster for application appattempt_1445144423722_0020_000001"),
        "Created MRAppMaster for application <*>"
    );
    assert_eq!(
        template_of("job job_1445144423722_0020 done"),
        "job <*> done"
    );
    assert_eq!(template_of("Block rdd_42_35 stored"), "Block <*> stored");
    assert_eq!(template_of("set x=-3 and (-1)"), "set x=<*> and (<*>)");
    // a hyphen between words is not a sign
    assert_eq!(template_of("run pre-5 now"), "run pre-<*> now");
    assert!(kinds("x blk_123")[1].is_some());
}

#[test]
fn host_names_with_and_without_ports() {
    // any dotted name followed by a port, whatever its top-level domain
    assert_eq!(
        template_of(
            "proxy.cse.cuhk.edu.hk:5070 open through proxy proxy.cse.cuhk.edu.hk:5070 HTTPS"
        ),
        "<*> open through proxy <*> HTTPS"
    );
    assert_eq!(template_of("to sinaimg.cn:80 closed"), "to <*> closed");
    // a country code under a generic second level
    assert_eq!(template_of("host www.bbc.co.uk up"), "host <*> up");
    // a dotted quad with a port stays an IPv4 address
    assert_eq!(kinds("peer 10.0.0.1:80")[1], Some(MaskKind::Ip));
    // Java-like names and dotted settings are kept
    assert_eq!(
        template_of("mapred.job.id is deprecated"),
        "mapred.job.id is deprecated"
    );
    assert_eq!(
        template_of("Registering class org.apache.hadoop.mapreduce.jobhistory.EventType"),
        "Registering class org.apache.hadoop.mapreduce.jobhistory.EventType"
    );
}

#[test]
fn hex_ids_from_six_digits() {
    assert_eq!(template_of("token 9f4ef63 ok"), "token <*> ok");
    assert_eq!(template_of("token d41d8cd98f00 ok"), "token <*> ok");
    // hex letters alone make a word
    assert_eq!(template_of("a facade b"), "a facade b");
}

#[test]
fn adjacent_variables_collapse_and_whitespace_normalises() {
    assert_eq!(
        template_of("Fan speeds ( 3552 3534 3375 )"),
        "Fan speeds ( <*> )"
    );
    assert_eq!(template_of("  a\t\tb   c "), "a b c");
    let toks = tokenize("ids 1 2 3 end", 1 << 20);
    assert_eq!(toks[1].original, "1 2 3");
}
