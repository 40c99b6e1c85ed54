-- Isolation of derived data (row-level security keyed on the source relation).
--
-- Everything Tidewatch derives from a table (models, monitors and their states, anomaly
-- episodes, drift references and results, log templates, counts and classifiers, events) is
-- visible only to roles that may SELECT from that table (tidewatch._readable). The policies below
-- are RESTRICTIVE and FOR SELECT: they narrow what each role reads, through the tables, the
-- views (security_invoker) and every function that runs with the caller's rights; writes keep the
-- rules they had (owners change their own configuration). Superusers and the extension's owner
-- bypass row-level security: the background workers, the scheduler's jobs (run as their owners,
-- who can read their tables) and the monitors' SECURITY DEFINER functions see everything.
--
-- What has no source relation is visible to the role that made it (and its members): a model
-- trained from arrays, a reference saved from arrays, a classifier trained from a query. Rows whose
-- source relation was dropped are visible to superusers only. The built-in log miner 'default' is
-- shared by every role that mines into it: its templates are visible to all; give confidential
-- logs a miner of their own (tidewatch.create_log_miner), which only its owner and the readers of
-- the tables it monitors see.

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
CREATE POLICY monitor_pulls_read ON tidewatch.monitor_pulls FOR SELECT USING (true);
CREATE POLICY monitor_pulls_insert ON tidewatch.monitor_pulls FOR INSERT WITH CHECK (tidewatch._may_write(monitor));
CREATE POLICY monitor_pulls_update ON tidewatch.monitor_pulls FOR UPDATE USING (tidewatch._may_write(monitor));
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
ALTER TABLE tidewatch.monitor_pulls ENABLE ROW LEVEL SECURITY;
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
CREATE POLICY monitor_pulls_source ON tidewatch.monitor_pulls AS RESTRICTIVE FOR SELECT
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
