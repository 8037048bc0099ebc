-- =============================================================================
-- migrations/seed/client.sql — per-client seed
--
-- Run by intelli ONCE per client, after all migrations, inside one
-- transaction in which the tool has first run
--
--     select set_config('intelli.client_slug',  $1, true),
--            set_config('intelli.display_name', $2, true),
--            set_config('intelli.domain',       $3, true),
--            set_config('intelli.site_url',     $4, true);
--
-- (is_local = true: the values vanish at the end of the transaction).
--
-- Settings read (ONLY through current_setting(); never interpolated):
--   intelli.client_slug   the client's slug; becomes companies.slug
--                         (must match ^[a-z0-9]([a-z0-9_-]{0,61}[a-z0-9])?$)
--   intelli.display_name  human name; companies.name and
--                         company_settings.display_name (blank -> the slug)
--   intelli.domain        the client's domain; company_settings.domain
--                         (blank -> NULL)
--   intelli.site_url      the client's site URL; company_settings.site_url
--                         (blank -> NULL)
--
-- current_setting() is called without missing_ok, so a missing setting aborts
-- the seed with "unrecognized configuration parameter".
--
-- Idempotent: running it again creates no duplicates and overwrites nothing
-- (every insert is ON CONFLICT DO NOTHING), relying on:
--   companies_slug_key                      unique (slug)
--   company_settings_pkey                   primary key (company_id)
--   ticket_statuses_company_id_code_key     unique (company_id, code)
--   service_categories_company_id_code_key  unique (company_id, code)
-- =============================================================================

insert into public.companies (slug, name)
values (
  current_setting('intelli.client_slug'),
  coalesce(nullif(btrim(current_setting('intelli.display_name')), ''),
           current_setting('intelli.client_slug'))
)
on conflict (slug) do nothing;

insert into public.company_settings (company_id, display_name, domain, site_url)
select
  c.id,
  coalesce(nullif(btrim(current_setting('intelli.display_name')), ''), c.slug),
  nullif(btrim(current_setting('intelli.domain')), ''),
  nullif(btrim(current_setting('intelli.site_url')), '')
from public.companies c
where c.slug = current_setting('intelli.client_slug')
on conflict (company_id) do nothing;

insert into public.ticket_statuses (company_id, code, label, sort_order, is_closed, color)
select c.id, s.code, s.label, s.sort_order, s.is_closed, s.color
from public.companies c
cross join (values
  ('new',         'New',         10, false, '#64748b'),
  ('scheduled',   'Scheduled',   20, false, '#2563eb'),
  ('in_progress', 'In progress', 30, false, '#d97706'),
  ('on_hold',     'On hold',     40, false, '#9333ea'),
  ('completed',   'Completed',   50, true,  '#16a34a'),
  ('cancelled',   'Cancelled',   60, true,  '#dc2626')
) as s(code, label, sort_order, is_closed, color)
where c.slug = current_setting('intelli.client_slug')
on conflict (company_id, code) do nothing;

insert into public.service_categories (company_id, code, name, description, sort_order)
select c.id, s.code, s.name, s.description, s.sort_order
from public.companies c
cross join (values
  ('plumbing',            'Plumbing',            'Leaks, drains, fixtures, water heaters',        10),
  ('heating',             'Heating',             'Boilers, furnaces, radiators, heat pumps',      20),
  ('air_conditioning',    'Air conditioning',    'AC units, ventilation, refrigeration',          30),
  ('electrical',          'Electrical',          'Wiring, panels, outlets, lighting',             40),
  ('appliance_repair',    'Appliance repair',    'Household and commercial appliances',           50),
  ('general_maintenance', 'General maintenance', 'Planned and preventive maintenance visits',     60),
  ('inspection',          'Inspection',          'Safety checks, surveys and certifications',     70),
  ('installation',        'Installation',        'New equipment and fixture installation',        80)
) as s(code, name, description, sort_order)
where c.slug = current_setting('intelli.client_slug')
on conflict (company_id, code) do nothing;
