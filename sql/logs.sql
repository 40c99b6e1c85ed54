-- Log template mining with state in tables, learned fallback classifiers and real-time log
-- monitors. The algorithms are crates/tidewatch-logs; extension/src/logs.rs holds the miner
-- cache and the triggers' hot path; this file the catalog and the SQL-side orchestration.
-- Identifiers reach dynamic SQL only through regclass and %I.

-- A miner: its settings and a version that every change of its templates bumps, so that other
-- backends know to reload their cached copy.
CREATE TABLE tidewatch.log_miners (
    name       text        PRIMARY KEY CHECK (name <> ''),
    config     jsonb       NOT NULL DEFAULT '{}' CHECK (tidewatch._log_miner_config_check(config)),
    version    bigint      NOT NULL DEFAULT 0,
    lines      bigint      NOT NULL DEFAULT 0,
    owner      regrole     NOT NULL DEFAULT current_user::regrole,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE tidewatch.log_miners IS 'Log template miners: settings (jsonb, keys of the Drain-style miner: sim_threshold, max_clusters, ...), a version bumped by every template change, and the number of lines mined.';

-- One row per template (a cluster of the miner); the miner is rebuilt from these rows.
CREATE TABLE tidewatch.log_templates (
    miner      text        NOT NULL REFERENCES tidewatch.log_miners (name) ON DELETE CASCADE ON UPDATE CASCADE,
    id         bigint      NOT NULL,
    template   text        NOT NULL,
    first_seen timestamptz NOT NULL,
    last_seen  timestamptz NOT NULL,
    count      bigint      NOT NULL DEFAULT 0,
    evicted    boolean     NOT NULL DEFAULT false,
    cluster    jsonb       NOT NULL,
    PRIMARY KEY (miner, id)
);
COMMENT ON TABLE tidewatch.log_templates IS 'Templates of each log miner: id, template (<*> for parameters), first and last time seen, number of lines, and the cluster state the miner is rebuilt from. Templates dropped by the miner''s size cap stay with evicted = true.';

-- Learned fallback classifiers (naive Bayes over template tokens), by ruleset name.
CREATE TABLE tidewatch.log_classifiers (
    name       text        PRIMARY KEY,
    relation   regclass,
    n          bigint      NOT NULL,
    labels     jsonb       NOT NULL,
    model      jsonb       NOT NULL,
    owner      regrole     NOT NULL DEFAULT current_user::regrole,
    trained_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE tidewatch.log_classifiers IS 'Learned fallback classifiers for classify_log: the classifier named like a ruleset labels the lines that no rule of that ruleset matches.';

-- Real-time log monitors.
CREATE TABLE tidewatch.log_monitors (
    name            text        PRIMARY KEY CHECK (name <> ''),
    relid           regclass    NOT NULL,
    message_column  name        NOT NULL,
    time_column     name,
    miner           text        NOT NULL REFERENCES tidewatch.log_miners (name) ON UPDATE CASCADE,
    ruleset         text        NOT NULL DEFAULT 'default',
    template_column name,
    category_column name,
    burst_window    interval    NOT NULL DEFAULT interval '5 minutes' CHECK (burst_window >= interval '1 minute'),
    burst_min_count integer     NOT NULL DEFAULT 10 CHECK (burst_min_count > 0),
    owner           regrole     NOT NULL DEFAULT current_user::regrole,
    created_at      timestamptz NOT NULL DEFAULT now(),
    mode            text        NOT NULL DEFAULT 'sync' CHECK (mode IN ('sync', 'async')),
    wal_system      numeric,
    created_lsn     pg_lsn,
    async_lsn       pg_lsn,
    async_at        timestamptz,
    last_error      text
);
COMMENT ON TABLE tidewatch.log_monitors IS 'Real-time log monitors: every line inserted into relid gets its template and error class (mode sync: by row triggers, written to template_column/category_column when set; mode async: by the database''s decoder after commit, rows left as inserted), counted per minute in tidewatch.log_counts; new templates become events and bursts of an error class become log_burst anomaly episodes.';

-- Lines per minute, monitor, template and error class: a hypertable on bucket, 7-day chunks.
CREATE TABLE tidewatch.log_counts (
    monitor     text        NOT NULL,
    bucket      timestamptz NOT NULL,
    template_id bigint      NOT NULL,
    category    text        NOT NULL,
    severity    text        NOT NULL,
    n           bigint      NOT NULL,
    PRIMARY KEY (monitor, bucket, template_id, category)
) PARTITION BY RANGE (bucket);
CREATE TABLE tidewatch.log_counts_default PARTITION OF tidewatch.log_counts DEFAULT;
COMMENT ON TABLE tidewatch.log_counts IS 'Lines per minute of each log monitor by template and error class (hypertable on bucket): what Grafana charts as error rates.';
INSERT INTO tidewatch.hypertable (relid, time_column, time_type, chunk_interval, chunks_ahead)
    VALUES ('tidewatch.log_counts', 'bucket', 'timestamptz', interval '7 days', 1);

-- Per monitor and error class: the open burst episode.
CREATE TABLE tidewatch.log_monitor_state (
    monitor      text        NOT NULL REFERENCES tidewatch.log_monitors (name) ON DELETE CASCADE,
    category     text        NOT NULL,
    open_episode bigint,
    open_event   bigint,
    updated_at   timestamptz,
    PRIMARY KEY (monitor, category)
);
COMMENT ON TABLE tidewatch.log_monitor_state IS 'Per log monitor and error class: the burst episode still open, if any.';

INSERT INTO tidewatch.log_miners (name, config) VALUES ('default', '{}');

GRANT SELECT ON tidewatch.log_miners, tidewatch.log_templates, tidewatch.log_classifiers, tidewatch.log_monitors,
    tidewatch.log_counts, tidewatch.log_monitor_state TO PUBLIC;
GRANT INSERT, UPDATE, DELETE ON tidewatch.log_miners, tidewatch.log_classifiers, tidewatch.log_monitors TO PUBLIC;
-- Templates are written by the miner, counts and burst states by the monitors (as the extension's
-- owner: extension/src/definer.rs, the statement trigger and the async decoder), never by hand; a
-- miner's owner may delete its templates (sql/isolation.sql).
GRANT DELETE ON tidewatch.log_templates TO PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('tidewatch.log_miners', $$WHERE name <> 'default'$$);
SELECT pg_catalog.pg_extension_config_dump('tidewatch.log_templates', '');
SELECT pg_catalog.pg_extension_config_dump('tidewatch.log_classifiers', '');
SELECT pg_catalog.pg_extension_config_dump('tidewatch.log_monitors', '');
SELECT pg_catalog.pg_extension_config_dump('tidewatch.log_counts_default', '');
SELECT pg_catalog.pg_extension_config_dump('tidewatch.log_monitor_state', '');

-- µs since 2000-01-01 (PostgreSQL's epoch, as the Rust side reports times) to timestamptz.
CREATE FUNCTION tidewatch._pg_us(us bigint)
RETURNS timestamptz
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
RETURN timestamptz '2000-01-01 00:00:00+00' + us * interval '1 microsecond';

CREATE FUNCTION tidewatch.create_log_miner(name text, config jsonb DEFAULT '{}', if_not_exists boolean DEFAULT false)
RETURNS boolean
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
BEGIN
    IF name IS NULL OR name = '' THEN
        RAISE EXCEPTION 'log miner name must not be empty' USING ERRCODE = '22023';
    END IF;
    INSERT INTO tidewatch.log_miners (name, config) VALUES (name, coalesce(config, '{}')) ON CONFLICT DO NOTHING;
    IF NOT FOUND THEN
        IF if_not_exists THEN
            RETURN false;
        END IF;
        RAISE EXCEPTION 'log miner "%" already exists', name
            USING ERRCODE = '42710', HINT = 'Pass if_not_exists => true, or drop it with tidewatch.drop_log_miner().';
    END IF;
    RETURN true;
END
$$;

CREATE FUNCTION tidewatch.drop_log_miner(name text, if_exists boolean DEFAULT false)
RETURNS boolean
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    users text;
BEGIN
    PERFORM tidewatch._require_owner('log miner', m.name, m.owner)
        FROM tidewatch.log_miners m WHERE m.name = drop_log_miner.name;
    SELECT string_agg(m.name, ', ') INTO users FROM tidewatch.log_monitors m WHERE m.miner = name;
    IF users IS NOT NULL THEN
        RAISE EXCEPTION 'log miner "%" is used by log monitor(s) %', name, users
            USING ERRCODE = '2BP01', HINT = 'Drop those monitors first with tidewatch.unmonitor_logs().';
    END IF;
    DELETE FROM tidewatch.log_miners m WHERE m.name = drop_log_miner.name;
    IF NOT FOUND THEN
        RETURN tidewatch._not_found('log miner', name, if_exists, 'tidewatch.log_miners');
    END IF;
    RETURN true;
END
$$;

-- Check that column of relation exists and has a type in the given categories; returns its type.
CREATE FUNCTION tidewatch._column_type(relation regclass, col name, categories text, what text)
RETURNS regtype
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    typ regtype;
    cat text;
BEGIN
    IF col IS NULL THEN
        RAISE EXCEPTION 'the % column must not be NULL', what USING ERRCODE = '22004';
    END IF;
    SELECT a.atttypid::regtype, t.typcategory INTO typ, cat
        FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
        WHERE a.attrelid = relation AND a.attname = col AND a.attnum > 0 AND NOT a.attisdropped;
    IF typ IS NULL THEN
        RAISE EXCEPTION 'column "%" of "%" does not exist', col, relation USING ERRCODE = '42703';
    END IF;
    IF strpos(categories, cat) = 0 THEN
        RAISE EXCEPTION 'the % column "%" of "%" has type %', what, col, relation, typ
            USING ERRCODE = '42804', HINT = CASE categories WHEN 'S' THEN 'Use a text column, or cast in a view.'
                                                          WHEN 'N' THEN 'Use an integer column.'
                                                          ELSE 'Use a column of a matching type.' END;
    END IF;
    RETURN typ;
END
$$;

CREATE FUNCTION tidewatch.mine_logs(relation regclass, message_column name, time_column name DEFAULT NULL,
                                    miner text DEFAULT 'default')
RETURNS TABLE (template_id bigint, template text, lines bigint, first_seen timestamptz, last_seen timestamptz,
               is_new boolean)
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    tcol name := time_column;
    total bigint;
BEGIN
    IF relation IS NULL THEN
        RAISE EXCEPTION 'relation must not be NULL' USING ERRCODE = '22004';
    END IF;
    PERFORM tidewatch._log_message_type(relation, message_column);
    IF tcol IS NOT NULL OR EXISTS (SELECT 1 FROM tidewatch.hypertable h WHERE h.relid = relation) THEN
        tcol := tidewatch._time_column(relation, tcol);
    END IF;
    IF NOT EXISTS (SELECT 1 FROM tidewatch.log_miners m WHERE m.name = miner) THEN
        PERFORM tidewatch.create_log_miner(miner, if_not_exists => true);
        RAISE NOTICE 'created log miner "%"', miner;
    END IF;
    SELECT greatest(c.reltuples, 0)::bigint INTO total FROM pg_class c WHERE c.oid = relation;
    RETURN QUERY SELECT * FROM tidewatch._mine_query(relation, message_column, tcol, miner, total);
END
$$;

-- The message column of a log monitor: a string type of variable length (text, varchar, char(n),
-- citext, ...). Fixed-length string types such as name are refused: the row trigger reads the
-- column as a varlena. Checked by log_monitor() and again by the trigger each statement, since
-- a column can change type afterwards.
CREATE FUNCTION tidewatch._log_message_type(relation regclass, col name)
RETURNS regtype
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    typ regtype := tidewatch._column_type(relation, col, 'S', 'message');
BEGIN
    IF (SELECT t.typlen FROM pg_type t WHERE t.oid = typ) <> -1 THEN
        RAISE EXCEPTION 'the message column "%" of "%" has the fixed-length type %', col, relation, typ
            USING ERRCODE = '42804',
                  DETAIL = 'Log monitors read variable-length strings: text, varchar, char(n) and the like.',
                  HINT = format('ALTER TABLE %s ALTER COLUMN %I TYPE text;', relation, col);
    END IF;
    RETURN typ;
END
$$;

CREATE FUNCTION tidewatch.log_monitor(
    name text,
    relation regclass,
    message_column name,
    time_column name DEFAULT NULL,
    miner text DEFAULT NULL,
    ruleset text DEFAULT 'default',
    template_column name DEFAULT NULL,
    category_column name DEFAULT NULL,
    burst_window interval DEFAULT interval '5 minutes',
    burst_min_count integer DEFAULT 10,
    mode text DEFAULT 'sync')
RETURNS text
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    tcol name := time_column;
    mname text := coalesce(miner, name);
    tpl name := template_column;
    cat name := category_column;
    lsn pg_lsn;
    sysid numeric;
BEGIN
    PERFORM tidewatch._new_name('log monitor', name,
                                EXISTS (SELECT 1 FROM tidewatch.log_monitors m WHERE m.name = log_monitor.name),
                                'tidewatch.unmonitor_logs()');
    IF relation IS NULL THEN
        RAISE EXCEPTION 'relation must not be NULL' USING ERRCODE = '22004';
    END IF;
    -- Before any other check (an async monitor's lines are read by the decoder, not the caller).
    PERFORM tidewatch._require_select(relation);
    IF mode IS NULL OR mode NOT IN ('sync', 'async') THEN
        RAISE EXCEPTION 'unknown log monitor mode "%"', mode
            USING ERRCODE = '22023',
                  HINT = 'Valid modes: sync (row triggers; each row gets its template and class at insert), '
                         'async (a decoder classifies committed lines from the write-ahead log; COPY at full speed).';
    END IF;
    PERFORM tidewatch._log_message_type(relation, message_column);
    PERFORM tidewatch._refuse_citus_table(relation, 'a log monitor');
    IF tcol IS NOT NULL OR EXISTS (SELECT 1 FROM tidewatch.hypertable h WHERE h.relid = relation) THEN
        tcol := tidewatch._time_column(relation, tcol);
    END IF;
    IF mode = 'async' AND (tpl IS NOT NULL OR cat IS NOT NULL) THEN
        RAISE EXCEPTION 'async log monitors do not write into the inserted rows'
            USING ERRCODE = '0A000',
                  DETAIL = 'They classify lines after commit; the counts, events and bursts are the same as in sync mode.',
                  HINT = 'Leave template_column and category_column NULL and use tidewatch.log_template() or '
                         'tidewatch.classify_log() in queries, or use mode => ''sync''.';
    END IF;
    IF mode = 'async' AND tcol IS NOT NULL AND NOT EXISTS (
            SELECT 1 FROM pg_attribute a WHERE a.attrelid = relation AND a.attname = tcol
               AND a.atttypid IN ('timestamptz'::regtype, 'timestamp'::regtype, 'date'::regtype)) THEN
        RAISE EXCEPTION 'async log monitors need a timestamptz, timestamp or date time column'
            USING ERRCODE = '42804', HINT = 'Use mode => ''sync''.';
    END IF;
    -- Columns named template_id and category are filled in (sync mode) unless others are given.
    IF mode = 'sync' AND tpl IS NULL AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = relation AND a.attname = 'template_id'
                                                           AND NOT a.attisdropped) THEN
        tpl := 'template_id';
    END IF;
    IF mode = 'sync' AND cat IS NULL AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = relation AND a.attname = 'category'
                                                           AND NOT a.attisdropped) THEN
        cat := 'category';
    END IF;
    IF tpl IS NOT NULL AND tidewatch._column_type(relation, tpl, 'N', 'template') <> 'bigint'::regtype THEN
        RAISE EXCEPTION 'the template column "%" of "%" must be bigint', tpl, relation USING ERRCODE = '42804';
    END IF;
    IF cat IS NOT NULL AND tidewatch._column_type(relation, cat, 'S', 'category') <> 'text'::regtype THEN
        RAISE EXCEPTION 'the category column "%" of "%" must be text', cat, relation USING ERRCODE = '42804';
    END IF;
    IF ruleset IS NULL OR (ruleset <> 'default' AND NOT EXISTS (SELECT 1 FROM tidewatch.log_rules r WHERE r.ruleset = log_monitor.ruleset)) THEN
        RAISE EXCEPTION 'log ruleset "%" does not exist', ruleset
            USING ERRCODE = '42704', HINT = 'Use ''default'', or add rules to tidewatch.log_rules first.';
    END IF;
    IF burst_window IS NULL OR burst_window < interval '1 minute' THEN
        RAISE EXCEPTION 'invalid burst_window: %', coalesce(burst_window::text, 'NULL')
            USING ERRCODE = '22023', HINT = 'Use an interval of at least 1 minute, such as ''5 minutes''.';
    END IF;
    IF burst_min_count IS NULL OR burst_min_count < 1 THEN
        RAISE EXCEPTION 'invalid burst_min_count: %', coalesce(burst_min_count::text, 'NULL') USING ERRCODE = '22023';
    END IF;
    IF mode = 'async' THEN
        PERFORM tidewatch._require_async();
        -- Before any write of this transaction: creating the slot needs that.
        SELECT x.lsn, x.wal_system INTO lsn, sysid FROM tidewatch._monitor_slot() x;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM tidewatch.log_miners m WHERE m.name = mname) THEN
        PERFORM tidewatch.create_log_miner(mname, if_not_exists => true);
    END IF;
    INSERT INTO tidewatch.log_monitors (name, relid, message_column, time_column, miner, ruleset, template_column,
                                        category_column, burst_window, burst_min_count, mode, created_lsn, wal_system)
        VALUES (name, relation, message_column, tcol, mname, ruleset, tpl, cat, burst_window, burst_min_count,
                mode, lsn, sysid);
    IF mode = 'async' THEN
        RETURN mname;
    END IF;
    EXECUTE format('CREATE TRIGGER %I BEFORE INSERT ON %s FOR EACH ROW EXECUTE FUNCTION tidewatch._log_monitor_row(%L)',
                   left('tidewatch_logs_' || name, 63), relation, name);
    EXECUTE format('CREATE TRIGGER %I AFTER INSERT ON %s FOR EACH STATEMENT EXECUTE FUNCTION tidewatch._log_monitor_statement(%L)',
                   left('tidewatch_logs_done_' || name, 63), relation, name);
    IF tpl IS NULL AND cat IS NULL THEN
        RAISE NOTICE 'log monitor "%": lines are counted per minute, template and class in tidewatch.log_counts', name
            USING HINT = 'To store each line''s template and class in its row, add columns template_id bigint and category text before creating the monitor.';
    END IF;
    RETURN mname;
END
$$;

CREATE FUNCTION tidewatch.unmonitor_logs(name text, if_exists boolean DEFAULT false)
RETURNS boolean
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    m tidewatch.log_monitors;
BEGIN
    SELECT * INTO m FROM tidewatch.log_monitors x WHERE x.name = unmonitor_logs.name;
    IF NOT FOUND THEN
        RETURN tidewatch._not_found('log monitor', name, if_exists, 'tidewatch.log_monitors');
    END IF;
    PERFORM tidewatch._require_owner('log monitor', m.name, m.owner);
    -- (A table dropped before 0.2.0 left its monitors behind: no trigger to drop then.)
    IF m.mode = 'sync' AND EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = m.relid) THEN
        EXECUTE format('DROP TRIGGER IF EXISTS %I ON %s', left('tidewatch_logs_' || name, 63), m.relid);
        EXECUTE format('DROP TRIGGER IF EXISTS %I ON %s', left('tidewatch_logs_done_' || name, 63), m.relid);
    END IF;
    DELETE FROM tidewatch.log_monitors x WHERE x.name = m.name;
    RETURN true;
END
$$;

-- The decoder of async log monitors hands each monitor's committed lines to this: mined,
-- classified and counted as the row trigger does, then flushed and checked for bursts as the
-- statement trigger does. An error is kept in log_monitors.last_error and reported as a WARNING.
CREATE FUNCTION tidewatch._log_monitor_apply_async(monitor text, ts timestamptz[], messages text[])
RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r record;
    msg text;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM tidewatch.log_monitors x WHERE x.name = monitor) THEN
        RETURN false;
    END IF;
    PERFORM tidewatch._log_monitor_ingest(monitor, ts, messages);
    FOR r IN SELECT * FROM tidewatch._log_monitor_flush(monitor) LOOP
        IF r.category <> 'unknown' THEN
            PERFORM tidewatch._log_burst_check(monitor, r.category, r.at);
        END IF;
    END LOOP;
    RETURN true;
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS msg = MESSAGE_TEXT;
    RAISE WARNING 'tidewatch log monitor "%": could not classify % lines: %', monitor, cardinality(messages), msg;
    UPDATE tidewatch.log_monitors x SET last_error = format('%s: %s lines not classified: %s', now(), cardinality(messages), msg)
        WHERE x.name = monitor;
    RETURN false;
END
$$;
REVOKE EXECUTE ON FUNCTION tidewatch._log_monitor_apply_async(text, timestamptz[], text[]) FROM PUBLIC;

-- This cluster's system identifier (pg_control_system() is not for every role).
CREATE FUNCTION tidewatch._wal_system()
RETURNS numeric
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
RETURN (SELECT c.system_identifier FROM pg_control_system() c);

-- The end of the WAL inserted so far (the insert position, or the page boundary right before a
-- fresh page's header): what the decoder flushes and reads up to, so what monitor_wait waits for.
CREATE FUNCTION tidewatch._wal_insert_end()
RETURNS pg_lsn
LANGUAGE sql VOLATILE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
RETURN '0/0'::pg_lsn + tidewatch._wal_insert_end_bytes();

-- How far the decoder of async monitors (anomaly and log) got: per monitor, the commit position
-- the decoder has scored up to (its replication slot's confirmed position), how far behind the
-- write-ahead log that is, when the monitor last got rows, and its last error. For a monitor of a
-- Citus distributed table, on the coordinator: when its episodes were last pulled from every
-- worker (the oldest of the workers' pulls) and the workers' pull errors.
CREATE FUNCTION tidewatch.monitor_lag()
RETURNS TABLE(monitor text, kind text, scored_upto pg_lsn, behind_bytes numeric, last_scored_at timestamptz,
              last_error text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT m.name, m.kind, s.confirmed_flush_lsn,
           greatest(pg_wal_lsn_diff(tidewatch._wal_insert_end(), s.confirmed_flush_lsn), 0),
           coalesce(p.pulled_at, m.async_at), nullif(concat_ws('; ', m.last_error, p.last_error), '')
    FROM (SELECT x.name, 'anomaly' AS kind, x.async_at, x.last_error FROM tidewatch.monitors x WHERE x.mode = 'async'
          UNION ALL
          SELECT l.name, 'log', l.async_at, l.last_error FROM tidewatch.log_monitors l WHERE l.mode = 'async') m
    LEFT JOIN pg_replication_slots s ON s.slot_name = tidewatch._monitor_slot_name()
    LEFT JOIN LATERAL (SELECT CASE WHEN bool_and(x.pulled_at IS NOT NULL) THEN min(x.pulled_at) END AS pulled_at,
                              string_agg(format('worker group %s: %s', x.node_group, x.last_error), '; '
                                         ORDER BY x.node_group) FILTER (WHERE x.last_error IS NOT NULL) AS last_error
                       FROM tidewatch.monitor_pulls x WHERE x.monitor = m.name AND m.kind = 'anomaly'
                       HAVING count(*) > 0) p ON true
    ORDER BY m.kind, m.name
$$;

-- Wait until the decoder has scored every transaction committed before this call (for tests,
-- scripts and benchmarks of async monitors). Returns the seconds waited; raises 57014 after
-- timeout.
CREATE FUNCTION tidewatch.monitor_wait(timeout interval DEFAULT interval '30 seconds')
RETURNS float8
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    target pg_lsn := tidewatch._wal_insert_end();
    t0 timestamptz := clock_timestamp();
    behind text;
BEGIN
    IF txid_current_if_assigned() IS NOT NULL THEN
        RAISE EXCEPTION 'tidewatch.monitor_wait() cannot wait for the writes of its own transaction'
            USING ERRCODE = '25001', HINT = 'Commit first, then call it in a new transaction.';
    END IF;
    LOOP
        SELECT string_agg(quote_ident(m.name), ', ') INTO behind
            FROM (SELECT x.name, x.created_lsn, x.wal_system FROM tidewatch.monitors x WHERE x.mode = 'async'
                  UNION ALL
                  SELECT l.name, l.created_lsn, l.wal_system FROM tidewatch.log_monitors l WHERE l.mode = 'async') m
            WHERE (coalesce(m.created_lsn, '0/0') < target OR m.wal_system IS DISTINCT FROM tidewatch._wal_system())
              AND coalesce((SELECT s.confirmed_flush_lsn FROM pg_replication_slots s
                            WHERE s.slot_name = tidewatch._monitor_slot_name()), '0/0') < target;
        EXIT WHEN behind IS NULL;
        IF clock_timestamp() - t0 > timeout THEN
            RAISE EXCEPTION 'async monitors % have not caught up after %', behind, timeout
                USING ERRCODE = '57014',
                      HINT = 'Check that the tidewatch scheduler runs in this database (backend_type '
                             '"tidewatch decoder" in pg_stat_activity) and see tidewatch.monitor_lag().';
        END IF;
        PERFORM pg_sleep(0.01);
    END LOOP;
    RETURN extract(epoch FROM clock_timestamp() - t0);
END
$$;

CREATE FUNCTION tidewatch._log_monitor_statement()
RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r record;
    rel regclass;
BEGIN
    -- It runs as the extension's owner, so that a role that may only INSERT into the log table
    -- gets its lines counted: attached by hand to another table, it would let any role write
    -- that monitor's templates, counts and bursts.
    SELECT l.relid INTO rel FROM tidewatch.log_monitors l WHERE l.name = TG_ARGV[0];
    IF FOUND AND rel <> TG_RELID::regclass THEN
        RAISE EXCEPTION 'the trigger of log monitor "%" fired on %, not on its table %', TG_ARGV[0], TG_RELID::regclass, rel
            USING ERRCODE = '42501',
                  HINT = 'tidewatch.log_monitor() attaches this trigger; do not attach tidewatch._log_monitor_statement by hand.';
    END IF;
    FOR r IN SELECT * FROM tidewatch._log_monitor_flush(TG_ARGV[0]) LOOP
        IF r.category <> 'unknown' THEN
            PERFORM tidewatch._log_burst_check(TG_ARGV[0], r.category, r.at);
        END IF;
    END LOOP;
    RETURN NULL;
END
$$;

-- Is there a burst of an error class in the window ending at `at`? The lines of the class in
-- the window are compared with a Poisson law whose rate is the class's rate over the 24 hours
-- before the window (at least one hour of history is assumed, with half a line of prior, so a
-- new monitor does not see a burst in its first few errors). A burst opens a log_burst episode
-- in tidewatch.anomalies and a log_burst event that explain_anomaly cites; the episode extends
-- while the burst lasts and ends at the first check that finds none.
CREATE FUNCTION tidewatch._log_burst_check(monitor text, category text, at timestamptz)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    m tidewatch.log_monitors;
    st tidewatch.log_monitor_state;
    lo timestamptz;
    k bigint;
    base bigint;
    since timestamptz;
    base_minutes float8;
    mu float8;
    b record;
    bursting boolean;
    sev text;
    top jsonb;
    ep bigint;
    ev bigint;
    summary text;
BEGIN
    SELECT * INTO m FROM tidewatch.log_monitors x WHERE x.name = monitor;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    lo := at - m.burst_window;
    SELECT coalesce(sum(c.n), 0) INTO k FROM tidewatch.log_counts c
        WHERE c.monitor = m.name AND c.category = category AND c.bucket > lo AND c.bucket <= at;
    SELECT coalesce(sum(c.n), 0), min(c.bucket) INTO base, since FROM tidewatch.log_counts c
        WHERE c.monitor = m.name AND c.category = category AND c.bucket > lo - interval '24 hours' AND c.bucket <= lo;
    SELECT greatest(extract(epoch FROM lo - min(c.bucket)) / 60, 60) INTO base_minutes FROM tidewatch.log_counts c
        WHERE c.monitor = m.name AND c.bucket > lo - interval '24 hours';
    mu := (base + 0.5) / coalesce(base_minutes, 60) * extract(epoch FROM m.burst_window) / 60;
    SELECT * INTO b FROM tidewatch._poisson_burst(k, mu);
    bursting := k >= m.burst_min_count AND b.p_value < 1e-4;

    INSERT INTO tidewatch.log_monitor_state (monitor, category) VALUES (m.name, category) ON CONFLICT DO NOTHING;
    SELECT * INTO st FROM tidewatch.log_monitor_state s WHERE s.monitor = m.name AND s.category = category FOR UPDATE;
    IF bursting THEN
        sev := CASE WHEN b.p_value < 1e-8 THEN 'critical' ELSE 'warning' END;
        IF st.open_episode IS NULL THEN
            SELECT jsonb_agg(jsonb_build_object('template_id', x.template_id, 'template', x.template, 'lines', x.n) ORDER BY x.n DESC)
                INTO top
                FROM (SELECT c.template_id, t.template, sum(c.n) AS n FROM tidewatch.log_counts c
                      LEFT JOIN tidewatch.log_templates t ON t.miner = m.miner AND t.id = c.template_id
                      WHERE c.monitor = m.name AND c.category = category AND c.bucket > lo AND c.bucket <= at
                      GROUP BY 1, 2 ORDER BY 3 DESC LIMIT 3) x;
            summary := format('%s %s errors in the %s minutes before %s (usually %s)', k, category,
                              round(extract(epoch FROM m.burst_window) / 60, 1)::float8, at, round(mu::numeric, 1));
            INSERT INTO tidewatch.anomalies (monitor, series, started_at, ended_at, peak_at, peak_value, expected, lower,
                                             upper, score, severity, kind, detail)
            VALUES (m.name, jsonb_build_object('log_monitor', m.name, 'category', category), lo, at, at, k, mu, 0,
                    b.upper, 1 - b.p_value, sev, 'log_burst',
                    jsonb_build_object('method', 'log burst (Poisson rate test)', 'category', category, 'lines', k,
                                       'window', m.burst_window::text, 'expected', mu, 'p_value', b.p_value,
                                       'top_templates', coalesce(top, '[]')))
            RETURNING id INTO ep;
            ev := tidewatch.record_event('log_burst', summary, lo, m.name, '{}',
                                         jsonb_build_object('monitor', m.name, 'category', category, 'lines', k,
                                                            'expected', mu, 'episode', ep, 'top_templates', coalesce(top, '[]')),
                                         NULL, at);
            UPDATE tidewatch.log_monitor_state s SET open_episode = ep, open_event = ev, updated_at = now()
                WHERE s.monitor = m.name AND s.category = category;
        ELSE
            UPDATE tidewatch.anomalies a SET
                ended_at = greatest(a.ended_at, at),
                peak_at = CASE WHEN k > a.peak_value THEN at ELSE a.peak_at END,
                peak_value = greatest(a.peak_value, k),
                score = greatest(a.score, 1 - b.p_value),
                severity = CASE WHEN sev = 'critical' THEN 'critical' ELSE a.severity END,
                detail = a.detail || jsonb_build_object('lines', greatest((a.detail ->> 'lines')::bigint, k))
            WHERE a.id = st.open_episode;
            UPDATE tidewatch.events e SET "until" = greatest(e."until", at) WHERE e.id = st.open_event;
            UPDATE tidewatch.log_monitor_state s SET updated_at = now() WHERE s.monitor = m.name AND s.category = category;
        END IF;
    ELSIF st.open_episode IS NOT NULL THEN
        UPDATE tidewatch.anomalies a SET ended_at = greatest(a.ended_at, at) WHERE a.id = st.open_episode;
        UPDATE tidewatch.log_monitor_state s SET open_episode = NULL, open_event = NULL, updated_at = now()
            WHERE s.monitor = m.name AND s.category = category;
    END IF;
END
$$;
REVOKE EXECUTE ON FUNCTION tidewatch._log_burst_check(text, text, timestamptz) FROM PUBLIC;

CREATE FUNCTION tidewatch.train_log_classifier(name text, relation regclass, message_column name, label_column name)
RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
BEGIN
    IF name IS NULL OR name = '' THEN
        RAISE EXCEPTION 'classifier name must not be empty' USING ERRCODE = '22023',
            HINT = 'Name it after the ruleset it backs up: ''default'' or a ruleset of tidewatch.log_rules.';
    END IF;
    IF relation IS NULL THEN
        RAISE EXCEPTION 'relation must not be NULL' USING ERRCODE = '22004';
    END IF;
    PERFORM tidewatch._column_type(relation, message_column, 'S', 'message');
    PERFORM tidewatch._column_type(relation, label_column, 'S', 'label');
    PERFORM tidewatch._require_owner('log classifier', c.name, c.owner)
        FROM tidewatch.log_classifiers c WHERE c.name = train_log_classifier.name;
    RETURN tidewatch._train_log_classifier(name, relation, message_column, label_column);
END
$$;
