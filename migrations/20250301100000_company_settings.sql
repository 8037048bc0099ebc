-- One settings row per company. The client's row is created by
-- migrations/seed/client.sql from the intelli.* settings.

create table public.company_settings (
  company_id             uuid primary key references public.companies (id) on delete cascade,
  display_name           text not null,
  domain                 text,
  site_url               text,
  timezone               text not null default 'UTC',
  currency               text not null default 'USD',
  locale                 text not null default 'en-US',
  default_tax_rate       numeric(6, 4) not null default 0,
  estimate_validity_days integer not null default 30,
  support_email          text,
  support_phone          text,
  logo_path              text,
  created_at             timestamptz not null default now(),
  updated_at             timestamptz not null default now(),
  constraint company_settings_display_name_not_blank check (btrim(display_name) <> ''),
  constraint company_settings_currency_check check (currency ~ '^[A-Z]{3}$'),
  constraint company_settings_default_tax_rate_check
    check (default_tax_rate >= 0 and default_tax_rate <= 1),
  constraint company_settings_estimate_validity_days_check
    check (estimate_validity_days between 1 and 365)
);

comment on table public.company_settings is 'Per-company configuration (one row per company).';

-- Rejects unknown time zone names (e.g. 'Mars/Olympus') with a clear error.
create or replace function public.validate_company_settings()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
  begin
    perform now() at time zone new.timezone;
  exception when invalid_parameter_value then
    raise exception 'unknown time zone: %', new.timezone
      using errcode = 'check_violation',
            constraint = 'company_settings_timezone_check';
  end;
  return new;
end
$$;

revoke execute on function public.validate_company_settings() from public, anon;

create trigger company_settings_validate
  before insert or update of timezone on public.company_settings
  for each row execute function public.validate_company_settings();

create trigger company_settings_set_updated_at
  before update on public.company_settings
  for each row execute function public.set_updated_at();

alter table public.company_settings enable row level security;

create policy "company_settings: members can read"
  on public.company_settings for select to authenticated
  using (public.is_company_member(company_id));

create policy "company_settings: owners and admins can insert"
  on public.company_settings for insert to authenticated
  with check (public.has_company_role(company_id, array['owner', 'admin']));

create policy "company_settings: owners and admins can update"
  on public.company_settings for update to authenticated
  using (public.has_company_role(company_id, array['owner', 'admin']))
  with check (public.has_company_role(company_id, array['owner', 'admin']));
