//! The Cloudflare client against the simulator, over real sockets: direct upload (deltas,
//! `_headers`/`_redirects`, JWT refresh, faults, refusals before upload), projects, domains,
//! zones and DNS, request bodies checked against the vendored spec subset, and secrets kept
//! out of errors.
//!
//! Most tests use the whole simulator (`common::sim::start`). Two use the Cloudflare router on a
//! local axum server instead (`common::sim::cloudflare`), because they need what `SimConfig`
//! does not offer: a short upload-JWT lifetime (with a delay in front of the first upload) and a
//! recorder of request bodies.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use axum::middleware::Next;
use common::openapi::{assert_matches_draft4, to_json_schema};
use common::sim::Served;
use intelli::cloudflare::{
    CloudflareClient, CloudflareConfig, DeployError, DeployMeta, DnsFilters, DnsRecordInput,
    DnsRecordPatch, DomainStatus, StageName, StageStatus, asset_key, asset_key_of_file,
};
use intelli::http::{ErrorKind, RetryConfig};
use intelli::sim::cloudflare::{ApiToken, CloudflareSim};
use intelli::sim::server::{FaultKind, FaultRule, SimConfig, SimHandle, Vendor};
use secrecy::SecretString;
use serde_json::{Value, json};

const ZONE: &str = "intelliservice.io";

fn fast_config(api_base: &str, token: &str, account: &str) -> CloudflareConfig {
    let mut c = CloudflareConfig::new(SecretString::from(token.to_owned()), account);
    c.api_base = api_base.parse().expect("api base URL");
    c.retry = RetryConfig {
        max_attempts: 5,
        max_rate_limited: 10,
        min_delay: Duration::from_millis(50),
        max_delay: Duration::from_millis(400),
        max_wait: Duration::from_secs(10),
        jitter: false,
    };
    c.deploy_poll_interval = Duration::from_millis(50);
    c.deploy_timeout = Duration::from_secs(20);
    c
}

async fn sim(tweak: impl FnOnce(&mut SimConfig)) -> SimHandle {
    let mut config = common::sim::seeded(7);
    // Injected 429s announce the vendor's window scaled: 300 s × 0.01 = 3 s.
    config.rate_limit_scale = 0.01;
    tweak(&mut config);
    common::sim::start(config).await
}

fn client(sim: &SimHandle, tweak: impl FnOnce(&mut CloudflareConfig)) -> CloudflareClient {
    let mut c = fast_config(
        &sim.cloudflare_api_url(),
        &sim.cloudflare_token(),
        &sim.cloudflare_account_id(),
    );
    tweak(&mut c);
    CloudflareClient::new(c).expect("client")
}

fn cf_stat(sim: &SimHandle, name: &str) -> u64 {
    sim.stats().cloudflare[name].as_u64().unwrap_or(0)
}

fn write(root: &Path, rel: &str, content: impl AsRef<[u8]>) {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(path, content).expect("write");
}

/// A small built site: nested assets, a duplicate, root `_headers`/`_redirects`, and files
/// wrangler ignores. Returns the number of files that belong in the manifest.
fn small_site(root: &Path) -> usize {
    write(root, "index.html", "<!doctype html><title>acme</title>");
    write(root, "new.html", "<p>new</p>");
    write(root, "assets/app-1a2b.js", "console.log('app')");
    write(root, "assets/app-1a2b.css", "body{color:red}");
    write(root, "assets/logo.svg", "<svg/>");
    // Same bytes and extension as app-1a2b.css: one key, uploaded once.
    write(root, "assets/copy.css", "body{color:red}");
    write(root, ".well-known/security.txt", "Contact: x@example.com");
    write(root, "sub/_headers", "nested: an ordinary asset");
    write(root, "_headers", "/*\n  X-Intelli: yes\n");
    write(root, "_redirects", "/old /new 301\n");
    // Ignored by wrangler's rules.
    write(root, "node_modules/x/index.js", "x");
    write(root, "functions/api.js", "export default {}");
    write(root, ".DS_Store", "junk");
    write(root, ".git/HEAD", "ref");
    8
}

fn meta(hash: &str) -> DeployMeta {
    DeployMeta::new("main", hash, format!("intelli build {hash}"))
}

#[test]
fn asset_key_matches_wranglers_vectors() {
    assert_eq!(
        asset_key(b"foobar", "png"),
        "2082190357cfd3617ccfe04f340c6247"
    );
    assert_eq!(
        asset_key(b"foobar", "txt"),
        "1a98fb08af91aca4a7df1764a2c4ddb0"
    );
    let dir = tempfile::tempdir().expect("tmp");
    std::fs::write(dir.path().join("a.png"), "foobar").expect("write");
    assert_eq!(
        asset_key_of_file(&dir.path().join("a.png")).expect("hash"),
        "2082190357cfd3617ccfe04f340c6247"
    );
}

#[tokio::test]
async fn deploy_then_redeploy_sends_only_the_changed_file() {
    let sim = sim(|_| {}).await;
    let cf = client(&sim, |_| {});
    let project = cf
        .create_project("intelli-acme", "main")
        .await
        .expect("create project");
    assert_eq!(project.subdomain, "intelli-acme.pages.dev");
    assert!(project.canonical_deployment.is_none());

    let dir = tempfile::tempdir().expect("tmp");
    let expected = small_site(dir.path());
    let first = cf
        .deploy_directory("intelli-acme", dir.path(), meta("fp-1"))
        .await
        .expect("first deploy");
    assert_eq!(first.files_total, expected);
    // copy.css shares a key with app-1a2b.css.
    assert_eq!(first.files_uploaded, expected - 1);
    assert!(first.warnings.is_empty(), "{:?}", first.warnings);
    let d = &first.deployment;
    assert!(d.is_deployed());
    assert_eq!(
        d.latest_stage.as_ref().map(|s| &s.name),
        Some(&StageName::Deploy)
    );
    assert_eq!(
        d.latest_stage.as_ref().map(|s| &s.status),
        Some(&StageStatus::Success)
    );
    assert_eq!(cf_stat(&sim, "asset_files_uploaded"), (expected - 1) as u64);
    assert_eq!(cf_stat(&sim, "asset_bytes_uploaded"), first.bytes_uploaded);
    // wrangler's packing spreads even a small upload over its 3 concurrent requests.
    assert_eq!(cf_stat(&sim, "upload_requests"), 3);

    // The manifest holds exactly the site's files (ignored ones left out).
    let dump = sim.state_dump();
    let manifest = dump["cloudflare"]["projects"][0]["deployments"][0]["manifest"].clone();
    let paths: BTreeSet<String> = manifest
        .as_object()
        .expect("manifest")
        .keys()
        .cloned()
        .collect();
    let want: BTreeSet<String> = [
        "/index.html",
        "/new.html",
        "/assets/app-1a2b.js",
        "/assets/app-1a2b.css",
        "/assets/logo.svg",
        "/assets/copy.css",
        "/.well-known/security.txt",
        "/sub/_headers",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    assert_eq!(paths, want);
    assert_eq!(
        manifest["/assets/app-1a2b.js"],
        json!(asset_key(b"console.log('app')", "js"))
    );

    // _headers and _redirects reached the deployment: the served site applies them.
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("http");
    let site = sim.site_url("intelli-acme");
    let index = http.get(&site).send().await.expect("site");
    assert_eq!(index.status(), 200);
    assert_eq!(
        index
            .headers()
            .get("x-intelli")
            .and_then(|v| v.to_str().ok()),
        Some("yes")
    );
    let old = http.get(format!("{site}old")).send().await.expect("old");
    assert_eq!(old.status(), 301);
    assert_eq!(
        old.headers().get("location").and_then(|v| v.to_str().ok()),
        Some("/new")
    );

    // Change one file: exactly that file is sent again.
    write(dir.path(), "assets/app-1a2b.js", "console.log('app v2')");
    let before_files = cf_stat(&sim, "asset_files_uploaded");
    let before_requests = cf_stat(&sim, "upload_requests");
    let second = cf
        .deploy_directory("intelli-acme", dir.path(), meta("fp-2"))
        .await
        .expect("second deploy");
    assert_eq!(second.files_total, expected);
    assert_eq!(second.files_uploaded, 1);
    assert_eq!(second.bytes_uploaded, "console.log('app v2')".len() as u64);
    assert_eq!(cf_stat(&sim, "asset_files_uploaded") - before_files, 1);
    assert_eq!(cf_stat(&sim, "upload_requests") - before_requests, 1);

    // The fingerprint round-trips through canonical_deployment in the project list.
    let projects = cf.list_projects().await.expect("list");
    let p = projects
        .iter()
        .find(|p| p.name == "intelli-acme")
        .expect("listed");
    let canonical = p.canonical_deployment.as_ref().expect("canonical");
    assert_eq!(canonical.id, second.deployment.id);
    assert_eq!(canonical.metadata().commit_hash.as_deref(), Some("fp-2"));
    assert_eq!(
        canonical.metadata().commit_message.as_deref(),
        Some("intelli build fp-2")
    );
    assert_eq!(canonical.metadata().branch.as_deref(), Some("main"));
    assert_eq!(canonical.metadata().commit_dirty, Some(false));
    assert!(p.latest_stage().is_some_and(|s| s.is_deployed()));

    // A deploy with nothing changed: no upload at all, and few requests.
    let before = sim.stats().total(Vendor::Cloudflare);
    let before_uploads = cf_stat(&sim, "upload_requests");
    let third = cf
        .deploy_directory("intelli-acme", dir.path(), meta("fp-2b"))
        .await
        .expect("no-change deploy");
    assert_eq!(third.files_uploaded, 0);
    assert_eq!(third.bytes_uploaded, 0);
    assert_eq!(cf_stat(&sim, "upload_requests"), before_uploads);
    let used = sim.stats().total(Vendor::Cloudflare) - before;
    // upload-token, check-missing, upsert-hashes, create deployment (already live: no poll).
    assert_eq!(used, 4, "requests of a no-change deploy");

    // A rollback to the first deployment: one request, no upload, the first is live (and
    // served) again; sent twice, the same deployment stays live; an unknown one is `None`.
    let before = sim.stats().total(Vendor::Cloudflare);
    let rolled = cf
        .rollback_deployment("intelli-acme", &first.deployment.id)
        .await
        .expect("rollback")
        .expect("the deployment exists");
    assert_eq!(sim.stats().total(Vendor::Cloudflare) - before, 1);
    assert_eq!(rolled.id, first.deployment.id);
    assert_eq!(rolled.metadata().commit_hash.as_deref(), Some("fp-1"));
    for _ in 0..2 {
        let p = cf
            .get_project("intelli-acme")
            .await
            .expect("get")
            .expect("p");
        let live = p.canonical_deployment.expect("canonical");
        assert_eq!(live.id, first.deployment.id);
        assert_eq!(live.metadata().commit_hash.as_deref(), Some("fp-1"));
        cf.rollback_deployment("intelli-acme", &first.deployment.id)
            .await
            .expect("rollback again")
            .expect("exists");
    }
    assert_eq!(cf_stat(&sim, "rollbacks"), 3);
    let served = http.get(format!("{site}assets/app-1a2b.js")).send().await;
    assert_eq!(
        served.expect("js").text().await.expect("body"),
        "console.log('app')"
    );
    assert!(
        cf.rollback_deployment("intelli-acme", "00000000-0000-0000-0000-000000000000")
            .await
            .expect("rollback to an unknown deployment")
            .is_none()
    );

    // get_deployment / get_project and their "absent" answers.
    let got = cf
        .get_deployment("intelli-acme", &third.deployment.id)
        .await
        .expect("get deployment")
        .expect("exists");
    assert_eq!(got.metadata().commit_hash.as_deref(), Some("fp-2b"));
    assert!(
        cf.get_deployment("intelli-acme", "00000000-0000-0000-0000-000000000000")
            .await
            .expect("get")
            .is_none()
    );
    assert!(cf.get_project("nope").await.expect("get").is_none());
    let patched = cf
        .patch_project("intelli-acme", "production")
        .await
        .expect("patch");
    assert_eq!(patched.production_branch, "production");
    sim.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn projects_are_listed_across_pages() {
    let sim = sim(|_| {}).await;
    let cf = client(&sim, |c| c.projects_page_size = 2);
    for i in 0..5 {
        cf.create_project(&format!("p{i}"), "main")
            .await
            .expect("create");
    }
    let before = sim.stats();
    let names: BTreeSet<String> = cf
        .list_projects()
        .await
        .expect("list")
        .into_iter()
        .map(|p| p.name)
        .collect();
    assert_eq!(names.len(), 5, "{names:?}");
    let pages = sim.stats().count(
        Vendor::Cloudflare,
        "GET",
        "/client/v4/accounts/{account_id}/pages/projects",
    ) - before.count(
        Vendor::Cloudflare,
        "GET",
        "/client/v4/accounts/{account_id}/pages/projects",
    );
    assert_eq!(pages, 3);
    sim.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn faults_during_upload_still_complete() {
    let sim = sim(|_| {}).await;
    let cf = client(&sim, |_| {});
    cf.create_project("faulty", "main").await.expect("create");
    let dir = tempfile::tempdir().expect("tmp");
    for i in 0..30 {
        write(dir.path(), &format!("f{i}.txt"), format!("file {i}"));
    }
    let rule = |path: &str, kind: FaultKind, times: u64| FaultRule {
        vendor: Some(Vendor::Cloudflare),
        method: Some("POST".into()),
        path: path.into(),
        probability: 1.0,
        kind,
        times: Some(times),
    };
    sim.set_faults(vec![
        rule("*/pages/assets/upload", FaultKind::Status(503), 2),
        rule("*/pages/assets/upload", FaultKind::RateLimited, 1),
        rule("*/pages/assets/check-missing", FaultKind::Status(502), 1),
        rule("*/pages/assets/upsert-hashes", FaultKind::Status(500), 1),
        // Refused before it is handled: sent again after Retry-After.
        rule("*/pages/projects/*/deployments", FaultKind::RateLimited, 1),
    ]);
    let out = cf
        .deploy_directory("faulty", dir.path(), meta("f1"))
        .await
        .expect("deploy despite faults");
    assert_eq!(out.files_total, 30);
    assert_eq!(out.files_uploaded, 30);
    assert!(out.warnings.is_empty(), "{:?}", out.warnings);
    let stats = sim.stats();
    assert_eq!(stats.faults_injected.get("503"), Some(&2));
    assert_eq!(stats.faults_injected.get("502"), Some(&1));
    assert_eq!(stats.faults_injected.get("500"), Some(&1));
    assert_eq!(stats.faults_injected.values().sum::<u64>(), 6);
    assert_eq!(stats.cloudflare["deployments_created"], json!(1));
    assert_eq!(stats.cloudflare["asset_files_uploaded"], json!(30));
    // Nothing was left out of the deployment.
    let dump = sim.state_dump();
    assert_eq!(
        dump["cloudflare"]["projects"][0]["deployments"][0]["manifest"]
            .as_object()
            .map(|m| m.len()),
        Some(30)
    );
    sim.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn oversized_file_and_too_many_files_are_refused_before_any_upload() {
    let sim = sim(|c| c.cloudflare.max_file_count_allowed = 5).await;
    let cf = client(&sim, |_| {});
    cf.create_project("limits", "main").await.expect("create");

    let big = tempfile::tempdir().expect("tmp");
    write(big.path(), "index.html", "ok");
    let f = std::fs::File::create(big.path().join("video.mp4")).expect("create");
    // Sparse: 25 MiB + 1 byte without writing them.
    f.set_len(25 * 1024 * 1024 + 1).expect("set_len");
    drop(f);
    let err = cf
        .deploy_directory("limits", big.path(), meta("big"))
        .await
        .expect_err("refused");
    assert!(
        matches!(&err, DeployError::FileTooLarge { path, size, .. } if path == "video.mp4" && *size == 25 * 1024 * 1024 + 1),
        "{err:?}"
    );
    assert!(err.to_string().contains("video.mp4"), "{err}");

    let many = tempfile::tempdir().expect("tmp");
    for i in 0..6 {
        write(many.path(), &format!("{i}.html"), format!("{i}"));
    }
    let err = cf
        .deploy_directory("limits", many.path(), meta("many"))
        .await
        .expect_err("refused");
    assert!(
        matches!(err, DeployError::TooManyFiles { count: 6, max: 5 }),
        "{err:?}"
    );
    assert!(err.to_string().contains('6'), "{err}");
    // Nothing was checked, uploaded or deployed.
    for counter in [
        "check_missing_calls",
        "upload_requests",
        "upsert_calls",
        "deployments_created",
    ] {
        assert_eq!(cf_stat(&sim, counter), 0, "{counter}");
    }
    let stats = sim.stats();
    assert_eq!(
        stats.count(Vendor::Cloudflare, "POST", "/client/v4/pages/assets/upload"),
        0
    );

    // Exactly at the limit is fine.
    std::fs::remove_file(many.path().join("5.html")).expect("rm");
    cf.deploy_directory("limits", many.path(), meta("five"))
        .await
        .expect("five files deploy");
    sim.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn domains_add_get_retry_and_list() {
    let sim = sim(|c| c.cloudflare.domain_activation_delay_ms = 200).await;
    let cf = client(&sim, |_| {});
    let project = cf
        .create_project("intelli-dom", "main")
        .await
        .expect("create");
    let name = "dom.intelliservice.io";
    let added = cf.add_domain("intelli-dom", name).await.expect("add");
    assert_eq!(added.name, name);
    assert!(matches!(
        added.status,
        DomainStatus::Initializing | DomainStatus::Pending
    ));
    // Adding again returns what is there (the API answers 409).
    let again = cf.add_domain("intelli-dom", name).await.expect("add again");
    assert_eq!(again.id, added.id);
    assert!(
        cf.get_domain("intelli-dom", "other.intelliservice.io")
            .await
            .expect("get")
            .is_none()
    );
    assert!(
        cf.get_domain("no-such-project", name)
            .await
            .expect("get")
            .is_none()
    );

    let zone = cf.find_zone(ZONE).await.expect("zone").expect("exists");
    cf.create_dns_record(
        &zone.id,
        &DnsRecordInput::proxied_cname(
            name,
            &project.subdomain,
            Some("managed by intelli: dom".into()),
        ),
    )
    .await
    .expect("cname");
    let mut status = DomainStatus::Pending;
    for _ in 0..50 {
        status = cf
            .get_domain("intelli-dom", name)
            .await
            .expect("get")
            .expect("exists")
            .status;
        if status == DomainStatus::Active {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(status, DomainStatus::Active);
    let retried = cf.retry_domain("intelli-dom", name).await.expect("retry");
    assert_eq!(retried.name, name);
    let listed = cf.list_domains("intelli-dom").await.expect("list");
    assert_eq!(listed.len(), 1);
    let p = cf
        .get_project("intelli-dom")
        .await
        .expect("get")
        .expect("exists");
    assert_eq!(p.domains, vec![name.to_owned()]);
    sim.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn dns_records_are_listed_across_pages_and_keep_their_comment() {
    let sim = sim(|_| {}).await;
    let cf = client(&sim, |c| c.dns_page_size = 3);
    assert!(cf.find_zone("example.org").await.expect("zones").is_none());
    let zone = cf.find_zone(ZONE).await.expect("zones").expect("zone");
    assert_eq!(zone.name, ZONE);
    for i in 0..7 {
        let r = cf
            .create_dns_record(
                &zone.id,
                &DnsRecordInput::proxied_cname(
                    format!("c{i}.{ZONE}"),
                    format!("intelli-c{i}.pages.dev"),
                    Some(format!("managed by intelli: c{i}")),
                ),
            )
            .await
            .expect("create");
        assert_eq!(
            r.comment.as_deref(),
            Some(format!("managed by intelli: c{i}").as_str())
        );
        assert!(r.proxied);
    }
    // One record intelli does not own.
    cf.create_dns_record(
        &zone.id,
        &DnsRecordInput {
            record_type: "TXT".into(),
            name: format!("_verify.{ZONE}"),
            content: "\"hello\"".into(),
            proxied: None,
            ttl: 300,
            comment: None,
            tags: None,
        },
    )
    .await
    .expect("txt");

    let route = "/client/v4/zones/{zone_id}/dns_records";
    let before = sim.stats().count(Vendor::Cloudflare, "GET", route);
    let managed = cf
        .list_dns_records(
            &zone.id,
            &DnsFilters {
                comment_contains: Some("managed by intelli".into()),
                ..DnsFilters::default()
            },
        )
        .await
        .expect("list");
    assert_eq!(managed.len(), 7);
    assert_eq!(
        sim.stats().count(Vendor::Cloudflare, "GET", route) - before,
        3
    );
    let all = cf
        .list_dns_records(&zone.id, &DnsFilters::default())
        .await
        .expect("list all");
    assert_eq!(all.len(), 8);
    let one = cf
        .list_dns_records(
            &zone.id,
            &DnsFilters {
                record_type: Some("CNAME".into()),
                name: Some(format!("c3.{ZONE}")),
                ..DnsFilters::default()
            },
        )
        .await
        .expect("by name");
    assert_eq!(one.len(), 1);
    let rec = &one[0];

    // PATCH changes only what it names: the comment stays.
    let patched = cf
        .patch_dns_record(
            &zone.id,
            &rec.id,
            &DnsRecordPatch {
                content: Some("intelli-c3-x1y.pages.dev".into()),
                ..DnsRecordPatch::default()
            },
        )
        .await
        .expect("patch");
    assert_eq!(patched.content, "intelli-c3-x1y.pages.dev");
    assert_eq!(patched.comment.as_deref(), Some("managed by intelli: c3"));
    // PUT writes the whole record, comment included.
    let put = cf
        .update_dns_record(
            &zone.id,
            &rec.id,
            &DnsRecordInput::proxied_cname(
                format!("c3.{ZONE}"),
                "intelli-c3.pages.dev",
                Some("managed by intelli: c3".into()),
            ),
        )
        .await
        .expect("put");
    assert_eq!(put.content, "intelli-c3.pages.dev");
    assert_eq!(put.comment.as_deref(), Some("managed by intelli: c3"));
    assert_eq!(put.ttl, 1);
    sim.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn tokens_never_appear_in_errors() {
    let sim = sim(|_| {}).await;
    let secret = "cf-secret-token-value-0123456789";
    let bad = CloudflareClient::new(fast_config(
        &sim.cloudflare_api_url(),
        secret,
        &sim.cloudflare_account_id(),
    ))
    .expect("client");
    let err = bad.list_projects().await.expect_err("unauthorized");
    assert_eq!(err.kind(), ErrorKind::Unauthorized);
    for text in [err.to_string(), format!("{err:?}"), format!("{bad:?}")] {
        assert!(!text.contains(secret), "{text}");
    }
    let dir = tempfile::tempdir().expect("tmp");
    write(dir.path(), "index.html", "x");
    let derr = bad
        .deploy_directory("any", dir.path(), meta("x"))
        .await
        .expect_err("unauthorized deploy");
    for text in [derr.to_string(), format!("{derr:?}")] {
        assert!(!text.contains(secret), "{text}");
    }

    // With a good token: a failing deploy (unknown project) names the problem, not the token.
    let good = client(&sim, |_| {});
    let token = sim.cloudflare_token();
    let derr = good
        .deploy_directory("missing-project", dir.path(), meta("x"))
        .await
        .expect_err("no such project");
    assert!(
        matches!(&derr, DeployError::Api(e) if e.kind() == ErrorKind::NotFound),
        "{derr:?}"
    );
    for text in [derr.to_string(), format!("{derr:?}"), format!("{good:?}")] {
        assert!(!text.contains(&token), "{text}");
    }
    let config = fast_config(&sim.cloudflare_api_url(), secret, "acc");
    assert!(!format!("{config:?}").contains(secret));
    sim.shutdown().await.expect("shutdown");
}

// ---------------------------------------------------------------------------------------------
// Local servers around the Cloudflare router (for what SimConfig cannot set).

const TOKEN: &str = "local-test-token";
const ACCOUNT: &str = "0123456789abcdef0123456789abcdef";

struct Local {
    base: String,
    sim: Arc<CloudflareSim>,
    recorded: Arc<Mutex<Vec<Recorded>>>,
    _served: Served,
}

#[derive(Clone, Debug)]
struct Recorded {
    method: String,
    path: String,
    content_type: String,
    body: Vec<u8>,
}

/// The router on 127.0.0.1 with a recorder of request bodies and, optionally, a delay before
/// the first `upload` request.
async fn local(jwt_expiry: Duration, delay_first_upload: Option<Duration>) -> Local {
    let (sim, api) = common::sim::cloudflare(intelli::sim::cloudflare::CloudflareConfig {
        account_ids: vec![ACCOUNT.into()],
        zone_names: vec![ZONE.into()],
        tokens: vec![ApiToken {
            value: TOKEN.into(),
            read_only: false,
        }],
        jwt_expiry,
        ..intelli::sim::cloudflare::CloudflareConfig::default()
    });
    let recorded: Arc<Mutex<Vec<Recorded>>> = Arc::default();
    let rec = recorded.clone();
    let delayed = Arc::new(Mutex::new(delay_first_upload));
    let app = api.layer(axum::middleware::from_fn(
        move |req: Request, next: Next| {
            let rec = rec.clone();
            let delayed = delayed.clone();
            async move {
                let (parts, body) = req.into_parts();
                let bytes = axum::body::to_bytes(body, 64 * 1024 * 1024)
                    .await
                    .unwrap_or_default();
                let path = parts.uri.path().to_owned();
                rec.lock().unwrap().push(Recorded {
                    method: parts.method.to_string(),
                    path: path.clone(),
                    content_type: parts
                        .headers
                        .get("content-type")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_owned(),
                    body: bytes.to_vec(),
                });
                if path.ends_with("/pages/assets/upload") {
                    let wait = delayed.lock().unwrap().take();
                    if let Some(d) = wait {
                        tokio::time::sleep(d).await;
                    }
                }
                next.run(Request::from_parts(parts, axum::body::Body::from(bytes)))
                    .await
            }
        },
    ));
    let served = common::sim::serve(app).await;
    Local {
        base: format!("{}/client/v4", served.base),
        sim,
        recorded,
        _served: served,
    }
}

fn local_stat(l: &Local, name: &str) -> u64 {
    l.sim.stats()[name].as_u64().unwrap_or(0)
}

#[tokio::test]
async fn an_expiring_upload_jwt_is_refreshed() {
    // Tokens live 2 s; the first upload is held 3 s before the API reads it, so the token
    // it carries has expired by then (403, code 8000013).
    let l = local(Duration::from_secs(2), Some(Duration::from_secs(3))).await;
    let cf = CloudflareClient::new(fast_config(&l.base, TOKEN, ACCOUNT)).expect("client");
    cf.create_project("jwt", "main").await.expect("create");
    let dir = tempfile::tempdir().expect("tmp");
    for i in 0..5 {
        write(dir.path(), &format!("{i}.js"), format!("let x = {i};"));
    }
    let out = cf
        .deploy_directory("jwt", dir.path(), meta("j1"))
        .await
        .expect("deploy with a refreshed token");
    assert_eq!(out.files_uploaded, 5);
    assert!(local_stat(&l, "expired_jwt_rejections") >= 1);
    assert!(local_stat(&l, "upload_tokens_issued") >= 2);
    assert_eq!(local_stat(&l, "asset_files_uploaded"), 5);
}

// ---------------------------------------------------------------------------------------------
// Request bodies against the vendored spec subset.

fn validate(schemas: &Value, schema: Value, body: &Value, what: &str) {
    assert_matches_draft4(schemas, &schema, body, what);
}

/// Field names and values of a multipart/form-data body (text parts only as text).
fn multipart_fields(content_type: &str, body: &[u8]) -> Vec<(String, Option<String>, Vec<u8>)> {
    let boundary = content_type
        .split("boundary=")
        .nth(1)
        .expect("boundary")
        .trim_matches('"');
    let delim = format!("--{boundary}");
    let text = body.to_vec();
    let mut out = Vec::new();
    let positions: Vec<usize> = text
        .windows(delim.len())
        .enumerate()
        .filter(|(_, w)| *w == delim.as_bytes())
        .map(|(i, _)| i)
        .collect();
    for pair in positions.windows(2) {
        let part = &text[pair[0] + delim.len()..pair[1]];
        let part = part.strip_prefix(b"\r\n").unwrap_or(part);
        let split = part
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("part headers");
        let headers = String::from_utf8_lossy(&part[..split]).to_string();
        let content = part[split + 4..]
            .strip_suffix(b"\r\n")
            .unwrap_or(&part[split + 4..]);
        let attr = |name: &str| {
            headers
                .split(';')
                .map(str::trim)
                .find_map(|kv| kv.strip_prefix(&format!("{name}=\"")))
                .and_then(|v| v.split('"').next())
                .map(str::to_owned)
        };
        out.push((
            attr("name").expect("field name"),
            attr("filename"),
            content.to_vec(),
        ));
    }
    out
}

#[tokio::test]
async fn request_bodies_match_the_vendored_spec() {
    let l = local(Duration::from_secs(600), None).await;
    let cf = CloudflareClient::new(fast_config(&l.base, TOKEN, ACCOUNT)).expect("client");
    let project = cf.create_project("spec", "main").await.expect("create");
    cf.patch_project("spec", "main").await.expect("patch");
    let dir = tempfile::tempdir().expect("tmp");
    small_site(dir.path());
    let long_message = "é".repeat(300);
    cf.deploy_directory(
        "spec",
        dir.path(),
        DeployMeta {
            commit_dirty: true,
            ..DeployMeta::new("main", "fp", long_message.clone())
        },
    )
    .await
    .expect("deploy");
    let name = "spec.intelliservice.io";
    cf.add_domain("spec", name).await.expect("domain");
    cf.retry_domain("spec", name).await.expect("retry");
    let zone = cf.find_zone(ZONE).await.expect("zone").expect("zone");
    let rec = cf
        .create_dns_record(
            &zone.id,
            &DnsRecordInput::proxied_cname(
                name,
                &project.subdomain,
                Some("managed by intelli: spec".into()),
            ),
        )
        .await
        .expect("create record");
    cf.update_dns_record(
        &zone.id,
        &rec.id,
        &DnsRecordInput::proxied_cname(
            name,
            &project.subdomain,
            Some("managed by intelli: spec".into()),
        ),
    )
    .await
    .expect("put");
    cf.patch_dns_record(
        &zone.id,
        &rec.id,
        &DnsRecordPatch {
            proxied: Some(true),
            comment: Some("managed by intelli: spec".into()),
            ..DnsRecordPatch::default()
        },
    )
    .await
    .expect("patch");

    let doc: Value =
        serde_json::from_str(include_str!("specs/cloudflare/openapi-subset.json")).expect("spec");
    let schemas = to_json_schema(&doc["components"]["schemas"], false);
    let request_schema = |template: &str, method: &str| -> Value {
        doc["paths"][template][method]["requestBody"]["content"]["application/json"]["schema"]
            .clone()
    };
    let hex32 = json!({"type": "string", "pattern": "^[0-9a-f]{32}$"});
    // tests/specs/cloudflare/assets-reference.json describes these requests in words; here
    // they are as schemas.
    let hashes_schema = json!({
        "type": "object", "required": ["hashes"], "additionalProperties": false,
        "properties": {"hashes": {"type": "array", "minItems": 1, "items": hex32}}
    });
    let upload_schema = json!({
        "type": "array", "minItems": 1,
        "items": {
            "type": "object", "required": ["key", "value", "metadata", "base64"],
            "additionalProperties": false,
            "properties": {
                "key": hex32, "value": {"type": "string"},
                "base64": {"enum": [true]},
                "metadata": {"type": "object", "required": ["contentType"],
                             "properties": {"contentType": {"type": "string", "minLength": 1}}}
            }
        }
    });
    // A PATCH may leave out what the full record requires.
    let mut cname_patch = schemas["dns-records_CNAMERecord"].clone();
    cname_patch
        .as_object_mut()
        .expect("object")
        .remove("required");

    let recorded = l.recorded.lock().unwrap().clone();
    let mut seen = BTreeSet::new();
    let projects = format!("/client/v4/accounts/{ACCOUNT}/pages/projects");
    for r in &recorded {
        let json_body = || -> Value {
            assert!(r.content_type.starts_with("application/json"), "{r:?}");
            serde_json::from_slice(&r.body).expect("JSON body")
        };
        let what = format!("{} {}", r.method, r.path);
        match (r.method.as_str(), r.path.as_str()) {
            ("POST", p) if p == projects => {
                let b = json_body();
                validate(
                    &schemas,
                    request_schema("/accounts/{account_id}/pages/projects", "post"),
                    &b,
                    &what,
                );
                assert_eq!(b, json!({"name": "spec", "production_branch": "main"}));
                seen.insert("create project");
            }
            ("PATCH", p) if p == format!("{projects}/spec") => {
                let b = json_body();
                validate(
                    &schemas,
                    request_schema(
                        "/accounts/{account_id}/pages/projects/{project_name}",
                        "patch",
                    ),
                    &b,
                    &what,
                );
                // The spec gives only an example; the fields must be project fields.
                validate(
                    &schemas,
                    json!({"$ref": "#/components/schemas/pages_projects"}),
                    &b,
                    &what,
                );
                seen.insert("patch project");
            }
            ("POST", p) if p == format!("{projects}/spec/domains") => {
                let b = json_body();
                validate(
                    &schemas,
                    request_schema(
                        "/accounts/{account_id}/pages/projects/{project_name}/domains",
                        "post",
                    ),
                    &b,
                    &what,
                );
                assert_eq!(b, json!({"name": name}));
                seen.insert("add domain");
            }
            ("PATCH", p) if p.starts_with(&format!("{projects}/spec/domains/")) => {
                assert!(r.body.is_empty(), "retry sends no body");
                seen.insert("retry domain");
            }
            ("POST", p) if p == format!("{projects}/spec/deployments") => {
                assert!(r.content_type.starts_with("multipart/form-data"), "{r:?}");
                let fields = multipart_fields(&r.content_type, &r.body);
                let names: BTreeSet<&str> = fields.iter().map(|(n, _, _)| n.as_str()).collect();
                // `branch` is the one field the 2024 spec documents; the rest are wrangler's.
                let allowed: BTreeSet<&str> = [
                    "manifest",
                    "branch",
                    "commit_hash",
                    "commit_message",
                    "commit_dirty",
                    "_headers",
                    "_redirects",
                ]
                .into();
                assert!(names.is_subset(&allowed), "{names:?}");
                let get = |n: &str| fields.iter().find(|(f, _, _)| f == n).expect(n);
                let manifest: Value =
                    serde_json::from_slice(&get("manifest").2).expect("manifest JSON");
                validate(
                    &schemas,
                    json!({"type": "object", "minProperties": 1,
                    "patternProperties": {"^/": hex32}, "additionalProperties": false}),
                    &manifest,
                    "manifest",
                );
                assert_eq!(get("branch").2, b"main");
                assert_eq!(get("commit_hash").2, b"fp");
                assert_eq!(get("commit_dirty").2, b"true");
                let message = String::from_utf8(get("commit_message").2.clone()).expect("utf-8");
                assert!(
                    message.len() <= 384 && long_message.starts_with(&message),
                    "{}",
                    message.len()
                );
                assert_eq!(get("_headers").1.as_deref(), Some("_headers"));
                assert_eq!(get("_headers").2, b"/*\n  X-Intelli: yes\n");
                assert_eq!(get("_redirects").1.as_deref(), Some("_redirects"));
                seen.insert("create deployment");
            }
            ("POST", "/client/v4/pages/assets/check-missing") => {
                validate(&schemas, hashes_schema.clone(), &json_body(), &what);
                seen.insert("check-missing");
            }
            ("POST", "/client/v4/pages/assets/upsert-hashes") => {
                validate(&schemas, hashes_schema.clone(), &json_body(), &what);
                seen.insert("upsert-hashes");
            }
            ("POST", "/client/v4/pages/assets/upload") => {
                validate(&schemas, upload_schema.clone(), &json_body(), &what);
                seen.insert("upload");
            }
            ("POST", p) if p.ends_with("/dns_records") => {
                let b = json_body();
                validate(
                    &schemas,
                    json!({"$ref": "#/components/schemas/dns-records_CNAMERecord"}),
                    &b,
                    &what,
                );
                assert_eq!(b["comment"], json!("managed by intelli: spec"));
                assert_eq!(b["proxied"], json!(true));
                seen.insert("create record");
            }
            ("PUT", p) if p.contains("/dns_records/") => {
                validate(
                    &schemas,
                    json!({"$ref": "#/components/schemas/dns-records_CNAMERecord"}),
                    &json_body(),
                    &what,
                );
                seen.insert("put record");
            }
            ("PATCH", p) if p.contains("/dns_records/") => {
                validate(&schemas, cname_patch.clone(), &json_body(), &what);
                seen.insert("patch record");
            }
            ("GET", _) => assert!(r.body.is_empty(), "{what} has a body"),
            _ => panic!("unexpected request {what}"),
        }
    }
    assert_eq!(seen.len(), 11, "{seen:?}");
}

#[tokio::test]
async fn lost_answers_are_re_observed_not_repeated() {
    // Deployments take 300 ms to go live, so the deploy also polls.
    let sim = sim(|c| c.cloudflare.deployment_delay_ms = 300).await;
    let cf = client(&sim, |_| {});
    let drop_once = |path: &str| FaultRule {
        vendor: Some(Vendor::Cloudflare),
        method: Some("POST".into()),
        path: path.into(),
        probability: 1.0,
        kind: FaultKind::CommitThenDrop,
        times: Some(1),
    };
    sim.set_faults(vec![
        drop_once("*/pages/projects"),
        drop_once("*/pages/projects/*/deployments"),
        drop_once("*/pages/projects/*/domains"),
        drop_once("*/zones/*/dns_records"),
    ]);
    let project = cf.create_project("lost", "main").await.expect("create");
    assert_eq!(project.name, "lost");
    let dir = tempfile::tempdir().expect("tmp");
    write(dir.path(), "index.html", "lost and found");
    let out = cf
        .deploy_directory("lost", dir.path(), meta("lost-1"))
        .await
        .expect("deploy");
    assert!(out.deployment.is_deployed());
    assert_eq!(
        out.deployment.metadata().commit_hash.as_deref(),
        Some("lost-1")
    );
    let domain = cf
        .add_domain("lost", "lost.intelliservice.io")
        .await
        .expect("domain");
    assert_eq!(domain.name, "lost.intelliservice.io");
    let zone = cf.find_zone(ZONE).await.expect("zone").expect("zone");
    let rec = cf
        .create_dns_record(
            &zone.id,
            &DnsRecordInput::proxied_cname(
                "lost.intelliservice.io",
                &project.subdomain,
                Some("managed by intelli: lost".into()),
            ),
        )
        .await
        .expect("record");
    assert_eq!(rec.comment.as_deref(), Some("managed by intelli: lost"));
    let stats = sim.stats();
    assert_eq!(stats.faults_injected.get("commit_then_drop"), Some(&4));
    // Each thing exists once: nothing was sent twice.
    for counter in [
        "projects_created",
        "deployments_created",
        "domains_added",
        "dns_records_created",
    ] {
        assert_eq!(stats.cloudflare[counter], json!(1), "{counter}");
    }
    // The deploy polled until live.
    assert!(
        stats.count(
            Vendor::Cloudflare,
            "GET",
            "/client/v4/accounts/{account_id}/pages/projects/{project_name}/deployments/{deployment_id}"
        ) >= 1
    );
    sim.shutdown().await.expect("shutdown");
}

/// A minimal Pages API whose deployments fail at the build stage (the simulator's never do).
#[tokio::test]
async fn a_failed_deployment_reports_its_stage_and_log() {
    use axum::routing::{get, post};
    use base64::Engine;
    fn ok(result: Value) -> axum::Json<Value> {
        axum::Json(json!({"success": true, "errors": [], "messages": [], "result": result}))
    }
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
        + 600;
    let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(json!({"exp": exp, "max_file_count_allowed": 100}).to_string());
    let jwt = format!("eyJhbGciOiJIUzI1NiJ9.{payload}.c2ln");
    let stage = |status: &str| json!({"name": "build", "status": status, "started_on": null, "ended_on": null});
    let deployment = move |status: &str| {
        json!({"id": "d-1", "latest_stage": stage(status), "stages": [stage(status)],
               "deployment_trigger": {"type": "ad_hoc", "metadata": {"branch": "main"}}})
    };
    let d_active = deployment("active");
    let d_failed = deployment("failure");
    let p = "/client/v4/accounts/{a}/pages/projects/{p}";
    let app = Router::new()
        .route(
            &format!("{p}/upload-token"),
            get(move || {
                let jwt = jwt.clone();
                async move { ok(json!({"jwt": jwt})) }
            }),
        )
        .route(
            "/client/v4/pages/assets/check-missing",
            post(|| async { ok(json!([])) }),
        )
        .route(
            "/client/v4/pages/assets/upsert-hashes",
            post(|| async { ok(Value::Null) }),
        )
        .route(
            &format!("{p}/deployments"),
            post(move || {
                let d = d_active.clone();
                async move { ok(d) }
            }),
        )
        .route(
            &format!("{p}/deployments/{{id}}"),
            get(move || {
                let d = d_failed.clone();
                async move { ok(d) }
            }),
        )
        .route(
            &format!("{p}/deployments/{{id}}/history/logs"),
            get(|| async {
                ok(json!({"total": 2, "data": [
                    {"line": "Building", "ts": "2026-01-01T00:00:00Z"},
                    {"line": "Error: out of memory", "ts": "2026-01-01T00:00:01Z"}]}))
            }),
        );
    let served = common::sim::serve(app).await;
    let cf = CloudflareClient::new(fast_config(
        &format!("{}/client/v4", served.base),
        TOKEN,
        ACCOUNT,
    ))
    .expect("client");
    let dir = tempfile::tempdir().expect("tmp");
    write(dir.path(), "index.html", "x");
    let token = cf.get_upload_token("p").await.expect("token");
    assert_eq!(token.max_file_count_allowed, Some(100));
    assert!(!token.is_expired());
    let err = cf
        .deploy_directory("p", dir.path(), meta("x"))
        .await
        .expect_err("failed deployment");
    match &err {
        DeployError::Failed {
            id,
            stage,
            status,
            log,
        } => {
            assert_eq!(
                (id.as_str(), stage.as_str(), status.as_str()),
                ("d-1", "build", "failure")
            );
            assert!(
                log.as_deref().is_some_and(|l| l.contains("out of memory")),
                "{log:?}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains("out of memory"), "{err}");
}

#[tokio::test]
async fn one_limiter_paces_every_clone_below_the_vendor_quota() {
    // The vendor's 1200 per 5 minutes, scaled: 20 per 1.5 s (a breach blocks for 1.5 s).
    let sim = sim(|c| {
        c.rate_limit_scale = 0.005;
        c.cloudflare.rate_limit_requests = 20;
    })
    .await;
    let cf = client(&sim, |c| {
        c.rate_limit_requests = 16;
        c.rate_limit_window = Duration::from_millis(1500);
    });
    let started = std::time::Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..3 {
        // Clones, and a client "for another account", all share the one limiter.
        let c = if i == 2 {
            cf.for_account(sim.cloudflare_account_id())
        } else {
            cf.clone()
        };
        tasks.spawn(async move {
            for _ in 0..12 {
                c.get_project("absent").await.expect("get");
            }
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.expect("task");
    }
    // 36 calls at 16 per 1.5 s (counted over 1.575 s) take two windows and more…
    assert!(
        started.elapsed() >= Duration::from_millis(3000),
        "{:?}",
        started.elapsed()
    );
    // …and the vendor never had to refuse one.
    assert_eq!(cf_stat(&sim, "rate_limited"), 0);
    sim.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn many_files_are_split_into_batches_within_the_file_limit() {
    let sim = sim(|_| {}).await;
    let cf = client(&sim, |_| {});
    cf.create_project("many", "main").await.expect("create");
    let dir = tempfile::tempdir().expect("tmp");
    let n = 6_100;
    for i in 0..n {
        write(
            dir.path(),
            &format!("chunks/{}/{i}.js", i % 10),
            format!("export default {i};"),
        );
    }
    let out = cf
        .deploy_directory("many", dir.path(), meta("many"))
        .await
        .expect("deploy");
    assert_eq!((out.files_total, out.files_uploaded), (n, n));
    // 3 batches of 2,000 files (wrangler's MAX_BUCKET_FILE_COUNT) and one of 100; the
    // simulator refuses a request over 2,000 files, so they all fit.
    assert_eq!(cf_stat(&sim, "upload_requests"), 4);
    assert_eq!(cf_stat(&sim, "asset_files_uploaded"), n as u64);
    sim.shutdown().await.expect("shutdown");
}

/// A 5xx on a look-before-create write (nothing was made): the client looks, finds nothing,
/// and creates again, once; the thing exists once.
#[tokio::test]
async fn a_failed_create_is_looked_for_then_sent_again() {
    let sim = sim(|_| {}).await;
    let cf = client(&sim, |_| {});
    let fail_once = |path: &str| FaultRule {
        vendor: Some(Vendor::Cloudflare),
        method: Some("POST".into()),
        path: path.into(),
        probability: 1.0,
        kind: FaultKind::Status(503),
        times: Some(1),
    };
    sim.set_faults(vec![
        fail_once("*/pages/projects"),
        fail_once("*/pages/projects/*/domains"),
        fail_once("*/zones/*/dns_records"),
    ]);
    let project = cf.create_project("again", "main").await.expect("create");
    cf.add_domain("again", "again.intelliservice.io")
        .await
        .expect("domain");
    let zone = cf.find_zone(ZONE).await.expect("zone").expect("zone");
    let input = DnsRecordInput::proxied_cname(
        "again.intelliservice.io",
        &project.subdomain,
        Some("managed by intelli: again".into()),
    );
    cf.create_dns_record(&zone.id, &input)
        .await
        .expect("record");
    let stats = sim.stats();
    assert_eq!(stats.faults_injected.get("503"), Some(&3));
    for counter in ["projects_created", "domains_added", "dns_records_created"] {
        assert_eq!(stats.cloudflare[counter], json!(1), "{counter}");
    }
    // Two sends each (the refused one and the one that made it).
    for route in [
        "/client/v4/accounts/{account_id}/pages/projects",
        "/client/v4/accounts/{account_id}/pages/projects/{project_name}/domains",
        "/client/v4/zones/{zone_id}/dns_records",
    ] {
        assert_eq!(stats.count(Vendor::Cloudflare, "POST", route), 2, "{route}");
    }
    // An identical record is refused by the vendor; the plain create reads that as "there".
    let err = cf
        .create_dns_record_once(&zone.id, &input)
        .await
        .expect_err("identical record refused");
    // An identical CNAME meets the same-host rule first (81053); other types get 81057.
    assert!(intelli::cloudflare::has_code(&err, "81053"), "{err}");
    let same = cf.create_dns_record(&zone.id, &input).await.expect("found");
    assert_eq!(same.name, "again.intelliservice.io");
    assert_eq!(sim.stats().cloudflare["dns_records_created"], json!(1));
    sim.shutdown().await.expect("shutdown");
}

/// Cloudflare blocks the whole user on a 429: every request of the client waits for the
/// block's end instead of earning its own 429, and a block longer than the client waits in
/// place defers requests without sending them.
#[tokio::test]
async fn a_cloudflare_429_blocks_every_request_of_the_client() {
    let sim = sim(|_| {}).await;
    let cf = client(&sim, |_| {});
    sim.set_faults(vec![FaultRule {
        vendor: Some(Vendor::Cloudflare),
        method: Some("GET".into()),
        path: "/client/v4/zones".into(),
        probability: 1.0,
        kind: FaultKind::RateLimited,
        times: Some(1),
    }]);
    let started = std::time::Instant::now();
    let (zone, verify) = tokio::join!(cf.find_zone(ZONE), async {
        // Starts after the zone read got its 429 (the sim answers at once).
        tokio::time::sleep(Duration::from_millis(300)).await;
        cf.verify_token().await
    });
    assert!(zone.expect("zone read waited out").is_some());
    assert!(verify.expect("verify waited for the block"));
    // Retry-After is 300 s × 0.01 = 3 s, rounded up.
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    let stats = sim.stats();
    assert_eq!(
        stats.count_status(Vendor::Cloudflare, "GET", "/client/v4/zones", 429),
        1
    );
    assert_eq!(
        stats.count_status(
            Vendor::Cloudflare,
            "GET",
            "/client/v4/user/tokens/verify",
            429
        ),
        0
    );

    // A client that waits at most 1 s in place: the same block defers, and the request
    // during the block is not even sent.
    let impatient = client(&sim, |c| c.retry.max_wait = Duration::from_secs(1));
    sim.set_faults(vec![FaultRule {
        vendor: Some(Vendor::Cloudflare),
        method: Some("GET".into()),
        path: "/client/v4/zones".into(),
        probability: 1.0,
        kind: FaultKind::RateLimited,
        times: Some(1),
    }]);
    sim.reset_stats();
    let e = impatient.find_zone(ZONE).await.expect_err("deferred");
    assert_eq!(e.kind(), intelli::http::ErrorKind::Deferred, "{e}");
    assert_eq!(e.policy(), intelli::http::Policy::Park);
    let e = impatient.verify_token().await.expect_err("deferred unsent");
    assert!(e.is_deferred(), "{e}");
    assert_eq!(
        sim.stats()
            .count(Vendor::Cloudflare, "GET", "/client/v4/user/tokens/verify"),
        0
    );
    sim.shutdown().await.expect("shutdown");
}

/// A create that keeps failing with a 5xx (not handled: nothing to find) is looked for and sent
/// again, up to `MAX_CREATE_SENDS`; one create in about 800 failed under 10% 5xx with 3 sends.
#[tokio::test]
async fn a_create_answered_5xx_is_looked_for_and_sent_again_up_to_the_limit() {
    let sim = sim(|_| {}).await;
    let cf = client(&sim, |_| {});
    let fail = |times: u64| FaultRule {
        vendor: Some(Vendor::Cloudflare),
        method: Some("POST".into()),
        path: "*/pages/projects".into(),
        probability: 1.0,
        kind: FaultKind::Status(503),
        times: Some(times),
    };
    let sends = u64::from(intelli::cloudflare::MAX_CREATE_SENDS);
    sim.set_faults(vec![fail(sends - 1)]);
    let project = cf.create_project("stubborn", "main").await.expect("create");
    assert_eq!(project.name, "stubborn");
    let stats = sim.stats();
    let route = "/client/v4/accounts/{account_id}/pages/projects";
    assert_eq!(stats.count(Vendor::Cloudflare, "POST", route), sends);
    assert_eq!(
        stats.count_status(Vendor::Cloudflare, "POST", route, 503),
        sends - 1
    );
    // Every send but the last was followed by a look; nothing was created twice.
    let projects = sim.state_dump()["cloudflare"]["projects"]
        .as_array()
        .map_or(0, Vec::len);
    assert_eq!(projects, 1);

    sim.set_faults(vec![fail(sends)]);
    let err = cf
        .create_project("hopeless", "main")
        .await
        .expect_err("every send failed");
    assert!(err.is_ambiguous(), "{err}");
    sim.shutdown().await.expect("shutdown");
}
