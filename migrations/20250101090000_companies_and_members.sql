-- Companies (the tenant) and their members.
--
-- A client's Supabase project hosts its main company (created by
-- migrations/seed/client.sql) and may host more. Every business row carries a
-- company_id and row level security scopes it to the members of that company.

-- Shared trigger function: keeps updated_at current on every table that has it.
create or replace function public.set_updated_at()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
  new.updated_at := now();
  return new;
end
$$;

create table public.companies (
  id         uuid primary key default gen_random_uuid(),
  slug       text not null,
  name       text not null,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint companies_slug_key unique (slug),
  constraint companies_slug_format check (slug ~ '^[a-z0-9]([a-z0-9_-]{0,61}[a-z0-9])?$'),
  constraint companies_name_not_blank check (btrim(name) <> '')
);

comment on table public.companies is 'Tenant. All business rows are scoped by company_id.';

create trigger companies_set_updated_at
  before update on public.companies
  for each row execute function public.set_updated_at();

create table public.company_members (
  company_id uuid not null references public.companies (id) on delete cascade,
  user_id    uuid not null references auth.users (id) on delete cascade,
  role       text not null default 'technician',
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint company_members_pkey primary key (company_id, user_id),
  constraint company_members_role_check
    check (role in ('owner', 'admin', 'dispatcher', 'technician'))
);

comment on table public.company_members is 'Which auth.users belong to which company, and with which role.';

-- company_id is covered by the primary key; user_id needs its own index.
create index company_members_user_id_idx on public.company_members (user_id);

create trigger company_members_set_updated_at
  before update on public.company_members
  for each row execute function public.set_updated_at();

-- -----------------------------------------------------------------------------
-- RLS helpers. SECURITY DEFINER so that they can read company_members without
-- going through its own policies (which call these helpers: no recursion).
-- -----------------------------------------------------------------------------
create or replace function public.is_company_member(company_id uuid)
returns boolean
language sql
stable
security definer
set search_path = ''
as $$
  select exists (
    select 1
    from public.company_members m
    where m.company_id = is_company_member.company_id
      and m.user_id = auth.uid()
  )
$$;

comment on function public.is_company_member(uuid) is
  'True when the calling user (auth.uid()) is a member of the company. Used by RLS policies.';

create or replace function public.has_company_role(company_id uuid, roles text[])
returns boolean
language sql
stable
security definer
set search_path = ''
as $$
  select exists (
    select 1
    from public.company_members m
    where m.company_id = has_company_role.company_id
      and m.user_id = auth.uid()
      and m.role = any (has_company_role.roles)
  )
$$;

comment on function public.has_company_role(uuid, text[]) is
  'True when the calling user (auth.uid()) is a member of the company with one of the given roles.';

revoke execute on function public.is_company_member(uuid) from public, anon;
revoke execute on function public.has_company_role(uuid, text[]) from public, anon;
grant execute on function public.is_company_member(uuid) to authenticated, service_role;
grant execute on function public.has_company_role(uuid, text[]) to authenticated, service_role;

-- -----------------------------------------------------------------------------
-- Row level security. Companies themselves are created by the seed or by
-- service_role (which bypasses RLS); members can read them, owners/admins can
-- rename them. anon has no policy, hence sees nothing.
-- -----------------------------------------------------------------------------
alter table public.companies enable row level security;
alter table public.company_members enable row level security;

create policy "companies: members can read"
  on public.companies for select to authenticated
  using (public.is_company_member(id));

create policy "companies: owners and admins can update"
  on public.companies for update to authenticated
  using (public.has_company_role(id, array['owner', 'admin']))
  with check (public.has_company_role(id, array['owner', 'admin']));

create policy "company_members: members can read their company's members"
  on public.company_members for select to authenticated
  using (public.is_company_member(company_id));

create policy "company_members: owners and admins can add members"
  on public.company_members for insert to authenticated
  with check (public.has_company_role(company_id, array['owner', 'admin']));

create policy "company_members: owners and admins can change members"
  on public.company_members for update to authenticated
  using (public.has_company_role(company_id, array['owner', 'admin']))
  with check (public.has_company_role(company_id, array['owner', 'admin']));

create policy "company_members: owners and admins can remove members"
  on public.company_members for delete to authenticated
  using (public.has_company_role(company_id, array['owner', 'admin']));
