//! Where SQL runs: the one small interface behind which migrations, the seed and observation
//! reach a client database.
//!
//! Two ways exist and they are interchangeable: the Management API's `database/query` (the
//! default: it needs no database password) and a direct PostgreSQL connection (self-hosted
//! Supabase, local runs). Both take one SQL text and run it as one implicit transaction.

use serde_json::Value;

use tokio_postgres::error::SqlState;

use super::sql::GuardedSql;
use crate::http::{Policy, RetryBudget};
use crate::supabase::SupabaseClient;

/// How to reach each client's database.
#[derive(Clone)]
pub enum SqlExecutor {
    /// `POST /v1/projects/{ref}/database/query`.
    ManagementApi(SupabaseClient),
    /// A direct connection; `{ref}` in the URL template is replaced by the project ref. TLS
    /// follows the URL's `sslmode` (see [`crate::pg::tls`]): never plaintext to another machine
    /// unless `sslmode=disable` is written.
    Direct { url_template: String },
}

/// A failed SQL run. The message is the database's (it never contains credentials: the
/// direct URL is redacted).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct SqlError {
    pub message: String,
    /// The SQLSTATE, when the database itself rejected the SQL (as opposed to not being
    /// reachable).
    pub code: Option<SqlState>,
    /// What to do about it: a rejected statement is permanent, an unreachable database is not,
    /// and a long 429 parks the client ([`Policy::Park`], see `retry_after`).
    pub policy: Policy,
    /// How long the vendor asked to wait, when it said (a [`Policy::Park`] error).
    pub retry_after: Option<std::time::Duration>,
}

impl SqlError {
    /// True when a concurrent run recorded the same migration or seed first (see `sql`).
    pub fn already_applied(&self) -> bool {
        self.code.as_ref().map(SqlState::code) == Some(super::sql::ALREADY_APPLIED_SQLSTATE)
    }
    /// True when the SQL referenced a table (or its schema) that does not exist.
    pub fn missing_relation(&self) -> bool {
        self.code
            .as_ref()
            .is_some_and(|c| *c == SqlState::UNDEFINED_TABLE || *c == SqlState::INVALID_SCHEMA_NAME)
    }
    /// Whether the database itself rejected the SQL.
    pub fn from_database(&self) -> bool {
        self.code.is_some()
    }
    pub fn policy(&self) -> Policy {
        self.policy
    }

    /// From the Management API: a rejected statement's SQLSTATE is only in the vendor's
    /// message (`Failed to run sql query: ERROR:  42P01: relation … does not exist`).
    fn from_api(e: &crate::http::Error) -> SqlError {
        let code = if e.kind() == crate::http::ErrorKind::Sql {
            e.message().and_then(sqlstate_in_message)
        } else {
            None
        };
        SqlError {
            message: e.to_string(),
            code,
            policy: e.policy(),
            retry_after: e.retry_after(),
        }
    }

    fn local(message: String, code: Option<SqlState>, policy: Policy) -> SqlError {
        SqlError {
            message,
            code,
            policy,
            retry_after: None,
        }
    }
}

/// The SQLSTATE in a Postgres-formatted message: five digits or capitals after `ERROR:`.
fn sqlstate_in_message(message: &str) -> Option<SqlState> {
    let rest = message.split_once("ERROR:")?.1.trim_start();
    let (code, _) = rest.split_once(':')?;
    (code.len() == 5
        && code
            .bytes()
            .all(|b| b.is_ascii_digit() || b.is_ascii_uppercase()))
    .then(|| SqlState::from_code(code))
}

impl SqlExecutor {
    /// Run a migration or the seed on the project's database; rows of the last statement as
    /// JSON objects. Column values may arrive as JSON or as text, depending on the path: use
    /// [`json_column`]. Through the Management API a lost answer or a 5xx is answered by
    /// sending it again (the SQL's own guard makes that safe), without a per-client budget.
    pub async fn run(&self, project_ref: &str, sql: &GuardedSql) -> Result<Vec<Value>, SqlError> {
        self.run_guarded(project_ref, sql, None).await
    }

    /// [`SqlExecutor::run`], counting re-sends against the client's `budget`.
    pub async fn run_guarded(
        &self,
        project_ref: &str,
        sql: &GuardedSql,
        budget: Option<&RetryBudget>,
    ) -> Result<Vec<Value>, SqlError> {
        match self {
            SqlExecutor::ManagementApi(client) => client
                .query_guarded(project_ref, sql.as_str(), budget)
                .await
                .map_err(|e| SqlError::from_api(&e)),
            SqlExecutor::Direct { url_template } => {
                run_direct(url_template, project_ref, sql.as_str()).await
            }
        }
    }
}

/// One SQL text in one implicit transaction over a direct connection.
async fn run_direct(
    url_template: &str,
    project_ref: &str,
    sql: &str,
) -> Result<Vec<Value>, SqlError> {
    let url = url_template.replace("{ref}", project_ref);
    let db = crate::pg::connect(&url).await.map_err(|e| {
        // A TLS setting or certificate that is refused needs a person; an unreachable
        // server may come back.
        let policy = if crate::pg::tls::is_configuration_error(&e) {
            Policy::AskUser
        } else {
            Policy::Retry
        };
        SqlError::local(format!("{e:#}"), None, policy)
    })?;
    let messages = db
        .simple_query(sql)
        .await
        .map_err(|e| match e.as_db_error() {
            Some(d) => SqlError::local(
                d.message().to_string(),
                Some(d.code().clone()),
                Policy::GiveUp,
            ),
            None => SqlError::local(e.to_string(), None, Policy::Retry),
        })?;
    Ok(rows_as_json(messages))
}

impl SqlExecutor {
    /// Like [`SqlExecutor::run`] for reads: the Management API's read-only mode (safe to retry,
    /// and what a read-only token may do), or a read-only transaction on a direct connection.
    pub async fn run_read_only(
        &self,
        project_ref: &str,
        sql: &str,
    ) -> Result<Vec<Value>, SqlError> {
        match self {
            SqlExecutor::ManagementApi(client) => client
                .query_read_only(project_ref, sql)
                .await
                .map_err(|e| SqlError::from_api(&e)),
            SqlExecutor::Direct { url_template } => {
                let sql = format!("set transaction read only;\n{sql}");
                run_direct(url_template, project_ref, &sql).await
            }
        }
    }
}

/// The rows of the last result set of a simple-query run, as objects of text values.
fn rows_as_json(messages: Vec<tokio_postgres::SimpleQueryMessage>) -> Vec<Value> {
    let mut current: Vec<Value> = Vec::new();
    let mut last: Vec<Value> = Vec::new();
    for m in messages {
        match m {
            tokio_postgres::SimpleQueryMessage::Row(row) => {
                let mut obj = serde_json::Map::new();
                for (i, col) in row.columns().iter().enumerate() {
                    let v = row
                        .get(i)
                        .map_or(Value::Null, |s| Value::String(s.to_string()));
                    obj.insert(col.name().to_string(), v);
                }
                current.push(Value::Object(obj));
            }
            tokio_postgres::SimpleQueryMessage::CommandComplete(_) => {
                last = std::mem::take(&mut current);
            }
            _ => {}
        }
    }
    if !current.is_empty() {
        last = current;
    }
    last
}

/// Column `name` of `row` as JSON: a JSON value as is, or JSON text parsed (queries cast their
/// JSON results to text so both paths deliver the same thing).
pub fn json_column(row: &Value, name: &str) -> Option<Value> {
    match row.get(name)? {
        Value::String(s) => serde_json::from_str(s).ok(),
        Value::Null => None,
        other => Some(other.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlstate_is_read_from_the_vendor_message() {
        let code = |m: &str| sqlstate_in_message(m).map(|c| c.code().to_string());
        assert_eq!(
            code("Failed to run sql query: ERROR:  42P01: relation \"x\" does not exist"),
            Some("42P01".into())
        );
        assert_eq!(
            code("Failed to run sql query: ERROR:  IA001: intelli: already applied: 1"),
            Some(super::super::sql::ALREADY_APPLIED_SQLSTATE.into())
        );
        assert_eq!(code("Failed to run sql query: connection reset"), None);
        assert_eq!(code("ERROR: syntax error: near x"), None);
    }
}
