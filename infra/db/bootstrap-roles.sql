-- Creates, once, what the app needs on the Flexible Server before any migration runs:
--   * the application database, owned by the identity that runs the migrations (so that
--     identity can create tables in its public schema on PostgreSQL 15+ without any grant);
--   * the PostgreSQL role of the app's user-assigned identity, which both slots run as, bound to
--     the identity's Entra object id; the role name is the identity's name, the user in
--     DATABASE_URL (the same in both slots, so a swap changes nothing about database access);
--   * a NOLOGIN group role holding it, which receives the table privileges (grant-app-access.sql).
--
-- Run by the release (scripts/azure_platform.py) with psql, connected to the "postgres" database
-- as an Entra administrator of the server (the deploy identity). Idempotent: safe on every release.
--
--   psql -d postgres -v ON_ERROR_STOP=1 -f infra/db/bootstrap-roles.sql \
--     -v dbname=stratus -v app_role=<identity name> -v app_oid=<identity object id> \
--     [-v app_group=stratus_app]
--
-- pgaadauth_create_principal_with_oid is Azure's function for Entra principals; binding by object
-- id needs no Microsoft Graph lookup, so a service principal can run it.

\set ON_ERROR_STOP on
\if :{?app_group}
\else
\set app_group stratus_app
\endif

SELECT format('CREATE DATABASE %I', :'dbname')
WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'dbname')
\gexec

SELECT format(
    'SELECT * FROM pgaadauth_create_principal_with_oid(%L, %L, %L, false, false)',
    :'app_role', :'app_oid', 'service'
)
WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'app_role')
\gexec

SELECT format('CREATE ROLE %I NOLOGIN', :'app_group')
WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'app_group')
\gexec

-- Re-granting an existing membership only raises a NOTICE.
GRANT :"app_group" TO :"app_role";
