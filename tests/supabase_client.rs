//! The Supabase client and the shared HTTP layer, over real sockets.
//!
//! - Contract: every request body the client sends is validated against the vendor's request
//!   schema from `tests/specs/supabase/management-v1-subset.json` (OpenAPI 3.0 `nullable`
//!   converted to JSON Schema). The Storage API publishes no spec: its bodies are checked
//!   against schemas written here from the shapes in reference/supabase-api.md §5 (the
//!   supabase/storage server's route schemas), which is the best source there is.
//! - Behaviour: against the project's simulator (`intelli::sim::start`, real PostgreSQL
//!   behind it), and against tiny axum servers where a test needs an answer the simulator
//!   does not give (a `Retry-After` header, an error body that echoes the request).

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime};

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use common::openapi::to_json_schema;
use common::sim::{serve, start};
use futures_util::future::join_all;
use intelli::http::{ErrorKind, Policy, RetryConfig};
use intelli::sim::{FaultKind, FaultRule, SimConfig, SimHandle, Vendor};
use intelli::supabase::{
    AuthConfigPatch, BrowserKeyKind, Bucket, CreateProjectRequest, NewKeyKind, ProjectStatus,
    ServerKeyKind, SupabaseClient, SupabaseConfig, run_query_wire_json,
};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

const SPEC: &str = include_str!("specs/supabase/management-v1-subset.json");
const ORG: &str = "intelli-sim";
const DB_PASS: &str = "pw-Vq8-correct-horse-battery";

// ---------------------------------------------------------------------------------------------
// Contract
// ---------------------------------------------------------------------------------------------

/// The request-body schema of an operation, as a validator over the whole spec (so `$ref`s
/// into `components` resolve).
fn request_validator(path: &str, method: &str) -> jsonschema::Validator {
    let spec: Value = serde_json::from_str(SPEC).unwrap();
    let schema =
        spec["paths"][path][method]["requestBody"]["content"]["application/json"]["schema"].clone();
    assert!(schema.is_object(), "no request schema for {method} {path}");
    let mut root = to_json_schema(&json!({ "components": spec["components"] }), false);
    for (k, v) in to_json_schema(&schema, false).as_object().unwrap() {
        root[k] = v.clone();
    }
    jsonschema::validator_for(&root).unwrap()
}

fn assert_valid(validator: &jsonschema::Validator, body: &Value, what: &str) {
    let errors: Vec<String> = validator
        .iter_errors(body)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{what} does not match the schema: {errors:#?}"
    );
}

fn create_request(name: &str) -> CreateProjectRequest {
    CreateProjectRequest {
        name: name.to_owned(),
        organization_slug: ORG.to_owned(),
        db_pass: SecretString::from(DB_PASS.to_owned()),
        region: "eu-west-2".to_owned(),
        desired_instance_size: Some("small".to_owned()),
    }
}

#[test]
fn contract_management_request_bodies_match_the_vendor_schemas() {
    let create = request_validator("/v1/projects", "post");
    let mut req = create_request("intelli-acme");
    let body = req.to_wire_json();
    assert_valid(&create, &body, "create project");
    assert_eq!(
        body["region_selection"],
        json!({"type": "specific", "code": "eu-west-2"})
    );
    assert!(body.get("region").is_none(), "send region_selection only");
    req.desired_instance_size = None;
    assert_valid(&create, &req.to_wire_json(), "create project without size");
    // The validator is strict enough to catch a wrong body (additionalProperties: false).
    let mut wrong = req.to_wire_json();
    wrong["regoin"] = json!("x");
    assert!(!create.is_valid(&wrong));

    let patch = request_validator("/v1/projects/{ref}/config/auth", "patch");
    let p = AuthConfigPatch {
        site_url: Some("https://acme.intelliservice.io".into()),
        uri_allow_list: Some(vec![
            "https://acme.intelliservice.io/**".into(),
            "http://localhost:5173".into(),
        ]),
    };
    let body = p.to_wire_json();
    assert_valid(&patch, &body, "auth config patch");
    assert_eq!(
        body["uri_allow_list"],
        "https://acme.intelliservice.io/**,http://localhost:5173"
    );
    assert_valid(
        &patch,
        &AuthConfigPatch::default().to_wire_json(),
        "empty patch",
    );
    // The keys intelli creates: names valid under the spec's pattern.
    let create_key = request_validator("/v1/projects/{ref}/api-keys", "post");
    for kind in [NewKeyKind::Publishable, NewKeyKind::Secret] {
        let body = intelli::supabase::types::create_api_key_body(kind, kind.intelli_name());
        assert_valid(&create_key, &body, "create api key");
        assert_eq!(body["type"], kind.as_str());
    }
    assert!(!create_key.is_valid(&json!({"type": "secret", "name": "Not-Valid"})));

    // site_url may not hold a list (the spec's `^[^,]+$`).
    assert!(!patch.is_valid(&json!({"site_url": "a,b"})));

    let query = request_validator("/v1/projects/{ref}/database/query", "post");
    assert_valid(&query, &run_query_wire_json("select 1", false), "query");
    assert_valid(
        &query,
        &run_query_wire_json("select 1", true),
        "read-only query",
    );
}

/// Storage API bodies. No published spec: these schemas transcribe the supabase/storage
/// route schemas as summarised in reference/supabase-api.md §5.
#[test]
fn contract_storage_request_bodies_match_the_reference_shapes() {
    let size = json!({ "anyOf": [
        { "type": "integer", "minimum": 0 },
        { "type": "string", "pattern": "^[0-9]+(?:\\.[0-9]+)?(?:[gG][bB]|[mM][bB]|[kK][bB]|[bB])$" },
        { "type": "null" }
    ]});
    let mimes = json!({ "anyOf": [
        { "type": "array", "items": { "type": "string" } }, { "type": "null" }
    ]});
    let create = jsonschema::validator_for(&json!({
        "type": "object",
        "required": ["name"],
        "additionalProperties": false,
        "properties": {
            "name": { "type": "string", "minLength": 1, "maxLength": 100 },
            "id": { "type": "string" },
            "public": { "type": "boolean" },
            "type": { "enum": ["STANDARD", "ANALYTICS"] },
            "file_size_limit": size,
            "allowed_mime_types": mimes,
        }
    }))
    .unwrap();
    let update = jsonschema::validator_for(&json!({
        "type": "object",
        "minProperties": 1,
        "additionalProperties": false,
        "anyOf": [
            { "required": ["public"] },
            { "required": ["file_size_limit"] },
            { "required": ["allowed_mime_types"] }
        ],
        "properties": {
            "public": { "type": "boolean" },
            "file_size_limit": size,
            "allowed_mime_types": mimes,
        }
    }))
    .unwrap();
    let mut b = Bucket::new("ticket-photos");
    assert_valid(&create, &b.create_body(), "create bucket (defaults)");
    assert_valid(&update, &b.update_body(), "update bucket (defaults)");
    b.public = true;
    b.file_size_limit = Some(10 * 1024 * 1024);
    b.allowed_mime_types = Some(vec!["image/png".into(), "image/jpeg".into()]);
    assert_valid(&create, &b.create_body(), "create bucket");
    assert_valid(&update, &b.update_body(), "update bucket");
    assert_eq!(b.update_body()["file_size_limit"], json!(10 * 1024 * 1024));
}

// ---------------------------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------------------------

fn sim_config() -> SimConfig {
    let mut c = common::sim::seeded(7);
    c.supabase.provisioning_delay_ms = 200;
    c
}

fn quick_retry() -> RetryConfig {
    RetryConfig {
        max_attempts: 4,
        max_rate_limited: 10,
        min_delay: Duration::from_millis(20),
        max_delay: Duration::from_millis(200),
        max_wait: Duration::from_secs(10),
        jitter: true,
    }
}

fn config_for(api_url: &str, token: &str, project_url_template: &str) -> SupabaseConfig {
    let mut c = SupabaseConfig::new(SecretString::from(token.to_owned()));
    c.api_url = url::Url::parse(api_url).unwrap();
    c.project_url_template = project_url_template.to_owned();
    c.retry = quick_retry();
    c.request_timeout = Duration::from_secs(20);
    c
}

fn sim_client(sim: &SimHandle, tweak: impl FnOnce(&mut SupabaseConfig)) -> SupabaseClient {
    let mut c = config_for(
        &sim.supabase_api_url(),
        &sim.supabase_token(),
        sim.project_url_template(),
    );
    tweak(&mut c);
    SupabaseClient::new(c).unwrap()
}

async fn wait_healthy(client: &SupabaseClient, r: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let p = client
            .get_project(r)
            .await
            .unwrap()
            .expect("project exists");
        if p.status.is_healthy() {
            return;
        }
        assert!(p.status.is_transitional(), "unexpected status {}", p.status);
        assert!(
            Instant::now() < deadline,
            "project {r} never became healthy"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn assert_no_secret(text: &str, secrets: &[&str]) {
    for s in secrets {
        assert!(!text.contains(s), "secret leaked into: {text}");
    }
}

// ---------------------------------------------------------------------------------------------
// Behaviour against the simulator
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn project_lifecycle_keys_sql_auth_and_storage() {
    let sim = start(sim_config()).await;
    let client = sim_client(&sim, |_| {});

    let created = client
        .create_project(&create_request("intelli-acme"))
        .await
        .unwrap();
    assert_eq!(created.name, "intelli-acme");
    assert_eq!(created.organization_slug.as_deref(), Some(ORG));
    assert_eq!(created.status, ProjectStatus::ComingUp);
    assert_eq!(created.region, "eu-west-2");
    let r = created.project_ref.clone();
    wait_healthy(&client, &r).await;
    let health = client
        .project_health(&r, &["auth", "rest", "storage", "db"])
        .await
        .unwrap();
    assert_eq!(health.len(), 4);
    assert!(health.iter().all(|s| s.is_healthy()), "{health:?}");

    assert!(
        client
            .get_project("zzzzzzzzzzzzzzzzzzzz")
            .await
            .unwrap()
            .is_none()
    );

    // A new project has only the new keys: the publishable one for the browser, the secret
    // one (acting as service_role) for server calls.
    let keys = client.api_keys(&r).await.unwrap();
    let (browser_kind, browser) = keys.browser.clone().expect("a browser key");
    let (server_kind, server) = keys.server.clone().expect("a server key");
    assert_eq!(browser_kind, BrowserKeyKind::Publishable);
    assert_eq!(server_kind, ServerKeyKind::Secret);
    assert!(browser.expose_secret().starts_with("sb_publishable_"));
    assert!(server.expose_secret().starts_with("sb_secret_"));
    assert!(!keys.has_legacy);
    assert!(!format!("{keys:?}").contains(server.expose_secret()));

    // SQL: rows come back as objects; a statement Postgres rejects is an Sql error.
    // Text columns: the simulator renders numbers as strings (the vendor sends JSON numbers),
    // which is not what this test is about.
    let rows = client
        .query(
            &r,
            "create table t(x text); insert into t values ('a'),('b'); select x from t order by x",
        )
        .await
        .unwrap();
    assert_eq!(rows, vec![json!({"x": "a"}), json!({"x": "b"})]);
    let err = client
        .query(&r, "select * from no_such_table")
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Sql, "{err}");
    assert_eq!(err.policy(), Policy::GiveUp);
    assert!(err.to_string().contains("no_such_table"), "{err}");
    let rows = client
        .query_read_only(&r, "select string_agg(x, ',' order by x) as xs from t")
        .await
        .unwrap();
    assert_eq!(rows, vec![json!({"xs": "a,b"})]);

    // Auth config: the comma-joined list is split, and a patch round-trips.
    let patched = client
        .patch_auth_config(
            &r,
            &AuthConfigPatch {
                site_url: Some("https://acme.example.com".into()),
                uri_allow_list: Some(vec![
                    "https://acme.example.com/**".into(),
                    "http://localhost:5173".into(),
                ]),
            },
        )
        .await
        .unwrap();
    assert_eq!(
        patched.site_url.as_deref(),
        Some("https://acme.example.com")
    );
    let auth = client.auth_config(&r).await.unwrap();
    assert_eq!(
        auth.uri_allow_list,
        vec!["https://acme.example.com/**", "http://localhost:5173"]
    );
    assert_eq!(
        auth.raw["uri_allow_list"],
        "https://acme.example.com/**,http://localhost:5173"
    );

    // Storage: create, read, duplicate, update; the Management API lists it.
    // The `sb_secret_` key goes in `apikey` only (the simulator's gateway refuses it as a
    // Bearer token that differs from `apikey`, and Storage would refuse it as a JWT).
    let storage = client.storage(&r, &server).unwrap();
    assert!(storage.get_bucket("ticket-photos").await.unwrap().is_none());
    let mut bucket = Bucket::new("ticket-photos");
    bucket.file_size_limit = Some(5 * 1024 * 1024);
    bucket.allowed_mime_types = Some(vec!["image/png".into()]);
    storage.create_bucket(&bucket).await.unwrap();
    let got = storage.get_bucket("ticket-photos").await.unwrap().unwrap();
    assert_eq!(got, bucket);
    let dup = storage.create_bucket(&bucket).await.unwrap_err();
    assert_eq!(dup.kind(), ErrorKind::AlreadyExists, "{dup}");
    assert_eq!(
        dup.status(),
        Some(409),
        "the real status comes from the body"
    );
    bucket.public = true;
    bucket.allowed_mime_types = None;
    storage.update_bucket(&bucket).await.unwrap();
    let got = storage.get_bucket("ticket-photos").await.unwrap().unwrap();
    assert!(got.public);
    assert_eq!(
        got.allowed_mime_types.unwrap_or_default(),
        Vec::<String>::new()
    );
    storage
        .upsert_bucket(&Bucket::new("estimate-documents"))
        .await
        .unwrap();
    let listed = client.list_buckets(&r).await.unwrap();
    let names: Vec<&str> = listed.iter().map(|b| b.name.as_str()).collect();
    assert_eq!(names, vec!["estimate-documents", "ticket-photos"]);
    // The browser key may not manage buckets: an authorization error, not a crash.
    let anon = client.storage(&r, &browser).unwrap();
    let denied = anon
        .create_bucket(&Bucket::new("x-denied"))
        .await
        .unwrap_err();
    assert_eq!(denied.kind(), ErrorKind::Unauthorized, "{denied}");
    assert_eq!(denied.policy(), Policy::AskUser);
    assert_no_secret(&format!("{denied} {denied:?}"), &[server.expose_secret()]);

    // Pause and restore, then delete (twice: the second finds it gone and is still fine).
    client.pause_project(&r).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while client.get_project(&r).await.unwrap().unwrap().status != ProjectStatus::Inactive {
        assert!(Instant::now() < deadline, "never paused");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    client.restore_project(&r).await.unwrap();
    wait_healthy(&client, &r).await;
    client.delete_project(&r).await.unwrap();
    client.delete_project(&r).await.unwrap();
    let gone = client.get_project(&r).await.unwrap();
    assert!(
        gone.as_ref()
            .is_none_or(|p| matches!(p.status, ProjectStatus::GoingDown | ProjectStatus::Removed)),
        "{gone:?}"
    );
    sim.shutdown().await.unwrap();
}

#[tokio::test]
async fn keys_are_picked_like_the_cli_and_missing_ones_are_created_once() {
    let mut c = sim_config();
    c.supabase.legacy_api_keys = true;
    let sim = start(c).await;
    let client = sim_client(&sim, |_| {});
    let r = client
        .create_project(&create_request("intelli-keys"))
        .await
        .unwrap()
        .project_ref;
    wait_healthy(&client, &r).await;

    // Both kinds: the new keys win.
    let both = client.api_keys(&r).await.unwrap();
    assert_eq!(
        both.browser.as_ref().unwrap().0,
        BrowserKeyKind::Publishable
    );
    assert_eq!(both.server.as_ref().unwrap().0, ServerKeyKind::Secret);
    assert!(both.has_legacy && both.has_publishable && both.has_service_secret);

    // Only legacy keys (the new ones deleted, as on a project made before they existed).
    let raw = http_client();
    let (_, listed) = raw_get(&raw, &sim, &format!("/v1/projects/{r}/api-keys")).await;
    for k in listed
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| k["type"] != "legacy")
    {
        let url = format!(
            "{}/v1/projects/{r}/api-keys/{}",
            sim.supabase_api_url(),
            k["id"].as_str().unwrap()
        );
        let resp = raw
            .delete(url)
            .bearer_auth(sim.supabase_token())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
    }
    // A secret key acting as another role is not a server key.
    let url = format!("{}/v1/projects/{r}/api-keys", sim.supabase_api_url());
    let resp = raw
        .post(&url)
        .bearer_auth(sim.supabase_token())
        .json(&json!({"type": "secret", "name": "limited", "secret_jwt_template": {"role": "authenticated"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let legacy = client.api_keys(&r).await.unwrap();
    assert_eq!(
        legacy.browser.as_ref().unwrap().0,
        BrowserKeyKind::LegacyAnon
    );
    assert_eq!(
        legacy.server.as_ref().unwrap().0,
        ServerKeyKind::LegacyServiceRole
    );
    assert!(!legacy.has_publishable && !legacy.has_service_secret);
    let legacy_server = legacy.server_key().unwrap().clone();
    assert!(legacy_server.expose_secret().starts_with("eyJ"));
    client
        .storage(&r, &legacy_server)
        .unwrap()
        .upsert_bucket(&Bucket::new("with-legacy"))
        .await
        .unwrap();

    // Create the missing keys; a repeat (e.g. after a lost answer) is a 409, which is done.
    for kind in [NewKeyKind::Publishable, NewKeyKind::Secret] {
        client
            .create_api_key(&r, kind, kind.intelli_name())
            .await
            .unwrap();
        client
            .create_api_key(&r, kind, kind.intelli_name())
            .await
            .unwrap();
    }
    let created = client.api_keys(&r).await.unwrap();
    assert_eq!(
        created.browser.as_ref().unwrap().0,
        BrowserKeyKind::Publishable
    );
    assert_eq!(created.server.as_ref().unwrap().0, ServerKeyKind::Secret);
    let (_, listed) = raw_get(&raw, &sim, &format!("/v1/projects/{r}/api-keys")).await;
    assert_eq!(
        listed
            .as_array()
            .unwrap()
            .iter()
            .filter(|k| k["name"] == "intelli_secret")
            .count(),
        1
    );
    let secret = created.server_key().unwrap().clone();

    // Legacy keys off: the old server key is refused, the new one works.
    assert_eq!(client.legacy_keys_enabled(&r).await.unwrap(), Some(true));
    client.set_legacy_keys(&r, false).await.unwrap();
    client.set_legacy_keys(&r, false).await.unwrap();
    assert_eq!(client.legacy_keys_enabled(&r).await.unwrap(), Some(false));
    assert!(!client.api_keys(&r).await.unwrap().has_legacy);
    let refused = client
        .storage(&r, &legacy_server)
        .unwrap()
        .list_buckets()
        .await
        .unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::Unauthorized, "{refused}");
    assert_no_secret(
        &format!("{refused} {refused:?}"),
        &[legacy_server.expose_secret()],
    );
    let names: Vec<String> = client
        .storage(&r, &secret)
        .unwrap()
        .list_buckets()
        .await
        .unwrap()
        .into_iter()
        .map(|b| b.id)
        .collect();
    assert_eq!(names, ["with-legacy"]);
    sim.shutdown().await.unwrap();
}

/// `POST …/api-keys` is [`Repeat::LookBeforeCreate`]: after a lost answer the key is looked up
/// by name and found (one send); after a reset before handling it is absent and sent again;
/// a vendor that keeps failing gets at most `MAX_KEY_CREATE_SENDS` sends.
#[tokio::test]
async fn a_key_create_with_an_unknown_outcome_is_looked_up_before_it_is_sent_again() {
    let sim = start(sim_config()).await;
    let client = sim_client(&sim, |_| {});
    let r = client
        .create_project(&create_request("intelli-lost-key"))
        .await
        .unwrap()
        .project_ref;
    wait_healthy(&client, &r).await;
    let route = "/v1/projects/{ref}/api-keys";
    let fault = |kind, times| FaultRule {
        vendor: Some(Vendor::Supabase),
        method: Some("POST".into()),
        path: route.into(),
        probability: 1.0,
        kind,
        times,
    };
    let named = |name: &str| {
        sim.supabase()
            .project(&r)
            .unwrap()
            .keys
            .keys
            .iter()
            .filter(|k| k.name == name)
            .count()
    };

    // Committed, answer lost: found by the look, never sent twice.
    sim.set_faults(vec![fault(FaultKind::CommitThenDrop, Some(1))]);
    client
        .create_api_key(&r, NewKeyKind::Secret, "intelli_lost")
        .await
        .unwrap();
    assert_eq!(named("intelli_lost"), 1);
    assert_eq!(sim.stats().faults_injected["commit_then_drop"], 1);

    // Reset before handling: not there, so sent again, once.
    sim.set_faults(vec![fault(FaultKind::Reset, Some(1))]);
    client
        .create_api_key(&r, NewKeyKind::Publishable, "intelli_reset")
        .await
        .unwrap();
    assert_eq!(named("intelli_reset"), 1);

    // Failing every time: a bounded number of sends, then the error.
    sim.set_faults(vec![fault(FaultKind::Status(503), None)]);
    let err = client
        .create_api_key(&r, NewKeyKind::Publishable, "intelli_never")
        .await
        .unwrap_err();
    assert!(err.is_ambiguous(), "{err}");
    assert_eq!(
        sim.stats()
            .count_status(Vendor::Supabase, "POST", route, 503),
        u64::from(intelli::supabase::MAX_KEY_CREATE_SENDS)
    );
    assert_eq!(named("intelli_never"), 0);
    sim.set_faults(vec![]);
    sim.shutdown().await.unwrap();
}

fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

async fn raw_get(c: &reqwest::Client, sim: &SimHandle, path: &str) -> (StatusCode, Value) {
    let resp = c
        .get(format!("{}{path}", sim.supabase_api_url()))
        .bearer_auth(sim.supabase_token())
        .send()
        .await
        .unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap())
}

#[tokio::test]
async fn pagination_is_followed_to_the_end() {
    let sim = start(sim_config()).await;
    let client = sim_client(&sim, |c| c.page_size = 2);
    let mut names = Vec::new();
    for i in 0..5 {
        let name = format!("intelli-page-{i}");
        client.create_project(&create_request(&name)).await.unwrap();
        names.push(name);
    }
    sim.reset_stats();
    let listed = client.list_org_projects(ORG).await.unwrap();
    let mut got: Vec<String> = listed.iter().map(|p| p.name.clone()).collect();
    got.sort();
    assert_eq!(got, names);
    assert!(
        listed
            .iter()
            .all(|p| p.organization_slug.as_deref() == Some(ORG))
    );
    assert!(
        listed
            .iter()
            .all(|p| p.id == p.project_ref && p.created_at.is_some())
    );
    // 5 projects, pages of 2: three requests, no more.
    let pages = sim
        .stats()
        .count(Vendor::Supabase, "GET", "/v1/organizations/{slug}/projects");
    assert_eq!(pages, 3);
    let found = client
        .find_projects_by_name(ORG, "intelli-page-3")
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    sim.shutdown().await.unwrap();
}

#[tokio::test]
async fn idempotent_reads_are_retried_but_create_is_sent_once() {
    let sim = start(sim_config()).await;
    let client = sim_client(&sim, |_| {});
    let get_route = "/v1/projects/{ref}";
    let r = "abcdefghijklmnopqrst";

    // 503 twice on a GET: retried, then the real answer (404 → None).
    sim.set_faults(vec![FaultRule {
        vendor: Some(Vendor::Supabase),
        method: Some("GET".into()),
        path: get_route.into(),
        probability: 1.0,
        kind: FaultKind::Status(503),
        times: Some(2),
    }]);
    assert!(client.get_project(r).await.unwrap().is_none());
    let stats = sim.stats();
    assert_eq!(
        stats.count_status(Vendor::Supabase, "GET", get_route, 503),
        2
    );
    assert_eq!(
        stats.count_status(Vendor::Supabase, "GET", get_route, 404),
        1
    );

    // A GET whose connection is reset is retried too.
    sim.set_faults(vec![FaultRule {
        vendor: Some(Vendor::Supabase),
        method: Some("GET".into()),
        path: get_route.into(),
        probability: 1.0,
        kind: FaultKind::Reset,
        times: Some(1),
    }]);
    assert!(client.get_project(r).await.unwrap().is_none());

    // A GET that keeps failing gives up after max_attempts with a Retry policy.
    sim.set_faults(vec![FaultRule {
        vendor: Some(Vendor::Supabase),
        method: Some("GET".into()),
        path: get_route.into(),
        probability: 1.0,
        kind: FaultKind::Status(500),
        times: None,
    }]);
    let err = client.get_project(r).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert_eq!(err.attempts(), 4);
    assert_eq!(err.policy(), Policy::Retry);

    // POST create, committed then the connection dropped: sent once, Ambiguous, and the
    // project is really there when looked up by name.
    sim.reset_stats();
    sim.set_faults(vec![FaultRule {
        vendor: Some(Vendor::Supabase),
        method: Some("POST".into()),
        path: "/v1/projects".into(),
        probability: 1.0,
        kind: FaultKind::CommitThenDrop,
        times: Some(1),
    }]);
    let err = client
        .create_project(&create_request("intelli-ambiguous"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Ambiguous, "{err}");
    assert!(err.is_ambiguous());
    assert_eq!(err.policy(), Policy::GiveUp);
    assert_eq!(err.attempts(), 1);
    assert_eq!(err.path(), "/v1/projects");
    assert_eq!(
        sim.stats().count(Vendor::Supabase, "POST", "/v1/projects"),
        1
    );
    let found = client
        .find_projects_by_name(ORG, "intelli-ambiguous")
        .await
        .unwrap();
    assert_eq!(found.len(), 1, "the create did happen");

    // A 5xx on create: also sent once and Ambiguous (here nothing was made).
    sim.reset_stats();
    sim.set_faults(vec![FaultRule {
        vendor: Some(Vendor::Supabase),
        method: Some("POST".into()),
        path: "/v1/projects".into(),
        probability: 1.0,
        kind: FaultKind::Status(503),
        times: Some(1),
    }]);
    let err = client
        .create_project(&create_request("intelli-ambiguous-2"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Ambiguous, "{err}");
    assert_eq!(err.status(), Some(503));
    assert_eq!(
        sim.stats().count(Vendor::Supabase, "POST", "/v1/projects"),
        1
    );
    assert!(
        client
            .find_projects_by_name(ORG, "intelli-ambiguous-2")
            .await
            .unwrap()
            .is_empty()
    );

    // A reset before handling: the client cannot tell it apart, so Ambiguous as well.
    sim.set_faults(vec![FaultRule {
        vendor: Some(Vendor::Supabase),
        method: Some("POST".into()),
        path: "/v1/projects".into(),
        probability: 1.0,
        kind: FaultKind::Reset,
        times: Some(1),
    }]);
    let err = client
        .create_project(&create_request("intelli-ambiguous-3"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Ambiguous, "{err}");
    assert_no_secret(&format!("{err} {err:?}"), &[DB_PASS, &sim.supabase_token()]);
    sim.shutdown().await.unwrap();
}

#[tokio::test]
async fn vendor_429_is_waited_out_using_its_reset_header() {
    // The simulator's real limiter, 3 requests per 1.2 s window; our own limiter off so we
    // hit it.
    let mut c = sim_config();
    c.supabase.rate_limit_requests = 3;
    c.rate_limit_scale = 0.02;
    let sim = start(c).await;
    let client = sim_client(&sim, |c| c.rate_limit_per_minute = 0);
    let r = "abcdefghijklmnopqrst";
    for _ in 0..5 {
        assert!(client.get_project(r).await.unwrap().is_none());
    }
    let st = sim.stats();
    let route = "/v1/projects/{ref}";
    assert!(st.count_status(Vendor::Supabase, "GET", route, 429) >= 1);
    assert_eq!(st.count_status(Vendor::Supabase, "GET", route, 404), 5);

    // A 429 means the vendor refused the request unhandled, so even a create that is never
    // repeated after an unknown outcome is sent again after the wait: every create succeeds,
    // once each.
    for i in 0..5 {
        client
            .create_project(&create_request(&format!("rl-{i}")))
            .await
            .unwrap_or_else(|e| panic!("create rl-{i}: {e}"));
    }
    let st = sim.stats();
    assert!(
        st.count_status(Vendor::Supabase, "POST", "/v1/projects", 429) >= 1,
        "the org budget (3 per window) ran out"
    );
    assert_eq!(
        st.count_status(Vendor::Supabase, "POST", "/v1/projects", 201),
        5
    );
    for i in 0..5 {
        let found = client
            .find_projects_by_name(ORG, &format!("rl-{i}"))
            .await
            .unwrap();
        assert_eq!(found.len(), 1, "rl-{i}");
    }

    // A wait longer than this client makes in place is not a failure: the error is Deferred
    // (park the work), says when, and nothing was created.
    let impatient = sim_client(&sim, |c| {
        c.rate_limit_per_minute = 0;
        c.retry.max_wait = Duration::ZERO;
    });
    let mut deferred = None;
    for i in 0..8 {
        if let Err(e) = impatient
            .create_project(&create_request(&format!("late-{i}")))
            .await
        {
            deferred = Some((i, e));
            break;
        }
    }
    let (i, e) = deferred.expect("the org budget ran out");
    assert_eq!(e.kind(), ErrorKind::Deferred, "{e}");
    assert_eq!(e.policy(), Policy::Park);
    assert!(e.retry_after().is_some());
    assert!(
        impatient
            .find_projects_by_name(ORG, &format!("late-{i}"))
            .await
            .unwrap()
            .is_empty()
    );
    sim.shutdown().await.unwrap();
}

#[tokio::test]
async fn rate_limiter_keys_by_project_so_projects_do_not_wait_for_each_other() {
    let sim = start(sim_config()).await;
    // 2 per 500 ms per key (the limiter counts 525 ms): a key's third call waits a window.
    let client = sim_client(&sim, |c| {
        c.rate_limit_per_minute = 2;
        c.rate_limit_window = Duration::from_millis(500);
    });
    let (a, b) = ("aaaaaaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbbbbbb");

    let t = Instant::now();
    let calls = (0..4).flat_map(|_| [client.get_project(a), client.get_project(b)]);
    for r in join_all(calls).await {
        assert!(r.unwrap().is_none());
    }
    let two_projects = t.elapsed();

    let t = Instant::now();
    for r in join_all((0..8).map(|_| client.get_project(a))).await {
        assert!(r.unwrap().is_none());
    }
    let one_project = t.elapsed();

    // 4 calls per key: two windows (two go at once, two a window later). 8 calls on one
    // key: four windows, three waits. The second run starts with `a`'s last window still
    // counting, so it waits up to one more.
    assert!(
        two_projects < Duration::from_millis(1000),
        "two projects took {two_projects:?}"
    );
    assert!(
        one_project >= Duration::from_millis(1500),
        "one project took {one_project:?}"
    );
    sim.shutdown().await.unwrap();
}

// ---------------------------------------------------------------------------------------------
// Behaviour against small local servers
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn retry_after_in_seconds_and_as_http_date_is_honoured() {
    let hits = Arc::new(AtomicU32::new(0));
    let h = hits.clone();
    let app = Router::new().route(
        "/v1/projects/{r}",
        get(move |axum::extract::Path(r): axum::extract::Path<String>| {
            let h = h.clone();
            async move {
                let n = h.fetch_add(1, Ordering::SeqCst);
                if n.is_multiple_of(2) {
                    // First of each pair: refused, with one of the two Retry-After forms.
                    let value = if r.starts_with('s') {
                        "1".to_owned()
                    } else {
                        httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(2))
                    };
                    return (
                        StatusCode::TOO_MANY_REQUESTS,
                        [("retry-after", value)],
                        axum::Json(json!({"message": "Too many requests"})),
                    )
                        .into_response();
                }
                axum::Json(json!({
                    "id": r, "ref": r, "organization_id": "o", "organization_slug": "o",
                    "name": "n", "region": "eu-west-2", "created_at": "2026-01-01T00:00:00Z",
                    "status": "SOME_NEW_STATUS",
                }))
                .into_response()
            }
        }),
    );
    let served = serve(app).await;
    let base = served.base.clone();
    let client =
        SupabaseClient::new(config_for(&base, "sbp_test", "http://{ref}.invalid")).unwrap();

    let t = Instant::now();
    let p = client
        .get_project("ssssssssssssssssssss")
        .await
        .unwrap()
        .unwrap();
    assert!(
        t.elapsed() >= Duration::from_millis(950),
        "{:?}",
        t.elapsed()
    );
    // A status the spec does not list is kept, not an error.
    assert_eq!(p.status, ProjectStatus::Unknown("SOME_NEW_STATUS".into()));

    let t = Instant::now();
    client
        .get_project("dddddddddddddddddddd")
        .await
        .unwrap()
        .unwrap();
    // An HTTP date has one-second resolution: 2 s ahead is at least 1 s away.
    assert!(
        t.elapsed() >= Duration::from_millis(950),
        "{:?}",
        t.elapsed()
    );
    assert_eq!(hits.load(Ordering::SeqCst), 4);
}

#[tokio::test]
async fn errors_never_show_tokens_keys_or_passwords() {
    // A misbehaving vendor that quotes the whole request back in its error message.
    async fn echo(headers: HeaderMap, body: Bytes) -> impl IntoResponse {
        let headers: Vec<String> = headers
            .iter()
            .map(|(k, v)| format!("{k}: {}", v.to_str().unwrap_or("")))
            .collect();
        let message = format!(
            "bad request; headers were {}; body was {}",
            headers.join(", "),
            String::from_utf8_lossy(&body)
        );
        (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({
                "message": message,
                "statusCode": "422",
                "error": message,
                "errors": [{"code": 1, "message": message}],
            })),
        )
    }
    let app = Router::new()
        .route("/v1/projects", post(echo))
        .route("/p/{r}/storage/v1/bucket", post(echo));
    let served = serve(app).await;
    let base = served.base.clone();
    let token = "sbp_0123456789abcdef0123456789abcdef01234567";
    let client =
        SupabaseClient::new(config_for(&base, token, &format!("{base}/p/{{ref}}"))).unwrap();

    let req = create_request("intelli-leak");
    let dbg_req = format!("{req:?}");
    assert_no_secret(&dbg_req, &[DB_PASS]);
    let err = client.create_project(&req).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Api);
    let shown = format!("{err}\n{err:?}\n{:?}", err.message());
    assert!(shown.contains("bad request"), "{shown}");
    // The echo also shows what every request carries.
    assert!(shown.contains("user-agent: intelli/"), "{shown}");
    assert!(shown.contains("authorization: [REDACTED]"), "{shown}");
    assert_no_secret(&shown, &[token, DB_PASS]);

    // The Storage API with a service-role JWT in both headers.
    let key = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJyb2xlIjoic2VydmljZV9yb2xlIn0.c2lnbmF0dXJl";
    let storage = client
        .storage("abcdefghijklmnopqrst", &SecretString::from(key.to_owned()))
        .unwrap();
    let err = storage.create_bucket(&Bucket::new("b")).await.unwrap_err();
    assert_eq!(err.status(), Some(422));
    let shown = format!("{err}\n{err:?}");
    assert_no_secret(&shown, &[key, token]);
    // The vendor's name for the key ("service_role") is fine to show; the key is not.
    assert!(!shown.contains("c2lnbmF0dXJl"), "{shown}");

    // Transport failures too: nothing listens on this port.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let client = SupabaseClient::new(config_for(
        &format!("http://127.0.0.1:{closed}"),
        token,
        "http://{ref}.invalid",
    ))
    .unwrap();
    let err = client.create_project(&req).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Connect, "{err}");
    assert_eq!(err.attempts(), 1, "a mutation is never repeated");
    assert_no_secret(&format!("{err}\n{err:?}"), &[token, DB_PASS]);
    let err = client
        .get_project("abcdefghijklmnopqrst")
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Connect);
    assert_eq!(err.attempts(), 4, "a read is retried");
    assert_eq!(err.policy(), Policy::Retry);
}

#[tokio::test]
async fn a_create_that_times_out_is_ambiguous_and_not_repeated() {
    let hits = Arc::new(AtomicU32::new(0));
    let h = hits.clone();
    let app = Router::new().route(
        "/v1/projects",
        post(move || {
            let h = h.clone();
            async move {
                h.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_secs(5)).await;
                StatusCode::CREATED
            }
        }),
    );
    let served = serve(app).await;
    let base = served.base.clone();
    let mut c = config_for(&base, "sbp_test_token", "http://{ref}.invalid");
    c.request_timeout = Duration::from_millis(300);
    let client = SupabaseClient::new(c).unwrap();
    let err = client
        .create_project(&create_request("intelli-slow"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Ambiguous, "{err}");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(hits.load(Ordering::SeqCst), 1);
}

// ---------------------------------------------------------------------------------------------
// Tracing
// ---------------------------------------------------------------------------------------------

/// Records every span and event field as text (no tracing-subscriber needed).
#[derive(Clone, Default)]
struct Capture(Arc<std::sync::Mutex<String>>);

struct Fields<'a>(&'a mut String);

impl tracing::field::Visit for Fields<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0.push_str(&format!("{}={:?} ", field.name(), value));
    }
}

impl tracing::Subscriber for Capture {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, span: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        let mut out = self.0.lock().unwrap();
        out.push_str(&format!("\nspan {} ", span.metadata().name()));
        span.record(&mut Fields(&mut out));
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, values: &tracing::span::Record<'_>) {
        values.record(&mut Fields(&mut self.0.lock().unwrap()));
    }
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        let mut out = self.0.lock().unwrap();
        out.push_str("\nevent ");
        event.record(&mut Fields(&mut out));
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

#[tokio::test]
async fn traces_name_the_path_template_and_never_a_secret() {
    let sim = start(sim_config()).await;
    let client = sim_client(&sim, |_| {});
    let capture = Capture::default();
    let _guard = tracing::subscriber::set_default(capture.clone());
    sim.set_faults(vec![FaultRule {
        vendor: Some(Vendor::Supabase),
        method: Some("GET".into()),
        path: "/v1/projects/{ref}/api-keys".into(),
        probability: 1.0,
        kind: FaultKind::Status(503),
        times: Some(1),
    }]);
    let p = client
        .create_project(&create_request("intelli-traced"))
        .await
        .unwrap();
    let keys = client.api_keys(&p.project_ref).await.unwrap();
    drop(_guard);
    let text = capture.0.lock().unwrap().clone();
    assert!(text.contains("path=/v1/projects "), "{text}");
    assert!(text.contains("path=/v1/projects/{ref}/api-keys"), "{text}");
    assert!(text.contains("retrying"), "{text}");
    assert!(
        text.contains(&format!("scope=project:{}", p.project_ref)),
        "{text}"
    );
    assert_no_secret(
        &text,
        &[
            DB_PASS,
            &sim.supabase_token(),
            keys.browser_key().unwrap().expose_secret(),
            keys.server_key().unwrap().expose_secret(),
        ],
    );
    // The configuration's Debug hides the token too.
    let cfg = config_for(
        "http://127.0.0.1:1",
        "sbp_secret_token_value_123",
        "http://{ref}",
    );
    assert_no_secret(&format!("{cfg:?}"), &["sbp_secret_token_value_123"]);
    sim.shutdown().await.unwrap();
}

/// Migration SQL is guarded (advisory lock + history check in one transaction), so a 5xx or
/// a lost answer is answered by sending it again, within the client's budget; the guard makes
/// the repeat a no-op when the first send committed.
#[tokio::test]
async fn guarded_sql_is_sent_again_after_a_5xx_or_a_lost_answer_and_runs_once() {
    use intelli::http::RetryBudget;
    use intelli::migrate::MigrationFile;
    use intelli::migrate::exec::SqlExecutor;
    use intelli::migrate::sql;

    let sim = start(sim_config()).await;
    let client = sim_client(&sim, |_| {});
    let r = client
        .create_project(&create_request("intelli-guarded"))
        .await
        .unwrap()
        .project_ref;
    wait_healthy(&client, &r).await;
    let exec = SqlExecutor::ManagementApi(client.clone());
    let route = "/v1/projects/{ref}/database/query";
    let file = |v: &str| MigrationFile {
        version: v.into(),
        name: "counter".into(),
        path: format!("migrations/{v}_counter.sql").into(),
        sql: "create table if not exists public.ran (v text); insert into public.ran values ('x');"
            .into(),
    };
    let fault = |kind| FaultRule {
        vendor: Some(Vendor::Supabase),
        method: Some("POST".into()),
        path: route.into(),
        probability: 1.0,
        kind,
        times: Some(1),
    };

    // A 503: nothing ran; the re-send applies it.
    let budget = RetryBudget::new(3);
    sim.set_faults(vec![fault(FaultKind::Status(503))]);
    exec.run_guarded(
        &r,
        &sql::apply_migration(&file("20250101000001")),
        Some(&budget),
    )
    .await
    .unwrap();
    assert_eq!(budget.remaining(), 2);

    // Committed, then the answer lost: the re-send meets the guard, which says so.
    sim.set_faults(vec![fault(FaultKind::CommitThenDrop)]);
    let err = exec
        .run_guarded(
            &r,
            &sql::apply_migration(&file("20250101000002")),
            Some(&budget),
        )
        .await
        .unwrap_err();
    assert!(err.already_applied(), "{err}");
    assert_eq!(budget.remaining(), 1);
    let rows = client
        .query_read_only(&r, "select count(*)::text as n from public.ran")
        .await
        .unwrap();
    assert_eq!(rows[0]["n"], "2", "each migration ran exactly once");

    // The budget is per client: once spent, a 5xx is the caller's to handle.
    let spent = RetryBudget::new(0);
    sim.set_faults(vec![fault(FaultKind::Status(503))]);
    let err = exec
        .run_guarded(
            &r,
            &sql::apply_migration(&file("20250101000003")),
            Some(&spent),
        )
        .await
        .unwrap_err();
    assert!(!err.from_database(), "{err}");
    assert_eq!(
        sim.stats()
            .count_status(Vendor::Supabase, "POST", route, 503),
        2
    );
    sim.shutdown().await.unwrap();
}
