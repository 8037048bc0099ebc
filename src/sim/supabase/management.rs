//! Management API handlers (`/v1/...`).

// Handlers bail out early with a finished response; boxing it would only add noise.
#![allow(clippy::result_large_err)]

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Map, Value, json};

use super::keys::{ApiKey, KeyKind, ProjectKeys};
use super::model::{Project, status};
use super::{SupabaseSim, auth_config, error, new_ref};
use crate::sim::server::middleware::lock;

type Sim = State<Arc<SupabaseSim>>;

/// Largest request body accepted (SQL included).
const MAX_BODY: usize = 32 * 1024 * 1024;

pub fn routes(sim: Arc<SupabaseSim>) -> Router {
    Router::new()
        .route("/v1/organizations", get(list_orgs))
        .route("/v1/projects", get(list_projects).post(create_project))
        .route("/v1/organizations/{slug}/projects", get(org_projects))
        .route(
            "/v1/projects/{ref}",
            get(get_project)
                .patch(rename_project)
                .delete(delete_project),
        )
        .route("/v1/projects/{ref}/pause", post(pause_project))
        .route("/v1/projects/{ref}/restore", post(restore_project))
        .route("/v1/projects/{ref}/health", get(health))
        .route(
            "/v1/projects/{ref}/api-keys",
            get(api_keys).post(create_api_key),
        )
        .route(
            "/v1/projects/{ref}/api-keys/legacy",
            get(get_legacy_keys).put(put_legacy_keys),
        )
        .route(
            "/v1/projects/{ref}/api-keys/{id}",
            axum::routing::delete(delete_api_key),
        )
        .route("/v1/projects/{ref}/database/query", post(run_query))
        .route(
            "/v1/projects/{ref}/config/auth",
            get(get_auth).patch(patch_auth),
        )
        .route("/v1/projects/{ref}/storage/buckets", get(list_buckets))
        // Migration files and seeds go through `database/query`; axum's 2 MiB default is
        // smaller than some real ones.
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        .with_state(sim)
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "Project not found")
}

fn bad_request(msg: impl Into<String>) -> Response {
    error(StatusCode::BAD_REQUEST, msg)
}

/// Parse a JSON object body, answering 400 like the vendor on anything else.
fn json_object(body: &Bytes) -> Result<Map<String, Value>, Response> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(bad_request("Request body must be a JSON object")),
        Err(e) => Err(bad_request(format!("Invalid JSON body: {e}"))),
    }
}

/// `key=value` pairs of a query string, percent-decoded (repeated keys kept).
fn query_pairs(q: &Option<String>) -> Vec<(String, String)> {
    match q {
        Some(q) => url::form_urlencoded::parse(q.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect(),
        None => Vec::new(),
    }
}

fn query_get(pairs: &[(String, String)], key: &str) -> Option<String> {
    pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone())
}

fn project_or_404(sim: &SupabaseSim, r: &str) -> Result<Project, Response> {
    sim.project(r).ok_or_else(not_found)
}

async fn list_orgs(State(sim): Sim) -> Response {
    let orgs: Vec<Value> = sim
        .orgs()
        .iter()
        .map(|o| json!({ "id": o.slug, "slug": o.slug, "name": o.name }))
        .collect();
    Json(orgs).into_response()
}

use axum::Json;

async fn list_projects(State(sim): Sim) -> Response {
    let inner = lock(&sim.inner);
    let mut list: Vec<&Project> = inner.projects.values().collect();
    list.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
    Json(
        list.iter()
            .map(|p| p.to_v1_with_database())
            .collect::<Vec<_>>(),
    )
    .into_response()
}

// The vendor's region and size lists are the ones the fleet files are checked against.
use crate::fleet::model::{INSTANCE_SIZES as SIZES, REGIONS};

/// `V1CreateProjectBody`'s properties (`additionalProperties: false`).
const CREATE_FIELDS: &[&str] = &[
    "db_pass",
    "name",
    "organization_id",
    "organization_slug",
    "plan",
    "region",
    "region_selection",
    "kps_enabled",
    "desired_instance_size",
    "template_url",
];

fn is_slug(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_alphanumeric() || c == '_' || c == '-')
}

/// Validate a create body; returns (name, org, region, size). Never echoes `db_pass`. Every
/// problem is reported, in the platform's order, joined by commas.
fn validate_create(body: &Map<String, Value>) -> Result<(String, String, String, String), String> {
    let mut errs: Vec<String> = body
        .keys()
        .filter(|k| !CREATE_FIELDS.contains(&k.as_str()))
        .map(|k| format!("property {k} should not exist"))
        .collect();
    match body.get("db_pass") {
        Some(Value::String(_)) => {}
        Some(_) => errs.push("db_pass must be a string".into()),
        None => errs.push("db_pass should not be empty".into()),
    }
    let mut field = |checked: Result<String, String>| {
        checked.unwrap_or_else(|e| {
            errs.push(e);
            String::new()
        })
    };
    let name = field(create_name(body.get("name")));
    let org = field(match body.get("organization_slug") {
        Some(Value::String(s)) if is_slug(s) => Ok(s.clone()),
        Some(_) => Err("organization_slug must match /^[\\w-]+$/ regular expression".into()),
        None => Err("organization_slug should not be empty".into()),
    });
    let region = field(create_region(
        body.get("region"),
        body.get("region_selection"),
    ));
    let size = field(match body.get("desired_instance_size") {
        None => Ok("nano".to_string()),
        Some(Value::String(s)) if SIZES.contains(&s.as_str()) => Ok(s.clone()),
        Some(_) => Err(format!(
            "desired_instance_size must be one of the following values: {}",
            SIZES.join(", ")
        )),
    });
    if let Some(v) = body.get("plan")
        && !matches!(v.as_str(), Some("free" | "pro"))
    {
        errs.push("plan must be one of the following values: free, pro".into());
    }
    if let Some(v) = body.get("kps_enabled")
        && !v.is_boolean()
    {
        errs.push("kps_enabled must be a boolean value".into());
    }
    for k in ["organization_id", "template_url"] {
        if let Some(v) = body.get(k)
            && !v.is_string()
        {
            errs.push(format!("{k} must be a string"));
        }
    }
    if errs.is_empty() {
        Ok((name, org, region, size))
    } else {
        Err(errs.join(", "))
    }
}

fn create_name(name: Option<&Value>) -> Result<String, String> {
    match name {
        Some(Value::String(s)) if s.is_empty() => Err("name should not be empty".into()),
        Some(Value::String(s)) if s.chars().count() <= 256 => Ok(s.clone()),
        Some(Value::String(_)) => {
            Err("name must be shorter than or equal to 256 characters".into())
        }
        Some(_) => Err("name must be a string".into()),
        None => Err("name should not be empty".into()),
    }
}

/// `region` or `region_selection` (not both); a smart group lands in one region of the group.
fn create_region(region: Option<&Value>, selection: Option<&Value>) -> Result<String, String> {
    match (region, selection) {
        (Some(_), Some(_)) => Err("Only one of region or region_selection can be specified".into()),
        (Some(Value::String(r)), None) if REGIONS.contains(&r.as_str()) => Ok(r.clone()),
        (Some(_), None) => Err(format!(
            "region must be one of the following values: {}",
            REGIONS.join(", ")
        )),
        (None, Some(sel)) => {
            let ty = sel.get("type").and_then(Value::as_str);
            let code = sel.get("code").and_then(Value::as_str);
            let extra = sel
                .as_object()
                .is_some_and(|o| o.keys().any(|k| k != "type" && k != "code"));
            match (ty, code) {
                _ if extra => Err("region_selection has unknown properties".into()),
                (Some("specific"), Some(c)) if REGIONS.contains(&c) => Ok(c.to_owned()),
                (Some("smartGroup"), Some("americas")) => Ok("us-east-1".into()),
                (Some("smartGroup"), Some("emea")) => Ok("eu-central-1".into()),
                (Some("smartGroup"), Some("apac")) => Ok("ap-southeast-1".into()),
                _ => Err("region_selection must be {type: specific, code: <region>} or {type: smartGroup, code: americas|emea|apac}".into()),
            }
        }
        (None, None) => Ok("us-east-1".into()),
    }
}

async fn create_project(State(sim): Sim, body: Bytes) -> Response {
    let body = match json_object(&body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let (name, org, region, size) = match validate_create(&body) {
        Ok(v) => v,
        Err(msg) => return bad_request(msg),
    };
    // `db_pass` is deliberately dropped here: the simulated database uses the server's own
    // credentials, and the vendor never returns the password either.
    drop(body);
    if !sim.orgs().iter().any(|o| o.slug == org) {
        return error(StatusCode::NOT_FOUND, "Organization not found");
    }
    let created_at = now();
    let project = {
        let mut inner = lock(&sim.inner);
        let project_ref = loop {
            let r = new_ref();
            if !inner.projects.contains_key(&r) {
                break r;
            }
        };
        let keys = match ProjectKeys::generate(&project_ref, &created_at, sim.cfg.legacy_api_keys) {
            Ok(k) => k,
            Err(e) => {
                return error(StatusCode::INTERNAL_SERVER_ERROR, format!("{e:#}"));
            }
        };
        let id = inner.next_id;
        inner.next_id += 1;
        let p = Project {
            db_name: format!("sim_{project_ref}"),
            project_ref: project_ref.clone(),
            id,
            name,
            organization_slug: org,
            region,
            instance_size: size,
            created_at,
            status: status::COMING_UP.into(),
            keys,
            auth_config: auth_config::defaults(None),
            db_ready: false,
        };
        inner.projects.insert(project_ref, p.clone());
        p
    };
    sim.persist();
    sim.spawn_provisioning(project.project_ref.clone());
    (StatusCode::CREATED, Json(project.to_v1())).into_response()
}

async fn org_projects(
    State(sim): Sim,
    Path(slug): Path<String>,
    RawQuery(q): RawQuery,
) -> Response {
    if !sim.orgs().iter().any(|o| o.slug == slug) {
        return error(StatusCode::NOT_FOUND, "Organization not found");
    }
    let pairs = query_pairs(&q);
    let offset = match query_get(&pairs, "offset").map(|s| s.parse::<u64>()) {
        None => 0,
        Some(Ok(n)) => n,
        Some(Err(_)) => return bad_request("offset must not be less than 0"),
    };
    let limit = match query_get(&pairs, "limit").map(|s| s.parse::<u64>()) {
        None => 100,
        Some(Ok(n)) if (1..=100).contains(&n) => n,
        Some(_) => return bad_request("limit must be between 1 and 100"),
    };
    let sort = query_get(&pairs, "sort").unwrap_or_else(|| "name_asc".into());
    if !["name_asc", "name_desc", "created_asc", "created_desc"].contains(&sort.as_str()) {
        return bad_request(
            "sort must be one of the following values: name_asc, name_desc, created_asc, created_desc",
        );
    }
    let search = query_get(&pairs, "search").map(|s| s.to_lowercase());
    let statuses: Option<Vec<String>> = query_get(&pairs, "statuses").map(|s| {
        s.split(',')
            .map(|x| x.trim().to_owned())
            .filter(|x| !x.is_empty())
            .collect()
    });
    let inner = lock(&sim.inner);
    let mut list: Vec<&Project> = inner
        .projects
        .values()
        .filter(|p| p.organization_slug == slug)
        .filter(|p| {
            search
                .as_ref()
                .is_none_or(|s| p.name.to_lowercase().contains(s))
        })
        .filter(|p| statuses.as_ref().is_none_or(|st| st.contains(&p.status)))
        .collect();
    let by_created =
        |a: &&Project, b: &&Project| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id));
    match sort.as_str() {
        "name_desc" => list.sort_by(|a, b| b.name.cmp(&a.name).then(b.id.cmp(&a.id))),
        "created_asc" => list.sort_by(by_created),
        "created_desc" => list.sort_by(|a, b| by_created(b, a)),
        _ => list.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id))),
    }
    let count = list.len();
    let page: Vec<Value> = list
        .into_iter()
        .skip(offset as usize)
        .take(limit as usize)
        .map(Project::to_org_item)
        .collect();
    Json(json!({
        "projects": page,
        "pagination": { "count": count, "limit": limit, "offset": offset },
    }))
    .into_response()
}

async fn get_project(State(sim): Sim, Path(r): Path<String>) -> Response {
    match project_or_404(&sim, &r) {
        Ok(p) => Json(p.to_v1_with_database()).into_response(),
        Err(resp) => resp,
    }
}

async fn rename_project(State(sim): Sim, Path(r): Path<String>, body: Bytes) -> Response {
    let body = or_answer!(json_object(&body));
    let name = match body.get("name") {
        Some(Value::String(s)) if (1..=256).contains(&s.chars().count()) => s.clone(),
        _ => return bad_request("name must be a string of 1 to 256 characters"),
    };
    let updated = {
        let mut inner = lock(&sim.inner);
        match inner.projects.get_mut(&r) {
            Some(p) => {
                p.name = name;
                p.to_ref_response()
            }
            None => return not_found(),
        }
    };
    sim.persist();
    Json(updated).into_response()
}

/// The project goes `GOING_DOWN`, then `REMOVED` (see `SupabaseSim::spawn_teardown`). A
/// project already on its way out is not found, so a repeated delete is a 404.
async fn delete_project(State(sim): Sim, Path(r): Path<String>) -> Response {
    match sim.begin_delete(&r) {
        Some(p) => Json(p.to_ref_response()).into_response(),
        None => not_found(),
    }
}

async fn pause_project(State(sim): Sim, Path(r): Path<String>) -> Response {
    let pause = [status::ACTIVE_HEALTHY, status::PAUSING, status::INACTIVE];
    switch_project(&sim, r, pause, "paused")
}

async fn restore_project(State(sim): Sim, Path(r): Path<String>) -> Response {
    let restore = [status::INACTIVE, status::RESTORING, status::ACTIVE_HEALTHY];
    switch_project(&sim, r, restore, "restored")
}

/// Pause or restore: allowed only `from` its starting status, the project passes through
/// `via` to `to` (see `SupabaseSim::spawn_transition`).
fn switch_project(
    sim: &Arc<SupabaseSim>,
    r: String,
    [from, via, to]: [&'static str; 3],
    done: &str,
) -> Response {
    let p = or_answer!(project_or_404(sim, &r));
    if p.status != from {
        return bad_request(format!("Project is {} and cannot be {done}", p.status));
    }
    sim.set_status(&r, via);
    sim.spawn_transition(r, via, to);
    StatusCode::OK.into_response()
}

const SERVICES: &[&str] = &[
    "auth",
    "db",
    "db_postgres_user",
    "pooler",
    "realtime",
    "rest",
    "storage",
    "pg_bouncer",
];

async fn health(State(sim): Sim, Path(r): Path<String>, RawQuery(q): RawQuery) -> Response {
    let p = or_answer!(project_or_404(&sim, &r));
    let pairs = query_pairs(&q);
    // Accept both `services=a,b` and `services=a&services=b`.
    let services: Vec<String> = pairs
        .iter()
        .filter(|(k, _)| k == "services" || k == "services[]")
        .flat_map(|(_, v)| {
            v.split(',')
                .map(|s| s.trim().to_owned())
                .collect::<Vec<_>>()
        })
        .filter(|s| !s.is_empty())
        .collect();
    if services.is_empty() {
        return bad_request("services should not be empty");
    }
    if let Some(bad) = services.iter().find(|s| !SERVICES.contains(&s.as_str())) {
        return bad_request(format!(
            "each value in services must be one of the following values: {} (got {bad})",
            SERVICES.join(", ")
        ));
    }
    let st = match p.status.as_str() {
        status::ACTIVE_HEALTHY => "ACTIVE_HEALTHY",
        status::COMING_UP | status::RESTORING => "COMING_UP",
        _ => "UNHEALTHY",
    };
    let healthy = st == "ACTIVE_HEALTHY";
    let out: Vec<Value> = services
        .iter()
        .map(|s| {
            let mut v = json!({ "name": s, "healthy": healthy, "status": st });
            if healthy {
                match s.as_str() {
                    "auth" => {
                        v["info"] = json!({ "name": "GoTrue", "version": "v2.170.0", "description": "GoTrue is a user registration and authentication API (intelli sim)" })
                    }
                    "rest" => v["info"] = json!({ "db_schema": "public" }),
                    _ => {}
                }
            } else {
                v["error"] = json!(format!("service is {st}"));
            }
            v
        })
        .collect();
    Json(out).into_response()
}

async fn api_keys(State(sim): Sim, Path(r): Path<String>, RawQuery(q): RawQuery) -> Response {
    let p = or_answer!(project_or_404(&sim, &r));
    let reveal = or_answer!(reveal_flag(&q));
    Json(p.keys.to_api_key_responses(reveal)).into_response()
}

/// `?reveal=` as the vendor reads it: absent is false.
fn reveal_flag(q: &Option<String>) -> Result<bool, Response> {
    match query_get(&query_pairs(q), "reveal").as_deref() {
        None | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(_) => Err(bad_request("reveal must be a boolean value")),
    }
}

/// `CreateApiKeyBody` checked as the vendor's validation pipe does (unknown properties are
/// refused like everywhere else in the Management API).
fn validate_create_key(
    body: &Map<String, Value>,
) -> Result<(KeyKind, String, Option<String>, Option<Value>), String> {
    let mut errs = Vec::new();
    if let Some(k) = body
        .keys()
        .find(|k| !["type", "name", "description", "secret_jwt_template"].contains(&k.as_str()))
    {
        errs.push(format!("property {k} should not exist"));
    }
    let kind = match body.get("type").and_then(Value::as_str) {
        Some("publishable") => Some(KeyKind::Publishable),
        Some("secret") => Some(KeyKind::Secret),
        _ => {
            errs.push("type must be one of the following values: publishable, secret".into());
            None
        }
    };
    let name = match body.get("name").and_then(Value::as_str) {
        Some(n) if valid_key_name(n) => Some(n.to_owned()),
        _ => {
            errs.push(
                "name must be 4 to 64 characters and match /^[a-z_][a-z0-9_]+$/ regular expression"
                    .into(),
            );
            None
        }
    };
    let description = match body.get("description") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => {
            errs.push("description must be a string".into());
            None
        }
    };
    let template = match body.get("secret_jwt_template") {
        None | Some(Value::Null) => None,
        Some(Value::Object(o)) => Some(Value::Object(o.clone())),
        Some(_) => {
            errs.push("secret_jwt_template must be an object".into());
            None
        }
    };
    match (kind, name) {
        (Some(kind), Some(name)) if errs.is_empty() => Ok((kind, name, description, template)),
        _ => Err(errs.join(", ")),
    }
}

/// The spec's pattern for key names: `^[a-z_][a-z0-9_]+$`, 4 to 64 characters.
fn valid_key_name(n: &str) -> bool {
    let mut chars = n.chars();
    (4..=64).contains(&n.len())
        && chars
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// `POST /v1/projects/{ref}/api-keys`: 201 with the new key. A name already used by a key of
/// the same type is refused with 409 (the simulator's choice; see the module docs), which is
/// what makes a repeated create safe.
async fn create_api_key(
    State(sim): Sim,
    Path(r): Path<String>,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Response {
    let reveal = or_answer!(reveal_flag(&q));
    let body = or_answer!(json_object(&body));
    let (kind, name, description, template) = match validate_create_key(&body) {
        Ok(v) => v,
        Err(msg) => return bad_request(msg),
    };
    let key = {
        let mut inner = lock(&sim.inner);
        let Some(p) = inner.projects.get_mut(&r) else {
            return not_found();
        };
        if status::is_dying(&p.status) {
            return not_found();
        }
        if p.keys.keys.iter().any(|k| k.kind == kind && k.name == name) {
            return error(
                StatusCode::CONFLICT,
                format!("An API key named {name} already exists"),
            );
        }
        let key = ApiKey::new(kind, &name, description, template, &now());
        p.keys.keys.push(key.clone());
        key
    };
    sim.persist();
    (StatusCode::CREATED, Json(key.to_response(reveal))).into_response()
}

/// `DELETE /v1/projects/{ref}/api-keys/{id}`: 200 with the key as it was (masked unless
/// revealed). Legacy keys have no such id; they are switched off with `api-keys/legacy`.
async fn delete_api_key(
    State(sim): Sim,
    Path((r, id)): Path<(String, String)>,
    RawQuery(q): RawQuery,
) -> Response {
    let reveal = or_answer!(reveal_flag(&q));
    let removed = {
        let mut inner = lock(&sim.inner);
        let Some(p) = inner.projects.get_mut(&r) else {
            return not_found();
        };
        match p.keys.keys.iter().position(|k| k.id == id) {
            Some(i) => p.keys.keys.remove(i),
            None => return error(StatusCode::NOT_FOUND, "API key not found"),
        }
    };
    sim.persist();
    Json(removed.to_response(reveal)).into_response()
}

async fn get_legacy_keys(State(sim): Sim, Path(r): Path<String>) -> Response {
    match project_or_404(&sim, &r) {
        Ok(p) => Json(json!({ "enabled": p.keys.legacy_enabled })).into_response(),
        Err(resp) => resp,
    }
}

/// `PUT /v1/projects/{ref}/api-keys/legacy?enabled=true|false`: both legacy keys together.
async fn put_legacy_keys(
    State(sim): Sim,
    Path(r): Path<String>,
    RawQuery(q): RawQuery,
) -> Response {
    let enabled = match query_get(&query_pairs(&q), "enabled").as_deref() {
        Some("true") => true,
        Some("false") => false,
        _ => return bad_request("enabled must be a boolean value"),
    };
    {
        let mut inner = lock(&sim.inner);
        let Some(p) = inner.projects.get_mut(&r) else {
            return not_found();
        };
        p.keys.legacy_enabled = enabled;
    }
    sim.persist();
    Json(json!({ "enabled": enabled })).into_response()
}

async fn run_query(State(sim): Sim, Path(r): Path<String>, body: Bytes) -> Response {
    let p = or_answer!(project_or_404(&sim, &r));
    let body = or_answer!(json_object(&body));
    if let Some(k) = body
        .keys()
        .find(|k| !["query", "parameters", "read_only"].contains(&k.as_str()))
    {
        return bad_request(format!("property {k} should not exist"));
    }
    let query = match body.get("query") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        _ => return bad_request("query must be longer than or equal to 1 characters"),
    };
    let params = match body.get("parameters") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a.clone(),
        Some(_) => return bad_request("parameters must be an array"),
    };
    let read_only = match body.get("read_only") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return bad_request("read_only must be a boolean value"),
    };
    if !p.db_ready || !matches!(p.status.as_str(), status::ACTIVE_HEALTHY) {
        return bad_request(format!(
            "Failed to run sql query: project is {} and its database is not reachable",
            p.status
        ));
    }
    let Some(url) = sim.database_url(&r) else {
        return not_found();
    };
    match sim.query(&url, &query, &params, read_only).await {
        Ok(rows) => (StatusCode::CREATED, Json(rows)).into_response(),
        Err(e) => bad_request(e.message),
    }
}

async fn get_auth(State(sim): Sim, Path(r): Path<String>) -> Response {
    match project_or_404(&sim, &r) {
        Ok(p) => Json(auth_config::masked(&p.auth_config)).into_response(),
        Err(resp) => resp,
    }
}

async fn patch_auth(State(sim): Sim, Path(r): Path<String>, body: Bytes) -> Response {
    let body = or_answer!(json_object(&body));
    let updated = {
        let mut inner = lock(&sim.inner);
        let Some(p) = inner.projects.get_mut(&r) else {
            return not_found();
        };
        let mut next = p.auth_config.clone();
        if let Err(msg) = auth_config::apply_patch(&mut next, &body) {
            return bad_request(msg);
        }
        p.auth_config = next;
        auth_config::masked(&p.auth_config)
    };
    sim.persist();
    Json(updated).into_response()
}

async fn list_buckets(State(sim): Sim, Path(r): Path<String>) -> Response {
    let p = or_answer!(project_or_404(&sim, &r));
    if !p.db_ready {
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Failed to retrieve buckets",
        );
    }
    let Some(url) = sim.database_url(&r) else {
        return not_found();
    };
    let q = "SELECT id, name, coalesce(owner::text, owner_id, '') AS owner, \
             to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"') AS created_at, \
             to_char(updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"') AS updated_at, \
             coalesce(public, false) AS public FROM storage.buckets ORDER BY name";
    match sim.query(&url, q, &[], true).await {
        Ok(rows) => Json(rows).into_response(),
        Err(_) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Failed to retrieve buckets",
        ),
    }
}
