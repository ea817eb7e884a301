-- Gives the app's group role (see bootstrap-roles.sql) data access to everything the migrations
-- created, and makes every table and sequence they create later accessible too.
--
-- Run by the release workflow right after `python manage.py migrate`, connected to the app
-- database as the same identity that ran the migrations: ALTER DEFAULT PRIVILEGES applies to
-- objects created by the role that runs it, and only an owner can grant on existing tables.
-- Idempotent: safe on every release.
--
--   psql -d stratus -v ON_ERROR_STOP=1 -f infra/db/grant-app-access.sql [-v app_group=stratus_app]
--
-- The app gets data access only (no CREATE on the schema): schema changes go through the
-- migrations that the release runs, never through the running app.

\set ON_ERROR_STOP on
\if :{?app_group}
\else
\set app_group stratus_app
\endif

GRANT USAGE ON SCHEMA public TO :"app_group";
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO :"app_group";
GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO :"app_group";
ALTER DEFAULT PRIVILEGES IN SCHEMA public
    GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO :"app_group";
ALTER DEFAULT PRIVILEGES IN SCHEMA public
    GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO :"app_group";
