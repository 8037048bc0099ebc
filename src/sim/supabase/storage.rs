//! Per-project Storage API, bucket routes (`/__projects/{ref}/storage/v1/bucket...`), backed
//! by the project's own `storage.buckets` table.
//!
//! Vendor behaviour kept (supabase/storage, see reference/supabase-api.md §5): errors are
//! `{statusCode: "<code as string>", code, error, message}` and the HTTP status is 400 for any
//! 4xx (the real code is in the body) and 500 for 5xx; callers authenticate with the
//! service-role key in `apikey` and/or `Authorization: Bearer` (a legacy JWT), or with an
//! `sb_secret_…` key in `apikey` alone. The platform's gateway checks come first (see
//! [`gateway_role`]).

// Handlers bail out early with a finished response; boxing it would only add noise.
#![allow(clippy::result_large_err)]

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Map, Value, json};

use super::SupabaseSim;
use super::db;
use super::keys::{KeyCheck, looks_like_jwt};
use super::model::{Project, status};

type Sim = State<Arc<SupabaseSim>>;

pub fn routes(sim: Arc<SupabaseSim>) -> Router {
    Router::new()
        .route(
            "/__projects/{ref}/storage/v1/bucket",
            get(list_buckets).post(create_bucket),
        )
        .route(
            "/__projects/{ref}/storage/v1/bucket/{id}",
            get(get_bucket).put(update_bucket).delete(delete_bucket),
        )
        .with_state(sim)
}

/// A Storage error as the vendor sends it.
fn storage_error(code_in_body: u16, code: &str, error: &str, message: &str) -> Response {
    let http = if (400..500).contains(&code_in_body) {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::INTERNAL_SERVER_ERROR
    };
    (
        http,
        Json(json!({
            "statusCode": code_in_body.to_string(),
            "code": code,
            "error": error,
            "message": message,
        })),
    )
        .into_response()
}

fn bucket_not_found() -> Response {
    storage_error(404, "NoSuchBucket", "Bucket not found", "Bucket not found")
}

fn invalid(message: &str) -> Response {
    storage_error(400, "InvalidRequest", "Bad Request", message)
}

/// Answer for a path under `/__projects/` that matches no route.
pub fn not_found_route(method: &Method, path: &str) -> Response {
    storage_error(
        404,
        "NotFound",
        "Not Found",
        &format!("Route {method}:{path} not found"),
    )
}

/// A refusal by the platform's API gateway, in front of every project API: HTTP 401 with a
/// `{message, hint}` body (not the Storage error shape).
fn gateway_refusal(message: &str, hint: &str) -> Response {
    (
        StatusCode::UNAUTHORIZED,
        Json(json!({ "message": message, "hint": hint })),
    )
        .into_response()
}

/// The gateway's checks, then the role the request runs as. `sb_` keys go in `apikey`; a
/// Bearer token that is not a JWT must be the same key (a user's JWT as Bearer is normal);
/// legacy keys are refused while they are switched off.
fn gateway_role(p: &Project, headers: &HeaderMap) -> Result<String, Response> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(s, _)| s.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim().to_owned());
    let apikey = headers
        .get("apikey")
        .and_then(|v| v.to_str().ok())
        .map(|s| s.trim().to_owned());
    let disabled = || {
        gateway_refusal(
            "Legacy API keys are disabled",
            "Re-enable them in the project's API settings, or use a publishable or secret API key.",
        )
    };
    let invalid = || {
        gateway_refusal(
            "Invalid API key",
            "Double check your Supabase API key (sb_ keys are sent in the apikey header).",
        )
    };
    let apikey_role = match &apikey {
        Some(a) => match p.keys.check(a) {
            KeyCheck::Role(role) => Some(role),
            KeyCheck::LegacyDisabled => return Err(disabled()),
            KeyCheck::Unknown if a.starts_with("sb_") => return Err(invalid()),
            // A foreign JWT in `apikey`: Storage's own check below answers for it.
            KeyCheck::Unknown => None,
        },
        None => None,
    };
    match (bearer, apikey) {
        (Some(b), a) if !looks_like_jwt(&b) => {
            if a.as_deref() != Some(b.as_str()) {
                return Err(invalid());
            }
            apikey_role.ok_or_else(invalid)
        }
        (Some(b), _) => match p.keys.check(&b) {
            KeyCheck::Role(role) => Ok(role),
            KeyCheck::LegacyDisabled => Err(disabled()),
            KeyCheck::Unknown => Err(storage_error(
                400,
                "InvalidJWT",
                "Invalid JWT",
                "invalid signature",
            )),
        },
        (None, Some(_)) => apikey_role
            .ok_or_else(|| storage_error(400, "InvalidJWT", "Invalid JWT", "invalid signature")),
        (None, None) => Err(storage_error(
            400,
            "InvalidJWT",
            "Invalid JWT",
            "headers must have required property 'authorization'",
        )),
    }
}

/// Resolve the project and check the caller holds its service-role key. The vendor runs
/// bucket routes under RLS; with the anon key nothing is visible or writable, which the
/// simulator renders as the vendor's RLS refusal.
fn authorize(
    sim: &SupabaseSim,
    r: &str,
    headers: &HeaderMap,
) -> Result<(Project, String), Response> {
    // An unknown project has no Storage API at all: the vendor's gateway answers for it. A
    // project being deleted has none any more.
    let Some(p) = sim.project(r).filter(|p| !status::is_dying(&p.status)) else {
        return Err(storage_error(
            404,
            "TenantNotFound",
            "Not Found",
            "Tenant not found",
        ));
    };
    let role = gateway_role(&p, headers)?;
    if role != "service_role" {
        return Err(storage_error(
            403,
            "AccessDenied",
            "Unauthorized",
            "new row violates row-level security policy",
        ));
    }
    if !p.db_ready {
        return Err(storage_error(
            503,
            "DatabaseError",
            "Service Unavailable",
            "The project's database is not ready",
        ));
    }
    let Some(url) = sim.database_url(r) else {
        return Err(bucket_not_found());
    };
    Ok((p, url))
}

/// `authorize`, then the body as a JSON object: the start of every bucket write.
fn authorize_with_body(
    sim: &SupabaseSim,
    r: &str,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<(String, Map<String, Value>), Response> {
    let (_project, url) = authorize(sim, r, headers)?;
    Ok((url, parse_object(body)?))
}

fn parse_object(body: &Bytes) -> Result<Map<String, Value>, Response> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(invalid("body must be object")),
    }
}

/// Bucket names the vendor accepts: 1–100 characters of a safe set, no outer whitespace.
fn valid_bucket_name(name: &str) -> bool {
    let len = name.chars().count();
    (1..=100).contains(&len)
        && name.trim() == name
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_!.*'() &$=@;:+,?-".contains(c))
}

/// `file_size_limit`: bytes as an integer, or a string like `100MB`, or null.
fn parse_size(v: &Value) -> Result<Option<i64>, ()> {
    match v {
        Value::Null => Ok(None),
        Value::Number(n) => n.as_i64().filter(|x| *x >= 0).map(Some).ok_or(()),
        Value::String(s) => {
            let lower = s.trim().to_ascii_lowercase();
            let (num, mult) = if let Some(n) = lower.strip_suffix("gb") {
                (n, 1024f64 * 1024.0 * 1024.0)
            } else if let Some(n) = lower.strip_suffix("mb") {
                (n, 1024f64 * 1024.0)
            } else if let Some(n) = lower.strip_suffix("kb") {
                (n, 1024f64)
            } else if let Some(n) = lower.strip_suffix('b') {
                (n, 1f64)
            } else {
                return Err(());
            };
            let ok = !num.is_empty()
                && num.chars().all(|c| c.is_ascii_digit() || c == '.')
                && num.matches('.').count() <= 1
                && !num.starts_with('.')
                && !num.ends_with('.');
            if !ok {
                return Err(());
            }
            let x: f64 = num.parse().map_err(|_| ())?;
            Ok(Some((x * mult) as i64))
        }
        _ => Err(()),
    }
}

fn parse_mimes(v: &Value) -> Result<Option<Vec<String>>, ()> {
    match v {
        Value::Null => Ok(None),
        Value::Array(items) => items
            .iter()
            .map(|x| x.as_str().map(str::to_owned).ok_or(()))
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        _ => Err(()),
    }
}

const BUCKET_COLUMNS: &str = "id, name, owner::text AS owner, owner_id, coalesce(public, false) AS public, type, \
    file_size_limit, allowed_mime_types, \
    to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"') AS created_at, \
    to_char(updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"') AS updated_at";

fn db_failure(e: db::QueryError) -> Response {
    storage_error(500, "DatabaseError", "internal", &e.message)
}

async fn create_bucket(
    State(sim): Sim,
    Path(r): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (url, body) = or_answer!(authorize_with_body(&sim, &r, &headers, &body));
    let allowed = [
        "name",
        "id",
        "public",
        "type",
        "file_size_limit",
        "allowed_mime_types",
    ];
    if let Some(k) = body.keys().find(|k| !allowed.contains(&k.as_str())) {
        return invalid(&format!("body must NOT have additional properties ({k})"));
    }
    let Some(name) = body.get("name").and_then(Value::as_str).map(str::to_owned) else {
        return invalid("body must have required property 'name'");
    };
    let id = match body.get("id") {
        None | Some(Value::Null) => name.clone(),
        Some(Value::String(s)) => s.clone(),
        Some(_) => return invalid("body/id must be string"),
    };
    if !valid_bucket_name(&name) || !valid_bucket_name(&id) {
        return storage_error(
            400,
            "InvalidBucketName",
            "Invalid Input",
            "Bucket name invalid",
        );
    }
    let public = match body.get("public") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return invalid("body/public must be boolean"),
    };
    let ty = match body.get("type") {
        None | Some(Value::Null) => "STANDARD".to_owned(),
        Some(Value::String(s)) if s == "STANDARD" || s == "ANALYTICS" => s.clone(),
        Some(_) => return invalid("body/type must be equal to one of the allowed values"),
    };
    let Ok(size) = parse_size(body.get("file_size_limit").unwrap_or(&Value::Null)) else {
        return invalid("Invalid file size format, hint: use 20GB / 20MB / 30KB / 3B");
    };
    let Ok(mimes) = parse_mimes(body.get("allowed_mime_types").unwrap_or(&Value::Null)) else {
        return invalid("body/allowed_mime_types must be array");
    };
    let params = vec![
        json!(id),
        json!(name),
        json!(public),
        json!(ty),
        json!(size.map(|s| s.to_string())),
        json!(mimes),
    ];
    // ON CONFLICT DO NOTHING + RETURNING tells a duplicate apart without an error round trip
    // (the id and the name are both unique).
    let q = "INSERT INTO storage.buckets (id, name, public, type, file_size_limit, allowed_mime_types) \
             VALUES ($1, $2, $3, $4, $5::text::bigint, $6) ON CONFLICT DO NOTHING RETURNING name";
    match sim.query(&url, q, &params, false).await {
        Ok(Value::Array(rows)) if rows.is_empty() => storage_error(
            409,
            "BucketAlreadyExists",
            "Duplicate",
            "The resource already exists",
        ),
        Ok(_) => Json(json!({ "name": name })).into_response(),
        Err(e) => db_failure(e),
    }
}

async fn list_buckets(
    State(sim): Sim,
    Path(r): Path<String>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    let (_p, url) = or_answer!(authorize(&sim, &r, &headers));
    let pairs: Vec<(String, String)> = q
        .as_deref()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect()
        })
        .unwrap_or_default();
    let get_q = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let limit = match get_q("limit").map(|s| s.parse::<i64>()) {
        None => None,
        Some(Ok(n)) if n >= 1 => Some(n),
        Some(_) => return invalid("querystring/limit must be >= 1"),
    };
    let offset = match get_q("offset").map(|s| s.parse::<i64>()) {
        None => 0,
        Some(Ok(n)) if n >= 0 => n,
        Some(_) => return invalid("querystring/offset must be >= 0"),
    };
    // Column and direction come from fixed lists, so splicing them is safe.
    let column = match get_q("sortColumn").as_deref() {
        None | Some("name") => "name",
        Some("id") => "id",
        Some("created_at") => "created_at",
        Some("updated_at") => "updated_at",
        Some(_) => {
            return invalid("querystring/sortColumn must be equal to one of the allowed values");
        }
    };
    let order = match get_q("sortOrder").as_deref() {
        None | Some("asc") => "ASC",
        Some("desc") => "DESC",
        Some(_) => {
            return invalid("querystring/sortOrder must be equal to one of the allowed values");
        }
    };
    let search = get_q("search").unwrap_or_default();
    let q = format!(
        "SELECT {BUCKET_COLUMNS} FROM storage.buckets WHERE name ILIKE '%' || $1 || '%' \
         ORDER BY {column} {order} LIMIT $2::text::bigint OFFSET $3::text::bigint"
    );
    let params = vec![
        json!(search),
        json!(limit.map(|l| l.to_string())),
        json!(offset.to_string()),
    ];
    match sim.query(&url, &q, &params, true).await {
        Ok(rows) => Json(rows).into_response(),
        Err(e) => db_failure(e),
    }
}

async fn get_bucket(
    State(sim): Sim,
    Path((r, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let (_p, url) = or_answer!(authorize(&sim, &r, &headers));
    let q = format!("SELECT {BUCKET_COLUMNS} FROM storage.buckets WHERE id = $1");
    match sim.query(&url, &q, &[json!(id)], true).await {
        Ok(Value::Array(mut rows)) if !rows.is_empty() => Json(rows.swap_remove(0)).into_response(),
        Ok(_) => bucket_not_found(),
        Err(e) => db_failure(e),
    }
}

async fn update_bucket(
    State(sim): Sim,
    Path((r, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (url, body) = or_answer!(authorize_with_body(&sim, &r, &headers, &body));
    let allowed = ["public", "file_size_limit", "allowed_mime_types", "type"];
    if let Some(k) = body.keys().find(|k| !allowed.contains(&k.as_str())) {
        return invalid(&format!("body must NOT have additional properties ({k})"));
    }
    if !["public", "file_size_limit", "allowed_mime_types"]
        .iter()
        .any(|k| body.contains_key(*k))
    {
        return invalid("body must NOT have fewer than 1 properties");
    }
    let public = match body.get("public") {
        None => None,
        Some(Value::Bool(b)) => Some(*b),
        Some(_) => return invalid("body/public must be boolean"),
    };
    let size = match body.get("file_size_limit").map(parse_size) {
        None => None,
        Some(Ok(s)) => Some(s),
        Some(Err(())) => {
            return invalid("Invalid file size format, hint: use 20GB / 20MB / 30KB / 3B");
        }
    };
    let mimes = match body.get("allowed_mime_types").map(parse_mimes) {
        None => None,
        Some(Ok(m)) => Some(m),
        Some(Err(())) => return invalid("body/allowed_mime_types must be array"),
    };
    // Each column is only touched when its field was sent ($n flags which ones).
    let q = "UPDATE storage.buckets SET \
             public = CASE WHEN $2 THEN $3 ELSE public END, \
             file_size_limit = CASE WHEN $4 THEN $5::text::bigint ELSE file_size_limit END, \
             allowed_mime_types = CASE WHEN $6 THEN $7 ELSE allowed_mime_types END, \
             updated_at = now() WHERE id = $1 RETURNING id";
    let params = vec![
        json!(id),
        json!(public.is_some()),
        json!(public.unwrap_or(false)),
        json!(size.is_some()),
        json!(size.flatten().map(|s| s.to_string())),
        json!(mimes.is_some()),
        json!(mimes.flatten()),
    ];
    match sim.query(&url, q, &params, false).await {
        Ok(Value::Array(rows)) if rows.is_empty() => bucket_not_found(),
        Ok(_) => Json(json!({ "message": "Successfully updated" })).into_response(),
        Err(e) => db_failure(e),
    }
}

async fn delete_bucket(
    State(sim): Sim,
    Path((r, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let (_p, url) = or_answer!(authorize(&sim, &r, &headers));
    // One statement, so the emptiness check and the delete see the same snapshot.
    let q = "WITH b AS (SELECT id, EXISTS (SELECT 1 FROM storage.objects o WHERE o.bucket_id = $1) AS busy \
                        FROM storage.buckets WHERE id = $1), \
             d AS (DELETE FROM storage.buckets WHERE id = $1 AND NOT (SELECT busy FROM b) RETURNING id) \
             SELECT (SELECT count(*) FROM b) AS found, (SELECT count(*) FROM d) AS deleted";
    match sim.query(&url, q, &[json!(id)], false).await {
        Ok(Value::Array(rows)) => {
            let row = rows.first().cloned().unwrap_or(Value::Null);
            let found = row["found"].as_i64().unwrap_or(0);
            let deleted = row["deleted"].as_i64().unwrap_or(0);
            if found == 0 {
                bucket_not_found()
            } else if deleted == 0 {
                storage_error(
                    409,
                    "ResourceNotEmpty",
                    "ResourceNotEmpty",
                    "The bucket you tried to delete is not empty",
                )
            } else {
                Json(json!({ "message": "Successfully deleted" })).into_response()
            }
        }
        Ok(_) => bucket_not_found(),
        Err(e) => db_failure(e),
    }
}
