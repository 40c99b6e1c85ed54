-- Jobs: procedures (job_id integer, config jsonb) run on a schedule by the tidewatch background
-- worker (see docs/jobs.md), or by hand with CALL tidewatch.run_job(id). A failing job records its
-- error and is retried with exponential backoff; it never stops the scheduler.

-- Run one job now and record the outcome. With from_scheduler, also move next_start on.
-- Errors of the job are caught (in a subtransaction), recorded and reported as a WARNING.
CREATE FUNCTION tidewatch._execute_job(job_id integer, from_scheduler boolean, job_search_path text DEFAULT NULL)
RETURNS boolean
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    j tidewatch.job;
    t0 timestamptz;
    t1 timestamptz;
    ok boolean := true;
    msg text;
    state text;
    detail text;
    fails integer;
    delay interval;
    kind "char";
BEGIN
    SELECT * INTO j FROM tidewatch.job WHERE id = job_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'job % not found', job_id
            USING ERRCODE = '42704', HINT = 'List jobs with SELECT * FROM tidewatch.jobs;';
    END IF;
    SELECT prokind INTO kind FROM pg_proc WHERE oid = j.proc;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'procedure of job % no longer exists', job_id
            USING ERRCODE = '42883', HINT = 'Delete the job with tidewatch.delete_job() or point it elsewhere.';
    END IF;

    t0 := clock_timestamp();
    INSERT INTO tidewatch.job_stat AS s (job_id, last_start, last_status)
        VALUES (job_id, t0, 'running')
        ON CONFLICT ON CONSTRAINT job_stat_pkey DO UPDATE SET last_start = t0, last_status = 'running';

    -- The job runs with the caller's search_path (the owner's default under the scheduler),
    -- not with the pinned one of this function.
    PERFORM set_config('search_path', coalesce(job_search_path, '"$user", public'), true);
    BEGIN
        IF kind = 'p' THEN
            EXECUTE format('CALL %s(%s, %L::jsonb)', j.proc::regproc, job_id, j.config);
        ELSE
            EXECUTE format('SELECT %s(%s, %L::jsonb)', j.proc::regproc, job_id, j.config);
        END IF;
    EXCEPTION WHEN OTHERS THEN
        GET STACKED DIAGNOSTICS msg = MESSAGE_TEXT, state = RETURNED_SQLSTATE, detail = PG_EXCEPTION_DETAIL;
        ok := false;
    END;
    PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
    t1 := clock_timestamp();

    UPDATE tidewatch.job_stat s SET
        last_finish = t1,
        last_successful_finish = CASE WHEN ok THEN t1 ELSE s.last_successful_finish END,
        last_status = CASE WHEN ok THEN 'success' ELSE 'failed' END,
        last_duration = t1 - t0,
        last_error = CASE WHEN ok THEN NULL ELSE msg END,
        last_error_sqlstate = CASE WHEN ok THEN NULL ELSE state END,
        total_runs = s.total_runs + 1,
        total_successes = s.total_successes + ok::integer,
        total_failures = s.total_failures + (NOT ok)::integer,
        consecutive_failures = CASE WHEN ok THEN 0 ELSE s.consecutive_failures + 1 END
    WHERE s.job_id = j.id
    RETURNING s.consecutive_failures INTO fails;

    IF ok THEN
        IF from_scheduler THEN
            -- Keep the cadence; if we fell behind, start again from now.
            UPDATE tidewatch.job SET next_start = greatest(j.next_start + j.schedule_interval, t1)
            WHERE id = j.id;
        END IF;
    ELSE
        -- Exponential backoff: retry_period * 2^(failures-1), at most 5 schedule intervals.
        delay := least(j.retry_period * power(2, least(fails - 1, 20)), j.schedule_interval * 5);
        IF j.max_retries IS NOT NULL AND fails > j.max_retries THEN
            UPDATE tidewatch.job SET scheduled = false WHERE id = j.id;
            RAISE WARNING 'job % (%) failed % times in a row, more than max_retries = %: unscheduled',
                j.id, j.application_name, fails, j.max_retries
                USING HINT = format('Fix the cause, then SELECT tidewatch.alter_job(%s, scheduled => true);', j.id);
        ELSIF from_scheduler THEN
            UPDATE tidewatch.job SET next_start = t1 + delay WHERE id = j.id;
        END IF;
        RAISE WARNING 'job % (%) failed: %', j.id, j.application_name, msg
            USING DETAIL = format('SQLSTATE %s%s', state, coalesce('; ' || nullif(detail, ''), '')),
                  HINT = format('The error is kept in tidewatch.job_stats; the next try is in %s.', delay);
    END IF;
    RETURN ok;
END
$$;

-- No SET search_path here: it passes the caller's search_path on to the job.
CREATE PROCEDURE tidewatch.run_job(job_id integer)
LANGUAGE plpgsql
AS $$
BEGIN
    PERFORM tidewatch._execute_job(job_id, false, pg_catalog.current_setting('search_path'));
END
$$;

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

CREATE FUNCTION tidewatch.delete_job(job_id integer, if_exists boolean DEFAULT false)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    DELETE FROM tidewatch.job j WHERE j.id = delete_job.job_id;
    IF NOT FOUND THEN
        IF if_exists THEN
            RAISE NOTICE 'job % not found, skipping', job_id;
        ELSE
            RAISE EXCEPTION 'job % not found', job_id
                USING ERRCODE = '42704', HINT = 'List jobs with SELECT * FROM tidewatch.jobs; pass if_exists => true to ignore this.';
        END IF;
    END IF;
END
$$;

-- What the scheduler runs next: due jobs, oldest first. Locked rows are skipped, so several
-- schedulers (or a manual run) never run the same job twice at once.
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

-- Called by the scheduler when a job's runner process died without recording an outcome
-- (a crash or FATAL error): record it as a failure and back off.
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

CREATE VIEW tidewatch.job_stats AS
SELECT j.id AS job_id,
       j.application_name,
       s.last_start,
       s.last_finish,
       s.last_successful_finish,
       coalesce(s.last_status, 'never run') AS last_status,
       s.last_duration,
       s.last_error,
       s.last_error_sqlstate,
       CASE WHEN j.scheduled THEN j.next_start END AS next_start,
       coalesce(s.total_runs, 0) AS total_runs,
       coalesce(s.total_successes, 0) AS total_successes,
       coalesce(s.total_failures, 0) AS total_failures,
       coalesce(s.consecutive_failures, 0) AS consecutive_failures
FROM tidewatch.job j
LEFT JOIN tidewatch.job_stat s ON s.job_id = j.id;

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

-- The views read the catalog with the caller's rights: a role sees its own jobs (all jobs for
-- members of pg_read_all_stats).
ALTER VIEW tidewatch.jobs SET (security_invoker = true);
ALTER VIEW tidewatch.job_stats SET (security_invoker = true);
GRANT SELECT ON tidewatch.jobs, tidewatch.job_stats TO PUBLIC;
