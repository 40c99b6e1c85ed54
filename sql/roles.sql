-- Roles for running Tidewatch behind its HTTP service and Grafana. Not part of the extension
-- (roles are cluster-wide, an extension must not create them): run it as a superuser, once per
-- database that holds the extension, after CREATE EXTENSION tidewatch. It is idempotent.
--
--   psql -d DB -v reader_password=SECRET1 -v service_password=SECRET2 -f sql/roles.sql
--
-- Without the password variables the roles are created (or kept) without changing passwords.
-- docs/service.md shows the whole set-up (passwords, pg_hba.conf, the service's settings).
--
-- tidewatch_reader   read-only, for Grafana: Tidewatch's catalog (episodes, states, drift results,
--                    templates, ...), its functions (PUBLIC may execute them), the tables that
--                    tidewatch_service creates (metrics, logs: by default privileges), and the
--                    tables named in -v reader_tables='public.metrics, public.logs' (none by default).
-- tidewatch_service  what tidewatch-service needs: everything the reader has, plus
--                    - CREATE in schema public and TEMPORARY in the database: it creates its metrics
--                      and logs hypertables when missing (it owns them, so it may put monitors on
--                      them), and stages each request's points in a temporary table;
--                    - EXECUTE on tidewatch._monitor_slot(): the replication slot of async monitors
--                      (without it, TIDEWATCH_MONITOR=auto falls back to a sync monitor);
--                    - INSERT/UPDATE on tidewatch.anomalies and tidewatch.events, UPDATE on
--                      tidewatch.monitor_state: the monitors it owns record episodes and events as
--                      their owner (the log monitor's triggers, the missing-data job);
--                    - INSERT/UPDATE on tidewatch.notifications, tidewatch.notification_outbox and
--                      tidewatch.notification_attempts: it stores the alerts Grafana posts and
--                      delivers them (the reader may read them, PUBLIC may not).
--                    It is not a superuser and has no other privilege.
--
-- Both have search_path = tidewatch, public set on the role itself (not per database), so that
-- Grafana's generated time_bucket(...) resolves to tidewatch.time_bucket.
\set ON_ERROR_STOP on

SELECT NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'tidewatch_reader') AS need_reader,
       NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'tidewatch_service') AS need_service \gset
\if :need_reader
CREATE ROLE tidewatch_reader LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION;
\endif
\if :need_service
CREATE ROLE tidewatch_service LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION;
\endif
\if :{?reader_password}
ALTER ROLE tidewatch_reader PASSWORD :'reader_password';
\endif
\if :{?service_password}
ALTER ROLE tidewatch_service PASSWORD :'service_password';
\endif

ALTER ROLE tidewatch_reader SET search_path = tidewatch, public;
ALTER ROLE tidewatch_service SET search_path = tidewatch, public;
-- Grafana's queries and the service's reads never need more than this; a runaway panel query
-- is stopped instead of holding a connection.
ALTER ROLE tidewatch_reader SET statement_timeout = '30s';
ALTER ROLE tidewatch_reader SET default_transaction_read_only = on;

GRANT tidewatch_reader TO tidewatch_service;
GRANT CONNECT ON DATABASE :"DBNAME" TO tidewatch_reader;
GRANT USAGE ON SCHEMA tidewatch TO tidewatch_reader;
-- Tidewatch's catalog through its tables and views only: not their partitions, which row-level
-- security does not cover when read directly (sql/isolation.sql). The reader sees there what
-- was derived from the tables it may read.
SELECT format('GRANT SELECT ON %s TO tidewatch_reader', string_agg(c.oid::regclass::text, ', '))
FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'tidewatch' AND c.relkind IN ('r', 'p', 'v') AND NOT c.relispartition \gexec
-- Earlier versions of this script granted the partitions too: take that back.
SELECT format('REVOKE ALL ON %s FROM tidewatch_reader', string_agg(c.oid::regclass::text, ', '))
FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'tidewatch' AND c.relkind IN ('r', 'p') AND c.relispartition HAVING count(*) > 0 \gexec
-- Every job's state, for the operations dashboard, as pg_stat_activity shows every session's.
GRANT pg_read_all_stats TO tidewatch_reader;
GRANT USAGE ON SCHEMA public TO tidewatch_reader;

-- The service.
GRANT CONNECT, TEMPORARY ON DATABASE :"DBNAME" TO tidewatch_service;
GRANT CREATE ON SCHEMA public TO tidewatch_service;
GRANT EXECUTE ON FUNCTION tidewatch._monitor_slot() TO tidewatch_service;
GRANT INSERT, UPDATE ON tidewatch.anomalies, tidewatch.events TO tidewatch_service;
GRANT UPDATE ON tidewatch.monitor_state TO tidewatch_service;
GRANT USAGE ON SEQUENCE tidewatch.anomalies_id_seq, tidewatch.events_id_seq TO tidewatch_service;
GRANT INSERT, UPDATE ON tidewatch.notifications, tidewatch.notification_outbox, tidewatch.notification_attempts
    TO tidewatch_service;
GRANT USAGE ON SEQUENCE tidewatch.notifications_id_seq, tidewatch.notification_outbox_id_seq TO tidewatch_service;

-- The reader sees what the service creates (Grafana charts the metrics and logs tables): tables
-- created later by default privileges, tables already there now.
ALTER DEFAULT PRIVILEGES FOR ROLE tidewatch_service IN SCHEMA public GRANT SELECT ON TABLES TO tidewatch_reader;
SELECT format('GRANT SELECT ON %s TO tidewatch_reader', c.oid::regclass)
FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relowner = 'tidewatch_service'::regrole AND n.nspname = 'public' AND c.relkind IN ('r', 'p')
  AND NOT c.relispartition \gexec

\if :{?reader_tables}
SELECT format('GRANT SELECT ON %s TO tidewatch_reader', string_agg(trim(t)::regclass::text, ', '))
FROM unnest(string_to_array(:'reader_tables', ',')) AS u(t) \gexec
\endif
