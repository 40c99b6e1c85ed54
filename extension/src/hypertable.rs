//! Hypertables on native range partitioning: create_hypertable, chunks, maintenance, retention.
//! The DDL orchestration is SQL (sql/hypertable.sql): it is a sequence of catalog look-ups and
//! DDL statements, which PL/pgSQL expresses directly and which keeps every identifier behind
//! regclass or format('%I'). Rust holds the arithmetic it calls (time_bucket).

use pgrx::prelude::*;

extension_sql_file!("../../sql/catalog.sql", name = "catalog");
extension_sql_file!(
    "../../sql/hypertable.sql",
    name = "hypertable",
    requires = ["catalog", "time_bucket_variants"]
);

#[cfg(any(test, feature = "pg_test"))]
#[pg_schema]
mod tests {
    use pgrx::prelude::*;

    fn count(sql: &str) -> i64 {
        Spi::get_one::<i64>(sql).unwrap().unwrap_or(-1)
    }

    #[pg_test]
    fn empty_table_becomes_hypertable_and_any_timestamp_inserts() {
        Spi::run("CREATE TABLE m (ts timestamptz NOT NULL, sat text, value float8)").unwrap();
        Spi::run("SELECT * FROM tidewatch.create_hypertable('m', 'ts', interval '1 day')").unwrap();
        assert_eq!(
            count("SELECT count(*) FROM pg_partitioned_table WHERE partrelid = 'm'::regclass"),
            1
        );
        // Chunks for today and 3 days ahead, plus the default partition.
        assert_eq!(count("SELECT count(*) FROM tidewatch.chunks WHERE hypertable = 'm'::regclass AND NOT is_default"), 4);
        assert_eq!(count("SELECT count(*) FROM tidewatch.chunks WHERE hypertable = 'm'::regclass AND is_default"), 1);
        // Far past and far future rows land in the default partition, never fail.
        Spi::run(
            "INSERT INTO m VALUES (now(), 'SAT1', 1), ('1990-01-01', 'SAT1', 2), ('2190-06-01', 'SAT2', 3),
                                  ('infinity', 'SAT3', 4)",
        )
        .unwrap();
        assert_eq!(count("SELECT count(*) FROM m"), 4);
        assert_eq!(count("SELECT count(*) FROM ONLY m_default"), 3);
        // Maintenance moves the finite ones into their chunks; no row is lost.
        let moved = count("SELECT rows_moved FROM tidewatch.run_maintenance('m')");
        assert_eq!(moved, 2);
        assert_eq!(count("SELECT count(*) FROM m"), 4);
        assert_eq!(count("SELECT count(*) FROM ONLY m_default"), 1);
        assert_eq!(
            count("SELECT count(*) FROM tidewatch.chunks WHERE hypertable = 'm'::regclass AND range_start = '1990-01-01'"),
            1
        );
    }

    #[pg_test]
    fn a_long_multibyte_table_name_gets_distinct_chunk_names() {
        // 31 two-byte letters: 62 bytes, about the longest name PostgreSQL keeps. Chunk names
        // were cut to 49 characters (98 bytes here) before the suffix, then truncated by
        // PostgreSQL to 63 bytes after the uniqueness check: the second chunk's name clashed.
        let t = "ü".repeat(31);
        Spi::run(&format!(
            "CREATE TABLE \"{t}\" (ts timestamptz NOT NULL, v int)"
        ))
        .unwrap();
        Spi::run(&format!(
            "SELECT * FROM tidewatch.create_hypertable('\"{t}\"', 'ts', interval '1 day')"
        ))
        .unwrap();
        let chunks = format!(
            "FROM tidewatch.chunks c WHERE c.hypertable = '\"{t}\"'::regclass AND NOT c.is_default"
        );
        assert_eq!(count(&format!("SELECT count(*) {chunks}")), 4);
        assert_eq!(
            count(&format!("SELECT count(DISTINCT c.chunk_name) {chunks}")),
            4
        );
        // The day of each chunk is in its name, after the cut (which keeps whole letters).
        assert_eq!(
            count(&format!(
                "SELECT count(*) {chunks} AND c.chunk_name::text LIKE '%' || to_char(c.range_start AT TIME ZONE 'UTC', 'YYYYMMDD')"
            )),
            4
        );
    }

    #[pg_test]
    fn migrate_data_keeps_rows_indexes_defaults_constraints_grants_comments() {
        Spi::run(
            "CREATE ROLE tw_reader;
             CREATE TABLE legacy (id bigserial, ts timestamptz NOT NULL, v float8 DEFAULT 42 CHECK (v > -1000),
                                  PRIMARY KEY (id, ts));
             CREATE INDEX legacy_v_idx ON legacy (v);
             COMMENT ON TABLE legacy IS 'legacy metrics';
             COMMENT ON COLUMN legacy.v IS 'the value';
             GRANT SELECT ON legacy TO tw_reader;
             INSERT INTO legacy (ts, v) SELECT t, random() FROM generate_series(now() - interval '10 days', now(), interval '1 hour') t;",
        )
        .unwrap();
        let before = count("SELECT count(*) FROM legacy");
        let sum_before = Spi::get_one::<f64>("SELECT sum(v) FROM legacy")
            .unwrap()
            .unwrap();
        Spi::run("SELECT * FROM tidewatch.create_hypertable('legacy', 'ts', migrate_data => true)")
            .unwrap();
        assert_eq!(count("SELECT count(*) FROM legacy"), before);
        assert_eq!(
            Spi::get_one::<f64>("SELECT sum(v) FROM legacy")
                .unwrap()
                .unwrap(),
            sum_before
        );
        assert_eq!(count("SELECT count(*) FROM ONLY legacy_default"), 0);
        assert!(count("SELECT count(*) FROM tidewatch.show_chunks('legacy')") >= 11);
        assert_eq!(count("SELECT count(*) FROM pg_indexes WHERE tablename = 'legacy' AND indexname IN ('legacy_pkey', 'legacy_v_idx')"), 2);
        assert_eq!(
            Spi::get_one::<String>("SELECT obj_description('legacy'::regclass, 'pg_class')")
                .unwrap()
                .unwrap(),
            "legacy metrics"
        );
        assert_eq!(
            Spi::get_one::<String>("SELECT col_description('legacy'::regclass, 3)")
                .unwrap()
                .unwrap(),
            "the value"
        );
        assert_eq!(
            Spi::get_one::<bool>("SELECT has_table_privilege('tw_reader', 'legacy', 'SELECT')")
                .unwrap(),
            Some(true)
        );
        // The serial sequence still belongs to the table and continues after the old rows.
        Spi::run("INSERT INTO legacy (ts) VALUES (now())").unwrap();
        assert_eq!(count("SELECT count(DISTINCT id) FROM legacy"), before + 1);
        assert_eq!(
            Spi::get_one::<f64>("SELECT v FROM legacy ORDER BY id DESC LIMIT 1").unwrap(),
            Some(42.0)
        );
        assert_eq!(count("SELECT count(*) FROM pg_constraint WHERE conrelid = 'legacy'::regclass AND conname = 'legacy_v_check'"), 1);
    }

    #[pg_test]
    fn declared_partitioned_table_is_adopted() {
        Spi::run(
            "CREATE TABLE p (ts timestamp NOT NULL, v int) PARTITION BY RANGE (ts);
             CREATE TABLE p_old PARTITION OF p FOR VALUES FROM ('2020-01-01 06:00') TO ('2020-01-02 06:00');
             SELECT * FROM tidewatch.create_hypertable('p', 'ts', interval '1 day');
             INSERT INTO p VALUES ('2020-01-01 03:00', 1), ('2020-01-02 12:00', 2), ('2020-01-01 12:00', 3);",
        )
        .unwrap();
        Spi::run("SELECT * FROM tidewatch.run_maintenance('p')").unwrap();
        // Chunks around the hand-made partition are clipped to it.
        assert_eq!(count("SELECT count(*) FROM ONLY p_default"), 0);
        assert_eq!(count("SELECT count(*) FROM p"), 3);
        assert_eq!(count("SELECT count(*) FROM p_old"), 1);
    }

    #[pg_test]
    fn queries_prune_chunks() {
        Spi::run(
            "CREATE TABLE q (ts timestamptz NOT NULL, v int);
             SELECT * FROM tidewatch.create_hypertable('q', 'ts', interval '1 day');
             INSERT INTO q SELECT t, 1 FROM generate_series(now() - interval '20 days', now(), interval '1 hour') t;
             SELECT * FROM tidewatch.run_maintenance('q');",
        )
        .unwrap();
        // A closed range inside one past day touches exactly that day's chunk (and not the
        // default partition, which the planner can exclude when chunks cover the range).
        let day = Spi::get_one::<String>(
            "SELECT (tidewatch.time_bucket('1 day', now()) - interval '5 days')::text",
        )
        .unwrap()
        .unwrap();
        let plan = Spi::explain(&format!(
            "SELECT count(*) FROM q WHERE ts >= '{day}' AND ts < '{day}'::timestamptz + interval '12 hours'"
        ))
        .unwrap();
        let text = format!("{:?}", plan.0);
        let scanned = text.matches("\"Relation Name\"").count();
        let all = count("SELECT count(*) FROM tidewatch.chunks WHERE hypertable = 'q'::regclass")
            as usize;
        assert!(
            scanned == 1 && all > 20,
            "scanned {scanned} of {all}: {text}"
        );
    }

    #[pg_test]
    fn drop_chunks_and_retention_policy() {
        Spi::run(
            "CREATE TABLE runs (ts timestamptz NOT NULL, msg text);
             SELECT * FROM tidewatch.create_hypertable('runs', 'ts', interval '1 day');
             INSERT INTO runs SELECT t, 'x' FROM generate_series(now() - interval '30 days', now(), interval '1 hour') t;
             SELECT * FROM tidewatch.run_maintenance('runs');",
        )
        .unwrap();
        let total = count("SELECT count(*) FROM runs");
        let old = count("SELECT count(*) FROM runs WHERE ts < tidewatch.time_bucket('1 day', now() - interval '7 days')");
        let job =
            Spi::get_one::<i32>("SELECT tidewatch.add_retention_policy('runs', interval '7 days')")
                .unwrap()
                .unwrap();
        Spi::run(&format!("CALL tidewatch.run_job({job})")).unwrap();
        assert_eq!(count("SELECT count(*) FROM runs"), total - old);
        assert_eq!(
            count("SELECT count(*) FROM runs WHERE ts < now() - interval '8 days'"),
            0
        );
        assert_eq!(
            count(&format!(
                "SELECT total_successes FROM tidewatch.job_stats WHERE job_id = {job}"
            )),
            1
        );
        Spi::run("SELECT tidewatch.remove_retention_policy('runs')").unwrap();
        assert_eq!(
            count(&format!(
                "SELECT count(*) FROM tidewatch.jobs WHERE job_id = {job}"
            )),
            0
        );
    }

    #[pg_test(error = "drop_chunks needs older_than or newer_than")]
    fn drop_chunks_without_bound_is_an_error() {
        Spi::run("CREATE TABLE d (ts timestamptz NOT NULL); SELECT * FROM tidewatch.create_hypertable('d', 'ts')").unwrap();
        Spi::run("SELECT tidewatch.drop_chunks('d')").unwrap();
    }

    #[pg_test(error = "table \"public.full_t\" is not empty")]
    fn rows_without_migrate_data_is_an_error() {
        Spi::run(
            "CREATE TABLE full_t (ts timestamptz NOT NULL); INSERT INTO full_t VALUES (now())",
        )
        .unwrap();
        Spi::run("SELECT tidewatch.create_hypertable('full_t', 'ts')").unwrap();
    }

    #[pg_test(error = "column \"name\" has type text, not timestamptz, timestamp or date")]
    fn non_time_column_is_an_error() {
        Spi::run("CREATE TABLE w (ts timestamptz, name text)").unwrap();
        Spi::run("SELECT tidewatch.create_hypertable('w', 'name')").unwrap();
    }

    #[pg_test(error = "invalid chunk_time_interval: -01:00:00")]
    fn negative_interval_is_an_error() {
        Spi::run("CREATE TABLE w2 (ts timestamptz)").unwrap();
        Spi::run("SELECT tidewatch.create_hypertable('w2', 'ts', interval '-1 hour')").unwrap();
    }

    #[pg_test(error = "relation \"does_not_exist\" does not exist")]
    fn missing_table_is_an_error() {
        Spi::run("SELECT tidewatch.create_hypertable('does_not_exist', 'ts')").unwrap();
    }

    #[pg_test(error = "table \"public.twice\" is already a hypertable")]
    fn twice_is_an_error_unless_if_not_exists() {
        Spi::run("CREATE TABLE twice (ts timestamptz NOT NULL)").unwrap();
        Spi::run("SELECT tidewatch.create_hypertable('twice', 'ts')").unwrap();
        let created = Spi::get_one::<bool>(
            "SELECT created FROM tidewatch.create_hypertable('twice', 'ts', if_not_exists => true)",
        )
        .unwrap();
        assert_eq!(created, Some(false));
        Spi::run("SELECT tidewatch.create_hypertable('twice', 'ts')").unwrap();
    }

    #[pg_test]
    fn hostile_table_name_is_quoted_everywhere() {
        Spi::run(
            r#"CREATE TABLE y (a int);
               CREATE TABLE "x; DROP TABLE y" ("t; --" timestamptz NOT NULL, v int);
               SELECT * FROM tidewatch.create_hypertable('"x; DROP TABLE y"', 't; --', interval '1 hour');
               INSERT INTO "x; DROP TABLE y" VALUES ('1999-01-01', 1), (now(), 2);
               SELECT * FROM tidewatch.run_maintenance('"x; DROP TABLE y"');
               SELECT tidewatch.drop_chunks('"x; DROP TABLE y"', older_than => '2000-01-01'::timestamptz);"#,
        )
        .unwrap();
        assert_eq!(count("SELECT count(*) FROM y"), 0);
        assert_eq!(count(r#"SELECT count(*) FROM "x; DROP TABLE y""#), 1);
    }

    #[pg_test]
    fn read_only_functions_are_parallel_safe_and_writers_are_not() {
        let wrong = Spi::get_one::<String>(
            "SELECT string_agg(p.oid::regprocedure::text, ', ') FROM pg_proc p
             WHERE p.pronamespace = 'tidewatch'::regnamespace
               AND ((p.proname IN ('show_chunks', 'time_bucket', '_partitions', '_range_parents', '_hypertable') AND p.proparallel <> 's')
                 OR (p.proname IN ('create_hypertable', 'drop_chunks', 'run_maintenance', 'add_job', '_ensure_chunk',
                                   '_ensure_range_chunk')
                     AND p.proparallel = 's'))",
        )
        .unwrap();
        assert_eq!(wrong, None);
    }

    #[pg_test]
    fn failed_create_hypertable_changes_nothing() {
        Spi::run("CREATE TABLE keep (id int PRIMARY KEY, ts timestamptz NOT NULL); INSERT INTO keep VALUES (1, now())").unwrap();
        // Runs in a subtransaction so that the error can be observed and the test go on.
        Spi::run(
            "DO $$ BEGIN PERFORM tidewatch.create_hypertable('keep', 'ts', migrate_data => true);
                   EXCEPTION WHEN feature_not_supported THEN NULL; END $$",
        )
        .unwrap();
        assert_eq!(count("SELECT count(*) FROM keep"), 1);
        assert_eq!(
            count("SELECT count(*) FROM pg_class WHERE relname = 'keep' AND relkind = 'r'"),
            1
        );
        assert_eq!(count("SELECT count(*) FROM tidewatch.hypertable WHERE relid::regclass::text NOT LIKE 'tidewatch.%'"), 0);
        assert_eq!(
            count("SELECT count(*) FROM pg_class WHERE relname LIKE 'keep%' AND relkind = 'p'"),
            0
        );
    }

    #[pg_test]
    fn dropping_a_hypertable_cleans_the_catalog() {
        Spi::run("CREATE TABLE gone (ts timestamptz NOT NULL); SELECT * FROM tidewatch.create_hypertable('gone', 'ts')").unwrap();
        Spi::run("DROP TABLE gone").unwrap();
        assert_eq!(count("SELECT count(*) FROM tidewatch.hypertable WHERE relid::regclass::text NOT LIKE 'tidewatch.%'"), 0);
        assert_eq!(count("SELECT count(*) FROM tidewatch.job"), 0);
    }

    // Space partitioning: hash partitions by the series column(s), each range-partitioned on time.

    /// The hash partition holding each row (the oracle: PostgreSQL's own routing, read back
    /// through tableoid, not our catalog).
    /// (`{t}` is the table's name or alias: unqualified, `tableoid` would be pg_inherits' own.)
    const PART_OF: &str = "(SELECT i.inhparent FROM pg_inherits i WHERE i.inhrelid = {t}.tableoid)";

    #[pg_test]
    fn space_partitions_keep_each_series_in_one_partition() {
        Spi::run(
            "CREATE TABLE sp (ts timestamptz NOT NULL, sat text, v float8);
             CREATE INDEX ON sp (sat, ts);
             SELECT * FROM tidewatch.create_hypertable('sp', 'ts', interval '1 day',
                                                        partitioning_column => 'sat', number_partitions => 4);",
        )
        .unwrap();
        assert_eq!(
            count("SELECT count(*) FROM tidewatch._range_parents('sp')"),
            4
        );
        assert_eq!(count("SELECT count(*) FROM pg_partitioned_table WHERE partrelid = 'sp'::regclass AND partstrat = 'h'"), 1);
        // Chunks for today and 3 days ahead in each hash partition, and a default partition each.
        assert_eq!(count("SELECT count(*) FROM tidewatch.chunks WHERE hypertable = 'sp'::regclass AND NOT is_default"), 16);
        assert_eq!(count("SELECT count(*) FROM tidewatch.chunks WHERE hypertable = 'sp'::regclass AND is_default"), 4);
        assert_eq!(count("SELECT count(DISTINCT space_partition) FROM tidewatch.chunks WHERE hypertable = 'sp'::regclass"), 4);
        assert_eq!(count("SELECT number_partitions FROM tidewatch.hypertables WHERE hypertable = 'sp'::regclass"), 4);
        // 40 series over 10 days: the past days wait in the default partitions.
        Spi::run(
            "CREATE TEMP TABLE want AS
             SELECT t AS ts, 'SAT' || s AS sat, s * 1000 + extract(epoch FROM t) / 3600 AS v
             FROM generate_series(1, 40) s, generate_series(now() - interval '10 days', now(), interval '1 hour') t;
             INSERT INTO sp SELECT * FROM want;",
        )
        .unwrap();
        assert!(
            count("SELECT count(*) FROM sp WHERE tableoid::regclass::text LIKE '%default'") > 0
        );
        assert!(count("SELECT rows_moved FROM tidewatch.run_maintenance('sp')") > 0);
        assert_eq!(
            count("SELECT rows_left_in_default FROM tidewatch.run_maintenance('sp')"),
            0
        );
        // Nothing lost or changed: the rows are exactly the inserted ones.
        assert_eq!(
            count("SELECT count(*) FROM (SELECT * FROM sp EXCEPT ALL SELECT * FROM want) x"),
            0
        );
        assert_eq!(
            count("SELECT count(*) FROM (SELECT * FROM want EXCEPT ALL SELECT * FROM sp) x"),
            0
        );
        // Every series lives in exactly one hash partition, and every partition holds some.
        assert_eq!(
            count(&format!("SELECT count(*) FROM (SELECT sat FROM sp GROUP BY sat HAVING count(DISTINCT {}) <> 1) x", PART_OF.replace("{t}", "sp"))),
            0
        );
        assert_eq!(
            count(&format!(
                "SELECT count(DISTINCT {}) FROM sp",
                PART_OF.replace("{t}", "sp")
            )),
            4
        );
        // Every row is in a chunk whose range holds it, under its own hash partition.
        assert_eq!(
            count(&format!(
                "SELECT count(*) FROM sp JOIN tidewatch.chunks c ON c.chunk = sp.tableoid
                 WHERE c.is_default OR sp.ts < c.range_start OR sp.ts >= c.range_end OR c.space_partition <> {}",
                PART_OF.replace("{t}", "sp")
            )),
            0
        );
        // drop_chunks drops old chunks in every partition, and only those.
        let cut = "tidewatch.time_bucket('1 day', now() - interval '5 days')";
        let old = count(&format!("SELECT count(*) FROM tidewatch.chunks WHERE hypertable = 'sp'::regclass AND range_end <= {cut}"));
        assert!(old >= 16, "{old} old chunks");
        assert_eq!(
            count(&format!(
                "SELECT count(*) FROM tidewatch.drop_chunks('sp', older_than => {cut})"
            )),
            old
        );
        assert_eq!(
            count(&format!("SELECT count(*) FROM sp WHERE ts < {cut}")),
            0
        );
        assert_eq!(
            count("SELECT count(*) FROM sp"),
            count(&format!("SELECT count(*) FROM want WHERE ts >= {cut}"))
        );
    }

    #[pg_test]
    fn space_partitioning_migrates_rows_and_checks_its_arguments() {
        Spi::run(
            "CREATE TABLE mig (id bigserial, ts timestamptz NOT NULL, dev int, metric text, v float8,
                               PRIMARY KEY (id, ts, dev, metric));
             INSERT INTO mig (ts, dev, metric, v)
             SELECT now() - i * interval '7 minutes', i % 13, 'm' || (i % 3), i FROM generate_series(1, 5000) i;
             SELECT * FROM tidewatch.create_hypertable('mig', 'ts', migrate_data => true,
                                                        partitioning_columns => '{dev, metric}', number_partitions => 3);",
        )
        .unwrap();
        assert_eq!(count("SELECT count(*) FROM mig"), 5000);
        assert_eq!(count("SELECT sum(v)::bigint FROM mig"), 5000 * 5001 / 2);
        assert_eq!(count("SELECT count(*) FROM ONLY mig"), 0);
        assert_eq!(
            count("SELECT count(*) FROM tidewatch._range_parents('mig')"),
            3
        );
        assert_eq!(
            count(&format!("SELECT count(*) FROM (SELECT dev, metric FROM mig GROUP BY 1, 2 HAVING count(DISTINCT {}) <> 1) x", PART_OF.replace("{t}", "mig"))),
            0
        );
        // Partitions and chunks are named after the table, not the temporary one (their indexes
        // keep the names they got when made, as without space partitioning).
        assert_eq!(
            count("SELECT count(*) FROM pg_class WHERE relname LIKE '%tw_new%' AND relkind IN ('r', 'p')"),
            0
        );
        assert_eq!(
            count("SELECT count(*) FROM pg_class WHERE relname = 'mig_h2'"),
            1
        );
        // The serial continues.
        Spi::run("INSERT INTO mig (ts, dev, metric, v) VALUES (now(), 1, 'm1', 0)").unwrap();
        assert_eq!(count("SELECT max(id) FROM mig"), 5001);
    }

    #[pg_test(error = "invalid number_partitions: NULL")]
    fn space_partitioning_needs_number_partitions() {
        Spi::run("CREATE TABLE np (ts timestamptz NOT NULL, sat text)").unwrap();
        Spi::run("SELECT tidewatch.create_hypertable('np', 'ts', partitioning_column => 'sat')")
            .unwrap();
    }

    #[pg_test(error = "partitioning column \"nope\" does not exist in table \"public.nc\"")]
    fn space_partitioning_on_a_missing_column_is_an_error() {
        Spi::run("CREATE TABLE nc (ts timestamptz NOT NULL, sat text)").unwrap();
        Spi::run("SELECT tidewatch.create_hypertable('nc', 'ts', partitioning_column => 'nope', number_partitions => 2)").unwrap();
    }

    #[pg_test(
        error = "cannot convert \"public.pk\" to a hypertable: unique index \"public.pk_pkey\" does not include column \"sat\""
    )]
    fn space_partitioning_needs_the_column_in_unique_keys() {
        Spi::run(
            "CREATE TABLE pk (id int, ts timestamptz NOT NULL, sat text, PRIMARY KEY (id, ts))",
        )
        .unwrap();
        Spi::run("SELECT tidewatch.create_hypertable('pk', 'ts', partitioning_column => 'sat', number_partitions => 2)").unwrap();
    }

    /// Per-series work over a hypertable with space partitioning gives what it gives over a plain
    /// table of the same rows (the oracle), and aggregates partition-wise.
    #[pg_test]
    fn space_partitioned_scoring_matches_a_plain_table() {
        Spi::run(
            "CREATE TABLE flat (ts timestamptz NOT NULL, sat text, metric int, v float8);
             INSERT INTO flat SELECT timestamptz '2026-01-01' + i * interval '10 minutes', 'SAT' || s, m,
                    sin(i / 9.0 + s) + m + CASE WHEN i = 60 + s THEN 9 ELSE 0 END
             FROM generate_series(0, 199) i, generate_series(1, 30) s, generate_series(1, 2) m;
             CREATE TABLE sp2 (LIKE flat);
             SELECT tidewatch.create_hypertable('sp2', 'ts', interval '1 day',
                                                partitioning_column => 'sat', number_partitions => 4);
             INSERT INTO sp2 SELECT * FROM flat;
             SELECT tidewatch.run_maintenance('sp2');
             CREATE TABLE plain_h (LIKE flat);
             SELECT tidewatch.create_hypertable('plain_h', 'ts', interval '1 day');
             INSERT INTO plain_h SELECT * FROM flat;
             SELECT tidewatch.run_maintenance('plain_h');
             ANALYZE sp2, plain_h;",
        )
        .unwrap();
        for q in [
            "SELECT series, ts, value, expected, lower, upper, score, is_anomaly
             FROM tidewatch.detect_anomalies('{t}', 'v', '{sat,metric}')",
            "SELECT series, ts, score FROM tidewatch.detect_anomalies('{t}', 'v', '{sat,metric}', anomalies_only => true)",
            "SELECT series, bucket_start, value, score, is_outlier
             FROM tidewatch.peer_outliers('{t}', 'v', '{sat}', interval '2 hours', '2026-01-01', '2026-01-03')",
        ] {
            let (a, b) = (q.replace("{t}", "sp2"), q.replace("{t}", "plain_h"));
            assert!(count(&format!("SELECT count(*) FROM ({a}) x")) > 0, "{a}");
            assert_eq!(count(&format!("SELECT count(*) FROM (({a}) EXCEPT ALL ({b})) x")), 0, "{a}");
            assert_eq!(count(&format!("SELECT count(*) FROM (({b}) EXCEPT ALL ({a})) x")), 0, "{a}");
        }
        Spi::run(
            "SELECT tidewatch.train_detector('on_sp', 'sp2', 'v', '{sat,metric}', interval '10 years', 'robust');
             SELECT tidewatch.train_detector('on_plain', 'plain_h', 'v', '{sat,metric}', interval '10 years', 'robust');",
        )
        .unwrap();
        assert_eq!(
            count("SELECT count(*) FROM tidewatch.models WHERE name = 'on_sp'"),
            60
        );
        assert_eq!(
            count(
                "SELECT count(*) FROM tidewatch.models a FULL JOIN tidewatch.models b
                   ON a.series = b.series AND a.state = b.state AND a.name = 'on_sp' AND b.name = 'on_plain'
                 WHERE (a.name = 'on_sp' OR b.name = 'on_plain') AND (a.id IS NULL OR b.id IS NULL)"
            ),
            0
        );
        // The setting is back as it was after each call.
        assert_eq!(
            Spi::get_one::<String>("SELECT current_setting('enable_partitionwise_aggregate')")
                .unwrap()
                .as_deref(),
            Some("off")
        );
        // Partition-wise: an Append (parallel or not) of one complete aggregate per hash
        // partition (each may combine partial aggregates of its chunks).
        Spi::run("SET LOCAL enable_partitionwise_aggregate = on").unwrap();
        let plan = Spi::get_one::<pgrx::Json>(
            "EXPLAIN (FORMAT JSON) SELECT sat, metric, tidewatch.anomaly_agg(ts, v) FROM sp2 GROUP BY sat, metric",
        )
        .unwrap()
        .map(|j| j.0)
        .unwrap_or_default();
        // Under a Gather when the planner gives the partitions to parallel workers.
        let mut top = &plan[0]["Plan"];
        if top["Node Type"] == "Gather" {
            top = &top["Plans"][0];
        }
        assert_eq!(top["Node Type"], "Append", "{plan}");
        let parts = top["Plans"].as_array().cloned().unwrap_or_default();
        assert_eq!(parts.len(), 4, "{plan}");
        for p in parts {
            assert_eq!(p["Node Type"], "Aggregate", "{plan}");
            assert_ne!(p["Partial Mode"], "Partial", "{plan}");
        }
    }

    /// With space partitioning the leader takes no partition when the parallel workers already
    /// take every CPU (it would finish last), keeps taking them when a CPU is spare, and both
    /// settings are put back after each call. Oracle for the CPU count: `nproc`.
    #[pg_test]
    fn partitionwise_keeps_the_leader_out_only_when_the_cpus_are_taken() {
        let cpus = Spi::get_one::<i32>("SELECT tidewatch._cpu_count()")
            .unwrap()
            .unwrap_or(0);
        if let Some(n) = std::process::Command::new("nproc")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse::<i32>().ok())
        {
            assert_eq!(cpus, n);
        }
        assert!(cpus >= 1);
        Spi::run(
            "CREATE TABLE lp (ts timestamptz NOT NULL, sat text NOT NULL, v float8);
             SELECT tidewatch.create_hypertable('lp', 'ts', interval '1 day',
                                                partitioning_column => 'sat', number_partitions => 2);
             CREATE TABLE lt (ts timestamptz NOT NULL, sat text NOT NULL, v float8);
             SELECT tidewatch.create_hypertable('lt', 'ts', interval '1 day');
             INSERT INTO lp SELECT timestamptz '2026-01-01' + i * interval '1 minute', 's' || (i % 3), sin(i)
               FROM generate_series(1, 500) i;",
        )
        .unwrap();
        let setting = |name: &str| {
            Spi::get_one::<String>(&format!("SELECT current_setting('{name}')"))
                .unwrap()
                .unwrap_or_default()
        };
        let leader = || setting("parallel_leader_participation");
        let pw = || setting("enable_partitionwise_aggregate");
        // Workers + leader > CPUs: the leader stays out while the query runs, then is back.
        Spi::run(&format!("SET max_parallel_workers_per_gather = {cpus}")).unwrap();
        Spi::run("SET parallel_leader_participation = on").unwrap();
        Spi::run("SET enable_partitionwise_aggregate = off").unwrap();
        let prev = Spi::get_one::<Vec<Option<String>>>("SELECT tidewatch._partitionwise('lp')")
            .unwrap()
            .unwrap_or_default();
        assert_eq!((leader(), pw()), ("off".to_string(), "on".to_string()));
        assert_eq!(prev, vec![Some("off".to_string()), Some("on".to_string())]);
        Spi::run("SELECT tidewatch._partitionwise_end(ARRAY['off', 'on'])").unwrap();
        assert_eq!((leader(), pw()), ("on".to_string(), "off".to_string()));
        // After a whole call, too.
        let n = Spi::get_one::<i64>(
            "SELECT count(*) FROM tidewatch.detect_anomalies('lp', 'v', '{sat}')",
        )
        .unwrap();
        assert_eq!(n, Some(500));
        assert_eq!((leader(), pw()), ("on".to_string(), "off".to_string()));
        // A CPU to spare (no workers at all here): the leader keeps its share.
        Spi::run("SET max_parallel_workers_per_gather = 0").unwrap();
        Spi::run("SELECT tidewatch._partitionwise('lp')").unwrap();
        assert_eq!((leader(), pw()), ("on".to_string(), "on".to_string()));
        Spi::run("SET enable_partitionwise_aggregate = off").unwrap();
        // A table partitioned by time only: nothing changes.
        Spi::run(&format!("SET max_parallel_workers_per_gather = {cpus}")).unwrap();
        let none =
            Spi::get_one::<Vec<Option<String>>>("SELECT tidewatch._partitionwise('lt')").unwrap();
        assert_eq!(none, None);
        assert_eq!((leader(), pw()), ("on".to_string(), "off".to_string()));
    }
}
