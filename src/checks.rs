//! The fleet's health checks (`checks:` in fleet.yaml), run on a client after apply changed it
//! and on the clients of a wave that gates a later one (see `rollout`).
//!
//! - HTTP: a GET of a path on the client's domain (through `INTELLI_SITE_PROBE_URL` with the
//!   domain as `Host` when set, like the site's own health probe), redirects not followed; the
//!   status must be the expected one and the body must contain the expected text. Run only when
//!   the site side is part of the run (without it the domain serves nothing apply made).
//! - SQL: a query run read-only the way migrations reach the database (`migrate::exec`), which
//!   must return one row of one column that is `true` (rows arrive as JSON objects, so two
//!   columns of one name count as one).
//!
//! A check is one attempt: the site's own probe already waited for the deployed build, and a
//! flaky check is the operator's to fix. A failure names the check and what was observed.

use std::time::Duration;

use crate::fleet::{CheckSpec, ClientSpec};
use crate::migrate::exec::SqlExecutor;

/// A check that did not pass, and what it saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckFailure {
    pub check: String,
    pub observed: String,
}

impl std::fmt::Display for CheckFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "check `{}` failed: {}", self.check, self.observed)
    }
}

/// What the checks reach a client through.
pub struct Probe<'a> {
    pub sql: &'a SqlExecutor,
    /// Whether the site side is part of this run (HTTP checks run only then).
    pub sites: bool,
    /// `INTELLI_SITE_PROBE_URL`: fetch sites here with the domain as `Host`.
    pub probe_base: Option<&'a str>,
    pub http: reqwest::Client,
}

impl<'a> Probe<'a> {
    pub fn new(
        sql: &'a SqlExecutor,
        sites: bool,
        probe_base: Option<&'a str>,
    ) -> Result<Probe<'a>, reqwest::Error> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Probe {
            sql,
            sites,
            probe_base,
            http,
        })
    }
}

/// Run `checks` on one client, in order; the first failure is returned. `project_ref`: the
/// client's project (`None`: it has none, so an SQL check fails saying so).
pub async fn run(
    probe: &Probe<'_>,
    checks: &[CheckSpec],
    client: &ClientSpec,
    project_ref: Option<&str>,
) -> Result<(), CheckFailure> {
    for check in checks {
        let observed = match (&check.http, &check.sql) {
            (Some(h), _) if probe.sites => http(probe, client, h).await,
            (Some(_), _) => None,
            (None, Some(s)) => match project_ref {
                Some(r) => sql(probe, r, &s.query).await,
                None => Some("the client has no project".into()),
            },
            // Refused by validate.
            (None, None) => None,
        };
        if let Some(observed) = observed {
            return Err(CheckFailure {
                check: check.name.clone(),
                observed,
            });
        }
    }
    Ok(())
}

/// `None` when the check passed, else what was observed.
async fn http(
    probe: &Probe<'_>,
    client: &ClientSpec,
    h: &crate::fleet::model::HttpCheck,
) -> Option<String> {
    let path = h.path.replace("{client}", &client.slug);
    let req = match probe.probe_base {
        Some(base) => probe
            .http
            .get(format!("{}{path}", base.trim_end_matches('/')))
            .header("host", &client.domain),
        None => probe.http.get(format!("https://{}{path}", client.domain)),
    };
    let url = format!("https://{}{path}", client.domain);
    let resp = match req
        .timeout(Duration::from_secs(u64::from(h.timeout_secs)))
        .send()
        .await
    {
        Ok(r) => r,
        Err(e) if e.is_timeout() => {
            return Some(format!("GET {url}: no answer within {}s", h.timeout_secs));
        }
        Err(e) => return Some(format!("GET {url}: {}", chain(&e))),
    };
    let status = resp.status().as_u16();
    if status != h.status {
        return Some(format!("GET {url}: HTTP {status} (expected {})", h.status));
    }
    let Some(want) = &h.body_contains else {
        return None;
    };
    let want = want.replace("{client}", &client.slug);
    match resp.text().await {
        Ok(body) if body.contains(&want) => None,
        Ok(body) => Some(format!(
            "GET {url}: HTTP {status}, the body ({} bytes) does not contain {want:?}",
            body.len()
        )),
        Err(e) => Some(format!("GET {url}: reading the body: {}", chain(&e))),
    }
}

/// An error with its causes, on one line (the URL is the client's public domain).
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cause = c.source();
    }
    out
}

/// `None` when the query returned one row whose one value is true.
async fn sql(probe: &Probe<'_>, project_ref: &str, query: &str) -> Option<String> {
    let rows = match probe.sql.run_read_only(project_ref, query).await {
        Ok(rows) => rows,
        Err(e) => return Some(format!("the query failed: {e}")),
    };
    let [row] = rows.as_slice() else {
        return Some(format!("{} rows (expected one row with true)", rows.len()));
    };
    let values: Vec<&serde_json::Value> = match row.as_object() {
        Some(o) => o.values().collect(),
        None => return Some(format!("a row that is not a record: {row}")),
    };
    match values.as_slice() {
        [v] if is_true(v) => None,
        [serde_json::Value::String(text)] => Some(format!("returned {text} (expected true)")),
        [v] => Some(format!("returned {v} (expected true)")),
        _ => Some(format!(
            "{} columns (expected one column with true)",
            values.len()
        )),
    }
}

/// `true` as JSON (Management API) or as PostgreSQL's text form (a direct connection).
fn is_true(v: &serde_json::Value) -> bool {
    match v {
        serde_json::Value::Bool(b) => *b,
        serde_json::Value::String(s) => s == "t" || s == "true",
        serde_json::Value::Null
        | serde_json::Value::Number(_)
        | serde_json::Value::Array(_)
        | serde_json::Value::Object(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn true_is_read_from_either_sql_path() {
        assert!(is_true(&serde_json::json!(true)));
        assert!(is_true(&serde_json::json!("t")));
        assert!(!is_true(&serde_json::json!(false)));
        assert!(!is_true(&serde_json::json!("f")));
        assert!(!is_true(&serde_json::json!(1)));
        assert!(!is_true(&serde_json::Value::Null));
    }
}
