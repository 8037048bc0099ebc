//! The per-project Storage API (`{project_url}/storage/v1`), where buckets are created and
//! updated (the Management API can only list them).
//!
//! There is no published OpenAPI document for it; shapes follow the supabase/storage server
//! routes as summarised in reference/supabase-api.md §5. Its errors are
//! `{statusCode, code, error, message}` with HTTP 400 for every 4xx, which the shared layer
//! unwraps (a duplicate is [`ErrorKind::AlreadyExists`], a missing bucket
//! [`ErrorKind::NotFound`]).

use reqwest::Method;
use reqwest::header::HeaderName;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Value, json};
use url::Url;

use crate::http::{Error, ErrorKind, HttpClient, Repeat, Request, endpoint};

/// A bucket's settings (what we create, update and compare).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bucket {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub public: bool,
    /// Bytes; `None` means the project's global limit.
    #[serde(default, deserialize_with = "size_limit")]
    pub file_size_limit: Option<u64>,
    /// `None` allows every type. The server may answer `[]` for "none set".
    #[serde(default)]
    pub allowed_mime_types: Option<Vec<String>>,
}

impl Bucket {
    /// A bucket whose id and name are both `id` (the usual case).
    pub fn new(id: impl Into<String>) -> Bucket {
        let id = id.into();
        Bucket {
            name: id.clone(),
            id,
            public: false,
            file_size_limit: None,
            allowed_mime_types: None,
        }
    }

    /// The body of `POST /storage/v1/bucket`. Unset limits are left out (the server's default
    /// is none).
    pub fn create_body(&self) -> Value {
        let mut v = json!({ "id": self.id, "name": self.name, "public": self.public });
        if let Some(n) = self.file_size_limit {
            v["file_size_limit"] = json!(n);
        }
        if let Some(m) = &self.allowed_mime_types {
            v["allowed_mime_types"] = json!(m);
        }
        v
    }

    /// The body of `PUT /storage/v1/bucket/{id}`: every setting, absolute, with `null`
    /// clearing a limit, so the call is idempotent and converges whatever was there.
    pub fn update_body(&self) -> Value {
        json!({
            "public": self.public,
            "file_size_limit": self.file_size_limit,
            "allowed_mime_types": self.allowed_mime_types,
        })
    }
}

/// The server accepts (and may return) the limit as an integer or as a string of digits.
fn size_limit<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_u64()
            .map(Some)
            .ok_or_else(|| serde::de::Error::custom("file_size_limit is not a byte count")),
        Some(Value::String(s)) => s
            .trim()
            .parse::<u64>()
            .map(Some)
            .map_err(|_| serde::de::Error::custom("file_size_limit is not a byte count")),
        Some(_) => Err(serde::de::Error::custom(
            "file_size_limit is not a byte count",
        )),
    }
}

/// Storage API of one project, authenticated with its service-role key.
#[derive(Clone)]
pub struct StorageClient {
    http: HttpClient,
    base: Url,
    project_ref: String,
    key: SecretString,
}

impl StorageClient {
    pub(crate) fn new(
        http: HttpClient,
        base: Url,
        project_ref: &str,
        key: SecretString,
    ) -> StorageClient {
        StorageClient {
            http,
            base,
            project_ref: project_ref.to_owned(),
            key,
        }
    }

    /// `{project_url}/storage/v1`.
    pub fn base_url(&self) -> &Url {
        &self.base
    }

    fn request(
        &self,
        method: Method,
        segments: &[&str],
        template: &'static str,
    ) -> Result<Request, Error> {
        let url = endpoint(&self.base, segments)?;
        let req = Request::new(method, url, template)
            .scope(format!("project:{}", self.project_ref))
            .secret_header(HeaderName::from_static("apikey"), &self.key);
        // New-style `sb_secret_…` keys are not JWTs: the vendor's CLI sends them only as
        // `apikey`. Legacy JWT keys go in both headers (the JWT check reads `Authorization`).
        Ok(if self.key.expose_secret().starts_with("sb_") {
            req
        } else {
            req.bearer(&self.key)
        })
    }

    /// `GET /storage/v1/bucket/{id}`; a missing bucket is `None`.
    pub async fn get_bucket(&self, id: &str) -> Result<Option<Bucket>, Error> {
        let req = self.request(Method::GET, &["bucket", id], "/storage/v1/bucket/{id}")?;
        match self.http.send(req).await {
            Ok(resp) => resp.json().map(Some),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `GET /storage/v1/bucket`: every bucket with its settings.
    pub async fn list_buckets(&self) -> Result<Vec<Bucket>, Error> {
        let req = self.request(Method::GET, &["bucket"], "/storage/v1/bucket")?;
        self.http.send(req).await?.json()
    }

    /// `POST /storage/v1/bucket`. An existing id is [`ErrorKind::AlreadyExists`].
    ///
    /// [`Repeat::Idempotent`], so re-sent on 5xx and lost answers: a bucket is named by its id,
    /// so a repeat can never make a second one, only answer "Duplicate" (which, after a retry,
    /// the caller should read as "exists now" and follow with [`StorageClient::update_bucket`]).
    pub async fn create_bucket(&self, bucket: &Bucket) -> Result<(), Error> {
        let req = self
            .request(Method::POST, &["bucket"], "/storage/v1/bucket")?
            .repeat(Repeat::Idempotent)
            .json(&bucket.create_body());
        self.http.send(req).await.map(drop)
    }

    /// `PUT /storage/v1/bucket/{id}` with every setting (idempotent). The id and name cannot
    /// change.
    pub async fn update_bucket(&self, bucket: &Bucket) -> Result<(), Error> {
        let req = self
            .request(
                Method::PUT,
                &["bucket", &bucket.id],
                "/storage/v1/bucket/{id}",
            )?
            .json(&bucket.update_body());
        self.http.send(req).await.map(drop)
    }

    /// Create the bucket, or bring an existing one to these settings.
    pub async fn upsert_bucket(&self, bucket: &Bucket) -> Result<(), Error> {
        match self.create_bucket(bucket).await {
            Err(e) if e.kind() == ErrorKind::AlreadyExists => self.update_bucket(bucket).await,
            other => other,
        }
    }
}
