-- drift_report and drift_summary: one drift_agg per column over a reference and a current
-- window of a table, all in one scan of the two windows. Identifiers only via regclass and %I,
-- methods only via %L.

-- Raise 42703 naming every column of `columns` that `relation` does not have.
CREATE FUNCTION tidewatch._check_columns(relation regclass, columns name[])
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    unknown text;
BEGIN
    SELECT string_agg(quote_ident(c), ', ') INTO unknown FROM unnest(columns) c
    WHERE NOT EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = relation AND a.attname = c AND a.attnum > 0 AND NOT a.attisdropped);
    IF unknown IS NOT NULL THEN
        RAISE EXCEPTION 'unknown columns of "%": %', relation, unknown USING ERRCODE = '42703';
    END IF;
END
$$;

-- The methods and thresholds of one column from drift_report's methods argument: the column's
-- entry (or "*"), a method name or an array of names; thresholds."column" a number (for every
-- method of the column) or an array (one per method). Checked here so that a typo fails before
-- the scan.
CREATE FUNCTION tidewatch._drift_methods(methods jsonb, column_name name, OUT names text[], OUT thresholds float8[])
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    spec jsonb := coalesce(methods -> column_name::text, methods -> '*', '"auto"');
    th jsonb := methods -> 'thresholds' -> column_name::text;
BEGIN
    IF jsonb_typeof(spec) = 'string' THEN
        names := ARRAY[spec #>> '{}'];
    ELSIF jsonb_typeof(spec) = 'array' AND jsonb_array_length(spec) > 0
          AND NOT EXISTS (SELECT 1 FROM jsonb_array_elements(spec) x WHERE jsonb_typeof(x) <> 'string') THEN
        names := ARRAY(SELECT x FROM jsonb_array_elements_text(spec) x);
    ELSE
        RAISE EXCEPTION 'invalid methods for column "%": %', column_name, spec
            USING ERRCODE = '22023', HINT = 'Give a method name or an array of them, e.g. {"value": ["ks", "psi", "wasserstein"]}.';
    END IF;
    IF th IS NULL OR jsonb_typeof(th) = 'null' THEN
        thresholds := array_fill(NULL::float8, ARRAY[cardinality(names)]);
    ELSIF jsonb_typeof(th) = 'number' THEN
        thresholds := array_fill((th #>> '{}')::float8, ARRAY[cardinality(names)]);
    ELSIF jsonb_typeof(th) = 'array' AND jsonb_array_length(th) = cardinality(names) THEN
        thresholds := ARRAY(SELECT (x #>> '{}')::float8 FROM jsonb_array_elements(th) x);
    ELSE
        RAISE EXCEPTION 'invalid thresholds for column "%": %', column_name, th
            USING ERRCODE = '22023', HINT = 'Give one number, or an array with one number (or null) per method of the column.';
    END IF;
END
$$;

-- A predicate "the column is in the range", written with >= / > / < / <= on the bounds (passed as
-- parameters $lo and $hi), so that the planner prunes the chunks outside it (it cannot with <@).
CREATE FUNCTION tidewatch._in_range(col name, r tstzrange, lo integer, hi integer)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
RETURN CASE WHEN isempty(r) THEN 'false' ELSE
    '(' || concat_ws(' AND ',
        CASE WHEN NOT lower_inf(r) THEN format('%I %s $%s', col, CASE WHEN lower_inc(r) THEN '>=' ELSE '>' END, lo) END,
        CASE WHEN NOT upper_inf(r) THEN format('%I %s $%s', col, CASE WHEN upper_inc(r) THEN '<=' ELSE '<' END, hi) END,
        'true') || ')' END;

CREATE FUNCTION tidewatch.drift_report(
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

CREATE FUNCTION tidewatch.drift_summary(
    relation regclass,
    reference tstzrange,
    current tstzrange,
    columns name[] DEFAULT NULL,
    time_column name DEFAULT NULL,
    methods jsonb DEFAULT '{}',
    drift_share float8 DEFAULT 0.5)
RETURNS TABLE (number_of_columns integer, number_of_drifted_columns integer, share_of_drifted_columns float8,
               dataset_drift boolean)
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT count(*)::integer, count(*) FILTER (WHERE r.drifted)::integer,
           count(*) FILTER (WHERE r.drifted)::float8 / nullif(count(*), 0),
           coalesce(count(*) FILTER (WHERE r.drifted)::float8 / nullif(count(*), 0) >= drift_share, false)
    FROM tidewatch.drift_report(relation, reference, current, columns, time_column, methods) r
$$;

-- Saved reference profiles (the "prepare reference data" step): one row per column.
CREATE TABLE tidewatch.references (
    name        text        NOT NULL,
    column_name name        NOT NULL,
    column_type regtype     NOT NULL,
    relation    regclass,
    time_range  tstzrange   NOT NULL,
    n           bigint      NOT NULL,
    nulls       bigint      NOT NULL,
    exact       boolean     NOT NULL,
    profile     bytea       NOT NULL,
    owner       regrole     NOT NULL DEFAULT current_user::regrole,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (name, column_name)
);
COMMENT ON TABLE tidewatch.references IS 'Saved drift reference profiles, one row per (reference name, column): exact values up to 100,000 (or 10,000 distinct), beyond that a quantile sketch with documented error.';
GRANT SELECT, INSERT, UPDATE, DELETE ON tidewatch.references TO PUBLIC;
ALTER TABLE tidewatch.references ENABLE ROW LEVEL SECURITY;
CREATE POLICY references_owner ON tidewatch.references
    USING (true) WITH CHECK (pg_catalog.pg_has_role(current_user, owner, 'MEMBER'));
SELECT pg_catalog.pg_extension_config_dump('tidewatch.references', '');

CREATE FUNCTION tidewatch.save_reference(name text, relation regclass, "window" tstzrange, columns name[] DEFAULT NULL)
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

-- drift_report against a saved reference: one scan of the current window per column.
CREATE FUNCTION tidewatch.drift_report(
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
