-- Roles for running Tidewatch behind its HTTP service and Grafana. Not part of the extension
-- (roles are cluster-wide, an extension must not create them): run it as a superuser, once per
-- database that holds the extension, after CREATE EXTENSION tidewatch. It is idempotent.
--
--   psql -d DB -v reader_password=SECRET1 -v service_password=SECRET2 -f sql/roles.sql
--
-- Without the password variables the roles are created (or kept) without changing passwords.
--
-- tidewatch_reader   read-only, for Grafana: Tidewatch's catalog (episodes, states, drift results,
--                    templates, ...), its functions (PUBLIC may execute them), and SELECT on the tables named in
--                    -v reader_tables='public.metrics, public.logs' (none by default).
-- tidewatch_service  what tidewatch-service needs: everything the reader has, plus INSERT/SELECT
--                    on the tables it ingests into (it creates them when missing, so it may
--                    CREATE in schema public).
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
GRANT SELECT ON ALL TABLES IN SCHEMA tidewatch TO tidewatch_reader;
GRANT USAGE ON SCHEMA public TO tidewatch_reader;
GRANT CREATE ON SCHEMA public TO tidewatch_service;

\if :{?reader_tables}
SELECT format('GRANT SELECT ON %s TO tidewatch_reader', string_agg(trim(t)::regclass::text, ', '))
FROM unnest(string_to_array(:'reader_tables', ',')) AS u(t) \gexec
\endif
