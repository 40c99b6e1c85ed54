-- Tidewatch 0.1.0 -> 0.2.0 (ALTER EXTENSION tidewatch UPDATE). Hand-written: every change to
-- the extension's SQL since 0.1.0, in an order that keeps users' rows. Functions whose signature
-- or result changed are dropped and created again (a user view or function that depends on one
-- makes the update fail, and roll back, with PostgreSQL's dependency error: nothing is lost);
-- the others are replaced in place. tests/test_upgrade.py installs 0.1.0, fills it, updates, and
-- compares the result with a fresh 0.2.0 (tests/catalog.py).
\echo Use "ALTER EXTENSION tidewatch UPDATE TO '0.2.0'" to load this file. \quit

-- Isolation of derived data: who may read a relation (sql/catalog.sql).
CREATE FUNCTION tidewatch._readable(relation regclass)
RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
RETURN relation IS NOT NULL AND coalesce(pg_catalog.has_table_privilege(relation::oid, 'SELECT'), false);
CREATE FUNCTION tidewatch._require_select(relation regclass)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF relation IS NOT NULL AND NOT tidewatch._readable(relation) THEN
        RAISE EXCEPTION 'permission denied for table %', (SELECT c.relname FROM pg_class c WHERE c.oid = relation)
            USING ERRCODE = '42501',
                  HINT = 'Tidewatch works on a table only for roles that may SELECT from it; ask its owner for GRANT SELECT.';
    END IF;
END
$$;
CREATE POLICY hypertable_reader ON tidewatch.hypertable FOR SELECT USING (tidewatch._readable(relid));
CREATE POLICY job_monitoring ON tidewatch.job FOR SELECT
    USING (pg_catalog.pg_has_role(current_user, 'pg_read_all_stats', 'MEMBER'));
CREATE POLICY job_stat_monitoring ON tidewatch.job_stat FOR SELECT
    USING (pg_catalog.pg_has_role(current_user, 'pg_read_all_stats', 'MEMBER'));

-- Functions that take a relation refuse an unreadable one first (42501).
CREATE OR REPLACE FUNCTION tidewatch._hypertable(relation regclass)
RETURNS tidewatch.hypertable
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    h tidewatch.hypertable;
BEGIN
    IF relation IS NULL THEN
        RAISE EXCEPTION 'relation must not be NULL' USING ERRCODE = '22004';
    END IF;
    PERFORM tidewatch._require_select(relation);
    SELECT * INTO h FROM tidewatch.hypertable WHERE relid = relation;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'table "%" is not a hypertable', relation
            USING ERRCODE = '42P01',
                  HINT = 'Make it one with tidewatch.create_hypertable(); list hypertables with SELECT * FROM tidewatch.hypertables.';
    END IF;
    RETURN h;
END
$$;
CREATE OR REPLACE FUNCTION tidewatch._time_column(relation regclass, time_column name)
RETURNS name
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    typ regtype;
BEGIN
    PERFORM tidewatch._require_select(relation);
    IF time_column IS NULL THEN
        SELECT h.time_column INTO time_column FROM tidewatch.hypertable h WHERE h.relid = relation;
        IF time_column IS NULL THEN
            RAISE EXCEPTION 'table "%" is not a hypertable, so time_column is required', relation
                USING ERRCODE = '22023',
                      HINT = 'Pass time_column => ''<column>'', or make the table a hypertable with tidewatch.create_hypertable().';
        END IF;
    END IF;
    SELECT a.atttypid::regtype INTO typ FROM pg_attribute a
        WHERE a.attrelid = relation AND a.attname = time_column AND a.attnum > 0 AND NOT a.attisdropped;
    IF typ IS NULL THEN
        RAISE EXCEPTION 'column "%" of "%" does not exist', time_column, relation USING ERRCODE = '42703';
    ELSIF typ NOT IN ('timestamptz'::regtype, 'timestamp'::regtype, 'date'::regtype) THEN
        RAISE EXCEPTION 'time column "%" of "%" has type %, not a timestamp', time_column, relation, typ
            USING ERRCODE = '42804', HINT = 'Use a timestamptz, timestamp or date column.';
    END IF;
    RETURN time_column;
END
$$;
CREATE OR REPLACE FUNCTION tidewatch.drift_report(
    relation regclass,
    reference tstzrange,
    current tstzrange,
    columns name[] DEFAULT NULL,
    time_column name DEFAULT NULL,
    methods jsonb DEFAULT '{}')
RETURNS TABLE (column_name name, column_type regtype, method text, statistic float8, p_value float8,
               threshold float8, drifted boolean, reference_count bigint, current_count bigint,
               reference_nulls bigint, current_nulls bigint)
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
-- No parallel workers: each column's state is its window values, which workers would have to
-- serialize and ship to the leader; measured, that costs more than the scan it splits (10-column
-- 100k-row report 92-120 ms serial vs 116-173 ms parallel; 10^7 vs 10^7 rows, one column, three
-- tests 1.8 s vs 2.4-3.0 s; benches/RESULTS.md).
SET max_parallel_workers_per_gather = 0
AS $$
DECLARE
    tcol name := time_column;
    col record;
    kind text;
    spec record;
    names name[] := '{}';
    types regtype[] := '{}';
    cols text[] := '{}';
    aggs text[] := '{}';
BEGIN
    PERFORM tidewatch._require_select(relation);
    IF relation IS NULL OR reference IS NULL OR current IS NULL THEN
        RAISE EXCEPTION 'relation, reference and current must not be NULL' USING ERRCODE = '22004';
    END IF;
    IF isempty(reference) OR isempty(current) THEN
        RAISE EXCEPTION 'the % window is empty', CASE WHEN isempty(reference) THEN 'reference' ELSE 'current' END
            USING ERRCODE = '22023', HINT = 'Windows are tstzrange values such as tstzrange(now() - interval ''2 days'', now() - interval ''1 day'').';
    END IF;
    IF methods IS NOT NULL AND jsonb_typeof(methods) <> 'object' THEN
        RAISE EXCEPTION 'methods must be a JSON object such as {"value": "psi"}' USING ERRCODE = '22023';
    END IF;
    IF tcol IS NULL THEN
        SELECT h.time_column INTO tcol FROM tidewatch.hypertable h WHERE h.relid = relation;
    END IF;
    IF tcol IS NULL THEN
        RAISE EXCEPTION '"%" is not a hypertable, so time_column is needed', relation
            USING ERRCODE = '22023', HINT = 'Pass time_column => ''ts''.';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = relation AND a.attname = tcol AND a.attnum > 0 AND NOT a.attisdropped) THEN
        RAISE EXCEPTION 'column "%" does not exist in "%"', tcol, relation USING ERRCODE = '42703';
    END IF;
    PERFORM tidewatch._check_columns(relation, columns);

    -- One scan of both windows computes every column's tests: one drift_agg per column with the
    -- list of its methods, whose state also counts the NULLs of each window. The inner query
    -- computes "is in the current window" once per row.
    FOR col IN
        SELECT a.attname, a.atttypid::regtype AS typ, t.typcategory AS cat
        FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
        WHERE a.attrelid = relation AND a.attnum > 0 AND NOT a.attisdropped AND a.attname <> tcol
          AND (columns IS NULL OR a.attname = ANY (columns))
          AND (columns IS NOT NULL OR t.typcategory IN ('N', 'S', 'B'))
        ORDER BY a.attnum
    LOOP
        kind := CASE WHEN col.cat = 'N' THEN 'num' WHEN col.cat IN ('S', 'B') THEN 'cat' END;
        IF kind IS NULL THEN
            RAISE EXCEPTION 'column "%" has type %, which drift_report cannot compare', col.attname, col.typ
                USING ERRCODE = '42804', HINT = 'Pass columns => of numeric, text or boolean type, or cast in a view.';
        END IF;
        spec := tidewatch._drift_methods(coalesce(methods, '{}'), col.attname);
        names := names || col.attname;
        types := types || col.typ;
        cols := cols || format('%I', col.attname);
        aggs := aggs || format('to_jsonb(tidewatch._drift_agg(%I::%s, tidewatch_is_current, %L::text[], %L::float8[]))',
            col.attname, CASE kind WHEN 'num' THEN 'float8' ELSE 'text' END, spec.names, spec.thresholds);
    END LOOP;
    IF cardinality(names) = 0 THEN
        RETURN;
    END IF;
    -- RETURN QUERY may run in parallel (EXECUTE ... INTO may not): the scan and the transition
    -- functions split over workers, whose states the combine function merges.
    RETURN QUERY EXECUTE format(
        'SELECT c.name, c.typ, r.method, r.statistic, r.p_value, r.threshold, r.drifted, r.reference_count,'
        ' r.current_count, r.reference_nulls, r.current_nulls'
        ' FROM (SELECT ARRAY[%s] AS a FROM (SELECT %s, %s AS tidewatch_is_current FROM %s WHERE %s OR %s) s0) s'
        ' CROSS JOIN LATERAL unnest($5::name[], $6::regtype[]) WITH ORDINALITY AS c(name, typ, i)'
        ' CROSS JOIN LATERAL jsonb_populate_recordset(NULL::tidewatch.drift_result, s.a[c.i]) WITH ORDINALITY AS r'
        ' ORDER BY c.i, r.ordinality',
        array_to_string(aggs, ', '), array_to_string(cols, ', '),
        tidewatch._in_range(tcol, current, 3, 4), relation,
        tidewatch._in_range(tcol, reference, 1, 2), tidewatch._in_range(tcol, current, 3, 4))
        USING lower(reference), upper(reference), lower(current), upper(current), names, types;
END
$$;
CREATE OR REPLACE FUNCTION tidewatch.save_reference(name text, relation regclass, "window" tstzrange, columns name[] DEFAULT NULL)
RETURNS integer
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    tcol name;
    col record;
    prof bytea;
    cnt bigint;
    nnull bigint;
    saved integer := 0;
BEGIN
    PERFORM tidewatch._require_select(relation);
    IF name IS NULL OR name = '' THEN
        RAISE EXCEPTION 'reference name must not be empty' USING ERRCODE = '22023';
    END IF;
    IF "window" IS NULL OR isempty("window") THEN
        RAISE EXCEPTION 'the reference window is empty or NULL' USING ERRCODE = '22023',
            HINT = 'Pass a tstzrange such as tstzrange(''2026-01-01'', ''2026-01-08'').';
    END IF;
    SELECT h.time_column INTO tcol FROM tidewatch.hypertable h WHERE h.relid = relation;
    IF tcol IS NULL THEN
        RAISE EXCEPTION '"%" is not a hypertable', relation USING ERRCODE = '22023',
            HINT = 'Make it one with tidewatch.create_hypertable(), or save the reference from a hypertable.';
    END IF;
    PERFORM tidewatch._check_columns(relation, columns);
    DELETE FROM tidewatch.references r WHERE r.name = save_reference.name;
    FOR col IN
        SELECT a.attname, a.atttypid::regtype AS typ, t.typcategory AS cat
        FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
        WHERE a.attrelid = relation AND a.attnum > 0 AND NOT a.attisdropped AND a.attname <> tcol
          AND (columns IS NULL OR a.attname = ANY (columns)) AND t.typcategory IN ('N', 'S', 'B')
        ORDER BY a.attnum
    LOOP
        EXECUTE format('SELECT tidewatch._profile_agg(%I::%s, false), count(%I), count(*) - count(%I) FROM %s WHERE %I <@ $1',
                       col.attname, CASE WHEN col.cat = 'N' THEN 'float8' ELSE 'text' END,
                       col.attname, col.attname, relation, tcol)
            INTO prof, cnt, nnull USING "window";
        IF prof IS NULL THEN
            RAISE EXCEPTION 'no rows of "%" in the reference window %', relation, "window"
                USING ERRCODE = 'P0002', HINT = 'Check the window; it is [start, end) in tstzrange notation.';
        END IF;
        INSERT INTO tidewatch.references (name, column_name, column_type, relation, time_range, n, nulls, exact, profile)
        VALUES (name, col.attname, col.typ, relation, "window", cnt, nnull, tidewatch._profile_is_exact(prof), prof);
        saved := saved + 1;
    END LOOP;
    RETURN saved;
END
$$;
CREATE OR REPLACE FUNCTION tidewatch.drift_report(
    relation regclass,
    reference text,
    current tstzrange,
    columns name[] DEFAULT NULL,
    time_column name DEFAULT NULL,
    methods jsonb DEFAULT '{}')
RETURNS TABLE (column_name name, column_type regtype, method text, statistic float8, p_value float8,
               threshold float8, drifted boolean, reference_count bigint, current_count bigint,
               reference_nulls bigint, current_nulls bigint)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
SET max_parallel_workers_per_gather = 0  -- as the range form above
AS $$
#variable_conflict use_variable
DECLARE
    tcol name := time_column;
    r record;
    q tidewatch.drift_result;
    numvals float8[];
    catvals text[];
    cnulls bigint;
    spec record;
    kind text;
    known text;
BEGIN
    PERFORM tidewatch._require_select(relation);
    IF NOT EXISTS (SELECT 1 FROM tidewatch.references x WHERE x.name = reference) THEN
        -- A range literal such as '[2026-01-01,2026-01-08)' resolves to this overload: treat it as one.
        IF reference ~ '^\s*[\[\(]' THEN
            RETURN QUERY SELECT * FROM tidewatch.drift_report(relation, reference::tstzrange, current, columns, time_column, methods);
            RETURN;
        END IF;
        SELECT string_agg(DISTINCT x.name, ', ') INTO known FROM tidewatch.references x;
        RAISE EXCEPTION 'no saved reference named "%"', reference
            USING ERRCODE = '42704', HINT = coalesce('Saved references: ' || known || '. ', '') || 'Save one with tidewatch.save_reference().';
    END IF;
    IF current IS NULL OR isempty(current) THEN
        RAISE EXCEPTION 'the current window is empty or NULL' USING ERRCODE = '22023';
    END IF;
    IF tcol IS NULL THEN
        SELECT h.time_column INTO tcol FROM tidewatch.hypertable h WHERE h.relid = relation;
    END IF;
    IF tcol IS NULL THEN
        RAISE EXCEPTION '"%" is not a hypertable, so time_column is needed', relation USING ERRCODE = '22023';
    END IF;
    FOR r IN SELECT x.* FROM tidewatch.references x
             WHERE x.name = reference AND (columns IS NULL OR x.column_name = ANY (columns))
             ORDER BY (SELECT a.attnum FROM pg_attribute a WHERE a.attrelid = relation AND a.attname = x.column_name),
                      x.column_name
    LOOP
        spec := tidewatch._drift_methods(coalesce(methods, '{}'), r.column_name);
        kind := CASE WHEN r.column_type IN ('text'::regtype, 'varchar'::regtype, 'bpchar'::regtype, 'boolean'::regtype,
                                            'name'::regtype) THEN 'cat' ELSE 'num' END;
        IF kind = 'cat' THEN
            EXECUTE format('SELECT coalesce(array_agg(%I::text) FILTER (WHERE %I IS NOT NULL), ''{}''), count(*) - count(%I)'
                           ' FROM %s WHERE %s', r.column_name, r.column_name, r.column_name, relation,
                           tidewatch._in_range(tcol, current, 1, 2))
                INTO catvals, cnulls USING lower(current), upper(current);
        ELSE
            EXECUTE format('SELECT coalesce(array_agg(%I::float8) FILTER (WHERE %I IS NOT NULL), ''{}''), count(*) - count(%I)'
                           ' FROM %s WHERE %s', r.column_name, r.column_name, r.column_name, relation,
                           tidewatch._in_range(tcol, current, 1, 2))
                INTO numvals, cnulls USING lower(current), upper(current);
        END IF;
        FOR j IN 1 .. cardinality(spec.names) LOOP
            IF kind = 'cat' THEN
                q := tidewatch._drift_cat_profile(r.profile, catvals, spec.names[j], spec.thresholds[j]);
            ELSE
                q := tidewatch._drift_num_profile(r.profile, numvals, spec.names[j], spec.thresholds[j]);
            END IF;
            column_name := r.column_name; column_type := r.column_type;
            method := q.method; statistic := q.statistic; p_value := q.p_value; threshold := q.threshold;
            drifted := q.drifted; reference_count := q.reference_count; current_count := q.current_count;
            reference_nulls := r.nulls; current_nulls := cnulls;
            RETURN NEXT;
        END LOOP;
    END LOOP;
END
$$;
ALTER VIEW tidewatch.chunks SET (security_invoker = true);
ALTER VIEW tidewatch.hypertables SET (security_invoker = true);

-- Jobs: max_runtime; the scheduler runs jobs side by side and stops those that run too long.
ALTER TABLE tidewatch.job ADD COLUMN max_runtime interval CHECK (max_runtime > interval '0');
DROP FUNCTION tidewatch.alter_job(integer, interval, jsonb, timestamptz, boolean, interval, integer, boolean);
DROP VIEW tidewatch.jobs;
CREATE VIEW tidewatch.jobs AS
SELECT j.id AS job_id,
       j.application_name,
       j.proc,
       j.owner,
       j.scheduled,
       j.schedule_interval,
       j.retry_period,
       j.max_retries,
       j.config,
       j.next_start,
       j.max_runtime,
       h.relid AS hypertable
FROM tidewatch.job j
LEFT JOIN tidewatch.hypertable h ON h.id = j.hypertable_id;
COMMENT ON VIEW tidewatch.jobs IS 'Scheduled jobs: procedure, owner, schedule, retry settings, config and next start.';
ALTER VIEW tidewatch.jobs SET (security_invoker = true);
ALTER VIEW tidewatch.job_stats SET (security_invoker = true);
GRANT SELECT ON tidewatch.jobs TO PUBLIC;
CREATE FUNCTION tidewatch.alter_job(
    job_id integer,
    schedule_interval interval DEFAULT NULL,
    config jsonb DEFAULT NULL,
    next_start timestamptz DEFAULT NULL,
    scheduled boolean DEFAULT NULL,
    retry_period interval DEFAULT NULL,
    max_retries integer DEFAULT NULL,
    if_exists boolean DEFAULT false,
    max_runtime interval DEFAULT NULL)
RETURNS SETOF tidewatch.jobs
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    a_id integer := alter_job.job_id;
BEGIN
    IF alter_job.schedule_interval <= interval '0' THEN
        RAISE EXCEPTION 'invalid schedule_interval: %', alter_job.schedule_interval USING ERRCODE = '22023';
    END IF;
    IF alter_job.retry_period <= interval '0' THEN
        RAISE EXCEPTION 'invalid retry_period: %', alter_job.retry_period USING ERRCODE = '22023';
    END IF;
    IF alter_job.max_retries < 0 THEN
        RAISE EXCEPTION 'invalid max_retries: %', alter_job.max_retries USING ERRCODE = '22023';
    END IF;
    IF alter_job.max_runtime <= interval '0' THEN
        RAISE EXCEPTION 'invalid max_runtime: %', alter_job.max_runtime
            USING ERRCODE = '22023', HINT = 'Use a positive interval such as ''10 minutes''.';
    END IF;
    UPDATE tidewatch.job j SET
        schedule_interval = coalesce(alter_job.schedule_interval, j.schedule_interval),
        config = coalesce(alter_job.config, j.config),
        next_start = coalesce(alter_job.next_start, j.next_start),
        scheduled = coalesce(alter_job.scheduled, j.scheduled),
        retry_period = coalesce(alter_job.retry_period, j.retry_period),
        max_retries = coalesce(alter_job.max_retries, j.max_retries),
        max_runtime = coalesce(alter_job.max_runtime, j.max_runtime)
    WHERE j.id = a_id;
    IF NOT FOUND THEN
        IF if_exists THEN
            RAISE NOTICE 'job % not found, skipping', a_id;
            RETURN;
        END IF;
        RAISE EXCEPTION 'job % not found', a_id
            USING ERRCODE = '42704', HINT = 'List jobs with SELECT * FROM tidewatch.jobs; pass if_exists => true to ignore this.';
    END IF;
    IF alter_job.scheduled THEN
        UPDATE tidewatch.job_stat s SET consecutive_failures = 0 WHERE s.job_id = a_id;
    END IF;
    RETURN QUERY SELECT * FROM tidewatch.jobs v WHERE v.job_id = a_id;
END
$$;
DROP FUNCTION tidewatch.add_job(regproc, interval, jsonb, timestamptz, boolean, interval, integer, text);
CREATE FUNCTION tidewatch.add_job(
    proc regproc,
    schedule_interval interval,
    config jsonb DEFAULT NULL,
    initial_start timestamptz DEFAULT now(),
    scheduled boolean DEFAULT true,
    retry_period interval DEFAULT NULL,
    max_retries integer DEFAULT NULL,
    application_name text DEFAULT NULL,
    max_runtime interval DEFAULT NULL)
RETURNS integer
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    p record;
    new_id integer;
BEGIN
    IF proc IS NULL THEN
        RAISE EXCEPTION 'proc must not be NULL' USING ERRCODE = '22004';
    END IF;
    IF schedule_interval IS NULL OR schedule_interval <= interval '0' THEN
        RAISE EXCEPTION 'invalid schedule_interval: %', coalesce(schedule_interval::text, 'NULL')
            USING ERRCODE = '22023', HINT = 'Use a positive interval such as ''1 hour''.';
    END IF;
    IF retry_period IS NOT NULL AND retry_period <= interval '0' THEN
        RAISE EXCEPTION 'invalid retry_period: %', retry_period USING ERRCODE = '22023';
    END IF;
    IF max_retries IS NOT NULL AND max_retries < 0 THEN
        RAISE EXCEPTION 'invalid max_retries: %', max_retries USING ERRCODE = '22023', HINT = 'Use NULL to retry for ever.';
    END IF;
    IF max_runtime IS NOT NULL AND max_runtime <= interval '0' THEN
        RAISE EXCEPTION 'invalid max_runtime: %', max_runtime
            USING ERRCODE = '22023', HINT = 'Use a positive interval such as ''10 minutes'', or NULL for no limit.';
    END IF;
    SELECT pr.prokind, pr.proargtypes::oid[] AS args, pr.pronargs INTO p FROM pg_proc pr WHERE pr.oid = proc;
    IF p.pronargs <> 2 OR p.args[0] <> 'integer'::regtype OR p.args[1] <> 'jsonb'::regtype THEN
        RAISE EXCEPTION 'function or procedure % cannot be a job', proc::regprocedure
            USING ERRCODE = '42883',
                  HINT = 'A job procedure takes (job_id integer, config jsonb), e.g. CREATE PROCEDURE my_job(job_id integer, config jsonb) ...';
    END IF;
    IF NOT has_function_privilege(proc, 'EXECUTE') THEN
        RAISE EXCEPTION 'permission denied for % %', CASE WHEN p.prokind = 'p' THEN 'procedure' ELSE 'function' END, proc
            USING ERRCODE = '42501';
    END IF;
    INSERT INTO tidewatch.job (application_name, proc, schedule_interval, config, next_start, scheduled, retry_period, max_retries,
                               max_runtime)
        VALUES (coalesce(application_name, format('User-defined action [%s]', proc)), proc::oid::regprocedure,
                schedule_interval, config, coalesce(initial_start, now()), coalesce(scheduled, true),
                coalesce(retry_period, least(schedule_interval, interval '5 minutes')), max_retries, max_runtime)
        RETURNING id INTO new_id;
    RETURN new_id;
END
$$;
DROP FUNCTION tidewatch._due_jobs(integer);
CREATE FUNCTION tidewatch._due_jobs(max_jobs integer DEFAULT 16)
RETURNS TABLE (job_id integer, owner oid, max_runtime interval)
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT j.id, j.owner::oid, j.max_runtime FROM tidewatch.job j
    WHERE j.scheduled AND j.next_start <= now()
    ORDER BY j.next_start
    LIMIT max_jobs
$$;
DROP FUNCTION tidewatch._job_crashed(integer, timestamptz, text);
CREATE FUNCTION tidewatch._job_crashed(job_id integer, started timestamptz, reason text, sqlstate text DEFAULT 'XX000')
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    j tidewatch.job;
    fails integer;
BEGIN
    SELECT * INTO j FROM tidewatch.job WHERE id = job_id;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    INSERT INTO tidewatch.job_stat AS s (job_id, last_start, last_status)
        VALUES (job_id, started, 'failed')
        ON CONFLICT ON CONSTRAINT job_stat_pkey DO NOTHING;
    UPDATE tidewatch.job_stat s SET
        last_finish = clock_timestamp(), last_status = 'failed', last_error = reason, last_error_sqlstate = sqlstate,
        last_duration = clock_timestamp() - started,
        total_runs = s.total_runs + 1, total_failures = s.total_failures + 1,
        consecutive_failures = s.consecutive_failures + 1
    WHERE s.job_id = j.id AND (s.last_finish IS NULL OR s.last_finish < started)
    RETURNING s.consecutive_failures INTO fails;
    IF fails IS NOT NULL THEN
        UPDATE tidewatch.job SET next_start = clock_timestamp()
            + least(j.retry_period * power(2, least(fails - 1, 20)), j.schedule_interval * 5)
        WHERE id = j.id;
    END IF;
END
$$;
COMMENT ON FUNCTION tidewatch.add_job(regproc, interval, jsonb, timestamptz, boolean, interval, integer, text, interval) IS
'Schedules a procedure or function (job_id integer, config jsonb) to run every schedule_interval as the calling role, and returns the job id. Failures are recorded and retried after retry_period, doubling up to 5 schedule intervals; max_retries consecutive failures unschedule the job. A run longer than max_runtime (NULL: no limit) is stopped and recorded as failed with SQLSTATE 57014; jobs of a database run side by side, up to tidewatch.max_parallel_jobs.';
COMMENT ON FUNCTION tidewatch.alter_job(integer, interval, jsonb, timestamptz, boolean, interval, integer, boolean, interval) IS
'Changes the schedule, config, next start, retry settings, max_runtime or scheduled flag of a job; NULL keeps a setting. Returns the job as it now is.';
COMMENT ON FUNCTION tidewatch._job_crashed(integer, timestamptz, text, text) IS 'Internal: records a job run whose process died or was stopped at its max_runtime (SQLSTATE 57014).';
COMMENT ON FUNCTION tidewatch._due_jobs(integer) IS 'Internal: jobs the scheduler should run now, with their max_runtime.';
COMMENT ON FUNCTION tidewatch._readable(regclass) IS 'Internal: may the current role SELECT from the relation? Keys the row-level security of derived data (sql/isolation.sql).';
COMMENT ON FUNCTION tidewatch._require_select(regclass) IS 'Internal: raise 42501 (permission denied) unless the current role may SELECT from the relation.';

-- Log monitors take only variable-length message columns (checked again per statement).
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
COMMENT ON FUNCTION tidewatch._log_message_type(regclass, name) IS 'Internal: the type of a log monitor''s message column; refuses fixed-length string types (42804).';
-- Internal functions take a table and column names instead of SQL text (issue 15, item 7).
DROP FUNCTION tidewatch._mine_query(text, text, bigint);
CREATE FUNCTION tidewatch."_mine_query"(
	"relation" regclass,
	"message_column" TEXT,
	"time_column" TEXT,
	"miner" TEXT,
	"total" bigint
) RETURNS TABLE (
	"template_id" bigint,
	"template" TEXT,
	"lines" bigint,
	"first_seen" timestamp with time zone,
	"last_seen" timestamp with time zone,
	"is_new" bool
)
VOLATILE
LANGUAGE c
AS 'MODULE_PATHNAME', '_mine_query_wrapper';
CREATE OR REPLACE FUNCTION tidewatch.mine_logs(relation regclass, message_column name, time_column name DEFAULT NULL,
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
CREATE OR REPLACE FUNCTION tidewatch.log_monitor(
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
    IF mode IS NULL OR mode NOT IN ('sync', 'async') THEN
        RAISE EXCEPTION 'unknown log monitor mode "%"', mode
            USING ERRCODE = '22023',
                  HINT = 'Valid modes: sync (row triggers; each row gets its template and class at insert), '
                         'async (a decoder classifies committed lines from the write-ahead log; COPY at full speed).';
    END IF;
    PERFORM tidewatch._log_message_type(relation, message_column);
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

-- Async monitors never skip committed rows: the decoder flushes and reads up to the end of the
-- inserted WAL, which monitor_lag() and monitor_wait() now measure against.
CREATE FUNCTION tidewatch."_wal_insert_end_bytes"() RETURNS bigint
STRICT VOLATILE PARALLEL SAFE
LANGUAGE c
AS 'MODULE_PATHNAME', 'wal_insert_end_bytes_wrapper';
CREATE FUNCTION tidewatch._wal_insert_end()
RETURNS pg_lsn
LANGUAGE sql VOLATILE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
RETURN '0/0'::pg_lsn + tidewatch._wal_insert_end_bytes();
CREATE OR REPLACE FUNCTION tidewatch.monitor_lag()
RETURNS TABLE(monitor text, kind text, scored_upto pg_lsn, behind_bytes numeric, last_scored_at timestamptz,
              last_error text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT m.name, m.kind, s.confirmed_flush_lsn,
           greatest(pg_wal_lsn_diff(tidewatch._wal_insert_end(), s.confirmed_flush_lsn), 0),
           m.async_at, m.last_error
    FROM (SELECT x.name, 'anomaly' AS kind, x.async_at, x.last_error FROM tidewatch.monitors x WHERE x.mode = 'async'
          UNION ALL
          SELECT l.name, 'log', l.async_at, l.last_error FROM tidewatch.log_monitors l WHERE l.mode = 'async') m
    LEFT JOIN pg_replication_slots s ON s.slot_name = tidewatch._monitor_slot_name()
    ORDER BY m.kind, m.name
$$;
CREATE OR REPLACE FUNCTION tidewatch.monitor_wait(timeout interval DEFAULT interval '30 seconds')
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
COMMENT ON FUNCTION tidewatch._wal_insert_end_bytes() IS
'Internal: the end of the write-ahead log inserted so far, in bytes from 0/0 (the insert position, or the page boundary before a fresh page header).';
COMMENT ON FUNCTION tidewatch._wal_insert_end() IS
'Internal: the end of the write-ahead log inserted so far as a pg_lsn: what the decoder of async monitors flushes and reads up to, and what monitor_wait() waits for.';

-- Row-level security of derived data, keyed on the source relation (sql/isolation.sql).
-- May the current role write what the monitor `monitor` derives (its episodes and states)? Its
-- owner and the owner's members may (the monitor's job runs as its owner); so may a role that
-- inserts into the table of a log monitor (its triggers run as the inserting role).
CREATE FUNCTION tidewatch._may_write(monitor text)
RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
RETURN EXISTS (SELECT 1 FROM tidewatch.monitors m
               WHERE m.name = monitor AND pg_catalog.pg_has_role(current_user, m.owner, 'MEMBER'))
    OR EXISTS (SELECT 1 FROM tidewatch.log_monitors l
               WHERE l.name = monitor AND (pg_catalog.pg_has_role(current_user, l.owner, 'MEMBER')
                                           OR pg_catalog.has_table_privilege(l.relid::oid, 'INSERT')));

-- Episodes and states: read by policy (below), written by the monitors' owners.
CREATE POLICY monitor_state_read ON tidewatch.monitor_state FOR SELECT USING (true);
CREATE POLICY monitor_state_insert ON tidewatch.monitor_state FOR INSERT WITH CHECK (tidewatch._may_write(monitor));
CREATE POLICY monitor_state_update ON tidewatch.monitor_state FOR UPDATE USING (tidewatch._may_write(monitor));
CREATE POLICY anomalies_read ON tidewatch.anomalies FOR SELECT USING (true);
CREATE POLICY anomalies_insert ON tidewatch.anomalies FOR INSERT WITH CHECK (tidewatch._may_write(monitor));
CREATE POLICY anomalies_update ON tidewatch.anomalies FOR UPDATE USING (tidewatch._may_write(monitor));
GRANT INSERT, UPDATE ON tidewatch.anomalies, tidewatch.monitor_state TO PUBLIC;
GRANT USAGE ON SEQUENCE tidewatch.anomalies_id_seq TO PUBLIC;
-- Anyone may record an event (tidewatch.record_event), about a table it may read or about none.
CREATE POLICY events_all ON tidewatch.events USING (true) WITH CHECK (relid IS NULL OR tidewatch._readable(relid));
-- A drift monitor's results are written by its job, as its owner.
CREATE POLICY drift_results_all ON tidewatch.drift_results USING (true)
    WITH CHECK (monitor IN (SELECT d.name FROM tidewatch.drift_monitors d
                            WHERE pg_catalog.pg_has_role(current_user, d.owner, 'MEMBER')));
GRANT INSERT ON tidewatch.events, tidewatch.drift_results TO PUBLIC;
-- The log catalog keeps the rights it had (PUBLIC may write it); the policies below narrow reading.
CREATE POLICY log_miners_all ON tidewatch.log_miners USING (true) WITH CHECK (true);
CREATE POLICY log_templates_all ON tidewatch.log_templates USING (true) WITH CHECK (true);
CREATE POLICY log_classifiers_all ON tidewatch.log_classifiers USING (true) WITH CHECK (true);
CREATE POLICY log_monitors_all ON tidewatch.log_monitors USING (true) WITH CHECK (true);
CREATE POLICY log_counts_all ON tidewatch.log_counts USING (true) WITH CHECK (true);
CREATE POLICY log_monitor_state_all ON tidewatch.log_monitor_state USING (true) WITH CHECK (true);
ALTER TABLE tidewatch.monitor_state ENABLE ROW LEVEL SECURITY;
ALTER TABLE tidewatch.anomalies ENABLE ROW LEVEL SECURITY;
ALTER TABLE tidewatch.events ENABLE ROW LEVEL SECURITY;
ALTER TABLE tidewatch.drift_results ENABLE ROW LEVEL SECURITY;
ALTER TABLE tidewatch.log_miners ENABLE ROW LEVEL SECURITY;
ALTER TABLE tidewatch.log_templates ENABLE ROW LEVEL SECURITY;
ALTER TABLE tidewatch.log_classifiers ENABLE ROW LEVEL SECURITY;
ALTER TABLE tidewatch.log_monitors ENABLE ROW LEVEL SECURITY;
ALTER TABLE tidewatch.log_counts ENABLE ROW LEVEL SECURITY;
ALTER TABLE tidewatch.log_monitor_state ENABLE ROW LEVEL SECURITY;

-- Made from a relation: readable with it; made from nothing named: its owner's.
CREATE POLICY models_source ON tidewatch.models AS RESTRICTIVE FOR SELECT
    USING (CASE WHEN relation IS NULL THEN pg_catalog.pg_has_role(current_user, owner, 'MEMBER')
                ELSE tidewatch._readable(relation) END);
CREATE POLICY references_source ON tidewatch.references AS RESTRICTIVE FOR SELECT
    USING (CASE WHEN relation IS NULL THEN pg_catalog.pg_has_role(current_user, owner, 'MEMBER')
                ELSE tidewatch._readable(relation) END);
CREATE POLICY log_classifiers_source ON tidewatch.log_classifiers AS RESTRICTIVE FOR SELECT
    USING (CASE WHEN relation IS NULL THEN pg_catalog.pg_has_role(current_user, owner, 'MEMBER')
                ELSE tidewatch._readable(relation) END);
CREATE POLICY monitors_source ON tidewatch.monitors AS RESTRICTIVE FOR SELECT
    USING (tidewatch._readable(relid));
CREATE POLICY log_monitors_source ON tidewatch.log_monitors AS RESTRICTIVE FOR SELECT
    USING (tidewatch._readable(relid));
CREATE POLICY drift_monitors_source ON tidewatch.drift_monitors AS RESTRICTIVE FOR SELECT
    USING (tidewatch._readable(relid));
CREATE POLICY events_source ON tidewatch.events AS RESTRICTIVE FOR SELECT
    USING (relid IS NULL OR tidewatch._readable(relid));

-- Made by a monitor: readable with the monitor (the subqueries see only the monitors the role may
-- read, by the policies above; they are uncorrelated, so each runs once per query).
CREATE POLICY monitor_state_source ON tidewatch.monitor_state AS RESTRICTIVE FOR SELECT
    USING (monitor IN (SELECT m.name FROM tidewatch.monitors m));
CREATE POLICY anomalies_source ON tidewatch.anomalies AS RESTRICTIVE FOR SELECT
    USING (monitor IN (SELECT m.name FROM tidewatch.monitors m
                       UNION ALL SELECT l.name FROM tidewatch.log_monitors l));
CREATE POLICY drift_results_source ON tidewatch.drift_results AS RESTRICTIVE FOR SELECT
    USING (monitor IN (SELECT d.name FROM tidewatch.drift_monitors d));
CREATE POLICY log_counts_source ON tidewatch.log_counts AS RESTRICTIVE FOR SELECT
    USING (monitor IN (SELECT l.name FROM tidewatch.log_monitors l));
CREATE POLICY log_monitor_state_source ON tidewatch.log_monitor_state AS RESTRICTIVE FOR SELECT
    USING (monitor IN (SELECT l.name FROM tidewatch.log_monitors l));

-- A miner: its owner's, the readers' of a table it monitors, and everyone's for 'default'.
CREATE POLICY log_miners_source ON tidewatch.log_miners AS RESTRICTIVE FOR SELECT
    USING (name = 'default' OR pg_catalog.pg_has_role(current_user, owner, 'MEMBER')
           OR name IN (SELECT l.miner FROM tidewatch.log_monitors l));
CREATE POLICY log_templates_source ON tidewatch.log_templates AS RESTRICTIVE FOR SELECT
    USING (miner IN (SELECT x.name FROM tidewatch.log_miners x));


COMMENT ON FUNCTION tidewatch._may_write(text) IS 'Internal: may the current role write the episodes and states of this monitor (its owner, or an inserter into a log monitor''s table)? Keys the write policies of sql/isolation.sql.';

-- explain_anomaly finds a series' usual values through an index on its columns.
CREATE OR REPLACE FUNCTION tidewatch.explain_anomaly(id bigint, "window" interval DEFAULT interval '30 minutes')
RETURNS TABLE (rank integer, reason text, evidence jsonb)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    e tidewatch.anomalies;
    m tidewatch.monitors;
    w interval := coalesce("window", interval '30 minutes');
    lo timestamptz;
    hi timestamptz;
    peak timestamptz;
    usual record;
    peers jsonb;
    r record;
    col record;
    keys text;
    reasons jsonb := '[]';
BEGIN
    SELECT * INTO e FROM tidewatch.anomalies a WHERE a.id = explain_anomaly.id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no anomaly episode with id %', explain_anomaly.id
            USING ERRCODE = '42704', HINT = 'List episodes with SELECT id, monitor, series, started_at FROM tidewatch.anomalies.';
    END IF;
    SELECT * INTO m FROM tidewatch.monitors x WHERE x.name = e.monitor;
    peak := coalesce(e.peak_at, e.started_at);
    lo := e.started_at - w;
    hi := coalesce(e.ended_at, now()) + w;

    -- 1. The detector and by how much.
    IF e.kind = 'missing_data' THEN
        reasons := reasons || jsonb_build_object('weight', 1.0,
            'reason', format('series stopped reporting: last value at %s, usually every %s',
                             e.detail ->> 'last_seen', coalesce(e.detail ->> 'usual_spacing', 'unknown')),
            'evidence', jsonb_build_object('detector', 'missing_data', 'last_seen', e.detail -> 'last_seen',
                                           'usual_spacing', e.detail -> 'usual_spacing', 'ended_at', e.ended_at));
    ELSE
        reasons := reasons || jsonb_build_object('weight', 1.0 + coalesce(e.score, 0),
            'reason', format('%s detector fired at %s: value %s against expected %s (normal band %s to %s), %s robust sigmas %s',
                             coalesce(m.method, e.detail ->> 'method', 'the'), peak, round(e.peak_value::numeric, 4),
                             round(e.expected::numeric, 4), round(e.lower::numeric, 4), round(e.upper::numeric, 4),
                             round(least(abs(e.sigma), 1e6)::numeric, 1), CASE WHEN e.sigma >= 0 THEN 'above' ELSE 'below' END),
            'evidence', jsonb_build_object('detector', coalesce(m.method, e.detail ->> 'method'), 'params', m.params,
                                           'value', e.peak_value, 'expected', e.expected, 'lower', e.lower,
                                           'upper', e.upper, 'sigma', e.sigma, 'score', e.score,
                                           'severity', e.severity));
    END IF;

    -- 2. What kind of anomaly.
    reasons := reasons || jsonb_build_object('weight', 0.95,
        'reason', format('kind: %s (%s), from %s to %s', e.kind,
            CASE e.kind
                WHEN 'spike' THEN 'a short excursion above the normal band'
                WHEN 'dip' THEN 'a short excursion below the normal band'
                WHEN 'level_shift' THEN 'the level moved and stayed'
                WHEN 'variance_change' THEN 'the noise level changed'
                WHEN 'flatline' THEN 'the value stopped changing'
                WHEN 'missing_data' THEN 'no data arrived'
                WHEN 'seasonal_break' THEN 'the usual daily or weekly pattern broke'
                WHEN 'peer_outlier' THEN 'unlike its sibling series'
                ELSE 'a burst of errors' END,
            e.started_at, coalesce(e.ended_at::text, 'now')),
        'evidence', jsonb_build_object('kind', e.kind, 'started_at', e.started_at, 'ended_at', e.ended_at,
                                       'points', e.detail -> 'points'));

    -- 3. What the series usually does at this time of day and week (28 days before).
    IF m.name IS NOT NULL THEN
        -- The series as one condition per column with its value as a literal, so that an index
        -- on the series columns (and time) finds its rows; the jsonb comparison after it is the
        -- exact test (a scan of every series' 28 days took 0.3 s per episode on demo data).
        keys := 'true';
        FOR col IN SELECT a.attname, format_type(a.atttypid, a.atttypmod) AS typ FROM pg_attribute a
                   WHERE a.attrelid = m.relid AND a.attname = ANY (m.series_columns) AND a.attnum > 0
                     AND NOT a.attisdropped AND a.atttypid <> 'json'::regtype
        LOOP
            IF coalesce(jsonb_typeof(e.series -> col.attname), 'null') = 'null' THEN
                keys := keys || format(' AND %I IS NULL', col.attname);
            ELSIF col.typ = 'jsonb' THEN
                keys := keys || format(' AND %I = %L::jsonb', col.attname, (e.series -> col.attname)::text);
            ELSE
                keys := keys || format(' AND %I = %L::%s', col.attname, e.series ->> col.attname, col.typ);
            END IF;
        END LOOP;
        EXECUTE format(
            'SELECT count(*) AS n, percentile_cont(ARRAY[0.1, 0.5, 0.9]) WITHIN GROUP (ORDER BY %I::float8) AS q'
            ' FROM %s WHERE %s AND %s = $1 AND %I >= $2 - interval ''28 days'' AND %I < $2'
            ' AND extract(hour FROM %I::timestamptz AT TIME ZONE ''UTC'') = extract(hour FROM $2 AT TIME ZONE ''UTC'')',
            m.value_column, m.relid, keys, tidewatch._series_columns(m.relid, m.value_column, m.series_columns),
            m.time_column, m.time_column, m.time_column)
            INTO usual USING e.series, peak;
        IF usual.n > 0 THEN
            reasons := reasons || jsonb_build_object(
                'weight', CASE WHEN e.peak_value NOT BETWEEN usual.q[1] AND usual.q[3] THEN 0.9 ELSE 0.5 END,
                'reason', format('at %s:00 UTC this series is usually %s (p10 %s, p90 %s over %s values in the 28 days before); %s',
                                 extract(hour FROM peak AT TIME ZONE 'UTC'), round(usual.q[2]::numeric, 4),
                                 round(usual.q[1]::numeric, 4), round(usual.q[3]::numeric, 4), usual.n,
                                 CASE WHEN e.peak_value IS NULL THEN 'no value arrived'
                                      WHEN e.peak_value NOT BETWEEN usual.q[1] AND usual.q[3]
                                      THEN 'this value is outside that range'
                                      ELSE 'this value is within that range, so the deviation is from the recent level' END),
                'evidence', jsonb_build_object('hour_utc', extract(hour FROM peak AT TIME ZONE 'UTC'), 'n', usual.n,
                                               'p10', usual.q[1], 'median', usual.q[2], 'p90', usual.q[3]));
        END IF;
    END IF;

    -- 4. Other series of the same label group anomalous within ±window.
    SELECT jsonb_agg(jsonb_build_object('id', a.id, 'monitor', a.monitor, 'series', a.series, 'kind', a.kind,
                                        'started_at', a.started_at, 'score', a.score) ORDER BY a.started_at)
        INTO peers
        FROM tidewatch.anomalies a
        WHERE a.id <> e.id AND a.started_at <= hi AND coalesce(a.ended_at, a.started_at) >= lo
          AND (a.series = e.series
               OR EXISTS (SELECT 1 FROM jsonb_each(a.series) x JOIN jsonb_each(e.series) y USING (key, value)));
    IF peers IS NOT NULL THEN
        reasons := reasons || jsonb_build_object('weight', 0.8 + least(jsonb_array_length(peers), 10) * 0.01,
            'reason', format('%s other episode(s) of series sharing labels with %s within ±%s: %s',
                             jsonb_array_length(peers), e.series, w,
                             (SELECT string_agg(format('%s %s at %s', x ->> 'series', x ->> 'kind', x ->> 'started_at'), '; ')
                                FROM (SELECT x FROM jsonb_array_elements(peers) x LIMIT 5) s)),
            'evidence', jsonb_build_object('episodes', peers));
    END IF;

    -- 5. Drift results, new log templates and log error bursts overlapping the episode.
    FOR r IN SELECT * FROM tidewatch.events ev
             WHERE ev.at <= hi AND coalesce(ev."until", ev.at) >= lo
               AND (ev.relid IS NULL OR ev.relid = m.relid)
               AND (ev.series = '{}' OR ev.series = e.series
                    OR EXISTS (SELECT 1 FROM jsonb_each(ev.series) x JOIN jsonb_each(e.series) y USING (key, value)))
             ORDER BY CASE WHEN peak BETWEEN ev.at AND coalesce(ev."until", ev.at) THEN 0
                           ELSE least(abs(extract(epoch FROM ev.at - peak)),
                                      abs(extract(epoch FROM coalesce(ev."until", ev.at) - peak))) END
             LIMIT 10
    LOOP
        reasons := reasons || jsonb_build_object('weight', 0.7,
            'reason', format('%s event %s %s: %s', r.source, coalesce('"' || r.name || '"', ''),
                             CASE WHEN r."until" IS NULL OR r."until" = r.at THEN 'at ' || r.at
                                  ELSE format('from %s to %s', r.at, r."until") END, r.summary),
            'evidence', jsonb_build_object('event_id', r.id, 'source', r.source, 'at', r.at, 'until', r."until",
                                           'detail', r.detail));
    END LOOP;

    RETURN QUERY
        SELECT (row_number() OVER (ORDER BY (x ->> 'weight')::float8 DESC, o))::integer, x ->> 'reason', x -> 'evidence'
        FROM jsonb_array_elements(reasons) WITH ORDINALITY AS t(x, o)
        ORDER BY 1;
END
$$;

-- Alert notifications from Grafana and their delivery outbox (sql/notifications.sql).
-- Alert notifications: alerts received from Grafana (POST /v1/alerts/grafana of tidewatch-service)
-- and test messages, each linked to the anomaly episodes it concerns, and their deliveries through
-- an outbox that the service's workers drain. The service writes these tables; the extension only
-- holds them, so that they live (and are dumped) with the rest of Tidewatch's catalog.
--
-- No grants to PUBLIC: an alert's labels, annotations and links are Grafana's data. sql/roles.sql
-- grants tidewatch_service INSERT/UPDATE and tidewatch_reader SELECT.

CREATE TABLE tidewatch.notifications (
    id               bigint      GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    source           text        NOT NULL DEFAULT 'grafana' CHECK (source IN ('grafana', 'test')),
    -- Grafana's alert identity: the same alert re-sent every repeat interval has the same
    -- (fingerprint, status, starts_at) and is stored once; its resolution is a row of its own.
    fingerprint      text        NOT NULL,
    status           text        NOT NULL CHECK (status IN ('firing', 'resolved')),
    starts_at        timestamptz NOT NULL,
    -- NULL when Grafana sent its "not resolved" zero time 0001-01-01T00:00:00Z (or nothing).
    ends_at          timestamptz,
    received_at      timestamptz NOT NULL DEFAULT now(),
    last_received_at timestamptz NOT NULL DEFAULT now(),
    -- How many times the same alert arrived again (Grafana's repeat interval, retries).
    repeats          integer     NOT NULL DEFAULT 0,
    alertname        text,
    labels           jsonb       NOT NULL DEFAULT '{}',
    -- The alert exactly as received (unknown fields included), and the payload's other fields
    -- (receiver, groupKey, groupLabels, commonLabels, externalURL, ..., without alerts).
    alert            jsonb       NOT NULL,
    payload          jsonb       NOT NULL DEFAULT '{}',
    -- Enrichment: the anomaly episodes of the same series and time, and the top reasons of
    -- tidewatch.explain_anomaly for them ([{episode, rank, reason}, ...]).
    episodes         bigint[]    NOT NULL DEFAULT '{}',
    reasons          jsonb       NOT NULL DEFAULT '[]',
    -- info, warning or critical: the alert's severity label, else its episodes' highest.
    severity         text,
    -- The message every channel sends (a subject line and a short text).
    subject          text        NOT NULL,
    message          text        NOT NULL,
    UNIQUE (fingerprint, status, starts_at)
);
CREATE INDEX notifications_received_idx ON tidewatch.notifications (received_at);
COMMENT ON TABLE tidewatch.notifications IS 'Alerts received from Grafana (and test messages), one row per (fingerprint, status, starts_at): the alert as received, the anomaly episodes it was linked to with their top reasons, and the message sent. Written by tidewatch-service.';
COMMENT ON COLUMN tidewatch.notifications.alert IS 'The alert object exactly as Grafana sent it, unknown fields included.';
COMMENT ON COLUMN tidewatch.notifications.payload IS 'The other fields of the webhook payload (receiver, status, orgId, groupKey, groupLabels, commonLabels, commonAnnotations, externalURL, version, truncatedAlerts, title, state, message, and any unknown field), without alerts.';
COMMENT ON COLUMN tidewatch.notifications.episodes IS 'Ids of tidewatch.anomalies episodes of the same series (matched by labels) overlapping the alert''s time, most relevant first.';

-- The outbox: one row per notification and channel, inserted in the notification's transaction.
CREATE TABLE tidewatch.notification_outbox (
    id               bigint      GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    notification_id  bigint      NOT NULL REFERENCES tidewatch.notifications (id) ON DELETE CASCADE,
    route            text        NOT NULL,
    channel          text        NOT NULL,
    kind             text        NOT NULL CHECK (kind IN ('webhook', 'telegram', 'slack', 'email')),
    -- Sent with every attempt (Idempotency-Key header, e-mail Message-ID): a receiver that honours
    -- it shows a delivery once even when a crash made the service send it again.
    idempotency_key  text        NOT NULL UNIQUE,
    status           text        NOT NULL DEFAULT 'pending'
                                 CHECK (status IN ('pending', 'sending', 'delivered', 'dead')),
    attempts         integer     NOT NULL DEFAULT 0,
    max_attempts     integer     NOT NULL CHECK (max_attempts > 0),
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    -- A worker's lease while it sends; an expired lease (the service died) is taken over.
    locked_until     timestamptz,
    last_error       text,
    last_http_status integer,
    created_at       timestamptz NOT NULL DEFAULT now(),
    delivered_at     timestamptz,
    dead_at          timestamptz,
    UNIQUE (notification_id, channel)
);
CREATE INDEX notification_outbox_due_idx ON tidewatch.notification_outbox (next_attempt_at)
    WHERE status IN ('pending', 'sending');
COMMENT ON TABLE tidewatch.notification_outbox IS 'Deliveries of notifications to channels (outbox pattern): pending, sending (leased by a worker until locked_until), delivered, or dead after max_attempts with the last error. Retries back off exponentially with jitter and honour Retry-After.';

-- Every attempt, for the delivery history and the dashboards.
CREATE TABLE tidewatch.notification_attempts (
    outbox_id   bigint      NOT NULL REFERENCES tidewatch.notification_outbox (id) ON DELETE CASCADE,
    attempt     integer     NOT NULL,
    at          timestamptz NOT NULL DEFAULT now(),
    outcome     text        NOT NULL CHECK (outcome IN ('delivered', 'retry', 'dead')),
    http_status integer,
    error       text,
    duration_ms float8,
    PRIMARY KEY (outbox_id, attempt)
);
CREATE INDEX notification_attempts_at_idx ON tidewatch.notification_attempts (at);
COMMENT ON TABLE tidewatch.notification_attempts IS 'One row per delivery attempt: when, the outcome (delivered, retry: failed and will be retried, dead: failed for good), the HTTP status or SMTP error, and how long it took.';

SELECT pg_catalog.pg_extension_config_dump('tidewatch.notifications', '');
SELECT pg_catalog.pg_extension_config_dump('tidewatch.notifications_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('tidewatch.notification_outbox', '');
SELECT pg_catalog.pg_extension_config_dump('tidewatch.notification_outbox_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('tidewatch.notification_attempts', '');

-- Serialized states: 0.2.0 writes state version 4 and reads version 3 for every method but
-- `auto`, whose state changed. A monitor's `auto` state of version 3 starts afresh (the detector
-- learns again over its warm-up; the monitor's counts are kept, and an episode it had open is
-- closed at the series' last point). Models trained with `auto` are kept; scoring with one says
-- to retrain it (tidewatch.train_detector).
DO $$
DECLARE
    closed bigint;
    reset bigint;
    models bigint;
BEGIN
    WITH old AS (
        SELECT s.monitor, s.series, s.open_episode, s.last_ts FROM tidewatch.monitor_state s
        WHERE s.state IS NOT NULL AND length(s.state) > 1 AND get_byte(s.state, 0) = 3 AND get_byte(s.state, 1) = 0
    ), c AS (
        UPDATE tidewatch.anomalies a SET ended_at = greatest(a.started_at, coalesce(o.last_ts, a.started_at))
        FROM old o WHERE a.id = o.open_episode AND a.ended_at IS NULL
        RETURNING a.id
    )
    SELECT count(*) INTO closed FROM c;
    UPDATE tidewatch.monitor_state s SET state = NULL, open_episode = NULL
    WHERE s.state IS NOT NULL AND length(s.state) > 1 AND get_byte(s.state, 0) = 3 AND get_byte(s.state, 1) = 0;
    GET DIAGNOSTICS reset = ROW_COUNT;
    SELECT count(*) INTO models FROM tidewatch.models m
    WHERE length(m.state) > 1 AND get_byte(m.state, 0) = 3 AND get_byte(m.state, 1) = 0;
    IF reset > 0 THEN
        RAISE NOTICE 'tidewatch 0.2.0: % series of auto monitors start their detectors afresh (% open episodes closed)', reset, closed
            USING DETAIL = 'The state of method auto changed in 0.2.0 (state version 4); the monitors keep their counts and episodes.';
    END IF;
    IF models > 0 THEN
        RAISE NOTICE 'tidewatch 0.2.0: % models trained with method auto must be trained again', models
            USING HINT = 'SELECT tidewatch.train_detector(...) with the same arguments; until then predict() and score() refuse them.';
    END IF;
END
$$;

-- Byte formats and training moved into the algorithm crates (issue 15, item 7): the training
-- aggregate returns a row instead of JSON with the model in hex; the log classifier's trainer
-- takes a table and column names instead of SQL text.
DROP FUNCTION tidewatch._train_log_classifier(text, text, oid);
CREATE FUNCTION tidewatch."_train_log_classifier"(
	"name" TEXT,
	"relation" regclass,
	"message_column" TEXT,
	"label_column" TEXT
) RETURNS bigint
STRICT VOLATILE
LANGUAGE c
AS 'MODULE_PATHNAME', '_train_log_classifier_wrapper';
CREATE OR REPLACE FUNCTION tidewatch.train_log_classifier(name text, relation regclass, message_column name, label_column name)
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
    RETURN tidewatch._train_log_classifier(name, relation, message_column, label_column);
END
$$;
DROP AGGREGATE tidewatch._train_agg(timestamptz, float8, text, jsonb);
DROP FUNCTION tidewatch._train_final(internal);
CREATE TYPE tidewatch._trained AS (n bigint, skipped bigint, anomaly_rate float8,
                                   first_seen timestamptz, last_seen timestamptz, state bytea);
CREATE FUNCTION tidewatch."_train_final"(
	"state" internal
) RETURNS tidewatch._trained
IMMUTABLE PARALLEL SAFE
LANGUAGE c
AS 'MODULE_PATHNAME', '_train_final_wrapper';
CREATE AGGREGATE tidewatch._train_agg(ts timestamptz, value float8, method text, params jsonb) (
    SFUNC = tidewatch._anomaly_agg_step, STYPE = internal, COMBINEFUNC = tidewatch._anomaly_agg_combine,
    SERIALFUNC = tidewatch._anomaly_agg_serialize, DESERIALFUNC = tidewatch._anomaly_agg_deserialize,
    FINALFUNC = tidewatch._train_final, PARALLEL = SAFE);
CREATE OR REPLACE FUNCTION tidewatch.train_detector(
    name text,
    relation regclass,
    value_column name,
    series_columns name[] DEFAULT '{}',
    train_interval interval DEFAULT interval '30 days',
    method text DEFAULT 'auto',
    params jsonb DEFAULT '{}')
RETURNS integer
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    tcol name;
    label text;
    grp text;
    fin timestamptz;
    lo timestamptz;
    r record;
    trained integer := 0;
BEGIN
    IF name IS NULL OR name = '' THEN
        RAISE EXCEPTION 'model name must not be empty' USING ERRCODE = '22023';
    END IF;
    IF train_interval IS NULL OR train_interval <= interval '0' THEN
        RAISE EXCEPTION 'train_interval must be positive, got %', train_interval
            USING ERRCODE = '22023', HINT = 'Use an interval such as ''30 days''.';
    END IF;
    PERFORM tidewatch._anomaly_check(method, params);
    label := tidewatch._series_columns(relation, value_column, series_columns);
    tcol := tidewatch._time_column(relation, NULL::name);
    EXECUTE format('SELECT max(%I)::timestamptz FROM %s WHERE %I <= now()', tcol, relation, tcol) INTO fin;
    IF fin IS NULL THEN
        RAISE EXCEPTION 'no rows to train model "%" on: "%" has no rows up to now', name, relation
            USING ERRCODE = 'P0002', HINT = 'Load data first, or check the table name.';
    END IF;
    lo := fin - train_interval;
    grp := CASE WHEN cardinality(coalesce(series_columns, '{}')) = 0 THEN 'true'
                ELSE (SELECT string_agg(format('%I', s), ', ') FROM unnest(series_columns) s) END;
    FOR r IN EXECUTE format(
        'SELECT %s AS series, tidewatch._train_agg(%I::timestamptz, %I::float8, $1, $2) AS t'
        ' FROM %s WHERE %I > $3 AND %I <= $4 GROUP BY %s',
        label, tcol, value_column, relation, tcol, tcol, grp)
        USING method, params, lo, fin
    LOOP
        INSERT INTO tidewatch.models AS m (name, series, method, params, relation, value_column, series_columns,
                                           trained_at, train_start, train_end, n, skipped, state, quality)
        VALUES (name, r.series, method, coalesce(params, '{}'), relation, value_column, coalesce(series_columns, '{}'),
                now(), lo, fin, (r.t).n, (r.t).skipped, (r.t).state,
                jsonb_build_object('anomaly_rate', (r.t).anomaly_rate,
                                   'first_seen', (r.t).first_seen,
                                   'last_seen', (r.t).last_seen))
        ON CONFLICT ON CONSTRAINT models_name_series_key DO UPDATE SET
            method = excluded.method, params = excluded.params, relation = excluded.relation,
            value_column = excluded.value_column, series_columns = excluded.series_columns,
            trained_at = excluded.trained_at, train_start = excluded.train_start, train_end = excluded.train_end,
            n = excluded.n, skipped = excluded.skipped, state = excluded.state, quality = excluded.quality;
        trained := trained + 1;
        IF trained % 100 = 0 THEN
            RAISE NOTICE 'train_detector "%": % series trained', name, trained;
        END IF;
    END LOOP;
    IF trained = 0 THEN
        RAISE EXCEPTION 'no rows to train model "%" on in (%, %]', name, lo, fin
            USING ERRCODE = 'P0002', HINT = 'Widen train_interval.';
    END IF;
    RETURN trained;
END
$$;
