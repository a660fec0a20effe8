-- First-start initialisation of the pgvector/pgvector:pg15 container
-- (docker-compose.yml mounts this into /docker-entrypoint-initdb.d/). It runs
-- once, as the superuser, when the data volume is empty. The native
-- equivalent is scripts/db-setup.sh; keep the two in step.
--
--   konstruct_owner  owns the database and runs migrations; creates test DBs
--   konstruct_app    the app's role: owns nothing, cannot bypass RLS
--   temporal         Temporal's own role; auto-setup creates its databases
--                    (temporal, temporal_visibility) with it
-- Passwords are local development defaults.

CREATE ROLE konstruct_owner LOGIN CREATEDB NOSUPERUSER NOBYPASSRLS NOCREATEROLE PASSWORD 'konstruct';
CREATE ROLE konstruct_app LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE PASSWORD 'konstruct';
CREATE ROLE temporal LOGIN CREATEDB NOSUPERUSER NOCREATEROLE PASSWORD 'temporal';

-- pgvector is not a trusted extension: only a superuser can create it. In
-- template1 it is inherited by every database created later (test databases).
\connect template1
CREATE EXTENSION IF NOT EXISTS vector;

\connect postgres
CREATE DATABASE konstruct OWNER konstruct_owner;
GRANT CONNECT ON DATABASE konstruct TO konstruct_app;

\connect konstruct
CREATE EXTENSION IF NOT EXISTS vector;
-- PG15: schema public belongs to pg_database_owner (konstruct_owner here);
-- PUBLIC keeps USAGE but has no CREATE.
GRANT USAGE ON SCHEMA public TO konstruct_app;
