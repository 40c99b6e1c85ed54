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
