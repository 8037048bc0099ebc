//! The Cloudflare v4 response envelope and the simulator's typed API errors.
//!
//! Every response of the v4 API, success or failure, is
//! `{success, errors: [{code, message}], messages, result, result_info?}` (OpenAPI
//! `api-response-common` / `api-response-common-failure`). Clients (wrangler, intelli) read
//! `errors[0].code` to decide what to do (e.g. wrangler refreshes its upload JWT on 8000013 and
//! retries a deployment only on 8000000), so the codes below matter as much as the statuses.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// Error codes the simulator returns. Each is marked with where it comes from: "verified" codes
/// are quoted by wrangler's sources or by users' reports of real API responses; the others are
/// the simulator's choice where no public source names the vendor's code (clients must only
/// rely on the HTTP status for those).
pub mod codes {
    /// 401/403 "Authentication error" — verified (users' reports, e.g. pages-action#112).
    pub const AUTH: u32 = 10000;
    /// 429 global API rate limit — simulator's choice. Users report code 971 with the message
    /// below, but the OpenAPI document requires error codes >= 1000, and the spec wins; clients
    /// must key on the HTTP status (429) and `Retry-After` anyway.
    pub const RATE_LIMITED: u32 = 10429;
    /// "No route for the URI." — verified (the 2024 OpenAPI failure example).
    pub const NO_ROUTE: u32 = 7003;
    /// Pages "unknown error" — verified (wrangler pages/errors.ts `UNKNOWN_ERROR`).
    pub const PAGES_UNKNOWN: u32 = 8000000;
    /// Pages project name already used in the account — simulator's choice.
    pub const PAGES_PROJECT_EXISTS: u32 = 8000002;
    /// Pages project not found — verified (wrangler pages/deploy.ts).
    pub const PAGES_PROJECT_NOT_FOUND: u32 = 8000007;
    /// Account's Pages project limit reached — simulator's choice.
    pub const PAGES_PROJECT_LIMIT: u32 = 8000027;
    /// Project's custom domain limit reached — simulator's choice.
    pub const PAGES_DOMAIN_LIMIT: u32 = 8000030;
    /// Pages deployment not found — simulator's choice.
    pub const PAGES_DEPLOYMENT_NOT_FOUND: u32 = 8000009;
    /// Pages request body invalid (bad name, missing field, bad manifest) — simulator's choice.
    pub const PAGES_BAD_REQUEST: u32 = 8000011;
    /// Upload JWT expired or invalid — verified (wrangler pages/errors.ts `UNAUTHORIZED`).
    pub const PAGES_JWT: u32 = 8000013;
    /// Custom domain not found on the project — simulator's choice.
    pub const PAGES_DOMAIN_NOT_FOUND: u32 = 8000015;
    /// Custom domain already added (to this or another project) — simulator's choice.
    pub const PAGES_DOMAIN_EXISTS: u32 = 8000018;
    /// Deleting the live production deployment — simulator's choice.
    pub const PAGES_DEPLOYMENT_LIVE: u32 = 8000034;
    /// Deleting a branch's aliased (newest) deployment without `force=true` — simulator's choice.
    pub const PAGES_DEPLOYMENT_ALIASED: u32 = 8000035;
    /// Manifest names a file that was never uploaded — simulator's choice.
    pub const PAGES_MISSING_ASSETS: u32 = 8000096;
    /// Asset over 25 MiB or an upload batch over the limits — simulator's choice.
    pub const PAGES_ASSET_TOO_LARGE: u32 = 8000097;
    /// DNS request body invalid — "Request body is invalid." (DNS API family code).
    pub const DNS_BAD_REQUEST: u32 = 9207;
    /// DNS record not found — "Record does not exist." (DNS API family code).
    pub const DNS_RECORD_NOT_FOUND: u32 = 81044;
    /// A CNAME conflicts with another record of the same name (DNS API family code).
    pub const DNS_CNAME_CONFLICT: u32 = 81053;
    /// An identical record already exists (DNS API family code).
    pub const DNS_RECORD_EXISTS: u32 = 81057;
}

/// A failed API call: HTTP status plus the v4 error code and message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status} [code {code}] {message}")]
pub struct ApiError {
    pub status: StatusCode,
    pub code: u32,
    pub message: String,
    /// Seconds for a `Retry-After` header (rate limiting only).
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: u32, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    pub fn unauthenticated() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            codes::AUTH,
            "Authentication error",
        )
    }

    pub fn forbidden() -> Self {
        Self::new(StatusCode::FORBIDDEN, codes::AUTH, "Authentication error")
    }

    pub fn no_route() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            codes::NO_ROUTE,
            "No route for the URI.",
        )
    }

    pub fn project_not_found() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            codes::PAGES_PROJECT_NOT_FOUND,
            "Project not found. The specified project name does not match any of your existing projects.",
        )
    }

    pub fn pages_bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, codes::PAGES_BAD_REQUEST, message)
    }

    pub fn dns_bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, codes::DNS_BAD_REQUEST, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({
            "success": false,
            "errors": [{"code": self.code, "message": self.message}],
            "messages": [],
            "result": null,
        });
        let mut response = (self.status, Json(body)).into_response();
        if let Some(seconds) = self.retry_after
            && let Ok(value) = HeaderValue::from_str(&seconds.to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        response
    }
}

/// `result_info` of a page-paginated list.
#[derive(Debug, Clone, Copy)]
pub struct Page {
    pub page: usize,
    pub per_page: usize,
}

impl Page {
    /// Reads `page` / `per_page` from the query, clamping `per_page` into `[min, max]` like the
    /// API does rather than failing (a client asking for too much just gets pages).
    pub fn from_query(
        query: &std::collections::HashMap<String, String>,
        default: usize,
        min: usize,
        max: usize,
    ) -> Self {
        let page = query
            .get("page")
            .and_then(|v| v.parse::<f64>().ok())
            .map(|v| v.max(1.0) as usize)
            .unwrap_or(1);
        let per_page = query
            .get("per_page")
            .and_then(|v| v.parse::<f64>().ok())
            .map(|v| (v as usize).clamp(min, max))
            .unwrap_or(default);
        Page { page, per_page }
    }

    /// Cuts one page out of `items` and returns it with its `result_info`.
    pub fn slice<T: Clone>(&self, items: &[T]) -> (Vec<T>, Value) {
        let total = items.len();
        let start = (self.page - 1).saturating_mul(self.per_page).min(total);
        let end = start.saturating_add(self.per_page).min(total);
        let page_items = items[start..end].to_vec();
        let total_pages = total.div_ceil(self.per_page.max(1));
        let info = json!({
            "page": self.page,
            "per_page": self.per_page,
            "count": page_items.len(),
            "total_count": total,
            "total_pages": total_pages,
        });
        (page_items, info)
    }

    /// The list answer for `items` already sorted ascending: reversed when the query asks for
    /// `direction=desc`, cut to this page and rendered with `to_json`.
    pub fn respond<T: Clone>(
        &self,
        query: &std::collections::HashMap<String, String>,
        mut items: Vec<T>,
        to_json: impl Fn(T) -> Value,
    ) -> Response {
        if query.get("direction").map(String::as_str) == Some("desc") {
            items.reverse();
        }
        let (items, info) = self.slice(&items);
        ok_list(items.into_iter().map(to_json).collect(), info)
    }
}

/// A successful envelope around `result`.
pub fn ok(result: Value) -> Response {
    Json(json!({
        "success": true,
        "errors": [],
        "messages": [],
        "result": result,
    }))
    .into_response()
}

/// A successful envelope around a list with its `result_info`.
pub fn ok_list(result: Vec<Value>, result_info: Value) -> Response {
    Json(json!({
        "success": true,
        "errors": [],
        "messages": [],
        "result": result,
        "result_info": result_info,
    }))
    .into_response()
}

/// A request body as handlers take it: the rejection (body over the limit, broken stream) is
/// kept so it can be answered in the v4 envelope rather than axum's plain text.
pub type Body = Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>;

/// Parses a JSON request body, turning a syntax error into a v4 error with `code`.
pub fn parse_json<T: serde::de::DeserializeOwned>(body: &Body, code: u32) -> Result<T, ApiError> {
    let body = body.as_ref().map_err(|rejection| {
        let status = rejection.status();
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            let code = if code == codes::PAGES_BAD_REQUEST {
                codes::PAGES_ASSET_TOO_LARGE
            } else {
                code
            };
            return ApiError::new(status, code, "Request body too large.");
        }
        ApiError::new(
            status,
            code,
            format!("Could not read the request body: {rejection}"),
        )
    })?;
    serde_json::from_slice(body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            code,
            format!("Request body is invalid: {e}"),
        )
    })
}

/// Query string → map (last value wins), without axum's plain-text rejection.
pub fn query_map(raw: Option<&str>) -> std::collections::HashMap<String, String> {
    url::form_urlencoded::parse(raw.unwrap_or("").as_bytes())
        .into_owned()
        .collect()
}
