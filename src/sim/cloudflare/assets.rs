//! Pages direct upload: the upload JWT and the `/pages/assets/*` endpoints.
//!
//! The 2024 OpenAPI document lacks these; shapes follow wrangler (pages/upload.ts) as summarised
//! in the project's Cloudflare reference notes:
//! - `GET .../upload-token` → `{jwt}` (claims `exp`, `max_file_count_allowed`);
//! - `POST /pages/assets/check-missing` `{hashes}` → `string[]` of hashes not stored;
//! - `POST /pages/assets/upload` `[{key, value, metadata: {contentType}, base64}]`;
//! - `POST /pages/assets/upsert-hashes` `{hashes}`.
//!
//! All three asset calls are authorised by the JWT, not the API token.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use base64::Engine;
use chrono::Utc;
use serde::Deserialize;
use serde_json::{Value, json};

use super::auth::{UploadClaims, bearer, fingerprint};
use super::envelope::{ApiError, codes, ok, parse_json};
use super::pages::find_project;
use super::state::AssetMeta;
use super::{CloudflareSim, MAX_ASSET_SIZE, MAX_UPLOAD_BYTES, MAX_UPLOAD_FILES};

type Sim = State<Arc<CloudflareSim>>;

/// Asset keys are 32 lower-case hex characters (wrangler's truncated BLAKE3). Anything else is
/// refused, which also keeps keys safe as file names in the on-disk store.
fn valid_key(key: &str) -> bool {
    key.len() == 32 && key.bytes().all(|b| b.is_ascii_hexdigit())
}

pub async fn upload_token(
    State(sim): Sim,
    Path((account_id, name)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    // Needs Pages edit rights (users with narrower tokens see 403 code 10000 here).
    sim.authorize_account(&headers, &account_id, true)?;
    let project_id = find_project(&sim.lock(), &account_id, &name)?.id.clone();
    let now = Utc::now().timestamp();
    let lifetime = i64::try_from(sim.config.jwt_expiry.as_secs()).unwrap_or(i64::MAX / 2);
    let claims = UploadClaims {
        sub: project_id,
        account_id,
        project_name: name,
        max_file_count_allowed: sim.config.max_file_count_allowed,
        iat: now,
        exp: now.saturating_add(lifetime),
        tkf: bearer(&headers).map(fingerprint).unwrap_or_default(),
    };
    let jwt = sim.jwt.issue(&claims)?;
    sim.stats.bump(|s| s.upload_tokens_issued += 1);
    Ok(ok(json!({ "jwt": jwt })))
}

#[derive(Deserialize)]
struct Hashes {
    hashes: Vec<String>,
}

impl CloudflareSim {
    fn jwt_or_count(&self, headers: &HeaderMap) -> Result<UploadClaims, ApiError> {
        self.authenticate_jwt(headers).inspect_err(|e| {
            if e.message == "Expired JWT" {
                self.stats.bump(|s| s.expired_jwt_rejections += 1);
            }
        })
    }

    /// The upload JWT checked, then the `{"hashes": [...]}` body of check-missing and upsert.
    fn hashes_request(
        &self,
        headers: &HeaderMap,
        body: &super::envelope::Body,
    ) -> Result<Hashes, ApiError> {
        self.jwt_or_count(headers)?;
        parse_json(body, codes::PAGES_BAD_REQUEST)
    }
}

pub async fn check_missing(
    State(sim): Sim,
    headers: HeaderMap,
    body: super::envelope::Body,
) -> Result<Response, ApiError> {
    let body = sim.hashes_request(&headers, &body)?;
    let missing: Vec<String> = {
        let state = sim.lock();
        let mut seen = std::collections::HashSet::new();
        body.hashes
            .iter()
            .filter(|h| seen.insert(h.as_str()))
            .filter(|h| !state.assets.contains_key(h.as_str()))
            .cloned()
            .collect()
    };
    let (checked, missing_count) = (body.hashes.len() as u64, missing.len() as u64);
    sim.stats.bump(|s| {
        s.check_missing_calls += 1;
        s.hashes_checked += checked;
        s.hashes_missing += missing_count;
    });
    Ok(ok(json!(missing)))
}

#[derive(Deserialize)]
struct UploadItem {
    key: String,
    value: String,
    #[serde(default)]
    metadata: Option<Value>,
    #[serde(default)]
    base64: bool,
}

/// One file of an upload request, decoded.
struct DecodedAsset {
    key: String,
    content_type: String,
    content: Vec<u8>,
}

/// An upload request's files as bytes with their content type, checked against the per-file
/// and per-request limits; also the request's total size.
fn decode_items(items: Vec<UploadItem>) -> Result<(Vec<DecodedAsset>, u64), ApiError> {
    let mut decoded = Vec::with_capacity(items.len());
    let mut total: u64 = 0;
    for item in items {
        if !valid_key(&item.key) {
            return Err(ApiError::pages_bad_request(format!(
                "Invalid asset key {:?}: expected 32 hex characters.",
                item.key
            )));
        }
        let content = if item.base64 {
            base64::engine::general_purpose::STANDARD
                .decode(item.value.as_bytes())
                .map_err(|_| {
                    ApiError::pages_bad_request(format!("Asset {} is not valid base64.", item.key))
                })?
        } else {
            item.value.into_bytes()
        };
        let size = content.len() as u64;
        if size > MAX_ASSET_SIZE {
            return Err(too_large(format!(
                "Asset {} is {size} bytes; the maximum file size is 25 MiB ({MAX_ASSET_SIZE} bytes).",
                item.key
            )));
        }
        total += size;
        if total > MAX_UPLOAD_BYTES {
            return Err(too_large(format!(
                "An upload request may hold at most {MAX_UPLOAD_BYTES} bytes of files."
            )));
        }
        let content_type = item
            .metadata
            .as_ref()
            .and_then(|m| m.get("contentType"))
            .and_then(Value::as_str)
            .unwrap_or("application/octet-stream")
            .to_owned();
        decoded.push(DecodedAsset {
            key: item.key,
            content_type,
            content,
        });
    }
    Ok((decoded, total))
}

pub async fn upload(
    State(sim): Sim,
    headers: HeaderMap,
    body: super::envelope::Body,
) -> Result<Response, ApiError> {
    sim.jwt_or_count(&headers)?;
    let items: Vec<UploadItem> = parse_json(&body, codes::PAGES_BAD_REQUEST)?;
    drop(body);
    if items.len() > MAX_UPLOAD_FILES {
        return Err(too_large(format!(
            "An upload request may hold at most {MAX_UPLOAD_FILES} files; got {}.",
            items.len()
        )));
    }
    let (decoded, total) = decode_items(items)?;
    let files = decoded.len() as u64;
    // Bytes first, index second: a key in the index always has its content. Writing up to
    // 50 MiB of files is blocking I/O: keep it off the async workers.
    let mut sizes = Vec::with_capacity(decoded.len());
    let mut blobs = Vec::with_capacity(decoded.len());
    for DecodedAsset {
        key,
        content_type,
        content,
    } in decoded
    {
        sizes.push((key.clone(), content_type, content.len() as u64));
        blobs.push((key, axum::body::Bytes::from(content)));
    }
    let writer = sim.clone();
    tokio::task::spawn_blocking(move || {
        blobs
            .into_iter()
            .try_for_each(|(key, content)| writer.blobs.put(&key, content))
    })
    .await
    .map_err(std::io::Error::other)
    .and_then(|written| written)
    .map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            codes::PAGES_UNKNOWN,
            format!("could not store asset: {e}"),
        )
    })?;
    let now = Utc::now();
    sim.mutate(|state| {
        for (key, content_type, size) in &sizes {
            let upserted = state.assets.get(key).is_some_and(|a| a.upserted);
            state.assets.insert(
                key.clone(),
                AssetMeta {
                    content_type: content_type.clone(),
                    size: *size,
                    uploaded_on: now,
                    upserted,
                },
            );
        }
        Ok(())
    })?;
    sim.stats.bump(|s| {
        s.upload_requests += 1;
        s.asset_files_uploaded += files;
        s.asset_bytes_uploaded += total;
    });
    Ok(ok(
        json!({ "successful_key_count": files, "unsuccessful_keys": [] }),
    ))
}

fn too_large(message: String) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        codes::PAGES_ASSET_TOO_LARGE,
        message,
    )
}

pub async fn upsert_hashes(
    State(sim): Sim,
    headers: HeaderMap,
    body: super::envelope::Body,
) -> Result<Response, ApiError> {
    let body = sim.hashes_request(&headers, &body)?;
    let count = body.hashes.len() as u64;
    sim.mutate(|state| {
        // Unknown hashes are ignored: the call only refreshes what check-missing will report.
        for h in &body.hashes {
            if let Some(asset) = state.assets.get_mut(h) {
                asset.upserted = true;
            }
        }
        Ok(())
    })?;
    sim.stats.bump(|s| {
        s.upsert_calls += 1;
        s.hashes_upserted += count;
    });
    Ok(ok(Value::Null))
}
