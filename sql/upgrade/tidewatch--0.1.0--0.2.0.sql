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
    PERFORM tidewatch._require_owner('reference', r.name, r.owner)
        FROM tidewatch.references r WHERE r.name = save_reference.name;
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
-- owner and the owner's members may (the monitor's job runs as its owner). A log monitor's
-- triggers write as the extension's owner, whoever inserts the lines.
CREATE FUNCTION tidewatch._may_write(monitor text)
RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
RETURN EXISTS (SELECT 1 FROM tidewatch.monitors m
               WHERE m.name = monitor AND pg_catalog.pg_has_role(current_user, m.owner, 'MEMBER'))
    OR EXISTS (SELECT 1 FROM tidewatch.log_monitors l
               WHERE l.name = monitor AND pg_catalog.pg_has_role(current_user, l.owner, 'MEMBER'));

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
-- The log catalog: PUBLIC may write miners, classifiers and monitors (the policies here and below
-- narrow reading and who changes what); templates, counts and burst states are written by the
-- miners and monitors only (sql/logs.sql), and a miner's owner may delete its templates.
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
    USING ((relid IS NULL OR tidewatch._readable(relid))
           -- A log monitor's events (new templates, bursts) cite any table's episodes (relid NULL)
           -- but quote its lines: they are read with the log monitor, i.e. with its table.
           AND (source NOT IN ('log_template', 'log_burst') OR detail->>'monitor' IS NULL
                OR detail->>'monitor' IN (SELECT l.name FROM tidewatch.log_monitors l)));

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
    vcol name;
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

    -- 1b. A device's episode: the sensor that moved most and the others' shares at the peak.
    IF e.detail ->> 'top_sensor' IS NOT NULL THEN
        reasons := reasons || jsonb_build_object('weight', 0.97,
            'reason', format('sensor %s moved most: %s%% of the device''s surprise at the peak%s',
                             e.detail ->> 'top_sensor',
                             round(100 * (e.detail -> 'contributions' ->> (e.detail ->> 'top_sensor'))::numeric, 1),
                             coalesce('; then ' || (SELECT string_agg(format('%s %s%%', x.key, round(100 * x.value::text::numeric, 1)),
                                                                      ', ' ORDER BY x.value::text::numeric DESC)
                                                    FROM (SELECT * FROM jsonb_each(e.detail -> 'contributions') c
                                                          WHERE c.key <> e.detail ->> 'top_sensor'
                                                          ORDER BY c.value::text::numeric DESC LIMIT 5) x), '')),
            'evidence', jsonb_build_object('top_sensor', e.detail -> 'top_sensor',
                                           'contributions', e.detail -> 'contributions'));
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
        -- A device's episode: the sensor that moved most.
        vcol := CASE WHEN e.detail ->> 'top_sensor' = ANY (m.value_columns) THEN (e.detail ->> 'top_sensor')::name
                     ELSE m.value_column END;
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
            vcol, m.relid, keys, tidewatch._series_columns(m.relid, vcol, m.series_columns),
            m.time_column, m.time_column, m.time_column)
            INTO usual USING e.series, peak;
        IF usual.n > 0 THEN
            reasons := reasons || jsonb_build_object(
                'weight', CASE WHEN e.peak_value NOT BETWEEN usual.q[1] AND usual.q[3] THEN 0.9 ELSE 0.5 END,
                'reason', format('at %s:00 UTC %s is usually %s (p10 %s, p90 %s over %s values in the 28 days before); %s',
                                 extract(hour FROM peak AT TIME ZONE 'UTC'),
                                 CASE WHEN m.value_columns IS NULL THEN 'this series'
                                      ELSE format('sensor %s of this device', vcol) END,
                                 round(usual.q[2]::numeric, 4),
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
    PERFORM tidewatch._require_owner('log classifier', c.name, c.owner)
        FROM tidewatch.log_classifiers c WHERE c.name = train_log_classifier.name;
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

-- Space partitioning (sql/hypertable.sql): create_hypertable(..., partitioning_column,
-- number_partitions) hash-partitions a table on its series column(s), each hash partition
-- range-partitioned on time into chunks; chunk views, maintenance, show_chunks and drop_chunks
-- cover every hash partition. Chunks of a Citus distributed hypertable are distributed before
-- rows move into them.
ALTER TABLE tidewatch.hypertable
    ADD COLUMN partitioning_columns name[] NOT NULL DEFAULT '{}',
    ADD COLUMN number_partitions integer CHECK (number_partitions BETWEEN 1 AND 1024),
    ADD CONSTRAINT hypertable_check CHECK ((cardinality(partitioning_columns) = 0) = (number_partitions IS NULL));
COMMENT ON TABLE tidewatch.hypertable IS 'Tables managed as hypertables: range-partitioned on a time column into chunks of chunk_interval; with partitioning_columns, first hash-partitioned on them into number_partitions partitions.';
DROP VIEW tidewatch.hypertables;
DROP VIEW tidewatch.chunks;
DROP FUNCTION tidewatch._partitions(regclass);
DROP FUNCTION tidewatch._convert_to_partitioned(regclass, name, interval);
DROP FUNCTION tidewatch.create_hypertable(regclass, name, interval, boolean, boolean);

CREATE FUNCTION tidewatch._range_parents(relation regclass)
RETURNS SETOF regclass
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT relation
    WHERE NOT EXISTS (SELECT 1 FROM pg_partitioned_table pt WHERE pt.partrelid = relation AND pt.partstrat = 'h')
    UNION ALL
    SELECT s.rel FROM (
        SELECT c.oid::regclass AS rel,
               (regexp_match(pg_get_expr(c.relpartbound, c.oid), 'remainder (\d+)'))[1]::integer AS remainder
        FROM pg_partitioned_table pt
        JOIN pg_inherits i ON i.inhparent = pt.partrelid
        JOIN pg_class c ON c.oid = i.inhrelid
        WHERE pt.partrelid = relation AND pt.partstrat = 'h'
        ORDER BY 2) s
$$;
CREATE FUNCTION tidewatch._partitions(relation regclass)
RETURNS TABLE (chunk regclass, range_start timestamptz, range_end timestamptz, is_default boolean, parent regclass)
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
SET TimeZone = 'UTC'
AS $$
DECLARE
    r record;
    m text[];
BEGIN
    FOR r IN
        SELECT c.oid::regclass AS rel, pg_get_expr(c.relpartbound, c.oid) AS bound, i.inhparent::regclass AS par
        FROM tidewatch._range_parents(relation) rp(oid)
        JOIN pg_inherits i ON i.inhparent = rp.oid
        JOIN pg_class c ON c.oid = i.inhrelid
    LOOP
        chunk := r.rel;
        parent := r.par;
        IF r.bound = 'DEFAULT' THEN
            range_start := NULL; range_end := NULL; is_default := true;
        ELSE
            m := regexp_match(r.bound, '^FOR VALUES FROM \((.*)\) TO \((.*)\)$');
            IF m IS NULL THEN
                CONTINUE;
            END IF;
            range_start := CASE WHEN m[1] = 'MINVALUE' THEN NULL ELSE trim(both '''' from m[1])::timestamptz END;
            range_end := CASE WHEN m[2] = 'MAXVALUE' THEN NULL ELSE trim(both '''' from m[2])::timestamptz END;
            is_default := false;
        END IF;
        RETURN NEXT;
    END LOOP;
END
$$;
CREATE FUNCTION tidewatch._citus_distribution_column(relation regclass)
RETURNS name
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    col name;
BEGIN
    IF to_regclass('pg_catalog.pg_dist_partition') IS NULL THEN
        RETURN NULL;
    END IF;
    EXECUTE 'SELECT pg_catalog.column_to_column_name(logicalrelid, partkey) FROM pg_catalog.pg_dist_partition
             WHERE logicalrelid = $1 AND partmethod = ''h'''
        INTO col USING relation;
    RETURN col;
END
$$;
CREATE FUNCTION tidewatch._ensure_range_chunk(relation regclass, parent regclass, ts timestamptz)
RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
SET TimeZone = 'UTC'
SET lock_timeout = '2s'
AS $$
DECLARE
    h tidewatch.hypertable;
    lo timestamptz;
    hi timestamptz;
    nsp name;
    owner_name name;
    chunk_name name;
    default_part regclass;
    cols text;
    dist name;
    moved bigint := 0;
BEGIN
    h := tidewatch._hypertable(relation);
    IF EXISTS (SELECT 1 FROM tidewatch._partitions(parent) p
               WHERE NOT p.is_default
                 AND (p.range_start IS NULL OR p.range_start <= ts)
                 AND (p.range_end IS NULL OR ts < p.range_end)) THEN
        RETURN 0;
    END IF;

    lo := tidewatch.time_bucket(h.chunk_interval, ts);
    hi := lo + h.chunk_interval;
    -- Clip to partitions that already exist (for tables partitioned by hand before).
    SELECT greatest(lo, max(p.range_end)) INTO lo FROM tidewatch._partitions(parent) p
        WHERE NOT p.is_default AND p.range_end <= ts;
    lo := coalesce(lo, tidewatch.time_bucket(h.chunk_interval, ts));
    SELECT least(hi, min(p.range_start)) INTO hi FROM tidewatch._partitions(parent) p
        WHERE NOT p.is_default AND p.range_start > ts;
    hi := coalesce(hi, tidewatch.time_bucket(h.chunk_interval, ts) + h.chunk_interval);

    -- Readers and writers must not plan with the old partition list and then execute with a
    -- snapshot taken after this transaction: a reader would miss the moved rows, a writer that
    -- routed a row to the default partition would fail its partition check. Locking the parent
    -- (ONLY: every query locks it first) makes them wait before planning, so they see the new
    -- chunk and the moved rows together. lock_timeout keeps us from queueing behind long queries.
    -- With space partitioning, queries lock the hypertable first, then its hash partitions.
    EXECUTE format('LOCK TABLE ONLY %s IN ACCESS EXCLUSIVE MODE', relation);
    IF parent <> relation THEN
        EXECUTE format('LOCK TABLE ONLY %s IN ACCESS EXCLUSIVE MODE', parent);
    END IF;

    SELECT n.nspname, r.rolname INTO nsp, owner_name
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_roles r ON r.oid = c.relowner
        WHERE c.oid = relation;
    SELECT p.chunk INTO default_part FROM tidewatch._partitions(parent) p WHERE p.is_default;
    chunk_name := tidewatch._chunk_name(parent, lo, h.chunk_interval);

    EXECUTE format('CREATE TABLE %I.%I (LIKE %s INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING STORAGE'
                   ' INCLUDING COMPRESSION INCLUDING STATISTICS)', nsp, chunk_name, relation);
    EXECUTE format('ALTER TABLE %I.%I OWNER TO %I', nsp, chunk_name, owner_name);
    SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum) INTO cols
        FROM pg_attribute a
        WHERE a.attrelid = relation AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = '';

    dist := tidewatch._citus_distribution_column(relation);
    IF dist IS NOT NULL THEN
        -- A Citus distributed hypertable: distribute the chunk beside the hypertable's shards
        -- before attaching it, so that moving its rows out of the default partition runs on each
        -- worker (no row passes through the coordinator, and no local copy is left behind).
        EXECUTE format('SELECT pg_catalog.create_distributed_table(%L, %L, colocate_with => %L)',
                       format('%I.%I', nsp, chunk_name), dist, relation::text);
        IF default_part IS NOT NULL THEN
            EXECUTE format('INSERT INTO %I.%I (%s) SELECT %s FROM %s WHERE %I >= $1::%s AND %I < $2::%s',
                           nsp, chunk_name, cols, cols, default_part, h.time_column, h.time_type, h.time_column, h.time_type)
                USING lo, hi;
            GET DIAGNOSTICS moved = ROW_COUNT;
            EXECUTE format('DELETE FROM %s WHERE %I >= $1::%s AND %I < $2::%s',
                           default_part, h.time_column, h.time_type, h.time_column, h.time_type)
                USING lo, hi;
        END IF;
    ELSIF default_part IS NOT NULL THEN
        EXECUTE format('WITH moved AS (DELETE FROM ONLY %s WHERE %I >= $1::%s AND %I < $2::%s RETURNING %s)'
                       ' INSERT INTO %I.%I (%s) SELECT %s FROM moved',
                       default_part, h.time_column, h.time_type, h.time_column, h.time_type, cols,
                       nsp, chunk_name, cols, cols)
            USING lo, hi;
        GET DIAGNOSTICS moved = ROW_COUNT;
    END IF;

    EXECUTE format('ALTER TABLE %s ATTACH PARTITION %I.%I FOR VALUES FROM (%L) TO (%L)',
                   parent, nsp, chunk_name, lo::text, hi::text);
    RETURN moved;
END
$$;
CREATE OR REPLACE FUNCTION tidewatch._ensure_chunk(relation regclass, ts timestamptz)
RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    parent regclass;
    moved bigint := 0;
BEGIN
    FOR parent IN SELECT tidewatch._range_parents(relation) LOOP
        moved := moved + tidewatch._ensure_range_chunk(relation, parent, ts);
    END LOOP;
    RETURN moved;
END
$$;
CREATE OR REPLACE FUNCTION tidewatch.run_maintenance(relation regclass, max_chunks integer DEFAULT 1000)
RETURNS TABLE (chunks_created integer, rows_moved bigint, rows_left_in_default bigint)
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
SET TimeZone = 'UTC'
AS $$
DECLARE
    h tidewatch.hypertable;
    parent regclass;
    default_part regclass;
    before_count integer;
    t timestamptz;
    n integer := 0;
    total bigint := 0;
    moved bigint;
    left_over bigint;
    buckets timestamptz[];
    busy boolean := false;
BEGIN
    h := tidewatch._hypertable(relation);
    IF max_chunks IS NULL OR max_chunks < 1 THEN
        RAISE EXCEPTION 'max_chunks must be a positive integer, not %', coalesce(max_chunks::text, 'NULL')
            USING ERRCODE = '22023';
    END IF;
    -- One maintainer per hypertable at a time (the job and a manual call would otherwise
    -- deadlock: each reads the default partition, then wants the hypertable exclusively).
    PERFORM pg_advisory_xact_lock(hashtext('tidewatch.run_maintenance'), relation::oid::integer);
    SELECT count(*) INTO before_count FROM tidewatch._partitions(relation) WHERE NOT is_default;

    BEGIN
        FOR i IN 0 .. h.chunks_ahead LOOP
            PERFORM tidewatch._ensure_chunk(relation, tidewatch.time_bucket(h.chunk_interval, now()) + h.chunk_interval * i);
        END LOOP;
    EXCEPTION WHEN lock_not_available THEN
        RAISE NOTICE 'tidewatch: "%" is busy (lock timeout); chunks will be created at the next maintenance', relation;
        chunks_created := 0; rows_moved := 0; rows_left_in_default := NULL;
        RETURN NEXT;
        RETURN;
    END;

    <<parents>>
    FOR parent IN SELECT tidewatch._range_parents(relation) LOOP
        SELECT p.chunk INTO default_part FROM tidewatch._partitions(parent) p WHERE p.is_default;
        CONTINUE WHEN default_part IS NULL;
        EXECUTE format('SELECT array_agg(b ORDER BY b) FROM (SELECT DISTINCT tidewatch.time_bucket($1, %I::timestamptz) AS b'
                       ' FROM ONLY %s WHERE isfinite(%I)) s', h.time_column, default_part, h.time_column)
            INTO buckets USING h.chunk_interval;
        FOREACH t IN ARRAY coalesce(buckets, '{}') LOOP
            EXIT parents WHEN n >= max_chunks OR busy;
            BEGIN
                moved := tidewatch._ensure_range_chunk(relation, parent, t);
            EXCEPTION WHEN lock_not_available THEN
                RAISE NOTICE 'tidewatch: "%" is busy (lock timeout); the rest moves at the next maintenance', relation;
                busy := true;
                EXIT parents;
            END;
            -- A bucket may be split around existing partitions: cover what is left of it.
            FOR guard IN 1 .. 100 LOOP
                DECLARE
                    nxt timestamptz;
                    more bigint;
                BEGIN
                    EXECUTE format('SELECT min(%I)::timestamptz FROM ONLY %s WHERE %I >= $1::%s AND %I < $2::%s',
                                   h.time_column, default_part, h.time_column, h.time_type, h.time_column, h.time_type)
                        INTO nxt USING t, t + h.chunk_interval;
                    EXIT WHEN nxt IS NULL;
                    more := tidewatch._ensure_range_chunk(relation, parent, nxt);
                    EXIT WHEN more = 0;
                    moved := moved + more;
                END;
            END LOOP;
            total := total + moved;
            n := n + 1;
            IF n % 50 = 0 THEN
                RAISE NOTICE 'tidewatch: % chunk ranges done, % rows moved out of the default partition',
                    n, total;
            END IF;
        END LOOP;
    END LOOP;

    chunks_created := (SELECT count(*) FROM tidewatch._partitions(relation) WHERE NOT is_default) - before_count;
    rows_moved := total;
    rows_left_in_default := 0;
    FOR default_part IN SELECT p.chunk FROM tidewatch._partitions(relation) p WHERE p.is_default LOOP
        EXECUTE format('SELECT count(*) FROM ONLY %s', default_part) INTO left_over;
        rows_left_in_default := rows_left_in_default + left_over;
    END LOOP;
    RETURN NEXT;
END
$$;
CREATE FUNCTION tidewatch._convert_to_partitioned(relation regclass, time_column name, chunk_interval interval,
                                                  space_columns name[] DEFAULT '{}', space_partitions integer DEFAULT NULL)
RETURNS regclass
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
SET TimeZone = 'UTC'
AS $$
DECLARE
    nsp name;
    relname name;
    owner_name name;
    tmp_name name;
    tmp regclass;
    table_comment text;
    r record;
    defs text[] := '{}';
    comments text[] := '{}';
    grants text[] := '{}';
    seqs text[] := '{}';
    cols text;
    stmt text;
    blocker text;
    b timestamptz;
    rowcount bigint;
    key_col name;
    hash_key text;
BEGIN
    SELECT n.nspname, c.relname, pg_get_userbyid(c.relowner) INTO nsp, relname, owner_name
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = relation;

    -- Things a swap would break: refuse with a hint rather than lose them.
    SELECT string_agg(DISTINCT v.oid::regclass::text, ', ') INTO blocker
        FROM pg_depend d JOIN pg_rewrite w ON w.oid = d.objid JOIN pg_class v ON v.oid = w.ev_class
        WHERE d.classid = 'pg_rewrite'::regclass AND d.refobjid = relation AND v.oid <> relation;
    IF blocker IS NOT NULL THEN
        RAISE EXCEPTION 'cannot convert "%" to a hypertable: views depend on it', relation
            USING ERRCODE = '2BP01', DETAIL = 'Dependent views: ' || blocker || '.',
                  HINT = 'Drop the views, create the hypertable, then create the views again.';
    END IF;
    SELECT string_agg(format('%s (%s)', conname, conrelid::regclass), ', ') INTO blocker
        FROM pg_constraint WHERE confrelid = relation AND contype = 'f';
    IF blocker IS NOT NULL THEN
        RAISE EXCEPTION 'cannot convert "%" to a hypertable: foreign keys reference it', relation
            USING ERRCODE = '2BP01', DETAIL = 'Referencing constraints: ' || blocker || '.',
                  HINT = 'Drop those foreign keys first; PostgreSQL 15 cannot reference a partitioned table by a key without the partition column.';
    END IF;
    IF EXISTS (SELECT 1 FROM pg_inherits WHERE inhrelid = relation OR inhparent = relation) THEN
        RAISE EXCEPTION 'cannot convert "%" to a hypertable: it takes part in table inheritance', relation
            USING ERRCODE = '0A000', HINT = 'Use a table without INHERITS parents or children.';
    END IF;
    SELECT string_agg(tgname, ', ') INTO blocker FROM pg_trigger WHERE tgrelid = relation AND NOT tgisinternal;
    IF blocker IS NOT NULL THEN
        RAISE EXCEPTION 'cannot convert "%" to a hypertable: it has triggers', relation
            USING ERRCODE = '0A000', DETAIL = 'Triggers: ' || blocker || '.',
                  HINT = 'Drop the triggers, create the hypertable, then create them again on it.';
    END IF;
    FOREACH key_col IN ARRAY array_prepend(time_column, space_columns) LOOP
        FOR r IN
            SELECT i.indexrelid::regclass AS idx FROM pg_index i
            WHERE i.indrelid = relation AND i.indisunique
              AND NOT (SELECT a.attnum FROM pg_attribute a WHERE a.attrelid = relation AND a.attname = key_col) = ANY (i.indkey)
        LOOP
            RAISE EXCEPTION 'cannot convert "%" to a hypertable: unique index "%" does not include column "%"',
                    relation, r.idx, key_col
                USING ERRCODE = '0A000',
                      DETAIL = format('A unique index or primary key on a partitioned table must contain the partition column%s.',
                                     CASE WHEN cardinality(space_columns) > 0 THEN 's' ELSE '' END),
                      HINT = format('Add %I to it, e.g. PRIMARY KEY (id, %I), then call create_hypertable again.', key_col, key_col);
        END LOOP;
    END LOOP;

    EXECUTE format('LOCK TABLE %s IN ACCESS EXCLUSIVE MODE', relation);

    -- Remember what LIKE does not copy.
    table_comment := obj_description(relation, 'pg_class');
    FOR r IN
        SELECT con.conname, pg_get_constraintdef(con.oid) AS def, obj_description(con.oid, 'pg_constraint') AS cmt
        FROM pg_constraint con WHERE con.conrelid = relation AND con.contype IN ('p', 'u', 'x')
    LOOP
        defs := defs || format('ALTER TABLE %I.%I ADD CONSTRAINT %I %s', nsp, relname, r.conname, r.def);
        IF r.cmt IS NOT NULL THEN
            comments := comments || format('COMMENT ON CONSTRAINT %I ON %I.%I IS %L', r.conname, nsp, relname, r.cmt);
        END IF;
    END LOOP;
    FOR r IN
        SELECT i.indexrelid, pg_get_indexdef(i.indexrelid) AS def, obj_description(i.indexrelid, 'pg_class') AS cmt,
               c.relname AS idxname
        FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
        WHERE i.indrelid = relation
          AND NOT EXISTS (SELECT 1 FROM pg_constraint con WHERE con.conindid = i.indexrelid AND con.conrelid = relation)
    LOOP
        defs := defs || r.def;
        IF r.cmt IS NOT NULL THEN
            comments := comments || format('COMMENT ON INDEX %I.%I IS %L', nsp, r.idxname, r.cmt);
        END IF;
    END LOOP;
    FOR r IN
        SELECT a.privilege_type, a.is_grantable, a.grantee
        FROM aclexplode((SELECT relacl FROM pg_class WHERE oid = relation)) a
        WHERE a.grantee <> (SELECT relowner FROM pg_class WHERE oid = relation)
    LOOP
        grants := grants || format('GRANT %s ON %I.%I TO %s%s', r.privilege_type, nsp, relname,
            CASE WHEN r.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(r.grantee)) END,
            CASE WHEN r.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END);
    END LOOP;
    -- Column-level grants.
    FOR r IN
        SELECT att.attname, a.privilege_type, a.grantee
        FROM pg_attribute att, aclexplode(att.attacl) a
        WHERE att.attrelid = relation AND att.attacl IS NOT NULL AND att.attnum > 0 AND NOT att.attisdropped
    LOOP
        grants := grants || format('GRANT %s (%I) ON %I.%I TO %s', r.privilege_type, r.attname, nsp, relname,
            CASE WHEN r.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(r.grantee)) END);
    END LOOP;

    tmp_name := left(relname, 40) || '_tw_new_' || relation::oid;
    hash_key := (SELECT string_agg(format('%I', c), ', ') FROM unnest(space_columns) c);
    EXECUTE format('CREATE TABLE %I.%I (LIKE %s INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING COMMENTS'
                   ' INCLUDING GENERATED INCLUDING IDENTITY INCLUDING STATISTICS INCLUDING STORAGE'
                   ' INCLUDING COMPRESSION) PARTITION BY %s', nsp, tmp_name, relation,
                   CASE WHEN hash_key IS NULL THEN format('RANGE (%I)', time_column) ELSE format('HASH (%s)', hash_key) END);
    tmp := format('%I.%I', nsp, tmp_name)::regclass;
    EXECUTE format('ALTER TABLE %s ALTER COLUMN %I SET NOT NULL', tmp, time_column);
    FOR i IN 0 .. coalesce(space_partitions, 0) - 1 LOOP
        EXECUTE format('CREATE TABLE %I.%I PARTITION OF %s FOR VALUES WITH (MODULUS %s, REMAINDER %s) PARTITION BY RANGE (%I)',
                       nsp, tmp_name || '_h' || i, tmp, space_partitions, i, time_column);
    END LOOP;

    -- Sequences owned by the old table's columns (serial) move to the new one; identity
    -- sequences are new, so they continue from the old ones.
    FOR r IN
        SELECT s.oid::regclass AS seq, a.attname, d.deptype
        FROM pg_depend d JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S'
             JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
        WHERE d.refobjid = relation AND d.classid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
    LOOP
        IF r.deptype = 'a' THEN
            EXECUTE format('ALTER SEQUENCE %s OWNED BY %s.%I', r.seq, tmp, r.attname);
        ELSE
            EXECUTE format('SELECT setval(pg_get_serial_sequence(%L, %L), last_value, is_called) FROM %s',
                           tmp::text, r.attname, r.seq);
        END IF;
    END LOOP;

    -- Chunks for the data, then the rows, then the default partition.
    CREATE TEMP TABLE IF NOT EXISTS _tw_bucket (b timestamptz) ON COMMIT DROP;
    TRUNCATE _tw_bucket;
    EXECUTE format('INSERT INTO _tw_bucket SELECT DISTINCT tidewatch.time_bucket($1, %I::timestamptz) FROM ONLY %s WHERE isfinite(%I)',
                   time_column, relation, time_column) USING chunk_interval;
    INSERT INTO tidewatch.hypertable (relid, time_column, time_type, chunk_interval, partitioning_columns, number_partitions)
        SELECT tmp, time_column, a.atttypid::regtype, chunk_interval, coalesce(space_columns, '{}'),
               CASE WHEN cardinality(space_columns) > 0 THEN space_partitions END
        FROM pg_attribute a WHERE a.attrelid = relation AND a.attname = time_column;
    FOR b IN SELECT _tw_bucket.b FROM _tw_bucket ORDER BY 1 LOOP
        PERFORM tidewatch._ensure_chunk(tmp, b);
    END LOOP;
    SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum) INTO cols
        FROM pg_attribute a
        WHERE a.attrelid = relation AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = '';
    EXECUTE format('INSERT INTO %s (%s) OVERRIDING SYSTEM VALUE SELECT %s FROM ONLY %s', tmp, cols, cols, relation);
    GET DIAGNOSTICS rowcount = ROW_COUNT;
    IF rowcount > 0 THEN
        RAISE NOTICE 'tidewatch: migrated % rows of "%" into % chunks', rowcount, relation, (SELECT count(*) FROM _tw_bucket);
    END IF;

    -- Swap. The catalog row made for tmp stays: renaming keeps the table's oid.
    EXECUTE format('DROP TABLE %s', relation);
    EXECUTE format('ALTER TABLE %s RENAME TO %I', tmp, relname);
    EXECUTE format('ALTER TABLE %I.%I OWNER TO %I', nsp, relname, owner_name);
    FOREACH stmt IN ARRAY defs LOOP
        EXECUTE stmt;
    END LOOP;
    FOREACH stmt IN ARRAY comments LOOP
        EXECUTE stmt;
    END LOOP;
    FOREACH stmt IN ARRAY grants LOOP
        EXECUTE stmt;
    END LOOP;
    IF table_comment IS NOT NULL THEN
        EXECUTE format('COMMENT ON TABLE %I.%I IS %L', nsp, relname, table_comment);
    END IF;
    -- Hash partitions and chunks were named after the temporary table: name them after the table.
    FOR r IN SELECT p.p AS part, row_number() OVER () - 1 AS i FROM tidewatch._range_parents(tmp) p(p) WHERE p.p <> tmp LOOP
        stmt := left(relname, 50) || '_h' || r.i;
        FOR k IN 1 .. 1000 LOOP
            EXIT WHEN NOT EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                                  WHERE c.relname = stmt AND n.nspname = nsp);
            stmt := left(relname, 50) || '_h' || r.i || '_' || k;
        END LOOP;
        EXECUTE format('ALTER TABLE %s RENAME TO %I', r.part, stmt);
    END LOOP;
    FOR r IN SELECT p.chunk, p.range_start, p.parent FROM tidewatch._partitions(tmp) p WHERE NOT p.is_default LOOP
        EXECUTE format('ALTER TABLE %s RENAME TO %I', r.chunk, tidewatch._chunk_name(r.parent, r.range_start, chunk_interval));
    END LOOP;
    RETURN tmp;
END
$$;
CREATE FUNCTION tidewatch._space_columns(relation regclass, time_column name, partitioning_column name,
                                         number_partitions integer, partitioning_columns name[])
RETURNS name[]
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    space name[];
    c name;
    typ regtype;
BEGIN
    IF partitioning_column IS NOT NULL AND partitioning_columns IS NOT NULL THEN
        RAISE EXCEPTION 'pass partitioning_column or partitioning_columns, not both'
            USING ERRCODE = '22023', HINT = 'For several columns use partitioning_columns => ''{satellite, metric}''.';
    END IF;
    space := coalesce(partitioning_columns, CASE WHEN partitioning_column IS NOT NULL THEN ARRAY[partitioning_column] END, '{}');
    IF cardinality(space) = 0 THEN
        IF number_partitions IS NOT NULL THEN
            RAISE EXCEPTION 'number_partitions needs a partitioning_column'
                USING ERRCODE = '22023',
                      HINT = 'Name the series column to hash, e.g. partitioning_column => ''satellite'', number_partitions => 4.';
        END IF;
        RETURN space;
    END IF;
    IF number_partitions IS NULL OR number_partitions NOT BETWEEN 1 AND 1024 THEN
        RAISE EXCEPTION 'invalid number_partitions: %', coalesce(number_partitions::text, 'NULL')
            USING ERRCODE = '22023',
                  HINT = 'Pass number_partitions => N with N between 1 and 1024; a small multiple of the parallel workers you use, e.g. 4.';
    END IF;
    IF (SELECT count(DISTINCT x) FROM unnest(space) x) <> cardinality(space) OR array_position(space, NULL) IS NOT NULL THEN
        RAISE EXCEPTION 'invalid partitioning_columns: %', space
            USING ERRCODE = '22023', HINT = 'Name each column once.';
    END IF;
    FOREACH c IN ARRAY space LOOP
        SELECT a.atttypid::regtype INTO typ FROM pg_attribute a
            WHERE a.attrelid = relation AND a.attname = c AND a.attnum > 0 AND NOT a.attisdropped;
        IF typ IS NULL THEN
            RAISE EXCEPTION 'partitioning column "%" does not exist in table "%"', c, relation
                USING ERRCODE = '42703',
                      HINT = format('Columns of %s: %s.', relation, (SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum)
                                                                 FROM pg_attribute a WHERE a.attrelid = relation AND a.attnum > 0 AND NOT a.attisdropped));
        END IF;
        IF c = time_column THEN
            RAISE EXCEPTION 'partitioning column "%" is the time column', c
                USING ERRCODE = '22023', HINT = 'Hash-partition on the series column(s), e.g. the satellite or device id.';
        END IF;
        IF NOT EXISTS (SELECT 1 FROM pg_opclass o JOIN pg_am am ON am.oid = o.opcmethod
                       WHERE am.amname = 'hash' AND o.opcdefault
                         AND (o.opcintype = typ OR o.opcintype IN (SELECT t.typbasetype FROM pg_type t WHERE t.oid = typ)
                              OR (o.opcintype = 'anyenum'::regtype AND EXISTS (SELECT 1 FROM pg_type t WHERE t.oid = typ AND t.typtype = 'e'))
                              OR (o.opcintype = 'anyarray'::regtype AND EXISTS (SELECT 1 FROM pg_type t WHERE t.oid = typ AND t.typelem <> 0 AND t.typlen = -1)))) THEN
            RAISE EXCEPTION 'partitioning column "%" has type %, which cannot be hashed', c, typ
                USING ERRCODE = '42804', HINT = 'Partition on a text, integer, uuid or other hashable column.';
        END IF;
    END LOOP;
    RETURN space;
END
$$;
CREATE FUNCTION tidewatch.create_hypertable(
    relation regclass,
    time_column name,
    chunk_time_interval interval DEFAULT interval '1 day',
    if_not_exists boolean DEFAULT false,
    migrate_data boolean DEFAULT false,
    partitioning_column name DEFAULT NULL,
    number_partitions integer DEFAULT NULL,
    partitioning_columns name[] DEFAULT NULL)
RETURNS TABLE (hypertable_id integer, schema_name name, table_name name, created boolean)
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
SET TimeZone = 'UTC'
AS $$
DECLARE
    rel record;
    col record;
    part record;
    h tidewatch.hypertable;
    has_rows boolean;
    target regclass := relation;
    default_name name;
    maintenance_interval interval;
    space name[];
    parent regclass;
BEGIN
    IF relation IS NULL OR time_column IS NULL THEN
        RAISE EXCEPTION 'relation and time_column must not be NULL' USING ERRCODE = '22004';
    END IF;
    SELECT c.oid, c.relname, c.relkind, c.relispartition, n.nspname INTO rel
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = relation;

    SELECT * INTO h FROM tidewatch.hypertable WHERE relid = relation;
    IF FOUND THEN
        IF if_not_exists THEN
            RAISE NOTICE 'table "%" is already a hypertable, skipping', relation;
            RETURN QUERY SELECT h.id, rel.nspname, rel.relname, false;
            RETURN;
        END IF;
        RAISE EXCEPTION 'table "%" is already a hypertable', relation
            USING ERRCODE = '42710', HINT = 'Pass if_not_exists => true to skip tables that already are hypertables.';
    END IF;

    IF rel.relkind NOT IN ('r', 'p') THEN
        RAISE EXCEPTION '"%" is not a table', relation
            USING ERRCODE = '42809', HINT = 'create_hypertable takes an ordinary table or a table declared PARTITION BY RANGE.';
    END IF;
    IF rel.relispartition THEN
        RAISE EXCEPTION 'table "%" is a partition of another table', relation
            USING ERRCODE = '42809', HINT = 'Call create_hypertable on the partitioned parent table.';
    END IF;

    SELECT a.attnum, a.atttypid::regtype AS typ, a.attnotnull INTO col
        FROM pg_attribute a WHERE a.attrelid = relation AND a.attname = time_column AND a.attnum > 0 AND NOT a.attisdropped;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'column "%" does not exist in table "%"', time_column, relation
            USING ERRCODE = '42703',
                  HINT = coalesce('Time columns of this table: ' || (
                      SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum) FROM pg_attribute a
                      WHERE a.attrelid = relation AND a.attnum > 0 AND NOT a.attisdropped
                        AND a.atttypid IN ('timestamptz'::regtype, 'timestamp'::regtype, 'date'::regtype)) || '.',
                      'The table has no timestamptz, timestamp or date column.');
    END IF;
    IF col.typ NOT IN ('timestamptz'::regtype, 'timestamp'::regtype, 'date'::regtype) THEN
        RAISE EXCEPTION 'column "%" has type %, not timestamptz, timestamp or date', time_column, col.typ
            USING ERRCODE = '42804', HINT = 'Use a time column; to convert one: ALTER TABLE ... ALTER COLUMN ... TYPE timestamptz USING ...';
    END IF;

    IF chunk_time_interval IS NULL OR chunk_time_interval <= interval '0' THEN
        RAISE EXCEPTION 'invalid chunk_time_interval: %', coalesce(chunk_time_interval::text, 'NULL')
            USING ERRCODE = '22023', HINT = 'Use a positive interval such as ''1 day'' or ''6 hours''.';
    END IF;
    IF extract(month FROM chunk_time_interval) <> 0 OR extract(year FROM chunk_time_interval) <> 0 THEN
        IF chunk_time_interval <> justify_interval(date_trunc('month', chunk_time_interval)) THEN
            RAISE EXCEPTION 'invalid chunk_time_interval: %', chunk_time_interval
                USING ERRCODE = '22023', DETAIL = 'An interval in months cannot also have days or a time part.',
                      HINT = 'Use whole months (''1 month'') or days and hours (''7 days''), not both.';
        END IF;
    END IF;
    IF col.typ = 'date'::regtype AND chunk_time_interval <> date_trunc('day', chunk_time_interval) THEN
        RAISE EXCEPTION 'invalid chunk_time_interval % for date column "%"', chunk_time_interval, time_column
            USING ERRCODE = '22023', HINT = 'Chunks of a date column must be whole days, e.g. ''7 days''.';
    END IF;

    space := tidewatch._space_columns(relation, time_column, partitioning_column, number_partitions, partitioning_columns);

    IF rel.relkind = 'p' AND cardinality(space) > 0 THEN
        RAISE EXCEPTION 'cannot add space partitioning to "%", which is already partitioned', relation
            USING ERRCODE = '0A000',
                  DETAIL = format('Its partition key is %s.', pg_get_partkeydef(relation)),
                  HINT = 'Start from a plain table (with migrate_data => true if it has rows).';
    END IF;
    IF rel.relkind = 'p' THEN
        SELECT pt.partstrat, pt.partnatts, pt.partattrs::int2[] AS attrs, pt.partdefid INTO part
            FROM pg_partitioned_table pt WHERE pt.partrelid = relation;
        IF part.partstrat <> 'r' OR part.partnatts <> 1 OR part.attrs[0] <> col.attnum THEN
            RAISE EXCEPTION 'table "%" is not partitioned by range on column "%"', relation, time_column
                USING ERRCODE = '0A000',
                      DETAIL = format('Its partition key is %s.', pg_get_partkeydef(relation)),
                      HINT = format('Declare it PARTITION BY RANGE (%I), or start from a plain table.', time_column);
        END IF;
        IF NOT col.attnotnull THEN
            BEGIN
                EXECUTE format('ALTER TABLE %s ALTER COLUMN %I SET NOT NULL', relation, time_column);
            EXCEPTION WHEN not_null_violation THEN
                RAISE EXCEPTION 'column "%" of "%" contains NULL values', time_column, relation
                    USING ERRCODE = '23502', HINT = 'Every row of a hypertable needs a time; delete or fill the rows with NULL time first.';
            END;
        END IF;
        INSERT INTO tidewatch.hypertable (relid, time_column, time_type, chunk_interval)
            VALUES (relation, time_column, col.typ, chunk_time_interval);
        IF part.partdefid = 0 THEN
            default_name := left(rel.relname, 55) || '_default';
            EXECUTE format('CREATE TABLE %I.%I PARTITION OF %s DEFAULT', rel.nspname, default_name, relation);
        END IF;
    ELSE
        EXECUTE format('SELECT EXISTS (SELECT 1 FROM ONLY %s)', relation) INTO has_rows;
        IF has_rows AND NOT migrate_data THEN
            RAISE EXCEPTION 'table "%" is not empty', relation
                USING ERRCODE = '55000',
                      HINT = 'Pass migrate_data => true to move its rows into chunks (in one transaction; the table is locked meanwhile).';
        END IF;
        IF has_rows THEN
            EXECUTE format('SELECT EXISTS (SELECT 1 FROM ONLY %s WHERE %I IS NULL)', relation, time_column) INTO has_rows;
            IF has_rows THEN
                RAISE EXCEPTION 'column "%" of "%" contains NULL values', time_column, relation
                    USING ERRCODE = '23502', HINT = 'Every row of a hypertable needs a time; delete or fill the rows with NULL time first.';
            END IF;
        END IF;
        target := tidewatch._convert_to_partitioned(relation, time_column, chunk_time_interval, space,
                                                    CASE WHEN cardinality(space) > 0 THEN number_partitions END);
        FOR parent IN SELECT tidewatch._range_parents(target) LOOP
            default_name := left((SELECT c.relname FROM pg_class c WHERE c.oid = parent), 55) || '_default';
            EXECUTE format('CREATE TABLE %I.%I PARTITION OF %s DEFAULT', rel.nspname, default_name, parent);
        END LOOP;
    END IF;

    SELECT * INTO h FROM tidewatch.hypertable WHERE relid = target;
    PERFORM tidewatch.run_maintenance(target);

    maintenance_interval := least(chunk_time_interval, interval '1 hour');
    INSERT INTO tidewatch.job (application_name, proc, schedule_interval, config, retry_period, hypertable_id, owner)
        VALUES (format('Maintenance of %s', target), 'tidewatch.policy_maintenance(integer, jsonb)'::regprocedure,
                maintenance_interval, jsonb_build_object('hypertable_id', h.id),
                least(maintenance_interval, interval '5 minutes'), h.id,
                (SELECT c.relowner::regrole FROM pg_class c WHERE c.oid = target));

    RETURN QUERY SELECT h.id, rel.nspname, rel.relname, true;
END
$$;
CREATE OR REPLACE FUNCTION tidewatch.show_chunks(relation regclass, older_than timestamptz DEFAULT NULL, newer_than timestamptz DEFAULT NULL)
RETURNS SETOF regclass
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT p.chunk FROM tidewatch._partitions((tidewatch._hypertable(relation)).relid) p
    WHERE NOT p.is_default
      AND (older_than IS NULL OR p.range_end <= older_than)
      AND (newer_than IS NULL OR p.range_start >= newer_than)
    ORDER BY p.range_start, p.chunk::text
$$;
CREATE OR REPLACE FUNCTION tidewatch.drop_chunks(relation regclass, older_than timestamptz DEFAULT NULL, newer_than timestamptz DEFAULT NULL)
RETURNS SETOF text
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
SET TimeZone = 'UTC'
AS $$
DECLARE
    h tidewatch.hypertable;
    c regclass;
    default_part regclass;
    name text;
    deleted bigint;
BEGIN
    h := tidewatch._hypertable(relation);
    IF older_than IS NULL AND newer_than IS NULL THEN
        RAISE EXCEPTION 'drop_chunks needs older_than or newer_than'
            USING ERRCODE = '22023',
                  HINT = 'For example drop_chunks(''metrics'', older_than => interval ''7 days''); to empty the table use TRUNCATE.';
    END IF;
    FOR c IN SELECT tidewatch.show_chunks(relation, older_than, newer_than) LOOP
        name := c::text;
        EXECUTE format('DROP TABLE %s', c);
        RETURN NEXT name;
    END LOOP;
    -- Rows still waiting in a default partition whose chunk would have been dropped go too.
    FOR default_part IN SELECT p.chunk FROM tidewatch._partitions(relation) p WHERE p.is_default LOOP
        EXECUTE format('DELETE FROM ONLY %s WHERE ($1::timestamptz IS NULL OR %I < tidewatch.time_bucket($3, $1::timestamptz)::%s)'
                       ' AND ($2::timestamptz IS NULL OR %I >= tidewatch.time_bucket($3, $2::timestamptz)::%s + $3)',
                       default_part, h.time_column, h.time_type, h.time_column, h.time_type)
            USING older_than, newer_than, h.chunk_interval;
        GET DIAGNOSTICS deleted = ROW_COUNT;
        IF deleted > 0 THEN
            RAISE NOTICE 'tidewatch: deleted % rows of the dropped range from the default partition "%" of "%"',
                deleted, default_part, relation;
        END IF;
    END LOOP;
END
$$;
CREATE OR REPLACE FUNCTION tidewatch.drop_chunks(relation regclass, older_than interval, newer_than interval DEFAULT NULL)
RETURNS SETOF text
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT tidewatch.drop_chunks(relation, now() - older_than, now() - newer_than) $$;
CREATE VIEW tidewatch.chunks AS
SELECT h.relid AS hypertable,
       p.chunk,
       n.nspname AS chunk_schema,
       c.relname AS chunk_name,
       p.range_start,
       p.range_end,
       p.is_default,
       pg_total_relation_size(p.chunk) AS total_bytes,
       pg_size_pretty(pg_total_relation_size(p.chunk)) AS total_size,
       CASE WHEN c.reltuples < 0 THEN NULL ELSE c.reltuples::bigint END AS row_estimate,
       CASE WHEN p.parent <> h.relid THEN p.parent END AS space_partition
FROM tidewatch.hypertable h
CROSS JOIN LATERAL tidewatch._partitions(h.relid) p
JOIN pg_class c ON c.oid = p.chunk
JOIN pg_namespace n ON n.oid = c.relnamespace;
CREATE VIEW tidewatch.hypertables AS
SELECT h.id AS hypertable_id,
       h.relid AS hypertable,
       n.nspname AS hypertable_schema,
       c.relname AS hypertable_name,
       pg_get_userbyid(c.relowner) AS owner,
       h.time_column,
       h.time_type,
       h.chunk_interval,
       s.num_chunks,
       s.range_start,
       s.range_end,
       s.total_bytes,
       pg_size_pretty(s.total_bytes) AS total_size,
       s.row_estimate,
       (SELECT j.config ->> 'drop_after' FROM tidewatch.job j
         WHERE j.hypertable_id = h.id AND j.proc = 'tidewatch.policy_retention(integer, jsonb)'::regprocedure)::interval AS retention,
       h.partitioning_columns,
       h.number_partitions
FROM tidewatch.hypertable h
JOIN pg_class c ON c.oid = h.relid
JOIN pg_namespace n ON n.oid = c.relnamespace
CROSS JOIN LATERAL (
    SELECT count(*) FILTER (WHERE NOT ch.is_default) AS num_chunks,
           min(ch.range_start) AS range_start,
           max(ch.range_end) AS range_end,
           coalesce(sum(ch.total_bytes), 0)::bigint AS total_bytes,
           sum(ch.row_estimate)::bigint AS row_estimate
    FROM tidewatch.chunks ch WHERE ch.hypertable = h.relid
) s;
ALTER VIEW tidewatch.chunks SET (security_invoker = true);
ALTER VIEW tidewatch.hypertables SET (security_invoker = true);
GRANT SELECT ON tidewatch.chunks, tidewatch.hypertables TO PUBLIC;
COMMENT ON FUNCTION tidewatch.create_hypertable(regclass, name, interval, boolean, boolean, name, integer, name[]) IS
'Turns a table into a hypertable partitioned by range on time_column into chunks of chunk_time_interval. Works on empty tables, on tables declared PARTITION BY RANGE, and with migrate_data => true on tables with rows; adds a default partition and a maintenance job. With partitioning_column (or partitioning_columns) and number_partitions, the table is first hash-partitioned on the series column(s), so that each series lives in one partition and per-series work runs partition-wise over parallel workers.';
COMMENT ON VIEW tidewatch.hypertables IS 'Hypertables with their time column, chunk interval, number of chunks, covered range, size, row estimate, retention and space partitioning (partitioning_columns, number_partitions).';
COMMENT ON VIEW tidewatch.chunks IS 'Chunks (and default partitions) of every hypertable with their range, size, row estimate and, with space partitioning, the hash partition they belong to.';
COMMENT ON FUNCTION tidewatch._partitions(regclass) IS 'Internal: chunks and default partitions of a hypertable (across its hash partitions) with their parsed range and range-partitioned parent.';
COMMENT ON FUNCTION tidewatch._citus_distribution_column(regclass) IS 'Internal: the distribution column of a Citus distributed table, or NULL (also without Citus).';
COMMENT ON FUNCTION tidewatch._range_parents(regclass) IS 'Internal: the range-partitioned tables of a hypertable: itself, or its hash partitions with space partitioning.';
COMMENT ON FUNCTION tidewatch._space_columns(regclass, name, name, integer, name[]) IS 'Internal: checks the space-partitioning arguments of create_hypertable and returns the columns.';
COMMENT ON FUNCTION tidewatch._ensure_range_chunk(regclass, regclass, timestamptz) IS 'Internal: creates the chunk for a timestamp in one range-partitioned table of a hypertable, moving its rows out of that table''s default partition.';
COMMENT ON FUNCTION tidewatch._ensure_chunk(regclass, timestamptz) IS 'Internal: creates the chunk for a timestamp (in every hash partition), moving its rows out of the default partitions.';
COMMENT ON FUNCTION tidewatch._convert_to_partitioned(regclass, name, interval, name[], integer) IS 'Internal: swaps a plain table for a partitioned one with the same rows, indexes, constraints, grants and comments.';

-- Model quality aggregates with a bytea state (an expanded object in memory), so that Citus runs
-- them partially on its workers (it refuses internal states); no serialize/deserialize functions.
-- A user view or function that uses them makes the update fail with PostgreSQL's dependency
-- error (nothing is lost): drop it, update, create it again.
DROP AGGREGATE tidewatch.regression_quality(float8, float8);
DROP AGGREGATE tidewatch.classification_quality(text, text);
DROP FUNCTION tidewatch._regression_quality_step(internal, float8, float8);
DROP FUNCTION tidewatch._regression_quality_combine(internal, internal);
DROP FUNCTION tidewatch._regression_quality_serialize(internal);
DROP FUNCTION tidewatch._regression_quality_deserialize(bytea, internal);
DROP FUNCTION tidewatch._regression_quality_final(internal);
DROP FUNCTION tidewatch._classification_quality_step(internal, text, text);
DROP FUNCTION tidewatch._classification_quality_combine(internal, internal);
DROP FUNCTION tidewatch._classification_quality_serialize(internal);
DROP FUNCTION tidewatch._classification_quality_deserialize(bytea, internal);
DROP FUNCTION tidewatch._classification_quality_final(internal);
CREATE FUNCTION tidewatch._regression_quality_step(bytea, float8, float8) RETURNS bytea
    AS 'MODULE_PATHNAME', 'tidewatch_regression_quality_step' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION tidewatch._regression_quality_combine(bytea, bytea) RETURNS bytea
    AS 'MODULE_PATHNAME', 'tidewatch_regression_quality_combine' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION tidewatch._regression_quality_final(bytea) RETURNS tidewatch.regression_metrics
    AS 'MODULE_PATHNAME', 'tidewatch_regression_quality_final' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION tidewatch._classification_quality_step(bytea, text, text) RETURNS bytea
    AS 'MODULE_PATHNAME', 'tidewatch_classification_quality_step' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION tidewatch._classification_quality_combine(bytea, bytea) RETURNS bytea
    AS 'MODULE_PATHNAME', 'tidewatch_classification_quality_combine' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION tidewatch._classification_quality_final(bytea) RETURNS tidewatch.classification_metrics
    AS 'MODULE_PATHNAME', 'tidewatch_classification_quality_final' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE AGGREGATE tidewatch.regression_quality(prediction float8, target float8) (
    SFUNC = tidewatch._regression_quality_step, STYPE = bytea,
    COMBINEFUNC = tidewatch._regression_quality_combine,
    FINALFUNC = tidewatch._regression_quality_final,
    PARALLEL = SAFE);
CREATE AGGREGATE tidewatch.classification_quality(prediction text, target text) (
    SFUNC = tidewatch._classification_quality_step, STYPE = bytea,
    COMBINEFUNC = tidewatch._classification_quality_combine,
    FINALFUNC = tidewatch._classification_quality_final,
    PARALLEL = SAFE);
COMMENT ON AGGREGATE tidewatch.regression_quality(float8, float8) IS
'Regression quality of predictions against targets: n, MAE, RMSE, MAPE (percent, rows with target 0 skipped), R² and mean error (prediction − target). Rows with a NULL or non-finite value are skipped; parallel-safe, combines across workers.';
COMMENT ON AGGREGATE tidewatch.classification_quality(text, text) IS
'Classification quality of predicted against true labels: n, accuracy, macro precision/recall/F1 (0 for a class never predicted), per-class metrics and the confusion matrix {target: {prediction: count}} as jsonb. Rows with a NULL label are skipped; parallel-safe.';

-- Space partitioning: detect_anomalies, train_detector (through _train_rows, whose RETURN QUERY
-- may use parallel workers) and peer_outliers aggregate partition-wise over the hash partitions
-- of a hypertable with space partitioning (tidewatch._partitionwise).
CREATE FUNCTION tidewatch."_cpu_count"() RETURNS integer
STRICT PARALLEL SAFE
LANGUAGE c
AS 'MODULE_PATHNAME', '_cpu_count_wrapper';
CREATE FUNCTION tidewatch._partitionwise(relation regclass)
RETURNS text[]
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    pw text := current_setting('enable_partitionwise_aggregate');
    lead text := current_setting('parallel_leader_participation');
    prev text[] := ARRAY[NULL, NULL]::text[];
BEGIN
    IF NOT EXISTS (SELECT 1 FROM tidewatch.hypertable h
                   WHERE h.relid = relation AND h.number_partitions IS NOT NULL) THEN
        RETURN NULL;
    END IF;
    IF pw <> 'on' THEN
        PERFORM set_config('enable_partitionwise_aggregate', 'on', true);
        prev[1] := pw;
    END IF;
    -- Each worker then scores whole hash partitions: large units of work. When the workers
    -- already take every CPU, a leader that takes a partition too finishes last; it only gathers
    -- instead (benches/RESULTS.md: 2 workers on 2 CPUs, detect_anomalies 2.23 -> 1.84 times the
    -- scan). With a CPU to spare it stays one more worker.
    IF lead = 'on' AND current_setting('max_parallel_workers_per_gather')::int + 1 > tidewatch._cpu_count() THEN
        PERFORM set_config('parallel_leader_participation', 'off', true);
        prev[2] := lead;
    END IF;
    RETURN prev;
END
$$;

-- Put back what tidewatch._partitionwise changed (its result; NULL: nothing).
CREATE FUNCTION tidewatch._partitionwise_end(prev text[])
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF prev[1] IS NOT NULL THEN
        PERFORM set_config('enable_partitionwise_aggregate', prev[1], true);
    END IF;
    IF prev[2] IS NOT NULL THEN
        PERFORM set_config('parallel_leader_participation', prev[2], true);
    END IF;
END
$$;
-- The WHERE condition of a [start, finish) window on column tcol, with start and finish bound as
-- $3 and $4 of the caller's EXECUTE ('true' for an open window); 22023 when finish < start.
CREATE FUNCTION tidewatch._time_window(tcol name, start timestamptz, finish timestamptz)
RETURNS text
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    cond text := 'true';
BEGIN
    IF start IS NOT NULL AND finish IS NOT NULL AND finish < start THEN
        RAISE EXCEPTION 'finish (%) is before start (%)', finish, start
            USING ERRCODE = '22023', HINT = 'Swap start and finish.';
    END IF;
    IF start IS NOT NULL THEN cond := cond || format(' AND %I >= $3', tcol); END IF;
    IF finish IS NOT NULL THEN cond := cond || format(' AND %I < $4', tcol); END IF;
    RETURN cond;
END
$$;
COMMENT ON FUNCTION tidewatch._time_window(name, timestamptz, timestamptz) IS
'Internal: the WHERE condition of a [start, finish) window on a time column, with start and finish bound as $3 and $4 (detect_anomalies, detect_device_anomalies); 22023 when finish is before start.';

CREATE OR REPLACE FUNCTION tidewatch.detect_anomalies(
    relation regclass,
    value_column name,
    series_columns name[] DEFAULT '{}',
    time_column name DEFAULT NULL,
    start timestamptz DEFAULT NULL,
    finish timestamptz DEFAULT NULL,
    method text DEFAULT 'auto',
    params jsonb DEFAULT '{}',
    anomalies_only boolean DEFAULT false)
RETURNS TABLE (series jsonb, ts timestamptz, value float8, expected float8, lower float8,
               upper float8, score float8, is_anomaly boolean)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    tcol name;
    label text;
    grp text;
    cond text;
    prev text[];
    agg text;
BEGIN
    PERFORM tidewatch._anomaly_check(method, params);
    label := tidewatch._series_columns(relation, value_column, series_columns);
    tcol := tidewatch._time_column(relation, time_column);
    cond := tidewatch._time_window(tcol, start, finish);
    prev := tidewatch._partitionwise(relation);
    -- With anomalies_only, an aggregate whose result holds only the flagged points (a fixed name,
    -- not user input): no bytes written and read back for the points that are dropped.
    agg := CASE WHEN coalesce(anomalies_only, false) THEN 'tidewatch._anomaly_agg_flagged'
                ELSE 'tidewatch.anomaly_agg' END;
    IF cardinality(coalesce(series_columns, '{}')) = 0 THEN
        RETURN QUERY EXECUTE format(
            'SELECT ''{}''::jsonb, p.ts, p.value, p.expected, p.lower, p.upper, p.score, p.is_anomaly FROM (SELECT %s(%I::timestamptz, %I::float8, $1, $2) AS b'
            ' FROM %s WHERE %s) g CROSS JOIN LATERAL tidewatch.anomaly_points(g.b, $5) p',
            agg, tcol, value_column, relation, cond)
            USING method, params, start, finish, coalesce(anomalies_only, false);
    ELSE
        grp := (SELECT string_agg(format('%I', s), ', ') FROM unnest(series_columns) s);
        RETURN QUERY EXECUTE format(
            'SELECT g.series, p.ts, p.value, p.expected, p.lower, p.upper, p.score, p.is_anomaly'
            ' FROM (SELECT %s AS series, %s(%I::timestamptz, %I::float8, $1, $2) AS b'
            ' FROM %s WHERE %s GROUP BY %s) g CROSS JOIN LATERAL tidewatch.anomaly_points(g.b, $5) p',
            label, agg, tcol, value_column, relation, cond, grp)
            USING method, params, start, finish, coalesce(anomalies_only, false);
    END IF;
    PERFORM tidewatch._partitionwise_end(prev);
END
$$;
CREATE FUNCTION tidewatch._train_rows(relation regclass, value_column name, series_columns name[], tcol name,
                                      method text, params jsonb, lo timestamptz, fin timestamptz)
RETURNS TABLE (series jsonb, t tidewatch._trained)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    prev text[] := tidewatch._partitionwise(relation);
BEGIN
    RETURN QUERY EXECUTE format(
        'SELECT %s AS series, tidewatch._train_agg(%I::timestamptz, %I::float8, $1, $2) AS t'
        ' FROM %s WHERE %I > $3 AND %I <= $4 GROUP BY %s',
        tidewatch._series_columns(relation, value_column, series_columns), tcol, value_column, relation, tcol, tcol,
        CASE WHEN cardinality(coalesce(series_columns, '{}')) = 0 THEN 'true'
             ELSE (SELECT string_agg(format('%I', s), ', ') FROM unnest(series_columns) s) END)
        USING method, params, lo, fin;
    PERFORM tidewatch._partitionwise_end(prev);
END
$$;
-- The end of a training window (train_detector, train_device_detector): the newest row of
-- relation not after now(), after checking the model name and the interval.
CREATE FUNCTION tidewatch._train_end(model_name text, relation regclass, tcol name, train_interval interval)
RETURNS timestamptz
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    fin timestamptz;
BEGIN
    IF model_name IS NULL OR model_name = '' THEN
        RAISE EXCEPTION 'model name must not be empty' USING ERRCODE = '22023';
    END IF;
    IF train_interval IS NULL OR train_interval <= interval '0' THEN
        RAISE EXCEPTION 'train_interval must be positive, got %', train_interval
            USING ERRCODE = '22023', HINT = 'Use an interval such as ''30 days''.';
    END IF;
    EXECUTE format('SELECT max(%I)::timestamptz FROM %s WHERE %I <= now()', tcol, relation, tcol) INTO fin;
    IF fin IS NULL THEN
        RAISE EXCEPTION 'no rows to train model "%" on: "%" has no rows up to now', model_name, relation
            USING ERRCODE = 'P0002', HINT = 'Load data first, or check the table name.';
    END IF;
    RETURN fin;
END
$$;
COMMENT ON FUNCTION tidewatch._train_end(text, regclass, name, interval) IS
'Internal: checks a model name and training interval and returns the newest time of a table not after now() (train_detector, train_device_detector).';

-- Store (insert or replace) one trained model row.
CREATE FUNCTION tidewatch._store_model(model_name text, labels jsonb, method text, params jsonb,
                                       relation regclass, value_column name, series_columns name[],
                                       lo timestamptz, fin timestamptz, t tidewatch._trained)
RETURNS void
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    INSERT INTO tidewatch.models AS m (name, series, method, params, relation, value_column, series_columns,
                                       trained_at, train_start, train_end, n, skipped, state, quality)
    VALUES (model_name, labels, method, coalesce(params, '{}'), relation, value_column, coalesce(series_columns, '{}'),
            now(), lo, fin, (t).n, (t).skipped, (t).state,
            jsonb_build_object('anomaly_rate', (t).anomaly_rate,
                               'first_seen', (t).first_seen,
                               'last_seen', (t).last_seen))
    ON CONFLICT ON CONSTRAINT models_name_series_key DO UPDATE SET
        method = excluded.method, params = excluded.params, relation = excluded.relation,
        value_column = excluded.value_column, series_columns = excluded.series_columns,
        trained_at = excluded.trained_at, train_start = excluded.train_start, train_end = excluded.train_end,
        n = excluded.n, skipped = excluded.skipped, state = excluded.state, quality = excluded.quality;
END;
COMMENT ON FUNCTION tidewatch._store_model(text, jsonb, text, jsonb, regclass, name, name[], timestamptz, timestamptz, tidewatch._trained) IS
'Internal: inserts or replaces one trained model row of tidewatch.models.';

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
    fin timestamptz;
    lo timestamptz;
    r record;
    trained integer := 0;
BEGIN
    PERFORM tidewatch._anomaly_check(method, params);
    PERFORM tidewatch._series_columns(relation, value_column, series_columns);
    tcol := tidewatch._time_column(relation, NULL::name);
    fin := tidewatch._train_end(name, relation, tcol, train_interval);
    lo := fin - train_interval;
    FOR r IN SELECT * FROM tidewatch._train_rows(relation, value_column, series_columns, tcol, method, params, lo, fin)
    LOOP
        PERFORM tidewatch._store_model(name, r.series, method, params, relation, value_column, series_columns,
                                       lo, fin, r.t);
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
CREATE OR REPLACE FUNCTION tidewatch.peer_outliers(
    relation regclass,
    value_column name,
    series_columns name[],
    bucket interval,
    start timestamptz,
    finish timestamptz,
    method text DEFAULT 'mad',
    sensitivity float8 DEFAULT 0.9)
RETURNS TABLE (series jsonb, bucket_start timestamptz, value float8, score float8, is_outlier boolean)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    label text;
    tcol name;
    prev text[];
BEGIN
    IF method IS NULL OR method NOT IN ('mad', 'dbscan') THEN
        RAISE EXCEPTION 'unknown peer outlier method "%"', method
            USING ERRCODE = '22023', HINT = 'valid methods: mad, dbscan';
    END IF;
    IF sensitivity IS NULL OR NOT (sensitivity > 0 AND sensitivity < 1) THEN
        RAISE EXCEPTION 'sensitivity must be in (0, 1), got %', sensitivity
            USING ERRCODE = '22023', HINT = 'Higher flags more; 0.9 is the default.';
    END IF;
    IF bucket IS NULL OR bucket <= interval '0' THEN
        RAISE EXCEPTION 'bucket must be a positive interval, got %', bucket USING ERRCODE = '22023';
    END IF;
    IF start IS NULL OR finish IS NULL OR finish <= start THEN
        RAISE EXCEPTION 'start and finish must be given, with start before finish' USING ERRCODE = '22023';
    END IF;
    IF cardinality(coalesce(series_columns, '{}')) = 0 THEN
        RAISE EXCEPTION 'peer_outliers needs series_columns to tell the series apart' USING ERRCODE = '22023',
            HINT = 'Pass e.g. series_columns => ''{satellite}''.';
    END IF;
    label := tidewatch._series_columns(relation, value_column, series_columns);
    tcol := tidewatch._time_column(relation, NULL::name);
    -- Grouped by the series columns themselves (not the jsonb label), so that with space
    -- partitioning the buckets of each hash partition are computed partition-wise.
    prev := tidewatch._partitionwise(relation);
    RETURN QUERY EXECUTE format(
        'WITH b AS (SELECT %s AS series, tidewatch.time_bucket($1, %I::timestamptz) AS bucket, avg(%I)::float8 AS v'
        '           FROM %s WHERE %I >= $2 AND %I < $3 GROUP BY %s, 2),'
        ' s AS (SELECT x.series, (row_number() OVER (ORDER BY x.series) - 1)::int AS si FROM (SELECT DISTINCT b.series FROM b) x),'
        ' k AS (SELECT x.bucket, (row_number() OVER (ORDER BY x.bucket) - 1)::int AS bi FROM (SELECT DISTINCT b.bucket FROM b) x),'
        ' grid AS (SELECT s.series, s.si, k.bucket, k.bi, b.v FROM s CROSS JOIN k LEFT JOIN b USING (series, bucket))'
        ' SELECT g.series, g.bucket, g.v, p.score, p.is_outlier'
        ' FROM (SELECT (SELECT count(*) FROM s)::int AS ns, (SELECT count(*) FROM k)::int AS nb,'
        '              array_agg(grid.v ORDER BY grid.si, grid.bi) AS vals FROM grid) a'
        ' CROSS JOIN LATERAL tidewatch._peer_outliers(a.ns, a.nb, a.vals, $4, $5) p'
        ' JOIN grid g ON g.si = p.series_idx AND g.bi = p.bucket_idx'
        ' ORDER BY g.bucket, g.series',
        label, tcol, value_column, relation, tcol, tcol,
        (SELECT string_agg(format('%I', c), ', ') FROM unnest(series_columns) c))
        USING bucket, start, finish, method, sensitivity;
    PERFORM tidewatch._partitionwise_end(prev);
END
$$;
COMMENT ON FUNCTION tidewatch._partitionwise(regclass) IS 'Internal: for a hypertable with space partitioning, turns on partition-wise aggregation and, when the parallel workers already take every CPU, keeps the leader from taking partitions; returns the settings to put back (tidewatch._partitionwise_end).';
COMMENT ON FUNCTION tidewatch._partitionwise_end(text[]) IS 'Internal: puts back the settings tidewatch._partitionwise changed.';
COMMENT ON FUNCTION tidewatch._cpu_count() IS 'Internal: the number of CPUs this server may use (affinity and cgroup quotas counted); tidewatch._partitionwise reads it.';
COMMENT ON FUNCTION tidewatch._train_rows(regclass, name, name[], name, text, jsonb, timestamptz, timestamptz) IS
'Internal: the trained state of every series of a window, as train_detector stores it (a function of its own so that the scan may use parallel workers).';
-- The final functions of anomaly_agg and _train_agg score (train) a whole series: their cost tells
-- the planner so, and with space partitioning it lets parallel workers finalize whole partitions.
ALTER FUNCTION tidewatch._anomaly_agg_final(internal) COST 100000;
ALTER FUNCTION tidewatch._train_final(internal) COST 100000;
-- anomaly_agg with only the flagged points in its result (detect_anomalies' anomalies_only).
CREATE FUNCTION tidewatch."_anomaly_flagged_final"(
	"state" internal
) RETURNS bytea
IMMUTABLE PARALLEL SAFE
LANGUAGE c
AS 'MODULE_PATHNAME', '_anomaly_flagged_final_wrapper';
CREATE AGGREGATE tidewatch._anomaly_agg_flagged(ts timestamptz, value float8, method text, params jsonb) (
    SFUNC = tidewatch._anomaly_agg_step, STYPE = internal, COMBINEFUNC = tidewatch._anomaly_agg_combine,
    SERIALFUNC = tidewatch._anomaly_agg_serialize, DESERIALFUNC = tidewatch._anomaly_agg_deserialize,
    FINALFUNC = tidewatch._anomaly_flagged_final, PARALLEL = SAFE);
ALTER FUNCTION tidewatch._anomaly_flagged_final(internal) COST 100000;
COMMENT ON AGGREGATE tidewatch._anomaly_agg_flagged(timestamptz, float8, text, jsonb) IS
'Internal: anomaly_agg whose result holds only the flagged points (detect_anomalies with anomalies_only => true).';

-- Monitors on Citus tables: sync refused (0A000 with a hint); async on a hash-distributed table runs
-- on every node (a decoder per node scores its shards; the coordinator pulls the episodes).
CREATE FUNCTION tidewatch._refuse_citus_table(relation regclass, what text)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    citus boolean := false;
BEGIN
    IF to_regclass('pg_catalog.pg_dist_partition') IS NOT NULL THEN
        EXECUTE 'SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_dist_partition WHERE logicalrelid = $1)'
            INTO citus USING relation;
    END IF;
    IF citus THEN
        RAISE EXCEPTION '% on "%" is not supported: it is a Citus distributed table', what, relation
            USING ERRCODE = '0A000',
                  DETAIL = 'Its rows are written on the Citus workers, where a trigger is not allowed; an async '
                           'monitor needs a hash-distributed table, whose series each live in one shard.',
                  HINT = CASE WHEN what = 'a sync monitor'
                              THEN 'Use mode => ''async'' with the distribution column among the series columns: '
                                   'a decoder on each node scores its shards (see docs/scale-out.md).'
                              ELSE 'Score it on a schedule with tidewatch.detect_anomalies over the last interval '
                                   '(a job), or monitor a local table (see docs/scale-out.md).' END;
    END IF;
END
$$;
CREATE FUNCTION tidewatch._citus_coordinator()
RETURNS boolean
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    c boolean;
BEGIN
    IF to_regprocedure('pg_catalog.citus_is_coordinator()') IS NULL THEN
        RETURN false;
    END IF;
    EXECUTE 'SELECT pg_catalog.citus_is_coordinator()' INTO c;
    RETURN coalesce(c, false);
END
$$;
CREATE FUNCTION tidewatch._citus_propagate(monitor text, action text, strict boolean)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    failed text;
BEGIN
    IF action NOT IN ('create', 'drop') THEN
        RAISE EXCEPTION 'unknown action "%"', action USING ERRCODE = '22023', HINT = 'create or drop';
    END IF;
    EXECUTE 'SELECT string_agg(format(''%s:%s: %s'', w.nodename, w.nodeport, w.result), ''; '' ORDER BY w.nodeport)
             FROM pg_catalog.run_command_on_workers($1) w WHERE NOT w.success'
        INTO failed
        USING CASE action WHEN 'create' THEN tidewatch._monitor_replica_sql(monitor)
                          ELSE format('SELECT tidewatch.unmonitor(%L, true)', monitor) END;
    IF failed IS NOT NULL AND strict THEN
        RAISE EXCEPTION '% monitor "%" failed on a Citus worker', CASE action WHEN 'create' THEN 'creating' ELSE 'dropping' END,
                        monitor
            USING ERRCODE = '55000', DETAIL = failed,
                  HINT = 'Check that every worker is up and has the same tidewatch version, then try again.';
    END IF;
END
$$;
-- On a Citus coordinator: how far tidewatch.pull_episodes got with each worker (node group) for
-- each async monitor on a distributed table.
CREATE TABLE tidewatch.monitor_pulls (
    monitor    text        NOT NULL REFERENCES tidewatch.monitors (name) ON DELETE CASCADE,
    node_group integer     NOT NULL,
    snapshot   pg_snapshot,
    pulled_at  timestamptz,
    episodes   bigint      NOT NULL DEFAULT 0,
    last_error text,
    PRIMARY KEY (monitor, node_group)
);
COMMENT ON TABLE tidewatch.monitor_pulls IS 'On a Citus coordinator: per async monitor on a distributed table and worker group, the snapshot of the last pull of its episodes (tidewatch.pull_episodes), when, how many episode versions were copied, and the last error.';

GRANT SELECT ON tidewatch.monitor_pulls TO PUBLIC;
GRANT INSERT, UPDATE ON tidewatch.monitor_pulls TO PUBLIC;
CREATE POLICY monitor_pulls_read ON tidewatch.monitor_pulls FOR SELECT USING (true);
CREATE POLICY monitor_pulls_insert ON tidewatch.monitor_pulls FOR INSERT WITH CHECK (tidewatch._may_write(monitor));
CREATE POLICY monitor_pulls_update ON tidewatch.monitor_pulls FOR UPDATE USING (tidewatch._may_write(monitor));
ALTER TABLE tidewatch.monitor_pulls ENABLE ROW LEVEL SECURITY;
CREATE POLICY monitor_pulls_source ON tidewatch.monitor_pulls AS RESTRICTIVE FOR SELECT
    USING (monitor IN (SELECT m.name FROM tidewatch.monitors m));
-- monitor_lag reports the pulls of monitors on distributed tables.
CREATE OR REPLACE FUNCTION tidewatch.monitor_lag()
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
COMMENT ON FUNCTION tidewatch.monitor_lag() IS
'For each async monitor (kind anomaly or log): the commit position its decoder has scored up to, how many bytes of write-ahead log it is behind, when it last got rows and its last error; for a monitor of a Citus distributed table, on the coordinator: when its episodes were last pulled from every worker and the workers'' pull errors.';

CREATE FUNCTION tidewatch._monitor_create(
    name text, relation regclass, value_column name, series_columns name[], method text, params jsonb,
    time_column name, check_interval interval, mode text, value_columns name[])
RETURNS integer
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    tcol name;
    job integer;
    lsn pg_lsn;
    sysid numeric;
    bad text;
    dcol name;
    msg text;
BEGIN
    PERFORM tidewatch._new_name('monitor', name, EXISTS (SELECT 1 FROM tidewatch.monitors m WHERE m.name = _monitor_create.name),
                                'tidewatch.unmonitor()');
    IF mode IS NULL OR mode NOT IN ('sync', 'async') THEN
        RAISE EXCEPTION 'unknown monitor mode "%"', mode
            USING ERRCODE = '22023',
                  HINT = 'Valid modes: sync (a statement trigger; episodes visible at commit), '
                         'async (a decoder reads committed rows from the write-ahead log; COPY at full speed).';
    END IF;
    PERFORM tidewatch._anomaly_check(method, params);
    PERFORM tidewatch._series_columns(relation, value_column, series_columns);
    IF value_columns IS NOT NULL THEN
        PERFORM tidewatch._device_columns(relation, value_columns, series_columns);
    END IF;
    dcol := tidewatch._citus_distribution_column(relation);
    IF mode = 'sync' OR dcol IS NULL THEN
        PERFORM tidewatch._refuse_citus_table(relation, CASE mode WHEN 'sync' THEN 'a sync monitor' ELSE 'an async monitor' END);
    ELSIF NOT dcol = ANY (coalesce(series_columns, '{}')) THEN
        RAISE EXCEPTION 'an async monitor on the distributed table "%" needs its distribution column "%" among the series columns',
                        relation, dcol
            USING ERRCODE = '0A000',
                  DETAIL = 'Each Citus node scores the rows of the shards placed on it: a series must live in one shard.',
                  HINT = format('Add %I to series_columns.', dcol);
    END IF;
    tcol := tidewatch._time_column(relation, time_column);
    IF mode = 'async' THEN
        SELECT string_agg(format('%I %s', a.attname, format_type(a.atttypid, a.atttypmod)), ', ') INTO bad
            FROM pg_attribute a
            WHERE a.attrelid = relation AND a.attname = tcol
              AND a.atttypid NOT IN ('timestamptz'::regtype, 'timestamp'::regtype, 'date'::regtype);
        IF bad IS NOT NULL THEN
            RAISE EXCEPTION 'async monitors need a timestamptz, timestamp or date time column, not %', bad
                USING ERRCODE = '42804', HINT = 'Use mode => ''sync'', which casts the time column to timestamptz.';
        END IF;
        PERFORM tidewatch._require_async();
        -- Before any write of this transaction: creating the slot needs that.
        SELECT x.lsn, x.wal_system INTO lsn, sysid FROM tidewatch._monitor_slot() x;
    END IF;
    job := tidewatch.add_job('tidewatch.policy_monitor', check_interval, jsonb_build_object('monitor', name),
                             application_name => format('Monitor %s', name));
    INSERT INTO tidewatch.monitors (name, relid, value_column, series_columns, time_column, method, params, job_id,
                                    mode, created_lsn, wal_system, value_columns)
        VALUES (name, relation, value_column, coalesce(series_columns, '{}'), tcol, coalesce(method, 'auto'),
                coalesce(params, '{}'), job, mode, lsn, sysid, value_columns);
    IF mode = 'sync' THEN
        EXECUTE format('CREATE TRIGGER %I AFTER INSERT ON %s REFERENCING NEW TABLE AS tidewatch_new_rows'
                       ' FOR EACH STATEMENT EXECUTE FUNCTION tidewatch._monitor_trigger(%L)',
                       left('tidewatch_monitor_' || name, 63), relation, name);
    ELSIF dcol IS NOT NULL AND tidewatch._citus_coordinator() THEN
        BEGIN
            PERFORM tidewatch._citus_propagate(name, 'create', true);
        EXCEPTION WHEN OTHERS THEN
            -- The workers commit on their own: take back what some of them created.
            GET STACKED DIAGNOSTICS msg = MESSAGE_TEXT, bad = PG_EXCEPTION_DETAIL;
            PERFORM tidewatch._citus_propagate(name, 'drop', false);
            RAISE EXCEPTION '%', msg
                USING ERRCODE = '55000', DETAIL = bad,
                      HINT = 'Every worker needs what an async monitor needs on one node (docs/scale-out.md): '
                             'wal_level = logical, tidewatch preloaded and its scheduler in this database.';
        END;
    END IF;
    RETURN job;
END
$$;
CREATE OR REPLACE FUNCTION tidewatch.monitor(
    name text,
    relation regclass,
    value_column name,
    series_columns name[] DEFAULT '{}',
    method text DEFAULT 'auto',
    params jsonb DEFAULT '{}',
    time_column name DEFAULT NULL,
    check_interval interval DEFAULT interval '1 minute',
    mode text DEFAULT 'sync')
RETURNS integer
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
RETURN tidewatch._monitor_create(name, relation, value_column, series_columns, method, params, time_column,
                                 check_interval, mode, NULL);
CREATE OR REPLACE FUNCTION tidewatch.unmonitor(name text, if_exists boolean DEFAULT false)
RETURNS boolean
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    m tidewatch.monitors;
BEGIN
    SELECT * INTO m FROM tidewatch.monitors x WHERE x.name = unmonitor.name;
    IF NOT FOUND THEN
        RETURN tidewatch._not_found('monitor', name, if_exists, 'tidewatch.monitors');
    END IF;
    PERFORM tidewatch._require_owner('monitor', m.name, m.owner);
    IF m.mode = 'sync' THEN
        -- (A table dropped before 0.2.0 left its monitors behind: no trigger to drop then.)
        IF EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = m.relid) THEN
            EXECUTE format('DROP TRIGGER IF EXISTS %I ON %s', left('tidewatch_monitor_' || name, 63), m.relid);
        END IF;
    ELSIF tidewatch._citus_distribution_column(m.relid) IS NOT NULL AND tidewatch._citus_coordinator() THEN
        PERFORM tidewatch._citus_propagate(name, 'drop', true);
    END IF;
    IF m.job_id IS NOT NULL THEN
        PERFORM tidewatch.delete_job(m.job_id);
    END IF;
    DELETE FROM tidewatch.monitors x WHERE x.name = m.name;
    RETURN true;
END
$$;
CREATE OR REPLACE PROCEDURE tidewatch.policy_monitor(job_id integer, config jsonb)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    mon text := config ->> 'monitor';
    grace interval := (config ->> 'missing_after')::interval;
    s record;
    ep bigint;
BEGIN
    FOR s IN SELECT * FROM tidewatch.monitor_state ms
             WHERE ms.monitor = mon AND ms.last_ts IS NOT NULL AND ms.missing_episode IS NULL
               AND ms.last_ts < now() - coalesce(grace, greatest(ms.spacing * 5, interval '1 minute'))
             ORDER BY ms.series
             FOR UPDATE SKIP LOCKED
    LOOP
        INSERT INTO tidewatch.anomalies (monitor, series, started_at, ended_at, score, severity, kind, detail)
        VALUES (mon, s.series, s.last_ts + coalesce(s.spacing, interval '0'), NULL, 1, 'warning', 'missing_data',
                jsonb_build_object('last_seen', s.last_ts, 'usual_spacing', s.spacing::text))
        RETURNING id INTO ep;
        UPDATE tidewatch.monitor_state ms SET missing_episode = ep
            WHERE ms.monitor = mon AND ms.series = s.series;
    END LOOP;
    IF EXISTS (SELECT 1 FROM tidewatch.monitors m WHERE m.name = mon AND m.mode = 'async'
                                                    AND tidewatch._citus_distribution_column(m.relid) IS NOT NULL)
       AND tidewatch._citus_coordinator() THEN
        PERFORM tidewatch.pull_episodes(mon);
    END IF;
END
$$;
CREATE FUNCTION tidewatch._monitor_episodes(monitor text, since pg_snapshot)
RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
RETURN (
    SELECT jsonb_build_object('snapshot', s.snap::text,
                              'monitor', EXISTS (SELECT 1 FROM tidewatch.monitors m WHERE m.name = _monitor_episodes.monitor),
                              'episodes', coalesce((
        SELECT jsonb_agg(to_jsonb(a) ORDER BY a.id)
        FROM tidewatch.anomalies a,
             -- xmin with its epoch: the 64-bit id nearest below the snapshot's xmax.
             LATERAL (SELECT (s.top >> 32 << 32) + a.xmin::text::bigint AS x) f,
             LATERAL (SELECT CASE WHEN f.x >= s.top THEN f.x - 4294967296 ELSE f.x END AS x) g
        WHERE a.monitor = _monitor_episodes.monitor
          AND (since IS NULL OR NOT pg_visible_in_snapshot(g.x::text::xid8, since))), '[]'::jsonb))::text
    FROM (SELECT pg_current_snapshot() AS snap, pg_snapshot_xmax(pg_current_snapshot())::text::bigint AS top) s);
CREATE FUNCTION tidewatch.pull_episodes(monitor text DEFAULT NULL)
RETURNS integer
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    m record;
    nd record;
    r record;
    e jsonb;
    res jsonb;
    a tidewatch.anomalies;
    names text[];
    ports integer[];
    cmds text[];
    ok boolean;
    msg text;
    changed integer := 0;
BEGIN
    IF NOT tidewatch._citus_coordinator() THEN
        RETURN 0;
    END IF;
    IF monitor IS NOT NULL AND NOT tidewatch._may_write(monitor)
       AND EXISTS (SELECT 1 FROM tidewatch.monitors x WHERE x.name = monitor) THEN
        RAISE EXCEPTION 'permission denied for monitor "%"', monitor
            USING ERRCODE = '42501',
                  HINT = 'Its owner (and the owner''s members) may pull its episodes; its job does every check_interval.';
    END IF;
    -- As the caller: the workers are asked as this role, and only its own monitors are pulled.
    FOR m IN SELECT x.name FROM tidewatch.monitors x
             WHERE x.mode = 'async' AND (monitor IS NULL OR x.name = monitor) AND tidewatch._may_write(x.name)
               AND tidewatch._citus_distribution_column(x.relid) IS NOT NULL
             ORDER BY x.name
    LOOP
        -- One pull of a monitor at a time (its job and a user's call).
        PERFORM pg_advisory_xact_lock(hashtext('tidewatch pull ' || m.name));
        names := '{}'; ports := '{}'; cmds := '{}';
        FOR nd IN EXECUTE 'SELECT n.groupid, n.nodename, n.nodeport FROM pg_catalog.pg_dist_node n
                           WHERE n.isactive AND n.noderole = ''primary''
                             AND n.groupid <> (SELECT groupid FROM pg_catalog.pg_dist_local_group)
                           ORDER BY n.groupid'
        LOOP
            names := names || nd.nodename::text;
            ports := ports || nd.nodeport;
            cmds := cmds || format('SELECT tidewatch._monitor_episodes(%L, %L)', m.name,
                                   (SELECT p.snapshot FROM tidewatch.monitor_pulls p
                                    WHERE p.monitor = m.name AND p.node_group = nd.groupid));
        END LOOP;
        FOR r IN EXECUTE 'SELECT w.node_name, w.node_port, w.success, w.result, n.groupid
                          FROM pg_catalog.master_run_on_worker($1, $2, $3, true) w
                          JOIN pg_catalog.pg_dist_node n ON n.nodename = w.node_name AND n.nodeport = w.node_port'
                 USING names, ports, cmds
        LOOP
            IF NOT r.success THEN
                RAISE WARNING 'tidewatch monitor "%": could not pull episodes from %:%: %',
                              m.name, r.node_name, r.node_port, r.result;
                INSERT INTO tidewatch.monitor_pulls AS p (monitor, node_group, last_error)
                    VALUES (m.name, r.groupid, format('%s: %s', now(), r.result))
                    ON CONFLICT ON CONSTRAINT monitor_pulls_pkey DO UPDATE SET last_error = excluded.last_error;
                CONTINUE;
            END IF;
            res := r.result::jsonb;
            IF NOT coalesce((res ->> 'monitor')::boolean, true) THEN
                -- A worker added after monitor() was called: create the monitor there (as its
                -- owner), so that the shards moved to it are scored from now on.
                msg := tidewatch._monitor_replica_sql(m.name);
                EXECUTE 'SELECT w.success, w.result FROM pg_catalog.master_run_on_worker($1, $2, $3, false) w'
                    INTO ok, msg USING ARRAY[r.node_name], ARRAY[r.node_port], ARRAY[msg];
                ok := coalesce(ok, false);
                RAISE NOTICE 'tidewatch monitor "%": created on the worker %:% (%)', m.name, r.node_name, r.node_port,
                             CASE WHEN ok THEN 'it had none' ELSE 'failed: ' || msg END;
                IF NOT ok THEN
                    INSERT INTO tidewatch.monitor_pulls AS p (monitor, node_group, last_error)
                        VALUES (m.name, r.groupid, format('%s: could not create the monitor there: %s', now(), msg))
                        ON CONFLICT ON CONSTRAINT monitor_pulls_pkey DO UPDATE SET last_error = excluded.last_error;
                    CONTINUE;
                END IF;
            END IF;
            FOR e IN SELECT x FROM jsonb_array_elements(res -> 'episodes') x LOOP
                a := jsonb_populate_record(NULL::tidewatch.anomalies, e);
                a.detail := coalesce(a.detail, '{}') || jsonb_build_object('node',
                                jsonb_build_object('group', r.groupid, 'id', a.id));
                UPDATE tidewatch.anomalies x SET
                    ended_at = a.ended_at, peak_at = a.peak_at, peak_value = a.peak_value, expected = a.expected,
                    lower = a.lower, upper = a.upper, score = a.score, sigma = a.sigma, severity = a.severity,
                    kind = a.kind, detail = a.detail
                WHERE x.monitor = m.name AND x.started_at = a.started_at
                  AND x.detail -> 'node' = a.detail -> 'node';
                IF NOT FOUND THEN
                    INSERT INTO tidewatch.anomalies (monitor, series, started_at, ended_at, peak_at, peak_value, expected,
                                                     lower, upper, score, sigma, severity, kind, detail)
                    VALUES (m.name, a.series, a.started_at, a.ended_at, a.peak_at, a.peak_value, a.expected, a.lower,
                            a.upper, a.score, a.sigma, a.severity, a.kind, a.detail);
                END IF;
                changed := changed + 1;
            END LOOP;
            INSERT INTO tidewatch.monitor_pulls AS p (monitor, node_group, snapshot, pulled_at, episodes, last_error)
                VALUES (m.name, r.groupid, (res ->> 'snapshot')::pg_snapshot, now(),
                        jsonb_array_length(res -> 'episodes'), NULL)
                ON CONFLICT ON CONSTRAINT monitor_pulls_pkey DO UPDATE
                    SET snapshot = excluded.snapshot, pulled_at = excluded.pulled_at,
                        episodes = p.episodes + excluded.episodes, last_error = NULL;
        END LOOP;
    END LOOP;
    RETURN changed;
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
COMMENT ON FUNCTION tidewatch._refuse_citus_table(regclass, text) IS 'Internal: refuses a monitor on a Citus table where it cannot work (a sync monitor on any, an async one on a table not hash-distributed), saying why.';
COMMENT ON FUNCTION tidewatch._citus_coordinator() IS 'Internal: whether this server is a Citus coordinator (false without Citus).';
COMMENT ON FUNCTION tidewatch._citus_propagate(text, text, boolean) IS 'Internal: creates (create) or drops (drop) a monitor''s copy on every Citus worker; raises an error naming the failed workers when strict.';
COMMENT ON FUNCTION tidewatch.monitor(text, regclass, name, name[], text, jsonb, name, interval, text) IS
'Starts a real-time monitor: every row inserted into relation (INSERT or COPY, any batch size) is scored with its series'' state, and anomalous points open or extend episodes in tidewatch.anomalies. mode sync (default): a statement trigger, episodes visible at commit. mode async: no trigger; the database''s decoder scores committed rows from the write-ahead log (needs wal_level = logical; see tidewatch.monitor_lag); on a Citus distributed table (async only, the distribution column among series_columns) every node''s decoder scores its own shards and the coordinator copies their episodes (tidewatch.pull_episodes). Adds a job that turns silent series into missing_data episodes; returns its id.';
COMMENT ON FUNCTION tidewatch.unmonitor(text, boolean) IS
'Stops a monitor: drops its trigger, its job and its per-series state (on a Citus coordinator, on every worker too for a distributed table). Recorded episodes are kept.';
COMMENT ON PROCEDURE tidewatch.policy_monitor(integer, jsonb) IS
'Job of a monitor: series silent for longer than config.missing_after (default 5 times their usual spacing, at least 1 minute) become missing_data episodes, which end when data resumes. On a Citus coordinator it also pulls the episodes of a monitor on a distributed table from the workers (tidewatch.pull_episodes).';
COMMENT ON FUNCTION tidewatch._monitor_create(text, regclass, name, name[], text, jsonb, name, interval, text, name[]) IS
'Internal: creates a monitor (tidewatch.monitor, tidewatch.monitor_device); on a Citus coordinator an async monitor on a distributed table is created on every worker too.';
COMMENT ON FUNCTION tidewatch._monitor_episodes(text, pg_snapshot) IS
'Internal (a Citus worker''s side of tidewatch.pull_episodes): the episodes of a monitor written by transactions the given snapshot did not see, the current snapshot and whether the monitor exists here, as JSON.';
COMMENT ON FUNCTION tidewatch.pull_episodes(text) IS
'On a Citus coordinator: copies into tidewatch.anomalies the episodes that the workers'' decoders recorded or changed since the last pull, for one async monitor on a distributed table or (NULL) all the caller owns; returns how many were inserted or updated. Copies carry detail.node = {group, id}. A worker without the monitor (added later) gets it. The monitor''s job calls it every check_interval; returns 0 elsewhere.';

-- drift_agg (and the internal _drift_agg, _profile_agg) with a bytea state (an expanded object in
-- memory), so that Citus runs them partially on its workers; the byte form counts categories
-- instead of listing every row's. No serialize/deserialize functions. A user view or function
-- that uses drift_agg makes the update fail with PostgreSQL's dependency error (nothing is lost):
-- drop it, update, create it again.
DROP AGGREGATE tidewatch.drift_agg(float8, boolean);
DROP AGGREGATE tidewatch.drift_agg(float8, boolean, text, float8);
DROP AGGREGATE tidewatch.drift_agg(float8, boolean, text[]);
DROP AGGREGATE tidewatch._drift_agg(float8, boolean, text[], float8[]);
DROP AGGREGATE tidewatch._profile_agg(float8, boolean);
DROP AGGREGATE tidewatch.drift_agg(text, boolean);
DROP AGGREGATE tidewatch.drift_agg(text, boolean, text, float8);
DROP AGGREGATE tidewatch.drift_agg(text, boolean, text[]);
DROP AGGREGATE tidewatch._drift_agg(text, boolean, text[], float8[]);
DROP AGGREGATE tidewatch._profile_agg(text, boolean);
DROP FUNCTION tidewatch._drift_num_step(internal, float8, boolean);
DROP FUNCTION tidewatch._drift_num_step(internal, float8, boolean, text, float8);
DROP FUNCTION tidewatch._drift_num_step(internal, float8, boolean, text[]);
DROP FUNCTION tidewatch._drift_num_step(internal, float8, boolean, text[], float8[]);
DROP FUNCTION tidewatch._drift_num_combine(internal, internal);
DROP FUNCTION tidewatch._drift_num_serialize(internal);
DROP FUNCTION tidewatch._drift_num_deserialize(bytea, internal);
DROP FUNCTION tidewatch._drift_num_final(internal);
DROP FUNCTION tidewatch._drift_num_final_all(internal);
DROP FUNCTION tidewatch._profile_num_final(internal);
DROP FUNCTION tidewatch._drift_cat_step(internal, text, boolean);
DROP FUNCTION tidewatch._drift_cat_step(internal, text, boolean, text, float8);
DROP FUNCTION tidewatch._drift_cat_step(internal, text, boolean, text[]);
DROP FUNCTION tidewatch._drift_cat_step(internal, text, boolean, text[], float8[]);
DROP FUNCTION tidewatch._drift_cat_combine(internal, internal);
DROP FUNCTION tidewatch._drift_cat_serialize(internal);
DROP FUNCTION tidewatch._drift_cat_deserialize(bytea, internal);
DROP FUNCTION tidewatch._drift_cat_final(internal);
DROP FUNCTION tidewatch._drift_cat_final_all(internal);
DROP FUNCTION tidewatch._profile_cat_final(internal);
CREATE FUNCTION tidewatch._drift_num_step(bytea, float8, boolean) RETURNS bytea
    AS 'MODULE_PATHNAME', 'tidewatch_drift_num_step' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION tidewatch._drift_num_step(bytea, float8, boolean, text, float8) RETURNS bytea
    AS 'MODULE_PATHNAME', 'tidewatch_drift_num_step' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION tidewatch._drift_num_step(bytea, float8, boolean, text[]) RETURNS bytea
    AS 'MODULE_PATHNAME', 'tidewatch_drift_num_step' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION tidewatch._drift_num_step(bytea, float8, boolean, text[], float8[]) RETURNS bytea
    AS 'MODULE_PATHNAME', 'tidewatch_drift_num_step' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION tidewatch._drift_cat_step(bytea, text, boolean) RETURNS bytea
    AS 'MODULE_PATHNAME', 'tidewatch_drift_cat_step' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION tidewatch._drift_cat_step(bytea, text, boolean, text, float8) RETURNS bytea
    AS 'MODULE_PATHNAME', 'tidewatch_drift_cat_step' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION tidewatch._drift_cat_step(bytea, text, boolean, text[]) RETURNS bytea
    AS 'MODULE_PATHNAME', 'tidewatch_drift_cat_step' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION tidewatch._drift_cat_step(bytea, text, boolean, text[], float8[]) RETURNS bytea
    AS 'MODULE_PATHNAME', 'tidewatch_drift_cat_step' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION tidewatch._drift_num_combine(bytea, bytea) RETURNS bytea
    AS 'MODULE_PATHNAME', 'tidewatch_drift_num_combine' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION tidewatch._drift_num_final(bytea) RETURNS tidewatch.drift_result
    AS 'MODULE_PATHNAME', 'tidewatch_drift_num_final' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION tidewatch._drift_num_final_all(bytea) RETURNS tidewatch.drift_result[]
    AS 'MODULE_PATHNAME', 'tidewatch_drift_num_final_all' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION tidewatch._drift_cat_combine(bytea, bytea) RETURNS bytea
    AS 'MODULE_PATHNAME', 'tidewatch_drift_cat_combine' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION tidewatch._drift_cat_final(bytea) RETURNS tidewatch.drift_result
    AS 'MODULE_PATHNAME', 'tidewatch_drift_cat_final' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION tidewatch._drift_cat_final_all(bytea) RETURNS tidewatch.drift_result[]
    AS 'MODULE_PATHNAME', 'tidewatch_drift_cat_final_all' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE AGGREGATE tidewatch.drift_agg(value float8, is_current boolean) (
    SFUNC = tidewatch._drift_num_step, STYPE = bytea, COMBINEFUNC = tidewatch._drift_num_combine,
    FINALFUNC = tidewatch._drift_num_final, PARALLEL = SAFE);
CREATE AGGREGATE tidewatch.drift_agg(value float8, is_current boolean, method text, threshold float8) (
    SFUNC = tidewatch._drift_num_step, STYPE = bytea, COMBINEFUNC = tidewatch._drift_num_combine,
    FINALFUNC = tidewatch._drift_num_final, PARALLEL = SAFE);
CREATE AGGREGATE tidewatch.drift_agg(value float8, is_current boolean, methods text[]) (
    SFUNC = tidewatch._drift_num_step, STYPE = bytea, COMBINEFUNC = tidewatch._drift_num_combine,
    FINALFUNC = tidewatch._drift_num_final_all, PARALLEL = SAFE);
CREATE AGGREGATE tidewatch._drift_agg(value float8, is_current boolean, methods text[], thresholds float8[]) (
    SFUNC = tidewatch._drift_num_step, STYPE = bytea, COMBINEFUNC = tidewatch._drift_num_combine,
    FINALFUNC = tidewatch._drift_num_final_all, PARALLEL = SAFE);
CREATE AGGREGATE tidewatch.drift_agg(value text, is_current boolean) (
    SFUNC = tidewatch._drift_cat_step, STYPE = bytea, COMBINEFUNC = tidewatch._drift_cat_combine,
    FINALFUNC = tidewatch._drift_cat_final, PARALLEL = SAFE);
CREATE AGGREGATE tidewatch.drift_agg(value text, is_current boolean, method text, threshold float8) (
    SFUNC = tidewatch._drift_cat_step, STYPE = bytea, COMBINEFUNC = tidewatch._drift_cat_combine,
    FINALFUNC = tidewatch._drift_cat_final, PARALLEL = SAFE);
CREATE AGGREGATE tidewatch.drift_agg(value text, is_current boolean, methods text[]) (
    SFUNC = tidewatch._drift_cat_step, STYPE = bytea, COMBINEFUNC = tidewatch._drift_cat_combine,
    FINALFUNC = tidewatch._drift_cat_final_all, PARALLEL = SAFE);
CREATE AGGREGATE tidewatch._drift_agg(value text, is_current boolean, methods text[], thresholds float8[]) (
    SFUNC = tidewatch._drift_cat_step, STYPE = bytea, COMBINEFUNC = tidewatch._drift_cat_combine,
    FINALFUNC = tidewatch._drift_cat_final_all, PARALLEL = SAFE);
CREATE FUNCTION tidewatch._profile_num_final(bytea) RETURNS bytea
    AS 'MODULE_PATHNAME', 'tidewatch_profile_num_final' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION tidewatch._profile_cat_final(bytea) RETURNS bytea
    AS 'MODULE_PATHNAME', 'tidewatch_profile_cat_final' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE AGGREGATE tidewatch._profile_agg(value float8, is_current boolean) (
    SFUNC = tidewatch._drift_num_step, STYPE = bytea, COMBINEFUNC = tidewatch._drift_num_combine,
    FINALFUNC = tidewatch._profile_num_final, PARALLEL = SAFE);
CREATE AGGREGATE tidewatch._profile_agg(value text, is_current boolean) (
    SFUNC = tidewatch._drift_cat_step, STYPE = bytea, COMBINEFUNC = tidewatch._drift_cat_combine,
    FINALFUNC = tidewatch._profile_cat_final, PARALLEL = SAFE);
COMMENT ON AGGREGATE tidewatch.drift_agg(float8, boolean) IS
'Drift of a numeric column between rows with is_current false (reference) and true (current), method auto. Returns tidewatch.drift_result; parallel-safe.';
COMMENT ON AGGREGATE tidewatch.drift_agg(float8, boolean, text, float8) IS
'Drift of a numeric column between reference rows (is_current false) and current rows (true) with the given method and threshold (NULL: the method''s default). Returns tidewatch.drift_result; parallel-safe.';
COMMENT ON AGGREGATE tidewatch.drift_agg(text, boolean) IS
'Drift of a categorical column between reference rows (is_current false) and current rows (true), method auto. Returns tidewatch.drift_result; parallel-safe.';
COMMENT ON AGGREGATE tidewatch.drift_agg(text, boolean, text, float8) IS
'Drift of a categorical column between reference and current rows with the given method and threshold. Returns tidewatch.drift_result; parallel-safe.';
COMMENT ON AGGREGATE tidewatch.drift_agg(float8, boolean, text[]) IS
'Several drift tests of a numeric column at once (reference rows: is_current false; current: true), each with its default threshold; the values are collected and sorted once for all of them. Returns tidewatch.drift_result[] in the order of methods; parallel-safe.';
COMMENT ON AGGREGATE tidewatch.drift_agg(text, boolean, text[]) IS
'Several drift tests of a categorical column at once, each with its default threshold. Returns tidewatch.drift_result[] in the order of methods; parallel-safe.';

-- Devices (issue 16): several value columns of one series scored together.
CREATE FUNCTION tidewatch."_device_agg_step"(
	"state" internal, /* Internal */
	"ts" timestamp with time zone, /* Option < TimestampWithTimeZone > */
	"vals" double precision[], /* :: std :: option :: Option < Array < f64 > > */
	"params" TEXT /* Option < & str > */
) RETURNS internal /* Internal */
IMMUTABLE PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', '_device_agg_step_wrapper';
CREATE FUNCTION tidewatch."_device_agg_combine"(
	"a" internal, /* Internal */
	"b" internal /* Internal */
) RETURNS internal /* Internal */
IMMUTABLE PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', '_device_agg_combine_wrapper';
CREATE FUNCTION tidewatch."_device_agg_serialize"(
	"state" internal /* Internal */
) RETURNS bytea /* Vec < u8 > */
IMMUTABLE STRICT PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', '_device_agg_serialize_wrapper';
CREATE FUNCTION tidewatch."_device_agg_deserialize"(
	"bytes" bytea, /* & [u8] */
	"_unused" internal /* Internal */
) RETURNS internal /* Internal */
IMMUTABLE STRICT PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', '_device_agg_deserialize_wrapper';
CREATE FUNCTION tidewatch."_device_agg_final"(
	"state" internal /* Internal */
) RETURNS bytea /* :: std :: option :: Option < Vec < u8 > > */
IMMUTABLE PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', '_device_agg_final_wrapper';
CREATE FUNCTION tidewatch."_device_agg_flagged_final"(
	"state" internal /* Internal */
) RETURNS bytea /* :: std :: option :: Option < Vec < u8 > > */
IMMUTABLE PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', '_device_agg_flagged_final_wrapper';
CREATE FUNCTION tidewatch."_device_train_final"(
	"state" internal /* Internal */
) RETURNS _trained /* Option < :: pgrx :: heap_tuple :: PgHeapTuple < '_, :: pgrx :: pgbox ::
AllocatedByRust > > */
IMMUTABLE PARALLEL SAFE 
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', '_device_train_final_wrapper';
CREATE FUNCTION tidewatch."_device_verdict"(
	"state" bytea, /* & [u8] */
	"ts" timestamp with time zone, /* TimestampWithTimeZone */
	"vals" double precision[] /* Array < f64 > */
) RETURNS jsonb /* JsonB */
IMMUTABLE STRICT PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', '_device_verdict_wrapper';
CREATE FUNCTION tidewatch."device_points"(
	"result" bytea, /* Option < & [u8] > */
	"sensors" TEXT[] DEFAULT NULL, /* :: std :: option :: Option < Vec < Option < String > > > */
	"anomalies_only" bool DEFAULT false /* Option < bool > */
) RETURNS TABLE (
	"ts" timestamp with time zone,  /* Option < TimestampWithTimeZone > */
	"score" double precision,  /* f64 */
	"is_anomaly" bool,  /* bool */
	"kind" TEXT,  /* Option < String > */
	"top_sensor" TEXT,  /* Option < String > */
	"contributions" jsonb  /* JsonB */
)
IMMUTABLE PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'device_points_wrapper';
CREATE AGGREGATE tidewatch._device_agg(ts timestamptz, vals float8[], params text) (
    SFUNC = tidewatch._device_agg_step, STYPE = internal, COMBINEFUNC = tidewatch._device_agg_combine,
    SERIALFUNC = tidewatch._device_agg_serialize, DESERIALFUNC = tidewatch._device_agg_deserialize,
    FINALFUNC = tidewatch._device_agg_final, PARALLEL = SAFE);
CREATE AGGREGATE tidewatch._device_agg_flagged(ts timestamptz, vals float8[], params text) (
    SFUNC = tidewatch._device_agg_step, STYPE = internal, COMBINEFUNC = tidewatch._device_agg_combine,
    SERIALFUNC = tidewatch._device_agg_serialize, DESERIALFUNC = tidewatch._device_agg_deserialize,
    FINALFUNC = tidewatch._device_agg_flagged_final, PARALLEL = SAFE);
-- Scoring a device in the final function costs about what scanning its rows does (as anomaly_agg).
ALTER FUNCTION tidewatch._device_agg_final(internal) COST 100000;
ALTER FUNCTION tidewatch._device_agg_flagged_final(internal) COST 100000;
CREATE AGGREGATE tidewatch._device_train_agg(ts timestamptz, vals float8[], params text) (
    SFUNC = tidewatch._device_agg_step, STYPE = internal, COMBINEFUNC = tidewatch._device_agg_combine,
    SERIALFUNC = tidewatch._device_agg_serialize, DESERIALFUNC = tidewatch._device_agg_deserialize,
    FINALFUNC = tidewatch._device_train_final, PARALLEL = SAFE);
ALTER FUNCTION tidewatch._device_train_final(internal) COST 100000;
COMMENT ON AGGREGATE tidewatch._device_train_agg(timestamptz, float8[], text) IS
'Internal: trains a device model on the rows of one device (train_device_detector).';
COMMENT ON AGGREGATE tidewatch._device_agg(timestamptz, float8[], text) IS
'Internal: collects the rows of one device (several value columns) and scores them together in time order with auto''s device mode; tidewatch.device_points expands the result.';
COMMENT ON AGGREGATE tidewatch._device_agg_flagged(timestamptz, float8[], text) IS
'Internal: tidewatch._device_agg whose result holds only the flagged rows (detect_device_anomalies with anomalies_only => true).';
CREATE FUNCTION tidewatch."_device_monitor_step"(
	"state" bytea, /* Option < & [u8] > */
	"params" jsonb, /* Option < errors :: JsonbArg > */
	"sensors" TEXT[], /* Vec < Option < String > > */
	"ts" timestamp with time zone[], /* Vec < Option < TimestampWithTimeZone > > */
	"vals" double precision[] /* Array < f64 > */
) RETURNS TABLE (
	"state" bytea,  /* Vec < u8 > */
	"last_ts" timestamp with time zone,  /* Option < TimestampWithTimeZone > */
	"spacing_us" double precision,  /* f64 */
	"scored" bigint,  /* i64 */
	"late" bigint,  /* i64 */
	"skipped" bigint,  /* i64 */
	"episodes" jsonb  /* JsonB */
)
IMMUTABLE PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', '_device_monitor_step_wrapper';
-- Devices: several value columns of one series judged together (auto's device mode).
-- detect_device_anomalies scores each device (the rows sharing series_columns) as a whole: a row
-- is surprising when its most surprised sensor is rare for this device, or when several sensors
-- are mildly surprised at once; the result names the sensor that moved most and each surprised
-- sensor's share. The scoring is tidewatch._device_agg (extension/src/device.rs).

-- The label expression of a device's rows, after checking its value columns: 1 to 4096, none
-- NULL, each an existing numeric column (detect_device_anomalies, train_device_detector,
-- monitor_device).
CREATE FUNCTION tidewatch._device_columns(relation regclass, value_columns name[], series_columns name[])
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    c name;
    label text;
BEGIN
    IF value_columns IS NULL OR cardinality(value_columns) = 0 THEN
        RAISE EXCEPTION 'value_columns must name at least one column'
            USING ERRCODE = '22023', HINT = 'Pass the device''s sensor columns, e.g. ''{cpu,memory,disk_io}''.';
    END IF;
    IF cardinality(value_columns) > 4096 THEN
        RAISE EXCEPTION 'a device has at most 4096 value columns, not %', cardinality(value_columns)
            USING ERRCODE = '22023';
    END IF;
    IF array_position(value_columns, NULL) IS NOT NULL THEN
        RAISE EXCEPTION 'value_columns must not contain NULL' USING ERRCODE = '22004';
    END IF;
    -- Each value column must exist and be numeric; the label comes from the series columns.
    FOREACH c IN ARRAY value_columns LOOP
        label := tidewatch._series_columns(relation, c, series_columns);
    END LOOP;
    RETURN label;
END
$$;

CREATE FUNCTION tidewatch.detect_device_anomalies(
    relation regclass,
    value_columns name[],
    series_columns name[] DEFAULT '{}',
    time_column name DEFAULT NULL,
    start timestamptz DEFAULT NULL,
    finish timestamptz DEFAULT NULL,
    params jsonb DEFAULT '{}',
    anomalies_only boolean DEFAULT false)
RETURNS TABLE (series jsonb, ts timestamptz, score float8, is_anomaly boolean, kind text,
               top_sensor text, contributions jsonb)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    tcol name;
    label text;
    vals text;
    agg text;
    grp text;
    cond text;
    prev text[];
BEGIN
    label := tidewatch._device_columns(relation, value_columns, series_columns);
    PERFORM tidewatch._anomaly_check('auto', params);
    tcol := tidewatch._time_column(relation, time_column);
    cond := tidewatch._time_window(tcol, start, finish);
    vals := 'ARRAY[' || (SELECT string_agg(format('%I::float8', v), ', ' ORDER BY i)
                         FROM unnest(value_columns) WITH ORDINALITY u(v, i)) || ']';
    -- A fixed name, not user input: with anomalies_only the result holds only the flagged rows.
    agg := CASE WHEN coalesce(anomalies_only, false) THEN 'tidewatch._device_agg_flagged'
                ELSE 'tidewatch._device_agg' END;
    prev := tidewatch._partitionwise(relation);
    IF cardinality(coalesce(series_columns, '{}')) = 0 THEN
        RETURN QUERY EXECUTE format(
            'SELECT ''{}''::jsonb, p.ts, p.score, p.is_anomaly, p.kind, p.top_sensor, p.contributions'
            ' FROM (SELECT %s(%I::timestamptz, %s, $1) AS b FROM %s WHERE %s) g'
            ' CROSS JOIN LATERAL tidewatch.device_points(g.b, $2, $5) p WHERE g.b IS NOT NULL',
            agg, tcol, vals, relation, cond)
            USING params::text, value_columns::text[], start, finish, coalesce(anomalies_only, false);
    ELSE
        grp := (SELECT string_agg(format('%I', s), ', ') FROM unnest(series_columns) s);
        RETURN QUERY EXECUTE format(
            'SELECT g.series, p.ts, p.score, p.is_anomaly, p.kind, p.top_sensor, p.contributions'
            ' FROM (SELECT %s AS series, %s(%I::timestamptz, %s, $1) AS b FROM %s WHERE %s GROUP BY %s) g'
            ' CROSS JOIN LATERAL tidewatch.device_points(g.b, $2, $5) p',
            label, agg, tcol, vals, relation, cond, grp)
            USING params::text, value_columns::text[], start, finish, coalesce(anomalies_only, false);
    END IF;
    PERFORM tidewatch._partitionwise_end(prev);
END
$$;

-- The trained state of each device in (lo, fin], as train_device_detector stores it (a function
-- of its own so that the scan may use parallel workers, as _train_rows).
CREATE FUNCTION tidewatch._device_train_rows(relation regclass, value_columns name[], series_columns name[],
                                             tcol name, params jsonb, lo timestamptz, fin timestamptz)
RETURNS TABLE (series jsonb, t tidewatch._trained)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    prev text[] := tidewatch._partitionwise(relation);
BEGIN
    RETURN QUERY EXECUTE format(
        'SELECT %s AS series, tidewatch._device_train_agg(%I::timestamptz, %s, $1) AS t'
        ' FROM %s WHERE %I > $2 AND %I <= $3 GROUP BY %s',
        tidewatch._series_columns(relation, value_columns[1], series_columns), tcol,
        'ARRAY[' || (SELECT string_agg(format('%I::float8', v), ', ' ORDER BY i)
                     FROM unnest(value_columns) WITH ORDINALITY u(v, i)) || ']',
        relation, tcol, tcol,
        CASE WHEN cardinality(coalesce(series_columns, '{}')) = 0 THEN 'true'
             ELSE (SELECT string_agg(format('%I', s), ', ') FROM unnest(series_columns) s) END)
        USING params::text, lo, fin;
    PERFORM tidewatch._partitionwise_end(prev);
END
$$;
COMMENT ON FUNCTION tidewatch._device_train_rows(regclass, name[], name[], name, jsonb, timestamptz, timestamptz) IS
'Internal: the trained state of every device of a window, as train_device_detector stores it.';

CREATE FUNCTION tidewatch.train_device_detector(
    name text,
    relation regclass,
    value_columns name[],
    series_columns name[] DEFAULT '{}',
    train_interval interval DEFAULT interval '30 days',
    params jsonb DEFAULT '{}')
RETURNS integer
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    tcol name;
    fin timestamptz;
    lo timestamptz;
    r record;
    trained integer := 0;
BEGIN
    PERFORM tidewatch._device_columns(relation, value_columns, series_columns);
    PERFORM tidewatch._anomaly_check('auto', params);
    tcol := tidewatch._time_column(relation, NULL::name);
    fin := tidewatch._train_end(name, relation, tcol, train_interval);
    lo := fin - train_interval;
    FOR r IN SELECT * FROM tidewatch._device_train_rows(relation, value_columns, series_columns, tcol,
                                                        coalesce(params, '{}'), lo, fin)
    LOOP
        PERFORM tidewatch._store_model(name, r.series, 'device',
                                       coalesce(params, '{}') || jsonb_build_object('value_columns', to_jsonb(value_columns)),
                                       relation, NULL, series_columns, lo, fin, r.t);
        trained := trained + 1;
        IF trained % 100 = 0 THEN
            RAISE NOTICE 'train_device_detector "%": % devices trained', name, trained;
        END IF;
    END LOOP;
    IF trained = 0 THEN
        RAISE EXCEPTION 'no rows to train model "%" on in (%, %]', name, lo, fin
            USING ERRCODE = 'P0002', HINT = 'Widen train_interval.';
    END IF;
    RETURN trained;
END
$$;

-- A real-time monitor of devices: a monitor (tidewatch.monitor) whose trigger, or the decoder of
-- async monitors, passes each row's value_columns together, scored by auto's device mode; its
-- episodes name the sensor that moved most and each sensor's share (detail top_sensor,
-- contributions).
CREATE FUNCTION tidewatch.monitor_device(
    name text,
    relation regclass,
    value_columns name[],
    series_columns name[] DEFAULT '{}',
    params jsonb DEFAULT '{}',
    time_column name DEFAULT NULL,
    check_interval interval DEFAULT interval '1 minute',
    mode text DEFAULT 'sync')
RETURNS integer
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
BEGIN
    PERFORM tidewatch._device_columns(relation, value_columns, series_columns);
    RETURN tidewatch._monitor_create(name, relation, value_columns[1], series_columns, 'auto', params, time_column,
                                     check_interval, mode, value_columns);
END
$$;

CREATE FUNCTION tidewatch.score(name text, series jsonb, ts timestamptz, vals float8[])
RETURNS float8
LANGUAGE sql STABLE STRICT
SET search_path = pg_catalog, pg_temp
RETURN (tidewatch._device_verdict(tidewatch._model_state(name, series), ts, vals) ->> 'score')::float8;

CREATE FUNCTION tidewatch.predict(name text, series jsonb, ts timestamptz, vals float8[])
RETURNS integer
LANGUAGE sql STABLE STRICT
SET search_path = pg_catalog, pg_temp
RETURN CASE WHEN (tidewatch._device_verdict(tidewatch._model_state(name, series), ts, vals) ->> 'is_anomaly')::boolean
            THEN -1 ELSE 1 END;
COMMENT ON FUNCTION tidewatch.detect_device_anomalies(regclass, name[], name[], name, timestamptz, timestamptz, jsonb, boolean) IS
'Scores devices: the value_columns of each series (labels from series_columns) judged together, row by row in time order, with auto''s device mode (a row is surprising when its most surprised sensor is rare for the device, or several sensors are mildly surprised at once). Returns each row''s score in [0,1], flag, kind, the sensor that moved most and each surprised sensor''s share of the surprise; anomalies_only => true returns only the flagged rows.';
COMMENT ON FUNCTION tidewatch.device_points(bytea, text[], boolean) IS
'Expands the result of tidewatch._device_agg into one row per scored row of the device: ts, score, is_anomaly, kind, top_sensor and contributions (each surprised sensor''s share, named by sensors or sensor_1, sensor_2, ...).';
COMMENT ON FUNCTION tidewatch.train_device_detector(text, regclass, name[], name[], interval, jsonb) IS
'Trains one device model per series (the value_columns judged together, auto''s device mode) on the last train_interval of data (ending at the newest row not after now()) and stores them in tidewatch.models under name with method device, replacing earlier ones. Returns the number of devices trained.';
COMMENT ON FUNCTION tidewatch.score(text, jsonb, timestamptz, float8[]) IS
'Anomaly score in [0,1] of a row of sensor values (in the order of the value_columns it was trained on; NULL = missing) at ts under the trained device model name for the device with these labels. The model is not updated.';
COMMENT ON FUNCTION tidewatch.predict(text, jsonb, timestamptz, float8[]) IS
'-1 if the trained device model name flags this row of sensor values for the device with these labels, else 1 (scikit-learn''s convention). The model is not updated.';
COMMENT ON FUNCTION tidewatch._device_columns(regclass, name[], name[]) IS
'Internal: checks the value columns of a device (1 to 4096 numeric columns, none NULL) and returns the label expression of its series columns.';
COMMENT ON FUNCTION tidewatch.monitor_device(text, regclass, name[], name[], jsonb, name, interval, text) IS
'Starts a real-time monitor of devices: every row inserted into relation is scored with its device''s state, the value_columns judged together by auto''s device mode, and anomalous rows open or extend episodes in tidewatch.anomalies whose detail names the sensor that moved most (top_sensor) and each sensor''s share (contributions); band, value and sigma are the top sensor''s. mode sync (a statement trigger) or async (the decoder, from the write-ahead log), as tidewatch.monitor. Stop it with tidewatch.unmonitor. Returns the id of its missing-data job.';

-- Device monitors (issue 16): monitors.value_columns, and the trigger and apply step that pass a
-- device's rows to _device_monitor_step.
ALTER TABLE tidewatch.monitors ADD COLUMN value_columns name[] CONSTRAINT monitors_value_columns_check
    CHECK (value_columns IS NULL OR cardinality(value_columns) BETWEEN 1 AND 4096);
-- The command that creates a monitor's copy on a Citus worker (it reads value_columns).
CREATE FUNCTION tidewatch._monitor_replica_sql(monitor text)
RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
RETURN (SELECT format('SET ROLE %s; SELECT tidewatch._monitor_create(%L, %L, %L, %L, %L, %L, %L, %L, %L, %L)',
                      x.owner, x.name, x.relid::text, x.value_column, x.series_columns, x.method, x.params,
                      x.time_column, coalesce(j.schedule_interval, interval '1 minute'), x.mode, x.value_columns)
        FROM tidewatch.monitors x LEFT JOIN tidewatch.job j ON j.id = x.job_id
        WHERE x.name = _monitor_replica_sql.monitor);
COMMENT ON FUNCTION tidewatch._monitor_replica_sql(text) IS 'Internal: the command that creates a monitor''s copy on a Citus worker, as its owner, with the same arguments.';
CREATE OR REPLACE FUNCTION tidewatch._monitor_apply(m tidewatch.monitors, series jsonb, ts timestamptz[], vals float8[])
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    cur tidewatch.monitor_state;
    st record;
    e jsonb;
    ep_id bigint;
    open_id bigint;
BEGIN
    INSERT INTO tidewatch.monitor_state (monitor, series) VALUES (m.name, series) ON CONFLICT DO NOTHING;
    SELECT * INTO cur FROM tidewatch.monitor_state s WHERE s.monitor = m.name AND s.series = _monitor_apply.series FOR UPDATE;
    IF m.value_columns IS NULL THEN
        SELECT * INTO st FROM tidewatch._monitor_step(cur.state, m.method, m.params, ts, vals);
    ELSE
        -- A device monitor: vals holds one row of value_columns per time.
        SELECT * INTO st FROM tidewatch._device_monitor_step(cur.state, m.params, m.value_columns::text[], ts, vals);
    END IF;
    open_id := cur.open_episode;
    FOR e IN SELECT x FROM jsonb_array_elements(st.episodes) x LOOP
        IF (e ->> 'existing')::boolean AND open_id IS NOT NULL THEN
            UPDATE tidewatch.anomalies a SET
                ended_at = tidewatch._us(e -> 'ended_at'), peak_at = tidewatch._us(e -> 'peak_at'),
                peak_value = (e ->> 'peak_value')::float8, expected = (e ->> 'expected')::float8,
                lower = (e ->> 'lower')::float8, upper = (e ->> 'upper')::float8,
                score = least((e ->> 'score')::float8, 1), sigma = (e ->> 'sigma')::float8,
                severity = e ->> 'severity', kind = e ->> 'kind',
                detail = a.detail || jsonb_build_object('points', e -> 'points', 'open', e -> 'open')
                         || coalesce(e -> 'detail', '{}')
            WHERE a.id = open_id;
            ep_id := open_id;
        ELSE
            INSERT INTO tidewatch.anomalies (monitor, series, started_at, ended_at, peak_at, peak_value, expected,
                                             lower, upper, score, sigma, severity, kind, detail)
            VALUES (m.name, series, tidewatch._us(e -> 'started_at'), tidewatch._us(e -> 'ended_at'),
                    tidewatch._us(e -> 'peak_at'), (e ->> 'peak_value')::float8, (e ->> 'expected')::float8,
                    (e ->> 'lower')::float8, (e ->> 'upper')::float8, least((e ->> 'score')::float8, 1),
                    (e ->> 'sigma')::float8, e ->> 'severity', e ->> 'kind',
                    jsonb_build_object('method', m.method, 'points', e -> 'points', 'open', e -> 'open')
                    || coalesce(e -> 'detail', '{}'))
            RETURNING id INTO ep_id;
        END IF;
        open_id := CASE WHEN (e ->> 'open')::boolean THEN ep_id END;
    END LOOP;
    IF cur.missing_episode IS NOT NULL AND st.scored > 0 THEN
        UPDATE tidewatch.anomalies a SET ended_at = (SELECT min(t) FROM unnest(ts) t),
               detail = a.detail || jsonb_build_object('resumed_at', (SELECT min(t) FROM unnest(ts) t))
            WHERE a.id = cur.missing_episode;
    END IF;
    UPDATE tidewatch.monitor_state s SET
        state = st.state, last_ts = st.last_ts,
        spacing = CASE WHEN st.spacing_us > 0 THEN st.spacing_us * interval '1 microsecond' END,
        n = s.n + st.scored, late = s.late + st.late, skipped = s.skipped + st.skipped,
        open_episode = open_id,
        missing_episode = CASE WHEN st.scored > 0 THEN NULL ELSE s.missing_episode END,
        updated_at = now()
    WHERE s.monitor = m.name AND s.series = _monitor_apply.series;
END
$$;
CREATE OR REPLACE FUNCTION tidewatch._monitor_trigger()
RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    m tidewatch.monitors;
    r record;
    grp text;
    vals text;
BEGIN
    SELECT * INTO m FROM tidewatch.monitors WHERE name = TG_ARGV[0];
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    -- It runs as the extension's owner: attached by hand to another table, it would let any role
    -- write that monitor's episodes and states.
    IF m.relid <> TG_RELID::regclass THEN
        RAISE EXCEPTION 'the trigger of monitor "%" fired on %, not on its table %', m.name, TG_RELID::regclass, m.relid
            USING ERRCODE = '42501',
                  HINT = 'tidewatch.monitor() attaches this trigger; do not attach tidewatch._monitor_trigger by hand.';
    END IF;
    -- Group by the raw label columns (cheaper than by jsonb) and lock series in that order.
    grp := CASE WHEN cardinality(m.series_columns) = 0 THEN '' ELSE
           ' GROUP BY ' || (SELECT string_agg(format('%I', c), ', ') FROM unnest(m.series_columns) c) ||
           ' ORDER BY ' || (SELECT string_agg(format('%I', c), ', ') FROM unnest(m.series_columns) c) END;
    -- A device monitor's rows: one array of its value columns per row (a 2-D array per series).
    vals := CASE WHEN m.value_columns IS NULL THEN format('%I::float8', m.value_column)
            ELSE 'ARRAY[' || (SELECT string_agg(format('%I::float8', v), ', ' ORDER BY i)
                              FROM unnest(m.value_columns) WITH ORDINALITY u(v, i)) || ']' END;
    FOR r IN EXECUTE format(
        'SELECT %s AS series, array_agg(%I::timestamptz) AS ts, array_agg(%s) AS vals'
        ' FROM tidewatch_new_rows%s',
        tidewatch._series_columns(m.relid, m.value_column, m.series_columns), m.time_column, vals, grp)
    LOOP
        PERFORM tidewatch._monitor_apply(m, r.series, r.ts, r.vals);
    END LOOP;
    RETURN NULL;
END
$$;

-- Comments on every internal function and aggregate (sql/comments.sql).
COMMENT ON FUNCTION tidewatch._anomaly_agg_combine(internal,internal) IS
'Internal: the combine function (merges two partial states: parallel workers, Citus workers) of tidewatch._anomaly_agg_flagged, tidewatch._train_agg, tidewatch.anomaly_agg.';
COMMENT ON FUNCTION tidewatch._anomaly_agg_deserialize(bytea,internal) IS
'Internal: the deserialize function (a state back from its bytes) of tidewatch._anomaly_agg_flagged, tidewatch._train_agg, tidewatch.anomaly_agg.';
COMMENT ON FUNCTION tidewatch._anomaly_agg_final(internal) IS
'Internal: the final function (turns the state into the result) of tidewatch.anomaly_agg.';
COMMENT ON FUNCTION tidewatch._anomaly_agg_serialize(internal) IS
'Internal: the serialize function (the state as bytes, between parallel workers or Citus nodes) of tidewatch._anomaly_agg_flagged, tidewatch._train_agg, tidewatch.anomaly_agg.';
COMMENT ON FUNCTION tidewatch._anomaly_agg_step(internal,timestamp with time zone,double precision) IS
'Internal: the transition function (adds one row to the state) of tidewatch.anomaly_agg.';
COMMENT ON FUNCTION tidewatch._anomaly_agg_step(internal,timestamp with time zone,double precision,text) IS
'Internal: the transition function (adds one row to the state) of tidewatch.anomaly_agg.';
COMMENT ON FUNCTION tidewatch._anomaly_agg_step(internal,timestamp with time zone,double precision,text,jsonb) IS
'Internal: the transition function (adds one row to the state) of tidewatch._anomaly_agg_flagged, tidewatch._train_agg, tidewatch.anomaly_agg.';
COMMENT ON FUNCTION tidewatch._anomaly_check(text,jsonb) IS
'Internal: checks an anomaly method and its params (22023 with the valid ones) before a scan; true when valid.';
COMMENT ON FUNCTION tidewatch._anomaly_flagged_final(internal) IS
'Internal: the final function (turns the state into the result) of tidewatch._anomaly_agg_flagged.';
COMMENT ON FUNCTION tidewatch._anomaly_stream_final(internal) IS
'Internal: the final function (turns the state into the result) of tidewatch.anomaly_score.';
COMMENT ON FUNCTION tidewatch._anomaly_stream_step(internal,timestamp with time zone,double precision) IS
'Internal: the transition function (adds one row to the state) of tidewatch.anomaly_score.';
COMMENT ON FUNCTION tidewatch._anomaly_stream_step(internal,timestamp with time zone,double precision,text) IS
'Internal: the transition function (adds one row to the state) of tidewatch.anomaly_score.';
COMMENT ON FUNCTION tidewatch._anomaly_stream_step(internal,timestamp with time zone,double precision,text,jsonb) IS
'Internal: the transition function (adds one row to the state) of tidewatch.anomaly_score.';
COMMENT ON FUNCTION tidewatch._check_columns(regclass,name[]) IS
'Internal: raises 42703 naming every column of columns that relation does not have (drift functions).';
COMMENT ON FUNCTION tidewatch._classification_quality_combine(bytea,bytea) IS
'Internal: the combine function (merges two partial states: parallel workers, Citus workers) of tidewatch.classification_quality.';
COMMENT ON FUNCTION tidewatch._classification_quality_final(bytea) IS
'Internal: the final function (turns the state into the result) of tidewatch.classification_quality.';
COMMENT ON FUNCTION tidewatch._classification_quality_step(bytea,text,text) IS
'Internal: the transition function (adds one row to the state) of tidewatch.classification_quality.';
COMMENT ON FUNCTION tidewatch._column_type(regclass,name,text,text) IS
'Internal: checks that a column of relation exists and has a type in the given categories; returns its type (log functions).';
COMMENT ON FUNCTION tidewatch._device_agg_combine(internal,internal) IS
'Internal: the combine function (merges two partial states: parallel workers, Citus workers) of tidewatch._device_agg, tidewatch._device_agg_flagged, tidewatch._device_train_agg.';
COMMENT ON FUNCTION tidewatch._device_agg_deserialize(bytea,internal) IS
'Internal: the deserialize function (a state back from its bytes) of tidewatch._device_agg, tidewatch._device_agg_flagged, tidewatch._device_train_agg.';
COMMENT ON FUNCTION tidewatch._device_agg_final(internal) IS
'Internal: the final function (turns the state into the result) of tidewatch._device_agg.';
COMMENT ON FUNCTION tidewatch._device_agg_flagged_final(internal) IS
'Internal: the final function (turns the state into the result) of tidewatch._device_agg_flagged.';
COMMENT ON FUNCTION tidewatch._device_agg_serialize(internal) IS
'Internal: the serialize function (the state as bytes, between parallel workers or Citus nodes) of tidewatch._device_agg, tidewatch._device_agg_flagged, tidewatch._device_train_agg.';
COMMENT ON FUNCTION tidewatch._device_agg_step(internal,timestamp with time zone,double precision[],text) IS
'Internal: the transition function (adds one row to the state) of tidewatch._device_agg, tidewatch._device_agg_flagged, tidewatch._device_train_agg.';
COMMENT ON FUNCTION tidewatch._device_monitor_step(bytea,jsonb,text[],timestamp with time zone[],double precision[]) IS
'Internal: advances a device monitor''s per-series state by a batch of rows (one value per sensor per row, row-major) and returns the new state, counts and the episodes it opened, extended or closed, with the sensors'' shares (monitor_device).';
COMMENT ON FUNCTION tidewatch._device_train_final(internal) IS
'Internal: the final function (turns the state into the result) of tidewatch._device_train_agg.';
COMMENT ON FUNCTION tidewatch._device_verdict(bytea,timestamp with time zone,double precision[]) IS
'Internal: the verdict (score, flag, band, top sensor) of a stored device model on one row of sensor values, without changing the model (score, predict).';
COMMENT ON AGGREGATE tidewatch._drift_agg(text,boolean,text[],double precision[]) IS
'Internal: drift_agg of a categorical column with per-method thresholds (drift_report, drift monitors).';
COMMENT ON AGGREGATE tidewatch._drift_agg(double precision,boolean,text[],double precision[]) IS
'Internal: drift_agg of a numeric column with per-method thresholds (drift_report, drift monitors).';
COMMENT ON FUNCTION tidewatch._drift_cat_combine(bytea,bytea) IS
'Internal: the combine function (merges two partial states: parallel workers, Citus workers) of tidewatch._drift_agg, tidewatch._profile_agg, tidewatch.drift_agg.';
COMMENT ON FUNCTION tidewatch._drift_cat_final(bytea) IS
'Internal: the final function (turns the state into the result) of tidewatch.drift_agg.';
COMMENT ON FUNCTION tidewatch._drift_cat_final_all(bytea) IS
'Internal: the final function (turns the state into the result) of tidewatch._drift_agg, tidewatch.drift_agg.';
COMMENT ON FUNCTION tidewatch._drift_cat_profile(bytea,text[],text,double precision) IS
'Internal: drift of a current window (an array) against a saved categorical profile (drift monitors with a saved reference).';
COMMENT ON FUNCTION tidewatch._drift_cat_step(bytea,text,boolean) IS
'Internal: the transition function (adds one row to the state) of tidewatch._profile_agg, tidewatch.drift_agg.';
COMMENT ON FUNCTION tidewatch._drift_cat_step(bytea,text,boolean,text[]) IS
'Internal: the transition function (adds one row to the state) of tidewatch.drift_agg.';
COMMENT ON FUNCTION tidewatch._drift_cat_step(bytea,text,boolean,text,double precision) IS
'Internal: the transition function (adds one row to the state) of tidewatch.drift_agg.';
COMMENT ON FUNCTION tidewatch._drift_cat_step(bytea,text,boolean,text[],double precision[]) IS
'Internal: the transition function (adds one row to the state) of tidewatch._drift_agg.';
COMMENT ON FUNCTION tidewatch._drift_methods(jsonb,name) IS
'Internal: the methods and thresholds drift_report applies to a column, from its options (checked before the scan, so that a typo fails first).';
COMMENT ON FUNCTION tidewatch._drift_num_combine(bytea,bytea) IS
'Internal: the combine function (merges two partial states: parallel workers, Citus workers) of tidewatch._drift_agg, tidewatch._profile_agg, tidewatch.drift_agg.';
COMMENT ON FUNCTION tidewatch._drift_num_final(bytea) IS
'Internal: the final function (turns the state into the result) of tidewatch.drift_agg.';
COMMENT ON FUNCTION tidewatch._drift_num_final_all(bytea) IS
'Internal: the final function (turns the state into the result) of tidewatch._drift_agg, tidewatch.drift_agg.';
COMMENT ON FUNCTION tidewatch._drift_num_profile(bytea,double precision[],text,double precision) IS
'Internal: drift of a current window (an array) against a saved numeric profile (drift monitors with a saved reference).';
COMMENT ON FUNCTION tidewatch._drift_num_step(bytea,double precision,boolean) IS
'Internal: the transition function (adds one row to the state) of tidewatch._profile_agg, tidewatch.drift_agg.';
COMMENT ON FUNCTION tidewatch._drift_num_step(bytea,double precision,boolean,text[]) IS
'Internal: the transition function (adds one row to the state) of tidewatch.drift_agg.';
COMMENT ON FUNCTION tidewatch._drift_num_step(bytea,double precision,boolean,text,double precision) IS
'Internal: the transition function (adds one row to the state) of tidewatch.drift_agg.';
COMMENT ON FUNCTION tidewatch._drift_num_step(bytea,double precision,boolean,text[],double precision[]) IS
'Internal: the transition function (adds one row to the state) of tidewatch._drift_agg.';
COMMENT ON FUNCTION tidewatch._in_range(name,tstzrange,integer,integer) IS
'Internal: the predicate "column in range" written with comparisons on bound parameters, so that the planner prunes chunks outside it (drift functions).';
COMMENT ON FUNCTION tidewatch._log_burst_check(text,text,timestamp with time zone) IS
'Internal: checks a log monitor''s error class for a burst (Poisson tail against its usual rate) and opens, extends or ends its log_burst episode and event.';
COMMENT ON FUNCTION tidewatch._log_miner_config_check(jsonb) IS
'Internal: checks a log miner''s settings (the CHECK constraint of tidewatch.log_miners.config).';
COMMENT ON FUNCTION tidewatch._log_monitor_apply_async(text,timestamp with time zone[],text[]) IS
'Internal: the decoder of async monitors applies a batch of committed log lines to a log monitor with it; an error is kept in log_monitors.last_error and reported as a WARNING.';
COMMENT ON FUNCTION tidewatch._log_monitor_flush(text) IS
'Internal: the statement side of a log monitor: writes the pending counts, the miner''s changes and new templates'' events; returns per error class the time of its newest line.';
COMMENT ON FUNCTION tidewatch._log_monitor_ingest(text,timestamp with time zone[],text[]) IS
'Internal: mines, classifies and counts a batch of log lines of a log monitor as its row trigger does (the async side); returns the lines counted.';
COMMENT ON FUNCTION tidewatch._log_monitor_row() IS
'Internal: the row trigger of a sync log monitor: mines, classifies and counts each inserted line (its once-per-statement catalog reads run as the extension''s owner, so a role that may only INSERT into the log table is served; it refuses with 42501 to fire on any table but its monitor''s).';
COMMENT ON FUNCTION tidewatch._log_monitor_statement() IS
'Internal: the statement trigger of a sync log monitor: flushes what the row trigger counted and checks for error bursts, as the extension''s owner (SECURITY DEFINER; it refuses with 42501 to fire on any table but its monitor''s).';
COMMENT ON FUNCTION tidewatch._log_rule_check(text,text,text) IS
'Internal: checks one row of tidewatch.log_rules (its CHECK constraint): the pattern compiles, the category and severity exist.';
COMMENT ON FUNCTION tidewatch._mine_query(regclass,text,text,text,bigint) IS
'Internal: the body of mine_logs: mines every row of relation into the miner, with NOTICE progress, and returns per template its lines and times.';
COMMENT ON FUNCTION tidewatch._model_score(bytea,timestamp with time zone,double precision) IS
'Internal: the score in [0,1] of a stored per-series model on one point, without changing the model (score).';
COMMENT ON FUNCTION tidewatch._model_state(text,jsonb) IS
'Internal: the state of the trained model name for the series with these labels (42704 with a hint when there is none).';
COMMENT ON FUNCTION tidewatch._model_verdict(bytea,timestamp with time zone,double precision) IS
'Internal: the verdict (score, flag, band, kind) of a stored per-series model on one point, as jsonb, without changing the model (predict).';
COMMENT ON FUNCTION tidewatch._monitor_apply(tidewatch.monitors,jsonb,timestamp with time zone[],double precision[]) IS
'Internal: applies one batch of a series'' points (or a device''s rows) to a monitor: advances its state under a row lock and opens, extends or closes its episodes in the same transaction.';
COMMENT ON FUNCTION tidewatch._monitor_apply_async(text,jsonb,timestamp with time zone[],double precision[]) IS
'Internal: the decoder of async monitors applies each series'' batch with it; an error is kept in monitors.last_error and reported as a WARNING instead of stopping the decoder.';
COMMENT ON FUNCTION tidewatch._monitor_drift(text,regclass,text,tstzrange,interval,interval,name[],name,jsonb,double precision) IS
'Internal: the body of both forms of monitor_drift (a saved reference or a fixed window): checks the arguments, stores the drift monitor and adds its job.';
COMMENT ON FUNCTION tidewatch._monitor_slot() IS
'Internal: checks the settings async monitors need (55000 with a hint), creates this database''s replication slot when missing, and returns the position and system identifier a new monitor starts from.';
COMMENT ON FUNCTION tidewatch._monitor_slot_name() IS
'Internal: the name of this database''s replication slot of async monitors (tidewatch_<database oid>).';
COMMENT ON FUNCTION tidewatch._monitor_step(bytea,text,jsonb,timestamp with time zone[],double precision[]) IS
'Internal: advances a monitor''s per-series state by a batch of points and returns the new state, counts and the episodes it opened, extended or closed (times in microseconds since the Unix epoch).';
COMMENT ON FUNCTION tidewatch._monitor_trigger() IS
'Internal: the statement trigger of a sync monitor: groups the inserted rows by series (a device''s value columns together) and applies each batch; episodes are visible at commit.';
COMMENT ON FUNCTION tidewatch._new_name(text,text,boolean,text) IS
'Internal: the shared check of create functions of named objects: 22023 for an empty name, 42710 when it exists (with the function that drops it).';
COMMENT ON FUNCTION tidewatch._not_found(text,text,boolean,text) IS
'Internal: the shared answer of drop functions for a missing object: false when if_exists, else 42704 saying where to list them.';
COMMENT ON FUNCTION tidewatch._peer_outliers(integer,integer,double precision[],text,double precision) IS
'Internal: peer outliers over a series x bucket grid (row-major values, NULL = missing bucket) with augurs-outlier''s MAD or DBSCAN detector (peer_outliers).';
COMMENT ON FUNCTION tidewatch._pg_us(bigint) IS
'Internal: microseconds since 2000-01-01 (PostgreSQL''s epoch, as the Rust side reports times) to timestamptz.';
COMMENT ON FUNCTION tidewatch._poisson_burst(bigint,double precision) IS
'Internal: the upper tail P(X >= k) of a Poisson law at mu, and the largest count still normal at the 1e-4 level (log error bursts).';
COMMENT ON AGGREGATE tidewatch._profile_agg(text,boolean) IS
'Internal: the reference profile of a categorical column (its exact counts) that save_reference stores; parallel safe.';
COMMENT ON AGGREGATE tidewatch._profile_agg(double precision,boolean) IS
'Internal: the reference profile of a numeric column (exact values, or a sketch with documented error when large) that save_reference stores; parallel safe.';
COMMENT ON FUNCTION tidewatch._profile_cat_final(bytea) IS
'Internal: the final function (turns the state into the result) of tidewatch._profile_agg.';
COMMENT ON FUNCTION tidewatch._profile_is_exact(bytea) IS
'Internal: whether a saved profile holds the exact values (else a sketch with documented error).';
COMMENT ON FUNCTION tidewatch._profile_num_final(bytea) IS
'Internal: the final function (turns the state into the result) of tidewatch._profile_agg.';
COMMENT ON FUNCTION tidewatch._regression_quality_combine(bytea,bytea) IS
'Internal: the combine function (merges two partial states: parallel workers, Citus workers) of tidewatch.regression_quality.';
COMMENT ON FUNCTION tidewatch._regression_quality_final(bytea) IS
'Internal: the final function (turns the state into the result) of tidewatch.regression_quality.';
COMMENT ON FUNCTION tidewatch._regression_quality_step(bytea,double precision,double precision) IS
'Internal: the transition function (adds one row to the state) of tidewatch.regression_quality.';
COMMENT ON FUNCTION tidewatch._series_columns(regclass,name,name[]) IS
'Internal: checks a value column (numeric) and series columns of relation and returns the expression of the series labels as jsonb.';
COMMENT ON FUNCTION tidewatch._time_column(regclass,name) IS
'Internal: the time column to use: the given one (checked) or the hypertable''s; 22023 with a hint for a plain table without one.';
COMMENT ON AGGREGATE tidewatch._train_agg(timestamp with time zone,double precision,text,jsonb) IS
'Internal: trains a per-series detector on the rows of one series (train_detector); parallel safe, with combine, serialize and deserialize functions.';
COMMENT ON FUNCTION tidewatch._train_final(internal) IS
'Internal: the final function (turns the state into the result) of tidewatch._train_agg.';
COMMENT ON FUNCTION tidewatch._train_log_classifier(text,regclass,text,text) IS
'Internal: trains the learned fallback classifier from the (message, label) rows of relation where both are not NULL; returns the number of examples (train_log_classifier).';
COMMENT ON FUNCTION tidewatch._us(jsonb) IS
'Internal: microseconds since the Unix epoch (as the Rust side reports times) to timestamptz, exactly.';
COMMENT ON FUNCTION tidewatch._wal_system() IS
'Internal: this cluster''s system identifier (pg_control_system() is not for every role).';

-- Writes: only the owner of a monitor, model, reference or drift monitor (and the owner's members)
-- changes or deletes it; the roles that may read it cannot remove it. A monitor of either kind is
-- made only on a table its owner may read, even by a row inserted by hand (the async decoder reads
-- as a superuser). Anomaly and log monitors share one name space: episodes, states and the right to
-- write them are keyed on the name.
CREATE POLICY models_owner_delete ON tidewatch.models AS RESTRICTIVE FOR DELETE
    USING (pg_catalog.pg_has_role(current_user, owner, 'MEMBER'));
CREATE POLICY monitors_owner_update ON tidewatch.monitors AS RESTRICTIVE FOR UPDATE
    USING (pg_catalog.pg_has_role(current_user, owner, 'MEMBER'));
CREATE POLICY monitors_owner_delete ON tidewatch.monitors AS RESTRICTIVE FOR DELETE
    USING (pg_catalog.pg_has_role(current_user, owner, 'MEMBER'));
CREATE POLICY monitors_readable_insert ON tidewatch.monitors AS RESTRICTIVE FOR INSERT
    WITH CHECK (tidewatch._readable(relid));
CREATE POLICY references_owner_update ON tidewatch.references AS RESTRICTIVE FOR UPDATE
    USING (pg_catalog.pg_has_role(current_user, owner, 'MEMBER'));
CREATE POLICY references_owner_delete ON tidewatch.references AS RESTRICTIVE FOR DELETE
    USING (pg_catalog.pg_has_role(current_user, owner, 'MEMBER'));
CREATE POLICY drift_monitors_owner_update ON tidewatch.drift_monitors AS RESTRICTIVE FOR UPDATE
    USING (pg_catalog.pg_has_role(current_user, owner, 'MEMBER'));
CREATE POLICY drift_monitors_owner_delete ON tidewatch.drift_monitors AS RESTRICTIVE FOR DELETE
    USING (pg_catalog.pg_has_role(current_user, owner, 'MEMBER'));
CREATE POLICY log_monitors_owner_insert ON tidewatch.log_monitors AS RESTRICTIVE FOR INSERT
    WITH CHECK (pg_catalog.pg_has_role(current_user, owner, 'MEMBER') AND tidewatch._readable(relid));
CREATE POLICY log_monitors_owner_update ON tidewatch.log_monitors AS RESTRICTIVE FOR UPDATE
    USING (pg_catalog.pg_has_role(current_user, owner, 'MEMBER'));
CREATE POLICY log_monitors_owner_delete ON tidewatch.log_monitors AS RESTRICTIVE FOR DELETE
    USING (pg_catalog.pg_has_role(current_user, owner, 'MEMBER'));

CREATE FUNCTION tidewatch._monitor_name_free()
RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- Serialise the two tables' inserts of one name (the check below then sees a committed twin).
    PERFORM pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('tidewatch monitor name ' || NEW.name));
    IF (TG_TABLE_NAME = 'monitors' AND EXISTS (SELECT 1 FROM tidewatch.log_monitors l WHERE l.name = NEW.name))
       OR (TG_TABLE_NAME = 'log_monitors' AND EXISTS (SELECT 1 FROM tidewatch.monitors m WHERE m.name = NEW.name)) THEN
        RAISE EXCEPTION 'a monitor named "%" already exists', NEW.name
            USING ERRCODE = '42710',
                  HINT = 'Anomaly monitors and log monitors share one set of names; choose another name.';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER monitor_name_free BEFORE INSERT OR UPDATE OF name ON tidewatch.monitors
    FOR EACH ROW EXECUTE FUNCTION tidewatch._monitor_name_free();
CREATE TRIGGER monitor_name_free BEFORE INSERT OR UPDATE OF name ON tidewatch.log_monitors
    FOR EACH ROW EXECUTE FUNCTION tidewatch._monitor_name_free();

-- Statistics of a job are written by its owner only (monitoring roles see every job, change none).
ALTER POLICY job_stat_owner ON tidewatch.job_stat
    USING (EXISTS (SELECT 1 FROM tidewatch.job j
                   WHERE j.id = job_id AND pg_catalog.pg_has_role(current_user, j.owner, 'MEMBER')));
COMMENT ON FUNCTION tidewatch._monitor_name_free() IS
'Internal: trigger of tidewatch.monitors and tidewatch.log_monitors: 42710 when the other kind already has a monitor of that name (they share one name space).';

-- Dropping a monitor, drift monitor or log monitor of another role is refused (42501).

-- Refuse (42501) to drop or replace a catalog row of another role: its owner and the owner's
-- members may (the row-level policies would otherwise make the change a silent no-op).
CREATE FUNCTION tidewatch._require_owner(kind text, name text, owner regrole)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT pg_catalog.pg_has_role(current_user, owner, 'MEMBER') THEN
        RAISE EXCEPTION 'must be owner of % "%"', kind, name
            USING ERRCODE = '42501',
                  DETAIL = format('It belongs to role %s.', owner),
                  HINT = 'Only its owner (or a member of that role) may drop or replace it.';
    END IF;
END
$$;

CREATE OR REPLACE FUNCTION tidewatch.unmonitor_drift(name text, if_exists boolean DEFAULT false)
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

CREATE OR REPLACE FUNCTION tidewatch.unmonitor_logs(name text, if_exists boolean DEFAULT false)
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
COMMENT ON FUNCTION tidewatch._require_owner(text,text,regrole) IS
'Internal: raise 42501 unless the current role is a member of owner (dropping or replacing another role''s monitor or reference).';

-- Custom log rules get an owner: the rules that exist now belong to the role that runs this
-- upgrade (give them back with UPDATE tidewatch.log_rules SET owner = ... WHERE ruleset = ...).
ALTER TABLE tidewatch.log_rules ADD COLUMN owner regrole NOT NULL DEFAULT current_user::regrole;

-- The log catalog: a miner's settings are its own (others who mine into it only count lines and
-- bump its version), a classifier and a miner are dropped or replaced by their owners only, and a
-- custom ruleset belongs to the role that wrote its first rule (rulesets are read by everyone who
-- classifies with them; they change others' classifications, so only their owner edits them).
REVOKE UPDATE ON tidewatch.log_miners FROM PUBLIC;
GRANT UPDATE (lines, version, updated_at) ON tidewatch.log_miners TO PUBLIC;
CREATE POLICY log_miners_owner_delete ON tidewatch.log_miners AS RESTRICTIVE FOR DELETE
    USING (pg_catalog.pg_has_role(current_user, owner, 'MEMBER'));
CREATE POLICY log_classifiers_owner_update ON tidewatch.log_classifiers AS RESTRICTIVE FOR UPDATE
    USING (pg_catalog.pg_has_role(current_user, owner, 'MEMBER'));
CREATE POLICY log_classifiers_owner_delete ON tidewatch.log_classifiers AS RESTRICTIVE FOR DELETE
    USING (pg_catalog.pg_has_role(current_user, owner, 'MEMBER'));
CREATE POLICY log_classifiers_owner_insert ON tidewatch.log_classifiers AS RESTRICTIVE FOR INSERT
    WITH CHECK (pg_catalog.pg_has_role(current_user, owner, 'MEMBER'));
-- A miner's templates are written by the miner only (as the extension's owner, for any role that
-- may mine into it) and deleted by the miner's owner only (to start it afresh).
CREATE POLICY log_templates_owner_delete ON tidewatch.log_templates AS RESTRICTIVE FOR DELETE
    USING (miner IN (SELECT x.name FROM tidewatch.log_miners x
                     WHERE pg_catalog.pg_has_role(current_user, x.owner, 'MEMBER')));
ALTER TABLE tidewatch.log_rules ENABLE ROW LEVEL SECURITY;
CREATE POLICY log_rules_read ON tidewatch.log_rules FOR SELECT USING (true);
-- (A function, not a subquery: a policy of log_rules may not read log_rules itself.)
CREATE FUNCTION tidewatch._ruleset_writable(ruleset text)
RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
RETURN NOT EXISTS (SELECT 1 FROM tidewatch.log_rules r
                   WHERE r.ruleset = _ruleset_writable.ruleset
                     AND NOT pg_catalog.pg_has_role(current_user, r.owner, 'MEMBER'));
CREATE POLICY log_rules_owner ON tidewatch.log_rules
    USING (pg_catalog.pg_has_role(current_user, owner, 'MEMBER'))
    WITH CHECK (pg_catalog.pg_has_role(current_user, owner, 'MEMBER') AND tidewatch._ruleset_writable(ruleset));

CREATE OR REPLACE FUNCTION tidewatch.drop_log_miner(name text, if_exists boolean DEFAULT false)
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
COMMENT ON FUNCTION tidewatch._ruleset_writable(text) IS
'Internal: whether the current role may add rules to a custom log ruleset (no rule of it belongs to a role it is not a member of).';

-- Chunk names are cut to 63 bytes, not characters (multi-byte table names).
CREATE OR REPLACE FUNCTION tidewatch._chunk_name(relation regclass, range_start timestamptz, chunk_interval interval)
RETURNS name
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
SET TimeZone = 'UTC'
AS $$
DECLARE
    base text;
    suffix text;
    candidate text;
    nsp oid;
    i integer := 0;
BEGIN
    SELECT c.relname, c.relnamespace INTO base, nsp FROM pg_class c WHERE c.oid = relation;
    suffix := CASE
        WHEN range_start = date_trunc('day', range_start) AND chunk_interval >= interval '1 day'
            THEN to_char(range_start, '"_p"YYYYMMDD')
        ELSE to_char(range_start, '"_p"YYYYMMDD"t"HH24MISS') END;
    -- Cut to bytes, not characters: a longer candidate would be truncated by PostgreSQL after
    -- the check below (two days of a 31-letter 'ü' table got one name, and the second failed).
    base := left(base, 63 - octet_length(suffix) - 4);
    WHILE octet_length(base) > 63 - octet_length(suffix) - 4 LOOP
        base := left(base, -1);
    END LOOP;
    LOOP
        candidate := base || suffix || CASE WHEN i = 0 THEN '' ELSE '_' || i END;
        EXIT WHEN NOT EXISTS (SELECT 1 FROM pg_class WHERE relname = candidate AND relnamespace = nsp);
        i := i + 1;
    END LOOP;
    RETURN candidate::name;
END
$$;

-- A role that may only INSERT into a sync log monitor's table gets its lines counted: the row
-- trigger reads the catalog as the extension's owner, the statement trigger runs as it (and both
-- refuse to fire on another table). Templates are written by the miner, counts and burst states by
-- the monitors, never by hand.
CREATE OR REPLACE FUNCTION tidewatch._log_monitor_statement()
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
REVOKE EXECUTE ON FUNCTION tidewatch._log_burst_check(text, text, timestamptz) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION tidewatch._log_monitor_flush(text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION tidewatch._log_monitor_ingest(text, timestamptz[], text[]) FROM PUBLIC;
REVOKE INSERT, UPDATE, DELETE ON tidewatch.log_counts, tidewatch.log_monitor_state FROM PUBLIC;
REVOKE INSERT, UPDATE ON tidewatch.log_templates FROM PUBLIC;

-- Async monitors share this database's replication slot, which keeps write-ahead log until the
-- decoder reads it: only superusers and the roles granted EXECUTE on _monitor_slot() start them.
CREATE FUNCTION tidewatch._require_async()
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT has_function_privilege('tidewatch._monitor_slot()', 'EXECUTE') THEN
        RAISE EXCEPTION 'permission denied to start an async monitor'
            USING ERRCODE = '42501',
                  DETAIL = 'Async monitors share this database''s replication slot, which keeps write-ahead log until the decoder has read it.',
                  HINT = format('Use mode => ''sync'', or ask a superuser to GRANT EXECUTE ON FUNCTION tidewatch._monitor_slot() TO %I.', current_user);
    END IF;
END
$$;
COMMENT ON FUNCTION tidewatch._require_async() IS
'Internal: raises 42501 with a hint unless the current role may start an async monitor (a superuser, or a role granted EXECUTE on tidewatch._monitor_slot()).';

-- Monitors name the columns they read. A column renamed under one is renamed in it too, so that
-- ingest goes on (a RENAME names one column: the one missing from a monitor is its old name); a
-- column dropped from under one is refused, since every later INSERT into the table would fail.
CREATE FUNCTION tidewatch._on_alter_table()
RETURNS event_trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    c record;
    kinds text[];
    names text[];
    cols name[];
    n bigint;
    renamed name;
    mon record;
    msg text;
BEGIN
    FOR c IN SELECT DISTINCT d.objid AS relid, d.objsubid, d.object_type
             FROM pg_event_trigger_ddl_commands() d
             WHERE d.classid = 'pg_class'::regclass AND NOT d.in_extension LOOP
        -- What the monitors on this table read and the table no longer has.
        SELECT array_agg(w.kind ORDER BY w.kind, w.name, w.col), array_agg(w.name ORDER BY w.kind, w.name, w.col),
               array_agg(w.col ORDER BY w.kind, w.name, w.col), count(DISTINCT w.col)
        INTO kinds, names, cols, n
        FROM (SELECT 'monitor' AS kind, m.name, x.col
              FROM tidewatch.monitors m,
                   unnest(ARRAY[m.value_column, m.time_column] || m.series_columns || coalesce(m.value_columns, '{}')) x(col)
              WHERE m.relid::oid = c.relid
              UNION ALL
              SELECT 'log monitor', l.name, x.col
              FROM tidewatch.log_monitors l,
                   unnest(ARRAY[l.message_column, l.time_column, l.template_column, l.category_column]) x(col)
              WHERE l.relid::oid = c.relid AND x.col IS NOT NULL
              UNION ALL
              SELECT 'drift monitor', d.name, x.col
              FROM tidewatch.drift_monitors d, unnest(ARRAY[d.time_column] || coalesce(d.columns, '{}')) x(col)
              WHERE d.relid::oid = c.relid) w
        WHERE NOT EXISTS (SELECT 1 FROM pg_attribute a
                          WHERE a.attrelid = c.relid AND a.attname = w.col AND a.attnum > 0 AND NOT a.attisdropped);
        renamed := NULL;
        IF n > 0 AND c.object_type = 'table column' AND c.objsubid > 0 THEN
            SELECT a.attname INTO renamed FROM pg_attribute a
            WHERE a.attrelid = c.relid AND a.attnum = c.objsubid AND NOT a.attisdropped;
        END IF;
        IF renamed IS NOT NULL AND n = 1 THEN
            UPDATE tidewatch.monitors m SET
                value_column = CASE WHEN m.value_column = cols[1] THEN renamed ELSE m.value_column END,
                time_column = CASE WHEN m.time_column = cols[1] THEN renamed ELSE m.time_column END,
                series_columns = array_replace(m.series_columns, cols[1], renamed),
                value_columns = array_replace(m.value_columns, cols[1], renamed)
            WHERE m.relid::oid = c.relid;
            UPDATE tidewatch.log_monitors l SET
                message_column = CASE WHEN l.message_column = cols[1] THEN renamed ELSE l.message_column END,
                time_column = CASE WHEN l.time_column = cols[1] THEN renamed ELSE l.time_column END,
                template_column = CASE WHEN l.template_column = cols[1] THEN renamed ELSE l.template_column END,
                category_column = CASE WHEN l.category_column = cols[1] THEN renamed ELSE l.category_column END
            WHERE l.relid::oid = c.relid;
            UPDATE tidewatch.drift_monitors d SET
                time_column = CASE WHEN d.time_column = cols[1] THEN renamed ELSE d.time_column END,
                columns = array_replace(d.columns, cols[1], renamed)
            WHERE d.relid::oid = c.relid;
            RAISE NOTICE 'column "%" of % is now "%" in the monitors that read it', cols[1], c.relid::regclass, renamed;
        ELSIF n > 0 THEN
            RAISE EXCEPTION 'cannot drop column "%" of %: % "%" reads it', cols[1], c.relid::regclass, kinds[1], names[1]
                USING ERRCODE = '2BP01',
                      DETAIL = 'Every later INSERT into the table would fail in the monitor''s trigger or decoder.',
                      HINT = format('Stop the %s first with tidewatch.%s(%L), or keep the column.', kinds[1],
                                    CASE kinds[1] WHEN 'monitor' THEN 'unmonitor' WHEN 'log monitor' THEN 'unmonitor_logs'
                                                  ELSE 'unmonitor_drift' END, names[1]);
        END IF;
        -- A column type a monitor cannot read (ALTER COLUMN ... TYPE): refused for the same reason.
        FOR mon IN SELECT 'monitor' AS kind, m.name, m.value_column, m.series_columns, m.value_columns, NULL::name AS message
                 FROM tidewatch.monitors m WHERE m.relid::oid = c.relid
                 UNION ALL
                 SELECT 'log monitor', l.name, NULL, NULL, NULL, l.message_column
                 FROM tidewatch.log_monitors l WHERE l.relid::oid = c.relid
                 ORDER BY 1, 2 LOOP
            BEGIN
                IF mon.kind = 'log monitor' THEN
                    PERFORM tidewatch._log_message_type(c.relid::regclass, mon.message);
                ELSIF mon.value_columns IS NOT NULL THEN
                    PERFORM tidewatch._device_columns(c.relid::regclass, mon.value_columns, mon.series_columns);
                ELSE
                    PERFORM tidewatch._series_columns(c.relid::regclass, mon.value_column, mon.series_columns);
                END IF;
            EXCEPTION WHEN OTHERS THEN
                GET STACKED DIAGNOSTICS msg = MESSAGE_TEXT;
                RAISE EXCEPTION 'cannot alter table %: % "%" could not read it any more: %', c.relid::regclass, mon.kind, mon.name, msg
                    USING ERRCODE = '42804',
                          DETAIL = 'Every later INSERT into the table would fail in the monitor''s trigger or decoder.',
                          HINT = format('Stop the %s first with tidewatch.%s(%L), or keep the column''s type.', mon.kind,
                                        CASE mon.kind WHEN 'monitor' THEN 'unmonitor' ELSE 'unmonitor_logs' END, mon.name);
            END;
        END LOOP;
    END LOOP;
END
$$;
CREATE EVENT TRIGGER tidewatch_alter_table ON ddl_command_end WHEN TAG IN ('ALTER TABLE')
    EXECUTE FUNCTION tidewatch._on_alter_table();
COMMENT ON FUNCTION tidewatch._on_alter_table() IS 'Internal: the event trigger tidewatch_alter_table: renames a column in the monitors (anomaly, log, drift) that read it when the column is renamed, and refuses with 2BP01 to drop a column one of them reads.';

-- Keep the catalog in step when users drop hypertables or chunks themselves. The monitors of a
-- dropped table are stopped (their jobs would fail at every run, and unmonitor could not find the
-- table); their episodes, results and counts stay.
CREATE OR REPLACE FUNCTION tidewatch._on_sql_drop()
RETURNS event_trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r record;
BEGIN
    DELETE FROM tidewatch.hypertable h
    USING pg_event_trigger_dropped_objects() d
    WHERE d.classid = 'pg_class'::regclass AND d.objsubid = 0 AND h.relid::oid = d.objid;
    FOR r IN SELECT w.kind, w.name, d.object_identity
             FROM (SELECT 'monitor' AS kind, m.name, m.relid::oid AS relid FROM tidewatch.monitors m
                   UNION ALL SELECT 'log monitor', l.name, l.relid::oid FROM tidewatch.log_monitors l
                   UNION ALL SELECT 'drift monitor', x.name, x.relid::oid FROM tidewatch.drift_monitors x) w
             JOIN pg_event_trigger_dropped_objects() d
               ON d.classid = 'pg_class'::regclass AND d.objsubid = 0 AND d.objid = w.relid
             ORDER BY 1, 2 LOOP
        CASE r.kind
            WHEN 'monitor' THEN PERFORM tidewatch.unmonitor(r.name, true);
            WHEN 'log monitor' THEN PERFORM tidewatch.unmonitor_logs(r.name, true);
            ELSE PERFORM tidewatch.unmonitor_drift(r.name, true);
        END CASE;
        RAISE NOTICE '% "%" of the dropped table % was stopped; what it recorded is kept', r.kind, r.name, r.object_identity;
    END LOOP;
END
$$;
COMMENT ON FUNCTION tidewatch._on_sql_drop() IS 'Internal: removes catalog rows of dropped hypertables and stops the monitors (anomaly, log, drift) of dropped tables, keeping what they recorded.';
-- Monitors of tables dropped under 0.1.0 were left behind (their jobs failed at every run): stop
-- them now, keeping what they recorded.
DO $$
DECLARE
    r record;
BEGIN
    FOR r IN SELECT w.kind, w.name
             FROM (SELECT 'monitor' AS kind, m.name, m.relid::oid AS relid FROM tidewatch.monitors m
                   UNION ALL SELECT 'log monitor', l.name, l.relid::oid FROM tidewatch.log_monitors l
                   UNION ALL SELECT 'drift monitor', x.name, x.relid::oid FROM tidewatch.drift_monitors x) w
             WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_class c WHERE c.oid = w.relid)
             ORDER BY 1, 2 LOOP
        CASE r.kind
            WHEN 'monitor' THEN PERFORM tidewatch.unmonitor(r.name, true);
            WHEN 'log monitor' THEN PERFORM tidewatch.unmonitor_logs(r.name, true);
            ELSE PERFORM tidewatch.unmonitor_drift(r.name, true);
        END CASE;
        RAISE NOTICE '% "%" of a dropped table was stopped; what it recorded is kept', r.kind, r.name;
    END LOOP;
END
$$;
