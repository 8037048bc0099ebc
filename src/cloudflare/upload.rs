//! Pages direct upload, the way wrangler does it (reference/cloudflare-api.md §1–2):
//! upload JWT → walk and hash → `check-missing` → batched `upload` (3 at a time) →
//! `upsert-hashes` → multipart `deployments` with the manifest → wait until live.
//!
//! Memory does not grow with the site: a file is read (streamed) once to hash it and again
//! when its batch is sent; at most `concurrency` batches (≤ 40 MiB of files each) are in
//! memory at once, as in wrangler.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use futures::{StreamExt, TryStreamExt};
use reqwest::Method;
use secrecy::SecretString;
use serde::Deserialize;

use super::types::{DeployMeta, DeployOutcome, Deployment, UploadTokenResult};
use super::{CloudflareClient, codes, has_code};
use crate::http::{Body, Error, ErrorKind, Policy, Repeat, Request};

/// Largest file Pages accepts (wrangler `MAX_ASSET_SIZE`): 25 MiB.
pub const MAX_ASSET_SIZE: u64 = 25 * 1024 * 1024;
/// Raw bytes per upload request (wrangler `MAX_BUCKET_SIZE`; a stale comment there says 50).
pub const MAX_BUCKET_SIZE: u64 = 40 * 1024 * 1024;
/// Files per upload request (wrangler `MAX_BUCKET_FILE_COUNT`, non-Windows).
pub const MAX_BUCKET_FILE_COUNT: usize = 2000;
/// Upload requests in flight (wrangler `BULK_UPLOAD_CONCURRENCY`).
pub const BULK_UPLOAD_CONCURRENCY: usize = 3;
/// Files per deployment when the JWT has no `max_file_count_allowed` claim.
pub const MAX_ASSET_COUNT_DEFAULT: u64 = 20_000;
/// wrangler truncates the commit message to this many UTF-8 bytes.
pub const MAX_COMMIT_MESSAGE_BYTES: usize = 384;

/// Direct-upload limits; defaults are wrangler's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UploadLimits {
    pub max_file_size: u64,
    pub max_bucket_bytes: u64,
    pub max_bucket_files: usize,
    pub concurrency: usize,
    pub default_max_file_count: u64,
}

impl Default for UploadLimits {
    fn default() -> Self {
        UploadLimits {
            max_file_size: MAX_ASSET_SIZE,
            max_bucket_bytes: MAX_BUCKET_SIZE,
            max_bucket_files: MAX_BUCKET_FILE_COUNT,
            concurrency: BULK_UPLOAD_CONCURRENCY,
            default_max_file_count: MAX_ASSET_COUNT_DEFAULT,
        }
    }
}

/// Why a deploy failed.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    /// A Cloudflare call failed (after the HTTP layer's retries).
    #[error(transparent)]
    Api(#[from] Error),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{0} is not a directory")]
    NotADirectory(PathBuf),
    #[error("{path}: the file name is not valid UTF-8, which a Pages manifest cannot hold")]
    BadFileName { path: PathBuf },
    /// Refused before anything was uploaded.
    #[error(
        "{path} is {size} bytes; Cloudflare Pages accepts files of at most {max} bytes (25 MiB)"
    )]
    FileTooLarge { path: String, size: u64, max: u64 },
    /// Refused before anything was uploaded.
    #[error(
        "the site has {count} files; this Pages project accepts at most {max} per deployment (max_file_count_allowed of the upload token)"
    )]
    TooManyFiles { count: usize, max: u64 },
    #[error("{path} changed while it was being deployed; build again and redeploy")]
    FileChanged { path: String },
    #[error("deployment {id} failed at stage {stage} ({status}){}", log.as_deref().map(|l| format!(": {l}")).unwrap_or_default())]
    Failed {
        id: String,
        stage: String,
        status: String,
        /// The last lines of the deployment log, when they could be read.
        log: Option<String>,
    },
    #[error("deployment {id} was not live after {waited:?} (latest stage: {stage})")]
    Timeout {
        id: String,
        stage: String,
        waited: Duration,
    },
    #[error("deployment {id} disappeared while waiting for it to go live")]
    Vanished { id: String },
}

impl DeployError {
    /// What the caller should do (see [`Policy`]).
    pub fn policy(&self) -> Policy {
        match self {
            DeployError::Api(e) => e.policy(),
            DeployError::Timeout { .. } | DeployError::FileChanged { .. } => Policy::Retry,
            DeployError::Io { .. }
            | DeployError::NotADirectory(_)
            | DeployError::BadFileName { .. }
            | DeployError::FileTooLarge { .. }
            | DeployError::TooManyFiles { .. } => Policy::AskUser,
            DeployError::Failed { .. } | DeployError::Vanished { .. } => Policy::GiveUp,
        }
    }

    /// How long Cloudflare asked to wait (a deferred 429: [`Policy::Park`]), when it said.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            DeployError::Api(e) => e.retry_after(),
            DeployError::Io { .. }
            | DeployError::NotADirectory(_)
            | DeployError::BadFileName { .. }
            | DeployError::FileTooLarge { .. }
            | DeployError::TooManyFiles { .. }
            | DeployError::FileChanged { .. }
            | DeployError::Failed { .. }
            | DeployError::Timeout { .. }
            | DeployError::Vanished { .. } => None,
        }
    }
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> DeployError + '_ {
    move |source| DeployError::Io {
        path: path.to_owned(),
        source,
    }
}

// ------------------------------------------------------------------------------------------
// Asset keys

/// wrangler's asset key: the first 32 hex characters of BLAKE3(base64(content) ++ extension),
/// extension without its dot (`""` when there is none).
pub fn asset_key(content: &[u8], extension: &str) -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(content);
    let mut hasher = blake3::Hasher::new();
    hasher.update(encoded.as_bytes());
    hasher.update(extension.as_bytes());
    key_hex(&hasher)
}

fn key_hex(hasher: &blake3::Hasher) -> String {
    let hash = hasher.finalize();
    hex::encode(&hash.as_bytes()[..16])
}

/// The extension as Node's `path.extname` sees it, without the dot: only the last one
/// (`a.tar.gz` → `gz`), none for dotfiles (`.htaccess` → ``).
pub(crate) fn node_extension(path: &Path) -> String {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    match name.rfind('.') {
        Some(0) | None => String::new(),
        Some(i) => name[i + 1..].to_owned(),
    }
}

/// Bytes read per step when streaming: a multiple of 3, so the base64 of each chunk
/// concatenates to the base64 of the whole file.
const CHUNK: usize = 3 * 64 * 1024;

/// Read until `buf` is full or the file ends.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Stream a file through base64 → BLAKE3, calling `sink` with each base64 piece (for the
/// upload body). Returns the key and the size.
fn stream_file(path: &Path, mut sink: impl FnMut(&[u8])) -> io::Result<(String, u64)> {
    let mut file = File::open(path)?;
    let mut hasher = blake3::Hasher::new();
    let mut buf = vec![0u8; CHUNK];
    let mut encoded = vec![0u8; CHUNK / 3 * 4];
    let mut size: u64 = 0;
    loop {
        let n = read_full(&mut file, &mut buf)?;
        if n == 0 {
            break;
        }
        size += n as u64;
        let m = base64::engine::general_purpose::STANDARD
            .encode_slice(&buf[..n], &mut encoded)
            .map_err(io::Error::other)?;
        hasher.update(&encoded[..m]);
        sink(&encoded[..m]);
        if n < buf.len() {
            break;
        }
    }
    hasher.update(node_extension(path).as_bytes());
    Ok((key_hex(&hasher), size))
}

/// The asset key of a file on disk, streamed (memory does not grow with the file).
pub fn asset_key_of_file(path: &Path) -> io::Result<String> {
    stream_file(path, |_| {}).map(|(key, _)| key)
}

// ------------------------------------------------------------------------------------------
// Walking the site

/// One file of the site.
#[derive(Clone, Debug)]
struct SiteFile {
    /// Relative path with `/` separators, no leading slash.
    rel: String,
    abs: PathBuf,
    size: u64,
}

/// wrangler's ignore list, matched against the path relative to the root: these names only
/// at the root…
const IGNORED_AT_ROOT: &[&str] = &[
    "_worker.js",
    "_redirects",
    "_headers",
    "_routes.json",
    "functions",
    ".wrangler",
];
/// …and these at any depth (`**/name`).
const IGNORED_ANYWHERE: &[&str] = &[".DS_Store", "node_modules", ".git"];

fn ignored(rel: &str) -> bool {
    let name = rel.rsplit('/').next().unwrap_or(rel);
    IGNORED_ANYWHERE.contains(&name) || (!rel.contains('/') && IGNORED_AT_ROOT.contains(&rel))
}

/// Every file under `root` (links followed, like wrangler's `stat`), sorted by path. Files
/// over the size limit are refused here, before anything is sent.
fn walk(root: &Path, max_file_size: u64) -> Result<Vec<SiteFile>, DeployError> {
    let meta = std::fs::metadata(root).map_err(io_error(root))?;
    if !meta.is_dir() {
        return Err(DeployError::NotADirectory(root.to_owned()));
    }
    let mut out = Vec::new();
    // Directories already entered (canonical paths): a symlink loop must not recurse forever.
    let mut entered = HashSet::new();
    let mut stack = vec![(root.to_owned(), String::new())];
    while let Some((dir, prefix)) = stack.pop() {
        let canonical = std::fs::canonicalize(&dir).map_err(io_error(&dir))?;
        if !entered.insert(canonical) {
            continue;
        }
        for entry in std::fs::read_dir(&dir).map_err(io_error(&dir))? {
            let entry = entry.map_err(io_error(&dir))?;
            let abs = entry.path();
            let name = entry
                .file_name()
                .into_string()
                .map_err(|_| DeployError::BadFileName { path: abs.clone() })?;
            let rel = if prefix.is_empty() {
                name
            } else {
                format!("{prefix}/{name}")
            };
            if ignored(&rel) {
                continue;
            }
            let meta = std::fs::metadata(&abs).map_err(io_error(&abs))?;
            if meta.is_dir() {
                stack.push((abs, rel));
            } else if meta.is_file() {
                if meta.len() > max_file_size {
                    return Err(DeployError::FileTooLarge {
                        path: rel,
                        size: meta.len(),
                        max: max_file_size,
                    });
                }
                out.push(SiteFile {
                    rel,
                    abs,
                    size: meta.len(),
                });
            }
        }
    }
    out.sort_by(|a, b| a.rel.cmp(&b.rel));
    Ok(out)
}

// ------------------------------------------------------------------------------------------
// Hashing

#[derive(Clone, Debug)]
struct HashedFile {
    file: SiteFile,
    key: String,
    content_type: String,
}

/// Hash every file, a few at a time on the blocking pool (CPU and disk bound).
async fn hash_all(files: Vec<SiteFile>) -> Result<Vec<HashedFile>, DeployError> {
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .clamp(1, 8);
    futures::stream::iter(files)
        .map(|file| async move {
            tokio::task::spawn_blocking(move || {
                let (key, size) = stream_file(&file.abs, |_| {}).map_err(io_error(&file.abs))?;
                if size != file.size {
                    return Err(DeployError::FileChanged { path: file.rel });
                }
                let content_type = mime_guess::from_path(&file.rel)
                    .first_raw()
                    .unwrap_or("application/octet-stream")
                    .to_owned();
                Ok(HashedFile {
                    file,
                    key,
                    content_type,
                })
            })
            .await
            .map_err(|e| DeployError::Io {
                path: PathBuf::new(),
                source: io::Error::other(e),
            })?
        })
        .buffered(workers)
        .try_collect()
        .await
}

// ------------------------------------------------------------------------------------------
// Batches

/// wrangler's bin packing: largest files first, each into the first of the open buckets
/// (starting at a rotating offset, so the first three requests are of similar size) that
/// has room, else a new bucket.
fn buckets(mut files: Vec<HashedFile>, limits: &UploadLimits) -> Vec<Vec<HashedFile>> {
    files.sort_by_key(|f| std::cmp::Reverse(f.file.size));
    let mut buckets: Vec<(u64, Vec<HashedFile>)> = (0..limits.concurrency.max(1))
        .map(|_| (0, Vec::new()))
        .collect();
    for (offset, f) in files.into_iter().enumerate() {
        let n = buckets.len();
        let slot = (0..n).map(|i| (i + offset) % n).find(|&i| {
            buckets[i].0 + f.file.size <= limits.max_bucket_bytes
                && buckets[i].1.len() < limits.max_bucket_files
        });
        match slot {
            Some(i) => {
                buckets[i].0 += f.file.size;
                buckets[i].1.push(f);
            }
            None => buckets.push((f.file.size, vec![f])),
        }
    }
    buckets
        .into_iter()
        .map(|(_, b)| b)
        .filter(|b| !b.is_empty())
        .collect()
}

/// The JSON body of one upload request, written straight from disk:
/// `[{"key", "value": <base64>, "metadata": {"contentType"}, "base64": true}, …]`.
/// Each file's key is recomputed while encoding: a file that changed since it was hashed
/// would otherwise be stored under the wrong key.
fn batch_body(files: &[HashedFile]) -> Result<Vec<u8>, DeployError> {
    let estimate: u64 = files
        .iter()
        .map(|f| f.file.size.div_ceil(3) * 4 + 160)
        .sum();
    let mut body = Vec::with_capacity(usize::try_from(estimate).unwrap_or(0) + 2);
    body.push(b'[');
    for (i, f) in files.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(br#"{"key":"#);
        extend_json_string(&mut body, &f.key);
        body.extend_from_slice(br#","value":""#);
        // base64 needs no JSON escaping.
        let (key, size) = stream_file(&f.file.abs, |piece| body.extend_from_slice(piece))
            .map_err(io_error(&f.file.abs))?;
        if key != f.key || size != f.file.size {
            return Err(DeployError::FileChanged {
                path: f.file.rel.clone(),
            });
        }
        body.extend_from_slice(br#"","metadata":{"contentType":"#);
        extend_json_string(&mut body, &f.content_type);
        body.extend_from_slice(br#"},"base64":true}"#);
    }
    body.push(b']');
    Ok(body)
}

fn extend_json_string(out: &mut Vec<u8>, s: &str) {
    // Serialising a &str cannot fail; the fallback keeps the body valid JSON regardless.
    match serde_json::to_vec(s) {
        Ok(v) => out.extend_from_slice(&v),
        Err(_) => out.extend_from_slice(b"\"\""),
    }
}

// ------------------------------------------------------------------------------------------
// The upload JWT

/// Claims wrangler reads (without verifying the signature).
#[derive(Deserialize, Default)]
struct Claims {
    #[serde(default)]
    exp: Option<i64>,
    #[serde(default)]
    max_file_count_allowed: Option<u64>,
}

fn decode_claims(jwt: &str) -> Claims {
    let payload = jwt.split('.').nth(1).unwrap_or("");
    let payload = payload.trim_end_matches('=');
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default()
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// A Pages upload token (a JWT for the `/pages/assets/*` calls), with the claims wrangler
/// reads from it without verifying the signature.
#[derive(Clone, Debug)]
pub struct UploadToken {
    pub jwt: SecretString,
    /// `exp` (Unix seconds), when present.
    pub expires_at: Option<i64>,
    /// Files allowed per deployment (`None`: the claim is absent; wrangler then assumes
    /// 20,000).
    pub max_file_count_allowed: Option<u64>,
}

impl UploadToken {
    /// Expired by wrangler's rule (`exp <= now`).
    pub fn is_expired(&self) -> bool {
        self.expires_at.is_some_and(|exp| exp <= unix_now())
    }
}

impl CloudflareClient {
    /// `GET …/pages/projects/{name}/upload-token`. [`CloudflareClient::deploy_directory`]
    /// fetches and refreshes its own; this is for callers that want the limits up front.
    pub async fn get_upload_token(&self, project: &str) -> Result<UploadToken, Error> {
        let req = self.project_request(
            Method::GET,
            project,
            &["upload-token"],
            "/accounts/{account_id}/pages/projects/{project_name}/upload-token",
        )?;
        let got: UploadTokenResult = self.call(req).await?;
        let claims = decode_claims(&got.jwt);
        Ok(UploadToken {
            jwt: SecretString::from(got.jwt),
            expires_at: claims.exp,
            max_file_count_allowed: claims.max_file_count_allowed,
        })
    }
}

struct Jwt {
    value: SecretString,
    /// Bumped on every refresh, so concurrent batches that all saw the old token rejected
    /// fetch one new token, not one each.
    generation: u64,
    /// Refresh at or after this Unix time (`exp` less a margin).
    refresh_at: Option<i64>,
    max_file_count: Option<u64>,
}

/// One deploy's upload token, refreshed when it expires or is refused (8000013).
struct UploadSession<'a> {
    client: &'a CloudflareClient,
    project: &'a str,
    jwt: tokio::sync::Mutex<Jwt>,
}

impl<'a> UploadSession<'a> {
    async fn start(client: &'a CloudflareClient, project: &'a str) -> Result<Self, Error> {
        let jwt = Self::fetch(client, project, 0).await?;
        Ok(UploadSession {
            client,
            project,
            jwt: tokio::sync::Mutex::new(jwt),
        })
    }

    async fn fetch(
        client: &CloudflareClient,
        project: &str,
        generation: u64,
    ) -> Result<Jwt, Error> {
        let token = client.get_upload_token(project).await?;
        let now = unix_now();
        // Refresh a little before `exp` (a quarter of the lifetime, at most 30 s) so a batch
        // does not leave with a token that dies on the way.
        let refresh_at = token.expires_at.map(|exp| {
            let margin = ((exp - now) / 4).clamp(0, 30);
            exp - margin
        });
        Ok(Jwt {
            value: token.jwt,
            generation,
            refresh_at,
            max_file_count: token.max_file_count_allowed,
        })
    }

    async fn max_file_count(&self) -> Option<u64> {
        self.jwt.lock().await.max_file_count
    }

    /// A token that is not about to expire, and its generation.
    async fn current(&self) -> Result<(SecretString, u64), Error> {
        let mut jwt = self.jwt.lock().await;
        if jwt.refresh_at.is_some_and(|t| unix_now() >= t) {
            *jwt = Self::fetch(self.client, self.project, jwt.generation + 1).await?;
        }
        Ok((jwt.value.clone(), jwt.generation))
    }

    /// The token of `generation` was refused: get a new one unless another task already did.
    async fn refused(&self, generation: u64) -> Result<(), Error> {
        let mut jwt = self.jwt.lock().await;
        if jwt.generation == generation {
            *jwt = Self::fetch(self.client, self.project, generation + 1).await?;
        }
        Ok(())
    }

    /// Send an asset call built by `build` with the current token; on 8000013 refresh the
    /// token and send again (a refusal of the token does not count as an attempt, as in
    /// wrangler, but is bounded). Transient failures are retried by the HTTP layer (the
    /// asset calls are content-addressed, so repeating them is safe).
    async fn send<F>(&self, build: F) -> Result<crate::http::Response, DeployError>
    where
        F: AsyncFn(&SecretString) -> Result<Request, DeployError>,
    {
        const MAX_REFRESHES: u32 = 4;
        let mut refreshes = 0;
        loop {
            let (jwt, generation) = self.current().await?;
            let req = build(&jwt).await?.repeat(Repeat::Idempotent);
            match self.client.http.send(req).await {
                Err(e) if is_jwt_refusal(&e) && refreshes < MAX_REFRESHES => {
                    refreshes += 1;
                    tracing::debug!(refreshes, "upload token refused; fetching a new one");
                    self.refused(generation).await?;
                }
                Err(e) => return Err(e.into()),
                Ok(resp) => return Ok(resp),
            }
        }
    }
}

fn is_jwt_refusal(e: &Error) -> bool {
    has_code(e, codes::PAGES_JWT)
        || (e.kind() == ErrorKind::Unauthorized
            && e.message()
                .is_some_and(|m| m.to_ascii_lowercase().contains("jwt")))
}

// ------------------------------------------------------------------------------------------
// The deploy

impl CloudflareClient {
    /// Deploy the built site in `dir` to Pages project `project` with wrangler's protocol,
    /// then wait until it is live. Files Cloudflare already stores (same content and
    /// extension, in any project of the account) are not sent again.
    ///
    /// Refused before any upload: a file over 25 MiB (named), more files than the upload
    /// token's `max_file_count_allowed` (counted).
    pub async fn deploy_directory(
        &self,
        project: &str,
        dir: &Path,
        meta: DeployMeta,
    ) -> Result<DeployOutcome, DeployError> {
        let started = chrono::Utc::now();
        let limits = self.upload;
        let root = dir.to_owned();
        let files = tokio::task::spawn_blocking(move || walk(&root, limits.max_file_size))
            .await
            .map_err(|e| DeployError::Io {
                path: dir.to_owned(),
                source: io::Error::other(e),
            })??;

        let session = UploadSession::start(self, project).await?;
        let max_files = session
            .max_file_count()
            .await
            .unwrap_or(limits.default_max_file_count);
        if files.len() as u64 > max_files {
            return Err(DeployError::TooManyFiles {
                count: files.len(),
                max: max_files,
            });
        }

        let hashed = hash_all(files).await?;
        let files_total = hashed.len();
        let manifest: BTreeMap<String, String> = hashed
            .iter()
            .map(|f| (format!("/{}", f.file.rel), f.key.clone()))
            .collect();
        let mut all_keys: Vec<String> = hashed.iter().map(|f| f.key.clone()).collect();
        all_keys.sort();
        all_keys.dedup();

        let missing = self.check_missing(&session, &all_keys).await?;
        // One file per missing key: identical files share a key and are sent once.
        let mut to_send: HashMap<&str, &HashedFile> = HashMap::new();
        for f in &hashed {
            if missing.contains(f.key.as_str()) {
                to_send.entry(f.key.as_str()).or_insert(f);
            }
        }
        let to_send: Vec<HashedFile> = to_send.into_values().cloned().collect();
        let files_uploaded = to_send.len();
        let bytes_uploaded: u64 = to_send.iter().map(|f| f.file.size).sum();
        let batches = buckets(to_send, &limits);
        tracing::debug!(
            project,
            files_total,
            files_uploaded,
            batches = batches.len(),
            "uploading"
        );
        futures::stream::iter(batches)
            .map(|batch| self.upload_batch(&session, batch))
            .buffer_unordered(limits.concurrency.max(1))
            .try_collect::<Vec<()>>()
            .await?;

        let mut warnings = Vec::new();
        if let Err(e) = self.upsert_hashes(&session, &all_keys).await {
            // Only an optimisation for the next check-missing (wrangler warns too).
            tracing::warn!(error = %e, "upsert-hashes failed; the next deploy may upload files again");
            warnings.push(format!(
                "registering the uploaded files failed (the next deploy may upload them again): {e}"
            ));
        }
        drop(session);

        let headers = read_optional(&dir.join("_headers")).await?;
        let redirects = read_optional(&dir.join("_redirects")).await?;
        let deployment = self
            .create_deployment(project, &manifest, &meta, headers, redirects, started)
            .await?;
        let deployment = self.wait_live(project, deployment).await?;
        Ok(DeployOutcome {
            deployment,
            files_total,
            files_uploaded,
            bytes_uploaded,
            warnings,
        })
    }

    async fn check_missing(
        &self,
        session: &UploadSession<'_>,
        keys: &[String],
    ) -> Result<HashSet<String>, DeployError> {
        let body = serde_json::json!({ "hashes": keys });
        let resp = session
            .send(async |jwt| {
                Ok(self
                    .asset_request("check-missing", "/pages/assets/check-missing", jwt)?
                    .json(&body))
            })
            .await?;
        let env: super::types::Envelope<Vec<String>> =
            super::envelope(&resp, "POST", "/pages/assets/check-missing")?;
        Ok(env.result.unwrap_or_default().into_iter().collect())
    }

    async fn upload_batch(
        &self,
        session: &UploadSession<'_>,
        batch: Vec<HashedFile>,
    ) -> Result<(), DeployError> {
        let batch = Arc::new(batch);
        session
            .send(async |jwt| {
                // Built (read from disk) per send, so a refused token costs a re-read rather
                // than a second copy of the batch kept in memory.
                let files = batch.clone();
                let body = tokio::task::spawn_blocking(move || batch_body(&files))
                    .await
                    .map_err(|e| DeployError::Io {
                        path: PathBuf::new(),
                        source: io::Error::other(e),
                    })??;
                Ok(self
                    .asset_request("upload", "/pages/assets/upload", jwt)?
                    .body(Body::Json(body.into())))
            })
            .await?;
        Ok(())
    }

    /// `POST /pages/assets/<what>` with the upload session's JWT (asset calls do not use the
    /// API token).
    fn asset_request(
        &self,
        what: &str,
        template: &'static str,
        jwt: &SecretString,
    ) -> Result<Request, Error> {
        Ok(self
            .bare_request(Method::POST, &["pages", "assets", what], template)?
            .bearer(jwt))
    }

    async fn upsert_hashes(
        &self,
        session: &UploadSession<'_>,
        keys: &[String],
    ) -> Result<(), DeployError> {
        let body = serde_json::json!({ "hashes": keys });
        session
            .send(async |jwt| {
                Ok(self
                    .asset_request("upsert-hashes", "/pages/assets/upsert-hashes", jwt)?
                    .json(&body))
            })
            .await?;
        Ok(())
    }

    /// `POST …/deployments` (multipart). Not blindly repeated: when the outcome is unknown
    /// (or the API says 8000000, on which wrangler retries), the project's newest
    /// deployments are searched for ours (same commit hash and branch, made since the deploy
    /// started) before sending again; up to [`super::MAX_CREATE_SENDS`] sends, like the
    /// other look-before-create writes (3 sends lost 1 client in 100 under 10% 5xx).
    async fn create_deployment(
        &self,
        project: &str,
        manifest: &BTreeMap<String, String>,
        meta: &DeployMeta,
        headers: Option<Vec<u8>>,
        redirects: Option<Vec<u8>>,
        started: chrono::DateTime<chrono::Utc>,
    ) -> Result<Deployment, DeployError> {
        let manifest = serde_json::to_string(manifest).map_err(|e| DeployError::Io {
            path: PathBuf::from("manifest"),
            source: io::Error::other(e),
        })?;
        let fields = Arc::new(FormFields {
            manifest,
            branch: meta.branch.clone(),
            commit_hash: meta.commit_hash.clone(),
            commit_message: truncate_utf8(&meta.commit_message, MAX_COMMIT_MESSAGE_BYTES)
                .to_owned(),
            commit_dirty: meta.commit_dirty,
            headers,
            redirects,
        });
        let mut sends = 0;
        loop {
            sends += 1;
            let f = fields.clone();
            let req = self
                .project_request(
                    Method::POST,
                    project,
                    &["deployments"],
                    "/accounts/{account_id}/pages/projects/{project_name}/deployments",
                )?
                // A duplicate deployment is harmless but costs a build's worth of work on
                // the vendor: look at the project's latest deployments before sending again.
                .repeat(Repeat::LookBeforeCreate)
                .body(Body::Multipart(Arc::new(move || f.form())));
            let error = match self.call::<Deployment>(req).await {
                Ok(d) => return Ok(d),
                Err(e) => e,
            };
            let backoff = Duration::from_secs(1 << (sends - 1).min(4));
            let wait = if error.kind() == ErrorKind::RateLimited {
                // Refused before it was handled: safe to send again once the vendor allows,
                // if it asks for a wait we are willing to make.
                match error.retry_after() {
                    Some(asked) if asked > self.max_wait => return Err(error.into()),
                    asked => asked.unwrap_or(backoff).max(backoff),
                }
            } else if error.is_ambiguous() || has_code(&error, codes::PAGES_UNKNOWN) {
                // It may exist: look before sending again.
                if let Ok(recent) = self.recent_deployments(project).await
                    && let Some(d) = recent.into_iter().find(|d| is_ours(d, meta, started))
                {
                    return Ok(d);
                }
                backoff
            } else {
                return Err(error.into());
            };
            if sends >= super::MAX_CREATE_SENDS {
                return Err(error.into());
            }
            tracing::warn!(error = %error, sends, "creating the deployment failed; sending again");
            tokio::time::sleep(wait).await;
        }
    }

    /// Poll until the deployment's `deploy` stage succeeds; a failed stage is an error with
    /// the log's last lines.
    async fn wait_live(&self, project: &str, mut d: Deployment) -> Result<Deployment, DeployError> {
        let start = Instant::now();
        let mut delay = self.deploy_poll_interval;
        loop {
            if d.is_deployed() {
                return Ok(d);
            }
            if let Some(stage) = d.failed_stage() {
                let log = self.deployment_log_tail(project, &d.id).await;
                return Err(DeployError::Failed {
                    id: d.id.clone(),
                    stage: stage.name.to_string(),
                    status: stage.status.to_string(),
                    log,
                });
            }
            if start.elapsed() >= self.deploy_timeout {
                return Err(DeployError::Timeout {
                    stage: d
                        .latest_stage
                        .as_ref()
                        .map(|s| format!("{} {}", s.name, s.status))
                        .unwrap_or_else(|| "unknown".to_owned()),
                    id: d.id,
                    waited: start.elapsed(),
                });
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(10));
            d = self
                .get_deployment(project, &d.id)
                .await?
                .ok_or_else(|| DeployError::Vanished { id: d.id.clone() })?;
        }
    }
}

/// A deployment made by this deploy: our fingerprint and branch, created since we started
/// (with room for clock skew between us and the API).
fn is_ours(d: &Deployment, meta: &DeployMeta, started: chrono::DateTime<chrono::Utc>) -> bool {
    let m = d.metadata();
    let recent = d
        .created_on
        .as_deref()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .is_some_and(|t| t >= started - chrono::Duration::minutes(2));
    m.commit_hash.as_deref() == Some(meta.commit_hash.as_str())
        && m.branch.as_deref() == Some(meta.branch.as_str())
        && recent
}

/// The multipart fields of a deployment (kept to rebuild the form: reqwest forms are
/// single-use).
struct FormFields {
    manifest: String,
    branch: String,
    commit_hash: String,
    commit_message: String,
    commit_dirty: bool,
    headers: Option<Vec<u8>>,
    redirects: Option<Vec<u8>>,
}

impl FormFields {
    fn form(&self) -> reqwest::multipart::Form {
        use reqwest::multipart::{Form, Part};
        let mut form = Form::new().text("manifest", self.manifest.clone());
        if !self.branch.is_empty() {
            form = form.text("branch", self.branch.clone());
        }
        if !self.commit_hash.is_empty() {
            form = form.text("commit_hash", self.commit_hash.clone());
        }
        if !self.commit_message.is_empty() {
            form = form.text("commit_message", self.commit_message.clone());
        }
        form = form.text(
            "commit_dirty",
            if self.commit_dirty { "true" } else { "false" },
        );
        // Sent as files named like the originals, as wrangler does.
        if let Some(h) = &self.headers {
            form = form.part("_headers", Part::bytes(h.clone()).file_name("_headers"));
        }
        if let Some(r) = &self.redirects {
            form = form.part("_redirects", Part::bytes(r.clone()).file_name("_redirects"));
        }
        form
    }
}

fn truncate_utf8(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// A small root file (`_headers`, `_redirects`) if it exists.
async fn read_optional(path: &Path) -> Result<Option<Vec<u8>>, DeployError> {
    match tokio::fs::read(path).await {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(DeployError::Io {
            path: path.to_owned(),
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrangler_vectors() {
        assert_eq!(
            asset_key(b"foobar", "png"),
            "2082190357cfd3617ccfe04f340c6247"
        );
        assert_eq!(
            asset_key(b"foobar", "txt"),
            "1a98fb08af91aca4a7df1764a2c4ddb0"
        );
        assert_eq!(
            asset_key(b"foobar", ".png"),
            "ac7868364a5fa83cc0f7e6575990d88c"
        );
    }

    #[test]
    fn streamed_key_equals_in_memory_key() {
        let dir = tempfile::tempdir().unwrap();
        // Sizes around the chunk boundary exercise base64 padding across chunks.
        for size in [0, 1, 2, 3, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK + 2] {
            let content: Vec<u8> = (0..size).map(|i| (i * 7 % 251) as u8).collect();
            let path = dir.path().join(format!("f{size}.js"));
            std::fs::write(&path, &content).unwrap();
            assert_eq!(
                asset_key_of_file(&path).unwrap(),
                asset_key(&content, "js"),
                "size {size}"
            );
        }
    }

    #[test]
    fn extensions_like_node() {
        let ext = |p: &str| node_extension(Path::new(p));
        assert_eq!(ext("a/b.tar.gz"), "gz");
        assert_eq!(ext(".htaccess"), "");
        assert_eq!(ext("README"), "");
        assert_eq!(ext("x/.eslintrc.json"), "json");
        assert_eq!(ext("IMG.PNG"), "PNG");
    }

    #[test]
    fn ignore_rules() {
        assert!(ignored("_headers"));
        assert!(ignored("functions"));
        assert!(!ignored("sub/_headers"));
        assert!(!ignored("sub/functions"));
        assert!(ignored("a/b/node_modules"));
        assert!(ignored(".git"));
        assert!(ignored("x/.DS_Store"));
        assert!(!ignored(".well-known"));
        assert!(!ignored(".htaccess"));
    }

    fn hf(size: u64, i: usize) -> HashedFile {
        HashedFile {
            file: SiteFile {
                rel: format!("f{i}"),
                abs: PathBuf::new(),
                size,
            },
            key: format!("{i:032x}"),
            content_type: "text/plain".into(),
        }
    }

    #[test]
    fn buckets_respect_limits() {
        let limits = UploadLimits {
            max_bucket_bytes: 100,
            max_bucket_files: 3,
            ..UploadLimits::default()
        };
        let files: Vec<HashedFile> = (0..20).map(|i| hf((i % 7) * 15, i as usize)).collect();
        let b = buckets(files, &limits);
        assert_eq!(b.iter().map(Vec::len).sum::<usize>(), 20);
        for bucket in &b {
            assert!(bucket.len() <= 3);
            assert!(bucket.iter().map(|f| f.file.size).sum::<u64>() <= 100);
        }
    }

    #[test]
    fn jwt_claims_and_truncation() {
        let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(br#"{"exp":123,"max_file_count_allowed":5}"#);
        let c = decode_claims(&format!("h.{payload}.s"));
        assert_eq!((c.exp, c.max_file_count_allowed), (Some(123), Some(5)));
        assert_eq!(decode_claims("garbage").exp, None);
        assert_eq!(truncate_utf8("héllo", 2), "h");
        assert_eq!(truncate_utf8("abc", 384), "abc");
    }
}
