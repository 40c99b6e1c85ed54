-- Hypertables on plain PostgreSQL 15 range partitioning.
--
-- A hypertable is a table partitioned BY RANGE (time_column) into chunks of chunk_interval,
-- aligned with tidewatch.time_bucket (in UTC), plus a DEFAULT partition that catches any row
-- no chunk covers, so an INSERT or COPY never fails for want of a chunk. Maintenance (a job)
-- creates chunks ahead of time and moves rows out of the default partition into proper chunks:
-- each move is one transaction that deletes the rows from the default partition and inserts
-- them into a new, not yet attached table, then attaches it, so readers see every row at every
-- moment (before the commit in the default partition, after it in the chunk).
--
-- All functions run with search_path = pg_catalog, pg_temp and TimeZone = UTC, and take
-- identifiers only as regclass or through format('%I').

-- The range-partitioned tables of a hypertable: the table itself, or, with space partitioning
-- (the table is PARTITION BY HASH), its hash partitions in remainder order.
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

-- Range of every partition (chunk or default partition) of a hypertable, parsed from its
-- partition bound. NULL bounds mean MINVALUE/MAXVALUE; the default partitions have is_default
-- and NULL bounds. parent is the range-partitioned table it belongs to: the hypertable, or with
-- space partitioning one of its hash partitions.
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

-- The catalog row of a hypertable, or a clear error.
CREATE FUNCTION tidewatch._hypertable(relation regclass)
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

-- Name for a new chunk: <table>_p<start> (at most 63 bytes), unique in the schema.
CREATE FUNCTION tidewatch._chunk_name(relation regclass, range_start timestamptz, chunk_interval interval)
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

-- The distribution column of a Citus distributed (hash) table; NULL for any other table, and
-- on servers without Citus.
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

-- Refuse a monitor on a Citus table where it cannot work: a sync monitor's trigger is not allowed
-- on a distributed table, and an async monitor needs a hash-distributed table (each node scores
-- its own shards: on a reference table every node would score every row).
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

-- Is this server a Citus coordinator? (false without Citus)
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

-- Create (action 'create') or drop ('drop') monitor's copy on every Citus worker; each worker
-- commits on its own, as run_command_on_workers does. Raise an error naming the workers where it
-- failed when strict; otherwise a best effort.
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

-- Make sure a chunk of parent (the hypertable, or one of its hash partitions) covers ts: if
-- none does, create one for time_bucket(chunk_interval, ts), clipped to the neighbouring
-- partitions, move the rows of that range out of parent's default partition into it, and
-- attach it. Returns the number of rows moved (0 if already covered).
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

-- Make sure chunks cover ts in every range-partitioned table of the hypertable (itself, or each
-- hash partition). Returns the number of rows moved out of default partitions.
CREATE FUNCTION tidewatch._ensure_chunk(relation regclass, ts timestamptz)
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

-- Maintenance of one hypertable: chunks for now and chunks_ahead intervals ahead, then up to
-- max_chunks chunks for rows waiting in the default partitions (one per hash partition with
-- space partitioning).
CREATE FUNCTION tidewatch.run_maintenance(relation regclass, max_chunks integer DEFAULT 1000)
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

-- Turn a plain table into a partitioned one with the same name, keeping every row, default,
-- constraint, index, comment, grant, owner and sequence. Runs inside the caller's transaction.
-- With space_columns, the new table is PARTITION BY HASH (space_columns) into space_partitions
-- partitions <table>_h<i>, each PARTITION BY RANGE (time_column).
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

-- The space-partitioning columns of create_hypertable's arguments, checked: they exist, are not
-- the time column, can be hashed, and come with number_partitions in 1..1024. '{}' for none.
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

CREATE FUNCTION tidewatch.show_chunks(relation regclass, older_than timestamptz DEFAULT NULL, newer_than timestamptz DEFAULT NULL)
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

CREATE FUNCTION tidewatch.show_chunks(relation regclass, older_than interval, newer_than interval DEFAULT NULL)
RETURNS SETOF regclass
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT tidewatch.show_chunks(relation, now() - older_than, now() - newer_than) $$;

CREATE FUNCTION tidewatch.drop_chunks(relation regclass, older_than timestamptz DEFAULT NULL, newer_than timestamptz DEFAULT NULL)
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

CREATE FUNCTION tidewatch.drop_chunks(relation regclass, older_than interval, newer_than interval DEFAULT NULL)
RETURNS SETOF text
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT tidewatch.drop_chunks(relation, now() - older_than, now() - newer_than) $$;

CREATE PROCEDURE tidewatch.policy_maintenance(job_id integer, config jsonb)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    rel regclass;
    r record;
BEGIN
    SELECT relid INTO rel FROM tidewatch.hypertable WHERE id = (config ->> 'hypertable_id')::integer;
    IF rel IS NULL THEN
        RAISE EXCEPTION 'job %: hypertable % does not exist', job_id, config ->> 'hypertable_id' USING ERRCODE = '42P01';
    END IF;
    SELECT * INTO r FROM tidewatch.run_maintenance(rel, coalesce((config ->> 'max_chunks')::integer, 1000));
    IF r.rows_moved > 0 OR r.chunks_created > 0 THEN
        RAISE LOG 'tidewatch maintenance of %: % chunks created, % rows moved, % left in default',
            rel, r.chunks_created, r.rows_moved, r.rows_left_in_default;
    END IF;
END
$$;

CREATE PROCEDURE tidewatch.policy_retention(job_id integer, config jsonb)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    rel regclass;
    n integer;
BEGIN
    SELECT relid INTO rel FROM tidewatch.hypertable WHERE id = (config ->> 'hypertable_id')::integer;
    IF rel IS NULL THEN
        RAISE EXCEPTION 'job %: hypertable % does not exist', job_id, config ->> 'hypertable_id' USING ERRCODE = '42P01';
    END IF;
    SELECT count(*) INTO n FROM tidewatch.drop_chunks(rel, older_than => (config ->> 'drop_after')::interval);
    IF n > 0 THEN
        RAISE LOG 'tidewatch retention of %: dropped % chunks older than %', rel, n, config ->> 'drop_after';
    END IF;
END
$$;

CREATE FUNCTION tidewatch.add_retention_policy(relation regclass, drop_after interval,
                                               if_not_exists boolean DEFAULT false,
                                               schedule_interval interval DEFAULT NULL)
RETURNS integer
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    h tidewatch.hypertable;
    existing tidewatch.job;
    new_id integer;
    every interval;
BEGIN
    h := tidewatch._hypertable(relation);
    IF drop_after IS NULL OR drop_after <= interval '0' THEN
        RAISE EXCEPTION 'invalid drop_after: %', coalesce(drop_after::text, 'NULL')
            USING ERRCODE = '22023', HINT = 'Use a positive interval, e.g. ''7 days''.';
    END IF;
    SELECT * INTO existing FROM tidewatch.job
        WHERE hypertable_id = h.id AND proc = 'tidewatch.policy_retention(integer, jsonb)'::regprocedure;
    IF FOUND THEN
        IF if_not_exists THEN
            IF (existing.config ->> 'drop_after')::interval <> drop_after THEN
                RAISE WARNING 'retention policy of "%" already exists with drop_after %, not %',
                    relation, existing.config ->> 'drop_after', drop_after;
            ELSE
                RAISE NOTICE 'retention policy of "%" already exists, skipping', relation;
            END IF;
            RETURN existing.id;
        END IF;
        RAISE EXCEPTION 'retention policy of "%" already exists', relation
            USING ERRCODE = '42710', DETAIL = format('Job %s drops chunks older than %s.', existing.id, existing.config ->> 'drop_after'),
                  HINT = 'Remove it with tidewatch.remove_retention_policy() first, or pass if_not_exists => true.';
    END IF;
    every := coalesce(schedule_interval, least(h.chunk_interval, interval '1 day'));
    INSERT INTO tidewatch.job (application_name, proc, schedule_interval, config, retry_period, hypertable_id, owner)
        VALUES (format('Retention of %s', relation), 'tidewatch.policy_retention(integer, jsonb)'::regprocedure, every,
                jsonb_build_object('hypertable_id', h.id, 'drop_after', drop_after::text),
                least(every, interval '5 minutes'), h.id,
                (SELECT c.relowner::regrole FROM pg_class c WHERE c.oid = relation))
        RETURNING id INTO new_id;
    RETURN new_id;
END
$$;

CREATE FUNCTION tidewatch.remove_retention_policy(relation regclass, if_exists boolean DEFAULT false)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    h tidewatch.hypertable;
BEGIN
    h := tidewatch._hypertable(relation);
    DELETE FROM tidewatch.job WHERE hypertable_id = h.id AND proc = 'tidewatch.policy_retention(integer, jsonb)'::regprocedure;
    IF NOT FOUND THEN
        IF if_exists THEN
            RAISE NOTICE 'hypertable "%" has no retention policy, skipping', relation;
        ELSE
            RAISE EXCEPTION 'hypertable "%" has no retention policy', relation
                USING ERRCODE = '42704', HINT = 'Pass if_exists => true to ignore this.';
        END IF;
    END IF;
END
$$;

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

-- Keep the catalog in step when users drop hypertables or chunks themselves. The monitors of a
-- dropped table are stopped (their jobs would fail at every run, and unmonitor could not find the
-- table); their episodes, results and counts stay.
CREATE FUNCTION tidewatch._on_sql_drop()
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
CREATE EVENT TRIGGER tidewatch_sql_drop ON sql_drop EXECUTE FUNCTION tidewatch._on_sql_drop();

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

-- The views read the catalog with the caller's rights (its row-level security applies).
ALTER VIEW tidewatch.chunks SET (security_invoker = true);
ALTER VIEW tidewatch.hypertables SET (security_invoker = true);
GRANT SELECT ON tidewatch.chunks, tidewatch.hypertables TO PUBLIC;
