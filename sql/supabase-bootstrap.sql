-- =============================================================================
-- supabase-bootstrap.sql
--
-- Emulates, on a PLAIN PostgreSQL 15 database, the parts of a Supabase
-- project that intelli's master-mold SQL (migrations/ and migrations/seed/)
-- depends on:
--
--   * roles       anon, authenticated, service_role (NOLOGIN; service_role has
--                 BYPASSRLS) and authenticator (NOLOGIN here, member of the
--                 three API roles, like PostgREST's connecting role)
--   * schema auth     auth.users (a subset of the real columns) and the
--                     auth.uid() / auth.role() / auth.jwt() / auth.email()
--                     helpers, implemented like Supabase's: they read the
--                     request.jwt.claim.<x> / request.jwt.claims settings that
--                     PostgREST sets per request
--   * schema storage  storage.buckets, storage.objects (RLS enabled) and the
--                     storage.foldername() / filename() / extension() helpers
--   * schema extensions  pgcrypto and uuid-ossp when the server has them
--                     (gen_random_uuid() is built into PG13+ anyway)
--   * Supabase's default grants: USAGE on public/auth/storage/extensions and
--     ALTER DEFAULT PRIVILEGES IN SCHEMA public granting ALL on tables,
--     sequences and functions to anon, authenticated and service_role.
--
-- It is used by intelli's tests and by the simulator (a local stand-in for a
-- client's Supabase project). It is NOT meant to be run against a real
-- Supabase project, which already has all of this (and much more).
--
-- Properties:
--   * Idempotent: running it twice on the same database is a no-op the second
--     time.
--   * Concurrency-safe across databases: roles are cluster-global, and many
--     databases on the same server may run this script at the same time, so
--     every CREATE ROLE / GRANT <role> TO <role> is wrapped in a DO block that
--     tolerates the role (or membership) having appeared in the meantime
--     (duplicate_object / unique_violation). Attributes of an existing role are
--     never changed unless they are missing.
--   * Works with or without psql --single-transaction; contains no
--     BEGIN/COMMIT of its own.
--   * Default privileges apply to objects later created BY THE ROLE THAT RAN
--     THIS SCRIPT (as in Supabase, where they are set for role postgres): run
--     the migrations as the same role.
--
-- Not emulated: GoTrue, the Storage API, PostgREST, realtime, graphql, vault,
-- the supabase_* admin roles, or the supabase_migrations schema (intelli
-- creates that itself).
-- =============================================================================

set client_min_messages = warning;

-- -----------------------------------------------------------------------------
-- Roles (cluster-global). Same attributes as Supabase's, except that
-- authenticator is NOLOGIN here (no password is managed by this script).
-- -----------------------------------------------------------------------------
do $bootstrap_roles$
declare
  r record;
begin
  for r in
    select * from (values
      ('anon',          'NOLOGIN NOINHERIT'),
      ('authenticated', 'NOLOGIN NOINHERIT'),
      ('service_role',  'NOLOGIN NOINHERIT BYPASSRLS'),
      ('authenticator', 'NOLOGIN NOINHERIT')
    ) as v(rolname, attrs)
  loop
    if not exists (select 1 from pg_catalog.pg_roles where rolname = r.rolname) then
      begin
        execute format('create role %I %s', r.rolname, r.attrs);
      exception
        -- Another database's bootstrap created it concurrently.
        when duplicate_object or unique_violation then null;
      end;
    end if;
  end loop;

  -- service_role must bypass RLS even if the role pre-existed without it.
  if not exists (select 1 from pg_catalog.pg_roles
                 where rolname = 'service_role' and rolbypassrls) then
    begin
      alter role service_role bypassrls;
    exception
      -- e.g. "tuple concurrently updated" when another session did the same.
      when others then
        if not exists (select 1 from pg_catalog.pg_roles
                       where rolname = 'service_role' and rolbypassrls) then
          raise;
        end if;
    end;
  end if;
end
$bootstrap_roles$;

-- authenticator can switch to the API roles (as PostgREST does).
do $bootstrap_memberships$
declare
  api_role text;
begin
  foreach api_role in array array['anon', 'authenticated', 'service_role'] loop
    if not pg_catalog.pg_has_role('authenticator', api_role, 'MEMBER') then
      begin
        execute format('grant %I to authenticator', api_role);
      exception
        when duplicate_object or unique_violation then null;
      end;
    end if;
  end loop;
end
$bootstrap_memberships$;

-- -----------------------------------------------------------------------------
-- Schemas
-- -----------------------------------------------------------------------------
create schema if not exists extensions;
create schema if not exists auth;
create schema if not exists storage;

-- -----------------------------------------------------------------------------
-- Extensions (only if the server ships them; nothing in migrations/ needs
-- them: gen_random_uuid() is built in).
-- -----------------------------------------------------------------------------
do $bootstrap_extensions$
declare
  ext text;
begin
  foreach ext in array array['pgcrypto', 'uuid-ossp'] loop
    if exists (select 1 from pg_catalog.pg_available_extensions where name = ext)
       and not exists (select 1 from pg_catalog.pg_extension where extname = ext) then
      execute format('create extension if not exists %I with schema extensions', ext);
    end if;
  end loop;
end
$bootstrap_extensions$;

-- -----------------------------------------------------------------------------
-- auth
-- -----------------------------------------------------------------------------
create table if not exists auth.users (
  instance_id          uuid,
  id                   uuid primary key default gen_random_uuid(),
  aud                  varchar(255),
  role                 varchar(255),
  email                varchar(255),
  encrypted_password   varchar(255),
  email_confirmed_at   timestamptz,
  invited_at           timestamptz,
  confirmation_sent_at timestamptz,
  recovery_sent_at     timestamptz,
  last_sign_in_at      timestamptz,
  raw_app_meta_data    jsonb,
  raw_user_meta_data   jsonb,
  is_super_admin       boolean,
  created_at           timestamptz default now(),
  updated_at           timestamptz default now(),
  phone                text unique default null,
  phone_confirmed_at   timestamptz,
  confirmed_at         timestamptz generated always as (least(email_confirmed_at, phone_confirmed_at)) stored,
  banned_until         timestamptz,
  deleted_at           timestamptz,
  is_sso_user          boolean not null default false,
  is_anonymous         boolean not null default false
);

comment on table auth.users is
  'Emulation of Supabase auth.users (subset of columns) - see sql/supabase-bootstrap.sql';

create index if not exists users_instance_id_idx on auth.users (instance_id);
create index if not exists users_is_anonymous_idx on auth.users (is_anonymous);
-- Supabase: unique email among non-SSO users.
create unique index if not exists users_email_partial_key
  on auth.users (email) where (is_sso_user = false);

-- Same definitions as Supabase's auth helpers: the legacy per-claim setting
-- (request.jwt.claim.sub) wins, otherwise the JSON claims object.
create or replace function auth.uid()
returns uuid
language sql
stable
as $$
  select
    coalesce(
      nullif(current_setting('request.jwt.claim.sub', true), ''),
      (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub')
    )::uuid
$$;

create or replace function auth.role()
returns text
language sql
stable
as $$
  select
    coalesce(
      nullif(current_setting('request.jwt.claim.role', true), ''),
      (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'role')
    )::text
$$;

create or replace function auth.email()
returns text
language sql
stable
as $$
  select
    coalesce(
      nullif(current_setting('request.jwt.claim.email', true), ''),
      (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'email')
    )::text
$$;

create or replace function auth.jwt()
returns jsonb
language sql
stable
as $$
  select
    coalesce(
      nullif(current_setting('request.jwt.claim', true), ''),
      nullif(current_setting('request.jwt.claims', true), '')
    )::jsonb
$$;

-- -----------------------------------------------------------------------------
-- storage
-- -----------------------------------------------------------------------------
create table if not exists storage.buckets (
  id                 text primary key,
  name               text not null,
  owner              uuid,
  owner_id           text,
  public             boolean default false,
  avif_autodetection boolean default false,
  file_size_limit    bigint,
  allowed_mime_types text[],
  type               text not null default 'STANDARD'
                       constraint buckets_type_check check (type in ('STANDARD', 'ANALYTICS')),
  created_at         timestamptz default now(),
  updated_at         timestamptz default now()
);

create unique index if not exists bname on storage.buckets (name);

create table if not exists storage.objects (
  id               uuid primary key default gen_random_uuid(),
  bucket_id        text references storage.buckets (id),
  name             text,
  owner            uuid,
  owner_id         text,
  created_at       timestamptz default now(),
  updated_at       timestamptz default now(),
  last_accessed_at timestamptz default now(),
  metadata         jsonb,
  user_metadata    jsonb,
  version          text,
  path_tokens      text[] generated always as (string_to_array(name, '/')) stored
);

create unique index if not exists bucketid_objname on storage.objects (bucket_id, name);
create index if not exists name_prefix_search on storage.objects (name text_pattern_ops);

alter table storage.buckets enable row level security;
alter table storage.objects enable row level security;

-- Same semantics as Supabase's helpers:
--   foldername('a/b/c.png') = {a,b}, filename(...) = 'c.png', extension(...) = 'png'
create or replace function storage.foldername(name text)
returns text[]
language plpgsql
immutable
as $$
declare
  _parts text[];
begin
  select string_to_array(name, '/') into _parts;
  return _parts[1:array_length(_parts, 1) - 1];
end
$$;

create or replace function storage.filename(name text)
returns text
language plpgsql
immutable
as $$
declare
  _parts text[];
begin
  select string_to_array(name, '/') into _parts;
  return _parts[array_length(_parts, 1)];
end
$$;

create or replace function storage.extension(name text)
returns text
language plpgsql
immutable
as $$
declare
  _parts text[];
  _filename text;
begin
  select string_to_array(name, '/') into _parts;
  select _parts[array_length(_parts, 1)] into _filename;
  return reverse(split_part(reverse(_filename), '.', 1));
end
$$;

-- -----------------------------------------------------------------------------
-- Grants, as in a Supabase project
-- -----------------------------------------------------------------------------
grant usage on schema public     to anon, authenticated, service_role;
grant usage on schema extensions to anon, authenticated, service_role;
grant usage on schema auth       to anon, authenticated, service_role;
grant usage on schema storage    to anon, authenticated, service_role;

grant all on table storage.buckets to anon, authenticated, service_role;
grant all on table storage.objects to anon, authenticated, service_role;

alter default privileges in schema public grant all on tables    to anon, authenticated, service_role;
alter default privileges in schema public grant all on sequences to anon, authenticated, service_role;
alter default privileges in schema public grant all on functions to anon, authenticated, service_role;

reset client_min_messages;
