-- time_bucket variants written in SQL on top of the Rust ones. They are inlined by the planner.
-- Semantics follow TimescaleDB: the offset is subtracted before bucketing and added back after,
-- with PostgreSQL's own interval arithmetic; the timezone variant buckets local wall-clock time.
-- They carry no SET search_path so that the planner can inline them; instead every operator
-- and function in their bodies is schema-qualified.

CREATE FUNCTION tidewatch.time_bucket(bucket_width interval, ts timestamptz, "offset" interval)
RETURNS timestamptz LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
AS $$ SELECT tidewatch.time_bucket(bucket_width, ts OPERATOR(pg_catalog.-) "offset") OPERATOR(pg_catalog.+) "offset" $$;

CREATE FUNCTION tidewatch.time_bucket(bucket_width interval, ts timestamp, "offset" interval)
RETURNS timestamp LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
AS $$ SELECT tidewatch.time_bucket(bucket_width, ts OPERATOR(pg_catalog.-) "offset") OPERATOR(pg_catalog.+) "offset" $$;

CREATE FUNCTION tidewatch.time_bucket(bucket_width interval, ts date, "offset" interval)
RETURNS date LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
AS $$ SELECT (tidewatch.time_bucket(bucket_width, (ts OPERATOR(pg_catalog.-) "offset")::date) OPERATOR(pg_catalog.+) "offset")::date $$;

CREATE FUNCTION tidewatch.time_bucket(bucket_width interval, ts timestamptz, timezone text,
                                      origin timestamptz DEFAULT NULL, "offset" interval DEFAULT NULL)
RETURNS timestamptz LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT CASE
        WHEN bucket_width IS NULL OR ts IS NULL OR timezone IS NULL THEN NULL
        WHEN origin IS NULL THEN
            (tidewatch.time_bucket(bucket_width, (ts AT TIME ZONE timezone) OPERATOR(pg_catalog.-) coalesce("offset", interval '0'))
             OPERATOR(pg_catalog.+) coalesce("offset", interval '0')) AT TIME ZONE timezone
        ELSE
            (tidewatch.time_bucket(bucket_width, (ts AT TIME ZONE timezone) OPERATOR(pg_catalog.-) coalesce("offset", interval '0'),
                                   origin AT TIME ZONE timezone)
             OPERATOR(pg_catalog.+) coalesce("offset", interval '0')) AT TIME ZONE timezone
    END
$$;
