-- Per-company lookup tables. Defaults are inserted by migrations/seed/client.sql.

create table public.service_categories (
  id          uuid primary key default gen_random_uuid(),
  company_id  uuid not null references public.companies (id) on delete cascade,
  code        text not null,
  name        text not null,
  description text,
  sort_order  integer not null default 0,
  is_active   boolean not null default true,
  created_at  timestamptz not null default now(),
  updated_at  timestamptz not null default now(),
  constraint service_categories_company_id_code_key unique (company_id, code),
  constraint service_categories_company_id_id_key unique (company_id, id),
  constraint service_categories_code_format check (code ~ '^[a-z0-9_]+$'),
  constraint service_categories_name_not_blank check (btrim(name) <> '')
);

create trigger service_categories_set_updated_at
  before update on public.service_categories
  for each row execute function public.set_updated_at();

create table public.ticket_statuses (
  id         uuid primary key default gen_random_uuid(),
  company_id uuid not null references public.companies (id) on delete cascade,
  code       text not null,
  label      text not null,
  sort_order integer not null default 0,
  is_closed  boolean not null default false,
  color      text,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint ticket_statuses_company_id_code_key unique (company_id, code),
  constraint ticket_statuses_code_format check (code ~ '^[a-z0-9_]+$'),
  constraint ticket_statuses_label_not_blank check (btrim(label) <> '')
);

create trigger ticket_statuses_set_updated_at
  before update on public.ticket_statuses
  for each row execute function public.set_updated_at();

alter table public.service_categories enable row level security;
alter table public.ticket_statuses enable row level security;

create policy "service_categories: members can read"
  on public.service_categories for select to authenticated
  using (public.is_company_member(company_id));

create policy "service_categories: owners and admins can insert"
  on public.service_categories for insert to authenticated
  with check (public.has_company_role(company_id, array['owner', 'admin']));

create policy "service_categories: owners and admins can update"
  on public.service_categories for update to authenticated
  using (public.has_company_role(company_id, array['owner', 'admin']))
  with check (public.has_company_role(company_id, array['owner', 'admin']));

create policy "service_categories: owners and admins can delete"
  on public.service_categories for delete to authenticated
  using (public.has_company_role(company_id, array['owner', 'admin']));

create policy "ticket_statuses: members can read"
  on public.ticket_statuses for select to authenticated
  using (public.is_company_member(company_id));

create policy "ticket_statuses: owners and admins can insert"
  on public.ticket_statuses for insert to authenticated
  with check (public.has_company_role(company_id, array['owner', 'admin']));

create policy "ticket_statuses: owners and admins can update"
  on public.ticket_statuses for update to authenticated
  using (public.has_company_role(company_id, array['owner', 'admin']))
  with check (public.has_company_role(company_id, array['owner', 'admin']));

create policy "ticket_statuses: owners and admins can delete"
  on public.ticket_statuses for delete to authenticated
  using (public.has_company_role(company_id, array['owner', 'admin']));
