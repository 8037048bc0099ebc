-- Customers (who the work is for) and technicians (who does it).
--
-- Both tables expose a unique (company_id, id) so that later tables can use
-- composite foreign keys that guarantee a ticket/estimate only points at rows
-- of its own company (foreign key checks bypass RLS, so this is enforced here).

create table public.customers (
  id            uuid primary key default gen_random_uuid(),
  company_id    uuid not null references public.companies (id) on delete cascade,
  name          text not null,
  email         text,
  phone         text,
  address_line1 text,
  address_line2 text,
  city          text,
  region        text,
  postal_code   text,
  country       text,
  notes         text,
  created_at    timestamptz not null default now(),
  updated_at    timestamptz not null default now(),
  constraint customers_company_id_id_key unique (company_id, id),
  constraint customers_name_not_blank check (btrim(name) <> '')
);

-- company_id is covered by customers_company_id_id_key (leading column).
create index customers_company_id_name_idx on public.customers (company_id, name);

create trigger customers_set_updated_at
  before update on public.customers
  for each row execute function public.set_updated_at();

create table public.technicians (
  id          uuid primary key default gen_random_uuid(),
  company_id  uuid not null references public.companies (id) on delete cascade,
  -- Optional login for the technician (mobile app user).
  user_id     uuid references auth.users (id) on delete set null,
  full_name   text not null,
  email       text,
  phone       text,
  color       text,
  hourly_rate numeric(12, 2),
  is_active   boolean not null default true,
  created_at  timestamptz not null default now(),
  updated_at  timestamptz not null default now(),
  constraint technicians_company_id_id_key unique (company_id, id),
  constraint technicians_company_id_user_id_key unique (company_id, user_id),
  constraint technicians_full_name_not_blank check (btrim(full_name) <> ''),
  constraint technicians_hourly_rate_check check (hourly_rate is null or hourly_rate >= 0)
);

create index technicians_user_id_idx on public.technicians (user_id);

create trigger technicians_set_updated_at
  before update on public.technicians
  for each row execute function public.set_updated_at();

alter table public.customers enable row level security;
alter table public.technicians enable row level security;

create policy "customers: members can read"
  on public.customers for select to authenticated
  using (public.is_company_member(company_id));

create policy "customers: members can insert"
  on public.customers for insert to authenticated
  with check (public.is_company_member(company_id));

create policy "customers: members can update"
  on public.customers for update to authenticated
  using (public.is_company_member(company_id))
  with check (public.is_company_member(company_id));

create policy "customers: members can delete"
  on public.customers for delete to authenticated
  using (public.is_company_member(company_id));

create policy "technicians: members can read"
  on public.technicians for select to authenticated
  using (public.is_company_member(company_id));

create policy "technicians: owners, admins and dispatchers can insert"
  on public.technicians for insert to authenticated
  with check (public.has_company_role(company_id, array['owner', 'admin', 'dispatcher']));

create policy "technicians: owners, admins and dispatchers can update"
  on public.technicians for update to authenticated
  using (public.has_company_role(company_id, array['owner', 'admin', 'dispatcher']))
  with check (public.has_company_role(company_id, array['owner', 'admin', 'dispatcher']));

create policy "technicians: owners, admins and dispatchers can delete"
  on public.technicians for delete to authenticated
  using (public.has_company_role(company_id, array['owner', 'admin', 'dispatcher']));
