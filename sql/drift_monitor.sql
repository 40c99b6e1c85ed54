-- Drift monitors: a job compares the newest window of a table with a reference (a saved
-- profile or a fixed time range) on a schedule, appends every column's result to the hypertable
-- tidewatch.drift_results, and records a drifted dataset as an event that explain_anomaly cites.
-- Identifiers reach dynamic SQL only through regclass and %I.

CREATE TABLE tidewatch.drift_monitors (
    name            text        PRIMARY KEY,
    relid           regclass    NOT NULL,
    reference_name  text,
    reference_range tstzrange,
    "window"        interval    NOT NULL CHECK ("window" > interval '0'),
    columns         name[],
    time_column     name        NOT NULL,
    methods         jsonb       NOT NULL DEFAULT '{}',
    drift_share     float8      NOT NULL DEFAULT 0.5 CHECK (drift_share > 0 AND drift_share <= 1),
    job_id          integer     REFERENCES tidewatch.job (id) ON DELETE SET NULL,
    owner           regrole     NOT NULL DEFAULT current_user::regrole,
    created_at      timestamptz NOT NULL DEFAULT now(),
    CHECK ((reference_name IS NULL) <> (reference_range IS NULL))
);
COMMENT ON TABLE tidewatch.drift_monitors IS 'Scheduled drift monitors: the newest window of relid against a saved reference (reference_name) or a fixed time range (reference_range), run by job_id.';

-- One row per (run, column): a hypertable on run_at, 30-day chunks.
CREATE TABLE tidewatch.drift_results (
    run_at          timestamptz NOT NULL,
    monitor         text        NOT NULL,
    window_start    timestamptz NOT NULL,
    window_end      timestamptz NOT NULL,
    column_name     name        NOT NULL,
    method          text,
    statistic       float8,
    p_value         float8,
    threshold       float8,
    drifted         boolean,
    reference_count bigint,
    current_count   bigint,
    share_of_drifted_columns float8 NOT NULL,
    dataset_drift   boolean     NOT NULL,
    error           text
) PARTITION BY RANGE (run_at);
CREATE TABLE tidewatch.drift_results_default PARTITION OF tidewatch.drift_results DEFAULT;
CREATE INDEX drift_results_monitor_idx ON tidewatch.drift_results (monitor, run_at);
COMMENT ON TABLE tidewatch.drift_results IS 'Results of drift monitors (hypertable on run_at): one row per run and column with the method, statistic, p-value, verdict and counts, plus the run''s share of drifted columns and dataset verdict. A run that could not compare (say, an empty window) has one row with column_name ''*'' and the error.';
INSERT INTO tidewatch.hypertable (relid, time_column, time_type, chunk_interval, chunks_ahead)
    VALUES ('tidewatch.drift_results', 'run_at', 'timestamptz', interval '30 days', 1);

GRANT SELECT ON tidewatch.drift_monitors, tidewatch.drift_results TO PUBLIC;
GRANT INSERT, UPDATE, DELETE ON tidewatch.drift_monitors TO PUBLIC;
ALTER TABLE tidewatch.drift_monitors ENABLE ROW LEVEL SECURITY;
CREATE POLICY drift_monitors_owner ON tidewatch.drift_monitors
    USING (true) WITH CHECK (pg_catalog.pg_has_role(current_user, owner, 'MEMBER'));
SELECT pg_catalog.pg_extension_config_dump('tidewatch.drift_monitors', '');
SELECT pg_catalog.pg_extension_config_dump('tidewatch.drift_results_default', '');

-- Run one drift monitor now over [now() - window, now()): append its results and, when the
-- dataset drifted, record a 'drift' event. Returns the rows it appended.
CREATE FUNCTION tidewatch.run_drift_monitor(name text)
RETURNS SETOF tidewatch.drift_results
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    m tidewatch.drift_monitors;
    t timestamptz := now();
    cur tstzrange;
    res tidewatch.drift_results[];
    share float8;
    verdict boolean;
    drifted_cols text[];
    msg text;
BEGIN
    SELECT * INTO m FROM tidewatch.drift_monitors x WHERE x.name = run_drift_monitor.name;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'drift monitor "%" does not exist', name
            USING ERRCODE = '42704', HINT = 'List drift monitors with SELECT name FROM tidewatch.drift_monitors.';
    END IF;
    cur := tstzrange(t - m."window", t);
    BEGIN
        IF m.reference_name IS NOT NULL THEN
            SELECT array_agg(ROW(t, m.name, lower(cur), upper(cur), r.column_name, r.method, r.statistic, r.p_value,
                                 r.threshold, r.drifted, r.reference_count, r.current_count, 0, false,
                                 NULL)::tidewatch.drift_results)
                INTO res
                FROM tidewatch.drift_report(m.relid, m.reference_name, cur, m.columns, m.time_column, m.methods) r;
        ELSE
            SELECT array_agg(ROW(t, m.name, lower(cur), upper(cur), r.column_name, r.method, r.statistic, r.p_value,
                                 r.threshold, r.drifted, r.reference_count, r.current_count, 0, false,
                                 NULL)::tidewatch.drift_results)
                INTO res
                FROM tidewatch.drift_report(m.relid, m.reference_range, cur, m.columns, m.time_column, m.methods) r;
        END IF;
    EXCEPTION WHEN invalid_parameter_value OR no_data_found OR undefined_column OR undefined_object
                   OR datatype_mismatch THEN
        -- An empty window or a vanished column is a result to keep (and to see in Grafana), not
        -- a reason for the job to fail and back off: one row with the error and no verdict.
        GET STACKED DIAGNOSTICS msg = MESSAGE_TEXT;
        res := ARRAY[ROW(t, m.name, lower(cur), upper(cur), '*', NULL, NULL, NULL, NULL, NULL, NULL, NULL, 0, false,
                         msg)::tidewatch.drift_results];
    END;
    SELECT count(*) FILTER (WHERE x.drifted)::float8 / nullif(count(*), 0),
           array_agg(x.column_name::text ORDER BY x.column_name) FILTER (WHERE x.drifted)
        INTO share, drifted_cols
        FROM unnest(res) x WHERE x.error IS NULL;
    verdict := coalesce(share >= m.drift_share, false);
    RETURN QUERY
        INSERT INTO tidewatch.drift_results
        SELECT x.run_at, x.monitor, x.window_start, x.window_end, x.column_name, x.method, x.statistic, x.p_value,
               x.threshold, x.drifted, x.reference_count, x.current_count, coalesce(share, 0), verdict, x.error
        FROM unnest(res) x
        RETURNING *;
    IF verdict THEN
        PERFORM tidewatch.record_event('drift',
            format('drift monitor %s: %s%% of the columns of %s drifted (%s) between %s and %s', m.name,
                   round(share::numeric * 100, 1), m.relid, array_to_string(drifted_cols, ', '), lower(cur), upper(cur)),
            lower(cur), m.name, '{}',
            jsonb_build_object('monitor', m.name, 'relation', m.relid::text, 'run_at', t,
                               'share_of_drifted_columns', share, 'drifted_columns', to_jsonb(drifted_cols)),
            m.relid, upper(cur));
    END IF;
END
$$;

CREATE PROCEDURE tidewatch.policy_drift(job_id integer, config jsonb)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM tidewatch.run_drift_monitor(config ->> 'monitor');
END
$$;

CREATE FUNCTION tidewatch._monitor_drift(name text, relation regclass, reference_name text, reference_range tstzrange,
                                         "window" interval, schedule interval, columns name[], time_column name,
                                         methods jsonb, drift_share float8)
RETURNS integer
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    tcol name;
    job integer;
    known text;
BEGIN
    PERFORM tidewatch._new_name('drift monitor', name,
                                EXISTS (SELECT 1 FROM tidewatch.drift_monitors m WHERE m.name = _monitor_drift.name),
                                'tidewatch.unmonitor_drift()');
    IF relation IS NULL THEN
        RAISE EXCEPTION 'relation must not be NULL' USING ERRCODE = '22004';
    END IF;
    IF "window" IS NULL OR "window" <= interval '0' THEN
        RAISE EXCEPTION 'invalid window: %', coalesce("window"::text, 'NULL')
            USING ERRCODE = '22023', HINT = 'The window is the length of the current window, a positive interval such as ''1 day''.';
    END IF;
    IF drift_share IS NULL OR drift_share <= 0 OR drift_share > 1 THEN
        RAISE EXCEPTION 'invalid drift_share: %', coalesce(drift_share::text, 'NULL')
            USING ERRCODE = '22023', HINT = 'The dataset drifts when this share of its columns drifts; use a number in (0, 1], 0.5 by default.';
    END IF;
    IF methods IS NOT NULL AND jsonb_typeof(methods) <> 'object' THEN
        RAISE EXCEPTION 'methods must be a JSON object such as {"value": "psi"}' USING ERRCODE = '22023';
    END IF;
    IF reference_name IS NOT NULL AND NOT EXISTS (SELECT 1 FROM tidewatch.references r WHERE r.name = reference_name) THEN
        SELECT string_agg(DISTINCT r.name, ', ') INTO known FROM tidewatch.references r;
        RAISE EXCEPTION 'no saved reference named "%"', reference_name
            USING ERRCODE = '42704', HINT = coalesce('Saved references: ' || known || '. ', '') || 'Save one with tidewatch.save_reference(), or pass a tstzrange.';
    END IF;
    IF reference_name IS NULL AND (reference_range IS NULL OR isempty(reference_range)) THEN
        RAISE EXCEPTION 'the reference window is empty or NULL' USING ERRCODE = '22023',
            HINT = 'Pass a saved reference name or a tstzrange such as tstzrange(''2026-01-01'', ''2026-01-08'').';
    END IF;
    PERFORM tidewatch._check_columns(relation, columns);
    tcol := tidewatch._time_column(relation, time_column);
    job := tidewatch.add_job('tidewatch.policy_drift', coalesce(schedule, interval '1 hour'),
                             jsonb_build_object('monitor', name), application_name => format('Drift monitor %s', name));
    INSERT INTO tidewatch.drift_monitors (name, relid, reference_name, reference_range, "window", columns, time_column,
                                          methods, drift_share, job_id)
        VALUES (name, relation, reference_name, reference_range, "window", columns, tcol, coalesce(methods, '{}'),
                drift_share, job);
    RETURN job;
END
$$;

CREATE FUNCTION tidewatch.monitor_drift(name text, relation regclass, reference text, "window" interval,
                                        schedule interval DEFAULT interval '1 hour', columns name[] DEFAULT NULL,
                                        time_column name DEFAULT NULL, methods jsonb DEFAULT '{}',
                                        drift_share float8 DEFAULT 0.5)
RETURNS integer
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- A range literal such as '[2026-01-01,2026-01-08)' resolves to this overload: treat it as one.
    IF reference ~ '^\s*[\[\(]' AND NOT EXISTS (SELECT 1 FROM tidewatch.references r WHERE r.name = reference) THEN
        RETURN tidewatch._monitor_drift(name, relation, NULL, reference::tstzrange, "window", schedule, columns,
                                        time_column, methods, drift_share);
    END IF;
    RETURN tidewatch._monitor_drift(name, relation, reference, NULL, "window", schedule, columns, time_column,
                                    methods, drift_share);
END
$$;

CREATE FUNCTION tidewatch.monitor_drift(name text, relation regclass, reference tstzrange, "window" interval,
                                        schedule interval DEFAULT interval '1 hour', columns name[] DEFAULT NULL,
                                        time_column name DEFAULT NULL, methods jsonb DEFAULT '{}',
                                        drift_share float8 DEFAULT 0.5)
RETURNS integer
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
RETURN tidewatch._monitor_drift(name, relation, NULL, reference, "window", schedule, columns, time_column, methods,
                                drift_share);

CREATE FUNCTION tidewatch.unmonitor_drift(name text, if_exists boolean DEFAULT false)
RETURNS boolean
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    m tidewatch.drift_monitors;
BEGIN
    SELECT * INTO m FROM tidewatch.drift_monitors x WHERE x.name = unmonitor_drift.name;
    IF NOT FOUND THEN
        RETURN tidewatch._not_found('drift monitor', name, if_exists, 'tidewatch.drift_monitors');
    END IF;
    PERFORM tidewatch._require_owner('drift monitor', m.name, m.owner);
    IF m.job_id IS NOT NULL THEN
        PERFORM tidewatch.delete_job(m.job_id);
    END IF;
    DELETE FROM tidewatch.drift_monitors x WHERE x.name = m.name;
    RETURN true;
END
$$;
