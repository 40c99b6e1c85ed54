-- drift_report and drift_summary: one drift_agg per column over a reference and a current
-- window of a table, all in one scan of the two windows. Identifiers only via regclass and %I,
-- methods only via %L.

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
AS $$
DECLARE
    tcol name := time_column;
    col record;
    kind text;
    m text;
    th float8;
    unknown text;
    names name[] := '{}';
    types regtype[] := '{}';
    aggs text[] := '{}';
    thresholds float8[] := '{}';
    nulls text[] := '{}';
    results tidewatch.drift_result[];
    null_counts bigint[];
BEGIN
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
    IF columns IS NOT NULL THEN
        SELECT string_agg(quote_ident(c), ', ') INTO unknown FROM unnest(columns) c
        WHERE NOT EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = relation AND a.attname = c AND a.attnum > 0 AND NOT a.attisdropped);
        IF unknown IS NOT NULL THEN
            RAISE EXCEPTION 'unknown columns of "%": %', relation, unknown USING ERRCODE = '42703';
        END IF;
    END IF;

    -- One scan of both windows computes every column's test: the select list holds one
    -- drift_agg and two NULL counts per column.
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
        m := coalesce(methods ->> col.attname::text, methods ->> '*', 'auto');
        th := (methods -> 'thresholds' ->> col.attname::text)::float8;
        names := names || col.attname;
        types := types || col.typ;
        thresholds := thresholds || th;
        aggs := aggs || format('tidewatch.drift_agg(%s, %I <@ $2, %L, $3[%s])',
            CASE kind WHEN 'num' THEN format('%I::float8', col.attname) ELSE format('%I::text', col.attname) END,
            tcol, m, cardinality(names));
        nulls := nulls || format('count(*) FILTER (WHERE %I <@ $1 AND %I IS NULL), count(*) FILTER (WHERE %I <@ $2 AND %I IS NULL)',
            tcol, col.attname, tcol, col.attname);
    END LOOP;
    IF cardinality(names) = 0 THEN
        RETURN;
    END IF;
    EXECUTE format('SELECT ARRAY[%s]::tidewatch.drift_result[], ARRAY[%s]::bigint[] FROM %s WHERE (%I <@ $1 OR %I <@ $2)',
                   array_to_string(aggs, ', '), array_to_string(nulls, ', '), relation, tcol, tcol)
        INTO results, null_counts USING reference, current, thresholds;
    FOR i IN 1 .. cardinality(names) LOOP
        column_name := names[i]; column_type := types[i];
        method := results[i].method; statistic := results[i].statistic; p_value := results[i].p_value;
        threshold := results[i].threshold; drifted := results[i].drifted;
        reference_count := results[i].reference_count; current_count := results[i].current_count;
        reference_nulls := null_counts[2 * i - 1]; current_nulls := null_counts[2 * i];
        RETURN NEXT;
    END LOOP;
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
