"""A canonical description of everything the extension defines in a database, to compare a fresh
install with an upgraded one line by line: every member object of the extension (pg_depend
deptype 'e') with its definition, plus the columns, constraints, indexes, triggers, policies,
comments and privileges of its tables, and the extension's dump configuration. OIDs, and names
generated from them, are left out."""

SNAPSHOT = r"""
WITH members AS (
    SELECT d.classid, d.objid FROM pg_depend d
    WHERE d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'
      AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'tidewatch')
), funcs AS (
    SELECT p.* FROM pg_proc p JOIN members m ON m.classid = 'pg_proc'::regclass AND m.objid = p.oid
), rels AS (
    SELECT c.* FROM pg_class c JOIN members m ON m.classid = 'pg_class'::regclass AND m.objid = c.oid
), tabs AS (
    -- the extension's tables and their partitions (the chunks of its own hypertables)
    SELECT c.* FROM pg_class c WHERE c.relnamespace = 'tidewatch'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm', 'S')
)
SELECT line FROM (
    SELECT format('function %s %s returns %s lang=%s vol=%s strict=%s parallel=%s secdef=%s leakproof=%s cost=%s rows=%s config=%s kind=%s body=%s',
                  f.oid::regprocedure, pg_get_function_arguments(f.oid), pg_get_function_result(f.oid),
                  (SELECT lanname FROM pg_language l WHERE l.oid = f.prolang), f.provolatile, f.proisstrict,
                  f.proparallel, f.prosecdef, f.proleakproof, f.procost, f.prorows, f.proconfig, f.prokind,
                  CASE WHEN f.prolang = (SELECT oid FROM pg_language WHERE lanname = 'c') THEN f.prosrc ELSE md5(coalesce(f.prosrc, '') || coalesce(f.probin, '')) END) AS line
    FROM funcs f
    UNION ALL
    SELECT format('aggregate %s sfunc=%s stype=%s finalfunc=%s combine=%s serial=%s deserial=%s init=%s msfunc=%s mfinal=%s',
                  a.aggfnoid::regprocedure, a.aggtransfn::regproc, a.aggtranstype::regtype, a.aggfinalfn::regproc,
                  a.aggcombinefn::regproc, a.aggserialfn::regproc, a.aggdeserialfn::regproc, a.agginitval,
                  a.aggmtransfn::regproc, a.aggmfinalfn::regproc)
    FROM pg_aggregate a JOIN funcs f ON f.oid = a.aggfnoid
    UNION ALL
    SELECT format('relation %s kind=%s persistence=%s partitioned_by=%s options=%s rls=%s force_rls=%s',
                  c.oid::regclass, c.relkind, c.relpersistence,
                  CASE WHEN c.relkind = 'p' THEN pg_get_partkeydef(c.oid) END, c.reloptions, c.relrowsecurity, c.relforcerowsecurity)
    FROM tabs c
    UNION ALL
    SELECT format('column %s.%s %s notnull=%s default=%s identity=%s generated=%s', c.oid::regclass, a.attname,
                  format_type(a.atttypid, a.atttypmod), a.attnotnull, pg_get_expr(ad.adbin, ad.adrelid), a.attidentity, a.attgenerated)
    FROM tabs c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
    LEFT JOIN pg_attrdef ad ON ad.adrelid = c.oid AND ad.adnum = a.attnum
    UNION ALL
    SELECT format('constraint %s %s %s', c.oid::regclass, co.conname, pg_get_constraintdef(co.oid))
    FROM tabs c JOIN pg_constraint co ON co.conrelid = c.oid
    UNION ALL
    SELECT format('index %s %s', c.oid::regclass, regexp_replace(pg_get_indexdef(i.indexrelid), 'INDEX \S+ ON', 'INDEX ON'))
    FROM tabs c JOIN pg_index i ON i.indrelid = c.oid
    UNION ALL
    SELECT format('view %s %s', c.oid::regclass, md5(pg_get_viewdef(c.oid)))
    FROM tabs c WHERE c.relkind IN ('v', 'm')
    UNION ALL
    SELECT format('trigger %s %s %s', c.oid::regclass, t.tgname, pg_get_triggerdef(t.oid))
    FROM tabs c JOIN pg_trigger t ON t.tgrelid = c.oid AND NOT t.tgisinternal
    UNION ALL
    SELECT format('policy %s %s %s %s roles=%s using=%s check=%s', p.schemaname || '.' || p.tablename, p.policyname,
                  p.permissive, p.cmd, p.roles, p.qual, p.with_check)
    FROM pg_policies p WHERE p.schemaname = 'tidewatch'
    UNION ALL
    SELECT format('acl relation %s %s', c.oid::regclass, c.relacl) FROM tabs c
    UNION ALL
    SELECT format('acl function %s %s', f.oid::regprocedure, f.proacl) FROM funcs f
    UNION ALL
    SELECT format('comment function %s %s', f.oid::regprocedure, md5(coalesce(obj_description(f.oid, 'pg_proc'), '')))
    FROM funcs f
    UNION ALL
    SELECT format('comment relation %s %s', c.oid::regclass, md5(coalesce(obj_description(c.oid, 'pg_class'), ''))) FROM tabs c
    UNION ALL
    SELECT format('type %s %s', t.oid::regtype, t.typtype)
    FROM pg_type t JOIN members m ON m.classid = 'pg_type'::regclass AND m.objid = t.oid
    UNION ALL
    SELECT format('member %s %s', m.classid::regclass, pg_describe_object(m.classid, m.objid, 0))
    FROM members m WHERE m.classid NOT IN ('pg_proc'::regclass, 'pg_class'::regclass, 'pg_type'::regclass)
    UNION ALL
    SELECT format('member relation %s %s', c.oid::regclass, c.relkind) FROM rels c
    UNION ALL
    SELECT format('dump %s %s', x.cfg::regclass, coalesce(x.cond, ''))
    FROM pg_extension e, unnest(e.extconfig, e.extcondition) AS x(cfg, cond) WHERE e.extname = 'tidewatch'
    UNION ALL
    SELECT format('schema acl %s', n.nspacl) FROM pg_namespace n WHERE n.nspname = 'tidewatch'
) s
ORDER BY line
"""


def snapshot(psql):
    """The lines of the description, with `psql(sql)` returning rows."""
    return [r[0] for r in psql(SNAPSHOT)]
