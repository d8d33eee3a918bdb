-- The two database roles of Kobatela (README "Operations"), run once by a
-- superuser on a new cluster: scripts/services.sh (tests, benchmarks) and the
-- PostgreSQL container's init script (docker/postgres-init/10-roles.sh).
--   psql -v owner=kobatela_owner -v app=kobatela_app -v owner_password=… \
--        -v app_password=… -v db=kobatela -f scripts/db-roles.sql
-- owner: owns the database and every table; `manage.py migrate` runs as it
--        (DATABASE_OWNER_URL). CREATEDB only so that tests can make their
--        throwaway databases; drop it in production if you like.
-- app:   what web, worker and beat connect as (DATABASE_URL). No ownership,
--        no superuser: it cannot disable triggers, set
--        session_replication_role, or change audit and ledger rows (after each
--        migrate the owner grants it DML on every table but only SELECT and
--        INSERT on the append-only ones: kobatela.core.roles).
\set ON_ERROR_STOP on
SELECT format('CREATE ROLE %I LOGIN CREATEDB PASSWORD %L', :'owner', NULLIF(:'owner_password', '')) \gexec
SELECT format('CREATE ROLE %I LOGIN PASSWORD %L', :'app', NULLIF(:'app_password', '')) \gexec
SELECT format('CREATE DATABASE %I OWNER %I', :'db', :'owner')
  WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'db') \gexec
ALTER DATABASE :"db" OWNER TO :"owner";
\connect :"db"
ALTER SCHEMA public OWNER TO :"owner";
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO :"app";
-- Every table and sequence the owner creates from now on (any app's migrations):
ALTER DEFAULT PRIVILEGES FOR ROLE :"owner" IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO :"app";
ALTER DEFAULT PRIVILEGES FOR ROLE :"owner" IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO :"app";
