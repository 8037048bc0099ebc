//! Typed errors of every vendor client, and what the caller should do about each.
//!
//! An error names the vendor, the method and the *path template* (`/v1/projects/{ref}`), the
//! scope it was counted in, the HTTP status and the vendor's own code and message. It never
//! holds a header, a request body or a URL with query string: the vendor message is passed
//! through [`redact`](super::redact::redact) before it is stored, so Display and Debug are safe
//! to print and log.

use std::fmt;
use std::time::Duration;

use serde_json::Value;

/// Which vendor API answered; decides how an error body is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Vendor {
    /// Supabase Management API: errors are `{"message": "..."}`.
    Supabase,
    /// Supabase per-project Storage API: errors are `{"statusCode": "409", "code", "error",
    /// "message"}` and the HTTP status is 400 for *every* 4xx, so the body's `statusCode` is the
    /// real one.
    SupabaseStorage,
    /// Cloudflare v4: `{"success": false, "errors": [{"code", "message"}], ...}`.
    Cloudflare,
}

impl Vendor {
    pub fn name(self) -> &'static str {
        match self {
            Vendor::Supabase => "supabase",
            Vendor::SupabaseStorage => "supabase storage",
            Vendor::Cloudflare => "cloudflare",
        }
    }
}

impl fmt::Display for Vendor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What went wrong, as far as a caller needs to branch on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The vendor answered with an error status not covered by a more precise kind.
    Api,
    /// 404 (or Storage's `statusCode: "404"`): the thing does not exist.
    NotFound,
    /// 409 or Storage's `Duplicate`: it exists already.
    AlreadyExists,
    /// 401 / 403: the credentials are missing, wrong or lack a permission.
    Unauthorized,
    /// 429 (only seen by callers that read statuses themselves: this layer waits 429s out,
    /// or defers them).
    RateLimited,
    /// Refused with 429 for longer than this run waits in place (or refused again and again):
    /// nothing happened. The work should be parked, without holding a worker, and resumed
    /// after [`Error::retry_after`]; a run that must end first reports it as deferred, not
    /// failed.
    Deferred,
    /// 5xx on an idempotent request after the retries this layer allows.
    Unavailable,
    /// SQL sent through the Management API was rejected by Postgres.
    Sql,
    /// A non-idempotent request may or may not have taken effect (timeout, connection lost
    /// before the answer, 5xx). Re-observe (e.g. look the project up by name) before deciding
    /// to send it again: a blind repeat can create a duplicate.
    Ambiguous,
    /// No connection could be made: the request was certainly not received.
    Connect,
    /// An idempotent request timed out after the retries this layer allows.
    Timeout,
    /// The response did not have the expected shape.
    Decode,
    /// Our own configuration is unusable (bad base URL or template, bad header value).
    Config,
}

impl ErrorKind {
    fn describe(self) -> &'static str {
        match self {
            ErrorKind::Api => "request rejected",
            ErrorKind::NotFound => "not found",
            ErrorKind::AlreadyExists => "already exists",
            ErrorKind::Unauthorized => "not authorized",
            ErrorKind::RateLimited => "rate limited",
            ErrorKind::Deferred => {
                "rate limited for longer than this run waits in place (deferred)"
            }
            ErrorKind::Unavailable => "service unavailable",
            ErrorKind::Sql => "SQL error",
            ErrorKind::Ambiguous => {
                "outcome unknown (the request may have taken effect; re-observe before retrying)"
            }
            ErrorKind::Connect => "could not connect",
            ErrorKind::Timeout => "timed out",
            ErrorKind::Decode => "unexpected response",
            ErrorKind::Config => "invalid client configuration",
        }
    }
}

/// What the caller should do with an error (after this layer's own retries are spent).
/// Serialised in snake case (`give_up`) in apply's summary JSON.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Policy {
    /// Transient: the same call can be made again later (see [`Error::retry_after`]).
    Retry,
    /// Permanent for this action as it stands: report it and move on. Includes
    /// [`ErrorKind::Ambiguous`], whose safe continuation is re-observation, never a repeat.
    GiveUp,
    /// Needs a person: credentials, permissions, configuration.
    AskUser,
    /// The vendor asked for a long wait: park this piece of work (releasing its worker) and
    /// resume it after [`Error::retry_after`], in the same run when it lasts long enough.
    Park,
}

/// An error from a vendor client. Boxed inside so `Result<T, Error>` stays small.
#[derive(thiserror::Error)]
#[error("{0}")]
pub struct Error(Box<Inner>);

struct Inner {
    kind: ErrorKind,
    vendor: Vendor,
    method: String,
    path: String,
    scope: Option<String>,
    status: Option<u16>,
    code: Option<String>,
    message: Option<String>,
    retry_after: Option<Duration>,
    attempts: u32,
}

impl Error {
    /// A new error; `message` must already be redacted.
    pub fn new(kind: ErrorKind, vendor: Vendor, method: &str, path: &str) -> Error {
        Error(Box::new(Inner {
            kind,
            vendor,
            method: method.to_owned(),
            path: path.to_owned(),
            scope: None,
            status: None,
            code: None,
            message: None,
            retry_after: None,
            attempts: 1,
        }))
    }

    pub(crate) fn with_scope(mut self, scope: Option<&str>) -> Error {
        self.0.scope = scope.filter(|s| !s.is_empty()).map(str::to_owned);
        self
    }
    pub(crate) fn with_status(mut self, status: u16) -> Error {
        self.0.status = Some(status);
        self
    }
    pub(crate) fn with_code(mut self, code: Option<String>) -> Error {
        self.0.code = code;
        self
    }
    /// Set the (already redacted) message.
    pub(crate) fn with_message(mut self, message: impl Into<String>) -> Error {
        self.0.message = Some(message.into());
        self
    }
    pub(crate) fn with_retry_after(mut self, d: Option<Duration>) -> Error {
        self.0.retry_after = d;
        self
    }
    pub(crate) fn with_attempts(mut self, n: u32) -> Error {
        self.0.attempts = n;
        self
    }
    /// The same error reclassified (e.g. a 400 from the SQL endpoint is a [`ErrorKind::Sql`]).
    pub fn with_kind(mut self, kind: ErrorKind) -> Error {
        self.0.kind = kind;
        self
    }

    pub fn kind(&self) -> ErrorKind {
        self.0.kind
    }
    pub fn vendor(&self) -> Vendor {
        self.0.vendor
    }
    pub fn method(&self) -> &str {
        &self.0.method
    }
    /// The path template, e.g. `/v1/projects/{ref}/api-keys`.
    pub fn path(&self) -> &str {
        &self.0.path
    }
    /// The rate-limit scope the request was counted in (`project:<ref>`, `org:<slug>`, `user`).
    pub fn scope(&self) -> Option<&str> {
        self.0.scope.as_deref()
    }
    /// The HTTP status, if an answer came. For the Storage API this is the real status from
    /// the body, not the 400 it is wrapped in.
    pub fn status(&self) -> Option<u16> {
        self.0.status
    }
    /// The vendor's error code (`NoSuchBucket`, `Duplicate`, a Cloudflare number).
    pub fn code(&self) -> Option<&str> {
        self.0.code.as_deref()
    }
    /// The vendor's message (redacted).
    pub fn message(&self) -> Option<&str> {
        self.0.message.as_deref()
    }
    /// How long the vendor asked us to wait, when it said.
    pub fn retry_after(&self) -> Option<Duration> {
        self.0.retry_after
    }
    /// How many times the request was sent.
    pub fn attempts(&self) -> u32 {
        self.0.attempts
    }
    pub fn is_not_found(&self) -> bool {
        self.0.kind == ErrorKind::NotFound
    }
    pub fn is_ambiguous(&self) -> bool {
        self.0.kind == ErrorKind::Ambiguous
    }
    /// A 429 wait too long to make in place: see [`ErrorKind::Deferred`].
    pub fn is_deferred(&self) -> bool {
        self.0.kind == ErrorKind::Deferred
    }

    /// What to do about it (kube-rs style).
    pub fn policy(&self) -> Policy {
        match self.0.kind {
            ErrorKind::RateLimited
            | ErrorKind::Unavailable
            | ErrorKind::Connect
            | ErrorKind::Timeout => Policy::Retry,
            ErrorKind::Deferred => Policy::Park,
            ErrorKind::Unauthorized | ErrorKind::Config => Policy::AskUser,
            ErrorKind::Api
            | ErrorKind::NotFound
            | ErrorKind::AlreadyExists
            | ErrorKind::Sql
            | ErrorKind::Ambiguous
            | ErrorKind::Decode => Policy::GiveUp,
        }
    }
}

impl fmt::Display for Inner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = self;
        write!(f, "{} {} {}", i.vendor, i.method, i.path)?;
        if let Some(scope) = &i.scope {
            write!(f, " [{scope}]")?;
        }
        write!(f, ": {}", i.kind.describe())?;
        if let Some(status) = i.status {
            write!(f, " (HTTP {status}")?;
            if let Some(code) = &i.code {
                write!(f, ", {code}")?;
            }
            f.write_str(")")?;
        } else if let Some(code) = &i.code {
            write!(f, " ({code})")?;
        }
        if let Some(m) = &i.message {
            write!(f, ": {m}")?;
        }
        if i.attempts > 1 {
            write!(f, " after {} attempts", i.attempts)?;
        }
        if let Some(d) = i.retry_after {
            write!(f, "; retry after {:.1}s", d.as_secs_f64())?;
        }
        Ok(())
    }
}

impl fmt::Debug for Error {
    // Hand-written so that adding a field can never leak something by accident.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = &self.0;
        f.debug_struct("Error")
            .field("kind", &i.kind)
            .field("vendor", &i.vendor)
            .field("method", &i.method)
            .field("path", &i.path)
            .field("scope", &i.scope)
            .field("status", &i.status)
            .field("code", &i.code)
            .field("message", &i.message)
            .field("retry_after", &i.retry_after)
            .field("attempts", &i.attempts)
            .finish()
    }
}

/// What a vendor said in an error body.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VendorError {
    /// The status the vendor means, when the body says (Storage's `statusCode`).
    pub status: Option<u16>,
    pub code: Option<String>,
    pub message: Option<String>,
}

/// Longest vendor message kept; bodies can be whole HTML pages.
const MAX_MESSAGE: usize = 500;

/// Read an error body with the vendor's parser; a body that is not the vendor's JSON (an
/// edge proxy's HTML page, plain text) still yields a short message.
pub fn parse_vendor_error(vendor: Vendor, body: &[u8]) -> VendorError {
    let parsed = serde_json::from_slice::<Value>(body)
        .ok()
        .map(|v| match vendor {
            Vendor::Supabase => parse_supabase(&v),
            Vendor::SupabaseStorage => parse_storage(&v),
            Vendor::Cloudflare => parse_cloudflare(&v),
        })
        .filter(|e| e.message.is_some() || e.code.is_some());
    let mut e = parsed.unwrap_or_else(|| VendorError {
        message: fallback_message(body),
        ..VendorError::default()
    });
    e.message = e.message.map(|m| truncate(&m, MAX_MESSAGE));
    e
}

fn str_field(v: &Value, key: &str) -> Option<String> {
    match v.get(key)? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn parse_supabase(v: &Value) -> VendorError {
    VendorError {
        status: None,
        // Some endpoints (auth config validation) add a code; most send only a message.
        code: str_field(v, "code"),
        message: str_field(v, "message")
            .or_else(|| str_field(v, "error"))
            .or_else(|| str_field(v, "msg")),
    }
}

fn parse_storage(v: &Value) -> VendorError {
    let status = str_field(v, "statusCode").and_then(|s| s.parse::<u16>().ok());
    // `code` (NoSuchBucket) is the machine-readable one; older servers only send `error`
    // (Duplicate).
    let code = str_field(v, "code").or_else(|| str_field(v, "error"));
    let message = match (str_field(v, "message"), str_field(v, "error")) {
        (Some(m), Some(e)) if code.as_deref() != Some(e.as_str()) && e != m => {
            Some(format!("{e}: {m}"))
        }
        (Some(m), _) => Some(m),
        (None, e) => e,
    };
    VendorError {
        status,
        code,
        message,
    }
}

fn parse_cloudflare(v: &Value) -> VendorError {
    let errors = v.get("errors").and_then(Value::as_array);
    let (codes, messages): (Vec<String>, Vec<String>) = errors
        .into_iter()
        .flatten()
        .map(|e| {
            (
                str_field(e, "code").unwrap_or_default(),
                str_field(e, "message").unwrap_or_default(),
            )
        })
        .unzip();
    let join = |xs: Vec<String>| {
        let xs: Vec<String> = xs.into_iter().filter(|x| !x.is_empty()).collect();
        (!xs.is_empty()).then(|| xs.join("; "))
    };
    VendorError {
        status: None,
        code: join(codes),
        message: join(messages),
    }
}

fn fallback_message(body: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    if text.starts_with('<') {
        // An HTML error page (a CDN edge in front of the API): its title says enough.
        let lower = text.to_ascii_lowercase();
        let title = lower
            .find("<title>")
            .and_then(|s| lower[s..].find("</title>").map(|e| (s + 7, s + e)))
            .map(|(s, e)| text[s..e].trim().to_owned());
        return Some(match title {
            Some(t) if !t.is_empty() => format!("HTML error page: {t}"),
            _ => "HTML error page".to_owned(),
        });
    }
    Some(text.to_owned())
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// The kind an error status gets, from the status the vendor means.
pub fn kind_for_status(status: u16, vendor_code: Option<&str>) -> ErrorKind {
    match status {
        401 | 403 => ErrorKind::Unauthorized,
        404 => ErrorKind::NotFound,
        409 => ErrorKind::AlreadyExists,
        429 => ErrorKind::RateLimited,
        500..=599 => ErrorKind::Unavailable,
        _ if vendor_code.is_some_and(|c| c.eq_ignore_ascii_case("Duplicate")) => {
            ErrorKind::AlreadyExists
        }
        _ => ErrorKind::Api,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_body_status_wins() {
        let e = parse_vendor_error(
            Vendor::SupabaseStorage,
            br#"{"statusCode":"409","error":"Duplicate","message":"The resource already exists"}"#,
        );
        assert_eq!(e.status, Some(409));
        assert_eq!(e.code.as_deref(), Some("Duplicate"));
        assert_eq!(
            kind_for_status(e.status.unwrap_or(400), e.code.as_deref()),
            ErrorKind::AlreadyExists
        );
    }

    #[test]
    fn cloudflare_errors_joined() {
        let e = parse_vendor_error(
            Vendor::Cloudflare,
            br#"{"success":false,"errors":[{"code":8000007,"message":"a"},{"code":7003,"message":"b"}]}"#,
        );
        assert_eq!(e.code.as_deref(), Some("8000007; 7003"));
        assert_eq!(e.message.as_deref(), Some("a; b"));
    }

    #[test]
    fn html_page_gives_its_title() {
        let e = parse_vendor_error(
            Vendor::Supabase,
            b"<!DOCTYPE html><html><head><title>502 error</title></head></html>",
        );
        assert_eq!(e.message.as_deref(), Some("HTML error page: 502 error"));
    }
}
