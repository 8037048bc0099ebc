//! `intelli import` end to end against the simulator (served as the real vendors): three
//! clients set up by hand the way the old checklist did it (a project named by hand, the
//! migrations pushed with `supabase db push`'s history rows, the seed run by hand, buckets, a
//! Pages project with the custom domain, a hand-made CNAME) are imported from the old
//! `clients.json`; their plan creates no project, runs no migration and no seed (it records
//! it), and adopts the DNS records; apply converges them. A malformed registry gets a located
//! error, and an existing client file is never overwritten.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::world::World;
use intelli::cloudflare::types::{DeployMeta, DnsRecordInput};
use intelli::cloudflare::{CloudflareClient, CloudflareConfig};
use intelli::supabase::types::{AuthConfigPatch, CreateProjectRequest};
use intelli::supabase::{SupabaseClient, SupabaseConfig};
use secrecy::SecretString;

/// One client as the old checklist made it.
struct Hand {
    slug: &'static str,
    name: &'static str,
    project_name: &'static str,
    region: &'static str,
    pages: &'static str,
    domain: &'static str,
    extra_bucket: bool,
}

const HANDS: [Hand; 3] = [
    Hand {
        slug: "acme",
        name: "ACME Plumbing & Heating",
        project_name: "acme-prod",
        region: "us-east-1",
        pages: "acme-portal",
        domain: "acme.intelliservice.io",
        extra_bucket: false,
    },
    Hand {
        slug: "globex",
        name: "Globex",
        project_name: "Globex Service",
        region: "eu-west-2",
        pages: "intelli-globex",
        domain: "service.globex.intelliservice.io",
        extra_bucket: true,
    },
    Hand {
        slug: "initech",
        name: "Initech",
        project_name: "initech",
        region: "eu-west-2",
        pages: "initech-web",
        domain: "initech.intelliservice.io",
        extra_bucket: false,
    },
];

fn supabase(w: &World) -> SupabaseClient {
    let mut c = SupabaseConfig::new(SecretString::from(w.sim.supabase_token()));
    c.api_url = url::Url::parse(&w.sim.supabase_api_url()).expect("url");
    c.project_url_template = w.sim.project_url_template().to_string();
    SupabaseClient::new(c).expect("supabase client")
}

fn cloudflare(w: &World) -> CloudflareClient {
    let mut c = CloudflareConfig::new(
        SecretString::from(w.sim.cloudflare_token()),
        w.sim.cloudflare_account_id(),
    );
    c.api_base = url::Url::parse(&w.sim.cloudflare_api_url()).expect("url");
    CloudflareClient::new(c).expect("cloudflare client")
}

fn cf_stat(w: &World, name: &str) -> u64 {
    w.sim.stats().cloudflare[name].as_u64().unwrap_or(0)
}

/// Make `h` by hand; returns its project ref.
async fn make_by_hand(w: &World, h: &Hand) -> String {
    let sb = supabase(w);
    let project = sb
        .create_project(&CreateProjectRequest {
            name: h.project_name.into(),
            organization_slug: "intelliservice".into(),
            db_pass: SecretString::from("made-by-hand-0123456789".to_string()),
            region: h.region.into(),
            desired_instance_size: None,
        })
        .await
        .expect("create project by hand");
    let r = project.project_ref.clone();
    for _ in 0..300 {
        let p = sb
            .get_project(&r)
            .await
            .expect("get project")
            .expect("exists");
        if p.status.is_healthy() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // `supabase db push`: each file with its history row (the CLI's table and columns).
    let url = w.sim.database_url(&r).expect("database");
    let mut db = intelli::pg::connect(&url).await.expect("connect");
    let files = intelli::migrate::discover(&common::repo_root().join("migrations")).expect("files");
    for f in &files {
        let text = intelli::migrate::sql::apply_migration(f);
        intelli::migrate::run_in_transaction(&mut db, text.as_str())
            .await
            .expect("db push");
    }
    // The seed, run by hand (psql): its rows, no record of it.
    let seed = std::fs::read_to_string(common::repo_root().join("migrations/seed/client.sql"))
        .expect("seed");
    let settings = vec![
        ("intelli.client_slug", h.slug.to_string()),
        ("intelli.display_name", h.name.to_string()),
        ("intelli.domain", h.domain.to_string()),
        ("intelli.site_url", format!("https://{}", h.domain)),
    ];
    intelli::migrate::run_seed(&mut db, &seed, &settings)
        .await
        .expect("seed by hand");
    // Buckets set in the dashboard as the fleet's defaults say (the migrations made two with
    // other limits), and one more for globex.
    let mut buckets = vec![
        (
            "ticket-photos",
            10_485_760i64,
            vec!["image/jpeg", "image/png", "image/webp", "image/heic"],
        ),
        ("estimate-documents", 26_214_400, vec!["application/pdf"]),
    ];
    if h.extra_bucket {
        buckets.push((
            "site-surveys",
            52_428_800,
            vec!["application/pdf", "image/*"],
        ));
    }
    for (id, limit, mimes) in buckets {
        let mimes: Vec<String> = mimes.into_iter().map(String::from).collect();
        db.execute(
            "insert into storage.buckets (id, name, public, file_size_limit, allowed_mime_types) \
             values ($1, $1, false, $2, $3) on conflict (id) do update set public = false, \
             file_size_limit = excluded.file_size_limit, allowed_mime_types = excluded.allowed_mime_types",
            &[&id, &limit, &mimes],
        )
        .await
        .expect("bucket by hand");
    }
    sb.patch_auth_config(
        &r,
        &AuthConfigPatch {
            site_url: Some(format!("https://{}", h.domain)),
            uri_allow_list: Some(vec![
                format!("https://{}/**", h.domain),
                "http://localhost:5173/**".into(),
            ]),
        },
    )
    .await
    .expect("auth by hand");

    // The site: a Pages project, its custom domain, and a CNAME made by hand (not proxied, no
    // comment).
    let cf = cloudflare(w);
    let pages = cf
        .create_project(h.pages, "main")
        .await
        .expect("pages project");
    cf.add_domain(h.pages, h.domain).await.expect("domain");
    // Built with the fleet's build command and the client's values, deployed like `wrangler
    // pages deploy` (a git commit, no intelli fingerprint).
    let keys = sb.api_keys(&r).await.expect("keys");
    let key = keys.browser_key().expect("browser key").clone();
    let mut env: BTreeMap<String, SecretString> = BTreeMap::new();
    env.insert("VITE_BRAND_COLOR".into(), SecretString::from("#1c7ed6"));
    env.insert(
        "VITE_SUPABASE_URL".into(),
        SecretString::from(w.sim.project_url(&r)),
    );
    for name in intelli::frontend::BROWSER_KEY_VARS {
        env.insert(name.into(), key.clone());
    }
    env.insert("VITE_CLIENT_NAME".into(), SecretString::from(h.name));
    let out = tempfile::tempdir().expect("build dir");
    let site = out.path().join("site");
    intelli::frontend::build::build_client(
        &w.root().join("examples/web"),
        "npm run build -- --outDir {out_dir} --emptyOutDir",
        "dist",
        &env,
        &site,
    )
    .await
    .expect("build by hand");
    cf.deploy_directory(
        h.pages,
        &site,
        DeployMeta::new("main", "4f2a9c1", "Update brand colour (deployed by hand)"),
    )
    .await
    .expect("deploy by hand");
    let zone = cf
        .find_zone("intelliservice.io")
        .await
        .expect("zones")
        .expect("zone");
    cf.create_dns_record(
        &zone.id,
        &DnsRecordInput {
            record_type: "CNAME".into(),
            name: h.domain.into(),
            content: pages.subdomain.clone(),
            proxied: Some(false),
            ttl: 1,
            comment: None,
            tags: None,
        },
    )
    .await
    .expect("CNAME by hand");
    r
}

#[tokio::test(flavor = "multi_thread")]
async fn hand_made_clients_are_imported_and_adopted_without_redoing_anything() {
    let mut w = World::with_frontend().await;
    for h in &HANDS {
        std::fs::remove_file(w.root().join(format!("fleet/{}.yaml", h.slug))).expect("rm");
    }
    // The checklist's `npm ci` before building by hand.
    let npm = std::process::Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(w.root().join("examples/web"))
        .output()
        .expect("npm runs");
    assert!(
        npm.status.success(),
        "{}",
        String::from_utf8_lossy(&npm.stderr)
    );
    let mut refs = Vec::new();
    for h in &HANDS {
        refs.push(make_by_hand(&w, h).await);
    }
    // The old registry, in its array shape.
    let registry: Vec<serde_json::Value> = HANDS
        .iter()
        .zip(&refs)
        .map(|(h, r)| {
            let mut e = serde_json::json!({
                "slug": h.slug, "name": h.name, "project_ref": r, "domain": h.domain,
            });
            if h.pages != format!("intelli-{}", h.slug) {
                e["pages_project"] = h.pages.into();
            }
            e
        })
        .collect();
    std::fs::write(
        w.root().join("clients.json"),
        serde_json::to_string_pretty(&registry).expect("json"),
    )
    .expect("registry");

    w.sim.reset_stats();
    let out = w.run_ok(&["import", "--from", "clients.json"]);
    eprintln!("import printed:\n{out}");
    // Import never writes to a vendor.
    let writes: Vec<_> = w
        .sim
        .stats()
        .requests
        .iter()
        .filter(|r| r.method != "GET" && !r.route.contains("database/query"))
        .map(|r| format!("{} {}", r.method, r.route))
        .collect();
    assert!(writes.is_empty(), "import wrote: {writes:?}");
    let acme = std::fs::read_to_string(w.root().join("fleet/acme.yaml")).expect("acme.yaml");
    assert!(
        acme.contains(&format!("project_ref: {}", refs[0])),
        "{acme}"
    );
    assert!(acme.contains("pages_project: \"acme-portal\""), "{acme}");
    assert!(acme.contains("region: \"us-east-1\""), "{acme}");
    assert!(
        !acme.contains("buckets:"),
        "default buckets are not repeated:\n{acme}"
    );
    assert!(
        !acme.contains("auth:"),
        "default redirect URLs are not repeated:\n{acme}"
    );
    let globex = std::fs::read_to_string(w.root().join("fleet/globex.yaml")).expect("globex");
    assert!(
        globex.contains("domain: \"service.globex.intelliservice.io\"")
            && globex.contains("\"site-surveys\":")
            && !globex.contains("pages_project")
            && !globex.contains("region:"),
        "{globex}"
    );
    for slug in ["acme", "globex", "initech"] {
        assert!(out.contains(slug), "the plan names {slug}:\n{out}");
    }

    // The plan: nothing redone; the seed recorded, the DNS records adopted.
    let plan = w.run_ok(&["plan", "--format", "json"]);
    let plan: serde_json::Value = serde_json::from_str(&plan).expect("plan json");
    for c in plan["clients"].as_array().expect("clients") {
        let kinds: Vec<&str> = c["actions"]
            .as_array()
            .expect("actions")
            .iter()
            .map(|a| a["type"].as_str().expect("type"))
            .collect();
        assert!(c["errors"].as_array().expect("errors").is_empty(), "{c}");
        for never in [
            "create_project",
            "apply_migrations",
            "apply_seed",
            "create_bucket",
            "update_bucket",
            "update_auth_config",
            "create_pages_project",
            "add_domain",
            "upsert_dns_record",
        ] {
            assert!(
                !kinds.contains(&never),
                "{}: {never} in {kinds:?}",
                c["client"]
            );
        }
        assert!(kinds.contains(&"record_seed"), "{kinds:?}");
        assert!(kinds.contains(&"adopt_dns_record"), "{kinds:?}");
        // A hand-deployed site has no fingerprint: deployed once more by intelli.
        let deploy = c["actions"]
            .as_array()
            .expect("actions")
            .iter()
            .find(|a| a["type"] == "deploy")
            .expect("a deploy");
        assert_eq!(deploy["reason"], "no_fingerprint", "{deploy}");
    }

    // Apply takes them over, uploading nothing (the hand-made builds are the same bytes); then
    // nothing is left to do, and the seed ran once (by hand).
    let (bytes, deployments) = (
        cf_stat(&w, "asset_bytes_uploaded"),
        cf_stat(&w, "deployments_created"),
    );
    w.run_ok(&["apply", "--yes"]);
    assert_eq!(
        cf_stat(&w, "asset_bytes_uploaded") - bytes,
        0,
        "no byte uploaded: the files are there"
    );
    assert_eq!(cf_stat(&w, "deployments_created") - deployments, 3);
    let out = w.run(&["plan", "--detailed-exitcode"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    for (h, r) in HANDS.iter().zip(&refs) {
        let url = w.sim.database_url(r).expect("database");
        let db = intelli::pg::connect(&url).await.expect("connect");
        let n: i64 = db
            .query_one(
                "select count(*) from public.companies where slug = $1",
                &[&h.slug],
            )
            .await
            .expect("companies")
            .get(0);
        assert_eq!(n, 1);
        let recorded: i64 = db
            .query_one("select count(*) from supabase_migrations.seed_files", &[])
            .await
            .expect("seed_files")
            .get(0);
        assert_eq!(recorded, 1, "{}: the seed is recorded", h.slug);
    }
    let zone = cloudflare(&w)
        .find_zone("intelliservice.io")
        .await
        .expect("zones")
        .expect("zone");
    let records = cloudflare(&w)
        .list_dns_records(&zone.id, &Default::default())
        .await
        .expect("dns");
    for h in &HANDS {
        let rec = records
            .iter()
            .find(|r| r.name == h.domain)
            .expect("the record");
        assert!(rec.proxied, "{} is proxied now", h.domain);
        assert!(
            rec.comment
                .as_deref()
                .is_some_and(|c| c.contains(&format!("managed by intelli: {}", h.slug))),
            "{rec:?}"
        );
    }
    w.assert_no_secrets(&[]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_malformed_registry_is_a_located_error_and_files_are_never_overwritten() {
    let mut w = World::new().await;
    std::fs::write(
        w.root().join("clients.json"),
        "{\n  \"hooli\": {\"project_ref\": \"abcdefghijklmnopqrst\"},\n  \"vandelay\": {\"project_ref\": 42, \"domian\": \"x.io\"}\n}\n",
    )
    .expect("registry");
    let out = w.run(&["import", "--from", "clients.json"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("clients.json:3:") && err.contains("vandelay.project_ref: expected a string"),
        "{err}"
    );
    assert!(
        err.contains("vandelay.domian: unknown field") && err.contains("did you mean `domain`"),
        "{err}"
    );
    assert!(
        !w.root().join("fleet/hooli.yaml").exists(),
        "nothing written"
    );

    let before = std::fs::read_to_string(w.root().join("fleet/acme.yaml")).expect("acme");
    let out = w.run(&["import", "acme", "--project-ref", "abcdefghijklmnopqrst"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("never overwrites"));
    assert_eq!(
        std::fs::read_to_string(w.root().join("fleet/acme.yaml")).expect("acme"),
        before
    );
}
