-- Ticket photos. The image itself lives in Supabase Storage, bucket
-- 'ticket-photos', under the path '<company_id>/<ticket_id>/<file name>';
-- this table holds the metadata and the object path.
--
-- Storage policies below let authenticated members read/write objects whose
-- first folder is the id of a company they belong to.

-- Storage bucket (private).
insert into storage.buckets (id, name, public, file_size_limit, allowed_mime_types)
values (
  'ticket-photos',
  'ticket-photos',
  false,
  20971520, -- 20 MiB
  array['image/jpeg', 'image/png', 'image/webp', 'image/heic', 'image/heif']
)
on conflict (id) do nothing;

-- The company that owns a storage object, from the first folder of its path
-- (storage.foldername). NULL when that folder is not a uuid, so a malformed
-- path never raises inside a policy: it just matches no company.
create or replace function public.storage_object_company_id(name text)
returns uuid
language sql
immutable
set search_path = ''
as $$
  select case
    when (storage.foldername(storage_object_company_id.name))[1]
         ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
    then ((storage.foldername(storage_object_company_id.name))[1])::uuid
  end
$$;

comment on function public.storage_object_company_id(text) is
  'Company id taken from the first folder of a storage object name, or NULL.';

create table public.ticket_photos (
  id           uuid primary key default gen_random_uuid(),
  company_id   uuid not null references public.companies (id) on delete cascade,
  ticket_id    uuid not null,
  bucket_id    text not null default 'ticket-photos' references storage.buckets (id),
  object_path  text not null,
  caption      text,
  content_type text,
  size_bytes   bigint,
  taken_at     timestamptz,
  uploaded_by  uuid default auth.uid() references auth.users (id) on delete set null,
  created_at   timestamptz not null default now(),
  updated_at   timestamptz not null default now(),
  constraint ticket_photos_bucket_check check (bucket_id = 'ticket-photos'),
  -- The object must live under the company's folder (what the storage policies check).
  constraint ticket_photos_object_path_check
    check (public.storage_object_company_id(object_path) = company_id),
  constraint ticket_photos_size_bytes_check check (size_bytes is null or size_bytes >= 0),
  constraint ticket_photos_bucket_id_object_path_key unique (bucket_id, object_path),
  constraint ticket_photos_ticket_fkey
    foreign key (company_id, ticket_id)
    references public.tickets (company_id, id)
    on delete cascade
);

-- bucket_id is covered by ticket_photos_bucket_id_object_path_key.
create index ticket_photos_company_id_ticket_id_idx on public.ticket_photos (company_id, ticket_id);
create index ticket_photos_uploaded_by_idx on public.ticket_photos (uploaded_by);

create trigger ticket_photos_set_updated_at
  before update on public.ticket_photos
  for each row execute function public.set_updated_at();

alter table public.ticket_photos enable row level security;

create policy "ticket_photos: members can read"
  on public.ticket_photos for select to authenticated
  using (public.is_company_member(company_id));

create policy "ticket_photos: members can insert"
  on public.ticket_photos for insert to authenticated
  with check (public.is_company_member(company_id));

create policy "ticket_photos: members can update"
  on public.ticket_photos for update to authenticated
  using (public.is_company_member(company_id))
  with check (public.is_company_member(company_id));

create policy "ticket_photos: members can delete"
  on public.ticket_photos for delete to authenticated
  using (public.is_company_member(company_id));

-- -----------------------------------------------------------------------------
-- Storage policies for bucket 'ticket-photos'
-- -----------------------------------------------------------------------------
create policy "ticket-photos: members can read company objects"
  on storage.objects for select to authenticated
  using (
    bucket_id = 'ticket-photos'
    and public.is_company_member(public.storage_object_company_id(name))
  );

create policy "ticket-photos: members can upload company objects"
  on storage.objects for insert to authenticated
  with check (
    bucket_id = 'ticket-photos'
    and public.is_company_member(public.storage_object_company_id(name))
  );

create policy "ticket-photos: members can update company objects"
  on storage.objects for update to authenticated
  using (
    bucket_id = 'ticket-photos'
    and public.is_company_member(public.storage_object_company_id(name))
  )
  with check (
    bucket_id = 'ticket-photos'
    and public.is_company_member(public.storage_object_company_id(name))
  );

create policy "ticket-photos: members can delete company objects"
  on storage.objects for delete to authenticated
  using (
    bucket_id = 'ticket-photos'
    and public.is_company_member(public.storage_object_company_id(name))
  );
