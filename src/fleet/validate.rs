//! Loading a fleet directory and every offline check on it.
//!
//! Checks never stop at the first problem: each pushes a diagnostic and goes on, so one
//! `intelli validate` run lists everything a pull request has to fix.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use super::merge::{self, Merged};
use super::model::{
    ClientFile, ClientSettings, ClientState, FleetCloudflare, FleetFile, INSTANCE_SIZES, REGIONS,
};
use super::source::{self, SourceMap};
use super::{Bucket, ClientSpec, FLEET_FILE, Fleet, env_value, placement, secrets};
use crate::diag::{Diagnostic, Diagnostics};

/// Longest Pages project name Cloudflare accepts (the name is also the `*.pages.dev` label).
pub const PAGES_NAME_MAX: usize = 58;
/// Build-time variables intelli sets itself; a fleet file may not set them.
pub const PROVIDED_ENV: &[&str] = &[
    "VITE_SUPABASE_URL",
    "VITE_SUPABASE_ANON_KEY",
    "VITE_SUPABASE_PUBLISHABLE_KEY",
    "VITE_CLIENT_NAME",
];

pub(super) fn load(dir: &Path) -> Result<Fleet, Diagnostics> {
    let mut diags = Diagnostics::default();
    let fleet_path = dir.join(FLEET_FILE);
    let fleet = read_parse::<FleetFile>(&fleet_path, &mut diags);

    let client_files = client_files(dir, &mut diags);

    let clients: Vec<_> = client_files
        .iter()
        .filter_map(|p| read_parse::<ClientFile>(p, &mut diags))
        .collect();

    let root = dir
        .canonicalize()
        .ok()
        .and_then(|d| d.parent().map(Path::to_path_buf))
        .unwrap_or_else(|| PathBuf::from("."));

    let Some(fleet) = fleet else {
        diags.sort();
        return Err(diags);
    };
    check_fleet(&fleet.value, &fleet.map, &root, &mut diags);

    let mut specs = BTreeMap::new();
    let mut maps: BTreeMap<PathBuf, SourceMap> = BTreeMap::new();
    let mut unique = Unique::default();
    // Every client file that parsed, valid or not: a wave naming one is not "unknown".
    let labelled: Vec<(String, BTreeMap<String, String>)> = clients
        .iter()
        .map(|p| {
            (
                p.value.client.clone(),
                p.value.labels.clone().unwrap_or_default(),
            )
        })
        .collect();
    super::rollout::check(&fleet.value, &fleet.map, &labelled, &mut diags);
    for parsed in clients {
        let spec = check_client(
            &fleet.value,
            &fleet.map,
            &parsed.value,
            &parsed.map,
            &mut diags,
        );
        unique.check(&fleet.value, &parsed.value, &parsed.map, &maps, &mut diags);
        if let Some(spec) = spec {
            specs.insert(spec.slug.clone(), spec);
        }
        maps.insert(parsed.map.file.clone(), parsed.map);
    }
    maps.insert(fleet.map.file.clone(), fleet.map);

    if !diags.is_empty() {
        diags.sort();
        return Err(diags);
    }
    let fleet = Fleet {
        dir: dir.to_path_buf(),
        root,
        settings: fleet.value,
        clients: specs,
        maps,
    };
    // The fleet alone must fit its accounts (plan checks again with the projects they hold).
    placement::place(
        &fleet,
        &fleet.cloudflare_accounts(),
        &placement::Inventory::new(),
    )?;
    Ok(fleet)
}

/// Read and parse one file; secrets are looked for even when the typed parse
/// fails, so a leaked key is reported in the same run as a typo next to it.
fn read_parse<T: serde::de::DeserializeOwned + schemars::JsonSchema>(
    path: &Path,
    diags: &mut Diagnostics,
) -> Option<source::Parsed<T>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            diags.push(Diagnostic::new(
                path,
                None,
                "",
                format!("cannot read file: {e}"),
            ));
            return None;
        }
    };
    let (map, value) = source::parse_keep_map::<T>(path, &text);
    check_secrets(&map, diags);
    match value {
        Ok(value) => Some(source::Parsed { value, map }),
        Err(d) => {
            diags.push(d);
            None
        }
    }
}

fn check_secrets(map: &SourceMap, diags: &mut Diagnostics) {
    for node in map.scalars() {
        let source::NodeKind::Scalar(value) = &node.kind else {
            continue;
        };
        let key = node.path.rsplit(['.', '[']).next().unwrap_or("");
        if let Some(what) = secrets::looks_like_secret(key, value) {
            diags.push(Diagnostic::new(
                &map.file,
                Some(node.pos),
                node.path.clone(),
                format!(
                    "this value looks like {what}; secrets must never be written in fleet files — \
                     reference an environment variable instead: `${{env:NAME}}`"
                ),
            ));
        }
    }
}

fn check_fleet(f: &FleetFile, map: &SourceMap, root: &Path, diags: &mut Diagnostics) {
    if !is_resource_name(&f.name_prefix) {
        diags.push(map.diag(
            "name_prefix",
            "must start with a lowercase letter or digit and contain only lowercase letters, digits and hyphens",
        ));
    }
    if let Err(e) = check_domain(&f.cloudflare.zone) {
        diags.push(map.diag("cloudflare.zone", e));
    }
    match check_domain(&f.base_domain) {
        Err(e) => diags.push(map.diag("base_domain", e)),
        Ok(()) if !in_zone(&f.base_domain, &f.cloudflare.zone) => diags.push(map.diag(
            "base_domain",
            format!(
                "`{}` is not inside the zone `{}` (cloudflare.zone)",
                f.base_domain, f.cloudflare.zone
            ),
        )),
        Ok(()) => {}
    }
    let org = &f.supabase.organization_slug;
    if org.is_empty()
        || !org
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        diags.push(map.diag(
            "supabase.organization_slug",
            "must match ^[\\w-]+$ (letters, digits, _ and -)",
        ));
    }
    check_accounts(&f.cloudflare, map, diags);
    if !is_resource_name(&f.cloudflare.production_branch.replace(['/', '.', '_'], "-")) {
        diags.push(map.diag("cloudflare.production_branch", "is not a valid branch name"));
    }
    if f.parallelism == 0 {
        diags.push(map.diag("parallelism", "must be at least 1"));
    }
    for (field, rel, want_dir) in [
        ("frontend.dir", &f.frontend.dir, true),
        ("migrations.dir", &f.migrations.dir, true),
        ("migrations.seed", &f.migrations.seed, false),
    ] {
        let p = root.join(rel);
        let ok = if want_dir { p.is_dir() } else { p.is_file() };
        if !ok {
            let kind = if want_dir { "directory" } else { "file" };
            diags.push(map.diag(field, format!("{kind} `{rel}` does not exist (paths are relative to the repository root, the parent of fleet/)")));
        }
    }
    if f.frontend.install_command.trim().is_empty() {
        diags.push(map.diag("frontend.install_command", "must not be empty"));
    }
    if f.frontend.build_command.trim().is_empty() {
        diags.push(map.diag("frontend.build_command", "must not be empty"));
    }
    check_settings(&f.defaults, map, "defaults.", diags);
    super::rollout::check_checks(&f.checks, map, diags);
}

/// Checks on the mergeable settings, wherever they are written (`prefix` is `defaults.` in fleet.yaml).
fn check_settings(s: &ClientSettings, map: &SourceMap, prefix: &str, diags: &mut Diagnostics) {
    let sup = s.supabase.clone().unwrap_or_default();
    if let Some(r) = &sup.region {
        check_one_of(
            r,
            REGIONS,
            "region",
            map,
            &format!("{prefix}supabase.region"),
            diags,
        );
    }
    if let Some(i) = &sup.instance_size {
        check_one_of(
            i,
            INSTANCE_SIZES,
            "instance size",
            map,
            &format!("{prefix}supabase.instance_size"),
            diags,
        );
    }
    for (name, b) in sup.buckets.iter().flatten() {
        let field = format!("{prefix}supabase.buckets.{name}");
        if !is_bucket_name(name) {
            diags.push(map.diag(
                &field,
                format!("`{name}` is not a valid bucket name: use 1–63 lowercase letters, digits, `-`, `_` or `.`, starting with a letter or digit"),
            ));
        }
        for (i, m) in b.allowed_mime_types.iter().flatten().enumerate() {
            if !is_mime_pattern(m) {
                diags.push(map.diag(
                    &format!("{field}.allowed_mime_types[{i}]"),
                    format!("`{m}` is not a MIME type (expected `type/subtype`, e.g. `image/png` or `image/*`)"),
                ));
            }
        }
        if b.file_size_limit == Some(0) {
            diags.push(map.diag(
                &format!("{field}.file_size_limit"),
                "must be greater than 0 (leave it out for no limit)",
            ));
        }
    }
    let auth = s.auth.clone().unwrap_or_default();
    for (i, u) in auth.additional_redirect_urls.iter().flatten().enumerate() {
        if !(u.starts_with("https://") || u.starts_with("http://"))
            || u.len() < 10
            || u.contains(char::is_whitespace)
        {
            diags.push(map.diag(
                &format!("{prefix}auth.additional_redirect_urls[{i}]"),
                format!("`{u}` is not an http(s) URL"),
            ));
        }
    }
    let front = s.frontend.clone().unwrap_or_default();
    for (k, v) in front.env.iter().flatten() {
        let field = format!("{prefix}frontend.env.{k}");
        if PROVIDED_ENV.contains(&k.as_str()) {
            diags.push(map.diag(
                &field,
                format!("`{k}` is set by intelli for every client and cannot be overridden"),
            ));
        } else if !k.starts_with("VITE_")
            || !k
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        {
            diags.push(map.diag(
                &field,
                format!("`{k}` is not a build-time variable: names must start with `VITE_` and use A–Z, 0–9 and `_` (Vite only exposes VITE_* to the app)"),
            ));
        }
        if let Some(name) = secrets::env_ref(v)
            && secrets::is_credential_variable(name)
        {
            diags.push(map.diag(
                &field,
                format!("`{name}` holds one of intelli's own credentials; build-time values are published in the site's JavaScript"),
            ));
        }
        if secrets::malformed_env_ref(v) {
            diags.push(map.diag(&field, "a reference must be the whole value and look like `${env:NAME}` (NAME: letters, digits, _)"));
        }
    }
}

fn check_one_of(
    v: &str,
    allowed: &[&str],
    what: &str,
    map: &SourceMap,
    field: &str,
    diags: &mut Diagnostics,
) {
    if !allowed.contains(&v) {
        let hint = source::nearest(v, allowed)
            .map(|n| format!(", did you mean `{n}`?"))
            .unwrap_or_default();
        diags.push(map.diag(
            field,
            format!(
                "unknown {what} `{v}`{hint} (one of: {})",
                allowed.join(", ")
            ),
        ));
    }
}

/// The client files of a fleet directory (every `*.yaml` / `*.yml` but `fleet.yaml`), sorted.
fn client_files(dir: &Path, diags: &mut Diagnostics) -> Vec<PathBuf> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => {
            diags.push(Diagnostic::new(
                dir,
                None,
                "",
                format!("cannot read fleet directory: {e}"),
            ));
            return Vec::new();
        }
    };
    let mut files: Vec<PathBuf> = entries
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| {
            matches!(
                path.extension().and_then(|e| e.to_str()),
                Some("yaml" | "yml")
            ) && path.file_name() != Some(FLEET_FILE.as_ref())
        })
        .collect();
    files.sort();
    files
}

/// Slugs and domains seen so far: each may be used by one client file only.
#[derive(Default)]
struct Unique {
    slugs: HashMap<String, PathBuf>,
    domains: HashMap<String, PathBuf>,
}

impl Unique {
    fn check(
        &mut self,
        fleet: &FleetFile,
        c: &ClientFile,
        map: &SourceMap,
        maps: &BTreeMap<PathBuf, SourceMap>,
        diags: &mut Diagnostics,
    ) {
        let slug_taken = self.slugs.insert(c.client.clone(), map.file.clone());
        if let Some(first) = &slug_taken {
            diags.push(map.diag(
                "client",
                format!(
                    "client `{}` is already defined in {}",
                    c.client,
                    first.display()
                ),
            ));
        }
        let domain = c
            .domain
            .clone()
            .unwrap_or_else(|| format!("{}.{}", c.client, fleet.base_domain));
        // A derived domain shared because the slug is shared: the slug's diagnostic says it.
        let derived_from_taken_slug = c.domain.is_none() && slug_taken.is_some();
        if let Some(first) = self.domains.insert(domain.clone(), map.file.clone())
            && !derived_from_taken_slug
        {
            // Both files are told: either one may be the one to change.
            diags.push(map.diag(
                "domain",
                format!("domain `{domain}` is already used by {}", first.display()),
            ));
            if let Some(first_map) = maps.get(&first) {
                diags.push(first_map.diag(
                    "domain",
                    format!("domain `{domain}` is also used by {}", map.file.display()),
                ));
            }
        }
    }
}

/// The client's domain (its own, or `<slug>.<base_domain>`), checked: a valid name inside the
/// zone. A domain derived from a slug or base_domain already reported as wrong would only
/// repeat that diagnostic (in another file, at line 1), so it is checked when both are right.
fn check_client_domain(
    fleet: &FleetFile,
    c: &ClientFile,
    map: &SourceMap,
    diags: &mut Diagnostics,
) -> String {
    let domain = c
        .domain
        .clone()
        .unwrap_or_else(|| format!("{}.{}", c.client, fleet.base_domain));
    if c.domain.is_none() && !(is_slug(&c.client) && base_domain_ok(fleet)) {
        return domain;
    }
    match check_domain(&domain) {
        Err(e) => diags.push(map.diag("domain", e)),
        Ok(()) if !in_zone(&domain, &fleet.cloudflare.zone) => diags.push(map.diag(
            "domain",
            format!(
                "`{domain}` is not inside the fleet's zone `{}` (cloudflare.zone in fleet.yaml)",
                fleet.cloudflare.zone
            ),
        )),
        Ok(()) => {}
    }
    domain
}

/// Whether `base_domain` passes `check_fleet` (a valid domain inside the zone).
fn base_domain_ok(f: &FleetFile) -> bool {
    check_domain(&f.base_domain).is_ok() && in_zone(&f.base_domain, &f.cloudflare.zone)
}

/// The client's own names: its slug (also the file name), the derived resource name, a pinned
/// project ref, the Pages project name and the display name. Returns the resource name and
/// the Pages project name.
fn check_client_names(
    fleet: &FleetFile,
    c: &ClientFile,
    map: &SourceMap,
    diags: &mut Diagnostics,
) -> (String, String) {
    let slug = &c.client;
    if !is_slug(slug) {
        diags.push(map.diag(
            "client",
            format!("`{slug}` is not a valid slug: use lowercase letters, digits and hyphens, starting with a letter and not ending with a hyphen"),
        ));
    }
    let stem = map.file.file_stem().and_then(|s| s.to_str()).unwrap_or("");
    if stem != slug {
        diags.push(map.diag("client", format!("`client: {slug}` must equal the file name (`{stem}`); rename the file to `{slug}.yaml`")));
    }
    let resource_name = format!("{}{slug}", fleet.name_prefix);
    if resource_name.len() > PAGES_NAME_MAX {
        diags.push(map.diag(
            "client",
            format!(
                "the derived project name `{resource_name}` is {} characters; Cloudflare Pages allows at most {PAGES_NAME_MAX} — shorten the slug",
                resource_name.len()
            ),
        ));
    }
    if let Some(r) = &c.project_ref
        && (r.len() != 20 || !r.chars().all(|ch| ch.is_ascii_lowercase()))
    {
        diags.push(map.diag(
            "project_ref",
            format!("`{r}` is not a Supabase project ref (20 lowercase letters)"),
        ));
    }
    let pages_project = c
        .pages_project
        .clone()
        .unwrap_or_else(|| resource_name.clone());
    if c.pages_project.is_some()
        && (!is_resource_name(&pages_project) || pages_project.len() > PAGES_NAME_MAX)
    {
        diags.push(map.diag(
            "pages_project",
            format!("`{pages_project}` is not a valid Pages project name (^[a-z0-9][a-z0-9-]*$, at most {PAGES_NAME_MAX} characters)"),
        ));
    }
    if let Some(n) = &c.display_name
        && n.trim().is_empty()
    {
        diags.push(map.diag(
            "display_name",
            "must not be empty (leave it out to use the slug)",
        ));
    }

    (resource_name, pages_project)
}

fn check_client(
    fleet: &FleetFile,
    fleet_map: &SourceMap,
    c: &ClientFile,
    map: &SourceMap,
    diags: &mut Diagnostics,
) -> Option<ClientSpec> {
    let before = diags.len();
    let (resource_name, pages_project) = check_client_names(fleet, c, map, diags);
    let domain = check_client_domain(fleet, c, map, diags);

    check_pin(fleet, c, map, diags);
    let settings = ClientSettings {
        supabase: c.supabase.clone(),
        auth: c.auth.clone(),
        frontend: c.frontend.clone(),
    };
    check_settings(&settings, map, "", diags);
    super::rollout::check_labels(c.labels.as_ref(), map, diags);
    let merged = merge::merge(&fleet.defaults, &settings);
    if merged.region.is_none() {
        diags.push(map.diag(
            "supabase.region",
            "no region: set `supabase.region` here or `defaults.supabase.region` in fleet.yaml",
        ));
    }
    if diags.len() > before {
        return None;
    }

    Some(client_spec(
        fleet_map,
        c,
        map,
        ClientNames {
            resource_name,
            pages_project,
            domain,
        },
        merged,
    ))
}

/// The names `check_client_names` and `check_client_domain` settled.
struct ClientNames {
    resource_name: String,
    pages_project: String,
    domain: String,
}

/// A checked client file with the fleet's defaults merged in, as plan and apply use it.
fn client_spec(
    fleet_map: &SourceMap,
    c: &ClientFile,
    map: &SourceMap,
    names: ClientNames,
    merged: Merged,
) -> ClientSpec {
    let ClientNames {
        resource_name,
        pages_project,
        domain,
    } = names;
    let Merged {
        region,
        instance_size,
        buckets,
        additional_redirect_urls,
        env,
    } = merged;
    let slug = &c.client;
    let site_url = format!("https://{domain}");
    let mut redirect_urls = vec![format!("{site_url}/**")];
    redirect_urls.extend(
        additional_redirect_urls
            .into_iter()
            .filter(|u| *u != format!("{site_url}/**")),
    );
    ClientSpec {
        slug: slug.clone(),
        file: map.file.clone(),
        display_name: c.display_name.clone().unwrap_or_else(|| slug.clone()),
        state: c.state.unwrap_or(ClientState::Active),
        resource_name,
        project_ref: c.project_ref.clone(),
        pages_project,
        take_over_dns: c.take_over_dns.unwrap_or(false),
        region: region.unwrap_or_default(),
        instance_size,
        buckets: buckets
            .into_iter()
            .map(|(name, b)| {
                let bucket = Bucket {
                    public: b.public.unwrap_or(false),
                    file_size_limit: b.file_size_limit,
                    allowed_mime_types: b.allowed_mime_types.unwrap_or_default(),
                };
                (name, bucket)
            })
            .collect(),
        site_url,
        redirect_urls,
        frontend_env: env
            .into_iter()
            .map(|(k, (v, origin))| {
                let value = env_value(&v, origin, &k, &fleet_map.file, &map.file);
                (k, value)
            })
            .collect(),
        domain,
        cloudflare_account: c.cloudflare.as_ref().and_then(|cf| cf.account_id.clone()),
        labels: c.labels.clone().unwrap_or_default(),
    }
}

fn is_account_id(id: &str) -> bool {
    id.len() == 32 && id.chars().all(|c| c.is_ascii_hexdigit())
}

/// `cloudflare.account_id` (one account) or `cloudflare.accounts` (several), never both.
fn check_accounts(cf: &FleetCloudflare, map: &SourceMap, diags: &mut Diagnostics) {
    const NOT_AN_ID: &str = "must be a Cloudflare account id: 32 hexadecimal characters";
    match (&cf.account_id, cf.accounts.as_slice()) {
        (Some(_), [_, ..]) => diags.push(map.diag(
            "cloudflare.accounts",
            "give either cloudflare.account_id (one account) or cloudflare.accounts (several), not both",
        )),
        (None, []) => diags.push(map.diag(
            "cloudflare",
            "no Cloudflare account: set cloudflare.account_id (one account) or cloudflare.accounts (several)",
        )),
        (Some(id), []) if !is_account_id(id) => diags.push(map.diag("cloudflare.account_id", NOT_AN_ID)),
        (Some(_), []) => {}
        (None, accounts) => {
            let mut seen = HashSet::new();
            for (i, a) in accounts.iter().enumerate() {
                if !is_account_id(&a.id) {
                    diags.push(map.diag(&format!("cloudflare.accounts[{i}].id"), NOT_AN_ID));
                } else if !seen.insert(a.id.to_ascii_lowercase()) {
                    diags.push(map.diag(
                        &format!("cloudflare.accounts[{i}].id"),
                        format!("account {} is listed twice", a.id),
                    ));
                }
            }
        }
    }
}

/// A client's `cloudflare.account_id` must name one of the fleet's accounts.
fn check_pin(fleet: &FleetFile, c: &ClientFile, map: &SourceMap, diags: &mut Diagnostics) {
    let Some(pin) = c.cloudflare.as_ref().and_then(|cf| cf.account_id.as_ref()) else {
        return;
    };
    let declared: Vec<&str> = match &fleet.cloudflare.account_id {
        Some(id) => vec![id.as_str()],
        None => fleet
            .cloudflare
            .accounts
            .iter()
            .map(|a| a.id.as_str())
            .collect(),
    };
    if !declared.contains(&pin.as_str()) {
        diags.push(map.diag(
            "cloudflare.account_id",
            format!(
                "`{pin}` is not one of the fleet's Cloudflare accounts ({}) in fleet.yaml",
                declared.join(", ")
            ),
        ));
    }
}

/// Client slug: `^[a-z][a-z0-9-]*[a-z0-9]$` or a single letter.
pub fn is_slug(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_lowercase()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && !s.ends_with('-')
}

/// Cloudflare Pages project name rule `^[a-z0-9][a-z0-9-]*$`.
pub fn is_resource_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
}

fn is_bucket_name(s: &str) -> bool {
    let b = s.as_bytes();
    (1..=63).contains(&b.len())
        && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
        && b.iter().all(|c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'-' | b'_' | b'.')
        })
}

fn is_mime_pattern(s: &str) -> bool {
    let token = |t: &str| {
        !t.is_empty()
            && t.chars()
                .all(|c| c.is_ascii_alphanumeric() || "!#$&^_.+-".contains(c))
    };
    match s.split_once('/') {
        Some((ty, sub)) => token(ty) && (sub == "*" || token(sub)),
        None => false,
    }
}

/// A lowercase DNS name of at least two labels (RFC 1035 letters-digits-hyphen labels).
pub fn check_domain(d: &str) -> Result<(), String> {
    if d.is_empty() {
        return Err("must not be empty".into());
    }
    if d != d.to_ascii_lowercase() {
        return Err(format!("`{d}` must be lowercase"));
    }
    if d.len() > 253 {
        return Err(format!("`{d}` is longer than 253 characters"));
    }
    let labels: Vec<&str> = d.split('.').collect();
    if labels.len() < 2 {
        return Err(format!("`{d}` is not a fully qualified domain name"));
    }
    for l in &labels {
        let ok = (1..=63).contains(&l.len())
            && l.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && !l.starts_with('-')
            && !l.ends_with('-');
        if !ok {
            return Err(format!("`{d}` is not a valid domain name (label `{l}`)"));
        }
    }
    Ok(())
}

fn in_zone(domain: &str, zone: &str) -> bool {
    domain == zone || domain.ends_with(&format!(".{zone}"))
}
