//! The simulator's Supabase side over real sockets and a real PostgreSQL server.
//!
//! Every test starts its own simulator on a free port (so tests run in parallel) and shuts it
//! down, which drops the project databases it created. A missing PostgreSQL fails the test
//! with the message saying how to get one; nothing is skipped.
//!
//! Response bodies are validated against the vendor's schemas in
//! `tests/specs/supabase/management-v1-subset.json` (vendored by
//! `scripts/vendor-specs-supabase`), made strict: a property the vendor does not document
//! fails the test.

mod common;

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::openapi::to_json_schema;
use common::sim::{jwt_claims, start};
use intelli::sim::{self, FaultKind, FaultRule, SimConfig, SimHandle, Vendor};
use reqwest::StatusCode;
use serde_json::{Value, json};

const SPEC: &str = include_str!("specs/supabase/management-v1-subset.json");
const TOKEN: &str = "sbp_test_token_0123456789";
const ORG: &str = "intelli-sim";

// ---------------------------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------------------------

fn config() -> SimConfig {
    let mut c = common::sim::seeded(1);
    c.supabase.provisioning_delay_ms = 300;
    c
}

/// Projects also get the legacy JWT keys, switched on (older projects have them).
fn config_with_legacy() -> SimConfig {
    let mut c = config();
    c.supabase.legacy_api_keys = true;
    c
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("http client")
}

struct Api {
    base: String,
    client: reqwest::Client,
    token: String,
}

impl Api {
    fn new(sim: &SimHandle) -> Api {
        Api {
            base: sim.supabase_api_url(),
            client: http(),
            token: TOKEN.into(),
        }
    }
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut rb = self
            .client
            .request(method, format!("{}{}", self.base, path))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        let resp = rb.send().await.expect("request failed");
        let status = resp.status();
        let text = resp.text().await.expect("body");
        let v = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, v)
    }
    async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call(reqwest::Method::GET, path, None).await
    }
    async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }
}

fn unique(prefix: &str) -> String {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    format!(
        "{prefix}-{}-{}-{}",
        std::process::id(),
        N.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        Instant::now().elapsed().as_nanos() % 1000
    )
}

fn create_body(name: &str) -> Value {
    json!({
        "name": name,
        "organization_slug": ORG,
        "db_pass": "correct-horse-battery-staple",
        "region_selection": { "type": "specific", "code": "eu-west-2" },
    })
}

/// Create a project and wait until it is ACTIVE_HEALTHY; returns its ref.
async fn create_active(api: &Api, name: &str) -> String {
    let body = create_body(name);
    check_request("/v1/projects", "post", &body);
    let (st, v) = api.post("/v1/projects", body).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    check_response("/v1/projects", "post", "201", &v);
    let r = v["ref"].as_str().expect("ref").to_owned();
    wait_status(api, &r, "ACTIVE_HEALTHY").await;
    r
}

async fn wait_status(api: &Api, r: &str, want: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (st, v) = api.get(&format!("/v1/projects/{r}")).await;
        assert_eq!(st, StatusCode::OK, "{v}");
        if v["status"] == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "project {r} never reached {want}: {v}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn sql(api: &Api, r: &str, q: &str) -> (StatusCode, Value) {
    let body = json!({ "query": q });
    check_request("/v1/projects/{ref}/database/query", "post", &body);
    api.post(&format!("/v1/projects/{r}/database/query"), body)
        .await
}

// ---------------------------------------------------------------------------------------------
// Spec validation
// ---------------------------------------------------------------------------------------------

fn spec() -> &'static Value {
    static S: OnceLock<Value> = OnceLock::new();
    S.get_or_init(|| serde_json::from_str(SPEC).expect("vendored spec is JSON"))
}

fn validate(schema: &Value, instance: &Value, strict: bool, what: &str) {
    let mut root = to_json_schema(schema, strict);
    let components = to_json_schema(&spec()["components"], strict);
    if let Value::Object(m) = &mut root {
        m.insert("components".into(), components);
        m.insert(
            "$schema".into(),
            json!("https://json-schema.org/draft/2020-12/schema"),
        );
    }
    let validator = jsonschema::validator_for(&root).expect("schema compiles");
    let errors: Vec<String> = validator
        .iter_errors(instance)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{what} does not match the vendor schema:\n{}\ninstance: {instance:#}",
        errors.join("\n")
    );
}

fn operation(path: &str, method: &str) -> &'static Value {
    let op = &spec()["paths"][path][method];
    assert!(
        op.is_object(),
        "{method} {path} is not in the vendored spec"
    );
    op
}

/// Check a response body against the spec's schema for that operation and status (strict).
fn check_response(path: &str, method: &str, status: &str, body: &Value) {
    let schema =
        &operation(path, method)["responses"][status]["content"]["application/json"]["schema"];
    assert!(schema.is_object(), "no schema for {method} {path} {status}");
    validate(
        schema,
        body,
        true,
        &format!("response of {method} {path} {status}"),
    );
}

/// Check a request body we send against the spec (the vendor's own strictness).
fn check_request(path: &str, method: &str, body: &Value) {
    let schema = &operation(path, method)["requestBody"]["content"]["application/json"]["schema"];
    assert!(schema.is_object(), "no request schema for {method} {path}");
    validate(schema, body, false, &format!("request of {method} {path}"));
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn organizations_and_auth_required() {
    let sim = start(config()).await;
    let api = Api::new(&sim);
    let (st, v) = api.get("/v1/organizations").await;
    assert_eq!(st, StatusCode::OK);
    check_response("/v1/organizations", "get", "200", &v);
    assert_eq!(v[0]["slug"], ORG);

    let anon = reqwest::get(format!("{}/v1/organizations", sim.supabase_api_url()))
        .await
        .unwrap();
    assert_eq!(anon.status(), StatusCode::UNAUTHORIZED);
    let body: Value = anon.json().await.unwrap();
    assert!(body["message"].is_string());
    let bad = Api {
        token: "not-a-pat".into(),
        ..Api::new(&sim)
    };
    assert_eq!(bad.get("/v1/projects").await.0, StatusCode::UNAUTHORIZED);
    sim.shutdown().await.unwrap();
}

#[tokio::test]
async fn provisioning_states_and_two_projects_with_one_name() {
    let sim = start(config()).await;
    let api = Api::new(&sim);
    let name = unique("twins");
    let (st, a) = api.post("/v1/projects", create_body(&name)).await;
    assert_eq!(st, StatusCode::CREATED, "{a}");
    check_response("/v1/projects", "post", "201", &a);
    assert_eq!(a["status"], "COMING_UP");
    assert!(!a.to_string().contains("correct-horse"), "db_pass echoed");
    let r = a["ref"].as_str().unwrap().to_owned();
    assert_eq!(r.len(), 20);
    assert!(r.chars().all(|c| c.is_ascii_lowercase()));

    let (st, g) = api.get(&format!("/v1/projects/{r}")).await;
    assert_eq!(st, StatusCode::OK);
    check_response("/v1/projects/{ref}", "get", "200", &g);
    assert_eq!(g["status"], "COMING_UP");
    wait_status(&api, &r, "ACTIVE_HEALTHY").await;

    // Names are not unique: the same body again makes a second project.
    let (st, b) = api.post("/v1/projects", create_body(&name)).await;
    assert_eq!(st, StatusCode::CREATED);
    assert_ne!(b["ref"], a["ref"]);
    let (_, list) = api
        .get(&format!("/v1/organizations/{ORG}/projects?search={name}"))
        .await;
    check_response("/v1/organizations/{slug}/projects", "get", "200", &list);
    assert_eq!(list["pagination"]["count"], 2, "{list}");

    let (st, all) = api.get("/v1/projects").await;
    assert_eq!(st, StatusCode::OK);
    check_response("/v1/projects", "get", "200", &all);

    // Health follows the status.
    let (st, h) = api
        .get(&format!(
            "/v1/projects/{r}/health?services=auth,db,rest,storage"
        ))
        .await;
    assert_eq!(st, StatusCode::OK, "{h}");
    check_response("/v1/projects/{ref}/health", "get", "200", &h);
    assert!(
        h.as_array()
            .unwrap()
            .iter()
            .all(|s| s["status"] == "ACTIVE_HEALTHY")
    );
    assert_eq!(
        api.get(&format!("/v1/projects/{r}/health")).await.0,
        StatusCode::BAD_REQUEST
    );

    // Each project is a bootstrapped database of its own, reachable directly.
    let url = sim.supabase().database_url(&r).expect("database url");
    let client = intelli::pg::connect(&url).await.unwrap();
    let row = client
        .query_one(
            "select count(*) from pg_namespace where nspname in ('auth','storage')",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), 2);
    drop(client);

    // Delete: 200 with the ref; the project goes GOING_DOWN, then REMOVED (see
    // `deletion_goes_down_then_is_removed_and_listed_for_a_while`), and the database is gone.
    let (st, d) = api
        .call(reqwest::Method::DELETE, &format!("/v1/projects/{r}"), None)
        .await;
    assert_eq!(st, StatusCode::OK);
    check_response("/v1/projects/{ref}", "delete", "200", &d);
    let (st, v) = api.get(&format!("/v1/projects/{r}")).await;
    assert_eq!(st, StatusCode::OK);
    assert!(
        matches!(v["status"].as_str(), Some("GOING_DOWN" | "REMOVED")),
        "{v}"
    );
    let db_name = format!("sim_{r}");
    let admin = intelli::pg::connect(&intelli::pg::server_url())
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let gone = admin
            .query_opt("select 1 from pg_database where datname = $1", &[&db_name])
            .await
            .unwrap()
            .is_none();
        if gone {
            break;
        }
        assert!(Instant::now() < deadline, "database {db_name} not dropped");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    sim.shutdown().await.unwrap();
}

#[tokio::test]
async fn create_validation_like_the_vendor() {
    let sim = start(config()).await;
    let api = Api::new(&sim);
    let mut extra = create_body(&unique("bad"));
    extra["unknown_field"] = json!(1);
    let (st, v) = api.post("/v1/projects", extra).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert!(
        v["message"].as_str().unwrap().contains("unknown_field"),
        "{v}"
    );

    let mut no_pass = create_body(&unique("bad"));
    no_pass.as_object_mut().unwrap().remove("db_pass");
    let (st, v) = api.post("/v1/projects", no_pass).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert!(v["message"].as_str().unwrap().contains("db_pass"));

    let mut both = create_body(&unique("bad"));
    both["region"] = json!("us-east-1");
    assert_eq!(
        api.post("/v1/projects", both).await.0,
        StatusCode::BAD_REQUEST
    );

    // Deprecated `region` alone is still accepted.
    let mut legacy = create_body(&unique("legacy"));
    legacy.as_object_mut().unwrap().remove("region_selection");
    legacy["region"] = json!("ap-south-1");
    let (st, v) = api.post("/v1/projects", legacy).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    assert_eq!(v["region"], "ap-south-1");

    assert_eq!(
        api.get("/v1/projects/abcdefghijklmnopqrst").await.1,
        json!({"message": "Project not found"})
    );
    sim.shutdown().await.unwrap();
}

#[tokio::test]
async fn org_projects_pagination_sort_and_filters() {
    let sim = start(config()).await;
    let api = Api::new(&sim);
    let tag = unique("page");
    for i in 0..5 {
        let (st, _) = api
            .post("/v1/projects", create_body(&format!("{tag}-{i}")))
            .await;
        assert_eq!(st, StatusCode::CREATED);
    }
    let (_, p1) = api
        .get(&format!(
            "/v1/organizations/{ORG}/projects?search={tag}&limit=2&offset=0&sort=name_desc"
        ))
        .await;
    check_response("/v1/organizations/{slug}/projects", "get", "200", &p1);
    assert_eq!(
        p1["pagination"],
        json!({"count": 5, "limit": 2, "offset": 0})
    );
    let names: Vec<&str> = p1["projects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec![format!("{tag}-4"), format!("{tag}-3")]);
    let (_, p3) = api
        .get(&format!(
            "/v1/organizations/{ORG}/projects?search={tag}&limit=2&offset=4"
        ))
        .await;
    assert_eq!(p3["projects"].as_array().unwrap().len(), 1);
    let (_, none) = api
        .get(&format!(
            "/v1/organizations/{ORG}/projects?search={tag}&statuses=INACTIVE"
        ))
        .await;
    assert_eq!(none["pagination"]["count"], 0);
    assert_eq!(
        api.get(&format!("/v1/organizations/{ORG}/projects?limit=101"))
            .await
            .0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        api.get("/v1/organizations/nope/projects").await.0,
        StatusCode::NOT_FOUND
    );
    sim.shutdown().await.unwrap();
}

#[tokio::test]
async fn database_query_round_trip_transactions_and_errors() {
    let sim = start(config()).await;
    let api = Api::new(&sim);
    let r = create_active(&api, &unique("sql")).await;

    let (st, v) = sql(
        &api,
        &r,
        "create table t (id int primary key, note text, meta jsonb)",
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    assert_eq!(v, json!([]));
    let (st, v) = sql(
        &api,
        &r,
        "insert into t values (1, 'a', '{\"k\": true}'), (2, null, null) returning id",
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    assert_eq!(v, json!([{"id": 1}, {"id": 2}]));
    let (_, v) = sql(
        &api,
        &r,
        "select id, note, meta, id > 1 as big from t order by id;",
    )
    .await;
    assert_eq!(
        v,
        json!([
            {"id": 1, "note": "a", "meta": {"k": true}, "big": false},
            {"id": 2, "note": null, "meta": null, "big": true}
        ])
    );

    // Parameters.
    let body = json!({ "query": "select $1::text || '!' as s, $2::int + 1 as n", "parameters": ["hi", 41] });
    check_request("/v1/projects/{ref}/database/query", "post", &body);
    let (st, v) = api
        .post(&format!("/v1/projects/{r}/database/query"), body)
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    assert_eq!(v, json!([{"s": "hi!", "n": 42}]));

    // A multi-statement query is one transaction: a failure undoes the earlier statements.
    let (st, v) = sql(
        &api,
        &r,
        "insert into t values (3, 'c', null); insert into t values (1, 'dup', null);",
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    let msg = v["message"].as_str().unwrap();
    assert!(
        msg.contains("23505") && msg.contains("duplicate key"),
        "{msg}"
    );
    let (_, v) = sql(&api, &r, "select count(*) as n from t").await;
    assert_eq!(v, json!([{"n": 2}]));

    // And a good multi-statement query returns the last result set.
    let (st, v) = sql(
        &api,
        &r,
        "insert into t values (3, 'c', null); select note from t where id = 3",
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    assert_eq!(v, json!([{"note": "c"}]));

    // Multi-statement results keep their types, and scripts with their own transaction
    // control or dollar-quoted bodies work.
    let (st, v) = sql(
        &api,
        &r,
        "select 1 as a; select 2 as b, true as c, '{\"x\":1}'::jsonb as j",
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    assert_eq!(v, json!([{"b": 2, "c": true, "j": {"x": 1}}]));
    let script = "begin;\ncreate function f() returns int language plpgsql as $$ begin return 41 + 1; end; $$;\ncommit;\nselect f() as v;";
    let (st, v) = sql(&api, &r, script).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    assert_eq!(v, json!([{"v": 42}]));
    let (st, v) = sql(&api, &r, "select 1; show server_version_num").await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    assert!(v[0]["server_version_num"].is_string(), "{v}");

    // SQL errors are 400 with the Postgres message.
    let (st, v) = sql(&api, &r, "select * from missing_table").await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert!(v["message"].as_str().unwrap().contains("42P01"), "{v}");

    // read_only refuses writes.
    let body = json!({ "query": "delete from t", "read_only": true });
    let (st, v) = api
        .post(&format!("/v1/projects/{r}/database/query"), body)
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    assert!(v["message"].as_str().unwrap().contains("read-only"), "{v}");

    assert_eq!(
        api.post(&format!("/v1/projects/{r}/database/query"), json!({}))
            .await
            .0,
        StatusCode::BAD_REQUEST
    );
    sim.shutdown().await.unwrap();
}

#[tokio::test]
async fn api_keys_are_project_jwts_and_secret_keys_are_masked() {
    let sim = start(config_with_legacy()).await;
    let api = Api::new(&sim);
    let r = create_active(&api, &unique("keys")).await;
    let (st, keys) = api
        .get(&format!("/v1/projects/{r}/api-keys?reveal=true"))
        .await;
    assert_eq!(st, StatusCode::OK);
    check_response("/v1/projects/{ref}/api-keys", "get", "200", &keys);
    let find = |name: &str, ty: &str| {
        keys.as_array()
            .unwrap()
            .iter()
            .find(|k| k["name"] == name && k["type"] == ty)
            .and_then(|k| k["api_key"].as_str())
            .unwrap_or_else(|| panic!("no {ty} key {name}"))
            .to_owned()
    };
    let anon = find("anon", "legacy");
    let service = find("service_role", "legacy");
    let secret = find("default", "secret");
    assert!(find("default", "publishable").starts_with("sb_publishable_"));
    assert!(secret.starts_with("sb_secret_"));
    for (key, role) in [(&anon, "anon"), (&service, "service_role")] {
        let header = jwt_claims(&format!("x.{}", key.split('.').next().unwrap()));
        assert_eq!(header["alg"], "HS256");
        let claims = jwt_claims(key);
        assert_eq!(claims["role"], role);
        assert_eq!(claims["ref"], r.as_str());
        assert_eq!(claims["iss"], "supabase");
        assert!(claims["exp"].as_i64().unwrap() > claims["iat"].as_i64().unwrap());
    }
    // The signature is real: it verifies with the project's secret and nothing else.
    let project = sim.supabase().project(&r).unwrap();
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    v.set_required_spec_claims(&["exp"]);
    let ok = jsonwebtoken::decode::<Value>(
        &service,
        &jsonwebtoken::DecodingKey::from_secret(project.keys.jwt_secret.as_bytes()),
        &v,
    )
    .unwrap();
    assert_eq!(ok.claims["role"], "service_role");
    assert!(
        jsonwebtoken::decode::<Value>(
            &service,
            &jsonwebtoken::DecodingKey::from_secret(b"other"),
            &v
        )
        .is_err()
    );

    // Without reveal the secret key is masked; the legacy keys are still whole.
    let (_, masked) = api.get(&format!("/v1/projects/{r}/api-keys")).await;
    check_response("/v1/projects/{ref}/api-keys", "get", "200", &masked);
    let text = masked.to_string();
    assert!(!text.contains(&secret));
    assert!(text.contains(&anon));
    sim.shutdown().await.unwrap();
}

#[tokio::test]
async fn auth_config_patch_and_masking() {
    let sim = start(config()).await;
    let api = Api::new(&sim);
    let r = create_active(&api, &unique("auth")).await;
    let path = format!("/v1/projects/{r}/config/auth");
    let (st, cfg) = api.get(&path).await;
    assert_eq!(st, StatusCode::OK);
    check_response("/v1/projects/{ref}/config/auth", "get", "200", &cfg);

    let patch = json!({
        "site_url": "https://acme.example.com",
        "uri_allow_list": "https://acme.example.com/**,http://localhost:5173",
        "smtp_pass": "very-secret-smtp",
        "external_google_secret": "g-secret",
        "disable_signup": true,
    });
    check_request("/v1/projects/{ref}/config/auth", "patch", &patch);
    let (st, v) = api.call(reqwest::Method::PATCH, &path, Some(patch)).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    check_response("/v1/projects/{ref}/config/auth", "patch", "200", &v);
    assert_eq!(v["site_url"], "https://acme.example.com");
    assert_eq!(v["disable_signup"], true);
    let (_, again) = api.get(&path).await;
    let text = again.to_string();
    assert!(
        !text.contains("very-secret-smtp") && !text.contains("g-secret"),
        "secret in clear"
    );
    assert!(again["smtp_pass"].is_string());
    assert!(
        again["security_captcha_secret"].is_null(),
        "unset secrets stay null"
    );

    // Sending the masked value back does not overwrite the secret.
    let (st, _) = api
        .call(
            reqwest::Method::PATCH,
            &path,
            Some(json!({ "smtp_pass": again["smtp_pass"] })),
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    let stored = sim.supabase().project(&r).unwrap().auth_config["smtp_pass"].clone();
    assert_eq!(stored, "very-secret-smtp");

    let (st, _) = api
        .call(
            reqwest::Method::PATCH,
            &path,
            Some(json!({ "site_url": "https://a,https://b" })),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    let (st, _) = api
        .call(
            reqwest::Method::PATCH,
            &path,
            Some(json!({ "no_such_setting": 1 })),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    sim.shutdown().await.unwrap();
}

async fn service_key(api: &Api, r: &str, legacy: bool) -> String {
    let (_, keys) = api
        .get(&format!("/v1/projects/{r}/api-keys?reveal=true"))
        .await;
    keys.as_array()
        .unwrap()
        .iter()
        .find(|k| {
            if legacy {
                k["name"] == "service_role"
            } else {
                k["type"] == "secret"
            }
        })
        .and_then(|k| k["api_key"].as_str())
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn storage_bucket_crud_and_vendor_errors() {
    let sim = start(config_with_legacy()).await;
    let api = Api::new(&sim);
    let r = create_active(&api, &unique("storage")).await;
    let key = service_key(&api, &r, true).await;
    let base = format!("{}/storage/v1", sim.project_url(&r));
    let c = http();
    let with_key = |rb: reqwest::RequestBuilder| rb.header("apikey", &key).bearer_auth(&key);

    let resp = with_key(c.post(format!("{base}/bucket")))
        .json(&json!({ "name": "ticket-photos", "public": false, "file_size_limit": "10MB", "allowed_mime_types": ["image/png"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        resp.json::<Value>().await.unwrap(),
        json!({ "name": "ticket-photos" })
    );

    // Duplicate: HTTP 400, the real code in the body.
    let resp = with_key(c.post(format!("{base}/bucket")))
        .json(&json!({ "name": "ticket-photos" }))
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let v: Value = resp.json().await.unwrap();
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
    assert_eq!(v["statusCode"], "409");
    assert_eq!(v["error"], "Duplicate");
    assert_eq!(v["message"], "The resource already exists");

    let v: Value = with_key(c.get(format!("{base}/bucket/ticket-photos")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["id"], "ticket-photos");
    assert_eq!(v["public"], false);
    assert_eq!(v["file_size_limit"], 10 * 1024 * 1024);
    assert_eq!(v["allowed_mime_types"], json!(["image/png"]));
    assert_eq!(v["type"], "STANDARD");

    let resp = with_key(c.put(format!("{base}/bucket/ticket-photos")))
        .json(&json!({ "public": true, "allowed_mime_types": null }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        resp.json::<Value>().await.unwrap(),
        json!({ "message": "Successfully updated" })
    );
    let list: Value = with_key(c.get(format!("{base}/bucket")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["public"], true);
    assert!(list[0]["allowed_mime_types"].is_null());

    // The Management API lists the same buckets.
    let (st, mb) = api.get(&format!("/v1/projects/{r}/storage/buckets")).await;
    assert_eq!(st, StatusCode::OK);
    check_response("/v1/projects/{ref}/storage/buckets", "get", "200", &mb);
    assert_eq!(mb[0]["name"], "ticket-photos");

    // Not empty → 409 in the body; empty → deleted; again → 404 in the body.
    let db = intelli::pg::connect(&sim.supabase().database_url(&r).unwrap())
        .await
        .unwrap();
    db.batch_execute(
        "insert into storage.objects (bucket_id, name) values ('ticket-photos', 'a.png')",
    )
    .await
    .unwrap();
    let v: Value = with_key(c.delete(format!("{base}/bucket/ticket-photos")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["statusCode"], "409", "{v}");
    db.batch_execute("delete from storage.objects")
        .await
        .unwrap();
    drop(db);
    let resp = with_key(c.delete(format!("{base}/bucket/ticket-photos")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        resp.json::<Value>().await.unwrap(),
        json!({ "message": "Successfully deleted" })
    );
    let resp = with_key(c.get(format!("{base}/bucket/ticket-photos")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["statusCode"], "404");
    assert_eq!(v["error"], "Bucket not found");
    assert_eq!(v["message"], "Bucket not found");

    // The new-style secret key alone in `apikey` works too (the vendor CLI does that).
    let secret = service_key(&api, &r, false).await;
    let resp = c
        .post(format!("{base}/bucket"))
        .header("apikey", &secret)
        .json(&json!({ "name": "estimate-documents" }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);

    // No key, a foreign key, the anon key: refused.
    let resp = c.get(format!("{base}/bucket")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let (_, keys) = api
        .get(&format!("/v1/projects/{r}/api-keys?reveal=true"))
        .await;
    let anon = keys[0]["api_key"].as_str().unwrap().to_owned();
    let resp = c
        .post(format!("{base}/bucket"))
        .bearer_auth(&anon)
        .header("apikey", &anon)
        .json(&json!({"name": "x"}))
        .send()
        .await
        .unwrap();
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["statusCode"], "403", "{v}");
    sim.shutdown().await.unwrap();
}

#[tokio::test]
async fn new_projects_have_publishable_and_secret_keys_and_keys_can_be_created() {
    let sim = start(config()).await;
    let api = Api::new(&sim);
    let r = create_active(&api, &unique("newkeys")).await;
    let keys_path = format!("/v1/projects/{r}/api-keys");
    let (st, keys) = api.get(&format!("{keys_path}?reveal=true")).await;
    assert_eq!(st, StatusCode::OK);
    check_response("/v1/projects/{ref}/api-keys", "get", "200", &keys);
    let types: Vec<&str> = keys
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["type"].as_str().unwrap())
        .collect();
    // Legacy keys are off by default, and then not listed.
    assert_eq!(types, ["publishable", "secret"], "{keys}");
    assert_eq!(
        keys[1]["secret_jwt_template"],
        json!({ "role": "service_role" })
    );
    let (st, legacy) = api.get(&format!("{keys_path}/legacy")).await;
    assert_eq!(st, StatusCode::OK);
    check_response("/v1/projects/{ref}/api-keys/legacy", "get", "200", &legacy);
    assert_eq!(legacy, json!({ "enabled": false }));

    // Create: 201; the secret is masked unless revealed; the same name again is a 409.
    let body = json!({ "type": "secret", "name": "ci_secret_key", "description": "CI" });
    check_request("/v1/projects/{ref}/api-keys", "post", &body);
    let (st, created) = api.post(&keys_path, body.clone()).await;
    assert_eq!(st, StatusCode::CREATED, "{created}");
    check_response("/v1/projects/{ref}/api-keys", "post", "201", &created);
    assert_eq!(created["name"], "ci_secret_key");
    assert_eq!(
        created["secret_jwt_template"],
        json!({ "role": "service_role" })
    );
    let full = sim.supabase().project(&r).unwrap().keys;
    let stored = full
        .keys
        .iter()
        .find(|k| k.name == "ci_secret_key")
        .unwrap();
    assert!(stored.api_key.starts_with("sb_secret_"));
    assert!(
        !created.to_string().contains(&stored.api_key),
        "secret shown without reveal"
    );
    let (st, v) = api.post(&keys_path, body).await;
    assert_eq!(st, StatusCode::CONFLICT, "{v}");
    let (st, revealed) = api
        .post(
            &format!("{keys_path}?reveal=true"),
            json!({ "type": "publishable", "name": "site_key" }),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED);
    assert!(
        revealed["api_key"]
            .as_str()
            .unwrap()
            .starts_with("sb_publishable_")
    );
    // Names follow the spec's pattern; the type is one of two.
    for bad in [
        json!({ "type": "secret", "name": "Bad-Name" }),
        json!({ "type": "secret", "name": "abc" }),
        json!({ "type": "secret", "name": "9starts_with_digit" }),
        json!({ "type": "legacy", "name": "good_name" }),
        json!({ "type": "secret", "name": "good_name", "extra": 1 }),
    ] {
        let (st, v) = api.post(&keys_path, bad.clone()).await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{bad} -> {v}");
    }

    // Legacy keys: switched on, they are listed; off again, both go together.
    let put = |enabled: &str| {
        let path = format!("{keys_path}/legacy?enabled={enabled}");
        let api = &api;
        async move { api.call(reqwest::Method::PUT, &path, None).await }
    };
    let (st, v) = put("true").await;
    assert_eq!(st, StatusCode::OK);
    check_response("/v1/projects/{ref}/api-keys/legacy", "put", "200", &v);
    assert_eq!(v, json!({ "enabled": true }));
    let (_, keys) = api.get(&format!("{keys_path}?reveal=true")).await;
    assert_eq!(
        keys.as_array()
            .unwrap()
            .iter()
            .filter(|k| k["type"] == "legacy")
            .count(),
        2
    );
    let (st, v) = put("false").await;
    assert_eq!((st, v), (StatusCode::OK, json!({ "enabled": false })));
    let (_, keys) = api.get(&format!("{keys_path}?reveal=true")).await;
    assert!(
        keys.as_array()
            .unwrap()
            .iter()
            .all(|k| k["type"] != "legacy")
    );
    let (st, _) = put("maybe").await;
    assert_eq!(st, StatusCode::BAD_REQUEST);

    // Delete by id: gone from the list; again is a 404.
    let id = created["id"].as_str().unwrap();
    let path = format!("{keys_path}/{id}");
    let (st, v) = api.call(reqwest::Method::DELETE, &path, None).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    check_response("/v1/projects/{ref}/api-keys/{id}", "delete", "200", &v);
    assert!(!v.to_string().contains(&stored.api_key));
    let (st, _) = api.call(reqwest::Method::DELETE, &path, None).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let (_, keys) = api.get(&keys_path).await;
    assert!(
        keys.as_array()
            .unwrap()
            .iter()
            .all(|k| k["name"] != "ci_secret_key")
    );
    sim.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_gateway_refuses_disabled_legacy_keys_and_a_bearer_that_is_not_the_apikey() {
    let sim = start(config_with_legacy()).await;
    let api = Api::new(&sim);
    let r = create_active(&api, &unique("gateway")).await;
    let legacy = service_key(&api, &r, true).await;
    let secret = service_key(&api, &r, false).await;
    let base = format!("{}/storage/v1/bucket", sim.project_url(&r));
    let c = http();
    let list = |apikey: Option<&str>, bearer: Option<&str>| {
        let mut rb = c.get(&base);
        if let Some(a) = apikey {
            rb = rb.header("apikey", a);
        }
        if let Some(b) = bearer {
            rb = rb.bearer_auth(b);
        }
        async move {
            let resp = rb.send().await.unwrap();
            let status = resp.status();
            (status, resp.json::<Value>().await.unwrap())
        }
    };
    // While legacy keys are on, both kinds work.
    assert_eq!(list(Some(&legacy), Some(&legacy)).await.0, StatusCode::OK);
    assert_eq!(list(Some(&secret), None).await.0, StatusCode::OK);
    // An `sb_` key as Bearer must equal `apikey`.
    assert_eq!(list(Some(&secret), Some(&secret)).await.0, StatusCode::OK);
    let (st, v) = list(Some(&legacy), Some(&secret)).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED, "{v}");
    assert_eq!(v["message"], "Invalid API key");
    let (st, _) = list(None, Some(&secret)).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    // An unknown `sb_secret_` key is refused by the gateway.
    let (st, _) = list(Some("sb_secret_notakeyofthisproject0000"), None).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);

    // Legacy keys off: the legacy key gets 401 wherever it is sent; the secret key still works.
    let (st, _) = api
        .call(
            reqwest::Method::PUT,
            &format!("/v1/projects/{r}/api-keys/legacy?enabled=false"),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    for (apikey, bearer) in [
        (Some(legacy.as_str()), Some(legacy.as_str())),
        (Some(legacy.as_str()), None),
        (None, Some(legacy.as_str())),
    ] {
        let (st, v) = list(apikey, bearer).await;
        assert_eq!(st, StatusCode::UNAUTHORIZED, "{v}");
        assert_eq!(v["message"], "Legacy API keys are disabled");
    }
    assert_eq!(list(Some(&secret), None).await.0, StatusCode::OK);
    sim.shutdown().await.unwrap();
}

#[tokio::test]
async fn deletion_goes_down_then_is_removed_and_listed_for_a_while() {
    let mut c = config();
    c.supabase.going_down_ms = 1_500;
    c.supabase.removed_listed_ms = 1_500;
    let sim = start(c).await;
    let api = Api::new(&sim);
    let name = unique("dying");
    let r = create_active(&api, &name).await;
    let key = service_key(&api, &r, false).await;
    let (st, _) = api
        .call(reqwest::Method::DELETE, &format!("/v1/projects/{r}"), None)
        .await;
    assert_eq!(st, StatusCode::OK);
    // Going down: still listed and readable, with that status; no second delete, no SQL, no
    // Storage.
    let (_, v) = api.get(&format!("/v1/projects/{r}")).await;
    assert_eq!(v["status"], "GOING_DOWN");
    let (st, list) = api
        .get(&format!("/v1/organizations/{ORG}/projects?search={name}"))
        .await;
    assert_eq!(st, StatusCode::OK);
    check_response("/v1/organizations/{slug}/projects", "get", "200", &list);
    assert_eq!(list["projects"][0]["status"], "GOING_DOWN");
    assert_eq!(list["projects"][0]["databases"][0]["status"], "GOING_DOWN");
    let (st, _) = api
        .call(reqwest::Method::DELETE, &format!("/v1/projects/{r}"), None)
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let (st, _) = sql(&api, &r, "select 1").await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    let resp = http()
        .get(format!("{}/storage/v1/bucket", sim.project_url(&r)))
        .header("apikey", &key)
        .send()
        .await
        .unwrap();
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["code"], "TenantNotFound", "{v}");

    // Then REMOVED, still listed; then forgotten.
    wait_status(&api, &r, "REMOVED").await;
    let (_, list) = api.get(&format!("/v1/organizations/{ORG}/projects")).await;
    check_response("/v1/organizations/{slug}/projects", "get", "200", &list);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (st, _) = api.get(&format!("/v1/projects/{r}")).await;
        if st == StatusCode::NOT_FOUND {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the removed project was never forgotten"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (_, list) = api
        .get(&format!("/v1/organizations/{ORG}/projects?search={name}"))
        .await;
    assert_eq!(list["pagination"]["count"], 0);
    sim.shutdown().await.unwrap();
}

#[tokio::test]
async fn rate_limit_per_scope_with_scaled_window() {
    let mut c = config();
    c.supabase.rate_limit_requests = 5;
    c.supabase.rate_limit_window_ms = 60_000;
    // A 3 s window instead of a minute: short enough to see it end, long enough that a busy
    // 2-core CI machine still sends the burst inside one window.
    c.rate_limit_scale = 0.05;
    let sim = start(c).await;
    let api = Api::new(&sim);
    let client = http();
    let get = |path: String| {
        let client = client.clone();
        let base = api.base.clone();
        async move {
            client
                .get(format!("{base}{path}"))
                .bearer_auth(TOKEN)
                .send()
                .await
                .unwrap()
        }
    };
    // The first request opens this (token, scope, endpoint) window.
    let first = get("/v1/organizations".into()).await;
    assert_eq!(first.headers()["x-ratelimit-limit"], "5");
    assert_eq!(first.headers()["x-ratelimit-remaining"], "4");
    for _ in 0..4 {
        assert_eq!(
            get("/v1/organizations".into()).await.status(),
            StatusCode::OK
        );
    }
    let limited = get("/v1/organizations".into()).await;
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(limited.headers()["x-ratelimit-remaining"], "0");
    let reset: u64 = limited.headers()["x-ratelimit-reset"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=3).contains(&reset), "reset {reset}");
    assert!(limited.json::<Value>().await.unwrap()["message"].is_string());
    // Another endpoint has its own budget.
    assert_eq!(get("/v1/projects".into()).await.status(), StatusCode::OK);
    assert_eq!(sim.stats().rate_limited[&Vendor::Supabase], 1);
    // The window ends and requests pass again.
    tokio::time::sleep(Duration::from_secs(reset) + Duration::from_millis(100)).await;
    assert_eq!(
        get("/v1/organizations".into()).await.status(),
        StatusCode::OK
    );
    sim.shutdown().await.unwrap();
}

#[tokio::test]
async fn rate_limit_scopes_are_per_project() {
    let mut c = config();
    c.supabase.rate_limit_requests = 3;
    let sim = start(c).await;
    let api = Api::new(&sim);
    let (_, a) = api.post("/v1/projects", create_body(&unique("rl-a"))).await;
    let (_, b) = api.post("/v1/projects", create_body(&unique("rl-b"))).await;
    let (a, b) = (
        a["ref"].as_str().unwrap().to_owned(),
        b["ref"].as_str().unwrap().to_owned(),
    );
    for _ in 0..3 {
        assert_eq!(
            api.get(&format!("/v1/projects/{a}")).await.0,
            StatusCode::OK
        );
    }
    assert_eq!(
        api.get(&format!("/v1/projects/{a}")).await.0,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        api.get(&format!("/v1/projects/{b}")).await.0,
        StatusCode::OK
    );
    sim.shutdown().await.unwrap();
}

#[tokio::test]
async fn injected_status_faults_use_vendor_bodies() {
    let sim = start(config()).await;
    let api = Api::new(&sim);
    for code in [500u16, 503] {
        sim.set_faults(vec![FaultRule {
            vendor: Some(Vendor::Supabase),
            method: Some("GET".into()),
            path: "/v1/organizations".into(),
            probability: 1.0,
            kind: FaultKind::Status(code),
            times: Some(1),
        }]);
        let (st, v) = api.get("/v1/organizations").await;
        assert_eq!(st.as_u16(), code);
        assert!(v["message"].is_string(), "{v}");
        assert_eq!(
            api.get("/v1/organizations").await.0,
            StatusCode::OK,
            "times: 1 is honoured"
        );
    }
    for code in [502u16, 524] {
        sim.set_faults(vec![FaultRule {
            vendor: None,
            method: None,
            path: "/v1/*".into(),
            probability: 1.0,
            kind: FaultKind::Status(code),
            times: None,
        }]);
        let resp = http()
            .get(format!("{}/v1/organizations", sim.supabase_api_url()))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), code);
        assert!(
            resp.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
    }
    sim.set_faults(vec![FaultRule {
        vendor: Some(Vendor::Supabase),
        method: None,
        path: "/v1/projects/{ref}".into(),
        probability: 1.0,
        kind: FaultKind::RateLimited,
        times: Some(1),
    }]);
    let resp = http()
        .get(format!(
            "{}/v1/projects/abcdefghijklmnopqrst",
            sim.supabase_api_url()
        ))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(resp.headers().contains_key("x-ratelimit-reset"));
    let stats = sim.stats();
    assert_eq!(stats.faults_injected["500"], 1);
    assert_eq!(stats.faults_injected["429"], 1);
    assert_eq!(
        stats.count_status(Vendor::Supabase, "GET", "/v1/organizations", 503),
        1
    );
    sim.shutdown().await.unwrap();
}

#[tokio::test]
async fn connection_reset_fault() {
    let sim = start(config()).await;
    sim.set_faults(vec![FaultRule {
        vendor: Some(Vendor::Supabase),
        method: Some("GET".into()),
        path: "/v1/organizations".into(),
        probability: 1.0,
        kind: FaultKind::Reset,
        times: Some(1),
    }]);
    let err = http()
        .get(format!("{}/v1/organizations", sim.supabase_api_url()))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect_err("the connection should have been reset");
    assert!(!err.is_status(), "{err}");
    // The next request is fine.
    assert_eq!(
        Api::new(&sim).get("/v1/organizations").await.0,
        StatusCode::OK
    );
    assert_eq!(
        sim.stats()
            .count_status(Vendor::Supabase, "GET", "/v1/organizations", 0),
        1
    );
    sim.shutdown().await.unwrap();
}

#[tokio::test]
async fn commit_then_drop_creates_the_project_the_client_never_heard_of() {
    let sim = start(config()).await;
    let api = Api::new(&sim);
    sim.set_faults(vec![FaultRule {
        vendor: Some(Vendor::Supabase),
        method: Some("POST".into()),
        path: "/v1/projects".into(),
        probability: 1.0,
        kind: FaultKind::CommitThenDrop,
        times: Some(1),
    }]);
    let name = unique("ghost");
    let err = http()
        .post(format!("{}/v1/projects", sim.supabase_api_url()))
        .bearer_auth(TOKEN)
        .json(&create_body(&name))
        .send()
        .await
        .expect_err("the response should have been dropped");
    assert!(!err.is_status(), "{err}");
    // Look up by name, as a careful client must after an ambiguous failure: it exists.
    let (st, list) = api
        .get(&format!("/v1/organizations/{ORG}/projects?search={name}"))
        .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(list["pagination"]["count"], 1, "{list}");
    assert_eq!(list["projects"][0]["name"], name.as_str());
    assert_eq!(sim.stats().faults_injected["commit_then_drop"], 1);
    sim.shutdown().await.unwrap();
}

#[tokio::test]
async fn faults_replay_with_the_same_seed() {
    async fn run(seed: u64) -> Vec<u16> {
        let mut c = config();
        c.seed = Some(seed);
        c.faults = vec![FaultRule {
            vendor: Some(Vendor::Supabase),
            method: None,
            path: "/v1/organizations".into(),
            probability: 0.5,
            kind: FaultKind::Status(503),
            times: None,
        }];
        let sim = start(c).await;
        let api = Api::new(&sim);
        let mut out = Vec::new();
        for _ in 0..16 {
            out.push(api.get("/v1/organizations").await.0.as_u16());
        }
        sim.shutdown().await.unwrap();
        out
    }
    let a = run(99).await;
    assert_eq!(a, run(99).await);
    assert!(a.contains(&503) && a.contains(&200), "{a:?}");
}

#[tokio::test]
async fn latency_is_added() {
    let sim = start(config()).await;
    let api = Api::new(&sim);
    let t = Instant::now();
    api.get("/v1/organizations").await;
    let base = t.elapsed();
    let mut l = std::collections::BTreeMap::new();
    l.insert(
        Vendor::Supabase,
        sim::Latency {
            fixed_ms: 150,
            jitter_ms: 20,
        },
    );
    sim.set_latency(l);
    let t = Instant::now();
    api.get("/v1/organizations").await;
    assert!(
        t.elapsed() >= Duration::from_millis(150),
        "{:?} (base {base:?})",
        t.elapsed()
    );
    sim.shutdown().await.unwrap();
}

#[tokio::test]
async fn admin_endpoints() {
    let sim = start(config()).await;
    let api = Api::new(&sim);
    let r = create_active(&api, &unique("admin")).await;
    let c = http();
    let stats: Value = c
        .get(format!("{}/__sim/stats", sim.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        stats["requests"]
            .as_array()
            .unwrap()
            .iter()
            .any(|row| row["route"] == "/v1/projects" && row["status"] == 201)
    );
    assert!(stats["bytes_received"]["supabase"].as_u64().unwrap() > 0);
    let state: Value = c
        .get(format!("{}/__sim/state", sim.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let p = &state["supabase"]["projects"][0];
    assert_eq!(p["ref"], r.as_str());
    assert!(
        p["database_url"]
            .as_str()
            .unwrap()
            .contains(&format!("sim_{r}"))
    );
    let text = state.to_string();
    let project = sim.supabase().project(&r).unwrap();
    assert!(!text.contains(&project.keys.jwt_secret) && !text.contains(&project.keys.service_role));

    let rules = json!([{ "path": "/v1/organizations", "kind": "503", "times": 1 }]);
    let resp = c
        .put(format!("{}/__sim/faults", sim.base_url()))
        .json(&rules)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        api.get("/v1/organizations").await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );
    let resp = c
        .put(format!("{}/__sim/latency", sim.base_url()))
        .json(&json!({ "supabase": { "fixed_ms": 1 } }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let (st, v) = api.get("/v1/no/such/route").await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    assert!(v["message"].is_string());
    assert_eq!(
        sim.stats()
            .count_status(Vendor::Supabase, "GET", "<unmatched>", 404),
        1
    );
    assert_eq!(sim.base_url(), sim.supabase_api_url());
    assert_eq!(
        sim.cloudflare_api_url(),
        format!("{}/client/v4", sim.base_url())
    );
    sim.shutdown().await.unwrap();
}

#[tokio::test]
async fn pause_and_restore() {
    let sim = start(config()).await;
    let api = Api::new(&sim);
    let r = create_active(&api, &unique("pause")).await;
    let (st, _) = api
        .post(&format!("/v1/projects/{r}/pause"), json!({}))
        .await;
    assert_eq!(st, StatusCode::OK);
    wait_status(&api, &r, "INACTIVE").await;
    let (st, _) = sql(&api, &r, "select 1").await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    let (st, _) = api
        .post(&format!("/v1/projects/{r}/restore"), json!({}))
        .await;
    assert_eq!(st, StatusCode::OK);
    wait_status(&api, &r, "ACTIVE_HEALTHY").await;
    assert_eq!(sql(&api, &r, "select 1 as x").await.1, json!([{"x": 1}]));
    sim.shutdown().await.unwrap();
}

#[tokio::test]
async fn state_persists_across_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config();
    c.state_dir = Some(dir.path().to_path_buf());
    let sim1 = start(c.clone()).await;
    let api = Api::new(&sim1);
    let r = create_active(&api, &unique("persist")).await;
    let (_, keys1) = api
        .get(&format!("/v1/projects/{r}/api-keys?reveal=true"))
        .await;
    api.call(
        reqwest::Method::PATCH,
        &format!("/v1/projects/{r}/config/auth"),
        Some(json!({ "site_url": "https://persist.example" })),
    )
    .await;
    sql(
        &api,
        &r,
        "create table kept (x int); insert into kept values (7)",
    )
    .await;
    // Saved in the background shortly after the change, without waiting for shutdown; the
    // file never holds the database password and is private to its owner.
    let file = dir.path().join("supabase.json");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        if text.contains("https://persist.example") {
            assert!(!text.contains("correct-horse"), "db_pass persisted");
            break;
        }
        assert!(Instant::now() < deadline, "state not saved: {text}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "state file readable by others: {mode:o}");
    }
    sim1.shutdown().await.unwrap();

    let sim2 = start(c.clone()).await;
    let api = Api::new(&sim2);
    let (st, p) = api.get(&format!("/v1/projects/{r}")).await;
    assert_eq!(st, StatusCode::OK, "{p}");
    assert_eq!(p["status"], "ACTIVE_HEALTHY");
    assert_eq!(
        api.get(&format!("/v1/projects/{r}/api-keys?reveal=true"))
            .await
            .1,
        keys1
    );
    assert_eq!(
        api.get(&format!("/v1/projects/{r}/config/auth")).await.1["site_url"],
        "https://persist.example"
    );
    assert_eq!(
        sql(&api, &r, "select x from kept").await.1,
        json!([{"x": 7}])
    );
    // A lost database (throwaway server, reset) is provisioned again, empty, at the next start.
    let url = sim2.supabase().database_url(&r).unwrap();
    let db_name = format!("sim_{r}");
    sim2.shutdown().await.unwrap();
    intelli::pg::drop_database(&intelli::pg::server_url(), &db_name)
        .await
        .unwrap();
    let sim2 = start(c.clone()).await;
    let api = Api::new(&sim2);
    wait_status(&api, &r, "ACTIVE_HEALTHY").await;
    assert_eq!(sim2.supabase().database_url(&r).unwrap(), url);
    let (st, v) = sql(
        &api,
        &r,
        "select count(*) as n from pg_tables where tablename = 'kept'",
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    assert_eq!(v, json!([{"n": 0}]));

    // Clean up: delete the project (drops its database), then stop.
    let (st, _) = api
        .call(reqwest::Method::DELETE, &format!("/v1/projects/{r}"), None)
        .await;
    assert_eq!(st, StatusCode::OK);
    sim2.shutdown().await.unwrap();
}

#[tokio::test]
async fn memory_only_shutdown_drops_databases() {
    let sim = start(config()).await;
    let api = Api::new(&sim);
    let r = create_active(&api, &unique("drop")).await;
    sim.shutdown().await.unwrap();
    let admin = intelli::pg::connect(&intelli::pg::server_url())
        .await
        .unwrap();
    let left = admin
        .query_opt(
            "select 1 from pg_database where datname = $1",
            &[&format!("sim_{r}")],
        )
        .await
        .unwrap();
    assert!(left.is_none(), "sim_{r} survived shutdown");
}

#[tokio::test]
async fn cli_sim_serve_prints_exports_and_stops_on_ctrl_c() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("sim.yaml");
    std::fs::write(&cfg, "seed: 5\nsupabase:\n  provisioning_delay_ms: 100\n").unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_intelli"))
        .args(["sim", "serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(&cfg)
        // No fleet here: the simulator's own account is served and exported.
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn intelli sim serve");
    // Whatever happens below, do not leave the server running.
    struct KillOnDrop(std::process::Child);
    impl Drop for KillOnDrop {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let stdout = child.stdout.take().unwrap();
    let mut child = KillOnDrop(child);
    // Read the banner on a thread: the pipe read blocks.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = Vec::new();
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let done = line.starts_with("Press Ctrl-C");
            lines.push(line);
            if done {
                break;
            }
        }
        let _ = tx.send(lines);
    });
    let lines = match rx.recv_timeout(Duration::from_secs(30)) {
        Ok(l) => l,
        Err(_) => panic!("no banner from intelli sim serve"),
    };
    let text = lines.join("\n");
    assert!(text.contains("(seed 5)"), "{text}");
    let url = lines
        .iter()
        .find_map(|l| l.strip_prefix("export SUPABASE_API_URL="))
        .unwrap_or_else(|| panic!("no SUPABASE_API_URL in {text}"))
        .to_owned();
    let token = lines
        .iter()
        .find_map(|l| l.strip_prefix("export SUPABASE_ACCESS_TOKEN="))
        .unwrap()
        .to_owned();
    assert!(text.contains("export CLOUDFLARE_API_BASE_URL="));
    assert!(
        text.contains("export SUPABASE_PROJECT_URL_TEMPLATE='http://127.0.0.1:"),
        "{text}"
    );
    assert!(
        text.contains("export CLOUDFLARE_API_TOKEN=")
            && text.contains("export CLOUDFLARE_ACCOUNT_ID=")
            && text.contains("export INTELLI_SITE_PROBE_URL=http://127.0.0.1:"),
        "{text}"
    );
    let api = Api {
        base: url,
        client: http(),
        token,
    };
    let (st, _) = api.get("/v1/organizations").await;
    assert_eq!(st, StatusCode::OK);

    // Ctrl-C (SIGINT to this child only) stops it cleanly.
    let status = Command::new("kill")
        .args(["-INT", &child.0.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(st) = child.0.try_wait().unwrap() {
            assert!(st.success(), "exit status {st}");
            break;
        }
        if Instant::now() > deadline {
            panic!("intelli sim serve did not stop on SIGINT");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test]
async fn cloudflare_router_is_mounted_and_instrumented_by_the_core() {
    let mut c = config();
    c.cloudflare.tokens = vec!["cf-test-token".into()];
    let sim = start(c).await;
    let account = sim.cloudflare_account_id();
    assert_eq!(sim.cloudflare_token(), "cf-test-token");
    let url = format!(
        "{}/accounts/{account}/pages/projects",
        sim.cloudflare_api_url()
    );
    let resp = http()
        .get(&url)
        .bearer_auth("cf-test-token")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["success"], true, "{v}");

    // The core's faults reach the Cloudflare routes too, with Cloudflare's envelope.
    sim.set_faults(vec![FaultRule {
        vendor: Some(Vendor::Cloudflare),
        method: Some("GET".into()),
        path: "*/pages/projects".into(),
        probability: 1.0,
        kind: FaultKind::Status(503),
        times: Some(1),
    }]);
    let resp = http()
        .get(&url)
        .bearer_auth("cf-test-token")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["success"], false);
    assert!(v["errors"][0]["code"].is_number());

    let stats = sim.stats();
    assert_eq!(stats.total(Vendor::Cloudflare), 2, "{:?}", stats.requests);
    assert!(stats.cloudflare.is_object());
    let dump = sim.state_dump();
    assert!(dump["cloudflare"].is_object() && dump["supabase"].is_object());

    // A Host that names no site falls through to the normal routes.
    let resp = http()
        .get(format!("{}/v1/organizations", sim.base_url()))
        .header("host", "nothing-here.example.com")
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    sim.shutdown().await.unwrap();
}

#[test]
fn yaml_config_covers_both_vendors() {
    let c = SimConfig::from_yaml(
        "rate_limit_scale: 0.1\nsupabase:\n  tokens: [sbp_a]\ncloudflare:\n  account_ids: ['0123456789abcdef0123456789abcdef']\n  domain_activation_delay_ms: 10\n",
    )
    .unwrap();
    let cf = c.cloudflare_config();
    assert_eq!(
        cf.account_ids,
        vec!["0123456789abcdef0123456789abcdef".to_string()]
    );
    assert_eq!(cf.domain_activation_delay, Duration::from_millis(10));
    assert_eq!(cf.rate_limit_scale, 0.1);
    assert!(SimConfig::from_yaml("cloudflare:\n  acount_ids: []\n").is_err());
}

#[tokio::test]
async fn project_url_template_by_host_reaches_the_project() {
    let mut c = config_with_legacy();
    c.project_url_template = Some("http://{ref}.localhost:{port}".into());
    let sim = start(c).await;
    let api = Api::new(&sim);
    let r = create_active(&api, &unique("host")).await;
    let port = sim.addr().port();
    assert_eq!(sim.project_url(&r), format!("http://{r}.localhost:{port}"));
    // `*.localhost` may not resolve here: connect to the loopback address and name the
    // project in the Host header, as a resolver would.
    let key = service_key(&api, &r, true).await;
    let resp = http()
        .post(format!("{}/storage/v1/bucket", sim.base_url()))
        .header("host", format!("{r}.localhost:{port}"))
        .header("apikey", &key)
        .bearer_auth(&key)
        .json(&json!({ "name": "by-host" }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let resp = http()
        .get(format!("{}/storage/v1/bucket/by-host", sim.base_url()))
        .header("host", format!("{r}.localhost"))
        .header("apikey", &key)
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.json::<Value>().await.unwrap()["id"], "by-host");

    // A renamed project keeps its ref (PATCH /v1/projects/{ref}).
    let (st, v) = api
        .call(
            reqwest::Method::PATCH,
            &format!("/v1/projects/{r}"),
            Some(json!({ "name": "renamed" })),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    check_response("/v1/projects/{ref}", "patch", "200", &v);
    assert_eq!(v["name"], "renamed");
    sim.shutdown().await.unwrap();
}

#[test]
fn vendored_spec_names_its_source_and_covers_the_served_operations() {
    let from = &spec()["x-vendored-from"];
    assert_eq!(from["repo"], "supabase/cli");
    assert!(from["commit"].as_str().unwrap().len() >= 40);
    let ops: Vec<String> = from["operations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o.as_str().unwrap().to_owned())
        .collect();
    for op in [
        "GET /v1/organizations",
        "POST /v1/projects",
        "GET /v1/projects",
        "GET /v1/organizations/{slug}/projects",
        "GET /v1/projects/{ref}",
        "PATCH /v1/projects/{ref}",
        "DELETE /v1/projects/{ref}",
        "POST /v1/projects/{ref}/pause",
        "POST /v1/projects/{ref}/restore",
        "GET /v1/projects/{ref}/health",
        "GET /v1/projects/{ref}/api-keys",
        "POST /v1/projects/{ref}/api-keys",
        "GET /v1/projects/{ref}/api-keys/legacy",
        "PUT /v1/projects/{ref}/api-keys/legacy",
        "DELETE /v1/projects/{ref}/api-keys/{id}",
        "POST /v1/projects/{ref}/database/query",
        "GET /v1/projects/{ref}/config/auth",
        "PATCH /v1/projects/{ref}/config/auth",
        "GET /v1/projects/{ref}/storage/buckets",
    ] {
        assert!(ops.contains(&op.to_string()), "{op} not vendored");
        let (method, path) = op.split_once(' ').unwrap();
        operation(path, &method.to_lowercase());
    }
}

#[tokio::test]
async fn many_projects_and_queries_at_once_queue_instead_of_failing() {
    let mut c = config();
    c.supabase.max_db_connections = 3;
    c.supabase.provisioning_delay_ms = 0;
    let sim = start(c).await;
    let api = std::sync::Arc::new(Api::new(&sim));
    let tag = unique("burst");
    let creates = (0..8).map(|i| {
        let api = api.clone();
        let name = format!("{tag}-{i}");
        tokio::spawn(async move { create_active(&api, &name).await })
    });
    let mut refs = Vec::new();
    for h in creates {
        refs.push(h.await.unwrap());
    }
    let queries = (0..40).map(|i| {
        let api = api.clone();
        let r = refs[i % refs.len()].clone();
        tokio::spawn(async move {
            sql(
                &api,
                &r,
                &format!("select {i} as i, pg_sleep(0.01)::text as s"),
            )
            .await
        })
    });
    for (i, h) in queries.enumerate() {
        let (st, v) = h.await.unwrap();
        assert_eq!(st, StatusCode::CREATED, "{v}");
        assert_eq!(v[0]["i"], i);
    }
    sim.shutdown().await.unwrap();
}

#[tokio::test]
async fn sim_reset_drops_kept_databases_and_state() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = SimConfig::sandbox(dir.path());
    c.supabase.provisioning_delay_ms = 100;
    let sim = start(c).await;
    let api = Api::new(&sim);
    let r = create_active(&api, &unique("reset")).await;
    sim.shutdown().await.unwrap();
    assert!(dir.path().join("supabase.json").exists());

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_intelli"))
        .args(["sim", "reset", "--state"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("1 project database dropped"));
    assert!(!dir.path().join("supabase.json").exists());
    let admin = intelli::pg::connect(&intelli::pg::server_url())
        .await
        .unwrap();
    let left = admin
        .query_opt(
            "select 1 from pg_database where datname = $1",
            &[&format!("sim_{r}")],
        )
        .await
        .unwrap();
    assert!(left.is_none());
}

#[test]
fn the_config_example_in_the_help_parses() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_intelli"))
        .args(["sim", "serve", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    let start = help.find("  listen:").expect("example in help");
    let end = help.find("\nAdmin endpoints").expect("end of example");
    let yaml: String = help[start..end]
        .lines()
        .map(|l| l.strip_prefix("  ").unwrap_or(l))
        .collect::<Vec<_>>()
        .join("\n");
    let c = SimConfig::from_yaml(&yaml).unwrap_or_else(|e| panic!("{e:#}\n{yaml}"));
    assert_eq!(c.seed, Some(42));
    assert_eq!(c.faults.len(), 2);
}
